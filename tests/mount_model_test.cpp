// A reference model: random operations (create, write at offsets, truncate,
// rename, link, unlink, mkdir, rmdir) applied to a folder of the mount and
// to a plain temp directory. Results, errno, listings and contents must
// agree. Seeded and reproducible: a failure prints the seed and the step.
//
// One deliberate difference from POSIX is modelled, not avoided: renaming a
// file over another makes the target's asset take the source's content (an
// editor's atomic save keeps the asset id), so names hard-linked to the
// target show the new content too, and names linked to the source are no
// longer linked to it (they stay linked among themselves). The model applies
// the same rule to the plain directory after each such rename.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <iterator>
#include <map>
#include <random>
#include <sstream>

#include "tests/mount_fixture.h"

namespace recall {
namespace {
namespace fs = std::filesystem;
using test::MountedLibrary;

const char* const kNames[] = {"a", "b", "c d", "-x", "\xc3\xa9t\xc3\xa9", "d1", "d2", "e"};
const char* const kDirs[] = {"", "d1", "d2", "d1/d2", "d2/d1", "e"};

struct Outcome {
  long rc;
  int err;
  bool operator==(const Outcome&) const = default;
};

std::string describe(const Outcome& o) {
  return "rc=" + std::to_string(o.rc) +
         (o.rc < 0 ? std::string(" errno=") + strerrorname_np(o.err) : "");
}

Outcome call(long rc) { return {rc < 0 ? -1 : rc, rc < 0 ? errno : 0}; }

// Writes `data` at `off` into `path` (creating it when asked), closing the file.
Outcome write_file_at(const std::string& path, const std::string& data, off_t off, bool create) {
  int fd = ::open(path.c_str(), O_WRONLY | (create ? O_CREAT | O_TRUNC : 0), 0644);
  if (fd < 0) return call(-1);
  ssize_t n = ::pwrite(fd, data.data(), data.size(), off);
  int werr = errno;
  int c = ::close(fd);
  if (n < 0) return {-1, werr};
  if (c != 0) return call(-1);
  return {n, 0};
}

std::optional<std::string> slurp(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  return out;
}

// Every entry under `root`: "d name/" for directories, "f name <sha> <first
// name of the same file>" for files, so that link structure is compared too.
std::vector<std::string> snapshot(const fs::path& root) {
  std::vector<std::string> out;
  std::map<ino_t, std::string> first_name;
  std::vector<std::pair<std::string, ino_t>> files;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    std::string rel = fs::relative(it->path(), root).string();
    if (it->is_directory()) {
      out.push_back("d " + rel + "/");
      continue;
    }
    struct stat st;
    ::lstat(it->path().c_str(), &st);
    files.emplace_back(rel, st.st_ino);
    auto [f, fresh] = first_name.emplace(st.st_ino, rel);
    if (!fresh && rel < f->second) f->second = rel;
  }
  for (const auto& [rel, ino] : files)
    out.push_back("f " + rel + " " + test::sha256_of(*slurp((root / rel).string())).substr(0, 12) +
                  " " + first_name[ino]);
  std::sort(out.begin(), out.end());
  return out;
}

// Other names of the file at `path` inside `root` (same inode).
std::vector<fs::path> other_links(const fs::path& root, const fs::path& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink < 2) return {};
  std::vector<fs::path> out;
  for (const fs::path& p : test::files_under(root)) {
    struct stat o;
    if (p != path && ::lstat(p.c_str(), &o) == 0 && o.st_ino == st.st_ino) out.push_back(p);
  }
  return out;
}

class Model {
 public:
  Model(fs::path real, fs::path plain, uint64_t seed) : real_(real), plain_(plain), rng_(seed) {}

  // One random operation on both trees; returns what it did, for messages.
  std::string step() {
    std::string a = pick_path(), b = pick_path();
    switch (rng_() % 10) {
      case 0:
      case 1: {
        std::string data = test::random_bytes(rng_, rng_() % 3 == 0 ? 0 : rng_() % 70000);
        compare("create " + a, write_file_at(r(a), data, 0, true),
                write_file_at(p(a), data, 0, true));
        return "create " + a;
      }
      case 2: {
        std::string data = test::random_bytes(rng_, 1 + rng_() % 5000);
        off_t off = static_cast<off_t>(rng_() % 80000);
        compare("write " + a, write_file_at(r(a), data, off, false),
                write_file_at(p(a), data, off, false));
        return "write " + a + " at " + std::to_string(off);
      }
      case 3: {
        off_t len = static_cast<off_t>(rng_() % 90000);
        compare("truncate " + a, call(::truncate(r(a).c_str(), len)),
                call(::truncate(p(a).c_str(), len)));
        return "truncate " + a;
      }
      case 4:
      case 5: {
        std::vector<fs::path> t_links = other_links(plain_, p(b)),
                              s_links = other_links(plain_, p(a));
        // The library's rule applies when a file replaces another file.
        struct stat sa, sb;
        bool file_over_file = ::lstat(p(a).c_str(), &sa) == 0 && S_ISREG(sa.st_mode) &&
                              ::lstat(p(b).c_str(), &sb) == 0 && S_ISREG(sb.st_mode) &&
                              sa.st_ino != sb.st_ino;
        Outcome pr = call(::rename(p(a).c_str(), p(b).c_str()));
        compare("rename " + a + " -> " + b, call(::rename(r(a).c_str(), r(b).c_str())), pr);
        if (pr.rc == 0 && file_over_file) apply_library_rename(b, t_links, s_links);
        return "rename " + a + " -> " + b;
      }
      case 6:
        compare("link " + a + " -> " + b, call(::link(r(a).c_str(), r(b).c_str())),
                call(::link(p(a).c_str(), p(b).c_str())));
        return "link " + a + " " + b;
      case 7:
        compare("unlink " + a, call(::unlink(r(a).c_str())), call(::unlink(p(a).c_str())));
        return "unlink " + a;
      case 8:
        if (rng_() % 2)
          compare("mkdir " + a, call(::mkdir(r(a).c_str(), 0755)),
                  call(::mkdir(p(a).c_str(), 0755)));
        else
          compare("rmdir " + a, call(::rmdir(r(a).c_str())), call(::rmdir(p(a).c_str())));
        return "mkdir/rmdir " + a;
      default: {
        auto x = slurp(r(a)), y = slurp(p(a));
        EXPECT_EQ(x.has_value(), y.has_value()) << "read " << a;
        if (x && y) {
          EXPECT_TRUE(*x == *y) << "contents of " << a << " differ";
        }
        return "read " + a;
      }
    }
  }

