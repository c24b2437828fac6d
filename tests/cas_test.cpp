// BlobStore: put, dedup, read, remove, list; durability under SIGKILL; a full
// disk; verify and scan; chunk manifests; content metadata.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <sstream>
#include <thread>

#include "base/error.h"
#include "base/file_io.h"
#include "cas/blob_store.h"
#include "tests/test_util.h"

namespace recall {
namespace {
namespace fs = std::filesystem;
using test::TempDir;

std::string read_object(BlobStore& store, const std::string& sha) {
  UniqueFd fd = store.open_object(sha);
  std::string out;
  char buf[65536];
  for (uint64_t off = 0;;) {
    ssize_t n = ::pread(fd.get(), buf, sizeof buf, static_cast<off_t>(off));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    off += static_cast<uint64_t>(n);
  }
  return out;
}

PutResult put_string(BlobStore& store, const std::string& data) {
  std::istringstream in(data);
  return store.put(in);
}

// Every object under objects/ is named after the SHA-256 of its bytes, tmp/
// is empty, and the index lists exactly the objects on disk, all healthy.
void expect_consistent(const fs::path& data_dir) {
  auto store = BlobStore::open(data_dir, {});
  std::set<std::string> on_disk;
  for (const fs::path& p : test::files_under(data_dir / "cas" / "objects")) {
    std::string name = p.filename().string();
    EXPECT_EQ(test::sha256_of(test::read_file(p)), name) << "object bytes do not match its name";
    EXPECT_EQ(p.parent_path().filename().string(), name.substr(0, 2));
    on_disk.insert(name);
  }
  EXPECT_TRUE(test::files_under(data_dir / "cas" / "tmp").empty()) << "temp files left behind";
  std::set<std::string> indexed;
  store->list([&](const BlobInfo& b) {
    indexed.insert(b.sha256);
    EXPECT_EQ(b.health, Health::Healthy) << b.sha256;
    return true;
  });
  EXPECT_EQ(indexed, on_disk);
}

TEST(BlobStore, PutStoresBytesUnderTheirHashAndReadsThemBack) {
  TempDir dir;
  auto store = BlobStore::open(dir.path(), {.create = true});
  std::mt19937_64 rng(1);
  std::string data = test::random_bytes(rng, 5 << 20);
  PutResult r = put_string(*store, data);
  EXPECT_EQ(r.sha256, test::sha256_of(data));
  EXPECT_EQ(r.size, data.size());
  EXPECT_FALSE(r.deduplicated);
  EXPECT_TRUE(store->has(r.sha256));
  EXPECT_EQ(read_object(*store, r.sha256), data);
  auto info = store->stat(r.sha256);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->size, data.size());
  EXPECT_EQ(info->health, Health::Healthy);
  // Objects are read-only on disk: never modified in place.
  EXPECT_EQ(fs::status(store->object_path(r.sha256)).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
}

TEST(BlobStore, PutReadsFromPipesAndEmptyInput) {
  TempDir dir;
  auto store = BlobStore::open(dir.path(), {.create = true});
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  std::string data(300000, 'x');
  std::thread writer([&] {
    write_full(p[1], std::as_bytes(std::span(data)));
    ::close(p[1]);
  });
  PutResult r = store->put(p[0]);
  writer.join();
  ::close(p[0]);
  EXPECT_EQ(r.sha256, test::sha256_of(data));
  PutResult empty = put_string(*store, "");
  EXPECT_EQ(empty.sha256, test::sha256_of(""));
  EXPECT_EQ(read_object(*store, empty.sha256), "");
}

TEST(BlobStore, SameBytesTwiceAreOneObject) {
  TempDir dir;
  auto store = BlobStore::open(dir.path(), {.create = true});
  PutResult a = put_string(*store, "hello");
  PutResult b = put_string(*store, "hello");
  EXPECT_EQ(a.sha256, b.sha256);
  EXPECT_TRUE(b.deduplicated);
  EXPECT_EQ(test::files_under(dir / "cas/objects").size(), 1u);
  EXPECT_EQ(store->totals().objects, 1u);
}

TEST(BlobStore, ConcurrentPutsOfTheSameBytesGiveOneObject) {
  TempDir dir;
  auto store = BlobStore::open(dir.path(), {.create = true});
  std::mt19937_64 rng(7);
  std::string data = test::random_bytes(rng, 3 << 20);
  std::vector<std::string> hashes(8);
  std::vector<std::jthread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] { hashes[t] = put_string(*store, data).sha256; });
  threads.clear();
  for (const auto& h : hashes) EXPECT_EQ(h, test::sha256_of(data));
  EXPECT_EQ(test::files_under(dir / "cas/objects").size(), 1u);
  EXPECT_TRUE(test::files_under(dir / "cas/tmp").empty());
  EXPECT_EQ(store->totals().objects, 1u);
}

