#include "cas/blob_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "base/error.h"
#include "base/file_io.h"
#include "base/ids.h"
#include "base/sha256.h"
#include "cas/blob_store_internal.h"

namespace recall {
namespace fs = std::filesystem;

namespace cas_detail {

void require_sha(const std::string& sha256) {
  if (!is_sha256_hex(sha256)) throw Error(EINVAL, "not a sha256: " + quote(sha256));
}

bool rename_noreplace(const fs::path& from, const fs::path& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return true;
  if (errno == EEXIST) return false;
  if (errno != EINVAL && errno != ENOSYS)
    throw_last_errno("rename " + quote(from.string()) + " to " + quote(to.string()));
  // File systems without RENAME_NOREPLACE: link() refuses to replace as well.
  if (::link(from.c_str(), to.c_str()) != 0) {
    if (errno == EEXIST) return false;
    throw_last_errno("link " + quote(from.string()) + " to " + quote(to.string()));
  }
  ::unlink(from.c_str());
  return true;
}

void empty_dir(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) fs::remove(e.path(), ec);
}

Digest hash_fd(int fd, uint64_t offset, uint64_t length, std::vector<std::byte>& buf,
               std::atomic<uint64_t>* progress) {
  Sha256 h;
  uint64_t done = 0;
  while (done < length) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), length - done));
    size_t n = pread_full(fd, std::span(buf.data(), want), offset + done);
    if (n == 0) break;  // shorter than expected: the digest will not match
    h.update(std::span<const std::byte>(buf.data(), n));
    done += n;
    if (progress) *progress += n;
  }
  return h.finish();
}

}  // namespace cas_detail
using namespace cas_detail;

// ---- opening and closing ---------------------------------------------------

BlobStore::BlobStore(fs::path root, const Options& options)
    : root_(std::move(root)), options_(options) {}

std::unique_ptr<BlobStore> BlobStore::open(const fs::path& data_dir, const Options& options) {
  fs::path root = data_dir / "cas";
  if (!fs::is_directory(root)) {
    if (!options.create) throw Error(ENOENT, "no blob store in " + quote(data_dir.string()));
    if (!fs::is_directory(data_dir))
      throw Error(ENOENT, "data directory " + quote(data_dir.string()) + " does not exist");
    make_dir_durable(root);
  }
  for (const char* sub : {"objects", "tmp", "quarantine"}) make_dir_durable(root / sub);

  std::unique_ptr<BlobStore> store(new BlobStore(root, options));
  store->objects_fd_ = open_file(root / "objects", O_PATH | O_DIRECTORY);
  store->lock_fd_ = open_file(root / "lock", O_RDWR | O_CREAT, 0644);
  int fd = store->lock_fd_.get();
  bool exclusive = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
  store->open_index(exclusive);
  if (exclusive) {
    // Alone: whatever is in tmp/ belongs to a process that died mid-put.
    empty_dir(root / "tmp");
    fs::path clean = root / "clean";
    if (::unlink(clean.c_str()) == 0) {
      fsync_dir(root);
    } else {
      store->scan();  // the last user did not close cleanly: reconcile
      if (options.unneeded_after_crash) store->remove_unneeded(options.unneeded_after_crash);
    }
  }
  if (::flock(fd, LOCK_SH) != 0) throw_last_errno("lock " + quote((root / "lock").string()));
  return store;
}

void BlobStore::open_index(bool exclusive) {
  fs::path file = root_ / "index.db";
  try {
    index_ = std::make_unique<BlobIndex>(file);
  } catch (const Error& e) {
    if (e.code() != EUCLEAN || !exclusive) throw;
    // The index is a cache of objects/: set the damaged one aside and rebuild.
    fs::path aside = file;
    aside += ".corrupt-" + std::to_string(now_ms());
    fs::rename(file, aside);
    for (const char* suffix : {"-wal", "-shm"}) {
      std::error_code ec;
      fs::remove(fs::path(file.string() + suffix), ec);
    }
    index_ = std::make_unique<BlobIndex>(file);
    fs::remove(root_ / "clean");  // force the rebuilding scan
  }
}

BlobStore::~BlobStore() {
  index_.reset();  // closes the index database, checkpointing its WAL
  if (lock_fd_ && ::flock(lock_fd_.get(), LOCK_EX | LOCK_NB) == 0) {
    try {
      write_small_file_durable(root_ / "clean", "");
    } catch (...) {
      // Without the marker the next open reconciles: slower, never wrong.
    }
  }
}

