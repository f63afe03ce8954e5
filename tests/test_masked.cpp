// The masked family's oracles (docs/variants.md#family-masked): equalities with causal attention at the
// parameters' limits, the efficient paths against the dense masked reference, sinks against the streaming
// prefill, LSH against causal shared-QK attention, cache accounting per step, and the positions (RoPE, xPos,
// ALiBi) and soft-capping.
#include <gtest/gtest.h>

#include <functional>

#include "error.h"
#include "masked.h"
#include "nn.h"
#include "variant_oracles.h"
#include "torch_test_util.h"

using namespace attnscope;
using testing_util::error_of;
using testing_util::max_abs_diff;
using testing_util::small_config;

namespace {

torch::Tensor tokens(int64_t T, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, 20, {1, T}, torch::kLong);  // [1, T]
}

// Two models with the same weights (b's attention copied from a's MHA-shaped layers).
std::pair<GPT, GPT> pair_of(const std::string& va, const ParamValues& pa, const std::string& vb, const ParamValues& pb,
                            PosKind pos = PosKind::Rope) {
  torch::manual_seed(31);
  GPT a(small_config(va, pa, pos)), b(small_config(vb, pb, pos));
  a->eval();
  b->eval();
  transfer_weights(*a, *b);
  return {a, b};
}

double logits_gap(const std::string& va, const ParamValues& pa, const std::string& vb, const ParamValues& pb,
                  int64_t T = 40, PosKind pos = PosKind::Rope) {
  torch::NoGradGuard ng;
  auto [a, b] = pair_of(va, pa, vb, pb, pos);
  auto x = tokens(T, 41);
  return max_abs_diff(a->forward(x).logits, b->forward(x).logits);
}

// One layer of `variant` over a model config (context 256: room for long texts), with its own positions.
struct OneLayer {
  ModelConfig cfg;
  std::unique_ptr<Positions> pos;
  std::shared_ptr<AttentionLayer> layer;
  OneLayer(const std::string& variant, const ParamValues& p, PosKind k = PosKind::Rope, int64_t context = 256) {
    cfg = small_config(variant, p, k, context);
    pos = std::make_unique<Positions>(cfg);
    torch::manual_seed(51);
    layer = make_attention(cfg, cfg.layers[0], pos.get());
    layer->eval();
  }
  StandardAttention& std_layer() { return dynamic_cast<StandardAttention&>(*layer); }
  AttnResult run(const torch::Tensor& x, bool display = true, int64_t pos0 = 0) {
    AttnCall c;
    c.x = x;
    c.want_display = display;
    c.pos0 = pos0;
    return layer->forward(c);
  }
};

// Reference attention written out here: softmax over `allow` of q k^T / sqrt(d_h) + bias, times v.
torch::Tensor reference_heads(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                              const torch::Tensor& allow /*[T, S] or [H, T, S]*/, const torch::Tensor& bias = {}) {
  auto s = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(q.size(-1)));  // [B, H, T, S]
  if (bias.defined()) s = s + bias;
  s = s.masked_fill(allow.logical_not(), -std::numeric_limits<float>::infinity());
  return torch::matmul(torch::softmax(s, -1), v);  // [B, H, T, d_h]
}

torch::Tensor heads_of(StandardAttention& a, const torch::Tensor& w, const torch::Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1);
  return torch::nn::functional::linear(x, w).view({B, T, a.n_head, a.head_dim}).transpose(1, 2);  // [B, H, T, d_h]
}

}  // namespace

// ------------------------------------------------------------------------------------------ limits

TEST(MaskedOracle, WindowCoveringTheTextIsCausal) {
  EXPECT_LT(logits_gap("mha", {}, "sliding_window", {{"window", 40}}), 1e-6);
  EXPECT_LT(logits_gap("mha", {}, "sliding_window", {{"window", 256}}), 1e-6);
}

TEST(MaskedOracle, WindowOfOneOutputsTheOwnValue) {
  torch::NoGradGuard ng;
  OneLayer o("sliding_window", {{"window", 1}});
  auto x = torch::randn({1, 30, 32});  // [B, T, d]
  auto r = o.run(x);
  EXPECT_LT(max_abs_diff(r.heads, o.layer->head_values(x)), 1e-6);  // o_i = v_i
}

