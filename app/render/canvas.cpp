#include "canvas.h"

#include <stb/stb_image_write.h>
#include <stb/stb_truetype.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>

#include "error.h"

namespace attnscope::render {

std::vector<uint32_t> utf8_decode(const std::string& s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) {
    const auto b = uint8_t(s[i]);
    int n = b < 0x80 ? 0 : (b & 0xE0) == 0xC0 ? 1 : (b & 0xF0) == 0xE0 ? 2 : (b & 0xF8) == 0xF0 ? 3 : -1;
    uint32_t cp = n == 0 ? b : n == 1 ? (b & 0x1Fu) : n == 2 ? (b & 0x0Fu) : (b & 0x07u);
    bool ok = n >= 0;
    for (int k = 1; ok && k <= n; ++k) {
      if (i + size_t(k) >= s.size() || (uint8_t(s[i + size_t(k)]) & 0xC0) != 0x80)
        ok = false;
      else
        cp = (cp << 6) | (uint8_t(s[i + size_t(k)]) & 0x3Fu);
    }
    if (!ok) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += size_t(n) + 1;
  }
  return out;
}

std::string utf8_encode(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += char(cp);
  } else if (cp < 0x800) {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += char(0xE0 | (cp >> 12));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  } else {
    s += char(0xF0 | (cp >> 18));
    s += char(0x80 | ((cp >> 12) & 0x3F));
    s += char(0x80 | ((cp >> 6) & 0x3F));
    s += char(0x80 | (cp & 0x3F));
  }
  return s;
}

std::string base64(const std::string& bytes) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (i + 1 < bytes.size()) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    if (i + 2 < bytes.size()) v |= uint8_t(bytes[i + 2]);
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? k[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? k[v & 63] : '=';
  }
  return out;
}

// ---- fonts

struct Font::Impl {
  std::string bytes;
  stbtt_fontinfo info;
  int ascent = 0, descent = 0, line_gap = 0;
};

Font::Font(const std::string& path) : impl_(new Impl) {
  std::unique_ptr<Impl> guard(impl_);
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot read font '" + path + "' (install fonts-dejavu-core, or set $ATTNSCOPE_FONT_DIR)");
  impl_->bytes.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  const auto* data = reinterpret_cast<const unsigned char*>(impl_->bytes.data());
  const int offset = stbtt_GetFontOffsetForIndex(data, 0);
  if (offset < 0 || !stbtt_InitFont(&impl_->info, data, offset)) throw Error("'" + path + "' is not a TrueType font");
  stbtt_GetFontVMetrics(&impl_->info, &impl_->ascent, &impl_->descent, &impl_->line_gap);
  family_ = "DejaVu Sans";
  bold_ = path.find("Bold") != std::string::npos;
  guard.release();
}

Font::~Font() { delete impl_; }

const Font& Font::sans(bool bold) {
  auto load = [](const char* file) {
    const char* dir = std::getenv("ATTNSCOPE_FONT_DIR");
    return std::make_unique<Font>(std::string(dir && *dir ? dir : "/usr/share/fonts/truetype/dejavu") + "/" + file);
  };
  if (bold) {
    static const std::unique_ptr<Font> b = load("DejaVuSans-Bold.ttf");
    return *b;
  }
  static const std::unique_ptr<Font> r = load("DejaVuSans.ttf");
  return *r;
}

double Font::ascent(double px) const {
  return impl_->ascent * double(stbtt_ScaleForMappingEmToPixels(&impl_->info, float(px)));
}

double Font::descent(double px) const {
  return -impl_->descent * double(stbtt_ScaleForMappingEmToPixels(&impl_->info, float(px)));
}

double Font::width(const std::string& utf8, double px) const {
  const float scale = stbtt_ScaleForMappingEmToPixels(&impl_->info, float(px));
  double x = 0;
  int prev = 0;
  for (uint32_t cp : utf8_decode(utf8)) {
    const int g = stbtt_FindGlyphIndex(&impl_->info, int(cp));
    int advance = 0, lsb = 0;
    stbtt_GetGlyphHMetrics(&impl_->info, g, &advance, &lsb);
    if (prev) x += scale * stbtt_GetGlyphKernAdvance(&impl_->info, prev, g);
    x += scale * advance;
    prev = g;
  }
  return x;
}

AlphaImage Font::rasterize(const std::string& utf8, double px) const {
  const float scale = stbtt_ScaleForMappingEmToPixels(&impl_->info, float(px));
  AlphaImage img;
  img.baseline = int(std::ceil(ascent(px))) + 1;
  img.width = int(std::ceil(width(utf8, px))) + 4;
  img.height = img.baseline + int(std::ceil(descent(px))) + 2;
  img.alpha.assign(size_t(img.width) * size_t(img.height), 0);
  double x = 1;
  int prev = 0;
  std::vector<uint8_t> glyph;
  for (uint32_t cp : utf8_decode(utf8)) {
    const int g = stbtt_FindGlyphIndex(&impl_->info, int(cp));
    int advance = 0, lsb = 0;
    stbtt_GetGlyphHMetrics(&impl_->info, g, &advance, &lsb);
    if (prev) x += scale * stbtt_GetGlyphKernAdvance(&impl_->info, prev, g);
    const float shift = float(x - std::floor(x));
    int x0, y0, x1, y1;
    stbtt_GetGlyphBitmapBoxSubpixel(&impl_->info, g, scale, scale, shift, 0, &x0, &y0, &x1, &y1);
    const int gw = x1 - x0, gh = y1 - y0;
    if (gw > 0 && gh > 0) {
      glyph.assign(size_t(gw) * size_t(gh), 0);
      stbtt_MakeGlyphBitmapSubpixel(&impl_->info, glyph.data(), gw, gh, gw, scale, scale, shift, 0, g);
      const int ox = int(std::floor(x)) + x0, oy = img.baseline + y0;
      for (int r = 0; r < gh; ++r)
        for (int c = 0; c < gw; ++c) {
          const int X = ox + c, Y = oy + r;
          if (X < 0 || Y < 0 || X >= img.width || Y >= img.height) continue;
          uint8_t& a = img.alpha[size_t(Y) * size_t(img.width) + size_t(X)];
          a = uint8_t(std::min(255, a + glyph[size_t(r) * size_t(gw) + size_t(c)]));
        }
    }
    x += scale * advance;
    prev = g;
  }
  return img;
}

