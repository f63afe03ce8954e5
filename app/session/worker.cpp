#include "worker.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "error.h"
#include "registry.h"

namespace attnscope::session {

namespace {
// The allocator's free pages back to the system (malloc_trim on glibc; elsewhere nothing).
void give_back_free_memory() {
#ifdef __GLIBC__
  malloc_trim(0);  // every arena: free pages at the top and, since glibc 2.8, whole free pages inside
#endif
}
}  // namespace

size_t model_bytes(const Model& m) {
  return size_t(m.parameter_count()) * sizeof(float);  // fp32 weights in memory (buffers are small beside them)
}

std::string model_key(const std::string& variant, const ParamValues& p, bool weights_only) {
  std::string k = variant + "[";
  const VariantInfo* info = find_variant(variant);
  for (const auto& [name, v] : p) {
    const ParamSpec* s = info ? info->find_param(name) : nullptr;
    if (weights_only && s && !s->changes_weights) continue;
    k += name + "=" + (s ? format_param(*s, v) : std::to_string(v)) + ",";
  }
  return k + "]";
}

std::string layers_key(const std::vector<LayerSpec>& layers) {
  std::string k = "layers:";
  for (const LayerSpec& l : layers) {
    uint64_t h = 1469598103934665603ull;
    for (uint8_t b : l.mask.cells) h = (h ^ b) * 1099511628211ull;
    k += model_key(l.variant, l.params, false) +
         (l.mask.empty() ? "" : "{" + std::to_string(l.mask.n) + ":" + std::to_string(h) + "}") + ";";
  }
  return k;
}

bool ColumnRequest::needs_kv_text() const {
  if (layers.empty()) return get_variant(variant).needs_kv_text;
  for (const LayerSpec& l : layers)
    if (get_variant(l.variant).needs_kv_text) return true;
  return false;
}

Worker::Worker(size_t model_cache_bytes) : weight_cache_(model_cache_bytes), full_cache_(model_cache_bytes) {
  keep_freed_buffers();  // a keystroke's buffers reused, not faulted in afresh (engine.h)
  thread_ = std::thread([this] { loop(); });
}

Worker::~Worker() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
    gen_cancel_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Worker::load_model(const std::string& dir) {
  {
    std::lock_guard<std::mutex> l(mu_);
    load_dir_ = dir;
    load_pending_ = true;
    model_.reset();
    model_error_.clear();
  }
  cv_.notify_all();
}

std::shared_ptr<const Model> Worker::model() const {
  std::lock_guard<std::mutex> l(mu_);
  return model_;
}
std::string Worker::model_error() const {
  std::lock_guard<std::mutex> l(mu_);
  return model_error_;
}
bool Worker::loading() const {
  std::lock_guard<std::mutex> l(mu_);
  return load_pending_ || loading_;
}

void Worker::submit(int column, ColumnRequest r) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (!pending_.count(column)) pending_since_[column] = ++tick_;
    pending_[column] = std::move(r);
    last_submit_ = std::chrono::steady_clock::now();
  }
  cv_.notify_all();
}

void Worker::forget(int column) {
  std::lock_guard<std::mutex> l(mu_);
  pending_.erase(column);
  pending_since_.erase(column);
  results_.erase(column);
  timed_.erase(column);
  forgotten_.insert(column);
}

std::shared_ptr<const ColumnResult> Worker::result(int column) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = results_.find(column);
  return it == results_.end() ? nullptr : it->second;
}

ColumnTiming Worker::timing(int column) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = timed_.find(column);
  return it == timed_.end() ? ColumnTiming{} : it->second.timing;
}

int Worker::reference_candidate() const {
  for (const auto& [column, r] : results_) {
    auto t = timed_.find(column);
    if (r && r->reference_pending && t != timed_.end() && t->second.model && t->second.timing.seq == r->seq)
      return column;
  }
  return -1;
}

int Worker::timing_candidate() const {
  for (const auto& [column, t] : timed_)
    if (t.model && t.timing.ms.size() < kTimingRuns) return column;
  return -1;
}

bool Worker::busy() const {
  std::lock_guard<std::mutex> l(mu_);
  return running_ || load_pending_ || !pending_.empty() || gen_pending_ != nullptr || gen_.running ||
         decode_pending_ != nullptr || decode_wanted() ||
         (model_ && (reference_candidate() >= 0 || timing_candidate() >= 0));
}

int64_t Worker::threads() const {
  std::lock_guard<std::mutex> l(mu_);
  return threads_;
}

