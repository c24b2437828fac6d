// The rows of the library catalog, as plain structs. Field meanings follow
// ../shared/ARCHITECTURE.md; times are milliseconds since the Unix epoch
// except mtime_ns (nanoseconds, as stat(2) shows them).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace recall {

// What an asset is to its work.
inline constexpr std::string_view kRoles[] = {"main", "supplement", "slides",    "solutions",
                                              "data", "notes",      "exercises", "thumbnail"};
bool is_role(std::string_view role);

struct Work {
  std::string id;  // uuid
  std::string title;
  std::optional<std::string> subtitle;
  std::string work_type = "paper";
  std::string authors = "[]";  // JSON array of names
  std::optional<int64_t> year;
  std::optional<std::string> doi;
  std::optional<std::string> arxiv_id;
  uint32_t mode = 0755;  // permission bits of its folder
  int64_t mtime_ns = 0;
  bool local_only = false;  // never synced
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};

struct Asset {
  std::string id;                      // uuid
  std::optional<std::string> work_id;  // nullopt: in the inbox
  std::string folder;                  // sub-folder path inside the work ("" or "a/b")
  std::string filename;                // its name (any bytes but NUL)
  std::string sha256;                  // its content
  std::string role = "main";
  std::optional<std::string> mime;
  uint64_t bytes = 0;
  std::optional<int64_t> page_count;
  uint32_t mode = 0644;
  int64_t mtime_ns = 0;
  bool local_only = false;  // editor scratch files: kept on this device only
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
};

// An extra link of an asset into a work: `ln works/X/f works/Y/g`.
struct Edge {
  std::string id;
  std::optional<std::string> from_id;  // the work (nullopt: the inbox)
  std::string to_id;                   // the asset
  std::string relation = "contains";
  std::string folder;  // sub-folder inside the work
  std::string name;    // the asset's name in that folder
  int64_t created_ms = 0;
};

// A sub-folder inside a work (or the inbox), kept even while empty.
struct Folder {
  std::string id;
  std::optional<std::string> work_id;
  std::string path;  // "a" or "a/b"
  uint32_t mode = 0755;
  int64_t mtime_ns = 0;
  bool local_only = false;
  int64_t created_ms = 0;
};

struct BlobMeta {
  std::string sha256;
  uint64_t size = 0;
  std::optional<std::string> mime;
  std::optional<std::string> filename;  // the name it first arrived with
  std::optional<int64_t> page_count;
  std::optional<int64_t> image_width;
  std::optional<int64_t> image_height;
  std::optional<std::string> pdf_metadata;  // JSON object: title, author
  std::optional<int64_t> chunk_size;
  std::vector<unsigned char> chunk_manifest;  // 32 bytes per chunk
  int64_t created_ms = 0;
};

struct DeviceBlob {
  std::string id;
  std::string device_id;
  std::string sha256;
  bool present = true;
  std::string health = "healthy";
  std::optional<std::string> local_path;
  std::optional<int64_t> mtime_ms;
};

struct ReplicationJob {
  std::string id;
  std::string sha256;
  std::string from_source;
  std::string to_destination;
  std::string status = "pending";  // pending|in_progress|completed|failed|cancelled
  double progress = 0;
  uint64_t bytes_transferred = 0;
  int64_t attempts = 0;
  std::optional<std::string> error;
  int64_t priority = 0;
  int64_t created_ms = 0;
  int64_t updated_ms = 0;
  std::optional<int64_t> started_ms;
  std::optional<int64_t> completed_ms;
  int64_t next_attempt_ms = 0;
  std::optional<std::string> upload_id;
};

// The device id that stands for the cloud (S3) in device_blobs: a holder
// like a device, so every device learns where bytes are from synced rows.
inline constexpr const char* kCloudHolder = "00000000-0000-0000-0000-000000000000";
// The id of the cloud's device_blobs row for a blob: the same on every
// device (each one that uploads the blob writes that row), so the server
// and every catalog hold one row for it. A UUID (version 5 layout) made
// from a SHA-256 of the blob's hash.
std::string cloud_holder_row_id(const std::string& sha256);

// One row of the outbox: a change to a synced table, waiting to be pushed.
struct OutboxRow {
  int64_t seq = 0;
  std::string table;
  std::string row_id;
  std::string op;                      // "upsert" or "delete"
  std::optional<std::string> payload;  // the row after the change, as JSON
  int64_t created_ms = 0;
};

}  // namespace recall
