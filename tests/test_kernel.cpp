// Oracles of the kernel, low-rank and structured family (docs/variants.md, its families). The universal tests
// (test_engine.cpp) cover causality, decode == prefill, cache bytes, truthful display, row sums and sweeps.
#include <gtest/gtest.h>

#include <functional>

#include "engine_impl.h"
#include "error.h"
#include "kernel.h"
#include "torch_test_util.h"

using namespace attnscope;
using testing_util::error_of;
using testing_util::max_abs_diff;
using testing_util::small_config;
namespace F = torch::nn::functional;

namespace {

torch::Tensor tokens(int64_t T, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, 20, {1, T}, torch::kLong);  // [1, T]
}

// Two models with the same non-attention weights; b's attention converted from a's (transfer_weights).
std::pair<GPT, GPT> converted(const std::string& va, const ParamValues& pa, const std::string& vb,
                              const ParamValues& pb, PosKind pos = PosKind::Rope) {
  torch::manual_seed(11);
  GPT a(small_config(va, pa, pos)), b(small_config(vb, pb, pos));
  a->eval();
  b->eval();
  transfer_weights(*a, *b);
  return {a, b};
}

// Scale a layer's query/key weights so that scores are O(1) (random init gives nearly uniform softmax).
void sharpen(StandardAttention& a, double s) {
  torch::NoGradGuard ng;
  a.wq->weight.mul_(s);
  a.wk->weight.mul_(s);
}

torch::Tensor naive_masked(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                           const torch::Tensor& allow /*[T, S]*/, double scale) {
  auto s = (torch::matmul(q, k.transpose(-2, -1)) * scale).masked_fill(allow.logical_not(), -INFINITY);
  auto p = torch::softmax(s, -1).masked_fill(allow.logical_not(), 0.0);  // [B, H, T, S]
  return torch::matmul(p, v);
}

}  // namespace

// ------------------------------------------------------------------------------------------ linear family

TEST(Linear, RecurrentEqualsCumulativeSumEqualsLeftProduct) {
  torch::NoGradGuard ng;
  torch::manual_seed(1);
  auto x = torch::randn({2, 3, 37, 8}), y = torch::randn({2, 3, 37, 8});  // [B, H, T, d_h]
  auto v = torch::randn({2, 3, 37, 5});                                   // [B, H, T, d_v]
  for (bool relu : {false, true}) {
    auto pq = relu ? torch::relu(x) : torch::elu(x) + 1, pk = relu ? torch::relu(y) : torch::elu(y) + 1;
    auto rec = causal_linear_attention(pq, pk, v, 1e-6, LinearForm::Recurrent);
    auto cum = causal_linear_attention(pq, pk, v, 1e-6, LinearForm::CumulativeSum);
    auto left = causal_linear_attention(pq, pk, v, 1e-6, LinearForm::LeftProduct);
    EXPECT_LT(max_abs_diff(rec, cum), 1e-5) << (relu ? "relu" : "elu+1");
    EXPECT_LT(max_abs_diff(left, cum), 1e-5) << (relu ? "relu" : "elu+1");
    // And against the definition o_i = sum_{j<=i} (phi_q_i . phi_k_j) v_j / (sum_{j<=i} phi_q_i . phi_k_j + eps).
    auto w = torch::matmul(pq, pk.transpose(-2, -1)).tril();  // [B, H, T, T]
    EXPECT_LT(max_abs_diff(left, torch::matmul(w, v) / (w.sum(-1, true) + 1e-6)), 1e-5);
  }
}

