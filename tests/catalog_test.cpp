// Catalog: migrations, device id, the transactional outbox, collisions,
// links and sub-folders, streaming listings, one writer at a time.
#include "catalog/catalog.h"

#include <gtest/gtest.h>
#include <malloc.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/error.h"
#include "base/ids.h"
#include "base/sqlite.h"
#include "catalog/schema.h"
#include "tests/test_util.h"

namespace recall {
namespace {
namespace fs = std::filesystem;
using test::TempDir;

BlobMeta blob(const std::string& content) {
  BlobMeta b;
  b.sha256 = test::sha256_of(content);
  b.size = content.size();
  b.mime = "text/plain";
  return b;
}

NewAsset asset_in(const Place& place, const std::string& name, const std::string& content) {
  NewAsset n;
  n.place = place;
  n.filename = name;
  n.blob = blob(content);
  return n;
}

class CatalogTest : public ::testing::Test {
 protected:
  void SetUp() override { cat = Catalog::open(dir / "catalog.db", {.create = true}); }
  // The outbox rows written since the last call.
  std::vector<OutboxRow> new_outbox() {
    std::vector<OutboxRow> rows = cat->read_outbox(seen_, 1000000);
    if (!rows.empty()) seen_ = rows.back().seq;
    return rows;
  }
  TempDir dir;
  std::unique_ptr<Catalog> cat;
  int64_t seen_ = 0;
};

TEST_F(CatalogTest, OpeningItAgainWritesNothingAMountWouldNotice) {
  // A mounted daemon drops the kernel's caches when another process commits
  // (data_version): `recallfs status` or `ls` in another process must not.
  int64_t before = cat->data_version();
  auto other = Catalog::open(dir / "catalog.db", {});
  EXPECT_EQ(cat->data_version(), before) << "opening a current catalog committed something";
  other->create_work("From another process");
  EXPECT_NE(cat->data_version(), before) << "a real change must be noticed";
}

TEST_F(CatalogTest, TheGenerationMovesWithCommitsOfWhatListingsAreMadeOf) {
  // What a mount keeps of the catalog (ListingCache) is good while the
  // generation stays.
  uint64_t g = cat->generation();
  cat->list_works([](const WorkEntry&) { return true; });
  EXPECT_EQ(cat->generation(), g) << "a read moved it";
  Work w = cat->create_work("A");
  EXPECT_GT(cat->generation(), g) << "a commit here";
  g = cat->generation();
  cat->batch([&] {
    cat->create_work("B");
    cat->create_work("C");
    EXPECT_EQ(cat->generation(), g) << "moved before the transaction committed";
  });
  EXPECT_GT(cat->generation(), g) << "a batch committed";
  g = cat->generation();
  EXPECT_THROW(cat->batch([&] {
    cat->create_work("D");
    throw Error(EIO, "rolled back");
  }),
               Error);
  EXPECT_EQ(cat->generation(), g) << "a rollback changed nothing";
  // Rows no listing is made of (replication progress, pins) leave it.
  cat->pin(test::sha256_of("x"));
  EXPECT_EQ(cat->generation(), g) << "a pin moved it";
  Asset a = cat->add_asset(asset_in(Place{w.id, ""}, "a.txt", "a"));
  EXPECT_GT(cat->generation(), g) << "a new file";
  g = cat->generation();
  cat->set_asset_role(a.id, "notes");
  EXPECT_GT(cat->generation(), g) << "an asset's row";
  g = cat->generation();
  cat->link_asset(a.id, Place{}, "a link.txt");
  EXPECT_GT(cat->generation(), g) << "a link";
  g = cat->generation();
  (void)cat->data_version();
  EXPECT_EQ(cat->generation(), g);
  auto other = Catalog::open(dir / "catalog.db", {});
  other->create_work("From another process");
  EXPECT_EQ(cat->generation(), g) << "not noticed before data_version() looks";
  (void)cat->data_version();
  EXPECT_GT(cat->generation(), g) << "another process's commit, once noticed";
}

TEST_F(CatalogTest, APinFollowsTheFilesNewContent) {
  Asset a = cat->add_asset(asset_in(Place{}, "a.txt", "one"));
  Asset b = cat->add_asset(asset_in(Place{}, "b.txt", "shared"));
  Asset c = cat->add_asset(asset_in(Place{}, "c.txt", "shared"));
  cat->pin(a.sha256);
  cat->pin(b.sha256);
  cat->set_asset_content(a.id, blob("two"));
  EXPECT_TRUE(cat->pinned(blob("two").sha256)) << "an edit of a pinned file must stay pinned";
  EXPECT_FALSE(cat->pinned(a.sha256)) << "no file has the old content: its pin goes";
  cat->set_asset_content(b.id, blob("b's own"));
  EXPECT_TRUE(cat->pinned(blob("b's own").sha256));
  EXPECT_TRUE(cat->pinned(c.sha256)) << "c still has the old content: its pin stays";
  cat->set_asset_content(c.id, blob("c's own"));
  EXPECT_TRUE(cat->pinned(blob("c's own").sha256));
  cat->set_asset_content(c.id, blob("c's own"));  // the same content again
  EXPECT_TRUE(cat->pinned(blob("c's own").sha256));
  Asset d = cat->add_asset(asset_in(Place{}, "d.txt", "unpinned"));
  cat->set_asset_content(d.id, blob("still unpinned"));
  EXPECT_FALSE(cat->pinned(blob("still unpinned").sha256));
}

// The same when the edit was made on another device and pulled: before, the
// new content came unpinned, and a cache budget could let it go (or never
// keep it) although the user had pinned the file here.
TEST_F(CatalogTest, APinFollowsAnEditPulledFromAnotherDevice) {
  TempDir other_dir;
  auto other = Catalog::open(other_dir / "catalog.db", {.create = true});
  int64_t shipped = 0;
  auto pull_from_other = [&] {  // other's changes since the last call, as a pull here
    std::vector<Catalog::RemoteRow> rows;
    for (const OutboxRow& o : other->read_outbox(shipped, 1000000)) {
      rows.push_back({o.table, o.row_id, o.op == "delete", o.payload.value_or("{}")});
      shipped = o.seq;
    }
    cat->apply_remote(rows);
  };
  Asset paper = other->add_asset(asset_in(Place{}, "paper.pdf", "v1"));
  Asset copy = other->add_asset(asset_in(Place{}, "copy.pdf", "v1"));
  Asset notes = other->add_asset(asset_in(Place{}, "notes.txt", "n1"));
  pull_from_other();
  ASSERT_TRUE(cat->get_asset(paper.id));
  cat->pin(paper.sha256);
  other->set_asset_content(paper.id, blob("v2"));
  other->set_asset_content(notes.id, blob("n2"));
  pull_from_other();
  ASSERT_EQ(cat->get_asset(paper.id)->sha256, blob("v2").sha256);
  EXPECT_TRUE(cat->pinned(blob("v2").sha256)) << "a pulled edit of a pinned file must stay pinned";
  EXPECT_TRUE(cat->pinned(blob("v1").sha256)) << "copy.pdf still has v1: its pin stays";
  EXPECT_FALSE(cat->pinned(blob("n2").sha256)) << "an unpinned file's edit was pinned";
  other->set_asset_content(copy.id, blob("v3"));
  pull_from_other();
  EXPECT_FALSE(cat->pinned(blob("v1").sha256)) << "no file has v1 any more: its pin goes";
  EXPECT_TRUE(cat->pinned(blob("v3").sha256));
  std::vector<std::string> kept = cat->pinned_file_blobs();
  std::sort(kept.begin(), kept.end());
  std::vector<std::string> want = {blob("v2").sha256, blob("v3").sha256};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(kept, want);
  // The pins of content no file has are left out of what the mount keeps.
  cat->pin(blob("nobody's").sha256);
  EXPECT_EQ(cat->pinned_file_blobs().size(), 2u);
}

// A pinned folder keeps what comes into it later: made here, moved or linked
// in, or pulled from another device; the pin follows the folder's renames
// and moves, here or pulled. Tried: a sub-folder pinned, then renamed on the
// other device and moved here into another work; works/ pinned; a work
// pinned and turned into a sub-folder.
TEST_F(CatalogTest, APinnedPlaceKeepsWhatComesIntoItAndFollowsTheFolder) {
  TempDir other_dir;
  auto other = Catalog::open(other_dir / "catalog.db", {.create = true});
  // One catalog's changes as the other's pull, dropped from its outbox as
  // a push does.
  auto ship = [](Catalog& from, Catalog& to) {
    std::vector<Catalog::RemoteRow> rows;
    int64_t last = 0;
    for (const OutboxRow& o : from.read_outbox(0, 1000000)) {
      rows.push_back({o.table, o.row_id, o.op == "delete", o.payload.value_or("{}")});
      last = o.seq;
    }
    from.drop_outbox_through(last);
    to.apply_remote(rows);
  };
  auto pull_from_other = [&] { ship(*other, *cat); };
  auto push_to_other = [&] { ship(*cat, *other); };
  auto pinned = [&](const std::string& content) { return cat->pinned(blob(content).sha256); };
  Work w = other->create_work("Thesis");
  Folder figures = other->create_folder(Place{w.id, ""}, "figures");
  other->add_asset(asset_in(Place{w.id, "figures"}, "a.pdf", "a"));
  Asset top = other->add_asset(asset_in(Place{w.id, ""}, "top.txt", "top"));
  Asset inbox = other->add_asset(asset_in(Place{}, "i.txt", "i"));
  pull_from_other();

  std::vector<std::string> now = cat->pin_place(Place{w.id, "figures"});
  EXPECT_EQ(now, std::vector<std::string>{blob("a").sha256});
  EXPECT_TRUE(pinned("a"));
  EXPECT_FALSE(pinned("top"));
  EXPECT_TRUE(cat->place_pinned(Place{w.id, "figures"}));
  EXPECT_TRUE(cat->place_pinned(Place{w.id, "figures/sub"})) << "a folder inside a pinned one";
  EXPECT_FALSE(cat->place_pinned(Place{w.id, ""})) << "the work around it";
  EXPECT_FALSE(cat->place_pinned(Place{w.id, "figures2"})) << "a name that only starts alike";

  cat->add_asset(asset_in(Place{w.id, "figures"}, "b.pdf", "b"));
  cat->create_folder(Place{w.id, "figures"}, "sub");
  cat->add_asset(asset_in(Place{w.id, "figures/sub"}, "c.pdf", "c"));
  cat->add_asset(asset_in(Place{w.id, ""}, "d.txt", "d"));
  cat->add_asset(asset_in(Place{w.id, ""}, "figures2", "not in it"));
  EXPECT_TRUE(pinned("b")) << "a file made in the pinned folder";
  EXPECT_TRUE(pinned("c")) << "a file made in a folder inside it";
  EXPECT_FALSE(pinned("d")) << "a file made next to it";
  EXPECT_FALSE(pinned("not in it"));
  cat->move_asset(top.id, Place{w.id, "figures"}, "top.txt");
  EXPECT_TRUE(pinned("top")) << "a file moved in";
  cat->link_asset(inbox.id, Place{w.id, "figures/sub"}, "i.txt");
  EXPECT_TRUE(pinned("i")) << "a file linked in";

  push_to_other();  // the other device has this one's files before it renames
  other->add_asset(asset_in(Place{w.id, "figures"}, "e.pdf", "e"));
  pull_from_other();
  EXPECT_TRUE(pinned("e")) << "a file another device added to the pinned folder";
  other->move_folder(figures.id, Place{w.id, ""}, "plots");  // renamed there
  other->add_asset(asset_in(Place{w.id, "plots"}, "f.pdf", "f"));
  pull_from_other();
  EXPECT_TRUE(cat->place_pinned(Place{w.id, "plots"})) << "the pin follows a pulled rename";
  EXPECT_FALSE(cat->place_pinned(Place{w.id, "figures"}));
  EXPECT_TRUE(pinned("f")) << "a file added there after the rename";

  Work w2 = cat->create_work("Talk");
  cat->move_folder(figures.id, Place{w2.id, ""}, "charts");  // moved here, to another work
  cat->add_asset(asset_in(Place{w2.id, "charts/sub"}, "g.pdf", "g"));
  EXPECT_TRUE(cat->place_pinned(Place{w2.id, "charts"}));
  EXPECT_TRUE(pinned("g")) << "a file added after a move to another work";

  std::vector<std::string> gone = cat->unpin_place(Place{w2.id, "charts"});
  EXPECT_EQ(gone.size(), 8u) << "a b c top i e f g";
  EXPECT_FALSE(pinned("a"));
  EXPECT_FALSE(pinned("i")) << "a linked file's pin goes with the place";
  EXPECT_FALSE(cat->place_pinned(Place{w2.id, "charts/sub"}));
  cat->add_asset(asset_in(Place{w2.id, "charts"}, "h.pdf", "h"));
  EXPECT_FALSE(pinned("h")) << "an unpinned place pins nothing more";

  // works/: every work's files, not the inbox's.
  cat->pin_place(std::nullopt);
  EXPECT_TRUE(pinned("d") && pinned("h"));
  EXPECT_TRUE(cat->place_pinned(Place{w.id, "any/where"}));
  EXPECT_FALSE(cat->place_pinned(Place{}));
  Work w3 = cat->create_work("Later");
  cat->add_asset(asset_in(Place{w3.id, ""}, "later.pdf", "later"));
  cat->add_asset(asset_in(Place{}, "loose.txt", "loose"));
  EXPECT_TRUE(pinned("later")) << "a file of a work made later";
  EXPECT_FALSE(pinned("loose")) << "the inbox is not under works/";
  cat->unpin_place(std::nullopt);
  EXPECT_FALSE(pinned("later"));
  EXPECT_FALSE(cat->place_pinned(Place{w3.id, ""}));

  // Content that a file in another pinned place has too stays pinned when
  // one of the places is unpinned (pins are per blob).
  Work w4 = cat->create_work("Shared");
  cat->create_folder(Place{w4.id, ""}, "one");
  cat->create_folder(Place{w4.id, ""}, "two");
  cat->add_asset(asset_in(Place{w4.id, "one"}, "x.pdf", "same bytes"));
  cat->add_asset(asset_in(Place{w4.id, "two"}, "y.pdf", "same bytes"));
  cat->add_asset(asset_in(Place{w4.id, "one"}, "z.pdf", "only in one"));
  cat->pin_place(Place{w4.id, "one"});
  cat->pin_place(Place{w4.id, "two"});
  EXPECT_EQ(cat->unpin_place(Place{w4.id, "one"}),
            std::vector<std::string>{blob("only in one").sha256});
  EXPECT_TRUE(pinned("same bytes")) << "two/y.pdf is still in a pinned place";
  EXPECT_FALSE(pinned("only in one"));

  // A pinned work that becomes a sub-folder of another keeps its pin there.
  cat->pin_place(Place{w3.id, ""});
  cat->create_folder(Place{w.id, ""}, "old");
  cat->move_contents(Place{w3.id, ""}, Place{w.id, "old"});
  cat->delete_work(w3.id);
  EXPECT_TRUE(cat->place_pinned(Place{w.id, "old"}));
  cat->add_asset(asset_in(Place{w.id, "old"}, "moved in.pdf", "moved in"));
  EXPECT_TRUE(pinned("moved in"));

  // The same folder made on both devices, pinned here: the pull keeps the
  // other device's row (the smaller id), and the pin with it.
  Folder first = other->create_folder(Place{w.id, ""}, "made twice");
  Folder second = cat->create_folder(Place{w.id, ""}, "made twice");
  ASSERT_LT(first.id, second.id) << "ids are made in time order";
  cat->pin_place(Place{w.id, "made twice"});
  pull_from_other();
  ASSERT_EQ(cat->get_folder(Place{w.id, "made twice"})->id, first.id);
  EXPECT_TRUE(cat->place_pinned(Place{w.id, "made twice"})) << "the pin went with this row";
  other->add_asset(asset_in(Place{w.id, "made twice"}, "later.pdf", "made twice, later"));
  pull_from_other();
  EXPECT_TRUE(pinned("made twice, later"));
}

// A change is stamped no older than a row this catalog has pulled, from a
// device whose clock is ahead (here a day).
TEST_F(CatalogTest, StampsNeverGoBelowAStampSeen) {
  const int64_t ahead = now_ms() + 24 * 3600 * 1000;
  Work pulled = cat->create_work("Pulled");
  std::string payload;
  for (const OutboxRow& o : new_outbox())
    if (o.table == "works" && o.row_id == pulled.id) payload = *o.payload;
  nlohmann::json row = nlohmann::json::parse(payload);
  row["updated_ms"] = ahead;
  row["title"] = "Renamed elsewhere";
  cat->apply_remote({{"works", pulled.id, false, row.dump()}});
  Work mine = cat->create_work("Made here after");
  EXPECT_GE(mine.updated_ms, ahead) << "a change made after the pull is stamped older than it";
  cat->rename_work(pulled.id, "Renamed here");
  EXPECT_GE(cat->get_work(pulled.id)->updated_ms, ahead);
}

// Two devices that both upload a blob both write the cloud's holder row.
// Before that row's id came from the blob, each gave it a random one; the
// server kept both, and pulling the second one failed every pull after it,
// on every device of the account (UNIQUE(sha256, device_id) here).
TEST_F(CatalogTest, TwoRowsForOneHolderOfABlobNeverStopAPull) {
  const std::string sha = test::sha256_of("paper");
  EXPECT_EQ(cloud_holder_row_id(sha), cloud_holder_row_id(sha)) << "the same on every device";
  EXPECT_NE(cloud_holder_row_id(sha), cloud_holder_row_id(test::sha256_of("other")));
  EXPECT_EQ(cloud_holder_row_id(sha).size(), 36u);
  cat->set_device_blob(sha, true, "healthy", kCloudHolder);
  auto holder_ids = [&](Catalog& c) {
    std::vector<std::string> ids;
    for (const DeviceBlob& h : c.holders(sha))
      if (h.device_id == kCloudHolder) ids.push_back(h.id);
    return ids;
  };
  EXPECT_EQ(holder_ids(*cat), std::vector<std::string>{cloud_holder_row_id(sha)});
  // Rows from the server as an older device wrote them: random ids, in
  // either order, with a row this catalog has under its own id.
  auto row = [&](const std::string& id) {
    nlohmann::json j = {{"id", id},
                        {"device_id", kCloudHolder},
                        {"sha256", sha},
                        {"present", 1},
                        {"health", "healthy"},
                        {"local_path", nullptr},
                        {"mtime_ms", 1700000000000}};
    return Catalog::RemoteRow{"device_blobs", id, false, j.dump()};
  };
  const std::string low = "00000001-0000-4000-8000-000000000000";
  const std::string high = "ffffffff-0000-4000-8000-000000000000";
  Catalog::ApplyReport report;
  ASSERT_NO_THROW(report = cat->apply_remote({row(high), row(low)}));
  EXPECT_EQ(holder_ids(*cat), std::vector<std::string>{low}) << "the smallest id is kept";
  // Another catalog pulling them the other way round keeps the same one.
  TempDir other_dir;
  auto other = Catalog::open(other_dir / "catalog.db", {.create = true});
  ASSERT_NO_THROW(other->apply_remote({row(low)}));
  ASSERT_NO_THROW(other->apply_remote({row(high)}));
  EXPECT_EQ(holder_ids(*other), std::vector<std::string>{low});
  // And a pull goes on applying the rows after such a one.
  Work pulled = other->create_work("Pulled");
  std::string payload;
  for (const OutboxRow& o : other->read_outbox(0, 1000))
    if (o.table == "works" && o.row_id == pulled.id && o.payload) payload = *o.payload;
  ASSERT_FALSE(payload.empty());
  ASSERT_NO_THROW(cat->apply_remote({row(high), {"works", pulled.id, false, payload}}));
  EXPECT_TRUE(cat->get_work(pulled.id).has_value());
}

TEST_F(CatalogTest, MigratesAnEmptyFileToTheCurrentSchema) {
  EXPECT_EQ(cat->schema_version(), kCatalogSchemaVersion);
  Db db = Db::open(dir / "catalog.db", {});
  for (const char* t : {"works", "folders", "assets", "edges", "blobs_meta", "device_blobs",
                        "replication_jobs", "devices", "outbox", "meta"}) {
    Stmt s = db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?");
    s.bind(t);
    EXPECT_TRUE(s.step()) << "missing table " << t;
  }
  Stmt fk = db.prepare("PRAGMA foreign_keys");
  fk.step();
  EXPECT_EQ(fk.int64(0), 1);
  Stmt jm = db.prepare("PRAGMA journal_mode");
  jm.step();
  EXPECT_EQ(jm.text(0), "wal");
}

TEST_F(CatalogTest, DeviceIdIsARandomUuidMadeOncePerDataDirectory) {
  std::string id = cat->device_id();
  EXPECT_TRUE(is_uuid(id)) << id;
  cat.reset();
  cat = Catalog::open(dir / "catalog.db", {});
  EXPECT_EQ(cat->device_id(), id);
  auto other = Catalog::open(dir / "other.db", {.create = true});
  EXPECT_NE(other->device_id(), id);
}

TEST_F(CatalogTest, RefusesAFileThatIsNotADatabaseOrIsNewer) {
  test::write_file(dir / "garbage.db", std::string(4096, 'x'));
  try {
    Catalog::open(dir / "garbage.db", {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), EUCLEAN) << e.what();
  }
  {
    Db db = Db::open(dir / "catalog.db", {});
    db.set_user_version(kCatalogSchemaVersion + 1);
  }
  cat.reset();
  try {
    Catalog::open(dir / "catalog.db", {});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), EUCLEAN);
    EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Catalog::open(dir / "missing.db", {}), Error);
}

