#include "fs/invalidation_queue.h"

namespace recall {

InvalidationQueue::InvalidationQueue(std::function<void(const Item&)> send)
    : send_(std::move(send)), thread_([this] { run(); }) {}

InvalidationQueue::~InvalidationQueue() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void InvalidationQueue::push(Item item) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(item));
  }
  cv_.notify_all();
}

void InvalidationQueue::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;
    Item item = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    send_(item);
    lock.lock();
  }
}

}  // namespace recall
