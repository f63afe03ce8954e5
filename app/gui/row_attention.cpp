// Row 1 of a column: the attention heatmap of one head (zoom, pan, character labels or position ticks, hover
// readout) or the grid of every layer x head, with its colour bar.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>

#include "imgui.h"
#include "imgui_internal.h"  // SetItemUsingMouseWheel: the wheel zooms a heatmap instead of scrolling
#include "registry.h"
#include "state.h"
#include "views.h"
#include "widgets.h"

namespace attnscope::gui {

namespace {

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
  if (tex)
    dl->AddImage(reinterpret_cast<ImTextureID>(static_cast<intptr_t>(tex)), pos, end);
  else
    dl->AddRectFilled(pos, end, IM_COL32(40, 40, 48, 255));
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

}  // namespace

HeatmapStyle view_style(const App& app) {
  HeatmapStyle st;
  st.colormap = app.view.colormap;
  st.scale = app.view.scale;
  st.mask_overlay = false;
  st.log_decades = app.view.log_decades;
  st.exclude_first = app.view.exclude_first;
  return st;
}

HeatmapStyle style_for(const App& app, const Column& c, const VariantInfo* info) {
  HeatmapStyle st = view_style(app);
  st.view = c.view;
  st.signed_values = info && info->signed_display;
  st.mask_overlay = app.view.mask_overlay;
  return st;
}

namespace {

// What the heatmap row draws from: the result, the selection, the axes' tokens (keys: the second text for
// cross-attention) and where the row starts.
struct Row {
  App& app;
  Column& c;
  int index;
  const ColumnResult& r;
  bool stale;
  int L = 0, H = 0, T = 0, S = 0, layer = 0, head = 0;
  bool grid = false, cross = false;  // cross: the keys are the second text
  HeatmapStyle st;
  const std::vector<int64_t>* keys = nullptr;
  int qpos0 = 0, kpos0 = 0;
  float fs = 0, width = 0, digit = 0;
  ImFont* lf = nullptr;
  ImVec2 start;
};

// The matrices on screen, as textures: one, or layers x heads; uploaded only when the result or the selection
// changes, and then only the rows that changed (typing: the new rows; UploadedFrom).
void upload_tiles(Row& w) {
  Column& c = w.c;
  const AttentionMaps& m = *w.r.maps;
  const std::string key = std::to_string(w.r.seq) + "/" + std::to_string(w.layer) + "/" + std::to_string(c.head);
  if (key == c.tiles_key) return;
  const int kept = c.tiles_from.kept(m, w.grid ? "grid" : std::to_string(w.layer) + "/" + std::to_string(w.head));
  const size_t count = w.grid ? size_t(w.L) * size_t(w.H) : 1;
  if (c.tiles.size() != count) {
    c.tiles.clear();
    c.tiles.resize(count);
  }
  size_t k = 0;
  for (int l = w.grid ? 0 : w.layer; l < (w.grid ? w.L : w.layer + 1); ++l)
    for (int h = w.grid ? 0 : w.head; h < (w.grid ? w.H : w.head + 1); ++h)
      c.tiles[k++].set_rows({m.attn_row(l, h, 0), m.has_mask() ? m.mask_row(l, h, 0) : nullptr, w.T, w.S,
                             int(m.stride()), int(m.planes->rows), kept});
  c.tiles_key = key;
}

// Every layer x head as small tiles (layers down, heads across); clicking a tile opens that head.
Hover draw_head_grid(Row& w) {
  App& app = w.app;
  ImFont* lf = w.lf;
  const ImVec2 start = w.start;
  const int L = w.L, H = w.H;
  Hover hv;
  const float lw = w.digit * 3 + 4, lh = lf->FontSize + 3, gap = std::max(2.f, w.fs * 0.15f);
  const float tile = std::max(8.f, (w.width - lw) / float(H) - gap);
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
      Hover th = draw_matrix(app, w.c.tiles[size_t(l * H + h)], h, p, tile, Labels::None, w.st,
                             Window{0, 0, float(w.S), float(w.T)}, w.r.tokens, *w.keys, w.qpos0, w.kpos0, w.stale);
      const std::string role = head_role_label(w.c, l, h);  // the heads row's strongest role (row_heads.cpp)
      if (!role.empty() && tile >= lf->FontSize * 2) {
        const ImVec2 ts = lf->CalcTextSizeA(lf->FontSize, FLT_MAX, 0, role.c_str());
        const ImVec2 a(p.x + tile - ts.x - 3, p.y + tile - ts.y - 2);  // bottom right, over a dark plate
        ImGui::GetWindowDrawList()->AddRectFilled(ImVec2(a.x - 2, a.y - 1), ImVec2(p.x + tile - 1, p.y + tile - 1),
                                                  ImGui::GetColorU32(ImVec4(0, 0, 0, 0.7f)));
        ImGui::GetWindowDrawList()->AddText(lf, lf->FontSize, a, ImGui::GetColorU32(kGreen), role.c_str());
      }
      if (th.on) {
        ImGui::GetWindowDrawList()->AddRect(ImVec2(p.x - 1, p.y - 1), ImVec2(p.x + tile + 1, p.y + tile + 1),
                                            ImGui::GetColorU32(kAccent), 0, 0, 2);
        if (ImGui::IsMouseClicked(0)) set_layer_head(app, w.index, l, h);
        hv = th;
        hv.layer = l;
      }
    }
  }
  const float used = lh + float(L) * (tile + gap);
  app.targets["col" + std::to_string(w.index) + ".heatmap"] =
      ImVec4(start.x + lw, start.y + lh, start.x + lw + tile, start.y + lh + tile);
  ImGui::SetCursorScreenPos(start);
  ImGui::Dummy(ImVec2(w.width, used));
  return hv;
}

