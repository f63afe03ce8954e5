#pragma once
// Scripted input for tests and screenshots (`attnscope gui --script FILE|'cmd; cmd'`): a queue of commands run at
// most one state edit per frame, like a user; script.cpp holds them as a table (name, arguments, help, body), so
// `attnscope gui --script help` lists every command. Mouse commands write io.MousePos / io.MouseDown after
// ImGui_ImplGlfw_NewFrame, like real input. Scripted runs print every command and every heatmap update with a
// timestamp (t=SECONDS since start).
#include <cfloat>
#include <chrono>
#include <cstdio>
#include <deque>
#include <string>

#include "imgui.h"

namespace attnscope::gui {

struct App;

struct Script {
  std::deque<std::string> cmds;
  int wait = 0;         // frames left in the current command
  int phase = 0;        // calls of the current command so far (multi-frame commands: click, drag, idle, ...)
  bool active = false;  // a scripted run (--script, --screenshot, --frames)
  bool real_pointer_moved = false;
  std::chrono::steady_clock::time_point sleep_until{};
  bool mouse = false;  // the script owns the mouse
  ImVec2 pos{-FLT_MAX, -FLT_MAX};
  bool down = false;
  int key = -1;  // a key held for one frame (io.KeysDown index)
  ImVec2 drag_from, drag_to;
  bool quit = false;
  int failures = 0;
  std::chrono::steady_clock::time_point idle_since{};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

  // Files: one command per line; inline (--script 'a; b'): separated by ';' too. Lines starting with '#' are skipped.
  void add(const std::string& text, bool split_semicolons = true);
  bool done() const { return cmds.empty(); }
};

// Runs the script's commands for this frame: those that edit nothing a frame must show run back to back, a state
// edit or an input event ends the frame. A screenshot to take this frame is filled into *shot.
void step_script(App& app, Script& s, std::string* shot, double max_seconds);

// The state scripted runs print (`print`, and at exit): view, text, every column's result, generation, calculator.
void print_state(const App& app, FILE* f);

// `--script help` (the whole script is the word help): print the commands instead of opening the window.
bool is_script_help(const std::string& script);
void print_script_help(FILE* f);  // every command with its arguments and what it does

}  // namespace attnscope::gui
