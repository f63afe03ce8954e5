// Attention layers and the character GPT (LibTorch). Shapes are noted on every tensor: B batch, T queries,
// S keys, H query heads, Hkv key/value heads, d model width, d_h head width.
#include "nn.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <optional>
#include <tuple>
#include <typeinfo>

#include "error.h"
#include "flash.h"
#include "rope.h"

namespace attnscope {

namespace F = torch::nn::functional;

torch::Device resolve_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "cuda") {
    if (!torch::cuda::is_available())
      throw Error("--device cuda: this LibTorch build has no usable CUDA device (use --device cpu or auto)");
    return torch::kCUDA;
  }
  if (name == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  throw Error("--device must be auto, cpu or cuda, not '" + name + "'");
}

// ---------------------------------------------------------------------------------------------- positions

std::vector<double> alibi_slopes(int64_t n) {
  // Press et al.: for a power of two n, m_h = 2^(-8h/n); otherwise the slopes of the nearest lower power of
  // two, then every other slope of the next power of two.
  auto pow2 = [](int64_t m) {
    std::vector<double> s;
    double start = std::pow(2.0, -8.0 / static_cast<double>(m));
    for (int64_t i = 0; i < m; ++i) s.push_back(std::pow(start, static_cast<double>(i + 1)));
    return s;
  };
  int64_t p = 1;
  while (p * 2 <= n) p *= 2;
  std::vector<double> s = pow2(p);
  if (p != n) {
    std::vector<double> next = pow2(2 * p);
    for (int64_t i = 0; i < n - p; ++i) s.push_back(next[static_cast<size_t>(2 * i)]);
  }
  return s;
}

Positions::Positions(const ModelConfig& c)
    : kind(c.position),
      rot_dims(c.rope_dims()),
      theta(c.rope_theta),
      xpos_base(c.xpos_scale_base),
      xpos_centre(static_cast<double>(c.context / 2)) {
  if (kind == PosKind::Alibi) {
    auto s = attnscope::alibi_slopes(c.n_head);
    alibi_slopes = torch::tensor(s, torch::kDouble).to(torch::kFloat);  // [H]
  }
}

torch::Tensor Positions::rotate(const torch::Tensor& x, const torch::Tensor& pos, bool is_key) const {
  if ((kind != PosKind::Rope && kind != PosKind::XPos) || rot_dims == 0) return x;
  const int64_t half = rot_dims / 2, dh = x.size(-1);
  if (kind == PosKind::Rope && x.device().is_cpu() && x.scalar_type() == torch::kFloat && x.dim() >= 2 &&
      pos.numel() == x.size(-2) && !(torch::GradMode::is_enabled() && x.requires_grad()))
    return rope_rotate_cpu(x, pos, theta, rot_dims);
  auto dopt = torch::TensorOptions().dtype(torch::kDouble).device(x.device());
  auto inv_freq = torch::pow(theta, -torch::arange(0, half, dopt) * 2.0 / static_cast<double>(rot_dims));  // [r/2]
  auto ang = pos.to(torch::kDouble).unsqueeze(1) * inv_freq.unsqueeze(0);                                  // [T, r/2]
  auto cos = ang.cos(), sin = ang.sin();                                                                   // [T, r/2]
  if (kind == PosKind::XPos) {  // Sun et al.: zeta_i = (i / (r/2) + 0.4) / 1.4, power +-(p - c) / B
    auto zeta = (torch::arange(0, half, dopt) / static_cast<double>(half) + 0.4) / 1.4;  // [r/2]
    auto power = (pos.to(torch::kDouble).unsqueeze(1) - xpos_centre) / xpos_base;        // [T, 1]
    auto scale = torch::pow(zeta.unsqueeze(0), is_key ? -power : power);                 // [T, r/2]
    cos = cos * scale;
    sin = sin * scale;
  }
  cos = cos.to(x.dtype());
  sin = sin.to(x.dtype());
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);  // [B, H, T, r/2] each
  std::vector<torch::Tensor> parts{x1 * cos - x2 * sin, x2 * cos + x1 * sin};
  if (dh > rot_dims) parts.push_back(x.narrow(-1, rot_dims, dh - rot_dims));  // [B, H, T, d_h - r] unrotated
  return torch::cat(parts, -1);                                               // [B, H, T, d_h]
}

torch::Tensor Positions::score_bias(const torch::Tensor& qpos, const torch::Tensor& kpos) const {
  if (kind != PosKind::Alibi) return {};
  auto dist = (qpos.unsqueeze(1) - kpos.unsqueeze(0)).to(torch::kFloat);        // [T, S] i - j
  return -alibi_slopes.to(qpos.device()).view({-1, 1, 1}) * dist.unsqueeze(0);  // [H, T, S]
}

