#pragma once
// Scenario advisor (`attnscope advise`): ranks attention variants for a use (training, long context, limited memory,
// quality) from measured latency and memory (`attnscope bench --json`), cache formulas and validation losses. No
// LibTorch here: the ranking follows from the numbers it is given, so it is tested with fixed measurements.
#include <cstdint>
#include <limits>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace attnscope {

enum class Scenario { Training, LongContext, MemoryLimited, Quality };
Scenario parse_scenario(const std::string& s);  // training|long-context|memory-limited|quality; throws Error
const char* scenario_name(Scenario s);
std::string scenario_goal(Scenario s);  // one line: what the ranking weighs
// "2GB", "1.5 GiB", "512M", "4096" (bytes): binary units (1 GB = 2^30 bytes here, as the bench reports MiB).
double parse_memory_size(const std::string& s);  // bytes; throws Error (the message names no flag)

// One measured (variant, length) of `attnscope bench` (status ok only).
struct BenchSample {
  std::string variant;
  int64_t length = 0;
  double median_ms = std::numeric_limits<double>::quiet_NaN();  // prefill of one layer
  double peak_mib = std::numeric_limits<double>::quiet_NaN();   // its peak memory above the baseline
  double decode_tokens_per_s = std::numeric_limits<double>::quiet_NaN();
  int64_t scaled_from = 0;  // 0: measured; else read off another machine's curve through this one's measurement here
};
// The ok points of a `bench --json` file. Throws Error naming what is missing.
std::vector<BenchSample> bench_samples_from_json(const nlohmann::json& j);

// A variant's measurements at the requested length: the bench point itself, log-log interpolation between the two
// lengths around it, or extrapolation from the two nearest (said in `how`). found = false: no point for the variant.
struct Timing {
  bool found = false;
  double prefill_ms = std::numeric_limits<double>::quiet_NaN();
  double peak_mib = std::numeric_limits<double>::quiet_NaN();
  double decode_tokens_per_s = std::numeric_limits<double>::quiet_NaN();
  std::string how;  // "measured at 1024", "interpolated 512-2048", "extrapolated from 256-512"
};
Timing timing_at(const std::vector<BenchSample>& samples, const std::string& variant, int64_t seq);

// Everything the ranking knows about one variant. NaN / -1: not known (the reason line says so).
struct Candidate {
  std::string variant;
  bool causal = true;           // false: sees future tokens, cannot be a decoder
  bool needs_kv_text = false;   // cross-attention: needs a second text
  Timing timing;                // one layer of the bench's shape at seq tokens
  int64_t cache_bytes = -1;     // KV cache / state at seq tokens, all layers, fp32 (formula)
  bool cache_constant = false;  // the cache stops growing with the sequence (window, recurrent state)
  int64_t weight_bytes = 0;     // model weights (fp32)
  double val_loss = std::numeric_limits<double>::quiet_NaN();  // nats/char
  std::string loss_source;  // where val_loss comes from ("checkpoint assets/models/mha", ...)
};

struct AdviceRequest {
  Scenario scenario = Scenario::Quality;
  int64_t seq = 1024;
  double memory_bytes = 0;  // budget (0 = none)
  std::vector<Candidate> candidates;
};

struct Ranked {
  std::string variant;
  int rank = 0;        // 1 = best; 0 = excluded
  double score = 0;    // lower is better (weighted log2 ratios and loss differences; see scenario_goal)
  std::string reason;  // one line: the terms that placed it, or why it is excluded
  // The score's terms (they sum to score): speed, cache, memory, quality; 0 where the scenario does not weigh it.
  double speed = 0, cache = 0, memory = 0, quality = 0;
};

// Eligible variants by ascending score (ties by name), then the excluded ones. Deterministic.
std::vector<Ranked> rank_variants(const AdviceRequest& r);

}  // namespace attnscope