TEST(MaskedOracle, DilationOneIsTheWindow) {
  for (int64_t w : {4, 16, 64})
    EXPECT_LT(
        logits_gap("sliding_window", {{"window", double(w)}}, "dilated", {{"window", double(w)}, {"dilation", 1}}),
        1e-6);
}

TEST(MaskedOracle, BlockCoveringTheTextIsCausal) {
  EXPECT_LT(logits_gap("mha", {}, "block_local", {{"block", 40}}), 1e-6);
}

TEST(MaskedOracle, SinksCoveringTheTextAreCausal) {
  EXPECT_LT(logits_gap("mha", {}, "sinks", {{"sinks", 4}, {"window", 36}}), 1e-6);
  EXPECT_LT(logits_gap("mha", {}, "sinks", {{"sinks", 0}, {"window", 40}}), 1e-6);
}

TEST(MaskedOracle, LongformerWithoutGlobalsIsTheWindow) {
  EXPECT_LT(logits_gap("sliding_window", {{"window", 8}}, "longformer", {{"window", 8}, {"globals", 0}}), 1e-6);
}

TEST(MaskedOracle, BigBirdWithoutRandomOrGlobalBlocksIsTheBlockWindow) {
  torch::NoGradGuard ng;
  // w_b = 0: block-local.
  EXPECT_LT(logits_gap("block_local", {{"block", 8}}, "bigbird",
                       {{"block", 8}, {"window_blocks", 0}, {"global_blocks", 0}, {"random_blocks", 0}}),
            1e-6);
  // w_b = 2: own block plus the two before it.
  OneLayer o("bigbird", {{"block", 8}, {"window_blocks", 2}, {"global_blocks", 0}, {"random_blocks", 0}});
  auto mask = o.run(torch::randn({1, 50, 32})).mask[0];  // [T, S]
  auto i = torch::arange(50).unsqueeze(1), j = torch::arange(50).unsqueeze(0);
  auto want = (j <= i) & (torch::div(j, 8, "floor") >= torch::div(i, 8, "floor") - 2);
  EXPECT_TRUE(mask.equal(want));
}

TEST(MaskedOracle, BigBirdRandomBlocksAreFixedPerLayerHeadAndQueryBlock) {
  torch::NoGradGuard ng;
  const ParamValues p = {{"block", 8}, {"window_blocks", 0}, {"global_blocks", 0}, {"random_blocks", 2}, {"seed", 3}};
  torch::manual_seed(1);
  GPT a(small_config("bigbird", p, PosKind::Rope, 256));
  torch::manual_seed(2);
  GPT b(small_config("bigbird", p, PosKind::Rope, 256));
  auto x = tokens(200, 5);
  ForwardOptions o;
  o.want_display = true;
  a->train();
  auto train_mask = a->forward(x, o).mask;
  a->eval();
  auto eval_mask = a->forward(x, o).mask, other_model = b->forward(x, o).mask;
  for (size_t l = 0; l < 2; ++l) {
    EXPECT_TRUE(train_mask[l].equal(eval_mask[l])) << "training and evaluation masks differ";
    EXPECT_TRUE(other_model[l].equal(eval_mask[l])) << "the mask depends on more than the seed";
  }
  EXPECT_FALSE(eval_mask[0].equal(eval_mask[1])) << "layers share their random blocks";
  EXPECT_FALSE(eval_mask[0][0].equal(eval_mask[0][1])) << "heads share their random blocks";
  // The pattern view draws the same links as the layer.
  PatternView v = describe_pattern("bigbird", p, 4, 256, 200, 1);
  auto m = eval_mask[1].to(torch::kUInt8).contiguous();
  EXPECT_TRUE(std::equal(v.mask.begin(), v.mask.end(), m.data_ptr<uint8_t>()));
}

// ------------------------------------------------------------------------------------------ efficient paths

