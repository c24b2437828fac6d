// Peers: the blob server refuses every request it should, and a device
// reads another device's files from it; a peer that sends bad bytes is
// skipped for the next holder.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
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
using test::PostgresServer;
using test::RunResult;
using test::TempDir;

struct Answer {
  int status = 0;
  std::string body;
};

// A request with curl; `headers` as "Name: value".
Answer http(const std::string& url, const std::vector<std::string>& headers, bool head = false) {
  std::vector<std::string> argv = {"curl", "-s", "--path-as-is", "-o", "-", "-w", "\n%{http_code}"};
  if (head) argv.push_back("-I");
  for (const auto& h : headers) {
    argv.push_back("-H");
    argv.push_back(h);
  }
  argv.push_back(url);
  RunResult r = test::run(argv);
  Answer a;
  size_t nl = r.out.rfind('\n');
  a.status = std::atoi(r.out.c_str() + nl + 1);
  a.body = r.out.substr(0, nl);
  return a;
}

std::vector<std::string> signed_headers(const std::vector<unsigned char>& key,
                                        const std::string& path, const std::string& range,
                                        int64_t date = now_ms() / 1000) {
  std::vector<std::string> h = {
      "X-Recall-Date: " + std::to_string(date),
      "X-Recall-Signature: " + peer_signature(key, "GET", path, range, date)};
  if (!range.empty()) h.push_back("Range: " + range);
  return h;
}

TEST(Peers, TheBlobServerServesSignedRequestsOnly) {
  TempDir dir;
  auto store = BlobStore::open(dir.path(), {.create = true});
  std::mt19937_64 rng(1);
  std::string data = test::random_bytes(rng, 100000);
  std::istringstream in(data);
  std::string sha = store->put(in).sha256;
  std::vector<unsigned char> key(32, 7), other(32, 9);
  PeerServer server(*store, "127.0.0.1:0", [&] { return std::optional(key); });
  std::string base = "http://" + server.address();
  std::string path = "/v1/blobs/" + sha;

  Answer ok = http(base + path, signed_headers(key, path, "bytes=1000-1999"));
  EXPECT_EQ(ok.status, 206);
  EXPECT_EQ(ok.body, data.substr(1000, 1000));
  Answer whole = http(base + path, signed_headers(key, path, ""));
  EXPECT_EQ(whole.status, 200);
  EXPECT_TRUE(whole.body == data);
  EXPECT_EQ(http(base + path, signed_headers(key, path, "bytes=-10")).body,
            data.substr(data.size() - 10));

  // Refused: unsigned, stale, another account's key, a tampered range.
  EXPECT_EQ(http(base + path, {}).status, 401);
  EXPECT_EQ(http(base + path, signed_headers(key, path, "", now_ms() / 1000 - 3600)).status, 401);
  EXPECT_EQ(http(base + path, signed_headers(other, path, "")).status, 403);
  auto tampered = signed_headers(key, path, "bytes=0-9");
  tampered.back() = "Range: bytes=0-99999";
  EXPECT_EQ(http(base + path, tampered).status, 403);
  // Malformed: not a blob name, traversal, absurd ranges; and blobs not here.
  for (const std::string& bad :
       {std::string("/v1/blobs/xyz"), std::string("/v1/blobs/../../etc/passwd"),
        "/v1/blobs/" + std::string(64, 'A')}) {
    Answer a = http(base + bad, signed_headers(key, bad, ""));
    EXPECT_GE(a.status, 400) << bad;
    EXPECT_LT(a.status, 500) << bad;
    EXPECT_EQ(a.body.find("root:"), std::string::npos) << bad;
  }
  EXPECT_EQ(http(base + path, signed_headers(key, path, "bytes=999999999-")).status, 416);
  EXPECT_EQ(http(base + path, signed_headers(key, path, "bytes=50-10")).status, 416);
  EXPECT_EQ(http(base + path, signed_headers(key, path, "bytes=abc")).status, 400);
  EXPECT_EQ(http(base + path, signed_headers(key, path, "bytes=0-1,5-6")).status, 400);
  std::string absent = "/v1/blobs/" + std::string(64, 'b');
  EXPECT_EQ(http(base + absent, signed_headers(key, absent, "")).status, 404);
  // Not signed in (no key): nothing is served.
  PeerServer closed(*store, "127.0.0.1:0",
                    [] { return std::optional<std::vector<unsigned char>>(); });
  EXPECT_EQ(http("http://" + closed.address() + path, signed_headers(key, path, "")).status, 403);
}

