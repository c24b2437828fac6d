// recallfs mount | unmount, and mount.recallfs (for mount(8) and fstab).
#include <fcntl.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include "base/error.h"
#include "base/ids.h"
#include "fs/cache_budget.h"
#include "fs/catalog_watcher.h"
#include "fs/fetcher.h"
#include "fs/fuse_adapter.h"
#include "fs/pin_keeper.h"
#include "fs/truncation_note.h"
#include "fs/vfs.h"
#include "mount-helper/cli.h"
#include "mount-helper/mount_state.h"
#include "sync/credentials.h"
#include "sync/peer_auth.h"
#include "sync/peer_config.h"
#include "sync/peer_server.h"
#include "sync/replication_worker.h"
#include "sync/sources.h"
#include "sync/sync_engine.h"
#include "sync/sync_worker.h"

extern char** environ;

namespace recall::cli {
namespace fs = std::filesystem;

namespace {

struct MountRequest {
  fs::path data;
  std::string mountpoint;
  std::vector<std::string> options;  // -o, split at commas
  bool foreground = false;
  bool debug = false;
  std::optional<uint64_t> cache_size;         // -o cache_size=SIZE / --cache-size
  std::optional<std::string> server_timeout;  // -o server_timeout=SECONDS / --server-timeout
};

// "120", "2.5" (seconds) -> milliseconds; EINVAL otherwise.
std::chrono::milliseconds parse_seconds(const std::string& text) {
  size_t used = 0;
  double secs = 0;
  try {
    secs = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || !(secs > 0) || secs > 86400)
    throw Error(EINVAL, "server timeout " + quote(text) + ": seconds, more than 0 (e.g. 120)");
  return std::chrono::milliseconds(static_cast<int64_t>(secs * 1000));
}

// Runs a program and returns its exit status and what it wrote to stderr.
std::pair<int, std::string> run_program(const std::vector<std::string>& argv) {
  int err[2];
  if (::pipe2(err, O_CLOEXEC) != 0) throw_last_errno("pipe");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, err[1], STDERR_FILENO);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(err[1]);
  if (rc != 0) {
    ::close(err[0]);
    throw Error(rc, "cannot run " + argv[0] + ": " + std::strerror(rc));
  }
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(err[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  ::close(err[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 1, text};
}

// Options mount(8) and fstab use that are not FUSE's business.
bool is_mount8_only(const std::string& o) {
  return o.empty() || o == "defaults" || o == "auto" || o == "noauto" || o == "user" ||
         o == "users" || o == "nouser" || o == "_netdev" || o == "nofail" || o == "owner" ||
         o.starts_with("x-") || o.starts_with("comment=");
}

void check_fuse_device() {
  int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
  if (fd < 0)
    throw Error(errno == ENOENT ? ENODEV : errno,
                std::string("FUSE is not available here: /dev/fuse: ") + std::strerror(errno) +
                    " (load the fuse module, or give the container /dev/fuse)");
  ::close(fd);
}

// Something mounted at `mountpoint` already: a recallfs whose daemon died
// (it only answers ENOTCONN) is cleared so we can mount; anything else is
// EBUSY. Decided from /proc/self/mountinfo and mount.json, never by a stat()
// of the mount point: that would hang with a hung daemon.
void check_not_mounted(const std::string& mountpoint) {
  std::optional<MountEntry> m = mount_at(mountpoint);
  if (!m) return;
  if (m->fstype != "fuse.recallfs")
    throw Error(EBUSY, quote(mountpoint) + " is busy: " + m->fstype + " is mounted there");
  std::optional<MountInfo> daemon;
  if (m->source.starts_with("recallfs:")) daemon = current_mount(m->source.substr(9));
  if (daemon)
    throw Error(EBUSY, quote(mountpoint) +
                           " is already mounted (recallfs); unmount it first (if it hangs: "
                           "recallfs unmount --force " +
                           m->path + ")");
  std::cerr << "recallfs: " << mountpoint
            << " was left by a recallfs that stopped; unmounting it\n";
  run_program({"fusermount3", "-u", "-z", m->path});
}

void check_mountpoint(const std::string& mountpoint, bool allow_nonempty) {
  check_not_mounted(mountpoint);
  struct stat st;
  if (::stat(mountpoint.c_str(), &st) != 0) {
    if (errno == ENOENT)
      throw Error(ENOENT, "mount point " + quote(mountpoint) + " does not exist (mkdir it first)");
    throw_last_errno("mount point " + quote(mountpoint));
  }
  if (!S_ISDIR(st.st_mode))
    throw Error(ENOTDIR, "mount point " + quote(mountpoint) + " is not a directory");
  if (!allow_nonempty && !fs::is_empty(mountpoint))
    throw Error(EBUSY, "mount point " + quote(mountpoint) +
                           " is not empty (use -o nonempty to mount over its files)");
}

int do_mount(const MountRequest& req) {
  check_fuse_device();
  bool nonempty = false;
  std::optional<uint64_t> cache_size = req.cache_size;
  std::optional<std::string> server_timeout = req.server_timeout;
  std::vector<std::string> fuse_opts;
  for (const std::string& o : req.options) {
    if (o == "nonempty")
      nonempty = true;
    else if (o.starts_with("cache_size="))
      cache_size = parse_size(o.substr(11));
    else if (o.starts_with("server_timeout="))
      server_timeout = o.substr(15);
    else if (o.starts_with("max_read=") || o.starts_with("max_write="))
      throw Error(EINVAL, "-o " + o + ": recallfs sizes its requests itself (see README, Reading)");
    else if (!is_mount8_only(o))
      fuse_opts.push_back(o);
  }
  std::optional<std::chrono::milliseconds> server_ms;  // a bad one is told before mounting
  if (server_timeout) server_ms = parse_seconds(*server_timeout);
  std::string mountpoint = fs::absolute(req.mountpoint).lexically_normal().string();
  while (mountpoint.size() > 1 && mountpoint.back() == '/') mountpoint.pop_back();
  check_mountpoint(mountpoint, nonempty);
  fs::path data = req.data;
  {
    // Open it once here so that a missing or damaged library is reported to
    // the user before anything is mounted; the daemon opens it again.
    Library::check_exists(data);
    UniqueFd probe = lock_for_mount(data);
    // Bytes a crash left being written may fill the disk, and the library
    // cannot even be opened then: freed first (under the lock: they are no
    // other daemon's).
    remove_all_but_truncation_notes(data / "staging");
    auto lib = Library::open(data, {.create = false});
  }
  MountOptions mo;
  mo.mountpoint = mountpoint;
  mo.fsname = "recallfs:" + data.string();
  mo.fuse = fuse_opts;
  mo.foreground = req.foreground;
  mo.debug = req.debug;
  mo.log_file = (data / "recallfs.log").string();
  // What the daemon holds while it serves: the mount lock, the library and
  // the Vfs over it, released together when the Vfs goes. Members go in the
  // reverse order, each after what calls into it.
  struct Served {
    // The fetcher's threads call into the cache budget and the Vfs (which
    // also holds the fetcher): they end before either goes.
    ~Served() {
      if (fetcher) fetcher->stop();
    }
    UniqueFd lock;
    std::unique_ptr<Library> lib;
    std::unique_ptr<Vfs> vfs;
    std::shared_ptr<Fetcher> fetcher;
    std::unique_ptr<CacheBudget> cache;
    std::unique_ptr<PinKeeper> pins;
    std::unique_ptr<PeerServer> peers;
    std::unique_ptr<SyncWorker> sync;  // after the Vfs: stopped first
    std::unique_ptr<ReplicationWorker> replication;
    std::unique_ptr<CatalogWatcher> watcher;
  };
  return serve_mount(
      mo,
      [&]() -> std::shared_ptr<Vfs> {
        auto s = std::make_shared<Served>();
        s->lock = lock_for_mount(data);
        s->lib = Library::open(data, {.create = false});
        s->vfs = std::make_unique<Vfs>(*s->lib, Vfs::Options{::getuid(), ::getgid()});
        Vfs* v = s->vfs.get();
        s->fetcher = std::make_shared<Fetcher>(*s->lib, std::make_shared<HolderProvider>(*s->lib));
        v->set_fetcher(s->fetcher);
        // A blob coming or going changes its files' st_blocks.
        s->fetcher->set_on_local([v](const std::string& sha) { v->blob_changed(sha); });
        std::function<void()> uploaded;
        if (cache_size) {
          s->cache = std::make_unique<CacheBudget>(
              *s->lib, *cache_size, [v](const std::string& sha) { return v->blob_in_use(sha); },
              [v](const std::string& sha) { v->blob_changed(sha); });
          CacheBudget* c = s->cache.get();
          s->fetcher->set_admit(
              [c](const std::string& sha, uint64_t size) { return c->make_room(sha, size); });
          s->fetcher->set_could_keep(
              [c](const std::string& sha, uint64_t size) { return c->could_keep(sha, size); });
          c->start();
          uploaded = [c] { c->poke(); };
          v->set_on_cache_changed([c](const std::string&) { c->poke(); });
          v->set_on_closed([c](const std::string& sha) { c->closed(sha); });
        }
        s->replication = std::make_unique<ReplicationWorker>(*s->lib, uploaded);
        SyncWorker::Options so;
        if (server_ms) so.server_timeout = *server_ms;
        // Bytes a change frees stay until the server has seen the change.
        v->set_signed_in([dir = s->lib->dir()] { return fs::exists(credentials_path(dir)); });
        // Pulled edits of pinned files come here too.
        s->pins = std::make_unique<PinKeeper>(*s->lib, *s->fetcher);
        so.after_pull = [v, pins = s->pins.get()](SyncEngine& engine) {
          v->release_held_blobs([&engine](const std::vector<std::string>& shas) {
            return engine.confirm_drops(shas);
          });
          pins->sweep();
        };
        if (auto pc = load_peer_config(data)) {
          Library* lib = s->lib.get();
          s->peers = std::make_unique<PeerServer>(
              lib->blobs(), pc->listen, [lib]() -> std::optional<std::vector<unsigned char>> {
                auto c = load_credentials(lib->dir());
                if (!c || c->peer_key.empty()) return std::nullopt;
                return from_hex(c->peer_key);
              });
          so.peer_address = pc->advertise.empty() ? s->peers->address() : pc->advertise;
          std::fprintf(stderr, "recallfs: serving peers on %s\n", s->peers->address().c_str());
        }
        s->sync = std::make_unique<SyncWorker>(
            *s->lib, so, [v](const Catalog::ApplyReport& r) { v->remote_changed(r); });
        // Commands run in another process meanwhile change what the mount
        // shows, and `recallfs unpin` what the cache budget may let go.
        auto elsewhere = [v, cache = s->cache.get()] {
          v->changed_elsewhere();
          if (cache) cache->poke();
        };
        s->watcher =
            std::make_unique<CatalogWatcher>(s->lib->catalog(), std::chrono::seconds(1), elsewhere);
        return std::shared_ptr<Vfs>(std::move(s), v);
      },
      [&] {
        write_mount_info(data,
                         MountInfo{.pid = ::getpid(),
                                   .mountpoint = mountpoint,
                                   .started_ms = now_ms(),
                                   .cache_size = cache_size.value_or(0),
                                   .start_ticks = process_start_ticks(::getpid()).value_or(0)});
        std::fprintf(stderr, "recallfs: serving %s at %s\n", data.c_str(), mountpoint.c_str());
      },
      [&] {
        remove_mount_info(data);
        std::fprintf(stderr, "recallfs: unmounted %s\n", mountpoint.c_str());
      });
}

// False when `pid` still runs after `limit`, or is stopped (it would not
// end while stopped, however long we wait).
bool wait_for_exit(pid_t pid, std::chrono::seconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (process_running(pid)) {
    if (std::chrono::steady_clock::now() >= deadline || process_stopped(pid)) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // poll the pid
  }
  return true;
}

constexpr const char* kFuseConnections = "/sys/fs/fuse/connections";

// Fails every request waiting on the FUSE connection of the mount on
// `device` ("0:39") with ECONNABORTED, through the kernel's fusectl file system
// (its connection's "abort" file), so that programs stuck on a hung daemon
// get an error. fusectl is mounted for the moment when it is not (root
// only; systemd mounts it at boot). Returns what went wrong; empty if none.
std::string abort_connection(const std::string& device) {
  fs::path dir = fs::path(kFuseConnections) / device.substr(device.find(':') + 1);
  std::error_code ec;
  bool mounted_here = false;
  if (!fs::exists(dir, ec)) {
    if (::mount("fusectl", kFuseConnections, "fusectl", 0, nullptr) != 0) {
      int err = errno;
      return std::string("fusectl is not mounted on ") + kFuseConnections +
             ", and mounting it needs root (" + std::strerror(err) + ")";
    }
    mounted_here = true;
  }
  std::string problem;
  fs::path abort_file = dir / "abort";
  int err = 0;
  int fd = ::open(abort_file.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    err = errno;
  else if (::write(fd, "1", 1) != 1)
    err = errno ? errno : EIO;
  if (err != 0)
    problem = abort_file.string() + ": " + std::strerror(err) +
              (err == EACCES ? " (only root or the user who mounted it may)" : "");
  if (fd >= 0) ::close(fd);
  if (mounted_here) ::umount2(kFuseConnections, MNT_DETACH);
  return problem;
}

// unmount --force: for a mount whose daemon hangs (stopped, stuck, or busy
// forever). Its connection is aborted, the mount detached even if in use,
// and a daemon that does not then end by itself is killed: files closed
// before are on disk, as after any crash.
void force_unmount(const std::string& mountpoint, const MountEntry& m,
                   const std::optional<MountInfo>& daemon) {
  std::string problem = abort_connection(m.device);
  if (!problem.empty())
    std::cerr << "recallfs: could not abort the mount's FUSE connection (" << problem
              << "); detaching it anyway\n";
  auto [rc, err] = run_program({"fusermount3", "-u", "-z", mountpoint});
  if (rc != 0) throw Error(EIO, "cannot unmount " + quote(mountpoint) + ": " + err);
  // A stopped daemon (SIGSTOP, a debugger) cannot end by itself. Its pid
  // is checked again right before the kill: it may have ended meanwhile,
  // and the pid gone to another process.
  if (daemon &&
      (process_stopped(daemon->pid) || !wait_for_exit(daemon->pid, std::chrono::seconds(10))) &&
      is_mount_daemon(*daemon)) {
    if (::kill(daemon->pid, SIGKILL) != 0)
      std::cerr << "recallfs: its daemon (pid " << daemon->pid
                << ") could not be killed: " << std::strerror(errno) << "\n";
    else if (!wait_for_exit(daemon->pid, std::chrono::seconds(10)))
      std::cerr << "recallfs: its daemon (pid " << daemon->pid
                << ") is killed but stuck in the kernel (see /proc/" << daemon->pid << "/stack)\n";
    else
      std::cerr << "recallfs: its daemon (pid " << daemon->pid
                << ") was stopped or did not end by itself; it was killed\n";
  }
  std::cerr << "recallfs: unmounted " << mountpoint << " by force\n";
}

int do_unmount(const std::string& mountpoint_arg, bool force) {
  std::string mountpoint = fs::absolute(mountpoint_arg).lexically_normal().string();
  while (mountpoint.size() > 1 && mountpoint.back() == '/') mountpoint.pop_back();
  auto m = mount_at(mountpoint);
  if (!m) throw Error(EINVAL, quote(mountpoint) + " is not mounted");
  if (m->fstype != "fuse.recallfs")
    throw Error(EINVAL, quote(mountpoint) + " is not a recallfs mount (" + m->fstype + ")");
  mountpoint = m->path;  // (the user's path may lead there through a symlink)
  // The daemon, to wait until it has closed the library.
  std::optional<MountInfo> daemon;
  if (m->source.starts_with("recallfs:")) daemon = current_mount(m->source.substr(9));
  if (force) {
    force_unmount(mountpoint, *m, daemon);
    return 0;
  }
  auto [rc, err] = run_program({"fusermount3", "-u", mountpoint});
  if (rc != 0) {
    if (err.find("busy") != std::string::npos)
      throw Error(EBUSY, quote(mountpoint) +
                             " is busy: files or folders in it are in use (see: lsof +D " +
                             mountpoint + "; if programs hang in it, `recallfs unmount --force " +
                             mountpoint + "` ends their requests)");
    throw Error(EIO, "cannot unmount " + quote(mountpoint) + ": " + err);
  }
  if (daemon && !wait_for_exit(daemon->pid, std::chrono::seconds(60))) {
    if (process_stopped(daemon->pid))
      std::cerr << "recallfs: unmounted; its daemon (pid " << daemon->pid
                << ") is stopped, and closes the library when continued (kill -CONT " << daemon->pid
                << ")\n";
    else
      std::cerr << "recallfs: unmounted; its daemon (pid " << daemon->pid
                << ") has not finished closing the library after a minute (see "
                << (fs::path(m->source.substr(9)) / "recallfs.log").string() << ")\n";
  }
  return 0;
}

// Splits "a,b,c" (the -o argument).
std::vector<std::string> split_options(const std::vector<std::string>& opts) {
  std::vector<std::string> out;
  for (const std::string& o : opts) {
    std::stringstream ss(o);
    std::string item;
    while (std::getline(ss, item, ',')) out.push_back(item);
  }
  return out;
}

}  // namespace

void add_mount_verbs(CLI::App& app, Common& common) {
  auto req = std::make_shared<MountRequest>();
  auto opts = std::make_shared<std::vector<std::string>>();
  CLI::App* mount = app.add_subcommand(
      "mount", "Mount the library as a folder (runs in the background unless -f)");
  mount->add_option("MOUNTPOINT", req->mountpoint, "An empty directory to mount on")->required();
  add_data_option(mount, common);
  mount->add_flag("-f,--foreground", req->foreground,
                  "Stay in the foreground (messages on stderr)");
  mount->add_flag("--debug", req->debug, "Log every FUSE request (implies -f)");
  mount->add_option("-o", *opts, "Mount options, comma-separated (e.g. allow_other,ro,nonempty)");
  auto cache = std::make_shared<std::string>();
  mount->add_option("--cache-size", *cache,
                    "Keep at most this much of a signed-in library's bytes here (e.g. 20G); "
                    "bytes safely in the cloud go first, least recently used, never pinned ones");
  auto server_timeout = std::make_shared<std::string>();
  mount->add_option("--server-timeout", *server_timeout,
                    "Seconds the sync server may be silent in the middle of a statement before "
                    "the connection is given up and made again (default 120)");
  mount->callback([&common, req, opts, cache, server_timeout] {
    // The default library is made on first use; others must exist. (Not
    // opened here: see do_mount.)
    req->data = library_dir(common);
    req->options = split_options(*opts);
    if (!cache->empty()) req->cache_size = parse_size(*cache);
    if (!server_timeout->empty()) req->server_timeout = *server_timeout;
    if (req->debug) req->foreground = true;
    int rc = do_mount(*req);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });

  auto where = std::make_shared<std::string>();
  CLI::App* unmount =
      app.add_subcommand("unmount", "Unmount a mounted library (after its files are closed)");
  unmount->alias("umount");
  unmount->add_option("MOUNTPOINT", *where, "Where it is mounted")->required();
  auto force = std::make_shared<bool>(false);
  unmount->add_flag("--force", *force,
                    "For a mount that hangs: fail the requests waiting on it, detach it even "
                    "if in use, and stop its daemon");
  unmount->callback([where, force] { do_unmount(*where, *force); });
}

// mount.recallfs DATA_DIR MOUNTPOINT [-o OPTIONS] [-n] [-s] [-f] [-v]: what
// mount(8) runs for `mount -t fuse.recallfs` and for fstab lines.
int mount_helper_main(int argc, char** argv) {
  MountRequest req;
  std::vector<std::string> positional, opts;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-o" && i + 1 < argc)
      opts.push_back(argv[++i]);
    else if (a.starts_with("-o"))
      opts.push_back(a.substr(2));
    else if (a == "-t" && i + 1 < argc)
      ++i;  // the type: ours
    else if (a == "-N" && i + 1 < argc)
      ++i;  // a namespace: not supported, ignored
    else if (a == "-f")
      req.foreground = true;
    else if (a.starts_with("-"))
      continue;  // -n -s -v: nothing to do for FUSE
    else
      positional.push_back(a);
  }
  if (positional.size() != 2) {
    std::cerr << "usage: mount.recallfs DATA_DIR MOUNTPOINT [-o OPTIONS]\n";
    return EX_USAGE;
  }
  try {
    req.data = fs::absolute(positional[0]);
    req.mountpoint = positional[1];
    req.options = split_options(opts);
    return do_mount(req);
  } catch (const Error& e) {
    std::cerr << "mount.recallfs: " << e.what() << "\n";
    return exit_code_for(e.code());
  } catch (const std::exception& e) {
    std::cerr << "mount.recallfs: " << e.what() << "\n";
    return EX_SOFTWARE;
  }
}

}  // namespace recall::cli
