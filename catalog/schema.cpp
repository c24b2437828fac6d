#include "catalog/schema.h"

#include <string>
#include <vector>

#include "base/error.h"

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

struct Column {
  const char* name;
  const char* json;  // expression for the payload; "" = NEW.<name>
};

struct SyncedTable {
  const char* name;
  const char* key;
  std::vector<Column> columns;
};

const char* const kNowMs = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";

std::string outbox_triggers(const SyncedTable& t) {
  std::string payload = "json_object(";
  std::string changed;
  for (size_t i = 0; i < t.columns.size(); ++i) {
    const Column& c = t.columns[i];
    if (i) {
      payload += ", ";
      changed += " OR ";
    }
    payload +=
        std::string("'") + c.name + "', " + (*c.json ? c.json : std::string("NEW.") + c.name);
    changed += std::string("OLD.") + c.name + " IS NOT NEW." + c.name;
  }
  payload += ")";
  std::string n = t.name, k = t.key;
  auto insert = [&](const std::string& row, const std::string& op, const std::string& body) {
    return "INSERT INTO outbox(tbl, row_id, op, payload, created_ms) VALUES('" + n + "', " + row +
           ", '" + op + "', " + body + ", " + kNowMs + ");";
  };
  std::string sql;
  sql += "CREATE TRIGGER " + n + "_outbox_insert AFTER INSERT ON " + n +
         " WHEN NEW.local_only = 0 BEGIN " + insert("NEW." + k, "upsert", payload) + " END;\n";
  sql += "CREATE TRIGGER " + n + "_outbox_update AFTER UPDATE ON " + n +
         " WHEN NEW.local_only = 0 AND (" + changed + ") BEGIN " +
         // A changed key is a delete of the old row and an insert of the new.
         "INSERT INTO outbox(tbl, row_id, op, payload, created_ms) SELECT '" + n + "', OLD." + k +
         ", 'delete', NULL, " + kNowMs + " WHERE OLD." + k + " IS NOT NEW." + k +
         " AND OLD.local_only = 0; " + insert("NEW." + k, "upsert", payload) + " END;\n";
  sql += "CREATE TRIGGER " + n + "_outbox_hide AFTER UPDATE ON " + n +
         " WHEN OLD.local_only = 0 AND NEW.local_only = 1 BEGIN " +
         insert("OLD." + k, "delete", "NULL") + " END;\n";
  sql += "CREATE TRIGGER " + n + "_outbox_delete AFTER DELETE ON " + n +
         " WHEN OLD.local_only = 0 BEGIN " + insert("OLD." + k, "delete", "NULL") + " END;\n";
  return sql;
}

const std::vector<SyncedTable>& synced_tables() {
  static const std::vector<SyncedTable> tables = {
      {"works",
       "id",
       {{"id", ""},
        {"title", ""},
        {"subtitle", ""},
        {"work_type", ""},
        {"authors", "json(NEW.authors)"},
        {"year", ""},
        {"doi", ""},
        {"arxiv_id", ""},
        {"mode", ""},
        {"mtime_ns", ""},
        {"local_only", ""},
        {"created_ms", ""},
        {"updated_ms", ""}}},
      {"folders",
       "id",
       {{"id", ""},
        {"work_id", ""},
        {"path", ""},
        {"mode", ""},
        {"mtime_ns", ""},
        {"local_only", ""},
        {"created_ms", ""}}},
      {"assets",
       "id",
       {{"id", ""},
        {"work_id", ""},
        {"folder", ""},
        {"filename", ""},
        {"sha256", ""},
        {"role", ""},
        {"mime", ""},
        {"bytes", ""},
        {"page_count", ""},
        {"mode", ""},
        {"mtime_ns", ""},
        {"local_only", ""},
        {"created_ms", ""},
        {"updated_ms", ""}}},
      {"edges",
       "id",
       {{"id", ""},
        {"from_id", ""},
        {"to_id", ""},
        {"relation", ""},
        {"folder", ""},
        {"name", ""},
        {"local_only", ""},
        {"created_ms", ""}}},
      {"blobs_meta",
       "sha256",
       {{"sha256", ""},
        {"size", ""},
        {"mime", ""},
        {"filename", ""},
        {"page_count", ""},
        {"image_width", ""},
        {"image_height", ""},
        {"pdf_metadata", "json(NEW.pdf_metadata)"},
        {"chunk_size", ""},
        {"chunk_manifest", "lower(hex(NEW.chunk_manifest))"},
        {"local_only", ""},
        {"created_ms", ""}}},
      {"device_blobs",
       "id",
       {{"id", ""},
        {"device_id", ""},
        {"sha256", ""},
        {"present", ""},
        {"health", ""},
        {"local_path", ""},
        {"mtime_ms", ""},
        {"local_only", ""}}},
  };
  return tables;
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
  created_ms INTEGER NOT NULL
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
  created_ms INTEGER NOT NULL
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
  completed_ms      INTEGER
);
CREATE INDEX replication_jobs_by_status ON replication_jobs(status, priority DESC, created_ms);

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

}  // namespace

void migrate_catalog(Db& db) {
  Tx tx(db);
  int v = db.user_version();
  if (v > kCatalogSchemaVersion)
    throw Error(EUCLEAN, "catalog " + quote(db.path().string()) + " has schema version " +
                             std::to_string(v) + ", newer than this recallfs knows (" +
                             std::to_string(kCatalogSchemaVersion) + ")");
  if (v < 1) db.exec(schema_v1());
  // Later versions: if (v < 2) db.exec(...);
  db.set_user_version(kCatalogSchemaVersion);
  tx.commit();
}

}  // namespace recall
