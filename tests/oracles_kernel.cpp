// Closed forms for the kernel, low-rank and structured family (docs/variants.md); used by the universal tests.
#include "variant_oracles.h"

namespace attnscope {

std::optional<Expectation> expect_kernel(const std::string& variant, const ParamValues& p, int64_t T, int64_t S,
                                         int64_t h, int64_t H) {
  (void)h;
  (void)H;
  const int64_t causal = T * (T + 1) / 2;  // sum_i (i + 1)
  const int64_t all = T * S;               // non-causal: every pair
  // Linear family with relu features: a row whose denominator is exactly 0 shows zeros, so rows need not sum to 1.
  if (variant == "linear")
    return Expectation{causal, p.at("feature_map") == 0 ? std::optional<double>(1.0) : std::nullopt};
  if (variant == "performer") return Expectation{causal, 1.0, 2e-5};
  if (variant == "cosformer") return Expectation{causal, std::nullopt};
  if (variant == "tiled" || variant == "mla" || variant == "mta") return Expectation{causal, 1.0};
  if (variant == "differential") return Expectation{causal, 1.0 - p.at("lambda")};  // A1 - lambda A2
  if (variant == "linformer_causal") return Expectation{causal, std::nullopt};      // P F^T, signed
  if (variant == "linformer") return Expectation{all, std::nullopt};
  if (variant == "nystrom") return Expectation{all, std::nullopt, 1e-4};
  return std::nullopt;
}

}  // namespace attnscope
