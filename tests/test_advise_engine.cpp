// Engine tests of issue 11 (LibTorch): per-layer mixing, painted masks on the trained weights, the MoE feed-forward.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "custom_mask.h"
#include "engine_impl.h"
#include "error.h"
#include "nn.h"

using namespace attnscope;
namespace fs = std::filesystem;

namespace {

// 4 layers so that every layer can differ; d 32, 4 heads (d_h 8), context 48.
ModelConfig four_layers(int64_t experts = 0, int64_t k = 1) {
  ModelConfig c;
  c.n_layer = 4;
  c.d_model = 32;
  c.n_head = 4;
  c.context = 48;
  c.vocab_size = 20;
  c.moe_experts = experts;
  c.moe_k = k;
  c.set_all_layers("mha", {});
  return c;
}

std::shared_ptr<Model> model(int64_t experts = 0, int64_t k = 1, uint64_t seed = 31) {
  return Model::create(four_layers(experts, k), Tokenizer::from_corpus("abcdefghijklmnopqrs\n"), "cpu", seed);
}

std::vector<int64_t> text(int64_t n) {
  std::vector<int64_t> t;
  for (int64_t i = 0; i < n; ++i) t.push_back((i * 7 + i / 3) % 20);
  return t;
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, double(std::abs(a[i] - b[i])));
  return m;
}

}  // namespace

// ------------------------------------------------------------------------------------------ mixing

TEST(MixedLayers, DecodeEqualsPrefill) {
  auto base = model();
  for (const char* spec : {"sliding_window:window=5,sliding_window:window=5,mha,mha",
                           "linear,gqa:groups=2,sinks:sinks=2,window=20,mla", "custom,tiled:br=16,bc=16,mqa,block_local:block=8"}) {
    auto m = base->with_layers(parse_layer_variants(spec, 4));
    EXPECT_EQ(m->config().variant_summary(), "mixed") << spec;
    auto t = text(33);
    EXPECT_LT(max_diff(m->logits(t, false), m->logits(t, true)), 5e-5) << spec;
  }
}

TEST(MixedLayers, EachLayerKeepsItsVariant) {
  auto m = model()->with_layers(parse_layer_variants("sliding_window:window=4,mha,linear,mha", 4));
  AttentionMaps a = m->attend(text(12));
  EXPECT_EQ(a.layer_variant, (std::vector<std::string>{"sliding_window", "mha", "linear", "mha"}));
  EXPECT_FALSE(a.computed(0, 0, 10, 5));  // outside the window of 4
  EXPECT_TRUE(a.computed(1, 0, 10, 5));   // mha
}

// ------------------------------------------------------------------------------------------ painted masks

TEST(CustomMaskLayer, PaintedBandEqualsSlidingWindow) {
  auto base = model();
  const int64_t T = 40, W = 7;
  CustomMask band = clear_mask(T);
  paint_band(band, 0, W - 1, true);
  ModelConfig cfg = base->config();
  cfg.set_all_layers("custom", {});
  for (auto& l : cfg.layers) l.mask = band;
  auto painted = base->with_layers(cfg.layers);
  auto window = base->with_variant("sliding_window", {{"window", W}});
  auto t = text(T);
  EXPECT_LT(max_diff(painted->logits(t, false), window->logits(t, false)), 1e-5);
  AttentionMaps a = painted->attend(t), b = window->attend(t);
  EXPECT_EQ(a.mask, b.mask);
  EXPECT_LT(max_diff(a.attn, b.attn), 1e-5);
  EXPECT_LT(max_diff(painted->logits(t, false), painted->logits(t, true)), 2e-5);  // decode == prefill
}

TEST(CustomMaskLayer, UsesTheTrainedWeightsAndIsCausal) {
  auto base = model();
  auto t = text(30);
  // Nothing painted, or the full causal triangle: exactly MHA.
  auto plain = base->with_variant("custom", {});
  EXPECT_LT(max_diff(plain->logits(t, false), base->logits(t, false)), 1e-6);
  ModelConfig cfg = base->config();
  cfg.set_all_layers("custom", {});
  CustomMask m = causal_mask(16);  // shorter than the text: causal beyond it
  m.cells[3] = 1;                  // (0, 3) above the diagonal: clipped by the layer too
  paint_rect(m, 8, 0, 15, 3, false);
  cfg.layers[2].mask = m;
  auto painted = base->with_layers(cfg.layers);
  AttentionMaps a = painted->attend(t);
  EXPECT_FALSE(a.computed(2, 0, 0, 3));
  EXPECT_FALSE(a.computed(2, 1, 9, 2));
  EXPECT_TRUE(a.computed(2, 1, 9, 4));
  EXPECT_TRUE(a.computed(2, 0, 20, 2));  // outside the painted square: causal
  EXPECT_TRUE(a.computed(1, 0, 9, 2));   // other layers: not painted
  EXPECT_GT(max_diff(painted->logits(t, false), base->logits(t, false)), 1e-4);
  // Checkpoint round trip keeps the mask.
  auto dir = (fs::path(::testing::TempDir()) / "attnscope_custom_mask").string();
  fs::remove_all(dir);
  painted->save(dir, DType::F32);
  auto back = Model::load(dir, "cpu");
  EXPECT_EQ(back->config().layers[2].mask, painted->config().layers[2].mask);
  EXPECT_LT(max_diff(back->logits(t, false), painted->logits(t, false)), 1e-6);
}

