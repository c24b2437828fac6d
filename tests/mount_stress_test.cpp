// Several threads apply random operations (tests/random_file_ops.h) to one
// folder of the mount at once, as apps running side by side do; in the
// second test, to works/ itself.
//
// Races have no single right outcome, so there is no reference model here
// (tests/mount_model_test.cpp is the sequential one). What must hold:
//   * every failure is one a local disk gives for that call (ENOENT,
//     EEXIST, ENOTEMPTY, ...), never EIO or a hang;
//   * afterwards reads agree with the catalog (within seconds: other names
//     of a hard-linked file learn of a change asynchronously), `recallfs
//     verify` finds no damage, and every file reads back the same after a
//     remount (its last close was durable), and no object is left that no
//     file has (a leak of stored bytes).
//
// Seeded (RECALL_STRESS_SEED, default 1; RECALL_STRESS_OPS per thread).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <atomic>
#include <cstring>
#include <iostream>
#include <map>
#include <thread>

#include "base/sha256.h"
#include "tests/mount_fixture.h"
#include "tests/random_file_ops.h"

namespace recall {
namespace {
namespace fs = std::filesystem;
using test::MountedLibrary;

using test::env_or;

// Every regular file under `dir`, relative path -> content.
std::map<std::string, std::string> contents(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const fs::path& p : test::files_under(dir))
    out[fs::relative(p, dir).string()] = test::read_file(p);
  return out;
}

// Four threads race in `where` (one work's folder, or works/ itself when
// `works`); then the checks above.
void race_threads(const std::string& where, bool works) {
  MountedLibrary m;
  const uint64_t seed = env_or("RECALL_STRESS_SEED", 1);
  const uint64_t ops = env_or("RECALL_STRESS_OPS", 1500);
  if (!works) {
    ASSERT_EQ(::mkdir((m / where).c_str(), 0755), 0);
  }
  test::RandomFileOps stress(m / where, seed, {.works = works});
  test::RaceOutcome outcome = test::race({&stress}, 4, ops, std::chrono::seconds(60), [&] {
    m.kill_daemon();  // reports the daemon's stacks; ends the stuck calls
  });
  ASSERT_FALSE(outcome.hung) << "no operation finished for 60 s (seed " << seed << ")";
  const std::vector<std::string>& bad = outcome.failures;
  for (size_t w = 0; w < bad.size(); ++w)
    EXPECT_EQ(bad[w], "") << "worker " << w << ", seed " << seed;

  // What the catalog holds for each name, once what the workers' last closes
  // started has settled: the kernel is told of a change made through another
  // name (a hard link) asynchronously, so reads agree with the catalog within
  // seconds, not at once.
  auto recorded_now = [&] {
    std::map<std::string, std::string> out;
    for (const auto& [name, content] : contents(m / where))
      out[name] =
          m.shell("getfattr --only-values -n user.recall.sha256 '" + where + "/" + name + "'").out;
    return out;
  };
  auto read_now = [&] {
    std::map<std::string, std::string> out;
    for (const auto& [name, content] : contents(m / where)) out[name] = test::sha256_of(content);
    return out;
  };
  std::map<std::string, std::string> recorded, read;
  EXPECT_TRUE(test::eventually(
      [&] {
        recorded = recorded_now();
        read = read_now();
        return read == recorded;
      },
      std::chrono::seconds(10)))
      << "reads do not agree with the catalog (seed " << seed << "):" << [&] {
           std::string d;
           for (const auto& [name, sha] : recorded)
             if (read[name] != sha) {
               struct stat st {};
               ::stat((m / where / name).c_str(), &st);
               d += "\n  " + name + ": read " + read[name] + ", catalog " + sha + ", nlink " +
                    std::to_string(st.st_nlink) + ", size " + std::to_string(st.st_size);
             }
           return d;
         }();
  m.unmount();
  m.mount();
  // Every closed file is as the catalog said before the remount.
  std::map<std::string, std::string> after = read_now();
  EXPECT_EQ(after, recorded) << "seed " << seed;
  test::RunResult verify = m.recallfs({"verify"});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  std::unique_ptr<Catalog> catalog = m.catalog();
  bool leaked = false;
  for (const fs::path& object : test::files_under(m.data() / "cas/objects")) {
    std::string sha = object.filename().string();
    if (sha == kEmptySha256 || !catalog->assets_with_blob(sha).empty()) continue;
    ADD_FAILURE() << "no file has the bytes of " << sha << " (" << fs::file_size(object)
                  << " bytes; seed " << seed << ")";
    leaked = true;
  }
  if (leaked && fs::exists(m.data() / "recallfs.log"))
    std::cerr << "the daemon's log:\n" << test::read_file(m.data() / "recallfs.log");
  if (leaked) {  // the history of the leaked bytes' files, from the outbox
    Db db = Db::open(m.data() / "catalog.db", {.read_only = true});
    Stmt q = db.prepare("SELECT seq, tbl, op, row_id, payload FROM outbox ORDER BY seq");
    while (q.step())
      std::cerr << q.int64(0) << " " << q.text(1) << " " << q.text(2) << " " << q.text(3) << " "
                << q.text(4) << "\n";
  }
}

TEST(MountStress, ThreadsRacingOnOneFolderGetLocalDiskAnswersAndLoseNoClosedFile) {
  RECALL_REQUIRE_FUSE();
  race_threads("works/S", false);
}

// The same in works/: works made, renamed, removed, moved into each other
// as folders and back, files moved and linked between them.
TEST(MountStress, ThreadsReorganisingWorksGetLocalDiskAnswersAndLoseNoClosedFile) {
  RECALL_REQUIRE_FUSE();
  race_threads("works", true);
}

}  // namespace
}  // namespace recall
