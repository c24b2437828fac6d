// Accounts and sync, against a real PostgreSQL on 127.0.0.1: sign-in and the
// upgrade merge, convergence of two devices (offline edits, conflicts,
// mounted devices), outages, row-level security, secrets, and a guest that
// never touches the network.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

extern char** environ;

#include "base/error.h"
#include "base/ids.h"
#include "fs/library.h"
#include "fs/tree.h"
#include "sync/credentials.h"
#include "sync/sync_engine.h"
#include "tests/mount_fixture.h"
#include "tests/pg_fixture.h"
#include "tests/test_util.h"

namespace recall {
namespace {
namespace fs = std::filesystem;
using test::PostgresServer;
using test::RunResult;
using test::TempDir;

// A device: a data directory of its own.
struct Device {
  explicit Device(std::string device_name) : name(std::move(device_name)), data(dir / "data") {
    RunResult r = cli({"init"});
    if (r.exit_code != 0) throw std::runtime_error("init: " + r.err);
  }
  RunResult cli(std::vector<std::string> args, const std::string& stdin_data = "") const {
    args.insert(args.begin(), test::recallfs_binary());
    args.push_back("--data");
    args.push_back(data.string());
    return test::run(args, {}, stdin_data);
  }
  RunResult signin(const std::string& token) const {
    return cli({"signin", "--server", PostgresServer::get().client_url(), "--token", "-",
                "--device-name", name},
               token + "\n");
  }
  // Every file of the tree as "path sha256", every folder as "path/".
  std::set<std::string> tree() const {
    auto lib = Library::open(data, {});
    Tree t(lib->catalog(), lib->blobs());
    std::set<std::string> out;
    std::function<void(const Node&, const std::string&)> walk = [&](const Node& n,
                                                                    const std::string& prefix) {
      t.list(n, [&](const std::string& shown, const Node& c) {
        if (c.kind == Node::Kind::BlobsDir) return true;
        if (c.is_dir()) {
          out.insert(prefix + shown + "/");
          walk(c, prefix + shown + "/");
        } else {
          out.insert(prefix + shown + " " + c.sha256);
        }
        return true;
      });
    };
    walk(Tree::root(), "");
    return out;
  }
  fs::path file(const std::string& filename, const std::string& content) const {
    fs::path p = dir / "src" / filename;
    fs::create_directories(p.parent_path());
    test::write_file(p, content);
    return p;
  }

