// The holders reads come from (see fs/byte_source.h): the cloud (S3) and,
// later, peer devices, chosen from device_blobs and this library's sign-in
// and cloud settings, which are re-read when they change so a running mount
// follows `recallfs signin` and `recallfs cloud set`. A guest library has no
// holders and opens no connection.
#pragma once

#include <memory>
#include <mutex>
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
  const S3Config& config() const { return config_; }

 private:
  S3Config config_;
  std::string owner_;
  std::mutex mu_;                                // guards idle_
  std::vector<std::unique_ptr<S3Client>> idle_;  // one client per concurrent read
};

class HolderProvider : public SourceProvider {
 public:
  explicit HolderProvider(Library& lib) : lib_(lib) {}
  std::vector<std::shared_ptr<ByteSource>> sources_for(const std::string& sha256) override;

 private:
  std::shared_ptr<ByteSource> cloud();

  Library& lib_;
  std::mutex mu_;  // guards the cached cloud source
  std::string cloud_stamp_;
  std::shared_ptr<CloudSource> cloud_;
};

}  // namespace recall
