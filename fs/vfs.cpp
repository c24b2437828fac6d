// Vfs: the core — opening the library (staging/, truncation notes left by
// a crash), resolving paths, attributes and listings, chmod and times.
// Name changes (mkdir, rmdir, unlink, link, rename) are in vfs_names.cpp;
// freeing blobs no file needs in vfs_collect.cpp; file handles in
// vfs_files.cpp, staging and truncation in vfs_staging.cpp, commits in
// vfs_commit.cpp; change notifications in vfs_changes.cpp; extended
// attributes in vfs_xattr.cpp.
#include "fs/vfs.h"

#include <unistd.h>

#include <cstdio>
#include <unordered_set>
#include <utility>

#include "base/error.h"
#include "base/file_io.h"
#include "base/ids.h"
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
  // A work or folder another device removed stays while a new file is being
  // written in it here (as a local rmdir gets ENOTEMPTY).
  lib.catalog().set_unrecorded_below([this](const Place& p) { return pending_.any_below(p); });
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
  // The fetcher's threads call back into this Vfs (a blob fetched changes
  // its files' st_blocks): they end before any member goes. (Found by
  // ThreadSanitizer: a fetch finishing during an unmount.)
  if (fetcher_) fetcher_->stop();
  lib_.catalog().set_unrecorded_below({});
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
  std::optional<std::string> id = pending_.find(place, raw);
  if (!id) return nullptr;
  auto f = files_.find(*id);
  return f == files_.end() ? nullptr : f->second;
}

// ---- attributes ------------------------------------------------------------

// What every entry shows: the library's owner, the block size, one link
// (for a folder: "not counted" to find(1)), the mount's start as its times.
struct stat Vfs::base_attr() {
  struct stat st {};
  st.st_uid = options_.uid;
  st.st_gid = options_.gid;
  st.st_blksize = kBlockSize;
  st.st_nlink = 1;
  set_times(st, started_ns_, started_ns_);
  return st;
}

struct stat Vfs::node_attr(const Node& n, bool file_blocks) {
  struct stat st = base_attr();
  switch (n.kind) {
    case Node::Kind::Root:
      st.st_ino = kRootIno;
      st.st_mode = S_IFDIR | 0755;
      return st;
    case Node::Kind::WorksDir:
      st.st_ino = kWorksIno;
      st.st_mode = S_IFDIR | 0755;
      if (auto t = names_changed_at("works")) set_times(st, *t, *t);
      return st;
    case Node::Kind::BlobsDir:
      st.st_ino = kBlobsIno;
      st.st_mode = S_IFDIR | 0555;
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
    case Node::Kind::Dir:
    case Node::Kind::File:
      break;
  }
  return facts_attr(facts_of(n), file_blocks);
}

EntryFacts Vfs::facts_of(const Node& n) {
  EntryFacts f;
  if (n.kind == Node::Kind::File) {
    const Asset& a = *n.entry->asset;
    f.kind = EntryFacts::Kind::File;
    f.mode = a.mode;
    f.extra_links = n.entry->extra_links;
    f.bytes = a.bytes;
    f.mtime_ns = a.mtime_ns;
    f.ctime_ns = a.updated_ms * 1000000;
    f.id = a.id;
    f.sha256 = digest_of_hex(a.sha256);
  } else if (n.work) {
    f.kind = EntryFacts::Kind::Work;
    f.mode = n.work->mode;
    f.mtime_ns = n.work->mtime_ns;
    f.ctime_ns = n.work->updated_ms * 1000000;
    f.id = n.work->id;
  } else if (n.folder) {
    f.kind = EntryFacts::Kind::Folder;
    f.mode = n.folder->mode;
    f.mtime_ns = f.ctime_ns = n.folder->mtime_ns;
    f.id = n.folder->id;
  } else {
    f.kind = EntryFacts::Kind::Inbox;
  }
  return f;
}

std::string Vfs::dir_key(const Node& dir) {
  if (dir.kind == Node::Kind::WorksDir) return "works";
  if (dir.work) return dir.work->id;
  if (dir.folder) return dir.folder->id;
  return dir.is_inbox() ? "inbox" : "";
}

std::string Vfs::place_key(const Place& place) {
  if (place.folder.empty()) return place.work_id ? *place.work_id : "inbox";
  std::optional<Folder> f = lib_.catalog().get_folder(place);
  return f ? f->id : "";
}

void Vfs::names_changed(const std::string& key) {
  if (key.empty()) return;
  std::lock_guard lock(dir_times_mu_);
  // Bounded: rmdir drops a folder's entry; past this many folders changed
  // in one mount, they all show the time last set on them again.
  if (names_changed_ns_.size() >= kNamesChangedKept) names_changed_ns_.clear();
  names_changed_ns_[key] = now_ns();
}

