// Accounts and sync, against a real PostgreSQL on 127.0.0.1: sign-in and the
// upgrade merge, convergence of two devices (offline edits, conflicts,
// mounted devices), outages, row-level security, secrets, and a guest that
// never touches the network. Pinned races of two devices are in
// sync_conflict_test.cpp.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
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
#include "tests/sync_fixture.h"

namespace recall {
namespace {
namespace fs = std::filesystem;
using namespace test;

TEST(Sync, ServerInitIsIdempotentAndVersioned) {
  RECALL_REQUIRE_POSTGRES();
  auto r = test::run(
      {test::recallfs_binary(), "server", "init", "--db", PostgresServer::get().admin_url()});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("(already)"), std::string::npos) << r.out;
  EXPECT_EQ(PostgresServer::get().psql("SELECT max(version) FROM recall.schema_version"), "4\n");
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
  // The folder's time moves on b too when a removes a name in it.
  auto mtime_ns = [](const fs::path& p) {
    struct stat s {};
    ::stat(p.c_str(), &s);
    return s.st_mtim.tv_sec * 1000000000LL + s.st_mtim.tv_nsec;
  };
  const int64_t shared_before = mtime_ns(b / "works/Shared");
  ASSERT_EQ(::unlink((a / "works/Shared/paper.pdf").c_str()), 0);
  EXPECT_TRUE(test::eventually([&] { return !fs::exists(b / "works/Shared/paper.pdf"); }, soon))
      << "b still shows a file a deleted";
  EXPECT_TRUE(test::eventually([&] { return mtime_ns(b / "works/Shared") > shared_before; }, soon))
      << "b's works/Shared kept its time after a name in it went";
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

// rm -r of a folder that holds a folder: before, the other device applied
// the parent's removal first, found the sub-folder still in it, kept the
// parent and pushed it back, so an empty folder came back on both.
TEST(Sync, AFolderTreeRemovedOnOneDeviceStaysRemovedOnBoth) {
  RECALL_REQUIRE_FUSE();
  RECALL_REQUIRE_POSTGRES();
  std::string token = test::new_account("rm-r");
  test::MountedLibrary a, b;
  ASSERT_EQ(sign_in(a, token).exit_code, 0);
  ASSERT_EQ(sign_in(b, token).exit_code, 0);
  ASSERT_EQ(a.shell("mkdir -p works/W/sub/deeper/deepest && echo x > works/W/sub/deeper/f.txt && "
                    "echo y > works/W/keep.txt")
                .exit_code,
            0);
  ASSERT_TRUE(test::eventually([&] { return fs::exists(b / "works/W/sub/deeper/deepest"); }));
  ASSERT_EQ(a.shell("rm -r works/W/sub").exit_code, 0);
  EXPECT_TRUE(test::eventually([&] { return !fs::exists(b / "works/W/sub"); }))
      << b.shell("find works").out;
  EXPECT_TRUE(test::eventually([&] { return pushed_all(b); }));
  ASSERT_EQ(a.recallfs({"sync"}).exit_code, 0);
  ASSERT_EQ(b.recallfs({"sync"}).exit_code, 0);
  EXPECT_FALSE(fs::exists(a / "works/W/sub")) << "the folder came back on a";
  EXPECT_FALSE(fs::exists(b / "works/W/sub")) << "the folder came back on b";
  EXPECT_TRUE(fs::exists(b / "works/W/keep.txt"));
}

// A file saved and the library unmounted at once (the laptop's lid shut):
// the unmount pushes what waits instead of leaving it for the next mount.
TEST(Sync, AnUnmountPushesTheChangesMadeJustBeforeIt) {
  RECALL_REQUIRE_FUSE();
  RECALL_REQUIRE_POSTGRES();
  PostgresServer& pg = PostgresServer::get();
  pg.add_user("lid");
  std::string token = pg.issue_token("lid");
  test::MountedLibrary a, b;
  for (auto* m : {&a, &b}) {
    RunResult r = sign_in(*m, token);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  test::write_file(a / "inbox/saved-at-the-last-moment.txt", "just in time");
  a.unmount();
  EXPECT_TRUE(pushed_all(a)) << "a's unmount left its change in the outbox";
  EXPECT_TRUE(test::eventually([&] {
    return fs::exists(b / "inbox/saved-at-the-last-moment.txt");
  })) << "b never saw the file a saved just before its unmount";
  // (Its bytes stayed on a, which is not serving now: the row is what moved.)
  EXPECT_EQ(fs::file_size(b / "inbox/saved-at-the-last-moment.txt"), 12u);
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

// Signed out, then in to another account: the whole library joins that
// account and the account's own rows come here. Before, only what changed
// since the sign-out was pushed (a file whose work the account never got)
// and nothing the account had before was pulled: "in sync", both ways
// wrong. Signing in again to the same account merges what was made
// meanwhile, as a first sign-in does (works by title).
TEST(Sync, SigningInToAnotherAccountBringsTheWholeLibraryBothWays) {
  RECALL_REQUIRE_POSTGRES();
  PostgresServer& pg = PostgresServer::get();
  std::string x_owner = pg.add_user("first-account");
  std::string y_owner = pg.add_user("second-account");
  std::string y_token = pg.issue_token("second-account");
  Device b("b"), y("y");
  ASSERT_EQ(b.cli({"add", b.file("p.pdf", "a paper").string(), "--work", "W"}).exit_code, 0);
  ASSERT_EQ(b.signin(pg.issue_token("first-account")).exit_code, 0);
  ASSERT_EQ(y.cli({"add", y.file("q.pdf", "y's paper").string(), "--work", "FromY"}).exit_code, 0);
  ASSERT_EQ(y.signin(y_token).exit_code, 0);

  ASSERT_EQ(b.cli({"signout"}).exit_code, 0);
  ASSERT_EQ(b.cli({"add", b.file("r.pdf", "after sign-out").string(), "--work", "W"}).exit_code, 0);
  RunResult in = b.signin(y_token);
  ASSERT_EQ(in.exit_code, 0) << in.err;
  converge({&b, &y});
  EXPECT_EQ(count_rows("works", y_owner), "2");
  EXPECT_EQ(count_rows("assets", y_owner), "3") << "b's library did not all join the account";
  EXPECT_EQ(b.tree(), y.tree());
  EXPECT_TRUE(b.tree().contains("works/FromY/")) << "b did not get the account's older rows";
  EXPECT_EQ(count_rows("assets", x_owner), "1") << "the first account changed";
  // The first account's holders are not the second's.
  EXPECT_EQ(count_rows("device_blobs", y_owner), "3");

  // Out and in again to the same account, a work of the same title made on
  // each meanwhile: one work.
  ASSERT_EQ(b.cli({"signout"}).exit_code, 0);
  ASSERT_EQ(b.cli({"add", b.file("s.pdf", "b's share").string(), "--work", "Shared"}).exit_code, 0);
  ASSERT_EQ(y.cli({"add", y.file("t.pdf", "y's share").string(), "--work", "Shared"}).exit_code, 0);
  ASSERT_EQ(y.cli({"sync"}).exit_code, 0);
  ASSERT_EQ(b.signin(y_token).exit_code, 0);
  converge({&b, &y});
  EXPECT_EQ(Library::open(b.data, {})->catalog().works_titled("Shared").size(), 1u);
  EXPECT_EQ(b.tree(), y.tree());
}

}  // namespace
}  // namespace recall
