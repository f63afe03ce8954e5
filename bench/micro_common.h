#pragma once
// Shared by the micro-benchmark translation units (masked ones in micro_masked.cpp, the rest in
// micro_attention.cpp). One layer shaped like the bundled model: d_model 128, 8 heads (d_h 16), random weights.
#include <benchmark/benchmark.h>

#include <memory>

#include "nn.h"

namespace attnscope::micro {

constexpr int64_t kDModel = 128, kHeads = 8;

struct Layer {
  ModelConfig cfg;
  std::unique_ptr<Positions> pos;  // the layer keeps a pointer to it
  std::shared_ptr<AttentionLayer> attn;
};

inline Layer make_layer(const std::string& variant, const ParamValues& params, int64_t context) {
  Layer l;
  l.cfg.n_layer = 1;
  l.cfg.d_model = kDModel;
  l.cfg.n_head = kHeads;
  l.cfg.context = context;
  l.cfg.set_all_layers(variant, params);
  l.pos = std::make_unique<Positions>(l.cfg);
  torch::manual_seed(1);
  l.attn = make_attention(l.cfg, l.cfg.layers[0], l.pos.get());
  return l;
}

// Prefill of T random tokens [1, T, d], batch 1, no grad.
inline void run_forward(benchmark::State& state, AttentionLayer& layer, int64_t T) {
  torch::NoGradGuard ng;
  AttnCall c;
  c.x = torch::randn({1, T, kDModel});  // [B, T, d]
  for (auto _ : state) benchmark::DoNotOptimize(layer.forward(c).out);
  state.SetItemsProcessed(state.iterations() * T);
}

}  // namespace attnscope::micro