TEST(BlobStore, RemoveDeletesObjectAndRowButOpenFdsStayReadable) {
  TempDir dir;
  auto store = BlobStore::open(dir.path(), {.create = true});
  PutResult r = put_string(*store, "bytes to remove");
  UniqueFd fd = store->open_object(r.sha256);
  store->remove(r.sha256);
  EXPECT_FALSE(store->has(r.sha256));
  EXPECT_FALSE(store->stat(r.sha256));
  char buf[32];
  EXPECT_EQ(::pread(fd.get(), buf, sizeof buf, 0), 15);
  try {
    store->remove(r.sha256);
    FAIL() << "removing an absent object succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ENOENT);
  }
  try {
    store->open_object(r.sha256);
    FAIL() << "opened a removed object";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ENOENT);
  }
}

TEST(BlobStore, ListStreamsEveryObjectInHashOrderAndCanStop) {
  TempDir dir;
  auto store = BlobStore::open(dir.path(), {.create = true});
  std::set<std::string> expected;
  for (int i = 0; i < 600; ++i)
    expected.insert(put_string(*store, "object " + std::to_string(i)).sha256);
  std::vector<std::string> seen;
  store->list([&](const BlobInfo& b) {
    seen.push_back(b.sha256);
    return true;
  });
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), expected);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  size_t stopped = 0;
  store->list([&](const BlobInfo&) { return ++stopped < 10; });
  EXPECT_EQ(stopped, 10u);
}

TEST(BlobStore, LeftoverTempFilesAreRemovedOnOpen) {
  TempDir dir;
  { auto store = BlobStore::open(dir.path(), {.create = true}); }
  test::write_file(dir / "cas/tmp/put-crashed", "half an object");
  auto store = BlobStore::open(dir.path(), {});
  EXPECT_TRUE(test::files_under(dir / "cas/tmp").empty());
}

