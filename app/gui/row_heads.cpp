// Row 6 of a column: what the heads of the selected layer do. A role x head matrix (attention/heads.h's role table:
// each cell the head's score against the role's threshold, hover explains it), each head's strongest role, and the
// importance strip (the held-out loss change when that head alone is knocked out). Computed for the shown result
// on a session::Job (app/session/head_analysis.h), never on the UI thread.
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "head_analysis.h"
#include "heatmap.h"
#include "imgui.h"
#include "job.h"
#include "model_policy.h"
#include "state.h"
#include "views.h"
#include "widgets.h"

namespace attnscope::gui {

struct HeadsSnapshot {
  bool roles_ready = false, importance_ready = false;
  session::HeadReport report;
  session::HeadImportance importance;
};

// Published whole (a pointer per update): every frame reads it without copying the maps' scores.
using HeadsPtr = std::shared_ptr<const HeadsSnapshot>;

struct HeadsRun {
  std::string key;  // the column request the analysis belongs to
  Heatmap rollout;  // the attention flow of the snapshot `rollout_of` (uploaded once per snapshot)
  std::shared_ptr<const HeadsSnapshot> rollout_of;
  std::unique_ptr<session::Job<HeadsPtr>> job;
  // [R] the sliders' role thresholds (the table's defaults at first; a new run takes its predecessor's): the labels
  // follow them without recomputing the scores
  std::vector<double> thresholds = session::parse_thresholds({});
};

namespace {

constexpr std::chrono::milliseconds kHeadsAfter{400};  // a typist's pause between words, not between keys

// The request a run belongs to: the column's, plus whether (and how) it knocks each head out.
std::string run_key(const Column& c) {
  return c.submitted_key + (c.heads_knockouts ? std::string("|knock-outs ") + knock_mode_name(c.knock_mode) : "");
}

// What names a column's model (a copy for the job's thread: a Column holds GL textures).
struct ModelChoice {
  std::string variant;
  ParamValues params;
  CustomMask mask;
  bool per_layer = false, convert = false;
  std::vector<LayerSpec> layers;
};

// The column's model by the one policy (model_policy.h); per-layer and painted columns from the base's weights.
std::shared_ptr<const Model> model_of(const Model& base, const ModelChoice& c) {
  if (c.per_layer) return base.with_layers(c.layers);
  if (c.variant == "custom") {
    std::vector<LayerSpec> layers(size_t(base.config().n_layer), LayerSpec{"custom", c.params, c.mask});
    return base.with_layers(layers);
  }
  return session::column_model(base, c.variant, c.params, c.convert);
}

std::shared_ptr<HeadsRun> start(const App& app, const Column& c, const ColumnResult& r) {
  auto run = std::make_shared<HeadsRun>();
  run->key = run_key(c);
  std::shared_ptr<const Model> base = app.model;
  const ModelChoice choice{c.variant, c.params, c.mask, c.per_layer, c.convert, c.layers};
  const bool knockouts = c.heads_knockouts;
  const KnockMode mode = c.knock_mode;
  run->job = std::make_unique<session::Job<HeadsPtr>>(
      [base, c = choice, knockouts, mode, tokens = r.tokens](session::Job<HeadsPtr>::Control& ctl) {
        ctl.progress(0, 0, "roles");
        auto m = model_of(*base, c);
        session::HeadsOptions o;
        o.period = std::min<int64_t>(96, m->config().context / 2);  // the probe: 2 P letters within the context
        session::HeadReport rep = session::analyse_heads(*m, tokens, o);
        ctl.update([&](HeadsPtr& s) {
          auto n = std::make_shared<HeadsSnapshot>(*s);
          n->report = std::move(rep);
          n->roles_ready = true;
          s = n;
        });
        if (!knockouts || tokens.size() < 2 || ctl.cancelled()) return;
        session::HeadImportance imp = session::head_importance(
            *m, tokens, session::heldout_slice(*m),
            [&ctl](int64_t done, int64_t total) {
              ctl.progress(int(done), int(total), "knock-outs");
              return !ctl.cancelled();
            },
            mode);
        ctl.update([&](HeadsPtr& s) {
          auto n = std::make_shared<HeadsSnapshot>(*s);
          n->importance = std::move(imp);
          n->importance_ready = true;
          s = n;
        });
      },
      std::make_shared<const HeadsSnapshot>());
  return run;
}

// A filled cell of the matrix, t in [0, 1] from dim to the accent colour; hover shows `tip`.
void cell(ImVec2 size, float t, const std::string& text, const std::string& tip, ImVec4 hue) {
  const ImVec2 p = ImGui::GetCursorScreenPos();
  t = std::clamp(t, 0.0f, 1.0f);
  const ImVec4 c(0.16f + (hue.x - 0.16f) * t, 0.17f + (hue.y - 0.17f) * t, 0.20f + (hue.z - 0.20f) * t, 1);
  ImGui::GetWindowDrawList()->AddRectFilled(p, ImVec2(p.x + size.x - 1, p.y + size.y - 1), ImGui::GetColorU32(c));
  if (!text.empty()) {
    const ImVec2 ts = ImGui::CalcTextSize(text.c_str());
    ImGui::GetWindowDrawList()->AddText(ImVec2(p.x + (size.x - ts.x) * 0.5f, p.y + (size.y - ts.y) * 0.5f),
                                        ImGui::GetColorU32(t > 0.6f ? ImVec4(0, 0, 0, 1) : kDim), text.c_str());
  }
  ImGui::Dummy(size);
  if (!tip.empty()) tooltip(tip.c_str());
}

// How a knock-out removes a head: zero its output, or replace it by its mean over the held-out slice's positions.
void draw_knock_mode(App& app, Column& c, int index) {
  ImGui::SameLine();
  int mode = int(c.knock_mode);
  ImGui::TextColored(kDim, "as");
  ImGui::SameLine();
  ImGui::RadioButton(("zero##km" + std::to_string(index)).c_str(), &mode, int(KnockMode::Zero));
  tooltip("a knocked-out head's output is set to 0 at every position");
  ImGui::SameLine();
  ImGui::RadioButton(("mean##km" + std::to_string(index)).c_str(), &mode, int(KnockMode::Mean));
  mark_target(app, ("knock_mean" + std::to_string(index)).c_str());
  tooltip(
      "a knocked-out head's output is replaced by its mean over every position of the held-out slice (mean "
      "ablation): its average effect stays, what it does at each position goes. Zeroing also removes the average, "
      "which can overstate what a head does");
  c.knock_mode = KnockMode(mode);
}

bool knocked(const Column& c, int layer, int head) {
  return std::any_of(c.knockouts.begin(), c.knockouts.end(),
                     [&](const HeadKnockout& k) { return k.layer == layer && k.head == head; });
}

// The heads' row of the matrix: each head's strongest role; a click knocks the head out of the column (or back).
void draw_matrix(Column& c, const HeadsSnapshot& s, int layer) {
  const session::HeadReport& r = s.report;
  const std::vector<double>& th = c.heads->thresholds;  // [R]
  const auto& roles = role_registry();
  const float fs = ImGui::GetFontSize(), name_w = fs * 3.6f;
  const float w = std::max(fs * 1.2f, (ImGui::GetContentRegionAvail().x - name_w) / float(r.heads));
  const ImVec2 sz(w, fs * 1.15f);
  char buf[512];
  auto row_name = [&](const char* n, const char* tip) {
    ImGui::TextColored(kDim, "%s", n);
    if (tip) tooltip(tip);
    ImGui::SameLine(name_w);
  };
  row_name("head", nullptr);  // each head's strongest role
  for (int64_t h = 0; h < r.heads; ++h) {
    const auto ks = r.roles_of(layer, h, th);
    const bool out = knocked(c, layer, int(h));
    std::snprintf(buf, sizeof buf, "layer %d head %lld: %s\n%s", layer, (long long)h,
                  ks.empty() ? "no role passes its threshold" : roles[ks[0]].description.c_str(),
                  out ? "knocked out of this column: click to restore it"
                      : "click: knock it out of this column (its output zeroed; the column recomputes)");
    const ImVec2 at = ImGui::GetCursorScreenPos();
    cell(sz, ks.empty() ? 0.f : 0.8f, ks.empty() ? std::to_string(h) : roles[ks[0]].label, buf, kAccent);
    if (ImGui::IsItemClicked()) toggle_knockout(c, layer, int(h));
    if (out) {  // a red cross over a knocked-out head
      ImDrawList* dl = ImGui::GetWindowDrawList();
      dl->AddLine(at, ImVec2(at.x + sz.x - 1, at.y + sz.y - 1), ImGui::GetColorU32(kRed), 2);
      dl->AddLine(ImVec2(at.x, at.y + sz.y - 1), ImVec2(at.x + sz.x - 1, at.y), ImGui::GetColorU32(kRed), 2);
    }
    if (h + 1 < r.heads) ImGui::SameLine(0, 0);
  }
  for (size_t k = 0; k < roles.size(); ++k) {
    if (th[k] <= 0) continue;  // measures (distance) are in the CLI's table
    row_name(roles[k].label.c_str(), roles[k].description.c_str());
    for (int64_t h = 0; h < r.heads; ++h) {
      const double v = r.score(k, layer, h);
      std::snprintf(buf, sizeof buf, "%s of layer %d head %lld: %.3f (label at >= %.2f%s)\n%s", roles[k].name.c_str(),
                    layer, (long long)h, v, th[k],
                    roles[k].on == RoleText::Probe ? ", on the induction probe" : ", on this text",
                    roles[k].description.c_str());
      cell(sz, float(v / th[k]) * 0.8f, v >= th[k] ? "*" : "", buf, kGreen);
      if (h + 1 < r.heads) ImGui::SameLine(0, 0);
    }
  }
}

// The role thresholds as sliders (the RoleSpec table's defaults, labelled roles only); the labels follow at once.
void draw_thresholds(App& app, HeadsRun& run, int index) {
  const auto& roles = role_registry();
  const bool open = ImGui::TreeNode(("thresholds##" + std::to_string(index)).c_str());
  mark_target(app, ("thresholds" + std::to_string(index)).c_str());
  if (!open) return;
  for (size_t k = 0; k < roles.size() && k < run.thresholds.size(); ++k) {
    if (roles[k].threshold <= 0 || roles[k].label.empty()) continue;  // a measure, never a label
    float v = float(run.thresholds[k]);
    const float top = roles[k].bounded ? 1.f : float(roles[k].threshold) * 3;
    ImGui::SetNextItemWidth(ImGui::GetContentRegionAvail().x * 0.6f);
    if (ImGui::SliderFloat((roles[k].label + "##th" + std::to_string(index)).c_str(), &v, 0.01f, top, "%.2f"))
      run.thresholds[k] = double(v);
    tooltip(("a head is labelled " + roles[k].label + " when its " + roles[k].name + " score is at least this (" +
             "default " + std::to_string(roles[k].threshold).substr(0, 4) + ")\n" + roles[k].description)
                .c_str());
  }
  if (ImGui::SmallButton(("defaults##th" + std::to_string(index)).c_str()))
    run.thresholds = session::parse_thresholds({});
  ImGui::TreePop();
}

void draw_importance(const HeadsSnapshot& s, int layer) {
  const session::HeadImportance& m = s.importance;
  const float fs = ImGui::GetFontSize(), name_w = fs * 3.6f;
  const float w = std::max(fs * 1.2f, (ImGui::GetContentRegionAvail().x - name_w) / float(m.heads));
  const bool mean = m.mode == KnockMode::Mean;
  ImGui::TextColored(kDim, "%s", mean ? "ko~" : "ko");
  tooltip(mean ? "knock-out importance: the held-out loss change (nats/char) when the head's output is replaced by "
                 "its mean over the held-out slice's positions"
               : "knock-out importance: the held-out loss change (nats/char) when the head's output is zeroed");
  ImGui::SameLine(name_w);
  double top = 1e-3;
  for (double d : m.heldout_delta) top = std::max(top, std::fabs(d));
  char buf[256];
  for (int64_t h = 0; h < m.heads; ++h) {
    const size_t i = size_t(layer * m.heads + h);
    std::snprintf(buf, sizeof buf,
                  "layer %d head %lld knocked out (%s): %+.4f nats/char on the held-out slice, %+.4f on this text\n"
                  "(whole layer %d: %+.4f held-out)",
                  layer, (long long)h, mean ? "its mean" : "zeroed", m.heldout_delta[i], m.text_delta[i], layer,
                  m.layer_heldout_delta[size_t(layer)]);
    cell(ImVec2(w, fs * 0.9f), float(m.heldout_delta[i] / top), "", buf, kRed);
    if (h + 1 < m.heads) ImGui::SameLine(0, 0);
  }
}

}  // namespace

std::vector<float> column_rollout(const Column& c, int64_t* T, int64_t* layers) {
  *T = *layers = 0;
  // the analysis of the column's current request (its key is the request's, plus the knock-out choice)
  if (!c.heads || c.heads->key.compare(0, c.submitted_key.size(), c.submitted_key) != 0) return {};
  const HeadsPtr p = c.heads->job->snapshot();
  const session::HeadReport& r = p->report;
  if (!p->roles_ready || r.T < 1 || r.rollout.size() != size_t(r.T) * size_t(r.T)) return {};
  *T = r.T;
  *layers = r.layers;
  return r.rollout;
}

bool heads_done(const Column& c) { return c.heads && c.heads->key == run_key(c) && !c.heads->job->running(); }

std::string head_role_label(const Column& c, int layer, int head) {
  if (!c.heads) return "";
  const HeadsPtr p = c.heads->job->snapshot();
  const HeadsSnapshot& s = *p;
  if (!s.roles_ready || layer >= s.report.layers || head >= s.report.heads) return "";
  const auto ks = s.report.roles_of(layer, head, c.heads->thresholds);
  return ks.empty() ? "" : role_registry()[ks[0]].label;
}

std::string heads_summary(const Column& c) {
  if (!c.heads) return "";
  const HeadsPtr p = c.heads->job->snapshot();
  const HeadsSnapshot& s = *p;
  if (!c.heads->job->error().empty()) return "error: " + c.heads->job->error();
  if (!s.roles_ready) return "";
  const session::HeadReport& r = s.report;
  const int layer = std::clamp(c.layer, 0, int(r.layers) - 1);
  std::string out = "layer " + std::to_string(layer) + ":";
  for (int64_t h = 0; h < r.heads; ++h) {
    const auto ks = r.roles_of(layer, h, c.heads->thresholds);
    out += (h ? ", h" : " h") + std::to_string(h) + " " + (ks.empty() ? "-" : role_registry()[ks[0]].label);
  }
  char buf[96];
  std::snprintf(buf, sizeof buf, "; probe loss %.2f -> %.2f", r.probe_loss_first, r.probe_loss_second);
  out += buf;
  if (s.importance_ready)
    out +=
        "; knock-outs " + std::to_string(s.importance.heldout_delta.size() + s.importance.layer_heldout_delta.size());
  if (s.report.rollout.size() == size_t(s.report.T) * size_t(s.report.T) && s.report.T > 0) {
    double diag = 0;  // the flow's share that stays on each position itself (1 for identity maps)
    for (int64_t i = 0; i < s.report.T; ++i) diag += double(s.report.rollout[size_t(i * s.report.T + i)]);
    char b[96];
    std::snprintf(b, sizeof b, "; flow %lldx%lld, self share %.3f", (long long)s.report.T, (long long)s.report.T,
                  diag / double(s.report.T));
    out += b;
  }
  return out;
}

// Attention flow (Abnar & Zuidema, 2020): how much each query position draws, through every layer, on each key
// position: R = Ahat_{L-1} ... Ahat_0 with Ahat = 0.5 A + 0.5 I over the heads' mean A. [T, T], rows sum to 1.
void draw_flow(App& app, HeadsRun& run, const HeadsPtr& snap, int index) {
  const session::HeadReport& r = snap->report;
  const int T = int(r.T);
  if (r.rollout.size() != size_t(T) * size_t(T) || T < 1) return;
  if (run.rollout_of != snap) {
    run.rollout.set_data(r.rollout.data(), nullptr, T, T);  // [T, T]
    run.rollout_of = snap;
  }
  ImGui::TextColored(kDim, "attention flow: rollout through %lld layers", (long long)r.layers);
  tooltip(
      "Abnar & Zuidema (2020): each layer's heads averaged, mixed half with the identity (the residual stream), "
      "multiplied through the layers: row i says how much of query i's input came from each key j");
  const float fs = ImGui::GetFontSize();
  const float side = std::max(fs * 4, std::min(ImGui::GetContentRegionAvail().x, fs * 12));
  const ImVec2 p = ImGui::GetCursorScreenPos();
  const GLuint tex = run.rollout.render(app.program, int(side), int(side), view_style(app));
  if (tex)
    ImGui::GetWindowDrawList()->AddImage(reinterpret_cast<ImTextureID>(static_cast<intptr_t>(tex)), p,
                                         ImVec2(p.x + side, p.y + side));
  ImGui::Dummy(ImVec2(side, side));
  mark_target(app, ("flow" + std::to_string(index)).c_str());
  const ImVec2 m = ImGui::GetIO().MousePos;
  if (ImGui::IsItemHovered() && m.x >= p.x && m.y >= p.y) {
    const int i = std::clamp(int((m.y - p.y) / side * float(T)), 0, T - 1);
    const int j = std::clamp(int((m.x - p.x) / side * float(T)), 0, T - 1);
    ImGui::SetTooltip("query %d draws %.4f of its input from key %d (through all layers)", app.tokens.start + i,
                      double(r.rollout[size_t(i) * size_t(T) + size_t(j)]), app.tokens.start + j);
  }
}

void draw_heads_row(App& app, Column& c, int index, const ColumnResult& r) {
  if (!app.model || r.seq != c.seq) return;  // a newer request is on its way: wait for it
  section("Heads");
  if (!c.heads || c.heads->key != run_key(c)) {
    // Latest wins, one run per column: a replaced run is cancelled and the new one starts once it has stopped
    // (its thread is then joined at once, so the UI never waits on it and runs never pile up while typing).
    if (c.heads && c.heads->job->running()) {
      c.heads->job->cancel();
      ImGui::TextColored(kAmber, "finding the heads' roles...");
      return;
    }
    // The analysis (a probe forward, every map's scores, the rollout; knock-outs: a forward per head) waits until
    // the worker is idle and the request has stood for kHeadsAfter: while someone types, every core goes to the
    // columns' new rows, not to roles of a text that is about to change.
    if (app.worker->busy() || Clock::now() - c.submitted_at < kHeadsAfter) {
      ImGui::TextColored(kAmber, "finding the heads' roles once the text rests...");
      return;
    }
    std::vector<double> th = c.heads ? c.heads->thresholds : session::parse_thresholds({});
    c.heads = start(app, c, r);
    c.heads->thresholds = std::move(th);
  }
  const session::Job<HeadsPtr>& job = *c.heads->job;
  const HeadsPtr snap = job.snapshot();
  const HeadsSnapshot& s = *snap;
  const session::JobProgress p = job.progress();
  if (!job.error().empty()) {
    ImGui::TextColored(kRed, "%s", job.error().c_str());
    return;
  }
  if (!s.roles_ready) {
    ImGui::TextColored(kAmber, "finding the heads' roles...");
    return;
  }
  const int layer = std::clamp(c.layer, 0, int(s.report.layers) - 1);
  ImGui::TextColored(kDim, "layer %d; induction probe (%lld letters twice): loss %.2f -> %.2f", layer,
                     (long long)s.report.period, s.report.probe_loss_first, s.report.probe_loss_second);
  tooltip(
      "a random letter sequence repeated twice: a model that copies in context predicts the second copy (the loss "
      "drops); an induction head reads the token after the earlier occurrence");
  const bool layer_out = knocked(c, layer, -1);
  if (ImGui::SmallButton(layer_out ? ("restore layer " + std::to_string(layer)).c_str()
                                   : ("knock out layer " + std::to_string(layer)).c_str()))
    toggle_knockout(c, layer, -1);
  mark_target(app, ("knockout_layer" + std::to_string(index)).c_str());
  tooltip(
      "knock out the whole attention output of this layer in this column (click a head below for one head); the "
      "column recomputes and the quality row shows the loss change");
  draw_knock_mode(app, c, index);
  if (!c.knockouts.empty()) {
    ImGui::TextColored(kRed, "out: %s", knockouts_label(c.knockouts).c_str());
    ImGui::SameLine();
    if (ImGui::SmallButton("clear")) c.knockouts.clear();
  }
  draw_matrix(c, s, layer);
  draw_thresholds(app, *c.heads, index);
  if (s.importance_ready) {
    draw_importance(s, layer);
  } else if (c.heads_knockouts) {
    ImGui::TextColored(kAmber, "knock-outs %d/%d...", p.done, p.total);
  } else {
    c.heads_knockouts = ImGui::SmallButton("knock out each head");
    mark_target(app, ("heads_knockouts" + std::to_string(index)).c_str());
    tooltip(
        "knock each head out alone (then each layer's attention), as the zero / mean choice above says, and measure "
        "the loss change on this text and on a fixed held-out slice, in the background");
  }
  draw_flow(app, *c.heads, snap, index);
}

}  // namespace attnscope::gui
