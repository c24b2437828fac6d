// Several threads apply random operations to one folder of the mount at
// once, as apps running side by side do: writes, appends, writes in the
// middle, truncations, renames (over other files and folders too), links,
// removals, folders, reads, fsyncs, listings and attribute reads, on a few
// shared names, some through descriptors kept open across operations.
//
// Races have no single right outcome, so there is no reference model here
// (tests/mount_model_test.cpp is the sequential one). What must hold:
//   * every failure is one a local disk gives for that call (ENOENT,
//     EEXIST, ENOTEMPTY, ...), never EIO or a hang;
//   * afterwards reads agree with the catalog (within seconds: other names
//     of a hard-linked file learn of a change asynchronously), `recallfs
//     verify` finds no damage, and every file reads back the same after a
//     remount (its last close was durable), and no object stays that no
//     file has (a leak of stored bytes).
//
// Seeded (RECALL_STRESS_SEED, default 1; RECALL_STRESS_OPS per thread).
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "base/sha256.h"
#include "base/sqlite.h"
#include "tests/mount_fixture.h"

namespace recall {
namespace {
namespace fs = std::filesystem;
using test::MountedLibrary;

const char* const kFiles[] = {"a", "b", "c", "d"};
const char* const kDirs[] = {"", "d1/", "d2/", "d1/d2/"};

uint64_t env_or(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::stoull(v) : fallback;
}

class Stress {
 public:
  Stress(fs::path root, uint64_t seed) : root_(std::move(root)), seed_(seed) {}

  // One worker: `ops` random operations; returns a description of the first
  // unexpected failure, or "".
  std::string run(int worker, uint64_t ops) {
    std::mt19937_64 rng(seed_ * 1000 + static_cast<uint64_t>(worker));
    std::vector<int> held;  // descriptors kept open across operations
    std::string bad;
    for (uint64_t i = 0; i < ops && bad.empty(); ++i) {
      bad = step(rng, held);
      progress_++;
    }
    for (int fd : held) ::close(fd);  // (a close may fail: a write through it did)
    return bad;
  }
  uint64_t progress() const { return progress_.load(); }

 private:
  std::string file(std::mt19937_64& rng) {
    return (root_ / (std::string(kDirs[rng() % 4]) + kFiles[rng() % 4])).string();
  }
  std::string dir(std::mt19937_64& rng) {
    static const char* const dirs[] = {"d1", "d2", "d1/d2", "d2/d1"};
    return (root_ / dirs[rng() % 4]).string();
  }
  static std::string bytes(std::mt19937_64& rng, size_t n) {
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>('a' + rng() % 26);
    return s;
  }

  // What a local disk may answer to each kind of call.
  static bool allowed(const std::string& op, int e) {
    static const std::map<std::string, std::set<int>> ok = {
        {"open", {ENOENT, EISDIR, ENOTDIR}},
        {"read", {}},
        {"write", {}},
        {"fsync", {}},
        {"close", {}},
        {"ftruncate", {}},
        {"truncate", {ENOENT, EISDIR, ENOTDIR}},
        {"rename", {ENOENT, EISDIR, ENOTDIR, ENOTEMPTY, EEXIST, EINVAL}},
        {"link", {ENOENT, EEXIST, EPERM, ENOTDIR}},
        {"unlink", {ENOENT, EISDIR, ENOTDIR}},
        {"mkdir", {ENOENT, EEXIST, ENOTDIR}},
        {"rmdir", {ENOENT, ENOTEMPTY, ENOTDIR}},
        {"stat", {ENOENT, ENOTDIR}},
        {"opendir", {ENOENT, ENOTDIR}},
        {"getxattr", {ENOENT, ENOTDIR, ENODATA}},
    };
    auto it = ok.find(op);
    return it != ok.end() && it->second.contains(e);
  }
  static std::string failed(const std::string& op, const std::string& what, int e) {
    return allowed(op, e) ? "" : op + " " + what + ": " + std::strerror(e);
  }

