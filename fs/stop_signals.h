// StopSignals — SIGINT, SIGTERM and SIGHUP as a request to stop, handled on
// a thread of its own.
//
// A signal handler can do almost nothing safely, and stopping a mount takes
// work done in order: the FUSE adapter drains its invalidation queue while
// requests are still answered (a notification can wait for a folder lock
// that a request in flight holds), and only then ends the request loop.
// While a StopSignals lives, those signals write a byte to a pipe, and its
// thread runs `on_stop` once. SIGPIPE is ignored. One per process at a time.
// No FUSE in here.
#pragma once

#include <signal.h>

#include <functional>
#include <thread>

#include "base/fd.h"

namespace recall {

class StopSignals {
 public:
  explicit StopSignals(std::function<void()> on_stop);
  ~StopSignals();  // joins the thread (a running on_stop finishes), restores the handlers
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

 private:
  void run();
  std::function<void()> on_stop_;
  UniqueFd read_end_, write_end_;
  struct sigaction old_int_ {
  }, old_term_{}, old_hup_{}, old_pipe_{};
  std::thread thread_;
};

}  // namespace recall
