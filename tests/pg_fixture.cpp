#include "tests/pg_fixture.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include "tests/test_util.h"

namespace recall::test {
namespace fs = std::filesystem;

namespace {

int free_port() {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);
  return ntohs(a.sin_port);
}

std::string pg_bin() {
  std::string best;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec))
    if (fs::exists(e.path() / "bin/pg_ctl") && e.path().string() > best) best = e.path().string();
  return best.empty() ? "" : best + "/bin";
}

// Runs a PostgreSQL program as the postgres user when we are root (the
// server refuses to run as root).
RunResult as_pg(std::vector<std::string> argv) {
  if (::geteuid() == 0) argv.insert(argv.begin(), {"runuser", "-u", "postgres", "--"});
  return run(argv);
}

}  // namespace

PostgresServer& PostgresServer::get() {
  static PostgresServer server;
  return server;
}

PostgresServer::PostgresServer() {
  bin_ = pg_bin();
  if (bin_.empty()) {
    why_not_ = "no PostgreSQL server installed (/usr/lib/postgresql/*/bin)";
    return;
  }
  char tmpl[] = "/tmp/recallfs-pg-XXXXXX";
  if (!::mkdtemp(tmpl)) {
    why_not_ = "mkdtemp failed";
    return;
  }
  dir_ = tmpl;
  if (::geteuid() == 0) run({"chown", "postgres:postgres", dir_});
  port_ = free_port();
  auto init = as_pg({bin_ + "/initdb", "-D", dir_ + "/data", "-A", "trust", "-U", "postgres",
                     "--no-sync", "-E", "UTF8"});
  if (init.exit_code != 0) {
    why_not_ = "initdb failed: " + init.err;
    return;
  }
  // The superuser only over the local socket and loopback; everyone else
  // with a password.
  write_file(dir_ + "/data/pg_hba.conf",
             "local all all trust\n"
             "host all postgres 127.0.0.1/32 trust\n"
             "host all all 127.0.0.1/32 scram-sha-256\n");
  if (::geteuid() == 0) run({"chown", "postgres:postgres", dir_ + "/data/pg_hba.conf"});
  start();
  if (!ok_) return;
  auto created = run({"psql", "-h", "127.0.0.1", "-p", std::to_string(port_), "-U", "postgres",
                      "-X", "-q", "-c", "CREATE DATABASE recall"});
  if (created.exit_code != 0) {
    ok_ = false;
    why_not_ = "createdb failed: " + created.err;
    return;
  }
  auto init_schema = run({recallfs_binary(), "server", "init", "--db", admin_url(),
                          "--client-password", client_password()});
  if (init_schema.exit_code != 0) {
    ok_ = false;
    why_not_ = "recallfs server init failed: " + init_schema.err;
  }
}

PostgresServer::~PostgresServer() {
  if (dir_.empty()) return;
  stop();
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void PostgresServer::start() {
  auto r = as_pg({bin_ + "/pg_ctl", "-D", dir_ + "/data", "-l", dir_ + "/log", "-w", "-o",
                  "-p " + std::to_string(port_) + " -c listen_addresses=127.0.0.1 -k " + dir_ +
                      " -c fsync=off -c max_connections=200",
                  "start"});
  ok_ = r.exit_code == 0;
  if (!ok_) why_not_ = "pg_ctl start failed: " + r.out + r.err;
}

void PostgresServer::stop() {
  as_pg({bin_ + "/pg_ctl", "-D", dir_ + "/data", "-m", "fast", "-w", "stop"});
}

std::string PostgresServer::admin_url() const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/recall";
}

std::string PostgresServer::client_url() const {
  return "postgresql://recall_client:" + client_password() + "@127.0.0.1:" + std::to_string(port_) +
         "/recall";
}

std::string PostgresServer::add_user(const std::string& name) {
  auto r = run({recallfs_binary(), "server", "add-user", name, "--db", admin_url()});
  if (r.exit_code != 0) throw std::runtime_error("add-user failed: " + r.err);
  std::string id = r.out;
  while (!id.empty() && id.back() == '\n') id.pop_back();
  return id;
}

std::string PostgresServer::issue_token(const std::string& user, const std::string& expires) {
  std::vector<std::string> argv = {recallfs_binary(), "server", "issue-token", user, "--db",
                                   admin_url()};
  if (!expires.empty()) {
    argv.push_back("--expires");
    argv.push_back(expires);
  }
  auto r = run(argv);
  if (r.exit_code != 0) throw std::runtime_error("issue-token failed: " + r.err);
  std::string t = r.out;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  return t;
}

std::string PostgresServer::psql(const std::string& sql) const {
  auto r = run({"psql", admin_url(), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql});
  if (r.exit_code != 0) throw std::runtime_error("psql failed: " + r.err);
  return r.out;
}

std::string PostgresServer::live_rows(const std::string& table, const std::string& name) const {
  return psql("SELECT count(*) FROM recall." + table +
              " t JOIN recall.accounts a ON a.id = t.owner_id WHERE a.name = '" + name +
              "' AND NOT t.deleted");
}

}  // namespace recall::test
