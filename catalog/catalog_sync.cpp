// Catalog: what sync needs — named values, outbox consumption, applying
// pulled rows without echoing them into the outbox, merging duplicates.
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>

#include "base/error.h"
#include "base/ids.h"
#include "catalog/catalog.h"
#include "catalog/catalog_internal.h"
#include "catalog/schema.h"
#include "catalog/synced_tables.h"

namespace recall {

std::optional<std::string> Catalog::meta(const std::string& key) {
  ReadLease r(*this);
  Stmt s = r.db().cached("SELECT value FROM meta WHERE key = ?");
  s.bind(key);
  if (!s.step()) return std::nullopt;
  return s.text(0);
}

void Catalog::set_meta(const std::string& key, const std::string& value) {
  WriteScope s(*this);
  s.db()
      .cached(
          "INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = "
          "excluded.value")
      .bind(key, value)
      .run();
  s.commit();
}

void Catalog::erase_meta(const std::string& key) {
  WriteScope s(*this);
  s.db().cached("DELETE FROM meta WHERE key = ?").bind(key).run();
  s.commit();
}

void Catalog::drop_outbox_through(int64_t seq, const std::vector<Recheck>& refused,
                                  const std::vector<std::pair<std::string, std::string>>& edited) {
  WriteScope s(*this);
  for (const Recheck& c : refused)
    s.db()
        .cached(
            "INSERT INTO sync_recheck(tbl, row_id, seq) VALUES(?, ?, ?) "
            "ON CONFLICT(tbl, row_id) DO UPDATE SET seq = excluded.seq")
        .bind(c.table, c.key, c.seq)
        .run();
  // The server has the content pushed now (or a newer one, which a pull
  // brings): the next edit here starts from it. Not a change to push. A row
  // pushed without an edit left no base behind: none is as if its base
  // were its content (Catalog::set_asset_content).
  s.db().exec("UPDATE sync_apply SET active = 1");
  for (const auto& [id, sha] : edited)
    s.db()
        .cached("UPDATE assets SET content_base = ?2 WHERE id = ?1 AND content_base IS NOT ?2")
        .bind(id, sha)
        .run();
  s.db().exec("UPDATE sync_apply SET active = 0");
  s.db().cached("DELETE FROM outbox WHERE seq <= ?").bind(seq).run();
  s.commit();
}

std::vector<Catalog::Recheck> Catalog::rechecks(size_t limit) {
  ReadLease r(*this);
  Stmt st = r.db().cached("SELECT tbl, row_id, seq FROM sync_recheck ORDER BY seq LIMIT ?");
  st.bind(static_cast<int64_t>(limit));
  std::vector<Recheck> out;
  while (st.step()) out.push_back({st.text(0), st.text(1), st.int64(2)});
  return out;
}

void Catalog::drop_rechecks(const std::vector<Recheck>& done) {
  if (done.empty()) return;
  WriteScope s(*this);
  for (const Recheck& c : done)
    s.db()
        .cached("DELETE FROM sync_recheck WHERE tbl = ? AND row_id = ? AND seq <= ?")
        .bind(c.table, c.key, c.seq)
        .run();
  s.commit();
}

void Catalog::recheck_later(const std::vector<Recheck>& rows) {
  if (rows.empty()) return;
  WriteScope s(*this);
  for (const Recheck& c : rows)
    s.db()
        .cached(std::string("INSERT INTO sync_recheck(tbl, row_id, seq) VALUES(?, ?, ") +
                catalog_detail::kLastOutboxSeq +
                ") ON CONFLICT(tbl, row_id) DO UPDATE SET seq = max(seq, " + "excluded.seq)")
        .bind(c.table, c.key)
        .run();
  s.commit();
}

bool Catalog::has_row(const std::string& table, const std::string& key) {
  const SyncedTable& t = synced_table(table);
  ReadLease r(*this);
  return r.db()
      .cached(std::string("SELECT 1 FROM ") + t.name + " WHERE " + t.key + " = ?")
      .bind(key)
      .step();
}

namespace {

// Binds one JSON value to a parameter as the column's local type.
void bind_json(Stmt& s, int i, const SyncedColumn& c, const nlohmann::json& v) {
  if (v.is_null()) {
    s.bind_one(i, std::nullopt);
    return;
  }
  switch (c.type) {
    case SyncedColumn::Type::Int:
      s.bind_one(i, v.is_boolean() ? int64_t{v.get<bool>()} : v.get<int64_t>());
      return;
    case SyncedColumn::Type::Json:
      s.bind_one(i, v.dump());
      return;
    case SyncedColumn::Type::Blob: {
      std::string hex = v.get<std::string>();
      if (hex.empty()) {  // sent by catalogs of schema 1 for NULL
        s.bind_one(i, std::nullopt);
        return;
      }
      std::vector<unsigned char> bytes(hex.size() / 2);
      for (size_t k = 0; k < bytes.size(); ++k)
        bytes[k] = static_cast<unsigned char>(std::stoi(hex.substr(2 * k, 2), nullptr, 16));
      s.bind_one(i, std::span<const unsigned char>(bytes));
      return;
    }
    default:
      s.bind_one(i, v.get<std::string>());
  }
}

std::string upsert_sql(const SyncedTable& t) {
  std::string cols, params, sets, now, then;
  int i = 1;
  for (const SyncedColumn& c : t.columns) {
    if (i > 1) {
      cols += ", ";
      params += ", ";
    }
    cols += c.name;
    params += "?" + std::to_string(i++);
    if (std::string(c.name) == t.key) continue;
    if (!sets.empty()) sets += ", ";
    // blobs_meta rows only gain what they lacked; others take the server's.
    // (An empty blob, pulled from a catalog of schema 1, counts as lacking.)
    std::string mine =
        c.type == SyncedColumn::Type::Blob
            ? std::string("CASE WHEN length(") + c.name + ") > 0 THEN " + c.name + " END"
            : std::string(c.name);
    std::string value = t.version ? std::string("excluded.") + c.name
                                  : "coalesce(" + mine + ", excluded." + c.name + ")";
    sets += std::string(c.name) + " = " + value;
    now += (now.empty() ? "" : ", ") + std::string(c.name);
    then += (then.empty() ? "" : ", ") + value;
  }
  // A row as it is here already is not a change (rows read back after a
  // push mostly are).
  return std::string("INSERT INTO ") + t.name + "(" + cols + ", local_only) VALUES(" + params +
         ", 0) ON CONFLICT(" + t.key + ") DO UPDATE SET " + sets + " WHERE (" + now + ") IS NOT (" +
         then + ")";
}

// One holder of a blob has one row here (UNIQUE(sha256, device_id)), but
// the server may hold two under different ids: the cloud's row is written
// by each device that uploads the blob, and before its id came from the
// blob (cloud_holder_row_id) each gave it a random one. Such a pulled row
// failed the whole pull, for good, on every device of the account. Now the
// smaller id is kept, on every device alike: false when the pulled row is
// the one to leave out (the row it would replace goes, without a push).
bool keep_one_holder_row(Db& db, const std::string& id, const nlohmann::json& j) {
  if (!j.contains("sha256") || !j["sha256"].is_string() || !j.contains("device_id") ||
      !j["device_id"].is_string())
    return true;
  Stmt s = db.cached("SELECT id FROM device_blobs WHERE sha256 = ? AND device_id = ? AND id <> ?");
  s.bind(j["sha256"].get<std::string>(), j["device_id"].get<std::string>(), id);
  if (!s.step()) return true;
  std::string other = s.text(0);
  s = Stmt();
  if (other < id) return false;
  db.cached("DELETE FROM device_blobs WHERE id = ?").bind(other).run();
  return true;
}

// The newest stamp of a pulled row (0 when it has none).
int64_t newest_stamp_in(const nlohmann::json& row) {
  int64_t newest = 0;
  for (const char* k : {"updated_ms", "content_ms", "place_ms", "attrs_ms", "mtime_ms"}) {
    auto it = row.find(k);
    if (it != row.end() && it->is_number_integer()) newest = std::max(newest, it->get<int64_t>());
  }
  return newest;
}

// Notes what a row showed before it changes: its name, in its folder.
void note_names(Db& db, const std::string& table, const std::string& key,
                Catalog::ApplyReport& report) {
  auto note = [&](std::optional<std::string> work, const std::string& folder,
                  const std::string& name) {
    report.stale_names.emplace_back(Place{std::move(work), folder}, name);
  };
  if (table == "assets") {
    // An asset's links go with it when it is deleted.
    Stmt s = db.cached(
        "SELECT work_id, folder, filename FROM assets WHERE id = ?1 UNION ALL "
        "SELECT from_id, folder, name FROM edges WHERE to_id = ?1");
    s.bind(key);
    while (s.step()) note(s.opt_text(0), s.text(1), s.text(2));
  } else if (table == "edges") {
    Stmt s = db.cached("SELECT from_id, folder, name, to_id FROM edges WHERE id = ?");
    s.bind(key);
    if (s.step()) {
      note(s.opt_text(0), s.text(1), s.text(2));
      report.changed_assets.push_back(s.text(3));  // one link fewer or moved
    }
  } else if (table == "folders") {
    Stmt s = db.cached("SELECT work_id, path FROM folders WHERE id = ?");
    s.bind(key);
    if (s.step()) {
      std::string path = s.text(1);
      size_t slash = path.rfind('/');
      note(s.opt_text(0), slash == std::string::npos ? "" : path.substr(0, slash),
           slash == std::string::npos ? path : path.substr(slash + 1));
    }
  } else if (table == "works") {
    Stmt s = db.cached("SELECT title FROM works WHERE id = ?");
    s.bind(key);
    if (s.step()) report.stale_titles.push_back(s.text(0));
  }
}

// The bytes of an asset that a pulled row gives other content (`now`) or
// deletes (nullopt): held, so that the mount frees them after the pull
// (Vfs::release_held_blobs) if nothing names them then.
// Returns those bytes (the asset's content before), nullopt when none.
std::optional<std::string> hold_bytes_of(Db& db, const std::string& asset_id,
                                         const std::optional<std::string>& now) {
  Stmt c = db.cached("SELECT sha256 FROM assets WHERE id = ?1 AND sha256 IS NOT ?2");
  c.bind(asset_id, now);
  if (!c.step()) return std::nullopt;
  std::string before = c.text(0);
  c = Stmt();
  db.cached(std::string("INSERT INTO blob_holds(sha256, seq) VALUES(?, ") +
            catalog_detail::kLastOutboxSeq + ") ON CONFLICT(sha256) DO NOTHING")
      .bind(before)
      .run();
  return before;
}

// Two devices made the same folder (mkdir on both before they synced), or
// moved folders to one place: two rows claim it. The row with the smaller
// id stays on every device, and the other goes, its deletion pushed (the
// folder is a place; what is in it names the place, not the row). Returns
// whether the remote row (`key`, `row`) is to be applied.
bool settle_folder_place(Db& db, const std::string& key, const nlohmann::json& row,
                         Catalog::ApplyReport& report) {
  if (!row.contains("path") || !row["path"].is_string()) return true;
  std::optional<std::string> work;
  if (row.contains("work_id") && row["work_id"].is_string()) work = row["work_id"];
  Stmt c = db.cached("SELECT id FROM folders WHERE work_id IS ?1 AND path = ?2 AND id <> ?3");
  c.bind(work, row["path"].get<std::string>(), key);
  if (!c.step()) return true;
  std::string mine = c.text(0);
  c = Stmt();
  if (mine < key) return false;  // ours stays; the device that made that row drops it
  note_names(db, "folders", mine, report);
  // The folder stays, under the other row: so does a pin of it, which the
  // removal of this row would take (schema v5's pinned_places_folder_gone).
  Stmt pin = db.cached(
      "SELECT pinned_ms FROM pinned_places WHERE scope = coalesce(?1, 'inbox') AND folder = ?2");
  pin.bind(work, row["path"].get<std::string>());
  std::optional<int64_t> pinned_ms;
  if (pin.step()) pinned_ms = pin.int64(0);
  pin = Stmt();
  db.exec("UPDATE sync_apply SET active = 0");  // a change of this device: pushed
  db.cached("DELETE FROM folders WHERE id = ?").bind(mine).run();
  db.exec("UPDATE sync_apply SET active = 1");
  if (pinned_ms)
    db.cached(
          "INSERT INTO pinned_places(scope, folder, pinned_ms) VALUES(coalesce(?1, 'inbox'), ?2, "
          "?3) ON CONFLICT DO NOTHING")
        .bind(work, row["path"].get<std::string>(), *pinned_ms)
        .run();
  return true;
}

// (work id or none for the inbox, folder path): a Place, ordered.
using Spot = std::pair<std::optional<std::string>, std::string>;

// The folder an applied row puts something in (a file's, a link's, a
// folder's parent), when that is a sub-folder.
std::optional<Spot> place_of(const std::string& table, const nlohmann::json& row) {
  auto text = [&](const char* key) -> std::optional<std::string> {
    auto it = row.find(key);
    if (it == row.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  std::optional<std::string> work, folder;
  if (table == "assets") {
    work = text("work_id");
    folder = text("folder");
  } else if (table == "edges") {
    work = text("from_id");
    folder = text("folder");
  } else if (table == "folders") {
    work = text("work_id");
    if (std::optional<std::string> path = text("path")) {
      size_t slash = path->rfind('/');
      if (slash != std::string::npos) folder = path->substr(0, slash);
    }
  }
  if (!folder || folder->empty()) return std::nullopt;
  return Spot{work, *folder};
}

// Rows applied in one pull may name a folder this device has no row for:
// concurrent moves and removals on two devices can leave the server so
// (a folder moved away on one device while a file was put in it on the
// other). Files in a folder without a row would be shown nowhere, so the
// missing folders are made here, as changes of this device (pushed). Where
// another device has a row for the same folder, the smaller id stays
// (settle_folder_place).
void make_missing_folders_in(Db& db, const std::set<Spot>& places, Catalog::ApplyReport& report) {
  for (const auto& [work, folder] : places) {
    if (work) {
      Stmt w = db.cached("SELECT 1 FROM works WHERE id = ?");
      w.bind(*work);
      if (!w.step()) continue;  // its work is gone: the row named nothing here
    }
    std::string at;
    for (size_t from = 0; from <= folder.size();) {
      size_t slash = folder.find('/', from);
      if (slash == std::string::npos) slash = folder.size();
      std::string path = folder.substr(0, slash);
      Stmt f = db.cached("SELECT 1 FROM folders WHERE work_id IS ? AND path = ?");
      f.bind(work, path);
      bool exists = f.step();
      f = Stmt();
      if (!exists) {
        int64_t now = catalog_detail::stamp_ms(db);
        db.cached(
              "INSERT INTO folders(id, work_id, path, mode, mtime_ns, local_only, created_ms, "
              "updated_ms) VALUES(?,?,?,493,?,0,?,?)")
            .bind(new_row_id(), work, path, now_ns(), now, now)
            .run();
        report.stale_names.emplace_back(Place{work, at},
                                        path.substr(at.empty() ? 0 : at.size() + 1));
      }
      at = path;
      from = slash + 1;
    }
  }
}

}  // namespace

void Catalog::set_unrecorded_below(std::function<bool(const Place&)> fn) {
  std::lock_guard lock(unrecorded_mu_);
  unrecorded_below_ = std::move(fn);
}

Catalog::ApplyReport Catalog::apply_remote(const std::vector<RemoteRow>& rows) {
  auto unrecorded_below = [&](const Place& place) {
    std::lock_guard lock(unrecorded_mu_);
    return unrecorded_below_ && unrecorded_below_(place);
  };
  ApplyReport report;
  WriteScope s(*this);
  Db& db = s.db();
  db.exec("UPDATE sync_apply SET active = 1");
  std::set<Spot> placed;  // where applied rows put files, links and folders
  auto pending = [&](const RemoteRow& r) {
    return db.cached("SELECT 1 FROM outbox WHERE tbl = ? AND row_id = ? LIMIT 1")
        .bind(r.table, r.key)
        .step();
  };
  const auto& tables = synced_tables();
  int64_t seen_stamp = 0;
  // Upserts from the outside in (works first), deletes from the inside out.
  for (const SyncedTable& t : tables) {
    std::string sql = upsert_sql(t);
    for (const RemoteRow& r : rows) {
      if (r.deleted || r.table != t.name) continue;
      nlohmann::json j = nlohmann::json::parse(r.payload);
      seen_stamp = std::max(seen_stamp, newest_stamp_in(j));  // applied or not: seen
      if (pending(r)) {
        report.pending++;
        continue;
      }
      if (r.table == "device_blobs" && !keep_one_holder_row(db, r.key, j)) continue;
      if (r.table == "folders" && !settle_folder_place(db, r.key, j, report)) {
        // Read back next time: the row that stays may be going (its own
        // device settled on a third one), and then this one is the folder.
        report.unapplied.push_back({r.table, r.key, 0});
        continue;
      }
      note_names(db, r.table, r.key, report);
      std::optional<std::string> content_before;  // an asset's, when the row gives it other content
      if (r.table == "assets" && j.contains("sha256") && j["sha256"].is_string())
        content_before = hold_bytes_of(db, r.key, j["sha256"].get<std::string>());
      if (r.table == "edges" && j.contains("to_id") && j["to_id"].is_string())
        report.changed_assets.push_back(j["to_id"].get<std::string>());  // one link more
      Stmt st = db.cached(sql);
      int i = 1;
      for (const SyncedColumn& c : t.columns)
        // The content pulled is the content the server has: an edit here
        // starts from it.
        bind_json(st, i++, c,
                  j.value(std::string_view(c.name) == "content_base" ? "sha256" : c.name,
                          nlohmann::json()));
      try {
        st.run();
      } catch (const Error& e) {
        // A foreign key: what the row names is not here. Only this statement
        // is undone; the rest of the pull applies.
        if (e.code() != ENOENT) throw;
        report.unapplied.push_back({r.table, r.key, 0});
        continue;
      }
      if (db.changes() > 0) {
        report.applied++;
        // A new or renamed work or folder: listings of its parent are stale.
        if (r.table == "works" || r.table == "folders") note_names(db, r.table, r.key, report);
        if (r.table == "assets") report.changed_assets.push_back(r.key);
        // An edit made elsewhere of a file pinned here stays on this device
        // too (the mount fetches it: PinKeeper).
        if (content_before)
          catalog_detail::pin_follows_content(db, *content_before, j["sha256"].get<std::string>());
        if (std::optional<Spot> p = place_of(r.table, j)) placed.insert(*p);
      }
    }
  }
  // Changes made here from now on are stamped at least as new as these.
  catalog_detail::raise_stamp_floor(db, seen_stamp);
  // A row removed elsewhere that stays here: queued again (as this device's
  // change), so that the server brings it back too.
  auto keep = [&](const std::string& table, const std::string& key) {
    db.exec("UPDATE sync_apply SET active = 0");
    db.cached("UPDATE " + table + " SET updated_ms = ? WHERE id = ?")
        .bind(catalog_detail::stamp_ms(db), key)
        .run();
    db.exec("UPDATE sync_apply SET active = 1");
    report.kept++;
  };
  for (auto t = tables.rbegin(); t != tables.rend(); ++t) {
    std::vector<const RemoteRow*> deletes;
    for (const RemoteRow& r : rows)
      if (r.deleted && r.table == t->name) deletes.push_back(&r);
    // A folder removed with its sub-folders (rm -r) goes after them: its
    // sub-folder would otherwise count as content that keeps it.
    if (std::string(t->name) == "folders") {
      std::map<std::string, size_t> depth;
      for (const RemoteRow* r : deletes) {
        Stmt f = db.cached("SELECT path FROM folders WHERE id = ?");
        f.bind(r->key);
        std::string path = f.step() ? f.text(0) : std::string();
        depth[r->key] = path.empty() ? 0 : static_cast<size_t>(std::ranges::count(path, '/')) + 1;
      }
      std::stable_sort(deletes.begin(), deletes.end(), [&](const RemoteRow* x, const RemoteRow* y) {
        return depth[x->key] > depth[y->key];
      });
    }
    for (const RemoteRow* row : deletes) {
      const RemoteRow& r = *row;
      if (pending(r)) {
        report.pending++;
        continue;
      }
      std::string table = t->name;
      if (table == "works" || table == "folders") {
        // A container that still holds content here stays, and is queued
        // again so that the server brings it back too.
        bool used = false;
        if (table == "works") {
          Stmt u = db.cached(
              "SELECT EXISTS(SELECT 1 FROM assets WHERE work_id = ?1) OR "
              "EXISTS(SELECT 1 FROM edges WHERE from_id = ?1) OR "
              "EXISTS(SELECT 1 FROM folders WHERE work_id = ?1)");
          u.bind(r.key);
          u.step();
          used = u.int64(0) != 0 || unrecorded_below(Place{r.key, ""});
        } else {
          Stmt f = db.cached("SELECT work_id, path FROM folders WHERE id = ?");
          f.bind(r.key);
          if (f.step()) {
            auto work = f.opt_text(0);
            std::string path = f.text(1);
            f = Stmt();
            Stmt u = db.cached(
                "SELECT EXISTS(SELECT 1 FROM assets WHERE work_id IS ?1 AND "
                "(folder = ?2 OR substr(folder, 1, length(?2) + 1) = ?2 || '/')) OR "
                "EXISTS(SELECT 1 FROM folders WHERE work_id IS ?1 AND "
                "substr(path, 1, length(?2) + 1) = ?2 || '/')");
            u.bind(work, path);
            u.step();
            used = u.int64(0) != 0 || unrecorded_below(Place{work, path});
          }
        }
        if (used) {
          keep(table, r.key);
          continue;
        }
      }
      note_names(db, table, r.key, report);
      if (table == "assets") {
        hold_bytes_of(db, r.key, std::nullopt);
        db.cached("DELETE FROM edges WHERE to_id = ?").bind(r.key).run();
      }
      db.cached(std::string("DELETE FROM ") + table + " WHERE " + t->key + " = ?")
          .bind(r.key)
          .run();
      if (db.changes() > 0) {
        report.applied++;
        if (table == "assets") report.changed_assets.push_back(r.key);
      }
    }
  }
  db.exec("UPDATE sync_apply SET active = 0");
  make_missing_folders_in(db, placed, report);
  s.commit();
  return report;
}

void Catalog::upsert_device(const std::string& id, const std::string& name,
                            const std::optional<std::string>& peer_address,
                            std::optional<int64_t> last_seen_ms) {
  WriteScope s(*this);
  s.db()
      .cached(
          "INSERT INTO devices(id, name, peer_address, last_seen_ms, created_ms) VALUES(?,?,?,?,?) "
          "ON CONFLICT(id) DO UPDATE SET name = excluded.name, peer_address = "
          "excluded.peer_address, "
          "last_seen_ms = excluded.last_seen_ms")
      .bind(id, name, peer_address, last_seen_ms, now_ms())
      .run();
  s.commit();
}

std::optional<Catalog::Device> Catalog::get_device(const std::string& id) {
  ReadLease r(*this);
  Stmt s = r.db().cached("SELECT id, name, peer_address, last_seen_ms FROM devices WHERE id = ?");
  s.bind(id);
  if (!s.step()) return std::nullopt;
  return Device{s.text(0), s.text(1), s.opt_text(2), s.opt_int64(3)};
}

void Catalog::for_each_asset(const std::function<bool(const Asset&)>& fn) {
  ReadLease r(*this);
  Stmt s = r.db().cached(std::string("SELECT ") + catalog_detail::kAssetCols +
                         " FROM assets ORDER BY id");
  while (s.step())
    if (!fn(catalog_detail::asset_from(s))) return;
}

void Catalog::prepare_for_another_account() {
  WriteScope s(*this);
  Db& db = s.db();
  db.exec("UPDATE sync_apply SET active = 1");  // not this device's changes: not queued
  db.cached("DELETE FROM device_blobs WHERE device_id <> ?").bind(device_id_).run();
  db.cached("DELETE FROM devices WHERE id <> ?").bind(device_id_).run();
  db.exec("UPDATE sync_apply SET active = 0");
  db.exec(queue_every_row_sql());
  s.commit();
}

void Catalog::merge_asset(const std::string& from, const std::string& to) {
  WriteScope s(*this);
  Db& db = s.db();
  db.cached("UPDATE edges SET to_id = ?2, updated_ms = ?3 WHERE to_id = ?1")
      .bind(from, to, catalog_detail::stamp_ms(db))
      .run();
  db.cached("DELETE FROM assets WHERE id = ?").bind(from).run();
  s.commit();
}

size_t Catalog::make_missing_folders() {
  WriteScope s(*this);
  Db& db = s.db();
  std::set<Spot> places;
  Stmt q = db.cached(
      "SELECT work_id, folder FROM assets WHERE folder <> '' UNION "
      "SELECT from_id, folder FROM edges WHERE folder <> '' UNION "
      "SELECT work_id, path FROM folders WHERE instr(path, '/') > 0");
  while (q.step()) places.emplace(q.opt_text(0), q.text(1));
  q = Stmt();
  ApplyReport report;  // (every prefix of each place: a folder's own row is one)
  make_missing_folders_in(db, places, report);
  if (report.stale_names.empty()) return 0;  // nothing written
  s.commit();
  return report.stale_names.size();
}

}  // namespace recall
