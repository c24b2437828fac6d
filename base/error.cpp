#include "base/error.h"

#include <cstdio>
#include <cstring>

namespace recall {

void throw_errno(int code, std::string_view what) {
  std::string msg(what);
  msg += ": ";
  msg += std::strerror(code);
  throw Error(code, std::move(msg));
}

std::string quote(std::string_view s) {
  std::string out = "'";
  for (unsigned char c : s) {
    if (c == '\\' || c == '\'') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '\'';
  return out;
}

}  // namespace recall
