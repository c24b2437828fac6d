// Names on the mount: odd file names, colliding names, names that cannot be
// file names, editors' scratch files; and the errors a shell user expects.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <functional>
#include <set>

#include "base/sqlite.h"
#include "tests/mount_fixture.h"

namespace recall {
namespace {
namespace fs = std::filesystem;
using test::MountedLibrary;

using test::listing;

int errno_of(int rc) { return rc < 0 ? errno : 0; }

TEST(MountNames, OddNamesWork) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  const std::vector<std::string> names = {"with space.pdf",
                                          "new\nline.txt",
                                          "-leading-dash.txt",
                                          "caf\xc3\xa9.txt" /* NFC */,
                                          "cafe\xcc\x81.txt" /* NFD: a different name */,
                                          std::string(251, 'x') + ".pdf" /* 255 bytes */,
                                          "\xf0\x9f\x93\x9a books",
                                          "100% sure",
                                          "a%2Fb literal"};
  for (const auto& n : names) test::write_file(m / ("inbox/" + n), "content of " + n);
  EXPECT_EQ(listing(m / "inbox"), std::set<std::string>(names.begin(), names.end()));
  m.unmount();
  m.mount();
  for (const auto& n : names)
    EXPECT_EQ(test::read_file(m / ("inbox/" + n)), "content of " + n) << n;
  // A name one byte too long is refused as a local file system refuses it.
  int fd = ::open((m / ("inbox/" + std::string(256, 'y'))).c_str(), O_CREAT | O_WRONLY, 0644);
  EXPECT_EQ(fd, -1);
  EXPECT_EQ(errno, ENAMETOOLONG);
}

// Names that look escaped (URL-encoded downloads: "50%25 off.pdf") are
// names like any other: rsync writes a temporary name, renames it to the
// name and looks the name up; tar and mkdir make them as typed.
TEST(MountNames, NamesThatLookEscapedAreKeptAsTyped) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  const std::set<std::string> names = {"50%25 off.pdf", "a%2Fb", "%2E", "x%2Ey", "%00", "%252F"};
  fs::create_directories(m.tmp() / "src/d%2Ed");
  for (const auto& n : names) test::write_file(m.tmp() / "src" / n, "content of " + n);
  test::write_file(m.tmp() / "src/d%2Ed/in%2Fside", "inside");
  auto r = m.shell(R"sh(set -e
    mkdir works/R works/T
    rsync -a "$TMP/src/" works/R/
    tar -C "$TMP/src" -cf - . | tar -C works/T -xf -
    mv works/T/a%2Fb works/T/a%2Eb
  )sh");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> with_dir = names;
  with_dir.insert("d%2Ed");
  EXPECT_EQ(listing(m / "works/R"), with_dir) << "no temporary name of rsync is left either";
  std::set<std::string> moved = with_dir;
  moved.erase("a%2Fb");
  moved.insert("a%2Eb");
  EXPECT_EQ(listing(m / "works/T"), moved);
  m.unmount();
  m.mount();
  for (const auto& n : names) EXPECT_EQ(test::read_file(m / "works/R" / n), "content of " + n) << n;
  EXPECT_EQ(test::read_file(m / "works/R/d%2Ed/in%2Fside"), "inside");
  EXPECT_EQ(test::read_file(m / "works/T/a%2Eb"), "content of a%2Fb");
  // A second rsync finds everything in place and copies nothing.
  r = m.shell(R"sh(rsync -a --itemize-changes "$TMP/src/" works/R/)sh");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "") << "rsync saw names or times differ";
}

