// `attnscope generate`: text from the model by KV-cache decoding, written as it is sampled.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli_checks.h"
#include "commands.h"
#include "long_context.h"
#include "model_args.h"

namespace attnscope {

struct GenerateArgs {
  ModelArgs m;
  std::string prompt;
  GenerateOptions g;
  bool stream = false;
};

int cmd_generate(const GenerateArgs& a) {
  auto model = a.m.load();
  auto ids = a.m.encode(*model, a.prompt);
  GenerateOptions g = a.g;
  // Streaming: the prompt (its newest context characters, as without) and every generated one at its own position.
  const int64_t C = model->config().context, prompt = std::min<int64_t>(C, int64_t(ids.size()));
  if (a.stream) {
    g.stream_to = std::max(C, prompt + g.tokens);
    check_length(*model, g.stream_to, "the stream");  // before anything is written
  }
  std::cout << a.prompt << std::flush;
  int64_t bytes = 0, peak = 0, written = 0;
  auto t0 = std::chrono::steady_clock::now();
  model->generate(ids, g, [&](const DecodeStep& s) {
    std::cout << model->tokenizer().symbol(s.token) << std::flush;
    bytes = s.cache_bytes;
    peak = std::max(peak, bytes);
    ++written;
  });
  double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "\n";
  std::fprintf(stderr, "%s: %lld tokens in %.2f s (%.0f tokens/s), KV cache %lld bytes", variant_label(*model).c_str(),
               (long long)written, sec, double(written) / std::max(sec, 1e-9), (long long)bytes);
  if (a.stream)
    std::fprintf(stderr,
                 " after %lld positions (largest %lld bytes; streamed past the %lld-character context, no refill)",
                 (long long)(prompt + written), (long long)peak, (long long)C);
  std::fprintf(stderr, "\n");
  return 0;
}

Command add_generate(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  auto* c = app.add_subcommand("generate", "write text with the model (KV-cache decoding)");
  a->m.add(c);
  c->add_option("--prompt", a->prompt, "the prompt")->required();
  c->add_option("--tokens", a->g.tokens, "characters to generate")->check(CLI::Range(0, 100000));
  c->add_option("--temperature", a->g.temperature, "0 = greedy")->check(CLI::Range(0.0, 100.0));
  c->add_option("--top-k", a->g.top_k, "sample from the k most likely (0 = all)")->check(kNonNegative);
  c->add_option("--seed", a->g.seed, "sampling seed");
  c->add_flag("--stream", a->stream,
              "positions run on past the training context with no refill (a window's or sinks cache stays bounded, "
              "a dense one grows); up to 32,768; learned positions refuse");
  return {c, [a] { return cmd_generate(*a); }};
}

}  // namespace attnscope
