#include "base/ids.h"

#include <uuid/uuid.h>

#include <chrono>
#include <cstring>
#include <mutex>

namespace recall {

std::string new_uuid() {
  uuid_t u;
  uuid_generate_random(u);
  char text[37];
  uuid_unparse_lower(u, text);
  return text;
}

std::string new_row_id() {
  // 48-bit timestamp, 4-bit version, 74 random bits (2 of them the variant).
  // Within one millisecond the random tail is incremented, keeping order.
  static std::mutex mu;
  static uint64_t last_ms = 0;
  static unsigned char last[16];
  std::lock_guard lock(mu);
  uint64_t ms = static_cast<uint64_t>(now_ms());
  unsigned char b[16];
  if (ms <= last_ms) {
    std::memcpy(b, last, 16);
    for (int i = 15; i >= 8; --i) {  // increment the random tail
      if (++b[i] != 0) break;
    }
    // The variant bits may have overflowed: keep them "10".
    b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  } else {
    last_ms = ms;
    uuid_t r;
    uuid_generate_random(r);
    std::memcpy(b, r, 16);
    for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
    b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x70);
    b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
    b[9] &= 0x7f;  // leave room to increment within the millisecond
  }
  std::memcpy(last, b, 16);
  char text[37];
  uuid_unparse_lower(b, text);
  return text;
}

bool is_uuid(const std::string& s) {
  uuid_t u;
  return s.size() == 36 && uuid_parse(s.c_str(), u) == 0;
}

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

int64_t now_ns() {
  using namespace std::chrono;
  return duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace recall
