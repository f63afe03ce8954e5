// The worker's references for the quality row (worker.h): the comparison checkpoint's loss on a column's text, and
// the knocked-out copies of a column's model.
#include <cmath>

#include "head_analysis.h"
#include "registry.h"
#include "worker.h"

namespace attnscope::session {

// The loss of the comparison checkpoint `dir` (the base model when it is the base's folder) on the request's text,
// cached by (dir, text). NaN when there is no comparison. Worker thread only.
double Worker::comparison_loss(const std::shared_ptr<const Model>& base, const std::string& dir,
                               const ColumnRequest& r) {
  if (dir.empty()) return std::nan("");
  auto tokens_key = std::make_pair(dir, r.tokens);
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = comparison_loss_.find(tokens_key);
    if (it != comparison_loss_.end()) return it->second;
  }
  std::shared_ptr<const Model> other = dir == base->source_dir() ? nullptr : checkpoint(dir);
  if (!other) other = base;  // the base itself (owned: the UI thread may load another model meanwhile)
  const bool kv = get_variant(other->config().layers[0].variant).needs_kv_text;
  double loss;
  if (kv) {
    loss = other->attend(r.tokens, r.kv_tokens).loss;
  } else {  // typing: the reference's previous text's predictions are reused too (incremental.h)
    std::lock_guard<std::mutex> g(comparison_mu_);  // shared by the columns computed in parallel
    if (comparison_inc_.size() >= 4 && !comparison_inc_.count(dir)) comparison_inc_.clear();  // ~10 MiB each
    auto& inc = comparison_inc_[dir];
    if (!inc || inc->model() != other) inc = std::make_unique<IncrementalAttend>(other);
    loss = inc->update(r.tokens).loss;
  }
  std::lock_guard<std::mutex> l(mu_);
  if (comparison_loss_.size() > 64) comparison_loss_.clear();
  return comparison_loss_[tokens_key] = loss;
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
