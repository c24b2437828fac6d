#include "sync/sources.h"

#include <algorithm>
#include <cstring>
#include <random>

#include "base/error.h"
#include "base/ids.h"
#include "sync/cloud_config.h"
#include "sync/credentials.h"
#include "sync/peer_auth.h"

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

PeerSource::PeerSource(std::string device_id, std::string name, std::string address,
                       std::vector<unsigned char> key)
    : device_id_(std::move(device_id)),
      name_(std::move(name)),
      address_(std::move(address)),
      key_(std::move(key)) {}

size_t PeerSource::read(const std::string& sha256, uint64_t offset, std::span<std::byte> buf) {
  if (buf.empty()) return 0;
  std::string path = "/v1/blobs/" + sha256;
  std::string range =
      "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + buf.size() - 1);
  int64_t date = now_ms() / 1000;
  std::string sig = peer_signature(key_, "GET", path, range, date);
  struct Sink {
    std::span<std::byte> buf;
    size_t used = 0;
  } sink{buf};
  std::unique_ptr<CURL, void (*)(CURL*)> c(curl_easy_init(), curl_easy_cleanup);
  if (!c) throw Error(ENOMEM, "cannot start libcurl");
  std::string url = "http://" + address_ + path;
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, ("Range: " + range).c_str());
  headers = curl_slist_append(headers, ("X-Recall-Date: " + std::to_string(date)).c_str());
  headers = curl_slist_append(headers, ("X-Recall-Signature: " + sig).c_str());
  curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c.get(), CURLOPT_CONNECTTIMEOUT_MS, 2000L);
  curl_easy_setopt(c.get(), CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(c.get(), CURLOPT_LOW_SPEED_TIME, 10L);
  curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &sink);
  curl_write_callback write = [](char* d, size_t sz, size_t n, void* ud) -> size_t {
    auto* s = static_cast<Sink*>(ud);
    size_t len = sz * n;
    size_t k = std::min(len, s->buf.size() - s->used);
    std::memcpy(s->buf.data() + s->used, d, k);
    s->used += k;
    return k == len ? len : 0;  // more than asked for: abort
  };
  curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, write);
  CURLcode rc = curl_easy_perform(c.get());
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) throw Error(ENOTCONN, "peer " + name_ + ": " + curl_easy_strerror(rc));
  long status = 0;
  curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status == 404) throw Error(ENOENT, "peer " + name_ + " does not have it");
  if (status != 206 && !(status == 200 && offset == 0))
    throw Error(EIO, "peer " + name_ + " answered HTTP " + std::to_string(status));
  return sink.used;
}

std::vector<std::shared_ptr<ByteSource>> HolderProvider::sources_for(const std::string& sha256) {
  std::vector<std::shared_ptr<ByteSource>> out;
  std::optional<Credentials> creds = load_credentials(lib_.dir());
  if (!creds) return out;  // a guest: no holders, no network
  if (!creds->peer_key.empty()) {
    std::vector<std::shared_ptr<PeerSource>> peers;
    Catalog& cat = lib_.catalog();
    for (const DeviceBlob& h : cat.holders(sha256)) {
      if (h.device_id == cat.device_id() || h.device_id == kCloudHolder) continue;
      auto dev = cat.get_device(h.device_id);
      if (!dev || !dev->peer_address || dev->peer_address->empty()) continue;
      peers.push_back(std::make_shared<PeerSource>(h.device_id, dev->name, *dev->peer_address,
                                                   from_hex(creds->peer_key)));
    }
    // Spread the load, but keep what worked last in front.
    static thread_local std::mt19937_64 rng(std::random_device{}());
    std::shuffle(peers.begin(), peers.end(), rng);
    std::string good;
    {
      std::lock_guard lock(mu_);
      good = last_good_peer_;
    }
    std::stable_partition(peers.begin(), peers.end(),
                          [&](const auto& p) { return p->device_id() == good; });
    out.insert(out.end(), peers.begin(), peers.end());
  }
  // The cloud is asked even before this device has pulled the row that says
  // it holds the blob: a miss there costs one ranged GET.
  if (auto c = cloud()) out.push_back(c);
  return out;
}

void HolderProvider::worked(const std::string&, const ByteSource& source) {
  if (auto* p = dynamic_cast<const PeerSource*>(&source)) {
    std::lock_guard lock(mu_);
    last_good_peer_ = p->device_id();
  }
}

}  // namespace recall
