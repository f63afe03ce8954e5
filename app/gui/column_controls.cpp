// A column's controls above its rows (variant picker, move/remove, badges, per-layer tabs, parameter sliders,
// layer/head/view), and the explanation of its variant drawn below the rows.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "imgui.h"
#include "model_policy.h"
#include "registry.h"
#include "state.h"
#include "views.h"
#include "widgets.h"

namespace attnscope::gui {

namespace {

const Choice kViews[] = {
    {"weights", "the effective attention matrix"},
    {"mask", "which (query, key) pairs the variant computes at all (hatched: skipped)"},
};

std::string short_dir(const std::string& dir) {  // the last two path components: "models/gqa"
  size_t a = dir.find_last_of('/');
  if (a == std::string::npos || a == 0) return dir;
  size_t b = dir.find_last_of('/', a - 1);
  return b == std::string::npos ? dir : dir.substr(b + 1);
}

// The formula with each {param} in its slider's colour (the braces dropped).
std::vector<Run> formula_runs(const VariantInfo& v) {
  std::vector<Run> runs;
  const std::string& f = v.explain.formula;
  const ImU32 plain = ImGui::GetColorU32(ImGuiCol_Text);
  size_t at = 0;
  while (at < f.size()) {
    const size_t open = f.find('{', at), close = open == std::string::npos ? open : f.find('}', open);
    if (close == std::string::npos) {
      runs.push_back({f.substr(at), plain});
      break;
    }
    const std::string name = f.substr(open + 1, close - open - 1);
    size_t k = 0;
    while (k < v.params.size() && v.params[k].name != name) ++k;
    runs.push_back({f.substr(at, open - at), plain});
    runs.push_back({name, k < v.params.size() ? ImGui::GetColorU32(param_colour(k)) : plain});
    at = close + 1;
  }
  return runs;
}

// A label and its value in one wrapped line.
void fact(const char* label, const std::string& value) {
  rich_text({{std::string(label) + "  ", ImGui::GetColorU32(kDim)}, {value, ImGui::GetColorU32(ImGuiCol_Text)}});
}

}  // namespace

// The explanation of the selected layer's variant (registry.h's Explanation), beside this column's measurements;
// below the column's rows, in its scrolling body.
void draw_explanation(App& app, Column& c, int index) {
  const VariantInfo* v = layer_variant(c, c.layer);
  if (!v) return;
  ImGui::SetNextItemOpen(c.explain_open);
  if (!c.explain_open) return;
  if (c.explain_scroll > 0) {  // just opened: bring it into view (the heatmap keeps its size above)
    ImGui::SetScrollHereY(0);
    --c.explain_scroll;
  }
  const std::string title = "Explanation: " + v->name + (c.per_layer ? " (layer " + std::to_string(c.layer) + ")" : "");
  section(title.c_str());
  mark_target(app, ("col" + std::to_string(index) + ".explanation").c_str());
  const float fs = ImGui::GetFontSize();
  ImGui::Indent(fs * 0.4f);
  ImGui::PushTextWrapPos(0);
  ImGui::TextColored(kDim, "%s", v->description.c_str());
  ImGui::PopTextWrapPos();
  ImGui::PushFont(app.fonts.mono);
  rich_text(formula_runs(*v));
  ImGui::PopFont();
  const ParamValues& p = c.per_layer && c.layer < int(c.layers.size()) ? c.layers[size_t(c.layer)].params : c.params;
  if (!v->params.empty()) {  // the symbols' current values, in their colours
    std::vector<Run> legend;
    for (size_t k = 0; k < v->params.size(); ++k) {
      auto it = p.find(v->params[k].name);
      legend.push_back({v->params[k].name + " = " + (it == p.end() ? "?" : format_param(v->params[k], it->second)) +
                            (k + 1 < v->params.size() ? ",  " : ""),
                        ImGui::GetColorU32(param_colour(k))});
    }
    rich_text(legend);
  }
  ImGui::PushTextWrapPos(0);
  ImGui::TextColored(kDim, "%s", v->citation.c_str());
  ImGui::PopTextWrapPos();
  fact("time", v->explain.time);
  fact("memory", v->explain.memory);
  fact("KV cache / token / layer", v->cache_formula + " bytes (b: bytes per element)");
  fact("causal", v->causal ? "yes: a character sees only itself and earlier ones"
                           : "no: characters see later ones too (cannot write text left to right)");
  ImGui::PushTextWrapPos(0);
  ImGui::TextUnformatted(v->explain.when.c_str());
  ImGui::PopTextWrapPos();
  // measured: this column's forward (all layers) and the scaling panel's single-layer bench of the variant
  std::vector<double> ms = c.timing.ms;
  std::sort(ms.begin(), ms.end());
  const auto& r = c.shown;
  std::string here = ms.size() < 3 ? "measuring..." : "";
  if (ms.size() >= 3 && r && r->ok) {
    char b[96];
    std::snprintf(b, sizeof b, "median %.2f ms for %lld chars, %lld layers", ms[ms.size() / 2],
                  (long long)r->maps->queries, (long long)r->maps->layers);
    here = b;
  }
  if (r && r->ok && c.layer < int(r->maps->cache_formula_bytes.size()) && r->maps->queries > 0)
    here += ";  cache " +
            human_bytes(double(r->maps->cache_formula_bytes[size_t(c.layer)]) / double(r->maps->queries)) +
            " / token in layer " + std::to_string(c.layer);
  ImGui::TextColored(kAccent, "measured");
  fact("this column", here);
  std::string bench;
  if (app.scaling.run) {
    std::vector<std::pair<int64_t, double>> pts;
    for (const BenchPoint& b : app.scaling.run->points())
      if (b.variant == v->name && b.status == "ok") pts.push_back({b.length, b.median_ms});
    std::sort(pts.begin(), pts.end());
    for (const auto& [len, m] : pts) {
      char b[48];
      std::snprintf(b, sizeof b, "%s%lld: %.2f ms", bench.empty() ? "" : ",  ", (long long)len, m);
      bench += b;
    }
    if (pts.size() >= 2 && pts.front().second > 0 && pts.back().second > 0) {
      char b[64];
      std::snprintf(b, sizeof b, "  (slope %.2f)",
                    std::log(pts.back().second / pts.front().second) /
                        std::log(double(pts.back().first) / double(pts.front().first)));
      bench += b;
    }
  }
  fact("bench, one layer", bench.empty() ? "none yet: File > Scaling panel measures it" : bench);
  ImGui::Unindent(fs * 0.4f);
}

namespace {

// The variant picker (every layer of a per-layer column), and the buttons that move or remove the column.
void draw_variant_header(App& app, Column& c, int index, int count, ColumnActions& act) {
  const float bw = ImGui::GetFrameHeight();
  const float spacing = ImGui::GetStyle().ItemSpacing.x * 0.5f;
  const std::string col = "col" + std::to_string(index);
  ImGui::SetNextItemWidth(ImGui::GetContentRegionAvail().x - 3 * (bw + spacing));
  if (variant_combo("##variant", c.variant)) {
    c.params = default_params(c.variant, app);
    c.mask = CustomMask{};
    if (c.per_layer) c.layers.assign(c.layers.size(), LayerSpec{c.variant, c.params, {}});  // every layer
  }
  mark_target(app, (col + ".variant").c_str());
  const VariantInfo* info = find_variant(c.variant);
  if (info && ImGui::IsItemHovered() && !ImGui::IsPopupOpen("##variant"))
    ImGui::SetTooltip("%s\n%s%s", info->description.c_str(), info->citation.c_str(),
                      c.per_layer ? "\n\nper-layer column: picking a variant here sets every layer" : "");
  ImGui::SameLine(0, spacing);
  ImGui::BeginDisabled(index == 0);
  if (ImGui::Button("\xE2\x97\x80", ImVec2(bw, 0))) act.left = index;  // ◀
  ImGui::EndDisabled();
  tooltip("move this column left");
  ImGui::SameLine(0, spacing);
  ImGui::BeginDisabled(index == count - 1);
  if (ImGui::Button("\xE2\x96\xB6", ImVec2(bw, 0))) act.right = index;  // ▶
  ImGui::EndDisabled();
  tooltip("move this column right");
  ImGui::SameLine(0, spacing);
  ImGui::BeginDisabled(count <= 1);
  if (ImGui::Button("\xC3\x97", ImVec2(bw, 0))) act.remove = index;  // ×
  mark_target(app, ("col" + std::to_string(index) + ".remove").c_str());
  ImGui::EndDisabled();
  tooltip("remove this column");
}

// Badges: the model the column runs in, causality, the second text, computing.
void draw_badges(const Column& c, const VariantInfo* info) {
  const auto& r = c.shown;
  const bool current = r && r->seq == c.seq;
  if (current && r->ok) {
    const bool trained = r->maps->mode == "trained";
    const std::string budget = r->budget.empty() ? "" : " " + r->budget;
    // Trained: the budget it learned with. Converted: the source's budget, and the training it stands in for.
    const std::string label = trained ? "trained" + budget + " \xC2\xB7 " + short_dir(r->model_dir)
                                      : r->maps->mode + " (" + short_dir(r->model_dir) + budget + ", no training)";
    std::string tip = r->model_dir;
    if (trained)
      tip += "\nthese weights were trained with this variant" + (budget.empty() ? "" : "," + budget);
    else if (!r->replaces.empty())
      tip += "\nthe base model's weights converted (not retrained): this stands in for " + r->replaces +
             ", trained with this variant" + (r->replaces_budget.empty() ? "" : " for " + r->replaces_budget) +
             (c.convert ? " (untick 'convert' to run it)" : " (other weight shapes than it was trained with)");
    else
      tip +=
          "\nno checkpoint trained with this variant is shipped: the base model's weights were converted (not "
          "retrained), so quality drops";
    badge(label.c_str(), trained ? kGreen : kAmber, tip.c_str());
    ImGui::SameLine();
  }
  if (info && !info->causal) {
    badge("non-causal", kRed,
          "this variant lets a character attend to characters after it: fine for analysis, impossible when "
          "writing text left to right");
    ImGui::SameLine();
  }
  if (info && info->needs_kv_text) {
    badge("keys: 2nd text", kAccent, "cross-attention: keys and values come from the second text in the sidebar");
    ImGui::SameLine();
  }
  if (!current)
    ImGui::TextColored(kAmber, "computing...");
  else
    ImGui::Dummy(ImVec2(1, ImGui::GetFontSize() * 1.24f));  // keep the badge row's height
}

// The per-layer, explain and convert switches.
void draw_switches(App& app, Column& c, const std::string& col) {
  bool per = c.per_layer;
  ImGui::BeginDisabled(!app.model);
  if (ImGui::Checkbox("per-layer", &per)) set_per_layer(app, c, per);
  ImGui::EndDisabled();
  mark_target(app, (col + ".per_layer").c_str());
  tooltip(
      "a variant per layer (e.g. windows in the lower layers, full attention in the top one), built from the "
      "base model's weights; the heatmap and sparsity rows follow the selected layer");
  ImGui::SameLine(0, ImGui::GetFontSize());
  if (ImGui::Checkbox("explain", &c.explain_open)) c.explain_scroll = c.explain_open ? kScrollFrames : 0;
  mark_target(app, (col + ".explain").c_str());
  tooltip(
      "the selected layer's variant explained: formula (parameters in their sliders' colours), cost, cache, "
      "when to use it, and what this column measures; shown below the rows (the column scrolls to it)");
  if (app.model && !c.per_layer && session::has_trained_checkpoint(*app.model, c.variant)) {
    const float need = ImGui::GetFrameHeight() + ImGui::CalcTextSize("convert").x + ImGui::GetFontSize() * 1.5f;
    ImGui::SameLine(0, ImGui::GetFontSize());
    if (ImGui::GetContentRegionAvail().x < need) ImGui::NewLine();  // narrow columns: on a line of its own
    ImGui::Checkbox("convert", &c.convert);
    mark_target(app, (col + ".convert").c_str());
    tooltip(
        "run the base checkpoint converted to this variant (no training) instead of the checkpoint trained with "
        "it: the conversion lesson (put the same variant in two columns, one converted)");
  }
}

// A per-layer column: one tab per layer, then the selected layer's variant and sliders.
void draw_layer_tabs(App& app, Column& c, int index, const std::string& col) {
  // One tab per layer (its variant in the tooltip; the selected one highlighted: the heatmap and sparsity rows show
  // it), then only the selected layer's variant and sliders: the column stays as tall for 12 layers as for 2.
  const int sel = std::clamp(c.layer, 0, int(c.layers.size()) - 1);
  const float fs = ImGui::GetFontSize();
  for (size_t l = 0; l < c.layers.size(); ++l) {
    const LayerSpec& ls = c.layers[l];
    ImGui::PushID(int(l));
    if (l) ImGui::SameLine(0, fs * 0.25f);
    const bool on = int(l) == sel;
    const bool differs = ls.variant != c.variant || ls.params != c.params;  // not the column's own variant
    ImGui::PushStyleColor(ImGuiCol_Button,
                          on ? ImVec4(0.26f, 0.45f, 0.78f, 1) : ImGui::GetStyleColorVec4(ImGuiCol_FrameBg));
    const std::string tab = "L" + std::to_string(l) + (differs ? "*" : "");
    if (ImGui::Button(tab.c_str(), ImVec2(fs * 2.4f, 0))) set_layer_head(app, index, int(l), c.head);
    ImGui::PopStyleColor();
    mark_target(app, (col + ".L" + std::to_string(l)).c_str());
    std::string tip = "layer " + std::to_string(l) + ": " + ls.variant;
    if (const VariantInfo* li = find_variant(ls.variant))
      for (const ParamSpec& ps : li->params)
        if (ls.params.count(ps.name)) tip += " " + ps.name + "=" + format_param(ps, ls.params.at(ps.name));
    tooltip(
        (tip + (differs ? "\n* not the column's " + c.variant : std::string()) + "\nclick: edit and show this layer")
            .c_str());
    ImGui::PopID();
  }
  LayerSpec& ls = c.layers[size_t(sel)];
  ImGui::PushID(sel);
  ImGui::AlignTextToFramePadding();
  ImGui::TextColored(kAccent, "L%d", sel);
  ImGui::SameLine();
  ImGui::SetNextItemWidth(ImGui::GetContentRegionAvail().x);
  if (variant_combo("##lvariant", ls.variant)) {
    ls.params = default_params(ls.variant, app);
    ls.mask = CustomMask{};
  }
  mark_target(app, (col + ".L" + std::to_string(sel) + ".variant").c_str());
  if (const VariantInfo* li = find_variant(ls.variant))
    for (size_t k = 0; k < li->params.size(); ++k)
      draw_param(app, ls.params, li->params[k], k, col + ".L" + std::to_string(sel) + ".param." + li->params[k].name);
  ImGui::PopID();
}

// The layer, the head (or the grid) and the view the rows show.
void draw_selection(App& app, Column& c, int index) {
  const auto& r = c.shown;
  const int L = r && r->ok ? int(r->maps->layers) : app.model ? int(app.model->config().n_layer) : 1;
  const int H = r && r->ok ? int(r->maps->heads) : app.model ? int(app.model->config().n_head) : 1;
  const float third = (ImGui::GetContentRegionAvail().x - 2 * ImGui::GetStyle().ItemSpacing.x) / 3;
  int layer = std::clamp(c.layer, 0, std::max(0, L - 1)), head = std::min(c.head, H - 1);
  ImGui::SetNextItemWidth(third);
  if (ImGui::SliderInt("##layer", &layer, 0, std::max(0, L - 1), "layer %d")) set_layer_head(app, index, layer, head);
  mark_target(app, ("col" + std::to_string(index) + ".layer").c_str());
  tooltip("which layer's attention (0 = closest to the characters; \xE2\x86\x91 \xE2\x86\x93 keys)");
  ImGui::SameLine();
  ImGui::SetNextItemWidth(third);
  std::string hl = head < 0 ? "grid" : "head " + std::to_string(head);
  if (ImGui::BeginCombo("##head", hl.c_str())) {
    if (ImGui::Selectable("every layer \xC3\x97 head (grid)", head < 0)) set_layer_head(app, index, layer, -1);
    for (int h = 0; h < H; ++h)
      if (ImGui::Selectable(("head " + std::to_string(h)).c_str(), head == h)) set_layer_head(app, index, layer, h);
    ImGui::EndCombo();
  }
  mark_target(app, ("col" + std::to_string(index) + ".head").c_str());
  tooltip("one head, or every layer \xC3\x97 head as a grid (click a tile to open it; \xE2\x86\x90 \xE2\x86\x92 keys)");
  ImGui::SameLine();
  ImGui::SetNextItemWidth(third);
  int vw = int(c.view);
  if (combo_from_table("##view", &vw, kViews, IM_ARRAYSIZE(kViews))) c.view = View(vw);
}

}  // namespace

void draw_column_controls(App& app, Column& c, int index, int count, ColumnActions& act) {
  ImGui::PushID(c.id);
  const std::string col = "col" + std::to_string(index);
  draw_variant_header(app, c, index, count, act);
  const VariantInfo* info = find_variant(c.variant);
  draw_badges(c, info);
  draw_switches(app, c, col);
  if (c.per_layer && !c.layers.empty()) {
    draw_layer_tabs(app, c, index, col);
  } else if (info) {
    for (size_t k = 0; k < info->params.size(); ++k)
      draw_param(app, c.params, info->params[k], k, col + ".param." + info->params[k].name);
  }
  draw_selection(app, c, index);
  ImGui::PopID();
}

}  // namespace attnscope::gui
