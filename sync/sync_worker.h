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
#include <condition_variable>
#include <functional>
#include <mutex>
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
    // How long the server may be silent in the middle of a statement before
    // the connection is given up and made again (--server-timeout).
    std::chrono::milliseconds server_timeout = PgConn::kAnswerTimeout;
    // Where this device serves peers (recorded in devices), if it does.
    std::optional<std::string> peer_address;
    // Called after each pull, with the engine (the mount frees bytes held
    // until then, asking the server: SyncEngine::confirm_drops).
    std::function<void(SyncEngine&)> after_pull;
  };
  // `changed` is told what a pull changed (to invalidate caches).
  SyncWorker(Library& lib, Options options,
             std::function<void(const Catalog::ApplyReport&)> changed);
  // Stops and joins. First this device's peer address is withdrawn (other
  // devices stop asking it for bytes) and what waits in the outbox is pushed
  // once more (a file saved just before an unmount would otherwise wait for
  // the next mount), for kLastPushWait at most: a server that does not
  // answer by then is given up on, statement and connection, and the change
  // waits.
  ~SyncWorker();
  static constexpr std::chrono::seconds kLastPushWait{3};

 private:
  void run();
  Library& lib_;
  Options options_;
  std::function<void(const Catalog::ApplyReport&)> changed_;
  std::atomic<bool> stop_{false};     // the loop ends
  std::atomic<bool> give_up_{false};  // what is under way ends (SyncEngine::cancel_when)
  std::mutex done_mu_;
  std::condition_variable done_cv_;
  bool done_ = false;  // run() has returned (guarded by done_mu_)
  std::thread thread_;
};

}  // namespace recall
