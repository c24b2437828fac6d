#include "sync/sync_worker.h"

#include <poll.h>
#include <sys/stat.h>

#include <cstdio>
#include <memory>

#include "base/error.h"
#include "sync/credentials.h"
#include "sync/sync_engine.h"

namespace recall {

SyncWorker::SyncWorker(Library& lib, Options options,
                       std::function<void(const Catalog::ApplyReport&)> changed)
    : lib_(lib), options_(options), changed_(std::move(changed)), thread_([this] { run(); }) {}

SyncWorker::~SyncWorker() {
  stop_ = true;
  {
    std::unique_lock lock(done_mu_);
    done_cv_.wait_for(lock, kLastPushWait, [&] { return done_; });
  }
  give_up_ = true;
  thread_.join();
}

void SyncWorker::run() {
  struct Done {  // tells the destructor, however run() ends
    SyncWorker& w;
    ~Done() {
      std::lock_guard lock(w.done_mu_);
      w.done_ = true;
      w.done_cv_.notify_all();
    }
  } done{*this};
  using clock = std::chrono::steady_clock;
  std::unique_ptr<SyncEngine> engine;
  std::string creds_stamp;  // what the engine was made from
  auto backoff = std::chrono::milliseconds(500);
  auto retry_at = clock::now();
  auto next_pull = clock::now();
  bool want_pull = true;
  bool registered = false;  // this mount recorded its peer address on the server
  while (!stop_) {
    // Sleep a tick, or less if the server notifies us.
    int fd = engine && engine->connected() ? engine->socket() : -1;
    pollfd p{fd, POLLIN, 0};
    ::poll(fd >= 0 ? &p : nullptr, fd >= 0 ? 1 : 0, static_cast<int>(options_.tick.count()));
    if (stop_) break;
    try {
      std::optional<Credentials> creds = load_credentials(lib_.dir());
      if (!creds) {  // a guest: nothing to do, no network
        engine.reset();
        creds_stamp.clear();
        continue;
      }
      std::string stamp = creds->server + "\n" + creds->token;
      if (!engine || stamp != creds_stamp) {
        engine = std::make_unique<SyncEngine>(lib_, *creds);
        engine->cancel_when(&give_up_);  // an unmount does not wait for a server that hangs
        engine->set_answer_timeout(options_.server_timeout);
        creds_stamp = stamp;
        want_pull = true;
      }
      if (clock::now() < retry_at) continue;
      if (!engine->connected()) {
        engine->connect();
        engine->listen();
        engine->register_device(options_.peer_address);
        registered = true;
        // The peer key may be new (an older sign-in, or the server's first).
        std::string key = engine->peer_key();
        if (!key.empty() && key != creds->peer_key) {
          creds->peer_key = key;
          save_credentials(lib_.dir(), *creds);
        }
        want_pull = true;
      }
      if (engine->notified()) want_pull = true;
      if (!engine->upgraded()) engine->upgrade();
      if (lib_.catalog().outbox_count() > 0) {
        engine->push();
        want_pull = true;  // what was pushed is read back (Catalog::rechecks)
      }
      if (want_pull || clock::now() >= next_pull) {
        Catalog::ApplyReport r = engine->pull();
        if (r.applied > 0 && changed_) changed_(r);
        if (options_.after_pull) options_.after_pull(*engine);
        want_pull = false;
        next_pull = clock::now() + options_.poll_interval;
      }
      if (lib_.catalog().meta(kMetaLastError)) lib_.catalog().erase_meta(kMetaLastError);
      backoff = std::chrono::milliseconds(500);
    } catch (const std::exception& e) {
      if (stop_) break;  // a statement given up for the unmount: not an error
      // The server is down or refused us: keep everything, try again later.
      std::fprintf(stderr, "recallfs: sync: %s (retrying in %lld ms)\n", e.what(),
                   static_cast<long long>(backoff.count()));
      try {
        lib_.catalog().set_meta(kMetaLastError, e.what());
      } catch (...) {
      }
      if (engine) engine->disconnect();
      retry_at = clock::now() + backoff;
      backoff = std::min(backoff * 2, options_.max_backoff);
      want_pull = true;
    }
  }
  // Stopping: this device's peer address is withdrawn, and what waits is
  // pushed, while the server answers (the destructor gives up after
  // kLastPushWait). A sign-in just made may not have connected yet.
  try {
    // (A server unreachable all along has no address of this mount to
    // withdraw, and is not waited for when nothing waits to be pushed.)
    const bool served = registered && options_.peer_address && !options_.peer_address->empty();
    if (!served && lib_.catalog().outbox_count() == 0) return;
    std::optional<Credentials> creds = load_credentials(lib_.dir());
    if (!creds) return;
    if (!engine || creds->server + "\n" + creds->token != creds_stamp) {
      engine = std::make_unique<SyncEngine>(lib_, *creds);
      engine->cancel_when(&give_up_);
    }
    if (!engine->connected()) engine->connect();
    if (served) engine->withdraw_peer_address();
    if (lib_.catalog().outbox_count() == 0) return;
    if (!engine->upgraded()) engine->upgrade();
    engine->push();
  } catch (const std::exception& e) {
    if (!give_up_) std::fprintf(stderr, "recallfs: sync: while stopping: %s\n", e.what());
  }
}

}  // namespace recall