// ---- put -------------------------------------------------------------------

PutResult BlobStore::put(int fd) {
  return put_from([fd](std::span<std::byte> buf) { return read_full(fd, buf); });
}

PutResult BlobStore::put(std::istream& in) {
  return put_from([&in](std::span<std::byte> buf) {
    in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(buf.size()));
    if (in.bad()) throw Error(EIO, "read from stream failed");
    return static_cast<size_t>(in.gcount());
  });
}

PutResult BlobStore::put_file(const fs::path& file) {
  UniqueFd fd = open_file(file, O_RDONLY);
  struct stat st = stat_fd(fd.get(), file);
  if (S_ISDIR(st.st_mode)) throw Error(EISDIR, quote(file.string()) + " is a directory");
  ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
  try {
    return put(fd.get());
  } catch (const Error& e) {
    throw Error(e.code(), "cannot store " + quote(file.string()) + ": " + e.message());
  }
}

namespace {

// Writes buffers to a file on a thread of its own while the caller reads and
// hashes the next ones, starting the kernel's writeback as it goes, so that
// hashing, copying and the disk all work at once. Buffers circulate between
// the two threads; at most kBuffers are in flight.
class WriteBehind {
 public:
  static constexpr size_t kBuffers = 4;

  WriteBehind(int fd, uint64_t writeback_bytes) : fd_(fd), writeback_bytes_(writeback_bytes) {
    for (size_t i = 0; i < kBuffers; ++i) free_.emplace_back(kIoBuffer);
    thread_ = std::jthread([this] { run(); });
  }
  ~WriteBehind() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }

  // A buffer to fill; waits while all are being written.
  std::vector<std::byte> take() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !free_.empty() || error_; });
    if (error_) std::rethrow_exception(error_);
    std::vector<std::byte> b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  void submit(std::vector<std::byte> buf, size_t n) {
    {
      std::lock_guard lock(mu_);
      full_.emplace_back(std::move(buf), n);
    }
    cv_.notify_all();
  }
  // Waits until everything submitted is written; rethrows a write error.
  void finish() {
    std::unique_lock lock(mu_);
    closed_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return done_; });
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void run() {
    uint64_t written = 0, flushed = 0;
    for (;;) {
      std::pair<std::vector<std::byte>, size_t> item;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return !full_.empty() || closed_; });
        if (full_.empty() || error_) {
          done_ = true;
          cv_.notify_all();
          return;
        }
        item = std::move(full_.front());
        full_.pop_front();
      }
      try {
        write_full(fd_, std::span<const std::byte>(item.first.data(), item.second));
      } catch (...) {
        std::lock_guard lock(mu_);
        error_ = std::current_exception();
        full_.clear();
        cv_.notify_all();
        continue;
      }
      written += item.second;
      if (written - flushed >= writeback_bytes_) {
        ::sync_file_range(fd_, static_cast<off_t>(flushed), static_cast<off_t>(written - flushed),
                          SYNC_FILE_RANGE_WRITE);
        flushed = written;
      }
      {
        std::lock_guard lock(mu_);
        free_.push_back(std::move(item.first));
      }
      cv_.notify_all();
    }
  }

  int fd_;
  uint64_t writeback_bytes_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::vector<std::byte>> free_;
  std::deque<std::pair<std::vector<std::byte>, size_t>> full_;
  bool closed_ = false, done_ = false;
  std::exception_ptr error_;
  std::jthread thread_;  // last: joined before the members it uses go
};

}  // namespace

PutResult BlobStore::put_from(const std::function<size_t(std::span<std::byte>)>& read) {
  std::string tmpl = (root_ / "tmp" / "put-XXXXXX").string();
  int raw = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (raw < 0) throw_last_errno("create temp file in " + quote((root_ / "tmp").string()));
  UniqueFd tmp(raw);
  fs::path tmp_path = tmpl;
  // Until link_in() takes it, the temp file is removed on any failure.
  struct Remove {
    const fs::path& p;
    bool armed = true;
    ~Remove() {
      if (armed) ::unlink(p.c_str());
    }
  } remove_tmp{tmp_path};

  Sha256 hash;
  uint64_t size = 0;
  std::vector<std::byte> first(kIoBuffer);
  size_t n = read(first);
  hash.update(std::span<const std::byte>(first.data(), n));
  size += n;
  if (n < first.size()) {
    // Small input (the common case): one write, no thread.
    write_full(tmp.get(), std::span<const std::byte>(first.data(), n));
  } else {
    WriteBehind writer(tmp.get(), options_.writeback_bytes);
    writer.submit(std::move(first), n);
    for (;;) {
      std::vector<std::byte> buf = writer.take();
      n = read(buf);
      if (n == 0) break;
      hash.update(std::span<const std::byte>(buf.data(), n));
      size += n;
      writer.submit(std::move(buf), n);
    }
    writer.finish();
  }
  if (::fchmod(tmp.get(), 0444) != 0) throw_last_errno("chmod " + quote(tmp_path.string()));
  fsync_fd(tmp.get(), tmp_path);
  tmp.reset();
  PutResult r = link_in(tmp_path, to_hex(hash.finish()), size);
  remove_tmp.armed = false;
  return r;
}

