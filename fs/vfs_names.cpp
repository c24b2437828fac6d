// Vfs: name changes — mkdir, rmdir, unlink, link and rename (a rename over
// a file is an atomic save: the target keeps its asset id), with what they
// do to open files and to what the kernel caches under the names.
#include <linux/fs.h>

#include <cstdio>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/error.h"
#include "base/ids.h"
#include "base/utf8.h"
#include "fs/names.h"
#include "fs/open_file.h"
#include "fs/vfs.h"
#include "fs/vfs_internal.h"

namespace recall {
using namespace vfs_detail;

// ---- directories -----------------------------------------------------------

void Vfs::check_writable_dir(const Node& dir, bool for_file) {
  switch (dir.kind) {
    case Node::Kind::BlobsDir:
      throw Error(EROFS, "blobs/ is read-only");
    case Node::Kind::Root:
      throw Error(EPERM, "the top of the library holds only works/, inbox/ and blobs/");
    case Node::Kind::WorksDir:
      if (for_file) throw Error(EPERM, "works/ holds works (folders), not files");
      return;
    case Node::Kind::File:
    case Node::Kind::Blob:
      throw Error(ENOTDIR, "not a directory");
    case Node::Kind::Dir:
      return;
  }
}

void Vfs::mkdir(std::string_view path, mode_t mode) {
  std::lock_guard ns(ns_mu_);
  std::string leaf;
  Resolved parent = resolve_parent(path, leaf);
  check_writable_dir(parent.node, false);
  if (tree_.child(parent.node, leaf) ||
      (parent.node.kind == Node::Kind::Dir && find_pending(parent.node.place, leaf)))
    throw Error(EEXIST, "exists: " + quote(path));
  const std::string& raw = leaf;  // a name made here is shown as typed
  require_utf8(raw, "a name");
  if (parent.node.kind == Node::Kind::WorksDir)
    lib_.catalog().create_work(raw, false, mode);
  else
    lib_.catalog().create_folder(parent.node.place, raw, is_scratch_name(raw), mode);
  names_changed(dir_key(parent.node));
}

std::vector<std::shared_ptr<OpenFile>> Vfs::pending_under(const Place& place) {
  std::vector<std::shared_ptr<OpenFile>> out;
  std::lock_guard lock(files_mu_);
  for (const std::string& id : pending_.in(place, true))
    if (auto it = files_.find(id); it != files_.end()) out.push_back(it->second);
  return out;
}

void Vfs::remove_dir_node(const Node& n) {
  if (!pending_under(n.place).empty()) throw Error(ENOTEMPTY, "a new file inside is still open");
  if (n.work)
    lib_.catalog().delete_work(n.work->id);
  else
    lib_.catalog().delete_folder(n.folder->id);
}

void Vfs::forget_cached(std::string_view path) {
  std::lock_guard lock(files_mu_);
  last_opened_sha_.erase(std::string(path));
  // Everything below: the paths from "path/" up to (not with) "path0".
  std::string dir = std::string(path) + "/", past = std::string(path) + "0";
  last_opened_sha_.erase(last_opened_sha_.lower_bound(dir), last_opened_sha_.lower_bound(past));
}

void Vfs::rmdir(std::string_view path) {
  std::lock_guard ns(ns_mu_);
  forget_cached(path);
  Resolved r = resolve(path);
  if (!r.node.is_dir()) throw Error(ENOTDIR, "not a directory: " + quote(path));
  if (r.node.kind != Node::Kind::Dir || r.node.is_inbox())
    throw Error(EPERM, "works/, inbox/ and blobs/ cannot be removed");
  remove_dir_node(r.node);
  parent_names_changed(r.node);
  std::lock_guard lock(dir_times_mu_);
  names_changed_ns_.erase(dir_key(r.node));
}

// ---- unlink, link, rename ------------------------------------------------

void Vfs::unlink(std::string_view path) {
  std::lock_guard ns(ns_mu_);
  forget_cached(path);
  Resolved r = resolve(path);
  if (r.node.is_dir()) throw Error(EISDIR, "is a directory: " + quote(path));
  if (r.node.kind == Node::Kind::Blob) throw Error(EROFS, "blobs/ is read-only");
  if (r.pending) {
    std::lock_guard lock(files_mu_);
    std::lock_guard flock(r.pending->mu);
    r.pending->unlinked = true;
    r.pending->drop_truncation_note();
    pending_.erase(r.pending->place, r.pending->name);
    names_changed(r.pending->place);
    return;
  }
  if (take_back_name(r.node)) return;
  const Asset& a = *r.node.entry->asset;
  size_t group = lib_.catalog().lookup(r.node.place, r.node.entry->name).size();
  lib_.catalog().remove_name(*r.node.entry);
  names_changed(r.node.place);
  group_left(r.node.place, r.node.entry->name, group);
  // Its other names (kernel inodes of their own) count one link fewer.
  if (r.node.entry->extra_links > 0) content_changed(a.id, Stale::Attributes);
  if (!lib_.catalog().get_asset(a.id)) {
    // Its last name: an open writer must not bring it back.
    if (std::shared_ptr<OpenFile> of = find_open(a.id)) {
      std::lock_guard flock(of->mu);
      of->unlinked = true;
      of->drop_truncation_note();
    }
    collect_blob(a.sha256);
  }
}

void Vfs::hand_over_open_state(const std::string& from, const std::string& to, const Place& place,
                               const std::string& raw, bool to_linked) {
  std::lock_guard lock(files_mu_);
  if (auto t = files_.find(to); t != files_.end()) {
    std::lock_guard flock(t->second->mu);
    t->second->unlinked = true;  // replaced: like an unlinked file, never committed
    t->second->drop_truncation_note();
    files_.erase(t);
  }
  auto f = files_.find(from);
  if (f == files_.end()) return;
  std::shared_ptr<OpenFile> of = f->second;
  files_.erase(f);
  std::lock_guard flock(of->mu);
  if (of->unlinked) return;
  of->asset_id = to;
  of->place = place;
  of->name = raw;
  of->linked = to_linked;
  files_[to] = of;
}

void Vfs::link(std::string_view from, std::string_view to) {
  std::lock_guard ns(ns_mu_);
  forget_cached(to);
  Resolved src = resolve(from);
  if (src.node.is_dir()) throw Error(EPERM, "directories cannot be hard-linked");
  std::string leaf;
  Resolved parent = resolve_parent(to, leaf);
  check_writable_dir(parent.node, true);
  if (tree_.child(parent.node, leaf) || find_pending(parent.node.place, leaf))
    throw Error(EEXIST, "exists: " + quote(to));
  const std::string& raw = leaf;  // a name made here is shown as typed
  require_utf8(raw, "a name");
  if (src.node.kind == Node::Kind::Blob) {
    // ln blobs/<sha> inbox/name: a new asset for a blob already stored.
    auto info = lib_.blobs().stat(src.node.sha256);
    if (!info) throw Error(ENOENT, "blob " + src.node.sha256 + " is not on this device");
    PutResult p{src.node.sha256, info->size, true, info->content};
    NewAsset n;
    n.place = parent.node.place;
    n.filename = raw;
    n.blob = blob_for(p, raw);
    n.mode = 0444;
    n.local_only = is_scratch_name(raw);
    lib_.catalog().add_asset(n);
    names_changed(dir_key(parent.node));
    return;
  }
  if (src.pending) commit_now(src.pending);
  std::string asset_id = src.pending ? src.pending->asset_id : src.node.entry->asset->id;
  lib_.catalog().link_asset(asset_id, parent.node.place, raw);
  names_changed(dir_key(parent.node));
  if (std::shared_ptr<OpenFile> of = find_open(asset_id)) {
    std::lock_guard lock(of->mu);
    of->linked = true;
  }
  content_changed(asset_id, Stale::Attributes);  // every name shows one link more
}

void Vfs::rename(std::string_view from, std::string_view to, unsigned flags) {
  // (RENAME_WHITEOUT makes a device node: a library holds files.)
  if (flags & ~static_cast<unsigned>(RENAME_NOREPLACE))
    throw Error(EINVAL, "only RENAME_NOREPLACE is supported (not RENAME_EXCHANGE or WHITEOUT)");
  std::lock_guard ns(ns_mu_);
  forget_cached(from);  // the kernel moves a name's inode, and its cache, with it
  forget_cached(to);
  Resolved src = resolve(from);
  if (src.node.kind == Node::Kind::Blob) throw Error(EROFS, "blobs/ is read-only");
  if (src.node.is_dir() && (src.node.kind != Node::Kind::Dir || src.node.is_inbox()))
    throw Error(EPERM, "works/, inbox/ and blobs/ cannot be moved");
  std::string leaf;
  Resolved parent = resolve_parent(to, leaf);
  check_writable_dir(parent.node, !src.node.is_dir());
  const std::string& raw = leaf;  // a name made here is shown as typed
  std::optional<Resolved> target;
  if (auto n = tree_.child(parent.node, leaf)) {
    target = Resolved{std::move(*n), nullptr};
  } else if (parent.node.kind == Node::Kind::Dir) {
    if (auto of = find_pending(parent.node.place, raw)) {
      Resolved t;
      t.node.kind = Node::Kind::File;
      t.node.place = parent.node.place;
      t.pending = of;
      target = t;
    }
  }
  if (target && (flags & RENAME_NOREPLACE)) throw Error(EEXIST, "exists: " + quote(to));
  // A file renamed over keeps its name (one from before names were checked
  // too); a name that comes into being must be UTF-8.
  if (!target || target->node.is_dir()) require_utf8(raw, "a name");

  // Both folders' names change (unless it is one name renamed to itself,
  // which changes nothing on a local disk either; then nothing below fails).
  const std::string from_key = src.pending         ? place_key(src.pending->place)
                               : src.node.is_dir() ? std::string()
                                                   : place_key(src.node.place);
  const std::string to_key = dir_key(parent.node);
  if (src.node.is_dir()) {
    if (target && !target->node.is_dir()) throw Error(ENOTDIR, "not a directory: " + quote(to));
    rename_dir(src.node, parent.node, raw,
               target ? std::optional<Node>(target->node) : std::nullopt);
    if (!target || target->node.place != src.node.place) {
      parent_names_changed(src.node);
      names_changed(to_key);
    }
    return;
  }
  if (target && target->node.is_dir()) throw Error(EISDIR, "is a directory: " + quote(to));
  if (src.pending) {
    commit_now(src.pending);
  } else if (target) {
    // The content the target takes is what the source holds now, committed
    // or not: a writer may still be open, or a truncation's release (which
    // commits it) may not have arrived yet.
    if (std::shared_ptr<OpenFile> of = find_open(src.node.entry->asset->id)) commit_now(of);
  }
  if (target && target->pending) commit_now(target->pending);
  // Re-read both after the commits.
  src = resolve(from);
  if (target) target = resolve(to);
  const FolderEntry& se = *src.node.entry;
  if (target) {
    const FolderEntry& te = *target->node.entry;
    if (te.id == se.id) return;  // the same name
    if (te.asset->id == se.asset->id)
      return;  // two names of one file: POSIX
               // leaves both as they are
    // An atomic save: the target keeps its asset id and takes the content.
    std::string source_id = se.asset->id, target_id = te.asset->id;
    const bool target_linked = te.extra_links > 0;
    size_t group = lib_.catalog().lookup(src.node.place, se.name).size();
    std::string old_sha = take_content(target_id, se);
    names_changed(from_key);
    names_changed(to_key);
    group_left(src.node.place, se.name, group);
    hand_over_open_state(source_id, target_id, parent.node.place, te.name, target_linked);
    // The name renamed over shows what the kernel wrote through the source's
    // name; the target's other names (links) show other pages now.
    content_changed(target_id, target_linked ? Stale::Content : Stale::Attributes);
    content_changed(source_id, Stale::Attributes);  // names it keeps count one link fewer
    collect_blob(old_sha);
    return;
  }
  bool local_only = is_scratch_name(raw);
  size_t group = lib_.catalog().lookup(src.node.place, se.name).size();
  if (se.kind == FolderEntry::Kind::Link) {
    lib_.catalog().move_link(se.edge->id, parent.node.place, raw);
  } else {
    lib_.catalog().move_asset(se.asset->id, parent.node.place, raw, local_only);
    moved_away(se.asset->id, src.node.place, se.name);
  }
  names_changed(from_key);
  names_changed(to_key);
  group_left(src.node.place, se.name, group);
}

std::string Vfs::take_content(const std::string& to_id, const FolderEntry& from,
                              const std::function<void()>& also) {
  const Asset& f = *from.asset;
  BlobMeta meta = blob_meta_of(f);
  // (Its bytes may be on other devices only: a synced version never read here.)
  const bool bytes_here = lib_.blobs().has(meta.sha256);
  std::string old_sha;  // (the row's now: a pull may have changed it since the lookup)
  lib_.catalog().batch([&] {
    old_sha = lib_.catalog().set_asset_content(to_id, meta, f.mtime_ns, bytes_here);
    lib_.catalog().set_asset_attrs(to_id, f.mode, std::nullopt);
    lib_.catalog().remove_name(from);
    if (also) also();
  });
  return old_sha;
}

BlobMeta Vfs::blob_meta_of(const Asset& a) {
  BlobMeta meta;
  if (auto b = lib_.catalog().get_blob(a.sha256)) meta = *b;
  meta.sha256 = a.sha256;
  meta.size = a.bytes;
  meta.mime = a.mime;
  meta.page_count = a.page_count;
  return meta;
}

void Vfs::moved_away(const std::string& asset_id, const Place& from, const std::string& from_name) {
  std::lock_guard lock(moved_mu_);
  moved_away_.push_back({asset_id, from, from_name, now_ms()});
  if (moved_away_.size() > kMovedKept) moved_away_.pop_front();
}

bool Vfs::take_back_name(const Node& leaving) {
  // Only a file with no other name: vim copies a linked one instead, and
  // on a local disk the other names of a file saved this way keep the old
  // content.
  const FolderEntry& le = *leaving.entry;
  if (le.kind != FolderEntry::Kind::Asset || le.extra_links > 0) return false;
  const Asset& a = *le.asset;
  std::optional<MovedAway> moved;
  {
    std::lock_guard lock(moved_mu_);
    for (auto it = moved_away_.rbegin(); it != moved_away_.rend(); ++it)
      if (it->asset_id == a.id) {
        if (it->at_ms >= now_ms() - kSaveWindowMs) moved = *it;
        moved_away_.erase(std::next(it).base());
        break;
      }
  }
  if (!moved || find_open(a.id)) return false;  // (being written: left as it is)
  // The name it left holds one new file, made since, with no other name.
  auto new_file = [&]() -> std::optional<FolderEntry> {
    std::vector<FolderEntry> there = lib_.catalog().lookup(moved->from, moved->from_name);
    if (there.size() != 1 || there[0].kind != FolderEntry::Kind::Asset) return std::nullopt;
    const Asset& n = *there[0].asset;
    if (n.id == a.id || n.created_ms < moved->at_ms || there[0].extra_links > 0)
      return std::nullopt;
    return there[0];
  };
  std::optional<FolderEntry> ne = new_file();
  if (!ne) return false;
  // It may still be open: the kernel's release comes after close() has
  // returned, and a writer may go on. What it holds now is the content, and
  // its open state goes to the file taking the name back, as in a rename
  // over it.
  if (std::shared_ptr<OpenFile> of = find_open(ne->asset->id)) {
    commit_now(of);
    if (!(ne = new_file())) return false;
  }
  const Asset& n = *ne->asset;
  std::string old_sha = take_content(a.id, *ne, [&] {
    // A role set on the new file (cp --preserve=xattr) is the last word.
    if (n.role != "main" && n.role != a.role) lib_.catalog().set_asset_role(a.id, n.role);
    lib_.catalog().move_asset(a.id, moved->from, moved->from_name,
                              is_scratch_name(moved->from_name));
  });
  hand_over_open_state(n.id, a.id, moved->from, moved->from_name, false);
  names_changed(leaving.place);
  names_changed(moved->from);
  try {
    // The name shows another file (another inode) now.
    for (const std::string& shown : tree_.shown_names(moved->from, moved->from_name))
      invalidate_in(moved->from, shown, Stale::Name);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recallfs: after a save: %s\n", e.what());
  }
  collect_blob(old_sha);
  return true;
}

void Vfs::group_left(const Place& place, const std::string& raw, size_t before) {
  // The others' names shift ("b (2)" becomes "b"): what the kernel caches
  // under each name the group showed is stale, pages too. (The kernel
  // itself dropped the name it was asked through.)
  if (before < 2) return;
  for (const std::string& shown : tree_.shown_names(place, raw, before))
    invalidate_in(place, shown, Stale::Name);
}

void Vfs::rename_dir(const Node& from, const Node& to_parent, const std::string& raw,
                     std::optional<Node> target) {
  Catalog& cat = lib_.catalog();
  // The destination as a place: a work (under works/) or a sub-folder.
  const bool to_work = to_parent.kind == Node::Kind::WorksDir;
  Place dest_parent = to_parent.place;
  if (!to_work && dest_parent.work_id == from.place.work_id &&
      (from.work || dest_parent.folder == from.place.folder ||
       dest_parent.folder.starts_with(from.place.folder + "/")))
    throw Error(EINVAL, "cannot move a folder into itself");
  if (target) {
    if (target->kind != Node::Kind::Dir || target->is_inbox())
      throw Error(EPERM, "cannot replace works/, inbox/ or blobs/");
    if (target->place == from.place) return;  // same directory
    remove_dir_node(*target);                 // ENOTEMPTY unless empty
  }
  // New files inside that are still being written become rows now, so that
  // they move with the folder (their writers go on writing to them).
  for (const std::shared_ptr<OpenFile>& of : pending_under(from.place)) commit_now(of);
  if (from.work && to_work) {
    cat.rename_work(from.work->id, raw);
    return;
  }
  if (from.folder && !to_work) {
    cat.move_folder(from.folder->id, dest_parent, raw);
    return;
  }
  // A work becoming a sub-folder, or a sub-folder becoming a work: make the
  // new directory, move everything into it, drop the old one.
  cat.batch([&] {
    Place dest;
    uint32_t mode = from.work ? from.work->mode : from.folder->mode;
    if (to_work) {
      Work w = cat.create_work(raw, false, mode);
      dest = Place{w.id, ""};
    } else {
      Folder f = cat.create_folder(dest_parent, raw, false, mode);
      dest = Place{f.work_id, f.path};
    }
    cat.move_contents(from.place, dest);
    if (from.work)
      cat.delete_work(from.work->id);
    else
      cat.delete_folder(from.folder->id);
  });
}

}  // namespace recall
