#include "tests/cloud_fixture.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "base/ids.h"
#include "sync/peer_auth.h"
#include "tests/pg_fixture.h"

extern char** environ;

namespace recall::test {
namespace fs = std::filesystem;

std::optional<std::string> swift_endpoint() {
  const char* dir = std::getenv("RECALL_SWIFT_DIR");
  if (!dir) return std::nullopt;
  std::error_code ec;
  if (!fs::exists(fs::path(dir) / "endpoint", ec)) return std::nullopt;
  std::string e = read_file(fs::path(dir) / "endpoint");
  while (!e.empty() && e.back() == '\n') e.pop_back();
  return e;
}

S3Config swift_config(const std::string& bucket) {
  S3Config c;
  c.endpoint = *swift_endpoint();
  c.bucket = bucket;
  c.access_key = "test:tester";
  c.secret_key = "testing";
  return c;
}

std::string account_id(const std::string& name) {
  std::string id =
      PostgresServer::get().psql("SELECT id FROM recall.accounts WHERE name = '" + name + "'");
  while (!id.empty() && id.back() == '\n') id.pop_back();
  return id;
}

std::string random_file(const fs::path& p, size_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string data = random_bytes(rng, size);
  write_file(p, data);
  return data;
}

std::vector<std::string> cloud_set_args(const std::string& endpoint, const std::string& bucket,
                                        int stall_seconds) {
  return {"cloud",
          "set",
          "--endpoint",
          endpoint,
          "--bucket",
          bucket,
          "--access-key",
          "test:tester",
          "--secret-key",
          "-",
          "--create-bucket",
          "--stall-timeout",
          std::to_string(stall_seconds)};
}

void connect_mounted(MountedLibrary& m, const std::string& token, const std::string& bucket,
                     const std::string& endpoint, int stall_seconds) {
  RunResult s =
      m.recallfs({"signin", "--server", PostgresServer::get().client_url(), "--token", token});
  ASSERT_EQ(s.exit_code, 0) << s.err;
  std::vector<std::string> args = {recallfs_binary()};
  for (const auto& a : cloud_set_args(endpoint, bucket, stall_seconds)) args.push_back(a);
  args.push_back("--data");
  args.push_back(m.data().string());
  RunResult c = run(args, {}, "testing\n");
  ASSERT_EQ(c.exit_code, 0) << c.err;
}

CloudDevice::CloudDevice() : data(dir / "data") { cli({"init"}); }

RunResult CloudDevice::cli(std::vector<std::string> args, const std::string& in) const {
  args.insert(args.begin(), recallfs_binary());
  args.push_back("--data");
  args.push_back(data.string());
  return run(args, {}, in);
}

void CloudDevice::connect(const std::string& token, const std::string& bucket,
                          const std::string& endpoint) {
  RunResult s =
      cli({"signin", "--server", PostgresServer::get().client_url(), "--token", "-"}, token + "\n");
  ASSERT_EQ(s.exit_code, 0) << s.err;
  RunResult c =
      cli(cloud_set_args(endpoint.empty() ? *swift_endpoint() : endpoint, bucket), "testing\n");
  ASSERT_EQ(c.exit_code, 0) << c.err;
}

LyingPeer::LyingPeer(const std::string& account, const std::string& content,
                     const std::vector<size_t>& flip_at)
    : dir_("lying-peer") {
  PostgresServer& pg = PostgresServer::get();
  std::string sha = sha256_of(content), owner = account_id(account);
  store_ = BlobStore::open(dir_.path(), {.create = true});
  std::string damaged = content;
  for (size_t at : flip_at) damaged[at] ^= 1;
  fs::create_directories(store_->object_path(sha).parent_path());
  write_file(store_->object_path(sha), damaged);
  std::string key_hex =
      pg.psql("SELECT encode(key, 'hex') FROM recall.peer_keys WHERE owner_id = '" + owner + "'");
  key_hex.pop_back();
  std::vector<unsigned char> key = from_hex(key_hex);
  server_ =
      std::make_unique<PeerServer>(*store_, "127.0.0.1:0", [key] { return std::optional(key); });
  device_id_ = register_holder(account, sha, "liar", server_->address());
}

std::string register_holder(const std::string& account, const std::string& sha256,
                            const std::string& name, const std::string& address) {
  PostgresServer& pg = PostgresServer::get();
  std::string owner = account_id(account), device = new_uuid();
  pg.psql("INSERT INTO recall.devices(owner_id, id, name, peer_address) VALUES ('" + owner +
          "', '" + device + "', '" + name + "', '" + address + "')");
  pg.psql(
      "INSERT INTO recall.device_blobs(owner_id, id, device_id, sha256, present, health) VALUES "
      "('" +
      owner + "', gen_random_uuid(), '" + device + "', '" + sha256 + "', 1, 'healthy')");
  return device;
}

FaultProxy::FaultProxy(const std::string& upstream_endpoint, double stall_seconds)
    : dir_("fault-proxy") {
  std::string upstream = upstream_endpoint.substr(upstream_endpoint.find("://") + 3);
  std::string script = std::string(RECALL_SOURCE_DIR) + "/tests/rig/fault_proxy.py";
  std::vector<std::string> args = {"python3",     script,
                                   "--upstream",  upstream,
                                   "--port-file", (dir_ / "port").string(),
                                   "--mode-file", (dir_ / "mode").string(),
                                   "--log",       (dir_ / "log").string(),
                                   "--stall",     std::to_string(stall_seconds)};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  if (posix_spawnp(&pid_, "python3", nullptr, nullptr, argv.data(), environ) != 0)
    throw std::runtime_error("cannot start the fault proxy");
  if (!eventually([&] { return fs::exists(dir_ / "port"); }))
    throw std::runtime_error("the fault proxy did not start");
  port_ = std::stoi(read_file(dir_ / "port"));
}

FaultProxy::~FaultProxy() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status;
    ::waitpid(pid_, &status, 0);
  }
}

void FaultProxy::set_mode(const std::string& mode) {
  write_file(dir_ / "mode.tmp", mode + "\n");
  fs::rename(dir_ / "mode.tmp", dir_ / "mode");
}

std::string FaultProxy::log() const {
  std::error_code ec;
  return fs::exists(dir_ / "log", ec) ? read_file(dir_ / "log") : "";
}

size_t FaultProxy::count(const std::string& needle) const {
  std::istringstream in(log());
  size_t n = 0;
  for (std::string line; std::getline(in, line);)
    if (line.find(needle) != std::string::npos) ++n;
  return n;
}

std::string xattr(MountedLibrary& m, const std::string& rel, const std::string& name) {
  return m.shell("getfattr --only-values -n user.recall." + name + " '" + rel + "'").out;
}

uint64_t stored_bytes(MountedLibrary& m) {
  RunResult r = m.recallfs({"status", "--json"});
  return nlohmann::json::parse(r.out).at("object_bytes").get<uint64_t>();
}

}  // namespace recall::test