TEST_F(CatalogTest, OutboxRowsMatchChangesExactly) {
  new_outbox();
  Work w = cat->create_work("Attention Is All You Need");
  auto rows = new_outbox();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].table, "works");
  EXPECT_EQ(rows[0].op, "upsert");
  EXPECT_EQ(rows[0].row_id, w.id);
  auto payload = nlohmann::json::parse(*rows[0].payload);
  EXPECT_EQ(payload["title"], "Attention Is All You Need");

  cat->rename_work(w.id, "Attention Is All You Need");  // unchanged
  EXPECT_TRUE(new_outbox().empty()) << "a no-op rename was queued";
  cat->rename_work(w.id, "Attention");
  rows = new_outbox();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(*rows[0].payload)["title"], "Attention");

  Asset a = cat->add_asset(asset_in(Place{w.id, ""}, "paper.pdf", "pdf bytes"));
  rows = new_outbox();
  std::multiset<std::string> tables;
  for (const auto& r : rows) tables.insert(r.table + ":" + r.op);
  EXPECT_EQ(tables, (std::multiset<std::string>{"blobs_meta:upsert", "device_blobs:upsert",
                                                "assets:upsert"}));
  // The same bytes again: only the new asset changes.
  Asset copy = cat->add_asset(asset_in(Place{}, "copy.pdf", "pdf bytes"));
  rows = new_outbox();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].table, "assets");
  EXPECT_EQ(rows[0].row_id, copy.id);

  cat->set_asset_role(a.id, "main");  // unchanged
  EXPECT_TRUE(new_outbox().empty());
  cat->set_asset_role(a.id, "slides");
  EXPECT_EQ(new_outbox().size(), 1u);

  Edge e = cat->link_asset(a.id, Place{}, "linked.pdf");
  rows = new_outbox();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].table, "edges");

  cat->delete_asset(a.id);
  rows = new_outbox();
  ASSERT_EQ(rows.size(), 2u);  // the link and the asset, both as deletes
  for (const auto& r : rows) {
    EXPECT_EQ(r.op, "delete");
    ASSERT_TRUE(r.payload);  // the row as it was: the server deletes only that version
  }
  EXPECT_EQ(nlohmann::json::parse(*rows[1].payload)["sha256"], a.sha256);
  EXPECT_EQ(rows[0].row_id, e.id);
  EXPECT_EQ(rows[1].row_id, a.id);
}

