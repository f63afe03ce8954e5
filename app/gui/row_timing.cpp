// Row 4 of a column: its forward on the active device, repeated by the worker when idle (median, p10/p90, samples).
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

// How the shown maps were made: only the new rows (the column's previous text's rows reused), or the whole text and
// why. The timing below is always of a whole forward: like for like across columns.
void draw_update_line(const Column& c) {
  if (!c.shown || !c.shown->ok) return;
  const ColumnResult& r = *c.shown;
  if (r.reused_rows > 0) {
    ImGui::TextColored(kDim, "update: %lld new row%s, %lld reused", (long long)r.computed_rows,
                       r.computed_rows == 1 ? "" : "s", (long long)r.reused_rows);
    tooltip(
        "the text changed after its first characters: every layer's cache went on from the previous text and only "
        "the query rows from the first change on were computed");
  } else {
    ImGui::TextColored(kDim, "update: whole text (%lld rows)", (long long)r.computed_rows);
    tooltip(r.whole_reason.empty()
                ? "a new text, model or parameter: every row computed; typing at the end then computes only new rows"
                : ("every keystroke recomputes the whole text: " + r.whole_reason).c_str());
  }
}

}  // namespace

void draw_timing_row(App& app, const Column& c) {
  const float fs = ImGui::GetFontSize();
  section("Timing");
  std::vector<double> ms = c.timing.ms;
  const std::string dev = app.model ? app.model->device_name() : "?";
  draw_update_line(c);
  if (ms.size() < 3) {
    ImGui::TextColored(kDim, "measuring on %s... (%zu/%zu runs)", dev.c_str(), ms.size(), kTimingRuns);
    ImGui::Dummy(ImVec2(1, fs * 0.6f));
    return;
  }
  std::sort(ms.begin(), ms.end());
  auto q = [&](double f) {
    const double x = f * double(ms.size() - 1);
    const size_t a = size_t(x), b = std::min(a + 1, ms.size() - 1);
    return ms[a] + (ms[b] - ms[a]) * (x - double(a));
  };
  ImGui::Text("median %.1f ms", q(0.5));
  tooltip("median forward (all layers, with the attention maps) on this device");
  ImGui::SameLine(0, fs * 0.6f);
  ImGui::TextColored(kDim, "p10 %.1f \xC2\xB7 p90 %.1f", q(0.1), q(0.9));
  tooltip((std::to_string(ms.size()) + " forwards on " + dev + ", repeated while the window is idle").c_str());
  // the samples on a strip from 0 to the slowest run
  const float width = ImGui::GetContentRegionAvail().x, h = fs * 0.7f;
  const ImVec2 p = ImGui::GetCursorScreenPos();
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const double hi = std::max(1e-3, ms.back() * 1.05);
  auto X = [&](double v) { return p.x + float(v / hi) * width; };
  dl->AddRectFilled(ImVec2(X(q(0.1)), p.y), ImVec2(X(q(0.9)), p.y + h), IM_COL32(64, 110, 190, 120));
  for (double v : ms) dl->AddLine(ImVec2(X(v), p.y), ImVec2(X(v), p.y + h), IM_COL32(200, 205, 215, 200));
  dl->AddLine(ImVec2(X(q(0.5)), p.y - 2), ImVec2(X(q(0.5)), p.y + h + 2), ImGui::GetColorU32(kAmber), 2);
  ImGui::Dummy(ImVec2(width, h + 2));
}

}  // namespace attnscope::gui
