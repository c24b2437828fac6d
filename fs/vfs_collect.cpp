// Vfs: freeing a blob no file needs any more (collect_blob), or holding it
// in a signed-in library until the change that freed it is pushed and read
// back (release_held_blobs, after each pull).
#include <algorithm>
#include <cstdio>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/sha256.h"
#include "fs/open_file.h"
#include "fs/vfs.h"

namespace recall {

bool Vfs::blob_open_in(const std::vector<std::shared_ptr<OpenFile>>& files,
                       const std::string& sha256) {
  for (const auto& of : files) {
    std::lock_guard flock(of->mu);
    if (of->sha256 == sha256 || std::ranges::count(of->noted_blobs, sha256) > 0) return true;
  }
  return false;
}

void Vfs::collect_blob(const std::string& sha256) {
  // The blob stays while any asset needs it or a file is open on it. The
  // empty one always stays: `cmd > new` commits an empty file at its first
  // close and its content at the next, and storing and removing it each
  // time cost two fsyncs.
  if (sha256.empty() || sha256 == kEmptySha256) return;
  std::unique_lock storing(store_mu_, std::try_to_lock);
  if (!storing) {  // a put under way may have found these very bytes
    collect_later_.push_back(sha256);
    collect_waiting_ = true;
    return;
  }
  collect_waiting_ = false;
  std::vector<std::string> shas = std::exchange(collect_later_, {});
  shas.push_back(sha256);
  std::vector<std::shared_ptr<OpenFile>> files;
  {
    std::lock_guard lock(files_mu_);  // not held while waiting for a file's lock
    for (const auto& [id, of] : files_) files.push_back(of);
  }
  for (const std::string& sha : shas) {
    if (blob_open_in(files, sha)) continue;
    try {
      remove_blob(sha);
    } catch (const std::exception& e) {
      // The operation that freed it has happened; the bytes are tried
      // again at the next collection.
      std::fprintf(stderr, "recallfs: could not free blob %s: %s\n", sha.c_str(), e.what());
      collect_later_.push_back(sha);
    }
  }
}

void Vfs::release_held_blobs(const ConfirmDrops& confirm) noexcept {
  // In batches, the namespace released in between: a pull that removed a
  // big folder frees many.
  constexpr size_t kBatch = 100;
  try {
    for (int round = 0; round < 1000 && release_held_batch(kBatch, confirm) == kBatch; ++round) {
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recallfs: could not free held bytes: %s\n", e.what());
  }
}

size_t Vfs::release_held_batch(size_t limit, const ConfirmDrops& confirm) {
  std::vector<std::string> shas = lib_.catalog().releasable_holds(limit);
  if (shas.empty()) return 0;
  auto open_files = [&] {
    std::vector<std::shared_ptr<OpenFile>> files;
    std::lock_guard lock(files_mu_);
    for (const auto& [id, of] : files_) files.push_back(of);
    return files;
  };
  Catalog& cat = lib_.catalog();
  size_t done = 0;
  std::vector<std::string> candidates;
  {
    std::lock_guard ns(ns_mu_);
    std::vector<std::shared_ptr<OpenFile>> files = open_files();
    for (const std::string& sha : shas) {
      if (blob_open_in(files, sha)) continue;  // held on, until its last close
      if (cat.assets_with_blob(sha).empty()) {
        candidates.push_back(sha);
      } else {  // named here again: nothing to free
        cat.release_hold(sha);
        ++done;
      }
    }
  }
  if (candidates.empty()) return done;
  // Asked without the namespace lock: it is a round trip to the server.
  std::set<std::string> droppable = confirm(candidates);
  std::lock_guard ns(ns_mu_);
  std::unique_lock storing(store_mu_, std::try_to_lock);
  std::vector<std::shared_ptr<OpenFile>> files = open_files();
  for (const std::string& sha : candidates) {
    if (!droppable.contains(sha)) continue;  // a row elsewhere names them: held until it arrives
    // The server now counts this device out as their holder. Kept after
    // all (opened, named here or being stored again meanwhile): in again.
    if (!storing || blob_open_in(files, sha) || !cat.assets_with_blob(sha).empty()) {
      if (lib_.blobs().has(sha)) cat.set_device_blob(sha, true, "healthy");
      continue;
    }
    cat.release_hold(sha);
    forget_and_remove(sha);
    ++done;
  }
  return done;
}

void Vfs::collect_deferred() {
  if (!collect_waiting_) return;
  std::lock_guard ns(ns_mu_);
  if (collect_later_.empty()) return;
  std::string sha = collect_later_.back();
  collect_later_.pop_back();
  collect_blob(sha);  // (and every other one waiting)
}

void Vfs::remove_blob(const std::string& sha256) {
  if (signed_in_ && signed_in_()) {
    lib_.catalog().hold_blob(sha256);
    return;
  }
  forget_and_remove(sha256);
}

void Vfs::forget_and_remove(const std::string& sha256) {
  if (!lib_.catalog().forget_blob(sha256)) return;
  try {
    lib_.blobs().remove(sha256);
  } catch (const Error& e) {
    if (e.code() != ENOENT) throw;  // (collect_blob tries it again later)
  }
  invalidate("/blobs/" + sha256, Stale::Listing);
}

}  // namespace recall
