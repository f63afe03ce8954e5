// A fixed set of threads that run a batch of jobs beside the calling thread (the worker's columns computed at once).
// Each helper lives as long as the set, so what a thread sets up once (LibTorch's and OpenBLAS's thread counts, its
// malloc arena, its stack) is set up once, not once per batch: a thread started per batch (std::async) made every
// batch fault its memory in afresh (bench --interactive --column-threads 2: 1.1 M page faults against 0.1 M).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace attnscope::session {

class HelperThreads {
 public:
  // init runs once on each helper before its first job (e.g. use_interactive_threads).
  explicit HelperThreads(std::function<void()> init = {});
  ~HelperThreads();  // waits for the jobs handed out, then joins
  HelperThreads(const HelperThreads&) = delete;
  HelperThreads& operator=(const HelperThreads&) = delete;

  // Runs jobs[0] on the calling thread and the others on helpers (started on first need, then kept), and returns
  // when every job is done. Jobs must not throw. One batch at a time (the worker's thread is the only caller).
  void run(const std::vector<std::function<void()>>& jobs);
  size_t started() const;  // helpers started so far

 private:
  void loop();

  std::function<void()> init_;
  mutable std::mutex mu_;
  std::condition_variable wake_, done_;
  std::deque<const std::function<void()>*> queue_;  // jobs not yet taken
  size_t unfinished_ = 0;                           // jobs handed to helpers and not yet finished
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace attnscope::session
