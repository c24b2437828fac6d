// The mounted library driven only with the shell tools users use: mkdir,
// cp -r, ls -lR, find, sha256sum, mv, ln, rm -r, du, tar, rsync, sed -i,
// getfattr/setfattr. Afterwards the catalog must say what the tree says, and
// a remount must show every byte again.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "base/sqlite.h"
#include "tests/mount_fixture.h"

namespace recall {
namespace {
namespace fs = std::filesystem;
using test::MountedLibrary;

// A folder of 200 files in a few sub-folders, with some duplicate contents.
void make_source_tree(const fs::path& root) {
  std::mt19937_64 rng(200);
  for (int i = 0; i < 200; ++i) {
    fs::path dir = root / ("d" + std::to_string(i % 5));
    if (i % 7 == 0) dir /= "deeper";
    fs::create_directories(dir);
    std::string content =
        i % 50 == 49 ? "duplicate content\n" : test::random_bytes(rng, rng() % 20000);
    char name[32];
    std::snprintf(name, sizeof name, "f%03d.txt", i);
    test::write_file(dir / name, content);
  }
}

std::map<std::string, std::string> hashes_under(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (const fs::path& p : test::files_under(root))
    out[fs::relative(p, root).string()] = test::sha256_of(test::read_file(p));
  return out;
}

std::string xattr(MountedLibrary& m, const std::string& rel, const std::string& name) {
  test::RunResult r = m.shell("getfattr --only-values -n user.recall." + name + " \"" + rel + "\"");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.out;
}

TEST(MountShell, ShellToolsDriveTheLibraryAndTheCatalogAgrees) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  fs::path src = m.tmp() / "src";
  make_source_tree(src / "folder");

  // mkdir -p and cp -r of 200 files; sha256sum checks every byte.
  auto r = m.shell(R"sh(set -e
    mkdir -p "works/Attention Is All You Need" works/Tarred works/Rsynced
    cp -r "$TMP/src/folder" "works/Attention Is All You Need/"
    ls -lR works > "$TMP/ls.txt"
    test "$(find works -type f | wc -l)" = 200
    (cd "$TMP/src/folder" && find . -type f -exec sha256sum {} +) > "$TMP/sums"
    cd "works/Attention Is All You Need/folder" && sha256sum --quiet -c "$TMP/sums")sh");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(test::read_file(m.tmp() / "ls.txt").find("f199.txt"), std::string::npos);

  const std::string work = "works/Attention Is All You Need/folder";
  std::string moved_id = xattr(m, work + "/d0/f005.txt", "asset_id");
  std::string edited_id = xattr(m, work + "/d1/f001.txt", "asset_id");

  r = m.shell(R"sh(set -e
    W="works/Attention Is All You Need/folder"
    mv "$W/d0/f005.txt" inbox/                     # relink: same asset
    mv inbox/f005.txt inbox/paper.pdf              # rename: same asset
    ln inbox/paper.pdf works/Tarred/linked.pdf     # a second work: an edge
    test "$(stat -c %h works/Tarred/linked.pdf)" = 2
    rm -r "$W/d4"                                  # 40 files and a folder
    sed -i 's/^/edited: /' "$W/d1/f001.txt"        # temp file + rename
    head -c 9 "$W/d1/f001.txt" | grep -q '^edited: '
    du -s works > /dev/null
    tar c -C "$TMP/src" folder | tar x -C works/Tarred
    rsync -a "$TMP/src/folder/" works/Rsynced/
    setfattr -n user.recall.role -v slides inbox/paper.pdf
    test "$(getfattr --only-values -n user.recall.role inbox/paper.pdf)" = slides
    test "$(getfattr --only-values -n user.recall.local inbox/paper.pdf)" = 1)sh");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;

  // The tree after all that, as the tools see it.
  std::map<std::string, std::string> tree = hashes_under(m.mnt() / "works");
  for (auto& [k, v] : hashes_under(m.mnt() / "inbox")) tree["inbox/" + k] = v;
  EXPECT_EQ(hashes_under(m / "works/Tarred/folder"), hashes_under(src / "folder"));
  EXPECT_EQ(hashes_under(m / "works/Rsynced"), hashes_under(src / "folder"));

