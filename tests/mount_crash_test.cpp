// kill -9 of the daemon while files are being written: after a remount,
// every file whose close() (or rename) returned has what it was given, and
// no file shows anything else than a version an app closed (or the one
// being closed at that moment).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
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

#include "tests/mount_fixture.h"

namespace recall {
namespace {
namespace fs = std::filesystem;
using test::MountedLibrary;

std::vector<std::string> lines_of(const fs::path& p) {
  std::vector<std::string> out;
  std::ifstream in(p);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// Every object in the store is the content of some file: what a crash left
// stored but never recorded (a commit cut between its two phases, bytes
// being removed) is gone after the remount.
void expect_no_unreferenced_objects(MountedLibrary& m) {
  std::unique_ptr<Catalog> catalog = m.catalog();
  for (const fs::path& object : test::files_under(m.data() / "cas/objects")) {
    std::string sha = object.filename().string();
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
  ASSERT_TRUE(test::eventually([&] { return lines_of(m.tmp() / "done.log").size() >= 60; },
                               std::chrono::seconds(60)))
      << "the copy did not get going";
  m.kill_daemon();
  int status;
  ::waitpid(pid, &status, 0);

  std::vector<std::string> done = lines_of(m.tmp() / "done.log");
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

// Edits of every kind an app makes to files that exist (rewrite, append,
// patch in the middle, truncate alone, empty with O_TRUNC, save by rename
// over), one after another, with the daemon killed at a random moment: a
// file has the version its last finished edit gave it, or the version of
// the edit under way when the daemon died; never a mix, never an older one.
// Three rounds, each killed after a different number of edits.
class EditLog {
 public:
  explicit EditLog(std::map<std::string, std::string> initial) : closed_(std::move(initial)) {}
  void begin(const std::string& file, const std::string& next) {
    std::lock_guard lock(mu_);
    under_way_ = {file, next};
  }
  void done() {
    std::lock_guard lock(mu_);
    closed_[under_way_->first] = under_way_->second;
    under_way_.reset();
    ++count_;
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
  // What a file may hold after a crash.
  std::vector<std::string> allowed(const std::string& file) {
    std::lock_guard lock(mu_);
    std::vector<std::string> out{closed_.at(file)};
    if (under_way_ && under_way_->first == file) out.push_back(under_way_->second);
    return out;
  }
  std::map<std::string, std::string> closed() {
    std::lock_guard lock(mu_);
    return closed_;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> closed_;
  std::optional<std::pair<std::string, std::string>> under_way_;
  size_t count_ = 0;
  std::string failure_;
};

// One random edit of `file` (whose content is `now`) through the mount;
// false when a system call failed (the daemon is gone).
bool edit_once(const fs::path& dir, const std::string& file, const std::string& now,
               std::mt19937_64& rng, EditLog& log) {
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
  std::string next = now;
  int fd = -1;
  bool ok = true;
  switch (rng() % 6) {
    case 0:  // rewrite
      next = test::random_bytes(rng, rng() % (300 << 10));
      log.begin(file, next);
      fd = ::open(path.c_str(), O_WRONLY | O_TRUNC);
      ok = opened(fd) && write_all(fd, next, 0);
      break;
    case 1: {  // append
      std::string more = test::random_bytes(rng, 1 + rng() % (40 << 10));
      next += more;
      log.begin(file, next);
      fd = ::open(path.c_str(), O_WRONLY | O_APPEND);
      ok = opened(fd) &&
           (::write(fd, more.data(), more.size()) == static_cast<ssize_t>(more.size()) ||
            failed("write"));
      break;
    }
    case 2: {  // patch in the middle
      size_t at = now.empty() ? 0 : rng() % now.size();
      std::string patch = test::random_bytes(rng, 1 + rng() % 5000);
      if (next.size() < at + patch.size()) next.resize(at + patch.size());
      next.replace(at, patch.size(), patch);
      log.begin(file, next);
      fd = ::open(path.c_str(), O_WRONLY);
      ok = opened(fd) && write_all(fd, patch, static_cast<off_t>(at));
      break;
    }
    case 3: {  // truncate alone, shorter or longer
      size_t size = rng() % (now.size() + 1000);
      next.resize(size, '\0');
      log.begin(file, next);
      fd = ::open(path.c_str(), O_WRONLY);
      ok = opened(fd) && (::ftruncate(fd, static_cast<off_t>(size)) == 0 || failed("ftruncate"));
      break;
    }
    case 4:  // `: > file`
      next.clear();
      log.begin(file, next);
      fd = ::open(path.c_str(), O_WRONLY | O_TRUNC);
      ok = opened(fd);
      break;
    case 5: {  // save by rename over (editors)
      next = test::random_bytes(rng, rng() % (100 << 10));
      log.begin(file, next);
      std::string tmp = (dir / ("." + file + ".tmp")).string();
      fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ok = opened(fd) && write_all(fd, next, 0);
      if (fd >= 0 && ::close(fd) != 0) ok = failed("close");
      fd = -1;
      ok = ok && (::rename(tmp.c_str(), path.c_str()) == 0 || failed("rename"));
      break;
    }
  }
  if (fd >= 0 && ::close(fd) != 0) ok = failed("close");
  if (ok) log.done();
  return ok;
}

TEST(MountCrash, KillingTheDaemonDuringEditsKeepsEveryFinishedVersion) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  const char* seed = std::getenv("RECALL_CRASH_SEED");  // (to try others)
  std::mt19937_64 rng(seed ? std::stoull(seed) : 17);
  std::map<std::string, std::string> initial;
  ASSERT_EQ(::mkdir((m / "works/edits").c_str(), 0755), 0);
  for (int i = 0; i < 6; ++i) {
    std::string name = "f" + std::to_string(i) + ".bin";
    initial[name] = test::random_bytes(rng, rng() % (200 << 10));
    test::write_file(m / ("works/edits/" + name), initial[name]);
  }
  EditLog log(initial);
  for (int round = 0; round < 3; ++round) {
    size_t kill_after = log.count() + 20 + rng() % 150;
    std::atomic<bool> stop = false;
    std::mt19937_64 edit_rng(rng());
    std::thread editor([&] {
      std::map<std::string, std::string> now = log.closed();
      std::vector<std::string> names;
      for (const auto& [name, bytes] : now) names.push_back(name);
      while (!stop) {
        const std::string& f = names[edit_rng() % names.size()];
        if (!edit_once(m / "works/edits", f, now[f], edit_rng, log)) return;
        now = log.closed();
      }
    });
    bool got_going =
        test::eventually([&] { return log.count() >= kill_after; }, std::chrono::seconds(60));
    m.kill_daemon();
    stop = true;
    editor.join();
    std::string failure = log.failure();
    ASSERT_TRUE(got_going) << "round " << round << ": only " << log.count()
                           << " edits; the editor stopped at: " << failure
                           << "\nthe daemon's log:\n"
                           << test::read_file(m.data() / "recallfs.log");
    m.mount();
    for (const auto& [name, bytes] : initial) {
      std::string has = test::read_file(m / ("works/edits/" + name));
      std::vector<std::string> allowed = log.allowed(name);
      bool finished = has == allowed[0];
      bool under_way = allowed.size() > 1 && has == allowed[1];
      EXPECT_TRUE(finished || under_way)
          << "round " << round << ": " << name << " has " << has.size() << " bytes, its last "
          << "finished edit left " << allowed[0].size()
          << (allowed.size() > 1 ? " and the one under way " + std::to_string(allowed[1].size())
                                 : std::string());
      // What the file has now is what the next round starts from.
      if (under_way) {
        log.begin(name, has);
        log.done();
      }
    }
    if (HasFailure()) return;
  }
  auto verify = m.recallfs({"verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  expect_no_unreferenced_objects(m);
}

}  // namespace
}  // namespace recall
