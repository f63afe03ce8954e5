#include "cli_io.h"

#include <cmath>
#include <cstdio>

#include "engine.h"  // read_text_file
#include "error.h"
#include "safetensors.h"  // write_file_atomic

namespace attnscope {

void write_output(const std::string& path, const std::string& bytes) {
  if (path.empty() || path == "-") {
    std::fwrite(bytes.data(), 1, bytes.size(), stdout);
    std::fflush(stdout);
  } else {
    write_file_atomic(path, bytes);
  }
}

std::string text_arg(const std::string& text, const std::string& file, const char* what, bool required) {
  if (!text.empty() && !file.empty()) throw Error(std::string("give either ") + what + " or its file, not both");
  if (!file.empty()) return read_text_file(file, 1u << 20);
  if (text.empty() && required) throw Error(std::string("give ") + what);
  return text;
}

std::string fmt_time(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char b[32];
  std::snprintf(b, sizeof b, "%dm%02ds", int(s) / 60, int(s) % 60);
  return b;
}

}  // namespace attnscope
