#include "fs/listing_state.h"

#include <algorithm>
#include <string>
#include <unordered_set>

namespace recall {

uint32_t name_cookie(std::string_view name) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a: stable for the daemon's life
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ULL;
  h ^= h >> 31;
  return static_cast<uint32_t>(3 + h % ((1ULL << 31) - 3));
}

HashedListing::HashedListing(Vfs::DirListing&& listing)
    : path(std::move(listing.path)), file_blocks(listing.file_blocks) {
  entries.reserve(listing.entries.size());
  struct stat self {};
  if (!listing.entries.empty()) self = listing.entries.front().second;
  entries.push_back(Entry{1, ".", self});
  entries.push_back(Entry{2, "..", self});
  for (auto& [name, st] : listing.entries)
    if (name != "." && name != "..")
      entries.push_back(Entry{name_cookie(name), std::move(name), st});
  // Cookies must be unique in a listing; names whose hashes collide (rare)
  // take the next free values.
  std::vector<uint32_t> sorted;
  sorted.reserve(entries.size());
  for (const Entry& e : entries) sorted.push_back(e.cookie);
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    std::unordered_set<uint32_t> used = {1, 2};
    for (Entry& e : entries)
      while (!used.insert(e.cookie).second) e.cookie = e.cookie + 1 < (1U << 31) ? e.cookie + 1 : 3;
  }
  std::sort(entries.begin() + 2, entries.end(),
            [](const Entry& a, const Entry& b) { return a.name < b.name; });
}

std::optional<std::string> HashedListing::name_of(uint64_t cookie) const {
  for (const Entry& e : entries)
    if (e.cookie == cookie) return e.name;
  return std::nullopt;
}

size_t HashedListing::resume_after(const std::string& name) const {
  if (name == ".") return 1;
  if (name == "..") return 2;
  auto first = entries.begin() + std::min<size_t>(2, entries.size());
  auto it = std::upper_bound(first, entries.end(), name,
                             [](const std::string& n, const Entry& e) { return n < e.name; });
  return static_cast<size_t>(it - entries.begin());
}

Listings::Kept Listings::find(uint64_t node, bool with_file_blocks) {
  std::lock_guard lock(mu_);
  auto it = kept_.find(node);
  if (it == kept_.end()) return Kept{};
  for (auto k = it->second.rbegin(); k != it->second.rend(); ++k)
    if (!with_file_blocks || k->listing->file_blocks) return *k;
  return Kept{};
}

void Listings::keep(uint64_t node, Kept kept) {
  std::lock_guard lock(mu_);
  auto [it, added] = kept_.try_emplace(node);
  if (added) order_.push_back(node);
  entries_ += kept.listing->entries.size();
  it->second.push_back(std::move(kept));
  if (it->second.size() > kPerFolder) {
    entries_ -= it->second.front().listing->entries.size();
    it->second.pop_front();
  }
  // The folder just kept stays, however big: its reader pages through it.
  while (order_.size() > 1 && (order_.size() > kMaxKept || entries_ > kMaxEntries)) {
    uint64_t oldest = order_.front() == node ? order_[1] : order_.front();
    for (const Kept& k : kept_[oldest]) entries_ -= k.listing->entries.size();
    kept_.erase(oldest);
    std::erase(order_, oldest);
  }
}

std::optional<std::string> Listings::name_of(uint64_t node, uint64_t cookie) {
  std::lock_guard lock(mu_);
  auto it = kept_.find(node);
  if (it != kept_.end())
    for (auto k = it->second.rbegin(); k != it->second.rend(); ++k)
      if (auto name = k->listing->name_of(cookie)) return name;
  for (auto r = removed_.rbegin(); r != removed_.rend(); ++r)
    if (std::get<0>(*r) == node && std::get<1>(*r) == cookie) return std::get<2>(*r);
  return std::nullopt;
}

void Listings::removed(uint64_t node, const std::string& name) {
  std::lock_guard lock(mu_);
  removed_.emplace_back(node, name_cookie(name), name);
  if (removed_.size() > kRemovedKept) removed_.pop_front();
}

void Listings::done(uint64_t node, const HashedListing* listing) {
  std::lock_guard lock(mu_);
  auto it = kept_.find(node);
  if (it == kept_.end()) return;
  std::erase_if(it->second, [&](const Kept& k) {
    if (k.listing.get() != listing) return false;
    entries_ -= k.listing->entries.size();
    return true;
  });
  if (it->second.empty()) {
    kept_.erase(it);
    std::erase(order_, node);
  }
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
