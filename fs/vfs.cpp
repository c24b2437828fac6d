// Vfs: names — resolving paths, attributes, directories, rename, link,
// unlink, chmod and times. File handles, staging and commits are in
// vfs_files.cpp; change notifications in vfs_changes.cpp; extended
// attributes in vfs_xattr.cpp.
#include "fs/vfs.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <unordered_set>
#include <utility>

#include "base/error.h"
#include "base/file_io.h"
#include "base/ids.h"
#include "base/sha256.h"
#include "base/utf8.h"
#include "fs/fetcher.h"
#include "fs/names.h"
#include "fs/open_file.h"
#include "fs/truncation_note.h"
#include "fs/vfs_internal.h"

namespace recall {
namespace fs = std::filesystem;
using namespace vfs_detail;

Vfs::Vfs(Library& lib, const Options& options)
    : lib_(lib), tree_(lib.catalog(), lib.blobs()), options_(options), started_ns_(now_ns()) {
  staging_dir_ = lib.dir() / "staging";
  // Whatever is here belongs to files whose close() never returned (a
  // crash), except the notes of truncations whose close did.
  make_dir_durable(staging_dir_, 0700);
  apply_truncation_notes();
  remove_all_but_truncation_notes(staging_dir_);
  // Files in folders a pull of an older recallfs left without a row are
  // shown again.
  try {
    if (size_t made = lib.catalog().make_missing_folders())
      std::fprintf(stderr, "recallfs: made %zu missing folders (their files were shown nowhere)\n",
                   made);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recallfs: could not make missing folders: %s\n", e.what());
  }
}

void Vfs::apply_truncation_notes() {
  for (const TruncationNote& n : read_truncation_notes(staging_dir_)) {
    try {
      std::optional<Asset> a = lib_.catalog().get_asset(n.asset_id);
      std::optional<BlobInfo> b = lib_.blobs().stat(n.sha256);
      // A file changed since (or removed) keeps what it has now.
      if (!a || a->sha256 != n.base_sha256 || !b || !lib_.blobs().has(n.sha256)) {
        collect_blob(n.sha256);
      } else {
        PutResult put{n.sha256, b->size, true, b->content};
        lib_.catalog().set_asset_content(n.asset_id, blob_for(put, a->filename), n.mtime_ns);
        collect_blob(n.base_sha256);
      }
      ::unlink(n.file.c_str());
    } catch (const std::exception& e) {
      // Kept for the next mount: its close returned, it must not be lost.
      std::fprintf(stderr, "recallfs: a truncation closed before a crash is not applied yet: %s\n",
                   e.what());
    }
  }
  fsync_dir(staging_dir_);
}

Vfs::~Vfs() {
  // Collections a put held up, with nothing under way any more.
  std::lock_guard ns(ns_mu_);
  for (const std::string& sha : std::exchange(collect_later_, {})) {
    try {
      collect_blob(sha);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "recallfs: could not free bytes no file needs: %s\n", e.what());
    }
  }
}

// ---- resolving -------------------------------------------------------------

Vfs::Resolved Vfs::resolve_parent(std::string_view path, std::string& leaf) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  std::string_view parent = slash == std::string_view::npos ? "" : path.substr(0, slash);
  leaf = std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
  if (leaf.empty()) throw Error(EINVAL, "no name given");
  if (leaf.size() > kMaxShown) throw Error(ENAMETOOLONG, "name too long");
  Resolved r;
  r.node = tree_.resolve(parent);
  if (!r.node.is_dir()) throw Error(ENOTDIR, "not a directory: " + quote(parent));
  return r;
}

Vfs::Resolved Vfs::resolve(std::string_view path) {
  if (path.empty() || path == "/") return Resolved{Tree::root(), nullptr};
  std::string leaf;
  Resolved parent = resolve_parent(path, leaf);
  if (std::optional<Node> n = tree_.child(parent.node, leaf))
    return Resolved{std::move(*n), nullptr};
  if (parent.node.kind == Node::Kind::Dir) {
    if (auto of = find_pending(parent.node.place, leaf)) {
      Resolved r;
      r.node.kind = Node::Kind::File;
      r.node.place = parent.node.place;
      r.pending = of;
      return r;
    }
  }
  throw Error(ENOENT, "no such file or directory: " + quote(path));
}

