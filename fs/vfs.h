// Vfs — the mounted library as POSIX file operations, with no FUSE in it.
//
// The FUSE adapter (fuse_adapter*.cpp) only translates calls to these methods
// and recall::Error codes to -errno. Paths are relative to the mount's root
// ("/works/T/a.pdf"); the tree is the one fs/tree.h describes.
//
// What each operation means in the library:
//   mkdir works/X            creates work X; mkdir inside a work or the inbox
//                            creates a sub-folder
//   create + write + close   stores the bytes (CAS) and adds an asset; until
//                            the first flush a new file exists only here, so a
//                            crash never leaves a half-written file behind
//   open for writing         edits go to a staging file; flush (close) or
//                            fsync stores the new bytes as a new blob and the
//                            asset keeps its id. close() returning 0 means the
//                            bytes and the rows are durable (a truncation
//                            alone: a note, fs/truncation_note.h)
//   rename over a file       the target keeps its asset id and takes the
//                            source's content (an editor's atomic save)
//   link                     links the asset into a second place (edges)
//   unlink / rmdir           delete the asset (or one of its links) / an
//                            empty work or folder; unlink of a file renamed
//                            away a moment ago, while a new file has its old
//                            name, is the end of vim's save: it takes the new
//                            content and its name back (take_back_name)
//   blobs/                   read-only (EROFS); the top level holds no files
//                            (EPERM); symlinks and device nodes: EPERM
// A folder's times move when names come or go in it (in memory: see
// names_changed_ns_); its listing is kept while the catalog's generation
// holds (ListingCache).
//
// Thread-safe. Namespace changes are serialised by one mutex (ns_mu_); reads,
// writes and lookups run in parallel. Lock order: ns_mu_, then store_mu_
// (shared by puts, tried exclusively by collect_blob), then files_mu_, then
// an OpenFile's mu. dir_times_mu_, moved_mu_ and the ListingCache's lock are
// leaves: nothing is locked while they are held.
#pragma once

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "fs/library.h"
#include "fs/listing_cache.h"
#include "fs/pending_files.h"
#include "fs/tree.h"

namespace recall {

struct OpenFile;
struct UnrecordedCommit;
class Fetcher;

class Vfs {
 public:
  struct Options {
    uid_t uid = 0;  // owner shown for every entry
    gid_t gid = 0;
  };
  Vfs(Library& lib, const Options& options);
  ~Vfs();
  Vfs(const Vfs&) = delete;
  Vfs& operator=(const Vfs&) = delete;

  // ---- names
  struct stat getattr(std::string_view path);
  // A directory's listing, "." and ".." first, each entry with its
  // attributes. The adapter keeps it while the kernel pages through it.
  // Without `file_blocks`, files' st_blocks is left 0: it costs a lookup in
  // the store per file, and a reader that wants only names (find) or
  // types never sees it.
  struct DirListing {
    std::string path;
    std::vector<std::pair<std::string, struct stat>> entries;
    bool file_blocks = true;  // files' st_blocks is right
  };
  DirListing list_dir(std::string_view path, bool file_blocks = true);
  void mkdir(std::string_view path, mode_t mode);
  void rmdir(std::string_view path);
  void unlink(std::string_view path);
  // flags: 0 or RENAME_NOREPLACE (RENAME_EXCHANGE, RENAME_WHITEOUT: EINVAL).
  void rename(std::string_view from, std::string_view to, unsigned flags);
  void link(std::string_view from, std::string_view to);
  void chmod(std::string_view path, mode_t mode);
  void chown(std::string_view path, uid_t uid, gid_t gid);
  // nullopt leaves the time as it is (UTIME_OMIT).
  void utimens(std::string_view path, std::optional<int64_t> mtime_ns);
  struct statvfs statfs();

  // ---- extended attributes: user.recall.*
  static bool is_library_xattr(std::string_view name) { return name.starts_with("user.recall."); }
  // The errno for reading an attribute that is not ours: ENODATA inside user.*,
  // ENOTSUP for the other namespaces (security.*, system.* ACLs, trusted.*),
  // which we do not keep. ls -l remembers ENOTSUP per device and stops asking,
  // which saves two round trips per file listed.
  static int foreign_xattr_errno(std::string_view name) {
    return name.starts_with("user.") ? ENODATA : ENOTSUP;
  }
  std::string getxattr(std::string_view path, std::string_view name);
  std::vector<std::string> listxattr(std::string_view path);
  // `flags`: XATTR_CREATE (EEXIST: the settable ones always exist) or
  // XATTR_REPLACE. A new file being written is stored first (cp
  // --preserve=xattr sets the role before it closes the copy).
  void setxattr(std::string_view path, std::string_view name, std::string_view value,
                int flags = 0);
  void removexattr(std::string_view path, std::string_view name);

