// The FUSE adapter's request handlers (see fuse_adapter.h): each libfuse3
// low-level request becomes a Vfs call, and a recall::Error an errno reply
// (guarded); make_operations is their table. The session that mounts and
// serves them is in fuse_adapter.cpp.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "fs/fuse_adapter_internal.h"

namespace recall::fuse_detail {
namespace {

// How long the kernel may keep what it was told without asking again.
// Everything that changes behind its back is invalidated (pulls, commits,
// links, blobs fetched or evicted), so these bound only what the Vfs cannot
// see: the library changed by another process (`recallfs sync` while
// mounted). A file's name is kept 1 s: a shown name can also change when a
// colliding name comes or goes ("paper (2).pdf").
constexpr double kAttrTimeout = 10;
constexpr double kDirEntryTimeout = 10;
constexpr double kFileEntryTimeout = 1;

Mount& mount_of(fuse_req_t req) { return *static_cast<Mount*>(fuse_req_userdata(req)); }

// The one place where recall::Error becomes an errno reply. `f` replies
// itself on success, as its last step.
template <typename F>
void guarded(fuse_req_t req, const char* op, F&& f) noexcept {
  int err = EIO;
  try {
    f();
    return;
  } catch (const Error& e) {
    err = e.code();
    if (err == EIO) std::fprintf(stderr, "recallfs: %s: %s\n", op, e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recallfs: %s: internal error: %s\n", op, e.what());
  }
  fuse_reply_err(req, err);
}

// A node's path. A node without one lost its name after the kernel looked
// it up: a rename over it (an editor's save), or a removal. For a reader's
// calls (open, stat) that is ESTALE, not ENOENT: the kernel then looks the
// name up again and retries once, so a reader never sees a name that a
// rename replaced go missing for a moment, as a local disk never lets it; a
// name really gone gets ENOENT from that lookup. The others keep ENOENT:
// calls through an open descriptor are not retried (getdents, fgetxattr),
// and a name replaced twice within the retry would surface ESTALE, which no
// local disk gives (link under four racing threads did).
constexpr const char* kNameGone = "this name was replaced or removed meanwhile";
std::string path_of(Mount& m, fuse_ino_t ino, int gone = ESTALE) {
  std::optional<std::string> p = m.nodes.path(ino);
  if (!p) throw Error(gone, kNameGone);
  return *p;
}
std::string child_path_of(Mount& m, fuse_ino_t parent, const char* name) {
  std::optional<std::string> p = m.nodes.child_path(parent, name);
  if (!p) throw Error(ENOENT, "no such folder (it was removed)");
  return *p;
}

// Replies with a name's node, counting the lookup the kernel now holds.
fuse_entry_param entry_for(Mount& m, fuse_ino_t parent, const char* name, const struct stat& st) {
  fuse_entry_param e{};
  e.ino = m.nodes.remember(parent, name);
  e.attr = st;
  e.attr_timeout = kAttrTimeout;
  e.entry_timeout = S_ISDIR(st.st_mode) ? kDirEntryTimeout : kFileEntryTimeout;
  return e;
}
void reply_entry(fuse_req_t req, Mount& m, fuse_ino_t parent, const char* name,
                 const struct stat& st) {
  fuse_entry_param e = entry_for(m, parent, name, st);
  if (fuse_reply_entry(req, &e) != 0) m.nodes.forget(e.ino, 1);  // interrupted
}

// A node's attributes: by its open handle when the kernel sent one or the
// node has lost its name (an unlinked file still open), by path otherwise.
struct stat attr_of(Mount& m, fuse_ino_t ino, const fuse_file_info* fi) {
  if (fi) return m.vfs->fgetattr(fi->fh);
  if (std::optional<std::string> p = m.nodes.path(ino)) return m.vfs->getattr(*p);
  if (std::optional<uint64_t> h = m.nodes.open_handle(ino)) {
    try {
      return m.vfs->fgetattr(*h);
    } catch (const Error& e) {
      if (e.code() != EBADF) throw;  // closed meanwhile: as if it had been closed before
    }
  }
  if (std::optional<struct stat> kept = m.nodes.kept_attributes(ino)) return *kept;
  throw Error(ESTALE, kNameGone);  // see path_of
}

std::optional<int64_t> mtime_of(const struct stat* attr, int to_set) {
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
  }
  if (to_set & FUSE_SET_ATTR_MTIME)
    return static_cast<int64_t>(attr->st_mtim.tv_sec) * 1000000000 + attr->st_mtim.tv_nsec;
  return std::nullopt;  // atime only: the library keeps no atime
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  guarded(req, "lookup", [&] {
    Mount& m = mount_of(req);
    struct stat st = m.vfs->getattr(child_path_of(m, parent, name));
    if (!S_ISDIR(st.st_mode)) m.stat_interest.noted(fuse_req_ctx(req)->pid);
    reply_entry(req, m, parent, name, st);
  });
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  mount_of(req).nodes.forget(ino, nlookup);
  fuse_reply_none(req);
}
void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data* forgets) {
  Mount& m = mount_of(req);
  for (size_t i = 0; i < count; ++i) m.nodes.forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
  guarded(req, "getattr", [&] {
    Mount& m = mount_of(req);
    struct stat st = attr_of(m, ino, fi);
    if (!S_ISDIR(st.st_mode)) m.stat_interest.noted(fuse_req_ctx(req)->pid);
    fuse_reply_attr(req, &st, kAttrTimeout);
  });
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
                struct fuse_file_info* fi) {
  guarded(req, "setattr", [&] {
    Mount& m = mount_of(req);
    Vfs& v = *m.vfs;
    // An open handle when the kernel sent one (ftruncate, fchmod) or the
    // file has lost its name (truncate(path) met a rename or unlink: one
    // open for writing then); the path otherwise.
    std::string path;
    uint64_t fh = fi ? fi->fh : 0;
    if (!fi) {
      if (std::optional<std::string> p = m.nodes.path(ino))
        path = std::move(*p);
      else if (std::optional<uint64_t> h =
                   m.nodes.open_handle(ino, (to_set & FUSE_SET_ATTR_SIZE) != 0))
        fh = *h;
      else
        throw Error(ENOENT, kNameGone);  // see path_of
    }
    bool by_handle = path.empty();
    struct stat st;
    try {
      if (to_set & FUSE_SET_ATTR_MODE)
        by_handle ? v.fchmod(fh, attr->st_mode) : v.chmod(path, attr->st_mode);
      if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
        v.chown(by_handle ? "/" : path, (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : uid_t(-1),
                (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : gid_t(-1));
      if (to_set & FUSE_SET_ATTR_SIZE) {
        if (attr->st_size < 0) throw Error(EINVAL, "negative size");
        auto size = static_cast<uint64_t>(attr->st_size);
        by_handle ? v.ftruncate(fh, size, [&] { return m.nodes.path(ino).value_or(""); })
                  : v.truncate(path, size);
      }
      if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW | FUSE_SET_ATTR_ATIME |
                    FUSE_SET_ATTR_ATIME_NOW)) {
        std::optional<int64_t> mtime = mtime_of(attr, to_set);
        by_handle ? v.futimens(fh, mtime) : v.utimens(path, mtime);
      }
      st = by_handle ? v.fgetattr(fh) : v.getattr(path);
    } catch (const Error& e) {
      // The handle of a nameless file, closed meanwhile: as if it had been
      // closed before.
      if (e.code() == EBADF && by_handle && !fi)
        throw Error(ENOENT, "no such file (it was removed)");
      throw;
    }
    fuse_reply_attr(req, &st, kAttrTimeout);
  });
}

// Folders need no handle (readdir is stateless): see op_init.
void op_opendir(fuse_req_t req, fuse_ino_t, struct fuse_file_info* fi) {
  if (mount_of(req).no_opendir) {
    fuse_reply_err(req, ENOSYS);
    return;
  }
  fi->fh = 0;
  fuse_reply_open(req, fi);
}

// Offsets: see Listings. "." and ".." carry no node (the kernel knows
// them), nor does any name of a listing older than the last change
// (Listings); files carry theirs only for a thread that uses them
// (StatInterest).
void readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
  guarded(req, plus ? "readdirplus" : "readdir", [&] {
    Mount& m = mount_of(req);
    if (off < 0) throw Error(EINVAL, "negative offset");
    // Files' attributes go only to a thread that stats files; only then
    // must the listing look up each file's st_blocks in the store.
    bool want_file_attrs = plus && m.stat_interest.wants_file_attrs(fuse_req_ctx(req)->pid);
    // The kept listing serves the next page while nothing was removed
    // since it was taken; a new one from the start, or when it may be old.
    auto fresh = [&] {
      Listings::Kept k;
      k.version = m.listings.version();  // before listing: a change meanwhile makes it old
      k.listing = std::make_shared<HashedListing>(
          m.vfs->list_dir(path_of(m, ino, ENOENT), want_file_attrs));
      m.listings.keep(ino, k);
      return k;
    };
    Listings::Kept kept = off ? m.listings.find(ino, want_file_attrs) : Listings::Kept{};
    bool is_fresh =
        !kept.listing || !m.listings.current(kept) || kept.listing->path != m.nodes.path(ino);
    if (is_fresh) kept = fresh();
    // Where the offset's name was: the listing that gave it out, or any
    // listing of the folder that has it (a kept one may predate a new name,
    // so a fresh one is the last resort), or the names removed lately.
    size_t start = 0;
    if (off) {
      auto cookie = static_cast<uint64_t>(off);
      std::optional<std::string> last = m.listings.name_of(ino, cookie);
      if (!last && !is_fresh) {
        kept = fresh();
        last = kept.listing->name_of(cookie);
      }
      start = last ? kept.listing->resume_after(*last)
                   : std::min<size_t>(2, kept.listing->entries.size());
    }
    bool nodes = plus && m.listings.current(kept);
    bool file_attrs = nodes && want_file_attrs && kept.listing->file_blocks;
    const auto& entries = kept.listing->entries;
    auto buf = std::make_unique_for_overwrite<char[]>(size);
    size_t used = 0;
    std::vector<uint64_t> counted;  // lookups this reply gives the kernel
    // One entry into buf, if it fits; its size.
    auto add = [&](const HashedListing::Entry& en, size_t room) -> size_t {
      auto next = static_cast<off_t>(en.cookie);  // see Listings
      if (!plus)
        return fuse_add_direntry(req, buf.get() + used, room, en.name.c_str(), &en.st, next);
      // A name without a node (ino 0) is a bare dirent to the kernel.
      bool bare =
          !nodes || en.name == "." || en.name == ".." || (!file_attrs && !S_ISDIR(en.st.st_mode));
      fuse_entry_param e{};
      e.attr = en.st;
      if (bare)
        return fuse_add_direntry_plus(req, buf.get() + used, room, en.name.c_str(), &e, next);
      e = entry_for(m, ino, en.name.c_str(), en.st);
      size_t need = fuse_add_direntry_plus(req, buf.get() + used, room, en.name.c_str(), &e, next);
      if (need > room)
        m.nodes.forget(e.ino, 1);  // not sent after all
      else
        counted.push_back(e.ino);
      return need;
    };
    for (size_t i = start; i < entries.size(); ++i) {
      size_t need = add(entries[i], size - used);
      if (need > size - used) break;
      used += need;
    }
    if (used == 0) m.listings.done(ino, kept.listing.get());  // read to its end
    if (fuse_reply_buf(req, buf.get(), used) != 0)
      for (uint64_t n : counted) m.nodes.forget(n, 1);  // interrupted: never reached the kernel
  });
}
void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info*) {
  readdir(req, ino, size, off, false);
}
void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info*) {
  readdir(req, ino, size, off, true);
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  guarded(req, "mkdir", [&] {
    Mount& m = mount_of(req);
    std::string path = child_path_of(m, parent, name);
    m.vfs->mkdir(path, mode);
    reply_entry(req, m, parent, name, m.vfs->getattr(path));
  });
}
// A folder still open somewhere (a shell's working directory) answers fstat
// once removed or replaced by a rename, as on a local disk: with its last
// attributes and no links. Taken before the change, kept after it.
class FolderGoing {
 public:
  FolderGoing(Mount& m, fuse_ino_t parent, const char* name, const std::string& path)
      : node_(m.nodes.node_of(parent, name)) {
    if (!node_) return;  // the kernel has no inode for it: nobody can hold it
    try {
      last_ = m.vfs->getattr(path);
    } catch (const Error&) {
      node_ = 0;  // not there (a rename onto a new name)
    }
    if (!S_ISDIR(last_.st_mode)) node_ = 0;  // a file keeps its open handles instead
  }
  void gone(Mount& m) {
    if (!node_) return;
    last_.st_nlink = 0;
    m.nodes.keep_attributes(node_, last_);
  }

