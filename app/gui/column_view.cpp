// The columns area (controls over scrolling bodies of rows, or generation), the whole window's layout (draw_ui)
// and the scripted runs' latency log.
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

void log_latency(App& app, Column& c, int index) {
  if (c.latency_logged || !c.shown || c.shown->seq != c.seq) return;
  c.latency_logged = true;
  if (!app.log_events) return;
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - c.submitted_at).count();
  int uploaded = 0;  // rows the heatmaps' textures took for this result (typing: the new rows only)
  for (const Heatmap& hm : c.tiles) uploaded = std::max(uploaded, hm.uploaded_rows());
  std::printf(
      "t=%.3f s  column %d (%s): heatmap of request %llu drawn %.1f ms after the request (forward %.1f ms, "
      "model %.1f ms, %d of %lld rows uploaded)\n",
      seconds_since_start(app), index, c.variant.c_str(), (unsigned long long)c.seq, ms,
      c.shown->ok ? c.shown->maps->forward_ms : 0.0, c.shown->prepare_ms, uploaded,
      c.shown->ok ? (long long)c.shown->maps->queries : 0ll);
  std::fflush(stdout);
}

void draw_column_body(App& app, Column& c, int index) {
  ImGui::PushID(c.id);
  const auto& r = c.shown;
  const VariantInfo* info = layer_variant(c, c.layer);
  if (!r) {
    ImGui::TextColored(kDim, "computing the first result...");
  } else if (!r->ok) {
    if (r->seq == c.seq) {
      ImGui::PushTextWrapPos(0);
      ImGui::TextColored(kRed, "This combination does not run:");
      ImGui::TextColored(kRed, "%s", r->error.c_str());
      ImGui::PopTextWrapPos();
      ImGui::TextColored(kDim, "Change a parameter or the variant above.");
    } else {
      ImGui::TextColored(kAmber, "computing...");
    }
  } else {
    const bool stale = r->seq != c.seq;
    if (ImGui::IsWindowHovered(ImGuiHoveredFlags_ChildWindows)) app.active_column = index;
    draw_attention_row(app, c, index, *r, info, stale);
    if (stale) {
      ImGui::TextColored(kAmber, "computing the new inputs...");
    } else if (app.scenes.present) {  // presentation: the heatmap alone, as large as the column allows
      c.rows_h = ImGui::GetFontSize() * 0.5f;
    } else {
      const float y0 = ImGui::GetCursorPosY();
      draw_sparsity_row(app, c, index, *r);
      draw_cache_row(app, *r);
      draw_timing_row(app, c);
      draw_quality_row(c, *r);
      draw_heads_row(app, c, index, *r);
      c.rows_h = ImGui::GetCursorPosY() - y0;
      // below the rows (the heatmap's size ignores them): the body scrolls down to them
      draw_mask_editor(app, c, int(r->maps->queries), index);
      draw_explanation(app, c, index);
    }
  }
  log_latency(app, c, index);
  ImGui::PopID();
}

