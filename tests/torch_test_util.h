#pragma once
// Helpers shared by the LibTorch test files.
#include <torch/torch.h>

#include "test_util.h"

namespace attnscope::testing_util {

// Largest absolute elementwise difference (never lets signed errors cancel).
inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

}  // namespace attnscope::testing_util