PutResult BlobStore::adopt(const fs::path& file, const std::optional<std::string>& sha256,
                           bool synced) {
  UniqueFd fd = open_file(file, O_RDONLY);
  uint64_t size = static_cast<uint64_t>(stat_fd(fd.get(), file).st_size);
  std::string sha;
  if (sha256) {
    sha = *sha256;
  } else {
    std::vector<std::byte> buf(kIoBuffer);
    ::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    sha = to_hex(hash_fd(fd.get(), 0, size, buf, nullptr));
  }
  if (::fchmod(fd.get(), 0444) != 0) throw_last_errno("chmod " + quote(file.string()));
  try {
    return link_in(file, sha, size, synced ? -1 : fd.get());
  } catch (...) {
    ::unlink(file.c_str());
    throw;
  }
}

PutResult BlobStore::link_in(const fs::path& tmp, const std::string& sha256, uint64_t size,
                             int unsynced_fd) {
  fs::path dest = object_path(sha256);
  make_dir_durable(dest.parent_path());
  std::lock_guard names(names_mu_);
  PutResult r;
  r.sha256 = sha256;
  r.size = size;
  // A duplicate is only unlinked: its bytes need no fsync. (names_mu_ keeps
  // the object from going between this look and the rename in this process;
  // another one, a verify, may still move it away: then it is fsync'd after.)
  bool synced = unsynced_fd < 0;
  if (!synced && !fs::exists(dest)) {
    fsync_fd(unsynced_fd, tmp);
    synced = true;
  }
  if (rename_noreplace(tmp, dest)) {
    if (!synced) fsync_fd(unsynced_fd, dest);
    fsync_dir(dest.parent_path());
  } else {
    ::unlink(tmp.c_str());
    r.deduplicated = true;
  }
  std::optional<BlobInfo> known = index_->get(sha256);
  if (known && !known->content.mime.empty()) {
    r.content = known->content;
    if (known->health != Health::Healthy) index_->set_health(sha256, Health::Healthy, std::nullopt);
    return r;
  }
  UniqueFd fd = open_object(sha256);
  r.content = probe_content(fd.get(), dest);
  index_->record_present(BlobInfo{.sha256 = sha256,
                                  .size = size,
                                  .created_ms = now_ms(),
                                  .health = Health::Healthy,
                                  .checked_ms = std::nullopt,
                                  .content = r.content});
  return r;
}

// ---- reading and removing --------------------------------------------------

fs::path BlobStore::object_path(const std::string& sha256) const {
  return root_ / "objects" / sha256.substr(0, 2) / sha256;
}

namespace {
// "ab/abcd…" relative to objects/, built without allocating.
struct RelativeObjectPath {
  explicit RelativeObjectPath(const std::string& sha256) {
    text[0] = sha256[0];
    text[1] = sha256[1];
    text[2] = '/';
    std::memcpy(text + 3, sha256.data(), 64);
    text[67] = '\0';
  }
  char text[68];
};
}  // namespace

// Asked for every file a listing shows (st_blocks): a lookup relative to an
// open objects/ instead of a walk of the whole path from /.
bool BlobStore::has(const std::string& sha256) const {
  if (!is_sha256_hex(sha256)) return false;
  return ::faccessat(objects_fd_.get(), RelativeObjectPath(sha256).text, F_OK, 0) == 0;
}

std::optional<BlobInfo> BlobStore::stat(const std::string& sha256) {
  if (!is_sha256_hex(sha256)) return std::nullopt;
  return index_->get(sha256);
}

UniqueFd BlobStore::open_object(const std::string& sha256) const {
  require_sha(sha256);
  int fd = ::openat(objects_fd_.get(), RelativeObjectPath(sha256).text, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) throw Error(ENOENT, "blob " + sha256 + " is not on this device");
    throw_last_errno("open blob " + sha256);
  }
  return UniqueFd(fd);
}