  // ---- file handles
  struct OpenResult {
    uint64_t handle = 0;
    bool keep_cache = false;  // the kernel may keep cached pages of this file
    // Bypass the page cache: a writer of a file that others are reading
    // from a snapshot, so their cached pages stay those of their version.
    bool direct_io = false;
  };
  OpenResult open(std::string_view path, int flags);
  OpenResult create(std::string_view path, mode_t mode, int flags);
  size_t read(uint64_t handle, std::span<std::byte> buf, uint64_t offset);
  // Where a read of `size` bytes at `offset` can be spliced from (zero
  // copy): an fd valid until the handle is released and how many bytes are
  // ready there (a remote blob's are fetched and verified first); fd -1 when
  // the handle must be read with read() (a file being written). Keep it
  // until the reply is made: a streamed blob's bytes may go after.
  struct SpliceSource {
    int fd = -1;
    size_t size = 0;
    std::shared_ptr<void> hold;  // keeps the bytes there until the reply is made
  };
  SpliceSource splice_source(uint64_t handle, size_t size, uint64_t offset);
  struct stat fgetattr(uint64_t handle);
  // `through`: the name the kernel sent it through, asked only for a
  // hard-linked file (its other names are told; that one's pages are right).
  // `append` (O_APPEND): the bytes go at the file's end, wherever `offset`
  // says. The kernel takes the end from the size it caches for the name
  // written through, and each name of a hard-linked file is an inode of its
  // own: after an append through one name, another name's size is old, and
  // its appends would land over the first one's. When the end is not at
  // `offset`, every name, that one too, drops what the kernel caches.
  using NameOf = std::function<std::string()>;
  size_t write(uint64_t handle, std::span<const std::byte> data, uint64_t offset,
               const NameOf& through = {}, bool append = false);
  void truncate(std::string_view path, uint64_t size);
  void ftruncate(uint64_t handle, uint64_t size, const NameOf& through = {});
  // fallocate(2) on a file open for writing: reserving space (mode 0, with
  // or without FALLOC_FL_KEEP_SIZE; ENOSPC as a local disk gives it),
  // FALLOC_FL_PUNCH_HOLE and FALLOC_FL_ZERO_RANGE; EOPNOTSUPP for the rest.
  void fallocate(uint64_t handle, int mode, uint64_t offset, uint64_t length,
                 const NameOf& through = {});
  void fchmod(uint64_t handle, mode_t mode);
  void futimens(uint64_t handle, std::optional<int64_t> mtime_ns);
  // close(): commits written bytes durably; its error is what close() returns.
  void flush(uint64_t handle);
  void fsync(uint64_t handle);
  // The last close of a handle; commits what flush did not.
  void release(uint64_t handle);

  // Reads of files whose bytes are elsewhere go through the fetcher; without
  // one they fail with EIO.
  void set_fetcher(std::shared_ptr<Fetcher> fetcher) { fetcher_ = std::move(fetcher); }

  // What the kernel may hold stale about a path; each includes the ones
  // before it.
  enum class Stale {
    // The file's attributes only: its cached pages are right (the kernel saw
    // the change through this name). Never waits on pages a write holds, so
    // a kill -9 of the daemon then cannot leave it stuck in the kernel.
    Attributes,
    Content,  // and its cached pages (its name stands)
    Listing,  // and its folder's listing: the name is new there
    Name,     // and the name itself: gone, or now another file's
  };
  // Called after content or names change, with the paths whose kernel caches
  // are stale (set by the FUSE adapter); path "" when anything may be.
  using Invalidator = std::function<void(const std::string& path, Stale what)>;
  void set_invalidator(Invalidator fn) {
    std::lock_guard lock(invalidate_mu_);
    invalidate_ = std::move(fn);
  }

  // Called when what the cache budget weighs changed: a commit stored a
  // blob (room may be needed), or a pin was taken off one (it may go now).
  // Must not block.
  void set_on_cache_changed(std::function<void(const std::string& sha256)> fn) {
    on_cache_changed_ = std::move(fn);
  }
  // Called when a file's last handle on a blob closes (the cache budget
  // may let it go now, if it kept it for being open). Must not block.
  void set_on_closed(std::function<void(const std::string& sha256)> fn) {
    on_closed_ = std::move(fn);
  }

