// recallfs verify | scan | status — the health of the byte store and a
// summary of the library.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/ids.h"
#include "fs/fetcher.h"
#include "mount-helper/cli.h"
#include "mount-helper/mount_state.h"
#include "sync/credentials.h"
#include "sync/pg.h"
#include "sync/sources.h"
#include "sync/sync_engine.h"

namespace recall::cli {

void add_store_verbs(CLI::App& app, Common& common) {
  auto threads = std::make_shared<unsigned>(0);
  CLI::App* verify = app.add_subcommand(
      "verify", "Re-hash every object; quarantine those whose bytes changed (exit 1 if any)");
  add_data_option(verify, common);
  verify->add_option("--threads", *threads, "Hashing threads (default: one per core)");
  verify->add_flag("--json", common.json, "Print the report as JSON");
  verify->callback([&common, threads] {
    auto lib = open_library(common);
    ProgressLine line;
    VerifyReport r = lib->blobs().verify(
        [&](const VerifyProgress& p) {
          line.show("verifying " + std::to_string(p.objects_done) + "/" +
                    std::to_string(p.objects_total) + " objects, " + human_bytes(p.bytes_done) +
                    " of " + human_bytes(p.bytes_total));
        },
        *threads);
    line.done();
    // Self-heal: a corrupt or lost object comes back from its holders (the
    // cloud, peers), verified chunk by chunk; what cannot is marked absent
    // here so that other devices stop asking this one for it.
    std::vector<std::string> repaired, lost;
    std::vector<std::string> bad = r.modified;
    bad.insert(bad.end(), r.missing.begin(), r.missing.end());
    if (!bad.empty()) {
      Fetcher fetcher(*lib, std::make_shared<HolderProvider>(*lib));
      for (const std::string& sha : bad) {
        try {
          line.show("repairing " + sha.substr(0, 12) + " from its holders");
          fetcher.fetch_all(sha);
          repaired.push_back(sha);
        } catch (const Error& e) {
          lost.push_back(sha);
          bool modified = std::find(r.modified.begin(), r.modified.end(), sha) != r.modified.end();
          if (lib->catalog().get_blob(sha))
            lib->catalog().set_device_blob(sha, false, modified ? "modified" : "missing");
        }
      }
      line.done();
    }
    auto is_repaired = [&](const std::string& h) {
      return std::find(repaired.begin(), repaired.end(), h) != repaired.end();
    };
    if (common.json) {
      std::cout << nlohmann::json{{"checked", r.checked},
                                  {"bytes", r.bytes},
                                  {"modified", r.modified},
                                  {"missing", r.missing},
                                  {"repaired", repaired}}
                       .dump(2)
                << "\n";
    } else {
      std::cout << "verified " << r.checked << " objects (" << human_bytes(r.bytes)
                << "): " << r.modified.size() << " modified, " << r.missing.size() << " missing\n";
      for (const auto& h : r.modified)
        std::cout << "modified " << h
                  << (is_repaired(h) ? " (repaired from its holders)\n"
                                     : " (moved to quarantine; it will not be served)\n");
      for (const auto& h : r.missing)
        std::cout << "missing  " << h << (is_repaired(h) ? " (repaired from its holders)\n" : "\n");
      if (!repaired.empty()) std::cout << "repaired " << repaired.size() << " from their holders\n";
    }
    if (!lost.empty()) throw CLI::RuntimeError(1);
  });

  CLI::App* scan = app.add_subcommand(
      "scan",
      "Rebuild the store's index from its objects: index new ones, restore reappeared ones");
  add_data_option(scan, common);
  scan->add_flag("--json", common.json, "Print the report as JSON");
  scan->callback([&common] {
    auto lib = open_library(common);
    ProgressLine line;
    ScanReport r = lib->blobs().scan(
        [&](uint64_t seen) { line.show("scanning: " + std::to_string(seen) + " objects"); });
    line.done();
    if (common.json) {
      std::cout << nlohmann::json{{"objects", r.objects_seen}, {"added", r.added},
                                  {"restored", r.restored},    {"relocated", r.relocated},
                                  {"missing", r.missing},      {"ignored", r.ignored}}
                       .dump(2)
                << "\n";
    } else {
      std::cout << "scanned " << r.objects_seen << " objects: " << r.added
                << " added to the index, " << r.restored << " restored, " << r.relocated
                << " moved back into place, " << r.missing << " missing, " << r.ignored
                << " other files ignored\n";
    }
  });

  CLI::App* status =
      app.add_subcommand("status", "Show the library: counts, bytes, health, device");
  add_data_option(status, common);
  status->add_flag("--json", common.json, "Print JSON");
  status->callback([&common] {
    auto lib = open_library(common);
    CatalogCounts c = lib->catalog().counts();
    BlobTotals t = lib->blobs().totals();
    Fetcher::Partials partial = Fetcher::partials(*lib);
    auto health = [&](Health h) { return t.by_health.count(h) ? t.by_health.at(h) : 0; };
    std::optional<MountInfo> mount = current_mount(lib->dir());
    std::optional<Credentials> creds = load_credentials(lib->dir());
    Catalog& cat = lib->catalog();
    auto meta_ms = [&](const char* key) -> nlohmann::json {
      auto v = cat.meta(key);
      return v ? nlohmann::json(std::stoll(*v)) : nlohmann::json(nullptr);
    };
    auto meta_text = [&](const char* key) -> nlohmann::json {
      auto v = cat.meta(key);
      return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
    };
    if (common.json) {
      nlohmann::json j = {
          {"data_dir", lib->dir().string()},
          {"device_id", lib->catalog().device_id()},
          {"account", creds ? nlohmann::json(creds->account_name) : nlohmann::json(nullptr)},
          {"account_id", creds ? nlohmann::json(creds->account_id) : nlohmann::json(nullptr)},
          {"server",
           creds ? nlohmann::json(redact_conninfo(creds->server)) : nlohmann::json(nullptr)},
          {"device_name", creds ? nlohmann::json(creds->device_name) : nlohmann::json(nullptr)},
          {"mode", creds ? "signed-in" : "guest"},
          {"last_push_ms", meta_ms(kMetaLastPush)},
          {"last_pull_ms", meta_ms(kMetaLastPull)},
          {"last_error", meta_text(kMetaLastError)},
          {"works", c.works},
          {"folders", c.folders},
          {"assets", c.assets},
          {"links", c.edges},
          {"local_only_assets", c.local_only_assets},
          {"asset_bytes", c.asset_bytes},
          {"blobs", c.blobs},
          {"blob_bytes", c.blob_bytes},
          {"objects", t.objects},
          {"object_bytes", t.bytes},
          {"health",
           {{"healthy", health(Health::Healthy)},
            {"missing", health(Health::Missing)},
            {"modified", health(Health::Modified)},
            {"relocated", health(Health::Relocated)}}},
          {"outbox_pending", c.outbox},
          {"cloud_blobs", c.cloud_blobs},
          {"cloud_bytes", c.cloud_bytes},
          {"pinned_blobs", c.pinned_blobs},
          {"pinned_bytes", c.pinned_bytes},
          {"partial_files", partial.files},
          {"partial_bytes", partial.bytes},
          {"cache_size", mount && mount->cache_size ? nlohmann::json(mount->cache_size)
                                                    : nlohmann::json(nullptr)},
          {"jobs",
           {{"pending", c.jobs_pending},
            {"in_progress", c.jobs_in_progress},
            {"failed", c.jobs_failed}}},
          {"mounted", mount.has_value()},
          {"mountpoint", mount ? nlohmann::json(mount->mountpoint) : nlohmann::json(nullptr)},
          {"mount_pid", mount ? nlohmann::json(mount->pid) : nlohmann::json(nullptr)},
      };
      std::cout << j.dump(2) << "\n";
      return;
    }
    auto ago = [&](const char* key) {
      auto v = cat.meta(key);
      if (!v) return std::string("never");
      return std::to_string((now_ms() - std::stoll(*v)) / 1000) + " s ago";
    };
    std::cout << "library   " << lib->dir().string() << "\n";
    if (creds) {
      std::cout << "account   " << creds->account_name << " (" << creds->account_id << ")\n"
                << "server    " << redact_conninfo(creds->server) << "\n"
                << "sync      last push " << ago(kMetaLastPush) << ", last pull "
                << ago(kMetaLastPull) << "\n";
      if (auto err = cat.meta(kMetaLastError)) std::cout << "error     " << *err << "\n";
    } else {
      std::cout << "mode      guest (no account: nothing leaves this device)\n";
    }
    std::cout << "device    " << lib->catalog().device_id() << "\n"
              << "mounted   "
              << (mount ? "at " + mount->mountpoint + " (pid " + std::to_string(mount->pid) + ")"
                        : std::string("no"))
              << "\n"
              << "works     " << c.works << "\n"
              << "assets    " << c.assets << " (" << human_bytes(c.asset_bytes) << "), " << c.edges
              << " extra links, " << c.local_only_assets << " local-only\n"
              << "blobs     " << t.objects << " objects on this device (" << human_bytes(t.bytes)
              << ")\n"
              << "health    " << health(Health::Healthy) << " healthy, " << health(Health::Missing)
              << " missing, " << health(Health::Modified) << " modified, "
              << health(Health::Relocated) << " relocated\n"
              << "outbox    " << c.outbox << " changes waiting for sync"
              << (creds ? "\n" : " (sign in to sync)\n");
    if (!creds) return;
    std::cout << "cloud     " << c.cloud_blobs << " blobs (" << human_bytes(c.cloud_bytes) << ")\n"
              << "uploads   " << c.jobs_pending << " pending, " << c.jobs_in_progress
              << " in progress, " << c.jobs_failed << " failed (recallfs jobs)\n"
              << "pinned    " << c.pinned_blobs << " blobs (" << human_bytes(c.pinned_bytes)
              << ")\n"
              << "cache     " << human_bytes(t.bytes) << " used"
              << (mount && mount->cache_size ? " of " + human_bytes(mount->cache_size)
                                             : std::string(", no limit"))
              << (partial.files ? "; and " + human_bytes(partial.bytes) + " in " +
                                      std::to_string(partial.files) +
                                      " partial files (fetches under way, or open files the "
                                      "cache does not keep)"
                                : std::string())
              << "\n";
  });
}

}  // namespace recall::cli
