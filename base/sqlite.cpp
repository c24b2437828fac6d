#include "base/sqlite.h"

#include <sqlite3.h>

#include <cerrno>
#include <utility>

#include "base/error.h"

namespace recall {

int sqlite_errno(int rc, int system_errno) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return EBUSY;
    case SQLITE_FULL:
      return ENOSPC;
    case SQLITE_IOERR:
      return system_errno ? system_errno : EIO;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return EUCLEAN;
    case SQLITE_CANTOPEN:
      return system_errno ? system_errno : ENOENT;
    case SQLITE_READONLY:
      return EROFS;
    case SQLITE_NOMEM:
      return ENOMEM;
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return EACCES;
    case SQLITE_CONSTRAINT:
      switch (rc) {
        case SQLITE_CONSTRAINT_PRIMARYKEY:
        case SQLITE_CONSTRAINT_UNIQUE:
          return EEXIST;
        case SQLITE_CONSTRAINT_FOREIGNKEY:
          return ENOENT;
        default:
          return EINVAL;
      }
    default:
      return EIO;
  }
}

// ---- Stmt ----------------------------------------------------------------

namespace {
[[noreturn]] void stmt_fail(sqlite3_stmt* s, int /*rc*/, std::string_view what) {
  sqlite3* db = sqlite3_db_handle(s);
  std::string msg(what);
  msg += ": ";
  msg += sqlite3_errmsg(db);
  const char* sql = sqlite3_sql(s);
  if (sql) {
    std::string_view q(sql);
    msg += " [";
    msg += q.substr(0, 80);
    msg += q.size() > 80 ? "...]" : "]";
  }
  throw Error(sqlite_errno(sqlite3_extended_errcode(db), sqlite3_system_errno(db)), std::move(msg));
}
}  // namespace

Stmt::Stmt(Stmt&& o) noexcept
    : stmt_(std::exchange(o.stmt_, nullptr)), in_use_(std::exchange(o.in_use_, nullptr)) {}

Stmt& Stmt::operator=(Stmt&& o) noexcept {
  if (this != &o) {
    this->~Stmt();
    stmt_ = std::exchange(o.stmt_, nullptr);
    in_use_ = std::exchange(o.in_use_, nullptr);
  }
  return *this;
}

Stmt::~Stmt() {
  if (!stmt_) return;
  if (in_use_) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    *in_use_ = false;
  } else {
    sqlite3_finalize(stmt_);
  }
  stmt_ = nullptr;
}

Stmt& Stmt::bind_one(int i, std::nullopt_t) {
  int rc = sqlite3_bind_null(stmt_, i);
  if (rc != SQLITE_OK) stmt_fail(stmt_, rc, "bind");
  return *this;
}
Stmt& Stmt::bind_one(int i, int64_t v) {
  int rc = sqlite3_bind_int64(stmt_, i, v);
  if (rc != SQLITE_OK) stmt_fail(stmt_, rc, "bind");
  return *this;
}
Stmt& Stmt::bind_one(int i, double v) {
  int rc = sqlite3_bind_double(stmt_, i, v);
  if (rc != SQLITE_OK) stmt_fail(stmt_, rc, "bind");
  return *this;
}
Stmt& Stmt::bind_one(int i, std::string_view v) {
  int rc = sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  if (rc != SQLITE_OK) stmt_fail(stmt_, rc, "bind");
  return *this;
}
Stmt& Stmt::bind_one(int i, std::span<const unsigned char> blob) {
  int rc = sqlite3_bind_blob64(stmt_, i, blob.data(), blob.size(), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) stmt_fail(stmt_, rc, "bind");
  return *this;
}

bool Stmt::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  stmt_fail(stmt_, rc, "sqlite");
}

void Stmt::run() {
  while (step()) {
  }
}