// A blob described later (its chunk manifest computed after the row was
// pushed) must reach the server: the first push carries "no manifest" as
// null, which the server's "gain what is lacking" merge fills in, never as
// an empty value that it would keep.
TEST_F(CatalogTest, ABlobWithoutManifestIsQueuedWithNullAndItsManifestLater) {
  new_outbox();
  cat->add_asset(asset_in(Place{}, "paper.pdf", "pdf bytes"));
  nlohmann::json first;
  for (const auto& r : new_outbox())
    if (r.table == "blobs_meta") first = nlohmann::json::parse(*r.payload);
  ASSERT_TRUE(first.contains("chunk_manifest"));
  EXPECT_TRUE(first["chunk_manifest"].is_null()) << first.dump();
  std::string sha = test::sha256_of("pdf bytes");
  EXPECT_EQ(cat->blobs_lacking_manifest("", 10), std::vector<std::string>{sha});
  cat->set_blob_manifest(sha, 4 << 20, std::vector<unsigned char>(32, 0xab));
  auto rows = new_outbox();
  ASSERT_EQ(rows.size(), 1u);
  std::string hex;
  for (int i = 0; i < 32; ++i) hex += "ab";
  EXPECT_EQ(nlohmann::json::parse(*rows[0].payload)["chunk_manifest"], hex);
  EXPECT_TRUE(cat->blobs_lacking_manifest("", 10).empty());
}

