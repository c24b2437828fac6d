#include "fs/fetcher.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <tuple>
#include <utility>

#include "base/error.h"
#include "base/file_io.h"
#include "base/sha256.h"

namespace recall {
namespace fs = std::filesystem;

namespace {

const std::string kPartialPrefix = "fetch-";  // a partial file's name in the store's tmp/

// A fetched piece this device could not write (a full disk), thrown through
// the holder's stream to tell it from the holder's own failures.
struct LocalFailure {
  Error error;
};
// Parallel requests of sequential readers, and promotions.
constexpr size_t kWorkers = 4;

// Contiguous fetched bytes on their way to the partial file, written 1 MiB
// at a time. On a full disk `make_room` is asked to free some and the write
// tried again; a write this device still cannot make is a LocalFailure.
class WriteBuffer {
 public:
  WriteBuffer(int fd, std::function<bool()> make_room) : fd_(fd), make_room_(std::move(make_room)) {
    buf_.reserve(kSize);
  }
  // `bytes` belong at `offset`, right after what is buffered (or anywhere
  // when nothing is).
  void append(std::span<const std::byte> bytes, uint64_t offset) {
    if (buf_.empty()) at_ = offset;
    buf_.insert(buf_.end(), bytes.begin(), bytes.end());
    if (buf_.size() >= kSize) flush();
  }
  void flush() {
    for (size_t done = 0; done < buf_.size();) {
      ssize_t w =
          ::pwrite(fd_, buf_.data() + done, buf_.size() - done, static_cast<off_t>(at_ + done));
      if (w > 0) {
        done += static_cast<size_t>(w);
        continue;
      }
      int e = w < 0 ? errno : ENOSPC;
      if (e == EINTR) continue;
      if ((e == ENOSPC || e == EDQUOT) && make_room_()) continue;
      throw LocalFailure{
          Error(e, std::string("cannot keep fetched bytes here: ") + std::strerror(e))};
    }
    at_ += buf_.size();
    buf_.clear();
  }

 private:
  static constexpr size_t kSize = 1 << 20;
  int fd_;
  std::function<bool()> make_room_;
  uint64_t at_ = 0;
  std::vector<std::byte> buf_;
};
}  // namespace

class Fetcher::Remote {
 public:
  enum State : uint8_t { Absent, Fetching, Present };

  std::string sha256;
  uint64_t size = 0;
  uint64_t chunk_size = 0;
  std::vector<Digest> manifest;  // empty: one chunk, checked against sha256
  fs::path partial;
  UniqueFd fd;

  std::mutex mu;  // guards the fields below
  std::condition_variable cv;
  std::vector<State> state;
  size_t present = 0;
  bool promoting = false;
  bool kept = false;              // moved into the store
  bool refused = false;           // the cache budget had no room for it
  bool ask_again = false;         // opened again while the budget was being asked
  std::optional<Error> not_kept;  // why moving it into the store failed
  size_t next_sequential = 0;
  bool prefetching = false;
  // Streamed: not to be kept, so chunks the readers have left go (shed()).
  bool streamed = false;
  bool disk_full = false;           // a write met a full disk: no read-ahead
  bool whole_wanted = false;        // fetch_whole: every chunk stays
  std::vector<uint32_t> leases;     // replies being made from each chunk
  std::vector<uint64_t> last_used;  // when each chunk was last read (0: not since it came)
  std::vector<uint64_t> came;       // when each chunk came
  uint64_t ticks = 0;
  size_t runs = 0;     // fetch_runs under way
  uint64_t ended = 0;  // fetch_runs ended (a full disk's reader waits for one)

  size_t chunks() const { return state.size(); }
  uint64_t chunk_offset(size_t i) const { return static_cast<uint64_t>(i) * chunk_size; }
  uint64_t chunk_length(size_t i) const { return std::min(chunk_size, size - chunk_offset(i)); }

