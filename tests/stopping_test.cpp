// Stopping while a server is silent. A laptop that lost its network, or a
// holder that hangs, leaves requests that were accepted and are never
// answered; an unmount must end them at once rather than wait out their
// stall timeouts and retries, and must lose nothing: a cut upload resumes at
// the next mount. Real Swift (S3) and PostgreSQL from the rig; the fault
// proxy (tests/rig/fault_proxy.py) is the silent server.
//
// What is tried: a peer and the cloud that never answer a GET, and a part
// upload that the cloud never answers, and a sync server that never answers
// a new connection, each stopped while it waits; an
// unmount while the cloud hangs on an upload, and while the sync server
// holds a push.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/error.h"
#include "base/fd.h"
#include "sync/pg.h"
#include "sync/s3_client.h"
#include "sync/sources.h"
#include "tests/cloud_fixture.h"
#include "tests/mount_fixture.h"
#include "tests/pg_fixture.h"
#include "tests/test_util.h"

namespace recall {
namespace {
namespace fs = std::filesystem;
using test::FaultProxy;
using test::PostgresServer;
using test::RunResult;
using namespace std::chrono_literals;

// What a test and the request it stops share (it outlives either).
struct Stop {
  std::atomic<bool> stop{false};
  std::atomic<bool> asked_while_silent{false};  // the sink got an empty piece
  // A sink that records empty pieces and says stop once `stop` is set.
  ByteSource::Sink sink() {
    return [this](std::span<const std::byte> piece) {
      if (piece.empty()) asked_while_silent = true;
      return !stop;
    };
  }
};

// Runs `fn` on a thread of its own. A request that does not end is left
// behind (detached, owning what it uses), so that the test fails instead of
// hanging.
std::future<void> on_own_thread(std::function<void()> fn) {
  auto task = std::make_shared<std::packaged_task<void()>>(std::move(fn));
  std::future<void> done = task->get_future();
  std::thread([task] { (*task)(); }).detach();
  return done;
}

TEST(Stopping, AStreamFromAPeerThatNeverAnswersEndsWhenItsReaderSaysStop) {
  RECALL_REQUIRE_SWIFT();
  FaultProxy silent(*test::swift_endpoint(), 600);
  silent.set_mode("stall-reads");
  auto peer = std::make_shared<PeerSource>("dev-silent", "silent", silent.endpoint().substr(7),
                                           std::vector<unsigned char>(32, 7));
  auto st = std::make_shared<Stop>();
  auto done =
      on_own_thread([peer, st] { peer->stream(std::string(64, 'a'), 0, 4 << 20, st->sink()); });
  ASSERT_TRUE(test::eventually([&] { return silent.count("GET ") >= 1; })) << silent.log();
  st->stop = true;
  ASSERT_EQ(done.wait_for(60s), std::future_status::ready) << "the stream did not end";
  // Without the sink being asked, the stream would have ended only by the
  // peer's stall timeout, as an error.
  EXPECT_NO_THROW(done.get());
  EXPECT_TRUE(st->asked_while_silent);
}

TEST(Stopping, AStreamFromACloudThatNeverAnswersEndsWhenItsReaderSaysStop) {
  RECALL_REQUIRE_SWIFT();
  FaultProxy silent(*test::swift_endpoint(), 600);
  silent.set_mode("stall-reads");
  S3Config cfg = test::swift_config("silent-bucket");
  cfg.endpoint = silent.endpoint();
  cfg.stall_seconds = 600;  // only the reader can end it
  auto s3 = std::make_shared<S3Client>(cfg);
  auto st = std::make_shared<Stop>();
  auto done = on_own_thread([s3, st] {
    s3->get_stream("recallfs/someone/" + std::string(64, 'b'), 0, 4 << 20, st->sink());
  });
  ASSERT_TRUE(test::eventually([&] { return silent.count("GET ") >= 1; })) << silent.log();
  st->stop = true;
  ASSERT_EQ(done.wait_for(60s), std::future_status::ready)
      << "the stream waited for the cloud's stall timeout";
  EXPECT_NO_THROW(done.get());
  EXPECT_TRUE(st->asked_while_silent);
}

TEST(Stopping, AnUploadTheCloudNeverAnswersEndsWithECANCELEDWhenCancelled) {
  RECALL_REQUIRE_SWIFT();
  FaultProxy proxy(*test::swift_endpoint(), 600);
  S3Config cfg = test::swift_config("cancel-bucket");
  cfg.endpoint = proxy.endpoint();
  cfg.stall_seconds = 600;
  auto s3 = std::make_shared<S3Client>(cfg);
  s3->create_bucket();
  const std::string key = "recallfs/someone/part-upload";
  std::string upload_id = s3->create_multipart(key);
  test::TempDir tmp("recallfs-stop");
  std::string data = test::random_file(tmp / "part.bin", 6 << 20, 5);
  auto fd = std::make_shared<UniqueFd>(::open((tmp / "part.bin").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_GE(fd->get(), 0);
  proxy.set_mode("stall-parts-from=1");
  auto st = std::make_shared<Stop>();
  s3->cancel_when(&st->stop);
  auto code = std::make_shared<std::atomic<int>>(0);
  auto done = on_own_thread([s3, st, fd, code, key, upload_id] {
    try {
      s3->upload_part(key, upload_id, 1, fd->get(), 0, 6 << 20);
    } catch (const Error& e) {
      *code = e.code();
    }
  });
  ASSERT_TRUE(test::eventually([&] { return proxy.count("partNumber=1&") >= 1; })) << proxy.log();
  st->stop = true;
  ASSERT_EQ(done.wait_for(60s), std::future_status::ready)
      << "the upload waited for the cloud's stall timeout";
  EXPECT_EQ(code->load(), ECANCELED);
  s3->cancel_when(nullptr);
  proxy.set_mode("pass");
  s3->abort_multipart(key, upload_id);
}

// `recallfs unmount`, which waits for the daemon to close the library: it
// ends well before the minute it would wait (a stall timeout or a held
// lock would last longer), and the daemon is gone.
void unmount_expecting_the_daemon_gone_at_once(test::MountedLibrary& a, const std::string& hung) {
  pid_t daemon = a.daemon_pid();
  auto t0 = std::chrono::steady_clock::now();
  a.unmount();
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_TRUE(test::process_ended(daemon)) << "the daemon still runs after unmount returned";
  EXPECT_LT(took, 30s) << "unmount waited for " << hung << "\n"
                       << test::read_file(a.data() / "recallfs.log");
}

// A TCP port on loopback that takes connections (the kernel completes
// them) and never says a word: a server that hangs.
class SilentServer {
 public:
  SilentServer() {
    fd_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd_.get() < 0 || ::bind(fd_.get(), reinterpret_cast<sockaddr*>(&a), len) != 0 ||
        ::listen(fd_.get(), 8) != 0 ||
        ::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0)
      throw std::runtime_error(std::string("cannot listen on loopback: ") + std::strerror(errno));
    port_ = ntohs(a.sin_port);
  }
  int port() const { return port_; }
  // Whether a client has connected (waits up to `timeout`).
  bool connected(std::chrono::milliseconds timeout) const {
    pollfd p{fd_.get(), POLLIN, 0};
    return ::poll(&p, 1, static_cast<int>(timeout.count())) == 1;
  }

 private:
  UniqueFd fd_;
  int port_ = 0;
};

// The sync server takes the connection and never answers (a hung server):
// opening the connection is given up when the caller stops (an unmount),
// and fails by its own timeout otherwise.
TEST(Stopping, OpeningAConnectionToASyncServerThatNeverAnswersEndsWhenStopped) {
  SilentServer silent;
  const std::string url =
      "postgresql://recall_client@127.0.0.1:" + std::to_string(silent.port()) + "/recall";
  auto stop = std::make_shared<std::atomic<bool>>(false);
  auto code = std::make_shared<std::atomic<int>>(0);
  auto done = on_own_thread([url, stop, code] {
    try {
      PgConn::connect(url, std::chrono::seconds(300), stop.get());
    } catch (const Error& e) {
      *code = e.code();
    }
  });
  ASSERT_TRUE(silent.connected(10s)) << "the connection was not opened";
  *stop = true;
  ASSERT_EQ(done.wait_for(60s), std::future_status::ready)
      << "opening the connection waited for its timeout";
  EXPECT_EQ(code->load(), ECANCELED);
  // Without a stop, the timeout ends it.
  try {
    PgConn::connect(url, std::chrono::seconds(1));
    ADD_FAILURE() << "connected to a server that never answered";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ENOTCONN);
    EXPECT_NE(std::string(e.what()).find("no answer within 1 s"), std::string::npos) << e.what();
  }
}

size_t jobs_with(const RunResult& jobs, const std::string& status, int attempts) {
  size_t n = 0;
  for (const auto& j : nlohmann::json::parse(jobs.out))
    if (j.at("status") == status && j.at("attempts") == attempts) ++n;
  return n;
}

// The cloud takes part 1 and then never answers: `recallfs unmount` ends the
// daemon at once (not after its stall timeouts and retries), the job is left
// pending without a failed attempt, and the next mount finishes the upload
// from part 2.
TEST(Stopping, UnmountingWhileTheCloudHangsOnAnUploadEndsAtOnceAndTheUploadResumes) {
  RECALL_REQUIRE_SWIFT();
  RECALL_REQUIRE_POSTGRES();
  RECALL_REQUIRE_FUSE();
  PostgresServer& pg = PostgresServer::get();
  pg.add_user("hung");
  std::string token = pg.issue_token("hung");
  FaultProxy proxy(*test::swift_endpoint(), 600);
  proxy.set_mode("stall-parts-from=2");
  test::MountedLibrary a;
  // A stall may last five minutes: only the unmount can end it.
  ASSERT_NO_FATAL_FAILURE(
      test::connect_mounted(a, token, "hung-bucket", proxy.endpoint(), /*stall_seconds=*/300));
  std::string data = test::random_file(a.tmp() / "big.bin", 20 << 20, 17);
  ASSERT_EQ(a.shell("cp \"$TMP/big.bin\" inbox/").exit_code, 0);
  ASSERT_TRUE(
      test::eventually([&] { return proxy.count("partNumber=2&") >= 1; }, std::chrono::seconds(60)))
      << proxy.log();
  unmount_expecting_the_daemon_gone_at_once(a, "the silent cloud");
  RunResult jobs = a.recallfs({"jobs", "--json"});
  ASSERT_EQ(jobs.exit_code, 0) << jobs.err;
  EXPECT_EQ(jobs_with(jobs, "pending", 0), 1u) << jobs.out;
  // The cloud answers again: the upload resumes, part 1 is not sent again.
  proxy.set_mode("pass");
  a.mount();
  ASSERT_TRUE(test::eventually(
      [&] {
        return jobs_with(a.recallfs({"jobs", "--json"}), "completed", 0) == 1;
      },
      std::chrono::seconds(60)))
      << a.recallfs({"jobs"}).out << proxy.log();
  EXPECT_EQ(proxy.count("?uploads"), 1u) << proxy.log();
  EXPECT_EQ(proxy.count("partNumber=1&"), 1u) << proxy.log();
  S3Client direct(test::swift_config("hung-bucket"));
  std::string key = direct.key_for(test::account_id("hung"), test::sha256_of(data));
  EXPECT_EQ(direct.head(key), data.size());
}

// The server holds this device's push (another session holds the account's
// row, which every insert of the account's rows must share): `recallfs
// unmount` ends the daemon at once, not when the server lets go; the change
// stays in the outbox and the next mount pushes it.
TEST(Stopping, UnmountingWhileTheServerHoldsAPushEndsAtOnceAndTheNextMountPushesIt) {
  RECALL_REQUIRE_POSTGRES();
  RECALL_REQUIRE_FUSE();
  PostgresServer& pg = PostgresServer::get();
  pg.add_user("held");
  std::string token = pg.issue_token("held");
  test::MountedLibrary a;
  RunResult s = a.recallfs({"signin", "--server", pg.client_url(), "--token", token});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  auto on_server = [&](const std::string& table) { return pg.live_rows(table, "held"); };
  ASSERT_EQ(a.shell("mkdir works/Held").exit_code, 0);
  ASSERT_TRUE(test::eventually([&] { return on_server("works") == "1\n"; }));
  PgConn holder = PgConn::connect(pg.admin_url(), 10s);
  holder.exec("BEGIN");
  holder.query("SELECT 1 FROM recall.accounts WHERE name = 'held' FOR UPDATE");
  ASSERT_EQ(a.shell("echo hello > works/Held/note.txt").exit_code, 0);
  ASSERT_TRUE(test::eventually([&] {
    return pg.psql(
               "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'recallfs'"
               " AND wait_event_type = 'Lock'") != "0\n";
  })) << "the push did not reach the server";
  unmount_expecting_the_daemon_gone_at_once(a, "the server");
  RunResult st = a.recallfs({"status", "--json"});
  ASSERT_EQ(st.exit_code, 0) << st.err;
  EXPECT_GT(nlohmann::json::parse(st.out).at("outbox_pending").get<int64_t>(), 0) << st.out;
  holder.exec("ROLLBACK");
  a.mount();
  EXPECT_TRUE(test::eventually([&] { return on_server("assets") == "1\n"; }))
      << test::read_file(a.data() / "recallfs.log");
  EXPECT_EQ(test::read_file(a / "works/Held/note.txt"), "hello\n");
}

}  // namespace
}  // namespace recall
