#include "advisor.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>

#include "error.h"

namespace attnscope {

namespace {

const double kNaN = std::numeric_limits<double>::quiet_NaN();

// Weights of the score terms (lower score = better). speed, cache and memory are log2 ratios to the best eligible
// variant (1.0 = one doubling); quality is nats/char above the best loss.
struct Weights {
  double speed, cache, memory, quality;
};
Weights weights_of(Scenario s) {
  switch (s) {
    case Scenario::Training: return {1.0, 0.0, 0.25, 4.0};
    case Scenario::LongContext: return {1.0, 1.0, 0.0, 2.0};
    case Scenario::MemoryLimited: return {0.5, 0.0, 2.0, 2.0};
    case Scenario::Quality: return {0.25, 0.0, 0.0, 8.0};
  }
  return {0, 0, 0, 0};
}

std::string fixed(double v, int digits) {
  char b[48];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

std::string bytes_text(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return u == 0 ? fixed(b, 0) + " B" : fixed(b, 1) + " " + units[u];
}

double log2_ratio(double v, double best) { return std::log2(std::max(v, 1e-12) / std::max(best, 1e-12)); }

// The value at x of the log-log line through (x0, y0) and (x1, y1).
double loglog(double x0, double y0, double x1, double y1, double x) {
  if (!(y0 > 0) || !(y1 > 0) || x0 == x1) return y0;
  const double slope = std::log(y1 / y0) / std::log(x1 / x0);
  return y0 * std::pow(x / x0, slope);
}

}  // namespace

Scenario parse_scenario(const std::string& s) {
  if (s == "training") return Scenario::Training;
  if (s == "long-context") return Scenario::LongContext;
  if (s == "memory-limited") return Scenario::MemoryLimited;
  if (s == "quality") return Scenario::Quality;
  throw Error("--scenario must be training, long-context, memory-limited or quality, not '" + s + "'");
}

const char* scenario_name(Scenario s) {
  switch (s) {
    case Scenario::Training: return "training";
    case Scenario::LongContext: return "long-context";
    case Scenario::MemoryLimited: return "memory-limited";
    case Scenario::Quality: return "quality";
  }
  return "?";
}

std::string scenario_goal(Scenario s) {
  switch (s) {
    case Scenario::Training:
      return "fast forward passes at this length first (1 point per doubling of prefill time), then quality (4 points "
             "per nat/char), a little memory (0.25 per doubling)";
    case Scenario::LongContext:
      return "prefill time (1 point per doubling) and KV-cache size at this length (1 per doubling) equally, then "
             "quality (2 points per nat/char)";
    case Scenario::MemoryLimited:
      return "must fit the budget; total memory (2 points per doubling: one layer's prefill peak + KV cache + "
             "weights), quality (2 per nat/char), speed (0.5 per doubling)";
    case Scenario::Quality:
      return "validation loss first (8 points per nat/char), speed as a tie-breaker (0.25 per doubling)";
  }
  return "";
}

double parse_memory_size(const std::string& text) {
  std::string s;
  for (char c : text)
    if (!std::isspace(static_cast<unsigned char>(c)))
      s += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    throw Error("'" + text + "' is not a size (e.g. 2GB, 512MiB)");
  }
  std::string unit = s.substr(used);
  if (unit.size() > 1 && unit.back() == 'B') unit.pop_back();  // GB -> G
  if (unit.size() > 1 && unit.back() == 'I') unit.pop_back();  // GI -> G
  double scale = 0;
  if (unit.empty() || unit == "B")
    scale = 1;
  else if (unit == "K")
    scale = 1024.0;
  else if (unit == "M")
    scale = 1024.0 * 1024;
  else if (unit == "G")
    scale = 1024.0 * 1024 * 1024;
  else if (unit == "T")
    scale = 1024.0 * 1024 * 1024 * 1024;
  else
    throw Error("unknown unit in '" + text + "' (use B, KB, MB, GB or TB)");
  if (!(v > 0) || !std::isfinite(v)) throw Error("a memory size must be positive, got '" + text + "'");
  return v * scale;
}

std::vector<BenchSample> bench_samples_from_json(const nlohmann::json& j) {
  if (!j.is_object() || !j.contains("points") || !j["points"].is_array())
    throw Error("bench results: expected an object with an array 'points' (from `attnscope bench --json`)");
  auto num = [](const nlohmann::json& p, const char* k) {
    return p.contains(k) && p[k].is_number() ? p[k].get<double>() : kNaN;
  };
  std::vector<BenchSample> out;
  for (const auto& p : j["points"]) {
    if (!p.is_object() || !p.contains("variant") || !p["variant"].is_string() || !p.contains("length") ||
        !p["length"].is_number_integer())
      throw Error("bench results: every point needs a string 'variant' and an integer 'length'");
    if (p.value("status", "") != "ok") continue;
    BenchSample s;
    s.variant = p["variant"].get<std::string>();
    s.length = p["length"].get<int64_t>();
    s.median_ms = num(p, "median_ms");
    s.peak_mib = num(p, "peak_mib");
    s.decode_tokens_per_s = num(p, "decode_tokens_per_s");
    if (std::isfinite(s.median_ms)) out.push_back(s);
  }
  return out;
}

Timing timing_at(const std::vector<BenchSample>& samples, const std::string& variant, int64_t seq) {
  std::vector<const BenchSample*> pts;
  for (const auto& s : samples)
    if (s.variant == variant) pts.push_back(&s);
  std::sort(pts.begin(), pts.end(), [](auto* a, auto* b) { return a->length < b->length; });
  Timing t;
  if (pts.empty()) return t;
  t.found = true;
  for (const auto* p : pts)
    if (p->length == seq) {
      t.prefill_ms = p->median_ms;
      t.peak_mib = p->peak_mib;
      t.decode_tokens_per_s = p->decode_tokens_per_s;
      t.how = p->scaled_from > 0 ? "measured at " + std::to_string(p->scaled_from) + ", scaled to " +
                                       std::to_string(seq) + " along the shipped curve"
                                 : "measured at " + std::to_string(seq);
      return t;
    }
  if (pts.size() == 1) {  // one length only: scale by nothing, say so
    t.prefill_ms = pts[0]->median_ms;
    t.peak_mib = pts[0]->peak_mib;
    t.decode_tokens_per_s = pts[0]->decode_tokens_per_s;
    t.how = "only measured at " + std::to_string(pts[0]->length);
    return t;
  }
  // The two points around seq, or the two nearest when seq is outside the measured range.
  size_t hi = 1;
  while (hi + 1 < pts.size() && pts[hi]->length < seq) ++hi;
  const BenchSample &a = *pts[hi - 1], &b = *pts[hi];
  const double x0 = double(a.length), x1 = double(b.length), x = double(seq);
  t.prefill_ms = loglog(x0, a.median_ms, x1, b.median_ms, x);
  t.peak_mib = loglog(x0, a.peak_mib, x1, b.peak_mib, x);
  t.decode_tokens_per_s = loglog(x0, a.decode_tokens_per_s, x1, b.decode_tokens_per_s, x);
  const bool inside = seq > a.length && seq < b.length;
  t.how = std::string(inside ? "interpolated " : "extrapolated from ") + std::to_string(a.length) + "-" +
          std::to_string(b.length);
  if (const int64_t from = std::max(a.scaled_from, b.scaled_from))
    t.how += " (measured at " + std::to_string(from) + ", scaled along the shipped curve)";
  return t;
}

std::vector<Ranked> rank_variants(const AdviceRequest& r) {
  const Weights w = weights_of(r.scenario);
  const double MiB = 1024.0 * 1024.0;
  // Total memory a decoder of this variant needs at seq: one layer's prefill peak + the cache + the weights. A
  // variant without a measured peak is counted with the largest measured one (none measured: 0).
  double worst_peak = 0;
  for (const auto& c : r.candidates)
    if (std::isfinite(c.timing.peak_mib)) worst_peak = std::max(worst_peak, c.timing.peak_mib);
  auto need = [&](const Candidate& c) {
    return (std::isfinite(c.timing.peak_mib) ? c.timing.peak_mib : worst_peak) * MiB +
           double(std::max<int64_t>(c.cache_bytes, 0)) + double(c.weight_bytes);
  };
  std::vector<Ranked> out, excluded;
  std::vector<const Candidate*> ok;
  for (const auto& c : r.candidates) {
    Ranked x;
    x.variant = c.variant;
    if (!c.causal)
      x.reason = "excluded: sees future tokens (non-causal), so it cannot train or run as a decoder";
    else if (c.needs_kv_text)
      x.reason = "excluded: needs a second text for its keys and values (cross-attention)";
    else if (r.memory_bytes > 0 && need(c) > r.memory_bytes)
      x.reason = "excluded: needs " + bytes_text(need(c)) + " (prefill peak" +
                 (std::isfinite(c.timing.peak_mib) ? "" : " not measured: the largest measured") +
                 " + cache + weights) > budget " + bytes_text(r.memory_bytes);
    if (!x.reason.empty())
      excluded.push_back(x);
    else
      ok.push_back(&c);
  }
  // Best and worst known values among the eligible variants (unknown values count as the worst known).
  double best_ms = INFINITY, worst_ms = 0, best_cache = INFINITY, worst_cache = 0, best_need = INFINITY;
  double best_loss = INFINITY, worst_loss = -INFINITY;
  for (const Candidate* c : ok) {
    if (std::isfinite(c->timing.prefill_ms)) {
      best_ms = std::min(best_ms, c->timing.prefill_ms);
      worst_ms = std::max(worst_ms, c->timing.prefill_ms);
    }
    if (c->cache_bytes >= 0) {
      best_cache = std::min(best_cache, double(std::max<int64_t>(c->cache_bytes, 1)));
      worst_cache = std::max(worst_cache, double(std::max<int64_t>(c->cache_bytes, 1)));
    }
    best_need = std::min(best_need, need(*c));
    if (std::isfinite(c->val_loss)) {
      best_loss = std::min(best_loss, c->val_loss);
      worst_loss = std::max(worst_loss, c->val_loss);
    }
  }
  const bool any_ms = std::isfinite(best_ms), any_loss = std::isfinite(best_loss),
             any_cache = std::isfinite(best_cache);
  for (const Candidate* c : ok) {
    Ranked x;
    x.variant = c->variant;
    std::vector<std::string> parts;
    double score = 0;
    // speed
    if (!any_ms) {
      parts.push_back("timings missing");
    } else {
      const bool known = std::isfinite(c->timing.prefill_ms);
      const double ms = known ? c->timing.prefill_ms : worst_ms;
      x.speed = w.speed * log2_ratio(ms, best_ms);
      parts.push_back(known ? "prefill " + fixed(ms, 2) + " ms (" + fixed(ms / best_ms, 1) + "x fastest, " +
                                  c->timing.how + ")"
                            : "prefill not measured (counted as the slowest)");
    }
    // cache
    if (c->cache_bytes >= 0) {
      if (w.cache > 0 && any_cache)
        x.cache = w.cache * log2_ratio(double(std::max<int64_t>(c->cache_bytes, 1)), best_cache);
      parts.push_back("cache " + bytes_text(double(c->cache_bytes)) + (c->cache_constant ? " (constant)" : " (grows)"));
    } else if (w.cache > 0 && any_cache) {
      x.cache = w.cache * log2_ratio(worst_cache, best_cache);
      parts.push_back("cache unknown (counted as the largest)");
    }
    // memory
    if (w.memory > 0) x.memory = w.memory * log2_ratio(need(*c), best_need);
    if (r.scenario == Scenario::MemoryLimited || r.memory_bytes > 0)
      parts.push_back("needs " + bytes_text(need(*c)) +
                      (r.memory_bytes > 0 ? " of " + bytes_text(r.memory_bytes) : std::string()) +
                      (std::isfinite(c->timing.peak_mib) ? ""
                       : worst_peak > 0                  ? " (prefill peak not measured: counted as the largest)"
                                                         : " (no prefill peak measured)"));
    // quality
    if (!any_loss) {
      parts.push_back("no validation loss known");
    } else if (std::isfinite(c->val_loss)) {
      x.quality = w.quality * (c->val_loss - best_loss);
      parts.push_back("loss " + fixed(c->val_loss, 3) + " (+" + fixed(c->val_loss - best_loss, 3) + ", " +
                      c->loss_source + ")");
    } else {
      x.quality = w.quality * (worst_loss - best_loss);
      parts.push_back("loss unknown (counted as the worst, " + fixed(worst_loss, 3) + ")");
    }
    score = x.speed + x.cache + x.memory + x.quality;
    x.score = score;
    x.reason = "score " + fixed(score, 2) + ": ";
    for (size_t i = 0; i < parts.size(); ++i) x.reason += (i ? " | " : "") + parts[i];
    out.push_back(x);
  }
  std::sort(out.begin(), out.end(), [](const Ranked& a, const Ranked& b) {
    return a.score != b.score ? a.score < b.score : a.variant < b.variant;
  });
  for (size_t i = 0; i < out.size(); ++i) out[i].rank = static_cast<int>(i + 1);
  std::sort(excluded.begin(), excluded.end(), [](const Ranked& a, const Ranked& b) { return a.variant < b.variant; });
  out.insert(out.end(), excluded.begin(), excluded.end());
  return out;
}

}  // namespace attnscope
