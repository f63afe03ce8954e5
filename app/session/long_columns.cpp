#include "long_columns.h"

#include <filesystem>

#include "config.h"
#include "error.h"
#include "model_policy.h"
#include "registry.h"

namespace attnscope::session {

std::vector<std::string> split_column_list(const std::string& list) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at <= list.size()) {
    size_t next = list.find(',', at);
    if (next == std::string::npos) next = list.size();
    const std::string piece = list.substr(at, next - at);
    if (!out.empty() && piece.find('=') != std::string::npos && piece.find(':') == std::string::npos)
      out.back() += "," + piece;
    else if (!piece.empty())
      out.push_back(piece);
    at = next + 1;
  }
  return out;
}

namespace {

std::string position_text(const Model& m) { return std::string(pos_kind_name(m.config().position)) + " positions"; }

std::string budget_text(const std::string& dir) {
  const std::string b = budget_label(dir);
  return b.empty() ? "trained" : "trained " + b;
}

}  // namespace

LongColumn long_column(const Model& base, const std::string& variant, const ParamValues& params, bool convert) {
  LongColumn c;
  c.spec = variant;
  c.model = column_model(base, variant, params, convert);
  const std::string dir = c.model->source_dir();
  c.label = variant + " (" + position_text(*c.model) + ")";
  c.where = c.model->mode() == "trained" ? dir + ", " + budget_text(dir)
                                         : c.model->mode() + " (" + dir + ", no training with " + variant + ")";
  return c;
}

LongColumn long_column(const Model& base, const std::string& spec, const std::string& models_dir) {
  LongColumn c;
  c.spec = spec;
  const size_t colon = spec.find(':');
  const std::string name = spec.substr(0, colon);
  if (const VariantInfo* info = find_variant(name)) {
    ParamValues given;
    bool convert = false;
    if (colon != std::string::npos) {
      size_t at = colon + 1;
      while (at <= spec.size()) {
        size_t next = spec.find(',', at);
        if (next == std::string::npos) next = spec.size();
        const std::string kv = spec.substr(at, next - at);
        if (kv == "convert=1" || kv == "convert=true") {
          convert = true;
        } else if (next > at) {
          auto p = parse_param(info->params, name, kv);
          given[p.first] = p.second;
        }
        at = next + 1;
      }
    }
    c = long_column(base, name, given, convert);
    c.spec = spec;
    c.label = spec + " (" + position_text(*c.model) + ")";
    return c;
  }
  const std::string root = models_dir.empty() ? assets_dir() + "/models" : models_dir;
  const std::string dir = root + "/" + name;
  std::error_code ec;
  if (colon != std::string::npos || !std::filesystem::is_regular_file(dir + "/config.json", ec))
    throw Error("'" + spec + "' is neither a variant (see `attnscope variants`) nor a checkpoint folder in " + root);
  c.model = Model::load(dir, base.device_name().rfind("cuda", 0) == 0 ? "cuda" : "cpu");
  c.label = name + " (" + c.model->config().variant_summary() + ", " + position_text(*c.model) + ")";
  c.where = dir + ", " + budget_text(dir);
  return c;
}

}  // namespace attnscope::session
