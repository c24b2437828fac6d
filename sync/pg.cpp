#include "sync/pg.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/error.h"

namespace recall {

int pg_errno(const char* sqlstate, bool connection_bad) {
  if (connection_bad) return ENOTCONN;
  if (!sqlstate) return EIO;
  std::string s(sqlstate);
  if (s.starts_with("08") || s == "57P01" || s == "57P02" || s == "57P03") return ENOTCONN;
  if (s.starts_with("28") || s == "42501") return EACCES;
  if (s == "23505") return EEXIST;
  // A deadlock, or a serialization failure: the transaction may simply be
  // run again.
  if (s == "40P01" || s == "40001") return EDEADLK;
  return EIO;
}

std::string redact_conninfo(const std::string& conninfo) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (!opts) {
    PQfreemem(err);
    return "(unparsable connection string)";
  }
  std::string out;
  for (PQconninfoOption* o = opts; o->keyword; ++o) {
    if (!o->val || !*o->val || std::strcmp(o->keyword, "password") == 0) continue;
    if (!out.empty()) out += " ";
    out += std::string(o->keyword) + "=" + o->val;
  }
  PQconninfoFree(opts);
  return out;
}

namespace {
// libpq messages end with a newline; trim it.
std::string trimmed(const char* msg) {
  std::string s = msg ? msg : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}
}  // namespace

PgConn PgConn::connect(const std::string& conninfo, std::chrono::seconds timeout,
                       const std::atomic<bool>* cancel) {
  // Keywords given this way override the string's own and never leak into
  // it. TCP keepalives after 15 s of silence, 3 probes 5 s apart: a server
  // that vanished (a network gone dark) fails a waiting statement with
  // ENOTCONN in about 30 s instead of the system's two hours.
  const char* keys[] = {"dbname",           "application_name",
                        "keepalives_idle",  "keepalives_interval",
                        "keepalives_count", nullptr};
  const char* vals[] = {conninfo.c_str(), "recallfs", "15", "5", "3", nullptr};
  PgConn c;
  c.cancel_ = cancel;
  // Opened step by step (libpq's non-blocking connect), so that `timeout`
  // and `cancel` are watched while the server does not answer.
  c.c_.reset(PQconnectStartParams(keys, vals, 1));
  if (!c.c_) throw Error(ENOMEM, "cannot allocate a PostgreSQL connection");
  PGconn* pc = c.c_.get();
  const std::string where = "cannot connect to the server (" + redact_conninfo(conninfo) + ")";
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  PostgresPollingStatusType step = PGRES_POLLING_WRITING;  // how libpq says to begin
  while (PQstatus(pc) != CONNECTION_BAD && step != PGRES_POLLING_OK &&
         step != PGRES_POLLING_FAILED) {
    if (cancel && cancel->load()) throw Error(ECANCELED, where + ": recallfs is stopping");
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      throw Error(ENOTCONN, where + ": no answer within " + std::to_string(timeout.count()) + " s");
    pollfd p{PQsocket(pc), static_cast<short>(step == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 250)));
    if (n < 0 && errno != EINTR) throw_last_errno("wait for the server");
    if (n > 0) step = PQconnectPoll(pc);
  }
  if (PQstatus(pc) != CONNECTION_OK) {
    std::string msg = trimmed(PQerrorMessage(pc));
    int code = msg.find("password authentication failed") != std::string::npos ||
                       msg.find("no pg_hba.conf entry") != std::string::npos
                   ? EACCES
                   : ENOTCONN;
    throw Error(code, where + ": " + msg);
  }
  // Non-blocking from now on: a statement is sent by send(), which watches
  // the answer timeout and `cancel` while the server does not take it.
  if (PQsetnonblocking(pc, 1) != 0)
    throw Error(ENOTCONN, where + ": " + trimmed(PQerrorMessage(pc)));
  // Server notices ("already exists, skipping") are not for the user.
  PQsetNoticeProcessor(
      c.c_.get(), [](void*, const char*) {}, nullptr);
  return c;
}

