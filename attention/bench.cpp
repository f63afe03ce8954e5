// `attnscope bench`: one attention layer per child process (see bench.h). The CLI's parent never touches LibTorch,
// so its forked children start from the same clean state (no CUDA context or thread pool inherited across fork());
// the window's children are exec'd afresh (bench_children_exec).
#include "bench.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <torch/cuda.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "engine.h"
#include "error.h"
#include "flash.h"
#include "nn.h"
#include "registry.h"

namespace attnscope {

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return kNaN;
  std::sort(v.begin(), v.end());
  const double at = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(at)), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (at - static_cast<double>(lo));
}

double loglog_slope(const std::vector<double>& x, const std::vector<double>& y) {
  const size_t n = std::min(x.size(), y.size());
  double mx = 0, my = 0;
  for (size_t i = 0; i < n; ++i) {
    mx += std::log(x[i]);
    my += std::log(y[i]);
  }
  mx /= static_cast<double>(n);
  my /= static_cast<double>(n);
  double sxx = 0, sxy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxx += (std::log(x[i]) - mx) * (std::log(x[i]) - mx);
    sxy += (std::log(x[i]) - mx) * (std::log(y[i]) - my);
  }
  return n >= 2 && sxx > 0 ? sxy / sxx : kNaN;
}

namespace {

constexpr int64_t kDModel = 128, kHeads = 8;

// What a child sends back through its pipe (plain data: no allocation across the process boundary).
struct ChildResult {
  int status = 0;  // 0 ok, 1 skipped (parameters impossible), 2 failed
  double median_ms = kNaN, p10_ms = kNaN, p90_ms = kNaN, peak_mib = kNaN, decode_tps = kNaN, value = kNaN;
  char note[400] = {0};
  char decode_note[200] = {0};
  char device[32] = {0};
};

void set_text(char* dst, size_t n, const std::string& s) {
  std::strncpy(dst, s.c_str(), n - 1);
  dst[n - 1] = '\0';
}

double max_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

double mem_available_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  double kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit)
    if (key == "MemAvailable:") return kib * 1024.0;
  return kNaN;
}

struct Clock {
  torch::Device dev;
  void sync() const {
    if (dev.is_cuda()) torch::cuda::synchronize();
  }
  template <class F>
  double ms(F&& f) const {  // wall time of f() with the device drained before and after
    sync();
    const auto t0 = std::chrono::steady_clock::now();
    f();
    sync();
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  }
};

std::string g_child_exe;  // bench_children_exec

// f()'s result, or an Error as status 1 (skipped: impossible parameters) and anything else as status 2 (failed),
// the message's first line in `note`.
template <class R, class F>
R caught(const F& f) {
  R r;
  try {
    r = f();
  } catch (const Error& e) {
    r.status = 1;
    set_text(r.note, sizeof r.note, e.what());
  } catch (const std::exception& e) {
    r.status = 2;
    const std::string msg = e.what();
    set_text(r.note, sizeof r.note, msg.substr(0, msg.find('\n')));
  }
  return r;
}

