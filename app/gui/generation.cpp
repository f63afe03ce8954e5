// The lockstep generation view (every column's model writes from one prompt, token by token, and shows what its
// cache holds). The worker owns the decoders; this file only draws snapshots.
#include <algorithm>
#include <cfloat>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <functional>

#include "imgui.h"
#include "imgui_stdlib.h"
#include "state.h"
#include "widgets.h"

namespace attnscope::gui {

namespace {

const ImU32 kEvicted = IM_COL32(44, 46, 54, 255), kHatch = IM_COL32(78, 81, 92, 255),
            kHeld = IM_COL32(86, 136, 214, 255), kFrame = IM_COL32(24, 26, 32, 255);

// The token at an absolute position of a track's stream: the prompt, then one fed token per step.
int64_t token_at(const DecodeTrack& t, int64_t pos) {
  const int64_t P = int64_t(t.prompt.size());
  return pos < P ? t.prompt[size_t(pos)] : t.frames[size_t(pos - P)]->token;
}

// The strip's horizontal layout: positions [lo, n) at `cell` pixels each, from x0.
struct Strip {
  float x0 = 0, cell = 1;
  int64_t lo = 0, n = 0;
  float x(int64_t pos) const { return x0 + float(pos - lo) * cell; }
};

Strip strip_for(float x0, float width, int64_t n, float min_cell) {
  Strip s;
  s.x0 = x0;
  s.n = n;
  const int64_t fit = std::max<int64_t>(1, int64_t(width / min_cell));
  s.lo = std::max<int64_t>(0, n - fit);  // too many positions: the newest that fit
  s.cell = width / float(n - s.lo);
  return s;
}

void hatch_cell(ImDrawList* dl, ImVec2 a, ImVec2 b) {
  dl->AddRectFilled(a, b, kEvicted);
  if (b.x - a.x >= 4) dl->AddLine(ImVec2(a.x, b.y), ImVec2(b.x, a.y), kHatch);
}

// Which positions layer `layer` holds at frame f: 1 per position in [0, n).
std::vector<uint8_t> held_mask(const DecodeFrame& f, int layer, int64_t n) {
  std::vector<uint8_t> m(size_t(n), 0);
  for (int64_t p : f.held[size_t(layer)])
    if (p >= 0 && p < n) m[size_t(p)] = 1;
  return m;
}

// The characters over the strip: held ones bright, evicted ones dim, the newest in the accent colour.
void draw_char_labels(App& app, const DecodeTrack& t, const Strip& s, const std::vector<uint8_t>& held, float y) {
  ImFont* f = app.fonts.small;
  const float digit = f->CalcTextSizeA(f->FontSize, FLT_MAX, 0, "0").x;
  ImDrawList* dl = ImGui::GetWindowDrawList();
  if (s.cell < digit * 0.95f) {  // no room for characters: the first and last position
    const std::string a = std::to_string(s.lo), b = std::to_string(s.n - 1);
    dl->AddText(f, f->FontSize, ImVec2(s.x0, y), ImGui::GetColorU32(kDim), a.c_str());
    const float bw = f->CalcTextSizeA(f->FontSize, FLT_MAX, 0, b.c_str()).x;
    dl->AddText(f, f->FontSize, ImVec2(s.x(s.n) - bw, y), ImGui::GetColorU32(kDim), b.c_str());
    return;
  }
  const Tokenizer& tok = app.model->tokenizer();
  for (int64_t p = s.lo; p < s.n; ++p) {
    const std::string g = glyph(tok.symbol(token_at(t, p)));
    const float w = f->CalcTextSizeA(f->FontSize, FLT_MAX, 0, g.c_str()).x;
    const ImU32 col = p == s.n - 1      ? ImGui::GetColorU32(kAccent)
                      : held[size_t(p)] ? IM_COL32(214, 218, 228, 255)
                                        : IM_COL32(96, 99, 110, 255);
    dl->AddText(f, f->FontSize, ImVec2(s.x(p) + (s.cell - w) * 0.5f, y), col, g.c_str());
  }
}

// The newest query's attention over the positions so far, one row per head of the layer; positions the cache
// no longer holds are hatched grey.
void draw_attention_strip(App& app, const Column& c, const DecodeTrack& t, const DecodeFrame& f, int layer) {
  const float fs = ImGui::GetFontSize();
  section(("Newest query's attention \xC2\xB7 layer " + std::to_string(layer)).c_str());
  const auto& held = f.held[size_t(layer)];
  const auto& row = f.attn[size_t(layer)];
  const int64_t n = f.position + 1, H = f.heads, S = int64_t(held.size());
  if (row.empty()) {
    ImGui::PushTextWrapPos(0);
    ImGui::TextColored(kDim,
                       "A fixed-size state: no keys are kept per token, so there is no attention row to "
                       "show; the state summarises all %" PRId64 " tokens.",
                       n);
    ImGui::PopTextWrapPos();
    return;
  }
  ImFont* sf = app.fonts.small;
  const float lw = sf->CalcTextSizeA(sf->FontSize, FLT_MAX, 0, "h00").x + 6;
  const ImVec2 p0 = ImGui::GetCursorScreenPos();
  const float width = ImGui::GetContentRegionAvail().x - lw;
  const Strip s = strip_for(p0.x + lw, width, n, 2.f);
  const std::vector<uint8_t> mask = held_mask(f, layer, n);
  draw_char_labels(app, t, s, mask, p0.y);
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const float top = p0.y + sf->FontSize + 3, rh = std::max(6.f, fs * 0.8f);
  std::vector<float> w(size_t(n), 0);  // one head's weights by position
  const ImVec2 mouse = ImGui::GetIO().MousePos;
  for (int64_t h = 0; h < H; ++h) {
    std::fill(w.begin(), w.end(), 0.f);
    float mx = 1e-12f;
    for (int64_t j = 0; j < S; ++j) {
      w[size_t(held[size_t(j)])] = row[size_t(h * S + j)];
      mx = std::max(mx, std::fabs(row[size_t(h * S + j)]));
    }
    const float y = top + float(h) * (rh + 2);
    const bool sel = c.head == int(h);
    const std::string label = "h" + std::to_string(h);
    dl->AddText(sf, sf->FontSize, ImVec2(p0.x, y + (rh - sf->FontSize) * 0.5f),
                ImGui::GetColorU32(sel ? kAccent : kDim), label.c_str());
    for (int64_t p = s.lo; p < n; ++p) {
      const ImVec2 a(s.x(p), y), b(s.x(p + 1) - (s.cell >= 5 ? 1.f : 0.f), y + rh);
      if (!mask[size_t(p)]) {
        hatch_cell(dl, a, b);
      } else {
        float rgb[3];
        colormap_rgb(app.view.colormap, false, std::fabs(w[size_t(p)]) / mx, rgb);
        dl->AddRectFilled(a, b, ImGui::GetColorU32(ImVec4(rgb[0], rgb[1], rgb[2], 1)));
      }
      if (ImGui::IsWindowHovered() && mouse.x >= a.x && mouse.x < s.x(p + 1) && mouse.y >= a.y && mouse.y < b.y) {
        const char ch = app.model->tokenizer().symbol(token_at(t, p));
        if (mask[size_t(p)])
          ImGui::SetTooltip("head %d, key position %" PRId64 " '%s': weight %.4f", int(h), p, glyph(ch).c_str(),
                            double(w[size_t(p)]));
        else
          ImGui::SetTooltip("position %" PRId64 " '%s' was evicted from this cache: the query cannot attend to it", p,
                            glyph(ch).c_str());
      }
    }
    if (sel) dl->AddRect(ImVec2(s.x0 - 1, y - 1), ImVec2(s.x(n) + 1, y + rh + 1), ImGui::GetColorU32(kAccent));
  }
  ImGui::Dummy(ImVec2(lw + width, top + float(H) * (rh + 2) - p0.y));
  ImGui::TextColored(kDim, "holds %" PRId64 " of %" PRId64 " tokens", S, n);
  char buf[96];
  auto then = [&](ImVec4 colour) {  // on the same line when it fits there whole, else on the next
    ImGui::SameLine(0, fs * 0.5f);
    if (ImGui::GetContentRegionAvail().x < ImGui::CalcTextSize(buf).x) ImGui::NewLine();
    ImGui::TextColored(colour, "%s", buf);
  };
  if (S < n) {
    std::snprintf(buf, sizeof buf, "\xC2\xB7 %" PRId64 " evicted (hatched)", n - S);
    then(kAmber);
  }
  if (s.lo > 0) {
    std::snprintf(buf, sizeof buf, "\xC2\xB7 first %" PRId64 " not drawn", s.lo);
    then(kDim);
  }
  tooltip(
      "colour: each head's weight relative to its largest weight in this row; hatched: positions this "
      "variant's cache no longer holds");
}

// What the layer's cache holds: key/value heads by position, MLA's latent band, or a fixed-size state block.
void draw_cache_contents(App& app, const DecodeFrame& f, int layer) {
  const float fs = ImGui::GetFontSize();
  section("What the cache holds");
  const CacheLayout& lay = f.layout[size_t(layer)];
  const int64_t n = f.position + 1, elem = 4;
  const int64_t layer_bytes = f.layer_bytes[size_t(layer)];
  ImDrawList* dl = ImGui::GetWindowDrawList();
  ImFont* sf = app.fonts.small;
  const float lw = sf->CalcTextSizeA(sf->FontSize, FLT_MAX, 0, "h00").x + 6;
  const ImVec2 p0 = ImGui::GetCursorScreenPos();
  const float width = ImGui::GetContentRegionAvail().x - lw;
  ImGui::PushTextWrapPos(0);
  if (lay.kind == "state") {
    const float h = fs * 2.4f;
    const ImVec2 a(p0.x + lw, p0.y), b(p0.x + lw + width, p0.y + h);
    dl->AddRectFilled(a, b, IM_COL32(58, 92, 150, 255), 4);
    for (float x = a.x + 6; x < b.x; x += 10)
      dl->AddLine(ImVec2(x, a.y), ImVec2(x - 6, b.y), IM_COL32(72, 110, 172, 255));
    const std::string label = std::to_string(lay.width) + " floats, the same at every step";
    const ImVec2 ts = ImGui::CalcTextSize(label.c_str());
    dl->AddText(ImVec2(a.x + (width - ts.x) * 0.5f, a.y + (h - ts.y) * 0.5f), IM_COL32(236, 240, 248, 255),
                label.c_str());
    ImGui::Dummy(ImVec2(lw + width, h + 2));
    ImGui::TextColored(kDim,
                       "a recurrent state of %s per layer: it does not grow with the text (%" PRId64 " tokens so far)",
                       human_bytes(double(layer_bytes)).c_str(), n);
    ImGui::PopTextWrapPos();
    return;
  }
  const Strip s = strip_for(p0.x + lw, width, n, 2.f);
  const std::vector<uint8_t> mask = held_mask(f, layer, n);
  const bool latent = lay.kind == "latent";
  const int64_t rows = latent ? 1 : std::max<int64_t>(1, lay.kv_heads);
  // Row height by what one token costs: a latent row is drawn as tall as its share of MHA's K and V would be.
  // Row height by what a token costs: one kv row stands for 2 d_h elements, the latent row for d_c + d_R.
  const float kv_row = fs * 0.55f, dh2 = float(2 * app.model->config().head_dim());
  const float rh = latent ? std::clamp(kv_row * float(lay.width) / dh2, 4.f, fs * 3) : kv_row;
  for (int64_t r = 0; r < rows; ++r) {
    const float y = p0.y + float(r) * (rh + 2);
    const std::string label = latent ? "c" : "kv" + std::to_string(r);
    dl->AddText(sf, sf->FontSize, ImVec2(p0.x, y + (rh - sf->FontSize) * 0.5f), ImGui::GetColorU32(kDim),
                label.c_str());
    for (int64_t p = s.lo; p < n; ++p) {
      const ImVec2 a(s.x(p), y), b(s.x(p + 1) - (s.cell >= 5 ? 1.f : 0.f), y + rh);
      if (mask[size_t(p)])
        dl->AddRectFilled(a, b, latent ? IM_COL32(196, 140, 70, 255) : kHeld);
      else
        hatch_cell(dl, a, b);
    }
  }
  ImGui::Dummy(ImVec2(lw + width, float(rows) * (rh + 2)));
  const int64_t per_token = lay.width * elem;
  if (latent) {
    ImGui::TextColored(kDim,
                       "the latent c and k_R: d_c + d_R = %" PRId64 " floats (%s) per token, shared by all %" PRId64
                       " heads; K and V are rebuilt from it",
                       lay.width, human_bytes(double(per_token)).c_str(), f.heads);
  } else {
    const int64_t dh = lay.width / (2 * rows);
    ImGui::TextColored(
        kDim, "K and V of %" PRId64 " kv head%s \xC3\x97 d_h %" PRId64 " = %s per token%s%s", rows,
        rows == 1 ? "" : "s", dh, human_bytes(double(per_token)).c_str(),
        rows < f.heads ? (", each shared by " + std::to_string(f.heads / rows) + " query heads").c_str() : "",
        lay.kind == "kv+queries" ? "; plus the last c_q - 1 queries (the convolution reads them)" : "");
  }
  ImGui::PopTextWrapPos();
}

// A value per step, this column bright and the other columns faint, on one scale from 0 to ymax; x = the step.
// mark: a step drawn as a dashed line (the training context), -1 for none.
void draw_step_curve(App& app, const DecodeTrack& t, int cursor,
                     const std::function<double(const DecodeTrack&, size_t)>& value, double ymax,
                     const std::string& ytop, int64_t mark, const char* help) {
  const float fs = ImGui::GetFontSize();
  const DecodeState& st = app.gen.state;
  const size_t steps = st.steps();
  const float width = ImGui::GetContentRegionAvail().x, h = fs * 4.2f;
  const ImVec2 p = ImGui::GetCursorScreenPos();
  const float left = p.x + fs * 3.8f, right = p.x + width - 4, top = p.y + 4, bottom = p.y + h;
  const double xmax = double(std::max<size_t>(steps, 2) - 1);
  auto X = [&](double k) { return left + float(k / xmax) * (right - left); };
  auto Y = [&](double b) { return bottom - float(std::clamp(b / ymax, 0.0, 1.0)) * (bottom - top); };
  ImDrawList* dl = ImGui::GetWindowDrawList();
  dl->AddRectFilled(ImVec2(left, top), ImVec2(right, bottom), kFrame);
  dl->AddLine(ImVec2(left, bottom), ImVec2(right, bottom), IM_COL32(90, 94, 106, 255));
  dl->AddLine(ImVec2(left, top), ImVec2(left, bottom), IM_COL32(90, 94, 106, 255));
  if (mark >= 0 && double(mark) <= xmax)
    for (float y = top; y < bottom; y += 6)
      dl->AddLine(ImVec2(X(double(mark)), y), ImVec2(X(double(mark)), std::min(bottom, y + 3)),
                  IM_COL32(230, 120, 90, 220));
  auto curve = [&](const DecodeTrack& tr) {
    std::vector<ImVec2> pts;
    for (size_t k = 0; k < tr.frames.size(); ++k) pts.emplace_back(X(double(k)), Y(value(tr, k)));
    return pts;
  };
  for (const auto& tr : st.tracks)
    if (&tr != &t && !tr.frames.empty()) {
      auto pts = curve(tr);
      dl->AddPolyline(pts.data(), int(pts.size()), IM_COL32(140, 143, 154, 150), 0, 1.2f);
    }
  auto mine = curve(t);
  dl->AddPolyline(mine.data(), int(mine.size()), ImGui::GetColorU32(kAccent), 0, 2.2f);
  dl->AddLine(ImVec2(X(cursor), top), ImVec2(X(cursor), bottom), IM_COL32(250, 199, 77, 160));
  dl->AddCircleFilled(ImVec2(X(cursor), Y(value(t, size_t(cursor)))), 3.5f, IM_COL32(250, 199, 77, 255));
  ImFont* sf = app.fonts.small;
  const ImU32 tc = ImGui::GetColorU32(kDim);
  const std::string xr = "step " + std::to_string(steps);
  dl->AddText(sf, sf->FontSize, ImVec2(p.x, top), tc, ytop.c_str());
  dl->AddText(sf, sf->FontSize, ImVec2(p.x, bottom - sf->FontSize), tc, "0");
  dl->AddText(sf, sf->FontSize,
              ImVec2(right - sf->CalcTextSizeA(sf->FontSize, FLT_MAX, 0, xr.c_str()).x - 2, bottom - sf->FontSize - 1),
              tc, xr.c_str());
  ImGui::Dummy(ImVec2(width, h + 2));
  if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", help);
}

// Cache bytes over the steps: this column bright, the other columns faint, all on one scale.
void draw_bytes_curve(App& app, const DecodeTrack& t, int cursor) {
  const float fs = ImGui::GetFontSize();
  section("Cache bytes, all layers (measured)");
  const DecodeFrame& f = *t.frames[size_t(cursor)];
  const int64_t now = f.bytes();
  ImGui::Text("%s", human_bytes(double(now)).c_str());
  ImGui::SameLine(0, fs * 0.6f);
  const int64_t prev = cursor > 0 ? t.frames[size_t(cursor - 1)]->bytes() : now;
  ImGui::TextColored(now == prev && cursor > 0 ? kGreen : kDim, "%s this step \xC2\xB7 at %" PRId64 " tokens",
                     now == prev && cursor > 0 ? "+0 B" : ("+" + human_bytes(double(now - prev))).c_str(),
                     f.position + 1);
  tooltip("LayerCache::bytes() summed over the layers after this step: the live entries of the cache itself");
  double ymax = 1;
  for (const auto& tr : app.gen.state.tracks)
    for (const auto& fr : tr.frames) ymax = std::max(ymax, double(fr->bytes()));
  draw_step_curve(
      app, t, cursor, [](const DecodeTrack& tr, size_t k) { return double(tr.frames[k]->bytes()); }, ymax,
      human_bytes(ymax), -1, "cache bytes (y, one scale for every column) over the steps (x); grey: the other columns");
}

// Next-character loss over the steps, -ln p of the token read, as a running mean of the last kLossMean steps
// (DecodeTrack::mean_loss, computed by the worker as frames arrive): on
// a fed held-out text it is each column's loss; on a sampled stream, how surprised each model is by its text. The
// dashed line is the end of the training context: past it a RoPE model meets positions it never saw, and a window
// without sinks has evicted the first tokens.
void draw_loss_curve(App& app, const DecodeTrack& t, int cursor) {
  const DecodeState& st = app.gen.state;
  section(st.fed ? "Loss on the held-out text (nats/char, mean of the last 32 steps)"
                 : "Surprisal of the stream (-ln p, nats/char, mean of the last 32 steps)");
  double ymax = 1;  // one scale for every column
  for (const auto& tr : st.tracks)
    for (double x : tr.mean_loss) ymax = std::max(ymax, x);
  ImGui::Text("%.3f", t.mean_loss[size_t(cursor)]);
  ImGui::SameLine();
  ImGui::TextColored(kDim, "nats/char at step %d", cursor + 1);
  char top_label[32];
  std::snprintf(top_label, sizeof top_label, "%.2f", ymax);
  const int64_t ctx = app.model ? app.model->config().context : 0;
  const int64_t mark = t.frames.empty() ? -1 : ctx - t.frames[0]->position;  // the step at position = context
  draw_step_curve(
      app, t, cursor, [](const DecodeTrack& tr, size_t k) { return tr.mean_loss[k]; }, ymax, top_label, mark,
      "loss per step (y: -ln p of the token read, running mean of 32; grey: the other columns); dashed: the end of "
      "the training context");
}

// The text of a track up to the shown step: the prompt dim, the generated characters bright, the shown one marked.
void draw_stream_text(App& app, const DecodeTrack& t, int cursor, float height) {
  ImGui::BeginChild("stream", ImVec2(0, height), true);
  ImFont* font = app.fonts.mono;
  const float fs = font->FontSize;
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 origin = ImGui::GetCursorScreenPos();
  const float right = origin.x + ImGui::GetContentRegionAvail().x;
  const Tokenizer& tok = app.model->tokenizer();
  const int64_t P = int64_t(t.prompt.size()), n = P + int64_t(t.frames.size());
  float x = origin.x, y = origin.y;
  for (int64_t p = 0; p < n; ++p) {
    const char ch = tok.symbol(token_at(t, p));
    const std::string g = ch == '\n' ? glyph('\n') : std::string(1, ch);
    const float w = font->CalcTextSizeA(fs, FLT_MAX, 0, g.c_str()).x;
    if (x + w > right) x = origin.x, y += fs;
    const int64_t step = p - P;  // the step that fed this character (< 0: the prompt)
    ImU32 col = step < 0         ? IM_COL32(140, 146, 160, 255)
                : step <= cursor ? IM_COL32(232, 236, 244, 255)
                                 : IM_COL32(84, 88, 100, 255);
    if (step == cursor) {
      dl->AddRectFilled(ImVec2(x, y), ImVec2(x + w, y + fs), ImGui::GetColorU32(kAccent), 2);
      col = IM_COL32(16, 18, 24, 255);
    }
    dl->AddText(font, fs, ImVec2(x, y), col, g.c_str());
    x += w;
    if (ch == '\n') x = origin.x, y += fs;
  }
  ImGui::Dummy(ImVec2(1, y + fs - origin.y));
  if (cursor == int(t.frames.size()) - 1) ImGui::SetScrollHereY(1.0f);
  ImGui::EndChild();
}

bool same_columns(const App& app) {
  if (app.gen.column_ids.size() != app.columns.size()) return false;
  for (size_t i = 0; i < app.columns.size(); ++i) {
    const DecodeTrack* t = generation_track(app, app.columns[i]);
    if (app.gen.column_ids[i] != app.columns[i].id || (t && t->variant != app.columns[i].variant)) return false;
  }
  return true;
}

}  // namespace

// ------------------------------------------------------------------------------------------------ state

const DecodeTrack* generation_track(const App& app, const Column& c) {
  if (app.gen.state.session != app.gen.session) return nullptr;
  for (const auto& t : app.gen.state.tracks)
    if (t.column == c.id) return &t;
  return nullptr;
}

int generation_cursor(const App& app) {
  const int n = int(app.gen.state.steps());
  if (n == 0) return -1;
  return app.gen.cursor < 0 ? n - 1 : std::min(app.gen.cursor, n - 1);
}

void start_generation(App& app) {
  GenState& g = app.gen;
  if (!app.model) return;
  Encoded e = app.model->tokenizer().encode(g.prompt, UnknownPolicy::Replace);
  if (e.ids.empty()) e.ids.push_back(app.model->tokenizer().replacement_id());
  DecodeJob j;
  g.column_ids.clear();
  for (const Column& c : app.columns) {
    j.columns.push_back({c.id, column_request(c, app.model->config().n_layer)});
    g.column_ids.push_back(c.id);
  }
  j.prompt = e.ids;
  const int64_t ctx = app.model->config().context;
  if (g.length > ctx) j.options.stream_to = g.length;
  if (g.held_out && !app.corpus_valid.empty()) {
    // The held-out split from its start: its first character is the prompt, every later one is fed in turn.
    const Encoded v = app.model->tokenizer().encode(
        app.corpus_valid.substr(0, size_t(std::max<int64_t>(ctx, g.length))), UnknownPolicy::Replace);
    j.prompt.assign(v.ids.begin(), v.ids.begin() + 1);
    j.feed.assign(v.ids.begin() + 1, v.ids.end());
  }
  j.options.temperature = g.temperature;
  j.options.top_k = g.top_k;
  j.options.seed = uint64_t(std::max(0, g.seed));
  j.shared_stream = g.shared_stream;
  g.session = app.worker->start_decode(std::move(j));
  g.state = app.worker->decode_state();
  g.cursor = -1;
  g.open = true;
}

void request_generation_steps(App& app, int n) {
  if (!app.gen.session) start_generation(app);
  app.worker->request_steps(n);
  app.gen.cursor = -1;
}

void update_generation(App& app) {
  GenState& g = app.gen;
  if (!g.session) return;
  g.state = app.worker->decode_state();
  if (g.state.session != g.session) return;
  if (g.state.full || (!g.state.preparing && g.state.driver < 0)) g.playing = false;
  const auto now = Clock::now();
  if (g.playing && !g.state.preparing && int64_t(g.state.steps()) >= g.state.requested &&
      std::chrono::duration<double>(now - g.last_request).count() >= 1.0 / std::max(0.5f, g.speed)) {
    app.worker->request_steps(1);
    g.last_request = now;
    g.cursor = -1;
  }
}

// ------------------------------------------------------------------------------------------------ sidebar

// Where the stream comes from and how far it runs: the held-out text (every column's loss), and positions past the
// training context (streaming: no refill, so a window's cache stays bounded and RoPE meets unseen positions).
void stream_controls(App& app) {
  GenState& g = app.gen;
  const int ctx = app.model ? int(app.model->config().context) : 256;
  ImGui::Checkbox("read the held-out text", &g.held_out);
  tooltip(
      "every column is fed the held-out split (from its start) instead of sampling: each step's -ln p is that "
      "column's loss on real text, so the loss curve shows whether a stream survives past the context");
  int len = std::max(ctx, g.length);
  ImGui::SetNextItemWidth(-1);
  if (ImGui::SliderInt("##gen_length", &len, ctx, 4096,
                       len > ctx ? "stream to position %d" : "stop at the context (%d)", ImGuiSliderFlags_Logarithmic))
    g.length = len;
  mark_target(app, "gen_length");
  tooltip(
      "how many positions the session runs. Past the training context the positions go on with no refill: "
      "sliding_window and sinks keep a bounded cache, dense caches grow, RoPE meets positions it never trained on, "
      "and learned positions refuse (applies at the next start)");
}

void draw_generation_panel(App& app) {
  GenState& g = app.gen;
  const float fs = ImGui::GetFontSize();
  ImGui::PushFont(app.fonts.title);
  ImGui::TextUnformatted("Generation");
  ImGui::PopFont();
  ImGui::PushTextWrapPos(0);
  ImGui::TextColored(kDim, "Every column's model writes from one prompt, token by token, each with its own cache.");
  ImGui::PopTextWrapPos();
  ImGui::PushFont(app.fonts.mono);
  ImGui::InputTextMultiline("##gen_prompt", &g.prompt, ImVec2(-1, fs * 2.6f));
  ImGui::PopFont();
  tooltip("the prompt (prefilled into every cache; changes apply at the next start)");
  sampling_sliders("gen", g.temperature, g.top_k, "; applies at the next start");
  ImGui::SameLine();
  ImGui::SetNextItemWidth(-1);
  ImGui::InputInt("##gseed", &g.seed, 1, 10);
  tooltip("seed: every column samples with this seed");
  stream_controls(app);
  ImGui::BeginDisabled(g.held_out);  // a fed text decides every token
  if (ImGui::RadioButton("one token stream", g.shared_stream)) g.shared_stream = true;
  tooltip(
      "the first column samples; every other column is fed the same tokens, so the caches are compared on one "
      "text (the best comparison of caches)");
  ImGui::SameLine();
  if (ImGui::RadioButton("each samples", !g.shared_stream)) g.shared_stream = false;
  tooltip("every column samples its own tokens with the same seed: the texts part where the models disagree");
  ImGui::EndDisabled();

  const DecodeState& st = g.state;
  const bool live = g.session && st.session == g.session;
  const bool stale = live && (!same_columns(app) || st.shared_stream != g.shared_stream);
  const int steps = int(st.steps());
  ImGui::BeginDisabled(!app.model);
  if (!live) {
    if (ImGui::Button("\xE2\x96\xB6 Start")) start_generation(app);  // ▶
    mark_target(app, "gen_start");
  } else {
    if (ImGui::Button(g.playing ? "\xE2\x9D\x9A\xE2\x9D\x9A Pause" : "\xE2\x96\xB6 Play")) {  // ❚❚ ▶
      g.playing = !g.playing;
      if (!g.playing) app.worker->stop_decode();
      g.cursor = -1;
    }
    mark_target(app, "gen_play");
    ImGui::SameLine();
    ImGui::BeginDisabled(g.playing || st.full);
    if (ImGui::Button("Step")) request_generation_steps(app, 1);
    mark_target(app, "gen_step");
    tooltip("one token in every column");
    ImGui::SameLine();
    if (ImGui::Button("+10")) request_generation_steps(app, 10);
    ImGui::EndDisabled();
    ImGui::SameLine();
    if (ImGui::Button("\xE2\x86\xBB Restart")) start_generation(app);  // ↻
    tooltip("a new session with the current prompt, options and columns");
  }
  ImGui::EndDisabled();
  ImGui::SetNextItemWidth(-1);
  ImGui::SliderFloat("##speed", &g.speed, 1, 60, "play at %.0f steps/s", ImGuiSliderFlags_Logarithmic);
  tooltip("playing speed");
  if (stale) ImGui::TextColored(kAmber, "columns or stream changed: \xE2\x86\xBB Restart to apply");

  if (live && steps > 0) {
    int k = generation_cursor(app);
    ImGui::SetNextItemWidth(-fs * 4.5f);
    int shown = k + 1;  // 1-based on screen
    if (ImGui::SliderInt("##scrub", &shown, 1, steps, "step %d")) {
      k = shown - 1;
      g.cursor = k;
      g.playing = false;
      app.worker->stop_decode();
    }
    mark_target(app, "gen_scrub");
    tooltip("move back and forth through the steps (every column shows the same step)");
    ImGui::SameLine();
    if (ImGui::ArrowButton("##back", ImGuiDir_Left)) g.cursor = std::max(0, k - 1), g.playing = false;
    ImGui::SameLine();
    if (ImGui::ArrowButton("##fwd", ImGuiDir_Right)) g.cursor = k + 1 >= steps ? -1 : k + 1;
  }
  if (live) {
    const int64_t ctx = app.model ? app.model->config().context : 0;
    const DecodeTrack* driver = st.driver >= 0 ? &st.tracks[size_t(st.driver)] : nullptr;
    ImGui::PushTextWrapPos(0);
    if (st.preparing)
      ImGui::TextColored(kAmber, "preparing the models and prefilling the prompt...");
    else if (!st.error.empty())
      ImGui::TextColored(kRed, "%s", st.error.c_str());
    else if (driver) {
      ImGui::TextColored(kDim, "step %d of %d \xC2\xB7 prompt %zu + %d tokens \xC2\xB7 context %" PRId64 "%s%s",
                         generation_cursor(app) + 1, steps, driver->prompt.size(), steps, ctx,
                         st.capacity > ctx ? (" \xC2\xB7 streaming to " + std::to_string(st.capacity)).c_str() : "",
                         st.full ? " (full)" : "");
      if (st.fed)
        ImGui::TextColored(kDim, "every column reads the held-out text: the curve is each one's loss");
      else
        ImGui::TextColored(
            kDim, st.shared_stream ? "tokens chosen by column %d (%s), fed to all" : "each column samples (seed %d)",
            st.shared_stream ? st.driver + 1 : g.seed, driver->variant.c_str());
    }
    ImGui::PopTextWrapPos();
    // The text of the driver (one stream) or of the active column (each samples).
    const DecodeTrack* shown = driver;
    if (!st.shared_stream && !app.columns.empty()) {
      const DecodeTrack* t =
          generation_track(app, app.columns[size_t(std::clamp(app.active_column, 0, int(app.columns.size()) - 1))]);
      if (t && t->error.empty()) shown = t;
    }
    if (shown && !st.preparing)
      draw_stream_text(app, *shown, generation_cursor(app),
                       std::max(fs * 4, ImGui::GetContentRegionAvail().y - fs * 2.2f));
  }
  if (ImGui::Button("\xE2\x86\x90 Back to the text view")) g.open = false, g.playing = false;  // ←
  mark_target(app, "gen_close");
}

// ------------------------------------------------------------------------------------------------ column

void draw_generation_column(App& app, Column& c, int index) {
  ImGui::PushID(c.id);
  const GenState& g = app.gen;
  const DecodeTrack* t = generation_track(app, c);
  ImGui::PushTextWrapPos(0);
  if (!t) {
    ImGui::TextColored(
        kDim, g.state.preparing && g.session == g.state.session
                  ? "preparing..."
                  : "Not part of this generation: press \xE2\x96\xB6 Start or \xE2\x86\xBB Restart in the sidebar.");
  } else if (g.state.preparing) {
    ImGui::TextColored(kAmber, "building the model and prefilling the prompt...");
  } else if (!t->error.empty()) {
    ImGui::TextColored(kRed, "This column cannot generate:");
    ImGui::TextColored(kRed, "%s", t->error.c_str());
  } else {
    if (t->variant != c.variant)
      ImGui::TextColored(kAmber, "this session decodes %s: \xE2\x86\xBB Restart for %s", t->variant.c_str(),
                         c.variant.c_str());
    const int k = generation_cursor(app);
    if (k < 0 || k >= int(t->frames.size())) {
      ImGui::TextColored(kDim, "prompt prefilled (%zu tokens): press Step or Play", t->prompt.size());
    } else {
      if (ImGui::IsWindowHovered(ImGuiHoveredFlags_ChildWindows)) app.active_column = index;
      const DecodeFrame& f = *t->frames[size_t(k)];
      const int layer = std::clamp(c.layer, 0, int(f.layers) - 1);
      const bool rows = !f.held.empty();  // older frames keep only their token, probability and bytes
      const char ch = app.model->tokenizer().symbol(f.token);
      ImGui::Text("step %" PRId64 ":", f.step + 1);
      ImGui::SameLine();
      ImGui::PushFont(app.fonts.mono);
      ImGui::TextColored(kAccent, "'%s'", glyph(ch).c_str());
      ImGui::PopFont();
      ImGui::SameLine();
      ImGui::TextColored(kDim, "at position %" PRId64 " \xC2\xB7 p = %.3f", f.position, f.probability);
      tooltip("the token fed at this step and this model's probability of it (temperature 1)");
      if (rows)
        draw_attention_strip(app, c, *t, f, layer);
      else
        ImGui::TextColored(kDim, "the weights of steps older than the newest %zu are not kept", kFramesWithWeights);
      draw_bytes_curve(app, *t, k);  // before the contents: the strips and curves line up across columns
      draw_loss_curve(app, *t, k);
      if (rows) draw_cache_contents(app, f, layer);
    }
  }
  ImGui::PopTextWrapPos();
  ImGui::PopID();
}

}  // namespace attnscope::gui
