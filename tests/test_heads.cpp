// Head roles, rollout and knock-outs (attention/heads.h, attention/knockout.h, app/session/head_analysis.h): scores on
// constructed maps with known answers, and the universal sweep over every registered variant.
#include <gtest/gtest.h>

#include <cmath>

#include "engine_impl.h"
#include "head_analysis.h"
#include "knockout.h"
#include "registry.h"
#include "torch_test_util.h"

using namespace attnscope;
using namespace attnscope::testing_util;

namespace {

double score_of(const std::string& role, const std::vector<float>& a, int64_t T,
                const std::vector<int64_t>* tokens = nullptr, int64_t period = 0) {
  HeadMapView v{a.data(), T, T, tokens, period, true};
  return find_role(role)->score(v);
}

// [T, T] with row i all on key f(i) (row 0 on key 0).
template <class F>
std::vector<float> pointer_map(int64_t T, F f) {
  std::vector<float> a(size_t(T * T), 0.0f);
  for (int64_t i = 0; i < T; ++i) a[size_t(i * T + (i == 0 ? 0 : f(i)))] = 1.0f;
  return a;
}

std::vector<float> uniform_causal(int64_t T) {
  std::vector<float> a(size_t(T * T), 0.0f);
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j <= i; ++j) a[size_t(i * T + j)] = 1.0f / float(i + 1);
  return a;
}

}  // namespace

TEST(HeadRoles, PreviousTokenMapScoresOne) {
  const auto a = pointer_map(20, [](int64_t i) { return i - 1; });
  EXPECT_DOUBLE_EQ(score_of("previous_token", a, 20), 1.0);
  EXPECT_DOUBLE_EQ(score_of("self", a, 20), 0.0);
  EXPECT_DOUBLE_EQ(score_of("local", a, 20), 1.0);
  EXPECT_DOUBLE_EQ(score_of("distance", a, 20), 1.0);
  EXPECT_DOUBLE_EQ(score_of("broad", a, 20), 0.0);
  const auto s = pointer_map(20, [](int64_t i) { return i; });
  EXPECT_DOUBLE_EQ(score_of("self", s, 20), 1.0);
  EXPECT_DOUBLE_EQ(score_of("previous_token", s, 20), 0.0);
  const auto sink = pointer_map(20, [](int64_t) { return 0; });
  EXPECT_DOUBLE_EQ(score_of("first_token", sink, 20), 1.0);
  EXPECT_LT(score_of("local", sink, 20), 0.01);  // rows past 8 read position 0, outside the window
}