torch::Tensor Positions::score_bias_head(const torch::Tensor& qpos, const torch::Tensor& kpos, int64_t h) const {
  if (kind != PosKind::Alibi) return {};
  auto dist = (qpos.unsqueeze(1) - kpos.unsqueeze(0)).to(torch::kFloat);  // [T, S] i - j
  return -alibi_slopes[h].item<float>() * dist;                           // [T, S]
}

// ---------------------------------------------------------------------------------------------- caches

void KVCache::append(const torch::Tensor& nk, const torch::Tensor& nv) {
  const int64_t t = nk.size(2);
  if (len + t > k.size(2))
    throw Error("KV cache full: " + std::to_string(len + t) + " tokens for a capacity of " + std::to_string(k.size(2)));
  k.narrow(2, len, t).copy_(nk);
  v.narrow(2, len, t).copy_(nv);
  len += t;
}

int64_t KVCache::bytes() const {
  if (!k.defined()) return 0;
  return (keys().numel() + values().numel()) * static_cast<int64_t>(k.element_size());
}

std::vector<int64_t> KVCache::held_positions() const {
  std::vector<int64_t> p(static_cast<size_t>(len));
  for (int64_t i = 0; i < len; ++i) p[static_cast<size_t>(i)] = seen - len + i;
  return p;
}

LayerCache::Layout KVCache::layout() const {
  return {"kv", k.defined() ? 2 * k.size(1) * k.size(3) : 0, k.defined() ? k.size(1) : 0};
}

// ---------------------------------------------------------------------------------------------- layers

double AttentionLayer::param(const std::string& name) const {
  auto it = spec_.params.find(name);
  if (it == spec_.params.end()) throw Error("variant '" + spec_.variant + "' has no parameter '" + name + "'");
  return it->second;
}

void AttentionLayer::convert_from(const AttentionLayer& trained) {
  auto src = trained.named_parameters();
  for (auto& p : named_parameters()) {
    const torch::Tensor* s = src.find(p.key());
    if (!s || s->sizes() != p.value().sizes())
      throw Error("cannot convert attention from '" + trained.spec().variant + "' to '" + spec_.variant +
                  "': no matching weight for '" + p.key() + "'");
    torch::NoGradGuard ng;
    p.value().copy_(*s);
  }
}

TextProjections AttentionLayer::project_text(const torch::Tensor& x, int64_t head) const {
  (void)x;
  (void)head;
  throw Error("internal: " + spec_.variant + " has no tiled weight rows");
}

std::vector<RowPiece> AttentionLayer::weight_rows(const TextProjections& t, int64_t i0, int64_t i1) const {
  (void)t;
  (void)i0;
  (void)i1;
  throw Error("internal: " + spec_.variant + " has no tiled weight rows");
}

// Softmax over keys where `allow` holds; a row with nothing allowed gives zeros instead of NaN.
torch::Tensor masked_softmax(torch::Tensor s /*[.., T, S]*/, const torch::Tensor& allow /*[.., T, S] bool*/) {
  const bool grad = torch::GradMode::is_enabled();
  const auto blocked = allow.logical_not();  // [.., T, S], usually the small [T, S] or [H, T, S]
  const double inf = std::numeric_limits<double>::infinity();
  s = grad ? s.masked_fill(blocked, -inf) : s.masked_fill_(blocked, -inf);
  auto p = torch::softmax(s, -1);  // [.., T, S]
  // Rows that were all -inf are NaN: zero them. Elsewhere blocked entries are exactly 0 already (exp(-inf)).
  if (allow.any(-1).all().item<bool>()) return p;
  return grad ? p.masked_fill(blocked, 0.0) : p.masked_fill_(blocked, 0.0);
}

StandardAttention::StandardAttention(const ModelConfig& cfg, LayerSpec spec, const Positions* pos, int64_t kvh)
    : AttentionLayer(cfg, std::move(spec), pos), n_head(cfg.n_head), kv_heads(kvh), head_dim(cfg.head_dim()) {
  if (kv_heads < 1 || n_head % kv_heads != 0) {
    std::string divs;
    for (int64_t g = 1; g <= n_head; ++g)
      if (n_head % g == 0) divs += (divs.empty() ? "" : ", ") + std::to_string(g);
    throw Error(spec_.variant + ": groups = " + std::to_string(kv_heads) + " does not divide the " +
                std::to_string(n_head) + " query heads (choose one of " + divs + ")");
  }
  const int64_t d = cfg.d_model;
  wq = register_module("wq", Linear(d, n_head * head_dim));
  wk = register_module("wk", Linear(d, kv_heads * head_dim));
  wv = register_module("wv", Linear(d, kv_heads * head_dim));
  wo = register_module("wo", Linear(n_head * head_dim, d));
  cross = spec_.variant == "cross";
  use_sdpa = spec_.variant == "mha" && param("impl") == 1;
}

