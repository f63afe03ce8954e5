// The state scripted runs print (`print`, and at exit; script.h): the frame, the view, the text, every column's result
// (its model, loss, timing, computed pairs, cache), the generation session and the KV-cache calculator. The GUI
// tests read these lines.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "imgui.h"

#include "bench.h"
#include "registry.h"
#include "script.h"
#include "state.h"
#include "views.h"

namespace attnscope::gui {
namespace {

// The last frame's fill: the screen pixels its triangles cover (clipped to each command's clip rectangle), the
// overdraw this means, and the windows that cover the most. Under software OpenGL (Xvfb) the frame's time is this
// fill; on a GPU it is negligible.
void print_fill(FILE* f) {
  const ImDrawData* dd = ImGui::GetDrawData();
  if (!dd || !dd->Valid || dd->DisplaySize.x <= 0) return;
  std::vector<std::pair<double, std::string>> by_list;
  double total = 0;
  for (int l = 0; l < dd->CmdListsCount; ++l) {
    const ImDrawList* list = dd->CmdLists[l];
    double area = 0;
    for (const ImDrawCmd& cmd : list->CmdBuffer) {
      const ImVec4 clip = cmd.ClipRect;
      for (unsigned t = 0; t + 2 < cmd.ElemCount; t += 3) {
        ImVec2 v[3];
        float x0 = 1e9f, y0 = 1e9f, x1 = -1e9f, y1 = -1e9f;
        for (int k = 0; k < 3; ++k) {
          v[k] = list->VtxBuffer[int(cmd.VtxOffset + list->IdxBuffer[int(cmd.IdxOffset + t) + k])].pos;
          x0 = std::min(x0, v[k].x), y0 = std::min(y0, v[k].y), x1 = std::max(x1, v[k].x), y1 = std::max(y1, v[k].y);
        }
        const double tri =
            0.5 * std::abs((v[1].x - v[0].x) * (v[2].y - v[0].y) - (v[2].x - v[0].x) * (v[1].y - v[0].y));
        const double box = double(x1 - x0) * double(y1 - y0);
        const double cw = std::max(0.f, std::min(x1, clip.z) - std::max(x0, clip.x));
        const double ch = std::max(0.f, std::min(y1, clip.w) - std::max(y0, clip.y));
        area += box > 0 ? tri * (cw * ch) / box : 0;
      }
    }
    total += area;
    by_list.emplace_back(area, list->_OwnerName ? list->_OwnerName : "?");
  }
  std::sort(by_list.begin(), by_list.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  const double screen = double(dd->DisplaySize.x) * dd->DisplaySize.y;
  std::fprintf(f, "  fill: %.2f Mpixels drawn, %.2fx the window's %.2f M, in %d draw lists; most:", total / 1e6,
               total / screen, screen / 1e6, dd->CmdListsCount);
  for (size_t i = 0; i < by_list.size() && i < 4; ++i)
    std::fprintf(f, "%s %s %.2f M", i ? "," : "", by_list[i].second.c_str(), by_list[i].first / 1e6);
  std::fprintf(f, "\n");
}

// A quantile of recent times, 0 before there are any.
double recent_ms(const std::vector<double>& ms, double q) { return ms.empty() ? 0 : quantile(ms, q); }

// The frames' times (all, and those drawn: the others showed the same picture and skipped OpenGL) and the fill.
void print_frame(const App& app, FILE* f) {
  const std::vector<double> ft(app.frame_ms.begin(), app.frame_ms.end()), dt(app.drawn_ms.begin(), app.drawn_ms.end());
  std::fprintf(f, "  frame time: median %.2f ms, p90 %.2f ms over the last %zu frames\n", recent_ms(ft, 0.5),
               recent_ms(ft, 0.9), ft.size());
  std::fprintf(f, "  drawn frames: %d of %d (the others showed the same picture), median %.2f ms, p90 %.2f ms\n",
               app.frames_drawn, app.frame, recent_ms(dt, 0.5), recent_ms(dt, 0.9));
  print_fill(f);
}

}  // namespace

void print_state(const App& app, FILE* f) {
  int results = 0, errors = 0;
  for (const Column& c : app.columns) {
    if (c.shown && c.shown->ok) ++results;
    if (c.shown && !c.shown->ok) ++errors;
  }
  static const char* cmaps[] = {"viridis", "magma", "cividis", "gray"};
  std::fprintf(f,
               "attnscope gui: frame %d, %zu columns, %d results, %d errors, text %zu characters, window %d+%d, "
               "%zu cached models\n",
               app.frame, app.columns.size(), results, errors, app.tokens.ids.size(), app.tokens.start, app.tokens.len,
               app.worker->cached_models());
  if (!app.worker->model_error().empty())  // the checkpoint could not be loaded (the window shows it too)
    std::fprintf(f, "  model: error: %s\n", app.worker->model_error().c_str());
  std::fprintf(
      f, "  view: colormap %s, scale %d, exclude_first %d, link %d, ui_scale %.2f, diff %d (%d vs %d%s), theme %s\n",
      cmaps[int(app.view.colormap)], int(app.view.scale), int(app.view.exclude_first), int(app.view.link),
      double(app.view.ui_scale), int(app.view.show_diff), app.view.diff_a, app.view.diff_b,
      app.diff.problem.empty() && !app.diff.kl_rows.empty() ? (", mean KL " + std::to_string(app.diff.mean_kl)).c_str()
                                                            : "",
      app.view.light_theme ? "light" : "dark");
  print_frame(app, f);
  std::fprintf(f, "  window icon: %s\n", app.window_icon.empty() ? "(none found)" : app.window_icon.c_str());
  std::fprintf(f, "  text: \"");
  for (char ch : app.text.text.substr(0, 200)) std::fputs(ch == '\n' ? "\\n" : std::string(1, ch).c_str(), f);
  std::fprintf(f, "%s\"\n", app.text.text.size() > 200 ? "..." : "");
  for (size_t i = 0; i < app.columns.size(); ++i) {
    const Column& c = app.columns[i];
    std::string p;
    const VariantInfo* info = find_variant(c.variant);
    if (info)
      for (const auto& s : info->params)
        p += (p.empty() ? "" : ",") + s.name + "=" + format_param(s, c.params.at(s.name));
    std::string layers;  // per-layer columns: every layer's variant; painted masks: the cells allowed
    for (const LayerSpec& l : c.per_layer ? c.layers : std::vector<LayerSpec>{})
      layers += (layers.empty() ? "" : ",") + l.variant;
    const CustomMask& mask = c.per_layer && c.layer < int(c.layers.size()) ? c.layers[size_t(c.layer)].mask : c.mask;
    std::fprintf(f, "  column %zu: %s(%s)%s%s%s layer %d head %d zoom %.2f%s: ", i, c.variant.c_str(), p.c_str(),
                 layers.empty() ? "" : " layers [", layers.c_str(), layers.empty() ? "" : "]", c.layer, c.head,
                 double(c.zoom),
                 mask.empty() ? "" : (", painted " + std::to_string(mask.allowed_pairs()) + " cells").c_str());
    if (!c.shown)
      std::fprintf(f, "no result\n");
    else if (!c.shown->ok)
      std::fprintf(f, "error: %s\n", c.shown->error.c_str());
    else {
      std::vector<double> ms = c.timing.ms;
      std::sort(ms.begin(), ms.end());
      int64_t cache = 0;
      for (int64_t b : c.shown->maps->cache_formula_bytes) cache += b;
      std::fprintf(f,
                   "%s (%s), %lldx%lld, loss %.3f (MHA %.3f), forward %.1f ms, timing %zu runs median %.1f ms, "
                   "computed %.1f%%, cache %lld B, %zu tile maps, rows %lld new %lld reused%s%s%s\n",
                   c.shown->maps->mode.c_str(), c.shown->model_dir.c_str(), (long long)c.shown->maps->queries,
                   (long long)c.shown->maps->keys, c.shown->maps->loss, c.shown->base_loss, c.shown->maps->forward_ms,
                   ms.size(), ms.empty() ? 0.0 : ms[ms.size() / 2], 100 * c.shown->computed_fraction, (long long)cache,
                   size_t(std::count_if(c.shown->pattern.begin(), c.shown->pattern.end(),
                                        [](const PatternSummary& s) { return !s.tiles.empty(); })),
                   (long long)c.shown->computed_rows, (long long)c.shown->reused_rows,
                   c.shown->seq == c.seq ? "" : " (stale)", c.explain_open ? ", explanation open" : "",
                   c.shown->maps->experts > 0 ? (", routing " + std::to_string(c.shown->maps->experts) +
                                                 " experts top-" + std::to_string(c.shown->maps->top_k))
                                                    .c_str()
                                              : "");
    }
    if (!c.knockouts.empty()) {
      std::fprintf(f, "    knocked out (%s): %s", knock_mode_name(c.knock_mode), knockouts_label(c.knockouts).c_str());
      if (c.shown && c.shown->ok && !c.shown->knockouts.empty())
        std::fprintf(f, ", loss %.3f without them (%+.3f), held-out %+.4f", c.shown->unknocked_loss,
                     c.shown->maps->loss - c.shown->unknocked_loss, c.shown->heldout_knock_delta);
      std::fprintf(f, "\n");
    }
    const std::string heads = heads_summary(c);
    if (!heads.empty()) std::fprintf(f, "    heads: %s\n", heads.c_str());
  }
  const GenState& g = app.gen;
  if (g.session) {
    const DecodeState& st = g.state;
    std::fprintf(f,
                 "  generation: session %llu, %zu steps, cursor %d, stream %s (driver column %d), positions %lld, full "
                 "%d%s%s\n",
                 (unsigned long long)g.session, st.steps(), generation_cursor(app),
                 st.fed             ? "heldout"
                 : st.shared_stream ? "shared"
                                    : "own",
                 st.driver, (long long)st.capacity, int(st.full),
                 st.error.empty() ? "" : ", error: ", st.error.c_str());
    for (size_t i = 0; i < app.columns.size(); ++i) {
      const DecodeTrack* t = generation_track(app, app.columns[i]);
      if (!t) continue;
      std::fprintf(f, "  gen column %zu: %s, %zu frames", i, t->variant.c_str(), t->frames.size());
      const int k = generation_cursor(app);
      if (!t->error.empty())
        std::fprintf(f, ", error: %s", t->error.c_str());
      else if (k >= 0 && k < int(t->frames.size())) {
        const DecodeFrame& fr = *t->frames[size_t(k)];
        std::fprintf(f, ", step %lld token %lld at position %lld", (long long)fr.step, (long long)fr.token,
                     (long long)fr.position);
        if (!fr.held.empty())
          std::fprintf(f, ", layer 0 %s holds %zu of %lld tokens", fr.layout[0].kind.c_str(), fr.held[0].size(),
                       (long long)fr.position + 1);
        else
          std::fprintf(f, ", rows not kept");
        std::fprintf(f, ", cache %lld B, loss %.3f", (long long)fr.bytes(), t->mean_loss[size_t(k)]);
      }
      std::fprintf(f, "\n");
    }
  }
  if (app.kv.open)
    std::fprintf(f, "  kv calculator: preset %d, %d tokens, batch %d, dtype %d\n", app.kv.preset, app.kv.tokens,
                 app.kv.batch, app.kv.dtype);
  std::fflush(f);
}

}  // namespace attnscope::gui
