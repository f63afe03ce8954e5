// The scaling panel: the `attnscope bench` sweep (attention/bench.h: one layer per variant, each point in a forked
// child) for the columns' variants on a background thread, drawn live as log-log latency curves with their
// slopes, and the peak memory of every point.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "error.h"
#include "state.h"
#include "studio.h"
#include "widgets.h"

namespace attnscope::gui {

// Length-major, so every curve grows together; one run_bench per point (the library reports a sweep only at its end).
ScalingRun::ScalingRun(std::vector<std::string> variants, std::vector<int64_t> lengths, int repeats)
    : variants_(std::move(variants)), lengths_(std::move(lengths)), job_([this, repeats](auto& c) {
        int done = 0;
        for (int64_t T : lengths_)
          for (const std::string& v : variants_) {
            if (c.cancelled()) return;
            c.progress(done++, total(), v + " at " + std::to_string(T));
            BenchOptions o;
            o.variants = {v};
            o.lengths = {T};
            o.repeats = repeats;
            o.decode_tokens = 0;           // prefill latency only
            o.measure_gemm = false;        // no calibration per point
            BenchReport r = run_bench(o);  // an Error ends the sweep with its message
            c.update([&](Measured& m) {
              m.device = r.device;
              m.points.insert(m.points.end(), r.points.begin(), r.points.end());
            });
          }
      }) {}

namespace {

// Distinct line colours (Tableau 10).
ImU32 series_colour(size_t i) {
  static const ImU32 c[] = {IM_COL32(78, 121, 167, 255),  IM_COL32(242, 142, 43, 255), IM_COL32(225, 87, 89, 255),
                            IM_COL32(118, 183, 178, 255), IM_COL32(89, 161, 79, 255),  IM_COL32(237, 201, 72, 255)};
  return c[i % 6];
}

std::string num(double v) {
  char b[32];
  if (v >= 100)
    std::snprintf(b, sizeof b, "%.0f", v);
  else if (v >= 1)
    std::snprintf(b, sizeof b, "%.3g", v);
  else
    std::snprintf(b, sizeof b, "%.2g", v);
  return b;
}

// A log-log plot of y over the run's lengths: decade grid lines, one polyline and dots per variant.
void draw_loglog(const ScalingRun& run, const std::vector<BenchPoint>& pts, double BenchPoint::*field,
                 const char* y_label, ImVec2 size) {
  ImDrawList* dl = ImGui::GetWindowDrawList();
  ImFont* font = ImGui::GetFont();
  const float fs = ImGui::GetFontSize();
  const ImVec2 p0 = ImGui::GetCursorScreenPos();
  ImGui::Dummy(size);
  const float left = fs * 3.6f, bottom = fs * 1.6f, top = fs * 0.6f, right = fs * 0.8f;
  const ImVec2 a(p0.x + left, p0.y + top), b(p0.x + size.x - right, p0.y + size.y - bottom);
  dl->AddRectFilled(a, b, IM_COL32(22, 24, 30, 255));
  dl->AddRect(a, b, ImGui::GetColorU32(ImGuiCol_Border));
  double ylo = INFINITY, yhi = -INFINITY;
  for (const BenchPoint& p : pts)
    if (p.status == "ok" && std::isfinite(p.*field) && p.*field > 0)
      ylo = std::min(ylo, p.*field), yhi = std::max(yhi, p.*field);
  const double xlo = double(run.lengths().front()),
               xhi = double(std::max(run.lengths().back(), run.lengths().front() * 2));
  if (!std::isfinite(ylo)) ylo = 0.01, yhi = 1;
  double ly0 = std::floor(std::log10(ylo)), ly1 = std::ceil(std::log10(yhi));
  if (ly1 <= ly0) ly1 = ly0 + 1;
  const double lx0 = std::log2(xlo), lx1 = std::log2(xhi);
  auto X = [&](double x) { return a.x + float((std::log2(x) - lx0) / (lx1 - lx0)) * (b.x - a.x); };
  auto Y = [&](double y) { return b.y - float((std::log10(y) - ly0) / (ly1 - ly0)) * (b.y - a.y); };
  const ImU32 grid = IM_COL32(60, 64, 76, 255), dim = ImGui::GetColorU32(kDim);
  for (double e = ly0; e <= ly1 + 1e-9; ++e) {
    const float y = Y(std::pow(10, e));
    dl->AddLine(ImVec2(a.x, y), ImVec2(b.x, y), grid);
    const std::string t = num(std::pow(10, e));
    dl->AddText(font, fs * 0.85f, ImVec2(a.x - fs * 0.3f - ImGui::CalcTextSize(t.c_str()).x * 0.85f, y - fs * 0.45f),
                dim, t.c_str());
    for (int k = 2; k < 10 && e < ly1; ++k) {  // minor ticks
      const float ym = Y(k * std::pow(10, e));
      dl->AddLine(ImVec2(a.x, ym), ImVec2(a.x + fs * 0.3f, ym), grid);
    }
  }
  for (int64_t T : run.lengths()) {
    const float x = X(double(T));
    dl->AddLine(ImVec2(x, a.y), ImVec2(x, b.y), grid);
    const std::string t = std::to_string(T);
    dl->AddText(font, fs * 0.85f, ImVec2(x - ImGui::CalcTextSize(t.c_str()).x * 0.42f, b.y + fs * 0.2f), dim,
                t.c_str());
  }
  dl->AddText(font, fs * 0.85f, ImVec2(a.x + fs * 0.4f, a.y + fs * 0.2f), dim, y_label);
  const char* xl = "sequence length T";
  dl->AddText(font, fs * 0.85f, ImVec2(b.x - ImGui::CalcTextSize(xl).x * 0.85f - fs * 0.3f, b.y - fs * 1.1f), dim, xl);
  dl->PushClipRect(a, b, true);
  for (size_t v = 0; v < run.variants().size(); ++v) {
    std::vector<ImVec2> line;
    for (const BenchPoint& p : pts)
      if (p.variant == run.variants()[v] && p.status == "ok" && std::isfinite(p.*field) && p.*field > 0)
        line.emplace_back(X(double(p.length)), Y(p.*field));
    std::sort(line.begin(), line.end(), [](const ImVec2& l, const ImVec2& r) { return l.x < r.x; });
    if (line.size() >= 2) dl->AddPolyline(line.data(), int(line.size()), series_colour(v), 0, 2.5f);
    for (const ImVec2& q : line) dl->AddCircleFilled(q, 4.f, series_colour(v));
  }
  dl->PopClipRect();
}

}  // namespace

void start_scaling(App& app) {
  ScalingState& s = app.scaling;
  std::vector<std::string> variants;
  for (const Column& c : app.columns)
    if (std::find(variants.begin(), variants.end(), c.variant) == variants.end()) variants.push_back(c.variant);
  std::vector<int64_t> lengths;
  for (int e = s.min_exp; e <= s.max_exp; ++e) lengths.push_back(int64_t(1) << e);
  s.run.reset();  // cancels a sweep still running
  if (!variants.empty() && !lengths.empty()) s.run = std::make_unique<ScalingRun>(variants, lengths, s.repeats);
  s.open = true;
}

void draw_scaling_window(App& app) {
  ScalingState& s = app.scaling;
  if (!s.open) return;
  const float fs = ImGui::GetFontSize();
  ImGui::SetNextWindowSize(ImVec2(fs * 44, fs * 40), ImGuiCond_FirstUseEver);
  ImGui::SetNextWindowPos(ImVec2(fs * 10, fs * 4), ImGuiCond_FirstUseEver);
  if (!ImGui::Begin("Scaling: latency and memory over sequence length", &s.open)) {
    ImGui::End();
    return;
  }
  const bool running = s.run && s.run->running();
  ImGui::BeginDisabled(running);
  ImGui::SetNextItemWidth(fs * 10);
  static const char* const kLengths[] = {"64", "128", "256", "512", "1024", "2048", "4096", "8192", "16384"};
  ImGui::SliderInt("from", &s.min_exp, 6, 14, kLengths[std::clamp(s.min_exp - 6, 0, 8)]);
  ImGui::SameLine();
  ImGui::SetNextItemWidth(fs * 10);
  ImGui::SliderInt("to", &s.max_exp, 6, 14, kLengths[std::clamp(s.max_exp - 6, 0, 8)]);
  s.max_exp = std::max(s.max_exp, s.min_exp);
  ImGui::SameLine();
  ImGui::SetNextItemWidth(fs * 6);
  ImGui::SliderInt("repeats", &s.repeats, 1, 9);
  ImGui::EndDisabled();
  ImGui::SameLine();
  if (running) {
    if (ImGui::Button("Cancel", ImVec2(fs * 6, 0))) s.run->cancel();
    mark_target(app, "scaling_cancel");
  } else {
    if (ImGui::Button("Run", ImVec2(fs * 6, 0))) start_scaling(app);
    mark_target(app, "scaling_run");
  }
  tooltip(
      "one attention layer per variant (d_model 128, 8 heads, random weights, default parameters), each point "
      "measured in its own process, as `attnscope bench`");
  if (!s.run) {
    ImGui::TextColored(kDim, "Run measures the columns' variants at every length (each point in a child process).");
    ImGui::End();
    return;
  }
  const ScalingRun& run = *s.run;
  const std::vector<BenchPoint> pts = run.points();
  const std::string err = run.error();
  if (!err.empty())
    ImGui::TextColored(kRed, "%s", err.c_str());
  else if (running)
    ImGui::TextColored(kAmber, "measuring %s  (%zu of %d points%s)", run.current().c_str(), pts.size(), run.total(),
                       run.cancelled() ? ", cancelling after this one" : "");
  else
    ImGui::TextColored(run.cancelled() ? kAmber : kGreen, "%s: %zu of %d points on %s",
                       run.cancelled() ? "cancelled" : "done", pts.size(), run.total(), run.device().c_str());

  // legend with the measured slopes (least squares of log latency over log T)
  for (size_t v = 0; v < run.variants().size(); ++v) {
    std::vector<double> xs, ys;
    for (const BenchPoint& p : pts)
      if (p.variant == run.variants()[v] && p.status == "ok") xs.push_back(double(p.length)), ys.push_back(p.median_ms);
    if (v) ImGui::SameLine(0, fs * 1.5f);
    const ImVec2 q = ImGui::GetCursorScreenPos();
    ImGui::GetWindowDrawList()->AddRectFilled(ImVec2(q.x, q.y + fs * 0.35f), ImVec2(q.x + fs * 1.2f, q.y + fs * 0.65f),
                                              series_colour(v));
    ImGui::Dummy(ImVec2(fs * 1.4f, fs));
    ImGui::SameLine();
    const double slope = xs.size() >= 2 ? loglog_slope(xs, ys) : kNaN;
    if (std::isfinite(slope))
      ImGui::Text("%s  slope %.2f", run.variants()[v].c_str(), slope);
    else
      ImGui::Text("%s", run.variants()[v].c_str());
  }
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  const float table_h = fs * 7;
  const float plot_h = std::max(fs * 8, (avail.y - table_h) * 0.62f);
  draw_loglog(run, pts, &BenchPoint::median_ms, "prefill latency, ms (median)", ImVec2(avail.x, plot_h));
  draw_loglog(run, pts, &BenchPoint::peak_mib, "peak memory, MiB",
              ImVec2(avail.x, std::max(fs * 6, avail.y - table_h - plot_h)));
  mark_target(app, "scaling_plot");

  // every point: latency spread and peak memory
  if (ImGui::BeginTable("points", 6, ImGuiTableFlags_ScrollY | ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerV,
                        ImVec2(0, std::max(fs * 3, ImGui::GetContentRegionAvail().y)))) {
    ImGui::TableSetupScrollFreeze(0, 1);
    for (const char* h : {"variant", "T", "median ms", "p10..p90 ms", "peak MiB", "status"}) ImGui::TableSetupColumn(h);
    ImGui::TableHeadersRow();
    for (const BenchPoint& p : pts) {
      ImGui::TableNextRow();
      ImGui::TableNextColumn();
      ImGui::TextUnformatted(p.variant.c_str());
      ImGui::TableNextColumn();
      ImGui::Text("%lld", (long long)p.length);
      ImGui::TableNextColumn();
      if (p.status == "ok") ImGui::Text("%.3f", p.median_ms);
      ImGui::TableNextColumn();
      if (p.status == "ok") ImGui::Text("%.3f..%.3f", p.p10_ms, p.p90_ms);
      ImGui::TableNextColumn();
      if (std::isfinite(p.peak_mib))
        ImGui::Text("%.1f", p.peak_mib);
      else
        ImGui::TextColored(kDim, "n/a");
      ImGui::TableNextColumn();
      if (p.status == "ok")
        ImGui::TextColored(kGreen, "ok");
      else
        ImGui::TextColored(p.status == "skipped" ? kAmber : kRed, "%s: %s", p.status.c_str(), p.note.c_str());
    }
    ImGui::EndTable();
  }
  ImGui::End();
}

}  // namespace attnscope::gui
