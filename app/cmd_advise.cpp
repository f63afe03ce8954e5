#include "cmd_advise.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "advisor.h"
#include "bench.h"
#include "engine.h"
#include "error.h"
#include "registry.h"

namespace attnscope {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Validation losses of the shipped checkpoints trained with one variant on every layer and a dense MLP:
// variant -> (loss, directory). The lowest loss wins when several exist.
std::map<std::string, std::pair<double, std::string>> shipped_losses() {
  std::map<std::string, std::pair<double, std::string>> out;
  std::error_code ec;
  const fs::path root = fs::path(assets_dir()) / "models";
  if (!fs::is_directory(root, ec)) return out;
  for (const auto& d : fs::directory_iterator(root, ec)) {
    const fs::path cfg = d.path() / "config.json";
    if (!fs::is_regular_file(cfg, ec)) continue;
    try {
      json j = json::parse(read_text_file(cfg.string(), 16u << 20));
      const json& m = j.at("model");
      if (m.value("moe_experts", 0) != 0 || !j.contains("training") || !j["training"].contains("final_val_loss")) continue;
      std::string v;
      for (const auto& l : m.at("layers")) {
        const std::string lv = l.at("variant").get<std::string>();
        v = v.empty() || v == lv ? lv : "mixed";
      }
      const double loss = j["training"]["final_val_loss"].get<double>();
      if (v.empty() || v == "mixed" || !std::isfinite(loss)) continue;
      const std::string where = "assets/models/" + d.path().filename().string();
      if (!out.count(v) || loss < out[v].first) out[v] = {loss, where};
    } catch (const std::exception&) {
      continue;  // not a readable checkpoint config: no loss from it
    }
  }
  return out;
}

std::string mib(double bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f MiB", bytes / (1024.0 * 1024.0));
  return b;
}

}  // namespace

void add_advise_options(CLI::App* c, AdviseArgs& a) {
  c->add_option("--scenario", a.scenario, "training|long-context|memory-limited|quality")
      ->check(CLI::IsMember({"training", "long-context", "memory-limited", "quality"}));
  c->add_option("--seq", a.seq, "sequence length in tokens")->check(CLI::Range(int64_t(2), int64_t(1) << 20));
  c->add_option("--memory", a.memory, "memory budget, e.g. 2GB or 512MiB (binary units)");
  c->add_option("--bench", a.bench, "results of `attnscope bench --json F` (default: measure now at --seq)");
  c->add_flag("--no-measure", a.no_measure, "without --bench: rank without timings instead of measuring");
  c->add_option("--repeats", a.repeats, "measuring now: timed runs per variant")->check(CLI::Range(1, 100));
  c->add_option("--eval-windows", a.eval_windows,
                "validation windows for the losses of variants without a checkpoint (0 = checkpoints only)")
      ->check(CLI::Range(int64_t(0), int64_t(1000)));
  c->add_option("--model", a.model, "base checkpoint (default: the bundled assets/models/mha)");
  c->add_flag("--json", a.as_json, "machine-readable output");
}

