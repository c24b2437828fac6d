// CatalogWatcher — notices the catalog changed by another process.
//
// A mounted library's daemon invalidates the kernel's caches after each
// change it makes or pulls. Commands run in another process while it is
// mounted (`recallfs sync`, `add`, `pin`, `verify --repair`) change the
// catalog behind its back; this thread polls Catalog::data_version every
// `period` and calls `changed` when it moved, so the kernel drops what it
// caches (folder listings are otherwise kept until a change here).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace recall {

class Catalog;

class CatalogWatcher {
 public:
  CatalogWatcher(Catalog& catalog, std::chrono::milliseconds period, std::function<void()> changed);
  ~CatalogWatcher();  // stops and joins
  CatalogWatcher(const CatalogWatcher&) = delete;
  CatalogWatcher& operator=(const CatalogWatcher&) = delete;

 private:
  void run();
  Catalog& catalog_;
  std::chrono::milliseconds period_;
  std::function<void()> changed_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the rest is ready
};

}  // namespace recall
