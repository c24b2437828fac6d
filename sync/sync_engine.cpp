#include "sync/sync_engine.h"

#include <array>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "base/error.h"
#include "base/ids.h"
#include "catalog/synced_tables.h"
#include "sync/sync_statements.h"

namespace recall {
namespace {
using namespace sync_statements;

constexpr std::chrono::seconds kConnectTimeout{5};
constexpr size_t kPushBatch = 10000;
constexpr int kPushAttempts = 4;  // a push aborted by a deadlock is tried again at once

}  // namespace

SyncEngine::SyncEngine(Library& lib, Credentials creds) : lib_(lib), creds_(std::move(creds)) {}

void SyncEngine::connect() {
  if (conn_.ok()) return;
  conn_ = PgConn::connect(creds_.server, kConnectTimeout, cancel_);
  conn_.set_answer_timeout(answer_timeout_);
  // A device that vanishes in the middle of a push (its connection is not
  // closed, as when a laptop sleeps) must not hold its rows' locks, which
  // other devices' pushes wait for, longer than this.
  conn_.exec("SET idle_in_transaction_session_timeout = '60s'");
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

void SyncEngine::withdraw_peer_address() {
  connect();
  PgTx tx(conn_);
  present_token();
  conn_.query("UPDATE recall.devices SET peer_address = NULL, last_seen_ms = $2 WHERE id = $1",
              {lib_.catalog().device_id(), std::to_string(now_ms())});
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

// The content an asset row's payload names when it carries an edit of its
// content (a base other than its content; see upsert_sql's conflicted
// copies), else nullopt. Read without parsing it, as holds_bytes_of does.
std::optional<std::string> SyncEngine::edited_content(const std::string& payload) {
  auto value = [&](std::string_view key) -> std::string_view {
    size_t at = payload.find(key);
    if (at == std::string::npos || payload.compare(at + key.size(), 1, "\"") != 0) return {};
    return std::string_view(payload).substr(at + key.size() + 1, 64);
  };
  std::string_view base = value("\"content_base\":"), sha = value("\"sha256\":");
  if (base.empty() || sha.size() != 64 || base == sha) return std::nullopt;
  return std::string(sha);
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
    Rows edits;      // asset rows carrying an edit of their content (locked first)
    std::vector<std::pair<std::string, std::string>> edited;  // their ids and content
    for (const auto& [key, r] : last) {
      if (!r->payload) continue;
      if (r->op != "upsert")
        deletes[r->table].add(*r->payload);
      else if (r->table == "assets" && !holds_bytes_of(*r->payload))
        elsewhere.add(*r->payload);
      else
        upserts[r->table].add(*r->payload);
      if (r->op != "upsert" || r->table != "assets") continue;
      if (std::optional<std::string> sha = edited_content(*r->payload)) {
        edits.add(*r->payload);
        edited.emplace_back(r->row_id, std::move(*sha));
      }
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
          if (auto it = upserts.find(t.name); it != upserts.end()) {
            const bool with_edits = std::string(t.name) == "assets" && edits.count > 0;
            if (with_edits) conn_.query(lock_assets_sql(), {edits.array()});
            note_taken(t.name, conn_.query(upsert_sql(t, false, with_edits), {it->second.array()}),
                       it->second);
          }
          if (std::string(t.name) == "assets" && elsewhere.count > 0) {
            conn_.query(lock_bytes_sql(false), {elsewhere.array()});
            note_taken(t.name,
                       conn_.query(upsert_sql(t, true, edits.count > 0), {elsewhere.array()}),
                       elsewhere);
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
    cat.drop_outbox_through(batch.back().seq, refused, edited);
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

void SyncEngine::prepare_sign_in(const std::optional<Credentials>& previous) {
  Catalog& cat = lib_.catalog();
  std::optional<std::string> synced_with = cat.meta(kMetaAccount);
  // (A library of an older recallfs kept no kMetaAccount: its credentials say.)
  if (!synced_with && previous) synced_with = previous->account_id;
  const bool synced_before = cat.meta(kMetaPullRev) || cat.meta(kMetaUpgraded);
  if (synced_before && synced_with != creds_.account_id) {
    for (const char* k :
         {kMetaPullTxid, kMetaPullRev, kMetaLastPush, kMetaLastPull, kMetaLastError})
      cat.erase_meta(k);
    cat.prepare_for_another_account();
  }
  cat.erase_meta(kMetaUpgraded);
  cat.set_meta(kMetaAccount, creds_.account_id);
}

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
