// Head-role scores on attention maps, the role table, the induction probe, rollout and log-probabilities (heads.h).
#include "heads.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

namespace attnscope {

namespace {

// Row i of the map as weights p_ij = |a_ij| / sum_j |a_ij| into p [S]; false when the row is all zero.
bool row_weights(const HeadMapView& v, int64_t i, std::vector<double>& p) {
  p.assign(static_cast<size_t>(v.S), 0.0);
  double sum = 0;
  for (int64_t j = 0; j < v.S; ++j) {
    p[size_t(j)] = std::fabs(double(v.row(i)[j]));
    sum += p[size_t(j)];
  }
  if (!(sum > 0) || !std::isfinite(sum)) return false;
  for (double& x : p) x /= sum;
  return true;
}

// Mean over the rows i in [i0, i1) for which `use(i)` holds and the row has weight of f(i, p_i).
template <class Use, class F>
double mean_rows(const HeadMapView& v, int64_t i0, int64_t i1, Use use, F f) {
  std::vector<double> p;
  double total = 0;
  int64_t n = 0;
  for (int64_t i = std::max<int64_t>(i0, 0); i < std::min(i1, v.T); ++i) {
    if (!use(i) || !row_weights(v, i, p)) continue;
    total += f(i, p);
    ++n;
  }
  return n ? total / double(n) : 0.0;
}

auto every_row = [](int64_t) { return true; };

// p(i, i + offset): the weight on the key `offset` positions from the query (0 when outside the keys).
double at_offset(int64_t i, const std::vector<double>& p, int64_t offset) {
  const int64_t j = i + offset;
  return j >= 0 && j < int64_t(p.size()) ? p[size_t(j)] : 0.0;
}

double previous_token(const HeadMapView& v) {
  return mean_rows(v, 1, v.T, every_row, [](int64_t i, const std::vector<double>& p) { return at_offset(i, p, -1); });
}

double self_token(const HeadMapView& v) {
  return mean_rows(v, 1, v.T, every_row, [](int64_t i, const std::vector<double>& p) { return at_offset(i, p, 0); });
}

double first_token(const HeadMapView& v) {
  return mean_rows(v, 1, v.T, every_row, [](int64_t, const std::vector<double>& p) { return p[0]; });
}

// Share of weight on keys with |i - j| <= kLocalWindow, over the rows that have a key farther away (else 1).
double local_share(const HeadMapView& v) {
  auto has_far = [&](int64_t i) { return i > kLocalWindow || (!v.causal && v.S - 1 - i > kLocalWindow); };
  bool any = false;
  for (int64_t i = 1; i < v.T && !any; ++i) any = has_far(i);
  if (!any) return 1.0;
  return mean_rows(v, 1, v.T, has_far, [](int64_t i, const std::vector<double>& p) {
    double s = 0;
    for (int64_t j = std::max<int64_t>(0, i - kLocalWindow); j <= i + kLocalWindow && j < int64_t(p.size()); ++j)
      s += p[size_t(j)];
    return s;
  });
}

// sum_j p_ij |i - j|: how far back (or ahead) the head reads, in positions.
double mean_distance(const HeadMapView& v) {
  return mean_rows(v, 1, v.T, every_row, [](int64_t i, const std::vector<double>& p) {
    double s = 0;
    for (size_t j = 0; j < p.size(); ++j) s += p[j] * double(std::llabs(i - int64_t(j)));
    return s;
  });
}

// H(p_i) / log n_i with n_i = i + 1 keys (causal) or S: 1 for a uniform row over every key it may read.
double broad(const HeadMapView& v) {
  return mean_rows(v, 1, v.T, every_row, [&](int64_t i, const std::vector<double>& p) {
    const int64_t n = v.causal ? std::min(i + 1, v.S) : v.S;
    if (n < 2) return 0.0;
    double h = 0;
    for (double x : p)
      if (x > 0) h -= x * std::log(x);
    return std::clamp(h / std::log(double(n)), 0.0, 1.0);
  });
}

// On the probe r r (period P): mean over second-copy queries i in [P, 2P) of p(i, i - P + 1), the token after the
// query's earlier occurrence (what an induction head copies forward).
double induction(const HeadMapView& v) {
  if (v.period < 1) return 0.0;
  const int64_t P = v.period;
  return mean_rows(v, P, 2 * P, every_row,
                   [P](int64_t i, const std::vector<double>& p) { return at_offset(i, p, 1 - P); });
}

// Over queries with an earlier occurrence of their token: the weight on all earlier occurrences (j < i).
double duplicate_token(const HeadMapView& v) {
  if (!v.tokens || int64_t(v.tokens->size()) < v.T || v.S != v.T) return 0.0;
  const auto& tok = *v.tokens;
  auto has_earlier = [&](int64_t i) {
    for (int64_t j = 0; j < i; ++j)
      if (tok[size_t(j)] == tok[size_t(i)]) return true;
    return false;
  };
  return mean_rows(v, 1, v.T, has_earlier, [&](int64_t i, const std::vector<double>& p) {
    double s = 0;
    for (int64_t j = 0; j < i; ++j)
      if (tok[size_t(j)] == tok[size_t(i)]) s += p[size_t(j)];
    return s;
  });
}

}  // namespace

const std::vector<RoleSpec>& role_registry() {
  static const std::vector<RoleSpec> r = {
      {"previous_token", "prev",
       "mean weight on the previous token (j = i - 1) over the text's rows: 1 = always reads the character before",
       RoleText::Text, 0.4, true, previous_token},
      {"self", "self", "mean weight on the query's own position (j = i) over the text's rows", RoleText::Text, 0.4,
       true, self_token},
      {"first_token", "sink",
       "mean weight on the first token (j = 0), the attention sink: a head with nothing to read parks its weight there",
       RoleText::Text, 0.5, true, first_token},
      {"local", "local", "share of weight within 8 positions (|i - j| <= 8), over the rows that could read farther",
       RoleText::Text, 0.9, true, local_share},
      {"distance", "", "mean |i - j| under the weights, in positions (a measure: how far back the head reads)",
       RoleText::Text, -1, false, mean_distance},
      {"broad", "broad",
       "normalised row entropy H(p_i) / log(i + 1): 1 = uniform over every key the row may read, 0 = one key",
       RoleText::Text, 0.7, true, broad},
      {"induction", "induct",
       "on a random character sequence repeated twice: mean weight from each second-copy token to the token after its "
       "earlier occurrence (j = i - P + 1), what a head that copies a repeated pattern forward reads",
       RoleText::Probe, 0.3, true, induction},
      {"duplicate_token", "dup",
       "on the same probe: weight on earlier occurrences of the query's own character (over rows that have one)",
       RoleText::Probe, 0.3, true, duplicate_token},
  };
  return r;
}

const RoleSpec* find_role(const std::string& name) {
  for (const auto& r : role_registry())
    if (r.name == name) return &r;
  return nullptr;
}

std::string role_names() {
  std::string s;
  for (const auto& r : role_registry()) s += (s.empty() ? "" : ", ") + r.name;
  return s;
}

std::vector<int64_t> induction_probe(const std::vector<int64_t>& alphabet, int64_t period, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> r(static_cast<size_t>(2 * period));  // [2P]
  for (int64_t i = 0; i < period; ++i) r[size_t(i)] = alphabet[size_t(rng() % alphabet.size())];
  std::copy(r.begin(), r.begin() + period, r.begin() + period);
  return r;
}

std::vector<float> attention_rollout(const float* attn, int64_t L, int64_t H, int64_t T) {
  const size_t TT = size_t(T * T);
  std::vector<double> R(TT, 0.0), A(TT), next(TT);  // [T, T] each
  for (int64_t i = 0; i < T; ++i) R[size_t(i * T + i)] = 1.0;
  std::vector<double> p;
  for (int64_t l = 0; l < L; ++l) {
    std::fill(A.begin(), A.end(), 0.0);
    for (int64_t h = 0; h < H; ++h) {  // A = mean_h P_l,h  [T, T]
      HeadMapView v{attn + size_t((l * H + h) * T * T), T, T};
      for (int64_t i = 0; i < T; ++i)
        if (row_weights(v, i, p))
          for (int64_t j = 0; j < T; ++j) A[size_t(i * T + j)] += p[size_t(j)] / double(H);
    }
    for (int64_t i = 0; i < T; ++i) {  // Ahat = 0.5 A + 0.5 I, rows renormalised
      double s = 0;
      for (int64_t j = 0; j < T; ++j) s += (A[size_t(i * T + j)] = 0.5 * A[size_t(i * T + j)] + (i == j ? 0.5 : 0.0));
      for (int64_t j = 0; j < T; ++j) A[size_t(i * T + j)] /= s;
    }
    for (int64_t i = 0; i < T; ++i)  // R <- Ahat R
      for (int64_t j = 0; j < T; ++j) {
        double s = 0;
        for (int64_t k = 0; k < T; ++k) s += A[size_t(i * T + k)] * R[size_t(k * T + j)];
        next[size_t(i * T + j)] = s;
      }
    R.swap(next);
  }
  return std::vector<float>(R.begin(), R.end());
}

std::vector<float> next_token_logprobs(const std::vector<float>& logits, int64_t V,
                                       const std::vector<int64_t>& tokens) {
  const int64_t T = int64_t(tokens.size());
  std::vector<float> out;
  for (int64_t t = 0; t + 1 < T; ++t) {
    const float* z = logits.data() + size_t(t * V);  // [V]
    const double m = *std::max_element(z, z + V);
    double s = 0;
    for (int64_t k = 0; k < V; ++k) s += std::exp(double(z[k]) - m);
    out.push_back(float(double(z[tokens[size_t(t + 1)]]) - m - std::log(s)));  // log softmax at the target
  }
  return out;
}

double mean_loss(const std::vector<float>& logprobs, int64_t t0, int64_t t1) {
  t0 = std::max<int64_t>(t0, 0);
  t1 = std::min<int64_t>(t1, int64_t(logprobs.size()));
  if (t1 <= t0) return std::numeric_limits<double>::quiet_NaN();
  double s = 0;
  for (int64_t t = t0; t < t1; ++t) s -= double(logprobs[size_t(t)]);
  return s / double(t1 - t0);
}

}  // namespace attnscope
