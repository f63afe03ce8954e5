#include "scene.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "error.h"
#include "registry.h"
#include "render/colormap.h"  // colormap names
#include "render/figure.h"    // scale and panel kind names
#include "safetensors.h"

namespace attnscope {

using nlohmann::json;
using nlohmann::ordered_json;

const char* const kDefaultSceneText = "First Citizen:\nBefore we proceed any further, hear me speak.";

namespace {

std::string value_text(const json& v) {
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

// Adds one parameter given as "name=value" text to `c`, or reports why it was skipped.
void add_param(SceneColumn& c, const VariantInfo& info, const std::string& kv, const std::string& where,
               std::vector<std::string>* skipped) {
  try {
    auto p = parse_param(info.params, c.variant, kv);
    resolve_params(info.params, c.variant, {p});  // range and integrality
    c.params[p.first] = p.second;
  } catch (const Error& e) {
    skipped->push_back(where + ": skipped parameter '" + kv + "': " + e.what());
  }
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= s.size()) {
    size_t next = s.find(sep, at);
    if (next == std::string::npos) next = s.size();
    out.push_back(s.substr(at, next - at));
    at = next + 1;
  }
  return out;
}

bool read_int(const json& v, int lo, int hi, int* out) {
  if (!v.is_number()) return false;
  const double d = v.get<double>();
  if (d != std::floor(d) || d < lo || d > hi) return false;
  *out = int(d);
  return true;
}

// One column object; false (with a message) when the column cannot be used at all.
bool read_column(const json& j, const std::string& where, SceneColumn* out, std::vector<std::string>* skipped) {
  SceneColumn c;
  if (j.is_string()) {  // the CLI's form, "gqa:groups=2"
    try {
      *out = parse_column_spec(j.get<std::string>());
      return true;
    } catch (const Error& e) {
      skipped->push_back(where + ": skipped: " + e.what());
      return false;
    }
  }
  if (!j.is_object()) {
    skipped->push_back(where + ": skipped: expected an object with \"variant\"");
    return false;
  }
  if (!j.contains("variant") || !j["variant"].is_string()) {
    skipped->push_back(where + ": skipped: no \"variant\" name");
    return false;
  }
  c.variant = j["variant"].get<std::string>();
  const VariantInfo* info = find_variant(c.variant);
  if (!info) {
    skipped->push_back(where + ": skipped: unknown variant '" + c.variant + "' (see `attnscope variants`)");
    return false;
  }
  for (const auto& [key, v] : j.items()) {
    if (key == "variant") continue;
    if (key == "params") {
      if (v.is_object()) {
        for (const auto& [name, pv] : v.items()) add_param(c, *info, name + "=" + value_text(pv), where, skipped);
      } else if (v.is_array()) {  // ["k=v", ...] as on the command line
        for (const json& kv : v) add_param(c, *info, value_text(kv), where, skipped);
      } else {
        skipped->push_back(where + ": skipped \"params\": expected an object");
      }
    } else if (key == "layer" || key == "head") {
      int& dst = key == "layer" ? c.layer : c.head;
      if (!read_int(v, -1, 4096, &dst))
        skipped->push_back(where + ": \"" + key + "\": " + v.dump() + " is not -1 (all) or an index: using 0");
    } else if (key == "mask") {
      try {
        if (c.variant != "custom") throw Error("only the custom variant takes a painted mask");
        c.mask = mask_from_rows(v.get<std::vector<std::string>>());
      } catch (const std::exception& e) {
        skipped->push_back(where + ": skipped \"mask\": " + e.what());
      }
    } else if (key == "layers") {
      std::vector<LayerSpec> layers;
      bool ok = v.is_array() && !v.empty();
      for (size_t l = 0; ok && l < v.size(); ++l) {
        SceneColumn lc;
        ok = read_column(v[l], where + " layer " + std::to_string(l), &lc, skipped);
        if (ok)
          layers.push_back(
              {lc.variant, resolve_params(get_variant(lc.variant).params, lc.variant, lc.params), lc.mask});
      }
      if (ok)
        c.layers = std::move(layers);
      else
        skipped->push_back(where + ": skipped \"layers\": expected an array of layer objects with \"variant\"");
    } else if (key == "convert") {
      if (v.is_boolean())
        c.convert = v.get<bool>();
      else
        skipped->push_back(where + ": \"convert\": " + v.dump() + " is not true or false: using false");
    } else if (key == "view") {
      if (!v.is_string() || !render::parse_panel_kind(v.get<std::string>(), &c.view))
        skipped->push_back(where + ": \"view\": " + v.dump() + " is not heatmap, mask or diff: using heatmap");
    } else {
      skipped->push_back(where + ": skipped unknown field \"" + key + "\"");
    }
  }
  *out = c;
  return true;
}

}  // namespace

SceneColumn parse_column_spec(const std::string& spec) {
  SceneColumn c;
  const size_t colon = spec.find(':');
  c.variant = spec.substr(0, colon);
  const VariantInfo& info = get_variant(c.variant);
  if (colon == std::string::npos) return c;
  for (const std::string& kv : split(spec.substr(colon + 1), ',')) {
    if (kv == "convert=1" || kv == "convert=true") {  // the base converted even where a trained checkpoint exists
      c.convert = true;
      continue;
    }
    auto p = parse_param(info.params, c.variant, kv);
    c.params[p.first] = p.second;
  }
  resolve_params(info.params, c.variant, c.params);
  return c;
}

std::string column_label(const SceneColumn& c) {
  const VariantInfo* info = find_variant(c.variant);
  std::string p;
  if (info)
    for (const ParamSpec& s : info->params) {
      auto it = c.params.find(s.name);
      if (it != c.params.end()) p += (p.empty() ? "" : ", ") + s.name + "=" + format_param(s, it->second);
    }
  const std::string label = p.empty() ? c.variant : c.variant + " (" + p + ")";
  return c.convert ? label + " [converted]" : label;
}

SceneLoad parse_scene(const std::string& text, const std::string& origin) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw Error("scene " + origin + " is not JSON: " + e.what());
  }
  if (!j.is_object()) throw Error("scene " + origin + ": expected a JSON object");
  SceneLoad r;
  Scene& s = r.scene;
  auto& skipped = r.skipped;
  if (!j.contains("version")) {
    skipped.push_back("no \"version\": read as version " + std::to_string(kSceneVersion));
  } else if (!read_int(j["version"], 0, 1000000, &s.version)) {
    skipped.push_back("\"version\": " + j["version"].dump() + " is not a version number: read as version " +
                      std::to_string(kSceneVersion));
  } else if (s.version > kSceneVersion) {
    skipped.push_back("written by a newer attnscope (scene version " + std::to_string(s.version) + ", this one reads " +
                      std::to_string(kSceneVersion) + "): fields it does not know are skipped");
  } else if (s.version < kSceneVersion) {
    skipped.push_back("scene version " + std::to_string(s.version) + " (older): read with version " +
                      std::to_string(kSceneVersion) + " defaults for missing fields");
  }
  s.version = kSceneVersion;
  bool have_columns = false;
  for (const auto& [key, v] : j.items()) {
    if (key == "version") continue;
    if (key == "format") {
      if (v != "attnscope-scene")
        skipped.push_back("\"format\": " + v.dump() + " is not \"attnscope-scene\": reading it anyway");
    } else if (key == "title" || key == "model" || key == "text") {
      if (!v.is_string()) {
        skipped.push_back("\"" + key + "\": expected a string, skipped");
        continue;
      }
      (key == "title" ? s.title : key == "model" ? s.model : s.text) = v.get<std::string>();
    } else if (key == "colormap") {
      auto c = v.is_string() ? render::parse_colormap(v.get<std::string>()) : std::nullopt;
      if (c)
        s.colormap = *c;
      else
        skipped.push_back("\"colormap\": " + v.dump() +
                          " is not viridis, magma, cividis, gray or diverging: using viridis");
    } else if (key == "scale") {
      if (!v.is_string() || !render::parse_scale(v.get<std::string>(), &s.scale))
        skipped.push_back("\"scale\": " + v.dump() + " is not linear, log or row: using linear");
    } else if (key == "zoom") {
      if (!v.is_number() || !std::isfinite(v.get<double>())) {
        skipped.push_back("\"zoom\": " + v.dump() + " is not a number: using 1");
      } else {
        s.zoom = v.get<double>();
        const double z = std::clamp(s.zoom, 0.25, 8.0);
        if (z != s.zoom) skipped.push_back("\"zoom\": " + v.dump() + " is outside 0.25..8: using " + json(z).dump());
        s.zoom = z;
      }
    } else if (key == "columns") {
      have_columns = true;
      if (!v.is_array()) {
        skipped.push_back("\"columns\": expected an array");
        continue;
      }
      for (size_t i = 0; i < v.size(); ++i) {
        SceneColumn c;
        if (read_column(v[i], "column " + std::to_string(i + 1), &c, &skipped)) s.columns.push_back(c);
      }
    } else {
      skipped.push_back("skipped unknown field \"" + key + "\"");
    }
  }
  if (s.text.empty()) {
    skipped.push_back("\"text\" is empty: using the default passage");
    s.text = kDefaultSceneText;
  }
  if (s.columns.empty())
    throw Error("scene " + origin + " has no column that can be shown: " +
                (have_columns && !skipped.empty()
                     ? skipped.back()
                     : std::string("it needs \"columns\": [{\"variant\": \"mha\"}, ...]")));
  return r;
}

