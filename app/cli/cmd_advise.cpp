#include "cmd_advise.h"

#include <cmath>
#include <memory>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "advise_run.h"
#include "bench.h"
#include "commands.h"
#include "engine.h"
#include "error.h"

namespace attnscope {

using nlohmann::json;

namespace {

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
  c->add_option(
      "--bench", a.bench,
      "results of `attnscope bench --json F` (default: the shipped docs/bench.json when this machine's GEMM "
      "is within a factor 1.6 of its own, and the variants it lacks measured now: at --seq up to 1024, else at 512 "
      "and 1024 and extrapolated)");
  c->add_flag("--no-measure", a.no_measure, "without --bench: rank without timings instead of reading or measuring");
  c->add_option("--repeats", a.repeats, "measuring now: timed runs per variant")->check(CLI::Range(1, 100));
  c->add_option("--eval-windows", a.eval_windows,
                "validation windows for the losses of variants without a checkpoint (0 = checkpoints only)")
      ->check(CLI::Range(int64_t(0), int64_t(1000)));
  c->add_option("--model", a.model, "base checkpoint (default: the bundled assets/models/mha)");
  c->add_flag("--json", a.as_json, "machine-readable output");
}

int cmd_advise(const AdviseArgs& a) {
  AdviseSetup setup;
  setup.scenario = parse_scenario(a.scenario);
  setup.seq = a.seq;
  try {
    setup.memory_bytes = a.memory.empty() ? 0 : parse_memory_size(a.memory);
  } catch (const Error& e) {
    throw Error(std::string("--memory: ") + e.what());
  }
  setup.repeats = a.repeats;
  setup.eval_windows = a.eval_windows;
  std::shared_ptr<const Model> base = Model::load(a.model.empty() ? default_model_dir() : a.model, "cpu");
  // Every measurement in a fresh process of this program: a fork of this one, which has loaded and run a model,
  // inherits its BLAS thread state, and the child's GEMM measured 127 GFLOP/s against a fresh process's 201.
  bench_children_exec(executable_path());

  // Timings: the given bench file, or one bench point per decodable variant now (unless --no-measure).
  if (!a.bench.empty()) {
    try {
      setup.samples = bench_samples_from_json(json::parse(read_text_file(a.bench)));
    } catch (const json::exception& e) {
      throw Error(a.bench + ": not valid JSON (" + std::string(e.what()) + ")");
    }
    setup.timing_source = "bench results " + a.bench;
    setup.measure_missing = false;
    setup.use_shipped = false;
  } else if (a.no_measure) {
    setup.timing_source = "timings missing (--no-measure): give --bench F.json from `attnscope bench --json F`";
    setup.measure_missing = false;
    setup.use_shipped = false;
  } else {
    std::string at;
    for (int64_t T : advise_measure_lengths(a.seq)) at += (at.empty() ? "" : " and ") + std::to_string(T);
    if (a.seq > kScaleAt) at = std::to_string(kScaleAt) + " (scaled along docs/bench.json's curves; else " + at + ")";
    std::fprintf(stderr,
                 "advise: timings from the shipped docs/bench.json when this machine's GEMM matches its own; variants "
                 "without them measured now at %s tokens (reuse a `bench --json` file with --bench)\n",
                 at.c_str());
  }
  const AdviceReport rep = gather_advice(base, setup, [](const AdviseProgress& p) {
    if (!p.what.empty()) std::fprintf(stderr, "  [%d/%d] %s\n", p.done + 1, p.total, p.what.c_str());
  });
  const AdviceRequest& req = rep.request;
  const std::vector<Ranked>& ranked = rep.ranked;
  const std::string& timing_source = rep.timing_source;
  const std::string& base_variant = rep.base_variant;

  if (a.as_json) {
    json rows = json::array();
    for (const auto& r : ranked) {
      const Candidate* c = rep.candidate(r.variant);
      auto num = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
      rows.push_back({{"rank", r.rank},
                      {"variant", r.variant},
                      {"score", r.score},
                      {"reason", r.reason},
                      {"prefill_ms", num(c->timing.prefill_ms)},
                      {"peak_mib", num(c->timing.peak_mib)},
                      {"timing", c->timing.how},
                      {"cache_bytes", c->cache_bytes},
                      {"cache_constant", c->cache_constant},
                      {"val_loss", num(c->val_loss)},
                      {"loss_source", c->loss_source}});
    }
    std::cout << json({{"scenario", scenario_name(req.scenario)},
                       {"goal", scenario_goal(req.scenario)},
                       {"seq", a.seq},
                       {"memory_bytes", req.memory_bytes},
                       {"timings", timing_source},
                       {"ranking", rows}})
                     .dump(2)
              << "\n";
    return 0;
  }
  std::printf(
      "scenario %s at %lld tokens%s\n  goal: %s\n  timings: %s\n  losses: checkpoints in assets/models, "
      "else %s's checkpoint loss + the change measured under each variant (context %lld)\n\n",
      scenario_name(req.scenario), (long long)a.seq,
      req.memory_bytes > 0 ? (", budget " + mib(req.memory_bytes)).c_str() : "", scenario_goal(req.scenario).c_str(),
      timing_source.c_str(), base_variant.c_str(), (long long)rep.context);
  for (const auto& r : ranked)
    std::printf("%3s  %-17s %s\n", r.rank > 0 ? std::to_string(r.rank).c_str() : "-", r.variant.c_str(),
                r.reason.c_str());
  return 0;
}

Command add_advise(CLI::App& app) {
  auto a = std::make_shared<AdviseArgs>();
  auto* c = app.add_subcommand("advise", "rank the variants for a scenario, with the reason for every place");
  add_advise_options(c, *a);
  return {c, [a] { return cmd_advise(*a); }};
}

}  // namespace attnscope
