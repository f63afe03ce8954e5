// The script interpreter (script.h): one table of commands (name, arguments, help, body), looked up by name. A body
// says how the command leaves the queue: still running (called again next frame), finished with the next command in
// this frame too, or finished with the frame over (one state edit or input event per frame, like a user).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "error.h"
#include "imgui.h"
#include "registry.h"
#include "script.h"
#include "script_internal.h"
#include "state.h"
#include "views.h"

namespace attnscope::gui {

void Script::add(const std::string& text, bool split_semicolons) {
  std::string cur;
  for (char ch : text + "\n") {
    if (ch == '\n' || (ch == ';' && split_semicolons)) {
      size_t a = cur.find_first_not_of(" \t\r"), b = cur.find_last_not_of(" \t\r");
      if (a != std::string::npos && cur[a] != '#') cmds.push_back(cur.substr(a, b - a + 1));
      cur.clear();
    } else {
      cur += ch;
    }
  }
}

using namespace script_detail;

int script_detail::column_arg(const App& app, std::istringstream& in) {
  int c = -1;
  in >> c;
  return c >= 0 && c < int(app.columns.size()) ? c : -1;
}

namespace {

// io.MousePos / io.MouseDown from the script (or off the window while it does not own the mouse).
void apply_mouse(const Script& s) {
  if (!s.active) return;
  ImGuiIO& io = ImGui::GetIO();
  if (!s.mouse) {
    if (s.real_pointer_moved) return;          // a person (or xdotool) is using the real pointer
    io.MousePos = ImVec2(-FLT_MAX, -FLT_MAX);  // scripted runs: the idle pointer must not hover anything
    io.MouseDown[0] = false;
  } else {
    io.MousePos = s.pos;
    io.MouseDown[0] = s.down;
  }
}

bool target_center(const App& app, const std::string& name, ImVec2* out) {
  auto it = app.targets.find(name);
  if (it == app.targets.end()) return false;
  *out = ImVec2((it->second.x + it->second.z) * 0.5f, (it->second.y + it->second.w) * 0.5f);
  return true;
}

// The rest of the line after the name (one leading space dropped); `\n` written as two characters becomes a newline
// when `newlines` is set.
std::string rest_of_line(std::istringstream& in, bool newlines) {
  std::string rest;
  std::getline(in, rest);
  if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
  if (newlines)
    for (size_t i = 0; (i = rest.find("\\n", i)) != std::string::npos;) rest.replace(i, 2, "\n");
  return rest;
}

// ------------------------------------------------------------------------------------------------ flow and input

Flow cmd_sleep(Call& c) {  // wall-clock seconds, rendering meanwhile (real input, e.g. xdotool, goes on)
  if (c.s.phase == 0) {
    double sec = 1;
    c.in >> sec;
    c.s.sleep_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(sec * 1000));
    c.s.phase = 1;
  }
  if (std::chrono::steady_clock::now() < c.s.sleep_until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return Flow::Again;
  }
  return Flow::Next;
}

Flow cmd_wait(Call& c) {
  int n = 1;
  c.in >> n;
  c.s.wait = std::max(0, n - 1);
  return Flow::Frame;
}

// Until every column shows its latest result (with a model loaded), and for `idle` until the worker has nothing left
// (its idle jobs too: timing repeats, exact references).
Flow settle(Call& c, bool worker_too) {
  if (c.s.phase < 2) {  // let the frame loop submit what the previous commands changed
    ++c.s.phase;
    return Flow::Again;
  }
  const bool settled = (!worker_too || !c.app.worker->busy()) && columns_settled(c.app) &&
                       (worker_too || (c.app.model && !c.app.columns.empty()));
  if (settled || c.elapsed > c.max_seconds) {
    if (!settled) {
      std::fprintf(stderr, "attnscope gui: still computing after %.0f s\n", c.elapsed);
      ++c.s.failures;
    }
    return Flow::Next;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(15));  // leave the cores to the worker
  return Flow::Again;
}

Flow cmd_idle(Call& c) { return settle(c, true); }
Flow cmd_shown(Call& c) { return settle(c, false); }

// The pointer commands' position: X Y, or @TARGET (a widget's centre; it may appear in a frame or two).
enum class Where { Found, NotYet, Missing };
Where pointer_arg(Call& c, std::string* a, ImVec2* p) {
  c.in >> *a;
  if (a->empty() || (*a)[0] != '@') {
    p->x = std::strtof(a->c_str(), nullptr);
    c.in >> p->y;
    return Where::Found;
  }
  if (target_center(c.app, a->substr(1), p)) return Where::Found;
  if (c.s.phase++ < 5) return Where::NotYet;
  c.fail("no widget '" + *a + "'");
  return Where::Missing;
}

// move X Y|@TARGET, click X Y|@TARGET, drag @TARGET DX DY
Flow cmd_pointer(Call& c) {
  Script& s = c.s;
  std::string a;
  ImVec2 p;
  const Where w = pointer_arg(c, &a, &p);
  if (w != Where::Found) return w == Where::NotYet ? Flow::Again : Flow::Next;
  s.mouse = true;
  if (c.op == "move") {
    s.pos = p;
    return Flow::Frame;
  }
  if (c.op == "click") {
    // frame 0: move there; 1: press; 2: release
    if (std::getenv("ATTNSCOPE_SCRIPT_DEBUG"))
      std::fprintf(stderr, "click %s phase %d at %.0f,%.0f\n", a.c_str(), s.phase, p.x, p.y);
    if (s.phase == 0 || s.phase > 5) s.pos = p, s.phase = 0;
    if (s.phase == 0)
      s.down = false;
    else if (s.phase == 1)
      s.down = true;
    else {
      s.down = false;
      return Flow::Frame;
    }
    ++s.phase;
    return Flow::Again;
  }
  // drag: press at the widget, move by (dx, dy) in 8 frames, release
  float dx = 0, dy = 0;
  c.in >> dx >> dy;
  const int k = s.phase;
  if (k == 0)
    s.drag_from = p, s.pos = p, s.down = false;
  else if (k == 1)
    s.down = true;
  else if (k <= 9)
    s.pos = ImVec2(s.drag_from.x + dx * float(k - 1) / 8, s.drag_from.y + dy * float(k - 1) / 8);
  else {
    s.down = false;
    return Flow::Frame;
  }
  ++s.phase;
  return Flow::Again;
}

Flow cmd_button(Call& c) {  // down | up
  c.s.mouse = true;
  c.s.down = c.op == "down";
  return Flow::Frame;
}

Flow cmd_type(Call& c) {
  ImGuiIO& io = ImGui::GetIO();
  for (char ch : rest_of_line(c.in, false)) io.AddInputCharacter(static_cast<unsigned char>(ch));
  return Flow::Frame;
}

Flow cmd_key(Call& c) {  // held for one frame, like a key press
  std::string k;
  c.in >> k;
  const ImGuiKey_ key = k == "left"    ? ImGuiKey_LeftArrow
                        : k == "right" ? ImGuiKey_RightArrow
                        : k == "up"    ? ImGuiKey_UpArrow
                                       : ImGuiKey_DownArrow;
  ImGuiIO& io = ImGui::GetIO();
  c.s.key = io.KeyMap[key];
  io.KeysDown[c.s.key] = true;
  return Flow::Frame;
}

Flow cmd_shot(Call& c) {
  c.in >> *c.shot;
  return Flow::Frame;
}

Flow cmd_quit(Call& c) {
  c.s.quit = true;
  return Flow::Frame;
}

Flow cmd_print(Call& c) {
  print_state(c.app, stdout);
  return Flow::Next;
}

Flow cmd_help(Call&) {
  print_script_help(stdout);
  return Flow::Next;
}

Flow cmd_heads_wait(Call& c) {  // until every column's heads row has finished its analysis (row_heads.cpp)
  if (c.s.phase == 0) {
    double sec = 60;
    c.in >> sec;
    c.s.sleep_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(sec * 1000));
    c.s.phase = 1;
  }
  bool done = true;
  for (const Column& col : c.app.columns) done = done && heads_done(col);
  if (done) return Flow::Next;
  if (std::chrono::steady_clock::now() < c.s.sleep_until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return Flow::Again;
  }
  std::fprintf(stderr, "attnscope gui: script: the heads analyses did not finish in time\n");
  ++c.s.failures;
  return Flow::Next;
}