torch::Tensor causal_allow_shared(const torch::Tensor& qpos /*[T]*/, const torch::Tensor& kpos /*[S]*/) {
  const int64_t T = qpos.numel(), S = kpos.numel();
  const auto computed = [&] { return kpos.unsqueeze(0) <= qpos.unsqueeze(1); };  // [T, S] j <= i
  if (T == 0 || S == 0 || !qpos.device().is_cpu() || !kpos.device().is_cpu() || qpos.scalar_type() != torch::kLong ||
      kpos.scalar_type() != torch::kLong || !qpos.is_contiguous() || !kpos.is_contiguous())
    return computed();
  // Consecutive positions q0 + i and k0 + j: the mask is the band j <= i + (q0 - k0), one per (T, S, offset), shared
  // (a display forward asks for it per layer; the comparison of [T, S] positions cost ~1% of it).
  const int64_t *qp = qpos.data_ptr<int64_t>(), *kp = kpos.data_ptr<int64_t>();
  for (int64_t i = 1; i < T; ++i)
    if (qp[i] != qp[0] + i) return computed();
  for (int64_t j = 1; j < S; ++j)
    if (kp[j] != kp[0] + j) return computed();
  static std::mutex mu;
  static std::map<std::tuple<int64_t, int64_t, int64_t>, torch::Tensor> bands;  // the last few, [T, S] bool each
  const auto key = std::make_tuple(T, S, qp[0] - kp[0]);
  std::lock_guard<std::mutex> l(mu);
  auto it = bands.find(key);
  if (it != bands.end()) return it->second;
  if (bands.size() >= 16) bands.clear();
  return bands[key] = computed();
}

torch::Tensor StandardAttention::allowed(const torch::Tensor& qpos, const torch::Tensor& kpos, bool cross_kv) const {
  if (cross_kv) return torch::ones({qpos.size(0), kpos.size(0)}, qpos.options().dtype(torch::kBool));  // [T, S]
  return causal_allow_shared(qpos, kpos);                                                              // [T, S] j <= i
}

AttnResult StandardAttention::forward(const AttnCall& c) {
  const int64_t B = c.x.size(0), T = c.x.size(1);
  auto lopt = torch::TensorOptions().dtype(torch::kLong).device(c.x.device());
  auto* kc = dynamic_cast<KVCache*>(c.cache);
  if (c.cache && !kc) throw Error("internal: wrong cache type for " + spec_.variant);

  auto qpos = torch::arange(c.pos0, c.pos0 + T, lopt);              // [T]
  auto q = wq(c.x).view({B, T, n_head, head_dim}).transpose(1, 2);  // [B, H, T, d_h]
  q = pos_->rotate(q, qpos);

  torch::Tensor k, v, kpos;  // [B, Hkv, S, d_h], [B, Hkv, S, d_h], [S]
  const bool cross_kv = cross && (c.kv_source.defined() || (kc && kc->len > 0));
  if (cross_kv) {
    if (kc && kc->len > 0) {  // computed once, at the first step
      k = kc->keys();
      v = kc->values();
    } else {
      const int64_t S = c.kv_source.size(1);
      kpos = torch::arange(0, S, lopt);
      k = pos_->rotate(wk(c.kv_source).view({B, S, kv_heads, head_dim}).transpose(1, 2), kpos, true);
      v = wv(c.kv_source).view({B, S, kv_heads, head_dim}).transpose(1, 2);
      if (kc) kc->append(k, v);
    }
    kpos = torch::arange(0, k.size(2), lopt);  // [S]
  } else {
    k = pos_->rotate(wk(c.x).view({B, T, kv_heads, head_dim}).transpose(1, 2), qpos, true);  // [B, Hkv, T, d_h]
    v = wv(c.x).view({B, T, kv_heads, head_dim}).transpose(1, 2);                            // [B, Hkv, T, d_h]
    if (kc) {
      kc->append(k, v);
      k = kc->keys();    // [B, Hkv, len, d_h]
      v = kc->values();  // [B, Hkv, len, d_h]
    }
    kpos = torch::arange(c.pos0 + T - k.size(2), c.pos0 + T, lopt);  // [S]
  }
  // Inference: the fused kernel (flash.h), causal with the ALiBi bias as slopes, each key/value head read once per
  // group; with the display its row driver writes the weights too, each row over its keys j <= i only (LibTorch's
  // path below scores, masks and exponentiates all T x S pairs, then multiplies by the zeros). The painted masks of
  // `custom` and cross-attention keep the path below.
  if (!use_sdpa && !cross_kv && typeid(*this) == typeid(StandardAttention) && flash::applies(q, k, v)) {
    flash::Options fo;
    if (pos_->kind == PosKind::Alibi) fo.alibi = pos_->alibi_slopes;
    fo.want_probs = c.want_display;
    fo.probs_into = c.display_into;
    flash::Out f = flash::attention(q, k, v, qpos, kpos, fo);  // out [B, H, T, d_h], probs [B, H, T, S]
    AttnResult r;
    r.out = wo(f.out.transpose(1, 2).reshape({B, T, n_head * head_dim}));  // [B, T, d]
    if (c.want_display) {
      const auto allow = allowed(qpos, kpos, false);  // [T, S] bool
      r.display_placed = f.probs_placed;
      r.display = f.probs;                                             // [B, H, T, S or P]
      r.mask = allow.unsqueeze(0).expand({n_head, T, allow.size(1)});  // [H, T, S]
      r.heads = f.out;                                                 // [B, H, T, d_h]
    }
    return r;
  }
  if (kv_heads != n_head) {                         // query head h reads key/value head floor(h * Hkv / H)
    k = k.repeat_interleave(n_head / kv_heads, 1);  // [B, H, S, d_h]
    v = v.repeat_interleave(n_head / kv_heads, 1);  // [B, H, S, d_h]
  }
  auto allow = allowed(qpos, kpos, cross_kv);                             // [T, S] bool
  auto bias = cross_kv ? torch::Tensor() : pos_->score_bias(qpos, kpos);  // [H, T, S] or undefined

  torch::Tensor p, o;  // [B, H, T, S], [B, H, T, d_h]
  if (use_sdpa) {
    // An explicit additive mask, never is_causal (top-left causal is wrong for decode queries).
    auto m = torch::zeros(allow.sizes(), q.options())
                 .masked_fill(allow.logical_not(),
                              -std::numeric_limits<float>::infinity());  // [T, S]
    if (bias.defined()) m = m + bias;                                    // [H, T, S]
    auto r = at::_scaled_dot_product_attention(q, k, v, m, 0.0, c.want_display, false);
    o = std::get<0>(r);
    p = std::get<1>(r);
  } else {
    // scaled on the queries ([B, H, T, d_h]) rather than on the scores ([B, H, T, S]): fewer elements to touch
    auto s = torch::matmul(q * (1.0 / std::sqrt(static_cast<double>(head_dim))), k.transpose(-2, -1));  // [B, H, T, S]
    if (bias.defined()) s = s + bias;
    p = masked_softmax(s, allow);
    o = torch::matmul(p, v);
  }
  AttnResult r;
  r.out = wo(o.transpose(1, 2).reshape({B, T, n_head * head_dim}));  // [B, T, d]
  if (c.want_display) {
    r.display = p;                                                   // [B, H, T, S]
    r.mask = allow.unsqueeze(0).expand({n_head, T, allow.size(1)});  // [H, T, S]
    r.heads = o;                                                     // [B, H, T, d_h]
  }
  return r;
}

