#include "cmd_render.h"

#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <map>

#include "cli_checks.h"
#include "commands.h"
#include "error.h"
#include "registry.h"
#include "scene_figure.h"
#include "model_policy.h"
#include "safetensors.h"

namespace attnscope {

using render::Figure;
using render::PanelKind;

namespace {

// The model a column runs, as the window picks it (model_policy.h). Per-layer columns and painted masks run in
// the base checkpoint's weights.
std::shared_ptr<Model> column_model(const Model& base, const SceneColumn& c) {
  if (!c.layers.empty() || !c.mask.empty()) {
    std::vector<LayerSpec> layers = c.layers;
    if (layers.empty())
      layers.assign(size_t(base.config().n_layer),
                    LayerSpec{c.variant, resolve_params(get_variant(c.variant).params, c.variant, c.params), c.mask});
    return base.with_layers(layers);
  }
  return session::column_model(base, c.variant, c.params, c.convert);
}

// --compare entries: "a,b:k=v,k=v,c" and repeated flags; a piece with '=' but no ':' is one more parameter of
// the entry before it.
std::vector<std::string> split_compare(const std::vector<std::string>& given) {
  std::vector<std::string> out;
  for (const std::string& g : given) {
    size_t at = 0;
    while (at <= g.size()) {
      size_t next = g.find(',', at);
      if (next == std::string::npos) next = g.size();
      const std::string piece = g.substr(at, next - at);
      if (!out.empty() && piece.find('=') != std::string::npos && piece.find(':') == std::string::npos) {
        out.back() += "," + piece;
      } else if (!piece.empty()) {
        out.push_back(piece);
      }
      at = next + 1;
    }
  }
  return out;
}

std::string output_kind(const std::string& path) {
  const size_t dot = path.find_last_of('.');
  std::string ext = dot == std::string::npos ? "" : path.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return char(std::tolower(ch)); });
  if (ext != "png" && ext != "svg" && ext != "csv" && ext != "npy" && ext != "json")
    throw Error("-o " + path + ": the file name must end in .png, .svg, .csv, .npy or .json");
  return ext;
}

// Fails early (before the forward) for outputs that cannot be written.
void check_output(const std::string& path, bool force) {
  if (access(path.c_str(), F_OK) == 0 && !force) throw Error("'" + path + "' exists: add --force to overwrite it");
  check_output_dir(path);
}

}  // namespace

Figure scene_figure(const Scene& s, const Model& base, const std::vector<int64_t>& ids, bool lenient,
                    std::vector<std::string>* skipped) {
  struct Run {
    const SceneColumn* col;
    AttentionMaps maps;
  };
  std::vector<Run> runs;
  std::map<std::string, size_t> by_label;  // columns with the same variant and parameters share one forward
  std::vector<std::string> labels;
  for (size_t i = 0; i < s.columns.size(); ++i) {
    const SceneColumn& c = s.columns[i];
    const std::string key = column_label(c);
    auto it = by_label.find(key);
    if (it != by_label.end()) {
      runs.push_back({&c, runs[it->second].maps});
      continue;
    }
    try {
      runs.push_back({&c, column_model(base, c)->attend(ids)});
      by_label[key] = runs.size() - 1;
    } catch (const Error& e) {
      if (!lenient) throw;
      skipped->push_back("column " + std::to_string(i + 1) + " (" + key + "): skipped: " + e.what());
    }
  }
  if (runs.empty()) throw Error("no column of the scene could be computed");

  std::vector<std::string> row_labels;
  for (int64_t id : ids) row_labels.push_back(render::char_label(uint8_t(base.tokenizer().symbol(id))));
  std::vector<session::ColumnMaps> cols;
  for (const Run& r : runs) cols.push_back({r.col, &r.maps});
  return session::figure_from_maps(s, cols, row_labels, row_labels, base.tokenizer().decode(ids));
}

