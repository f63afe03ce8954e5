#include "figure.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "canvas.h"
#include "error.h"
#include "npy.h"

namespace attnscope::render {

const char* scale_name(Scale s) { return s == Scale::Log ? "log" : s == Scale::Row ? "row" : "linear"; }

bool parse_scale(const std::string& s, Scale* out) {
  for (Scale v : {Scale::Linear, Scale::Log, Scale::Row})
    if (s == scale_name(v)) return *out = v, true;
  return false;
}

const char* panel_kind_name(PanelKind k) {
  return k == PanelKind::Mask ? "mask" : k == PanelKind::Diff ? "diff" : "heatmap";
}

bool parse_panel_kind(const std::string& s, PanelKind* out) {
  for (PanelKind v : {PanelKind::Weights, PanelKind::Mask, PanelKind::Diff})
    if (s == panel_kind_name(v)) return *out = v, true;
  return false;
}

std::string char_label(uint32_t cp) {
  if (cp == ' ') return "\u2423";   // open box
  if (cp == '\n') return "\u21B5";  // downwards arrow with corner leftwards
  if (cp == '\t') return "\u21E5";  // rightwards arrow to bar
  if (cp < 0x20 || cp == 0x7F) return "\u00B7";
  return utf8_encode(cp);
}

std::vector<float> kl_rows(const float* p, const float* q, int64_t rows, int64_t cols) {
  std::vector<float> kl(size_t(rows), 0.f);
  for (int64_t i = 0; i < rows; ++i) {
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) {
      const double a = p[i * cols + j], b = std::max(double(q[i * cols + j]), 1e-12);
      if (a > 0) s += a * std::log(a / b);
    }
    kl[size_t(i)] = float(s);
  }
  return kl;
}

namespace {

const Rgb kInk{30, 30, 36}, kMuted{96, 98, 110}, kFrame{150, 152, 160}, kWhite{255, 255, 255};
const Rgb kComputed{250, 199, 77}, kMaskOff{33, 36, 43}, kOverlayOff{41, 43, 51};

constexpr double kMargin = 28, kGapX = 26, kGapY = 20, kKeyGap = 30, kBarW = 16, kStripW = 46;
constexpr double kTitlePx = 22, kSubtitlePx = 13, kPanelTitlePx = 13.5, kPanelSubPx = 11, kTickPx = 10.5,
                 kAxisTitlePx = 12, kCaptionPx = 11, kKeyPx = 11;

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

std::string fmt_tick(double v) {
  if (v == 0) return "0";
  if (std::fabs(v) >= 1e-3 && std::fabs(v) < 1e4) return fmt("%.3g", v);
  return fmt("%.0e", v);
}

double nice_step(double range, int target) {
  const double raw = range / target, mag = std::pow(10.0, std::floor(std::log10(raw))), n = raw / mag;
  return (n < 1.5 ? 1 : n < 3 ? 2 : n < 7 ? 5 : 10) * mag;
}

// One colour scale per panel kind present in the figure.
struct ColorKey {
  PanelKind kind = PanelKind::Weights;
  bool signed_values = false;
  Colormap ramp = Colormap::Viridis;
  Scale scale = Scale::Linear;
  double vmax = 1;
  float decades = 3;
  std::string label;
  double y = 0, h = 0;  // layout: the bar (or the legend)
};

Rgb key_color(const ColorKey& k, float v, float rowmax) {
  double norm = std::max(k.scale == Scale::Row ? double(rowmax) : k.vmax, 1e-30);
  if (k.signed_values) return colormap_rgb(Colormap::Diverging, float(0.5 + 0.5 * std::clamp(v / norm, -1.0, 1.0)));
  double t = std::max(double(v), 0.0) / norm;
  if (k.scale == Scale::Log) t = 1.0 + std::log10(std::max(t, 1e-30)) / k.decades;
  return colormap_rgb(k.ramp, float(t));
}

// Ticks of a key as (value, position 0 = bottom .. 1 = top).
std::vector<std::pair<double, double>> key_ticks(const ColorKey& k) {
  std::vector<std::pair<double, double>> t;
  if (k.scale == Scale::Log && !k.signed_values) {
    for (int d = 0; d <= int(k.decades); ++d) t.push_back({k.vmax * std::pow(10.0, -d), 1.0 - d / double(k.decades)});
    return t;
  }
  const double top = k.scale == Scale::Row ? 1.0 : k.vmax, lo = k.signed_values ? -top : 0.0;
  const double step = nice_step(top - lo, k.signed_values ? 4 : 5);
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= top * (1 + 1e-9); v += step)
    t.push_back({std::fabs(v) < step * 1e-6 ? 0.0 : v, (v - lo) / (top - lo)});
  return t;
}

