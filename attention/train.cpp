// Training: AdamW (written out, so its state can be saved), warm-up + cosine schedule, gradient clipping,
// periodic validation, resumable atomic checkpoints, deterministic batches from (seed, step).
#include "train.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>

#include "engine_impl.h"
#include "error.h"

namespace attnscope {

namespace fs = std::filesystem;
using nlohmann::json;

static std::atomic<bool> g_stop{false};
static void on_sigint(int) { g_stop = true; }
void install_interrupt_handler() { std::signal(SIGINT, on_sigint); }
void request_training_stop() { g_stop = true; }

namespace {

struct AdamW {
  std::vector<torch::Tensor> params, m, v;  // each like its parameter
  std::vector<bool> decay;
  double b1 = 0.9, b2 = 0.95, eps = 1e-8;
  int64_t t = 0;
  void step(double lr, double wd) {
    torch::NoGradGuard ng;
    ++t;
    const double c1 = 1 - std::pow(b1, double(t)), c2 = 1 - std::pow(b2, double(t));
    for (size_t i = 0; i < params.size(); ++i) {
      auto& p = params[i];
      if (!p.grad().defined()) continue;
      auto g = p.grad();
      if (decay[i]) p.mul_(1 - lr * wd);
      m[i].mul_(b1).add_(g, 1 - b1);
      v[i].mul_(b2).addcmul_(g, g, 1 - b2);
      p.addcdiv_(m[i] / c1, (v[i] / c2).sqrt_().add_(eps), -lr);
    }
  }
};

double schedule(const TrainOptions& o, int64_t step) {
  if (step < o.warmup) return o.lr * double(step + 1) / double(o.warmup);
  double p = double(step - o.warmup) / double(std::max<int64_t>(1, o.steps - o.warmup));
  return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1 + std::cos(M_PI * std::min(1.0, p)));
}

// B windows of C+1 tokens, offsets drawn from (seed, step): the same batches after a resume.
torch::Tensor batch_at(const torch::Tensor& data /*[N]*/, int64_t B, int64_t C, uint64_t seed, int64_t step) {
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(step));
  std::uniform_int_distribution<int64_t> pick(0, data.size(0) - C - 2);
  std::vector<torch::Tensor> rows;
  for (int64_t b = 0; b < B; ++b) rows.push_back(data.narrow(0, pick(rng), C + 1));
  return torch::stack(rows);  // [B, C + 1]
}

StTensor to_st(const std::string& name, const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU, torch::kFloat).contiguous();
  StTensor s{name, DType::F32, c.sizes().vec(), encode_floats(c.data_ptr<float>(), size_t(c.numel()), DType::F32)};
  return s;
}

void from_st(const StFile& f, const std::string& name, torch::Tensor& dst) {
  const StTensor* s = f.find(name);
  if (!s || s->shape != dst.sizes().vec()) throw Error("training state: tensor '" + name + "' missing or mis-shaped");
  auto v = decode_floats(*s);
  torch::NoGradGuard ng;
  dst.copy_(torch::from_blob(v.data(), {int64_t(v.size())}, torch::kFloat).view(dst.sizes()));
}

// AdamW over every parameter; weight decay on matrices only (not norms' gains).
AdamW make_optimizer(GPTImpl& net) {
  AdamW opt;
  for (auto& p : net.named_parameters()) {
    opt.params.push_back(p.value());
    opt.m.push_back(torch::zeros_like(p.value()));
    opt.v.push_back(torch::zeros_like(p.value()));
    opt.decay.push_back(p.value().dim() >= 2);
  }
  return opt;
}

// Before any step: a file in the way or a folder that cannot be written fails now, not after the training.
void prepare_out_dir(const std::string& dir) {
  std::error_code ec, is_dir_ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir, is_dir_ec))
    throw Error("cannot create checkpoint directory '" + dir +
                "': " + (fs::exists(dir, is_dir_ec) ? std::string("a file is in the way") : ec.message()));
  const std::string probe = dir + "/.attnscope_write_test";
  const bool ok = bool(std::ofstream(probe)) && fs::remove(probe, is_dir_ec);
  if (!ok) throw Error("cannot write into checkpoint directory '" + dir + "'");
}

// The resumable state: parameters and both moments in fp32, the step and the wall time so far (atomic write).
void write_state(const std::string& path, GPTImpl& net, const AdamW& opt, int64_t step, double wall) {
  StFile st;
  auto names = net.named_parameters().keys();
  for (size_t i = 0; i < names.size(); ++i) {
    st.tensors.push_back(to_st("param/" + names[i], opt.params[i]));
    st.tensors.push_back(to_st("m/" + names[i], opt.m[i]));
    st.tensors.push_back(to_st("v/" + names[i], opt.v[i]));
  }
  st.metadata["step"] = std::to_string(step);
  st.metadata["wall_s"] = std::to_string(wall);
  write_safetensors(path, st);
}

// Reads write_state's file into the parameters and moments; returns the step to continue from.
int64_t load_state(const std::string& path, GPTImpl& net, AdamW& opt, double* wall) {
  StFile st = read_safetensors(path);
  auto names = net.named_parameters().keys();
  for (size_t i = 0; i < names.size(); ++i) {
    from_st(st, "param/" + names[i], opt.params[i]);
    from_st(st, "m/" + names[i], opt.m[i]);
    from_st(st, "v/" + names[i], opt.v[i]);
  }
  const int64_t start = std::stoll(st.metadata.at("step"));
  *wall = std::stod(st.metadata.at("wall_s"));
  opt.t = start;
  return start;
}

}  // namespace

