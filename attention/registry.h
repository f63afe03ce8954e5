#pragma once
// The variant registry: what every attention variant is, as data (no LibTorch here).
// Registration is explicit: the table lives in registry.cpp; the implementations are built in
// attention_layers.cpp from the same names.
#include <optional>
#include <string>
#include <vector>

#include "params.h"

namespace attnscope {

struct VariantInfo {
  std::string name;         // lower_snake_case, stable
  std::string family;       // "exact", "masked", "kernel", ...
  std::string description;  // one line
  std::string citation;     // paper
  std::vector<ParamSpec> params;
  bool causal = true;       // false: sees future tokens (shown with a badge, refuses to decode)
  bool needs_kv_text = false;  // cross-attention: keys/values come from a second text
  bool signed_display = false; // the displayed matrix can be negative (diverging colormap)
  std::string cache_formula;   // human-readable bytes per token per layer
  const ParamSpec* find_param(const std::string& n) const;
};

const std::vector<VariantInfo>& variant_registry();
// The families' tables, appended in this order by variant_registry() (explicit registration).
void add_masked_variants(std::vector<VariantInfo>& r);  // masked_registry.cpp
void add_kernel_variants(std::vector<VariantInfo>& r);  // kernel_registry.cpp
const VariantInfo* find_variant(const std::string& name);
// find_variant or throw Error listing the known names.
const VariantInfo& get_variant(const std::string& name);

}  // namespace attnscope
