// The File menu (scenes, exports, presentation, the scaling panel), their keys, and their script commands.
#include <GLFW/glfw3.h>

#include <chrono>
#include <cstdio>

#include "state.h"
#include "studio.h"

namespace attnscope::gui {

void draw_file_menu(App& app) {
  if (!ImGui::BeginMenu("File")) return;
  if (ImGui::MenuItem("Open scene...")) {
    app.scenes.open_dialog = true;
    app.scenes.dialog_path = app.scenes.path.empty() ? scene_folder(app) + "/" : app.scenes.path;
  }
  draw_open_recent_menu(app);
  if (ImGui::MenuItem("Save scene...", nullptr, false, !app.columns.empty())) {
    app.scenes.save_dialog = true;
    app.scenes.dialog_path = scene_save_path(app);
  }
  ImGui::Separator();
  if (ImGui::BeginMenu("Export", app.model != nullptr)) {
    if (ImGui::MenuItem("The whole comparison...")) open_export_dialog(app, ExportSource::Comparison, 0);
    for (int i = 0; i < int(app.columns.size()); ++i) {
      const std::string l = column_label(scene_column(app.columns[size_t(i)]));
      if (ImGui::MenuItem(("Column " + std::to_string(i + 1) + " heatmap (" + l + ")...").c_str()))
        open_export_dialog(app, ExportSource::Heatmap, i);
      if (ImGui::MenuItem(("Column " + std::to_string(i + 1) + " computed pairs (" + l + ")...").c_str()))
        open_export_dialog(app, ExportSource::Sparsity, i);
      if (ImGui::MenuItem(("Column " + std::to_string(i + 1) + " attention flow (" + l + ")...").c_str()))
        open_export_dialog(app, ExportSource::Flow, i);
    }
    if (ImGui::MenuItem("The difference window...", nullptr, false, app.columns.size() >= 2))
      open_export_dialog(app, ExportSource::Difference, 0);
    ImGui::EndMenu();
  }
  ImGui::Separator();
  if (ImGui::MenuItem("Presentation mode", "F11", app.scenes.present)) set_presentation(app, !app.scenes.present);
  ImGui::MenuItem("Scaling panel", nullptr, &app.scaling.open);
  ImGui::MenuItem("Scenario advisor", nullptr, &app.advisor.open);
  ImGui::MenuItem("Beyond the context", nullptr, &app.long_text.open);
  ImGui::EndMenu();
}

void handle_studio_keys(App& app) {
  const ImGuiIO& io = ImGui::GetIO();
  if (ImGui::IsKeyPressed(GLFW_KEY_F11, false)) set_presentation(app, !app.scenes.present);
  if (io.WantTextInput) return;
  if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_PageDown), false)) step_scene(app, 1);
  if (ImGui::IsKeyPressed(ImGui::GetKeyIndex(ImGuiKey_PageUp), false)) step_scene(app, -1);
}

namespace {

bool parse_source(std::istringstream& in, ExportSource* s, int* column) {
  std::string what;
  if (!(in >> what) || what == "all") {
    *s = ExportSource::Comparison;
    return true;
  }
  if (what == "diff") {
    *s = ExportSource::Difference;
    return true;
  }
  *s = what == "heatmap" ? ExportSource::Heatmap : what == "flow" ? ExportSource::Flow : ExportSource::Sparsity;
  return (what == "heatmap" || what == "sparsity" || what == "flow") && bool(in >> *column);
}

// scaling FROM TO REPEATS, scaling_cancel, scaling_wait N SECONDS: the scaling panel's sweep.
ScriptStep scaling_script_command(App& app, const std::string& command, int phase) {
  std::istringstream in(command);
  std::string op;
  in >> op;
  auto fail = [&](const std::string& why) { return script_failed(command, why); };
  if (op == "scaling") {
    int from = 128, to = 1024;
    in >> from >> to >> app.scaling.repeats;
    auto exp2 = [](int v) {
      int e = 0;
      while ((1 << (e + 1)) <= v) ++e;
      return e;
    };
    app.scaling.min_exp = std::clamp(exp2(from), 6, 14);
    app.scaling.max_exp = std::clamp(exp2(to), app.scaling.min_exp, 14);
    start_scaling(app);
    return ScriptStep::Done;
  }
  if (op == "scaling_cancel") {
    if (app.scaling.run) app.scaling.run->cancel();
    return ScriptStep::Done;
  }
  if (op == "scaling_wait") {
    size_t want = 2;
    double seconds = 60;
    in >> want >> seconds;
    if (!app.scaling.run) return fail("no scaling run");
    static Clock::time_point since;
    if (phase == 0) since = Clock::now();
    const ScalingRun& run = *app.scaling.run;
    const std::vector<BenchPoint> pts = run.points();
    bool enough = true;
    for (const std::string& v : run.variants())
      enough = enough && size_t(std::count_if(pts.begin(), pts.end(), [&](const BenchPoint& p) {
                           return p.variant == v && p.status == "ok";
                         })) >= want;
    if (enough) {
      std::printf("t=%.3f s  scaling: %zu points for %zu variants\n", seconds_since_start(app), pts.size(),
                  run.variants().size());
      for (const BenchPoint& p : pts)
        std::printf("  scaling point: %s T=%lld %s median %.3f ms peak %.1f MiB\n", p.variant.c_str(),
                    (long long)p.length, p.status.c_str(), p.median_ms, p.peak_mib);
      std::fflush(stdout);
      return ScriptStep::Done;
    }
    if (!run.running())
      return fail("the sweep ended with too few points" + (run.error().empty() ? "" : ": " + run.error()));
    if (std::chrono::duration<double>(Clock::now() - since).count() > seconds) return fail("too few points in time");
    return ScriptStep::Again;
  }
  return ScriptStep::Unknown;
}

}  // namespace

