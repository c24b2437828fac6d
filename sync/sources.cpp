#include "sync/sources.h"

#include "base/error.h"
#include "sync/cloud_config.h"
#include "sync/credentials.h"

namespace recall {

CloudSource::CloudSource(S3Config config, std::string owner_id)
    : config_(std::move(config)), owner_(std::move(owner_id)) {
  config_.attempts = 3;  // a reader is waiting: fail over rather than wait long
}

size_t CloudSource::read(const std::string& sha256, uint64_t offset, std::span<std::byte> buf) {
  std::unique_ptr<S3Client> client;
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      client = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!client) client = std::make_unique<S3Client>(config_);
  size_t n = client->get_range(client->key_for(owner_, sha256), offset, buf);
  std::lock_guard lock(mu_);
  idle_.push_back(std::move(client));
  return n;
}

std::shared_ptr<ByteSource> HolderProvider::cloud() {
  std::optional<Credentials> creds = load_credentials(lib_.dir());
  std::optional<S3Config> cfg = load_cloud_config(lib_.dir());
  if (!creds || !cfg || creds->account_id.empty()) return nullptr;
  std::string stamp = creds->account_id + "\n" + cfg->endpoint + "\n" + cfg->bucket + "\n" +
                      cfg->region + "\n" + cfg->prefix + "\n" + cfg->access_key + "\n" +
                      cfg->secret_key;
  std::lock_guard lock(mu_);
  if (!cloud_ || stamp != cloud_stamp_) {
    cloud_ = std::make_shared<CloudSource>(*cfg, creds->account_id);
    cloud_stamp_ = stamp;
  }
  return cloud_;
}

std::vector<std::shared_ptr<ByteSource>> HolderProvider::sources_for(
    const std::string& /*sha256*/) {
  std::vector<std::shared_ptr<ByteSource>> out;
  // The cloud is asked even before this device has pulled the row that says
  // it holds the blob: a miss there costs one HEAD-less ranged GET.
  if (auto c = cloud()) out.push_back(c);
  return out;
}

}  // namespace recall
