#pragma once
// The subcommands of `attnscope`, one file each in app/cli. Each add_NAME registers its subcommand, flags and help
// on the app (the flags' values live in the returned Command) and returns it with the function that runs it once
// parsed; the dispatcher (cli.cpp) registers them all in the order `--help` lists them and runs the one chosen.
// Run functions throw Error for bad input (the dispatcher prints it as one line, status 1).
#include <functional>
#include <string>

namespace CLI {
class App;
}

namespace attnscope {

struct Command {
  CLI::App* sub = nullptr;   // the subcommand (true once parsed when it was given)
  std::function<int()> run;  // runs it with the parsed flags; returns the exit status
};

Command add_variants(CLI::App& app);  // cmd_variants.cpp: `variants`, the registry
Command add_explain(CLI::App& app);   // cmd_variants.cpp: `explain NAME | --all`, the teaching text
Command add_advise(CLI::App& app);    // cmd_advise.cpp
Command add_attend(CLI::App& app);    // cmd_attend.cpp
Command add_generate(CLI::App& app);  // cmd_generate.cpp
Command add_eval(CLI::App& app);      // cmd_eval.cpp: `eval` and `eval --all`
// cmd_train.cpp; command_line: the invocation, recorded in the checkpoint's config.json
Command add_train(CLI::App& app, const std::string& command_line);
Command add_kv(CLI::App& app);           // cmd_kv.cpp
Command add_bench(CLI::App& app);        // cmd_bench.cpp
Command add_render(CLI::App& app);       // cmd_render.cpp
Command add_heads(CLI::App& app);        // cmd_heads.cpp: roles, the induction probe, knock-outs
Command add_extrapolate(CLI::App& app);  // cmd_extrapolate.cpp: loss by position past the training context

// The run functions whose arguments are plain values (the others take their command's Args struct, declared in
// cmd_NAME.h or, for attend, generate, eval and train, inside their file).
int cmd_variants(bool as_json);
// One variant (`name`) or, all = true, every registered one; as text, JSON or Markdown (docs/variants.md).
int cmd_explain(const std::string& name, bool all, bool as_json, bool as_markdown);

}  // namespace attnscope
