#pragma once
// Input and output helpers the subcommands share.
#include <string>

namespace attnscope {

// `bytes` to standard output (path "" or "-") or, atomically, to the file `path`. Throws Error.
void write_output(const std::string& path, const std::string& bytes);
// The text of a flag pair like --text/--text-file: the file's contents, else `text`; `what` names the flag in
// errors ("give either --text or its file, not both", "give --text" when required and both are empty).
std::string text_arg(const std::string& text, const std::string& file, const char* what, bool required);
// "12m05s" ("?" for a negative or non-finite time).
std::string fmt_time(double seconds);

}  // namespace attnscope
