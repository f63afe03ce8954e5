// Engine tests (LibTorch): the universal tests (docs/variants.md) for every registered variant, the oracles of
// the exact family, the model (decode == prefill, conversions), checkpoints and the corrupt-checkpoint suite.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "engine_impl.h"
#include "error.h"
#include "nn.h"
#include "train.h"
#include "variant_oracles.h"
#include "torch_test_util.h"

using namespace attnscope;
using testing_util::error_of;
using testing_util::max_abs_diff;
using testing_util::small_config;
namespace fs = std::filesystem;

namespace {

torch::Tensor random_tokens(int64_t T, int64_t V, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, V, {1, T}, torch::kLong);  // [1, T]
}

// Every (variant, parameter point) the sweep visits: each parameter at min, default and max.
struct Case {
  std::string variant;
  ParamValues params;
  std::string name;
};

std::vector<Case> sweep_cases(int64_t n_head) {
  std::vector<Case> out;
  for (const auto& v : variant_registry()) {
    out.push_back({v.name, {}, v.name + "_default"});
    for (const auto& p : v.params)
      for (double x : sweep_values(p, n_head)) {
        std::string n = v.name + "_" + p.name + "_" + format_param(p, x);
        for (auto& ch : n)
          if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
        // A value that equals another sweep point (e.g. default == min) is visited once.
        bool seen = false;
        for (const auto& c : out) seen = seen || c.name == n;
        if (!seen) out.push_back({v.name, {{p.name, x}}, n});
      }
  }
  return out;
}

struct LayerRig {
  GPT net{nullptr};
  std::vector<int64_t> kv;  // second text for cross-attention
  explicit LayerRig(const Case& c, PosKind pos = PosKind::Rope) {
    torch::manual_seed(7);
    net = GPT(small_config(c.variant, c.params, pos));
    net->eval();
    if (get_variant(c.variant).needs_kv_text) kv = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5};
  }
  std::vector<torch::Tensor> sources() {
    if (kv.empty()) return {};
    return net->kv_sources(torch::tensor(kv, torch::kLong).view({1, -1}));
  }
  ForwardResult run(const torch::Tensor& x, bool display) {
    auto src = sources();
    ForwardOptions o;
    o.want_display = display;
    o.kv_sources = src.empty() ? nullptr : &src;
    return net->forward(x, o);
  }
};

// ctest lists each case by its name, not by gtest's byte dump of the struct.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class Universal : public ::testing::TestWithParam<Case> {};

}  // namespace

// 1. Causality: changing tokens after t leaves every output up to t unchanged.
TEST_P(Universal, Causality) {
  torch::NoGradGuard ng;
  LayerRig rig(GetParam());
  auto x = random_tokens(40, 20, 1);
  auto y = x.clone();
  const int64_t t = 17;
  y.narrow(1, t + 1, 40 - t - 1).copy_(random_tokens(40 - t - 1, 20, 2));
  auto a = rig.run(x, false).logits.narrow(1, 0, t + 1);
  auto b = rig.run(y, false).logits.narrow(1, 0, t + 1);
  if (get_variant(GetParam().variant).causal)
    EXPECT_LT(max_abs_diff(a, b), 1e-5) << "outputs up to position " << t << " saw later tokens";
  else  // flagged non-causal: the test must detect the leak
    EXPECT_GT(max_abs_diff(a, b), 1e-4) << "a variant flagged non-causal did not leak";
}

// 2. Decode == prefill: token-by-token decoding with the cache gives the full forward's logits.
TEST_P(Universal, DecodeEqualsPrefill) {
  torch::NoGradGuard ng;
  LayerRig rig(GetParam());
  if (!get_variant(GetParam().variant).causal) {  // refuses to decode, with a message
    EXPECT_NE(error_of([&] { rig.net->new_caches(1, 48); }).find("non-causal"), std::string::npos);
    return;
  }
  auto x = random_tokens(33, 20, 3);
  auto full = rig.run(x, false).logits[0];  // [T, V]
  auto src = rig.sources();
  auto caches = rig.net->new_caches(1, 48);
  const double tol = std::max(2e-5, expect_for(GetParam().variant, rig.net->attn[0]->spec().params, 33, 33, 0, 4).tol);
  ForwardOptions o;
  o.caches = &caches;
  o.kv_sources = src.empty() ? nullptr : &src;
  std::vector<torch::Tensor> rows;
  for (int64_t t = 0; t < 33; ++t) {
    o.pos0 = t;
    rows.push_back(rig.net->forward(x.narrow(1, t, 1), o).logits[0][0]);
  }
  if (expect_for(GetParam().variant, rig.net->attn[0]->spec().params, 33, 33, 0, 4).decode_equals_prefill) {
    EXPECT_LT(max_abs_diff(torch::stack(rows), full), tol);
  }
  // The cache holds what the variant's formula says.
  const int64_t tokens = src.empty() ? 33 : static_cast<int64_t>(rig.kv.size());
  for (size_t l = 0; l < caches.size(); ++l)
    EXPECT_EQ(caches[l]->bytes(), rig.net->attn[l]->cache_formula_bytes(tokens, 4)) << "layer " << l;
}

