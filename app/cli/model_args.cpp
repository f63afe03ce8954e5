#include "model_args.h"

#include <CLI/CLI.hpp>

#include "custom_mask.h"
#include "error.h"
#include "model_policy.h"
#include "registry.h"

namespace attnscope {

void ModelArgs::add(CLI::App* c, bool with_variant) {
  c->add_option("--model", model, "checkpoint directory (default: the bundled assets/models/mha)");
  c->add_option("--device", device, "auto|cpu|cuda (auto = CUDA when this LibTorch has it)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  if (with_variant) {
    c->add_option("--variant", variant, "attention variant on every layer (default: the checkpoint's own)");
    c->add_option("--param", params, "variant parameter NAME=VALUE (repeatable); see `attnscope variants`");
    c->add_flag("--convert", convert,
                "convert the --model checkpoint to --variant even when a checkpoint trained with that variant is "
                "shipped (by default the trained one runs, as in the window)");
    c->add_option("--layer-variants", layer_variants,
                  "one variant per layer, comma-separated, each VARIANT or VARIANT:k=v (a further k=v continues "
                  "it), e.g. \"sliding_window:window=32,sliding_window:window=32,mha,mha\"");
    c->add_option("--mask-file", mask_file,
                  "the painted mask of the custom variant: rows of 0/1 (row i = query i; '#' lines are comments)");
  }
  c->add_option("--unknown", unknown, "characters outside the vocabulary: error|skip|replace")
      ->check(CLI::IsMember({"error", "skip", "replace"}));
}

std::shared_ptr<Model> ModelArgs::load() const {
  auto m = Model::load(model.empty() ? default_model_dir() : model, device);
  if (!layer_variants.empty()) {
    if (!variant.empty() || !params.empty()) throw Error("give either --layer-variants or --variant/--param, not both");
    return with_mask(*m, parse_layer_variants(layer_variants, m->config().n_layer));
  }
  if (variant == "custom" || (variant.empty() && !mask_file.empty())) {
    if (variant.empty() && m->config().variant_summary() != "custom")
      throw Error("--mask-file needs --variant custom (or custom entries in --layer-variants)");
    if (!params.empty()) throw Error("the custom variant has no --param: its mask comes from --mask-file");
    ModelConfig cfg = m->config();
    cfg.set_all_layers("custom", {});
    return with_mask(*m, cfg.layers);
  }
  if (!mask_file.empty()) throw Error("--mask-file needs --variant custom (or custom entries in --layer-variants)");
  if (variant.empty() && params.empty()) return m;
  std::string v = variant.empty() ? m->config().variant_summary() : variant;
  if (v == "mixed") throw Error("--param needs --variant: the checkpoint mixes variants across layers");
  const VariantInfo& info = get_variant(v);
  ParamValues given;
  for (const auto& kv : params) {
    auto p = parse_param(info.params, v, kv);
    given[p.first] = p.second;
  }
  // The one model policy (model_policy.h): the checkpoint trained with the variant when one is shipped, else
  // this one converted; the same choice as the window's column and `render`.
  return session::column_model(*m, v, given, convert);
}

std::shared_ptr<Model> ModelArgs::with_mask(const Model& m, std::vector<LayerSpec> layers) const {
  bool any_custom = false;
  if (!mask_file.empty()) {
    const CustomMask mask = parse_mask_text(read_text_file(mask_file, 64u << 20));
    for (auto& l : layers)
      if (l.variant == "custom") {
        l.mask = mask;
        any_custom = true;
      }
    if (!any_custom) throw Error("--mask-file: no layer uses the custom variant");
  }
  return m.with_layers(layers);
}

std::vector<int64_t> ModelArgs::encode(const Model& m, const std::string& text) const {
  return m.tokenizer().encode_or_throw(text, parse_unknown_policy(unknown));
}

bool model_is_causal(const Model& m) {
  for (const auto& l : m.config().layers)
    if (!get_variant(l.variant).causal) return false;
  return true;
}

std::string variant_label(const Model& m) {
  const auto& l = m.config().layers[0];
  std::string s = m.config().variant_summary();
  if (s == "mixed") {
    std::string per;
    for (const auto& x : m.config().layers) per += (per.empty() ? "" : ",") + x.variant;
    return "mixed (" + per + ")";
  }
  if (s == "custom" && !l.mask.empty())
    return "custom (painted " + std::to_string(l.mask.n) + "x" + std::to_string(l.mask.n) + ", " +
           std::to_string(l.mask.allowed_pairs()) + " pairs)";
  const VariantInfo& v = get_variant(s);
  std::string p;
  for (const auto& spec : v.params)
    p += (p.empty() ? "" : ", ") + spec.name + "=" + format_param(spec, l.params.at(spec.name));
  return p.empty() ? s : s + " (" + p + ")";
}

}  // namespace attnscope