size_t Worker::cached_models() const {
  std::lock_guard<std::mutex> l(mu_);
  return weight_cache_.size() + full_cache_.size();
}

size_t Worker::cached_model_bytes() const {
  std::lock_guard<std::mutex> l(mu_);
  return weight_cache_.bytes() + full_cache_.bytes();
}

// The sparsity row per layer [L]: the masked layers' summaries (`described`, [L] or empty), the tiled kernel's tile
// map at T x T.
static std::vector<PatternSummary> sparsity_rows(const std::vector<LayerSpec>& specs,
                                                 std::vector<PatternSummary> described, int64_t T) {
  std::vector<PatternSummary> rows;  // [L]
  for (size_t l = 0; l < specs.size(); ++l) {
    const LayerSpec& s = specs[l];
    PatternSummary ps = l < described.size() ? std::move(described[l]) : PatternSummary{};
    if (s.variant == "tiled") {
      const KernelTileMap t = tile_map(T, T, int64_t(s.params.at("br")), int64_t(s.params.at("bc")));
      ps.tile_rows = int(t.rows);
      ps.tile_cols = int(t.cols);
      ps.tile_h = int(t.br);
      ps.tile_w = int(t.bc);
      ps.tiles = t.state;
      ps.tiles_vs_causal = 1.0;  // the tiled kernel skips exactly the tiles a causal kernel skips
    }
    rows.push_back(std::move(ps));
  }
  return rows;
}

const std::shared_ptr<const AttentionMaps>& no_maps() {
  static const std::shared_ptr<const AttentionMaps> empty = std::make_shared<const AttentionMaps>();
  return empty;
}

