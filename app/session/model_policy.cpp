#include "model_policy.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "config.h"
#include "error.h"
#include "registry.h"

namespace attnscope::session {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A checkpoint's config.json as far as the policy needs it. Read once per folder and kept while the file's
// modification time stays the same: the window asks every frame (a stat, no parse), and a checkpoint that
// scripts/train_all.sh copies into its folder while the program runs is seen at the next request.
struct CheckpointInfo {
  bool ok = false;
  ModelConfig model;
  int64_t steps = 0, batch = 0;
  bool has_weights = false;  // model.safetensors is there too
};

CheckpointInfo read_info(const std::string& dir) {
  static std::mutex mu;
  static std::map<std::string, std::pair<fs::file_time_type, CheckpointInfo>> known;
  std::error_code ec;
  const fs::file_time_type stamp = fs::last_write_time(dir + "/config.json", ec);
  if (ec) return {};  // no config.json: not a checkpoint
  std::lock_guard<std::mutex> l(mu);
  auto it = known.find(dir);
  if (it != known.end() && it->second.first == stamp) return it->second.second;
  CheckpointInfo c;
  try {
    const json j = json::parse(read_text_file(dir + "/config.json"));
    c.model = config_from_json(j.at("model"));
    const json t = j.value("training", json::object());
    c.steps = t.value("steps", int64_t(0));
    c.batch = t.value("batch", int64_t(0));
    c.has_weights = fs::exists(dir + "/model.safetensors", ec);
    c.ok = true;
  } catch (const std::exception&) {
    c.ok = false;  // unreadable: never chosen as a reference
  }
  known[dir] = {stamp, c};
  return c;
}

bool all_layers(const ModelConfig& c, const std::string& variant) {
  if (c.layers.empty()) return false;
  for (const LayerSpec& s : c.layers)
    if (s.variant != variant) return false;
  return true;
}

std::string thousands(int64_t n) {
  std::string s = std::to_string(n);
  for (int i = int(s.size()) - 3; i > 0; i -= 3) s.insert(size_t(i), ",");
  return s;
}

std::string steps_label(int64_t steps) { return steps > 0 ? thousands(steps) + " steps" : "untrained budget"; }

// Same folder, however it is spelled.
bool same_dir(const std::string& a, const std::string& b) {
  std::error_code ec;
  return a == b || fs::equivalent(a, b, ec);
}

// The folders under `root`, the bundled `mha` first, then by name. Listed again only when root's modification time
// changes (a folder added, removed or renamed): the worker asks per column and request, and listing, sorting and
// building the paths had cost ~1% of a cold recompute. (A checkpoint rewritten inside its folder is seen anyway:
// read_info checks each config.json's time.)
std::vector<std::string> model_folders(const std::string& root) {
  static std::mutex mu;
  static std::map<std::string, std::pair<fs::file_time_type, std::vector<std::string>>> known;
  std::error_code ec;
  const fs::file_time_type stamp = fs::last_write_time(root, ec);
  std::lock_guard<std::mutex> l(mu);
  auto it = known.find(root);
  if (!ec && it != known.end() && it->second.first == stamp) return it->second.second;
  std::vector<std::string> dirs;
  std::error_code ec2;
  for (const auto& d : fs::directory_iterator(root, ec2)) dirs.push_back(d.path().string());
  std::sort(dirs.begin(), dirs.end(), [](const std::string& a, const std::string& b) {
    const bool ma = fs::path(a).filename() == "mha", mb = fs::path(b).filename() == "mha";
    return ma != mb ? ma : a < b;
  });
  // Kept only when the time is a second old: a change within the file system's time granularity keeps the time.
  if (ec || fs::file_time_type::clock::now() - stamp < std::chrono::seconds(1))
    known.erase(root);
  else
    known[root] = {stamp, dirs};
  return dirs;
}

}  // namespace

