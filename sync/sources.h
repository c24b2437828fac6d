// The holders reads come from (see fs/byte_source.h): peer devices and the
// cloud (S3), chosen from device_blobs and this library's sign-in and cloud
// settings, which are re-read when they change so a running mount
// follows `recallfs signin` and `recallfs cloud set`. A guest library has no
// holders and opens no connection.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "fs/byte_source.h"
#include "fs/library.h"
#include "sync/s3_client.h"

namespace recall {

class CloudSource : public ByteSource {
 public:
  CloudSource(S3Config config, std::string owner_id);
  std::string name() const override { return "cloud"; }
  size_t read(const std::string& sha256, uint64_t offset, std::span<std::byte> buf) override;
  void stream(const std::string& sha256, uint64_t offset, uint64_t length,
              const Sink& sink) override;
  const S3Config& config() const { return config_; }

 private:
  S3Config config_;
  std::string owner_;
  // A client kept from an earlier request (its connection open), or a new one.
  std::unique_ptr<S3Client> borrow();
  void give_back(std::unique_ptr<S3Client> client);
  std::mutex mu_;                                // guards idle_
  std::vector<std::unique_ptr<S3Client>> idle_;  // one client per concurrent read
};

// Another device of the account, serving GET /v1/blobs/<sha256> with Range
// (sync/peer_server.h), asked with requests signed with the peer key.
class PeerSource : public ByteSource {
 public:
  PeerSource(std::string device_id, std::string name, std::string address,
             std::vector<unsigned char> key);
  std::string name() const override { return "peer " + name_; }
  size_t read(const std::string& sha256, uint64_t offset, std::span<std::byte> buf) override;
  void stream(const std::string& sha256, uint64_t offset, uint64_t length,
              const Sink& sink) override;
  const std::string& device_id() const { return device_id_; }
  const std::string& address() const { return address_; }
  std::string key_hex() const;

 private:
  // One signed GET; the peer's time when it refused the request as stale
  // (nothing was delivered then), nullopt otherwise.
  std::optional<int64_t> request(const std::string& sha256, uint64_t offset, uint64_t length,
                                 const Sink& sink);

  std::string device_id_, name_, address_;
  std::vector<unsigned char> key_;
  std::atomic<int64_t> clock_offset_{0};  // the peer's clock minus this one's, in s
  std::mutex mu_;                         // guards idle_
  std::vector<std::unique_ptr<CURL, void (*)(CURL*)>> idle_;  // kept connections
};

// The holders of a blob, best first: the peers that device_blobs says hold
// it (shuffled, the last one that worked first), then the cloud.
//
// Reads wait for a silent holder kStallSeconds at most per attempt (the
// cloud gets 3 attempts). A holder that did not answer (ENOTCONN: refused,
// timed out, stalled through its attempts; not a 5xx, which is an answer)
// rests for kRest after the read that met it gave up, so that the reads that
// follow — the kernel's retry of the same page, the read-ahead of the other
// chunks, the next file — fail over or fail at once instead of each waiting
// out the same timeouts. A failure does not rest a holder that served a
// request asked after the failed one, within the last kStallSeconds.
class HolderProvider : public SourceProvider {
 public:
  static constexpr std::chrono::seconds kRest{10};
  static constexpr int kStallSeconds = 4;

  explicit HolderProvider(Library& lib) : lib_(lib) {}
  std::vector<std::shared_ptr<ByteSource>> sources_for(const std::string& sha256) override;
  void worked(const std::string& sha256, const ByteSource& source) override;
  void failed(const std::string& sha256, const ByteSource& source, int error,
              Clock::time_point asked_at) override;
  bool resting(const ByteSource& source) override;

 private:
  std::shared_ptr<ByteSource> cloud();
  // The source for a peer, kept (with its connections) while it is unchanged.
  std::shared_ptr<PeerSource> peer(const std::string& device_id, const std::string& name,
                                   const std::string& address, const std::string& key_hex);

  Library& lib_;
  std::mutex mu_;  // guards the members below
  std::string cloud_stamp_;
  std::shared_ptr<CloudSource> cloud_;
  std::string last_good_peer_;                                // device id
  std::map<std::string, std::shared_ptr<PeerSource>> peers_;  // by device id
  // By holder ("cloud" or a peer's device id): resting until then, and when
  // it last worked.
  std::map<std::string, Clock::time_point> rest_until_, worked_at_;
};

}  // namespace recall
