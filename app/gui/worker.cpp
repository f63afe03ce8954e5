#include "worker.h"

#include <algorithm>
#include <chrono>

#include "error.h"
#include "registry.h"

namespace attnscope::gui {

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

Worker::Worker() { thread_ = std::thread([this] { loop(); }); }

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
  }
  cv_.notify_all();
}

void Worker::forget(int column) {
  std::lock_guard<std::mutex> l(mu_);
  pending_.erase(column);
  pending_since_.erase(column);
  results_.erase(column);
}

std::shared_ptr<const ColumnResult> Worker::result(int column) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = results_.find(column);
  return it == results_.end() ? nullptr : it->second;
}

uint64_t Worker::start_generate(GenerateJob j) {
  uint64_t id;
  {
    std::lock_guard<std::mutex> l(mu_);
    gen_pending_ = std::make_unique<GenerateJob>(std::move(j));
    gen_cancel_ = gen_.running;  // stop a running one; the new one starts next
    id = ++gen_.job;
    gen_.running = true;
    gen_.done = false;
    gen_.text.clear();
    gen_.error.clear();
  }
  cv_.notify_all();
  return id;
}

void Worker::cancel_generate() {
  std::lock_guard<std::mutex> l(mu_);
  gen_cancel_ = true;
  gen_pending_.reset();
}

GenerateState Worker::generate_state() const {
  std::lock_guard<std::mutex> l(mu_);
  return gen_;
}

bool Worker::busy() const {
  std::lock_guard<std::mutex> l(mu_);
  return running_ || load_pending_ || !pending_.empty() || gen_pending_ != nullptr || gen_.running;
}

size_t Worker::cached_models() const {
  std::lock_guard<std::mutex> l(mu_);
  return weight_cache_.size() + full_cache_.size();
}

std::shared_ptr<const Model> Worker::model_for(const Model& base, const std::string& variant, const ParamValues& p,
                                               bool* cached) {
  // Called on the worker thread only; the caches are touched under the lock because cached_models() reads them.
  const std::string full = model_key(variant, p, false), wkey = model_key(variant, p, true);
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = full_cache_.find(full);
    if (it != full_cache_.end()) {
      *cached = true;
      return it->second;
    }
  }
  std::shared_ptr<const Model> weights;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = weight_cache_.find(wkey);
    if (it != weight_cache_.end()) weights = it->second;
  }
  *cached = weights != nullptr;
  std::shared_ptr<const Model> m;
  if (!weights) {
    m = base.with_variant(variant, p);  // converts the weights when their shapes differ (may throw Error)
    std::lock_guard<std::mutex> l(mu_);
    weight_cache_[wkey] = m;
  } else {
    m = weights->with_variant(variant, p);  // same shapes: a cheap copy with other non-weight parameters
  }
  std::lock_guard<std::mutex> l(mu_);
  full_cache_[full] = m;
  full_order_.push_back(full);
  while (full_order_.size() > 24) {  // a few models per column and slider position are plenty
    full_cache_.erase(full_order_.front());
    full_order_.erase(full_order_.begin());
  }
  return m;
}

std::shared_ptr<const ColumnResult> Worker::compute(const Model& base, const ColumnRequest& r) {
  auto res = std::make_shared<ColumnResult>();
  res->seq = r.seq;
  res->tokens = r.tokens;
  res->kv_tokens = r.kv_tokens;
  try {
    auto t0 = std::chrono::steady_clock::now();
    const VariantInfo& info = get_variant(r.variant);
    ParamValues p = resolve_params(info.params, r.variant, r.params);
    auto m = model_for(base, r.variant, p, &res->model_cached);
    res->prepare_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    res->maps = m->attend(r.tokens, info.needs_kv_text ? r.kv_tokens : std::vector<int64_t>{});
    size_t on = 0;
    for (uint8_t b : res->maps.mask) on += b != 0;
    res->computed_fraction = res->maps.mask.empty() ? 1.0 : double(on) / double(res->maps.mask.size());
    res->ok = true;
  } catch (const Error& e) {
    res->error = e.what();
  } catch (const std::exception& e) {
    res->error = std::string("internal error: ") + e.what();
  }
  return res;
}

namespace {
struct Cancelled {};
}  // namespace

void Worker::loop() {
  for (;;) {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return stop_ || load_pending_ || gen_pending_ || !pending_.empty(); });
    if (stop_) return;
    if (load_pending_) {
      std::string dir = load_dir_;
      load_pending_ = false;
      loading_ = true;
      weight_cache_.clear();
      full_cache_.clear();
      full_order_.clear();
      l.unlock();
      std::shared_ptr<const Model> m;
      std::string err;
      try {
        m = Model::load(dir, "auto");
      } catch (const std::exception& e) {
        err = e.what();
      }
      l.lock();
      loading_ = false;
      model_ = m;
      model_error_ = err;
      results_.clear();  // results of another model are stale
      continue;
    }
    std::shared_ptr<const Model> base = model_;
    if (!base) {  // nothing can run without a model: drop the requests (the UI resubmits after loading)
      pending_.clear();
      if (gen_pending_) {
        gen_pending_.reset();
        gen_.running = false;
        gen_.done = true;
        gen_.error = model_error_.empty() ? "no model loaded" : model_error_;
      }
      continue;
    }
    if (gen_pending_) {
      GenerateJob job = *gen_pending_;
      gen_pending_.reset();
      gen_cancel_ = false;
      const uint64_t id = gen_.job;
      running_ = true;
      l.unlock();
      std::string err;
      try {
        base->generate(job.prompt, job.options, [&](const DecodeStep& s) {
          if (gen_cancel_) throw Cancelled{};
          std::lock_guard<std::mutex> g(mu_);
          if (gen_.job == id) gen_.text += base->tokenizer().symbol(s.token);
        });
      } catch (const Cancelled&) {
      } catch (const std::exception& e) {
        err = e.what();
      }
      l.lock();
      running_ = false;
      if (gen_.job == id && !gen_pending_) {
        gen_.running = false;
        gen_.done = true;
        gen_.error = err;
      }
      continue;
    }
    // The column that has waited longest goes first; its request is the latest one submitted.
    auto pick = std::min_element(pending_since_.begin(), pending_since_.end(),
                                 [](const auto& a, const auto& b) { return a.second < b.second; });
    const int column = pick->first;
    ColumnRequest req = std::move(pending_[column]);
    pending_.erase(column);
    pending_since_.erase(column);
    running_ = true;
    l.unlock();
    auto res = compute(*base, req);
    l.lock();
    running_ = false;
    auto& slot = results_[column];
    if (!slot || slot->seq < res->seq) slot = res;
  }
}

}  // namespace attnscope::gui
