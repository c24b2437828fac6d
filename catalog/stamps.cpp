// The stamps of changes to synced rows: a hybrid logical clock in ms.
//
// Devices merge rows by last writer wins on these stamps (the server keeps
// the newer one; a tie goes to the later push). A stamp taken from the wall
// clock alone lets a device whose clock is behind lose every change it makes
// after seeing another device's: an hour slow, its rename of a file it has
// just pulled loses to the pull's older change, on the server and then on
// itself. So a stamp is never below one this catalog has seen: the newest
// stamp of the rows pulled into it (meta "stamp_floor") and of its own
// changes. A change made after seeing another is then stamped at least as
// new, whatever either clock says; changes made without seeing each other
// still go by the clocks.
#include <algorithm>
#include <atomic>
#include <string>

#include "base/ids.h"
#include "catalog/catalog_internal.h"

namespace recall::catalog_detail {
namespace {

constexpr const char* kStampFloor = "stamp_floor";

// The floor; a catalog without one (new, or written by a recallfs before
// the floor) takes the newest stamp of its rows, once.
int64_t stamp_floor(Db& db) {
  Stmt f = db.cached("SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?");
  f.bind(kStampFloor);
  if (f.step()) return f.int64(0);
  f = Stmt();
  Stmt scan = db.cached(
      "SELECT coalesce(max(m), 0) FROM (SELECT max(updated_ms) AS m FROM works UNION ALL "
      "SELECT max(updated_ms) FROM folders UNION ALL SELECT max(updated_ms) FROM assets UNION "
      "ALL SELECT max(updated_ms) FROM edges UNION ALL SELECT max(mtime_ms) FROM device_blobs)");
  scan.step();
  int64_t floor = scan.int64(0);
  scan = Stmt();
  db.cached("INSERT INTO meta(key, value) VALUES(?, ?)")
      .bind(kStampFloor, std::to_string(floor))
      .run();
  return floor;
}

}  // namespace

int64_t stamp_ms(Db& db) {
  // This process's last stamp: its own changes stay in order when the clock
  // steps back (NTP) while it runs.
  static std::atomic<int64_t> last{0};
  int64_t stamp = std::max({now_ms(), stamp_floor(db), last.load(std::memory_order_relaxed)});
  int64_t seen = last.load(std::memory_order_relaxed);
  while (seen < stamp && !last.compare_exchange_weak(seen, stamp, std::memory_order_relaxed)) {
  }
  return stamp;
}

void raise_stamp_floor(Db& db, int64_t stamp) {
  if (stamp <= stamp_floor(db)) return;
  db.cached("UPDATE meta SET value = ? WHERE key = ?")
      .bind(std::to_string(stamp), kStampFloor)
      .run();
}

}  // namespace recall::catalog_detail