torch::Tensor StandardAttention::head_values(const torch::Tensor& x) const {
  const int64_t B = x.size(0), S = x.size(1);
  auto v = torch::nn::functional::linear(x, wv->weight)
               .view({B, S, kv_heads, head_dim})
               .transpose(1, 2);                                              // [B, Hkv, S, d_h]
  return kv_heads == n_head ? v : v.repeat_interleave(n_head / kv_heads, 1);  // [B, H, S, d_h]
}

bool StandardAttention::has_weight_rows() const {
  const std::type_info& t = typeid(*this);
  return !cross && (t == typeid(StandardAttention) || t == typeid(CustomMaskAttention));
}

bool StandardAttention::dense_causal_rows(int64_t head, float* alibi_slope) const {
  if (cross || typeid(*this) != typeid(StandardAttention)) return false;  // a painted mask may block any pair
  *alibi_slope = pos_->kind == PosKind::Alibi ? pos_->alibi_slopes[head].item<float>() : 0.0f;  // weight_rows' bias
  return true;
}

TextProjections StandardAttention::project_text(const torch::Tensor& x, int64_t h) const {
  const int64_t T = x.size(1), g = h / (n_head / kv_heads);  // query head h reads key/value head floor(h Hkv / H)
  auto pos = torch::arange(T, torch::TensorOptions().dtype(torch::kLong).device(x.device()));  // [T]
  auto q = F::linear(x, wq->weight.narrow(0, h * head_dim, head_dim)).unsqueeze(1);            // [1, 1, T, d_h]
  auto k = F::linear(x, wk->weight.narrow(0, g * head_dim, head_dim)).unsqueeze(1);            // [1, 1, T, d_h]
  TextProjections t;
  t.head = h;
  t.q = pos_->rotate(q, pos) * (1.0 / std::sqrt(static_cast<double>(head_dim)));  // [1, 1, T, d_h] q / sqrt(d_h)
  t.k = pos_->rotate(k, pos, true);                                               // [1, 1, T, d_h]
  return t;
}

