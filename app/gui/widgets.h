#pragma once
// Small widgets and colours shared by the window's views (widgets.cpp; used by the column rows, the sidebar, the
// generation view, the advisor and the export dialog).
#include <cstdint>
#include <string>
#include <vector>

#include "heatmap.h"
#include "imgui.h"
#include "registry.h"

namespace attnscope::gui {

struct App;

inline const ImVec4 kRed(0.95f, 0.36f, 0.33f, 1), kAmber(0.98f, 0.72f, 0.28f, 1), kGreen(0.45f, 0.82f, 0.50f, 1),
    kDim(0.62f, 0.64f, 0.70f, 1), kAccent(0.40f, 0.65f, 1.0f, 1);

void tooltip(const char* s);        // wrapped, for the last item when hovered
std::string human_bytes(double b);  // "512 B", "12.0 KiB", "3.25 MiB"
std::string glyph(char c);          // a character as an axis label (newline, space and tabs made visible)
std::string quoted(char c);         // a character in quotes for a readout ('\n', ' ', 'a')
void section(const char* title);    // a row's title over a thin rule

// One entry of a table-driven combo: its label and the tooltip that explains it.
struct Choice {
  const char* label;
  const char* tooltip;
};
// A combo over items[0..n) (the index in *v), each item's tooltip on hover. Returns true when *v changed.
bool combo_from_table(const char* label, int* v, const Choice* items, int n);
// A rounded label in `col` (a tinted background), with an optional tooltip.
void badge(const char* text, ImVec4 col, const char* tip = nullptr);

// The head counts a divisor_of_heads parameter may take for a model with n_head heads, within the spec's range.
std::vector<int> head_divisors(int64_t n_head, const ParamSpec& s);
// The colour of a parameter's slider label and of its symbol in the explanation's formula.
ImVec4 param_colour(size_t i);
// One parameter's widget, its label in the parameter's colour; `target` names it for scripted clicks. Returns true
// when the value changed.
bool draw_param(App& app, ParamValues& params, const ParamSpec& s, size_t index, const std::string& target);
// The variant picker, grouped by family. Returns true when another variant was picked.
bool variant_combo(const char* id, std::string& variant);
// The sampling options of both generation UIs (the text panel's "write" and the generation window), on one line:
// temperature, then top-k. `when` ends both tooltips ("" or e.g. "; applies at the next start").
void sampling_sliders(const char* id, float& temperature, int& top_k, const char* when = "");

// Text in coloured runs, word-wrapped to the available width.
struct Run {
  std::string text;
  ImU32 colour;
};
void rich_text(const std::vector<Run>& runs);

// A horizontal colour bar of the style's colormap at pos (w x h), labelled with the values at both ends.
void draw_colorbar(const HeatmapStyle& st, float vmax, ImVec2 pos, float w, float h);

}  // namespace attnscope::gui
