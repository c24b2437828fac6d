// BlobStore — the content-addressed byte store under one data directory.
//
// Layout (all under <dir>/cas):
//   objects/<2 hex>/<sha256>   the objects, mode 0444, never modified in place
//   tmp/                       puts in progress; anything here after a crash
//                              is removed when the store is next opened alone
//   quarantine/                objects whose bytes no longer match their name
//   index.db                   BlobIndex (rebuildable from objects/)
//   lock, clean                see "Crashes" below
//
// Guarantees:
//   * An object is visible under objects/ only once all its bytes are written
//     and fsync'd, and only under the name of its own SHA-256; put() returns
//     after the object and its directory entry are durable.
//   * Concurrent puts of the same bytes (threads or processes) yield one object.
//   * open() never returns an object that verify found modified (it is moved
//     to quarantine/); an fd already open stays readable after remove().
//
// Crashes: a process killed at any point leaves at most a file in tmp/ and an
// object not yet in the index. Every process holds a shared lock on `lock`;
// the one that opens the store alone removes tmp/ files and, unless the last
// user closed cleanly (the `clean` marker), reconciles the index with
// objects/ (a scan that trusts names and re-hashes nothing) and removes the
// objects Options::unneeded_after_crash names.
//
// Thread-safe: all methods may be called from several threads.
// Errors: recall::Error; ENOENT for an object that is not here, ENOSPC when
// the disk is full (nothing is left behind), EUCLEAN for a corrupt index.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <istream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "base/fd.h"
#include "cas/blob_index.h"
#include "cas/blob_info.h"

namespace recall {

struct PutResult {
  std::string sha256;
  uint64_t size = 0;
  bool deduplicated = false;  // the object was already in the store
  ContentInfo content;
};

struct VerifyProgress {
  uint64_t objects_done = 0, objects_total = 0;
  uint64_t bytes_done = 0, bytes_total = 0;
};

struct VerifyReport {
  uint64_t checked = 0;  // objects re-hashed
  uint64_t bytes = 0;
  std::vector<std::string> modified;  // now in quarantine/
  std::vector<std::string> missing;   // indexed but absent
};

struct ScanReport {
  uint64_t objects_seen = 0;
  uint64_t added = 0;      // on disk but not indexed: now indexed
  uint64_t restored = 0;   // indexed as missing, found again: healthy
  uint64_t relocated = 0;  // found outside their place and moved back
  uint64_t missing = 0;    // indexed, not on disk: marked missing
  uint64_t ignored = 0;    // files under objects/ that are not objects
};

class BlobStore {
 public:
  struct Options {
    bool create = false;  // create <dir>/cas when missing
    // Each `kWritebackBytes` written, put() asks the kernel to start writing
    // back, so the final fsync overlaps with hashing instead of following it.
    uint64_t writeback_bytes = 8ull << 20;
    // After a crash (opened alone, and the last user did not close cleanly):
    // asked of every object once the index is reconciled; those it returns
    // true for are removed. The library's owner says which no file needs:
    // a crash leaves objects stored and never recorded, or being removed.
    std::function<bool(const std::string& sha256)> unneeded_after_crash = nullptr;
  };

  // Opens the store in `data_dir`. ENOENT when it does not exist and
  // !options.create.
  static std::unique_ptr<BlobStore> open(const std::filesystem::path& data_dir,
                                         const Options& options);
  ~BlobStore();
  BlobStore(const BlobStore&) = delete;
  BlobStore& operator=(const BlobStore&) = delete;

  // Stores everything readable from `fd` (from its current offset to end of
  // file), hashing while writing. `fd` may be a pipe.
  PutResult put(int fd);
  PutResult put(std::istream& in);
  PutResult put_file(const std::filesystem::path& file);
  // Takes over a file the caller wrote inside this store's file system (the
  // mount's write staging) and that nobody writes any more: makes it
  // read-only and renames it into objects/ — no copy. `sha256` is its hash
  // when the caller computed it while writing; otherwise it is hashed here.
  // `synced`: the caller fsync'd it, through the descriptor it wrote with
  // (where a writeback error shows); otherwise it is fsync'd here, unless
  // its object is here already (then its bytes are durable as they are).
  // The file is gone afterwards, whether it became the object or was a
  // duplicate of one.
  PutResult adopt(const std::filesystem::path& file, const std::optional<std::string>& sha256,
                  bool synced);