TEST(Linear, DisplayChunkByRowsMatchesTheDefinitionAndTheProducts) {
  // linear_chunk with the display from a fresh state goes by rows (linear_rows.cpp): against the definition and against
  // the same chunk without the display (the [T, T] products), the weights in a wider plane or in a tensor of their own,
  // from head views that are not contiguous (as a layer's projections are).
  torch::NoGradGuard ng;
  torch::manual_seed(5);
  const int64_t B = 2, H = 3, T = 37, m = 16, dv = 8;
  for (bool relu : {false, true})
    for (bool placed : {false, true}) {
      SCOPED_TRACE(std::string(relu ? "relu" : "elu+1") + (placed ? ", placed" : ""));
      auto x = torch::randn({B, T, H, m}).transpose(1, 2),
           y = torch::randn({B, T, H, m}).transpose(1, 2);  // [B, H, T, m]
      auto pq = relu ? torch::relu(x) : torch::elu(x) + 1, pk = relu ? torch::relu(y) : torch::elu(y) + 1;
      auto v = torch::randn({B, T, H, dv}).transpose(1, 2);  // [B, H, T, d_v]
      auto plane = torch::full({B, H, T, T + 7}, 7.0f);      // [B, H, T, P] stale contents
      LinearState st, plain;
      LinearChunk r = linear_chunk(pq, pk, v, 1e-6, st, true, placed ? plane : torch::Tensor());
      LinearChunk g = linear_chunk(pq, pk, v, 1e-6, plain, false);
      auto w = torch::matmul(pq, pk.transpose(-2, -1)).tril();  // [B, H, T, T]
      auto den = (w.sum(-1, true) + 1e-6);                      // [B, H, T, 1]
      EXPECT_LT(max_abs_diff(r.out, torch::matmul(w, v) / den), 1e-5);
      EXPECT_LT(max_abs_diff(r.out, g.out), 1e-5);
      ASSERT_EQ(r.placed, placed);
      auto shown = placed ? r.display.narrow(3, 0, T) : r.display;  // [B, H, T, T]
      EXPECT_LT(max_abs_diff(shown, w / den), 1e-6);
      if (placed) {
        EXPECT_EQ(r.display.narrow(3, T, 7).abs().sum().item<double>(), 0.0);
      }
      EXPECT_LT(max_abs_diff(st.s, plain.s), 1e-4);  // the state advanced the same way
      EXPECT_LT(max_abs_diff(st.z, plain.z), 1e-4);
    }
}

TEST(Linear, ReluRowsWithZeroDenominatorShowAndOutputZeros) {
  torch::NoGradGuard ng;
  // phi(q_0) . phi(k_0) = 0: query 0 has only negative coordinates.
  auto pq = torch::relu(torch::tensor({-1.0f, -2.0f, 1.0f, 0.5f, 0.3f, 2.0f}).view({1, 1, 3, 2}));  // [1, 1, 3, 2]
  auto pk = torch::relu(torch::tensor({1.0f, 1.0f, 0.2f, 0.7f, 1.0f, 0.0f}).view({1, 1, 3, 2}));
  auto v = torch::randn({1, 1, 3, 4});
  LinearState st;
  LinearChunk r = linear_chunk(pq, pk, v, 1e-6, st, true);
  EXPECT_EQ(r.out[0][0][0].abs().sum().item<double>(), 0.0);
  EXPECT_EQ(r.display[0][0][0].abs().sum().item<double>(), 0.0);
  EXPECT_NEAR(r.display[0][0][1].sum().item<double>(), 1.0, 1e-5);
  EXPECT_TRUE(torch::isfinite(r.out).all().item<bool>());
}

TEST(Linear, ReluLayerRowsSumToDenominatorOverDenominatorPlusEps) {
  torch::NoGradGuard ng;
  torch::manual_seed(2);
  auto cfg = small_config("linear", {{"feature_map", 1}}, PosKind::None);
  Positions pos(cfg);
  FeatureMapAttention a(cfg, cfg.layers[0], &pos);
  AttnCall c;
  c.x = torch::randn({1, 40, 32});
  c.want_display = true;
  auto sums = a.forward(c).display.sum(-1);  // [1, H, T]
  auto q = torch::relu(F::linear(c.x, a.wq->weight).view({1, 40, 4, 8}).transpose(1, 2));
  auto k = torch::relu(F::linear(c.x, a.wk->weight).view({1, 40, 4, 8}).transpose(1, 2));
  auto den = torch::matmul(q, k.transpose(-2, -1)).tril().sum(-1);  // [1, H, T]
  EXPECT_LT(max_abs_diff(sums, den / (den + 1e-6)), 1e-6);          // 1 up to eps; 0 where den = 0
}

TEST(Linear, MhaCheckpointLoadsDirectlyAndStateIsConstant) {
  auto [a, b] = converted("mha", {}, "linear", {});
  // Same names and shapes: a straight copy of the weights.
  EXPECT_EQ(max_abs_diff(a->attn[0]->named_parameters()["wq.weight"], b->attn[0]->named_parameters()["wq.weight"]),
            0.0);
  auto c1 = b->new_caches(1, 48);
  EXPECT_EQ(c1[0]->bytes(), 4 * (8 * 8 + 8) * 4);  // H (d_h d_v + d_h) b before any token and after
}

TEST(Performer, OrthogonalFeaturesAreOrthogonalWithChiNorms) {
  auto w = draw_random_features(2, 20, 8, true, 3);  // [H, m, d_h]
  auto block = w[0].narrow(0, 0, 8);                 // [8, 8] one orthogonal block
  auto dirs = block / block.norm(2, 1, true);
  EXPECT_LT(max_abs_diff(torch::matmul(dirs, dirs.t()), torch::eye(8)), 1e-5);
  EXPECT_GT(max_abs_diff(w[0], w[1]), 1e-3);                                 // heads drawn independently
  EXPECT_EQ(max_abs_diff(w, draw_random_features(2, 20, 8, true, 3)), 0.0);  // fixed by the seed
}