TEST(MaskedEfficient, BlockedPathEqualsDenseMaskedReference) {
  torch::NoGradGuard ng;
  const std::vector<std::pair<std::string, ParamValues>> cases = {
      {"sliding_window", {{"window", 1}}},
      {"sliding_window", {{"window", 16}}},
      {"sliding_window", {{"window", 37}}},
      {"dilated", {{"window", 8}, {"dilation", 3}}},
      {"block_local", {{"block", 24}}},
      {"longformer", {{"window", 16}, {"globals", 3}}},
      {"sinks", {{"sinks", 4}, {"window", 16}}},
      {"bigbird", {{"block", 8}, {"window_blocks", 1}, {"global_blocks", 1}, {"random_blocks", 2}, {"seed", 9}}}};
  for (PosKind k : {PosKind::Rope, PosKind::Alibi, PosKind::XPos})
    for (const auto& [v, p] : cases)
      for (int64_t pos0 : {0, 5}) {
        OneLayer o(v, p, k);
        auto x = torch::randn({2, 203, 32});  // [B, T, d]
        set_masked_path(*o.layer, MaskedPath::Dense);
        auto dense = o.run(x, true, pos0);
        set_masked_path(*o.layer, MaskedPath::Blocked);
        auto blocked = o.run(x, true, pos0);
        auto fast = o.run(x, false, pos0);
        const std::string what = v + " under " + pos_kind_name(k) + " from position " + std::to_string(pos0);
        EXPECT_LT(max_abs_diff(dense.out, blocked.out), 1e-5) << what;
        EXPECT_LT(max_abs_diff(dense.out, fast.out), 1e-5) << what;
        EXPECT_LT(max_abs_diff(dense.display, blocked.display), 1e-6) << what;
        EXPECT_TRUE(dense.mask.equal(blocked.mask)) << what;
      }
}

// ------------------------------------------------------------------------------------------ decoding

TEST(MaskedDecode, CacheBytesEqualTheFormulaAtEveryStep) {
  torch::NoGradGuard ng;
  const std::vector<std::pair<std::string, ParamValues>> cases = {{"sliding_window", {{"window", 5}}},
                                                                  {"dilated", {{"window", 4}, {"dilation", 3}}},
                                                                  {"block_local", {{"block", 8}}},
                                                                  {"strided", {{"stride", 8}}},
                                                                  {"fixed", {{"stride", 8}, {"c", 2}}},
                                                                  {"longformer", {{"window", 8}, {"globals", 2}}},
                                                                  {"bigbird", {{"block", 8}, {"random_blocks", 1}}},
                                                                  {"sinks", {{"sinks", 2}, {"window", 16}}},
                                                                  {"lsh", {}},
                                                                  {"softcap", {}}};
  for (const auto& [v, p] : cases) {
    torch::manual_seed(61);
    GPT net(small_config(v, p));
    net->eval();
    auto x = tokens(46, 62);
    auto full = net->forward(x).logits[0];  // [T, V]
    auto caches = net->new_caches(1, 48);
    ForwardOptions o;
    o.caches = &caches;
    double worst = 0;
    for (int64_t t = 0; t < 46; ++t) {
      o.pos0 = t;
      auto row = net->forward(x.narrow(1, t, 1), o).logits[0][0];  // [V]
      worst = std::max(worst, max_abs_diff(row, full[t]));
      for (size_t l = 0; l < caches.size(); ++l)
        ASSERT_EQ(caches[l]->bytes(), net->attn[l]->cache_formula_bytes(t + 1, 4))
            << v << " after " << t + 1 << " tokens";
    }
    EXPECT_LT(worst, 2e-5) << v << ": decoding differs from the full forward";
  }
  // The window's cache is a ring of W tokens: 2 H d_h b W at most.
  GPT w(small_config("sliding_window", {{"window", 5}}));
  EXPECT_EQ(w->attn[0]->cache_formula_bytes(1000, 4), 2 * 4 * 8 * 4 * 5);
  // docs/variants.md#cache-formulas: d = 256, H = 8, W = 64 caps at 131,072 B per layer.
  ModelConfig big = small_config("sliding_window", {{"window", 64}}, PosKind::Rope, 256);
  big.d_model = 256;
  big.n_head = 8;
  GPT b(big);
  EXPECT_EQ(b->attn[0]->cache_formula_bytes(4096, 4), 131072);
}

