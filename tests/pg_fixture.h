// A real PostgreSQL server for the sync tests: a private cluster in a temp
// directory, listening on 127.0.0.1 on a free port, started on first use and
// stopped when the test binary exits. Its schema is made by
// `recallfs server init`, and clients connect as recall_client with a
// password, as they would in production.
#pragma once

#include <string>

namespace recall::test {

class PostgresServer {
 public:
  // The one server of this test binary (started on first call); skips the
  // calling test when PostgreSQL cannot be started here.
  static PostgresServer& get();
  ~PostgresServer();

  std::string admin_url() const;   // a superuser, for server commands and checks
  std::string client_url() const;  // recall_client: what a device signs in with
  std::string client_password() const { return "client-secret-pw"; }
  int port() const { return port_; }

  // Stops and starts the server (an outage).
  void stop();
  void start();

  // An account and a session token for it (via the recallfs command).
  std::string add_user(const std::string& name);
  std::string issue_token(const std::string& user, const std::string& expires = "");
  // Runs SQL with psql as the superuser; returns its output (unaligned, no headers).
  std::string psql(const std::string& sql) const;
  // How many live (not deleted) rows of recall.`table` account `name` has,
  // as psql prints it ("1\n").
  std::string live_rows(const std::string& table, const std::string& name) const;

  bool ok() const { return ok_; }
  const std::string& why_not() const { return why_not_; }

 private:
  PostgresServer();
  std::string dir_, bin_;
  int port_ = 0;
  bool ok_ = false;
  std::string why_not_;
};

}  // namespace recall::test

// Skips the test when no PostgreSQL can be started here.
#define RECALL_REQUIRE_POSTGRES()                                                        \
  do {                                                                                   \
    if (!::recall::test::PostgresServer::get().ok())                                     \
      GTEST_SKIP() << "PostgreSQL: " << ::recall::test::PostgresServer::get().why_not(); \
  } while (0)
