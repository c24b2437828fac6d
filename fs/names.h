// How catalog names (work titles, file names) become file names in the tree,
// and back.
//
// A raw name may hold anything but NUL; a file name may not contain '/',
// may not be "." or "..", and must fit in 255 bytes. Every raw name that is
// a file name shows as itself, so a name made through the mount (`cp`,
// `mkdir`, `mv`, rsync's temporary names) is always listed as it was typed.
// Only the others are changed, by escape_name(), reversibly:
//   * '/' -> "%2F", NUL -> "%00", "." -> "%2E", ".." -> "%2E%2E", and a '%'
//     that would otherwise start one of the escapes %2F %00 %2E %25 -> "%25";
//   * a result over 255 bytes (a long title from elsewhere) is shortened to
//     a prefix, "~", ten hex digits of the SHA-256 of the raw name and the
//     extension; it is resolved by searching raw names with that prefix.
// An escaped name can equal a raw name that shows as itself ("a/b" and a
// literal "a%2Fb"); the literal one keeps the name and the escaped one is
// told apart like any other collision (fs/tree.cpp).
// Entries that share a name in one folder are told apart by a counter
// before the extension: "paper.pdf", "paper (2).pdf", "paper (3).pdf".
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace recall {

// Longest name the tree shows (NAME_MAX).
inline constexpr size_t kMaxShown = 255;

// True when `raw` can be a file name as it is (and so shows as itself).
bool is_file_name(std::string_view raw);
std::string escape_name(std::string_view raw);
// The raw name an escaped, not shortened, shown name stands for: decodes the
// four escapes, takes everything else literally. A shown name may also be a
// raw name itself (Tree tries that first).
std::string unescape_name(std::string_view shown);

struct ShortenedName {
  std::string raw_prefix;  // the raw name starts with this
  std::string hash10;      // first ten hex digits of sha256(raw name)
};
// When `shown` has the form of a shortened name, what it says of the raw name.
std::optional<ShortenedName> parse_shortened(std::string_view shown);

// For a shown name that is not simply the name of a first entry (a collision
// name, or a shortened one): the raw names its group may have (exact), or
// prefixes of them when shortening or cutting lost the rest; the literal
// reading first, then the escaped one when it differs. Empty when the name
// cannot be either.
struct GroupQuery {
  std::string raw;
  bool exact = false;
};
std::vector<GroupQuery> group_queries(std::string_view shown);

// "paper.pdf", 2 -> "paper (2).pdf" (the stem is cut to stay within 255
// bytes). n >= 2.
std::string collision_name(std::string_view shown, unsigned n);
struct CollisionName {
  std::string base;  // the shown name without the counter
  unsigned n;        // >= 2
};
// "paper (2).pdf" -> {"paper.pdf", 2}.
std::optional<CollisionName> parse_collision(std::string_view shown);

// True for names of editors' and desktops' scratch files, which are kept on
// this device only: ".*.swp", "~$*", ".~lock.*#", ".DS_Store", "._*", "*.tmp"
// and the like.
bool is_scratch_name(std::string_view name);

}  // namespace recall
