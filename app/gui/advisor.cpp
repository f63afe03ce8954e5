// The scenario advisor panel: a scenario, a target length and a memory budget rank the variants from numbers
// measured on this machine (attention/advise_run.h gathers them on a background thread: bench points for the
// variants not yet measured at the target length, the cache formulas, the shipped checkpoints' losses). The ranking
// (attention/advisor.h) needs only those numbers, so changing the scenario or the budget re-ranks at once; a new
// target length gathers again, reusing every timing already known. Each row shows why it is placed where it is:
// the score's terms as a stacked bar and the reason line.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <nlohmann/json.hpp>

#include "engine.h"
#include "error.h"
#include "state.h"
#include "studio.h"
#include "widgets.h"

namespace attnscope::gui {

namespace {

struct ScenarioRow {
  Scenario scenario;
  const char* label;
};
const ScenarioRow kScenarios[] = {{Scenario::Training, "training"},
                                  {Scenario::LongContext, "long-context inference"},
                                  {Scenario::MemoryLimited, "memory-limited decoding"},
                                  {Scenario::Quality, "quality first"}};

// The score terms' colours (stacked bars and their legend).
const ImU32 kTermColour[] = {IM_COL32(78, 121, 167, 255), IM_COL32(242, 142, 43, 255), IM_COL32(176, 122, 161, 255),
                             IM_COL32(225, 87, 89, 255)};
const char* const kTermName[] = {"speed", "cache", "memory", "quality"};

// Adds samples, a later one replacing an earlier one of the same variant and length.
void merge_samples(std::vector<BenchSample>& into, const std::vector<BenchSample>& more) {
  for (const BenchSample& m : more) {
    auto it = std::find_if(into.begin(), into.end(),
                           [&](const BenchSample& s) { return s.variant == m.variant && s.length == m.length; });
    if (it != into.end())
      *it = m;
    else
      into.push_back(m);
  }
}

// The budget as typed: 0 = none; false with *why when it is not a size.
bool budget_bytes(const std::string& text, double* bytes, std::string* why) {
  *bytes = 0;
  bool blank = true;
  for (char c : text) blank = blank && (c == ' ' || c == '\t');
  if (blank) return true;
  try {
    *bytes = parse_memory_size(text);
    return true;
  } catch (const Error& e) {
    *why = e.what();
    return false;
  }
}

// Re-ranks the finished report under the scenario and budget on screen (cheap: no LibTorch).
void update_ranking(AdvisorState& s) {
  if (!s.report) return;
  double budget = 0;
  std::string why;
  const bool budget_ok = budget_bytes(s.memory, &budget, &why);
  const std::string key = std::to_string(uintptr_t(s.report.get())) + "|" + std::to_string(s.scenario) + "|" +
                          (budget_ok ? std::to_string(budget) : "bad");
  if (key == s.ranked_key) return;
  AdviceRequest r = s.report->request;
  r.scenario = kScenarios[std::clamp(s.scenario, 0, 3)].scenario;
  r.memory_bytes = budget_ok ? budget : 0;
  s.ranked = rank_variants(r);
  s.ranked_key = key;
}

// The reason without its "score N: " prefix, its terms separated by dots.
std::string reason_lines(const std::string& reason) {
  std::string r = reason;
  if (r.rfind("score ", 0) == 0) {
    const size_t colon = r.find(": ");
    if (colon != std::string::npos) r = r.substr(colon + 2);
  }
  std::string out;
  size_t from = 0;
  while (true) {
    const size_t bar = r.find(" | ", from);
    out += r.substr(from, bar == std::string::npos ? std::string::npos : bar - from);
    if (bar == std::string::npos) break;
    out += "  \u00b7  ";
    from = bar + 3;
  }
  return out;
}

// The score's terms as a stacked horizontal bar, scaled so that `full` fills the width.
void score_bar(const Ranked& r, double full, float width) {
  const float fs = ImGui::GetFontSize();
  ImDrawList* dl = ImGui::GetWindowDrawList();
  const ImVec2 p = ImGui::GetCursorScreenPos();
  ImGui::Dummy(ImVec2(width, fs));
  const double terms[] = {r.speed, r.cache, r.memory, r.quality};
  float x = p.x;
  const float y0 = p.y + fs * 0.15f, y1 = p.y + fs * 0.85f;
  dl->AddRectFilled(ImVec2(p.x, y0), ImVec2(p.x + width, y1), IM_COL32(34, 36, 44, 255));
  for (int i = 0; i < 4; ++i) {
    if (!(terms[i] > 0)) continue;
    const float w = float(terms[i] / std::max(full, 1e-9)) * width;
    dl->AddRectFilled(ImVec2(x, y0), ImVec2(std::min(x + w, p.x + width), y1), kTermColour[i]);
    x += w;
  }
  if (r.score <= 1e-9) dl->AddLine(ImVec2(p.x + 1, y0), ImVec2(p.x + 1, y1), IM_COL32(120, 220, 130, 255), 2.f);
  if (ImGui::IsItemHovered()) {
    char b[256];
    std::snprintf(b, sizeof b, "score %.2f = speed %.2f + cache %.2f + memory %.2f + quality %.2f (lower is better)",
                  r.score, r.speed, r.cache, r.memory, r.quality);
    tooltip(b);
  }
}

}  // namespace

AdviseRun::AdviseRun(std::shared_ptr<const Model> base, AdviseSetup setup)
    : base_(std::move(base)), setup_(std::move(setup)), job_([this](auto& c) {
        auto rep = std::make_shared<AdviceReport>(gather_advice(
            base_, setup_, [&c](const AdviseProgress& p) { c.update([&](Gathered& g) { g.progress = p; }); },
            c.cancel_flag()));
        c.update([&](Gathered& g) { g.report = std::move(rep); });
      }) {}

bool load_advisor_bench(App& app, const std::string& path, std::string* why) {
  try {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_text_file(path));
    } catch (const nlohmann::json::exception& e) {
      throw Error(path + ": not valid JSON (" + std::string(e.what()) + ")");
    }
    const std::vector<BenchSample> got = bench_samples_from_json(j);
    if (got.empty()) throw Error(path + ": no measured (status ok) points");
    merge_samples(app.advisor.samples, got);
    app.advisor.message = "loaded " + std::to_string(got.size()) + " timings from " + path;
    app.log.push_back("advisor: " + app.advisor.message);
    return true;
  } catch (const Error& e) {
    *why = e.what();
    app.advisor.message = *why;
    return false;
  }
}

