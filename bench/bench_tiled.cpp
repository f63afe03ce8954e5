// Peak memory of one causal attention layer's forward: the naive path (mha: softmax over the T x T scores) against
// the tiled ("flash") path, at d_model 128, 8 heads. Run each path in a fresh process: it reports the process's
// peak resident set (getrusage) before and after the forward, so the difference is what the forward needed.
//   bench_tiled naive|tiled [T=4096] [Br=64] [Bc=64]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "nn.h"

using namespace attnscope;

static long peak_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;  // KiB on Linux
}

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "tiled";
  const int64_t T = argc > 2 ? std::stoll(argv[2]) : 4096;
  const double br = argc > 3 ? std::stod(argv[3]) : 64, bc = argc > 4 ? std::stod(argv[4]) : 64;
  if (path != "naive" && path != "tiled") {
    std::fprintf(stderr, "usage: bench_tiled naive|tiled [T] [Br] [Bc]\n");
    return 2;
  }
  torch::NoGradGuard ng;
  ModelConfig cfg;
  cfg.n_layer = 1;
  cfg.d_model = 128;
  cfg.n_head = 8;
  cfg.context = T;
  cfg.set_all_layers(path == "naive" ? "mha" : "tiled",
                     path == "naive" ? ParamValues{} : ParamValues{{"br", br}, {"bc", bc}});
  Positions pos(cfg);
  torch::manual_seed(1);
  auto layer = make_attention(cfg, cfg.layers[0], &pos);
  AttnCall c;
  c.x = torch::randn({1, T, cfg.d_model});  // [1, T, d]
  const long before = peak_kib();
  auto t0 = std::chrono::steady_clock::now();
  auto out = layer->forward(c).out;  // [1, T, d]
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const long after = peak_kib();
  std::printf(
      "{\"path\": \"%s\", \"T\": %lld, \"heads\": %lld, \"head_dim\": %lld, \"peak_rss_mib\": %.1f, "
      "\"forward_peak_increase_mib\": %.1f, \"forward_ms\": %.1f, \"checksum\": %.6f}\n",
      path.c_str(), (long long)T, (long long)cfg.n_head, (long long)cfg.head_dim(), after / 1024.0,
      (after - before) / 1024.0, ms, out.abs().mean().item<double>());
  return 0;
}