void add_render_options(CLI::App* c, RenderArgs& a) {
  c->add_option("--model", a.model, "checkpoint directory (default: the bundled assets/models/mha)");
  c->add_option("--device", a.device, "auto|cpu|cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  auto* variant =
      c->add_option("--variant", a.variant, "attention variant on every layer (default: the checkpoint's own)");
  auto* param = c->add_option("--param", a.params, "variant parameter NAME=VALUE (repeatable)");
  auto* text = c->add_option("--text", a.text, "the text (at most the model's context)");
  auto* text_file = c->add_option("--text-file", a.text_file, "read the text from a file");
  c->add_option("--unknown", a.unknown, "characters outside the vocabulary: error|skip|replace")
      ->check(CLI::IsMember({"error", "skip", "replace"}));
  auto* layer = c->add_option("--layer", a.layer, "layer (default 0)")->check(kNonNegative);
  auto* head = c->add_option("--head", a.head, "head (default 0)")->check(kNonNegative);
  auto* grid = c->add_flag("--grid", a.grid, "every layer x head of one variant");
  auto* compare = c->add_option("--compare", a.compare,
                                "side by side: A,B,... each VARIANT or VARIANT:k=v,k=v (e.g. mha,gqa:groups=2,mqa)");
  auto* view = c->add_option("--view", a.view, "heatmap|mask|diff (diff: the first two --compare entries, A - B)")
                   ->check(CLI::IsMember({"heatmap", "mask", "diff"}));
  a.colormap_given = c->add_option("--colormap", a.colormap,
                                   "viridis|magma|cividis|gray|diverging (diverging: signed, A - B for diffs)")
                         ->check(CLI::IsMember({"viridis", "magma", "cividis", "gray", "grayscale", "diverging"}));
  a.scale_given = c->add_option("--scale", a.scale, "linear|log|row (row: each row divided by its max)")
                      ->check(CLI::IsMember({"linear", "log", "row"}));
  c->add_option("--png-scale", a.png_scale, "pixels per layout unit, 1..4 (2 for slides)")->check(CLI::Range(1, 4));
  a.zoom_given = c->add_option("--zoom", a.zoom, "cell size multiplier, 0.25..8")->check(CLI::Range(0.25, 8.0));
  c->add_option("-o,--out", a.out, "output FILE.png|.svg|.csv|.npy|.json (written atomically)")->required();
  c->add_flag("--force", a.force, "overwrite an existing output file");
  c->add_option("--length", a.length,
                "pooled heatmaps of N characters (up to 32768; the held-out text unless --text/--text-file)")
      ->check(CLI::Range(1, 32768));
  c->add_option("--pool", a.pool, "--length: each pixel the max or the mean of the weights it covers")
      ->check(CLI::IsMember({"max", "mean"}));
  c->add_option("--pixels", a.pixels, "--length: pixels per side of each pooled map")->check(CLI::Range(1, 4096));
  auto* scene = c->add_option("--scene", a.scene, "render a scene file (assets/scenes/*.json)");
  for (CLI::Option* o : {variant, param, text, text_file, layer, head, grid, compare, view}) scene->excludes(o);
  grid->excludes(compare)->excludes(layer)->excludes(head);
  compare->excludes(variant)->excludes(param);
}

int cmd_render(const RenderArgs& a) {
  const std::string kind = output_kind(a.out);
  check_output(a.out, a.force);
  if (a.length > 0) return render_long(a, kind);

  Scene scene;
  std::vector<std::string> skipped;
  if (!a.scene.empty()) {
    SceneLoad sl = load_scene(a.scene);
    scene = sl.scene;
    skipped = sl.skipped;
  }
  const std::string model_dir = !a.model.empty() ? a.model : !scene.model.empty() ? scene.model : default_model_dir();
  auto base = Model::load(model_dir, a.device);
  const ModelConfig& cfg = base->config();

  if (a.scene.empty()) {
    if (!a.text.empty() && !a.text_file.empty()) throw Error("give either --text or --text-file, not both");
    scene.text = !a.text_file.empty() ? read_text_file(a.text_file, 1u << 20) : a.text;
    if (scene.text.empty()) throw Error("give --text or --text-file (or --scene)");
    PanelKind view = PanelKind::Weights;
    render::parse_panel_kind(a.view, &view);
    std::vector<std::string> specs = split_compare(a.compare);
    if (specs.empty()) {
      std::string spec = a.variant.empty() ? cfg.variant_summary() : a.variant;
      if (spec == "mixed") throw Error("the checkpoint mixes variants across layers: give --variant");
      for (size_t i = 0; i < a.params.size(); ++i) spec += (i ? "," : ":") + a.params[i];
      specs.push_back(spec);
    }
    if (view == PanelKind::Diff && specs.size() < 2)
      throw Error("--view diff needs two variants: --compare A,B (for example --compare mha,gqa:groups=2)");
    if (view == PanelKind::Diff && specs.size() > 2) {
      std::fprintf(stderr, "attnscope: --view diff compares the first two --compare entries; ignoring %zu more\n",
                   specs.size() - 2);
      specs.resize(2);
    }
    for (const std::string& spec : specs) {
      SceneColumn c = parse_column_spec(spec);
      c.layer = a.grid ? -1 : a.layer;
      c.head = a.grid ? -1 : a.head;
      c.view = view == PanelKind::Diff ? PanelKind::Weights : view;
      scene.columns.push_back(c);
    }
    if (view == PanelKind::Diff) {
      scene.columns.push_back(scene.columns[1]);
      scene.columns.back().view = PanelKind::Diff;
    }
  }
  if (auto c = render::parse_colormap(a.colormap); c && (a.scene.empty() || a.colormap_given->count() > 0))
    scene.colormap = *c;
  if (a.scene.empty() || a.scale_given->count() > 0) render::parse_scale(a.scale, &scene.scale);
  if (a.scene.empty() || a.zoom_given->count() > 0) scene.zoom = a.zoom;

  const bool lenient = !a.scene.empty();
  fit_scene_to_model(scene, cfg.n_layer, cfg.n_head, &skipped);
  if (!lenient && !skipped.empty()) {  // strict: nothing is skipped, the command stops; say so without "skipped"
    std::string m = skipped.front();
    const size_t at = m.find(": skipped: ");
    if (at != std::string::npos) m.replace(at, 11, ": ");
    throw Error(m + " (nothing written)");
  }
  if (scene.columns.empty()) throw Error("scene '" + a.scene + "': no column fits this model");
  std::vector<int64_t> ids =
      base->tokenizer().encode_or_throw(scene.text, lenient ? UnknownPolicy::Replace : parse_unknown_policy(a.unknown));
  if (lenient && int64_t(ids.size()) > cfg.context) {
    skipped.push_back("the text is longer than the model's context: cut to its first " + std::to_string(cfg.context) +
                      " characters");
    ids.resize(size_t(cfg.context));
  }
  Figure f = scene_figure(scene, *base, ids, lenient, &skipped);
  for (const std::string& m : skipped) std::fprintf(stderr, "attnscope: scene: %s\n", m.c_str());

  render::Style style;
  style.colormap = scene.colormap;
  style.scale = scene.scale;
  style.zoom = scene.zoom;
  style.png_scale = a.png_scale;
  std::string bytes, size;
  if (kind == "png" || kind == "svg") {
    int w = 0, h = 0;
    render::figure_size(f, style, &w, &h);
    bytes = kind == "png" ? render::figure_png(f, style) : render::figure_svg(f, style);
    size = std::to_string(w) + " x " + std::to_string(h) + " px, ";
  } else {
    bytes = kind == "csv"   ? render::figure_csv(f)
            : kind == "npy" ? render::figure_npy(f)
                            : render::figure_json(f, style);
  }
  if (!a.force && access(a.out.c_str(), F_OK) == 0) throw Error("'" + a.out + "' exists: add --force to overwrite it");
  write_file_atomic(a.out, bytes);
  std::fprintf(stderr, "wrote %s (%s%zu panel%s)\n", a.out.c_str(), size.c_str(), f.panels.size(),
               f.panels.size() == 1 ? "" : "s");
  return 0;
}

Command add_render(CLI::App& app) {
  auto a = std::make_shared<RenderArgs>();
  auto* c = app.add_subcommand("render", "attention heatmaps to PNG, SVG, CSV, NPY or JSON (no display needed)");
  add_render_options(c, *a);
  return {c, [a] { return cmd_render(*a); }};
}

}  // namespace attnscope
