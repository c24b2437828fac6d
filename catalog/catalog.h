// Catalog — the library's rows in a local SQLite database (catalog.db):
// works, their sub-folders, assets, edges (extra links of an asset into a
// work), blobs_meta, device_blobs, replication_jobs, devices, and the outbox.
//
// Contracts:
//   * Every change to works, folders, assets, edges, blobs_meta and
//     device_blobs is queued in the outbox by triggers in the same
//     transaction (see schema.cpp); local_only rows are never queued.
//   * Each mutating call is one transaction, committed durably (WAL,
//     synchronous=FULL) before it returns. batch() groups calls into one.
//   * One writer at a time by design: every write goes through the single
//     writer connection under writer_mu_, and begins with BEGIN IMMEDIATE, so
//     another process writing the same file waits (busy timeout) instead of
//     failing half-way. Reads use a pool of reader connections and see only
//     committed data (not a batch in progress).
//   * Names are not unique: a folder may hold several entries with one name.
//     Listings and lookups give each entry its collision index (0 for the
//     oldest, then 1, 2, ... by creation time and id), the same on every
//     device, so the tree can tell the entries apart.
//
// Thread-safe. Errors: recall::Error — ENOENT (no such row), EEXIST,
// ENOTEMPTY (work or folder still holds entries), EINVAL (bad name or role),
// EUCLEAN (corrupt or too-new database), EBUSY (database locked too long).
#pragma once

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/sqlite.h"
#include "catalog/rows.h"

namespace recall {

// A folder of the tree: the inbox or a work, and a sub-folder path in it.
struct Place {
  std::optional<std::string> work_id;  // nullopt: the inbox
  std::string folder;                  // "" or "a/b"
  bool operator==(const Place&) const = default;
};

struct FolderEntry {
  enum class Kind { Asset, Link, Folder };
  Kind kind = Kind::Asset;
  std::string name;
  uint32_t collision = 0;        // index among entries of the same name
  std::optional<Asset> asset;    // Asset and Link
  std::optional<Edge> edge;      // Link
  std::optional<Folder> folder;  // Folder
  uint32_t extra_links = 0;      // Asset and Link: how many links the asset has
  int64_t created_ms = 0;
  std::string id;  // asset, edge or folder id: the tie-breaker after created_ms
};

struct WorkEntry {
  Work work;
  uint32_t collision = 0;  // index among works of the same title
};

struct NewAsset {
  std::string id;  // empty: a new one is made
  Place place;
  std::string filename;
  BlobMeta blob;  // the content; recorded in blobs_meta and device_blobs
  std::string role = "main";
  uint32_t mode = 0644;
  std::optional<int64_t> mtime_ns;  // default: now
  bool local_only = false;
};

struct CatalogCounts {
  uint64_t works = 0, folders = 0, assets = 0, edges = 0, blobs = 0;
  uint64_t asset_bytes = 0;  // sum of asset sizes (a blob counts once per asset)
  uint64_t blob_bytes = 0;   // sum of distinct blob sizes
  uint64_t local_only_assets = 0;
  uint64_t outbox = 0;                          // changes waiting to be pushed
  uint64_t cloud_blobs = 0, cloud_bytes = 0;    // held by the cloud (device_blobs)
  uint64_t pinned_blobs = 0, pinned_bytes = 0;  // pinned on this device
  uint64_t jobs_pending = 0, jobs_in_progress = 0, jobs_failed = 0;  // replication
};

class Catalog {
 public:
  struct Options {
    bool create = false;
    int busy_timeout_ms = 10000;
  };
  // Opens (or creates) the catalog file and migrates it. ENOENT when it is
  // missing and !create; EUCLEAN when it is not a database.
  static std::unique_ptr<Catalog> open(const std::filesystem::path& file, const Options& options);
  ~Catalog();

  // This data directory's device: a random UUID made once, when the catalog
  // was created.
  const std::string& device_id() const { return device_id_; }
  int schema_version();

  // Runs `fn` as one transaction: the calls it makes on this catalog (from
  // this thread) commit together, or not at all if it throws.
  void batch(const std::function<void()>& fn);

  // ---- works
  Work create_work(const std::string& title, bool local_only = false, uint32_t mode = 0755);
  // Renames; no-op (and no outbox row) when the title is unchanged.
  void rename_work(const std::string& id, const std::string& title);
  void set_work_attrs(const std::string& id, std::optional<uint32_t> mode,
                      std::optional<int64_t> mtime_ns);
  // ENOTEMPTY while it holds assets, links or sub-folders.
  void delete_work(const std::string& id);
  std::optional<Work> get_work(const std::string& id);
  // Every work with this title (collisions), oldest first.
  std::vector<Work> works_titled(const std::string& title);
  // All works in title order (those titled `from` or later, when given);
  // stops when `fn` returns false.
  void list_works(const std::function<bool(const WorkEntry&)>& fn, const std::string& from = "");

