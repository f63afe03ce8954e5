#pragma once
// The variant registry: what every attention variant is, as data (no LibTorch here).
// Registration is explicit: the table lives in registry.cpp; the implementations are built in
// attention_layers.cpp from the same names.
#include <optional>
#include <string>
#include <vector>

#include "params.h"

namespace attnscope {

// The teaching text of a variant (`attnscope explain`, the GUI's explanation panel). In `formula`, a parameter's
// name in braces ({window}) marks the symbol its slider controls, so the GUI can highlight it.
struct Explanation {
  std::string formula;  // readable math of the forward
  std::string time;     // time complexity of a forward over n tokens, in n and the parameters
  std::string memory;   // working memory of that forward (the KV cache per token is VariantInfo::cache_formula)
  std::string when;     // 2-3 sentences: when to use it, when not
  bool complete() const { return !formula.empty() && !time.empty() && !memory.empty() && !when.empty(); }
  // The names inside {braces} of the formula, in order of appearance.
  std::vector<std::string> marked_params() const;
};

struct VariantInfo {
  std::string name;         // lower_snake_case, stable
  std::string family;       // "exact", "masked", "kernel", ...
  std::string description;  // one line
  std::string citation;     // paper
  std::vector<ParamSpec> params;
  bool causal = true;           // false: sees future tokens (shown with a badge, refuses to decode)
  bool needs_kv_text = false;   // cross-attention: keys/values come from a second text
  bool signed_display = false;  // the displayed matrix can be negative (diverging colormap)
  std::string cache_formula;    // human-readable bytes per token per layer
  Explanation explain;          // the teaching text (every registered variant has one; test_core checks)
  const ParamSpec* find_param(const std::string& n) const;
};

const std::vector<VariantInfo>& variant_registry();
// The families' tables, appended in this order by variant_registry() (explicit registration).
void add_masked_variants(std::vector<VariantInfo>& r);  // masked_registry.cpp
void add_kernel_variants(std::vector<VariantInfo>& r);  // kernel_registry.cpp
const VariantInfo* find_variant(const std::string& name);
// find_variant or throw Error listing the known names.
const VariantInfo& get_variant(const std::string& name);
// Whether weights trained with `trained` fit `variant` at `wanted` unchanged: every parameter that shapes the weights
// (ParamSpec::changes_weights) has the same value (a value missing from `wanted` is its default).
bool same_weight_shapes(const std::string& variant, const ParamValues& trained, const ParamValues& wanted);

}  // namespace attnscope