  std::string name;
  TempDir dir;
  fs::path data;
};

// Syncs devices until nothing is left to push (a kept work queues itself again).
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

// Device a adds inbox/p.pdf, then both sign in to the account: both have
// the file.
void share_a_paper(Device& a, Device& b, const std::string& token) {
  ASSERT_EQ(a.cli({"add", a.file("p.pdf", "a paper").string()}).exit_code, 0);
  ASSERT_EQ(a.signin(token).exit_code, 0);
  ASSERT_EQ(b.signin(token).exit_code, 0);
}

// A new account on the test server: its session token.
std::string new_account(const std::string& name) {
  PostgresServer::get().add_user(name);
  return PostgresServer::get().issue_token(name);
}

// Signs mounted `m` in to the test server's account of `token`.
RunResult sign_in(test::MountedLibrary& m, const std::string& token) {
  return m.recallfs({"signin", "--server", PostgresServer::get().client_url(), "--token", token});
}

// Whether mounted `m` has pushed every change it has (its outbox is empty).
bool pushed_all(test::MountedLibrary& m) {
  return m.recallfs({"status", "--json"}).out.find("\"outbox_pending\": 0") != std::string::npos;
}

std::string count_rows(const std::string& table, const std::string& owner) {
  std::string n = PostgresServer::get().psql("SELECT count(*) FROM recall." + table +
                                             " WHERE owner_id = '" + owner + "' AND NOT deleted");
  while (!n.empty() && n.back() == '\n') n.pop_back();
  return n;
}

TEST(Sync, ServerInitIsIdempotentAndVersioned) {
  RECALL_REQUIRE_POSTGRES();
  auto r = test::run(
      {test::recallfs_binary(), "server", "init", "--db", PostgresServer::get().admin_url()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("(already)"), std::string::npos) << r.out;
  EXPECT_EQ(PostgresServer::get().psql("SELECT max(version) FROM recall.schema_version"), "3\n");
  // Every table is forced under row-level security, and the client role cannot bypass it.
  EXPECT_EQ(PostgresServer::get().psql(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'recall' AND c.relkind = 'r' AND c.relname NOT IN "
                "('accounts', 'sessions', 'schema_version') AND NOT (c.relrowsecurity AND "
                "c.relforcerowsecurity)"),
            "0\n");
  EXPECT_EQ(PostgresServer::get().psql(
                "SELECT rolbypassrls FROM pg_roles WHERE rolname = 'recall_client'"),
            "f\n");
}

TEST(Sync, SignInMergesALibraryIntoTheAccountWithoutDuplicates) {
  RECALL_REQUIRE_POSTGRES();
  PostgresServer& pg = PostgresServer::get();
  std::string owner = pg.add_user("merge-user");
  std::string token = pg.issue_token("merge-user");
  Device a("laptop"), b("desktop");
  std::mt19937_64 rng(4);
  std::string shared = test::random_bytes(rng, 30000), only_b = test::random_bytes(rng, 20000);
  ASSERT_EQ(a.cli({"add", a.file("paper.pdf", shared).string(), "--work", "Attention"}).exit_code,
            0);
  ASSERT_EQ(b.cli({"add", b.file("paper.pdf", shared).string(), "--work", "Attention"}).exit_code,
            0);
  ASSERT_EQ(b.cli({"add", b.file("notes.txt", only_b).string(), "--work", "Attention"}).exit_code,
            0);
  ASSERT_EQ(b.cli({"add", b.file("inbox.txt", "inbox file").string()}).exit_code, 0);

  RunResult ra = a.signin(token);
  ASSERT_EQ(ra.exit_code, 0) << ra.err;
  EXPECT_NE(ra.out.find("signed in as merge-user"), std::string::npos) << ra.out;
  RunResult rb = b.signin(token);
  ASSERT_EQ(rb.exit_code, 0) << rb.err;
  converge({&a, &b});

  // One work, three assets: the paper both had is one asset.
  EXPECT_EQ(count_rows("works", owner), "1");
  EXPECT_EQ(count_rows("assets", owner), "3");
  EXPECT_EQ(count_rows("blobs_meta", owner), "3");
  EXPECT_EQ(count_rows("devices", owner), "2");
  EXPECT_EQ(a.tree(), b.tree());
  EXPECT_EQ(a.tree().count("works/Attention/paper.pdf " + test::sha256_of(shared)), 1u);
  // The files b added are known on a, but their bytes are not here yet.
  auto cat = a.cli({"cat", "works/Attention/notes.txt"});
  EXPECT_EQ(cat.exit_code, 74);
  EXPECT_NE(cat.err.find("not on this device"), std::string::npos) << cat.err;
  // Status tells who and where, never the token.
  auto status = a.cli({"status"});
  EXPECT_NE(status.out.find("merge-user"), std::string::npos) << status.out;
  EXPECT_EQ(status.out.find(token), std::string::npos);
  EXPECT_EQ(status.out.find(pg.client_password()), std::string::npos)
      << "status shows the password";
  struct stat st;
  ASSERT_EQ(::stat(credentials_path(a.data).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// Random offline edits on two devices, then sync: both end with one tree.
TEST(Sync, RandomOfflineEditsOnTwoDevicesConverge) {
  RECALL_REQUIRE_POSTGRES();
  PostgresServer& pg = PostgresServer::get();
  for (uint64_t seed : {1, 2, 3}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::string user = "random-" + std::to_string(seed);
    pg.add_user(user);
    std::string token = pg.issue_token(user);
    Device a("a"), b("b");
    ASSERT_EQ(a.signin(token).exit_code, 0);
    ASSERT_EQ(b.signin(token).exit_code, 0);
    std::mt19937_64 rng(seed);
    const char* titles[] = {"Alpha", "Beta", "Gamma"};
    const char* names[] = {"a.pdf", "b.pdf", "c.txt", "d.md"};
    for (int round = 0; round < 3; ++round) {
      for (Device* d : {&a, &b}) {
        auto lib = Library::open(d->data, {});
        Catalog& cat = lib->catalog();
        for (int i = 0; i < 15; ++i) {
          std::vector<Asset> assets;
          cat.for_each_asset([&](const Asset& x) {
            assets.push_back(x);
            return true;
          });
          std::vector<Work> works;
          cat.list_works([&](const WorkEntry& e) {
            works.push_back(e.work);
            return true;
          });
          switch (rng() % 7) {
            case 0:
              if (works.size() < 4) cat.create_work(titles[rng() % 3]);
              break;
            case 1:
            case 2: {
              Place p;
              if (!works.empty() && rng() % 3) p.work_id = works[rng() % works.size()].id;
              fs::path f = d->file("x", test::random_bytes(rng, 100 + rng() % 2000));
              lib->add_file(f, p, std::string(names[rng() % 4]));
              break;
            }
            case 3:
              if (!assets.empty()) {
                const Asset& x = assets[rng() % assets.size()];
                cat.move_asset(x.id, Place{x.work_id, x.folder}, names[rng() % 4]);
              }
              break;
            case 4:
              if (!assets.empty()) {
                const Asset& x = assets[rng() % assets.size()];
                auto e = cat.lookup(Place{x.work_id, x.folder}, x.filename);
                for (const auto& entry : e)
                  if (entry.kind == FolderEntry::Kind::Asset && entry.asset->id == x.id) {
                    cat.remove_name(entry);
                    break;
                  }
              }
              break;
            case 5:
              if (!assets.empty()) {  // an edit in place
                const Asset& x = assets[rng() % assets.size()];
                PutResult put = [&] {
                  std::istringstream in(test::random_bytes(rng, 500));
                  return lib->blobs().put(in);
                }();
                cat.set_asset_content(x.id, Library::blob_meta(put, x.filename));
              }
              break;
            default:
              if (!works.empty())
                cat.rename_work(works[rng() % works.size()].id, titles[rng() % 3]);
          }
        }
      }
      converge({&a, &b});
      ASSERT_EQ(a.tree(), b.tree()) << "after round " << round;
    }
    EXPECT_FALSE(a.tree().empty());
  }
}

TEST(Sync, ConflictsAreDeterministicAndLoseNoContent) {
  RECALL_REQUIRE_POSTGRES();
  PostgresServer& pg = PostgresServer::get();
  pg.add_user("conflicts");
  std::string token = pg.issue_token("conflicts");
  Device a("a"), b("b");
  ASSERT_EQ(a.cli({"add", a.file("p.pdf", "version 1").string(), "--work", "Shared"}).exit_code, 0);
  ASSERT_EQ(a.signin(token).exit_code, 0);
  ASSERT_EQ(b.signin(token).exit_code, 0);
  ASSERT_EQ(b.tree(), a.tree());

  auto open = [](Device& d) { return Library::open(d.data, {}); };
  std::string work_id, asset_id;
  {
    auto lib = open(a);
    work_id = lib->catalog().works_titled("Shared")[0].id;
    asset_id = lib->catalog().lookup(Place{work_id, ""}, "p.pdf")[0].asset->id;
  }
  // Offline on both: the same work renamed twice; the file edited on a and
  // deleted on b; a new work with one title on each.
  {
    auto lib = open(a);
    lib->catalog().rename_work(work_id, "Renamed on A");
    std::istringstream in("version 2, edited on a");
    PutResult put = lib->blobs().put(in);
    lib->catalog().set_asset_content(asset_id, Library::blob_meta(put, "p.pdf"));
    lib->catalog().create_work("Same Title");
  }
  {
    auto lib = open(b);
    lib->catalog().rename_work(work_id, "Renamed on B");
    auto e = lib->catalog().lookup(Place{work_id, ""}, "p.pdf");
    lib->catalog().remove_name(e[0]);
    lib->catalog().create_work("Same Title");
  }
  converge({&b, &a});
  std::set<std::string> ta = a.tree(), tb = b.tree();
  EXPECT_EQ(ta, tb);
  // The edited file survived the delete, with the edit.
  bool survived = false;
  for (const auto& line : ta)
    if (line.find("p.pdf " + test::sha256_of("version 2, edited on a")) != std::string::npos)
      survived = true;
  EXPECT_TRUE(survived) << "the edited file was lost";
  // One of the renames won, the same on both; two works titled the same are both there.
  EXPECT_TRUE(ta.count("works/Renamed on A/") + ta.count("works/Renamed on B/") == 1);
  EXPECT_TRUE(ta.count("works/Same Title/") && ta.count("works/Same Title (2)/"));
}

TEST(Sync, AccountsSeeOnlyTheirOwnRows) {
  RECALL_REQUIRE_POSTGRES();
  PostgresServer& pg = PostgresServer::get();
  std::string owner_a = pg.add_user("rls-a");
  pg.add_user("rls-b");
  std::string token_a = pg.issue_token("rls-a"), token_b = pg.issue_token("rls-b");
  Device a("a"), b("b");
  ASSERT_EQ(
      a.cli({"add", a.file("secret.pdf", "a's secret").string(), "--work", "Private"}).exit_code,
      0);
  ASSERT_EQ(a.signin(token_a).exit_code, 0);
  ASSERT_EQ(b.signin(token_b).exit_code, 0);
  ASSERT_EQ(b.cli({"sync"}).exit_code, 0);
  EXPECT_EQ(b.tree().count("works/Private/"), 0u) << "b sees a's library";

  // Directly, as the client role: with b's token, none of a's rows in any table.
  auto as_client = [&](const std::string& token, const std::string& sql) {
    return test::run({"psql", pg.client_url(), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                      "-c", "SELECT set_config('recall.token', '" + token + "', false)", "-c",
                      sql});
  };
  for (const char* t : {"works", "assets", "edges", "folders", "blobs_meta", "device_blobs",
                        "devices", "replication_jobs"}) {
    RunResult r = as_client(token_b, std::string("SELECT count(*) FROM recall.") + t +
                                         " WHERE owner_id = '" + owner_a + "'");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("\n0\n"), std::string::npos) << t << ": " << r.out;
  }
  RunResult mine = as_client(token_a, "SELECT count(*) FROM recall.works");
  EXPECT_NE(mine.out.find("\n1\n"), std::string::npos) << mine.out;
  // A forged owner id is refused; so is reading the sessions.
  RunResult forged = as_client(token_b, "INSERT INTO recall.works(owner_id, id, title) VALUES ('" +
                                            owner_a + "', gen_random_uuid(), 'planted')");
  EXPECT_NE(forged.exit_code, 0);
  EXPECT_NE(forged.err.find("row-level security"), std::string::npos) << forged.err;
  RunResult sessions = as_client(token_b, "SELECT count(*) FROM recall.sessions");
  EXPECT_NE(sessions.exit_code, 0);
  // Without a token, nothing at all.
  RunResult none = test::run(
      {"psql", pg.client_url(), "-X", "-A", "-t", "-c", "SELECT count(*) FROM recall.works"});
  EXPECT_NE(none.out.find("0"), std::string::npos) << none.out;
  EXPECT_EQ(count_rows("works", owner_a), "1");
}

TEST(Sync, UnknownAndExpiredTokensAreRefusedClearly) {
  RECALL_REQUIRE_POSTGRES();
  PostgresServer& pg = PostgresServer::get();
  pg.add_user("expiring");
  std::string expired = pg.issue_token("expiring", "1 millisecond");
  Device d("d");
  for (const std::string& token : {std::string("rfs_made_up_token"), expired}) {
    RunResult r = d.signin(token);
    EXPECT_EQ(r.exit_code, 77) << r.err;
    EXPECT_NE(r.err.find("refused this library's session token"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find(token), std::string::npos) << "the token appears in an error";
    EXPECT_FALSE(fs::exists(credentials_path(d.data))) << "a refused token was stored";
  }
  // A wrong server password: a clear error that does not show it.
  RunResult bad = d.cli(
      {"signin", "--server",
       "postgresql://recall_client:wrong-pw@127.0.0.1:" + std::to_string(pg.port()) + "/recall",
       "--token", "x"});
  EXPECT_EQ(bad.exit_code, 77) << bad.err;
  EXPECT_EQ(bad.err.find("wrong-pw"), std::string::npos) << bad.err;
}

TEST(Sync, AGuestOpensNoSocketAtAll) {
  RECALL_REQUIRE_FUSE();
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a network namespace";
  TempDir dir;
  fs::create_directories(dir / "mnt");
  test::write_file(dir / "f.txt", "offline");
  // In an empty network namespace, under strace: mount, copy, list, status, unmount.
  std::string script =
      "set -e; R=\"$0\"; D=\"$1\"; M=\"$2\"; "
      "$R init --data $D; $R mount $M --data $D -f & "
      "for i in $(seq 1 200); do mountpoint -q $M && break; sleep 0.05; done; "  // poll
      "cp \"$3\" $M/inbox/; ls $M/inbox; $R status --data $D; $R add --data $D \"$3\"; "
      "$R unmount $M; wait";
  RunResult r =
      test::run({"unshare", "-n", "strace", "-f", "-qq", "-e", "trace=socket", "-o",
                 (dir / "trace").string(), "/bin/bash", "-c", script, test::recallfs_binary(),
                 (dir / "data").string(), (dir / "mnt").string(), (dir / "f.txt").string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("f.txt"), std::string::npos) << r.out;
  std::string trace = test::read_file(dir / "trace");
  EXPECT_EQ(trace.find("AF_INET"), std::string::npos) << trace;
}

// Two mounted devices of one account: a file copied into one shows up in
// the other's folder.
TEST(Sync, MountedDevicesSeeEachOthersChanges) {
  RECALL_REQUIRE_FUSE();
  RECALL_REQUIRE_POSTGRES();
  PostgresServer& pg = PostgresServer::get();
  pg.add_user("mounted");
  std::string token = pg.issue_token("mounted");
  test::MountedLibrary a, b;
  for (auto* m : {&a, &b}) {
    RunResult r = m->recallfs({"signin", "--server", pg.client_url(), "--token", token});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  // b lists its folders first: the kernel keeps those listings cached, and
  // a pull must drop them (new names, an empty new work, names gone).
  auto names = [](const fs::path& dir) {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
    return out;
  };
  ASSERT_EQ(names(b / "inbox"), std::set<std::string>{});
  ASSERT_EQ(names(b / "works"), std::set<std::string>{});
  test::write_file(a / "inbox/from-a.txt", "written on a");
  ASSERT_EQ(::mkdir((a / "works/Shared").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((a / "works/Empty").c_str(), 0755), 0);
  test::write_file(a / "works/Shared/paper.pdf", "a paper");
  EXPECT_TRUE(test::eventually([&] {
    return names(b / "inbox") == std::set<std::string>{"from-a.txt"} &&
           names(b / "works") == std::set<std::string>{"Empty", "Shared"};
  })) << "b's cached listings do not show a's new file and works";
  EXPECT_TRUE(
      test::eventually([&] { return fs::exists(b / "inbox/from-a.txt"); }, std::chrono::seconds(2)))
      << "b did not see a's file within 2 s";
  EXPECT_TRUE(test::eventually([&] { return fs::exists(b / "works/Shared/paper.pdf"); }));
  struct stat st;
  ASSERT_EQ(::stat((b / "inbox/from-a.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 12);
  EXPECT_EQ(st.st_blocks, 0) << "bytes that are not here take no blocks";
  auto local = b.shell("getfattr --only-values -n user.recall.local inbox/from-a.txt");
  EXPECT_EQ(local.out, "0");
  EXPECT_EQ(::open((b / "inbox/from-a.txt").c_str(), O_RDONLY), -1);
  EXPECT_EQ(errno, EIO) << "reading bytes that are not here";
  // And back: b renames it, a sees the new name.
  // The kernel keeps attributes for 10 s and names for 1 s; a pull
  // invalidates what it changes, so old names go within seconds (a knows
  // from-a.txt: it wrote it; b has just looked at paper.pdf and works/Shared).
  const auto soon = std::chrono::seconds(4);
  ASSERT_EQ(::rename((b / "inbox/from-a.txt").c_str(), (b / "inbox/renamed-on-b.txt").c_str()), 0);
  EXPECT_TRUE(test::eventually([&] { return fs::exists(a / "inbox/renamed-on-b.txt"); }));
  EXPECT_TRUE(test::eventually([&] { return !fs::exists(a / "inbox/from-a.txt"); }, soon))
      << "a still shows the name b renamed away";
  EXPECT_TRUE(test::eventually(
      [&] { return names(a / "inbox") == std::set<std::string>{"renamed-on-b.txt"}; }, soon))
      << "a's listing of inbox/ is stale";
  EXPECT_EQ(test::read_file(a / "inbox/renamed-on-b.txt"), "written on a");
  ASSERT_EQ(::stat((b / "works/Shared/paper.pdf").c_str(), &st), 0);
  ASSERT_EQ(::unlink((a / "works/Shared/paper.pdf").c_str()), 0);
  EXPECT_TRUE(test::eventually([&] { return !fs::exists(b / "works/Shared/paper.pdf"); }, soon))
      << "b still shows a file a deleted";
  EXPECT_TRUE(test::eventually([&] { return names(b / "works/Shared").empty(); }, soon))
      << "b's listing still shows a file a deleted";
  ASSERT_EQ(::rename((a / "works/Shared").c_str(), (a / "works/Renamed").c_str()), 0);
  EXPECT_TRUE(test::eventually([&] { return fs::exists(b / "works/Renamed"); }));
  EXPECT_TRUE(test::eventually([&] { return !fs::exists(b / "works/Shared"); }, soon))
      << "b still shows a work by its old title";
  EXPECT_TRUE(test::eventually(
      [&] {
        return names(b / "works") == std::set<std::string>{"Empty", "Renamed"};
      },
      soon))
      << "b's listing of works/ is stale";
  // A new empty work on its own: nothing but its row says b's listing of
  // works/ is stale.
  ASSERT_EQ(::mkdir((a / "works/Later").c_str(), 0755), 0);
  EXPECT_TRUE(test::eventually([&] {
    return names(b / "works") == std::set<std::string>{"Empty", "Later", "Renamed"};
  })) << "b's listing of works/ lacks a new empty work";
  // The token is in no log.
  for (auto* m : {&a, &b}) {
    std::string log = test::read_file(m->data() / "recallfs.log");
    EXPECT_EQ(log.find(token), std::string::npos);
  }
}

TEST(Sync, AServerOutageLosesNothingAndTheMountKeepsWorking) {
  RECALL_REQUIRE_FUSE();
  RECALL_REQUIRE_POSTGRES();
  PostgresServer& pg = PostgresServer::get();
  std::string owner = pg.add_user("outage");
  std::string token = pg.issue_token("outage");
  test::MountedLibrary a;
  ASSERT_EQ(sign_in(a, token).exit_code, 0);
  for (int i = 0; i < 20; ++i)
    test::write_file(a / ("inbox/before-" + std::to_string(i)), "x" + std::to_string(i));
  pg.stop();
  // The mount keeps working while the server is away.
  for (int i = 0; i < 20; ++i)
    test::write_file(a / ("inbox/during-" + std::to_string(i)), "y" + std::to_string(i));
  EXPECT_EQ(test::read_file(a / "inbox/during-7"), "y7");
  EXPECT_TRUE(test::eventually([&] {
    return a.recallfs({"status"}).out.find("error") != std::string::npos;
  })) << "status does not show the outage";
  pg.start();
  ASSERT_TRUE(pg.ok());
  EXPECT_TRUE(test::eventually([&] { return count_rows("assets", owner) == "40"; },
                               std::chrono::seconds(30)))
      << count_rows("assets", owner);
  EXPECT_TRUE(test::eventually([&] {
    return a.recallfs({"status", "--json"}).out.find("\"outbox_pending\": 0") != std::string::npos;
  }));
  EXPECT_EQ(count_rows("assets", owner), "40") << "rows doubled or lost";
}

// The same folder made on two devices before they synced: two rows claim
// one place. Before, the second device's pull failed on the place's
// uniqueness at every try, and nothing synced any more.
TEST(Sync, AFolderMadeOnTwoDevicesBeforeTheySyncedIsOneFolder) {
  RECALL_REQUIRE_POSTGRES();
  PostgresServer& pg = PostgresServer::get();
  std::string owner = pg.add_user("same-folder");
  std::string token = pg.issue_token("same-folder");
  Device a("a"), b("b");
  ASSERT_EQ(a.cli({"add", a.file("p.pdf", "a paper").string(), "--work", "W"}).exit_code, 0);
  ASSERT_EQ(a.signin(token).exit_code, 0);
  ASSERT_EQ(b.signin(token).exit_code, 0);
  std::string work_id = Library::open(a.data, {})->catalog().works_titled("W")[0].id;
  for (Device* d : {&a, &b}) {
    auto lib = Library::open(d->data, {});
    lib->catalog().create_folder(Place{work_id, ""}, "notes");
    lib->catalog().create_folder(Place{work_id, "notes"}, d->name == "a" ? "from-a" : "from-b");
  }
  converge({&a, &b});
  EXPECT_EQ(a.tree(), b.tree());
  EXPECT_TRUE(a.tree().contains("works/W/notes/from-a/") &&
              a.tree().contains("works/W/notes/from-b/"));
  EXPECT_EQ(pg.psql("SELECT count(*) FROM recall.folders WHERE owner_id = '" + owner +
                    "' AND path = 'notes' AND NOT deleted"),
            "1\n");
  // And syncing goes on.
  ASSERT_EQ(b.cli({"add", b.file("q.pdf", "later").string(), "--work", "W"}).exit_code, 0);
  converge({&b, &a});
  EXPECT_EQ(a.tree(), b.tree());
}

// A change the server did not take (a newer change made elsewhere wins)
// while this device skipped that change in a pull (its own was waiting to
// be pushed): the pushed row is read back, and the device shows what the
// server kept. Before, it never saw the other change, and the devices
// differed for good.
TEST(Sync, AChangeTheServerDidNotTakeIsReadBack) {
  RECALL_REQUIRE_POSTGRES();
  std::string token = new_account("read-back");
  Device a("a"), b("b");
  ASSERT_EQ(a.cli({"add", a.file("p.pdf", "a paper").string()}).exit_code, 0);
  ASSERT_EQ(a.signin(token).exit_code, 0);
  ASSERT_EQ(b.signin(token).exit_code, 0);
  auto rename = [](Device& d, const std::string& from, const std::string& to) {
    auto lib = Library::open(d.data, {});
    auto e = lib->catalog().lookup(Place{}, from);
    ASSERT_EQ(e.size(), 1u);
    lib->catalog().move_asset(e[0].asset->id, Place{}, to);
  };
  rename(a, "p.pdf", "renamed-on-a.pdf");       // first, offline
  for (int64_t t = now_ms(); now_ms() == t;) {  // b's rename in a later millisecond: newer
  }
  rename(b, "p.pdf", "renamed-on-b.pdf");
  ASSERT_EQ(b.cli({"sync"}).exit_code, 0);
  auto lib = Library::open(a.data, {});
  SyncEngine engine(*lib, *load_credentials(a.data));
  Catalog::ApplyReport first = engine.pull();
  EXPECT_EQ(first.pending, 1u) << "b's rename was not skipped: the test tests nothing";
  engine.push();  // a's rename: not taken (b's is newer)
  engine.pull();
  const std::string sha = test::sha256_of("a paper");
  EXPECT_TRUE(a.tree().contains("inbox/renamed-on-b.pdf " + sha));
  EXPECT_EQ(a.tree(), b.tree());
}

// A file removed on one device and renamed on another before they synced,
// in either order: the removal wins (a rename must not bring back a file
// whose bytes the removing device may have dropped); an edit of its content
// would win over the removal (ConflictsAreDeterministicAndLoseNoContent).
TEST(Sync, AFileRemovedOnOneDeviceAndRenamedOnAnotherIsRemovedOnBoth) {
  RECALL_REQUIRE_POSTGRES();
  PostgresServer& pg = PostgresServer::get();
  for (bool remover_first : {true, false}) {
    SCOPED_TRACE(remover_first ? "the removal pushed first" : "the rename pushed first");
    std::string account = std::string("removed-renamed-") + (remover_first ? "1" : "2");
    pg.add_user(account);
    std::string token = pg.issue_token(account);
    Device a("a"), b("b");
    ASSERT_NO_FATAL_FAILURE(share_a_paper(a, b, token));
    {
      auto lib = Library::open(a.data, {});
      lib->catalog().remove_name(lib->catalog().lookup(Place{}, "p.pdf").at(0));
    }
    {
      auto lib = Library::open(b.data, {});
      auto e = lib->catalog().lookup(Place{}, "p.pdf").at(0);
      lib->catalog().move_asset(e.asset->id, Place{}, "renamed.pdf");
    }
    if (remover_first)
      converge({&a, &b});
    else
      converge({&b, &a});
    EXPECT_EQ(a.tree(), b.tree());
    for (const std::string& entry : a.tree())
      EXPECT_EQ(entry.find(".pdf"), std::string::npos) << entry;
  }
}

// A file removed on one device and linked into a work on another before
// they synced (`rm` and `ln`): the removal takes the link with it on every
// device, in either push order, and sync goes on. Before, the server kept
// the link to a removed file, and every device's pull failed on it for good
// (a foreign key), so nothing synced any more.
TEST(Sync, ALinkMadeToAFileRemovedElsewhereGoesWithIt) {
  RECALL_REQUIRE_POSTGRES();
  for (bool remover_first : {true, false}) {
    SCOPED_TRACE(remover_first ? "the removal pushed first" : "the link pushed first");
    std::string token = new_account(std::string("removed-linked-") + (remover_first ? "1" : "2"));
    Device a("a"), b("b");
    ASSERT_NO_FATAL_FAILURE(share_a_paper(a, b, token));
    {
      auto lib = Library::open(a.data, {});
      lib->catalog().remove_name(lib->catalog().lookup(Place{}, "p.pdf").at(0));
    }
    {
      auto lib = Library::open(b.data, {});
      Work w = lib->catalog().create_work("W");
      auto e = lib->catalog().lookup(Place{}, "p.pdf").at(0);
      lib->catalog().link_asset(e.asset->id, Place{w.id, ""}, "p.pdf");
    }
    if (remover_first)
      converge({&a, &b});
    else
      converge({&b, &a});
    // Sync goes on: a file added afterwards reaches the other device.
    ASSERT_EQ(b.cli({"add", b.file("later.txt", "added later").string()}).exit_code, 0);
    converge({&b, &a});
    const std::set<std::string> want = {"inbox/", "works/", "works/W/",
                                        "inbox/later.txt " + test::sha256_of("added later")};
    EXPECT_EQ(a.tree(), want);
    EXPECT_EQ(b.tree(), want);
  }
}

// A linked file removed on one device (both its names) while another
// edited its content: the edit brings the file back (a removal applies to
// the content it saw), with its link: the editing device keeps the links
// removed in the same pull as the file and pushes them again. Before, the
// file came back in its first place only, its link lost on every device.
TEST(Sync, AFileAnEditBringsBackKeepsItsLinks) {
  RECALL_REQUIRE_POSTGRES();
  std::string token = new_account("edited-removed-linked");
  Device a("a"), b("b");
  ASSERT_NO_FATAL_FAILURE(share_a_paper(a, b, token));
  {  // the link, made on a and synced to b
    auto lib = Library::open(a.data, {});
    Work w = lib->catalog().create_work("W");
    auto e = lib->catalog().lookup(Place{}, "p.pdf").at(0);
    lib->catalog().link_asset(e.asset->id, Place{w.id, ""}, "linked.pdf");
  }
  converge({&a, &b});
  ASSERT_TRUE(b.tree().contains("works/W/linked.pdf " + test::sha256_of("a paper")));
  {  // a removes the file (both its names); b, not knowing, edits it
    auto lib = Library::open(a.data, {});
    Catalog& cat = lib->catalog();
    cat.remove_name(cat.lookup(Place{cat.works_titled("W").at(0).id, ""}, "linked.pdf").at(0));
    cat.remove_name(cat.lookup(Place{}, "p.pdf").at(0));
  }
  {
    auto lib = Library::open(b.data, {});
    std::istringstream in("the paper, edited on b");
    PutResult put = lib->blobs().put(in);
    lib->catalog().set_asset_content(lib->catalog().lookup(Place{}, "p.pdf").at(0).asset->id,
                                     Library::blob_meta(put, "p.pdf"));
  }
  converge({&a, &b});
  const std::string edited = test::sha256_of("the paper, edited on b");
  const std::set<std::string> want = {"inbox/", "works/", "works/W/", "inbox/p.pdf " + edited,
                                      "works/W/linked.pdf " + edited};
  EXPECT_EQ(b.tree(), want);
  EXPECT_EQ(a.tree(), want);
}

// A folder made again (removed, then made anew: another row, a larger id)
// where another device still has the old row: that device first meets the
// new row at the old one's place, where the old one (smaller id) stays,
// and only then the old one's removal. The new row must not be lost: it is
// read back at the next pull. Before, that device ended with no folder at
// all, and the files in it were shown nowhere.
TEST(Sync, AFolderMadeAgainIsNotLostWhereTheOldOneStillWas) {
  RECALL_REQUIRE_POSTGRES();
  std::string token = new_account("folder-made-again");
  Device a("a"), b("b");
  std::string work;
  {
    auto lib = Library::open(a.data, {});
    work = lib->catalog().create_work("W").id;
    lib->catalog().create_folder(Place{work, ""}, "notes");
  }
  ASSERT_EQ(a.signin(token).exit_code, 0);
  ASSERT_EQ(b.signin(token).exit_code, 0);
  ASSERT_TRUE(b.tree().contains("works/W/notes/"));
  {
    auto lib = Library::open(a.data, {});
    Catalog& cat = lib->catalog();
    cat.delete_folder(cat.get_folder(Place{work, "notes"})->id);
    cat.create_folder(Place{work, ""}, "notes");
  }
  converge({&a, &b});
  EXPECT_EQ(a.tree(), b.tree());
  EXPECT_TRUE(b.tree().contains("works/W/notes/")) << "b lost the folder";
}

// A file removed, or given other content, on another device: once this
// device has pulled that, the bytes it kept for the file go (nothing here
// names them any more). Before, they stayed for good.
TEST(Sync, BytesNoFileHasAfterAPullAreFreed) {
  RECALL_REQUIRE_FUSE();
  RECALL_REQUIRE_POSTGRES();
  std::string token = new_account("pulled-away");
  test::MountedLibrary a;
  ASSERT_EQ(sign_in(a, token).exit_code, 0);
  test::write_file(a / "inbox/removed.txt", "removed on b");
  test::write_file(a / "inbox/edited.txt", "edited on b");
  auto object = [&](const std::string& content) {
    std::string sha = test::sha256_of(content);
    return a.data() / "cas/objects" / sha.substr(0, 2) / sha;
  };
  ASSERT_TRUE(fs::exists(object("removed on b")) && fs::exists(object("edited on b")));
  ASSERT_TRUE(test::eventually([&] { return pushed_all(a); }));
  Device b("b");
  ASSERT_EQ(b.signin(token).exit_code, 0);
  {
    auto lib = Library::open(b.data, {});
    lib->catalog().remove_name(lib->catalog().lookup(Place{}, "removed.txt").at(0));
    std::istringstream in("the new content, made on b");
    PutResult put = lib->blobs().put(in);
    lib->catalog().set_asset_content(lib->catalog().lookup(Place{}, "edited.txt").at(0).asset->id,
                                     Library::blob_meta(put, "edited.txt"));
  }
  ASSERT_EQ(b.cli({"sync"}).exit_code, 0);
  EXPECT_TRUE(test::eventually([&] {
    return !fs::exists(a / "inbox/removed.txt") && !fs::exists(object("removed on b")) &&
           !fs::exists(object("edited on b"));
  })) << "a keeps bytes no file has";
  EXPECT_TRUE(fs::exists(a / "inbox/edited.txt"));
  test::RunResult verify = a.recallfs({"verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
}

// The last holder of some bytes drops them (the file was removed there)
// while another device, which does not hold them, moves them into another
// file (`mv src dst`, before it synced). Whichever reaches the server first
// wins, under one lock: here the drop, so the move is not taken and dst
// keeps its content everywhere. Before, dst named bytes no device had.
TEST(Sync, BytesMovedElsewhereWhileTheirLastHolderDropsThemAreNeverNamedByNobody) {
  RECALL_REQUIRE_FUSE();
  RECALL_REQUIRE_POSTGRES();
  std::string token = new_account("moved-and-dropped");
  test::MountedLibrary b;  // the holder
  ASSERT_EQ(sign_in(b, token).exit_code, 0);
  test::write_file(b / "inbox/src.txt", "bytes only b has");
  test::write_file(b / "inbox/dst.txt", "what dst held");
  const std::string moved = test::sha256_of("bytes only b has");
  const std::string kept = test::sha256_of("what dst held");
  ASSERT_TRUE(test::eventually([&] { return pushed_all(b); }));
  Device a("a");
  ASSERT_EQ(a.signin(token).exit_code, 0);
  {  // a: mv src.txt dst.txt, as the mount does it (dst keeps its id, takes src's content)
    auto lib = Library::open(a.data, {});
    Catalog& cat = lib->catalog();
    FolderEntry src = cat.lookup(Place{}, "src.txt").at(0);
    FolderEntry dst = cat.lookup(Place{}, "dst.txt").at(0);
    std::optional<BlobMeta> meta = cat.get_blob(moved);
    ASSERT_TRUE(meta);
    cat.batch([&] {
      cat.set_asset_content(dst.asset->id, *meta, std::nullopt, /*bytes_here=*/false);
      cat.remove_name(src);
    });
  }
  ASSERT_EQ(::unlink((b / "inbox/src.txt").c_str()), 0);
  const fs::path object = b.data() / "cas/objects" / moved.substr(0, 2) / moved;
  ASSERT_TRUE(test::eventually([&] { return !fs::exists(object); }))
      << "b did not drop the bytes of the file it removed";
  ASSERT_EQ(a.cli({"sync"}).exit_code, 0);  // the move is not taken, and read back
  EXPECT_TRUE(a.tree().contains("inbox/dst.txt " + kept)) << "dst names bytes nobody has";
  EXPECT_FALSE(a.tree().contains("inbox/src.txt " + moved));
  EXPECT_TRUE(test::eventually([&] { return !fs::exists(b / "inbox/src.txt"); }));
  EXPECT_EQ(test::read_file(b / "inbox/dst.txt"), "what dst held");
}

// `mv x y` on a device that never had x's bytes (they are on another
// device only): y takes x's content, and this device must not say it holds
// those bytes. Before, it did (device_blobs present), and the server then
// took rows naming them after their real holder dropped them: files no
// device could read.
TEST(Sync, ASaveOverAFileWithBytesFromElsewhereDoesNotClaimThem) {
  RECALL_REQUIRE_FUSE();
  RECALL_REQUIRE_POSTGRES();
  PostgresServer& pg = PostgresServer::get();
  std::string token = new_account("saved-over-elsewhere");
  test::MountedLibrary a, b;
  ASSERT_EQ(sign_in(a, token).exit_code, 0);
  test::write_file(a / "inbox/x.txt", "bytes only a has");
  test::write_file(a / "inbox/y.txt", "what y held");
  ASSERT_TRUE(test::eventually([&] { return pushed_all(a); }));
  ASSERT_EQ(sign_in(b, token).exit_code, 0);
  ASSERT_TRUE(test::eventually([&] { return fs::exists(b / "inbox/x.txt"); }));
  const std::string moved = test::sha256_of("bytes only a has");
  ASSERT_FALSE(fs::exists(b.data() / "cas/objects" / moved.substr(0, 2) / moved));

  fs::rename(b / "inbox/x.txt", b / "inbox/y.txt");
  ASSERT_TRUE(test::eventually([&] { return pushed_all(b); }));
  std::string b_id = b.catalog()->device_id();
  for (const DeviceBlob& h : b.catalog()->holders(moved))
    EXPECT_FALSE(h.device_id == b_id && h.present) << "b says it holds bytes it never had";
  EXPECT_EQ(pg.psql("SELECT count(*) FROM recall.device_blobs WHERE sha256 = '" + moved +
                    "' AND device_id = '" + b_id + "' AND present = 1 AND NOT deleted"),
            "0\n");
  // a pulls the rename in its own time; its y.txt then reads x's bytes.
  auto a_y = [&]() -> std::string {
    try {
      return test::read_file(a / "inbox/y.txt");
    } catch (const std::exception& e) {
      return e.what();
    }
  };
  EXPECT_TRUE(test::eventually([&] {
    return !fs::exists(a / "inbox/x.txt") && a_y() == "bytes only a has";
  })) << "a's y.txt: "
      << a_y();
}

// A file edited and then removed before its device synced: the removal
// names the edited content, which the server never saw, and still applies
// (the server's content is older). Before, the server kept the row, and
// the removed file came back at the next pull.
TEST(Sync, AFileEditedThenRemovedBeforeASyncStaysRemoved) {
  RECALL_REQUIRE_POSTGRES();
  PostgresServer& pg = PostgresServer::get();
  std::string token = new_account("edited-then-removed");
  Device a("a");
  ASSERT_EQ(a.signin(token).exit_code, 0);
  ASSERT_EQ(a.cli({"add", a.file("x.txt", "version 1").string()}).exit_code, 0);
  ASSERT_EQ(a.cli({"sync"}).exit_code, 0);
  std::string id;
  {
    auto lib = Library::open(a.data, {});
    Catalog& cat = lib->catalog();
    id = cat.lookup(Place{}, "x.txt").at(0).asset->id;
    std::istringstream in("version 2");
    PutResult put = lib->blobs().put(in);
    cat.set_asset_content(id, Library::blob_meta(put, "x.txt"));
    cat.remove_name(cat.lookup(Place{}, "x.txt").at(0));
  }
  ASSERT_EQ(a.cli({"sync"}).exit_code, 0);
  EXPECT_EQ(pg.psql("SELECT deleted FROM recall.assets WHERE id = '" + id + "'"), "t\n");
  ASSERT_EQ(a.cli({"sync"}).exit_code, 0);
  EXPECT_EQ(a.tree(), (std::set<std::string>{"inbox/", "works/"})) << "the removed file came back";
}

// A work removed on one device (empty there) while a file was added to it
// on another, in both push orders: the work stays (a removal is not taken
// while something lives in the work; a file pushed into a removed work
// brings it back), and both devices end with the file in it. Before, the
// server could keep a live file in a removed work, which a device with
// nothing in that work could never show (its pull could not apply it).
TEST(Sync, AWorkRemovedWhileAFileWasAddedToItElsewhereStaysWithTheFile) {
  RECALL_REQUIRE_POSTGRES();
  PostgresServer& pg = PostgresServer::get();
  for (bool remove_first : {false, true}) {
    SCOPED_TRACE(remove_first ? "the removal pushed first" : "the file pushed first");
    std::string token = new_account(remove_first ? "work-removed-first" : "file-added-first");
    Device a("a"), b("b");
    ASSERT_EQ(a.signin(token).exit_code, 0);
    std::string work;
    {
      auto lib = Library::open(a.data, {});
      work = lib->catalog().create_work("Shared").id;
    }
    ASSERT_EQ(a.cli({"sync"}).exit_code, 0);
    ASSERT_EQ(b.signin(token).exit_code, 0);
    ASSERT_TRUE(b.tree().contains("works/Shared/"));
    {
      auto lib = Library::open(a.data, {});
      lib->catalog().delete_work(work);  // rmdir works/Shared on a
    }
    RunResult add = b.cli({"add", b.file("f.txt", "added on b").string(), "--work", "Shared"});
    ASSERT_EQ(add.exit_code, 0) << add.err;
    const std::string file = "works/Shared/f.txt " + test::sha256_of("added on b");
    auto work_removed = [&] {
      return pg.psql("SELECT deleted FROM recall.works WHERE id = '" + work + "'");
    };
    if (remove_first) {
      ASSERT_EQ(a.cli({"sync"}).exit_code, 0);
      ASSERT_EQ(work_removed(), "t\n");
      ASSERT_EQ(b.cli({"sync"}).exit_code, 0);
      EXPECT_EQ(work_removed(), "f\n") << "the file's push did not bring its work back";
    } else {
      ASSERT_EQ(b.cli({"sync"}).exit_code, 0);
      ASSERT_EQ(a.cli({"sync"}).exit_code, 0);
      EXPECT_EQ(work_removed(), "f\n") << "a work with a file in it was removed";
    }
    ASSERT_EQ(a.cli({"sync"}).exit_code, 0);
    EXPECT_TRUE(a.tree().contains(file)) << "a does not show the file b added";
    converge({&a, &b});
    EXPECT_EQ(a.tree(), b.tree());
  }
}

// Two transactions that lock the same rows in opposite orders deadlock, and
// the server aborts one. Here a push is the one aborted (another session
// holds the second row it writes and then waits for the first): the push
// is tried again at once, so `recallfs sync` succeeds and both renames
// land. Before, the sync failed and waited for the worker's backoff.
TEST(Sync, APushAbortedByADeadlockIsTriedAgainAtOnce) {
  RECALL_REQUIRE_POSTGRES();
  PostgresServer& pg = PostgresServer::get();
  std::string token = new_account("deadlocked-push");
  Device a("a");
  ASSERT_EQ(a.signin(token).exit_code, 0);
  ASSERT_EQ(a.cli({"add", a.file("one.txt", "1").string()}).exit_code, 0);
  ASSERT_EQ(a.cli({"add", a.file("two.txt", "2").string()}).exit_code, 0);
  ASSERT_EQ(a.cli({"sync"}).exit_code, 0);
  std::string first, second;  // the assets' ids, in the order a push writes them
  {
    auto lib = Library::open(a.data, {});
    Catalog& cat = lib->catalog();
    std::string one = cat.lookup(Place{}, "one.txt").at(0).asset->id;
    std::string two = cat.lookup(Place{}, "two.txt").at(0).asset->id;
    first = std::min(one, two);
    second = std::max(one, two);
    cat.move_asset(one, Place{}, "one renamed.txt");
    cat.move_asset(two, Place{}, "two renamed.txt");
  }
  PgConn other = PgConn::connect(pg.admin_url(), std::chrono::seconds(5));
  // The push waits first, so its check (after 1 s) finds the cycle.
  other.exec("SET deadlock_timeout = '10s'");
  other.exec("BEGIN");
  auto touch = [&](const std::string& id) {
    other.exec("UPDATE recall.assets SET updated_ms = updated_ms WHERE id = '" + id + "'");
  };
  touch(second);
  auto sync = std::async(std::launch::async, [&] { return a.cli({"sync"}); });
  ASSERT_TRUE(test::eventually([&] {
    return pg.psql("SELECT count(*) FROM pg_locks WHERE NOT granted") != "0\n";
  })) << "the push does not wait for the row held";
  touch(first);  // waits for the push, which the server then aborts
  other.exec("COMMIT");
  RunResult r = sync.get();
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("deadlock"), std::string::npos) << "no deadlock happened: " << r.err;
  EXPECT_EQ(
      pg.psql(
          "SELECT string_agg(filename, ',' ORDER BY filename) FROM recall.assets WHERE id IN ('" +
          first + "', '" + second + "')"),
      "one renamed.txt,two renamed.txt\n");
}

// A file edited on one device and renamed on another before they synced:
// both changes land, in either push order (an asset's columns merge by
// group: content, place, attributes). Before, the row changed last won
// whole, and the edit was lost when the rename came later.
TEST(Sync, AnEditAndARenameMadeOnTwoDevicesBothLand) {
  RECALL_REQUIRE_FUSE();
  RECALL_REQUIRE_POSTGRES();
  PostgresServer& pg = PostgresServer::get();
  for (bool edit_first : {true, false}) {
    SCOPED_TRACE(edit_first ? "the edit pushed first" : "the rename pushed first");
    std::string token = new_account(edit_first ? "edit-then-rename" : "rename-then-edit");
    test::MountedLibrary a;
    ASSERT_EQ(sign_in(a, token).exit_code, 0);
    test::write_file(a / "inbox/x.txt", "version 1");
    ASSERT_TRUE(test::eventually([&] { return pushed_all(a); }));
    Device b("b");
    ASSERT_EQ(b.signin(token).exit_code, 0);
    ASSERT_TRUE(b.tree().contains("inbox/x.txt " + test::sha256_of("version 1")));

    pg.stop();  // a edits the file, b renames it, neither knowing of the other
    test::write_file(a / "inbox/x.txt", "version 2, edited on a");
    {
      auto lib = Library::open(b.data, {});
      auto e = lib->catalog().lookup(Place{}, "x.txt");
      ASSERT_EQ(e.size(), 1u);
      lib->catalog().move_asset(e[0].asset->id, Place{}, "y.txt");
    }
    pg.start();
    ASSERT_TRUE(pg.ok());
    if (edit_first) {
      ASSERT_TRUE(test::eventually([&] { return pushed_all(a); }));
    }
    ASSERT_EQ(b.cli({"sync"}).exit_code, 0);

    const std::string edited = test::sha256_of("version 2, edited on a");
    EXPECT_TRUE(test::eventually([&] { return fs::exists(a / "inbox/y.txt"); }))
        << "a does not show the rename";
    EXPECT_EQ(test::read_file(a / "inbox/y.txt"), "version 2, edited on a");
    EXPECT_FALSE(fs::exists(a / "inbox/x.txt"));
    ASSERT_TRUE(test::eventually([&] { return pushed_all(a); }));
    ASSERT_EQ(b.cli({"sync"}).exit_code, 0);
    EXPECT_EQ(b.tree(), (std::set<std::string>{"inbox/", "works/", "inbox/y.txt " + edited}));
    test::RunResult verify = a.recallfs({"verify"});
    EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  }
}

}  // namespace
}  // namespace recall

namespace recall {
namespace {

// A library of 1,000 files signs in; another, with the same files, signs in
// while being killed at random moments and run again: both end the same, and
// a third library that shares some files adds no duplicates.
TEST(Sync, TheUpgradeOfAThousandFilesIsResumable) {
  RECALL_REQUIRE_POSTGRES();
  PostgresServer& pg = PostgresServer::get();
  std::string ref_owner = pg.add_user("upgrade-ref"), kill_owner = pg.add_user("upgrade-kill");
  std::string ref_token = pg.issue_token("upgrade-ref"),
              kill_token = pg.issue_token("upgrade-kill");
  // The same 1,000 files (in 10 works) on two devices.
  auto fill = [](Device& d) {
    fs::path root = d.dir / "library";
    for (int w = 0; w < 10; ++w)
      for (int f = 0; f < 100; ++f) {
        fs::create_directories(root / ("Work " + std::to_string(w)));
        test::write_file(
            root / ("Work " + std::to_string(w)) / ("file-" + std::to_string(f) + ".txt"),
            "content " + std::to_string(w) + "/" + std::to_string(f));
      }
    for (int w = 0; w < 10; ++w) {
      RunResult r = d.cli({"add", "-r", (root / ("Work " + std::to_string(w))).string(), "--work",
                           "Work " + std::to_string(w)});
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
  };
  Device ref("reference"), victim("victim");
  fill(ref);
  fill(victim);
  ASSERT_EQ(ref.signin(ref_token).exit_code, 0);

  std::mt19937_64 rng(1000);
  for (int attempt = 0; attempt < 5; ++attempt) {
    pid_t pid;
    std::string data = victim.data.string(), url = pg.client_url();
    const char* argv[] = {"recallfs",      "signin",    "--data",  data.c_str(),
                          "--server",      url.c_str(), "--token", kill_token.c_str(),
                          "--device-name", "victim",    nullptr};
    std::string bin = test::recallfs_binary();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    ASSERT_EQ(posix_spawn(&pid, bin.c_str(), &fa, nullptr, const_cast<char**>(argv), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    // Fault injection: the kill lands at a random moment of the upgrade.
    auto fault_delay = std::chrono::microseconds(rng() % 250000);
    std::this_thread::sleep_for(fault_delay);  // not waiting until anything
    ::kill(pid, SIGKILL);
    int status;
    ::waitpid(pid, &status, 0);
  }
  RunResult finish = victim.signin(kill_token);
  ASSERT_EQ(finish.exit_code, 0) << finish.err;
  converge({&victim});
  for (const char* t : {"works", "assets", "blobs_meta", "device_blobs"})
    EXPECT_EQ(count_rows(t, kill_owner), count_rows(t, ref_owner)) << t;
  EXPECT_EQ(count_rows("assets", ref_owner), "1000");
  EXPECT_EQ(victim.tree(), ref.tree());

  // A third library shares half of those files with the reference account.
  Device third("third");
  fs::path w0 = third.dir / "w0";
  fs::create_directories(w0);
  for (int f = 0; f < 100; ++f)
    test::write_file(w0 / ("file-" + std::to_string(f) + ".txt"),
                     f < 50 ? "content 0/" + std::to_string(f) : "new " + std::to_string(f));
  ASSERT_EQ(third.cli({"add", "-r", w0.string(), "--work", "Work 0"}).exit_code, 0);
  // add -r makes a sub-folder "w0"; move its files to the work's top first.
  {
    auto lib = Library::open(third.data, {});
    auto works = lib->catalog().works_titled("Work 0");
    ASSERT_EQ(works.size(), 1u);
    lib->catalog().move_contents(Place{works[0].id, "w0"}, Place{works[0].id, ""});
    lib->catalog().delete_folder(lib->catalog().get_folder(Place{works[0].id, "w0"})->id);
  }
  ASSERT_EQ(third.signin(ref_token).exit_code, 0);
  converge({&third, &ref});
  EXPECT_EQ(count_rows("works", ref_owner), "10");
  EXPECT_EQ(count_rows("assets", ref_owner), "1050") << "the shared files were duplicated";
  EXPECT_EQ(third.tree(), ref.tree());
}

}  // namespace
}  // namespace recall

namespace recall {
namespace {

TEST(Sync, SignOutKeepsTheLibraryAndStopsSyncing) {
  RECALL_REQUIRE_POSTGRES();
  PostgresServer& pg = PostgresServer::get();
  std::string owner = pg.add_user("leaving");
  Device d("d");
  ASSERT_EQ(d.cli({"add", d.file("kept.txt", "kept").string()}).exit_code, 0);
  ASSERT_EQ(d.signin(pg.issue_token("leaving")).exit_code, 0);
  RunResult out = d.cli({"signout"});
  ASSERT_EQ(out.exit_code, 0) << out.err;
  EXPECT_FALSE(fs::exists(credentials_path(d.data)));
  ASSERT_EQ(d.cli({"add", d.file("later.txt", "after sign-out").string()}).exit_code, 0);
  EXPECT_EQ(count_rows("assets", owner), "1") << "a signed-out library pushed";
  EXPECT_EQ(d.tree().size(), 4u);  // inbox/, works/ and the two files
  RunResult status = d.cli({"status", "--json"});
  EXPECT_NE(status.out.find("\"mode\": \"guest\""), std::string::npos) << status.out;
  RunResult sync = d.cli({"sync"});
  EXPECT_NE(sync.exit_code, 0);
  EXPECT_NE(sync.err.find("guest library"), std::string::npos) << sync.err;
}

}  // namespace
}  // namespace recall