SceneLoad load_scene(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot read scene '" + path + "': " + std::strerror(errno));
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (f.bad()) throw Error("error reading scene '" + path + "'");
  return parse_scene(text, "'" + path + "'");
}

namespace {

ordered_json params_json(const std::string& variant, const ParamValues& p) {
  const VariantInfo* info = find_variant(variant);
  ordered_json params = ordered_json::object();
  for (const auto& [name, v] : p) {
    const ParamSpec* spec = info ? info->find_param(name) : nullptr;
    if (spec && spec->type == ParamType::Choice)
      params[name] = format_param(*spec, v);
    else if (spec && spec->type == ParamType::Bool)
      params[name] = v != 0;
    else if (spec && spec->type == ParamType::Int)
      params[name] = int64_t(std::llround(v));
    else
      params[name] = v;
  }
  return params;
}

}  // namespace

std::string scene_json(const Scene& s) {
  ordered_json j = {{"format", "attnscope-scene"}, {"version", kSceneVersion}};
  if (!s.title.empty()) j["title"] = s.title;
  if (!s.model.empty()) j["model"] = s.model;
  j["text"] = s.text;
  j["colormap"] = render::colormap_name(s.colormap);
  j["scale"] = render::scale_name(s.scale);
  j["zoom"] = s.zoom;
  j["columns"] = ordered_json::array();
  for (const SceneColumn& c : s.columns) {
    ordered_json cj = {{"variant", c.variant}};
    const ordered_json params = params_json(c.variant, c.params);
    if (!params.empty()) cj["params"] = params;
    if (!c.mask.empty()) cj["mask"] = mask_rows(c.mask);
    if (c.convert) cj["convert"] = true;
    if (!c.layers.empty()) {
      cj["layers"] = ordered_json::array();
      for (const LayerSpec& l : c.layers) {
        ordered_json lj = {{"variant", l.variant}, {"params", params_json(l.variant, l.params)}};
        if (!l.mask.empty()) lj["mask"] = mask_rows(l.mask);
        cj["layers"].push_back(lj);
      }
    }
    cj["layer"] = c.layer;
    cj["head"] = c.head;
    cj["view"] = render::panel_kind_name(c.view);
    j["columns"].push_back(cj);
  }
  return j.dump(2) + "\n";
}

