// The `custom` variant's painted mask, edited on a large square (queries down, keys across) with the helpers of
// custom_mask.h; every edit changes the column's request, so the trained model recomputes under it at once.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "imgui.h"
#include "registry.h"
#include "state.h"
#include "views.h"
#include "widgets.h"

namespace attnscope::gui {

namespace {

// The selected layer of the column runs `custom`: its mask can be painted.
bool paints_mask(const Column& c) {
  const VariantInfo* v = layer_variant(c, c.layer);
  return v && v->name == "custom";
}

}  // namespace

// The editor's switch, in the sparsity row.
void draw_mask_toggle(App& app, Column& c, int index) {
  if (!paints_mask(c)) return;
  if (ImGui::Checkbox("paint the mask", &c.mask_edit.open)) c.mask_edit.scroll = c.mask_edit.open ? kScrollFrames : 0;
  mark_target(app, ("col" + std::to_string(index) + ".mask.paint").c_str());
  tooltip(
      "edit which (query, key) pairs the custom variant may compute: brush, rectangle or diagonal band, "
      "with the same trained weights (the future stays hidden: cells above the diagonal cannot be set); "
      "the editor opens below the rows (the column scrolls to it)");
}

// The editor itself, below the column's rows in its scrolling body.
void draw_mask_editor(App& app, Column& c, int T, int index) {
  MaskEdit& e = c.mask_edit;
  if (!e.open || !paints_mask(c) || T <= 0) return;
  CustomMask* mk = edited_mask(app, c);  // starts from plain causal the first time
  if (!mk) return;
  if (e.scroll > 0) {  // just opened: bring it into view
    ImGui::SetScrollHereY(0);
    --e.scroll;
  }
  const std::string col = "col" + std::to_string(index) + ".mask.";
  const float fs = ImGui::GetFontSize();
  section(("Painted mask" + (c.per_layer ? " (layer " + std::to_string(c.layer) + ")" : std::string())).c_str());
  int tool = int(e.tool);
  ImGui::RadioButton("brush", &tool, int(MaskTool::Brush));
  ImGui::SameLine();
  ImGui::RadioButton("rectangle", &tool, int(MaskTool::Rect));
  ImGui::SameLine();
  ImGui::RadioButton("band", &tool, int(MaskTool::Band));
  tooltip("drag from one diagonal to another: every cell with i - j between them");
  e.tool = MaskTool(tool);
  ImGui::SameLine(0, fs);
  ImGui::Checkbox("erase", &e.erase);
  if (e.tool == MaskTool::Brush) {
    ImGui::SetNextItemWidth(fs * 6);
    ImGui::SliderInt("radius", &e.radius, 0, 8, "radius %d");
  } else if (e.tool == MaskTool::Band) {
    ImGui::SetNextItemWidth(fs * 4.5f);
    ImGui::InputInt("##lo", &e.band_lo, 0);
    ImGui::SameLine();
    ImGui::TextUnformatted("\xE2\x89\xA4 i - j \xE2\x89\xA4");  // ≤ i - j ≤
    ImGui::SameLine();
    ImGui::SetNextItemWidth(fs * 4.5f);
    ImGui::InputInt("##hi", &e.band_hi, 0);
    ImGui::SameLine();
    if (ImGui::Button(e.erase ? "erase band" : "paint band")) paint_band(*mk, e.band_lo, e.band_hi, !e.erase);
    mark_target(app, (col + "band").c_str());
  }
  if (ImGui::Button("clear")) clear(*mk);
  tooltip("no pair allowed: every row of the painted square attends nothing (outputs zeros)");
  ImGui::SameLine();
  if (ImGui::Button("causal")) *mk = causal_mask(mk->n);
  tooltip("back to plain causal attention: every j <= i");
  ImGui::SameLine();
  if (ImGui::Button("causal clip")) {
    const int64_t n = causal_clip(*mk);
    app.log.push_back("causal clip: " + std::to_string(n) + " cells above the diagonal cleared");
  }
  tooltip("clear every cell above the diagonal (the editing tools never set them; a loaded mask might)");
  // the canvas: the first T x T cells of the mask, the window's queries and keys
  const float side = std::min(ImGui::GetContentRegionAvail().x, fs * 24), cs = side / float(T);
  const ImVec2 p = ImGui::GetCursorScreenPos();
  ImGui::InvisibleButton("canvas", ImVec2(side, side));
  mark_target(app, (col + "canvas").c_str());
  ImDrawList* dl = ImGui::GetWindowDrawList();
  dl->AddRectFilled(p, ImVec2(p.x + side, p.y + side), IM_COL32(24, 26, 32, 255));
  const int n = int(std::min<int64_t>(T, mk->n));
  const ImU32 on = IM_COL32(250, 199, 77, 255);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j <= i;) {  // runs of allowed cells per row
      if (!mk->at(i, j)) {
        ++j;
        continue;
      }
      int k = j;
      while (k <= i && mk->at(i, k)) ++k;
      dl->AddRectFilled(ImVec2(p.x + cs * float(j), p.y + cs * float(i)),
                        ImVec2(p.x + cs * float(k), p.y + cs * float(i + 1)), on);
      j = k;
    }
  dl->AddLine(p, ImVec2(p.x + side, p.y + side), IM_COL32(120, 124, 136, 160));  // the diagonal
  const ImVec2 mp = ImGui::GetIO().MousePos;
  const int mi = std::clamp(int((mp.y - p.y) / cs), 0, T - 1), mj = std::clamp(int((mp.x - p.x) / cs), 0, T - 1);
  if (ImGui::IsItemActivated()) {
    e.dragging = true;
    e.drag_i = mi;
    e.drag_j = mj;
  }
  if (e.dragging && e.tool == MaskTool::Brush && ImGui::IsItemActive()) paint_brush(*mk, mi, mj, e.radius, !e.erase);
  if (e.dragging && e.tool != MaskTool::Brush) {
    const ImU32 preview = e.erase ? IM_COL32(240, 90, 80, 200) : IM_COL32(100, 170, 255, 220);
    if (e.tool == MaskTool::Rect) {
      dl->AddRect(ImVec2(p.x + cs * float(std::min(e.drag_j, mj)), p.y + cs * float(std::min(e.drag_i, mi))),
                  ImVec2(p.x + cs * float(std::max(e.drag_j, mj) + 1), p.y + cs * float(std::max(e.drag_i, mi) + 1)),
                  preview, 0, 0, 2);
    } else {
      for (int d : {e.drag_i - e.drag_j, mi - mj})
        dl->AddLine(ImVec2(p.x + cs * float(std::max(0, -d)), p.y + cs * float(std::max(0, d))),
                    ImVec2(p.x + side - cs * float(std::max(0, d)), p.y + side - cs * float(std::max(0, -d))), preview,
                    2);
    }
  }
  if (e.dragging && !ImGui::IsItemActive()) {
    e.dragging = false;
    if (e.tool == MaskTool::Rect) paint_rect(*mk, e.drag_i, e.drag_j, mi, mj, !e.erase);
    if (e.tool == MaskTool::Band) {
      e.band_lo = std::min(e.drag_i - e.drag_j, mi - mj);
      e.band_hi = std::max(e.drag_i - e.drag_j, mi - mj);
      paint_band(*mk, e.band_lo, e.band_hi, !e.erase);
    }
  }
  if (ImGui::IsItemHovered())
    ImGui::SetTooltip("query %d (row) \xC2\xB7 key %d (column): %s", mi, mj,
                      mj > mi          ? "the future (never)"
                      : mk->at(mi, mj) ? "allowed"
                                       : "not allowed");
  int64_t allowed = 0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j <= i; ++j) allowed += mk->at(i, j);
  ImGui::TextColored(kDim, "painted: %lld of %lld causal pairs allowed in these %d characters", (long long)allowed,
                     (long long)n * (n + 1) / 2, T);
}

}  // namespace attnscope::gui
