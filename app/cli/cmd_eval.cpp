// `attnscope eval`: validation loss (nats/char, bits/char) of one model on the held-out 10%; `eval --all`: every
// checkpoint of a folder evaluated now, next to what its training recorded and to the MHA checkpoint of the same
// training budget (the like-for-like comparison of app/session/model_policy.h).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli_checks.h"
#include "cli_io.h"
#include "commands.h"
#include "error.h"
#include "model_args.h"
#include "model_policy.h"
#include "plot.h"

namespace attnscope {

using nlohmann::json;

struct EvalArgs {
  ModelArgs m;
  std::string corpus;
  int64_t max_windows = 0;
  bool as_json = false;
  bool all = false;       // every checkpoint under assets/models (or --models DIR)
  std::string models;     // --all: the folder of checkpoints
  bool markdown = false;  // --all: the table as Markdown (the README's)
  std::string plot;       // --all: a PNG of every checkpoint's validation-loss curve (loss.csv)
};

namespace {

// The shipped comparison's order (issue 5), then any other checkpoint by name.
int shipped_order(const std::string& name) {
  static const char* const order[] = {
      "mha",     "mha_alibi",    "mha_learned", "mqa",    "gqa",       "mla",       "sliding_window",
      "strided", "bigbird",      "lsh",         "linear", "performer", "cosformer", "linformer_causal",
      "mta",     "differential", "mha_moe"};
  for (size_t i = 0; i < std::size(order); ++i)
    if (name == order[i]) return int(i);
  return 1000;
}

// (step, validation loss) rows of DIR/loss.csv ("step,train_loss,val_loss,lr,elapsed_s"); empty when unreadable.
std::vector<std::pair<double, double>> val_curve(const std::string& dir) {
  std::vector<std::pair<double, double>> out;
  std::ifstream in(dir + "/loss.csv");
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    double step = 0, train = 0, val = 0;
    if (std::sscanf(line.c_str(), "%lf,%lf,%lf", &step, &train, &val) == 3 && std::isfinite(val))
      out.push_back({step, val});
  }
  return out;
}

// The checkpoint folders (with a config.json) under root, in the shipped comparison's order.
std::vector<std::string> checkpoint_names(const std::string& root) {
  std::vector<std::string> dirs;
  std::error_code ec;
  for (const auto& d : std::filesystem::directory_iterator(root, ec))
    if (std::filesystem::is_regular_file(d.path() / "config.json", ec)) dirs.push_back(d.path().filename().string());
  if (ec) throw Error(root + ": cannot list the folder (" + ec.message() + ")");
  if (dirs.empty()) throw Error(root + ": no checkpoints (folders with config.json)");
  std::sort(dirs.begin(), dirs.end(), [](const std::string& x, const std::string& y) {
    return shipped_order(x) != shipped_order(y) ? shipped_order(x) < shipped_order(y) : x < y;
  });
  return dirs;
}

// One checkpoint evaluated now: its row of the table (without the comparison, added once all are evaluated).
json eval_row(const std::string& name, const std::string& dir, const EvalArgs& a, const std::string& valid_text) {
  auto model = Model::load(dir, a.m.device);
  auto valid = model->tokenizer().encode_or_throw(valid_text, parse_unknown_policy(a.m.unknown));
  const EvalResult r = model->evaluate(valid, a.max_windows);
  const json& t = model->meta();
  auto num = [&](const char* k) { return t.contains(k) && t[k].is_number() ? t[k].get<double>() : NAN; };
  std::string label = variant_label(*model);
  if (model->config().position != PosKind::Rope) label += ", " + std::string(pos_kind_name(model->config().position));
  if (model->config().moe_experts > 0)
    label += ", MoE " + std::to_string(model->config().moe_experts) + " experts top-" +
             std::to_string(model->config().moe_k);
  std::fprintf(stderr, "eval --all: %s %.4f nats/char\n", name.c_str(), r.loss);
  return {{"name", name},
          {"variant", label},
          {"parameters", model->parameter_count()},
          {"steps", t.value("steps", int64_t(0))},
          {"val_loss", r.loss},
          {"bits_per_char", r.bits},
          {"characters", r.characters},
          {"recorded_val_loss", num("final_val_loss")},
          {"tokens_per_s", num("tokens_per_s")},
          {"wall_time_s", num("wall_time_s")},
          {"causal", model_is_causal(*model)}};
}

// Adds "vs_mha" to every row: the MHA checkpoint of the same training budget (session::comparison_for), and this
// val loss minus that checkpoint's val loss from this run (null when none has the budget or it is not in `rows`).
void add_comparisons(json& rows, const std::string& root) {
  for (json& r : rows) {
    const std::string dir = root + "/" + r["name"].get<std::string>();
    const session::Comparison c = session::comparison_for(session::ModelSource{dir, true, false}, root);
    json ref = nullptr, delta = nullptr;
    std::error_code ec;
    for (const json& o : rows)
      if (c.same_budget && !c.dir.empty() &&
          std::filesystem::equivalent(c.dir, root + "/" + o["name"].get<std::string>(), ec)) {
        ref = o["name"];
        if (r["val_loss"].is_number() && o["val_loss"].is_number())
          delta = r["val_loss"].get<double>() - o["val_loss"].get<double>();
      }
    r["vs_mha"] = {{"reference", ref}, {"label", c.label}, {"same_budget", c.same_budget}, {"delta", delta}};
  }
}

std::string fixed(double v, int d) {
  if (!std::isfinite(v)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", d, v);
  return b;
}
// A row's number (NaN when missing or null).
double field(const json& r, const char* k) { return r.contains(k) && r[k].is_number() ? r[k].get<double>() : NAN; }
// The "vs MHA (same budget)" cell: "+0.0123", "-" without a same-budget reference, "reference" for the MHA
// checkpoint of its own size and position scheme (the bundled mha, mha_alibi, mha_learned: nothing to subtract).
std::string vs_mha_cell(const json& r) {
  if (r["vs_mha"]["reference"] == r["name"]) return "reference";
  const double d = field(r["vs_mha"], "delta");
  if (!std::isfinite(d)) return "-";
  char b[32];
  std::snprintf(b, sizeof b, "%+.4f", d);
  return b;
}

void print_markdown(const json& rows) {
  std::printf(
      "| checkpoint | variant | parameters | steps | val loss (nats/char) | bits/char | train tokens/s | wall time "
      "| vs MHA (same budget) |\n"
      "|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const json& r : rows)
    std::printf("| `%s` | %s | %lld | %lld | %s | %s | %s | %s | %s |\n", r["name"].get<std::string>().c_str(),
                r["variant"].get<std::string>().c_str(), (long long)r["parameters"].get<int64_t>(),
                (long long)r["steps"].get<int64_t>(), fixed(field(r, "val_loss"), 4).c_str(),
                fixed(field(r, "bits_per_char"), 4).c_str(), fixed(field(r, "tokens_per_s"), 0).c_str(),
                fmt_time(field(r, "wall_time_s")).c_str(), vs_mha_cell(r).c_str());
}

void print_text(const json& rows, int64_t max_windows) {
  std::printf("%-17s %-44s %9s %6s %9s %9s %9s %8s %8s %8s\n", "checkpoint", "variant", "params", "steps", "val loss",
              "bits/char", "recorded", "tok/s", "wall", "vs MHA");
  for (const json& r : rows)
    std::printf("%-17s %-44s %9lld %6lld %9s %9s %9s %8s %8s %8s\n", r["name"].get<std::string>().c_str(),
                r["variant"].get<std::string>().substr(0, 44).c_str(), (long long)r["parameters"].get<int64_t>(),
                (long long)r["steps"].get<int64_t>(), fixed(field(r, "val_loss"), 4).c_str(),
                fixed(field(r, "bits_per_char"), 4).c_str(), fixed(field(r, "recorded_val_loss"), 4).c_str(),
                fixed(field(r, "tokens_per_s"), 0).c_str(), fmt_time(field(r, "wall_time_s")).c_str(),
                vs_mha_cell(r).c_str());
  std::printf("val loss: evaluated now on %s of the held-out 10%%; recorded: at the end of training\n",
              max_windows > 0 ? ("the first " + std::to_string(max_windows) + " windows").c_str() : "all");
  std::printf(
      "vs MHA: val loss minus that of the MHA checkpoint of the same training budget (same size and position "
      "scheme), evaluated now; -: none has this budget\n");
}

// `eval --all`: every checkpoint under --models evaluated now on the held-out split, next to what its training
// recorded and to the MHA checkpoint of its budget.
int cmd_eval_all(const EvalArgs& a) {
  if (!a.m.model.empty() || !a.m.variant.empty() || !a.m.params.empty() || !a.m.layer_variants.empty())
    throw Error(
        "eval --all evaluates every checkpoint under --models: no --model, --variant, --param or --layer-variants");
  const std::string root = a.models.empty() ? assets_dir() + "/models" : a.models;
  const std::vector<std::string> dirs = checkpoint_names(root);
  if (!a.plot.empty()) check_output_dir(a.plot);
  const std::string text = read_text_file(a.corpus.empty() ? default_corpus_path() : a.corpus);
  const std::string valid_text = split_corpus(text).valid;
  json rows = json::array();
  PlotSpec plot;
  plot.title = "Validation loss while training (4 layers, d_model 128, 8 heads, context 256, batch 32)";
  plot.x_label = "training step";
  plot.y_label = "validation loss, nats/char";
  plot.log_x = plot.log_y = false;
  for (const std::string& name : dirs) {
    const std::string dir = root + "/" + name;
    rows.push_back(eval_row(name, dir, a, valid_text));
    PlotSeries ps;
    ps.label = name;
    for (const auto& [step, val] : val_curve(dir)) ps.x.push_back(step), ps.y.push_back(val);
    if (!ps.x.empty()) plot.series.push_back(ps);
  }
  add_comparisons(rows, root);
  if (a.as_json)
    std::cout << json({{"models", root}, {"checkpoints", rows}}).dump(2) << "\n";
  else if (a.markdown)
    print_markdown(rows);
  else
    print_text(rows, a.max_windows);
  if (!a.plot.empty()) {
    if (plot.series.empty()) throw Error("eval --all --plot: no checkpoint has a loss.csv with validation losses");
    write_loglog_png(plot, a.plot);
    std::fprintf(stderr, "eval --all: wrote %s (%zu curves)\n", a.plot.c_str(), plot.series.size());
  }
  return 0;
}

}  // namespace

int cmd_eval(const EvalArgs& a) {
  if (a.all) return cmd_eval_all(a);
  if (a.markdown || !a.plot.empty() || !a.models.empty()) throw Error("--markdown, --plot and --models go with --all");
  auto model = a.m.load();
  const std::string text = read_text_file(a.corpus.empty() ? default_corpus_path() : a.corpus);
  auto valid = model->tokenizer().encode_or_throw(split_corpus(text).valid, parse_unknown_policy(a.m.unknown));
  EvalResult r = model->evaluate(valid, a.max_windows);
  if (a.as_json) {
    std::cout << json({{"variant", variant_label(*model)},
                       {"mode", model->mode()},
                       {"loss_nats_per_char", r.loss},
                       {"bits_per_char", r.bits},
                       {"characters", r.characters},
                       {"seconds", r.seconds},
                       {"causal", model_is_causal(*model)}})
                     .dump(2)
              << "\n";
  } else {
    std::printf("%s [%s]: validation loss %.4f nats/char, %.4f bits/char (%lld characters, %.1f s)\n",
                variant_label(*model).c_str(), model->mode().c_str(), r.loss, r.bits, (long long)r.characters,
                r.seconds);
    if (!model_is_causal(*model))
      std::printf("note: non-causal: this variant sees future tokens, so this is not a valid next-character loss\n");
  }
  return 0;
}

Command add_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  auto* c = app.add_subcommand("eval", "validation loss (nats/char and bits/char) on the held-out 10%");
  a->m.add(c);
  c->add_option("--corpus", a->corpus, "corpus file (default: the bundled Tiny Shakespeare)");
  c->add_option("--max-windows", a->max_windows, "evaluate only the first N context windows (0 = all)")
      ->check(kNonNegative);
  c->add_flag("--json", a->as_json, "machine-readable output");
  c->add_flag("--all", a->all, "every checkpoint under --models: the comparison table (evaluated now)");
  c->add_option("--models", a->models, "--all: folder of checkpoints (default: the bundled assets/models)");
  c->add_flag("--markdown", a->markdown, "--all: the table as Markdown");
  c->add_option("--plot", a->plot, "--all: write a PNG of every checkpoint's validation-loss curve");
  return {c, [a] { return cmd_eval(*a); }};
}

}  // namespace attnscope
