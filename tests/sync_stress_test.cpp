// Two mounted devices of one account edit one work at once, as a user with
// a laptop and a desktop does, while their sync workers push and pull and
// each fetches the other's bytes as a peer. Threads on each device apply
// random operations (tests/random_file_ops.h) to the work's folder; in the
// second test, to works/ (works made, renamed, removed, moved into each
// other as folders, files moved and linked between them). In the third, one
// device is killed (kill -9) and restarted again and again while it syncs.
//
// Races between devices have no single right outcome either. What must hold:
//   * every failure is one a local disk gives for that call, or EIO for
//     opening or reading a version whose bytes no holder has any more;
//   * nothing hangs;
//   * once the edits stop, both devices show the same tree (folders, names,
//     and each file's content by its hash) with nothing left to push, and every file
//     reads back on each device as that hash says;
//   * `recallfs verify` finds no damage, and no object stays that no file
//     of that device has.
//
// Seeded (RECALL_SYNC_STRESS_SEED, default 1; RECALL_SYNC_STRESS_OPS per
// thread).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "base/sha256.h"
#include "tests/mount_fixture.h"
#include "tests/pg_fixture.h"
#include "tests/random_file_ops.h"
#include "tests/test_util.h"

namespace recall {
namespace {
namespace fs = std::filesystem;
using test::MountedLibrary;
using test::PostgresServer;

using test::env_or;

// Each file under `dir` -> its hash as the device says (user.recall.sha256).
std::map<std::string, std::string> hashes(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const fs::path& p : test::files_under(dir)) {
    char v[65] = {};
    ssize_t n = ::getxattr(p.c_str(), "user.recall.sha256", v, sizeof v - 1);
    out[fs::relative(p, dir).string()] = n < 0 ? std::string("error ") + std::strerror(errno) : v;
  }
  return out;
}

// A file's hash as the device says (user.recall.sha256).
std::string sha_of(const fs::path& p) {
  char v[65] = {};
  if (::getxattr(p.c_str(), "user.recall.sha256", v, sizeof v - 1) < 0)
    throw std::runtime_error("getxattr " + p.string() + ": " + std::strerror(errno));
  return v;
}

// hashes(), and each folder under `dir` as "path/" -> "folder".
std::map<std::string, std::string> tree(const fs::path& dir) {
  std::map<std::string, std::string> out = hashes(dir);
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_directory()) out[fs::relative(it->path(), dir).string() + "/"] = "folder";
  return out;
}

int64_t outbox_pending(MountedLibrary& m) {
  test::RunResult r = m.recallfs({"status", "--json"});
  if (r.exit_code != 0) return -1;
  return nlohmann::json::parse(r.out).value("outbox_pending", int64_t{-1});
}

std::string describe(const std::map<std::string, std::string>& a,
                     const std::map<std::string, std::string>& b) {
  std::string d;
  std::map<std::string, std::pair<std::string, std::string>> all;
  for (const auto& [k, v] : a) all[k].first = v;
  for (const auto& [k, v] : b) all[k].second = v;
  for (const auto& [k, v] : all)
    if (v.first != v.second)
      d += "\n  " + k + ": a " + (v.first.empty() ? "-" : v.first.substr(0, 12)) + ", b " +
           (v.second.empty() ? "-" : v.second.substr(0, 12));
  return d;
}

// The last failures a device's sync worker logged (a pull that fails at
// every try keeps the devices apart with empty outboxes).
std::string sync_failures(MountedLibrary& m, const std::string& name) {
  std::vector<std::string> lines;
  std::istringstream log(test::read_file(m.data() / "recallfs.log"));
  for (std::string line; std::getline(log, line);)
    if (line.starts_with("recallfs: sync: ")) lines.push_back(line);
  std::string out;
  for (size_t i = lines.size() > 5 ? lines.size() - 5 : 0; i < lines.size(); ++i)
    out += "\nlog of " + name + ": " + lines[i];
  return out;
}

