// The window: GLFW + OpenGL 3.3 core + Dear ImGui 1.86, the frame loop, fonts and screenshots. What the window
// starts with and updates every frame is app_rules.cpp; scripted input is script.cpp; the views draw in draw_ui.
#include <GLFW/glfw3.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <cstring>
#include <thread>
#include <unordered_set>

#include "app_rules.h"
#include "bench.h"
#include "engine.h"
#include "backends/imgui_impl_glfw.h"
#include "backends/imgui_impl_opengl3.h"
#include "gl.h"
#include "gui.h"
#include "heatmap.h"
#include "imgui.h"
#include "script.h"
#include "state.h"
#include "studio.h"
#include <stb/stb_image.h>        // implementation exported by libstb.so: do not define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image_write.h>  // implementation exported by libstb.so: do not define STB_IMAGE_WRITE_IMPLEMENTATION

namespace attnscope {

namespace gui {
namespace {

bool save_screenshot(const std::string& path, int w, int h) {
  std::vector<unsigned char> px(size_t(w) * size_t(h) * 4), flipped(px.size());
  glPixelStorei(GL_PACK_ALIGNMENT, 1);
  glReadBuffer(GL_BACK);
  glReadPixels(0, 0, w, h, GL_RGBA, GL_UNSIGNED_BYTE, px.data());
  std::unordered_set<uint32_t> colours;
  for (int y = 0; y < h; ++y) {
    std::copy(px.begin() + long(size_t(h - 1 - y) * size_t(w) * 4), px.begin() + long(size_t(h - y) * size_t(w) * 4),
              flipped.begin() + long(size_t(y) * size_t(w) * 4));
  }
  for (size_t i = 0; i < flipped.size(); i += 4) {
    flipped[i + 3] = 255;
    uint32_t c = uint32_t(flipped[i]) | uint32_t(flipped[i + 1]) << 8 | uint32_t(flipped[i + 2]) << 16;
    if (colours.size() < 100000) colours.insert(c);
  }
  const int ok = stbi_write_png(path.c_str(), w, h, 4, flipped.data(), w * 4);
  std::printf("screenshot %s: %dx%d, %zu distinct colours%s\n", path.c_str(), w, h, colours.size(),
              ok ? "" : " (WRITE FAILED)");
  std::fflush(stdout);
  return ok != 0;
}

std::string g_window_icon;  // the icon file open_window gave the window ("" = the window manager's default)

// The window's icon: the 256 x 256 PNG the build draws from a head's weights (packaging/icon.cpp), as installed
// (BIN/../share/icons/hicolor/256x256/apps) or in the build tree beside the binary (packaging/). Returns the file
// used, "" when there is none (the window manager's default icon then).
std::string set_window_icon(GLFWwindow* win) {
  namespace fs = std::filesystem;
  const std::string self = executable_path();
  if (self.empty()) return "";
  const fs::path exe(self);
  const fs::path candidates[] = {exe.parent_path().parent_path() / "share/icons/hicolor/256x256/apps/attnscope.png",
                                 exe.parent_path() / "packaging/attnscope.png"};
  for (const fs::path& p : candidates) {
    int w = 0, h = 0, channels = 0;
    unsigned char* px = stbi_load(p.c_str(), &w, &h, &channels, 4);  // [h, w, RGBA]
    if (!px) continue;
    GLFWimage img{w, h, px};
    glfwSetWindowIcon(win, 1, &img);  // GLFW copies the pixels
    stbi_image_free(px);
    return p.string();
  }
  return "";
}

void glfw_error(int code, const char* msg) { std::fprintf(stderr, "attnscope gui: GLFW error %d: %s\n", code, msg); }

// GLFW, an OpenGL 3.3 core context and Dear ImGui on it; null (after saying why) when no window can be opened.
GLFWwindow* open_window(const GuiOptions& opts, bool scripted) {
  glfwSetErrorCallback(glfw_error);
  if (!glfwInit()) {
    std::fprintf(stderr,
                 "attnscope: cannot open a window (no display?). Run under a desktop session or "
                 "`xvfb-run -a attnscope gui --screenshot out.png`; every CLI subcommand works without one "
                 "(attnscope --help)\n");
    return nullptr;
  }
  glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
  glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 3);
  glfwWindowHint(GLFW_OPENGL_PROFILE, GLFW_OPENGL_CORE_PROFILE);
  glfwWindowHint(GLFW_OPENGL_FORWARD_COMPAT, GL_TRUE);
  GLFWwindow* win =
      glfwCreateWindow(opts.width, opts.height, "attnscope \xE2\x80\x94 attention, live", nullptr, nullptr);
  if (!win) {
    std::fprintf(stderr, "attnscope: cannot create an OpenGL 3.3 core window\n");
    glfwTerminate();
    return nullptr;
  }
  g_window_icon = set_window_icon(win);
  glfwMakeContextCurrent(win);
  glfwSwapInterval(scripted ? 0 : 1);