TEST(Performer, ErrorAgainstSoftmaxFallsWithFeatures) {
  torch::NoGradGuard ng;
  torch::manual_seed(4);
  const int64_t dh = 16, T = 64;
  // Scores of moderate size, where the estimator is in its 1/sqrt(m) regime already at small m.
  auto q = torch::randn({1, 4, T, dh}) * 0.4, k = torch::randn({1, 4, T, dh}) * 0.4;  // [1, H, T, d_h]
  auto pos = torch::arange(T, torch::kLong);
  auto exact = causal_softmax(q, k, pos, pos, {}, 1.0 / std::sqrt(double(dh)));  // [1, H, T, T]
  const double s4 = std::pow(double(dh), 0.25);
  auto error_at = [&](int64_t m, bool orthogonal) {
    double e = 0;
    for (uint64_t seed = 0; seed < 4; ++seed) {
      auto w = draw_random_features(4, m, dh, orthogonal, seed);  // [H, m, d_h]
      LinearState st;
      auto d = linear_chunk(favor_features(q / s4, w, 0), favor_features(k / s4, w, 0), torch::zeros({1, 4, T, 1}),
                            1e-6, st, true)
                   .display;  // [1, H, T, T]
      e += approximation_error(d, exact).mean_abs.mean().item<double>() / 4;
    }
    return e;
  };
  std::vector<double> orth, iid;
  for (int64_t m : {16, 64, 256, 1024}) {
    orth.push_back(error_at(m, true));
    iid.push_back(error_at(m, false));
  }
  // 1/sqrt(m): each 4x more features should halve the error; demand a factor 1.5 per step and 4 over 64x.
  for (size_t i = 1; i < orth.size(); ++i) EXPECT_LT(orth[i], orth[i - 1] / 1.5) << "step " << i;
  EXPECT_LT(orth[3], orth[0] / 4) << orth[0] << " -> " << orth[3];
  for (size_t i = 0; i < orth.size(); ++i) EXPECT_LT(orth[i], iid[i]) << "orthogonal features should beat i.i.d.";
}

TEST(Performer, EachLayerDrawsItsOwnFeatures) {
  // What the seed's tooltip says: the draw is fixed per layer, from (seed, layer), as BigBird's and LSH's are.
  GPT g(small_config("performer", {{"features", 32}, {"seed", 7}}));
  std::vector<torch::Tensor> w;
  for (int64_t l = 0; l < 2; ++l) {
    auto& f = dynamic_cast<FeatureMapAttention&>(*g->attn[size_t(l)]);
    w.push_back(f.favor_w);  // [H, m, d_h]
    EXPECT_EQ(max_abs_diff(f.favor_w, draw_random_features(4, 32, 8, true, performer_draw_seed(7, l))), 0.0);
  }
  EXPECT_GT(max_abs_diff(w[0], w[1]), 1e-3);
  GPT again(small_config("performer", {{"features", 32}, {"seed", 7}}));  // the same model draws the same features
  EXPECT_EQ(max_abs_diff(dynamic_cast<FeatureMapAttention&>(*again->attn[1]).favor_w, w[1]), 0.0);
}

TEST(Performer, StabiliserIsAConstantAndKeyFeaturesStayBounded) {
  torch::manual_seed(5);
  auto cfg = small_config("performer", {{"features", 64}});
  Positions pos(cfg);
  FeatureMapAttention a(cfg, cfg.layers[0], &pos);
  auto x = torch::randn({1, 4, 30, 8}) * 5;  // [B, H, T, d_h] large keys
  auto f = a.features(x, torch::arange(30, torch::kLong), false);
  EXPECT_LE(f.max().item<double>(), 1.0 / std::sqrt(64.0) + 1e-6);
  // The same key gets the same feature whatever follows it (no max over the sequence).
  auto f2 = a.features(x.narrow(2, 0, 10), torch::arange(10, torch::kLong), false);
  EXPECT_LT(max_abs_diff(f.narrow(2, 0, 10), f2), 1e-7);
}

TEST(Cosformer, RejectsAHorizonBelowTheContext) {
  auto msg = error_of([] { GPT g(small_config("cosformer", {{"m", 255}}, PosKind::Rope, 300)); });
  EXPECT_NE(msg.find("below context - 1 = 299"), std::string::npos) << msg;
}

