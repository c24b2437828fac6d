// The SQL SyncEngine sends (see sync_statements.h).
#include "sync/sync_statements.h"

#include <cctype>
#include <string>
#include <utility>

namespace recall::sync_statements {
namespace {

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

// A pushed asset row (EXCLUDED) that edits the bytes the server's row (t)
// has: its base is the server's content.
constexpr const char* kEditOnTop =
    "(EXCLUDED.content_base IS DISTINCT FROM EXCLUDED.sha256 AND t.sha256 = "
    "EXCLUDED.content_base)";

// An asset's column groups (catalog/catalog_internal.h): each column and
// the stamp of its group ("" for the columns of no group).
std::string asset_group_of(std::string_view column) {
  for (std::string_view c : {"sha256", "bytes", "mime", "page_count", "mtime_ns", "content_ms",
                             "content_base", "content_device"})
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
    // A change of the content group that kept its bytes (a touch, a save of
    // the same bytes: its base is its content) never puts those bytes back
    // over others made apart: only its newer time would win, and it dates
    // bytes that are not there.
    // And an edit of the bytes the server has (its base is the server's
    // content) wins whatever the times: what made the server's time newer
    // kept those bytes (a touch), so nothing of it is lost but a time.
    if (g == "content_ms")
      wins = "t.deleted OR " + std::string(kEditOnTop) + " OR ((" + stamp("t", g) + " IS NULL OR " +
             stamp("t", g) + " <= " + stamp("EXCLUDED", g) +
             ") AND NOT (EXCLUDED.content_base = EXCLUDED.sha256 AND t.sha256 IS DISTINCT FROM "
             "EXCLUDED.sha256))";
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

// Edits of a file's content made apart (sync/sql/004_conflict_copies.sql):
// a pushed row whose content the server has neither as its own nor as the
// content the edit started from, from another device than the server's
// content, whose edit did not start from the pushed content (a push sent
// again after its answer was lost, which another device has seen and edited
// since). The version that does not stay in the
// file (the older, as asset_merge_sets decides) goes into a new file next
// to it, where the merged row is (or the server's row, when nothing of the
// push was taken). CTEs of the assets upsert: they see the rows as they
// were before it, and `up` as what it took. For rows naming bytes their
// device does not hold (`held_elsewhere`), only the server's version goes
// into a copy (its bytes are held); the pushed one, when it loses, is not
// taken at all.
std::string conflict_copies_sql(bool held_elsewhere) {
  const std::string owner = "(SELECT recall.current_owner())";
  return "apart AS (SELECT s.id, s.work_id, s.folder, s.filename, s.role, s.mode, "
         "s.content_device AS s_device, r.content_device AS r_device, "
         "s.sha256 AS s_sha, s.bytes AS s_bytes, s.mime AS s_mime, s.page_count AS s_pages, "
         "s.mtime_ns AS s_mtime, coalesce(s.content_ms, s.updated_ms) AS s_stamp, "
         "r.sha256 AS r_sha, r.bytes AS r_bytes, r.mime AS r_mime, r.page_count AS r_pages, "
         "r.mtime_ns AS r_mtime, coalesce(r.content_ms, r.updated_ms) AS r_stamp "
         "FROM jsonb_populate_recordset(NULL::recall.assets, $1::jsonb) r JOIN recall.assets s "
         "ON s.owner_id = " +
         owner +
         " AND s.id = r.id WHERE NOT s.deleted AND r.content_base IS NOT NULL AND r.sha256 IS "
         "DISTINCT FROM r.content_base AND s.sha256 IS DISTINCT FROM r.sha256 AND s.sha256 IS "
         "DISTINCT FROM r.content_base AND s.content_device IS DISTINCT FROM r.content_device AND "
         "s.content_base IS DISTINCT FROM r.sha256), "
         "lost AS (SELECT a.*, a.s_stamp <= a.r_stamp AS pushed_won, u.id IS NOT NULL AS taken, "
         "u.work AS u_work, u.at_folder, u.at_name FROM apart a LEFT JOIN up u ON u.id = "
         "a.id::text), "
         "copies AS (INSERT INTO recall.assets (owner_id, id, work_id, folder, filename, sha256, "
         "role, mime, bytes, page_count, mode, mtime_ns, created_ms, updated_ms, content_ms, "
         "place_ms, attrs_ms, content_base, content_device) SELECT " +
         owner +
         ", gen_random_uuid(), CASE WHEN taken THEN u_work ELSE work_id END, CASE WHEN taken "
         "THEN at_folder ELSE folder END, recall.conflict_name(CASE WHEN taken THEN at_name ELSE "
         "filename END, CASE WHEN pushed_won THEN s_stamp ELSE r_stamp END), CASE WHEN "
         "pushed_won THEN s_sha ELSE r_sha END, role, CASE WHEN pushed_won THEN s_mime ELSE "
         "r_mime END, CASE WHEN pushed_won THEN s_bytes ELSE r_bytes END, CASE WHEN pushed_won "
         "THEN s_pages ELSE r_pages END, mode, CASE WHEN pushed_won THEN s_mtime ELSE r_mtime "
         "END, greatest(s_stamp, r_stamp), greatest(s_stamp, r_stamp), CASE WHEN pushed_won THEN "
         "s_stamp ELSE r_stamp END, greatest(s_stamp, r_stamp), greatest(s_stamp, r_stamp), "
         "CASE WHEN pushed_won THEN s_sha ELSE r_sha END, CASE WHEN pushed_won THEN s_device ELSE "
         "r_device END FROM lost" +
         (held_elsewhere ? " WHERE taken AND pushed_won" : "") + "), ";
}

}  // namespace

// One statement per table: every upsert of a batch at once.
// `held_elsewhere`: asset rows naming bytes their device does not hold
// (content moved from another file, `mv a b`). Such a row is taken only
// while a holder has the bytes, or if it names them already, or if the
// server's content is newer (the merged row will not name them): the last
// holder may have dropped them (see SyncEngine::confirm_drops, which takes
// the same locks as lock_bytes_sql).
std::string upsert_sql(const SyncedTable& t, bool held_elsewhere, bool edits) {
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
             any_newer + " OR " + kEditOnTop + " END";
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
    with += "up AS (" + sql + taken + stamps + ", t." + column + " AS work" +
            (n == "assets" ? ", t.folder AS at_folder, t.filename AS at_name" : "") + "), ";
    if (n == "assets" && edits) with += conflict_copies_sql(held_elsewhere);
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
        " AND (t.sha256 IS NOT DISTINCT FROM d.sha256 OR (d.content_base IS NOT NULL AND "
        "t.sha256 = d.content_base) OR (d.content_base IS NULL AND t.content_ms <= "
        "d.content_ms)) RETURNING "
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
std::string lock_assets_sql() {
  return "SELECT 1 FROM recall.assets s WHERE s.owner_id = (SELECT recall.current_owner()) AND "
         "s.id IN (SELECT r.id FROM jsonb_populate_recordset(NULL::recall.assets, $1::jsonb) r) "
         "ORDER BY s.id FOR UPDATE";
}

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

}  // namespace recall::sync_statements
