#include "fs/listing_state.h"

#include <algorithm>

namespace recall {

uint64_t Listings::add(Kept kept) {
  std::lock_guard lock(mu_);
  uint64_t serial = next_++ & 0xffffffff;
  if (serial == 0) serial = next_++ & 0xffffffff;
  kept_.emplace(serial, std::move(kept));
  order_.push_back(serial);
  while (order_.size() > kMaxKept) {
    kept_.erase(order_.front());
    order_.pop_front();
  }
  return serial;
}

Listings::Kept Listings::find(uint64_t serial) {
  std::lock_guard lock(mu_);
  auto it = kept_.find(serial);
  return it == kept_.end() ? Kept{} : it->second;
}

void Listings::done(uint64_t serial) {
  std::lock_guard lock(mu_);
  if (kept_.erase(serial)) std::erase(order_, serial);
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
