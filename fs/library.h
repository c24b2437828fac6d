// Library — one data directory, opened: its byte store (cas/) and its
// catalog (catalog.db), and the write flow that joins them.
//
// Data directory layout:
//   catalog.db   the library's rows (Catalog)
//   cas/         the bytes (BlobStore)
//
// Thread-safe, as BlobStore and Catalog are.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "cas/blob_store.h"
#include "catalog/catalog.h"

namespace recall {

struct AddOptions {
  std::string role = "main";
  uint32_t mode = 0644;
  std::optional<int64_t> mtime_ns;
  // nullopt: decided from the name (is_scratch_name).
  std::optional<bool> local_only;
};

class Library {
 public:
  struct Options {
    bool create = false;  // create the directory and an empty library in it
  };
  // ENOENT when `dir` is missing (and !create) or holds no library; EUCLEAN
  // when its catalog is not a database.
  static std::unique_ptr<Library> open(const std::filesystem::path& dir, const Options& options);
  // ENOENT, saying which, unless `dir` holds a library (opens nothing).
  static void check_exists(const std::filesystem::path& dir);

  BlobStore& blobs() { return *blobs_; }
  Catalog& catalog() { return *catalog_; }
  const std::filesystem::path& dir() const { return dir_; }

  // The write flow: stores the bytes readable from `fd` (durably) and then
  // records blob and asset in one catalog transaction.
  Asset add_fd(int fd, const Place& place, const std::string& name, const AddOptions& options = {});
  Asset add_file(const std::filesystem::path& file, const Place& place,
                 const std::optional<std::string>& name = std::nullopt,
                 const AddOptions& options = {});

  // What the catalog records of a blob the store holds.
  static BlobMeta blob_meta(const PutResult& put, const std::string& filename);

 private:
  Library() = default;
  std::filesystem::path dir_;
  std::unique_ptr<BlobStore> blobs_;
  std::unique_ptr<Catalog> catalog_;
};

}  // namespace recall
