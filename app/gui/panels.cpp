// The window's panels: toolbar, text sidebar and the variant columns. Widgets are drawn from the state in
// state.h and from the tables below; nothing here calls LibTorch (the worker does).
#include <algorithm>
#include <cfloat>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <random>
#include <set>

#include "error.h"
#include "imgui.h"
#include "imgui_stdlib.h"
#include "registry.h"
#include "state.h"

namespace attnscope::gui {

namespace {

// ------------------------------------------------------------------------------------------------ tables

struct Choice {
  const char* label;
  const char* tooltip;
};
const Choice kColormaps[] = {
    {"viridis", "perceptually uniform, dark blue (0) to yellow (max)"},
    {"magma", "perceptually uniform, black (0) to light yellow (max)"},
};
const Choice kScales[] = {
    {"linear", "colour proportional to the weight, 0 .. the matrix's largest weight"},
    {"log", "colour by log10(weight): shows the small weights too (range set by 'decades')"},
    {"row-normalised", "each query row scaled to its own largest weight: where does each character look?"},
};
const Choice kViews[] = {
    {"weights", "the effective attention matrix"},
    {"mask", "which (query, key) pairs the variant computes at all (hatched: skipped)"},
};
const Choice kSources[] = {
    {"Type", "type or paste any text; every edit recomputes every column"},
    {"Held-out passage", "a passage from the last 10% of Tiny Shakespeare, which the model never trained on"},
    {"Generate", "the model writes text from your prompt (KV-cache decoding), and the columns read it"},
};
const Choice kUnknown[] = {  // index = TextState::unknown_policy
    {"skip", "characters the model has no token for are left out"},
    {"as space", "characters the model has no token for become a space"},
};

const ImVec4 kRed(0.95f, 0.36f, 0.33f, 1), kAmber(0.98f, 0.72f, 0.28f, 1), kGreen(0.45f, 0.82f, 0.50f, 1),
    kDim(0.62f, 0.64f, 0.70f, 1), kAccent(0.40f, 0.65f, 1.0f, 1);

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

void tooltip(const char* s) {
  if (ImGui::IsItemHovered()) {
    ImGui::BeginTooltip();
    ImGui::PushTextWrapPos(ImGui::GetFontSize() * 30);
    ImGui::TextUnformatted(s);
    ImGui::PopTextWrapPos();
    ImGui::EndTooltip();
  }
}

void badge(const char* text, ImVec4 col, const char* tip = nullptr) {
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

// SameLine when the next item of width w still fits in the cell, else a new line.
void flow(float w) {
  ImGui::SameLine(0, ImGui::GetFontSize() * 1.2f);
  if (w > ImGui::GetContentRegionAvail().x) ImGui::NewLine();
}

std::string human_bytes(double b) {
  char s[32];
  if (b < 1024) std::snprintf(s, sizeof s, "%.0f B", b);
  else if (b < 1024 * 1024) std::snprintf(s, sizeof s, "%.1f KiB", b / 1024);
  else std::snprintf(s, sizeof s, "%.2f MiB", b / 1024 / 1024);
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
std::string quoted(char c) {
  if (c == '\n') return "'\\n'";
  if (c == ' ') return "' '";
  return "'" + std::string(1, c) + "'";
}

uint64_t fnv(const std::vector<int64_t>& v, uint64_t h = 1469598103934665603ull) {
  for (int64_t x : v) {
    h ^= static_cast<uint64_t>(x) + 0x9e3779b97f4a7c15ull;
    h *= 1099511628211ull;
  }
  return h;
}

std::vector<int> head_divisors(int64_t n_head, const ParamSpec& s) {
  std::vector<int> d;
  for (int g = 1; g <= n_head; ++g)
    if (n_head % g == 0 && g >= s.min && g <= s.max) d.push_back(g);
  return d;
}

ParamValues default_params(const std::string& variant, const App& app) {
  const VariantInfo* info = find_variant(variant);
  if (!info) return {};
  ParamValues p = resolve_params(info->params, variant, {});
  // divisor_of_heads parameters: snap the default to a divisor of this model's head count
  if (app.model)
    for (const auto& s : info->params)
      if (s.divisor_of_heads) {
        auto d = head_divisors(app.model->config().n_head, s);
        if (!d.empty() && std::find(d.begin(), d.end(), int(p[s.name])) == d.end()) {
          int best = d.front();
          for (int g : d)
            if (std::abs(g - p[s.name]) < std::abs(best - p[s.name])) best = g;
          p[s.name] = best;
        }
      }
  return p;
}

}  // namespace

void mark_target(App& app, const char* name) {
  ImVec2 a = ImGui::GetItemRectMin(), b = ImGui::GetItemRectMax();
  app.targets[name] = ImVec4(a.x, a.y, b.x, b.y);
}

// ------------------------------------------------------------------------------------------------ state

void add_column(App& app, const std::string& variant) {
  if (int(app.columns.size()) >= kMaxColumns) return;
  Column c;
  c.id = app.next_column_id++;
  c.variant = find_variant(variant) ? variant : "mha";
  c.params = default_params(c.variant, app);
  app.columns.push_back(std::move(c));
}

void init_columns(App& app, const std::vector<std::string>& specs) {
  std::vector<std::string> s = specs;
  if (s.empty()) s = {"mha", "gqa:groups=2"};
  for (const auto& spec : s) {
    const size_t colon = spec.find(':');
    const std::string v = spec.substr(0, colon);
    const VariantInfo& info = get_variant(v);  // throws Error naming the known variants
    add_column(app, v);
    if (colon == std::string::npos) continue;
    std::string rest = spec.substr(colon + 1);
    ParamValues given;
    size_t at = 0;
    while (at <= rest.size()) {
      size_t comma = rest.find(',', at);
      std::string kv = rest.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
      if (!kv.empty()) given.insert(parse_param(info.params, v, kv));
      if (comma == std::string::npos) break;
      at = comma + 1;
    }
    Column& c = app.columns.back();
    for (auto& [k, val] : given) c.params[k] = val;
  }
}

void new_passage(App& app) {
  const std::string& v = app.corpus_valid;
  if (v.empty()) {
    app.text.text = "ROMEO:\nBut, soft! what light through yonder window breaks?\nIt is the east, and Juliet is the sun.\n";
    return;
  }
  std::mt19937_64 rng(app.text.passage_seed);
  const size_t len = size_t(std::max(8, app.text.passage_len));
  size_t start = std::uniform_int_distribution<size_t>(0, v.size() > len ? v.size() - len - 1 : 0)(rng);
  size_t nl = v.find('\n', start);  // begin at a line start
  if (nl != std::string::npos && nl + 1 + len <= v.size()) start = nl + 1;
  std::string p = v.substr(start, len);
  app.text.text = p;
  app.text.source = TextSource::Passage;
  app.text.window_start = 0;
}

void update_tokens(App& app) {
  TokenView& t = app.tokens;
  if (!app.model) {
    t = TokenView{};
    app.tokens_key.clear();
    return;
  }
  const std::string key = app.text.text + '\x01' + std::to_string(app.text.unknown_policy) + '\x01' + app.text.kv_text;
  const Tokenizer& tok = app.model->tokenizer();
  const UnknownPolicy pol = app.text.unknown_policy == 0 ? UnknownPolicy::Skip : UnknownPolicy::Replace;
  if (key != app.tokens_key) {
    Encoded e = tok.encode(app.text.text, pol);
    t.ids = std::move(e.ids);
    t.offsets = std::move(e.source_offset);
    t.unknown = std::move(e.unknown);
    t.unknown_message = t.unknown.empty() ? "" : describe_unknown(t.unknown);
    Encoded kv = tok.encode(app.text.kv_text, pol);
    t.kv_ids = std::move(kv.ids);
    t.kv_message = kv.unknown.empty() ? "" : describe_unknown(kv.unknown);
    const int64_t ctx = app.model->config().context;
    if (int64_t(t.kv_ids.size()) > ctx) t.kv_ids.resize(size_t(ctx));
    app.tokens_key = key;
  }
  const int n = int(t.ids.size());
  const int ctx = int(app.model->config().context);
  int len = app.text.window_len > 0 ? std::min(app.text.window_len, ctx) : ctx;
  len = std::min(len, n);
  t.len = len;
  t.start = std::clamp(app.text.window_start, 0, std::max(0, n - len));
  app.text.window_start = t.start;
}

void submit_columns(App& app) {
  if (!app.model) return;
  const std::vector<int64_t> win = app.tokens.window();
  const uint64_t h = fnv(win, win.size());
  for (Column& c : app.columns) {
    const VariantInfo* info = find_variant(c.variant);
    const bool kv = info && info->needs_kv_text;
    const std::string key = model_key(c.variant, c.params, false) + "#" + std::to_string(h) +
                            (kv ? "#" + std::to_string(fnv(app.tokens.kv_ids)) : "");
    if (key == c.submitted_key) continue;
    c.submitted_key = key;
    ColumnRequest r;
    r.seq = ++c.seq;
    r.variant = c.variant;
    r.params = c.params;
    r.tokens = win;
    if (kv) r.kv_tokens = app.tokens.kv_ids;
    app.worker->submit(c.id, std::move(r));
  }
}

void poll_results(App& app) {
  for (Column& c : app.columns) {
    auto r = app.worker->result(c.id);
    if (r && r != c.shown) {
      c.shown = r;
      c.tiles_key.clear();  // upload the new matrices
    }
  }
}

bool columns_settled(const App& app) {
  if (!app.model) return !app.worker->loading();
  for (const Column& c : app.columns)
    if (!c.shown || c.shown->seq != c.seq) return false;
  return true;
}

// ------------------------------------------------------------------------------------------------ toolbar

namespace {

void draw_toolbar(App& app) {
  ImGui::PushFont(app.fonts.title);
  ImGui::TextColored(kAccent, "attnscope");
  ImGui::PopFont();
  ImGui::SameLine();
  ImGui::AlignTextToFramePadding();
  if (app.model) {
    const ModelConfig& c = app.model->config();
    ImGui::TextColored(kDim, "  model: %s  \xC2\xB7  %" PRId64 " layers \xC3\x97 %" PRId64 " heads  \xC2\xB7  d_model %" PRId64
                       "  \xC2\xB7  context %" PRId64 "  \xC2\xB7  %.2fM parameters  \xC2\xB7  %s  \xC2\xB7  %s",
                       c.variant_summary().c_str(), c.n_layer, c.n_head, c.d_model, c.context,
                       double(app.model->parameter_count()) / 1e6, pos_kind_name(c.position),
                       app.model->device_name().c_str());
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", app.model_dir.c_str());
  } else if (app.worker->loading()) {
    ImGui::TextColored(kAmber, "  loading the model from %s ...", app.model_dir.c_str());
  } else {
    ImGui::TextColored(kRed, "  no model");
  }
  // status, right-aligned
  const bool busy = app.worker->busy();
  const char* status = busy ? "computing..." : "ready";
  const float w = ImGui::CalcTextSize(status).x + ImGui::GetFontSize();
  ImGui::SameLine(ImGui::GetWindowContentRegionMax().x - w);
  ImGui::TextColored(busy ? kAmber : kGreen, "\xE2\x97\x8F %s", status);  // ●

  // second row: columns and display
  const bool full = int(app.columns.size()) >= kMaxColumns;
  ImGui::BeginDisabled(full || !app.model);
  if (ImGui::Button("+ Add column")) add_column(app, app.columns.empty() ? "mha" : app.columns.back().variant);
  mark_target(app, "add_column");
  ImGui::EndDisabled();
  tooltip(full ? "at most 6 columns" : "another variant column, side by side (remove with \xC3\x97, reorder with \xE2\x97\x80 \xE2\x96\xB6)");
  ImGui::SameLine(0, ImGui::GetFontSize() * 1.5f);
  const float combo_w = ImGui::GetFontSize() * 8.5f;
  ImGui::SetNextItemWidth(combo_w);
  int cm = int(app.view.colormap);
  if (combo_from_table("colormap", &cm, kColormaps, IM_ARRAYSIZE(kColormaps))) app.view.colormap = Colormap(cm);
  ImGui::SameLine(0, ImGui::GetFontSize());
  ImGui::SetNextItemWidth(combo_w);
  int sc = int(app.view.scale);
  if (combo_from_table("scale", &sc, kScales, IM_ARRAYSIZE(kScales))) app.view.scale = Scale(sc);
  mark_target(app, "scale");
  if (app.view.scale == Scale::Log) {
    ImGui::SameLine();
    ImGui::SetNextItemWidth(ImGui::GetFontSize() * 5);
    ImGui::SliderFloat("decades", &app.view.log_decades, 1, 8, "%.0f");
    tooltip("log scale: how many powers of ten below the largest weight still get a colour");
  }
  ImGui::SameLine(0, ImGui::GetFontSize());
  ImGui::Checkbox("hatch skipped", &app.view.mask_overlay);
  tooltip("pairs the variant does not compute (the causal future, sparse patterns) are hatched instead of coloured");
  ImGui::SameLine(0, ImGui::GetFontSize());
  ImGui::Checkbox("labels", &app.view.labels);
  tooltip("the text's characters along the axes, when the cells are large enough");
  ImGui::SameLine(0, ImGui::GetFontSize());
  if (ImGui::Checkbox("large text", &app.view.presentation)) app.fonts_dirty = true;
  tooltip("larger fonts for a projector (the fonts are rebuilt at the new size, not scaled)");
  mark_target(app, "presentation");
}

// ------------------------------------------------------------------------------------------------ text

// The text drawn character by character: the window the columns see is highlighted, characters outside the
// vocabulary are red. Clicking a character moves the window there.
void draw_text_preview(App& app, float height) {
  ImGui::BeginChild("preview", ImVec2(0, height), true);
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
      y += fs;
    }
    const bool in_win = i >= win_lo && i <= win_hi;
    const bool unk = unknown.count(i) > 0;
    ImVec2 a(x, y), b(x + w, y + fs);
    if (ImGui::IsRectVisible(a, b)) {
      if (unk) dl->AddRectFilled(a, b, IM_COL32(220, 60, 50, 200), 2);
      else if (in_win) dl->AddRectFilled(a, b, IM_COL32(60, 110, 200, 70));
      ImU32 col = unk ? IM_COL32(255, 255, 255, 255)
                      : c == '\n' ? IM_COL32(120, 130, 150, 255)
                                  : in_win ? IM_COL32(235, 238, 245, 255) : IM_COL32(130, 134, 145, 255);
      dl->AddText(font, fs, a, col, g.c_str());
    }
    if (clicked && mouse.x >= a.x && mouse.x < b.x && mouse.y >= a.y && mouse.y < b.y) clicked_offset = i;
    x += w;
    if (c == '\n') {
      x = origin.x;
      y += fs;
    }
    i += n;
  }
  ImGui::Dummy(ImVec2(1, y + fs - origin.y));
  if (clicked_offset != SIZE_MAX && int(t.ids.size()) > t.len) {
    auto it = std::lower_bound(t.offsets.begin(), t.offsets.end(), clicked_offset);
    app.text.window_start = int(it - t.offsets.begin());
  }
  ImGui::EndChild();
}

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
  if (ts.source == TextSource::Passage) {
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
  } else if (ts.source == TextSource::Generated) {
    ImGui::SetNextItemWidth(-fs * 4);
    ImGui::InputTextMultiline("prompt", &ts.prompt, ImVec2(-fs * 4, fs * 2.6f));
    ImGui::SetNextItemWidth(fs * 7);
    ImGui::SliderInt("##chars", &ts.gen_tokens, 1, 1000, "%d chars");
    tooltip("characters to write");
    ImGui::SameLine();
    ImGui::SetNextItemWidth(fs * 6);
    ImGui::SliderFloat("##temp", &ts.gen_temperature, 0, 2, "temp %.2f");
    tooltip("sampling temperature (0 = always the most likely character)");
    ImGui::SameLine();
    ImGui::SetNextItemWidth(fs * 5);
    ImGui::SliderInt("##topk", &ts.gen_top_k, 0, 65, "top-k %d");
    tooltip("sample only from the k most likely characters (0 = all)");
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
  ImGui::Spacing();
  ImGui::PushFont(app.fonts.mono);
  if (ImGui::InputTextMultiline("##text", &ts.text, ImVec2(-1, fs * 7.5f))) ts.source = TextSource::Typed;
  ImGui::PopFont();
  mark_target(app, "text");
  tooltip("the text every column reads; every edit recomputes");

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
        ImGui::TextColored(kAmber, "showing characters %d\xE2\x80\x93%d of %d (highlighted)", t.start, t.start + t.len - 1, n);
      }
    }
  }
  bool any_kv = false;
  for (const Column& c : app.columns) {
    const VariantInfo* info = find_variant(c.variant);
    any_kv = any_kv || (info && info->needs_kv_text);
  }
  if (any_kv) {
    ImGui::TextUnformatted("Second text (keys and values for cross-attention)");
    ImGui::PushFont(app.fonts.mono);
    ImGui::InputTextMultiline("##kv", &ts.kv_text, ImVec2(-1, fs * 3.5f));
    ImGui::PopFont();
    if (!t.kv_message.empty()) ImGui::TextColored(kAmber, "%s", t.kv_message.c_str());
  }
  ImGui::Spacing();
  const float foot = ImGui::GetTextLineHeightWithSpacing() * 3.3f;
  draw_text_preview(app, std::max(fs * 4, ImGui::GetContentRegionAvail().y - foot));
  ImGui::PushTextWrapPos(0);
  ImGui::TextColored(kDim, "Rows are queries (each character), columns the keys it attends to. Hover a heatmap to "
                           "read a weight; click a head in the grid to open it.");
  ImGui::PopTextWrapPos();
}

