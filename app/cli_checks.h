#pragma once
// CLI11 validators with readable messages: CLI::NonNegativeNumber and CLI::PositiveNumber print their bounds
// (DBL_MIN, DBL_MAX) in full, 300 digits ("Value -1 not in range 0.000000 to 179769313486...000000").
#include <CLI/CLI.hpp>
#include <string>

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

}  // namespace attnscope
