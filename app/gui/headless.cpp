// `attnscope gui --headless --script ...`: the window's app without a window. The same App, the same worker, the
// same script table and the same views (Dear ImGui lays every frame out and builds its draw lists, so `click
// @TARGET` finds its widget), but no display, no OpenGL and no pixels: heatmaps keep their sizes and upload nothing
// (heatmap.h: set_gl_available). Scripted interactions that need no picture run here, without Xvfb; `shot` is the
// one command that needs pixels and fails with a message.
#include <GLFW/glfw3.h>  // key codes only (the same numbers the window's keyboard backend uses); no GLFW call

#include <chrono>
#include <cstdio>
#include <string>

#include "app_rules.h"
#include "gui.h"
#include "heatmap.h"
#include "imgui.h"
#include "script.h"
#include "state.h"
#include "studio.h"

namespace attnscope::gui {

namespace {

using Clock = std::chrono::steady_clock;

// io.KeyMap as the GLFW backend fills it (imgui_impl_glfw.cpp), so script keys and the views' IsKeyPressed agree.
void map_keys(ImGuiIO& io) {
  struct Pair {
    ImGuiKey_ imgui;
    int glfw;
  };
  static const Pair kKeys[] = {
      {ImGuiKey_Tab, GLFW_KEY_TAB},
      {ImGuiKey_LeftArrow, GLFW_KEY_LEFT},
      {ImGuiKey_RightArrow, GLFW_KEY_RIGHT},
      {ImGuiKey_UpArrow, GLFW_KEY_UP},
      {ImGuiKey_DownArrow, GLFW_KEY_DOWN},
      {ImGuiKey_PageUp, GLFW_KEY_PAGE_UP},
      {ImGuiKey_PageDown, GLFW_KEY_PAGE_DOWN},
      {ImGuiKey_Home, GLFW_KEY_HOME},
      {ImGuiKey_End, GLFW_KEY_END},
      {ImGuiKey_Insert, GLFW_KEY_INSERT},
      {ImGuiKey_Delete, GLFW_KEY_DELETE},
      {ImGuiKey_Backspace, GLFW_KEY_BACKSPACE},
      {ImGuiKey_Space, GLFW_KEY_SPACE},
      {ImGuiKey_Enter, GLFW_KEY_ENTER},
      {ImGuiKey_Escape, GLFW_KEY_ESCAPE},
      {ImGuiKey_KeyPadEnter, GLFW_KEY_KP_ENTER},
      {ImGuiKey_A, GLFW_KEY_A},
      {ImGuiKey_C, GLFW_KEY_C},
      {ImGuiKey_V, GLFW_KEY_V},
      {ImGuiKey_X, GLFW_KEY_X},
      {ImGuiKey_Y, GLFW_KEY_Y},
      {ImGuiKey_Z, GLFW_KEY_Z},
  };
  for (const Pair& p : kKeys) io.KeyMap[p.imgui] = p.glfw;
}

// One frame as the window draws it (gui_main.cpp: draw_frame), minus the pixels.
void headless_frame(App& app, Script& script, double max_seconds) {
  apply_presentation(app);
  if (app.fonts_dirty) {
    app.fonts_dirty = false;
    build_fonts(app, font_pixels(app));
  }
  ImGuiIO& io = ImGui::GetIO();
  io.DeltaTime = 1.0f / 60.0f;
  std::string shot;
  step_script(app, script, &shot, max_seconds);
  if (!shot.empty()) {
    std::fprintf(stderr, "attnscope gui: 'shot %s' needs pixels: run without --headless (under Xvfb if need be)\n",
                 shot.c_str());
    ++script.failures;
  }
  const auto frame_start = Clock::now();
  ImGui::NewFrame();
  draw_ui(app);
  ImGui::Render();  // the draw lists are built (and the targets recorded); nobody rasterises them
  app.frame_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - frame_start).count());
  if (app.frame_ms.size() > 240) app.frame_ms.pop_front();
  ++app.frame;
}

}  // namespace

int run_headless(GuiOptions& opts) {
  if (opts.script.empty() && opts.frames <= 0) {
    std::fprintf(stderr, "attnscope gui: --headless needs --script or --frames (there is no window to close)\n");
    return 2;
  }
  if (!opts.screenshot.empty()) {
    std::fprintf(stderr, "attnscope gui: --screenshot needs pixels: run without --headless (under Xvfb if need be)\n");
    return 2;
  }
  IMGUI_CHECKVERSION();
  ImGui::CreateContext();
  ImGuiIO& io = ImGui::GetIO();
  io.IniFilename = nullptr;  // a headless run leaves the person's window layout alone
  io.DisplaySize = ImVec2(float(opts.width), float(opts.height));
  io.DisplayFramebufferScale = ImVec2(1, 1);
  map_keys(io);
  set_gl_available(false);
  int rc = 0;
  {
    App app;
    load_app_settings(app, opts, true);
    build_fonts(app, font_pixels(app));
    unsigned char* pixels = nullptr;
    int w = 0, h = 0;
    io.Fonts->GetTexDataAsRGBA32(&pixels, &w, &h);  // the atlas is built; no texture to upload it to
    rc = start_app(app, opts);
    Script script = make_script(opts, true);
    while (rc == 0 && !script.quit) {
      update_app(app);
      headless_frame(app, script, opts.max_seconds);
    }
    print_state(app, stdout);
    if (script.failures) rc = 3;
    close_app(app);
  }
  ImGui::DestroyContext();
  return rc;
}

}  // namespace attnscope::gui
