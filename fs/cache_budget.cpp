#include "fs/cache_budget.h"

#include <cmath>
#include <cstdio>

#include "base/error.h"

namespace recall {

CacheBudget::CacheBudget(Library& lib, uint64_t budget_bytes,
                         std::function<bool(const std::string&)> in_use,
                         std::function<void(const std::string&)> evicted)
    : lib_(lib), budget_(budget_bytes), in_use_(std::move(in_use)), evicted_(std::move(evicted)) {}

CacheBudget::~CacheBudget() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

uint64_t CacheBudget::used() { return lib_.blobs().totals().bytes; }

CacheBudget::Keep CacheBudget::keep(const std::string& sha256) {
  if (lib_.catalog().pinned(sha256)) return Keep::Yes;
  bool in_cloud = false;
  for (const DeviceBlob& h : lib_.catalog().holders(sha256))
    if (h.device_id == kCloudHolder && h.present) in_cloud = true;
  if (!in_cloud) return Keep::Yes;
  return in_use_(sha256) ? Keep::Open : Keep::No;
}

bool CacheBudget::could_keep(const std::string& sha256, uint64_t size) {
  return size <= budget_ || lib_.catalog().pinned(sha256);
}

bool CacheBudget::make_room(const std::string& sha256, uint64_t incoming) {
  // A pinned blob is kept in any case; others make room for it if they can.
  const bool pinned = !sha256.empty() && lib_.catalog().pinned(sha256);
  std::lock_guard lock(evict_mu_);
  std::set<std::string> open;  // kept for being open
  // What the pass kept for being open matters to closed() only when it ends over budget.
  auto done = [&](bool fits) {
    std::lock_guard l(mu_);
    kept_open_ = fits ? std::set<std::string>() : std::move(open);
    return fits;
  };
  uint64_t now = used();
  if (now + incoming <= budget_) return done(true);
  // Least recently used first, a page at a time; a page of blobs that must
  // stay is skipped by asking for a longer list.
  size_t page = 64;
  for (;;) {
    auto candidates = lib_.blobs().least_recently_used(page);
    bool evicted = false;
    for (const auto& [sha, size] : candidates) {
      if (now + incoming <= budget_) return done(true);
      if (sha == sha256) continue;
      if (Keep k = keep(sha); k != Keep::No) {
        if (k == Keep::Open) open.insert(sha);
        continue;
      }
      try {
        lib_.blobs().remove(sha);
        lib_.catalog().set_device_blob(sha, false, "healthy");
        if (evicted_) evicted_(sha);
        now = now > size ? now - size : 0;
        evicted = true;
      } catch (const Error& e) {
        std::fprintf(stderr, "recallfs: cache: could not evict %s: %s\n", sha.c_str(), e.what());
      }
    }
    if (now + incoming <= budget_) return done(true);
    if (candidates.size() < page) {  // went through them all
      done(false);
      return pinned;
    }
    if (!evicted) page *= 4;
  }
}

void CacheBudget::start() {
  thread_ = std::jthread([this] {
    std::unique_lock lock(mu_);
    while (!stop_) {
      // Blobs become evictable as uploads complete: look again now and then.
      cv_.wait_for(lock, std::chrono::seconds(30), [&] { return stop_ || poked_; });
      if (stop_) return;
      poked_ = false;
      lock.unlock();
      try {
        trim();
      } catch (const std::exception& e) {
        std::fprintf(stderr, "recallfs: cache: %s\n", e.what());
      }
      lock.lock();
    }
  });
}

void CacheBudget::poke() {
  {
    std::lock_guard lock(mu_);
    poked_ = true;
  }
  cv_.notify_all();
}

void CacheBudget::closed(const std::string& sha256) {
  {
    std::lock_guard lock(mu_);
    if (!kept_open_.contains(sha256)) return;
    poked_ = true;
  }
  cv_.notify_all();
}

uint64_t parse_size(const std::string& text) {
  size_t used = 0;
  double n = 0;
  try {
    n = std::stod(text, &used);
  } catch (const std::exception&) {
    throw Error(EINVAL, "not a size: " + quote(text) + " (e.g. 10G, 512M)");
  }
  std::string unit = text.substr(used);
  if (unit.ends_with("iB")) unit.resize(unit.size() - 2);
  if (unit.size() == 2 && (unit[1] == 'B' || unit[1] == 'b')) unit.resize(1);
  double mult = 1;
  if (unit.empty() || unit == "B")
    mult = 1;
  else if (unit == "K" || unit == "k")
    mult = 1024.0;
  else if (unit == "M" || unit == "m")
    mult = 1024.0 * 1024;
  else if (unit == "G" || unit == "g")
    mult = 1024.0 * 1024 * 1024;
  else if (unit == "T" || unit == "t")
    mult = 1024.0 * 1024 * 1024 * 1024;
  else
    throw Error(EINVAL, "not a size: " + quote(text) + " (e.g. 10G, 512M)");
  if (!(n >= 0) || !std::isfinite(n)) throw Error(EINVAL, "not a size: " + quote(text));
  return static_cast<uint64_t>(n * mult);
}

}  // namespace recall
