// Translates libfuse3 high-level calls into Vfs calls (see fuse_adapter.h).
#define FUSE_USE_VERSION 314
#include "fs/fuse_adapter.h"

#include <fcntl.h>
#include <fuse.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "base/error.h"
#include "fs/vfs.h"

namespace recall {
namespace {

struct MountState {
  std::shared_ptr<Vfs> vfs;
};

// Sends the kernel cache invalidations the Vfs asks for, from a thread of
// its own: a notification written from inside a request handler could wait
// on the very request being handled.
class Invalidator {
 public:
  explicit Invalidator(struct fuse* f) : f_(f), thread_([this] { run(); }) {}
  ~Invalidator() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void push(const std::string& path) {
    {
      std::lock_guard lock(mu_);
      queue_.push_back(path);
    }
    cv_.notify_all();
  }

 private:
  void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      std::string path = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      fuse_invalidate_path(f_, path.c_str());  // -ENOENT: not cached, fine
      lock.lock();
    }
  }
  struct fuse* f_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  bool stop_ = false;
  std::thread thread_;
};

Vfs& vfs() { return *static_cast<MountState*>(fuse_get_context()->private_data)->vfs; }

// The one place where recall::Error becomes -errno.
template <typename F>
int guarded(const char* op, F&& f) {
  try {
    return f();
  } catch (const Error& e) {
    if (e.code() == EIO) std::fprintf(stderr, "recallfs: %s: %s\n", op, e.what());
    return -e.code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recallfs: %s: internal error: %s\n", op, e.what());
    return -EIO;
  }
}

std::optional<int64_t> mtime_of(const struct timespec tv[2]) {
  if (!tv) return std::nullopt;  // utimes(NULL): now
  if (tv[1].tv_nsec == UTIME_OMIT) return std::nullopt;
  if (tv[1].tv_nsec == UTIME_NOW) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
  }
  return static_cast<int64_t>(tv[1].tv_sec) * 1000000000 + tv[1].tv_nsec;
}

void* op_init(struct fuse_conn_info* conn, struct fuse_config* cfg) {
  cfg->use_ino = 1;      // st_ino from the library: hard links share one
  cfg->nullpath_ok = 1;  // handle-based calls work after unlink
  cfg->hard_remove = 1;  // no .fuse_hidden files: Vfs handles unlink-while-open
  // Attributes change only through this mount, whose operations the kernel
  // follows, or behind its back, which the Vfs invalidates (pulls, content,
  // links, blobs fetched or evicted): 10 s bounds what it misses. Names are
  // kept 1 s only: the high-level API can invalidate an inode but not a
  // name, and a name deleted elsewhere must not linger (open(O_CREAT) on it
  // would fail with ENOENT).
  cfg->entry_timeout = 1;
  cfg->attr_timeout = 10;
  cfg->negative_timeout = 0;
  // Large requests: fewer round trips for big sequential reads and writes.
  conn->max_write = 1 << 20;
  conn->max_readahead = 1 << 20;
  if (conn->capable & FUSE_CAP_SPLICE_WRITE) conn->want |= FUSE_CAP_SPLICE_WRITE;
  if (conn->capable & FUSE_CAP_SPLICE_MOVE) conn->want |= FUSE_CAP_SPLICE_MOVE;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;  // writes must reach us in order, at once
  // O_TRUNC arrives with open(), not as a separate truncate: it is staged
  // with the writes, so a write that fails never leaves the file emptied.
  if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
  // The library keeps no ACLs, and permissions are the mode bits
  // (default_permissions). FUSE_CAP_POSIX_ACL is not asked for: with it the
  // kernel would check an ACL for every other user's access, and fail it
  // on our ENOTSUP.
  conn->want &= ~FUSE_CAP_POSIX_ACL;
  // Content changes are invalidated explicitly (and a blob never changes), so
  // the kernel need not re-check attributes on every read of cached pages.
  conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
  return fuse_get_context()->private_data;
}

