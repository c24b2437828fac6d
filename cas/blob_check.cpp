// BlobStore: checking the store — verify (re-hash every object, quarantine
// the corrupt) and scan (rebuild the index from the objects on disk).
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/file_io.h"
#include "base/ids.h"
#include "base/sha256.h"
#include "cas/blob_store.h"
#include "cas/blob_store_internal.h"

namespace recall {
namespace fs = std::filesystem;
using namespace cas_detail;

// ---- verify ----------------------------------------------------------------

VerifyReport BlobStore::verify(const std::function<void(const VerifyProgress&)>& progress,
                               unsigned threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  BlobTotals totals = index_->totals();
  std::atomic<uint64_t> objects_done{0}, bytes_done{0};
  uint64_t objects_total = totals.objects - totals.by_health[Health::Modified];
  uint64_t bytes_total = totals.bytes;

  // Work is handed out a page of index rows at a time.
  std::mutex mu;
  std::condition_variable cv;
  std::string cursor;
  std::vector<BlobInfo> page;
  size_t next = 0;
  bool exhausted = false;
  unsigned running = threads;
  VerifyReport report;
  std::exception_ptr failure;

  auto take = [&]() -> std::optional<BlobInfo> {
    std::lock_guard lock(mu);
    for (;;) {
      if (next < page.size()) return page[next++];
      if (exhausted || failure) return std::nullopt;
      page = index_->page(cursor, kPageRows);
      next = 0;
      if (page.size() < kPageRows) exhausted = true;
      if (!page.empty()) cursor = page.back().sha256;
    }
  };

  auto check_one = [&](const BlobInfo& b, std::vector<std::byte>& buf) {
    fs::path p = object_path(b.sha256);
    if (before_verify_open_) before_verify_open_(b.sha256);
    int raw = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (raw < 0) {
      if (errno != ENOENT) throw_last_errno("open blob " + b.sha256);
      // Removed since its row was read (remove() erases the row first): not
      // missing, just gone.
      if (!index_->get(b.sha256)) return;
      if (b.health != Health::Missing) index_->set_health(b.sha256, Health::Missing, now_ms());
      std::lock_guard lock(mu);
      report.missing.push_back(b.sha256);
      return;
    }
    UniqueFd fd(raw);
    uint64_t size = static_cast<uint64_t>(stat_fd(fd.get(), p).st_size);
    ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    std::string actual = to_hex(hash_fd(fd.get(), 0, size, buf, &bytes_done));
    if (actual == b.sha256) {
      index_->set_health(b.sha256, Health::Healthy, now_ms());
      std::lock_guard lock(mu);
      report.checked++;
      report.bytes += size;
      return;
    }
    // Never serve these bytes again: move them out of objects/.
    fs::path q = root_ / "quarantine" / (b.sha256 + "." + std::to_string(now_ms()));
    if (::rename(p.c_str(), q.c_str()) != 0) throw_last_errno("quarantine " + quote(p.string()));
    fsync_dir(p.parent_path());
    fsync_dir(q.parent_path());
    index_->set_health(b.sha256, Health::Modified, now_ms());
    std::lock_guard lock(mu);
    report.checked++;
    report.bytes += size;
    report.modified.push_back(b.sha256);
  };

  std::vector<std::jthread> workers;
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      std::vector<std::byte> buf(kIoBuffer);
      try {
        while (auto b = take()) {
          if (b->health != Health::Modified) check_one(*b, buf);
          ++objects_done;
        }
      } catch (...) {
        std::lock_guard lock(mu);
        if (!failure) failure = std::current_exception();
      }
      std::lock_guard lock(mu);
      --running;
      cv.notify_all();
    });
  }
  for (;;) {
    std::unique_lock lock(mu);
    bool done = cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return running == 0; });
    lock.unlock();
    if (progress)
      progress(VerifyProgress{objects_done.load(), std::max(objects_total, objects_done.load()),
                              bytes_done.load(), std::max(bytes_total, bytes_done.load())});
    if (done) break;
  }
  workers.clear();
  if (failure) std::rethrow_exception(failure);
  return report;
}

// ---- scan ------------------------------------------------------------------

void BlobStore::record_found(const std::string& sha256, const fs::path& path, Health health,
                             ScanReport& report) {
  std::optional<BlobInfo> row = index_->get(sha256);
  if (row) {
    if (row->health == Health::Missing || row->health == Health::Modified) {
      index_->set_health(sha256, health, std::nullopt);
      report.restored++;
    } else if (health == Health::Relocated) {
      index_->set_health(sha256, health, std::nullopt);
    }
    return;
  }
  UniqueFd fd = open_file(path, O_RDONLY);
  struct stat st = stat_fd(fd.get(), path);
  index_->record_present(BlobInfo{
      .sha256 = sha256,
      .size = static_cast<uint64_t>(st.st_size),
      .created_ms = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000,
      .health = health,
      .checked_ms = std::nullopt,
      .content = probe_content(fd.get(), path)});
  report.added++;
}

ScanReport BlobStore::scan(const std::function<void(uint64_t)>& progress) {
  ScanReport report;
  fs::path objects = root_ / "objects";
  auto tick = [&] {
    if (progress && report.objects_seen % 1024 == 0) progress(report.objects_seen);
  };
  // An object found outside its place is moved back (or set aside when its
  // place is taken) and marked relocated until verify re-hashes it.
  auto relocate = [&](const fs::path& from, const std::string& sha) {
    fs::path dest = object_path(sha);
    make_dir_durable(dest.parent_path());
    if (rename_noreplace(from, dest)) {
      fsync_dir(dest.parent_path());
      fsync_dir(from.parent_path());
      record_found(sha, dest, Health::Relocated, report);
      report.relocated++;
    } else {
      fs::path q = root_ / "quarantine" / (sha + ".duplicate." + std::to_string(now_ms()));
      fs::rename(from, q);
      report.ignored++;
    }
  };

  for (const auto& top : fs::directory_iterator(objects)) {
    std::string name = top.path().filename().string();
    if (top.is_directory()) {
      for (const auto& e : fs::directory_iterator(top.path())) {
        std::string obj = e.path().filename().string();
        if (!e.is_regular_file() || !is_sha256_hex(obj)) {
          report.ignored++;
          continue;
        }
        report.objects_seen++;
        tick();
        if (obj.compare(0, 2, name) == 0)
          record_found(obj, e.path(), Health::Healthy, report);
        else
          relocate(e.path(), obj);
      }
    } else if (top.is_regular_file() && is_sha256_hex(name)) {
      report.objects_seen++;
      tick();
      relocate(top.path(), name);
    } else {
      report.ignored++;
    }
  }
  // Indexed objects that are no longer on disk.
  list([&](const BlobInfo& b) {
    if (b.health != Health::Missing && b.health != Health::Modified && !has(b.sha256)) {
      index_->set_health(b.sha256, Health::Missing, std::nullopt);
      report.missing++;
    }
    return true;
  });
  if (progress) progress(report.objects_seen);
  return report;
}

}  // namespace recall