// ---- canvas

Canvas::Canvas(int width, int height, Rgb bg) : w_(width), h_(height) {
  if (width < 1 || height < 1 || width > kMaxCanvasSide || height > kMaxCanvasSide)
    throw Error("an image of " + std::to_string(width) + " x " + std::to_string(height) +
                " pixels is out of range (1.." + std::to_string(kMaxCanvasSide) + " a side)");
  px_.resize(size_t(w_) * size_t(h_) * 3);
  for (size_t i = 0; i < px_.size(); i += 3) {
    px_[i] = bg.r;
    px_[i + 1] = bg.g;
    px_[i + 2] = bg.b;
  }
}

Rgb Canvas::at(int x, int y) const {
  const size_t i = (size_t(y) * size_t(w_) + size_t(x)) * 3;
  return {px_[i], px_[i + 1], px_[i + 2]};
}

void Canvas::set(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
  const size_t i = (size_t(y) * size_t(w_) + size_t(x)) * 3;
  px_[i] = c.r;
  px_[i + 1] = c.g;
  px_[i + 2] = c.b;
}

void Canvas::blend(int x, int y, Rgb c, float alpha) {
  if (x < 0 || y < 0 || x >= w_ || y >= h_ || alpha <= 0) return;
  alpha = std::min(alpha, 1.f);
  const size_t i = (size_t(y) * size_t(w_) + size_t(x)) * 3;
  auto mix = [&](uint8_t d, uint8_t s) { return uint8_t(std::lround(d + (s - d) * alpha)); };
  px_[i] = mix(px_[i], c.r);
  px_[i + 1] = mix(px_[i + 1], c.g);
  px_[i + 2] = mix(px_[i + 2], c.b);
}

void Canvas::fill_rect(double x, double y, double w, double h, Rgb c) {
  const int x0 = std::max(0, int(std::lround(x))), x1 = std::min(w_, int(std::lround(x + w)));
  const int y0 = std::max(0, int(std::lround(y))), y1 = std::min(h_, int(std::lround(y + h)));
  for (int r = y0; r < y1; ++r)
    for (int q = x0; q < x1; ++q) set(q, r, c);
}

void Canvas::stroke_rect(double x, double y, double w, double h, double t, Rgb c) {
  fill_rect(x, y, w, t, c);
  fill_rect(x, y + h - t, w, t, c);
  fill_rect(x, y, t, h, c);
  fill_rect(x + w - t, y, t, h, c);
}

void Canvas::line(double x0, double y0, double x1, double y1, double width, Rgb c) {
  const double r = width / 2;
  const int bx0 = int(std::floor(std::min(x0, x1) - r - 1)), bx1 = int(std::ceil(std::max(x0, x1) + r + 1));
  const int by0 = int(std::floor(std::min(y0, y1) - r - 1)), by1 = int(std::ceil(std::max(y0, y1) + r + 1));
  const double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
  for (int py = std::max(0, by0); py <= std::min(h_ - 1, by1); ++py)
    for (int px = std::max(0, bx0); px <= std::min(w_ - 1, bx1); ++px) {
      const double cx = px + 0.5, cy = py + 0.5;
      const double t = len2 > 0 ? std::clamp(((cx - x0) * dx + (cy - y0) * dy) / len2, 0.0, 1.0) : 0.0;
      const double d = std::hypot(cx - (x0 + t * dx), cy - (y0 + t * dy));
      blend(px, py, c, float(std::clamp(r + 0.5 - d, 0.0, 1.0)));
    }
}

void Canvas::text(const Font& f, const std::string& utf8, double x, double y, double px, Rgb c, Align align,
                  bool vertical) {
  if (utf8.empty()) return;
  const AlphaImage img = f.rasterize(utf8, px);
  const double w = f.width(utf8, px);
  const double shift = align == Align::Left ? 0 : align == Align::Center ? w / 2 : w;
  for (int r = 0; r < img.height; ++r)
    for (int q = 0; q < img.width; ++q) {
      const uint8_t a = img.alpha[size_t(r) * size_t(img.width) + size_t(q)];
      if (!a) continue;
      // image column q is 1 pixel right of the pen origin; row `baseline` is the baseline
      if (vertical) {
        blend(int(std::lround(x)) + r - img.baseline, int(std::lround(y + shift)) - (q - 1), c, a / 255.f);
      } else {
        blend(int(std::lround(x - shift)) + q - 1, int(std::lround(y)) + r - img.baseline, c, a / 255.f);
      }
    }
}

void Canvas::draw(const Canvas& src, int x, int y) {
  for (int r = 0; r < src.h_; ++r)
    for (int q = 0; q < src.w_; ++q) set(x + q, y + r, src.at(q, r));
}

std::string Canvas::png() const {
  std::string out;
  auto sink = [](void* ctx, void* data, int size) {
    static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), size_t(size));
  };
  if (!stbi_write_png_to_func(sink, &out, w_, h_, 3, px_.data(), w_ * 3))
    throw Error("PNG encoding failed for a " + std::to_string(w_) + " x " + std::to_string(h_) + " image");
  return out;
}

}  // namespace attnscope::render
