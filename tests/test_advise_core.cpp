// Torch-free pieces of issue 11: explanations in the registry, painted masks, --layer-variants, the advisor.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>

#include "advisor.h"
#include "config.h"
#include "custom_mask.h"
#include "error.h"
#include "registry.h"
#include "test_util.h"

using namespace attnscope;
using testing_util::error_of;

// ------------------------------------------------------------------------------------------ explanations

TEST(Explain, EveryRegisteredVariantIsExplained) {
  for (const auto& v : variant_registry()) {
    EXPECT_TRUE(v.explain.complete()) << v.name << " has no (complete) explanation in the registry";
    EXPECT_FALSE(v.cache_formula.empty()) << v.name;
    for (const auto& p : v.explain.marked_params())
      EXPECT_NE(v.find_param(p), nullptr) << v.name << ": formula marks {" << p << "}, which is not a parameter";
    // when to use / when not: 2-3 sentences
    int sentences = 0;
    for (size_t i = 0; i + 1 < v.explain.when.size(); ++i)
      sentences += v.explain.when[i] == '.' && v.explain.when[i + 1] == ' ';
    sentences += !v.explain.when.empty() && v.explain.when.back() == '.';
    EXPECT_GE(sentences, 2) << v.name;
    EXPECT_LE(sentences, 3) << v.name;
  }
  for (const char* n : {"mha", "sliding_window", "linear", "custom"}) EXPECT_NE(find_variant(n), nullptr) << n;
}

TEST(Explain, SlidersAreMarkedInTheFormula) {
  EXPECT_EQ(get_variant("sliding_window").explain.marked_params(), std::vector<std::string>{"window"});
  auto d = get_variant("dilated").explain.marked_params();
  EXPECT_NE(std::find(d.begin(), d.end(), "dilation"), d.end());
}

// ------------------------------------------------------------------------------------------ painted masks

TEST(CustomMask, BrushRectBandAndClipStayCausal) {
  CustomMask m = clear_mask(8);
  EXPECT_EQ(m.allowed_pairs(), 0);
  paint_band(m, 0, 2, true);  // a window of 3: sum_i min(i + 1, 3)
  EXPECT_EQ(m.allowed_pairs(), 1 + 2 + 3 * 6);
  paint_rect(m, 7, 0, 0, 7, true);  // corners in any order; only j <= i is painted
  EXPECT_EQ(m, causal_mask(8));
  paint_rect(m, 4, 0, 7, 1, false);
  EXPECT_FALSE(m.at(5, 1));
  EXPECT_TRUE(m.at(5, 2));
  paint_brush(m, 6, 6, 1, false);  // disc of radius 1 (the cell above the diagonal is ignored)
  EXPECT_FALSE(m.at(6, 6));
  EXPECT_FALSE(m.at(6, 5));
  EXPECT_FALSE(m.at(7, 6));
  EXPECT_TRUE(m.at(7, 5));
  paint_columns(m, 0, 0, true);
  for (int64_t i = 0; i < 8; ++i) EXPECT_TRUE(m.at(i, 0));
  for (int64_t i = 0; i < 8; ++i)
    for (int64_t j = i + 1; j < 8; ++j) EXPECT_FALSE(m.at(i, j));
  clear(m);
  EXPECT_EQ(m.allowed_pairs(), 0);
  m.cells[1] = 1;  // (0, 1): above the diagonal, set directly
  EXPECT_EQ(causal_clip(m), 1);
  EXPECT_EQ(m.allowed_pairs(), 0);
}

TEST(CustomMask, TextRoundTripAndErrors) {
  CustomMask m = parse_mask_text("# a comment\n1111\n1100\n0 1 1 0\n1001\n");
  EXPECT_EQ(m.n, 4);
  EXPECT_EQ(mask_rows(m), (std::vector<std::string>{"1000", "1100", "0110", "1001"}));  // clipped to j <= i
  EXPECT_EQ(parse_mask_text(mask_text(m)), m);
  EXPECT_NE(error_of([] { parse_mask_text("10\n1\n"); }).find("mask line 2: 1 cells"), std::string::npos);
  EXPECT_NE(error_of([] { parse_mask_text("1x\n11\n"); }).find("'x' is not 0 or 1"), std::string::npos);
  EXPECT_NE(error_of([] { parse_mask_text("# nothing\n"); }).find("no rows"), std::string::npos);
}

