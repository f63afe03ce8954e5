#pragma once
// Figures out of the window: the export dialog (PNG/SVG/CSV/NPY/JSON through the same session::figure_from_maps
// as `attnscope render`), scene files (File > Open/Save scene, --scene), presentation mode (F11, Page Up/Down
// through a folder of scenes) and the scaling panel (the `attnscope bench` sweep of the columns' variants, live).
// export.cpp, scenes.cpp and scaling.cpp implement it; studio.cpp has the File menu and the script commands.
#include <atomic>
#include <future>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "advise_run.h"
#include "bench.h"
#include "heatmap.h"
#include "job.h"
#include "long_context.h"
#include "render/figure.h"
#include "scene.h"

namespace attnscope::gui {

struct App;
struct Column;

// What an export draws: the whole comparison, one column's heatmap or sparsity mask, the difference window, or one
// column's attention flow (the heads row's rollout through every layer).
enum class ExportSource { Comparison = 0, Heatmap = 1, Sparsity = 2, Difference = 3, Flow = 4 };
enum class ExportFormat { Png = 0, Svg = 1, Csv = 2, Npy = 3, Json = 4 };

struct ExportState {
  bool open = false;       // the dialog is showing
  bool want_open = false;  // open it next frame (ImGui popups open from the frame's window stack)
  ExportSource source = ExportSource::Comparison;
  int column = 0;    // Heatmap / Sparsity: the column's index
  std::string path;  // the file to write
  ExportFormat format = ExportFormat::Png;
  int png_scale = 1;               // 1..4
  bool confirm_overwrite = false;  // the "replace it?" popup is showing
  struct Written {
    bool ok = false;
    std::string message;  // "wrote PATH (...)" or why not
  };
  std::unique_ptr<session::Job<Written>> job;  // the background encode and write (null: none running)
  std::string job_path;
  std::string message;  // the last result, shown in the dialog and logged
  bool message_error = false;
};

// The scene the window came from, scene messages, and presentation mode.
struct SceneUi {
  std::string path;                   // the scene file last opened or saved ("" = none)
  std::string title;                  // its title (presentation mode shows it)
  double zoom = 1;                    // the scene's figure zoom (exports use it; the GUI's zoom is per column)
  std::vector<std::string> messages;  // what loading skipped or changed (a dismissable list)
  std::string messages_origin;
  bool open_dialog = false, save_dialog = false;
  std::string dialog_path;
  std::string dialog_error;
  Scene pending;  // opened before the model was loaded: applied once it is
  bool has_pending = false;
  std::vector<std::string> recent;  // File > Open Recent: scenes opened or saved, newest first (settings.json)
  bool present = false;             // presentation mode (F11)
  bool fullscreen = false;          // the window is on the monitor (follows `present`)
  int windowed[4] = {0, 0, 0, 0};   // x, y, width, height to return to
};

// One background sweep of the bench library (a session::Job): every (length, variant) a separate run_bench, so
// points arrive live.
class ScalingRun {
 public:
  ScalingRun(std::vector<std::string> variants, std::vector<int64_t> lengths, int repeats);

  void cancel() { job_.cancel(); }
  bool running() const { return job_.running(); }
  bool cancelled() const { return job_.cancelled() || !job_.error().empty(); }
  std::vector<BenchPoint> points() const { return job_.snapshot().points; }  // measured so far, in order
  std::string error() const { return job_.error(); }
  std::string current() const { return job_.progress().current; }  // the point being measured ("" when finished)
  int total() const { return int(variants_.size() * lengths_.size()); }
  const std::vector<std::string>& variants() const { return variants_; }
  const std::vector<int64_t>& lengths() const { return lengths_; }
  std::string device() const { return job_.snapshot().device; }

