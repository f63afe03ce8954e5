#include "params.h"

#include <cmath>
#include <cstdlib>
#include <sstream>

#include "error.h"

namespace attnscope {

const char* param_type_name(ParamType t) {
  switch (t) {
    case ParamType::Int: return "int";
    case ParamType::Float: return "float";
    case ParamType::Bool: return "bool";
    case ParamType::Choice: return "choice";
  }
  return "?";
}

static const ParamSpec* find_spec(const std::vector<ParamSpec>& specs, const std::string& n) {
  for (const auto& s : specs)
    if (s.name == n) return &s;
  return nullptr;
}

static std::string known_names(const std::vector<ParamSpec>& specs) {
  if (specs.empty()) return "it has no parameters";
  std::string r = "known: ";
  for (size_t i = 0; i < specs.size(); ++i) r += (i ? ", " : "") + specs[i].name;
  return r;
}

std::string format_param(const ParamSpec& s, double v) {
  if (s.type == ParamType::Choice) {
    size_t i = static_cast<size_t>(v);
    return i < s.choices.size() ? s.choices[i] : "?";
  }
  if (s.type == ParamType::Bool) return v != 0 ? "true" : "false";
  std::ostringstream os;
  if (s.type == ParamType::Int)
    os << static_cast<long long>(std::llround(v));
  else
    os << v;
  return os.str();
}

static std::string range_text(const ParamSpec& s) {
  if (s.type == ParamType::Choice) {
    std::string r;
    for (size_t i = 0; i < s.choices.size(); ++i) r += (i ? "|" : "") + s.choices[i];
    return r;
  }
  if (s.type == ParamType::Bool) return "true|false";
  return format_param(s, s.min) + ".." + format_param(s, s.max);
}

std::pair<std::string, double> parse_param(const std::vector<ParamSpec>& specs, const std::string& variant,
                                           const std::string& kv) {
  auto eq = kv.find('=');
  if (eq == std::string::npos || eq == 0) throw Error("--param '" + kv + "': expected NAME=VALUE");
  std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
  const ParamSpec* s = find_spec(specs, k);
  if (!s) throw Error("variant '" + variant + "' has no parameter '" + k + "' (" + known_names(specs) + ")");
  if (s->type == ParamType::Choice) {
    for (size_t i = 0; i < s->choices.size(); ++i)
      if (s->choices[i] == v) return {k, static_cast<double>(i)};
    throw Error("parameter '" + k + "' of '" + variant + "': '" + v + "' is not one of " + range_text(*s));
  }
  if (s->type == ParamType::Bool) {
    if (v == "true" || v == "1" || v == "on") return {k, 1.0};
    if (v == "false" || v == "0" || v == "off") return {k, 0.0};
    throw Error("parameter '" + k + "' of '" + variant + "': '" + v + "' is not true or false");
  }
  const char* b = v.c_str();
  char* e = nullptr;
  double d = std::strtod(b, &e);
  if (v.empty() || e == b || *e != '\0' || !std::isfinite(d))
    throw Error("parameter '" + k + "' of '" + variant + "': '" + v + "' is not a number");
  return {k, d};
}

std::vector<double> sweep_values(const ParamSpec& s, int64_t n_head) {
  if (s.type == ParamType::Choice) {
    std::vector<double> v;
    for (size_t i = 0; i < s.choices.size(); ++i) v.push_back(static_cast<double>(i));
    return v;
  }
  if (s.type == ParamType::Bool) return {0, 1};
  if (s.divisor_of_heads) {
    double def = s.def;
    while (def > 1 && n_head % static_cast<int64_t>(def) != 0) def -= 1;
    return {1, def, static_cast<double>(n_head)};
  }
  return {s.min, s.def, s.max};
}

ParamValues resolve_params(const std::vector<ParamSpec>& specs, const std::string& variant, const ParamValues& given) {
  ParamValues out;
  for (const auto& s : specs) out[s.name] = s.def;
  for (const auto& [k, v] : given) {
    const ParamSpec* s = find_spec(specs, k);
    if (!s) throw Error("variant '" + variant + "' has no parameter '" + k + "' (" + known_names(specs) + ")");
    bool integral = s->type != ParamType::Float;
    if (!std::isfinite(v) || (integral && v != std::floor(v)))
      throw Error("parameter '" + k + "' of '" + variant + "' must be " +
                  (integral ? "a whole number" : "a finite number") + ", got " + std::to_string(v));
    double lo = s->type == ParamType::Choice ? 0 : s->type == ParamType::Bool ? 0 : s->min;
    double hi = s->type == ParamType::Choice ? double(s->choices.size()) - 1 : s->type == ParamType::Bool ? 1 : s->max;
    if (v < lo || v > hi)
      throw Error("parameter '" + k + "' of '" + variant + "' is " + format_param(*s, v) + ", outside " +
                  range_text(*s));
    out[k] = v;
  }
  return out;
}

}  // namespace attnscope
