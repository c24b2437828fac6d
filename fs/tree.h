// Tree — the folder a user sees, as paths over the catalog:
//
//   /                       works/  inbox/  blobs/
//   /works/<title>/...      a work, its sub-folders and files
//   /inbox/...              assets linked to no work
//   /blobs/<sha256>         every blob of this device, read-only
//
// Names are shown through fs/names.h: escaped when they cannot be file
// names, and told apart with " (2)", " (3)" ... when they collide. Both
// directions (listing a directory, resolving a shown name) use the same
// naming rule, so every entry is listed under exactly the name that
// resolves to it.
//
// Thread-safe: holds no state of its own beyond the catalog and store.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "cas/blob_store.h"
#include "catalog/catalog.h"

namespace recall {

struct Node {
  enum class Kind {
    Root,      // the mount's root
    WorksDir,  // works/
    BlobsDir,  // blobs/
    Dir,       // inbox/, a work, or a sub-folder of either
    File,      // an asset (by its own place or a link)
    Blob,      // blobs/<sha256>
  };
  Kind kind = Kind::Root;
  // Dir: the place it is. File: the place it sits in.
  Place place;
  std::optional<Work> work;          // Dir of a work, at its top
  std::optional<Folder> folder;      // Dir of a sub-folder
  std::optional<FolderEntry> entry;  // File
  std::string sha256;                // File, Blob

  bool is_dir() const { return kind != Kind::File && kind != Kind::Blob; }
  bool is_inbox() const { return kind == Kind::Dir && !place.work_id && place.folder.empty(); }
};

class Tree {
 public:
  Tree(Catalog& catalog, BlobStore& blobs) : catalog_(catalog), blobs_(blobs) {}

  static Node root() { return Node{}; }
  // Resolves a path relative to the tree's root ("works/T/a.pdf"; a leading
  // '/' is allowed). ENOENT when a component does not exist, ENOTDIR when a
  // file is used as a directory.
  Node resolve(std::string_view path);
  // The entry called `shown` in directory `dir`, or nullopt.
  std::optional<Node> child(const Node& dir, std::string_view shown);
  // Every name the entries called `raw` in `place` show as ("a.pdf",
  // "a (2).pdf", ...); escape_name(raw) alone when there is none. With
  // `at_least`, the names that many entries would show as (the names a
  // group showed before some of its entries left).
  std::vector<std::string> shown_names(const Place& place, const std::string& raw,
                                       size_t at_least = 1);
  // The path a place shows at ("/works/Notes (2)/drafts"); "" when it is
  // gone.
  std::string shown_path(const Place& place);
  // Streams a directory's entries with their shown names, in name order.
  void list(const Node& dir, const std::function<bool(const std::string& shown, const Node&)>& fn);

 private:
  Catalog& catalog_;
  BlobStore& blobs_;
};

}  // namespace recall