TEST(MountNames, CollidingNamesAreToldApartAndBothReachable) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  // Two assets with one name arrive from outside the mount (the command
  // line here; sync later).
  fs::create_directories(m.tmp() / "a");
  fs::create_directories(m.tmp() / "b");
  test::write_file(m.tmp() / "a/paper.pdf", "first paper");
  test::write_file(m.tmp() / "b/paper.pdf", "second paper");
  ASSERT_EQ(m.recallfs({"add", (m.tmp() / "a/paper.pdf").string()}).exit_code, 0);
  ASSERT_EQ(m.recallfs({"add", (m.tmp() / "b/paper.pdf").string()}).exit_code, 0);
  ASSERT_EQ(
      m.recallfs({"add", "--work", "Input/Output", (m.tmp() / "a/paper.pdf").string()}).exit_code,
      0);
  ASSERT_EQ(m.recallfs({"add", "--work", "..", (m.tmp() / "a/paper.pdf").string()}).exit_code, 0);
  EXPECT_TRUE(test::eventually([&] {
    return listing(m / "inbox") == std::set<std::string>{"paper.pdf", "paper (2).pdf"};
  })) << "inbox shows the two papers apart";
  EXPECT_EQ(
      test::read_file(m / "inbox/paper.pdf") + "|" + test::read_file(m / "inbox/paper (2).pdf"),
      "first paper|second paper");
  EXPECT_EQ(listing(m / "works"), (std::set<std::string>{"Input%2FOutput", "%2E%2E"}));
  EXPECT_EQ(test::read_file(m / "works/Input%2FOutput/paper.pdf"), "first paper");
  EXPECT_EQ(test::read_file(m / "works/%2E%2E/paper.pdf"), "first paper");
  // mv of the second one to a name of its own ends the collision.
  ASSERT_EQ(::rename((m / "inbox/paper (2).pdf").c_str(), (m / "inbox/paper-b.pdf").c_str()), 0);
  EXPECT_EQ(listing(m / "inbox"), (std::set<std::string>{"paper.pdf", "paper-b.pdf"}));
}

TEST(MountNames, ScratchFilesWorkButNeverSync) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  const std::vector<std::string> scratch = {".paper.pdf.swp", "~$report.docx", ".~lock.report.odt#",
                                            ".DS_Store",      "._paper.pdf",   "lu12345.tmp"};
  for (const auto& n : scratch) {
    test::write_file(m / ("inbox/" + n), "scratch");
    EXPECT_EQ(test::read_file(m / ("inbox/" + n)), "scratch");
    auto r = m.shell("getfattr --only-values -n user.recall.local_only 'inbox/" + n + "'");
    EXPECT_EQ(r.out, "1") << n;
  }
  // A temp file renamed to a real name (how LibreOffice saves) starts syncing.
  ASSERT_EQ(::rename((m / "inbox/lu12345.tmp").c_str(), (m / "inbox/report.odt").c_str()), 0);
  Db db = Db::open(m.data() / "catalog.db", {.read_only = true});
  Stmt s = db.prepare(
      "SELECT count(*) FROM outbox WHERE tbl = 'assets' AND op = 'upsert' AND "
      "json_extract(payload, '$.filename') = ?");
  for (const auto& n : scratch) {
    s.bind(n);
    s.step();
    EXPECT_EQ(s.int64(0), 0) << n << " was queued for sync";
    s = db.prepare(
        "SELECT count(*) FROM outbox WHERE tbl = 'assets' AND op = 'upsert' AND "
        "json_extract(payload, '$.filename') = ?");
  }
  s.bind("report.odt");
  s.step();
  EXPECT_EQ(s.int64(0), 1);
}

