// What the cloud tests share: the Swift the rig started (tests/rig/swift.sh),
// a device signed in to an account with the cloud set, and a fault-injecting
// proxy (tests/rig/fault_proxy.py) to put between a device and the cloud.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cas/blob_store.h"
#include "sync/peer_server.h"
#include "sync/s3_client.h"
#include "tests/mount_fixture.h"
#include "tests/test_util.h"

namespace recall::test {

// The Swift the rig started, or nullopt (the test then skips).
std::optional<std::string> swift_endpoint();

#define RECALL_REQUIRE_SWIFT()                                                              \
  do {                                                                                      \
    if (!::recall::test::swift_endpoint())                                                  \
      GTEST_SKIP() << "no S3 server: run under ctest (its swift_start fixture starts one)"; \
  } while (0)

S3Config swift_config(const std::string& bucket);

// The id of the server account `name` (PostgresServer::get()).
std::string account_id(const std::string& name);

// Writes `size` random bytes (from `seed`) to `p` and returns them.
std::string random_file(const std::filesystem::path& p, size_t size, uint64_t seed);

// The arguments of `recallfs cloud set` for `bucket` at `endpoint` (the
// secret key on standard input: "testing\n").
std::vector<std::string> cloud_set_args(const std::string& endpoint, const std::string& bucket,
                                        int stall_seconds = 2);

// Signs a mounted device in to the account of `token` and sets its cloud
// (`bucket` through `endpoint`; a stall is retried after `stall_seconds`).
void connect_mounted(MountedLibrary& m, const std::string& token, const std::string& bucket,
                     const std::string& endpoint, int stall_seconds = 2);

// user.recall.NAME of `rel` in the mount, as getfattr prints it ("" when
// it cannot be read).
std::string xattr(MountedLibrary& m, const std::string& rel, const std::string& name);
// The bytes of the objects stored on the device (`recallfs status`).
uint64_t stored_bytes(MountedLibrary& m);

// A device driven by the command (no mount), signed in with the cloud set.
struct CloudDevice {
  CloudDevice();
  RunResult cli(std::vector<std::string> args, const std::string& in = "") const;
  // Signs in with `token` and sets the cloud (`endpoint`: Swift by default).
  void connect(const std::string& token, const std::string& bucket,
               const std::string& endpoint = "");
  TempDir dir;
  std::filesystem::path data;
};

// Registers on the server a device of the account `account`, named `name`,
// serving peers at `address` and holding `sha256`; returns its id.
std::string register_holder(const std::string& account, const std::string& sha256,
                            const std::string& name, const std::string& address);

// A real blob server (PeerServer) of the account `account`, holding `content`
// with the bytes at `flip_at` damaged, registered on the server as a device
// named "liar" that holds it. A test double at the peer seam.
class LyingPeer {
 public:
  LyingPeer(const std::string& account, const std::string& content,
            const std::vector<size_t>& flip_at);
  const std::string& device_id() const { return device_id_; }

 private:
  TempDir dir_;
  std::unique_ptr<BlobStore> store_;
  std::unique_ptr<PeerServer> server_;
  std::string device_id_;
};

// tests/rig/fault_proxy.py on a loopback port, in front of `upstream`.
class FaultProxy {
 public:
  explicit FaultProxy(const std::string& upstream_endpoint, double stall_seconds = 4);
  ~FaultProxy();
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void set_mode(const std::string& mode);
  // Log lines ("METHOD PATH -> what") that contain `needle`.
  size_t count(const std::string& needle) const;
  std::string log() const;

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace recall::test
