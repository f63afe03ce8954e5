#pragma once
// The one thread that runs LibTorch for the window. The UI thread never waits on it: it submits the LATEST
// request of each column (older pending ones are dropped), and polls immutable results every frame.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine.h"
#include "params.h"
#include "pattern.h"

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
  std::vector<int64_t> layer_pairs;  // [L] pairs computed by each layer, all heads
  std::string model_dir;    // the checkpoint the column's model comes from
  bool shipped = false;     // model_dir is the checkpoint trained with this variant (else the base, converted)
  double base_loss = 0;     // the base (MHA) model's loss on the same tokens
  // KV cache by the layers' formulas (fp32) at curve_tokens lengths: this column, and the base (MHA) model
  std::vector<int64_t> curve_tokens, cache_curve, base_curve;
  std::vector<PatternSummary> pattern;  // [L] masked variants' patterns and tile maps; the tiled kernel's tiles
  ReferenceMaps reference;  // against the exact softmax (approximating variants; layers == 0 when none applies)
};

// Repeated forwards of a column's latest result, measured while the worker has nothing else to do.
struct ColumnTiming {
  uint64_t seq = 0;         // the result they belong to
  std::vector<double> ms;   // forward wall times, device synchronised
};
constexpr size_t kTimingRuns = 9;

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
  ColumnTiming timing(int column) const;

  uint64_t start_generate(GenerateJob j);  // returns the job id
  void cancel_generate();
  GenerateState generate_state() const;

  bool busy() const;  // a job running or pending (timing repeats included)
  int64_t threads() const;  // LibTorch's intra-op threads (0 until the model is loaded)
  size_t cached_models() const;

 private:
  void loop();
  std::shared_ptr<const Model> model_for(const Model& base, const std::string& variant, const ParamValues& p,
                                         ColumnResult& res);
  std::shared_ptr<const Model> shipped_model(const Model& base, const std::string& variant);
  std::shared_ptr<const ColumnResult> compute(const Model& base, const ColumnRequest& r,
                                              std::shared_ptr<const Model>* used);
  int timing_candidate() const;  // a column whose timing is incomplete, or -1 (lock held)

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::string load_dir_;
  bool load_pending_ = false, loading_ = false;
  std::shared_ptr<const Model> model_;
  std::string model_error_;
  int64_t threads_ = 0;
  std::map<int, ColumnRequest> pending_;
  std::map<int, uint64_t> pending_since_;
  uint64_t tick_ = 0;
  std::map<int, std::shared_ptr<const ColumnResult>> results_;
  // What the timing repeats run: each column's latest successful model and tokens, and the samples so far.
  struct Timed {
    std::shared_ptr<const Model> model;
    std::vector<int64_t> tokens, kv_tokens;
    ColumnTiming timing;
  };
  std::map<int, Timed> timed_;
  std::set<int> forgotten_;  // removed columns (ids are never reused)
  // The base model's loss by text (tokens), computed once per text.
  std::map<std::vector<int64_t>, double> base_loss_;
  bool running_ = false;
  std::unique_ptr<GenerateJob> gen_pending_;
  GenerateState gen_;
  std::atomic<bool> gen_cancel_{false};
  // Converted models by (variant, parameters that change the weights), and the final models by all parameters.
  std::map<std::string, std::shared_ptr<const Model>> weight_cache_, full_cache_;
  std::vector<std::string> full_order_;
  // Shipped checkpoints by variant (null: none usable), loaded on first use.
  std::map<std::string, std::shared_ptr<const Model>> shipped_;
  std::thread thread_;
};

// "gqa[groups=2]" for the cache keys: only the parameters with changes_weights, or all of them.
std::string model_key(const std::string& variant, const ParamValues& p, bool weights_only);

}  // namespace attnscope::gui
