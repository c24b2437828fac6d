// Shared by the benchmarks: timing, baseline commands, sample files.
// Every benchmark prints its figure as a ratio against a baseline measured
// in the same run, on the same machine and disk.
#pragma once

#include <fcntl.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>

#include "base/fd.h"
#include "base/file_io.h"

namespace recall::bench {

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Wall time of a shell command; throws when it fails.
inline double time_shell(const std::string& cmd) {
  auto t0 = std::chrono::steady_clock::now();
  int rc = std::system(cmd.c_str());
  double s = seconds_since(t0);
  if (rc != 0) throw std::runtime_error("baseline failed: " + cmd);
  return s;
}

// Writes `bytes` of random data (not compressible, not sparse).
inline void make_random_file(const std::filesystem::path& p, uint64_t bytes, uint64_t seed) {
  UniqueFd fd = open_file(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::mt19937_64 rng(seed);
  std::string buf(1 << 20, '\0');
  for (uint64_t done = 0; done < bytes;) {
    for (size_t i = 0; i + 8 <= buf.size(); i += 8) {
      uint64_t v = rng();
      std::memcpy(&buf[i], &v, 8);
    }
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), bytes - done));
    write_full(fd.get(), std::as_bytes(std::span(buf.data(), n)));
    done += n;
  }
  fsync_fd(fd.get(), p);
}

// Reads a file once so that every contender starts from a warm page cache.
inline void warm(const std::filesystem::path& p) {
  std::system(("cat '" + p.string() + "' > /dev/null").c_str());
}

inline std::filesystem::path bench_dir(int argc, char** argv) {
  std::filesystem::path d = argc > 1 ? argv[1] : "bench-data";
  std::filesystem::create_directories(d);
  return std::filesystem::absolute(d);
}

inline void print_ratio(const char* what, double ours, double baseline, const char* baseline_name,
                        double target) {
  double ratio = baseline / ours;
  std::printf("%-28s ours %.3f s, %s %.3f s -> ratio %.2f (target >= %.2f) %s\n", what, ours,
              baseline_name, baseline, ratio, target, ratio >= target ? "OK" : "BELOW TARGET");
}

}  // namespace recall::bench
