// Row 5 of a column: the loss of the current text under this column against its like-for-like reference
// (model_policy.h: the MHA checkpoint of the same training budget, or the model a conversion started from), and
// for approximations the distance to the exact softmax on the same queries and keys.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "imgui.h"
#include "registry.h"
#include "state.h"
#include "views.h"
#include "widgets.h"

namespace attnscope::gui {

void draw_quality_row(const Column& c, const ColumnResult& r) {
  const float fs = ImGui::GetFontSize();
  section("Quality");
  const AttentionMaps& m = *r.maps;
  if (std::isnan(m.loss)) {
    ImGui::TextColored(kDim, "loss n/a (type at least two characters)");
    return;
  }
  ImGui::Text("loss %.3f", m.loss);
  tooltip(("mean next-character loss over this window: " + std::to_string(m.loss) +
           " nats = " + std::to_string(m.loss / std::log(2.0)) + " bits per character (lower = better predictions)")
              .c_str());
  ImGui::SameLine(0, fs * 0.8f);
  if (std::isnan(r.base_loss)) {
    ImGui::TextColored(kDim, "%s", r.comparison.label.c_str());
  } else {
    const double d = m.loss - r.base_loss;
    ImGui::TextColored(d <= 0.005 ? kGreen : d < 0.1 ? kAmber : kRed, "%+.3f", d);
    ImGui::SameLine(0, fs * 0.3f);
    if (ImGui::GetContentRegionAvail().x < ImGui::CalcTextSize(r.comparison.label.c_str()).x) ImGui::NewLine();
    ImGui::TextColored(kDim, "%s", r.comparison.label.c_str());
    tooltip(("this loss minus the loss of " + r.comparison.dir + " on the same text (nats/char): " +
             (r.shipped ? "a checkpoint trained with this variant against MHA trained on the same budget"
                        : "a converted model against the model it was converted from") +
             (r.comparison.same_budget ? "" : "\nno MHA checkpoint of this budget is shipped: the budgets differ"))
                .c_str());
  }
  if (!r.knockouts.empty() && !std::isnan(r.unknocked_loss)) {
    const double d = m.loss - r.unknocked_loss;
    const bool mean = r.knock_mode == KnockMode::Mean;
    ImGui::TextColored(d <= 0.005 ? kGreen : d < 0.1 ? kAmber : kRed, "knock-out %+.3f", d);
    tooltip(("this loss minus the same column's loss without the knock-outs (" + std::to_string(r.unknocked_loss) +
             " nats/char): what the knocked-out heads contribute to predicting this text")
                .c_str());
    if (!std::isnan(r.heldout_knock_delta)) {
      ImGui::SameLine(0, fs * 0.5f);
      const double h = r.heldout_knock_delta;
      ImGui::TextColored(h <= 0.005 ? kGreen : h < 0.1 ? kAmber : kRed, "held-out %+.3f", h);
      tooltip(
          "the same knock-outs on the fixed held-out slice (the first two context-long windows of the validation "
          "split): loss with them minus without, nats/char");
    }
    ImGui::TextColored(kDim, "(%s, %s)", knockouts_label(r.knockouts).c_str(), mean ? "mean" : "zeroed");
    tooltip(mean ? "each knocked-out head's output replaced by its mean over the held-out slice's positions"
                 : "each knocked-out head's output set to 0");
  }
  const ReferenceMaps& ref = r.reference;
  const int layer = std::clamp(c.layer, 0, int(m.layers) - 1), head = std::clamp(c.head, 0, int(m.heads) - 1);
  if (r.reference_pending) {
    ImGui::TextColored(kDim, "vs exact softmax: computing...");
    tooltip("the exact causal softmax on the same queries and keys is computed once every column's maps are out");
  } else if (ref.layers > 0 && layer < int(ref.available.size()) && ref.available[size_t(layer)]) {
    const size_t k = size_t(layer * ref.heads + head);
    ImGui::TextColored(kDim, "vs exact softmax: KL %.3g \xC2\xB7 max |\xCE\x94| %.3g", ref.mean_kl[k], ref.max_abs[k]);
    tooltip(
        "this layer and head against the exact causal softmax on the same queries and keys: mean KL(exact || "
        "this) over rows, and the largest weight difference");
  }
}

}  // namespace attnscope::gui