TEST(CustomMask, SavedInConfigJsonAsRows) {
  ModelConfig c;
  c.set_all_layers("mha", {});
  c.layers[1].variant = "custom";
  c.layers[1].params = {};
  c.layers[1].mask = causal_mask(5);
  paint_rect(c.layers[1].mask, 3, 0, 4, 1, false);
  auto j = config_to_json(c);
  EXPECT_EQ(j["layers"][1]["mask"]["rows"][4], "00111");
  ModelConfig d = config_from_json(j);
  EXPECT_EQ(d.layers[1].mask, c.layers[1].mask);
  EXPECT_TRUE(d.layers[0].mask.empty());
  c.layers[0].mask = causal_mask(3);  // only custom layers take a mask
  EXPECT_NE(error_of([&] { c.validate(); }).find("only the custom variant takes a painted mask"), std::string::npos);
}

// ------------------------------------------------------------------------------------------ --layer-variants

TEST(LayerVariants, OneEntryPerLayerWithParameters) {
  auto l = parse_layer_variants("sliding_window:window=32,sliding_window:window=16,mha,gqa:groups=4", 4);
  ASSERT_EQ(l.size(), 4u);
  EXPECT_EQ(l[0].variant, "sliding_window");
  EXPECT_EQ(l[0].params.at("window"), 32);
  EXPECT_EQ(l[1].params.at("window"), 16);
  EXPECT_EQ(l[2].variant, "mha");
  EXPECT_EQ(l[3].params.at("groups"), 4);
  auto b = parse_layer_variants("bigbird:block=8,window_blocks=2,mha", 2);  // k=v continues the previous entry
  EXPECT_EQ(b[0].params.at("block"), 8);
  EXPECT_EQ(b[0].params.at("window_blocks"), 2);
  EXPECT_EQ(b[0].params.at("global_blocks"), 1);  // the default
  EXPECT_NE(error_of([] { parse_layer_variants("mha,mha", 4); }).find("lists 2 layers, but the model has 4"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_layer_variants("mha,nope", 2); }).find("unknown variant 'nope'"), std::string::npos);
  EXPECT_NE(error_of([] { parse_layer_variants("window=3,mha", 2); }).find("before any variant"), std::string::npos);
  EXPECT_NE(error_of([] { parse_layer_variants("mha:window=3,mha", 2); }).find("no parameter 'window'"),
            std::string::npos);
}

TEST(MoeConfig, ValidatedAndRoundTripped) {
  ModelConfig c;
  c.set_all_layers("mha", {});
  EXPECT_FALSE(config_to_json(c).contains("moe_experts"));  // dense configs unchanged
  c.moe_experts = 4;
  c.moe_k = 2;
  ModelConfig d = config_from_json(config_to_json(c));
  EXPECT_EQ(d.moe_experts, 4);
  EXPECT_EQ(d.moe_k, 2);
  EXPECT_EQ(d.expert_hidden(), 128);  // 4 * 128 / 4
  c.moe_k = 5;
  EXPECT_NE(error_of([&] { c.validate(); }).find("moe_k must be 1..moe_experts"), std::string::npos);
  c.moe_experts = 1;
  EXPECT_NE(error_of([&] { c.validate(); }).find("moe_experts must be 0"), std::string::npos);
}

// ------------------------------------------------------------------------------------------ advisor

