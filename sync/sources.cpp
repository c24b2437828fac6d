#include "sync/sources.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <exception>
#include <random>

#include "base/error.h"
#include "base/ids.h"
#include "base/sha256.h"
#include "sync/cloud_config.h"
#include "sync/credentials.h"
#include "sync/curl_stop.h"
#include "sync/peer_auth.h"

namespace recall {

namespace {
constexpr long kReceiveBuffer = 512 * 1024;  // libcurl's default is 16 KiB

// The value of header `name` (lower case) in one header line, as an
// integer; nullopt when the line is another header or not a number.
std::optional<int64_t> integer_header(std::string_view line, std::string_view name) {
  size_t colon = line.find(':');
  if (colon != name.size()) return std::nullopt;
  for (size_t i = 0; i < colon; ++i)
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return std::nullopt;
  std::string_view v = line.substr(colon + 1);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  int64_t out = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || end == v.data()) return std::nullopt;
  return out;
}
}  // namespace

CloudSource::CloudSource(S3Config config, std::string owner_id)
    : config_(std::move(config)), owner_(std::move(owner_id)) {
  // A reader is waiting: fail over rather than wait long.
  config_.attempts = 3;
  config_.stall_seconds = std::min(config_.stall_seconds, HolderProvider::kStallSeconds);
}

std::unique_ptr<S3Client> CloudSource::borrow() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      std::unique_ptr<S3Client> client = std::move(idle_.back());
      idle_.pop_back();
      return client;
    }
  }
  return std::make_unique<S3Client>(config_);
}

void CloudSource::give_back(std::unique_ptr<S3Client> client) {
  std::lock_guard lock(mu_);
  idle_.push_back(std::move(client));
}

size_t CloudSource::read(const std::string& sha256, uint64_t offset, std::span<std::byte> buf) {
  std::unique_ptr<S3Client> client = borrow();
  size_t n = client->get_range(client->key_for(owner_, sha256), offset, buf);
  give_back(std::move(client));
  return n;
}

