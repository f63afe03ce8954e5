// The sidebar's text panel: where the text comes from (typed, a held-out passage, generated), the unknown-character
// policy, the window the columns read, the text drawn character by character and the MoE routing strip.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <set>

#include "imgui.h"
#include "imgui_stdlib.h"
#include "registry.h"
#include "state.h"
#include "views.h"
#include "widgets.h"

namespace attnscope::gui {

namespace {

const Choice kSources[] = {
    {"Type", "type or paste any text; every edit recomputes every column"},
    {"Held-out passage", "a passage from the last 10% of Tiny Shakespeare, which the model never trained on"},
    {"Generate", "the model writes text from your prompt (KV-cache decoding), and the columns read it"},
};
const Choice kUnknown[] = {
    // index = TextState::unknown_policy
    {"skip", "characters the model has no token for are left out"},
    {"as space", "characters the model has no token for become a space"},
};

// The text drawn character by character: the window the columns see is highlighted, characters outside the
// vocabulary are red. Clicking a character moves the window there.
void draw_text_preview(App& app, float height) {
  ImGui::BeginChild("preview", ImVec2(0, height), true, ImGuiWindowFlags_NoBackground);  // the sidebar's colour
  const std::string& s = app.text.text;
  const TokenView& t = app.tokens;
  ImFont* font = app.fonts.mono;
  const float fs = font->FontSize;
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 origin = ImGui::GetCursorScreenPos();
  const float right = origin.x + ImGui::GetContentRegionAvail().x;
  std::set<size_t> unknown;
  for (const auto& u : t.unknown) unknown.insert(u.offset);
  size_t win_lo = 1, win_hi = 0;  // byte range of the window
  if (t.len > 0) {
    win_lo = t.offsets[size_t(t.start)];
    win_hi = t.offsets[size_t(t.start + t.len - 1)];
  }
  // the hard-characters strip under each character of the window: the first column's loss predicting it
  const ColumnResult* lr = app.columns.empty() ? nullptr : app.columns[0].shown.get();
  if (lr && (!lr->ok || lr->maps->char_loss.empty() || int(lr->tokens.size()) != t.len)) lr = nullptr;
  const float strip = lr ? std::max(2.f, fs * 0.2f) : 0, line = fs + strip + (lr ? 1 : 0);
  // byte offset -> token index, for clicks
  float x = origin.x, y = origin.y;
  const ImVec2 mouse = ImGui::GetIO().MousePos;
  const bool clicked = ImGui::IsWindowHovered() && ImGui::IsMouseClicked(0);
  size_t clicked_offset = SIZE_MAX;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    n = std::min(n, s.size() - i);
    std::string g = c == '\n' ? glyph('\n') : c < 32 ? glyph(char(c)) : s.substr(i, n);
    const float w = font->CalcTextSizeA(fs, FLT_MAX, 0, g.c_str()).x;
    if (x + w > right && c != '\n') {
      x = origin.x;
      y += line;
    }
    const bool in_win = i >= win_lo && i <= win_hi;
    const bool unk = unknown.count(i) > 0;
    ImVec2 a(x, y), b(x + w, y + fs);
    if (ImGui::IsRectVisible(a, b)) {
      if (unk)
        dl->AddRectFilled(a, b, IM_COL32(220, 60, 50, 200), 2);
      else if (in_win)
        dl->AddRectFilled(a, b, IM_COL32(60, 110, 200, 70));
      ImU32 col = unk         ? IM_COL32(255, 255, 255, 255)
                  : c == '\n' ? IM_COL32(120, 130, 150, 255)
                  : in_win    ? IM_COL32(235, 238, 245, 255)
                              : IM_COL32(130, 134, 145, 255);
      dl->AddText(font, fs, a, col, g.c_str());
      if (lr && in_win) {  // window index of the character at byte i
        const int k = int(std::lower_bound(t.offsets.begin(), t.offsets.end(), i) - t.offsets.begin()) - t.start;
        if (k >= 0 && k < t.len && t.offsets[size_t(t.start + k)] == i) {
          dl->AddRectFilled(ImVec2(a.x, b.y + 1), ImVec2(b.x - 1, b.y + 1 + strip), loss_colour(char_loss_at(*lr, k)));
          if (ImGui::IsWindowHovered() && mouse.x >= a.x && mouse.x < b.x && mouse.y >= a.y && mouse.y < b.y + strip)
            ImGui::SetTooltip("%s\n(column 1, %s; the strip under the text: dark easy, red hard)",
                              loss_tip(app, *lr, k).c_str(), app.columns[0].variant.c_str());
        }
      }
    }
    if (clicked && mouse.x >= a.x && mouse.x < b.x && mouse.y >= a.y && mouse.y < b.y) clicked_offset = i;
    x += w;
    if (c == '\n') {
      x = origin.x;
      y += line;
    }
    i += n;
  }
  ImGui::Dummy(ImVec2(1, y + line - origin.y));
  if (clicked_offset != SIZE_MAX && int(t.ids.size()) > t.len) {
    auto it = std::lower_bound(t.offsets.begin(), t.offsets.end(), clicked_offset);
    app.text.window_start = int(it - t.offsets.begin());
  }
  ImGui::EndChild();
}

// MoE models: which expert each character of the window goes to (the router's first choice), one strip per layer,
// from the active column's result; hovering a cell names every chosen expert and its gate.
void draw_routing_strip(App& app) {
  if (app.columns.empty()) return;
  const int ci = std::clamp(app.active_column, 0, int(app.columns.size()) - 1);
  const Column& c = app.columns[size_t(ci)];
  if (!c.shown || !c.shown->ok || c.shown->maps->experts <= 0 || c.shown->maps->routing.empty()) return;
  const AttentionMaps& m = *c.shown->maps;
  const float fs = ImGui::GetFontSize();
  ImGui::PushTextWrapPos(0);
  ImGui::TextColored(kDim, "Experts per character (column %d, %s): first choice", ci + 1, c.variant.c_str());
  ImGui::PopTextWrapPos();
  tooltip(
      "the MoE feed-forward's router: each cell is one character of the window, its colour the expert it goes to "
      "first; one strip per layer. Hover a cell for every expert it uses and the gates.");
  auto colour = [&](int32_t e) {
    float r, g, b;
    ImGui::ColorConvertHSVtoRGB(float(e) / float(m.experts), 0.65f, 0.95f, r, g, b);
    return ImGui::GetColorU32(ImVec4(r, g, b, 1));
  };
  const float lw = ImGui::CalcTextSize("L00").x + 4, strip = fs * 0.7f;
  const float cw = (ImGui::GetContentRegionAvail().x - lw) / float(std::max<int64_t>(1, m.queries));
  const ImVec2 o = ImGui::GetCursorScreenPos();
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 mouse = ImGui::GetIO().MousePos;
  for (int64_t l = 0; l < m.layers; ++l) {
    const float y = o.y + float(l) * (strip + 2);
    dl->AddText(ImVec2(o.x, y + (strip - fs) * 0.5f), ImGui::GetColorU32(kDim), ("L" + std::to_string(l)).c_str());
    for (int64_t t = 0; t < m.queries; ++t) {
      const ImVec2 a(o.x + lw + cw * float(t), y), b(o.x + lw + cw * float(t + 1), y + strip);
      dl->AddRectFilled(a, b, colour(m.expert(l, t, 0)));
      if (ImGui::IsWindowHovered() && mouse.x >= a.x && mouse.x < b.x && mouse.y >= a.y && mouse.y < b.y) {
        const TokenView& tv = app.tokens;
        const std::string& text = app.text.text;
        const size_t at = size_t(tv.start + t) < tv.offsets.size() ? tv.offsets[size_t(tv.start + t)] : text.size();
        const unsigned char b0 = at < text.size() ? static_cast<unsigned char>(text[at]) : 0;
        const size_t n = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 1;
        const std::string ch = at >= text.size() ? "?" : b0 < 0x80 ? glyph(char(b0)) : text.substr(at, n);
        std::string tip = "character " + std::to_string(t) + " '" + ch + "', layer " + std::to_string(l) + ":";
        for (int64_t k = 0; k < m.top_k; ++k) {
          char g[48];
          std::snprintf(g, sizeof g, " expert %d (gate %.2f)", m.expert(l, t, k),
                        double(m.routing_gate[size_t((l * m.queries + t) * m.top_k + k)]));
          tip += g;
        }
        ImGui::SetTooltip("%s", tip.c_str());
      }
    }
  }
  ImGui::Dummy(ImVec2(1, float(m.layers) * (strip + 2)));
  for (int32_t e = 0; e < int32_t(m.experts); ++e) {  // the legend
    if (e) ImGui::SameLine(0, fs * 0.3f);
    const ImVec2 p = ImGui::GetCursorScreenPos();
    dl->AddRectFilled(p, ImVec2(p.x + fs * 0.8f, p.y + fs), colour(e));
    ImGui::Dummy(ImVec2(fs * 0.8f, fs));
    ImGui::SameLine(0, 2);
    ImGui::TextColored(kDim, "%d", e);
  }
}

// Held-out passages: another one, and their length.
void draw_passage_controls(App& app) {
  TextState& ts = app.text;
  const float fs = ImGui::GetFontSize();
  if (ImGui::Button("\xE2\x86\xBB New passage")) {  // ↻
    ++ts.passage_seed;
    new_passage(app);
  }
  mark_target(app, "new_passage");
  tooltip("another random passage from the held-out 10% of the corpus");
  ImGui::SameLine();
  ImGui::SetNextItemWidth(-fs * 5.5f);
  if (ImGui::SliderInt("length", &ts.passage_len, 16, 2000, "%d chars", ImGuiSliderFlags_Logarithmic)) new_passage(app);
  tooltip("characters per passage; longer than the model's context, a window slides over it");
  if (!app.corpus_error.empty()) ImGui::TextColored(kRed, "%s", app.corpus_error.c_str());
}

// Generated text: the prompt, the sampling options, and Write / Stop (the worker writes in the background).
void draw_generate_controls(App& app) {
  TextState& ts = app.text;
  const float fs = ImGui::GetFontSize();
  ImGui::SetNextItemWidth(-fs * 4);
  ImGui::InputTextMultiline("prompt", &ts.prompt, ImVec2(-fs * 4, fs * 2.6f));
  ImGui::SetNextItemWidth(fs * 7);
  ImGui::SliderInt("##chars", &ts.gen_tokens, 1, 1000, "%d chars");
  tooltip("characters to write");
  ImGui::SameLine();
  sampling_sliders("text", ts.gen_temperature, ts.gen_top_k);
  GenerateState g = app.worker->generate_state();
  const bool mine = g.job == ts.gen_job && ts.gen_job != 0;
  if (mine && g.running) {
    if (ImGui::Button("Stop")) app.worker->cancel_generate();
    ImGui::SameLine();
    ImGui::TextColored(kAmber, "writing... %zu characters", g.text.size());
  } else {
    ImGui::BeginDisabled(!app.model);
    if (ImGui::Button("\xE2\x96\xB6 Write##generate")) {
      Encoded e = app.model->tokenizer().encode(ts.prompt, UnknownPolicy::Replace);
      if (e.ids.empty()) e.ids.push_back(app.model->tokenizer().replacement_id());
      GenerateJob j;
      j.prompt = e.ids;
      j.options.tokens = ts.gen_tokens;
      j.options.temperature = ts.gen_temperature;
      j.options.top_k = ts.gen_top_k;
      j.options.seed = ts.gen_seed++;
      ts.gen_job = app.worker->start_generate(std::move(j));
      ts.text = ts.prompt;
      ts.window_start = 0;
    }
    mark_target(app, "generate");
    ImGui::EndDisabled();
    if (mine && !g.error.empty()) {
      ImGui::SameLine();
      ImGui::TextColored(kRed, "%s", g.error.c_str());
    }
  }
}

// The unknown-character policy, and the window the columns read when the text is longer than the context.
void draw_window_controls(App& app) {
  TextState& ts = app.text;
  const float fs = ImGui::GetFontSize();
  const TokenView& t = app.tokens;
  ImGui::SetNextItemWidth(fs * 9.5f);
  combo_from_table("unknown characters", &ts.unknown_policy, kUnknown, IM_ARRAYSIZE(kUnknown));
  if (!t.unknown_message.empty()) {
    ImGui::PushTextWrapPos(0);
    ImGui::TextColored(kAmber, "\xE2\x9A\xA0 %s (%s, highlighted below)", t.unknown_message.c_str(),
                       ts.unknown_policy == 0 ? "skipped" : "replaced by a space");
    ImGui::PopTextWrapPos();
  }
  if (app.model) {
    const int n = int(t.ids.size());
    const int ctx = int(app.model->config().context);
    ImGui::TextColored(kDim, "%d characters; the model's context is %d", n, ctx);
    if (n > 0) {
      int len = ts.window_len > 0 ? ts.window_len : std::min(n, ctx);
      ImGui::SetNextItemWidth(-fs * 6);
      if (ImGui::SliderInt("window size", &len, 1, std::max(1, std::min(n, ctx)), "%d chars")) ts.window_len = len;
      tooltip("how many characters the columns read at once (at most the context)");
      if (n > t.len) {
        ImGui::SetNextItemWidth(-fs * 6);
        int start = t.start;
        if (ImGui::SliderInt("window start", &start, 0, n - t.len)) ts.window_start = start;
        mark_target(app, "window_start");
        tooltip("the text is longer than the window: slide it, or click a character below");
        ImGui::TextColored(kAmber, "showing characters %d\xE2\x80\x93%d of %d (highlighted)", t.start,
                           t.start + t.len - 1, n);
      }
    }
  }
}

// The second text (keys and values), when a column runs cross-attention.
void draw_kv_text(App& app) {
  bool any_kv = false;
  for (const Column& c : app.columns) {
    const VariantInfo* info = find_variant(c.variant);
    any_kv = any_kv || (info && info->needs_kv_text);
  }
  if (!any_kv) return;
  const float fs = ImGui::GetFontSize();
  ImGui::TextUnformatted("Second text (keys and values for cross-attention)");
  ImGui::PushFont(app.fonts.mono);
  ImGui::InputTextMultiline("##kv", &app.text.kv_text, ImVec2(-1, fs * 3.5f));
  ImGui::PopFont();
  if (!app.tokens.kv_message.empty()) ImGui::TextColored(kAmber, "%s", app.tokens.kv_message.c_str());
}

}  // namespace

