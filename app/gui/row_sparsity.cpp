// Row 2 of a column: which pairs are computed (the forward's mask of this layer and head), the share kept, the FLOPs
// against dense causal attention, and the tile map where tiling applies.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "imgui.h"
#include "registry.h"
#include "state.h"
#include "views.h"
#include "widgets.h"

namespace attnscope::gui {

void draw_sparsity_row(App& app, Column& c, int index, const ColumnResult& r) {
  const float fs = ImGui::GetFontSize();
  const AttentionMaps& m = *r.maps;
  const int L = int(m.layers), H = int(m.heads), T = int(m.queries), S = int(m.keys);
  const int layer = std::clamp(c.layer, 0, L - 1), head = std::clamp(c.head, 0, H - 1);
  section("Sparsity");
  const std::string key = std::to_string(r.seq) + "/" + std::to_string(layer) + "/" + std::to_string(head);
  if (key != c.mask_key) {
    const int kept = c.mask_from.kept(m, std::to_string(layer) + "/" + std::to_string(head));  // typing: new rows
    c.mask_tile.set_rows({m.attn_row(layer, head, 0), m.has_mask() ? m.mask_row(layer, head, 0) : nullptr, T, S,
                          int(m.stride()), int(m.planes->rows), kept});
    c.mask_key = key;
  }
  const float width = ImGui::GetContentRegionAvail().x;
  const float side = std::min(fs * 5.f, (width - fs) * 0.5f);
  const ImVec2 p = ImGui::GetCursorScreenPos();
  HeatmapStyle st;
  st.view = View::Mask;
  const GLuint tex = c.mask_tile.render(app.program, int(side), int(side), st);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  if (tex) dl->AddImage(reinterpret_cast<ImTextureID>(static_cast<intptr_t>(tex)), p, ImVec2(p.x + side, p.y + side));
  dl->AddText(app.fonts.small, app.fonts.small->FontSize, ImVec2(p.x, p.y + side + 2), ImGui::GetColorU32(kDim),
              ("pairs, L" + std::to_string(layer) + " h" + std::to_string(head)).c_str());
  const PatternSummary* ps = layer < int(r.pattern.size()) ? &r.pattern[size_t(layer)] : nullptr;
  const ImVec2 q(p.x + side + fs, p.y);
  if (ps && !ps->tiles.empty()) {
    const float cw = side / float(ps->tile_cols), ch = side / float(ps->tile_rows);
    const ImU32 cols[3] = {IM_COL32(38, 40, 48, 255), IM_COL32(160, 120, 50, 255), IM_COL32(250, 199, 77, 255)};
    for (int i = 0; i < ps->tile_rows; ++i)
      for (int j = 0; j < ps->tile_cols; ++j) {
        const uint8_t s = ps->tiles[size_t(i * ps->tile_cols + j)];
        dl->AddRectFilled(ImVec2(q.x + cw * float(j), q.y + ch * float(i)),
                          ImVec2(q.x + cw * float(j + 1) - 1, q.y + ch * float(i + 1) - 1), cols[std::min<int>(s, 2)]);
      }
    int full = 0, part = 0;
    for (uint8_t s : ps->tiles) full += s == 2, part += s == 1;
    char t[64];
    std::snprintf(t, sizeof t, "tiles %d\xC3\x97%d: %d+%d of %d", ps->tile_h, ps->tile_w, full, part,
                  ps->tile_rows * ps->tile_cols);
    dl->AddText(app.fonts.small, app.fonts.small->FontSize, ImVec2(q.x, q.y + side + 2), ImGui::GetColorU32(kDim), t);
  } else {
    ImGui::SetCursorScreenPos(q);
    ImGui::PushTextWrapPos(0);
    ImGui::TextColored(
        kDim, "%s",
        ps && !ps->notes.empty() ? ps->notes.back().c_str() : "no tiling: one dense pass over the computed pairs");
    ImGui::PopTextWrapPos();
  }
  ImGui::SetCursorScreenPos(ImVec2(p.x, p.y + side + app.fonts.small->FontSize + 6));
  const double pairs = layer < int(r.layer_pairs.size()) ? double(r.layer_pairs[size_t(layer)]) : 0;
  const double kept = pairs / (double(H) * T * S);
  const double causal = double(H) * (S == T ? T * (T + 1.0) / 2 : double(T) * S);
  ImGui::Text("kept %.1f%%", 100 * kept);
  tooltip("share of the query x key square this layer computes (all heads); causal attention keeps a little over half");
  ImGui::SameLine(0, fs);
  ImGui::Text("FLOPs %.2f\xC3\x97 causal", pairs / causal);
  tooltip("score and weighted-sum FLOPs of this layer against dense causal attention over the same text");
  if (ps && !ps->tiles.empty())
    tooltip(("tile map: " + std::to_string(ps->tile_h) + "x" + std::to_string(ps->tile_w) +
             " tiles computed in full "
             "(gold), in part (dark gold) or skipped; " +
             std::to_string(ps->tiles_vs_causal).substr(0, 4) + "x the tiles a causal tiled kernel computes")
                .c_str());
  draw_mask_toggle(app, c, index);
}

}  // namespace attnscope::gui
