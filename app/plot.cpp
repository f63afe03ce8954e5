#include "plot.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <cstdint>
#include <cstdio>

#include "error.h"
#include "render/canvas.h"  // the one CPU rasteriser: lines, text (stb_truetype), PNG
#include "safetensors.h"    // write_file_atomic

namespace attnscope {

namespace {

using render::Align;
using render::Canvas;
using render::Font;
using render::Rgb;

// Matplotlib's tab10, then the series cycle through line styles.
const std::array<Rgb, 10> kPalette = {{{31, 119, 180},
                                       {255, 127, 14},
                                       {44, 160, 44},
                                       {214, 39, 40},
                                       {148, 103, 189},
                                       {140, 86, 75},
                                       {227, 119, 194},
                                       {127, 127, 127},
                                       {188, 189, 34},
                                       {23, 190, 207}}};
enum class Marker { Circle, Square, Diamond };

// A segment drawn as dashes of `on` pixels with `off` gaps (on <= 0: solid); phase carries across segments.
void dashed(Canvas& cv, double x0, double y0, double x1, double y1, double w, Rgb c, double on, double off,
            double& phase) {
  if (on <= 0) return cv.line(x0, y0, x1, y1, w, c);
  const double len = std::hypot(x1 - x0, y1 - y0);
  double s = 0;
  while (s < len) {
    const double cycle = std::fmod(phase + s, on + off);
    const double run = cycle < on ? std::min(on - cycle, len - s) : std::min(on + off - cycle, len - s);
    if (cycle < on) {
      const double a = s / len, b = (s + run) / len;
      cv.line(x0 + a * (x1 - x0), y0 + a * (y1 - y0), x0 + b * (x1 - x0), y0 + b * (y1 - y0), w, c);
    }
    s += run;
  }
  phase = std::fmod(phase + len, on + off);
}

// An anti-aliased marker of radius r centred on (cx, cy).
void marker(Canvas& cv, double cx, double cy, double r, Marker m, Rgb c) {
  for (int y = int(cy - r - 2); y <= int(cy + r + 2); ++y)
    for (int x = int(cx - r - 2); x <= int(cx + r + 2); ++x) {
      const double dx = std::abs(x + 0.5 - cx), dy = std::abs(y + 0.5 - cy);
      const double d = m == Marker::Circle   ? std::hypot(dx, dy)
                       : m == Marker::Square ? std::max(dx, dy)
                                             : (dx + dy) * 0.75;
      cv.blend(x, y, c, float(std::clamp(r + 0.5 - d, 0.0, 1.0)));
    }
}

// The chart's text on the canvas. The plot sizes text by its pixel height (ascent to descent), the canvas by the
// em size: `px` here is converted.
struct Text {
  const Font& font = Font::sans();
  double em_per_px = 1 / (font.ascent(1) + font.descent(1));
  double width(const std::string& s, double px) const { return font.width(s, px * em_per_px); }
  // Baseline at y; x is the left end, centre or right end by `align`. vertical: reads upwards, x is the baseline.
  void draw(Canvas& cv, double x, double y, const std::string& s, double px, Rgb c, Align align = Align::Left,
            bool vertical = false) const {
    cv.text(font, s, x, y, px * em_per_px, c, align, vertical);
  }
};

std::string tick_text(double v) {
  char b[32];
  if (v >= 1e6 && std::fmod(v, 1e6) == 0)
    std::snprintf(b, sizeof b, "%gM", v / 1e6);
  else if (v >= 10000 && std::fmod(v, 1000) == 0)
    std::snprintf(b, sizeof b, "%gk", v / 1000);
  else
    std::snprintf(b, sizeof b, "%g", v);
  return b;
}

// About `want` round ticks (1, 2 or 5 times a power of ten apart) covering [lo, hi].
std::vector<double> linear_ticks(double lo, double hi, int want) {
  const double raw = (hi - lo) / std::max(1, want);
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  double step = p;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * p >= raw) {
      step = m * p;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * step; v += step)
    t.push_back(std::abs(v) < 1e-12 ? 0 : v);
  return t;
}

// The series (colour from the palette, then solid / dashed / dotted with circle / square / diamond markers) and
// their legend entries right of the plot; X and Y map data to pixels.
void draw_series(Canvas& cv, const PlotSpec& spec, const Text& font, const std::function<double(double)>& X,
                 const std::function<double(double)>& Y, int top, int right) {
  const Rgb ink{30, 30, 30};
  auto drawable = [&](double x, double y) {
    return std::isfinite(x) && std::isfinite(y) && (!spec.log_x || x > 0) && (!spec.log_y || y > 0);
  };
  const double dash_on[] = {0, 10, 3}, dash_off[] = {0, 6, 4};
  for (size_t si = 0; si < spec.series.size(); ++si) {
    const auto& s = spec.series[si];
    const Rgb c = kPalette[si % kPalette.size()];
    const size_t style = (si / kPalette.size()) % 3;
    const Marker mk = static_cast<Marker>(style);
    double phase = 0;
    bool have_prev = false;
    double px = 0, py = 0;
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (!drawable(s.x[i], s.y[i])) continue;
      const double x = X(s.x[i]), y = Y(s.y[i]);
      if (have_prev) dashed(cv, px, py, x, y, 2.2, c, dash_on[style], dash_off[style], phase);
      px = x;
      py = y;
      have_prev = true;
    }
    for (size_t i = 0; spec.markers && i < std::min(s.x.size(), s.y.size()); ++i)
      if (drawable(s.x[i], s.y[i])) marker(cv, X(s.x[i]), Y(s.y[i]), 3.5, mk, c);
    // legend entry
    const double ly = top + 12 + 22.0 * si, lx = right + 24;
    double lphase = 0;
    dashed(cv, lx, ly, lx + 34, ly, 2.2, c, dash_on[style], dash_off[style], lphase);
    marker(cv, lx + 17, ly, 3.5, mk, c);
    font.draw(cv, lx + 44, ly + 5, s.label, 15, ink);
  }
}

}  // namespace