std::string trained_checkpoint(const ModelConfig& base, const std::string& variant) {
  const std::string dir = assets_dir() + "/models/" + variant;
  const CheckpointInfo c = read_info(dir);
  // trained with `variant` on every layer, the base's size (layers, width, heads), vocabulary and at least its
  // context, no mixture of experts
  if (!c.ok || !c.has_weights || !all_layers(c.model, variant) || !c.model.same_size(base) ||
      c.model.vocab_size != base.vocab_size || c.model.context < base.context || c.model.moe_experts != 0)
    return "";
  return dir;
}

bool has_trained_checkpoint(const Model& base, const std::string& variant) {
  return !all_layers(base.config(), variant) && !trained_checkpoint(base.config(), variant).empty();
}

ModelSource column_source(const Model& base, const std::string& variant, const ParamValues& params, bool convert) {
  const std::string& base_dir = base.source_dir();
  get_variant(variant);  // an unknown name fails here
  if (all_layers(base.config(), variant)) return {base_dir, true, false};
  if (!convert) {
    const std::string dir = trained_checkpoint(base.config(), variant);
    if (!dir.empty() && same_weight_shapes(variant, read_info(dir).model.layers[0].params, params))
      return {dir, true, true};
  }
  return {base_dir, false, false};
}

ModelSource layered_source(const Model& base, const std::vector<LayerSpec>& layers) {
  const std::vector<LayerSpec>& own = base.config().layers;
  bool same = layers.size() == own.size();
  for (size_t l = 0; same && l < layers.size(); ++l) same = layers[l].variant == own[l].variant;
  // the base's own layer variants: its weights learned them (trained); anything else is converted from it
  return {base.source_dir(), same, false};
}

std::shared_ptr<Model> column_model(const Model& base, const std::string& variant, const ParamValues& params,
                                    bool convert) {
  const ModelSource src = column_source(base, variant, params, convert);
  std::shared_ptr<Model> loaded;
  if (src.shipped && !same_dir(src.dir, base.source_dir()))
    loaded = Model::load(src.dir, base.device_name().rfind("cuda", 0) == 0 ? "cuda" : "cpu");
  const Model& start = loaded ? *loaded : base;
  const LayerSpec& own = start.config().layers[0];
  if (all_layers(start.config(), variant) && params.empty()) return loaded ? loaded : std::make_shared<Model>(base);
  ParamValues given;
  if (own.variant == variant) given = own.params;  // start from the checkpoint's own values
  for (const auto& [k, v] : params) given[k] = v;
  return start.with_variant(variant, given);
}

std::string budget_label(const std::string& dir) {
  const CheckpointInfo info = read_info(dir);
  return info.ok && info.steps > 0 ? steps_label(info.steps) : "";
}

Comparison comparison_for(const ModelSource& src, const std::string& models_dir) {
  const CheckpointInfo own = read_info(src.dir);
  if (!src.trained)
    return {src.dir, "vs " + (own.ok ? own.model.variant_summary() : std::string("base")) + " before conversion", true};
  if (!own.ok) return {"", "no reference (unreadable checkpoint)", false};
  // Candidates: every MHA checkpoint of the same size, vocabulary and position scheme; the bundled `mha` first.
  const std::string root = models_dir.empty() ? assets_dir() + "/models" : models_dir;
  const std::vector<std::string> dirs = model_folders(root);
  std::string fallback;
  int64_t fallback_steps = 0;
  for (const std::string& d : dirs) {
    const CheckpointInfo c = read_info(d);
    if (!c.ok || !all_layers(c.model, "mha") || !c.model.same_size(own.model) ||
        c.model.vocab_size != own.model.vocab_size || c.model.position != own.model.position ||
        c.model.moe_experts != 0)
      continue;
    if (c.steps == own.steps && c.batch == own.batch) return {d, "vs MHA, " + steps_label(c.steps), true};
    if (fallback.empty()) fallback = d, fallback_steps = c.steps;
  }
  if (fallback.empty()) return {"", "no MHA checkpoint of this size and position scheme to compare with", false};
  return {fallback, "vs MHA, " + steps_label(fallback_steps) + " (this one: " + steps_label(own.steps) + ")", false};
}

}  // namespace attnscope::session
