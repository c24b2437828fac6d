#include "sync/replication_worker.h"

#include <chrono>
#include <cstdio>
#include <memory>

#include "base/error.h"
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
      if (!creds || creds->account_id.empty()) continue;
      describe_chunks();
      auto cfg = load_cloud_config(lib_.dir());
      if (!cfg) continue;
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

// A few blobs per round, so that stopping stays prompt. A blob that cannot
// be read here is passed over (verify reports it); the cursor wraps around.
void ReplicationWorker::describe_chunks() {
  std::vector<std::string> batch = lib_.catalog().blobs_lacking_manifest(described_up_to_, 8);
  if (batch.empty()) {
    described_up_to_.clear();
    return;
  }
  for (const std::string& sha : batch) {
    if (stop_) return;
    described_up_to_ = sha;
    if (undescribable_.contains(sha) || !lib_.blobs().has(sha)) continue;  // evicted meanwhile
    try {
      // Unmounting does not wait for a large blob to be hashed.
      ChunkManifest m = lib_.blobs().manifest(sha, kDefaultChunkSize, &stop_);
      lib_.catalog().set_blob_manifest(sha, static_cast<int64_t>(m.chunk_size), m.packed());
    } catch (const Error& e) {
      if (e.code() == ECANCELED) return;  // described at the next start
      undescribable_.insert(sha);
      std::fprintf(stderr, "recallfs: cannot describe blob %s: %s\n", sha.c_str(), e.what());
    } catch (const std::exception& e) {
      undescribable_.insert(sha);
      std::fprintf(stderr, "recallfs: cannot describe blob %s: %s\n", sha.c_str(), e.what());
    }
  }
}

}  // namespace recall
