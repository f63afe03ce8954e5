#pragma once
// Inside the script interpreter (script.cpp and script_columns.cpp): how a command leaves the queue, what its body
// sees, the table entry, and the column commands' bodies.
#include <cstdio>
#include <sstream>
#include <string>

#include "script.h"

namespace attnscope::gui::script_detail {

// How a command leaves the queue after one call.
enum class Flow {
  Again,  // not finished: called again next frame (Script::phase counts the calls when the body advances it)
  Next,   // finished: the next command runs in this frame too
  Frame,  // finished: the next command waits for the next frame
};

// What a command's body sees: the app, the script, and its arguments after the name.
struct Call {
  App& app;
  Script& s;
  std::istringstream& in;
  const std::string& op;    // the command's name
  const std::string& line;  // the whole command (error messages)
  std::string* shot;        // `shot` fills it: the frame loop saves this frame
  double max_seconds;
  double elapsed;  // seconds since the script started
  void fail(const std::string& message) {
    std::fprintf(stderr, "attnscope gui: script: %s\n", message.c_str());
    ++s.failures;
  }
  void fail_in(const std::string& what) { fail(what + " in '" + line + "'"); }  // "bad column in 'layer 9 1'"
};

struct ScriptCommand {
  const char* name;
  const char* args;
  const char* help;
  Flow (*run)(Call&);
};

// The column index argument, or -1 when it is missing or out of range.
int column_arg(const App& app, std::istringstream& in);

// script_columns.cpp: add_column, variant, param, head, layer, explain, per_layer, convert, mask_edit,
// layer_variant, layer_param, mask, zoom, view.
Flow cmd_add_column(Call& c);
Flow cmd_column_edit(Call& c);
Flow cmd_column_layers(Call& c);
Flow cmd_zoom(Call& c);
Flow cmd_view(Call& c);
Flow cmd_knockout(Call& c);

}  // namespace attnscope::gui::script_detail
