// The window's panels: toolbar, text sidebar and the variant columns. Widgets are drawn from the state in
// state.h and from the tables below; nothing here calls LibTorch (the worker does).
#include <algorithm>
#include <cfloat>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <random>
#include <set>
#include <unistd.h>

#include "error.h"
#include "imgui.h"
#include "imgui_internal.h"  // SetItemUsingMouseWheel: the wheel zooms a heatmap instead of scrolling
#include "imgui_stdlib.h"
#include "registry.h"
#include "state.h"
#include "widgets.h"

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
    {"cividis", "perceptually uniform and colour-vision-deficiency friendly, navy (0) to yellow (max)"},
    {"grayscale", "black (0) to white (max)"},
};
const Choice kScales[] = {
    {"linear", "colour proportional to the weight, 0 .. the matrix's largest weight"},
    {"log", "colour by log10(weight): shows the small weights too (range set by 'decades')"},
    {"per row", "each query row scaled to its own largest weight: where does each character look?"},
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

}  // namespace

// ------------------------------------------------------------------------------------------------ widgets.h

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

// A row's title: small caps-like dim text over a thin rule.
void section(const char* title) {
  ImGui::Spacing();
  const ImVec2 p = ImGui::GetCursorScreenPos();
  const float w = ImGui::GetContentRegionAvail().x;
  ImGui::TextColored(kAccent, "%s", title);
  const float tw = ImGui::CalcTextSize(title).x;
  const float y = p.y + ImGui::GetFontSize() * 0.55f;
  ImGui::GetWindowDrawList()->AddLine(ImVec2(p.x + tw + 8, y), ImVec2(p.x + w, y), ImGui::GetColorU32(ImGuiCol_Separator));
}

