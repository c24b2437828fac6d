// What the FUSE adapter remembers between READDIR requests. No FUSE in here.
//
// Listings: the kernel sends no OPENDIR (FUSE_CAP_NO_OPENDIR_SUPPORT), so
// there is no directory handle to keep a listing in while it pages through
// it. A READDIR offset carries the listing's serial number in its high 32
// bits and the next entry's index in the low ones. A listing goes when read
// to its end, or when kMaxKept newer ones push it out; an offset into a
// listing that is gone is served from a fresh one.
// A kept listing may show names removed since it was taken. The kernel
// must not get nodes for those (it would keep a name that is gone, and
// open(O_CREAT) on it would fail with ENOENT), so every change to the
// namespace bumps a version, and only a listing taken at the current
// version may carry nodes; an older one is served as bare names.
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

#include <atomic>
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
  struct Kept {
    std::shared_ptr<const Vfs::DirListing> listing;
    uint64_t version = 0;  // version() read before it was taken
  };
  // Keeps a listing; its serial number (never 0, fits 32 bits).
  uint64_t add(Kept kept);
  Kept find(uint64_t serial);  // listing null when gone
  void done(uint64_t serial);

  // Something in the namespace changed (here or behind the kernel's back).
  void changed() { version_.fetch_add(1, std::memory_order_acq_rel); }
  uint64_t version() const { return version_.load(std::memory_order_acquire); }
  bool current(const Kept& k) const { return k.version == version(); }

 private:
  std::atomic<uint64_t> version_ = 0;
  std::mutex mu_;
  std::unordered_map<uint64_t, Kept> kept_;
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
