#pragma once
// The scenario advisor's inputs, gathered on this machine (no LibTorch in this header): timings from bench
// samples given by the caller (a `bench --json` file, an earlier measurement) or measured now by the bench library,
// cache bytes from every layer's formula, weights, and validation losses (a shipped checkpoint trained with the
// variant, else the base checkpoint's loss plus the change the variant makes to its weights on a few validation
// windows). `attnscope advise` prints the result; the GUI's advisor panel runs it on a background thread.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "advisor.h"
#include "config.h"

namespace attnscope {

class Model;

struct AdviseSetup {
  Scenario scenario = Scenario::Quality;
  int64_t seq = 1024;
  double memory_bytes = 0;           // budget (0 = none)
  std::vector<BenchSample> samples;  // timings already known (any lengths; used by log-log interpolation)
  bool use_shipped = true;           // variants without samples: the shipped docs/bench.json, when this machine's
                                     // GEMM is within a factor 1.6 of the one recorded there (measured first, ~1 s)
  bool measure_missing = true;       // bench now every decodable variant still without two lengths or seq itself:
                                     // at seq up to 1024 tokens; past that at kScaleAt only when `curves` holds the
                                     // variant there and beyond (its curve scaled through that one measurement),
                                     // else at 512 and 1024 and extrapolated (log-log)
  std::vector<BenchSample> curves;   // another machine's results (time, peak, decode against length); use_shipped
                                     // adds the shipped docs/bench.json's even when its GEMM differs
  int repeats = 3;                   // measuring now: timed runs per variant
  int64_t eval_windows = 4;          // losses under the base weights: validation windows (0 = checkpoints only)
  std::string timing_source;         // where `samples` came from ("bench results F.json"), for the report
};

struct AdviceReport {
  AdviceRequest request;             // the candidates, with everything known about each
  std::vector<Ranked> ranked;        // rank_variants(request)
  std::vector<BenchSample> samples;  // the given samples plus those measured now
  std::string timing_source;         // one line: given, measured now (device, runs), or missing
  std::string base_variant;          // the base checkpoint's variant summary
  int64_t context = 0;               // its context (the windows the losses were measured on)
  const Candidate* candidate(const std::string& variant) const;  // nullptr when not a candidate
};

struct AdviseProgress {
  int done = 0, total = 0;  // steps finished / all (bench points, then loss evaluations)
  std::string what;         // the step starting now ("measuring gqa at 1024", "loss of linear")
};

// Where the shipped bench results are (installed: beside the models; the source tree: docs/bench.json); "" when
// this installation has none.
std::string shipped_bench_path();
// The lengths gather_advice measures a variant at for a question about seq tokens: {seq} up to 2048, else
// {512, 1024} (the advice extrapolates along the measured slope and says so: measuring at 1024 and 2048
// took 119 s for the 22 variants here, over the 60 s an answer may take).
std::vector<int64_t> advise_measure_lengths(int64_t seq);
// The one length a variant is measured at past 1024 tokens when a curve of it is known (AdviseSetup::curves): the
// 22 variants measured at 512 and 1024 took 89 s here, 66 processes each starting LibTorch; at 1024 alone 47 s.
constexpr int64_t kScaleAt = 1024;
// `curve`'s points of one variant (other than kScaleAt), scaled by what was measured at kScaleAt over what the curve
// holds there (time, peak and decode each by its own ratio); empty when the curve lacks kScaleAt or a longer point.
std::vector<BenchSample> scaled_curve(const std::vector<BenchSample>& curve, const BenchSample& measured);

// Validation losses of the checkpoints under assets/models trained with one variant on every layer and a dense
// MLP: variant -> (loss, "assets/models/NAME"). Where a variant has several, the one trained with the step budget
// most checkpoints share wins (a fair comparison), then the lowest loss. `like`: only checkpoints of that model's
// size (layers, width, heads, context) and position scheme, the ones comparable with variants of it.
std::map<std::string, std::pair<double, std::string>> shipped_losses(const ModelConfig* like = nullptr);

// Throws Error (bad setup, bench failure). `cancel` (optional) stops between steps: the report then holds what
// was gathered so far and `timing_source` says it was cancelled.
AdviceReport gather_advice(const std::shared_ptr<const Model>& base, const AdviseSetup& setup,
                           const std::function<void(const AdviseProgress&)>& progress = {},
                           const std::atomic<bool>* cancel = nullptr);

}  // namespace attnscope
