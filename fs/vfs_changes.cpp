// Vfs: telling the kernel what changed — after a local commit, a pull, a
// blob stored or collected, or a change made by another process — and the
// attributes of files (mode, mtime) that open handles share.
#include <map>
#include <tuple>

#include "base/error.h"
#include "fs/fetcher.h"
#include "fs/names.h"
#include "fs/open_file.h"
#include "fs/vfs.h"
#include "fs/vfs_internal.h"

namespace recall {
using namespace vfs_detail;

void Vfs::invalidate_in(const Place& place, const std::string& shown, Stale what) {
  std::string dir = tree_.shown_path(place);
  if (!dir.empty()) invalidate(dir + "/" + shown, what);  // "" : the place is gone
}

void Vfs::invalidate(const std::string& path, Stale what) {
  std::lock_guard lock(invalidate_mu_);
  if (invalidate_) invalidate_(path, what);
}

void Vfs::content_changed(const std::string& asset_id, Stale what, const std::string& through) {
  {
    std::lock_guard lock(invalidate_mu_);
    if (!invalidate_) return;
  }
  invalidate_names(asset_id, what, through);
}

void Vfs::invalidate_names(const std::string& asset_id, Stale what, const std::string& through) {
  auto a = lib_.catalog().get_asset(asset_id);
  if (!a) return;  // deleted: remote_changed() or the kernel's own unlink covers its names
  auto names_in = [&](const Place& place, const std::string& raw) {
    std::string dir = tree_.shown_path(place);
    if (dir.empty()) return;
    for (const std::string& shown : tree_.shown_names(place, raw)) {
      std::string path = dir + "/" + shown;
      invalidate(path, path == through && what == Stale::Content ? Stale::Attributes : what);
    }
  };
  names_in(Place{a->work_id, a->folder}, a->filename);
  for (const Edge& e : lib_.catalog().links_of(asset_id))
    names_in(Place{e.from_id, e.folder}, e.name);
}

void Vfs::blob_changed(const std::string& sha256) noexcept {
  try {
    // Fetched for a version that a pull replaced while it came: held, and
    // freed after a later pull like any bytes no file has (a no-op while a
    // file names them).
    if (signed_in_ && signed_in_()) lib_.catalog().hold_blob(sha256);
    invalidate("/blobs/" + sha256, Stale::Listing);
    for (const Asset& a : lib_.catalog().assets_with_blob(sha256))  // (their st_blocks)
      content_changed(a.id, Stale::Attributes);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recallfs: cache invalidation for blob %s: %s\n", sha256.c_str(),
                 e.what());
  }
}

void Vfs::changed_elsewhere() noexcept {
  try {
    invalidate("", Stale::Name);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recallfs: cache invalidation: %s\n", e.what());
  }
}

void Vfs::remote_changed(const Catalog::ApplyReport& report) noexcept {
  try {
    Catalog& cat = lib_.catalog();
    {
      std::lock_guard lock(invalidate_mu_);
      if (!invalidate_) return;
    }
    // Folders where names came or went show it in their times, as for
    // changes made here (before the kernel is told to look again). A
    // content change counts too: the report does not tell them apart.
    for (const auto& [place, name] : report.stale_names) names_changed(place);
    for (const std::string& id : report.changed_assets)
      if (std::optional<Asset> a = cat.get_asset(id)) names_changed(Place{a->work_id, a->folder});
    if (!report.stale_titles.empty()) names_changed("works");
    for (const std::string& title : report.stale_titles)
      invalidate("/works/" + escape_name(title), Stale::Name);
    // The old names; where entries left a group of same-named ones, every
    // name the group showed (group_left). It was at most as large as now
    // plus the entries that left it.
    std::map<std::tuple<bool, std::string, std::string, std::string>, size_t> left;
    for (const auto& [place, name] : report.stale_names)
      left[{place.work_id.has_value(), place.work_id.value_or(""), place.folder, name}]++;
    for (const auto& [key, count] : left) {
      const auto& [in_work, work, folder, name] = key;
      Place place{in_work ? std::optional<std::string>(work) : std::nullopt, folder};
      if (place.work_id && !cat.get_work(*place.work_id)) continue;  // gone: its title covers it
      invalidate_in(place, escape_name(name), Stale::Name);
      group_left(place, name, cat.lookup(place, name).size() + count);
    }
    // Their names now may be new in their folders.
    for (const std::string& id : report.changed_assets) invalidate_names(id, Stale::Listing);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recallfs: cache invalidation after a pull: %s\n", e.what());
  }
}

std::shared_ptr<OpenFile> Vfs::find_open(const std::string& asset_id) {
  std::lock_guard lock(files_mu_);
  auto it = files_.find(asset_id);
  return it == files_.end() ? nullptr : it->second;
}

void Vfs::set_file_attrs(const std::string& asset_id, std::optional<uint32_t> mode,
                         std::optional<int64_t> mtime_ns) {
  bool pending = false;
  std::shared_ptr<OpenFile> of = find_open(asset_id);
  if (of) {
    std::lock_guard lock(of->mu);
    if (mode) of->mode = *mode;
    if (mtime_ns) of->mtime_ns = *mtime_ns;
    pending = of->pending;
  }
  // A new file gets them with its first commit.
  if (pending) return;
  try {
    lib_.catalog().set_asset_attrs(asset_id, mode, mtime_ns);
  } catch (const Error& e) {
    if (e.code() != ENOENT || !of) throw;
    return;  // unlinked while open: only its open state shows them
  }
  // The kernel updated the name it was asked through, not the other links.
  if (!lib_.catalog().links_of(asset_id).empty()) content_changed(asset_id, Stale::Attributes);
}

}  // namespace recall