 private:
  struct Measured {
    std::vector<BenchPoint> points;
    std::string device;
  };
  std::vector<std::string> variants_;
  std::vector<int64_t> lengths_;
  session::Job<Measured> job_;  // last: its thread reads the members above
};

struct ScalingState {
  bool open = false;
  int min_exp = 7, max_exp = 12;  // lengths 2^min_exp .. 2^max_exp
  int repeats = 2;
  std::unique_ptr<ScalingRun> run;
};

// "Beyond the context" (long_view.cpp): the columns on a held-out text longer than the training context, computed in
// the background column by column: the pooled heatmap of (layer, head) over the first `length` characters and the
// mean loss at every position over `windows` held-out windows of that length (attention/long_context.h).
class LongRun {
 public:
  struct Out {
    std::string label, where, error;  // error: the column could not run (its length limit, ...)
    PooledMap map;                    // rows = 0 until pooled
    ExtrapolationCurve loss;          // mean empty until computed
  };
  struct Spec {  // a column as the window holds it
    std::string variant;
    ParamValues params;
    bool convert = false;  // the base converted even where a trained checkpoint exists
    std::string refused;   // why this column cannot run past the context ("" when it can)
  };
  LongRun(std::shared_ptr<const Model> base, std::vector<Spec> columns, std::string valid, int64_t length,
          int64_t windows, int64_t layer, int64_t head);

  void cancel() { job_.cancel(); }
  bool running() const { return job_.running(); }
  std::string error() const { return job_.error(); }
  std::string current() const { return job_.progress().current; }
  std::vector<Out> columns() const { return job_.snapshot(); }  // one per column, filled as they finish
  int64_t length() const { return length_; }
  int64_t windows() const { return windows_; }
  int64_t context() const { return context_; }

 private:
  int64_t length_, windows_, context_;
  session::Job<std::vector<Out>> job_;  // last: its thread reads the members above
};

struct LongState {
  bool open = false;
  int length_exp = 14;  // 2^length_exp characters
  int windows = 1, layer = 0, head = 0;
  std::unique_ptr<LongRun> run;
  std::vector<Heatmap> maps;      // one per column of the run's result
  std::vector<int64_t> uploaded;  // the map size each holds (rows * cols; 0 = none)
};

// The scenario advisor's gathering (attention/advise_run.h: bench points for the variants not yet measured at the
// target length, cache formulas, losses) as a session::Job; the ranking itself is redone on the UI thread whenever
// the scenario or the budget changes (it only needs the gathered numbers).
class AdviseRun {
 public:
  AdviseRun(std::shared_ptr<const Model> base, AdviseSetup setup);

  void cancel() { job_.cancel(); }
  bool running() const { return job_.running(); }
  bool cancelled() const { return job_.cancelled(); }
  AdviseProgress progress() const { return job_.snapshot().progress; }
  std::string error() const { return job_.error(); }
  std::shared_ptr<const AdviceReport> report() const { return job_.snapshot().report; }  // null until finished
  const AdviseSetup& setup() const { return setup_; }

