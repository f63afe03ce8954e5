// The kernels' thread pool (kernel_threads.h).
#include "kernel_threads.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace attnscope {

namespace {

std::atomic<int64_t> g_kernel_threads{0};  // 0: the CPUs this process may run on

// Helpers that wait for a job, run its body, and report back. After a job a helper polls for the next one for
// kSpinMicros before it sleeps: a cached decoding step calls the kernel once per layer, tens of microseconds apart,
// and a wake-up through the condition variable cost more than the helper's share (decoding at T = 4096: 8,400
// tokens/s with sleeping helpers); the caller likewise polls for its helpers' last items before it sleeps. One job at
// a time: `busy` is taken by the posting caller (a second caller meanwhile runs its items alone). The pool is never destroyed (its threads wait
// until the process ends) and belongs to the process that made it: a fork()ed child makes its own.
class Pool {
 public:
  // body() on the caller and on up to `helpers` pool threads; returns when every thread that started it is done.
  // False (nothing run) when another caller holds the pool.
  bool run(int64_t helpers, const std::function<void()>& body) {
    std::unique_lock<std::mutex> l(mu_);
    if (busy_) return false;
    busy_ = true;
    while (int64_t(threads_.size()) < helpers) threads_.emplace_back([this] { serve(); });
    job_ = &body;
    wanted_ = helpers;
    posted_.store(++generation_, std::memory_order_release);
    l.unlock();
    wake_.notify_all();
    body();
    l.lock();
    wanted_ = 0;  // helpers that have not started yet need not: the items are taken
    l.unlock();
    spin_until([this] { return active_.load(std::memory_order_acquire) == 0; });  // their last items are short
    l.lock();
    done_.wait(l, [this] { return active_ == 0; });
    job_ = nullptr;
    busy_ = false;
    return true;
  }

 private:
  void serve() {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> l(mu_);
    for (;;) {
      if (generation_ == seen) {  // poll a while without the lock, then sleep
        l.unlock();
        spin_until([&] { return posted_.load(std::memory_order_acquire) != seen; });
        l.lock();
      }
      wake_.wait(l, [&] { return generation_ != seen && wanted_ > 0; });
      seen = generation_;
      --wanted_;
      ++active_;
      const std::function<void()>* body = job_;
      l.unlock();
      (*body)();
      if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        l.lock();  // (under the lock: the caller is either before its check or waiting)
        done_.notify_all();
      } else {
        l.lock();
      }
    }
  }

  // Polls `ready` for up to kSpinMicros.
  template <class F>
  static void spin_until(const F& ready) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(kSpinMicros);
    for (int i = 1; !ready(); ++i)
      if (i % 64 == 0 && std::chrono::steady_clock::now() > until) return;
  }

  std::mutex mu_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> threads_;  // detached in effect: never joined (see above)
  const std::function<void()>* job_ = nullptr;
  static constexpr int64_t kSpinMicros = 100;
  uint64_t generation_ = 0;          // jobs posted (under mu_) ...
  std::atomic<uint64_t> posted_{0};  // ... and the same count for polling without it
  int64_t wanted_ = 0;               // helpers still to start the posted job (under mu_)
  std::atomic<int64_t> active_{0};   // helpers inside it
  bool busy_ = false;
};

// This process's pool. A child of fork() has none of its parent's threads (and maybe a mutex a parent thread held):
// it leaves the inherited pool untouched and makes a new one.
Pool& pool() {
  static std::mutex mu;
  static Pool* p = nullptr;
  static pid_t owner = 0;
  const pid_t me = getpid();
  std::lock_guard<std::mutex> l(mu);
  if (!p || owner != me) {
    p = new Pool;  // (a parent's pool is leaked in the child: its threads do not exist here)
    owner = me;
  }
  return *p;
}

}  // namespace

int64_t kernel_threads() {
  if (const int64_t n = g_kernel_threads; n > 0) return n;
  static const int64_t cpus = [] {
    cpu_set_t set;
    CPU_ZERO(&set);
    const int n = sched_getaffinity(0, sizeof(set), &set) == 0 ? CPU_COUNT(&set) : 0;
    return n > 0 ? int64_t(n) : std::max<int64_t>(1, std::thread::hardware_concurrency());
  }();
  return cpus;
}

void set_kernel_threads(int64_t n) { g_kernel_threads = std::max<int64_t>(n, 0); }

void parallel_items(int64_t total, int64_t threads, const std::function<void(int64_t)>& fn) {
  const int64_t workers = std::min(threads, total);
  if (workers <= 1) {
    for (int64_t w = 0; w < total; ++w) fn(w);
    return;
  }
  std::atomic<int64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex error_mu;
  std::exception_ptr error;
  const std::function<void()> body = [&] {
    try {
      for (int64_t w = next++; w < total && !failed; w = next++) fn(w);
    } catch (...) {
      std::lock_guard<std::mutex> l(error_mu);
      if (!failed.exchange(true)) error = std::current_exception();
    }
  };
  if (!pool().run(workers - 1, body)) body();  // the pool is busy with another caller's call
  if (error) std::rethrow_exception(error);
}

}  // namespace attnscope
