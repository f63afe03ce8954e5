#pragma once
// Knock-outs (inference only, no LibTorch in this header): a copy of a model with chosen heads' outputs removed.
// Every variant ends in the output projection out = W_O [o_0; ...; o_{H-1}] (W_O [d, H d_v], no bias), so head h's
// contribution to the residual stream is c_h(t) = W_O[:, h] o_h(t), with W_O[:, h] its d_v columns. Two ways to
// remove it, exact for every registered variant:
// - zero:  c_h(t) -> 0, by zeroing W_O's columns h d_v .. (h + 1) d_v - 1;
// - mean:  c_h(t) -> mean over positions of c_h, measured on a fixed text (the held-out slice) under the intact
//          model: the same columns zeroed, and that mean added to the layer's attention output as a bias. The head's
//          average effect stays; what it does at each position goes (mean ablation). The bias does not depend on
//          the text being read, so the copy is an ordinary causal model (typing stays incremental).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine.h"

namespace attnscope {

struct HeadKnockout {
  int64_t layer = 0;
  int64_t head = -1;  // -1: every head of the layer (the layer's whole attention output)
};

enum class KnockMode { Zero = 0, Mean = 1 };
const char* knock_mode_name(KnockMode m);          // "zero", "mean"
KnockMode parse_knock_mode(const std::string& s);  // "zero" | "mean"; Error otherwise

// Every head's mean contribution to the residual stream, mean over t of W_O[:, h] o_h(t), over every position of a
// text read in context-long windows by the intact model (each window from position 0).
struct HeadMeans {
  int64_t layers = 0, heads = 0, d = 0;
  int64_t positions = 0;    // how many positions the means average
  std::vector<float> mean;  // [L, H, d]
  const float* at(int64_t l, int64_t h) const { return mean.data() + (l * heads + h) * d; }
};
// Throws Error for an empty text or one the model cannot read (unknown ids).
HeadMeans head_means(const Model& m, const std::vector<int64_t>& tokens);

// A copy of `m` (same mode and source) with the listed heads knocked out: zeroed, or replaced by their means
// (`means` from head_means of the same model; null: zero). A head listed twice, or inside a listed layer, counts
// once. Throws Error for a layer or head out of range, or means of another shape.
std::shared_ptr<Model> knock_out(const Model& m, const std::vector<HeadKnockout>& heads,
                                 const HeadMeans* means = nullptr);

}  // namespace attnscope
