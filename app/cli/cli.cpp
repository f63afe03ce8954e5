// The dispatcher of the command line: builds the CLI11 app by asking every subcommand (one file each, commands.h)
// to register itself, parses, and runs the one chosen. Parse errors print one line and exit 2; an Error from a
// command prints "attnscope: error: ..." and exits 1.
#include "cli.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "error.h"
#if ATTNSCOPE_GUI
#include "gui/gui.h"
#endif

namespace attnscope {

namespace {

#if ATTNSCOPE_GUI
// `attnscope gui` and the top-level --scene (`attnscope --scene F` = `attnscope gui --scene F`); `gu` holds the flags.
Command add_gui(CLI::App& app, GuiOptions& gu) {
  auto* gui = app.add_subcommand("gui", "the desktop window (the default with no arguments)");
  gui->add_option("--model", gu.model, "checkpoint directory (default: the bundled assets/models/mha)");
  gui->add_option("--text", gu.text, "start with this text (default: a held-out Shakespeare passage)");
  gui->add_option("--column", gu.columns,
                  "a variant column VARIANT or VARIANT:k=v,k=v (repeatable, 1 to 6; convert=1: the base model "
                  "converted even where a checkpoint trained with the variant is shipped)");
  gui->add_option("--width", gu.width, "window width in pixels")->check(CLI::Range(320, 16384));
  gui->add_option("--height", gu.height, "window height in pixels")->check(CLI::Range(240, 16384));
  gui->add_flag("--presentation", gu.presentation, "large fonts for a projector");
  gui->add_option("--screenshot", gu.screenshot, "render, wait for the results, save this PNG and exit");
  gui->add_option("--frames", gu.frames, "frames to render before the screenshot (or before exiting)")
      ->check(CLI::Range(0, 1000000));
  gui->add_option("--script", gu.script, "scripted input: a file, or commands separated by ';' (tests)");
  gui->add_option("--max-seconds", gu.max_seconds, "scripted runs: stop waiting for results after this")
      ->check(CLI::Range(1.0, 3600.0));
  gui->add_option("--scene", gu.scene, "open a scene file (assets/scenes/*.json)");
  gui->add_flag("--headless", gu.headless,
                "no window or OpenGL: run the app and its --script (or --frames) without a display; every script "
                "command but `shot` works");
  app.add_option("--scene", gu.scene,
                 "open a scene file in the window (attnscope --scene F = attnscope gui --scene F)");
  return {gui, [&gu] {
            if (gu.columns.size() > 6) throw Error("at most 6 --column");
            return run_gui(gu);
          }};
}
#endif

// The invocation as one line (recorded by `train` in the checkpoint's config.json).
std::string command_line(int argc, char** argv) {
  std::string command = "attnscope";
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
  return command;
}

// Runs the chosen command; errors become one line on stderr and status 1.
int run_command(const Command& c) {
  try {
    return c.run();
  } catch (const Error& e) {
    std::fprintf(stderr, "attnscope: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attnscope: internal error: %s\n", e.what());
    return 1;
  }
}

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{"attnscope: watch attention mechanisms work, live"};
  app.require_subcommand(0, 1);  // none only with --scene (the window)
  app.set_version_flag("--version", std::string("attnscope ") + version_string());
  // In the order `attnscope --help` lists them.
  std::vector<Command> commands = {add_variants(app),
                                   add_explain(app),
                                   add_advise(app),
                                   add_attend(app),
                                   add_generate(app),
                                   add_eval(app),
                                   add_train(app, command_line(argc, argv)),
                                   add_kv(app),
                                   add_bench(app),
                                   add_render(app),
                                   add_heads(app),
                                   add_extrapolate(app)};
#if ATTNSCOPE_GUI
  GuiOptions gu;
  commands.push_back(add_gui(app, gu));
#endif

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    std::fprintf(stderr, "attnscope: %s (see --help)\n", msg.c_str());
    return 2;
  }
  if (app.get_subcommands().empty()) {
#if ATTNSCOPE_GUI
    if (!gu.scene.empty()) return run_command(commands.back());
#endif
    std::fprintf(stderr, "attnscope: A subcommand is required (see --help)\n");
    return 2;
  }
  for (const Command& c : commands)
    if (*c.sub) return run_command(c);
  return 0;
}

}  // namespace attnscope