std::shared_ptr<OpenFile> Vfs::find_pending(const Place& place, const std::string& raw) {
  std::lock_guard lock(files_mu_);
  auto it = pending_.find(pending_key(place, raw));
  if (it == pending_.end()) return nullptr;
  auto f = files_.find(it->second);
  return f == files_.end() ? nullptr : f->second;
}

// ---- attributes ------------------------------------------------------------

struct stat Vfs::node_attr(const Node& n, bool file_blocks) {
  struct stat st {};
  st.st_uid = options_.uid;
  st.st_gid = options_.gid;
  st.st_blksize = kBlockSize;
  st.st_nlink = 1;  // directories: 1 means "not counted" to find(1)
  set_times(st, started_ns_, started_ns_);
  switch (n.kind) {
    case Node::Kind::Root:
      st.st_ino = kRootIno;
      st.st_mode = S_IFDIR | 0755;
      return st;
    case Node::Kind::WorksDir:
      st.st_ino = kWorksIno;
      st.st_mode = S_IFDIR | 0755;
      return st;
    case Node::Kind::BlobsDir:
      st.st_ino = kBlobsIno;
      st.st_mode = S_IFDIR | 0555;
      return st;
    case Node::Kind::Dir:
      st.st_mode = S_IFDIR | 0755;
      if (n.work) {
        st.st_ino = ino_of(n.work->id);
        st.st_mode = S_IFDIR | (n.work->mode & 07777);
        set_times(st, n.work->mtime_ns, n.work->updated_ms * 1000000);
      } else if (n.folder) {
        st.st_ino = ino_of(n.folder->id);
        st.st_mode = S_IFDIR | (n.folder->mode & 07777);
        set_times(st, n.folder->mtime_ns, n.folder->mtime_ns);
      } else {
        st.st_ino = kInboxIno;
      }
      return st;
    case Node::Kind::Blob: {
      st.st_ino = ino_of(n.sha256);
      st.st_mode = S_IFREG | 0444;
      if (auto b = lib_.blobs().stat(n.sha256)) {
        st.st_size = static_cast<off_t>(b->size);
        st.st_blocks = static_cast<blkcnt_t>((b->size + 511) / 512);
        set_times(st, b->created_ms * 1000000, b->created_ms * 1000000);
      }
      return st;
    }
    case Node::Kind::File:
      break;
  }
  const Asset& a = *n.entry->asset;
  st.st_ino = ino_of(a.id);
  st.st_mode = S_IFREG | (a.mode & 07777);
  st.st_nlink = 1 + n.entry->extra_links;
  st.st_size = static_cast<off_t>(a.bytes);
  if (file_blocks && lib_.blobs().has(a.sha256))
    st.st_blocks = static_cast<blkcnt_t>((a.bytes + 511) / 512);
  set_times(st, a.mtime_ns, a.updated_ms * 1000000);
  // A file being written shows its staged size and time.
  if (std::shared_ptr<OpenFile> of = find_open(a.id)) {
    std::lock_guard lock(of->mu);
    st.st_size = static_cast<off_t>(of->size);
    st.st_blocks = static_cast<blkcnt_t>((of->size + 511) / 512);
    st.st_mode = S_IFREG | (of->mode & 07777);
    set_times(st, of->mtime_ns, of->mtime_ns);
  }
  return st;
}

struct stat Vfs::open_file_attr(OpenFile& of) {
  struct stat st {};
  std::lock_guard lock(of.mu);
  st.st_uid = options_.uid;
  st.st_gid = options_.gid;
  st.st_blksize = kBlockSize;
  st.st_nlink = of.unlinked ? 0 : 1;
  st.st_ino = ino_of(of.asset_id);
  st.st_mode = S_IFREG | (of.mode & 07777);
  st.st_size = static_cast<off_t>(of.size);
  st.st_blocks = static_cast<blkcnt_t>((of.size + 511) / 512);
  set_times(st, of.mtime_ns, of.mtime_ns);
  return st;
}

struct stat Vfs::getattr(std::string_view path) {
  Resolved r = resolve(path);
  return r.pending ? open_file_attr(*r.pending) : node_attr(r.node);
}

