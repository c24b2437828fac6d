// BlobIndex — the byte store's index of objects, in SQLite (cas/index.db,
// WAL). It is a cache of what objects/ holds plus what verify learned: it can
// always be rebuilt from objects/ by BlobStore::scan.
//
// Thread-safe: every method takes the index's mutex for its own duration
// only, so callers never hold it while doing I/O on objects.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/sqlite.h"
#include "cas/blob_info.h"

namespace recall {

struct BlobTotals {
  uint64_t objects = 0;
  uint64_t bytes = 0;
  std::map<Health, uint64_t> by_health;
};

class BlobIndex {
 public:
  static constexpr int kSchemaVersion = 1;

  // Opens or creates the index and brings its schema up to date. EUCLEAN when
  // the file is not a database.
  explicit BlobIndex(const std::filesystem::path& file);

  // Records an object that is present in objects/: inserts a row, or sets an
  // existing row's health to `info.health` (content metadata is filled in
  // when the row had none). Returns true when the row is new.
  bool record_present(const BlobInfo& info);
  std::optional<BlobInfo> get(const std::string& sha256);
  void set_health(const std::string& sha256, Health health, std::optional<int64_t> checked_ms);
  // Removes the row; false when there was none.
  bool erase(const std::string& sha256);
  // Up to `limit` rows with sha256 > `after`, in hash order: the unit of every
  // streaming walk, so that no walk holds the mutex between pages.
  std::vector<BlobInfo> page(const std::string& after, size_t limit);

  void set_manifest(const std::string& sha256, const ChunkManifest& m);
  std::optional<ChunkManifest> manifest(const std::string& sha256);

  BlobTotals totals();
  void set_used(const std::string& sha256, int64_t used_ms);
  // Objects present (healthy or relocated), least recently used first.
  std::vector<std::pair<std::string, uint64_t>> by_use(size_t limit);

 private:
  void migrate();

  std::mutex mu_;
  Db db_;
};

}  // namespace recall