// Axis labelling of one matrix side: characters when the cells are big enough, else position ticks.
struct Axis {
  bool chars = false;
  double font = kTickPx;
  int step = 1;
  double gutter = 0;  // space the labels take outside the matrix
};

struct Box {
  double x = 0, y = 0;  // matrix top-left
  bool row_axis = false, col_axis = false;
};

struct Layout {
  double cell = 1, mw = 0, mh = 0, header = 0, width = 0, height = 0, keys_x = 0, key_w = 0, strip = 0;
  Axis rows, cols;
  std::vector<Box> boxes;
  std::vector<ColorKey> keys;
  int grid_cols = 1, grid_rows = 1;
};

// The colour key of one kind of panel: its ramp, scale and range over every panel of that kind.
ColorKey color_key(const Figure& f, const Style& s, PanelKind kind, bool has_diff) {
  ColorKey k;
  k.kind = kind;
  k.ramp = s.colormap == Colormap::Diverging ? Colormap::Viridis : s.colormap;
  k.scale = s.scale;
  k.decades = s.log_decades;
  bool negative = false;
  double vmax = 0;
  for (const Panel& p : f.panels) {
    if (p.kind != kind) continue;
    for (float v : p.values) {
      if (!std::isfinite(v)) continue;
      vmax = std::max(vmax, double(std::fabs(v)));
      negative = negative || v < 0;
    }
  }
  k.vmax = vmax > 0 ? vmax : 1;
  // Diverging: the diffs are signed; weights too, unless diffs are shown beside them (weights >= 0 keep a ramp)
  const bool diverging = s.colormap == Colormap::Diverging && (kind == PanelKind::Diff || !has_diff);
  k.signed_values = kind != PanelKind::Mask && (negative || diverging);
  if (k.signed_values && k.scale == Scale::Log) k.scale = Scale::Linear;  // no log scale for signed values
  const bool row = k.scale == Scale::Row;
  if (kind == PanelKind::Mask)
    k.label = "pairs";
  else if (kind == PanelKind::Diff)
    k.label = row ? "difference ÷ row max" : k.signed_values ? "A − B" : "|A − B|";
  else
    k.label = row ? "weight ÷ row max" : "attention weight";
  return k;
}