void Vfs::list_node(const Resolved& r,
                    const std::function<bool(const std::string&, const struct stat&)>& fn,
                    bool file_blocks) {
  // New files not committed yet are listed too. They are taken before the
  // catalog is read: a file whose commit moves it from one to the other
  // meanwhile is then in at least one of them (and listed once).
  std::vector<std::shared_ptr<OpenFile>> pending;
  if (r.node.kind == Node::Kind::Dir) {
    std::lock_guard lock(files_mu_);
    for (const auto& [key, id] : pending_)
      if (std::get<0>(key) == r.node.place.work_id.value_or("") &&
          std::get<1>(key) == r.node.place.folder)
        if (auto it = files_.find(id); it != files_.end()) pending.push_back(it->second);
  }
  bool more = true;
  std::unordered_set<std::string> listed;
  tree_.list(r.node, [&](const std::string& name, const Node& child) {
    if (!pending.empty()) listed.insert(name);
    more = fn(name, node_attr(child, file_blocks));
    return more;
  });
  for (const auto& of : pending) {
    if (!more) return;
    std::string name;
    {
      std::lock_guard lock(of->mu);
      name = escape_name(of->name);
    }
    if (!listed.contains(name)) more = fn(name, open_file_attr(*of));
  }
}

Vfs::DirListing Vfs::list_dir(std::string_view path, bool file_blocks) {
  Resolved r = resolve(path);
  if (!r.node.is_dir()) throw Error(ENOTDIR, "not a directory: " + quote(path));
  DirListing listing;
  listing.path = std::string(path);
  listing.file_blocks = file_blocks;
  struct stat self = node_attr(r.node);
  listing.entries.emplace_back(".", self);
  listing.entries.emplace_back("..", self);  // the kernel fills in the real parent
  list_node(
      r,
      [&](const std::string& name, const struct stat& st) {
        listing.entries.emplace_back(name, st);
        return true;
      },
      file_blocks);
  return listing;
}

struct statvfs Vfs::statfs() {
  struct statvfs sv {};
  if (::statvfs(lib_.dir().c_str(), &sv) != 0) throw_last_errno("statfs");
  sv.f_namemax = kMaxShown;
  return sv;
}

// ---- directories -----------------------------------------------------------

void Vfs::check_writable_dir(const Node& dir, bool for_file) {
  switch (dir.kind) {
    case Node::Kind::BlobsDir:
      throw Error(EROFS, "blobs/ is read-only");
    case Node::Kind::Root:
      throw Error(EPERM, "the top of the library holds only works/, inbox/ and blobs/");
    case Node::Kind::WorksDir:
      if (for_file) throw Error(EPERM, "works/ holds works (folders), not files");
      return;
    case Node::Kind::File:
    case Node::Kind::Blob:
      throw Error(ENOTDIR, "not a directory");
    case Node::Kind::Dir:
      return;
  }
}

void Vfs::mkdir(std::string_view path, mode_t mode) {
  std::lock_guard ns(ns_mu_);
  std::string leaf;
  Resolved parent = resolve_parent(path, leaf);
  check_writable_dir(parent.node, false);
  if (tree_.child(parent.node, leaf) ||
      (parent.node.kind == Node::Kind::Dir && find_pending(parent.node.place, leaf)))
    throw Error(EEXIST, "exists: " + quote(path));
  const std::string& raw = leaf;  // a name made here is shown as typed
  require_utf8(raw, "a name");
  if (parent.node.kind == Node::Kind::WorksDir)
    lib_.catalog().create_work(raw, false, mode);
  else
    lib_.catalog().create_folder(parent.node.place, raw, is_scratch_name(raw), mode);
}

std::vector<std::shared_ptr<OpenFile>> Vfs::pending_under(const Place& place) {
  std::vector<std::shared_ptr<OpenFile>> out;
  std::lock_guard lock(files_mu_);
  for (const auto& [key, id] : pending_) {
    if (std::get<0>(key) != place.work_id.value_or("")) continue;
    const std::string& folder = std::get<1>(key);
    if (place.folder.empty() || folder == place.folder || folder.starts_with(place.folder + "/"))
      if (auto it = files_.find(id); it != files_.end()) out.push_back(it->second);
  }
  return out;
}

void Vfs::remove_dir_node(const Node& n) {
  if (!pending_under(n.place).empty()) throw Error(ENOTEMPTY, "a new file inside is still open");
  if (n.work)
    lib_.catalog().delete_work(n.work->id);
  else
    lib_.catalog().delete_folder(n.folder->id);
}

void Vfs::forget_cached(std::string_view path) {
  std::lock_guard lock(files_mu_);
  last_opened_sha_.erase(std::string(path));
  // Everything below: the paths from "path/" up to (not with) "path0".
  std::string dir = std::string(path) + "/", past = std::string(path) + "0";
  last_opened_sha_.erase(last_opened_sha_.lower_bound(dir), last_opened_sha_.lower_bound(past));
}

