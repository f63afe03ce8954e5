// The window: GLFW + OpenGL 3.3 core + Dear ImGui 1.86, the frame loop, fonts, scripted input and screenshots.
#include <GLFW/glfw3.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <unordered_set>

#include "backends/imgui_impl_glfw.h"
#include "backends/imgui_impl_opengl3.h"
#include "engine.h"
#include "error.h"
#include "gl.h"
#include "gui.h"
#include "imgui.h"
#include "imgui_freetype.h"
#include "registry.h"
#include "state.h"
#include <stb/stb_image_write.h>  // implementation exported by libstb.so: do not define STB_IMAGE_WRITE_IMPLEMENTATION

namespace attnscope {

namespace gui {
namespace {

const char* kFontDir = "/usr/share/fonts/truetype/dejavu/";

bool file_exists(const std::string& p) {
  std::ifstream f(p);
  return bool(f);
}

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
  ImGui::StyleColorsDark(&st);
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

// ------------------------------------------------------------------------------------------------ script

// Scripted input for tests and screenshots. Commands (one per line or separated by ';'):
//   wait N | idle | move X Y | click X Y | click @TARGET | drag @TARGET DX DY | type TEXT | shot FILE | quit
//   add_column VARIANT | variant COL NAME | param COL NAME VALUE | head COL H | layer COL L | text TEXT
//   key left|right|up|down | view COL weights|mask | scale linear|log|row | colormap NAME | exclude_first 0|1
//   link 0|1 | zoom COL FACTOR | diff A B [signed] | uiscale S | source typed|passage|generate
//   expect_columns N | expect_results | print
//   generate_start [PROMPT] | generate_step N | generate_play 0|1 | generate_stream shared|own
//   generate_options TEMPERATURE TOP_K SEED | scrub K (-1: the newest step) | generate_close
//   kv_calc PRESET TOKENS [BATCH [DTYPE]]
//   explain COL 0|1 | per_layer COL 0|1 | layer_variant COL LAYER VARIANT | layer_param COL LAYER NAME VALUE
//   mask COL clear|causal|clip|band LO HI|rect I0 J0 I1 J1|brush I J R [erase] (the custom mask of the column's
//   selected layer) | mask_edit COL 0|1 (the painting tools on the sparsity row)
//   export, export_dialog, scene_open, scene_save, present, page_down, scaling, ...: see studio.cpp
// Scripted runs print every command and every heatmap update with a timestamp (t=SECONDS since start).
// Mouse commands write io.MousePos / io.MouseDown after ImGui_ImplGlfw_NewFrame, like real input.
struct Script {
  std::deque<std::string> cmds;
  int wait = 0;        // frames left in the current command
  int phase = 0;
  bool active = false; // a scripted run (--script, --screenshot, --frames)
  bool real_pointer_moved = false;
  std::chrono::steady_clock::time_point sleep_until{};
  bool mouse = false;  // the script owns the mouse
  ImVec2 pos{-FLT_MAX, -FLT_MAX};
  bool down = false;
  int key = -1;        // a key held for one frame (io.KeysDown index)
  ImVec2 drag_from, drag_to;
  bool quit = false;
  int failures = 0;
  std::chrono::steady_clock::time_point idle_since{};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  // Files: one command per line; inline (--script 'a; b'): separated by ';' too.
  void add(const std::string& text, bool split_semicolons = true) {
    std::string cur;
    for (char ch : text + "\n") {
      if (ch == '\n' || (ch == ';' && split_semicolons)) {
        size_t a = cur.find_first_not_of(" \t\r"), b = cur.find_last_not_of(" \t\r");
        if (a != std::string::npos && cur[a] != '#') cmds.push_back(cur.substr(a, b - a + 1));
        cur.clear();
      } else {
        cur += ch;
      }
    }
  }
  bool done() const { return cmds.empty(); }
};

bool target_center(const App& app, const std::string& name, ImVec2* out) {
  auto it = app.targets.find(name);
  if (it == app.targets.end()) return false;
  *out = ImVec2((it->second.x + it->second.z) * 0.5f, (it->second.y + it->second.w) * 0.5f);
  return true;
}

void print_state(const App& app, FILE* f) {
  int results = 0, errors = 0;
  for (const Column& c : app.columns) {
    if (c.shown && c.shown->ok) ++results;
    if (c.shown && !c.shown->ok) ++errors;
  }
  std::vector<double> ft(app.frame_ms.begin(), app.frame_ms.end());
  std::sort(ft.begin(), ft.end());
  const double med = ft.empty() ? 0 : ft[ft.size() / 2], p90 = ft.empty() ? 0 : ft[ft.size() * 9 / 10];
  static const char* cmaps[] = {"viridis", "magma", "cividis", "gray"};
  std::fprintf(f, "attnscope gui: frame %d, %zu columns, %d results, %d errors, text %zu characters, window %d+%d, "
                  "%zu cached models\n",
               app.frame, app.columns.size(), results, errors, app.tokens.ids.size(), app.tokens.start,
               app.tokens.len, app.worker->cached_models());
  if (!app.worker->model_error().empty())  // the checkpoint could not be loaded (the window shows it too)
    std::fprintf(f, "  model: error: %s\n", app.worker->model_error().c_str());
  std::fprintf(f, "  view: colormap %s, scale %d, exclude_first %d, link %d, ui_scale %.2f, diff %d (%d vs %d%s)\n",
               cmaps[int(app.view.colormap)], int(app.view.scale), int(app.view.exclude_first), int(app.view.link),
               double(app.view.ui_scale), int(app.view.show_diff), app.view.diff_a, app.view.diff_b,
               app.diff.problem.empty() && !app.diff.kl_rows.empty() ? (", mean KL " + std::to_string(app.diff.mean_kl)).c_str() : "");
  std::fprintf(f, "  frame time: median %.2f ms, p90 %.2f ms over the last %zu frames\n", med, p90, ft.size());
  std::fprintf(f, "  text: \"");
  for (char ch : app.text.text.substr(0, 200)) std::fputs(ch == '\n' ? "\\n" : std::string(1, ch).c_str(), f);
  std::fprintf(f, "%s\"\n", app.text.text.size() > 200 ? "..." : "");
  for (size_t i = 0; i < app.columns.size(); ++i) {
    const Column& c = app.columns[i];
    std::string p;
    const VariantInfo* info = find_variant(c.variant);
    if (info)
      for (const auto& s : info->params) p += (p.empty() ? "" : ",") + s.name + "=" + format_param(s, c.params.at(s.name));
    std::string layers;  // per-layer columns: every layer's variant; painted masks: the cells allowed
    for (const LayerSpec& l : c.per_layer ? c.layers : std::vector<LayerSpec>{})
      layers += (layers.empty() ? "" : ",") + l.variant;
    const CustomMask& mask = c.per_layer && c.layer < int(c.layers.size()) ? c.layers[size_t(c.layer)].mask : c.mask;
    std::fprintf(f, "  column %zu: %s(%s)%s%s%s layer %d head %d zoom %.2f%s: ", i, c.variant.c_str(), p.c_str(),
                 layers.empty() ? "" : " layers [", layers.c_str(), layers.empty() ? "" : "]", c.layer, c.head,
                 double(c.zoom), mask.empty() ? "" : (", painted " + std::to_string(mask.allowed_pairs()) + " cells").c_str());
    if (!c.shown) std::fprintf(f, "no result\n");
    else if (!c.shown->ok) std::fprintf(f, "error: %s\n", c.shown->error.c_str());
    else {
      std::vector<double> ms = c.timing.ms;
      std::sort(ms.begin(), ms.end());
      int64_t cache = 0;
      for (int64_t b : c.shown->maps.cache_formula_bytes) cache += b;
      std::fprintf(f, "%s (%s), %lldx%lld, loss %.3f (MHA %.3f), forward %.1f ms, timing %zu runs median %.1f ms, "
                      "computed %.1f%%, cache %lld B, %zu tile maps%s%s%s\n",
                   c.shown->maps.mode.c_str(), c.shown->model_dir.c_str(), (long long)c.shown->maps.queries,
                   (long long)c.shown->maps.keys, c.shown->maps.loss, c.shown->base_loss, c.shown->maps.forward_ms,
                   ms.size(), ms.empty() ? 0.0 : ms[ms.size() / 2], 100 * c.shown->computed_fraction, (long long)cache,
                   size_t(std::count_if(c.shown->pattern.begin(), c.shown->pattern.end(),
                                        [](const PatternSummary& s) { return !s.tiles.empty(); })),
                   c.shown->seq == c.seq ? "" : " (stale)", c.explain_open ? ", explanation open" : "",
                   c.shown->maps.experts > 0 ? (", routing " + std::to_string(c.shown->maps.experts) + " experts top-" +
                                                std::to_string(c.shown->maps.top_k)).c_str() : "");
    }
  }
  const GenState& g = app.gen;
  if (g.session) {
    const DecodeState& st = g.state;
    std::fprintf(f, "  generation: session %llu, %zu steps, cursor %d, stream %s (driver column %d), full %d%s%s\n",
                 (unsigned long long)g.session, st.steps(), generation_cursor(app), st.shared_stream ? "shared" : "own",
                 st.driver, int(st.full), st.error.empty() ? "" : ", error: ", st.error.c_str());
    for (size_t i = 0; i < app.columns.size(); ++i) {
      const DecodeTrack* t = generation_track(app, app.columns[i]);
      if (!t) continue;
      std::fprintf(f, "  gen column %zu: %s, %zu frames", i, t->variant.c_str(), t->frames.size());
      const int k = generation_cursor(app);
      if (!t->error.empty()) std::fprintf(f, ", error: %s", t->error.c_str());
      else if (k >= 0 && k < int(t->frames.size())) {
        const DecodeFrame& fr = *t->frames[size_t(k)];
        std::fprintf(f, ", step %lld token %lld at position %lld, layer 0 %s holds %zu of %lld tokens, cache %lld B",
                     (long long)fr.step, (long long)fr.token, (long long)fr.position, fr.layout[0].kind.c_str(),
                     fr.held[0].size(), (long long)fr.position + 1, (long long)fr.bytes());
      }
      std::fprintf(f, "\n");
    }
  }
  if (app.kv.open) std::fprintf(f, "  kv calculator: preset %d, %d tokens, batch %d, dtype %d\n", app.kv.preset,
                                app.kv.tokens, app.kv.batch, app.kv.dtype);
  std::fflush(f);
}

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
  std::printf("screenshot %s: %dx%d, %zu distinct colours%s\n", path.c_str(), w, h, colours.size(), ok ? "" : " (WRITE FAILED)");
  std::fflush(stdout);
  return ok != 0;
}

int column_arg(const App& app, std::istringstream& in) {
  int c = -1;
  in >> c;
  return c >= 0 && c < int(app.columns.size()) ? c : -1;
}

// Runs at most one step of the script per frame. Returns false when a screenshot must be taken this frame
// (filled into *shot).
void step_script(App& app, Script& s, std::string* shot, double max_seconds) {
  ImGuiIO& io = ImGui::GetIO();
  auto apply_mouse = [&] {
    if (!s.active) return;
    if (!s.mouse) {
      if (s.real_pointer_moved) return;  // a person (or xdotool) is using the real pointer
      io.MousePos = ImVec2(-FLT_MAX, -FLT_MAX);  // scripted runs: the idle pointer must not hover anything
      io.MouseDown[0] = false;
    } else {
      io.MousePos = s.pos;
      io.MouseDown[0] = s.down;
    }
  };
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - s.started).count();
  if (s.wait > 0) {
    --s.wait;
    apply_mouse();
    return;
  }
  if (s.key >= 0) {  // release the key pressed last frame
    io.KeysDown[s.key] = false;
    s.key = -1;
  }
  while (!s.cmds.empty()) {
    std::istringstream in(s.cmds.front());
    std::string op;
    in >> op;
    if (s.phase == 0 && app.log_events && op != "wait") {
      std::printf("t=%.3f s  script: %s\n", seconds_since_start(app), s.cmds.front().c_str());
      std::fflush(stdout);
    }
    auto next = [&] {
      s.cmds.pop_front();
      s.phase = 0;
    };
    if (op == "sleep") {  // wall-clock seconds, rendering meanwhile (real input, e.g. xdotool, goes on)
      if (s.phase == 0) {
        double sec = 1;
        in >> sec;
        s.sleep_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(sec * 1000));
        s.phase = 1;
      }
      if (std::chrono::steady_clock::now() < s.sleep_until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        break;
      }
      next();
      continue;
    }
    if (op == "wait") {
      int n = 1;
      in >> n;
      s.wait = std::max(0, n - 1);
      next();
      break;
    }
    if (op == "idle") {  // until the worker has nothing left and every column shows its latest result
      if (s.phase < 2) {  // let the frame loop submit what the previous commands changed
        ++s.phase;
        break;
      }
      const bool settled = !app.worker->busy() && columns_settled(app);
      if (settled || elapsed > max_seconds) {
        if (!settled) {
          std::fprintf(stderr, "attnscope gui: still computing after %.0f s\n", elapsed);
          ++s.failures;
        }
        next();
        continue;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(15));  // leave the cores to the worker
      break;
    }
    if (op == "move" || op == "click" || op == "drag") {
      std::string a;
      in >> a;
      ImVec2 p;
      if (!a.empty() && a[0] == '@') {
        if (!target_center(app, a.substr(1), &p)) {
          if (s.phase++ < 5) break;  // the widget may appear in a frame or two
          std::fprintf(stderr, "attnscope gui: script: no widget '%s'\n", a.c_str());
          ++s.failures;
          next();
          continue;
        }
      } else {
        p.x = std::strtof(a.c_str(), nullptr);
        in >> p.y;
      }
      s.mouse = true;
      if (op == "move") {
        s.pos = p;
        next();
        apply_mouse();
        break;
      }
      if (op == "click") {
        // frame 0: move there; 1: press; 2: release
        if (std::getenv("ATTNSCOPE_SCRIPT_DEBUG")) std::fprintf(stderr, "click %s phase %d at %.0f,%.0f\n", a.c_str(), s.phase, p.x, p.y);
        if (s.phase == 0 || s.phase > 5) s.pos = p, s.phase = 0;
        if (s.phase == 0) s.down = false;
        else if (s.phase == 1) s.down = true;
        else {
          s.down = false;
          next();
          apply_mouse();
          break;
        }
        ++s.phase;
        apply_mouse();
        break;
      }
      // drag: press at the widget, move by (dx, dy) in 8 frames, release
      float dx = 0, dy = 0;
      in >> dx >> dy;
      const int k = s.phase;
      if (k == 0) s.drag_from = p, s.pos = p, s.down = false;
      else if (k == 1) s.down = true;
      else if (k <= 9) s.pos = ImVec2(s.drag_from.x + dx * float(k - 1) / 8, s.drag_from.y + dy * float(k - 1) / 8);
      else {
        s.down = false;
        next();
        apply_mouse();
        break;
      }
      ++s.phase;
      apply_mouse();
      break;
    }
    if (op == "down" || op == "up") {
      s.mouse = true;
      s.down = op == "down";
      next();
      apply_mouse();
      break;
    }
    if (op == "type") {
      std::string rest;
      std::getline(in, rest);
      if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
      for (char ch : rest) io.AddInputCharacter(static_cast<unsigned char>(ch));
      next();
      apply_mouse();
      break;
    }
    if (op == "shot") {
      in >> *shot;
      next();
      apply_mouse();
      break;
    }
    if (op == "quit") {
      s.quit = true;
      next();
      break;
    }
    if (op == "print") {
      print_state(app, stdout);
      next();
      continue;
    }
    if (op == "expect_columns") {
      size_t n = 0;
      in >> n;
      if (app.columns.size() != n) {
        std::fprintf(stderr, "attnscope gui: script: expected %zu columns, have %zu\n", n, app.columns.size());
        ++s.failures;
      }
      next();
      continue;
    }
    if (op == "expect_results") {  // every column has a result or an error of its latest request
      if (!columns_settled(app)) {
        std::fprintf(stderr, "attnscope gui: script: columns not settled\n");
        ++s.failures;
      }
      next();
      continue;
    }
    if (const ScriptStep st = studio_script_command(app, s.cmds.front(), s.phase); st != ScriptStep::Unknown) {
      if (st == ScriptStep::Again) {  // waiting (an export being written, a sweep's points)
        ++s.phase;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        break;
      }
      if (st == ScriptStep::Failed) ++s.failures;
      next();
      break;
    }
    // semantic commands (state edits, as a user would make with the widgets)
    if (op == "add_column") {
      std::string v;
      in >> v;
      add_column(app, v);
    } else if (op == "variant" || op == "param" || op == "head" || op == "layer") {
      int c = column_arg(app, in);
      if (c < 0) {
        std::fprintf(stderr, "attnscope gui: script: bad column in '%s'\n", s.cmds.front().c_str());
        ++s.failures;
      } else if (op == "variant") {
        std::string v;
        in >> v;
        if (find_variant(v)) {
          app.columns[size_t(c)].variant = v;
          app.columns[size_t(c)].params = resolve_params(get_variant(v).params, v, {});
        } else {
          std::fprintf(stderr, "attnscope gui: script: unknown variant %s\n", v.c_str());
          ++s.failures;
        }
      } else if (op == "param") {
        std::string name;
        double v = 0;
        in >> name >> v;
        app.columns[size_t(c)].params[name] = v;
      } else if (op == "head") {
        int h = 0;
        in >> h;
        set_layer_head(app, c, app.columns[size_t(c)].layer, h);
      } else {
        int l = 0;
        in >> l;
        set_layer_head(app, c, l, app.columns[size_t(c)].head);
      }
    } else if (op == "explain" || op == "per_layer" || op == "mask_edit" || op == "layer_variant" ||
               op == "layer_param" || op == "mask") {
      const int c = column_arg(app, in);
      Column* col = c < 0 ? nullptr : &app.columns[size_t(c)];
      std::string what;
      int v = 0;
      if (!col) {
        what = "bad column";
      } else if (op == "explain" || op == "per_layer" || op == "mask_edit") {
        in >> v;
        if (op == "explain") {
          col->explain_open = v != 0;
          col->explain_scroll = v ? kScrollFrames : 0;
        } else if (op == "mask_edit") {
          col->mask_edit.open = v != 0;
          col->mask_edit.scroll = v ? kScrollFrames : 0;
        } else if (set_per_layer(app, *col, v != 0); col->per_layer != (v != 0)) what = "no model yet";
      } else if (op == "layer_variant" || op == "layer_param") {
        int l = -1;
        std::string name;
        in >> l >> name;
        if (!col->per_layer || l < 0 || l >= int(col->layers.size())) {
          what = "not a layer of a per-layer column";
        } else if (op == "layer_variant") {
          if (const VariantInfo* info = find_variant(name))
            col->layers[size_t(l)] = LayerSpec{name, resolve_params(info->params, name, {}), {}};
          else what = "unknown variant " + name;
        } else {
          double x = 0;
          in >> x;
          col->layers[size_t(l)].params[name] = x;
        }
      } else if (CustomMask* m = edited_mask(app, *col)) {
        std::string tool;
        in >> tool;
        std::vector<int64_t> a;
        for (int64_t x; in >> x;) a.push_back(x);
        in.clear();
        std::string erase;
        in >> erase;
        const bool value = erase != "erase";
        if (tool == "clear") clear(*m);
        else if (tool == "causal") *m = causal_mask(m->n);
        else if (tool == "clip") causal_clip(*m);
        else if (tool == "band" && a.size() == 2) paint_band(*m, a[0], a[1], value);
        else if (tool == "rect" && a.size() == 4) paint_rect(*m, a[0], a[1], a[2], a[3], value);
        else if (tool == "brush" && a.size() == 3) paint_brush(*m, a[0], a[1], a[2], value);
        else what = "unknown mask edit";
      } else {
        what = "the selected layer is not the custom variant";
      }
      if (!what.empty()) {
        std::fprintf(stderr, "attnscope gui: script: %s in '%s'\n", what.c_str(), s.cmds.front().c_str());
        ++s.failures;
      }
    } else if (op == "key") {  // held for one frame, like a key press
      std::string k;
      in >> k;
      const ImGuiKey_ key = k == "left" ? ImGuiKey_LeftArrow : k == "right" ? ImGuiKey_RightArrow
                            : k == "up" ? ImGuiKey_UpArrow : ImGuiKey_DownArrow;
      s.key = io.KeyMap[key];
      io.KeysDown[s.key] = true;
    } else if (op == "zoom") {  // zoom COL FACTOR: about the matrix's centre
      int c = column_arg(app, in);
      float z = 1;
      in >> z;
      if (c >= 0) {
        Column& col = app.columns[size_t(c)];
        col.zoom = std::max(1.f, z);
        if (col.shown && col.shown->ok) {
          col.x0 = float(col.shown->maps.keys) * 0.5f * (1 - 1 / col.zoom);
          col.y0 = float(col.shown->maps.queries) * 0.5f * (1 - 1 / col.zoom);
        }
      }
    } else if (op == "diff") {  // diff A B [signed]
      std::string sg;
      in >> app.view.diff_a >> app.view.diff_b >> sg;
      app.view.diff_signed = sg == "signed";
      app.view.show_diff = true;
    } else if (op == "exclude_first" || op == "link") {
      int v = 0;
      in >> v;
      (op == "link" ? app.view.link : app.view.exclude_first) = v != 0;
    } else if (op == "uiscale") {
      float v = 1;
      in >> v;
      app.view.ui_scale = std::clamp(v, 0.5f, 3.f);
      app.fonts_dirty = true;
    } else if (op == "view") {  // view COL weights|mask
      int c = column_arg(app, in);
      std::string v;
      in >> v;
      if (c >= 0) app.columns[size_t(c)].view = v == "mask" ? View::Mask : View::Weights;
    } else if (op == "scale") {  // linear|log|row
      std::string v;
      in >> v;
      app.view.scale = v == "log" ? Scale::Log : v == "row" ? Scale::RowNormalised : Scale::Linear;
    } else if (op == "colormap") {
      std::string v;
      in >> v;
      app.view.colormap = v == "magma" ? Colormap::Magma : v == "cividis" ? Colormap::Cividis
                          : v == "gray" || v == "grayscale" ? Colormap::Gray : Colormap::Viridis;
    } else if (op == "source") {  // typed|passage|generate
      std::string v;
      in >> v;
      app.text.source = v == "generate" ? TextSource::Generated : v == "passage" ? TextSource::Passage : TextSource::Typed;
      if (app.text.source == TextSource::Passage) new_passage(app);
    } else if (op == "generate_start") {  // [PROMPT] (\n for a newline)
      std::string rest;
      std::getline(in, rest);
      if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
      for (size_t i = 0; (i = rest.find("\\n", i)) != std::string::npos;) rest.replace(i, 2, "\n");
      if (!rest.empty()) app.gen.prompt = rest;
      start_generation(app);
    } else if (op == "generate_step") {
      int n = 1;
      in >> n;
      app.gen.playing = false;
      request_generation_steps(app, std::max(1, n));
    } else if (op == "generate_play") {
      int v = 1;
      in >> v;
      app.gen.playing = v != 0;
      if (!app.gen.playing) app.worker->stop_decode();
    } else if (op == "generate_stream") {
      std::string v;
      in >> v;
      app.gen.shared_stream = v != "own";
    } else if (op == "generate_options") {
      in >> app.gen.temperature >> app.gen.top_k >> app.gen.seed;
    } else if (op == "generate_close") {
      app.gen.open = false;
      app.gen.playing = false;
    } else if (op == "scrub") {
      int k = -1;
      in >> k;
      app.gen.cursor = k;
      app.gen.playing = false;
    } else if (op == "kv_calc") {  // PRESET TOKENS [BATCH [DTYPE]]
      std::string key, dtype = "fp16";
      int tokens = 4096, batch = 1;
      in >> key >> tokens >> batch >> dtype;
      app.kv.open = true;
      app.kv.tokens = tokens;
      app.kv.batch = batch;
      try {
        app.kv.dtype = int(parse_kv_dtype(dtype));
        if (!select_kv_preset(app, key)) {
          std::fprintf(stderr, "attnscope gui: script: no KV preset '%s'\n", key.c_str());
          ++s.failures;
        }
      } catch (const Error& e) {
        std::fprintf(stderr, "attnscope gui: script: %s\n", e.what());
        ++s.failures;
      }
    } else if (op == "text") {
      std::string rest;
      std::getline(in, rest);
      if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
      for (size_t i = 0; (i = rest.find("\\n", i)) != std::string::npos;) rest.replace(i, 2, "\n");
      app.text.text = rest;
      app.text.source = TextSource::Typed;
    } else {
      std::fprintf(stderr, "attnscope gui: script: unknown command '%s'\n", s.cmds.front().c_str());
      ++s.failures;
    }
    next();
    break;  // one state edit per frame, like a user
  }
  apply_mouse();
}