Layout make_layout(const Figure& f, const Style& s) {
  if (f.panels.empty()) throw Error("nothing to draw: the figure has no panels");
  const Font& reg = Font::sans();
  Layout L;
  int64_t rows = 0, cols = 0, step = 1;
  bool labels = true, any_title = false, any_sub = false, any_caption = false, any_strip = false;
  for (const Panel& p : f.panels) {
    rows = std::max(rows, p.rows);
    cols = std::max(cols, p.cols);
    step = std::max(step, p.axis_step);
    labels = labels && !p.row_labels.empty() && !p.col_labels.empty();
    any_title = any_title || !p.title.empty();
    any_sub = any_sub || !p.subtitle.empty();
    any_caption = any_caption || !p.caption.empty();
    any_strip = any_strip || !p.row_stat.empty();
  }
  if (rows < 1 || cols < 1) throw Error("nothing to draw: empty matrix");
  L.grid_cols = f.grid_cols > 0 ? std::min<int>(f.grid_cols, int(f.panels.size())) : int(f.panels.size());
  L.grid_rows = int((f.panels.size() + size_t(L.grid_cols) - 1) / size_t(L.grid_cols));
  const double target = std::clamp(1500.0 / L.grid_cols, 160.0, 720.0) * std::clamp(s.zoom, 0.25, 8.0);
  L.cell = std::max(1.0, std::floor(target / double(std::max(rows, cols))));
  L.mw = L.cell * double(cols);
  L.mh = L.cell * double(rows);
  L.strip = any_strip ? kStripW + 10 : 0;

  const bool chars = labels && L.cell >= 8;
  auto axis = [&](int64_t n, double min_spacing) {
    Axis a;
    a.chars = chars;
    if (chars) {
      a.font = std::min(13.0, std::max(7.0, L.cell * 0.8));
      return a;
    }
    for (int st : {1, 2, 5, 10, 16, 20, 25, 32, 50, 64, 100, 128})
      if (st * L.cell >= min_spacing || st >= n) {
        a.step = st;
        break;
      }
    return a;
  };
  L.rows = axis(rows, kTickPx * 1.5);
  L.cols = axis(cols, reg.width(std::to_string(cols * step), kTickPx) + 8);
  L.rows.gutter = L.rows.chars ? L.rows.font * 1.2 + 6 : reg.width(std::to_string((rows - 1) * step), kTickPx) + 10;
  L.cols.gutter = L.cols.chars ? L.cols.font * 1.3 + 6 : kTickPx + 10;
  const double left = L.rows.gutter + kAxisTitlePx + 10;  // first grid column
  const double below = L.cols.gutter + kAxisTitlePx + 8;  // last grid row
  const double caption = any_caption ? kCaptionPx + 10 : 0;
  L.header = (any_title ? kPanelTitlePx + 8 : 0) + (any_sub ? kPanelSubPx + 5 : 0);

  double top = kMargin + kTitlePx + 6;
  if (!f.subtitle.empty()) top += kSubtitlePx + 8;
  top += 14;
  double y = top, right = 0;
  for (int r = 0; r < L.grid_rows; ++r) {
    const bool last_row = r == L.grid_rows - 1;
    double x = kMargin;
    for (int c = 0; c < L.grid_cols; ++c) {
      const size_t i = size_t(r * L.grid_cols + c);
      if (c == 0) x += left;
      if (i < f.panels.size())
        L.boxes.push_back({x, y + L.header, c == 0, last_row || i + size_t(L.grid_cols) >= f.panels.size()});
      x += L.mw + L.strip + kGapX;
    }
    right = std::max(right, x - kGapX);
    y += L.header + L.mh + (last_row ? below : 4) + caption + kGapY;
  }
  double bottom = y - kGapY;
  // Bottom-row panels in a partly filled last row, and the column axes of the ones above the gap.
  for (size_t i = 0; i < L.boxes.size(); ++i)
    if (L.boxes[i].col_axis && i / size_t(L.grid_cols) != size_t(L.grid_rows - 1))
      bottom = std::max(bottom, L.boxes[i].y + L.mh + below + caption);

  // Colour keys, one per kind of panel, stacked right of the panels.
  const bool has_diff =
      std::any_of(f.panels.begin(), f.panels.end(), [](const Panel& p) { return p.kind == PanelKind::Diff; });
  for (PanelKind kind : {PanelKind::Weights, PanelKind::Diff, PanelKind::Mask})
    if (std::any_of(f.panels.begin(), f.panels.end(), [&](const Panel& p) { return p.kind == kind; }))
      L.keys.push_back(color_key(f, s, kind, has_diff));
  L.keys_x = right + kKeyGap;
  double ky = L.boxes.front().y, kw = 0;
  const double bar_h = std::clamp((L.mh * L.grid_rows) / double(L.keys.size()) - 50, 110.0, 420.0);
  for (ColorKey& k : L.keys) {
    kw = std::max(kw, Font::sans(true).width(k.label, kKeyPx));
    ky += kKeyPx + 10;
    k.y = ky;
    if (k.kind == PanelKind::Mask) {
      k.h = 44;
      kw = std::max(kw, kBarW + 8 + reg.width("not computed", kKeyPx));
    } else {
      k.h = bar_h;
      for (const auto& t : key_ticks(k)) kw = std::max(kw, kBarW + 10 + reg.width(fmt_tick(t.first), kKeyPx));
    }
    ky += k.h + 30;
  }
  L.key_w = kw;
  bottom = std::max(bottom, ky - 30);
  const double title_w = std::max(Font::sans(true).width(f.title, kTitlePx), reg.width(f.subtitle, kSubtitlePx));
  L.width = std::ceil(std::max(L.keys_x + kw, kMargin + title_w) + kMargin);
  L.height = std::ceil(bottom + kMargin);
  return L;
}

