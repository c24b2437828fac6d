#include "sync/replicator.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>

#include "base/error.h"
#include "base/file_io.h"
#include "base/ids.h"

namespace recall {

Replicator::Replicator(Library& lib, const S3Config& config, std::string owner_id)
    : lib_(lib), s3_(config), owner_(std::move(owner_id)) {}

size_t Replicator::enqueue_missing() {
  Catalog& cat = lib_.catalog();
  cat.reset_interrupted_jobs();
  size_t added = 0;
  for (const std::string& sha : cat.blobs_missing_from(kCloudHolder)) {
    cat.enqueue_job(sha, cat.device_id(), "cloud");
    ++added;
  }
  return added;
}

size_t Replicator::run(const std::atomic<bool>& stop,
                       const std::function<void(const ReplicationJob&)>& progress) {
  Catalog& cat = lib_.catalog();
  size_t done = 0;
  // Stopping also ends a request to a silent cloud, not only the next part.
  s3_.cancel_when(&stop);
  struct Forget {
    S3Client& s3;
    ~Forget() { s3.cancel_when(nullptr); }
  } forget{s3_};
  while (!stop) {
    std::optional<ReplicationJob> job = cat.take_job("cloud");
    if (!job) break;
    try {
      upload(*job, stop, progress);
      if (job->status == "completed") ++done;
    } catch (const Error& e) {
      if (e.code() == ECANCELED) {  // stopped, not failed: resumes at the next start
        job->status = "pending";
        cat.update_job(*job);
        break;
      }
      job->status = "failed";
      job->attempts++;
      job->error = e.what();
      // 2 s, 4 s, 8 s ... up to 5 minutes between attempts.
      job->next_attempt_ms =
          now_ms() + std::min<int64_t>(300000, 1000LL << std::min<int64_t>(job->attempts, 9));
      cat.update_job(*job);
      if (progress) progress(*job);
    }
  }
  return done;
}

void Replicator::upload(ReplicationJob& job, const std::atomic<bool>& stop,
                        const std::function<void(const ReplicationJob&)>& progress) {
  Catalog& cat = lib_.catalog();
  BlobStore& blobs = lib_.blobs();
  if (!blobs.has(job.sha256)) {  // evicted or removed since: nothing to send
    job.status = "cancelled";
    job.error = "the blob is no longer on this device";
    cat.update_job(job);
    return;
  }
  UniqueFd fd = blobs.open_object(job.sha256);
  uint64_t size = static_cast<uint64_t>(stat_fd(fd.get(), "blob").st_size);
  // The manifest first: once the bytes are in the cloud, readers need it.
  ChunkManifest m = blobs.manifest(job.sha256);
  cat.set_blob_manifest(job.sha256, static_cast<int64_t>(m.chunk_size), m.packed());

  std::string key = s3_.key_for(owner_, job.sha256);
  auto report = [&](uint64_t bytes) {
    job.bytes_transferred = bytes;
    job.progress = size ? static_cast<double>(bytes) / static_cast<double>(size) : 1.0;
    cat.update_job(job);
    if (progress) progress(job);
  };
  std::optional<uint64_t> there = s3_.head(key);
  if (!there || *there != size) {
    if (size <= kPartSize) {
      s3_.put(key, fd.get(), 0, size);
      report(size);
    } else {
      // Resume: the parts the store already has (of the right size) stay.
      std::map<int, S3Part> have;
      if (job.upload_id) {
        try {
          for (const S3Part& p : s3_.list_parts(key, *job.upload_id)) have[p.number] = p;
        } catch (const Error& e) {
          if (e.code() != ENOENT) throw;
          job.upload_id.reset();
        }
      }
      if (!job.upload_id) {
        job.upload_id = s3_.create_multipart(key);
        cat.update_job(job);  // before any part, so a crash can resume it
      }
      int count = static_cast<int>((size + kPartSize - 1) / kPartSize);
      std::vector<S3Part> parts;
      uint64_t sent = 0;
      for (int n = 1; n <= count; ++n) {
        uint64_t off = static_cast<uint64_t>(n - 1) * kPartSize;
        uint64_t len = std::min(kPartSize, size - off);
        auto it = have.find(n);
        if (it != have.end() && it->second.size == len) {
          parts.push_back(it->second);
        } else {
          if (stop) {  // leave the rest for the next run: the job resumes
            job.status = "pending";
            cat.update_job(job);
            return;
          }
          parts.push_back({n, s3_.upload_part(key, *job.upload_id, n, fd.get(), off, len), len});
        }
        sent += len;
        report(sent);
      }
      try {
        s3_.complete_multipart(key, *job.upload_id, parts);
      } catch (const Error& e) {
        // A retried Complete whose first try succeeded (the answer was lost)
        // finds no upload: the HEAD below decides.
        if (e.code() != ENOENT) throw;
      }
    }
    there = s3_.head(key);
    if (!there || *there != size)
      throw Error(EIO, "the cloud copy of " + job.sha256 + " has the wrong size after upload");
  }
  cat.set_device_blob(job.sha256, true, "healthy", kCloudHolder);
  job.status = "completed";
  job.upload_id.reset();
  job.error.reset();
  job.completed_ms = now_ms();
  report(size);
}

}  // namespace recall