// The high-level library looks up every entry it puts into a READDIRPLUS
// reply, by path, right there in the filler. That entry's attributes are
// the ones we just listed: the filler's thread answers from them.
struct ListingInProgress {
  const Vfs::DirListing* listing = nullptr;
  size_t index = 0;
};
thread_local ListingInProgress tl_listing;

bool attr_from_listing(const char* path, struct stat* st) {
  const ListingInProgress& l = tl_listing;
  if (!l.listing || l.index >= l.listing->entries.size()) return false;
  const auto& [name, attr] = l.listing->entries[l.index];
  std::string_view p(path), dir(l.listing->path);
  if (dir == "/") dir = "";
  if (p.size() != dir.size() + 1 + name.size() || !p.starts_with(dir) || p[dir.size()] != '/' ||
      p.substr(dir.size() + 1) != name)
    return false;
  *st = attr;
  return true;
}

int op_getattr(const char* path, struct stat* st, struct fuse_file_info* fi) {
  if (!fi && attr_from_listing(path, st)) return 0;
  return guarded("getattr", [&] {
    *st = fi ? vfs().fgetattr(fi->fh) : vfs().getattr(path);
    return 0;
  });
}

int op_opendir(const char* path, struct fuse_file_info* fi) {
  return guarded("opendir", [&] {
    fi->fh = vfs().opendir(path);
    return 0;
  });
}
int op_releasedir(const char*, struct fuse_file_info* fi) {
  return guarded("releasedir", [&] { return vfs().releasedir(fi->fh), 0; });
}

// Offsets are positions in the handle's listing (1-based; 0 = from the
// start), so the kernel can page through a directory of any size.
int op_readdir(const char*, void* buf, fuse_fill_dir_t filler, off_t offset,
               struct fuse_file_info* fi, enum fuse_readdir_flags flags) {
  return guarded("readdir", [&] {
    auto plus = (flags & FUSE_READDIR_PLUS) ? FUSE_FILL_DIR_PLUS : fuse_fill_dir_flags(0);
    std::shared_ptr<const Vfs::DirListing> listing = vfs().read_dir(fi->fh, offset == 0);
    struct Scope {
      Scope(const Vfs::DirListing* l) { tl_listing = {l, 0}; }
      ~Scope() { tl_listing = {}; }
    } scope(listing.get());
    const auto& entries = listing->entries;
    for (size_t i = static_cast<size_t>(offset); i < entries.size(); ++i) {
      tl_listing.index = i;
      if (filler(buf, entries[i].first.c_str(), &entries[i].second, static_cast<off_t>(i + 1),
                 plus))
        break;  // the reply is full; the kernel asks again from i + 1
    }
    return 0;
  });
}

int op_mkdir(const char* path, mode_t mode) {
  return guarded("mkdir", [&] { return vfs().mkdir(path, mode), 0; });
}
int op_rmdir(const char* path) {
  return guarded("rmdir", [&] { return vfs().rmdir(path), 0; });
}
int op_unlink(const char* path) {
  return guarded("unlink", [&] { return vfs().unlink(path), 0; });
}
int op_rename(const char* from, const char* to, unsigned int flags) {
  return guarded("rename", [&] { return vfs().rename(from, to, flags), 0; });
}
int op_link(const char* from, const char* to) {
  return guarded("link", [&] { return vfs().link(from, to), 0; });
}
int op_symlink(const char*, const char*) { return -EPERM; }  // a library holds files
int op_mknod(const char*, mode_t, dev_t) { return -EPERM; }
int op_readlink(const char*, char*, size_t) { return -EINVAL; }