void write_loglog_png(const PlotSpec& spec, const std::string& path) {
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (const auto& s : spec.series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if ((!spec.log_x || s.x[i] > 0) && (!spec.log_y || s.y[i] > 0) && std::isfinite(s.x[i]) &&
          std::isfinite(s.y[i])) {
        xmin = std::min(xmin, s.x[i]);
        xmax = std::max(xmax, s.x[i]);
        ymin = std::min(ymin, s.y[i]);
        ymax = std::max(ymax, s.y[i]);
      }
  if (!(xmin <= xmax)) throw Error("plot: nothing to draw (no series has a point on these axes)");
  for (const auto& mk : spec.x_marks) {
    xmin = std::min(xmin, mk.x);
    xmax = std::max(xmax, mk.x);
  }
  for (double t : spec.x_ticks) {
    xmin = std::min(xmin, t);
    xmax = std::max(xmax, t);
  }
  const Text font;  // DejaVu Sans (throws Error naming the missing file)
  Canvas cv(spec.width, spec.height, Rgb{255, 255, 255});
  const Rgb ink{30, 30, 30}, grid{225, 225, 225}, minor{242, 242, 242};

  // Layout: the legend on the right, sized by its longest label.
  double legend_w = 0;
  for (const auto& s : spec.series) legend_w = std::max(legend_w, font.width(s.label, 15));
  legend_w += 70;
  const int left = 90, right = spec.width - int(legend_w) - 30, top = 60, bottom = spec.height - 70;
  // Log axes: x padded by 8% of its span in log space, y to whole decades. Linear axes: padded by 4%, 1-2-5 ticks.
  auto fx = [&](double v) { return spec.log_x ? std::log10(v) : v; };
  auto fy = [&](double v) { return spec.log_y ? std::log10(v) : v; };
  const double lx0 = fx(xmin), lx1 = fx(xmax);
  const double padx = spec.log_x ? std::max(0.08 * (lx1 - lx0), 0.05) : lx1 > lx0 ? 0.04 * (lx1 - lx0) : 0.5;
  const double ax0 = lx0 - padx, ax1 = lx1 + padx;
  double ay0, ay1;
  if (spec.log_y) {
    ay0 = std::floor(std::log10(ymin));
    ay1 = std::max(std::ceil(std::log10(ymax)), ay0 + 1);
  } else {
    const double pad = ymax > ymin ? 0.04 * (ymax - ymin) : 0.5;
    ay0 = ymin - pad;
    ay1 = ymax + pad;
  }
  auto X = [&](double v) { return left + (fx(v) - ax0) / (ax1 - ax0) * (right - left); };
  auto Y = [&](double v) { return bottom - (fy(v) - ay0) / (ay1 - ay0) * (bottom - top); };

  if (spec.log_y) {
    // y grid: decades labelled; 2..9 minor, and 2 and 5 labelled when the axis spans at most two decades.
    const bool label_25 = ay1 - ay0 <= 2;
    for (int e = int(ay0); e <= int(ay1); ++e)
      for (int m = 1; m <= 9; ++m) {
        const double v = m * std::pow(10.0, e);
        if (std::log10(v) > ay1 + 1e-9) break;
        const double y = Y(v);
        cv.line(left, y, right, y, 1, m == 1 ? grid : minor);
        if (m == 1 || (label_25 && (m == 2 || m == 5))) {
          cv.line(left - 6, y, left, y, 1, ink);
          font.draw(cv, left - 10, y + 5, tick_text(v), 14, ink, Align::Right);
        }
      }
  } else {
    for (double v : linear_ticks(ay0, ay1, 8)) {
      const double y = Y(v);
      cv.line(left, y, right, y, 1, grid);
      cv.line(left - 6, y, left, y, 1, ink);
      font.draw(cv, left - 10, y + 5, tick_text(v), 14, ink, Align::Right);
    }
  }
  // x grid: the given ticks, or decades (linear: 1-2-5 ticks).
  std::vector<double> xt = spec.x_ticks;
  if (xt.empty() && !spec.log_x) xt = linear_ticks(ax0, ax1, 10);
  if (xt.empty())
    for (int e = int(std::ceil(ax0)); e <= int(std::floor(ax1)); ++e) xt.push_back(std::pow(10.0, e));
  for (double v : xt) {
    const double x = X(v);
    cv.line(x, top, x, bottom, 1, grid);
    cv.line(x, bottom, x, bottom + 6, 1, ink);
    font.draw(cv, x, bottom + 24, tick_text(v), 14, ink, Align::Center);
  }
  cv.line(left, top, left, bottom, 1.5, ink);
  cv.line(left, bottom, right, bottom, 1.5, ink);
  cv.line(left, top, right, top, 1, grid);
  cv.line(right, top, right, bottom, 1, grid);

  for (const auto& mk : spec.x_marks) {
    if (spec.log_x && !(mk.x > 0)) continue;
    const double x = X(mk.x);
    double phase = 0;
    dashed(cv, x, top, x, bottom, 1.5, ink, 8, 6, phase);
    font.draw(cv, x + 6, top + 18, mk.label, 14, ink);
  }
  font.draw(cv, (left + right) / 2.0, 36, spec.title, 19, ink, Align::Center);
  font.draw(cv, (left + right) / 2.0, spec.height - 22, spec.x_label, 16, ink, Align::Center);
  font.draw(cv, 28, (top + bottom) / 2.0, spec.y_label, 16, ink, Align::Center, true);

  draw_series(cv, spec, font, X, Y, top, right);

  write_file_atomic(path, cv.png());
}

}  // namespace attnscope