void Vfs::rmdir(std::string_view path) {
  std::lock_guard ns(ns_mu_);
  forget_cached(path);
  Resolved r = resolve(path);
  if (!r.node.is_dir()) throw Error(ENOTDIR, "not a directory: " + quote(path));
  if (r.node.kind != Node::Kind::Dir || r.node.is_inbox())
    throw Error(EPERM, "works/, inbox/ and blobs/ cannot be removed");
  remove_dir_node(r.node);
}

// ---- unlink, link, rename ------------------------------------------------

void Vfs::unlink(std::string_view path) {
  std::lock_guard ns(ns_mu_);
  forget_cached(path);
  Resolved r = resolve(path);
  if (r.node.is_dir()) throw Error(EISDIR, "is a directory: " + quote(path));
  if (r.node.kind == Node::Kind::Blob) throw Error(EROFS, "blobs/ is read-only");
  if (r.pending) {
    std::lock_guard lock(files_mu_);
    std::lock_guard flock(r.pending->mu);
    r.pending->unlinked = true;
    r.pending->drop_truncation_note();
    pending_.erase(pending_key(r.pending->place, r.pending->name));
    return;
  }
  const Asset& a = *r.node.entry->asset;
  lib_.catalog().remove_name(*r.node.entry);
  // Its other names (kernel inodes of their own) count one link fewer.
  if (r.node.entry->extra_links > 0) content_changed(a.id, Stale::Attributes);
  if (!lib_.catalog().get_asset(a.id)) {
    // Its last name: an open writer must not bring it back.
    if (std::shared_ptr<OpenFile> of = find_open(a.id)) {
      std::lock_guard flock(of->mu);
      of->unlinked = true;
      of->drop_truncation_note();
    }
    collect_blob(a.sha256);
  }
}

void Vfs::hand_over_open_state(const std::string& from, const std::string& to, const Place& place,
                               const std::string& raw, bool to_linked) {
  std::lock_guard lock(files_mu_);
  if (auto t = files_.find(to); t != files_.end()) {
    std::lock_guard flock(t->second->mu);
    t->second->unlinked = true;  // replaced: like an unlinked file, never committed
    t->second->drop_truncation_note();
    files_.erase(t);
  }
  auto f = files_.find(from);
  if (f == files_.end()) return;
  std::shared_ptr<OpenFile> of = f->second;
  files_.erase(f);
  std::lock_guard flock(of->mu);
  if (of->unlinked) return;
  of->asset_id = to;
  of->place = place;
  of->name = raw;
  of->linked = to_linked;
  files_[to] = of;
}

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

void Vfs::link(std::string_view from, std::string_view to) {
  std::lock_guard ns(ns_mu_);
  forget_cached(to);
  Resolved src = resolve(from);
  if (src.node.is_dir()) throw Error(EPERM, "directories cannot be hard-linked");
  std::string leaf;
  Resolved parent = resolve_parent(to, leaf);
  check_writable_dir(parent.node, true);
  if (tree_.child(parent.node, leaf) || find_pending(parent.node.place, leaf))
    throw Error(EEXIST, "exists: " + quote(to));
  const std::string& raw = leaf;  // a name made here is shown as typed
  require_utf8(raw, "a name");
  if (src.node.kind == Node::Kind::Blob) {
    // ln blobs/<sha> inbox/name: a new asset for a blob already stored.
    auto info = lib_.blobs().stat(src.node.sha256);
    if (!info) throw Error(ENOENT, "blob " + src.node.sha256 + " is not on this device");
    PutResult p{src.node.sha256, info->size, true, info->content};
    NewAsset n;
    n.place = parent.node.place;
    n.filename = raw;
    n.blob = blob_for(p, raw);
    n.mode = 0444;
    n.local_only = is_scratch_name(raw);
    lib_.catalog().add_asset(n);
    return;
  }
  if (src.pending) commit_now(src.pending);
  std::string asset_id = src.pending ? src.pending->asset_id : src.node.entry->asset->id;
  lib_.catalog().link_asset(asset_id, parent.node.place, raw);
  if (std::shared_ptr<OpenFile> of = find_open(asset_id)) {
    std::lock_guard lock(of->mu);
    of->linked = true;
  }
  content_changed(asset_id, Stale::Attributes);  // every name shows one link more
}

