// The FUSE adapter's session (see fuse_adapter.h): mounts, settles the
// connection with the kernel (op_init), sends the Vfs's invalidations and
// runs the request loop until unmounted. The request handlers are in
// fuse_adapter_ops.cpp; fuse_adapter*.cpp and fuse_adapter_internal.h are
// the only files that include a libfuse header.
#include "fs/fuse_adapter.h"

#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

#include "base/error.h"
#include "fs/fuse_adapter_internal.h"
#include "fs/invalidation_queue.h"
#include "fs/stop_signals.h"

namespace recall {
using namespace fuse_detail;

namespace {

// Tells the kernel that what it caches for a path is stale (sent from the
// InvalidationQueue's thread): the node's attributes and (but for
// Attributes) cached pages; for Listing, its folder's cached listing too;
// for Name, also the name in its folder. When the kernel does not know the folder, the nearest one
// it knows stands in for it (its listing may lack the next name on the path). Errors (-ENOENT:
// forgotten meanwhile) need nothing. Only Name takes the folder's lock in the kernel
// (notify_inval_entry), so it is kept for names that are gone: a notification waiting for a lock
// that a request in flight holds cannot finish if the daemon dies then.
// Likewise pages: dropping them waits for a write in flight to the file (it
// holds them locked), so a name whose pages are right gets Attributes.
// Path "" is anything: every node the kernel holds loses its attributes,
// pages and listings (names expire by their timeouts).
void send_invalidation(fuse_session* se, const NodeTable& nodes,
                       const InvalidationQueue::Item& inv) {
  using Stale = Vfs::Stale;
  if (inv.path.empty()) {
    for (const NodeTable::Found& f : nodes.named())
      fuse_lowlevel_notify_inval_inode(se, f.node, 0, 0);
    fuse_lowlevel_notify_inval_inode(se, NodeTable::kRoot, 0, 0);
    return;
  }
  NodeTable::Found f = nodes.find(inv.path);
  if (f.parent != 0 && inv.what == Stale::Name)
    fuse_lowlevel_notify_inval_entry(se, f.parent, f.name.data(), f.name.size());
  if (f.parent != 0 && (inv.what == Stale::Listing || inv.what == Stale::Name))
    fuse_lowlevel_notify_inval_inode(se, f.parent, 0, 0);
  // A negative offset: attributes only, no page locks taken.
  if (f.node != 0)
    fuse_lowlevel_notify_inval_inode(se, f.node, inv.what == Stale::Attributes ? -1 : 0, 0);
}

// The largest read request. A read reply is spliced from the blob's file
// (one copy fewer than read-then-write) only when it fits a pipe, with
// libfuse's slack of three pages: pipes are 1 MiB at most without
// CAP_SYS_RESOURCE. A 1 MiB reply would always take the copying path.
// Writes stay 1 MiB: cp and dd write in st_blksize (1 MiB) blocks, which a
// smaller max_write would split in two requests each.
constexpr unsigned kMaxRead = (1 << 20) - (16 << 10);
constexpr unsigned kMaxWrite = 1 << 20;

// The kernel reads ahead at most the mount's read_ahead_kb (128 KiB for a new
// FUSE mount), whatever max_readahead says, so sequential reads arrive as
// 128 KiB requests. Raising it to kMaxRead (the largest read we take)
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
  ra << kMaxRead / 1024;
}

}  // namespace

void fuse_detail::op_init(void* userdata, struct fuse_conn_info* conn) {
  // Large requests: fewer round trips for big sequential reads and writes.
  conn->max_write = kMaxWrite;
  conn->max_read = kMaxRead;  // also a mount option (serve_fuse), as libfuse wants
  conn->max_readahead = kMaxRead;
  if (conn->capable & FUSE_CAP_SPLICE_WRITE) conn->want |= FUSE_CAP_SPLICE_WRITE;
  if (conn->capable & FUSE_CAP_SPLICE_MOVE) conn->want |= FUSE_CAP_SPLICE_MOVE;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  // No OPENDIR and RELEASEDIR: two round trips fewer per folder listed.
  // The kernel then keeps listings cached until a change in the folder
  // (here, or invalidated after a pull) drops them.
  if (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) {
    conn->want |= FUSE_CAP_NO_OPENDIR_SUPPORT;
    static_cast<Mount*>(userdata)->no_opendir = true;
  }
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
}

