#include "scene_figure.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "render/canvas.h"

namespace attnscope::session {

using namespace render;

namespace {

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

std::string text_preview(const std::string& text) {
  std::string s;
  size_t n = 0;
  for (uint32_t cp : utf8_decode(text)) {
    if (++n > 60) return "\u201C" + s + "\u2026\u201D";
    s += cp == '\n' ? std::string("\u21B5") : utf8_encode(cp);
  }
  return "\u201C" + s + "\u201D";
}

}  // namespace

Figure figure_from_maps(const Scene& s, const std::vector<ColumnMaps>& runs, const std::vector<std::string>& row_labels,
                        const std::vector<std::string>& col_labels, const std::string& text) {
  const AttentionMaps& ref = *runs.front().maps;
  const std::string ref_label = column_label(*runs.front().column);
  const int64_t T = ref.queries, S = ref.keys, L = ref.layers, H = ref.heads;

  Figure f;
  size_t per_column_max = 1;
  for (const ColumnMaps& r : runs)
    per_column_max = std::max(per_column_max, size_t(r.column->layer < 0 ? L : 1) * size_t(r.column->head < 0 ? H : 1));
  const bool single = runs.size() == 1;
  for (const ColumnMaps& r : runs) {
    const SceneColumn& c = *r.column;
    const AttentionMaps& m = *r.maps;
    const std::string label = column_label(c);
    const int64_t l0 = c.layer < 0 ? 0 : c.layer, l1 = c.layer < 0 ? L : c.layer + 1;
    const int64_t h0 = c.head < 0 ? 0 : c.head, h1 = c.head < 0 ? H : c.head + 1;
    for (int64_t l = l0; l < l1; ++l)
      for (int64_t h = h0; h < h1; ++h) {
        Panel p;
        p.kind = c.view;
        p.rows = T;
        p.cols = S;
        p.row_labels = row_labels;
        p.col_labels = col_labels;
        const std::string where = "layer " + std::to_string(l) + " \u00B7 head " + std::to_string(h);
        if (single && per_column_max > 1) {
          p.title = where;
        } else if (!single) {
          p.title = c.view == PanelKind::Diff ? ref_label + " \u2212 " + label : label;
          p.subtitle = where + (m.mode == "trained" ? "" : " \u00B7 " + m.mode);
        }
        const std::vector<float> av = m.head_attn(l, h);    // [T, S]
        const std::vector<uint8_t> mv = m.head_mask(l, h);  // [T, S]
        const float* a = av.data();
        const uint8_t* mk = mv.data();
        const size_t n = size_t(T * S);
        if (c.view == PanelKind::Weights) {
          p.values.assign(a, a + n);
          p.mask.assign(mk, mk + n);
          if (!std::isnan(m.loss) && !(single && per_column_max > 1))
            p.caption = (single && m.mode != "trained" ? m.mode + " \u00B7 " : "") + "loss " + fmt("%.3f", m.loss) +
                        " nats/char";
        } else if (c.view == PanelKind::Mask) {
          size_t kept = 0;
          for (size_t i = 0; i < n; ++i) {
            p.values.push_back(mk[i] ? 1.f : 0.f);
            kept += mk[i] ? 1 : 0;
          }
          p.caption = std::to_string(kept) + " pairs computed, " +
                      fmt("%.0f", 100.0 * double(kept) / (double(T) * double(T + 1) / 2)) + "% of causal";
        } else {
          const std::vector<float> bv = ref.head_attn(l, h);     // [T, S]
          const std::vector<uint8_t> bmv = ref.head_mask(l, h);  // [T, S]
          const float* b = bv.data();
          const uint8_t* bm = bmv.data();
          const bool signed_diff = s.colormap == Colormap::Diverging;
          for (size_t i = 0; i < n; ++i) {
            const float d = b[i] - a[i];
            p.values.push_back(signed_diff ? d : std::fabs(d));
            p.mask.push_back(mk[i] || bm[i]);
          }
          p.row_stat = kl_rows(b, a, T, S);
          p.row_stat_label = "KL per row";
          double mean = 0;
          size_t worst = 0;
          for (size_t i = 0; i < p.row_stat.size(); ++i) {
            mean += p.row_stat[i];
            if (p.row_stat[i] > p.row_stat[worst]) worst = i;
          }
          mean /= double(std::max<size_t>(p.row_stat.size(), 1));
          p.caption = "KL(" + ref_label + " \u2016 " + label + ") per row: mean " + fmt("%.3g", mean) + ", max " +
                      fmt("%.3g", p.row_stat[worst]) + " at query " + std::to_string(worst) + " (" + row_labels[worst] +
                      ")";
        }
        f.panels.push_back(std::move(p));
      }
  }
  f.grid_cols = per_column_max > 1 ? int(runs.front().column->head < 0 ? H : L) : 0;
  if (single && per_column_max > 1) {
    if (runs[0].column->layer < 0) f.data_shape.push_back(L);
    if (runs[0].column->head < 0) f.data_shape.push_back(H);
  } else if (f.panels.size() > 1) {
    f.data_shape.push_back(int64_t(f.panels.size()));
  }
  f.data_shape.push_back(T);
  f.data_shape.push_back(S);

  if (!s.title.empty()) {
    f.title = s.title;
  } else if (single) {
    const SceneColumn& c = *runs[0].column;
    f.title = column_label(c);
    if (c.layer >= 0) f.title += " \u2014 layer " + std::to_string(c.layer);
    if (c.head >= 0) f.title += (c.layer >= 0 ? ", head " : " \u2014 head ") + std::to_string(c.head);
    if (c.view == PanelKind::Mask) f.title += " (computed pairs)";
  } else {
    for (size_t i = 0; i < runs.size(); ++i)
      if (i == 0 || runs[i].column->view != PanelKind::Diff)
        f.title += (f.title.empty() ? "" : " vs ") + column_label(*runs[i].column);
  }
  f.subtitle = text_preview(text) + " \u00B7 " + std::to_string(T) + " characters";
  return f;
}

}  // namespace attnscope::session