// 3. The display is truthful: (shown matrix) . V equals the head outputs; 4. rows sum to 1; 5. mask density.
TEST_P(Universal, DisplayIsTruthfulRowsSumToOneMaskDensity) {
  torch::NoGradGuard ng;
  LayerRig rig(GetParam());
  const int64_t T = 29;
  auto x = random_tokens(T, 20, 4);
  auto src = rig.sources();
  auto& layer = *rig.net->attn[1];
  // The normed input of layer 1, recorded by a forward.
  std::vector<torch::Tensor> rec;
  ForwardOptions o;
  o.record_inputs = &rec;
  o.kv_sources = src.empty() ? nullptr : &src;
  rig.net->forward(x, o);
  AttnCall c;
  c.x = rec[1];
  c.want_display = true;
  if (!src.empty()) c.kv_source = src[1];
  AttnResult r = layer.forward(c);
  const int64_t S = r.mask.size(-1), H = r.mask.size(0);
  const ParamValues& p = layer.spec().params;
  auto values = layer.head_values(src.empty() ? rec[1] : src[1]);  // [1, H, S, d_v]
  if (values.defined()) {                                          // variants whose output is linear in V
    EXPECT_LT(max_abs_diff(torch::matmul(r.display, values), r.heads),
              expect_for(GetParam().variant, p, T, S, 0, H).tol);
  }
  auto sums = r.display.sum(-1);  // [1, H, T]
  for (int64_t h = 0; h < H; ++h) {
    Expectation e = expect_for(GetParam().variant, p, T, S, h, H);
    if (e.row_sum) {
      EXPECT_LT(max_abs_diff(sums[0][h], torch::full_like(sums[0][h], *e.row_sum)), e.tol) << "head " << h;
    }
    if (e.pairs) {
      EXPECT_EQ(r.mask[h].sum().item<int64_t>(), *e.pairs) << "head " << h;
    }
  }
  // Nothing outside the mask carries weight.
  EXPECT_EQ(r.display.masked_select(r.mask.logical_not().unsqueeze(0)).abs().sum().item<double>(), 0.0);
}

