#pragma once
// The one table of the heatmap colormaps, plain data: polynomial fits of matplotlib's viridis and magma (Matt
// Zucconi's fits, CC0), cividis as nine equally spaced stops of matplotlib's table, grayscale, and a blue-white-red
// diverging map (Moreland's cool-warm end points) for signed matrices. Everything that colours a heatmap reads it:
// the CPU renderer and the window's colour bars through colormap.h (colormap_value, colormap_rgb), and the
// heatmap shader, whose GLSL colormap functions colormap_glsl() writes from this table when the program is built.
#include "style.h"

namespace attnscope::render {

// How an entry's rows are read (t in [0, 1], clamped).
enum class RampKind {
  Polynomial,  // row k is the coefficient of t^k: c0 + t (c1 + t (c2 + ...)), Horner's order
  Stops,       // the rows are equally spaced stops from t = 0 to t = 1, linear in between
};

struct ColormapEntry {
  Colormap id;       // the entry's place in the table and the shader's u_colormap
  const char* name;  // colormap_name(), and the GLSL function's name
  RampKind kind;
  int rows;          // rows of rgb in use (polynomial: degree + 1; stops: at least 2)
  double rgb[9][3];  // [rows, 3] coefficients or stops, per channel
};

inline constexpr ColormapEntry kColormapTable[] = {
    {Colormap::Viridis,
     "viridis",
     RampKind::Polynomial,
     7,
     {{0.2777273272234177, 0.005407344544966578, 0.3340998053353061},
      {0.1050930431085774, 1.404613529898575, 1.384590162594685},
      {-0.3308618287255563, 0.214847559468213, 0.09509516302823659},
      {-4.634230498983486, -5.799100973351585, -19.33244095627987},
      {6.228269936347081, 14.17993336680509, 56.69055260068105},
      {4.776384997670288, -13.74514537774601, -65.35303263337234},
      {-5.435455855934631, 4.645852612178535, 26.3124352495832}}},
    {Colormap::Magma,
     "magma",
     RampKind::Polynomial,
     7,
     {{-0.002136485053939582, -0.000749655052795221, -0.005386127855323933},
      {0.2516605407371642, 0.6775232436837668, 2.494026599312351},
      {8.353717279216625, -3.577719514958484, 0.3144679030132573},
      {-27.66873308576866, 14.26473078096533, -13.64921318813922},
      {52.17613981234068, -27.94360607168351, 12.94416944238394},
      {-50.76852536473588, 29.04658282127291, 4.23415299384598},
      {18.65570506591883, -11.48977351997711, -5.601961508734096}}},
    {Colormap::Cividis,
     "cividis",
     RampKind::Stops,
     9,
     {{0.000, 0.133, 0.306},
      {0.102, 0.220, 0.435},
      {0.263, 0.306, 0.424},
      {0.380, 0.396, 0.435},
      {0.490, 0.486, 0.471},
      {0.608, 0.580, 0.463},
      {0.737, 0.682, 0.424},
      {0.871, 0.788, 0.345},
      {0.996, 0.910, 0.220}}},
    {Colormap::Gray, "gray", RampKind::Stops, 2, {{0, 0, 0}, {1, 1, 1}}},
    // t = 0.5 is zero: cold below, warm above
    {Colormap::Diverging,
     "diverging",
     RampKind::Stops,
     3,
     {{0.230, 0.299, 0.754}, {0.865, 0.865, 0.865}, {0.706, 0.016, 0.150}}},
};
inline constexpr int kColormapCount = int(sizeof kColormapTable / sizeof kColormapTable[0]);

// Each entry sits at its own id, so kColormapTable[int(c)] is colormap c.
constexpr bool colormap_table_in_order() {
  for (int i = 0; i < kColormapCount; ++i)
    if (int(kColormapTable[i].id) != i) return false;
  return true;
}
static_assert(colormap_table_in_order(), "kColormapTable must list the colormaps in the order of enum Colormap");

}  // namespace attnscope::render