  // ---- sub-folders
  Folder create_folder(const Place& parent, const std::string& name, bool local_only = false,
                       uint32_t mode = 0755);
  // ENOTEMPTY while anything is inside.
  void delete_folder(const std::string& id);
  // Moves or renames a sub-folder with everything inside it.
  void move_folder(const std::string& id, const Place& new_parent, const std::string& new_name);
  // Moves everything inside `from` (assets, links, sub-folders) into `to`,
  // which must exist and be empty: a work becoming a sub-folder, or a
  // sub-folder becoming a work. Asset ids are kept.
  void move_contents(const Place& from, const Place& to);
  void set_folder_attrs(const std::string& id, std::optional<uint32_t> mode,
                        std::optional<int64_t> mtime_ns);
  std::optional<Folder> get_folder(const Place& place);

  // ---- assets
  // Records the blob (blobs_meta; device_blobs: present on this device) and
  // creates the asset, in one transaction.
  Asset add_asset(const NewAsset& a);
  // The same asset gets new content (an edit in place, an atomic save).
  // `bytes_here`: whether this device holds the bytes (device_blobs). A
  // save of a file whose bytes are on other devices only must not say so:
  // the server takes a row naming bytes only while some device holds them.
  // Returns the content it had (a pull may have changed it since the caller
  // looked: those bytes are the ones freed). A pin of the old content moves
  // to the new one.
  std::string set_asset_content(const std::string& id, const BlobMeta& blob,
                                std::optional<int64_t> mtime_ns = std::nullopt,
                                bool bytes_here = true);
  // Renames and/or moves an asset; keeps its id. `local_only` is re-decided by
  // the caller (a scratch name renamed to a real one starts syncing).
  void move_asset(const std::string& id, const Place& to, const std::string& filename,
                  std::optional<bool> local_only = std::nullopt);
  void set_asset_role(const std::string& id, const std::string& role);
  void set_asset_attrs(const std::string& id, std::optional<uint32_t> mode,
                       std::optional<int64_t> mtime_ns);
  // Deletes the asset and every link to it. The blob stays in the store.
  void delete_asset(const std::string& id);
  std::optional<Asset> get_asset(const std::string& id);
  // 1 + the number of links: what st_nlink shows.
  uint32_t link_count(const std::string& asset_id);

  // ---- links (edges)
  // Every extra link of an asset, oldest first.
  std::vector<Edge> links_of(const std::string& asset_id);
  Edge link_asset(const std::string& asset_id, const Place& place, const std::string& name);
  void move_link(const std::string& edge_id, const Place& to, const std::string& name);
  void delete_link(const std::string& edge_id);
  // Removes one name of an asset, as unlink(2) does: a link goes; the asset's
  // own place goes to its oldest link if it has one; else the asset is deleted.
  void remove_name(const FolderEntry& entry);

  // ---- listing and lookup
  // Everything directly in `place`, in name order (then creation order),
  // streamed: memory does not grow with the size of the folder. With `from`,
  // starts at the first name >= `from`. Collision indexes count within the
  // stream, so they are right only for names it sees from their first entry.
  void list_folder(const Place& place, const std::function<bool(const FolderEntry&)>& fn,
                   const std::string& from = "");
  // Every entry named `name` in `place`, in collision order.
  std::vector<FolderEntry> lookup(const Place& place, const std::string& name);
  // All assets whose content is `sha256`.
  std::vector<Asset> assets_with_blob(const std::string& sha256);

