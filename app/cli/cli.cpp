#include "cli.h"

#include "cmd_advise.h"
#include "cli_checks.h"
#include "cmd_bench.h"
#include "cmd_kv.h"
#include "cmd_render.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "engine.h"
#include "model_policy.h"
#include "error.h"
#include "npy.h"
#include "plot.h"
#include "registry.h"
#include "train.h"
#if ATTNSCOPE_GUI
#include "gui/gui.h"
#endif

namespace attnscope {

using nlohmann::json;

namespace {

// Options shared by the subcommands that run a model.
struct ModelArgs {
  std::string model, device = "auto", variant, unknown = "error", layer_variants, mask_file;
  std::vector<std::string> params;
  bool convert = false;

  void add(CLI::App* c, bool with_variant = true) {
    c->add_option("--model", model, "checkpoint directory (default: the bundled assets/models/mha)");
    c->add_option("--device", device, "auto|cpu|cuda (auto = CUDA when this LibTorch has it)")
        ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
    if (with_variant) {
      c->add_option("--variant", variant, "attention variant on every layer (default: the checkpoint's own)");
      c->add_option("--param", params, "variant parameter NAME=VALUE (repeatable); see `attnscope variants`");
      c->add_flag("--convert", convert,
                  "convert the --model checkpoint to --variant even when a checkpoint trained with that variant is "
                  "shipped (by default the trained one runs, as in the window)");
      c->add_option("--layer-variants", layer_variants,
                    "one variant per layer, comma-separated, each VARIANT or VARIANT:k=v (a further k=v continues "
                    "it), e.g. \"sliding_window:window=32,sliding_window:window=32,mha,mha\"");
      c->add_option("--mask-file", mask_file,
                    "the painted mask of the custom variant: rows of 0/1 (row i = query i; '#' lines are comments)");
    }
    c->add_option("--unknown", unknown, "characters outside the vocabulary: error|skip|replace")
        ->check(CLI::IsMember({"error", "skip", "replace"}));
  }