void save_scene(const std::string& path, const Scene& s) { write_file_atomic(path, scene_json(s)); }

void fit_scene_to_model(Scene& s, int64_t layers, int64_t heads, std::vector<std::string>* skipped) {
  std::vector<SceneColumn> kept;
  for (size_t i = 0; i < s.columns.size(); ++i) {
    SceneColumn c = s.columns[i];
    const std::string where = "column " + std::to_string(i + 1) + " (" + column_label(c) + ")";
    if (!c.layers.empty() && int64_t(c.layers.size()) != layers) {
      skipped->push_back(where + ": its " + std::to_string(c.layers.size()) +
                         " per-layer variants do not fit a model "
                         "of " +
                         std::to_string(layers) + " layers: " + c.variant + " on every layer");
      c.layers.clear();
    }
    if (c.layer >= layers) {
      skipped->push_back(where + ": skipped: layer " + std::to_string(c.layer) + ", the model has " +
                         std::to_string(layers) + " (0.." + std::to_string(layers - 1) + ")");
    } else if (c.head >= heads) {
      skipped->push_back(where + ": skipped: head " + std::to_string(c.head) + ", the model has " +
                         std::to_string(heads) + " (0.." + std::to_string(heads - 1) + ")");
    } else {
      kept.push_back(c);
    }
  }
  s.columns = kept;
}

}  // namespace attnscope
