#include "colormap.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "colormap_table.h"

namespace attnscope::render {
namespace {

const ColormapEntry& entry(Colormap c) {
  const int i = std::clamp(int(c), 0, kColormapCount - 1);
  return kColormapTable[i];
}

uint8_t to_byte(double v) { return uint8_t(std::lround(std::clamp(v, 0.0, 1.0) * 255.0)); }

// The shortest decimal text that reads back as v (so the GLSL shows the table's own literals), always with a
// '.' or an exponent so GLSL reads a float.
std::string glsl_float(double v) {
  char b[40];
  for (int digits = 1; digits <= 17; ++digits) {
    std::snprintf(b, sizeof b, "%.*g", digits, v);
    if (std::strtod(b, nullptr) == v) break;
  }
  std::string s = b;
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string glsl_vec3(const double (&c)[3]) {
  return "vec3(" + glsl_float(c[0]) + ", " + glsl_float(c[1]) + ", " + glsl_float(c[2]) + ")";
}

// One colormap as a GLSL function, the same arithmetic as colormap_value (in float).
std::string glsl_function(const ColormapEntry& e) {
  const std::string n = std::to_string(e.rows);
  std::string s = "vec3 " + std::string(e.name) + "(float t) {\n";
  if (e.kind == RampKind::Polynomial) {
    for (int k = 0; k < e.rows; ++k) s += "  const vec3 c" + std::to_string(k) + " = " + glsl_vec3(e.rgb[k]) + ";\n";
    std::string expr = "c" + std::to_string(e.rows - 1);  // Horner: c0 + t * (c1 + t * (... + t * c_last))
    for (int k = e.rows - 2; k >= 0; --k)
      expr = "c" + std::to_string(k) + " + t * " + (k == e.rows - 2 ? expr : "(" + expr + ")");
    s += "  return " + expr + ";\n";
  } else {
    s += "  const vec3 s[" + n + "] = vec3[" + n + "](";
    for (int k = 0; k < e.rows; ++k) s += (k == 0 ? "" : k % 3 ? ", " : ",\n      ") + glsl_vec3(e.rgb[k]);
    s += ");\n";
    s += "  float x = clamp(t, 0.0, 1.0) * " + glsl_float(e.rows - 1) + ";\n";
    s += "  int i = min(int(x), " + std::to_string(e.rows - 2) + ");\n";
    s += "  return mix(s[i], s[i + 1], x - float(i));\n";
  }
  return s + "}\n";
}

}  // namespace

std::array<double, 3> colormap_value(Colormap c, double t) {
  t = std::clamp(t, 0.0, 1.0);
  const ColormapEntry& e = entry(c);
  std::array<double, 3> v{};
  for (int ch = 0; ch < 3; ++ch) {
    if (e.kind == RampKind::Polynomial) {
      double r = e.rgb[e.rows - 1][ch];
      for (int k = e.rows - 2; k >= 0; --k) r = e.rgb[k][ch] + t * r;
      v[size_t(ch)] = r;
    } else {
      const double x = t * (e.rows - 1);
      const int i = std::min(int(x), e.rows - 2);
      const double a = e.rgb[i][ch], b = e.rgb[i + 1][ch];
      v[size_t(ch)] = a + (b - a) * (x - i);
    }
    v[size_t(ch)] = std::clamp(v[size_t(ch)], 0.0, 1.0);
  }
  return v;
}

Rgb colormap_rgb(Colormap c, float t) {
  const std::array<double, 3> v = colormap_value(c, double(t));
  return {to_byte(v[0]), to_byte(v[1]), to_byte(v[2])};
}

const char* colormap_name(Colormap c) { return entry(c).name; }

std::optional<Colormap> parse_colormap(const std::string& s) {
  for (const ColormapEntry& e : kColormapTable)
    if (s == e.name) return e.id;
  if (s == "grayscale") return Colormap::Gray;
  return std::nullopt;
}

std::string colormap_glsl() {
  std::string s = "// Colormaps, written by render::colormap_glsl() from app/render/colormap_table.h: do not edit.\n";
  for (const ColormapEntry& e : kColormapTable) s += glsl_function(e);
  s += "// id: the value of render::Colormap\nvec3 colormap(int id, float t) {\n";
  for (const ColormapEntry& e : kColormapTable)
    if (e.id != Colormap::Viridis) s += "  if (id == " + std::to_string(int(e.id)) + ") return " + e.name + "(t);\n";
  return s + "  return viridis(t);\n}\n";
}

}  // namespace attnscope::render