// A catalog of schema 1 pushed its blobs without manifests as '' (which the
// server keeps); opening it with schema 2 queues every described blob again.
TEST_F(CatalogTest, MigratingFromSchemaOneQueuesDescribedBlobsAgain) {
  cat->add_asset(asset_in(Place{}, "paper.pdf", "pdf bytes"));
  std::string sha = test::sha256_of("pdf bytes");
  cat->set_blob_manifest(sha, 4 << 20, std::vector<unsigned char>(32, 0xcd));
  cat->drop_outbox_through(new_outbox().back().seq);  // all pushed
  cat.reset();
  {
    Db db = Db::open(dir / "catalog.db", {});
    db.set_user_version(1);
  }
  cat = Catalog::open(dir / "catalog.db", {});
  EXPECT_EQ(cat->schema_version(), kCatalogSchemaVersion);
  auto rows = new_outbox();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].table, "blobs_meta");
  EXPECT_EQ(rows[0].row_id, sha);
  std::string hex;
  for (int i = 0; i < 32; ++i) hex += "cd";
  EXPECT_EQ(nlohmann::json::parse(*rows[0].payload)["chunk_manifest"], hex);
}

// An asset's change stamps only its own group (content, place, attrs):
// the server merges rows group by group (SyncEngine), so a rename here and
// an edit elsewhere both land.
TEST_F(CatalogTest, AnAssetsChangeStampsOnlyItsGroup) {
  Asset a = cat->add_asset(asset_in(Place{}, "a.txt", "first"));
  auto stamps_after = [&](const std::function<void()>& change) {
    {
      Db db = Db::open(dir / "catalog.db", {});
      db.exec("UPDATE assets SET content_ms = 1, place_ms = 2, attrs_ms = 3");
    }
    new_outbox();
    change();
    std::vector<OutboxRow> rows = new_outbox();
    std::erase_if(rows, [](const OutboxRow& r) { return r.table != "assets"; });
    EXPECT_EQ(rows.size(), 1u);
    if (rows.empty()) return std::string();
    nlohmann::json p = nlohmann::json::parse(*rows.back().payload);
    auto shown = [](const nlohmann::json& v) {
      int64_t ms = v.get<int64_t>();
      return ms < 10 ? std::to_string(ms) : std::string("now");
    };
    return shown(p["content_ms"]) + " " + shown(p["place_ms"]) + " " + shown(p["attrs_ms"]);
  };
  EXPECT_EQ(stamps_after([&] { cat->move_asset(a.id, Place{}, "b.txt"); }), "1 now 3");
  EXPECT_EQ(stamps_after([&] { cat->set_asset_content(a.id, blob("second"), std::nullopt); }),
            "now 2 3");
  EXPECT_EQ(stamps_after([&] { cat->set_asset_attrs(a.id, 0600, std::nullopt); }), "1 2 now");
  EXPECT_EQ(stamps_after([&] { cat->set_asset_attrs(a.id, std::nullopt, 12345); }), "now 2 3");
  EXPECT_EQ(stamps_after([&] { cat->set_asset_role(a.id, "supplement"); }), "1 2 now");
}