  // Ids survived mv and sed -i.
  EXPECT_EQ(xattr(m, "inbox/paper.pdf", "asset_id"), moved_id);
  EXPECT_EQ(xattr(m, work + "/d1/f001.txt", "asset_id"), edited_id);

  // The catalog agrees.
  auto cat = m.catalog();
  auto moved = cat->get_asset(moved_id);
  ASSERT_TRUE(moved);
  EXPECT_FALSE(moved->work_id);  // in the inbox
  EXPECT_EQ(moved->filename, "paper.pdf");
  EXPECT_EQ(moved->role, "slides");
  EXPECT_EQ(cat->link_count(moved_id), 2u);
  auto tarred = cat->works_titled("Tarred");
  ASSERT_EQ(tarred.size(), 1u);
  auto linked = cat->lookup(Place{tarred[0].id, ""}, "linked.pdf");
  ASSERT_EQ(linked.size(), 1u);
  EXPECT_EQ(linked[0].kind, FolderEntry::Kind::Link);
  EXPECT_EQ(linked[0].asset->id, moved_id);
  // 200 copied - 40 removed + 200 tarred + 200 rsynced; rsync and sed temp
  // files left nothing behind.
  EXPECT_EQ(cat->counts().assets, 560u);
  EXPECT_EQ(cat->counts().local_only_assets, 0u);

  // No orphan rows: every asset's blob is described and stored, every link
  // points at an asset, every described blob is used.
  Db db = Db::open(m.data() / "catalog.db", {.read_only = true});
  auto count = [&](const char* sql) {
    Stmt s = db.prepare(sql);
    s.step();
    return s.int64(0);
  };
  EXPECT_EQ(count("SELECT count(*) FROM assets a WHERE NOT EXISTS (SELECT 1 FROM blobs_meta b "
                  "WHERE b.sha256 = a.sha256)"),
            0);
  EXPECT_EQ(count("SELECT count(*) FROM assets a WHERE NOT EXISTS (SELECT 1 FROM device_blobs d "
                  "WHERE d.sha256 = a.sha256 AND d.present = 1)"),
            0);
  EXPECT_EQ(count("SELECT count(*) FROM edges e WHERE NOT EXISTS (SELECT 1 FROM assets a WHERE "
                  "a.id = e.to_id)"),
            0);
  EXPECT_EQ(count("SELECT count(*) FROM blobs_meta b WHERE NOT EXISTS (SELECT 1 FROM assets a "
                  "WHERE a.sha256 = b.sha256)"),
            0);
  EXPECT_EQ(count("SELECT count(*) FROM folders f WHERE f.work_id IS NOT NULL AND NOT EXISTS "
                  "(SELECT 1 FROM works w WHERE w.id = f.work_id)"),
            0);
  // And every stored blob is one an asset uses (the edited file's old bytes went).
  Stmt shas = db.prepare("SELECT DISTINCT sha256 FROM assets");
  size_t distinct = 0;
  while (shas.step()) {
    ++distinct;
    EXPECT_TRUE(fs::exists(m.data() / "cas/objects" / shas.text(0).substr(0, 2) / shas.text(0)));
  }
  EXPECT_EQ(test::files_under(m.data() / "cas/objects").size(), distinct);

