#include "cmd_bench.h"
#include "cli_checks.h"

#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <memory>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "engine.h"
#include "error.h"
#include "plot.h"
#include "registry.h"
#include "safetensors.h"  // write_file_atomic
#include "scene.h"        // parse_column_spec

namespace attnscope {

namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= s.size()) {
    const size_t end = std::min(s.find(',', at), s.size());
    if (end > at) out.push_back(s.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

std::vector<int64_t> parse_lengths(const std::string& s) {
  std::vector<int64_t> out;
  for (const auto& item : split_commas(s)) {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size()) throw Error("--lengths: '" + item + "' is not a whole number");
    if (!out.empty() && v <= out.back()) throw Error("--lengths must be strictly ascending");
    out.push_back(v);
  }
  if (out.empty()) throw Error("--lengths: give at least one length");
  return out;
}

std::string duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char b[32];
  std::snprintf(b, sizeof b, "%dm%02ds", int(s) / 60, int(s) % 60);
  return b;
}

std::string num(double v, const char* fmt) {
  if (!std::isfinite(v)) return "-";
  char b[48];
  std::snprintf(b, sizeof b, fmt, v);
  return b;
}

nlohmann::json finite_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

std::string csv_quote(const std::string& s) {
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

nlohmann::json report_json(const BenchReport& r) {
  nlohmann::json points = nlohmann::json::array(), slopes = nlohmann::json::array();
  for (const auto& p : r.points)
    points.push_back({{"variant", p.variant},
                      {"length", p.length},
                      {"status", p.status},
                      {"note", p.note},
                      {"median_ms", finite_or_null(p.median_ms)},
                      {"p10_ms", finite_or_null(p.p10_ms)},
                      {"p90_ms", finite_or_null(p.p90_ms)},
                      {"peak_mib", finite_or_null(p.peak_mib)},
                      {"decode_tokens_per_s", finite_or_null(p.decode_tokens_per_s)},
                      {"decode_note", p.decode_note},
                      {"gflops", finite_or_null(p.gflops)}});
  for (const auto& s : r.slopes)
    slopes.push_back({{"variant", s.variant},
                      {"slope", finite_or_null(s.slope)},
                      {"from", s.from},
                      {"to", s.to},
                      {"points", s.points}});
  nlohmann::json kernels = nlohmann::json::array();
  for (const auto& k : r.kernels)
    kernels.push_back({{"path", k.path},
                       {"median_ms", finite_or_null(k.median_ms)},
                       {"gflops", finite_or_null(k.gflops)},
                       {"note", k.note}});
  return {{"device", r.device},
          {"layer", {{"d_model", r.d_model}, {"heads", r.heads}, {"weights", "random, registry default parameters"}}},
          {"batch", r.options.batch},
          {"repeats", r.options.repeats},
          {"warmup", 1},
          {"decode_tokens", r.options.decode_tokens},
          {"gemm_2048_gflops", finite_or_null(r.gemm_gflops)},
          {"memory_budget_mib", r.memory_budget_mib},
          {"points", points},
          {"slopes", slopes},
          {"kernel_comparison", {{"length", r.compare_length}, {"paths", kernels}}}};
}

std::string report_csv(const BenchReport& r) {
  std::string s =
      "variant,length,status,median_ms,p10_ms,p90_ms,peak_mib,decode_tokens_per_s,gflops,note,decode_note\n";
  for (const auto& p : r.points) {
    s += p.variant + "," + std::to_string(p.length) + "," + p.status + "," + num(p.median_ms, "%.4f") + "," +
         num(p.p10_ms, "%.4f") + "," + num(p.p90_ms, "%.4f") + "," + num(p.peak_mib, "%.2f") + "," +
         num(p.decode_tokens_per_s, "%.1f") + "," + num(p.gflops, "%.2f") + "," + csv_quote(p.note) + "," +
         csv_quote(p.decode_note) + "\n";
  }
  return s;
}

// GFLOP/s of the exact and local variants (useful FLOPs: 8 T d^2 + 4 d per computed pair) against the GEMM.
void print_gflops(const BenchReport& r) {
  bool any = false;
  for (const auto& p : r.points) any = any || std::isfinite(p.gflops);
  if (!any) return;
  std::printf(
      "\nGFLOP/s (8 T d^2 projections + 4 d per computed pair, causal pairs T (T + 1) / 2) against the "
      "GEMM's %.1f\n%-17s",
      r.gemm_gflops, "variant");
  for (int64_t T : r.options.lengths) std::printf(" %9lld", (long long)T);
  std::printf("\n");
  for (const auto& v : r.options.variants) {
    bool has = false;
    for (const auto& p : r.points) has = has || (p.variant == v && std::isfinite(p.gflops));
    if (!has) continue;
    std::printf("%-17s", v.c_str());
    for (const auto& p : r.points)
      if (p.variant == v) std::printf(" %9s", num(p.gflops, "%.1f").c_str());
    std::printf("\n");
  }
}

void print_report(const BenchReport& r) {
  std::printf("one attention layer: d_model %lld, %lld heads, batch %lld, random weights, default parameters, %s\n",
              (long long)r.d_model, (long long)r.heads, (long long)r.options.batch, r.device.c_str());
  std::printf(
      "prefill: median (p10-p90) of %d runs after a warm-up; decode: %lld cached steps after a T-token prefill\n",
      r.options.repeats, (long long)r.options.decode_tokens);
  std::printf("GEMM 2048 x 2048 fp32 (LibTorch's BLAS): %.1f GFLOP/s\n\n", r.gemm_gflops);
  std::printf("%-17s %7s %10s %21s %10s %13s  %s\n", "variant", "T", "median ms", "p10-p90 ms", "peak MiB",
              "decode tok/s", "note");
  for (const auto& p : r.points) {
    const std::string range = num(p.p10_ms, "%.2f") + "-" + num(p.p90_ms, "%.2f");
    const std::string decode = std::isfinite(p.decode_tokens_per_s) ? num(p.decode_tokens_per_s, "%.0f") : "n/a";
    std::string note = p.note;
    if (p.status == "ok" && !std::isfinite(p.decode_tokens_per_s) && p.decode_note != "n/a (non-causal)")
      note = p.decode_note;
    if (p.status != "ok") note = p.status + ": " + p.note;
    std::printf("%-17s %7lld %10s %21s %10s %13s  %s\n", p.variant.c_str(), (long long)p.length,
                num(p.median_ms, "%.2f").c_str(), p.status == "ok" ? range.c_str() : "-",
                num(p.peak_mib, "%.1f").c_str(), p.status == "ok" ? decode.c_str() : "-", note.c_str());
  }

  // Median ms as a variant x length matrix, with the fitted exponent.
  std::printf("\nmedian prefill ms\n%-17s", "variant");
  for (int64_t T : r.options.lengths) std::printf(" %9lld", (long long)T);
  std::printf("   measured\n");
  std::map<std::string, const BenchSlope*> slope;
  for (const auto& s : r.slopes) slope[s.variant] = &s;
  for (const auto& v : r.options.variants) {
    std::printf("%-17s", v.c_str());
    for (const auto& p : r.points)
      if (p.variant == v)
        std::printf(" %9s", p.status == "ok"        ? num(p.median_ms, "%.2f").c_str()
                            : p.status == "skipped" ? "skip"
                                                    : "FAIL");
    if (slope.count(v))
      std::printf("   O(n^%.2f) over %lld-%lld", slope[v]->slope, (long long)slope[v]->from, (long long)slope[v]->to);
    std::printf("\n");
  }
  print_gflops(r);
  if (!r.kernels.empty()) {
    std::printf("\ncausal attention alone at T=%lld (q, k, v [1, %lld, T, %lld], no projections), median of 5\n",
                (long long)r.compare_length, (long long)r.heads, (long long)(r.d_model / r.heads));
    for (const auto& k : r.kernels)
      std::printf("%-35s %10s ms %8s GFLOP/s  %s\n", k.path.c_str(), num(k.median_ms, "%.2f").c_str(),
                  num(k.gflops, "%.1f").c_str(), k.note.c_str());
  }
}

void write_plot(const BenchReport& r, const std::string& path) {
  PlotSpec spec;
  spec.title = "prefill latency of one attention layer (d_model " + std::to_string(r.d_model) + ", " +
               std::to_string(r.heads) + " heads, batch " + std::to_string(r.options.batch) + ", " + r.device + ")";
  spec.x_label = "sequence length T (tokens)";
  spec.y_label = "median prefill latency (ms)";
  for (int64_t T : r.options.lengths) spec.x_ticks.push_back(double(T));
  std::map<std::string, const BenchSlope*> slope;
  for (const auto& s : r.slopes) slope[s.variant] = &s;
  for (const auto& v : r.options.variants) {
    PlotSeries s;
    s.label = v + (slope.count(v) ? " (n^" + num(slope[v]->slope, "%.2f") + ")" : "");
    for (const auto& p : r.points)
      if (p.variant == v && p.status == "ok") {
        s.x.push_back(double(p.length));
        s.y.push_back(p.median_ms);
      }
    if (!s.x.empty()) spec.series.push_back(s);
  }
  write_loglog_png(spec, path);
}

}  // namespace