  // A signed-in library (`signed_in` says whether it is now): bytes freed
  // by a change are held until that change is pushed and read back
  // (Catalog::hold_blob); release_held_blobs, called after each pull, frees
  // those that nothing names then, here or (`confirm` returns which may go:
  // SyncEngine::confirm_drops) in the account.
  void set_signed_in(std::function<bool()> signed_in) { signed_in_ = std::move(signed_in); }
  using ConfirmDrops = std::function<std::set<std::string>(const std::vector<std::string>&)>;
  void release_held_blobs(const ConfirmDrops& confirm) noexcept;

  // For tests: called by open() between finding a file's open state and
  // adding a handle to it (where a last close may race it).
  void set_on_open_state_found(std::function<void()> fn) { on_open_state_found_ = std::move(fn); }
  // For tests: called when an open for writing has read the row it makes a
  // file's open state from.
  void set_on_open_row_read(std::function<void()> fn) { on_open_row_read_ = std::move(fn); }

  // Open handles (for tests and status).
  size_t open_handles();
  // True while an open file reads or writes the blob (the cache keeps it).
  bool blob_in_use(const std::string& sha256);

  // Tells the kernel (through the invalidator) that every name of an asset
  // shows new content or is gone: each name of a hard-linked file is its own
  // kernel inode. Called after commits and after pulls. Stale::Attributes
  // when the kernel saw the change through the asset's only name (a write,
  // a rename over it): the pages it caches are right.
  // `through`: a name that gets Stale::Attributes whatever `what` is (the
  // kernel saw the change through it).
  void content_changed(const std::string& asset_id, Stale what = Stale::Content,
                       const std::string& through = "");
  // After a pull: the names the kernel may hold stale — old names of
  // changed rows, old work titles — and every name of the changed assets.
  // Never throws (it runs on the sync worker).
  void remote_changed(const Catalog::ApplyReport& report) noexcept;
  // Another process changed the catalog (CatalogWatcher): anything shown
  // may be stale. Never throws.
  void changed_elsewhere() noexcept;
  // A blob was fetched here or evicted: its files' st_blocks changed.
  // Fetched bytes that no file names (a pull replaced their version while
  // they came) are held, and freed after a later pull (release_held_blobs).
  // Never throws.
  void blob_changed(const std::string& sha256) noexcept;