void Vfs::parent_names_changed(const Node& dir) {
  if (dir.work) return names_changed("works");
  size_t slash = dir.place.folder.rfind('/');
  names_changed(Place{dir.place.work_id,
                      slash == std::string::npos ? "" : dir.place.folder.substr(0, slash)});
}

std::optional<int64_t> Vfs::names_changed_at(const std::string& key) {
  std::lock_guard lock(dir_times_mu_);
  auto it = names_changed_ns_.find(key);
  if (it == names_changed_ns_.end()) return std::nullopt;
  return it->second;
}

struct stat Vfs::facts_attr(const EntryFacts& f, bool file_blocks) {
  struct stat st = base_attr();
  switch (f.kind) {
    case EntryFacts::Kind::Inbox:
      st.st_ino = kInboxIno;
      st.st_mode = S_IFDIR | 0755;
      if (auto t = names_changed_at("inbox")) set_times(st, *t, *t);
      return st;
    case EntryFacts::Kind::Work:
    case EntryFacts::Kind::Folder:
      st.st_ino = ino_of(f.id);
      st.st_mode = S_IFDIR | (f.mode & 07777);
      set_times(st, f.mtime_ns, f.ctime_ns);
      if (auto t = names_changed_at(f.id)) set_times(st, *t, *t);
      return st;
    case EntryFacts::Kind::File:
      break;
  }
  st.st_ino = ino_of(f.id);
  st.st_mode = S_IFREG | (f.mode & 07777);
  st.st_nlink = 1 + f.extra_links;
  st.st_size = static_cast<off_t>(f.bytes);
  if (file_blocks && f.sha256 && lib_.blobs().has(to_hex(*f.sha256)))
    st.st_blocks = static_cast<blkcnt_t>((f.bytes + 511) / 512);
  set_times(st, f.mtime_ns, f.ctime_ns);
  // A file being written shows its staged size and time.
  if (std::shared_ptr<OpenFile> of = find_open(f.id)) {
    std::lock_guard lock(of->mu);
    st.st_size = static_cast<off_t>(of->size);
    st.st_blocks = static_cast<blkcnt_t>((of->size + 511) / 512);
    st.st_mode = S_IFREG | (of->mode & 07777);
    set_times(st, of->mtime_ns, of->mtime_ns);
  }
  return st;
}

struct stat Vfs::open_file_attr(OpenFile& of) {
  struct stat st = base_attr();
  std::lock_guard lock(of.mu);
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

// The folders the catalog lists (works/, the inbox, a work, a sub-folder)
// are kept in listings_ under this key; the others (the root, blobs/) are
// listed afresh.
static std::optional<std::string> listing_key(const Node& n) {
  if (n.kind == Node::Kind::WorksDir) return "w";
  if (n.kind != Node::Kind::Dir) return std::nullopt;
  // Work ids have no '/', so the key is unambiguous.
  return (n.place.work_id ? "d1" + *n.place.work_id : std::string("d0")) + "/" + n.place.folder;
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
    for (const std::string& id : pending_.in(r.node.place, false))
      if (auto it = files_.find(id); it != files_.end()) pending.push_back(it->second);
  }
  bool more = true;
  std::unordered_set<std::string> listed;
  auto give = [&](const std::string& name, const struct stat& st) {
    if (!pending.empty()) listed.insert(name);
    more = fn(name, st);
    return more;
  };
  if (std::optional<std::string> key = listing_key(r.node)) {
    uint64_t generation = lib_.catalog().generation();  // before reading: see ListingCache
    std::shared_ptr<const ListingCache::Listing> kept = listings_.find(*key, generation);
    if (!kept) {
      auto fresh = std::make_shared<ListingCache::Listing>();
      tree_.list(r.node, [&](const std::string& name, const Node& child) {
        fresh->push_back({name, facts_of(child)});
        return true;
      });
      fresh->shrink_to_fit();
      listings_.keep(*key, generation, fresh);
      kept = std::move(fresh);
    }
    for (const ListingCache::Entry& e : *kept)
      if (!give(e.shown, facts_attr(e.facts, file_blocks))) break;
  } else {
    tree_.list(r.node, [&](const std::string& name, const Node& child) {
      return give(name, node_attr(child, file_blocks));
    });
  }
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

// ---- chmod, chown, times --------------------------------------------------

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
    case Node::Kind::Dir: {
      if (r.node.work)
        lib_.catalog().set_work_attrs(r.node.work->id, std::nullopt, *mtime_ns);
      else if (r.node.folder)
        lib_.catalog().set_folder_attrs(r.node.folder->id, std::nullopt, *mtime_ns);
      else
        return;  // the inbox's time is not kept
      std::lock_guard lock(dir_times_mu_);
      names_changed_ns_.erase(dir_key(r.node));  // the time set is the last word
      return;
    }
    default:
      return;
  }
}

}  // namespace recall