void start_advice(App& app) {
  AdvisorState& s = app.advisor;
  s.open = true;
  if (!app.model) {
    s.message = "the model is still loading";
    return;
  }
  AdviseSetup setup;
  setup.scenario = kScenarios[std::clamp(s.scenario, 0, 3)].scenario;
  setup.seq = std::clamp<int64_t>(s.seq, 2, int64_t(1) << 20);
  std::string why;
  if (!budget_bytes(s.memory, &setup.memory_bytes, &why)) {
    s.message = why;
    return;
  }
  // every timing known: loaded bench files, earlier runs, the scaling panel's sweep
  std::vector<BenchSample> samples = s.samples;
  if (app.scaling.run) {
    std::vector<BenchSample> sweep;
    for (const BenchPoint& p : app.scaling.run->points())
      if (p.status == "ok") sweep.push_back({p.variant, p.length, p.median_ms, p.peak_mib, p.decode_tokens_per_s});
    merge_samples(samples, sweep);
  }
  setup.samples = samples;
  setup.timing_source = samples.empty() ? "" : std::to_string(samples.size()) + " timings known before";
  setup.measure_missing = true;
  setup.repeats = std::clamp(s.repeats, 1, 20);
  setup.eval_windows = std::clamp(s.eval_windows, 0, 64);
  s.message.clear();
  s.run.reset();  // cancels a gathering still running
  s.run = std::make_unique<AdviseRun>(app.model, setup);
  app.log.push_back("advisor: gathering for " + std::string(scenario_name(setup.scenario)) + " at " +
                    std::to_string(setup.seq) + " tokens");
}