int cmd_bench(const BenchArgs& a) {
  if (a.interactive && a.long_text) throw Error("give either --interactive or --long, not both");
  if (a.window && !a.interactive) throw Error("--window goes with --interactive");
  if (a.interactive) return bench_interactive(a);
  if (a.long_text) return bench_long(a);
  for (const std::string* out : {&a.json, &a.csv, &a.plot}) check_output_dir(*out);
  BenchOptions o = a.o;
  o.lengths = parse_lengths(a.lengths);
  if (a.variants.empty()) {
    for (const auto& v : variant_registry()) o.variants.push_back(v.name);
  } else {
    o.variants = split_commas(a.variants);
    for (const auto& v : o.variants) get_variant(v);  // unknown names fail before any work
  }
  const bool tty = isatty(fileno(stderr));
  BenchReport r = run_bench(o, [&](const BenchProgress& p) {
    if (p.variant.empty())
      std::fprintf(stderr, "%sbench: %d points in %s%s\n", tty ? "\r" : "", p.total, duration(p.elapsed_s).c_str(),
                   tty ? "                              " : "");
    else
      std::fprintf(stderr, "%s[%d/%d] %s T=%lld | elapsed %s | ETA %s%s", tty ? "\r" : "", p.done + 1, p.total,
                   p.variant.c_str(), (long long)p.length, duration(p.elapsed_s).c_str(), duration(p.eta_s).c_str(),
                   tty ? "          " : "\n");
    std::fflush(stderr);
  });
  print_report(r);
  std::fflush(stdout);
  if (!a.json.empty()) write_file_atomic(a.json, report_json(r).dump(2) + "\n");
  if (!a.csv.empty()) write_file_atomic(a.csv, report_csv(r));
  if (!a.plot.empty()) write_plot(r, a.plot);
  return 0;
}

