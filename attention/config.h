#pragma once
// Model configuration, stored as config.json beside model.safetensors (no LibTorch here).
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "params.h"

namespace attnscope {

enum class PosKind { Rope, Learned, Alibi, None, XPos };
PosKind parse_pos_kind(const std::string& s);  // rope|learned|alibi|none|xpos, throws Error
const char* pos_kind_name(PosKind p);

struct LayerSpec {
  std::string variant = "mha";
  ParamValues params;  // resolved against the registry (every parameter present)
};

struct ModelConfig {
  int64_t vocab_size = 65;
  int64_t n_layer = 4;
  int64_t d_model = 128;
  int64_t n_head = 8;
  int64_t context = 256;
  int64_t mlp_ratio = 4;
  PosKind position = PosKind::Rope;
  double rope_theta = 10000.0;
  double rope_fraction = 1.0;  // rotate the first floor(fraction * d_h) dims, rounded down to even
  double xpos_scale_base = 512.0;  // xPos: B in zeta_i^((p - c) / B) (c = context / 2); rotation as RoPE
  double norm_eps = 1e-5;
  std::vector<LayerSpec> layers;  // n_layer entries

  int64_t head_dim() const { return d_model / n_head; }
  int64_t rope_dims() const;  // r
  // Throws Error naming the field when the sizes are impossible (heads not dividing d_model, ...).
  void validate() const;
  // Same variant on every layer (params resolved against the registry).
  void set_all_layers(const std::string& variant, const ParamValues& params);
  // "mha" when all layers share one variant, else "mixed".
  std::string variant_summary() const;
};

nlohmann::json config_to_json(const ModelConfig& c);
// Throws Error naming the missing or wrong field.
ModelConfig config_from_json(const nlohmann::json& j);
// Parameter values <-> JSON object using the registry's names (choices as their names).
nlohmann::json params_to_json(const std::string& variant, const ParamValues& p);
ParamValues params_from_json(const std::string& variant, const nlohmann::json& j);

}  // namespace attnscope
