// ReplicationWorker — the mount daemon's uploader: while the library is
// signed in, it first describes every blob here that has no chunk manifest
// yet (so that other devices can verify what they fetch from this one chunk
// by chunk, cloud or not); with a cloud (DATA/cloud.json) it queues a
// replication job for every blob here that the cloud lacks and runs the
// jobs, one at a time, on a thread of its own. Settings are re-read as they change; a guest makes
// no network call. Stopping (unmount) leaves an upload where it is: the job
// resumes at the next start.
#pragma once

#include <atomic>
#include <functional>
#include <set>
#include <string>
#include <thread>

#include "fs/library.h"

namespace recall {

class ReplicationWorker {
 public:
  // `uploaded` is called after a round that completed uploads (the cache
  // may evict what is now safely in the cloud).
  explicit ReplicationWorker(Library& lib, std::function<void()> uploaded = {});
  ~ReplicationWorker();  // stops between parts and joins

 private:
  void run();
  void describe_chunks();
  Library& lib_;
  std::string described_up_to_;          // sha256 cursor of describe_chunks()
  std::set<std::string> undescribable_;  // unreadable here: said once
  std::function<void()> uploaded_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace recall