  // A blob that was not kept leaves nothing behind in tmp/.
  ~Remote() {
    if (!kept && !partial.empty()) ::unlink(partial.c_str());
  }
};

Fetcher::Fetcher(Library& lib, std::shared_ptr<SourceProvider> provider)
    : lib_(lib), provider_(std::move(provider)) {
  for (size_t i = 0; i < kWorkers; ++i)
    workers_.emplace_back([this] {
      for (;;) {
        std::function<void()> task;
        {
          std::unique_lock lock(mu_);
          cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
          if (stop_) return;
          task = std::move(tasks_.front());
          tasks_.pop_front();
        }
        task();
      }
    });
}

Fetcher::~Fetcher() { stop(); }

void Fetcher::stop() {
  std::vector<std::shared_ptr<Remote>> remotes;
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    stopping_ = true;
    for (auto& [sha, weak] : open_)
      if (auto r = weak.lock()) remotes.push_back(r);
  }
  cv_.notify_all();
  bg_cv_.notify_all();
  // Waiters for chunks that queued tasks will now never fetch give up.
  for (auto& r : remotes) {
    std::lock_guard lock(r->mu);
    r->cv.notify_all();
  }
  background_ = std::jthread();  // joins
  workers_.clear();              // joins
}

void Fetcher::post(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

std::shared_ptr<Fetcher::Remote> Fetcher::open(const std::string& sha256) {
  std::unique_lock lock(mu_);
  if (auto it = open_.find(sha256); it != open_.end()) {
    if (auto r = it->second.lock()) {
      // Read whole before, but the cache had no room then: a new reader
      // asks again (the files that filled it may be closed now), rather
      // than waiting for every reader of the old one to close first.
      bool refused;
      {
        std::lock_guard l(r->mu);
        refused = r->refused;
        if (r->promoting) r->ask_again = true;  // the answer under way may be no
      }
      lock.unlock();
      if (refused) post([this, r] { maybe_promote(*r); });
      return r;
    }
    open_.erase(it);
  }
  if (open_.size() > 256) std::erase_if(open_, [](const auto& e) { return e.second.expired(); });
  std::optional<BlobMeta> meta = lib_.catalog().get_blob(sha256);
  if (!meta) throw Error(EIO, "blob " + sha256 + " is not on this device and not described here");
  if (provider_->sources_for(sha256).empty())
    throw Error(EIO, "blob " + sha256 + " is not on this device, and no holder can be reached");
  auto r = std::make_shared<Remote>();
  r->sha256 = sha256;
  r->size = meta->size;
  if (meta->chunk_size && *meta->chunk_size > 0 && !meta->chunk_manifest.empty()) {
    ChunkManifest m =
        ChunkManifest::unpack(static_cast<uint64_t>(*meta->chunk_size), meta->chunk_manifest);
    uint64_t expected = (r->size + m.chunk_size - 1) / m.chunk_size;
    if (m.chunks.size() == expected) {
      r->chunk_size = m.chunk_size;
      r->manifest = std::move(m.chunks);
    }
  }
  if (r->manifest.empty()) r->chunk_size = std::max<uint64_t>(r->size, 1);
  size_t n = r->size == 0 ? 0 : static_cast<size_t>((r->size + r->chunk_size - 1) / r->chunk_size);
  r->state.assign(n, Remote::Absent);
  r->leases.assign(n, 0);
  r->last_used.assign(n, 0);
  r->came.assign(n, 0);
  r->streamed = could_keep_ && !could_keep_(sha256, r->size);
  // A sparse partial file in the store's tmp/ (same disk: promoted by rename).
  std::string tmpl =
      (lib_.blobs().root() / "tmp" / (kPartialPrefix + sha256.substr(0, 16) + "-XXXXXX")).string();
  int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) throw_last_errno("create a partial file for " + sha256);
  r->fd.reset(fd);
  r->partial = tmpl;
  if (::ftruncate(fd, static_cast<off_t>(r->size)) != 0) throw_last_errno("size a partial file");
  open_[sha256] = r;
  return r;
}