void Vfs::rename(std::string_view from, std::string_view to, unsigned flags) {
  if (flags & RENAME_EXCHANGE) throw Error(EINVAL, "RENAME_EXCHANGE is not supported");
  std::lock_guard ns(ns_mu_);
  forget_cached(from);  // the kernel moves a name's inode, and its cache, with it
  forget_cached(to);
  Resolved src = resolve(from);
  if (src.node.kind == Node::Kind::Blob) throw Error(EROFS, "blobs/ is read-only");
  if (src.node.is_dir() && (src.node.kind != Node::Kind::Dir || src.node.is_inbox()))
    throw Error(EPERM, "works/, inbox/ and blobs/ cannot be moved");
  std::string leaf;
  Resolved parent = resolve_parent(to, leaf);
  check_writable_dir(parent.node, !src.node.is_dir());
  const std::string& raw = leaf;  // a name made here is shown as typed
  std::optional<Resolved> target;
  if (auto n = tree_.child(parent.node, leaf)) {
    target = Resolved{std::move(*n), nullptr};
  } else if (parent.node.kind == Node::Kind::Dir) {
    if (auto of = find_pending(parent.node.place, raw)) {
      Resolved t;
      t.node.kind = Node::Kind::File;
      t.node.place = parent.node.place;
      t.pending = of;
      target = t;
    }
  }
  if (target && (flags & RENAME_NOREPLACE)) throw Error(EEXIST, "exists: " + quote(to));
  // A file renamed over keeps its name (one from before names were checked
  // too); a name that comes into being must be UTF-8.
  if (!target || target->node.is_dir()) require_utf8(raw, "a name");

  if (src.node.is_dir()) {
    if (target && !target->node.is_dir()) throw Error(ENOTDIR, "not a directory: " + quote(to));
    rename_dir(src.node, parent.node, raw,
               target ? std::optional<Node>(target->node) : std::nullopt);
    return;
  }
  if (target && target->node.is_dir()) throw Error(EISDIR, "is a directory: " + quote(to));
  if (src.pending) {
    commit_now(src.pending);
  } else if (target) {
    // The content the target takes is what the source holds now, committed
    // or not: a writer may still be open, or a truncation's release (which
    // commits it) may not have arrived yet.
    if (std::shared_ptr<OpenFile> of = find_open(src.node.entry->asset->id)) commit_now(of);
  }
  if (target && target->pending) commit_now(target->pending);
  // Re-read both after the commits.
  src = resolve(from);
  if (target) target = resolve(to);
  const FolderEntry& se = *src.node.entry;
  if (target) {
    const FolderEntry& te = *target->node.entry;
    if (te.id == se.id) return;  // the same name
    if (te.asset->id == se.asset->id)
      return;  // two names of one file: POSIX
               // leaves both as they are
    // An atomic save: the target keeps its asset id and takes the content.
    BlobMeta meta;
    if (auto b = lib_.catalog().get_blob(se.asset->sha256)) meta = *b;
    meta.sha256 = se.asset->sha256;
    meta.size = se.asset->bytes;
    meta.mime = se.asset->mime;
    meta.page_count = se.asset->page_count;
    std::string old_sha;  // (the row's now: a pull may have changed it since the lookup)
    std::string source_id = se.asset->id, target_id = te.asset->id;
    const bool target_linked = te.extra_links > 0;
    // (Its bytes may be on other devices only: a synced version never read here.)
    const bool bytes_here = lib_.blobs().has(meta.sha256);
    lib_.catalog().batch([&] {
      old_sha =
          lib_.catalog().set_asset_content(te.asset->id, meta, se.asset->mtime_ns, bytes_here);
      lib_.catalog().set_asset_attrs(te.asset->id, se.asset->mode, std::nullopt);
      lib_.catalog().remove_name(se);
    });
    hand_over_open_state(source_id, target_id, parent.node.place, te.name, target_linked);
    // The name renamed over shows what the kernel wrote through the source's
    // name; the target's other names (links) show other pages now.
    content_changed(target_id, target_linked ? Stale::Content : Stale::Attributes);
    content_changed(source_id, Stale::Attributes);  // names it keeps count one link fewer
    collect_blob(old_sha);
    return;
  }
  bool local_only = is_scratch_name(raw);
  if (se.kind == FolderEntry::Kind::Link)
    lib_.catalog().move_link(se.edge->id, parent.node.place, raw);
  else
    lib_.catalog().move_asset(se.asset->id, parent.node.place, raw, local_only);
}

