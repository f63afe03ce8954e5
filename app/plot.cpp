#include "plot.h"

#include <stb/stb_image_write.h>  // implementations exported by libstb.so (no *_IMPLEMENTATION here)
#include <stb/stb_truetype.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>

#include "error.h"
#include "safetensors.h"  // write_file_atomic

namespace attnscope {

namespace {

struct Rgb {
  uint8_t r, g, b;
};

// Matplotlib's tab10, then the series cycle through line styles.
const std::array<Rgb, 10> kPalette = {{{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189},
                                       {140, 86, 75}, {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207}}};
enum class Marker { Circle, Square, Diamond };

class Canvas {
 public:
  Canvas(int w, int h) : w_(w), h_(h), px_(static_cast<size_t>(w) * h * 3, 255) {}
  int width() const { return w_; }
  int height() const { return h_; }
  const uint8_t* data() const { return px_.data(); }

  void blend(int x, int y, Rgb c, double a) {
    if (x < 0 || y < 0 || x >= w_ || y >= h_ || a <= 0) return;
    a = std::min(a, 1.0);
    uint8_t* p = &px_[(static_cast<size_t>(y) * w_ + x) * 3];
    p[0] = static_cast<uint8_t>(std::lround(p[0] + (c.r - p[0]) * a));
    p[1] = static_cast<uint8_t>(std::lround(p[1] + (c.g - p[1]) * a));
    p[2] = static_cast<uint8_t>(std::lround(p[2] + (c.b - p[2]) * a));
  }

  // Anti-aliased segment of width w: coverage from each pixel centre's distance to the segment.
  void line(double x0, double y0, double x1, double y1, double w, Rgb c) {
    const double r = w / 2;
    const int xa = int(std::floor(std::min(x0, x1) - r - 1)), xb = int(std::ceil(std::max(x0, x1) + r + 1));
    const int ya = int(std::floor(std::min(y0, y1) - r - 1)), yb = int(std::ceil(std::max(y0, y1) + r + 1));
    const double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    for (int y = std::max(ya, 0); y <= std::min(yb, h_ - 1); ++y)
      for (int x = std::max(xa, 0); x <= std::min(xb, w_ - 1); ++x) {
        const double px = x + 0.5, py = y + 0.5;
        const double t = len2 > 0 ? std::clamp(((px - x0) * dx + (py - y0) * dy) / len2, 0.0, 1.0) : 0.0;
        const double d = std::hypot(px - (x0 + t * dx), py - (y0 + t * dy));
        blend(x, y, c, std::clamp(r + 0.5 - d, 0.0, 1.0));
      }
  }

  // A segment drawn as dashes of `on` pixels with `off` gaps (on <= 0: solid); phase carries across segments.
  void dashed(double x0, double y0, double x1, double y1, double w, Rgb c, double on, double off, double& phase) {
    if (on <= 0) return line(x0, y0, x1, y1, w, c);
    const double len = std::hypot(x1 - x0, y1 - y0);
    double s = 0;
    while (s < len) {
      const double cycle = std::fmod(phase + s, on + off);
      const double run = cycle < on ? std::min(on - cycle, len - s) : std::min(on + off - cycle, len - s);
      if (cycle < on) {
        const double a = s / len, b = (s + run) / len;
        line(x0 + a * (x1 - x0), y0 + a * (y1 - y0), x0 + b * (x1 - x0), y0 + b * (y1 - y0), w, c);
      }
      s += run;
    }
    phase = std::fmod(phase + len, on + off);
  }

  void marker(double cx, double cy, double r, Marker m, Rgb c) {
    for (int y = int(cy - r - 2); y <= int(cy + r + 2); ++y)
      for (int x = int(cx - r - 2); x <= int(cx + r + 2); ++x) {
        const double dx = std::abs(x + 0.5 - cx), dy = std::abs(y + 0.5 - cy);
        const double d = m == Marker::Circle ? std::hypot(dx, dy) : m == Marker::Square ? std::max(dx, dy) : (dx + dy) * 0.75;
        blend(x, y, c, std::clamp(r + 0.5 - d, 0.0, 1.0));
      }
  }

  void rect(int x0, int y0, int x1, int y1, Rgb c, double a = 1.0) {
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) blend(x, y, c, a);
  }

 private:
  int w_, h_;
  std::vector<uint8_t> px_;  // [h, w, 3] RGB
};

class Font {
 public:
  explicit Font(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("plot: cannot read the font " + path + " (install fonts-dejavu-core)");
    ttf_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (!stbtt_InitFont(&info_, ttf_.data(), stbtt_GetFontOffsetForIndex(ttf_.data(), 0)))
      throw Error("plot: " + path + " is not a TrueType font");
  }

  double width(const std::string& s, double px) const {
    const float scale = stbtt_ScaleForPixelHeight(&info_, float(px));
    double w = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      int adv = 0, lsb = 0;
      stbtt_GetCodepointHMetrics(&info_, static_cast<unsigned char>(s[i]), &adv, &lsb);
      w += adv * scale;
      if (i + 1 < s.size()) w += scale * stbtt_GetCodepointKernAdvance(&info_, static_cast<unsigned char>(s[i]),
                                                                      static_cast<unsigned char>(s[i + 1]));
    }
    return w;
  }

