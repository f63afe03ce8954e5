// HelperThreads (app/session/helper_threads.h): a batch's jobs run at once, the first on the caller, and the
// helpers (with their one-time setup) are kept from batch to batch.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "helper_threads.h"

using attnscope::session::HelperThreads;

namespace {

// Every job waits (at most 10 s) until all of the batch's jobs have arrived: passes only if they run at once.
struct Barrier {
  std::mutex mu;
  std::condition_variable cv;
  size_t arrived = 0, need;
  explicit Barrier(size_t n) : need(n) {}
  bool arrive() {
    std::unique_lock<std::mutex> l(mu);
    if (++arrived == need) cv.notify_all();
    return cv.wait_for(l, std::chrono::seconds(10), [&] { return arrived >= need; });
  }
};

}  // namespace

TEST(HelperThreads, RunsABatchAtOnceAndKeepsItsHelpers) {
  std::atomic<int> inits{0};
  HelperThreads pool([&] { ++inits; });
  for (int batch = 0; batch < 3; ++batch) {
    Barrier barrier(4);
    std::mutex mu;
    std::set<std::thread::id> ran_on;
    std::atomic<int> together{0};
    std::thread::id first;
    std::vector<std::function<void()>> jobs;
    for (int i = 0; i < 4; ++i)
      jobs.push_back([&, i] {
        if (barrier.arrive()) ++together;
        std::lock_guard<std::mutex> l(mu);
        ran_on.insert(std::this_thread::get_id());
        if (i == 0) first = std::this_thread::get_id();
      });
    pool.run(jobs);
    EXPECT_EQ(together.load(), 4) << "batch " << batch << ": the jobs did not run at once";
    EXPECT_EQ(ran_on.size(), 4u);
    EXPECT_EQ(first, std::this_thread::get_id()) << "the first job runs on the caller";
    EXPECT_EQ(pool.started(), 3u);
    EXPECT_EQ(inits.load(), 3) << "each helper is set up once, not once per batch";
  }
  // A smaller batch uses the helpers there are; a larger one starts only the missing ones.
  std::atomic<int> done{0};
  pool.run({[&] { ++done; }, [&] { ++done; }});
  EXPECT_EQ(done.load(), 2);
  EXPECT_EQ(pool.started(), 3u);
  std::vector<std::function<void()>> six(6, [&] { ++done; });
  pool.run(six);
  EXPECT_EQ(done.load(), 8);
  EXPECT_EQ(pool.started(), 5u);
  // The two new helpers set themselves up when they start, which may be after the old ones took all six jobs.
  for (int i = 0; i < 1000 && inits.load() < 5; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(inits.load(), 5);
  pool.run({});  // nothing to do: returns
}