namespace {

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

std::vector<LayerSpec> column_layers(const Column& c, int64_t n_layer) {
  if (c.per_layer) return c.layers;
  if (c.variant == "custom" && !c.mask.empty()) return std::vector<LayerSpec>(size_t(n_layer), {c.variant, c.params, c.mask});
  return {};
}

const VariantInfo* layer_variant(const Column& c, int layer) {
  if (c.per_layer && layer >= 0 && layer < int(c.layers.size())) return find_variant(c.layers[size_t(layer)].variant);
  return find_variant(c.variant);
}

void set_per_layer(App& app, Column& c, bool on) {
  c.per_layer = on && app.model;
  if (c.per_layer && c.layers.size() != size_t(app.model->config().n_layer))
    c.layers.assign(size_t(app.model->config().n_layer), LayerSpec{c.variant, c.params, c.mask});
}

CustomMask* edited_mask(App& app, Column& c) {
  CustomMask* m = nullptr;
  if (c.per_layer) {
    if (c.layer >= 0 && c.layer < int(c.layers.size()) && c.layers[size_t(c.layer)].variant == "custom")
      m = &c.layers[size_t(c.layer)].mask;
  } else if (c.variant == "custom") {
    m = &c.mask;
  }
  if (m && m->empty() && app.model) *m = causal_mask(app.model->config().context);  // paint over plain causal
  return m;
}

void submit_columns(App& app) {
  if (!app.model) return;
  const std::vector<int64_t> win = app.tokens.window();
  const uint64_t h = fnv(win, win.size());
  for (Column& c : app.columns) {
    ColumnRequest r;
    r.variant = c.variant;
    r.params = c.params;
    r.layers = column_layers(c, app.model->config().n_layer);
    bool kv = false;
    try {
      kv = r.needs_kv_text();
    } catch (const Error&) {
      kv = false;  // an unknown variant: the worker reports it
    }
    const std::string key = (r.layers.empty() ? model_key(c.variant, c.params, false) : layers_key(r.layers)) + "#" +
                            std::to_string(h) + (kv ? "#" + std::to_string(fnv(app.tokens.kv_ids)) : "");
    if (key == c.submitted_key) continue;
    c.submitted_key = key;
    c.submitted_at = Clock::now();
    c.latency_logged = false;
    r.seq = ++c.seq;
    r.tokens = win;
    if (kv) r.kv_tokens = app.tokens.kv_ids;
    app.worker->submit(c.id, std::move(r));
  }
}

void poll_results(App& app) {
  for (Column& c : app.columns) {
    auto r = app.worker->result(c.id);
    // Only the result of the latest request is shown: an older one (computed while the inputs changed) is dropped.
    if (r && r != c.shown && r->seq == c.seq) {
      c.shown = r;
      c.tiles_key.clear();  // upload the new matrices
      c.mask_key.clear();
      c.timing = ColumnTiming{};
      if (r->ok) app.last_compute_ms = r->maps.forward_ms;
    }
    if (c.shown) {
      ColumnTiming t = app.worker->timing(c.id);
      if (t.seq == c.shown->seq) c.timing = std::move(t);
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
  ImGui::Checkbox("skip col 0", &app.view.exclude_first);
  tooltip("leave the first key out of the colour scale: attention sinks (most weight on the first character) "
          "otherwise wash out everything else; the first column saturates");
  ImGui::SameLine(0, ImGui::GetFontSize());
  ImGui::Checkbox("hatch skipped", &app.view.mask_overlay);
  tooltip("pairs the variant does not compute (the causal future, sparse patterns) are hatched instead of coloured");
  ImGui::SameLine(0, ImGui::GetFontSize());
  ImGui::Checkbox("labels", &app.view.labels);
  tooltip("the text's characters along the axes, when the cells are large enough");
  ImGui::SameLine(0, ImGui::GetFontSize());
  if (ImGui::Checkbox("link layer/head", &app.view.link) && app.view.link && !app.columns.empty()) {
    const Column& a = app.columns[size_t(std::clamp(app.active_column, 0, int(app.columns.size()) - 1))];
    set_layer_head(app, app.active_column, a.layer, a.head);
  }
  mark_target(app, "link");
  tooltip("every column shows the same layer and head (arrow keys: \xE2\x86\x90 \xE2\x86\x92 head, "
          "\xE2\x86\x91 \xE2\x86\x93 layer)");
  ImGui::SameLine(0, ImGui::GetFontSize());
  ImGui::Checkbox("difference", &app.view.show_diff);
  mark_target(app, "diff");
  tooltip("a window comparing two columns: |A - B| or A - B, and KL(A || B) per query row");
  ImGui::SameLine(0, ImGui::GetFontSize());
  if (ImGui::Checkbox("generation", &app.gen.open) && !app.gen.open) app.gen.playing = false;
  mark_target(app, "generation");
  tooltip("every column's model writes from one prompt, token by token: the newest query's attention, what each "
          "cache holds and its bytes, with play, step and a scrubber");
  ImGui::SameLine(0, ImGui::GetFontSize());
  ImGui::Checkbox("KV calculator", &app.kv.open);
  mark_target(app, "kv_calc");
  tooltip("cache bytes of published model shapes per attention family, and which GPUs they fit");
}

void draw_menu(App& app) {
  if (!ImGui::BeginMenuBar()) return;
  draw_file_menu(app);
  if (ImGui::BeginMenu("View")) {
    if (ImGui::BeginMenu("UI scale")) {
      static const float scales[] = {0.75f, 1.0f, 1.25f, 1.5f, 1.75f, 2.0f};
      for (float s : scales) {
        char label[16];
        std::snprintf(label, sizeof label, "%.0f%%", double(s) * 100);
        if (ImGui::MenuItem(label, nullptr, std::fabs(app.view.ui_scale - s) < 0.01f)) {
          app.view.ui_scale = s;
          app.fonts_dirty = true;
        }
      }
      ImGui::EndMenu();
    }
    if (ImGui::BeginMenu("Colormap")) {
      for (int i = 0; i < IM_ARRAYSIZE(kColormaps); ++i)
        if (ImGui::MenuItem(kColormaps[i].label, nullptr, int(app.view.colormap) == i)) app.view.colormap = Colormap(i);
      ImGui::EndMenu();
    }
    ImGui::MenuItem("Difference window", nullptr, &app.view.show_diff);
    ImGui::MenuItem("Generation view", nullptr, &app.gen.open);
    ImGui::MenuItem("KV-cache calculator", nullptr, &app.kv.open);
    ImGui::MenuItem("Link layer/head across columns", nullptr, &app.view.link);
    ImGui::MenuItem("Exclude the first key from colour scales", nullptr, &app.view.exclude_first);
    ImGui::Separator();
    ImGui::MenuItem("Dear ImGui demo", nullptr, &app.view.show_demo);
    ImGui::EndMenu();
  }
  ImGui::EndMenuBar();
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

// MoE models: which expert each character of the window goes to (the router's first choice), one strip per layer,
// from the active column's result; hovering a cell names every chosen expert and its gate.
void draw_routing_strip(App& app) {
  if (app.columns.empty()) return;
  const int ci = std::clamp(app.active_column, 0, int(app.columns.size()) - 1);
  const Column& c = app.columns[size_t(ci)];
  if (!c.shown || !c.shown->ok || c.shown->maps.experts <= 0 || c.shown->maps.routing.empty()) return;
  const AttentionMaps& m = c.shown->maps;
  const float fs = ImGui::GetFontSize();
  ImGui::PushTextWrapPos(0);
  ImGui::TextColored(kDim, "Experts per character (column %d, %s): first choice", ci + 1, c.variant.c_str());
  ImGui::PopTextWrapPos();
  tooltip("the MoE feed-forward's router: each cell is one character of the window, its colour the expert it goes to "
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
  const Column* active = app.columns.empty() ? nullptr
                         : &app.columns[size_t(std::clamp(app.active_column, 0, int(app.columns.size()) - 1))];
  const bool moe = active && active->shown && active->shown->ok && active->shown->maps.experts > 0;
  const float routing = moe ? float(active->shown->maps.layers) * (fs * 0.7f + 2) + fs * 4.5f : 0;
  draw_text_preview(app, std::max(fs * 4, ImGui::GetContentRegionAvail().y - foot - routing));
  draw_routing_strip(app);
  ImGui::PushTextWrapPos(0);
  ImGui::TextColored(kDim, "Rows are queries (each character), columns the keys it attends to. Hover a heatmap to "
                           "read a weight; click a head in the grid to open it.");
  ImGui::PopTextWrapPos();
}

// ------------------------------------------------------------------------------------------------ columns

struct ColumnActions {
  int remove = -1, left = -1, right = -1;
};

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
  mark_target(app, target.c_str());
  ImGui::SameLine(0, ImGui::GetStyle().ItemInnerSpacing.x);
  ImGui::TextColored(param_colour(index), "%s", s.name.c_str());
  tooltip(tip.c_str());
  return changed;
}

std::string short_dir(const std::string& dir) {  // the last two path components: "models/gqa"
  size_t a = dir.find_last_of('/');
  if (a == std::string::npos || a == 0) return dir;
  size_t b = dir.find_last_of('/', a - 1);
  return b == std::string::npos ? dir : dir.substr(b + 1);
}

// Text in coloured runs, word-wrapped to the available width.
struct Run {
  std::string text;
  ImU32 colour;
};
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

// The formula with each {param} in its slider's colour (the braces dropped).
std::vector<Run> formula_runs(const VariantInfo& v) {
  std::vector<Run> runs;
  const std::string& f = v.explain.formula;
  const ImU32 plain = ImGui::GetColorU32(ImGuiCol_Text);
  size_t at = 0;
  while (at < f.size()) {
    const size_t open = f.find('{', at), close = open == std::string::npos ? open : f.find('}', open);
    if (close == std::string::npos) {
      runs.push_back({f.substr(at), plain});
      break;
    }
    const std::string name = f.substr(open + 1, close - open - 1);
    size_t k = 0;
    while (k < v.params.size() && v.params[k].name != name) ++k;
    runs.push_back({f.substr(at, open - at), plain});
    runs.push_back({name, k < v.params.size() ? ImGui::GetColorU32(param_colour(k)) : plain});
    at = close + 1;
  }
  return runs;
}

// A label and its value in one wrapped line.
void fact(const char* label, const std::string& value) {
  rich_text({{std::string(label) + "  ", ImGui::GetColorU32(kDim)}, {value, ImGui::GetColorU32(ImGuiCol_Text)}});
}

// The explanation of the selected layer's variant (registry.h's Explanation), beside this column's measurements;
// below the column's rows, in its scrolling body.
void draw_explanation(App& app, Column& c, int index) {
  const VariantInfo* v = layer_variant(c, c.layer);
  if (!v) return;
  ImGui::SetNextItemOpen(c.explain_open);
  if (!c.explain_open) return;
  if (c.explain_scroll > 0) {  // just opened: bring it into view (the heatmap keeps its size above)
    ImGui::SetScrollHereY(0);
    --c.explain_scroll;
  }
  const std::string title = "Explanation: " + v->name + (c.per_layer ? " (layer " + std::to_string(c.layer) + ")" : "");
  section(title.c_str());
  mark_target(app, ("col" + std::to_string(index) + ".explanation").c_str());
  const float fs = ImGui::GetFontSize();
  ImGui::Indent(fs * 0.4f);
  ImGui::PushTextWrapPos(0);
  ImGui::TextColored(kDim, "%s", v->description.c_str());
  ImGui::PopTextWrapPos();
  ImGui::PushFont(app.fonts.mono);
  rich_text(formula_runs(*v));
  ImGui::PopFont();
  const ParamValues& p = c.per_layer && c.layer < int(c.layers.size()) ? c.layers[size_t(c.layer)].params : c.params;
  if (!v->params.empty()) {  // the symbols' current values, in their colours
    std::vector<Run> legend;
    for (size_t k = 0; k < v->params.size(); ++k) {
      auto it = p.find(v->params[k].name);
      legend.push_back({v->params[k].name + " = " + (it == p.end() ? "?" : format_param(v->params[k], it->second)) +
                            (k + 1 < v->params.size() ? ",  " : ""),
                        ImGui::GetColorU32(param_colour(k))});
    }
    rich_text(legend);
  }
  ImGui::PushTextWrapPos(0);
  ImGui::TextColored(kDim, "%s", v->citation.c_str());
  ImGui::PopTextWrapPos();
  fact("time", v->explain.time);
  fact("memory", v->explain.memory);
  fact("KV cache / token / layer", v->cache_formula + " bytes (b: bytes per element)");
  fact("causal", v->causal ? "yes: a character sees only itself and earlier ones"
                           : "no: characters see later ones too (cannot write text left to right)");
  ImGui::PushTextWrapPos(0);
  ImGui::TextUnformatted(v->explain.when.c_str());
  ImGui::PopTextWrapPos();
  // measured: this column's forward (all layers) and the scaling panel's single-layer bench of the variant
  std::vector<double> ms = c.timing.ms;
  std::sort(ms.begin(), ms.end());
  const auto& r = c.shown;
  std::string here = ms.size() < 3 ? "measuring..." : "";
  if (ms.size() >= 3 && r && r->ok) {
    char b[96];
    std::snprintf(b, sizeof b, "median %.2f ms for %lld chars, %lld layers", ms[ms.size() / 2],
                  (long long)r->maps.queries, (long long)r->maps.layers);
    here = b;
  }
  if (r && r->ok && c.layer < int(r->maps.cache_formula_bytes.size()) && r->maps.queries > 0)
    here += ";  cache " + human_bytes(double(r->maps.cache_formula_bytes[size_t(c.layer)]) / double(r->maps.queries)) +
            " / token in layer " + std::to_string(c.layer);
  ImGui::TextColored(kAccent, "measured");
  fact("this column", here);
  std::string bench;
  if (app.scaling.run) {
    std::vector<std::pair<int64_t, double>> pts;
    for (const BenchPoint& b : app.scaling.run->points())
      if (b.variant == v->name && b.status == "ok") pts.push_back({b.length, b.median_ms});
    std::sort(pts.begin(), pts.end());
    for (const auto& [len, m] : pts) {
      char b[48];
      std::snprintf(b, sizeof b, "%s%lld: %.2f ms", bench.empty() ? "" : ",  ", (long long)len, m);
      bench += b;
    }
    if (pts.size() >= 2 && pts.front().second > 0 && pts.back().second > 0) {
      char b[64];
      std::snprintf(b, sizeof b, "  (slope %.2f)", std::log(pts.back().second / pts.front().second) /
                                                      std::log(double(pts.back().first) / double(pts.front().first)));
      bench += b;
    }
  }
  fact("bench, one layer", bench.empty() ? "none yet: File > Scaling panel measures it" : bench);
  ImGui::Unindent(fs * 0.4f);
}

// The variant picker, grouped by family. Returns true when another variant was picked.
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

void draw_column_controls(App& app, Column& c, int index, int count, ColumnActions& act) {
  ImGui::PushID(c.id);
  const float bw = ImGui::GetFrameHeight();
  const float spacing = ImGui::GetStyle().ItemSpacing.x * 0.5f;
  const std::string col = "col" + std::to_string(index);
  ImGui::SetNextItemWidth(ImGui::GetContentRegionAvail().x - 3 * (bw + spacing));
  if (variant_combo("##variant", c.variant)) {
    c.params = default_params(c.variant, app);
    c.mask = CustomMask{};
    if (c.per_layer) c.layers.assign(c.layers.size(), LayerSpec{c.variant, c.params, {}});  // every layer
  }
  mark_target(app, (col + ".variant").c_str());
  const VariantInfo* info = find_variant(c.variant);
  if (info && ImGui::IsItemHovered() && !ImGui::IsPopupOpen("##variant"))
    ImGui::SetTooltip("%s\n%s%s", info->description.c_str(), info->citation.c_str(),
                      c.per_layer ? "\n\nper-layer column: picking a variant here sets every layer" : "");
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

  // badges: the model the column runs in, causality, the second text, computing
  const auto& r = c.shown;
  const bool current = r && r->seq == c.seq;
  if (current && r->ok) {
    const bool trained = r->maps.mode == "trained";
    const std::string label = (trained ? "trained \xC2\xB7 " : r->maps.mode + " \xC2\xB7 ") + short_dir(r->model_dir);
    badge(label.c_str(), trained ? kGreen : kAmber,
          (r->model_dir + (trained ? "\nthese weights were trained with this variant"
                                   : "\nno checkpoint trained with this variant (and these shapes) is shipped: the "
                                     "base model's weights were converted (not retrained), so quality drops"))
              .c_str());
    ImGui::SameLine();
  }
  if (info && !info->causal) {
    badge("non-causal", kRed,
          "this variant lets a character attend to characters after it: fine for analysis, impossible when "
          "writing text left to right");
    ImGui::SameLine();
  }
  if (info && info->needs_kv_text) {
    badge("keys: 2nd text", kAccent, "cross-attention: keys and values come from the second text in the sidebar");
    ImGui::SameLine();
  }
  if (!current) ImGui::TextColored(kAmber, "computing...");
  else ImGui::Dummy(ImVec2(1, ImGui::GetFontSize() * 1.24f));  // keep the badge row's height

  bool per = c.per_layer;
  ImGui::BeginDisabled(!app.model);
  if (ImGui::Checkbox("per-layer", &per)) set_per_layer(app, c, per);
  ImGui::EndDisabled();
  mark_target(app, (col + ".per_layer").c_str());
  tooltip("a variant per layer (e.g. windows in the lower layers, full attention in the top one), built from the "
          "base model's weights; the heatmap and sparsity rows follow the selected layer");
  ImGui::SameLine(0, ImGui::GetFontSize());
  if (ImGui::Checkbox("explain", &c.explain_open)) c.explain_scroll = c.explain_open ? kScrollFrames : 0;
  mark_target(app, (col + ".explain").c_str());
  tooltip("the selected layer's variant explained: formula (parameters in their sliders' colours), cost, cache, "
          "when to use it, and what this column measures; shown below the rows (the column scrolls to it)");
  if (c.per_layer && !c.layers.empty()) {
    // One tab per layer (its variant in the tooltip; the selected one highlighted: the heatmap and sparsity rows show
    // it), then only the selected layer's variant and sliders: the column stays as tall for 12 layers as for 2.
    const int sel = std::clamp(c.layer, 0, int(c.layers.size()) - 1);
    const float fs = ImGui::GetFontSize();
    for (size_t l = 0; l < c.layers.size(); ++l) {
      const LayerSpec& ls = c.layers[l];
      ImGui::PushID(int(l));
      if (l) ImGui::SameLine(0, fs * 0.25f);
      const bool on = int(l) == sel;
      const bool differs = ls.variant != c.variant || ls.params != c.params;  // not the column's own variant
      ImGui::PushStyleColor(ImGuiCol_Button, on ? ImVec4(0.26f, 0.45f, 0.78f, 1) : ImGui::GetStyleColorVec4(ImGuiCol_FrameBg));
      const std::string tab = "L" + std::to_string(l) + (differs ? "*" : "");
      if (ImGui::Button(tab.c_str(), ImVec2(fs * 2.4f, 0))) set_layer_head(app, index, int(l), c.head);
      ImGui::PopStyleColor();
      mark_target(app, (col + ".L" + std::to_string(l)).c_str());
      std::string tip = "layer " + std::to_string(l) + ": " + ls.variant;
      if (const VariantInfo* li = find_variant(ls.variant))
        for (const ParamSpec& ps : li->params)
          if (ls.params.count(ps.name)) tip += " " + ps.name + "=" + format_param(ps, ls.params.at(ps.name));
      tooltip((tip + (differs ? "\n* not the column's " + c.variant : std::string()) + "\nclick: edit and show this layer").c_str());
      ImGui::PopID();
    }
    LayerSpec& ls = c.layers[size_t(sel)];
    ImGui::PushID(sel);
    ImGui::AlignTextToFramePadding();
    ImGui::TextColored(kAccent, "L%d", sel);
    ImGui::SameLine();
    ImGui::SetNextItemWidth(ImGui::GetContentRegionAvail().x);
    if (variant_combo("##lvariant", ls.variant)) {
      ls.params = default_params(ls.variant, app);
      ls.mask = CustomMask{};
    }
    mark_target(app, (col + ".L" + std::to_string(sel) + ".variant").c_str());
    if (const VariantInfo* li = find_variant(ls.variant))
      for (size_t k = 0; k < li->params.size(); ++k)
        draw_param(app, ls.params, li->params[k], k, col + ".L" + std::to_string(sel) + ".param." + li->params[k].name);
    ImGui::PopID();
  } else if (info) {
    for (size_t k = 0; k < info->params.size(); ++k)
      draw_param(app, c.params, info->params[k], k, col + ".param." + info->params[k].name);
  }

  // layer, head, view
  const int L = r && r->ok ? int(r->maps.layers) : app.model ? int(app.model->config().n_layer) : 1;
  const int H = r && r->ok ? int(r->maps.heads) : app.model ? int(app.model->config().n_head) : 1;
  const float third = (ImGui::GetContentRegionAvail().x - 2 * ImGui::GetStyle().ItemSpacing.x) / 3;
  int layer = std::clamp(c.layer, 0, std::max(0, L - 1)), head = std::min(c.head, H - 1);
  ImGui::SetNextItemWidth(third);
  if (ImGui::SliderInt("##layer", &layer, 0, std::max(0, L - 1), "layer %d")) set_layer_head(app, index, layer, head);
  mark_target(app, ("col" + std::to_string(index) + ".layer").c_str());
  tooltip("which layer's attention (0 = closest to the characters; \xE2\x86\x91 \xE2\x86\x93 keys)");
  ImGui::SameLine();
  ImGui::SetNextItemWidth(third);
  std::string hl = head < 0 ? "grid" : "head " + std::to_string(head);
  if (ImGui::BeginCombo("##head", hl.c_str())) {
    if (ImGui::Selectable("every layer \xC3\x97 head (grid)", head < 0)) set_layer_head(app, index, layer, -1);
    for (int h = 0; h < H; ++h)
      if (ImGui::Selectable(("head " + std::to_string(h)).c_str(), head == h)) set_layer_head(app, index, layer, h);
    ImGui::EndCombo();
  }
  mark_target(app, ("col" + std::to_string(index) + ".head").c_str());
  tooltip("one head, or every layer \xC3\x97 head as a grid (click a tile to open it; \xE2\x86\x90 \xE2\x86\x92 keys)");
  ImGui::SameLine();
  ImGui::SetNextItemWidth(third);
  int vw = int(c.view);
  if (combo_from_table("##view", &vw, kViews, IM_ARRAYSIZE(kViews))) c.view = View(vw);
  ImGui::PopID();
}

struct Hover {
  bool on = false;
  int layer = 0, head = 0, i = 0, j = 0;
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

// The visible part of a matrix in cells (zoomed single-head views show a part).
struct Window {
  float c0 = 0, r0 = 0, cols = 1, rows = 1;
};

Hover draw_matrix(App& app, Heatmap& hm, int head, ImVec2 pos, float size, Labels labels, HeatmapStyle style,
                  const Window& w, const std::vector<int64_t>& qtok, const std::vector<int64_t>& ktok, int qpos0,
                  int kpos0, bool dim) {
  Hover hv;
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const int T = hm.rows(), S = hm.cols();
  const float sx = size / w.cols, sy = size / w.rows;
  style.window[0] = w.c0;
  style.window[1] = w.r0;
  style.window[2] = w.c0 + w.cols;
  style.window[3] = w.r0 + w.rows;
  const GLuint tex = hm.render(app.program, int(size), int(size), style);
  const ImVec2 end(pos.x + size, pos.y + size);
  if (tex) dl->AddImage(reinterpret_cast<ImTextureID>(static_cast<intptr_t>(tex)), pos, end);
  else dl->AddRectFilled(pos, end, IM_COL32(40, 40, 48, 255));
  if (dim) {  // the inputs changed: this is the previous result until the new one arrives
    dl->AddRectFilled(pos, end, IM_COL32(14, 15, 19, 190));
    const char* t = "computing...";
    const ImVec2 ts = ImGui::CalcTextSize(t);
    dl->AddText(ImVec2(pos.x + (size - ts.x) * 0.5f, pos.y + (size - ts.y) * 0.5f), ImGui::GetColorU32(kAmber), t);
    return hv;
  }
  const int i0 = int(w.r0), i1 = std::min(T, int(std::ceil(w.r0 + w.rows)));
  const int j0 = int(w.c0), j1 = std::min(S, int(std::ceil(w.c0 + w.cols)));
  auto ypos = [&](int i) { return pos.y + sy * (float(i) + 0.5f - w.r0); };
  auto xpos = [&](int j) { return pos.x + sx * (float(j) + 0.5f - w.c0); };
  const Tokenizer* tok = app.model ? &app.model->tokenizer() : nullptr;
  dl->PushClipRect(ImVec2(pos.x - ImGui::GetFontSize() * 3, pos.y - ImGui::GetFontSize() * 1.2f),
                   ImVec2(end.x + 2, end.y + 2), true);
  if (labels == Labels::Ticks) {
    ImFont* f = app.fonts.small;
    const float lf = f->FontSize;
    const ImU32 col = IM_COL32(150, 155, 168, 255), tick = IM_COL32(120, 125, 138, 255);
    const float digit = f->CalcTextSizeA(lf, FLT_MAX, 0, "0").x;
    const int step_q = tick_step(sy, lf * 1.6f), step_k = tick_step(sx, digit * 5.f);
    for (int i = i0; i < i1; ++i)
      if ((qpos0 + i) % step_q == 0) {
        const std::string n = std::to_string(qpos0 + i);
        const float y = ypos(i), tw = f->CalcTextSizeA(lf, FLT_MAX, 0, n.c_str()).x;
        dl->AddLine(ImVec2(pos.x - 3, y), ImVec2(pos.x, y), tick);
        dl->AddText(f, lf, ImVec2(pos.x - tw - 5, y - lf * 0.5f), col, n.c_str());
      }
    for (int j = j0; j < j1; ++j)
      if ((kpos0 + j) % step_k == 0) {
        const std::string n = std::to_string(kpos0 + j);
        const float x = xpos(j), tw = f->CalcTextSizeA(lf, FLT_MAX, 0, n.c_str()).x;
        dl->AddLine(ImVec2(x, pos.y - 3), ImVec2(x, pos.y), tick);
        dl->AddText(f, lf, ImVec2(x - tw * 0.5f, pos.y - lf - 3), col, n.c_str());
      }
  }
  if (labels == Labels::Chars && tok) {
    ImFont* f = app.fonts.small;
    const float lf = f->FontSize;
    const ImU32 col = IM_COL32(200, 204, 214, 255);
    for (int i = i0; i < i1 && i < int(qtok.size()); ++i) {
      std::string g = glyph(tok->symbol(qtok[size_t(i)]));
      float tw = f->CalcTextSizeA(lf, FLT_MAX, 0, g.c_str()).x;
      dl->AddText(f, lf, ImVec2(pos.x - tw - 3, ypos(i) - lf * 0.5f), col, g.c_str());
    }
    for (int j = j0; j < j1 && j < int(ktok.size()); ++j) {
      std::string g = glyph(tok->symbol(ktok[size_t(j)]));
      float tw = f->CalcTextSizeA(lf, FLT_MAX, 0, g.c_str()).x;
      dl->AddText(f, lf, ImVec2(xpos(j) - tw * 0.5f, pos.y - lf - 2), col, g.c_str());
    }
  }
  dl->PopClipRect();
  const ImVec2 m = ImGui::GetIO().MousePos;
  if (ImGui::IsWindowHovered(ImGuiHoveredFlags_AllowWhenBlockedByActiveItem) && m.x >= pos.x && m.y >= pos.y &&
      m.x < end.x && m.y < end.y) {
    hv.on = true;
    hv.head = head;
    hv.j = std::clamp(int(w.c0 + (m.x - pos.x) / sx), 0, S - 1);
    hv.i = std::clamp(int(w.r0 + (m.y - pos.y) / sy), 0, T - 1);
    const ImU32 hl = IM_COL32(255, 255, 255, 150);
    const float cy = pos.y + sy * (float(hv.i) - w.r0), cx = pos.x + sx * (float(hv.j) - w.c0);
    dl->PushClipRect(pos, end, true);
    dl->AddRect(ImVec2(pos.x, cy), ImVec2(end.x, cy + sy), hl);
    dl->AddRect(ImVec2(cx, pos.y), ImVec2(cx + sx, end.y), hl);
    dl->AddRect(ImVec2(cx - 1, cy - 1), ImVec2(cx + sx + 1, cy + sy + 1), IM_COL32(255, 255, 255, 255), 0, 0, 2);
    dl->PopClipRect();
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

HeatmapStyle style_for(const App& app, const Column& c, const VariantInfo* info) {
  HeatmapStyle st;
  st.colormap = app.view.colormap;
  st.scale = app.view.scale;
  st.view = c.view;
  st.signed_values = info && info->signed_display;
  st.mask_overlay = app.view.mask_overlay;
  st.log_decades = app.view.log_decades;
  st.exclude_first = app.view.exclude_first;
  return st;
}

// Row 1: the heatmap of one head (zoom with the wheel, pan by dragging, double-click resets) or the grid of
// every layer x head (click a tile to open it).
void draw_attention_row(App& app, Column& c, int index, const ColumnResult& r, const VariantInfo* info, bool stale) {
  const float fs = ImGui::GetFontSize();
  const AttentionMaps& m = r.maps;
  const int L = int(m.layers), H = int(m.heads), T = int(m.queries), S = int(m.keys);
  const int layer = std::clamp(c.layer, 0, L - 1);
  const bool grid = c.head < 0;
  const int head = grid ? 0 : std::min(c.head, H - 1);
  const std::string key = std::to_string(r.seq) + "/" + std::to_string(layer) + "/" + std::to_string(c.head);
  if (key != c.tiles_key) {  // (re)upload only when the result or the selection changes
    c.tiles.clear();
    for (int l = grid ? 0 : layer; l < (grid ? L : layer + 1); ++l)
      for (int h = grid ? 0 : head; h < (grid ? H : head + 1); ++h) {
        Heatmap hm;
        hm.set_data(&m.attn[m.idx(l, h, 0, 0)], m.mask.empty() ? nullptr : &m.mask[m.idx(l, h, 0, 0)], T, S);
        c.tiles.push_back(std::move(hm));
      }
    c.tiles_key = key;
  }
  HeatmapStyle st = style_for(app, c, info);
  for (const Heatmap& hm : c.tiles) st.signed_values = st.signed_values || hm.has_negative();

  const float width = ImGui::GetContentRegionAvail().x;
  ImFont* lf = app.fonts.small;
  const float digit = lf->CalcTextSizeA(lf->FontSize, FLT_MAX, 0, "0").x;
  const ImVec2 start = ImGui::GetCursorScreenPos();
  const bool cross = info && info->needs_kv_text;
  const std::vector<int64_t>& keys = cross ? r.kv_tokens : r.tokens;
  const int qpos0 = app.tokens.start, kpos0 = cross ? 0 : app.tokens.start;
  Hover hv;
  if (grid) {
    const float lw = digit * 3 + 4, lh = lf->FontSize + 3, gap = std::max(2.f, fs * 0.15f);
    const float tile = std::max(8.f, (width - lw) / float(H) - gap);
    for (int h = 0; h < H; ++h) {
      const std::string t = "h" + std::to_string(h);
      ImGui::GetWindowDrawList()->AddText(lf, lf->FontSize, ImVec2(start.x + lw + float(h) * (tile + gap), start.y),
                                          ImGui::GetColorU32(kDim), t.c_str());
    }
    for (int l = 0; l < L; ++l) {
      const float y = start.y + lh + float(l) * (tile + gap);
      const std::string t = "L" + std::to_string(l);
      ImGui::GetWindowDrawList()->AddText(lf, lf->FontSize, ImVec2(start.x, y + tile * 0.5f - lf->FontSize * 0.5f),
                                          ImGui::GetColorU32(kDim), t.c_str());
      for (int h = 0; h < H; ++h) {
        const ImVec2 p(start.x + lw + float(h) * (tile + gap), y);
        Hover th = draw_matrix(app, c.tiles[size_t(l * H + h)], h, p, tile, Labels::None, st, Window{0, 0, float(S), float(T)},
                               r.tokens, keys, qpos0, kpos0, stale);
        if (th.on) {
          ImGui::GetWindowDrawList()->AddRect(ImVec2(p.x - 1, p.y - 1), ImVec2(p.x + tile + 1, p.y + tile + 1),
                                              ImGui::GetColorU32(kAccent), 0, 0, 2);
          if (ImGui::IsMouseClicked(0)) set_layer_head(app, index, l, h);
          hv = th;
          hv.layer = l;
        }
      }
    }
    const float used = lh + float(L) * (tile + gap);
    app.targets["col" + std::to_string(index) + ".heatmap"] = ImVec4(start.x + lw, start.y + lh, start.x + lw + tile, start.y + lh + tile);
    ImGui::SetCursorScreenPos(start);
    ImGui::Dummy(ImVec2(width, used));
  } else {
    // characters on the axes when a cell is at least about a character wide, else position ticks
    float size = width - digit * 4 - 6;
    Window w{c.x0, c.y0, float(S) / c.zoom, float(T) / c.zoom};
    // the cell size the heatmap gets: the column's width, or less when the rows below leave less height (measured
    // from the body's top, not from where it is scrolled to: the size must not follow the scroll)
    const float top = start.y - ImGui::GetWindowPos().y + ImGui::GetScrollY();
    const float room0 = ImGui::GetWindowHeight() - top - c.rows_h;
    const float cell = (std::max(fs * 8, std::min(width, room0)) - digit * 2) / std::max(w.cols, w.rows);
    Labels labels = Labels::None;
    if (app.view.labels) labels = cell >= digit * 1.05f ? Labels::Chars : Labels::Ticks;
    const float lw = labels == Labels::Chars ? digit * 1.4f + 4 : labels == Labels::Ticks ? digit * 4 + 6 : 0;
    const float lh = labels == Labels::None ? 0 : lf->FontSize + 4;
    // as large as the column allows while the rows below (their height last frame) still fit
    const float room = room0 - lh;
    size = std::max(fs * 8, std::min(width - lw, room));
    const ImVec2 p(start.x + lw + std::max(0.f, (width - lw - size) * 0.5f), start.y + lh);
    ImGui::SetCursorScreenPos(p);
    ImGui::InvisibleButton("##heatmap", ImVec2(size, size));
    const std::string tname = "col" + std::to_string(index) + ".heatmap";
    mark_target(app, tname.c_str());
    ImGuiIO& io = ImGui::GetIO();
    if (ImGui::IsItemHovered() && !stale) {
      ImGui::SetItemUsingMouseWheel();
      if (io.MouseWheel != 0) {  // zoom about the cell under the pointer
        const float fx = (io.MousePos.x - p.x) / size, fy = (io.MousePos.y - p.y) / size;
        const float ax = w.c0 + fx * w.cols, ay = w.r0 + fy * w.rows;
        c.zoom = std::clamp(c.zoom * std::pow(1.25f, io.MouseWheel), 1.f, std::max(1.f, float(std::max(T, S)) / 4));
        w.cols = float(S) / c.zoom;
        w.rows = float(T) / c.zoom;
        c.x0 = ax - fx * w.cols;
        c.y0 = ay - fy * w.rows;
      }
      if (ImGui::IsMouseDoubleClicked(0)) c.zoom = 1, c.x0 = c.y0 = 0;
    }
    if (ImGui::IsItemActive() && ImGui::IsMouseDragging(0, 1.f)) {  // pan
      c.x0 -= io.MouseDelta.x / size * w.cols;
      c.y0 -= io.MouseDelta.y / size * w.rows;
    }
    w.cols = float(S) / c.zoom;
    w.rows = float(T) / c.zoom;
    c.x0 = std::clamp(c.x0, 0.f, float(S) - w.cols);
    c.y0 = std::clamp(c.y0, 0.f, float(T) - w.rows);
    w.c0 = c.x0;
    w.r0 = c.y0;
    hv = draw_matrix(app, c.tiles[0], head, p, size, labels, st, w, r.tokens, keys, qpos0, kpos0, stale);
    hv.layer = layer;
    if (c.zoom > 1.001f) {
      char z[48];
      std::snprintf(z, sizeof z, "%.1f\xC3\x97  (double-click: reset)", double(c.zoom));
      ImGui::GetWindowDrawList()->AddText(lf, lf->FontSize, ImVec2(p.x + 4, p.y + size - lf->FontSize - 3),
                                          IM_COL32(255, 255, 255, 200), z);
    }
    ImGui::SetCursorScreenPos(ImVec2(start.x, p.y + size + fs * 0.3f));
    ImGui::Dummy(ImVec2(width, 1));
  }

  // hover readout (fixed height: no jumping)
  const Tokenizer& tok = app.model->tokenizer();
  if (hv.on && hv.i < int(r.tokens.size()) && hv.j < int(keys.size())) {
    const int hl = hv.layer;
    const float v = m.at(hl, hv.head, hv.i, hv.j);
    const bool comp = m.mask.empty() || m.computed(hl, hv.head, hv.i, hv.j);
    ImGui::Text("q %d %s \xE2\x86\x92 k %d %s", qpos0 + hv.i, quoted(tok.symbol(r.tokens[size_t(hv.i)])).c_str(),
                kpos0 + hv.j, quoted(tok.symbol(keys[size_t(hv.j)])).c_str());
    ImGui::SameLine();
    if (comp) ImGui::TextColored(kAccent, "%.4f", double(v));
    else ImGui::TextColored(kDim, "skipped");
    if (grid) {
      ImGui::SameLine();
      ImGui::TextColored(kDim, "L%d h%d", hl, hv.head);
    }
  } else if (grid) {
    ImGui::TextColored(kDim, "%d layers \xC3\x97 %d heads \xC2\xB7 click a tile", L, H);
  } else {
    ImGui::TextColored(kDim, "layer %d \xC2\xB7 head %d \xC2\xB7 %d\xC3\x97%d \xC2\xB7 wheel: zoom", layer, head, T, S);
  }
  // colour bar
  const float bw = std::min(width * 0.5f, fs * 14);
  ImVec2 p = ImGui::GetCursorScreenPos();
  p.x += (width - bw) * 0.5f;
  if (c.view == View::Weights) {
    float vmax = 0;
    for (const Heatmap& hm : c.tiles) vmax = std::max(vmax, hm.vmax(st.exclude_first));
    if (!grid && !c.tiles.empty()) vmax = c.tiles[0].vmax(st.exclude_first);
    draw_colorbar(st, vmax, p, bw, fs * 0.6f);
  } else {
    ImDrawList* dl = ImGui::GetWindowDrawList();
    dl->AddRectFilled(p, ImVec2(p.x + fs * 0.9f, p.y + fs * 0.7f), IM_COL32(250, 199, 77, 255));
    dl->AddText(ImVec2(p.x + fs * 1.2f, p.y - fs * 0.2f), ImGui::GetColorU32(kDim), "computed");
    dl->AddRectFilled(ImVec2(p.x + fs * 6, p.y), ImVec2(p.x + fs * 6.9f, p.y + fs * 0.7f), IM_COL32(60, 62, 70, 255));
    dl->AddText(ImVec2(p.x + fs * 7.2f, p.y - fs * 0.2f), ImGui::GetColorU32(kDim), "skipped");
  }
  ImGui::Dummy(ImVec2(width, fs * 0.9f));
}

// Row 2: which pairs are computed (the forward's mask of this layer and head), the share kept, the FLOPs
// against dense causal attention, and the tile map where tiling applies.
// The `custom` variant's painted mask, edited on a large square (queries down, keys across) with the helpers of
// custom_mask.h; every edit changes the column's request, so the trained model recomputes under it at once.
bool paints_mask(const Column& c) {
  const VariantInfo* v = layer_variant(c, c.layer);
  return v && v->name == "custom";
}

// The editor's switch, in the sparsity row.
void draw_mask_toggle(App& app, Column& c, int index) {
  if (!paints_mask(c)) return;
  if (ImGui::Checkbox("paint the mask", &c.mask_edit.open)) c.mask_edit.scroll = c.mask_edit.open ? kScrollFrames : 0;
  mark_target(app, ("col" + std::to_string(index) + ".mask.paint").c_str());
  tooltip("edit which (query, key) pairs the custom variant may compute: brush, rectangle or diagonal band, "
          "with the same trained weights (the future stays hidden: cells above the diagonal cannot be set); "
          "the editor opens below the rows (the column scrolls to it)");
}

// The editor itself, below the column's rows in its scrolling body.
void draw_mask_editor(App& app, Column& c, int T, int index) {
  MaskEdit& e = c.mask_edit;
  if (!e.open || !paints_mask(c) || T <= 0) return;
  CustomMask* mk = edited_mask(app, c);  // starts from plain causal the first time
  if (!mk) return;
  if (e.scroll > 0) {  // just opened: bring it into view
    ImGui::SetScrollHereY(0);
    --e.scroll;
  }
  const std::string col = "col" + std::to_string(index) + ".mask.";
  const float fs = ImGui::GetFontSize();
  section(("Painted mask" + (c.per_layer ? " (layer " + std::to_string(c.layer) + ")" : std::string())).c_str());
  int tool = int(e.tool);
  ImGui::RadioButton("brush", &tool, int(MaskTool::Brush));
  ImGui::SameLine();
  ImGui::RadioButton("rectangle", &tool, int(MaskTool::Rect));
  ImGui::SameLine();
  ImGui::RadioButton("band", &tool, int(MaskTool::Band));
  tooltip("drag from one diagonal to another: every cell with i - j between them");
  e.tool = MaskTool(tool);
  ImGui::SameLine(0, fs);
  ImGui::Checkbox("erase", &e.erase);
  if (e.tool == MaskTool::Brush) {
    ImGui::SetNextItemWidth(fs * 6);
    ImGui::SliderInt("radius", &e.radius, 0, 8, "radius %d");
  } else if (e.tool == MaskTool::Band) {
    ImGui::SetNextItemWidth(fs * 4.5f);
    ImGui::InputInt("##lo", &e.band_lo, 0);
    ImGui::SameLine();
    ImGui::TextUnformatted("\xE2\x89\xA4 i - j \xE2\x89\xA4");  // ≤ i - j ≤
    ImGui::SameLine();
    ImGui::SetNextItemWidth(fs * 4.5f);
    ImGui::InputInt("##hi", &e.band_hi, 0);
    ImGui::SameLine();
    if (ImGui::Button(e.erase ? "erase band" : "paint band")) paint_band(*mk, e.band_lo, e.band_hi, !e.erase);
    mark_target(app, (col + "band").c_str());
  }
  if (ImGui::Button("clear")) clear(*mk);
  tooltip("no pair allowed: every row of the painted square attends nothing (outputs zeros)");
  ImGui::SameLine();
  if (ImGui::Button("causal")) *mk = causal_mask(mk->n);
  tooltip("back to plain causal attention: every j <= i");
  ImGui::SameLine();
  if (ImGui::Button("causal clip")) {
    const int64_t n = causal_clip(*mk);
    app.log.push_back("causal clip: " + std::to_string(n) + " cells above the diagonal cleared");
  }
  tooltip("clear every cell above the diagonal (the editing tools never set them; a loaded mask might)");
  // the canvas: the first T x T cells of the mask, the window's queries and keys
  const float side = std::min(ImGui::GetContentRegionAvail().x, fs * 24), cs = side / float(T);
  const ImVec2 p = ImGui::GetCursorScreenPos();
  ImGui::InvisibleButton("canvas", ImVec2(side, side));
  mark_target(app, (col + "canvas").c_str());
  ImDrawList* dl = ImGui::GetWindowDrawList();
  dl->AddRectFilled(p, ImVec2(p.x + side, p.y + side), IM_COL32(24, 26, 32, 255));
  const int n = int(std::min<int64_t>(T, mk->n));
  const ImU32 on = IM_COL32(250, 199, 77, 255);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j <= i;) {  // runs of allowed cells per row
      if (!mk->at(i, j)) {
        ++j;
        continue;
      }
      int k = j;
      while (k <= i && mk->at(i, k)) ++k;
      dl->AddRectFilled(ImVec2(p.x + cs * float(j), p.y + cs * float(i)), ImVec2(p.x + cs * float(k), p.y + cs * float(i + 1)), on);
      j = k;
    }
  dl->AddLine(p, ImVec2(p.x + side, p.y + side), IM_COL32(120, 124, 136, 160));  // the diagonal
  const ImVec2 mp = ImGui::GetIO().MousePos;
  const int mi = std::clamp(int((mp.y - p.y) / cs), 0, T - 1), mj = std::clamp(int((mp.x - p.x) / cs), 0, T - 1);
  if (ImGui::IsItemActivated()) {
    e.dragging = true;
    e.drag_i = mi;
    e.drag_j = mj;
  }
  if (e.dragging && e.tool == MaskTool::Brush && ImGui::IsItemActive()) paint_brush(*mk, mi, mj, e.radius, !e.erase);
  if (e.dragging && e.tool != MaskTool::Brush) {
    const ImU32 preview = e.erase ? IM_COL32(240, 90, 80, 200) : IM_COL32(100, 170, 255, 220);
    if (e.tool == MaskTool::Rect) {
      dl->AddRect(ImVec2(p.x + cs * float(std::min(e.drag_j, mj)), p.y + cs * float(std::min(e.drag_i, mi))),
                  ImVec2(p.x + cs * float(std::max(e.drag_j, mj) + 1), p.y + cs * float(std::max(e.drag_i, mi) + 1)),
                  preview, 0, 0, 2);
    } else {
      for (int d : {e.drag_i - e.drag_j, mi - mj})
        dl->AddLine(ImVec2(p.x + cs * float(std::max(0, -d)), p.y + cs * float(std::max(0, d))),
                    ImVec2(p.x + side - cs * float(std::max(0, d)), p.y + side - cs * float(std::max(0, -d))), preview, 2);
    }
  }
  if (e.dragging && !ImGui::IsItemActive()) {
    e.dragging = false;
    if (e.tool == MaskTool::Rect) paint_rect(*mk, e.drag_i, e.drag_j, mi, mj, !e.erase);
    if (e.tool == MaskTool::Band) {
      e.band_lo = std::min(e.drag_i - e.drag_j, mi - mj);
      e.band_hi = std::max(e.drag_i - e.drag_j, mi - mj);
      paint_band(*mk, e.band_lo, e.band_hi, !e.erase);
    }
  }
  if (ImGui::IsItemHovered())
    ImGui::SetTooltip("query %d (row) \xC2\xB7 key %d (column): %s", mi, mj,
                      mj > mi ? "the future (never)" : mk->at(mi, mj) ? "allowed" : "not allowed");
  int64_t allowed = 0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j <= i; ++j) allowed += mk->at(i, j);
  ImGui::TextColored(kDim, "painted: %lld of %lld causal pairs allowed in these %d characters", (long long)allowed,
                     (long long)n * (n + 1) / 2, T);
}

void draw_sparsity_row(App& app, Column& c, int index, const ColumnResult& r) {
  const float fs = ImGui::GetFontSize();
  const AttentionMaps& m = r.maps;
  const int L = int(m.layers), H = int(m.heads), T = int(m.queries), S = int(m.keys);
  const int layer = std::clamp(c.layer, 0, L - 1), head = std::clamp(c.head, 0, H - 1);
  section("Sparsity");
  const std::string key = std::to_string(r.seq) + "/" + std::to_string(layer) + "/" + std::to_string(head);
  if (key != c.mask_key) {
    c.mask_tile.set_data(&m.attn[m.idx(layer, head, 0, 0)], m.mask.empty() ? nullptr : &m.mask[m.idx(layer, head, 0, 0)],
                         T, S);
    c.mask_key = key;
  }
  const float width = ImGui::GetContentRegionAvail().x;
  const float side = std::min(fs * 5.f, (width - fs) * 0.5f);
  const ImVec2 p = ImGui::GetCursorScreenPos();
  HeatmapStyle st;
  st.view = View::Mask;
  const GLuint tex = c.mask_tile.render(app.program, int(side), int(side), st);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  if (tex) dl->AddImage(reinterpret_cast<ImTextureID>(static_cast<intptr_t>(tex)), p, ImVec2(p.x + side, p.y + side));
  dl->AddText(app.fonts.small, app.fonts.small->FontSize, ImVec2(p.x, p.y + side + 2), ImGui::GetColorU32(kDim),
              ("pairs, L" + std::to_string(layer) + " h" + std::to_string(head)).c_str());
  const PatternSummary* ps = layer < int(r.pattern.size()) ? &r.pattern[size_t(layer)] : nullptr;
  const ImVec2 q(p.x + side + fs, p.y);
  if (ps && !ps->tiles.empty()) {
    const float cw = side / float(ps->tile_cols), ch = side / float(ps->tile_rows);
    const ImU32 cols[3] = {IM_COL32(38, 40, 48, 255), IM_COL32(160, 120, 50, 255), IM_COL32(250, 199, 77, 255)};
    for (int i = 0; i < ps->tile_rows; ++i)
      for (int j = 0; j < ps->tile_cols; ++j) {
        const uint8_t s = ps->tiles[size_t(i * ps->tile_cols + j)];
        dl->AddRectFilled(ImVec2(q.x + cw * float(j), q.y + ch * float(i)),
                          ImVec2(q.x + cw * float(j + 1) - 1, q.y + ch * float(i + 1) - 1), cols[std::min<int>(s, 2)]);
      }
    int full = 0, part = 0;
    for (uint8_t s : ps->tiles) full += s == 2, part += s == 1;
    char t[64];
    std::snprintf(t, sizeof t, "tiles %d\xC3\x97%d: %d+%d of %d", ps->tile_h, ps->tile_w, full, part,
                  ps->tile_rows * ps->tile_cols);
    dl->AddText(app.fonts.small, app.fonts.small->FontSize, ImVec2(q.x, q.y + side + 2), ImGui::GetColorU32(kDim), t);
  } else {
    ImGui::SetCursorScreenPos(q);
    ImGui::PushTextWrapPos(0);
    ImGui::TextColored(kDim, "%s", ps && !ps->notes.empty() ? ps->notes.back().c_str()
                                                            : "no tiling: one dense pass over the computed pairs");
    ImGui::PopTextWrapPos();
  }
  ImGui::SetCursorScreenPos(ImVec2(p.x, p.y + side + app.fonts.small->FontSize + 6));
  const double pairs = layer < int(r.layer_pairs.size()) ? double(r.layer_pairs[size_t(layer)]) : 0;
  const double kept = pairs / (double(H) * T * S);
  const double causal = double(H) * (S == T ? T * (T + 1.0) / 2 : double(T) * S);
  ImGui::Text("kept %.1f%%", 100 * kept);
  tooltip("share of the query x key square this layer computes (all heads); causal attention keeps a little over half");
  ImGui::SameLine(0, fs);
  ImGui::Text("FLOPs %.2f\xC3\x97 causal", pairs / causal);
  tooltip("score and weighted-sum FLOPs of this layer against dense causal attention over the same text");
  if (ps && !ps->tiles.empty())
    tooltip(("tile map: " + std::to_string(ps->tile_h) + "x" + std::to_string(ps->tile_w) + " tiles computed in full "
             "(gold), in part (dark gold) or skipped; " + std::to_string(ps->tiles_vs_causal).substr(0, 4) +
             "x the tiles a causal tiled kernel computes").c_str());
  draw_mask_toggle(app, c, index);
}

// Row 3: KV cache bytes now, and against the length up to the context, with MHA as the reference line.
void draw_cache_row(App& app, const ColumnResult& r) {
  const float fs = ImGui::GetFontSize();
  section("KV cache");
  int64_t now = 0;
  for (int64_t b : r.maps.cache_formula_bytes) now += b;
  const int T = int(r.maps.queries);
  ImGui::Text("%s at %d chars", human_bytes(double(now)).c_str(), T);
  std::string per_layer;  // each layer's formula and bytes now (a mixed column sums different formulas)
  for (size_t l = 0; l < r.maps.layer_variant.size() && l < r.maps.cache_formula_bytes.size(); ++l) {
    const VariantInfo* v = find_variant(r.maps.layer_variant[l]);
    per_layer += "\n  layer " + std::to_string(l) + " " + r.maps.layer_variant[l] + ": " +
                 (v ? v->cache_formula : std::string("?")) + " per token = " +
                 human_bytes(double(r.maps.cache_formula_bytes[l]));
  }
  tooltip(("bytes a decoder caches after these characters, all layers, fp32, by the layers' formulas:" + per_layer)
              .c_str());
  if (!r.base_curve.empty() && r.base_curve.back() > 0) {
    ImGui::SameLine(0, fs);
    const double ratio = double(r.cache_curve.back()) / double(r.base_curve.back());
    ImGui::TextColored(ratio < 0.999 ? kGreen : ratio > 1.001 ? kAmber : kDim, "%.2f\xC3\x97 MHA", ratio);
    tooltip("at the full context, against the base MHA model");
  }
  if (r.curve_tokens.empty()) return;
  const float width = ImGui::GetContentRegionAvail().x, h = fs * 3.6f;
  const ImVec2 p = ImGui::GetCursorScreenPos();
  const float left = p.x + fs * 3.6f, right = p.x + width - 4, top = p.y + 4, bottom = p.y + h;
  double ymax = 1;
  for (size_t k = 0; k < r.curve_tokens.size(); ++k)
    ymax = std::max({ymax, double(r.cache_curve[k]), double(r.base_curve[k])});
  const double xmax = double(r.curve_tokens.back());
  auto X = [&](double t) { return left + float(t / xmax) * (right - left); };
  auto Y = [&](double b) { return bottom - float(b / ymax) * (bottom - top); };
  ImDrawList* dl = ImGui::GetWindowDrawList();
  dl->AddRectFilled(ImVec2(left, top), ImVec2(right, bottom), IM_COL32(24, 26, 32, 255));
  dl->AddLine(ImVec2(left, bottom), ImVec2(right, bottom), IM_COL32(90, 94, 106, 255));
  dl->AddLine(ImVec2(left, top), ImVec2(left, bottom), IM_COL32(90, 94, 106, 255));
  std::vector<ImVec2> base, mine;
  base.emplace_back(X(0), Y(0));
  mine.emplace_back(X(0), Y(0));
  for (size_t k = 0; k < r.curve_tokens.size(); ++k) {
    base.emplace_back(X(double(r.curve_tokens[k])), Y(double(r.base_curve[k])));
    mine.emplace_back(X(double(r.curve_tokens[k])), Y(double(r.cache_curve[k])));
  }
  dl->AddPolyline(base.data(), int(base.size()), IM_COL32(150, 152, 160, 220), 0, 1.5f);
  dl->AddPolyline(mine.data(), int(mine.size()), ImGui::GetColorU32(kAccent), 0, 2.2f);
  dl->AddLine(ImVec2(X(T), top), ImVec2(X(T), bottom), IM_COL32(250, 199, 77, 160));
  dl->AddCircleFilled(ImVec2(X(T), Y(double(now))), 3.5f, IM_COL32(250, 199, 77, 255));
  ImFont* f = app.fonts.small;
  const ImU32 tc = ImGui::GetColorU32(kDim);
  const std::string ytop = human_bytes(ymax), xr = std::to_string(int64_t(xmax));
  dl->AddText(f, f->FontSize, ImVec2(p.x, top), tc, ytop.c_str());
  dl->AddText(f, f->FontSize, ImVec2(p.x, bottom - f->FontSize), tc, "0");
  dl->AddText(f, f->FontSize, ImVec2(right - f->CalcTextSizeA(f->FontSize, FLT_MAX, 0, xr.c_str()).x - 2, bottom - f->FontSize - 1), tc, xr.c_str());
  const float lx = right - fs * 5.2f;  // legend, top right
  dl->AddLine(ImVec2(lx, top + f->FontSize * 0.6f), ImVec2(lx + fs * 0.8f, top + f->FontSize * 0.6f), ImGui::GetColorU32(kAccent), 2);
  dl->AddText(f, f->FontSize, ImVec2(lx + fs, top), ImGui::GetColorU32(kAccent), "this");
  dl->AddLine(ImVec2(lx + fs * 2.8f, top + f->FontSize * 0.6f), ImVec2(lx + fs * 3.6f, top + f->FontSize * 0.6f), IM_COL32(150, 152, 160, 255), 1.5f);
  dl->AddText(f, f->FontSize, ImVec2(lx + fs * 3.8f, top), IM_COL32(150, 152, 160, 255), "MHA");
  ImGui::Dummy(ImVec2(width, h + 2));
  if (ImGui::IsItemHovered()) ImGui::SetTooltip("cache bytes (y) against characters in the context (x), fp32");
}

// Row 4: this column's forward on the active device, repeated by the worker when idle.
void draw_timing_row(App& app, const Column& c) {
  const float fs = ImGui::GetFontSize();
  section("Timing");
  std::vector<double> ms = c.timing.ms;
  const std::string dev = app.model ? app.model->device_name() : "?";
  if (ms.size() < 3) {
    ImGui::TextColored(kDim, "measuring on %s... (%zu/%zu runs)", dev.c_str(), ms.size(), kTimingRuns);
    ImGui::Dummy(ImVec2(1, fs * 0.6f));
    return;
  }
  std::sort(ms.begin(), ms.end());
  auto q = [&](double f) {
    const double x = f * double(ms.size() - 1);
    const size_t a = size_t(x), b = std::min(a + 1, ms.size() - 1);
    return ms[a] + (ms[b] - ms[a]) * (x - double(a));
  };
  ImGui::Text("median %.1f ms", q(0.5));
  tooltip("median forward (all layers, with the attention maps) on this device");
  ImGui::SameLine(0, fs * 0.6f);
  ImGui::TextColored(kDim, "p10 %.1f \xC2\xB7 p90 %.1f", q(0.1), q(0.9));
  tooltip((std::to_string(ms.size()) + " forwards on " + dev + ", repeated while the window is idle").c_str());
  // the samples on a strip from 0 to the slowest run
  const float width = ImGui::GetContentRegionAvail().x, h = fs * 0.7f;
  const ImVec2 p = ImGui::GetCursorScreenPos();
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const double hi = std::max(1e-3, ms.back() * 1.05);
  auto X = [&](double v) { return p.x + float(v / hi) * width; };
  dl->AddRectFilled(ImVec2(X(q(0.1)), p.y), ImVec2(X(q(0.9)), p.y + h), IM_COL32(64, 110, 190, 120));
  for (double v : ms) dl->AddLine(ImVec2(X(v), p.y), ImVec2(X(v), p.y + h), IM_COL32(200, 205, 215, 200));
  dl->AddLine(ImVec2(X(q(0.5)), p.y - 2), ImVec2(X(q(0.5)), p.y + h + 2), ImGui::GetColorU32(kAmber), 2);
  ImGui::Dummy(ImVec2(width, h + 2));
}

// Row 5: the loss of the current text under this column against the base MHA model, and for approximations
// the distance to the exact softmax on the same queries and keys.
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

void log_latency(App& app, Column& c, int index) {
  if (c.latency_logged || !c.shown || c.shown->seq != c.seq) return;
  c.latency_logged = true;
  if (!app.log_events) return;
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - c.submitted_at).count();
  std::printf("t=%.3f s  column %d (%s): heatmap of request %llu drawn %.1f ms after the request (forward %.1f ms, "
              "model %.1f ms)\n",
              seconds_since_start(app), index, c.variant.c_str(), (unsigned long long)c.seq, ms,
              c.shown->ok ? c.shown->maps.forward_ms : 0.0, c.shown->prepare_ms);
  std::fflush(stdout);
}

void draw_column_body(App& app, Column& c, int index) {
  ImGui::PushID(c.id);
  const auto& r = c.shown;
  const VariantInfo* info = layer_variant(c, c.layer);
  if (!r) {
    ImGui::TextColored(kDim, "computing the first result...");
  } else if (!r->ok) {
    if (r->seq == c.seq) {
      ImGui::PushTextWrapPos(0);
      ImGui::TextColored(kRed, "This combination does not run:");
      ImGui::TextColored(kRed, "%s", r->error.c_str());
      ImGui::PopTextWrapPos();
      ImGui::TextColored(kDim, "Change a parameter or the variant above.");
    } else {
      ImGui::TextColored(kAmber, "computing...");
    }
  } else {
    const bool stale = r->seq != c.seq;
    if (ImGui::IsWindowHovered(ImGuiHoveredFlags_ChildWindows)) app.active_column = index;
    draw_attention_row(app, c, index, *r, info, stale);
    if (stale) {
      ImGui::TextColored(kAmber, "computing the new inputs...");
    } else if (app.scenes.present) {  // presentation: the heatmap alone, as large as the column allows
      c.rows_h = ImGui::GetFontSize() * 0.5f;
    } else {
      const float y0 = ImGui::GetCursorPosY();
      draw_sparsity_row(app, c, index, *r);
      draw_cache_row(app, *r);
      draw_timing_row(app, c);
      draw_quality_row(c, *r);
      c.rows_h = ImGui::GetCursorPosY() - y0;
      // below the rows (the heatmap's size ignores them): the body scrolls down to them
      draw_mask_editor(app, c, int(r->maps.queries), index);
      draw_explanation(app, c, index);
    }
  }
  log_latency(app, c, index);
  ImGui::PopID();
}

void draw_columns(App& app, float height) {
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
  const float top = ImGui::GetCursorScreenPos().y;
  ImGuiTableFlags flags = ImGuiTableFlags_BordersInnerV | ImGuiTableFlags_SizingStretchSame | ImGuiTableFlags_PadOuterX |
                          ImGuiTableFlags_Resizable;
  if (ImGui::BeginTable("columns", std::max(1, n), flags)) {
    ImGui::TableNextRow();
    for (int i = 0; i < n; ++i) {
      ImGui::TableSetColumnIndex(i);
      if (app.scenes.present) draw_presentation_header(app.columns[size_t(i)]);
      else draw_column_controls(app, app.columns[size_t(i)], i, n, act);
    }
    ImGui::TableNextRow();
    const float body = std::max(ImGui::GetFontSize() * 8, height - (ImGui::GetCursorScreenPos().y - top) -
                                                              ImGui::GetStyle().ItemSpacing.y * 2);
    for (int i = 0; i < n; ++i) {
      ImGui::TableSetColumnIndex(i);
      ImGui::PushID(app.columns[size_t(i)].id);
      ImGui::BeginChild("body", ImVec2(0, body), false);
      if (app.gen.open) draw_generation_column(app, app.columns[size_t(i)], i);
      else draw_column_body(app, app.columns[size_t(i)], i);
      draw_column_export_menu(app, i);
      ImGui::EndChild();
      ImGui::PopID();
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

// The difference window: two columns' matrices at one layer and head, |A - B| or A - B, and KL(A || B) per row.
void update_diff(App& app) {
  DiffState& d = app.diff;
  const int n = int(app.columns.size());
  app.view.diff_a = std::clamp(app.view.diff_a, 0, n - 1);
  app.view.diff_b = std::clamp(app.view.diff_b, 0, n - 1);
  const Column& a = app.columns[size_t(app.view.diff_a)];
  const Column& b = app.columns[size_t(app.view.diff_b)];
  auto current = [](const Column& c) { return c.shown && c.shown->ok && c.shown->seq == c.seq; };
  std::string key = std::to_string(a.id) + "/" + std::to_string(b.id) + "/" + std::to_string(d.layer) + "/" +
                    std::to_string(d.head) + "/" + (app.view.diff_signed ? "s" : "a") + "/" +
                    (current(a) ? std::to_string(a.shown->seq) : "-") + "/" + (current(b) ? std::to_string(b.shown->seq) : "-");
  if (key == d.key) return;
  d.key = key;
  d.problem.clear();
  d.values.clear();
  d.kl_rows.clear();
  if (!current(a) || !current(b)) {
    d.problem = "waiting for both columns' results";
    return;
  }
  const AttentionMaps &ma = a.shown->maps, &mb = b.shown->maps;
  if (ma.queries != mb.queries || ma.keys != mb.keys || ma.layers != mb.layers || ma.heads != mb.heads) {
    d.problem = "the two columns read different texts or shapes";
    return;
  }
  d.layer = std::clamp(d.layer, 0, int(ma.layers) - 1);
  d.head = std::clamp(d.head, 0, int(ma.heads) - 1);
  d.rows = int(ma.queries);
  d.cols = int(ma.keys);
  d.values.resize(size_t(d.rows) * size_t(d.cols));
  d.kl_rows.assign(size_t(d.rows), 0.f);
  double total = 0;
  for (int i = 0; i < d.rows; ++i) {
    double kl = 0;
    for (int j = 0; j < d.cols; ++j) {
      const float x = ma.at(d.layer, d.head, i, j), y = mb.at(d.layer, d.head, i, j);
      d.values[size_t(i) * size_t(d.cols) + size_t(j)] = app.view.diff_signed ? x - y : std::fabs(x - y);
      if (x > 0) kl += double(x) * std::log(double(x) / std::max(double(y), 1e-12));
    }
    d.kl_rows[size_t(i)] = float(kl);
    total += kl;
  }
  d.mean_kl = total / std::max(1, d.rows);
  d.map.set_data(d.values.data(), nullptr, d.rows, d.cols);
}

void draw_diff_window(App& app) {
  if (!app.view.show_diff || app.columns.empty() || !app.model) return;
  const float fs = ImGui::GetFontSize();
  ImGui::SetNextWindowSize(ImVec2(fs * 30, fs * 36), ImGuiCond_FirstUseEver);
  ImGui::SetNextWindowPos(ImVec2(fs * 6, fs * 6), ImGuiCond_FirstUseEver);
  if (!ImGui::Begin("Difference between two columns", &app.view.show_diff)) {
    ImGui::End();
    return;
  }
  auto pick = [&](const char* label, int* v) {
    const int n = int(app.columns.size());
    *v = std::clamp(*v, 0, n - 1);
    const std::string cur = std::to_string(*v + 1) + ": " + app.columns[size_t(*v)].variant;
    ImGui::SetNextItemWidth(fs * 9);
    if (ImGui::BeginCombo(label, cur.c_str())) {
      for (int i = 0; i < n; ++i)
        if (ImGui::Selectable((std::to_string(i + 1) + ": " + app.columns[size_t(i)].variant).c_str(), i == *v)) *v = i;
      ImGui::EndCombo();
    }
  };
  pick("A", &app.view.diff_a);
  ImGui::SameLine();
  pick("B", &app.view.diff_b);
  ImGui::SameLine();
  ImGui::Checkbox("signed A \xE2\x88\x92 B", &app.view.diff_signed);
  ImGui::SameLine();
  if (ImGui::Button("Export...")) open_export_dialog(app, ExportSource::Difference, 0);
  const int L = int(app.model->config().n_layer), H = int(app.model->config().n_head);
  ImGui::SetNextItemWidth(fs * 7);
  ImGui::SliderInt("##dlayer", &app.diff.layer, 0, L - 1, "layer %d");
  ImGui::SameLine();
  ImGui::SetNextItemWidth(fs * 7);
  ImGui::SliderInt("##dhead", &app.diff.head, 0, H - 1, "head %d");
  update_diff(app);
  DiffState& d = app.diff;
  if (!d.problem.empty()) {
    ImGui::TextColored(kDim, "%s", d.problem.c_str());
    ImGui::End();
    return;
  }
  ImGui::Text("mean KL(A || B) %.4f nats per row", d.mean_kl);
  tooltip("how much B's attention rows differ from A's as distributions (0 = identical)");
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  const float klw = fs * 4, size = std::max(32.f, std::min(avail.x - klw - fs, avail.y - fs * 3));
  const ImVec2 p = ImGui::GetCursorScreenPos();
  HeatmapStyle st;
  st.colormap = app.view.colormap;
  st.scale = app.view.scale;
  st.signed_values = app.view.diff_signed;
  st.mask_overlay = false;
  st.log_decades = app.view.log_decades;
  st.exclude_first = app.view.exclude_first;
  const GLuint tex = d.map.render(app.program, int(size), int(size), st);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  if (tex) dl->AddImage(reinterpret_cast<ImTextureID>(static_cast<intptr_t>(tex)), p, ImVec2(p.x + size, p.y + size));
  // KL per row as bars to the right
  float klmax = 1e-9f;
  for (float k : d.kl_rows) klmax = std::max(klmax, k);
  const float rh = size / float(d.rows), x0 = p.x + size + fs * 0.5f;
  for (int i = 0; i < d.rows; ++i)
    dl->AddRectFilled(ImVec2(x0, p.y + rh * float(i)), ImVec2(x0 + klw * d.kl_rows[size_t(i)] / klmax, p.y + rh * float(i + 1)),
                      IM_COL32(250, 199, 77, 220));
  dl->AddText(app.fonts.small, app.fonts.small->FontSize, ImVec2(x0, p.y + size + 2), ImGui::GetColorU32(kDim), "KL/row");
  ImGui::Dummy(ImVec2(size + klw + fs, size + app.fonts.small->FontSize + 4));
  const ImVec2 m = ImGui::GetIO().MousePos;
  if (ImGui::IsWindowHovered() && m.x >= p.x && m.y >= p.y && m.x < p.x + size + klw + fs && m.y < p.y + size) {
    const int i = std::clamp(int((m.y - p.y) / rh), 0, d.rows - 1);
    const int j = std::clamp(int((m.x - p.x) / (size / float(d.cols))), 0, d.cols - 1);
    ImGui::Text("q %d k %d: %s %.4f \xC2\xB7 row KL %.4f", app.tokens.start + i, app.tokens.start + j,
                app.view.diff_signed ? "A\xE2\x88\x92" "B" : "|A\xE2\x88\x92" "B|",
                double(d.values[size_t(i) * size_t(d.cols) + size_t(j)]), double(d.kl_rows[size_t(i)]));
  } else {
    ImGui::TextColored(kDim, "hover: the pair's difference and the row's KL");
  }
  const float bw = std::min(size * 0.6f, fs * 14);
  const ImVec2 cb(ImGui::GetCursorScreenPos().x + fs * 3, ImGui::GetCursorScreenPos().y);
  draw_colorbar(st, d.map.vmax(st.exclude_first), cb, bw, fs * 0.6f);
  ImGui::Dummy(ImVec2(1, fs));
  ImGui::End();
}

long rss_bytes() {  // resident set size from /proc/self/statm (pages)
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return -1;
  long size = 0, resident = 0;
  const int n = std::fscanf(f, "%ld %ld", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * sysconf(_SC_PAGESIZE) : -1;
}

void draw_status_bar(App& app) {
  ImGui::Separator();
  const std::string dev = app.model ? app.model->device_name() : "no model";
  std::vector<double> f(app.frame_ms.begin(), app.frame_ms.end());
  std::sort(f.begin(), f.end());
  const double frame = f.empty() ? 0 : f[f.size() / 2];
  const long rss = rss_bytes();
  ImGui::TextColored(kDim, "device %s  \xC2\xB7  %lld threads  \xC2\xB7  last compute %.1f ms  \xC2\xB7  memory %s  "
                           "\xC2\xB7  frame %.1f ms  \xC2\xB7  %zu models cached",
                     dev.c_str(), (long long)app.worker->threads(), app.last_compute_ms,
                     rss < 0 ? "?" : human_bytes(double(rss)).c_str(), frame, app.worker->cached_models());
  if (!app.settings_message.empty()) {
    ImGui::SameLine(0, ImGui::GetFontSize());
    ImGui::TextColored(kAmber, "%s", app.settings_message.c_str());
  }
}

}  // namespace

void set_layer_head(App& app, int column, int layer, int head) {
  for (int i = 0; i < int(app.columns.size()); ++i)
    if (app.view.link || i == column) {
      app.columns[size_t(i)].layer = layer;
      app.columns[size_t(i)].head = head;
    }
  app.active_column = column;
}

void move_selection(App& app, int dlayer, int dhead) {
  if (app.columns.empty() || !app.model) return;
  const int i = std::clamp(app.active_column, 0, int(app.columns.size()) - 1);
  const Column& c = app.columns[size_t(i)];
  const int L = int(app.model->config().n_layer), H = int(app.model->config().n_head);
  const int layer = std::clamp(c.layer + dlayer, 0, L - 1);
  const int head = c.head < 0 ? (dhead > 0 ? 0 : -1) : std::clamp(c.head + dhead, 0, H - 1);
  set_layer_head(app, i, layer, head);
}

double seconds_since_start(const App& app) { return std::chrono::duration<double>(Clock::now() - app.started).count(); }

void draw_ui(App& app) {
  const ImGuiViewport* vp = ImGui::GetMainViewport();
  ImGui::SetNextWindowPos(vp->WorkPos);
  ImGui::SetNextWindowSize(vp->WorkSize);
  const bool present = app.scenes.present;  // presentation mode: no menus, toolbar, sidebar or status bar
  ImGuiWindowFlags wf = ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_NoMove | ImGuiWindowFlags_NoSavedSettings |
                        ImGuiWindowFlags_NoBringToFrontOnFocus | (present ? 0 : ImGuiWindowFlags_MenuBar);
  ImGui::Begin("attnscope", nullptr, wf);
  app.targets.clear();
  if (present) {
    draw_presentation_title(app);
    ImGui::BeginChild("columns_area", ImVec2(0, 0), false);
    draw_columns(app, ImGui::GetContentRegionAvail().y);
    ImGui::EndChild();
  } else {
    draw_menu(app);
    draw_toolbar(app);
    ImGui::Separator();
    const float status_h = ImGui::GetFrameHeightWithSpacing() + ImGui::GetStyle().ItemSpacing.y;
    const float side = std::min(ImGui::GetFontSize() * 21.f, vp->WorkSize.x * 0.3f);
    ImGui::BeginChild("sidebar", ImVec2(side, -status_h), true);
    if (app.gen.open) draw_generation_panel(app);
    else draw_text_panel(app);
    ImGui::EndChild();
    ImGui::SameLine();
    ImGui::BeginChild("columns_area", ImVec2(0, -status_h), false);
    draw_columns(app, ImGui::GetContentRegionAvail().y);
    ImGui::EndChild();
    draw_status_bar(app);
  }
  handle_studio_keys(app);
  ImGuiIO& io = ImGui::GetIO();
  if (!io.WantTextInput && !ImGui::IsAnyItemActive()) {  // arrow keys: head (left/right) and layer (up/down)
    if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_LeftArrow))) move_selection(app, 0, -1);
    if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_RightArrow))) move_selection(app, 0, 1);
    if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_UpArrow))) move_selection(app, -1, 0);
    if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_DownArrow))) move_selection(app, 1, 0);
  }
  ImGui::End();
  draw_diff_window(app);
  draw_kv_calculator(app);
  draw_scaling_window(app);
  draw_advisor_window(app);
  draw_scene_ui(app);
  draw_export_dialog(app);
  if (app.view.show_demo) ImGui::ShowDemoWindow(&app.view.show_demo);
}

}  // namespace attnscope::gui