TEST(Cosformer, WeightsAreReluTimesCosineOfTheDistance) {
  torch::NoGradGuard ng;
  torch::manual_seed(6);
  auto cfg = small_config("cosformer", {{"m", 300}}, PosKind::None);
  Positions pos(cfg);
  FeatureMapAttention a(cfg, cfg.layers[0], &pos);
  AttnCall c;
  c.x = torch::randn({1, 20, 32});
  c.want_display = true;
  auto d = a.forward(c).display;  // [1, H, T, T]
  auto q = torch::relu(F::linear(c.x, a.wq->weight).view({1, 20, 4, 8}).transpose(1, 2));
  auto k = torch::relu(F::linear(c.x, a.wk->weight).view({1, 20, 4, 8}).transpose(1, 2));
  auto i = torch::arange(20, torch::kFloat);
  auto cosw = torch::cos((i.unsqueeze(1) - i.unsqueeze(0)) * (M_PI / 2 / 300));  // [T, T]
  auto w = (torch::matmul(q, k.transpose(-2, -1)) * cosw).tril();
  EXPECT_LT(max_abs_diff(d, w / (w.sum(-1, true) + 1e-6)), 1e-5);
}

// ------------------------------------------------------------------------------------------ low rank

TEST(Linformer, IdentityProjectionsWithKEqualNIsFullSoftmax) {
  torch::NoGradGuard ng;
  const int64_t n = 48;
  for (bool causal : {false, true}) {
    const std::string v = causal ? "linformer_causal" : "linformer";
    auto cfg = small_config(v, {{"k", n}}, PosKind::None, n);
    Positions pos(cfg);
    torch::manual_seed(7);
    LinformerAttention a(cfg, cfg.layers[0], &pos, causal);
    sharpen(a, 8);
    a.e.copy_(torch::eye(n));
    a.f.copy_(torch::eye(n));
    AttnCall c;
    c.x = torch::randn({1, n, 32});
    c.want_display = true;
    auto r = a.forward(c);
    auto q = F::linear(c.x, a.wq->weight).view({1, n, 4, 8}).transpose(1, 2);  // [1, H, T, d_h]
    auto k = F::linear(c.x, a.wk->weight).view({1, n, 4, 8}).transpose(1, 2);
    auto val = F::linear(c.x, a.wv->weight).view({1, n, 4, 8}).transpose(1, 2);
    auto i = torch::arange(n, torch::kLong);
    auto allow = causal ? i.unsqueeze(0) <= i.unsqueeze(1) : torch::ones({n, n}, torch::kBool);
    auto o = naive_masked(q, k, val, allow, 1.0 / std::sqrt(8.0));
    EXPECT_LT(max_abs_diff(r.heads, o), 1e-5) << v;
    EXPECT_LT(max_abs_diff(r.out, F::linear(o.transpose(1, 2).reshape({1, n, 32}), a.wo->weight)), 1e-5) << v;
  }
}

TEST(Linformer, FlaggedNonCausalAndRefusesToDecode) {
  EXPECT_FALSE(get_variant("linformer").causal);
  EXPECT_FALSE(get_variant("nystrom").causal);
  EXPECT_TRUE(get_variant("linformer_causal").causal);
  EXPECT_TRUE(get_variant("linformer").signed_display);
  GPT g(small_config("linformer"));
  auto msg = error_of([&] { g->new_caches(1, 48); });
  EXPECT_NE(msg.find("non-causal: sees future tokens"), std::string::npos) << msg;
  GPT n(small_config("nystrom"));
  EXPECT_NE(error_of([&] { n->new_caches(1, 48); }).find("non-causal: sees future tokens"), std::string::npos);
}

TEST(Nystrom, LandmarksEqualTokensWithExactPinvIsSoftmax) {
  torch::NoGradGuard ng;
  const int64_t n = 24;
  auto cfg = small_config("nystrom", {{"landmarks", n}, {"exact_pinv", 1}}, PosKind::None);
  Positions pos(cfg);
  torch::manual_seed(8);
  NystromAttention a(cfg, cfg.layers[0], &pos);
  sharpen(a, 6);
  AttnCall c;
  c.x = torch::randn({1, n, 32});
  c.want_display = true;
  auto r = a.forward(c);
  auto q = F::linear(c.x, a.wq->weight).view({1, n, 4, 8}).transpose(1, 2);  // [1, H, T, d_h]
  auto k = F::linear(c.x, a.wk->weight).view({1, n, 4, 8}).transpose(1, 2);
  auto full = torch::softmax(torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(8.0), -1);  // [1, H, T, T] bidirectional
  EXPECT_LT(max_abs_diff(r.display, full), 1e-4);
}