 private:
  struct Gathered {
    AdviseProgress progress;
    std::shared_ptr<const AdviceReport> report;
  };
  std::shared_ptr<const Model> base_;
  AdviseSetup setup_;
  session::Job<Gathered> job_;  // last: its thread reads the members above
};

struct AdvisorState {
  bool open = false;
  int scenario = 0;                  // Scenario, in the order of kScenarios (advisor.cpp)
  int64_t seq = 1024;                // target sequence length
  std::string memory = "2GB";        // budget as typed ("" = none)
  int repeats = 3;                   // measuring: timed runs per variant
  int eval_windows = 4;              // losses of variants without a checkpoint: validation windows
  std::string bench_path;            // a `bench --json` file to take timings from ("" = none)
  std::string message;               // the last load / run problem
  std::vector<BenchSample> samples;  // timings known so far (bench file, scaling panel, earlier runs)
  std::unique_ptr<AdviseRun> run;
  std::shared_ptr<const AdviceReport> report;  // the last finished gathering
  std::vector<Ranked> ranked;                  // its ranking under the scenario and budget on screen
  std::string ranked_key;                      // (report, scenario, budget) the ranking belongs to
};

// advisor.cpp
void draw_advisor_window(App& app);
void start_advice(App& app);  // gathers for the panel's target length on the base model
bool load_advisor_bench(App& app, const std::string& path, std::string* why);  // adds a bench file's timings
enum class ScriptStep;
ScriptStep advisor_script_command(App& app, const std::string& command, int phase);

// export.cpp
void open_export_dialog(App& app, ExportSource source, int column);
void draw_export_dialog(App& app);
// The figure an export of `source` draws, as `attnscope render` would draw the same scene; false with *why when the
// results it needs are missing or do not fit together.
bool export_figure(const App& app, ExportSource source, int column, render::Figure* f, render::Style* style,
                   std::string* why);
// Starts writing the figure in the background. False with *why (nothing written) when the file exists and
// `overwrite` is false, the directory cannot be written, or the figure cannot be made.
bool start_export(App& app, const std::string& path, ExportFormat format, int png_scale, bool overwrite,
                  std::string* why);
bool export_running(const App& app);
void draw_column_export_menu(App& app, int column);  // right-click in a column: export its heatmap or mask
void poll_export(App& app);                          // every frame: the finished job's message
const char* export_extension(ExportFormat f);

// scenes.cpp
SceneColumn scene_column(const Column& c);  // the parameters that differ from the variant's defaults
Scene scene_from_app(const App& app, std::vector<std::string>* notes);          // the whole view as a scene
void apply_scene(App& app, const Scene& s, std::vector<std::string>* skipped);  // needs the model
// Messages go to app.scenes; `remember`: File > Open Recent lists it (not for Page Up/Down through a folder).
bool open_scene(App& app, const std::string& path, std::string* why, bool remember = true);
bool save_scene_file(App& app, const std::string& path, std::string* why);
void update_scenes(App& app);  // every frame, before the columns are submitted: a pending scene
void draw_scene_ui(App& app);  // the open/save dialogs and the messages list
void set_presentation(App& app, bool on);
void apply_presentation(App& app);     // every frame, outside ImGui's frame: fullscreen and fonts follow `present`
bool step_scene(App& app, int delta);  // Page Down / Page Up: the next or previous scene of the folder
std::string scene_folder(const App& app);
std::string user_scene_folder();              // $XDG_DATA_HOME/attnscope/scenes (made on first save)
std::string scene_save_path(const App& app);  // the open scene, or its copy there when it is a bundled one
float font_pixels(const App& app);            // the UI font size (presentation mode: large, built at that size)
void draw_presentation_title(App& app);
void draw_presentation_header(const Column& c);  // a column's label in place of its controls

// scaling.cpp
void draw_scaling_window(App& app);
void start_scaling(App& app);

// long_view.cpp
void draw_long_window(App& app);
void start_long(App& app);  // the columns of the window at the panel's length, windows, layer and head

// studio.cpp
void draw_file_menu(App& app);
void handle_studio_keys(App& app);  // F11, Page Up/Down
// Script commands of these features (see gui_main.cpp); `phase` counts the frames a command has waited.
enum class ScriptStep { Unknown, Done, Again, Failed };
// Reports a command that cannot be carried out (the command, then why, on stderr) and returns Failed.
ScriptStep script_failed(const std::string& command, const std::string& why);
ScriptStep studio_script_command(App& app, const std::string& command, int phase);
ScriptStep long_script_command(App& app, const std::string& command, int phase);  // long_view.cpp

// help_menu.cpp: the Help menu and its windows (keys and gestures, About), File > Open Recent
struct HelpState {
  bool shortcuts = false;  // the "Keyboard and mouse" window
  bool about = false;      // the "About attnscope" window
};
constexpr size_t kMaxRecentScenes = 8;
void draw_help_menu(App& app);
void draw_help_windows(App& app);
void draw_open_recent_menu(App& app);
void remember_recent_scene(App& app, const std::string& path);         // newest first, at most kMaxRecentScenes
ScriptStep help_script_command(App& app, const std::string& command);  // help_window, open_recent, print_recent, theme

}  // namespace attnscope::gui