Flow cmd_expect_columns(Call& c) {
  size_t n = 0;
  c.in >> n;
  if (c.app.columns.size() != n) {
    std::fprintf(stderr, "attnscope gui: script: expected %zu columns, have %zu\n", n, c.app.columns.size());
    ++c.s.failures;
  }
  return Flow::Next;
}

Flow cmd_expect_results(Call& c) {  // every column has a result or an error of its latest request
  if (!columns_settled(c.app)) {
    std::fprintf(stderr, "attnscope gui: script: columns not settled\n");
    ++c.s.failures;
  }
  return Flow::Next;
}

// The export, scene, presentation, scaling and advisor commands (studio.cpp, advisor.cpp): waiting ones (an export
// being written, a sweep's points) are called again every frame.
Flow cmd_studio(Call& c) {
  const ScriptStep st = studio_script_command(c.app, c.line, c.s.phase);
  if (st == ScriptStep::Again) {
    ++c.s.phase;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return Flow::Again;
  }
  if (st == ScriptStep::Failed) ++c.s.failures;
  return Flow::Frame;
}

// ------------------------------------------------------------------------------------------------ text and view

Flow cmd_text(Call& c) {
  c.app.text.text = rest_of_line(c.in, true);
  c.app.text.source = TextSource::Typed;
  return Flow::Frame;
}

