// Micro-benchmarks of the sliding window: the dense masked path against the banded (blocked) path (W = 64).
#include "masked.h"
#include "micro_common.h"

using namespace attnscope;
using namespace attnscope::micro;

namespace {

void BM_SlidingWindowDense(benchmark::State& state) {
  const int64_t T = state.range(0);
  Layer l = make_layer("sliding_window", {{"window", 64}}, T);
  set_masked_path(*l.attn, MaskedPath::Dense);
  run_forward(state, *l.attn, T);
}

void BM_SlidingWindowBanded(benchmark::State& state) {
  const int64_t T = state.range(0);
  Layer l = make_layer("sliding_window", {{"window", 64}}, T);
  set_masked_path(*l.attn, MaskedPath::Blocked);
  run_forward(state, *l.attn, T);
}

}  // namespace

BENCHMARK(BM_SlidingWindowDense)->Arg(1024)->Arg(4096)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_SlidingWindowBanded)->Arg(1024)->Arg(4096)->Unit(benchmark::kMillisecond);