TEST(HeadRoles, ExactInductionMapScoresOne) {
  const int64_t P = 12, T = 2 * P;
  const auto probe = induction_probe({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, P, 3);
  ASSERT_EQ(int64_t(probe.size()), T);
  for (int64_t i = P; i < T; ++i) EXPECT_EQ(probe[size_t(i)], probe[size_t(i - P)]);
  const auto ind = pointer_map(T, [P](int64_t i) { return i >= P ? i - P + 1 : i - 1; });
  EXPECT_DOUBLE_EQ(score_of("induction", ind, T, &probe, P), 1.0);
  // A previous-token head is no induction head; a duplicate-token head (j = i - P) is not either.
  const auto prev = pointer_map(T, [](int64_t i) { return i - 1; });
  EXPECT_LT(score_of("induction", prev, T, &probe, P), 0.1);
  const auto dup = pointer_map(T, [P](int64_t i) { return i >= P ? i - P : i - 1; });
  EXPECT_LT(score_of("induction", dup, T, &probe, P), 0.1);
  std::vector<int64_t> distinct;  // 0..P-1 twice: the only earlier occurrence of a token is i - P
  for (int64_t i = 0; i < T; ++i) distinct.push_back(i % P);
  EXPECT_DOUBLE_EQ(score_of("duplicate_token", dup, T, &distinct, P), 1.0);
  EXPECT_DOUBLE_EQ(score_of("duplicate_token", ind, T, &distinct, P), 0.0);
}

TEST(HeadRoles, UniformCausalRowHasEntropyOne) {
  const auto u = uniform_causal(30);
  EXPECT_NEAR(score_of("broad", u, 30), 1.0, 1e-6);
  EXPECT_NEAR(score_of("previous_token", u, 30), 0, 0.2);
}

TEST(HeadRoles, ThresholdsAndTable) {
  for (const auto& r : role_registry()) {
    EXPECT_FALSE(r.description.empty()) << r.name;
    EXPECT_TRUE(r.score) << r.name;
    EXPECT_EQ(r.threshold < 0, r.label.empty()) << r.name;  // a measure has no label, a role has one
  }
  const auto t = session::parse_thresholds({"induction=0.2"});
  EXPECT_DOUBLE_EQ(t[size_t(find_role("induction") - role_registry().data())], 0.2);
  EXPECT_NE(error_of([] { session::parse_thresholds({"nope=0.2"}); }).find("previous_token"), std::string::npos);
  EXPECT_NE(error_of([] { session::parse_thresholds({"self=2"}); }).find("(0, 1]"), std::string::npos);
  EXPECT_NE(error_of([] { session::parse_thresholds({"distance=2"}); }).find("measure"), std::string::npos);
}

// The window's sliders: labels from other thresholds, on the same scores.
TEST(HeadRoles, LabelsFollowOtherThresholds) {
  const auto& roles = role_registry();
  session::HeadReport r;
  r.layers = 1, r.heads = 2;
  r.thresholds = session::parse_thresholds({});
  r.scores.assign(roles.size() * 2, 0.0);  // [R, 1, 2]
  const size_t prev = size_t(find_role("previous_token") - roles.data()),
               self = size_t(find_role("self") - roles.data());
  r.scores[prev * 2 + 0] = 0.9;  // head 0: previous-token at 0.9, self at 0.3
  r.scores[self * 2 + 0] = 0.3;
  EXPECT_EQ(r.roles_of(0, 0), std::vector<size_t>{prev});
  EXPECT_EQ(r.roles_of(0, 0), r.roles_of(0, 0, r.thresholds));
  std::vector<double> th = r.thresholds;
  th[prev] = 0.95;  // raised above the score: the label goes
  th[self] = 0.2;   // lowered below it: the other comes
  EXPECT_EQ(r.roles_of(0, 0, th), std::vector<size_t>{self});
  th[prev] = 0.45;  // both pass: strongest first by score / threshold (2.0 vs 1.5)
  EXPECT_EQ(r.roles_of(0, 0, th), (std::vector<size_t>{prev, self}));
  EXPECT_TRUE(r.roles_of(0, 1, th).empty());  // head 1 scores nothing
}

TEST(Rollout, IdentityMapsGiveIdentity) {
  const int64_t L = 3, H = 2, T = 7;
  std::vector<float> id(size_t(L * H * T * T), 0.0f);  // [L, H, T, T]
  for (int64_t lh = 0; lh < L * H; ++lh)
    for (int64_t i = 0; i < T; ++i) id[size_t(lh * T * T + i * T + i)] = 1.0f;
  const auto r = attention_rollout(id.data(), L, H, T);
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < T; ++j) EXPECT_NEAR(r[size_t(i * T + j)], i == j ? 1.0 : 0.0, 1e-6);
}

TEST(Rollout, OneLayerIsHalfMapHalfIdentity) {
  const int64_t T = 9;
  auto u = uniform_causal(T), p = pointer_map(T, [](int64_t i) { return i - 1; });
  std::vector<float> maps = u;  // [1, 2, T, T]: heads averaged
  maps.insert(maps.end(), p.begin(), p.end());
  const auto r = attention_rollout(maps.data(), 1, 2, T);
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < T; ++j) {
      const double a = 0.5 * (u[size_t(i * T + j)] + p[size_t(i * T + j)]);
      EXPECT_NEAR(r[size_t(i * T + j)], 0.5 * a + (i == j ? 0.5 : 0.0), 1e-6) << i << "," << j;
    }
}

TEST(Knockout, HeadWithZeroOutputProjectionChangesNothing) {
  Tokenizer tok = Tokenizer::from_corpus("abcdefghijklmnopqrs\n");
  auto m = Model::create(small_config("mha"), tok, "cpu", 5);
  const int64_t dv = m->config().head_dim();
  {
    torch::NoGradGuard ng;
    auto p = m->impl->net->attn[1]->named_parameters();
    p.find("wo.weight")->narrow(1, 2 * dv, dv).zero_();  // head 2 of layer 1 writes nothing
  }
  const std::vector<int64_t> ids = {1, 4, 2, 8, 5, 7, 3, 9, 1, 4, 2, 8};
  const auto base = m->logits(ids, false);
  EXPECT_EQ(knock_out(*m, {{1, 2}})->logits(ids, false), base);  // bit for bit
  EXPECT_NE(knock_out(*m, {{1, 1}})->logits(ids, false), base);  // a head that writes something matters
  EXPECT_NE(knock_out(*m, {{0, -1}})->logits(ids, false), base);
  EXPECT_EQ(m->logits(ids, false), base);  // the original is untouched
  EXPECT_NE(error_of([&] { knock_out(*m, {{2, 0}}); }).find("layer 2"), std::string::npos);
  const auto imp = session::head_importance(*m, ids, std::vector<int64_t>(100, 3));
  EXPECT_DOUBLE_EQ(imp.text_delta[size_t(1 * 4 + 2)], 0.0);
  EXPECT_DOUBLE_EQ(imp.heldout_delta[size_t(1 * 4 + 2)], 0.0);
}

