// kill -9 of the daemon while files are being written: after a remount,
// every file whose close() (or rename) returned has what it was given, and
// no file shows anything else than a version an app closed (or the one
// being closed at that moment).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include "base/file_io.h"
#include "base/sha256.h"
#include "tests/mount_fixture.h"

namespace recall {
namespace {
namespace fs = std::filesystem;
using test::MountedLibrary;

// Every object in the store is the content of some file: what a crash left
// stored but never recorded (a commit cut between its two phases, bytes
// being removed) is gone after the remount. (The empty blob may stay.)
void expect_no_unreferenced_objects(MountedLibrary& m) {
  std::unique_ptr<Catalog> catalog = m.catalog();
  for (const fs::path& object : test::files_under(m.data() / "cas/objects")) {
    std::string sha = object.filename().string();
    if (sha == kEmptySha256) continue;
    EXPECT_FALSE(catalog->assets_with_blob(sha).empty()) << "no file has the bytes of " << sha;
  }
}

// kill -9 of the daemon while `cp` copies many files: after a remount every
// file whose copy finished is there and complete, and no file is half there.
TEST(MountCrash, KillingTheDaemonMidCopyLosesNoFinishedFileAndLeavesNoHalfFile) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  fs::path src = m.tmp() / "src";
  fs::create_directories(src);
  std::mt19937_64 rng(9);
  std::map<std::string, std::string> sources;
  for (int i = 0; i < 300; ++i) {
    std::string name = "file" + std::to_string(i) + ".bin";
    sources[name] = test::random_bytes(rng, 50000 + rng() % 400000);
    test::write_file(src / name, sources[name]);
  }
  // Each line of done.log names a file whose cp returned 0.
  pid_t pid;
  std::string script =
      "cd \"$MNT\" && for f in \"$TMP\"/src/*; do cp \"$f\" inbox/ 2>/dev/null && "
      "basename \"$f\" >> \"$TMP/done.log\"; done";
  std::string env_mnt = "MNT=" + m.mnt().string(), env_tmp = "TMP=" + m.tmp().string();
  const char* argv[] = {"/bin/bash", "-c", script.c_str(), nullptr};
  const char* envp[] = {env_mnt.c_str(), env_tmp.c_str(), "PATH=/usr/bin:/bin", nullptr};
  ASSERT_EQ(posix_spawn(&pid, "/bin/bash", nullptr, nullptr, const_cast<char**>(argv),
                        const_cast<char**>(envp)),
            0);
  ASSERT_TRUE(test::eventually([&] { return test::lines_of(m.tmp() / "done.log").size() >= 60; },
                               std::chrono::seconds(60)))
      << "the copy did not get going";
  m.kill_daemon();
  int status;
  ::waitpid(pid, &status, 0);

