#include "mount-helper/mount_state.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

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
    found = e;  // the last one mounted there wins
  }
  return found;
}
}  // namespace

std::optional<MountEntry> mount_at(const fs::path& path) {
  std::string as_written = fs::absolute(path).lexically_normal().string();
  while (as_written.size() > 1 && as_written.back() == '/') as_written.pop_back();
  if (auto m = mount_listed_at(as_written)) return m;
  std::error_code ec;  // a path through a symlink, or with ".."
  return mount_listed_at(fs::weakly_canonical(fs::absolute(path), ec).string());
}

bool process_running(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  // pid (comm) state ...: comm may hold spaces and parentheses.
  size_t close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) return false;
  char state = line[close + 2];
  return state != 'Z' && state != 'X';
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
    info.cache_size = j.value("cache_size", uint64_t{0});
  } catch (...) {
    return std::nullopt;
  }
  if (info.pid <= 0 || !process_running(info.pid)) return std::nullopt;
  auto m = mount_at(info.mountpoint);
  if (!m || m->fstype != "fuse.recallfs") return std::nullopt;
  return info;
}

void write_mount_info(const fs::path& data_dir, const MountInfo& info) {
  nlohmann::json j = {{"pid", info.pid},
                      {"mountpoint", info.mountpoint},
                      {"started_ms", info.started_ms},
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