// The wheel zooms about the cell under the pointer, dragging pans, a double-click resets; the visible window `v`
// follows the column's zoom and first visible cell, clamped to the matrix.
void zoom_and_pan(Column& c, Window& v, ImVec2 p, float size, int T, int S, bool stale) {
  ImGuiIO& io = ImGui::GetIO();
  if (ImGui::IsItemHovered() && !stale) {
    ImGui::SetItemUsingMouseWheel();
    if (io.MouseWheel != 0) {  // zoom about the cell under the pointer
      const float fx = (io.MousePos.x - p.x) / size, fy = (io.MousePos.y - p.y) / size;
      const float ax = v.c0 + fx * v.cols, ay = v.r0 + fy * v.rows;
      c.zoom = std::clamp(c.zoom * std::pow(1.25f, io.MouseWheel), 1.f, std::max(1.f, float(std::max(T, S)) / 4));
      v.cols = float(S) / c.zoom;
      v.rows = float(T) / c.zoom;
      c.x0 = ax - fx * v.cols;
      c.y0 = ay - fy * v.rows;
    }
    if (ImGui::IsMouseDoubleClicked(0)) c.zoom = 1, c.x0 = c.y0 = 0;
  }
  if (ImGui::IsItemActive() && ImGui::IsMouseDragging(0, 1.f)) {  // pan
    c.x0 -= io.MouseDelta.x / size * v.cols;
    c.y0 -= io.MouseDelta.y / size * v.rows;
  }
  v.cols = float(S) / c.zoom;
  v.rows = float(T) / c.zoom;
  c.x0 = std::clamp(c.x0, 0.f, float(S) - v.cols);
  c.y0 = std::clamp(c.y0, 0.f, float(T) - v.rows);
  v.c0 = c.x0;
  v.r0 = c.y0;
}

