#include "registry.h"

#include "error.h"

namespace attnscope {

std::vector<std::string> Explanation::marked_params() const {
  std::vector<std::string> names;
  for (size_t at = formula.find('{'); at != std::string::npos; at = formula.find('{', at + 1)) {
    const size_t end = formula.find('}', at);
    if (end == std::string::npos) break;
    names.push_back(formula.substr(at + 1, end - at - 1));
  }
  return names;
}

const ParamSpec* VariantInfo::find_param(const std::string& n) const {
  for (const auto& p : params)
    if (p.name == n) return &p;
  return nullptr;
}

// The table. Add a variant here and in make_attention() (attention_layers.cpp); nothing registers itself.
static std::vector<VariantInfo> build_registry() {
  std::vector<VariantInfo> r;
  r.push_back({"mha",
               "exact",
               "Multi-head attention: every head has its own queries, keys and values.",
               "Vaswani et al., Attention Is All You Need (2017)",
               {{"impl",
                 ParamType::Choice,
                 0,
                 1,
                 0,
                 1,
                 "naive: explicit softmax(QK^T/sqrt(d_h)) V; sdpa: LibTorch's at::_scaled_dot_product_attention "
                 "(an explicit mask is passed; never is_causal)",
                 false,
                 {"naive", "sdpa"}}},
               true,
               false,
               false,
               "2 H d_h b",
               {"A = softmax(Q K^T / sqrt(d_h) + causal mask), o = A V, for each of the H heads; {impl} picks the "
                "naive or the LibTorch SDPA path",
                "O(n^2 d) for scores and A V, plus O(n d^2) for the projections",
                "O(H n^2) scores (both paths materialise them on the CPU)",
                "The reference: exact attention, the best quality per parameter and the bundled checkpoint. Use "
                "it whenever the n x n scores fit. Avoid it for very long contexts, or when its KV cache (all H "
                "heads, growing with n) is the memory bottleneck."}});
  r.push_back({"mqa",
               "exact",
               "Multi-query attention: all query heads share one key/value head.",
               "Shazeer, Fast Transformer Decoding: One Write-Head is All You Need (2019)",
               {},
               true,
               false,
               false,
               "2 d_h b",
               {"A_h = softmax(Q_h K^T / sqrt(d_h) + causal mask), o_h = A_h V: H query heads share one key/value "
                "head",
                "O(n^2 d) for scores (as MHA), key/value projections H times smaller", "O(H n^2) scores",
                "Decoding where reading the KV cache dominates (large batches, long prompts): the cache is H "
                "times smaller than MHA's. It costs quality; converting MHA mean-pools all key/value heads, so "
                "expect the loss to rise without fine-tuning."}});
  r.push_back({"gqa",
               "exact",
               "Grouped-query attention: query head h uses key/value head floor(h G / H) (contiguous groups).",
               "Ainslie et al., GQA: Training Generalized Multi-Query Transformer Models (2023)",
               {{"groups",
                 ParamType::Int,
                 1,
                 64,
                 2,
                 1,
                 "G: number of key/value heads; must divide the number of query heads (G = H is MHA, G = 1 is MQA)",
                 true,
                 {},
                 false,
                 true}},
               true,
               false,
               false,
               "2 G d_h b",
               {"query head h reads key/value head g = floor(h {groups} / H): A_h = softmax(Q_h K_g^T / sqrt(d_h) "
                "+ causal mask), o_h = A_h V_g",
                "O(n^2 d) for scores (as MHA)", "O(H n^2) scores",
                "The usual middle ground (Llama 2 70B, Llama 3, Mistral): a cache H/G times smaller than MHA's "
                "with most of its quality. G must divide H; G = H is MHA and G = 1 is MQA."}});
  r.push_back({"cross",
               "exact",
               "Cross-attention: queries from the text, keys and values from a second text, no causal mask over it.",
               "Vaswani et al., Attention Is All You Need (2017), encoder-decoder attention",
               {},
               true,
               true,
               false,
               "2 H d_h b x len(second text)",
               {"A = softmax(Q(x) K(y)^T / sqrt(d_h)), o = A V(y): keys and values from a second text y of m "
                "tokens, no mask over y",
                "O(n m d) for scores, plus O((n + m) d^2) projections", "O(H n m) scores",
                "Conditioning one sequence on another: translation, retrieval, image or audio tokens. It is not "
                "a self-attention replacement: it needs the second text and cannot be trained as a plain "
                "decoder here."}});
  add_masked_variants(r);  // masked_registry.cpp
  add_kernel_variants(r);  // kernel_registry.cpp
  // The painted mask is data of the layer (LayerSpec::mask, custom_mask.h), not a slider.
  r.push_back({"custom",
               "custom",
               "Custom mask: the pairs a painted n x n mask allows (clipped to j <= i; causal outside it). Same "
               "weights as MHA.",
               "attnscope (a teaching tool: draw your own sparsity pattern)",
               {},
               true,
               false,
               false,
               "2 H d_h b (every token is kept)",
               {"A = softmax(Q K^T / sqrt(d_h) + M), M_ij = 0 where the painted mask allows (i, j) and j <= i, else "
                "-inf (outside the painted square: causal)",
                "O(n^2 d) (dense masked scores)",
                "O(H n^2) scores; the cache keeps every token, since a painted pixel can reach any earlier key",
                "For experiments: paint a pattern and watch what the trained MHA does under it, with the same "
                "weights. A row with nothing painted attends nothing and outputs zeros. For a production sparse "
                "pattern use the named variant, which has a faster kernel and a bounded cache."}});
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

bool same_weight_shapes(const std::string& variant, const ParamValues& trained, const ParamValues& wanted) {
  for (const ParamSpec& s : get_variant(variant).params) {
    if (!s.changes_weights) continue;
    const double want = wanted.count(s.name) ? wanted.at(s.name) : s.def;
    if (!trained.count(s.name) || trained.at(s.name) != want) return false;
  }
  return true;
}

}  // namespace attnscope
