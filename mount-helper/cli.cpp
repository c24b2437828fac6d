// recallfs — entry point: parses the command line, runs one verb, and turns
// any recall::Error into a message on stderr and an exit status (the one
// place where that mapping lives).
#include "mount-helper/cli.h"

#include <sysexits.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "base/error.h"

namespace recall::cli {
namespace fs = std::filesystem;

fs::path data_dir(const Common& c) {
  if (!c.data.empty()) return fs::absolute(c.data);
  if (const char* env = std::getenv("RECALLFS_DATA"); env && *env) return fs::absolute(env);
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg)
    return fs::path(xdg) / "recallfs";
  const char* home = std::getenv("HOME");
  if (!home || !*home) throw Error(ENOENT, "no --data given and $HOME is not set");
  return fs::path(home) / ".local" / "share" / "recallfs";
}

bool is_default_data_dir(const Common& c) {
  const char* env = std::getenv("RECALLFS_DATA");
  return c.data.empty() && !(env && *env);
}

void add_data_option(CLI::App* verb, Common& c) {
  verb->add_option("--data", c.data,
                   "Library data directory (default: $RECALLFS_DATA or $XDG_DATA_HOME/recallfs)");
}

namespace {
Error with_init_hint(const Error& e, const fs::path& dir) {
  if (e.code() != ENOENT) return e;
  return Error(
      ENOENT, e.message() + " (create one with: recallfs init --data " + quote(dir.string()) + ")");
}
}  // namespace

std::unique_ptr<Library> open_library(const Common& c) {
  fs::path dir = data_dir(c);
  try {
    return Library::open(dir, {.create = is_default_data_dir(c)});
  } catch (const Error& e) {
    throw with_init_hint(e, dir);
  }
}

fs::path library_dir(const Common& c) {
  fs::path dir = data_dir(c);
  try {
    Library::check_exists(dir);
  } catch (const Error& e) {
    if (e.code() == ENOENT && is_default_data_dir(c)) return open_library(c)->dir();
    throw with_init_hint(e, dir);
  }
  return dir;
}

std::string human_bytes(uint64_t n) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

bool stderr_is_tty() { return ::isatty(STDERR_FILENO) == 1; }

ProgressLine::ProgressLine() : on_(stderr_is_tty()) {}

void ProgressLine::show(const std::string& text) {
  if (!on_) return;
  std::fprintf(stderr, "\r\033[K%s", text.c_str());
  std::fflush(stderr);
  shown_ = true;
}

void ProgressLine::done() {
  if (shown_) std::fprintf(stderr, "\r\033[K");
  shown_ = false;
}

int exit_code_for(int err) {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return EX_NOINPUT;  // 66: a missing library, file or path
    case EUCLEAN:
      return EX_DATAERR;  // 65: a corrupt database
    case EACCES:
    case EPERM:
    case EROFS:
      return EX_NOPERM;  // 77
    case EIO:
    case ENOSPC:
    case EDQUOT:
      return EX_IOERR;  // 74
    case EBUSY:
    case EAGAIN:
      return EX_TEMPFAIL;  // 75
    case ENODEV:
      return EX_UNAVAILABLE;  // 69: no FUSE here
    case EINVAL:
    case EISDIR:
    case EEXIST:
    case ENOTEMPTY:
      return EX_USAGE;  // 64: the request itself cannot be done
    default:
      return EX_SOFTWARE;  // 70
  }
}

}  // namespace recall::cli

int main(int argc, char** argv) {
  using namespace recall;
  using namespace recall::cli;
  // Called as mount.recallfs or mount.fuse.recallfs by mount(8).
  std::string self = std::filesystem::path(argv[0]).filename().string();
  if (self.starts_with("mount.")) return mount_helper_main(argc, argv);
  CLI::App app{
      "recallfs: a research library as an ordinary folder.\n"
      "Exit status: 0 ok, 1 verify found damage, 64 bad request, 65 corrupt database,\n"
      "66 missing library or file, 69 FUSE unavailable, 74 I/O error or disk full, 75 busy,\n"
      "77 permission denied.",
      "recallfs"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "recallfs 0.1.0");
  Common common;
  add_library_verbs(app, common);
  add_store_verbs(app, common);
  add_mount_verbs(app, common);
  add_sync_verbs(app, common);
  add_cloud_verbs(app, common);
  add_pin_verbs(app, common);
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // a verb's own non-zero status (verify found damage)
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : EX_USAGE;
  } catch (const Error& e) {
    std::cerr << "recallfs: " << e.what() << "\n";
    return exit_code_for(e.code());
  } catch (const std::filesystem::filesystem_error& e) {
    std::cerr << "recallfs: " << e.what() << "\n";
    return exit_code_for(e.code().value());
  } catch (const std::exception& e) {
    std::cerr << "recallfs: internal error: " << e.what() << "\n";
    return EX_SOFTWARE;
  }
  return 0;
}
