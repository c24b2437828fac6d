// Vfs: the user.recall.* extended attributes (sha256, asset_id, work_id,
// role, local, pinned, holders); a folder's `pinned` pins it as a place.
#include <sys/xattr.h>

#include "base/error.h"
#include "catalog/rows.h"
#include "fs/fetcher.h"
#include "fs/names.h"
#include "fs/open_file.h"
#include "fs/vfs.h"
#include "fs/vfs_internal.h"

namespace recall {
using namespace vfs_detail;

namespace {
constexpr std::string_view kPrefix = "user.recall.";

// The places a pin of a directory covers: the root is every work and the
// inbox, works/ every work; blobs/ none (its files are pinned one by one).
std::vector<std::optional<Place>> pin_places_of(const Node& dir) {
  switch (dir.kind) {
    case Node::Kind::Root:
      return {std::nullopt, Place{}};
    case Node::Kind::WorksDir:
      return {std::nullopt};
    case Node::Kind::Dir:
      return {dir.place};
    default:
      return {};
  }
}
}  // namespace

std::vector<std::string> Vfs::listxattr(std::string_view path) {
  Resolved r = resolve(path);
  std::vector<std::string> names;
  auto add = [&](const char* n) { names.push_back(std::string(kPrefix) + n); };
  if (r.pending || r.node.kind == Node::Kind::File) {
    for (const char* n :
         {"sha256", "asset_id", "work_id", "role", "local", "local_only", "pinned", "holders"})
      add(n);
  } else if (r.node.kind == Node::Kind::Blob) {
    for (const char* n : {"sha256", "local", "pinned", "holders"}) add(n);
  } else {
    if (r.node.work) add("work_id");
    if (!pin_places_of(r.node).empty()) add("pinned");
  }
  return names;
}

std::string Vfs::getxattr(std::string_view path, std::string_view name) {
  if (!name.starts_with(kPrefix)) throw Error(foreign_xattr_errno(name), "no such attribute");
  std::string_view key = name.substr(kPrefix.size());
  Resolved r = resolve(path);
  if (r.pending) {
    std::lock_guard lock(r.pending->mu);
    if (key == "asset_id") return r.pending->asset_id;
    if (key == "work_id") return r.pending->place.work_id.value_or("");
    if (key == "role") return "main";
    if (key == "local" || key == "pinned") return key == "local" ? "1" : "0";
    if (key == "holders") return "";
    if (key == "local_only") return is_scratch_name(r.pending->name) ? "1" : "0";
    if (key == "sha256") return "";
    throw Error(ENODATA, "no such attribute");
  }
  if (r.node.kind == Node::Kind::Blob) {
    if (key == "sha256") return r.node.sha256;
    if (key == "local") return lib_.blobs().has(r.node.sha256) ? "1" : "0";
    if (key == "pinned") return lib_.catalog().pinned(r.node.sha256) ? "1" : "0";
    if (key == "holders") return holders_text(r.node.sha256);
    throw Error(ENODATA, "no such attribute");
  }
  if (r.node.kind == Node::Kind::File) {
    const Asset& a = *r.node.entry->asset;
    if (key == "sha256") return a.sha256;
    if (key == "asset_id") return a.id;
    if (key == "work_id") return a.work_id.value_or("");
    if (key == "role") return a.role;
    if (key == "local") return lib_.blobs().has(a.sha256) ? "1" : "0";
    if (key == "local_only") return a.local_only ? "1" : "0";
    if (key == "pinned") return lib_.catalog().pinned(a.sha256) ? "1" : "0";
    if (key == "holders") return holders_text(a.sha256);
  } else if (r.node.work && key == "work_id") {
    return r.node.work->id;
  } else if (std::vector places = pin_places_of(r.node); key == "pinned" && !places.empty()) {
    bool all = true;
    for (const std::optional<Place>& p : places) all = all && lib_.catalog().place_pinned(p);
    return all ? "1" : "0";
  }
  throw Error(ENODATA, "no such attribute");
}

void Vfs::setxattr(std::string_view path, std::string_view name, std::string_view value,
                   int flags) {
  if (!name.starts_with(kPrefix))
    throw Error(ENOTSUP, "only user.recall.role and user.recall.pinned can be set");
  std::string_view key = name.substr(kPrefix.size());
  std::string text(value);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\0')) text.pop_back();
  std::lock_guard ns(ns_mu_);
  Resolved r = resolve(path);
  if (key != "role" && key != "pinned")
    throw Error(EPERM, "user.recall." + std::string(key) + " is read-only");
  // Checked before anything changes: what may have it, and the value.
  const bool file = r.pending || r.node.kind == Node::Kind::File;
  const std::vector places =
      r.pending ? std::vector<std::optional<Place>>{} : pin_places_of(r.node);
  if (key == "pinned") {
    if (!file && r.node.kind != Node::Kind::Blob && places.empty())
      throw Error(EPERM, "blobs/ cannot be pinned as a whole: pin its files, or folders");
    if (text != "1" && text != "0") throw Error(EINVAL, "user.recall.pinned is 1 or 0");
  } else {
    if (!file) throw Error(EPERM, "only a file has a role");
    if (!is_role(text)) throw Error(EINVAL, "unknown role " + quote(text));
  }
  if (flags & XATTR_CREATE)
    throw Error(EEXIST, "user.recall." + std::string(key) + " exists (every file has it)");
  if (key == "pinned" && !places.empty()) {
    // A folder's pin covers what comes into it later too (Catalog::pin_place).
    for (const std::optional<Place>& p : places) {
      if (text == "0") {
        lib_.catalog().unpin_place(p);
        continue;
      }
      for (const std::string& sha : lib_.catalog().pin_place(p))
        if (fetcher_ && !lib_.blobs().has(sha)) fetcher_->fetch_in_background(sha);
    }
    if (text == "0" && on_cache_changed_) on_cache_changed_("");
    return;
  }
  if (r.pending) {
    commit_now(r.pending);
    r = resolve(path);
    if (r.pending || r.node.kind != Node::Kind::File)
      throw Error(EIO, "the new file could not be stored");
  }
  if (key == "pinned") {
    std::string sha = r.node.kind == Node::Kind::Blob ? r.node.sha256 : r.node.entry->asset->sha256;
    if (text == "0") {
      lib_.catalog().unpin(sha);
      if (on_cache_changed_) on_cache_changed_(sha);
      return;
    }
    lib_.catalog().pin(sha);
    // Its bytes come in the background; `recallfs pin` waits and shows progress.
    if (fetcher_ && !lib_.blobs().has(sha)) fetcher_->fetch_in_background(sha);
    return;
  }
  lib_.catalog().set_asset_role(r.node.entry->asset->id, text);
}

// "device-id present health\n" per holder, for user.recall.holders.
std::string Vfs::holders_text(const std::string& sha256) {
  std::string out;
  for (const DeviceBlob& h : lib_.catalog().holders(sha256))
    out += (h.device_id == kCloudHolder ? std::string("cloud") : h.device_id) +
           (h.present ? " present " : " absent ") + h.health + "\n";
  return out;
}

void Vfs::removexattr(std::string_view path, std::string_view name) {
  resolve(path);
  if (!name.starts_with(kPrefix)) throw Error(ENODATA, "no such attribute");
  throw Error(EPERM, "user.recall attributes cannot be removed");
}

}  // namespace recall
