// Catalog: insert 100k assets with their outbox rows (in batches of 1000, one
// transaction each), then list a 10k-asset folder. Prints rows/s and ms,
// against a baseline: the same rows inserted into a plain SQLite table with
// no triggers or indexes, in the same batches.
//
//   bench_catalog [DIR]
#include <filesystem>

#include "base/ids.h"
#include "base/sha256.h"
#include "base/sqlite.h"
#include "bench/bench_util.h"
#include "catalog/catalog.h"

int main(int argc, char** argv) {
  using namespace recall;
  using namespace recall::bench;
  namespace fs = std::filesystem;
  fs::path dir = bench_dir(argc, argv);
  fs::path file = dir / "bench-catalog.db";
  for (const char* s : {"", "-wal", "-shm"}) fs::remove(file.string() + s);
  auto cat = Catalog::open(file, {.create = true});
  Work big = cat->create_work("Ten thousand");
  const int total = 100000, batch = 1000;

  auto t0 = std::chrono::steady_clock::now();
  for (int b = 0; b < total / batch; ++b) {
    cat->batch([&] {
      for (int i = b * batch; i < (b + 1) * batch; ++i) {
        NewAsset n;
        // The first 10k go into one work, the rest to the inbox.
        if (i < 10000) n.place = Place{big.id, ""};
        n.filename = "paper-" + std::to_string(i) + ".pdf";
        n.blob.sha256 = sha256_hex(std::to_string(i));
        n.blob.size = 1000 + static_cast<uint64_t>(i);
        n.blob.mime = "application/pdf";
        cat->add_asset(n);
      }
    });
  }
  double insert_s = seconds_since(t0);
  uint64_t outbox = cat->outbox_count();

  // Baseline: the same number of rows in a bare table, same batching.
  fs::path plain = dir / "bench-plain.db";
  for (const char* s : {"", "-wal", "-shm"}) fs::remove(plain.string() + s);
  Db db = Db::open(plain, {.create = true});
  db.exec(
      "CREATE TABLE assets(id TEXT PRIMARY KEY, work_id TEXT, filename TEXT, sha256 TEXT, bytes "
      "INTEGER)");
  t0 = std::chrono::steady_clock::now();
  for (int b = 0; b < total / batch; ++b) {
    Tx tx(db);
    for (int i = b * batch; i < (b + 1) * batch; ++i)
      db.cached("INSERT INTO assets VALUES(?,?,?,?,?)")
          .bind(new_uuid(), big.id, "paper-" + std::to_string(i) + ".pdf",
                sha256_hex(std::to_string(i)), i)
          .run();
    tx.commit();
  }
  double plain_s = seconds_since(t0);

  t0 = std::chrono::steady_clock::now();
  size_t listed = 0;
  cat->list_folder(Place{big.id, ""}, [&](const FolderEntry&) {
    ++listed;
    return true;
  });
  double list_s = seconds_since(t0);

  std::printf(
      "insert %d assets (+%llu outbox rows): %.2f s, %.0f assets/s (%.0f rows/s incl. outbox, "
      "blobs_meta, device_blobs)\n",
      total, static_cast<unsigned long long>(outbox), insert_s, total / insert_s,
      (3.0 * total + outbox) / insert_s);
  std::printf("bare-table baseline: %.2f s, %.0f rows/s -> catalog at %.2f of a bare insert\n",
              plain_s, total / plain_s, plain_s / insert_s);
  std::printf("list a %zu-asset folder: %.1f ms (%.0f entries/s)\n", listed, list_s * 1e3,
              listed / list_s);
  for (const char* s : {"", "-wal", "-shm"}) {
    fs::remove(file.string() + s);
    fs::remove(plain.string() + s);
  }
  return 0;
}
