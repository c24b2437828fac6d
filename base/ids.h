// Identifiers and clocks shared by every module.
#pragma once

#include <cstdint>
#include <string>

namespace recall {

// A new random (version 4) UUID in its 36-character text form.
std::string new_uuid();
// A new time-ordered (version 7, RFC 9562) UUID: 48 bits of Unix
// milliseconds, then random bits. Ids made by one process are strictly
// increasing, so rows keyed by them are appended to their index rather than
// scattered through it, and ids made in one millisecond sort in creation order.
std::string new_row_id();
// True when `s` has the 8-4-4-4-12 hex form of a UUID.
bool is_uuid(const std::string& s);

// Wall-clock milliseconds since the Unix epoch.
int64_t now_ms();
// Wall-clock nanoseconds since the Unix epoch.
int64_t now_ns();

}  // namespace recall
