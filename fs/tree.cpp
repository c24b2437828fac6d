#include "fs/tree.h"

#include <vector>

#include "base/error.h"
#include "base/sha256.h"
#include "fs/names.h"

namespace recall {
namespace {

Node dir_node(const Place& place) {
  Node n;
  n.kind = Node::Kind::Dir;
  n.place = place;
  return n;
}

Node work_node(const Work& w) {
  Node n = dir_node(Place{w.id, ""});
  n.work = w;
  return n;
}

Node entry_node(const Place& place, const FolderEntry& e) {
  if (e.kind == FolderEntry::Kind::Folder) {
    Node n = dir_node(Place{place.work_id, e.folder->path});
    n.folder = e.folder;
    return n;
  }
  Node n;
  n.kind = Node::Kind::File;
  n.place = place;
  n.entry = e;
  n.sha256 = e.asset->sha256;
  return n;
}

Node blob_node(const std::string& sha) {
  Node n;
  n.kind = Node::Kind::Blob;
  n.sha256 = sha;
  return n;
}

// The shown names of one group of entries that share the raw name `raw`
// (in collision order): the first shows as escape_name(raw); each later one
// takes the next "name (n).ext" that no other raw name of the folder shows as.
std::vector<std::string> name_group(const std::string& raw, size_t count,
                                    const std::function<bool(const std::string&)>& raw_exists) {
  std::vector<std::string> names;
  names.push_back(escape_name(raw));
  unsigned n = 2;
  while (names.size() < count) {
    std::string candidate = collision_name(names[0], n++);
    std::string other = unescape_name(candidate);
    if (other != raw && escape_name(other) == candidate && raw_exists(other)) continue;
    names.push_back(std::move(candidate));
  }
  return names;
}

// Streams groups of same-named items from a source that yields items in
// name order, calling `emit(raw, group)` once per group.
template <typename Item>
class Grouper {
 public:
  using Emit = std::function<bool(const std::string& raw, const std::vector<Item>& group)>;
  explicit Grouper(Emit emit) : emit_(std::move(emit)) {}
  bool add(const std::string& raw, const Item& item) {
    if (!group_.empty() && raw != raw_ && !flush()) return false;
    raw_ = raw;
    group_.push_back(item);
    return true;
  }
  bool flush() {
    if (group_.empty()) return true;
    bool more = emit_(raw_, group_);
    group_.clear();
    return more;
  }

