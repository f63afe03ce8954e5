#pragma once
// Training a character GPT on a corpus (no LibTorch in this header).
#include <functional>
#include <string>

#include "config.h"
#include "safetensors.h"

namespace attnscope {

// Characters of the validation split whose loss every checkpoint records ("val_loss_20k") and the tests
// re-evaluate: first floor(20,000 / context) non-overlapping context windows.
constexpr int64_t kRegressionChars = 20000;

struct TrainOptions {
  ModelConfig model;        // layers set to the variant being trained
  std::string corpus_path;  // the text; split 90% train / 10% validation
  std::string out_dir;      // checkpoint directory
  std::string device = "auto";
  int64_t steps = 2000;
  int64_t batch = 32;
  double lr = 2e-3, min_lr = 2e-4;  // cosine from lr to min_lr after warm-up
  int64_t warmup = 100;
  double weight_decay = 0.1;
  double clip = 1.0;
  int64_t eval_every = 250;  // validation (on eval_windows windows) and a resumable checkpoint
  int64_t eval_windows = 32;
  uint64_t seed = 1337;
  DType dtype = DType::F16;      // storage dtype of the final checkpoint
  bool resume = false;           // continue from out_dir/train_state.safetensors
  std::string command;           // the command line, recorded in config.json
  double max_minutes = 0;        // stop (and save) after this wall time; 0 = no limit
  double moe_aux_weight = 0.01;  // MoE models: weight of the load-balancing loss added to the cross-entropy
};

struct TrainProgress {
  int64_t step, steps;
  double loss, val_loss;  // val_loss NaN until the first validation
  double tokens_per_s, elapsed_s, eta_s, lr;
  double aux_loss = 0;  // MoE load-balancing loss of this step (summed over layers; 0 for dense models)
};

struct TrainSummary {
  int64_t steps_done;
  double final_val_loss;  // on the whole validation split
  double wall_s, tokens_per_s;
  bool interrupted;  // Ctrl-C or time limit: a resumable state was saved
};

// Runs training; progress() is called after every step (and after each validation).
TrainSummary train(const TrainOptions& o, const std::function<void(const TrainProgress&)>& progress);
// Installs a SIGINT handler that asks train() to stop at the next step and save a resumable state.
void install_interrupt_handler();
// The same request without a signal (tests; a GUI): the running train() stops before its next step. Every train()
// call starts with no request pending.
void request_training_stop();

}  // namespace attnscope
