// Fetcher — reads of blobs that are not on this device, verified.
//
// A blob is fetched by chunk (its manifest in blobs_meta: one SHA-256 per
// 4 MiB; a blob without a manifest is one chunk, checked against its own
// hash) from its holders in the order the SourceProvider gives. A chunk is
// verified before any of its bytes is returned; a holder that fails or sends
// bad bytes is skipped (and logged) and the next one tried; when none can
// serve, the read fails with EIO. Verified chunks go into a sparse partial
// file in the store's tmp/; when every chunk is there the whole blob is
// checked against its name and moved into the store (no copy), and this
// device is recorded as a holder.
//
// Sequential reading prefetches the next chunks in parallel; random reads
// fetch only what they touch; two readers of one chunk cause one fetch.
//
// A blob that will not be kept (larger than the cache budget, see
// set_could_keep) is streamed: its partial file holds a window of chunks
// (kWindow), and chunks the readers have left go again (their disk space is
// freed; a reader that comes back fetches them again). So does a blob whose
// fetched bytes meet a full disk: what is left behind makes room, and the
// read goes on; it fails with ENOSPC only when not even the chunk being read
// fits. Chunks a reply is being made from stay (Lease).
// Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fs/byte_source.h"
#include "fs/library.h"

namespace recall {

class Fetcher {
 public:
  // How many chunks ahead a sequential reader is served, and how many
  // chunks one request asks for at most.
  static constexpr size_t kReadAhead = 16;
  static constexpr size_t kRunChunks = 4;
  // How many chunks a streamed blob keeps on disk at most (the read-ahead,
  // one run being fetched past it, and the chunk being read).
  static constexpr size_t kWindow = kReadAhead + kRunChunks + 1;

  Fetcher(Library& lib, std::shared_ptr<SourceProvider> provider);
  ~Fetcher();  // stop()
  // Ends every fetch and joins the threads, so that no callback (set_on_local,
  // set_admit) runs once it returns: a stream under way is cut at its next
  // piece (not run to its end: an unmount does not wait for a slow link),
  // and waiting readers give up (ECANCELED). The fetcher takes no more
  // work. Idempotent.
  void stop();

  class Remote;
  // Chunks of a remote blob a reply is being made from: they stay on disk
  // until the Lease is destroyed (a streamed blob would free them). Must not
  // outlive its Remote.
  class Lease {
   public:
    Lease() = default;
    Lease(Lease&& o) noexcept { *this = std::move(o); }
    Lease& operator=(Lease&& o) noexcept;
    ~Lease() { release(); }
    size_t size() const { return size_; }

   private:
    friend class Fetcher;
    void release();
    Remote* r_ = nullptr;
    size_t first_ = 0, count_ = 0;  // chunks
    size_t size_ = 0;               // bytes ready
  };
  // The remote blob `sha256` (shared by its readers). EIO when it is unknown
  // here (no blobs_meta) or nobody holds it.
  std::shared_ptr<Remote> open(const std::string& sha256);
  // Reads from a remote blob, fetching and verifying what is missing.
  size_t read(Remote& r, std::span<std::byte> buf, uint64_t offset);
  // Makes [offset, offset + size) of a remote blob readable from fd(r)
  // (fetched and verified) while the Lease lives; its size() is how many
  // bytes are (fewer at the end).
  Lease ready(Remote& r, uint64_t offset, size_t size);
  // The partial file's fd: verified ranges of it may be spliced. Valid while
  // `r` lives, also after the blob moved into the store.
  static int fd(Remote& r);
  // Fetches the whole blob into the store (pin). ENOSPC when the cache has
  // no room to keep it.
  void fetch_all(const std::string& sha256,
                 const std::function<void(uint64_t done, uint64_t total)>& progress = {});
  // Fetches the whole blob and returns a descriptor to read it from: its
  // object in the store, or, when the cache has no room to keep it, its
  // verified partial file (which goes when the descriptor is closed). An
  // edit of a file larger than the cache copies from it.
  UniqueFd whole(const std::string& sha256);
  // fetch_all on a worker thread; failures are logged.
  void fetch_in_background(const std::string& sha256);
  // The partial files in the store now (of this or another process):
  // fetches under way, and blobs the cache would not keep, served from
  // there while open. `bytes`: what they take on disk (they are sparse).
  struct Partials {
    uint64_t files = 0, bytes = 0;
  };
  static Partials partials(Library& lib);
  // Called when a blob has become local (the Vfs switches its readers).
  void set_on_local(std::function<void(const std::string& sha256)> fn) {
    on_local_ = std::move(fn);
  }
  // Asked when a blob is opened: could it be kept (it fits the cache budget,
  // or is pinned)? When it says no, the blob is streamed (see above).
  void set_could_keep(std::function<bool(const std::string& sha256, uint64_t size)> fn) {
    could_keep_ = std::move(fn);
  }
  // Asked before a fetched blob is kept (the cache budget); when it says no,
  // the blob is served from its partial file while open, then dropped.
  void set_admit(std::function<bool(const std::string& sha256, uint64_t size)> fn) {
    admit_ = std::move(fn);
  }

 private:
  // Returns once chunk i is Present; fetches it (and up to `run` - 1 absent
  // chunks after it, in one request) when nobody else is.
  void ensure_chunk(Remote& r, size_t i, size_t run);
  // `ahead`: read-ahead, which gives way to the reader on a full disk.
  void fetch_run(Remote& r, size_t first, size_t count, bool ahead);
  void chunk_arrived(Remote& r, size_t i);
  size_t claim_run(Remote& r, size_t from, size_t max);
  std::shared_ptr<Remote> find_remote(const std::string& sha256);
  void prefetch(const std::shared_ptr<Remote>& r, size_t from);
  void maybe_promote(Remote& r);
  // A streamed blob: frees chunks no reader holds, until at most `keep` are
  // on disk (r.mu held): those read, least recently read first, before
  // read-ahead not read yet. How many went.
  size_t shed(Remote& r, size_t keep);
  // Room for fetched bytes on a full disk: the blob is streamed from now on
  // (unless it is wanted whole); read-ahead (`ahead`) gives up; a reader's
  // fetch sheds what it can, or waits for another run to end. True: try the
  // write again.
  bool make_room_for(Remote& r, bool ahead);
  // Every chunk fetched and verified, and moved into the store unless the
  // cache refused it or keeping it failed.
  std::shared_ptr<Remote> fetch_whole(const std::string& sha256,
                                      const std::function<void(uint64_t, uint64_t)>& progress);
  // The cache had no room for it, or moving it into the store failed.
  static bool will_not_be_kept(Remote& r);
  // Why a fetched blob is not in the store (r.mu held).
  [[noreturn]] static void throw_not_kept(Remote& r);

  void post(std::function<void()> task);

  Library& lib_;
  std::shared_ptr<SourceProvider> provider_;
  std::function<void(const std::string&)> on_local_;
  std::function<bool(const std::string&, uint64_t)> admit_;
  std::function<bool(const std::string&, uint64_t)> could_keep_;
  std::mutex mu_;  // guards open_, tasks_, stop_
  std::condition_variable cv_;
  std::map<std::string, std::weak_ptr<Remote>> open_;
  // Prefetches and promotions run on a few threads of their own.
  std::deque<std::function<void()>> tasks_;
  bool stop_ = false;
  std::atomic<bool> stopping_{false};  // stop() runs: waiters give up
  std::condition_variable bg_cv_;
  std::deque<std::string> bg_queue_;  // blobs to fetch_all in the background
  std::vector<std::jthread> workers_;
  std::jthread background_;
};

}  // namespace recall
