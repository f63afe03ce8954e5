#include "registry.h"

#include "error.h"

namespace attnscope {

const ParamSpec* VariantInfo::find_param(const std::string& n) const {
  for (const auto& p : params)
    if (p.name == n) return &p;
  return nullptr;
}

// The table. Add a variant here and in make_attention() (attention_layers.cpp); nothing registers itself.
static std::vector<VariantInfo> build_registry() {
  std::vector<VariantInfo> r;
  r.push_back({"mha", "exact", "Multi-head attention: every head has its own queries, keys and values.",
               "Vaswani et al., Attention Is All You Need (2017)",
               {{"impl", ParamType::Choice, 0, 1, 0, 1,
                 "naive: explicit softmax(QK^T/sqrt(d_h)) V; sdpa: LibTorch's at::_scaled_dot_product_attention "
                 "(an explicit mask is passed; never is_causal)",
                 false, {"naive", "sdpa"}}},
               true, false, false, "2 H d_h b"});
  r.push_back({"mqa", "exact", "Multi-query attention: all query heads share one key/value head.",
               "Shazeer, Fast Transformer Decoding: One Write-Head is All You Need (2019)", {}, true, false, false,
               "2 d_h b"});
  r.push_back({"gqa", "exact",
               "Grouped-query attention: query head h uses key/value head floor(h G / H) (contiguous groups).",
               "Ainslie et al., GQA: Training Generalized Multi-Query Transformer Models (2023)",
               {{"groups", ParamType::Int, 1, 64, 2, 1,
                 "G: number of key/value heads; must divide the number of query heads (G = H is MHA, G = 1 is MQA)",
                 true, {}, false, true}},
               true, false, false, "2 G d_h b"});
  r.push_back({"cross", "exact",
               "Cross-attention: queries from the text, keys and values from a second text, no causal mask over it.",
               "Vaswani et al., Attention Is All You Need (2017), encoder-decoder attention", {}, true, true, false,
               "2 H d_h b x len(second text)"});
  add_masked_variants(r);  // masked_registry.cpp
  add_kernel_variants(r);  // kernel_registry.cpp
  return r;
}

const std::vector<VariantInfo>& variant_registry() {
  static const std::vector<VariantInfo> reg = build_registry();
  return reg;
}

const VariantInfo* find_variant(const std::string& name) {
  for (const auto& v : variant_registry())
    if (v.name == name) return &v;
  return nullptr;
}

const VariantInfo& get_variant(const std::string& name) {
  if (const VariantInfo* v = find_variant(name)) return *v;
  std::string known;
  for (const auto& v : variant_registry()) known += (known.empty() ? "" : ", ") + v.name;
  throw Error("unknown variant '" + name + "' (known: " + known + ")");
}

}  // namespace attnscope
