#include "catalog/synced_tables.h"

#include <string>

#include "base/error.h"

namespace recall {

const std::vector<SyncedTable>& synced_tables() {
  using T = SyncedColumn::Type;
  static const std::vector<SyncedTable> tables = {
      {"works",
       "id",
       {{"id", T::Uuid},
        {"title", T::Text},
        {"subtitle", T::Text},
        {"work_type", T::Text},
        {"authors", T::Json},
        {"year", T::Int},
        {"doi", T::Text},
        {"arxiv_id", T::Text},
        {"mode", T::Int},
        {"mtime_ns", T::Int},
        {"created_ms", T::Int},
        {"updated_ms", T::Int}},
       "updated_ms"},
      {"folders",
       "id",
       {{"id", T::Uuid},
        {"work_id", T::Uuid},
        {"path", T::Text},
        {"mode", T::Int},
        {"mtime_ns", T::Int},
        {"created_ms", T::Int},
        {"updated_ms", T::Int}},
       "updated_ms"},
      {"assets",
       "id",
       {{"id", T::Uuid},
        {"work_id", T::Uuid},
        {"folder", T::Text},
        {"filename", T::Text},
        {"sha256", T::Text},
        {"role", T::Text},
        {"mime", T::Text},
        {"bytes", T::Int},
        {"page_count", T::Int},
        {"mode", T::Int},
        {"mtime_ns", T::Int},
        {"created_ms", T::Int},
        {"updated_ms", T::Int},
        {"content_ms", T::Int},
        {"place_ms", T::Int},
        {"attrs_ms", T::Int},
        // The content this device last knew the server to have when its
        // edit began, and the device whose edit the content is: the server
        // tells an edit made apart from another device's
        // (sync/sql/004_conflict_copies.sql).
        {"content_base", T::Text},
        {"content_device", T::Text}},
       "updated_ms"},
      {"edges",
       "id",
       {{"id", T::Uuid},
        {"from_id", T::Uuid},
        {"to_id", T::Uuid},
        {"relation", T::Text},
        {"folder", T::Text},
        {"name", T::Text},
        {"created_ms", T::Int},
        {"updated_ms", T::Int}},
       "updated_ms"},
      {"blobs_meta",
       "sha256",
       {{"sha256", T::Text},
        {"size", T::Int},
        {"mime", T::Text},
        {"filename", T::Text},
        {"page_count", T::Int},
        {"image_width", T::Int},
        {"image_height", T::Int},
        {"pdf_metadata", T::Json},
        {"chunk_size", T::Int},
        {"chunk_manifest", T::Blob},
        {"created_ms", T::Int}},
       nullptr},
      {"device_blobs",
       "id",
       {{"id", T::Uuid},
        {"device_id", T::Uuid},
        {"sha256", T::Text},
        {"present", T::Int},
        {"health", T::Text},
        {"local_path", T::Text},
        {"mtime_ms", T::Int}},
       "mtime_ms"},
  };
  return tables;
}

const SyncedTable& synced_table(std::string_view name) {
  for (const SyncedTable& t : synced_tables())
    if (name == t.name) return t;
  throw Error(EINVAL, "not a synced table: " + std::string(name));
}

}  // namespace recall