// Drawing operations in layout units, for the PNG canvas and for SVG.
class Painter {
 public:
  explicit Painter(double u) : u(u) {}
  virtual ~Painter() = default;
  virtual void rect(double x, double y, double w, double h, Rgb c) = 0;
  virtual void line(double x0, double y0, double x1, double y1, double width, Rgb c) = 0;
  virtual void text(const std::string& s, double x, double y, double px, Rgb c, Align a, bool bold,
                    bool vertical = false) = 0;
  virtual void image(double x, double y, double w, double h, const Canvas& img) = 0;  // img: w*u x h*u pixels
  const double u;                                                                     // device pixels per layout unit
};

class PngPainter : public Painter {
 public:
  PngPainter(Canvas& c, double u) : Painter(u), c_(c) {}
  void rect(double x, double y, double w, double h, Rgb c) override { c_.fill_rect(x * u, y * u, w * u, h * u, c); }
  void line(double x0, double y0, double x1, double y1, double w, Rgb c) override {
    if (x0 == x1 || y0 == y1) {  // axis-aligned: crisp pixels
      c_.fill_rect(std::min(x0, x1) * u - (x0 == x1 ? w * u / 2 : 0), std::min(y0, y1) * u - (y0 == y1 ? w * u / 2 : 0),
                   x0 == x1 ? w * u : std::fabs(x1 - x0) * u, y0 == y1 ? w * u : std::fabs(y1 - y0) * u, c);
      return;
    }
    c_.line(x0 * u, y0 * u, x1 * u, y1 * u, w * u, c);
  }
  void text(const std::string& s, double x, double y, double px, Rgb c, Align a, bool bold, bool vertical) override {
    c_.text(Font::sans(bold), s, x * u, y * u, px * u, c, a, vertical);
  }
  void image(double x, double y, double, double, const Canvas& img) override {
    c_.draw(img, int(std::lround(x * u)), int(std::lround(y * u)));
  }

 private:
  Canvas& c_;
};

std::string svg_num(double v) {
  std::string s = fmt("%.2f", v);
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s == "-0" ? "0" : s;
}

std::string svg_color(Rgb c) {
  char b[8];
  std::snprintf(b, sizeof b, "#%02x%02x%02x", c.r, c.g, c.b);
  return b;
}

std::string xml_escape(const std::string& s) {
  std::string o;
  for (uint32_t cp : utf8_decode(s)) {
    switch (cp) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&apos;"; break;
      default:
        o += (cp < 0x20 && cp != '\t' && cp != '\n') || cp == 0xFFFE || cp == 0xFFFF ? utf8_encode(0xFFFD)
                                                                                     : utf8_encode(cp);
    }
  }
  return o;
}