void BlobStore::remove(const std::string& sha256) {
  require_sha(sha256);
  fs::path p = object_path(sha256);
  std::lock_guard names(names_mu_);
  // The row first: a crash in between leaves an object not in the index (a
  // reopen indexes it again), never a row whose object is gone (damage).
  bool had_row = index_->erase(sha256);
  bool had_file = ::unlink(p.c_str()) == 0;
  if (!had_file && errno != ENOENT) throw_last_errno("remove blob " + sha256);
  if (had_file) fsync_dir(p.parent_path());
  if (!had_file && !had_row) throw Error(ENOENT, "blob " + sha256 + " is not in the store");
}

void BlobStore::remove_unneeded(const std::function<bool(const std::string&)>& unneeded) {
  std::vector<std::string> gone;
  list([&](const BlobInfo& b) {
    try {
      if (unneeded(b.sha256)) gone.push_back(b.sha256);
    } catch (const std::exception& e) {  // kept: the owner could not say
      std::fprintf(stderr, "recallfs: kept object %s: %s\n", b.sha256.c_str(), e.what());
    }
    return true;
  });
  for (const std::string& sha : gone) {
    try {
      remove(sha);
    } catch (const Error& e) {
      std::fprintf(stderr, "recallfs: could not remove an object no file needs: %s\n", e.what());
    }
  }
  if (!gone.empty())
    std::fprintf(stderr, "recallfs: removed %zu objects a crash left that no file needs\n",
                 gone.size());
}

void BlobStore::list(const std::function<bool(const BlobInfo&)>& fn) {
  std::string after;
  for (;;) {
    std::vector<BlobInfo> page = index_->page(after, kPageRows);
    for (const BlobInfo& b : page)
      if (!fn(b)) return;
    if (page.size() < kPageRows) return;
    after = page.back().sha256;
  }
}

BlobTotals BlobStore::totals() { return index_->totals(); }

void BlobStore::touch(const std::string& sha256) {
  int64_t now = now_ms();
  {
    std::lock_guard lock(touch_mu_);
    if (touched_.size() > 100000) touched_.clear();  // bounded: at worst an extra write
    int64_t& last = touched_[sha256];
    if (now - last < 60000) return;
    last = now;
  }
  index_->set_used(sha256, now);
}

// ---- chunk manifests -------------------------------------------------------

ChunkManifest compute_manifest(int fd, uint64_t size, uint64_t chunk_size, Digest* whole,
                               const std::atomic<bool>* stop) {
  if (chunk_size == 0) throw Error(EINVAL, "chunk size must be positive");
  ChunkManifest m;
  m.chunk_size = chunk_size;
  std::vector<std::byte> buf(std::min<uint64_t>(kIoBuffer, chunk_size));
  Sha256 all;
  for (uint64_t off = 0; off < size; off += chunk_size) {
    uint64_t length = std::min(chunk_size, size - off);
    Sha256 h;
    for (uint64_t done = 0; done < length;) {
      if (stop && *stop) throw Error(ECANCELED, "stopped");
      size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), length - done));
      size_t n = pread_full(fd, std::span(buf.data(), want), off + done);
      if (n == 0) break;  // shorter than expected: the digests will not match
      std::span<const std::byte> piece(buf.data(), n);
      h.update(piece);
      if (whole) all.update(piece);
      done += n;
    }
    m.chunks.push_back(h.finish());
  }
  if (whole) *whole = all.finish();
  return m;
}

// A manifest goes to every device of the account and is never replaced, so
// it is made only from bytes that match their name.
ChunkManifest BlobStore::manifest(const std::string& sha256, uint64_t chunk_size,
                                  const std::atomic<bool>* stop) {
  require_sha(sha256);
  if (auto m = index_->manifest(sha256); m && m->chunk_size == chunk_size) return *m;
  UniqueFd fd = open_object(sha256);
  uint64_t size = static_cast<uint64_t>(stat_fd(fd.get(), object_path(sha256)).st_size);
  Digest whole;
  ChunkManifest m = compute_manifest(fd.get(), size, chunk_size, &whole, stop);
  if (to_hex(whole) != sha256)
    throw Error(EIO, "object " + sha256 + " does not match its name (recallfs verify repairs it)");
  index_->set_manifest(sha256, m);
  return m;
}

}  // namespace recall