  std::shared_ptr<Model> load() const {
    auto m = Model::load(model.empty() ? default_model_dir() : model, device);
    if (!layer_variants.empty()) {
      if (!variant.empty() || !params.empty())
        throw Error("give either --layer-variants or --variant/--param, not both");
      return with_mask(*m, parse_layer_variants(layer_variants, m->config().n_layer));
    }
    if (variant == "custom" || (variant.empty() && !mask_file.empty())) {
      if (variant.empty() && m->config().variant_summary() != "custom")
        throw Error("--mask-file needs --variant custom (or custom entries in --layer-variants)");
      if (!params.empty()) throw Error("the custom variant has no --param: its mask comes from --mask-file");
      ModelConfig cfg = m->config();
      cfg.set_all_layers("custom", {});
      return with_mask(*m, cfg.layers);
    }
    if (!mask_file.empty()) throw Error("--mask-file needs --variant custom (or custom entries in --layer-variants)");
    if (variant.empty() && params.empty()) return m;
    std::string v = variant.empty() ? m->config().variant_summary() : variant;
    if (v == "mixed") throw Error("--param needs --variant: the checkpoint mixes variants across layers");
    const VariantInfo& info = get_variant(v);
    ParamValues given;
    for (const auto& kv : params) {
      auto p = parse_param(info.params, v, kv);
      given[p.first] = p.second;
    }
    // The one model policy (model_policy.h): the checkpoint trained with the variant when one is shipped, else
    // this one converted; the same choice as the window's column and `render`.
    return session::column_model(*m, v, given, convert);
  }
  // The model under `layers`, the --mask-file painted on every custom layer.
  std::shared_ptr<Model> with_mask(const Model& m, std::vector<LayerSpec> layers) const {
    bool any_custom = false;
    if (!mask_file.empty()) {
      const CustomMask mask = parse_mask_text(read_text_file(mask_file, 64u << 20));
      for (auto& l : layers)
        if (l.variant == "custom") {
          l.mask = mask;
          any_custom = true;
        }
      if (!any_custom) throw Error("--mask-file: no layer uses the custom variant");
    }
    return m.with_layers(layers);
  }
  std::vector<int64_t> encode(const Model& m, const std::string& text) const {
    return m.tokenizer().encode_or_throw(text, parse_unknown_policy(unknown));
  }
};

bool model_is_causal(const Model& m) {
  for (const auto& l : m.config().layers)
    if (!get_variant(l.variant).causal) return false;
  return true;
}

std::string variant_label(const Model& m) {
  const auto& l = m.config().layers[0];
  std::string s = m.config().variant_summary();
  if (s == "mixed") {
    std::string per;
    for (const auto& x : m.config().layers) per += (per.empty() ? "" : ",") + x.variant;
    return "mixed (" + per + ")";
  }
  if (s == "custom" && !l.mask.empty())
    return "custom (painted " + std::to_string(l.mask.n) + "x" + std::to_string(l.mask.n) + ", " +
           std::to_string(l.mask.allowed_pairs()) + " pairs)";
  const VariantInfo& v = get_variant(s);
  std::string p;
  for (const auto& spec : v.params)
    p += (p.empty() ? "" : ", ") + spec.name + "=" + format_param(spec, l.params.at(spec.name));
  return p.empty() ? s : s + " (" + p + ")";
}

void write_output(const std::string& path, const std::string& bytes) {
  if (path.empty() || path == "-") {
    std::fwrite(bytes.data(), 1, bytes.size(), stdout);
    std::fflush(stdout);
  } else {
    write_file_atomic(path, bytes);
  }
}

json variant_json(const VariantInfo& v) {
  json params = json::array();
  for (const auto& p : v.params) {
    json j = {{"name", p.name},
              {"type", param_type_name(p.type)},
              {"default", format_param(p, p.def)},
              {"tooltip", p.tooltip},
              {"changes_weights", p.changes_weights}};
    if (p.type == ParamType::Choice) j["choices"] = p.choices;
    else if (p.type != ParamType::Bool) {
      j["min"] = p.min;
      j["max"] = p.max;
      j["step"] = p.step;
    }
    params.push_back(j);
  }
  return {{"name", v.name},        {"family", v.family},         {"description", v.description},
          {"citation", v.citation}, {"causal", v.causal},         {"needs_kv_text", v.needs_kv_text},
          {"signed_display", v.signed_display}, {"cache_per_token", v.cache_formula}, {"params", params},
          {"explain", {{"formula", v.explain.formula}, {"marked_params", v.explain.marked_params()},
                       {"time", v.explain.time}, {"memory", v.explain.memory}, {"when", v.explain.when}}}};
}

int cmd_explain(const std::string& name, bool as_json) {
  const VariantInfo& v = get_variant(name);
  if (as_json) {
    std::cout << variant_json(v).dump(2) << "\n";
    return 0;
  }
  std::string sliders;
  for (const auto& p : v.explain.marked_params()) sliders += (sliders.empty() ? "" : ", ") + p;
  std::cout << v.name << "  [" << v.family << ", " << (v.causal ? "causal" : "NON-CAUSAL: sees future tokens") << "]\n"
            << "  " << v.description << "\n  " << v.citation << "\n\n"
            << "  formula  " << v.explain.formula << "\n"
            << (sliders.empty() ? "" : "           sliders in {braces}: " + sliders + "\n")
            << "  time     " << v.explain.time << "\n"
            << "  memory   " << v.explain.memory << "\n"
            << "  cache    " << v.cache_formula << " per token per layer (b = bytes per element)\n"
            << "  when     " << v.explain.when << "\n";
  for (const auto& p : v.params)
    std::cout << "  {" << p.name << "} " << p.tooltip << " (default " << format_param(p, p.def) << ")\n";
  return 0;
}

int cmd_variants(bool as_json) {
  if (as_json) {
    json a = json::array();
    for (const auto& v : variant_registry()) a.push_back(variant_json(v));
    std::cout << a.dump(2) << "\n";
    return 0;
  }
  for (const auto& v : variant_registry()) {
    std::cout << v.name << "  [" << v.family << (v.causal ? "" : ", NON-CAUSAL: sees future tokens") << "]\n  "
              << v.description << "\n  " << v.citation << "\n  cache per token per layer: " << v.cache_formula << "\n";
    for (const auto& p : v.params) {
      std::cout << "  --param " << p.name << "=";
      if (p.type == ParamType::Choice) {
        for (size_t i = 0; i < p.choices.size(); ++i) std::cout << (i ? "|" : "") << p.choices[i];
      } else if (p.type == ParamType::Bool) {
        std::cout << "true|false";
      } else {
        std::cout << format_param(p, p.min) << ".." << format_param(p, p.max);
      }
      std::cout << " (default " << format_param(p, p.def) << (p.changes_weights ? ", changes weights" : "") << ")\n      "
                << p.tooltip << "\n";
    }
    std::cout << "\n";
  }
  return 0;
}

struct AttendArgs {
  ModelArgs m;
  std::string text, text_file, kv_text, kv_text_file, format = "csv", out;
  int layer = -1, head = -1;
  int repeat = 1;
};

std::string text_arg(const std::string& text, const std::string& file, const char* what, bool required) {
  if (!text.empty() && !file.empty()) throw Error(std::string("give either ") + what + " or its file, not both");
  if (!file.empty()) return read_text_file(file, 1u << 20);
  if (text.empty() && required) throw Error(std::string("give ") + what);
  return text;
}

int cmd_attend(const AttendArgs& a) {
  auto model = a.m.load();
  const std::string text = text_arg(a.text, a.text_file, "--text", true);
  auto ids = a.m.encode(*model, text);
  std::vector<int64_t> kv;
  const std::string kv_text = text_arg(a.kv_text, a.kv_text_file, "--kv-text", false);
  if (!kv_text.empty()) kv = a.m.encode(*model, kv_text);
  AttentionMaps m = model->attend(ids, kv);
  std::vector<double> times{m.forward_ms};
  for (int r = 1; r < a.repeat; ++r) times.push_back(model->attend(ids, kv).forward_ms);
  std::sort(times.begin(), times.end());
  if (a.repeat > 1)
    std::fprintf(stderr, "forward over %d runs: median %.2f ms, min %.2f ms, max %.2f ms (first run %.2f ms)\n", a.repeat,
                 times[times.size() / 2], times.front(), times.back(), m.forward_ms);
  if (a.layer >= m.layers) throw Error("--layer " + std::to_string(a.layer) + ": the model has " + std::to_string(m.layers) + " layers (0.." + std::to_string(m.layers - 1) + ")");
  if (a.head >= m.heads) throw Error("--head " + std::to_string(a.head) + ": the model has " + std::to_string(m.heads) + " heads (0.." + std::to_string(m.heads - 1) + ")");
  const int64_t l0 = a.layer < 0 ? 0 : a.layer, l1 = a.layer < 0 ? m.layers : a.layer + 1;
  const int64_t h0 = a.head < 0 ? 0 : a.head, h1 = a.head < 0 ? m.heads : a.head + 1;
  const int64_t T = m.queries, S = m.keys;

  std::vector<float> sel;  // [l1-l0, h1-h0, T, S]
  for (int64_t l = l0; l < l1; ++l)
    for (int64_t h = h0; h < h1; ++h) sel.insert(sel.end(), m.attn.begin() + long(m.idx(l, h, 0, 0)), m.attn.begin() + long(m.idx(l, h, 0, 0) + size_t(T * S)));
  std::vector<int64_t> shape;
  if (a.layer < 0) shape.push_back(l1 - l0);
  if (a.head < 0) shape.push_back(h1 - h0);
  shape.push_back(T);
  shape.push_back(S);

  std::string bytes;
  if (a.format == "npy") {
    bytes = npy_bytes(shape, sel.data());
  } else if (a.format == "json") {
    json j = {{"variant", variant_label(*model)}, {"mode", m.mode}, {"text", model->tokenizer().decode(ids)},
              {"shape", shape}, {"layers", json::array()}, {"forward_ms", m.forward_ms},
              {"loss_nats_per_char", std::isnan(m.loss) ? json(nullptr) : json(m.loss)}};
    size_t at = 0;
    for (int64_t l = l0; l < l1; ++l) {
      json heads = json::array();
      for (int64_t h = h0; h < h1; ++h) {
        json rows = json::array();
        for (int64_t i = 0; i < T; ++i) {
          std::vector<float> r(sel.begin() + long(at), sel.begin() + long(at + size_t(S)));
          rows.push_back(r);
          at += size_t(S);
        }
        heads.push_back({{"layer", l}, {"head", h}, {"attention", rows}});
      }
      j["layers"].push_back(heads);
    }
    bytes = j.dump() + "\n";
  } else {
    std::string s;
    char buf[32];
    size_t at = 0;
    for (int64_t l = l0; l < l1; ++l)
      for (int64_t h = h0; h < h1; ++h) {
        if (a.layer < 0 || a.head < 0) s += "# layer " + std::to_string(l) + " head " + std::to_string(h) + "\n";
        for (int64_t i = 0; i < T; ++i) {
          for (int64_t j = 0; j < S; ++j) {
            std::snprintf(buf, sizeof buf, j ? ",%.6g" : "%.6g", double(sel[at++]));
            s += buf;
          }
          s += "\n";
        }
      }
    bytes = s;
  }
  write_output(a.out, bytes);
  std::fprintf(stderr, "%s [%s], %lld characters, %lld layers x %lld heads, forward %.1f ms, loss %.3f nats/char\n",
               variant_label(*model).c_str(), m.mode.c_str(), (long long)T, (long long)m.layers, (long long)m.heads,
               m.forward_ms, m.loss);
  return 0;
}

struct GenerateArgs {
  ModelArgs m;
  std::string prompt;
  GenerateOptions g;
};

int cmd_generate(const GenerateArgs& a) {
  auto model = a.m.load();
  auto ids = a.m.encode(*model, a.prompt);
  std::cout << a.prompt << std::flush;
  int64_t bytes = 0;
  auto t0 = std::chrono::steady_clock::now();
  model->generate(ids, a.g, [&](const DecodeStep& s) {
    std::cout << model->tokenizer().symbol(s.token) << std::flush;
    bytes = s.cache_bytes;
  });
  double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "\n";
  std::fprintf(stderr, "%s: %lld tokens in %.2f s (%.0f tokens/s), KV cache %lld bytes\n", variant_label(*model).c_str(),
               (long long)a.g.tokens, sec, double(a.g.tokens) / std::max(sec, 1e-9), (long long)bytes);
  return 0;
}

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

// The shipped comparison's order (issue 5), then any other checkpoint by name.
int shipped_order(const std::string& name) {
  static const char* const order[] = {"mha", "mha_budget", "mha_alibi", "mha_learned", "mqa", "gqa", "mla",
                                      "sliding_window", "strided", "bigbird", "lsh", "linear", "performer",
                                      "cosformer", "linformer_causal", "mta", "differential", "mha_moe"};
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
    if (std::sscanf(line.c_str(), "%lf,%lf,%lf", &step, &train, &val) == 3 && std::isfinite(val)) out.push_back({step, val});
  }
  return out;
}

std::string fmt_time(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char b[32];
  std::snprintf(b, sizeof b, "%dm%02ds", int(s) / 60, int(s) % 60);
  return b;
}

// `eval --all`: every shipped checkpoint evaluated now on the held-out split, next to what its training recorded.
int cmd_eval_all(const EvalArgs& a) {
  if (!a.m.model.empty() || !a.m.variant.empty() || !a.m.params.empty() || !a.m.layer_variants.empty())
    throw Error("eval --all evaluates every checkpoint under --models: no --model, --variant, --param or --layer-variants");
  const std::string root = a.models.empty() ? assets_dir() + "/models" : a.models;
  std::vector<std::string> dirs;
  std::error_code ec;
  for (const auto& d : std::filesystem::directory_iterator(root, ec))
    if (std::filesystem::is_regular_file(d.path() / "config.json", ec)) dirs.push_back(d.path().filename().string());
  if (ec) throw Error(root + ": cannot list the folder (" + ec.message() + ")");
  if (dirs.empty()) throw Error(root + ": no checkpoints (folders with config.json)");
  std::sort(dirs.begin(), dirs.end(), [](const std::string& x, const std::string& y) {
    return shipped_order(x) != shipped_order(y) ? shipped_order(x) < shipped_order(y) : x < y;
  });
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
    auto model = Model::load(dir, a.m.device);
    auto valid = model->tokenizer().encode_or_throw(valid_text, parse_unknown_policy(a.m.unknown));
    const EvalResult r = model->evaluate(valid, a.max_windows);
    const json& t = model->meta();
    auto num = [&](const char* k) { return t.contains(k) && t[k].is_number() ? t[k].get<double>() : NAN; };
    std::string label = variant_label(*model);
    if (model->config().position != PosKind::Rope) label += ", " + std::string(pos_kind_name(model->config().position));
    if (model->config().moe_experts > 0)
      label += ", MoE " + std::to_string(model->config().moe_experts) + " experts top-" + std::to_string(model->config().moe_k);
    rows.push_back({{"name", name}, {"variant", label}, {"parameters", model->parameter_count()},
                    {"steps", t.value("steps", int64_t(0))}, {"val_loss", r.loss}, {"bits_per_char", r.bits},
                    {"characters", r.characters}, {"recorded_val_loss", num("final_val_loss")},
                    {"tokens_per_s", num("tokens_per_s")}, {"wall_time_s", num("wall_time_s")},
                    {"causal", model_is_causal(*model)}});
    PlotSeries ps;
    ps.label = name;
    for (const auto& [step, val] : val_curve(dir)) ps.x.push_back(step), ps.y.push_back(val);
    if (!ps.x.empty()) plot.series.push_back(ps);
    std::fprintf(stderr, "eval --all: %s %.4f nats/char\n", name.c_str(), r.loss);
  }
  auto fixed = [](double v, int d) {
    if (!std::isfinite(v)) return std::string("-");
    char b[32];
    std::snprintf(b, sizeof b, "%.*f", d, v);
    return std::string(b);
  };
  if (a.as_json) {
    std::cout << json({{"models", root}, {"checkpoints", rows}}).dump(2) << "\n";
  } else if (a.markdown) {
    std::printf("| checkpoint | variant | parameters | steps | val loss (nats/char) | bits/char | train tokens/s | wall time |\n"
                "|---|---|---:|---:|---:|---:|---:|---:|\n");
    for (const json& r : rows)
      std::printf("| `%s` | %s | %lld | %lld | %s | %s | %s | %s |\n", r["name"].get<std::string>().c_str(),
                  r["variant"].get<std::string>().c_str(), (long long)r["parameters"].get<int64_t>(),
                  (long long)r["steps"].get<int64_t>(), fixed(r["val_loss"], 4).c_str(), fixed(r["bits_per_char"], 4).c_str(),
                  fixed(r["tokens_per_s"].is_number() ? r["tokens_per_s"].get<double>() : NAN, 0).c_str(),
                  fmt_time(r["wall_time_s"].is_number() ? r["wall_time_s"].get<double>() : NAN).c_str());
  } else {
    std::printf("%-17s %-44s %9s %6s %9s %9s %9s %8s %8s\n", "checkpoint", "variant", "params", "steps", "val loss",
                "bits/char", "recorded", "tok/s", "wall");
    for (const json& r : rows) {
      auto d = [&](const char* k) { return r[k].is_number() ? r[k].get<double>() : NAN; };
      std::printf("%-17s %-44s %9lld %6lld %9s %9s %9s %8s %8s\n", r["name"].get<std::string>().c_str(),
                  r["variant"].get<std::string>().substr(0, 44).c_str(), (long long)r["parameters"].get<int64_t>(),
                  (long long)r["steps"].get<int64_t>(), fixed(d("val_loss"), 4).c_str(), fixed(d("bits_per_char"), 4).c_str(),
                  fixed(d("recorded_val_loss"), 4).c_str(), fixed(d("tokens_per_s"), 0).c_str(), fmt_time(d("wall_time_s")).c_str());
    }
    std::printf("val loss: evaluated now on %s of the held-out 10%%; recorded: at the end of training\n",
                a.max_windows > 0 ? ("the first " + std::to_string(a.max_windows) + " windows").c_str() : "all");
  }
  if (!a.plot.empty()) {
    if (plot.series.empty()) throw Error("eval --all --plot: no checkpoint has a loss.csv with validation losses");
    write_loglog_png(plot, a.plot);
    std::fprintf(stderr, "eval --all: wrote %s (%zu curves)\n", a.plot.c_str(), plot.series.size());
  }
  return 0;
}