int serve_fuse(const MountOptions& options, const std::function<std::shared_ptr<Vfs>()>& make_vfs,
               const std::function<void()>& on_mounted, const std::function<void()>& on_unmounted,
               const std::function<void(const std::string&)>& report) {
  std::vector<std::string> argv_s = {"recallfs"};
  std::string opts = "default_permissions,fsname=" + options.fsname +
                     ",subtype=recallfs,max_read=" + std::to_string(kMaxRead);
  for (const std::string& o : options.fuse) opts += "," + o;
  argv_s.push_back("-o");
  argv_s.push_back(opts);
  if (options.debug) argv_s.push_back("-d");
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  // fuse_session_new copies the arguments into memory of its own (found by
  // LeakSanitizer): freed when serving ends.
  struct FreeArgs {
    fuse_args* args;
    ~FreeArgs() { fuse_opt_free_args(args); }
  } free_args{&args};

  static const fuse_lowlevel_ops ops = make_operations();
  Mount state;
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, &state);
  if (!se) {
    report("bad mount options: " + opts);
    return 1;
  }
  struct Destroy {
    fuse_session* se;
    ~Destroy() { fuse_session_destroy(se); }
  } destroy{se};
  if (fuse_session_mount(se, options.mountpoint.c_str()) != 0) {
    report("cannot mount on " + quote(options.mountpoint));
    return 1;
  }
  struct Unmount {
    fuse_session* se;
    ~Unmount() { fuse_session_unmount(se); }
  } unmount{se};
  raise_readahead(options.mountpoint);
  try {
    state.vfs = make_vfs();
  } catch (const std::exception& e) {
    report(std::string("cannot open the library: ") + e.what());
    return 1;
  }
  auto invalidator = std::make_unique<InvalidationQueue>(
      [se, &nodes = state.nodes](const InvalidationQueue::Item& i) {
        send_invalidation(se, nodes, i);
      });
  // A name the Vfs says is gone makes kept listings old.
  state.vfs->set_invalidator(
      [inv = invalidator.get(), &state](const std::string& p, Vfs::Stale what) {
        if (what == Vfs::Stale::Name) state.listings.changed();  // new names make no listing unsafe
        if (what == Vfs::Stale::Name && !p.empty()) {  // a name gone: readers may resume after it
          NodeTable::Found f = state.nodes.find(p);
          if (f.parent != 0 && p.ends_with("/" + f.name)) state.listings.removed(f.parent, f.name);
        }
        inv->push({p, what});
      });
  // No invalidation is sent once the loop has stopped: nobody would answer
  // the request whose lock it may wait for.
  std::once_flag invalidations_stopped;
  auto stop_invalidations = [&] {
    std::call_once(invalidations_stopped, [&] {
      state.vfs->set_invalidator(nullptr);
      invalidator.reset();  // sends what is queued: requests are still answered
    });
  };
  // SIGINT, SIGTERM, SIGHUP: invalidations first, then the loop, woken by a
  // signal to the thread waiting in it.
  pthread_t loop_thread = pthread_self();
  auto signals = std::make_unique<StopSignals>([&] {
    stop_invalidations();
    fuse_session_exit(se);
    pthread_kill(loop_thread, SIGTERM);
  });
  if (on_mounted) on_mounted();
  report("");
  std::unique_ptr<fuse_loop_config, decltype(&fuse_loop_cfg_destroy)> cfg(fuse_loop_cfg_create(),
                                                                          fuse_loop_cfg_destroy);
  fuse_loop_cfg_set_max_threads(cfg.get(), 16);
  int rc = fuse_session_loop_mt(se, cfg.get());
  cfg.reset();
  signals.reset();
  stop_invalidations();
  state.vfs.reset();  // closes the library before the mount goes away
  if (on_unmounted) on_unmounted();
  return rc == 0 ? 0 : 1;
}

}  // namespace recall
