#include "catalog/schema.h"

#include <string>
#include <vector>

#include "base/error.h"
#include "catalog/synced_tables.h"

namespace recall {
namespace {

// ---- the transactional outbox ----------------------------------------------
//
// Each synced table gets triggers that write its outbox row in the same
// transaction as the change itself: nothing changes without being queued,
// nothing is queued that did not change (an UPDATE that sets every column to
// its old value queues nothing), and a rollback takes both away. Rows marked
// local_only are never queued; a row that becomes local_only is queued as a
// delete, one that stops being local_only as an upsert.

const char* const kNowMs = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";

// A column of the NEW or OLD row as it goes into a JSON payload.
std::string json_value(const SyncedColumn& c, const char* row) {
  std::string ref = std::string(row) + "." + c.name;
  switch (c.type) {
    case SyncedColumn::Type::Json:
      return "json(" + ref + ")";
    case SyncedColumn::Type::Blob:
      return "nullif(lower(hex(" + ref + ")), '')";  // hex(NULL) is '', not NULL
    default:
      return ref;
  }
}

std::string payload_of(const SyncedTable& t, const char* row) {
  std::string payload = "json_object(";
  for (size_t i = 0; i < t.columns.size(); ++i) {
    if (i) payload += ", ";
    payload += std::string("'") + t.columns[i].name + "', " + json_value(t.columns[i], row);
  }
  return payload + ")";
}

std::string outbox_triggers(const SyncedTable& t) {
  std::string changed;
  for (size_t i = 0; i < t.columns.size(); ++i) {
    if (i) changed += " OR ";
    changed += std::string("OLD.") + t.columns[i].name + " IS NOT NEW." + t.columns[i].name;
  }
  std::string n = t.name, k = t.key;
  // Rows written by the sync itself (pulled from the server) are not changes
  // of this device: sync_apply.active is 1 only inside such a transaction.
  const std::string local = " AND (SELECT active FROM sync_apply) = 0";
  auto insert = [&](const std::string& row, const std::string& op, const std::string& body) {
    return "INSERT INTO outbox(tbl, row_id, op, payload, created_ms) VALUES('" + n + "', " + row +
           ", '" + op + "', " + body + ", " + kNowMs + ");";
  };
  // A delete carries the row as it was: the server deletes it only if
  // nobody changed it meanwhile (an edit elsewhere wins over a delete).
  std::string sql;
  sql += "CREATE TRIGGER " + n + "_outbox_insert AFTER INSERT ON " + n +
         " WHEN NEW.local_only = 0" + local + " BEGIN " +
         insert("NEW." + k, "upsert", payload_of(t, "NEW")) + " END;\n";
  sql += "CREATE TRIGGER " + n + "_outbox_update AFTER UPDATE ON " + n +
         " WHEN NEW.local_only = 0" + local + " AND (OLD.local_only = 1 OR " + changed +
         ") BEGIN " +
         // A changed key is a delete of the old row and an insert of the new.
         "INSERT INTO outbox(tbl, row_id, op, payload, created_ms) SELECT '" + n + "', OLD." + k +
         ", 'delete', " + payload_of(t, "OLD") + ", " + kNowMs + " WHERE OLD." + k +
         " IS NOT NEW." + k + " AND OLD.local_only = 0; " +
         insert("NEW." + k, "upsert", payload_of(t, "NEW")) + " END;\n";
  sql += "CREATE TRIGGER " + n + "_outbox_hide AFTER UPDATE ON " + n +
         " WHEN OLD.local_only = 0 AND NEW.local_only = 1" + local + " BEGIN " +
         insert("OLD." + k, "delete", payload_of(t, "OLD")) + " END;\n";
  sql += "CREATE TRIGGER " + n + "_outbox_delete AFTER DELETE ON " + n +
         " WHEN OLD.local_only = 0" + local + " BEGIN " +
         insert("OLD." + k, "delete", payload_of(t, "OLD")) + " END;\n";
  return sql;
}

std::string schema_v1() {
  std::string sql = R"sql(
CREATE TABLE meta(
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE devices(
  id           TEXT PRIMARY KEY,
  name         TEXT NOT NULL,
  peer_address TEXT,
  last_seen_ms INTEGER,
  created_ms   INTEGER NOT NULL
);

CREATE TABLE works(
  id         TEXT PRIMARY KEY,
  title      TEXT NOT NULL,
  subtitle   TEXT,
  work_type  TEXT NOT NULL DEFAULT 'paper',
  authors    TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(authors)),
  year       INTEGER,
  doi        TEXT,
  arxiv_id   TEXT,
  mode       INTEGER NOT NULL DEFAULT 493,
  mtime_ns   INTEGER NOT NULL DEFAULT 0,
  local_only INTEGER NOT NULL DEFAULT 0 CHECK (local_only IN (0, 1)),
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE INDEX works_by_title ON works(title, created_ms, id);

CREATE TABLE folders(
  id         TEXT PRIMARY KEY,
  work_id    TEXT REFERENCES works(id),
  path       TEXT NOT NULL CHECK (path <> ''),
  mode       INTEGER NOT NULL DEFAULT 493,
  mtime_ns   INTEGER NOT NULL DEFAULT 0,
  local_only INTEGER NOT NULL DEFAULT 0 CHECK (local_only IN (0, 1)),
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX folders_by_place ON folders(work_id, path);

CREATE TABLE assets(
  id         TEXT PRIMARY KEY,
  work_id    TEXT REFERENCES works(id),
  folder     TEXT NOT NULL DEFAULT '',
  filename   TEXT NOT NULL CHECK (filename <> ''),
  sha256     TEXT NOT NULL CHECK (length(sha256) = 64),
  role       TEXT NOT NULL DEFAULT 'main' CHECK (role IN
               ('main','supplement','slides','solutions','data','notes','exercises','thumbnail')),
  mime       TEXT,
  bytes      INTEGER NOT NULL CHECK (bytes >= 0),
  page_count INTEGER,
  mode       INTEGER NOT NULL DEFAULT 420,
  mtime_ns   INTEGER NOT NULL DEFAULT 0,
  local_only INTEGER NOT NULL DEFAULT 0 CHECK (local_only IN (0, 1)),
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE INDEX assets_by_place ON assets(work_id, folder, filename, created_ms, id);
CREATE INDEX assets_by_sha256 ON assets(sha256);

CREATE TABLE edges(
  id         TEXT PRIMARY KEY,
  from_id    TEXT REFERENCES works(id),
  to_id      TEXT NOT NULL REFERENCES assets(id),
  relation   TEXT NOT NULL DEFAULT 'contains',
  folder     TEXT NOT NULL DEFAULT '',
  name       TEXT NOT NULL CHECK (name <> ''),
  local_only INTEGER NOT NULL DEFAULT 0 CHECK (local_only IN (0, 1)),
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL
);
CREATE INDEX edges_by_place ON edges(from_id, folder, name, created_ms, id);
CREATE INDEX edges_by_target ON edges(to_id);

CREATE TABLE blobs_meta(
  sha256         TEXT PRIMARY KEY CHECK (length(sha256) = 64),
  size           INTEGER NOT NULL CHECK (size >= 0),
  mime           TEXT,
  filename       TEXT,
  page_count     INTEGER,
  image_width    INTEGER,
  image_height   INTEGER,
  pdf_metadata   TEXT CHECK (pdf_metadata IS NULL OR json_valid(pdf_metadata)),
  chunk_size     INTEGER,
  chunk_manifest BLOB,
  local_only     INTEGER NOT NULL DEFAULT 0 CHECK (local_only IN (0, 1)),
  created_ms     INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE device_blobs(
  id         TEXT PRIMARY KEY,
  device_id  TEXT NOT NULL,
  sha256     TEXT NOT NULL,
  present    INTEGER NOT NULL CHECK (present IN (0, 1)),
  health     TEXT NOT NULL DEFAULT 'healthy'
             CHECK (health IN ('healthy','missing','modified','relocated')),
  local_path TEXT,
  mtime_ms   INTEGER,
  local_only INTEGER NOT NULL DEFAULT 0 CHECK (local_only IN (0, 1)),
  UNIQUE (sha256, device_id)  -- also finds a blob's holders
);

CREATE TABLE replication_jobs(
  id                TEXT PRIMARY KEY,
  sha256            TEXT NOT NULL,
  from_source       TEXT NOT NULL,
  to_destination    TEXT NOT NULL,
  status            TEXT NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending','in_progress','completed','failed','cancelled')),
  progress          REAL NOT NULL DEFAULT 0,
  bytes_transferred INTEGER NOT NULL DEFAULT 0,
  attempts          INTEGER NOT NULL DEFAULT 0,
  error             TEXT,
  priority          INTEGER NOT NULL DEFAULT 0,
  created_ms        INTEGER NOT NULL,
  updated_ms        INTEGER NOT NULL,
  started_ms        INTEGER,
  completed_ms      INTEGER,
  next_attempt_ms   INTEGER NOT NULL DEFAULT 0,  -- a failed job waits until then
  upload_id         TEXT                         -- a multipart upload to resume
);
CREATE UNIQUE INDEX replication_jobs_active ON replication_jobs(sha256, to_destination)
  WHERE status IN ('pending', 'in_progress', 'failed');
CREATE INDEX replication_jobs_by_status ON replication_jobs(status, priority DESC, created_ms);

-- Blobs kept on this device whatever the cache budget (recallfs pin).
CREATE TABLE pins(
  sha256    TEXT PRIMARY KEY,
  pinned_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- 1 only inside a transaction that applies rows pulled from the server.
CREATE TABLE sync_apply(active INTEGER NOT NULL);
INSERT INTO sync_apply VALUES (0);

-- The outbox: changes of this device waiting to be pushed, oldest first.
CREATE TABLE outbox(
  seq        INTEGER PRIMARY KEY AUTOINCREMENT,
  tbl        TEXT NOT NULL,
  row_id     TEXT NOT NULL,
  op         TEXT NOT NULL CHECK (op IN ('upsert', 'delete')),
  payload    TEXT,
  created_ms INTEGER NOT NULL
);
)sql";
  for (const SyncedTable& t : synced_tables()) sql += outbox_triggers(t);
  return sql;
}

// v2: payloads carried a NULL blob as '' (what hex(NULL) gives), which the
// server then kept as a value, so a chunk manifest added later never
// reached it. The triggers are rebuilt with the NULL kept, and every blob
// described here is queued again, to fill in what the server lacks.
std::string schema_v2() {
  std::string sql;
  for (const SyncedTable& t : synced_tables()) {
    for (const char* op : {"insert", "update", "hide", "delete"})
      sql += std::string("DROP TRIGGER IF EXISTS ") + t.name + "_outbox_" + op + ";\n";
    sql += outbox_triggers(t);
    if (std::string(t.name) == "blobs_meta")
      sql +=
          "INSERT INTO outbox(tbl, row_id, op, payload, created_ms) SELECT 'blobs_meta', "
          "sha256, 'upsert', " +
          payload_of(t, "blobs_meta") + ", " + kNowMs +
          " FROM blobs_meta WHERE local_only = 0 AND length(chunk_manifest) > 0;\n";
  }
  return sql;
}

// v3: rows pushed are read back from the server at the next pull (see
// Catalog::rechecks), and bytes a change freed are held until then (see
// Catalog::hold_blob).
std::string schema_v3() {
  return R"sql(
CREATE TABLE IF NOT EXISTS blob_holds(
  sha256 TEXT PRIMARY KEY,
  seq    INTEGER NOT NULL  -- the outbox row that freed it (the last one then)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sync_recheck(
  tbl    TEXT NOT NULL,
  row_id TEXT NOT NULL,
  seq    INTEGER NOT NULL,  -- the outbox row that pushed it last
  PRIMARY KEY (tbl, row_id)
) WITHOUT ROWID;
)sql";
}

// v4: an asset's columns sync as three groups, each stamped with when it
// last changed here (see catalog_internal.h, kStampContent): an edit made
// on one device and a rename made on another both land. Rows from before
// changed all their groups when they last changed. The triggers are dropped
// while the rows are stamped (which queues nothing), and rebuilt by v6.
// (`has_stamps`: a catalog of schema 4 marked older, as tests do.)
std::string schema_v4(bool has_stamps) {
  std::string sql;
  for (const char* op : {"insert", "update", "hide", "delete"})
    sql += std::string("DROP TRIGGER IF EXISTS assets_outbox_") + op + ";\n";
  if (!has_stamps)
    sql += R"sql(
ALTER TABLE assets ADD COLUMN content_ms INTEGER;
ALTER TABLE assets ADD COLUMN place_ms INTEGER;
ALTER TABLE assets ADD COLUMN attrs_ms INTEGER;
)sql";
  sql +=
      "UPDATE assets SET content_ms = coalesce(content_ms, updated_ms), "
      "place_ms = coalesce(place_ms, updated_ms), attrs_ms = coalesce(attrs_ms, updated_ms);\n";
  return sql;  // the triggers, rebuilt with the stamps: v6
}

// v5: a pin of a folder, a work, the inbox or works/ keeps what comes into
// it later too (Catalog::pin_place). The place is a row of pinned_places;
// triggers pin the content of every file that is added, pulled, moved or
// linked into one, and carry the place along when its folder is renamed or
// moved (also by a pull). `scope` is a work's id, 'inbox', or 'works' (every
// work); `folder` is a sub-folder path in it ('' = all of it).
std::string schema_v5() {
  const std::string pin = "INSERT INTO pins(sha256, pinned_ms) SELECT %s, " + std::string(kNowMs) +
                          " WHERE %s IS NOT NULL ON CONFLICT DO NOTHING;";
  auto pin_of = [&](const std::string& sha) {
    std::string s = pin;
    for (size_t p; (p = s.find("%s")) != std::string::npos;) s.replace(p, 2, sha);
    return s;
  };
  const std::string edge_target = "(SELECT sha256 FROM assets WHERE id = NEW.to_id)";
  std::string sql = R"sql(
CREATE TABLE IF NOT EXISTS pinned_places(
  scope     TEXT NOT NULL,
  folder    TEXT NOT NULL DEFAULT '',
  pinned_ms INTEGER NOT NULL,
  PRIMARY KEY (scope, folder)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS pinned_places_follow_folder AFTER UPDATE OF work_id, path ON folders BEGIN
  UPDATE OR REPLACE pinned_places SET scope = coalesce(NEW.work_id, 'inbox'),
    folder = NEW.path || substr(folder, length(OLD.path) + 1)
  WHERE scope = coalesce(OLD.work_id, 'inbox') AND
    (folder = OLD.path OR substr(folder, 1, length(OLD.path) + 1) = OLD.path || '/');
END;
CREATE TRIGGER IF NOT EXISTS pinned_places_folder_gone AFTER DELETE ON folders BEGIN
  DELETE FROM pinned_places WHERE scope = coalesce(OLD.work_id, 'inbox') AND folder = OLD.path;
END;
CREATE TRIGGER IF NOT EXISTS pinned_places_work_gone AFTER DELETE ON works BEGIN
  DELETE FROM pinned_places WHERE scope = OLD.id;
END;
)sql";
  sql += "CREATE TRIGGER IF NOT EXISTS pinned_places_asset_in AFTER INSERT ON assets WHEN " +
         in_pinned_place_sql("NEW.work_id", "NEW.folder") + " BEGIN " + pin_of("NEW.sha256") +
         " END;\n";
  sql +=
      "CREATE TRIGGER IF NOT EXISTS pinned_places_asset_moved AFTER UPDATE OF work_id, folder, "
      "sha256 ON "
      "assets WHEN " +
      in_pinned_place_sql("NEW.work_id", "NEW.folder") + " BEGIN " + pin_of("NEW.sha256") +
      " END;\n";
  sql += "CREATE TRIGGER IF NOT EXISTS pinned_places_link_in AFTER INSERT ON edges WHEN " +
         in_pinned_place_sql("NEW.from_id", "NEW.folder") + " BEGIN " + pin_of(edge_target) +
         " END;\n";
  sql +=
      "CREATE TRIGGER IF NOT EXISTS pinned_places_link_moved AFTER UPDATE OF from_id, folder, "
      "to_id ON edges "
      "WHEN " +
      in_pinned_place_sql("NEW.from_id", "NEW.folder") + " BEGIN " + pin_of(edge_target) +
      " END;\n";
  return sql;
}

// v6: an asset row carries the content its edit started from (content_base:
// the content this device last knew the server to have) and the device
// whose edit its content is (content_device), so that the server tells an
// edit made apart from another device's and keeps both
// (sync/sql/004_conflict_copies.sql). content_base is NULL until the first
// edit here; a pull and a push set it to the content they agree on
// (Catalog::apply_remote, drop_outbox_through). The assets triggers are
// rebuilt to carry them.
std::string schema_v6(bool has_base, bool has_device) {
  std::string sql;
  for (const char* op : {"insert", "update", "hide", "delete"})
    sql += std::string("DROP TRIGGER IF EXISTS assets_outbox_") + op + ";\n";
  if (!has_base) sql += "ALTER TABLE assets ADD COLUMN content_base TEXT;\n";
  if (!has_device) sql += "ALTER TABLE assets ADD COLUMN content_device TEXT;\n";
  return sql + outbox_triggers(synced_table("assets"));
}

bool has_column(Db& db, const char* table, const char* column) {
  Stmt s = db.cached(std::string("SELECT count(*) FROM pragma_table_info('") + table +
                     "') WHERE name = ?");
  s.bind(column);
  s.step();
  return s.int64(0) > 0;
}

}  // namespace

void migrate_catalog(Db& db) {
  Tx tx(db);
  int v = db.user_version();
  if (v > kCatalogSchemaVersion)
    throw Error(EUCLEAN, "catalog " + quote(db.path().string()) + " has schema version " +
                             std::to_string(v) + ", newer than this recallfs knows (" +
                             std::to_string(kCatalogSchemaVersion) + ")");
  if (v == kCatalogSchemaVersion) return;  // nothing to write: other processes see no change
  if (v < 1) db.exec(schema_v1());
  if (v < 2) db.exec(schema_v2());
  if (v < 3) db.exec(schema_v3());
  if (v < 4) db.exec(schema_v4(has_column(db, "assets", "content_ms")));
  if (v < 5) db.exec(schema_v5());
  if (v < 6)
    db.exec(schema_v6(has_column(db, "assets", "content_base"),
                      has_column(db, "assets", "content_device")));
  db.set_user_version(kCatalogSchemaVersion);
  tx.commit();
}

std::string queue_every_row_sql() {
  std::string sql;
  for (const SyncedTable& t : synced_tables()) {
    std::string n = t.name;
    sql += "INSERT INTO outbox(tbl, row_id, op, payload, created_ms) SELECT '" + n + "', " + t.key +
           ", 'upsert', " + payload_of(t, t.name) + ", " + kNowMs + " FROM " + n +
           " WHERE local_only = 0;\n";
  }
  return sql;
}

std::string in_pinned_place_sql(const std::string& work, const std::string& folder) {
  return "EXISTS (SELECT 1 FROM pinned_places p WHERE (p.scope = 'works' AND " + work +
         " IS NOT NULL) OR (p.scope = coalesce(" + work + ", 'inbox') AND (p.folder = '' OR " +
         folder + " = p.folder OR substr(" + folder +
         ", 1, length(p.folder) + 1) = p.folder || "
         "'/')))";
}

}  // namespace recall
