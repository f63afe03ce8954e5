// `attnscope train`: a character GPT trained on the corpus with one variant on every layer, written as a
// checkpoint (resumable: --resume continues from the state saved at every validation or on Ctrl-C).
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <memory>
#include <unistd.h>

#include "cli_checks.h"
#include "cli_io.h"
#include "commands.h"
#include "engine.h"  // default_corpus_path
#include "error.h"
#include "registry.h"
#include "train.h"

namespace attnscope {

struct TrainArgs {
  TrainOptions o;
  std::string variant = "mha", position = "rope", dtype = "fp16";
  std::vector<std::string> params;
};

namespace {

// One progress line: rewritten in place on a terminal, every 10th step (and the last) as its own line otherwise.
void print_progress(const TrainProgress& p, bool tty) {
  if (!tty && p.step % 10 != 0 && p.step != p.steps) return;
  char val[32] = "-     ";  // before the first validation
  if (std::isfinite(p.val_loss)) std::snprintf(val, sizeof val, "%.4f", p.val_loss);
  std::fprintf(stderr, "%sstep %lld/%lld | loss %.4f | val %s | lr %.2e | %.0f tok/s | %s elapsed | ETA %s%s",
               tty ? "\r" : "", (long long)p.step, (long long)p.steps, p.loss, val, p.lr, p.tokens_per_s,
               fmt_time(p.elapsed_s).c_str(), fmt_time(p.eta_s).c_str(), tty ? "   " : "\n");
  std::fflush(stderr);
}

}  // namespace

int cmd_train(TrainArgs a, const std::string& command) {
  const VariantInfo& info = get_variant(a.variant);
  ParamValues given;
  for (const auto& kv : a.params) given.insert(parse_param(info.params, a.variant, kv));
  if (!info.causal) throw Error("variant '" + a.variant + "' sees future tokens: it cannot be trained as a decoder");
  if (info.needs_kv_text)
    throw Error("variant '" + a.variant + "' needs a second text: train a self-attention variant");
  a.o.model.position = parse_pos_kind(a.position);
  a.o.model.set_all_layers(a.variant, given);
  a.o.dtype = a.dtype == "fp32" ? DType::F32 : a.dtype == "bf16" ? DType::BF16 : DType::F16;
  if (a.o.corpus_path.empty()) a.o.corpus_path = default_corpus_path();
  a.o.command = command;
  install_interrupt_handler();
  const bool tty = isatty(fileno(stderr));
  auto s = train(a.o, [&](const TrainProgress& p) { print_progress(p, tty); });
  std::fprintf(stderr, "\n");
  if (s.interrupted) {
    std::fprintf(stderr, "stopped at step %lld: resumable state saved in %s (continue with --resume)\n",
                 (long long)s.steps_done, a.o.out_dir.c_str());
    return 130;
  }
  const std::string moe = a.o.model.moe_experts > 0 ? " + MoE (" + std::to_string(a.o.model.moe_experts) +
                                                          " experts, top-" + std::to_string(a.o.model.moe_k) + ")"
                                                    : "";
  std::printf(
      "trained %s%s for %lld steps in %s (%.0f tokens/s): validation loss %.4f nats/char (%.4f bits/char) -> %s\n",
      a.variant.c_str(), moe.c_str(), (long long)s.steps_done, fmt_time(s.wall_s).c_str(), s.tokens_per_s,
      s.final_val_loss, s.final_val_loss / std::log(2.0), a.o.out_dir.c_str());
  return 0;
}

namespace {

// The model's shape and position scheme, the storage and the mixture of experts.
void add_model_options(CLI::App* c, TrainArgs& a) {
  c->add_option("--layers", a.o.model.n_layer, "layers")->check(CLI::Range(1, 64));
  c->add_option("--d-model", a.o.model.d_model, "model width")->check(CLI::Range(2, 4096));
  c->add_option("--heads", a.o.model.n_head, "attention heads")->check(CLI::Range(1, 64));
  c->add_option("--context", a.o.model.context, "context length")->check(CLI::Range(2, 65536));
  c->add_option("--position", a.position, "rope|xpos|learned|alibi|none")
      ->check(CLI::IsMember({"rope", "xpos", "learned", "alibi", "none"}));
  c->add_option("--rope-theta", a.o.model.rope_theta, "RoPE base")->check(CLI::Range(1.0, 1e7));
  c->add_option("--rope-fraction", a.o.model.rope_fraction, "rotated fraction of each head")
      ->check(CLI::Range(0.01, 1.0));
  c->add_option("--dtype", a.dtype, "checkpoint storage: fp16|bf16|fp32")
      ->check(CLI::IsMember({"fp16", "bf16", "fp32"}));
  c->add_option("--corpus", a.o.corpus_path, "training text (default: the bundled Tiny Shakespeare)");
  c->add_option("--device", a.o.device, "auto|cpu|cuda")->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  c->add_option("--max-minutes", a.o.max_minutes, "stop after this wall time with a resumable state")
      ->check(kNonNegative);
  c->add_flag("--resume", a.o.resume, "continue from DIR/train_state.safetensors");
  c->add_option("--moe-experts", a.o.model.moe_experts,
                "mixture-of-experts feed-forward with E experts (0 = the dense MLP); each expert is 1/E as wide")
      ->check(CLI::Range(0, 64));
  c->add_option("--moe-k", a.o.model.moe_k, "experts per token (top-k routing)")->check(CLI::Range(1, 64));
  c->add_option("--moe-aux-weight", a.o.moe_aux_weight, "weight of the load-balancing loss")
      ->check(CLI::Range(0.0, 10.0));
}

}  // namespace

Command add_train(CLI::App& app, const std::string& command_line) {
  auto a = std::make_shared<TrainArgs>();
  auto* c = app.add_subcommand("train", "train a character GPT on the corpus and write a checkpoint");
  c->add_option("--variant", a->variant, "attention variant on every layer");
  c->add_option("--param", a->params, "variant parameter NAME=VALUE (repeatable)");
  c->add_option("--out", a->o.out_dir, "checkpoint directory")->required();
  c->add_option("--steps", a->o.steps, "optimiser steps")->check(CLI::Range(int64_t(1), int64_t(10000000)));
  c->add_option("--seed", a->o.seed, "seed (initialisation and batches)");
  c->add_option("--batch", a->o.batch, "sequences per step")->check(CLI::Range(1, 4096));
  c->add_option("--lr", a->o.lr, "peak learning rate")->check(CLI::Range(1e-6, 1.0));
  c->add_option("--min-lr", a->o.min_lr, "final learning rate of the cosine")->check(CLI::Range(0.0, 1.0));
  c->add_option("--warmup", a->o.warmup, "warm-up steps")->check(kNonNegative);
  c->add_option("--eval-every", a->o.eval_every, "validate and save a resumable state every N steps")->check(kPositive);
  c->add_option("--eval-windows", a->o.eval_windows,
                "context windows of the held-out split in each periodic validation (0: the whole split)")
      ->check(kNonNegative);
  add_model_options(c, *a);
  return {c, [a, command_line] { return cmd_train(*a, command_line); }};
}

}  // namespace attnscope
