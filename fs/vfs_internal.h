// Shared by the Vfs's files (vfs*.cpp). Not part of the API.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>

#include "catalog/catalog.h"

namespace recall::vfs_detail {

// st_blksize: programs such as cp size their buffers by it, and larger
// requests mean fewer round trips through FUSE.
inline constexpr blksize_t kBlockSize = 1 << 20;

// Inode numbers of the fixed folders; everything else hashes its id.
inline constexpr ino_t kRootIno = 1, kWorksIno = 2, kInboxIno = 3, kBlobsIno = 4;

// FNV-1a of an id, kept clear of the fixed numbers.
inline ino_t ino_of(std::string_view id) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : id) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h < 16 ? h + 16 : h;
}

inline void set_times(struct stat& st, int64_t mtime_ns, int64_t ctime_ns) {
  st.st_mtim = {static_cast<time_t>(mtime_ns / 1000000000),
                static_cast<long>(mtime_ns % 1000000000)};
  st.st_atim = st.st_mtim;
  st.st_ctim = {static_cast<time_t>(ctime_ns / 1000000000),
                static_cast<long>(ctime_ns % 1000000000)};
}

}  // namespace recall::vfs_detail