  std::string step(std::mt19937_64& rng, std::vector<int>& held) {
    switch (rng() % 15) {
      case 0:
      case 1: {  // rewrite a file (O_TRUNC), as most apps save
        std::string p = file(rng);
        int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) return failed("open", p, errno);
        std::string data = bytes(rng, rng() % 70000);
        std::string bad;
        if (::write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size()))
          bad = failed("write", p, errno);
        if (bad.empty() && rng() % 4 == 0 && ::fsync(fd) != 0) bad = failed("fsync", p, errno);
        if (::close(fd) != 0 && bad.empty()) bad = failed("close", p, errno);
        return bad;
      }
      case 2: {  // append, or write in the middle
        std::string p = file(rng);
        bool append = rng() % 2;
        int fd = ::open(p.c_str(), append ? O_WRONLY | O_APPEND : O_RDWR);
        if (fd < 0) return failed("open", p, errno);
        std::string data = bytes(rng, 1 + rng() % 5000);
        std::string bad;
        if (::pwrite(fd, data.data(), data.size(), static_cast<off_t>(rng() % 40000)) < 0)
          bad = failed("write", p, errno);
        if (::close(fd) != 0 && bad.empty()) bad = failed("close", p, errno);
        return bad;
      }
      case 3: {  // read it whole
        std::string p = file(rng);
        int fd = ::open(p.c_str(), O_RDONLY);
        if (fd < 0) return failed("open", p, errno);
        char buf[65536];
        std::string bad;
        for (;;) {
          ssize_t n = ::read(fd, buf, sizeof buf);
          if (n < 0) bad = failed("read", p, errno);
          if (n <= 0) break;
        }
        ::close(fd);
        return bad;
      }
      case 4:
        if (::truncate(file(rng).c_str(), static_cast<off_t>(rng() % 50000)) != 0)
          return failed("truncate", "", errno);
        return "";
      case 5:
      case 6: {  // rename a file, over another sometimes
        std::string a = file(rng), b = file(rng);
        if (::rename(a.c_str(), b.c_str()) != 0) return failed("rename", a + " -> " + b, errno);
        return "";
      }
      case 7: {  // rename a folder
        std::string a = dir(rng), b = dir(rng);
        if (::rename(a.c_str(), b.c_str()) != 0) return failed("rename", a + " -> " + b, errno);
        return "";
      }
      case 8: {
        std::string a = file(rng), b = file(rng);
        if (::link(a.c_str(), b.c_str()) != 0) return failed("link", a + " -> " + b, errno);
        return "";
      }
      case 9:
        if (::unlink(file(rng).c_str()) != 0) return failed("unlink", "", errno);
        return "";
      case 10: {
        std::string d = dir(rng);
        bool make = rng() % 2;
        if (make ? ::mkdir(d.c_str(), 0755) != 0 : ::rmdir(d.c_str()) != 0)
          return failed(make ? "mkdir" : "rmdir", d, errno);
        return "";
      }
      case 11: {  // list a folder and stat what it shows
        std::string d = rng() % 2 ? root_.string() : dir(rng);
        DIR* dp = ::opendir(d.c_str());
        if (!dp) return failed("opendir", d, errno);
        std::string bad;
        while (dirent* e = ::readdir(dp)) {
          std::string n = e->d_name;
          if (n == "." || n == "..") continue;
          struct stat st {};
          if (::stat((d + "/" + n).c_str(), &st) != 0 && bad.empty())
            bad = failed("stat", d + "/" + n, errno);
          char v[128];
          if (S_ISREG(st.st_mode) &&
              ::getxattr((d + "/" + n).c_str(), "user.recall.sha256", v, sizeof v) < 0 &&
              bad.empty())
            bad = failed("getxattr", d + "/" + n, errno);
        }
        ::closedir(dp);
        return bad;
      }
      default: {  // descriptors kept open: open one, or use or close one
        if (held.size() < 2 && rng() % 3 == 0) {
          std::string p = file(rng);
          int fd = ::open(p.c_str(), rng() % 2 ? O_RDWR : O_RDONLY);
          if (fd < 0) return failed("open", p, errno);
          held.push_back(fd);
          return "";
        }
        if (held.empty()) return "";
        size_t k = rng() % held.size();
        int fd = held[k];
        int flags = ::fcntl(fd, F_GETFL);
        bool writable = (flags & O_ACCMODE) == O_RDWR;
        switch (rng() % 4) {
          case 0:
            if (writable) {
              std::string data = bytes(rng, 1 + rng() % 3000);
              if (::pwrite(fd, data.data(), data.size(), static_cast<off_t>(rng() % 20000)) < 0)
                return failed("write", "held", errno);
            }
            return "";
          case 1: {
            char buf[8192];
            if (::pread(fd, buf, sizeof buf, static_cast<off_t>(rng() % 20000)) < 0)
              return failed("read", "held", errno);
            return "";
          }
          case 2:
            if (writable && ::ftruncate(fd, static_cast<off_t>(rng() % 20000)) != 0)
              return failed("ftruncate", "held", errno);
            return "";
          default:
            held.erase(held.begin() + static_cast<long>(k));
            if (::close(fd) != 0) return failed("close", "held", errno);
            return "";
        }
      }
    }
  }