TEST(MountNames, ErrorsAShellUserUnderstands) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  test::write_file(m / "inbox/f.txt", "x");
  std::string sha = m.shell("getfattr --only-values -n user.recall.sha256 inbox/f.txt").out;
  // blobs/ is read-only.
  EXPECT_EQ(errno_of(::open((m / "blobs/new").c_str(), O_CREAT | O_WRONLY, 0644)), EROFS);
  EXPECT_EQ(errno_of(::unlink((m / ("blobs/" + sha)).c_str())), EROFS);
  EXPECT_EQ(errno_of(::open((m / ("blobs/" + sha)).c_str(), O_WRONLY)), EROFS);
  EXPECT_EQ(test::read_file(m / ("blobs/" + sha)), "x");
  // The top level holds only the three folders.
  EXPECT_EQ(errno_of(::open((m / "file").c_str(), O_CREAT | O_WRONLY, 0644)), EPERM);
  EXPECT_EQ(errno_of(::mkdir((m / "dir").c_str(), 0755)), EPERM);
  EXPECT_EQ(errno_of(::rmdir((m / "inbox").c_str())), EPERM);
  EXPECT_EQ(errno_of(::open((m / "works/file").c_str(), O_CREAT | O_WRONLY, 0644)), EPERM);
  // A library holds files: no symlinks, fifos or devices.
  EXPECT_EQ(errno_of(::symlink("f.txt", (m / "inbox/link").c_str())), EPERM);
  EXPECT_EQ(errno_of(::mkfifo((m / "inbox/fifo").c_str(), 0644)), EPERM);
  // The usual ones, as a local file system gives them.
  EXPECT_EQ(errno_of(::mkdir((m / "works/W").c_str(), 0755)), 0);
  EXPECT_EQ(errno_of(::mkdir((m / "works/W").c_str(), 0755)), EEXIST);
  EXPECT_EQ(errno_of(::unlink((m / "works/W").c_str())), EISDIR);
  EXPECT_EQ(errno_of(::open((m / "inbox/f.txt/x").c_str(), O_RDONLY)), ENOTDIR);
  EXPECT_EQ(errno_of(::open((m / "inbox/none").c_str(), O_RDONLY)), ENOENT);
  test::write_file(m / "works/W/a", "a");
  EXPECT_EQ(errno_of(::rmdir((m / "works/W").c_str())), ENOTEMPTY);
  EXPECT_EQ(errno_of(::rename((m / "works/W").c_str(), (m / "works/W/a/b").c_str())), ENOTDIR);
  EXPECT_EQ(errno_of(::link((m / "works/W").c_str(), (m / "inbox/w").c_str())), EPERM);
  // Linux truncates on O_RDONLY|O_TRUNC (it was EBADF here).
  int fd = ::open((m / "works/W/a").c_str(), O_RDONLY | O_TRUNC);
  EXPECT_GE(fd, 0) << std::strerror(errno);
  if (fd >= 0) {
    EXPECT_EQ(::close(fd), 0);
  }
  EXPECT_EQ(test::read_file(m / "works/W/a"), "");
  // A whiteout is a device node (overlayfs): refused, and nothing moves.
  test::write_file(m / "works/W/b", "b");
  EXPECT_EQ(
      errno_of(static_cast<int>(::syscall(SYS_renameat2, AT_FDCWD, (m / "works/W/b").c_str(),
                                          AT_FDCWD, (m / "works/W/c").c_str(), RENAME_WHITEOUT))),
      EINVAL);
  EXPECT_EQ(test::read_file(m / "works/W/b"), "b");
  // The settable attributes always exist: XATTR_CREATE is EEXIST, as for
  // any attribute a file has.
  const std::string b = (m / "works/W/b").string();
  EXPECT_EQ(errno_of(::setxattr(b.c_str(), "user.recall.role", "notes", 5, XATTR_CREATE)), EEXIST);
  EXPECT_EQ(errno_of(::setxattr(b.c_str(), "user.recall.role", "notes", 5, XATTR_REPLACE)), 0);
  EXPECT_EQ(m.shell("getfattr --only-values -n user.recall.role works/W/b").out, "notes");
}