// ------------------------------------------------------------------------------------------------ columns

struct ColumnActions {
  int remove = -1, left = -1, right = -1;
};

void draw_param(App& app, Column& c, const ParamSpec& s, int col_index) {
  double& v = c.params[s.name];
  const char* name = s.name.c_str();
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
        changed = ImGui::SliderInt(name, &x, int(s.min), int(s.max), "%d",
                                   s.log_scale ? ImGuiSliderFlags_Logarithmic : 0);
        if (changed && s.step > 1) x = int(s.min + std::round((x - s.min) / s.step) * s.step);
      }
      if (changed) v = x;
      break;
    }
    case ParamType::Float: {
      float x = float(v);
      const char* fmt = s.step >= 1 ? "%.0f" : s.step >= 0.1 ? "%.1f" : s.step >= 0.01 ? "%.2f" : "%.3g";
      changed = ImGui::SliderFloat(name, &x, float(s.min), float(s.max), fmt,
                                   s.log_scale ? ImGuiSliderFlags_Logarithmic : 0);
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
  mark_target(app, ("col" + std::to_string(col_index) + ".param." + s.name).c_str());
}

void draw_column_controls(App& app, Column& c, int index, int count, ColumnActions& act) {
  ImGui::PushID(c.id);
  const float bw = ImGui::GetFrameHeight();
  const float spacing = ImGui::GetStyle().ItemSpacing.x * 0.5f;
  ImGui::SetNextItemWidth(ImGui::GetContentRegionAvail().x - 3 * (bw + spacing));
  const VariantInfo* info = find_variant(c.variant);
  if (ImGui::BeginCombo("##variant", c.variant.c_str(), ImGuiComboFlags_HeightLarge)) {
    std::string family;
    for (const auto& v : variant_registry()) {
      if (v.family != family) {
        family = v.family;
        ImGui::TextColored(kDim, "%s", family.c_str());
      }
      std::string label = "  " + v.name + (v.causal ? "" : "  (non-causal)");
      if (ImGui::Selectable(label.c_str(), v.name == c.variant)) {
        c.variant = v.name;
        c.params = default_params(v.name, app);
        c.layer = std::max(0, c.layer);
      }
      tooltip((v.description + "\n" + v.citation).c_str());
    }
    ImGui::EndCombo();
  }
  mark_target(app, ("col" + std::to_string(index) + ".variant").c_str());
  info = find_variant(c.variant);
  ImGui::SameLine(0, spacing);
  ImGui::BeginDisabled(index == 0);
  if (ImGui::Button("\xE2\x97\x80", ImVec2(bw, 0))) act.left = index;  // ◀
  ImGui::EndDisabled();
  tooltip("move this column left");
  ImGui::SameLine(0, spacing);
  ImGui::BeginDisabled(index == count - 1);
  if (ImGui::Button("\xE2\x96\xB6", ImVec2(bw, 0))) act.right = index;  // ▶
  ImGui::EndDisabled();
  tooltip("move this column right");
  ImGui::SameLine(0, spacing);
  ImGui::BeginDisabled(count <= 1);
  if (ImGui::Button("\xC3\x97", ImVec2(bw, 0))) act.remove = index;  // ×
  mark_target(app, ("col" + std::to_string(index) + ".remove").c_str());
  ImGui::EndDisabled();
  tooltip("remove this column");

  if (info) {
    ImGui::PushTextWrapPos(0);
    ImGui::TextColored(kDim, "%s", info->description.c_str());
    ImGui::PopTextWrapPos();
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", info->citation.c_str());
  }
  // badges: how the weights came to be, causality, computing
  const auto& r = c.shown;
  if (r && r->ok) {
    const bool trained = r->maps.mode == "trained";
    badge(r->maps.mode.c_str(), trained ? kGreen : kAmber,
          trained ? "these weights were trained with this variant"
                  : "the trained weights were converted to this variant's shapes (not retrained): quality drops");
    ImGui::SameLine();
  }
  if (info && !info->causal) {
    badge("non-causal: sees future tokens", kRed,
          "this variant lets a character attend to characters after it: fine for analysis, impossible when "
          "writing text left to right");
    ImGui::SameLine();
  }
  if (info && info->needs_kv_text) {
    badge("keys: second text", kAccent, "cross-attention: keys and values come from the second text in the sidebar");
    ImGui::SameLine();
  }
  if (!r || r->seq != c.seq) ImGui::TextColored(kAmber, "computing...");
  else ImGui::Dummy(ImVec2(1, ImGui::GetFontSize() * 1.24f));  // keep the badge row's height

  if (info)
    for (const auto& s : info->params) draw_param(app, c, s, index);

  // layer, head, view
  const int L = r && r->ok ? int(r->maps.layers) : app.model ? int(app.model->config().n_layer) : 1;
  const int H = r && r->ok ? int(r->maps.heads) : app.model ? int(app.model->config().n_head) : 1;
  c.layer = std::clamp(c.layer, 0, std::max(0, L - 1));
  if (c.head >= H) c.head = H - 1;
  const float third = (ImGui::GetContentRegionAvail().x - 2 * ImGui::GetStyle().ItemSpacing.x) / 3;
  ImGui::SetNextItemWidth(third);
  ImGui::SliderInt("##layer", &c.layer, 0, std::max(0, L - 1), "layer %d");
  mark_target(app, ("col" + std::to_string(index) + ".layer").c_str());
  tooltip("which layer's attention (0 = closest to the characters)");
  ImGui::SameLine();
  ImGui::SetNextItemWidth(third);
  std::string hl = c.head < 0 ? "all heads" : "head " + std::to_string(c.head);
  if (ImGui::BeginCombo("##head", hl.c_str())) {
    if (ImGui::Selectable("all heads (grid)", c.head < 0)) c.head = -1;
    for (int h = 0; h < H; ++h)
      if (ImGui::Selectable(("head " + std::to_string(h)).c_str(), c.head == h)) c.head = h;
    ImGui::EndCombo();
  }
  mark_target(app, ("col" + std::to_string(index) + ".head").c_str());
  tooltip("one head, or every head of the layer as a grid");
  ImGui::SameLine();
  ImGui::SetNextItemWidth(third);
  int vw = int(c.view);
  if (combo_from_table("##view", &vw, kViews, IM_ARRAYSIZE(kViews))) c.view = View(vw);
  ImGui::PopID();
}

