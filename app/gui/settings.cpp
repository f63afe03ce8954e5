// Settings that persist between runs: settings.json next to Dear ImGui's imgui.ini (window layout) in
// $XDG_CONFIG_HOME/attnscope or ~/.config/attnscope. Reading never fails: every field is checked on its own.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "registry.h"
#include "state.h"

namespace attnscope::gui {

using nlohmann::json;

std::string config_dir() {
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  if (xdg && *xdg) return std::string(xdg) + "/attnscope";
  const char* home = std::getenv("HOME");
  if (home && *home) return std::string(home) + "/.config/attnscope";
  return "";
}

std::string data_dir() {
  const char* xdg = std::getenv("XDG_DATA_HOME");
  if (xdg && *xdg) return std::string(xdg) + "/attnscope";
  const char* home = std::getenv("HOME");
  if (home && *home) return std::string(home) + "/.local/share/attnscope";
  return "";
}

// The desktop's pictures folder: $XDG_PICTURES_DIR, else the line xdg-user-dirs writes in user-dirs.dirs
// (localised names such as ~/Bilder live there), else ~/Pictures.
std::string pictures_dir() {
  const char* home_c = std::getenv("HOME");
  const std::string home = home_c ? home_c : "";
  auto expand = [&](std::string v) {
    if (v.rfind("$HOME", 0) == 0) v = home + v.substr(5);
    return v;
  };
  if (const char* e = std::getenv("XDG_PICTURES_DIR"); e && *e) return expand(e) + "/attnscope";
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  const std::string cfg = xdg && *xdg ? std::string(xdg) : home.empty() ? "" : home + "/.config";
  std::ifstream dirs(cfg + "/user-dirs.dirs");
  for (std::string line; !cfg.empty() && std::getline(dirs, line);) {
    const std::string key = "XDG_PICTURES_DIR=\"";
    if (line.rfind(key, 0) != 0 || line.size() < key.size() + 1 || line.back() != '"') continue;
    return expand(line.substr(key.size(), line.size() - key.size() - 1)) + "/attnscope";
  }
  return home.empty() ? "" : home + "/Pictures/attnscope";
}

bool make_user_dir(const std::string& dir, std::string* why) {
  std::error_code ec;
  if (dir.empty()) {
    *why = "neither HOME nor the XDG variables are set: there is no folder to write to";
    return false;
  }
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    *why = "cannot create the folder '" + dir + "': " + ec.message();
    return false;
  }
  return true;
}

namespace {

template <typename T>
void read(const json& j, const char* key, T& out) {
  auto it = j.find(key);
  if (it == j.end()) return;
  if constexpr (std::is_same_v<T, bool>) {
    if (it->is_boolean()) out = it->get<bool>();
  } else {
    if (it->is_number()) out = it->get<T>();
  }
}

template <typename E>
void read_enum(const json& j, const char* key, E& out, int count) {
  int v = int(out);
  read(j, key, v);
  if (v >= 0 && v < count) out = E(v);
}

}  // namespace

void load_settings(App& app, bool columns) {
  const std::string dir = config_dir();
  if (dir.empty()) return;
  std::ifstream f(dir + "/settings.json");
  if (!f) return;
  std::stringstream ss;
  ss << f.rdbuf();
  const json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    app.settings_message = dir + "/settings.json is not valid JSON: defaults used (it is rewritten at exit)";
    return;
  }
  ViewState& v = app.view;
  read_enum(j, "colormap", v.colormap, 4);
  read_enum(j, "scale", v.scale, 3);
  read(j, "mask_overlay", v.mask_overlay);
  read(j, "labels", v.labels);
  read(j, "log_decades", v.log_decades);
  v.log_decades = std::clamp(v.log_decades, 1.f, 8.f);
  read(j, "exclude_first", v.exclude_first);
  read(j, "light_theme", v.light_theme);
  read(j, "link", v.link);
  read(j, "ui_scale", v.ui_scale);
  v.ui_scale = std::clamp(v.ui_scale, 0.5f, 3.f);
  read(j, "show_diff", v.show_diff);
  read(j, "diff_signed", v.diff_signed);
  if (auto r = j.find("recent_scenes"); r != j.end() && r->is_array()) {
    app.scenes.recent.clear();
    for (const json& p : *r)
      if (p.is_string() && !p.get<std::string>().empty() && app.scenes.recent.size() < kMaxRecentScenes)
        app.scenes.recent.push_back(p.get<std::string>());
  }
  auto cols = j.find("columns");
  if (!columns || cols == j.end() || !cols->is_array() || cols->empty()) return;
  std::vector<Column> loaded;
  for (const json& c : *cols) {
    if (!c.is_object() || !c.contains("variant") || !c["variant"].is_string()) continue;
    const VariantInfo* info = find_variant(c["variant"].get<std::string>());
    if (!info || int(loaded.size()) >= kMaxColumns) continue;
    Column col;
    col.variant = info->name;
    ParamValues given;
    if (c.contains("params") && c["params"].is_object())
      for (const auto& s : info->params)
        if (c["params"].contains(s.name) && c["params"][s.name].is_number())
          given[s.name] = c["params"][s.name].get<double>();
    try {
      col.params = resolve_params(info->params, info->name, given);
    } catch (const std::exception&) {
      col.params = resolve_params(info->params, info->name, {});
    }
    read(c, "layer", col.layer);
    read(c, "head", col.head);
    col.layer = std::max(0, col.layer);
    col.head = std::max(-1, col.head);
    loaded.push_back(std::move(col));
  }
  if (loaded.empty()) return;
  app.columns.clear();
  for (Column& c : loaded) {
    c.id = app.next_column_id++;
    app.columns.push_back(std::move(c));
  }
}

void save_settings(const App& app) {
  const std::string dir = config_dir();
  if (dir.empty()) return;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  const ViewState& v = app.view;
  json j = {{"colormap", int(v.colormap)},    {"scale", int(v.scale)},
            {"mask_overlay", v.mask_overlay}, {"labels", v.labels},
            {"log_decades", v.log_decades},   {"exclude_first", v.exclude_first},
            {"light_theme", v.light_theme},   {"link", v.link},
            {"ui_scale", v.ui_scale},         {"show_diff", v.show_diff},
            {"diff_signed", v.diff_signed}};
  json cols = json::array();
  for (const Column& c : app.columns) {
    json p = json::object();
    for (const auto& [k, val] : c.params) p[k] = val;
    cols.push_back({{"variant", c.variant}, {"params", p}, {"layer", c.layer}, {"head", c.head}});
  }
  j["columns"] = cols;
  j["recent_scenes"] = app.scenes.recent;
  const std::string path = dir + "/settings.json", tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    if (!f) return;
    f << j.dump(2) << "\n";
    if (!f) return;
  }
  std::filesystem::rename(tmp, path, ec);
}

}  // namespace attnscope::gui
