#include "fs/invalidation_queue.h"

namespace recall {

InvalidationQueue::InvalidationQueue(std::function<void(const std::string&)> send)
    : send_(std::move(send)), thread_([this] { run(); }) {}

InvalidationQueue::~InvalidationQueue() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void InvalidationQueue::push(const std::string& path) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(path);
  }
  cv_.notify_all();
}

void InvalidationQueue::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;
    std::string path = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    send_(path);
    lock.lock();
  }
}

}  // namespace recall