namespace {

// A finished gathering becomes the report (its timings are kept for the next one).
void take_finished_gathering(App& app) {
  AdvisorState& s = app.advisor;
  if (!s.run || s.run->running()) return;
  const std::string err = s.run->error();
  if (auto rep = s.run->report()) {
    s.report = rep;
    merge_samples(s.samples, rep->samples);
    app.log.push_back("advisor: ranked " + std::to_string(rep->ranked.size()) + " variants at " +
                      std::to_string(rep->request.seq) + " tokens");
  } else if (!err.empty()) {
    s.message = err;
    app.log.push_back("advisor: " + err);
  }
  s.run.reset();
}

// The question: scenario, target length, memory budget, and Rank / Re-measure / Cancel.
void draw_advisor_question(App& app, bool running) {
  AdvisorState& s = app.advisor;
  const float fs = ImGui::GetFontSize();
  ImGui::SetNextItemWidth(fs * 15);
  if (ImGui::BeginCombo("scenario", kScenarios[std::clamp(s.scenario, 0, 3)].label)) {
    for (int i = 0; i < 4; ++i)
      if (ImGui::Selectable(kScenarios[i].label, i == s.scenario)) s.scenario = i;
    ImGui::EndCombo();
  }
  mark_target(app, "advisor_scenario");
  tooltip(scenario_goal(kScenarios[std::clamp(s.scenario, 0, 3)].scenario).c_str());
  ImGui::SameLine();
  ImGui::SetNextItemWidth(fs * 8);
  const int64_t step = 256, step_fast = 4096;
  ImGui::BeginDisabled(running);
  if (ImGui::InputScalar("target length", ImGuiDataType_S64, &s.seq, &step, &step_fast))
    s.seq = std::clamp<int64_t>(s.seq, 2, int64_t(1) << 20);
  ImGui::EndDisabled();
  tooltip("tokens; the timings are measured at this length (or interpolated between measured lengths around it)");
  ImGui::SameLine();
  ImGui::SetNextItemWidth(fs * 6);
  char budget[32];
  std::snprintf(budget, sizeof budget, "%s", s.memory.c_str());
  if (ImGui::InputTextWithHint("memory budget", "none", budget, sizeof budget)) s.memory = budget;
  mark_target(app, "advisor_budget");
  tooltip(
      "e.g. 2GB, 512MiB (binary units); empty: no budget. A variant whose prefill peak + KV cache + weights "
      "exceed it is excluded.");
  ImGui::SameLine();
  if (running) {
    if (ImGui::Button("Cancel", ImVec2(fs * 6, 0))) s.run->cancel();
    mark_target(app, "advisor_cancel");
  } else {
    ImGui::BeginDisabled(!app.model);
    if (ImGui::Button(s.report ? "Re-measure" : "Rank", ImVec2(fs * 7, 0))) start_advice(app);
    ImGui::EndDisabled();
    mark_target(app, "advisor_rank");
    tooltip(
        "measures (in child processes, as `attnscope bench`) every decodable variant not yet measured at the "
        "target length, then ranks; the scenario and the budget re-rank at once without measuring");
  }
}

// Timed runs, validation windows, and timings from a bench file.
void draw_measurement_options(App& app) {
  AdvisorState& s = app.advisor;
  const float fs = ImGui::GetFontSize();
  if (!ImGui::TreeNode("measurement options")) return;
  ImGui::SetNextItemWidth(fs * 8);
  ImGui::SliderInt("timed runs per variant", &s.repeats, 1, 9);
  ImGui::SetNextItemWidth(fs * 8);
  ImGui::SliderInt("validation windows", &s.eval_windows, 0, 16);
  tooltip(
      "losses of variants without a shipped checkpoint: the base checkpoint's loss plus the change the "
      "variant makes to its weights on this many validation windows (0: checkpoints only)");
  char path[512];
  std::snprintf(path, sizeof path, "%s", s.bench_path.c_str());
  ImGui::SetNextItemWidth(fs * 24);
  if (ImGui::InputTextWithHint("##benchfile", "bench results, from attnscope bench --json F", path, sizeof path))
    s.bench_path = path;
  ImGui::SameLine();
  if (ImGui::Button("Load timings")) {
    std::string why;
    load_advisor_bench(app, s.bench_path, &why);
  }
  ImGui::Text("%zu timings known (bench files, earlier runs, the scaling panel's points join them)", s.samples.size());
  if (!s.samples.empty()) {
    ImGui::SameLine();
    if (ImGui::SmallButton("forget them")) s.samples.clear();
  }
  ImGui::TreePop();
}

// The scenario's goal, the last problem, a budget that is not a size, and the gathering's progress.
void draw_advisor_status(const AdvisorState& s, bool running) {
  const float fs = ImGui::GetFontSize();
  ImGui::PushStyleColor(ImGuiCol_Text, kDim);
  ImGui::TextWrapped("goal: %s", scenario_goal(kScenarios[std::clamp(s.scenario, 0, 3)].scenario).c_str());
  ImGui::PopStyleColor();
  if (!s.message.empty()) ImGui::TextColored(kRed, "%s", s.message.c_str());
  {
    double b = 0;
    std::string why;
    if (!budget_bytes(s.memory, &b, &why))
      ImGui::TextColored(kRed, "memory budget: %s (ranking without it)", why.c_str());
  }
  if (running) {
    const AdviseProgress p = s.run->progress();
    const float frac = p.total > 0 ? float(p.done) / float(p.total) : 0.f;
    char over[96];
    std::snprintf(over, sizeof over, "%d of %d", p.done, p.total);
    ImGui::ProgressBar(frac, ImVec2(fs * 14, 0), over);
    ImGui::SameLine();
    ImGui::TextColored(kAmber, "%s%s", p.what.c_str(), s.run->cancelled() ? " (cancelling after this step)" : "");
  }
}

// Where the report's numbers come from, and the legend of the score terms.
void draw_report_header(const AdvisorState& s, const AdviceReport& rep) {
  const float fs = ImGui::GetFontSize();
  if (rep.request.seq != s.seq)
    ImGui::TextColored(kAmber, "ranked at %lld tokens: press Re-measure for %lld", (long long)rep.request.seq,
                       (long long)s.seq);
  ImGui::TextColored(kDim, "timings: %s", rep.timing_source.c_str());
  ImGui::TextColored(kDim, "losses: checkpoints in assets/models, else %s's loss + the change under each variant",
                     rep.base_variant.c_str());
  // legend of the score terms
  ImGui::TextUnformatted("score (lower is better):");
  for (int i = 0; i < 4; ++i) {
    ImGui::SameLine(0, fs * 0.8f);
    const ImVec2 q = ImGui::GetCursorScreenPos();
    ImGui::GetWindowDrawList()->AddRectFilled(ImVec2(q.x, q.y + fs * 0.25f), ImVec2(q.x + fs * 0.9f, q.y + fs * 0.85f),
                                              kTermColour[i]);
    ImGui::Dummy(ImVec2(fs, fs));
    ImGui::SameLine(0, fs * 0.3f);
    ImGui::TextUnformatted(kTermName[i]);
  }
}

// One ranked variant: rank, name (+ to add a column), score bar, prefill, cache, loss, and why.
void draw_ranking_row(App& app, const Ranked& r, const Candidate* c, double full) {
  const float fs = ImGui::GetFontSize();
  const bool excluded = r.rank == 0;
  ImGui::TableNextRow();
  ImGui::PushID(r.variant.c_str());
  ImGui::TableNextColumn();
  if (excluded)
    ImGui::TextColored(kDim, "-");
  else
    ImGui::TextColored(r.rank == 1 ? kGreen : ImGui::GetStyleColorVec4(ImGuiCol_Text), "%d", r.rank);
  ImGui::TableNextColumn();
  bool in_columns = false;
  for (const Column& col : app.columns) in_columns = in_columns || col.variant == r.variant;
  ImGui::TextColored(excluded     ? kDim
                     : in_columns ? kAccent
                                  : ImGui::GetStyleColorVec4(ImGuiCol_Text),
                     "%s", r.variant.c_str());
  if (!excluded && !in_columns && app.columns.size() < 6) {
    ImGui::SameLine();
    if (ImGui::SmallButton("+")) add_column(app, r.variant);
    tooltip("add a column with this variant");
  }
  ImGui::TableNextColumn();
  if (!excluded) {
    score_bar(r, full, fs * 6.2f);
    ImGui::SameLine();
    ImGui::Text("%.2f", r.score);
  }
  ImGui::TableNextColumn();
  if (c && std::isfinite(c->timing.prefill_ms)) {
    ImGui::Text("%.2f ms", c->timing.prefill_ms);
    tooltip(c->timing.how.c_str());
  } else {
    ImGui::TextColored(kDim, "n/a");
  }
  ImGui::TableNextColumn();
  if (c && c->cache_bytes >= 0) {
    ImGui::Text("%s", human_bytes(double(c->cache_bytes)).c_str());
    if (c->cache_constant) tooltip("constant: stops growing with the sequence");
  } else {
    ImGui::TextColored(kDim, "n/a");
  }
  ImGui::TableNextColumn();
  if (c && std::isfinite(c->val_loss)) {
    const bool own = c->loss_source.rfind("checkpoint", 0) == 0;
    ImGui::TextColored(own ? ImGui::GetStyleColorVec4(ImGuiCol_Text) : kAmber, "%.3f", c->val_loss);
    tooltip((c->loss_source + (own ? " (trained with this variant)" : " (converted, not trained)")).c_str());
  } else {
    ImGui::TextColored(kDim, "n/a");
  }
  ImGui::TableNextColumn();
  ImGui::PushStyleColor(ImGuiCol_Text, excluded ? kDim : ImGui::GetStyleColorVec4(ImGuiCol_Text));
  ImGui::TextWrapped("%s", excluded ? r.reason.c_str() : reason_lines(r.reason).c_str());
  ImGui::PopStyleColor();
  ImGui::PopID();
}

// The ranking as a table, the bars scaled to the largest score of a ranked variant.
void draw_ranking_table(App& app, const AdviceReport& rep) {
  const AdvisorState& s = app.advisor;
  const float fs = ImGui::GetFontSize();
  double full = 1e-9;
  for (const Ranked& r : s.ranked)
    if (r.rank > 0) full = std::max(full, r.score);
  const ImGuiTableFlags flags = ImGuiTableFlags_ScrollY | ImGuiTableFlags_RowBg | ImGuiTableFlags_BordersInnerV |
                                ImGuiTableFlags_Resizable | ImGuiTableFlags_SizingStretchProp;
  if (ImGui::BeginTable("ranking", 7, flags, ImVec2(0, ImGui::GetContentRegionAvail().y))) {
    ImGui::TableSetupScrollFreeze(0, 1);
    ImGui::TableSetupColumn("#", ImGuiTableColumnFlags_WidthFixed, fs * 1.6f);
    ImGui::TableSetupColumn("variant", ImGuiTableColumnFlags_WidthFixed, fs * 8.5f);
    ImGui::TableSetupColumn("score", ImGuiTableColumnFlags_WidthFixed, fs * 9);
    ImGui::TableSetupColumn("prefill", ImGuiTableColumnFlags_WidthFixed, fs * 5);
    ImGui::TableSetupColumn("KV cache", ImGuiTableColumnFlags_WidthFixed, fs * 5.5f);
    ImGui::TableSetupColumn("loss", ImGuiTableColumnFlags_WidthFixed, fs * 3.5f);
    ImGui::TableSetupColumn("why", ImGuiTableColumnFlags_WidthStretch);
    ImGui::TableHeadersRow();
    for (const Ranked& r : s.ranked) draw_ranking_row(app, r, rep.candidate(r.variant), full);
    ImGui::EndTable();
  }
  mark_target(app, "advisor_table");
}

}  // namespace

