// `attnscope render --length N`: pooled heatmaps of a text past the training context (attention/long_context.h), one
// panel per column (--compare, or --variant / the checkpoint's own), each pixel the max (or mean: --pool) of the
// weights it covers; written through the same figure code as every other render (PNG, SVG, CSV, NPY, JSON).
#include <unistd.h>

#include <cstdio>

#include "cmd_render.h"
#include "error.h"
#include "long_columns.h"
#include "long_context.h"
#include "render/figure.h"
#include "safetensors.h"  // write_file_atomic

namespace attnscope {

namespace {

std::string thousands(int64_t v) {
  std::string s = std::to_string(v), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

// The text: --text / --text-file cut to --length (an error when shorter), else the held-out split's first N.
std::vector<int64_t> long_text(const RenderArgs& a, const Model& base) {
  if (!a.text.empty() && !a.text_file.empty()) throw Error("give either --text or --text-file, not both");
  std::string text = !a.text_file.empty() ? read_text_file(a.text_file, 1u << 20) : a.text;
  const bool given = !text.empty();
  if (!given) text = split_corpus(read_text_file(default_corpus_path())).valid;
  std::vector<int64_t> ids = base.tokenizer().encode_or_throw(text, parse_unknown_policy(a.unknown));
  if (static_cast<int64_t>(ids.size()) < a.length)
    throw Error("--length " + std::to_string(a.length) + ": the " + (given ? "text" : "held-out text") + " has only " +
                std::to_string(ids.size()) + " characters");
  ids.resize(static_cast<size_t>(a.length));
  return ids;
}

}  // namespace

int render_long(const RenderArgs& a, const std::string& kind) {
  if (!a.scene.empty() || a.grid || a.view != "heatmap")
    throw Error("--length draws pooled heatmaps of one layer and head: no --scene, --grid or --view");
  const PoolMode pool = parse_pool_mode(a.pool);
  auto base = Model::load(a.model.empty() ? default_model_dir() : a.model, a.device);
  std::vector<std::string> specs;
  for (const std::string& c : a.compare)
    for (const std::string& s : session::split_column_list(c)) specs.push_back(s);
  if (specs.empty()) {
    std::string spec = a.variant.empty() ? base->config().variant_summary() : a.variant;
    if (spec == "mixed") throw Error("the checkpoint mixes variants across layers: give --variant");
    for (size_t i = 0; i < a.params.size(); ++i) spec += (i ? "," : ":") + a.params[i];
    specs.push_back(spec);
  }
  const std::vector<int64_t> ids = long_text(a, *base);
  render::Figure f;
  f.title =
      thousands(a.length) + " characters, pooled: each pixel the " + pool_mode_name(pool) + " of the weights it covers";
  f.subtitle = "training context " + thousands(base->config().context) + " characters";
  for (const std::string& spec : specs) {
    session::LongColumn col = session::long_column(*base, spec);
    LongAttention text(col.model, ids);
    const PooledMap m = text.pooled(a.layer, a.head, {}, a.pixels, a.pixels, pool);
    std::fprintf(stderr, "render --length: %s: %.0f ms (%s)\n", spec.c_str(), m.ms,
                 m.tiled ? "tiled" : text.why_full(a.layer).c_str());
    render::Panel p;
    p.title = col.label;
    p.subtitle = "layer " + std::to_string(a.layer) + " · head " + std::to_string(a.head);
    const int64_t per = (a.length + m.rows - 1) / m.rows;
    p.caption = std::to_string(m.rows) + " x " + std::to_string(m.cols) + " pixels, " +
                (a.length % m.rows ? "up to " : "") + std::to_string(per) + " x " + std::to_string(per) +
                " weights each; " + col.where;
    p.axis_step = a.length % m.rows ? 1 : per;  // axis numbers in characters when the pixels divide the text
    p.rows = m.rows;
    p.cols = m.cols;
    p.values = m.value;
    f.panels.push_back(std::move(p));
  }
  f.data_shape = {static_cast<int64_t>(f.panels.size()), f.panels[0].rows, f.panels[0].cols};
  render::Style style;
  if (auto c = render::parse_colormap(a.colormap)) style.colormap = *c;
  render::parse_scale(a.scale, &style.scale);
  style.zoom = a.zoom;
  style.png_scale = a.png_scale;
  const std::string bytes = kind == "png"   ? render::figure_png(f, style)
                            : kind == "svg" ? render::figure_svg(f, style)
                            : kind == "csv" ? render::figure_csv(f)
                            : kind == "npy" ? render::figure_npy(f)
                                            : render::figure_json(f, style);
  if (!a.force && access(a.out.c_str(), F_OK) == 0) throw Error("'" + a.out + "' exists: add --force to overwrite it");
  write_file_atomic(a.out, bytes);
  std::fprintf(stderr, "wrote %s (%zu panel%s)\n", a.out.c_str(), f.panels.size(), f.panels.size() == 1 ? "" : "s");
  return 0;
}

}  // namespace attnscope
