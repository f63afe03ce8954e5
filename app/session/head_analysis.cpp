// A column's heads: role scores, probe loss, rollout, log-probabilities, knock-out importance (head_analysis.h).
#include "head_analysis.h"

#include <algorithm>
#include <cmath>

#include "error.h"
#include "knockout.h"
#include "registry.h"

namespace attnscope::session {

namespace {

bool has_cross(const Model& m) {
  for (const auto& l : m.config().layers)
    if (get_variant(l.variant).needs_kv_text) return true;
  return false;
}

// Model::attend, the text doubling as the second text of cross-attention layers.
AttentionMaps maps_of(const Model& m, const std::vector<int64_t>& tokens) {
  return m.attend(tokens, has_cross(m) ? tokens : std::vector<int64_t>{});
}

// Every role of `on` scored on every (layer, head) of `maps` into r.scores [R, L, H].
void score_maps(HeadReport& r, const AttentionMaps& maps, const std::vector<int64_t>& tokens, RoleText on,
                int64_t period) {
  const auto& roles = role_registry();
  for (size_t k = 0; k < roles.size(); ++k) {
    if (roles[k].on != on) continue;
    for (int64_t l = 0; l < maps.layers; ++l) {
      const bool causal = get_variant(maps.layer_variant[size_t(l)]).causal;
      for (int64_t h = 0; h < maps.heads; ++h) {
        HeadMapView v{maps.attn_row(l, h, 0), maps.queries, maps.keys, &tokens, period, causal, maps.stride()};
        r.scores[(k * size_t(r.layers) + size_t(l)) * size_t(r.heads) + size_t(h)] = roles[k].score(v);
      }
    }
  }
}

// The probe's characters: the lower-case letters the vocabulary has (random text a character model was trained on
// the like of; symbols such as '$' or '3' would measure surprise at the alphabet, not copying), else the vocabulary.
std::vector<int64_t> probe_alphabet(const Model& m) {
  std::vector<int64_t> a = m.tokenizer().encode_or_throw("abcdefghijklmnopqrstuvwxyz", UnknownPolicy::Skip);
  if (a.size() < 2) {
    a.clear();
    for (int64_t t = 0; t < m.config().vocab_size; ++t) a.push_back(t);
  }
  return a;
}

}  // namespace

std::vector<size_t> HeadReport::roles_of(int64_t l, int64_t h, const std::vector<double>& th) const {
  std::vector<size_t> out;
  const auto& roles = role_registry();
  for (size_t k = 0; k < roles.size() && k < th.size(); ++k)
    if (th[k] > 0 && !roles[k].label.empty() && score(k, l, h) >= th[k]) out.push_back(k);
  std::stable_sort(out.begin(), out.end(),
                   [&](size_t a, size_t b) { return score(a, l, h) / th[a] > score(b, l, h) / th[b]; });
  return out;
}

std::vector<double> parse_thresholds(const std::vector<std::string>& kv) {
  const auto& roles = role_registry();
  std::vector<double> t;
  for (const auto& r : roles) t.push_back(r.threshold);
  for (const auto& s : kv) {
    const size_t eq = s.find('=');
    const std::string name = s.substr(0, eq);
    const RoleSpec* r = find_role(name);
    if (eq == std::string::npos || !r)
      throw Error("--threshold '" + s + "': expected ROLE=VALUE with ROLE one of " + role_names());
    if (r->threshold < 0) throw Error("--threshold: '" + name + "' is a measure, not a role label");
    double x = 0;
    try {
      size_t used = 0;
      x = std::stod(s.substr(eq + 1), &used);
      if (used != s.size() - eq - 1) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      throw Error("--threshold '" + s + "': the value is not a number");
    }
    if (!(x > 0) || (r->bounded && x > 1)) throw Error("--threshold '" + s + "': must lie in (0, 1]");
    t[size_t(r - roles.data())] = x;
  }
  return t;
}

HeadReport analyse_heads(const Model& m, const std::vector<int64_t>& text, const HeadsOptions& o) {
  const int64_t C = m.config().context;
  if (o.period < 2 || 2 * o.period > C)
    throw Error("the induction probe's period must lie in 2.." + std::to_string(C / 2) + " (twice it fits the " +
                std::to_string(C) + "-character context); got " + std::to_string(o.period));
  HeadReport r;
  r.layers = m.config().n_layer;
  r.heads = m.config().n_head;
  r.period = o.period;
  r.T = int64_t(text.size());
  r.thresholds = o.thresholds.empty() ? parse_thresholds({}) : o.thresholds;
  r.scores.assign(role_registry().size() * size_t(r.layers * r.heads), 0.0);  // [R, L, H]

  const AttentionMaps tm = maps_of(m, text);  // [L, H, T, S], dense (Model::attend)
  score_maps(r, tm, text, RoleText::Text, 0);
  if (tm.queries == tm.keys)
    r.rollout = attention_rollout(tm.planes->attn.data(), tm.layers, tm.heads, tm.queries);  // [T, T]
  r.text_logprobs = text_logprobs(m, text);
  r.text_loss = mean_loss(r.text_logprobs, 0, int64_t(r.text_logprobs.size()));

  r.probe = induction_probe(probe_alphabet(m), o.period, o.seed);  // [2P]
  const AttentionMaps pm = maps_of(m, r.probe);                    // [L, H, 2P, 2P]
  score_maps(r, pm, r.probe, RoleText::Probe, o.period);
  r.probe_logprobs = text_logprobs(m, r.probe);                       // [2P - 1]; entry t predicts probe[t + 1]
  r.probe_loss_first = mean_loss(r.probe_logprobs, 0, o.period - 1);  // targets 1 .. P-1
  r.probe_loss_second = mean_loss(r.probe_logprobs, o.period, 2 * o.period - 1);  // targets P+1 .. 2P-1
  return r;
}

std::vector<float> text_logprobs(const Model& m, const std::vector<int64_t>& tokens) {
  const std::vector<float> logits = m.logits(tokens, false, has_cross(m) ? tokens : std::vector<int64_t>{});  // [T, V]
  return next_token_logprobs(logits, m.config().vocab_size, tokens);
}

std::vector<int64_t> heldout_slice(const Model& m, int64_t windows) {
  const std::string valid = split_corpus(read_text_file(default_corpus_path())).valid;
  const size_t n = size_t(windows * m.config().context);
  if (valid.size() < n)
    throw Error("the corpus' validation split is shorter than " + std::to_string(n) + " characters");
  return m.tokenizer().encode_or_throw(valid.substr(0, n), UnknownPolicy::Skip);
}

double heldout_loss(const Model& m, const std::vector<int64_t>& slice) {
  const int64_t C = m.config().context;
  double total = 0;
  int64_t n = 0;
  for (int64_t w = 0; w + C <= int64_t(slice.size()); w += C) {
    std::vector<int64_t> win(slice.begin() + w, slice.begin() + w + C);  // [C]
    const auto lp = text_logprobs(m, win);                               // [C - 1]
    total += mean_loss(lp, 0, int64_t(lp.size())) * double(lp.size());
    n += int64_t(lp.size());
  }
  if (n == 0) throw Error("the held-out slice is shorter than the context");
  return total / double(n);
}

HeadImportance head_importance(const Model& m, const std::vector<int64_t>& text, const std::vector<int64_t>& slice,
                               const std::function<bool(int64_t, int64_t)>& progress, KnockMode mode) {
  HeadImportance r;
  r.mode = mode;
  const HeadMeans means = mode == KnockMode::Mean ? head_means(m, slice) : HeadMeans{};
  r.layers = m.config().n_layer;
  r.heads = m.config().n_head;
  auto text_loss = [&](const Model& x) {
    const auto lp = text_logprobs(x, text);
    return mean_loss(lp, 0, int64_t(lp.size()));
  };
  r.text_loss = text_loss(m);
  r.heldout_loss = heldout_loss(m, slice);
  const int64_t total = r.layers * (r.heads + 1);
  int64_t done = 0;
  auto measure = [&](const std::vector<HeadKnockout>& k, std::vector<double>& td, std::vector<double>& hd) {
    auto ko = knock_out(m, k, mode == KnockMode::Mean ? &means : nullptr);
    td.push_back(text_loss(*ko) - r.text_loss);
    hd.push_back(heldout_loss(*ko, slice) - r.heldout_loss);
    if (progress && !progress(++done, total)) throw Error("cancelled");
  };
  for (int64_t l = 0; l < r.layers; ++l)
    for (int64_t h = 0; h < r.heads; ++h) measure({{l, h}}, r.text_delta, r.heldout_delta);
  for (int64_t l = 0; l < r.layers; ++l) measure({{l, -1}}, r.layer_text_delta, r.layer_heldout_delta);
  return r;
}

}  // namespace attnscope::session
