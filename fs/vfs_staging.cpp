// Vfs: an open file's staged bytes — the staging file (DATA/staging/) that
// edits go to, writes and truncations into it (ftruncate, truncate,
// fallocate), and the note that makes a truncation alone durable at close
// (fs/truncation_note.h). Changed under the file's lock.
#include <fcntl.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/file_io.h"
#include "base/ids.h"
#include "base/sha256.h"
#include "fs/open_file.h"
#include "fs/truncation_note.h"
#include "fs/vfs.h"

namespace recall {
namespace fs = std::filesystem;

namespace {

// Writeback of staged bytes starts every this many bytes, so that the fsync
// at close finds most of them on disk already.
constexpr uint64_t kWritebackBytes = 8ull << 20;
constexpr size_t kCopyBuffer = 1 << 20;

std::atomic<uint64_t> staging_counter{0};

}  // namespace

// ---- staging ---------------------------------------------------------------

void Vfs::ensure_staging(OpenFile& of, bool copy_content) {
  if (!of.staging.empty()) return;
  fs::path path = staging_dir_ / ("w-" + of.asset_id + "-" + std::to_string(++staging_counter));
  auto fd = std::make_shared<UniqueFd>(open_file(path, O_RDWR | O_CREAT | O_EXCL, 0600));
  of.hash = Sha256();
  of.hashed = 0;
  of.hash_ok = true;
  of.written_back = 0;
  if (copy_content && of.size > 0) {
    if (!of.fd) {
      ::unlink(path.c_str());
      throw Error(EIO, "the bytes of this file are not on this device");
    }
    // Copy the committed bytes, hashing them on the way: appending to the
    // file then needs no second read at commit.
    std::vector<std::byte> buf(kCopyBuffer);
    try {
      for (uint64_t off = 0; off < of.size;) {
        size_t n =
            pread_full(of.fd->get(),
                       std::span(buf.data(), std::min<uint64_t>(buf.size(), of.size - off)), off);
        if (n == 0) break;
        write_full(fd->get(), std::span<const std::byte>(buf.data(), n));
        of.hash.update(std::span<const std::byte>(buf.data(), n));
        off += n;
        of.hashed = off;
      }
    } catch (...) {
      ::unlink(path.c_str());
      throw;
    }
  } else {
    of.size = 0;
  }
  of.fd = std::move(fd);
  of.staging = path;
}

void discard_staging(OpenFile& of, BlobStore& blobs) {
  if (!of.staging.empty()) ::unlink(of.staging.c_str());
  of.staging.clear();
  of.fd.reset();
  of.dirty = false;
  of.size = 0;
  if (!of.sha256.empty() && blobs.has(of.sha256)) {
    of.fd = std::make_shared<UniqueFd>(blobs.open_object(of.sha256));
    of.size = static_cast<uint64_t>(stat_fd(of.fd->get(), "blob").st_size);
  }
}

// ---- writes and truncations -----------------------------------------------

uint64_t Vfs::stage_write(OpenFile& of, std::span<const std::byte> data,
                          std::optional<uint64_t> at) {
  std::lock_guard lock(of.mu);
  if (of.failed) throw *of.failed;
  const uint64_t offset = at.value_or(of.size);
  try {
    ensure_staging(of, true);
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::pwrite(of.fd->get(), data.data() + done, data.size() - done,
                           static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        throw_last_errno("write");
      }
      done += static_cast<size_t>(n);
    }
  } catch (const Error& e) {
    // The staged bytes are now incomplete: they must never replace the file,
    // nor must a truncation noted before them.
    of.failed = e;
    of.drop_truncation_note();
    throw;
  }
  uint64_t end = offset + data.size();
  if (of.hash_ok && offset == of.hashed) {
    of.hash.update(data);
    of.hashed = end;
  } else {
    of.hash_ok = false;
  }
  of.size = std::max(of.size, end);
  of.dirty = true;
  of.written = true;
  of.mtime_ns = now_ns();
  if (end > of.written_back + kWritebackBytes) {
    ::sync_file_range(of.fd->get(), static_cast<off_t>(of.written_back),
                      static_cast<off_t>(end - of.written_back), SYNC_FILE_RANGE_WRITE);
    of.written_back = end;
  }
  return offset;
}

void Vfs::ftruncate(uint64_t h, uint64_t size, const NameOf& through) {
  std::shared_ptr<Handle> hd = handle(h);
  if (!hd->writable) throw Error(EBADF, "not open for writing");
  stage_truncate(*hd->of, size);
  tell_other_names(*hd->of, through);
}

