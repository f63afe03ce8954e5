// The toolbar (model summary, status, add column, colour and display options, the optional windows' switches) and
// the menu bar (File from studio.cpp, View).
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>

#include "imgui.h"
#include "registry.h"
#include "state.h"
#include "views.h"
#include "widgets.h"

namespace attnscope::gui {

namespace {

const Choice kColormaps[] = {
    {"viridis", "perceptually uniform, dark blue (0) to yellow (max)"},
    {"magma", "perceptually uniform, black (0) to light yellow (max)"},
    {"cividis", "perceptually uniform and colour-vision-deficiency friendly, navy (0) to yellow (max)"},
    {"grayscale", "black (0) to white (max)"},
};
const Choice kScales[] = {
    {"linear", "colour proportional to the weight, 0 .. the matrix's largest weight"},
    {"log", "colour by log10(weight): shows the small weights too (range set by 'decades')"},
    {"per row", "each query row scaled to its own largest weight: where does each character look?"},
};

}  // namespace

void draw_toolbar(App& app) {
  ImGui::PushFont(app.fonts.title);
  ImGui::TextColored(kAccent, "attnscope");
  ImGui::PopFont();
  ImGui::SameLine();
  ImGui::AlignTextToFramePadding();
  if (app.model) {
    const ModelConfig& c = app.model->config();
    ImGui::TextColored(
        kDim,
        "  model: %s  \xC2\xB7  %" PRId64 " layers \xC3\x97 %" PRId64 " heads  \xC2\xB7  d_model %" PRId64
        "  \xC2\xB7  context %" PRId64 "  \xC2\xB7  %.2fM parameters  \xC2\xB7  %s  \xC2\xB7  %s",
        c.variant_summary().c_str(), c.n_layer, c.n_head, c.d_model, c.context,
        double(app.model->parameter_count()) / 1e6, pos_kind_name(c.position), app.model->device_name().c_str());
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", app.model_dir.c_str());
  } else if (app.worker->loading()) {
    ImGui::TextColored(kAmber, "  loading the model from %s ...", app.model_dir.c_str());
  } else {
    ImGui::TextColored(kRed, "  no model");
  }
  // status, right-aligned
  const bool busy = app.worker->busy();
  const char* status = busy ? "computing..." : "ready";
  const float w = ImGui::CalcTextSize(status).x + ImGui::GetFontSize();
  ImGui::SameLine(ImGui::GetWindowContentRegionMax().x - w);
  ImGui::TextColored(busy ? kAmber : kGreen, "\xE2\x97\x8F %s", status);  // ●

  // second row: columns and display
  const bool full = int(app.columns.size()) >= kMaxColumns;
  ImGui::BeginDisabled(full || !app.model);
  if (ImGui::Button("+ Add column")) add_column(app, app.columns.empty() ? "mha" : app.columns.back().variant);
  mark_target(app, "add_column");
  ImGui::EndDisabled();
  tooltip(full ? "at most 6 columns"
               : "another variant column, side by side (remove with \xC3\x97, reorder with \xE2\x97\x80 \xE2\x96\xB6)");
  ImGui::SameLine(0, ImGui::GetFontSize() * 1.5f);
  const float combo_w = ImGui::GetFontSize() * 8.5f;
  ImGui::SetNextItemWidth(combo_w);
  int cm = int(app.view.colormap);
  if (combo_from_table("colormap", &cm, kColormaps, IM_ARRAYSIZE(kColormaps))) app.view.colormap = Colormap(cm);
  ImGui::SameLine(0, ImGui::GetFontSize());
  ImGui::SetNextItemWidth(combo_w);
  int sc = int(app.view.scale);
  if (combo_from_table("scale", &sc, kScales, IM_ARRAYSIZE(kScales))) app.view.scale = Scale(sc);
  mark_target(app, "scale");
  if (app.view.scale == Scale::Log) {
    ImGui::SameLine();
    ImGui::SetNextItemWidth(ImGui::GetFontSize() * 5);
    ImGui::SliderFloat("decades", &app.view.log_decades, 1, 8, "%.0f");
    tooltip("log scale: how many powers of ten below the largest weight still get a colour");
  }
  ImGui::SameLine(0, ImGui::GetFontSize());
  ImGui::Checkbox("skip col 0", &app.view.exclude_first);
  tooltip(
      "leave the first key out of the colour scale: attention sinks (most weight on the first character) "
      "otherwise wash out everything else; the first column saturates");
  ImGui::SameLine(0, ImGui::GetFontSize());
  ImGui::Checkbox("hatch skipped", &app.view.mask_overlay);
  tooltip("pairs the variant does not compute (the causal future, sparse patterns) are hatched instead of coloured");
  ImGui::SameLine(0, ImGui::GetFontSize());
  ImGui::Checkbox("labels", &app.view.labels);
  tooltip("the text's characters along the axes, when the cells are large enough");
  ImGui::SameLine(0, ImGui::GetFontSize());
  if (ImGui::Checkbox("link layer/head", &app.view.link) && app.view.link && !app.columns.empty()) {
    const Column& a = app.columns[size_t(std::clamp(app.active_column, 0, int(app.columns.size()) - 1))];
    set_layer_head(app, app.active_column, a.layer, a.head);
  }
  mark_target(app, "link");
  tooltip(
      "every column shows the same layer and head (arrow keys: \xE2\x86\x90 \xE2\x86\x92 head, "
      "\xE2\x86\x91 \xE2\x86\x93 layer)");
  ImGui::SameLine(0, ImGui::GetFontSize());
  ImGui::Checkbox("difference", &app.view.show_diff);
  mark_target(app, "diff");
  tooltip("a window comparing two columns: |A - B| or A - B, and KL(A || B) per query row");
  ImGui::SameLine(0, ImGui::GetFontSize());
  if (ImGui::Checkbox("generation", &app.gen.open) && !app.gen.open) app.gen.playing = false;
  mark_target(app, "generation");
  tooltip(
      "every column's model writes from one prompt, token by token: the newest query's attention, what each "
      "cache holds and its bytes, with play, step and a scrubber");
  ImGui::SameLine(0, ImGui::GetFontSize());
  ImGui::Checkbox("KV calculator", &app.kv.open);
  mark_target(app, "kv_calc");
  tooltip("cache bytes of published model shapes per attention family, and which GPUs they fit");
}

void draw_menu(App& app) {
  if (!ImGui::BeginMenuBar()) return;
  draw_file_menu(app);
  if (ImGui::BeginMenu("View")) {
    if (ImGui::BeginMenu("UI scale")) {
      static const float scales[] = {0.75f, 1.0f, 1.25f, 1.5f, 1.75f, 2.0f};
      for (float s : scales) {
        char label[16];
        std::snprintf(label, sizeof label, "%.0f%%", double(s) * 100);
        if (ImGui::MenuItem(label, nullptr, std::fabs(app.view.ui_scale - s) < 0.01f)) {
          app.view.ui_scale = s;
          app.fonts_dirty = true;
        }
      }
      ImGui::EndMenu();
    }
    if (ImGui::MenuItem("Light theme", nullptr, &app.view.light_theme)) app.fonts_dirty = true;  // style rebuilt
    if (ImGui::BeginMenu("Colormap")) {
      for (int i = 0; i < IM_ARRAYSIZE(kColormaps); ++i)
        if (ImGui::MenuItem(kColormaps[i].label, nullptr, int(app.view.colormap) == i)) app.view.colormap = Colormap(i);
      ImGui::EndMenu();
    }
    ImGui::MenuItem("Difference window", nullptr, &app.view.show_diff);
    ImGui::MenuItem("Generation view", nullptr, &app.gen.open);
    ImGui::MenuItem("KV-cache calculator", nullptr, &app.kv.open);
    ImGui::MenuItem("Link layer/head across columns", nullptr, &app.view.link);
    ImGui::MenuItem("Exclude the first key from colour scales", nullptr, &app.view.exclude_first);
    ImGui::Separator();
    ImGui::MenuItem("Dear ImGui demo", nullptr, &app.view.show_demo);
    ImGui::EndMenu();
  }
  draw_help_menu(app);
  ImGui::EndMenuBar();
}

}  // namespace attnscope::gui
