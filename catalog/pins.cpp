// Catalog: pins — blobs kept on this device whatever the cache budget, and
// places (folders, works, the inbox, works/) whose files, now and later, are.
// A place's files are pinned as rows come into it by triggers (schema v5),
// so everything that asks whether bytes may go asks pins alone.
#include <optional>
#include <string>
#include <vector>

#include "base/ids.h"
#include "catalog/catalog.h"
#include "catalog/catalog_internal.h"
#include "catalog/schema.h"

namespace recall {

namespace {

// pinned_places.scope of a place: its work's id, 'inbox', or 'works' (nullopt).
std::string scope_of(const std::optional<Place>& place) {
  if (!place) return "works";
  return place->work_id ? *place->work_id : "inbox";
}

// The blobs of the files at or under a place (by their own place or a
// link): ?1 its work (NULL: the inbox), ?2 its folder ('' = all of it);
// every work's with ?3 = 1.
const char* const kBlobsUnder =
    "SELECT sha256 FROM assets WHERE (?3 = 1 AND work_id IS NOT NULL) OR (?3 = 0 AND work_id IS "
    "?1 AND (?2 = '' OR folder = ?2 OR (folder > ?2 || '/' AND folder < ?2 || '0'))) "
    "UNION SELECT a.sha256 FROM edges e JOIN assets a ON a.id = e.to_id WHERE (?3 = 1 AND "
    "e.from_id IS NOT NULL) OR (?3 = 0 AND e.from_id IS ?1 AND (?2 = '' OR e.folder = ?2 OR "
    "(e.folder > ?2 || '/' AND e.folder < ?2 || '0')))";

std::vector<std::string> blobs_under(Db& db, const std::optional<Place>& place) {
  Stmt s = db.cached(kBlobsUnder);
  s.bind(place ? place->work_id : std::nullopt, place ? place->folder : std::string(),
         place ? 0 : 1);
  std::vector<std::string> out;
  while (s.step()) out.push_back(s.text(0));
  return out;
}

}  // namespace

void catalog_detail::pin_follows_content(Db& db, const std::string& from, const std::string& to) {
  db.cached(
        "INSERT INTO pins(sha256, pinned_ms) SELECT ?2, pinned_ms FROM pins WHERE sha256 = ?1 "
        "ON CONFLICT DO NOTHING")
      .bind(from, to)
      .run();
  db.cached(
        "DELETE FROM pins WHERE sha256 = ?1 AND NOT EXISTS "
        "(SELECT 1 FROM assets WHERE sha256 = ?1)")
      .bind(from)
      .run();
}

void Catalog::pin(const std::string& sha256) {
  WriteScope s(*this);
  s.db()
      .cached("INSERT INTO pins(sha256, pinned_ms) VALUES(?, ?) ON CONFLICT DO NOTHING")
      .bind(sha256, now_ms())
      .run();
  s.commit();
}

void Catalog::unpin(const std::string& sha256) {
  WriteScope s(*this);
  s.db().cached("DELETE FROM pins WHERE sha256 = ?").bind(sha256).run();
  s.commit();
}

bool Catalog::pinned(const std::string& sha256) {
  ReadLease r(*this);
  return r.db().cached("SELECT 1 FROM pins WHERE sha256 = ?").bind(sha256).step();
}

std::vector<std::string> Catalog::pinned_file_blobs() {
  ReadLease r(*this);
  Stmt s = r.db().cached(
      "SELECT sha256 FROM pins p WHERE EXISTS (SELECT 1 FROM assets WHERE sha256 = p.sha256) "
      "ORDER BY pinned_ms, sha256");
  std::vector<std::string> out;
  while (s.step()) out.push_back(s.text(0));
  return out;
}

std::vector<std::string> Catalog::pin_place(const std::optional<Place>& place) {
  WriteScope s(*this);
  Db& db = s.db();
  db.cached(
        "INSERT INTO pinned_places(scope, folder, pinned_ms) VALUES(?, ?, ?) "
        "ON CONFLICT DO NOTHING")
      .bind(scope_of(place), place ? place->folder : std::string(), now_ms())
      .run();
  std::vector<std::string> blobs = blobs_under(db, place);
  for (const std::string& sha : blobs)
    db.cached("INSERT INTO pins(sha256, pinned_ms) VALUES(?, ?) ON CONFLICT DO NOTHING")
        .bind(sha, now_ms())
        .run();
  s.commit();
  return blobs;
}

std::vector<std::string> Catalog::unpin_place(const std::optional<Place>& place) {
  WriteScope s(*this);
  Db& db = s.db();
  if (place)
    db.cached(
          "DELETE FROM pinned_places WHERE scope = ?1 AND (?2 = '' OR folder = ?2 OR "
          "(folder > ?2 || '/' AND folder < ?2 || '0'))")
        .bind(scope_of(place), place->folder)
        .run();
  else
    db.exec("DELETE FROM pinned_places WHERE scope <> 'inbox'");
  // A file whose content some file in a place still pinned also has stays
  // pinned (pins are per blob).
  std::vector<std::string> blobs = blobs_under(db, place), unpinned;
  for (const std::string& sha : blobs) {
    db.cached(
          "DELETE FROM pins WHERE sha256 = ?1 AND NOT EXISTS (SELECT 1 FROM assets a WHERE "
          "a.sha256 = ?1 AND " +
          in_pinned_place_sql("a.work_id", "a.folder") +
          ") AND NOT EXISTS (SELECT 1 FROM edges e JOIN assets a ON a.id = e.to_id WHERE "
          "a.sha256 = ?1 AND " +
          in_pinned_place_sql("e.from_id", "e.folder") + ")")
        .bind(sha)
        .run();
    if (db.changes() > 0) unpinned.push_back(sha);
  }
  s.commit();
  return unpinned;
}

bool Catalog::place_pinned(const std::optional<Place>& place) {
  ReadLease r(*this);
  // A place is pinned by its own row or one around it; one in a work also
  // by works/'s.
  const std::string around =
      "SELECT 1 FROM pinned_places WHERE (scope = ?1 AND (folder = '' OR folder = ?2 OR "
      "substr(?2, 1, length(folder) + 1) = folder || '/'))";
  Stmt s = r.db().cached(!place           ? "SELECT 1 FROM pinned_places WHERE scope = 'works'"
                         : place->work_id ? around + " OR scope = 'works'"
                                          : around);
  if (place) s.bind(scope_of(place), place->folder);
  return s.step();
}

}  // namespace recall
