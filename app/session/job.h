#pragma once
// The one way the front ends run long work in the background (the scaling sweep, the advisor's gathering, an
// export's encode and write): a job on its own thread that can be cancelled, reports progress and publishes a
// snapshot (partial results as they arrive, the outcome at the end). The UI thread polls it every frame and never
// waits on it; only the destructor does, after asking the job to stop. The window's per-column computations use
// the Worker (worker.h), whose slots are latest-wins: a newer request replaces a pending one.
#include <atomic>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "error.h"

namespace attnscope::session {

struct JobProgress {
  int done = 0, total = 0;  // steps finished, and all of them (0: unknown)
  std::string current;      // what is being done now ("" when finished)
};

template <typename Snapshot>
class Job {
 public:
  // What the body sees: the cancel flag, and the ways to report.
  class Control {
   public:
    explicit Control(Job& j) : job_(j) {}
    bool cancelled() const { return job_.cancel_; }
    const std::atomic<bool>* cancel_flag() const { return &job_.cancel_; }  // for engine calls that poll one
    void progress(int done, int total, std::string current) {
      std::lock_guard<std::mutex> l(job_.mu_);
      job_.progress_ = {done, total, std::move(current)};
    }
    // f(Snapshot&) under the lock: publish partial results or the outcome.
    template <typename F>
    void update(F&& f) {
      std::lock_guard<std::mutex> l(job_.mu_);
      f(job_.snapshot_);
    }

   private:
    Job& job_;
  };
  using Body = std::function<void(Control&)>;

  // Starts the body on its own thread. An Error it throws becomes error(); any other exception "internal error: ...".
  explicit Job(Body body, Snapshot initial = Snapshot{}) : snapshot_(std::move(initial)) {
    thread_ = std::thread([this, body = std::move(body)] { run(body); });
  }
  ~Job() {
    cancel_ = true;
    thread_.join();
  }
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;

  void cancel() { cancel_ = true; }
  bool cancelled() const { return cancel_; }
  bool running() const { return !finished_; }
  JobProgress progress() const {
    std::lock_guard<std::mutex> l(mu_);
    return progress_;
  }
  std::string error() const {
    std::lock_guard<std::mutex> l(mu_);
    return error_;
  }
  Snapshot snapshot() const {
    std::lock_guard<std::mutex> l(mu_);
    return snapshot_;
  }

 private:
  void run(const Body& body) {
    Control c(*this);
    std::string why;
    try {
      body(c);
    } catch (const Error& e) {
      why = e.what();
    } catch (const std::exception& e) {
      why = std::string("internal error: ") + e.what();
    }
    std::lock_guard<std::mutex> l(mu_);
    error_ = why;
    progress_.current.clear();
    finished_ = true;
  }

  mutable std::mutex mu_;
  Snapshot snapshot_;
  JobProgress progress_;
  std::string error_;
  std::atomic<bool> cancel_{false}, finished_{false};
  std::thread thread_;  // last: started after every member above exists
};

}  // namespace attnscope::session
