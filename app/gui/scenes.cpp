// Scene files in the window (File > Open scene / Save scene, --scene) and presentation mode: fullscreen, large
// fonts, no chrome, Page Up / Page Down through the scenes of a folder.
#include <GLFW/glfw3.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "error.h"
#include "imgui.h"
#include "imgui_stdlib.h"
#include "registry.h"
#include "state.h"
#include "studio.h"
#include "widgets.h"

namespace attnscope::gui {

namespace {

render::Colormap to_render(Colormap c) {
  switch (c) {
    case Colormap::Magma: return render::Colormap::Magma;
    case Colormap::Cividis: return render::Colormap::Cividis;
    case Colormap::Gray: return render::Colormap::Gray;
    case Colormap::Viridis:
    case Colormap::Diverging: break;  // the window shows signed data as Diverging itself
  }
  return render::Colormap::Viridis;
}

std::string same_path(const std::string& p) {
  std::error_code ec;
  const std::filesystem::path c = std::filesystem::weakly_canonical(p, ec);
  return ec ? p : c.string();
}

// The scenes of a folder, sorted by file name.
std::vector<std::string> folder_scenes(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.is_regular_file(ec) && e.path().extension() == ".json") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// The text the columns read (the window over a longer text).
std::string window_text(const App& app) {
  const TokenView& t = app.tokens;
  if (t.len <= 0 || t.offsets.size() != t.ids.size() || size_t(t.start + t.len) > t.offsets.size())
    return app.text.text;
  const size_t from = t.offsets[size_t(t.start)];
  const size_t to =
      size_t(t.start + t.len) < t.offsets.size() ? t.offsets[size_t(t.start + t.len)] : app.text.text.size();
  return app.text.text.substr(from, to - from);
}

std::string columns_title(const App& app) {
  std::string t;
  for (const Column& c : app.columns) t += (t.empty() ? "" : " vs ") + column_label(scene_column(c));
  return t;
}

}  // namespace

SceneColumn scene_column(const Column& c) {
  SceneColumn s;
  s.variant = c.variant;
  if (const VariantInfo* info = find_variant(c.variant))
    for (const ParamSpec& p : info->params) {
      auto it = c.params.find(p.name);
      if (it != c.params.end() && it->second != p.def) s.params[p.name] = it->second;
    }
  s.layer = c.head < 0 ? -1 : c.layer;
  s.head = c.head;
  s.mask = c.mask;
  s.convert = c.convert;
  if (c.per_layer) s.layers = c.layers;
  s.view = c.view == View::Mask ? render::PanelKind::Mask : render::PanelKind::Weights;
  return s;
}

Scene scene_from_app(const App& app, std::vector<std::string>* notes) {
  Scene s;
  s.title = app.scenes.title;
  if (app.opts && !app.opts->model.empty()) s.model = app.opts->model;
  s.text = window_text(app);
  for (const Column& c : app.columns) s.columns.push_back(scene_column(c));
  if (app.view.show_diff && app.columns.size() >= 2) {
    const int a = std::clamp(app.view.diff_a, 0, int(app.columns.size()) - 1);
    const int b = std::clamp(app.view.diff_b, 0, int(app.columns.size()) - 1);
    if (a == 0 && b != 0) {  // a scene's difference is always the first column minus another
      SceneColumn d = scene_column(app.columns[size_t(b)]);
      d.layer = app.diff.layer;
      d.head = app.diff.head;
      d.view = render::PanelKind::Diff;
      s.columns.push_back(d);
    } else if (notes) {
      notes->push_back(
          "the difference window is not saved: a scene's difference is the first column minus another, "
          "and the window compares column " +
          std::to_string(a + 1) + " with column " + std::to_string(b + 1));
    }
  }
  s.colormap = to_render(app.view.colormap);
  s.scale = app.view.scale;
  s.zoom = app.scenes.zoom;
  return s;
}

void apply_scene(App& app, const Scene& scene, std::vector<std::string>* skipped) {
  const ModelConfig& cfg = app.model->config();
  Scene s = scene;
  fit_scene_to_model(s, cfg.n_layer, cfg.n_head, skipped);
  std::vector<Column> cols;
  bool diff = false;
  for (size_t i = 0; i < s.columns.size(); ++i) {
    const SceneColumn& sc = s.columns[i];
    const std::string where = "column " + std::to_string(i + 1) + " (" + column_label(sc) + "): ";
    if (sc.view == render::PanelKind::Diff) {
      if (diff) {
        skipped->push_back(where + "the window shows one difference: this one is left out");
        continue;
      }
      diff = true;
      app.view.show_diff = true;
      app.view.diff_a = 0;
      app.diff.layer = std::max(0, sc.layer);
      app.diff.head = std::max(0, sc.head);
      app.view.diff_signed = s.colormap == render::Colormap::Diverging;
      auto same = std::find_if(cols.begin(), cols.end(), [&](const Column& c) {
        return c.variant == sc.variant && column_label(scene_column(c)) == column_label(sc);
      });
      if (same != cols.end() && same != cols.begin()) {
        app.view.diff_b = int(same - cols.begin());
        continue;
      }
    }
    if (int(cols.size()) >= kMaxColumns) {
      skipped->push_back(where + "the window shows at most " + std::to_string(kMaxColumns) + " columns");
      continue;
    }
    const VariantInfo* info = find_variant(sc.variant);
    if (!info) {
      skipped->push_back(where + "unknown variant");
      continue;
    }
    Column c;
    ParamValues given;
    if (cfg.layers[0].variant == sc.variant) given = cfg.layers[0].params;  // as `attnscope render`
    for (const auto& [k, v] : sc.params) given[k] = v;
    try {
      c.params = resolve_params(info->params, sc.variant, given);
    } catch (const Error& e) {
      skipped->push_back(where + e.what());
      continue;
    }
    c.variant = sc.variant;
    c.mask = sc.mask;
    c.convert = sc.convert;
    try {
      for (const LayerSpec& l : sc.layers)
        c.layers.push_back({l.variant, resolve_params(get_variant(l.variant).params, l.variant, l.params), l.mask});
      c.per_layer = !c.layers.empty();
    } catch (const Error& e) {
      skipped->push_back(where + "per-layer variants: " + e.what() + ": " + sc.variant + " on every layer");
      c.layers.clear();
    }
    if (sc.layer < 0 || sc.head < 0) {
      c.layer = std::max(0, sc.layer);
      c.head = -1;
      if (sc.layer >= 0 || sc.head >= 0) skipped->push_back(where + "shown as the whole layer \xC3\x97 head grid");
    } else {
      c.layer = sc.layer;
      c.head = sc.head;
    }
    c.view = sc.view == render::PanelKind::Mask ? View::Mask : View::Weights;
    if (sc.view == render::PanelKind::Diff) app.view.diff_b = int(cols.size());
    cols.push_back(std::move(c));
  }
  if (cols.empty()) {
    skipped->push_back("no column of the scene can be shown: the window keeps its columns");
    return;
  }
  if (!diff) app.view.show_diff = false;
  for (const Column& c : app.columns) app.worker->forget(c.id);
  app.columns = std::move(cols);
  for (Column& c : app.columns) c.id = app.next_column_id++;
  app.active_column = 0;
  app.view.link = std::all_of(app.columns.begin(), app.columns.end(), [&](const Column& c) {
    return c.layer == app.columns[0].layer && c.head == app.columns[0].head;
  });
  app.text.text = s.text;
  app.text.source = TextSource::Typed;
  app.text.window_start = 0;
  app.text.window_len = 0;
  if (s.colormap == render::Colormap::Diverging)
    skipped->push_back("colormap diverging: the window's heatmaps keep " +
                       std::string(render::colormap_name(to_render(app.view.colormap))) +
                       " (differences are shown signed)");
  else
    app.view.colormap = s.colormap == render::Colormap::Magma     ? Colormap::Magma
                        : s.colormap == render::Colormap::Cividis ? Colormap::Cividis
                        : s.colormap == render::Colormap::Gray    ? Colormap::Gray
                                                                  : Colormap::Viridis;
  app.view.scale = s.scale;
  app.scenes.zoom = s.zoom;
  app.scenes.title = s.title;
  if (!s.model.empty() && same_path(s.model) != same_path(app.model_dir))
    skipped->push_back("the scene names the model '" + s.model + "'; the window keeps '" + app.model_dir +
                       "' (start with --model to use the scene's)");
}

bool open_scene(App& app, const std::string& path, std::string* why, bool remember) {
  SceneLoad sl;
  try {
    sl = load_scene(path);
  } catch (const Error& e) {
    *why = e.what();
    return false;
  }
  SceneUi& u = app.scenes;
  u.path = path;
  u.title = sl.scene.title;
  u.messages = std::move(sl.skipped);
  u.messages_origin = path;
  if (app.model) {
    apply_scene(app, sl.scene, &u.messages);
  } else {
    u.pending = sl.scene;
    u.has_pending = true;
  }
  if (remember) remember_recent_scene(app, path);
  app.log.push_back("scene: opened " + path);
  return true;
}

bool save_scene_file(App& app, const std::string& path, std::string* why) {
  std::vector<std::string> notes;
  Scene s = scene_from_app(app, &notes);
  if (s.columns.empty()) {
    *why = "there are no columns to save";
    return false;
  }
  // The user's scenes folder is made on demand; any other folder must exist (a typo is not silently created).
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir == std::filesystem::path(user_scene_folder()) && !make_user_dir(dir.string(), why)) return false;
  if (!dir.empty() && access(dir.c_str(), W_OK) != 0) {
    *why = "cannot save '" + path + "': the folder '" + dir.string() + "' is not writable";
    return false;
  }
  try {
    save_scene(path, s);
  } catch (const Error& e) {
    *why = e.what();
    return false;
  }
  app.scenes.path = path;
  app.scenes.messages = std::move(notes);
  app.scenes.messages_origin = path;
  remember_recent_scene(app, path);
  app.log.push_back("scene: saved " + path);
  return true;
}

