// The Help menu: the keys and mouse gestures every view handles (one table, shown by the window and printed by the
// script command `help_window shortcuts`), and About: the version, the commit, and where attnscope reads its data
// and keeps what the user makes (settings, exports, saved scenes), each folder with a button that copies it.
// File > Open Recent lives here too: the scenes last opened or saved, newest first, kept in settings.json.
#include <imgui.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "cli.h"     // version_string
#include "engine.h"  // assets_dir
#include "state.h"
#include "studio.h"
#include "widgets.h"

namespace attnscope::gui {

namespace {

struct Shortcut {
  const char* keys;
  const char* action;
  const char* where;
};

// Every key and gesture the views handle (column_view.cpp, studio.cpp, row_attention.cpp, row_heads.cpp,
// text_panel.cpp, export.cpp, mask_editor.cpp). A view that handles a new key adds its line here.
const Shortcut kShortcuts[] = {
    {"Left / Right", "the previous / next head", "the active column (every column when linked); not while typing"},
    {"Up / Down", "the previous / next layer", "the active column (every column when linked); not while typing"},
    {"F11", "presentation mode on / off: full screen, large type", "anywhere"},
    {"Page Down / Page Up", "the next / previous scene of the scene's folder", "anywhere but a text field"},
    {"Mouse wheel", "zoom about the cell under the pointer", "a single-head heatmap"},
    {"Drag", "pan the zoomed heatmap", "a single-head heatmap"},
    {"Double-click", "back to the whole matrix", "a single-head heatmap"},
    {"Click a tile", "show that layer and head", "the layers x heads grid (head -1)"},
    {"Click a head", "knock it out, or back in", "the heads row"},
    {"Drag with a tool", "paint or erase allowed pairs", "the sparsity row of a custom-mask column"},
    {"Right-click", "export this heatmap, its computed pairs, or the whole comparison", "a column"},
    {"Click a character", "the window the columns read starts there", "the text, when it is longer than the context"},
    {"Ctrl+A / C / V / X / Z / Y", "select all, copy, paste, cut, undo, redo", "the text box"},
};

// Where attnscope reads from and writes to, as the About window lists it.
struct Place {
  const char* what;
  std::string path;
};

std::vector<Place> places() {
  const std::string cfg = config_dir(), data = data_dir(), pics = pictures_dir();
  auto or_none = [](const std::string& p) { return p.empty() ? std::string("(none: HOME is not set)") : p; };
  return {{"bundled data (read only)", assets_dir()},
          {"settings and window layout", or_none(cfg)},
          {"exports (by default)", or_none(pics)},
          {"saved scenes", or_none(data.empty() ? data : data + "/scenes")}};
}

void draw_shortcuts_window(App& app) {
  if (!app.help.shortcuts) return;
  const float fs = ImGui::GetFontSize();
  ImGui::SetNextWindowSize(ImVec2(fs * 46, fs * 22), ImGuiCond_FirstUseEver);
  if (!ImGui::Begin("Keyboard and mouse", &app.help.shortcuts)) return ImGui::End();
  if (ImGui::BeginTable("shortcuts", 3,
                        ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerV | ImGuiTableFlags_Resizable |
                            ImGuiTableFlags_SizingStretchProp)) {
    ImGui::TableSetupColumn("keys", ImGuiTableColumnFlags_WidthStretch, 1.0f);
    ImGui::TableSetupColumn("does", ImGuiTableColumnFlags_WidthStretch, 1.6f);
    ImGui::TableSetupColumn("where", ImGuiTableColumnFlags_WidthStretch, 1.6f);
    ImGui::TableHeadersRow();
    for (const Shortcut& s : kShortcuts) {
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(s.keys);
      ImGui::TableNextColumn();
      ImGui::TextWrapped("%s", s.action);
      ImGui::TableNextColumn();
      ImGui::TextWrapped("%s", s.where);
    }
    ImGui::EndTable();
  }
  ImGui::End();
}

void draw_about_window(App& app) {
  if (!app.help.about) return;
  const float fs = ImGui::GetFontSize();
  ImGui::SetNextWindowSize(ImVec2(fs * 44, fs * 17), ImGuiCond_FirstUseEver);
  if (!ImGui::Begin("About attnscope", &app.help.about)) return ImGui::End();
  ImGui::Text("attnscope %s", version_string());
  ImGui::TextWrapped(
      "Attention mechanisms of small character GPTs trained on Tiny Shakespeare, live: heatmaps per layer and "
      "head, the pairs each variant computes, its KV-cache and its time, side by side.");
  ImGui::Spacing();
  ImGui::TextUnformatted("model");
  ImGui::SameLine(fs * 12);
  ImGui::TextUnformatted(app.model_dir.c_str());
  int i = 0;
  for (const Place& p : places()) {
    ImGui::PushID(i++);
    ImGui::TextUnformatted(p.what);
    ImGui::SameLine(fs * 12);
    ImGui::TextUnformatted(p.path.c_str());
    ImGui::SameLine();
    if (ImGui::SmallButton("copy")) ImGui::SetClipboardText(p.path.c_str());
    tooltip("copy the folder's path to the clipboard");
    ImGui::PopID();
  }
  ImGui::Spacing();
  ImGui::TextDisabled("Run attnscope --help for the command line, man attnscope where it is installed.");
  ImGui::End();
}

}  // namespace

void draw_help_menu(App& app) {
  if (!ImGui::BeginMenu("Help")) return;
  ImGui::MenuItem("Keyboard and mouse", nullptr, &app.help.shortcuts);
  ImGui::MenuItem("About attnscope", nullptr, &app.help.about);
  ImGui::EndMenu();
}

void draw_help_windows(App& app) {
  draw_shortcuts_window(app);
  draw_about_window(app);
}

void remember_recent_scene(App& app, const std::string& path) {
  std::error_code ec;
  std::string p = std::filesystem::weakly_canonical(path, ec).string();
  if (ec || p.empty()) p = path;
  auto& r = app.scenes.recent;
  r.erase(std::remove(r.begin(), r.end(), p), r.end());
  r.insert(r.begin(), p);
  if (r.size() > kMaxRecentScenes) r.resize(kMaxRecentScenes);
}

void draw_open_recent_menu(App& app) {
  auto& r = app.scenes.recent;
  if (!ImGui::BeginMenu("Open Recent", !r.empty())) return;
  std::string open;
  for (size_t i = 0; i < r.size(); ++i) {
    std::error_code ec;
    const bool there = std::filesystem::is_regular_file(r[i], ec);
    const std::string label = std::filesystem::path(r[i]).filename().string() + (there ? "" : " (missing)");
    ImGui::PushID(int(i));
    if (ImGui::MenuItem(label.c_str(), nullptr, false, there)) open = r[i];
    ImGui::PopID();
    tooltip(r[i].c_str());
  }
  ImGui::Separator();
  if (ImGui::MenuItem("Clear the list")) r.clear();
  ImGui::EndMenu();
  if (open.empty()) return;
  std::string why;
  if (!open_scene(app, open, &why)) {
    app.scenes.messages = {why};
    app.scenes.messages_origin = open;
  }
}

// help_window shortcuts|about|close: open a Help window (close: both), printing what it shows
// open_recent N: the Nth scene of File > Open Recent (0: the newest); print_recent: the list
ScriptStep help_script_command(App& app, const std::string& command) {
  std::istringstream in(command);
  std::string op, arg;
  in >> op >> arg;
  auto fail = [&](const std::string& why) { return script_failed(command, why); };
  if (op == "theme") {
    if (arg != "light" && arg != "dark") return fail("light or dark");
    app.view.light_theme = arg == "light";
    app.fonts_dirty = true;  // the style is rebuilt with the fonts (fonts.cpp)
    return ScriptStep::Done;
  }
  if (op == "help_window") {
    if (arg == "close") {
      app.help = HelpState{};
      return ScriptStep::Done;
    }
    if (arg == "shortcuts") {
      app.help.shortcuts = true;
      for (const Shortcut& s : kShortcuts) std::printf("  shortcut: %s | %s | %s\n", s.keys, s.action, s.where);
    } else if (arg == "about") {
      app.help.about = true;
      std::printf("  about: attnscope %s\n", version_string());
      for (const Place& p : places()) std::printf("  about: %s: %s\n", p.what, p.path.c_str());
    } else {
      return fail("which: shortcuts, about or close");
    }
    std::fflush(stdout);
    return ScriptStep::Done;
  }
  if (op == "open_recent") {
    const auto& r = app.scenes.recent;
    char* end = nullptr;
    const long n = std::strtol(arg.c_str(), &end, 10);
    if (arg.empty() || *end || n < 0 || size_t(n) >= r.size())
      return fail("give an index below " + std::to_string(r.size()) + " (File > Open Recent)");
    std::string why;
    const std::string path = r[size_t(n)];
    if (!open_scene(app, path, &why)) return fail(why);
    std::printf("t=%.3f s  scene: opened %s (recent %ld)\n", seconds_since_start(app), path.c_str(), n);
    std::fflush(stdout);
    return ScriptStep::Done;
  }
  if (op == "print_recent") {
    std::printf("recent scenes: %zu\n", app.scenes.recent.size());
    for (const std::string& p : app.scenes.recent) std::printf("  recent: %s\n", p.c_str());
    std::fflush(stdout);
    return ScriptStep::Done;
  }
  return ScriptStep::Unknown;
}

}  // namespace attnscope::gui