// 6. Parameter sweep: runs without error, NaN or Inf, with every position scheme.
TEST_P(Universal, FiniteUnderEveryPositionScheme) {
  torch::NoGradGuard ng;
  for (PosKind p : {PosKind::Rope, PosKind::Learned, PosKind::Alibi, PosKind::None}) {
    LayerRig rig(GetParam(), p);
    auto r = rig.run(random_tokens(48, 20, 5), true);
    EXPECT_TRUE(torch::isfinite(r.logits).all().item<bool>()) << pos_kind_name(p);
    for (auto& d : r.display) EXPECT_TRUE(torch::isfinite(d).all().item<bool>()) << pos_kind_name(p);
  }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, Universal, ::testing::ValuesIn(sweep_cases(4)),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

// ------------------------------------------------------------------------------------------ oracles

namespace {
// Two models with the same non-attention weights; the attention of `b` converted from `a`.
std::pair<GPT, GPT> pair_of(const std::string& va, const ParamValues& pa, const std::string& vb, const ParamValues& pb,
                            PosKind pos = PosKind::Rope) {
  torch::manual_seed(11);
  GPT a(small_config(va, pa, pos)), b(small_config(vb, pb, pos));
  a->eval();
  b->eval();
  transfer_weights(*a, *b);
  return {a, b};
}
}  // namespace

TEST(Oracle, GqaWithGroupsEqualHeadsIsMha) {
  torch::NoGradGuard ng;
  auto [a, b] = pair_of("mha", {}, "gqa", {{"groups", 4}});
  auto x = random_tokens(30, 20, 6);
  EXPECT_LT(max_abs_diff(a->forward(x).logits, b->forward(x).logits), 1e-6);
}

TEST(Oracle, GqaWithOneGroupIsMqa) {
  torch::NoGradGuard ng;
  torch::manual_seed(12);
  GPT g(small_config("gqa", {{"groups", 1}})), m(small_config("mqa"));
  g->eval();
  m->eval();
  EXPECT_EQ(transfer_weights(*g, *m), "converted from gqa");  // identical shapes: a straight copy
  auto x = random_tokens(30, 20, 7);
  EXPECT_LT(max_abs_diff(g->forward(x).logits, m->forward(x).logits), 1e-6);
}

TEST(Oracle, GqaUsesContiguousGroups) {
  torch::NoGradGuard ng;
  auto cfg = small_config("gqa", {{"groups", 2}}, PosKind::None);
  Positions pos(cfg);
  StandardAttention att(cfg, cfg.layers[0], &pos, 2);
  auto x = torch::randn({1, 10, 32});  // [B, T, d]
  auto v = att.head_values(x);         // [1, H=4, T, d_h]
  // Heads 0 and 1 read kv head 0; heads 2 and 3 read kv head 1 (repeat_interleave).
  EXPECT_LT(max_abs_diff(v[0][0], v[0][1]), 1e-7);
  EXPECT_LT(max_abs_diff(v[0][2], v[0][3]), 1e-7);
  EXPECT_GT(max_abs_diff(v[0][1], v[0][2]), 1e-3);
}

TEST(Oracle, MhaEqualsLibTorchMultiheadAttention) {
  torch::NoGradGuard ng;
  auto cfg = small_config("mha", {}, PosKind::None);
  Positions pos(cfg);
  torch::manual_seed(13);
  StandardAttention att(cfg, cfg.layers[0], &pos, cfg.n_head);
  torch::nn::MultiheadAttention ref(torch::nn::MultiheadAttentionOptions(32, 4).bias(false));
  ref->in_proj_weight.copy_(torch::cat({att.wq->weight, att.wk->weight, att.wv->weight}, 0));
  ref->out_proj->weight.copy_(att.wo->weight);
  ref->eval();
  const int64_t T = 23;
  auto x = torch::randn({1, T, 32});  // [B, T, d]
  AttnCall c;
  c.x = x;
  c.want_display = true;
  AttnResult r = att.forward(c);
  // LibTorch 1.13's C++ multi_head_attention_forward adds attn_mask to the scores: pass -inf above the diagonal.
  auto future = torch::full({T, T}, -std::numeric_limits<float>::infinity()).triu(1);  // [T, T]
  auto xt = x.transpose(0, 1);                                                         // [T, B, d]
  auto [out, w] = ref->forward(xt, xt, xt, {}, false, future, false);
  EXPECT_LT(max_abs_diff(r.out, out.transpose(0, 1)), 1e-5);
  auto w_ref = std::get<1>(ref->forward(xt, xt, xt, {}, true, future, false));  // [B, H, T, T] per head
  EXPECT_LT(max_abs_diff(r.display, w_ref), 1e-5);
}

TEST(Oracle, SdpaPathEqualsNaivePath) {
  torch::NoGradGuard ng;
  for (PosKind p : {PosKind::Rope, PosKind::Alibi}) {
    auto [a, b] = pair_of("mha", {{"impl", 0}}, "mha", {{"impl", 1}}, p);
    auto x = random_tokens(40, 20, 8);
    ForwardOptions o;
    o.want_display = true;
    auto ra = a->forward(x, o), rb = b->forward(x, o);
    EXPECT_LT(max_abs_diff(ra.logits, rb.logits), 1e-5) << pos_kind_name(p);
    for (size_t l = 0; l < ra.display.size(); ++l) EXPECT_LT(max_abs_diff(ra.display[l], rb.display[l]), 1e-5);
  }
}

TEST(Oracle, MeanPooledConversionToGqaKeepsSharedHeadsExact) {
  // Converting MHA whose kv heads within each group are equal to GQA loses nothing.
  torch::NoGradGuard ng;
  torch::manual_seed(14);
  GPT a(small_config("mha")), b(small_config("gqa", {{"groups", 2}}));
  a->eval();
  b->eval();
  for (auto& layer : a->attn) {
    auto& s = dynamic_cast<StandardAttention&>(*layer);
    for (auto* w : {&s.wk->weight, &s.wv->weight}) {
      auto v = w->view({2, 2, 8, 32});  // [G, H/G, d_h, d]
      v.select(1, 1).copy_(v.select(1, 0));
    }
  }
  EXPECT_EQ(transfer_weights(*a, *b), "converted from mha");
  auto x = random_tokens(30, 20, 9);
  EXPECT_LT(max_abs_diff(a->forward(x).logits, b->forward(x).logits), 1e-5);
}

TEST(Oracle, GqaGroupsMustDivideHeads) {
  auto msg = error_of([] { GPT g(small_config("gqa", {{"groups", 3}})); });
  EXPECT_NE(msg.find("groups = 3 does not divide the 4 query heads (choose one of 1, 2, 4)"), std::string::npos) << msg;
}

TEST(Positions, RopeScoresAreShiftInvariant) {
  torch::NoGradGuard ng;
  auto cfg = small_config("mha");
  Positions pos(cfg);
  StandardAttention att(cfg, cfg.layers[0], &pos, cfg.n_head);
  auto x = torch::randn({1, 12, 32});
  AttnCall a, b;
  a.x = b.x = x;
  a.want_display = b.want_display = true;
  b.pos0 = 1000;
  EXPECT_LT(max_abs_diff(att.forward(a).display, att.forward(b).display), 1e-5);
}

TEST(Positions, RopeRotatesHalvesPairsAndKeepsTheRest) {
  ModelConfig cfg = small_config("mha");  // d_h 8
  cfg.rope_fraction = 0.5;                // r = 4: pairs (0, 2), (1, 3); dims 4..7 untouched
  Positions pos(cfg);
  auto x = torch::randn({1, 1, 3, 8});
  auto y = pos.rotate(x, torch::tensor({0, 5, 9}, torch::kLong));
  EXPECT_LT(max_abs_diff(y.narrow(-1, 4, 4), x.narrow(-1, 4, 4)), 1e-7);
  EXPECT_LT(max_abs_diff(y[0][0][0], x[0][0][0]), 1e-7);  // position 0: identity
  // Pair (0, 2) at position 5 rotates by angle 5 * theta^0 = 5 rad.
  double c = std::cos(5.0), s = std::sin(5.0);
  double x0 = x[0][0][1][0].item<double>(), x2 = x[0][0][1][2].item<double>();
  EXPECT_NEAR(y[0][0][1][0].item<double>(), x0 * c - x2 * s, 1e-5);
  EXPECT_NEAR(y[0][0][1][2].item<double>(), x2 * c + x0 * s, 1e-5);
  // Norms are preserved.
  EXPECT_LT(max_abs_diff(y.norm(2, -1), x.norm(2, -1)), 1e-5);
}

// The CPU fast path (rope.h: a shared cos/sin table up to 65,536 positions, computed per call beyond) and the tensor
// path (taken with a gradient) rotate alike, for two thetas (two tables) and positions on both sides of the table.
TEST(Positions, RopeTableAgreesWithTheTensorPath) {
  for (double theta : {10000.0, 500.0}) {
    ModelConfig cfg = small_config("mha");
    cfg.rope_theta = theta;
    Positions pos(cfg);
    auto p = torch::tensor({0, 5, 255, 1023, 1024, 5000, 65535, 65536, 70000}, torch::kLong);  // [T]
    auto x = torch::randn({2, 3, 9, 8});                                                       // [B, H, T, d_h]
    auto fast = pos.rotate(x, p);
    auto slow = pos.rotate(x.clone().requires_grad_(true), p).detach();
    EXPECT_LT(max_abs_diff(fast, slow), 1e-5) << "theta " << theta;
    // a shorter text again reads the same table
    EXPECT_LT(max_abs_diff(pos.rotate(x.narrow(2, 0, 3), p.narrow(0, 0, 3)), slow.narrow(2, 0, 3)), 1e-5);
  }
}

TEST(Positions, AlibiSlopesFollowTheStandardRecipe) {
  auto s8 = alibi_slopes(8);
  for (int h = 0; h < 8; ++h) EXPECT_DOUBLE_EQ(s8[size_t(h)], std::pow(2.0, -(h + 1.0)));
  std::vector<double> want6 = {std::pow(2, -2), std::pow(2, -4), std::pow(2, -6),
                               std::pow(2, -8), std::pow(2, -1), std::pow(2, -3)};
  auto s6 = alibi_slopes(6);
  for (size_t i = 0; i < 6; ++i) EXPECT_DOUBLE_EQ(s6[i], want6[i]);
}

TEST(Cross, KeysComeFromTheSecondTextWithNoCausalMask) {
  torch::NoGradGuard ng;
  LayerRig rig({"cross", {}, "cross"});
  auto x = random_tokens(9, 20, 10);
  auto r = rig.run(x, true);
  EXPECT_EQ(r.display[0].size(-1), static_cast<int64_t>(rig.kv.size()));
  EXPECT_TRUE(r.mask[0].all().item<bool>());
  // A different second text changes the output; the text's own later tokens do not (causality test above).
  auto before = r.logits.clone();
  rig.kv = {8, 8, 8, 2};
  EXPECT_GT(max_abs_diff(rig.run(x, false).logits, before), 1e-4);
}

// ------------------------------------------------------------------------------------------ checkpoints

namespace {
std::string temp_dir(const std::string& name) {
  auto d = fs::path(::testing::TempDir()) / ("attnscope_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

std::shared_ptr<Model> small_model(const std::string& variant = "mha", PosKind pos = PosKind::Rope) {
  Tokenizer tok = Tokenizer::from_corpus("abcdefghijklmnopqrs\n");
  return Model::create(small_config(variant, {}, pos), tok, "cpu", 21);
}

std::string saved(const std::string& name, DType dt = DType::F32) {
  std::string d = temp_dir(name);
  small_model()->save(d, dt);
  return d;
}
}  // namespace

TEST(Checkpoint, RoundTripEveryDtype) {
  auto m = small_model("gqa", PosKind::Learned);
  std::vector<int64_t> text = {1, 5, 2, 8, 3, 0, 7, 7};
  auto ref = m->logits(text, false);
  for (auto [dt, tol] : {std::pair{DType::F32, 0.0}, {DType::F16, 2e-2}, {DType::BF16, 1e-1}}) {
    std::string d = temp_dir(std::string("rt_") + dtype_name(dt));
    m->save(d, dt);
    auto back = Model::load(d, "cpu");
    EXPECT_EQ(back->config().layers[0].variant, "gqa");
    EXPECT_EQ(back->config().position, PosKind::Learned);
    EXPECT_EQ(back->tokenizer().vocab(), m->tokenizer().vocab());
    auto got = back->logits(text, false);
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, double(std::abs(got[i] - ref[i])));
    EXPECT_LE(worst, tol) << dtype_name(dt);
    EXPECT_TRUE(fs::exists(d + "/config.json"));
    for (auto& e : fs::directory_iterator(d)) EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos);
  }
}

TEST(Checkpoint, DecodeEqualsPrefillThroughTheFacade) {
  auto m = small_model();
  std::vector<int64_t> text = {1, 5, 2, 8, 3, 0, 7, 7, 4, 4, 12};
  std::vector<int64_t> bytes;
  auto a = m->logits(text, false), b = m->logits(text, true, {}, &bytes);
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 2e-5);
  ASSERT_EQ(bytes.size(), text.size());
  EXPECT_EQ(bytes.back(), 2 * (2 * 4 * 8 * 4) * int64_t(text.size()));  // L * 2 H d_h b * t
}