void update_scenes(App& app) {
  SceneUi& u = app.scenes;
  if (u.has_pending && app.model) {
    u.has_pending = false;
    apply_scene(app, u.pending, &u.messages);
  }
}

std::string scene_folder(const App& app) {
  if (!app.scenes.path.empty()) {
    const std::filesystem::path dir = std::filesystem::path(app.scenes.path).parent_path();
    return dir.empty() ? "." : dir.string();
  }
  return assets_dir() + "/scenes";
}

std::string user_scene_folder() {
  const std::string d = data_dir();
  return d.empty() ? "." : d + "/scenes";
}

// Where Save proposes to write: the open scene itself unless it is one of the bundled (read-only, installed)
// scenes, whose copy then goes to the user's scenes folder under the same name.
std::string scene_save_path(const App& app) {
  if (app.scenes.path.empty()) return user_scene_folder() + "/scene.json";
  std::error_code ec;
  const std::filesystem::path open = std::filesystem::weakly_canonical(app.scenes.path, ec);
  const std::filesystem::path bundled = std::filesystem::weakly_canonical(assets_dir(), ec);
  const std::string rel = open.lexically_relative(bundled).string();
  if (!rel.empty() && rel.rfind("..", 0) != 0) {
    return user_scene_folder() + "/" + open.filename().string();
  }
  return app.scenes.path;
}