// A pulled file in a folder this device has no row for (concurrent moves
// on two devices can leave the server so): the folders are made, as this
// device's changes, so that the file is shown. Before, it was listed
// nowhere.
TEST_F(CatalogTest, APulledFileInAFolderWithNoRowGetsItsFolders) {
  Work w = cat->create_work("W");
  new_outbox();
  nlohmann::json row = {{"id", new_row_id()},
                        {"work_id", w.id},
                        {"folder", "a/b"},
                        {"filename", "f.txt"},
                        {"sha256", blob("f").sha256},
                        {"role", "main"},
                        {"bytes", 1},
                        {"mode", 420},
                        {"mtime_ns", 1},
                        {"created_ms", 1},
                        {"updated_ms", 1}};
  Catalog::ApplyReport report =
      cat->apply_remote({{"assets", row["id"].get<std::string>(), false, row.dump()}});
  EXPECT_EQ(report.applied, 1u);
  EXPECT_TRUE(cat->get_folder(Place{w.id, "a"}));
  EXPECT_TRUE(cat->get_folder(Place{w.id, "a/b"}));
  EXPECT_EQ(cat->lookup(Place{w.id, "a/b"}, "f.txt").size(), 1u);
  size_t folders_queued = 0;
  for (const OutboxRow& r : new_outbox()) folders_queued += r.table == "folders";
  EXPECT_EQ(folders_queued, 2u) << "the folders made are not pushed";
}

