#pragma once
// The small enums a figure's style is made of: which colormap, which scale, what a panel shows. Dependency-free,
// so a scene (app/session/scene.h) can name them without including the renderer; the names and parsers live in
// colormap.h (colormap_name, parse_colormap) and figure.h (scale_name, panel_kind_name, ...).

namespace attnscope::render {

// The values are the heatmap shader's u_colormap (colormap_table.h lists them in this order). The window's menu
// offers the first four; Diverging is chosen by signed data.
enum class Colormap { Viridis = 0, Magma = 1, Cividis = 2, Gray = 3, Diverging = 4 };
// The values are the heatmap shader's u_scale and the window's scale menu index.
enum class Scale { Linear = 0, Log = 1, Row = 2 };  // row: each row divided by its own max |value|
enum class PanelKind { Weights, Mask, Diff };

}  // namespace attnscope::render
