// The FUSE adapter: mounts a Vfs with libfuse3's low-level API.
// fuse_adapter.cpp (the session), fuse_adapter_ops.cpp (the request
// handlers) and fuse_adapter_internal.h are the only files that include a
// libfuse header. The adapter translates each request into a Vfs method and
// a recall::Error into an errno reply, and keeps what the low-level API
// leaves to the file system: node ids for the Vfs's paths (NodeTable) and
// listings being paged through (Listings).
//
// Why not the high-level (path-based) API that macFUSE and WinFsp also
// offer: measured on 100k files in 5k folders, it cannot skip OPENDIR and
// RELEASEDIR (two of the four round trips per folder listed), cannot keep
// names cached longer than it can invalidate them (it invalidates inodes,
// not names), and builds an inode for every file a READDIRPLUS lists even
// for `find`, which never uses it. With the low-level API `ls -lR` went
// from 1.9x to 1.5x native and `find` from 2.7x to 1.7x (see README).
// The Vfs stays path-based and FUSE-free, so another adapter can be added.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace recall {

class Vfs;

struct MountOptions {
  std::string mountpoint;
  std::string fsname;             // shown by mount(8) and df(1)
  std::vector<std::string> fuse;  // extra -o options for libfuse and the kernel
  bool foreground = false;
  bool debug = false;
  // Where the daemon's messages go once it runs in the background.
  std::string log_file;
};

// Mounts and serves until unmounted (or SIGINT/SIGTERM).
//
// In the background (the default) the process forks first: the daemon
// mounts, runs `make_vfs` (it may open databases and start threads), calls
// `on_mounted`, and only then tells the parent, which returns 0; any error
// on the way comes back to the parent and is thrown there as recall::Error,
// so the user sees it. The daemon itself never returns: when unmounted it
// drops the Vfs, calls `on_unmounted` and exits.
// In the foreground it does the same in this process and returns the exit
// status once unmounted.
// (mount_daemon.cpp: the fork, the word back to the parent, the log.)
int serve_mount(const MountOptions& options, const std::function<std::shared_ptr<Vfs>()>& make_vfs,
                const std::function<void()>& on_mounted, const std::function<void()>& on_unmounted);

// Mounts and serves in this process, as serve_mount does after forking.
// `report` is called once: with "" when the mount is ready, or with the
// error that stopped it. Returns the exit status.
int serve_fuse(const MountOptions& options, const std::function<std::shared_ptr<Vfs>()>& make_vfs,
               const std::function<void()>& on_mounted, const std::function<void()>& on_unmounted,
               const std::function<void(const std::string&)>& report);

}  // namespace recall