// Runs f in a child process and returns what it wrote; a crash or kill becomes a failed result. R: plain data with
// `status` (0 ok, 1 skipped, 2 failed) and `note`. `task` names the same work for an exec'd child
// (bench_child_main's arguments): with bench_children_exec set, the child is that program, not a fork running f.
template <class R = ChildResult, class F>
R in_child(const std::vector<std::string>& task, const F& f) {
  int fd[2];
  if (pipe(fd) != 0) throw Error("bench: pipe() failed");
  std::vector<std::string> args;  // built before fork(): the child of a threaded parent may not allocate
  std::vector<char*> argv;
  if (!g_child_exe.empty()) {
    args = {g_child_exe, "__bench_child"};
    args.insert(args.end(), task.begin(), task.end());
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
  }
  const pid_t pid = fork();
  if (pid < 0) throw Error("bench: fork() failed");
  if (pid == 0 && !argv.empty()) {  // only async-signal-safe calls until exec
    close(fd[0]);
    if (fd[1] != STDOUT_FILENO) dup2(fd[1], STDOUT_FILENO);
    execv(argv[0], argv.data());
    _exit(127);
  }
  if (pid == 0) {
    close(fd[0]);
    restore_compute_threads();  // forked from the window: measure with the process's defaults, as the CLI does
    const R r = caught<R>(f);
    const ssize_t w = write(fd[1], &r, sizeof r);
    close(fd[1]);
    std::_Exit(w == static_cast<ssize_t>(sizeof r) ? 0 : 3);
  }
  close(fd[1]);
  R r;
  size_t got = 0;
  while (got < sizeof r) {
    const ssize_t n = read(fd[0], reinterpret_cast<char*>(&r) + got, sizeof r - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fd[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  if (got != sizeof r) {
    r = R{};
    r.status = 2;
    set_text(r.note, sizeof r.note,
             WIFSIGNALED(st) ? "killed by signal " + std::to_string(WTERMSIG(st)) +
                                   (WTERMSIG(st) == SIGKILL ? " (out of memory?)" : "")
                             : "the measuring process exited with status " + std::to_string(WEXITSTATUS(st)));
  }
  return r;
}

// The 2048 x 2048 float matmul (the BLAS's GEMM through LibTorch): 2 n^3 FLOPs, median of 5 after a warm-up.
// With gemm false only the device is resolved (callers that sweep point by point skip the calibration).
ChildResult measure_gemm(const std::string& device, bool gemm) {
  const torch::Device dev = resolve_device(device);
  ChildResult out;
  set_text(out.device, sizeof out.device, dev.str());
  if (!gemm) {
    out.value = kNaN;
    return out;
  }
  const Clock clock{dev};
  const int64_t n = 2048;
  auto a = torch::randn({n, n}, torch::TensorOptions().device(dev));  // [n, n]
  auto b = torch::randn({n, n}, torch::TensorOptions().device(dev));  // [n, n]
  torch::Tensor c = torch::matmul(a, b);                              // [n, n] warm-up
  std::vector<double> ms;
  for (int r = 0; r < 5; ++r) ms.push_back(clock.ms([&] { c = torch::matmul(a, b); }));
  out.value = 2.0 * double(n) * double(n) * double(n) / (quantile(ms, 0.5) * 1e-3) / 1e9;
  return out;
}

// Pairs (i, j) one head computes over T tokens under the layer's mask: causal for the exact variants, closed forms
// for the local patterns (their registry parameters); NaN for variants without a FLOP count here.
double computed_pairs(const LayerSpec& spec, int64_t T) {
  const std::string& v = spec.variant;
  auto get = [&](const char* n) { return static_cast<int64_t>(std::llround(spec.params.at(n))); };
  const double t = double(T);
  if (v == "mha" || v == "gqa" || v == "mqa" || v == "tiled" || v == "softcap") return t * (t + 1) / 2;
  double pairs = 0;
  if (v == "sliding_window") {
    for (int64_t i = 0; i < T; ++i) pairs += double(std::min(i + 1, get("window")));
  } else if (v == "block_local") {
    for (int64_t i = 0; i < T; ++i) pairs += double(i % get("block") + 1);
  } else if (v == "dilated") {
    for (int64_t i = 0; i < T; ++i) pairs += double(std::min(get("window"), i / get("dilation") + 1));
  } else if (v == "longformer" || v == "sinks") {
    const int64_t first = get(v == "sinks" ? "sinks" : "globals"), w = get("window");
    for (int64_t i = 0; i < T; ++i) pairs += double(i < first ? i + 1 : std::min(i + 1, first + w));
  } else {
    return kNaN;
  }
  return pairs;
}

// The point's task for an exec'd child: every option measure_point reads.
std::vector<std::string> point_task(const BenchOptions& o, const std::string& variant, int64_t T) {
  return {"point",
          o.device,
          variant,
          std::to_string(T),
          std::to_string(o.batch),
          std::to_string(o.repeats),
          std::to_string(o.decode_tokens)};
}

ChildResult measure_point(const BenchOptions& o, const VariantInfo& info, int64_t T) {
  torch::NoGradGuard no_grad;
  const torch::Device dev = resolve_device(o.device);
  const Clock clock{dev};
  ModelConfig cfg;
  cfg.n_layer = 1;
  cfg.d_model = kDModel;
  cfg.n_head = kHeads;
  cfg.context = T + o.decode_tokens;
  ParamValues given;
  if (info.name == "cosformer") given["m"] = std::max<double>(info.find_param("m")->def, double(cfg.context - 1));
  cfg.set_all_layers(info.name, given);
  Positions pos(cfg);
  torch::manual_seed(1);
  std::shared_ptr<AttentionLayer> layer = make_attention(cfg, cfg.layers[0], &pos);
  layer->to(dev);
  const auto opts = torch::TensorOptions().device(dev);
  AttnCall call;
  call.x = torch::randn({o.batch, T, kDModel}, opts);  // [B, T, d]
  if (info.needs_kv_text) call.kv_source = call.x;     // cross-attention over a second text of the same length
  const double base_mib = max_rss_mib();

  ChildResult r;
  try {
    torch::Tensor out = layer->forward(call).out;  // [B, T, d] warm-up
    std::vector<double> ms;
    for (int i = 0; i < o.repeats; ++i) ms.push_back(clock.ms([&] { out = layer->forward(call).out; }));
    r.median_ms = quantile(ms, 0.5);
    r.p10_ms = quantile(ms, 0.1);
    r.p90_ms = quantile(ms, 0.9);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("prefill: ") + e.what());  // a failure, not a skip
  }
  if (!dev.is_cuda()) r.peak_mib = max_rss_mib() - base_mib;
  const double pairs = computed_pairs(cfg.layers[0], T);  // per head
  if (std::isfinite(pairs)) {
    const double d = double(kDModel), t = double(T);
    r.value = (8.0 * t * d * d + 4.0 * pairs * d) * double(o.batch) / (r.median_ms * 1e-3) / 1e9;
  }

  if (!info.causal) {
    set_text(r.decode_note, sizeof r.decode_note, "n/a (non-causal)");
  } else if (o.decode_tokens > 0) {
    try {
      std::unique_ptr<LayerCache> cache = layer->new_cache(o.batch, cfg.context, dev);
      AttnCall pre = call;  // the prompt: T tokens into the cache
      pre.cache = cache.get();
      layer->forward(pre);
      cache->seen += T;
      AttnCall step;
      step.cache = cache.get();
      std::vector<torch::Tensor> xs;  // [B, 1, d] each, drawn before the clock starts
      for (int64_t i = 0; i < o.decode_tokens; ++i) xs.push_back(torch::randn({o.batch, 1, kDModel}, opts));
      const double ms = clock.ms([&] {
        for (const auto& x : xs) {
          step.x = x;
          step.pos0 = cache->seen;
          layer->forward(step);
          cache->seen += 1;
        }
      });
      r.decode_tps = double(o.decode_tokens * o.batch) / (ms * 1e-3);
    } catch (const std::exception& e) {
      std::string msg = e.what();
      set_text(r.decode_note, sizeof r.decode_note, "n/a: " + msg.substr(0, msg.find('\n')));
    }
  }
  set_text(r.device, sizeof r.device, dev.str());
  return r;
}

// What the kernel comparison's child sends back: one median per path of KernelTiming (fused, SDPA, naive).
struct CompareResult {
  int status = 0;
  double ms[3] = {kNaN, kNaN, kNaN};
  char note[400] = {0};
  char notes[3][200] = {{0}};
};

// Causal attention alone at length T, heads of the bench's layer: q, k, v [1, H, T, d_h], median of 5 each.
CompareResult compare_kernels(const std::string& device, int64_t T) {
  torch::NoGradGuard no_grad;
  const torch::Device dev = resolve_device(device);
  const Clock clock{dev};
  const int64_t dh = kDModel / kHeads;
  torch::manual_seed(1);
  const auto opts = torch::TensorOptions().device(dev);
  auto q = torch::randn({1, kHeads, T, dh}, opts), k = torch::randn({1, kHeads, T, dh}, opts),
       v = torch::randn({1, kHeads, T, dh}, opts);                                         // [1, H, T, d_h] each
  auto pos = torch::arange(T, torch::TensorOptions().dtype(torch::kLong).device(dev));     // [T]
  auto allow = pos.unsqueeze(0) <= pos.unsqueeze(1);                                       // [T, T] j <= i
  auto additive = torch::zeros({T, T}, opts).masked_fill(allow.logical_not(), -INFINITY);  // [T, T]
  auto median5 = [&](const std::function<void()>& f) {
    f();  // warm-up
    std::vector<double> ms;
    for (int i = 0; i < 5; ++i) ms.push_back(clock.ms(f));
    return quantile(ms, 0.5);
  };
  CompareResult r;
  if (dev.is_cpu())
    r.ms[0] = median5([&] { flash::attention(q, k, v, pos, pos, {}); });
  else
    set_text(r.notes[0], sizeof r.notes[0], "a CPU kernel: not run on " + dev.str());
  r.ms[1] = median5([&] { at::_scaled_dot_product_attention(q, k, v, additive, 0.0, false, false); });
  set_text(r.notes[1], sizeof r.notes[1],
           "LibTorch 1.13 has no public scaled_dot_product_attention: this is its private math path (explicit mask)");
  r.ms[2] = median5([&] {
    auto s = torch::matmul(q * (1.0 / std::sqrt(double(dh))), k.transpose(-2, -1));  // [1, H, T, T]
    torch::matmul(masked_softmax(s, allow), v);                                      // [1, H, T, d_h]
  });
  set_text(r.notes[2], sizeof r.notes[2], "matmul, masked softmax, matmul: the T x T scores in memory");
  return r;
}

// Patterns whose forward never builds T x T (the blocked masked path, the tiled kernel): their score tensors span at
// most about this many keys per query.
const std::set<std::string> kLocalMemory = {"tiled",      "sliding_window", "dilated", "block_local",
                                            "longformer", "sinks",          "bigbird"};
constexpr int64_t kLocalSpan = 1024;

// Bytes of the score-sized tensors a forward holds at once (scores, probabilities, one temporary), fp32.
double estimated_bytes(const std::string& variant, int64_t T, int64_t batch) {
  const double span = kLocalMemory.count(variant) ? double(std::min(T, kLocalSpan)) : double(T);
  return 3.0 * 4.0 * double(batch) * double(kHeads) * double(T) * span;
}

}  // namespace

namespace {
// measure_gemm in a measuring child (the device resolved there); a failed child is an Error. Only resolving "cpu"
// needs no process of its own (a fresh one costs ~1.3 s here to start LibTorch: the advisor's 22 single-variant
// benches spent half their time on them).
ChildResult gemm_child(const std::string& device, bool gemm) {
  if (!gemm && device == "cpu") return measure_gemm(device, false);
  ChildResult g = in_child({"gemm", device, gemm ? "1" : "0"}, [&] { return measure_gemm(device, gemm); });
  if (g.status != 0) throw Error(std::string("bench: ") + g.note);
  return g;
}
}  // namespace

double machine_gemm_gflops(const std::string& device) { return gemm_child(device, true).value; }

BenchReport run_bench(const BenchOptions& o, const std::function<void(const BenchProgress&)>& progress) {
  if (o.variants.empty()) throw Error("bench: no variants");
  if (o.lengths.empty()) throw Error("bench: no lengths");
  for (int64_t T : o.lengths)
    if (T < 2 || T > (int64_t(1) << 20)) throw Error("--lengths: " + std::to_string(T) + " is outside 2..1048576");
  if (o.repeats < 1) throw Error("--repeats must be at least 1");
  if (o.batch < 1) throw Error("--batch must be at least 1");
  std::vector<const VariantInfo*> infos;
  for (const auto& v : o.variants) infos.push_back(&get_variant(v));

  BenchReport rep;
  rep.options = o;
  rep.d_model = kDModel;
  rep.heads = kHeads;
  const double avail = mem_available_bytes();
  rep.memory_budget_mib = o.memory_fraction * avail / (1024.0 * 1024.0);

  const ChildResult g = gemm_child(o.device, o.measure_gemm);
  rep.device = g.device;
  rep.gemm_gflops = g.value;
  const bool cuda = rep.device.rfind("cuda", 0) == 0;

  // ETA: each point weighted by T^1.5 (between the linear and the quadratic variants), from the time spent so far.
  double total_w = 0, done_w = 0;
  for (size_t i = 0; i < infos.size(); ++i)
    for (int64_t T : o.lengths) total_w += std::pow(double(T), 1.5);
  const auto t0 = std::chrono::steady_clock::now();
  const int total = int(infos.size() * o.lengths.size());
  int done = 0;
  for (const VariantInfo* info : infos) {
    for (int64_t T : o.lengths) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (progress)
        progress({done, total, info->name, T, elapsed, done_w > 0 ? elapsed * (total_w - done_w) / done_w : kNaN});
      BenchPoint p;
      p.variant = info->name;
      p.length = T;
      const double need = estimated_bytes(info->name, T, o.batch);
      if (!cuda && need > o.memory_fraction * avail) {
        p.status = "skipped";
        p.note = "estimated " + std::to_string(int64_t(need / (1 << 20))) + " MiB > budget " +
                 std::to_string(int64_t(rep.memory_budget_mib)) + " MiB";
      } else {
        ChildResult r = in_child(point_task(o, info->name, T), [&] { return measure_point(o, *info, T); });
        p.status = r.status == 0 ? "ok" : r.status == 1 ? "skipped" : "failed";
        p.note = r.note;
        p.median_ms = r.median_ms;
        p.p10_ms = r.p10_ms;
        p.p90_ms = r.p90_ms;
        p.peak_mib = r.peak_mib;
        p.decode_tokens_per_s = r.decode_tps;
        p.decode_note = r.decode_note;
        p.gflops = r.value;
      }
      rep.points.push_back(p);
      done_w += std::pow(double(T), 1.5);
      ++done;
    }
    std::vector<double> xs, ys;
    for (const auto& p : rep.points)
      if (p.variant == info->name && p.status == "ok") {
        xs.push_back(double(p.length));
        ys.push_back(p.median_ms);
      }
    if (xs.size() >= 2)
      rep.slopes.push_back({info->name, loglog_slope(xs, ys), int64_t(xs.front()), int64_t(xs.back()), int(xs.size())});
  }
  rep.compare_length = o.compare_at;
  if (o.compare_at < 0) {  // the largest length <= 4096 whose naive scores fit the budget
    rep.compare_length = 0;
    for (int64_t T : o.lengths)
      if (T <= 4096 && (cuda || estimated_bytes("mha", T, 1) <= o.memory_fraction * avail)) rep.compare_length = T;
  }
  if (rep.compare_length > 0) {
    CompareResult c = in_child<CompareResult>({"compare", o.device, std::to_string(rep.compare_length)},
                                              [&] { return compare_kernels(o.device, rep.compare_length); });
    const char* names[3] = {"fused kernel (flash.h)", "at::_scaled_dot_product_attention", "naive"};
    const double t = double(rep.compare_length);
    for (int i = 0; i < 3; ++i) {
      KernelTiming k{names[i], c.ms[i], kNaN, c.status == 0 ? c.notes[i] : c.note};
      if (std::isfinite(k.median_ms)) k.gflops = 2.0 * t * (t + 1) * double(kDModel) / (k.median_ms * 1e-3) / 1e9;
      rep.kernels.push_back(k);
    }
  }
  if (progress)
    progress({total, total, "", 0, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 0});
  return rep;
}

