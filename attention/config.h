#pragma once
// Model configuration, stored as config.json beside model.safetensors (no LibTorch here).
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "custom_mask.h"
#include "params.h"

namespace attnscope {

enum class PosKind { Rope, Learned, Alibi, None, XPos };
PosKind parse_pos_kind(const std::string& s);  // rope|learned|alibi|none|xpos, throws Error
const char* pos_kind_name(PosKind p);

struct LayerSpec {
  std::string variant = "mha";
  ParamValues params;  // resolved against the registry (every parameter present)
  CustomMask mask;     // `custom` only: the painted allowed pairs (empty: causal); saved in config.json as 0/1 rows
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
  double rope_fraction = 1.0;      // rotate the first floor(fraction * d_h) dims, rounded down to even
  double xpos_scale_base = 512.0;  // xPos: B in zeta_i^((p - c) / B) (c = context / 2); rotation as RoPE
  double norm_eps = 1e-5;
  // Feed-forward: 0 = the dense GELU MLP; E >= 2 = a top-k routed mixture of E experts in every block, each a GELU
  // MLP of width mlp_ratio * d_model / E (parameter-matched to the dense MLP), gated by the router's softmax.
  int64_t moe_experts = 0;
  int64_t moe_k = 1;              // experts per token (1..E)
  std::vector<LayerSpec> layers;  // n_layer entries

  int64_t head_dim() const { return d_model / n_head; }
  int64_t rope_dims() const;  // r
  int64_t expert_hidden() const { return moe_experts > 0 ? mlp_ratio * d_model / moe_experts : mlp_ratio * d_model; }
  // Throws Error naming the field when the sizes are impossible (heads not dividing d_model, ...).
  void validate() const;
  // Same variant on every layer (params resolved against the registry).
  void set_all_layers(const std::string& variant, const ParamValues& params);
  // "mha" when all layers share one variant, else "mixed".
  std::string variant_summary() const;
  // The same layers, width and heads: variants of the two are comparable (checkpoints stand in for each other).
  bool same_size(const ModelConfig& o) const {
    return n_layer == o.n_layer && d_model == o.d_model && n_head == o.n_head;
  }
};

// `--layer-variants`: one entry per layer, "VARIANT" or "VARIANT:k=v", separated by commas; a "k=v" item without a
// variant continues the previous entry ("bigbird:block=16,window_blocks=2,mha"). Parameters are resolved against
// the registry. Throws Error when the count differs from n_layer or an entry is unknown.
std::vector<LayerSpec> parse_layer_variants(const std::string& spec, int64_t n_layer);

nlohmann::json config_to_json(const ModelConfig& c);
// Throws Error naming the missing or wrong field.
ModelConfig config_from_json(const nlohmann::json& j);
// Parameter values <-> JSON object using the registry's names (choices as their names).
nlohmann::json params_to_json(const std::string& variant, const ParamValues& p);
ParamValues params_from_json(const std::string& variant, const nlohmann::json& j);

}  // namespace attnscope