void Vfs::rename_dir(const Node& from, const Node& to_parent, const std::string& raw,
                     std::optional<Node> target) {
  Catalog& cat = lib_.catalog();
  // The destination as a place: a work (under works/) or a sub-folder.
  const bool to_work = to_parent.kind == Node::Kind::WorksDir;
  Place dest_parent = to_parent.place;
  if (!to_work && dest_parent.work_id == from.place.work_id &&
      (from.work || dest_parent.folder == from.place.folder ||
       dest_parent.folder.starts_with(from.place.folder + "/")))
    throw Error(EINVAL, "cannot move a folder into itself");
  if (target) {
    if (target->kind != Node::Kind::Dir || target->is_inbox())
      throw Error(EPERM, "cannot replace works/, inbox/ or blobs/");
    if (target->place == from.place) return;  // same directory
    remove_dir_node(*target);                 // ENOTEMPTY unless empty
  }
  // New files inside that are still being written become rows now, so that
  // they move with the folder (their writers go on writing to them).
  for (const std::shared_ptr<OpenFile>& of : pending_under(from.place)) commit_now(of);
  if (from.work && to_work) {
    cat.rename_work(from.work->id, raw);
    return;
  }
  if (from.folder && !to_work) {
    cat.move_folder(from.folder->id, dest_parent, raw);
    return;
  }
  // A work becoming a sub-folder, or a sub-folder becoming a work: make the
  // new directory, move everything into it, drop the old one.
  cat.batch([&] {
    Place dest;
    uint32_t mode = from.work ? from.work->mode : from.folder->mode;
    if (to_work) {
      Work w = cat.create_work(raw, false, mode);
      dest = Place{w.id, ""};
    } else {
      Folder f = cat.create_folder(dest_parent, raw, false, mode);
      dest = Place{f.work_id, f.path};
    }
    cat.move_contents(from.place, dest);
    if (from.work)
      cat.delete_work(from.work->id);
    else
      cat.delete_folder(from.folder->id);
  });
}

// ---- attributes ------------------------------------------------------------

void Vfs::chmod(std::string_view path, mode_t mode) {
  std::lock_guard ns(ns_mu_);
  Resolved r = resolve(path);
  uint32_t m = mode & 07777;
  if (r.pending) return set_file_attrs(r.pending->asset_id, m, std::nullopt);
  switch (r.node.kind) {
    case Node::Kind::Blob:
      throw Error(EROFS, "blobs/ is read-only");
    case Node::Kind::File:
      return set_file_attrs(r.node.entry->asset->id, m, std::nullopt);
    case Node::Kind::Dir:
      if (r.node.work) return lib_.catalog().set_work_attrs(r.node.work->id, m, std::nullopt);
      if (r.node.folder) return lib_.catalog().set_folder_attrs(r.node.folder->id, m, std::nullopt);
      [[fallthrough]];
    default:
      throw Error(EPERM, "the fixed folders keep their mode");
  }
}

void Vfs::chown(std::string_view path, uid_t uid, gid_t gid) {
  resolve(path);
  // A library has one owner; "changing" to it (cp -a, rsync -a) succeeds.
  if ((uid != static_cast<uid_t>(-1) && uid != options_.uid) ||
      (gid != static_cast<gid_t>(-1) && gid != options_.gid))
    throw Error(EPERM, "files in a library belong to its owner");
}

void Vfs::utimens(std::string_view path, std::optional<int64_t> mtime_ns) {
  if (!mtime_ns) return;
  std::lock_guard ns(ns_mu_);
  Resolved r = resolve(path);
  if (r.pending) return set_file_attrs(r.pending->asset_id, std::nullopt, mtime_ns);
  switch (r.node.kind) {
    case Node::Kind::Blob:
      throw Error(EROFS, "blobs/ is read-only");
    case Node::Kind::File:
      return set_file_attrs(r.node.entry->asset->id, std::nullopt, mtime_ns);
    case Node::Kind::Dir:
      if (r.node.work)
        return lib_.catalog().set_work_attrs(r.node.work->id, std::nullopt, *mtime_ns);
      if (r.node.folder)
        return lib_.catalog().set_folder_attrs(r.node.folder->id, std::nullopt, *mtime_ns);
      return;  // the inbox's time is not kept
    default:
      return;
  }
}

}  // namespace recall