TEST(Nystrom, IterativePinvConvergesToThePseudoInverse) {
  torch::NoGradGuard ng;
  torch::manual_seed(9);
  auto a = torch::softmax(torch::randn({3, 12, 12}, torch::kDouble) * 2, -1);  // [3, m, m] softmax kernels
  auto z = iterative_pinv(a, 30);
  EXPECT_LT(max_abs_diff(z, torch::linalg_pinv(a)), 1e-6);
  // A few iterations already approximate it: the error shrinks with more iterations.
  EXPECT_LT(max_abs_diff(iterative_pinv(a, 10), z), max_abs_diff(iterative_pinv(a, 5), z));
}

TEST(Mla, AbsorbedEqualsNaiveInPrefillAndDecode) {
  torch::NoGradGuard ng;
  for (PosKind p : {PosKind::Rope, PosKind::Alibi}) {
    auto cfg = small_config("mla", {{"rank", 24}, {"rope_dims", 4}, {"q_rank", 40}, {"content_rope", 0}}, p);
    Positions pos(cfg);
    torch::manual_seed(10);
    MlaAttention a(cfg, cfg.layers[0], &pos);
    for (auto& w : a.parameters()) w.normal_(0, 0.3);
    ASSERT_TRUE(a.absorbable());
    const int64_t T = 30;
    AttnCall c;
    c.x = torch::randn({1, T, 32});
    auto naive = a.forward(c).out;  // [1, T, d] no cache: up-projected keys and values
    auto cache = a.new_cache(1, T, torch::kCPU);
    c.cache = cache.get();
    auto absorbed = a.forward(c).out;  // one prefill through the cache: absorbed
    EXPECT_LT(max_abs_diff(naive, absorbed), 1e-4) << pos_kind_name(p);
    auto steps = a.new_cache(1, T, torch::kCPU);
    std::vector<torch::Tensor> rows;
    for (int64_t t = 0; t < T; ++t) {
      AttnCall s;
      s.x = c.x.narrow(1, t, 1);
      s.pos0 = t;
      s.cache = steps.get();
      rows.push_back(a.forward(s).out);
      steps->seen += 1;
    }
    EXPECT_LT(max_abs_diff(naive, torch::cat(rows, 1)), 1e-4) << pos_kind_name(p);
    EXPECT_EQ(steps->bytes(), T * (24 + 4) * 4);
  }
}

TEST(Mla, IdentityDownProjectionsWithoutRopeDimsIsMha) {
  torch::NoGradGuard ng;
  for (PosKind p : {PosKind::Rope, PosKind::None}) {
    auto cfg = small_config("mla", {{"rank", 32}, {"rope_dims", 0}, {"q_rank", 32}}, p);
    auto mcfg = small_config("mha", {}, p);
    Positions pos(cfg);
    torch::manual_seed(12);
    MlaAttention a(cfg, cfg.layers[0], &pos);
    StandardAttention m(mcfg, mcfg.layers[0], &pos, 4);
    a.w_dkv->weight.copy_(torch::eye(32));
    a.w_dq->weight.copy_(torch::eye(32));
    a.w_uk->weight.copy_(m.wk->weight);
    a.w_uv->weight.copy_(m.wv->weight);
    a.w_uq->weight.copy_(m.wq->weight);
    a.wo->weight.copy_(m.wo->weight);
    AttnCall c;
    c.x = torch::randn({1, 25, 32});
    c.want_display = true;
    auto ra = a.forward(c), rm = m.forward(c);
    EXPECT_LT(max_abs_diff(ra.out, rm.out), 1e-5) << pos_kind_name(p);
    EXPECT_LT(max_abs_diff(ra.display, rm.display), 1e-5) << pos_kind_name(p);
  }
}

TEST(Mla, SvdConversionAtFullRankReproducesMhaLogits) {
  torch::NoGradGuard ng;
  auto x = tokens(40, 13);
  for (PosKind p : {PosKind::Rope, PosKind::Alibi}) {
    // [W_K; W_V] is 64 x 32: rank 32 is full; W_Q (32 x 32) likewise at q_rank 32.
    auto [a, b] = converted("mha", {}, "mla", {{"rank", 32}, {"q_rank", 32}, {"rope_dims", 8}}, p);
    EXPECT_LT(max_abs_diff(a->forward(x).logits, b->forward(x).logits), 1e-4) << pos_kind_name(p);
    // Below full rank the conversion loses something.
    auto [c, d] = converted("mha", {}, "mla", {{"rank", 16}, {"q_rank", 32}}, p);
    EXPECT_GT(max_abs_diff(c->forward(x).logits, d->forward(x).logits), 1e-4) << pos_kind_name(p);
  }
}

