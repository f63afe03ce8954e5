#pragma once
// Benchmark of single attention layers over sequence length (`attnscope bench`): no LibTorch in this header.
// Every (variant, length) runs in its own forked process, so its peak memory (getrusage max RSS above the RSS
// before the first forward) belongs to it alone and an out-of-memory kill is a reported failure, not a crash.
// The layer is shaped like the bundled model's (d_model 128, 8 heads), built by make_attention() with random
// weights and the variant's default parameters; batch B, no grad; context = the length plus the decode steps.
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

namespace attnscope {

struct BenchOptions {
  std::vector<std::string> variants;  // registry names
  std::vector<int64_t> lengths;       // sequence lengths T, ascending
  int64_t batch = 1;
  std::string device = "cpu";    // auto|cpu|cuda
  int repeats = 5;               // timed prefill runs (after one warm-up run)
  int64_t decode_tokens = 16;    // timed single-token decoding steps after a cached prefill of T tokens
  double memory_fraction = 0.6;  // skip a point whose estimated need exceeds this share of MemAvailable
  bool measure_gemm = true;      // calibrate with a 2048^2 GEMM first (seconds; off for point-by-point sweeps)
  // Causal attention alone (no projections) at this length through the fused kernel, LibTorch's private
  // at::_scaled_dot_product_attention and the naive matmul-softmax-matmul; -1: the largest length <= 4096 that fits;
  // 0: none (the default; `attnscope bench` asks for -1).
  int64_t compare_at = 0;
};

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// One row of the kernel comparison: q, k, v [1, 8, T, 16] fp32, causal, median of 5 after a warm-up.
struct KernelTiming {
  std::string path;  // "fused kernel (flash.h)", "at::_scaled_dot_product_attention", "naive"
  double median_ms = kNaN;
  double gflops = kNaN;  // 4 d pairs, pairs = T (T + 1) / 2, d = 128 over all heads
  std::string note;
};

struct BenchPoint {
  std::string variant;
  int64_t length = 0;
  std::string status;  // "ok", "skipped" (estimated not to fit, or parameters impossible), "failed"
  std::string note;    // why skipped or failed
  double median_ms = kNaN, p10_ms = kNaN, p90_ms = kNaN;  // prefill latency over the repeats
  double peak_mib = kNaN;                                 // max RSS above the baseline (CPU only; NaN on CUDA)
  double decode_tokens_per_s = kNaN;                      // NaN: decode_note says why
  std::string decode_note;                                // "n/a (non-causal)" and similar
  // Exact and local variants: useful FLOPs (8 T d^2 projections + 4 d per computed pair: QK^T and PV over all heads,
  // pairs counted from the mask, causal T (T + 1) / 2) B / median; NaN for the others.
  double gflops = kNaN;
};

struct BenchSlope {
  std::string variant;
  double slope = kNaN;  // least-squares slope of log(median) over log(T)
  int64_t from = 0, to = 0;
  int points = 0;
};

struct BenchReport {
  BenchOptions options;
  std::string device;  // what the children ran on ("cpu", "cuda:0")
  int64_t d_model = 128, heads = 8;
  double gemm_gflops = kNaN;          // 2048 x 2048 float matmul on the device, median of 5
  double memory_budget_mib = 0;       // memory_fraction of MemAvailable at the start
  std::vector<BenchPoint> points;     // variant-major, in the options' order
  std::vector<BenchSlope> slopes;     // one per variant with at least two measured lengths
  int64_t compare_length = 0;         // the kernel comparison's T (0: not run)
  std::vector<KernelTiming> kernels;  // fused, LibTorch's SDPA, naive
};

struct BenchProgress {
  int done = 0, total = 0;  // points finished / all points
  std::string variant;      // the point starting now (empty when finished)
  int64_t length = 0;
  double elapsed_s = 0, eta_s = 0;
};

// This machine's 2048 x 2048 float GEMM in GFLOP/s (median of 5, in a child process as run_bench's calibration).
double machine_gemm_gflops(const std::string& device = "auto");

// Throws Error for unknown variants, bad lengths, or a device the children cannot use.
BenchReport run_bench(const BenchOptions& o, const std::function<void(const BenchProgress&)>& progress = {});

// Where each measurement runs. By default a fork() of this process: right for the CLI, whose parent never touches
// LibTorch. A process that runs LibTorch on other threads (the window: its worker, heads and export jobs) must not
// fork and compute in the child: a lock or OpenMP pool another thread held at fork() never comes back there, and
// the child hangs. With an executable set here, every child is a fresh process of it (fork + exec of
// `EXE __bench_child ...`, which the program's main hands to bench_child_main). "" goes back to plain forks.
void bench_children_exec(const std::string& exe);
// The `__bench_child` entry point: runs the one measurement its arguments name and writes its result (plain bytes)
// to standard output. Returns the process's exit status.
int bench_child_main(const std::vector<std::string>& args);

// Least-squares slope of log(y) over log(x) (at least two distinct x; NaN otherwise).
double loglog_slope(const std::vector<double>& x, const std::vector<double>& y);
// The q-quantile (0..1) of values, linearly interpolated between order statistics.
double quantile(std::vector<double> values, double q);

}  // namespace attnscope
