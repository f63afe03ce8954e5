// `attnscope extrapolate`: the next-character loss at every position of held-out windows longer than the training
// context, one curve per column (a shipped checkpoint or a variant under the one model policy), computed through the
// decoding caches chunk by chunk (attention/long_context.h). Shows which position schemes and patterns keep going
// past the context (ALiBi, windows, sinks) and which fall apart (RoPE without a window).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli_checks.h"
#include "cli_io.h"
#include "commands.h"
#include "error.h"
#include "long_columns.h"
#include "long_context.h"
#include "model_args.h"
#include "plot.h"

namespace attnscope {

using nlohmann::json;

struct ExtrapolateArgs {
  ModelArgs m;  // --model: the base the variant columns run on (default the bundled mha)
  std::string variants, corpus, models, json_path, plot_path;
  int64_t length = 2048, windows = 16;
};

namespace {

// Position ranges of the summary: the training context, then doublings up to the length.
std::vector<std::pair<int64_t, int64_t>> summary_ranges(int64_t context, int64_t length) {
  std::vector<std::pair<int64_t, int64_t>> r{{0, std::min(context, length)}};
  for (int64_t a = context; a < length; a *= 2) r.push_back({a, std::min(2 * a, length)});
  return r;
}

// The curve averaged over bins of `bin` positions (x: the bin's middle position), for a readable plot.
PlotSeries binned(const std::string& label, const ExtrapolationCurve& c, int64_t bin) {
  PlotSeries s;
  s.label = label;
  for (int64_t a = 0; a < c.length; a += bin) {
    const int64_t b = std::min(a + bin, c.length);
    s.x.push_back(0.5 * static_cast<double>(a + b - 1));
    s.y.push_back(c.mean_over(a, b));
  }
  return s;
}

void write_plot(const std::string& path, const std::vector<std::pair<std::string, ExtrapolationCurve>>& curves,
                int64_t length, int64_t windows, int64_t context) {
  const int64_t bin = std::max<int64_t>(1, (length + 63) / 64);  // 64 points a curve: per-position means are noisy
  PlotSpec p;
  p.title = "Loss by position past the training context (" + std::to_string(windows) + " held-out windows of " +
            std::to_string(length) + " characters" +
            (bin > 1 ? ", mean of " + std::to_string(bin) + " positions per point)" : ")");
  p.x_label = "position in the window (characters)";
  p.y_label = "next-character loss, nats";
  p.log_x = p.log_y = false;
  p.markers = false;
  p.x_marks.push_back({static_cast<double>(context), "training context (" + std::to_string(context) + ")"});
  for (const auto& [label, c] : curves) p.series.push_back(binned(label, c, bin));
  write_loglog_png(p, path);
}

}  // namespace

int cmd_extrapolate(const ExtrapolateArgs& a) {
  if (!a.json_path.empty()) check_output_dir(a.json_path);
  if (!a.plot_path.empty()) check_output_dir(a.plot_path);
  const std::vector<std::string> specs = session::split_column_list(a.variants);
  if (specs.empty()) throw Error("--variants needs at least one column, e.g. mha,mha_alibi,sliding_window,sinks");
  auto base = a.m.load();
  // Every column first: a bad name or a model that cannot reach --length fails before any window runs.
  std::vector<session::LongColumn> cols;
  for (const std::string& s : specs) {
    cols.push_back(session::long_column(*base, s, a.models));
    check_length(*cols.back().model, a.length + 1, s + ": a window of --length " + std::to_string(a.length));
  }
  const std::string text = read_text_file(a.corpus.empty() ? default_corpus_path() : a.corpus);
  const std::string valid = split_corpus(text).valid;
  std::vector<std::pair<std::string, ExtrapolationCurve>> curves;
  json out = {{"length", a.length},
              {"windows", a.windows},
              {"context", base->config().context},
              {"text", "held-out 10% of the corpus, non-overlapping windows from its start"},
              {"columns", json::array()}};
  for (const auto& c : cols) {
    auto tokens = a.m.encode(*c.model, valid);
    std::fprintf(stderr, "extrapolate: %s: %s\n", c.label.c_str(), c.where.c_str());
    ExtrapolationCurve curve = extrapolation_curve(*c.model, tokens, a.length, a.windows, [&](int64_t d, int64_t n) {
      std::fprintf(stderr, "extrapolate: %s: %lld/%lld windows\n", c.spec.c_str(), (long long)d, (long long)n);
    });
    json ranges = json::array();
    std::printf("%s  [%s]  %.1f s\n", c.label.c_str(), c.where.c_str(), curve.seconds);
    for (const auto& [lo, hi] : summary_ranges(curve.context, curve.length)) {
      const double v = curve.mean_over(lo, hi);
      std::printf("  positions %6lld..%-6lld  %.4f nats/char\n", (long long)lo, (long long)hi - 1, v);
      ranges.push_back({{"from", lo}, {"to", hi}, {"mean_loss", v}});
    }
    out["columns"].push_back({{"spec", c.spec},
                              {"label", c.label},
                              {"weights", c.where},
                              {"position", pos_kind_name(c.model->config().position)},
                              {"seconds", curve.seconds},
                              {"ranges", ranges},
                              {"mean_loss", curve.mean}});
    curves.push_back({c.spec, std::move(curve)});
  }
  if (!a.json_path.empty()) write_output(a.json_path, out.dump(1) + "\n");
  if (!a.plot_path.empty()) {
    write_plot(a.plot_path, curves, a.length, a.windows, base->config().context);
    std::fprintf(stderr, "extrapolate: wrote %s\n", a.plot_path.c_str());
  }
  return 0;
}

Command add_extrapolate(CLI::App& app) {
  auto a = std::make_shared<ExtrapolateArgs>();
  auto* c = app.add_subcommand(
      "extrapolate", "loss at every position of held-out windows longer than the training context, per column");
  a->m.add(c, false);
  c->add_option("--variants", a->variants,
                "columns, comma-separated: a shipped checkpoint (mha_alibi) or a variant with parameters "
                "(sinks:window=32) on --model")
      ->required();
  c->add_option("--length", a->length, "characters predicted per window (up to 32768)")->check(CLI::Range(2, 32768));
  c->add_option("--windows", a->windows, "held-out windows averaged")->check(CLI::Range(1, 4096));
  c->add_option("--json", a->json_path, "write every column's mean loss at each position (JSON)");
  c->add_option("--plot", a->plot_path, "write the loss-by-position curves (PNG), the training context marked");
  c->add_option("--corpus", a->corpus, "corpus file (default: the bundled Tiny Shakespeare; its last 10% is used)");
  c->add_option("--models", a->models, "folder of checkpoints the column names refer to (default assets/models)");
  return {c, [a] { return cmd_extrapolate(*a); }};
}

}  // namespace attnscope