 private:
  uint64_t node_;
  struct stat last_ {};
};

// unlink and rmdir: the name is gone (a reader may resume after it).
void remove_name(fuse_req_t req, fuse_ino_t parent, const char* name, const char* op,
                 void (Vfs::*remove)(std::string_view)) {
  guarded(req, op, [&] {
    Mount& m = mount_of(req);
    std::string path = child_path_of(m, parent, name);
    std::optional<FolderGoing> folder;  // (the kernel refuses unlink of a folder)
    if (remove == &Vfs::rmdir) folder.emplace(m, parent, name, path);
    ((*m.vfs).*remove)(path);
    m.nodes.removed(parent, name);
    if (folder) folder->gone(m);
    m.listings.removed(parent, name);
    m.listings.changed();
    fuse_reply_err(req, 0);
  });
}
void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  remove_name(req, parent, name, "rmdir", &Vfs::rmdir);
}
void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  remove_name(req, parent, name, "unlink", &Vfs::unlink);
}
void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
               const char* newname, unsigned int flags) {
  guarded(req, "rename", [&] {
    Mount& m = mount_of(req);
    std::string to = child_path_of(m, newparent, newname);
    FolderGoing replaced(m, newparent, newname, to);
    m.vfs->rename(child_path_of(m, parent, name), to, flags);
    m.nodes.moved(parent, name, newparent, newname);
    replaced.gone(m);
    m.listings.removed(parent, name);
    m.listings.changed();
    fuse_reply_err(req, 0);
  });
}
void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  guarded(req, "link", [&] {
    Mount& m = mount_of(req);
    std::string to = child_path_of(m, newparent, newname);
    m.vfs->link(path_of(m, ino, ENOENT), to);
    reply_entry(req, m, newparent, newname, m.vfs->getattr(to));
  });
}
// A library holds files and folders only.
void op_symlink(fuse_req_t req, const char*, fuse_ino_t, const char*) {
  fuse_reply_err(req, EPERM);
}
void op_mknod(fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) {
  fuse_reply_err(req, EPERM);
}
void op_readlink(fuse_req_t req, fuse_ino_t) { fuse_reply_err(req, EINVAL); }

