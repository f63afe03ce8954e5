#pragma once
// Heatmap figures of attention matrices, laid out once and painted to PNG (the CPU canvas) or SVG (vector text
// and axes, the matrices as embedded PNG images), plus the raw matrices as CSV, NPY and JSON. Torch-free: the
// caller fills the panels (app/session/scene_figure.cpp turns a scene's AttentionMaps into them).
#include <cstdint>
#include <string>
#include <vector>

#include "colormap.h"
#include "style.h"

namespace attnscope::render {

const char* scale_name(Scale s);
bool parse_scale(const std::string& s, Scale* out);
const char* panel_kind_name(PanelKind k);  // "heatmap", "mask", "diff"
bool parse_panel_kind(const std::string& s, PanelKind* out);

struct Panel {
  std::string title;     // variant and parameters, e.g. "gqa (groups=2)"
  std::string subtitle;  // "layer 0 · head 3"
  std::string caption;   // under the matrix: "37% of pairs computed", the KL summary of a diff
  PanelKind kind = PanelKind::Weights;
  int64_t rows = 0, cols = 0;                       // queries, keys
  std::vector<float> values;                        // [rows, cols]: weights, 1/0 for masks, A - B or |A - B| for diffs
  std::vector<uint8_t> mask;                        // [rows, cols] 1 = pair computed; empty = all computed
  std::vector<std::string> row_labels, col_labels;  // one per row / column (characters), or empty
  std::vector<float> row_stat;  // [rows] drawn as bars right of the matrix (diff: KL per row), or empty
  std::string row_stat_label;   // heading of those bars
  int64_t axis_step = 1;        // positions per cell in the axis numbers (a pooled map: characters per pixel)
};

struct Figure {
  std::string title, subtitle;
  std::vector<Panel> panels;
  int grid_cols = 0;                // panels per row; 0 = one row
  std::vector<int64_t> data_shape;  // shape of the exported matrices (its product = the panels' values)
};

struct Style {
  Colormap colormap = Colormap::Viridis;  // Diverging: signed diffs (A - B), and signed weights without diffs
  Scale scale = Scale::Linear;
  double zoom = 1;    // cell size multiplier (0.25..8)
  int png_scale = 1;  // device pixels per layout unit (1..4)
  float log_decades = 3;
};

// A character as an axis label: space, newline and tab become visible symbols.
std::string char_label(uint32_t cp);
// KL(p_row || q_row) per row (nats), q clamped to >= 1e-12, entries with p <= 0 skipped.
std::vector<float> kl_rows(const float* p, const float* q, int64_t rows, int64_t cols);

// Layout size in pixels of the PNG (png_scale applied). Throws Error for figures without panels.
void figure_size(const Figure& f, const Style& s, int* width, int* height);
// Throw Error when the image would be larger than kMaxCanvasSide a side (the message names the size and the
// options that shrink it).
std::string figure_png(const Figure& f, const Style& s);
std::string figure_svg(const Figure& f, const Style& s);
std::string figure_csv(const Figure& f);
std::string figure_npy(const Figure& f);
std::string figure_json(const Figure& f, const Style& s);

}  // namespace attnscope::render
