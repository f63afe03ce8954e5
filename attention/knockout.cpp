// Knock-outs by editing a copy's output projections (knockout.h).
#include "knockout.h"

#include <string>

#include "engine_impl.h"
#include "error.h"

namespace attnscope {

std::shared_ptr<Model> knock_out(const Model& m, const std::vector<HeadKnockout>& heads) {
  auto copy = m.with_layers(m.config().layers);  // fresh weights, the same variants: nothing converted
  GPTImpl& net = *copy->impl->net;
  const int64_t L = int64_t(net.attn.size()), H = m.config().n_head;
  torch::NoGradGuard ng;
  for (const HeadKnockout& k : heads) {
    if (k.layer < 0 || k.layer >= L)
      throw Error("knock-out: layer " + std::to_string(k.layer) + " (the model has " + std::to_string(L) + ")");
    if (k.head < -1 || k.head >= H)
      throw Error("knock-out: head " + std::to_string(k.head) + " (the model has " + std::to_string(H) + ")");
    auto params = net.attn[size_t(k.layer)]->named_parameters();
    torch::Tensor* wo = params.find("wo.weight");  // [d, H d_v]
    if (!wo) throw Error("knock-out: layer " + std::to_string(k.layer) + " has no output projection");
    const int64_t dv = wo->size(1) / H;
    if (k.head < 0)
      wo->zero_();
    else
      wo->narrow(1, k.head * dv, dv).zero_();  // [d, d_v]: head h's columns
  }
  return copy;
}

}  // namespace attnscope