// cp --preserve=xattr (and cp -a) sets the role on the copy before closing
// it: a new file being written takes its role (it was EPERM until closed).
TEST(MountNames, ANewFileTakesItsRoleBeforeItIsClosed) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  int fd = ::open((m / "inbox/notes.txt").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  ASSERT_EQ(::write(fd, "first ", 6), 6);
  EXPECT_EQ(::fsetxattr(fd, "user.recall.role", "notes", 5, 0), 0) << std::strerror(errno);
  ASSERT_EQ(::write(fd, "second", 6), 6);
  EXPECT_EQ(::close(fd), 0);
  EXPECT_EQ(test::read_file(m / "inbox/notes.txt"), "first second");
  EXPECT_EQ(m.shell("getfattr --only-values -n user.recall.role inbox/notes.txt").out, "notes");
  // And the shell tool that does it, onto a new copy.
  test::write_file(m.tmp() / "src.txt", "a copy");
  ASSERT_EQ(::setxattr((m.tmp() / "src.txt").c_str(), "user.recall.role", "slides", 6, 0), 0)
      << "the test's own disk keeps user attributes";
  auto cp = m.shell("cp --preserve=xattr '" + (m.tmp() / "src.txt").string() + "' inbox/copy.txt");
  EXPECT_EQ(cp.exit_code, 0) << cp.err;
  EXPECT_EQ(m.shell("getfattr --only-values -n user.recall.role inbox/copy.txt").out, "slides");
  EXPECT_EQ(test::read_file(m / "inbox/copy.txt"), "a copy");
}

// Names are UTF-8 (the server and the app share them): a name that is not
// (Latin-1 from an old archive) is refused at once with EILSEQ, whatever
// makes it, and nothing else changes. Such a row used to stop every later
// push ("invalid byte sequence for encoding UTF8").
TEST(MountNames, NamesThatAreNotUtf8AreRefusedWithEILSEQ) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  const std::string latin1 = "caf\xe9.txt", half = "\xe2\x82.txt", surrogate = "\xed\xa0\x80";
  test::write_file(m / "inbox/ok.txt", "ok");
  for (const std::string& bad : {latin1, half, surrogate}) {
    EXPECT_EQ(errno_of(::open((m / "inbox" / bad).c_str(), O_CREAT | O_WRONLY, 0644)), EILSEQ);
    EXPECT_EQ(errno_of(::mkdir((m / "works" / bad).c_str(), 0755)), EILSEQ);
    EXPECT_EQ(errno_of(::rename((m / "inbox/ok.txt").c_str(), (m / "inbox" / bad).c_str())),
              EILSEQ);
    EXPECT_EQ(errno_of(::link((m / "inbox/ok.txt").c_str(), (m / "inbox" / bad).c_str())), EILSEQ);
  }
  EXPECT_EQ(listing(m / "inbox"), std::set<std::string>{"ok.txt"});
  EXPECT_EQ(listing(m / "works"), std::set<std::string>{});
  EXPECT_EQ(test::read_file(m / "inbox/ok.txt"), "ok");
  // The command line refuses it too, and says which name.
  fs::create_directories(m.tmp() / "src");
  test::write_file(m.tmp() / "src" / latin1, "latin-1");
  auto r = m.recallfs({"add", (m.tmp() / "src" / latin1).string()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("is not valid UTF-8: 'caf\\xe9.txt'"), std::string::npos) << r.err;
  // A file whose name came before names were checked (a row written by an
  // older recallfs) can still be saved over by rename and appended to.
  m.unmount();
  {
    Db db = Db::open(m.data() / "catalog.db", {});
    db.exec(
        "UPDATE assets SET filename = CAST(X'636166E92E747874' AS TEXT) WHERE filename = 'ok.txt'");
  }
  m.mount();
  test::write_file(m / "inbox/save.tmp", "saved");
  EXPECT_EQ(errno_of(::rename((m / "inbox/save.tmp").c_str(), (m / "inbox" / latin1).c_str())), 0);
  int fd = ::open((m / "inbox" / latin1).c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
  EXPECT_GE(fd, 0) << std::strerror(errno);
  EXPECT_EQ(::write(fd, "!", 1), 1);
  EXPECT_EQ(::close(fd), 0);
  EXPECT_EQ(test::read_file(m / "inbox" / latin1), "saved!");
  // UTF-8 of every length is a name like any other.
  const std::string fine = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x93\x9a";
  test::write_file(m / "inbox" / fine, "fine");
  EXPECT_EQ(test::read_file(m / "inbox" / fine), "fine");
}

// The library keeps user.recall.* only. Other namespaces answer ENOTSUP, not
// ENODATA: ls -l then stops asking every file for SELinux labels and ACLs
// (two round trips per file listed), as on any file system without them.
TEST(MountNames, AttributesOutsideUserSpaceAreNotSupported) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  test::write_file(m / "inbox/f.txt", "x");
  char buf[256];
  auto get = [&](const std::string& rel, const char* name) {
    return errno_of(static_cast<int>(::getxattr((m / rel).c_str(), name, buf, sizeof buf)));
  };
  for (const char* rel : {"inbox/f.txt", "inbox", "works"}) {
    EXPECT_EQ(get(rel, "security.selinux"), ENOTSUP) << rel;
    EXPECT_EQ(get(rel, "system.posix_acl_access"), ENOTSUP) << rel;
    EXPECT_EQ(get(rel, "trusted.x"), ENOTSUP) << rel;
  }
  EXPECT_EQ(get("inbox/f.txt", "user.other"), ENODATA);
  EXPECT_EQ(get("inbox/f.txt", "user.recall.sha256"), 0);
  // ls -l asked once for the label and the ACL, then remembered the answer.
  for (int i = 0; i < 30; ++i) test::write_file(m / ("inbox/g" + std::to_string(i)), "y");
  test::RunResult r = m.shell("strace -qq -e trace=getxattr,lgetxattr ls -l inbox");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  size_t asked = 0;
  for (size_t at = r.err.find("getxattr("); at != std::string::npos;
       at = r.err.find("getxattr(", at + 1))
    ++asked;
  EXPECT_LE(asked, 3u) << r.err;
}

