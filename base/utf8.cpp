#include "base/utf8.h"

#include <cstdio>
#include <string>

#include "base/error.h"

namespace recall {
namespace {

// The length of the well-formed sequence at s[i], or 0 (Unicode 15, table
// 3-7: the ranges a second byte may take depend on the first).
size_t sequence_at(std::string_view s, size_t i) {
  auto at = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b = at(i);
  if (b == 0) return 0;
  if (b < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // the second byte's range
  if (b >= 0xC2 && b <= 0xDF) {
    n = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    n = 3;
    if (b == 0xE0) lo = 0xA0;  // overlong
    if (b == 0xED) hi = 0x9F;  // surrogates
  } else if (b >= 0xF0 && b <= 0xF4) {
    n = 4;
    if (b == 0xF0) lo = 0x90;  // overlong
    if (b == 0xF4) hi = 0x8F;  // past U+10FFFF
  } else {
    return 0;
  }
  if (s.size() - i < n) return 0;
  if (at(i + 1) < lo || at(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if (at(i + k) < 0x80 || at(i + k) > 0xBF) return 0;
  return n;
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = sequence_at(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

void require_utf8(std::string_view s, std::string_view what) {
  if (is_valid_utf8(s)) return;
  std::string shown = "'";
  for (size_t i = 0; i < s.size();) {
    if (size_t n = sequence_at(s, i)) {
      std::string q = quote(s.substr(i, n));  // (control characters escaped too)
      shown.append(q, 1, q.size() - 2);
      i += n;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(s[i]));
      shown += buf;
      ++i;
    }
  }
  throw Error(EILSEQ, std::string(what) + " is not valid UTF-8: " + shown + "'");
}

}  // namespace recall