  // ---- blobs
  std::optional<BlobMeta> get_blob(const std::string& sha256);
  // When no asset uses the blob any more: deletes its blobs_meta row and this
  // device's device_blobs row, and returns true (the bytes may go). Returns
  // false, changing nothing, while an asset still uses it.
  // Also false while the blob is held (hold_blob).
  bool forget_blob(const std::string& sha256);
  // A signed-in library: bytes a change of this device freed stay until
  // that change has been pushed and read back (rechecks): the server may
  // keep the version that names them (an edit elsewhere wins over a delete;
  // a newer edit wins over an older one), and this device may be their only
  // holder. A no-op while an asset uses the blob.
  void hold_blob(const std::string& sha256);
  // Held blobs whose freeing change has been pushed and read back.
  std::vector<std::string> releasable_holds(size_t limit);
  void release_hold(const std::string& sha256);
  // Marks a blob present or absent on a holder (device_blobs): this device
  // unless `device_id` names another (kCloudHolder for the cloud).
  void set_device_blob(const std::string& sha256, bool present, const std::string& health,
                       const std::string& device_id = "");
  // Devices (and the cloud) that hold the blob, from device_blobs.
  std::vector<DeviceBlob> holders(const std::string& sha256);
  // Records a blob's chunk manifest in blobs_meta (synced to the account).
  void set_blob_manifest(const std::string& sha256, int64_t chunk_size,
                         const std::vector<unsigned char>& manifest);
  // Blobs present on this device that no other holder (the cloud) has.
  std::vector<std::string> blobs_missing_from(const std::string& holder);
  // Up to `limit` synced blobs present on this device whose blobs_meta has no
  // chunk manifest yet, in sha256 order after `after`.
  std::vector<std::string> blobs_lacking_manifest(const std::string& after, size_t limit);

  // ---- pins: blobs kept here whatever the cache budget
  void pin(const std::string& sha256);
  void unpin(const std::string& sha256);
  bool pinned(const std::string& sha256);
  // The pinned blobs that some file has (not the content of removed
  // files), oldest pin first.
  std::vector<std::string> pinned_file_blobs();
  // Pins of places: a folder of the tree (a work, a sub-folder of one, the
  // inbox, a sub-folder of it), or every work (nullopt: works/). A pinned
  // place pins the files in it now and those that come into it later —
  // made here, pulled, moved or linked in — and follows its folder when it
  // is renamed or moved. Returns the blobs of the files in it now.
  std::vector<std::string> pin_place(const std::optional<Place>& place);
  // Ends the pins of the place and of the places in it, and unpins the
  // files in it now, except those whose content a file in another pinned
  // place has too. A pinned place around it still pins files that come into
  // it later. Returns the blobs unpinned.
  std::vector<std::string> unpin_place(const std::optional<Place>& place);
  // Whether the place, or a place around it, is pinned.
  bool place_pinned(const std::optional<Place>& place);

  // ---- replication jobs
  // A pending job for `sha256` to `to`, unless one is active; returns its id.
  std::string enqueue_job(const std::string& sha256, const std::string& from, const std::string& to,
                          int64_t priority = 0);
  // The next runnable job to `to` (pending, or failed and due), marked in_progress.
  std::optional<ReplicationJob> take_job(const std::string& to);
  void update_job(const ReplicationJob& job);
  // Jobs left in_progress by a process that stopped become pending again.
  void reset_interrupted_jobs();
  // Failed jobs to `to` may be taken now, their backoff cut short (the
  // user asked for it: `recallfs replicate`).
  void make_failed_jobs_due(const std::string& to);
  std::vector<ReplicationJob> list_jobs(size_t limit);
  std::optional<DeviceBlob> get_device_blob(const std::string& device_id,
                                            const std::string& sha256);

  // ---- outbox
  uint64_t outbox_count();
  std::vector<OutboxRow> read_outbox(int64_t after_seq, size_t limit);

  CatalogCounts counts();
  const std::filesystem::path& path() const { return path_; }

  // ---- sync (used by sync/; see catalog_sync.cpp)
  // Small named values kept in the catalog (sync cursors, last push time).
  std::optional<std::string> meta(const std::string& key);
  void set_meta(const std::string& key, const std::string& value);
  void erase_meta(const std::string& key);
  // Rows this device pushed that the server did not take, to be read back
  // at the next pull: the server kept its own version (a newer edit
  // elsewhere wins over an older one, and over a delete; a row naming bytes
  // no holder has is not taken), and this device may have skipped that
  // version while its own change waited to be pushed. A row the server has
  // not at all then goes here too. Durable: a crash between push and pull
  // loses no read-back. At most `limit`; dropped once read back, unless
  // pushed again meanwhile (a later seq).
  struct Recheck {
    std::string table, key;
    int64_t seq = 0;  // of the outbox row that pushed it last
  };
  // Removes outbox rows up to and including `seq`, once they are pushed,
  // and notes those the server did not take (`refused`) to be read back.
  // `edited`: the assets pushed with an edit of their content, and that
  // content, which the next edit of each starts from (content_base).
  void drop_outbox_through(int64_t seq, const std::vector<Recheck>& refused = {},
                           const std::vector<std::pair<std::string, std::string>>& edited = {});
  std::vector<Recheck> rechecks(size_t limit);
  void drop_rechecks(const std::vector<Recheck>& done);
  // Rows to read back at the next pull that were pulled, not pushed
  // (ApplyReport::unapplied; their seq is ignored).
  void recheck_later(const std::vector<Recheck>& rows);
  // Makes the folder rows that files, links or folders name and that are
  // missing (left by a pull of an older recallfs: see apply_remote), as
  // this device's changes. Returns how many it made.
  size_t make_missing_folders();

