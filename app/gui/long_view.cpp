// "Beyond the context": the window's columns on a held-out text longer than the training context (up to 32,768
// characters), computed in the background column by column (attention/long_context.h): each column's pooled heatmap
// of one layer and head (every pixel the max of the weights it covers, never T x T in memory) and its mean loss at
// every position over held-out windows of that length, one curve per column with the training context marked.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "error.h"
#include "long_columns.h"
#include "state.h"
#include "studio.h"
#include "widgets.h"

namespace attnscope::gui {

LongRun::LongRun(std::shared_ptr<const Model> base, std::vector<Spec> columns, std::string valid, int64_t length,
                 int64_t windows, int64_t layer, int64_t head)
    : length_(length), windows_(windows), context_(base->config().context), job_([=](auto& c) {
        const std::vector<int64_t> text = base->tokenizer().encode_or_throw(valid, UnknownPolicy::Skip);
        const std::vector<int64_t> first(text.begin(), text.begin() + std::min<int64_t>(length, text.size()));
        for (size_t i = 0; i < columns.size() && !c.cancelled(); ++i) {
          const Spec& spec = columns[i];
          const std::string& name = spec.variant;
          Out o;
          try {
            if (!spec.refused.empty()) throw Error(spec.refused);
            c.progress(int(2 * i), int(2 * columns.size()), name + ": pooled heatmap");
            session::LongColumn col = session::long_column(*base, spec.variant, spec.params, spec.convert);
            o.label = col.label;
            o.where = col.where;
            LongAttention long_text(col.model, first);
            o.map = long_text.pooled(layer, head, {}, 512, 512);
            c.update([&](std::vector<Out>& s) { s.push_back(o); });
            c.progress(int(2 * i + 1), int(2 * columns.size()), name + ": loss by position");
            o.loss = extrapolation_curve(*col.model, text, length - 1, windows);
          } catch (const Error& e) {
            o.error = e.what();
          }
          c.update([&](std::vector<Out>& s) {
            if (s.size() > i)
              s[i] = o;
            else
              s.push_back(o);
          });
        }
      }) {}

namespace {

ImU32 series_colour(size_t i) {
  static const ImU32 c[] = {IM_COL32(78, 121, 167, 255),  IM_COL32(242, 142, 43, 255), IM_COL32(225, 87, 89, 255),
                            IM_COL32(118, 183, 178, 255), IM_COL32(89, 161, 79, 255),  IM_COL32(237, 201, 72, 255)};
  return c[i % 6];
}

// Loss by position: one curve per column (means over bins of positions: a raw position is too noisy to read), the
// training context as a dashed line, a 0.5-nats grid.
void draw_loss_plot(const LongRun& run, const std::vector<LongRun::Out>& cols, ImVec2 size) {
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const float fs = ImGui::GetFontSize();
  const ImVec2 p0 = ImGui::GetCursorScreenPos();
  ImGui::Dummy(size);
  const ImVec2 a(p0.x + fs * 3, p0.y + fs * 0.5f), b(p0.x + size.x - fs, p0.y + size.y - fs * 1.6f);
  dl->AddRectFilled(a, b, IM_COL32(22, 24, 30, 255));
  dl->AddRect(a, b, ImGui::GetColorU32(ImGuiCol_Border));
  const int64_t n = run.length() - 1, bin = std::max<int64_t>(1, n / 128);
  double hi = 0;
  for (const auto& c : cols)
    for (int64_t s = 0; s < int64_t(c.loss.mean.size()); s += bin) hi = std::max(hi, c.loss.mean_over(s, s + bin));
  hi = std::max(1.0, std::ceil(hi * 2) / 2);
  auto X = [&](double x) { return a.x + float(x / double(n)) * (b.x - a.x); };
  auto Y = [&](double y) { return b.y - float(y / hi) * (b.y - a.y); };
  const ImU32 grid = IM_COL32(60, 64, 76, 255), dim = ImGui::GetColorU32(kDim);
  for (double y = 0; y <= hi + 1e-9; y += 0.5) {
    dl->AddLine(ImVec2(a.x, Y(y)), ImVec2(b.x, Y(y)), grid);
    char t[16];
    std::snprintf(t, sizeof t, "%.1f", y);
    dl->AddText(ImVec2(a.x - ImGui::CalcTextSize(t).x - fs * 0.3f, Y(y) - fs * 0.5f), dim, t);
  }
  for (int64_t x = 0; x <= n; x += std::max<int64_t>(run.context(), n / 8 / run.context() * run.context())) {
    const std::string t = std::to_string(x);
    dl->AddText(ImVec2(X(double(x)) - ImGui::CalcTextSize(t.c_str()).x / 2, b.y + fs * 0.2f), dim, t.c_str());
  }
  for (float y = a.y; y < b.y; y += fs * 0.8f)  // the training context, dashed
    dl->AddLine(ImVec2(X(double(run.context())), y), ImVec2(X(double(run.context())), std::min(b.y, y + fs * 0.45f)),
                IM_COL32(230, 230, 230, 255));
  dl->AddText(ImVec2(X(double(run.context())) + fs * 0.3f, a.y + fs * 0.2f), dim, "training context");
  dl->PushClipRect(a, b, true);
  for (size_t i = 0; i < cols.size(); ++i) {
    std::vector<ImVec2> line;
    const auto& m = cols[i].loss;
    for (int64_t s = 0; s < int64_t(m.mean.size()); s += bin)
      line.emplace_back(X(double(s) + double(bin) / 2), Y(m.mean_over(s, s + bin)));
    if (line.size() >= 2) dl->AddPolyline(line.data(), int(line.size()), series_colour(i), 0, 2.0f);
  }
  dl->PopClipRect();
}

// The pooled maps side by side, each with its column's label, time and where its weights come from.
void draw_maps(App& app, const std::vector<LongRun::Out>& cols, float height) {
  LongState& s = app.long_text;
  const float fs = ImGui::GetFontSize(), avail = ImGui::GetContentRegionAvail().x;
  const float side =
      std::max(fs * 4, std::min(height - fs * 3.5f, avail / float(std::max<size_t>(1, cols.size())) - fs));
  s.maps.resize(cols.size());
  s.uploaded.resize(cols.size(), 0);
  HeatmapStyle st;
  st.scale = Scale::Log;
  st.mask_overlay = false;
  for (size_t i = 0; i < cols.size(); ++i) {
    const LongRun::Out& o = cols[i];
    if (i) ImGui::SameLine();
    ImGui::BeginGroup();
    ImGui::TextColored(ImGui::ColorConvertU32ToFloat4(series_colour(i)), "%s", o.label.c_str());
    if (!o.error.empty()) {
      ImGui::PushTextWrapPos(ImGui::GetCursorPosX() + side);
      ImGui::TextColored(kRed, "%s", o.error.c_str());
      ImGui::PopTextWrapPos();
    } else if (o.map.rows > 0) {
      const int64_t key = o.map.rows * o.map.cols + int64_t(o.map.ms);
      if (s.uploaded[i] != key) {
        s.maps[i].set_data(o.map.value.data(), nullptr, int(o.map.rows), int(o.map.cols));
        s.uploaded[i] = key;
      }
      const ImVec2 p = ImGui::GetCursorScreenPos();
      const GLuint tex = s.maps[i].render(app.program, int(side), int(side), st);
      if (tex)
        ImGui::GetWindowDrawList()->AddImage(reinterpret_cast<ImTextureID>(static_cast<intptr_t>(tex)), p,
                                             ImVec2(p.x + side, p.y + side));
      ImGui::Dummy(ImVec2(side, side));
      mark_target(app, ("long_map" + std::to_string(i)).c_str());
      if (ImGui::IsItemHovered()) {
        const ImVec2 m = ImGui::GetMousePos();
        const int64_t r = std::clamp<int64_t>(int64_t((m.y - p.y) / side * float(o.map.rows)), 0, o.map.rows - 1);
        const int64_t c = std::clamp<int64_t>(int64_t((m.x - p.x) / side * float(o.map.cols)), 0, o.map.cols - 1);
        const int64_t per = (o.map.length + o.map.rows - 1) / o.map.rows;
        ImGui::SetTooltip("queries %lld.., keys %lld..: max weight %.3g", (long long)(r * per), (long long)(c * per),
                          double(o.map.at(r, c)));
      }
      ImGui::TextColored(kDim, "%.0f ms, %s", o.map.ms, o.map.tiled ? "tiled" : "full forward");
    }
    ImGui::EndGroup();
  }
}

}  // namespace

void start_long(App& app) {
  LongState& s = app.long_text;
  s.open = true;
  s.run.reset();  // a run in progress stops after its column
  s.maps.clear();
  s.uploaded.clear();
  if (!app.model) return;
  std::vector<LongRun::Spec> cols;
  for (const Column& c : app.columns) {
    LongRun::Spec spec{c.variant, c.params, c.convert, ""};
    if (c.per_layer)  // the long view runs one variant on every layer: say so rather than show another model
      spec.refused = "a column with a variant per layer runs on the window's text only, not beyond the context";
    else if (c.variant == "custom")
      spec.refused = "a painted mask covers the window's text only: it has no pattern beyond the context";
    cols.push_back(std::move(spec));
  }
  s.run = std::make_unique<LongRun>(app.model, cols, app.corpus_valid, int64_t(1) << s.length_exp, s.windows, s.layer,
                                    s.head);
}

void draw_long_window(App& app) {
  LongState& s = app.long_text;
  if (!s.open) return;
  const float fs = ImGui::GetFontSize();
  ImGui::SetNextWindowSize(ImVec2(fs * 80, fs * 46), ImGuiCond_FirstUseEver);
  ImGui::SetNextWindowPos(ImVec2(fs * 4, fs * 3), ImGuiCond_FirstUseEver);
  if (!ImGui::Begin("Beyond the context: pooled heatmaps and loss by position", &s.open)) {
    ImGui::End();
    return;
  }
  const bool running = s.run && s.run->running();
  ImGui::BeginDisabled(running);
  static const char* const kLengths[] = {"1024", "2048", "4096", "8192", "16384", "32768"};
  ImGui::SetNextItemWidth(fs * 9);
  ImGui::SliderInt("characters", &s.length_exp, 10, 15, kLengths[std::clamp(s.length_exp - 10, 0, 5)]);
  ImGui::SameLine();
  ImGui::SetNextItemWidth(fs * 6);
  ImGui::SliderInt("windows", &s.windows, 1, 8);
  tooltip("held-out windows the loss by position is averaged over (each as long as the text)");
  const int layers = app.model ? int(app.model->config().n_layer) : 1,
            heads = app.model ? int(app.model->config().n_head) : 1;
  ImGui::SameLine();
  ImGui::SetNextItemWidth(fs * 5);
  ImGui::SliderInt("layer", &s.layer, 0, layers - 1);
  ImGui::SameLine();
  ImGui::SetNextItemWidth(fs * 5);
  ImGui::SliderInt("head", &s.head, 0, heads - 1);
  ImGui::EndDisabled();
  ImGui::SameLine();
  if (running) {
    if (ImGui::Button("Cancel", ImVec2(fs * 6, 0))) s.run->cancel();
  } else if (ImGui::Button("Run", ImVec2(fs * 6, 0))) {
    start_long(app);
  }
  mark_target(app, "long_run");
  tooltip(
      "every column of the window on the held-out text: its pooled heatmap (each pixel the max of the weights it "
      "covers), then its loss at every position; learned positions and fixed projections stop at their limit");
  if (!s.run) {
    ImGui::TextColored(kDim, "Run computes the window's columns past the training context.");
    ImGui::End();
    return;
  }
  const std::vector<LongRun::Out> cols = s.run->columns();
  if (!s.run->error().empty())
    ImGui::TextColored(kRed, "%s", s.run->error().c_str());
  else if (running)
    ImGui::TextColored(kAmber, "computing %s", s.run->current().c_str());
  else
    ImGui::TextColored(kGreen, "%lld characters, loss over %lld window%s", (long long)s.run->length(),
                       (long long)s.run->windows(), s.run->windows() == 1 ? "" : "s");
  const float avail = ImGui::GetContentRegionAvail().y;
  draw_maps(app, cols, avail * 0.58f);
  draw_loss_plot(*s.run, cols,
                 ImVec2(ImGui::GetContentRegionAvail().x, std::max(fs * 8, ImGui::GetContentRegionAvail().y)));
  mark_target(app, "long_loss");
  ImGui::End();
}

// long LENGTH WINDOWS LAYER HEAD | long_wait SECONDS
ScriptStep long_script_command(App& app, const std::string& command, int phase) {
  std::istringstream in(command);
  std::string op;
  in >> op;
  auto fail = [&](const std::string& why) { return script_failed(command, why); };
  LongState& s = app.long_text;
  if (op == "long") {
    int64_t length = 16384;
    in >> length >> s.windows >> s.layer >> s.head;
    int e = 10;
    while (e < 15 && (int64_t(1) << e) < length) ++e;
    if ((int64_t(1) << e) != length) return fail("LENGTH must be a power of two from 1024 to 32768");
    if (!app.model) return fail("no model loaded yet");
    s.length_exp = e;
    s.windows = std::clamp(s.windows, 1, 8);
    start_long(app);
    return ScriptStep::Done;
  }
  double seconds = 600;
  in >> seconds;
  if (!s.run) return fail("no long run");
  static Clock::time_point since;
  if (phase == 0) since = Clock::now();
  if (s.run->running()) {
    if (std::chrono::duration<double>(Clock::now() - since).count() > seconds) return fail("not finished in time");
    return ScriptStep::Again;
  }
  if (!s.run->error().empty()) return fail(s.run->error());
  std::printf("t=%.3f s  long: %lld characters, %lld windows\n", seconds_since_start(app), (long long)s.run->length(),
              (long long)s.run->windows());
  for (const LongRun::Out& o : s.run->columns()) {
    if (!o.error.empty()) {
      std::printf("  long column: %s: %s\n", o.label.c_str(), o.error.c_str());
      continue;
    }
    const int64_t C = s.run->context();
    std::printf("  long column: %s: map %lld x %lld in %.0f ms (%s), loss %.3f before %lld, %.3f after\n",
                o.label.c_str(), (long long)o.map.rows, (long long)o.map.cols, o.map.ms, o.map.tiled ? "tiled" : "full",
                o.loss.mean_over(0, C), (long long)C, o.loss.mean_over(C, o.loss.length));
  }
  std::fflush(stdout);
  return ScriptStep::Done;
}

}  // namespace attnscope::gui
