#include "fs/node_table.h"

#include <algorithm>
#include <vector>

namespace recall {

uint64_t NodeTable::remember(uint64_t parent, std::string_view name) {
  std::lock_guard lock(mu_);
  Key key{parent, std::string(name)};
  if (auto it = by_name_.find(key); it != by_name_.end()) {
    ++nodes_[it->second].lookups;
    return it->second;
  }
  uint64_t id = next_++;
  nodes_.emplace(id, Node{parent, key.name, 1, {}, nullptr});
  by_name_.emplace(std::move(key), id);
  return id;
}

void NodeTable::forget(uint64_t node, uint64_t n) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(node);
  if (it == nodes_.end() || node == kRoot) return;
  Node& nd = it->second;
  nd.lookups = n >= nd.lookups ? 0 : nd.lookups - n;
  if (nd.lookups > 0) return;
  if (nd.parent != 0) by_name_.erase(Key{nd.parent, nd.name});
  nodes_.erase(it);
}

std::optional<std::string> NodeTable::path_locked(uint64_t node) const {
  std::vector<const std::string*> names;
  while (node != kRoot) {
    auto it = nodes_.find(node);
    if (it == nodes_.end() || it->second.parent == 0) return std::nullopt;
    names.push_back(&it->second.name);
    node = it->second.parent;
  }
  if (names.empty()) return std::string("/");
  std::string p;
  for (auto n = names.rbegin(); n != names.rend(); ++n) {
    p += '/';
    p += **n;
  }
  return p;
}

std::optional<std::string> NodeTable::path(uint64_t node) const {
  std::lock_guard lock(mu_);
  return path_locked(node);
}

std::optional<std::string> NodeTable::child_path(uint64_t parent, std::string_view name) const {
  std::lock_guard lock(mu_);
  std::optional<std::string> p = path_locked(parent);
  if (!p) return p;
  if (p->size() > 1) *p += '/';
  *p += name;
  return p;
}

void NodeTable::detach_locked(uint64_t node) {
  auto it = nodes_.find(node);
  if (it == nodes_.end() || it->second.parent == 0) return;
  by_name_.erase(Key{it->second.parent, it->second.name});
  it->second.parent = 0;
}

void NodeTable::moved(uint64_t parent, std::string_view name, uint64_t new_parent,
                      std::string_view new_name) {
  std::lock_guard lock(mu_);
  Key from_key{parent, std::string(name)};
  Key to{new_parent, std::string(new_name)};
  if (from_key == to) return;
  if (auto t = by_name_.find(to); t != by_name_.end()) detach_locked(t->second);
  auto from = by_name_.find(from_key);
  if (from == by_name_.end()) return;  // the kernel did not know the source
  uint64_t id = from->second;
  by_name_.erase(from);
  Node& nd = nodes_[id];
  nd.parent = new_parent;
  nd.name = to.name;
  by_name_.emplace(std::move(to), id);
}

void NodeTable::removed(uint64_t parent, std::string_view name) {
  std::lock_guard lock(mu_);
  if (auto it = by_name_.find(Key{parent, std::string(name)}); it != by_name_.end())
    detach_locked(it->second);
}

void NodeTable::add_open_handle(uint64_t node, uint64_t handle, bool writable) {
  std::lock_guard lock(mu_);
  if (auto it = nodes_.find(node); it != nodes_.end())
    it->second.handles.emplace_back(handle, writable);
}

void NodeTable::remove_open_handle(uint64_t node, uint64_t handle) {
  std::lock_guard lock(mu_);
  if (auto it = nodes_.find(node); it != nodes_.end())
    std::erase_if(it->second.handles, [&](const auto& h) { return h.first == handle; });
}

std::optional<uint64_t> NodeTable::open_handle(uint64_t node, bool writable) const {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return std::nullopt;
  const auto& hs = it->second.handles;
  for (auto h = hs.rbegin(); h != hs.rend(); ++h)
    if (h->second || !writable) return h->first;
  return std::nullopt;
}

uint64_t NodeTable::node_of(uint64_t parent, std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = by_name_.find(Key{parent, std::string(name)});
  return it == by_name_.end() ? 0 : it->second;
}

void NodeTable::keep_attributes(uint64_t node, const struct stat& st) {
  std::lock_guard lock(mu_);
  if (auto it = nodes_.find(node); it != nodes_.end())
    it->second.kept = std::make_unique<struct stat>(st);
}

std::optional<struct stat> NodeTable::kept_attributes(uint64_t node) const {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(node);
  if (it == nodes_.end() || !it->second.kept) return std::nullopt;
  return *it->second.kept;
}

NodeTable::Found NodeTable::find(std::string_view path) const {
  std::lock_guard lock(mu_);
  uint64_t at = kRoot;
  for (;;) {
    while (path.starts_with('/')) path.remove_prefix(1);
    if (path.empty()) return Found{0, "", at};  // only for "/": the loop returns earlier
    size_t slash = path.find('/');
    std::string_view part = path.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash);
    bool last = path.find_first_not_of('/') == std::string_view::npos;
    auto it = by_name_.find(Key{at, std::string(part)});
    if (last || it == by_name_.end())
      return Found{at, std::string(part), last && it != by_name_.end() ? it->second : 0};
    at = it->second;
  }
}

std::vector<NodeTable::Found> NodeTable::named() const {
  std::lock_guard lock(mu_);
  std::vector<Found> out;
  out.reserve(by_name_.size());
  for (const auto& [key, id] : by_name_) out.push_back(Found{key.parent, key.name, id});
  return out;
}

size_t NodeTable::size() const {
  std::lock_guard lock(mu_);
  return nodes_.size();
}

}  // namespace recall
