// Thin RAII layer over SQLite: Db (a connection), Stmt (a prepared
// statement), Tx (a transaction that rolls back unless committed).
//
// Thread safety: a Db and its statements belong to one thread at a time; the
// owner (BlobIndex, Catalog) serialises access. Failures throw recall::Error
// with an errno chosen from the SQLite result code (see sqlite_errno()).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace recall {

// The errno that best describes an SQLite (extended) result code.
int sqlite_errno(int sqlite_code, int system_errno);

class Stmt {
 public:
  Stmt() = default;
  // `in_use` is null for an owned statement and points at the cache's flag
  // for a cached one.
  Stmt(sqlite3_stmt* s, bool* in_use) : stmt_(s), in_use_(in_use) {}
  Stmt(Stmt&& o) noexcept;
  Stmt& operator=(Stmt&& o) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  // Finalizes an owned statement; resets a cached one for reuse.
  ~Stmt();

  // Binds parameters 1..n in order.
  template <typename... Args>
  Stmt& bind(const Args&... args) {
    int i = 1;
    (bind_one(i++, args), ...);
    return *this;
  }
  Stmt& bind_one(int i, std::nullopt_t);
  Stmt& bind_one(int i, int64_t v);
  Stmt& bind_one(int i, int v) { return bind_one(i, static_cast<int64_t>(v)); }
  Stmt& bind_one(int i, uint64_t v) { return bind_one(i, static_cast<int64_t>(v)); }
  Stmt& bind_one(int i, uint32_t v) { return bind_one(i, static_cast<int64_t>(v)); }
  Stmt& bind_one(int i, bool v) { return bind_one(i, static_cast<int64_t>(v)); }
  Stmt& bind_one(int i, double v);
  Stmt& bind_one(int i, std::string_view v);
  Stmt& bind_one(int i, const std::string& v) { return bind_one(i, std::string_view(v)); }
  Stmt& bind_one(int i, const char* v) { return bind_one(i, std::string_view(v)); }
  Stmt& bind_one(int i, std::span<const unsigned char> blob);
  template <typename T>
  Stmt& bind_one(int i, const std::optional<T>& v) {
    return v ? bind_one(i, *v) : bind_one(i, std::nullopt);
  }

  // Advances: true when a row is available, false when done.
  bool step();
  // Steps a statement that returns no rows.
  void run();

  bool is_null(int col) const;
  int64_t int64(int col) const;
  double real(int col) const;
  std::string text(int col) const;
  std::optional<int64_t> opt_int64(int col) const;
  std::optional<std::string> opt_text(int col) const;
  std::vector<unsigned char> blob(int col) const;

 private:
  sqlite3_stmt* stmt_ = nullptr;
  bool* in_use_ = nullptr;
};

class Db {
 public:
  struct Options {
    bool create = false;           // create the file when missing
    bool read_only = false;        // open read-only (no WAL checkpointing)
    bool synchronous_full = true;  // fsync the WAL at every commit
    int busy_timeout_ms = 10000;
    int cache_kib = 4096;  // page cache of this connection
  };

  // Opens (or creates) a database in WAL mode with foreign keys on. Throws
  // ENOENT when missing and !create, EUCLEAN when the file is not a database.
  static Db open(const std::filesystem::path& path, const Options& opts);

  Db() = default;
  Db(Db&&) noexcept;
  Db& operator=(Db&&) noexcept;
  ~Db();

  // Runs one or more statements that return no rows.
  void exec(std::string_view sql);
  // A statement prepared once per connection and reused (reset on release).
  // If the cached copy is checked out already (nested use), a fresh one is
  // prepared instead.
  Stmt cached(const std::string& sql);
  // A fresh statement owned by the caller.
  Stmt prepare(std::string_view sql);

  int64_t changes() const;
  int64_t last_insert_rowid() const;
  int user_version();
  void set_user_version(int v);
  const std::filesystem::path& path() const { return path_; }
  sqlite3* handle() const { return db_.get(); }

  // Throws the Error for result code `rc` on this connection.
  [[noreturn]] void fail(int rc, std::string_view what) const;

 private:
  struct Close {
    void operator()(sqlite3* db) const noexcept;
  };
  struct Finalize {
    void operator()(sqlite3_stmt* s) const noexcept;
  };
  struct Cached {
    std::unique_ptr<sqlite3_stmt, Finalize> stmt;
    std::unique_ptr<bool> in_use = std::make_unique<bool>(false);
  };
  std::filesystem::path path_;
  std::unique_ptr<sqlite3, Close> db_;
  // Declared after db_ so statements are finalized before the connection closes.
  std::unordered_map<std::string, Cached> cache_;
};

// A transaction. BEGIN IMMEDIATE takes the write lock up front, so a writer
// never fails half-way with SQLITE_BUSY on upgrade.
class Tx {
 public:
  enum Kind { Deferred, Immediate };
  explicit Tx(Db& db, Kind kind = Immediate);
  Tx(const Tx&) = delete;
  Tx& operator=(const Tx&) = delete;
  ~Tx();
  void commit();

 private:
  Db& db_;
  bool done_ = false;
};

}  // namespace recall
