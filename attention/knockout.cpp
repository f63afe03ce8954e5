// Knock-outs by editing a copy's output projections, and the heads' mean contributions (knockout.h).
#include "knockout.h"

#include <algorithm>
#include <string>

#include "engine_impl.h"
#include "error.h"

namespace attnscope {

const char* knock_mode_name(KnockMode m) { return m == KnockMode::Mean ? "mean" : "zero"; }

KnockMode parse_knock_mode(const std::string& s) {
  if (s == "zero") return KnockMode::Zero;
  if (s == "mean") return KnockMode::Mean;
  throw Error("knock-out mode '" + s + "': zero (the head's output set to 0) or mean (its mean over positions)");
}

namespace {

// Layer l's W_O [d, H d_v]: a handle on the parameter's storage (edits in place change the layer). By value: the
// dictionary named_parameters() returns is a temporary.
torch::Tensor output_weight(GPTImpl& net, int64_t l) {
  const auto params = net.attn[size_t(l)]->named_parameters();
  const torch::Tensor* wo = params.find("wo.weight");
  if (!wo) throw Error("knock-out: layer " + std::to_string(l) + " has no output projection");
  return *wo;
}

}  // namespace

HeadMeans head_means(const Model& m, const std::vector<int64_t>& tokens) {
  if (tokens.empty()) throw Error("knock-out means: there is no text to average over");
  auto probe = m.with_layers(m.config().layers);  // its W_O are edited below; m stays untouched
  GPTImpl& net = *probe->impl->net;
  const int64_t L = int64_t(net.attn.size()), H = m.config().n_head, C = m.config().context;
  const int64_t T = int64_t(tokens.size()), d = m.config().d_model, V = m.config().vocab_size;
  for (int64_t id : tokens)
    if (id < 0 || id >= V) throw Error("knock-out means: token id " + std::to_string(id) + " is not in the vocabulary");
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> wo;  // per layer [d, H d_v]: the intact projections
  for (int64_t l = 0; l < L; ++l) wo.push_back(output_weight(net, l).clone());
  auto sum = torch::zeros({L, H, d}, torch::kDouble);  // [L, H, d]: sum over positions of c_h(t)
  for (int64_t w0 = 0; w0 < T; w0 += C) {
    const std::vector<int64_t> win(tokens.begin() + w0, tokens.begin() + std::min(T, w0 + C));
    auto x = to_tensor(win, probe->impl->device);  // [1, Tw]
    std::vector<torch::Tensor> inputs, kv;         // per layer [1, Tw, d]: the normed inputs; second-text sources
    ForwardOptions o;
    o.record_inputs = &inputs;
    if (net.has_cross()) {  // a cross-attention model reads the text as its second text too (as text_logprobs)
      kv = net.kv_sources(x);
      o.kv_sources = &kv;
    }
    net.forward(x, o);
    for (int64_t l = 0; l < L; ++l) {
      torch::Tensor w = output_weight(net, l);  // [d, H d_v]
      const int64_t dv = w.size(1) / H;
      for (int64_t h = 0; h < H; ++h) {
        w.zero_();
        w.narrow(1, h * dv, dv).copy_(wo[size_t(l)].narrow(1, h * dv, dv));  // only head h's columns
        AttnCall c;
        c.x = inputs[size_t(l)];
        if (!kv.empty()) c.kv_source = kv[size_t(l)];
        auto out = net.attn[size_t(l)]->forward(c).out;                                    // [1, Tw, d] = c_h(t)
        sum[l][h] += out.sum(std::vector<int64_t>{0, 1}).to(torch::kCPU, torch::kDouble);  // [d]
      }
      w.copy_(wo[size_t(l)]);
    }
  }
  HeadMeans r;
  r.layers = L;
  r.heads = H;
  r.d = d;
  r.positions = T;
  auto mean = (sum / double(T)).to(torch::kFloat).contiguous();  // [L, H, d]
  r.mean.assign(mean.data_ptr<float>(), mean.data_ptr<float>() + mean.numel());
  return r;
}

std::shared_ptr<Model> knock_out(const Model& m, const std::vector<HeadKnockout>& heads, const HeadMeans* means) {
  auto copy = m.with_layers(m.config().layers);  // fresh weights, the same variants: nothing converted
  GPTImpl& net = *copy->impl->net;
  const int64_t L = int64_t(net.attn.size()), H = m.config().n_head, d = m.config().d_model;
  if (means && (means->layers != L || means->heads != H || means->d != d))
    throw Error("knock-out: the means were measured on a model of another shape");
  std::vector<uint8_t> out(size_t(L * H), 0);  // [L, H] 1 = knocked out
  for (const HeadKnockout& k : heads) {
    if (k.layer < 0 || k.layer >= L)
      throw Error("knock-out: layer " + std::to_string(k.layer) + " (the model has " + std::to_string(L) + ")");
    if (k.head < -1 || k.head >= H)
      throw Error("knock-out: head " + std::to_string(k.head) + " (the model has " + std::to_string(H) + ")");
    for (int64_t h = k.head < 0 ? 0 : k.head; h < (k.head < 0 ? H : k.head + 1); ++h) out[size_t(k.layer * H + h)] = 1;
  }
  torch::NoGradGuard ng;
  for (int64_t l = 0; l < L; ++l) {
    torch::Tensor wo = output_weight(net, l);  // [d, H d_v]
    const int64_t dv = wo.size(1) / H;
    std::vector<double> bias(size_t(d), 0.0);  // [d]: sum of the knocked-out heads' means
    bool any = false;
    for (int64_t h = 0; h < H; ++h) {
      if (!out[size_t(l * H + h)]) continue;
      any = true;
      wo.narrow(1, h * dv, dv).zero_();  // [d, d_v]: head h's columns
      if (means)
        for (int64_t i = 0; i < d; ++i) bias[size_t(i)] += double(means->at(l, h)[i]);
    }
    if (any && means)
      net.attn_out_bias[size_t(l)] = torch::tensor(bias, torch::kDouble).to(wo.device(), wo.scalar_type());  // [d]
  }
  return copy;
}

}  // namespace attnscope
