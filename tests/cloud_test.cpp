// Bytes in the cloud, against OpenStack Swift's S3 layer started by the test
// rig (tests/rig/swift.sh, a CTest fixture), which checks SigV4 signatures
// and body hashes: the S3 client, uploads that resume, and a second device
// reading a file whose bytes are only in the cloud, verified.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <thread>

#include "base/error.h"
#include "base/file_io.h"
#include "cas/blob_info.h"
#include "fs/fetcher.h"
#include "fs/library.h"
#include "sync/s3_client.h"
#include "tests/cloud_fixture.h"
#include "tests/mount_fixture.h"
#include "tests/pg_fixture.h"
#include "tests/test_util.h"

extern char** environ;

namespace recall {
namespace {
namespace fs = std::filesystem;
using test::PostgresServer;
using test::RunResult;
using test::TempDir;

using test::CloudDevice;
using test::random_file;
using test::swift_config;
using test::swift_endpoint;

// Signs the mounted library `b` in to the account of `token`, with the
// cloud set to `bucket` on the rig's Swift.
void sign_in_with_cloud(test::MountedLibrary& b, const std::string& token,
                        const std::string& bucket) {
  PostgresServer& pg = PostgresServer::get();
  RunResult s = b.recallfs({"signin", "--server", pg.client_url(), "--token", token});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  RunResult c = b.recallfs({"cloud", "set", "--endpoint", *swift_endpoint(), "--bucket", bucket,
                            "--access-key", "test:tester", "--secret-key", "testing"});
  ASSERT_EQ(c.exit_code, 0) << c.err;
}

// Adds `file` on device `a`, uploads it and pushes its rows.
void add_and_upload(const CloudDevice& a, const fs::path& file) {
  ASSERT_EQ(a.cli({"add", file.string()}).exit_code, 0);
  ASSERT_EQ(a.cli({"replicate"}).exit_code, 0);
  ASSERT_EQ(a.cli({"sync"}).exit_code, 0);
}

TEST(Cloud, TheS3ClientSignsWhatASigningServerAccepts) {
  RECALL_REQUIRE_SWIFT();
  TempDir dir;
  S3Client s3(swift_config("client-test"));
  s3.create_bucket();
  s3.create_bucket();  // again: already ours
  std::string data = random_file(dir / "f", 21 << 20, 1);
  UniqueFd fd = open_file(dir / "f", O_RDONLY);

  s3.put("a/b/small", fd.get(), 100, 5000);
  EXPECT_EQ(s3.head("a/b/small"), 5000u);
  std::vector<std::byte> buf(1000);
  ASSERT_EQ(s3.get_range("a/b/small", 2000, buf), 1000u);
  EXPECT_EQ(std::memcmp(buf.data(), data.data() + 2100, 1000), 0);
  EXPECT_FALSE(s3.head("a/b/none"));

  // Multipart, interrupted after one part, resumed from list_parts.
  std::string id = s3.create_multipart("big");
  std::string e1 = s3.upload_part("big", id, 1, fd.get(), 0, 8 << 20);
  std::vector<S3Part> have = s3.list_parts("big", id);
  ASSERT_EQ(have.size(), 1u);
  EXPECT_EQ(have[0].number, 1);
  EXPECT_EQ(have[0].size, 8u << 20);
  std::string e2 = s3.upload_part("big", id, 2, fd.get(), 8 << 20, 8 << 20);
  std::string e3 = s3.upload_part("big", id, 3, fd.get(), 16 << 20, 5 << 20);
  s3.complete_multipart("big", id, {have[0], {2, e2, 0}, {3, e3, 0}});
  EXPECT_EQ(s3.head("big"), 21u << 20);
  std::vector<std::byte> mid(1 << 20);
  ASSERT_EQ(s3.get_range("big", (8 << 20) - 100, mid), mid.size());
  EXPECT_EQ(std::memcmp(mid.data(), data.data() + (8 << 20) - 100, mid.size()), 0);

  // A wrong secret is refused by the server's signature check, clearly.
  S3Config bad = swift_config("client-test");
  bad.secret_key = "not-the-secret";
  S3Client wrong(bad);
  try {
    wrong.head("big");
    FAIL() << "a wrong secret was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), EACCES) << e.what();
    EXPECT_EQ(std::string(e.what()).find("not-the-secret"), std::string::npos);
  }
  // Query strings with characters to encode are signed right.
  EXPECT_EQ(canonical_query({{"uploadId", "a b/c=d"}, {"partNumber", "2"}}),
            "partNumber=2&uploadId=a%20b%2Fc%3Dd");
}

TEST(Cloud, ASecondDeviceReadsBytesThatAreOnlyInTheCloud) {
  RECALL_REQUIRE_SWIFT();
  RECALL_REQUIRE_POSTGRES();
  RECALL_REQUIRE_FUSE();
  PostgresServer& pg = PostgresServer::get();
  pg.add_user("cloud-reader");
  std::string token = pg.issue_token("cloud-reader");
  CloudDevice a;
  a.connect(token, "reader-bucket");
  std::string big = random_file(a.dir / "big.bin", 21 << 20, 2);
  std::string small = random_file(a.dir / "small.txt", 3000, 3);
  ASSERT_EQ(a.cli({"add", (a.dir / "big.bin").string(), (a.dir / "small.txt").string()}).exit_code,
            0);
  RunResult up = a.cli({"replicate"});
  ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
  EXPECT_NE(up.out.find("uploaded 2 of 2"), std::string::npos) << up.out;
  ASSERT_EQ(a.cli({"sync"}).exit_code, 0);

  test::MountedLibrary b;
  ASSERT_NO_FATAL_FAILURE(sign_in_with_cloud(b, token, "reader-bucket"));
  ASSERT_TRUE(test::eventually([&] { return fs::exists(b / "inbox/big.bin"); }));
  struct stat st;
  ASSERT_EQ(::stat((b / "inbox/big.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_blocks, 0);
  // Byte for byte, read through the mount; random reads first, then all.
  {
    int fd = ::open((b / "inbox/big.bin").c_str(), O_RDONLY);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    char buf[4096];
    ASSERT_EQ(::pread(fd, buf, sizeof buf, 13 << 20), 4096);
    EXPECT_EQ(std::memcmp(buf, big.data() + (13 << 20), 4096), 0);
    ::close(fd);
  }
  EXPECT_TRUE(test::read_file(b / "inbox/big.bin") == big);
  EXPECT_EQ(test::read_file(b / "inbox/small.txt"), small);
  // Now kept here, and the account knows.
  EXPECT_TRUE(test::eventually([&] {
    return b.shell("getfattr --only-values -n user.recall.local inbox/big.bin").out == "1";
  }));
  EXPECT_TRUE(test::eventually([&] {
    std::string n = pg.psql(
        "SELECT count(*) FROM recall.device_blobs d JOIN recall.devices v ON v.id = d.device_id "
        "AND "
        "v.owner_id = d.owner_id WHERE d.present = 1 AND d.sha256 = '" +
        test::sha256_of(big) + "'");
    return n == "2\n";  // device a and device b (the cloud is not in devices)
  })) << "device b was not recorded as holding the blob";
}

TEST(Cloud, BadBytesInTheCloudAreNeverServed) {
  RECALL_REQUIRE_SWIFT();
  RECALL_REQUIRE_POSTGRES();
  RECALL_REQUIRE_FUSE();
  PostgresServer& pg = PostgresServer::get();
  pg.add_user("cloud-corrupt");
  std::string token = pg.issue_token("cloud-corrupt");
  CloudDevice a;
  a.connect(token, "corrupt-bucket");
  std::string content = random_file(a.dir / "doc.pdf", 6 << 20, 4);
  ASSERT_NO_FATAL_FAILURE(add_and_upload(a, a.dir / "doc.pdf"));
  // Flip a byte of the object in Swift's own storage.
  const char* rig = std::getenv("RECALL_SWIFT_DIR");
  bool flipped = false;
  for (const fs::path& p : test::files_under(fs::path(rig) / "srv/node")) {
    if (p.extension() != ".data" || fs::file_size(p) != content.size()) continue;
    std::string bytes = test::read_file(p);
    if (bytes != content) continue;
    bytes[5 << 20] ^= 0x40;
    test::write_file(p, bytes);
    flipped = true;
  }
  ASSERT_TRUE(flipped) << "could not find the object in Swift's storage";

  test::MountedLibrary b;
  ASSERT_NO_FATAL_FAILURE(sign_in_with_cloud(b, token, "corrupt-bucket"));
  ASSERT_TRUE(test::eventually([&] { return fs::exists(b / "inbox/doc.pdf"); }));
  int fd = ::open((b / "inbox/doc.pdf").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  // The first chunk (0-4 MiB) is good and is served; the second is bad.
  std::vector<char> buf(1 << 20);
  EXPECT_EQ(::pread(fd, buf.data(), buf.size(), 0), static_cast<ssize_t>(buf.size()));
  EXPECT_EQ(std::memcmp(buf.data(), content.data(), buf.size()), 0);
  errno = 0;
  EXPECT_EQ(::pread(fd, buf.data(), buf.size(), 5 << 20), -1) << "bad bytes were served";
  EXPECT_EQ(errno, EIO);
  ::close(fd);
  EXPECT_NE(test::read_file(b.data() / "recallfs.log").find("sent bad bytes"), std::string::npos);
  EXPECT_EQ(b.shell("getfattr --only-values -n user.recall.local inbox/doc.pdf").out, "0");
}

TEST(Cloud, AnInterruptedUploadResumes) {
  RECALL_REQUIRE_SWIFT();
  RECALL_REQUIRE_POSTGRES();
  PostgresServer& pg = PostgresServer::get();
  pg.add_user("cloud-resume");
  std::string token = pg.issue_token("cloud-resume");
  CloudDevice a;
  a.connect(token, "resume-bucket");
  std::string data = random_file(a.dir / "large.bin", 60 << 20, 5);
  ASSERT_EQ(a.cli({"add", (a.dir / "large.bin").string()}).exit_code, 0);
  // Upload in a child process and kill it once some parts are in.
  pid_t pid;
  std::string bin = test::recallfs_binary(), d = a.data.string();
  const char* argv[] = {"recallfs", "replicate", "--data", d.c_str(), nullptr};
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  ASSERT_EQ(posix_spawn(&pid, bin.c_str(), &fa, nullptr, const_cast<char**>(argv), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  uint64_t at_kill = 0;
  ASSERT_TRUE(test::eventually(
      [&] {
        RunResult j = a.cli({"jobs", "--json"});
        size_t p = j.out.find("\"bytes_transferred\": ");
        if (p == std::string::npos) return false;
        at_kill = std::stoull(j.out.substr(p + 21));
        return at_kill >= (16u << 20);
      },
      std::chrono::seconds(60)));
  ::kill(pid, SIGKILL);
  int status;
  ::waitpid(pid, &status, 0);
  RunResult again = a.cli({"replicate"});
  ASSERT_EQ(again.exit_code, 0) << again.out << again.err;
  RunResult jobs = a.cli({"jobs", "--json"});
  EXPECT_NE(jobs.out.find("\"completed\""), std::string::npos) << jobs.out;
  // The object in the cloud is the file.
  S3Config c = swift_config("resume-bucket");
  S3Client s3(c);
  std::string owner = pg.psql("SELECT id FROM recall.accounts WHERE name = 'cloud-resume'");
  owner.pop_back();
  std::string key = s3.key_for(owner, test::sha256_of(data));
  ASSERT_EQ(s3.head(key), data.size());
  std::vector<std::byte> all(data.size());
  ASSERT_EQ(s3.get_range(key, 0, all), data.size());
  EXPECT_EQ(std::memcmp(all.data(), data.data(), data.size()), 0);
}

// A device whose disk is nearly full reads a file that is only in the
// cloud and larger than the room left: the read goes on a chunk at a time
// (what was read makes room for what comes), and every byte is right. With
// less room than one chunk, the read fails with ENOSPC, as the disk's
// failure (not EIO, "no holder could serve", with every holder asked in
// vain), promptly. Nothing of either is left on the disk, and once there is
// room the file is read and kept.
TEST(Cloud, ANearlyFullDiskReadsAFileLargerThanItsRoomAndAFullOneFailsWithENOSPC) {
  RECALL_REQUIRE_SWIFT();
  RECALL_REQUIRE_POSTGRES();
  RECALL_REQUIRE_FUSE();
  test::SmallDisk small;
  if (!small.error().empty()) GTEST_SKIP() << small.error();
  PostgresServer& pg = PostgresServer::get();
  pg.add_user("cloud-full-disk");
  std::string token = pg.issue_token("cloud-full-disk");
  CloudDevice a;
  a.connect(token, "full-disk-bucket");
  std::string big = random_file(a.dir / "big.bin", 21 << 20, 5);
  ASSERT_NO_FATAL_FAILURE(add_and_upload(a, a.dir / "big.bin"));

  test::MountedLibrary b(small / "data");
  ASSERT_NO_FATAL_FAILURE(sign_in_with_cloud(b, token, "full-disk-bucket"));
  ASSERT_TRUE(test::eventually([&] { return fs::exists(b / "inbox/big.bin"); }));
  // fill(LEFT): a filler file leaves LEFT bytes free on the small disk.
  UniqueFd filler = open_file(small / "filler", O_WRONLY | O_CREAT, 0644);
  auto fill = [&](uint64_t left) {
    struct statvfs vfs {};
    ASSERT_EQ(::statvfs(small.path().c_str(), &vfs), 0);
    uint64_t free_bytes = vfs.f_bavail * vfs.f_frsize;
    ASSERT_GT(free_bytes, left);
    std::string mib(1 << 20, 'x');
    for (uint64_t more = free_bytes - left; more >= mib.size(); more -= mib.size())
      ASSERT_EQ(::write(filler.get(), mib.data(), mib.size()), static_cast<ssize_t>(mib.size()));
  };
  auto no_partials = [&] { return test::files_under(small / "data/cas/tmp").empty(); };

  // 2 MiB free: not one chunk fits.
  ASSERT_NO_FATAL_FAILURE(fill(2u << 20));
  auto t0 = std::chrono::steady_clock::now();
  RunResult cat = b.shell("cat inbox/big.bin > /dev/null");
  EXPECT_NE(cat.exit_code, 0);
  EXPECT_NE(cat.err.find("No space left on device"), std::string::npos) << cat.err;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
  EXPECT_TRUE(test::eventually(no_partials)) << "a partial file of the failed fetch is left";

  // 9 MiB free: two chunks of 4 MiB fit, the 21 MiB file does not.
  filler.reset();
  fs::remove(small / "filler");
  filler = open_file(small / "filler", O_WRONLY | O_CREAT, 0644);
  ASSERT_NO_FATAL_FAILURE(fill(9u << 20));
  EXPECT_TRUE(test::read_file(b / "inbox/big.bin") == big) << "the read on a nearly full disk";
  EXPECT_TRUE(test::eventually(no_partials)) << "a partial file is left";
  EXPECT_EQ(b.shell("getfattr -n user.recall.local --only-values inbox/big.bin").out, "0")
      << "kept on a disk without room for it";

  // Room again: the cloud is asked again at once, the bytes are right, and
  // this time they are kept. (The pages the kernel cached of the last read
  // are dropped first, as memory pressure would, or it would answer alone.)
  filler.reset();
  fs::remove(small / "filler");
  {
    UniqueFd fd = open_file(b / "inbox/big.bin", O_RDONLY);
    ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED);
  }
  EXPECT_TRUE(test::read_file(b / "inbox/big.bin") == big);
  EXPECT_TRUE(test::eventually([&] {
    return b.shell("getfattr -n user.recall.local --only-values inbox/big.bin").out == "1";
  })) << "not kept once there was room";
}

// A file larger than the cache budget, read from start to end on a mount:
// its bytes pass through a window of chunks on the disk (the read-ahead),
// not the whole file, while open too; every byte is right, and it is not
// kept. (It was kept whole in a partial file until it was closed: a video
// larger than the cache filled the disk while it played.)
TEST(Cloud, AFileLargerThanTheCacheIsReadThroughAWindowOfChunks) {
  RECALL_REQUIRE_SWIFT();
  RECALL_REQUIRE_POSTGRES();
  RECALL_REQUIRE_FUSE();
  PostgresServer& pg = PostgresServer::get();
  pg.add_user("cloud-window");
  std::string token = pg.issue_token("cloud-window");
  CloudDevice a;
  a.connect(token, "window-bucket");
  constexpr uint64_t kChunk = kDefaultChunkSize, kWindow = Fetcher::kWindow;
  std::string big = random_file(a.dir / "big.bin", (kWindow + 11) * kChunk, 6);
  ASSERT_NO_FATAL_FAILURE(add_and_upload(a, a.dir / "big.bin"));

  test::MountedLibrary b;
  ASSERT_NO_FATAL_FAILURE(sign_in_with_cloud(b, token, "window-bucket"));
  b.unmount();
  b.mount({"--cache-size", "8M"});
  ASSERT_TRUE(test::eventually([&] { return fs::exists(b / "inbox/big.bin"); }));
  auto on_disk = [&] {  // bytes the partial files take
    uint64_t n = 0;
    for (const fs::path& p : test::files_under(b.data() / "cas/tmp")) {
      struct stat st {};
      if (::stat(p.c_str(), &st) == 0) n += static_cast<uint64_t>(st.st_blocks) * 512;
    }
    return n;
  };
  UniqueFd fd = open_file(b / "inbox/big.bin", O_RDONLY);
  std::string got(kChunk, '\0');
  uint64_t most = 0;
  for (uint64_t at = 0; at < big.size(); at += got.size()) {
    ASSERT_EQ(::pread(fd.get(), got.data(), got.size(), static_cast<off_t>(at)),
              static_cast<ssize_t>(got.size()));
    ASSERT_EQ(std::memcmp(got.data(), big.data() + at, got.size()), 0) << "at " << at;
    most = std::max(most, on_disk());
  }
  // The window, plus a chunk being written by each of the fetcher's 4
  // workers and by the reader.
  EXPECT_LE(most, (kWindow + 5) * kChunk) << "of a " << big.size() << "-byte file";
  EXPECT_GT(most, 0u) << "no partial file seen: is the path right?";
  fd.reset();
  EXPECT_EQ(b.shell("getfattr -n user.recall.local --only-values inbox/big.bin").out, "0");
  EXPECT_TRUE(test::eventually([&] { return on_disk() == 0; })) << "a partial file is left";
}

TEST(Cloud, AGuestReadingBytesThatAreNotHereFailsAtOnce) {
  RECALL_REQUIRE_FUSE();
  test::MountedLibrary m;
  // A row for a file whose bytes were never here (as a pull would bring it).
  {
    auto lib = Library::open(m.data(), {});
    BlobMeta b;
    b.sha256 = std::string(64, 'a');
    b.size = 1234;
    NewAsset n;
    n.filename = "elsewhere.pdf";
    n.blob = b;
    lib->catalog().add_asset(n);
  }
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(::open((m / "inbox/elsewhere.pdf").c_str(), O_RDONLY), -1);
  EXPECT_EQ(errno, EIO);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5)) << "EIO took too long";
  struct stat st;
  EXPECT_EQ(::stat((m / "inbox/elsewhere.pdf").c_str(), &st), 0) << "stat must keep working";
  EXPECT_EQ(st.st_size, 1234);
}

}  // namespace
}  // namespace recall
