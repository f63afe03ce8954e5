#pragma once
// Everything the window shows is state in these structs; the views (views.h, one file each) draw widgets from them
// and from small tables (Dear ImGui demo style); gui_main.cpp owns the frame loop, script.cpp the scripted input.
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gui.h"
#include "heatmap.h"
#include "imgui.h"
#include "kv_calc.h"
#include "registry.h"
#include "config.h"
#include "custom_mask.h"
#include "studio.h"
#include "worker.h"

namespace attnscope::gui {

using namespace attnscope::session;  // the window is a front end over the session layer (app/session)

constexpr int kMaxColumns = 6;

enum class TextSource { Typed = 0, Passage = 1, Generated = 2 };

struct TextState {
  TextSource source = TextSource::Passage;
  std::string text;  // what the columns read (typed, passage, or prompt + generated)
  std::string kv_text = "JULIET:\nO Romeo, Romeo! wherefore art thou Romeo?\n";  // keys/values of cross-attention
  int unknown_policy = 1;                                                        // 0 skip, 1 replace (never fatal)
  int window_start = 0;  // first character of the visible window (text longer than the context)
  int window_len = 0;    // 0 = as much as the context allows
  int passage_len = 72;  // characters per held-out passage
  uint64_t passage_seed = 7;
  std::string prompt = "ROMEO:\n";
  int gen_tokens = 200;
  float gen_temperature = 0.8f;
  int gen_top_k = 20;
  uint64_t gen_seed = 1;
  uint64_t gen_job = 0;  // the job whose text is streaming into `text`
};

struct ViewState {
  Colormap colormap = Colormap::Viridis;
  Scale scale = Scale::Linear;
  bool mask_overlay = true;
  bool labels = true;
  float log_decades = 3.0f;
  bool exclude_first = false;  // colour scales ignore the first key (attention sinks)
  bool link = true;            // layer and head selection shared by every column
  float ui_scale = 1.0f;       // fonts are rebuilt at 16 px x this
  bool light_theme = false;    // for lit lecture halls, where projectors wash dark UIs out (heatmaps keep theirs)
  bool show_diff = false;      // the difference window
  int diff_a = 0, diff_b = 1;  // its columns (indices)
  bool diff_signed = false;    // A - B instead of |A - B|
  bool show_demo = false;
};

using Clock = std::chrono::steady_clock;

// Step-wise generation in every column (a worker decode session; generation.cpp draws it).
struct GenState {
  bool open = false;  // the columns show generation instead of the text's heatmaps
  std::string prompt = "ROMEO:\n";
  float temperature = 0.8f;
  int top_k = 20;
  int seed = 1;
  bool shared_stream = true;  // every column reads the first column's tokens (else each samples, same seed)
  bool held_out = false;      // every column reads the held-out text instead (its loss per step; the prompt unused)
  int length = 0;             // positions to run: 0 = the context; more streams past it (DecodeJob options.stream_to)
  bool playing = false;
  float speed = 8;                 // steps per second while playing
  int cursor = -1;                 // the step shown; -1 follows the newest
  uint64_t session = 0;            // the worker session on screen (0: none started)
  std::vector<int> column_ids;     // the columns it was started with (Column::id), to spot edits since
  Clock::time_point last_request;  // playing: when the last step was asked for
  DecodeState state;               // the worker's snapshot, refreshed every frame
};

// The KV-cache calculator window (attention/kv_calc.h).
struct KvCalcState {
  bool open = false;
  int preset = 1;  // index into presets; presets.size() = custom
  std::vector<ModelShape> presets;
  std::string presets_error;  // the bundled model's shape could not be read
  ModelShape custom;
  int tokens = 32768;
  int batch = 1;
  int dtype = 1;  // KvDType: fp32, fp16, bf16, fp8
};

// Scrolling a column's body to what was just opened takes two frames: ImGui clamps the scroll to the content
// size of the previous frame, which does not hold the new section yet.
constexpr int kScrollFrames = 2;

// Painting the `custom` variant's mask on the sparsity view (custom_mask.h).
enum class MaskTool { Brush = 0, Rect = 1, Band = 2 };
struct MaskEdit {
  bool open = false;  // the sparsity view is the editor (large, takes the mouse)
  MaskTool tool = MaskTool::Brush;
  bool erase = false;            // the tools clear cells instead of setting them
  int radius = 1;                // brush radius in cells
  int band_lo = 0, band_hi = 7;  // band: lo <= i - j <= hi
  int scroll = 0;                // frames left to scroll the column's body to the editor (kScrollFrames)
  bool dragging = false;
  int drag_i = 0, drag_j = 0;  // rectangle: the corner where the drag started
};

struct HeadsRun;  // the heads row's background analysis (row_heads.cpp)

// One variant column.
// What a column's textures were last uploaded from. Maps that share those planes (the same text grown, deleted
// from, or its last characters typed again: engine.h's MapPlanes) still read the same earlier rows: the textures
// keep them and take only the new ones.
struct UploadedFrom {
  std::weak_ptr<const MapPlanes> planes;
  int rows = 0;
  // The rows of m the textures already hold (0: upload all), and m recorded as the new source. layout: what the
  // textures show (a different layer or head holds other rows).
  int kept(const AttentionMaps& m, const std::string& layout) {
    const bool same = layout == layout_ && m.planes && planes.lock() == m.planes;
    const int k = same ? std::min(rows, int(m.queries)) : 0;
    planes = m.planes;
    rows = int(m.queries);
    layout_ = layout;
    return k;
  }