void draw_advisor_window(App& app) {
  AdvisorState& s = app.advisor;
  take_finished_gathering(app);
  if (!s.open) return;
  update_ranking(s);
  const float fs = ImGui::GetFontSize();
  const ImVec2 display = ImGui::GetIO().DisplaySize;
  ImGui::SetNextWindowSize(ImVec2(std::max(fs * 50, display.x * 0.86f), std::max(fs * 30, display.y * 0.8f)),
                           ImGuiCond_FirstUseEver);
  ImGui::SetNextWindowPos(ImVec2(display.x * 0.07f, display.y * 0.08f), ImGuiCond_FirstUseEver);
  if (!ImGui::Begin("Scenario advisor: which attention for this use, on this machine", &s.open)) {
    ImGui::End();
    return;
  }
  const bool running = s.run && s.run->running();
  draw_advisor_question(app, running);
  draw_measurement_options(app);
  draw_advisor_status(s, running);
  if (!s.report) {
    if (!running)
      ImGui::TextWrapped(
          "Rank measures the decodable variants at the target length on this machine (one layer each, "
          "d_model 128, 8 heads, in child processes), takes each variant's validation loss from its "
          "shipped checkpoint (or measures it on the base weights), and ranks them for the scenario.");
    ImGui::End();
    return;
  }
  const AdviceReport& rep = *s.report;
  draw_report_header(s, rep);
  draw_ranking_table(app, rep);
  ImGui::End();
}