  // Remount: everything is still there, byte for byte.
  m.unmount();
  m.mount();
  std::map<std::string, std::string> again = hashes_under(m.mnt() / "works");
  for (auto& [k, v] : hashes_under(m.mnt() / "inbox")) again["inbox/" + k] = v;
  EXPECT_EQ(again, tree);
}

TEST(MountShell, EditingInPlaceKeepsTheAssetAndMakesANewBlob) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  auto r = m.shell(R"sh(set -e
    printf 'first version\n' > inbox/notes.txt
    id=$(getfattr --only-values -n user.recall.asset_id inbox/notes.txt)
    old=$(getfattr --only-values -n user.recall.sha256 inbox/notes.txt)
    printf 'appended\n' >> inbox/notes.txt                   # append
    printf 'X' | dd of=inbox/notes.txt bs=1 seek=0 conv=notrunc status=none  # random write
    truncate -s 5 inbox/notes.txt                            # truncate
    test "$(cat inbox/notes.txt)" = "Xirst"
    test "$(getfattr --only-values -n user.recall.asset_id inbox/notes.txt)" = "$id"
    # A truncation alone is committed by the kernel's release of the file,
    # which follows close() (see OpenFile::written): poll, with a deadline.
    want=$(printf Xirst | sha256sum | cut -c1-64)
    for i in $(seq 200); do
      sha=$(getfattr --only-values -n user.recall.sha256 inbox/notes.txt)
      [ "$sha" = "$want" ] && break
      sleep 0.05
    done
    test "$sha" != "$old"
    test "$sha" = "$want")sh");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

// vim's default save renames the file away (notes.txt~), writes a new
// notes.txt, and removes the backup: the asset it saved keeps its id, role,
// and pin, as with a save by temp file and rename. Tried here with
// the calls vim makes (strace of `vim -es ... -c wq`), then the cases that
// must stay as they are: a rename with no new file, and a backup kept.
TEST(MountShell, ASaveThatMovesTheFileAwayFirstKeepsTheAsset) {
  RECALL_REQUIRE_FUSE();
  MountedLibrary m;
  auto r = m.shell(R"sh(set -e
    mkdir works/W
    printf 'alpha\nbeta\n' > works/W/notes.txt
    setfattr -n user.recall.role -v notes works/W/notes.txt
    setfattr -n user.recall.pinned -v 1 works/W/notes.txt
    attrs() { for a in asset_id role pinned; do getfattr --only-values -n user.recall.$a "$1"; echo; done; }
    before=$(attrs works/W/notes.txt)
    mv works/W/notes.txt works/W/notes.txt~
    printf 'alpha\nBETA\n' > works/W/notes.txt
    rm works/W/notes.txt~
    test "$(attrs works/W/notes.txt)" = "$before"
    test "$(cat works/W/notes.txt)" = "$(printf 'alpha\nBETA')"
    test "$(ls works/W)" = notes.txt
    # The new file still open for writing when the old one goes (the
    # kernel's release of a closed file comes later, too): what it writes
    # after goes to the file that kept the name. A role set on the new file
    # is the last word.
    id=$(getfattr --only-values -n user.recall.asset_id works/W/notes.txt)
    mv works/W/notes.txt works/W/notes.txt~
    printf 'v3\n' > works/W/notes.txt
    setfattr -n user.recall.role -v slides works/W/notes.txt
    exec 3>>works/W/notes.txt
    rm works/W/notes.txt~
    printf 'more\n' >&3
    exec 3>&-
    test "$(getfattr --only-values -n user.recall.asset_id works/W/notes.txt)" = "$id"
    test "$(getfattr --only-values -n user.recall.role works/W/notes.txt)" = slides
    test "$(cat works/W/notes.txt)" = "$(printf 'v3\nmore')"
    # A file moved away and removed with nothing new in its place: removed.
    printf 'x\n' > works/W/other.txt
    mv works/W/other.txt works/W/other.old
    rm works/W/other.old
    test "$(ls works/W)" = notes.txt
    # A backup that stays (emacs keeps file~): two files, as on a local disk.
    mv works/W/notes.txt works/W/notes.txt~
    printf 'new\n' > works/W/notes.txt
    test "$(cat works/W/notes.txt~)" = "$(printf 'v3\nmore')"
    test "$(cat works/W/notes.txt)" = new
    # A file with another name (a link) is not taken back: vim copies those,
    # and on a local disk its other name keeps the old content.
    mkdir works/V
    printf 'old\n' > works/W/linked.txt
    ln works/W/linked.txt works/V/linked.txt
    mv works/W/linked.txt works/W/linked.txt~
    printf 'new\n' > works/W/linked.txt
    rm works/W/linked.txt~
    test "$(cat works/V/linked.txt)" = old
    test "$(cat works/W/linked.txt)" = new)sh");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

}  // namespace
}  // namespace recall
