// The operator's side of the server: creating and upgrading the schema
// (sync/sql/, versioned), accounts and session tokens. These run with a
// connection that owns the schema (not as recall_client).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace recall {

// Migration i (0-based) takes the schema from version i to i + 1.
const std::vector<std::string>& server_migrations();

struct ServerInitReport {
  int from_version = 0;
  int to_version = 0;
};

// Creates or upgrades the schema; idempotent, and safe against concurrent
// runs (an advisory lock). With `client_password`, the recall_client role
// may log in with it.
ServerInitReport server_init(const std::string& db,
                             const std::optional<std::string>& client_password);

// Creates an account; returns its id. EEXIST when the name is taken.
std::string server_add_user(const std::string& db, const std::string& name);

// Issues a session token for an account (a Postgres interval such as
// "30 days" for `expires`, or none). Returns the token, which is stored only
// as its SHA-256 and cannot be shown again. ENOENT for an unknown account.
std::string server_issue_token(const std::string& db, const std::string& user,
                               const std::optional<std::string>& expires);

}  // namespace recall
