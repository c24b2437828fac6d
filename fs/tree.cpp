#include "fs/tree.h"

#include <algorithm>
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

// How many entries of one folder (or works) have a given raw name.
using RawCount = std::function<size_t(const std::string& raw)>;

// The shown names of one group of entries that share the raw name `raw`
// (in collision order). The first shows as escape_name(raw), unless that is
// an escaped name which a raw name of the folder shows as literally: then
// that group keeps it and its names come first. Each later one takes the
// next "name (n).ext" that no other raw name of the folder shows as.
std::vector<std::string> name_group(const std::string& raw, size_t count,
                                    const RawCount& raw_count) {
  const std::string first = escape_name(raw);
  std::vector<std::string> literal;  // the names of the group called `first`
  if (first != raw)
    if (size_t m = raw_count(first)) literal = name_group(first, m, raw_count);
  auto taken = [&](const std::string& c) {
    if (std::find(literal.begin(), literal.end(), c) != literal.end()) return true;
    if (c != raw && raw_count(c) > 0) return true;  // a name shown as itself
    std::string other = unescape_name(c);           // or an escaped one's
    return other != raw && other != c && escape_name(other) == c && raw_count(other) > 0;
  };
  std::vector<std::string> names;
  if (literal.empty()) names.push_back(first);
  for (unsigned n = 2; names.size() < count; ++n) {
    std::string candidate = collision_name(first, n);
    // (A 255-byte "name (2)" cut and counted again is itself.)
    if (candidate == first || std::ranges::count(names, candidate) > 0) continue;
    if (!taken(candidate)) names.push_back(std::move(candidate));
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
  auto first_of = [&](const std::string& raw) -> std::optional<Node> {
    if (works) {
      std::vector<Work> ws = catalog_.works_titled(raw);
      if (!ws.empty()) return work_node(ws[0]);
    } else {
      std::vector<FolderEntry> es = catalog_.lookup(dir.place, raw);
      if (!es.empty()) return entry_node(dir.place, es[0]);
    }
    return std::nullopt;
  };
  // The common case: a raw name shown as itself, the first of its group.
  if (auto n = first_of(std::string(shown))) return n;
  // A raw name that cannot be a file name, shown escaped (no raw name is
  // `shown` itself: that would have kept the name).
  std::string raw = unescape_name(shown);
  if (raw != shown && !is_file_name(raw) && escape_name(raw) == shown)
    if (auto n = first_of(raw)) return n;
  // A collision name or a shortened name: find the group it belongs to.
  const RawCount raw_count = [&](const std::string& r) {
    return works ? catalog_.works_titled(r).size() : catalog_.lookup(dir.place, r).size();
  };
  for (const GroupQuery& q : group_queries(shown)) {
    const std::string& prefix = q.raw;
    const bool exact = q.exact;
    std::optional<Node> found;
    auto check = [&](const std::string& group_raw, size_t count, const auto& node_at) {
      if (exact ? group_raw != prefix : !group_raw.starts_with(prefix)) return false;  // past it
      std::vector<std::string> names = name_group(group_raw, count, raw_count);
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
    if (found) return found;
  }
  return std::nullopt;
}

std::vector<std::string> Tree::shown_names(const Place& place, const std::string& raw,
                                           size_t at_least) {
  size_t n = catalog_.lookup(place, raw).size();
  return name_group(raw, std::max<size_t>(n, at_least),
                    [&](const std::string& r) { return catalog_.lookup(place, r).size(); });
}

std::string Tree::shown_path(const Place& place) {
  std::string path = "/inbox";
  if (place.work_id) {
    std::optional<Work> w = catalog_.get_work(*place.work_id);
    if (!w) return "";
    std::vector<Work> ws = catalog_.works_titled(w->title);
    auto at = std::find_if(ws.begin(), ws.end(), [&](const Work& o) { return o.id == w->id; });
    std::vector<std::string> names = name_group(
        w->title, ws.size(), [&](const std::string& r) { return catalog_.works_titled(r).size(); });
    if (at == ws.end()) return "";
    path = "/works/" + names[static_cast<size_t>(at - ws.begin())];
  }
  Place parent{place.work_id, ""};
  for (size_t i = 0; i < place.folder.size();) {
    size_t end = place.folder.find('/', i);
    if (end == std::string::npos) end = place.folder.size();
    std::string name = place.folder.substr(i, end - i);
    std::string here = place.folder.substr(0, end);
    std::vector<FolderEntry> es = catalog_.lookup(parent, name);
    auto at = std::find_if(es.begin(), es.end(), [&](const FolderEntry& e) {
      return e.kind == FolderEntry::Kind::Folder && e.folder->path == here;
    });
    if (at == es.end()) return "";
    std::vector<std::string> names = name_group(
        name, es.size(), [&](const std::string& r) { return catalog_.lookup(parent, r).size(); });
    path += "/" + names[static_cast<size_t>(at - es.begin())];
    parent.folder = here;
    i = end + 1;
  }
  return path;
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
    const RawCount raw_count = [&](const std::string& r) {
      return catalog_.works_titled(r).size();
    };
    Grouper<Work> g([&](const std::string& raw, const std::vector<Work>& group) {
      std::vector<std::string> names = name_group(raw, group.size(), raw_count);
      for (size_t k = 0; k < group.size(); ++k)
        if (!fn(names[k], work_node(group[k]))) return false;
      return true;
    });
    catalog_.list_works([&](const WorkEntry& e) { return g.add(e.work.title, e.work); });
    g.flush();
    return;
  }
  const RawCount raw_count = [&](const std::string& r) {
    return catalog_.lookup(dir.place, r).size();
  };
  Grouper<FolderEntry> g([&](const std::string& raw, const std::vector<FolderEntry>& group) {
    std::vector<std::string> names = name_group(raw, group.size(), raw_count);
    for (size_t k = 0; k < group.size(); ++k)
      if (!fn(names[k], entry_node(dir.place, group[k]))) return false;
    return true;
  });
  catalog_.list_folder(dir.place, [&](const FolderEntry& e) { return g.add(e.name, e); });
  g.flush();
}

}  // namespace recall
