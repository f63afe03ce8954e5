#pragma once
// The heatmap colormaps on the CPU, read from the one table (colormap_table.h) exactly as the GUI's shader reads
// it: the shader's GLSL functions are written from the same table by colormap_glsl().
#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "style.h"

namespace attnscope::render {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb& o) const { return r == o.r && g == o.g && b == o.b; }
};

// t in [0, 1] (clamped); for Diverging 0.5 is zero. Channels in [0, 1] (clamped).
std::array<double, 3> colormap_value(Colormap c, double t);
// The same, rounded to bytes.
Rgb colormap_rgb(Colormap c, float t);
const char* colormap_name(Colormap c);                         // "viridis", ...
std::optional<Colormap> parse_colormap(const std::string& s);  // accepts "gray" and "grayscale"

// GLSL source of the table: one `vec3 NAME(float t)` per colormap (viridis, magma, cividis, gray, diverging;
// no clamping of the result: the render target does it) and `vec3 colormap(int id, float t)` dispatching on the
// value of Colormap. The heatmap program prepends it to heatmap.frag.glsl.
std::string colormap_glsl();

}  // namespace attnscope::render