TrainSummary train(const TrainOptions& o, const std::function<void(const TrainProgress&)>& progress) {
  if (o.steps < 1 || o.batch < 1 || o.warmup < 0 || o.eval_every < 1 || !(o.lr > 0))
    throw Error("train: steps, batch and eval_every must be >= 1, lr > 0");
  if (o.out_dir.empty()) throw Error("train: --out is required");
  g_stop = false;  // a stop asked for before this run (an earlier run's Ctrl-C) does not stop this one
  const std::string text = read_text_file(o.corpus_path);
  Tokenizer tok = Tokenizer::from_corpus(text);
  ModelConfig cfg = o.model;
  cfg.vocab_size = tok.size();
  cfg.validate();
  Split split = split_corpus(text);
  auto train_ids = tok.encode_or_throw(split.train, UnknownPolicy::Error);
  auto valid_ids = tok.encode_or_throw(split.valid, UnknownPolicy::Error);
  const int64_t C = cfg.context;
  if (int64_t(train_ids.size()) < C + 2) throw Error("train: the corpus is too short for the context");
  auto data = torch::tensor(train_ids, torch::kLong);  // [N]

  auto model = Model::create(cfg, tok, o.device, o.seed);
  GPTImpl& net = *model->impl->net;
  const torch::Device dev = model->impl->device;
  AdamW opt = make_optimizer(net);
  const std::string state_path = o.out_dir + "/train_state.safetensors";
  const std::string csv_path = o.out_dir + "/loss.csv";
  int64_t start = 0;
  double prior_wall = 0;
  std::error_code ec;
  prepare_out_dir(o.out_dir);
  if (o.resume) {
    if (!fs::exists(state_path))
      throw Error("--resume: no training state at '" + state_path + "' (the run finished or never started)");
    start = load_state(state_path, net, opt, &prior_wall);
  } else {
    std::ofstream(csv_path) << "step,train_loss,val_loss,lr,elapsed_s\n";
  }
  std::ofstream csv(csv_path, std::ios::app);

  auto save_state = [&](int64_t step, double wall) { write_state(state_path, net, opt, step, wall); };

  auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return prior_wall + std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  double val = std::nan(""), ema = std::nan("");
  int64_t step = start;
  bool interrupted = false;
  net.train();
  for (; step < o.steps; ++step) {
    if (g_stop || (o.max_minutes > 0 && elapsed() > o.max_minutes * 60)) {
      interrupted = true;
      break;
    }
    auto xb = batch_at(data, o.batch, C, o.seed, step).to(dev);  // [B, C + 1]
    torch::Tensor aux;                                           // scalar MoE load-balancing loss (0 for dense models)
    auto ce = lm_loss(net, xb, &aux);                            // scalar cross-entropy, the loss reported
    auto loss = cfg.moe_experts > 0 ? ce + o.moe_aux_weight * aux : ce;
    for (auto& p : opt.params) p.mutable_grad() = torch::Tensor();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(opt.params, o.clip);
    const double lr = schedule(o, step);
    opt.step(lr, o.weight_decay);
    const double l = ce.item<double>();
    ema = std::isnan(ema) ? l : 0.9 * ema + 0.1 * l;
    const bool last = step + 1 == o.steps;
    if ((step + 1) % o.eval_every == 0 || last) {
      net.eval();
      val = model->evaluate(valid_ids, o.eval_windows).loss;
      net.train();
      csv << step + 1 << "," << ema << "," << val << "," << lr << "," << elapsed() << "\n" << std::flush;
      if (!last) save_state(step + 1, elapsed());
    }
    const double e = elapsed(), done = double(step + 1 - start);
    const double tps = done * double(o.batch * C) / std::max(1e-9, e - prior_wall);
    progress({step + 1, o.steps, ema, val, tps, e, (e - prior_wall) / done * double(o.steps - step - 1), lr,
              aux.item<double>()});
  }
  net.eval();
  const double wall = elapsed();
  const double tps = double((step - start) * o.batch * C) / std::max(1e-9, wall - prior_wall);
  TrainSummary s{step, std::nan(""), wall, tps, interrupted};
  if (interrupted) {
    save_state(step, wall);
    return s;
  }
  s.final_val_loss = model->evaluate(valid_ids).loss;
  // The regression slice the tests re-evaluate: the first 20,000 predictions' worth of the validation split.
  const double slice_loss = model->evaluate(valid_ids, kRegressionChars / C).loss;
  json meta = {{"command", o.command},
               {"seed", o.seed},
               {"steps", o.steps},
               {"batch", o.batch},
               {"lr", o.lr},
               {"min_lr", o.min_lr},
               {"warmup", o.warmup},
               {"weight_decay", o.weight_decay},
               {"clip", o.clip},
               {"wall_time_s", wall},
               {"tokens_per_s", tps},
               {"final_val_loss", s.final_val_loss},
               {"final_val_bits", s.final_val_loss / std::log(2.0)},
               {"val_loss_20k", slice_loss},
               {"val_split", "last 10% of the corpus, non-overlapping context windows"},
               {"device", dev.str()},
               {"parameters", model->parameter_count()}};
  if (cfg.moe_experts > 0) {
    meta["moe_aux_weight"] = o.moe_aux_weight;
    meta["moe_aux_loss"] = "Switch: E * sum_e f_e P_e per layer, summed over layers, added to the cross-entropy";
  }
  model->set_meta(meta);
  model->save(o.out_dir, o.dtype);
  fs::remove(state_path, ec);
  return s;
}

}  // namespace attnscope
