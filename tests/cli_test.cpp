// The recallfs command, run as a user runs it: verbs, --help, exit codes and
// messages for a missing library, a corrupt database, unreadable files.
#include <gtest/gtest.h>
#include <unistd.h>

#include "tests/test_util.h"

namespace recall {
namespace {
namespace fs = std::filesystem;
using test::TempDir;

class CliTest : public ::testing::Test {
 protected:
  test::RunResult recallfs(std::vector<std::string> args) {
    args.insert(args.begin(), test::recallfs_binary());
    args.push_back("--data");
    args.push_back((dir / "lib").string());
    return test::run(args);
  }
  TempDir dir;
};

TEST_F(CliTest, EveryVerbHasHelp) {
  for (const char* verb : {"init", "add", "ls", "cat", "verify", "scan", "status"}) {
    auto r = test::run({test::recallfs_binary(), verb, "--help"});
    EXPECT_EQ(r.exit_code, 0) << verb;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << verb << ": " << r.out;
  }
  auto r = test::run({test::recallfs_binary(), "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("verify"), std::string::npos);
  EXPECT_EQ(test::run({test::recallfs_binary(), "frobnicate"}).exit_code, 64);
}

TEST_F(CliTest, AddListCatStatusRoundTrip) {
  ASSERT_EQ(recallfs({"init"}).exit_code, 0);
  test::write_file(dir / "paper.pdf", test::make_pdf(4, "A Title", "An Author"));
  test::write_file(dir / "notes.txt", "my notes\n");
  auto add = recallfs({"add", (dir / "paper.pdf").string(), (dir / "notes.txt").string(), "--work",
                       "Attention Is All You Need"});
  ASSERT_EQ(add.exit_code, 0) << add.err;
  EXPECT_NE(add.out.find("works/Attention Is All You Need/paper.pdf"), std::string::npos)
      << add.out;
  ASSERT_EQ(recallfs({"add", (dir / "notes.txt").string()}).exit_code, 0);
  auto ls = recallfs({"ls", "works/Attention Is All You Need"});
  EXPECT_EQ(ls.out, "notes.txt\npaper.pdf\n");
  auto cat = recallfs({"cat", "works/Attention Is All You Need/paper.pdf"});
  EXPECT_EQ(cat.exit_code, 0);
  EXPECT_EQ(cat.out, test::make_pdf(4, "A Title", "An Author"));
  auto status = recallfs({"status", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("\"assets\": 3"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("\"blobs\": 2"), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("\"mode\": \"guest\""), std::string::npos) << status.out;
  auto human = recallfs({"status"});
  EXPECT_NE(human.out.find("device"), std::string::npos);
  auto lsl = recallfs({"ls", "-l", "--json", "inbox"});
  EXPECT_NE(lsl.out.find(test::sha256_of("my notes\n")), std::string::npos) << lsl.out;
}

TEST_F(CliTest, AMissingLibraryIsAClearErrorWithExitCode66) {
  auto r = recallfs({"status"});
  EXPECT_EQ(r.exit_code, 66);
  EXPECT_NE(r.err.find("no library at"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("recallfs init"), std::string::npos) << r.err;
  fs::create_directories(dir / "lib");
  r = recallfs({"ls"});
  EXPECT_EQ(r.exit_code, 66);
  EXPECT_NE(r.err.find("not a recallfs library"), std::string::npos) << r.err;
}

TEST_F(CliTest, ACorruptCatalogIsAClearErrorWithExitCode65) {
  ASSERT_EQ(recallfs({"init"}).exit_code, 0);
  for (const char* f : {"catalog.db-wal", "catalog.db-shm"}) fs::remove(dir / "lib" / f);
  test::write_file(dir / "lib/catalog.db", std::string(16384, '\x5a'));
  auto r = recallfs({"status"});
  EXPECT_EQ(r.exit_code, 65);
  EXPECT_NE(r.err.find("corrupt"), std::string::npos) << r.err;
}

TEST_F(CliTest, FilesThatCannotBeReadAreClearErrors) {
  ASSERT_EQ(recallfs({"init"}).exit_code, 0);
  auto missing = recallfs({"add", (dir / "nope.pdf").string()});
  EXPECT_EQ(missing.exit_code, 66);
  EXPECT_NE(missing.err.find("nope.pdf"), std::string::npos) << missing.err;
  auto directory = recallfs({"add", dir.path().string()});
  EXPECT_EQ(directory.exit_code, 64);
  EXPECT_NE(directory.err.find("is a directory"), std::string::npos) << directory.err;
  auto not_there = recallfs({"cat", "inbox/none.txt"});
  EXPECT_EQ(not_there.exit_code, 66);
  // A permission error, as an ordinary user meets it.
  if (::geteuid() == 0) {
    fs::path lib = dir / "userlib";
    fs::permissions(dir.path(), fs::perms::all, fs::perm_options::add);
    auto init = test::run(
        {"runuser", "-u", "nobody", "--", test::recallfs_binary(), "init", "--data", lib.string()});
    ASSERT_EQ(init.exit_code, 0) << init.err;
    test::write_file(dir / "secret.pdf", "private");
    fs::permissions(dir / "secret.pdf", fs::perms::owner_read | fs::perms::owner_write);
    auto denied = test::run({"runuser", "-u", "nobody", "--", test::recallfs_binary(), "add",
                             "--data", lib.string(), (dir / "secret.pdf").string()});
    EXPECT_EQ(denied.exit_code, 77) << denied.err;
    EXPECT_NE(denied.err.find("Permission denied"), std::string::npos) << denied.err;
  }
}

TEST_F(CliTest, VerifyExitsOneWhenItFindsDamage) {
  ASSERT_EQ(recallfs({"init"}).exit_code, 0);
  test::write_file(dir / "a.txt", "will be damaged");
  ASSERT_EQ(recallfs({"add", (dir / "a.txt").string()}).exit_code, 0);
  EXPECT_EQ(recallfs({"verify"}).exit_code, 0);
  std::string sha = test::sha256_of("will be damaged");
  fs::path obj = dir / "lib/cas/objects" / sha.substr(0, 2) / sha;
  fs::permissions(obj, fs::perms::owner_write, fs::perm_options::add);
  test::write_file(obj, "will be DAMAGED");
  auto r = recallfs({"verify"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("modified " + sha), std::string::npos) << r.out;
  auto cat = recallfs({"cat", "inbox/a.txt"});
  EXPECT_EQ(cat.exit_code, 74) << "served damaged bytes: " << cat.out;
  EXPECT_EQ(cat.out, "");
  auto scan = recallfs({"scan", "--json"});
  EXPECT_EQ(scan.exit_code, 0);
}

}  // namespace
}  // namespace recall
