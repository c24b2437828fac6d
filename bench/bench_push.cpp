// Push of 100k outbox rows (100k assets in 5k works, with their works) vs
// `psql \copy` of the same rows into the same tables, on the same server in
// the same run (target >= 0.5).
//
//   bench_push DIR ADMIN_URL CLIENT_URL      (bench/sync_bench.sh runs it)
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/ids.h"
#include "bench/bench_util.h"
#include "catalog/synced_tables.h"
#include "fs/library.h"
#include "sync/server_admin.h"
#include "sync/sync_engine.h"

int main(int argc, char** argv) {
  using namespace recall;
  using namespace recall::bench;
  namespace fs = std::filesystem;
  if (argc != 4) {
    std::fprintf(stderr, "usage: bench_push DIR ADMIN_URL CLIENT_URL\n");
    return 2;
  }
  fs::path dir = fs::absolute(argv[1]);
  std::string admin = argv[2], client = argv[3];
  fs::remove_all(dir / "push-lib");
  auto lib = Library::open(dir / "push-lib", {.create = true});
  Catalog& cat = lib->catalog();
  const int works = 5000, per_work = 20;
  // The rows name bytes this device holds, as a device's own files do (a
  // row naming bytes held elsewhere costs the server a check for a holder).
  for (int a = 0; a < per_work; ++a) {
    std::istringstream in("blob " + std::to_string(a));
    lib->blobs().put(in);
  }
  for (int w = 0; w < works; ++w) {
    cat.batch([&] {
      Work work = cat.create_work("Work " + std::to_string(w));
      for (int a = 0; a < per_work; ++a) {
        NewAsset n;
        n.place = Place{work.id, ""};
        n.filename = "file-" + std::to_string(a) + ".pdf";
        n.blob.sha256 = sha256_hex("blob " + std::to_string(a % 100));
        n.blob.size = 4096;
        n.blob.mime = "application/pdf";
        cat.add_asset(n);
      }
    });
  }
  // The same rows as CSV, for \copy into a second account.
  std::string copy_owner = server_add_user(admin, "copy-" + new_uuid());
  uint64_t rows = 0;
  for (const char* table : {"works", "assets"}) {
    const SyncedTable& t = synced_table(table);
    std::ofstream csv(dir / (std::string(table) + ".csv"));
    for (int64_t after = 0;;) {
      auto batch = cat.read_outbox(after, 10000);
      if (batch.empty()) break;
      for (const auto& r : batch) {
        after = r.seq;
        if (r.table != table) continue;
        auto j = nlohmann::json::parse(*r.payload);
        csv << copy_owner;
        for (const SyncedColumn& c : t.columns) {
          csv << ",";
          const auto& v = j[c.name];
          if (v.is_null()) continue;
          std::string s = v.is_string() ? v.get<std::string>() : v.dump();
          csv << '"';
          for (char ch : s) csv << (ch == '"' ? std::string("\"\"") : std::string(1, ch));
          csv << '"';
        }
        csv << "\n";
        ++rows;
      }
    }
  }
  std::string cols_w = "owner_id", cols_a = "owner_id";
  for (const auto& c : synced_table("works").columns) cols_w += std::string(",") + c.name;
  for (const auto& c : synced_table("assets").columns) cols_a += std::string(",") + c.name;
  double t_copy = time_shell(
      "psql '" + admin + "' -X -q -v ON_ERROR_STOP=1 -c \"\\copy recall.works(" + cols_w +
      ") FROM '" + (dir / "works.csv").string() + "' CSV\" -c \"\\copy recall.assets(" + cols_a +
      ") FROM '" + (dir / "assets.csv").string() + "' CSV\"");

  // The push: the same rows (plus blobs_meta and device_blobs) from the outbox.
  std::string user = "push-" + new_uuid();
  server_add_user(admin, user);
  Credentials c;
  c.server = client;
  c.token = server_issue_token(admin, user, std::nullopt);
  c.device_name = "bench";
  SyncEngine engine(*lib, c);
  engine.connect();
  uint64_t outbox = cat.outbox_count();
  auto t0 = std::chrono::steady_clock::now();
  size_t pushed = engine.push();
  double t_push = seconds_since(t0);
  std::printf(
      "push %zu outbox rows (%llu works+assets rows): %.2f s, %.0f rows/s; psql \\copy of the %llu "
      "works+assets rows: %.2f s\n",
      pushed, static_cast<unsigned long long>(rows), t_push, pushed / t_push,
      static_cast<unsigned long long>(rows), t_copy);
  (void)outbox;
  // The ratio compares the same rows: scale the push to the works+assets share.
  double t_push_same = t_push * static_cast<double>(rows) / static_cast<double>(pushed);
  print_ratio("push vs psql \\copy", t_push_same, t_copy, "psql \\copy", 0.5);
  return 0;
}
