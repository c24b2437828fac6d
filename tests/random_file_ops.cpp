#include "tests/random_file_ops.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <thread>

namespace recall::test {
namespace {
namespace fs = std::filesystem;

const char* const kFiles[] = {"a", "b", "c", "d"};
// Where files are, and the folders made, renamed and removed: in one work's
// folder, or in works/ (no files at its top: that is EPERM).
const char* const kFileDirs[] = {"", "d1/", "d2/", "d1/d2/"};
const char* const kDirs[] = {"d1", "d2", "d1/d2", "d2/d1"};
const char* const kWorkFileDirs[] = {"W0/", "W1/", "W0/d1/", "W2/d1/"};
const char* const kWorkDirs[] = {"W0", "W1", "W2", "W0/d1", "W1/d1", "W2/d1"};

std::string bytes(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>('a' + rng() % 26);
  return s;
}

}  // namespace

RandomFileOps::RandomFileOps(fs::path root, uint64_t seed, Options options)
    : root_(std::move(root)), seed_(seed), options_(options) {}

std::string RandomFileOps::run(int worker, uint64_t ops) {
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

std::string RandomFileOps::file(std::mt19937_64& rng) {
  const char* d = options_.works ? kWorkFileDirs[rng() % 4] : kFileDirs[rng() % 4];
  return (root_ / (std::string(d) + kFiles[rng() % 4])).string();
}

std::string RandomFileOps::dir(std::mt19937_64& rng) {
  return (root_ / (options_.works ? kWorkDirs[rng() % 6] : kDirs[rng() % 4])).string();
}

// What a local disk may answer to each kind of call.
bool RandomFileOps::allowed(const std::string& op, int e) const {
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
  if (options_.remote_bytes && e == EIO && (op == "open" || op == "read" || op == "truncate"))
    return true;
  auto it = ok.find(op);
  return it != ok.end() && it->second.contains(e);
}

std::string RandomFileOps::failed(const std::string& op, const std::string& what, int e) const {
  return allowed(op, e) ? "" : op + " " + what + ": " + std::strerror(e);
}

std::string RandomFileOps::step(std::mt19937_64& rng, std::vector<int>& held) {
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
            ::getxattr((d + "/" + n).c_str(), "user.recall.sha256", v, sizeof v) < 0 && bad.empty())
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

RaceOutcome race(const std::vector<RandomFileOps*>& sets, int threads, uint64_t ops,
                 std::chrono::seconds stall, const std::function<void()>& on_hang) {
  RaceOutcome out;
  out.failures.resize(sets.size() * static_cast<size_t>(threads));
  std::atomic<size_t> running{out.failures.size()};
  auto progress = [&] {
    uint64_t n = 0;
    for (RandomFileOps* s : sets) n += s->progress();
    return n;
  };
  std::vector<std::jthread> workers;
  for (size_t k = 0; k < out.failures.size(); ++k)
    workers.emplace_back([&, k] {
      out.failures[k] = sets[k / static_cast<size_t>(threads)]->run(
          static_cast<int>(k % static_cast<size_t>(threads)), ops);
      running--;
    });
  uint64_t seen = 0;
  auto last = std::chrono::steady_clock::now();
  while (running > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a watchdog's pace
    if (progress() != seen) {
      seen = progress();
      last = std::chrono::steady_clock::now();
    } else if (std::chrono::steady_clock::now() - last > stall) {
      out.hung = true;
      on_hang();
      break;
    }
  }
  workers.clear();  // joins (stuck calls end once on_hang has killed the daemons)
  return out;
}

}  // namespace recall::test
