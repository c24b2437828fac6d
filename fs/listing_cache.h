// ListingCache — the folders' listings the Vfs read from the catalog, kept
// for the next time the kernel asks. No FUSE in here.
//
// The kernel caches a folder's listing and entries itself, but drops them
// under memory pressure (or `echo 3 > drop_caches`), and then asks again
// for every folder of a walk: one catalog query per folder, the largest
// part of the daemon's time in a cold `find` over 100k files. A listing is
// kept with the catalog generation it was read at (Catalog::generation())
// and served only while the generation is unchanged, so a commit that
// changes works, folders, files or links retires every kept listing, and
// nothing needs to know which folders a change touched. A change made here
// is never missed. One made by another process (`recallfs add`) shows once
// the CatalogWatcher has noticed it, within a second, as the kernel's own
// cached listings do.
//
// What is kept of an entry is its shown name and the facts its attributes
// are made of (EntryFacts), not the catalog rows: the rows of a listing of
// 100k files took 170 MB, the facts about 25 MB. Attributes that do not
// come from the catalog (whether the bytes are here, an open file's staged
// size) are worked out again at every listing. At most kMaxEntries entries
// are kept, the folders least recently listed going first.
//
// Thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/sha256.h"

namespace recall {

// What an entry's attributes are made of, from its catalog row.
struct EntryFacts {
  enum class Kind : uint8_t { Inbox, Work, Folder, File };
  Kind kind = Kind::File;
  uint32_t mode = 0;         // permission bits
  uint32_t extra_links = 0;  // File: links besides its own place
  uint64_t bytes = 0;        // File
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  std::string id;                // the asset's, work's or folder's id
  std::optional<Digest> sha256;  // File: its blob (binary: half the memory of hex)
};

class ListingCache {
 public:
  // Each listing counts one more than its entries, so that many empty
  // folders are bounded too.
  static constexpr size_t kMaxEntries = 250000;  // about 60 MB at most
  struct Entry {
    std::string shown;
    EntryFacts facts;
  };
  using Listing = std::vector<Entry>;

  // The listing kept for `folder` at `generation`, or null. One kept at
  // another generation is dropped.
  std::shared_ptr<const Listing> find(const std::string& folder, uint64_t generation);
  // Keeps `listing` as read at `generation` (Catalog::generation() read
  // before the catalog was).
  void keep(const std::string& folder, uint64_t generation, std::shared_ptr<const Listing> listing);
  size_t entries() const;

 private:
  struct Kept {
    std::string folder;
    uint64_t generation;
    std::shared_ptr<const Listing> listing;
  };
  void drop(std::list<Kept>::iterator it);  // with mu_ held

  mutable std::mutex mu_;
  std::list<Kept> kept_;  // most recently listed first
  std::unordered_map<std::string, std::list<Kept>::iterator> by_folder_;
  size_t entries_ = 0;
};

}  // namespace recall
