// What apps and accidents do to a mounted library: a daemon stopped, hung or
// killed while it is busy, a full disk, many files open at once, readers and
// writers in parallel, renames of files still open or just closed. (kill -9
// while files are being written: mount_crash_test.cpp.)
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <thread>

#include "base/file_io.h"
#include "tests/mount_fixture.h"

namespace recall {
namespace {
namespace fs = std::filesystem;
using test::MountedLibrary;

TEST(MountRobustness, StoppingTheDaemonWhileItIsBusyUnmountsAndKeepsEveryClosedFile) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  ASSERT_EQ(::mkdir((m / "works/Z").c_str(), 0755), 0);
  // Writers, renames and listers in one folder (the daemon invalidates
  // names and listings meanwhile), then SIGTERM: the daemon must unmount
  // and exit, not wait forever on a folder lock held by a request it will
  // never answer.
  std::string script =
      "cd \"$MNT\"; for w in 1 2 3; do (for i in $(seq 400); do echo $i > works/Z/w$w-$i && "
      "mv works/Z/w$w-$i works/Z/m$w-$i && echo m$w-$i >> \"$TMP/done.log\"; done) & done; "
      "for s in 1 2; do (while ls -l works/Z blobs > /dev/null; do :; done) & done; wait";
  std::string env_mnt = "MNT=" + m.mnt().string(), env_tmp = "TMP=" + m.tmp().string();
  const char* argv[] = {"/bin/bash", "-c", script.c_str(), nullptr};
  const char* envp[] = {env_mnt.c_str(), env_tmp.c_str(), "PATH=/usr/bin:/bin", nullptr};
  pid_t pid;
  posix_spawnattr_t attr;  // a process group of its own, to stop all of it
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);
  ASSERT_EQ(posix_spawn(&pid, "/bin/bash", nullptr, &attr, const_cast<char**>(argv),
                        const_cast<char**>(envp)),
            0);
  posix_spawnattr_destroy(&attr);
  ASSERT_TRUE(test::eventually([&] { return test::lines_of(m.tmp() / "done.log").size() >= 30; },
                               std::chrono::seconds(30)))
      << "the writers did not get going";
  EXPECT_TRUE(m.stop_daemon(SIGTERM, std::chrono::seconds(15)))
      << "the daemon did not unmount and exit on SIGTERM while busy";
  ::kill(-pid, SIGKILL);
  int status;
  ::waitpid(pid, &status, 0);
  if (m.mounted()) m.kill_daemon();  // so that the rest can run
  // Every file whose mv returned is there after a remount.
  m.mount();
  for (const std::string& name : test::lines_of(m.tmp() / "done.log"))
    EXPECT_TRUE(fs::exists(m / ("works/Z/" + name))) << name << " was stored but is gone";
}

// The system call `pid` is blocked in ("running" when none).
std::string syscall_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/syscall");
  std::string nr;
  in >> nr;
  return nr;
}

// SIGSTOP to `pid`, and its every thread stopped (kill() returns before a
// thread busy in a request has stopped, and that one may still answer).
void stop_process(pid_t pid) {
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  fs::path tasks = fs::path("/proc") / std::to_string(pid) / "task";
  auto all_stopped = [&] {
    for (const auto& t : fs::directory_iterator(tasks)) {
      std::ifstream stat(t.path() / "stat");
      std::string line;
      std::getline(stat, line);
      if (line.find(") T") == std::string::npos) return false;
    }
    return true;
  };
  ASSERT_TRUE(test::eventually(all_stopped)) << "the daemon did not stop";
}