std::shared_ptr<const ColumnResult> Worker::compute(const std::shared_ptr<const Model>& base_model,
                                                    const ColumnRequest& r, std::shared_ptr<const Model>* used,
                                                    int column) {
  const Model& base = *base_model;
  auto res = std::make_shared<ColumnResult>();
  res->seq = r.seq;
  res->tokens = r.tokens;
  res->kv_tokens = r.kv_tokens;
  try {
    auto t0 = std::chrono::steady_clock::now();
    const VariantInfo& info = get_variant(r.variant);
    ParamValues p = resolve_params(info.params, r.variant, r.params);
    std::vector<LayerSpec> specs = r.layers;  // what each layer runs (for the sparsity row)
    for (LayerSpec& s : specs) s.params = resolve_params(get_variant(s.variant).params, s.variant, s.params);
    auto m = request_model(base, r, *res);
    if (specs.empty()) specs.assign(size_t(m->config().n_layer), LayerSpec{r.variant, p, {}});
    if (!r.knockouts.empty()) {  // the loss without the knock-outs (the quality row's reference), then the copy
      res->unknocked_loss = m->attend(r.tokens, r.needs_kv_text() ? r.kv_tokens : std::vector<int64_t>{}).loss;
      m = knocked_model(m, r, *res);
      res->knockouts = r.knockouts;
      res->knock_mode = r.knock_mode;
    }
    res->prepare_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    // the sparsity row's pattern summaries, described meanwhile on another thread (pattern.h)
    auto patterns = summarize_patterns_async(specs, m->config().n_head, m->config().context, int64_t(r.tokens.size()));
    const std::vector<int64_t> kv = r.needs_kv_text() ? r.kv_tokens : std::vector<int64_t>{};
    // A column that runs its comparison checkpoint unchanged is its own comparison: one forward serves both.
    const std::shared_ptr<const Model> itself = kv.empty() ? self_comparison(base_model, *m, r, *res) : nullptr;
    if (itself) {
      {
        std::lock_guard<std::mutex> g(inc_mu_);
        incremental_.erase(column);  // a state of its own from before is not needed now
      }
      {
        const std::shared_ptr<ComparisonState> st = comparison_state(res->comparison.dir);
        std::lock_guard<std::mutex> g(st->mu);
        IncrementalAttend& inc = st->of(itself);
        inc.update(r.tokens);
        res->maps = inc.shared();
        res->reused_rows = inc.stats().reused_rows;
        res->computed_rows = inc.stats().computed_rows;
        res->whole_reason = inc.why_whole();
      }
      std::lock_guard<std::mutex> l(mu_);  // not under comparison_mu_: run_load takes that one under mu_
      remember_comparison_loss(res->comparison.dir, r.tokens, res->maps->loss);
    } else if (kv.empty()) {  // self-attention: the column's previous text's rows are reused (incremental.h)
      // The comparison model's loss first if no other thread is computing it: asked for after this column's forward,
      // it would leave this core idle while another thread computes it (columns without the comparison's own).
      comparison_loss(base_model, res->comparison.dir, r, true);
      IncrementalAttend* inc;  // this column's (never computed twice at once: run_column takes it from pending_)
      {
        std::lock_guard<std::mutex> g(inc_mu_);
        auto& slot = incremental_[column];
        if (!slot || slot->model() != m) slot = std::make_unique<IncrementalAttend>(m);
        inc = slot.get();
      }
      inc->update(r.tokens);
      res->maps = inc->shared();
      res->reused_rows = inc->stats().reused_rows;
      res->computed_rows = inc->stats().computed_rows;
      res->whole_reason = inc->why_whole();
    } else {
      res->maps = std::make_shared<const AttentionMaps>(m->attend(r.tokens, kv));
      res->computed_rows = res->maps->queries;
      res->whole_reason = "cross-attention reads a second text";
    }
    const AttentionMaps& mp = *res->maps;
    const size_t per_layer = size_t(mp.heads * mp.queries * mp.keys);
    size_t on = 0;
    for (int64_t l = 0; l < mp.layers; ++l) {
      const int64_t pairs = mp.pairs(l);
      res->layer_pairs.push_back(pairs);
      on += size_t(pairs);
    }
    res->computed_fraction = mp.layers == 0 ? 1.0 : double(on) / double(per_layer * size_t(mp.layers));
    // the comparison model's loss on this text (model_policy.h: comparison_for), once per (model, text)
    res->base_loss = comparison_loss(base_model, res->comparison.dir, r);
    // KV cache against the length, up to the context
    const int64_t ctx = m->config().context, kv_len = std::max<int64_t>(1, int64_t(r.kv_tokens.size()));
    res->base_cache_now = cache_formula_bytes(base, std::max<int64_t>(1, res->maps->queries), kv_len);
    for (int k = 1; k <= 32; ++k) {
      const int64_t t = std::max<int64_t>(1, ctx * k / 32);
      res->curve_tokens.push_back(t);
      res->cache_curve.push_back(cache_formula_bytes(*m, t, kv_len));
      res->base_curve.push_back(cache_formula_bytes(base, t, kv_len));
    }
    // sparsity: the pattern's description and tile map per layer (masked layers: described above, meanwhile)
    res->pattern =
        sparsity_rows(specs, patterns.valid() ? patterns.get() : std::vector<PatternSummary>{}, res->maps->queries);
    // approximations: the exact softmax on the same queries and keys
    const bool approximates = std::any_of(specs.begin(), specs.end(), [](const LayerSpec& s) {
      const VariantInfo& v = get_variant(s.variant);
      return v.family != "exact" && v.family != "masked";
    });
    // (MLA is exact over its latents: none); computed when idle (run_reference)
    res->reference_pending = approximates && kv.empty() && has_softmax_reference(*m);
    *used = m;
    res->ok = true;
  } catch (const Error& e) {
    res->error = e.what();
  } catch (const std::exception& e) {
    res->error = std::string("internal error: ") + e.what();
  }
  return res;
}

