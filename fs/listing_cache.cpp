#include "fs/listing_cache.h"

namespace recall {

std::shared_ptr<const ListingCache::Listing> ListingCache::find(const std::string& folder,
                                                                uint64_t generation) {
  std::lock_guard lock(mu_);
  auto at = by_folder_.find(folder);
  if (at == by_folder_.end()) return nullptr;
  auto it = at->second;
  if (it->generation != generation) {
    drop(it);
    return nullptr;
  }
  kept_.splice(kept_.begin(), kept_, it);
  return it->listing;
}

void ListingCache::keep(const std::string& folder, uint64_t generation,
                        std::shared_ptr<const Listing> listing) {
  if (!listing || listing->size() >= kMaxEntries) return;
  std::lock_guard lock(mu_);
  if (auto at = by_folder_.find(folder); at != by_folder_.end()) {
    // A listing read at an older generation (a slow reader) must not
    // replace a newer one.
    if (at->second->generation > generation) return;
    drop(at->second);
  }
  entries_ += listing->size() + 1;
  kept_.push_front(Kept{folder, generation, std::move(listing)});
  by_folder_.emplace(folder, kept_.begin());
  while (entries_ > kMaxEntries) drop(std::prev(kept_.end()));
}

size_t ListingCache::entries() const {
  std::lock_guard lock(mu_);
  return entries_;
}

void ListingCache::drop(std::list<Kept>::iterator it) {
  entries_ -= it->listing->size() + 1;
  by_folder_.erase(it->folder);
  kept_.erase(it);
}

}  // namespace recall
