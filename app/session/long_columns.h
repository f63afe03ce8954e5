#pragma once
// Columns of the long-text commands and views (GUI-free): `extrapolate --variants`, `render --length`, `bench --long`
// and the window's loss-by-position row name a column either by a shipped checkpoint ("mha_alibi": that checkpoint as
// trained) or by a variant with parameters ("sinks:window=32": the one model policy, model_policy.h, on the base).
#include <memory>
#include <string>
#include <vector>

#include "engine.h"

namespace attnscope::session {

struct LongColumn {
  std::string spec;   // as given: "sliding_window", "sinks:window=32", "mha_alibi"
  std::string label;  // "mha_alibi (mha, alibi positions; trained 300 steps)"
  std::string where;  // which weights run: "assets/models/mha_alibi, trained" or "converted from mha (...)"
  std::shared_ptr<Model> model;
};

// "a,b:k=v,k=v,c": entries split at commas; a piece with '=' and no ':' is one more parameter of the entry before.
std::vector<std::string> split_column_list(const std::string& list);

// The column `spec` names: a registered variant (with k=v parameters after ':'; convert=1 runs `base` converted even
// where a checkpoint trained with the variant is shipped) through column_model on `base`, or
// else a folder under models_dir (default assets/models) holding a checkpoint. Throws Error naming both kinds of
// names when neither fits.
LongColumn long_column(const Model& base, const std::string& spec, const std::string& models_dir = "");
// A variant column as the window holds it (parameters resolved), through column_model on `base`.
LongColumn long_column(const Model& base, const std::string& variant, const ParamValues& params, bool convert = false);

}  // namespace attnscope::session