// Chunks [first, first + count) were claimed (Fetching) by the caller. One
// request per holder streams them; each chunk is hashed as it arrives and
// marked Present the moment it is verified, so a reader waiting for the
// first chunk of a long run does not wait for the rest. A holder that fails
// or sends a bad chunk is left for the next one, which is asked only for
// the chunks still missing.
void Fetcher::fetch_run(Remote& r, size_t first, size_t count, bool ahead) {
  {
    std::lock_guard lock(r.mu);
    r.runs++;
  }
  struct Ended {  // however the run ends
    Remote& r;
    ~Ended() {
      std::lock_guard lock(r.mu);
      r.runs--;
      r.ended++;
      r.cv.notify_all();
    }
  } ended{r};
  size_t next = first;  // the first chunk of the run not yet verified
  const size_t end = first + count;
  std::string errors;
  std::vector<std::shared_ptr<ByteSource>> sources;
  try {
    sources = provider_->sources_for(r.sha256);
  } catch (const std::exception& e) {
    errors = e.what();
  }
  std::optional<Error> local;  // this device failed to keep the bytes
  bool stopped = false;        // stop() cut the stream short
  // Failures are reported when the whole try is over, so that a holder
  // rests from then on, not from the middle of a try that asks the others.
  std::vector<std::tuple<std::shared_ptr<ByteSource>, int, SourceProvider::Clock::time_point>>
      failures;
  for (const std::shared_ptr<ByteSource>& src : sources) {
    if (next == end) break;
    if (provider_->resting(*src)) {
      errors += (errors.empty() ? "" : "; ") + src->name() +
                ": did not answer a moment ago, not asked again yet";
      continue;
    }
    const auto asked_at = SourceProvider::Clock::now();
    Sha256 h;
    uint64_t in_chunk = 0;  // bytes of chunk `next` received
    bool bad = false;
    uint64_t from = r.chunk_offset(next);
    uint64_t length = r.chunk_offset(end - 1) + r.chunk_length(end - 1) - from;
    // Received pieces are small (what one recv returned, often 16 KiB);
    // they are hashed as they come but written in large runs (cheaper per
    // byte: fewer page-cache folios and inode locks).
    WriteBuffer out(r.fd.get(), [&] { return make_room_for(r, ahead); });
    try {
      src->stream(r.sha256, from, length, [&](std::span<const std::byte> piece) {
        if (stopping_) return false;  // unmounting: the rest is not waited for
        while (!piece.empty()) {
          uint64_t want = r.chunk_length(next) - in_chunk;
          size_t k = static_cast<size_t>(std::min<uint64_t>(want, piece.size()));
          // Written to the partial file, but not served before it is verified.
          out.append(piece.first(k), r.chunk_offset(next) + in_chunk);
          h.update(piece.first(k));
          in_chunk += k;
          piece = piece.subspan(k);
          if (in_chunk < r.chunk_length(next)) continue;
          out.flush();
          Digest d = h.finish();
          bool ok = r.manifest.empty() ? to_hex(d) == r.sha256 : d == r.manifest[next];
          if (!ok) {
            bad = true;
            return false;  // stop this holder
          }
          chunk_arrived(r, next);
          ++next;
          h = Sha256();
          in_chunk = 0;
        }
        return true;
      });
      if (bad) {
        std::fprintf(stderr,
                     "recallfs: %s sent bad bytes for chunk %zu of %s; trying the next holder\n",
                     src->name().c_str(), next, r.sha256.c_str());
        errors += (errors.empty() ? "" : "; ") + src->name() + ": bad bytes";
        continue;
      }
      if (next != end && stopping_) {
        stopped = true;
        break;
      }
      if (next != end) throw Error(EIO, src->name() + " sent fewer bytes than asked for");
      provider_->worked(r.sha256, *src);
    } catch (const LocalFailure& f) {
      // This device's disk, not the holder: no other holder would do
      // better, and none is blamed.
      std::fprintf(stderr, "recallfs: chunk %zu of %s: %s\n", next, r.sha256.c_str(),
                   f.error.what());
      local = f.error;
      break;
    } catch (const std::exception& e) {
      std::string what = e.what();  // a peer's own messages name it already
      if (!what.starts_with(src->name())) what = src->name() + ": " + what;
      std::fprintf(stderr, "recallfs: chunk %zu of %s: %s\n", next, r.sha256.c_str(), what.c_str());
      errors += (errors.empty() ? "" : "; ") + what;
      auto* err = dynamic_cast<const Error*>(&e);
      failures.emplace_back(src, err ? err->code() : EIO, asked_at);
    }
  }
  for (const auto& [src, code, asked_at] : failures)
    provider_->failed(r.sha256, *src, code, asked_at);
  if (next == end) return;
  {
    // What could not be fetched can be asked for again; what came of it
    // frees its disk space (nobody reads it: the chunks are still ours).
    std::lock_guard lock(r.mu);
    uint64_t from = r.chunk_offset(next);
    ::fallocate(r.fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(from),
                static_cast<off_t>(r.chunk_offset(end - 1) + r.chunk_length(end - 1) - from));
    for (size_t i = next; i < end; ++i) r.state[i] = Remote::Absent;
    r.cv.notify_all();
  }
  if (stopped) throw Error(ECANCELED, "recallfs is stopping");
  if (local) throw *local;
  throw Error(EIO, "no holder could serve chunk " + std::to_string(next) + " of " + r.sha256 +
                       (errors.empty() ? " (no holder reachable)" : " (" + errors + ")"));
}

