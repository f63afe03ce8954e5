#pragma once
// Scene files: what a lecture figure shows (a text, variant columns with their parameters, layer, head and
// view, the colormap, scale and zoom), as versioned JSON. Torch-free, so the GUI can open and save them too.
// Loading is forgiving: a scene from an older or newer attnscope, with unknown variants or out-of-range values,
// loads what it can and lists what it skipped or changed.
#include <cstdint>
#include <string>
#include <vector>

#include "config.h"
#include "params.h"
#include "render/style.h"

namespace attnscope {

constexpr int kSceneVersion = 1;
// The text of a scene that gives none.
extern const char* const kDefaultSceneText;

struct SceneColumn {
  std::string variant = "mha";
  ParamValues params;  // the values given (each checked against the variant's parameters); the rest default
  int layer = 0;       // -1: every layer
  int head = 0;        // -1: every head
  render::PanelKind view = render::PanelKind::Weights;  // Diff: the scene's first column minus this one
  CustomMask mask;  // `custom`: the painted mask ("mask": rows of 0/1; empty = causal)
  // A variant per layer ("layers": objects like a column's, with variant, params and mask; empty = `variant` on
  // every layer). Added within version 1: older readers skip the field and show `variant` on every layer.
  std::vector<LayerSpec> layers;
  // "convert": true runs the scene's model converted to the variant even when a checkpoint trained with it is
  // shipped (model_policy.h): the conversion lesson, converted next to trained. Added within version 1.
  bool convert = false;
};

struct Scene {
  int version = kSceneVersion;
  std::string title;  // the figure's title ("" = made from the columns)
  std::string model;  // checkpoint directory ("" = the bundled assets/models/mha)
  std::string text = kDefaultSceneText;
  std::vector<SceneColumn> columns;
  render::Colormap colormap = render::Colormap::Viridis;
  render::Scale scale = render::Scale::Linear;
  double zoom = 1;  // 0.25..8
};

struct SceneLoad {
  Scene scene;
  std::vector<std::string> skipped;  // one line per thing skipped or changed
};

// Throws Error when the text is not a JSON object or no column can be used; everything else is reported.
SceneLoad parse_scene(const std::string& json_text, const std::string& origin);
SceneLoad load_scene(const std::string& path);             // throws Error (unreadable file, as above)
std::string scene_json(const Scene& s);                    // deterministic, with "version"
void save_scene(const std::string& path, const Scene& s);  // atomic; throws Error

// "gqa:groups=2,impl=sdpa" (the CLI's --compare and --column entries; convert=1 runs the base converted even where a
// checkpoint trained with the variant is shipped). Throws Error for unknown variants or parameters.
SceneColumn parse_column_spec(const std::string& spec);
// "gqa (groups=2)": the variant and the parameters given.
std::string column_label(const SceneColumn& c);

// Checks a scene against a model: columns whose layer or head the model lacks are dropped, each with a line
// appended to `skipped`.
void fit_scene_to_model(Scene& s, int64_t layers, int64_t heads, std::vector<std::string>* skipped);

}  // namespace attnscope
