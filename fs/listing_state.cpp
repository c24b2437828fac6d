#include "fs/listing_state.h"

#include <algorithm>
#include <string>

namespace recall {

uint32_t name_cookie(std::string_view name) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a: stable for the daemon's life
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ULL;
  h ^= h >> 31;
  return static_cast<uint32_t>(3 + h % ((1ULL << 31) - 3));
}

HashedListing::HashedListing(const Vfs::DirListing& listing) : path(listing.path) {
  entries.reserve(listing.entries.size());
  for (const auto& [name, st] : listing.entries) {
    uint32_t cookie = name == "." ? 1 : name == ".." ? 2 : name_cookie(name);
    entries.push_back(Entry{cookie, name, st});
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.cookie != b.cookie ? a.cookie < b.cookie : a.name < b.name;
  });
}

size_t HashedListing::resume(uint64_t cookie) const {
  auto it = std::upper_bound(entries.begin(), entries.end(), cookie,
                             [](uint64_t c, const Entry& e) { return c < e.cookie; });
  return static_cast<size_t>(it - entries.begin());
}

Listings::Kept Listings::find(uint64_t node) {
  std::lock_guard lock(mu_);
  auto it = kept_.find(node);
  return it == kept_.end() ? Kept{} : it->second;
}

void Listings::keep(uint64_t node, Kept kept) {
  std::lock_guard lock(mu_);
  if (kept_.insert_or_assign(node, std::move(kept)).second) order_.push_back(node);
  while (order_.size() > kMaxKept) {
    kept_.erase(order_.front());
    order_.pop_front();
  }
}

void Listings::done(uint64_t node) {
  std::lock_guard lock(mu_);
  if (kept_.erase(node)) std::erase(order_, node);
}

void StatInterest::noted(pid_t tid, Clock::time_point now) {
  std::lock_guard lock(mu_);
  if (last_.size() >= kMaxThreads && !last_.contains(tid))
    std::erase_if(last_, [&](const auto& e) { return now - e.second > kInterest; });
  if (last_.size() < kMaxThreads) last_[tid] = now;
}

bool StatInterest::wants_file_attrs(pid_t tid, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = last_.find(tid);
  return it != last_.end() && now - it->second <= kInterest;
}

}  // namespace recall