// Durability: a writer killed with SIGKILL at random moments during 200 puts
// (mid-write, mid-fsync, between rename and index) leaves a consistent store.
TEST(BlobStore, SigkillDuringPutsLeavesAConsistentStore) {
  TempDir dir;
  std::mt19937_64 rng(20261121);
  for (int round = 0; round < 12; ++round) {
    int out[2];
    ASSERT_EQ(::pipe(out), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    std::string seed = std::to_string(rng());
    std::string dirs = dir.path().string();
    const char* argv[] = {CAS_PUT_CHILD, dirs.c_str(), seed.c_str(), "200", nullptr};
    pid_t pid;
    ASSERT_EQ(posix_spawn(&pid, CAS_PUT_CHILD, &fa, nullptr, const_cast<char**>(argv), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    // Let it finish a random number of puts, then kill it a random few
    // hundred microseconds into the next one.
    int lines_wanted = static_cast<int>(rng() % 40);
    int lines = 0;
    char c;
    while (lines < lines_wanted && ::read(out[0], &c, 1) == 1)
      if (c == '\n') ++lines;
    // Fault injection: the kill lands at a random moment; nothing waits until anything.
    auto fault_delay = std::chrono::microseconds(rng() % 3000);
    std::this_thread::sleep_for(fault_delay);  // fault injection, not waiting until a state
    ::kill(pid, SIGKILL);
    int status;
    ::waitpid(pid, &status, 0);
    ::close(out[0]);
    SCOPED_TRACE("round " + std::to_string(round) + " after " + std::to_string(lines) + " puts");
    expect_consistent(dir.path());
  }
}

TEST(BlobStore, FullDiskFailsWithENOSPCAndLeavesNothingBehind) {
  TempDir dir;
  fs::path mnt = dir / "small";
  fs::create_directories(mnt);
  if (::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=4m") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (needs root): " << std::strerror(errno);
  struct Unmount {
    fs::path p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{mnt};
  {
    auto store = BlobStore::open(mnt, {.create = true});
    PutResult small = put_string(*store, "fits");
    std::mt19937_64 rng(3);
    std::string big = test::random_bytes(rng, 8 << 20);  // twice the disk
    try {
      put_string(*store, big);
      FAIL() << "an 8 MiB put into a 4 MiB disk succeeded";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ENOSPC) << e.what();
      EXPECT_NE(std::string(e.what()).find("No space left"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(test::files_under(mnt / "cas/tmp").empty()) << "the failed put left its temp file";
    EXPECT_EQ(test::files_under(mnt / "cas/objects").size(), 1u);
    // The space came back: the next put works and the old object is intact.
    EXPECT_EQ(put_string(*store, "after").sha256, test::sha256_of("after"));
    EXPECT_EQ(read_object(*store, small.sha256), "fits");
  }
  expect_consistent(mnt);
}

TEST(BlobStore, VerifyQuarantinesAFlippedByteAndNeverServesIt) {
  TempDir dir;
  auto store = BlobStore::open(dir.path(), {.create = true});
  std::mt19937_64 rng(11);
  std::vector<std::string> shas;
  for (int i = 0; i < 5; ++i)
    shas.push_back(put_string(*store, test::random_bytes(rng, 100000 + i)).sha256);
  fs::path victim = store->object_path(shas[2]);
  {
    fs::permissions(victim, fs::perms::owner_write, fs::perm_options::add);
    UniqueFd fd = open_file(victim, O_RDWR);
    char b;
    ASSERT_EQ(::pread(fd.get(), &b, 1, 5000), 1);
    b ^= 0x01;
    ASSERT_EQ(::pwrite(fd.get(), &b, 1, 5000), 1);
  }
  VerifyProgress last;
  VerifyReport r = store->verify([&](const VerifyProgress& p) { last = p; }, 2);
  EXPECT_EQ(r.modified, std::vector<std::string>{shas[2]});
  EXPECT_TRUE(r.missing.empty());
  EXPECT_EQ(r.checked, 5u);
  EXPECT_EQ(last.objects_done, 5u);
  EXPECT_EQ(last.bytes_done, last.bytes_total);
  EXPECT_EQ(store->stat(shas[2])->health, Health::Modified);
  EXPECT_FALSE(store->has(shas[2]));
  EXPECT_THROW(store->open_object(shas[2]), Error);
  EXPECT_EQ(test::files_under(dir / "cas/quarantine").size(), 1u);
  for (int i : {0, 1, 3, 4}) EXPECT_EQ(store->stat(shas[i])->health, Health::Healthy);
  // Putting the right bytes again heals it.
  fs::path q = test::files_under(dir / "cas/quarantine")[0];
  std::string bytes = test::read_file(q);
  bytes[5000] ^= 0x01;
  EXPECT_EQ(put_string(*store, bytes).sha256, shas[2]);
  EXPECT_EQ(store->stat(shas[2])->health, Health::Healthy);
}

// A mount frees bytes while `recallfs verify` (another process) runs: an
// object removed after verify read its row is not reported missing. Before,
// it was, and verify failed on a healthy library.
TEST(BlobStore, VerifyDoesNotCallAnObjectRemovedMeanwhileMissing) {
  TempDir dir;
  auto store = BlobStore::open(dir.path(), {.create = true});
  auto checker = BlobStore::open(dir.path(), {});  // as `recallfs verify` opens it
  std::string kept = put_string(*store, "kept").sha256;
  std::string freed = put_string(*store, "freed while verify runs").sha256;
  checker->set_before_verify_open([&](const std::string& sha) {
    if (sha == freed) store->remove(freed);
  });
  VerifyReport r = checker->verify({}, 1);
  EXPECT_TRUE(r.missing.empty()) << r.missing.size() << " reported missing";
  EXPECT_TRUE(r.modified.empty());
  EXPECT_EQ(r.checked, 1u);
  EXPECT_EQ(checker->stat(kept)->health, Health::Healthy);
  // An object whose row stays is missing, as before.
  std::string lost = put_string(*store, "lost").sha256;
  fs::remove(store->object_path(lost));
  checker->set_before_verify_open({});
  EXPECT_EQ(checker->verify({}, 1).missing, std::vector<std::string>{lost});
}

TEST(BlobStore, DeletedObjectIsMissingAndHealthyAgainAfterScan) {
  TempDir dir;
  auto store = BlobStore::open(dir.path(), {.create = true});
  PutResult r = put_string(*store, "an object that goes away for a while");
  fs::path p = store->object_path(r.sha256);
  fs::path aside = dir / "aside";
  fs::rename(p, aside);
  VerifyReport v = store->verify();
  EXPECT_EQ(v.missing, std::vector<std::string>{r.sha256});
  EXPECT_EQ(store->stat(r.sha256)->health, Health::Missing);
  EXPECT_FALSE(store->has(r.sha256));
  fs::rename(aside, p);
  ScanReport s = store->scan();
  EXPECT_EQ(s.restored, 1u);
  EXPECT_EQ(store->stat(r.sha256)->health, Health::Healthy);
}

TEST(BlobStore, ScanRebuildsADeletedIndexCompletely) {
  TempDir dir;
  std::map<std::string, uint64_t> expected;
  {
    auto store = BlobStore::open(dir.path(), {.create = true});
    std::mt19937_64 rng(5);
    for (int i = 0; i < 50; ++i) {
      PutResult r = put_string(*store, test::random_bytes(rng, rng() % 200000));
      expected[r.sha256] = r.size;
    }
    PutResult pdf = put_string(*store, test::make_pdf(2, "T", "A"));
    expected[pdf.sha256] = pdf.size;
  }
  for (const char* f : {"index.db", "index.db-wal", "index.db-shm"}) fs::remove(dir / "cas" / f);
  auto store = BlobStore::open(dir.path(), {});
  ScanReport s = store->scan();
  EXPECT_EQ(s.added, expected.size());
  std::map<std::string, uint64_t> rebuilt;
  store->list([&](const BlobInfo& b) {
    rebuilt[b.sha256] = b.size;
    return true;
  });
  EXPECT_EQ(rebuilt, expected);
  // Content metadata is rebuilt too.
  EXPECT_EQ(store->stat(test::sha256_of(test::make_pdf(2, "T", "A")))->content.page_count, 2);
}

TEST(BlobStore, ACorruptIndexIsSetAsideAndRebuiltOnOpen) {
  TempDir dir;
  std::string sha;
  {
    auto store = BlobStore::open(dir.path(), {.create = true});
    sha = put_string(*store, "survives a corrupt index").sha256;
  }
  test::write_file(dir / "cas/index.db", std::string(8192, 'Z'));
  auto store = BlobStore::open(dir.path(), {});
  ASSERT_TRUE(store->stat(sha));
  EXPECT_EQ(store->stat(sha)->health, Health::Healthy);
}

TEST(BlobStore, ScanMovesAMisplacedObjectBack) {
  TempDir dir;
  auto store = BlobStore::open(dir.path(), {.create = true});
  PutResult r = put_string(*store, "misplaced");
  fs::path wrong = dir / "cas/objects" / r.sha256;
  fs::rename(store->object_path(r.sha256), wrong);
  ScanReport s = store->scan();
  EXPECT_EQ(s.relocated, 1u);
  EXPECT_TRUE(store->has(r.sha256));
  EXPECT_EQ(store->stat(r.sha256)->health, Health::Relocated);
  store->verify();
  EXPECT_EQ(store->stat(r.sha256)->health, Health::Healthy);
}

TEST(BlobStore, AnObjectWrittenButNotIndexedBeforeACrashIsIndexedOnReopen) {
  TempDir dir;
  std::string sha = test::sha256_of("orphan");
  {
    auto store = BlobStore::open(dir.path(), {.create = true});
    put_string(*store, "seed");
  }
  // What a crash between rename and index insert leaves: an object with no
  // row, and no clean-shutdown marker.
  fs::create_directories(dir / "cas/objects" / sha.substr(0, 2));
  test::write_file(dir / "cas/objects" / sha.substr(0, 2) / sha, "orphan");
  fs::remove(dir / "cas/clean");
  auto store = BlobStore::open(dir.path(), {});
  ASSERT_TRUE(store->stat(sha));
  EXPECT_EQ(store->stat(sha)->size, 6u);
}

// After a crash, the objects the owner says no file needs are removed (the
// library asks its catalog); after a clean close nothing is asked.
TEST(BlobStore, AfterACrashObjectsNoFileNeedsAreRemoved) {
  TempDir dir;
  std::string kept, unneeded;
  {
    auto store = BlobStore::open(dir.path(), {.create = true});
    kept = put_string(*store, "a file's bytes").sha256;
    unneeded = put_string(*store, "stored, never recorded").sha256;
  }
  std::vector<std::string> asked;
  auto only_unneeded = [&](const std::string& sha) {
    asked.push_back(sha);
    return sha == unneeded;
  };
  BlobStore::open(dir.path(), {.unneeded_after_crash = only_unneeded});  // closed cleanly before
  EXPECT_TRUE(asked.empty());
  fs::remove(dir / "cas/clean");  // as a crash leaves it
  auto store = BlobStore::open(dir.path(), {.unneeded_after_crash = only_unneeded});
  EXPECT_EQ(asked.size(), 2u);
  EXPECT_TRUE(store->has(kept));
  EXPECT_FALSE(store->has(unneeded));
  EXPECT_FALSE(store->stat(unneeded));
  EXPECT_FALSE(fs::exists(store->object_path(unneeded)));
}

TEST(BlobStore, ChunkManifestHasOneHashPerChunkAndIsStored) {
  TempDir dir;
  auto store = BlobStore::open(dir.path(), {.create = true});
  std::mt19937_64 rng(9);
  std::string data = test::random_bytes(rng, 10 << 20);
  PutResult r = put_string(*store, data);
  ChunkManifest m = store->manifest(r.sha256);
  EXPECT_EQ(m.chunk_size, kDefaultChunkSize);
  ASSERT_EQ(m.chunks.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    std::string chunk = data.substr(i * kDefaultChunkSize, kDefaultChunkSize);
    EXPECT_EQ(to_hex(m.chunks[i]), test::sha256_of(chunk)) << "chunk " << i;
  }
  // Stored: the second call does not need the object any more.
  fs::permissions(store->object_path(r.sha256), fs::perms::none);
  fs::path moved = dir / "moved";
  fs::rename(store->object_path(r.sha256), moved);
  EXPECT_EQ(store->manifest(r.sha256), m);
  fs::rename(moved, store->object_path(r.sha256));
  // Other chunk sizes and the empty object.
  EXPECT_EQ(store->manifest(r.sha256, 1 << 20).chunks.size(), 10u);
  EXPECT_TRUE(store->manifest(put_string(*store, "").sha256).chunks.empty());
  // Bytes that no longer match their name give no manifest (it would be
  // synced to every device and never replaced).
  std::string other = test::random_bytes(rng, 5 << 20);
  PutResult o = put_string(*store, other);
  fs::path victim = store->object_path(o.sha256);
  fs::permissions(victim, fs::perms::owner_write, fs::perm_options::add);
  {
    UniqueFd fd = open_file(victim, O_RDWR);
    char b;
    ASSERT_EQ(::pread(fd.get(), &b, 1, 4 << 20), 1);
    b ^= 0x01;
    ASSERT_EQ(::pwrite(fd.get(), &b, 1, 4 << 20), 1);
  }
  try {
    store->manifest(o.sha256);
    ADD_FAILURE() << "a manifest of damaged bytes";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), EIO);
  }
}

TEST(BlobStore, ContentMetadataOfRealFiles) {
  TempDir dir;
  auto store = BlobStore::open(dir.path(), {.create = true});
  PutResult pdf = put_string(*store, test::make_pdf(3, "Attention Is All You Need", "Vaswani"));
  EXPECT_EQ(pdf.content.mime, "application/pdf");
  EXPECT_EQ(pdf.content.page_count, 3);
  EXPECT_EQ(pdf.content.pdf_title, "Attention Is All You Need");
  EXPECT_EQ(pdf.content.pdf_author, "Vaswani");
  PutResult png = put_string(*store, test::make_png(37, 21));
  EXPECT_EQ(png.content.mime, "image/png");
  EXPECT_EQ(png.content.image_width, 37);
  EXPECT_EQ(png.content.image_height, 21);
  EXPECT_FALSE(png.content.page_count);
  PutResult txt = put_string(*store, "Just some notes.\nA second line.\n");
  EXPECT_EQ(txt.content.mime, "text/plain");
  EXPECT_FALSE(txt.content.image_width);
  // Broken PDFs report what can be found and never throw.
  PutResult broken = put_string(*store, "%PDF-1.4\nnot really a pdf\n");
  EXPECT_EQ(broken.content.mime, "application/pdf");
  // And the metadata is kept in the index.
  EXPECT_EQ(store->stat(pdf.sha256)->content, pdf.content);
}

TEST(BlobStore, OpensOnlyAnExistingStoreUnlessAskedToCreate) {
  TempDir dir;
  try {
    BlobStore::open(dir / "nope", {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ENOENT);
  }
}

TEST(BlobStore, LeaksNoFileDescriptors) {
  size_t before = test::open_fd_count();
  {
    TempDir dir;
    auto store = BlobStore::open(dir.path(), {.create = true});
    for (int i = 0; i < 20; ++i) put_string(*store, std::to_string(i));
    store->verify();
    store->scan();
  }
  EXPECT_EQ(test::open_fd_count(), before);
}

}  // namespace
}  // namespace recall
