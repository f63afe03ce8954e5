#pragma once
// Everything the window shows is state in these structs; panels.cpp draws widgets from them and from
// the small tables below (Dear ImGui demo style); gui_main.cpp owns the frame loop.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gui.h"
#include "heatmap.h"
#include "imgui.h"
#include "worker.h"

namespace attnscope::gui {

constexpr int kMaxColumns = 6;

enum class TextSource { Typed = 0, Passage = 1, Generated = 2 };

struct TextState {
  TextSource source = TextSource::Passage;
  std::string text;                 // what the columns read (typed, passage, or prompt + generated)
  std::string kv_text = "JULIET:\nO Romeo, Romeo! wherefore art thou Romeo?\n";  // keys/values of cross-attention
  int unknown_policy = 1;           // 0 skip, 1 replace (never fatal)
  int window_start = 0;             // first character of the visible window (text longer than the context)
  int window_len = 0;               // 0 = as much as the context allows
  int passage_len = 72;             // characters per held-out passage
  uint64_t passage_seed = 7;
  std::string prompt = "ROMEO:\n";
  int gen_tokens = 200;
  float gen_temperature = 0.8f;
  int gen_top_k = 20;
  uint64_t gen_seed = 1;
  uint64_t gen_job = 0;             // the job whose text is streaming into `text`
};

struct ViewState {
  Colormap colormap = Colormap::Viridis;
  Scale scale = Scale::Linear;
  bool mask_overlay = true;
  bool labels = true;
  float log_decades = 3.0f;
  bool presentation = false;
  bool show_demo = false;
};

// One variant column.
struct Column {
  int id = 0;                        // stable (worker slot); never reused
  std::string variant = "mha";
  ParamValues params;                // resolved values, every parameter present
  int layer = 0;
  int head = 0;                      // -1: all heads as a grid
  View view = View::Weights;
  uint64_t seq = 0;                  // last submitted request
  std::string submitted_key;         // what it was (resubmit only on change)
  std::shared_ptr<const ColumnResult> shown;  // the result on screen
  std::vector<Heatmap> tiles;        // uploaded matrices: one, or one per head
  std::string tiles_key;             // (result seq, layer, head) they hold
};

// Encoded text and the window the columns see.
struct TokenView {
  std::vector<int64_t> ids;             // whole text
  std::vector<size_t> offsets;          // byte offset of each id in the text
  std::vector<UnknownChar> unknown;
  std::string unknown_message;
  int start = 0, len = 0;               // the window
  std::vector<int64_t> window() const {
    return {ids.begin() + start, ids.begin() + start + len};
  }
  std::vector<int64_t> kv_ids;
  std::string kv_message;
};

struct Fonts {
  ImFont* ui = nullptr;
  ImFont* mono = nullptr;      // text and axis labels
  ImFont* small = nullptr;     // small axis labels
  ImFont* title = nullptr;
  float size = 16;
};

struct App {
  GuiOptions* opts = nullptr;
  std::unique_ptr<Worker> worker;
  HeatmapProgram program;
  std::string program_error;
  std::string model_dir;
  std::string corpus_valid;             // held-out 10% of the corpus
  std::string corpus_error;
  TextState text;
  ViewState view;
  TokenView tokens;
  std::string tokens_key;               // text + policy the TokenView was built from
  std::vector<Column> columns;
  int next_column_id = 1;
  std::shared_ptr<const Model> model;   // the loaded model once the worker has it
  Fonts fonts;
  bool fonts_dirty = false;
  int frame = 0;
  // widget rectangles by name, for scripted clicks in tests ("click @add_column")
  std::map<std::string, ImVec4> targets;
  std::vector<std::string> log;         // status lines (printed at exit of scripted runs)
};

// panels.cpp
void init_columns(App& app, const std::vector<std::string>& specs);
void new_passage(App& app);
void update_tokens(App& app);
void submit_columns(App& app);
void poll_results(App& app);
void draw_ui(App& app);
void add_column(App& app, const std::string& variant);
bool columns_settled(const App& app);  // every column shows the result of its latest request
void mark_target(App& app, const char* name);  // remember the last item's rectangle

}  // namespace attnscope::gui