TEST(MaskedDecode, PrefillThroughTheCacheThenDecode) {
  // generate() prefills many tokens through the caches at once, then decodes one at a time.
  torch::NoGradGuard ng;
  for (const std::string v : {"sliding_window", "sinks", "bigbird", "fixed", "lsh"}) {
    torch::manual_seed(71);
    GPT net(small_config(v, v == "sliding_window" ? ParamValues{{"window", 6}} : ParamValues{}));
    net->eval();
    auto x = tokens(40, 72);
    auto full = net->forward(x).logits[0];  // [T, V]
    auto caches = net->new_caches(1, 48);
    ForwardOptions o;
    o.caches = &caches;
    auto head = net->forward(x.narrow(1, 0, 25), o).logits[0];  // [25, V]
    EXPECT_LT(max_abs_diff(head, full.narrow(0, 0, 25)), 2e-5) << v;
    for (int64_t t = 25; t < 40; ++t) {
      o.pos0 = t;
      EXPECT_LT(max_abs_diff(net->forward(x.narrow(1, t, 1), o).logits[0][0], full[t]), 2e-5) << v << " at " << t;
    }
    for (size_t l = 0; l < caches.size(); ++l)
      EXPECT_EQ(caches[l]->bytes(), net->attn[l]->cache_formula_bytes(40, 4)) << v;
  }
}

TEST(MaskedDecode, SinksFollowTheStreamingPrefill) {
  // Reference written here: row i sees its cache (the first S tokens and the last W), with positions counted
  // inside the cache (rank among the kept tokens), both for RoPE and for ALiBi.
  torch::NoGradGuard ng;
  const int64_t S = 3, W = 16, T = 41;
  for (PosKind k : {PosKind::Rope, PosKind::Alibi}) {
    OneLayer o("sinks", {{"sinks", double(S)}, {"window", double(W)}}, k);
    auto& a = o.std_layer();
    auto x = torch::randn({1, T, 32});  // [B, T, d]
    auto q = heads_of(a, a.wq->weight, x), kk = heads_of(a, a.wk->weight, x), v = heads_of(a, a.wv->weight, x);
    std::vector<torch::Tensor> rows;  // per row [B, H, 1, d_h]
    for (int64_t i = 0; i < T; ++i) {
      std::vector<int64_t> kept;
      for (int64_t j = 0; j <= i; ++j)
        if (j < S || j > i - W) kept.push_back(j);
      const int64_t n = static_cast<int64_t>(kept.size());
      auto idx = torch::tensor(kept, torch::kLong);  // [n]
      auto ranks = torch::arange(n, torch::kLong);   // [n] positions inside the cache
      auto qi = o.pos->rotate(q.narrow(2, i, 1), ranks.narrow(0, n - 1, 1));
      auto ki = o.pos->rotate(kk.index_select(2, idx), ranks, true);
      auto bias = o.pos->score_bias(ranks.narrow(0, n - 1, 1), ranks);  // [H, 1, n] or undefined
      rows.push_back(reference_heads(qi, ki, v.index_select(2, idx), torch::ones({1, n}, torch::kBool), bias));
    }
    auto want = torch::cat(rows, 2);  // [B, H, T, d_h]
    // Decoding token by token with the cache.
    auto cache = o.layer->new_cache(1, T, torch::kCPU);
    std::vector<torch::Tensor> got;
    for (int64_t t = 0; t < T; ++t) {
      AttnCall c;
      c.x = x.narrow(1, t, 1);
      c.pos0 = t;
      c.cache = cache.get();
      c.want_display = true;
      got.push_back(o.layer->forward(c).heads);
      cache->seen += 1;
      EXPECT_EQ(cache->bytes(), 2 * 4 * 8 * 4 * std::min(t + 1, S + W));
    }
    EXPECT_LT(max_abs_diff(torch::cat(got, 2), want), 1e-5) << pos_kind_name(k);
    // The full forward is the streaming prefill too (what the display shows is what decoding computes).
    EXPECT_LT(max_abs_diff(o.run(x).heads, want), 1e-5) << pos_kind_name(k);
  }
}

// ------------------------------------------------------------------------------------------ LSH

TEST(MaskedLsh, OneBucketIsCausalSharedQkAttentionWithTheSelfRule) {
  torch::NoGradGuard ng;
  OneLayer o("lsh", {{"buckets", 4}, {"rounds", 2}});
  force_lsh_bucket(*o.layer, 0);
  auto& a = o.std_layer();
  const int64_t T = 27;
  auto x = torch::randn({1, T, 32});
  auto pos = torch::arange(T, torch::kLong);
  auto shared = heads_of(a, a.wq->weight, x);  // [B, H, T, d_h]
  auto q = o.pos->rotate(shared, pos), k = o.pos->rotate(shared / shared.norm(2, -1, true), pos, true);
  auto s = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(8.0);  // [B, H, T, T]
  s = s.masked_fill(torch::eye(T, torch::kBool), -5e4);             // the self score is replaced
  s = s.masked_fill(torch::ones({T, T}, torch::kBool).triu(1), -std::numeric_limits<float>::infinity());
  auto want = torch::matmul(torch::softmax(s, -1), heads_of(a, a.wv->weight, x));
  auto r = o.run(x);
  EXPECT_LT(max_abs_diff(r.heads, want), 1e-5);
  EXPECT_NEAR(r.display[0][0][0][0].item<double>(), 1.0, 1e-6);  // token 0 has only itself
  EXPECT_LT(r.display[0][0][5][5].item<double>(), 1e-6);         // later tokens skip themselves
}

