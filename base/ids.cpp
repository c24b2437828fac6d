#include "base/ids.h"

#include <uuid/uuid.h>

#include <chrono>

namespace recall {

std::string new_uuid() {
  uuid_t u;
  uuid_generate_random(u);
  char text[37];
  uuid_unparse_lower(u, text);
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