TEST(Mla, ConvertedModelSaysSoAndLatentNormRefusesConversion) {
  Tokenizer tok = Tokenizer::from_corpus("abcdefghijklmnopqrs\n");
  auto m = Model::create(small_config("mha"), tok, "cpu", 3);
  auto r = m->with_variant("mla", {{"rank", 16}});
  EXPECT_EQ(r->mode(), "converted from mha");
  auto msg = error_of([&] { m->with_variant("mla", {{"latent_norm", 1}}); });
  EXPECT_NE(msg.find("latent_norm"), std::string::npos) << msg;
}

// ------------------------------------------------------------------------------------------ structured

TEST(Mta, IdentityKernelsEqualMha) {
  torch::NoGradGuard ng;
  auto x = tokens(40, 14);
  for (PosKind p : {PosKind::Rope, PosKind::Alibi}) {
    auto [a, b] = converted("mha", {}, "mta", {{"c_q", 4}, {"c_k", 5}, {"head_group_size", 2}}, p);
    ForwardOptions o;
    o.want_display = true;
    auto ra = a->forward(x, o), rb = b->forward(x, o);
    EXPECT_LT(max_abs_diff(ra.logits, rb.logits), 1e-5) << pos_kind_name(p);
    EXPECT_LT(max_abs_diff(ra.display[1], rb.display[1]), 1e-5) << pos_kind_name(p);
  }
}

TEST(Mta, AFreshModelStartsFromIdentityKernels) {
  // Training from scratch starts where conversion does: the random initialisation leaves the kernels at identity.
  torch::NoGradGuard ng;
  torch::manual_seed(3);
  GPT g(small_config("mta", {{"c_q", 3}, {"c_k", 5}}));
  auto& m = dynamic_cast<MtaAttention&>(*g->attn[0]);
  auto id = torch::zeros_like(m.kernel);  // [H, 1, c_q, c_k]
  id.select(2, 2).select(2, 2).fill_(1.0);
  EXPECT_EQ(max_abs_diff(m.kernel, id), 0.0);
}

TEST(Mta, ConvolutionIsPastOnlyOverQueriesAndCentredOverKeys) {
  torch::NoGradGuard ng;
  auto cfg = small_config("mta", {{"c_q", 2}, {"c_k", 3}}, PosKind::None);
  Positions pos(cfg);
  torch::manual_seed(15);
  MtaAttention a(cfg, cfg.layers[0], &pos);
  sharpen(a, 4);
  a.kernel.zero_();
  a.kernel.select(2, 0).select(2, 2).fill_(1.0);  // weight on (previous query, next key)
  AttnCall c;
  c.x = torch::randn({1, 12, 32});
  c.want_display = true;
  auto r = a.forward(c);
  // Reference: score'(i, j) = S(i - 1, j + 1) (0 outside, masked entries 0), then causal softmax.
  auto q = F::linear(c.x, a.wq->weight).view({1, 12, 4, 8}).transpose(1, 2);
  auto k = F::linear(c.x, a.wk->weight).view({1, 12, 4, 8}).transpose(1, 2);
  auto i = torch::arange(12, torch::kLong);
  auto causal = i.unsqueeze(0) <= i.unsqueeze(1);  // [T, T]
  auto s = (torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(8.0)).masked_fill(causal.logical_not(), 0.0);
  auto shifted = torch::zeros_like(s);
  shifted.narrow(2, 1, 11).narrow(3, 0, 11).copy_(s.narrow(2, 0, 11).narrow(3, 1, 11));
  auto p = torch::softmax(shifted.masked_fill(causal.logical_not(), -INFINITY), -1);
  EXPECT_LT(max_abs_diff(r.display, p), 1e-5);
  // Before the convolution: the plain softmax on the same Q and K.
  EXPECT_LT(max_abs_diff(a.exact_display(c.x), torch::softmax(s.masked_fill(causal.logical_not(), -INFINITY), -1)),
            1e-5);
}

