// Listings and the kernel's caches on a real mount. The adapter sends no
// OPENDIR, so the kernel keeps each folder's listing cached until a change
// drops it, and READDIRPLUS replies carry files' attributes only for a
// process that stats files: these tests check that what the shell tools see
// is never stale and never wrong, whichever way a listing was served.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/mount_fixture.h"

namespace recall {
namespace {
namespace fs = std::filesystem;
using test::MountedLibrary;

using test::listing;

std::string sha_of_file(MountedLibrary& m, const std::string& rel) {
  return m.shell("getfattr --only-values -n user.recall.sha256 '" + rel + "'").out;
}

// Adds `n` empty files with 200-byte names to work `work` with `recallfs
// add` (fast: one process, no mount), then mounts again; their names.
std::set<std::string> add_long_names(MountedLibrary& m, const std::string& work, int n) {
  fs::path src = m.tmp() / ("src-" + work);
  fs::create_directories(src);
  std::vector<std::string> args = {"add", "--work", work};
  std::set<std::string> names;
  for (int i = 0; i < n; ++i) {
    std::string name = std::to_string(10000 + i) + std::string(195, 'n') + ".txt";
    test::write_file(src / name, "");
    args.push_back((src / name).string());
    names.insert(name);
  }
  m.unmount();
  auto added = m.recallfs(args);
  EXPECT_EQ(added.exit_code, 0) << added.err;
  m.mount();
  return names;
}

TEST(MountListing, CachedListingsFollowEveryChangeMadeHere) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  // Each folder is listed first, so the kernel holds its listing; every
  // change after that must show in the next listing.
  EXPECT_EQ(listing(m / "works"), std::set<std::string>{});
  EXPECT_EQ(listing(m / "blobs"), std::set<std::string>{});
  ASSERT_EQ(::mkdir((m / "works/A").c_str(), 0755), 0);
  EXPECT_EQ(listing(m / "works"), std::set<std::string>{"A"});
  EXPECT_EQ(listing(m / "works/A"), std::set<std::string>{});
  test::write_file(m / "works/A/one.txt", "one");
  test::write_file(m / "works/A/two.txt", "two");
  EXPECT_EQ(listing(m / "works/A"), (std::set<std::string>{"one.txt", "two.txt"}));
  // A new blob appears in blobs/ (the daemon drops that listing itself).
  std::string one = sha_of_file(m, "works/A/one.txt"), two = sha_of_file(m, "works/A/two.txt");
  ASSERT_EQ(one.size(), 64u);
  EXPECT_TRUE(test::eventually(
      [&] {
        return listing(m / "blobs") == std::set<std::string>{one, two};
      },
      std::chrono::seconds(3)))
      << "blobs/ does not list the blobs just stored";
  ASSERT_EQ(::rename((m / "works/A/one.txt").c_str(), (m / "works/A/uno.txt").c_str()), 0);
  EXPECT_EQ(listing(m / "works/A"), (std::set<std::string>{"two.txt", "uno.txt"}));
  ASSERT_EQ(::mkdir((m / "works/B").c_str(), 0755), 0);
  ASSERT_EQ(::link((m / "works/A/two.txt").c_str(), (m / "works/B/two.txt").c_str()), 0);
  EXPECT_EQ(listing(m / "works/B"), std::set<std::string>{"two.txt"});
  ASSERT_EQ(::rename((m / "works/A").c_str(), (m / "works/Renamed").c_str()), 0);
  EXPECT_EQ(listing(m / "works"), (std::set<std::string>{"B", "Renamed"}));
  EXPECT_EQ(listing(m / "works/Renamed"), (std::set<std::string>{"two.txt", "uno.txt"}));
  EXPECT_EQ(test::read_file(m / "works/Renamed/uno.txt"), "one");
  ASSERT_EQ(::unlink((m / "works/Renamed/uno.txt").c_str()), 0);
  EXPECT_EQ(listing(m / "works/Renamed"), std::set<std::string>{"two.txt"});
  // The last asset on blob `one` is gone, and so is the blob.
  EXPECT_TRUE(test::eventually([&] { return listing(m / "blobs") == std::set<std::string>{two}; },
                               std::chrono::seconds(3)))
      << "blobs/ still lists a blob no asset needs";
  // The same folders from a fresh mount: the catalog agrees.
  m.unmount();
  m.mount();
  EXPECT_EQ(listing(m / "works"), (std::set<std::string>{"B", "Renamed"}));
  EXPECT_EQ(listing(m / "works/Renamed"), std::set<std::string>{"two.txt"});
}

TEST(MountListing, FilesListedWithoutAttributesStillStatRight) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  ASSERT_EQ(::mkdir((m / "works/W").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((m / "works/A").c_str(), 0755), 0);
  for (int i = 0; i < 30; ++i)
    test::write_file(m / ("works/W/f" + std::to_string(i)), std::string(i * 10, 'x'));
  test::write_file(m / "works/A/a", "a");
  // A fresh mount: find (names and types only) is served bare dirents, and
  // must still see every file as a file.
  m.unmount();
  m.mount();
  auto found = m.shell("find works -type f | wc -l");
  EXPECT_EQ(found.out, "31\n") << found.err;
  auto dirs = m.shell("find works -type d | wc -l");
  EXPECT_EQ(dirs.out, "3\n");
  // ls -lsR stats A's file, so W's listing comes with files' attributes:
  // not the one find left (taken without st_blocks), a full one. Every
  // non-empty file has blocks (its bytes are here).
  auto blocks =
      m.shell("ls -lsR works | awk '/^works\\/W:/ {w = 1} w && / f[0-9]/ {print $1, $NF}'");
  int listed = 0;
  std::istringstream lines(blocks.out);
  for (std::string kib, name; lines >> kib >> name; ++listed)
    EXPECT_EQ(kib == "0", name == "f0") << name << " shows " << kib << " KiB";
  EXPECT_EQ(listed, 30) << blocks.out << blocks.err;
  // Then the same files stat-ed: every size right, from lookups or from
  // listings with attributes alike.
  for (int i = 0; i < 30; ++i) {
    struct stat st;
    ASSERT_EQ(::stat((m / ("works/W/f" + std::to_string(i))).c_str(), &st), 0);
    EXPECT_EQ(st.st_size, i * 10);
    EXPECT_TRUE(S_ISREG(st.st_mode));
  }
  auto ls = m.shell("ls -ln works/W | awk 'NR > 1 {s += $5} END {print s, NR - 1}'");
  EXPECT_EQ(ls.out, std::to_string(10 * (29 * 30 / 2)) + " 30\n");
  auto du = m.shell("du -sb works/W | cut -f1");
  EXPECT_FALSE(du.out.empty());
}

TEST(MountListing, ABigFolderIsListedWholeAcrossManyRequestsAndByManyReaders) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  // 3000 files with 200-byte names: more than one READDIR reply holds, so
  // the kernel pages through the listing by offset.
  std::set<std::string> want = add_long_names(m, "Big", 3000);
  // Four readers at once, each listing it many times, some stat-ing what
  // they list, while a writer keeps adding and removing one more file (so
  // the kernel's cached listing keeps being dropped and the daemon serves
  // the pages again). Every file that stays must be listed exactly once.
  std::atomic<bool> stop = false;
  std::atomic<int> wrong = 0;
  std::mutex what_mu;
  std::string what;  // what went wrong, for the failure message
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      fs::path churn = m / ("works/Big/zz-churn-" + std::to_string(i % 3));
      test::write_file(churn, "x");
      fs::remove(churn);
    }
  });
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t)
    readers.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        std::set<std::string> seen;
        size_t count = 0;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(m / "works/Big")) {
          std::string name = e.path().filename().string();
          if (name.starts_with("zz-churn-")) continue;
          seen.insert(name);
          ++count;
          if (t % 2 && count % 500 == 0 && e.file_size(ec) != 0) {
            ++wrong;
            std::lock_guard lock(what_mu);
            what += "size of a listed file: " + (ec ? ec.message() : std::string("not 0")) + "; ";
          }
        }
        if (seen != want || count != want.size()) {
          ++wrong;
          size_t missing = 0;
          for (const std::string& w : want) missing += !seen.count(w);
          std::lock_guard lock(what_mu);
          what += "listed " + std::to_string(count) + " (" + std::to_string(seen.size()) +
                  " names), missed " + std::to_string(missing) + "; ";
        }
      }
    });
  for (auto& r : readers) r.join();
  stop = true;
  writer.join();
  EXPECT_EQ(wrong, 0) << "a listing missed, repeated or misdescribed entries: " << what;
  auto ls = m.shell("ls works/Big | wc -l; ls -l works/Big | grep -c '^-'");
  EXPECT_EQ(ls.out, "3000\n3000\n");
}

