// Random file operations on one folder, as apps running side by side do:
// writes, appends, writes in the middle, truncations, renames (over other
// files and folders too), links, removals, folders, reads, fsyncs, listings
// and attribute reads, on a few shared names, some through descriptors kept
// open across operations. Used by the stress tests (one device's threads
// racing, and two devices racing through sync).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace recall::test {

class RandomFileOps {
 public:
  struct Options {
    // Bytes may be on another device only (a synced library): opening or
    // reading them may fail with EIO when no holder has that version any
    // more.
    bool remote_bytes = false;
    // The folder is a library's works/: its sub-folders are works (made,
    // renamed, removed, moved into other works as folders and back), and
    // files move and link between them. Otherwise one work's folder.
    bool works = false;
  };
  RandomFileOps(std::filesystem::path root, uint64_t seed, Options options);
  RandomFileOps(std::filesystem::path root, uint64_t seed)
      : RandomFileOps(std::move(root), seed, Options{}) {}

  // One worker: `ops` random operations; returns a description of the first
  // failure a local disk would not give, or "". Workers may run at once.
  std::string run(int worker, uint64_t ops);
  // Operations done so far, by all workers (a watchdog's measure).
  uint64_t progress() const { return progress_.load(); }

 private:
  std::string file(std::mt19937_64& rng);
  std::string dir(std::mt19937_64& rng);
  bool allowed(const std::string& op, int e) const;
  std::string failed(const std::string& op, const std::string& what, int e) const;
  std::string step(std::mt19937_64& rng, std::vector<int>& held);

  std::filesystem::path root_;
  uint64_t seed_;
  Options options_;
  std::atomic<uint64_t> progress_{0};
};

// Runs `threads` workers on each of `sets` at once, `ops` operations each.
// A hang is a failure, not a stuck suite: when no operation finishes for
// `stall`, on_hang is called (it ends the stuck calls: kills the daemons)
// and the outcome says so.
struct RaceOutcome {
  std::vector<std::string> failures;  // one per worker; "" when none
  bool hung = false;
};
RaceOutcome race(const std::vector<RandomFileOps*>& sets, int threads, uint64_t ops,
                 std::chrono::seconds stall, const std::function<void()>& on_hang);

}  // namespace recall::test