void Worker::loop() {
  use_interactive_threads();  // small display forwards: OpenBLAS on one thread (engine.h)
  for (;;) {
    std::unique_lock<std::mutex> l(mu_);
    const auto idle_work = [&] { return model_ && (reference_candidate() >= 0 || timing_candidate() >= 0); };
    const auto ready = [&] {
      return stop_ || load_pending_ || gen_pending_ || decode_pending_ || decode_wanted() || !pending_.empty() ||
             (idle_work() && std::chrono::steady_clock::now() >= last_submit_ + kIdleAfter);
    };
    // Until ready (true) or, with a deadline, until then (ready() at that time); an idle job's rest ends the wait.
    const auto wait_ready = [&](const std::chrono::steady_clock::time_point* deadline) {
      while (!ready()) {
        const bool rest = idle_work();
        if (!rest && !deadline) {
          cv_.wait(l);
          continue;
        }
        auto until = rest ? last_submit_ + kIdleAfter : *deadline;
        if (deadline && *deadline < until) until = *deadline;
        cv_.wait_until(l, until);
        if (deadline && std::chrono::steady_clock::now() >= *deadline) return ready();
      }
      return true;
    };
    // After a second with nothing to do, the memory the last jobs freed goes back to the system once (glibc keeps
    // freed pages in its arenas: the window's RSS otherwise ratchets up over an hour of input). Never while typing:
    // pages given back are faulted in again by the next job.
    const auto trim_at = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    if (trim_due_ && !wait_ready(&trim_at)) {
      trim_due_ = false;
      l.unlock();
      give_back_free_memory();
      l.lock();
    }
    wait_ready(nullptr);
    if (stop_) return;
    trim_due_ = true;
    // One job per turn, in this order: a new model, then generation sessions, then the columns, then timing.
    if (load_pending_) {
      run_load(l);
      continue;
    }
    std::shared_ptr<const Model> base = model_;
    if (!base) {  // nothing can run without a model: drop the requests (the UI resubmits after loading)
      drop_without_model();
      continue;
    }
    if (decode_pending_) {  // a new generation session: build every column's model and decoder
      DecodeJob job = std::move(*decode_pending_);
      decode_pending_.reset();
      const uint64_t session = decode_.session;
      running_ = true;
      l.unlock();
      prepare_decode(*base, job, session);
      l.lock();
      running_ = false;
    } else if (decode_wanted()) {  // one lockstep step (decoders_ changes on this thread only)
      running_ = true;
      l.unlock();
      decode_step();
      l.lock();
      running_ = false;
    } else if (gen_pending_) {
      run_generate(l, base);
    } else if (pending_.empty() && reference_candidate() >= 0) {  // idle: a column's exact-softmax reference
      run_reference(l);
    } else if (pending_.empty()) {  // idle: one more timed forward of a column whose timing is incomplete
      run_timing(l);
    } else {
      run_column(l, base);
    }
  }
}

// The model at load_dir_ replaces the current one; every cache of the old one goes. Lock held on entry and exit.
void Worker::run_load(std::unique_lock<std::mutex>& l) {
  std::string dir = load_dir_;
  load_pending_ = false;
  loading_ = true;
  weight_cache_.clear();
  full_cache_.clear();
  checkpoints_.clear();
  timed_.clear();
  comparison_loss_.clear();
  {
    std::lock_guard<std::mutex> g(inc_mu_);
    incremental_.clear();  // the columns' states belong to the old model
  }
  {
    std::lock_guard<std::mutex> g(comparison_mu_);
    comparison_inc_.clear();
  }
  decoders_.clear();  // of the previous model: the session's frames stay, no further steps
  decode_.driver = -1;
  l.unlock();
  std::shared_ptr<const Model> m;
  std::string err;
  try {
    m = Model::load(dir, "auto");
  } catch (const std::exception& e) {
    err = e.what();
  }
  const int64_t threads = compute_threads();
  l.lock();
  threads_ = threads;
  loading_ = false;
  model_ = m;
  model_error_ = err;
  results_.clear();  // results of another model are stale
}

// Without a model, generation requests end with the load error and column requests are dropped (lock held).
void Worker::drop_without_model() {
  pending_.clear();
  if (gen_pending_) {
    gen_pending_.reset();
    gen_.running = false;
    gen_.done = true;
    gen_.error = model_error_.empty() ? "no model loaded" : model_error_;
  }
  if (decode_pending_) {
    decode_pending_.reset();
    decode_.preparing = false;
    decode_.error = model_error_.empty() ? "no model loaded" : model_error_;
  }
}

// One more timed forward of a column whose timing is incomplete (lock held on entry and exit).
void Worker::run_timing(std::unique_lock<std::mutex>& l) {
  const int column = timing_candidate();
  Timed job = timed_[column];
  running_ = true;
  l.unlock();
  double ms = -1;
  try {
    ms = job.model->attend(job.tokens, job.kv_tokens).forward_ms;
  } catch (const std::exception&) {
    ms = -1;  // the same forward succeeded before; a failure now leaves the timing short
  }
  l.lock();
  running_ = false;
  auto it = timed_.find(column);
  if (it != timed_.end() && it->second.timing.seq == job.timing.seq) {
    if (ms >= 0)
      it->second.timing.ms.push_back(ms);
    else
      it->second.model.reset();
  }
}