// A daemon that hangs (here: SIGSTOP) leaves programs stuck in the mount and
// the mount busy. `recallfs unmount` says so and names --force; --force
// fails the stuck requests, detaches the mount, ends the daemon, and a
// remount has every file closed before.
TEST(MountRobustness, AHungDaemonIsUnmountedByForceAndLosesNoClosedFile) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  test::write_file(m / "inbox/kept.txt", "closed before the hang");
  pid_t daemon = m.daemon_pid();
  stop_process(daemon);
  if (HasFatalFailure()) return;
  std::string path = (m / "inbox/asked-while-hung").string();
  const char* argv[] = {"/usr/bin/stat", path.c_str(), nullptr};
  pid_t stuck;
  ASSERT_EQ(posix_spawn(&stuck, argv[0], nullptr, nullptr, const_cast<char**>(argv), environ), 0);
  // stat(1) waits in statx() for the daemon's answer (its only statx; the
  // loader's fstat calls are newfstatat).
  ASSERT_TRUE(test::eventually([&] { return syscall_of(stuck) == std::to_string(SYS_statx); }))
      << "stat did not wait on the daemon (in system call " << syscall_of(stuck) << ")";

  // Mounting there again says it is mounted, at once (no stat of it).
  auto again = test::run({"timeout", "30", test::recallfs_binary(), "mount", m.mnt().string(),
                          "--data", m.data().string()});
  EXPECT_EQ(again.exit_code, 75) << again.err;
  EXPECT_NE(again.err.find("already mounted"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("--force"), std::string::npos) << again.err;

  auto plain = test::run({test::recallfs_binary(), "unmount", m.mnt().string()});
  EXPECT_EQ(plain.exit_code, 75) << plain.err;
  EXPECT_NE(plain.err.find("--force"), std::string::npos) << plain.err;

  // Through a symlink to the mount point: finding the mount must not stat
  // its root, which would hang as well (timeout(1) turns a hang into 124).
  fs::path link = m.tmp() / "link-to-mount";
  fs::create_directory_symlink(m.mnt(), link);
  auto forced =
      test::run({"timeout", "60", test::recallfs_binary(), "unmount", "--force", link.string()});
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  int status = 0;
  ASSERT_TRUE(test::eventually([&] { return ::waitpid(stuck, &status, WNOHANG) == stuck; }))
      << "stat is still stuck in the mount";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << "stat got an error";
  EXPECT_TRUE(test::eventually([&] { return test::process_ended(daemon); }))
      << "the daemon is still there";
  ::kill(daemon, SIGKILL);  // (if the test failed: never leave it stopped)
  std::ifstream mounts("/proc/self/mounts");
  std::string mounts_text((std::istreambuf_iterator<char>(mounts)), {});
  EXPECT_EQ(mounts_text.find(m.mnt().string() + " "), std::string::npos) << "still mounted";

  m.mount();
  EXPECT_EQ(test::read_file(m / "inbox/kept.txt"), "closed before the hang");
}

// Unmounting an idle mount needs nothing from its daemon: with the daemon
// stopped, unmount says so and returns at once, and the daemon closes the
// library when it is continued.
TEST(MountRobustness, UnmountWithAStoppedDaemonReturnsAndTheDaemonEndsWhenContinued) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  test::write_file(m / "inbox/kept.txt", "kept");
  pid_t daemon = m.daemon_pid();
  stop_process(daemon);
  if (HasFatalFailure()) return;
  auto r = test::run({"timeout", "30", test::recallfs_binary(), "unmount", m.mnt().string()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("is stopped"), std::string::npos) << r.err;
  ASSERT_EQ(::kill(daemon, SIGCONT), 0);
  EXPECT_TRUE(test::eventually([&] { return test::process_ended(daemon); }))
      << "the daemon did not end once continued";
  ::kill(daemon, SIGKILL);  // (if the test failed)
  m.mount();
  EXPECT_EQ(test::read_file(m / "inbox/kept.txt"), "kept");
}

