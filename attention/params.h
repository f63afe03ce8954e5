#pragma once
// Parameters as data: every variant describes its sliders here once; the GUI builds sliders, the CLI builds
// `--param k=v`, scene files and tests sweep them from the same description.
#include <map>
#include <string>
#include <vector>

namespace attnscope {

enum class ParamType { Int, Float, Bool, Choice };

struct ParamSpec {
  std::string name;  // lower_snake_case, stable (CLI, files)
  ParamType type = ParamType::Int;
  double min = 0, max = 0, def = 0, step = 1;  // Choice: index into `choices`; Bool: 0/1
  std::string tooltip;
  bool changes_weights = false;      // true: the weights' shapes depend on it (a new value needs conversion/training)
  std::vector<std::string> choices;  // for Choice
  bool log_scale = false;            // slider hint for wide ranges (e.g. theta)
  bool divisor_of_heads = false;     // valid values divide the model's head count (GQA groups)
};

// The values a sweep (tests, GUI presets) should visit for a model with n_head heads: min, default, max,
// snapped to divisors of n_head for divisor_of_heads parameters.
std::vector<double> sweep_values(const ParamSpec& s, int64_t n_head);

// Values by parameter name. Choice values are stored as their index.
using ParamValues = std::map<std::string, double>;

// "k=v" -> (k, v) with the value parsed for the spec it names (choices accept their name). Throws Error.
std::pair<std::string, double> parse_param(const std::vector<ParamSpec>& specs, const std::string& variant,
                                           const std::string& kv);
// Defaults for every spec, overridden by `given`; every given name must exist and every value be in range,
// integral for Int/Bool/Choice. Throws Error with a message the GUI can show.
ParamValues resolve_params(const std::vector<ParamSpec>& specs, const std::string& variant, const ParamValues& given);
// The value's display text ("32", "0.5", "relu").
std::string format_param(const ParamSpec& spec, double v);
const char* param_type_name(ParamType t);

}  // namespace attnscope
