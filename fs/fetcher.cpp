#include "fs/fetcher.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "base/error.h"
#include "base/file_io.h"
#include "base/sha256.h"

namespace recall {
namespace fs = std::filesystem;

namespace {
// Sources are read in pieces of at most this much.
constexpr uint64_t kPiece = 4ull << 20;
// Parallel ranged requests of a sequential reader, and promotions.
constexpr size_t kMaxPrefetchers = 4;
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
  bool kept = false;     // moved into the store
  bool refused = false;  // the cache budget had no room for it
  size_t next_sequential = 0;
  bool prefetching = false;

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
  for (size_t i = 0; i < kMaxPrefetchers; ++i)
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

Fetcher::~Fetcher() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  workers_.clear();  // joins
}

void Fetcher::post(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    tasks_.push_back(std::move(task));
  }
  cv_.notify_one();
}

std::shared_ptr<Fetcher::Remote> Fetcher::open(const std::string& sha256) {
  std::lock_guard lock(mu_);
  if (auto it = open_.find(sha256); it != open_.end()) {
    if (auto r = it->second.lock()) return r;
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
  // A sparse partial file in the store's tmp/ (same disk: promoted by rename).
  std::string tmpl =
      (lib_.blobs().root() / "tmp" / ("fetch-" + sha256.substr(0, 16) + "-XXXXXX")).string();
  int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) throw_last_errno("create a partial file for " + sha256);
  r->fd.reset(fd);
  r->partial = tmpl;
  if (::ftruncate(fd, static_cast<off_t>(r->size)) != 0) throw_last_errno("size a partial file");
  open_[sha256] = r;
  return r;
}

void Fetcher::fetch_chunk(Remote& r, size_t i) {
  uint64_t off = r.chunk_offset(i), len = r.chunk_length(i);
  std::vector<std::byte> buf(static_cast<size_t>(std::min(len, kPiece)));
  std::string errors;
  for (const std::shared_ptr<ByteSource>& src : provider_->sources_for(r.sha256)) {
    try {
      Sha256 h;
      for (uint64_t done = 0; done < len;) {
        size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), len - done));
        size_t got = src->read(r.sha256, off + done, std::span(buf.data(), want));
        if (got != want) throw Error(EIO, "short read");
        h.update(std::span<const std::byte>(buf.data(), got));
        // Written to the partial file, but not served before it is verified.
        ssize_t w = ::pwrite(r.fd.get(), buf.data(), got, static_cast<off_t>(off + done));
        if (w != static_cast<ssize_t>(got)) throw_last_errno("write a fetched chunk");
        done += got;
      }
      Digest d = h.finish();
      bool ok = r.manifest.empty() ? to_hex(d) == r.sha256 : d == r.manifest[i];
      if (!ok) {
        std::fprintf(stderr,
                     "recallfs: %s sent bad bytes for chunk %zu of %s; trying the next holder\n",
                     src->name().c_str(), i, r.sha256.c_str());
        errors += src->name() + ": bad bytes; ";
        continue;
      }
      provider_->worked(r.sha256, *src);
      return;
    } catch (const Error& e) {
      std::fprintf(stderr, "recallfs: %s could not serve chunk %zu of %s: %s\n",
                   src->name().c_str(), i, r.sha256.c_str(), e.what());
      errors += src->name() + ": " + e.message() + "; ";
    }
  }
  throw Error(EIO, "no holder could serve chunk " + std::to_string(i) + " of " + r.sha256 +
                       (errors.empty() ? " (no holder reachable)" : " (" + errors + ")"));
}

void Fetcher::ensure_chunk(Remote& r, size_t i) {
  {
    std::unique_lock lock(r.mu);
    r.cv.wait(lock, [&] { return r.state[i] != Remote::Fetching; });
    if (r.state[i] == Remote::Present) return;
    r.state[i] = Remote::Fetching;  // this thread fetches; others wait
  }
  try {
    fetch_chunk(r, i);
  } catch (...) {
    std::lock_guard lock(r.mu);
    r.state[i] = Remote::Absent;
    r.cv.notify_all();
    throw;
  }
  bool complete;
  {
    std::lock_guard lock(r.mu);
    r.state[i] = Remote::Present;
    r.present++;
    complete = r.present == r.chunks();
    r.cv.notify_all();
  }
  if (complete) {
    // Checking and moving a whole blob is not the reader's wait.
    std::shared_ptr<Remote> self;
    {
      std::lock_guard lock(mu_);
      if (auto it = open_.find(r.sha256); it != open_.end()) self = it->second.lock();
    }
    if (self) post([this, self] { maybe_promote(*self); });
  }
}

