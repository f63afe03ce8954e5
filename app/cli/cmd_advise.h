#pragma once
// `attnscope advise`: ranks the attention variants for a scenario (attention/advisor.h) from bench timings (a
// `bench --json` file, or measured now), the registry's cache formulas and validation losses.
#include <CLI/CLI.hpp>
#include <string>

namespace attnscope {

struct AdviseArgs {
  std::string scenario = "quality";
  int64_t seq = 1024;
  std::string memory;        // budget, e.g. 2GB (empty: none)
  std::string bench;         // `attnscope bench --json` results (empty: measure now)
  bool no_measure = false;   // without --bench: do not measure (timings missing)
  int repeats = 3;           // on-demand measurement: timed runs per variant
  int64_t eval_windows = 4;  // losses under the base model's weights: validation windows (0 = checkpoints only)
  std::string model;         // base checkpoint (default: the bundled mha)
  bool as_json = false;
};
void add_advise_options(CLI::App* c, AdviseArgs& a);
int cmd_advise(const AdviseArgs& a);  // throws Error

}  // namespace attnscope
