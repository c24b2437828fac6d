// The FUSE adapter: mounts a Vfs with libfuse3's high-level (path-based)
// API, the one macFUSE and WinFsp also offer. fuse_adapter.cpp is the only
// file that includes fuse.h; it translates each call into a Vfs method and a
// recall::Error into -errno, and nothing more.
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
int serve_mount(const MountOptions& options, const std::function<std::shared_ptr<Vfs>()>& make_vfs,
                const std::function<void()>& on_mounted, const std::function<void()>& on_unmounted);

}  // namespace recall