// Signs the mounted devices in to one new account (named `account`), each
// serving its bytes to the others as a peer, and mounts them again.
void sign_in_as_peers(const std::string& account, std::initializer_list<MountedLibrary*> devices) {
  PostgresServer& pg = PostgresServer::get();
  pg.add_user(account);
  const std::string token = pg.issue_token(account);
  for (MountedLibrary* m : devices) {
    m->unmount();
    ASSERT_EQ(m->recallfs({"peer", "set", "--listen", "127.0.0.1:0"}).exit_code, 0);
    test::RunResult r = m->recallfs({"signin", "--server", pg.client_url(), "--token", token});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    m->mount();
  }
}

// What must hold once the edits stop (see the top of the file), for `where`
// under both mounts.
void expect_converged_and_whole(MountedLibrary& a, MountedLibrary& b, const std::string& where,
                                uint64_t seed) {
  // Converged: nothing left to push on either side, and one tree.
  std::map<std::string, std::string> on_a_now, on_b_now;
  EXPECT_TRUE(test::eventually(
      [&] {
        if (outbox_pending(a) != 0 || outbox_pending(b) != 0) return false;
        on_a_now = tree(a / where);
        on_b_now = tree(b / where);
        return on_a_now == on_b_now;
      },
      std::chrono::seconds(30)))
      << "the devices do not converge (seed " << seed << "):" << describe(on_a_now, on_b_now)
      << "\noutbox a " << outbox_pending(a) << ", b " << outbox_pending(b) << sync_failures(a, "a")
      << sync_failures(b, "b");
  EXPECT_FALSE(hashes(a / where).empty()) << "no file is left: the test tested little";
  for (MountedLibrary* m : {&a, &b}) {
    SCOPED_TRACE(m == &a ? "device a" : "device b");
    // Every file reads as its hash says (fetched from the other device when
    // its bytes are there only). A pull may still change it meanwhile (a
    // row the server merged or brought back, read back late): a mismatch
    // counts only when it lasts.
    for (const auto& [name, first_sha] : hashes(*m / where)) {
      const fs::path path = *m / where / name;
      std::string content, sha = first_sha, error;
      bool agrees = test::eventually(
          [&] {
            if (!fs::exists(path)) return true;  // removed by a late pull
            try {
              std::string before = sha_of(path);
              content = test::read_file(path);
              sha = sha_of(path);
              error.clear();
              return before == sha && test::sha256_of(content) == sha;
            } catch (const std::exception& e) {
              error = e.what();
              return false;
            }
          },
          std::chrono::seconds(10));
      if (!error.empty()) {
        ADD_FAILURE() << error << " (its bytes " << sha << " are kept by: "
                      << (fs::exists(a.data() / "cas/objects" / sha.substr(0, 2) / sha) ? "a " : "")
                      << (fs::exists(b.data() / "cas/objects" / sha.substr(0, 2) / sha) ? "b" : "")
                      << ")";
        for (MountedLibrary* d : {&a, &b}) {
          std::istringstream log(test::read_file(d->data() / "recallfs.log"));
          for (std::string line; std::getline(log, line);)
            if (line.find(sha.substr(0, 16)) != std::string::npos)
              std::cerr << "log of " << (d == &a ? "a" : "b") << ": " << line << "\n";
        }
        continue;
      }
      EXPECT_TRUE(agrees) << name << " reads as " << test::sha256_of(content)
                          << ", and its hash says " << sha;
    }
    test::RunResult verify = m->recallfs({"verify"});
    EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
    // Bytes freed by the last changes go after a later pull (the mount's
    // pulls come every 15 s when nothing else asks for one).
    std::string unnamed;
    EXPECT_TRUE(test::eventually(
        [&] {
          unnamed.clear();
          std::unique_ptr<Catalog> catalog = m->catalog();
          for (const fs::path& object : test::files_under(m->data() / "cas/objects")) {
            std::string sha = object.filename().string();
            std::error_code gone;  // (freed while this looks)
            uintmax_t size = fs::file_size(object, gone);
            if (sha != kEmptySha256 && !gone && catalog->assets_with_blob(sha).empty())
              unnamed += "\n  " + sha + " (" + std::to_string(size) + " bytes)";
          }
          return unnamed.empty();
        },
        std::chrono::seconds(20)))
        << "no file has the bytes of (seed " << seed << "):" << unnamed;
  }
}

