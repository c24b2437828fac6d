#include "fs/pin_keeper.h"

#include <algorithm>
#include <set>

namespace recall {

size_t PinKeeper::sweep(Clock::time_point now) {
  std::vector<std::string> pinned = lib_.catalog().pinned_file_blobs();
  std::lock_guard lock(mu_);
  std::set<std::string> wanted;
  size_t queued = 0;
  const std::string self = lib_.catalog().device_id();
  for (const std::string& sha : pinned) {
    if (lib_.blobs().has(sha)) continue;
    wanted.insert(sha);
    std::vector<std::string> holders;
    for (const DeviceBlob& h : lib_.catalog().holders(sha))
      if (h.present && h.device_id != self) holders.push_back(h.device_id);
    if (holders.empty()) continue;  // nobody to ask yet
    std::sort(holders.begin(), holders.end());
    auto it = tried_.find(sha);
    const bool news = it == tried_.end() || it->second.holders != holders;
    if (!news && now < it->second.again) continue;
    Clock::duration wait = news ? Clock::duration(kFirstRetry) : it->second.wait;
    tried_[sha] = Tried{now + wait, std::min<Clock::duration>(wait * 2, kLastRetry), holders};
    fetcher_.fetch_in_background(sha);
    ++queued;
  }
  // Here now, unpinned, or no file has it any more: forgotten.
  std::erase_if(tried_, [&](const auto& entry) { return !wanted.contains(entry.first); });
  return queued;
}

}  // namespace recall