void Fetcher::prefetch(std::shared_ptr<Remote> r, size_t from) {
  size_t to = std::min(r->chunks(), from + kReadAhead);
  for (size_t i = from; i < to; ++i) {
    {
      std::lock_guard rl(r->mu);
      if (r->state[i] != Remote::Absent) continue;
    }
    post([this, r, i] {
      try {
        ensure_chunk(*r, i);
      } catch (...) {
        // The reader meets the error when it gets there.
      }
    });
  }
}

size_t Fetcher::read(Remote& r, std::span<std::byte> buf, uint64_t offset) {
  if (offset >= r.size || buf.empty()) return 0;
  uint64_t len = std::min<uint64_t>(buf.size(), r.size - offset);
  size_t first = static_cast<size_t>(offset / r.chunk_size);
  size_t last = static_cast<size_t>((offset + len - 1) / r.chunk_size);
  bool sequential;
  {
    std::lock_guard lock(r.mu);
    sequential = first == r.next_sequential || first + 1 == r.next_sequential;
    r.next_sequential = last + 1;
  }
  for (size_t i = first; i <= last; ++i) ensure_chunk(r, i);
  if (sequential && last + 1 < r.chunks()) {
    auto self = std::shared_ptr<Remote>();
    {
      std::lock_guard lock(mu_);
      if (auto it = open_.find(r.sha256); it != open_.end()) self = it->second.lock();
    }
    if (self) prefetch(self, last + 1);
  }
  return pread_full(r.fd.get(), std::span(buf.data(), static_cast<size_t>(len)), offset);
}

void Fetcher::maybe_promote(Remote& r) {
  {
    std::lock_guard lock(r.mu);
    if (r.present != r.chunks() || r.promoting) return;
    r.promoting = true;
  }
  if (lib_.blobs().has(r.sha256)) return;  // fetched by someone else meanwhile
  if (admit_ && !admit_(r.sha256, r.size)) {
    std::fprintf(stderr,
                 "recallfs: cache: no room to keep %s (everything kept is pinned, open or not "
                 "yet uploaded); it is read from its holders\n",
                 r.sha256.c_str());
    std::lock_guard lock(r.mu);
    r.promoting = false;
    r.refused = true;
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
    lib_.blobs().adopt(r.partial, r.sha256);
    {
      std::lock_guard lock(r.mu);
      r.kept = true;
    }
    lib_.catalog().set_device_blob(r.sha256, true, "healthy");
    if (on_local_) on_local_(r.sha256);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recallfs: could not keep fetched blob %s: %s\n", r.sha256.c_str(),
                 e.what());
  }
}

void Fetcher::fetch_in_background(const std::string& sha256) {
  post([this, sha256] {
    try {
      fetch_all(sha256);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "recallfs: could not fetch %s: %s\n", sha256.c_str(), e.what());
    }
  });
}

bool Fetcher::refused(Remote& r) {
  std::lock_guard lock(r.mu);
  return r.refused;
}

void Fetcher::fetch_all(const std::string& sha256,
                        const std::function<void(uint64_t, uint64_t)>& progress) {
  if (lib_.blobs().has(sha256)) return;
  std::shared_ptr<Remote> r = open(sha256);
  uint64_t done = 0;
  for (size_t i = 0; i < r->chunks(); ++i) {
    ensure_chunk(*r, i);
    done += r->chunk_length(i);
    if (progress) progress(done, r->size);
  }
  maybe_promote(*r);  // (a no-op when a worker has done it already)
  // A worker may still be moving it into the store: wait for that.
  for (int i = 0; i < 600 && !lib_.blobs().has(sha256) && !refused(*r); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // poll, bounded
  if (lib_.blobs().has(sha256)) return;
  std::lock_guard lock(r->mu);
  if (r->refused)
    throw Error(ENOSPC, "no room in the cache for " + sha256 +
                            ": what it holds is pinned, open or not yet uploaded");
  throw Error(EIO, "blob " + sha256 + " could not be kept");
}

}  // namespace recall
