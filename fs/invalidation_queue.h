// InvalidationQueue — hands cache invalidations to a thread of their own.
//
// The Vfs asks for kernel cache invalidations from inside request handlers
// (a commit, a link) and from workers (a pull, a fetch). A FUSE notification
// sent from a request handler could wait on the very request being handled,
// so paths are queued here and sent, in order, by this queue's thread. The
// destructor sends what is queued, then joins. No FUSE in here.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace recall {

class InvalidationQueue {
 public:
  explicit InvalidationQueue(std::function<void(const std::string& path)> send);
  ~InvalidationQueue();
  InvalidationQueue(const InvalidationQueue&) = delete;
  InvalidationQueue& operator=(const InvalidationQueue&) = delete;
  void push(const std::string& path);

 private:
  void run();
  std::function<void(const std::string&)> send_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  bool stop_ = false;
  std::thread thread_;  // last: starts once the rest is ready
};

}  // namespace recall