  void compare_trees() {
    std::vector<std::string> real = snapshot(real_), plain = snapshot(plain_);
    if (real == plain) return;
    std::vector<std::string> only_real, only_plain;
    std::set_difference(real.begin(), real.end(), plain.begin(), plain.end(),
                        std::back_inserter(only_real));
    std::set_difference(plain.begin(), plain.end(), real.begin(), real.end(),
                        std::back_inserter(only_plain));
    std::string msg = "trees differ\nonly on the mount:\n";
    for (const auto& l : only_real) msg += "  " + l + "\n";
    msg += "only in the plain directory:\n";
    for (const auto& l : only_plain) msg += "  " + l + "\n";
    ADD_FAILURE() << msg;
  }

  // Which names share a file, on both sides: for failure messages.
  std::string links_report() {
    std::string out = "plain (inode, size):\n";
    for (const fs::path& f : test::files_under(plain_)) {
      struct stat st;
      ::lstat(f.c_str(), &st);
      out += "  " + fs::relative(f, plain_).string() + " ino=" + std::to_string(st.st_ino) +
             " size=" + std::to_string(st.st_size) + "\n";
    }
    out += "mount (inode, size):\n";
    for (const fs::path& f : test::files_under(real_)) {
      struct stat st;
      ::lstat(f.c_str(), &st);
      out += "  " + fs::relative(f, real_).string() + " ino=" + std::to_string(st.st_ino) +
             " size=" + std::to_string(st.st_size) + "\n";
    }
    return out;
  }

 private:
  std::string pick_path() {
    std::string dir = kDirs[rng_() % std::size(kDirs)];
    std::string name = kNames[rng_() % std::size(kNames)];
    return dir.empty() ? name : dir + "/" + name;
  }
  fs::path r(const std::string& rel) const { return real_ / rel; }
  fs::path p(const std::string& rel) const { return plain_ / rel; }

  void compare(const std::string& what, const Outcome& real, const Outcome& plain) {
    EXPECT_EQ(real, plain) << what << ": mount " << describe(real) << ", plain " << describe(plain);
  }

  // See the comment at the top of the file.
  void apply_library_rename(const std::string& target, const std::vector<fs::path>& t_links,
                            const std::vector<fs::path>& s_links) {
    fs::path t = p(target);
    // The source's other names keep the source's file among themselves.
    std::vector<fs::path> rest;
    for (const fs::path& q : s_links)
      if (q != t) rest.push_back(q);
    if (!rest.empty()) {
      std::string content = *slurp(rest[0].string());
      fs::remove(rest[0]);
      test::write_file(rest[0], content);
      for (size_t i = 1; i < rest.size(); ++i) {
        fs::remove(rest[i]);
        fs::create_hard_link(rest[0], rest[i]);
      }
    }
    for (const fs::path& o : t_links) {
      fs::remove(o);
      fs::create_hard_link(t, o);
    }
  }

  fs::path real_, plain_;
  std::mt19937_64 rng_;
};

TEST(MountModel, RandomOperationsAgreeWithAPlainDirectory) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  const uint64_t seed =
      std::getenv("RECALL_MODEL_SEED") ? std::stoull(std::getenv("RECALL_MODEL_SEED")) : 20261121;
  const int steps =
      std::getenv("RECALL_MODEL_STEPS") ? std::stoi(std::getenv("RECALL_MODEL_STEPS")) : 3000;
  ASSERT_EQ(::mkdir((m / "works/Model").c_str(), 0755), 0);
  fs::path plain = m.tmp() / "plain";
  fs::create_directories(plain);
  const int check_every = std::getenv("RECALL_MODEL_CHECK_EVERY")
                              ? std::stoi(std::getenv("RECALL_MODEL_CHECK_EVERY"))
                              : 100;
  Model model(m / "works/Model", plain, seed);
  std::vector<std::string> history;
  for (int i = 1; i <= steps; ++i) {
    std::string what = model.step();
    history.push_back(std::to_string(i) + ": " + what);
    if (history.size() > 100) history.erase(history.begin());
    if (::testing::Test::HasFailure()) {
      std::string h;
      for (const auto& line : history) h += "  " + line + "\n";
      FAIL() << "seed " << seed << ", step " << i << ": " << what << "\nlast steps:\n"
             << h << model.links_report();
    }
    if (i % check_every == 0) {
      model.compare_trees();
      if (::testing::Test::HasFailure()) {
        std::string h;
        for (const auto& line : history) h += "  " + line + "\n";
        FAIL() << "seed " << seed << ", trees differ after step " << i << "\nlast steps:\n"
               << h << model.links_report();
      }
    }
    if (i % 1000 == 0) {  // the library must come back the same
      m.unmount();
      m.mount();
      model.compare_trees();
    }
  }
  model.compare_trees();
  if (std::getenv("RECALL_MODEL_REPORT")) std::cerr << model.links_report();
}

}  // namespace
}  // namespace recall