// One head, as large as the column allows, with characters or position ticks on the axes.
Hover draw_single_head(Row& w) {
  Column& c = w.c;
  const float fs = w.fs, width = w.width, digit = w.digit;
  const ImVec2 start = w.start;
  ImFont* lf = w.lf;
  // characters on the axes when a cell is at least about a character wide, else position ticks
  float size = width - digit * 4 - 6;
  Window v{c.x0, c.y0, float(w.S) / c.zoom, float(w.T) / c.zoom};
  // the cell size the heatmap gets: the column's width, or less when the rows below leave less height (measured
  // from the body's top, not from where it is scrolled to: the size must not follow the scroll)
  const float top = start.y - ImGui::GetWindowPos().y + ImGui::GetScrollY();
  const float room0 = ImGui::GetWindowHeight() - top - c.rows_h;
  const float cell = (std::max(fs * 8, std::min(width, room0)) - digit * 2) / std::max(v.cols, v.rows);
  Labels labels = Labels::None;
  if (w.app.view.labels) labels = cell >= digit * 1.05f ? Labels::Chars : Labels::Ticks;
  const float lw = labels == Labels::Chars ? digit * 1.4f + 4 : labels == Labels::Ticks ? digit * 4 + 6 : 0;
  const float lh = labels == Labels::None ? 0 : lf->FontSize + 4;
  // as large as the column allows while the rows below (their height last frame) still fit
  const bool strip = !w.cross && !w.r.maps->char_loss.empty();  // the hard-characters strip under the key axis
  const float strip_h = strip ? fs * 0.5f + 3 : 0;
  const float room = room0 - lh - strip_h;
  size = std::max(fs * 8, std::min(width - lw, room));
  const ImVec2 p(start.x + lw + std::max(0.f, (width - lw - size) * 0.5f), start.y + lh);
  ImGui::SetCursorScreenPos(p);
  ImGui::InvisibleButton("##heatmap", ImVec2(size, size));
  const std::string tname = "col" + std::to_string(w.index) + ".heatmap";
  mark_target(w.app, tname.c_str());
  zoom_and_pan(c, v, p, size, w.T, w.S, w.stale);
  Hover hv =
      draw_matrix(w.app, c.tiles[0], w.head, p, size, labels, w.st, v, w.r.tokens, *w.keys, w.qpos0, w.kpos0, w.stale);
  hv.layer = w.layer;
  if (c.zoom > 1.001f) {
    char z[48];
    std::snprintf(z, sizeof z, "%.1f\xC3\x97  (double-click: reset)", double(c.zoom));
    ImGui::GetWindowDrawList()->AddText(lf, lf->FontSize, ImVec2(p.x + 4, p.y + size - lf->FontSize - 3),
                                        IM_COL32(255, 255, 255, 200), z);
  }
  if (strip) draw_loss_strip(w.app, w.r, ImVec2(p.x, p.y + size + 3), size, v.c0, v.cols, fs * 0.5f, w.stale);
  ImGui::SetCursorScreenPos(ImVec2(start.x, p.y + size + strip_h + fs * 0.3f));
  ImGui::Dummy(ImVec2(width, 1));
  return hv;
}

// The hovered cell's query, key and weight (fixed height: no jumping), or what the row shows.
void draw_hover_readout(const Row& w, const Hover& hv) {
  const AttentionMaps& m = *w.r.maps;
  const std::vector<int64_t>& keys = *w.keys;
  const Tokenizer& tok = w.app.model->tokenizer();
  if (hv.on && hv.i < int(w.r.tokens.size()) && hv.j < int(keys.size())) {
    const int hl = hv.layer;
    const float v = m.at(hl, hv.head, hv.i, hv.j);
    const bool comp = !m.has_mask() || m.computed(hl, hv.head, hv.i, hv.j);
    ImGui::Text("q %d %s \xE2\x86\x92 k %d %s", w.qpos0 + hv.i, quoted(tok.symbol(w.r.tokens[size_t(hv.i)])).c_str(),
                w.kpos0 + hv.j, quoted(tok.symbol(keys[size_t(hv.j)])).c_str());
    ImGui::SameLine();
    if (comp)
      ImGui::TextColored(kAccent, "%.4f", double(v));
    else
      ImGui::TextColored(kDim, "skipped");
    if (w.grid) {
      ImGui::SameLine();
      ImGui::TextColored(kDim, "L%d h%d", hl, hv.head);
    }
  } else if (w.grid) {
    ImGui::TextColored(kDim, "%d layers \xC3\x97 %d heads \xC2\xB7 click a tile", w.L, w.H);
  } else {
    ImGui::TextColored(kDim, "layer %d \xC2\xB7 head %d \xC2\xB7 %d\xC3\x97%d \xC2\xB7 wheel: zoom", w.layer, w.head,
                       w.T, w.S);
  }
}

