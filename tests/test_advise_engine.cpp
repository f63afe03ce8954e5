// Engine tests of issue 11 (LibTorch): per-layer mixing, painted masks on the trained weights, the MoE feed-forward.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "advise_run.h"
#include "custom_mask.h"
#include "engine_impl.h"
#include "error.h"
#include "nn.h"
#include "registry.h"
#include "test_util.h"

using namespace attnscope;
using attnscope::testing_util::error_of;
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

template <class A, class B>  // two float vectors (logits, or the planes' UninitAlloc storage)
double max_diff(const A& a, const B& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, double(std::abs(a[i] - b[i])));
  return m;
}

}  // namespace

// ------------------------------------------------------------------------------------------ mixing

TEST(MixedLayers, DecodeEqualsPrefill) {
  auto base = model();
  for (const char* spec :
       {"sliding_window:window=5,sliding_window:window=5,mha,mha", "linear,gqa:groups=2,sinks:sinks=2,window=20,mla",
        "custom,tiled:br=16,bc=16,mqa,block_local:block=8"}) {
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
  EXPECT_EQ(a.planes->mask, b.planes->mask);  // both dense [L, H, T, T]
  EXPECT_LT(max_diff(a.planes->attn, b.planes->attn), 1e-5);
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
          if (r > 0) {
            EXPECT_GE(a.routing_gate[size_t((l * 25 + t) * k + r - 1)], a.routing_gate[size_t((l * 25 + t) * k + r)]);
          }
        }
        EXPECT_EQ(int64_t(used.size()), k) << "layer " << l << " token " << t;  // k distinct experts
      }
    if (k == 4) {
      EXPECT_EQ(used_overall.size(), 4u);
    }
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

// ------------------------------------------------------------------------------------------ the advisor's inputs

TEST(AdviseGather, CandidatesFromTheModelAndTheGivenTimings) {
  std::shared_ptr<Model> base = model();
  base->set_meta({{"final_val_loss", 2.5}});
  AdviseSetup s;
  s.scenario = Scenario::LongContext;
  s.seq = 40;
  s.measure_missing = false;
  s.use_shipped = false;
  s.eval_windows = 1;
  s.samples = {{"mha", 40, 8.0, 30.0, 100}, {"sliding_window", 40, 2.0, 5.0, 400}};
  s.timing_source = "fixed";
  int last_done = -1, total = 0;
  const AdviceReport rep = gather_advice(base, s, [&](const AdviseProgress& p) {
    EXPECT_GE(p.done, last_done);
    last_done = p.done;
    total = p.total;
  });
  EXPECT_EQ(last_done, total);  // the last report: everything done
  EXPECT_EQ(rep.timing_source, "fixed");
  EXPECT_EQ(rep.base_variant, "mha");
  EXPECT_EQ(rep.ranked.size(), variant_registry().size());
  const Candidate* mha = rep.candidate("mha");
  const Candidate* win = rep.candidate("sliding_window");
  ASSERT_TRUE(mha && win);
  EXPECT_EQ(mha->timing.how, "measured at 40");
  EXPECT_EQ(mha->cache_bytes, cache_formula_bytes(*base, 40, 40, 4));
  EXPECT_FALSE(mha->cache_constant);
  EXPECT_EQ(mha->weight_bytes, base->parameter_count() * 4);
  // the shipped checkpoints are another model size: no loss from them, every loss is the base's loss + the change
  // the variant makes on its weights (none for the base's own variant)
  EXPECT_NEAR(mha->val_loss, 2.5, 1e-9);
  EXPECT_EQ(mha->loss_source, "mha weights, 1 windows");
  const Candidate* block = rep.candidate("block_local");
  EXPECT_TRUE(std::isfinite(block->val_loss));
  EXPECT_EQ(block->loss_source, "mha weights, 1 windows");
  EXPECT_EQ(win->timing.how, "measured at 40");
  EXPECT_FALSE(rep.candidate("linformer")->causal);
  EXPECT_FALSE(rep.candidate("tiled")->timing.found);  // not given, not measured
  for (const Ranked& r : rep.ranked)
    if (r.variant == "linformer") {
      EXPECT_EQ(r.rank, 0);
    }
}