Flow cmd_source(Call& c) {  // typed|passage|generate
  std::string v;
  c.in >> v;
  TextState& t = c.app.text;
  t.source = v == "generate" ? TextSource::Generated : v == "passage" ? TextSource::Passage : TextSource::Typed;
  if (t.source == TextSource::Passage) new_passage(c.app);
  return Flow::Frame;
}

Flow cmd_diff(Call& c) {  // diff A B [signed]
  std::string sg;
  ViewState& v = c.app.view;
  c.in >> v.diff_a >> v.diff_b >> sg;
  v.diff_signed = sg == "signed";
  v.show_diff = true;
  return Flow::Frame;
}

Flow cmd_view_switch(Call& c) {  // exclude_first 0|1 | link 0|1
  int v = 0;
  c.in >> v;
  (c.op == "link" ? c.app.view.link : c.app.view.exclude_first) = v != 0;
  return Flow::Frame;
}

Flow cmd_uiscale(Call& c) {
  float v = 1;
  c.in >> v;
  c.app.view.ui_scale = std::clamp(v, 0.5f, 3.f);
  c.app.fonts_dirty = true;
  return Flow::Frame;
}

Flow cmd_scale(Call& c) {  // linear|log|row
  std::string v;
  c.in >> v;
  c.app.view.scale = v == "log" ? Scale::Log : v == "row" ? Scale::Row : Scale::Linear;
  return Flow::Frame;
}

Flow cmd_colormap(Call& c) {
  std::string v;
  c.in >> v;
  c.app.view.colormap = v == "magma"                      ? Colormap::Magma
                        : v == "cividis"                  ? Colormap::Cividis
                        : v == "gray" || v == "grayscale" ? Colormap::Gray
                                                          : Colormap::Viridis;
  return Flow::Frame;
}

// ------------------------------------------------------------------------------------------------ generation

Flow cmd_generate_start(Call& c) {  // [PROMPT] (\n for a newline)
  const std::string rest = rest_of_line(c.in, true);
  if (!rest.empty()) c.app.gen.prompt = rest;
  start_generation(c.app);
  return Flow::Frame;
}

Flow cmd_generate_step(Call& c) {
  int n = 1;
  c.in >> n;
  c.app.gen.playing = false;
  request_generation_steps(c.app, std::max(1, n));
  return Flow::Frame;
}

Flow cmd_generate_play(Call& c) {
  int v = 1;
  c.in >> v;
  c.app.gen.playing = v != 0;
  if (!c.app.gen.playing) c.app.worker->stop_decode();
  return Flow::Frame;
}