  // ASCII text with its baseline at y, starting at x (align: 0 left, 0.5 centre, 1 right of x). vertical: rotated
  // 90 degrees counter-clockwise (reading upwards), x is then the baseline and y the centre.
  void draw(Canvas& cv, double x, double y, const std::string& s, double px, Rgb c, double align = 0,
            bool vertical = false) const {
    const float scale = stbtt_ScaleForPixelHeight(&info_, float(px));
    double pen = -align * width(s, px);
    for (size_t i = 0; i < s.size(); ++i) {
      const int cp = static_cast<unsigned char>(s[i]);
      int w = 0, h = 0, xo = 0, yo = 0;
      unsigned char* bmp = stbtt_GetCodepointBitmapSubpixel(&info_, scale, scale, float(pen - std::floor(pen)), 0.f, cp,
                                                            &w, &h, &xo, &yo);
      for (int by = 0; by < h; ++by)
        for (int bx = 0; bx < w; ++bx) {
          const double a = bmp[by * w + bx] / 255.0;
          const int gx = int(std::floor(pen)) + xo + bx, gy = yo + by;  // glyph coordinates, baseline at 0
          if (vertical) cv.blend(int(x) + gy, int(y) - gx, c, a);
          else cv.blend(int(x) + gx, int(y) + gy, c, a);
        }
      stbtt_FreeBitmap(bmp, nullptr);
      int adv = 0, lsb = 0;
      stbtt_GetCodepointHMetrics(&info_, cp, &adv, &lsb);
      pen += adv * scale;
      if (i + 1 < s.size()) pen += scale * stbtt_GetCodepointKernAdvance(&info_, cp, static_cast<unsigned char>(s[i + 1]));
    }
  }

 private:
  std::vector<unsigned char> ttf_;
  stbtt_fontinfo info_{};
};

std::string tick_text(double v) {
  char b[32];
  if (v >= 1e6 && std::fmod(v, 1e6) == 0) std::snprintf(b, sizeof b, "%gM", v / 1e6);
  else if (v >= 10000 && std::fmod(v, 1000) == 0) std::snprintf(b, sizeof b, "%gk", v / 1000);
  else std::snprintf(b, sizeof b, "%g", v);
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
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * step; v += step) t.push_back(std::abs(v) < 1e-12 ? 0 : v);
  return t;
}

}  // namespace

void write_loglog_png(const PlotSpec& spec, const std::string& path) {
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (const auto& s : spec.series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if ((!spec.log_x || s.x[i] > 0) && (!spec.log_y || s.y[i] > 0) && std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
        xmin = std::min(xmin, s.x[i]);
        xmax = std::max(xmax, s.x[i]);
        ymin = std::min(ymin, s.y[i]);
        ymax = std::max(ymax, s.y[i]);
      }
  if (!(xmin <= xmax)) throw Error("plot: nothing to draw (no series has a point on these axes)");
  for (double t : spec.x_ticks) {
    xmin = std::min(xmin, t);
    xmax = std::max(xmax, t);
  }
  const Font font("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf");
  Canvas cv(spec.width, spec.height);
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
          font.draw(cv, left - 10, y + 5, tick_text(v), 14, ink, 1.0);
        }
      }
  } else {
    for (double v : linear_ticks(ay0, ay1, 8)) {
      const double y = Y(v);
      cv.line(left, y, right, y, 1, grid);
      cv.line(left - 6, y, left, y, 1, ink);
      font.draw(cv, left - 10, y + 5, tick_text(v), 14, ink, 1.0);
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
    font.draw(cv, x, bottom + 24, tick_text(v), 14, ink, 0.5);
  }
  cv.line(left, top, left, bottom, 1.5, ink);
  cv.line(left, bottom, right, bottom, 1.5, ink);
  cv.line(left, top, right, top, 1, grid);
  cv.line(right, top, right, bottom, 1, grid);

  font.draw(cv, (left + right) / 2.0, 36, spec.title, 19, ink, 0.5);
  font.draw(cv, (left + right) / 2.0, spec.height - 22, spec.x_label, 16, ink, 0.5);
  font.draw(cv, 28, (top + bottom) / 2.0 + font.width(spec.y_label, 16) / 2, spec.y_label, 16, ink, 0, true);

  auto drawable = [&](double x, double y) {
    return std::isfinite(x) && std::isfinite(y) && (!spec.log_x || x > 0) && (!spec.log_y || y > 0);
  };
  // Series: colour from the palette, then solid / dashed / dotted with circle / square / diamond markers.
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
      if (have_prev) cv.dashed(px, py, x, y, 2.2, c, dash_on[style], dash_off[style], phase);
      px = x;
      py = y;
      have_prev = true;
    }
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (drawable(s.x[i], s.y[i])) cv.marker(X(s.x[i]), Y(s.y[i]), 3.5, mk, c);
    // legend entry
    const double ly = top + 12 + 22.0 * si, lx = right + 24;
    double lphase = 0;
    cv.dashed(lx, ly, lx + 34, ly, 2.2, c, dash_on[style], dash_off[style], lphase);
    cv.marker(lx + 17, ly, 3.5, mk, c);
    font.draw(cv, lx + 44, ly + 5, s.label, 15, ink);
  }

  std::string png;
  auto append = [](void* ctx, void* data, int n) { static_cast<std::string*>(ctx)->append(static_cast<char*>(data), size_t(n)); };
  if (!stbi_write_png_to_func(append, &png, cv.width(), cv.height(), 3, cv.data(), cv.width() * 3))
    throw Error("plot: PNG encoding failed");
  write_file_atomic(path, png);
}

}  // namespace attnscope