  IMGUI_CHECKVERSION();
  ImGui::CreateContext();
  ImGuiIO& io = ImGui::GetIO();
  // Window layout (the difference window, column widths) persists in imgui.ini next to settings.json.
  // The arrow keys move the layer and head, so keyboard navigation stays off.
  const std::string cfg_dir = config_dir();
  static std::string ini_path;
  ini_path = cfg_dir.empty() ? "" : cfg_dir + "/imgui.ini";
  if (!cfg_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(cfg_dir, ec);
  }
  io.IniFilename = ini_path.empty() ? nullptr : ini_path.c_str();
  ImGui_ImplGlfw_InitForOpenGL(win, true);
  ImGui_ImplOpenGL3_Init("#version 330 core");
  return win;
}

void close_window(GLFWwindow* win) {
  ImGui_ImplOpenGL3_Shutdown();
  ImGui_ImplGlfw_Shutdown();
  ImGui::DestroyContext();
  glfwDestroyWindow(win);
  glfwTerminate();
}

// Scripted runs drive the pointer until the real one moves (a person, or xdotool): from then on real input goes on.
void watch_real_pointer(GLFWwindow* win, Script& script) {
  static double x0 = -1, y0 = -1;
  double x, y;
  glfwGetCursorPos(win, &x, &y);
  if (x0 < 0 && y0 < 0)
    x0 = x, y0 = y;
  else if (x != x0 || y != y0)
    script.real_pointer_moved = true;
}

// What the frame would show: a hash of Dear ImGui's draw data (vertices, indices, commands, textures, clip
// rectangles), the heatmap textures' epoch and the framebuffer's size. Equal keys draw equal pictures.
uint64_t picture_key(const ImDrawData& dd, int fw, int fh) {
  uint64_t h = 0x9E3779B97F4A7C15ull;
  auto mix = [&h](uint64_t v) {
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h *= 0xFF51AFD7ED558CCDull;
  };
  auto mix_bytes = [&mix](const void* p, size_t n) {
    const unsigned char* b = static_cast<const unsigned char*>(p);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, b + i, 8);
      mix(w);
    }
    uint64_t tail = 0;
    std::memcpy(&tail, b + i, n - i);
    mix(tail ^ n);
  };
  mix(uint64_t(fw) << 32 | uint32_t(fh));
  mix(heatmap_texture_epoch());
  for (int l = 0; l < dd.CmdListsCount; ++l) {
    const ImDrawList* list = dd.CmdLists[l];
    mix_bytes(list->VtxBuffer.Data, size_t(list->VtxBuffer.Size) * sizeof(ImDrawVert));
    mix_bytes(list->IdxBuffer.Data, size_t(list->IdxBuffer.Size) * sizeof(ImDrawIdx));
    for (const ImDrawCmd& cmd : list->CmdBuffer) {
      mix_bytes(&cmd.ClipRect, sizeof(cmd.ClipRect));
      mix(uint64_t(reinterpret_cast<uintptr_t>(cmd.TextureId)));
      mix(uint64_t(cmd.VtxOffset) << 32 | cmd.IdxOffset);
      mix(uint64_t(cmd.ElemCount) << 1 | (cmd.UserCallback != nullptr));
    }
  }
  return h;
}