// Two devices race in `where` (a path under each mount: one work's folder,
// or works/ itself when `works`); then they must converge and lose nothing.
void race_two_devices(const std::string& where, bool works) {
  const uint64_t seed = env_or("RECALL_SYNC_STRESS_SEED", 1);
  const uint64_t ops = env_or("RECALL_SYNC_STRESS_OPS", 300);
  MountedLibrary a, b;
  sign_in_as_peers(std::string(works ? "racing-works-" : "racing-") + std::to_string(seed),
                   {&a, &b});
  if (::testing::Test::HasFatalFailure()) return;
  if (!works) {
    ASSERT_EQ(::mkdir((a / where).c_str(), 0755), 0);
    ASSERT_TRUE(test::eventually([&] { return fs::exists(b / where); }));
  }

  const test::RandomFileOps::Options synced{.remote_bytes = true, .works = works};
  test::RandomFileOps on_a(a / where, seed * 2, synced);
  test::RandomFileOps on_b(b / where, seed * 2 + 1, synced);
  test::RaceOutcome outcome = test::race({&on_a, &on_b}, 2, ops, std::chrono::seconds(60), [&] {
    a.kill_daemon();  // reports the daemons' stacks; ends the stuck calls
    b.kill_daemon();
  });
  ASSERT_FALSE(outcome.hung) << "no operation finished for 60 s (seed " << seed << ")";
  for (size_t w = 0; w < outcome.failures.size(); ++w)
    EXPECT_EQ(outcome.failures[w], "")
        << "worker " << w << " (on " << (w < 2 ? "a" : "b") << "), seed " << seed;
  expect_converged_and_whole(a, b, where, seed);
}

TEST(SyncStress, TwoDevicesEditingOneWorkAtOnceConvergeAndLoseNothing) {
  RECALL_REQUIRE_FUSE();
  RECALL_REQUIRE_POSTGRES();
  race_two_devices("works/S", false);
}

// The same, one level up: works made, renamed, removed, turned into folders
// of other works and back, files moved and linked between works.
TEST(SyncStress, TwoDevicesReorganisingWorksAtOnceConvergeAndLoseNothing) {
  RECALL_REQUIRE_FUSE();
  RECALL_REQUIRE_POSTGRES();
  race_two_devices("works", true);
}

