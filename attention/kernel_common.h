#pragma once
// Shared by the kernel-family translation units (kernel.cpp, low_rank.cpp): head splitting, positions, the
// projections of an MHA-shaped layer (cached or not), the exact reference and the common result packing. Shapes:
// B batch, T queries, S keys, H heads, d model width, d_h head width.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "engine_impl.h"
#include "error.h"
#include "kernel.h"

namespace attnscope::kernel_detail {

namespace F = torch::nn::functional;

inline constexpr double kLinearEps = 1e-6;

// sum_{j < n} x_j in eight running sums (the compiler keeps them in one vector register).
inline float row_sum(const float* x, int64_t n) {
  float part[8] = {};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int u = 0; u < 8; ++u) part[u] += x[j + u];
  float sum = 0;
  for (; j < n; ++j) sum += x[j];
  for (float p : part) sum += p;
  return sum;
}

// A display row written once: dst[j] = src[j] w for j < n, then zeros up to `width`.
inline void scaled_row(float* dst, const float* src, int64_t n, float w, int64_t width) {
  for (int64_t j = 0; j < n; ++j) dst[j] = src[j] * w;
  std::fill(dst + n, dst + width, 0.0f);
}

// linear_chunk's display forward by query rows (linear_rows.cpp): CPU fp32 contiguous inputs, no gradient, no earlier
// keys in the display (a fresh state or one without history). Fills r (out, display: display_into when it fits, then
// r.placed) and returns true; false when it does not apply (nothing done). The state is not advanced.
bool linear_rows(const torch::Tensor& phi_q /*[B, H, T, m]*/, const torch::Tensor& phi_k /*[B, H, T, m]*/,
                 const torch::Tensor& v /*[B, H, T, d_v]*/, double eps, const LinearState& st,
                 const torch::Tensor& display_into /*[B, H, T, P] or undefined*/, LinearChunk& r);
inline const double kInf = std::numeric_limits<double>::infinity();

inline torch::Tensor split_heads(const torch::Tensor& x /*[B, T, H * e]*/, int64_t h) {
  return x.view({x.size(0), x.size(1), h, -1}).transpose(1, 2);  // [B, H, T, e]
}
inline torch::Tensor merge_heads(const torch::Tensor& x /*[B, H, T, e]*/) {
  return x.transpose(1, 2).reshape({x.size(0), x.size(2), -1});  // [B, T, H * e]
}
inline torch::Tensor positions(int64_t from, int64_t n, const torch::Tensor& like) {
  return torch::arange(from, from + n, torch::TensorOptions().dtype(torch::kLong).device(like.device()));  // [n]
}
inline torch::Tensor causal_allow(const torch::Tensor& qpos /*[T]*/, const torch::Tensor& kpos /*[S]*/) {
  return causal_allow_shared(qpos, kpos);  // [T, S] j <= i
}
inline torch::Tensor rms(const torch::Tensor& x /*[.., e]*/, const torch::Tensor& w /*[e]*/, double eps) {
  return x * torch::rsqrt(x.pow(2).mean(-1, true) + eps) * w;  // [.., e]
}
inline std::string non_causal_message(const std::string& variant, const char* why) {
  return variant + " is non-causal: sees future tokens (" + why +
         "), so it cannot decode; it is shown for teaching only";
}

// Queries, keys and values of an MHA-shaped layer for x [B, T, d] at positions pos0.., rotated by the model's RoPE.
struct Qkv {
  torch::Tensor q, k, v;  // [B, H, T, d_h] each
  torch::Tensor pos;      // [T]
};
inline Qkv project(const StandardAttention& a, const Positions& p, const torch::Tensor& x, int64_t pos0) {
  Qkv r;
  r.pos = positions(pos0, x.size(1), x);
  r.q = p.rotate(split_heads(F::linear(x, a.wq->weight), a.n_head), r.pos);
  r.k = p.rotate(split_heads(F::linear(x, a.wk->weight), a.n_head), r.pos);
  r.v = split_heads(F::linear(x, a.wv->weight), a.n_head);
  return r;
}

// project() for a KV-cached self-attention step: k, v and kpos cover the cache after appending the new tokens.
struct CachedQkv {
  torch::Tensor q;           // [B, H, T, d_h]
  torch::Tensor k, v;        // [B, H, S, d_h]
  torch::Tensor qpos, kpos;  // [T], [S]
};
inline CachedQkv project_cached(const StandardAttention& a, const Positions& p, const AttnCall& c) {
  Qkv n = project(a, p, c.x, c.pos0);
  CachedQkv r{n.q, n.k, n.v, n.pos, n.pos};
  if (c.cache) {
    auto* kc = dynamic_cast<KVCache*>(c.cache);
    if (!kc) throw Error("internal: wrong cache type for " + a.spec().variant);
    kc->append(n.k, n.v);
    r.k = kc->keys();    // [B, H, S, d_h]
    r.v = kc->values();  // [B, H, S, d_h]
    const int64_t T = c.x.size(1);
    r.kpos = positions(c.pos0 + T - r.k.size(2), r.k.size(2), c.x);  // [S]
  }
  return r;
}

inline torch::Tensor exact_reference(const StandardAttention& a, const Positions& p, const torch::Tensor& x) {
  Qkv n = project(a, p, x, 0);
  return causal_softmax(n.q, n.k, n.pos, n.pos, p.score_bias(n.pos, n.pos),
                        1.0 / std::sqrt(static_cast<double>(a.head_dim)));  // [B, H, T, T]
}

inline AttnResult finish(const Linear& wo, const torch::Tensor& heads /*[B, H, T, d_v]*/, bool want,
                         const torch::Tensor& display /*[B, H, T, S]*/, const torch::Tensor& allow /*[T, S]*/,
                         int64_t h) {
  AttnResult r;
  r.out = F::linear(merge_heads(heads), wo->weight);  // [B, T, d]
  if (want) {
    r.display = display;
    r.mask = allow.unsqueeze(0).expand({h, allow.size(0), allow.size(1)});  // [H, T, S]
    r.heads = heads;
  }
  return r;
}

}  // namespace attnscope::kernel_detail