std::vector<RowPiece> StandardAttention::weight_rows(const TextProjections& t, int64_t i0, int64_t i1) const {
  // Row i: softmax_j (q_i . k_j / sqrt(d_h) + bias_ij) over the allowed j <= i; keys j >= i1 never are.
  auto lopt = torch::TensorOptions().dtype(torch::kLong).device(t.q.device());
  auto qpos = torch::arange(i0, i1, lopt), kpos = torch::arange(0, i1, lopt);  // [n], [i1]
  auto q = t.q[0][0].narrow(0, i0, i1 - i0), k = t.k[0][0].narrow(0, 0, i1);   // [n, d_h], [i1, d_h]
  auto s = torch::matmul(q, k.t());                                            // [n, i1]
  auto bias = pos_->score_bias_head(qpos, kpos, t.head);                       // [n, i1] or undefined
  if (bias.defined()) s.add_(bias);
  if (typeid(*this) != typeid(StandardAttention))                            // a painted mask: any pair may be blocked
    return {{i0, i1, masked_softmax(s, allowed(qpos, kpos, false)), kpos}};  // [n, i1]
  // Causal: every key before i0 is allowed to every row; only the diagonal block [n, n] masks j > i.
  const int64_t n = i1 - i0;
  s.narrow(1, i0, n).masked_fill_(torch::ones({n, n}, lopt.dtype(torch::kBool)).triu(1),
                                  -std::numeric_limits<double>::infinity());
  return {{i0, i1, torch::softmax(s, -1), kpos}};  // [n, i1]
}

std::unique_ptr<LayerCache> StandardAttention::new_cache(int64_t batch, int64_t capacity, torch::Device dev) const {
  auto c = std::make_unique<KVCache>();
  auto opt = torch::TensorOptions().dtype(wk->weight.dtype()).device(dev);
  c->k = torch::empty({batch, kv_heads, capacity, head_dim}, opt);  // [B, Hkv, cap, d_h]
  c->v = torch::empty({batch, kv_heads, capacity, head_dim}, opt);  // [B, Hkv, cap, d_h]
  return c;
}

int64_t StandardAttention::cache_formula_bytes(int64_t tokens, int64_t b) const {
  // 2 Hkv d_h b per token (mha: 2 H d_h b; mqa: 2 d_h b; gqa: 2 G d_h b). Cross: the second text's length.
  return 2 * kv_heads * head_dim * b * tokens;
}

void StandardAttention::convert_from(const AttentionLayer& trained) {
  auto* s = dynamic_cast<const StandardAttention*>(&trained);
  if (!s) return AttentionLayer::convert_from(trained);
  if (s->kv_heads % kv_heads != 0)
    throw Error("cannot convert " + std::to_string(s->kv_heads) + " key/value heads into " + std::to_string(kv_heads) +
                " (not a divisor)");
  torch::NoGradGuard ng;
  wq->weight.copy_(s->wq->weight);
  wo->weight.copy_(s->wo->weight);
  // Mean-pool contiguous groups of key/value heads: [Hs * d_h, d] -> [G, Hs/G, d_h, d] -> mean -> [G * d_h, d].
  const int64_t d = cfg_.d_model, per = s->kv_heads / kv_heads;
  wk->weight.copy_(s->wk->weight.view({kv_heads, per, head_dim, d}).mean(1).reshape({kv_heads * head_dim, d}));
  wv->weight.copy_(s->wv->weight.view({kv_heads, per, head_dim, d}).mean(1).reshape({kv_heads * head_dim, d}));
}

CustomMaskAttention::CustomMaskAttention(const ModelConfig& cfg, LayerSpec spec, const Positions* pos)
    : StandardAttention(cfg, std::move(spec), pos, cfg.n_head) {
  const CustomMask& m = spec_.mask;
  if (!m.empty()) {
    std::vector<uint8_t> cells = m.cells;
    painted_ =
        torch::from_blob(cells.data(), {m.n, m.n}, torch::kUInt8).to(torch::kBool).tril();  // [n, n] causal-clipped
  }
}

torch::Tensor CustomMaskAttention::allowed(const torch::Tensor& qpos, const torch::Tensor& kpos, bool cross_kv) const {
  auto causal = StandardAttention::allowed(qpos, kpos, cross_kv);  // [T, S] j <= i
  if (!painted_.defined()) return causal;
  const int64_t n = painted_.size(0);
  auto paint = painted_.to(qpos.device());
  auto rows = paint.index_select(0, qpos.clamp_max(n - 1)).index_select(1, kpos.clamp_max(n - 1));  // [T, S]
  auto inside = (qpos < n).unsqueeze(1) & (kpos < n).unsqueeze(0);                                  // [T, S]
  return torch::where(inside, rows & causal, causal);                                               // [T, S]
}

