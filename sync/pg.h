// Thin RAII layer over libpq: PgConn (a connection) and PgResult (a result).
//
// Every failure throws recall::Error with an errno chosen from the SQLSTATE
// or the connection state (see pg_errno()):
//   ENOTCONN     the server cannot be reached or the connection broke
//   ETIMEDOUT    the server was silent for the answer timeout in the middle
//                of a statement (a hung server, or a proxy in front of one
//                that still acknowledges TCP): the connection is closed
//   EACCES       refused: authentication, privileges, row-level security
//   EEXIST       a unique constraint
//   EDEADLK      a deadlock or serialization failure: run the transaction again
//   EIO          anything else
// Messages never contain the connection string (it may hold a password).
// With cancel_when, a statement the server does not answer can be given up
// (ECANCELED): an unmount does not wait for a server that hangs.
//
// Not thread-safe: a PgConn belongs to one thread at a time.
#pragma once

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace recall {

class PgResult {
 public:
  PgResult() = default;
  explicit PgResult(PGresult* r) : r_(r) {}
  PGresult* get() const { return r_.get(); }
  int rows() const { return PQntuples(r_.get()); }
  int cols() const { return PQnfields(r_.get()); }
  bool is_null(int row, int col) const { return PQgetisnull(r_.get(), row, col); }
  std::string text(int row, int col) const { return PQgetvalue(r_.get(), row, col); }
  std::optional<std::string> opt_text(int row, int col) const {
    if (is_null(row, col)) return std::nullopt;
    return text(row, col);
  }
  int64_t int64(int row, int col) const { return std::stoll(PQgetvalue(r_.get(), row, col)); }

 private:
  struct Clear {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
  };
  std::unique_ptr<PGresult, Clear> r_;
};

using PgParams = std::vector<std::optional<std::string>>;

class PgConn {
 public:
  // Connects (libpq URI or key=value string) within `timeout`. ENOTCONN
  // when the server cannot be reached or does not answer in time, EACCES
  // when it refuses, ECANCELED when `*cancel` turns true first (within a
  // quarter of a second). The connection's statements then watch `cancel`
  // too (see cancel_when).
  static PgConn connect(const std::string& conninfo, std::chrono::seconds timeout,
                        const std::atomic<bool>* cancel = nullptr);

  PgConn() = default;
  PGconn* get() const { return c_.get(); }
  bool ok() const { return c_ && PQstatus(c_.get()) == CONNECTION_OK; }

  // From now on, a statement under way when `*flag` turns true is given up
  // within a quarter of a second: ECANCELED, and the connection is closed
  // (the server rolls back what was not committed). `flag` must outlive the
  // connection, or be replaced (nullptr: never).
  void cancel_when(const std::atomic<bool>* flag) { cancel_ = flag; }
  // How long a statement may go without a byte from the server (sending or
  // waiting for its answer) before it is given up with ETIMEDOUT and the
  // connection closed. TCP keepalives do not catch a server process that
  // hangs: its kernel still answers them.
  static constexpr std::chrono::milliseconds kAnswerTimeout{120'000};
  void set_answer_timeout(std::chrono::milliseconds t) { answer_timeout_ = t; }

  // Runs statements that return no rows (several, separated by ';').
  void exec(const std::string& sql);
  // Runs one statement with text parameters ($1, $2, ...).
  PgResult query(const std::string& sql, const PgParams& params = {});

  // LISTEN support: the socket to poll, and the channels notified since.
  int socket() const { return PQsocket(c_.get()); }
  std::vector<std::string> notifications();

 private:
  struct Finish {
    void operator()(PGconn* c) const noexcept { PQfinish(c); }
  };
  // The answer to what was sent, as PQexec gives it: the first result that
  // failed, else the last.
  PgResult answer();
  // Sends what libpq holds (the connection is non-blocking).
  void send();
  // Waits for `events` on the socket, up to `heard` + the answer timeout
  // (then ETIMEDOUT, and the connection is closed) or a cancel. True when
  // the socket is ready; `heard` moves to now.
  bool wait(short events, std::chrono::steady_clock::time_point& heard);
  std::unique_ptr<PGconn, Finish> c_;
  const std::atomic<bool>* cancel_ = nullptr;
  std::chrono::milliseconds answer_timeout_ = kAnswerTimeout;
};

// The errno for a SQLSTATE (5 characters) or a broken connection.
int pg_errno(const char* sqlstate, bool connection_bad);

// A connection string with any password removed, for messages and status.
std::string redact_conninfo(const std::string& conninfo);

// RAII transaction: BEGIN at construction, ROLLBACK unless committed.
class PgTx {
 public:
  explicit PgTx(PgConn& c, const char* begin = "BEGIN");
  ~PgTx();
  void commit();

 private:
  PgConn& c_;
  bool done_ = false;
};

}  // namespace recall
