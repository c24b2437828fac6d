// recallfs signin | signout | sync, and recallfs server init | add-user |
// issue-token (the operator's side, for a server of your own and the tests).
#include <unistd.h>

#include <iostream>
#include <memory>

#include "base/error.h"
#include "base/ids.h"
#include "mount-helper/cli.h"
#include "sync/credentials.h"
#include "sync/server_admin.h"
#include "sync/sync_engine.h"

namespace recall::cli {

namespace {

std::string read_secret(const std::string& value, const char* what) {
  if (value != "-") return value;
  std::string line;
  if (!std::getline(std::cin, line))
    throw Error(EINVAL, std::string("no ") + what + " on standard input");
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

std::string hostname() {
  char host[256] = "this device";
  ::gethostname(host, sizeof host - 1);
  return host;
}

void print_progress(ProgressLine& line, const SyncProgress& p) {
  std::string text = "signing in: " + p.stage;
  if (p.total) text += " " + std::to_string(p.done) + "/" + std::to_string(p.total);
  line.show(text);
}

}  // namespace

void add_sync_verbs(CLI::App& app, Common& common) {
  struct SigninArgs {
    std::string server, token, device;
  };
  auto si = std::make_shared<SigninArgs>();
  CLI::App* signin = app.add_subcommand(
      "signin", "Sign this library in to an account: push it, merge it, and keep it in sync");
  add_data_option(signin, common);
  signin->add_option("--server", si->server, "The server: a PostgreSQL connection string or URI")
      ->required();
  signin->add_option("--token", si->token, "A session token (or - to read it from standard input)")
      ->required();
  signin->add_option("--device-name", si->device, "This device's name (default: the host name)");
  signin->callback([&common, si] {
    auto lib = open_library(common);
    Credentials c;
    c.server = si->server;
    c.token = read_secret(si->token, "token");
    c.device_name = si->device.empty() ? hostname() : si->device;
    SyncEngine check(*lib, c);
    check.connect();  // refuses an unknown or expired token, before anything is stored
    SyncEngine::Account a = check.account();
    c.account_id = a.id;
    c.account_name = a.name;
    c.peer_key = check.peer_key();
    c.signed_in_ms = now_ms();
    std::optional<Credentials> old = load_credentials(lib->dir());
    if (old && old->account_id != a.id && !old->account_id.empty())
      throw Error(EINVAL, "this library is signed in to another account (" + old->account_name +
                              "); sign out first");
    SyncEngine engine(*lib, c);
    engine.prepare_sign_in(old);
    save_credentials(lib->dir(), c);
    ProgressLine line;
    engine.upgrade([&](const SyncProgress& p) { print_progress(line, p); });
    engine.pull();
    line.done();
    std::cout << "signed in as " << a.name << " on " << redact_conninfo(c.server) << " (device "
              << c.device_name << "); the library is in sync\n";
  });

  CLI::App* signout =
      app.add_subcommand("signout", "Stop syncing; the library stays on this device");
  add_data_option(signout, common);
  signout->callback([&common] {
    auto lib = open_library(common);
    remove_credentials(lib->dir());
    std::cout << "signed out; the library stays here as a guest library\n";
  });

  CLI::App* sync =
      app.add_subcommand("sync", "Push this device's changes and pull the others', now");
  add_data_option(sync, common);
  sync->callback([&common] {
    auto lib = open_library(common);
    auto creds = load_credentials(lib->dir());
    if (!creds) throw Error(EINVAL, "this is a guest library: sign in first (recallfs signin)");
    SyncEngine engine(*lib, *creds);
    try {
      engine.upgrade();
      size_t pushed = engine.push();
      Catalog::ApplyReport r = engine.pull();
      lib->catalog().erase_meta(kMetaLastError);
      std::cout << "pushed " << pushed << " changes, pulled " << r.applied << "\n";
    } catch (const Error& e) {
      lib->catalog().set_meta(kMetaLastError, e.what());
      throw;
    }
  });

  // ---- the operator's commands
  CLI::App* server = app.add_subcommand(
      "server", "Operate a recallfs server (PostgreSQL): schema, accounts, tokens");
  server->require_subcommand(1);
  struct ServerArgs {
    std::string db, client_password, name, expires;
  };
  auto sa = std::make_shared<ServerArgs>();
  CLI::App* init =
      server->add_subcommand("init", "Create or upgrade the server schema (idempotent)");
  init->add_option("--db", sa->db, "Connection string of a role that owns the database")
      ->required();
  init->add_option("--client-password", sa->client_password,
                   "Let the recall_client role log in with this password (- reads standard input)");
  init->callback([sa] {
    std::optional<std::string> pw;
    if (!sa->client_password.empty()) pw = read_secret(sa->client_password, "password");
    ServerInitReport r = server_init(sa->db, pw);
    std::cout << "server schema at version " << r.to_version
              << (r.from_version == r.to_version ? " (already)" : "") << "\n";
  });
  CLI::App* add_user = server->add_subcommand("add-user", "Create an account");
  add_user->add_option("NAME", sa->name, "The account's name")->required();
  add_user->add_option("--db", sa->db, "Connection string of a role that owns the database")
      ->required();
  add_user->callback([sa] { std::cout << server_add_user(sa->db, sa->name) << "\n"; });
  CLI::App* token =
      server->add_subcommand("issue-token", "Issue a session token for an account (printed once)");
  token->add_option("USER", sa->name, "The account's name")->required();
  token->add_option("--db", sa->db, "Connection string of a role that owns the database")
      ->required();
  token->add_option("--expires", sa->expires,
                    "Lifetime, as a PostgreSQL interval: '30 days', '12 hours'");
  token->callback([sa] {
    std::optional<std::string> exp;
    if (!sa->expires.empty()) exp = sa->expires;
    std::cout << server_issue_token(sa->db, sa->name, exp) << "\n";
  });
}

}  // namespace recall::cli
