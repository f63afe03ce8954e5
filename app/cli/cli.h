#pragma once
// The command line: every subcommand of `attnscope` (the GUI is the default when no subcommand is given).
namespace attnscope {
// Returns the process exit status. Bad flags or values: one-line error, status 2; engine errors: status 1.
int run_cli(int argc, char** argv);
}  // namespace attnscope