int cmd_eval(const EvalArgs& a) {
  if (a.all) return cmd_eval_all(a);
  if (a.markdown || !a.plot.empty() || !a.models.empty()) throw Error("--markdown, --plot and --models go with --all");
  auto model = a.m.load();
  const std::string text = read_text_file(a.corpus.empty() ? default_corpus_path() : a.corpus);
  auto valid = model->tokenizer().encode_or_throw(split_corpus(text).valid, parse_unknown_policy(a.m.unknown));
  EvalResult r = model->evaluate(valid, a.max_windows);
  if (a.as_json) {
    std::cout << json({{"variant", variant_label(*model)}, {"mode", model->mode()}, {"loss_nats_per_char", r.loss},
                       {"bits_per_char", r.bits}, {"characters", r.characters}, {"seconds", r.seconds},
                       {"causal", model_is_causal(*model)}})
                     .dump(2)
              << "\n";
  } else {
    std::printf("%s [%s]: validation loss %.4f nats/char, %.4f bits/char (%lld characters, %.1f s)\n",
                variant_label(*model).c_str(), model->mode().c_str(), r.loss, r.bits, (long long)r.characters, r.seconds);
    if (!model_is_causal(*model))
      std::printf("note: non-causal: this variant sees future tokens, so this is not a valid next-character loss\n");
  }
  return 0;
}