void glfw_error(int code, const char* msg) { std::fprintf(stderr, "attnscope gui: GLFW error %d: %s\n", code, msg); }

}  // namespace
}  // namespace gui

int run_gui(const GuiOptions& opts_in) {
  using namespace gui;
  GuiOptions opts = opts_in;
  glfwSetErrorCallback(glfw_error);
  if (!glfwInit()) {
    std::fprintf(stderr, "attnscope: cannot open a window (no display?). Run under a desktop session or "
                         "`xvfb-run -a attnscope gui --screenshot out.png`; every CLI subcommand works without one "
                         "(attnscope --help)\n");
    return 1;
  }
  glfwWindowHint(GLFW_CONTEXT_VERSION_MAJOR, 3);
  glfwWindowHint(GLFW_CONTEXT_VERSION_MINOR, 3);
  glfwWindowHint(GLFW_OPENGL_PROFILE, GLFW_OPENGL_CORE_PROFILE);
  glfwWindowHint(GLFW_OPENGL_FORWARD_COMPAT, GL_TRUE);
  const bool scripted = !opts.screenshot.empty() || opts.frames > 0 || !opts.script.empty();
  GLFWwindow* win = glfwCreateWindow(opts.width, opts.height, "attnscope \xE2\x80\x94 attention, live", nullptr, nullptr);
  if (!win) {
    std::fprintf(stderr, "attnscope: cannot create an OpenGL 3.3 core window\n");
    glfwTerminate();
    return 1;
  }
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

  int rc = 0;
  {
    App app;
    app.opts = &opts;
    app.log_events = scripted;
    load_settings(app, opts.columns.empty());
    if (opts.presentation) app.view.ui_scale = 1.5f;
    build_fonts(app, font_pixels(app));
    if (!app.program.init(&app.program_error)) std::fprintf(stderr, "attnscope gui: %s\n", app.program_error.c_str());
    app.worker = std::make_unique<Worker>();
    app.model_dir = opts.model.empty() ? default_model_dir() : opts.model;
    app.worker->load_model(app.model_dir);
    try {
      app.corpus_valid = split_corpus(read_text_file(default_corpus_path())).valid;
    } catch (const std::exception& e) {
      app.corpus_error = e.what();
    }
    try {
      if (!opts.columns.empty() || app.columns.empty()) {
        app.columns.clear();
        init_columns(app, opts.columns);
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "attnscope: %s\n", e.what());
      rc = 2;
    }
    if (!opts.text.empty()) {
      app.text.text = opts.text;
      app.text.source = TextSource::Typed;
    } else {
      new_passage(app);
    }
    if (std::string why; !opts.scene.empty() && !open_scene(app, opts.scene, &why)) {
      std::fprintf(stderr, "attnscope: %s\n", why.c_str());
      rc = 2;
    }

    Script script;
    script.active = scripted;
    if (!opts.script.empty()) {
      std::ifstream f(opts.script);
      if (f) {
        std::stringstream ss;
        ss << f.rdbuf();
        script.add(ss.str(), false);
      } else {
        script.add(opts.script);  // inline commands
      }
    }
    if (!opts.screenshot.empty()) {
      script.add("idle; wait " + std::to_string(std::max(1, opts.frames)) + "; idle; wait 2; shot " + opts.screenshot + "; quit");
    } else if (opts.frames > 0) {
      script.add("wait " + std::to_string(opts.frames) + "; quit");
    } else if (!opts.script.empty()) {
      script.add("quit");
    }

    bool defaults_applied = false;
    while (rc == 0 && !glfwWindowShouldClose(win) && !script.quit) {
      if (scripted) glfwPollEvents();
      else glfwWaitEventsTimeout(app.worker->busy() ? 0.03 : 0.25);

      // results and text from the worker
      if (!app.model) {
        app.model = app.worker->model();
        if (app.model && !defaults_applied) {
          defaults_applied = true;
          for (Column& c : app.columns) {  // snap divisor parameters to this model's heads; start from its own params
            if (c.variant == app.model->config().layers[0].variant) c.params = app.model->config().layers[0].params;
            const VariantInfo* info = find_variant(c.variant);
            if (info)
              for (const auto& s : info->params)
                if (s.divisor_of_heads && app.model->config().n_head % std::max(1, int(c.params[s.name])) != 0)
                  c.params[s.name] = 1;
          }
        }
      }
      if (app.text.source == TextSource::Generated && app.text.gen_job) {
        GenerateState g = app.worker->generate_state();
        if (g.job == app.text.gen_job) {
          std::string t = app.text.prompt + g.text;
          if (t != app.text.text) {
            app.text.text = t;
            if (g.running) app.text.window_start = 1 << 30;  // follow the newest characters
          }
        }
      }
      update_scenes(app);
      poll_export(app);
      update_tokens(app);
      submit_columns(app);
      poll_results(app);
      update_generation(app);

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
      {
        static double x0 = -1, y0 = -1;
        double x, y;
        glfwGetCursorPos(win, &x, &y);
        if (x0 < 0 && y0 < 0) x0 = x, y0 = y;
        else if (x != x0 || y != y0) script.real_pointer_moved = true;
      }
      step_script(app, script, &shot, opts.max_seconds);
      const auto frame_start = Clock::now();
      ImGui::NewFrame();
      draw_ui(app);
      ImGui::Render();
      int fw = 0, fh = 0;
      glfwGetFramebufferSize(win, &fw, &fh);
      glViewport(0, 0, fw, fh);
      glClearColor(0.085f, 0.09f, 0.11f, 1);
      glClear(GL_COLOR_BUFFER_BIT);
      ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
      if (!shot.empty()) {
        if (!save_screenshot(shot, fw, fh)) ++script.failures;
      }
      glfwSwapBuffers(win);
      app.frame_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - frame_start).count());
      if (app.frame_ms.size() > 240) app.frame_ms.pop_front();
      ++app.frame;
    }
    if (scripted) print_state(app, stdout);
    if (script.failures) rc = 3;
    save_settings(app);
    for (Column& c : app.columns) {  // GL objects before the context goes
      c.tiles.clear();
      c.mask_tile = Heatmap();
    }
    app.diff.map = Heatmap();
    app.program.destroy();
    app.worker.reset();
  }
  ImGui_ImplOpenGL3_Shutdown();
  ImGui_ImplGlfw_Shutdown();
  ImGui::DestroyContext();
  glfwDestroyWindow(win);
  glfwTerminate();
  return rc;
}

}  // namespace attnscope
