#include "tests/sync_fixture.h"

namespace recall::test {

void converge(std::vector<Device*> devices) {
  for (int round = 0; round < 4; ++round) {
    bool quiet = true;
    for (Device* d : devices) {
      RunResult r = d->cli({"sync"});
      ASSERT_EQ(r.exit_code, 0) << d->name << ": " << r.err;
      if (r.out.find("pushed 0 ") == std::string::npos) quiet = false;
    }
    if (quiet && round > 0) return;
  }
}

void share_a_paper(Device& a, Device& b, const std::string& token) {
  ASSERT_EQ(a.cli({"add", a.file("p.pdf", "a paper").string()}).exit_code, 0);
  ASSERT_EQ(a.signin(token).exit_code, 0);
  ASSERT_EQ(b.signin(token).exit_code, 0);
}

std::string new_account(const std::string& name) {
  PostgresServer::get().add_user(name);
  return PostgresServer::get().issue_token(name);
}

RunResult sign_in(MountedLibrary& m, const std::string& token) {
  return m.recallfs({"signin", "--server", PostgresServer::get().client_url(), "--token", token});
}

bool pushed_all(MountedLibrary& m) {
  return m.recallfs({"status", "--json"}).out.find("\"outbox_pending\": 0") != std::string::npos;
}

std::string count_rows(const std::string& table, const std::string& owner) {
  std::string n = PostgresServer::get().psql("SELECT count(*) FROM recall." + table +
                                             " WHERE owner_id = '" + owner + "' AND NOT deleted");
  while (!n.empty() && n.back() == '\n') n.pop_back();
  return n;
}

}  // namespace recall::test