ScriptStep script_failed(const std::string& command, const std::string& why) {
  std::fprintf(stderr, "attnscope gui: script: %s: %s\n", command.c_str(), why.c_str());
  return ScriptStep::Failed;
}

// export PATH png|svg|csv|npy|json SCALE [all|heatmap COL|sparsity COL|diff]: as the dialog's Export button, waits
//   for the file; an existing file is refused (the dialog would ask), every refusal or failure is reported
// export_dialog [all|heatmap COL|sparsity COL|diff] | scene_open FILE | scene_save FILE | scene_dismiss
// present on|off | page_down | page_up | print_scene
// scaling FROM TO REPEATS: the panel, measuring lengths FROM..TO (powers of two) | scaling_cancel
// scaling_wait N SECONDS: until every variant has N measured points (a failure after SECONDS or an early end)
// advisor ..., advisor_set ..., advisor_wait ...: the scenario advisor (see advisor.cpp)
ScriptStep studio_script_command(App& app, const std::string& command, int phase) {
  std::istringstream in(command);
  std::string op;
  in >> op;
  auto fail = [&](const std::string& why) { return script_failed(command, why); };
  if (op == "export") {
    if (phase > 0) return export_running(app) ? ScriptStep::Again : ScriptStep::Done;
    std::string path, fmt;
    int scale = 1;
    in >> path >> fmt >> scale;
    static const char* const names[] = {"png", "svg", "csv", "npy", "json"};
    int f = -1;
    for (int i = 0; i < 5; ++i)
      if (fmt == names[i]) f = i;
    if (path.empty() || f < 0) return fail("give PATH and a format (png, svg, csv, npy, json)");
    ExportState& e = app.exporter;
    if (!parse_source(in, &e.source, &e.column)) return fail("what: all, heatmap COL, sparsity COL, flow COL or diff");
    e.format = ExportFormat(f);
    e.png_scale = scale;
    e.path = path;
    std::string why;
    if (!start_export(app, path, e.format, scale, false, &why)) {
      app.log.push_back("export: refused: " + why);
      std::printf("t=%.3f s  export: refused: %s\n", seconds_since_start(app), why.c_str());
      std::fflush(stdout);
      return ScriptStep::Done;
    }
    return ScriptStep::Again;
  }
  if (op == "export_dialog") {
    ExportSource s = ExportSource::Comparison;
    int column = 0;
    if (!parse_source(in, &s, &column)) return fail("what: all, heatmap COL, sparsity COL, flow COL or diff");
    open_export_dialog(app, s, column);
    return ScriptStep::Done;
  }
  if (op == "scene_open" || op == "scene_save") {
    std::string path, why;
    in >> path;
    const bool ok = op == "scene_open" ? open_scene(app, path, &why) : save_scene_file(app, path, &why);
    if (!ok) return fail(why);
    std::printf("t=%.3f s  scene: %s %s (%zu messages)\n", seconds_since_start(app),
                op == "scene_open" ? "opened" : "saved", path.c_str(), app.scenes.messages.size());
    for (const std::string& m : app.scenes.messages) std::printf("  scene message: %s\n", m.c_str());
    std::fflush(stdout);
    return ScriptStep::Done;
  }
  if (op == "scene_dismiss") {
    app.scenes.messages.clear();
    return ScriptStep::Done;
  }
  if (op == "present") {
    std::string v;
    in >> v;
    set_presentation(app, v != "off");
    return ScriptStep::Done;
  }
  if (op == "page_down" || op == "page_up") {
    if (!step_scene(app, op == "page_down" ? 1 : -1)) return fail("no scene to step to in " + scene_folder(app));
    return ScriptStep::Done;
  }
  if (op == "print_scene") {
    std::printf("scene: path %s, title \"%s\", present %d, fullscreen %d, font %.0f px, %zu messages\n",
                app.scenes.path.c_str(), app.scenes.title.c_str(), int(app.scenes.present), int(app.scenes.fullscreen),
                double(font_pixels(app)), app.scenes.messages.size());
    std::fflush(stdout);
    return ScriptStep::Done;
  }
  if (op.rfind("scaling", 0) == 0) return scaling_script_command(app, command, phase);
  if (op.rfind("advisor", 0) == 0) return advisor_script_command(app, command, phase);
  if (op == "help_window" || op == "open_recent" || op == "print_recent" || op == "theme")
    return help_script_command(app, command);
  if (op == "long" || op == "long_wait") return long_script_command(app, command, phase);
  return ScriptStep::Unknown;
}

}  // namespace attnscope::gui
