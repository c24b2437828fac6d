// The Vfs core without FUSE: what only a controlled interleaving can show.
#include "fs/vfs.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/sha256.h"
#include "fs/library.h"
#include "tests/test_util.h"

namespace recall {
namespace {

void add_file(Vfs& vfs, const std::string& path, const std::string& bytes) {
  Vfs::OpenResult r = vfs.create(path, 0644, O_WRONLY);
  vfs.write(r.handle, std::as_bytes(std::span(bytes)), 0);
  vfs.flush(r.handle);
  vfs.release(r.handle);
}

// A file removed while another file's commit is storing its bytes: the
// removal cannot tell whether that put found these very bytes (dedup), so
// it leaves them, and they go as soon as the put is done, not at some
// later removal or at unmount.
TEST(VfsCollect, BytesRemovedWhileAPutIsUnderWayGoWhenItEnds) {
  test::TempDir dir;
  auto lib = Library::open(dir / "lib", {.create = true});
  Vfs vfs(*lib, {});
  add_file(vfs, "/inbox/a.bin", "the bytes of a, removed during b's commit");
  std::string a_sha = vfs.getxattr("/inbox/a.bin", "user.recall.sha256");
  ASSERT_TRUE(lib->blobs().has(a_sha));
  bool once = true;
  vfs.set_on_cache_changed([&](const std::string&) {  // b's bytes stored, not yet recorded
    if (!std::exchange(once, false)) return;
    std::thread([&] { vfs.unlink("/inbox/a.bin"); }).join();
    EXPECT_TRUE(lib->blobs().has(a_sha)) << "removed under a put";
  });
  add_file(vfs, "/inbox/b.bin", "the bytes of b");
  EXPECT_FALSE(once) << "the hook did not run";
  EXPECT_FALSE(lib->blobs().has(a_sha)) << "a's bytes stay after b's commit";
}

// The same bytes: the put found them stored already (dedup), and the file
// removed meanwhile had them. They stay: the new file has them.
TEST(VfsCollect, BytesAPutFoundStoredAreNotRemovedUnderIt) {
  test::TempDir dir;
  auto lib = Library::open(dir / "lib", {.create = true});
  Vfs vfs(*lib, {});
  const std::string bytes = "the same bytes in a and b";
  add_file(vfs, "/inbox/a.bin", bytes);
  std::string sha = vfs.getxattr("/inbox/a.bin", "user.recall.sha256");
  bool once = true;
  vfs.set_on_cache_changed([&](const std::string&) {  // b's put found a's object
    if (std::exchange(once, false)) std::thread([&] { vfs.unlink("/inbox/a.bin"); }).join();
  });
  add_file(vfs, "/inbox/b.bin", bytes);
  EXPECT_FALSE(once) << "the hook did not run";
  EXPECT_EQ(vfs.getxattr("/inbox/b.bin", "user.recall.sha256"), sha);
  EXPECT_TRUE(lib->blobs().has(sha)) << "b's bytes were removed with a";
}

void write_str(Vfs& vfs, uint64_t handle, std::string_view bytes) {
  vfs.write(handle, std::as_bytes(std::span(bytes)), 0);
}

std::string read_all(Vfs& vfs, const std::string& path) {
  Vfs::OpenResult r = vfs.open(path, O_RDONLY);
  std::string out(4096, '\0');
  out.resize(vfs.read(r.handle, std::as_writable_bytes(std::span(out)), 0));
  vfs.release(r.handle);
  return out;
}

// The objects in the store but the empty one (which always stays).
std::vector<std::string> stored_objects(Library& lib) {
  std::vector<std::string> stored;
  lib.blobs().list([&](const BlobInfo& b) {
    if (b.sha256 != kEmptySha256) stored.push_back(b.sha256);
    return true;
  });
  return stored;
}

// An open for writing finds the file's open state, and before it adds its
// handle, the last other handle closes (commit, and out of the open
// files). The new handle must not keep writing to that state: no later
// rename would find it. Here a rename over the file follows; the old
// handle's writes then must neither reach the file now at the name (POSIX:
// it writes to the replaced file) nor keep the replaced bytes stored.
TEST(VfsOpen, AnOpenRacingTheLastCloseGetsAStateLaterRenamesFind) {
  test::TempDir dir;
  auto lib = Library::open(dir / "lib", {.create = true});
  Vfs vfs(*lib, {});
  add_file(vfs, "/inbox/t.txt", "first");
  uint64_t first = vfs.open("/inbox/t.txt", O_WRONLY).handle;
  write_str(vfs, first, "second");
  bool once = true;
  vfs.set_on_open_state_found([&] {
    if (std::exchange(once, false)) std::thread([&] { vfs.release(first); }).join();
  });
  uint64_t racer = vfs.open("/inbox/t.txt", O_WRONLY).handle;
  vfs.set_on_open_state_found({});
  EXPECT_FALSE(once) << "the hook did not run";
  EXPECT_EQ(read_all(vfs, "/inbox/t.txt"), "second");

  add_file(vfs, "/inbox/p.txt", "the saved copy");
  const std::string saved = vfs.getxattr("/inbox/p.txt", "user.recall.sha256");
  vfs.rename("/inbox/p.txt", "/inbox/t.txt", 0);
  write_str(vfs, racer, "written to the replaced file");
  vfs.release(racer);

  EXPECT_EQ(read_all(vfs, "/inbox/t.txt"), "the saved copy");
  EXPECT_EQ(vfs.getxattr("/inbox/t.txt", "user.recall.sha256"), saved);
  std::vector<std::string> stored = stored_objects(*lib);
  EXPECT_EQ(stored, std::vector<std::string>{saved}) << "bytes no file has stay stored";
}

// An open for writing reads the file's row to make its open state, and a
// save renames over the file before that state is among the open files:
// the rename finds no state to detach, and the new state would hold the
// replaced version (its bytes freed by the rename). The open must either
// come before the rename (its handle then writes to the replaced file) or
// after it (it opens the saved copy); here it comes first, as the rename
// waits for it. The hook gives the rename its chance: it waits a little
// for the rename, which cannot finish while the open holds the row.
TEST(VfsOpen, AnOpenForWritingRacingASaveOverTheFileOpensOneVersion) {
  test::TempDir dir;
  auto lib = Library::open(dir / "lib", {.create = true});
  Vfs vfs(*lib, {});
  add_file(vfs, "/inbox/t.txt", "the version replaced");
  add_file(vfs, "/inbox/p.txt", "the saved copy");
  const std::string saved = vfs.getxattr("/inbox/p.txt", "user.recall.sha256");
  std::future<void> renamed;
  vfs.set_on_open_row_read([&] {
    if (renamed.valid()) return;
    renamed =
        std::async(std::launch::async, [&] { vfs.rename("/inbox/p.txt", "/inbox/t.txt", 0); });
    renamed.wait_for(std::chrono::milliseconds(200));
  });
  uint64_t h = 0;
  EXPECT_NO_THROW(h = vfs.open("/inbox/t.txt", O_WRONLY).handle) << "the racing open failed";
  vfs.set_on_open_row_read({});
  ASSERT_TRUE(renamed.valid()) << "the hook did not run";
  renamed.get();
  if (h != 0) {
    write_str(vfs, h, "written to the replaced file");
    vfs.release(h);
  }
  EXPECT_EQ(read_all(vfs, "/inbox/t.txt"), "the saved copy");
  std::vector<std::string> stored = stored_objects(*lib);
  EXPECT_EQ(stored, std::vector<std::string>{saved}) << "bytes no file has stay stored";
}

// A file open for writing whose row a pull gives other content (another
// device's edit) before the writer's own commit: the commit replaces that
// content, and its bytes go too, not only those of the version the writer
// opened. Before, they stayed stored for good.
TEST(VfsOpen, ACommitFreesAVersionAPullRecordedWhileTheFileWasOpen) {
  test::TempDir dir;
  auto lib = Library::open(dir / "lib", {.create = true});
  Vfs vfs(*lib, {});
  add_file(vfs, "/inbox/t.txt", "the version opened");
  uint64_t h = vfs.open("/inbox/t.txt", O_WRONLY).handle;
  {  // what a pull of another device's edit does
    std::istringstream pulled("the version pulled meanwhile");
    PutResult put = lib->blobs().put(pulled);
    std::string id = vfs.getxattr("/inbox/t.txt", "user.recall.asset_id");
    lib->catalog().set_asset_content(id, Library::blob_meta(put, "t.txt"));
  }
  write_str(vfs, h, "written here");  // over the version it opened
  vfs.release(h);
  EXPECT_EQ(read_all(vfs, "/inbox/t.txt"), "written hereopened");
  std::vector<std::string> stored = stored_objects(*lib);
  EXPECT_EQ(stored, std::vector<std::string>{test::sha256_of("written hereopened")})
      << "bytes no file has stay stored";
}

// Bytes fetched for a version that a pull replaced while they came: no
// file names them once they are stored, so they are held to be freed (after
// the next pull). Bytes a file names are not. Before, they stayed for good.
TEST(VfsCollect, FetchedBytesNoFileNamesAreHeldToBeFreed) {
  test::TempDir dir;
  auto lib = Library::open(dir / "lib", {.create = true});
  Vfs vfs(*lib, {});
  vfs.set_signed_in([] { return true; });
  add_file(vfs, "/inbox/named.txt", "bytes a file names");
  std::istringstream replaced("bytes of a version replaced while they came");
  const std::string orphan = lib->blobs().put(replaced).sha256;  // what a fetch stores
  const std::string named = test::sha256_of("bytes a file names");
  vfs.blob_changed(orphan);
  vfs.blob_changed(named);
  lib->catalog().drop_outbox_through(lib->catalog().read_outbox(0, 1000).back().seq, {});
  EXPECT_EQ(lib->catalog().releasable_holds(10), std::vector<std::string>{orphan});
}

// A new file being written in a folder that a pull removes meanwhile (the
// other device saw the folder empty: the file is no row yet). Its close
// must not fail (a local disk never fails a close so): the file keeps its
// folder. Before, the close failed with ENOENT and the file was lost.
TEST(VfsOpen, ANewFileKeepsAFolderRemovedElsewhereWhileItWasWritten) {
  test::TempDir dir;
  auto lib = Library::open(dir / "lib", {.create = true});
  Vfs vfs(*lib, {});
  vfs.mkdir("/works/W", 0755);
  vfs.mkdir("/works/W/notes", 0755);
  vfs.mkdir("/works/W/notes/deep", 0755);
  Vfs::OpenResult r = vfs.create("/works/W/notes/deep/new.txt", 0644, O_WRONLY);
  write_str(vfs, r.handle, "written while the folder went");
  {  // what a pull of the other device's rmdir -r does
    Catalog& cat = lib->catalog();
    std::string work = cat.works_titled("W").at(0).id;
    cat.delete_folder(cat.get_folder(Place{work, "notes/deep"})->id);
    cat.delete_folder(cat.get_folder(Place{work, "notes"})->id);
  }
  EXPECT_NO_THROW(vfs.flush(r.handle));
  vfs.release(r.handle);
  EXPECT_EQ(read_all(vfs, "/works/W/notes/deep/new.txt"), "written while the folder went");
}

// A new file being written in a work that another device removed (it was
// empty there: the file is no row yet). The pull keeps the work, as a local
// rmdir would fail with ENOTEMPTY, and queues it again so that the server
// brings it back; the close then records the file in it. A work removed
// with nothing in it goes. Before, the pull removed the work and the close
// failed with ENOENT: the file was lost, and its bytes stayed for good.
TEST(VfsOpen, APulledRemovalOfAWorkKeepsItWhileANewFileIsWrittenInIt) {
  test::TempDir dir;
  auto lib = Library::open(dir / "lib", {.create = true});
  Vfs vfs(*lib, {});
  vfs.mkdir("/works/W", 0755);
  vfs.mkdir("/works/Empty", 0755);
  Vfs::OpenResult r = vfs.create("/works/W/new.txt", 0644, O_WRONLY);
  write_str(vfs, r.handle, "written while the work went");
  Catalog& cat = lib->catalog();
  std::string w = cat.works_titled("W").at(0).id;
  std::string empty = cat.works_titled("Empty").at(0).id;
  cat.drop_outbox_through(cat.read_outbox(0, 1000).back().seq, {});  // pushed
  Catalog::ApplyReport rep =
      cat.apply_remote({{"works", w, true, "{}"}, {"works", empty, true, "{}"}});
  EXPECT_EQ(rep.kept, 1u);
  EXPECT_TRUE(cat.get_work(w)) << "a work with a file being written in it was removed";
  EXPECT_FALSE(cat.get_work(empty));
  EXPECT_EQ(cat.outbox_count(), 1u) << "the kept work is not pushed back";
  EXPECT_NO_THROW(vfs.flush(r.handle));
  vfs.release(r.handle);
  EXPECT_EQ(read_all(vfs, "/works/W/new.txt"), "written while the work went");
}

// The same, when the pull came in the moment between the new file's
// create and the Vfs knowing of it, so that the work went: the close still
// succeeds, and the file is kept in the inbox (never lost).
TEST(VfsOpen, ANewFileWhoseWorkWentBeforeThePullSawItIsKeptInTheInbox) {
  test::TempDir dir;
  auto lib = Library::open(dir / "lib", {.create = true});
  Vfs vfs(*lib, {});
  vfs.mkdir("/works/W", 0755);
  Vfs::OpenResult r = vfs.create("/works/W/new.txt", 0644, O_WRONLY);
  write_str(vfs, r.handle, "written while the work went");
  Catalog& cat = lib->catalog();
  cat.delete_work(cat.works_titled("W").at(0).id);  // what that pull did
  EXPECT_NO_THROW(vfs.flush(r.handle));
  vfs.release(r.handle);
  EXPECT_EQ(read_all(vfs, "/inbox/new.txt"), "written while the work went");
  EXPECT_EQ(stored_objects(*lib),
            std::vector<std::string>{test::sha256_of("written while the work went")});
}

// Two files called b in the inbox (as a pull can make them: one shows as
// "b (2)"), and every path the Vfs tells the kernel to drop from then on.
struct SameNamedFiles {
  SameNamedFiles() : lib(Library::open(dir / "lib", {.create = true})), vfs(*lib, {}) {
    vfs.set_invalidator(
        [this](const std::string& path, Vfs::Stale what) { dropped.emplace_back(path, what); });
    add_file(vfs, "/inbox/b", "one");
    add_file(vfs, "/inbox/c", "another");
    Catalog& cat = lib->catalog();
    second = cat.lookup(Place{}, "c").at(0).asset->id;
    cat.move_asset(second, Place{}, "b");
    dropped.clear();
  }
  bool dropped_name(const std::string& path) const {
    return std::find(dropped.begin(), dropped.end(), std::pair{path, Vfs::Stale::Name}) !=
           dropped.end();
  }
  test::TempDir dir;
  std::unique_ptr<Library> lib;
  Vfs vfs;
  std::string second;  // the asset moved to b
  std::vector<std::pair<std::string, Vfs::Stale>> dropped;
};

// A pull moves one of two same-named files away: the one shown as "b (2)"
// shows as "b" now, or "b (2)" names nothing any more. The kernel must drop
// every name the group showed, with their pages: it would serve the pages
// cached under "b (2)" for whatever file has that name next. Before, only
// "b" was dropped (a read then mixed two files' bytes).
TEST(VfsChanges, APullThatShrinksAGroupOfSameNamedFilesDropsEveryNameItShowed) {
  SameNamedFiles f;
  ASSERT_EQ(read_all(f.vfs, "/inbox/b (2)").size() + read_all(f.vfs, "/inbox/b").size(), 10u);
  f.lib->catalog().move_asset(f.second, Place{}, "d");  // a later pull moves one away
  Catalog::ApplyReport pulled;
  pulled.stale_names = {{Place{}, "b"}};
  pulled.changed_assets = {f.second};
  f.vfs.remote_changed(pulled);
  EXPECT_TRUE(f.dropped_name("/inbox/b"));
  EXPECT_TRUE(f.dropped_name("/inbox/b (2)"));
}

// The same for local changes: `rm b` or `mv b c` where two files are
// called b drops both names. Before, the kernel still answered stat on
// "b (2)" for a moment with the other file's attributes.
TEST(VfsChanges, AnUnlinkOrRenameOutOfAGroupOfSameNamedFilesDropsEveryNameItShowed) {
  for (bool rename : {false, true}) {
    SCOPED_TRACE(rename ? "mv b c" : "rm b");
    SameNamedFiles f;
    if (rename)
      f.vfs.rename("/inbox/b", "/inbox/c", 0);
    else
      f.vfs.unlink("/inbox/b");
    EXPECT_TRUE(f.dropped_name("/inbox/b (2)"));
  }
}

}  // namespace
}  // namespace recall
