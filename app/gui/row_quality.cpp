// Row 5 of a column: the loss of the current text under this column against the base MHA model, and for
// approximations the distance to the exact softmax on the same queries and keys.
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
  const AttentionMaps& m = r.maps;
  if (std::isnan(m.loss)) {
    ImGui::TextColored(kDim, "loss n/a (type at least two characters)");
    return;
  }
  ImGui::Text("loss %.3f", m.loss);
  tooltip(("mean next-character loss over this window: " + std::to_string(m.loss) + " nats = " +
           std::to_string(m.loss / std::log(2.0)) + " bits per character (lower = better predictions)").c_str());
  ImGui::SameLine(0, fs * 0.8f);
  const double d = m.loss - r.base_loss;
  ImGui::TextColored(d <= 0.005 ? kGreen : d < 0.1 ? kAmber : kRed, "%+.3f vs MHA", d);
  tooltip("this loss minus the base MHA model's loss on the same text (nats/char)");
  const ReferenceMaps& ref = r.reference;
  const int layer = std::clamp(c.layer, 0, int(m.layers) - 1), head = std::clamp(c.head, 0, int(m.heads) - 1);
  if (ref.layers > 0 && layer < int(ref.available.size()) && ref.available[size_t(layer)]) {
    const size_t k = size_t(layer * ref.heads + head);
    ImGui::TextColored(kDim, "vs exact softmax: KL %.3g \xC2\xB7 max |\xCE\x94| %.3g", ref.mean_kl[k], ref.max_abs[k]);
    tooltip("this layer and head against the exact causal softmax on the same queries and keys: mean KL(exact || "
            "this) over rows, and the largest weight difference");
  }
}

}  // namespace attnscope::gui