bool step_scene(App& app, int delta) {
  const std::vector<std::string> all = folder_scenes(scene_folder(app));
  if (all.empty()) return false;
  const std::string here = same_path(app.scenes.path);
  int at = -1;
  for (size_t i = 0; i < all.size(); ++i)
    if (!app.scenes.path.empty() && same_path(all[i]) == here) at = int(i);
  const int n = int(all.size());
  const int next = at < 0 ? (delta > 0 ? 0 : n - 1) : ((at + delta) % n + n) % n;
  std::string why;
  if (!open_scene(app, all[size_t(next)], &why, false)) {
    app.scenes.messages = {why};
    app.scenes.messages_origin = all[size_t(next)];
    return false;
  }
  return true;
}

float font_pixels(const App& app) {
  return 16.f * (app.scenes.present ? std::max(app.view.ui_scale, 1.75f) : app.view.ui_scale);
}

void set_presentation(App& app, bool on) {
  if (app.scenes.present == on) return;
  app.scenes.present = on;
  app.fonts_dirty = true;  // rebuilt at the presentation size: crisp, not scaled
}

void apply_presentation(App& app) {
  SceneUi& u = app.scenes;
  if (u.present == u.fullscreen) return;
  GLFWwindow* win = glfwGetCurrentContext();
  if (!win) return;
  if (u.present) {
    GLFWmonitor* mon = glfwGetPrimaryMonitor();
    const GLFWvidmode* mode = mon ? glfwGetVideoMode(mon) : nullptr;
    if (!mode) return;
    glfwGetWindowPos(win, &u.windowed[0], &u.windowed[1]);
    glfwGetWindowSize(win, &u.windowed[2], &u.windowed[3]);
    glfwSetWindowMonitor(win, mon, 0, 0, mode->width, mode->height, mode->refreshRate);
  } else {
    glfwSetWindowMonitor(win, nullptr, u.windowed[0], u.windowed[1], u.windowed[2], u.windowed[3], 0);
  }
  u.fullscreen = u.present;
}