bool Stmt::is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
int64_t Stmt::int64(int col) const { return sqlite3_column_int64(stmt_, col); }
double Stmt::real(int col) const { return sqlite3_column_double(stmt_, col); }
std::string Stmt::text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}
std::optional<int64_t> Stmt::opt_int64(int col) const {
  if (is_null(col)) return std::nullopt;
  return int64(col);
}
std::optional<std::string> Stmt::opt_text(int col) const {
  if (is_null(col)) return std::nullopt;
  return text(col);
}
std::vector<unsigned char> Stmt::blob(int col) const {
  const auto* p = static_cast<const unsigned char*>(sqlite3_column_blob(stmt_, col));
  int n = sqlite3_column_bytes(stmt_, col);
  return p ? std::vector<unsigned char>(p, p + n) : std::vector<unsigned char>();
}

// ---- Db ------------------------------------------------------------------

void Db::Close::operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
void Db::Finalize::operator()(sqlite3_stmt* s) const noexcept { sqlite3_finalize(s); }

Db::Db(Db&&) noexcept = default;
Db& Db::operator=(Db&&) noexcept = default;
Db::~Db() {
  cache_.clear();
  if (db_ && sqlite3_get_autocommit(db_.get()) == 0)
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void Db::fail(int rc, std::string_view what) const {
  std::string msg(what);
  msg += " (" + path_.string() + "): ";
  msg += db_ ? sqlite3_errmsg(db_.get()) : sqlite3_errstr(rc);
  int ext = db_ ? sqlite3_extended_errcode(db_.get()) : rc;
  int sys = db_ ? sqlite3_system_errno(db_.get()) : 0;
  throw Error(sqlite_errno(ext, sys), std::move(msg));
}

Db Db::open(const std::filesystem::path& path, const Options& opts) {
  Db db;
  db.path_ = path;
  int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  flags |= opts.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (opts.create && !opts.read_only) flags |= SQLITE_OPEN_CREATE;
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  db.db_.reset(raw);
  if (rc != SQLITE_OK) {
    if ((rc & 0xff) == SQLITE_CANTOPEN && !std::filesystem::exists(path))
      throw Error(ENOENT, "no database at " + quote(path.string()));
    db.fail(rc, "open database");
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, opts.busy_timeout_ms);
  // Reading the schema is the first thing that fails on a file that is not a
  // database, so do it now and report EUCLEAN with the path.
  try {
    db.exec("PRAGMA foreign_keys = ON");
    db.exec("PRAGMA cache_size = -" + std::to_string(opts.cache_kib));
    if (!opts.read_only) {
      Stmt s = db.prepare("PRAGMA journal_mode = WAL");
      s.step();
      db.exec(opts.synchronous_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
    }
    db.exec("SELECT count(*) FROM sqlite_schema");
  } catch (const Error& e) {
    if (e.code() == EUCLEAN)
      throw Error(EUCLEAN, "database " + quote(path.string()) + " is corrupt or not a database");
    throw;
  }
  return db;
}

void Db::exec(std::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_.get(), s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    throw Error(sqlite_errno(sqlite3_extended_errcode(db_.get()), sqlite3_system_errno(db_.get())),
                "sqlite (" + path_.string() + "): " + msg);
  }
}

Stmt Db::prepare(std::string_view sql) {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(db_.get(), sql.data(), static_cast<int>(sql.size()), &s, nullptr);
  if (rc != SQLITE_OK) fail(rc, "prepare");
  return Stmt(s, nullptr);
}

Stmt Db::cached(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &s, nullptr);
    if (rc != SQLITE_OK) fail(rc, "prepare");
    Cached c;
    c.stmt.reset(s);
    it = cache_.emplace(sql, std::move(c)).first;
  }
  if (*it->second.in_use) return prepare(sql);
  *it->second.in_use = true;
  return Stmt(it->second.stmt.get(), it->second.in_use.get());
}

int64_t Db::changes() const { return sqlite3_changes64(db_.get()); }
int64_t Db::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_.get()); }

int Db::user_version() {
  Stmt s = prepare("PRAGMA user_version");
  s.step();
  return static_cast<int>(s.int64(0));
}

void Db::set_user_version(int v) { exec("PRAGMA user_version = " + std::to_string(v)); }

// ---- Tx ------------------------------------------------------------------

Tx::Tx(Db& db, Kind kind) : db_(db) { db_.exec(kind == Immediate ? "BEGIN IMMEDIATE" : "BEGIN"); }

Tx::~Tx() {
  if (!done_) sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void Tx::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

}  // namespace recall
