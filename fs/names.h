// How catalog names (work titles, file names) become file names in the tree,
// and back.
//
// A raw name may hold anything but NUL; a file name may not contain '/',
// may not be "." or "..", and must fit in 255 bytes. escape_name() maps
// every raw name to a valid file name, reversibly:
//   * '/' -> "%2F", NUL -> "%00", "." -> "%2E", ".." -> "%2E%2E", and a '%'
//     that would otherwise start one of the escapes %2F %00 %2E %25 -> "%25".
//     Nothing else changes, so every name a file system can hold shows as
//     itself (unless it contains one of those four escapes literally);
//   * a result over 255 bytes (a long title from elsewhere) is shortened to
//     a prefix, "~", ten hex digits of the SHA-256 of the raw name and the
//     extension; it is resolved by searching raw names with that prefix.
// Entries that share a name in one folder are told apart by a counter
// before the extension: "paper.pdf", "paper (2).pdf", "paper (3).pdf".
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace recall {

// Longest name the tree shows (NAME_MAX).
inline constexpr size_t kMaxShown = 255;

std::string escape_name(std::string_view raw);
// The raw name for a shown name that is not shortened: decodes the four
// escapes, takes everything else literally.
std::string unescape_name(std::string_view shown);

struct ShortenedName {
  std::string raw_prefix;  // the raw name starts with this
  std::string hash10;      // first ten hex digits of sha256(raw name)
};
// When `shown` has the form of a shortened name, what it says of the raw name.
std::optional<ShortenedName> parse_shortened(std::string_view shown);

// For a shown name that is not simply escape_name(raw) of a first entry (a
// collision name, or a shortened one): the raw name of its group (exact), or
// a prefix of it when shortening or cutting lost the rest. nullopt when the
// name cannot be either.
struct GroupQuery {
  std::string raw;
  bool exact = false;
};
std::optional<GroupQuery> group_query(std::string_view shown);

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