struct Hover {
  bool on = false;
  int head = 0, i = 0, j = 0;
};

// One matrix as an image with optional character labels; returns the hovered cell.
enum class Labels { None, Chars, Ticks };

// Position ticks when the characters do not fit: a round step at least `min_px` apart.
int tick_step(float cell_px, float min_px) {
  static const int steps[] = {1, 2, 4, 5, 8, 10, 16, 20, 25, 32, 50, 64, 100, 128, 200, 256, 500, 1000, 2000, 5000};
  for (int s : steps)
    if (float(s) * cell_px >= min_px) return s;
  return 10000;
}

Hover draw_matrix(App& app, Column& c, Heatmap& hm, int head, ImVec2 pos, float size, Labels labels,
                  const HeatmapStyle& style, const std::vector<int64_t>& qtok, const std::vector<int64_t>& ktok,
                  int qpos0, int kpos0) {
  Hover hv;
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const int T = hm.rows(), S = hm.cols();
  const float sx = size / float(S), sy = size / float(T);
  const GLuint tex = hm.render(app.program, int(size), int(size), style);
  if (tex) dl->AddImage(reinterpret_cast<ImTextureID>(static_cast<intptr_t>(tex)), pos, ImVec2(pos.x + size, pos.y + size));
  else dl->AddRectFilled(pos, ImVec2(pos.x + size, pos.y + size), IM_COL32(40, 40, 48, 255));
  // labels
  const Tokenizer* tok = app.model ? &app.model->tokenizer() : nullptr;
  if (labels == Labels::Ticks) {
    ImFont* f = app.fonts.small;
    const float lf = f->FontSize;
    const ImU32 col = IM_COL32(150, 155, 168, 255), tick = IM_COL32(120, 125, 138, 255);
    const float digit = f->CalcTextSizeA(lf, FLT_MAX, 0, "0").x;
    const int step_q = tick_step(sy, lf * 1.6f), step_k = tick_step(sx, digit * 5.f);
    for (int i = 0; i < T; ++i)
      if ((qpos0 + i) % step_q == 0) {
        const std::string n = std::to_string(qpos0 + i);
        const float y = pos.y + sy * (float(i) + 0.5f);
        float w = f->CalcTextSizeA(lf, FLT_MAX, 0, n.c_str()).x;
        dl->AddLine(ImVec2(pos.x - 3, y), ImVec2(pos.x, y), tick);
        dl->AddText(f, lf, ImVec2(pos.x - w - 5, y - lf * 0.5f), col, n.c_str());
      }
    for (int j = 0; j < S; ++j)
      if ((kpos0 + j) % step_k == 0) {
        const std::string n = std::to_string(kpos0 + j);
        const float x = pos.x + sx * (float(j) + 0.5f);
        float w = f->CalcTextSizeA(lf, FLT_MAX, 0, n.c_str()).x;
        dl->AddLine(ImVec2(x, pos.y - 3), ImVec2(x, pos.y), tick);
        dl->AddText(f, lf, ImVec2(x - w * 0.5f, pos.y - lf - 3), col, n.c_str());
      }
  }
  if (labels == Labels::Chars && tok) {
    ImFont* f = app.fonts.small;
    const float lf = f->FontSize;
    const ImU32 col = IM_COL32(200, 204, 214, 255);
    for (int i = 0; i < T && i < int(qtok.size()); ++i) {
      std::string g = glyph(tok->symbol(qtok[size_t(i)]));
      float w = f->CalcTextSizeA(lf, FLT_MAX, 0, g.c_str()).x;
      dl->AddText(f, lf, ImVec2(pos.x - w - 3, pos.y + sy * (float(i) + 0.5f) - lf * 0.5f), col, g.c_str());
    }
    for (int j = 0; j < S && j < int(ktok.size()); ++j) {
      std::string g = glyph(tok->symbol(ktok[size_t(j)]));
      float w = f->CalcTextSizeA(lf, FLT_MAX, 0, g.c_str()).x;
      dl->AddText(f, lf, ImVec2(pos.x + sx * (float(j) + 0.5f) - w * 0.5f, pos.y - lf - 2), col, g.c_str());
    }
  }
  const ImVec2 m = ImGui::GetIO().MousePos;
  if (ImGui::IsWindowHovered(ImGuiHoveredFlags_AllowWhenBlockedByActiveItem) && m.x >= pos.x && m.y >= pos.y &&
      m.x < pos.x + size && m.y < pos.y + size) {
    hv.on = true;
    hv.head = head;
    hv.j = std::clamp(int((m.x - pos.x) / sx), 0, S - 1);
    hv.i = std::clamp(int((m.y - pos.y) / sy), 0, T - 1);
    const ImU32 hl = IM_COL32(255, 255, 255, 150);
    dl->AddRect(ImVec2(pos.x, pos.y + sy * float(hv.i)), ImVec2(pos.x + size, pos.y + sy * float(hv.i + 1)), hl);
    dl->AddRect(ImVec2(pos.x + sx * float(hv.j), pos.y), ImVec2(pos.x + sx * float(hv.j + 1), pos.y + size), hl);
    dl->AddRect(ImVec2(pos.x + sx * float(hv.j) - 1, pos.y + sy * float(hv.i) - 1),
                ImVec2(pos.x + sx * float(hv.j + 1) + 1, pos.y + sy * float(hv.i + 1) + 1), IM_COL32(255, 255, 255, 255),
                0, 0, 2);
    (void)c;
  }
  return hv;
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
  if (st.scale == Scale::RowNormalised) {
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

void draw_column_body(App& app, Column& c, int index, float avail_h) {
  ImGui::PushID(c.id);
  const float fs = ImGui::GetFontSize();
  const float line = ImGui::GetTextLineHeightWithSpacing();
  const auto& r = c.shown;
  const VariantInfo* info = find_variant(c.variant);
  if (!app.model) {
    ImGui::PopID();
    return;
  }
  if (!r) {
    ImGui::TextColored(kDim, "computing the first result...");
    ImGui::PopID();
    return;
  }
  if (!r->ok) {
    ImGui::PushTextWrapPos(0);
    ImGui::TextColored(kRed, "This combination does not run:");
    ImGui::TextColored(kRed, "%s", r->error.c_str());
    ImGui::PopTextWrapPos();
    ImGui::TextColored(kDim, "Change a parameter or the variant above.");
    ImGui::PopID();
    return;
  }
  const AttentionMaps& m = r->maps;
  const int L = int(m.layers), H = int(m.heads), T = int(m.queries), S = int(m.keys);
  const int layer = std::clamp(c.layer, 0, L - 1);
  const bool grid = c.head < 0;
  const int head = grid ? 0 : std::min(c.head, H - 1);
  // (re)upload the matrices only when the result or the selection changes
  const std::string key = std::to_string(r->seq) + "/" + std::to_string(layer) + "/" + std::to_string(c.head);
  if (key != c.tiles_key) {
    c.tiles.clear();
    for (int h = grid ? 0 : head; h < (grid ? H : head + 1); ++h) {
      Heatmap hm;
      hm.set_data(&m.attn[m.idx(layer, h, 0, 0)], m.mask.empty() ? nullptr : &m.mask[m.idx(layer, h, 0, 0)], T, S);
      c.tiles.push_back(std::move(hm));
    }
    c.tiles_key = key;
  }
  HeatmapStyle st;
  st.colormap = app.view.colormap;
  st.scale = app.view.scale;
  st.view = c.view;
  st.signed_values = info && info->signed_display;
  st.mask_overlay = app.view.mask_overlay;
  st.log_decades = app.view.log_decades;

  // size: square, as large as the cell allows above the footer
  const float footer = line * 3.6f + fs * 0.9f;
  const float width = ImGui::GetContentRegionAvail().x;
  ImFont* lf = app.fonts.small;
  const float digit = lf->CalcTextSizeA(lf->FontSize, FLT_MAX, 0, "0").x;
  const float label_h = lf->FontSize + 4;
  float size = std::max(32.f, std::min(width, avail_h - footer));
  const float gap = grid ? fs * 1.1f : 0;
  int cols_grid = 1;
  if (grid) {  // the arrangement with the largest tiles
    float best = 0;
    for (int cg = 1; cg <= H; ++cg) {
      const int rg = (H + cg - 1) / cg;
      const float t = std::min(width / float(cg), (avail_h - footer) / float(rg)) - gap;
      if (t > best) best = t, cols_grid = cg;
    }
  }
  const int rows_grid = grid ? (H + cols_grid - 1) / cols_grid : 1;
  // characters on the axes when a cell is at least about a character wide, else position ticks
  const float cell_probe = (size - digit * 2) / float(std::max(T, S)) / float(cols_grid);
  Labels labels = Labels::None;
  if (app.view.labels) labels = cell_probe >= digit * 1.05f ? Labels::Chars : grid ? Labels::None : Labels::Ticks;
  const float lw = labels == Labels::Chars ? digit * 1.4f + 4 : labels == Labels::Ticks ? digit * 4 + 6 : 0;
  const float lh = labels == Labels::None ? 0 : label_h;
  size = std::min(width - lw, avail_h - footer - lh);
  const ImVec2 start = ImGui::GetCursorScreenPos();
  const float tile = grid ? std::min((width - lw) / float(cols_grid), (avail_h - footer - lh) / float(rows_grid)) - gap - lh
                          : size;
  const float total_w = grid ? cols_grid * (tile + gap + lw) : size + lw;
  const float x0 = start.x + std::max(0.f, (width - total_w) * 0.5f);
  Hover hv;
  for (size_t t = 0; t < c.tiles.size(); ++t) {
    const int gx = grid ? int(t) % cols_grid : 0, gy = grid ? int(t) / cols_grid : 0;
    ImVec2 p(x0 + lw + float(gx) * (tile + gap + lw), start.y + lh + float(gy) * (tile + gap + lh));
    if (grid) p.y += fs * 0.0f;
    const bool cross = info && info->needs_kv_text;
    Hover h = draw_matrix(app, c, c.tiles[t], grid ? int(t) : head, p, tile, labels, st, r->tokens,
                          cross ? r->kv_tokens : r->tokens, app.tokens.start, cross ? 0 : app.tokens.start);
    if (grid) {
      char hl[16];
      std::snprintf(hl, sizeof hl, "h%d", int(t));
      ImGui::GetWindowDrawList()->AddText(ImVec2(p.x, p.y + tile + 1), ImGui::GetColorU32(kDim), hl);
      if (h.on && ImGui::IsMouseClicked(0)) c.head = int(t);
    }
    if (h.on) hv = h;
  }
  const float used_h = grid ? rows_grid * (tile + gap + lh) : size + lh;
  ImGui::SetCursorScreenPos(ImVec2(start.x, start.y + used_h + fs * 0.3f));
  ImGui::Dummy(ImVec2(width, 1));
  mark_target(app, ("col" + std::to_string(index) + ".heatmap").c_str());
  app.targets["col" + std::to_string(index) + ".heatmap"] = ImVec4(x0 + lw, start.y + lh, x0 + lw + tile, start.y + lh + tile);

  // hover readout (fixed height: no jumping)
  const Tokenizer& tok = app.model->tokenizer();
  const auto& keys = info && info->needs_kv_text ? r->kv_tokens : r->tokens;
  if (hv.on && hv.i < int(r->tokens.size()) && hv.j < int(keys.size())) {
    const float w = m.at(layer, hv.head, hv.i, hv.j);
    const bool comp = m.mask.empty() || m.computed(layer, hv.head, hv.i, hv.j);
    const int pos0 = info && info->needs_kv_text ? 0 : app.tokens.start;
    ImGui::Text("query %d %s \xE2\x86\x92 key %d %s", pos0 + hv.i, quoted(tok.symbol(r->tokens[size_t(hv.i)])).c_str(),
                (info && info->needs_kv_text ? 0 : pos0) + hv.j, quoted(tok.symbol(keys[size_t(hv.j)])).c_str());
    ImGui::SameLine();
    if (comp) ImGui::TextColored(kAccent, "weight %.4f", double(w));
    else ImGui::TextColored(kDim, "not computed (%.3g)", double(w));
    if (grid) {
      ImGui::SameLine();
      ImGui::TextColored(kDim, "head %d", hv.head);
    }
  } else {
    ImGui::TextColored(kDim, "layer %d \xC2\xB7 %s \xC2\xB7 %d\xC3\x97%d \xC2\xB7 hover a cell", layer,
                       grid ? "all heads" : ("head " + std::to_string(head)).c_str(), T, S);
  }
  // colour bar
  {
    const float bw = std::min(width * 0.5f, fs * 14);
    ImVec2 p = ImGui::GetCursorScreenPos();
    p.x += (width - bw) * 0.5f;
    if (c.view == View::Weights) draw_colorbar(st, c.tiles.empty() ? 1.f : c.tiles[0].vmax(), p, bw, fs * 0.6f);
    else {
      ImDrawList* dl = ImGui::GetWindowDrawList();
      dl->AddRectFilled(p, ImVec2(p.x + fs * 0.9f, p.y + fs * 0.7f), IM_COL32(250, 199, 77, 255));
      dl->AddText(ImVec2(p.x + fs * 1.2f, p.y - fs * 0.2f), ImGui::GetColorU32(kDim), "computed");
      dl->AddRectFilled(ImVec2(p.x + fs * 6, p.y), ImVec2(p.x + fs * 6.9f, p.y + fs * 0.7f), IM_COL32(60, 62, 70, 255));
      dl->AddText(ImVec2(p.x + fs * 7.2f, p.y - fs * 0.2f), ImGui::GetColorU32(kDim), "skipped");
    }
    ImGui::Dummy(ImVec2(width, fs * 0.9f));
  }
  // numbers
  int64_t cache = 0;
  for (int64_t b : m.cache_formula_bytes) cache += b;
  if (std::isnan(m.loss)) ImGui::TextColored(kDim, "loss  n/a");
  else ImGui::Text("loss %.3f nats/char (%.2f bits)", m.loss, m.loss / std::log(2.0));
  tooltip("mean next-character loss over this window (lower = the model predicts the text better)");
  char buf[64];
  std::snprintf(buf, sizeof buf, "forward %.1f ms", m.forward_ms);
  flow(ImGui::CalcTextSize(buf).x);
  ImGui::TextUnformatted(buf);
  tooltip(r->model_cached ? "model from the cache" : "first use: the model was converted/copied for these parameters");
  ImGui::Text("KV cache %s", human_bytes(double(cache)).c_str());
  tooltip(("bytes a decoder would cache for these " + std::to_string(T) + " characters, summed over " +
           std::to_string(L) + " layers (fp32); per token per layer: " + (info ? info->cache_formula : std::string("?")))
              .c_str());
  std::snprintf(buf, sizeof buf, "pairs computed %.1f%%", 100.0 * r->computed_fraction);
  flow(ImGui::CalcTextSize(buf).x);
  ImGui::TextUnformatted(buf);
  tooltip("share of all (query, key) pairs this variant computes, over every layer and head; full causal attention "
          "computes a little over half");
  ImGui::PopID();
}

void draw_columns(App& app) {
  if (!app.model) {
    ImGui::Spacing();
    if (app.worker->loading()) {
      ImGui::TextColored(kAmber, "Loading the model from %s ...", app.model_dir.c_str());
    } else {
      ImGui::PushTextWrapPos(0);
      ImGui::TextColored(kRed, "No model: %s", app.worker->model_error().c_str());
      ImGui::TextUnformatted("Train one (a few minutes on a laptop) and start attnscope again:");
      ImGui::PushFont(app.fonts.mono);
      ImGui::TextUnformatted("  attnscope train --out assets/models/mha --steps 3000");
      ImGui::PopFont();
      ImGui::TextUnformatted("or open another checkpoint with `attnscope gui --model DIR`.");
      ImGui::PopTextWrapPos();
    }
    return;
  }
  if (!app.program_error.empty()) ImGui::TextColored(kRed, "heatmap shader: %s", app.program_error.c_str());
  const int n = int(app.columns.size());
  ColumnActions act;
  ImGuiTableFlags flags = ImGuiTableFlags_BordersInnerV | ImGuiTableFlags_SizingStretchSame | ImGuiTableFlags_PadOuterX;
  if (ImGui::BeginTable("columns", std::max(1, n), flags)) {
    ImGui::TableNextRow();
    for (int i = 0; i < n; ++i) {
      ImGui::TableSetColumnIndex(i);
      draw_column_controls(app, app.columns[size_t(i)], i, n, act);
    }
    ImGui::TableNextRow();
    ImGui::TableSetColumnIndex(0);
    const float avail = ImGui::GetWindowPos().y + ImGui::GetWindowHeight() - ImGui::GetCursorScreenPos().y -
                        ImGui::GetStyle().WindowPadding.y;
    for (int i = 0; i < n; ++i) {
      ImGui::TableSetColumnIndex(i);
      ImGui::Spacing();
      draw_column_body(app, app.columns[size_t(i)], i, avail - ImGui::GetStyle().ItemSpacing.y);
    }
    ImGui::EndTable();
  }
  if (act.remove >= 0 && n > 1) {
    app.worker->forget(app.columns[size_t(act.remove)].id);
    app.columns.erase(app.columns.begin() + act.remove);
  } else if (act.left > 0) {
    std::swap(app.columns[size_t(act.left)], app.columns[size_t(act.left - 1)]);
  } else if (act.right >= 0 && act.right + 1 < n) {
    std::swap(app.columns[size_t(act.right)], app.columns[size_t(act.right + 1)]);
  }
}

}  // namespace

void draw_ui(App& app) {
  const ImGuiViewport* vp = ImGui::GetMainViewport();
  ImGui::SetNextWindowPos(vp->WorkPos);
  ImGui::SetNextWindowSize(vp->WorkSize);
  ImGuiWindowFlags wf = ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_NoMove | ImGuiWindowFlags_NoSavedSettings |
                        ImGuiWindowFlags_NoBringToFrontOnFocus;
  ImGui::Begin("attnscope", nullptr, wf);
  app.targets.clear();
  draw_toolbar(app);
  ImGui::Separator();
  const float side = std::min(ImGui::GetFontSize() * 24.f, vp->WorkSize.x * 0.32f);
  ImGui::BeginChild("sidebar", ImVec2(side, 0), true);
  draw_text_panel(app);
  ImGui::EndChild();
  ImGui::SameLine();
  ImGui::BeginChild("columns_area", ImVec2(0, 0), false);
  draw_columns(app);
  ImGui::EndChild();
  ImGui::End();
  if (app.view.show_demo) ImGui::ShowDemoWindow(&app.view.show_demo);
}

}  // namespace attnscope::gui
