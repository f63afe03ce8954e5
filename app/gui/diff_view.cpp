// The difference window: two columns' matrices at one layer and head, |A - B| or A - B, and KL(A || B) per row.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "imgui.h"
#include "registry.h"
#include "state.h"
#include "views.h"
#include "widgets.h"
#include "studio.h"

namespace attnscope::gui {

void update_diff(App& app) {
  DiffState& d = app.diff;
  const int n = int(app.columns.size());
  app.view.diff_a = std::clamp(app.view.diff_a, 0, n - 1);
  app.view.diff_b = std::clamp(app.view.diff_b, 0, n - 1);
  const Column& a = app.columns[size_t(app.view.diff_a)];
  const Column& b = app.columns[size_t(app.view.diff_b)];
  auto current = [](const Column& c) { return c.shown && c.shown->ok && c.shown->seq == c.seq; };
  std::string key = std::to_string(a.id) + "/" + std::to_string(b.id) + "/" + std::to_string(d.layer) + "/" +
                    std::to_string(d.head) + "/" + (app.view.diff_signed ? "s" : "a") + "/" +
                    (current(a) ? std::to_string(a.shown->seq) : "-") + "/" +
                    (current(b) ? std::to_string(b.shown->seq) : "-");
  if (key == d.key) return;
  d.key = key;
  d.problem.clear();
  d.values.clear();
  d.kl_rows.clear();
  if (!current(a) || !current(b)) {
    d.problem = "waiting for both columns' results";
    return;
  }
  const AttentionMaps &ma = *a.shown->maps, &mb = *b.shown->maps;
  if (ma.queries != mb.queries || ma.keys != mb.keys || ma.layers != mb.layers || ma.heads != mb.heads) {
    d.problem = "the two columns read different texts or shapes";
    return;
  }
  d.layer = std::clamp(d.layer, 0, int(ma.layers) - 1);
  d.head = std::clamp(d.head, 0, int(ma.heads) - 1);
  d.rows = int(ma.queries);
  d.cols = int(ma.keys);
  d.values.resize(size_t(d.rows) * size_t(d.cols));
  d.kl_rows.assign(size_t(d.rows), 0.f);
  double total = 0;
  for (int i = 0; i < d.rows; ++i) {
    double kl = 0;
    for (int j = 0; j < d.cols; ++j) {
      const float x = ma.at(d.layer, d.head, i, j), y = mb.at(d.layer, d.head, i, j);
      d.values[size_t(i) * size_t(d.cols) + size_t(j)] = app.view.diff_signed ? x - y : std::fabs(x - y);
      if (x > 0) kl += double(x) * std::log(double(x) / std::max(double(y), 1e-12));
    }
    d.kl_rows[size_t(i)] = float(kl);
    total += kl;
  }
  d.mean_kl = total / std::max(1, d.rows);
  d.map.set_data(d.values.data(), nullptr, d.rows, d.cols);
}

void draw_diff_window(App& app) {
  if (!app.view.show_diff || app.columns.empty() || !app.model) return;
  const float fs = ImGui::GetFontSize();
  ImGui::SetNextWindowSize(ImVec2(fs * 30, fs * 36), ImGuiCond_FirstUseEver);
  ImGui::SetNextWindowPos(ImVec2(fs * 6, fs * 6), ImGuiCond_FirstUseEver);
  if (!ImGui::Begin("Difference between two columns", &app.view.show_diff)) {
    ImGui::End();
    return;
  }
  auto pick = [&](const char* label, int* v) {
    const int n = int(app.columns.size());
    *v = std::clamp(*v, 0, n - 1);
    const std::string cur = std::to_string(*v + 1) + ": " + app.columns[size_t(*v)].variant;
    ImGui::SetNextItemWidth(fs * 9);
    if (ImGui::BeginCombo(label, cur.c_str())) {
      for (int i = 0; i < n; ++i)
        if (ImGui::Selectable((std::to_string(i + 1) + ": " + app.columns[size_t(i)].variant).c_str(), i == *v)) *v = i;
      ImGui::EndCombo();
    }
  };
  pick("A", &app.view.diff_a);
  ImGui::SameLine();
  pick("B", &app.view.diff_b);
  ImGui::SameLine();
  ImGui::Checkbox("signed A \xE2\x88\x92 B", &app.view.diff_signed);
  ImGui::SameLine();
  if (ImGui::Button("Export...")) open_export_dialog(app, ExportSource::Difference, 0);
  const int L = int(app.model->config().n_layer), H = int(app.model->config().n_head);
  ImGui::SetNextItemWidth(fs * 7);
  ImGui::SliderInt("##dlayer", &app.diff.layer, 0, L - 1, "layer %d");
  ImGui::SameLine();
  ImGui::SetNextItemWidth(fs * 7);
  ImGui::SliderInt("##dhead", &app.diff.head, 0, H - 1, "head %d");
  update_diff(app);
  DiffState& d = app.diff;
  if (!d.problem.empty()) {
    ImGui::TextColored(kDim, "%s", d.problem.c_str());
    ImGui::End();
    return;
  }
  ImGui::Text("mean KL(A || B) %.4f nats per row", d.mean_kl);
  tooltip("how much B's attention rows differ from A's as distributions (0 = identical)");
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  const float klw = fs * 4, size = std::max(32.f, std::min(avail.x - klw - fs, avail.y - fs * 3));
  const ImVec2 p = ImGui::GetCursorScreenPos();
  HeatmapStyle st = view_style(app);
  st.signed_values = app.view.diff_signed;
  const GLuint tex = d.map.render(app.program, int(size), int(size), st);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  if (tex) dl->AddImage(reinterpret_cast<ImTextureID>(static_cast<intptr_t>(tex)), p, ImVec2(p.x + size, p.y + size));
  // KL per row as bars to the right
  float klmax = 1e-9f;
  for (float k : d.kl_rows) klmax = std::max(klmax, k);
  const float rh = size / float(d.rows), x0 = p.x + size + fs * 0.5f;
  for (int i = 0; i < d.rows; ++i)
    dl->AddRectFilled(ImVec2(x0, p.y + rh * float(i)),
                      ImVec2(x0 + klw * d.kl_rows[size_t(i)] / klmax, p.y + rh * float(i + 1)),
                      IM_COL32(250, 199, 77, 220));
  dl->AddText(app.fonts.small, app.fonts.small->FontSize, ImVec2(x0, p.y + size + 2), ImGui::GetColorU32(kDim),
              "KL/row");
  ImGui::Dummy(ImVec2(size + klw + fs, size + app.fonts.small->FontSize + 4));
  const ImVec2 m = ImGui::GetIO().MousePos;
  if (ImGui::IsWindowHovered() && m.x >= p.x && m.y >= p.y && m.x < p.x + size + klw + fs && m.y < p.y + size) {
    const int i = std::clamp(int((m.y - p.y) / rh), 0, d.rows - 1);
    const int j = std::clamp(int((m.x - p.x) / (size / float(d.cols))), 0, d.cols - 1);
    ImGui::Text("q %d k %d: %s %.4f \xC2\xB7 row KL %.4f", app.tokens.start + i, app.tokens.start + j,
                app.view.diff_signed ? "A\xE2\x88\x92"
                                       "B"
                                     : "|A\xE2\x88\x92"
                                       "B|",
                double(d.values[size_t(i) * size_t(d.cols) + size_t(j)]), double(d.kl_rows[size_t(i)]));
  } else {
    ImGui::TextColored(kDim, "hover: the pair's difference and the row's KL");
  }
  const float bw = std::min(size * 0.6f, fs * 14);
  const ImVec2 cb(ImGui::GetCursorScreenPos().x + fs * 3, ImGui::GetCursorScreenPos().y);
  draw_colorbar(st, d.map.vmax(st.exclude_first), cb, bw, fs * 0.6f);
  ImGui::Dummy(ImVec2(1, fs));
  ImGui::End();
}

}  // namespace attnscope::gui