void draw_presentation_title(App& app) {
  const std::string title = app.scenes.title.empty() ? columns_title(app) : app.scenes.title;
  ImGui::PushFont(app.fonts.title);
  ImGui::PushTextWrapPos(0);
  ImGui::TextUnformatted(title.c_str());
  ImGui::PopTextWrapPos();
  ImGui::PopFont();
  const std::vector<std::string> all = folder_scenes(scene_folder(app));
  int at = 0;
  for (size_t i = 0; i < all.size(); ++i)
    if (!app.scenes.path.empty() && same_path(all[i]) == same_path(app.scenes.path)) at = int(i) + 1;
  std::string hint = at > 0 ? "scene " + std::to_string(at) + " of " + std::to_string(all.size()) + "  \xC2\xB7  " : "";
  hint += "Page Up / Page Down: scenes of " + scene_folder(app) + "  \xC2\xB7  F11: leave presentation";
  ImGui::PushFont(app.fonts.small);
  ImGui::TextColored(kDim, "%s", hint.c_str());
  ImGui::PopFont();
  ImGui::Spacing();
}

void draw_presentation_header(const Column& c) {
  ImGui::TextColored(kAccent, "%s", column_label(scene_column(c)).c_str());
  if (c.shown && c.shown->ok) {
    ImGui::SameLine();
    ImGui::TextColored(kDim, "%s",
                       c.head < 0
                           ? "every layer \xC3\x97 head"
                           : ("layer " + std::to_string(c.layer) + " \xC2\xB7 head " + std::to_string(c.head)).c_str());
  }
}

void draw_scene_ui(App& app) {
  SceneUi& u = app.scenes;
  const float fs = ImGui::GetFontSize();
  auto path_dialog = [&](const char* name, bool* flag, bool open) {
    if (*flag) {
      ImGui::OpenPopup(name);
      *flag = false;
      u.dialog_error.clear();
    }
    ImGui::SetNextWindowSize(ImVec2(fs * 36, 0), ImGuiCond_Appearing);
    if (!ImGui::BeginPopupModal(name, nullptr, ImGuiWindowFlags_NoSavedSettings)) return;
    if (open) {  // the folder's scenes, one click to pick
      ImGui::TextColored(kDim, "%s", scene_folder(app).c_str());
      ImGui::BeginChild("scenes", ImVec2(0, fs * 8), true);
      for (const std::string& p : folder_scenes(scene_folder(app))) {
        const std::string stem = std::filesystem::path(p).filename().string();
        if (ImGui::Selectable(stem.c_str(), u.dialog_path == p)) u.dialog_path = p;
      }
      ImGui::EndChild();
    }
    ImGui::SetNextItemWidth(-FLT_MIN);
    const bool enter = ImGui::InputText("##scene_path", &u.dialog_path, ImGuiInputTextFlags_EnterReturnsTrue);
    if (!u.dialog_error.empty()) {
      ImGui::PushTextWrapPos(0);
      ImGui::TextColored(kRed, "%s", u.dialog_error.c_str());
      ImGui::PopTextWrapPos();
    }
    if (ImGui::Button(open ? "Open" : "Save", ImVec2(fs * 6, 0)) || enter) {
      std::string why;
      if (open ? open_scene(app, u.dialog_path, &why) : save_scene_file(app, u.dialog_path, &why))
        ImGui::CloseCurrentPopup();
      else
        u.dialog_error = why;
    }
    ImGui::SameLine();
    if (ImGui::Button("Cancel", ImVec2(fs * 6, 0))) ImGui::CloseCurrentPopup();
    ImGui::EndPopup();
  };
  path_dialog("Open scene", &u.open_dialog, true);
  path_dialog("Save scene", &u.save_dialog, false);

  if (u.messages.empty()) return;
  const ImGuiViewport* vp = ImGui::GetMainViewport();
  ImGui::SetNextWindowPos(ImVec2(vp->WorkPos.x + vp->WorkSize.x - fs, vp->WorkPos.y + fs * 4), ImGuiCond_Appearing,
                          ImVec2(1, 0));
  ImGui::SetNextWindowSize(ImVec2(fs * 30, 0), ImGuiCond_Appearing);
  bool open = true;
  if (ImGui::Begin("Scene messages", &open, ImGuiWindowFlags_NoSavedSettings | ImGuiWindowFlags_AlwaysAutoResize)) {
    ImGui::TextColored(kDim, "%s", std::filesystem::path(u.messages_origin).filename().string().c_str());
    ImGui::PushTextWrapPos(fs * 30);
    for (const std::string& m : u.messages) ImGui::BulletText("%s", m.c_str());
    ImGui::PopTextWrapPos();
    if (ImGui::Button("Dismiss")) open = false;
    mark_target(app, "scene_dismiss");
  }
  ImGui::End();
  if (!open) u.messages.clear();
}

}  // namespace attnscope::gui