TEST(MaskedLsh, MaskIsTheIdealMaskOfTheRoundsBuckets) {
  torch::NoGradGuard ng;
  OneLayer o("lsh", {{"buckets", 6}, {"rounds", 3}, {"seed", 4}});
  const int64_t T = 40;
  auto r = o.run(torch::randn({1, T, 32}));
  LshBuckets b = lsh_buckets(*o.layer);
  ASSERT_EQ(b.rounds, 3);
  ASSERT_EQ(b.heads, 4);
  ASSERT_EQ(b.tokens, T);
  auto ids = torch::tensor(b.ids, torch::kInt).view({3, 4, T});  // [R, H, T]
  EXPECT_TRUE((ids >= 0).all().item<bool>() && (ids < 6).all().item<bool>());
  auto same = (ids.unsqueeze(-1) == ids.unsqueeze(-2)).any(0);  // [H, T, T]
  auto want = same & torch::ones({T, T}, torch::kBool).tril();
  EXPECT_TRUE(r.mask.equal(want));
  EXPECT_LT(r.mask.sum().item<int64_t>(), 4 * T * (T + 1) / 2) << "the hash put everything in one bucket";
  EXPECT_TRUE(lsh_buckets(*OneLayer("sliding_window", {}).layer).ids.empty());
}

// ------------------------------------------------------------------------------------------ pattern view

TEST(MaskedPattern, DensityAndFlopsFollowTheClosedForms) {
  const int64_t n = 256, H = 8;
  for (const auto& [v, p] :
       std::vector<std::pair<std::string, ParamValues>>{{"sliding_window", {{"window", 64}}},
                                                        {"dilated", {{"window", 16}, {"dilation", 4}}},
                                                        {"strided", {{"stride", 16}, {"mode", 1}}},
                                                        {"fixed", {{"stride", 32}, {"c", 4}, {"mode", 1}}},
                                                        {"bigbird", {}},
                                                        {"sinks", {}},
                                                        {"longformer", {}},
                                                        {"block_local", {{"block", 100}}}}) {
    const VariantInfo& info = get_variant(v);
    ParamValues full = resolve_params(info.params, v, p);
    PatternView view = describe_pattern(v, p, H, 256, n);
    int64_t total = 0;
    for (int64_t h = 0; h < H; ++h) {
      int64_t want = *expect_masked(v, full, n, n, h, H)->pairs;
      EXPECT_EQ(view.pairs[size_t(h)], want) << v << " head " << h;
      total += want;
    }
    EXPECT_NEAR(view.density, double(total) / double(H * n * n), 1e-12) << v;
    EXPECT_NEAR(view.flops_vs_causal, double(total) / double(H * n * (n + 1) / 2), 1e-12) << v;
  }
  // Sliding window: sum_i min(i + 1, W).
  PatternView w = describe_pattern("sliding_window", {{"window", 64}}, 1, 256, 256);
  EXPECT_EQ(w.pairs[0], 64 * 65 / 2 + (256 - 64) * 64);
}