void draw_text_panel(App& app) {
  TextState& ts = app.text;
  ImGui::PushFont(app.fonts.title);
  ImGui::TextUnformatted("Text");
  ImGui::PopFont();
  int src = int(ts.source);
  for (int i = 0; i < IM_ARRAYSIZE(kSources); ++i) {
    if (i) ImGui::SameLine();
    if (ImGui::RadioButton(kSources[i].label, src == i)) {
      ts.source = TextSource(i);
      if (ts.source == TextSource::Passage) new_passage(app);
    }
    tooltip(kSources[i].tooltip);
  }
  const float fs = ImGui::GetFontSize();
  if (ts.source == TextSource::Passage)
    draw_passage_controls(app);
  else if (ts.source == TextSource::Generated)
    draw_generate_controls(app);
  ImGui::Spacing();
  ImGui::PushFont(app.fonts.mono);
  if (ImGui::InputTextMultiline("##text", &ts.text, ImVec2(-1, fs * 7.5f))) ts.source = TextSource::Typed;
  ImGui::PopFont();
  mark_target(app, "text");
  tooltip("the text every column reads; every edit recomputes");
  draw_window_controls(app);
  draw_kv_text(app);
  ImGui::Spacing();
  const float foot = ImGui::GetTextLineHeightWithSpacing() * 3.3f;
  const Column* active = app.columns.empty()
                             ? nullptr
                             : &app.columns[size_t(std::clamp(app.active_column, 0, int(app.columns.size()) - 1))];
  const bool moe = active && active->shown && active->shown->ok && active->shown->maps->experts > 0;
  const float routing = moe ? float(active->shown->maps->layers) * (fs * 0.7f + 2) + fs * 4.5f : 0;
  draw_text_preview(app, std::max(fs * 4, ImGui::GetContentRegionAvail().y - foot - routing));
  draw_routing_strip(app);
  ImGui::PushTextWrapPos(0);
  ImGui::TextColored(kDim,
                     "Rows are queries (each character), columns the keys it attends to. Hover a heatmap to "
                     "read a weight; click a head in the grid to open it.");
  ImGui::PopTextWrapPos();
}

}  // namespace attnscope::gui