namespace {
bool failed(const PGresult* r) {
  ExecStatusType st = PQresultStatus(r);
  return st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK;
}
}  // namespace

bool PgConn::wait(short events, std::chrono::steady_clock::time_point& heard) {
  using clock = std::chrono::steady_clock;
  if (cancel_ && cancel_->load()) {
    c_.reset();
    throw Error(ECANCELED, "server: the statement was given up: recallfs is stopping");
  }
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(heard + answer_timeout_ - clock::now());
  if (left.count() <= 0) {
    c_.reset();
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.1f", static_cast<double>(answer_timeout_.count()) / 1000);
    throw Error(ETIMEDOUT,
                std::string("server: no answer for ") + secs + " s; the connection was given up");
  }
  pollfd p{PQsocket(c_.get()), events, 0};
  int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), cancel_ ? 250 : 1000)));
  if (n < 0 && errno != EINTR) throw_last_errno("wait for the server");
  if (n <= 0) return false;
  heard = clock::now();
  return true;
}

void PgConn::send() {
  auto heard = std::chrono::steady_clock::now();
  for (;;) {
    int left = PQflush(c_.get());
    if (left == 0) return;
    if (left < 0) throw Error(ENOTCONN, "server: " + trimmed(PQerrorMessage(c_.get())));
    // The server may answer (an error) before it takes all: read that too.
    if (wait(POLLOUT | POLLIN, heard) && !PQconsumeInput(c_.get()))
      throw Error(ENOTCONN, "server: " + trimmed(PQerrorMessage(c_.get())));
  }
}

PgResult PgConn::answer() {
  send();
  PGconn* c = c_.get();
  PgResult kept;
  auto heard = std::chrono::steady_clock::now();
  for (;;) {
    while (PQisBusy(c)) {
      if (wait(POLLIN, heard) && !PQconsumeInput(c))
        throw Error(ENOTCONN, "server: " + trimmed(PQerrorMessage(c)));
    }
    PGresult* r = PQgetResult(c);
    if (!r) break;
    PgResult got(r);
    if (!kept.get() || !failed(kept.get())) kept = std::move(got);
  }
  if (!kept.get()) throw Error(ENOTCONN, "server: " + trimmed(PQerrorMessage(c)));
  if (failed(kept.get())) {
    bool bad = PQstatus(c) != CONNECTION_OK;
    const char* msg = PQresultErrorMessage(kept.get());
    throw Error(pg_errno(PQresultErrorField(kept.get(), PG_DIAG_SQLSTATE), bad),
                "server: " + trimmed(msg && *msg ? msg : PQerrorMessage(c)));
  }
  return kept;
}

void PgConn::exec(const std::string& sql) {
  if (!c_ || !PQsendQuery(c_.get(), sql.c_str()))
    throw Error(ENOTCONN, "server: " + trimmed(c_ ? PQerrorMessage(c_.get()) : "not connected"));
  answer();
}

PgResult PgConn::query(const std::string& sql, const PgParams& params) {
  std::vector<const char*> values;
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  if (!c_ || !PQsendQueryParams(c_.get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                                values.data(), nullptr, nullptr, 0))
    throw Error(ENOTCONN, "server: " + trimmed(c_ ? PQerrorMessage(c_.get()) : "not connected"));
  return answer();
}

std::vector<std::string> PgConn::notifications() {
  std::vector<std::string> out;
  if (!PQconsumeInput(c_.get()))
    throw Error(ENOTCONN, "server: " + trimmed(PQerrorMessage(c_.get())));
  while (PGnotify* n = PQnotifies(c_.get())) {
    out.emplace_back(n->relname);
    PQfreemem(n);
  }
  return out;
}

PgTx::PgTx(PgConn& c, const char* begin) : c_(c) { c_.exec(begin); }
PgTx::~PgTx() {
  if (!done_ && c_.ok()) {
    try {
      c_.exec("ROLLBACK");
    } catch (...) {
    }
  }
}
void PgTx::commit() {
  c_.exec("COMMIT");
  done_ = true;
}

}  // namespace recall