// One frame: fonts rebuilt when the scale changed, the script's input, the UI, a screenshot when the script asks.
// A frame whose picture equals the last one drawn (picture_key) skips OpenGL: no fill, no swap. Under software
// OpenGL (Xvfb, remote desktops) the fill is nearly all of a frame's time; on a GPU it saves power.
void draw_frame(App& app, GLFWwindow* win, Script& script, double max_seconds) {
  apply_presentation(app);
  if (app.fonts_dirty) {
    app.fonts_dirty = false;
    build_fonts(app, font_pixels(app));
    ImGui_ImplOpenGL3_DestroyFontsTexture();
    ImGui_ImplOpenGL3_CreateFontsTexture();
  }
  ImGui_ImplOpenGL3_NewFrame();
  ImGui_ImplGlfw_NewFrame();
  std::string shot;
  watch_real_pointer(win, script);
  step_script(app, script, &shot, max_seconds);
  const auto frame_start = Clock::now();
  ImGui::NewFrame();
  draw_ui(app);
  ImGui::Render();
  int fw = 0, fh = 0;
  glfwGetFramebufferSize(win, &fw, &fh);
  const uint64_t key = picture_key(*ImGui::GetDrawData(), fw, fh);
  const bool draw = app.redraw || key != app.last_picture || !shot.empty();
  if (draw) {
    glViewport(0, 0, fw, fh);
    // The main window has no background of its own (draw_ui): the clear paints it.
    const ImVec4 bg = ImGui::GetStyle().Colors[ImGuiCol_WindowBg];
    glClearColor(bg.x, bg.y, bg.z, 1);
    glClear(GL_COLOR_BUFFER_BIT);
    ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
    if (!shot.empty()) {
      if (!save_screenshot(shot, fw, fh)) ++script.failures;
    }
    glfwSwapBuffers(win);
    app.last_picture = key;
    app.redraw = false;
  }
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - frame_start).count();
  auto record = [ms](std::deque<double>& recent) {  // the last 240 frames
    recent.push_back(ms);
    if (recent.size() > 240) recent.pop_front();
  };
  record(app.frame_ms);
  if (draw) {
    ++app.frames_drawn;
    record(app.drawn_ms);
  }
  ++app.frame;
  // Scripted runs count frames (`wait N`): an unchanged frame still takes a display's 1/60 s, as with vsync.
  if (!draw && script.active)
    std::this_thread::sleep_for(std::chrono::microseconds(16667) - (Clock::now() - frame_start));
}

// The app in the open window until it closes or the script quits; returns the exit code.
int run_app(GLFWwindow* win, GuiOptions& opts, bool scripted) {
  App app;
  app.window_icon = g_window_icon;
  load_app_settings(app, opts, scripted);
  build_fonts(app, font_pixels(app));
  set_gl_available(true);  // heatmaps upload from here on (heatmap.h)
  if (!app.program.init(&app.program_error)) std::fprintf(stderr, "attnscope gui: %s\n", app.program_error.c_str());
  static App* refresh_app = nullptr;  // the window system's repaint requests (exposed, restored) reach the app
  refresh_app = &app;
  glfwSetWindowRefreshCallback(win, [](GLFWwindow*) {
    if (refresh_app) refresh_app->redraw = true;
  });
  int rc = start_app(app, opts);
  // A published result ends the event wait below at once (it would otherwise show up to 30 ms late).
  if (app.worker) app.worker->set_on_publish([] { glfwPostEmptyEvent(); });
  Script script = make_script(opts, scripted);
  while (rc == 0 && !glfwWindowShouldClose(win) && !script.quit) {
    if (scripted)
      glfwPollEvents();
    else
      glfwWaitEventsTimeout(app.worker->busy() ? 0.03 : 0.25);
    update_app(app);
    draw_frame(app, win, script, opts.max_seconds);
  }
  if (scripted) print_state(app, stdout);
  if (script.failures) rc = 3;
  glfwSetWindowRefreshCallback(win, nullptr);
  refresh_app = nullptr;
  close_app(app);
  return rc;
}

}  // namespace
}  // namespace gui

int run_gui(const GuiOptions& opts_in) {
  using namespace gui;
  if (is_script_help(opts_in.script)) {  // `--script help`: the commands, no window needed
    print_script_help(stdout);
    return 0;
  }
  GuiOptions opts = opts_in;
  // The window runs LibTorch on several threads: the scaling panel's and the advisor's measurements run in fresh
  // processes of this program, never in forks of it (bench.h).
  bench_children_exec(executable_path());        // "": plain forks (no /proc): the sweep still runs
  if (opts.headless) return run_headless(opts);  // no window, no OpenGL: the scripted app alone
  const bool scripted = !opts.screenshot.empty() || opts.frames > 0 || !opts.script.empty();
  GLFWwindow* win = open_window(opts, scripted);
  if (!win) return 1;
  const int rc = run_app(win, opts, scripted);
  close_window(win);
  return rc;
}

}  // namespace attnscope
