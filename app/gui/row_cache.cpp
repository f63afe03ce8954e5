// Row 3 of a column: KV cache bytes now, and against the length up to the context, with MHA as the reference line.
#include <algorithm>
#include <cfloat>
#include <cstdio>

#include "imgui.h"
#include "registry.h"
#include "state.h"
#include "views.h"
#include "widgets.h"

namespace attnscope::gui {

void draw_cache_row(App& app, const ColumnResult& r) {
  const float fs = ImGui::GetFontSize();
  section("KV cache");
  int64_t now = 0;
  for (int64_t b : r.maps->cache_formula_bytes) now += b;
  const int T = int(r.maps->queries);
  ImGui::Text("%s at %d chars", human_bytes(double(now)).c_str(), T);
  std::string per_layer;  // each layer's formula and bytes now (a mixed column sums different formulas)
  for (size_t l = 0; l < r.maps->layer_variant.size() && l < r.maps->cache_formula_bytes.size(); ++l) {
    const VariantInfo* v = find_variant(r.maps->layer_variant[l]);
    per_layer += "\n  layer " + std::to_string(l) + " " + r.maps->layer_variant[l] + ": " +
                 (v ? v->cache_formula : std::string("?")) +
                 " per token = " + human_bytes(double(r.maps->cache_formula_bytes[l]));
  }
  tooltip(("bytes a decoder caches after these characters, all layers, fp32, by the layers' formulas:" + per_layer)
              .c_str());
  if (r.base_cache_now > 0) {
    ImGui::SameLine(0, fs);
    // The figure and its ratio at the same length: this text's; the full context's ratio in the tooltip.
    const double ratio = double(now) / double(r.base_cache_now);
    ImGui::TextColored(ratio < 0.999 ? kGreen : ratio > 1.001 ? kAmber : kDim, "%.2f\xC3\x97 MHA", ratio);
    std::string tip = "against the base MHA model's cache at the same " + std::to_string(T) + " characters (" +
                      human_bytes(double(r.base_cache_now)) + ")";
    if (!r.base_curve.empty() && r.base_curve.back() > 0) {
      char full[96];
      std::snprintf(full, sizeof full, "; at the full context of %lld characters: %.2fx",
                    (long long)r.curve_tokens.back(), double(r.cache_curve.back()) / double(r.base_curve.back()));
      tip += full;
    }
    tooltip(tip.c_str());
  }
  if (r.curve_tokens.empty()) return;
  const float width = ImGui::GetContentRegionAvail().x, h = fs * 3.6f;
  const ImVec2 p = ImGui::GetCursorScreenPos();
  const float left = p.x + fs * 3.6f, right = p.x + width - 4, top = p.y + 4, bottom = p.y + h;
  double ymax = 1;
  for (size_t k = 0; k < r.curve_tokens.size(); ++k)
    ymax = std::max({ymax, double(r.cache_curve[k]), double(r.base_curve[k])});
  const double xmax = double(r.curve_tokens.back());
  auto X = [&](double t) { return left + float(t / xmax) * (right - left); };
  auto Y = [&](double b) { return bottom - float(b / ymax) * (bottom - top); };
  ImDrawList* dl = ImGui::GetWindowDrawList();
  dl->AddRectFilled(ImVec2(left, top), ImVec2(right, bottom), IM_COL32(24, 26, 32, 255));
  dl->AddLine(ImVec2(left, bottom), ImVec2(right, bottom), IM_COL32(90, 94, 106, 255));
  dl->AddLine(ImVec2(left, top), ImVec2(left, bottom), IM_COL32(90, 94, 106, 255));
  std::vector<ImVec2> base, mine;
  base.emplace_back(X(0), Y(0));
  mine.emplace_back(X(0), Y(0));
  for (size_t k = 0; k < r.curve_tokens.size(); ++k) {
    base.emplace_back(X(double(r.curve_tokens[k])), Y(double(r.base_curve[k])));
    mine.emplace_back(X(double(r.curve_tokens[k])), Y(double(r.cache_curve[k])));
  }
  dl->AddPolyline(base.data(), int(base.size()), IM_COL32(150, 152, 160, 220), 0, 1.5f);
  dl->AddPolyline(mine.data(), int(mine.size()), ImGui::GetColorU32(kAccent), 0, 2.2f);
  dl->AddLine(ImVec2(X(T), top), ImVec2(X(T), bottom), IM_COL32(250, 199, 77, 160));
  dl->AddCircleFilled(ImVec2(X(T), Y(double(now))), 3.5f, IM_COL32(250, 199, 77, 255));
  ImFont* f = app.fonts.small;
  const ImU32 tc = ImGui::GetColorU32(kDim);
  const std::string ytop = human_bytes(ymax), xr = std::to_string(int64_t(xmax));
  dl->AddText(f, f->FontSize, ImVec2(p.x, top), tc, ytop.c_str());
  dl->AddText(f, f->FontSize, ImVec2(p.x, bottom - f->FontSize), tc, "0");
  dl->AddText(f, f->FontSize,
              ImVec2(right - f->CalcTextSizeA(f->FontSize, FLT_MAX, 0, xr.c_str()).x - 2, bottom - f->FontSize - 1), tc,
              xr.c_str());
  const float lx = right - fs * 5.2f;  // legend, top right
  dl->AddLine(ImVec2(lx, top + f->FontSize * 0.6f), ImVec2(lx + fs * 0.8f, top + f->FontSize * 0.6f),
              ImGui::GetColorU32(kAccent), 2);
  dl->AddText(f, f->FontSize, ImVec2(lx + fs, top), ImGui::GetColorU32(kAccent), "this");
  dl->AddLine(ImVec2(lx + fs * 2.8f, top + f->FontSize * 0.6f), ImVec2(lx + fs * 3.6f, top + f->FontSize * 0.6f),
              IM_COL32(150, 152, 160, 255), 1.5f);
  dl->AddText(f, f->FontSize, ImVec2(lx + fs * 3.8f, top), IM_COL32(150, 152, 160, 255), "MHA");
  ImGui::Dummy(ImVec2(width, h + 2));
  if (ImGui::IsItemHovered()) ImGui::SetTooltip("cache bytes (y) against characters in the context (x), fp32");
}

}  // namespace attnscope::gui
