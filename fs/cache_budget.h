// CacheBudget — keeps the bytes of a signed-in library on this device within
// a size (`recallfs mount --cache-size`), like a cache in front of the cloud.
//
// A blob may go only when all of these hold, checked just before it goes:
//   - the cloud holds it (a device_blobs row for kCloudHolder, written when
//     an upload completed): this device never drops the last copy;
//   - it is not pinned (`recallfs pin`);
//   - no open file reads it (`in_use`).
// Blobs go least recently used first (BlobStore::touch). When nothing more
// may go, the store stays over budget rather than lose a byte: a blob fetched
// then is read from its partial file and not kept (see Fetcher::set_admit).
// A blob larger than the whole budget (and not pinned) is never kept: it is
// streamed through a window of chunks (could_keep, Fetcher::set_could_keep).
// Thread-safe; trim() runs in the caller's thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "fs/library.h"

namespace recall {

class CacheBudget {
 public:
  // `in_use`: a blob open on the mount (never evicted). `evicted` is told of
  // each blob removed (its files' st_blocks change).
  CacheBudget(Library& lib, uint64_t budget_bytes,
              std::function<bool(const std::string& sha256)> in_use,
              std::function<void(const std::string& sha256)> evicted = {});
  ~CacheBudget();

  uint64_t budget() const { return budget_; }
  // Bytes of blobs on this device now.
  uint64_t used();
  // Evicts until `incoming` more bytes fit in the budget; true when they do.
  // A pinned blob is always admitted (pins win over the budget).
  bool make_room(const std::string& sha256, uint64_t incoming);
  // Whether a blob of `size` bytes could be kept at all: it fits the budget,
  // or is pinned. One that could not is streamed (Fetcher::set_could_keep).
  bool could_keep(const std::string& sha256, uint64_t size);
  // Evicts until the store is within budget, as far as allowed.
  void trim() { make_room("", 0); }
  // Trims in a background thread now and then, and soon after poke().
  void start();
  void poke();
  // A file of the blob was closed: pokes when the last trim kept the blob
  // for being open and stayed over budget (so an unpin of an open file, or a
  // budget full of open files, trims at the close, not at the next timer).
  void closed(const std::string& sha256);

 private:
  enum class Keep { No, Yes, Open };  // Open: only because a file has it open
  Keep keep(const std::string& sha256);

  Library& lib_;
  uint64_t budget_;
  std::function<bool(const std::string&)> in_use_;
  std::function<void(const std::string&)> evicted_;
  std::mutex evict_mu_;  // one eviction pass at a time
  std::mutex mu_;        // guards poked_, stop_
  std::condition_variable cv_;
  bool poked_ = false;
  bool stop_ = false;
  // The blobs the last pass that ended over budget kept only for being open.
  std::set<std::string> kept_open_;
  std::jthread thread_;  // last: joined first
};

// "10G", "512M", "1.5GiB", "1000000" -> bytes; EINVAL otherwise.
uint64_t parse_size(const std::string& text);

}  // namespace recall
