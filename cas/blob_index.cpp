#include "cas/blob_index.h"

#include "base/error.h"

namespace recall {
namespace {

// Each entry upgrades the schema from version i to i+1.
const char* const kMigrations[] = {
    // 0 -> 1
    R"sql(
CREATE TABLE objects(
  sha256       TEXT PRIMARY KEY,
  size         INTEGER NOT NULL,
  created_ms   INTEGER NOT NULL,
  health       TEXT NOT NULL DEFAULT 'healthy'
               CHECK (health IN ('healthy','missing','modified','relocated')),
  checked_ms   INTEGER,
  mime         TEXT,
  page_count   INTEGER,
  image_width  INTEGER,
  image_height INTEGER,
  pdf_title    TEXT,
  pdf_author   TEXT,
  chunk_size   INTEGER,
  chunk_hashes BLOB,
  used_ms      INTEGER              -- last opened: the cache evicts the least recent
) WITHOUT ROWID;
CREATE INDEX objects_health ON objects(health) WHERE health <> 'healthy';
)sql",
};
static_assert(std::size(kMigrations) == BlobIndex::kSchemaVersion);

constexpr const char* kColumns =
    "sha256, size, created_ms, health, checked_ms, mime, page_count, image_width, image_height, "
    "pdf_title, pdf_author";

BlobInfo row_to_info(const Stmt& s) {
  BlobInfo b;
  b.sha256 = s.text(0);
  b.size = static_cast<uint64_t>(s.int64(1));
  b.created_ms = s.int64(2);
  b.health = health_from_string(s.text(3));
  b.checked_ms = s.opt_int64(4);
  b.content.mime = s.text(5);
  b.content.page_count = s.opt_int64(6);
  b.content.image_width = s.opt_int64(7);
  b.content.image_height = s.opt_int64(8);
  b.content.pdf_title = s.opt_text(9);
  b.content.pdf_author = s.opt_text(10);
  return b;
}

}  // namespace

BlobIndex::BlobIndex(const std::filesystem::path& file)
    // The index can be rebuilt from objects/, so it need not fsync each
    // commit: a process crash loses nothing (the WAL is in the page cache)
    // and an unclean shutdown triggers a reconciling scan (see BlobStore).
    : db_(Db::open(file, {.create = true, .synchronous_full = false})) {
  migrate();
}

void BlobIndex::migrate() {
  std::lock_guard lock(mu_);
  Tx tx(db_);
  int v = db_.user_version();
  if (v > kSchemaVersion)
    throw Error(EUCLEAN, "index " + quote(db_.path().string()) + " has schema version " +
                             std::to_string(v) + ", newer than this recallfs knows (" +
                             std::to_string(kSchemaVersion) + ")");
  for (; v < kSchemaVersion; ++v) db_.exec(kMigrations[v]);
  db_.set_user_version(kSchemaVersion);
  tx.commit();
}

bool BlobIndex::record_present(const BlobInfo& b) {
  std::lock_guard lock(mu_);
  Stmt ins = db_.cached(
      "INSERT INTO objects(sha256, size, created_ms, health, checked_ms, mime, page_count, "
      "image_width, image_height, pdf_title, pdf_author) VALUES(?,?,?,?,?,?,?,?,?,?,?) "
      "ON CONFLICT(sha256) DO NOTHING");
  ins.bind(b.sha256, b.size, b.created_ms, to_string(b.health), b.checked_ms, b.content.mime,
           b.content.page_count, b.content.image_width, b.content.image_height, b.content.pdf_title,
           b.content.pdf_author);
  ins.run();
  if (db_.changes() > 0) return true;
  Stmt up = db_.cached(
      "UPDATE objects SET health = ?2, mime = coalesce(mime, ?3) WHERE sha256 = ?1 AND "
      "(health <> ?2 OR mime IS NULL)");
  up.bind(b.sha256, to_string(b.health), b.content.mime);
  up.run();
  return false;
}