 private:
  struct Handle;
  // A path resolved: a node of the tree, or a new file not committed yet.
  struct Resolved {
    Node node;
    std::shared_ptr<OpenFile> pending;
  };
  Resolved resolve(std::string_view path);
  void list_node(const Resolved& dir,
                 const std::function<bool(const std::string&, const struct stat&)>& fn,
                 bool file_blocks = true);
  Resolved resolve_parent(std::string_view path, std::string& leaf);
  struct stat base_attr();
  struct stat node_attr(const Node& n, bool file_blocks = true);
  // A folder's or file's attributes in two steps, so that a kept listing
  // (ListingCache) needs only the facts: those of its catalog row, then
  // the attributes they and the live state (bytes here, open files) give.
  static EntryFacts facts_of(const Node& dir_or_file);
  struct stat facts_attr(const EntryFacts& f, bool file_blocks = true);
  struct stat open_file_attr(OpenFile& of);
  std::shared_ptr<OpenFile> find_open(const std::string& asset_id);
  // chmod/utimens of a file: its row, and its open state when it is open.
  void set_file_attrs(const std::string& asset_id, std::optional<uint32_t> mode,
                      std::optional<int64_t> mtime_ns);
  std::shared_ptr<OpenFile> open_file_for(const Node& n);
  std::shared_ptr<OpenFile> find_pending(const Place& place, const std::string& raw);
  std::shared_ptr<Handle> handle(uint64_t h);
  static std::string asset_of(const Handle& hd);
  static bool set_detached_attrs(const Handle& hd, std::optional<uint32_t> mode,
                                 std::optional<int64_t> mtime_ns);
  // The bytes of an open file, changed under its lock; at its end when
  // `offset` is nullopt. Returns where they went.
  uint64_t stage_write(OpenFile& of, std::span<const std::byte> data,
                       std::optional<uint64_t> offset);
  void stage_truncate(OpenFile& of, uint64_t size);
  // After a write or truncation: the file's other names drop what the kernel
  // caches for them (it updated the name it was asked through), and, with
  // `that_one_too`, that name as well.
  void tell_other_names(OpenFile& of, const NameOf& through, bool that_one_too = false);
  // A handle on `of`, or nullopt when `of` is no longer its file's open
  // state in files_. The _locked form is for a state just put there, with
  // files_mu_ held.
  std::optional<uint64_t> add_handle(std::shared_ptr<OpenFile> of, int flags);
  uint64_t add_handle_locked(std::shared_ptr<OpenFile> of, int flags);
  std::optional<OpenResult> open_once(std::string_view path, int flags);
  void bring_bytes_here(OpenFile& of);
  // Makes the sub-folders of `place` that are missing; false when its work
  // is gone.
  bool restore_folder(const Place& place);
  void commit(OpenFile& of, bool last_writer);
  void record(OpenFile& of);
  // A close of a file only truncated: the truncation made durable as a note
  // (fs/truncation_note.h), left for the release to commit.
  void note_truncation(OpenFile& of);
  // At mount: applies the notes a crash left in staging/.
  void apply_truncation_notes();
  // False when the asset is gone (nothing recorded).
  bool record_row(OpenFile& of, const UnrecordedCommit& u, const std::string& asset_id,
                  bool pending);
  // Takes a closed file out of files_ once nothing is left to commit; false
  // while it is open, being committed or has a commit to record.
  bool leave_files_if_closed(OpenFile& of);
  // Gives `of` a staging file (with a copy of its bytes when `copy_content`).
  void ensure_staging(OpenFile& of, bool copy_content);
  void remove_dir_node(const Node& n);
  void rename_dir(const Node& from, const Node& to_parent, const std::string& raw,
                  std::optional<Node> target);
  // Commits what a file holds now, before a rename or link works from its
  // row (with ns_mu_ held). EIO, keeping the error for the writer's close,
  // when a write to it failed or a new file could not be stored.
  void commit_now(const std::shared_ptr<OpenFile>& of);
  // After `from`'s content replaced `to`'s (a rename over it): `to`'s open
  // state is detached (its handles keep the bytes they had, never committed)
  // and `from`'s becomes `to`'s, so an open writer's later writes land in
  // the file the name now shows, as on a local disk.
  void hand_over_open_state(const std::string& from, const std::string& to, const Place& place,
                            const std::string& raw, bool to_linked);
  // New files not yet committed in `place` or below it.
  std::vector<std::shared_ptr<OpenFile>> pending_under(const Place& place);
  // Removes a blob from this device when no asset needs it any more (with
  // ns_mu_ held). A removal that fails is logged and tried again at the
  // next collection: the operation that freed the blob has happened.
  void collect_blob(const std::string& sha256);
  // Removes it unless an asset row has it (collect_blob checked the rest).
  void remove_blob(const std::string& sha256);  // or holds it (a signed-in library)
  void forget_and_remove(const std::string& sha256);
  size_t release_held_batch(size_t limit, const ConfirmDrops& confirm);  // how many it ended
  static bool blob_open_in(const std::vector<std::shared_ptr<OpenFile>>& files,
                           const std::string& sha256);
  // Sends invalidate() for the entry shown as `shown` in `place`, if the
  // place is still there.
  void invalidate_in(const Place& place, const std::string& shown, Stale what);
  void check_writable_dir(const Node& dir, bool for_file);
  BlobMeta blob_for(const PutResult& put, const std::string& name);
  std::string holders_text(const std::string& sha256);

  Library& lib_;
  Tree tree_;
  ListingCache listings_;
  Options options_;
  std::filesystem::path staging_dir_;
  int64_t started_ns_;  // times shown for the fixed folders
  // When names last came into or left a folder here (keyed by dir_key):
  // from then on its mtime and ctime show that time, as on a local disk,
  // where programs watch them (Python's import cache rescans a folder only
  // when its mtime moved; make, file managers, backup tools). Kept in memory
  // for the mount, not in the folder's row: that row syncs, and writing it
  // for every file added would push it each time (and a work's row carries
  // its title). utimens() on the folder drops its entry, its own time then
  // being the last word, as on a local disk.
  std::mutex dir_times_mu_;
  std::unordered_map<std::string, int64_t> names_changed_ns_;
  static constexpr size_t kNamesChangedKept = 100000;
  // "works", "inbox", or the id of a work or sub-folder.
  static std::string dir_key(const Node& dir);
  // dir_key of the folder a place is ("" when it is gone).
  std::string place_key(const Place& place);
  void names_changed(const std::string& dir_key);
  void names_changed(const Place& place) { names_changed(place_key(place)); }
  // names_changed() for the folder that holds work or sub-folder `dir`.
  void parent_names_changed(const Node& dir);
  std::optional<int64_t> names_changed_at(const std::string& dir_key);

