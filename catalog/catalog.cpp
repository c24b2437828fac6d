// Catalog: opening, the device id, transactions, works, sub-folders,
// counts and the outbox. Assets and links are in catalog_assets.cpp,
// listing and lookup in catalog_list.cpp.
#include "catalog/catalog.h"

#include <sqlite3.h>

#include <string_view>

#include "base/error.h"
#include "base/ids.h"
#include "base/utf8.h"
#include "catalog/catalog_internal.h"
#include "catalog/schema.h"

namespace recall {
using namespace catalog_detail;

// ---- transactions and connections ------------------------------------------

Catalog::WriteScope::WriteScope(Catalog& c) : c_(c), lock_(c.writer_mu_) {
  c_.writer_.exec(c_.write_depth_ == 0 ? "BEGIN IMMEDIATE" : "SAVEPOINT nested");
  ++c_.write_depth_;
}

void Catalog::WriteScope::commit() {
  c_.writer_.exec(c_.write_depth_ == 1 ? "COMMIT" : "RELEASE nested");
  done_ = true;
  if (--c_.write_depth_ == 0) {
    if (c_.names_touched_) c_.generation_.fetch_add(1, std::memory_order_acq_rel);
    c_.names_touched_ = false;
  }
}

Catalog::WriteScope::~WriteScope() {
  if (done_) return;
  try {
    if (c_.write_depth_ == 1) {
      c_.names_touched_ = false;
      c_.writer_.exec("ROLLBACK");
    } else
      c_.writer_.exec("ROLLBACK TO nested; RELEASE nested");
  } catch (...) {
    // The connection rolls back by itself when a statement fails badly.
  }
  --c_.write_depth_;
}

Catalog::ReadLease::ReadLease(Catalog& c) : c_(c) {
  {
    std::lock_guard lock(c_.readers_mu_);
    if (!c_.readers_.empty()) {
      db_ = std::move(c_.readers_.back());
      c_.readers_.pop_back();
      return;
    }
  }
  db_ = Db::open(c_.path_, {.create = false, .busy_timeout_ms = c_.options_.busy_timeout_ms});
}

Catalog::ReadLease::~ReadLease() {
  std::lock_guard lock(c_.readers_mu_);
  c_.readers_.push_back(std::move(db_));
}

void Catalog::batch(const std::function<void()>& fn) {
  WriteScope w(*this);
  fn();
  w.commit();
}

// ---- opening ---------------------------------------------------------------

Catalog::Catalog(std::filesystem::path path, Db writer, const Options& options)
    : path_(std::move(path)), options_(options), writer_(std::move(writer)) {
  // Rows of the tables a folder's listing is made of: those move the
  // generation (replication progress, the outbox, holders do not).
  sqlite3_update_hook(
      writer_.handle(),
      [](void* self, int, const char*, const char* table, sqlite3_int64) {
        std::string_view t(table);
        if (t == "works" || t == "folders" || t == "assets" || t == "edges")
          static_cast<Catalog*>(self)->names_touched_ = true;
      },
      this);
}

Catalog::~Catalog() = default;

std::unique_ptr<Catalog> Catalog::open(const std::filesystem::path& file, const Options& options) {
  if (!options.create && !std::filesystem::exists(file))
    throw Error(ENOENT, "no catalog at " + quote(file.string()));
  // The writer gets the larger page cache: inserts touch several indexes.
  Db db = Db::open(
      file,
      {.create = options.create, .busy_timeout_ms = options.busy_timeout_ms, .cache_kib = 32768});
  migrate_catalog(db);
  std::unique_ptr<Catalog> c(new Catalog(file, std::move(db), options));
  c->init_device();
  return c;
}

void Catalog::init_device() {
  WriteScope w(*this);
  Db& db = w.db();
  Stmt get = db.cached("SELECT value FROM meta WHERE key = 'device_id'");
  if (get.step()) {
    device_id_ = get.text(0);
    return;  // nothing written: the scope rolls back an empty transaction
  }
  device_id_ = new_uuid();
  int64_t now = now_ms();
  db.cached("INSERT INTO meta(key, value) VALUES('device_id', ?)").bind(device_id_).run();
  db.cached("INSERT INTO meta(key, value) VALUES('created_ms', ?)").bind(std::to_string(now)).run();
  char host[256] = "this device";
  ::gethostname(host, sizeof host - 1);
  db.cached("INSERT INTO devices(id, name, created_ms) VALUES(?, ?, ?)")
      .bind(device_id_, std::string(host), now)
      .run();
  w.commit();
}

int Catalog::schema_version() {
  ReadLease r(*this);
  return r.db().user_version();
}

void Catalog::check_name(const std::string& name, const char* what) {
  if (name.empty()) throw Error(EINVAL, std::string(what) + " must not be empty");
  if (name.find('\0') != std::string::npos)
    throw Error(EINVAL, std::string(what) + " must not contain a NUL byte");
  require_utf8(name, what);  // the server's text takes nothing else
}

void Catalog::require_place(Db& db, const Place& place) {
  if (place.work_id) {
    Stmt s = db.cached("SELECT 1 FROM works WHERE id = ?");
    s.bind(*place.work_id);
    if (!s.step()) throw Error(ENOENT, "no work with id " + *place.work_id);
  }
  if (!place.folder.empty()) {
    Stmt s = db.cached("SELECT 1 FROM folders WHERE work_id IS ? AND path = ?");
    s.bind(place.work_id, place.folder);
    if (!s.step()) throw Error(ENOENT, "no folder " + quote(place.folder));
  }
}

// ---- works -----------------------------------------------------------------

Work Catalog::create_work(const std::string& title, bool local_only, uint32_t mode) {
  check_name(title, "a work's title");
  Work w;
  w.id = new_row_id();
  w.title = title;
  w.local_only = local_only;
  w.mode = mode & 07777;
  w.mtime_ns = now_ns();
  WriteScope s(*this);
  w.created_ms = w.updated_ms = stamp_ms(s.db());
  s.db()
      .cached(
          "INSERT INTO works(id, title, work_type, authors, mode, mtime_ns, local_only, "
          "created_ms, updated_ms) VALUES(?,?,?,?,?,?,?,?,?)")
      .bind(w.id, w.title, w.work_type, w.authors, w.mode, w.mtime_ns, w.local_only, w.created_ms,
            w.updated_ms)
      .run();
  s.commit();
  return w;
}

void Catalog::rename_work(const std::string& id, const std::string& title) {
  check_name(title, "a work's title");
  WriteScope s(*this);
  Db& db = s.db();
  db.cached("UPDATE works SET title = ?2, updated_ms = ?3 WHERE id = ?1 AND title IS NOT ?2")
      .bind(id, title, stamp_ms(db))
      .run();
  if (db.changes() == 0 && !db.cached("SELECT 1 FROM works WHERE id = ?").bind(id).step())
    throw Error(ENOENT, "no work with id " + id);
  s.commit();
}

void Catalog::set_work_attrs(const std::string& id, std::optional<uint32_t> mode,
                             std::optional<int64_t> mtime_ns) {
  WriteScope s(*this);
  Db& db = s.db();
  db.cached(
        "UPDATE works SET mode = coalesce(?2, mode), mtime_ns = coalesce(?3, mtime_ns), "
        "updated_ms = ?4 WHERE id = ?1 AND (mode IS NOT coalesce(?2, mode) OR "
        "mtime_ns IS NOT coalesce(?3, mtime_ns))")
      .bind(id, mode, mtime_ns, stamp_ms(db))
      .run();
  if (db.changes() == 0 && !db.cached("SELECT 1 FROM works WHERE id = ?").bind(id).step())
    throw Error(ENOENT, "no work with id " + id);
  s.commit();
}

void Catalog::delete_work(const std::string& id) {
  WriteScope s(*this);
  Db& db = s.db();
  Stmt used = db.cached(
      "SELECT EXISTS(SELECT 1 FROM assets WHERE work_id = ?1) OR "
      "EXISTS(SELECT 1 FROM edges WHERE from_id = ?1) OR "
      "EXISTS(SELECT 1 FROM folders WHERE work_id = ?1)");
  used.bind(id);
  used.step();
  if (used.int64(0)) throw Error(ENOTEMPTY, "work " + id + " is not empty");
  db.cached("DELETE FROM works WHERE id = ?").bind(id).run();
  if (db.changes() == 0) throw Error(ENOENT, "no work with id " + id);
  s.commit();
}

std::optional<Work> Catalog::get_work(const std::string& id) {
  ReadLease r(*this);
  Stmt s = r.db().cached(std::string("SELECT ") + kWorkCols + " FROM works WHERE id = ?");
  s.bind(id);
  if (!s.step()) return std::nullopt;
  return work_from(s);
}

std::vector<Work> Catalog::works_titled(const std::string& title) {
  ReadLease r(*this);
  Stmt s = r.db().cached(std::string("SELECT ") + kWorkCols +
                         " FROM works WHERE title = ? ORDER BY created_ms, id");
  s.bind(title);
  std::vector<Work> out;
  while (s.step()) out.push_back(work_from(s));
  return out;
}

void Catalog::list_works(const std::function<bool(const WorkEntry&)>& fn, const std::string& from) {
  ReadLease r(*this);
  Stmt s = r.db().cached(std::string("SELECT ") + kWorkCols +
                         " FROM works WHERE title >= ? ORDER BY title, created_ms, id");
  s.bind(from);
  WorkEntry e;
  std::string prev;
  bool first = true;
  while (s.step()) {
    e.work = work_from(s);
    e.collision = (!first && e.work.title == prev) ? e.collision + 1 : 0;
    prev = e.work.title;
    first = false;
    if (!fn(e)) return;
  }
}

// ---- sub-folders -----------------------------------------------------------

Folder Catalog::create_folder(const Place& parent, const std::string& name, bool local_only,
                              uint32_t mode) {
  check_name(name, "a folder name");
  if (name.find('/') != std::string::npos || name == "." || name == "..")
    throw Error(EINVAL, "not a folder name: " + quote(name));
  Folder f;
  f.id = new_row_id();
  f.work_id = parent.work_id;
  f.path = join_path(parent.folder, name);
  f.local_only = local_only;
  f.mode = mode & 07777;
  f.mtime_ns = now_ns();
  WriteScope s(*this);
  f.created_ms = stamp_ms(s.db());
  require_place(s.db(), parent);
  s.db()
      .cached(
          "INSERT INTO folders(id, work_id, path, mode, mtime_ns, local_only, created_ms, "
          "updated_ms) VALUES(?,?,?,?,?,?,?,?)")
      .bind(f.id, f.work_id, f.path, f.mode, f.mtime_ns, f.local_only, f.created_ms, f.created_ms)
      .run();
  s.commit();
  return f;
}

void Catalog::delete_folder(const std::string& id) {
  WriteScope s(*this);
  Db& db = s.db();
  Stmt get = db.cached(std::string("SELECT ") + kFolderCols + " FROM folders WHERE id = ?");
  get.bind(id);
  if (!get.step()) throw Error(ENOENT, "no folder with id " + id);
  Folder f = folder_from(get);
  Stmt used = db.cached(
      "SELECT EXISTS(SELECT 1 FROM assets WHERE work_id IS ?1 AND folder = ?2) OR "
      "EXISTS(SELECT 1 FROM edges WHERE from_id IS ?1 AND folder = ?2) OR "
      "EXISTS(SELECT 1 FROM folders WHERE work_id IS ?1 AND path > ?2 || '/' AND "
      "path < ?2 || '0')");
  used.bind(f.work_id, f.path);
  used.step();
  if (used.int64(0)) throw Error(ENOTEMPTY, "folder " + quote(f.path) + " is not empty");
  db.cached("DELETE FROM folders WHERE id = ?").bind(id).run();
  s.commit();
}

void Catalog::move_folder(const std::string& id, const Place& new_parent,
                          const std::string& new_name) {
  check_name(new_name, "a folder name");
  if (new_name.find('/') != std::string::npos || new_name == "." || new_name == "..")
    throw Error(EINVAL, "not a folder name: " + quote(new_name));
  WriteScope s(*this);
  Db& db = s.db();
  Stmt get = db.cached(std::string("SELECT ") + kFolderCols + " FROM folders WHERE id = ?");
  get.bind(id);
  if (!get.step()) throw Error(ENOENT, "no folder with id " + id);
  Folder f = folder_from(get);
  get = Stmt();
  std::string to = join_path(new_parent.folder, new_name);
  if (f.work_id == new_parent.work_id && to == f.path) return;
  if (f.work_id == new_parent.work_id &&
      (new_parent.folder == f.path || new_parent.folder.starts_with(f.path + "/")))
    throw Error(EINVAL, "cannot move folder " + quote(f.path) + " into itself");
  require_place(db, new_parent);
  if (db.cached("SELECT 1 FROM folders WHERE work_id IS ? AND path = ?")
          .bind(new_parent.work_id, to)
          .step())
    throw Error(EEXIST, "folder " + quote(to) + " exists");
  // Everything at or under the old path moves: ?1 old work, ?2 old path,
  // ?3 new work, ?4 new path.
  const std::string under = "(%1 = ?2 OR (%1 > ?2 || '/' AND %1 < ?2 || '0'))";
  auto cond = [&](const char* col) {
    std::string c = under;
    for (size_t p; (p = c.find("%1")) != std::string::npos;) c.replace(p, 2, col);
    return c;
  };
  int64_t now = stamp_ms(db);
  db.cached(
        "UPDATE folders SET work_id = ?3, path = ?4 || substr(path, length(?2) + 1), updated_ms = "
        "?5 "
        "WHERE work_id IS ?1 AND " +
        cond("path"))
      .bind(f.work_id, f.path, new_parent.work_id, to, now)
      .run();
  db.cached("UPDATE assets SET work_id = ?3, folder = ?4 || substr(folder, length(?2) + 1), " +
            stamp_asset(kStampPlace, "?5") + " WHERE work_id IS ?1 AND " + cond("folder"))
      .bind(f.work_id, f.path, new_parent.work_id, to, now)
      .run();
  db.cached(
        "UPDATE edges SET from_id = ?3, folder = ?4 || substr(folder, length(?2) + 1), updated_ms "
        "= ?5 "
        "WHERE from_id IS ?1 AND " +
        cond("folder"))
      .bind(f.work_id, f.path, new_parent.work_id, to, now)
      .run();
  s.commit();
}

void Catalog::move_contents(const Place& from, const Place& to) {
  WriteScope s(*this);
  Db& db = s.db();
  require_place(db, from);
  require_place(db, to);
  // ?1 old work, ?2 old folder path ('' = the top), ?3 new work, ?4 new path.
  // A path p under ?2 becomes ?4 joined with what follows ?2 in p.
  const char* under = "(?2 = '' OR %1 = ?2 OR (%1 > ?2 || '/' AND %1 < ?2 || '0'))";
  auto cond = [&](const char* col) {
    std::string c = under;
    for (size_t p; (p = c.find("%1")) != std::string::npos;) c.replace(p, 2, col);
    return c;
  };
  auto moved = [](const char* col) {
    std::string c = col;
    return "CASE WHEN ?2 = '' THEN (CASE WHEN ?4 = '' THEN " + c + " WHEN " + c +
           " = '' THEN ?4 ELSE ?4 || '/' || " + c + " END) ELSE (CASE WHEN ?4 = '' THEN " +
           "ltrim(substr(" + c + ", length(?2) + 1), '/') ELSE ?4 || substr(" + c +
           ", length(?2) + 1) END) END";
  };
  int64_t now = stamp_ms(db);
  db.cached("UPDATE folders SET work_id = ?3, updated_ms = ?5, path = " + moved("path") +
            " WHERE work_id IS ?1 AND path <> ?2 AND " + cond("path"))
      .bind(from.work_id, from.folder, to.work_id, to.folder, now)
      .run();
  db.cached("UPDATE assets SET work_id = ?3, folder = " + moved("folder") + ", " +
            stamp_asset(kStampPlace, "?5") + " WHERE work_id IS ?1 AND " + cond("folder"))
      .bind(from.work_id, from.folder, to.work_id, to.folder, now)
      .run();
  db.cached("UPDATE edges SET from_id = ?3, updated_ms = ?5, folder = " + moved("folder") +
            " WHERE from_id IS ?1 AND " + cond("folder"))
      .bind(from.work_id, from.folder, to.work_id, to.folder, now)
      .run();
  // Pinned places go along (a sub-folder's also follow its row, by trigger).
  db.cached("UPDATE OR REPLACE pinned_places SET scope = coalesce(?3, 'inbox'), folder = " +
            moved("folder") + " WHERE scope = coalesce(?1, 'inbox') AND " + cond("folder"))
      .bind(from.work_id, from.folder, to.work_id, to.folder)
      .run();
  s.commit();
}

void Catalog::set_folder_attrs(const std::string& id, std::optional<uint32_t> mode,
                               std::optional<int64_t> mtime_ns) {
  WriteScope s(*this);
  Db& db = s.db();
  db.cached(
        "UPDATE folders SET mode = coalesce(?2, mode), mtime_ns = coalesce(?3, mtime_ns), "
        "updated_ms = ?4 "
        "WHERE id = ?1 AND (mode IS NOT coalesce(?2, mode) OR "
        "mtime_ns IS NOT coalesce(?3, mtime_ns))")
      .bind(id, mode, mtime_ns, stamp_ms(db))
      .run();
  if (db.changes() == 0 && !db.cached("SELECT 1 FROM folders WHERE id = ?").bind(id).step())
    throw Error(ENOENT, "no folder with id " + id);
  s.commit();
}

std::optional<Folder> Catalog::get_folder(const Place& place) {
  ReadLease r(*this);
  Stmt s = r.db().cached(std::string("SELECT ") + kFolderCols +
                         " FROM folders WHERE work_id IS ? AND path = ?");
  s.bind(place.work_id, place.folder);
  if (!s.step()) return std::nullopt;
  return folder_from(s);
}

// ---- counts and the outbox -------------------------------------------------

CatalogCounts Catalog::counts() {
  ReadLease r(*this);
  Stmt s = r.db().cached(
      "SELECT (SELECT count(*) FROM works), (SELECT count(*) FROM folders), "
      "(SELECT count(*) FROM assets), (SELECT count(*) FROM edges), "
      "(SELECT count(*) FROM blobs_meta), (SELECT coalesce(sum(bytes), 0) FROM assets), "
      "(SELECT coalesce(sum(size), 0) FROM blobs_meta), "
      "(SELECT count(*) FROM assets WHERE local_only = 1), (SELECT count(*) FROM outbox), "
      "(SELECT count(*) FROM device_blobs WHERE device_id = ?1 AND present = 1), "
      "(SELECT coalesce(sum(b.size), 0) FROM device_blobs d JOIN blobs_meta b USING (sha256) "
      " WHERE d.device_id = ?1 AND d.present = 1), "
      "(SELECT count(*) FROM pins), "
      "(SELECT coalesce(sum(b.size), 0) FROM pins p JOIN blobs_meta b USING (sha256)), "
      "(SELECT count(*) FROM replication_jobs WHERE status = 'pending'), "
      "(SELECT count(*) FROM replication_jobs WHERE status = 'in_progress'), "
      "(SELECT count(*) FROM replication_jobs WHERE status = 'failed')");
  s.bind(kCloudHolder);
  s.step();
  CatalogCounts c;
  c.works = static_cast<uint64_t>(s.int64(0));
  c.folders = static_cast<uint64_t>(s.int64(1));
  c.assets = static_cast<uint64_t>(s.int64(2));
  c.edges = static_cast<uint64_t>(s.int64(3));
  c.blobs = static_cast<uint64_t>(s.int64(4));
  c.asset_bytes = static_cast<uint64_t>(s.int64(5));
  c.blob_bytes = static_cast<uint64_t>(s.int64(6));
  c.local_only_assets = static_cast<uint64_t>(s.int64(7));
  c.outbox = static_cast<uint64_t>(s.int64(8));
  c.cloud_blobs = static_cast<uint64_t>(s.int64(9));
  c.cloud_bytes = static_cast<uint64_t>(s.int64(10));
  c.pinned_blobs = static_cast<uint64_t>(s.int64(11));
  c.pinned_bytes = static_cast<uint64_t>(s.int64(12));
  c.jobs_pending = static_cast<uint64_t>(s.int64(13));
  c.jobs_in_progress = static_cast<uint64_t>(s.int64(14));
  c.jobs_failed = static_cast<uint64_t>(s.int64(15));
  return c;
}

int64_t Catalog::data_version() {
  std::lock_guard lock(writer_mu_);
  Stmt s = writer_.cached("PRAGMA data_version");
  s.step();
  int64_t v = s.int64(0);
  if (v != seen_data_version_) {
    if (seen_data_version_ >= 0) generation_.fetch_add(1, std::memory_order_acq_rel);
    seen_data_version_ = v;
  }
  return v;
}

uint64_t Catalog::outbox_count() {
  ReadLease r(*this);
  Stmt s = r.db().cached("SELECT count(*) FROM outbox");
  s.step();
  return static_cast<uint64_t>(s.int64(0));
}

std::vector<OutboxRow> Catalog::read_outbox(int64_t after_seq, size_t limit) {
  ReadLease r(*this);
  Stmt s = r.db().cached(
      "SELECT seq, tbl, row_id, op, payload, created_ms FROM outbox WHERE seq > ? "
      "ORDER BY seq LIMIT ?");
  s.bind(after_seq, static_cast<int64_t>(limit));
  std::vector<OutboxRow> out;
  while (s.step())
    out.push_back(
        OutboxRow{s.int64(0), s.text(1), s.text(2), s.text(3), s.opt_text(4), s.int64(5)});
  return out;
}

}  // namespace recall
