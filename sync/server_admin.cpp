#include "sync/server_admin.h"

#include <openssl/rand.h>

#include "base/error.h"
#include "base/sha256.h"
#include "sync/pg.h"

namespace recall {
namespace {
constexpr std::chrono::seconds kTimeout{10};
}

ServerInitReport server_init(const std::string& db,
                             const std::optional<std::string>& client_password) {
  PgConn c = PgConn::connect(db, kTimeout);
  PgTx tx(c);
  // One initialiser at a time; the others wait, then find nothing to do.
  c.exec("SELECT pg_advisory_xact_lock(727162656361)");
  c.exec(
      "CREATE SCHEMA IF NOT EXISTS recall;"
      "CREATE TABLE IF NOT EXISTS recall.schema_version(version integer NOT NULL)");
  ServerInitReport r;
  r.from_version = static_cast<int>(
      c.query("SELECT coalesce(max(version), 0) FROM recall.schema_version").int64(0, 0));
  const auto& migrations = server_migrations();
  if (r.from_version > static_cast<int>(migrations.size()))
    throw Error(EUCLEAN, "the server schema has version " + std::to_string(r.from_version) +
                             ", newer than this recallfs knows");
  for (size_t v = static_cast<size_t>(r.from_version); v < migrations.size(); ++v) {
    c.exec(migrations[v]);
    c.query("INSERT INTO recall.schema_version VALUES ($1)", {std::to_string(v + 1)});
  }
  r.to_version = static_cast<int>(migrations.size());
  if (client_password) {
    PgResult stmt = c.query("SELECT format('ALTER ROLE recall_client LOGIN PASSWORD %L', $1::text)",
                            {*client_password});
    c.exec(stmt.text(0, 0));
  }
  tx.commit();
  return r;
}

std::string server_add_user(const std::string& db, const std::string& name) {
  if (name.empty()) throw Error(EINVAL, "an account needs a name");
  PgConn c = PgConn::connect(db, kTimeout);
  try {
    return c.query("INSERT INTO recall.accounts(name) VALUES ($1) RETURNING id", {name}).text(0, 0);
  } catch (const Error& e) {
    if (e.code() == EEXIST) throw Error(EEXIST, "an account named " + quote(name) + " exists");
    throw;
  }
}

std::string server_issue_token(const std::string& db, const std::string& user,
                               const std::optional<std::string>& expires) {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) throw Error(EIO, "no randomness for a token");
  std::string token = "rfs_" + to_hex(std::span<const unsigned char>(raw, sizeof raw));
  PgConn c = PgConn::connect(db, kTimeout);
  PgResult r = c.query(
      "INSERT INTO recall.sessions(token_hash, account_id, expires_at) "
      "SELECT sha256(convert_to($1, 'UTF8')), a.id, now() + $2::interval "
      "FROM recall.accounts a WHERE a.name = $3 RETURNING account_id",
      {token, expires, user});
  if (r.rows() == 0) throw Error(ENOENT, "no account named " + quote(user));
  return token;
}

}  // namespace recall