TEST(MountListing, RemovingEntriesWhileReadingTheFolderRemovesThemAll) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  // What rm -r does: read a folder and unlink each entry as it comes. Every
  // unlink changes the listing under the reader, whose next page must
  // still start right after the last name it got.
  add_long_names(m, "Del", 2000);
  DIR* d = ::opendir((m / "works/Del").c_str());
  ASSERT_NE(d, nullptr);
  int removed = 0, failed = 0;
  std::set<std::string> seen;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (!seen.insert(name).second) ++failed;  // returned twice
    if (::unlinkat(::dirfd(d), e->d_name, 0) == 0)
      ++removed;
    else
      ++failed;
  }
  ::closedir(d);
  EXPECT_EQ(removed, 2000) << "entries skipped while the folder changed";
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(::rmdir((m / "works/Del").c_str()), 0) << strerror(errno);
}

TEST(MountListing, ChangesMadeByAnotherProcessShowWithinSeconds) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  ASSERT_EQ(::mkdir((m / "works/Old").c_str(), 0755), 0);
  test::write_file(m / "works/Old/a.txt", "a");
  // Listed and stat-ed here, so the kernel holds the listings and names.
  EXPECT_EQ(listing(m / "works"), std::set<std::string>{"Old"});
  EXPECT_EQ(listing(m / "works/Old"), std::set<std::string>{"a.txt"});
  // `recallfs add` in another process, while mounted: the daemon learns
  // of it only through the catalog.
  fs::path src = m.tmp() / "b.txt";
  test::write_file(src, "from the command line");
  auto added = m.recallfs({"add", "--work", "Old", src.string()});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  added = m.recallfs({"add", "--work", "New", src.string()});
  ASSERT_EQ(added.exit_code, 0) << added.err;
  EXPECT_TRUE(test::eventually(
      [&] {
        return listing(m / "works") == std::set<std::string>{"New", "Old"} &&
               listing(m / "works/Old") == std::set<std::string>{"a.txt", "b.txt"};
      },
      std::chrono::seconds(4)))
      << "the mount's listings do not show what another process added";
  EXPECT_EQ(test::read_file(m / "works/New/b.txt"), "from the command line");
}

