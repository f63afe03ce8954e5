#pragma once
// CLI11 validators with readable messages: CLI::NonNegativeNumber and CLI::PositiveNumber print their bounds
// (DBL_MIN, DBL_MAX) in full, 300 digits ("Value -1 not in range 0.000000 to 179769313486...000000").
#include <CLI/CLI.hpp>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"

namespace attnscope {

inline CLI::Validator sign_check(bool strictly_positive) {
  return CLI::Validator(
      [strictly_positive](std::string& s) -> std::string {
        double v = 0;
        if (!CLI::detail::lexical_cast(s, v)) return "'" + s + "' is not a number";
        if (strictly_positive ? !(v > 0) : !(v >= 0))
          return s + " is out of range: give a number " + (strictly_positive ? "above 0" : "of 0 or more");
        return std::string();
      },
      strictly_positive ? "POSITIVE" : "NONNEGATIVE");
}
inline const CLI::Validator kNonNegative = sign_check(false);
inline const CLI::Validator kPositive = sign_check(true);

// An output whose folder is missing, not a folder, or not writable fails before the work that would fill it
// (a benchmark, a forward), not after it. An empty path (stdout) passes.
inline void check_output_dir(const std::string& path) {
  if (path.empty()) return;
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  struct stat st {};
  const bool exists = stat(dir.c_str(), &st) == 0;
  if (!exists || !S_ISDIR(st.st_mode) || access(dir.c_str(), W_OK) != 0)
    throw Error("cannot write '" + path + "': " +
                (!exists                ? "directory '" + dir + "' does not exist"
                 : !S_ISDIR(st.st_mode) ? "'" + dir + "' is not a directory"
                                        : "directory '" + dir + "' is not writable"));
}

}  // namespace attnscope