  // True when the object is present and servable (not missing, not quarantined).
  bool has(const std::string& sha256) const;
  // What the index says about an object, or nullopt when it is not indexed.
  std::optional<BlobInfo> stat(const std::string& sha256);
  // A read-only fd for pread. ENOENT when absent or quarantined.
  UniqueFd open_object(const std::string& sha256) const;
  std::filesystem::path object_path(const std::string& sha256) const;
  // Deletes an object and its index row. ENOENT when it is not here.
  void remove(const std::string& sha256);

  // Calls `fn` for each indexed object in hash order, a page at a time, so a
  // store of any size is listed in bounded memory. Stops when `fn` returns false.
  void list(const std::function<bool(const BlobInfo&)>& fn);
  BlobTotals totals();
  // Notes that an object was used (opened): the cache keeps recent ones.
  // Cheap: the index is written at most once a minute per object.
  void touch(const std::string& sha256);
  // Present objects, least recently used first.
  std::vector<std::pair<std::string, uint64_t>> least_recently_used(size_t limit) {
    return index_->by_use(limit);
  }

  // Re-hashes every indexed object on `threads` threads (0: one per core).
  // Marks objects healthy, `modified` (and quarantines them) or `missing`.
  // An object removed meanwhile (by this or another process: a mount frees
  // bytes while `recallfs verify` runs) is none of these. `progress` is
  // called on the calling thread, at most every ~100 ms.
  VerifyReport verify(const std::function<void(const VerifyProgress&)>& progress = {},
                      unsigned threads = 0);
  // Fault injection for tests: called by verify just before it opens each
  // object.
  void set_before_verify_open(std::function<void(const std::string& sha256)> fn) {
    before_verify_open_ = std::move(fn);
  }
  // Rebuilds the index from objects/: indexes objects it lacks, restores
  // missing ones that reappeared, moves misplaced ones back, marks absent
  // ones missing. `progress` gets the number of files seen so far.
  ScanReport scan(const std::function<void(uint64_t files_seen)>& progress = {});

  // The chunk manifest of an object: computed from its bytes on first use and
  // stored in the index. ENOENT when the object is absent, EIO when its bytes
  // no longer match its name, ECANCELED when `stop` is set meanwhile.
  ChunkManifest manifest(const std::string& sha256, uint64_t chunk_size = kDefaultChunkSize,
                         const std::atomic<bool>* stop = nullptr);

  const std::filesystem::path& root() const { return root_; }

 private:
  BlobStore(std::filesystem::path root, const Options& options);
  void open_index(bool exclusive);
  void remove_unneeded(const std::function<bool(const std::string&)>& unneeded);
  PutResult put_from(const std::function<size_t(std::span<std::byte>)>& read);
  // Renames `tmp` (durable already, or fsync'd here through `unsynced_fd`
  // when it becomes the object) to the object's name, or drops it as a
  // duplicate; indexes the object.
  PutResult link_in(const std::filesystem::path& tmp, const std::string& sha256, uint64_t size,
                    int unsynced_fd = -1);
  void record_found(const std::string& sha256, const std::filesystem::path& path, Health health,
                    ScanReport& report);

  std::filesystem::path root_;
  Options options_;
  UniqueFd lock_fd_;
  UniqueFd objects_fd_;  // objects/, for lookups relative to it
  std::unique_ptr<BlobIndex> index_;
  std::mutex touch_mu_;  // guards touched_
  // A removal and a put of the same object never interleave in this process
  // (a put finding the object, then its row erased, would leave a row whose
  // object is gone).
  std::mutex names_mu_;
  std::unordered_map<std::string, int64_t> touched_;
  std::function<void(const std::string&)> before_verify_open_;
};

// Computes a manifest over `size` bytes of the file open at `fd`, and with
// `whole` the SHA-256 of all of them in the same pass.
ChunkManifest compute_manifest(int fd, uint64_t size, uint64_t chunk_size, Digest* whole = nullptr,
                               const std::atomic<bool>* stop = nullptr);

}  // namespace recall