TEST(MountListing, AFileKeepsWorkingThroughItsHandleAfterItsNameIsGone) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  ASSERT_EQ(::mkdir((m / "works/W").c_str(), 0755), 0);
  test::write_file(m / "works/W/kept.txt", "0123456789");
  int fd = ::open((m / "works/W/kept.txt").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  // The folder is renamed under the open file: its handle follows.
  ASSERT_EQ(::rename((m / "works/W").c_str(), (m / "works/V").c_str()), 0);
  ASSERT_EQ(::pwrite(fd, "AB", 2, 0), 2);
  ASSERT_EQ(::fsync(fd), 0);
  EXPECT_EQ(test::read_file(m / "works/V/kept.txt"), "AB23456789");
  // Unlinked while open: fstat, reads, fchmod and ftruncate still work.
  ASSERT_EQ(::unlink((m / "works/V/kept.txt").c_str()), 0);
  struct stat st;
  ASSERT_EQ(::fstat(fd, &st), 0) << strerror(errno);
  EXPECT_EQ(st.st_size, 10);
  char buf[16] = {};
  EXPECT_EQ(::pread(fd, buf, sizeof buf, 0), 10);
  EXPECT_EQ(std::string(buf, 10), "AB23456789");
  EXPECT_EQ(::fchmod(fd, 0600), 0) << strerror(errno);
  EXPECT_EQ(::ftruncate(fd, 4), 0) << strerror(errno);
  ASSERT_EQ(::fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 4);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(::close(fd), 0);
  EXPECT_FALSE(fs::exists(m / "works/V/kept.txt"));
  EXPECT_EQ(listing(m / "works/V"), std::set<std::string>{});
  // Its last bytes leave the store once the file is closed.
  const std::string sha = test::sha256_of("AB23456789");
  EXPECT_TRUE(test::eventually([&] {
    return !fs::exists(m.data() / "cas/objects" / sha.substr(0, 2) / sha);
  })) << "the blob of a file removed while open stayed in the store";
}

