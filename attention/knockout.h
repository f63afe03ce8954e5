#pragma once
// Knock-outs (inference only, no LibTorch in this header): a copy of a model with chosen heads' outputs zeroed.
// Every variant ends in the output projection out = W_O [o_0; ...; o_{H-1}] (W_O [d, H d_v], no bias), so zeroing
// head h's output o_h is zeroing W_O's columns h d_v .. (h + 1) d_v - 1: exact for every registered variant.
#include <cstdint>
#include <memory>
#include <vector>

#include "engine.h"

namespace attnscope {

struct HeadKnockout {
  int64_t layer = 0;
  int64_t head = -1;  // -1: every head of the layer (the layer's whole attention output)
};

// A copy of `m` (same mode and source) with the listed heads' outputs zeroed. Throws Error for a layer or head out
// of range.
std::shared_ptr<Model> knock_out(const Model& m, const std::vector<HeadKnockout>& heads);

}  // namespace attnscope
