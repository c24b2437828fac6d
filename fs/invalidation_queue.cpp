#include "fs/invalidation_queue.h"

#include <algorithm>

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
    // The same item still waiting is sent after this change anyway (writes
    // to a linked file ask for the same ones many times).
    size_t look = std::min<size_t>(queue_.size(), 64);
    for (auto it = queue_.end() - static_cast<std::ptrdiff_t>(look); it != queue_.end(); ++it)
      if (it->path == item.path && it->what == item.what) return;
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