// What a program holding a folder open sees once the folder is removed
// (a shell whose working directory another shell deleted): the same on the
// mount as on a local disk. Without OPENDIR there is no handle to ask, so
// this is the kept attributes' job.
struct RemovedFolder {
  int fstat_rc = -2;
  nlink_t links = 99;
  bool is_dir = false;
  int getdents_errno = -1;
  int fchdir_rc = -2;
  bool operator==(const RemovedFolder&) const = default;
};
std::ostream& operator<<(std::ostream& os, const RemovedFolder& r) {
  return os << "{fstat " << r.fstat_rc << ", nlink " << r.links << ", dir " << r.is_dir
            << ", getdents errno " << r.getdents_errno << ", fchdir " << r.fchdir_rc << "}";
}
RemovedFolder remove_open_folder(const fs::path& dir) {
  RemovedFolder r;
  EXPECT_EQ(::mkdir(dir.c_str(), 0755), 0) << strerror(errno);
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  EXPECT_GE(fd, 0) << strerror(errno);
  EXPECT_EQ(::rmdir(dir.c_str()), 0) << strerror(errno);
  struct stat st {};
  r.fstat_rc = ::fstat(fd, &st);
  r.links = st.st_nlink;
  r.is_dir = S_ISDIR(st.st_mode);
  char buf[4096];
  errno = 0;
  long n = ::syscall(SYS_getdents64, fd, buf, sizeof buf);
  r.getdents_errno = n < 0 ? errno : 0;
  int cwd = ::open(".", O_RDONLY | O_DIRECTORY);
  r.fchdir_rc = ::fchdir(fd);
  EXPECT_EQ(::fchdir(cwd), 0);
  ::close(cwd);
  ::close(fd);
  return r;
}

TEST(MountListing, AFolderRemovedWhileOpenLooksAsOnALocalDisk) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  RemovedFolder local = remove_open_folder(m.tmp() / "local-folder");
  EXPECT_EQ(local.fstat_rc, 0);
  EXPECT_EQ(local.links, 0u);
  // A work, and a folder inside one, removed while open.
  EXPECT_EQ(remove_open_folder(m / "works/Gone"), local);
  ASSERT_EQ(::mkdir((m / "works/W").c_str(), 0755), 0);
  EXPECT_EQ(remove_open_folder(m / "works/W/sub"), local);
  // Replaced by a rename onto it: the same.
  ASSERT_EQ(::mkdir((m / "works/W/from").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((m / "works/W/onto").c_str(), 0755), 0);
  int fd = ::open((m / "works/W/onto").c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::rename((m / "works/W/from").c_str(), (m / "works/W/onto").c_str()), 0)
      << strerror(errno);
  struct stat st;
  EXPECT_EQ(::fstat(fd, &st), 0) << strerror(errno);
  EXPECT_EQ(st.st_nlink, 0u);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  ::close(fd);
  // The name is free again, for a folder of its own.
  ASSERT_EQ(::mkdir((m / "works/Gone").c_str(), 0755), 0);
  ASSERT_EQ(::stat((m / "works/Gone").c_str(), &st), 0) << strerror(errno);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_NE(st.st_nlink, 0u);
  EXPECT_EQ(listing(m / "works/Gone"), std::set<std::string>{});
}

// A file linked into two works is one file: bytes written or cut through
// one name, not yet committed, reach a file open through the other name (a
// kernel inode of its own, with its own cached pages and size) at once, as
// on a local disk, not when the kernel's caches expire.
TEST(MountListing, BytesWrittenThroughOneNameReachTheOtherNamesOpenFile) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  ASSERT_EQ(::mkdir((m / "works/A").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((m / "works/B").c_str(), 0755), 0);
  test::write_file(m / "works/A/paper.txt", "version one");
  ASSERT_EQ(::link((m / "works/A/paper.txt").c_str(), (m / "works/B/paper.txt").c_str()), 0);
  int writer = ::open((m / "works/A/paper.txt").c_str(), O_RDWR);
  ASSERT_GE(writer, 0) << std::strerror(errno);
  int reader = ::open((m / "works/B/paper.txt").c_str(), O_RDONLY);
  ASSERT_GE(reader, 0) << std::strerror(errno);
  auto seen = [&] {
    char buf[64];
    ssize_t n = ::pread(reader, buf, sizeof buf, 0);
    struct stat st {};
    ::fstat(reader, &st);
    return std::string(buf, static_cast<size_t>(std::max<ssize_t>(n, 0))) + " (" +
           std::to_string(st.st_size) + ")";
  };
  EXPECT_EQ(seen(), "version one (11)");  // now in the kernel's cache of B's name
  const std::string v2 = "VERSION TWO, longer";
  ASSERT_EQ(::pwrite(writer, v2.data(), v2.size(), 0), static_cast<ssize_t>(v2.size()));
  // Well before the kernel's own caches expire (which takes about 10 s here).
  const auto soon = std::chrono::seconds(3);
  EXPECT_TRUE(test::eventually([&] { return seen() == v2 + " (19)"; }, soon)) << seen();
  ASSERT_EQ(::ftruncate(writer, 7), 0);
  EXPECT_TRUE(test::eventually([&] { return seen() == "VERSION (7)"; }, soon)) << seen();
  EXPECT_EQ(::close(writer), 0);
  EXPECT_EQ(::close(reader), 0);
  EXPECT_EQ(test::read_file(m / "works/B/paper.txt"), "VERSION");
}

