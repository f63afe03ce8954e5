#pragma once
// The window's views, one file each (internal to app/gui): the toolbar and menu, the sidebar's text panel, a column's
// controls and its five rows, the columns area, the difference window and the status bar. draw_ui (state.h) lays
// them out; the widgets they share are in widgets.h, the state they draw in state.h.
#include <string>

#include "heatmap.h"
#include "state.h"

namespace attnscope::gui {

// toolbar.cpp
void draw_toolbar(App& app);
void draw_menu(App& app);

// text_panel.cpp
void draw_text_panel(App& app);

// columns.cpp: a variant's default parameters, divisor_of_heads ones snapped to this model's head count
ParamValues default_params(const std::string& variant, const App& app);

// column_controls.cpp: the controls over a column's rows; moves and removals are applied after the table is drawn
struct ColumnActions {
  int remove = -1, left = -1, right = -1;
};
void draw_column_controls(App& app, Column& c, int index, int count, ColumnActions& act);
// The explanation of the selected layer's variant (registry.h's Explanation), beside this column's measurements;
// below the column's rows, in its scrolling body.
void draw_explanation(App& app, Column& c, int index);

// row_attention.cpp: row 1
HeatmapStyle style_for(const App& app, const Column& c, const VariantInfo* info);
// The view's colour settings alone (colormap, scale, decades, first key left out), no mask overlay: for heatmaps
// that are not a column's weights (the difference, the attention flow).
HeatmapStyle view_style(const App& app);
void draw_attention_row(App& app, Column& c, int index, const ColumnResult& r, const VariantInfo* info, bool stale);

// row_sparsity.cpp: row 2; mask_editor.cpp: the painted mask of the `custom` variant
void draw_sparsity_row(App& app, Column& c, int index, const ColumnResult& r);
void draw_mask_toggle(App& app, Column& c, int index);         // the editor's switch, in the sparsity row
void draw_mask_editor(App& app, Column& c, int T, int index);  // below the column's rows

// row_cache.cpp, row_timing.cpp, row_quality.cpp: rows 3 to 5
void draw_cache_row(App& app, const ColumnResult& r);
void draw_timing_row(App& app, const Column& c);
void draw_quality_row(const Column& c, const ColumnResult& r);
// row_heads.cpp: row 6, what the heads of the selected layer do (roles, knock-out importance), computed in the
// background (session::Job) for the shown result
void draw_heads_row(App& app, Column& c, int index, const ColumnResult& r);
// For scripted runs: whether the column's heads analysis of its latest request has finished, and a one-line summary
// of it ("" before one has), e.g. "layer 0: h0 broad, h1 -, ...; probe loss 4.1 -> 4.0; knock-outs 6/6".
bool heads_done(const Column& c);
std::string heads_summary(const Column& c);
// The attention flow of the column's current heads analysis, [T, T] rows sum to 1 (empty until it is computed), and
// the number of layers it goes through.
std::vector<float> column_rollout(const Column& c, int64_t* T, int64_t* layers);
// The strongest role of (layer, head) for the grid's tile label ("" when none passes or none is computed yet).
std::string head_role_label(const Column& c, int layer, int head);

// loss_strip.cpp: the "hard characters" strip, each character coloured by the column's loss predicting it
float char_loss_at(const ColumnResult& r, int64_t t);  // nats; NaN for character 0 (nothing predicts it)
ImU32 loss_colour(float nats);
std::string loss_tip(const App& app, const ColumnResult& r, int64_t t);  // "character 12 'a': loss 1.20 nats ..."
// Characters c0 .. c0 + cols of r's text across `width` pixels at pos (a heatmap's key axis); hover explains.
void draw_loss_strip(App& app, const ColumnResult& r, ImVec2 pos, float width, float c0, float cols, float height,
                     bool dim);

// column_view.cpp
void log_latency(App& app, Column& c, int index);  // scripted runs: when the latest request's heatmap is drawn
void draw_column_body(App& app, Column& c, int index);
void draw_columns(App& app, float height);

// diff_view.cpp
void update_diff(App& app);
void draw_diff_window(App& app);

// status_bar.cpp
void draw_status_bar(App& app);

}  // namespace attnscope::gui