int cmd_advise(const AdviseArgs& a) {
  AdviceRequest req;
  req.scenario = parse_scenario(a.scenario);
  req.seq = a.seq;
  req.memory_bytes = a.memory.empty() ? 0 : parse_memory_size(a.memory);
  auto base = Model::load(a.model.empty() ? default_model_dir() : a.model, "cpu");
  const std::string base_variant = base->config().variant_summary();

  // Timings: the given bench file, or one bench point per decodable variant now.
  std::vector<BenchSample> samples;
  std::string timing_source;
  std::vector<std::string> decodable;
  for (const auto& v : variant_registry())
    if (v.causal && !v.needs_kv_text) decodable.push_back(v.name);
  if (!a.bench.empty()) {
    try {
      samples = bench_samples_from_json(json::parse(read_text_file(a.bench)));
    } catch (const json::exception& e) {
      throw Error(a.bench + ": not valid JSON (" + std::string(e.what()) + ")");
    }
    timing_source = "bench results " + a.bench;
  } else if (a.no_measure) {
    timing_source = "timings missing (--no-measure): give --bench F.json from `attnscope bench --json F`";
  } else {
    BenchOptions o;
    o.variants = decodable;
    o.lengths = {a.seq};
    o.repeats = a.repeats;
    o.decode_tokens = 8;
    std::fprintf(stderr, "advise: measuring %zu variants at %lld tokens (reuse a `bench --json` file with --bench)\n",
                 o.variants.size(), (long long)a.seq);
    BenchReport rep = run_bench(o, [](const BenchProgress& p) {
      if (!p.variant.empty()) std::fprintf(stderr, "  [%d/%d] %s\n", p.done + 1, p.total, p.variant.c_str());
    });
    for (const auto& p : rep.points)
      if (p.status == "ok")
        samples.push_back({p.variant, p.length, p.median_ms, p.peak_mib, p.decode_tokens_per_s});
    timing_source = "measured now (" + rep.device + ", " + std::to_string(a.repeats) + " runs at " +
                    std::to_string(a.seq) + " tokens, one layer d_model 128, 8 heads)";
  }

  // Losses: a shipped checkpoint of the variant, else the base model's checkpoint loss plus the difference the
  // variant makes to the base weights on the first eval_windows validation windows.
  auto shipped = shipped_losses();
  std::vector<int64_t> valid;
  double base_eval = NAN;
  const double base_loss = base->meta().value("final_val_loss", NAN);
  if (a.eval_windows > 0 && std::isfinite(base_loss)) {
    valid = base->tokenizer().encode_or_throw(split_corpus(read_text_file(default_corpus_path())).valid,
                                              UnknownPolicy::Skip);
    base_eval = base->evaluate(valid, a.eval_windows).loss;
  }

  for (const auto& v : variant_registry()) {
    Candidate c;
    c.variant = v.name;
    c.causal = v.causal;
    c.needs_kv_text = v.needs_kv_text;
    c.timing = timing_at(samples, v.name, a.seq);
    if (v.causal && !v.needs_kv_text) {
      try {
        auto m = v.name == base_variant ? base : base->with_variant(v.name, {});
        c.cache_bytes = cache_formula_bytes(*m, a.seq, a.seq, 4);
        c.cache_constant = cache_formula_bytes(*m, 2 * a.seq, 2 * a.seq, 4) == c.cache_bytes;
        c.weight_bytes = m->parameter_count() * 4;
        if (shipped.count(v.name)) {
          c.val_loss = shipped[v.name].first;
          c.loss_source = "checkpoint " + shipped[v.name].second;
        } else if (std::isfinite(base_eval)) {
          c.val_loss = base_loss + m->evaluate(valid, a.eval_windows).loss - base_eval;
          c.loss_source = base_variant + " weights, " + std::to_string(a.eval_windows) + " windows";
        }
      } catch (const Error& e) {
        c.loss_source = std::string("not runnable on the base model: ") + e.what();
      }
    }
    req.candidates.push_back(c);
  }
  std::vector<Ranked> ranked = rank_variants(req);

  if (a.as_json) {
    json rows = json::array();
    for (const auto& r : ranked) {
      const Candidate* c = nullptr;
      for (const auto& x : req.candidates)
        if (x.variant == r.variant) c = &x;
      auto num = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
      rows.push_back({{"rank", r.rank}, {"variant", r.variant}, {"score", r.score}, {"reason", r.reason},
                      {"prefill_ms", num(c->timing.prefill_ms)}, {"peak_mib", num(c->timing.peak_mib)},
                      {"timing", c->timing.how}, {"cache_bytes", c->cache_bytes}, {"cache_constant", c->cache_constant},
                      {"val_loss", num(c->val_loss)}, {"loss_source", c->loss_source}});
    }
    std::cout << json({{"scenario", scenario_name(req.scenario)}, {"goal", scenario_goal(req.scenario)},
                       {"seq", a.seq}, {"memory_bytes", req.memory_bytes}, {"timings", timing_source},
                       {"ranking", rows}})
                     .dump(2)
              << "\n";
    return 0;
  }
  std::printf("scenario %s at %lld tokens%s\n  goal: %s\n  timings: %s\n  losses: checkpoints in assets/models, "
              "else %s's checkpoint loss + the change measured under each variant (context %lld)\n\n",
              scenario_name(req.scenario), (long long)a.seq,
              req.memory_bytes > 0 ? (", budget " + mib(req.memory_bytes)).c_str() : "",
              scenario_goal(req.scenario).c_str(), timing_source.c_str(), base_variant.c_str(),
              (long long)base->config().context);
  for (const auto& r : ranked)
    std::printf("%3s  %-17s %s\n", r.rank > 0 ? std::to_string(r.rank).c_str() : "-", r.variant.c_str(),
                r.reason.c_str());
  return 0;
}

}  // namespace attnscope