namespace {

// The second text a cross-attention variant reads (the text itself, as head_means does); none otherwise.
std::vector<int64_t> kv_of(const std::string& variant, const std::vector<int64_t>& ids) {
  return get_variant(variant).needs_kv_text ? ids : std::vector<int64_t>{};
}

}  // namespace

// Every registered variant: the mean of one position is that position, so a mean knock-out whose means come from
// a one-character text leaves that text's logits as they were (a head, and a whole layer, at once).
TEST(Knockout, EveryVariantMeanOfOnePositionChangesNothing) {
  Tokenizer tok = Tokenizer::from_corpus("abcdefghijklmnopqrs\n");
  const std::vector<int64_t> one = {6};
  for (const auto& v : variant_registry()) {
    SCOPED_TRACE(v.name);
    auto m = Model::create(small_config(v.name), tok, "cpu", 13);
    const int64_t L = m->config().n_layer;
    const HeadMeans means = head_means(*m, one);
    EXPECT_EQ(means.positions, 1);
    const auto base = m->logits(one, false, kv_of(v.name, one));
    const auto ko = knock_out(*m, {{0, 1}, {L - 1, -1}}, &means)->logits(one, false, kv_of(v.name, one));
    ASSERT_EQ(ko.size(), base.size());
    for (size_t i = 0; i < base.size(); ++i) EXPECT_NEAR(ko[i], base[i], 1e-4 * (1 + std::fabs(base[i]))) << i;
    const auto zero = knock_out(*m, {{0, 1}, {L - 1, -1}})->logits(one, false, kv_of(v.name, one));
    EXPECT_NE(zero, base);  // zeroing the same heads does change them: the test can fail
  }
}

// Every registered variant: replacing head h of the last layer by its mean over a text keeps that layer's mean
// attention output over the same text (the mean is exactly what was put back), the layer's input is untouched, and
// the output at each position does change.
TEST(Knockout, EveryVariantMeanKnockoutKeepsTheLayersMeanOutput) {
  Tokenizer tok = Tokenizer::from_corpus("abcdefghijklmnopqrs\n");
  const std::vector<int64_t> ids = {1, 4, 2, 8, 5, 7, 3, 9, 1, 4, 2, 8};
  for (const auto& v : variant_registry()) {
    SCOPED_TRACE(v.name);
    auto m = Model::create(small_config(v.name), tok, "cpu", 17);
    const int64_t L = m->config().n_layer;
    const HeadMeans means = head_means(*m, ids);
    auto ko = knock_out(*m, {{L - 1, 1}}, &means);
    torch::NoGradGuard ng;
    auto last_layer_out = [&](const Model& x) {  // [1, T, d]: the last layer's attention output, bias included
      GPTImpl& net = *x.impl->net;
      std::vector<torch::Tensor> rec, kv;
      ForwardOptions o;
      o.record_inputs = &rec;
      auto t = to_tensor(ids, torch::kCPU);  // [1, T]
      if (net.has_cross()) {
        kv = net.kv_sources(t);
        o.kv_sources = &kv;
      }
      net.forward(t, o);
      AttnCall c;
      c.x = rec.back();
      if (!kv.empty()) c.kv_source = kv.back();
      return std::make_pair(rec.back(), net.attn_residual(size_t(L - 1), net.attn.back()->forward(c).out));
    };
    const auto [in_a, out_a] = last_layer_out(*m);
    const auto [in_b, out_b] = last_layer_out(*ko);
    EXPECT_TRUE(torch::equal(in_a, in_b));
    EXPECT_TRUE(torch::allclose(out_a.mean(1), out_b.mean(1), 1e-4, 1e-5))
        << (out_a.mean(1) - out_b.mean(1)).abs().max();
    EXPECT_GT((out_a - out_b).abs().max().item<double>(), 1e-6);
  }
}

