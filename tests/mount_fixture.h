// A library mounted for a test: a fresh data directory and mount point, the
// real `recallfs mount` daemon, unmounted (or cleaned up after a kill) at the
// end. Tests drive it with system calls and the shell tools users use.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "catalog/catalog.h"
#include "tests/test_util.h"

namespace recall::test {

class MountedLibrary {
 public:
  // Skips the test when FUSE cannot be used here.
  MountedLibrary();
  // `data_dir` may be given to put the library somewhere special (a tmpfs).
  explicit MountedLibrary(const std::filesystem::path& data_dir);
  ~MountedLibrary();

  // `recallfs mount` with `extra` arguments (e.g. --cache-size 3M), and
  // `env` added to its environment ("NAME=value").
  void mount(const std::vector<std::string>& extra = {}, const std::vector<std::string>& env = {});
  void unmount();
  // SIGKILLs the daemon and clears the dead mount, as after a crash.
  void kill_daemon();
  // Sends `sig` (SIGTERM, SIGINT) and waits up to `timeout` for the daemon
  // to unmount and exit; false if it did not.
  bool stop_daemon(int sig, std::chrono::milliseconds timeout);
  bool mounted() const { return mounted_; }

  const std::filesystem::path& mnt() const { return mnt_; }
  const std::filesystem::path& data() const { return data_; }
  std::filesystem::path operator/(const std::string& rel) const { return mnt_ / rel; }
  // Runs a shell script with $MNT, $DATA and $TMP set, in the mount point.
  RunResult shell(const std::string& script);
  // Runs `recallfs ARGS --data DATA` (with `env` added).
  RunResult recallfs(std::vector<std::string> args, const std::vector<std::string>& env = {});
  // The catalog, opened alongside the daemon (as another process would).
  std::unique_ptr<Catalog> catalog();
  pid_t daemon_pid();

  const std::filesystem::path& tmp() const { return tmp_.path(); }

 private:
  TempDir tmp_;
  std::filesystem::path data_, mnt_;
  bool mounted_ = false;
};

// A 40 MiB tmpfs mounted for a test: a disk that fills (root only; see
// mounted()). Unmounted (detached) at the end.
class SmallDisk {
 public:
  SmallDisk();
  ~SmallDisk();
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;
  // Empty when mounted; else why not (the test skips).
  const std::string& error() const { return error_; }
  std::filesystem::path operator/(const std::string& rel) const { return dir_ / rel; }
  const std::filesystem::path& path() const { return dir_; }

 private:
  TempDir outer_;
  std::filesystem::path dir_;
  std::string error_;
};

// True when /dev/fuse works here; tests that need a mount skip otherwise.
bool fuse_available();

}  // namespace recall::test

#define RECALL_REQUIRE_FUSE()                                                              \
  do {                                                                                     \
    if (!::recall::test::fuse_available()) GTEST_SKIP() << "/dev/fuse is not usable here"; \
  } while (0)
