#pragma once
// The one model policy (GUI-free): which checkpoint a column runs in, trained with its variant or converted from
// another, and which model its quality is compared against. The window's worker, `render`, `attend`, `eval`
// and `generate` all ask here, so one column shows the same model and the same comparison everywhere.
#include <memory>
#include <string>
#include <vector>

#include "engine.h"
#include "params.h"

namespace attnscope::session {

// Where a column's weights come from.
struct ModelSource {
  std::string dir;       // the checkpoint folder whose weights the column starts from
  bool trained = false;  // that checkpoint learned with the column's variant (its attention is not converted)
  bool shipped = false;  // dir is the shipped checkpoint of the variant (not the base the caller loaded)
};

// The rule, in order:
//  1. the base checkpoint itself, when it was trained with `variant` on every layer;
//  2. else the shipped checkpoint trained with `variant` (assets/models/VARIANT: trained_checkpoint below),
//     when it has the base model's size and the parameters that shape weights equal `params`' (registry.h:
//     same_weight_shapes); `convert` skips this step (the conversion lesson: converted next to trained);
//  3. else the base checkpoint, its attention converted (Model::with_variant: mean-pooled K/V heads, SVD, ...).
// The base's folder is base.source_dir(). Throws Error for an unknown variant.
ModelSource column_source(const Model& base, const std::string& variant, const ParamValues& params,
                          bool convert = false);

// The checkpoint shipped trained with `variant` for a model of `base`'s size (rule 2 before the weight-shape
// check): assets/models/VARIANT when its config (read once per file version) fits, else "".
std::string trained_checkpoint(const ModelConfig& base, const std::string& variant);

// True when a column of `variant` on `base` could run in a trained checkpoint other than the base (the window's
// "convert" switch is offered then). Cheap: the window asks every frame.
bool has_trained_checkpoint(const Model& base, const std::string& variant);

// A per-layer column (a variant per layer, built from the base's weights): trained when every layer keeps the
// base's own variant, else converted from the base (its comparison is then the base, unconverted).
ModelSource layered_source(const Model& base, const std::vector<LayerSpec>& layers);

// The model of a column: the source's weights under `variant` with `params` (a missing parameter keeps the
// source checkpoint's own value when it was trained with this variant, else the registry default). `base`
// stands in for its own folder (not loaded twice). Throws Error (impossible parameters, unreadable files).
std::shared_ptr<Model> column_model(const Model& base, const std::string& variant, const ParamValues& params,
                                    bool convert = false);

// What a column's loss is compared with.
struct Comparison {
  std::string dir;          // the checkpoint whose loss on the same text is subtracted ("" = none found)
  std::string label;        // for the row: "vs MHA, 1,000 steps" or "vs mha before conversion"
  bool same_budget = true;  // false: no MHA checkpoint of the source's budget exists (the label says so)
};

// The like-for-like reference:
//  - a column in a trained checkpoint: the MHA checkpoint (mha on every layer, the same size, vocabulary and
//    position scheme, no mixture of experts) trained on the same budget (steps and batch), preferring the
//    bundled `mha`; when none has that budget, the base with a label naming both budgets;
//  - a converted column: the checkpoint it was converted from (`src.dir`, unconverted).
// models_dir: the folder of shipped checkpoints (default assets/models).
Comparison comparison_for(const ModelSource& src, const std::string& models_dir = "");

// "1,000 steps" from a checkpoint's config.json ("" when it records none).
std::string budget_label(const std::string& dir);

}  // namespace attnscope::session