TEST(MaskedPattern, TileMapMarksFullPartialAndSkippedTiles) {
  // Block-local B = 32 with tiles of 16: the tile below the diagonal inside a block is full, diagonal tiles
  // are partial (causal), everything across blocks is skipped.
  PatternTileMap t = tile_map(describe_pattern("block_local", {{"block", 32}}, 1, 256, 64), 16);
  ASSERT_EQ(t.rows, 4);
  EXPECT_EQ(t.at(0, 0, 0), PatternTileState::Partial);
  EXPECT_EQ(t.at(0, 1, 0), PatternTileState::Full);
  EXPECT_EQ(t.at(0, 2, 1), PatternTileState::Skipped);
  EXPECT_EQ(t.at(0, 3, 2), PatternTileState::Full);
  EXPECT_EQ(t.at(0, 0, 1), PatternTileState::Skipped);
  EXPECT_NEAR(t.computed_tiles_vs_causal, 6.0 / 10.0, 1e-12);
  // A window of 16 with tiles of 16: the diagonal and the tile before it, both partial.
  PatternTileMap w = tile_map(describe_pattern("sliding_window", {{"window", 16}}, 1, 256, 64), 16);
  EXPECT_EQ(w.at(0, 2, 1), PatternTileState::Partial);
  EXPECT_EQ(w.at(0, 2, 0), PatternTileState::Skipped);
  EXPECT_NE(error_of([] { tile_map(describe_pattern("sliding_window", {}, 1, 48, 8), 0); }).find("tile size"),
            std::string::npos);
}

TEST(MaskedPattern, InvalidOrNoOpParametersSayWhy) {
  EXPECT_NE(error_of([] {
              GPT g(small_config("lsh", {{"buckets", 3}}));
            }).find("buckets must be even"),
            std::string::npos);
  PatternView f = describe_pattern("fixed", {{"stride", 16}, {"c", 12}}, 4, 256, 64);
  ASSERT_EQ(f.notes.size(), 1u);
  EXPECT_NE(f.notes[0].find("clamped to 8"), std::string::npos) << f.notes[0];
  PatternView w = describe_pattern("sliding_window", {{"window", 256}}, 4, 48, 16);
  ASSERT_EQ(w.notes.size(), 1u);
  EXPECT_NE(w.notes[0].find("causal attention"), std::string::npos) << w.notes[0];
  EXPECT_NE(
      describe_pattern("dilated", {{"window", 64}, {"dilation", 8}}, 4, 256, 8).notes[0].find("exceeds the context"),
      std::string::npos);
  EXPECT_TRUE(describe_pattern("lsh", {}, 4, 256, 8).data_dependent);
  EXPECT_NE(error_of([] { describe_pattern("mha", {}, 4, 48, 8); }).find("not a masked variant"), std::string::npos);
  EXPECT_NE(error_of([] {
              GPT g(small_config("bigbird"));
              g->new_caches(1, 100);
            }).find("within the context"),
            std::string::npos);
}

// ------------------------------------------------------------------------------------------ positions, softcap

TEST(MaskedPositions, RopeAndXposScoresAreShiftInvariant) {
  torch::NoGradGuard ng;
  for (PosKind k : {PosKind::Rope, PosKind::XPos}) {
    OneLayer o("sliding_window", {{"window", 8}}, k);
    auto x = torch::randn({1, 30, 32});
    EXPECT_LT(max_abs_diff(o.run(x, true, 0).display, o.run(x, true, 1000).display), 1e-4) << pos_kind_name(k);
  }
}

TEST(MaskedPositions, XposWithScaleOneIsRope) {
  torch::NoGradGuard ng;
  torch::manual_seed(81);
  ModelConfig xc = small_config("mha", {}, PosKind::XPos);
  xc.xpos_scale_base = 1e300;  // zeta^((p - c) / B) = 1
  GPT rope(small_config("mha", {}, PosKind::Rope)), xpos(xc), xpos512(small_config("mha", {}, PosKind::XPos));
  transfer_weights(*rope, *xpos);
  transfer_weights(*rope, *xpos512);
  auto x = tokens(40, 82);
  EXPECT_LT(max_abs_diff(rope->forward(x).logits, xpos->forward(x).logits), 1e-6);
  EXPECT_GT(max_abs_diff(rope->forward(x).logits, xpos512->forward(x).logits), 1e-5) << "xPos scaled nothing";
}

