// Sliding-window attention over a long text: the blocked (windowed) path against dense masked attention.
// Each path runs in its own forked process, so peak memory (getrusage max RSS, minus the RSS before the first
// forward) belongs to that path alone. Usage: bench_window [T] [W] [repeats]   (default 4096 64 5)
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "masked.h"
#include "nn.h"

using namespace attnscope;

namespace {

double max_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

// The bundled model's attention shape: d 128, 8 heads (d_h 16), RoPE; one layer, batch 1, no grad.
void run(MaskedPath path, int64_t T, int64_t W, int repeats) {
  torch::NoGradGuard ng;
  ModelConfig cfg;
  cfg.n_layer = 1;
  cfg.d_model = 128;
  cfg.n_head = 8;
  cfg.context = T;
  cfg.set_all_layers("sliding_window", {{"window", static_cast<double>(W)}});
  Positions pos(cfg);
  torch::manual_seed(1);
  auto layer = make_attention(cfg, cfg.layers[0], &pos);
  set_masked_path(*layer, path);
  AttnCall c;
  c.x = torch::randn({1, T, cfg.d_model});  // [B, T, d]
  const double base = max_rss_mib();
  std::vector<double> ms;
  torch::Tensor out;  // [B, T, d]
  for (int r = 0; r < repeats; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    out = layer->forward(c).out;
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf(
      "%-8s T=%lld W=%lld  median %8.2f ms (min %8.2f, %d runs)  peak RSS +%8.1f MiB over %6.1f MiB  checksum %.6f\n",
      path == MaskedPath::Dense ? "dense" : "windowed", static_cast<long long>(T), static_cast<long long>(W),
      ms[ms.size() / 2], ms[0], repeats, max_rss_mib() - base, base, out.abs().sum().item<double>());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t T = argc > 1 ? std::atoll(argv[1]) : 4096, W = argc > 2 ? std::atoll(argv[2]) : 64;
  const int repeats = argc > 3 ? std::atoi(argv[3]) : 5;
  for (MaskedPath p : {MaskedPath::Blocked, MaskedPath::Dense}) {
    pid_t child = fork();  // before any LibTorch work in this process
    if (child == 0) {
      run(p, T, W, repeats);
      std::_Exit(0);
    }
    int status = 0;
    waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "bench_window: the %s run failed\n", p == MaskedPath::Dense ? "dense" : "windowed");
      return 1;
    }
  }
  return 0;
}
