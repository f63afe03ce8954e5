#pragma once
// The desktop window: `attnscope` with no arguments, or `attnscope gui [options]`.
#include <string>
#include <vector>

namespace attnscope {

struct GuiOptions {
  std::string model;                 // checkpoint directory (default: the bundled assets/models/mha)
  std::string text;                  // start with this text instead of a held-out passage
  std::vector<std::string> columns;  // "VARIANT" or "VARIANT:k=v,k=v" per column (default: two columns)
  int width = 1600, height = 1000;
  bool presentation = false;  // large fonts for projectors
  std::string screenshot;     // save a PNG after `frames` frames (and the work they started) and exit
  int frames = 0;             // with --screenshot, or alone: render this many frames then exit
  std::string script;         // scripted input (tests): a file, or commands separated by ';'
  double max_seconds = 120;   // scripted/screenshot runs: give up waiting for results after this
  std::string scene;          // open this scene file (--scene)
  bool headless = false;      // no window and no OpenGL: the app and its --script alone (no `shot`)
};

int run_gui(const GuiOptions& o);

}  // namespace attnscope
