// Vfs: file handles — open, create, read, write, fgetattr, flush, fsync,
// release. What writes and truncations do to a file's staged bytes is in
// vfs_staging.cpp; the commit that turns them into a blob and a row is in
// vfs_commit.cpp.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <utility>

#include "base/error.h"
#include "base/file_io.h"
#include "base/ids.h"
#include "base/utf8.h"
#include "fs/fetcher.h"
#include "fs/names.h"
#include "fs/open_file.h"
#include "fs/vfs.h"
#include "fs/vfs_internal.h"

namespace recall {
namespace fs = std::filesystem;
using namespace vfs_detail;

namespace {

bool is_writable(int flags) { return (flags & O_ACCMODE) != O_RDONLY; }

}  // namespace

std::shared_ptr<Vfs::Handle> Vfs::handle(uint64_t h) {
  std::lock_guard lock(files_mu_);
  auto it = handles_.find(h);
  if (it == handles_.end()) throw Error(EBADF, "no such file handle");
  return it->second;
}

size_t Vfs::open_handles() {
  std::lock_guard lock(files_mu_);
  return handles_.size();
}

bool Vfs::blob_in_use(const std::string& sha256) {
  std::vector<std::shared_ptr<OpenFile>> files;
  {
    std::lock_guard lock(files_mu_);
    for (const auto& [id, h] : handles_)
      if (!h->of && h->sha256 == sha256) return true;
    for (const auto& [id, of] : files_) files.push_back(of);
  }
  for (const auto& of : files) {
    std::lock_guard lock(of->mu);
    if ((of->handles > 0 || of->unrecorded) && of->sha256 == sha256) return true;
  }
  return false;
}

std::optional<uint64_t> Vfs::add_handle(std::shared_ptr<OpenFile> of, int flags) {
  std::lock_guard lock(files_mu_);
  // Its last close (release, record) may have taken it out of files_ since
  // it was looked up. A handle on it then would write to a state no later
  // open, rename or removal finds: the caller looks again.
  auto it = files_.find(of->asset_id);
  if (it == files_.end() || it->second != of) return std::nullopt;
  return add_handle_locked(std::move(of), flags);
}

uint64_t Vfs::add_handle_locked(std::shared_ptr<OpenFile> of, int flags) {
  auto h = std::make_shared<Handle>();
  h->writable = is_writable(flags);
  {
    std::lock_guard flock(of->mu);
    of->handles++;
    if (h->writable) of->writers++;
  }
  h->of = std::move(of);
  uint64_t id = next_handle_++;
  handles_[id] = std::move(h);
  return id;
}

BlobMeta Vfs::blob_for(const PutResult& put, const std::string& name) {
  return Library::blob_meta(put, name);
}

// The shared state of a stored file, made on first use.
std::shared_ptr<OpenFile> Vfs::open_file_for(const Node& n) {
  const std::string& id = n.entry->asset->id;
  if (std::shared_ptr<OpenFile> of = find_open(id)) return of;
  // The row as it is now, not as the path was resolved, and under ns_mu_:
  // a local change between reading it and the state made from it being in
  // files_ (a save renamed over the file, whose rename finds no open state
  // to detach) would leave this state on the replaced version.
  std::lock_guard ns(ns_mu_);
  std::optional<Asset> now = lib_.catalog().get_asset(id);
  if (!now) throw Error(ENOENT, "no such file (it was removed)");
  if (on_open_row_read_) on_open_row_read_();
  std::lock_guard lock(files_mu_);
  if (auto it = files_.find(id); it != files_.end()) return it->second;
  const Asset& a = *now;
  auto of = std::make_shared<OpenFile>();
  of->asset_id = a.id;
  of->place = n.place;
  of->name = n.entry->name;
  of->mode = a.mode;
  of->mtime_ns = a.mtime_ns;
  of->sha256 = a.sha256;
  of->size = a.bytes;
  of->linked = n.entry->extra_links > 0;
  if (lib_.blobs().has(a.sha256))
    of->fd = std::make_shared<UniqueFd>(lib_.blobs().open_object(a.sha256));
  files_[a.id] = of;
  return of;
}

// ---- open and create -------------------------------------------------------

// A file opened for writing needs its committed bytes here: a write copies
// them. They may be elsewhere only (a synced version), also when the file
// was open already.
void Vfs::bring_bytes_here(OpenFile& of) {
  std::string sha;
  {
    std::lock_guard lock(of.mu);
    if (of.fd || !of.staging.empty() || of.size == 0 || of.sha256.empty()) return;
    sha = of.sha256;
  }
  std::shared_ptr<UniqueFd> fd;
  if (lib_.blobs().has(sha)) {
    fd = std::make_shared<UniqueFd>(lib_.blobs().open_object(sha));
  } else {
    if (!fetcher_) throw Error(EIO, "the bytes of this file are not on this device");
    // (From the fetched bytes also when the cache has no room to keep them:
    // an edit works whatever the budget.)
    fd = std::make_shared<UniqueFd>(fetcher_->whole(sha));
  }
  std::lock_guard lock(of.mu);
  if (!of.fd && of.staging.empty() && of.sha256 == sha) of.fd = std::move(fd);
}

Vfs::OpenResult Vfs::open(std::string_view path, int flags) {
  // Again only when the file's open state left files_ between its lookup
  // and the handle (its last close raced this open): rare, and the next
  // look finds the row that close recorded.
  for (;;)
    if (std::optional<OpenResult> r = open_once(path, flags)) return *r;
}

std::optional<Vfs::OpenResult> Vfs::open_once(std::string_view path, int flags) {
  Resolved r = resolve(path);
  if (r.node.is_dir()) throw Error(EISDIR, "is a directory: " + quote(path));
  const bool writable = is_writable(flags) || (flags & O_TRUNC);
  if (r.node.kind == Node::Kind::Blob) {
    if (writable) throw Error(EROFS, "blobs/ is read-only");
    auto h = std::make_shared<Handle>();
    h->blob_fd = lib_.blobs().open_object(r.node.sha256);
    h->sha256 = r.node.sha256;
    lib_.blobs().touch(r.node.sha256);
    std::lock_guard lock(files_mu_);
    uint64_t id = next_handle_++;
    handles_[id] = std::move(h);
    return OpenResult{id, true};  // a blob never changes
  }
  std::shared_ptr<OpenFile> of = r.pending;
  if (!of) {
    const Asset& a = *r.node.entry->asset;
    if (!writable) {
      of = find_open(a.id);
      if (!of) {
        // A read-only snapshot of the committed bytes: it stays consistent
        // even if someone starts writing the file, and can be spliced. The
        // row as it is now (see open_file_for).
        std::optional<Asset> now = lib_.catalog().get_asset(a.id);
        if (!now) throw Error(ENOENT, "no such file (it was removed): " + quote(path));
        auto h = std::make_shared<Handle>();
        for (;;) {
          try {
            h->blob_fd = lib_.blobs().open_object(now->sha256);
            break;
          } catch (const Error& e) {
            if (e.code() != ENOENT) throw;
          }
          // A save renamed over the file since the row was read may have
          // freed these bytes: read the row again.
          std::optional<Asset> again = lib_.catalog().get_asset(a.id);
          if (!again) throw Error(ENOENT, "no such file (it was removed): " + quote(path));
          if (again->sha256 == now->sha256) break;
          now = std::move(again);
        }
        const Asset& cur = *now;
        h->sha256 = cur.sha256;
        if (h->blob_fd) {
          ::posix_fadvise(h->blob_fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
          lib_.blobs().touch(cur.sha256);
        } else {
          // Not here: read it from its holders, verified, as it is read.
          try {
            if (!fetcher_) throw Error(EIO, "this library has no other holders (a guest library)");
            h->remote = fetcher_->open(cur.sha256);
          } catch (const Error& f) {
            std::fprintf(stderr, "recallfs: %s: its bytes (%s) are not on this device: %s\n",
                         quote(path).c_str(), cur.sha256.c_str(), f.what());
            throw Error(EIO, "the bytes of " + quote(path) + " are not on this device");
          }
        }
        h->asset_id = cur.id;
        r.node.entry->asset = cur;  // its attributes as they are now too
        h->snapshot_attr = node_attr(r.node);
        std::lock_guard lock(files_mu_);
        // The kernel has one page cache for the file: while a reader of
        // another version may fill it, this one bypasses it.
        std::map<std::string, int>& versions = snapshot_readers_[cur.id];
        const bool direct = std::ranges::any_of(
            versions, [&](const auto& v) { return v.first != cur.sha256 && v.second > 0; });
        std::string& cached = last_opened_sha_[std::string(path)];
        const bool keep = !direct && cached == cur.sha256;
        if (!direct) cached = cur.sha256;
        versions[cur.sha256]++;
        uint64_t id = next_handle_++;
        handles_[id] = std::move(h);
        return OpenResult{id, keep, direct};
      }
    } else {
      of = open_file_for(r.node);
      // Writing keeps the old bytes (unless truncating): bring them here
      // first. (Not under the file's lock: a fetch takes seconds.)
      if (!(flags & O_TRUNC)) {
        try {
          bring_bytes_here(*of);
        } catch (...) {
          leave_files_if_closed(*of);  // made for this open, which failed
          throw;
        }
      }
    }
  }
  if (on_open_state_found_) on_open_state_found_();
  // O_RDONLY|O_TRUNC truncates on Linux: this handle writes (the kernel's
  // file stays read-only).
  if ((flags & O_TRUNC) && (flags & O_ACCMODE) == O_RDONLY) flags = (flags & ~O_ACCMODE) | O_RDWR;
  std::optional<uint64_t> added = add_handle(of, flags);
  if (!added) return std::nullopt;
  const uint64_t id = *added;
  bool direct;
  {
    // Bytes being written: while readers of a committed version (snapshots)
    // are open, these bypass the page cache they read from; otherwise they
    // fill it with bytes no later reader may keep.
    std::lock_guard lock(files_mu_);
    auto it = snapshot_readers_.find(of->asset_id);
    direct = it != snapshot_readers_.end();
    if (!direct) last_opened_sha_.erase(std::string(path));
  }
  if (flags & O_TRUNC) {
    try {
      ftruncate(id, 0);
    } catch (...) {
      release(id);
      throw;
    }
  }
  return OpenResult{id, false, direct};
}

Vfs::OpenResult Vfs::create(std::string_view path, mode_t mode, int flags) {
  std::unique_lock ns(ns_mu_);
  std::string leaf;
  Resolved parent = resolve_parent(path, leaf);
  check_writable_dir(parent.node, true);
  const std::string& raw = leaf;  // a name made here is shown as typed
  if (tree_.child(parent.node, leaf) || find_pending(parent.node.place, raw)) {
    if (flags & O_EXCL) throw Error(EEXIST, "exists: " + quote(path));
    ns.unlock();
    return open(path, flags);
  }
  require_utf8(raw, "a name");
  auto of = std::make_shared<OpenFile>();
  of->asset_id = new_row_id();
  of->pending = true;
  of->place = parent.node.place;
  of->name = raw;
  of->mode = mode & 07777;
  of->mtime_ns = now_ns();
  {
    std::lock_guard lock(of->mu);
    ensure_staging(*of, false);
    of->dirty = true;  // an empty new file is still a file
  }
  uint64_t handle;
  {
    std::lock_guard lock(files_mu_);
    files_[of->asset_id] = of;
    pending_.add(of->place, raw, of->asset_id);
    handle = add_handle_locked(of, flags | O_RDWR);
  }
  names_changed(dir_key(parent.node));  // once the name is there to list
  return {handle, false};
}

// ---- read and write --------------------------------------------------------

size_t Vfs::read(uint64_t h, std::span<std::byte> buf, uint64_t offset) {
  std::shared_ptr<Handle> hd = handle(h);
  if (hd->remote) return fetcher_->read(*hd->remote, buf, offset);
  if (!hd->of) return pread_full(hd->blob_fd.get(), buf, offset);
  std::shared_ptr<UniqueFd> fd;
  {
    std::lock_guard lock(hd->of->mu);
    fd = hd->of->fd;
  }
  if (!fd) throw Error(EIO, "the bytes of this file are not on this device");
  return pread_full(fd->get(), buf, offset);
}

Vfs::SpliceSource Vfs::splice_source(uint64_t h, size_t size, uint64_t offset) {
  std::shared_ptr<Handle> hd = handle(h);
  if (hd->of) return {};
  if (hd->remote) {
    // The lease goes before the blob it is of.
    auto hold = std::make_shared<std::pair<std::shared_ptr<Fetcher::Remote>, Fetcher::Lease>>(
        hd->remote, fetcher_->ready(*hd->remote, offset, size));
    size_t n = hold->second.size();
    return {Fetcher::fd(*hd->remote), n, std::move(hold)};
  }
  return {hd->blob_fd.get(), size, nullptr};
}

size_t Vfs::write(uint64_t h, std::span<const std::byte> data, uint64_t offset,
                  const NameOf& through, bool append) {
  std::shared_ptr<Handle> hd = handle(h);
  if (!hd->writable) throw Error(EBADF, "not open for writing");
  uint64_t at = stage_write(*hd->of, data, append ? std::nullopt : std::optional(offset));
  // Appended elsewhere than the kernel said: the name written through had an
  // old size (see write()), so its pages hold these bytes at `offset` and
  // its size is wrong. It drops what it caches too.
  tell_other_names(*hd->of, through, at != offset);
  return data.size();
}

void Vfs::tell_other_names(OpenFile& of, const NameOf& through, bool that_one_too) {
  std::string id;
  {
    std::lock_guard lock(of.mu);
    if ((!of.linked && !that_one_too) || of.unlinked) return;
    id = of.asset_id;
  }
  content_changed(id, Stale::Content, !that_one_too && through ? through() : std::string());
}

struct stat Vfs::fgetattr(uint64_t h) {
  std::shared_ptr<Handle> hd = handle(h);
  if (!hd->of) {
    if (hd->asset_id.empty()) {  // blobs/<sha>
      struct stat st = stat_fd(hd->blob_fd.get(), "blob");
      st.st_mode = S_IFREG | 0444;
      st.st_uid = options_.uid;
      st.st_gid = options_.gid;
      st.st_blksize = kBlockSize;
      return st;
    }
    if (auto a = lib_.catalog().get_asset(hd->asset_id)) {
      struct stat st = hd->snapshot_attr;
      st.st_mode = S_IFREG | (a->mode & 07777);
      set_times(st, a->mtime_ns, a->updated_ms * 1000000);
      return st;
    }
    return hd->snapshot_attr;  // deleted while open
  }
  return open_file_attr(*hd->of);
}

// The asset a handle writes to (a rename over another file may change it).
std::string Vfs::asset_of(const Handle& hd) {
  if (!hd.of) return hd.asset_id;
  std::lock_guard lock(hd.of->mu);
  return hd.of->asset_id;
}

// A handle of a file removed, or replaced by a rename, while open: only its
// open state takes a chmod or utimens (the name now shows another file).
bool Vfs::set_detached_attrs(const Handle& hd, std::optional<uint32_t> mode,
                             std::optional<int64_t> mtime_ns) {
  if (!hd.of) return false;
  std::lock_guard lock(hd.of->mu);
  if (!hd.of->unlinked) return false;
  if (mode) hd.of->mode = *mode;
  if (mtime_ns) hd.of->mtime_ns = *mtime_ns;
  return true;
}

void Vfs::fchmod(uint64_t h, mode_t mode) {
  std::shared_ptr<Handle> hd = handle(h);
  if (set_detached_attrs(*hd, mode & 07777, std::nullopt)) return;
  std::string id = asset_of(*hd);
  if (id.empty()) throw Error(EROFS, "blobs/ is read-only");
  set_file_attrs(id, mode & 07777, std::nullopt);
}

void Vfs::futimens(uint64_t h, std::optional<int64_t> mtime_ns) {
  if (!mtime_ns) return;
  std::shared_ptr<Handle> hd = handle(h);
  if (set_detached_attrs(*hd, std::nullopt, mtime_ns)) return;
  std::string id = asset_of(*hd);
  if (id.empty()) throw Error(EROFS, "blobs/ is read-only");
  set_file_attrs(id, std::nullopt, mtime_ns);
}

void Vfs::flush(uint64_t h) {
  std::shared_ptr<Handle> hd = handle(h);
  if (!hd->of || !hd->writable) return;
  int writers;
  bool truncated = false;
  {
    std::lock_guard lock(hd->of->mu);
    writers = hd->of->writers;
    if (!hd->of->written && !hd->of->pending && !hd->of->failed) {
      // Nothing written (maybe truncated): left for release, see OpenFile::written.
      if (hd->of->dirty)
        truncated = true;
      else
        return;
    }
  }
  if (truncated) return note_truncation(*hd->of);
  // The last writer's close moves the staged bytes into the store; with
  // other writers still open they are copied, and staging goes on.
  commit(*hd->of, writers <= 1);
}

void Vfs::fsync(uint64_t h) {
  std::shared_ptr<Handle> hd = handle(h);
  if (!hd->of || !hd->writable) return;
  commit(*hd->of, false);
}

void Vfs::release(uint64_t h) {
  std::shared_ptr<Handle> hd;
  {
    std::lock_guard lock(files_mu_);
    auto it = handles_.find(h);
    if (it == handles_.end()) return;
    hd = std::move(it->second);
    handles_.erase(it);
    if (!hd->of && !hd->asset_id.empty()) {
      if (auto r = snapshot_readers_.find(hd->asset_id); r != snapshot_readers_.end()) {
        if (auto v = r->second.find(hd->sha256); v != r->second.end() && --v->second <= 0)
          r->second.erase(v);
        if (r->second.empty()) snapshot_readers_.erase(r);
      }
    }
  }
  if (!hd->of) {
    if (on_closed_ && !hd->sha256.empty()) on_closed_(hd->sha256);
    return;
  }
  OpenFile& of = *hd->of;
  bool commit_now;
  {
    std::lock_guard lock(of.mu);
    of.handles--;
    if (hd->writable) of.writers--;
    commit_now = hd->writable && of.writers == 0 && (of.dirty || of.failed) && !of.unlinked;
    if (commit_now) of.committing++;  // another handle's release must leave it in files_
  }
  if (commit_now) {
    try {
      commit(of, true);
    } catch (const Error& e) {
      // release() cannot report errors; flush already did, when it could.
      std::fprintf(stderr, "recallfs: could not store a closed file: %s\n", e.what());
    }
    std::lock_guard lock(of.mu);
    of.committing--;
  }
  bool dropped = false;  // a new file that was never stored
  Place place;
  std::string name, orphan;        // orphan: the blob of a file removed while open
  std::vector<std::string> noted;  // blobs stored for truncation notes
  std::string closed;              // the blob no handle has open any more
  {
    std::lock_guard lock(files_mu_);
    std::lock_guard flock(of.mu);
    // A commit under way (another handle's release) or stored and not yet
    // recorded (its thread waits for ns_mu_): whoever finishes it takes the
    // file out of files_ (Vfs::record, or that release).
    if (of.handles > 0 || of.committing > 0) return;
    if (!of.staging.empty()) ::unlink(of.staging.c_str());
    of.staging.clear();
    if (of.unrecorded) return;
    of.drop_truncation_note();
    noted = std::move(of.noted_blobs);
    of.noted_blobs.clear();
    dropped = of.pending && pending_.erase(of.place, of.name);
    place = of.place;
    name = of.name;
    if (of.unlinked) orphan = of.sha256;
    closed = of.sha256;
    if (auto it = files_.find(of.asset_id); it != files_.end() && it->second.get() == &of) {
      files_.erase(it);
    }
  }
  if (dropped) forget_pending_name(place, name);
  if (on_closed_ && !closed.empty()) on_closed_(closed);
  // unlink() left the orphan to the last close; collect_blob keeps what is needed.
  if (!orphan.empty()) noted.push_back(orphan);
  if (!noted.empty()) {
    std::lock_guard ns(ns_mu_);
    for (const std::string& sha : noted) {
      try {
        collect_blob(sha);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "recallfs: could not free a closed file's old bytes: %s\n", e.what());
      }
    }
  }
}

void Vfs::written_bytes_lost(const std::string& asset_id) noexcept {
  {
    std::lock_guard lock(files_mu_);
    last_opened_sha_.clear();  // (all its names) the next opens drop the kernel's pages
  }
  try {
    content_changed(asset_id);  // attributes (the size written) and pages, for open handles
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recallfs: cache invalidation: %s\n", e.what());
  }
}

void Vfs::forget_pending_name(const Place& place, const std::string& name) noexcept {
  try {
    invalidate_in(place, escape_name(name), Stale::Name);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recallfs: cache invalidation: %s\n", e.what());
  }
}

}  // namespace recall