// A daemon that died leaves mount.json behind; its pid may go to another
// process. unmount --force must not kill that one.
TEST(MountRobustness, ForceNeverKillsAProcessThatTookADeadDaemonsPid) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  test::write_file(m / "inbox/kept.txt", "kept");
  pid_t daemon = m.daemon_pid();
  ASSERT_EQ(::kill(daemon, SIGKILL), 0);
  ASSERT_TRUE(test::eventually([&] { return test::process_ended(daemon); }));
  // Another process, started after the daemon, named in mount.json as if
  // it had been given the daemon's pid.
  const char* argv[] = {"/bin/sleep", "600", nullptr};
  pid_t other;
  ASSERT_EQ(posix_spawn(&other, argv[0], nullptr, nullptr, const_cast<char**>(argv), environ), 0);
  fs::path info = m.data() / "mount.json";
  std::string text = test::read_file(info);
  std::string from = "\"pid\":" + std::to_string(daemon);
  ASSERT_NE(text.find(from), std::string::npos) << text;
  text.replace(text.find(from), from.size(), "\"pid\":" + std::to_string(other));
  test::write_file(info, text);

  auto forced = test::run({test::recallfs_binary(), "unmount", "--force", m.mnt().string()});
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  int status = 0;
  EXPECT_EQ(::waitpid(other, &status, WNOHANG), 0) << "the other process was killed";
  ::kill(other, SIGKILL);
  ::waitpid(other, &status, 0);
  m.mount();
  EXPECT_EQ(test::read_file(m / "inbox/kept.txt"), "kept");
}

TEST(MountRobustness, AFullDiskGivesENOSPCAndNeverLosesThePreviousContent) {
  RECALL_REQUIRE_FUSE();
  test::SmallDisk small;
  if (!small.error().empty()) GTEST_SKIP() << small.error();
  {
    MountedLibrary m(small / "data");
    std::mt19937_64 rng(1);
    std::string keep = test::random_bytes(rng, 1 << 20);
    test::write_file(m / "inbox/keep.bin", keep);
    test::write_file(m.tmp() / "big.bin", test::random_bytes(rng, 64 << 20));

    // cp of a file bigger than the disk: a clear error, and no half file.
    auto cp = m.shell("cp \"$TMP/big.bin\" inbox/big.bin");
    EXPECT_NE(cp.exit_code, 0);
    EXPECT_NE(cp.err.find("No space left on device"), std::string::npos) << cp.err;
    EXPECT_FALSE(fs::exists(m / "inbox/big.bin")) << "a failed copy left a file behind";

    // Overwriting a file with too much: the write or close fails, and the
    // file keeps its previous content.
    auto over = m.shell("cat \"$TMP/big.bin\" > inbox/keep.bin");
    EXPECT_NE(over.exit_code, 0);
    EXPECT_NE(over.err.find("No space left on device"), std::string::npos) << over.err;
    EXPECT_TRUE(test::read_file(m / "inbox/keep.bin") == keep)
        << "the failed write lost the old content";

    // Reserving more room than there is: ENOSPC, and the file is as it was.
    auto reserve = m.shell("fallocate -l 100M inbox/keep.bin");
    EXPECT_NE(reserve.exit_code, 0);
    EXPECT_NE(reserve.err.find("No space left on device"), std::string::npos) << reserve.err;
    EXPECT_TRUE(test::read_file(m / "inbox/keep.bin") == keep)
        << "the failed fallocate changed the content";
    // A reservation that fails changes no byte: the writer goes on
    // (posix_fallocate's callers do), and its close succeeds.
    auto goes_on = m.shell(R"sh(python3 - <<'EOF'
import os
fd = os.open("inbox/reserving.txt", os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"hello ")
try:
    os.posix_fallocate(fd, 0, 1 << 40)
    raise SystemExit("a terabyte was reserved")
except OSError as e:
    assert e.errno == 28, e
os.write(fd, b"world\n")
os.close(fd)
EOF)sh");
    EXPECT_EQ(goes_on.exit_code, 0) << goes_on.err;
    EXPECT_EQ(test::read_file(m / "inbox/reserving.txt"), "hello world\n");

    // The space came back: small files still work.
    test::write_file(m / "inbox/after.txt", "still works\n");
    EXPECT_EQ(test::read_file(m / "inbox/after.txt"), "still works\n");

    // A file whose write failed is renamed over another before it is
    // closed: the rename fails and changes nothing, and the close still
    // reports the failure (a rename must not take it from the writer).
    int fd = ::open((m / "inbox/keep.bin").c_str(), O_WRONLY);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    std::string mib = test::random_bytes(rng, 1 << 20);
    int write_error = 0;
    for (off_t at = 0; at < (64 << 20) && write_error == 0; at += 1 << 20)
      if (::pwrite(fd, mib.data(), mib.size(), at) < 0) write_error = errno;
    EXPECT_EQ(write_error, ENOSPC);
    EXPECT_EQ(::rename((m / "inbox/keep.bin").c_str(), (m / "inbox/after.txt").c_str()), -1);
    EXPECT_EQ(::close(fd), -1) << "the close did not report the failed write";
    EXPECT_TRUE(test::read_file(m / "inbox/keep.bin") == keep);
    EXPECT_EQ(test::read_file(m / "inbox/after.txt"), "still works\n");
    // Staged bytes of the failed writes are gone once the handles are released.
    EXPECT_TRUE(test::eventually([&] { return test::files_under(small / "data/staging").empty(); }))
        << test::files_under(small / "data/staging").front();

    // `cmd > keep.bin` as a shell runs it (open with O_TRUNC, close the
    // duplicate, write), its writes fail, and the daemon dies before the
    // last close: the truncation that close noted is not applied after all.
    fd = ::open((m / "inbox/keep.bin").c_str(), O_WRONLY | O_TRUNC);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    int out = ::dup(fd);
    EXPECT_EQ(::close(fd), 0) << std::strerror(errno);
    write_error = 0;
    for (off_t at = 0; at < (64 << 20) && write_error == 0; at += 1 << 20)
      if (::pwrite(out, mib.data(), mib.size(), at) < 0) write_error = errno;
    EXPECT_EQ(write_error, ENOSPC);
    m.kill_daemon();
    ::close(out);
    // The staged bytes the daemon left fill the disk (the last few KiB too,
    // here), and the library could not even be opened: the mount frees them
    // first.
    struct statvfs vfs {};
    ASSERT_EQ(::statvfs(small.path().c_str(), &vfs), 0);
    EXPECT_LT(vfs.f_bavail * vfs.f_frsize, 64u << 10) << "the disk was not full";
    {
      UniqueFd filler = open_file(small / "filler", O_WRONLY | O_CREAT, 0644);
      std::string kib(1024, 'x');
      while (::write(filler.get(), kib.data(), kib.size()) > 0) {
      }
    }
    m.mount();
    EXPECT_TRUE(test::read_file(m / "inbox/keep.bin") == keep) << "the failed write lost it";
  }
}

