// The worker's references for the quality row (worker.h): the comparison checkpoint's loss on a column's text, and
// the knocked-out copies of a column's model.
#include <cmath>
#include <filesystem>

#include "head_analysis.h"
#include "registry.h"
#include "worker.h"

namespace attnscope::session {

// The comparison checkpoint `dir`'s model: the base itself for the base's folder or when `dir` is unreadable.
std::shared_ptr<const Model> Worker::comparison_model(const std::shared_ptr<const Model>& base,
                                                      const std::string& dir) {
  std::shared_ptr<const Model> other = dir == base->source_dir() ? nullptr : checkpoint(dir);
  return other ? other : base;  // owned: the UI thread may load another model meanwhile
}

// The incremental state of the comparison checkpoint `dir`, shared by the columns computed in
// parallel; the caller updates it under its `mu`. At most 4 checkpoints' states are kept (~10 MiB each): one dropped
// while a column updates it lives until that column lets go.
std::shared_ptr<Worker::ComparisonState> Worker::comparison_state(const std::string& dir) {
  std::lock_guard<std::mutex> g(comparison_mu_);
  if (comparison_inc_.size() >= 4 && !comparison_inc_.count(dir)) comparison_inc_.clear();
  auto& slot = comparison_inc_[dir];
  if (!slot) slot = std::make_shared<ComparisonState>();
  return slot;
}

void Worker::remember_comparison_loss(const std::string& dir, const std::vector<int64_t>& tokens, double loss) {
  if (comparison_loss_.size() > 64) comparison_loss_.clear();
  comparison_loss_[std::make_pair(dir, tokens)] = loss;
}

// The comparison checkpoint's model when the column's model `m` is that checkpoint unchanged (null otherwise): the
// column runs the checkpoint it is compared with (trained, not converted), every layer the same variant and
// parameters, nothing knocked out. The bundled mha column is so: its loss is then its comparison's loss, and its maps
// the comparison's maps (one forward for both, whichever of the columns computed in parallel asks first).
std::shared_ptr<const Model> Worker::self_comparison(const std::shared_ptr<const Model>& base, const Model& m,
                                                     const ColumnRequest& r, const ColumnResult& res) {
  if (!r.knockouts.empty() || !res.shipped || res.comparison.dir.empty()) return nullptr;
  std::error_code e1, e2;
  if (res.model_dir != res.comparison.dir &&  // the same folder by another path (each check stats every component)
      (std::filesystem::weakly_canonical(res.model_dir, e1) !=
           std::filesystem::weakly_canonical(res.comparison.dir, e2) ||
       e1 || e2))
    return nullptr;
  std::shared_ptr<const Model> other = comparison_model(base, res.comparison.dir);
  return same_attention(m.config(), other->config()) ? other : nullptr;
}

bool same_attention(const ModelConfig& x, const ModelConfig& y) {
  const std::vector<LayerSpec>&a = x.layers, &b = y.layers;
  if (a.size() != b.size()) return false;
  for (size_t l = 0; l < a.size(); ++l)
    if (a[l].variant != b[l].variant || a[l].params != b[l].params || !a[l].mask.empty() || !b[l].mask.empty())
      return false;
  return true;
}

// The loss of the comparison checkpoint `dir` (the base model when it is the base's folder) on the request's text,
// cached by (dir, text). NaN when there is no comparison. Worker thread only.
double Worker::comparison_loss(const std::shared_ptr<const Model>& base, const std::string& dir, const ColumnRequest& r,
                               bool if_free) {
  if (dir.empty()) return std::nan("");
  auto tokens_key = std::make_pair(dir, r.tokens);
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = comparison_loss_.find(tokens_key);
    if (it != comparison_loss_.end()) return it->second;
  }
  std::shared_ptr<const Model> other = comparison_model(base, dir);
  const bool kv = get_variant(other->config().layers[0].variant).needs_kv_text;
  double loss;
  if (kv) {
    if (if_free) return std::nan("");
    loss = other->attend(r.tokens, r.kv_tokens).loss;
  } else {  // typing: the reference's previous text's predictions are reused too (incremental.h)
    const std::shared_ptr<ComparisonState> st = comparison_state(dir);  // shared by the columns in parallel
    std::unique_lock<std::mutex> g(st->mu, std::defer_lock);
    if (!if_free)
      g.lock();
    else if (!g.try_lock())
      return std::nan("");  // another column's thread is computing it
    loss = st->of(other).update(r.tokens).loss;
  }
  std::lock_guard<std::mutex> l(mu_);
  remember_comparison_loss(dir, r.tokens, loss);
  return loss;
}

std::shared_ptr<const Model> Worker::knocked_model(const std::shared_ptr<const Model>& m, const ColumnRequest& r,
                                                   ColumnResult& res) {
  std::string key = knock_mode_name(r.knock_mode);
  for (const HeadKnockout& h : r.knockouts) key += " " + std::to_string(h.layer) + ":" + std::to_string(h.head);
  std::lock_guard<std::mutex> g(knock_mu_);  // columns computed in parallel share the copies
  // By the source's address (the entry holds its source, so the address stays its own) and the knock-outs.
  key = std::to_string(reinterpret_cast<uintptr_t>(m.get())) + " " + key;
  if (const Knocked* k = knocked_.find(key)) {
    res.heldout_knock_delta = k->heldout_delta;
    return k->copy;
  }
  // The held-out slice: the means of a mean knock-out come from it, and the quality row reports the loss change
  // on it beside the change on the text (a few context-long forwards, once per copy).
  const std::vector<int64_t> slice = heldout_slice(*m);
  const HeadMeans* means = nullptr;
  if (r.knock_mode == KnockMode::Mean) {
    auto mi = means_.find(m.get());
    if (mi == means_.end()) {
      if (means_.size() >= 2) means_.clear();  // each holds its source model
      mi = means_.emplace(m.get(), Means{m, head_means(*m, slice)}).first;
    }
    means = &mi->second.means;
  }
  Knocked k{m, knock_out(*m, r.knockouts, means), 0};  // throws Error for a layer or head out of range
  k.heldout_delta = heldout_loss(*k.copy, slice) - heldout_loss(*m, slice);
  res.heldout_knock_delta = k.heldout_delta;
  std::shared_ptr<const Model> copy = k.copy;
  knocked_.put(key, std::move(k), model_bytes(*copy));  // a copy is a whole model: the last few, by bytes
  return copy;
}

}  // namespace attnscope::session
