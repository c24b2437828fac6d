// recallfs mount / unmount / status and mount.recallfs: the messages and
// exit codes a user gets, and mount(8).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>

#include "tests/mount_fixture.h"

namespace recall {
namespace {
namespace fs = std::filesystem;
using test::MountedLibrary;
using test::run;

TEST(MountCli, StatusShowsTheMount) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  auto s = m.recallfs({"status", "--json"});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  EXPECT_NE(s.out.find("\"mounted\": true"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find(m.mnt().string()), std::string::npos) << s.out;
  m.unmount();
  s = m.recallfs({"status", "--json"});
  EXPECT_NE(s.out.find("\"mounted\": false"), std::string::npos) << s.out;
}

TEST(MountCli, ClearMessagesForBadMountPoints) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  auto missing = m.recallfs({"mount", (m.tmp() / "nowhere").string()});
  EXPECT_EQ(missing.exit_code, 66);
  EXPECT_NE(missing.err.find("does not exist"), std::string::npos) << missing.err;

  test::write_file(m.tmp() / "afile", "x");
  auto file = m.recallfs({"mount", (m.tmp() / "afile").string()});
  EXPECT_EQ(file.exit_code, 66);
  EXPECT_NE(file.err.find("not a directory"), std::string::npos) << file.err;

  fs::create_directories(m.tmp() / "full");
  test::write_file(m.tmp() / "full/something", "x");
  auto full = m.recallfs({"mount", (m.tmp() / "full").string()});
  EXPECT_EQ(full.exit_code, 75);
  EXPECT_NE(full.err.find("not empty"), std::string::npos) << full.err;

  auto again = m.recallfs({"mount", m.mnt().string()});
  EXPECT_EQ(again.exit_code, 75);
  EXPECT_NE(again.err.find("already mounted"), std::string::npos) << again.err;

  fs::create_directories(m.tmp() / "sized");
  auto sized = m.recallfs({"mount", (m.tmp() / "sized").string(), "-o", "max_read=4096"});
  EXPECT_EQ(sized.exit_code, 64) << sized.err;
  EXPECT_NE(sized.err.find("sizes its requests itself"), std::string::npos) << sized.err;

  fs::create_directories(m.tmp() / "second");
  auto twice = m.recallfs({"mount", (m.tmp() / "second").string()});
  EXPECT_EQ(twice.exit_code, 75);
  EXPECT_NE(twice.err.find("already mounted at"), std::string::npos) << twice.err;
}

TEST(MountCli, NoFuseDeviceIsAClearError) {
  RECALL_REQUIRE_FUSE();
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to hide /dev/fuse in a mount namespace";
  test::TempDir dir;
  ASSERT_EQ(run({test::recallfs_binary(), "init", "--data", (dir / "data").string()}).exit_code, 0);
  fs::create_directories(dir / "mnt");
  // In a private mount namespace with an empty /dev.
  auto r = run({"unshare", "-m", "sh", "-c",
                "mount -t tmpfs none /dev && exec \"$0\" mount \"$1\" --data \"$2\"",
                test::recallfs_binary(), (dir / "mnt").string(), (dir / "data").string()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("FUSE is not available"), std::string::npos) << r.err;
}

TEST(MountCli, UnmountRefusesWhileBusyAndRemountsAfterACrash) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  test::write_file(m / "inbox/open.txt", "held open");
  {
    std::ifstream held(m / "inbox/open.txt");
    auto busy = run({test::recallfs_binary(), "unmount", m.mnt().string()});
    EXPECT_EQ(busy.exit_code, 75);
    EXPECT_NE(busy.err.find("busy"), std::string::npos) << busy.err;
  }
  // The mount point of a dead daemon (killed, its mount left behind) is
  // cleared and mounted again.
  pid_t daemon = m.daemon_pid();
  ASSERT_EQ(::kill(daemon, SIGKILL), 0);
  ASSERT_TRUE(test::eventually([&] { return test::process_ended(daemon); }));
  auto again = m.recallfs({"mount", m.mnt().string()});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.err.find("left by a recallfs that stopped"), std::string::npos) << again.err;
  EXPECT_EQ(test::read_file(m / "inbox/open.txt"), "held open");
  m.unmount();
  auto not_mounted = run({test::recallfs_binary(), "unmount", m.mnt().string()});
  EXPECT_NE(not_mounted.exit_code, 0);
  EXPECT_NE(not_mounted.err.find("not mounted"), std::string::npos) << not_mounted.err;
  m.mount();  // for the fixture's own unmount
}

TEST(MountCli, MountEightAndFstabWork) {
  RECALL_REQUIRE_FUSE();
  if (::geteuid() != 0) GTEST_SKIP() << "mount(8) needs root";
  std::error_code ec;
  fs::path helper = "/sbin/mount.fuse.recallfs";
  if (!fs::exists(helper, ec))
    GTEST_SKIP() << helper << " is not installed (scripts/setup.sh installs it)";
  if (test::sha256_of(test::read_file(fs::canonical(helper))) !=
      test::sha256_of(test::read_file(test::recallfs_binary())))
    GTEST_SKIP() << helper
                 << " is another build than this one (scripts/setup.sh installs this one)";
  MountedLibrary m;
  test::write_file(m / "inbox/hello.txt", "via mount(8)");
  m.unmount();
  auto r = run({"mount", "-t", "fuse.recallfs", m.data().string(), m.mnt().string(), "-o",
                "defaults,_netdev"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::read_file(m / "inbox/hello.txt"), "via mount(8)");
  EXPECT_EQ(run({"umount", m.mnt().string()}).exit_code, 0);
  // An fstab line, through a private fstab file.
  fs::path fstab = m.tmp() / "fstab";
  test::write_file(
      fstab, m.data().string() + " " + m.mnt().string() + " fuse.recallfs defaults,nofail 0 0\n");
  r = run({"mount", "--fstab", fstab.string(), m.mnt().string()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::read_file(m / "inbox/hello.txt"), "via mount(8)");
  EXPECT_EQ(run({test::recallfs_binary(), "unmount", m.mnt().string()}).exit_code, 0);
  m.mount();
}

}  // namespace
}  // namespace recall
