// `attnscope bench --long`: the pooled heatmaps of a long held-out text (attention/long_context.h) per column: the
// first picture (a new text: the layer's inputs below it through the caches, then every row pooled into the pixel
// grid), a zoom (a region recomputed at full resolution) and the peak resident memory. Each column runs in its own
// forked process, so its peak (getrusage max RSS: LibTorch, the model and the computation) is its own.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "cli_checks.h"
#include "cmd_bench.h"
#include "error.h"
#include "long_columns.h"
#include "long_context.h"
#include "safetensors.h"  // write_file_atomic

namespace attnscope {

using nlohmann::json;

namespace {

double median(std::vector<double> v) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double ms_of(const std::function<void()>& f) {
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// One column measured in this process: `repeats` first pictures (each a new LongAttention: nothing reused) and
// zooms into regions spread along the diagonal of the last one.
json measure(const BenchArgs& a, const std::string& spec, const std::vector<int64_t>& text) {
  auto base = Model::load(a.model.empty() ? default_model_dir() : a.model, a.o.device);
  session::LongColumn col = session::long_column(*base, spec);
  auto model = std::shared_ptr<const Model>(col.model);
  check_length(*model, a.long_length, spec);
  const std::vector<int64_t> tokens(text.begin(), text.begin() + a.long_length);
  std::vector<double> first, zoom;
  std::unique_ptr<LongAttention> last;
  PooledMap shown;
  const int repeats = std::max(1, a.o.repeats);
  for (int r = 0; r < repeats; ++r) {
    last.reset();
    first.push_back(ms_of([&] {
      last = std::make_unique<LongAttention>(model, tokens);
      shown = last->pooled(a.long_layer, a.long_head, {}, a.pixels, a.pixels);
    }));
  }
  const int64_t T = a.long_length, side = std::min<int64_t>(a.zoom, T);
  for (int r = 0; r < std::max(3, repeats); ++r) {
    const int64_t row1 = T - (T - side) * r / std::max(3, repeats) / 2;  // regions along the diagonal, late rows
    zoom.push_back(ms_of([&] {
      last->pooled(a.long_layer, a.long_head, {row1 - side, row1, row1 - side, row1}, a.pixels, a.pixels);
    }));
  }
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return {{"column", spec},
          {"label", col.label},
          {"weights", col.where},
          {"length", T},
          {"layer", a.long_layer},
          {"head", a.long_head},
          {"pixels", a.pixels},
          {"zoom_region", side},
          {"tiled", shown.tiled},
          {"first_picture_ms", median(first)},
          {"first_picture_runs_ms", first},
          {"zoom_ms", median(zoom)},
          {"zoom_runs_ms", zoom},
          {"peak_mib", static_cast<double>(u.ru_maxrss) / 1024.0}};
}

// measure() in a forked child; its JSON comes back through a pipe (a failure becomes {"column", "error"}).
json in_child(const BenchArgs& a, const std::string& spec, const std::vector<int64_t>& text) {
  int fd[2];
  if (pipe(fd) != 0) throw Error("bench --long: pipe() failed");
  const pid_t pid = fork();
  if (pid < 0) throw Error("bench --long: fork() failed");
  if (pid == 0) {
    close(fd[0]);
    std::string out;
    try {
      out = measure(a, spec, text).dump();
    } catch (const std::exception& e) {
      out = json({{"column", spec}, {"error", e.what()}}).dump();
    }
    size_t done = 0;
    while (done < out.size()) {
      const ssize_t n = write(fd[1], out.data() + done, out.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    close(fd[1]);
    std::_Exit(done == out.size() ? 0 : 3);
  }
  close(fd[1]);
  std::string got;
  char buf[4096];
  ssize_t n = 0;
  while ((n = read(fd[0], buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
  close(fd[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  if (got.empty())
    return {{"column", spec},
            {"error", WIFSIGNALED(st) ? "killed by signal " + std::to_string(WTERMSIG(st)) : "no result"}};
  return json::parse(got);
}

}  // namespace

int bench_long(const BenchArgs& a) {
  check_output_dir(a.json);
  const std::string list = a.variants.empty() ? "sliding_window,mha_alibi,longformer" : a.variants;
  const std::vector<std::string> specs = session::split_column_list(list);
  auto base = Model::load(a.model.empty() ? default_model_dir() : a.model, a.o.device);
  for (const std::string& s : specs) session::long_column(*base, s);  // bad names fail before any work
  const std::string valid = split_corpus(read_text_file(default_corpus_path())).valid;
  const std::vector<int64_t> text = base->tokenizer().encode_or_throw(valid, UnknownPolicy::Skip);
  if (static_cast<int64_t>(text.size()) < a.long_length)
    throw Error("--length " + std::to_string(a.long_length) + ": the held-out text has only " +
                std::to_string(text.size()) + " characters");
  json cols = json::array();
  std::printf(
      "pooled heatmaps of %lld held-out characters: layer %lld head %lld, %lld x %lld pixels, zoom %lld x %lld "
      "at full resolution; medians; peak = max resident of the column's own process\n",
      (long long)a.long_length, (long long)a.long_layer, (long long)a.long_head, (long long)a.pixels,
      (long long)a.pixels, (long long)a.zoom, (long long)a.zoom);
  std::printf("%-26s %16s %10s %10s  %s\n", "column", "first picture ms", "zoom ms", "peak MiB", "weights");
  for (const std::string& s : specs) {
    json r = in_child(a, s, text);
    if (r.contains("error")) {
      std::printf("%-26s failed: %s\n", s.c_str(), r["error"].get<std::string>().c_str());
    } else {
      std::printf("%-26s %16.0f %10.1f %10.0f  %s%s\n", s.c_str(), r["first_picture_ms"].get<double>(),
                  r["zoom_ms"].get<double>(), r["peak_mib"].get<double>(), r["weights"].get<std::string>().c_str(),
                  r["tiled"].get<bool>() ? "" : " (full forward)");
    }
    std::fflush(stdout);
    cols.push_back(r);
  }
  if (!a.json.empty())
    write_file_atomic(a.json, json({{"length", a.long_length},
                                    {"repeats", std::max(1, a.o.repeats)},
                                    {"torch_threads", compute_threads()},
                                    {"columns", cols}})
                                      .dump(2) +
                                  "\n");
  return 0;
}

}  // namespace attnscope
