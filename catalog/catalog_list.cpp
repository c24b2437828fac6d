// Catalog: listing a folder and looking names up. A folder's entries come
// from three tables (assets placed there, links placed there, sub-folders);
// each is read in name order through an index and the three streams are
// merged here, so a listing of any size runs in constant memory.
#include "base/error.h"
#include "catalog/catalog.h"
#include "catalog/catalog_internal.h"

namespace recall {
using namespace catalog_detail;

namespace {

struct Stream {
  Stmt stmt;
  FolderEntry::Kind kind;
  bool has = false;
  FolderEntry cur;

  void advance() {
    has = stmt.step();
    if (!has) return;
    cur = FolderEntry{};
    cur.kind = kind;
    switch (kind) {
      case FolderEntry::Kind::Asset:
        cur.asset = asset_from(stmt);
        cur.extra_links = static_cast<uint32_t>(stmt.int64(kAssetNCols));
        cur.name = cur.asset->filename;
        cur.created_ms = cur.asset->created_ms;
        cur.id = cur.asset->id;
        break;
      case FolderEntry::Kind::Link:
        cur.edge = edge_from(stmt);
        cur.asset = asset_from(stmt, kEdgeNCols);
        cur.extra_links = static_cast<uint32_t>(stmt.int64(kEdgeNCols + kAssetNCols));
        cur.name = cur.edge->name;
        cur.created_ms = cur.edge->created_ms;
        cur.id = cur.edge->id;
        break;
      case FolderEntry::Kind::Folder:
        cur.folder = folder_from(stmt);
        cur.name = last_component(cur.folder->path);
        cur.created_ms = cur.folder->created_ms;
        cur.id = cur.folder->id;
        break;
    }
  }
};

bool before(const FolderEntry& a, const FolderEntry& b) {
  if (int c = a.name.compare(b.name)) return c < 0;
  if (a.created_ms != b.created_ms) return a.created_ms < b.created_ms;
  return a.id < b.id;
}

enum class Match { All, Equal, From };

// Streams the entries of `place` in (name, created_ms, id) order, numbering
// collisions: all of them, those called `name`, or those from `name` on.
void merge_entries(Db& db, const Place& place, Match match, const std::string& name,
                   const std::function<bool(const FolderEntry&)>& fn) {
  auto with = [&](std::string sql, const char* col) {
    if (match == Match::Equal) sql += " AND " + std::string(col) + " = ?3";
    if (match == Match::From) sql += " AND " + std::string(col) + " >= ?3";
    return sql;
  };
  const char* folder_match =
      match == Match::Equal ? "path = (CASE WHEN ?2 = '' THEN ?3 ELSE ?2 || '/' || ?3 END)"
      : match == Match::From
          ? "path >= (CASE WHEN ?2 = '' THEN ?3 ELSE ?2 || '/' || ?3 END) AND "
            "(CASE WHEN ?2 = '' THEN instr(path, '/') = 0 ELSE path > ?2 || '/' AND "
            "path < ?2 || '0' AND instr(substr(path, length(?2) + 2), '/') = 0 END)"
          : "(CASE WHEN ?2 = '' THEN instr(path, '/') = 0 ELSE path > ?2 || '/' AND "
            "path < ?2 || '0' AND instr(substr(path, length(?2) + 2), '/') = 0 END)";
  Stream streams[3] = {
      {db.cached(with(std::string("SELECT ") + kAssetCols +
                          ", (SELECT count(*) FROM edges x WHERE x.to_id = assets.id)"
                          " FROM assets WHERE work_id IS ?1 AND folder = ?2",
                      "filename") +
                 " ORDER BY filename, created_ms, id"),
       FolderEntry::Kind::Asset,
       false,
       {}},
      {db.cached(with("SELECT " + prefixed(kEdgeCols, "e") + ", " + prefixed(kAssetCols, "a") +
                          ", (SELECT count(*) FROM edges x WHERE x.to_id = a.id)"
                          " FROM edges e JOIN assets a ON a.id = e.to_id "
                          "WHERE e.from_id IS ?1 AND e.folder = ?2",
                      "e.name") +
                 " ORDER BY e.name, e.created_ms, e.id"),
       FolderEntry::Kind::Link,
       false,
       {}},
      {db.cached(std::string("SELECT ") + kFolderCols + " FROM folders WHERE work_id IS ?1 AND " +
                 folder_match + " ORDER BY path"),
       FolderEntry::Kind::Folder,
       false,
       {}},
  };
  for (Stream& s : streams) {
    if (match != Match::All)
      s.stmt.bind(place.work_id, place.folder, name);
    else
      s.stmt.bind(place.work_id, place.folder);
    s.advance();
  }
  std::string prev;
  uint32_t collision = 0;
  bool first = true;
  for (;;) {
    Stream* next = nullptr;
    for (Stream& s : streams)
      if (s.has && (!next || before(s.cur, next->cur))) next = &s;
    if (!next) return;
    collision = (!first && next->cur.name == prev) ? collision + 1 : 0;
    first = false;
    prev = next->cur.name;
    next->cur.collision = collision;
    if (!fn(next->cur)) return;
    next->advance();
  }
}

}  // namespace

void Catalog::list_folder(const Place& place, const std::function<bool(const FolderEntry&)>& fn,
                          const std::string& from) {
  ReadLease r(*this);
  merge_entries(r.db(), place, from.empty() ? Match::All : Match::From, from, fn);
}

std::vector<FolderEntry> Catalog::lookup(const Place& place, const std::string& name) {
  ReadLease r(*this);
  std::vector<FolderEntry> out;
  merge_entries(r.db(), place, Match::Equal, name, [&](const FolderEntry& e) {
    out.push_back(e);
    return true;
  });
  return out;
}

}  // namespace recall