int64_t layer_index_of(const ModelConfig& cfg, const LayerSpec& spec) {
  // The GPT passes the entries of its own config's layer list; a spec from elsewhere is layer 0.
  for (size_t l = 0; l < cfg.layers.size(); ++l)
    if (&cfg.layers[l] == &spec) return static_cast<int64_t>(l);
  return 0;
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

std::shared_ptr<AttentionLayer> make_attention(const ModelConfig& cfg, const LayerSpec& spec, const Positions* pos) {
  const std::string& n = spec.variant;
  if (n == "mha" || n == "cross") return std::make_shared<StandardAttention>(cfg, spec, pos, cfg.n_head);
  if (n == "custom") return std::make_shared<CustomMaskAttention>(cfg, spec, pos);
  if (n == "mqa") return std::make_shared<StandardAttention>(cfg, spec, pos, 1);
  if (n == "gqa") {
    auto g = static_cast<int64_t>(spec.params.at("groups"));
    return std::make_shared<StandardAttention>(cfg, spec, pos, g);
  }
  if (auto a = make_masked_attention(cfg, spec, pos)) return a;
  if (auto a = make_kernel_attention(cfg, spec, pos)) return a;
  throw Error("variant '" + n + "' is in the registry but has no implementation");
}

// ---------------------------------------------------------------------------------------------- model

namespace {
thread_local bool t_skip_draws = false;  // SkipWeightDraws
}  // namespace

SkipWeightDraws::SkipWeightDraws() : before(t_skip_draws) { t_skip_draws = true; }
SkipWeightDraws::~SkipWeightDraws() { t_skip_draws = before; }

LinearImpl::LinearImpl(int64_t in, int64_t out) {
  weight = register_parameter("weight", t_skip_draws ? torch::zeros({out, in}) : torch::empty({out, in}));  // [out, in]
  if (!t_skip_draws) torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));  // as torch::nn::Linear's reset
}

torch::Tensor LinearImpl::forward(const torch::Tensor& x) { return torch::nn::functional::linear(x, weight); }

RMSNormImpl::RMSNormImpl(int64_t d, double e) : eps(e) { weight = register_parameter("weight", torch::ones({d})); }

torch::Tensor RMSNormImpl::forward(const torch::Tensor& x) {
  const bool grad = torch::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad());
  if (grad || !x.device().is_cpu() || x.scalar_type() != torch::kFloat || weight.scalar_type() != torch::kFloat)
    return x * torch::rsqrt(x.pow(2).mean(-1, true) + eps) * weight;  // [B, T, d]
  // Inference on the CPU: one pass per row, the squares summed in eight float lanes. LibTorch's six ops above cost
  // more in dispatch and temporaries than in arithmetic at the window's sizes (9 norms of [1, T, 128] per forward).
  const auto xc = x.contiguous();      // [B, T, d]
  const auto w = weight.contiguous();  // [d]
  auto y = torch::empty_like(xc);      // [B, T, d]
  const int64_t d = xc.size(-1), rows = d > 0 ? xc.numel() / d : 0;
  const float *xp = xc.data_ptr<float>(), *wp = w.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = xp + r * d;  // [d]
    float part[8] = {};            // eight running sums (the compiler keeps them in one vector register)
    int64_t j = 0;
    for (; j + 8 <= d; j += 8)
      for (int u = 0; u < 8; ++u) part[u] += xr[j + u] * xr[j + u];
    double ss = 0;
    for (int u = 0; u < 8; ++u) ss += part[u];
    for (; j < d; ++j) ss += double(xr[j]) * xr[j];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / double(d) + eps));  // rsqrt(mean(x^2) + eps)
    for (int64_t e = 0; e < d; ++e) yp[r * d + e] = xr[e] * inv * wp[e];
  }
  return y;
}

MoEImpl::MoEImpl(int64_t d, int64_t hidden, int64_t n, int64_t top_k) : n_experts(n), k(top_k) {
  router = register_module("router", Linear(d, n));
  experts = register_module("experts", torch::nn::ModuleList());
  for (int64_t e = 0; e < n; ++e)
    experts->push_back(torch::nn::Sequential(Linear(d, hidden), torch::nn::GELU(), Linear(hidden, d)));
}

MoEOutput MoEImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), T = x.size(1), d = x.size(2), N = B * T;
  auto flat = x.reshape({N, d});                          // [N, d]
  auto probs = torch::softmax(router(flat), -1);          // [N, E]
  auto top = probs.topk(k, -1);                           // most probable first
  auto gates = std::get<0>(top), idx = std::get<1>(top);  // [N, k] each
  // combine[n, e] = p_e(x_n) when e is one of token n's k experts, else 0.
  auto combine = torch::zeros_like(probs).scatter(1, idx, gates);  // [N, E]
  // Every expert runs on every token as one wide matmul and unselected experts are weighted 0: with experts
  // 1/E as wide as the dense MLP this costs exactly one dense MLP, and on the CPU it is much faster than
  // gathering each expert's tokens. The result (and every gradient) is that of sparse top-k dispatch.
  std::vector<torch::Tensor> w1, w2;
  for (const auto& e : *experts) {
    auto& seq = *e->as<torch::nn::SequentialImpl>();
    w1.push_back(seq[0]->as<LinearImpl>()->weight);  // [h, d]
    w2.push_back(seq[2]->as<LinearImpl>()->weight);  // [d, h]
  }
  const int64_t h = w1[0].size(0);
  auto hidden = torch::gelu(torch::matmul(flat, torch::cat(w1, 0).t()));                       // [N, E h]
  hidden = (hidden.view({N, n_experts, h}) * combine.unsqueeze(-1)).view({N, n_experts * h});  // [N, E h]
  auto y = torch::matmul(hidden, torch::cat(w2, 1).t());                                       // [N, d]
  // Switch Transformer: f_e = share of the N k assignments that went to e, P_e = mean router probability of e.
  auto assigned = torch::one_hot(idx, n_experts).to(probs.scalar_type());        // [N, k, E]
  auto f = assigned.sum(torch::IntArrayRef{0, 1}) / static_cast<double>(N * k);  // [E]
  auto P = probs.mean(0);                                                        // [E]
  MoEOutput o;
  o.y = y.view({B, T, d});
  o.aux = static_cast<double>(n_experts) * (f * P).sum();
  o.experts = idx.view({B, T, k});
  o.gates = gates.view({B, T, k});
  return o;
}