void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
  guarded(req, "open", [&] {
    Mount& m = mount_of(req);
    Vfs::OpenResult r = m.vfs->open(path_of(m, ino), fi->flags);
    fi->fh = r.handle;
    fi->keep_cache = r.keep_cache;
    fi->direct_io = r.direct_io;
    m.nodes.add_open_handle(ino, r.handle, (fi->flags & O_ACCMODE) != O_RDONLY);
    if (fuse_reply_open(req, fi) != 0) {  // interrupted: nobody will release it
      m.nodes.remove_open_handle(ino, r.handle);
      m.vfs->release(r.handle);
    }
  });
}
void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
               struct fuse_file_info* fi) {
  guarded(req, "create", [&] {
    Mount& m = mount_of(req);
    Vfs::OpenResult r = m.vfs->create(child_path_of(m, parent, name), mode, fi->flags);
    fi->fh = r.handle;
    fi->keep_cache = r.keep_cache;
    struct stat st;
    try {
      st = m.vfs->fgetattr(r.handle);
    } catch (...) {
      m.vfs->release(r.handle);
      throw;
    }
    fuse_entry_param e = entry_for(m, parent, name, st);
    m.nodes.add_open_handle(e.ino, r.handle, (fi->flags & O_ACCMODE) != O_RDONLY);
    if (fuse_reply_create(req, &e, fi) != 0) {
      m.nodes.remove_open_handle(e.ino, r.handle);
      m.nodes.forget(e.ino, 1);
      m.vfs->release(r.handle);
    }
  });
}

