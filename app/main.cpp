// attnscope: with no arguments, the desktop window (or, in a build without the GUI, a short CLI demo);
// otherwise a subcommand (see `attnscope --help`).
#include <cstdio>

#include "cli.h"
#include "engine.h"
#include "error.h"

namespace attnscope {
int run_demo();
}

int main(int argc, char** argv) {
  if (argc <= 1) return attnscope::run_demo();
  return attnscope::run_cli(argc, argv);
}