 private:
  std::string layout_;
};

struct Column {
  int id = 0;  // stable (worker slot); never reused
  std::string variant = "mha";
  ParamValues params;             // resolved values, every parameter present
  CustomMask mask;                // `custom` on every layer: the painted mask (empty: causal)
  bool per_layer = false;         // a variant per layer (`layers`) instead of `variant` on every layer
  bool convert = false;           // run the base checkpoint converted even when a trained one is shipped
  std::vector<LayerSpec> layers;  // per_layer: one per model layer, params resolved
  MaskEdit mask_edit;
  bool explain_open = false;  // the explanation is shown below the rows
  int explain_scroll = 0;     // frames left to scroll the column's body to it (kScrollFrames)
  int layer = 0;
  int head = 0;  // -1: every layer x head as a grid
  View view = View::Weights;
  uint64_t seq = 0;                           // last submitted request
  std::string submitted_key;                  // what it was (resubmit only on change)
  Clock::time_point submitted_at;             // when (latency log)
  bool latency_logged = true;                 // the heatmap of the latest request has been drawn and logged
  std::shared_ptr<const ColumnResult> shown;  // the result on screen (always of request `seq` or older)
  ColumnTiming timing;                        // repeated forwards of `shown`
  std::vector<Heatmap> tiles;                 // uploaded matrices: one, or layers x heads
  std::string tiles_key;                      // (result seq, layer, head) they hold
  UploadedFrom tiles_from;                    // the maps they hold
  Heatmap mask_tile;                          // the sparsity row's computed-pairs mask of (layer, head)
  std::string mask_key;
  UploadedFrom mask_from;
  float zoom = 1, x0 = 0, y0 = 0;          // single-head view: magnification and the first visible cell (col, row)
  float rows_h = 0;                        // height of the rows below the heatmap last frame (sizes the heatmap)
  std::shared_ptr<HeadsRun> heads;         // roles and knock-outs of the shown result, computed in the background
  bool heads_knockouts = false;            // the heads row also knocks out every head (asked for with a click)
  std::vector<HeadKnockout> knockouts;     // heads knocked out of this column (head -1: a layer's whole attention)
  KnockMode knock_mode = KnockMode::Zero;  // their outputs zeroed, or replaced by their held-out means (knockout.h)
};

// Encoded text and the window the columns see.
struct TokenView {
  std::vector<int64_t> ids;     // whole text
  std::vector<size_t> offsets;  // byte offset of each id in the text
  std::vector<UnknownChar> unknown;
  std::string unknown_message;
  int start = 0, len = 0;  // the window
  std::vector<int64_t> window() const { return {ids.begin() + start, ids.begin() + start + len}; }
  std::vector<int64_t> kv_ids;
  std::string kv_message;
};

struct Fonts {
  ImFont* ui = nullptr;
  ImFont* mono = nullptr;   // text and axis labels
  ImFont* small = nullptr;  // small axis labels
  ImFont* title = nullptr;
  float size = 16;
};

// The difference view's matrix (|A - B| or A - B of two columns at one layer and head) and KL(A || B) per row.
struct DiffState {
  int layer = 0, head = 0;
  Heatmap map;
  std::string key;             // (seqs, layer, head, signed) it holds
  std::string problem;         // why there is no difference to show
  std::vector<float> kl_rows;  // [T]
  double mean_kl = 0;
  std::vector<float> values;  // [T, S] the displayed matrix (hover)
  int rows = 0, cols = 0;
};

// What the status bar samples once a second (status_bar.cpp).
struct StatusSample {
  Clock::time_point at{};
  double frame_ms = 0;  // median of the recent drawn frames
  long rss = -1;        // resident bytes (-1: unknown)
  int drawn = 0, frames = 0;
};

struct App {
  GuiOptions* opts = nullptr;
  std::unique_ptr<Worker> worker;
  HeatmapProgram program;
  std::string program_error;
  std::string model_dir;
  std::string corpus_valid;  // held-out 10% of the corpus
  std::string corpus_error;
  TextState text;
  ViewState view;
  TokenView tokens;
  std::string tokens_key;  // text + policy the TokenView was built from
  std::vector<Column> columns;
  int next_column_id = 1;
  std::shared_ptr<const Model> model;  // the loaded model once the worker has it
  DiffState diff;
  GenState gen;
  KvCalcState kv;
  ExportState exporter;   // studio.h: the export dialog and its background write
  SceneUi scenes;         // the scene on screen, scene messages, presentation mode
  ScalingState scaling;   // the scaling panel's sweep
  AdvisorState advisor;   // the scenario advisor panel
  HelpState help;         // the Help menu's windows
  LongState long_text;    // "Beyond the context": pooled heatmaps and loss by position past the context
  int active_column = 0;  // arrow keys act on it (or on every column when linked)
  Fonts fonts;
  bool fonts_dirty = false;
  int frame = 0;
  std::deque<double> frame_ms;  // recent frames' CPU time (status bar, scripted runs' report)
  // Frames whose picture changed (the others skip OpenGL entirely: gui_main.cpp's draw_frame); their times.
  int frames_drawn = 0;
  std::deque<double> drawn_ms;
  uint64_t last_picture = 0;   // the last drawn frame's picture key (draw data + heatmap textures + size)
  bool redraw = true;          // the window system asked for a repaint (exposed, resized)
  StatusSample status_sample;  // the status bar's measurements, sampled once a second (not every frame)
  double last_compute_ms = 0;  // the latest result's forward
  bool log_events = false;     // scripted runs: print timestamped events (latency)
  Clock::time_point started = Clock::now();
  std::string window_icon;       // the PNG the window's icon came from ("" = none found, or no window)
  std::string settings_message;  // a settings file that could not be read
  // widget rectangles by name, for scripted clicks in tests ("click @add_column")
  std::map<std::string, ImVec4> targets;
  std::vector<std::string> log;  // status lines (printed at exit of scripted runs)
};

// columns.cpp (the column controller), column_view.cpp (draw_ui), widgets.cpp (mark_target)
void init_columns(App& app, const std::vector<std::string>& specs);
void new_passage(App& app);
void update_tokens(App& app);
void submit_columns(App& app);
void poll_results(App& app);
void draw_ui(App& app);
void add_column(App& app, const std::string& variant);
bool columns_settled(const App& app);  // every column shows the result of its latest request
// What a request builds with Model::with_layers: one spec per layer for per-layer columns and painted masks, else
// empty (the column's variant on every layer).
std::vector<LayerSpec> column_layers(const Column& c, int64_t n_layer);
// The model a column names, as the worker's requests carry it (variant, parameters, layers, conversion, knock-outs):
// its maps and its generation session run the same model. Tokens and seq are the caller's.
ColumnRequest column_request(const Column& c, int64_t n_layer);
// The variant column c runs at `layer` (per-layer columns: that layer's; null when unknown).
const VariantInfo* layer_variant(const Column& c, int layer);
// Per-layer mode on or off; turning it on starts every layer at the column's variant.
void set_per_layer(App& app, Column& c, bool on);
// The mask painting acts on at the column's selected layer (null: that layer is not `custom`).
CustomMask* edited_mask(App& app, Column& c);
void mark_target(App& app, const char* name);                    // remember the last item's rectangle
void set_layer_head(App& app, int column, int layer, int head);  // all columns when linked
void move_selection(App& app, int dlayer, int dhead);            // arrow keys
double seconds_since_start(const App& app);
// Knock (layer, head) out of the column, or back in when it is out (head -1: the layer's whole attention).
void toggle_knockout(Column& c, int layer, int head);
std::string knockouts_label(const std::vector<HeadKnockout>& k);  // "L1 h0, L0 all" ("" when none)

// generation.cpp: the lockstep generation view and the KV-cache calculator window
void start_generation(App& app);   // a new session with the current columns, prompt and options
void update_generation(App& app);  // every frame: the worker's snapshot, and the next step while playing
void request_generation_steps(App& app, int n);
void draw_generation_panel(App& app);  // the sidebar while the view is open
void draw_generation_column(App& app, Column& c, int index);
void draw_kv_calculator(App& app);
bool select_kv_preset(App& app, const std::string& key);               // by preset key or "custom"; false when unknown
const DecodeTrack* generation_track(const App& app, const Column& c);  // this column's track in the session
int generation_cursor(const App& app);                                 // the step shown (-1: no step yet)

// settings.cpp: $XDG_CONFIG_HOME/attnscope or ~/.config/attnscope ("" when neither is set)
std::string config_dir();
// What the user makes never goes under the install tree: scenes in $XDG_DATA_HOME/attnscope (~/.local/share),
// exports in the pictures folder's attnscope/ ("" when HOME and the XDG variables are all unset).
std::string data_dir();
std::string pictures_dir();
// Creates `dir` and its parents; false with a sentence in *why when it cannot.
bool make_user_dir(const std::string& dir, std::string* why);
// Reads settings.json into the view state (and the columns when `columns` is true). Never throws: a missing or
// corrupt file leaves the defaults and, when corrupt, a message in app.settings_message.
void load_settings(App& app, bool columns);
void save_settings(const App& app);

}  // namespace attnscope::gui