// Stored bytes are spliced from the object's fd to the kernel; a file being
// written is read into memory.
void op_read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, struct fuse_file_info* fi) {
  guarded(req, "read", [&] {
    Vfs& v = *mount_of(req).vfs;
    if (off < 0) throw Error(EINVAL, "negative offset");
    Vfs::SpliceSource src = v.splice_source(fi->fh, size, static_cast<uint64_t>(off));
    if (src.fd >= 0) {
      fuse_bufvec bv = FUSE_BUFVEC_INIT(src.size);
      bv.buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
      bv.buf[0].fd = src.fd;
      bv.buf[0].pos = off;
      fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
      return;
    }
    auto buf = std::make_unique_for_overwrite<char[]>(size ? size : 1);
    size_t n = v.read(fi->fh, std::as_writable_bytes(std::span(buf.get(), size)),
                      static_cast<uint64_t>(off));
    fuse_reply_buf(req, buf.get(), n);
  });
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
              struct fuse_file_info* fi) {
  guarded(req, "write", [&] {
    if (off < 0) throw Error(EINVAL, "negative offset");
    Mount& m = mount_of(req);
    size_t n = m.vfs->write(
        fi->fh, std::as_bytes(std::span(buf, size)), static_cast<uint64_t>(off),
        [&] { return m.nodes.path(ino).value_or(""); }, (fi->flags & O_APPEND) != 0);
    fuse_reply_write(req, n);
  });
}