TEST(MountRobustness, ManyFilesOpenAtOnce) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  ASSERT_EQ(::mkdir((m / "works/Many").c_str(), 0755), 0);
  std::vector<int> fds;
  for (int i = 0; i < 400; ++i) {
    int fd = ::open((m / ("works/Many/f" + std::to_string(i))).c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0) << "file " << i << ": " << std::strerror(errno);
    fds.push_back(fd);
  }
  for (int i = 0; i < 400; ++i) {
    std::string s = "content of " + std::to_string(i);
    ASSERT_EQ(::write(fds[i], s.data(), s.size()), static_cast<ssize_t>(s.size()));
  }
  for (int fd : fds) EXPECT_EQ(::close(fd), 0);
  for (int i = 0; i < 400; i += 37)
    EXPECT_EQ(test::read_file(m / ("works/Many/f" + std::to_string(i))),
              "content of " + std::to_string(i));
  EXPECT_EQ(test::files_under(m / "works/Many").size(), 400u);
}

TEST(MountRobustness, ReadersAndWritersInParallel) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  std::mt19937_64 rng(5);
  std::string big = test::random_bytes(rng, 24 << 20);
  test::write_file(m / "inbox/big.bin", big);
  std::atomic<int> failures{0};
  std::vector<std::jthread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 3; ++round)
        if (test::read_file(m / "inbox/big.bin") != big) failures++;
      (void)t;
    });
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      std::mt19937_64 r(100 + static_cast<uint64_t>(t));
      for (int i = 0; i < 20; ++i) {
        std::string name = "inbox/w" + std::to_string(t) + "-" + std::to_string(i);
        std::string data = test::random_bytes(r, r() % 300000);
        test::write_file(m / name, data);
        if (test::read_file(m / name) != data) failures++;
      }
    });
  threads.clear();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(test::files_under(m / "inbox").size(), 81u);
}

