// What the FUSE adapter remembers between READDIR requests. No FUSE in here.
//
// Listings: the kernel sends no OPENDIR (FUSE_CAP_NO_OPENDIR_SUPPORT), so
// there is no directory handle to keep a listing in while it pages through
// it. A READDIR offset carries the listing's serial number in its high 32
// bits and the next entry's index in the low ones. A listing goes when read
// to its end, or when kMaxKept newer ones push it out; an offset into a
// listing that is gone is served from a fresh one.
//
// StatInterest: whether a READDIRPLUS reply should carry the attributes of
// the files it lists. With them the kernel builds an inode for every file
// listed, which `ls -l`, `du` or `grep -r` then use without a lookup each,
// but which `find -type f` (names and types only) never uses: on 100k files
// it made `find` 1.3x slower. So a thread gets files' attributes once it
// has shown it wants them, by looking up or stat-ing a file in the last
// kInterest; folders always come with theirs (any walk descends into them).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "fs/vfs.h"

namespace recall {

class Listings {
 public:
  static constexpr size_t kMaxKept = 64;
  // Keeps a listing; its serial number (never 0, fits 32 bits).
  uint64_t add(std::shared_ptr<const Vfs::DirListing> listing);
  std::shared_ptr<const Vfs::DirListing> find(uint64_t serial);
  void done(uint64_t serial);

 private:
  std::mutex mu_;
  std::unordered_map<uint64_t, std::shared_ptr<const Vfs::DirListing>> kept_;
  std::deque<uint64_t> order_;
  uint64_t next_ = 1;
};

class StatInterest {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr Clock::duration kInterest = std::chrono::seconds(30);
  static constexpr size_t kMaxThreads = 4096;
  // Thread `tid` looked up or stat-ed a file.
  void noted(pid_t tid, Clock::time_point now = Clock::now());
  bool wants_file_attrs(pid_t tid, Clock::time_point now = Clock::now());

 private:
  std::mutex mu_;
  std::unordered_map<pid_t, Clock::time_point> last_;
};

}  // namespace recall