// Another user, through allow_other: the mode bits decide (no ACL is kept,
// and none is asked for), so a 0644 file reads and a 0600 one does not.
TEST(MountNames, AnotherUserGetsWhatTheModeBitsSay) {
  RECALL_REQUIRE_FUSE();
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to act as another user";
  MountedLibrary m;
  m.unmount();
  fs::permissions(m.tmp(), fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
  m.mount({"-o", "allow_other"});
  test::write_file(m / "inbox/open.txt", "for all");
  test::write_file(m / "inbox/mine.txt", "for me");
  ASSERT_EQ(::chmod((m / "inbox/open.txt").c_str(), 0644), 0);
  ASSERT_EQ(::chmod((m / "inbox/mine.txt").c_str(), 0600), 0);
  auto as_nobody = [&](const std::string& cmd) {
    return test::run({"runuser", "-u", "nobody", "--", "sh", "-c", cmd});
  };
  test::RunResult r = as_nobody("cat '" + (m / "inbox/open.txt").string() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "for all");
  r = as_nobody("ls -l '" + (m / "inbox").string() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = as_nobody("cat '" + (m / "inbox/mine.txt").string() + "'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("Permission denied"), std::string::npos) << r.err;
}

TEST(MountNames, StatShowsSizeTimesAndLocalBlocks) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  test::write_file(m / "inbox/f.bin", std::string(10000, 'z'));
  struct timespec times[2] = {{0, UTIME_OMIT}, {1700000000, 123456789}};
  ASSERT_EQ(::utimensat(AT_FDCWD, (m / "inbox/f.bin").c_str(), times, 0), 0);
  ASSERT_EQ(::chmod((m / "inbox/f.bin").c_str(), 0600), 0);
  m.unmount();
  m.mount();
  struct stat st;
  ASSERT_EQ(::stat((m / "inbox/f.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 10000);
  EXPECT_EQ(st.st_blocks, (10000 + 511) / 512);
  EXPECT_EQ(st.st_mtim.tv_sec, 1700000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 123456789);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_EQ(st.st_nlink, 1u);
}

// Programs watch a folder's mtime for names that came or went: Python's
// import cache rescans a folder only when it moved (a module written after
// the first import is otherwise not found), and so do make, file managers and
// backup tools. Tried: every way a name comes or goes, in a work, a
// sub-folder (each first set to 2005), works/ and the inbox.
TEST(MountNames, AFoldersTimesMoveWhenNamesComeOrGoInIt) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  ASSERT_EQ(::mkdir((m / "works/W").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((m / "works/W/sub").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((m / "works/V").c_str(), 0755), 0);
  const time_t old = 1115251200;  // 2005-05-05
  auto set_old = [&](const std::string& rel) {
    struct timespec t[2] = {{old, 0}, {old, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (m / rel).c_str(), t, 0), 0) << rel;
  };
  auto times = [&](const std::string& rel) {
    struct stat st {};
    EXPECT_EQ(::stat((m / rel).c_str(), &st), 0) << rel;
    return std::pair{st.st_mtim.tv_sec, st.st_ctim.tv_sec};
  };
  const time_t now = ::time(nullptr);
  auto moved = [&](const std::string& rel) {
    auto [mtime, ctime] = times(rel);
    return mtime >= now && ctime >= now;
  };
  auto check = [&](const std::string& what, const std::vector<std::string>& folders,
                   const std::function<int()>& step) {
    for (const auto& f : folders) set_old(f);
    for (const auto& f : folders) ASSERT_EQ(times(f).first, old) << f;
    ASSERT_EQ(step(), 0) << what << ": " << std::strerror(errno);
    for (const auto& f : folders) EXPECT_TRUE(moved(f)) << what << ": " << f << " kept its time";
  };
  const std::string sub = "works/W/sub";
  check("create", {sub}, [&] {
    int fd = ::open((m / sub / "mod_x.py").c_str(), O_CREAT | O_WRONLY, 0644);
    return fd < 0 ? -1 : ::close(fd);
  });
  check("unlink", {sub}, [&] { return ::unlink((m / sub / "mod_x.py").c_str()); });
  test::write_file(m / "works/W/a.txt", "a");
  check("rename across works", {"works/W", "works/V"},
        [&] { return ::rename((m / "works/W/a.txt").c_str(), (m / "works/V/a.txt").c_str()); });
  test::write_file(m / "works/W/b.txt", "b");
  check("rename over a file", {"works/W", "works/V"},
        [&] { return ::rename((m / "works/W/b.txt").c_str(), (m / "works/V/a.txt").c_str()); });
  check("link", {"works/W"},
        [&] { return ::link((m / "works/V/a.txt").c_str(), (m / "works/W/c.txt").c_str()); });
  check("mkdir", {"works/W"}, [&] { return ::mkdir((m / "works/W/d").c_str(), 0755); });
  check("rename a folder", {"works/W", sub},
        [&] { return ::rename((m / "works/W/d").c_str(), (m / sub / "d").c_str()); });
  check("rmdir", {sub}, [&] { return ::rmdir((m / sub / "d").c_str()); });
  // works/ and the inbox keep no time of their own (utimens is ignored):
  // theirs must move on from what it was.
  auto ns = [&](const std::string& rel) {
    struct stat st {};
    EXPECT_EQ(::stat((m / rel).c_str(), &st), 0) << rel;
    return st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
  };
  int64_t before = ns("works");
  ASSERT_EQ(::mkdir((m / "works/New").c_str(), 0755), 0);
  EXPECT_GT(ns("works"), before) << "a new work";
  before = ns("inbox");
  test::write_file(m / "inbox/i.txt", "i");
  EXPECT_GT(ns("inbox"), before) << "a file in the inbox";
  // Nothing came or went: a folder's own time stays what it was set to
  // (tar and rsync set folders' times after filling them).
  set_old(sub);
  test::write_file(m / sub / "mod_y.py", "x");
  set_old(sub);
  EXPECT_EQ(times(sub).first, old) << "a time set after the last change must stay";
  ASSERT_EQ(::chmod((m / "works/V/a.txt").c_str(), 0600), 0);  // not a name change
  EXPECT_EQ(times(sub).first, old);
}

}  // namespace
}  // namespace recall
