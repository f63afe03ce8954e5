#pragma once
// What a column's heads do (GUI-free, runs LibTorch through the engine: call it off the UI thread): role scores on
// the current text and the induction probe (attention/heads.h's role table), the probe's in-context loss drop,
// attention rollout, per-character log-probabilities, and per-head importance by knock-out (attention/knockout.h).
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "engine.h"
#include "heads.h"
#include "knockout.h"

namespace attnscope::session {

struct HeadsOptions {
  int64_t period = 96;             // the induction probe's period P (2 P <= the context)
  uint64_t seed = 1;               // the probe's draw (lower-case letters; the vocabulary when it has none)
  std::vector<double> thresholds;  // [R] in role_registry() order (empty: the table's defaults)
};

struct HeadReport {
  int64_t layers = 0, heads = 0, T = 0, period = 0;                     // L, H, the text's length, the probe's period
  std::vector<double> scores;                                           // [R, L, H] in role_registry() order
  std::vector<double> thresholds;                                       // [R] the ones used for the labels
  std::vector<int64_t> probe;                                           // [2P] the probe's tokens
  std::vector<float> probe_logprobs;                                    // [2P - 1] log p(probe[t + 1] | probe[..t])
  double probe_loss_first = std::numeric_limits<double>::quiet_NaN();   // nats/char, targets t in [1, P)
  double probe_loss_second = std::numeric_limits<double>::quiet_NaN();  // nats/char, targets t in [P + 1, 2P)
  std::vector<float> text_logprobs;                                     // [T - 1]
  double text_loss = std::numeric_limits<double>::quiet_NaN();          // nats/char
  std::vector<float> rollout;                                           // [T, T] attention rollout on the text

  double score(size_t role, int64_t l, int64_t h) const {
    return scores[(role * size_t(layers) + size_t(l)) * size_t(heads) + size_t(h)];
  }
  // The roles whose (labelled) score passes its threshold, strongest first (score / threshold).
  std::vector<size_t> roles_of(int64_t l, int64_t h) const { return roles_of(l, h, thresholds); }
  // The same against other thresholds th [R] (the window's sliders): new labels without recomputing the scores.
  std::vector<size_t> roles_of(int64_t l, int64_t h, const std::vector<double>& th) const;
  // The in-context learning signal: probe_loss_first - probe_loss_second (nats/char).
  double probe_loss_drop() const { return probe_loss_first - probe_loss_second; }
};

// Thresholds [R] from "role=x" strings over the table's defaults. Throws Error (unknown role, bad value).
std::vector<double> parse_thresholds(const std::vector<std::string>& kv);

// The model's maps on `text` and on the probe, scored by every role. Throws Error (text too long or empty, probe
// longer than the context).
HeadReport analyse_heads(const Model& m, const std::vector<int64_t>& text, const HeadsOptions& o = {});

// log p(tokens[t + 1] | tokens[..t]) under m, [T - 1] (a cross-attention model reads the text as its second text).
std::vector<float> text_logprobs(const Model& m, const std::vector<int64_t>& tokens);

// The fixed held-out slice: the first `windows` context-long windows of the corpus' validation split.
std::vector<int64_t> heldout_slice(const Model& m, int64_t windows = 2);
// Mean next-character loss over the slice's context-long windows (nats/char).
double heldout_loss(const Model& m, const std::vector<int64_t>& slice);

struct HeadImportance {
  int64_t layers = 0, heads = 0;
  KnockMode mode = KnockMode::Zero;         // how the heads were knocked out
  double text_loss = 0, heldout_loss = 0;   // the intact model
  std::vector<double> text_delta;           // [L, H] loss with head (l, h) knocked out minus intact, on the text
  std::vector<double> heldout_delta;        // [L, H] the same on the held-out slice
  std::vector<double> layer_text_delta;     // [L] every head of layer l knocked out
  std::vector<double> layer_heldout_delta;  // [L]
};

// Knocks out every head alone, then every layer's attention, and measures the loss change: zeroed, or replaced by
// its mean over the slice when mode is Mean (knockout.h). progress(done, total) after each; returning false cancels
// (Error "cancelled").
HeadImportance head_importance(const Model& m, const std::vector<int64_t>& text, const std::vector<int64_t>& slice,
                               const std::function<bool(int64_t, int64_t)>& progress = {},
                               KnockMode mode = KnockMode::Zero);

}  // namespace attnscope::session