void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t length,
                  struct fuse_file_info* fi) {
  guarded(req, "fallocate", [&] {
    if (off < 0 || length <= 0) throw Error(EINVAL, "bad offset or length");
    Mount& m = mount_of(req);
    m.vfs->fallocate(fi->fh, mode, static_cast<uint64_t>(off), static_cast<uint64_t>(length),
                     [&] { return m.nodes.path(ino).value_or(""); });
    fuse_reply_err(req, 0);
  });
}

void op_flush(fuse_req_t req, fuse_ino_t, struct fuse_file_info* fi) {
  guarded(req, "flush", [&] {
    mount_of(req).vfs->flush(fi->fh);
    fuse_reply_err(req, 0);
  });
}
void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
  Mount& m = mount_of(req);
  m.nodes.remove_open_handle(ino, fi->fh);
  guarded(req, "release", [&] {
    m.vfs->release(fi->fh);
    fuse_reply_err(req, 0);
  });
}
void op_fsync(fuse_req_t req, fuse_ino_t, int, struct fuse_file_info* fi) {
  guarded(req, "fsync", [&] {
    mount_of(req).vfs->fsync(fi->fh);
    fuse_reply_err(req, 0);
  });
}
void op_statfs(fuse_req_t req, fuse_ino_t) {
  guarded(req, "statfs", [&] {
    struct statvfs sv = mount_of(req).vfs->statfs();
    fuse_reply_statfs(req, &sv);
  });
}

// An xattr value or name list: its size when asked with size 0.
void reply_xattr(fuse_req_t req, const std::string& v, size_t size) {
  if (size == 0)
    fuse_reply_xattr(req, v.size());
  else if (v.size() > size)
    fuse_reply_err(req, ERANGE);
  else
    fuse_reply_buf(req, v.data(), v.size());
}
void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                 int flags) {
  guarded(req, "setxattr", [&] {
    Mount& m = mount_of(req);
    m.vfs->setxattr(path_of(m, ino, ENOENT), name, std::string_view(value, size), flags);
    fuse_reply_err(req, 0);
  });
}
void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  // ls asks every file for security.selinux and ACLs: answer without a lookup.
  if (!Vfs::is_library_xattr(name)) {
    fuse_reply_err(req, Vfs::foreign_xattr_errno(name));
    return;
  }
  guarded(req, "getxattr", [&] {
    Mount& m = mount_of(req);
    reply_xattr(req, m.vfs->getxattr(path_of(m, ino, ENOENT), name), size);
  });
}
void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  guarded(req, "listxattr", [&] {
    Mount& m = mount_of(req);
    std::string all;
    for (const std::string& n : m.vfs->listxattr(path_of(m, ino, ENOENT))) all += n + '\0';
    reply_xattr(req, all, size);
  });
}
void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  guarded(req, "removexattr", [&] {
    Mount& m = mount_of(req);
    m.vfs->removexattr(path_of(m, ino, ENOENT), name);
    fuse_reply_err(req, 0);
  });
}

}  // namespace

fuse_lowlevel_ops make_operations() {
  fuse_lowlevel_ops ops{};
  ops.init = op_init;
  ops.lookup = op_lookup;
  ops.forget = op_forget;
  ops.forget_multi = op_forget_multi;
  ops.getattr = op_getattr;
  ops.setattr = op_setattr;
  ops.fallocate = op_fallocate;
  ops.opendir = op_opendir;
  ops.readdir = op_readdir;
  ops.readdirplus = op_readdirplus;
  ops.mkdir = op_mkdir;
  ops.rmdir = op_rmdir;
  ops.unlink = op_unlink;
  ops.rename = op_rename;
  ops.link = op_link;
  ops.symlink = op_symlink;
  ops.mknod = op_mknod;
  ops.readlink = op_readlink;
  ops.open = op_open;
  ops.create = op_create;
  ops.read = op_read;
  ops.write = op_write;
  ops.flush = op_flush;
  ops.release = op_release;
  ops.fsync = op_fsync;
  ops.statfs = op_statfs;
  ops.setxattr = op_setxattr;
  ops.getxattr = op_getxattr;
  ops.listxattr = op_listxattr;
  ops.removexattr = op_removexattr;
  return ops;
}

}  // namespace recall::fuse_detail