Flow cmd_generate_stream(Call& c) {
  std::string v;
  c.in >> v;
  c.app.gen.shared_stream = v != "own";
  c.app.gen.held_out = v == "heldout";
  return Flow::Frame;
}

Flow cmd_generate_length(Call& c) {  // N positions (the context or less: stop there)
  int n = 0;
  c.in >> n;
  c.app.gen.length = std::clamp(n, 0, 4096);
  return Flow::Frame;
}

Flow cmd_generate_options(Call& c) {
  c.in >> c.app.gen.temperature >> c.app.gen.top_k >> c.app.gen.seed;
  return Flow::Frame;
}

Flow cmd_generate_close(Call& c) {
  c.app.gen.open = false;
  c.app.gen.playing = false;
  return Flow::Frame;
}

Flow cmd_scrub(Call& c) {
  int k = -1;
  c.in >> k;
  c.app.gen.cursor = k;
  c.app.gen.playing = false;
  return Flow::Frame;
}

Flow cmd_kv_calc(Call& c) {  // PRESET TOKENS [BATCH [DTYPE]]
  std::string key, dtype = "fp16";
  int tokens = 4096, batch = 1;
  c.in >> key >> tokens >> batch >> dtype;
  KvCalcState& kv = c.app.kv;
  kv.open = true;
  kv.tokens = tokens;
  kv.batch = batch;
  try {
    kv.dtype = int(parse_kv_dtype(dtype));
    if (!select_kv_preset(c.app, key)) c.fail("no KV preset '" + key + "'");
  } catch (const Error& e) {
    c.fail(e.what());
  }
  return Flow::Frame;
}

// ------------------------------------------------------------------------------------------------ the table