// The colour bar of the weights, or the legend of the mask view.
void draw_row_legend(const Row& w) {
  const float fs = w.fs, width = w.width;
  const Column& c = w.c;
  const float bw = std::min(width * 0.5f, fs * 14);
  ImVec2 p = ImGui::GetCursorScreenPos();
  p.x += (width - bw) * 0.5f;
  if (c.view == View::Weights) {
    float vmax = 0;
    for (const Heatmap& hm : c.tiles) vmax = std::max(vmax, hm.vmax(w.st.exclude_first));
    if (!w.grid && !c.tiles.empty()) vmax = c.tiles[0].vmax(w.st.exclude_first);
    draw_colorbar(w.st, vmax, p, bw, fs * 0.6f);
  } else {
    ImDrawList* dl = ImGui::GetWindowDrawList();
    dl->AddRectFilled(p, ImVec2(p.x + fs * 0.9f, p.y + fs * 0.7f), IM_COL32(250, 199, 77, 255));
    dl->AddText(ImVec2(p.x + fs * 1.2f, p.y - fs * 0.2f), ImGui::GetColorU32(kDim), "computed");
    dl->AddRectFilled(ImVec2(p.x + fs * 6, p.y), ImVec2(p.x + fs * 6.9f, p.y + fs * 0.7f), IM_COL32(60, 62, 70, 255));
    dl->AddText(ImVec2(p.x + fs * 7.2f, p.y - fs * 0.2f), ImGui::GetColorU32(kDim), "skipped");
  }
  ImGui::Dummy(ImVec2(width, fs * 0.9f));
}

}  // namespace

// Row 1: the heatmap of one head (zoom with the wheel, pan by dragging, double-click resets) or the grid of
// every layer x head (click a tile to open it).
void draw_attention_row(App& app, Column& c, int index, const ColumnResult& r, const VariantInfo* info, bool stale) {
  const AttentionMaps& m = *r.maps;
  Row w{app, c, index, r, stale};
  w.fs = ImGui::GetFontSize();
  w.L = int(m.layers), w.H = int(m.heads), w.T = int(m.queries), w.S = int(m.keys);
  w.layer = std::clamp(c.layer, 0, w.L - 1);
  w.grid = c.head < 0;
  w.head = w.grid ? 0 : std::min(c.head, w.H - 1);
  upload_tiles(w);
  w.st = style_for(app, c, info);
  for (const Heatmap& hm : c.tiles) w.st.signed_values = w.st.signed_values || hm.has_negative();

  w.width = ImGui::GetContentRegionAvail().x;
  w.lf = app.fonts.small;
  w.digit = w.lf->CalcTextSizeA(w.lf->FontSize, FLT_MAX, 0, "0").x;
  w.start = ImGui::GetCursorScreenPos();
  const bool cross = info && info->needs_kv_text;
  w.cross = cross;
  w.keys = cross ? &r.kv_tokens : &r.tokens;
  w.qpos0 = app.tokens.start;
  w.kpos0 = cross ? 0 : app.tokens.start;
  const Hover hv = w.grid ? draw_head_grid(w) : draw_single_head(w);
  draw_hover_readout(w, hv);
  draw_row_legend(w);
}

}  // namespace attnscope::gui