void draw_columns(App& app, float height) {
  if (!app.model) {
    ImGui::Spacing();
    if (app.worker->loading()) {
      ImGui::TextColored(kAmber, "Loading the model from %s ...", app.model_dir.c_str());
    } else {
      ImGui::PushTextWrapPos(0);
      ImGui::TextColored(kRed, "No model: %s", app.worker->model_error().c_str());
      ImGui::TextUnformatted("Train one (a few minutes on a laptop) and start attnscope again:");
      ImGui::PushFont(app.fonts.mono);
      ImGui::TextUnformatted("  attnscope train --out assets/models/mha --steps 3000");
      ImGui::PopFont();
      ImGui::TextUnformatted("or open another checkpoint with `attnscope gui --model DIR`.");
      ImGui::PopTextWrapPos();
    }
    return;
  }
  if (!app.program_error.empty()) ImGui::TextColored(kRed, "heatmap shader: %s", app.program_error.c_str());
  const int n = int(app.columns.size());
  ColumnActions act;
  const float top = ImGui::GetCursorScreenPos().y;
  ImGuiTableFlags flags = ImGuiTableFlags_BordersInnerV | ImGuiTableFlags_SizingStretchSame |
                          ImGuiTableFlags_PadOuterX | ImGuiTableFlags_Resizable;
  if (ImGui::BeginTable("columns", std::max(1, n), flags)) {
    ImGui::TableNextRow();
    for (int i = 0; i < n; ++i) {
      ImGui::TableSetColumnIndex(i);
      if (app.scenes.present)
        draw_presentation_header(app.columns[size_t(i)]);
      else
        draw_column_controls(app, app.columns[size_t(i)], i, n, act);
    }
    ImGui::TableNextRow();
    const float body = std::max(ImGui::GetFontSize() * 8,
                                height - (ImGui::GetCursorScreenPos().y - top) - ImGui::GetStyle().ItemSpacing.y * 2);
    for (int i = 0; i < n; ++i) {
      ImGui::TableSetColumnIndex(i);
      ImGui::PushID(app.columns[size_t(i)].id);
      // the columns area behind it has the same colour: no second fill of it
      ImGui::BeginChild("body", ImVec2(0, body), false, ImGuiWindowFlags_NoBackground);
      if (app.gen.open)
        draw_generation_column(app, app.columns[size_t(i)], i);
      else
        draw_column_body(app, app.columns[size_t(i)], i);
      draw_column_export_menu(app, i);
      ImGui::EndChild();
      ImGui::PopID();
    }
    ImGui::EndTable();
  }
  if (act.remove >= 0 && n > 1) {
    app.worker->forget(app.columns[size_t(act.remove)].id);
    app.columns.erase(app.columns.begin() + act.remove);
  } else if (act.left > 0) {
    std::swap(app.columns[size_t(act.left)], app.columns[size_t(act.left - 1)]);
  } else if (act.right >= 0 && act.right + 1 < n) {
    std::swap(app.columns[size_t(act.right)], app.columns[size_t(act.right + 1)]);
  }
}

void draw_ui(App& app) {
  const ImGuiViewport* vp = ImGui::GetMainViewport();
  ImGui::SetNextWindowPos(vp->WorkPos);
  ImGui::SetNextWindowSize(vp->WorkSize);
  const bool present = app.scenes.present;  // presentation mode: no menus, toolbar, sidebar or status bar
  // No background: the frame's clear paints it (gui_main.cpp), one full-window fill less for software OpenGL.
  ImGuiWindowFlags wf = ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_NoMove | ImGuiWindowFlags_NoSavedSettings |
                        ImGuiWindowFlags_NoBringToFrontOnFocus | ImGuiWindowFlags_NoBackground |
                        (present ? 0 : ImGuiWindowFlags_MenuBar);
  ImGui::Begin("attnscope", nullptr, wf);
  app.targets.clear();
  if (present) {
    draw_presentation_title(app);
    ImGui::BeginChild("columns_area", ImVec2(0, 0), false);
    draw_columns(app, ImGui::GetContentRegionAvail().y);
    ImGui::EndChild();
  } else {
    draw_menu(app);
    draw_toolbar(app);
    ImGui::Separator();
    const float status_h = ImGui::GetFrameHeightWithSpacing() + ImGui::GetStyle().ItemSpacing.y;
    const float side = std::min(ImGui::GetFontSize() * 21.f, vp->WorkSize.x * 0.3f);
    ImGui::BeginChild("sidebar", ImVec2(side, -status_h), true);
    if (app.gen.open)
      draw_generation_panel(app);
    else
      draw_text_panel(app);
    ImGui::EndChild();
    ImGui::SameLine();
    // on the window's own colour (the clear): the columns' separators divide it, and software OpenGL (Xvfb, remote
    // desktops) saves two thirds of the window's fill
    ImGui::BeginChild("columns_area", ImVec2(0, -status_h), false, ImGuiWindowFlags_NoBackground);
    draw_columns(app, ImGui::GetContentRegionAvail().y);
    ImGui::EndChild();
    draw_status_bar(app);
  }
  handle_studio_keys(app);
  ImGuiIO& io = ImGui::GetIO();
  if (!io.WantTextInput && !ImGui::IsAnyItemActive()) {  // arrow keys: head (left/right) and layer (up/down)
    if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_LeftArrow))) move_selection(app, 0, -1);
    if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_RightArrow))) move_selection(app, 0, 1);
    if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_UpArrow))) move_selection(app, -1, 0);
    if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_DownArrow))) move_selection(app, 1, 0);
  }
  ImGui::End();
  draw_diff_window(app);
  draw_kv_calculator(app);
  draw_scaling_window(app);
  draw_advisor_window(app);
  draw_long_window(app);
  draw_scene_ui(app);
  draw_export_dialog(app);
  draw_help_windows(app);
  if (app.view.show_demo) ImGui::ShowDemoWindow(&app.view.show_demo);
}

}  // namespace attnscope::gui