// The exact-softmax reference of a column's shown result, published as a copy of it with the reference filled in
// (the maps are shared, not copied), unless a newer result replaced it meanwhile (lock held on entry and exit).
void Worker::run_reference(std::unique_lock<std::mutex>& l) {
  const int column = reference_candidate();
  const std::shared_ptr<const ColumnResult> shown = results_[column];
  const Timed job = timed_[column];
  running_ = true;
  l.unlock();
  auto res = std::make_shared<ColumnResult>(*shown);
  res->reference_pending = false;
  try {
    res->reference = reference_maps(*job.model, job.tokens);
    if (std::find(res->reference.available.begin(), res->reference.available.end(), 1) ==
        res->reference.available.end())
      res->reference = ReferenceMaps{};
  } catch (const std::exception&) {
    res->reference = ReferenceMaps{};  // the same forward succeeded for the maps; none is shown then
  }
  l.lock();
  running_ = false;
  auto& slot = results_[column];
  if (slot == shown) slot = std::move(res);  // the timing (keyed by seq) stays with it
}

// The pending column that has waited longest and is not being computed now (-1: none); taken out of pending_ into
// computing_, so that no two threads ever compute one column (its incremental state) at once. Lock held. (Tried: within
// one batch, the column that is its own comparison first, then the costliest by its last compute. It gained 0.25 ms on
// back-to-back cold rounds, but cost 1-2 ms when cold followed edits and a slider, as in the bench: reverted.)
int Worker::take_column(ColumnRequest& r) {
  int column = -1;
  uint64_t since = 0;
  for (const auto& [c, t] : pending_since_)
    if (!computing_.count(c) && (column < 0 || t < since)) column = c, since = t;
  if (column < 0) return -1;
  r = std::move(pending_[column]);
  pending_.erase(column);
  pending_since_.erase(column);
  computing_.insert(column);
  return column;
}

// The columns' latest requests, computed column_threads() at a time (lock held on entry and exit). Each thread takes
// the column that has waited longest, computes it (one LibTorch thread: no oversubscription, OpenBLAS on one thread
// too), publishes it, and takes the next, until none is left or a job that goes first (a model to load, a generation
// session) arrives: no thread waits for another's column (six columns of unequal cost split evenly over the cores).
// Results stay immutable and latest-wins per column; a column asked for again while it computes waits for its thread.
void Worker::run_column(std::unique_lock<std::mutex>& l, const std::shared_ptr<const Model>& base) {
  auto drain = [this, &base] {
    std::unique_lock<std::mutex> g(mu_);
    for (;;) {
      if (stop_ || load_pending_ || decode_pending_ || gen_pending_) return;  // loop() takes those first
      ColumnRequest req;
      const int column = take_column(req);
      if (column < 0) return;
      g.unlock();
      std::shared_ptr<const Model> used;
      auto res = compute(base, req, &used, column);  // catches its errors: nothing is thrown here
      g.lock();
      publish(column, req, std::move(res), std::move(used));
      computing_.erase(column);
      std::function<void()> wake = on_publish_;
      g.unlock();
      if (wake) wake();  // outside the lock: the window's thread may be asking for results
      g.lock();
    }
  };
  const size_t threads = std::min(size_t(column_threads_), pending_.size());
  running_ = true;
  l.unlock();
  helpers_.run(std::vector<std::function<void()>>(std::max<size_t>(1, threads), drain));  // this thread runs one
  l.lock();
  running_ = false;
}

// A column's new result replaces its shown one unless a newer one is there (lock held).
void Worker::publish(int column, const ColumnRequest& req, std::shared_ptr<const ColumnResult> res,
                     std::shared_ptr<const Model> used) {
  if (forgotten_.count(column)) {  // removed while it was computing
    std::lock_guard<std::mutex> g(inc_mu_);
    incremental_.erase(column);
    return;
  }
  auto& slot = results_[column];
  if (!slot || slot->seq < res->seq) {
    Timed& t = timed_[column];
    t.model = used;  // null after an error: nothing to time
    t.tokens = req.tokens;
    t.kv_tokens = res->ok && req.needs_kv_text() ? req.kv_tokens : std::vector<int64_t>{};
    t.timing = ColumnTiming{res->seq, {}};
    slot = std::move(res);
  }
}

void Worker::set_on_publish(std::function<void()> f) {
  std::lock_guard<std::mutex> l(mu_);
  on_publish_ = std::move(f);
}

int Worker::column_threads() const {
  std::lock_guard<std::mutex> l(mu_);
  return column_threads_;
}

void Worker::set_column_threads(int n) {
  std::lock_guard<std::mutex> l(mu_);
  column_threads_ = std::max(1, n);
}

}  // namespace attnscope::session
