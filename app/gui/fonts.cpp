// The window's fonts (DejaVu from the system, rebuilt at the UI scale's pixel size: crisp at every size) and its
// style. Shared by the window (gui_main.cpp) and the headless runner (headless.cpp): both lay out the same UI.
#include <cmath>
#include <fstream>
#include <string>

#include "app_rules.h"
#include "imgui.h"
#include "imgui_freetype.h"
#include "state.h"

namespace attnscope::gui {

namespace {

const char* kFontDir = "/usr/share/fonts/truetype/dejavu/";

bool file_exists(const std::string& p) {
  std::ifstream f(p);
  return bool(f);
}

}  // namespace

// Fonts are rebuilt at the target pixel size (the UI scale) rather than scaled: crisp at every size.
void build_fonts(App& app, float size) {
  ImGuiIO& io = ImGui::GetIO();
  io.Fonts->Clear();
  static ImVector<ImWchar> ranges;
  if (ranges.empty()) {
    ImFontGlyphRangesBuilder b;
    b.AddRanges(io.Fonts->GetGlyphRangesDefault());
    static const ImWchar extra[] = {0x0100, 0x017F, 0x0370, 0x03FF, 0x2000, 0x206F, 0x20A0, 0x20CF, 0x2190, 0x21FF,
                                    0x2200, 0x22FF, 0x25A0, 0x25FF, 0x26A0, 0x26A0, 0x2713, 0x2717, 0};
    b.AddRanges(extra);
    b.BuildRanges(&ranges);
  }
  auto add = [&](const char* file, float px) -> ImFont* {
    const std::string path = std::string(kFontDir) + file;
    if (file_exists(path)) {
      ImFontConfig cfg;
      cfg.OversampleH = 1;
      return io.Fonts->AddFontFromFileTTF(path.c_str(), px, &cfg, ranges.Data);
    }
    ImFontConfig cfg;
    cfg.SizePixels = px;
    return io.Fonts->AddFontDefault(&cfg);
  };
  app.fonts.size = size;
  app.fonts.ui = add("DejaVuSans.ttf", size);
  app.fonts.mono = add("DejaVuSansMono.ttf", size);
  app.fonts.small = add("DejaVuSansMono.ttf", std::round(size * 0.78f));
  app.fonts.title = add("DejaVuSans-Bold.ttf", std::round(size * 1.25f));
  io.Fonts->FontBuilderIO = ImGuiFreeType::GetBuilderForFreeType();
  io.Fonts->FontBuilderFlags = 0;
  io.Fonts->Build();
  io.FontDefault = app.fonts.ui;

  ImGuiStyle& st = ImGui::GetStyle();
  st = ImGuiStyle();
  st.WindowRounding = 0;
  st.ChildRounding = 6;
  st.FrameRounding = 4;
  st.GrabRounding = 4;
  st.PopupRounding = 4;
  st.FramePadding = ImVec2(7, 4);
  st.ItemSpacing = ImVec2(8, 6);
  st.WindowPadding = ImVec2(10, 10);
  st.CellPadding = ImVec2(8, 4);
  ImVec4* c = st.Colors;
  if (app.view.light_theme) {
    // Dear ImGui's light colours with stronger borders and frames: a projector flattens pale greys to white.
    ImGui::StyleColorsLight(&st);
    c[ImGuiCol_WindowBg] = ImVec4(0.97f, 0.97f, 0.96f, 1);
    c[ImGuiCol_ChildBg] = ImVec4(0.93f, 0.93f, 0.92f, 1);
    c[ImGuiCol_Border] = ImVec4(0.62f, 0.62f, 0.66f, 1);
    c[ImGuiCol_FrameBg] = ImVec4(0.86f, 0.87f, 0.90f, 1);
    c[ImGuiCol_TableBorderLight] = ImVec4(0.70f, 0.70f, 0.74f, 1);
    st.ScaleAllSizes(size / 16.f);
    return;
  }
  ImGui::StyleColorsDark(&st);
  c[ImGuiCol_WindowBg] = ImVec4(0.085f, 0.09f, 0.11f, 1);
  c[ImGuiCol_ChildBg] = ImVec4(0.11f, 0.115f, 0.14f, 1);
  c[ImGuiCol_Border] = ImVec4(0.22f, 0.23f, 0.28f, 1);
  c[ImGuiCol_FrameBg] = ImVec4(0.17f, 0.18f, 0.22f, 1);
  c[ImGuiCol_FrameBgHovered] = ImVec4(0.23f, 0.26f, 0.33f, 1);
  c[ImGuiCol_FrameBgActive] = ImVec4(0.26f, 0.31f, 0.42f, 1);
  c[ImGuiCol_Button] = ImVec4(0.20f, 0.30f, 0.48f, 1);
  c[ImGuiCol_ButtonHovered] = ImVec4(0.26f, 0.40f, 0.64f, 1);
  c[ImGuiCol_ButtonActive] = ImVec4(0.30f, 0.46f, 0.74f, 1);
  c[ImGuiCol_TableBorderLight] = ImVec4(0.25f, 0.26f, 0.32f, 1);
  c[ImGuiCol_Separator] = ImVec4(0.22f, 0.23f, 0.28f, 1);
  st.ScaleAllSizes(size / 16.f);
}

}  // namespace attnscope::gui
