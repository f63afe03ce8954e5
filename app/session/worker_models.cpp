// The worker's models (worker.h): which model a column runs, under the one model policy (model_policy.h), and the
// caches that keep the checkpoints, the converted weights and the models built from them.
#include "model_policy.h"
#include "registry.h"
#include "worker.h"

namespace attnscope::session {

// A checkpoint by folder, loaded on first use (null: unreadable). Worker thread only.
std::shared_ptr<const Model> Worker::checkpoint(const std::string& dir) {
  std::lock_guard<std::mutex> g(checkpoint_mu_);  // columns computed in parallel may ask at once
  if (const auto* hit = checkpoints_.find(dir)) return *hit;
  std::shared_ptr<const Model> m;
  try {
    m = Model::load(dir, "auto");
  } catch (const std::exception&) {
    m = nullptr;  // unreadable: the caller falls back to the base model
  }
  checkpoints_.put(dir, m, m ? model_bytes(*m) : 0);
  return m;
}

std::shared_ptr<const Model> Worker::model_for(const Model& base, const std::string& variant, const ParamValues& p,
                                               bool convert, ColumnResult& res) {
  // Called on the worker thread only; the caches are touched under the lock because cached_models() reads them.
  // Which checkpoint: the one model policy (model_policy.h), as `render` and the CLI choose.
  const std::string& base_dir = base.source_dir();
  ModelSource src = column_source(base, variant, p, convert);
  const auto describe = [&] {  // where the model comes from, for the column's labels
    res.model_dir = src.dir;
    res.shipped = src.trained;
    res.comparison = comparison_for(src);
    res.budget = budget_label(src.dir);
    if (!src.trained) {
      res.replaces = trained_checkpoint(base.config(), variant);
      res.replaces_budget = res.replaces.empty() ? "" : budget_label(res.replaces);
    }
  };
  const auto cached = [&](const std::string& key) -> std::shared_ptr<const Model> {
    std::lock_guard<std::mutex> l(mu_);
    const auto* hit = full_cache_.find(key);
    return hit ? *hit : nullptr;
  };
  // A model built before is used without its checkpoint in memory: the checkpoints' LRU holds fewer than six
  // columns' checkpoints, and reloading one per request had made a keystroke 47 ms.
  if (src.shipped)
    if (auto hit = cached("shipped:" + model_key(variant, p, false))) {
      describe();
      res.model_cached = true;
      return hit;
    }
  if (src.shipped) {  // the checkpoint's weights kept from an earlier setting: the checkpoint itself is not read
    std::shared_ptr<const Model> weights;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (const auto* hit = weight_cache_.find("shipped:" + model_key(variant, p, true))) weights = *hit;
    }
    if (weights) {  // (the checkpoints' LRU may have let it go: a slider's every step had loaded it from disk)
      describe();
      res.model_cached = true;
      std::shared_ptr<const Model> m = weights->with_variant(variant, p);  // same shapes: other non-weight settings
      std::lock_guard<std::mutex> l(mu_);
      cache_full("shipped:" + model_key(variant, p, false), m);
      return m;
    }
  }
  std::shared_ptr<const Model> shipped = src.shipped ? checkpoint(src.dir) : nullptr;
  if (src.shipped && !shipped) src = {base_dir, false, false};  // unreadable: the base, converted, stands in
  const Model* start = shipped ? shipped.get() : &base;
  describe();
  const std::string origin = start == &base ? "base:" : "shipped:";
  const std::string full = origin + model_key(variant, p, false), wkey = origin + model_key(variant, p, true);
  if (auto hit = cached(full)) {
    res.model_cached = true;
    return hit;
  }
  std::shared_ptr<const Model> weights;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (const auto* hit = weight_cache_.find(wkey)) weights = *hit;
  }
  res.model_cached = weights != nullptr;
  std::shared_ptr<const Model> m;
  if (!weights) {
    m = start->with_variant(variant, p);  // converts the weights when their shapes differ (may throw Error)
    std::lock_guard<std::mutex> l(mu_);
    weight_cache_.put(wkey, m, model_bytes(*m), 1);  // the full cache holds the same model
    cache_full(full, m, 1);
    return m;
  }
  m = weights->with_variant(variant, p);  // same shapes: a cheap copy with other non-weight parameters
  std::lock_guard<std::mutex> l(mu_);
  cache_full(full, m);
  return m;
}

void Worker::cache_full(const std::string& key, std::shared_ptr<const Model> m, long shared) {
  const size_t bytes = model_bytes(*m);
  full_cache_.put(key, std::move(m), bytes, shared);
}

// A model with a variant per layer (or painted masks): the base model's weights under the layers' variants
// (converted where shapes differ). Worker thread only.
std::shared_ptr<const Model> Worker::layered_model(const Model& base, const std::vector<LayerSpec>& layers,
                                                   ColumnResult& res) {
  {
    std::lock_guard<std::mutex> l(mu_);  // load_model() writes it on the UI thread
    res.model_dir = load_dir_;
  }
  const ModelSource src = layered_source(base, layers);  // model_policy.h: the base, trained or converted
  res.shipped = src.trained;
  res.comparison = comparison_for(src);  // converted: against the base
  res.budget = budget_label(res.model_dir);
  const std::string key = "base:" + layers_key(layers);
  {
    std::lock_guard<std::mutex> l(mu_);
    if (const auto* hit = full_cache_.find(key)) {
      res.model_cached = true;
      return *hit;
    }
  }
  std::shared_ptr<const Model> m = base.with_layers(layers);  // may throw Error (impossible parameters)
  std::lock_guard<std::mutex> l(mu_);
  cache_full(key, m);
  return m;
}

std::shared_ptr<const Model> Worker::request_model(const Model& base, const ColumnRequest& r, ColumnResult& res) {
  if (r.layers.empty())
    return model_for(base, r.variant, resolve_params(get_variant(r.variant).params, r.variant, r.params), r.convert,
                     res);
  std::vector<LayerSpec> specs = r.layers;
  for (LayerSpec& s : specs) s.params = resolve_params(get_variant(s.variant).params, s.variant, s.params);
  return layered_model(base, specs, res);
}

}  // namespace attnscope::session
