#pragma once
// The one thread that runs LibTorch for the window. The UI thread never waits on it: it submits the LATEST
// request of each column (older pending ones are dropped), and polls immutable results every frame.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine.h"
#include "params.h"

namespace attnscope::gui {

struct ColumnRequest {
  uint64_t seq = 0;  // increasing per column; results carry it back
  std::string variant;
  ParamValues params;
  std::vector<int64_t> tokens, kv_tokens;
};

struct ColumnResult {
  uint64_t seq = 0;
  bool ok = false;
  std::string error;        // attnscope::Error text (impossible parameters, ...)
  AttentionMaps maps;
  std::vector<int64_t> tokens, kv_tokens;  // what was computed (labels)
  double prepare_ms = 0;    // model lookup / conversion
  bool model_cached = false;
  double computed_fraction = 0;  // share of the T x S pairs computed, averaged over layers and heads
};

struct GenerateJob {
  std::vector<int64_t> prompt;
  GenerateOptions options;
};

// A snapshot of the text being generated.
struct GenerateState {
  bool running = false, done = false;
  uint64_t job = 0;
  std::string text;   // the new characters so far
  std::string error;
};

class Worker {
 public:
  Worker();
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void load_model(const std::string& dir);
  // null while loading or after a failure (then model_error() says why)
  std::shared_ptr<const Model> model() const;
  std::string model_error() const;
  bool loading() const;

  void submit(int column, ColumnRequest r);  // replaces that column's pending request
  void forget(int column);                   // column removed
  std::shared_ptr<const ColumnResult> result(int column) const;

  uint64_t start_generate(GenerateJob j);  // returns the job id
  void cancel_generate();
  GenerateState generate_state() const;

  bool busy() const;  // a job running or pending
  size_t cached_models() const;

 private:
  void loop();
  std::shared_ptr<const Model> model_for(const Model& base, const std::string& variant, const ParamValues& p,
                                         bool* cached);
  std::shared_ptr<const ColumnResult> compute(const Model& base, const ColumnRequest& r);

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::string load_dir_;
  bool load_pending_ = false, loading_ = false;
  std::shared_ptr<const Model> model_;
  std::string model_error_;
  std::map<int, ColumnRequest> pending_;
  std::map<int, uint64_t> pending_since_;
  uint64_t tick_ = 0;
  std::map<int, std::shared_ptr<const ColumnResult>> results_;
  bool running_ = false;
  std::unique_ptr<GenerateJob> gen_pending_;
  GenerateState gen_;
  std::atomic<bool> gen_cancel_{false};
  // Converted models by (variant, parameters that change the weights), and the final models by all parameters.
  std::map<std::string, std::shared_ptr<const Model>> weight_cache_, full_cache_;
  std::vector<std::string> full_order_;
  std::thread thread_;
};

// "gqa[groups=2]" for the cache keys: only the parameters with changes_weights, or all of them.
std::string model_key(const std::string& variant, const ParamValues& p, bool weights_only);

}  // namespace attnscope::gui
