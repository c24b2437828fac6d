// The Fetcher in-process, with a holder injected at its seam
// (fs/byte_source.h): what a mount cannot pin down by timing. Here, its
// stop() at an unmount while a fetch is under way over a slow link, and
// while its holder is silent; a blob the cache had no room for, and one
// larger than the cache, streamed through a window of chunks; and when
// the PinKeeper asks it for pinned bytes again, on a clock the test sets.
#include "fs/fetcher.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "base/sha256.h"
#include "cas/blob_info.h"
#include "fs/byte_source.h"
#include "fs/library.h"
#include "fs/pin_keeper.h"
#include "tests/mount_fixture.h"
#include "tests/test_util.h"

namespace recall {
namespace {

// A holder that has the bytes at hand (ByteSource's own stream, over read()).
class QuickHolder : public ByteSource {
 public:
  explicit QuickHolder(std::string bytes) : bytes_(std::move(bytes)) {}
  std::string name() const override { return "quick peer"; }
  size_t read(const std::string&, uint64_t offset, std::span<std::byte> buf) override {
    size_t n = offset >= bytes_.size() ? 0 : std::min(buf.size(), bytes_.size() - offset);
    std::memcpy(buf.data(), bytes_.data() + offset, n);
    return n;
  }

 protected:
  std::string bytes_;
};

// A holder on a slow link: it sends the blob's bytes in 16 KiB pieces, one
// every millisecond (a fault injected at the seam: the link's pace, not a
// wait for the test), and counts them, and the streams the fetcher cut.
class SlowHolder : public QuickHolder {
 public:
  explicit SlowHolder(std::string bytes) : QuickHolder(std::move(bytes)) {}
  std::string name() const override { return "slow peer"; }
  void stream(const std::string&, uint64_t offset, uint64_t length, const Sink& sink) override {
    constexpr uint64_t kPiece = 16 << 10;
    for (uint64_t at = offset; at < offset + length; at += kPiece) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the link's pace
      uint64_t n = std::min(kPiece, offset + length - at);
      pieces++;
      if (!sink(std::as_bytes(std::span(bytes_.data() + at, n)))) {
        cut++;
        return;
      }
    }
  }
  std::atomic<uint64_t> pieces{0};
  std::atomic<uint64_t> cut{0};  // streams the fetcher stopped early
};

// A holder that took the request and sends nothing (a peer that hangs):
// as the contract in fs/byte_source.h says, it asks the sink with an empty
// piece while it waits (every 10 ms here, about every second in libcurl),
// and gives up by itself, as a stall timeout would, after 20 s.
class SilentHolder : public ByteSource {
 public:
  std::string name() const override { return "silent peer"; }
  size_t read(const std::string&, uint64_t, std::span<std::byte>) override {
    throw Error(ENOTCONN, "silent peer: no answer");
  }
  void stream(const std::string&, uint64_t, uint64_t, const Sink& sink) override {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < until) {
      asked++;
      if (!sink({})) {
        cut++;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // the silence
    }
    throw Error(ENOTCONN, "silent peer: stalled");
  }
  std::atomic<uint64_t> asked{0};
  std::atomic<uint64_t> cut{0};
};

class OneHolder : public SourceProvider {
 public:
  explicit OneHolder(std::shared_ptr<ByteSource> s) : s_(std::move(s)) {}
  std::vector<std::shared_ptr<ByteSource>> sources_for(const std::string&) override { return {s_}; }

