// The Vfs core without FUSE: what only a controlled interleaving can show.
#include "fs/vfs.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <span>
#include <string>
#include <thread>
#include <utility>

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
  vfs.set_on_stored([&](const std::string&) {  // b's bytes stored, not yet recorded
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
  vfs.set_on_stored([&](const std::string&) {  // b's put found a's object
    if (std::exchange(once, false)) std::thread([&] { vfs.unlink("/inbox/a.bin"); }).join();
  });
  add_file(vfs, "/inbox/b.bin", bytes);
  EXPECT_FALSE(once) << "the hook did not run";
  EXPECT_EQ(vfs.getxattr("/inbox/b.bin", "user.recall.sha256"), sha);
  EXPECT_TRUE(lib->blobs().has(sha)) << "b's bytes were removed with a";
}

}  // namespace
}  // namespace recall
