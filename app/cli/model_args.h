#pragma once
// The options every subcommand that runs a model shares (--model, --device, --variant, --param, --convert,
// --layer-variants, --mask-file, --unknown) and the model they name, chosen by the one model policy
// (app/session/model_policy.h), plus how a model is described in the commands' output.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine.h"

namespace CLI {
class App;
}

namespace attnscope {

struct ModelArgs {
  std::string model, device = "auto", variant, unknown = "error", layer_variants, mask_file;
  std::vector<std::string> params;
  bool convert = false;

  // Registers the flags on `c`; with_variant = false leaves out the variant flags (--variant ... --mask-file).
  void add(CLI::App* c, bool with_variant = true);
  // The model the flags name. Throws Error (conflicting flags, unknown variant, unreadable checkpoint or mask).
  std::shared_ptr<Model> load() const;
  // The model under `layers`, the --mask-file painted on every custom layer.
  std::shared_ptr<Model> with_mask(const Model& m, std::vector<LayerSpec> layers) const;
  // `text` as the model's tokens under --unknown. Throws Error naming the first unknown character.
  std::vector<int64_t> encode(const Model& m, const std::string& text) const;
};

// Whether every layer's variant is causal (a next-character loss is valid).
bool model_is_causal(const Model& m);
// "sliding_window (window=32)", "mixed (mha,mha,...)", "custom (painted 4x4, 7 pairs)".
std::string variant_label(const Model& m);

}  // namespace attnscope
