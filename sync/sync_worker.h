// SyncWorker — the mount daemon's background sync: one thread that, while
// the library is signed in (DATA/credentials.json exists: sign-in and
// sign-out are picked up without a remount), pushes the outbox soon after
// each change and pulls when the server NOTIFYs the account's channel (or
// every poll_interval, as a backup). Failures are recorded in the catalog
// (sync.last_error) and retried with exponential backoff; nothing is lost.
// A guest library makes no network call at all.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fs/library.h"
#include "sync/sync_engine.h"

namespace recall {

class SyncWorker {
 public:
  struct Options {
    std::chrono::milliseconds tick{300};             // how often the outbox is checked
    std::chrono::milliseconds poll_interval{15000};  // pulls without a NOTIFY
    std::chrono::milliseconds max_backoff{15000};
    // Where this device serves peers (recorded in devices), if it does.
    std::optional<std::string> peer_address;
    // Called after each pull, with the engine (the mount frees bytes held
    // until then, asking the server: SyncEngine::confirm_drops).
    std::function<void(SyncEngine&)> after_pull;
  };
  // `changed` is told what a pull changed (to invalidate caches).
  SyncWorker(Library& lib, Options options,
             std::function<void(const Catalog::ApplyReport&)> changed);
  ~SyncWorker();  // stops and joins

 private:
  void run();
  Library& lib_;
  Options options_;
  std::function<void(const Catalog::ApplyReport&)> changed_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace recall
