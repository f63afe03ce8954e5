#pragma once
// The command line: every subcommand of `attnscope` (the GUI is the default when no subcommand is given).
namespace attnscope {
// Returns the process exit status. Bad flags or values: one-line error, status 2; engine errors: status 1.
int run_cli(int argc, char** argv);
}  // namespace attnscope
namespace attnscope {
// "0.1 (git 0123456789)": project() version, and the commit when built from a checkout (generated version.cpp).
const char* version_string();
}  // namespace attnscope