  fs::path root_;
  uint64_t seed_;
  std::atomic<uint64_t> progress_{0};
};

// Every regular file under `dir`, relative path -> content.
std::map<std::string, std::string> contents(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const fs::path& p : test::files_under(dir))
    out[fs::relative(p, dir).string()] = test::read_file(p);
  return out;
}

TEST(MountStress, ThreadsRacingOnOneFolderGetLocalDiskAnswersAndLoseNoClosedFile) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  const uint64_t seed = env_or("RECALL_STRESS_SEED", 1);
  const uint64_t ops = env_or("RECALL_STRESS_OPS", 1500);
  ASSERT_EQ(::mkdir((m / "works/S").c_str(), 0755), 0);
  Stress stress(m / "works/S", seed);
  std::vector<std::string> bad(4);
  std::atomic<int> running{4};
  {
    std::vector<std::jthread> workers;
    for (int w = 0; w < 4; ++w)
      workers.emplace_back([&, w] {
        bad[static_cast<size_t>(w)] = stress.run(w, ops);
        running--;
      });
    // A hang is a failure, not a stuck suite: no progress for 60 s ends it.
    uint64_t seen = 0;
    auto last = std::chrono::steady_clock::now();
    while (running > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a watchdog's pace
      if (stress.progress() != seen) {
        seen = stress.progress();
        last = std::chrono::steady_clock::now();
      } else if (std::chrono::steady_clock::now() - last > std::chrono::seconds(60)) {
        ADD_FAILURE() << "no operation finished for 60 s (seed " << seed << ")";
        m.kill_daemon();  // reports the daemon's stacks; ends the stuck calls
        return;
      }
    }
  }
  for (size_t w = 0; w < bad.size(); ++w)
    EXPECT_EQ(bad[w], "") << "worker " << w << ", seed " << seed;

  // What the catalog holds for each name, once what the workers' last closes
  // started has settled: the kernel is told of a change made through another
  // name (a hard link) asynchronously, so reads agree with the catalog within
  // seconds, not at once.
  auto recorded_now = [&] {
    std::map<std::string, std::string> out;
    for (const auto& [name, content] : contents(m / "works/S"))
      out[name] =
          m.shell("getfattr --only-values -n user.recall.sha256 'works/S/" + name + "'").out;
    return out;
  };
  auto read_now = [&] {
    std::map<std::string, std::string> out;
    for (const auto& [name, content] : contents(m / "works/S"))
      out[name] = test::sha256_of(content);
    return out;
  };
  std::map<std::string, std::string> recorded, read;
  EXPECT_TRUE(test::eventually(
      [&] {
        recorded = recorded_now();
        read = read_now();
        return read == recorded;
      },
      std::chrono::seconds(10)))
      << "reads do not agree with the catalog (seed " << seed << "):" << [&] {
           std::string d;
           for (const auto& [name, sha] : recorded)
             if (read[name] != sha) {
               struct stat st {};
               ::stat((m / ("works/S/" + name)).c_str(), &st);
               d += "\n  " + name + ": read " + read[name] + ", catalog " + sha + ", nlink " +
                    std::to_string(st.st_nlink) + ", size " + std::to_string(st.st_size);
             }
           return d;
         }();
  m.unmount();
  m.mount();
  // Every closed file is as the catalog said before the remount.
  std::map<std::string, std::string> after = read_now();
  EXPECT_EQ(after, recorded) << "seed " << seed;
  test::RunResult verify = m.recallfs({"verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  std::unique_ptr<Catalog> catalog = m.catalog();
  bool leaked = false;
  for (const fs::path& object : test::files_under(m.data() / "cas/objects")) {
    std::string sha = object.filename().string();
    if (sha == kEmptySha256 || !catalog->assets_with_blob(sha).empty()) continue;
    ADD_FAILURE() << "no file has the bytes of " << sha << " (" << fs::file_size(object)
                  << " bytes; seed " << seed << ")";
    leaked = true;
  }
  if (leaked && fs::exists(m.data() / "recallfs.log"))
    std::cerr << "the daemon's log:\n" << test::read_file(m.data() / "recallfs.log");
  if (leaked) {  // the history of the leaked bytes' files, from the outbox
    Db db = Db::open(m.data() / "catalog.db", {.read_only = true});
    Stmt q = db.prepare("SELECT seq, tbl, op, row_id, payload FROM outbox ORDER BY seq");
    while (q.step())
      std::cerr << q.int64(0) << " " << q.text(1) << " " << q.text(2) << " " << q.text(3) << " "
                << q.text(4) << "\n";
  }
}

}  // namespace
}  // namespace recall
