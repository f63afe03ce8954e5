#pragma once
// A small CPU plotter: line charts (log-log by default, either axis linear) written as PNG (anti-aliased lines and
// markers, axes with decade ticks, a legend), drawn on render's Canvas, which rasterises the text (DejaVu Sans) and
// encodes the PNG. No LibTorch.
#include <string>
#include <vector>

namespace attnscope {

struct PlotSeries {
  std::string label;
  std::vector<double> x, y;  // positive values; consecutive points are joined
};

struct PlotSpec {
  std::string title, x_label, y_label;
  std::vector<PlotSeries> series;
  std::vector<double> x_ticks;  // labelled x positions (e.g. the measured lengths); empty: decades
  struct Mark {
    double x;
    std::string label;
  };
  std::vector<Mark> x_marks;  // vertical dashed lines with a label at the top (e.g. the training context)
  bool markers = true;        // a marker at every point (false: lines only, for dense curves)
  int width = 1400, height = 860;
  bool log_x = true, log_y = true;  // false: a linear axis with 1-2-5 ticks (values may then be <= 0)
};

// Writes the chart as an RGB PNG. Throws Error when no series has a point to draw (positive on log axes), when the font
// (DejaVuSans.ttf in /usr/share/fonts/truetype/dejavu, package fonts-dejavu-core, or $ATTNSCOPE_FONT_DIR) is
// missing, when the size is out of render::Canvas's range, or when the file cannot be written.
void write_loglog_png(const PlotSpec& spec, const std::string& path);

}  // namespace attnscope
