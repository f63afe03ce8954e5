// `attnscope variants` (the registry with every parameter) and `attnscope explain` (one variant's teaching text,
// or every variant's: `explain --all --markdown` writes the generated part of docs/variants.md).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "error.h"
#include "registry.h"

namespace attnscope {

using nlohmann::json;

namespace {

json variant_json(const VariantInfo& v) {
  json params = json::array();
  for (const auto& p : v.params) {
    json j = {{"name", p.name},
              {"type", param_type_name(p.type)},
              {"default", format_param(p, p.def)},
              {"tooltip", p.tooltip},
              {"changes_weights", p.changes_weights}};
    if (p.type == ParamType::Choice)
      j["choices"] = p.choices;
    else if (p.type != ParamType::Bool) {
      j["min"] = p.min;
      j["max"] = p.max;
      j["step"] = p.step;
    }
    params.push_back(j);
  }
  return {{"name", v.name},
          {"family", v.family},
          {"description", v.description},
          {"citation", v.citation},
          {"causal", v.causal},
          {"needs_kv_text", v.needs_kv_text},
          {"signed_display", v.signed_display},
          {"cache_per_token", v.cache_formula},
          {"params", params},
          {"explain",
           {{"formula", v.explain.formula},
            {"marked_params", v.explain.marked_params()},
            {"time", v.explain.time},
            {"memory", v.explain.memory},
            {"when", v.explain.when}}}};
}

// A parameter's values as `variants` prints them: "a|b|c", "true|false" or "MIN..MAX".
std::string param_range(const ParamSpec& p) {
  std::string s;
  if (p.type == ParamType::Choice) {
    for (size_t i = 0; i < p.choices.size(); ++i) s += (i ? "|" : "") + p.choices[i];
  } else if (p.type == ParamType::Bool) {
    s = "true|false";
  } else {
    s = format_param(p, p.min) + ".." + format_param(p, p.max);
  }
  return s;
}

void print_explain_text(const VariantInfo& v) {
  std::string sliders;
  for (const auto& p : v.explain.marked_params()) sliders += (sliders.empty() ? "" : ", ") + p;
  std::cout << v.name << "  [" << v.family << ", " << (v.causal ? "causal" : "NON-CAUSAL: sees future tokens") << "]\n"
            << "  " << v.description << "\n  " << v.citation << "\n\n"
            << "  formula  " << v.explain.formula << "\n"
            << (sliders.empty() ? "" : "           sliders in {braces}: " + sliders + "\n") << "  time     "
            << v.explain.time << "\n"
            << "  memory   " << v.explain.memory << "\n"
            << "  cache    " << v.cache_formula << " per token per layer (b = bytes per element)\n"
            << "  when     " << v.explain.when << "\n";
  for (const auto& p : v.params)
    std::cout << "  {" << p.name << "} " << p.tooltip << " (default " << format_param(p, p.def) << ")\n";
}

// Markdown: text inside a table cell (a '|' would end the cell) and inline code (a backtick would end the span).
std::string md_cell(std::string s) {
  for (size_t at = s.find('|'); at != std::string::npos; at = s.find('|', at + 2)) s.replace(at, 1, "\\|");
  return s;
}
std::string md_code(const std::string& s) {
  return s.find('`') == std::string::npos ? "`" + s + "`" : "`` " + s + " ``";
}

// One variant's section of the reference; its heading `name` is the anchor docs link to (#sliding_window).
void print_explain_markdown(const VariantInfo& v) {
  std::string sliders;
  for (const auto& p : v.explain.marked_params()) sliders += (sliders.empty() ? "" : ", ") + md_code("{" + p + "}");
  std::cout << "### " << v.name << "\n\n"
            << "*" << v.description << "*  \n"
            << v.citation << "\n\n"
            << "- **family:** " << v.family << "\n"
            << "- **causal:** "
            << (v.causal ? "yes"
                         : "**no: sees future tokens** (cannot decode; its loss is not a "
                           "valid next-character loss)")
            << "\n";
  if (v.needs_kv_text) std::cout << "- **keys and values:** from a second text (`--kv-text`)\n";
  if (v.signed_display) std::cout << "- **displayed matrix:** signed (shown with a diverging colormap)\n";
  std::cout << "- **formula:** " << md_code(v.explain.formula) << "\n";
  if (!sliders.empty()) std::cout << "- **sliders in the formula:** " << sliders << "\n";
  std::cout << "- **time:** " << v.explain.time << "\n"
            << "- **memory:** " << v.explain.memory << "\n"
            << "- **cache per token per layer:** " << md_code(v.cache_formula) << " (b = bytes per element)\n\n"
            << "**When to use it.** " << v.explain.when << "\n\n";
  if (v.params.empty()) {
    std::cout << "No parameters.\n\n";
    return;
  }
  std::cout << "| parameter | type | values | default | changes weights | meaning |\n"
            << "|---|---|---|---|---|---|\n";
  for (const auto& p : v.params)
    std::cout << "| `" << p.name << "` | " << param_type_name(p.type) << " | " << md_cell(param_range(p)) << " | "
              << md_cell(format_param(p, p.def)) << " | " << (p.changes_weights ? "yes" : "no") << " | "
              << md_cell(p.tooltip) << " |\n";
  std::cout << "\n";
}

// Every variant, grouped by family in the registry's order, after an index of the families.
void print_reference_markdown() {
  std::vector<std::string> families;
  for (const auto& v : variant_registry())
    if (std::find(families.begin(), families.end(), v.family) == families.end()) families.push_back(v.family);
  std::cout << "## Reference\n\n"
            << "Every registered variant, from the registry (`attention/registry.h`): " << variant_registry().size()
            << " variants in " << families.size() << " families.\n\n"
            << "| family | variants |\n|---|---|\n";
  for (const auto& f : families) {
    std::string names;
    for (const auto& v : variant_registry())
      if (v.family == f) names += (names.empty() ? "" : ", ") + std::string("[`") + v.name + "`](#" + v.name + ")";
    std::cout << "| " << f << " | " << names << " |\n";
  }
  std::cout << "\n";
  for (const auto& f : families) {
    std::cout << "## Family: " << f << "\n\n";
    for (const auto& v : variant_registry())
      if (v.family == f) print_explain_markdown(v);
  }
}

}  // namespace

int cmd_explain(const std::string& name, bool all, bool as_json, bool as_markdown) {
  if (as_json && as_markdown) throw Error("give --json or --markdown, not both");
  if (all && !name.empty()) throw Error("give a variant name or --all, not both");
  std::vector<const VariantInfo*> chosen;
  if (all)
    for (const auto& v : variant_registry()) chosen.push_back(&v);
  else
    chosen.push_back(&get_variant(name));
  if (as_json) {
    json a = json::array();
    for (const VariantInfo* v : chosen) a.push_back(variant_json(*v));
    std::cout << (all ? a : a[0]).dump(2) << "\n";
  } else if (as_markdown && all) {
    print_reference_markdown();
  } else {
    for (size_t i = 0; i < chosen.size(); ++i) {
      if (i) std::cout << "\n";
      as_markdown ? print_explain_markdown(*chosen[i]) : print_explain_text(*chosen[i]);
    }
  }
  return 0;
}

int cmd_variants(bool as_json) {
  if (as_json) {
    json a = json::array();
    for (const auto& v : variant_registry()) a.push_back(variant_json(v));
    std::cout << a.dump(2) << "\n";
    return 0;
  }
  for (const auto& v : variant_registry()) {
    std::cout << v.name << "  [" << v.family << (v.causal ? "" : ", NON-CAUSAL: sees future tokens") << "]\n  "
              << v.description << "\n  " << v.citation << "\n  cache per token per layer: " << v.cache_formula << "\n";
    for (const auto& p : v.params)
      std::cout << "  --param " << p.name << "=" << param_range(p) << " (default " << format_param(p, p.def)
                << (p.changes_weights ? ", changes weights" : "") << ")\n      " << p.tooltip << "\n";
    std::cout << "\n";
  }
  return 0;
}

Command add_variants(CLI::App& app) {
  auto as_json = std::make_shared<bool>(false);
  auto* c = app.add_subcommand("variants", "list every attention variant with its parameters");
  c->add_flag("--json", *as_json, "machine-readable output");
  return {c, [as_json] { return cmd_variants(*as_json); }};
}

Command add_explain(CLI::App& app) {
  struct Args {
    std::string name;
    bool all = false, as_json = false, as_markdown = false;
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand("explain", "what a variant computes: formula, cost, cache, when to use it");
  c->add_option("variant", a->name, "registry name (see `attnscope variants`)");
  c->add_flag("--all", a->all, "every registered variant (with --markdown: the reference of docs/variants.md)");
  c->add_flag("--json", a->as_json, "machine-readable output");
  c->add_flag("--markdown", a->as_markdown, "Markdown (the generated part of docs/variants.md with --all)");
  // The name is required unless --all: checked while parsing, so the message is CLI11's own ("variant is required").
  c->callback([a] {
    if (a->name.empty() && !a->all) throw CLI::RequiredError("variant");
  });
  return {c, [a] { return cmd_explain(a->name, a->all, a->as_json, a->as_markdown); }};
}

}  // namespace attnscope