TEST(Checkpoint, ConvertedModelsSayHowTheyCame) {
  auto m = small_model();
  EXPECT_EQ(m->mode(), "trained");
  auto g = m->with_variant("gqa", {{"groups", 2}});
  EXPECT_EQ(g->mode(), "converted from mha");
  EXPECT_EQ(g->attend({1, 2, 3}).mode, "converted from mha");
  EXPECT_EQ(m->with_variant("mha", {{"impl", 1}})->mode(), "trained");
  EXPECT_NE(error_of([&] { m->with_variant("gqa", {{"groups", 3}}); }).find("does not divide"), std::string::npos);
}

TEST(Checkpoint, AttendRejectsEmptyAndTooLongText) {
  auto m = small_model();
  EXPECT_NE(error_of([&] { m->attend({}); }).find("the text is empty"), std::string::npos);
  // Past the context of 48 (RoPE reaches on), but not past the memory of the full maps (2 x 4 x T x T).
  EXPECT_EQ(m->attend(std::vector<int64_t>(49, 1)).queries, 49);
  EXPECT_NE(error_of([&] { m->attend(std::vector<int64_t>(2049, 1)); }).find("stop at 2048"), std::string::npos);
  auto maps = m->attend({1, 2, 3, 4});
  EXPECT_EQ(maps.layers, 2);
  EXPECT_EQ(maps.heads, 4);
  ASSERT_TRUE(maps.dense());  // computed whole: exactly [L, H, T, S]
  EXPECT_EQ(maps.planes->attn.size(), size_t(2 * 4 * 4 * 4));
  EXPECT_FLOAT_EQ(maps.at(0, 0, 0, 0), 1.0f);
  EXPECT_FALSE(maps.computed(0, 0, 0, 1));
  auto c = small_model("cross");
  EXPECT_NE(error_of([&] { c->attend({1, 2}); }).find("needs a second text"), std::string::npos);
}

