// `attnscope bench --interactive`: the window's recompute, measured through the session's worker (the same
// requests, the same model policy, incremental updates, comparison losses and per-column analysis the window gets),
// from a request to the result of every column it changes. On an idle worker each time (its timing repeats done).
//   cold:      a new text (nothing shared with the previous one): every column, every row
//   keystroke: one character appended at `chars - 1` characters: every column (a text the worker has not seen: its
//              comparison loss too is computed, as when a person types)
//   edit:      one character changed in the middle of `chars` characters: every column
//   slider:    one column's parameter changed: that column
// Then each column's full Model::attend on its own (the per-column cost of a cold recompute).
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli_checks.h"
#include "model_policy.h"
#include "cmd_bench.h"
#include "engine.h"
#include "error.h"
#include "registry.h"
#include "safetensors.h"  // write_file_atomic
#include "scene.h"        // parse_column_spec
#include "worker.h"

namespace attnscope {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

// The columns on one worker, as the window submits them.
struct Rig {
  std::mutex mu;  // (declared before the worker: its threads, which call the wake-up below, end first)
  std::condition_variable published;
  session::Worker worker;
  std::vector<SceneColumn> columns;
  std::vector<uint64_t> seq;

  void submit(size_t c, const std::vector<int64_t>& tokens) {
    session::ColumnRequest r;
    r.seq = ++seq[c];
    r.variant = columns[c].variant;
    r.params = columns[c].params;
    r.convert = columns[c].convert;
    r.tokens = tokens;
    worker.submit(int(c), std::move(r));
  }
  // Until column c shows its latest request (throws Error when that result is an error).
  bool done(size_t c) const {
    auto r = worker.result(int(c));
    if (!r || r->seq != seq[c]) return false;
    if (!r->ok) throw Error("column " + columns[c].variant + ": " + r->error);
    return true;
  }
  // Woken by each published result, as the window's event loop is (gui_main.cpp: set_on_publish). Polling every
  // 100 us instead woke a third thread ~10,000 times a second on the two cores the columns share: sliding_window's
  // update measured 13.1 ms beside such a poller against 9.5 ms without.
  Rig() {
    worker.set_on_publish([this] {
      { std::lock_guard<std::mutex> g(mu); }  // a waiter between its check and its wait sees this notify
      published.notify_all();
    });
  }
  double wait(const std::vector<size_t>& which, Clock::time_point t0) {
    std::unique_lock<std::mutex> l(mu);
    for (;;) {
      bool all = true;
      for (size_t c : which) all = all && done(c);
      if (all) return ms_since(t0);
      published.wait_for(l, std::chrono::milliseconds(20));  // (a result published before the wait: re-checked)
    }
  }
  void settle() {  // the timing repeats the worker runs when idle would otherwise share the next measurement
    while (worker.busy()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // Submits `tokens` to `which` columns and waits for their results: the milliseconds from the request.
  double run(const std::vector<size_t>& which, const std::vector<int64_t>& tokens) {
    settle();
    const auto t0 = Clock::now();
    for (size_t c : which) submit(c, tokens);
    return wait(which, t0);
  }
};

struct Phase {
  const char* name;
  double target_ms;
  const char* what;
  std::vector<double> ms;
};

}  // namespace

// What --window needs, checked before minutes of measuring: a build with the window, and a display.
void check_window_possible() {
#if !ATTNSCOPE_GUI
  throw Error("bench --window: this build has no window (configured with -DATTNSCOPE_GUI=OFF)");
#endif
  const char* display = std::getenv("DISPLAY");
  if (!display || !*display)
    throw Error(
        "bench --window needs a display: run it under xvfb-run -a -s \"-screen 0 1920x1080x24\" (or a desktop)");
}

std::string shell_quoted(const std::string& s) {  // one shell word, whatever s holds
  std::string q = "'";
  for (char ch : s) q += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return q + "'";
}

// The window itself (`attnscope gui` in a process of its own, 1920 x 1080, the same columns, default settings):
// the first heatmap's time after the app starts, and the drawn frames' times while the pointer moves over every
// column's heatmap (240 moves: each frame a new hover, so each is drawn). Adds "frame" and "first_heatmap" phases.
void bench_window(const std::vector<std::string>& specs, const std::string& model_dir, nlohmann::json& jp) {
  const std::string self = executable_path();
  if (self.empty()) throw Error("bench --window: cannot find this program (/proc/self/exe)");
  char tmpl[] = "/tmp/attnscope-bench-window.XXXXXX";  // default settings, not the user's
  if (!mkdtemp(tmpl)) throw Error("bench --window: cannot make a temporary folder");
  std::string script = "idle";
  for (int i = 0; i < 240; ++i) script += "; move @col" + std::to_string(i % specs.size()) + ".heatmap";
  std::string cmd = "XDG_CONFIG_HOME=" + shell_quoted(tmpl) + " " + shell_quoted(self) +
                    " gui --width 1920 --height 1080 --max-seconds 300 --model " + shell_quoted(model_dir) +
                    " --script " + shell_quoted(script + "; print");
  for (const std::string& s : specs) cmd += " --column " + shell_quoted(s);
  std::string out;
  int status = -1;
  if (FILE* f = popen((cmd + " 2>&1").c_str(), "r")) {
    char buf[4096];
    while (size_t n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
    status = pclose(f);
  }
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);
  double first = -1, all = -1, med = -1, p90 = -1;
  int drawn = 0, frames = 0;
  std::istringstream lines(out);
  for (std::string l; std::getline(lines, l);) {
    double t = 0;
    if (l.find("heatmap of request 1 drawn") != std::string::npos && std::sscanf(l.c_str(), "t=%lf s", &t) == 1) {
      first = first < 0 ? t * 1000 : std::min(first, t * 1000);
      all = std::max(all, t * 1000);
    }
    std::sscanf(l.c_str(), "  drawn frames: %d of %d (the others showed the same picture), median %lf ms, p90 %lf ms",
                &drawn, &frames, &med, &p90);
  }
  if (status != 0 || med < 0 || first < 0)
    throw Error("bench --window: the window did not report its frames (exit status " + std::to_string(status) +
                "); its last output: " + out.substr(out.size() > 600 ? out.size() - 600 : 0));
  const char* frame_what = "a drawn frame of the window, 1920x1080, the pointer moving over the heatmaps";
  const char* first_what = "the first heatmap on screen after the window's app starts";
  jp["frame"] = {{"median_ms", med}, {"p90_ms", p90},     {"drawn", drawn},
                 {"frames", frames}, {"target_ms", 16.0}, {"what", frame_what}};
  jp["first_heatmap"] = {{"ms", first}, {"all_columns_ms", all}, {"target_ms", 1000.0}, {"what", first_what}};
  std::printf("  %-10s %10.2f %10.2f %10s  %s\n", "frame", med, p90, med <= 16 ? "<= 16" : "> 16", frame_what);
  std::printf("  %-10s %10.0f %10s %10s  %s (all columns %.0f ms)\n", "first map", first, "",
              first <= 1000 ? "<= 1000" : "> 1000", first_what, all);
}

int bench_interactive(const BenchArgs& a) {
  if (a.window) check_window_possible();
  if (!a.plot.empty() || !a.csv.empty()) throw Error("bench --interactive writes --json only (no --plot or --csv)");
  check_output_dir(a.json);
  if (a.chars < 3) throw Error("--chars must be at least 3");
  const std::vector<std::string> specs =
      a.columns.empty()
          ? std::vector<std::string>{"mha", "gqa:groups=2", "mqa", "sliding_window:window=32", "linear", "mla"}
          : a.columns;
  const std::string dir = a.model.empty() ? default_model_dir() : a.model;
  std::shared_ptr<const Model> base = Model::load(dir, a.o.device);  // for the text; the worker loads its own
  if (a.chars > base->config().context)
    throw Error("--chars " + std::to_string(a.chars) + " is longer than the model's context (" +
                std::to_string(base->config().context) + ")");
  Rig rig;
  for (const std::string& s : specs) rig.columns.push_back(parse_column_spec(s));  // throws for bad specs
  rig.seq.assign(rig.columns.size(), 0);
  if (a.column_threads > 0) rig.worker.set_column_threads(a.column_threads);
  const int column_threads = a.column_threads > 0 ? a.column_threads : rig.worker.column_threads();
  rig.worker.load_model(dir);
  while (rig.worker.loading() || !rig.worker.model()) {
    if (!rig.worker.loading() && !rig.worker.model_error().empty()) throw Error(rig.worker.model_error());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (a.torch_threads > 0 || a.blas_threads > 0) set_compute_threads(a.torch_threads, a.blas_threads);
  // Held-out windows of `chars` characters, one per repeat, none sharing a prefix with the next.
  const std::string valid = split_corpus(read_text_file(default_corpus_path())).valid;
  const std::vector<int64_t> all = base->tokenizer().encode_or_throw(valid, UnknownPolicy::Skip);
  const int repeats = std::max(30, a.o.repeats);
  const size_t n = size_t(a.chars);
  auto window = [&](int r) {
    const size_t at = (size_t(r) * (n + 37)) % (all.size() - n);
    return std::vector<int64_t>(all.begin() + long(at), all.begin() + long(at + n));
  };
  std::vector<size_t> every(rig.columns.size());
  for (size_t c = 0; c < every.size(); ++c) every[c] = c;
  // the slider's column: the first with an integer parameter (window, groups, rank, ...)
  size_t slider = 0;
  const ParamSpec* knob = nullptr;
  for (size_t c = 0; c < rig.columns.size() && !knob; ++c)
    for (const ParamSpec& p : get_variant(rig.columns[c].variant).params)
      if (p.type == ParamType::Int && p.max > p.min && !p.changes_weights && !knob) slider = c, knob = &p;
  rig.run(every, window(repeats));  // warm-up: models built and converted, first-call costs
  std::vector<Phase> phases{{"cold", 30, "a new text, every column", {}},
                            {"keystroke", 8, "one character appended, every column", {}},
                            {"edit", 0, "one character changed in the middle, every column", {}},
                            {"slider", 12, "one column's parameter", {}}};
  for (int r = 0; r < repeats; ++r) {
    phases[0].ms.push_back(rig.run(every, window(r)));
    // The keystroke: another passage's first chars - 1 characters computed (not timed), then its next character.
    // (Deleting the last character of the cold text and typing it again would find that text's comparison loss
    // remembered and its rows already written: faster than typing on.)
    const std::vector<int64_t> text = window(repeats + 1 + r);
    rig.run(every, std::vector<int64_t>(text.begin(), text.end() - 1));
    phases[1].ms.push_back(rig.run(every, text));
    std::vector<int64_t> edited = text;
    edited[n / 2] = edited[n / 2] == all[0] ? all[1] : all[0];
    phases[2].ms.push_back(rig.run(every, edited));
    if (knob) {
      SceneColumn& c = rig.columns[slider];
      const double now = c.params.count(knob->name) ? c.params.at(knob->name) : knob->def;
      c.params[knob->name] = now > knob->min ? now - 1 : now + 1;
      phases[3].ms.push_back(rig.run({slider}, edited));
    }
  }
  const ModelConfig& cfg = base->config();
  std::printf(
      "interactive: %zu columns, %zu characters, %lld layers x %lld heads, d_model %lld, %d repeats, device %s, "
      "%lld LibTorch thread(s) per column, %d column(s) at once, through the window's worker\n",
      rig.columns.size(), n, (long long)cfg.n_layer, (long long)cfg.n_head, (long long)cfg.d_model, repeats,
      base->device_name().c_str(), (long long)compute_threads(), column_threads);
  std::printf("  %-10s %10s %10s %10s  %s\n", "phase", "median ms", "p90 ms", "target", "what");
  nlohmann::json jp = nlohmann::json::object();
  for (const Phase& p : phases) {
    if (p.ms.empty()) continue;
    const double med = quantile(p.ms, 0.5), p90 = quantile(p.ms, 0.9);
    char target[32] = "";
    if (p.target_ms > 0) std::snprintf(target, sizeof target, "%s %.0f", med <= p.target_ms ? "<=" : ">", p.target_ms);
    std::printf("  %-10s %10.2f %10.2f %10s  %s%s\n", p.name, med, p90, target, p.what,
                p.name == std::string("slider") && knob ? (" (" + specs[slider] + " " + knob->name + ")").c_str() : "");
    jp[p.name] = {{"median_ms", med}, {"p90_ms", p90}, {"repeats", p.ms.size()}, {"what", p.what}};
    if (p.target_ms > 0) jp[p.name]["target_ms"] = p.target_ms;
  }
  if (a.window) bench_window(specs, dir, jp);
  // each column's full forward with its maps, alone (what a cold recompute costs per column)
  nlohmann::json cols = nlohmann::json::array();
  std::printf("  %-28s %18s\n", "column", "full attend ms");
  for (size_t c = 0; c < rig.columns.size(); ++c) {
    auto m = rig.worker.result(int(c));
    std::vector<double> ms;
    auto model = session::column_model(*base, rig.columns[c].variant, rig.columns[c].params,
                                       rig.columns[c].convert);  // as the window
    for (int r = 0; r < 5; ++r) {
      const auto t0 = Clock::now();
      model->attend(window(r));
      ms.push_back(ms_since(t0));
    }
    std::printf("  %-28s %18.2f%s\n", specs[c].c_str(), quantile(ms, 0.5),
                m && !m->whole_reason.empty() ? ("  (whole text: " + m->whole_reason + ")").c_str() : "");
    cols.push_back({{"column", specs[c]},
                    {"attend_ms", quantile(ms, 0.5)},
                    {"incremental", m && m->whole_reason.empty()},
                    {"whole_reason", m ? m->whole_reason : ""}});
  }
  if (!a.json.empty())
    write_file_atomic(a.json, nlohmann::json({{"chars", n},
                                              {"repeats", repeats},
                                              {"device", base->device_name()},
                                              {"threads", compute_threads()},
                                              {"column_threads", column_threads},
                                              {"phases", jp},
                                              {"columns", cols}})
                                      .dump(2) +
                                  "\n");
  return 0;
}

}  // namespace attnscope
