// Closed forms for the masked family (docs/variants.md#family-masked); used by the universal tests. Written from the
// definitions row by row (keys of query i), never by calling the code under test.
#include <algorithm>
#include <cmath>

#include "variant_oracles.h"

namespace attnscope {

namespace {
int64_t get(const ParamValues& p, const char* n) { return static_cast<int64_t>(std::llround(p.at(n))); }

// Keys of row i for each variant.
int64_t row_keys(const std::string& v, const ParamValues& p, int64_t i, int64_t h) {
  using std::max;
  using std::min;
  if (v == "sliding_window") return min(i + 1, get(p, "window"));
  if (v == "dilated") return min(get(p, "window"), i / get(p, "dilation") + 1);  // d = 0, r, ..., (W - 1) r
  if (v == "block_local") return i % get(p, "block") + 1;
  if (v == "strided") {
    const int64_t l = get(p, "stride");
    const int64_t a = min(i, l) + 1, b = i / l + 1;  // A: d = 0..l; B: d = 0, l, 2l, ...
    if (get(p, "mode") == 1) return h % 2 == 0 ? a : b;
    return a + max<int64_t>(0, i / l - 1);  // d = 0 and d = l counted once
  }
  if (v == "fixed") {
    const int64_t l = get(p, "stride"), c = min(get(p, "c"), l / 2), m = i % l;
    const int64_t own = m + 1, summaries_before = c * (i / l);
    if (get(p, "mode") == 0) return own + summaries_before;
    if (h % 2 == 0) return own;
    return summaries_before + max<int64_t>(0, m - (l - c) + 1) + (m < l - c ? 1 : 0);  // B heads see themselves
  }
  if (v == "longformer" || v == "sinks") {
    const int64_t w = get(p, "window"), f = get(p, v == "sinks" ? "sinks" : "globals");
    return min(i + 1, w) + max<int64_t>(0, min(f, i - w + 1));
  }
  if (v == "bigbird") {
    const int64_t b = get(p, "block"), wb = get(p, "window_blocks"), g = get(p, "global_blocks"),
                  r = get(p, "random_blocks");
    const int64_t qb = i / b;
    const int64_t window = min(wb, qb), globals = max<int64_t>(0, min(g, qb - wb)),
                  others = max<int64_t>(0, qb - wb - g);
    return i % b + 1 + b * (window + globals + min(r, others));
  }
  return i + 1;  // softcap: causal
}
}  // namespace

std::optional<Expectation> expect_masked(const std::string& variant, const ParamValues& p, int64_t T, int64_t S,
                                         int64_t h, int64_t H) {
  (void)S;
  (void)H;
  static const char* names[] = {"sliding_window", "dilated", "block_local", "strided", "fixed",
                                "longformer",     "bigbird", "sinks",       "lsh",     "softcap"};
  if (std::find(std::begin(names), std::end(names), variant) == std::end(names)) return std::nullopt;
  Expectation e;
  e.row_sum = 1.0;
  if (variant == "lsh") return e;  // the mask depends on the text's buckets: no closed form
  int64_t pairs = 0;
  for (int64_t i = 0; i < T; ++i) pairs += row_keys(variant, p, i, h);
  e.pairs = pairs;
  e.decode_equals_prefill = variant != "sinks";  // sinks: the streaming prefill is the reference (test_masked.cpp)
  return e;
}

}  // namespace attnscope
