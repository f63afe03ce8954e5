// The "hard characters" strip: every character coloured by how hard the column's model found it to predict (the
// next-character loss at the position before it, AttentionMaps::char_loss), under a heatmap's key axis and under
// the text in the text panel.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "imgui.h"
#include "registry.h"
#include "state.h"
#include "views.h"
#include "widgets.h"

namespace attnscope::gui {

namespace {

constexpr float kLossTop = 4.f;  // nats at which the colour saturates (about log of a 65-character vocabulary)

ImU32 mix(const ImVec4& a, const ImVec4& b, float t) {
  return ImGui::GetColorU32(ImVec4(a.x + (b.x - a.x) * t, a.y + (b.y - a.y) * t, a.z + (b.z - a.z) * t, 1));
}

}  // namespace

float char_loss_at(const ColumnResult& r, int64_t t) {
  const std::vector<float>& cl = r.maps->char_loss;  // [T-1]
  if (t < 1 || t > int64_t(cl.size())) return NAN;
  return cl[size_t(t - 1)];
}

ImU32 loss_colour(float nats) {
  if (std::isnan(nats)) return IM_COL32(60, 62, 70, 255);
  const ImVec4 easy(0.16f, 0.24f, 0.36f, 1), mid(0.98f, 0.72f, 0.28f, 1), hard(0.95f, 0.30f, 0.28f, 1);
  const float t = std::clamp(nats / kLossTop, 0.f, 1.f);
  return t < 0.5f ? mix(easy, mid, t * 2) : mix(mid, hard, t * 2 - 1);
}

std::string loss_tip(const App& app, const ColumnResult& r, int64_t t) {
  const float nats = char_loss_at(r, t);
  std::string ch = "?";
  if (app.model && t >= 0 && t < int64_t(r.tokens.size()))
    ch = quoted(app.model->tokenizer().symbol(r.tokens[size_t(t)]));
  char buf[160];
  if (std::isnan(nats))
    std::snprintf(buf, sizeof buf, "character %lld %s: the first of the window, nothing predicts it",
                  (long long)(app.tokens.start + t), ch.c_str());
  else
    std::snprintf(buf, sizeof buf, "character %lld %s: loss %.2f nats (p = %.3f) predicting it from the text before",
                  (long long)(app.tokens.start + t), ch.c_str(), double(nats), std::exp(-double(nats)));
  return buf;
}

void draw_loss_strip(App& app, const ColumnResult& r, ImVec2 pos, float width, float c0, float cols, float height,
                     bool dim) {
  const int64_t T = int64_t(r.tokens.size());
  if (r.maps->char_loss.empty() || T < 2 || cols <= 0) return;
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const float sx = width / cols;
  const ImVec2 end(pos.x + width, pos.y + height);
  dl->PushClipRect(pos, end, true);
  const int64_t j0 = std::max<int64_t>(0, int64_t(std::floor(c0))), j1 = std::min<int64_t>(T, int64_t(c0 + cols) + 1);
  for (int64_t j = j0; j < j1; ++j) {
    const float x = pos.x + sx * (float(j) - c0);
    ImU32 col = loss_colour(char_loss_at(r, j));
    if (dim) col = (col & 0x00FFFFFFu) | (IM_COL32_A_MASK & IM_COL32(0, 0, 0, 110));
    dl->AddRectFilled(ImVec2(x, pos.y), ImVec2(x + std::max(1.f, sx - (sx > 4 ? 1 : 0)), end.y), col);
  }
  dl->PopClipRect();
  const ImVec2 m = ImGui::GetIO().MousePos;
  if (ImGui::IsWindowHovered() && m.x >= pos.x && m.x < end.x && m.y >= pos.y && m.y < end.y) {
    const int64_t j = std::clamp<int64_t>(int64_t(c0 + (m.x - pos.x) / sx), 0, T - 1);
    ImGui::BeginTooltip();
    ImGui::PushTextWrapPos(ImGui::GetFontSize() * 24);
    ImGui::TextUnformatted(loss_tip(app, r, j).c_str());
    ImGui::TextColored(kDim,
                       "Hard characters: each character coloured by this column's next-character loss when it is "
                       "predicted (dark: easy, amber: about 2 nats, red: 4 nats or more). Look after a window's "
                       "edge or inside a repeat, and at what a knock-out changes.");
    ImGui::PopTextWrapPos();
    ImGui::EndTooltip();
  }
}

}  // namespace attnscope::gui