TEST(Peers, ADeviceReadsAnotherDevicesFilesAndSkipsAPeerWithBadBytes) {
  RECALL_REQUIRE_FUSE();
  RECALL_REQUIRE_POSTGRES();
  PostgresServer& pg = PostgresServer::get();
  pg.add_user("peers");
  std::string token = pg.issue_token("peers");
  // Device a serves peers; device b has no other holder than a.
  test::MountedLibrary a, b;
  a.unmount();
  ASSERT_EQ(a.recallfs({"peer", "set", "--listen", "127.0.0.1:0"}).exit_code, 0);
  ASSERT_EQ(a.recallfs({"signin", "--server", pg.client_url(), "--token", token}).exit_code, 0);
  a.mount();
  ASSERT_EQ(b.recallfs({"signin", "--server", pg.client_url(), "--token", token}).exit_code, 0);
  std::mt19937_64 rng(2);
  std::string paper = test::random_bytes(rng, 9 << 20);
  test::write_file(a / "inbox/paper.pdf", paper);
  ASSERT_TRUE(test::eventually([&] { return fs::exists(b / "inbox/paper.pdf"); },
                               std::chrono::seconds(10)));
  // b knows a's address once a has registered it and b has pulled it.
  EXPECT_TRUE(test::eventually(
      [&] {
        try {
          return test::read_file(b / "inbox/paper.pdf") == paper;
        } catch (const std::exception&) {
          return false;  // a's address not pulled yet: EIO
        }
      },
      std::chrono::seconds(10)))
      << "b could not read a's file from a: " << test::read_file(b.data() / "recallfs.log");
  EXPECT_TRUE(test::eventually([&] {
    return b.shell("getfattr --only-values -n user.recall.local inbox/paper.pdf").out == "1";
  }));
  // a has no cloud, yet it describes its blobs chunk by chunk, so that b
  // verifies (and serves) each 4 MiB as it arrives rather than the whole.
  EXPECT_TRUE(test::eventually([&] {
    auto meta = Library::open(b.data(), {})->catalog().get_blob(test::sha256_of(paper));
    return meta && meta->chunk_size == (4 << 20) && meta->chunk_manifest.size() == 3 * 32;
  })) << "no chunk manifest reached b";

  // A bad peer: a real blob server whose copy of the blob is damaged,
  // registered as a holder of the account. b must skip it for a.
  std::string notes = test::random_bytes(rng, 5 << 20);
  test::write_file(a / "inbox/notes.txt", notes);
  ASSERT_TRUE(test::eventually([&] { return fs::exists(b / "inbox/notes.txt"); },
                               std::chrono::seconds(10)));
  std::string sha = test::sha256_of(notes);
  test::LyingPeer liar("peers", notes, {100});
  // First the liar is the only holder b knows: the read fails, and no byte
  // of the damaged chunk is returned.
  std::string a_device = Library::open(a.data(), {})->catalog().device_id();
  pg.psql("UPDATE recall.device_blobs SET present = 0 WHERE device_id = '" + a_device +
          "' AND sha256 = '" + sha + "'");
  ASSERT_EQ(b.recallfs({"sync"}).exit_code, 0);
  {
    int fd = ::open((b / "inbox/notes.txt").c_str(), O_RDONLY);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    std::vector<char> buf(4096);
    EXPECT_EQ(::pread(fd, buf.data(), buf.size(), 0), -1) << "bad bytes were served";
    EXPECT_EQ(errno, EIO);
    ::close(fd);
  }
  EXPECT_NE(test::read_file(b.data() / "recallfs.log").find("peer liar sent bad bytes"),
            std::string::npos);
  // With a holding it again, the same read succeeds with the right bytes.
  pg.psql("UPDATE recall.device_blobs SET present = 1 WHERE device_id = '" + a_device +
          "' AND sha256 = '" + sha + "'");
  ASSERT_EQ(b.recallfs({"sync"}).exit_code, 0);
  EXPECT_TRUE(test::read_file(b / "inbox/notes.txt") == notes);
}

}  // namespace
}  // namespace recall
