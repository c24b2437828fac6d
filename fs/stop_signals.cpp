#include "fs/stop_signals.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "base/error.h"

namespace recall {
namespace {

int g_stop_fd = -1;  // the pipe's write end, for the handler

void on_signal(int) {
  int saved = errno;
  if (::write(g_stop_fd, "s", 1) < 0) {
    // The pipe is full: a stop is already on its way.
  }
  errno = saved;
}

}  // namespace

StopSignals::StopSignals(std::function<void()> on_stop) : on_stop_(std::move(on_stop)) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw_last_errno("pipe");
  read_end_.reset(fds[0]);
  write_end_.reset(fds[1]);
  if (::fcntl(fds[1], F_SETFL, O_NONBLOCK) != 0) throw_last_errno("fcntl");
  g_stop_fd = fds[1];
  thread_ = std::thread([this] { run(); });
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked wait (the FUSE loop's) returns EINTR
  ::sigaction(SIGINT, &sa, &old_int_);
  ::sigaction(SIGTERM, &sa, &old_term_);
  ::sigaction(SIGHUP, &sa, &old_hup_);
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  ::sigaction(SIGPIPE, &ign, &old_pipe_);
}

StopSignals::~StopSignals() {
  // The thread first (an on_stop running may still signal the loop's
  // thread, which must find this handler, not the default that kills).
  for (;;) {  // "q": the thread ends
    ssize_t n = ::write(write_end_.get(), "q", 1);
    if (n == 1 || (n < 0 && errno != EINTR && errno != EAGAIN)) break;
  }
  thread_.join();
  ::sigaction(SIGINT, &old_int_, nullptr);
  ::sigaction(SIGTERM, &old_term_, nullptr);
  ::sigaction(SIGHUP, &old_hup_, nullptr);
  ::sigaction(SIGPIPE, &old_pipe_, nullptr);
  g_stop_fd = -1;
}

void StopSignals::run() {
  bool stopped = false;
  for (;;) {
    char c;
    ssize_t n = ::read(read_end_.get(), &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == 'q') return;
    if (!stopped) {
      stopped = true;
      on_stop_();
    }
  }
}

}  // namespace recall