class SvgPainter : public Painter {
 public:
  explicit SvgPainter(double u) : Painter(u) {}
  std::string out;
  void rect(double x, double y, double w, double h, Rgb c) override {
    out += "<rect x=\"" + svg_num(x) + "\" y=\"" + svg_num(y) + "\" width=\"" + svg_num(w) + "\" height=\"" +
           svg_num(h) + "\" fill=\"" + svg_color(c) + "\"/>\n";
  }
  void line(double x0, double y0, double x1, double y1, double w, Rgb c) override {
    out += "<line x1=\"" + svg_num(x0) + "\" y1=\"" + svg_num(y0) + "\" x2=\"" + svg_num(x1) + "\" y2=\"" +
           svg_num(y1) + "\" stroke=\"" + svg_color(c) + "\" stroke-width=\"" + svg_num(w) + "\"/>\n";
  }
  void text(const std::string& s, double x, double y, double px, Rgb c, Align a, bool bold, bool vertical) override {
    if (s.empty()) return;
    const char* anchor = a == Align::Left ? "start" : a == Align::Center ? "middle" : "end";
    out += "<text x=\"" + svg_num(x) + "\" y=\"" + svg_num(y) + "\" font-size=\"" + svg_num(px) + "\" fill=\"" +
           svg_color(c) + "\" text-anchor=\"" + anchor + "\"" + (bold ? " font-weight=\"bold\"" : "") +
           (vertical ? " transform=\"rotate(-90 " + svg_num(x) + " " + svg_num(y) + ")\"" : "") + ">" + xml_escape(s) +
           "</text>\n";
  }
  void image(double x, double y, double w, double h, const Canvas& img) override {
    out += "<image x=\"" + svg_num(x) + "\" y=\"" + svg_num(y) + "\" width=\"" + svg_num(w) + "\" height=\"" +
           svg_num(h) +
           "\" preserveAspectRatio=\"none\" style=\"image-rendering:pixelated\" xlink:href=\"data:image/png;base64," +
           base64(img.png()) + "\"/>\n";
  }
};

// The matrix of one panel in device pixels (cell * u per cell), as the GUI's shader draws it.
Canvas matrix_image(const Panel& p, const ColorKey& k, const Layout& L, double u) {
  const int cp = int(std::lround(L.cell * u));
  Canvas img(int(p.cols) * cp, int(p.rows) * cp, kWhite);
  const bool borders = L.cell >= 9;
  const int bw = int(std::lround(u));
  for (int64_t i = 0; i < p.rows; ++i) {
    float rowmax = 0;
    for (int64_t j = 0; j < p.cols; ++j)
      if (p.mask.empty() || p.mask[size_t(i * p.cols + j)])
        rowmax = std::max(rowmax, std::fabs(p.values[size_t(i * p.cols + j)]));
    for (int64_t j = 0; j < p.cols; ++j) {
      const size_t at = size_t(i * p.cols + j);
      const bool computed = p.mask.empty() || p.mask[at];
      const float v = p.values[at];
      Rgb c = p.kind == PanelKind::Mask ? (v > 0.5f ? kComputed : kMaskOff)
                                        : key_color(k, std::isfinite(v) ? v : 0.f, rowmax);
      const bool hatch = !computed || (p.kind == PanelKind::Mask && v <= 0.5f);
      const Rgb base = p.kind == PanelKind::Mask ? kMaskOff : kOverlayOff;
      const Rgb lit{uint8_t(base.r + 31), uint8_t(base.g + 31), uint8_t(base.b + 31)};
      for (int y = 0; y < cp; ++y)
        for (int x = 0; x < cp; ++x) {
          const int X = int(j) * cp + x, Y = int(i) * cp + y;
          Rgb px = hatch ? (std::fmod((X + Y) / u, 7.0) < 1.4 ? lit : base) : c;
          if (borders && (x < bw || y < bw)) px = {uint8_t(px.r * 0.72), uint8_t(px.g * 0.72), uint8_t(px.b * 0.72)};
          img.set(X, Y, px);
        }
    }
  }
  return img;
}

Canvas key_image(const ColorKey& k, double h, double u) {
  const int W = int(std::lround(kBarW * u)), H = int(std::lround(h * u));
  Canvas img(W, std::max(H, 1), kWhite);
  for (int y = 0; y < H; ++y) {
    const double f = 1.0 - (y + 0.5) / H;  // 1 at the top
    const double top = k.scale == Scale::Row ? 1.0 : k.vmax;
    double v = k.signed_values ? (2 * f - 1) * top : f * top;
    if (k.scale == Scale::Log && !k.signed_values) v = top * std::pow(10.0, -(1 - f) * k.decades);
    ColorKey kk = k;
    if (kk.scale == Scale::Row) kk.scale = Scale::Linear, kk.vmax = 1;
    const Rgb c = key_color(kk, float(v), 1.f);
    for (int x = 0; x < W; ++x) img.set(x, y, c);
  }
  return img;
}