void bench_children_exec(const std::string& exe) { g_child_exe = exe; }

// __bench_child gemm DEVICE 0|1 | point DEVICE VARIANT T BATCH REPEATS DECODE_TOKENS | compare DEVICE T
int bench_child_main(const std::vector<std::string>& a) {
  auto put = [](const void* p, size_t n) {  // the whole struct, or a failed exit the parent reports
    const char* b = static_cast<const char*>(p);
    while (n > 0) {
      const ssize_t w = write(STDOUT_FILENO, b, n);
      if (w <= 0) return 3;
      b += w;
      n -= size_t(w);
    }
    return 0;
  };
  auto run = [&](auto&& f) {
    const auto r = caught<decltype(f())>(f);
    return put(&r, sizeof r);
  };
  try {
    if (a.size() == 3 && a[0] == "gemm") return run([&] { return measure_gemm(a[1], a[2] == "1"); });
    if (a.size() == 3 && a[0] == "compare") return run([&] { return compare_kernels(a[1], std::stoll(a[2])); });
    if (a.size() == 7 && a[0] == "point") {
      BenchOptions o;
      o.device = a[1];
      o.batch = std::stoll(a[4]);
      o.repeats = std::stoi(a[5]);
      o.decode_tokens = std::stoll(a[6]);
      const VariantInfo& info = get_variant(a[2]);
      const int64_t T = std::stoll(a[3]);
      return run([&] { return measure_point(o, info, T); });
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attnscope __bench_child: %s\n", e.what());
    return 2;
  }
  std::fprintf(stderr, "attnscope __bench_child: unknown task (an internal entry point of bench)\n");
  return 2;
}

}  // namespace attnscope