TEST(MountRobustness, AReaderKeepsAConsistentVersionWhileAnotherProcessWrites) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  std::string v1(3 << 20, 'a'), v2(3 << 20, 'b');
  test::write_file(m / "inbox/doc.bin", v1);
  int rfd = ::open((m / "inbox/doc.bin").c_str(), O_RDONLY);
  ASSERT_GE(rfd, 0);
  char head[4096];
  ASSERT_EQ(::pread(rfd, head, sizeof head, 0), 4096);
  // Someone rewrites the file while the reader has it open.
  test::write_file(m / "inbox/doc.bin", v2);
  std::string seen;
  char buf[65536];
  for (off_t off = 0;;) {
    ssize_t n = ::pread(rfd, buf, sizeof buf, off);
    if (n <= 0) break;
    seen.append(buf, static_cast<size_t>(n));
    off += n;
  }
  ::close(rfd);
  EXPECT_TRUE(seen == v1 || seen == v2) << "the reader saw a mix of two versions";
  EXPECT_TRUE(test::read_file(m / "inbox/doc.bin") == v2);
}

// The kernel keeps one page cache per file, and a reader that opened an
// older version goes on reading that version. Its reads must never fill
// the cache that readers of the newer version are served from, then or
// after it closes.
TEST(MountRobustness, AReaderOfAnOlderVersionNeverLeavesItsPagesToNewerReaders) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  const std::string f = (m / "inbox/f.bin").string();
  test::write_file(f, std::string(64 << 10, 'A'));
  // The kernel's release of the writing handle comes after close() has
  // returned; an open before it shares the file being written, as on a
  // local disk, and sees the rewrite below (under a sanitizer's load it
  // did). A remount leaves nothing open: the old reader reads a version.
  m.unmount();
  m.mount();
  auto at = [](int fd, off_t off) {
    char c = '?';
    return ::pread(fd, &c, 1, off) == 1 ? c : '!';
  };
  int old_reader = ::open(f.c_str(), O_RDONLY);
  ASSERT_GE(old_reader, 0);
  EXPECT_EQ(at(old_reader, 0), 'A');
  // Rewritten in place while the old reader is open.
  int writer = ::open(f.c_str(), O_RDWR);
  ASSERT_GE(writer, 0);
  std::string b(64 << 10, 'B');
  ASSERT_EQ(::pwrite(writer, b.data(), b.size(), 0), static_cast<ssize_t>(b.size()));
  ASSERT_EQ(::close(writer), 0);
  int new_reader = ::open(f.c_str(), O_RDONLY);
  ASSERT_GE(new_reader, 0);
  // Both read the same pages, the old reader first.
  for (off_t off : {8192, 20000, 40000}) {
    EXPECT_EQ(at(old_reader, off), 'A') << "the old reader keeps its version, at " << off;
    EXPECT_EQ(at(new_reader, off), 'B') << "the new reader got the old version's page, at " << off;
  }
  EXPECT_EQ(::close(old_reader), 0);
  EXPECT_EQ(::close(new_reader), 0);
  // And once both are closed.
  EXPECT_TRUE(test::read_file(f) == b) << "a later reader got pages of the old version";
}

TEST(MountRobustness, SharedWritableMmapAndFsync) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  test::write_file(m / "inbox/mapped.bin", std::string(1 << 20, '.'));
  auto r = m.shell(R"sh(python3 - <<'EOF'
import mmap, os
fd = os.open("inbox/mapped.bin", os.O_RDWR)
mm = mmap.mmap(fd, 0, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
mm[0:5] = b"hello"
mm[500000:500005] = b"world"
mm.flush()
os.fsync(fd)
mm.close()
os.close(fd)
EOF)sh");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string back = test::read_file(m / "inbox/mapped.bin");
  EXPECT_EQ(back.substr(0, 5), "hello");
  EXPECT_EQ(back.substr(500000, 5), "world");
  m.unmount();
  m.mount();
  back = test::read_file(m / "inbox/mapped.bin");
  EXPECT_EQ(back.substr(500000, 5), "world") << "mmap writes were not stored";
}