TEST(Checkpoint, GenerateIsSeededAndRunsPastTheContext) {
  auto m = small_model();
  GenerateOptions g;
  g.tokens = 70;  // past the context of 48: the cache is refilled
  g.seed = 5;
  g.top_k = 5;
  int64_t last_bytes = -1;
  auto a = m->generate({1, 2, 3}, g, [&](const DecodeStep& s) { last_bytes = s.cache_bytes; });
  auto b = m->generate({1, 2, 3}, g);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.size(), 70u);
  EXPECT_GT(last_bytes, 0);
  for (auto t : a) EXPECT_TRUE(t >= 0 && t < 20);
  EXPECT_NE(error_of([&] { m->generate({}, g); }).find("prompt is empty"), std::string::npos);
}

// Step-wise decoding (the GUI's generation view): every variant that can decode reports rows over exactly the
// positions its cache holds, the measured bytes, and follows a forced token stream.
TEST(Decoder, EveryDecodableVariantReportsItsCache) {
  GenerateOptions g;
  g.seed = 3;
  g.top_k = 5;
  for (const auto& v : variant_registry()) {
    if (v.needs_kv_text) continue;
    auto m = small_model(v.name);
    std::unique_ptr<Decoder> d;
    try {
      d = std::make_unique<Decoder>(m, std::vector<int64_t>{1, 2, 3}, g);
    } catch (const Error& e) {  // non-causal variants cannot decode, and say so
      EXPECT_NE(std::string(e.what()).find("cannot"), std::string::npos) << v.name << ": " << e.what();
      continue;
    }
    for (int s = 0; s < 12; ++s) {
      DecodeFrame f = d->step();
      ASSERT_EQ(f.position, 3 + s) << v.name;
      ASSERT_EQ(f.layers, 2);
      ASSERT_EQ(f.held.size(), 2u);
      for (int64_t l = 0; l < 2; ++l) {
        const auto& held = f.held[size_t(l)];
        ASSERT_TRUE(std::is_sorted(held.begin(), held.end())) << v.name;
        if (f.layout[size_t(l)].kind == "state") {
          EXPECT_TRUE(held.empty() && f.attn[size_t(l)].empty()) << v.name;
          EXPECT_GT(f.layout[size_t(l)].width, 0) << v.name;
          continue;
        }
        ASSERT_FALSE(held.empty()) << v.name;
        EXPECT_EQ(held.back(), f.position) << v.name;  // the new token is held
        ASSERT_EQ(f.attn[size_t(l)].size(), size_t(4) * held.size()) << v.name;
        for (float w : f.attn[size_t(l)]) EXPECT_TRUE(std::isfinite(w)) << v.name;
      }
      EXPECT_EQ(f.bytes(), f.layer_bytes[0] + f.layer_bytes[1]);
    }
  }
}