TEST(MaskedPositions, XposScalesQueriesUpAndKeysDownAroundTheCentre) {
  ModelConfig c = small_config("mha", {}, PosKind::XPos);  // context 48: centre 24, B = 512, d_h 8 (r/2 = 4)
  Positions pos(c);
  auto ones = torch::ones({1, 1, 1, 8});
  auto p = torch::tensor({124}, torch::kLong);  // (p - c) / B = 100 / 512
  auto q = pos.rotate(ones, torch::tensor({24}, torch::kLong)),
       k = pos.rotate(ones, torch::tensor({24}, torch::kLong), true);
  EXPECT_LT(max_abs_diff(q, k), 1e-7);  // at the centre the scale is 1: q and k rotate alike
  // Pair 1 (dims 1 and 5): zeta_1 = (1/4 + 0.4) / 1.4; norms scale by zeta^(+-100/512).
  const double z = (0.25 + 0.4) / 1.4, e = 100.0 / 512.0;
  auto qn = pos.rotate(ones, p), kn = pos.rotate(ones, p, true);
  auto pair_norm = [](const torch::Tensor& t) {
    return std::hypot(t[0][0][0][1].item<double>(), t[0][0][0][5].item<double>());
  };
  EXPECT_NEAR(pair_norm(qn), std::sqrt(2.0) * std::pow(z, e), 1e-5);
  EXPECT_NEAR(pair_norm(kn), std::sqrt(2.0) * std::pow(z, -e), 1e-5);
}

TEST(MaskedPositions, XposDecodesLikeItsPrefill) {
  torch::NoGradGuard ng;
  for (const std::string v : {"mha", "sliding_window", "sinks"}) {
    torch::manual_seed(83);
    GPT net(small_config(v, v == "sinks" ? ParamValues{{"sinks", 2}, {"window", 16}} : ParamValues{}, PosKind::XPos));
    net->eval();
    auto x = tokens(40, 84);
    auto full = net->forward(x).logits[0];
    auto caches = net->new_caches(1, 48);
    ForwardOptions o;
    o.caches = &caches;
    double worst = 0;
    for (int64_t t = 0; t < 40; ++t) {
      o.pos0 = t;
      worst = std::max(worst, max_abs_diff(net->forward(x.narrow(1, t, 1), o).logits[0][0], full[t]));
    }
    EXPECT_LT(worst, 2e-5) << v;
  }
}

TEST(MaskedPositions, EveryVariantIsFiniteUnderXpos) {
  torch::NoGradGuard ng;
  for (const auto& info : variant_registry()) {
    torch::manual_seed(85);
    GPT net(small_config(info.name, {}, PosKind::XPos));
    net->eval();
    auto src = info.needs_kv_text ? net->kv_sources(tokens(11, 86)) : std::vector<torch::Tensor>{};
    ForwardOptions o;
    o.want_display = true;
    o.kv_sources = src.empty() ? nullptr : &src;
    auto r = net->forward(tokens(48, 87), o);
    EXPECT_TRUE(torch::isfinite(r.logits).all().item<bool>()) << info.name;
  }
}

TEST(MaskedPositions, AlibiWithZeroSlopesIsPlainAttention) {
  torch::NoGradGuard ng;
  for (const std::string v : {"mha", "sliding_window", "sinks"}) {
    auto [a, b] = pair_of(v, {}, v, {}, PosKind::Alibi);
    torch::manual_seed(91);
    GPT none(small_config(v, {}, PosKind::None));
    none->eval();
    transfer_weights(*a, *none);
    auto x = tokens(40, 92);
    EXPECT_GT(max_abs_diff(a->forward(x).logits, none->forward(x).logits), 1e-5) << v << ": ALiBi did nothing";
    a->positions->alibi_slopes.zero_();
    EXPECT_LT(max_abs_diff(a->forward(x).logits, none->forward(x).logits), 1e-6) << v;
  }
}

TEST(MaskedSoftcap, LargeCapIsPlainAttentionAndSmallCapBoundsScores) {
  torch::NoGradGuard ng;
  torch::manual_seed(93);
  ModelConfig c = small_config("softcap");
  for (auto& l : c.layers) l.params["cap"] = 1e9;  // c -> infinity (beyond the slider, set directly)
  GPT mha(small_config("mha")), capped(c);
  mha->eval();
  capped->eval();
  transfer_weights(*mha, *capped);
  auto x = tokens(40, 94);
  EXPECT_LT(max_abs_diff(mha->forward(x).logits, capped->forward(x).logits), 1e-5);
  // With c = 5 and scores scaled up, the weights stay within e^(2c) of each other.
  OneLayer o("softcap", {{"cap", 5}}, PosKind::None);
  o.std_layer().wq->weight.mul_(50);
  auto p = o.run(torch::randn({1, 20, 32})).display[0];  // [H, T, S]
  auto row = p.select(1, 19);                            // [H, 20] the last row sees all 20 keys
  EXPECT_LE((row.amax(-1) / row.amin(-1)).max().item<double>(), std::exp(10.0) * (1 + 1e-4));
}