// A device killed (kill -9) at random moments while it syncs, as a laptop
// that crashes or loses power does: right after one of its own changes (so
// a push of it is usually under way), right after a restart (its first pull
// and push), while the other device's edits are pulled in or its bytes
// fetched. Device a changes files in works/A, which only it touches, so
// what each of its calls that returned 0 did is known exactly: after every
// restart its files are as they were when it died, and in the end both
// devices show them so. Device b meanwhile edits works/B with random
// operations, and a reads b's files now and then.
TEST(SyncStress, ADeviceKilledAtRandomMomentsWhileItSyncsLosesNoChangeAndConverges) {
  RECALL_REQUIRE_FUSE();
  RECALL_REQUIRE_POSTGRES();
  const uint64_t seed = env_or("RECALL_SYNC_STRESS_SEED", 1);
  const uint64_t ops = env_or("RECALL_SYNC_STRESS_OPS", 300);
  MountedLibrary a, b;
  sign_in_as_peers("killed-" + std::to_string(seed), {&a, &b});
  if (HasFatalFailure()) return;
  ASSERT_EQ(::mkdir((a / "works/A").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((b / "works/B").c_str(), 0755), 0);
  ASSERT_TRUE(
      test::eventually([&] { return fs::exists(b / "works/A") && fs::exists(a / "works/B"); }));

  test::RandomFileOps on_b(b / "works/B", seed * 2 + 1, {.remote_bytes = true});
  auto b_edits = std::async(std::launch::async, [&] {
    return test::race({&on_b}, 2, ops, std::chrono::seconds(60), [&] { b.kill_daemon(); });
  });

  std::mt19937_64 rng(seed);
  auto chance = [&](int one_in) { return rng() % static_cast<uint64_t>(one_in) == 0; };
  std::map<std::string, std::string> expected;  // works/A as a's calls left it
  auto any_file = [&] {
    auto it = expected.begin();
    std::advance(it, static_cast<long>(rng() % expected.size()));
    return it->first;
  };
  auto expect_as_left = [&](const std::string& when) {
    std::map<std::string, std::string> want, have = hashes(a / "works/A");
    for (const auto& [name, content] : expected) want[name] = test::sha256_of(content);
    EXPECT_EQ(have, want) << when << " (seed " << seed << "):" << describe(want, have);
  };
  int kills = 0;
  auto b_busy = [&] {
    return b_edits.wait_for(std::chrono::seconds(0)) != std::future_status::ready;
  };
  // At least ops / 2 changes, and on for as long as b edits (or up to 4 * ops).
  for (uint64_t step = 0; step < ops * 4 && (step < ops / 2 || b_busy()); ++step) {
    const fs::path dir = a / "works/A";
    const uint64_t pick = rng() % 20;
    if (expected.empty() || pick < 9) {  // a new file
      std::string name = "f" + std::to_string(step);
      std::string content = test::random_bytes(rng, rng() % (300 * 1024));
      test::write_file(dir / name, content);
      expected[name] = std::move(content);
    } else if (pick < 14) {  // saved over
      std::string name = any_file();
      std::string content = test::random_bytes(rng, rng() % (300 * 1024));
      test::write_file(dir / name, content);
      expected[name] = std::move(content);
    } else if (pick < 16) {  // appended to
      std::string name = any_file(), more = test::random_bytes(rng, 1 + rng() % 4096);
      int fd = ::open((dir / name).c_str(), O_WRONLY | O_APPEND);
      ASSERT_GE(fd, 0) << name << ": " << std::strerror(errno);
      ASSERT_EQ(::write(fd, more.data(), more.size()), static_cast<ssize_t>(more.size()));
      ASSERT_EQ(::close(fd), 0) << name << ": " << std::strerror(errno);
      expected[name] += more;
    } else if (pick < 18) {  // renamed
      std::string from = any_file(), to = "r" + std::to_string(step);
      ASSERT_EQ(::rename((dir / from).c_str(), (dir / to).c_str()), 0) << std::strerror(errno);
      expected[to] = std::move(expected[from]);
      expected.erase(from);
    } else if (pick < 19) {  // removed
      std::string name = any_file();
      ASSERT_EQ(::unlink((dir / name).c_str()), 0) << name << ": " << std::strerror(errno);
      expected.erase(name);
    } else {  // one of b's files read: fetched from b, kept, and pushed as present here
      std::vector<fs::path> theirs = test::files_under(a / "works/B");
      if (!theirs.empty()) {
        try {
          test::read_file(theirs[rng() % theirs.size()]);
        } catch (const std::exception&) {
          // b may be changing or removing it meanwhile: any outcome will do
        }
      }
    }
    if (chance(12)) {
      // Fault injection: the kill lands wherever a's sync worker is.
      do {
        a.kill_daemon();
        a.mount();
        ++kills;
        expect_as_left("after restart " + std::to_string(kills));
      } while (chance(4));  // sometimes again at once, in the first sync
    }
  }
  test::RaceOutcome outcome = b_edits.get();
  ASSERT_FALSE(outcome.hung) << "no operation on b finished for 60 s (seed " << seed << ")";
  for (size_t w = 0; w < outcome.failures.size(); ++w)
    EXPECT_EQ(outcome.failures[w], "") << "worker " << w << " on b, seed " << seed;
  EXPECT_GE(kills, 1) << "a was never killed: the test tested little (seed " << seed << ")";

  expect_converged_and_whole(a, b, "works", seed);
  expect_as_left("at the end");
  std::map<std::string, std::string> on_b_now = hashes(b / "works/A"), want;
  for (const auto& [name, content] : expected) want[name] = test::sha256_of(content);
  EXPECT_EQ(on_b_now, want) << "b's works/A (seed " << seed << "):" << describe(want, on_b_now);
}

}  // namespace
}  // namespace recall