// The same left over from an older recallfs: the mount makes the missing
// folders once, and a second call finds nothing to do.
TEST_F(CatalogTest, MissingFoldersAreMadeOnceForFilesAndFoldersInThem) {
  Work w = cat->create_work("W");
  cat->create_folder(Place{w.id, ""}, "a");
  cat->create_folder(Place{w.id, "a"}, "b");
  cat->create_folder(Place{w.id, "a/b"}, "c");
  cat->add_asset(asset_in(Place{w.id, "a/b"}, "f.txt", "f"));
  {
    Db db = Db::open(dir / "catalog.db", {});
    db.exec("DELETE FROM folders WHERE path IN ('a', 'a/b')");
  }
  EXPECT_EQ(cat->make_missing_folders(), 2u);
  EXPECT_TRUE(cat->get_folder(Place{w.id, "a"}));
  EXPECT_TRUE(cat->get_folder(Place{w.id, "a/b"}));
  EXPECT_EQ(cat->make_missing_folders(), 0u);
}

TEST_F(CatalogTest, ARolledBackChangeLeavesNoRowAndNoOutboxEntry) {
  new_outbox();
  Work w = cat->create_work("Kept");
  new_outbox();
  uint64_t before = cat->outbox_count();
  EXPECT_THROW(cat->batch([&] {
    cat->rename_work(w.id, "Renamed then rolled back");
    cat->add_asset(asset_in(Place{w.id, ""}, "a.txt", "a"));
    throw Error(EIO, "injected failure");
  }),
               Error);
  EXPECT_EQ(cat->outbox_count(), before);
  EXPECT_EQ(cat->get_work(w.id)->title, "Kept");
  EXPECT_EQ(cat->counts().assets, 0u);
  // A failing statement inside a batch rolls back only itself when caught.
  cat->batch([&] {
    cat->rename_work(w.id, "Renamed");
    EXPECT_THROW(cat->add_asset(asset_in(Place{"no-such-work", ""}, "x", "x")), Error);
  });
  EXPECT_EQ(cat->get_work(w.id)->title, "Renamed");
  EXPECT_EQ(new_outbox().size(), 1u);
}

