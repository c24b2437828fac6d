#include "mount-helper/mount_state.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/file_io.h"

namespace recall::cli {
namespace fs = std::filesystem;

namespace {
// /proc/self/mountinfo escapes spaces and such as \040.
std::string unescape_mountinfo(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}
}  // namespace

namespace {
std::optional<MountEntry> mount_listed_at(const std::string& want) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  std::optional<MountEntry> found;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string id, parent, dev, root, mnt;
    ls >> id >> parent >> dev >> root >> mnt;
    if (unescape_mountinfo(mnt) != want) continue;
    std::string field;
    while (ls >> field && field != "-") {
    }
    MountEntry e;
    ls >> e.fstype >> e.source;
    e.source = unescape_mountinfo(e.source);
    e.device = dev;
    e.path = want;
    found = e;  // the last one mounted there wins
  }
  return found;
}
}  // namespace

std::optional<MountEntry> mount_at(const fs::path& path) {
  std::string p = fs::absolute(path).lexically_normal().string();
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  // The path as written; else its folder made canonical (outside the mount)
  // and its last name, followed while it is a symlink. readlink() on the
  // mount point itself says EINVAL without asking its daemon.
  for (int links = 0; links < 40; ++links) {
    if (auto m = mount_listed_at(p)) return m;
    fs::path full(p);
    std::error_code ec;
    fs::path parent = fs::weakly_canonical(full.parent_path(), ec);
    if (ec) return std::nullopt;
    std::string canonical = (parent / full.filename()).string();
    if (canonical != p) {
      if (auto m = mount_listed_at(canonical)) return m;
    }
    char target[4096];
    ssize_t n = ::readlink(canonical.c_str(), target, sizeof target - 1);
    if (n <= 0) return std::nullopt;
    p = (parent / std::string(target, static_cast<size_t>(n))).lexically_normal().string();
    while (p.size() > 1 && p.back() == '/') p.pop_back();
  }
  return std::nullopt;
}

namespace {
// The fields of /proc/PID/stat after "pid (comm)": [0] is the state, [19]
// the start time (fields 3 and 22 in proc(5)). Empty when the process is gone.
std::vector<std::string> stat_fields(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return {};
  size_t close = line.rfind(')');  // comm may hold spaces and parentheses
  if (close == std::string::npos || close + 2 >= line.size()) return {};
  std::istringstream in_fields(line.substr(close + 2));
  std::vector<std::string> fields;
  for (std::string f; fields.size() < 20 && in_fields >> f;) fields.push_back(f);
  return fields;
}
}  // namespace

std::optional<uint64_t> process_start_ticks(pid_t pid) {
  std::vector<std::string> f = stat_fields(pid);
  if (f.size() < 20) return std::nullopt;
  return std::stoull(f[19]);
}

bool process_stopped(pid_t pid) {
  std::vector<std::string> f = stat_fields(pid);
  // "T": stopped by a signal (SIGSTOP, ^Z) until continued. Not "t", a
  // tracer's stop: strace and LeakSanitizer (at exit) stop a process for a
  // moment, and a debugger's user knows to continue it.
  return !f.empty() && f[0] == "T";
}

bool is_mount_daemon(const MountInfo& info) {
  if (info.pid <= 0 || !process_running(info.pid)) return false;
  if (info.start_ticks == 0) return true;  // an older mount.json: cannot tell
  return process_start_ticks(info.pid) == info.start_ticks;
}

bool process_running(pid_t pid) {
  std::vector<std::string> f = stat_fields(pid);
  return !f.empty() && f[0] != "Z" && f[0] != "X";
}

std::optional<MountInfo> current_mount(const fs::path& data_dir) {
  fs::path file = data_dir / "mount.json";
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::nullopt;
  MountInfo info;
  try {
    auto j = nlohmann::json::parse(read_small_file(file));
    info.pid = j.at("pid").get<pid_t>();
    info.mountpoint = j.at("mountpoint").get<std::string>();
    info.started_ms = j.value("started_ms", int64_t{0});
    info.start_ticks = j.value("start_ticks", uint64_t{0});
    info.cache_size = j.value("cache_size", uint64_t{0});
  } catch (...) {
    return std::nullopt;
  }
  if (!is_mount_daemon(info)) return std::nullopt;
  auto m = mount_at(info.mountpoint);
  if (!m || m->fstype != "fuse.recallfs") return std::nullopt;
  return info;
}

void write_mount_info(const fs::path& data_dir, const MountInfo& info) {
  nlohmann::json j = {{"pid", info.pid},
                      {"mountpoint", info.mountpoint},
                      {"started_ms", info.started_ms},
                      {"start_ticks", info.start_ticks},
                      {"cache_size", info.cache_size}};
  write_small_file_durable(data_dir / "mount.json", j.dump() + "\n");
}

void remove_mount_info(const fs::path& data_dir) {
  std::error_code ec;
  fs::remove(data_dir / "mount.json", ec);
}

UniqueFd lock_for_mount(const fs::path& data_dir) {
  UniqueFd fd = open_file(data_dir / "mount.lock", O_RDWR | O_CREAT, 0600);
  // A daemon whose folder was just unmounted (umount(8) does not wait for
  // it) still holds the lock while it closes the library: give it a moment.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) throw_last_errno("lock " + quote((data_dir / "mount.lock").string()));
    auto m = current_mount(data_dir);
    if (m || std::chrono::steady_clock::now() > deadline)
      throw Error(EBUSY, "the library in " + quote(data_dir.string()) + " is already mounted" +
                             (m ? " at " + quote(m->mountpoint) : std::string()));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // poll the lock
  }
  return fd;
}

}  // namespace recall::cli