// fallocate(1) as download managers and rsync --preallocate use it, each
// step run on the mount and on a plain directory: same exit status, same
// bytes (a kind the data directory's file system lacks fails on both).
TEST(MountRobustness, FallocateDoesWhatItDoesOnALocalDisk) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  std::mt19937_64 rng(3);
  fs::create_directories(m.tmp() / "plain");
  const std::string start = test::random_bytes(rng, 10000);
  test::write_file(m / "inbox/f.bin", start);
  test::write_file(m.tmp() / "plain/f.bin", start);
  const std::vector<std::string> steps = {
      "fallocate -l 1M f.bin",               // grows, with zeros
      "fallocate -p -o 4096 -l 4096 f.bin",  // punches a hole: zeros
      "fallocate -z -o 100 -l 50 f.bin",     // zeroes a range
      "fallocate -n -o 0 -l 4M f.bin",       // reserves, keeps the size
      "fallocate -o 8000 -l 100 f.bin",      // reserves inside: nothing changes
      "fallocate -l 3M new.bin",             // a new file
  };
  for (const std::string& step : steps) {
    auto ours = m.shell("cd inbox && " + step);
    auto plain = m.shell("cd \"$TMP/plain\" && " + step);
    EXPECT_EQ(ours.exit_code, plain.exit_code) << step << ": " << ours.err;
    for (const char* f : {"f.bin", "new.bin"}) {
      bool here = fs::exists(m.tmp() / "plain" / f);
      ASSERT_EQ(fs::exists(m / "inbox" / f), here) << step;
      if (!here) continue;
      EXPECT_TRUE(test::read_file(m / "inbox" / f) == test::read_file(m.tmp() / "plain" / f))
          << f << " differs after " << step;
    }
  }
  // Room reserved past the end is not kept in the stored object.
  auto kept = m.shell(
      "exec 3<>inbox/small.txt && fallocate -n -l 8M inbox/small.txt && echo 17 bytes of text >&3 "
      "&& exec 3>&-");
  ASSERT_EQ(kept.exit_code, 0) << kept.err;
  std::string sha = m.shell("getfattr --only-values -n user.recall.sha256 inbox/small.txt").out;
  struct stat ost {};
  ASSERT_EQ(::stat((m.data() / "cas/objects" / sha.substr(0, 2) / sha).c_str(), &ost), 0) << sha;
  EXPECT_LT(ost.st_blocks * 512, 1 << 20) << "the object keeps the 8 MiB reserved";
  // Shifting bytes (collapse, insert) is refused and changes nothing.
  const std::string before = test::read_file(m / "inbox/f.bin");
  auto collapse = m.shell("fallocate -c -o 0 -l 4096 inbox/f.bin");
  EXPECT_NE(collapse.exit_code, 0);
  EXPECT_NE(collapse.err.find("not supported"), std::string::npos) << collapse.err;
  m.unmount();
  m.mount();
  EXPECT_TRUE(test::read_file(m / "inbox/f.bin") == before);
  EXPECT_EQ(fs::file_size(m / "inbox/new.bin"), 3u << 20);
}

