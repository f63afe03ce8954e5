#pragma once
// `attnscope bench`: latency, memory and decode speed of single attention layers over sequence length
// (attention/bench.h), printed as tables and optionally written as JSON, CSV and a log-log PNG.
#include <string>

#include "bench.h"

namespace attnscope {

struct BenchArgs {
  std::string variants;  // comma-separated (empty: every variant)
  std::string lengths = "128,256,512,1024,2048,4096,8192,16384";
  BenchOptions o;
  std::string json, csv, plot;  // output files (empty: not written)
  // --interactive: the window's recompute instead of the sweep (bench_interactive.cpp): cold, keystroke, edit and
  // slider through the window's worker over `chars` characters of held-out text; repeats = max(30, o.repeats).
  bool interactive = false;
  std::vector<std::string> columns;  // column specs like the GUI's --column (empty: six defaults)
  int64_t chars = 256;
  std::string model;                        // checkpoint (empty: the bundled assets/models/mha)
  int torch_threads = 0, blas_threads = 0;  // 0: as the window runs it (see gui worker); else these
  int column_threads = 0;                   // columns computed at once (0: as the window, Worker's default)
  bool window = false;  // --interactive --window: also the window's frame_ms and first_heatmap_ms (needs a display)
  // --long: pooled heatmaps of a long held-out text (bench_long.cpp) per column (`variants`, default
  // sliding_window,mha_alibi,longformer): first picture, zoom and peak resident memory; repeats = o.repeats.
  bool long_text = false;
  int64_t long_length = 32768, long_layer = 0, long_head = 0;
  int64_t pixels = 1024, zoom = 256;  // the picture's pixels per side; the zoomed region's characters per side
};
int cmd_bench(const BenchArgs& a);          // throws Error for bad input
int bench_interactive(const BenchArgs& a);  // --interactive (bench_interactive.cpp): through the window's worker
int bench_long(const BenchArgs& a);         // --long (bench_long.cpp): pooled heatmaps of a long text

}  // namespace attnscope