void paint(const Figure& f, const Layout& L, Painter& P) {
  P.rect(0, 0, L.width, L.height, kWhite);
  double y = kMargin + kTitlePx;
  P.text(f.title, kMargin, y, kTitlePx, kInk, Align::Left, true);
  if (!f.subtitle.empty()) P.text(f.subtitle, kMargin, y + kSubtitlePx + 8, kSubtitlePx, kMuted, Align::Left, false);

  auto key_for = [&](PanelKind kind) -> const ColorKey& {
    for (const ColorKey& k : L.keys)
      if (k.kind == kind) return k;
    return L.keys.front();
  };
  for (size_t n = 0; n < f.panels.size(); ++n) {
    const Panel& p = f.panels[n];
    const Box& b = L.boxes[n];
    const double pw = L.cell * double(p.cols), ph = L.cell * double(p.rows);
    double ty = b.y - L.header + kPanelTitlePx;
    // a title wider than its panel gets a smaller font (grids of small panels)
    const double tw = Font::sans(true).width(p.title, kPanelTitlePx);
    const double tpx = tw > pw + kGapX - 6 ? std::max(8.0, kPanelTitlePx * (pw + kGapX - 6) / tw) : kPanelTitlePx;
    P.text(p.title, b.x + pw / 2, ty, tpx, kInk, Align::Center, true);
    if (!p.subtitle.empty())
      P.text(p.subtitle, b.x + pw / 2, ty + kPanelSubPx + 5, kPanelSubPx, kMuted, Align::Center, false);
    P.image(b.x, b.y, pw, ph, matrix_image(p, key_for(p.kind), L, P.u));
    P.line(b.x - 0.5, b.y - 0.5, b.x + pw + 0.5, b.y - 0.5, 1, kFrame);
    P.line(b.x - 0.5, b.y + ph + 0.5, b.x + pw + 0.5, b.y + ph + 0.5, 1, kFrame);
    P.line(b.x - 0.5, b.y - 0.5, b.x - 0.5, b.y + ph + 0.5, 1, kFrame);
    P.line(b.x + pw + 0.5, b.y - 0.5, b.x + pw + 0.5, b.y + ph + 0.5, 1, kFrame);

    if (b.row_axis) {
      for (int64_t i = 0; i < p.rows; ++i) {
        const double cy = b.y + (double(i) + 0.5) * L.cell;
        if (L.rows.chars) {
          if (size_t(i) < p.row_labels.size())
            P.text(p.row_labels[size_t(i)], b.x - 5, cy + L.rows.font * 0.36, L.rows.font, kInk, Align::Right, false);
        } else if (i % L.rows.step == 0) {
          P.line(b.x - 4, cy, b.x - 1, cy, 1, kMuted);
          P.text(std::to_string(i * p.axis_step), b.x - 6, cy + kTickPx * 0.36, kTickPx, kMuted, Align::Right, false);
        }
      }
      P.text("query", b.x - L.rows.gutter - 6, b.y + ph / 2, kAxisTitlePx, kMuted, Align::Center, false, true);
    }
    const double cap_y = b.y + ph + (b.col_axis ? L.cols.gutter + kAxisTitlePx + 8 : 4) + kCaptionPx + 6;
    if (b.col_axis) {
      for (int64_t j = 0; j < p.cols; ++j) {
        const double cx = b.x + (double(j) + 0.5) * L.cell;
        if (L.cols.chars) {
          if (size_t(j) < p.col_labels.size())
            P.text(p.col_labels[size_t(j)], cx, b.y + ph + 4 + L.cols.font, L.cols.font, kInk, Align::Center, false);
        } else if (j % L.cols.step == 0) {
          P.line(cx, b.y + ph + 1, cx, b.y + ph + 4, 1, kMuted);
          P.text(std::to_string(j * p.axis_step), cx, b.y + ph + 5 + kTickPx, kTickPx, kMuted, Align::Center, false);
        }
      }
      P.text("key", b.x + pw / 2, b.y + ph + L.cols.gutter + kAxisTitlePx + 2, kAxisTitlePx, kMuted, Align::Center,
             false);
    }
    if (!p.caption.empty()) {  // a caption wider than its panel's slot gets a smaller font, never the next panel's room
      const double room = pw + L.strip + kGapX - 6, cw = Font::sans().width(p.caption, kCaptionPx);
      P.text(p.caption, b.x, cap_y, cw > room ? std::max(7.0, kCaptionPx * room / cw) : kCaptionPx, kMuted, Align::Left,
             false);
    }

    if (!p.row_stat.empty()) {
      const double sx = b.x + pw + 10;
      const float mx = *std::max_element(p.row_stat.begin(), p.row_stat.end());
      P.text(p.row_stat_label, sx, b.y - 5, kTickPx, kMuted, Align::Left, false);
      P.line(sx, b.y, sx, b.y + ph, 1, kFrame);
      for (size_t i = 0; i < p.row_stat.size(); ++i) {
        const double len = mx > 0 ? kStripW * std::max(0.f, p.row_stat[i]) / mx : 0;
        if (len > 0)
          P.rect(sx, b.y + double(i) * L.cell + (L.cell > 3 ? 0.5 : 0), len,
                 std::max(L.cell - (L.cell > 3 ? 1 : 0), 1.0), {90, 92, 104});
      }
      P.text(fmt_tick(mx), sx + kStripW, b.y + ph + 5 + kTickPx, kTickPx, kMuted, Align::Right, false);
    }
  }

  for (const ColorKey& k : L.keys) {
    P.text(k.label, L.keys_x, k.y - 8, kKeyPx, kInk, Align::Left, true);
    if (k.kind == PanelKind::Mask) {
      const char* names[2] = {"computed", "not computed"};
      for (int i = 0; i < 2; ++i) {
        Panel swatch;
        swatch.kind = PanelKind::Mask;
        swatch.rows = swatch.cols = 1;
        swatch.values = {i == 0 ? 1.f : 0.f};
        Layout sl = L;
        sl.cell = 16;
        P.image(L.keys_x, k.y + i * 24, 16, 16, matrix_image(swatch, k, sl, P.u));
        P.text(names[i], L.keys_x + kBarW + 8, k.y + i * 24 + 12, kKeyPx, kInk, Align::Left, false);
      }
      continue;
    }
    P.image(L.keys_x, k.y, kBarW, k.h, key_image(k, k.h, P.u));
    for (const auto& t : key_ticks(k)) {
      const double ty = k.y + (1 - t.second) * k.h;
      P.line(L.keys_x + kBarW, ty, L.keys_x + kBarW + 4, ty, 1, kInk);
      P.text(fmt_tick(t.first), L.keys_x + kBarW + 7, ty + kKeyPx * 0.36, kKeyPx, kInk, Align::Left, false);
    }
    if (k.scale == Scale::Log && !k.signed_values)
      P.text("log scale", L.keys_x, k.y + k.h + 16, kKeyPx - 1, kMuted, Align::Left, false);
  }
}

