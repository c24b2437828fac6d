// What the FUSE adapter remembers between READDIR requests. No FUSE in here.
//
// Listings: the kernel sends no OPENDIR (FUSE_CAP_NO_OPENDIR_SUPPORT), so
// there is no directory handle to keep a listing in while it pages through
// it, and a READDIR offset must find its place in any listing of the
// folder, even one taken after names came and went. As ext4 does, entries
// are served in the order of a hash of their name (a "cookie", 31 bits so
// that 32-bit programs' telldir() works), and an offset is the cookie of
// the last entry returned: the next request resumes at the first entry
// whose cookie is greater, so an entry that stayed is returned exactly
// once. Names whose cookies collide are never split across two replies.
// The last listing of each folder is kept (kMaxKept folders) to serve the
// next page without listing again, while no name was removed or renamed
// since it was taken: every such change bumps a version. Only a listing
// taken at the current version may give the kernel nodes; one that may
// show a name since gone would make the kernel keep that name (and
// open(O_CREAT) on it would fail with ENOENT).
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
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fs/vfs.h"

namespace recall {

// A folder's listing in cookie order: ".", ".." (cookies 1 and 2), then
// every name by cookie.
struct HashedListing {
  struct Entry {
    uint32_t cookie;
    std::string name;
    struct stat st;
  };
  std::string path;
  std::vector<Entry> entries;
  explicit HashedListing(const Vfs::DirListing& listing);
  // The index of the first entry after offset `cookie` (0: the start).
  size_t resume(uint64_t cookie) const;
};
// In [3, 2^31): the offsets of "." and ".." come first, and 0 is the start.
uint32_t name_cookie(std::string_view name);

class Listings {
 public:
  static constexpr size_t kMaxKept = 64;
  struct Kept {
    std::shared_ptr<const HashedListing> listing;
    uint64_t version = 0;  // version() read before it was taken
  };
  // The listing kept for a folder node (listing null when none).
  Kept find(uint64_t node);
  void keep(uint64_t node, Kept kept);
  void done(uint64_t node);  // read to its end

  // A name was removed or renamed (here or behind the kernel's back).
  void changed() { version_.fetch_add(1, std::memory_order_acq_rel); }
  uint64_t version() const { return version_.load(std::memory_order_acquire); }
  bool current(const Kept& k) const { return k.version == version(); }

 private:
  std::atomic<uint64_t> version_ = 0;
  std::mutex mu_;
  std::unordered_map<uint64_t, Kept> kept_;
  std::deque<uint64_t> order_;  // nodes, oldest first
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
