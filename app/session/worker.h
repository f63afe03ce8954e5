#pragma once
// The one thread that runs LibTorch for the window. The UI thread never waits on it: it submits the LATEST
// request of each column (older pending ones are dropped), and polls immutable results every frame.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine.h"
#include "incremental.h"
#include "helper_threads.h"
#include "knockout.h"
#include "params.h"
#include "lru_cache.h"
#include "model_policy.h"
#include "pattern.h"

namespace attnscope::session {

struct ColumnRequest {
  uint64_t seq = 0;  // increasing per column; results carry it back
  std::string variant;
  ParamValues params;
  // Set for per-layer columns and painted masks: one spec per layer, built with Model::with_layers (variant and
  // params then only name the column).
  std::vector<LayerSpec> layers;
  std::vector<int64_t> tokens, kv_tokens;
  bool convert = false;  // run the base checkpoint converted even when one trained with the variant is shipped
  std::vector<HeadKnockout> knockouts;     // heads knocked out (knockout.h); empty: none
  KnockMode knock_mode = KnockMode::Zero;  // zeroed, or replaced by their means over the held-out slice
  bool needs_kv_text() const;              // some layer is cross-attention
};

// Empty maps, shared: what a result holds until (or unless) it has its own.
const std::shared_ptr<const AttentionMaps>& no_maps();

struct ColumnResult {
  uint64_t seq = 0;
  bool ok = false;
  std::string error;  // attnscope::Error text (impossible parameters, ...)
  // Never null (an error's are empty). Shared with the column's incremental state, never copied: a keystroke
  // would otherwise copy every layer's and head's T x T matrix into each result (8 MiB a column at 256 characters).
  std::shared_ptr<const AttentionMaps> maps = no_maps();
  std::vector<int64_t> tokens, kv_tokens;  // what was computed (labels)
  double prepare_ms = 0;                   // model lookup / conversion
  bool model_cached = false;
  // How the maps were computed (incremental.h): rows reused from the column's previous text, rows computed now,
  // and why the whole text was computed when the variant cannot append rows ("" when it can).
  int64_t reused_rows = 0, computed_rows = 0;
  std::string whole_reason;
  double computed_fraction = 0;      // share of the T x S pairs computed, averaged over layers and heads
  std::vector<int64_t> layer_pairs;  // [L] pairs computed by each layer, all heads
  std::string model_dir;             // the checkpoint the column's model comes from
  bool shipped = false;              // model_dir is the checkpoint trained with this variant (else the base, converted)
  Comparison comparison;             // what the loss is compared with (model_policy.h: like for like)
  std::string budget;                // model_dir's training budget ("1,000 steps"; "" when it records none)
  std::string replaces;         // converted: the shipped checkpoint trained with the variant it stands in for ("" none)
  std::string replaces_budget;  // and its budget
  double base_loss = 0;         // the comparison model's loss on the same tokens (NaN: none)
  std::vector<HeadKnockout> knockouts;                               // what was knocked out (the request's)
  KnockMode knock_mode = KnockMode::Zero;                            // and how (the request's)
  double unknocked_loss = std::numeric_limits<double>::quiet_NaN();  // with knock-outs: the loss without them
  // With knock-outs: the held-out slice's loss (head_analysis.h: heldout_slice) with them minus without (NaN: none)
  double heldout_knock_delta = std::numeric_limits<double>::quiet_NaN();
  // KV cache by the layers' formulas (fp32) at curve_tokens lengths: this column, and the base (MHA) model
  std::vector<int64_t> curve_tokens, cache_curve, base_curve;
  int64_t base_cache_now = 0;           // the base model's cache at this text's length (ratios at the same length)
  std::vector<PatternSummary> pattern;  // [L] masked variants' patterns and tile maps; the tiled kernel's tiles
  ReferenceMaps reference;  // against the exact softmax (approximating variants; layers == 0 when none applies)
  // The reference is a second whole forward: it is computed when the worker is idle, after every column's maps are
  // out, and arrives as a new result of the same seq (until then `reference` is empty and this is true).
  bool reference_pending = false;
};

// Repeated forwards of a column's latest result, measured while the worker has nothing else to do.
struct ColumnTiming {
  uint64_t seq = 0;        // the result they belong to
  std::vector<double> ms;  // forward wall times, device synchronised
};
constexpr size_t kTimingRuns = 9;
// The idle jobs (a column's timing repeats, an approximation's exact reference: whole forwards of ~12 ms each) start
// only this long after the last request, as the heads' roles do: while someone types, the cores go to the columns'
// new rows and to drawing them. Typed into the window 0.3 s apart, the timing repeats between keystrokes had kept
// the worker busy all the time, and the software-rendered frames took 22 ms against 13 (the same cores).
constexpr std::chrono::milliseconds kIdleAfter{400};
// Per model cache (converted weights; final models), beyond the models the open columns use (never evicted: see
// LruCache). An hour of random input through X (scripts/soak_x.py) with 64 MiB each and the checkpoints unbounded
// grew the window by 126 MiB after its first minute; the bundled model is 3.2 MB, so 8 MiB keeps the last two
// settings of each kind. The bound (50 MiB of growth after the first minute, whatever the input) has to
// hold every cache here filled: at 16 + 16 + 24 + 12 MiB the window's memory rose in two steps over the first 18
// minutes of a soak, by 70 MiB in all, then stayed flat for 40 minutes (2026-12-04).
constexpr size_t kModelCacheBytes = size_t(8) << 20;
// The shipped checkpoints loaded as columns' models or comparisons (18 of them would be 58 MB), reloaded when needed.
constexpr size_t kCheckpointCacheBytes = size_t(12) << 20;
// Knocked-out copies (each also holds its source model, often in the caches above as well).
constexpr size_t kKnockCacheBytes = size_t(6) << 20;
size_t model_bytes(const Model& m);  // what a cached model holds

struct GenerateJob {
  std::vector<int64_t> prompt;
  GenerateOptions options;
};

// A snapshot of the text being generated.
struct GenerateState {
  bool running = false, done = false;
  uint64_t job = 0;
  std::string text;  // the new characters so far
  std::string error;
};

// Generation in lockstep: every column's model decodes the same prompt with the same options, one step each
// per lockstep step. shared_stream: the columns after the first are fed the first column's tokens (the caches are
// compared on one text); otherwise each samples its own (same seed).
struct DecodeColumn {
  int column = 0;       // Column::id
  ColumnRequest model;  // the model the column's maps run (its tokens and seq unused): the same one decodes
};
struct DecodeJob {
  std::vector<DecodeColumn> columns;
  std::vector<int64_t> prompt;
  GenerateOptions options;  // options.stream_to: the positions run on past the context to there (no refill)
  bool shared_stream = true;
  // Non-empty: every column is fed these tokens in order instead of sampling (teacher forcing), so each frame's
  // probability is that column's next-character prediction of a given text (the held-out split): its loss.
  std::vector<int64_t> feed;
};
// Frames newer than this keep their weights and held positions; older ones keep only their token, probability and
// cache bytes (a dense column streamed to 4,096 positions would otherwise hold ~1 GiB of rows).
constexpr size_t kFramesWithWeights = 512;
constexpr size_t kLossMean = 32;  // steps in DecodeTrack::mean_loss's running mean
// One column's decoding so far. Frames are immutable and shared with the UI.
struct DecodeTrack {
  int column = 0;
  std::string variant;
  std::string error;            // the model could not be built or cannot decode (no frames then)
  std::vector<int64_t> prompt;  // as prefilled (positions 0 .. prompt.size() - 1)
  std::vector<std::shared_ptr<const DecodeFrame>> frames;
  // [frames] -ln p of the token read, as a running mean over the last kLossMean steps (the loss on a fed text),
  // nats; appended with each frame, so the window reads it and computes nothing per frame.
  std::vector<double> mean_loss;
};
struct DecodeState {
  uint64_t session = 0;    // 0: never started
  bool preparing = false;  // building the models and prefilling
  bool full = false;       // a decoder used up the context (or the stream, or the fed text): no more steps
  bool shared_stream = true;
  bool fed = false;       // the columns read DecodeJob::feed
  int64_t capacity = 0;   // positions the decoders run (the context, or options.stream_to)
  int driver = -1;        // index into tracks of the column whose tokens everyone is fed (shared stream)
  int64_t requested = 0;  // lockstep steps asked for so far
  std::string error;
  std::vector<DecodeTrack> tracks;
  size_t steps() const {  // lockstep steps done
    size_t n = 0;
    for (const auto& t : tracks) n = std::max(n, t.frames.size());
    return n;
  }
};

class Worker {
 public:
  // model_cache_bytes: the bound of each model cache (tests use a small one).
  explicit Worker(size_t model_cache_bytes = kModelCacheBytes);
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

