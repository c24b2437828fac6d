#include "fs/catalog_watcher.h"

#include <cstdio>

#include "catalog/catalog.h"

namespace recall {

CatalogWatcher::CatalogWatcher(Catalog& catalog, std::chrono::milliseconds period,
                               std::function<void()> changed)
    : catalog_(catalog),
      period_(period),
      changed_(std::move(changed)),
      thread_([this] { run(); }) {}

CatalogWatcher::~CatalogWatcher() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void CatalogWatcher::run() {
  int64_t seen = -1;
  std::unique_lock lock(mu_);
  while (!stop_) {
    lock.unlock();
    try {
      int64_t now = catalog_.data_version();
      if (seen >= 0 && now != seen) changed_();
      seen = now;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "recallfs: watching the catalog: %s\n", e.what());
    }
    lock.lock();
    cv_.wait_for(lock, period_, [&] { return stop_; });
  }
}

}  // namespace recall
