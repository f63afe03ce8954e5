#include "config.h"

#include <nlohmann/json.hpp>

#include "error.h"
#include "registry.h"

namespace attnscope {

using nlohmann::json;

PosKind parse_pos_kind(const std::string& s) {
  if (s == "rope") return PosKind::Rope;
  if (s == "learned") return PosKind::Learned;
  if (s == "alibi") return PosKind::Alibi;
  if (s == "none") return PosKind::None;
  if (s == "xpos") return PosKind::XPos;
  throw Error("position scheme must be rope, learned, alibi, none or xpos, not '" + s + "'");
}

const char* pos_kind_name(PosKind p) {
  switch (p) {
    case PosKind::Rope: return "rope";
    case PosKind::Learned: return "learned";
    case PosKind::Alibi: return "alibi";
    case PosKind::None: return "none";
    case PosKind::XPos: return "xpos";
  }
  return "?";
}

int64_t ModelConfig::rope_dims() const {
  int64_t r = static_cast<int64_t>(rope_fraction * static_cast<double>(head_dim()));
  return r - (r % 2);
}

void ModelConfig::validate() const {
  auto need = [](bool ok, const std::string& msg) {
    if (!ok) throw Error("model config: " + msg);
  };
  need(vocab_size >= 1 && vocab_size <= 256, "vocab_size must be 1..256, got " + std::to_string(vocab_size));
  need(n_layer >= 1 && n_layer <= 64, "n_layer must be 1..64, got " + std::to_string(n_layer));
  need(n_head >= 1 && n_head <= 64, "n_head must be 1..64, got " + std::to_string(n_head));
  need(d_model >= 2 && d_model <= 4096 && d_model % n_head == 0,
       "d_model (" + std::to_string(d_model) + ") must be divisible by n_head (" + std::to_string(n_head) + ")");
  need(context >= 2 && context <= 65536, "context must be 2..65536, got " + std::to_string(context));
  need(mlp_ratio >= 1 && mlp_ratio <= 16, "mlp_ratio must be 1..16");
  need(rope_theta >= 1.0, "rope_theta must be >= 1");
  need(rope_fraction > 0.0 && rope_fraction <= 1.0, "rope_fraction must be in (0, 1]");
  need(xpos_scale_base > 0.0, "xpos_scale_base must be > 0");
  need(norm_eps > 0.0, "norm_eps must be > 0");
  need(moe_experts == 0 || (moe_experts >= 2 && moe_experts <= 64),
       "moe_experts must be 0 (dense MLP) or 2..64, got " + std::to_string(moe_experts));
  need(moe_experts == 0 || (moe_k >= 1 && moe_k <= moe_experts),
       "moe_k must be 1..moe_experts (" + std::to_string(moe_experts) + "), got " + std::to_string(moe_k));
  need(moe_experts == 0 || (mlp_ratio * d_model) % moe_experts == 0,
       "the MLP width mlp_ratio * d_model (" + std::to_string(mlp_ratio * d_model) + ") must divide into " +
           std::to_string(moe_experts) + " experts");
  need(static_cast<int64_t>(layers.size()) == n_layer,
       "layers lists " + std::to_string(layers.size()) + " entries for n_layer = " + std::to_string(n_layer));
  for (size_t l = 0; l < layers.size(); ++l) {
    get_variant(layers[l].variant);
    need(layers[l].mask.empty() || layers[l].variant == "custom",
         "layers[" + std::to_string(l) + "]: only the custom variant takes a painted mask");
    need(static_cast<int64_t>(layers[l].mask.cells.size()) == layers[l].mask.n * layers[l].mask.n,
         "layers[" + std::to_string(l) + "]: the mask's cells do not fill its n x n square");
  }
}

std::vector<LayerSpec> parse_layer_variants(const std::string& spec, int64_t n_layer) {
  std::vector<std::pair<std::string, ParamValues>> entries;  // variant, given parameters
  size_t at = 0;
  while (at <= spec.size()) {
    size_t comma = spec.find(',', at);
    if (comma == std::string::npos) comma = spec.size();
    std::string item = spec.substr(at, comma - at);
    at = comma + 1;
    if (item.empty()) throw Error("--layer-variants: empty entry in '" + spec + "'");
    const size_t colon = item.find(':');
    std::string kv = item;
    if (colon != std::string::npos || item.find('=') == std::string::npos) {  // a new layer
      entries.push_back({item.substr(0, colon), {}});
      get_variant(entries.back().first);
      kv = colon == std::string::npos ? "" : item.substr(colon + 1);
    } else if (entries.empty()) {
      throw Error("--layer-variants: '" + item + "' comes before any variant");
    }
    if (!kv.empty()) {
      auto& e = entries.back();
      auto p = parse_param(get_variant(e.first).params, e.first, kv);
      e.second[p.first] = p.second;
    }
  }
  if (static_cast<int64_t>(entries.size()) != n_layer)
    throw Error("--layer-variants lists " + std::to_string(entries.size()) + " layers, but the model has " +
                std::to_string(n_layer) + " (one entry per layer)");
  std::vector<LayerSpec> out;
  for (const auto& [v, given] : entries) out.push_back({v, resolve_params(get_variant(v).params, v, given), {}});
  return out;
}

void ModelConfig::set_all_layers(const std::string& variant, const ParamValues& params) {
  const VariantInfo& v = get_variant(variant);
  ParamValues p = resolve_params(v.params, variant, params);
  layers.assign(static_cast<size_t>(n_layer), LayerSpec{variant, p, {}});
}

std::string ModelConfig::variant_summary() const {
  if (layers.empty()) return "none";
  for (const auto& l : layers)
    if (l.variant != layers[0].variant) return "mixed";
  return layers[0].variant;
}

json params_to_json(const std::string& variant, const ParamValues& p) {
  const VariantInfo& v = get_variant(variant);
  json j = json::object();
  for (const auto& spec : v.params) {
    auto it = p.find(spec.name);
    double x = it == p.end() ? spec.def : it->second;
    if (spec.type == ParamType::Choice)
      j[spec.name] = format_param(spec, x);
    else if (spec.type == ParamType::Bool)
      j[spec.name] = x != 0;
    else if (spec.type == ParamType::Int)
      j[spec.name] = static_cast<int64_t>(x);
    else
      j[spec.name] = x;
  }
  return j;
}

ParamValues params_from_json(const std::string& variant, const json& j) {
  const VariantInfo& v = get_variant(variant);
  if (!j.is_object()) throw Error("params of variant '" + variant + "' must be a JSON object");
  ParamValues given;
  for (auto it = j.begin(); it != j.end(); ++it) {
    std::string text;
    if (it->is_string())
      text = it->get<std::string>();
    else if (it->is_boolean())
      text = it->get<bool>() ? "true" : "false";
    else if (it->is_number())
      text = it->dump();
    else
      throw Error("parameter '" + it.key() + "' of '" + variant + "' must be a number, bool or string");
    given.insert(parse_param(v.params, variant, it.key() + "=" + text));
  }
  return resolve_params(v.params, variant, given);
}

json config_to_json(const ModelConfig& c) {
  json layers = json::array();
  for (const auto& l : c.layers) {
    json e = {{"variant", l.variant}, {"params", params_to_json(l.variant, l.params)}};
    if (!l.mask.empty()) e["mask"] = {{"n", l.mask.n}, {"rows", mask_rows(l.mask)}};
    layers.push_back(e);
  }
  json j = {{"vocab_size", c.vocab_size},
            {"n_layer", c.n_layer},
            {"d_model", c.d_model},
            {"n_head", c.n_head},
            {"context", c.context},
            {"mlp_ratio", c.mlp_ratio},
            {"position", pos_kind_name(c.position)},
            {"rope_theta", c.rope_theta},
            {"rope_fraction", c.rope_fraction},
            {"rope_pairing", "halves: dims (i, i + r/2) rotate together (GPT-NeoX / LLaMA)"},
            {"xpos_scale_base", c.xpos_scale_base},
            {"norm", "rmsnorm"},
            {"norm_eps", c.norm_eps},
            {"mlp", "gelu"},
            {"tied_output_head", true},
            {"layers", layers}};
  if (c.moe_experts > 0) {
    j["mlp"] = "moe-gelu";
    j["moe_experts"] = c.moe_experts;
    j["moe_k"] = c.moe_k;
    j["moe_expert_hidden"] = c.expert_hidden();
    j["moe_router"] =
        "softmax over experts; top-k gates are the raw probabilities (not renormalised); no capacity limit";
  }
  return j;
}

template <class T>
static T field(const json& j, const char* name) {
  if (!j.contains(name)) throw Error(std::string("config.json: missing field 'model.") + name + "'");
  try {
    return j.at(name).get<T>();
  } catch (const json::exception&) {
    throw Error(std::string("config.json: field 'model.") + name + "' has the wrong type");
  }
}

// A whole-number field: a JSON integer (nlohmann's get<int64_t> of a float like 4e44 would be undefined behaviour;
// found by tests/fuzz/fuzz_config).
static int64_t int_field(const json& j, const char* name) {
  if (!j.contains(name)) throw Error(std::string("config.json: missing field 'model.") + name + "'");
  const json& v = j.at(name);
  if (!v.is_number_integer())
    throw Error(std::string("config.json: field 'model.") + name + "' has the wrong type (a whole number is needed)");
  return v.get<int64_t>();
}

static int64_t int_field_or(const json& j, const char* name, int64_t absent) {
  return j.contains(name) ? int_field(j, name) : absent;
}

ModelConfig config_from_json(const json& j) {
  if (!j.is_object()) throw Error("config.json: 'model' must be an object");
  ModelConfig c;
  c.vocab_size = int_field(j, "vocab_size");
  c.n_layer = int_field(j, "n_layer");
  c.d_model = int_field(j, "d_model");
  c.n_head = int_field(j, "n_head");
  c.context = int_field(j, "context");
  c.mlp_ratio = int_field(j, "mlp_ratio");
  c.position = parse_pos_kind(field<std::string>(j, "position"));
  c.rope_theta = field<double>(j, "rope_theta");
  c.rope_fraction = field<double>(j, "rope_fraction");
  c.xpos_scale_base =
      j.contains("xpos_scale_base") ? field<double>(j, "xpos_scale_base") : 512.0;  // absent before xPos
  c.norm_eps = field<double>(j, "norm_eps");
  c.moe_experts = int_field_or(j, "moe_experts", 0);  // absent: a dense MLP
  c.moe_k = int_field_or(j, "moe_k", 1);
  json layers = field<json>(j, "layers");
  if (!layers.is_array()) throw Error("config.json: 'model.layers' must be an array");
  for (size_t i = 0; i < layers.size(); ++i) {
    const json& l = layers[i];
    if (!l.is_object() || !l.contains("variant") || !l["variant"].is_string())
      throw Error("config.json: model.layers[" + std::to_string(i) + "] needs a string 'variant'");
    LayerSpec s;
    s.variant = l["variant"].get<std::string>();
    s.params = params_from_json(s.variant, l.value("params", json::object()));
    if (l.contains("mask")) {
      const json& m = l["mask"];
      if (!m.is_object() || !m.contains("rows") || !m["rows"].is_array())
        throw Error("config.json: model.layers[" + std::to_string(i) + "].mask needs an array 'rows' of 0/1 strings");
      std::vector<std::string> rows;
      for (const auto& r : m["rows"]) {
        if (!r.is_string())
          throw Error("config.json: model.layers[" + std::to_string(i) + "].mask.rows holds a non-string");
        rows.push_back(r.get<std::string>());
      }
      try {
        s.mask = mask_from_rows(rows);
      } catch (const Error& e) {
        throw Error("config.json: model.layers[" + std::to_string(i) + "].mask: " + e.what());
      }
    }
    c.layers.push_back(std::move(s));
  }
  c.validate();
  return c;
}

}  // namespace attnscope