TEST(AdviseGather, ShippedLossesOnlyFromCheckpointsOfTheSameSize) {
  const auto all = shipped_losses();
  ASSERT_TRUE(all.count("mha"));
  std::shared_ptr<Model> bundled = Model::load(default_model_dir(), "cpu");
  const auto same = shipped_losses(&bundled->config());
  ASSERT_TRUE(same.count("mha"));
  EXPECT_TRUE(same.count("sliding_window"));
  EXPECT_TRUE(shipped_losses(&model()->config()).empty());  // d 32: nothing shipped of that size
  // The oracle, from the configs: the budget most same-size RoPE checkpoints share; a variant trained on it
  // keeps its recorded loss; one trained only on another budget b gets loss - MHA(b) + MHA(common).
  struct Cfg {
    std::string variant;
    int64_t steps;
    double loss;
  };
  std::map<std::string, Cfg> cfg;  // by folder ("assets/models/NAME")
  std::map<int64_t, int> budgets;
  for (const auto& d : std::filesystem::directory_iterator(assets_dir() + "/models")) {
    const auto j = nlohmann::json::parse(read_text_file((d.path() / "config.json").string()));
    const ModelConfig m = config_from_json(j["model"]);
    if (!m.same_size(bundled->config()) || m.position != bundled->config().position || m.moe_experts) continue;
    const Cfg c{m.variant_summary(), j["training"].value("steps", int64_t(0)),
                j["training"].value("final_val_loss", 0.0)};
    cfg["assets/models/" + d.path().filename().string()] = c;
    ++budgets[c.steps];
  }
  int64_t common = 0;
  for (const auto& [steps, n] : budgets)
    if (n > budgets[common]) common = steps;
  std::map<int64_t, double> mha_at;
  for (const auto& [where, c] : cfg)
    if (c.variant == "mha" && (!mha_at.count(c.steps) || where == "assets/models/mha")) mha_at[c.steps] = c.loss;
  EXPECT_NEAR(same.at("mha").first, mha_at.at(common), 1e-6);  // the fair reference: MHA at the common budget
  for (const auto& [v, lw] : same) {
    SCOPED_TRACE(v + " from " + lw.second);
    const Cfg& c = cfg.at(lw.second.substr(0, lw.second.find(' ')));
    EXPECT_EQ(c.variant, v);
    if (c.steps == common)
      EXPECT_NEAR(lw.first, c.loss, 1e-6);
    else
      EXPECT_NEAR(lw.first, c.loss - mha_at.at(c.steps) + mha_at.at(common), 1e-6);
  }
}

TEST(AdviseGather, MeasuresOnlyWhatIsMissingAndStopsWhenCancelled) {
  std::shared_ptr<Model> base = model();
  AdviseSetup s;
  s.seq = 64;
  s.eval_windows = 0;
  s.use_shipped = false;  // (docs/bench.json would answer for tiled)
  // every decodable variant measured around 64 except tiled: only tiled is to be measured
  for (const auto& v : variant_registry())
    if (v.causal && !v.needs_kv_text && v.name != "tiled")
      s.samples.push_back({v.name, v.name == "mha" ? 32 : 64, 1.0, 1.0, 1.0}),
          s.samples.push_back({v.name, 128, 2.0, 2.0, 1.0});
  std::atomic<bool> cancel{true};  // cancelled before the first step: nothing measured
  int total = -1;
  const AdviceReport rep = gather_advice(
      base, s, [&](const AdviseProgress& p) { total = p.total; }, &cancel);
  EXPECT_EQ(total, 1);
  EXPECT_NE(rep.timing_source.find("cancelled: 1 variants not measured"), std::string::npos) << rep.timing_source;
  EXPECT_EQ(rep.candidate("mha")->timing.how, "interpolated 32-128");
  EXPECT_FALSE(rep.candidate("tiled")->timing.found);
  EXPECT_NE(error_of([&] {
              AdviseSetup bad = s;
              bad.seq = 1;
              gather_advice(base, bad);
            }).find("at least 2 tokens"),
            std::string::npos);
}