namespace {
Candidate cand(const std::string& v, double ms, double peak_mib, int64_t cache, double loss, bool constant = false) {
  Candidate c;
  c.variant = v;
  c.timing.found = std::isfinite(ms);
  c.timing.prefill_ms = ms;
  c.timing.peak_mib = peak_mib;
  c.timing.how = "measured at 1024";
  c.cache_bytes = cache;
  c.cache_constant = constant;
  c.weight_bytes = 3 << 20;
  c.val_loss = loss;
  c.loss_source = "test";
  return c;
}
std::vector<std::string> order(const std::vector<Ranked>& r) {
  std::vector<std::string> o;
  for (const auto& x : r) o.push_back(x.variant);
  return o;
}
// mha: slow, best quality, big cache; window: fast, small constant cache, slightly worse; linear: fastest, tiny
// state, much worse; nystrom: non-causal.
std::vector<Candidate> fixture() {
  std::vector<Candidate> c = {cand("mha", 40, 300, 32 << 20, 1.58), cand("sliding_window", 10, 60, 1 << 20, 1.70, true),
                              cand("linear", 5, 40, 64 << 10, 2.30, true), cand("nystrom", 8, 50, 0, 1.9)};
  c[3].causal = false;
  return c;
}
}  // namespace

TEST(Advisor, RankingFollowsTheScenario) {
  AdviceRequest r;
  r.seq = 1024;
  r.candidates = fixture();
  r.scenario = Scenario::Quality;  // mha 0.25 * 3 = 0.75; window 0.25 * 1 + 8 * 0.12 = 1.21; linear 8 * 0.72
  EXPECT_EQ(order(rank_variants(r)), (std::vector<std::string>{"mha", "sliding_window", "linear", "nystrom"}));
  r.scenario = Scenario::Training;  // window 1 + 0.14 + 0.48; mha 3 + 0.74; linear 0 + 2.88
  EXPECT_EQ(order(rank_variants(r))[0], "sliding_window");
  r.scenario = Scenario::LongContext;  // cache doublings count: linear's tiny state wins over its loss (2/nat)
  auto lc = rank_variants(r);
  EXPECT_EQ(order(lc), (std::vector<std::string>{"linear", "sliding_window", "mha", "nystrom"}));
  EXPECT_EQ(lc[0].rank, 1);
  EXPECT_EQ(lc[3].rank, 0);
  EXPECT_NE(lc[3].reason.find("non-causal"), std::string::npos) << lc[3].reason;
  EXPECT_NE(lc[0].reason.find("cache 64.0 KiB (constant)"), std::string::npos) << lc[0].reason;
  EXPECT_NE(lc[2].reason.find("8.0x fastest"), std::string::npos) << lc[2].reason;  // mha 40 ms against linear's 5
}

TEST(Advisor, MemoryBudgetExcludesWhatDoesNotFit) {
  AdviceRequest r;
  r.scenario = Scenario::MemoryLimited;
  r.memory_bytes = parse_memory_size("128MB");
  r.candidates = fixture();
  auto out = rank_variants(r);
  EXPECT_EQ(order(out), (std::vector<std::string>{"linear", "sliding_window", "mha", "nystrom"}));
  EXPECT_EQ(out[2].rank, 0);  // mha needs 300 MiB + 32 MiB + 3 MiB
  EXPECT_NE(out[2].reason.find("excluded: needs 335.0 MiB"), std::string::npos) << out[2].reason;
  EXPECT_NE(out[0].reason.find("of 128.0 MiB"), std::string::npos) << out[0].reason;
}

TEST(Advisor, MissingTimingsAreSaid) {
  AdviceRequest r;
  r.scenario = Scenario::Training;
  r.candidates = fixture();
  for (auto& c : r.candidates) c.timing = Timing{};
  auto out = rank_variants(r);
  EXPECT_EQ(out[0].variant, "sliding_window");  // quality and memory are left: window 0.10 + 0.48, mha 0.88
  for (const auto& x : out)
    if (x.rank > 0) {
      EXPECT_NE(x.reason.find("timings missing"), std::string::npos) << x.reason;
    }
  r.candidates[1].val_loss = NAN;  // unknown loss: counted as the worst known
  out = rank_variants(r);
  EXPECT_NE(out.back().reason.find("non-causal"), std::string::npos);
  bool said = false;
  for (const auto& x : out)
    said = said || x.reason.find("loss unknown (counted as the worst, 2.300)") != std::string::npos;
  EXPECT_TRUE(said);
}

