#pragma once
// The heatmap colormaps on the CPU, the same functions as the GUI's shader (shaders/colormaps.glsl): polynomial
// fits of viridis and magma, cividis from nine stops, grayscale, and the blue-white-red diverging map.
#include <cstdint>
#include <optional>
#include <string>

namespace attnscope::render {

enum class Colormap { Viridis, Magma, Cividis, Gray, Diverging };

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb& o) const { return r == o.r && g == o.g && b == o.b; }
};

// t in [0, 1] (clamped); for Diverging 0.5 is zero.
Rgb colormap_rgb(Colormap c, float t);
const char* colormap_name(Colormap c);                        // "viridis", ...
std::optional<Colormap> parse_colormap(const std::string& s);  // accepts "gray" and "grayscale"

}  // namespace attnscope::render