TEST(Decoder, CachesDifferAsTheirFormulasSay) {
  GenerateOptions g;
  g.temperature = 0;
  const std::vector<int64_t> prompt = {1, 2, 3, 4};
  auto mha = std::make_shared<Decoder>(small_model("mha"), prompt, g);
  auto gqa = std::make_shared<Decoder>(small_model()->with_variant("gqa", {{"groups", 2}}), prompt, g);
  auto win = std::make_shared<Decoder>(small_model()->with_variant("sliding_window", {{"window", 8}}), prompt, g);
  auto mla = std::make_shared<Decoder>(small_model()->with_variant("mla", {{"rank", 16}, {"rope_dims", 2}}), prompt, g);
  for (int s = 0; s < 20; ++s) {
    DecodeFrame a = mha->step();
    DecodeFrame b = gqa->step(a.token), c = win->step(a.token), e = mla->step(a.token);  // one token stream
    ASSERT_EQ(b.token, a.token);
    const int64_t t = a.position + 1;  // tokens consumed
    EXPECT_EQ(a.layer_bytes[0], 2 * 4 * 8 * 4 * t);
    EXPECT_EQ(a.layout[0].kind, "kv");
    EXPECT_EQ(a.layout[0].kv_heads, 4);
    EXPECT_EQ(b.layer_bytes[0], 2 * 2 * 8 * 4 * t);
    EXPECT_EQ(b.layout[0].kv_heads, 2);
    EXPECT_EQ(c.layer_bytes[0], 2 * 4 * 8 * 4 * std::min<int64_t>(t, 8));
    ASSERT_EQ(c.held[0].size(), size_t(std::min<int64_t>(t, 8)));
    EXPECT_EQ(c.held[0].front(), t - int64_t(c.held[0].size()));  // the window's oldest kept position
    EXPECT_EQ(e.layout[0].kind, "latent");
    EXPECT_EQ(e.layout[0].width, 18);
    EXPECT_EQ(e.layer_bytes[0], 18 * 4 * t);
    EXPECT_EQ(a.held[0].size(), size_t(t));
    for (int64_t h = 0; h < 4; ++h) {  // MHA's rows are softmax rows over every held token
      double sum = 0;
      for (size_t j = 0; j < a.held[0].size(); ++j) sum += a.attn[0][size_t(h) * a.held[0].size() + j];
      EXPECT_NEAR(sum, 1.0, 1e-5);
    }
  }
}

TEST(Decoder, SeededStopsAtTheContextAndMatchesPrefill) {
  auto m = small_model();
  GenerateOptions g;
  g.seed = 9;
  Decoder a(m, {1, 2, 3}, g), b(m, {1, 2, 3}, g);
  std::vector<int64_t> ta, tb;
  while (!a.full()) ta.push_back(a.step().token);
  while (!b.full()) tb.push_back(b.step().token);
  EXPECT_EQ(ta, tb);
  EXPECT_EQ(ta.size(), size_t(48 - 3));
  EXPECT_NE(error_of([&] { a.step(); }).find("used up"), std::string::npos);
  // The last frame's row of layer 0 equals the full forward's last row at the same tokens.
  Decoder c(m, {1, 2, 3}, g);
  DecodeFrame f;
  for (int s = 0; s < 10; ++s) f = c.step();
  auto maps = m->attend(c.tokens());
  const int64_t T = maps.queries;
  for (int64_t h = 0; h < 4; ++h)
    for (int64_t j = 0; j < T; ++j) EXPECT_NEAR(f.attn[0][size_t(h * T + j)], maps.at(0, h, T - 1, j), 1e-5);
  EXPECT_NE(error_of([&] { Decoder(m, {}, g); }).find("prompt is empty"), std::string::npos);
  EXPECT_NE(error_of([&] { Decoder(small_model("cross"), {1}, g); }).find("cannot generate"), std::string::npos);
}

// The corrupt-checkpoint suite: each fault gives its own clear message.
namespace {
std::string load_error(const std::string& dir) {
  return error_of([&] { Model::load(dir, "cpu"); });
}
void rewrite_tensors(const std::string& dir, const std::function<void(StFile&)>& edit) {
  StFile f = read_safetensors(dir + "/model.safetensors");
  edit(f);
  write_safetensors(dir + "/model.safetensors", f);
}
std::string file_bytes(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}
void put_bytes(const std::string& p, const std::string& b) { std::ofstream(p, std::ios::binary) << b; }
}  // namespace