// ------------------------------------------------------------------------------------------ mixture of experts

TEST(MoE, RoutingUsesExactlyKExperts) {
  for (int64_t k : {1, 2, 4}) {
    auto m = model(4, k);
    AttentionMaps a = m->attend(text(25));
    ASSERT_EQ(a.experts, 4);
    ASSERT_EQ(a.top_k, k);
    ASSERT_EQ(a.routing.size(), size_t(4 * 25 * k));
    std::set<int32_t> used_overall;
    for (int64_t l = 0; l < 4; ++l)
      for (int64_t t = 0; t < 25; ++t) {
        std::set<int32_t> used;
        for (int64_t r = 0; r < k; ++r) {
          int32_t e = a.expert(l, t, r);
          EXPECT_TRUE(e >= 0 && e < 4);
          used.insert(e);
          used_overall.insert(e);
          if (r > 0) EXPECT_GE(a.routing_gate[size_t((l * 25 + t) * k + r - 1)], a.routing_gate[size_t((l * 25 + t) * k + r)]);
        }
        EXPECT_EQ(int64_t(used.size()), k) << "layer " << l << " token " << t;  // k distinct experts
      }
    if (k == 4) EXPECT_EQ(used_overall.size(), 4u);
  }
  EXPECT_TRUE(model()->attend(text(5)).routing.empty());  // dense: no routing
}

TEST(MoE, LoadBalancingLossIsOneWhenEveryExpertIsUsed) {
  torch::NoGradGuard ng;
  auto m = model(4, 4);
  auto x = torch::tensor(text(20), torch::kLong).view({1, -1});
  ForwardResult r = m->impl->net->forward(x);
  EXPECT_NEAR(r.aux_loss.item<double>(), 4.0, 1e-5);  // per layer E * sum_e (1/E) P_e = 1; 4 layers
  auto dense = model();
  EXPECT_EQ(dense->impl->net->forward(x).aux_loss.item<double>(), 0.0);
}

TEST(MoE, DecodeEqualsPrefillAndCheckpointRoundTrips) {
  auto m = model(4, 2);
  auto t = text(30);
  auto full = m->logits(t, false);
  EXPECT_LT(max_diff(full, m->logits(t, true)), 2e-5);
  auto names = m->impl->net->named_parameters().keys();
  EXPECT_NE(std::find(names.begin(), names.end(), "layers.0.mlp.router.weight"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "layers.3.mlp.experts.3.2.weight"), names.end());
  auto dn = model()->impl->net->named_parameters().keys();  // dense names unchanged
  EXPECT_NE(std::find(dn.begin(), dn.end(), "layers.0.mlp.0.weight"), dn.end());
  EXPECT_EQ(model()->parameter_count() + 4 * 4 * 32, m->parameter_count());  // parameter-matched + routers
  auto dir = (fs::path(::testing::TempDir()) / "attnscope_moe").string();
  fs::remove_all(dir);
  m->save(dir, DType::F32);
  auto back = Model::load(dir, "cpu");
  EXPECT_EQ(back->config().moe_experts, 4);
  EXPECT_EQ(back->config().moe_k, 2);
  EXPECT_LT(max_diff(back->logits(t, false), full), 1e-6);
  EXPECT_EQ(back->attend(t).routing, m->attend(t).routing);
  // Other variants run on the MoE model's weights too.
  auto w = back->with_variant("sliding_window", {{"window", 8}});
  EXPECT_LT(max_diff(w->logits(t, false), w->logits(t, true)), 2e-5);
}

TEST(MoE, TinyModelLearns) {
  auto m = model(4, 1, 5);
  GPTImpl& net = *m->impl->net;
  net.train();
  torch::optim::AdamW opt(net.parameters(), torch::optim::AdamWOptions(3e-3).weight_decay(0.0));
  std::vector<int64_t> seq;
  for (int64_t i = 0; i < 40; ++i) seq.push_back(1 + i % 5);  // a period of 5: learnable in a few steps
  auto batch = torch::tensor(seq, torch::kLong).view({1, -1}).repeat({4, 1});  // [4, 40]
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    torch::Tensor aux;
    auto ce = lm_loss(net, batch, &aux);
    auto loss = ce + 0.01 * aux;
    opt.zero_grad();
    loss.backward();
    opt.step();
    if (step == 0) first = ce.item<double>();
    last = ce.item<double>();
  }
  EXPECT_LT(last, 0.5 * first) << "cross-entropy " << first << " -> " << last;
}