TEST(MountListing, AppendsThroughTwoNamesOfOneFileAllLandAtItsEnd) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  ASSERT_EQ(::mkdir((m / "works/A").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((m / "works/B").c_str(), 0755), 0);
  test::write_file(m / "works/A/log.txt", "start\n");
  ASSERT_EQ(::link((m / "works/A/log.txt").c_str(), (m / "works/B/log.txt").c_str()), 0);
  // Each name is an inode of its own to the kernel, which takes an O_APPEND
  // write's offset from the size it caches for that name: tried here, two
  // appenders (a logger and `echo >>`) writing in turn through the two
  // names, each write right after the other's.
  int a = ::open((m / "works/A/log.txt").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(a, 0) << std::strerror(errno);
  int b = ::open((m / "works/B/log.txt").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(b, 0) << std::strerror(errno);
  std::string expected = "start\n";
  for (int i = 0; i < 20; ++i) {
    for (auto [fd, who] : {std::pair{a, "a"}, std::pair{b, "b"}}) {
      std::string line = who + std::to_string(i) + "\n";
      ASSERT_EQ(::write(fd, line.data(), line.size()), static_cast<ssize_t>(line.size()));
      expected += line;
    }
  }
  struct stat sa {
  }, sb{};
  ASSERT_EQ(::fstat(a, &sa), 0);
  ASSERT_EQ(::fstat(b, &sb), 0);
  EXPECT_EQ(sa.st_size, static_cast<off_t>(expected.size()));
  EXPECT_EQ(sb.st_size, static_cast<off_t>(expected.size()));
  EXPECT_EQ(::close(a), 0);
  EXPECT_EQ(::close(b), 0);
  EXPECT_EQ(test::read_file(m / "works/A/log.txt"), expected);
  EXPECT_EQ(test::read_file(m / "works/B/log.txt"), expected);
  m.unmount();
  m.mount();
  EXPECT_EQ(test::read_file(m / "works/B/log.txt"), expected);
}

TEST(MountListing, ANameSavedOverByRenameNeverGoesMissingForAReader) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  ASSERT_EQ(::mkdir((m / "works/A").c_str(), 0755), 0);
  const fs::path doc = m / "works/A/doc.txt";
  auto version = [](int i) { return std::string(16384, static_cast<char>('a' + i % 26)); };
  test::write_file(doc, version(0));
  // Tried: an editor saving 100 times (a temporary file renamed over the
  // name) while a viewer stats, opens and reads the name in a loop. The
  // viewer's kernel may hold the name's old node when the rename lands; a
  // local disk's rename is atomic, so every call must succeed and every read
  // must see one whole version.
  std::atomic<bool> done{false};
  std::thread editor([&] {
    for (int i = 1; i <= 100; ++i) {
      fs::path tmp = m / ("works/A/.doc.txt.tmp" + std::to_string(i));
      test::write_file(tmp, version(i));
      if (::rename(tmp.c_str(), doc.c_str()) != 0) ADD_FAILURE() << std::strerror(errno);
    }
    done = true;
  });
  int calls = 0;
  std::map<std::string, int> failed;
  while (!done) {
    struct stat st {};
    ++calls;
    if (::stat(doc.c_str(), &st) != 0) ++failed[std::string("stat: ") + std::strerror(errno)];
    int fd = ::open(doc.c_str(), O_RDONLY);
    if (fd < 0) {
      ++failed[std::string("open: ") + std::strerror(errno)];
      continue;
    }
    std::string got(20000, '\0');
    ssize_t n = 0, r;
    while ((r = ::read(fd, got.data() + n, got.size() - static_cast<size_t>(n))) > 0) n += r;
    ::close(fd);
    got.resize(static_cast<size_t>(std::max<ssize_t>(n, 0)));
    if (got.size() != 16384 || got.find_first_not_of(got[0]) != std::string::npos)
      ++failed["a read that is not one whole version"];
  }
  editor.join();
  EXPECT_GT(calls, 10);
  for (const auto& [what, count] : failed) ADD_FAILURE() << what << ": " << count << " times";
  EXPECT_EQ(test::read_file(doc), version(100));
}

}  // namespace
}  // namespace recall
