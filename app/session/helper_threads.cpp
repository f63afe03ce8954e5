#include "helper_threads.h"

namespace attnscope::session {

HelperThreads::HelperThreads(std::function<void()> init) : init_(std::move(init)) {}

HelperThreads::~HelperThreads() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (std::thread& t : threads_) t.join();
}

size_t HelperThreads::started() const {
  std::lock_guard<std::mutex> l(mu_);
  return threads_.size();
}

void HelperThreads::run(const std::vector<std::function<void()>>& jobs) {
  if (jobs.empty()) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    while (threads_.size() + 1 < jobs.size()) threads_.emplace_back([this] { loop(); });
    for (size_t i = 1; i < jobs.size(); ++i) queue_.push_back(&jobs[i]);
    unfinished_ += jobs.size() - 1;
  }
  wake_.notify_all();
  jobs[0]();
  std::unique_lock<std::mutex> l(mu_);
  done_.wait(l, [this] { return unfinished_ == 0; });
}

void HelperThreads::loop() {
  if (init_) init_();
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    wake_.wait(l, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, nothing left
    const std::function<void()>* job = queue_.front();
    queue_.pop_front();
    l.unlock();
    (*job)();
    l.lock();
    if (--unfinished_ == 0) done_.notify_all();
  }
}

}  // namespace attnscope::session