void Fetcher::chunk_arrived(Remote& r, size_t i) {
  bool complete;
  {
    std::lock_guard lock(r.mu);
    r.state[i] = Remote::Present;
    r.present++;
    r.came[i] = ++r.ticks;
    if (r.streamed) shed(r, kWindow);
    complete = r.present == r.chunks();
    r.cv.notify_all();
  }
  if (!complete) return;
  // Checking and moving a whole blob is not the reader's wait.
  if (auto self = find_remote(r.sha256)) post([this, self] { maybe_promote(*self); });
}

std::shared_ptr<Fetcher::Remote> Fetcher::find_remote(const std::string& sha256) {
  std::lock_guard lock(mu_);
  auto it = open_.find(sha256);
  return it == open_.end() ? nullptr : it->second.lock();
}

size_t Fetcher::claim_run(Remote& r, size_t from, size_t max) {
  std::lock_guard lock(r.mu);
  size_t n = 0;
  while (from + n < r.chunks() && n < max && r.state[from + n] == Remote::Absent) {
    r.state[from + n] = Remote::Fetching;
    ++n;
  }
  return n;
}

void Fetcher::ensure_chunk(Remote& r, size_t i, size_t run) {
  for (;;) {
    {
      std::unique_lock lock(r.mu);
      r.cv.wait(lock, [&] { return r.state[i] != Remote::Fetching || stopping_; });
      if (r.state[i] == Remote::Present) return;
      if (stopping_) throw Error(ECANCELED, "recallfs is stopping");
    }
    size_t n = claim_run(r, i, run);
    if (n > 0) return fetch_run(r, i, n, false);
    // Someone else claimed it between the wait and the claim: wait again.
  }
}

// Claims the absent chunks in [from, from + kReadAhead) in runs of up to
// kRunChunks and fetches each run on a worker.
void Fetcher::prefetch(const std::shared_ptr<Remote>& r, size_t from) {
  {
    std::lock_guard lock(r->mu);
    if (r->disk_full) return;  // room for the chunk being read only
  }
  size_t to = std::min(r->chunks(), from + kReadAhead);
  for (size_t i = from; i < to;) {
    // Whole runs only (but for the blob's tail): as the reader moves on, the
    // window refills a run at a time, not a chunk at a time.
    if (i + kRunChunks > to && to < r->chunks()) break;
    size_t n = claim_run(*r, i, std::min(kRunChunks, to - i));
    if (n == 0) {
      ++i;
      continue;
    }
    post([this, r, i, n] {
      try {
        fetch_run(*r, i, n, true);
      } catch (...) {
        // The reader meets the error when it gets there.
      }
    });
    i += n;
  }
}

size_t Fetcher::read(Remote& r, std::span<std::byte> buf, uint64_t offset) {
  Lease lease = ready(r, offset, buf.size());
  if (lease.size() == 0) return 0;
  return pread_full(r.fd.get(), std::span(buf.data(), lease.size()), offset);
}

