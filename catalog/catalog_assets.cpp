// Catalog: assets, links (edges), blobs_meta and device_blobs.
#include "base/error.h"
#include "base/ids.h"
#include "base/sha256.h"
#include "catalog/catalog.h"
#include "catalog/catalog_internal.h"

namespace recall {
using namespace catalog_detail;

namespace {

Asset require_asset(Db& db, const std::string& id) {
  Stmt s = db.cached(std::string("SELECT ") + kAssetCols + " FROM assets WHERE id = ?");
  s.bind(id);
  if (!s.step()) throw Error(ENOENT, "no asset with id " + id);
  return asset_from(s);
}

Edge require_edge(Db& db, const std::string& id) {
  Stmt s = db.cached(std::string("SELECT ") + kEdgeCols + " FROM edges WHERE id = ?");
  s.bind(id);
  if (!s.step()) throw Error(ENOENT, "no link with id " + id);
  return edge_from(s);
}

// A blob used by a synced asset must sync too.
void publish_blob(Db& db, const std::string& sha256) {
  db.cached("UPDATE blobs_meta SET local_only = 0 WHERE sha256 = ? AND local_only = 1")
      .bind(sha256)
      .run();
  db.cached("UPDATE device_blobs SET local_only = 0 WHERE sha256 = ? AND local_only = 1")
      .bind(sha256)
      .run();
}

}  // namespace

void Catalog::upsert_blob(Db& db, const BlobMeta& b, bool local_only, bool bytes_here) {
  int64_t now = stamp_ms(db);
  std::optional<std::span<const unsigned char>> manifest;
  if (!b.chunk_manifest.empty()) manifest = std::span<const unsigned char>(b.chunk_manifest);
  // Existing rows only gain what they lacked, so re-recording a known blob
  // changes nothing and queues nothing.
  db.cached(
        "INSERT INTO blobs_meta(sha256, size, mime, filename, page_count, image_width, "
        "image_height, pdf_metadata, chunk_size, chunk_manifest, local_only, created_ms) "
        "VALUES(?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(sha256) DO UPDATE SET "
        "local_only = min(local_only, excluded.local_only), "
        "mime = coalesce(mime, excluded.mime), "
        "page_count = coalesce(page_count, excluded.page_count), "
        "image_width = coalesce(image_width, excluded.image_width), "
        "image_height = coalesce(image_height, excluded.image_height), "
        "pdf_metadata = coalesce(pdf_metadata, excluded.pdf_metadata), "
        "chunk_manifest = CASE WHEN chunk_size IS NULL THEN excluded.chunk_manifest "
        "ELSE chunk_manifest END, "
        "chunk_size = coalesce(chunk_size, excluded.chunk_size)")
      .bind(b.sha256, b.size, b.mime, b.filename, b.page_count, b.image_width, b.image_height,
            b.pdf_metadata, b.chunk_size, manifest, local_only, b.created_ms ? b.created_ms : now)
      .run();
  if (!bytes_here) return;
  std::string local_path = "cas/objects/" + b.sha256.substr(0, 2) + "/" + b.sha256;
  db.cached(
        "INSERT INTO device_blobs(id, device_id, sha256, present, health, local_path, mtime_ms, "
        "local_only) VALUES(?,?,?,1,'healthy',?,?,?) ON CONFLICT(sha256, device_id) DO UPDATE SET "
        "mtime_ms = CASE WHEN present = 0 OR health <> 'healthy' THEN excluded.mtime_ms "
        "ELSE mtime_ms END, present = 1, health = 'healthy', local_path = excluded.local_path, "
        "local_only = min(local_only, excluded.local_only)")
      .bind(new_row_id(), device_id_, b.sha256, local_path, now, local_only)
      .run();
}

Asset Catalog::add_asset(const NewAsset& n) {
  check_name(n.filename, "a file name");
  if (!is_role(n.role)) throw Error(EINVAL, "unknown role " + quote(n.role));
  if (!is_sha256_hex(n.blob.sha256)) throw Error(EINVAL, "not a sha256: " + quote(n.blob.sha256));
  Asset a;
  a.id = n.id.empty() ? new_row_id() : n.id;
  a.work_id = n.place.work_id;
  a.folder = n.place.folder;
  a.filename = n.filename;
  a.sha256 = n.blob.sha256;
  a.role = n.role;
  a.mime = n.blob.mime;
  a.bytes = n.blob.size;
  a.page_count = n.blob.page_count;
  a.mode = n.mode;
  a.mtime_ns = n.mtime_ns ? *n.mtime_ns : now_ns();
  a.local_only = n.local_only;
  WriteScope s(*this);
  Db& db = s.db();
  a.created_ms = a.updated_ms = stamp_ms(db);
  require_place(db, n.place);
  upsert_blob(db, n.blob, n.local_only);
  db.cached(
        "INSERT INTO assets(id, work_id, folder, filename, sha256, role, mime, bytes, page_count, "
        "mode, mtime_ns, local_only, created_ms, updated_ms, content_ms, place_ms, attrs_ms, "
        "content_device) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?14,?14,?14,?14,?15)")
      .bind(a.id, a.work_id, a.folder, a.filename, a.sha256, a.role, a.mime, a.bytes, a.page_count,
            a.mode, a.mtime_ns, a.local_only, a.created_ms, a.updated_ms, device_id_)
      .run();
  s.commit();
  return a;
}

std::string Catalog::set_asset_content(const std::string& id, const BlobMeta& blob,
                                       std::optional<int64_t> mtime_ns, bool bytes_here) {
  if (!is_sha256_hex(blob.sha256)) throw Error(EINVAL, "not a sha256: " + quote(blob.sha256));
  WriteScope s(*this);
  Db& db = s.db();
  Asset a = require_asset(db, id);
  upsert_blob(db, blob, a.local_only, bytes_here);
  db.cached(
        "UPDATE assets SET sha256 = ?2, bytes = ?3, mime = ?4, page_count = ?5, mtime_ns = ?6, " +
        // The edit starts from the content the server was last known to
        // have: the one before, unless an edit of it waits to be pushed.
        std::string("content_base = CASE WHEN content_base IS NOT NULL AND content_base IS NOT "
                    "sha256 THEN content_base ELSE sha256 END, content_device = ?8, ") +
        stamp_asset(kStampContent, "?7") +
        " WHERE id = ?1 AND (sha256 IS NOT ?2 OR mtime_ns IS NOT ?6)")
      .bind(id, blob.sha256, blob.size, blob.mime, blob.page_count, mtime_ns ? *mtime_ns : now_ns(),
            stamp_ms(db), device_id_)
      .run();
  if (a.sha256 != blob.sha256) catalog_detail::pin_follows_content(db, a.sha256, blob.sha256);
  s.commit();
  return a.sha256;
}

void Catalog::move_asset(const std::string& id, const Place& to, const std::string& filename,
                         std::optional<bool> local_only) {
  check_name(filename, "a file name");
  WriteScope s(*this);
  Db& db = s.db();
  Asset a = require_asset(db, id);
  require_place(db, to);
  bool local = local_only.value_or(a.local_only);
  db.cached("UPDATE assets SET work_id = ?2, folder = ?3, filename = ?4, local_only = ?5, " +
            stamp_asset(kStampPlace, "?6") +
            " WHERE id = ?1 AND (work_id IS NOT ?2 OR folder IS NOT ?3 OR "
            "filename IS NOT ?4 OR local_only IS NOT ?5)")
      .bind(id, to.work_id, to.folder, filename, local, stamp_ms(db))
      .run();
  if (a.local_only && !local) {
    publish_blob(db, a.sha256);
    db.cached("UPDATE edges SET local_only = 0 WHERE to_id = ?").bind(id).run();
  }
  s.commit();
}

void Catalog::set_asset_role(const std::string& id, const std::string& role) {
  if (!is_role(role)) throw Error(EINVAL, "unknown role " + quote(role));
  WriteScope s(*this);
  Db& db = s.db();
  require_asset(db, id);
  db.cached("UPDATE assets SET role = ?2, " + stamp_asset(kStampAttrs, "?3") +
            " WHERE id = ?1 AND role IS NOT ?2")
      .bind(id, role, stamp_ms(db))
      .run();
  s.commit();
}

void Catalog::set_asset_attrs(const std::string& id, std::optional<uint32_t> mode,
                              std::optional<int64_t> mtime_ns) {
  WriteScope s(*this);
  Db& db = s.db();
  require_asset(db, id);
  db.cached(
        // The mode is an attribute; the mtime goes with the content it dates.
        "UPDATE assets SET mode = coalesce(?2, mode), mtime_ns = coalesce(?3, mtime_ns), "
        "content_ms = CASE WHEN mtime_ns IS NOT coalesce(?3, mtime_ns) THEN ?4 "
        "ELSE coalesce(content_ms, updated_ms) END, "
        // A new time for the same bytes: the push says which bytes it dates
        // (the server keeps others made apart; sync_statements.cpp).
        "content_base = CASE WHEN mtime_ns IS NOT coalesce(?3, mtime_ns) THEN "
        "coalesce(content_base, sha256) ELSE content_base END, "
        "attrs_ms = CASE WHEN mode IS NOT coalesce(?2, mode) THEN ?4 "
        "ELSE coalesce(attrs_ms, updated_ms) END, "
        "place_ms = coalesce(place_ms, updated_ms), updated_ms = ?4 "
        "WHERE id = ?1 AND (mode IS NOT coalesce(?2, mode) OR "
        "mtime_ns IS NOT coalesce(?3, mtime_ns))")
      .bind(id, mode, mtime_ns, stamp_ms(db))
      .run();
  s.commit();
}

void Catalog::delete_asset(const std::string& id) {
  WriteScope s(*this);
  Db& db = s.db();
  db.cached("DELETE FROM edges WHERE to_id = ?").bind(id).run();
  db.cached("DELETE FROM assets WHERE id = ?").bind(id).run();
  if (db.changes() == 0) throw Error(ENOENT, "no asset with id " + id);
  s.commit();
}

std::optional<Asset> Catalog::get_asset(const std::string& id) {
  ReadLease r(*this);
  Stmt s = r.db().cached(std::string("SELECT ") + kAssetCols + " FROM assets WHERE id = ?");
  s.bind(id);
  if (!s.step()) return std::nullopt;
  return asset_from(s);
}

uint32_t Catalog::link_count(const std::string& asset_id) {
  ReadLease r(*this);
  Stmt s = r.db().cached("SELECT 1 + count(*) FROM edges WHERE to_id = ?");
  s.bind(asset_id);
  s.step();
  return static_cast<uint32_t>(s.int64(0));
}

std::vector<Asset> Catalog::assets_with_blob(const std::string& sha256) {
  ReadLease r(*this);
  Stmt s = r.db().cached(std::string("SELECT ") + kAssetCols +
                         " FROM assets WHERE sha256 = ? ORDER BY created_ms, id");
  s.bind(sha256);
  std::vector<Asset> out;
  while (s.step()) out.push_back(asset_from(s));
  return out;
}

// ---- links -----------------------------------------------------------------

std::vector<Edge> Catalog::links_of(const std::string& asset_id) {
  ReadLease r(*this);
  Stmt s = r.db().cached(std::string("SELECT ") + kEdgeCols +
                         " FROM edges WHERE to_id = ? ORDER BY created_ms, id");
  s.bind(asset_id);
  std::vector<Edge> out;
  while (s.step()) out.push_back(edge_from(s));
  return out;
}

Edge Catalog::link_asset(const std::string& asset_id, const Place& place, const std::string& name) {
  check_name(name, "a file name");
  WriteScope s(*this);
  Db& db = s.db();
  Asset a = require_asset(db, asset_id);
  require_place(db, place);
  Edge e;
  e.id = new_row_id();
  e.from_id = place.work_id;
  e.to_id = asset_id;
  e.folder = place.folder;
  e.name = name;
  e.created_ms = stamp_ms(db);
  db.cached(
        "INSERT INTO edges(id, from_id, to_id, relation, folder, name, local_only, created_ms, "
        "updated_ms) VALUES(?,?,?,?,?,?,?,?,?)")
      .bind(e.id, e.from_id, e.to_id, e.relation, e.folder, e.name, a.local_only, e.created_ms,
            e.created_ms)
      .run();
  s.commit();
  return e;
}

void Catalog::move_link(const std::string& edge_id, const Place& to, const std::string& name) {
  check_name(name, "a file name");
  WriteScope s(*this);
  Db& db = s.db();
  require_edge(db, edge_id);
  require_place(db, to);
  db.cached(
        "UPDATE edges SET from_id = ?2, folder = ?3, name = ?4, updated_ms = ?5 WHERE id = ?1 AND "
        "(from_id IS NOT ?2 OR folder IS NOT ?3 OR name IS NOT ?4)")
      .bind(edge_id, to.work_id, to.folder, name, stamp_ms(db))
      .run();
  s.commit();
}

void Catalog::delete_link(const std::string& edge_id) {
  WriteScope s(*this);
  Db& db = s.db();
  db.cached("DELETE FROM edges WHERE id = ?").bind(edge_id).run();
  if (db.changes() == 0) throw Error(ENOENT, "no link with id " + edge_id);
  s.commit();
}

void Catalog::remove_name(const FolderEntry& entry) {
  switch (entry.kind) {
    case FolderEntry::Kind::Folder:
      delete_folder(entry.folder->id);
      return;
    case FolderEntry::Kind::Link:
      delete_link(entry.edge->id);
      return;
    case FolderEntry::Kind::Asset:
      break;
  }
  WriteScope s(*this);
  Db& db = s.db();
  const std::string& id = entry.asset->id;
  Stmt oldest = db.cached(std::string("SELECT ") + kEdgeCols +
                          " FROM edges WHERE to_id = ? ORDER BY created_ms, id LIMIT 1");
  oldest.bind(id);
  if (oldest.step()) {
    // The asset lives on under its oldest other name, keeping its id.
    Edge e = edge_from(oldest);
    oldest = Stmt();
    db.cached("DELETE FROM edges WHERE id = ?").bind(e.id).run();
    db.cached("UPDATE assets SET work_id = ?2, folder = ?3, filename = ?4, " +
              stamp_asset(kStampPlace, "?5") + " WHERE id = ?1")
        .bind(id, e.from_id, e.folder, e.name, stamp_ms(db))
        .run();
  } else {
    oldest = Stmt();
    db.cached("DELETE FROM assets WHERE id = ?").bind(id).run();
    if (db.changes() == 0) throw Error(ENOENT, "no asset with id " + id);
  }
  s.commit();
}

// ---- blobs -----------------------------------------------------------------

std::optional<BlobMeta> Catalog::get_blob(const std::string& sha256) {
  ReadLease r(*this);
  Stmt s = r.db().cached(
      "SELECT sha256, size, mime, filename, page_count, image_width, image_height, pdf_metadata, "
      "chunk_size, chunk_manifest, created_ms FROM blobs_meta WHERE sha256 = ?");
  s.bind(sha256);
  if (!s.step()) return std::nullopt;
  BlobMeta b;
  b.sha256 = s.text(0);
  b.size = static_cast<uint64_t>(s.int64(1));
  b.mime = s.opt_text(2);
  b.filename = s.opt_text(3);
  b.page_count = s.opt_int64(4);
  b.image_width = s.opt_int64(5);
  b.image_height = s.opt_int64(6);
  b.pdf_metadata = s.opt_text(7);
  b.chunk_size = s.opt_int64(8);
  b.chunk_manifest = s.blob(9);
  b.created_ms = s.int64(10);
  return b;
}

bool Catalog::forget_blob(const std::string& sha256) {
  WriteScope s(*this);
  Db& db = s.db();
  if (db.cached("SELECT 1 FROM assets WHERE sha256 = ? LIMIT 1").bind(sha256).step()) return false;
  if (db.cached("SELECT 1 FROM blob_holds WHERE sha256 = ?").bind(sha256).step()) return false;
  db.cached("DELETE FROM device_blobs WHERE sha256 = ? AND device_id = ?")
      .bind(sha256, device_id_)
      .run();
  db.cached("DELETE FROM blobs_meta WHERE sha256 = ?").bind(sha256).run();
  s.commit();
  return true;
}

void Catalog::hold_blob(const std::string& sha256) {
  WriteScope s(*this);
  s.db()
      .cached("INSERT INTO blob_holds(sha256, seq) SELECT ?1, " + std::string(kLastOutboxSeq) +
              " WHERE NOT EXISTS(SELECT 1 FROM assets WHERE sha256 = ?1) "
              "ON CONFLICT(sha256) DO UPDATE SET seq = excluded.seq")
      .bind(sha256)
      .run();
  s.commit();
}

std::vector<std::string> Catalog::releasable_holds(size_t limit) {
  ReadLease r(*this);
  Stmt st = r.db().cached(
      "SELECT sha256 FROM blob_holds WHERE "
      "seq < coalesce((SELECT min(seq) FROM outbox), 9223372036854775807) AND "
      "seq < coalesce((SELECT min(seq) FROM sync_recheck), 9223372036854775807) LIMIT ?");
  st.bind(static_cast<int64_t>(limit));
  std::vector<std::string> out;
  while (st.step()) out.push_back(st.text(0));
  return out;
}

void Catalog::release_hold(const std::string& sha256) {
  WriteScope s(*this);
  s.db().cached("DELETE FROM blob_holds WHERE sha256 = ?").bind(sha256).run();
  s.commit();
}

void Catalog::set_device_blob(const std::string& sha256, bool present, const std::string& health,
                              const std::string& device_id) {
  const std::string& holder = device_id.empty() ? device_id_ : device_id;
  WriteScope s(*this);
  std::optional<std::string> local_path;
  if (holder == device_id_) local_path = "cas/objects/" + sha256.substr(0, 2) + "/" + sha256;
  s.db()
      .cached(
          "INSERT INTO device_blobs(id, device_id, sha256, present, health, local_path, mtime_ms) "
          "VALUES(?,?,?,?,?,?,?) ON CONFLICT(sha256, device_id) DO UPDATE SET "
          "mtime_ms = CASE WHEN present IS NOT excluded.present OR health IS NOT excluded.health "
          "THEN excluded.mtime_ms ELSE mtime_ms END, "
          "present = excluded.present, health = excluded.health")
      .bind(holder == kCloudHolder ? cloud_holder_row_id(sha256) : new_row_id(), holder, sha256,
            present, health, local_path, stamp_ms(s.db()))
      .run();
  s.commit();
}

std::vector<DeviceBlob> Catalog::holders(const std::string& sha256) {
  ReadLease r(*this);
  Stmt s = r.db().cached(
      "SELECT id, device_id, sha256, present, health, local_path, mtime_ms FROM device_blobs "
      "WHERE sha256 = ? AND present = 1 ORDER BY mtime_ms DESC");
  s.bind(sha256);
  std::vector<DeviceBlob> out;
  while (s.step())
    out.push_back(DeviceBlob{s.text(0), s.text(1), s.text(2), s.int64(3) != 0, s.text(4),
                             s.opt_text(5), s.opt_int64(6)});
  return out;
}

void Catalog::set_blob_manifest(const std::string& sha256, int64_t chunk_size,
                                const std::vector<unsigned char>& manifest) {
  WriteScope s(*this);
  s.db()
      .cached(
          "UPDATE blobs_meta SET chunk_size = ?2, chunk_manifest = ?3 WHERE sha256 = ?1 AND "
          "(chunk_size IS NOT ?2 OR chunk_manifest IS NOT ?3)")
      .bind(sha256, chunk_size, std::span<const unsigned char>(manifest))
      .run();
  s.commit();
}

std::vector<std::string> Catalog::blobs_missing_from(const std::string& holder) {
  ReadLease r(*this);
  Stmt s = r.db().cached(
      "SELECT d.sha256 FROM device_blobs d WHERE d.device_id = ?1 AND d.present = 1 AND "
      "d.local_only = 0 AND NOT EXISTS (SELECT 1 FROM device_blobs c WHERE c.sha256 = d.sha256 "
      "AND c.device_id = ?2 AND c.present = 1) ORDER BY d.sha256");
  s.bind(device_id_, holder);
  std::vector<std::string> out;
  while (s.step()) out.push_back(s.text(0));
  return out;
}

std::vector<std::string> Catalog::blobs_lacking_manifest(const std::string& after, size_t limit) {
  ReadLease r(*this);
  Stmt s = r.db().cached(
      "SELECT d.sha256 FROM device_blobs d JOIN blobs_meta b ON b.sha256 = d.sha256 "
      "WHERE d.device_id = ?1 AND d.present = 1 AND b.local_only = 0 AND "
      "coalesce(length(b.chunk_manifest), 0) = 0 AND d.sha256 > ?2 ORDER BY d.sha256 LIMIT ?3");
  s.bind(device_id_, after, static_cast<int64_t>(limit));
  std::vector<std::string> out;
  while (s.step()) out.push_back(s.text(0));
  return out;
}

// ---- replication jobs ------------------------------------------------------

namespace {
constexpr const char* kJobCols =
    "id, sha256, from_source, to_destination, status, progress, bytes_transferred, attempts, "
    "error, priority, created_ms, updated_ms, started_ms, completed_ms, next_attempt_ms, upload_id";

ReplicationJob job_from(const Stmt& s) {
  ReplicationJob j;
  j.id = s.text(0);
  j.sha256 = s.text(1);
  j.from_source = s.text(2);
  j.to_destination = s.text(3);
  j.status = s.text(4);
  j.progress = s.real(5);
  j.bytes_transferred = static_cast<uint64_t>(s.int64(6));
  j.attempts = s.int64(7);
  j.error = s.opt_text(8);
  j.priority = s.int64(9);
  j.created_ms = s.int64(10);
  j.updated_ms = s.int64(11);
  j.started_ms = s.opt_int64(12);
  j.completed_ms = s.opt_int64(13);
  j.next_attempt_ms = s.int64(14);
  j.upload_id = s.opt_text(15);
  return j;
}
}  // namespace

std::string Catalog::enqueue_job(const std::string& sha256, const std::string& from,
                                 const std::string& to, int64_t priority) {
  WriteScope s(*this);
  Db& db = s.db();
  Stmt existing = db.cached(
      "SELECT id FROM replication_jobs WHERE sha256 = ? AND to_destination = ? AND "
      "status IN ('pending', 'in_progress', 'failed')");
  existing.bind(sha256, to);
  if (existing.step()) return existing.text(0);
  existing = Stmt();
  std::string id = new_row_id();
  int64_t now = now_ms();
  db.cached(
        "INSERT INTO replication_jobs(id, sha256, from_source, to_destination, priority, "
        "created_ms, updated_ms) VALUES(?,?,?,?,?,?,?)")
      .bind(id, sha256, from, to, priority, now, now)
      .run();
  s.commit();
  return id;
}

std::optional<ReplicationJob> Catalog::take_job(const std::string& to) {
  WriteScope s(*this);
  Db& db = s.db();
  Stmt pick = db.cached(std::string("SELECT ") + kJobCols +
                        " FROM replication_jobs WHERE to_destination = ? AND (status = 'pending' "
                        "OR (status = 'failed' AND next_attempt_ms <= ?)) "
                        "ORDER BY priority DESC, created_ms LIMIT 1");
  pick.bind(to, now_ms());
  if (!pick.step()) return std::nullopt;
  ReplicationJob j = job_from(pick);
  pick = Stmt();
  j.status = "in_progress";
  j.started_ms = now_ms();
  db.cached(
        "UPDATE replication_jobs SET status = 'in_progress', started_ms = ?, updated_ms = ? WHERE "
        "id = ?")
      .bind(*j.started_ms, *j.started_ms, j.id)
      .run();
  s.commit();
  return j;
}

void Catalog::update_job(const ReplicationJob& j) {
  WriteScope s(*this);
  s.db()
      .cached(
          "UPDATE replication_jobs SET status = ?2, progress = ?3, bytes_transferred = ?4, "
          "attempts = ?5, error = ?6, updated_ms = ?7, completed_ms = ?8, next_attempt_ms = ?9, "
          "upload_id = ?10 WHERE id = ?1")
      .bind(j.id, j.status, j.progress, j.bytes_transferred, j.attempts, j.error, now_ms(),
            j.completed_ms, j.next_attempt_ms, j.upload_id)
      .run();
  s.commit();
}

void Catalog::make_failed_jobs_due(const std::string& to) {
  WriteScope s(*this);
  s.db()
      .cached(
          "UPDATE replication_jobs SET next_attempt_ms = 0 WHERE status = 'failed' AND "
          "to_destination = ?")
      .bind(to)
      .run();
  s.commit();
}

void Catalog::reset_interrupted_jobs() {
  WriteScope s(*this);
  s.db()
      .cached("UPDATE replication_jobs SET status = 'pending' WHERE status = 'in_progress'")
      .run();
  s.commit();
}

std::vector<ReplicationJob> Catalog::list_jobs(size_t limit) {
  ReadLease r(*this);
  Stmt s = r.db().cached(std::string("SELECT ") + kJobCols +
                         " FROM replication_jobs ORDER BY created_ms DESC LIMIT ?");
  s.bind(static_cast<int64_t>(limit));
  std::vector<ReplicationJob> out;
  while (s.step()) out.push_back(job_from(s));
  return out;
}

std::optional<DeviceBlob> Catalog::get_device_blob(const std::string& device_id,
                                                   const std::string& sha256) {
  ReadLease r(*this);
  Stmt s = r.db().cached(
      "SELECT id, device_id, sha256, present, health, local_path, mtime_ms FROM device_blobs "
      "WHERE device_id = ? AND sha256 = ?");
  s.bind(device_id, sha256);
  if (!s.step()) return std::nullopt;
  return DeviceBlob{s.text(0), s.text(1),     s.text(2),     s.int64(3) != 0,
                    s.text(4), s.opt_text(5), s.opt_int64(6)};
}

}  // namespace recall
