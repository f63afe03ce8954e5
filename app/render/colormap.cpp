#include "colormap.h"

#include <algorithm>
#include <cmath>

namespace attnscope::render {
namespace {

struct Vec3 {
  double x, y, z;
};

Vec3 poly6(const Vec3 (&c)[7], double t) {
  Vec3 r = c[6];
  for (int i = 5; i >= 0; --i) r = {c[i].x + t * r.x, c[i].y + t * r.y, c[i].z + t * r.z};
  return r;
}

Vec3 mix(const Vec3& a, const Vec3& b, double f) {
  return {a.x + (b.x - a.x) * f, a.y + (b.y - a.y) * f, a.z + (b.z - a.z) * f};
}

uint8_t to_byte(double v) { return uint8_t(std::lround(std::clamp(v, 0.0, 1.0) * 255.0)); }

}  // namespace

Rgb colormap_rgb(Colormap c, float tf) {
  const double t = std::clamp(double(tf), 0.0, 1.0);
  static const Vec3 viridis[7] = {{0.2777273272234177, 0.005407344544966578, 0.3340998053353061},
                                  {0.1050930431085774, 1.404613529898575, 1.384590162594685},
                                  {-0.3308618287255563, 0.214847559468213, 0.09509516302823659},
                                  {-4.634230498983486, -5.799100973351585, -19.33244095627987},
                                  {6.228269936347081, 14.17993336680509, 56.69055260068105},
                                  {4.776384997670288, -13.74514537774601, -65.35303263337234},
                                  {-5.435455855934631, 4.645852612178535, 26.3124352495832}};
  static const Vec3 magma[7] = {{-0.002136485053939582, -0.000749655052795221, -0.005386127855323933},
                                {0.2516605407371642, 0.6775232436837668, 2.494026599312351},
                                {8.353717279216625, -3.577719514958484, 0.3144679030132573},
                                {-27.66873308576866, 14.26473078096533, -13.64921318813922},
                                {52.17613981234068, -27.94360607168351, 12.94416944238394},
                                {-50.76852536473588, 29.04658282127291, 4.23415299384598},
                                {18.65570506591883, -11.48977351997711, -5.601961508734096}};
  static const Vec3 cividis[9] = {{0.000, 0.133, 0.306}, {0.102, 0.220, 0.435}, {0.263, 0.306, 0.424},
                                  {0.380, 0.396, 0.435}, {0.490, 0.486, 0.471}, {0.608, 0.580, 0.463},
                                  {0.737, 0.682, 0.424}, {0.871, 0.788, 0.345}, {0.996, 0.910, 0.220}};
  Vec3 v;
  switch (c) {
    case Colormap::Viridis: v = poly6(viridis, t); break;
    case Colormap::Magma: v = poly6(magma, t); break;
    case Colormap::Cividis: {
      const double x = t * 8.0;
      const int i = std::min(int(x), 7);
      v = mix(cividis[i], cividis[i + 1], x - i);
      break;
    }
    case Colormap::Gray: v = {t, t, t}; break;
    case Colormap::Diverging: {
      const Vec3 cold{0.230, 0.299, 0.754}, mid{0.865, 0.865, 0.865}, warm{0.706, 0.016, 0.150};
      v = t < 0.5 ? mix(cold, mid, t * 2.0) : mix(mid, warm, t * 2.0 - 1.0);
      break;
    }
  }
  return {to_byte(v.x), to_byte(v.y), to_byte(v.z)};
}

const char* colormap_name(Colormap c) {
  switch (c) {
    case Colormap::Viridis: return "viridis";
    case Colormap::Magma: return "magma";
    case Colormap::Cividis: return "cividis";
    case Colormap::Gray: return "gray";
    case Colormap::Diverging: return "diverging";
  }
  return "viridis";
}

std::optional<Colormap> parse_colormap(const std::string& s) {
  for (Colormap c : {Colormap::Viridis, Colormap::Magma, Colormap::Cividis, Colormap::Gray, Colormap::Diverging})
    if (s == colormap_name(c)) return c;
  if (s == "grayscale") return Colormap::Gray;
  return std::nullopt;
}

}  // namespace attnscope::render