TEST(Knockout, MeansOverWindowsAndClearErrors) {
  Tokenizer tok = Tokenizer::from_corpus("abcdefghijklmnopqrs\n");
  auto m = Model::create(small_config("mha"), tok, "cpu", 5);
  const int64_t C = m->config().context;
  std::vector<int64_t> long_text;
  for (int64_t i = 0; i < 2 * C + 3; ++i) long_text.push_back((i * 5 + i / 7) % 19);
  const HeadMeans means = head_means(*m, long_text);  // three windows, the last of 3 positions
  EXPECT_EQ(means.positions, 2 * C + 3);
  ASSERT_EQ(means.mean.size(), size_t(means.layers * means.heads * means.d));
  for (float x : means.mean) ASSERT_TRUE(std::isfinite(x));
  // A head listed twice, or inside its listed layer, counts once
  const std::vector<int64_t> ids = {1, 4, 2, 8, 5, 7, 3};
  EXPECT_EQ(knock_out(*m, {{1, 2}, {1, 2}}, &means)->logits(ids, false),
            knock_out(*m, {{1, 2}}, &means)->logits(ids, false));
  EXPECT_EQ(knock_out(*m, {{0, -1}, {0, 3}}, &means)->logits(ids, false),
            knock_out(*m, {{0, -1}}, &means)->logits(ids, false));
  EXPECT_NE(knock_out(*m, {{0, -1}}, &means)->logits(ids, false), knock_out(*m, {{0, -1}})->logits(ids, false));
  EXPECT_NE(error_of([] { parse_knock_mode("average"); }).find("zero"), std::string::npos);
  EXPECT_EQ(parse_knock_mode("mean"), KnockMode::Mean);
  EXPECT_NE(error_of([&] { head_means(*m, {}); }).find("no text"), std::string::npos);
  EXPECT_NE(error_of([&] { head_means(*m, {1, 99}); }).find("99"), std::string::npos);
  HeadMeans other = means;
  other.heads = 2;
  EXPECT_NE(error_of([&] { knock_out(*m, {{0, 0}}, &other); }).find("another shape"), std::string::npos);
  // a head that writes nothing has mean 0: knocking it out either way changes nothing
  const int64_t dv = m->config().head_dim();
  {
    torch::NoGradGuard ng;
    m->impl->net->attn[1]->named_parameters().find("wo.weight")->narrow(1, 2 * dv, dv).zero_();
  }
  const auto imp = session::head_importance(*m, ids, std::vector<int64_t>(100, 3), {}, KnockMode::Mean);
  EXPECT_EQ(imp.mode, KnockMode::Mean);
  EXPECT_DOUBLE_EQ(imp.text_delta[size_t(1 * 4 + 2)], 0.0);
  EXPECT_DOUBLE_EQ(imp.heldout_delta[size_t(1 * 4 + 2)], 0.0);
}

// Every registered variant: finite scores, bounded ones in [0, 1], a rollout whose rows sum to 1.
TEST(HeadRoles, EveryVariantGivesFiniteScores) {
  Tokenizer tok = Tokenizer::from_corpus("abcdefghijklmnopqrs\n");
  session::HeadsOptions o;
  o.period = 20;
  std::vector<int64_t> text;
  for (int64_t i = 0; i < 40; ++i) text.push_back((i * 7 + i / 5) % 20);
  for (const auto& v : variant_registry()) {
    SCOPED_TRACE(v.name);
    auto m = Model::create(small_config(v.name), tok, "cpu", 11);
    const session::HeadReport r = session::analyse_heads(*m, text, o);
    const auto& roles = role_registry();
    for (size_t k = 0; k < roles.size(); ++k)
      for (int64_t l = 0; l < r.layers; ++l)
        for (int64_t h = 0; h < r.heads; ++h) {
          const double s = r.score(k, l, h);
          ASSERT_TRUE(std::isfinite(s)) << roles[k].name << " " << l << "," << h;
          if (roles[k].bounded) {
            EXPECT_GE(s, 0.0) << roles[k].name;
            EXPECT_LE(s, 1.0 + 1e-9) << roles[k].name;
          }
        }
    EXPECT_TRUE(std::isfinite(r.text_loss));
    EXPECT_TRUE(std::isfinite(r.probe_loss_drop()));
    ASSERT_EQ(r.rollout.size(), text.size() * text.size());
    for (size_t i = 0; i < text.size(); ++i) {
      double s = 0;
      for (size_t j = 0; j < text.size(); ++j) s += r.rollout[i * text.size() + j];
      EXPECT_NEAR(s, 1.0, 1e-4);
    }
  }
}
