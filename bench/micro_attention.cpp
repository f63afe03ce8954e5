// Google Benchmark micro-benchmarks of the attention hot paths, one layer shaped like the bundled model
// (d_model 128, 8 heads, d_h 16), batch 1, no grad, random weights:
//   sliding window: the dense masked path against the banded (blocked) path (micro_masked.cpp);
//   tiled ("flash") online softmax; linear attention's token-by-token scan against its left-product form;
//   MLA's absorbed decoding step (W_UK folded into the query, attending the cached latents);
//   the fused kernel (flash.h) alone on causal attention, AVX2 and portable.
// Run: micro_attention --benchmark_min_time=0.2
#include "flash.h"
#include "kernel.h"
#include "micro_common.h"

using namespace attnscope;
using namespace attnscope::micro;

namespace {

void BM_Tiled(benchmark::State& state) {
  const int64_t T = state.range(0);
  Layer l = make_layer("tiled", {{"br", 64}, {"bc", 64}}, T);
  run_forward(state, *l.attn, T);
}

// Two of linear attention's equivalent forms (the token-by-token scan, the left product) on phi(q), phi(k) [1, H, T, d_h] (elu + 1) and v [1, H, T, d_h].
void run_linear(benchmark::State& state, LinearForm form) {
  torch::NoGradGuard ng;
  const int64_t T = state.range(0), dh = kDModel / kHeads;
  auto phi_q = torch::elu(torch::randn({1, kHeads, T, dh})) + 1;  // [B, H, T, d_h]
  auto phi_k = torch::elu(torch::randn({1, kHeads, T, dh})) + 1;  // [B, H, T, d_h]
  auto v = torch::randn({1, kHeads, T, dh});                      // [B, H, T, d_h]
  for (auto _ : state) benchmark::DoNotOptimize(causal_linear_attention(phi_q, phi_k, v, 1e-6, form));
  state.SetItemsProcessed(state.iterations() * T);
}
void BM_LinearScan(benchmark::State& state) { run_linear(state, LinearForm::Recurrent); }
void BM_LinearLeftProduct(benchmark::State& state) { run_linear(state, LinearForm::LeftProduct); }

// One decoding step of MLA with the absorbed query against T cached latents (content_rope off: absorbable).
void BM_MlaAbsorbedDecode(benchmark::State& state) {
  torch::NoGradGuard ng;
  const int64_t T = state.range(0);
  Layer l = make_layer("mla", {{"content_rope", 0}}, T + 1);
  auto* mla = dynamic_cast<MlaAttention*>(l.attn.get());
  if (!mla || !mla->absorbable()) {
    state.SkipWithError("MLA layer is not absorbable");
    return;
  }
  auto cache = l.attn->new_cache(1, T + 1, torch::kCPU);
  auto* lc = dynamic_cast<LatentCache*>(cache.get());
  AttnCall c;
  c.cache = cache.get();
  for (int64_t t0 = 0; t0 < T; t0 += 1024) {  // the prompt in chunks, so no T x T score matrix is ever built
    c.x = torch::randn({1, std::min<int64_t>(1024, T - t0), kDModel});  // [B, chunk, d]
    c.pos0 = t0;
    l.attn->forward(c);
    cache->seen += c.x.size(1);
  }
  c.x = torch::randn({1, 1, kDModel});  // [B, 1, d] the new token
  c.pos0 = T;
  for (auto _ : state) {
    lc->len = T;  // drop the previous step's token: every iteration decodes position T
    benchmark::DoNotOptimize(l.attn->forward(c).out);
  }
  state.SetItemsProcessed(state.iterations());
}

// The fused kernel alone (flash.h) on causal attention, B 1, 8 heads, d_h 16, T = range(0); range(1): 1 AVX2/FMA,
// 0 portable. Counters: GFLOP/s of the causal work 4 T^2 d_model / 2 (QK^T and PV of the allowed pairs).
void BM_FlashCausal(benchmark::State& state) {
  torch::NoGradGuard ng;
  const int64_t T = state.range(0), dh = kDModel / kHeads;
  torch::manual_seed(1);
  auto q = torch::randn({1, kHeads, T, dh}), k = torch::randn({1, kHeads, T, dh});  // [B, H, T, d_h]
  auto v = torch::randn({1, kHeads, T, dh});                                        // [B, H, T, d_h]
  auto pos = torch::arange(T, torch::kLong);                                        // [T]
  flash::Options o;
  o.mask = flash::MaskDesc::all({flash::MaskKind::Causal, 0, 0});
  o.isa = state.range(1) ? flash::Isa::Avx2 : flash::Isa::Portable;
  if (o.isa == flash::Isa::Avx2 && !flash::avx2_available()) {
    state.SkipWithError("no AVX2/FMA");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(flash::attention(q, k, v, pos, pos, o).out);
  const double flops = 4.0 * static_cast<double>(T) * static_cast<double>(T) * kDModel / 2;
  state.counters["GFLOP/s"] =
      benchmark::Counter(flops * 1e-9 * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

}  // namespace

BENCHMARK(BM_FlashCausal)
    ->Args({4096, 1})
    ->Args({4096, 0})
    ->Args({1024, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_Tiled)->Arg(1024)->Arg(4096)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LinearScan)->Arg(256)->Arg(1024)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LinearLeftProduct)->Arg(256)->Arg(1024)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_MlaAbsorbedDecode)->Arg(1024)->Arg(16384)->Unit(benchmark::kMicrosecond);
BENCHMARK_MAIN();
