// Bytes on demand across real parts: Swift's S3 layer (started by the rig),
// PostgreSQL, mounted devices and peers; a fault-injecting proxy
// (tests/rig/fault_proxy.py) is the only stand-in, at the network seam.
//
// What is tried: 503s, resets and stalls on every request of an upload and
// of a read; a daemon killed with an upload half done; a cache budget smaller
// than the library, with pinned, open and not-yet-uploaded bytes in it; a
// corrupt local object; a peer that goes away, a peer that lies, and holders
// that never answer; requests held unanswered to see which reads share them.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "base/error.h"
#include "base/fd.h"
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

using test::connect_mounted;
using test::stored_bytes;
using test::xattr;

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
  connect_mounted(b, token, "faulty-bucket", proxy.endpoint());
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
  connect_mounted(a, token, "killed-bucket", proxy.endpoint());
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

TEST(OnDemand, TheCacheStaysWithinItsBudgetAndKeepsPinnedOpenAndUnuploadedBytes) {
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
  connect_mounted(b, token, "cache-bucket", proxy.endpoint());
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
  // An open file's bytes stay while it is open, least recently used or not:
  // the other files are then read from their holders and not kept.
  // (Read again until kept: the kernel closes the file read before it
  // after close() returns, and while that one counts as open there may be
  // no room to keep this one. Served but not kept, its pages may stay in
  // the kernel's cache, which would answer the next read without asking
  // the daemon: they are dropped first, as memory pressure would.)
  auto read_uncached = [&](const std::string& rel) {
    UniqueFd fd(::open((b / rel).c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return std::string();
    ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED);
    return test::read_file(b / rel);
  };
  EXPECT_TRUE(test::eventually([&] {
    return read_uncached(name(7)) == files[7] && xattr(b, name(7), "local") == "1";
  })) << b.recallfs({"status"}).out
      << test::read_file(b.data() / "recallfs.log");
  {
    UniqueFd held(::open((b / name(7)).c_str(), O_RDONLY));
    ASSERT_GE(held.get(), 0) << std::strerror(errno);
    for (int i = 1; i < 7; ++i)
      EXPECT_TRUE(test::read_file(b / name(i)) == files[static_cast<size_t>(i)]) << name(i);
    EXPECT_EQ(xattr(b, name(7), "local"), "1") << "an open file was evicted";
    EXPECT_LE(stored_bytes(b), kBudget);
  }
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
  // Files and folders can be pinned, not blobs/ as a whole; with 1 or 0 only.
  RunResult blobs = b.shell("setfattr -n user.recall.pinned -v 1 blobs");
  EXPECT_NE(blobs.exit_code, 0);
  EXPECT_NE(blobs.err.find("not permitted"), std::string::npos) << blobs.err;
  EXPECT_NE(b.shell("setfattr -n user.recall.pinned -v yes " + name(2)).exit_code, 0);
  EXPECT_NE(b.shell("setfattr -n user.recall.pinned -v yes inbox").exit_code, 0);
  EXPECT_EQ(xattr(b, "inbox", "pinned"), "0");
  // A path outside any mount is refused clearly.
  RunResult outside = b.recallfs({"pin", b.tmp().string()});
  EXPECT_NE(outside.exit_code, 0);
  EXPECT_NE(outside.err.find("not in a mounted recallfs library"), std::string::npos)
      << outside.err;
}

// A device whose clock is an hour slow: S3 refuses every request (SigV4
// dates them by this clock). The error says so, by how much, and what to
// do; before, it said to check the keys and region.
TEST(OnDemand, ACloudThatRefusesThisDevicesClockIsToldApart) {
  RECALL_REQUIRE_SWIFT();
  RECALL_REQUIRE_POSTGRES();
  std::optional<std::vector<std::string>> slow = test::clock_off_by("-1h");
  if (!slow) GTEST_SKIP() << "libfaketime is not installed (apt install faketime)";
  PostgresServer& pg = PostgresServer::get();
  pg.add_user("skewed");
  std::string token = pg.issue_token("skewed");
  CloudDevice a;
  a.connect(token, "skewed-bucket");
  test::random_file(a.dir / "paper.pdf", 1 << 20, 31);
  ASSERT_EQ(a.cli({"add", (a.dir / "paper.pdf").string()}).exit_code, 0);
  RunResult r = test::run({test::recallfs_binary(), "replicate", "--data", a.data.string()}, *slow);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE((r.out + r.err)
                .find("this device's clock is off by 60 min (behind the server's); "
                      "set it"),
            std::string::npos)
      << r.out << r.err;
  EXPECT_EQ((r.out + r.err).find("check the access key"), std::string::npos) << r.out << r.err;
  // With the clock right, it uploads.
  RunResult ok = a.cli({"replicate"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
}

// `recallfs replicate` is "upload now": right after an outage it tries the
// uploads that failed in it at once. Before, they waited out their backoff
// (up to 5 minutes): the command sent nothing, showed the outage's error
// and exited 1.
TEST(OnDemand, ReplicateRightAfterAnOutageUploadsAtOnce) {
  RECALL_REQUIRE_SWIFT();
  RECALL_REQUIRE_POSTGRES();
  PostgresServer& pg = PostgresServer::get();
  pg.add_user("outage-over");
  std::string token = pg.issue_token("outage-over");
  FaultProxy proxy(*test::swift_endpoint());
  CloudDevice a;
  a.connect(token, "outage-over-bucket", proxy.endpoint());
  test::random_file(a.dir / "paper.pdf", 1 << 20, 32);
  ASSERT_EQ(a.cli({"add", (a.dir / "paper.pdf").string()}).exit_code, 0);
  proxy.set_mode("no-uploads");
  RunResult failed = a.cli({"replicate"});
  EXPECT_NE(failed.exit_code, 0);
  EXPECT_NE(failed.err.find("503"), std::string::npos) << failed.err;
  proxy.set_mode("pass");
  const size_t puts_before = proxy.count("PUT ");
  RunResult ok = a.cli({"replicate"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("uploaded 1 of 1"), std::string::npos) << ok.out;
  EXPECT_GT(proxy.count("PUT "), puts_before) << "nothing was sent";
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

// One file edited on two mounted devices while the sync server was down:
// once it is back, both devices show the newer edit in the file and the
// older in "notes (conflicted copy DATE).txt", and read both byte for byte
// (the other device's version from the cloud). Before, the older edit was
// lost on both.
TEST(OnDemand, AFileEditedOnTwoDevicesApartKeepsBothVersionsReadableOnBoth) {
  RECALL_REQUIRE_SWIFT();
  RECALL_REQUIRE_POSTGRES();
  RECALL_REQUIRE_FUSE();
  PostgresServer& pg = PostgresServer::get();
  pg.add_user("editedapart");
  std::string token = pg.issue_token("editedapart");
  test::MountedLibrary a, b;
  connect_mounted(a, token, "editedapart-bucket", *test::swift_endpoint());
  connect_mounted(b, token, "editedapart-bucket", *test::swift_endpoint());
  test::write_file(a / "inbox/notes.txt", "version 1\n");
  ASSERT_TRUE(test::eventually(
      [&] { return xattr(b, "inbox/notes.txt", "sha256") == test::sha256_of("version 1\n"); },
      std::chrono::seconds(30)));

  pg.stop();
  test::write_file(a / "inbox/notes.txt", "edited on a\n");
  test::write_file(b / "inbox/notes.txt", "edited on b, later\n");
  pg.start();
  ASSERT_TRUE(pg.ok());
  // What a device shows in inbox/: each name with what it reads as.
  auto shown = [](test::MountedLibrary& m) {
    std::map<std::string, std::string> out;
    for (const auto& e : fs::directory_iterator(m / "inbox"))
      out[e.path().filename().string()] = test::read_file(e.path());
    return out;
  };
  std::map<std::string, std::string> on_a, on_b;
  EXPECT_TRUE(test::eventually(
      [&] {
        on_a = shown(a);
        on_b = shown(b);
        return on_a.size() == 2 && on_a == on_b;
      },
      std::chrono::seconds(60)))
      << "a shows " << on_a.size() << " files, b " << on_b.size();
  EXPECT_EQ(on_a["notes.txt"], "edited on b, later\n") << "the newer edit stays in the file";
  std::string copy;
  for (const auto& [name, content] : on_a)
    if (name != "notes.txt") copy = name;
  EXPECT_TRUE(
      std::regex_match(copy, std::regex(R"(notes \(conflicted copy \d{4}-\d{2}-\d{2}\)\.txt)")))
      << copy;
  EXPECT_EQ(on_a[copy], "edited on a\n") << "the older edit, kept";
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
  connect_mounted(a, token, "holders-bucket", *test::swift_endpoint());
  a.mount();
  connect_mounted(b, token, "holders-bucket", cloud_seen_by_b.endpoint());
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

  // a stops: it withdraws its address as it unmounts, so b no longer asks
  // it (each read would first wait out a refused or, for a device that went
  // to sleep, unanswered connection). A liar also claims the notes. b skips
  // it and reads the cloud.
  std::string a_name = b.catalog()->get_device(a_device)->name;
  a.unmount();
  EXPECT_EQ(
      pg.psql("SELECT peer_address IS NULL FROM recall.devices WHERE id = '" + a_device + "'"),
      "t\n");
  test::LyingPeer liar("holders", notes, {100, (4 << 20) + 100});  // both chunks are bad
  ASSERT_EQ(b.recallfs({"sync"}).exit_code, 0);
  EXPECT_TRUE(test::eventually([&] {
    auto dev = b.catalog()->get_device(a_device);
    return dev && !dev->peer_address;
  }));
  EXPECT_TRUE(test::read_file(b / "inbox/notes.txt") == notes);
  EXPECT_GE(cloud_seen_by_b.count("GET "), 1u);
  std::string log = test::read_file(b.data() / "recallfs.log");
  EXPECT_NE(log.find("peer liar sent bad bytes"), std::string::npos);
  EXPECT_EQ(log.find("peer " + a_name + ": "), std::string::npos)
      << "b asked a after a had stopped:\n"
      << log;
  // The account knows b holds both now.
  std::string b_device = Library::open(b.data(), {})->catalog().device_id();
  EXPECT_TRUE(test::eventually([&] {
    return pg.psql("SELECT count(*) FROM recall.device_blobs WHERE present = 1 AND device_id = '" +
                   b_device + "'") == "2\n";
  }));
}

// Signs `a` in to a new account `account` with the cloud set (bucket
// "<account>-bucket"), adds `size` random bytes as `name`, uploads them and
// pushes the rows. Returns the account's token and the bytes.
std::pair<std::string, std::string> account_with_file(CloudDevice& a, const std::string& account,
                                                      const std::string& name, size_t size,
                                                      uint64_t seed) {
  PostgresServer& pg = PostgresServer::get();
  pg.add_user(account);
  std::string token = pg.issue_token(account);
  a.connect(token, account + "-bucket");
  std::string content = test::random_file(a.dir / name, size, seed);
  EXPECT_EQ(a.cli({"add", (a.dir / name).string()}).exit_code, 0);
  EXPECT_EQ(a.cli({"replicate"}).exit_code, 0);
  EXPECT_EQ(a.cli({"sync"}).exit_code, 0);
  return {token, content};
}

// The byte ranges of the GETs in a proxy's log, in order.
std::vector<std::pair<uint64_t, uint64_t>> requested_ranges(const FaultProxy& proxy) {
  static const std::regex get(R"(^GET \S+ bytes=(\d+)-(\d+) )");
  std::vector<std::pair<uint64_t, uint64_t>> out;
  std::istringstream in(proxy.log());
  std::smatch m;
  for (std::string line; std::getline(in, line);)
    if (std::regex_search(line, m, get)) out.emplace_back(std::stoull(m[1]), std::stoull(m[2]));
  return out;
}

// What reads ask the cloud for, seen at a proxy that can hold GETs (it
// answers them with a trickle until released): a random read asks for the
// one chunk it touches; two readers of one chunk cause one request; a
// sequential reader has several chunks requested at once ahead of it; and
// over all of it, no byte is asked for twice.
TEST(OnDemand, ReadsAskForWhatTheyTouchOnceAndSequentialReadsAhead) {
  RECALL_REQUIRE_SWIFT();
  RECALL_REQUIRE_POSTGRES();
  RECALL_REQUIRE_FUSE();
  constexpr uint64_t kChunk = 4 << 20, kSize = 10 * kChunk;
  CloudDevice a;
  auto [token, content] = account_with_file(a, "fetches", "book.pdf", kSize, 17);
  FaultProxy cloud(*test::swift_endpoint());
  test::MountedLibrary b;
  connect_mounted(b, token, "fetches-bucket", cloud.endpoint());
  ASSERT_TRUE(test::eventually([&] { return fs::exists(b / "inbox/book.pdf"); }));
  // One descriptor for the whole test: fetched chunks stay with the open file.
  UniqueFd fd(::open((b / "inbox/book.pdf").c_str(), O_RDONLY));
  ASSERT_GE(fd.get(), 0) << std::strerror(errno);
  auto matches = [&](uint64_t at, size_t n) {
    std::string buf(n, '\0');
    return ::pread(fd.get(), buf.data(), n, static_cast<off_t>(at)) == static_cast<ssize_t>(n) &&
           buf == content.substr(at, n);
  };
  auto range_of = [&](uint64_t first, uint64_t chunks) {
    return "bytes=" + std::to_string(first * kChunk) + "-" +
           std::to_string((first + chunks) * kChunk - 1);
  };

  // A random read: the one chunk it touches (6 of 10).
  size_t gets = cloud.count("GET ");
  EXPECT_TRUE(matches(6 * kChunk + (1 << 20) + 100, 4096));
  EXPECT_EQ(cloud.count("GET ") - gets, 1u) << cloud.log();
  EXPECT_EQ(cloud.count(range_of(6, 1)), 1u) << cloud.log();

  // Two readers of chunk 8 while its request is held: one request. The
  // second reader's read-ahead request (chunk 9) shows it is past the point
  // where it would have asked for chunk 8 itself.
  cloud.set_mode("hold-reads");
  bool first_ok = false, second_ok = false;
  std::thread first([&] { first_ok = matches(8 * kChunk, 4096); });
  EXPECT_TRUE(test::eventually([&] { return cloud.count(range_of(8, 1)) == 1; })) << cloud.log();
  std::thread second([&] { second_ok = matches(8 * kChunk + (2 << 20), 4096); });
  EXPECT_TRUE(test::eventually([&] { return cloud.count(range_of(9, 1)) == 1; })) << cloud.log();
  cloud.set_mode("pass");
  first.join();
  second.join();
  EXPECT_TRUE(first_ok);
  EXPECT_TRUE(second_ok);
  EXPECT_EQ(cloud.count(range_of(8, 1)), 1u) << cloud.log();

  // A sequential reader from the start: once its reads follow each other,
  // with the requests held, more than one is under way at once.
  EXPECT_TRUE(matches(0, 128 << 10));
  cloud.set_mode("hold-reads");
  gets = cloud.count("GET ");
  bool all_ok = false;
  std::thread reader([&] {
    all_ok = true;
    for (uint64_t at = 128 << 10; at < kSize; at += 128 << 10)
      all_ok = all_ok && matches(at, 128 << 10);
  });
  EXPECT_TRUE(test::eventually([&] { return cloud.count("GET ") - gets >= 2; })) << cloud.log();
  cloud.set_mode("pass");
  reader.join();
  EXPECT_TRUE(all_ok);

  // Every byte was asked for exactly once.
  std::vector<std::pair<uint64_t, uint64_t>> ranges = requested_ranges(cloud);
  std::sort(ranges.begin(), ranges.end());
  uint64_t next = 0;
  for (const auto& [from, to] : ranges) {
    EXPECT_EQ(from, next) << "a gap or an overlap before byte " << from << "\n" << cloud.log();
    next = to + 1;
  }
  EXPECT_EQ(next, kSize) << cloud.log();
}

// Every holder accepts connections and never answers (a dead network, a
// peer that hangs): a read fails with EIO in seconds, not minutes; the
// folder keeps listing and the file keeps its attributes meanwhile; a read
// right after fails at once instead of waiting again; when the cloud comes
// back, the file reads whole.
TEST(OnDemand, WhenNoHolderAnswersAReadFailsInSecondsAndTheFolderKeepsWorking) {
  RECALL_REQUIRE_SWIFT();
  RECALL_REQUIRE_POSTGRES();
  RECALL_REQUIRE_FUSE();
  CloudDevice a;
  auto [token, content] = account_with_file(a, "silent", "paper.pdf", 9 << 20, 16);
  FaultProxy cloud(*test::swift_endpoint(), 600);
  FaultProxy hanging_peer(*test::swift_endpoint(), 600);
  hanging_peer.set_mode("stall-reads");
  std::string peer_id = test::register_holder("silent", test::sha256_of(content), "hanging",
                                              hanging_peer.endpoint().substr(7));
  test::MountedLibrary b;
  connect_mounted(b, token, "silent-bucket", cloud.endpoint());
  ASSERT_TRUE(test::eventually(
      [&] {
        auto dev = b.catalog()->get_device(peer_id);
        return fs::exists(b / "inbox/paper.pdf") && dev && dev->peer_address;
      },
      std::chrono::seconds(20)));
  cloud.set_mode("stall-reads");

  struct Outcome {
    ssize_t got = 0;
    int error = 0;
    std::chrono::steady_clock::duration took{};
  };
  auto read_head = [&] {
    Outcome o;
    auto t0 = std::chrono::steady_clock::now();
    int fd = ::open((b / "inbox/paper.pdf").c_str(), O_RDONLY);
    if (fd < 0) {
      o.got = -1;
      o.error = errno;
    } else {
      std::vector<char> buf(64 << 10);
      o.got = ::pread(fd, buf.data(), buf.size(), 0);
      o.error = errno;
      ::close(fd);
    }
    o.took = std::chrono::steady_clock::now() - t0;
    return o;
  };
  Outcome first;
  std::thread reader([&] { first = read_head(); });
  // While the read waits on holders that never answer, the folder works.
  EXPECT_TRUE(
      test::eventually([&] { return hanging_peer.count("GET ") + cloud.count("GET ") >= 1; }));
  RunResult ls = b.shell("timeout 10 ls -l inbox");
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_NE(ls.out.find("paper.pdf"), std::string::npos) << ls.out;
  RunResult st = b.shell("timeout 10 stat -c %s inbox/paper.pdf");
  EXPECT_EQ(st.exit_code, 0) << st.err;
  EXPECT_EQ(st.out, std::to_string(content.size()) + "\n");
  reader.join();
  EXPECT_EQ(first.got, -1);
  EXPECT_EQ(first.error, EIO) << std::strerror(first.error);
  EXPECT_LT(first.took, std::chrono::seconds(30)) << "the read waited minutes for silent holders\n"
                                                  << test::read_file(b.data() / "recallfs.log");
  EXPECT_GE(hanging_peer.count("GET "), 1u) << "the peer was not asked";
  EXPECT_GE(cloud.count("GET "), 1u) << "the cloud was not asked";
  // Asked again at once: holders that just did not answer are not waited for again.
  Outcome again = read_head();
  EXPECT_EQ(again.got, -1);
  EXPECT_EQ(again.error, EIO) << std::strerror(again.error);
  EXPECT_LT(again.took, std::chrono::seconds(3));
  // The cloud is back: the file reads whole (once the holders are asked again).
  cloud.set_mode("pass");
  EXPECT_TRUE(test::eventually([&] { return read_head().got > 0; }, std::chrono::seconds(60)));
  EXPECT_TRUE(test::read_file(b / "inbox/paper.pdf") == content);
}

}  // namespace
}  // namespace recall
