#pragma once
// `attnscope render`: attention heatmaps to PNG, SVG, CSV, NPY or JSON without a display.
#include <memory>
#include <string>
#include <vector>

#include "engine.h"
#include "render/figure.h"
#include "scene.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace attnscope {

struct RenderArgs {
  std::string model, device = "auto", variant, text, text_file, unknown = "error", scene, out;
  std::vector<std::string> params, compare;
  int layer = 0, head = 0;
  bool grid = false, force = false;
  std::string view = "heatmap", colormap = "viridis", scale = "linear";
  int png_scale = 1;
  double zoom = 1;
  // --length N: pooled heatmaps of N characters (render_long.cpp), each pixel the --pool of the weights it covers.
  int64_t length = 0, pixels = 512;
  std::string pool = "max";
  // Set by add_render_options: the style flags that, given with --scene, override the scene's own.
  const CLI::Option* colormap_given = nullptr;
  const CLI::Option* scale_given = nullptr;
  const CLI::Option* zoom_given = nullptr;
};

void add_render_options(CLI::App* c, RenderArgs& a);
int cmd_render(const RenderArgs& a);
// --length: pooled heatmaps past the context (render_long.cpp); kind: the output's extension.
int render_long(const RenderArgs& a, const std::string& kind);

// The figure of a scene over `ids` on `base` (each column converted from it). lenient: a column the model
// cannot run (an impossible parameter for its head count, ...) is skipped with a line in `skipped`; otherwise
// its Error is thrown.
render::Figure scene_figure(const Scene& s, const Model& base, const std::vector<int64_t>& ids, bool lenient,
                            std::vector<std::string>* skipped);

}  // namespace attnscope
