// What the FUSE adapter remembers between READDIR requests. No FUSE in here.
//
// Listings: the kernel sends no OPENDIR (FUSE_CAP_NO_OPENDIR_SUPPORT), so
// there is no directory handle to keep a listing in while it pages through
// it, and a READDIR offset must find its place in any listing of the
// folder, even one taken after names came and went. Entries are served in
// name order (the catalog's own order: listing a tree visits its rows
// nearly in sequence, where hash order cost `find` 0.7 s more on 100k cold
// files), and each entry's offset is a cookie, a 31-bit hash of its name
// (so that 32-bit programs' telldir() works) made unique in the listing.
// The next request translates the cookie back into the name (through the
// folder's recent listings, or the names removed lately) and resumes at
// the first name after it in the current listing, so an entry that stayed
// is returned exactly once. The last kPerFolder listings of each folder
// are kept (several readers at once), for kMaxKept folders and kMaxEntries
// entries at most, the folders kept first going first. A cookie nothing
// translates (its listing gone, its name removed more than kRemovedKept
// removals ago) starts the listing again after "." and "..": entries may
// repeat, none is skipped. A kept listing serves the next page while no
// name was removed or renamed since it was taken (every such change bumps
// a version). Only a listing taken at the current version may give the
// kernel nodes; one that may show a name since gone would make the kernel
// keep that name (and open(O_CREAT) on it would fail with ENOENT).
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
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "fs/vfs.h"

namespace recall {

// A folder's listing in name order, "." and ".." first, each entry with
// its cookie (1 and 2 for "." and "..").
struct HashedListing {
  struct Entry {
    uint32_t cookie;
    std::string name;
    struct stat st;
  };
  std::string path;
  std::vector<Entry> entries;
  bool file_blocks = true;  // files' st_blocks is right (Vfs::DirListing)
  explicit HashedListing(Vfs::DirListing&& listing);
  // The name this listing gave `cookie` to.
  std::optional<std::string> name_of(uint64_t cookie) const;
  // The index of the first entry after `name` (which need not be here).
  size_t resume_after(const std::string& name) const;
};
// In [3, 2^31): the offsets of "." and ".." come first, and 0 is the start.
uint32_t name_cookie(std::string_view name);

class Listings {
 public:
  static constexpr size_t kMaxKept = 1024;       // folders
  static constexpr size_t kMaxEntries = 200000;  // entries in all kept listings (memory)
  static constexpr size_t kPerFolder = 8;        // listings of one folder (readers at once)
  struct Kept {
    std::shared_ptr<const HashedListing> listing;
    uint64_t version = 0;  // version() read before it was taken
  };
  // The newest listing kept for a folder node (listing null when none);
  // with `with_file_blocks`, the newest that has files' st_blocks (one for
  // a reader that is given files' attributes). Folders go in the order
  // they were first kept.
  Kept find(uint64_t node, bool with_file_blocks = false);
  void keep(uint64_t node, Kept kept);
  // The name a kept listing of the folder gave `cookie` to, or a name
  // removed from the folder lately (a reader's last name may be gone).
  std::optional<std::string> name_of(uint64_t node, uint64_t cookie);
  void removed(uint64_t node, const std::string& name);
  void done(uint64_t node, const HashedListing* listing);  // read to its end

  // A name was removed or renamed (here or behind the kernel's back).
  void changed() { version_.fetch_add(1, std::memory_order_acq_rel); }
  uint64_t version() const { return version_.load(std::memory_order_acquire); }
  bool current(const Kept& k) const { return k.version == version(); }

 private:
  std::atomic<uint64_t> version_ = 0;
  std::mutex mu_;
  std::unordered_map<uint64_t, std::deque<Kept>> kept_;              // newest last
  static constexpr size_t kRemovedKept = 4096;                       // names, all folders
  std::deque<std::tuple<uint64_t, uint32_t, std::string>> removed_;  // node, cookie, name
  std::deque<uint64_t> order_;                                       // nodes, first kept first
  size_t entries_ = 0;                                               // in all kept listings
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