TEST(Tiled, EqualsNaiveForNonDivisorTiles) {
  torch::NoGradGuard ng;
  torch::manual_seed(16);
  const int64_t n = 257;
  auto q = torch::randn({2, 3, n, 16}) * 2, k = torch::randn({2, 3, n, 16}) * 2, v = torch::randn({2, 3, n, 16});
  auto pos = torch::arange(n, torch::kLong);
  auto causal = [](const torch::Tensor& qp, const torch::Tensor& kp) { return kp.unsqueeze(0) <= qp.unsqueeze(1); };
  TiledOut t = tiled_attention(q, k, v, pos, pos, 64, 48, 0.25, causal);
  EXPECT_LT(max_abs_diff(t.out, naive_masked(q, k, v, causal(pos, pos), 0.25)), 1e-5);
  EXPECT_EQ(t.tiles.size(0), 5);  // ceil(257 / 64)
  EXPECT_EQ(t.tiles.size(1), 6);  // ceil(257 / 48)
  EXPECT_GT((t.tiles == uint8_t(KernelTileState::Skipped)).sum().item<int64_t>(), 0);
  // LSE: sum_j exp(s_ij - LSE_i) = 1.
  auto s = (torch::matmul(q, k.transpose(-2, -1)) * 0.25).masked_fill(causal(pos, pos).logical_not(), -INFINITY);
  EXPECT_LT(max_abs_diff(torch::exp(s - t.lse.unsqueeze(-1)).sum(-1), torch::ones({2, 3, n})), 1e-5);
}

TEST(Tiled, WindowThatEmptiesWholeTilesAndEmptyRowsGiveNoNaN) {
  torch::NoGradGuard ng;
  torch::manual_seed(17);
  const int64_t n = 257;
  auto q = torch::randn({1, 2, n, 8}), k = torch::randn({1, 2, n, 8}), v = torch::randn({1, 2, n, 8});
  auto pos = torch::arange(n, torch::kLong);
  auto window = [](const torch::Tensor& qp, const torch::Tensor& kp) {
    auto d = qp.unsqueeze(1) - kp.unsqueeze(0);  // [br, bc] i - j
    return (d >= 0).logical_and(d < 20);
  };
  TiledOut t = tiled_attention(q, k, v, pos, pos, 64, 48, 0.3, window);
  EXPECT_TRUE(torch::isfinite(t.out).all().item<bool>());
  EXPECT_LT(max_abs_diff(t.out, naive_masked(q, k, v, window(pos, pos), 0.3)), 1e-5);
  // Lower-left tiles far below the diagonal are emptied by the window and skipped.
  EXPECT_EQ(t.tiles[4][0].item<uint8_t>(), uint8_t(KernelTileState::Skipped));
  // Strictly-before: row 0 has nothing allowed, in a tile that also holds allowed rows.
  auto before = [](const torch::Tensor& qp, const torch::Tensor& kp) { return kp.unsqueeze(0) < qp.unsqueeze(1); };
  TiledOut e = tiled_attention(q, k, v, pos, pos, 64, 48, 0.3, before);
  EXPECT_TRUE(torch::isfinite(e.out).all().item<bool>());
  EXPECT_EQ(e.out[0][0][0].abs().sum().item<double>(), 0.0);
  EXPECT_LT(max_abs_diff(e.out, naive_masked(q, k, v, before(pos, pos), 0.3)), 1e-5);
  // The tile map matches the mask: computed tiles fully allowed, skipped tiles empty.
  auto st = tile_states(pos, pos, 64, 48, window);
  EXPECT_EQ(max_abs_diff(st.to(torch::kFloat), t.tiles.to(torch::kFloat)), 0.0);
}

TEST(Tiled, LayerEqualsMhaAndTileMapIsCausal) {
  torch::NoGradGuard ng;
  auto x = tokens(45, 18);
  for (PosKind p : {PosKind::Rope, PosKind::Alibi}) {
    auto [a, b] = converted("mha", {}, "tiled", {{"br", 16}, {"bc", 32}}, p);
    ForwardOptions o;
    o.want_display = true;
    auto ra = a->forward(x, o), rb = b->forward(x, o);
    EXPECT_LT(max_abs_diff(ra.logits, rb.logits), 1e-5) << pos_kind_name(p);
    EXPECT_LT(max_abs_diff(ra.display[0], rb.display[0]), 1e-5) << pos_kind_name(p);
  }
  KernelTileMap m = tile_map(257, 257, 64, 48);
  ASSERT_EQ(m.rows, 5);
  ASSERT_EQ(m.cols, 6);
  // Query tile 0 (rows 0..63): key tiles 0 (0..47) and 1 (48..95) cross the diagonal, tiles 2.. are skipped;
  // query tile 1 (rows 64..127) sees all of key tile 0.
  EXPECT_EQ(m.state[0], 1);
  EXPECT_EQ(m.state[1], 1);
  EXPECT_EQ(m.state[2], 0);
  EXPECT_EQ(m.state[6], 2);
}