const ScriptCommand kCommands[] = {
    // flow, input and checks
    {"wait", "N", "render N frames before the next command", cmd_wait},
    {"sleep", "SECONDS", "wall-clock seconds, rendering meanwhile (real input, e.g. xdotool, goes on)", cmd_sleep},
    {"idle", "",
     "until the worker has nothing left and every column shows its latest result (a failure after "
     "--max-seconds)",
     cmd_idle},
    {"shown", "",
     "until every column shows its latest result; the worker's idle work (timing repeats, heads rows) may go on",
     cmd_shown},
    {"move", "X Y|@TARGET", "the pointer to a position, or to a widget's centre (named by the views' mark_target)",
     cmd_pointer},
    {"click", "X Y|@TARGET", "move there, press, release (a frame each; a widget may take 5 frames to appear)",
     cmd_pointer},
    {"drag", "@TARGET DX DY", "press at the widget, move by (DX, DY) in 8 frames, release", cmd_pointer},
    {"down", "", "press the left button where the pointer is", cmd_button},
    {"up", "", "release the left button", cmd_button},
    {"type", "TEXT", "type the characters into the focused widget", cmd_type},
    {"key", "left|right|up|down", "an arrow key held for one frame (head: left/right, layer: up/down)", cmd_key},
    {"shot", "FILE", "save a PNG of this frame", cmd_shot},
    {"quit", "", "close the window (scripted runs print the state first)", cmd_quit},
    {"print", "", "print the state: view, text, every column's result, generation, KV calculator", cmd_print},
    {"expect_columns", "N", "a failure unless there are N columns", cmd_expect_columns},
    {"heads_wait", "SECONDS",
     "until every column's heads row has its roles (and knock-outs when asked; a failure after SECONDS)",
     cmd_heads_wait},
    {"expect_results", "", "a failure unless every column shows the result or error of its latest request",
     cmd_expect_results},
    {"help", "", "print this list", cmd_help},
    // columns
    {"add_column", "VARIANT", "another column (at most 6)", cmd_add_column},
    {"variant", "COL NAME", "the column's variant, with its default parameters", cmd_column_edit},
    {"param", "COL NAME VALUE", "one parameter of the column's variant", cmd_column_edit},
    {"head", "COL H", "the column's head (-1: every layer x head as a grid; all columns when linked)", cmd_column_edit},
    {"layer", "COL L", "the column's layer (all columns when linked)", cmd_column_edit},
    {"view", "COL weights|mask", "the heatmap shows the weights or the computed pairs", cmd_view},
    {"zoom", "COL FACTOR", "magnify the single-head heatmap about its centre", cmd_zoom},
    {"knockout", "COL LAYER HEAD|-1|clear|mode zero|mean",
     "knock a head (-1: the layer's whole attention) out of the column, or back in; clear: none; mode: how a "
     "knocked-out head is removed (zeroed, or replaced by its mean over the held-out slice)",
     cmd_knockout},
    {"explain", "COL 0|1", "the explanation below the column's rows", cmd_column_layers},
    {"per_layer", "COL 0|1", "a variant per layer (every layer starts at the column's variant)", cmd_column_layers},
    {"convert", "COL 0|1", "run the base checkpoint converted even when one trained with the variant is shipped",
     cmd_column_layers},
    {"layer_variant", "COL LAYER VARIANT", "one layer's variant of a per-layer column", cmd_column_layers},
    {"layer_param", "COL LAYER NAME VALUE", "one layer's parameter of a per-layer column", cmd_column_layers},
    {"mask", "COL clear|causal|clip|band LO HI|rect I0 J0 I1 J1|brush I J R [erase]",
     "edit the custom mask of the column's selected layer", cmd_column_layers},
    {"mask_edit", "COL 0|1", "the painting tools on the sparsity row", cmd_column_layers},
    // text and view
    {"text", "TEXT", "the text every column reads (\\n: a newline)", cmd_text},
    {"source", "typed|passage|generate", "where the text comes from", cmd_source},
    {"scale", "linear|log|row", "the heatmaps' colour scale", cmd_scale},
    {"colormap", "viridis|magma|cividis|gray", "the heatmaps' colormap", cmd_colormap},
    {"exclude_first", "0|1", "leave the first key out of the colour scales (attention sinks)", cmd_view_switch},
    {"link", "0|1", "every column shows the same layer and head", cmd_view_switch},
    {"uiscale", "S", "the UI scale (0.5 to 3; fonts are rebuilt)", cmd_uiscale},
    {"diff", "A B [signed]", "the difference window between columns A and B (|A - B|, or A - B)", cmd_diff},
    // generation and the KV-cache calculator
    {"generate_start", "[PROMPT]", "the generation view, a new session from the prompt (\\n: a newline)",
     cmd_generate_start},
    {"generate_step", "N", "N decoding steps (stops playing)", cmd_generate_step},
    {"generate_play", "0|1", "play or stop", cmd_generate_play},
    {"generate_stream", "shared|own|heldout",
     "every column reads the first column's tokens, samples its own, or reads the held-out text (its loss)",
     cmd_generate_stream},
    {"generate_length", "N", "positions the next session runs (past the context: streaming, up to 4096)",
     cmd_generate_length},
    {"generate_options", "TEMPERATURE TOP_K SEED", "sampling options of the next session", cmd_generate_options},
    {"scrub", "K", "show step K (-1: the newest)", cmd_scrub},
    {"generate_close", "", "back to the text's heatmaps", cmd_generate_close},
    {"kv_calc", "PRESET TOKENS [BATCH [DTYPE]]", "the KV-cache calculator on a preset (or custom)", cmd_kv_calc},
    // exports, scenes, presentation, scaling, advisor (studio.cpp, advisor.cpp)
    {"export", "PATH png|svg|csv|npy|json SCALE [all|heatmap COL|sparsity COL|flow COL|diff]",
     "as the dialog's Export button, waits for the file; an existing file is refused", cmd_studio},
    {"export_dialog", "[all|heatmap COL|sparsity COL|flow COL|diff]", "open the export dialog", cmd_studio},
    {"scene_open", "FILE", "open a scene (prints its messages)", cmd_studio},
    {"scene_save", "FILE", "save the view as a scene", cmd_studio},
    {"scene_dismiss", "", "clear the scene messages", cmd_studio},
    {"present", "on|off", "presentation mode (F11)", cmd_studio},
    {"page_down", "", "the next scene of the folder", cmd_studio},
    {"page_up", "", "the previous scene of the folder", cmd_studio},
    {"print_scene", "", "print the scene, presentation mode and font size", cmd_studio},
    {"open_recent", "N", "the Nth scene of File > Open Recent (0: the newest)", cmd_studio},
    {"print_recent", "", "print File > Open Recent's scenes", cmd_studio},
    {"help_window", "shortcuts|about|close", "a Help window (printing what it lists), or close both", cmd_studio},
    {"theme", "light|dark", "View > Light theme on or off", cmd_studio},
    {"scaling", "FROM TO REPEATS", "the scaling panel, measuring lengths FROM..TO (powers of two)", cmd_studio},
    {"scaling_cancel", "", "cancel the scaling sweep", cmd_studio},
    {"scaling_wait", "N SECONDS", "until every variant has N measured points (a failure after SECONDS or an early end)",
     cmd_studio},
    {"advisor", "SCENARIO SEQ [MEMORY|none]",
     "the advisor panel, gathering for training, long-context, "
     "memory-limited or quality at SEQ tokens",
     cmd_studio},
    {"advisor_set", "SCENARIO [MEMORY|none]", "re-rank without measuring, and print", cmd_studio},
    {"advisor_wait", "SECONDS", "until the gathering ends, then print the ranking", cmd_studio},
    {"long", "LENGTH WINDOWS LAYER HEAD",
     "the Beyond the context window on the columns: pooled heatmaps of LENGTH held-out characters, loss by position",
     cmd_studio},
    {"long_wait", "SECONDS", "until every column of the long run has its map and loss, then print them", cmd_studio},
};