TEST(Advisor, BenchJsonAndInterpolation) {
  auto j = nlohmann::json::parse(R"({"points": [
    {"variant": "mha", "length": 256, "status": "ok", "median_ms": 1.0, "peak_mib": 4.0, "decode_tokens_per_s": 900},
    {"variant": "mha", "length": 1024, "status": "ok", "median_ms": 16.0, "peak_mib": 64.0, "decode_tokens_per_s": 300},
    {"variant": "mha", "length": 4096, "status": "skipped", "median_ms": null},
    {"variant": "linear", "length": 256, "status": "ok", "median_ms": 2.0, "peak_mib": 1.0, "decode_tokens_per_s": null}]})");
  auto s = bench_samples_from_json(j);
  ASSERT_EQ(s.size(), 3u);
  Timing t = timing_at(s, "mha", 512);  // log-log: slope 2 -> 4 ms
  EXPECT_NEAR(t.prefill_ms, 4.0, 1e-9);
  EXPECT_EQ(t.how, "interpolated 256-1024");
  EXPECT_NEAR(timing_at(s, "mha", 2048).prefill_ms, 64.0, 1e-9);
  EXPECT_EQ(timing_at(s, "mha", 2048).how, "extrapolated from 256-1024");
  EXPECT_EQ(timing_at(s, "mha", 1024).how, "measured at 1024");
  EXPECT_EQ(timing_at(s, "linear", 1024).how, "only measured at 256");
  EXPECT_FALSE(timing_at(s, "tiled", 1024).found);
  EXPECT_NE(error_of([] { bench_samples_from_json(nlohmann::json::object()); }).find("array 'points'"),
            std::string::npos);
}

TEST(Advisor, ScenarioAndMemoryParsing) {
  EXPECT_EQ(parse_scenario("long-context"), Scenario::LongContext);
  EXPECT_NE(error_of([] { parse_scenario("fast"); }).find("--scenario must be"), std::string::npos);
  EXPECT_EQ(parse_memory_size("2GB"), 2.0 * (1 << 30));
  EXPECT_EQ(parse_memory_size("512 MiB"), 512.0 * (1 << 20));
  EXPECT_EQ(parse_memory_size("4096"), 4096.0);
  EXPECT_NE(error_of([] { parse_memory_size("lots"); }).find("is not a size"), std::string::npos);
  EXPECT_NE(error_of([] { parse_memory_size("3 parsecs"); }).find("unknown unit"), std::string::npos);
}

TEST(Advisor, TermsSumToTheScoreAndFollowTheWeights) {
  AdviceRequest r;
  r.seq = 1024;
  r.candidates = fixture();
  for (Scenario s : {Scenario::Training, Scenario::LongContext, Scenario::MemoryLimited, Scenario::Quality}) {
    r.scenario = s;
    for (const Ranked& x : rank_variants(r)) {
      if (x.rank == 0) continue;
      EXPECT_NEAR(x.speed + x.cache + x.memory + x.quality, x.score, 1e-12) << x.variant;
      for (double t : {x.speed, x.cache, x.memory, x.quality}) EXPECT_GE(t, 0) << x.variant;  // 0 = the best
    }
  }
  r.scenario = Scenario::Quality;  // weighs no cache and no memory
  for (const Ranked& x : rank_variants(r)) EXPECT_EQ(x.cache + x.memory, 0.0) << x.variant;
  r.scenario = Scenario::LongContext;  // mha's cache: 32 MiB against linear's 64 KiB = 9 doublings, weight 1
  for (const Ranked& x : rank_variants(r))
    if (x.variant == "mha") {
      EXPECT_NEAR(x.cache, 9.0, 1e-9);
    }
}