GPTImpl::GPTImpl(const ModelConfig& cfg, bool initialise) : cfg_(cfg) {
  std::optional<SkipWeightDraws> no_draws;  // weights about to be copied in: none drawn
  if (!initialise) no_draws.emplace();
  cfg_.validate();
  for (auto& l : cfg_.layers) causal_clip(l.mask);  // painted masks never reach the future (and save as used)
  positions = std::make_unique<Positions>(cfg_);
  const int64_t d = cfg_.d_model;
  tok = register_module("tok", torch::nn::Embedding(cfg_.vocab_size, d));
  if (cfg_.position == PosKind::Learned) pos_emb = register_parameter("pos_emb", torch::zeros({cfg_.context, d}));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t l = 0; l < cfg_.n_layer; ++l) {
    Block b;
    norm1.push_back(b->register_module("norm1", RMSNorm(d, cfg_.norm_eps)));
    attn.push_back(
        b->register_module("attn", make_attention(cfg_, cfg_.layers[static_cast<size_t>(l)], positions.get())));
    norm2.push_back(b->register_module("norm2", RMSNorm(d, cfg_.norm_eps)));
    layers->push_back(b);
    if (cfg_.moe_experts > 0)
      moe.push_back(b->register_module("mlp", MoE(d, cfg_.expert_hidden(), cfg_.moe_experts, cfg_.moe_k)));
    else
      mlp.push_back(b->register_module("mlp", torch::nn::Sequential(Linear(d, cfg_.mlp_ratio * d), torch::nn::GELU(),
                                                                    Linear(cfg_.mlp_ratio * d, d))));
  }
  norm_f = register_module("norm_f", RMSNorm(d, cfg_.norm_eps));
  attn_out_bias.resize(size_t(cfg_.n_layer));  // none: only knock_out sets them
  if (initialise) init_parameters();
  for (auto& a : attn) a->init_fixed_parameters();
}

void GPTImpl::init_parameters() {
  // GPT-2 initialisation: N(0, 0.02), residual output projections scaled by 1/sqrt(2 L).
  torch::NoGradGuard ng;
  const double resid = 0.02 / std::sqrt(2.0 * static_cast<double>(cfg_.n_layer));
  for (auto& p : named_parameters()) {
    const std::string& k = p.key();
    if (k.find("norm") != std::string::npos) continue;
    const bool expert_out = k.find(".mlp.experts.") != std::string::npos && k.size() > 9 &&
                            k.compare(k.size() - 9, 9, ".2.weight") == 0;  // mlp.experts.<e>.2.weight
    bool out_proj = k.find(".wo.") != std::string::npos || k.find("mlp.2.") != std::string::npos || expert_out;
    p.value().normal_(0.0, out_proj ? resid : 0.02);
  }
}

bool GPTImpl::has_cross() const {
  for (const auto& l : cfg_.layers)
    if (get_variant(l.variant).needs_kv_text) return true;
  return false;
}

// x += y, in place when no gradient is recorded: the residual stream is this forward's own tensor (the embedding's
// output or an earlier sum; the layers read it through their norms' new tensors), so nothing else holds it then.
static void residual(torch::Tensor& x /*[B, T, d]*/, const torch::Tensor& y /*[B, T, d]*/) {
  if (!torch::GradMode::is_enabled() && x.sizes() == y.sizes() && x.scalar_type() == y.scalar_type())
    x.add_(y);
  else
    x = x + y;
}

