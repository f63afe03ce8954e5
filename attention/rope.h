// RoPE on CPU fp32 without a gradient (Positions::rotate's fast path): the same angles (in double, rounded to float)
// and products as its tensor path, in one loop; decoding one token otherwise pays ~17 small LibTorch ops per rotation.
#pragma once

#include <torch/torch.h>

namespace attnscope {

// x [.., T, d_h] rotated at positions pos [T] (int64): pairs (i, i + r/2) of the first r = rot_dims dims by the
// angle p theta^(-2 i / r); the other dims unchanged.
torch::Tensor rope_rotate_cpu(const torch::Tensor& x, const torch::Tensor& pos, double theta, int64_t rot_dims);

}  // namespace attnscope
