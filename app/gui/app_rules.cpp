// The window's app rules (app_rules.h): its initial state from the options, the settings and a scene; the per-frame
// updates that connect the worker to the columns; the script the options ask for; saving and releasing at the end.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "app_rules.h"
#include "engine.h"
#include "error.h"
#include "registry.h"
#include "studio.h"

namespace attnscope::gui {

namespace {

// The model has just arrived: snap divisor parameters to its heads; columns of its own variant start from its params.
void apply_model_defaults(App& app) {
  for (Column& c : app.columns) {
    if (c.variant == app.model->config().layers[0].variant) c.params = app.model->config().layers[0].params;
    const VariantInfo* info = find_variant(c.variant);
    if (info)
      for (const auto& s : info->params)
        if (s.divisor_of_heads && app.model->config().n_head % std::max(1, int(c.params[s.name])) != 0)
          c.params[s.name] = 1;
  }
}

// Generated text streams into the text the columns read (following the newest characters while it is written).
void follow_generated_text(App& app) {
  if (app.text.source != TextSource::Generated || !app.text.gen_job) return;
  GenerateState g = app.worker->generate_state();
  if (g.job != app.text.gen_job) return;
  std::string t = app.text.prompt + g.text;
  if (t != app.text.text) {
    app.text.text = t;
    if (g.running) app.text.window_start = 1 << 30;  // follow the newest characters
  }
}

}  // namespace

void load_app_settings(App& app, GuiOptions& opts, bool scripted) {
  app.opts = &opts;
  app.log_events = scripted;
  load_settings(app, opts.columns.empty());
  if (opts.presentation) app.view.ui_scale = 1.5f;
}

int start_app(App& app, const GuiOptions& opts) {
  int rc = 0;
  app.worker = std::make_unique<Worker>();
  app.model_dir = opts.model.empty() ? default_model_dir() : opts.model;
  app.worker->load_model(app.model_dir);
  try {
    app.corpus_valid = split_corpus(read_text_file(default_corpus_path())).valid;
  } catch (const std::exception& e) {
    app.corpus_error = e.what();
  }
  try {
    if (!opts.columns.empty() || app.columns.empty()) {
      app.columns.clear();
      init_columns(app, opts.columns);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attnscope: %s\n", e.what());
    rc = 2;
  }
  if (!opts.text.empty()) {
    app.text.text = opts.text;
    app.text.source = TextSource::Typed;
  } else {
    new_passage(app);
  }
  if (std::string why; !opts.scene.empty() && !open_scene(app, opts.scene, &why)) {
    std::fprintf(stderr, "attnscope: %s\n", why.c_str());
    rc = 2;
  }
  return rc;
}

void update_app(App& app) {
  // results and text from the worker
  if (!app.model) {
    app.model = app.worker->model();
    if (app.model) apply_model_defaults(app);  // once: the model is never unloaded
  }
  follow_generated_text(app);
  update_scenes(app);
  poll_export(app);
  update_tokens(app);
  submit_columns(app);
  poll_results(app);
  update_generation(app);
}

Script make_script(const GuiOptions& opts, bool scripted) {
  Script script;
  script.active = scripted;
  if (!opts.script.empty()) {
    std::ifstream f(opts.script);
    if (f) {
      std::stringstream ss;
      ss << f.rdbuf();
      script.add(ss.str(), false);
    } else {
      script.add(opts.script);  // inline commands
    }
  }
  if (!opts.screenshot.empty()) {
    script.add("idle; wait " + std::to_string(std::max(1, opts.frames)) + "; idle; wait 2; shot " + opts.screenshot +
               "; quit");
  } else if (opts.frames > 0) {
    script.add("wait " + std::to_string(opts.frames) + "; quit");
  } else if (!opts.script.empty()) {
    script.add("quit");
  }
  return script;
}

void close_app(App& app) {
  save_settings(app);
  for (Column& c : app.columns) {  // GL objects before the context goes
    c.tiles.clear();
    c.mask_tile = Heatmap();
  }
  app.diff.map = Heatmap();
  app.program.destroy();
  app.worker.reset();
}

}  // namespace attnscope::gui
