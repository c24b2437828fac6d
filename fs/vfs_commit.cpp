// Vfs: the commit that turns a file's staged bytes into a blob (phase 1,
// under the file's lock) and records it as the file's row (phase 2, in the
// namespace's order), and what a commit needs when the file's place is gone.
#include <unistd.h>

#include <cstdio>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/file_io.h"
#include "fs/names.h"
#include "fs/open_file.h"
#include "fs/vfs.h"
#include "fs/vfs_internal.h"

namespace recall {
using namespace vfs_detail;

// ---- commit ----------------------------------------------------------------

void Vfs::commit(OpenFile& of, bool consume) {
  // Phase 1, under the file's lock (writes wait): make the staged bytes a
  // blob, and leave it in of.unrecorded.
  bool dropped = false;  // a new file that could not be stored
  Place place;
  std::string name;
  bool to_record;
  try {
    std::shared_lock storing(store_mu_);  // until of.sha256 names what is stored
    std::lock_guard lock(of.mu);
    if (of.failed) {
      Error e = *of.failed;
      of.failed.reset();
      discard_staging(of, lib_.blobs());
      throw e;
    }
    if (of.dirty && !of.unlinked && !of.staging.empty()) {
      PutResult put;
      try {
        std::optional<std::string> sha;
        if (of.hash_ok && of.hashed == of.size) sha = to_hex(of.hash.peek());
        // Bytes stored already (an emptied file, a save of what was there)
        // need no fsync: their object holds them durably, and store_mu_ keeps
        // it until the row names it.
        const bool stored = sha && lib_.blobs().has(*sha);
        if (of.reserved_past_end) {  // fallocate's room past the end: not the object's
          if (::ftruncate(of.fd->get(), static_cast<off_t>(of.size)) != 0)
            throw_last_errno("give back reserved room");
          of.reserved_past_end = false;
        }
        if (!stored) fsync_fd(of.fd->get(), of.staging);
        if (consume) {
          put = lib_.blobs().adopt(of.staging, sha, !stored);
          of.staging.clear();
          of.fd = std::make_shared<UniqueFd>(lib_.blobs().open_object(put.sha256));
        } else {
          put = lib_.blobs().put_file(of.staging);
        }
      } catch (const Error& e) {
        discard_staging(of, lib_.blobs());
        // Told to the writer at its close too, when another caller (a rename)
        // met it first.
        of.failed = e;
        of.drop_truncation_note();
        if (of.pending && !of.unrecorded) {
          of.unlinked = true;  // a new file that could not be stored: gone
          dropped = true;
          place = of.place;
          name = of.name;
        }
        throw;
      }
      of.dirty = false;
      of.written = false;
      if (on_cache_changed_) on_cache_changed_(put.sha256);
      UnrecordedCommit u;
      u.generation = ++of.stored;
      u.put = put;
      u.place = of.place;
      u.name = of.name;
      u.mode = of.mode;
      u.mtime_ns = of.mtime_ns;
      if (of.unrecorded) {  // an earlier commit still waits to be recorded: this one wins
        u.old_sha = of.unrecorded->old_sha;
        u.superseded = std::move(of.unrecorded->superseded);
        if (of.unrecorded->put.sha256 != put.sha256)
          u.superseded.push_back(of.unrecorded->put.sha256);
      } else {
        u.old_sha = of.sha256;
      }
      of.sha256 = put.sha256;
      of.unrecorded = std::move(u);
    }
    to_record = of.unrecorded.has_value();
  } catch (...) {
    if (dropped) {  // files_mu_ comes before a file's lock: taken only now
      {
        std::lock_guard flock(files_mu_);
        pending_.erase(place, name);
      }
      forget_pending_name(place, name);
    }
    std::string id;
    {
      std::lock_guard lock(of.mu);
      id = of.asset_id;
    }
    written_bytes_lost(id);
    throw;
  }
  if (to_record) record(of);
  collect_deferred();  // what this put held up
}

// Phase 2, in the namespace's order. Whoever holds ns_mu_ first records what
// phase 1 stored, so a rename never works from a commit stored but not yet
// recorded (its own thread waiting for the lock the rename holds). What
// phase 1 saw may have changed meanwhile, always under ns_mu_: the file
// removed or replaced by a rename (its bytes then record nothing), handed
// over to another asset by a rename, or recorded as a new file.
void Vfs::record(OpenFile& of) {
  std::lock_guard ns(ns_mu_);
  std::optional<UnrecordedCommit> u;
  std::string asset_id;
  bool gone, pending;
  {
    std::lock_guard lock(of.mu);
    if (!of.unrecorded) return;  // recorded by another thread meanwhile
    u = std::move(of.unrecorded);
    of.unrecorded.reset();
    gone = of.unlinked;
    asset_id = of.asset_id;
    pending = of.pending;
    u->mode = of.mode;  // a chmod or utimens since phase 1 wins
    u->mtime_ns = of.mtime_ns;
  }
  try {
    if (!gone && !record_row(of, *u, asset_id, pending)) {
      // The file was removed by a way that did not mark it (a pull, or an
      // open that raced its removal): like an unlinked file from now on.
      std::lock_guard lock(of.mu);
      of.unlinked = true;
      gone = true;
    }
  } catch (...) {
    // Not recorded: back in the slot for the next commit, whose caller (the
    // writer's flush or close) then gets the error too.
    std::lock_guard lock(of.mu);
    if (!of.unrecorded) {
      of.unrecorded = std::move(u);
    } else {  // a newer commit came meanwhile and supersedes this one
      of.unrecorded->old_sha = u->old_sha;
      for (std::string& sha : u->superseded) of.unrecorded->superseded.push_back(std::move(sha));
      if (u->put.sha256 != of.unrecorded->put.sha256)
        of.unrecorded->superseded.push_back(u->put.sha256);
    }
    throw;
  }
  if (!gone) {
    std::lock_guard lock(of.mu);
    if (u->generation > of.noted_at) of.drop_truncation_note();  // it holds the truncation
  }
  // A file closed while its commit waited stays in files_ until now (see
  // release), so that an open meanwhile shares it rather than read the row
  // this records.
  bool left = leave_files_if_closed(of);
  if (gone) {  // removed or replaced meanwhile: its bytes record nothing
    collect_blob(u->old_sha);
    if (left) collect_blob(u->put.sha256);  // else its last close does
  }
  for (const std::string& sha : u->superseded) collect_blob(sha);
  if (left) {  // its last close left the rest to this record
    std::vector<std::string> noted;
    {
      std::lock_guard lock(of.mu);
      of.drop_truncation_note();
      noted = std::exchange(of.noted_blobs, {});
    }
    for (const std::string& sha : noted) collect_blob(sha);
  }
}

bool Vfs::record_row(OpenFile& of, const UnrecordedCommit& u, const std::string& asset_id,
                     bool pending) {
  if (!u.put.deduplicated) invalidate("/blobs/" + u.put.sha256, Stale::Listing);
  BlobMeta meta = blob_for(u.put, u.name);
  if (pending) {
    NewAsset n;
    n.id = asset_id;
    n.place = u.place;
    n.filename = u.name;
    n.blob = meta;
    n.mode = u.mode;
    n.mtime_ns = u.mtime_ns;
    n.local_only = is_scratch_name(u.name);
    try {
      lib_.catalog().add_asset(n);
    } catch (const Error& e) {
      // Its folder or work was removed by another device while the new file
      // was being written here (a pull keeps them while it sees the file:
      // this one came in the moment before). The file keeps its folder, made
      // again, while its work is here; else it is kept in the inbox.
      if (e.code() != ENOENT) throw;
      if (!u.place.folder.empty() && restore_folder(u.place)) {
        lib_.catalog().add_asset(n);
      } else if (u.place.work_id && !lib_.catalog().get_work(*u.place.work_id)) {
        std::fprintf(stderr,
                     "recallfs: %s was written in a work another device removed meanwhile; it "
                     "is kept in inbox/\n",
                     quote(u.name).c_str());
        n.place = Place{};
        lib_.catalog().add_asset(n);
        invalidate_in(n.place, escape_name(n.filename), Stale::Listing);
      } else {
        throw;
      }
    }
    std::lock_guard lock(files_mu_);
    std::lock_guard flock(of.mu);
    of.pending = false;
    of.place = n.place;
    pending_.erase(u.place, u.name);
    return true;
  }
  std::string replaced;
  try {
    replaced = lib_.catalog().set_asset_content(asset_id, meta, u.mtime_ns);
  } catch (const Error& e) {
    if (e.code() != ENOENT) throw;
    return false;  // deleted meanwhile: nothing to record
  }
  // A pull changed the row while the file was open: the version it had is
  // freed too (the file's own base, u.old_sha, below).
  if (replaced != u.old_sha && replaced != u.put.sha256) collect_blob(replaced);
  if (u.old_sha != u.put.sha256) {
    // (from the rows: a pull may have linked it while open)
    bool linked = !lib_.catalog().links_of(asset_id).empty();
    // The kernel wrote these bytes through the file's name: its pages are
    // right, only other names' are not.
    content_changed(asset_id, linked ? Stale::Content : Stale::Attributes);
    collect_blob(u.old_sha);
  }
  return true;
}

bool Vfs::restore_folder(const Place& place) {
  Catalog& cat = lib_.catalog();
  if (place.work_id && !cat.get_work(*place.work_id)) return false;  // its work is gone too
  Place at{place.work_id, ""};
  for (size_t from = 0; from <= place.folder.size();) {
    size_t slash = place.folder.find('/', from);
    if (slash == std::string::npos) slash = place.folder.size();
    std::string name = place.folder.substr(from, slash - from);
    Place next{place.work_id, at.folder.empty() ? name : at.folder + "/" + name};
    if (!cat.get_folder(next)) {
      cat.create_folder(at, name);
      invalidate_in(at, name, Stale::Listing);  // new in its parent's listing
    }
    at = next;
    from = slash + 1;
  }
  return true;
}

bool Vfs::leave_files_if_closed(OpenFile& of) {
  std::lock_guard lock(files_mu_);
  std::lock_guard flock(of.mu);
  if (of.handles > 0 || of.committing > 0 || of.unrecorded) return false;
  auto it = files_.find(of.asset_id);
  if (it == files_.end() || it->second.get() != &of) return true;  // already out
  files_.erase(it);
  return true;
}

void Vfs::commit_now(const std::shared_ptr<OpenFile>& of) {
  {
    std::lock_guard lock(of->mu);
    if (of->failed)
      throw Error(EIO, "a write to this file failed (its writer is told when it closes it)");
  }
  commit(*of, false);  // records any commit another thread stored, too
  std::lock_guard lock(of->mu);
  if (of->pending) throw Error(EIO, "this new file could not be stored");
}

}  // namespace recall