Fetcher::Lease& Fetcher::Lease::operator=(Lease&& o) noexcept {
  if (this != &o) {
    release();
    r_ = std::exchange(o.r_, nullptr);
    first_ = o.first_;
    count_ = std::exchange(o.count_, 0);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

void Fetcher::Lease::release() {
  if (!r_) return;
  std::lock_guard lock(r_->mu);
  for (size_t i = first_; i < first_ + count_; ++i) r_->leases[i]--;
  r_ = nullptr;
  count_ = 0;
}

size_t Fetcher::shed(Remote& r, size_t keep) {
  if (r.whole_wanted) return 0;
  size_t gone = 0;
  while (r.present > keep) {
    // Chunks already read, least recently read first; then read-ahead not
    // read yet (many readers, or a full disk), the longest here first.
    size_t victim = r.chunks();
    auto before = [&](size_t a, size_t b) {
      bool read_a = r.last_used[a] != 0, read_b = r.last_used[b] != 0;
      if (read_a != read_b) return read_a;
      return read_a ? r.last_used[a] < r.last_used[b] : r.came[a] < r.came[b];
    };
    for (size_t i = 0; i < r.chunks(); ++i)
      if (r.state[i] == Remote::Present && r.leases[i] == 0 &&
          (victim == r.chunks() || before(i, victim)))
        victim = i;
    if (victim == r.chunks()) break;  // every chunk on disk is being read
    if (::fallocate(r.fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                    static_cast<off_t>(r.chunk_offset(victim)),
                    static_cast<off_t>(r.chunk_length(victim))) != 0) {
      std::fprintf(stderr,
                   "recallfs: cannot free read chunks of %s (%s); they stay until it closes\n",
                   r.sha256.c_str(), std::strerror(errno));
      r.streamed = false;
      break;
    }
    r.state[victim] = Remote::Absent;
    r.last_used[victim] = 0;  // fetched again, it is read-ahead until read
    r.present--;
    ++gone;
  }
  return gone;
}

bool Fetcher::make_room_for(Remote& r, bool ahead) {
  std::unique_lock lock(r.mu);
  if (r.whole_wanted) return false;
  if (!r.disk_full)
    std::fprintf(stderr,
                 "recallfs: the disk is full: %s is read without keeping it, a chunk at a time\n",
                 r.sha256.c_str());
  r.streamed = true;
  r.disk_full = true;
  // Read-ahead gives way: its run fails, and frees what it wrote.
  if (ahead) return false;
  if (shed(r, 0) > 0) return true;
  // Nothing to free but what other runs are writing: they give way (or
  // end), and the write is tried again then.
  if (r.runs <= 1) return false;
  const uint64_t seen = r.ended;
  r.cv.wait_for(lock, std::chrono::seconds(5), [&] { return r.ended != seen || stopping_; });
  return r.ended != seen;
}

int Fetcher::fd(Remote& r) { return r.fd.get(); }

Fetcher::Lease Fetcher::ready(Remote& r, uint64_t offset, size_t size) {
  Lease lease;
  if (offset >= r.size || size == 0) return lease;
  uint64_t len = std::min<uint64_t>(size, r.size - offset);
  size_t first = static_cast<size_t>(offset / r.chunk_size);
  size_t last = static_cast<size_t>((offset + len - 1) / r.chunk_size);
  bool sequential;
  {
    std::lock_guard lock(r.mu);
    sequential = first == r.next_sequential || first + 1 == r.next_sequential;
    r.next_sequential = last + 1;
  }
  // Read-ahead first, so that it overlaps with the wait for this read.
  if (sequential && last + 1 < r.chunks())
    if (auto self = find_remote(r.sha256)) prefetch(self, last + 1);
  for (size_t i = first; i <= last; ++i) {
    {
      // Leased before it is fetched: a streamed blob never sheds a chunk a
      // reader waits for (between its arrival and the reply). Readers that
      // hold more chunks than the window keep them all.
      std::lock_guard lock(r.mu);
      r.leases[i]++;
      r.last_used[i] = ++r.ticks;
      if (!lease.r_) {
        lease.r_ = &r;
        lease.first_ = i;
      }
      lease.count_++;
    }
    ensure_chunk(r, i, last - i + 1);
  }
  lease.size_ = static_cast<size_t>(len);
  return lease;
}

void Fetcher::maybe_promote(Remote& r) {
  {
    std::lock_guard lock(r.mu);
    if (r.present != r.chunks() || r.promoting) return;
    r.promoting = true;
    r.refused = false;  // asked again
  }
  if (lib_.blobs().has(r.sha256)) return;  // fetched by someone else meanwhile
  if (admit_ && !admit_(r.sha256, r.size)) {
    std::fprintf(stderr,
                 "recallfs: cache: no room to keep %s (%llu bytes: larger than the budget, or "
                 "what the cache holds is pinned, open or not yet uploaded); it is read from its "
                 "holders\n",
                 r.sha256.c_str(), static_cast<unsigned long long>(r.size));
    bool again;
    {
      std::lock_guard lock(r.mu);
      r.promoting = false;
      r.refused = true;
      again = std::exchange(r.ask_again, false);
    }
    if (again)
      if (auto self = find_remote(r.sha256)) post([this, self] { maybe_promote(*self); });
    return;
  }
  // Every chunk verified: check the whole, then move it into the store.
  try {
    std::vector<std::byte> buf(1 << 20);
    Sha256 h;
    for (uint64_t off = 0; off < r.size;) {
      size_t n = pread_full(
          r.fd.get(), std::span(buf.data(), std::min<uint64_t>(buf.size(), r.size - off)), off);
      if (n == 0) break;
      h.update(std::span<const std::byte>(buf.data(), n));
      off += n;
    }
    if (to_hex(h.finish()) != r.sha256)
      throw Error(EIO, "the fetched blob does not match its name");
    fsync_fd(r.fd.get(), r.partial);
    lib_.blobs().adopt(r.partial, r.sha256, true);
    {
      std::lock_guard lock(r.mu);
      r.kept = true;
    }
    lib_.catalog().set_device_blob(r.sha256, true, "healthy");
    if (on_local_) on_local_(r.sha256);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recallfs: could not keep fetched blob %s: %s\n", r.sha256.c_str(),
                 e.what());
    auto* err = dynamic_cast<const Error*>(&e);
    std::lock_guard lock(r.mu);
    r.not_kept =
        Error(err ? err->code() : EIO, "blob " + r.sha256 + " could not be kept: " + e.what());
  }
}

Fetcher::Partials Fetcher::partials(Library& lib) {
  Partials p;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(lib.blobs().root() / "tmp", ec)) {
    struct stat st {};
    if (!e.path().filename().string().starts_with(kPartialPrefix) ||
        ::lstat(e.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode))
      continue;  // gone meanwhile
    ++p.files;
    p.bytes += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return p;
}

void Fetcher::fetch_in_background(const std::string& sha256) {
  // Not on the workers: fetch_all waits for chunks that the workers fetch.
  std::lock_guard lock(mu_);
  if (stop_) return;
  bg_queue_.push_back(sha256);
  if (!background_.joinable())
    background_ = std::jthread([this] {
      for (;;) {
        std::string sha;
        {
          std::unique_lock l(mu_);
          bg_cv_.wait(l, [&] { return stop_ || !bg_queue_.empty(); });
          if (stop_) return;
          sha = std::move(bg_queue_.front());
          bg_queue_.pop_front();
        }
        try {
          fetch_all(sha);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "recallfs: could not fetch %s: %s\n", sha.c_str(), e.what());
        }
      }
    });
  bg_cv_.notify_one();
}