std::string asset_id_of(const fs::path& p) {
  char buf[128];
  ssize_t n = ::getxattr(p.c_str(), "user.recall.asset_id", buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

// Renames that meet files still open, or closed a moment ago, as editors and
// scripts make them: a rename over a file takes the bytes the source holds
// at that moment, and a writer that goes on writing after it writes to the
// file its name now shows, as on a local disk.
TEST(MountRobustness, ARenameTakesTheBytesOfAFileStillOpenOrJustClosed) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  const fs::path w = m / "works/Draft";
  ASSERT_EQ(::mkdir(w.c_str(), 0755), 0);
  auto write_all = [](int fd, const std::string& s) {
    return ::write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size());
  };

  // Emptied (opened with O_TRUNC, closed without a write) and at once
  // renamed over another file: the truncation is committed by the kernel's
  // release of the file, which may come after the rename.
  test::write_file(w / "kept.txt", "kept");
  const std::string kept_id = asset_id_of(w / "kept.txt");
  for (int round = 0; round < 10; ++round) {
    test::write_file(w / "notes.txt", "old notes " + std::to_string(round));
    int fd = ::open((w / "notes.txt").c_str(), O_WRONLY | O_TRUNC);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    ASSERT_EQ(::close(fd), 0);
    ASSERT_EQ(::rename((w / "notes.txt").c_str(), (w / "kept.txt").c_str()), 0);
    EXPECT_EQ(test::read_file(w / "kept.txt"), "") << "round " << round;
  }
  EXPECT_EQ(asset_id_of(w / "kept.txt"), kept_id);

  // Written, renamed over a file while still open, written again, closed.
  test::write_file(w / "paper.txt", "old paper");
  const std::string paper_id = asset_id_of(w / "paper.txt");
  int fd = ::open((w / "paper.txt.tmp").c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_TRUE(write_all(fd, "first half, "));
  ASSERT_EQ(::rename((w / "paper.txt.tmp").c_str(), (w / "paper.txt").c_str()), 0);
  ASSERT_TRUE(write_all(fd, "second half"));
  ASSERT_EQ(::close(fd), 0);
  EXPECT_EQ(test::read_file(w / "paper.txt"), "first half, second half");
  EXPECT_EQ(asset_id_of(w / "paper.txt"), paper_id) << "the atomic save lost the asset id";
  EXPECT_FALSE(fs::exists(w / "paper.txt.tmp"));

  // The same with a stored file edited in place, and a reader of the file
  // it replaces: the reader keeps the bytes it had; its writes go nowhere.
  test::write_file(w / "edited.txt", "0123456789");
  test::write_file(w / "target.txt", "target v1");
  int old = ::open((w / "target.txt").c_str(), O_RDWR);
  ASSERT_GE(old, 0) << std::strerror(errno);
  fd = ::open((w / "edited.txt").c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(::pwrite(fd, "AB", 2, 0), 2);
  ASSERT_EQ(::rename((w / "edited.txt").c_str(), (w / "target.txt").c_str()), 0);
  ASSERT_EQ(::pwrite(fd, "YZ", 2, 8), 2);
  ASSERT_EQ(::close(fd), 0);
  char buf[16] = {};
  EXPECT_EQ(::pread(old, buf, sizeof buf, 0), 9);
  EXPECT_EQ(std::string(buf, 9), "target v1");
  EXPECT_EQ(::pwrite(old, "lost", 4, 0), 4);
  EXPECT_EQ(::fchmod(old, 0600), 0);
  EXPECT_EQ(::close(old), 0);
  EXPECT_EQ(test::read_file(w / "target.txt"), "AB234567YZ");
  struct stat st {};
  ASSERT_EQ(::stat((w / "target.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u) << "a chmod through the replaced file's handle changed it";

  // Folders moved while a new file in them is still being written.
  ASSERT_EQ(::mkdir((w / "sub").c_str(), 0755), 0);
  fd = ::open((w / "sub/new.txt").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_TRUE(write_all(fd, "part one, "));
  EXPECT_EQ(::rename((w / "sub").c_str(), (w / "moved").c_str()), 0) << std::strerror(errno);
  EXPECT_EQ(::rename(w.c_str(), (m / "works/Final").c_str()), 0) << std::strerror(errno);
  ASSERT_TRUE(write_all(fd, "part two"));
  ASSERT_EQ(::close(fd), 0);
  EXPECT_EQ(test::read_file(m / "works/Final/moved/new.txt"), "part one, part two");

  // And so they stay.
  m.unmount();
  m.mount();
  EXPECT_EQ(test::read_file(m / "works/Final/kept.txt"), "");
  EXPECT_EQ(test::read_file(m / "works/Final/paper.txt"), "first half, second half");
  EXPECT_EQ(test::read_file(m / "works/Final/target.txt"), "AB234567YZ");
  EXPECT_EQ(test::read_file(m / "works/Final/moved/new.txt"), "part one, part two");
}

}  // namespace
}  // namespace recall