// advisor SCENARIO SEQ [MEMORY|none]: the panel, gathering for that scenario and length (training, long-context,
//   memory-limited, quality) | advisor_set SCENARIO [MEMORY|none]: re-rank without measuring, and print
// advisor_wait SECONDS: until the gathering ends, then prints the ranking ("advisor: N VARIANT score S | reason")
ScriptStep advisor_script_command(App& app, const std::string& command, int phase) {
  std::istringstream in(command);
  std::string op;
  in >> op;
  AdvisorState& s = app.advisor;
  auto fail = [&](const std::string& why) { return script_failed(command, why); };
  auto set_scenario = [&](const std::string& name) {
    try {
      const Scenario sc = parse_scenario(name);
      for (int i = 0; i < 4; ++i)
        if (kScenarios[i].scenario == sc) s.scenario = i;
      return true;
    } catch (const Error&) {
      return false;
    }
  };
  auto print = [&] {
    update_ranking(s);
    std::printf("t=%.3f s  advisor: %s at %lld tokens, budget %s, %zu timings known\n", seconds_since_start(app),
                kScenarios[s.scenario].label, (long long)(s.report ? s.report->request.seq : s.seq),
                s.memory.empty() ? "none" : s.memory.c_str(), s.samples.size());
    for (const Ranked& r : s.ranked)
      std::printf("  advisor: %s %s %s\n", r.rank ? std::to_string(r.rank).c_str() : "-", r.variant.c_str(),
                  r.reason.c_str());
    std::fflush(stdout);
  };
  if (op == "advisor" || op == "advisor_set") {
    std::string scenario, memory;
    int64_t seq = s.seq;
    in >> scenario;
    if (op == "advisor" && !(in >> seq)) return fail("give SCENARIO SEQ [MEMORY|none]");
    if (!set_scenario(scenario)) return fail("scenario: training, long-context, memory-limited or quality");
    if (in >> memory) s.memory = memory == "none" ? "" : memory;
    s.open = true;
    if (op == "advisor_set") {
      if (!s.report) return fail("nothing ranked yet");
      print();
      return ScriptStep::Done;
    }
    s.seq = seq;
    start_advice(app);
    if (!s.run) return fail(s.message.empty() ? "not started" : s.message);
    return ScriptStep::Done;
  }
  if (op == "advisor_wait") {
    double seconds = 120;
    in >> seconds;
    static Clock::time_point since;
    if (phase == 0) since = Clock::now();
    if (s.run) {
      if (std::chrono::duration<double>(Clock::now() - since).count() > seconds) return fail("still gathering");
      return ScriptStep::Again;  // draw_advisor_window takes the report when the run has finished
    }
    if (!s.report) return fail(s.message.empty() ? "no report" : s.message);
    print();
    return ScriptStep::Done;
  }
  return ScriptStep::Unknown;
}

}  // namespace attnscope::gui
