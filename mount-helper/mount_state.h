// What a running mount leaves in its data directory, so that other commands
// can find it: mount.json (pid, mount point) and mount.lock (held by the
// daemon, so one library is mounted at most once).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>

#include "base/fd.h"

namespace recall::cli {

struct MountInfo {
  pid_t pid = 0;
  std::string mountpoint;
  int64_t started_ms = 0;
  uint64_t cache_size = 0;   // the cache budget in bytes; 0: none
  uint64_t start_ticks = 0;  // the daemon's start time (see process_start_ticks)
};

// True while `pid` runs (a zombie, which has finished, counts as gone).
bool process_running(pid_t pid);
// True while `pid` is stopped by a signal (SIGSTOP, ^Z): it cannot end by
// itself until continued. (A tracer's stop, "t", does not count.)
bool process_stopped(pid_t pid);
// When `pid` started, in clock ticks since boot (/proc/PID/stat field 22):
// with the pid, it names one process for the machine's uptime.
std::optional<uint64_t> process_start_ticks(pid_t pid);
// True when the process mount.json names runs and is that daemon: not a
// later process that was given a dead daemon's pid.
bool is_mount_daemon(const MountInfo& info);

// The live mount of the library in `data_dir`, or nullopt (a stale
// mount.json, whose daemon is gone, counts as none).
std::optional<MountInfo> current_mount(const std::filesystem::path& data_dir);
void write_mount_info(const std::filesystem::path& data_dir, const MountInfo& info);
void remove_mount_info(const std::filesystem::path& data_dir);

// Takes the library's mount lock; EBUSY when another daemon holds it.
UniqueFd lock_for_mount(const std::filesystem::path& data_dir);

struct MountEntry {
  std::string fstype;  // "fuse.recallfs", "ext4"
  std::string source;  // for recallfs: "recallfs:<data dir>"
  std::string device;  // "0:39": a FUSE mount's connection is fusectl's "39"
  std::string path;    // the mount point, as the kernel names it
};
// What is mounted at `path` (the last mount there), or nullopt. An absolute,
// normal path is matched as written first, without touching the file
// system: stat() on the mount point of a hung daemon would hang too.
std::optional<MountEntry> mount_at(const std::filesystem::path& path);

}  // namespace recall::cli