int op_chmod(const char* path, mode_t mode, struct fuse_file_info* fi) {
  return guarded("chmod", [&] {
    fi ? vfs().fchmod(fi->fh, mode) : vfs().chmod(path, mode);
    return 0;
  });
}
int op_chown(const char* path, uid_t uid, gid_t gid, struct fuse_file_info*) {
  return guarded("chown", [&] { return vfs().chown(path ? path : "/", uid, gid), 0; });
}
int op_truncate(const char* path, off_t size, struct fuse_file_info* fi) {
  return guarded("truncate", [&] {
    if (size < 0) throw Error(EINVAL, "negative size");
    fi ? vfs().ftruncate(fi->fh, static_cast<uint64_t>(size))
       : vfs().truncate(path, static_cast<uint64_t>(size));
    return 0;
  });
}
int op_utimens(const char* path, const struct timespec tv[2], struct fuse_file_info* fi) {
  return guarded("utimens", [&] {
    fi ? vfs().futimens(fi->fh, mtime_of(tv)) : vfs().utimens(path, mtime_of(tv));
    return 0;
  });
}

int op_open(const char* path, struct fuse_file_info* fi) {
  return guarded("open", [&] {
    Vfs::OpenResult r = vfs().open(path, fi->flags);
    fi->fh = r.handle;
    fi->keep_cache = r.keep_cache;
    fi->direct_io = r.direct_io;
    return 0;
  });
}
int op_create(const char* path, mode_t mode, struct fuse_file_info* fi) {
  return guarded("create", [&] {
    Vfs::OpenResult r = vfs().create(path, mode, fi->flags);
    fi->fh = r.handle;
    fi->keep_cache = r.keep_cache;
    return 0;
  });
}

int op_read(const char*, char* buf, size_t size, off_t off, struct fuse_file_info* fi) {
  return guarded("read", [&] {
    return static_cast<int>(vfs().read(fi->fh, std::as_writable_bytes(std::span(buf, size)),
                                       static_cast<uint64_t>(off)));
  });
}

// Reads of stored bytes are spliced from the object's fd to the kernel.
int op_read_buf(const char*, struct fuse_bufvec** bufp, size_t size, off_t off,
                struct fuse_file_info* fi) {
  return guarded("read", [&] {
    auto* bv = static_cast<fuse_bufvec*>(std::malloc(sizeof(fuse_bufvec)));
    if (!bv) throw Error(ENOMEM, "out of memory");
    *bv = FUSE_BUFVEC_INIT(size);
    Vfs::SpliceSource src;
    try {
      src = vfs().splice_source(fi->fh, size, static_cast<uint64_t>(off));
    } catch (...) {
      std::free(bv);
      throw;
    }
    if (src.fd >= 0) {
      bv->buf[0].flags = static_cast<fuse_buf_flags>(FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK);
      bv->buf[0].fd = src.fd;
      bv->buf[0].pos = off;
      bv->buf[0].size = src.size;
    } else {
      void* mem = std::malloc(size ? size : 1);
      if (!mem) {
        std::free(bv);
        throw Error(ENOMEM, "out of memory");
      }
      try {
        bv->buf[0].size =
            vfs().read(fi->fh, std::as_writable_bytes(std::span(static_cast<char*>(mem), size)),
                       static_cast<uint64_t>(off));
      } catch (...) {
        std::free(mem);
        std::free(bv);
        throw;
      }
      bv->buf[0].mem = mem;  // libfuse frees both after replying
      bv->buf[0].flags = fuse_buf_flags(0);
    }
    *bufp = bv;
    return 0;
  });
}

int op_write(const char*, const char* buf, size_t size, off_t off, struct fuse_file_info* fi) {
  return guarded("write", [&] {
    return static_cast<int>(
        vfs().write(fi->fh, std::as_bytes(std::span(buf, size)), static_cast<uint64_t>(off)));
  });
}

int op_statfs(const char*, struct statvfs* sv) {
  return guarded("statfs", [&] {
    *sv = vfs().statfs();
    return 0;
  });
}
int op_flush(const char*, struct fuse_file_info* fi) {
  return guarded("flush", [&] { return vfs().flush(fi->fh), 0; });
}
int op_release(const char*, struct fuse_file_info* fi) {
  return guarded("release", [&] { return vfs().release(fi->fh), 0; });
}
int op_fsync(const char*, int, struct fuse_file_info* fi) {
  return guarded("fsync", [&] { return vfs().fsync(fi->fh), 0; });
}

