// Lets the caller end a libcurl transfer that is under way: `keep_going` is
// asked after the pieces that arrive and about once a second while nothing
// does (libcurl's progress callback); when it answers false,
// curl_easy_perform returns CURLE_ABORTED_BY_CALLBACK. This is what lets an
// unmount end a request to a server that went silent instead of waiting out
// its stall timeout. `keep_going` must not throw and must outlive the
// transfer.
#pragma once

#include <curl/curl.h>

#include <cstddef>
#include <exception>
#include <functional>
#include <span>

namespace recall {

// Asks a stream's sink, with an empty piece, whether it wants more. What the
// sink throws is kept in `error` (it must not cross libcurl) and counts as
// a no.
inline bool sink_wants_more(const std::function<bool(std::span<const std::byte>)>& sink,
                            std::exception_ptr& error) noexcept {
  try {
    return sink({});
  } catch (...) {
    error = std::current_exception();
    return false;
  }
}

inline void end_transfer_when(CURL* c, const std::function<bool()>* keep_going) {
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, keep_going);
  curl_easy_setopt(
      c, CURLOPT_XFERINFOFUNCTION,
      +[](void* ud, curl_off_t, curl_off_t, curl_off_t, curl_off_t) -> int {
        return (*static_cast<const std::function<bool()>*>(ud))() ? 0 : 1;
      });
}

}  // namespace recall
