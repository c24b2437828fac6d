// Two devices of one account changing the same things before they synced,
// against a real PostgreSQL on 127.0.0.1: each race's outcome, pinned (the
// random ones are tests/sync_stress_test.cpp). Folders made twice, changes
// the server did not take, removals against renames, links, edits, works,
// bytes a change frees or moves, deadlocks between pushes.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <future>
#include <regex>
#include <set>
#include <sstream>

#include "base/error.h"
#include "base/ids.h"
#include "fs/library.h"
#include "sync/sync_engine.h"
#include "tests/sync_fixture.h"

namespace recall {
namespace {
namespace fs = std::filesystem;
using namespace test;

// Device d's file `name` in the inbox gets `content` (an edit, as a save does).
void edit(Device& d, const std::string& name, const std::string& content) {
  auto lib = Library::open(d.data, {});
  std::istringstream in(content);
  PutResult put = lib->blobs().put(in);
  auto e = lib->catalog().lookup(Place{}, name);
  ASSERT_EQ(e.size(), 1u) << name;
  lib->catalog().set_asset_content(e[0].asset->id, Library::blob_meta(put, name));
}

// A push the server takes whose answer the device never hears (it dies
// first): its catalog is as before the push, outbox and all, and it sends
// the same rows again at its next sync.
void push_whose_answer_is_lost(Device& d) {
  const fs::path saved = d.data.parent_path() / "catalog-before-push";
  fs::remove_all(saved);
  fs::create_directories(saved);
  auto catalog_files = [](const fs::path& dir) {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().filename().string().starts_with("catalog.db")) out.push_back(e.path());
    return out;
  };
  for (const fs::path& f : catalog_files(d.data)) fs::copy_file(f, saved / f.filename());
  {
    auto lib = Library::open(d.data, {});
    SyncEngine engine(*lib, *load_credentials(d.data));
    ASSERT_GT(engine.push(), 0u);
  }
  for (const fs::path& f : catalog_files(d.data)) fs::remove(f);
  for (const fs::path& f : catalog_files(saved)) fs::copy_file(f, d.data / f.filename());
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
// the content it saw), with its link: the server brings back the links
// removed in the same transaction as the file. Before, the file came back
// in its first place only, its link lost on every device.
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

// A file's content edited on two devices before they synced: both versions
// stay. The newer edit stays in the file (last writer wins), the other goes
// into "p (conflicted copy DATE).pdf" next to it, on both devices, in either
// push order. Before, the older edit was lost without a trace. Tried too:
// edits made after seeing the other's, two edits in a row before a sync, an
// edit after a rename was pushed, one after a push before its pull, and one
// after a push whose answer was lost (sent again): none is a conflict.
TEST(Sync, AFileEditedOnTwoDevicesApartKeepsBothVersions) {
  RECALL_REQUIRE_POSTGRES();
  for (bool newer_first : {true, false}) {
    SCOPED_TRACE(newer_first ? "the newer edit pushed first" : "the older edit pushed first");
    std::string token = new_account(std::string("edited-apart-") + (newer_first ? "1" : "2"));
    Device a("a"), b("b");
    ASSERT_NO_FATAL_FAILURE(share_a_paper(a, b, token));
    // The conflicted copies in a tree, and what they hold.
    auto copies = [](const std::set<std::string>& tree) {
      std::vector<std::string> out;
      for (const std::string& line : tree)
        if (line.find("(conflicted copy ") != std::string::npos) out.push_back(line);
      return out;
    };
    ASSERT_NO_FATAL_FAILURE(edit(a, "p.pdf", "edited on a"));
    for (int64_t t = now_ms(); now_ms() == t;) {  // b's edit in a later millisecond: newer
    }
    ASSERT_NO_FATAL_FAILURE(edit(b, "p.pdf", "edited on b"));
    if (newer_first)
      converge({&b, &a});
    else
      converge({&a, &b});
    std::set<std::string> tree = a.tree();
    EXPECT_EQ(tree, b.tree());
    EXPECT_TRUE(tree.contains("inbox/p.pdf " + test::sha256_of("edited on b"))) << "the newer edit";
    std::vector<std::string> kept = copies(tree);
    ASSERT_EQ(kept.size(), 1u) << "the older edit was lost";
    EXPECT_TRUE(std::regex_match(
        kept[0], std::regex("inbox/p \\(conflicted copy \\d{4}-\\d{2}-\\d{2}\\)\\.pdf " +
                            test::sha256_of("edited on a"))))
        << kept[0];

    // Edits that saw the other's are no conflicts: a's now, b's two in a
    // row, and b's after its rename went out.
    ASSERT_NO_FATAL_FAILURE(edit(a, "p.pdf", "third, on a"));
    converge({&a, &b});
    ASSERT_NO_FATAL_FAILURE(edit(b, "p.pdf", "fourth, on b"));
    ASSERT_NO_FATAL_FAILURE(edit(b, "p.pdf", "fifth, on b"));
    converge({&b, &a});
    {
      auto lib = Library::open(b.data, {});
      auto e = lib->catalog().lookup(Place{}, "p.pdf");
      ASSERT_EQ(e.size(), 1u);
      lib->catalog().move_asset(e[0].asset->id, Place{}, "q.pdf");
    }
    converge({&b, &a});
    ASSERT_NO_FATAL_FAILURE(edit(b, "q.pdf", "sixth, on b"));
    {  // pushed, and edited again before a pull read it back
      auto lib = Library::open(b.data, {});
      SyncEngine engine(*lib, *load_credentials(b.data));
      engine.push();
    }
    ASSERT_NO_FATAL_FAILURE(edit(b, "q.pdf", "seventh, on b"));
    converge({&b, &a});
    // A push the server took but whose answer b never heard (b died first):
    // b's outbox still has it, and b sends it again after another edit.
    // Its own earlier content is no conflict.
    ASSERT_NO_FATAL_FAILURE(edit(b, "q.pdf", "eighth, on b"));
    ASSERT_NO_FATAL_FAILURE(push_whose_answer_is_lost(b));
    ASSERT_NO_FATAL_FAILURE(edit(b, "q.pdf", "ninth, on b"));
    converge({&b, &a});
    tree = a.tree();
    EXPECT_EQ(tree, b.tree());
    EXPECT_TRUE(tree.contains("inbox/q.pdf " + test::sha256_of("ninth, on b")));
    EXPECT_EQ(copies(tree), kept) << "an edit made after seeing the other's made a copy";
  }
}

// What is not an edit of a file's content made apart: a touch, or a save of
// the same bytes, on one device after the other edited the file, keeps that
// edit (before: the newer time won the content's group, bytes and all, and
// the edit was lost with no copy); a push sent again after its answer was
// lost, whose content another device has edited since, makes no copy. And
// a copy's name stays within 255 bytes, whatever the name's characters.
TEST(Sync, ATouchOrAPushSentAgainIsNoConflict) {
  RECALL_REQUIRE_POSTGRES();
  PostgresServer& pg = PostgresServer::get();
  std::string token = new_account("touch-or-resent");
  Device a("a"), b("b");
  ASSERT_NO_FATAL_FAILURE(share_a_paper(a, b, token));
  auto asset_of = [](Catalog& cat) { return cat.lookup(Place{}, "p.pdf").at(0).asset->id; };
  auto edit = [&](Device& d, const std::string& content) {
    auto lib = Library::open(d.data, {});
    std::istringstream in(content);
    PutResult put = lib->blobs().put(in);
    lib->catalog().set_asset_content(asset_of(lib->catalog()), Library::blob_meta(put, "p.pdf"));
  };
  auto later = [] {
    for (int64_t t = now_ms(); now_ms() == t;) {
    }
  };
  const std::string paper = test::sha256_of("a paper");
  ASSERT_NO_FATAL_FAILURE(edit(b, "edited on b"));
  later();
  {  // a, apart: a touch
    auto lib = Library::open(a.data, {});
    lib->catalog().set_asset_attrs(asset_of(lib->catalog()), std::nullopt, now_ns());
  }
  converge({&b, &a});
  std::set<std::string> want = {"inbox/", "works/",
                                "inbox/p.pdf " + test::sha256_of("edited on b")};
  EXPECT_EQ(a.tree(), want) << "a's touch undid b's edit";
  EXPECT_EQ(b.tree(), want);

  ASSERT_NO_FATAL_FAILURE(edit(b, "edited on b again"));
  later();
  ASSERT_NO_FATAL_FAILURE(edit(a, "edited on b"));  // a saves the bytes it has, anew
  converge({&b, &a});
  want = {"inbox/", "works/", "inbox/p.pdf " + test::sha256_of("edited on b again")};
  EXPECT_EQ(a.tree(), want) << "a's save of the same bytes undid b's edit";
  EXPECT_EQ(b.tree(), want);

  // a's push reaches the server, a dies before it hears back; b sees it,
  // edits it and pushes; then a sends its push again.
  ASSERT_NO_FATAL_FAILURE(edit(a, "edited on a"));
  ASSERT_NO_FATAL_FAILURE(push_whose_answer_is_lost(a));
  ASSERT_EQ(b.cli({"sync"}).exit_code, 0);
  ASSERT_TRUE(b.tree().contains("inbox/p.pdf " + test::sha256_of("edited on a")));
  ASSERT_NO_FATAL_FAILURE(edit(b, "edited on b, after a's"));
  converge({&b, &a});
  want = {"inbox/", "works/", "inbox/p.pdf " + test::sha256_of("edited on b, after a's")};
  EXPECT_EQ(a.tree(), want) << "a's push sent again made a copy, or undid b's edit";
  EXPECT_EQ(b.tree(), want);

  for (const char* name :
       {"notes.txt", ".bashrc", "a.tar.gz", "README",
        "\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9"}) {
    std::string got = pg.psql(std::string("SELECT recall.conflict_name('") + name + "', 0)");
    EXPECT_NE(got.find(" (conflicted copy 1970-01-01)"), std::string::npos) << name << ": " << got;
  }
  EXPECT_EQ(pg.psql("SELECT recall.conflict_name('a.tar.gz', 0)"),
            "a.tar (conflicted copy 1970-01-01).gz\n");
  EXPECT_EQ(pg.psql("SELECT recall.conflict_name('.bashrc', 0)"),
            ".bashrc (conflicted copy 1970-01-01)\n");
  // Long names, in bytes: 200 ASCII and a 16-character extension of 2-byte
  // characters; 4-byte characters throughout.
  for (const std::string name :
       {"repeat('x', 200) || '.' || repeat(chr(233), 16)",
        "repeat(chr(128512), 50) || 'x.' || repeat(chr(128512), 13)", "repeat('y', 255)"}) {
    std::string n = pg.psql("SELECT octet_length(recall.conflict_name(" + name + ", 0))");
    EXPECT_LE(std::stoi(n), 255) << name;
    EXPECT_NE(pg.psql("SELECT recall.conflict_name(" + name + ", 0) LIKE '%(conflicted copy %'"),
              "f\n")
        << name;
  }
}

// An edit made apart survives what the other device did meanwhile: a touch
// of the file, pushed first (before: the touch took the content's group by
// its newer time, and the edit then lost on time); an edit or a touch and
// then a removal, pushed after the edit (before: the removal, stamped after
// the edit it never saw, tombstoned it); `mv g p` on a device that does not
// hold g's bytes, pushed after the edit (before: such rows made no
// conflicted copy, and the edit was lost).
TEST(Sync, AnEditMadeApartSurvivesWhatTheOtherDeviceDid) {
  RECALL_REQUIRE_POSTGRES();
  auto later = [] {
    for (int64_t t = now_ms(); now_ms() == t;) {
    }
  };
  const std::string paper = test::sha256_of("a paper");
  for (const char* what : {"touch", "edit then remove", "touch then remove", "move over"}) {
    SCOPED_TRACE(what);
    const std::string w = what;
    Device a("a"), b("b");
    ASSERT_NO_FATAL_FAILURE(share_a_paper(a, b, new_account("apart-first-" + w)));
    if (w == "move over") {  // g.pdf, whose bytes a does not hold
      ASSERT_EQ(b.cli({"add", b.file("g.pdf", "g's bytes").string()}).exit_code, 0);
      converge({&b, &a});
    }
    ASSERT_NO_FATAL_FAILURE(edit(b, "p.pdf", "edited on b"));
    later();
    {
      auto lib = Library::open(a.data, {});
      Catalog& cat = lib->catalog();
      auto p = cat.lookup(Place{}, "p.pdf").at(0);
      if (w == "touch" || w == "touch then remove")
        cat.set_asset_attrs(p.asset->id, std::nullopt, now_ns());
      if (w == "edit then remove") {
        lib.reset();
        ASSERT_NO_FATAL_FAILURE(edit(a, "p.pdf", "edited on a, then removed"));
        lib = Library::open(a.data, {});
      }
      if (w.ends_with("remove"))
        lib->catalog().remove_name(lib->catalog().lookup(Place{}, "p.pdf").at(0));
      if (w == "move over") {
        Catalog& c = lib->catalog();
        auto g = c.lookup(Place{}, "g.pdf").at(0);
        ASSERT_FALSE(lib->blobs().has(g.asset->sha256)) << "a was to lack g's bytes";
        c.set_asset_content(p.asset->id, *c.get_blob(g.asset->sha256), std::nullopt, false);
        c.remove_name(g);
      }
    }
    // a's touch reaches the server first; b's edit before a's removal or move.
    if (w == "touch")
      converge({&a, &b});
    else
      converge({&b, &a});
    std::set<std::string> tree = a.tree();
    EXPECT_EQ(tree, b.tree());
    const std::string edited = test::sha256_of("edited on b");
    bool kept = false;
    for (const std::string& line : tree) kept = kept || line.ends_with(" " + edited);
    EXPECT_TRUE(kept) << "b's edit was lost";
    if (w == "move over") {
      EXPECT_TRUE(tree.contains("inbox/p.pdf " + test::sha256_of("g's bytes")));
    } else {
      EXPECT_TRUE(tree.contains("inbox/p.pdf " + edited));
    }
  }
}

// Device b's clock is an hour slow. Every change b makes after pulling a's
// is stamped by b's clock, an hour before a's change: before, the server
// kept a's older change under last writer wins, and b pulled it back,
// undoing b's rename, chmod and title on b too (seen with a laptop whose
// clock was off). Stamps now never go below what a device has seen.
TEST(Sync, AChangeMadeAfterSeeingAnotherWinsOnADeviceWhoseClockIsAnHourSlow) {
  RECALL_REQUIRE_FUSE();
  RECALL_REQUIRE_POSTGRES();
  std::optional<std::vector<std::string>> slow = clock_off_by("-1h");
  if (!slow) GTEST_SKIP() << "libfaketime is not installed (apt install faketime)";
  std::string token = new_account("slow-clock");
  MountedLibrary a, b;
  for (MountedLibrary* m : {&a, &b}) {
    ASSERT_EQ(sign_in(*m, token).exit_code, 0);
    m->unmount();
    ASSERT_EQ(m->recallfs({"peer", "set", "--listen", "127.0.0.1:0"}).exit_code, 0);
  }
  a.mount();
  b.mount({}, *slow);
  // b's daemon runs an hour behind (what it stamps before it has seen any
  // other device's change).
  ASSERT_EQ(::mkdir((b / "works/Made on b").c_str(), 0755), 0);
  std::vector<Work> made = b.catalog()->works_titled("Made on b");
  ASSERT_EQ(made.size(), 1u);
  ASSERT_LT(made[0].created_ms, now_ms() - 50 * 60 * 1000) << "b's clock is not slow";

  ASSERT_EQ(::mkdir((a / "works/W").c_str(), 0755), 0);
  test::write_file(a / "works/W/g.txt", "from a");
  ASSERT_TRUE(eventually([&] { return fs::exists(b / "works/W/g.txt"); }));
  // b, after seeing a's file: a rename, a chmod, a new title.
  ASSERT_EQ(::rename((b / "works/W/g.txt").c_str(), (b / "works/W/h.txt").c_str()), 0);
  ASSERT_EQ(::chmod((b / "works/W/h.txt").c_str(), 0600), 0);
  ASSERT_EQ(::rename((b / "works/W").c_str(), (b / "works/W2").c_str()), 0);
  auto mode_of = [](const fs::path& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 ? static_cast<int>(st.st_mode & 07777) : -1;
  };
  EXPECT_TRUE(eventually([&] { return mode_of(a / "works/W2/h.txt") == 0600; }))
      << "a lacks b's later changes: " << a.shell("ls -lR works").out;
  EXPECT_TRUE(pushed_all(b));
  // And b keeps them once it has read back what the server kept.
  ASSERT_EQ(b.recallfs({"sync"}).exit_code, 0);
  EXPECT_EQ(mode_of(b / "works/W2/h.txt"), 0600) << b.shell("ls -lR works").out;
  EXPECT_FALSE(fs::exists(b / "works/W")) << "a's older title came back on b";

  // a, whose clock is right, after seeing b's: its change wins too.
  ASSERT_EQ(::rename((a / "works/W2/h.txt").c_str(), (a / "works/W2/i.txt").c_str()), 0);
  EXPECT_TRUE(eventually([&] { return fs::exists(b / "works/W2/i.txt"); }));
  EXPECT_TRUE(eventually([&] { return !fs::exists(b / "works/W2/h.txt"); }));

  // Bytes move between them as peers, whose requests each refuses as
  // stale at first (dated an hour away from its clock): both date them by
  // the other's clock then. Before, every read failed with EIO.
  EXPECT_EQ(test::read_file(b / "works/W2/i.txt"), "from a") << "b could not read from a";
  test::write_file(b / "works/W2/from-b.txt", "written on b");
  ASSERT_TRUE(eventually([&] { return fs::exists(a / "works/W2/from-b.txt"); }));
  EXPECT_EQ(test::read_file(a / "works/W2/from-b.txt"), "written on b")
      << "a could not read from b";
  EXPECT_NE(test::read_file(b.data() / "recallfs.log").find("s ahead of this device's"),
            std::string::npos)
      << "b did not say that a's clock differs";
  EXPECT_NE(test::read_file(a.data() / "recallfs.log").find("s behind this device's"),
            std::string::npos);
}

}  // namespace
}  // namespace recall
