// Helpers of the sync tests (sync_test, sync_conflict_test): devices as
// data directories driven by the recallfs command, and accounts on the test
// PostgreSQL (tests/pg_fixture.h).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "fs/library.h"
#include "fs/tree.h"
#include "tests/mount_fixture.h"
#include "tests/pg_fixture.h"
#include "tests/test_util.h"

namespace recall::test {

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
  std::filesystem::path file(const std::string& filename, const std::string& content) const {
    std::filesystem::path p = dir / "src" / filename;
    std::filesystem::create_directories(p.parent_path());
    test::write_file(p, content);
    return p;
  }

  std::string name;
  TempDir dir;
  std::filesystem::path data;
};

// Syncs devices until nothing is left to push (a kept work queues itself again).
void converge(std::vector<Device*> devices);
// Device a adds inbox/p.pdf, then both sign in to the account: both have
// the file.
void share_a_paper(Device& a, Device& b, const std::string& token);
// A new account on the test server: its session token.
std::string new_account(const std::string& name);
// Signs mounted `m` in to the test server's account of `token`.
RunResult sign_in(MountedLibrary& m, const std::string& token);
// Whether mounted `m` has pushed every change it has (its outbox is empty).
bool pushed_all(MountedLibrary& m);
// How many live rows of `table` account `owner` has on the server.
std::string count_rows(const std::string& table, const std::string& owner);

}  // namespace recall::test
