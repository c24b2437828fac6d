// Bytes on demand across real parts: Swift's S3 layer (started by the rig),
// PostgreSQL, mounted devices and peers; a fault-injecting proxy
// (tests/rig/fault_proxy.py) is the only stand-in, at the network seam.
//
// What is tried: 503s, resets and stalls on every request of an upload and
// of a read; a daemon killed with an upload half done; a cache budget smaller
// than the library, with pinned and not-yet-uploaded bytes in it; a corrupt
// local object; a peer that goes away and a peer that lies.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "base/error.h"
#include "base/ids.h"
#include "cas/blob_store.h"
#include "fs/library.h"
#include "sync/peer_auth.h"
#include "sync/peer_server.h"
#include "tests/cloud_fixture.h"
#include "tests/mount_fixture.h"
#include "tests/pg_fixture.h"
#include "tests/test_util.h"

namespace recall {
namespace {
namespace fs = std::filesystem;
using test::CloudDevice;
using test::FaultProxy;
using test::PostgresServer;
using test::RunResult;
using test::TempDir;

// Signs a mounted device in and sets its cloud (through `endpoint`).
void connect(test::MountedLibrary& m, const std::string& token, const std::string& bucket,
             const std::string& endpoint) {
  RunResult s =
      m.recallfs({"signin", "--server", PostgresServer::get().client_url(), "--token", token});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  std::vector<std::string> args = {test::recallfs_binary()};
  for (const auto& a : test::cloud_set_args(endpoint, bucket)) args.push_back(a);
  args.push_back("--data");
  args.push_back(m.data().string());
  RunResult c = test::run(args, {}, "testing\n");
  ASSERT_EQ(c.exit_code, 0) << c.err;
}

std::string xattr(test::MountedLibrary& m, const std::string& rel, const std::string& name) {
  return m.shell("getfattr --only-values -n user.recall." + name + " '" + rel + "'").out;
}

uint64_t stored_bytes(test::MountedLibrary& m) {
  RunResult r = m.recallfs({"status", "--json"});
  return nlohmann::json::parse(r.out).at("object_bytes").get<uint64_t>();
}

size_t jobs_with_status(const RunResult& jobs, const std::string& status) {
  size_t n = 0;
  for (const auto& j : nlohmann::json::parse(jobs.out))
    if (j.at("status") == status) ++n;
  return n;
}

TEST(OnDemand, UploadsAndReadsGetThroughFaultsBetweenTheDeviceAndS3) {
  RECALL_REQUIRE_SWIFT();
  RECALL_REQUIRE_POSTGRES();
  RECALL_REQUIRE_FUSE();
  PostgresServer& pg = PostgresServer::get();
  pg.add_user("faulty");
  std::string token = pg.issue_token("faulty");
  FaultProxy proxy(*test::swift_endpoint());
  proxy.set_mode("flaky");  // every request fails once: 503, reset or stall
  CloudDevice a;
  a.connect(token, "faulty-bucket", proxy.endpoint());
  std::string big = test::random_file(a.dir / "big.bin", 19 << 20, 11);
  std::string small = test::random_file(a.dir / "small.txt", 5000, 12);
  ASSERT_EQ(a.cli({"add", (a.dir / "big.bin").string(), (a.dir / "small.txt").string()}).exit_code,
            0);
  RunResult up = a.cli({"replicate"});
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err << proxy.log();
  EXPECT_NE(up.out.find("uploaded 2 of 2"), std::string::npos) << up.out;
  ASSERT_EQ(a.cli({"sync"}).exit_code, 0);
  EXPECT_GE(proxy.count("-> 503"), 1u);
  EXPECT_GE(proxy.count("-> reset"), 1u);
  EXPECT_GE(proxy.count("-> stall"), 1u);
  // What reached the server is whole.
  S3Client direct(test::swift_config("faulty-bucket"));
  std::string owner = test::account_id("faulty");
  EXPECT_EQ(direct.head(direct.key_for(owner, test::sha256_of(big))), big.size());
  EXPECT_EQ(direct.head(direct.key_for(owner, test::sha256_of(small))), small.size());

  // Another device reads through the same faults, byte for byte.
  size_t gets_before = proxy.count("GET ");
  test::MountedLibrary b;
  connect(b, token, "faulty-bucket", proxy.endpoint());
  ASSERT_TRUE(test::eventually([&] { return fs::exists(b / "inbox/big.bin"); }));
  EXPECT_TRUE(test::read_file(b / "inbox/big.bin") == big);
  EXPECT_EQ(test::read_file(b / "inbox/small.txt"), small);
  EXPECT_GE(proxy.count("GET ") - gets_before, 6u) << "the reads did not go through the proxy";
}

TEST(OnDemand, KillingTheDaemonInTheMiddleOfAnUploadResumesIt) {
  RECALL_REQUIRE_SWIFT();
  RECALL_REQUIRE_POSTGRES();
  RECALL_REQUIRE_FUSE();
  PostgresServer& pg = PostgresServer::get();
  pg.add_user("killed");
  std::string token = pg.issue_token("killed");
  FaultProxy proxy(*test::swift_endpoint(), 600);  // a stall that outlasts the daemon
  proxy.set_mode("stall-parts-from=2");
  test::MountedLibrary a;
  connect(a, token, "killed-bucket", proxy.endpoint());
  std::string data = test::random_file(a.tmp() / "big.bin", 20 << 20, 13);
  ASSERT_EQ(a.shell("cp \"$TMP/big.bin\" inbox/").exit_code, 0);
  // Part 1 is in; part 2 hangs: kill the daemon now.
  ASSERT_TRUE(
      test::eventually([&] { return proxy.count("partNumber=2&") >= 1; }, std::chrono::seconds(60)))
      << proxy.log();
  EXPECT_EQ(proxy.count("partNumber=1&"), 1u) << proxy.log();
  a.kill_daemon();
  proxy.set_mode("pass");
  a.mount();
  ASSERT_TRUE(test::eventually(
      [&] {
        return jobs_with_status(a.recallfs({"jobs", "--json"}), "completed") == 1;
      },
      std::chrono::seconds(60)))
      << a.recallfs({"jobs"}).out << proxy.log();
  // Resumed, not restarted: one multipart upload, part 1 sent once.
  EXPECT_EQ(proxy.count("?uploads"), 1u) << proxy.log();
  EXPECT_EQ(proxy.count("partNumber=1&"), 1u) << proxy.log();
  S3Client direct(test::swift_config("killed-bucket"));
  std::string key = direct.key_for(test::account_id("killed"), test::sha256_of(data));
  ASSERT_EQ(direct.head(key), data.size());
  std::vector<std::byte> all(data.size());
  ASSERT_EQ(direct.get_range(key, 0, all), data.size());
  EXPECT_EQ(std::memcmp(all.data(), data.data(), data.size()), 0);
}

TEST(OnDemand, TheCacheStaysWithinItsBudgetAndKeepsPinnedAndUnuploadedBytes) {
  RECALL_REQUIRE_SWIFT();
  RECALL_REQUIRE_POSTGRES();
  RECALL_REQUIRE_FUSE();
  PostgresServer& pg = PostgresServer::get();
  pg.add_user("cache");
  std::string token = pg.issue_token("cache");
  CloudDevice a;
  a.connect(token, "cache-bucket");
  std::vector<std::string> files;
  std::vector<std::string> add = {"add"};
  for (int i = 0; i < 8; ++i) {
    fs::path p = a.dir / ("f" + std::to_string(i) + ".bin");
    files.push_back(test::random_file(p, 1 << 20, 100 + static_cast<uint64_t>(i)));
    add.push_back(p.string());
  }
  ASSERT_EQ(a.cli(add).exit_code, 0);
  ASSERT_EQ(a.cli({"replicate"}).exit_code, 0);
  ASSERT_EQ(a.cli({"sync"}).exit_code, 0);

  constexpr uint64_t kBudget = 3 << 20;  // three of the eight files
  FaultProxy proxy(*test::swift_endpoint());
  test::MountedLibrary b;
  connect(b, token, "cache-bucket", proxy.endpoint());
  b.unmount();
  b.mount({"--cache-size", "3M"});
  ASSERT_TRUE(test::eventually([&] { return fs::exists(b / "inbox/f7.bin"); }));
  auto name = [](int i) { return "inbox/f" + std::to_string(i) + ".bin"; };

  // Pinned: fetched now, and kept.
  RunResult pin = b.recallfs({"pin", (b / name(0)).string()});
  ASSERT_EQ(pin.exit_code, 0) << pin.err;
  EXPECT_NE(pin.out.find("pinned 1 files; fetched 1"), std::string::npos) << pin.out;
  EXPECT_EQ(xattr(b, name(0), "pinned"), "1");
  EXPECT_EQ(xattr(b, name(0), "local"), "1");

  // Reading all of it keeps the store within budget, least recent out. The
  // kernel keeps attributes for 10 s; st_blocks follows the bytes well
  // before that, as fetches and evictions invalidate them.
  auto blocks = [&](int i) {
    struct stat st {};
    return ::stat((b / name(i)).c_str(), &st) == 0 ? st.st_blocks : -1;
  };
  const auto soon = std::chrono::seconds(3);
  for (int i = 1; i < 8; ++i) {
    EXPECT_TRUE(test::read_file(b / name(i)) == files[static_cast<size_t>(i)]) << name(i);
    EXPECT_TRUE(test::eventually([&] { return xattr(b, name(i), "local") == "1"; })) << name(i);
    if (i == 1) {
      EXPECT_TRUE(test::eventually([&] { return blocks(1) == (1 << 20) / 512; }, soon))
          << "st_blocks of a fetched file: " << blocks(1);
    }
    EXPECT_LE(stored_bytes(b), kBudget) << "after reading " << name(i);
  }
  EXPECT_EQ(xattr(b, name(0), "local"), "1") << "a pinned file was evicted";
  EXPECT_EQ(xattr(b, name(1), "local"), "0") << "the least recently used file was kept";
  EXPECT_TRUE(test::eventually([&] { return blocks(1) == 0; }, soon))
      << "st_blocks of an evicted file: " << blocks(1);

  // A new file that cannot reach the cloud yet is never evicted.
  proxy.set_mode("no-uploads");
  std::string fresh = test::random_file(b.tmp() / "fresh.bin", 1 << 20, 200);
  ASSERT_EQ(b.shell("cp \"$TMP/fresh.bin\" inbox/").exit_code, 0);
  ASSERT_TRUE(test::eventually([&] { return proxy.count("-> 503") >= 1; }))
      << "the new file's upload was not tried";
  for (int i = 1; i < 8; ++i)
    EXPECT_TRUE(test::read_file(b / name(i)) == files[static_cast<size_t>(i)]) << name(i);
  EXPECT_TRUE(test::eventually([&] { return stored_bytes(b) <= kBudget; }));
  EXPECT_EQ(xattr(b, "inbox/fresh.bin", "local"), "1") << "an unuploaded file was evicted";
  EXPECT_EQ(xattr(b, name(0), "local"), "1") << "a pinned file was evicted";
  EXPECT_EQ(jobs_with_status(b.recallfs({"jobs", "--json"}), "completed"), 0u);
  EXPECT_EQ(test::read_file(b / "inbox/fresh.bin"), fresh);
  RunResult status = b.recallfs({"status"});
  EXPECT_NE(status.out.find("of 3.0 MiB"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("pinned    1 blobs"), std::string::npos) << status.out;

  // Unpinned, it may go; pinned with setfattr, it comes back.
  RunResult unpin = b.recallfs({"unpin", (b / "inbox").string()});
  ASSERT_EQ(unpin.exit_code, 0) << unpin.err;
  EXPECT_EQ(xattr(b, name(0), "pinned"), "0");
  ASSERT_EQ(b.shell("setfattr -n user.recall.pinned -v 1 " + name(1)).exit_code, 0);
  EXPECT_EQ(xattr(b, name(1), "pinned"), "1");
  EXPECT_TRUE(test::eventually([&] { return xattr(b, name(1), "local") == "1"; }));
  // Only stored files can be pinned, and only with 1 or 0.
  EXPECT_NE(b.shell("setfattr -n user.recall.pinned -v 1 inbox").exit_code, 0);
  EXPECT_NE(b.shell("setfattr -n user.recall.pinned -v yes " + name(2)).exit_code, 0);
  // A path outside any mount is refused clearly.
  RunResult outside = b.recallfs({"pin", b.tmp().string()});
  EXPECT_NE(outside.exit_code, 0);
  EXPECT_NE(outside.err.find("not in a mounted recallfs library"), std::string::npos)
      << outside.err;
}

TEST(OnDemand, VerifyRepairsACorruptObjectFromTheCloud) {
  RECALL_REQUIRE_SWIFT();
  RECALL_REQUIRE_POSTGRES();
  PostgresServer& pg = PostgresServer::get();
  pg.add_user("repair");
  std::string token = pg.issue_token("repair");
  CloudDevice a;
  a.connect(token, "repair-bucket");
  std::string content = test::random_file(a.dir / "paper.pdf", 5 << 20, 14);
  ASSERT_EQ(a.cli({"add", (a.dir / "paper.pdf").string()}).exit_code, 0);
  ASSERT_EQ(a.cli({"replicate"}).exit_code, 0);
  std::string sha = test::sha256_of(content);
  fs::path object = Library::open(a.data, {})->blobs().object_path(sha);
  {
    // Bit rot: one byte of the stored object changes.
    fs::permissions(object, fs::perms::owner_write, fs::perm_options::add);
    std::string bytes = test::read_file(object);
    bytes[3 << 20] ^= 0x01;
    test::write_file(object, bytes);
  }
  RunResult v = a.cli({"verify"});
  EXPECT_EQ(v.exit_code, 0) << v.out << v.err;
  EXPECT_NE(v.out.find("repaired 1 from their holders"), std::string::npos) << v.out;
  EXPECT_TRUE(test::read_file(object) == content);
  RunResult again = a.cli({"verify"});
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_NE(again.out.find("0 modified, 0 missing"), std::string::npos) << again.out;
}

TEST(OnDemand, ADeviceReadsFromAPeerAndWithThePeerGoneFromTheCloud) {
  RECALL_REQUIRE_SWIFT();
  RECALL_REQUIRE_POSTGRES();
  RECALL_REQUIRE_FUSE();
  PostgresServer& pg = PostgresServer::get();
  pg.add_user("holders");
  std::string token = pg.issue_token("holders");
  FaultProxy cloud_seen_by_b(*test::swift_endpoint());  // passes; counts b's requests
  test::MountedLibrary a, b;
  a.unmount();
  ASSERT_EQ(a.recallfs({"peer", "set", "--listen", "127.0.0.1:0"}).exit_code, 0);
  connect(a, token, "holders-bucket", *test::swift_endpoint());
  a.mount();
  connect(b, token, "holders-bucket", cloud_seen_by_b.endpoint());
  std::mt19937_64 rng(15);
  std::string paper = test::random_bytes(rng, 9 << 20);
  std::string notes = test::random_bytes(rng, 5 << 20);
  test::write_file(a / "inbox/paper.pdf", paper);
  test::write_file(a / "inbox/notes.txt", notes);
  ASSERT_TRUE(test::eventually(
      [&] {
        return jobs_with_status(a.recallfs({"jobs", "--json"}), "completed") == 2;
      },
      std::chrono::seconds(60)));
  // b knows a as a holder (its address and its device_blobs rows).
  std::string a_device = Library::open(a.data(), {})->catalog().device_id();
  ASSERT_TRUE(test::eventually(
      [&] {
        auto cat = b.catalog();
        auto dev = cat->get_device(a_device);
        auto held = cat->get_device_blob(a_device, test::sha256_of(paper));
        return fs::exists(b / "inbox/notes.txt") && dev && dev->peer_address && held &&
               held->present;
      },
      std::chrono::seconds(20)));

  EXPECT_TRUE(test::read_file(b / "inbox/paper.pdf") == paper);
  EXPECT_EQ(cloud_seen_by_b.count("GET "), 0u) << "b went to the cloud while a could serve";

  // a stops; a liar also claims the notes. b skips both and reads the cloud.
  a.unmount();
  test::LyingPeer liar("holders", notes, {100, (4 << 20) + 100});  // both chunks are bad
  ASSERT_EQ(b.recallfs({"sync"}).exit_code, 0);
  EXPECT_TRUE(test::read_file(b / "inbox/notes.txt") == notes);
  EXPECT_GE(cloud_seen_by_b.count("GET "), 1u);
  EXPECT_NE(test::read_file(b.data() / "recallfs.log").find("peer liar sent bad bytes"),
            std::string::npos);
  // The account knows b holds both now.
  std::string b_device = Library::open(b.data(), {})->catalog().device_id();
  EXPECT_TRUE(test::eventually([&] {
    return pg.psql("SELECT count(*) FROM recall.device_blobs WHERE present = 1 AND device_id = '" +
                   b_device + "'") == "2\n";
  }));
}

}  // namespace
}  // namespace recall