TEST(CorruptCheckpoint, TruncatedFile) {
  std::string d = saved("trunc");
  std::string b = file_bytes(d + "/model.safetensors");
  put_bytes(d + "/model.safetensors", b.substr(0, b.size() - 100));
  auto msg = load_error(d);
  EXPECT_NE(msg.find("past the end of the data"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
}

TEST(CorruptCheckpoint, HeaderLengthPastTheEnd) {
  std::string d = saved("hdr");
  std::string b = file_bytes(d + "/model.safetensors");
  uint64_t n = b.size() + 10;
  for (int i = 0; i < 8; ++i) b[size_t(i)] = char((n >> (8 * i)) & 0xFF);
  put_bytes(d + "/model.safetensors", b);
  auto msg = load_error(d);
  EXPECT_NE(msg.find("header length"), std::string::npos) << msg;
}

TEST(CorruptCheckpoint, WrongDtype) {
  std::string d = saved("dtype");
  std::string b = file_bytes(d + "/model.safetensors");
  auto at = b.find("\"F32\"");
  ASSERT_NE(at, std::string::npos);
  b.replace(at, 5, "\"I32\"");
  put_bytes(d + "/model.safetensors", b);
  auto msg = load_error(d);
  EXPECT_NE(msg.find("dtype 'I32' is not supported"), std::string::npos) << msg;
}

TEST(CorruptCheckpoint, WrongShape) {
  std::string d = saved("shape");
  rewrite_tensors(d, [](StFile& f) {
    for (auto& t : f.tensors)
      if (t.name == "layers.0.attn.wq.weight") t.shape = {16, 64};
  });
  auto msg = load_error(d);
  EXPECT_NE(msg.find("tensor 'layers.0.attn.wq.weight' has shape [16, 64] but config.json implies [32, 32]"),
            std::string::npos)
      << msg;
}

TEST(CorruptCheckpoint, NanWeight) {
  std::string d = saved("nan");
  rewrite_tensors(d, [](StFile& f) {
    for (auto& t : f.tensors)
      if (t.name == "norm_f.weight") {
        float nan = std::nanf("");
        std::memcpy(t.data.data() + 8, &nan, 4);
      }
  });
  auto msg = load_error(d);
  EXPECT_NE(msg.find("tensor 'norm_f.weight' holds a non-finite value (NaN) at element 2"), std::string::npos) << msg;
}

TEST(CorruptCheckpoint, MissingTensor) {
  std::string d = saved("missing");
  rewrite_tensors(d, [](StFile& f) {
    f.tensors.erase(std::remove_if(f.tensors.begin(), f.tensors.end(),
                                   [](const StTensor& t) { return t.name == "layers.1.mlp.0.weight"; }),
                    f.tensors.end());
  });
  auto msg = load_error(d);
  EXPECT_NE(msg.find("missing tensor 'layers.1.mlp.0.weight' (expected shape [128, 32])"), std::string::npos) << msg;
}

TEST(CorruptCheckpoint, UnexpectedTensor) {
  std::string d = saved("unexpected");
  rewrite_tensors(d, [](StFile& f) {
    f.tensors.push_back({"layers.9.attn.wq.weight", DType::F32, {1}, {0, 0, 0, 0}});
  });
  auto msg = load_error(d);
  EXPECT_NE(msg.find("unexpected tensor 'layers.9.attn.wq.weight'"), std::string::npos) << msg;
}

TEST(CorruptCheckpoint, BadJson) {
  std::string d = saved("json");
  put_bytes(d + "/config.json", "{\"format\": \"attnscope-checkpoint\", \"model\": {");
  auto msg = load_error(d);
  EXPECT_NE(msg.find("config.json: not valid JSON"), std::string::npos) << msg;
}

TEST(CorruptCheckpoint, MismatchedConfigAndVocabulary) {
  std::string d = saved("vocab");
  std::string j = file_bytes(d + "/config.json");
  auto at = j.find("\"vocab\": \"");
  ASSERT_NE(at, std::string::npos);
  j.insert(at + 10, "Z");
  put_bytes(d + "/config.json", j);
  auto msg = load_error(d);
  EXPECT_NE(msg.find("'vocab' has 21 symbols but model.vocab_size is 20"), std::string::npos) << msg;
  EXPECT_NE(load_error(d + "/nope").find("is not a directory"), std::string::npos);
}

TEST(CorruptCheckpoint, Fp16FileIsDecodedNotMisread) {
  std::string d = saved("half", DType::F16);
  StFile f = read_safetensors(d + "/model.safetensors");
  EXPECT_EQ(f.tensors[0].dtype, DType::F16);
  EXPECT_NO_THROW(Model::load(d, "cpu"));
}

TEST(Device, CudaIsChosenAtRunTime) {
  EXPECT_EQ(resolve_device("cpu"), torch::Device(torch::kCPU));
  EXPECT_NE(error_of([] { resolve_device("tpu"); }).find("--device must be auto, cpu or cuda"), std::string::npos);
  if (!torch::cuda::is_available()) GTEST_SKIP() << "this LibTorch has no CUDA device";
  auto m = small_model();
  std::string d = temp_dir("cuda");
  m->save(d, DType::F32);
  auto g = Model::load(d, "cuda");
  auto a = m->logits({1, 2, 3}, false), b = g->logits({1, 2, 3}, true);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-4);
}

// The bundled checkpoint: present, loadable, and a trained model.
TEST(Bundled, MhaCheckpointLoadsAndPredicts) {
  auto m = Model::load(default_model_dir(), "cpu");
  EXPECT_EQ(m->config().n_layer, 4);
  EXPECT_EQ(m->config().d_model, 128);
  EXPECT_EQ(m->config().n_head, 8);
  EXPECT_EQ(m->config().context, 256);
  EXPECT_EQ(m->tokenizer().size(), 65);
  const std::string text = "First Citizen:\nBefore we proceed any further, hear me speak.\n";
  auto maps = m->attend(m->tokenizer().encode_or_throw(text, UnknownPolicy::Error));
  EXPECT_LT(maps.loss, 2.5);  // an untrained model scores ~4.2 nats/char
}

// Every shipped checkpoint still scores what it recorded on the fixed validation slice (catches silent breakage of
// any variant, position scheme, MoE layer or of the loader).
TEST(Shipped, EveryCheckpointMatchesItsRecordedLoss) {
  const std::string text = read_text_file(default_corpus_path());
  int checked = 0;
  for (const auto& dir : fs::directory_iterator(assets_dir() + "/models")) {
    if (!fs::exists(dir.path() / "config.json")) continue;
    auto m = Model::load(dir.path().string(), "cpu");
    ASSERT_TRUE(m->meta().contains("val_loss_20k")) << dir.path() << ": config.json records no val_loss_20k";
    const double want = m->meta()["val_loss_20k"].get<double>();
    auto valid = m->tokenizer().encode_or_throw(split_corpus(text).valid, UnknownPolicy::Error);
    EvalResult r = m->evaluate(valid, kRegressionChars / m->config().context);
    EXPECT_NEAR(r.loss, want, 0.02) << dir.path();
    EXPECT_EQ(r.characters, (kRegressionChars / m->config().context) * m->config().context);
    ++checked;
  }
  EXPECT_GE(checked, 1);
}

// A tiny model on the first 40,000 characters: the loss falls, and a run stopped at step 20 and resumed ends with
// exactly the weights and the validation loss of the run that was never stopped (batches are a function of seed
// and step; the state holds the weights, AdamW's moments and the step).
TEST(Train, TinyRunLowersTheLossAndResumesIdentically) {
  const fs::path root = fs::path(::testing::TempDir()) / "attnscope_train_resume";
  fs::remove_all(root);
  fs::create_directories(root);
  const std::string corpus = (root / "corpus.txt").string();
  std::ofstream(corpus) << read_text_file(default_corpus_path()).substr(0, 40000);
  TrainOptions o;
  o.model.n_layer = 1;
  o.model.d_model = 32;
  o.model.n_head = 2;
  o.model.context = 32;
  o.model.set_all_layers("mha", {});
  o.corpus_path = corpus;
  o.device = "cpu";
  o.steps = 40;
  o.batch = 8;
  o.lr = 3e-3;
  o.warmup = 5;
  o.eval_every = 10;
  o.eval_windows = 4;
  o.dtype = DType::F32;
  auto run = [&](const std::string& name, bool resume, int64_t stop_after) {
    TrainOptions r = o;
    r.out_dir = (root / name).string();
    r.resume = resume;
    std::vector<double> losses;
    TrainSummary s = train(r, [&](const TrainProgress& p) {
      losses.push_back(p.loss);
      if (p.step == stop_after) request_training_stop();
    });
    return std::make_pair(s, losses);
  };
  const auto [whole, losses] = run("whole", false, -1);
  ASSERT_FALSE(whole.interrupted);
  ASSERT_EQ(losses.size(), 40u);
  EXPECT_LT(losses.back(), losses.front() - 0.5) << "training did not lower the loss";
  EXPECT_LT(whole.final_val_loss, std::log(double(Tokenizer::from_corpus(read_text_file(corpus)).size())));

  const auto [first, first_losses] = run("stopped", false, 20);
  EXPECT_TRUE(first.interrupted);
  EXPECT_EQ(first.steps_done, 20);
  EXPECT_TRUE(fs::exists(root / "stopped" / "train_state.safetensors"));
  EXPECT_FALSE(fs::exists(root / "stopped" / "model.safetensors"));  // only the resumable state
  const auto [rest, rest_losses] = run("stopped", true, -1);
  EXPECT_FALSE(rest.interrupted);
  EXPECT_EQ(rest.steps_done, 40);
  EXPECT_EQ(rest_losses.size(), 20u);  // steps 21..40 only
  EXPECT_EQ(rest.final_val_loss, whole.final_val_loss);
  StFile a = read_safetensors((root / "whole" / "model.safetensors").string());
  StFile b = read_safetensors((root / "stopped" / "model.safetensors").string());
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_EQ(a.tensors[i].name, b.tensors[i].name);
    EXPECT_EQ(a.tensors[i].data, b.tensors[i].data) << a.tensors[i].name << " differs after resuming";
  }
  // finished: the state is gone, a further --resume says so
  EXPECT_FALSE(fs::exists(root / "stopped" / "train_state.safetensors"));
  std::string err;
  try {
    run("stopped", true, -1);
  } catch (const Error& e) {
    err = e.what();
  }
  EXPECT_NE(err.find("no training state"), std::string::npos) << err;
}
