// The `recallfs` command: shared pieces of its verbs.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "fs/library.h"

namespace recall::cli {

// Options every verb that works on a library takes.
struct Common {
  std::string data;   // --data DIR; empty: the default
  bool json = false;  // --json where a verb supports it
};

// The data directory: --data, else $RECALLFS_DATA, else
// $XDG_DATA_HOME/recallfs, else ~/.local/share/recallfs.
std::filesystem::path data_dir(const Common& c);
// True when no --data or $RECALLFS_DATA was given (the embedded default,
// which is created on first use).
bool is_default_data_dir(const Common& c);
// Adds --data DIR (into `c.data`) to a verb.
void add_data_option(CLI::App* verb, Common& c);
// Opens the library; creates it only when it is the default one.
std::unique_ptr<Library> open_library(const Common& c);
// The library's directory, without opening it (the default one is created
// when missing); ENOENT when it holds no library.
std::filesystem::path library_dir(const Common& c);

// A progress line on stderr, redrawn in place; shown only on a terminal.
class ProgressLine {
 public:
  ProgressLine();
  ~ProgressLine() { done(); }
  void show(const std::string& text);
  void done();

 private:
  bool on_;
  bool shown_ = false;
};

// "1.5 GiB"
std::string human_bytes(uint64_t n);
// True when stderr is a terminal (progress lines are shown only then).
bool stderr_is_tty();

// The exit status for an errno value (sysexits.h).
int exit_code_for(int err);

void add_library_verbs(CLI::App& app, Common& common);  // init, add, ls, cat
void add_store_verbs(CLI::App& app, Common& common);    // verify, scan, status
void add_mount_verbs(CLI::App& app, Common& common);    // mount, unmount
void add_sync_verbs(CLI::App& app, Common& common);     // signin, signout, sync, server
void add_cloud_verbs(CLI::App& app, Common& common);    // cloud, replicate, jobs
void add_pin_verbs(CLI::App& app, Common& common);      // pin, unpin
// mount.recallfs DATA_DIR MOUNTPOINT [-o OPTIONS], as mount(8) runs it.
int mount_helper_main(int argc, char** argv);

}  // namespace recall::cli
