#include "tests/mount_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

namespace recall::test {
namespace fs = std::filesystem;

bool fuse_available() {
  int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

MountedLibrary::MountedLibrary() : MountedLibrary(fs::path()) {}

MountedLibrary::MountedLibrary(const fs::path& data_dir) : tmp_("recallfs-mount") {
  data_ = data_dir.empty() ? tmp_ / "data" : data_dir;
  mnt_ = tmp_ / "mnt";
  fs::create_directories(mnt_);
  if (!fuse_available()) return;
  RunResult init = recallfs({"init"});
  if (init.exit_code != 0) throw std::runtime_error("recallfs init failed: " + init.err);
  mount();
}

MountedLibrary::~MountedLibrary() {
  if (mounted_) {
    RunResult r = run({recallfs_binary(), "unmount", mnt_.string()});
    if (r.exit_code != 0) run({"fusermount3", "-u", "-z", mnt_.string()});
  }
}

void MountedLibrary::mount(const std::vector<std::string>& extra,
                           const std::vector<std::string>& env) {
  std::vector<std::string> args = {"mount", mnt_.string()};
  args.insert(args.end(), extra.begin(), extra.end());
  RunResult r = recallfs(args, env);
  if (r.exit_code != 0) throw std::runtime_error("recallfs mount failed: " + r.err);
  mounted_ = true;
}

void MountedLibrary::unmount() {
  RunResult r = run({recallfs_binary(), "unmount", mnt_.string()});
  if (r.exit_code != 0) throw std::runtime_error("recallfs unmount failed: " + r.err);
  mounted_ = false;
}

pid_t MountedLibrary::daemon_pid() {
  auto j = nlohmann::json::parse(read_file(data_ / "mount.json"));
  return j.at("pid").get<pid_t>();
}

SmallDisk::SmallDisk() : outer_("recallfs-small"), dir_(outer_ / "disk") {
  fs::create_directories(dir_);
  if (::mount("tmpfs", dir_.c_str(), "tmpfs", 0, "size=40m") != 0)
    error_ = std::string("cannot mount a small tmpfs here (needs root): ") + std::strerror(errno);
}

SmallDisk::~SmallDisk() {
  if (error_.empty()) ::umount2(dir_.c_str(), MNT_DETACH);
}

void MountedLibrary::kill_daemon() {
  pid_t pid = daemon_pid();
  struct stat st {};
  bool have_dev = ::stat(mnt_.c_str(), &st) == 0;
  ::kill(pid, SIGKILL);
  EXPECT_TRUE(eventually([&] { return process_ended(pid); })) << "daemon survived SIGKILL";
  // A thread of the killed daemon stuck in the kernel (a notification
  // waiting for a lock that an unanswered request holds) keeps its FUSE
  // connection, and everything waiting on the mount, alive for good. Said
  // here, and undone as `recallfs unmount --force` would (fusectl's abort).
  fs::path tasks = fs::path("/proc") / std::to_string(pid) / "task";
  auto stuck_threads = [&] {  // their kernel stacks; "" when none is left
    std::string stacks;
    std::error_code ec;
    for (const auto& t : fs::directory_iterator(tasks, ec)) {
      std::ifstream stat(t.path() / "stat");
      std::string line;
      if (!std::getline(stat, line) || line.find(") Z") != std::string::npos) continue;
      std::ifstream stack(t.path() / "stack");
      stacks += t.path().filename().string() + ":\n" +
                std::string(std::istreambuf_iterator<char>(stack), {});
    }
    return stacks;
  };
  if (!eventually([&] { return stuck_threads().empty(); }, std::chrono::seconds(3))) {
    ADD_FAILURE() << "the killed daemon is stuck in the kernel:\n" << stuck_threads();
    if (have_dev) {
      std::ofstream abort(fs::path("/sys/fs/fuse/connections") / std::to_string(minor(st.st_dev)) /
                          "abort");
      abort << "1";
    }
  }
  run({"fusermount3", "-u", "-z", mnt_.string()});
  mounted_ = false;
}

bool MountedLibrary::stop_daemon(int sig, std::chrono::milliseconds timeout) {
  pid_t pid = daemon_pid();
  ::kill(pid, sig);
  bool gone = eventually([&] { return process_ended(pid); }, timeout);
  if (!gone) return false;
  mounted_ = false;
  std::ifstream mounts("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mounts, line))
    if (line.find(" " + mnt_.string() + " ") != std::string::npos) return false;  // still mounted
  return true;
}

RunResult MountedLibrary::shell(const std::string& script) {
  return run({"/bin/bash", "-c", "cd \"$MNT\" && " + script},
             {"MNT=" + mnt_.string(), "DATA=" + data_.string(), "TMP=" + tmp_.path().string(),
              "RECALLFS=" + recallfs_binary(), "LC_ALL=C.UTF-8"});
}

RunResult MountedLibrary::recallfs(std::vector<std::string> args,
                                   const std::vector<std::string>& env) {
  args.insert(args.begin(), recallfs_binary());
  args.push_back("--data");
  args.push_back(data_.string());
  return run(args, env);
}

std::unique_ptr<Catalog> MountedLibrary::catalog() {
  return Catalog::open(data_ / "catalog.db", {});
}

}  // namespace recall::test