  // A save that moves the file away first (vim's default: rename a to a~,
  // write a new a, remove a~) makes the new content a new asset, while the
  // old one, which has the id, role, pins and links, is removed. So a file
  // renamed to another name is remembered for kSaveWindowMs; when it is
  // removed while a file made since has the name it left, it takes that
  // file's content and its name back, and the new file goes instead: the
  // save keeps the asset, as a save by temp file and rename does. (Not for
  // a file with links: vim copies those, and on a local disk their other
  // names would keep the old content.)
  static constexpr int64_t kSaveWindowMs = 60000;
  struct MovedAway {
    std::string asset_id;
    Place from;
    std::string from_name;
    int64_t at_ms;
  };
  std::mutex moved_mu_;
  std::deque<MovedAway> moved_away_;  // newest last, kMovedKept at most
  static constexpr size_t kMovedKept = 64;
  void moved_away(const std::string& asset_id, const Place& from, const std::string& from_name);
  // With ns_mu_ held, for a file about to be removed: true when it took its
  // old name back (then nothing is left to remove).
  bool take_back_name(const Node& leaving);
  // What a blob row says of an asset's content, for giving it to another.
  BlobMeta blob_meta_of(const Asset& a);
  // File `to_id` takes the content and mode of the file named by `from`, and
  // that name goes (the file with it, when it has no other), in one
  // transaction with `also`. Returns the content `to_id` had.
  std::string take_content(const std::string& to_id, const FolderEntry& from,
                           const std::function<void()>& also = {});
  // Sends one path to the invalidator, if there is one.
  void invalidate(const std::string& path, Stale what);
  // Written bytes were not stored (a full disk): the kernel's pages and
  // size of the file show them; the file keeps its stored content.
  void written_bytes_lost(const std::string& asset_id) noexcept;
  // A new file that was never stored is gone: the kernel may still list it.
  void forget_pending_name(const Place& place, const std::string& name) noexcept;
  // An entry left the group of `before` entries called `raw` in `place`
  // (unlink, rename): every name the group showed is dropped from the
  // kernel's caches.
  void group_left(const Place& place, const std::string& raw, size_t before);
  // Every name an asset shows under (collision suffixes included).
  void invalidate_names(const std::string& asset_id, Stale what, const std::string& through = "");
  std::mutex invalidate_mu_;  // guards invalidate_: workers call it while unmounting
  Invalidator invalidate_;
  std::shared_ptr<Fetcher> fetcher_;
  std::function<void(const std::string&)> on_cache_changed_;
  std::function<void(const std::string&)> on_closed_;
  std::function<void()> on_open_state_found_;
  std::function<void()> on_open_row_read_;
  std::function<bool()> signed_in_;

  // Serialises namespace changes. Recursive: a rename commits a new file
  // first, and the commit takes it too.
  std::recursive_mutex ns_mu_;

  // Puts into the store hold it shared until what they stored is marked in
  // use (an open file's sha256, its commit slot, a note's blob): a put that
  // finds its bytes already stored (dedup) must not lose them to a
  // collect_blob checking meanwhile, which holds it exclusively. Taken
  // before a file's lock.
  std::shared_mutex store_mu_;
  // Blobs collect_blob found in use by a put under way: tried again when a
  // put ends (collect_deferred) or at the next collection (guarded by
  // ns_mu_, as collect_blob).
  std::vector<std::string> collect_later_;
  std::atomic<bool> collect_waiting_{false};  // collect_later_ is not empty
  void collect_deferred();

  std::mutex files_mu_;  // guards the maps below
  // Open files by asset id (committed assets and pending new files alike).
  std::unordered_map<std::string, std::shared_ptr<OpenFile>> files_;
  // New files not yet committed (changed under files_mu_, with files_).
  PendingFiles pending_;
  std::unordered_map<uint64_t, std::shared_ptr<Handle>> handles_;
  uint64_t next_handle_ = 1;
  // The version whose pages the kernel may cache under each path (set by
  // the opens that fill its cache), to keep them only while it is
  // unchanged; absent: unknown, the next open drops them. By path, not by
  // asset: each name of a hard-linked file is a kernel inode with a cache of
  // its own. Renames and removals forget the paths they touch.
  // (Ordered: a folder's renaming forgets a range, not a scan.)
  std::map<std::string, std::string, std::less<>> last_opened_sha_;
  // Forgets what the kernel caches under `path` and everything below it.
  void forget_cached(std::string_view path);
  // Read-only snapshot handles open, per asset and version (blob).
  std::unordered_map<std::string, std::map<std::string, int>> snapshot_readers_;
};

}  // namespace recall