 private:
  Emit emit_;
  std::string raw_;
  std::vector<Item> group_;
};

}  // namespace

Node Tree::resolve(std::string_view path) {
  Node node = root();
  size_t i = 0;
  while (i < path.size()) {
    size_t end = path.find('/', i);
    if (end == std::string_view::npos) end = path.size();
    std::string_view name = path.substr(i, end - i);
    i = end + 1;
    if (name.empty() || name == ".") continue;
    if (!node.is_dir()) throw Error(ENOTDIR, "not a directory: " + quote(path));
    std::optional<Node> next = child(node, name);
    if (!next) throw Error(ENOENT, "no such file or directory: " + quote(path));
    node = std::move(*next);
  }
  return node;
}

std::optional<Node> Tree::child(const Node& dir, std::string_view shown) {
  switch (dir.kind) {
    case Node::Kind::Root: {
      Node n;
      if (shown == "works")
        n.kind = Node::Kind::WorksDir;
      else if (shown == "blobs")
        n.kind = Node::Kind::BlobsDir;
      else if (shown == "inbox")
        n = dir_node(Place{});
      else
        return std::nullopt;
      return n;
    }
    case Node::Kind::BlobsDir: {
      std::string sha(shown);
      if (!is_sha256_hex(sha) || !blobs_.has(sha)) return std::nullopt;
      return blob_node(sha);
    }
    case Node::Kind::File:
    case Node::Kind::Blob:
      return std::nullopt;
    case Node::Kind::WorksDir:
    case Node::Kind::Dir:
      break;
  }
  const bool works = dir.kind == Node::Kind::WorksDir;
  // The common case: the shown name is the escaped raw name of a group's first.
  std::string raw = unescape_name(shown);
  if (escape_name(raw) == shown) {
    if (works) {
      std::vector<Work> ws = catalog_.works_titled(raw);
      if (!ws.empty()) return work_node(ws[0]);
    } else {
      std::vector<FolderEntry> es = catalog_.lookup(dir.place, raw);
      if (!es.empty()) return entry_node(dir.place, es[0]);
    }
  }
  // A collision name or a shortened name: find the group it belongs to.
  std::optional<GroupQuery> q = group_query(shown);
  if (!q) return std::nullopt;
  const std::string& prefix = q->raw;
  const bool exact = q->exact;
  auto raw_exists = [&](const std::string& r) {
    return works ? !catalog_.works_titled(r).empty() : !catalog_.lookup(dir.place, r).empty();
  };
  std::optional<Node> found;
  auto check = [&](const std::string& group_raw, size_t count, const auto& node_at) {
    if (exact ? group_raw != prefix : !group_raw.starts_with(prefix)) return false;  // past it
    std::vector<std::string> names = name_group(group_raw, count, raw_exists);
    for (size_t k = 0; k < names.size(); ++k)
      if (names[k] == shown) {
        found = node_at(k);
        return false;
      }
    return true;
  };
  if (works) {
    Grouper<Work> g([&](const std::string& r, const std::vector<Work>& group) {
      return check(r, group.size(), [&](size_t k) { return work_node(group[k]); });
    });
    catalog_.list_works([&](const WorkEntry& e) { return g.add(e.work.title, e.work); }, prefix);
    if (!found) g.flush();
  } else {
    Grouper<FolderEntry> g([&](const std::string& r, const std::vector<FolderEntry>& group) {
      return check(r, group.size(), [&](size_t k) { return entry_node(dir.place, group[k]); });
    });
    catalog_.list_folder(
        dir.place, [&](const FolderEntry& e) { return g.add(e.name, e); }, prefix);
    if (!found) g.flush();
  }
  return found;
}

std::vector<std::string> Tree::shown_names(const Place& place, const std::string& raw) {
  size_t n = catalog_.lookup(place, raw).size();
  auto raw_exists = [&](const std::string& r) { return !catalog_.lookup(place, r).empty(); };
  return name_group(raw, std::max<size_t>(n, 1), raw_exists);
}

void Tree::list(const Node& dir,
                const std::function<bool(const std::string& shown, const Node&)>& fn) {
  switch (dir.kind) {
    case Node::Kind::Root: {
      Node w, b;
      w.kind = Node::Kind::WorksDir;
      b.kind = Node::Kind::BlobsDir;
      if (!fn("blobs", b)) return;
      if (!fn("inbox", dir_node(Place{}))) return;
      fn("works", w);
      return;
    }
    case Node::Kind::BlobsDir:
      blobs_.list([&](const BlobInfo& b) {
        if (b.health == Health::Missing || b.health == Health::Modified) return true;
        return fn(b.sha256, blob_node(b.sha256));
      });
      return;
    case Node::Kind::File:
    case Node::Kind::Blob:
      throw Error(ENOTDIR, "not a directory");
    case Node::Kind::WorksDir:
    case Node::Kind::Dir:
      break;
  }
  if (dir.kind == Node::Kind::WorksDir) {
    auto raw_exists = [&](const std::string& r) { return !catalog_.works_titled(r).empty(); };
    Grouper<Work> g([&](const std::string& raw, const std::vector<Work>& group) {
      std::vector<std::string> names = name_group(raw, group.size(), raw_exists);
      for (size_t k = 0; k < group.size(); ++k)
        if (!fn(names[k], work_node(group[k]))) return false;
      return true;
    });
    catalog_.list_works([&](const WorkEntry& e) { return g.add(e.work.title, e.work); });
    g.flush();
    return;
  }
  auto raw_exists = [&](const std::string& r) { return !catalog_.lookup(dir.place, r).empty(); };
  Grouper<FolderEntry> g([&](const std::string& raw, const std::vector<FolderEntry>& group) {
    std::vector<std::string> names = name_group(raw, group.size(), raw_exists);
    for (size_t k = 0; k < group.size(); ++k)
      if (!fn(names[k], entry_node(dir.place, group[k]))) return false;
    return true;
  });
  catalog_.list_folder(dir.place, [&](const FolderEntry& e) { return g.add(e.name, e); });
  g.flush();
}

}  // namespace recall