TEST_F(CatalogTest, LocalOnlyRowsAreNeverQueuedUntilTheyBecomeReal) {
  new_outbox();
  NewAsset n = asset_in(Place{}, ".paper.pdf.swp", "scratch bytes");
  n.local_only = true;
  Asset a = cat->add_asset(n);
  EXPECT_TRUE(new_outbox().empty()) << "a scratch file was queued for sync";
  EXPECT_EQ(cat->counts().local_only_assets, 1u);
  // Renamed to a real name (an editor's atomic save): now it syncs, with its blob.
  cat->move_asset(a.id, Place{}, "paper.pdf", false);
  std::multiset<std::string> tables;
  for (const auto& r : new_outbox()) tables.insert(r.table);
  EXPECT_EQ(tables, (std::multiset<std::string>{"assets", "blobs_meta", "device_blobs"}));
  // Made scratch again: a delete goes out.
  cat->move_asset(a.id, Place{}, "paper.pdf~", true);
  auto rows = new_outbox();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].op, "delete");
}

TEST_F(CatalogTest, CollisionsAreReportedInADeterministicOrder) {
  Work w1 = cat->create_work("Notes");
  Work w2 = cat->create_work("Notes");
  cat->create_work("Alpha");
  std::vector<std::pair<std::string, uint32_t>> works;
  cat->list_works([&](const WorkEntry& e) {
    works.emplace_back(e.work.id, e.collision);
    return true;
  });
  // Oldest first; works made in the same millisecond are ordered by id.
  auto older = [](const auto& a, const auto& b) {
    return a.created_ms != b.created_ms ? a.created_ms < b.created_ms : a.id < b.id;
  };
  if (!older(w1, w2)) std::swap(w1, w2);
  ASSERT_EQ(works.size(), 3u);
  EXPECT_EQ(works[1], std::make_pair(w1.id, 0u));
  EXPECT_EQ(works[2], std::make_pair(w2.id, 1u));
  EXPECT_EQ(cat->works_titled("Notes").size(), 2u);

  Asset a = cat->add_asset(asset_in(Place{}, "paper.pdf", "one"));
  Asset b = cat->add_asset(asset_in(Place{}, "paper.pdf", "two"));
  if (!older(a, b)) std::swap(a, b);
  std::vector<FolderEntry> hits = cat->lookup(Place{}, "paper.pdf");
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].asset->id, a.id);
  EXPECT_EQ(hits[0].collision, 0u);
  EXPECT_EQ(hits[1].asset->id, b.id);
  EXPECT_EQ(hits[1].collision, 1u);
  EXPECT_TRUE(cat->lookup(Place{}, "absent.pdf").empty());
}

