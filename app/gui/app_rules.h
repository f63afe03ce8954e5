#pragma once
// The window's app rules, apart from GLFW/GL (gui_main.cpp): the state the options, settings.json and a scene start
// it in, the per-frame updates between the worker and the columns, the script the options ask for, and the end.
#include "gui.h"
#include "script.h"
#include "state.h"

namespace attnscope::gui {

// settings.json (columns only when --column gives none), presentation scale, event log of scripted runs. Before the
// fonts are built: they follow the UI scale.
void load_app_settings(App& app, GuiOptions& opts, bool scripted);
// The worker and the model, the corpus, the columns (--column or the saved ones), the text, --scene. Returns 0, or 2
// after printing why when a column spec or the scene is bad.
int start_app(App& app, const GuiOptions& opts);
// Every frame, before the UI is drawn: the model once loaded, generated text, scenes, exports, tokens, requests,
// results and the generation view.
void update_app(App& app);
// The script of --script, --screenshot and --frames (empty when none).
Script make_script(const GuiOptions& opts, bool scripted);
// The fonts at `size` pixels (DejaVu, or ImGui's own when missing) and the window's style scaled to them (fonts.cpp).
void build_fonts(App& app, float size);
// `gui --headless`: the app and its script without a window or OpenGL (headless.cpp); returns the exit code.
int run_headless(GuiOptions& opts);
// Saves the settings and releases the GL objects and the worker (while the GL context still exists).
void close_app(App& app);

}  // namespace attnscope::gui