struct TrainArgs {
  TrainOptions o;
  std::string variant = "mha", position = "rope", dtype = "fp16";
  std::vector<std::string> params;
};


int cmd_train(TrainArgs a, const std::string& command) {
  const VariantInfo& info = get_variant(a.variant);
  ParamValues given;
  for (const auto& kv : a.params) given.insert(parse_param(info.params, a.variant, kv));
  if (!info.causal) throw Error("variant '" + a.variant + "' sees future tokens: it cannot be trained as a decoder");
  if (info.needs_kv_text) throw Error("variant '" + a.variant + "' needs a second text: train a self-attention variant");
  a.o.model.position = parse_pos_kind(a.position);
  a.o.model.set_all_layers(a.variant, given);
  a.o.dtype = a.dtype == "fp32" ? DType::F32 : a.dtype == "bf16" ? DType::BF16 : DType::F16;
  if (a.o.corpus_path.empty()) a.o.corpus_path = default_corpus_path();
  a.o.command = command;
  install_interrupt_handler();
  const bool tty = isatty(fileno(stderr));
  auto s = train(a.o, [&](const TrainProgress& p) {
    if (!tty && p.step % 10 != 0 && p.step != p.steps) return;
    char val[32] = "-     ";  // before the first validation
    if (std::isfinite(p.val_loss)) std::snprintf(val, sizeof val, "%.4f", p.val_loss);
    std::fprintf(stderr, "%sstep %lld/%lld | loss %.4f | val %s | lr %.2e | %.0f tok/s | %s elapsed | ETA %s%s",
                 tty ? "\r" : "", (long long)p.step, (long long)p.steps, p.loss, val, p.lr, p.tokens_per_s,
                 fmt_time(p.elapsed_s).c_str(), fmt_time(p.eta_s).c_str(), tty ? "   " : "\n");
    std::fflush(stderr);
  });
  std::fprintf(stderr, "\n");
  if (s.interrupted) {
    std::fprintf(stderr, "stopped at step %lld: resumable state saved in %s (continue with --resume)\n",
                 (long long)s.steps_done, a.o.out_dir.c_str());
    return 130;
  }
  const std::string moe = a.o.model.moe_experts > 0 ? " + MoE (" + std::to_string(a.o.model.moe_experts) +
                                                            " experts, top-" + std::to_string(a.o.model.moe_k) + ")"
                                                      : "";
  std::printf("trained %s%s for %lld steps in %s (%.0f tokens/s): validation loss %.4f nats/char (%.4f bits/char) -> %s\n",
              a.variant.c_str(), moe.c_str(), (long long)s.steps_done, fmt_time(s.wall_s).c_str(), s.tokens_per_s, s.final_val_loss,
              s.final_val_loss / std::log(2.0), a.o.out_dir.c_str());
  return 0;
}

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{"attnscope: watch attention mechanisms work, live"};
  app.require_subcommand(0, 1);  // none only with --scene (the window)

  bool variants_json = false;
  auto* variants = app.add_subcommand("variants", "list every attention variant with its parameters");
  variants->add_flag("--json", variants_json, "machine-readable output");

  std::string explain_name;
  bool explain_json = false;
  auto* explain = app.add_subcommand("explain", "what a variant computes: formula, cost, cache, when to use it");
  explain->add_option("variant", explain_name, "registry name (see `attnscope variants`)")->required();
  explain->add_flag("--json", explain_json, "machine-readable output");

  AdviseArgs ad;
  auto* advise = app.add_subcommand("advise", "rank the variants for a scenario, with the reason for every place");
  add_advise_options(advise, ad);

  AttendArgs at;
  auto* attend = app.add_subcommand("attend", "print the attention matrix of a text");
  at.m.add(attend);
  attend->add_option("--text", at.text, "the text (at most the model's context)");
  attend->add_option("--text-file", at.text_file, "read the text from a file");
  attend->add_option("--kv-text", at.kv_text, "second text: keys and values for cross-attention");
  attend->add_option("--kv-text-file", at.kv_text_file, "read the second text from a file");
  attend->add_option("--layer", at.layer, "layer (default: all)")->check(kNonNegative);
  attend->add_option("--head", at.head, "head (default: all)")->check(kNonNegative);
  attend->add_option("--format", at.format, "csv|json|npy")->check(CLI::IsMember({"csv", "json", "npy"}));
  attend->add_option("--repeat", at.repeat, "run the forward N times and report the median time")
      ->check(CLI::Range(1, 1000));
  attend->add_option("-o,--out", at.out, "output file (default: stdout); written atomically");

  GenerateArgs ge;
  auto* generate = app.add_subcommand("generate", "write text with the model (KV-cache decoding)");
  ge.m.add(generate);
  generate->add_option("--prompt", ge.prompt, "the prompt")->required();
  generate->add_option("--tokens", ge.g.tokens, "characters to generate")->check(CLI::Range(0, 100000));
  generate->add_option("--temperature", ge.g.temperature, "0 = greedy")->check(CLI::Range(0.0, 100.0));
  generate->add_option("--top-k", ge.g.top_k, "sample from the k most likely (0 = all)")->check(kNonNegative);
  generate->add_option("--seed", ge.g.seed, "sampling seed");

  EvalArgs ev;
  auto* eval = app.add_subcommand("eval", "validation loss (nats/char and bits/char) on the held-out 10%");
  ev.m.add(eval);
  eval->add_option("--corpus", ev.corpus, "corpus file (default: the bundled Tiny Shakespeare)");
  eval->add_option("--max-windows", ev.max_windows, "evaluate only the first N context windows (0 = all)")
      ->check(kNonNegative);
  eval->add_flag("--json", ev.as_json, "machine-readable output");
  eval->add_flag("--all", ev.all, "every checkpoint under --models: the comparison table (evaluated now)");
  eval->add_option("--models", ev.models, "--all: folder of checkpoints (default: the bundled assets/models)");
  eval->add_flag("--markdown", ev.markdown, "--all: the table as Markdown");
  eval->add_option("--plot", ev.plot, "--all: write a PNG of every checkpoint's validation-loss curve");

  TrainArgs tr;
  auto* trn = app.add_subcommand("train", "train a character GPT on the corpus and write a checkpoint");
  trn->add_option("--variant", tr.variant, "attention variant on every layer");
  trn->add_option("--param", tr.params, "variant parameter NAME=VALUE (repeatable)");
  trn->add_option("--out", tr.o.out_dir, "checkpoint directory")->required();
  trn->add_option("--steps", tr.o.steps, "optimiser steps")->check(CLI::Range(int64_t(1), int64_t(10000000)));
  trn->add_option("--seed", tr.o.seed, "seed (initialisation and batches)");
  trn->add_option("--batch", tr.o.batch, "sequences per step")->check(CLI::Range(1, 4096));
  trn->add_option("--lr", tr.o.lr, "peak learning rate")->check(CLI::Range(1e-6, 1.0));
  trn->add_option("--min-lr", tr.o.min_lr, "final learning rate of the cosine")->check(CLI::Range(0.0, 1.0));
  trn->add_option("--warmup", tr.o.warmup, "warm-up steps")->check(kNonNegative);
  trn->add_option("--eval-every", tr.o.eval_every, "validate and save a resumable state every N steps")->check(kPositive);
  trn->add_option("--eval-windows", tr.o.eval_windows,
                  "context windows of the held-out split in each periodic validation (0: the whole split)")
      ->check(kNonNegative);
  trn->add_option("--layers", tr.o.model.n_layer, "layers")->check(CLI::Range(1, 64));
  trn->add_option("--d-model", tr.o.model.d_model, "model width")->check(CLI::Range(2, 4096));
  trn->add_option("--heads", tr.o.model.n_head, "attention heads")->check(CLI::Range(1, 64));
  trn->add_option("--context", tr.o.model.context, "context length")->check(CLI::Range(2, 65536));
  trn->add_option("--position", tr.position, "rope|xpos|learned|alibi|none")
      ->check(CLI::IsMember({"rope", "xpos", "learned", "alibi", "none"}));
  trn->add_option("--rope-theta", tr.o.model.rope_theta, "RoPE base")->check(CLI::Range(1.0, 1e7));
  trn->add_option("--rope-fraction", tr.o.model.rope_fraction, "rotated fraction of each head")->check(CLI::Range(0.01, 1.0));
  trn->add_option("--dtype", tr.dtype, "checkpoint storage: fp16|bf16|fp32")->check(CLI::IsMember({"fp16", "bf16", "fp32"}));
  trn->add_option("--corpus", tr.o.corpus_path, "training text (default: the bundled Tiny Shakespeare)");
  trn->add_option("--device", tr.o.device, "auto|cpu|cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  trn->add_option("--max-minutes", tr.o.max_minutes, "stop after this wall time with a resumable state")->check(kNonNegative);
  trn->add_flag("--resume", tr.o.resume, "continue from DIR/train_state.safetensors");
  trn->add_option("--moe-experts", tr.o.model.moe_experts,
                  "mixture-of-experts feed-forward with E experts (0 = the dense MLP); each expert is 1/E as wide")
      ->check(CLI::Range(0, 64));
  trn->add_option("--moe-k", tr.o.model.moe_k, "experts per token (top-k routing)")->check(CLI::Range(1, 64));
  trn->add_option("--moe-aux-weight", tr.o.moe_aux_weight, "weight of the load-balancing loss")->check(CLI::Range(0.0, 10.0));

  KvArgs kv;
  auto* kvc = app.add_subcommand("kv", "KV-cache bytes of every attention family for published model shapes");
  kvc->add_option("--preset", kv.preset, "model shape: llama-2-7b, llama-3-8b, llama-3-70b, mistral-7b, mixtral-8x7b, "
                                         "gemma-2-9b, deepseek-v2, bundled (see --list)");
  kvc->add_option("--custom", kv.custom, "layers=..,heads=..,kv_heads=..,head_dim=..[,d_c=..,d_r=..,window=..,"
                                         "window_layers=..,sinks=..,features=..,params=..]");
  kvc->add_option("--seq", kv.seq, "sequence length in tokens (1..1048576)");
  kvc->add_option("--dtype", kv.dtype, "cache element type: fp16|bf16|fp8|fp32");
  kvc->add_option("--batch", kv.batch, "sequences decoded together");
  kvc->add_flag("--list", kv.list, "list the presets and their shapes");
  kvc->add_flag("--json", kv.as_json, "machine-readable output");

  BenchArgs be;
  auto* bench = app.add_subcommand("bench", "latency, peak memory and decode speed of one attention layer over length");
  bench->add_option("--variants", be.variants, "comma-separated variants (default: all)");
  bench->add_option("--lengths", be.lengths, "comma-separated ascending sequence lengths");
  bench->add_option("--batch", be.o.batch, "sequences per forward")->check(CLI::Range(1, 1024));
  bench->add_option("--device", be.o.device, "auto|cpu|cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  bench->add_option("--repeats", be.o.repeats, "timed prefill runs per point (after one warm-up)")->check(CLI::Range(1, 1000));
  bench->add_option("--decode-tokens", be.o.decode_tokens, "timed cached decoding steps (0 = skip decoding)")
      ->check(CLI::Range(0, 100000));
  bench->add_option("--json", be.json, "write the results as JSON");
  bench->add_option("--csv", be.csv, "write the results as CSV");
  bench->add_option("--plot", be.plot, "write a log-log PNG of latency over length");
  bench->add_flag("--interactive", be.interactive,
                  "time the window's recompute instead: every column's forward with all its maps, one after another");
  bench->add_option("--column", be.columns, "--interactive: a column like the window's (repeatable; default: "
                                            "mha, gqa:groups=2, mqa, sliding_window:window=32, linear, mla)");
  bench->add_option("--chars", be.chars, "--interactive: characters of held-out text")->check(CLI::Range(int64_t(2), int64_t(1) << 20));
  bench->add_option("--model", be.model, "--interactive: checkpoint (default: the bundled assets/models/mha)");
  bench->add_option("--torch-threads", be.torch_threads, "--interactive: LibTorch intra-op threads (0: as the window)")
      ->check(CLI::Range(0, 256));
  bench->add_option("--blas-threads", be.blas_threads, "--interactive: OpenBLAS threads (0: as the window)")
      ->check(CLI::Range(0, 256));

  RenderArgs re;
  auto* render = app.add_subcommand("render", "attention heatmaps to PNG, SVG, CSV, NPY or JSON (no display needed)");
  add_render_options(render, re);

#if ATTNSCOPE_GUI
  GuiOptions gu;
  auto* gui = app.add_subcommand("gui", "the desktop window (the default with no arguments)");
  gui->add_option("--model", gu.model, "checkpoint directory (default: the bundled assets/models/mha)");
  gui->add_option("--text", gu.text, "start with this text (default: a held-out Shakespeare passage)");
  gui->add_option("--column", gu.columns, "a variant column VARIANT or VARIANT:k=v,k=v (repeatable, 1 to 6)");
  gui->add_option("--width", gu.width, "window width in pixels")->check(CLI::Range(320, 16384));
  gui->add_option("--height", gu.height, "window height in pixels")->check(CLI::Range(240, 16384));
  gui->add_flag("--presentation", gu.presentation, "large fonts for a projector");
  gui->add_option("--screenshot", gu.screenshot, "render, wait for the results, save this PNG and exit");
  gui->add_option("--frames", gu.frames, "frames to render before the screenshot (or before exiting)")
      ->check(CLI::Range(0, 1000000));
  gui->add_option("--script", gu.script, "scripted input: a file, or commands separated by ';' (tests)");
  gui->add_option("--max-seconds", gu.max_seconds, "scripted runs: stop waiting for results after this")
      ->check(CLI::Range(1.0, 3600.0));
  gui->add_option("--scene", gu.scene, "open a scene file (assets/scenes/*.json)");
  app.add_option("--scene", gu.scene, "open a scene file in the window (attnscope --scene F = attnscope gui --scene F)");
#endif

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    std::fprintf(stderr, "attnscope: %s (see --help)\n", msg.c_str());
    return 2;
  }
  if (app.get_subcommands().empty()) {
#if ATTNSCOPE_GUI
    if (!gu.scene.empty()) return run_gui(gu);
#endif
    std::fprintf(stderr, "attnscope: A subcommand is required (see --help)\n");
    return 2;
  }
  std::string command = "attnscope";
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
  try {
    if (*variants) return cmd_variants(variants_json);
    if (*explain) return cmd_explain(explain_name, explain_json);
    if (*advise) return cmd_advise(ad);
    if (*attend) return cmd_attend(at);
    if (*generate) return cmd_generate(ge);
    if (*eval) return cmd_eval(ev);
    if (*trn) return cmd_train(tr, command);
    if (*kvc) return cmd_kv(kv);
    if (*bench) return cmd_bench(be);
    if (*render) return cmd_render(re);
#if ATTNSCOPE_GUI
    if (*gui) {
      if (gu.columns.size() > 6) throw Error("at most 6 --column");
      return run_gui(gu);
    }
#endif
  } catch (const Error& e) {
    std::fprintf(stderr, "attnscope: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attnscope: internal error: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace attnscope