 private:
  std::shared_ptr<ByteSource> s_;
};

// A blob of `size` random bytes described in the library (blobs_meta with
// its chunk manifest), as a pull leaves one whose bytes are elsewhere.
std::string describe_remote_blob(Library& lib, const std::string& bytes) {
  NewAsset n;
  n.filename = "big.bin";
  n.blob.sha256 = test::sha256_of(bytes);
  n.blob.size = bytes.size();
  n.blob.mime = "application/octet-stream";
  lib.catalog().add_asset(n);
  ChunkManifest m{.chunk_size = kDefaultChunkSize, .chunks = {}};
  for (size_t at = 0; at < bytes.size(); at += kDefaultChunkSize) {
    Sha256 h;
    h.update(std::as_bytes(
        std::span(bytes.data() + at, std::min<size_t>(kDefaultChunkSize, bytes.size() - at))));
    m.chunks.push_back(h.finish());
  }
  lib.catalog().set_blob_manifest(n.blob.sha256, static_cast<int64_t>(m.chunk_size), m.packed());
  return n.blob.sha256;
}

// An unmount while a blob is fetched over a slow link: stop() cuts each
// stream under way at its next piece instead of waiting for the whole
// request (a run of 4 chunks, 16 MiB: a second at this link's pace, a
// minute at 2 Mbit/s), nothing is taken after it returns, and the blob is
// not made local.
TEST(FetcherStop, CutsAFetchUnderWayAtItsNextPieceAndTakesNothingAfter) {
  test::TempDir dir;
  std::unique_ptr<Library> lib = Library::open(dir / "lib", {.create = true});
  std::mt19937_64 rng(7);
  const std::string bytes = test::random_bytes(rng, 48u << 20);  // 12 chunks, 3 runs
  const std::string sha = describe_remote_blob(*lib, bytes);
  auto holder = std::make_shared<SlowHolder>(bytes);
  Fetcher fetcher(*lib, std::make_shared<OneHolder>(holder));
  std::atomic<int> made_local{0};
  fetcher.set_on_local([&](const std::string&) { made_local++; });

  fetcher.fetch_in_background(sha);
  ASSERT_TRUE(test::eventually([&] { return holder->pieces >= 20; })) << "the fetch did not start";
  fetcher.stop();
  const uint64_t after_stop = holder->pieces;
  EXPECT_GE(holder->cut, 1u) << "no stream was cut: stop() waited for the requests under way";
  EXPECT_EQ(made_local, 0);
  EXPECT_FALSE(lib->blobs().has(sha));
  // Nothing runs once stop() has returned.
  fetcher.stop();  // idempotent
  EXPECT_EQ(holder->pieces, after_stop);
}

// An unmount while the only holder is silent: stop() ends the stream the
// next time the holder asks (not when its stall timeout would), and
// nothing is made local.
TEST(FetcherStop, EndsAStreamFromASilentHolderWhenTheHolderNextAsks) {
  test::TempDir dir;
  std::unique_ptr<Library> lib = Library::open(dir / "lib", {.create = true});
  std::mt19937_64 rng(8);
  const std::string bytes = test::random_bytes(rng, 8u << 20);
  const std::string sha = describe_remote_blob(*lib, bytes);
  auto holder = std::make_shared<SilentHolder>();
  Fetcher fetcher(*lib, std::make_shared<OneHolder>(holder));
  fetcher.fetch_in_background(sha);
  ASSERT_TRUE(test::eventually([&] { return holder->asked >= 1; })) << "the fetch did not start";
  fetcher.stop();
  EXPECT_EQ(holder->cut, 1u) << "stop() waited for the silent holder to give up";
  EXPECT_FALSE(lib->blobs().has(sha));
}

// A blob read whole while the cache had no room for it is served but not
// kept. When a new reader opens it while an old one still holds it open
// (the kernel releases a closed file a moment after close() returns), the
// cache is asked again, and the blob is kept once there is room: "read it
// again" makes it local without waiting for every earlier reader to go.
TEST(FetcherCache, ANewReaderOfABlobTheCacheRefusedAsksAgain) {
  test::TempDir dir;
  std::unique_ptr<Library> lib = Library::open(dir / "lib", {.create = true});
  std::mt19937_64 rng(9);
  const std::string bytes = test::random_bytes(rng, 6u << 20);  // 2 chunks
  const std::string sha = describe_remote_blob(*lib, bytes);
  Fetcher fetcher(*lib, std::make_shared<OneHolder>(std::make_shared<QuickHolder>(bytes)));
  std::atomic<bool> room{false};
  std::atomic<int> asked{0};
  fetcher.set_admit([&](const std::string&, uint64_t) {
    asked++;
    return room.load();
  });
  auto read_all = [&](Fetcher::Remote& r) {
    std::string got(bytes.size(), '\0');
    size_t n = fetcher.read(r, std::as_writable_bytes(std::span(got)), 0);
    return n == bytes.size() && got == bytes;
  };
  std::shared_ptr<Fetcher::Remote> first = fetcher.open(sha);
  EXPECT_TRUE(read_all(*first));
  ASSERT_TRUE(test::eventually([&] { return asked >= 1; })) << "the cache was not asked";
  EXPECT_FALSE(lib->blobs().has(sha)) << "kept although the cache said no";
  room = true;
  std::shared_ptr<Fetcher::Remote> second = fetcher.open(sha);  // `first` still open
  EXPECT_TRUE(read_all(*second));
  EXPECT_TRUE(test::eventually([&] { return lib->blobs().has(sha); }))
      << "a new reader did not ask the cache again (asked " << asked << " times)";
  fetcher.stop();
}

// A blob larger than the cache budget (could_keep says no) read from start
// to end: its partial file never holds more than the window of chunks (the
// read-ahead and what it is fetching), not the whole blob; every byte read
// is right, a chunk read again after it went is fetched again, the blob is
// not kept, and nothing is left once it is closed.
TEST(FetcherCache, ABlobLargerThanTheCacheIsStreamedThroughAWindowOfChunks) {
  test::TempDir dir;
  std::unique_ptr<Library> lib = Library::open(dir / "lib", {.create = true});
  std::mt19937_64 rng(10);
  const size_t chunks = Fetcher::kWindow + 13;
  const std::string bytes = test::random_bytes(rng, chunks * kDefaultChunkSize);
  const std::string sha = describe_remote_blob(*lib, bytes);
  Fetcher fetcher(*lib, std::make_shared<OneHolder>(std::make_shared<QuickHolder>(bytes)));
  fetcher.set_could_keep([](const std::string&, uint64_t) { return false; });
  fetcher.set_admit([](const std::string&, uint64_t) { return false; });
  // The window, plus one chunk being written by each of the 4 workers and
  // by the reader.
  const uint64_t most = (Fetcher::kWindow + 5) * kDefaultChunkSize;
  {
    std::shared_ptr<Fetcher::Remote> r = fetcher.open(sha);
    std::string got(1 << 20, '\0');
    uint64_t biggest = 0;
    for (uint64_t at = 0; at < bytes.size(); at += got.size()) {
      ASSERT_EQ(fetcher.read(*r, std::as_writable_bytes(std::span(got)), at), got.size());
      ASSERT_EQ(std::memcmp(got.data(), bytes.data() + at, got.size()), 0) << "at " << at;
      biggest = std::max(biggest, Fetcher::partials(*lib).bytes);
    }
    EXPECT_LE(biggest, most) << "the partial file grew to " << biggest << " bytes of "
                             << bytes.size();
    // The first chunk went long ago: read again, it comes again.
    ASSERT_EQ(fetcher.read(*r, std::as_writable_bytes(std::span(got)), 0), got.size());
    EXPECT_EQ(std::memcmp(got.data(), bytes.data(), got.size()), 0);
    EXPECT_FALSE(lib->blobs().has(sha));
  }
  EXPECT_EQ(Fetcher::partials(*lib).files, 0u) << "a partial file is left after the close";
  fetcher.stop();
}

// A streamed blob's chunk that a reply is being made from (a Lease: the
// mount splices from the partial file after ready() returns) stays on disk
// while another reader goes through the whole blob and the window moves far
// past it.
TEST(FetcherCache, AStreamedChunkBeingReadStaysWhileAnotherReaderMovesOn) {
  test::TempDir dir;
  std::unique_ptr<Library> lib = Library::open(dir / "lib", {.create = true});
  std::mt19937_64 rng(11);
  const std::string bytes = test::random_bytes(rng, (Fetcher::kWindow + 9) * kDefaultChunkSize);
  const std::string sha = describe_remote_blob(*lib, bytes);
  Fetcher fetcher(*lib, std::make_shared<OneHolder>(std::make_shared<QuickHolder>(bytes)));
  fetcher.set_could_keep([](const std::string&, uint64_t) { return false; });
  std::shared_ptr<Fetcher::Remote> r = fetcher.open(sha);
  Fetcher::Lease lease = fetcher.ready(*r, 0, 4096);
  ASSERT_EQ(lease.size(), 4096u);
  std::string other(1 << 20, '\0');
  for (uint64_t at = 0; at < bytes.size(); at += other.size())
    ASSERT_EQ(fetcher.read(*r, std::as_writable_bytes(std::span(other)), at), other.size());
  std::string got(4096, '\0');
  ASSERT_EQ(::pread(Fetcher::fd(*r), got.data(), got.size(), 0), 4096);
  EXPECT_EQ(got, bytes.substr(0, 4096)) << "the bytes being replied from went";
  fetcher.stop();
}

// More readers than the window, each in the middle of a reply from its own
// chunk of a streamed blob (a Lease each): one more reader's chunk is still
// fetched and served. Before, the chunk just fetched was the only one that
// could go, went, and was fetched again, forever.
TEST(FetcherCache, AReaderGetsItsChunkWhileAWindowOfOthersIsBeingReadFrom) {
  test::TempDir dir;
  std::unique_ptr<Library> lib = Library::open(dir / "lib", {.create = true});
  std::mt19937_64 rng(12);
  const size_t chunks = Fetcher::kWindow + 3;
  const std::string bytes = test::random_bytes(rng, chunks * kDefaultChunkSize);
  const std::string sha = describe_remote_blob(*lib, bytes);
  Fetcher fetcher(*lib, std::make_shared<OneHolder>(std::make_shared<QuickHolder>(bytes)));
  fetcher.set_could_keep([](const std::string&, uint64_t) { return false; });
  std::shared_ptr<Fetcher::Remote> r = fetcher.open(sha);
  std::vector<Fetcher::Lease> others;
  for (size_t i = 0; i < Fetcher::kWindow; ++i)  // every other chunk, out of read-ahead's way
    others.push_back(fetcher.ready(*r, (chunks - 1 - i) * kDefaultChunkSize, 4096));
  std::atomic<bool> done{false};
  std::string got(4096, '\0');
  std::thread reader([&] {
    try {
      fetcher.read(*r, std::as_writable_bytes(std::span(got)), 0);
    } catch (const std::exception&) {
    }
    done = true;
  });
  bool served = test::eventually([&] { return done.load(); }, std::chrono::seconds(10));
  if (!served) fetcher.stop();  // ends the reader's endless fetching
  reader.join();
  EXPECT_TRUE(served) << "the reader's chunk never stayed long enough to be read";
  EXPECT_TRUE(got == bytes.substr(0, 4096)) << "wrong bytes read";
  others.clear();
  fetcher.stop();
}

// A holder that counts the bytes it sent and the streams under way.
class CountingHolder : public QuickHolder {
 public:
  using QuickHolder::QuickHolder;
  void stream(const std::string& sha256, uint64_t offset, uint64_t length,
              const Sink& sink) override {
    active++;
    sent += length;
    try {
      QuickHolder::stream(sha256, offset, length, sink);
    } catch (...) {
      active--;
      throw;
    }
    active--;
  }
  std::atomic<uint64_t> sent{0};
  std::atomic<int> active{0};
};

// A reader slower than its read-ahead (a video player) through a streamed
// blob: each chunk is fetched once. Before, a chunk that came ahead counted
// as used when it came, so it went before chunks already read, and the
// player fetched 1.7 times the file.
TEST(FetcherCache, AStreamedBlobReadSlowerThanItsReadAheadIsFetchedOnce) {
  test::TempDir dir;
  std::unique_ptr<Library> lib = Library::open(dir / "lib", {.create = true});
  std::mt19937_64 rng(13);
  const std::string bytes = test::random_bytes(rng, (Fetcher::kWindow + 19) * kDefaultChunkSize);
  const std::string sha = describe_remote_blob(*lib, bytes);
  auto holder = std::make_shared<CountingHolder>(bytes);
  Fetcher fetcher(*lib, std::make_shared<OneHolder>(holder));
  fetcher.set_could_keep([](const std::string&, uint64_t) { return false; });
  std::shared_ptr<Fetcher::Remote> r = fetcher.open(sha);
  std::string got(1 << 20, '\0');
  for (uint64_t at = 0; at < bytes.size(); at += got.size()) {
    ASSERT_EQ(fetcher.read(*r, std::as_writable_bytes(std::span(got)), at), got.size());
    ASSERT_EQ(std::memcmp(got.data(), bytes.data() + at, got.size()), 0) << "at " << at;
    // The player is slower: the read-ahead asked for is all here first.
    ASSERT_TRUE(test::eventually([&] { return holder->active == 0; }));
  }
  EXPECT_LE(holder->sent, bytes.size())
      << "fetched " << holder->sent << " bytes for a blob of " << bytes.size();
  fetcher.stop();
}

// A reader that reads two chunks in a row here and there (which starts
// read-ahead each time) through a streamed blob: the read-ahead it leaves
// behind unread goes too, and the partial file stays within the window.
// Before, read-ahead not yet read never went, and piled up.
TEST(FetcherCache, ReadAheadLeftUnreadByAStreamedBlobsReadersGoesToo) {
  test::TempDir dir;
  std::unique_ptr<Library> lib = Library::open(dir / "lib", {.create = true});
  std::mt19937_64 rng(15);
  const size_t chunks = 3 * (Fetcher::kReadAhead + 4);
  const std::string bytes = test::random_bytes(rng, chunks * kDefaultChunkSize);
  const std::string sha = describe_remote_blob(*lib, bytes);
  auto holder = std::make_shared<CountingHolder>(bytes);
  Fetcher fetcher(*lib, std::make_shared<OneHolder>(holder));
  fetcher.set_could_keep([](const std::string&, uint64_t) { return false; });
  std::shared_ptr<Fetcher::Remote> r = fetcher.open(sha);
  std::string got(kDefaultChunkSize, '\0');
  for (size_t at : {size_t{0}, chunks / 3, 2 * chunks / 3}) {
    for (size_t i = at; i < at + 2; ++i) {
      ASSERT_EQ(fetcher.read(*r, std::as_writable_bytes(std::span(got)), i * kDefaultChunkSize),
                got.size());
      ASSERT_TRUE(got == bytes.substr(i * kDefaultChunkSize, kDefaultChunkSize)) << "chunk " << i;
    }
    ASSERT_TRUE(test::eventually([&] { return holder->active == 0; }));
  }
  EXPECT_LE(Fetcher::partials(*lib).bytes, (Fetcher::kWindow + 1) * kDefaultChunkSize);
  fetcher.stop();
}

// A disk with room for two chunks and a bit, and a blob of 8 on a slow link
// (so that read-ahead runs are under way together): the whole blob is read,
// whatever the read-ahead had under way when the disk filled (it gives way
// to the reader). Before, the reader's own chunk often met ENOSPC while
// read-ahead runs held the room.
TEST(FetcherCache, ANearlyFullDiskReadsABlobFourTimesItsRoom) {
  test::SmallDisk small;
  if (!small.error().empty()) GTEST_SKIP() << small.error();
  std::unique_ptr<Library> lib = Library::open(small / "lib", {.create = true});
  std::mt19937_64 rng(14);
  const std::string bytes = test::random_bytes(rng, 8 * kDefaultChunkSize);
  const std::string sha = describe_remote_blob(*lib, bytes);
  Fetcher fetcher(*lib, std::make_shared<OneHolder>(std::make_shared<SlowHolder>(bytes)));
  struct statvfs vfs {};
  ASSERT_EQ(::statvfs(small.path().c_str(), &vfs), 0);
  const uint64_t room = 2 * kDefaultChunkSize + (3 << 19);
  ASSERT_GT(vfs.f_bavail * vfs.f_frsize, room);
  UniqueFd filler(::open((small / "filler").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  ASSERT_GE(filler.get(), 0);
  ASSERT_EQ(
      ::posix_fallocate(filler.get(), 0, static_cast<off_t>(vfs.f_bavail * vfs.f_frsize - room)),
      0);
  std::shared_ptr<Fetcher::Remote> r = fetcher.open(sha);
  std::string got(1 << 20, '\0');
  for (uint64_t at = 0; at < bytes.size(); at += got.size()) {
    try {
      ASSERT_EQ(fetcher.read(*r, std::as_writable_bytes(std::span(got)), at), got.size());
    } catch (const Error& e) {
      FAIL() << "read at " << at << ": " << e.what();
    }
    ASSERT_EQ(std::memcmp(got.data(), bytes.data() + at, got.size()), 0) << "at " << at;
  }
  fetcher.stop();
}

// A holder that refuses every request while `down` (a peer that went
// away), and counts them.
class DownHolder : public QuickHolder {
 public:
  using QuickHolder::QuickHolder;
  std::string name() const override { return "down peer"; }
  size_t read(const std::string& sha256, uint64_t offset, std::span<std::byte> buf) override {
    asked++;
    if (down) throw Error(ECONNREFUSED, "down peer: connection refused");
    return QuickHolder::read(sha256, offset, buf);
  }
  std::atomic<bool> down{true};
  std::atomic<int> asked{0};
};

// A pinned blob that is not here is fetched once somebody holds it; a try
// that failed is made again later, each time twice as late, or at once
// when another holder appears; and once here, it is left alone.
TEST(PinKeeper, FetchesPinnedBytesOnceHeldAndTriesAgainLessOftenUnlessHoldersChange) {
  test::TempDir dir;
  std::unique_ptr<Library> lib = Library::open(dir / "lib", {.create = true});
  std::mt19937_64 rng(9);
  const std::string bytes = test::random_bytes(rng, 1 << 20);
  const std::string sha = describe_remote_blob(*lib, bytes);
  auto holder = std::make_shared<DownHolder>(bytes);
  Fetcher fetcher(*lib, std::make_shared<OneHolder>(holder));
  PinKeeper keeper(*lib, fetcher);
  const auto t0 = PinKeeper::Clock::now();
  const auto s = [](int n) { return std::chrono::seconds(n); };

  EXPECT_EQ(keeper.sweep(t0), 0u) << "not pinned: not fetched";
  lib->catalog().pin(sha);
  EXPECT_EQ(keeper.sweep(t0), 0u) << "nobody holds it yet: nobody to ask";
  lib->catalog().set_device_blob(sha, true, "healthy", kCloudHolder);
  EXPECT_EQ(keeper.sweep(t0), 1u);
  ASSERT_TRUE(test::eventually([&] { return holder->asked >= 1; }));
  EXPECT_EQ(keeper.sweep(t0 + s(1)), 0u) << "asked again at once";
  EXPECT_EQ(keeper.sweep(t0 + s(30)), 1u);
  ASSERT_TRUE(test::eventually([&] { return holder->asked >= 2; }));
  EXPECT_EQ(keeper.sweep(t0 + s(89)), 0u) << "the second wait is 60 s";
  EXPECT_EQ(keeper.sweep(t0 + s(90)), 1u);
  ASSERT_TRUE(test::eventually([&] { return holder->asked >= 3; }));

  // Another device holds it now: asked at once.
  holder->down = false;
  lib->catalog().set_device_blob(sha, true, "healthy", "a-second-device");
  EXPECT_EQ(keeper.sweep(t0 + s(91)), 1u);
  ASSERT_TRUE(test::eventually([&] { return lib->blobs().has(sha); }));
  EXPECT_TRUE(test::read_file(lib->blobs().object_path(sha)) == bytes);
  EXPECT_EQ(keeper.sweep(t0 + s(10000)), 0u) << "here: nothing to fetch";
}

}  // namespace
}  // namespace recall