Command add_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  auto* c = app.add_subcommand("bench", "latency, peak memory and decode speed of one attention layer over length");
  c->add_option("--variants", a->variants, "comma-separated variants (default: all)");
  c->add_option("--lengths", a->lengths, "comma-separated ascending sequence lengths");
  c->add_option("--batch", a->o.batch, "sequences per forward")->check(CLI::Range(1, 1024));
  c->add_option("--device", a->o.device, "auto|cpu|cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  c->add_option("--repeats", a->o.repeats, "timed prefill runs per point (after one warm-up)")
      ->check(CLI::Range(1, 1000));
  c->add_option("--decode-tokens", a->o.decode_tokens, "timed cached decoding steps (0 = skip decoding)")
      ->check(CLI::Range(0, 100000));
  c->add_option("--json", a->json, "write the results as JSON");
  c->add_option("--csv", a->csv, "write the results as CSV");
  c->add_option("--plot", a->plot, "write a log-log PNG of latency over length");
  a->o.compare_at = -1;
  c->add_option("--compare-at", a->o.compare_at,
                "T of the kernel comparison (fused, LibTorch's SDPA, naive; -1: the largest length <= 4096, 0: none)")
      ->check(CLI::Range(int64_t(-1), int64_t(1) << 20));
  c->add_flag(
      "--window", a->window,
      "--interactive: also run the window (1920x1080, the same columns) and report its drawn frames' time while "
      "the pointer moves over the heatmaps (frame_ms) and its first heatmap (first_heatmap_ms); needs a "
      "display, e.g. xvfb-run -a -s \"-screen 0 1920x1080x24\"");
  c->add_flag("--interactive", a->interactive,
              "time the window's recompute instead: every column's forward with all its maps, one after another");
  c->add_option("--column", a->columns,
                "--interactive: a column like the window's (repeatable; default: "
                "mha, gqa:groups=2, mqa, sliding_window:window=32, linear, mla)");
  c->add_option("--chars", a->chars, "--interactive: characters of held-out text")
      ->check(CLI::Range(int64_t(2), int64_t(1) << 20));
  c->add_option("--model", a->model, "--interactive, --long: checkpoint (default: the bundled assets/models/mha)");
  c->add_option("--torch-threads", a->torch_threads, "--interactive: LibTorch intra-op threads (0: as the window)")
      ->check(CLI::Range(0, 256));
  c->add_option("--column-threads", a->column_threads,
                "--interactive: columns computed at once (0: as the window; 1: one after another)")
      ->check(CLI::Range(0, 256));
  c->add_option("--blas-threads", a->blas_threads, "--interactive: OpenBLAS threads (0: as the window)")
      ->check(CLI::Range(0, 256));
  c->add_flag("--long", a->long_text,
              "time pooled heatmaps of a long held-out text instead: per column (--variants, default "
              "sliding_window,mha_alibi,longformer) first_picture_ms, zoom_ms, peak_mib");
  c->add_option("--length", a->long_length, "--long: characters of held-out text")->check(CLI::Range(2, 32768));
  c->add_option("--layer", a->long_layer, "--long: the layer pooled")->check(CLI::Range(0, 1023));
  c->add_option("--head", a->long_head, "--long: the head pooled")->check(CLI::Range(0, 1023));
  c->add_option("--pixels", a->pixels, "--long: the picture's pixels per side")->check(CLI::Range(1, 8192));
  c->add_option("--zoom", a->zoom, "--long: characters per side of the zoomed region")->check(CLI::Range(1, 32768));
  return {c, [a] { return cmd_bench(*a); }};
}

}  // namespace attnscope