size_t value_count(const Figure& f) {
  size_t n = 0;
  for (const Panel& p : f.panels) n += p.values.size();
  return n;
}

}  // namespace

void figure_size(const Figure& f, const Style& s, int* width, int* height) {
  const Layout L = make_layout(f, s);
  *width = int(std::lround(L.width * s.png_scale));
  *height = int(std::lround(L.height * s.png_scale));
}

std::string figure_png(const Figure& f, const Style& s) {
  const Layout L = make_layout(f, s);
  const double W = L.width * s.png_scale, H = L.height * s.png_scale;
  if (W > kMaxCanvasSide || H > kMaxCanvasSide)
    throw Error("the figure would be " + std::to_string(int(W)) + " x " + std::to_string(int(H)) +
                " pixels, more than " + std::to_string(kMaxCanvasSide) +
                " a side: lower --png-scale or --zoom, or show fewer panels");
  Canvas c(int(std::lround(W)), int(std::lround(H)), kWhite);
  PngPainter P(c, s.png_scale);
  paint(f, L, P);
  return c.png();
}

std::string figure_svg(const Figure& f, const Style& s) {
  const Layout L = make_layout(f, s);
  if (L.width * s.png_scale > kMaxCanvasSide || L.height * s.png_scale > kMaxCanvasSide)
    throw Error("the figure would be " + std::to_string(int(L.width * s.png_scale)) + " x " +
                std::to_string(int(L.height * s.png_scale)) + " pixels, more than " + std::to_string(kMaxCanvasSide) +
                " a side: lower --png-scale or --zoom, or show fewer panels");
  SvgPainter P(s.png_scale);
  paint(f, L, P);
  std::string head =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" "
      "xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\"" +
      svg_num(L.width) + "\" height=\"" + svg_num(L.height) + "\" viewBox=\"0 0 " + svg_num(L.width) + " " +
      svg_num(L.height) + "\" font-family=\"DejaVu Sans, Verdana, sans-serif\">\n<title>" + xml_escape(f.title) +
      "</title>\n";
  return head + P.out + "</svg>\n";
}

