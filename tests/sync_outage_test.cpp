// A sync server that hangs in the middle of a statement: its process stops
// (SIGSTOP here; in life a backend stuck on its disk, or a connection pooler
// in front of a server that hangs), while its kernel still acknowledges TCP,
// keepalives included. Before, the device waited for the answer forever and
// nothing it changed reached the server again until it was remounted.
// Real PostgreSQL from the rig and a real mount.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>

#include <sstream>
#include <string>
#include <vector>

#include "tests/mount_fixture.h"
#include "tests/pg_fixture.h"
#include "tests/test_util.h"

namespace recall {
namespace {
using test::PostgresServer;
using test::RunResult;

// Server processes stopped for the test, and let go on its way out.
class Stopped {
 public:
  void stop(pid_t pid) {
    if (::kill(pid, SIGSTOP) == 0) pids_.push_back(pid);
  }
  ~Stopped() {
    for (pid_t pid : pids_) ::kill(pid, SIGCONT);
  }
  size_t size() const { return pids_.size(); }

 private:
  std::vector<pid_t> pids_;
};

TEST(SyncOutage, AServerThatHangsMidStatementIsGivenUpAndTheChangeGoesThroughANewConnection) {
  RECALL_REQUIRE_POSTGRES();
  RECALL_REQUIRE_FUSE();
  PostgresServer& pg = PostgresServer::get();
  pg.add_user("hung");
  std::string token = pg.issue_token("hung");
  test::MountedLibrary a;
  a.unmount();
  // Tried: a timeout that is not a number of seconds is refused before
  // anything is mounted.
  for (const char* bad : {"0", "-3", "soon", "2s"}) {
    RunResult r = a.recallfs({"mount", a.mnt().string(), "--server-timeout", bad});
    EXPECT_NE(r.exit_code, 0) << bad;
    EXPECT_NE(r.err.find("server timeout"), std::string::npos) << bad << ": " << r.err;
  }
  a.mount({"--server-timeout", "2"});
  RunResult s = a.recallfs({"signin", "--server", pg.client_url(), "--token", token});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  auto on_server = [&](const std::string& table) { return pg.live_rows(table, "hung"); };
  ASSERT_EQ(a.shell("mkdir works/Hung").exit_code, 0);
  ASSERT_TRUE(test::eventually([&] { return on_server("works") == "1\n"; }));

  // The device's connections hang: their server processes stop.
  Stopped stopped;
  std::istringstream pids(
      pg.psql("SELECT pid FROM pg_stat_activity WHERE application_name = 'recallfs'"));
  for (std::string pid; std::getline(pids, pid);)
    if (!pid.empty()) stopped.stop(static_cast<pid_t>(std::stol(pid)));
  ASSERT_GE(stopped.size(), 1u) << "the device has no connection to the server";

  ASSERT_EQ(a.shell("echo hello > works/Hung/note.txt").exit_code, 0);
  EXPECT_TRUE(
      test::eventually([&] { return on_server("assets") == "1\n"; }, std::chrono::seconds(30)))
      << "the change never reached the server: " << test::read_file(a.data() / "recallfs.log");
  EXPECT_NE(test::read_file(a.data() / "recallfs.log").find("no answer for 2.0 s"),
            std::string::npos);
}

}  // namespace
}  // namespace recall
