// Small widgets shared by the window's views (widgets.h): tooltips, row titles, badges, table-driven combos,
// a parameter's slider, the variant picker, coloured word-wrapped text and the colour bar under a heatmap.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>

#include "imgui.h"
#include "registry.h"
#include "state.h"
#include "widgets.h"

namespace attnscope::gui {

void tooltip(const char* s) {
  if (ImGui::IsItemHovered()) {
    ImGui::BeginTooltip();
    ImGui::PushTextWrapPos(ImGui::GetFontSize() * 30);
    ImGui::TextUnformatted(s);
    ImGui::PopTextWrapPos();
    ImGui::EndTooltip();
  }
}

std::string human_bytes(double b) {
  char s[32];
  if (b < 1024)
    std::snprintf(s, sizeof s, "%.0f B", b);
  else if (b < 1024 * 1024)
    std::snprintf(s, sizeof s, "%.1f KiB", b / 1024);
  else
    std::snprintf(s, sizeof s, "%.2f MiB", b / 1024 / 1024);
  return s;
}

// How a character is drawn as an axis label or in the preview.
std::string glyph(char c) {
  if (c == '\n') return "\xE2\x86\xB5";  // ↵
  if (c == ' ') return "\xC2\xB7";       // ·
  if (c == '\t') return "\xE2\x86\x92";  // →
  if (static_cast<unsigned char>(c) < 32) return "?";
  return std::string(1, c);
}

// A row's title: small caps-like dim text over a thin rule.
void section(const char* title) {
  ImGui::Spacing();
  const ImVec2 p = ImGui::GetCursorScreenPos();
  const float w = ImGui::GetContentRegionAvail().x;
  ImGui::TextColored(kAccent, "%s", title);
  const float tw = ImGui::CalcTextSize(title).x;
  const float y = p.y + ImGui::GetFontSize() * 0.55f;
  ImGui::GetWindowDrawList()->AddLine(ImVec2(p.x + tw + 8, y), ImVec2(p.x + w, y),
                                      ImGui::GetColorU32(ImGuiCol_Separator));
}

bool combo_from_table(const char* label, int* v, const Choice* items, int n) {
  bool changed = false;
  if (ImGui::BeginCombo(label, items[*v].label)) {
    for (int i = 0; i < n; ++i) {
      if (ImGui::Selectable(items[i].label, i == *v)) {
        *v = i;
        changed = true;
      }
      if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", items[i].tooltip);
    }
    ImGui::EndCombo();
  }
  if (ImGui::IsItemHovered() && !ImGui::IsPopupOpen(label)) ImGui::SetTooltip("%s", items[*v].tooltip);
  return changed;
}

void badge(const char* text, ImVec4 col, const char* tip) {
  ImVec2 sz = ImGui::CalcTextSize(text);
  ImVec2 p = ImGui::GetCursorScreenPos();
  const float px = ImGui::GetFontSize() * 0.4f, py = ImGui::GetFontSize() * 0.12f;
  ImDrawList* dl = ImGui::GetWindowDrawList();
  ImVec4 bg = col;
  bg.w = 0.20f;
  dl->AddRectFilled(p, ImVec2(p.x + sz.x + 2 * px, p.y + sz.y + 2 * py), ImGui::GetColorU32(bg), sz.y * 0.5f);
  dl->AddRect(p, ImVec2(p.x + sz.x + 2 * px, p.y + sz.y + 2 * py), ImGui::GetColorU32(col), sz.y * 0.5f);
  dl->AddText(ImVec2(p.x + px, p.y + py), ImGui::GetColorU32(col), text);
  ImGui::Dummy(ImVec2(sz.x + 2 * px, sz.y + 2 * py));
  if (tip) tooltip(tip);
}

std::string quoted(char c) {
  if (c == '\n') return "'\\n'";
  if (c == ' ') return "' '";
  return "'" + std::string(1, c) + "'";
}

std::vector<int> head_divisors(int64_t n_head, const ParamSpec& s) {
  std::vector<int> d;
  for (int g = 1; g <= n_head; ++g)
    if (n_head % g == 0 && g >= s.min && g <= s.max) d.push_back(g);
  return d;
}

void mark_target(App& app, const char* name) {
  ImVec2 a = ImGui::GetItemRectMin(), b = ImGui::GetItemRectMax();
  app.targets[name] = ImVec4(a.x, a.y, b.x, b.y);
}

// The colour of a parameter's slider label and of its symbol in the explanation's formula.
ImVec4 param_colour(size_t i) {
  static const ImVec4 c[] = {{0.98f, 0.72f, 0.28f, 1}, {0.45f, 0.82f, 0.50f, 1}, {0.93f, 0.47f, 0.76f, 1},
                             {0.36f, 0.80f, 0.90f, 1}, {0.95f, 0.46f, 0.36f, 1}, {0.72f, 0.62f, 1.00f, 1}};
  return c[i % 6];
}

// One parameter's widget, its label in the parameter's colour. Returns true when the value changed.
bool draw_param(App& app, ParamValues& params, const ParamSpec& s, size_t index, const std::string& target) {
  double& v = params[s.name];
  const std::string id = "##" + s.name;
  const char* name = id.c_str();
  bool changed = false;
  ImGui::SetNextItemWidth(ImGui::GetContentRegionAvail().x * 0.55f);
  switch (s.type) {
    case ParamType::Int: {
      int x = int(v);
      if (s.divisor_of_heads && app.model) {
        auto d = head_divisors(app.model->config().n_head, s);
        if (ImGui::BeginCombo(name, std::to_string(x).c_str())) {
          for (int g : d)
            if (ImGui::Selectable(std::to_string(g).c_str(), g == x)) {
              x = g;
              changed = true;
            }
          ImGui::EndCombo();
        }
      } else {
        changed =
            ImGui::SliderInt(name, &x, int(s.min), int(s.max), "%d", s.log_scale ? ImGuiSliderFlags_Logarithmic : 0);
        if (changed && s.step > 1) x = int(s.min + std::round((x - s.min) / s.step) * s.step);
      }
      if (changed) v = x;
      break;
    }
    case ParamType::Float: {
      float x = float(v);
      const char* fmt = s.step >= 1 ? "%.0f" : s.step >= 0.1 ? "%.1f" : s.step >= 0.01 ? "%.2f" : "%.3g";
      changed =
          ImGui::SliderFloat(name, &x, float(s.min), float(s.max), fmt, s.log_scale ? ImGuiSliderFlags_Logarithmic : 0);
      if (changed) v = x;
      break;
    }
    case ParamType::Bool: {
      bool b = v != 0;
      if ((changed = ImGui::Checkbox(name, &b))) v = b ? 1 : 0;
      break;
    }
    case ParamType::Choice: {
      int x = int(v);
      const char* cur = x >= 0 && x < int(s.choices.size()) ? s.choices[size_t(x)].c_str() : "?";
      if (ImGui::BeginCombo(name, cur)) {
        for (int i = 0; i < int(s.choices.size()); ++i)
          if (ImGui::Selectable(s.choices[size_t(i)].c_str(), i == x)) {
            v = i;
            changed = true;
          }
        ImGui::EndCombo();
      }
      break;
    }
  }
  std::string tip = s.tooltip + (s.changes_weights ? "\n\nChanges the weights' shapes: the first use of a value "
                                                     "converts the model (cached afterwards)."
                                                   : "");
  tooltip(tip.c_str());
  mark_target(app, target.c_str());
  ImGui::SameLine(0, ImGui::GetStyle().ItemInnerSpacing.x);
  ImGui::TextColored(param_colour(index), "%s", s.name.c_str());
  tooltip(tip.c_str());
  return changed;
}

// Text in coloured runs, word-wrapped to the available width.
void rich_text(const std::vector<Run>& runs) {
  ImFont* f = ImGui::GetFont();
  const float fs = ImGui::GetFontSize(), line = ImGui::GetTextLineHeight();
  const ImVec2 o = ImGui::GetCursorScreenPos();
  const float width = std::max(fs * 4, ImGui::GetContentRegionAvail().x);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  float x = 0, y = 0;
  for (const Run& r : runs)
    for (size_t a = 0; a < r.text.size();) {
      size_t b = r.text.find(' ', a);
      b = b == std::string::npos ? r.text.size() : b + 1;  // a word with its trailing space
      const std::string w = r.text.substr(a, b - a);
      const float ww = f->CalcTextSizeA(fs, FLT_MAX, 0, w.c_str()).x;
      if (x > 0 && x + ww > width) {
        x = 0;
        y += line;
      }
      dl->AddText(f, fs, ImVec2(o.x + x, o.y + y), r.colour, w.c_str());
      x += ww;
      a = b;
    }
  ImGui::Dummy(ImVec2(width, y + line));
}

// The variant picker, grouped by family. Returns true when another variant was picked.
void sampling_sliders(const char* id, float& temperature, int& top_k, const char* when) {
  const float fs = ImGui::GetFontSize();
  const std::string tid = std::string("##temp_") + id, kid = std::string("##topk_") + id;
  ImGui::SetNextItemWidth(fs * 6.5f);
  ImGui::SliderFloat(tid.c_str(), &temperature, 0, 2, "temp %.2f");
  tooltip(("sampling temperature (0 = always the most likely character)" + std::string(when)).c_str());
  ImGui::SameLine();
  ImGui::SetNextItemWidth(fs * 5.5f);
  ImGui::SliderInt(kid.c_str(), &top_k, 0, 65, "top-k %d");
  tooltip(("sample only from the k most likely characters (0 = all)" + std::string(when)).c_str());
}

bool variant_combo(const char* id, std::string& variant) {
  bool changed = false;
  if (ImGui::BeginCombo(id, variant.c_str(), ImGuiComboFlags_HeightLarge)) {
    std::string family;
    for (const auto& v : variant_registry()) {
      if (v.family != family) {
        family = v.family;
        ImGui::TextColored(kDim, "%s", family.c_str());
      }
      std::string label = "  " + v.name + (v.causal ? "" : "  (non-causal)");
      if (ImGui::Selectable(label.c_str(), v.name == variant) && v.name != variant) {
        variant = v.name;
        changed = true;
      }
      tooltip((v.description + "\n" + v.citation).c_str());
    }
    ImGui::EndCombo();
  }
  return changed;
}

void draw_colorbar(const HeatmapStyle& st, float vmax, ImVec2 pos, float w, float h) {
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const int n = 48;
  for (int k = 0; k < n; ++k) {
    float a[3], b[3];
    colormap_rgb(st.colormap, st.signed_values, float(k) / n, a);
    colormap_rgb(st.colormap, st.signed_values, float(k + 1) / n, b);
    ImU32 ca = ImGui::GetColorU32(ImVec4(a[0], a[1], a[2], 1)), cb = ImGui::GetColorU32(ImVec4(b[0], b[1], b[2], 1));
    dl->AddRectFilledMultiColor(ImVec2(pos.x + w * k / n, pos.y), ImVec2(pos.x + w * (k + 1) / n + 0.5f, pos.y + h), ca,
                                cb, cb, ca);
  }
  char lo[32], hi[32];
  if (st.scale == Scale::Row) {
    std::snprintf(lo, sizeof lo, st.signed_values ? "-row max" : "0");
    std::snprintf(hi, sizeof hi, "row max");
  } else if (st.scale == Scale::Log) {
    std::snprintf(lo, sizeof lo, "%.0e", double(vmax) * std::pow(10.0, -double(st.log_decades)));
    std::snprintf(hi, sizeof hi, "%.3g", double(vmax));
  } else {
    std::snprintf(lo, sizeof lo, st.signed_values ? "%.3g" : "0", -double(vmax));
    std::snprintf(hi, sizeof hi, "%.3g", double(vmax));
  }
  const ImU32 tc = ImGui::GetColorU32(kDim);
  dl->AddText(ImVec2(pos.x - ImGui::CalcTextSize(lo).x - 6, pos.y + h * 0.5f - ImGui::GetFontSize() * 0.5f), tc, lo);
  dl->AddText(ImVec2(pos.x + w + 6, pos.y + h * 0.5f - ImGui::GetFontSize() * 0.5f), tc, hi);
}

}  // namespace attnscope::gui
