#pragma once
// The figure of a scene drawn from its columns' attention maps: the one place that turns AttentionMaps into
// render::Figure panels, shared by `attnscope render` (app/cli/cmd_render.cpp, which runs the forwards) and the
// GUI's export (which has the maps already). Torch-free: AttentionMaps is a plain struct of engine.h.
#include <string>
#include <vector>

#include "engine.h"
#include "render/figure.h"
#include "scene.h"

namespace attnscope::session {

// One computed column of a scene. Columns with the same label may point at the same maps.
struct ColumnMaps {
  const SceneColumn* column = nullptr;
  const AttentionMaps* maps = nullptr;
};

// runs: the scene's columns that could be computed, in the scene's order (not empty; the first is the reference
// of Diff columns and must have the same shape as they do). row_labels / col_labels: one char_label per query and
// key. text: what the queries read (the subtitle's preview). Panels, titles, captions and data_shape follow the
// scene's columns and style (a Diverging colormap makes differences signed).
render::Figure figure_from_maps(const Scene& s, const std::vector<ColumnMaps>& runs,
                                const std::vector<std::string>& row_labels, const std::vector<std::string>& col_labels,
                                const std::string& text);

}  // namespace attnscope::session