void Vfs::stage_truncate(OpenFile& of, uint64_t size) {
  std::lock_guard lock(of.mu);
  if (of.failed) throw *of.failed;
  if (size == of.size && !of.staging.empty()) return;
  ensure_staging(of, size > 0);
  if (::ftruncate(of.fd->get(), static_cast<off_t>(size)) != 0) {
    of.failed = Error(errno, std::string("truncate: ") + std::strerror(errno));
    of.drop_truncation_note();
    throw *of.failed;
  }
  if (size == 0) {
    of.hash = Sha256();
    of.hashed = 0;
    of.hash_ok = true;
  } else if (size != of.hashed) {
    of.hash_ok = false;
  }
  of.size = size;
  of.written_back = std::min(of.written_back, size);
  of.dirty = true;
  of.mtime_ns = now_ns();
}

void Vfs::fallocate(uint64_t h, int mode, uint64_t offset, uint64_t length, const NameOf& through) {
  std::shared_ptr<Handle> hd = handle(h);
  if (!hd->writable) throw Error(EBADF, "not open for writing");
  const int zeroing = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE;
  if ((mode & ~(FALLOC_FL_KEEP_SIZE | zeroing)) != 0 || (mode & zeroing) == zeroing)
    throw Error(EOPNOTSUPP, "this kind of fallocate is not supported here");
  if (offset > static_cast<uint64_t>(INT64_MAX) || length == 0 ||
      length > static_cast<uint64_t>(INT64_MAX) - offset)
    throw Error(EINVAL, "fallocate: bad offset or length");
  OpenFile& of = *hd->of;
  {
    std::lock_guard lock(of.mu);
    if (of.failed) throw *of.failed;
    const bool zeroes = (mode & zeroing) != 0;
    const bool grows = !(mode & FALLOC_FL_KEEP_SIZE) && offset + length > of.size;
    // Reserving room inside the file changes no byte: only space is taken.
    ensure_staging(of, true);
    if (::fallocate(of.fd->get(), mode, static_cast<off_t>(offset), static_cast<off_t>(length)) !=
        0) {
      int e = errno;
      Error err(e, std::string("fallocate: ") + std::strerror(e));
      if (zeroes && e != EOPNOTSUPP && e != EINVAL) {
        // Part of the range may be zeroed: the staged bytes must not
        // replace the file (as after a failed write).
        of.failed = err;
        of.drop_truncation_note();
      } else if (grows && ::ftruncate(of.fd->get(), static_cast<off_t>(of.size)) != 0) {
        // A reservation changes no byte, but the size it may have grown
        // must go back; if even that fails, the staged bytes are not the file's.
        of.failed = err;
        of.drop_truncation_note();
      }
      throw err;
    }
    // Room reserved past the end is given back when the bytes are stored.
    if (offset + length > of.size) of.reserved_past_end = true;
    if (!zeroes && !grows) return;
    if (grows) of.size = offset + length;
    of.hash_ok = of.hash_ok && !zeroes && of.hashed == of.size;
    of.dirty = true;
    of.written = true;
    of.mtime_ns = now_ns();
  }
  tell_other_names(of, through);
}

void Vfs::truncate(std::string_view path, uint64_t size) {
  OpenResult r = open(path, O_WRONLY);
  try {
    ftruncate(r.handle, size);
    // Committed now (no truncation note: this is its only close).
    std::shared_ptr<Handle> hd = handle(r.handle);
    int writers;
    {
      std::lock_guard lock(hd->of->mu);
      writers = hd->of->writers;
    }
    commit(*hd->of, writers <= 1);
  } catch (...) {
    release(r.handle);
    throw;
  }
  release(r.handle);
}

// ---- a truncation alone, at close -----------------------------------------

void Vfs::note_truncation(OpenFile& of) {
  record(of);  // a commit another thread stored comes first: the note's base
  bool noted = false;
  {
    std::shared_lock storing(store_mu_);  // until noted_blobs names what is stored
    std::lock_guard lock(of.mu);
    if (of.dirty && !of.written && !of.pending && !of.failed && !of.unlinked && !of.unrecorded &&
        !of.staging.empty()) {
      try {
        // Known and stored already (an emptied file, often): no copy to make.
        std::string sha;
        if (of.hash_ok && of.hashed == of.size) sha = to_hex(of.hash.peek());
        if (sha.empty() || !lib_.blobs().has(sha)) {
          fsync_fd(of.fd->get(), of.staging);
          sha = lib_.blobs().put_file(of.staging).sha256;
        }
        of.noted_blobs.push_back(sha);
        fs::path note =
            write_truncation_note(staging_dir_, {of.asset_id, of.sha256, sha, of.mtime_ns, {}});
        of.drop_truncation_note();  // an earlier one (after: never a moment without)
        of.truncation_note = std::move(note);
        of.noted_at = of.stored;
      } catch (const Error& e) {
        // Not durable (a full disk): as a failed write, the truncation must
        // not happen later either. The file keeps its content; writes
        // through the other descriptors fail until the error is reported
        // again.
        of.failed = e;
        of.drop_truncation_note();
        throw;
      }
      noted = true;
    }
  }
  // Written to, committed or failed meanwhile (another handle): what a
  // close does then.
  if (!noted) return commit(of, false);
  collect_deferred();  // what this put held up
}

}  // namespace recall