std::string figure_csv(const Figure& f) {
  std::string out;
  char buf[32];
  for (const Panel& p : f.panels) {
    if (f.panels.size() > 1) out += "# " + p.title + (p.subtitle.empty() ? "" : " | " + p.subtitle) + "\n";
    for (int64_t i = 0; i < p.rows; ++i) {
      for (int64_t j = 0; j < p.cols; ++j) {
        std::snprintf(buf, sizeof buf, j ? ",%.9g" : "%.9g", double(p.values[size_t(i * p.cols + j)]));
        out += buf;
      }
      out += "\n";
    }
  }
  return out;
}

std::string figure_npy(const Figure& f) {
  std::vector<float> all;
  all.reserve(value_count(f));
  for (const Panel& p : f.panels) all.insert(all.end(), p.values.begin(), p.values.end());
  std::vector<int64_t> shape = f.data_shape;
  if (shape.empty()) shape = {int64_t(f.panels.size()), f.panels[0].rows, f.panels[0].cols};
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (size_t(n) != all.size()) throw Error("figure data does not match its shape");
  return npy_bytes(shape, all.data());
}

std::string figure_json(const Figure& f, const Style& s) {
  using nlohmann::ordered_json;
  ordered_json j = {{"title", f.title},
                    {"subtitle", f.subtitle},
                    {"colormap", colormap_name(s.colormap)},
                    {"scale", scale_name(s.scale)},
                    {"shape", f.data_shape},
                    {"panels", ordered_json::array()}};
  for (const Panel& p : f.panels) {
    ordered_json rows = ordered_json::array();
    for (int64_t i = 0; i < p.rows; ++i)
      rows.push_back(std::vector<float>(p.values.begin() + i * p.cols, p.values.begin() + (i + 1) * p.cols));
    ordered_json pj = {
        {"title", p.title}, {"subtitle", p.subtitle}, {"caption", p.caption},       {"view", panel_kind_name(p.kind)},
        {"rows", p.rows},   {"cols", p.cols},         {"row_labels", p.row_labels}, {"col_labels", p.col_labels},
        {"values", rows}};
    if (!p.mask.empty() && std::find(p.mask.begin(), p.mask.end(), 0) != p.mask.end()) {
      ordered_json m = ordered_json::array();
      for (int64_t i = 0; i < p.rows; ++i)
        m.push_back(std::vector<int>(p.mask.begin() + i * p.cols, p.mask.begin() + (i + 1) * p.cols));
      pj["mask"] = m;
    }
    if (!p.row_stat.empty()) {
      pj["row_stat_label"] = p.row_stat_label;
      pj["row_stat"] = p.row_stat;
    }
    j["panels"].push_back(pj);
  }
  return j.dump() + "\n";
}

}  // namespace attnscope::render
