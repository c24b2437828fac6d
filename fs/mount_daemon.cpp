// serve_mount: the daemon's start-up around serve_fuse (see fuse_adapter.h).
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "base/error.h"
#include "fs/fuse_adapter.h"

namespace recall {

int serve_mount(const MountOptions& options, const std::function<std::shared_ptr<Vfs>()>& make_vfs,
                const std::function<void()>& on_mounted,
                const std::function<void()>& on_unmounted) {
  if (options.foreground)
    return serve_fuse(options, make_vfs, on_mounted, on_unmounted, [](const std::string& err) {
      if (!err.empty()) std::fprintf(stderr, "recallfs: %s\n", err.c_str());
    });
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) throw_last_errno("pipe");
  pid_t pid = ::fork();
  if (pid < 0) throw_last_errno("fork");
  if (pid > 0) {
    // The parent: wait for the daemon's word.
    ::close(pipefd[1]);
    std::string msg;
    char buf[512];
    ssize_t n;
    while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) msg.append(buf, static_cast<size_t>(n));
    ::close(pipefd[0]);
    if (msg == "ok") return 0;
    throw Error(EIO, msg.empty()
                         ? "the mount daemon stopped while starting; see " + options.log_file
                         : msg);
  }
  // The daemon.
  ::close(pipefd[0]);
  ::setsid();
  if (::chdir("/") != 0) {
  }
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    ::dup2(null, STDIN_FILENO);
    ::dup2(null, STDOUT_FILENO);
  }
  int log = options.log_file.empty()
                ? null
                : ::open(options.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log >= 0) ::dup2(log, STDERR_FILENO);
  int rc = serve_fuse(options, make_vfs, on_mounted, on_unmounted, [&](const std::string& err) {
    std::string word = err.empty() ? "ok" : err;
    if (!err.empty()) std::fprintf(stderr, "recallfs: %s\n", err.c_str());
    if (::write(pipefd[1], word.data(), word.size()) < 0) {
    }
    ::close(pipefd[1]);
  });
  std::fflush(stderr);
  std::exit(rc);
}

}  // namespace recall
