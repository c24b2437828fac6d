#include "fs/names.h"

#include <cctype>

#include "base/sha256.h"

namespace recall {
namespace {

bool is_hex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// The escapes escape_name() writes; only these are decoded.
char escaped_char(std::string_view s, size_t i) {
  if (s.size() - i < 3 || s[i] != '%') return 0;
  std::string_view e = s.substr(i, 3);
  if (e == "%2F") return '/';
  if (e == "%00") return '\x01';  // stands for NUL; the caller maps it
  if (e == "%2E") return '.';
  if (e == "%25") return '%';
  return 0;
}

// The extension kept when shortening: a final ".xyz" of at most 16 bytes.
std::string_view extension(std::string_view s) {
  size_t dot = s.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || s.size() - dot > 16) return {};
  return s.substr(dot);
}

// Cuts `s` to at most `n` bytes without splitting a UTF-8 sequence or an escape.
std::string_view cut(std::string_view s, size_t n) {
  if (s.size() <= n) return s;
  size_t end = n;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  for (size_t back = 1; back <= 2 && end >= back; ++back)
    if (s[end - back] == '%') {
      end -= back;
      break;
    }
  return s.substr(0, end);
}

}  // namespace

bool is_file_name(std::string_view raw) {
  return !raw.empty() && raw.size() <= kMaxShown && raw != "." && raw != ".." &&
         raw.find('/') == std::string_view::npos && raw.find('\0') == std::string_view::npos;
}

std::string escape_name(std::string_view raw) {
  if (is_file_name(raw)) return std::string(raw);
  if (raw == ".") return "%2E";
  if (raw == "..") return "%2E%2E";
  std::string out;
  out.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '/')
      out += "%2F";
    else if (c == '\0')
      out += "%00";
    else if (c == '%' && escaped_char(raw, i))
      out += "%25";
    else
      out += c;
  }
  if (out.size() <= kMaxShown) return out;
  std::string_view ext = extension(out);
  std::string tail = "~" + sha256_hex(raw).substr(0, 10) + std::string(ext);
  return std::string(cut(out, kMaxShown - tail.size())) + tail;
}

std::string unescape_name(std::string_view shown) {
  std::string out;
  out.reserve(shown.size());
  for (size_t i = 0; i < shown.size(); ++i) {
    if (char c = escaped_char(shown, i)) {
      out += c == '\x01' ? '\0' : c;
      i += 2;
    } else {
      out += shown[i];
    }
  }
  return out;
}

std::optional<ShortenedName> parse_shortened(std::string_view shown) {
  // prefix "~" 10 hex [ext]; the prefix is what escape_name cut.
  std::string_view ext = extension(shown);
  std::string_view body = shown.substr(0, shown.size() - ext.size());
  if (body.size() < 11 || body[body.size() - 11] != '~') return std::nullopt;
  std::string_view hash = body.substr(body.size() - 10);
  for (char c : hash)
    if (!is_hex(c) || std::isupper(static_cast<unsigned char>(c))) return std::nullopt;
  std::string_view prefix = body.substr(0, body.size() - 11);
  if (shown.size() < kMaxShown - 4) return std::nullopt;  // escape_name never shortens to this
  return ShortenedName{unescape_name(prefix), std::string(hash)};
}

std::vector<GroupQuery> group_queries(std::string_view shown) {
  std::vector<GroupQuery> out;
  auto both = [&](std::string_view literal, bool exact) {
    out.push_back(GroupQuery{std::string(literal), exact});
    std::string raw = unescape_name(literal);
    if (raw != literal) out.push_back(GroupQuery{std::move(raw), exact});
  };
  if (auto c = parse_collision(shown)) {
    if (shown.size() + 2 < kMaxShown) {
      both(c->base, true);
    } else {
      // collision_name() may have cut the stem, even into a shortening
      // "~hash": back off past any such tail and search by prefix.
      std::string_view stem = shown.substr(0, shown.rfind(" ("));
      both(cut(stem, stem.size() > 16 ? stem.size() - 16 : 0), false);
    }
    return out;
  }
  if (auto s = parse_shortened(shown)) out.push_back(GroupQuery{s->raw_prefix, false});
  return out;
}

std::string collision_name(std::string_view shown, unsigned n) {
  std::string_view ext = extension(shown);
  std::string_view stem = shown.substr(0, shown.size() - ext.size());
  std::string counter = " (" + std::to_string(n) + ")";
  stem = cut(stem, kMaxShown - counter.size() - ext.size());
  return std::string(stem) + counter + std::string(ext);
}

std::optional<CollisionName> parse_collision(std::string_view shown) {
  std::string_view ext = extension(shown);
  std::string_view stem = shown.substr(0, shown.size() - ext.size());
  if (stem.size() < 4 || stem.back() != ')') return std::nullopt;
  size_t open = stem.rfind(" (");
  if (open == std::string_view::npos || open == 0) return std::nullopt;
  std::string_view digits = stem.substr(open + 2, stem.size() - open - 3);
  if (digits.empty() || digits.size() > 9 || digits[0] == '0') return std::nullopt;
  unsigned n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + static_cast<unsigned>(c - '0');
  }
  if (n < 2) return std::nullopt;
  return CollisionName{std::string(stem.substr(0, open)) + std::string(ext), n};
}

bool is_scratch_name(std::string_view name) {
  auto ends = [&](std::string_view s) { return name.ends_with(s); };
  if (name == ".DS_Store" || name == "Thumbs.db" || name == "desktop.ini") return true;
  if (name.starts_with("._")) return true;                    // macOS resource forks
  if (name.starts_with("~$")) return true;                    // Microsoft Office owner files
  if (name.starts_with(".~lock.") && ends("#")) return true;  // LibreOffice locks
  if (name.starts_with(".") && (ends(".swp") || ends(".swo") || ends(".swx"))) return true;  // vim
  if (name.starts_with(".#")) return true;                                // emacs locks
  if (name.starts_with("#") && ends("#")) return true;                    // emacs autosave
  if (ends("~")) return true;                                             // backup files
  if (ends(".tmp") || ends(".part") || ends(".crdownload")) return true;  // downloads, temp saves
  return false;
}

}  // namespace recall
