// PinKeeper — keeps the bytes of pinned files on this device, in a mount.
//
// A pin follows its file's content (Catalog::pin_follows_content), also
// content pulled from another device, whose bytes are then elsewhere at
// first. sweep(), run after each pull, fetches in the background what is
// pinned and not here, once some device or the cloud holds it (device_blobs;
// the cloud's row comes when the other device's upload completed). A blob
// whose fetch did not bring it is tried again at a later sweep: at once
// when its holders changed, else each time twice as late (kFirstRetry up to
// kLastRetry), as its holders may be offline. Thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "fs/fetcher.h"
#include "fs/library.h"

namespace recall {

class PinKeeper {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::seconds kFirstRetry{30};
  static constexpr std::chrono::seconds kLastRetry{600};

  // `fetcher` must outlive this.
  PinKeeper(Library& lib, Fetcher& fetcher) : lib_(lib), fetcher_(fetcher) {}
  // Queues the fetch of each pinned blob that a file has and this device
  // lacks, unless it was tried too recently. Returns how many it queued.
  size_t sweep(Clock::time_point now = Clock::now());

 private:
  struct Tried {
    Clock::time_point again;           // not queued before
    Clock::duration wait;              // until the try after that
    std::vector<std::string> holders;  // whom that try could ask
  };
  Library& lib_;
  Fetcher& fetcher_;
  std::mutex mu_;  // guards tried_
  std::map<std::string, Tried> tried_;
};

}  // namespace recall
