// Shared by the catalog's .cpp files: the column lists of each table and the
// functions that turn a statement's row into a struct. Not part of the API.
#pragma once

#include <string>

#include "base/sqlite.h"
#include "catalog/catalog.h"

namespace recall::catalog_detail {

inline constexpr const char* kWorkCols =
    "id, title, subtitle, work_type, authors, year, doi, arxiv_id, mode, mtime_ns, local_only, "
    "created_ms, updated_ms";
inline constexpr int kWorkNCols = 13;
inline constexpr const char* kAssetCols =
    "id, work_id, folder, filename, sha256, role, mime, bytes, page_count, mode, mtime_ns, "
    "local_only, created_ms, updated_ms";
inline constexpr int kAssetNCols = 14;
inline constexpr const char* kEdgeCols = "id, from_id, to_id, relation, folder, name, created_ms";
inline constexpr int kEdgeNCols = 7;
inline constexpr const char* kFolderCols =
    "id, work_id, path, mode, mtime_ns, local_only, created_ms";
inline constexpr int kFolderNCols = 7;

// An asset's columns sync as three groups, merged one by one (the server
// keeps each group's newest change, so an edit on one device and a rename
// on another both land): content (sha256, bytes, mime, page_count and
// mtime_ns: the bytes and when they changed), place (work_id, folder,
// filename) and attrs (role, mode). Each group has a stamp, content_ms,
// place_ms and attrs_ms; updated_ms is the newest of them. A write sets
// these in its UPDATE: its group's stamp and updated_ms take `now` (a
// parameter such as "?7"); the other stamps stay (NULL, in a row pulled
// from a server of schema 2, stands for updated_ms before this write).
std::string stamp_asset(const char* group, const std::string& now);
inline constexpr const char* kStampContent = "content_ms";
inline constexpr const char* kStampPlace = "place_ms";
inline constexpr const char* kStampAttrs = "attrs_ms";

// The seq of the last change queued in the outbox, pushed or not (0 when
// none ever was): AUTOINCREMENT keeps it in sqlite_sequence.
inline constexpr const char* kLastOutboxSeq =
    "(SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'outbox')";

// The stamp of a change to a synced row (updated_ms, an asset's group
// stamps, device_blobs.mtime_ms), taken in the write transaction under way:
// this device's clock, but never below a stamp this catalog has seen
// (pulled or its own), so that a change made after seeing another device's
// wins even when this device's clock is behind. See catalog/stamps.cpp.
int64_t stamp_ms(Db& db);
// Records that a pulled row carried `stamp`: later stamps are not below it.
void raise_stamp_floor(Db& db, int64_t stamp);

// A pin is the user's word for the file: when a file's content changes
// from `from` to `to` (an edit here or one pulled), a pin on `from` moves
// to `to` too, and `from` stays pinned only while a file still has it.
void pin_follows_content(Db& db, const std::string& from, const std::string& to);

// The same column list with every name prefixed by `alias.`.
std::string prefixed(const char* cols, const char* alias);

Work work_from(const Stmt& s, int c = 0);
Asset asset_from(const Stmt& s, int c = 0);
Edge edge_from(const Stmt& s, int c = 0);
Folder folder_from(const Stmt& s, int c = 0);

// "a/b" + "c" -> "a/b/c"; "" + "c" -> "c".
std::string join_path(const std::string& folder, const std::string& name);
// The last component of a folder path.
std::string last_component(const std::string& path);
// The parent of a folder path ("" for a top-level folder).
std::string parent_path(const std::string& path);

}  // namespace recall::catalog_detail

namespace recall {

// Holds the writer for one mutating call: BEGIN IMMEDIATE at the outermost
// level, a SAVEPOINT inside batch(). Rolls back unless commit() is called.
class Catalog::WriteScope {
 public:
  explicit WriteScope(Catalog& c);
  WriteScope(const WriteScope&) = delete;
  WriteScope& operator=(const WriteScope&) = delete;
  ~WriteScope();
  Db& db() { return c_.writer_; }
  void commit();

 private:
  Catalog& c_;
  std::unique_lock<std::recursive_mutex> lock_;
  bool done_ = false;
};

// Borrows a reader connection from the pool for one call.
class Catalog::ReadLease {
 public:
  explicit ReadLease(Catalog& c);
  ReadLease(const ReadLease&) = delete;
  ReadLease& operator=(const ReadLease&) = delete;
  ~ReadLease();
  Db& db() { return db_; }

 private:
  Catalog& c_;
  Db db_;
};

}  // namespace recall