std::optional<BlobInfo> BlobIndex::get(const std::string& sha256) {
  std::lock_guard lock(mu_);
  Stmt s = db_.cached(std::string("SELECT ") + kColumns + " FROM objects WHERE sha256 = ?");
  s.bind(sha256);
  if (!s.step()) return std::nullopt;
  return row_to_info(s);
}

void BlobIndex::set_health(const std::string& sha256, Health health,
                           std::optional<int64_t> checked_ms) {
  std::lock_guard lock(mu_);
  Stmt s = db_.cached(
      "UPDATE objects SET health = ?, checked_ms = coalesce(?, checked_ms) WHERE sha256 = ?");
  s.bind(to_string(health), checked_ms, sha256);
  s.run();
}

bool BlobIndex::erase(const std::string& sha256) {
  std::lock_guard lock(mu_);
  Stmt s = db_.cached("DELETE FROM objects WHERE sha256 = ?");
  s.bind(sha256);
  s.run();
  return db_.changes() > 0;
}

std::vector<BlobInfo> BlobIndex::page(const std::string& after, size_t limit) {
  std::lock_guard lock(mu_);
  Stmt s = db_.cached(std::string("SELECT ") + kColumns +
                      " FROM objects WHERE sha256 > ? ORDER BY sha256 LIMIT ?");
  s.bind(after, static_cast<int64_t>(limit));
  std::vector<BlobInfo> out;
  while (s.step()) out.push_back(row_to_info(s));
  return out;
}

void BlobIndex::set_manifest(const std::string& sha256, const ChunkManifest& m) {
  std::lock_guard lock(mu_);
  Stmt s = db_.cached("UPDATE objects SET chunk_size = ?, chunk_hashes = ? WHERE sha256 = ?");
  std::vector<unsigned char> packed = m.packed();
  s.bind(m.chunk_size, std::span<const unsigned char>(packed), sha256);
  s.run();
}

std::optional<ChunkManifest> BlobIndex::manifest(const std::string& sha256) {
  std::lock_guard lock(mu_);
  Stmt s = db_.cached(
      "SELECT chunk_size, chunk_hashes FROM objects WHERE sha256 = ? AND chunk_size IS NOT NULL");
  s.bind(sha256);
  if (!s.step()) return std::nullopt;
  return ChunkManifest::unpack(static_cast<uint64_t>(s.int64(0)), s.blob(1));
}

void BlobIndex::set_used(const std::string& sha256, int64_t used_ms) {
  std::lock_guard lock(mu_);
  db_.cached("UPDATE objects SET used_ms = ? WHERE sha256 = ?").bind(used_ms, sha256).run();
}

std::vector<std::pair<std::string, uint64_t>> BlobIndex::by_use(size_t limit) {
  std::lock_guard lock(mu_);
  Stmt s = db_.cached(
      "SELECT sha256, size FROM objects WHERE health IN ('healthy', 'relocated') "
      "ORDER BY coalesce(used_ms, created_ms), sha256 LIMIT ?");
  s.bind(static_cast<int64_t>(limit));
  std::vector<std::pair<std::string, uint64_t>> out;
  while (s.step()) out.emplace_back(s.text(0), static_cast<uint64_t>(s.int64(1)));
  return out;
}

BlobTotals BlobIndex::totals() {
  std::lock_guard lock(mu_);
  BlobTotals t;
  Stmt s =
      db_.cached("SELECT health, count(*), coalesce(sum(size), 0) FROM objects GROUP BY health");
  while (s.step()) {
    Health h = health_from_string(s.text(0));
    auto n = static_cast<uint64_t>(s.int64(1));
    t.by_health[h] = n;
    t.objects += n;
    if (h != Health::Missing && h != Health::Modified) t.bytes += static_cast<uint64_t>(s.int64(2));
  }
  return t;
}

}  // namespace recall
