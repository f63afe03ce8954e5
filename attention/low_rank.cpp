// The low-rank family's implementations (docs/variants.md#family-low-rank): Linformer (projected keys and values,
// with a causal form), Nystrom (landmarks) and multi-head latent attention (MLA). Shapes are noted on every
// tensor: B batch, T queries, S keys, H heads, d model width, d_h head width, k projected rows or landmarks.
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "engine_impl.h"
#include "error.h"
#include "flash.h"
#include "kernel.h"
#include "kernel_common.h"

namespace attnscope {

using namespace kernel_detail;

// ---------------------------------------------------------------------------------------------- linformer

LinformerAttention::LinformerAttention(const ModelConfig& cfg, LayerSpec spec, const Positions* pos, bool is_causal)
    : StandardAttention(cfg, std::move(spec), pos, cfg.n_head),
      causal(is_causal),
      slots(static_cast<int64_t>(param("k"))) {
  // The fixed-projection option of the paper: E, F ~ N(0, 1/k), drawn once (seeded), not trained.
  auto opt = torch::TensorOptions().dtype(torch::kDouble);
  auto ge = at::detail::createCPUGenerator(1), gf = at::detail::createCPUGenerator(2);
  const double sd = 1.0 / std::sqrt(static_cast<double>(slots));
  e = register_buffer("e", (torch::randn({cfg.context, slots}, ge, opt) * sd).to(torch::kFloat));  // [n, k]
  f = register_buffer("f", (torch::randn({cfg.context, slots}, gf, opt) * sd).to(torch::kFloat));  // [n, k]
}

AttnResult LinformerAttention::forward(const AttnCall& c) {
  const int64_t T = c.x.size(1);
  if (c.pos0 + T > e.size(0))
    throw Error(spec_.variant + ": the projections cover " + std::to_string(e.size(0)) + " positions (the context)");
  Qkv n = project(*this, *pos_, c.x, c.pos0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  auto es = e.narrow(0, c.pos0, T), fs = f.narrow(0, c.pos0, T);  // [T, k] rows of these positions
  if (!causal) {
    auto kt = torch::matmul(es.t(), n.k);  // [B, H, k, d_h] E^T K (every position)
    auto vt = torch::matmul(fs.t(), n.v);  // [B, H, k, d_h] F^T V
    auto p = torch::softmax(torch::matmul(n.q, kt.transpose(-2, -1)) * scale, -1);  // [B, H, T, k]
    auto all = torch::ones({T, T}, c.x.options().dtype(torch::kBool));              // [T, T] every pair
    return finish(wo, torch::matmul(p, vt), c.want_display, c.want_display ? torch::matmul(p, fs.t()) : torch::Tensor(),
                  all, n_head);  // display P F^T
  }
  // Causal: query i sees the prefix projections K~_i = sum_{j<=i} E_j k_j (plus the cached slots), so its
  // scores are [tril(Q K^T) E]_i and its output sum_s P_is V~_is = [tril(P F^T) V]_i.
  auto* pc = dynamic_cast<ProjectedCache*>(c.cache);
  if (c.cache && !pc) throw Error("internal: wrong cache type for " + spec_.variant);
  auto s = torch::matmul(torch::matmul(n.q, n.k.transpose(-2, -1)).tril(), es);  // [B, H, T, k]
  if (pc) s = s + torch::matmul(n.q, pc->k.transpose(-2, -1));
  // Slot s has support for query i once some j <= i has E_js != 0.
  auto support = (e.narrow(0, 0, c.pos0 + T) != 0).cumsum(0).narrow(0, c.pos0, T) > 0;  // [T, k]
  auto p = masked_softmax(s * scale, support);                                          // [B, H, T, k]
  auto w = torch::matmul(p, fs.t()).tril();  // [B, H, T, T] the effective weights on this chunk's values
  auto o = torch::matmul(w, n.v);            // [B, H, T, d_h]
  if (pc) {
    o = o + torch::matmul(p, pc->v);
    pc->k.add_(torch::matmul(es.t(), n.k));  // [B, H, k, d_h]
    pc->v.add_(torch::matmul(fs.t(), n.v));  // [B, H, k, d_h]
  }
  return finish(wo, o, c.want_display, w, causal_allow(n.pos, n.pos), n_head);
}

std::unique_ptr<LayerCache> LinformerAttention::new_cache(int64_t batch, int64_t, torch::Device dev) const {
  if (!causal)
    throw Error(non_causal_message(spec_.variant, "its projection along the sequence mixes later tokens in"));
  auto pc = std::make_unique<ProjectedCache>();
  auto opt = torch::TensorOptions().dtype(wq->weight.dtype()).device(dev);
  pc->k = torch::zeros({batch, n_head, slots, head_dim}, opt);  // [B, H, k, d_h]
  pc->v = torch::zeros({batch, n_head, slots, head_dim}, opt);  // [B, H, k, d_h]
  return pc;
}

int64_t LinformerAttention::cache_formula_bytes(int64_t, int64_t b) const {
  return causal ? 2 * n_head * slots * head_dim * b : 0;  // 2 H k d_h b, constant
}

torch::Tensor LinformerAttention::exact_display(const torch::Tensor& x) const {
  return exact_reference(*this, *pos_, x);
}

// ---------------------------------------------------------------------------------------------- nystrom

torch::Tensor iterative_pinv(const torch::Tensor& a, int64_t iterations) {
  const int64_t m = a.size(-1);
  auto n1 = a.abs().sum(-2).amax(-1, true).unsqueeze(-1);    // [.., 1, 1] max column sum
  auto ninf = a.abs().sum(-1).amax(-1, true).unsqueeze(-1);  // [.., 1, 1] max row sum
  auto z = a.transpose(-2, -1) / (n1 * ninf);                // [.., m, m] Z0
  auto eye = torch::eye(m, a.options());                     // [m, m]
  for (int64_t i = 0; i < iterations; ++i) {
    auto az = torch::matmul(a, z);  // [.., m, m]
    z = 0.25 * torch::matmul(z, 13 * eye - torch::matmul(az, 15 * eye - torch::matmul(az, 7 * eye - az)));
  }
  return z;
}

NystromAttention::NystromAttention(const ModelConfig& cfg, LayerSpec spec, const Positions* pos)
    : StandardAttention(cfg, std::move(spec), pos, cfg.n_head),
      landmarks(static_cast<int64_t>(param("landmarks"))),
      iterations(static_cast<int64_t>(param("pinv_iterations"))),
      exact_pinv(param("exact_pinv") != 0) {}

AttnResult NystromAttention::forward(const AttnCall& c) {
  const int64_t T = c.x.size(1), m = std::min(landmarks, T);
  Qkv n = project(*this, *pos_, c.x, c.pos0);
  // Segment means: segment s covers [floor(s T / m), floor((s + 1) T / m)).
  auto pool = torch::zeros({m, T}, torch::kDouble);  // [m, T]
  for (int64_t s = 0; s < m; ++s) {
    const int64_t a = s * T / m, b = (s + 1) * T / m;
    pool[s].narrow(0, a, b - a).fill_(1.0 / static_cast<double>(b - a));
  }
  pool = pool.to(c.x.device());
  // In double: the pseudo-inverse of a nearly singular kernel has large entries.
  auto q = n.q.to(torch::kDouble), k = n.k.to(torch::kDouble), v = n.v.to(torch::kDouble);  // [B, H, T, d_h]
  auto ql = torch::matmul(pool, q), kl = torch::matmul(pool, k);                            // [B, H, m, d_h] landmarks
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  auto k1 = torch::softmax(torch::matmul(q, kl.transpose(-2, -1)) * scale, -1);   // [B, H, T, m]
  auto k2 = torch::softmax(torch::matmul(ql, kl.transpose(-2, -1)) * scale, -1);  // [B, H, m, m]
  auto k3 = torch::softmax(torch::matmul(ql, k.transpose(-2, -1)) * scale, -1);   // [B, H, m, T]
  auto z = exact_pinv ? torch::linalg_pinv(k2) : iterative_pinv(k2, iterations);  // [B, H, m, m]
  auto left = torch::matmul(k1, z);                                               // [B, H, T, m]
  auto o = torch::matmul(left, torch::matmul(k3, v)).to(c.x.dtype());             // [B, H, T, d_h]
  auto all = torch::ones({T, T}, c.x.options().dtype(torch::kBool));              // [T, T]
  return finish(wo, o, c.want_display, c.want_display ? torch::matmul(left, k3).to(c.x.dtype()) : torch::Tensor(), all,
                n_head);
}

std::unique_ptr<LayerCache> NystromAttention::new_cache(int64_t, int64_t, torch::Device) const {
  throw Error(non_causal_message(spec_.variant, "its landmarks are means over segments that reach later tokens"));
}

int64_t NystromAttention::cache_formula_bytes(int64_t, int64_t) const { return 0; }

torch::Tensor NystromAttention::exact_display(const torch::Tensor& x) const { return exact_reference(*this, *pos_, x); }

// ---------------------------------------------------------------------------------------------- mla

int64_t LatentCache::bytes() const {
  return len * c.size(0) * (c.size(2) + kr.size(2)) * static_cast<int64_t>(c.element_size());
}

std::vector<int64_t> LatentCache::held_positions() const {
  std::vector<int64_t> p(static_cast<size_t>(len));
  for (int64_t i = 0; i < len; ++i) p[static_cast<size_t>(i)] = seen - len + i;
  return p;
}

MlaAttention::MlaAttention(const ModelConfig& cfg, LayerSpec spec, const Positions* pos)
    : AttentionLayer(cfg, std::move(spec), pos),
      n_head(cfg.n_head),
      head_dim(cfg.head_dim()),
      rank(static_cast<int64_t>(param("rank"))),
      rope_dims(static_cast<int64_t>(param("rope_dims"))),
      q_rank(static_cast<int64_t>(param("q_rank"))),
      content_rope(param("content_rope") != 0),
      latent_norm(param("latent_norm") != 0) {
  if (rope_dims % 2 != 0) throw Error("mla: rope_dims = " + std::to_string(rope_dims) + " must be even (RoPE pairs)");
  const int64_t d = cfg.d_model, hd = n_head * head_dim;
  auto lin = [&](const char* name, int64_t in, int64_t out) { return register_module(name, Linear(in, out)); };
  w_dkv = lin("w_dkv", d, rank);
  w_uk = lin("w_uk", rank, hd);
  w_uv = lin("w_uv", rank, hd);
  w_dq = lin("w_dq", d, q_rank);
  w_uq = lin("w_uq", q_rank, hd);
  if (rope_dims > 0) {
    w_qr = lin("w_qr", q_rank, n_head * rope_dims);
    w_kr = lin("w_kr", d, rope_dims);
  }
  wo = lin("wo", hd, d);
  if (latent_norm) {
    kv_norm = register_module("kv_norm", RMSNorm(rank, cfg.norm_eps));
    q_norm = register_module("q_norm", RMSNorm(q_rank, cfg.norm_eps));
  }
  rope_r.kind = PosKind::Rope;
  rope_r.rot_dims = rope_dims;
  rope_r.theta = cfg.rope_theta;
}

bool MlaAttention::absorbable() const { return !(content_rope && pos_->kind == PosKind::Rope && pos_->rot_dims > 0); }

torch::Tensor MlaAttention::latent(const torch::Tensor& x) const {
  auto c = F::linear(x, w_dkv->weight);  // [B, T, d_c]
  return latent_norm ? rms(c, kv_norm->weight, kv_norm->eps) : c;
}

AttnResult MlaAttention::forward(const AttnCall& c) {
  const int64_t T = c.x.size(1);
  auto qpos = positions(c.pos0, T, c.x);   // [T]
  auto cl = latent(c.x);                   // [B, T, d_c]
  auto cq = F::linear(c.x, w_dq->weight);  // [B, T, d_cq]
  if (latent_norm) cq = rms(cq, q_norm->weight, q_norm->eps);
  auto q = split_heads(F::linear(cq, w_uq->weight), n_head);  // [B, H, T, d_h]
  if (content_rope) q = pos_->rotate(q, qpos);
  torch::Tensor qr, kr;  // [B, H, T, d_R], [B, 1, T, d_R] (d_R > 0)
  if (rope_dims > 0) {
    qr = rope_r.rotate(split_heads(F::linear(cq, w_qr->weight), n_head), qpos);
    kr = rope_r.rotate(F::linear(c.x, w_kr->weight).unsqueeze(1), qpos);
  }
  torch::Tensor call = cl, krall = kr;  // [B, S, d_c], [B, 1, S, d_R]
  auto* lc = dynamic_cast<LatentCache*>(c.cache);
  if (c.cache && !lc) throw Error("internal: wrong cache type for mla");
  if (lc) {
    if (lc->len + T > lc->c.size(1))
      throw Error("MLA cache full: " + std::to_string(lc->len + T) + " tokens for a capacity of " +
                  std::to_string(lc->c.size(1)));
    lc->c.narrow(1, lc->len, T).copy_(cl);
    if (rope_dims > 0) lc->kr.narrow(1, lc->len, T).copy_(kr.squeeze(1));
    lc->len += T;
    call = lc->c.narrow(1, 0, lc->len);
    if (rope_dims > 0) krall = lc->kr.narrow(1, 0, lc->len).unsqueeze(1);
  }
  const int64_t S = call.size(1);
  auto kpos = positions(c.pos0 + T - S, S, c.x);  // [S]
  const bool absorbed = lc && absorbable();
  auto wuk = w_uk->weight.view({n_head, head_dim, rank});  // [H, d_h, d_c]
  auto wuv = w_uv->weight.view({n_head, head_dim, rank});  // [H, d_h, d_c]
  // Per head, scores over keys k_j with values v_j: absorbed, k_j = v_j = c_j shared by every head (one key/value
  // head) under queries q~ = W_UK^T q; else each head's own k = W_UK c and v = W_UV c. The decoupled RoPE part
  // q_R . k_R joins the dot products as extra dimensions (one k_R shared by every head).
  torch::Tensor qs, ks, vs;  // [B, H, T, e], [B, 1 or H, S, e], [B, 1 or H, S, d_c or d_h]
  if (absorbed) {
    qs = torch::matmul(q, wuk);   // [B, H, T, d_c] q~ = W_UK^T q
    ks = vs = call.unsqueeze(1);  // [B, 1, S, d_c]
  } else {
    ks = split_heads(F::linear(call, w_uk->weight), n_head);  // [B, H, S, d_h]
    if (content_rope) ks = pos_->rotate(ks, kpos);
    qs = q;
    vs = split_heads(F::linear(call, w_uv->weight), n_head);  // [B, H, S, d_h]
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim + rope_dims));
  const auto allow = causal_allow(qpos, kpos);  // [T, S]
  torch::Tensor p, o;                           // [B, H, T, S], [B, H, T, d_c or d_h]
  bool placed = false;                          // p is c.display_into
  if (flash::applies(qs, ks, vs)) {  // inference: the fused kernel (flash.h), the display's rows over j <= i only
    if (rope_dims > 0) {
      qs = torch::cat({qs, qr}, -1);                                                    // [B, H, T, e + d_R]
      ks = torch::cat({ks, krall.expand({ks.size(0), ks.size(1), S, rope_dims})}, -1);  // [B, 1 or H, S, e + d_R]
    }
    flash::Options fo;
    fo.scale = scale;
    if (pos_->kind == PosKind::Alibi) fo.alibi = pos_->alibi_slopes;
    fo.want_probs = c.want_display;
    fo.probs_into = c.display_into;
    flash::Out f = flash::attention(qs, ks, vs, qpos, kpos, fo);
    o = f.out;
    p = f.probs;  // [B, H, T, S] (placed: [B, H, T, P] by key position)
    placed = f.probs_placed;
  } else {
    auto s = torch::matmul(qs, ks.transpose(-2, -1));                       // [B, H, T, S]
    if (rope_dims > 0) s = s + torch::matmul(qr, krall.transpose(-2, -1));  // + q_R . k_R
    s = s * scale;
    auto bias = pos_->score_bias(qpos, kpos);
    if (bias.defined()) s = s + bias;
    p = masked_softmax(s, allow);  // [B, H, T, S]
    o = torch::matmul(p, vs);      // [B, H, T, d_c or d_h]
  }
  if (absorbed) o = torch::matmul(o, wuv.transpose(-2, -1));  // [B, H, T, d_h] W_UV (sum_j p_j c_j)
  AttnResult r = finish(wo, o, c.want_display, p, allow, n_head);
  r.display_placed = placed;
  return r;
}

torch::Tensor MlaAttention::head_values(const torch::Tensor& x) const {
  return split_heads(F::linear(latent(x), w_uv->weight), n_head);  // [B, H, S, d_h]
}

std::unique_ptr<LayerCache> MlaAttention::new_cache(int64_t batch, int64_t capacity, torch::Device dev) const {
  auto lc = std::make_unique<LatentCache>();
  auto opt = torch::TensorOptions().dtype(w_dkv->weight.dtype()).device(dev);
  lc->c = torch::empty({batch, capacity, rank}, opt);        // [B, cap, d_c]
  lc->kr = torch::empty({batch, capacity, rope_dims}, opt);  // [B, cap, d_R]
  return lc;
}

int64_t MlaAttention::cache_formula_bytes(int64_t tokens, int64_t b) const { return (rank + rope_dims) * b * tokens; }

void MlaAttention::convert_from(const AttentionLayer& trained) {
  auto* s = dynamic_cast<const StandardAttention*>(&trained);
  if (!s || s->cross) return AttentionLayer::convert_from(trained);
  if (latent_norm)
    throw Error("mla: cannot convert from " + trained.spec().variant +
                " with latent_norm on (the RMS norm of the latent is not linear); use latent_norm=false");
  torch::NoGradGuard ng;
  const int64_t d = cfg_.d_model, hd = n_head * head_dim, rep = n_head / s->kv_heads;
  auto heads_of = [&](const torch::Tensor& w) {  // [Hkv d_h, d] -> [H d_h, d] (GQA: each kv head per query head)
    return w.view({s->kv_heads, head_dim, d}).repeat_interleave(rep, 0).reshape({hd, d}).to(torch::kDouble);
  };
  // [W_K; W_V] = U diag(S) V^T, kept at rank d_c: W_DKV = V^T, [W_UK; W_UV] = U diag(S).
  auto joint = torch::cat({heads_of(s->wk->weight), heads_of(s->wv->weight)}, 0);  // [2 H d_h, d]
  auto [u, sv, vh] = torch::linalg_svd(joint, false);                              // [2 H d_h, r0], [r0], [r0, d]
  const int64_t r = std::min(rank, sv.size(0));
  auto us = u.narrow(1, 0, r) * sv.narrow(0, 0, r);  // [2 H d_h, r]
  for (auto* w : {&w_dkv->weight, &w_uk->weight, &w_uv->weight, &w_dq->weight, &w_uq->weight}) w->zero_();
  w_dkv->weight.narrow(0, 0, r).copy_(vh.narrow(0, 0, r));
  w_uk->weight.narrow(1, 0, r).copy_(us.narrow(0, 0, hd));
  w_uv->weight.narrow(1, 0, r).copy_(us.narrow(0, hd, hd));
  // W_Q likewise at rank d_cq; scaled so that 1/sqrt(d_h + d_R) gives MHA's 1/sqrt(d_h).
  auto [uq, sq, vqh] = torch::linalg_svd(s->wq->weight.to(torch::kDouble), false);  // [H d_h, r1], [r1], [r1, d]
  const int64_t rq = std::min(q_rank, sq.size(0));
  const double fix = std::sqrt(static_cast<double>(head_dim + rope_dims) / static_cast<double>(head_dim));
  w_dq->weight.narrow(0, 0, rq).copy_(vqh.narrow(0, 0, rq));
  w_uq->weight.narrow(1, 0, rq).copy_(uq.narrow(1, 0, rq) * sq.narrow(0, 0, rq) * fix);
  if (rope_dims > 0) {  // the decoupled RoPE part starts silent
    w_qr->weight.zero_();
    w_kr->weight.zero_();
  }
  wo->weight.copy_(s->wo->weight);
}

}  // namespace attnscope
