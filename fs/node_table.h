// NodeTable — the kernel's inode numbers (FUSE node ids) for the Vfs's paths.
//
// The low-level FUSE API names files by node id; the Vfs names them by path.
// Each name the kernel has looked up (lookup, create, mkdir, link, each
// entry of a READDIRPLUS reply) gets a node: its parent's node, its name,
// and how many lookups the kernel holds on it, which FORGET gives back.
// A node's path is its parents' names joined, so renaming a folder moves
// everything under it at once. Each name is its own node, hard links
// included, as with libfuse's high-level API; the inode number a user sees
// (st_ino) is the library's and shared by all names of an asset.
//
// An unlinked or replaced node is detached: it keeps its id until forgotten,
// but has no path any more, and only its open handle (if any) still reaches
// the file. A removed folder has no handle (no OPENDIR), so it keeps its
// last attributes instead. Node ids are never reused, so generations are
// always 0.
//
// No FUSE in here (fuse_ino_t is a uint64_t). Thread-safe.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace recall {

class NodeTable {
 public:
  static constexpr uint64_t kRoot = 1;  // FUSE_ROOT_ID

  // The node for `name` in `parent`, created if the kernel did not know it,
  // with one more lookup counted.
  uint64_t remember(uint64_t parent, std::string_view name);
  // The kernel dropped `n` lookups of `node`; the node goes at zero.
  void forget(uint64_t node, uint64_t n);

  // "/works/T/a.pdf" for a node; nullopt for a detached or unknown node.
  std::optional<std::string> path(uint64_t node) const;
  // The path of `name` in `parent` (nullopt when `parent` has none).
  std::optional<std::string> child_path(uint64_t parent, std::string_view name) const;

  // After a rename: the node named `name` in `parent` (if any) takes the new
  // name, and a node that had the new name is detached.
  void moved(uint64_t parent, std::string_view name, uint64_t new_parent,
             std::string_view new_name);
  // After unlink or rmdir.
  void removed(uint64_t parent, std::string_view name);

  // The handles open on a node: getattr of an unlinked but open file uses
  // one of them, a truncation only one open for writing.
  void add_open_handle(uint64_t node, uint64_t handle, bool writable);
  void remove_open_handle(uint64_t node, uint64_t handle);
  std::optional<uint64_t> open_handle(uint64_t node, bool writable = false) const;

  // The node the kernel knows as `name` in `parent`; 0 when it knows none.
  uint64_t node_of(uint64_t parent, std::string_view name) const;
  // What a detached node answers to fstat when no handle can (a removed
  // folder, still a shell's working directory): kept until it is forgotten.
  void keep_attributes(uint64_t node, const struct stat& st);
  std::optional<struct stat> kept_attributes(uint64_t node) const;

  // For cache invalidation: how far the kernel knows an absolute path. The
  // deepest known node on it (`parent`), the component after it (`name`),
  // and that component's node when it is the path's last and known
  // (`node`). "/" gives node kRoot and no parent.
  struct Found {
    uint64_t parent = 0;
    std::string name;
    uint64_t node = 0;
  };
  Found find(std::string_view path) const;

  // Every node that has a name (for invalidating everything).
  std::vector<Found> named() const;

  size_t size() const;

 private:
  struct Node {
    uint64_t parent = 0;  // 0: detached
    std::string name;
    uint64_t lookups = 0;
    std::vector<std::pair<uint64_t, bool>> handles;  // open ones (writable?), usually 0 or 1
    std::unique_ptr<struct stat> kept;               // see keep_attributes (rare: a pointer)
  };
  struct Key {
    uint64_t parent;
    std::string name;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      return std::hash<std::string>()(k.name) ^
             (std::hash<uint64_t>()(k.parent) * 0x9e3779b97f4a7c15ULL);
    }
  };
  std::optional<std::string> path_locked(uint64_t node) const;
  void detach_locked(uint64_t node);

  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Node> nodes_;
  std::unordered_map<Key, uint64_t, KeyHash> by_name_;
  uint64_t next_ = 2;
};

}  // namespace recall