// A curve measured elsewhere, scaled through one point measured here: time, peak and decode each by its own ratio.
TEST(AdviseGather, ScalesACurveThroughOneMeasurement) {
  const std::vector<BenchSample> curve = {
      {"mha", 512, 2, 10, 400}, {"mha", 1024, 4, 20, 200}, {"mha", 4096, 32, 80, 50}, {"gqa", 4096, 1, 1, 1}};
  const std::vector<BenchSample> out = scaled_curve(curve, {"mha", 1024, 8, 10, 100});
  ASSERT_EQ(out.size(), 2u);  // 512 and 4096 of mha; not 1024 itself, not gqa's
  EXPECT_EQ(out[0].length, 512);
  EXPECT_DOUBLE_EQ(out[0].median_ms, 4);  // x2
  EXPECT_DOUBLE_EQ(out[1].median_ms, 64);
  EXPECT_DOUBLE_EQ(out[1].peak_mib, 40);             // x0.5
  EXPECT_DOUBLE_EQ(out[1].decode_tokens_per_s, 25);  // x0.5
  EXPECT_EQ(out[1].scaled_from, 1024);
  EXPECT_TRUE(scaled_curve(curve, {"gqa", 1024, 1, 1, 1}).empty()) << "no point at 1024";
  EXPECT_TRUE(scaled_curve({{"mha", 512, 1, 1, 1}, {"mha", 1024, 2, 2, 2}}, {"mha", 1024, 1, 1, 1}).empty())
      << "nothing longer than 1024 to scale to";
  // read off the scaled points: the label says which point was measured here
  std::vector<BenchSample> samples = out;
  samples.push_back({"mha", 1024, 8, 10, 100});
  EXPECT_EQ(timing_at(samples, "mha", 4096).how, "measured at 1024, scaled to 4096 along the shipped curve");
  EXPECT_DOUBLE_EQ(timing_at(samples, "mha", 4096).prefill_ms, 64);
}

// Past 1024 tokens a missing variant is measured at 512 and 1024 only, and its timing at seq is read off the line
// through them, which the report says; the shipped results answer when this machine's GEMM matches theirs.
TEST(AdviseGather, MeasuresShortLengthsAndExtrapolates) {
  EXPECT_EQ(advise_measure_lengths(512), std::vector<int64_t>{512});
  EXPECT_EQ(advise_measure_lengths(1024), std::vector<int64_t>{1024});
  EXPECT_EQ(advise_measure_lengths(8192), (std::vector<int64_t>{512, 1024}));
  std::shared_ptr<Model> base = model();
  AdviseSetup s;
  s.seq = 8192;
  s.eval_windows = 0;
  s.repeats = 1;
  s.use_shipped = false;
  for (const auto& v : variant_registry())
    if (v.causal && !v.needs_kv_text && v.name != "sliding_window")
      s.samples.push_back({v.name, 4096, 1.0, 1.0, 1.0}), s.samples.push_back({v.name, 8192, 2.0, 2.0, 1.0});
  const AdviceReport rep = gather_advice(base, s);
  const Candidate* sw = rep.candidate("sliding_window");
  ASSERT_NE(sw, nullptr);
  EXPECT_EQ(sw->timing.how, "extrapolated from 512-1024");
  EXPECT_GT(sw->timing.prefill_ms, 0);
  EXPECT_NE(rep.timing_source.find("at 512 and 1024 tokens"), std::string::npos) << rep.timing_source;
  EXPECT_NE(rep.timing_source.find("extrapolated to 8192"), std::string::npos) << rep.timing_source;

  // with a curve of it (another machine's results): measured at 1024 only, the curve scaled through that point
  AdviseSetup sc = s;
  for (int64_t L : {512, 1024, 2048, 4096})
    sc.curves.push_back({"sliding_window", L, double(L) / 100, double(L) / 10, 1e6 / double(L)});
  const AdviceReport r3 = gather_advice(base, sc);
  const Candidate* sw3 = r3.candidate("sliding_window");
  ASSERT_NE(sw3, nullptr);
  EXPECT_EQ(sw3->timing.how, "extrapolated from 2048-4096 (measured at 1024, scaled along the shipped curve)");
  std::vector<int64_t> measured_here;  // the sliding_window samples not read off the curve
  for (const BenchSample& x : r3.samples)
    if (x.variant == "sliding_window" && x.scaled_from == 0) measured_here.push_back(x.length);
  EXPECT_EQ(measured_here, std::vector<int64_t>{1024});
  EXPECT_NE(r3.timing_source.find("1 at 1024 tokens, scaled to 8192 along docs/bench.json's curves"), std::string::npos)
      << r3.timing_source;

  // the shipped results: used for every variant when the GEMMs agree (nothing measured), else refused by name
  AdviseSetup sh;
  sh.seq = 8192;
  sh.eval_windows = 0;
  sh.measure_missing = false;
  const AdviceReport r2 = gather_advice(base, sh);
  if (shipped_bench_path().empty()) GTEST_SKIP() << "no docs/bench.json in this installation";
  EXPECT_NE(r2.timing_source.find("docs/bench.json"), std::string::npos) << r2.timing_source;
  if (r2.timing_source.find("not used") == std::string::npos) {
    EXPECT_EQ(r2.candidate("mha")->timing.how, "extrapolated from 2048-4096") << r2.timing_source;
  } else {
    EXPECT_FALSE(r2.candidate("mha")->timing.found);
  }
}