  // A row pulled from the server: `payload` holds its synced columns as a
  // JSON object (catalog/synced_tables.h).
  struct RemoteRow {
    std::string table;
    std::string key;
    bool deleted = false;
    std::string payload;
  };
  struct ApplyReport {
    size_t applied = 0;
    size_t pending = 0;  // skipped: this device changed the row and will push it
    size_t kept = 0;     // deletes not applied: the work still holds content here
    std::vector<std::string> changed_assets;
    // What a mounted tree may be showing stale (for kernel cache
    // invalidation): the names changed rows had before (assets, links,
    // sub-folders) and the titles changed works had, before and after
    // (a new work or folder is missing from its parent's listing);
    // changed_assets also lists the assets whose links changed (their
    // link counts).
    std::vector<std::pair<Place, std::string>> stale_names;
    std::vector<std::string> stale_titles;
    // Rows not applied: what they name is not here (a link to a file this
    // device removed, or whose row comes later), or a folder row that lost
    // its place to this device's row with a smaller id (which may be going
    // itself). Read back at the next pull (recheck_later), not lost when
    // the cursor passes them.
    std::vector<Recheck> unapplied;
  };
  // Applies pulled rows in one transaction, without queueing them for push.
  // A row this device has changed but not pushed yet is left alone (its push
  // will decide); a deleted work or folder that still holds content here
  // (recorded, or not yet: see set_unrecorded_below) is kept and queued
  // again; deleting an asset deletes its links.
  ApplyReport apply_remote(const std::vector<RemoteRow>& rows);
  // Tells apply_remote whether content this catalog has no row for yet (a
  // new file being written, in a mount) lives in a place or below it. Set by
  // the mount's Vfs (cleared with {}); `fn` must not call the catalog.
  void set_unrecorded_below(std::function<bool(const Place&)> fn);
  bool has_row(const std::string& table, const std::string& key);
  // Records another device of the account (from the server's devices).
  void upsert_device(const std::string& id, const std::string& name,
                     const std::optional<std::string>& peer_address,
                     std::optional<int64_t> last_seen_ms);
  struct Device {
    std::string id, name;
    std::optional<std::string> peer_address;
    std::optional<int64_t> last_seen_ms;
  };
  std::optional<Device> get_device(const std::string& id);
  // Changes whenever another process commits to the catalog (SQLite's
  // data_version on the writer connection, the only one this process
  // writes through), so a mount can tell that `recallfs sync`, `add` or
  // `pin` in another process changed what it shows.
  int64_t data_version();
  // Moves after every commit here that changed works, folders, assets or
  // edges (the rows a folder's listing is made of), and whenever
  // data_version() sees another process's commit: listings read from the
  // catalog at generation g are current while generation() is still g.
  // Read it before reading the rows it is to vouch for (a commit in
  // between then only makes them look older than they are).
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
  // Every asset, streamed in id order.
  void for_each_asset(const std::function<bool(const Asset&)>& fn);
  // Readies the library to join another account than the one it synced
  // with: the holders that account's other devices and cloud were, and
  // those devices, are forgotten (not as changes to push), and every row is
  // queued to be pushed again.
  void prepare_for_another_account();
  // Moves every link of asset `from` to asset `to` and deletes `from`:
  // merging a duplicate found at sign-in.
  void merge_asset(const std::string& from, const std::string& to);

 private:
  class WriteScope;
  class ReadLease;
  Catalog(std::filesystem::path path, Db writer, const Options& options);
  void init_device();
  void upsert_blob(Db& db, const BlobMeta& blob, bool local_only, bool bytes_here = true);
  void require_place(Db& db, const Place& place);
  void check_name(const std::string& name, const char* what);

  std::filesystem::path path_;
  Options options_;
  std::string device_id_;

  std::recursive_mutex writer_mu_;  // guards writer_, write_depth_, seen_data_version_,
                                    // names_touched_
  Db writer_;
  int write_depth_ = 0;
  int64_t seen_data_version_ = -1;
  bool names_touched_ = false;  // in the write transaction under way (update hook)
  std::atomic<uint64_t> generation_{0};

  std::mutex readers_mu_;  // guards readers_
  std::vector<Db> readers_;

  std::mutex unrecorded_mu_;  // guards unrecorded_below_
  std::function<bool(const Place&)> unrecorded_below_;
};

}  // namespace recall
