#pragma once
// What the heads do, as data (no LibTorch here): role scores on one head's attention map, the role table that drives
// the CLI (`attnscope heads`), the window's labels and hover text and the tests; the induction probe; attention
// rollout (Abnar & Zuidema, 2020); next-character log-probabilities from logits.
// A map row is read as weights p_ij = |a_ij| / sum_j |a_ij|: a softmax row unchanged, and signed (differential) or
// approximate (kernel) maps score in [0, 1] too. Row 0 (one key under a causal mask, no choice) is never scored.
#include <cstdint>
#include <string>
#include <vector>

namespace attnscope {

// One (layer, head) attention matrix and what its scores need to know about the text.
struct HeadMapView {
  const float* a = nullptr;                      // [T, S], row i at a + i * stride
  int64_t T = 0, S = 0;                          // queries, keys
  const std::vector<int64_t>* tokens = nullptr;  // [T] the text's tokens (keys too when S == T)
  int64_t period = 0;  // the induction probe's period P (tokens[i] == tokens[i - P] for i >= P); 0: not a probe
  bool causal = true;  // the variant sees only j <= i (the entropy of row i is normalised by log(i + 1), else log S)
  int64_t stride = 0;  // between rows (0: S; maps whose planes have room past S: AttentionMaps::stride)
  const float* row(int64_t i) const { return a + i * (stride > 0 ? stride : S); }
};

enum class RoleText { Text, Probe };  // the map a role is scored on: the current text, or the induction probe

struct RoleSpec {
  std::string name;         // lower_snake_case, stable (--threshold name=x, JSON keys)
  std::string label;        // short label on the layers x heads grid
  std::string description;  // hover text and --help: what the score measures
  RoleText on = RoleText::Text;
  double threshold = 0.5;  // a head carries the label when score >= threshold; < 0: a measure, never a label
  bool bounded = true;     // the score lies in [0, 1]
  double (*score)(const HeadMapView&) = nullptr;
};

// Every role, in display order.
const std::vector<RoleSpec>& role_registry();
const RoleSpec* find_role(const std::string& name);
// The role names (for messages: "previous_token, self, ...").
std::string role_names();

constexpr int64_t kLocalWindow = 8;  // "local": the share of weight within this many positions

// The induction probe: `period` tokens drawn uniformly from `alphabet` (seeded), repeated twice: [2 period].
std::vector<int64_t> induction_probe(const std::vector<int64_t>& alphabet, int64_t period, uint64_t seed);

// Attention rollout over L layers of square maps [L, H, T, T]: R = Ahat_{L-1} ... Ahat_0 with
// Ahat_l = 0.5 mean_h(P_l,h) + 0.5 I, rows renormalised to sum 1 (P: the maps read as row weights, above).
// R[i, j]: the share of input token j in position i's last representation. Returns [T, T].
std::vector<float> attention_rollout(const float* attn, int64_t L, int64_t H, int64_t T);

// log p(tokens[t + 1] | tokens[..t]) for t = 0..T-2 from logits [T, V] (log-softmax per row). Returns [T - 1].
std::vector<float> next_token_logprobs(const std::vector<float>& logits, int64_t V, const std::vector<int64_t>& tokens);
// Mean of -logprob over predictions [t0, t1) of next_token_logprobs' output (nats/char); NaN when empty.
double mean_loss(const std::vector<float>& logprobs, int64_t t0, int64_t t1);

}  // namespace attnscope