  std::vector<std::string> done = test::lines_of(m.tmp() / "done.log");
  ASSERT_GE(done.size(), 60u);
  m.mount();
  std::set<std::string> present;
  for (const fs::path& p : test::files_under(m / "inbox")) {
    std::string name = p.filename().string();
    present.insert(name);
    ASSERT_TRUE(sources.count(name)) << "unexpected file " << name;
    EXPECT_TRUE(test::read_file(p) == sources[name]) << name << " is present but not complete";
  }
  for (const std::string& name : done)
    EXPECT_TRUE(present.count(name)) << name << " was copied but is gone";
  EXPECT_LE(present.size(), done.size() + 1) << "files whose copy never finished are present";
  // And the store agrees with its bytes.
  auto verify = m.recallfs({"verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  expect_no_unreferenced_objects(m);
}
// Every close() that returned 0 survives kill -9, whatever it closed: a
// truncation alone (`: > file`, ftruncate with no write) as well as
// written bytes. The closes tried here are of one of two descriptors of the
// same open file, so the kernel's release (which comes after the last one)
// has not arrived when the daemon dies.
TEST(MountCrash, EveryCloseThatReturnedSurvivesAKill) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  test::write_file(m / "inbox/emptied.txt", "content before O_TRUNC");
  test::write_file(m / "inbox/shortened.txt", "0123456789");
  test::write_file(m / "inbox/rewritten.txt", "content before the write");
  auto close_one_of_two = [&](const std::string& name, int flags, auto&& edit) {
    int fd = ::open((m / ("inbox/" + name)).c_str(), flags);
    EXPECT_GE(fd, 0) << name << ": " << std::strerror(errno);
    edit(fd);
    int other = ::dup(fd);
    EXPECT_EQ(::close(fd), 0) << name << ": " << std::strerror(errno);
    return other;
  };
  int a = close_one_of_two("emptied.txt", O_WRONLY | O_TRUNC, [](int) {});
  int b =
      close_one_of_two("shortened.txt", O_WRONLY, [](int fd) { EXPECT_EQ(::ftruncate(fd, 4), 0); });
  int c = close_one_of_two("rewritten.txt", O_WRONLY | O_TRUNC,
                           [](int fd) { EXPECT_EQ(::write(fd, "new", 3), 3); });
  m.kill_daemon();
  for (int fd : {a, b, c}) ::close(fd);  // (the mount is gone: their errors are no matter)

  m.mount();
  EXPECT_EQ(test::read_file(m / "inbox/emptied.txt"), "");
  EXPECT_EQ(test::read_file(m / "inbox/shortened.txt"), "0123");
  EXPECT_EQ(test::read_file(m / "inbox/rewritten.txt"), "new");
  auto verify = m.recallfs({"verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

// A truncation note belongs to the open file it was written for: when that
// file is replaced (here an editor's save puts the old bytes back, an
// "undo" of `: > f`), the note must not empty the file after a crash.
TEST(MountCrash, ATruncationNoteGoesWithTheFileItWasWrittenFor) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  const std::string before = "the content of f before `: > f`";
  test::write_file(m / "inbox/f.txt", before);
  int writer = ::open((m / "inbox/f.txt").c_str(), O_WRONLY);  // stays open
  ASSERT_GE(writer, 0) << std::strerror(errno);
  int emptier = ::open((m / "inbox/f.txt").c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(emptier, 0) << std::strerror(errno);
  ASSERT_EQ(::close(emptier), 0);  // noted: the writer keeps the file open
  test::write_file(m / "inbox/.f.txt.tmp", before);
  ASSERT_EQ(::rename((m / "inbox/.f.txt.tmp").c_str(), (m / "inbox/f.txt").c_str()), 0);
  m.kill_daemon();
  ::close(writer);
  m.mount();
  EXPECT_EQ(test::read_file(m / "inbox/f.txt"), before);
}

// A note is applied at the next mount even when the disk is full then (it
// needs no space: its bytes are stored), and a truncation never closed is
// not applied.
TEST(MountCrash, ATruncationNoteIsAppliedOnAFullDisk) {
  RECALL_REQUIRE_FUSE();
  test::SmallDisk small;
  if (!small.error().empty()) GTEST_SKIP() << small.error();
  MountedLibrary m(small / "data");
  std::mt19937_64 rng(3);
  std::string bytes = test::random_bytes(rng, 8 << 20);
  test::write_file(m / "inbox/f.bin", bytes);
  int fd = ::open((m / "inbox/f.bin").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(::ftruncate(fd, 7 << 20), 0);
  int other = ::dup(fd);
  ASSERT_EQ(::close(fd), 0);            // 7 MiB: noted
  ASSERT_EQ(::ftruncate(other, 0), 0);  // never closed
  m.kill_daemon();
  ::close(other);
  {  // the disk full but for 2 MiB: less than the file, enough to open the library
    std::string mib(1 << 20, 'x');
    UniqueFd filler = open_file(small / "filler", O_WRONLY | O_CREAT, 0644);
    for (;;) {
      struct statvfs v {};
      ASSERT_EQ(::statvfs(small.path().c_str(), &v), 0);
      if (v.f_bavail * v.f_frsize < (3u << 20)) break;
      ASSERT_EQ(::write(filler.get(), mib.data(), mib.size()), ssize_t(mib.size()));
    }
  }
  m.mount();
  std::string has = test::read_file(m / "inbox/f.bin");
  EXPECT_EQ(has.size(), 7u << 20);
  EXPECT_TRUE(has == bytes.substr(0, 7 << 20));
}

// A folder as the model sees it: name -> bytes.
using Folder = std::map<std::string, std::string>;

// What the editor has done: the folder after its last finished operation,
// and after the one under way.
class EditLog {
 public:
  explicit EditLog(Folder initial) : closed_(std::move(initial)) {}
  void begin(Folder next) {
    std::lock_guard lock(mu_);
    under_way_ = std::move(next);
  }
  void done() {
    std::lock_guard lock(mu_);
    closed_ = std::move(*under_way_);
    under_way_.reset();
    ++count_;
  }
  // After a remount: the folder as found (one of the two).
  void settle(Folder now) {
    std::lock_guard lock(mu_);
    closed_ = std::move(now);
    under_way_.reset();
  }
  size_t count() {
    std::lock_guard lock(mu_);
    return count_;
  }
  void failed(const std::string& what) {
    std::lock_guard lock(mu_);
    if (failure_.empty()) failure_ = what;
  }
  std::string failure() {
    std::lock_guard lock(mu_);
    return std::exchange(failure_, "");
  }
  Folder closed() {
    std::lock_guard lock(mu_);
    return closed_;
  }
  std::optional<Folder> under_way() {
    std::lock_guard lock(mu_);
    return under_way_;
  }

 private:
  std::mutex mu_;
  Folder closed_;
  std::optional<Folder> under_way_;
  size_t count_ = 0;
  std::string failure_;
};

// One random operation on the folder `dir` (which holds `now`) through the
// mount: an edit of a file's bytes (rewrite, append, patch in the middle,
// truncate alone, `: > file`, save by rename over as editors do), or a
// change of names (a new file, rm, mv to a new name, mv over another file).
// False when a system call failed (the daemon is gone).
bool operate_once(const fs::path& dir, const Folder& now, std::mt19937_64& rng, EditLog& log) {
  auto pick = [&] {
    auto it = now.begin();
    std::advance(it, static_cast<long>(rng() % now.size()));
    return it->first;
  };
  auto new_name = [&] {
    for (;;) {
      std::string name = "n" + std::to_string(rng() % 100000) + ".bin";
      if (!now.count(name)) return name;
    }
  };
  std::string file = now.empty() ? new_name() : pick();
  std::string path = (dir / file).string();
  // The first call that failed, with its error, for the test's message.
  auto failed = [&](const std::string& call) {
    log.failed(call + " " + file + ": " + std::strerror(errno));
    return false;
  };
  auto write_all = [&](int fd, const std::string& bytes, off_t at) {
    for (size_t done = 0; done < bytes.size();) {
      size_t n = std::min<size_t>(bytes.size() - done, 64 << 10);
      ssize_t w = ::pwrite(fd, bytes.data() + done, n, at + static_cast<off_t>(done));
      if (w <= 0) return failed("pwrite");
      done += static_cast<size_t>(w);
    }
    return true;
  };
  auto opened = [&](int result) { return result >= 0 || failed("open"); };
  Folder next = now;
  int fd = -1;
  bool ok = true;
  unsigned op = rng() % 10;
  if (now.size() < 3) op = 6;  // a new file
  if (now.size() > 10 && op == 6) op = 7;
  switch (op) {
    case 0:  // rewrite
      next[file] = test::random_bytes(rng, rng() % (300 << 10));
      log.begin(next);
      fd = ::open(path.c_str(), O_WRONLY | O_TRUNC);
      ok = opened(fd) && write_all(fd, next[file], 0);
      break;
    case 1: {  // append
      std::string more = test::random_bytes(rng, 1 + rng() % (40 << 10));
      next[file] += more;
      log.begin(next);
      fd = ::open(path.c_str(), O_WRONLY | O_APPEND);
      ok = opened(fd) &&
           (::write(fd, more.data(), more.size()) == static_cast<ssize_t>(more.size()) ||
            failed("write"));
      break;
    }
    case 2: {  // patch in the middle
      std::string& bytes = next[file];
      size_t at = bytes.empty() ? 0 : rng() % bytes.size();
      std::string patch = test::random_bytes(rng, 1 + rng() % 5000);
      if (bytes.size() < at + patch.size()) bytes.resize(at + patch.size());
      bytes.replace(at, patch.size(), patch);
      log.begin(next);
      fd = ::open(path.c_str(), O_WRONLY);
      ok = opened(fd) && write_all(fd, patch, static_cast<off_t>(at));
      break;
    }
    case 3: {  // truncate alone, shorter or longer
      size_t size = rng() % (next[file].size() + 1000);
      next[file].resize(size, '\0');
      log.begin(next);
      fd = ::open(path.c_str(), O_WRONLY);
      ok = opened(fd) && (::ftruncate(fd, static_cast<off_t>(size)) == 0 || failed("ftruncate"));
      break;
    }
    case 4:  // `: > file`
      next[file].clear();
      log.begin(next);
      fd = ::open(path.c_str(), O_WRONLY | O_TRUNC);
      ok = opened(fd);
      break;
    case 5: {  // save by rename over (editors)
      next[file] = test::random_bytes(rng, rng() % (100 << 10));
      log.begin(next);
      std::string tmp = (dir / ("." + file + ".tmp")).string();
      fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ok = opened(fd) && write_all(fd, next[file], 0);
      if (fd >= 0 && ::close(fd) != 0) ok = failed("close");
      fd = -1;
      ok = ok && (::rename(tmp.c_str(), path.c_str()) == 0 || failed("rename"));
      break;
    }
    case 6: {  // a new file
      file = new_name();
      path = (dir / file).string();
      next[file] = test::random_bytes(rng, rng() % (200 << 10));
      log.begin(next);
      fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
      ok = opened(fd) && write_all(fd, next[file], 0);
      break;
    }
    case 7:  // rm
      next.erase(file);
      log.begin(next);
      ok = ::unlink(path.c_str()) == 0 || failed("unlink");
      break;
    case 8:
    case 9: {  // mv to a new name, or over another file
      std::string to = op == 8 || now.size() < 2 ? new_name() : pick();
      if (to == file) to = new_name();
      next[to] = next[file];
      next.erase(file);
      log.begin(next);
      ok = ::rename(path.c_str(), (dir / to).c_str()) == 0 || failed("rename");
      break;
    }
  }
  if (fd >= 0 && ::close(fd) != 0) ok = failed("close");
  if (ok) log.done();
  return ok;
}

// The folder as the mount shows it (editors' dot files aside: a save cut
// short leaves its temp file, as on a local disk).
Folder folder_in(const fs::path& dir) {
  Folder out;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::string name = e.path().filename().string();
    if (!name.starts_with(".")) out[name] = test::read_file(e.path());
  }
  return out;
}

std::string differences(const Folder& has, const Folder& want) {
  std::string out;
  for (const auto& [name, bytes] : want) {
    auto it = has.find(name);
    if (it == has.end())
      out += " " + name + " missing;";
    else if (it->second != bytes)
      out += " " + name + " has " + std::to_string(it->second.size()) + " bytes, not " +
             std::to_string(bytes.size()) + ";";
  }
  for (const auto& [name, bytes] : has)
    if (!want.count(name)) out += " " + name + " should not be there;";
  return out;
}

// Operations of every kind an app makes in a folder, one after another,
// with the daemon killed at a random moment: after a remount the folder is
// as the last finished operation left it, or as the one under way would
// have: every file whole, no name half-moved, nothing older. Three rounds,
// each killed after a different number of operations.
TEST(MountCrash, KillingTheDaemonDuringEditsLeavesEachFolderAsBeforeOrAfterAnOperation) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  const char* seed = std::getenv("RECALL_CRASH_SEED");  // (to try others)
  std::mt19937_64 rng(seed ? std::stoull(seed) : 17);
  fs::path dir = m / "works/edits";
  ASSERT_EQ(::mkdir(dir.c_str(), 0755), 0);
  Folder initial;
  for (int i = 0; i < 6; ++i) {
    std::string name = "f" + std::to_string(i) + ".bin";
    initial[name] = test::random_bytes(rng, rng() % (200 << 10));
    test::write_file(dir / name, initial[name]);
  }
  EditLog log(initial);
  for (int round = 0; round < 3; ++round) {
    size_t kill_after = log.count() + 20 + rng() % 150;
    std::atomic<bool> stop = false;
    std::mt19937_64 editor_rng(rng());
    std::thread editor([&] {
      while (!stop)
        if (!operate_once(dir, log.closed(), editor_rng, log)) return;
    });
    bool got_going =
        test::eventually([&] { return log.count() >= kill_after; }, std::chrono::seconds(60));
    m.kill_daemon();
    stop = true;
    editor.join();
    std::string failure = log.failure();
    ASSERT_TRUE(got_going) << "round " << round << ": only " << log.count()
                           << " operations; the editor stopped at: " << failure
                           << "\nthe daemon's log:\n"
                           << test::read_file(m.data() / "recallfs.log");
    m.mount();
    Folder has = folder_in(dir);
    Folder finished = log.closed();
    std::optional<Folder> under_way = log.under_way();
    ASSERT_TRUE(has == finished || (under_way && has == *under_way))
        << "round " << round << ", after " << log.count() << " operations; against the last "
        << "finished:" << differences(has, finished)
        << (under_way ? "; against the one under way:" + differences(has, *under_way) : "");
    log.settle(has);  // what the next round starts from
  }
  auto verify = m.recallfs({"verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  expect_no_unreferenced_objects(m);
}

}  // namespace
}  // namespace recall
