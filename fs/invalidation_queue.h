// InvalidationQueue — hands cache invalidations to a thread of their own.
//
// The Vfs asks for kernel cache invalidations from inside request handlers
// (a commit, a link) and from workers (a pull, a fetch). A FUSE notification
// sent from a request handler could wait on the very request being handled,
// so they are queued here and sent, in order, by this queue's thread. The
// destructor sends what is queued, then joins: while the kernel still gets
// answers (a notification may wait for a folder lock that a request being
// served holds). No FUSE in here.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "fs/vfs.h"

namespace recall {

class InvalidationQueue {
 public:
  struct Item {
    std::string path;
    Vfs::Stale what;
  };
  explicit InvalidationQueue(std::function<void(const Item&)> send);
  ~InvalidationQueue();
  InvalidationQueue(const InvalidationQueue&) = delete;
  InvalidationQueue& operator=(const InvalidationQueue&) = delete;
  void push(Item item);

 private:
  void run();
  std::function<void(const Item&)> send_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the rest is ready
};

}  // namespace recall
