// recallfs cloud set | show | unset, recallfs replicate, recallfs jobs — the
// library's bytes in S3-compatible storage.
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/ids.h"
#include "mount-helper/cli.h"
#include "sync/cloud_config.h"
#include "sync/credentials.h"
#include "sync/peer_config.h"
#include "sync/replicator.h"

namespace recall::cli {

namespace {
std::string secret_from(const std::string& value) {
  if (value != "-") return value;
  std::string line;
  if (!std::getline(std::cin, line)) throw Error(EINVAL, "no secret key on standard input");
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}
}  // namespace

void add_cloud_verbs(CLI::App& app, Common& common) {
  CLI::App* cloud =
      app.add_subcommand("cloud", "Where the library's bytes are kept in S3-compatible storage");
  cloud->require_subcommand(1);

  struct SetArgs {
    S3Config c;
    std::string secret;
    bool create = false;
  };
  auto sa = std::make_shared<SetArgs>();
  CLI::App* set =
      cloud->add_subcommand("set", "Set the endpoint, bucket and keys (stored with mode 0600)");
  add_data_option(set, common);
  set->add_option("--endpoint", sa->c.endpoint,
                  "e.g. https://s3.eu-central-1.amazonaws.com or http://127.0.0.1:9000")
      ->required();
  set->add_option("--bucket", sa->c.bucket, "The bucket")->required();
  set->add_option("--region", sa->c.region, "The region (default us-east-1)");
  set->add_option("--access-key", sa->c.access_key, "The access key id")->required();
  set->add_option("--secret-key", sa->secret, "The secret key (- reads standard input)")
      ->required();
  set->add_option("--prefix", sa->c.prefix,
                  "Key prefix (default recallfs): keys are PREFIX/ACCOUNT/SHA256");
  set->add_flag("--create-bucket", sa->create, "Create the bucket if it does not exist");
  set->add_option("--stall-timeout", sa->c.stall_seconds,
                  "Seconds a request may stall (< 1 KiB/s) before it is retried (default 15; "
                  "a read of a file waits 4 at most)")
      ->check(CLI::Range(1, 600));
  set->callback([&common, sa] {
    auto lib = open_library(common);
    S3Config c = sa->c;
    c.secret_key = secret_from(sa->secret);
    S3Client s3(c);
    if (sa->create) s3.create_bucket();
    s3.head(c.prefix + "/recallfs-check");  // a wrong key or endpoint fails here, clearly
    save_cloud_config(lib->dir(), c);
    std::cout << "cloud set: " << c.endpoint << " bucket " << c.bucket << " (" << c.region << ")\n";
  });

  CLI::App* show = cloud->add_subcommand("show", "Show the cloud settings (not the secret key)");
  add_data_option(show, common);
  show->callback([&common] {
    auto lib = open_library(common);
    auto c = load_cloud_config(lib->dir());
    if (!c) {
      std::cout << "no cloud set\n";
      return;
    }
    std::cout << "endpoint  " << c->endpoint << "\nbucket    " << c->bucket << "\nregion    "
              << c->region << "\nprefix    " << c->prefix << "\naccess    " << c->access_key
              << "\n";
  });

  CLI::App* unset = cloud->add_subcommand("unset", "Forget the cloud settings");
  add_data_option(unset, common);
  unset->callback([&common] {
    auto lib = open_library(common);
    remove_cloud_config(lib->dir());
    std::cout << "cloud settings removed\n";
  });

  CLI::App* replicate =
      app.add_subcommand("replicate", "Upload now every blob the cloud lacks (as the daemon does)");
  add_data_option(replicate, common);
  replicate->callback([&common] {
    auto lib = open_library(common);
    auto creds = load_credentials(lib->dir());
    auto cfg = load_cloud_config(lib->dir());
    if (!creds) throw Error(EINVAL, "this is a guest library: sign in first");
    if (!cfg) throw Error(EINVAL, "no cloud set: recallfs cloud set ...");
    Replicator rep(*lib, *cfg, creds->account_id);
    // Now, also what failed a moment ago and waits out its backoff.
    lib->catalog().make_failed_jobs_due("cloud");
    size_t queued = rep.enqueue_missing();
    ProgressLine line;
    std::atomic<bool> stop{false};
    size_t done = rep.run(stop, [&](const ReplicationJob& j) {
      line.show("uploading " + j.sha256.substr(0, 12) + " " +
                std::to_string(static_cast<int>(j.progress * 100)) + "%");
    });
    line.done();
    size_t failed = 0;
    for (const auto& j : lib->catalog().list_jobs(100000)) {
      if (j.status != "failed") continue;
      // Why, for the first few (`recallfs jobs` lists them all).
      if (++failed <= 5 && j.error)
        std::cerr << "recallfs: replicate: " << j.sha256.substr(0, 12) << ": " << *j.error << "\n";
    }
    std::cout << "uploaded " << done << " of " << queued << " blobs"
              << (failed ? ", " + std::to_string(failed) + " failed (retried later)" : "") << "\n";
    if (failed) throw CLI::RuntimeError(1);
  });

  // ---- serving peers
  auto pc = std::make_shared<PeerConfig>();
  CLI::App* peer =
      app.add_subcommand("peer", "Serve this device's blobs to the account's other devices");
  peer->require_subcommand(1);
  CLI::App* pset =
      peer->add_subcommand("set", "Serve on an address (takes effect at the next mount)");
  add_data_option(pset, common);
  pset->add_option("--listen", pc->listen, "host:port to listen on, e.g. 0.0.0.0:7341")->required();
  pset->add_option("--advertise", pc->advertise,
                   "host:port other devices connect to (default: the listen address)");
  pset->callback([&common, pc] {
    auto lib = open_library(common);
    save_peer_config(lib->dir(), *pc);
    std::cout << "serving peers on " << pc->listen << " from the next mount\n";
  });
  CLI::App* punset = peer->add_subcommand("unset", "Stop serving peers (from the next mount)");
  add_data_option(punset, common);
  punset->callback([&common] {
    auto lib = open_library(common);
    remove_peer_config(lib->dir());
  });

  auto limit = std::make_shared<size_t>(50);
  CLI::App* jobs = app.add_subcommand("jobs", "Show replication jobs, newest first");
  add_data_option(jobs, common);
  jobs->add_option("-n", *limit, "How many (default 50)");
  jobs->add_flag("--json", common.json, "Print JSON");
  jobs->callback([&common, limit] {
    auto lib = open_library(common);
    auto list = lib->catalog().list_jobs(*limit);
    if (common.json) {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& j : list)
        out.push_back({{"id", j.id},
                       {"sha256", j.sha256},
                       {"to", j.to_destination},
                       {"status", j.status},
                       {"progress", j.progress},
                       {"bytes_transferred", j.bytes_transferred},
                       {"attempts", j.attempts},
                       {"error", j.error ? nlohmann::json(*j.error) : nlohmann::json(nullptr)}});
      std::cout << out.dump(2) << "\n";
      return;
    }
    for (const auto& j : list)
      std::printf("%-11s %3d%%  %10s  %s -> %s%s\n", j.status.c_str(),
                  static_cast<int>(j.progress * 100), human_bytes(j.bytes_transferred).c_str(),
                  j.sha256.substr(0, 12).c_str(), j.to_destination.c_str(),
                  j.error ? ("  (" + *j.error + ")").c_str() : "");
  });
}

}  // namespace recall::cli