TEST_F(CatalogTest, LinksCountAndTheAssetOutlivesItsFirstName) {
  Work x = cat->create_work("X");
  Work y = cat->create_work("Y");
  Asset a = cat->add_asset(asset_in(Place{x.id, ""}, "f.pdf", "shared"));
  cat->link_asset(a.id, Place{y.id, ""}, "g.pdf");
  EXPECT_EQ(cat->link_count(a.id), 2u);
  auto in_y = cat->lookup(Place{y.id, ""}, "g.pdf");
  ASSERT_EQ(in_y.size(), 1u);
  EXPECT_EQ(in_y[0].kind, FolderEntry::Kind::Link);
  EXPECT_EQ(in_y[0].asset->id, a.id);
  EXPECT_THROW(cat->delete_work(y.id), Error);
  // rm works/X/f.pdf: the asset keeps its id and lives on as Y/g.pdf.
  cat->remove_name(cat->lookup(Place{x.id, ""}, "f.pdf")[0]);
  auto moved = cat->get_asset(a.id);
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->work_id, y.id);
  EXPECT_EQ(moved->filename, "g.pdf");
  EXPECT_EQ(cat->link_count(a.id), 1u);
  cat->delete_work(x.id);
  cat->remove_name(cat->lookup(Place{y.id, ""}, "g.pdf")[0]);
  EXPECT_FALSE(cat->get_asset(a.id));
  try {
    cat->delete_work("no-such-id");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ENOENT);
  }
}

TEST_F(CatalogTest, SubFoldersHoldEntriesAndMoveWithThem) {
  Work w = cat->create_work("Code");
  Folder src = cat->create_folder(Place{w.id, ""}, "src");
  Folder lib = cat->create_folder(Place{w.id, "src"}, "lib");
  cat->add_asset(asset_in(Place{w.id, "src/lib"}, "main.py", "print()"));
  std::vector<std::string> top;
  cat->list_folder(Place{w.id, ""}, [&](const FolderEntry& e) {
    top.push_back(e.name);
    return true;
  });
  EXPECT_EQ(top, std::vector<std::string>{"src"});
  EXPECT_THROW(cat->delete_folder(src.id), Error);
  try {
    cat->delete_work(w.id);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ENOTEMPTY);
  }
  // Move src into a new work as "source": everything follows.
  Work w2 = cat->create_work("Other");
  cat->move_folder(src.id, Place{w2.id, ""}, "source");
  EXPECT_EQ(cat->lookup(Place{w2.id, "source/lib"}, "main.py").size(), 1u);
  EXPECT_TRUE(cat->get_folder(Place{w2.id, "source/lib"}));
  EXPECT_FALSE(cat->get_folder(Place{w.id, "src"}));
  EXPECT_THROW(cat->move_folder(src.id, Place{w2.id, "source/lib"}, "loop"), Error);
  cat->delete_work(w.id);
  EXPECT_THROW(cat->create_folder(Place{w2.id, ""}, "a/b"), Error);
  EXPECT_THROW(cat->create_folder(Place{w2.id, ""}, ".."), Error);
}

TEST_F(CatalogTest, RejectsBadNamesAndRoles) {
  EXPECT_THROW(cat->create_work(""), Error);
  EXPECT_THROW(cat->create_work(std::string("a\0b", 3)), Error);
  NewAsset n = asset_in(Place{}, "x", "x");
  n.role = "poster";
  EXPECT_THROW(cat->add_asset(n), Error);
  n.role = "main";
  n.blob.sha256 = "not-a-hash";
  EXPECT_THROW(cat->add_asset(n), Error);
  EXPECT_EQ(cat->counts().assets, 0u);
  // Names that are not file names are fine in the data: the tree escapes them.
  EXPECT_NO_THROW(cat->create_work("Input/Output"));
  EXPECT_NO_THROW(cat->create_work(".."));
}

TEST_F(CatalogTest, ListsAHundredThousandAssetsInOrderWithoutLoadingThemAll) {
  cat->batch([&] {
    for (int i = 0; i < 100000; ++i) {
      char name[32];
      std::snprintf(name, sizeof name, "file-%06d.pdf", (i * 7919) % 100000);
      cat->add_asset(asset_in(Place{}, name, std::to_string(i)));
    }
  });
  size_t n = 0;
  std::string prev;
  bool ordered = true;
  size_t heap_start = mallinfo2().uordblks, heap_peak = heap_start;
  cat->list_folder(Place{}, [&](const FolderEntry& e) {
    if (!prev.empty() && e.name < prev) ordered = false;
    prev = e.name;
    if (++n % 1000 == 0) heap_peak = std::max(heap_peak, mallinfo2().uordblks);
    return true;
  });
  EXPECT_EQ(n, 100000u);
  EXPECT_TRUE(ordered);
  // 100k rows of ~300 bytes would be ~30 MB if held at once; streaming costs
  // at most the reader's page cache (4 MiB) and a few rows.
  EXPECT_LT(heap_peak - heap_start, 8u << 20)
      << "listing grew the heap by " << (heap_peak - heap_start);
  EXPECT_EQ(cat->counts().outbox, 300000u);  // each: asset, blobs_meta, device_blobs
}

TEST_F(CatalogTest, WritersFromManyThreadsAndTwoConnectionsAllLand) {
  auto second = Catalog::open(dir / "catalog.db", {});  // like a second process
  std::vector<std::jthread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      Catalog& c = (t % 2) ? *second : *cat;
      for (int i = 0; i < 50; ++i)
        c.add_asset(asset_in(Place{}, "t" + std::to_string(t) + "-" + std::to_string(i), "same"));
    });
  threads.clear();
  EXPECT_EQ(cat->counts().assets, 200u);
  EXPECT_EQ(cat->counts().blobs, 1u);
}

}  // namespace
}  // namespace recall
