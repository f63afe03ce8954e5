#pragma once
// A small CPU rasteriser for figures written without a display: an RGB canvas with rectangles, antialiased
// lines and text (stb_truetype with DejaVu Sans), encoded to PNG (stb_image_write). Torch-free and GL-free, so
// the CLI (`attnscope render`, `attnscope bench --plot`) and the GUI's export button share it.
#include <cstdint>
#include <string>
#include <vector>

#include "colormap.h"

namespace attnscope::render {

// Figures larger than this on a side are refused (memory and slide sanity).
constexpr int kMaxCanvasSide = 16384;

// Unicode code points of UTF-8 text (invalid bytes become U+FFFD).
std::vector<uint32_t> utf8_decode(const std::string& s);
std::string utf8_encode(uint32_t cp);
std::string base64(const std::string& bytes);

// Coverage of rasterised text; `baseline` is the row of the baseline.
struct AlphaImage {
  int width = 0, height = 0, baseline = 0;
  std::vector<uint8_t> alpha;
};

class Font {
 public:
  // DejaVu Sans (regular or bold) from /usr/share/fonts/truetype/dejavu, or $ATTNSCOPE_FONT_DIR; loaded once.
  // Throws Error naming the missing file.
  static const Font& sans(bool bold = false);
  explicit Font(const std::string& path);  // throws Error
  Font(const Font&) = delete;
  Font& operator=(const Font&) = delete;
  ~Font();

  const std::string& family() const { return family_; }  // for SVG: "DejaVu Sans"
  bool bold() const { return bold_; }
  // Metrics at a font size of `px` (the em size, as SVG's font-size).
  double width(const std::string& utf8, double px) const;
  double ascent(double px) const;
  double descent(double px) const;  // positive, below the baseline
  AlphaImage rasterize(const std::string& utf8, double px) const;

 private:
  struct Impl;
  Impl* impl_;
  std::string family_;
  bool bold_ = false;
};

enum class Align { Left, Center, Right };

class Canvas {
 public:
  Canvas(int width, int height, Rgb background);  // throws Error outside 1..kMaxCanvasSide
  int width() const { return w_; }
  int height() const { return h_; }
  Rgb at(int x, int y) const;
  const std::vector<uint8_t>& pixels() const { return px_; }  // RGB, row-major, top row first

  void blend(int x, int y, Rgb c, float alpha);  // clipped
  void set(int x, int y, Rgb c);                 // clipped
  // Pixel-aligned: covers the pixels whose centres lie inside [x, x + w) x [y, y + h).
  void fill_rect(double x, double y, double w, double h, Rgb c);
  void stroke_rect(double x, double y, double w, double h, double thickness, Rgb c);
  // Antialiased segment of the given width (round caps).
  void line(double x0, double y0, double x1, double y1, double width, Rgb c);
  // Text with its baseline at y; x is its left end, centre or right end by `align`. vertical: rotated a quarter
  // turn counter-clockwise (reads bottom to top), x is then the baseline's column and `align` runs along y.
  void text(const Font& f, const std::string& utf8, double x, double y, double px, Rgb c, Align align = Align::Left,
            bool vertical = false);
  void draw(const Canvas& src, int x, int y);  // copies src with its top-left corner at (x, y), clipped

  std::string png() const;  // deterministic bytes

 private:
  int w_, h_;
  std::vector<uint8_t> px_;
};

}  // namespace attnscope::render
