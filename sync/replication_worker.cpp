#include "sync/replication_worker.h"

#include <chrono>
#include <cstdio>
#include <memory>

#include "sync/cloud_config.h"
#include "sync/credentials.h"
#include "sync/replicator.h"

namespace recall {

ReplicationWorker::ReplicationWorker(Library& lib, std::function<void()> uploaded)
    : lib_(lib), uploaded_(std::move(uploaded)), thread_([this] { run(); }) {}

ReplicationWorker::~ReplicationWorker() {
  stop_ = true;
  thread_.join();
}

void ReplicationWorker::run() {
  using clock = std::chrono::steady_clock;
  auto next_scan = clock::now();
  while (!stop_) {
    // A short nap between rounds; stop_ is checked often.
    for (int i = 0; i < 10 && !stop_; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (stop_) break;
    try {
      auto creds = load_credentials(lib_.dir());
      auto cfg = load_cloud_config(lib_.dir());
      if (!creds || !cfg || creds->account_id.empty()) continue;
      Replicator rep(lib_, *cfg, creds->account_id);
      if (clock::now() >= next_scan) {
        rep.enqueue_missing();
        next_scan = clock::now() + std::chrono::seconds(2);
      }
      if (rep.run(stop_) > 0 && uploaded_) uploaded_();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "recallfs: replication: %s\n", e.what());
    }
  }
}

}  // namespace recall