ForwardResult GPTImpl::forward(const torch::Tensor& tokens, const ForwardOptions& opt) {
  const int64_t T = tokens.size(1);
  auto x = tok(tokens);  // [B, T, d]
  if (cfg_.position == PosKind::Learned) {
    if (opt.pos0 + T > cfg_.context)
      throw Error("learned positions stop at the context (" + std::to_string(cfg_.context) + "): position " +
                  std::to_string(opt.pos0 + T - 1) + " has no embedding");
    x = x + pos_emb.narrow(0, opt.pos0, T);  // [B, T, d]
  }
  ForwardResult r;
  r.aux_loss = torch::zeros({}, x.options());  // scalar
  for (size_t l = 0; l < attn.size(); ++l) {
    AttnCall c;
    c.x = norm1[l](x);  // [B, T, d]
    if (opt.record_inputs) opt.record_inputs->push_back(c.x);
    c.pos0 = opt.pos0;
    c.want_display = opt.want_display;
    if (opt.kv_sources && l < opt.kv_sources->size()) c.kv_source = (*opt.kv_sources)[l];
    if (opt.caches) c.cache = (*opt.caches)[l].get();
    if (opt.display_into && l < opt.display_into->size()) c.display_into = (*opt.display_into)[l];
    AttnResult a = attn[l]->forward(c);
    if (c.cache) c.cache->seen += T;
    residual(x, attn_residual(l, a.out));  // [B, T, d]
    if (moe.empty()) {
      residual(x, mlp[l]->forward(norm2[l](x)));  // [B, T, d]
    } else {
      MoEOutput m = moe[l]->forward(norm2[l](x));
      x = x + m.y;  // [B, T, d]
      r.aux_loss = r.aux_loss + m.aux;
      if (opt.want_routing) {
        r.routing.push_back(m.experts);      // [B, T, k]
        r.routing_gates.push_back(m.gates);  // [B, T, k]
      }
    }
    if (opt.want_display) {
      r.display.push_back(a.display);
      r.mask.push_back(a.mask);
      r.display_placed.push_back(a.display_placed);
    }
  }
  r.logits = torch::matmul(norm_f(x), tok->weight.t());  // [B, T, V] (tied head)
  return r;
}

std::vector<std::unique_ptr<LayerCache>> GPTImpl::new_caches(int64_t batch, int64_t capacity) const {
  std::vector<std::unique_ptr<LayerCache>> c;
  for (const auto& a : attn) c.push_back(a->new_cache(batch, capacity, device()));
  return c;
}

std::vector<torch::Tensor> GPTImpl::kv_sources(const torch::Tensor& kv_tokens) {
  std::vector<torch::Tensor> rec;
  ForwardOptions o;
  o.record_inputs = &rec;
  forward(kv_tokens, o);
  return rec;
}

// Layer `to` takes every weight of `from` as it is: the same parameter names and shapes.
static bool same_shapes(AttentionLayer& from, AttentionLayer& to) {
  auto sp = from.named_parameters(), tp = to.named_parameters();
  if (sp.size() != tp.size()) return false;
  for (auto& p : tp) {
    const torch::Tensor* s = sp.find(p.key());
    if (!s || s->sizes() != p.value().sizes()) return false;
  }
  return true;
}

bool copies_every_weight(GPTImpl& from, GPTImpl& to) {
  if (from.attn.size() != to.attn.size()) return false;
  for (size_t l = 0; l < to.attn.size(); ++l)
    if (!same_shapes(*from.attn[l], *to.attn[l])) return false;
  return true;
}

std::string transfer_weights(GPTImpl& from, GPTImpl& to) {
  torch::NoGradGuard ng;
  auto src = from.named_parameters();
  for (auto& p : to.named_parameters()) {
    if (p.key().find(".attn.") != std::string::npos) continue;
    const torch::Tensor* s = src.find(p.key());
    if (!s || s->sizes() != p.value().sizes())
      throw Error("cannot transfer weights: '" + p.key() + "' differs between the two models");
    p.value().copy_(*s);
  }
  std::string mode = "trained";
  for (size_t l = 0; l < to.attn.size(); ++l) {
    const std::string& a = from.attn[l]->spec().variant;
    const std::string& b = to.attn[l]->spec().variant;
    if (a != b) mode = "converted from " + a;
    if (same_shapes(*from.attn[l], *to.attn[l])) {
      auto sp = from.attn[l]->named_parameters();
      for (auto& p : to.attn[l]->named_parameters()) p.value().copy_(*sp.find(p.key()));
    } else {
      if (a == b) mode = "converted from " + a;  // same variant, weight-changing parameter moved
      to.attn[l]->convert_from(*from.attn[l]);
    }
  }
  return mode;
}

torch::Tensor lm_loss(GPTImpl& model, const torch::Tensor& tokens, torch::Tensor* aux) {
  const int64_t T = tokens.size(1) - 1;
  auto in = tokens.narrow(1, 0, T), target = tokens.narrow(1, 1, T);  // [B, T] each
  ForwardResult r = model.forward(in);
  if (aux) *aux = r.aux_loss;
  auto& logits = r.logits;  // [B, T, V]
  return F::cross_entropy(logits.reshape({-1, logits.size(-1)}), target.reshape({-1}));
}

}  // namespace attnscope
