// The KV-cache calculator window: every attention family's cache for published model shapes (attention/kv_calc.h),
// a shape of one's own, and which GPU sizes it fits.
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>

#include "imgui.h"
#include "state.h"
#include "widgets.h"

namespace attnscope::gui {

namespace {

// The presets, read once (the bundled model's shape from its checkpoint); the custom shape starts as the first.
void load_kv_presets(App& app) {
  KvCalcState& s = app.kv;
  if (!s.presets.empty() || !s.presets_error.empty()) return;
  try {
    s.presets = kv_presets(app.model_dir);
  } catch (const std::exception& e) {
    s.presets_error = e.what();
  }
  if (!s.presets.empty()) {
    s.custom = s.presets.front();
    s.custom.key = s.custom.name = "custom";
    s.custom.parameters = 0;  // an edited shape: no weights column
    s.custom.source = "edited from " + s.presets.front().name;
  }
}

// The custom shape's fields, on one line.
void draw_custom_shape(ModelShape& m) {
  const float fs = ImGui::GetFontSize();
  auto field = [&](const char* label, int64_t* v, int lo, const char* tip) {
    int x = int(*v);
    ImGui::SetNextItemWidth(fs * 5.5f);
    if (ImGui::InputInt(label, &x, 0)) *v = std::max(lo, x);
    tooltip(tip);
    ImGui::SameLine(0, fs * 0.6f);
  };
  field("layers", &m.layers, 1, "transformer layers");
  field("heads", &m.heads, 1, "query heads");
  field("kv heads", &m.kv_heads, 1, "key/value heads (GQA; 1 = MQA)");
  field("d_h", &m.head_dim, 1, "head width");
  field("d_c", &m.latent_dim, 1, "MLA latent width");
  field("d_R", &m.rope_dim, 0, "MLA decoupled RoPE dims");
  field("window", &m.window, 1, "sliding window W");
  ImGui::NewLine();
}

// One family's row: what it keeps, bytes per token, a bar of the cache bytes (log scale up to `most`), and
// whether it fits each GPU size.
void draw_kv_row(const KvRow& r, int64_t most) {
  ImGui::TableNextRow();
  ImGui::TableNextColumn();
  ImGui::TextUnformatted(r.family.c_str());
  ImGui::TableNextColumn();
  ImGui::TextColored(r.assumed ? kAmber : kDim, "%s%s", r.kept.c_str(), r.assumed ? " (assumed)" : "");
  tooltip(
      (r.kept + (r.assumed ? "\n\na size in this row is not published for this model: an assumption" : "")).c_str());
  ImGui::TableNextColumn();
  ImGui::TextUnformatted(r.constant ? "constant" : format_bytes(r.per_token_bytes).c_str());
  ImGui::TableNextColumn();
  {  // a bar by bytes (log scale across the rows, so the small states still show) and the number
    const ImVec2 p = ImGui::GetCursorScreenPos();
    const float w = ImGui::GetContentRegionAvail().x, h = ImGui::GetTextLineHeight();
    const double frac = r.bytes <= 0 ? 0 : std::clamp(std::log10(double(r.bytes)) / std::log10(double(most)), 0.0, 1.0);
    const float fits80 = r.fits_cache.size() > 2 && r.fits_cache[2] ? 1.f : 0.f;
    ImGui::GetWindowDrawList()->AddRectFilled(p, ImVec2(p.x + w * float(frac), p.y + h),
                                              fits80 > 0 ? IM_COL32(70, 120, 200, 170) : IM_COL32(200, 80, 70, 170), 3);
    ImGui::Text(" %s", format_bytes(r.bytes).c_str());
  }
  for (size_t g = 0; g < kGpuGiB.size(); ++g) {
    ImGui::TableNextColumn();
    const bool c = r.fits_cache[g], w = r.fits_with_weights[g];
    ImGui::TextColored(w ? kGreen : c ? kAmber : kRed, "%s", w ? "\xE2\x9C\x93" : c ? "cache" : "\xE2\x9C\x97");
    if (ImGui::IsItemHovered())
      ImGui::SetTooltip(w   ? "the cache and the fp16 weights fit in %" PRId64 " GB"
                        : c ? "the cache alone fits in %" PRId64
                              " GB (with the weights it does not, or they are unknown)"
                            : "the cache alone does not fit in %" PRId64 " GB",
                        kGpuGiB[g]);
  }
}

}  // namespace

bool select_kv_preset(App& app, const std::string& key) {
  load_kv_presets(app);
  KvCalcState& s = app.kv;
  for (size_t i = 0; i < s.presets.size(); ++i)
    if (s.presets[i].key == key) {
      s.preset = int(i);
      return true;
    }
  if (key != "custom") return false;
  s.preset = int(s.presets.size());
  return true;
}

void draw_kv_calculator(App& app) {
  KvCalcState& s = app.kv;
  if (!s.open) return;
  const float fs = ImGui::GetFontSize();
  ImGui::SetNextWindowSize(ImVec2(fs * 66, fs * 22), ImGuiCond_FirstUseEver);
  if (!ImGui::Begin("KV-cache calculator", &s.open)) {
    ImGui::End();
    return;
  }
  load_kv_presets(app);
  if (!s.presets_error.empty()) ImGui::TextColored(kRed, "%s", s.presets_error.c_str());
  if (s.presets.empty()) {
    ImGui::End();
    return;
  }
  s.preset = std::clamp(s.preset, 0, int(s.presets.size()));
  const bool custom = s.preset == int(s.presets.size());
  ImGui::SetNextItemWidth(fs * 11);
  if (ImGui::BeginCombo("model", custom ? "custom" : s.presets[size_t(s.preset)].name.c_str())) {
    for (int i = 0; i <= int(s.presets.size()); ++i)
      if (ImGui::Selectable(i == int(s.presets.size()) ? "custom" : s.presets[size_t(i)].name.c_str(), i == s.preset)) {
        if (i == int(s.presets.size()) && !custom && s.preset < int(s.presets.size())) {
          const ModelShape& from = s.presets[size_t(s.preset)];  // start the custom shape from the shown preset
          s.custom = from;
          s.custom.key = s.custom.name = "custom";
          s.custom.parameters = 0;
          s.custom.source = "edited from " + from.name;
        }
        s.preset = i;
      }
    ImGui::EndCombo();
  }
  mark_target(app, "kv_model");
  ImGui::SameLine(0, fs);
  ImGui::SetNextItemWidth(fs * 14);
  ImGui::SliderInt("tokens", &s.tokens, 1, int(kMaxKvTokens), "%d", ImGuiSliderFlags_Logarithmic);
  tooltip("sequence length (log scale, up to 1M tokens)");
  ImGui::SameLine(0, fs);
  static const char* dtypes[] = {"fp32", "fp16", "bf16", "fp8"};
  ImGui::SetNextItemWidth(fs * 5);
  ImGui::Combo("dtype", &s.dtype, dtypes, IM_ARRAYSIZE(dtypes));
  ImGui::SameLine(0, fs);
  ImGui::SetNextItemWidth(fs * 6);
  ImGui::InputInt("batch", &s.batch);
  s.batch = std::clamp(s.batch, 1, 4096);
  if (custom) draw_custom_shape(s.custom);
  const ModelShape& shape = custom ? s.custom : s.presets[size_t(s.preset)];
  KvTable t;
  try {
    t = kv_table(shape, s.tokens, s.batch, KvDType(s.dtype));
  } catch (const std::exception& e) {
    ImGui::TextColored(kRed, "%s", e.what());
    ImGui::End();
    return;
  }
  ImGui::TextColored(kDim, "%s: %" PRId64 " layers, %" PRId64 " heads, %" PRId64 " kv heads, d_h %" PRId64 "%s%s",
                     shape.name.c_str(), shape.layers, shape.heads, shape.kv_heads, shape.head_dim,
                     t.weight_bytes > 0 ? (", fp16 weights " + format_bytes(t.weight_bytes)).c_str() : "",
                     shape.source.empty() ? "" : ("  \xC2\xB7  " + shape.source).c_str());
  int64_t most = 1;
  for (const KvRow& r : t.rows) most = std::max(most, r.bytes);
  const ImGuiTableFlags tf = ImGuiTableFlags_BordersInnerH | ImGuiTableFlags_RowBg | ImGuiTableFlags_SizingStretchProp;
  if (ImGui::BeginTable("kv_table", 4 + int(kGpuGiB.size()), tf)) {
    ImGui::TableSetupColumn("family", ImGuiTableColumnFlags_WidthFixed, fs * 8);
    ImGui::TableSetupColumn("kept", ImGuiTableColumnFlags_WidthStretch, 2.2f);
    ImGui::TableSetupColumn("per token", ImGuiTableColumnFlags_WidthFixed, fs * 5.5f);
    ImGui::TableSetupColumn("cache", ImGuiTableColumnFlags_WidthStretch, 2.f);
    for (int64_t g : kGpuGiB) {
      char name[16];  // TableSetupColumn copies the label
      std::snprintf(name, sizeof name, "%" PRId64 " GB", g);
      ImGui::TableSetupColumn(name, ImGuiTableColumnFlags_WidthFixed, fs * 3.4f);
    }
    ImGui::TableHeadersRow();
    for (const KvRow& r : t.rows) draw_kv_row(r, most);
    ImGui::EndTable();
  }
  ImGui::TextColored(kDim,
                     "bars: bytes on a log scale (blue: fits an 80 GB GPU); \xE2\x9C\x93 cache + weights fit, "
                     "'cache' only the cache fits, \xE2\x9C\x97 neither");
  ImGui::End();
}

}  // namespace attnscope::gui