const ScriptCommand* find_command(const std::string& name) {
  for (const ScriptCommand& c : kCommands)
    if (name == c.name) return &c;
  return nullptr;
}

}  // namespace

bool is_script_help(const std::string& script) {
  const size_t a = script.find_first_not_of(" \t\r\n;"), b = script.find_last_not_of(" \t\r\n;");
  return a != std::string::npos && script.substr(a, b - a + 1) == "help";
}

void print_script_help(FILE* f) {
  size_t width = 0;
  for (const ScriptCommand& c : kCommands)
    width = std::max(width, std::string(c.name).size() + 1 + std::string(c.args).size());
  width = std::min<size_t>(width, 34);  // longer signatures put their help on the next line
  std::fprintf(f,
               "attnscope gui --script FILE|'CMD; CMD': one command per line of FILE, or separated by ';' "
               "('#' starts a comment line)\n");
  for (const ScriptCommand& c : kCommands) {
    const std::string sig = std::string(c.name) + (*c.args ? " " : "") + c.args;
    if (sig.size() > width)
      std::fprintf(f, "  %s\n  %-*s  %s\n", sig.c_str(), int(width), "", c.help);
    else
      std::fprintf(f, "  %-*s  %s\n", int(width), sig.c_str(), c.help);
  }
  std::fflush(f);
}

void step_script(App& app, Script& s, std::string* shot, double max_seconds) {
  ImGuiIO& io = ImGui::GetIO();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - s.started).count();
  if (s.wait > 0) {
    --s.wait;
    apply_mouse(s);
    return;
  }
  if (s.key >= 0) {  // release the key pressed last frame
    io.KeysDown[s.key] = false;
    s.key = -1;
  }
  while (!s.cmds.empty()) {
    const std::string line = s.cmds.front();
    std::istringstream in(line);
    std::string op;
    in >> op;
    if (s.phase == 0 && app.log_events && op != "wait") {
      std::printf("t=%.3f s  script: %s\n", seconds_since_start(app), line.c_str());
      std::fflush(stdout);
    }
    Flow flow = Flow::Frame;
    if (const ScriptCommand* cmd = find_command(op)) {
      Call call{app, s, in, op, line, shot, max_seconds, elapsed};
      flow = cmd->run(call);
    } else {
      std::fprintf(stderr, "attnscope gui: script: unknown command '%s'\n", line.c_str());
      ++s.failures;
    }
    if (flow == Flow::Again) break;
    s.cmds.pop_front();
    s.phase = 0;
    if (flow == Flow::Frame) break;
  }
  apply_mouse(s);
}

}  // namespace attnscope::gui