int op_setxattr(const char* path, const char* name, const char* value, size_t size, int) {
  return guarded("setxattr",
                 [&] { return vfs().setxattr(path, name, std::string_view(value, size)), 0; });
}
int op_getxattr(const char* path, const char* name, char* value, size_t size) {
  // ls asks every file for security.selinux and ACLs: answer without a lookup.
  if (!Vfs::is_library_xattr(name)) return -Vfs::foreign_xattr_errno(name);
  return guarded("getxattr", [&] {
    std::string v = vfs().getxattr(path, name);
    if (size == 0) return static_cast<int>(v.size());
    if (v.size() > size) return -ERANGE;
    std::memcpy(value, v.data(), v.size());
    return static_cast<int>(v.size());
  });
}
int op_listxattr(const char* path, char* list, size_t size) {
  return guarded("listxattr", [&] {
    std::string all;
    for (const std::string& n : vfs().listxattr(path)) all += n + '\0';
    if (size == 0) return static_cast<int>(all.size());
    if (all.size() > size) return -ERANGE;
    std::memcpy(list, all.data(), all.size());
    return static_cast<int>(all.size());
  });
}
int op_removexattr(const char* path, const char* name) {
  return guarded("removexattr", [&] { return vfs().removexattr(path, name), 0; });
}

fuse_operations make_operations() {
  fuse_operations ops{};
  ops.init = op_init;
  ops.getattr = op_getattr;
  ops.opendir = op_opendir;
  ops.readdir = op_readdir;
  ops.releasedir = op_releasedir;
  ops.mkdir = op_mkdir;
  ops.rmdir = op_rmdir;
  ops.unlink = op_unlink;
  ops.rename = op_rename;
  ops.link = op_link;
  ops.symlink = op_symlink;
  ops.mknod = op_mknod;
  ops.readlink = op_readlink;
  ops.chmod = op_chmod;
  ops.chown = op_chown;
  ops.truncate = op_truncate;
  ops.utimens = op_utimens;
  ops.open = op_open;
  ops.create = op_create;
  ops.read = op_read;
  ops.read_buf = op_read_buf;
  ops.write = op_write;
  ops.statfs = op_statfs;
  ops.flush = op_flush;
  ops.release = op_release;
  ops.fsync = op_fsync;
  ops.setxattr = op_setxattr;
  ops.getxattr = op_getxattr;
  ops.listxattr = op_listxattr;
  ops.removexattr = op_removexattr;
  return ops;
}

}  // namespace

namespace {

// The kernel reads ahead at most the mount's read_ahead_kb (128 KiB for a new
// FUSE mount), whatever max_readahead says, so sequential reads arrive as
// 128 KiB requests. Raising it to 1 MiB (the largest request FUSE sends)
// makes each round trip carry eight times the bytes. Best effort: it needs
// root, and the mount works without it. Found through /proc/self/mountinfo,
// since stat() on the mount point would wait for this very daemon.
void raise_readahead(const std::string& mountpoint) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line, bdi;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, parent, dev, root, mnt;
    ls >> id >> parent >> dev >> root >> mnt;
    if (mnt == mountpoint) bdi = dev;  // the last mount there is ours
  }
  if (bdi.empty()) return;
  std::ofstream ra("/sys/class/bdi/" + bdi + "/read_ahead_kb");
  ra << 1024;
}

