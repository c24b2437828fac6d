// Helpers shared by the tests: temporary directories, sample files of real
// formats, running commands.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace recall::test {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "recallfs-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& rel) const { return path_ / rel; }

 private:
  std::filesystem::path path_;
};

std::string random_bytes(std::mt19937_64& rng, size_t n);
void write_file(const std::filesystem::path& p, const std::string& content);
std::string read_file(const std::filesystem::path& p);
// The names in a folder (readdir, without "." and "..").
std::set<std::string> listing(const std::filesystem::path& dir);
std::string sha256_of(const std::string& data);

// A valid PDF with `pages` pages and, when not empty, a Title and Author.
std::string make_pdf(int pages, const std::string& title, const std::string& author);
// A valid RGB PNG of the given size.
std::string make_png(uint32_t width, uint32_t height);

struct RunResult {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out, err;
};
// Runs argv[0] with the arguments (no shell), with extra environment
// variables ("NAME=value", replacing any of the same name), and waits for it.
RunResult run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
              const std::string& stdin_data = "");
// Runs a shell command line with /bin/sh -c.
RunResult sh(const std::string& command);

// The recallfs binary under test.
std::string recallfs_binary();

// The environment that runs a program with its clock `offset` off ("-1h"),
// through libfaketime (Debian's faketime package: a device whose clock is
// wrong, injected at the process's clock); nullopt when it is not installed.
std::optional<std::vector<std::string>> clock_off_by(const std::string& offset);

// The number in environment variable `name` (a seed, a count), or `fallback`.
uint64_t env_or(const char* name, uint64_t fallback);

// Polls `cond` until it is true or `timeout` passes; returns its last value.
bool eventually(const std::function<bool()>& cond,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));

// True once process `pid` has ended (gone, or a zombie nobody reaped yet).
bool process_ended(pid_t pid);

// Files (not directories) under `dir`, recursively.
std::vector<std::filesystem::path> files_under(const std::filesystem::path& dir);
// The lines of a text file (none when it does not exist).
std::vector<std::string> lines_of(const std::filesystem::path& file);
// File descriptors open in this process (to check for leaks).
size_t open_fd_count();

}  // namespace recall::test