bool Fetcher::will_not_be_kept(Remote& r) {
  std::lock_guard lock(r.mu);
  return r.refused || r.not_kept;
}

void Fetcher::fetch_all(const std::string& sha256,
                        const std::function<void(uint64_t, uint64_t)>& progress) {
  if (lib_.blobs().has(sha256)) return;
  std::shared_ptr<Remote> r = fetch_whole(sha256, progress);
  if (lib_.blobs().has(sha256)) return;
  std::lock_guard lock(r->mu);
  throw_not_kept(*r);
}

void Fetcher::throw_not_kept(Remote& r) {
  if (r.not_kept) throw *r.not_kept;
  if (r.refused)
    throw Error(ENOSPC, "no room in the cache for " + r.sha256 +
                            ": what it holds is pinned, open or not yet uploaded");
  throw Error(EIO, "blob " + r.sha256 + " could not be kept");
}

UniqueFd Fetcher::whole(const std::string& sha256) {
  if (!lib_.blobs().has(sha256)) {
    std::shared_ptr<Remote> r = fetch_whole(sha256, {});
    if (!lib_.blobs().has(sha256)) {
      std::lock_guard lock(r->mu);
      if (!r->refused || r->not_kept) throw_not_kept(*r);
      int fd = ::fcntl(r->fd.get(), F_DUPFD_CLOEXEC, 0);
      if (fd < 0) throw_last_errno("dup the fetched bytes of " + sha256);
      return UniqueFd(fd);
    }
  }
  return lib_.blobs().open_object(sha256);
}

std::shared_ptr<Fetcher::Remote> Fetcher::fetch_whole(
    const std::string& sha256, const std::function<void(uint64_t, uint64_t)>& progress) {
  std::shared_ptr<Remote> r = open(sha256);
  {
    std::lock_guard lock(r->mu);
    r->whole_wanted = true;  // no chunk goes any more
  }
  uint64_t done = 0;
  for (size_t i = 0; i < r->chunks(); ++i) {
    prefetch(r, i);
    ensure_chunk(*r, i, kRunChunks);
    done += r->chunk_length(i);
    if (progress) progress(done, r->size);
  }
  maybe_promote(*r);  // (a no-op when a worker has done it already)
  // A worker may still be moving it into the store: wait for that.
  for (int i = 0; i < 600 && !lib_.blobs().has(sha256) && !will_not_be_kept(*r); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // poll, bounded
  return r;
}

}  // namespace recall