// Mounts and serves in this process. `report` is called once: with "" when
// the mount is ready, or with the error that stopped it.
int serve(const MountOptions& options, const std::function<std::shared_ptr<Vfs>()>& make_vfs,
          const std::function<void()>& on_mounted, const std::function<void()>& on_unmounted,
          const std::function<void(const std::string&)>& report) {
  std::vector<std::string> argv_s = {"recallfs"};
  std::string opts = "default_permissions,fsname=" + options.fsname + ",subtype=recallfs";
  for (const std::string& o : options.fuse) opts += "," + o;
  argv_s.push_back("-o");
  argv_s.push_back(opts);
  if (options.debug) argv_s.push_back("-d");
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());

  static fuse_operations ops = make_operations();
  MountState state;
  struct fuse* f = fuse_new(&args, &ops, sizeof ops, &state);
  if (!f) {
    report("bad mount options: " + opts);
    return 1;
  }
  struct Destroy {
    struct fuse* f;
    ~Destroy() { fuse_destroy(f); }
  } destroy{f};
  if (fuse_mount(f, options.mountpoint.c_str()) != 0) {
    report("cannot mount on " + quote(options.mountpoint));
    return 1;
  }
  struct Unmount {
    struct fuse* f;
    ~Unmount() { fuse_unmount(f); }
  } unmount{f};
  raise_readahead(options.mountpoint);
  try {
    state.vfs = make_vfs();
  } catch (const std::exception& e) {
    report(std::string("cannot open the library: ") + e.what());
    return 1;
  }
  if (fuse_set_signal_handlers(fuse_get_session(f)) != 0) {
    report("cannot install signal handlers");
    return 1;
  }
  auto invalidator = std::make_unique<Invalidator>(f);
  state.vfs->set_invalidator([inv = invalidator.get()](const std::string& p) { inv->push(p); });
  if (on_mounted) on_mounted();
  report("");
  fuse_loop_config* cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(cfg, 16);
  int rc = fuse_loop_mt(f, cfg);
  fuse_loop_cfg_destroy(cfg);
  fuse_remove_signal_handlers(fuse_get_session(f));
  state.vfs->set_invalidator(nullptr);
  invalidator.reset();
  state.vfs.reset();  // closes the library before the mount goes away
  if (on_unmounted) on_unmounted();
  return rc == 0 ? 0 : 1;
}

}  // namespace

int serve_mount(const MountOptions& options, const std::function<std::shared_ptr<Vfs>()>& make_vfs,
                const std::function<void()>& on_mounted,
                const std::function<void()>& on_unmounted) {
  if (options.foreground)
    return serve(options, make_vfs, on_mounted, on_unmounted, [](const std::string& err) {
      if (!err.empty()) std::fprintf(stderr, "recallfs: %s\n", err.c_str());
    });
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) throw_last_errno("pipe");
  pid_t pid = ::fork();
  if (pid < 0) throw_last_errno("fork");
  if (pid > 0) {
    // The parent: wait for the daemon's word.
    ::close(pipefd[1]);
    std::string msg;
    char buf[512];
    ssize_t n;
    while ((n = ::read(pipefd[0], buf, sizeof buf)) > 0) msg.append(buf, static_cast<size_t>(n));
    ::close(pipefd[0]);
    if (msg == "ok") return 0;
    throw Error(EIO, msg.empty()
                         ? "the mount daemon stopped while starting; see " + options.log_file
                         : msg);
  }
  // The daemon.
  ::close(pipefd[0]);
  ::setsid();
  if (::chdir("/") != 0) {
  }
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    ::dup2(null, STDIN_FILENO);
    ::dup2(null, STDOUT_FILENO);
  }
  int log = options.log_file.empty()
                ? null
                : ::open(options.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (log >= 0) ::dup2(log, STDERR_FILENO);
  int rc = serve(options, make_vfs, on_mounted, on_unmounted, [&](const std::string& err) {
    std::string word = err.empty() ? "ok" : err;
    if (!err.empty()) std::fprintf(stderr, "recallfs: %s\n", err.c_str());
    if (::write(pipefd[1], word.data(), word.size()) < 0) {
    }
    ::close(pipefd[1]);
  });
  std::fflush(stderr);
  std::exit(rc);
}

}  // namespace recall