TEST(Differential, LambdaZeroIsMhaWithHalfTheHeads) {
  torch::NoGradGuard ng;
  auto cfg = small_config("differential", {{"lambda", 0.0}}, PosKind::None);
  Positions pos(cfg);
  torch::manual_seed(19);
  DifferentialAttention a(cfg, cfg.layers[0], &pos);
  sharpen(a, 4);
  const int64_t T = 21;
  AttnCall c;
  c.x = torch::randn({1, T, 32});
  c.want_display = true;
  auto r = a.forward(c);
  // MHA with 2 heads whose query/key are MHA heads 0 and 2 (d_h 8) and whose values are heads (0, 1), (2, 3).
  auto q = F::linear(c.x, a.wq->weight).view({1, T, 4, 8}).transpose(1, 2);  // [1, 4, T, 8]
  auto k = F::linear(c.x, a.wk->weight).view({1, T, 4, 8}).transpose(1, 2);
  auto v = F::linear(c.x, a.wv->weight).view({1, T, 2, 16}).transpose(1, 2);  // [1, 2, T, 16]
  auto idx = torch::tensor({0, 2}, torch::kLong);
  auto i = torch::arange(T, torch::kLong);
  auto o = naive_masked(q.index_select(1, idx), k.index_select(1, idx), v, i.unsqueeze(0) <= i.unsqueeze(1),
                        1 / std::sqrt(8.0));
  EXPECT_LT(max_abs_diff(r.out, F::linear(o.transpose(1, 2).reshape({1, T, 32}), a.wo->weight)), 1e-5);
}

TEST(Differential, ShowsTheSignedDifferenceWithRowsSummingToOneMinusLambda) {
  torch::NoGradGuard ng;
  EXPECT_TRUE(get_variant("differential").signed_display);
  torch::manual_seed(20);
  GPT g(small_config("differential", {{"lambda", 0.8}}));
  for (auto& l : g->attn) sharpen(dynamic_cast<StandardAttention&>(*l), 6);
  ForwardOptions o;
  o.want_display = true;
  auto r = g->forward(tokens(30, 21), o);
  EXPECT_LT(r.display[0].min().item<double>(), 0.0);  // the subtraction shows as negative weights
  EXPECT_LT(max_abs_diff(r.display[0].sum(-1), torch::full({1, 4, 30}, 0.2)), 1e-5);
}

// ------------------------------------------------------------------------------------------ caches and facade

TEST(KernelCaches, FormulasMatchTheReferenceNumbers) {
  // docs/variants.md#cache-formulas: d = 256, H = 8, d_h = 32, fp32.
  auto at = [](const std::string& v, const ParamValues& p) {
    ModelConfig c;
    c.n_layer = 1;
    c.d_model = 256;
    c.n_head = 8;
    c.context = 256;
    c.set_all_layers(v, p);
    Positions pos(c);
    return make_attention(c, c.layers[0], &pos)->cache_formula_bytes(1, 4);
  };
  EXPECT_EQ(at("mla", {{"rank", 64}, {"rope_dims", 16}}), 320);
  EXPECT_EQ(at("linear", {}), 33792);
  EXPECT_EQ(at("performer", {{"features", 64}}), 67584);
  EXPECT_EQ(at("linformer_causal", {{"k", 32}}), 65536);
  EXPECT_EQ(at("tiled", {}), 2048);
  EXPECT_EQ(at("differential", {}), 2048);
}

TEST(KernelFacade, ReferenceMapsReportTheApproximationError) {
  Tokenizer tok = Tokenizer::from_corpus("abcdefghijklmnopqrs\n");
  auto mha = Model::create(small_config("mha"), tok, "cpu", 4);
  std::vector<int64_t> text = {1, 5, 2, 8, 3, 0, 7, 7, 4, 4, 12, 9};
  auto tiled = reference_maps(*mha->with_variant("tiled", {}), text);
  ASSERT_EQ(tiled.available, (std::vector<uint8_t>{1, 1}));
  for (double e : tiled.max_abs) EXPECT_LT(e, 1e-5);  // exact up to rounding
  auto perf = reference_maps(*mha->with_variant("performer", {{"features", 16}}), text);
  ASSERT_EQ(perf.max_abs.size(), 8u);
  for (size_t i = 0; i < perf.max_abs.size(); ++i) {
    EXPECT_GT(perf.max_abs[i], 1e-4);
    EXPECT_LE(perf.mean_abs[i], perf.max_abs[i]);
    EXPECT_GE(perf.mean_kl[i], 0.0);
  }
  EXPECT_EQ(perf.kl_rows.size(), size_t(2 * 4 * 12));
  auto mla = reference_maps(*mha->with_variant("mla", {}), text);
  EXPECT_EQ(mla.available, (std::vector<uint8_t>{0, 0}));
}
