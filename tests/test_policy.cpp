// The one model policy (app/session/model_policy.h), swept over every registered variant on the bundled model:
// which checkpoint a column runs in, and what its loss is compared with.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "engine.h"
#include "model_policy.h"
#include "registry.h"

using namespace attnscope;
using namespace attnscope::session;
namespace fs = std::filesystem;

namespace {

// Every parameter at its registry default (what a new column of the window holds).
ParamValues defaults(const VariantInfo& v) {
  ParamValues p;
  for (const ParamSpec& s : v.params) p[s.name] = s.def;
  return p;
}

nlohmann::json training_of(const std::string& dir) {
  return nlohmann::json::parse(read_text_file(dir + "/config.json")).value("training", nlohmann::json::object());
}

// The oracle for model_policy.h's rule 2, read straight from the files: assets/models/VARIANT when it holds weights
// and a config trained with the variant on every layer, of the base's size, vocabulary and at least its context.
std::string shipped_for(const ModelConfig& base, const std::string& variant) {
  const std::string dir = assets_dir() + "/models/" + variant;
  if (!std::filesystem::exists(dir + "/model.safetensors")) return "";
  const ModelConfig c = config_from_json(nlohmann::json::parse(read_text_file(dir + "/config.json"))["model"]);
  for (const LayerSpec& s : c.layers)
    if (s.variant != variant) return "";
  const bool fits = c.n_layer == base.n_layer && c.d_model == base.d_model && c.n_head == base.n_head &&
                    c.vocab_size == base.vocab_size && c.context >= base.context && c.moe_experts == 0;
  return fits ? dir : "";
}

std::shared_ptr<const Model> bundled() {
  static std::shared_ptr<const Model> m = Model::load(default_model_dir(), "cpu");
  return m;
}

}  // namespace

TEST(Policy, EveryVariantRunsInItsTrainedCheckpointOrTheBaseConverted) {
  const Model& base = *bundled();
  for (const VariantInfo& v : variant_registry()) {
    SCOPED_TRACE(v.name);
    const ParamValues p = defaults(v);
    const ModelSource src = column_source(base, v.name, p);
    const std::string shipped = shipped_for(base.config(), v.name);
    if (v.name == base.config().variant_summary()) {
      EXPECT_TRUE(src.trained);
      EXPECT_EQ(src.dir, base.source_dir());
    } else if (!shipped.empty()) {
      const ModelConfig sc = config_from_json(nlohmann::json::parse(read_text_file(shipped + "/config.json"))["model"]);
      const bool fits = same_weight_shapes(v.name, sc.layers[0].params, p);
      EXPECT_EQ(src.trained, fits);
      EXPECT_EQ(src.dir, fits ? shipped : base.source_dir());
    } else {
      EXPECT_FALSE(src.trained);
      EXPECT_EQ(src.dir, base.source_dir());
    }
    // --convert / "convert": the base, converted, whatever is shipped (the base's own variant stays trained).
    const ModelSource conv = column_source(base, v.name, p, true);
    EXPECT_EQ(conv.dir, base.source_dir());
    EXPECT_EQ(conv.trained, v.name == base.config().variant_summary());
  }
}

TEST(Policy, EveryColumnIsComparedLikeForLike) {
  const Model& base = *bundled();
  for (const VariantInfo& v : variant_registry()) {
    SCOPED_TRACE(v.name);
    const ModelSource src = column_source(base, v.name, defaults(v));
    const Comparison c = comparison_for(src);
    ASSERT_FALSE(c.dir.empty()) << c.label;
    if (!src.trained) {
      // converted: against the checkpoint it was converted from
      EXPECT_EQ(c.dir, src.dir);
      EXPECT_NE(c.label.find("before conversion"), std::string::npos) << c.label;
      continue;
    }
    // trained: an MHA checkpoint of the same size and position scheme ...
    const ModelConfig ref = config_from_json(nlohmann::json::parse(read_text_file(c.dir + "/config.json"))["model"]);
    EXPECT_EQ(ref.variant_summary(), "mha");
    EXPECT_TRUE(ref.same_size(base.config()));
    EXPECT_EQ(ref.moe_experts, 0);
    // ... trained on the same budget, which the label names; or a label that says the budgets differ
    const auto a = training_of(src.dir), b = training_of(c.dir);
    const std::string steps = std::to_string(a.value("steps", 0));
    if (c.same_budget) {
      EXPECT_EQ(a.value("steps", 0), b.value("steps", 0));
      EXPECT_EQ(a.value("batch", 0), b.value("batch", 0));
      EXPECT_EQ(c.label.rfind("vs MHA, ", 0), 0u) << c.label;
    } else {
      EXPECT_NE(c.label.find("this one:"), std::string::npos) << c.label;
    }
  }
}

TEST(Policy, ColumnModelIsTrainedExactlyWhenTheSourceIs) {
  const Model& base = *bundled();
  for (const VariantInfo& v : variant_registry()) {
    if (v.needs_kv_text || v.name == "custom") continue;  // cross-attention and painted masks: no shipped model
    SCOPED_TRACE(v.name);
    const ModelSource src = column_source(base, v.name, defaults(v));
    auto m = column_model(base, v.name, defaults(v));
    EXPECT_EQ(m->mode() == "trained", src.trained) << m->mode();
    EXPECT_EQ(m->config().variant_summary(), v.name);
  }
}

TEST(Policy, AWeightShapingParameterOffTheTrainedValueConverts) {
  // gqa is shipped with groups = 2: groups = 4 cannot reuse its K/V projections, so the base converts.
  const Model& base = *bundled();
  if (shipped_for(base.config(), "gqa").empty()) GTEST_SKIP() << "no shipped gqa";
  ParamValues p = defaults(get_variant("gqa"));
  p["groups"] = 2;
  EXPECT_TRUE(column_source(base, "gqa", p).trained);
  p["groups"] = 4;
  const ModelSource s4 = column_source(base, "gqa", p);
  EXPECT_FALSE(s4.trained);
  EXPECT_EQ(column_model(base, "gqa", p)->mode(), "converted from mha");
  EXPECT_EQ(comparison_for(s4).label, "vs mha before conversion");
}
