#include "sync/sync_engine.h"

#include <array>
#include <cctype>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "base/error.h"
#include "base/ids.h"
#include "catalog/synced_tables.h"

namespace recall {
namespace {

constexpr std::chrono::seconds kConnectTimeout{5};
constexpr size_t kPushBatch = 10000;
constexpr int kPushAttempts = 4;  // a push aborted by a deadlock is tried again at once

// The rows that live in a work, by the column that names it.
constexpr std::pair<const char*, const char*> kWorkChildren[] = {
    {"assets", "work_id"}, {"edges", "from_id"}, {"folders", "work_id"}};

std::string column_list(const SyncedTable& t, const char* prefix = "") {
  std::string out;
  for (const SyncedColumn& c : t.columns) {
    if (!out.empty()) out += ", ";
    out += std::string(prefix) + c.name;
  }
  return out;
}

// An asset's column groups (catalog/catalog_internal.h): each column and
// the stamp of its group ("" for the columns of no group).
std::string asset_group_of(std::string_view column) {
  for (std::string_view c : {"sha256", "bytes", "mime", "page_count", "mtime_ns", "content_ms"})
    if (column == c) return "content_ms";
  for (std::string_view c : {"work_id", "folder", "filename", "place_ms"})
    if (column == c) return "place_ms";
  for (std::string_view c : {"role", "mode", "attrs_ms"})
    if (column == c) return "attrs_ms";
  return "";
}

// An asset row merges group by group: each group takes the pushed values
// when they are at least as new as the server's (a row pushed by a device
// older than these stamps changed every group at its updated_ms). A
// deleted row comes back whole, with an edit of its content only (see
// upsert_sql).
std::string asset_merge_sets(const SyncedTable& t) {
  auto stamp = [](const std::string& row, const std::string& g) {
    return "coalesce(" + row + "." + g + ", " + row + ".updated_ms)";
  };
  std::string sets;
  for (const SyncedColumn& c : t.columns) {
    std::string name = c.name;
    if (name == t.key) continue;
    if (!sets.empty()) sets += ", ";
    std::string g = asset_group_of(name);
    if (g.empty()) {
      sets += name + " = " +
              (name == "updated_ms"
                   ? "CASE WHEN t.deleted THEN EXCLUDED.updated_ms ELSE greatest(t.updated_ms, "
                     "EXCLUDED.updated_ms) END"
                   : "EXCLUDED." + name);
      continue;
    }
    std::string wins = "t.deleted OR " + stamp("t", g) + " IS NULL OR " + stamp("t", g) +
                       " <= " + stamp("EXCLUDED", g);
    bool is_stamp = name == g;
    sets += name + " = CASE WHEN " + wins + " THEN " +
            (is_stamp ? stamp("EXCLUDED", g) : "EXCLUDED." + name) + " ELSE " +
            (is_stamp ? stamp("t", g) : "t." + name) + " END";
  }
  return sets;
}

// A row of a table without versions (blobs_meta, shared by the account's
// devices) only gains what it lacks; a blob column sent as '' by a catalog
// of schema 1 counts as lacking. Other rows take the pushed values.
std::string plain_sets(const SyncedTable& t) {
  std::string sets;
  for (const SyncedColumn& c : t.columns) {
    if (std::string(c.name) == t.key) continue;
    if (!sets.empty()) sets += ", ";
    std::string mine = "t." + std::string(c.name), theirs = "EXCLUDED." + std::string(c.name);
    if (c.type == SyncedColumn::Type::Blob) {
      mine = "nullif(" + mine + ", '')";
      theirs = "nullif(" + theirs + ", '')";
    }
    sets += std::string(c.name) + " = " +
            (t.version ? theirs : "coalesce(" + mine + ", " + theirs + ")");
  }
  return sets;
}

// One statement per table: every upsert of a batch at once.
// `held_elsewhere`: asset rows naming bytes their device does not hold
// (content moved from another file, `mv a b`). Such a row is taken only
// while a holder has the bytes, or if it names them already, or if the
// server's content is newer (the merged row will not name them): the last
// holder may have dropped them (see SyncEngine::confirm_drops, which takes
// the same locks as lock_bytes_sql).
std::string upsert_sql(const SyncedTable& t, bool held_elsewhere = false) {
  std::string n = t.name;
  std::string sets = n == "assets" ? asset_merge_sets(t) : plain_sets(t);
  // owner_id comes from the token, once per statement (an InitPlan): the
  // column default would call the function for every row.
  std::string sql = "INSERT INTO recall." + n + " AS t (owner_id, " + column_list(t) +
                    ") SELECT (SELECT recall.current_owner()), " + column_list(t, "r.") +
                    " FROM jsonb_populate_recordset(NULL::recall." + n + ", $1::jsonb) r";
  if (held_elsewhere)
    sql +=
        " WHERE EXISTS (SELECT 1 FROM recall.assets s WHERE s.owner_id = (SELECT "
        "recall.current_owner()) AND s.id = r.id AND NOT s.deleted AND (s.sha256 = r.sha256 OR "
        "coalesce(s.content_ms, s.updated_ms) > coalesce(r.content_ms, r.updated_ms))) OR "
        "EXISTS (SELECT 1 FROM recall.device_blobs h WHERE h.owner_id = (SELECT "
        "recall.current_owner()) AND h.sha256 = r.sha256 AND h.present = 1 AND NOT h.deleted)";
  // A link is taken only to a file the server has: one removed elsewhere
  // meanwhile took its links with it (delete_sql).
  if (n == "edges")
    sql +=
        " WHERE EXISTS (SELECT 1 FROM recall.assets a WHERE a.owner_id = (SELECT "
        "recall.current_owner()) AND a.id = r.to_id AND NOT a.deleted)";
  sql += std::string(" ON CONFLICT (owner_id, ") + t.key + ") DO UPDATE SET " + sets +
         ", deleted = false";
  // Last writer wins: of the row, or of each group of an asset's. A
  // deleted row comes back with an edit made without knowing of the
  // delete; for an asset, only an edit of its content (the device that
  // deleted it may have dropped the bytes the deleted version names, and a
  // rename made elsewhere must not bring those back).
  // The rows taken come back, an asset's with its stamps (a row merged
  // with a newer group of the server's was taken in part): the others are
  // read back at the next pull.
  std::string taken = std::string(" RETURNING t.") + t.key + "::text";
  std::string stamps =
      n == "assets" ? ", t.content_ms::text, t.place_ms::text, t.attrs_ms::text" : "";
  if (t.version) {
    std::string v = t.version;
    if (n == "assets") {
      std::string any_newer;
      for (const char* g : {"content_ms", "place_ms", "attrs_ms"})
        any_newer += std::string(any_newer.empty() ? "" : " OR ") + "coalesce(t." + g +
                     ", t.updated_ms) <= coalesce(EXCLUDED." + g + ", EXCLUDED.updated_ms)";
      sql += " WHERE CASE WHEN t.deleted THEN t.sha256 IS DISTINCT FROM EXCLUDED.sha256 ELSE " +
             any_newer + " END";
    } else {
      sql += " WHERE t.deleted OR t." + v + " IS NULL OR t." + v + " <= EXCLUDED." + v;
    }
  }
  // What lives in a work that another device removed meanwhile (it was empty
  // there) brings the work back, as a device keeps a removed work that holds
  // content (Catalog::apply_remote): no live row is ever in a removed work.
  // A file an edit brings back brings back the links removed with it (in
  // the same transaction: its removal, or the push that removed it), and
  // their works.
  for (auto [child, column] : kWorkChildren) {
    if (n != child) continue;
    std::string owner = "(SELECT recall.current_owner())";
    std::string with = "WITH ";
    std::string works = "SELECT work FROM up";
    with += "up AS (" + sql + taken + stamps + ", t." + column + " AS work), ";
    if (n == "assets") {
      // (Every part of a statement sees the rows as they were before it:
      // `gone` reads the assets the upsert took, as they were.)
      with += "gone AS (SELECT s.id, s.txid FROM up JOIN recall.assets s ON s.owner_id = " + owner +
              " AND s.id = up.id::uuid AND s.deleted), links AS (UPDATE recall.edges l SET "
              "deleted = false FROM gone WHERE l.owner_id = " +
              owner + " AND l.to_id = gone.id AND l.deleted AND l.txid = gone.txid RETURNING " +
              "l.from_id), ";
      works += " UNION SELECT from_id FROM links";
    }
    return with + "back AS (UPDATE recall.works w SET deleted = false WHERE w.owner_id = " + owner +
           " AND w.deleted AND w.id IN (" + works + ")) SELECT " +
           (n == "assets" ? "id, content_ms, place_ms, attrs_ms" : std::string(t.key)) + " FROM up";
  }
  return sql + taken + stamps;
}

// The group stamps an asset row was pushed with, as the server returns
// them (text; "" for NULL: a row queued before catalog schema 4). Read
// from the compact payload without parsing it (a push returns 10,000 rows):
// a key in quotes followed by a colon occurs in it only as a key, since a
// string value escapes its quotes.
std::array<std::string_view, 3> asset_stamps_sent(std::string_view payload) {
  std::array<std::string_view, 3> out;
  size_t i = 0;
  for (std::string_view key : {"\"content_ms\":", "\"place_ms\":", "\"attrs_ms\":"}) {
    size_t at = payload.find(key);
    if (at != std::string_view::npos) {
      std::string_view v = payload.substr(at + key.size());
      size_t n = 0;
      while (n < v.size() && (std::isdigit(static_cast<unsigned char>(v[n])) || v[n] == '-')) ++n;
      out[i] = v.substr(0, n);  // "" for null
    }
    ++i;
  }
  return out;
}

// Tombstones, applied only to the version the deleter saw (or older); an
// asset's, to the content it saw or older content (its own edit made just
// before the removal, not pushed, is newer than what the server has),
// whatever was renamed or moved since (a delete wins over a rename, an edit
// of the content made elsewhere over a delete). A work goes only when
// nothing lives in it (a file, link or folder added elsewhere meanwhile
// keeps it).
std::string delete_sql(const SyncedTable& t) {
  std::string n = t.name;
  std::string sql = "UPDATE recall." + n +
                    " t SET deleted = true FROM jsonb_populate_recordset(NULL::recall." + n +
                    ", $1::jsonb) d WHERE t.owner_id = (SELECT recall.current_owner()) AND t." +
                    t.key + " = d." + t.key + " AND NOT t.deleted";
  if (n == "assets") {
    // A removed file's links go with it, also one made elsewhere meanwhile
    // (each device removes them with the file when it pulls the removal).
    sql +=
        " AND (t.sha256 IS NOT DISTINCT FROM d.sha256 OR t.content_ms <= d.content_ms) RETURNING "
        "t.id";
    return "WITH gone AS (" + sql +
           "), links AS (UPDATE recall.edges e SET deleted = true FROM gone WHERE e.owner_id = "
           "(SELECT recall.current_owner()) AND e.to_id = gone.id AND NOT e.deleted) "
           "SELECT id::text FROM gone";
  }
  if (t.version)
    sql += std::string(" AND (t.") + t.version + " IS NULL OR t." + t.version + " <= d." +
           t.version + ")";
  if (n == "works")
    for (auto [child, column] : kWorkChildren)
      sql += std::string(" AND NOT EXISTS (SELECT 1 FROM recall.") + child +
             " c WHERE c.owner_id = t.owner_id AND c." + column + " = t.id AND NOT c.deleted)";
  return sql + " RETURNING t." + t.key + "::text";
}

std::string pull_sql(const SyncedTable& t) {
  return std::string("SELECT t.txid::text, t.rev, t.deleted, t.") + t.key +
         "::text, (to_jsonb(t) - 'owner_id' - 'rev' - 'txid' - 'deleted')::text FROM recall." +
         t.name +
         " t WHERE (t.txid, t.rev) > ($1::xid8, $2::bigint) AND t.txid < $3::xid8 "
         "ORDER BY t.txid, t.rev";
}

// Serialises a push naming bytes its device does not hold with the drop of
// those bytes by their holder (confirm_drops): one advisory lock per
// (account, sha256). $1: a JSON array of asset rows (shared: the push) or
// of sha256 strings (exclusive: the drop); taken in a sorted order.
std::string lock_bytes_sql(bool exclusive) {
  std::string key = "hashtextextended((SELECT recall.current_owner())::text || s, 0)";
  if (exclusive)
    return "SELECT pg_advisory_xact_lock(" + key +
           ") FROM (SELECT DISTINCT s FROM jsonb_array_elements_text($1::jsonb) s ORDER BY 1) x";
  return "SELECT pg_advisory_xact_lock_shared(" + key +
         ") FROM (SELECT DISTINCT e->>'sha256' s FROM jsonb_array_elements($1::jsonb) e WHERE "
         "e->>'sha256' IS NOT NULL ORDER BY 1) x";
}

// The server's rows for keys this device pushed (read back: see
// Catalog::rechecks), in pull_sql's columns. $1: a JSON array of objects
// holding the key.
std::string recheck_sql(const SyncedTable& t) {
  return std::string("SELECT t.txid::text, t.rev, t.deleted, t.") + t.key +
         "::text, (to_jsonb(t) - 'owner_id' - 'rev' - 'txid' - 'deleted')::text FROM recall." +
         t.name + " t JOIN jsonb_populate_recordset(NULL::recall." + t.name +
         ", $1::jsonb) d ON t." + t.key + " = d." + t.key +
         " WHERE t.owner_id = (SELECT recall.current_owner())";
}

}  // namespace

SyncEngine::SyncEngine(Library& lib, Credentials creds) : lib_(lib), creds_(std::move(creds)) {}

void SyncEngine::connect() {
  if (conn_.ok()) return;
  conn_ = PgConn::connect(creds_.server, kConnectTimeout);
  PgTx tx(conn_);
  present_token();
  tx.commit();
}

void SyncEngine::present_token() {
  PgResult r = conn_.query("SELECT set_config('recall.token', $1, true), recall.current_owner()",
                           {creds_.token});
  if (r.is_null(0, 1))
    throw Error(EACCES,
                "the server refused this library's session token (unknown or expired); "
                "sign in again with a new token");
}

SyncEngine::Account SyncEngine::account() {
  connect();
  PgTx tx(conn_);
  present_token();
  PgResult r = conn_.query("SELECT id::text, name FROM recall.whoami()");
  tx.commit();
  return {r.text(0, 0), r.text(0, 1)};
}

void SyncEngine::register_device(const std::optional<std::string>& peer_address) {
  connect();
  PgTx tx(conn_);
  present_token();
  conn_.query(
      "INSERT INTO recall.devices(id, name, last_seen_ms, created_ms, peer_address) "
      "VALUES ($1, $2, $3, $3, $4) ON CONFLICT (owner_id, id) DO UPDATE SET name = EXCLUDED.name, "
      "last_seen_ms = EXCLUDED.last_seen_ms, peer_address = EXCLUDED.peer_address, deleted = false",
      {lib_.catalog().device_id(), creds_.device_name, std::to_string(now_ms()), peer_address});
  tx.commit();
}

std::string SyncEngine::peer_key() {
  connect();
  PgTx tx(conn_);
  present_token();
  // A server older than schema 2 has no peer keys: no peers, nothing else lost.
  PgResult has = conn_.query("SELECT to_regclass('recall.peer_keys') IS NOT NULL");
  if (has.text(0, 0) != "t") return "";
  PgResult r = conn_.query("SELECT encode(key, 'hex') FROM recall.peer_keys");
  tx.commit();
  return r.rows() ? r.text(0, 0) : "";
}

// An outbox payload is a compact JSON object (catalog/schema.cpp's
// json_object): its sha256 is read without parsing the whole row.
bool SyncEngine::holds_bytes_of(const std::string& payload) {
  static constexpr std::string_view kKey = "\"sha256\":\"";
  size_t at = payload.find(kKey);
  if (at == std::string::npos || payload.size() < at + kKey.size() + 64) return true;  // none
  return lib_.blobs().has(payload.substr(at + kKey.size(), 64));
}

size_t SyncEngine::push(const std::function<void(const SyncProgress&)>& progress) {
  Catalog& cat = lib_.catalog();
  uint64_t total = cat.outbox_count();
  size_t pushed = 0;
  if (total == 0) return 0;
  connect();
  for (;;) {
    std::vector<OutboxRow> batch = cat.read_outbox(0, kPushBatch);
    if (batch.empty()) break;
    // The last change of each row is the one that counts.
    std::map<std::pair<std::string, std::string>, const OutboxRow*> last;
    for (const OutboxRow& r : batch) last[{r.table, r.row_id}] = &r;
    // Per table: a JSON array of rows, and how many.
    struct Rows {
      std::string json;
      size_t count = 0;
      void add(const std::string& row) {
        json += json.empty() ? "[" : ",";
        json += row;
        ++count;
      }
      std::string array() const { return json + "]"; }
    };
    std::map<std::string, Rows> upserts, deletes;
    Rows elsewhere;  // asset rows naming bytes this device does not hold
    for (const auto& [key, r] : last) {
      if (!r->payload) continue;
      if (r->op != "upsert")
        deletes[r->table].add(*r->payload);
      else if (r->table == "assets" && !holds_bytes_of(*r->payload))
        elsewhere.add(*r->payload);
      else
        upserts[r->table].add(*r->payload);
    }
    // Each statement returns the rows it took; where it took fewer than it
    // was sent, the others are read back at the next pull. So are asset rows
    // merged with a newer group of the server's: their stamps came back
    // other than sent.
    std::set<std::string> short_of;                       // tables with a statement that took fewer
    std::set<std::pair<std::string, std::string>> taken;  // (of every statement)
    auto note_taken = [&](const std::string& table, const PgResult& r, const Rows& rows) {
      std::vector<std::string> whole;
      for (int i = 0; i < r.rows(); ++i) {
        if (r.cols() > 1) {  // an asset's stamps
          auto sent = last.find({table, r.text(i, 0)});
          if (sent == last.end() || !sent->second->payload ||
              asset_stamps_sent(*sent->second->payload) !=
                  std::array<std::string_view, 3>{r.text(i, 1), r.text(i, 2), r.text(i, 3)})
            continue;
        }
        whole.push_back(r.text(i, 0));
      }
      if (whole.size() != rows.count) short_of.insert(table);
      for (std::string& id : whole) taken.emplace(table, std::move(id));
    };
    // Two devices' pushes may lock the same rows in different orders, and
    // the server then aborts one (a deadlock): that one is tried again at
    // once, a few times, rather than after the worker's backoff.
    for (int attempt = 1;; ++attempt) {
      short_of.clear();
      taken.clear();
      try {
        PgTx tx(conn_);
        present_token();
        for (const SyncedTable& t : synced_tables()) {
          if (auto it = upserts.find(t.name); it != upserts.end())
            note_taken(t.name, conn_.query(upsert_sql(t), {it->second.array()}), it->second);
          if (std::string(t.name) == "assets" && elsewhere.count > 0) {
            conn_.query(lock_bytes_sql(false), {elsewhere.array()});
            note_taken(t.name, conn_.query(upsert_sql(t, true), {elsewhere.array()}), elsewhere);
          }
        }
        const auto& tables = synced_tables();
        for (auto t = tables.rbegin(); t != tables.rend(); ++t) {
          if (std::string(t->name) == "blobs_meta") continue;  // shared by the account's devices
          if (auto it = deletes.find(t->name); it != deletes.end())
            note_taken(t->name, conn_.query(delete_sql(*t), {it->second.array()}), it->second);
        }
        tx.commit();
        break;
      } catch (const Error& e) {
        if (e.code() != EDEADLK || attempt == kPushAttempts) throw;
        std::fprintf(stderr, "recallfs: sync: push: %s; trying again\n", e.what());
      }
    }
    std::vector<Catalog::Recheck> refused;
    for (const auto& [key, r] : last)
      if (r->payload && short_of.contains(r->table) && !taken.contains(key))
        refused.push_back({r->table, r->row_id, r->seq});
    // Only now: a failure above left the outbox as it was.
    cat.drop_outbox_through(batch.back().seq, refused);
    pushed += batch.size();
    if (progress) progress({"push", pushed, std::max<uint64_t>(total, pushed)});
  }
  cat.set_meta(kMetaLastPush, std::to_string(now_ms()));
  return pushed;
}

Catalog::ApplyReport SyncEngine::pull() {
  Catalog& cat = lib_.catalog();
  connect();
  std::string cur_txid = cat.meta(kMetaPullTxid).value_or("0");
  std::string cur_rev = cat.meta(kMetaPullRev).value_or("0");
  std::vector<Catalog::RemoteRow> rows;
  // Read back with the rows above the cursor: they may be older than it.
  std::vector<Catalog::Recheck> rechecks = cat.rechecks(kPushBatch);
  std::map<std::string, nlohmann::json> recheck_keys;  // table -> [{key: ...}]
  for (const Catalog::Recheck& c : rechecks)
    recheck_keys[c.table].push_back({{synced_table(c.table).key, c.key}});
  uint64_t max_txid = std::stoull(cur_txid);
  int64_t max_rev = std::stoll(cur_rev);
  {
    PgTx tx(conn_, "BEGIN ISOLATION LEVEL REPEATABLE READ");
    present_token();
    // Rows of transactions still running, or that started before one still
    // running, are left for the next pull: none is ever skipped.
    std::string horizon =
        conn_.query("SELECT pg_snapshot_xmin(pg_current_snapshot())::text").text(0, 0);
    for (const SyncedTable& t : synced_tables()) {
      PgResult r = conn_.query(pull_sql(t), {cur_txid, cur_rev, horizon});
      for (int i = 0; i < r.rows(); ++i) {
        uint64_t txid = std::stoull(r.text(i, 0));
        int64_t rev = r.int64(i, 1);
        if (txid > max_txid || (txid == max_txid && rev > max_rev)) {
          max_txid = txid;
          max_rev = rev;
        }
        rows.push_back({t.name, r.text(i, 3), r.text(i, 2) == "t", r.text(i, 4)});
      }
      if (auto k = recheck_keys.find(t.name); k != recheck_keys.end()) {
        PgResult b = conn_.query(recheck_sql(t), {k->second.dump()});
        std::set<std::string> found;
        for (int i = 0; i < b.rows(); ++i) {
          rows.push_back({t.name, b.text(i, 3), b.text(i, 2) == "t", b.text(i, 4)});
          found.insert(b.text(i, 3));
        }
        // A row pushed and not on the server at all was not taken (a new
        // file naming bytes no holder has any more): it goes here too.
        for (const nlohmann::json& key : k->second)
          if (std::string id = key[t.key].get<std::string>(); !found.contains(id))
            rows.push_back({t.name, id, true, "{}"});
      }
    }
    // A file comes with the description of its bytes (size, chunk manifest:
    // what a fetch needs), also when this device forgot it: a row that
    // names bytes again (a move made elsewhere) pulls no blobs_meta row.
    nlohmann::json undescribed = nlohmann::json::array();
    std::set<std::string> described;  // in this pull already
    for (const Catalog::RemoteRow& r : rows)
      if (r.table == "blobs_meta") described.insert(r.key);
    for (const Catalog::RemoteRow& r : rows) {
      if (r.table != "assets" || r.deleted) continue;
      nlohmann::json row = nlohmann::json::parse(r.payload);
      if (!row.contains("sha256") || !row["sha256"].is_string()) continue;
      std::string sha = row["sha256"].get<std::string>();
      if (!described.contains(sha) && !cat.get_blob(sha)) {
        undescribed.push_back({{"sha256", sha}});
        described.insert(sha);
      }
    }
    if (!undescribed.empty()) {
      PgResult b = conn_.query(recheck_sql(synced_table("blobs_meta")), {undescribed.dump()});
      for (int i = 0; i < b.rows(); ++i)
        rows.push_back({"blobs_meta", b.text(i, 3), b.text(i, 2) == "t", b.text(i, 4)});
    }
    PgResult devices = conn_.query(
        "SELECT id::text, name, peer_address, last_seen_ms FROM recall.devices WHERE NOT deleted");
    tx.commit();
    for (int i = 0; i < devices.rows(); ++i)
      cat.upsert_device(
          devices.text(i, 0), devices.text(i, 1), devices.opt_text(i, 2),
          devices.is_null(i, 3) ? std::nullopt : std::optional<int64_t>(devices.int64(i, 3)));
  }
  Catalog::ApplyReport report;
  if (!rows.empty()) report = cat.apply_remote(rows);
  cat.drop_rechecks(rechecks);  // (one changed again meanwhile is noted again at its push)
  cat.recheck_later(report.unapplied);
  if (max_txid != std::stoull(cur_txid) || max_rev != std::stoll(cur_rev)) {
    cat.set_meta(kMetaPullTxid, std::to_string(max_txid));
    cat.set_meta(kMetaPullRev, std::to_string(max_rev));
  }
  cat.set_meta(kMetaLastPull, std::to_string(now_ms()));
  return report;
}

std::set<std::string> SyncEngine::confirm_drops(const std::vector<std::string>& shas) {
  std::set<std::string> droppable;
  if (shas.empty()) return droppable;
  connect();
  nlohmann::json list = shas;
  PgTx tx(conn_);
  present_token();
  conn_.query(lock_bytes_sql(true), {list.dump()});
  PgResult named = conn_.query(
      "SELECT DISTINCT sha256 FROM recall.assets WHERE owner_id = (SELECT "
      "recall.current_owner()) AND NOT deleted AND sha256 IN (SELECT "
      "jsonb_array_elements_text($1::jsonb))",
      {list.dump()});
  std::set<std::string> live;
  for (int i = 0; i < named.rows(); ++i) live.insert(named.text(i, 0));
  for (const std::string& sha : shas)
    if (!live.contains(sha)) droppable.insert(sha);
  nlohmann::json gone(droppable);
  conn_.query(
      "UPDATE recall.device_blobs SET present = 0 WHERE owner_id = (SELECT "
      "recall.current_owner()) AND device_id = $1::uuid AND NOT deleted AND sha256 IN (SELECT "
      "jsonb_array_elements_text($2::jsonb))",
      {lib_.catalog().device_id(), gone.dump()});
  tx.commit();
  return droppable;
}

bool SyncEngine::upgraded() { return lib_.catalog().meta(kMetaUpgraded).has_value(); }

void SyncEngine::upgrade(const std::function<void(const SyncProgress&)>& progress) {
  if (upgraded()) return;
  register_device();
  if (progress) progress({"pull", 0, 0});
  pull();
  merge_into_account(progress);
  push(progress);
  lib_.catalog().set_meta(kMetaUpgraded, std::to_string(now_ms()));
}

void SyncEngine::merge_into_account(const std::function<void(const SyncProgress&)>& progress) {
  Catalog& cat = lib_.catalog();
  // What the account already has, as the server knows it.
  std::set<std::string> server_works, server_assets;
  std::map<std::string, std::string> work_by_title;                             // oldest first
  std::map<std::pair<std::string, std::string>, std::string> asset_by_content;  // (work, sha)
  {
    connect();
    PgTx tx(conn_);
    present_token();
    PgResult w = conn_.query(
        "SELECT id::text, title FROM recall.works WHERE NOT deleted ORDER BY created_ms, id");
    for (int i = 0; i < w.rows(); ++i) {
      server_works.insert(w.text(i, 0));
      work_by_title.emplace(w.text(i, 1), w.text(i, 0));
    }
    PgResult a = conn_.query(
        "SELECT id::text, coalesce(work_id::text, ''), sha256 FROM recall.assets "
        "WHERE NOT deleted ORDER BY created_ms, id");
    for (int i = 0; i < a.rows(); ++i) {
      server_assets.insert(a.text(i, 0));
      asset_by_content.emplace(std::make_pair(a.text(i, 1), a.text(i, 2)), a.text(i, 0));
    }
    tx.commit();
  }
  // Works by title: this library's work moves into the account's.
  std::vector<std::pair<std::string, std::string>> work_merges;  // local -> server
  cat.list_works([&](const WorkEntry& e) {
    if (server_works.count(e.work.id)) return true;
    auto it = work_by_title.find(e.work.title);
    if (it != work_by_title.end() && it->second != e.work.id)
      work_merges.emplace_back(e.work.id, it->second);
    return true;
  });
  uint64_t step = 0;
  for (const auto& [local, server] : work_merges) {
    if (!cat.get_work(server)) continue;  // not pulled (deleted meanwhile)
    cat.batch([&] {
      cat.move_contents(Place{local, ""}, Place{server, ""});
      cat.delete_work(local);
    });
    if (progress) progress({"merge", ++step, work_merges.size()});
  }
  // Assets by (work, sha256): the same file in the same place is one asset.
  std::vector<std::pair<std::string, std::string>> asset_merges;
  cat.for_each_asset([&](const Asset& a) {
    if (server_assets.count(a.id)) return true;
    auto it = asset_by_content.find({a.work_id.value_or(""), a.sha256});
    if (it != asset_by_content.end() && it->second != a.id)
      asset_merges.emplace_back(a.id, it->second);
    return true;
  });
  for (const auto& [local, server] : asset_merges) {
    if (!cat.get_asset(server)) continue;
    cat.merge_asset(local, server);
  }
}

void SyncEngine::listen() {
  connect();
  std::string id = creds_.account_id;
  std::erase(id, '-');
  conn_.exec("LISTEN recall_" + id);
}

bool SyncEngine::notified() { return !conn_.notifications().empty(); }

}  // namespace recall
