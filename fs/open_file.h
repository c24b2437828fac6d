// OpenFile — the state Vfs keeps for a file that is open for writing (or
// newly created and not yet committed), shared by all its handles.
//
// Its bytes live in a staging file (DATA/staging/) on the same file system
// as the byte store, so a commit moves them into the store by rename. While
// the writes arrive in order (cp, tar, rsync) the SHA-256 is computed as they
// come, and the commit does not read the file again.
//
// Vfs::Handle — one open handle: on an OpenFile, or a read-only snapshot of
// one blob. Shared by the Vfs's files; not part of the API.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "base/file_io.h"
#include "base/sha256.h"
#include "cas/blob_store.h"
#include "catalog/catalog.h"
#include "fs/fetcher.h"
#include "fs/vfs.h"

namespace recall {

// A commit whose bytes are in the store and whose row is not yet written.
struct UnrecordedCommit {
  PutResult put;
  std::string old_sha;                  // the content recorded before it
  std::vector<std::string> superseded;  // stored, never recorded: to collect
  Place place;                          // where a new file is created
  std::string name;
  uint32_t mode = 0644;
  int64_t mtime_ns = 0;
  uint64_t generation = 0;  // OpenFile::stored when it was stored
};

struct OpenFile {
  std::mutex mu;  // guards everything below

  std::string asset_id;
  // A new file that exists only here until its first commit.
  bool pending = false;
  Place place;       // where a pending file will be created
  std::string name;  // its raw name
  uint32_t mode = 0644;
  int64_t mtime_ns = 0;

  std::string sha256;  // the committed content ("" for a pending file)
  uint64_t size = 0;   // the current size (staged or committed)
  // The current bytes: the staging file while edited, else the committed object.
  std::shared_ptr<UniqueFd> fd;
  std::filesystem::path staging;  // non-empty while staged
  bool dirty = false;             // staged bytes not yet committed
  // Bytes were written (not only truncated) since the last commit. A close
  // commits only then: a shell's `> file` opens with O_TRUNC and closes a
  // duplicate fd before the first write, and that close must not replace the
  // content with an empty file; the truncation alone is committed at release.
  bool written = false;
  // A truncation alone that a close reported done, noted until a commit
  // stored after it is recorded (see fs/truncation_note.h).
  std::filesystem::path truncation_note;
  uint64_t noted_at = 0;  // the value of `stored` when it was noted
  uint64_t stored = 0;    // commits stored so far (phase 1)
  // Blobs stored for notes: collected at the last close unless recorded.
  std::vector<std::string> noted_blobs;
  // fallocate reserved room past the end: freed (ftruncate) before the
  // staged bytes become an object.
  bool reserved_past_end = false;
  // The note's truncation is recorded, superseded, or must not happen any
  // more (a failed write, the file removed or replaced): gone durably.
  void drop_truncation_note() noexcept {
    if (truncation_note.empty()) return;
    ::unlink(truncation_note.c_str());
    try {
      fsync_dir(truncation_note.parent_path());
    } catch (const Error&) {
      // (a crash now could bring it back; the next mount checks its base)
    }
    truncation_note.clear();
  }

  // Hash of staging bytes [0, hashed) while writes arrive in order.
  Sha256 hash;
  uint64_t hashed = 0;
  bool hash_ok = false;
  uint64_t written_back = 0;  // staging bytes whose writeback was started

  int handles = 0;        // open handles
  int writers = 0;        // of which open for writing
  int committing = 0;     // releases committing it now
  bool unlinked = false;  // its last name was removed: never commit
  // It has more than one name. Each name is an inode of its own to the
  // kernel, so every write tells the others (their pages and size).
  bool linked = false;
  // A write failed: the staged bytes are incomplete and must not replace the
  // committed content. Reported by the next flush, then cleared.
  std::optional<Error> failed;

  // A commit stored in the byte store and not yet recorded in the catalog
  // (Vfs::commit's two phases; whoever holds the namespace lock records it).
  std::optional<UnrecordedCommit> unrecorded;
};

// One open handle (Vfs::handle): on a file's OpenFile, or a read-only
// snapshot of one blob.
struct Vfs::Handle {
  std::shared_ptr<OpenFile> of;             // null: a read-only snapshot of one blob
  UniqueFd blob_fd;                         // the snapshot's bytes, when they are here
  std::shared_ptr<Fetcher::Remote> remote;  // else: fetched from their holders
  std::string asset_id;                     // the snapshot's asset ("" for blobs/)
  std::string sha256;                       // the snapshot's blob
  struct stat snapshot_attr {};             // the snapshot's attributes at open
  bool writable = false;
};

// Throws away a file's staged bytes: it shows its committed content again.
// (With the file's lock held.)
void discard_staging(OpenFile& of, BlobStore& blobs);

}  // namespace recall