void CloudSource::stream(const std::string& sha256, uint64_t offset, uint64_t length,
                         const Sink& sink) {
  std::unique_ptr<S3Client> client = borrow();
  client->get_stream(client->key_for(owner_, sha256), offset, length, sink);
  give_back(std::move(client));
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

std::string PeerSource::key_hex() const { return to_hex(std::span<const unsigned char>(key_)); }

size_t PeerSource::read(const std::string& sha256, uint64_t offset, std::span<std::byte> buf) {
  size_t used = 0;
  stream(sha256, offset, buf.size(), [&](std::span<const std::byte> piece) {
    std::memcpy(buf.data() + used, piece.data(), piece.size());
    used += piece.size();
    return true;
  });
  return used;
}

void PeerSource::stream(const std::string& sha256, uint64_t offset, uint64_t length,
                        const Sink& sink) {
  if (length == 0) return;
  // A peer refuses a request dated more than kPeerSkew away from its clock
  // and tells its time: asked again once, dated by the peer's clock (a
  // device whose clock is off still reads from its peers).
  if (std::optional<int64_t> peer_now = request(sha256, offset, length, sink)) {
    int64_t off = *peer_now - now_ms() / 1000;
    if (clock_offset_.exchange(off) != off)
      std::fprintf(stderr,
                   "recallfs: peer %s's clock is %lld s %s this device's; requests to it are "
                   "dated by its clock\n",
                   name_.c_str(), static_cast<long long>(off < 0 ? -off : off),
                   off < 0 ? "behind" : "ahead of");
    if (request(sha256, offset, length, sink))
      throw Error(EACCES, "peer " + name_ + " refused the request as stale twice");
  }
}

std::optional<int64_t> PeerSource::request(const std::string& sha256, uint64_t offset,
                                           uint64_t length, const Sink& sink) {
  std::string path = "/v1/blobs/" + sha256;
  std::string range = "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + length - 1);
  int64_t date = now_ms() / 1000 + clock_offset_.load();
  std::string sig = peer_signature(key_, "GET", path, range, date);
  struct State {
    const Sink* sink;
    uint64_t left;
    bool stopped = false;
    bool too_much = false;
    long status = 0;
    CURL* c;
    std::exception_ptr error;         // what the sink threw (not through libcurl)
    std::optional<int64_t> peer_now;  // X-Recall-Now of a stale answer
  } st{&sink, length, false, false, 0, nullptr, nullptr, std::nullopt};
  // A connection kept from the last request, if any: a sequential read is
  // many requests to one peer.
  std::unique_ptr<CURL, void (*)(CURL*)> c(nullptr, curl_easy_cleanup);
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      c.reset(idle_.back().release());
      idle_.pop_back();
    }
  }
  if (!c) c.reset(curl_easy_init());
  if (!c) throw Error(ENOMEM, "cannot start libcurl");
  curl_easy_reset(c.get());
  st.c = c.get();
  std::string url = "http://" + address_ + path;
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, ("Range: " + range).c_str());
  headers = curl_slist_append(headers, ("X-Recall-Date: " + std::to_string(date)).c_str());
  headers = curl_slist_append(headers, ("X-Recall-Signature: " + sig).c_str());
  curl_easy_setopt(c.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(c.get(), CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c.get(), CURLOPT_CONNECTTIMEOUT_MS, 2000L);
  curl_easy_setopt(c.get(), CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(c.get(), CURLOPT_LOW_SPEED_TIME, long{HolderProvider::kStallSeconds});
  curl_easy_setopt(c.get(), CURLOPT_NOSIGNAL, 1L);
  // Large receives: a fetched chunk is hashed and written in a few big
  // pieces instead of hundreds of 16 KiB ones.
  curl_easy_setopt(c.get(), CURLOPT_BUFFERSIZE, kReceiveBuffer);
  curl_easy_setopt(c.get(), CURLOPT_HEADERDATA, &st);
  curl_write_callback on_header = [](char* d, size_t sz, size_t n, void* ud) -> size_t {
    if (auto v = integer_header(std::string_view(d, sz * n), "x-recall-now"))
      static_cast<State*>(ud)->peer_now = v;
    return sz * n;
  };
  curl_easy_setopt(c.get(), CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c.get(), CURLOPT_WRITEDATA, &st);
  curl_write_callback write = [](char* d, size_t sz, size_t n, void* ud) -> size_t {
    auto* s = static_cast<State*>(ud);
    size_t len = sz * n;
    if (s->status == 0) curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE, &s->status);
    if (s->status != 206 && s->status != 200) return 0;  // an error page: not blob bytes
    if (len > s->left) {                                 // more than asked for: abort
      s->too_much = true;
      return 0;
    }
    bool more = false;
    try {
      more = (*s->sink)(std::as_bytes(std::span(d, len)));
    } catch (...) {
      s->error = std::current_exception();
    }
    if (!more) {
      s->stopped = true;
      return 0;
    }
    s->left -= len;
    return len;
  };
  curl_easy_setopt(c.get(), CURLOPT_WRITEFUNCTION, write);
  // While the peer is silent the sink may still stop the stream.
  std::function<bool()> keep_going = [&st] {
    if (sink_wants_more(*st.sink, st.error)) return true;
    st.stopped = true;
    return false;
  };
  end_transfer_when(c.get(), &keep_going);
  CURLcode rc = curl_easy_perform(c.get());
  curl_slist_free_all(headers);
  if (st.error) std::rethrow_exception(st.error);
  if (st.stopped) return std::nullopt;
  if (st.too_much) throw Error(EIO, "peer " + name_ + " sent more bytes than asked for");
  long status = 0;
  curl_easy_getinfo(c.get(), CURLINFO_RESPONSE_CODE, &status);
  if (status == 404) throw Error(ENOENT, "peer " + name_ + " does not have it");
  if (status == 401 && st.peer_now) return st.peer_now;  // stale: its clock differs
  if (rc != CURLE_OK && status / 100 == 2)
    throw Error(ENOTCONN, "peer " + name_ + ": " + curl_easy_strerror(rc));
  if (rc != CURLE_OK && status == 0)
    throw Error(ENOTCONN, "peer " + name_ + ": " + curl_easy_strerror(rc));
  if (status != 206 && !(status == 200 && offset == 0))
    throw Error(EIO, "peer " + name_ + " answered HTTP " + std::to_string(status));
  if (st.left != 0) throw Error(EIO, "peer " + name_ + " sent fewer bytes than asked for");
  std::lock_guard lock(mu_);
  if (idle_.size() < 8) idle_.emplace_back(c.release(), curl_easy_cleanup);
  return std::nullopt;
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
      peers.push_back(peer(h.device_id, dev->name, *dev->peer_address, creds->peer_key));
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

namespace {
std::string holder_key(const ByteSource& source) {
  if (auto* p = dynamic_cast<const PeerSource*>(&source)) return p->device_id();
  if (dynamic_cast<const CloudSource*>(&source)) return "cloud";
  return "";
}
}  // namespace

void HolderProvider::failed(const std::string&, const ByteSource& source, int error,
                            Clock::time_point asked_at) {
  // Silence says something about the next blob; a 404, a 5xx or bad bytes do not.
  if (error != ENOTCONN) return;
  std::string key = holder_key(source);
  if (key.empty()) return;
  Clock::time_point now = Clock::now();
  {
    std::lock_guard lock(mu_);
    // Not when it has served a request since this one was asked, and lately
    // (within a stall): this one met a hiccup. A request that waited out
    // its stalls while the holder served nothing else rests it, also when
    // it was asked before the holder last worked (a read-ahead run asked
    // before the first chunk came, when the holder went silent after).
    const Clock::time_point lately = now - std::chrono::seconds(kStallSeconds);
    if (auto w = worked_at_.find(key);
        w != worked_at_.end() && w->second > asked_at && w->second > lately)
      return;
    bool was_resting = rest_until_.contains(key) && now < rest_until_[key];
    rest_until_[key] = now + kRest;
    if (was_resting) return;
  }
  std::fprintf(stderr, "recallfs: %s did not answer; reads leave it out for %lld s\n",
               source.name().c_str(), static_cast<long long>(kRest.count()));
}

bool HolderProvider::resting(const ByteSource& source) {
  std::string key = holder_key(source);
  std::lock_guard lock(mu_);
  auto it = rest_until_.find(key);
  if (it == rest_until_.end()) return false;
  if (Clock::now() < it->second) return true;
  rest_until_.erase(it);  // asked again
  return false;
}

std::shared_ptr<PeerSource> HolderProvider::peer(const std::string& device_id,
                                                 const std::string& name,
                                                 const std::string& address,
                                                 const std::string& key_hex) {
  std::lock_guard lock(mu_);
  auto& p = peers_[device_id];
  if (!p || p->address() != address || p->key_hex() != key_hex)
    p = std::make_shared<PeerSource>(device_id, name, address, from_hex(key_hex));
  return p;
}

void HolderProvider::worked(const std::string&, const ByteSource& source) {
  std::string key = holder_key(source);
  std::lock_guard lock(mu_);
  rest_until_.erase(key);
  worked_at_[key] = Clock::now();
  if (auto* p = dynamic_cast<const PeerSource*>(&source)) last_good_peer_ = p->device_id();
}

}  // namespace recall