  uint64_t start_decode(DecodeJob j);  // replaces a previous session; returns the session id
  void request_steps(int64_t n);       // n more lockstep steps (stops at the context)
  void stop_decode();                  // no further steps (pending ones dropped); the frames stay
  DecodeState decode_state() const;    // a snapshot (frames shared, not copied)

  bool busy() const;  // a job running or pending (timing repeats included)
  // Columns computed at once (default: one per logical CPU; 1: one after another).
  void set_column_threads(int n);
  // Called (on a worker thread, no lock held) after each column's result is published: the window wakes its event
  // wait with it (glfwPostEmptyEvent), so a result is drawn at once, not when the wait times out.
  void set_on_publish(std::function<void()> f);
  int column_threads() const;
  int64_t threads() const;  // LibTorch's intra-op threads (0 until the model is loaded)
  size_t cached_models() const;
  size_t cached_model_bytes() const;  // what the model caches hold (each bounded: kModelCacheBytes)

 private:
  void loop();
  // loop()'s jobs, called with the lock held (each unlocks while it computes).
  void run_load(std::unique_lock<std::mutex>& l);
  void drop_without_model();
  void run_generate(std::unique_lock<std::mutex>& l, const std::shared_ptr<const Model>& base);
  void run_timing(std::unique_lock<std::mutex>& l);
  void run_reference(std::unique_lock<std::mutex>& l);
  void run_column(std::unique_lock<std::mutex>& l, const std::shared_ptr<const Model>& base);
  int take_column(ColumnRequest& r);                                               // lock held
  void prepare_decode(const Model& base, const DecodeJob& job, uint64_t session);  // lock not held
  void decode_step();                                                              // lock not held
  std::shared_ptr<const Model> model_for(const Model& base, const std::string& variant, const ParamValues& p,
                                         bool convert, ColumnResult& res);
  std::shared_ptr<const Model> checkpoint(const std::string& dir);
  // if_free: only when no other thread is computing it (else NaN, nothing done)
  double comparison_loss(const std::shared_ptr<const Model>& base, const std::string& dir, const ColumnRequest& r,
                         bool if_free = false);
  struct ComparisonState;  // below
  // worker_losses.cpp: the comparison checkpoint's model, its shared incremental state (taken under comparison_mu_,
  // updated under its own lock), its losses by text (lock held), and whether a column's model is that checkpoint
  // unchanged (then its own comparison).
  std::shared_ptr<const Model> comparison_model(const std::shared_ptr<const Model>& base, const std::string& dir);
  std::shared_ptr<ComparisonState> comparison_state(const std::string& dir);
  void remember_comparison_loss(const std::string& dir, const std::vector<int64_t>& tokens, double loss);
  std::shared_ptr<const Model> self_comparison(const std::shared_ptr<const Model>& base, const Model& m,
                                               const ColumnRequest& r, const ColumnResult& res);
  // The column's model with the request's heads knocked out (worker_losses.cpp), the last few cached by (model,
  // knock-outs, mode): typing with a knock-out reuses the copy and so the incremental maps. Sets the result's
  // held-out loss change (measured once per copy).
  std::shared_ptr<const Model> knocked_model(const std::shared_ptr<const Model>& m, const ColumnRequest& r,
                                             ColumnResult& res);
  std::shared_ptr<const Model> layered_model(const Model& base, const std::vector<LayerSpec>& layers,
                                             ColumnResult& res);
  // The model a request names before its knock-outs: its variant (parameters resolved) or its layers, converted when
  // asked, by the one model policy. The column's maps (compute) and its generation session both start here.
  std::shared_ptr<const Model> request_model(const Model& base, const ColumnRequest& r, ColumnResult& res);
  // lock held; shared: whether the weight cache holds the same model (LruCache::put)
  void cache_full(const std::string& key, std::shared_ptr<const Model> m, long shared = 0);
  std::shared_ptr<const ColumnResult> compute(const std::shared_ptr<const Model>& base, const ColumnRequest& r,
                                              std::shared_ptr<const Model>* used, int column);
  void publish(int column, const ColumnRequest& req, std::shared_ptr<const ColumnResult> res,
               std::shared_ptr<const Model> used);  // lock held
  int reference_candidate() const;                  // a column whose result waits for its reference, or -1
  int timing_candidate() const;                     // a column whose timing is incomplete, or -1 (lock held)
  bool decode_wanted() const;                       // lockstep steps asked for and possible (lock held)

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::function<void()> on_publish_;  // set_on_publish
  bool trim_due_ = false;             // a job ran since the last give_back_free_memory (loop())
  // The last submit: the idle jobs (timing repeats, exact references) wait kIdleAfter past it (loop()).
  std::chrono::steady_clock::time_point last_submit_{};
  std::string load_dir_;
  bool load_pending_ = false, loading_ = false;
  std::shared_ptr<const Model> model_;
  std::string model_error_;
  int64_t threads_ = 0;
  std::map<int, ColumnRequest> pending_;
  std::map<int, uint64_t> pending_since_;
  std::set<int> computing_;  // columns a thread is computing now (run_column)
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
  // Each column's incremental state (its model, caches and maps of its previous text): a keystroke computes only
  // the new rows. Worker thread only; dropped with the column, replaced when the column's model changes.
  // Columns computed in parallel (run_column) share these maps and the checkpoints: each under its own lock.
  std::mutex inc_mu_, comparison_mu_, checkpoint_mu_;
  // Columns at once: one per logical CPU. On this 2-core machine (bench --interactive, 2026-12-04) two at once gave
  // cold 59-72 ms against 97 one at a time, keystroke 12-14 against 20. (Threads started per batch had made 2 at once
  // 2x slower than 1: every batch faulted its memory in afresh; see helper_threads.h.)
  int column_threads_ = std::max(1, int(std::thread::hardware_concurrency()));
  std::map<int, std::unique_ptr<IncrementalAttend>> incremental_;
  // The same, per comparison checkpoint; each with its own lock, so that columns compared with different checkpoints
  // update in parallel (one lock for all had serialised the cold text's six self-compared columns).
  struct ComparisonState {
    std::mutex mu;  // held while the state updates
    std::unique_ptr<IncrementalAttend> inc;
    IncrementalAttend& of(const std::shared_ptr<const Model>& m) {  // mu held: the state of model m (new if another's)
      if (!inc || inc->model() != m) inc = std::make_unique<IncrementalAttend>(m);
      return *inc;
    }
  };
  std::map<std::string, std::shared_ptr<ComparisonState>> comparison_inc_;
  // The comparison models' losses by (checkpoint folder, text), computed once each.
  std::map<std::pair<std::string, std::vector<int64_t>>, double> comparison_loss_;
  // Knocked-out copies by (the source's address, knock-outs and mode), and the heads' means on the held-out slice by
  // the source's address; each entry holds its source so the address stays its own. Under knock_mu_.
  struct Knocked {
    std::shared_ptr<const Model> source, copy;
    double heldout_delta = 0;
  };
  struct Means {
    std::shared_ptr<const Model> source;
    HeadMeans means;
  };
  std::mutex knock_mu_;
  LruCache<Knocked> knocked_{kKnockCacheBytes};
  std::map<const Model*, Means> means_;
  bool running_ = false;
  std::unique_ptr<GenerateJob> gen_pending_;
  GenerateState gen_;
  std::atomic<bool> gen_cancel_{false};
  // Lockstep generation: the job to prepare, its decoders (worker thread only; index = tracks) and the published
  // state.
  std::unique_ptr<DecodeJob> decode_pending_;
  std::vector<std::unique_ptr<Decoder>> decoders_;
  std::vector<int64_t> feed_;  // the session's fed tokens (DecodeJob::feed), read by decode_step only
  DecodeState decode_;
  // Converted models by (variant, parameters that change the weights), and the final models by all parameters:
  // least recently used first out, each within kModelCacheBytes (going back to a setting is instant; hours of
  // slider play do not grow the process).
  LruCache<std::shared_ptr<const Model>> weight_cache_, full_cache_;
  // Checkpoints other than the base (shipped variants, comparison models) by folder (null: unreadable), least
  // recently used first out within kCheckpointCacheBytes. Under checkpoint_mu_.
  LruCache<std::shared_ptr<const Model>> checkpoints_{kCheckpointCacheBytes};
  // The threads that compute a batch's other columns (run_column), one LibTorch thread each, kept between batches.
  HelperThreads helpers_{[] { use_interactive_threads(); }};
  std::thread thread_;
};

// Whether two models' layers run the same attention: every layer the same variant with the same parameters, and no
// painted mask (the worker's test for a column that is its own comparison, worker_losses.cpp).
bool same_attention(const ModelConfig& a, const ModelConfig& b);
// "gqa[groups=2]" for the cache keys: only the parameters with changes_weights, or all of them.
std::string model_key(const std::string& variant, const ParamValues& p, bool weights_only);
// Every layer's model_key, and a hash of each painted mask: the key of a with_layers model.
std::string layers_key(const std::vector<LayerSpec>& layers);

}  // namespace attnscope::session
