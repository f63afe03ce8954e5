#include "variant_oracles.h"

#include "error.h"

namespace attnscope {

Expectation expect_for(const std::string& variant, const ParamValues& p, int64_t T, int64_t S, int64_t h, int64_t H) {
  if (variant == "mha" || variant == "mqa" || variant == "gqa") return {T * (T + 1) / 2, 1.0};  // sum_i (i + 1)
  if (variant == "cross") return {T * S, 1.0};                                                  // no mask
  if (variant == "custom") return {T * (T + 1) / 2, 1.0};  // nothing painted (the sweep's layers): causal
  if (auto e = expect_masked(variant, p, T, S, h, H)) return *e;
  if (auto e = expect_kernel(variant, p, T, S, h, H)) return *e;
  throw Error("tests: no closed form for variant '" + variant + "' (add it to the oracles)");
}

}  // namespace attnscope
