// Replicator — puts this device's blobs in the cloud.
//
// Every blob present here that the cloud lacks gets a replication job
// (replication_jobs, to "cloud"): pending -> in_progress (bytes_transferred,
// progress) -> completed, or failed with the error and attempts, retried
// later with backoff. Before upload the blob's chunk manifest (one SHA-256
// per 4 MiB) is computed and recorded in blobs_meta, so that other devices
// can verify every chunk they fetch. Objects above one part are uploaded in
// parts (8 MiB: two chunks, as S3 wants parts of at least 5 MiB); the upload
// id is kept in the job, so an upload interrupted by a crash resumes with the
// parts the store already has. A completed upload is checked (HEAD) and
// recorded as a device_blobs row of the cloud holder, which syncs.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "fs/library.h"
#include "sync/s3_client.h"

namespace recall {

inline constexpr uint64_t kPartSize = 8ull << 20;

class Replicator {
 public:
  Replicator(Library& lib, const S3Config& config, std::string owner_id);

  // Jobs for every blob here that the cloud does not have; returns how many
  // are new. Jobs left in_progress by a crash become pending again.
  size_t enqueue_missing();
  // Runs due jobs until none is left or `stop` is set: a request under way
  // ends within about a second (even to a silent cloud) and its job is left
  // pending, to resume. Returns the jobs completed.
  size_t run(const std::atomic<bool>& stop,
             const std::function<void(const ReplicationJob&)>& progress = {});

 private:
  void upload(ReplicationJob& job, const std::atomic<bool>& stop,
              const std::function<void(const ReplicationJob&)>& progress);

  Library& lib_;
  S3Client s3_;
  std::string owner_;
};

}  // namespace recall
