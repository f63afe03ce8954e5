// The kernel feature maps, the tiled exact kernel and the structured family's implementations
// (docs/variants.md#family-kernel, #family-exact, #family-structured; the low-rank family is in low_rank.cpp).
// Shapes are noted on every tensor: B batch, T queries, S keys, H heads, d model width, d_h head width, m features or slots.
#include "kernel.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "engine_impl.h"
#include "error.h"
#include "flash.h"
#include "kernel_common.h"

namespace attnscope {

namespace F = torch::nn::functional;

using namespace kernel_detail;

// ---------------------------------------------------------------------------------------------- shared math

torch::Tensor causal_softmax(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& qpos,
                             const torch::Tensor& kpos, const torch::Tensor& bias, double scale) {
  auto s = torch::matmul(q * scale, k.transpose(-2, -1));  // [B, H, T, S]
  if (bias.defined()) s = s + bias;
  return masked_softmax(s, causal_allow(qpos, kpos));
}

ApproxErrorT approximation_error(const torch::Tensor& approx, const torch::Tensor& exact) {
  // Elementwise in the inputs' float (their differences are exact there), sums in double. The window computes this
  // at every keystroke for the approximating columns: float halves the memory traffic of a [B, H, T, S] pass.
  auto a = approx.to(torch::kFloat), p = exact.to(torch::kFloat);  // [B, H, T, S]
  auto diff = (a - p).abs_();                                      // [B, H, T, S]
  auto support = (p > 0).logical_or_(a != 0);                      // [B, H, T, S] bool
  ApproxErrorT e;
  e.max_abs = diff.amax({-2, -1}).to(torch::kDouble);  // [B, H]
  // off the support both are 0, so diff is 0 there: the sum over all pairs is the sum over the support
  e.mean_abs =
      diff.sum({-2, -1}, false, torch::kDouble) / support.sum({-2, -1}).to(torch::kDouble).clamp_min(1.0);  // [B, H]
  // [B, H, T]; KL >= 0, but a row equal to its reference may sum to -1e-9 in float: clamped
  e.kl_rows = (torch::xlogy(p, p) - p * a.clamp_min(1e-12).log_()).sum(-1, false, torch::kDouble).clamp_min(0);
  return e;
}

// ---------------------------------------------------------------------------------------------- linear family

namespace {

bool cpu_rows(const torch::Tensor& t) {  // fp32 on the CPU, contiguous: the loops below may run on it
  return t.device().is_cpu() && t.scalar_type() == torch::kFloat && t.is_contiguous();
}

// a [B, H, T, T] -> its lower triangle (j <= i) in place, and the rows' sums [B, H, T], in one pass.
torch::Tensor tril_row_sums(torch::Tensor& a) {
  if (!cpu_rows(a)) {
    a.tril_();
    return a.sum(-1);
  }
  const int64_t T = a.size(-1), rows = a.numel() / std::max<int64_t>(T, 1);
  auto sums = torch::empty(a.sizes().slice(0, a.dim() - 1), a.options());  // [B, H, T]
  float *ap = a.data_ptr<float>(), *sp = sums.data_ptr<float>();
  for (int64_t r = 0; r < rows; ++r) {
    float* row = ap + r * T;  // [T] query i = r % T
    const int64_t i = r % T;
    sp[r] = row_sum(row, i + 1);
    std::fill(row + i + 1, row + T, 0.f);
  }
  return sums;
}

// The chunk's weights a [B, H, T, T] (lower triangle) times inv [B, H, T, 1] into columns [col0, col0 + T) of d's rows
// [B, H, T, P], zeros from col0 + T to P.
void scale_rows_into(const torch::Tensor& a, const torch::Tensor& inv, const torch::Tensor& d, int64_t col0) {
  const int64_t B = a.size(0), H = a.size(1), T = a.size(2), P = d.size(3);
  if (!cpu_rows(a) || !cpu_rows(inv) || !d.device().is_cpu() || d.stride(3) != 1) {
    auto chunk = d.narrow(3, col0, T);  // [B, H, T, T]
    torch::mul_out(chunk, a, inv);
    d.narrow(3, col0 + T, P - col0 - T).zero_();
    return;
  }
  const float *ap = a.data_ptr<float>(), *ip = inv.data_ptr<float>();
  float* dp = d.data_ptr<float>();
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i) {
        const int64_t r = (b * H + h) * T + i;
        const float* src = ap + r * T;                                                 // [T]
        float* dst = dp + b * d.stride(0) + h * d.stride(1) + i * d.stride(2) + col0;  // [P - col0]
        scaled_row(dst, src, i + 1, ip[r], P - col0);
      }
}

// The state past the chunk: S += phi_k^T v, z += sum_j phi_k_j, and the keys kept when it keeps its history.
void advance(LinearState& st, const torch::Tensor& phi_k /*[B, H, T, m]*/, const torch::Tensor& v /*[B, H, T, d_v]*/) {
  if (st.history) st.keys = st.keys.defined() ? torch::cat({st.keys, phi_k}, 2) : phi_k.clone();  // [B, H, S, m]
  st.s = st.s + torch::matmul(phi_k.transpose(-2, -1), v);                                        // [B, H, m, d_v]
  st.z = st.z + phi_k.sum(2);                                                                     // [B, H, m]
}

}  // namespace

LinearChunk linear_chunk(const torch::Tensor& phi_q, const torch::Tensor& phi_k, const torch::Tensor& v, double eps,
                         LinearState& st, bool want_display, const torch::Tensor& display_into) {
  const int64_t B = phi_q.size(0), H = phi_q.size(1), m = phi_q.size(3), dv = v.size(3);
  if (want_display && st.seen > 0 && !st.history)
    throw Error("internal: the linear-attention display needs a fresh state or one that keeps its keys");
  if (!st.s.defined()) {
    st.s = torch::zeros({B, H, m, dv}, v.options());  // [B, H, m, d_v]
    st.z = torch::zeros({B, H, m}, v.options());      // [B, H, m]
  }
  LinearChunk r;
  if (want_display && linear_rows(phi_q, phi_k, v, eps, st, display_into, r)) {  // the window's display, by rows
    advance(st, phi_k, v);
    return r;
  }
  auto a = torch::matmul(phi_q, phi_k.transpose(-2, -1));                    // [B, H, T, T] phi(q_i).phi(k_j) ...
  const auto within = tril_row_sums(a);                                      // ... j <= i only; [B, H, T] sum_{j <= i}
  auto num = torch::matmul(phi_q, st.s) + torch::matmul(a, v);               // [B, H, T, d_v]
  auto den = torch::matmul(phi_q, st.z.unsqueeze(-1)).squeeze(-1) + within;  // [B, H, T]
  auto inv = (den + eps).reciprocal().unsqueeze(-1);                         // [B, H, T, 1] (den = 0: num = 0)
  r.out = num * inv;                                                         // [B, H, T, d_v]
  if (want_display) {
    const int64_t past = st.history && st.keys.defined() ? st.keys.size(2) : 0, T = a.size(-1), S = past + T;
    const torch::Tensor& d = display_into;  // [B, H, T, P]
    r.placed = d.defined() && d.dim() == 4 && d.sizes().slice(0, 3) == a.sizes().slice(0, 3) && d.size(3) >= S &&
               d.scalar_type() == a.scalar_type() && d.device() == a.device();
    // the earlier keys' weights phi(q_i).phi(k_j) / den_i (z_prev is their sum: the same denominator), then the chunk's
    if (r.placed) {
      if (past) {
        auto earlier = d.narrow(3, 0, past);  // [B, H, T, S_prev]
        torch::mul_out(earlier, torch::matmul(phi_q, st.keys.transpose(-2, -1)), inv);
      }
      scale_rows_into(a, inv, d, past);
      r.display = d;
    } else {
      r.display = (past ? torch::cat({torch::matmul(phi_q, st.keys.transpose(-2, -1)), a}, -1) : a) * inv;
    }
  }
  advance(st, phi_k, v);
  return r;
}

torch::Tensor causal_linear_attention(const torch::Tensor& phi_q, const torch::Tensor& phi_k, const torch::Tensor& v,
                                      double eps, LinearForm form) {
  LinearState st;
  switch (form) {
    case LinearForm::LeftProduct: return linear_chunk(phi_q, phi_k, v, eps, st, false).out;
    case LinearForm::Recurrent: {
      std::vector<torch::Tensor> rows;
      for (int64_t t = 0; t < phi_q.size(2); ++t) {
        rows.push_back(
            linear_chunk(phi_q.narrow(2, t, 1), phi_k.narrow(2, t, 1), v.narrow(2, t, 1), eps, st, false).out);
        st.seen += 1;
      }
      return torch::cat(rows, 2);  // [B, H, T, d_v]
    }
    case LinearForm::CumulativeSum: {
      auto s = (phi_k.unsqueeze(-1) * v.unsqueeze(-2)).cumsum(2);  // [B, H, T, m, d_v] S_i
      auto z = phi_k.cumsum(2);                                    // [B, H, T, m] z_i
      auto num = (phi_q.unsqueeze(-1) * s).sum(-2);                // [B, H, T, d_v]
      auto den = (phi_q * z).sum(-1, true);                        // [B, H, T, 1]
      return num / (den + eps);
    }
  }
  throw Error("internal: unknown linear form");
}

torch::Tensor draw_random_features(int64_t heads, int64_t m, int64_t dh, bool orthogonal, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  auto opt = torch::TensorOptions().dtype(torch::kDouble);
  if (!orthogonal) return torch::randn({heads, m, dh}, gen, opt).to(torch::kFloat);  // [H, m, d_h]
  std::vector<torch::Tensor> per_head;
  for (int64_t h = 0; h < heads; ++h) {
    std::vector<torch::Tensor> blocks;
    for (int64_t done = 0; done < m; done += dh) {
      auto [q, r] = torch::linalg_qr(torch::randn({dh, dh}, gen, opt));  // [d_h, d_h] each
      // Sign fix: without it QR's Q is not Haar-distributed (biased draw, the error stops falling with m).
      q = q * torch::sign(r.diagonal()).unsqueeze(0);  // columns scaled by sign(R_ii)
      blocks.push_back(q.t());                         // [d_h, d_h] orthonormal rows
    }
    auto rows = torch::cat(blocks, 0).narrow(0, 0, m);              // [m, d_h]
    auto norms = torch::randn({m, dh}, gen, opt).norm(2, 1, true);  // [m, 1] chi(d_h)
    per_head.push_back(rows * norms);
  }
  return torch::stack(per_head).to(torch::kFloat);  // [H, m, d_h]
}

uint64_t performer_draw_seed(uint64_t seed, int64_t layer_index) {
  return splitmix64(seed) ^ static_cast<uint64_t>(layer_index);
}

torch::Tensor favor_features(const torch::Tensor& x, const torch::Tensor& w, double stabiliser) {
  auto proj = torch::matmul(x, w.transpose(-2, -1));                                       // [B, H, T, m] w_r . x
  auto sq = x.pow(2).sum(-1, true) * 0.5;                                                  // [B, H, T, 1] |x|^2 / 2
  return torch::exp(proj - sq - stabiliser) / std::sqrt(static_cast<double>(w.size(-2)));  // [B, H, T, m]
}

FeatureMapAttention::FeatureMapAttention(const ModelConfig& cfg, LayerSpec spec, const Positions* pos,
                                         int64_t layer_index)
    : StandardAttention(cfg, std::move(spec), pos, cfg.n_head) {
  const std::string& n = spec_.variant;
  if (n == "linear") {
    kind = param("feature_map") == 0 ? FeatureKind::EluPlusOne : FeatureKind::Relu;
  } else if (n == "performer") {
    kind = FeatureKind::Favor;
    // One draw per layer, from (seed, layer) as BigBird's and LSH's: layers never share their features.
    auto w =
        draw_random_features(n_head, static_cast<int64_t>(param("features")), head_dim, param("orthogonal") != 0,
                             performer_draw_seed(static_cast<uint64_t>(param("seed")), layer_index));  // [H, m, d_h]
    // w.x - |x|^2/2 <= |w|^2/2, so subtracting max_r |w_r|^2 / 2 bounds every key feature by 1/sqrt(m): a constant
    // fixed by the draw (never a max over the sequence, which would leak the future).
    stabiliser = w.pow(2).sum(-1).max().item<double>() * 0.5;
    favor_w = register_buffer("favor_w", w);
  } else {
    kind = FeatureKind::Cos;
    horizon = param("m");
    if (horizon < static_cast<double>(cfg.context - 1))
      throw Error("cosformer: M = " + std::to_string(static_cast<int64_t>(horizon)) +
                  " is below context - 1 = " + std::to_string(cfg.context - 1) + " (the weights would turn negative)");
  }
}

int64_t FeatureMapAttention::feature_dim() const {
  switch (kind) {
    case FeatureKind::Favor: return favor_w.size(1);
    case FeatureKind::Cos: return 2 * head_dim;
    default: return head_dim;
  }
}

double FeatureMapAttention::eps() const {
  // Performer's key features carry exp(-stabiliser): the eps is scaled into the same units.
  return kind == FeatureKind::Favor ? kLinearEps * std::exp(-stabiliser) : kLinearEps;
}

torch::Tensor FeatureMapAttention::features(const torch::Tensor& x, const torch::Tensor& pos, bool is_query) const {
  switch (kind) {
    case FeatureKind::EluPlusOne: return F::elu(x) + 1.0;  // [B, H, T, d_h]
    case FeatureKind::Relu: return torch::relu(x);         // [B, H, T, d_h]
    case FeatureKind::Favor:                               // [B, H, T, m]
      return favor_features(x / std::pow(static_cast<double>(head_dim), 0.25), favor_w, is_query ? 0.0 : stabiliser);
    case FeatureKind::Cos: {
      // cos(pi/2 (i - j) / M) = cos a_i cos a_j + sin a_i sin a_j with a_i = pi i / (2 M).
      auto a = (pos.to(x.dtype()) * (M_PI / (2.0 * horizon))).view({1, 1, -1, 1});  // [1, 1, T, 1]
      auto r = torch::relu(x);                                                      // [B, H, T, d_h]
      return torch::cat({r * torch::cos(a), r * torch::sin(a)}, -1);                // [B, H, T, 2 d_h]
    }
  }
  throw Error("internal: unknown feature map");
}

AttnResult FeatureMapAttention::forward(const AttnCall& c) {
  Qkv n = project(*this, *pos_, c.x, c.pos0);
  LinearState local;
  LinearState* st = &local;
  if (c.cache) {
    st = dynamic_cast<LinearState*>(c.cache);
    if (!st) throw Error("internal: wrong cache type for " + spec_.variant);
  }
  // The planes' rows by key position: the keys (a state's history, then the chunk) sit at positions 0.. .
  const int64_t past = st->history && st->keys.defined() ? st->keys.size(2) : 0;
  const bool place = c.want_display && c.display_into.defined() && past == c.pos0;
  LinearChunk r = linear_chunk(features(n.q, n.pos, true), features(n.k, n.pos, false), n.v, eps(), *st, c.want_display,
                               place ? c.display_into : torch::Tensor());
  // a state keeping its history: the rows cover every key from position 0
  const auto kpos = past == 0 ? n.pos : torch::arange(past + n.pos.size(0), n.pos.options());  // [S]
  AttnResult a = finish(wo, r.out, c.want_display, r.display, causal_allow(n.pos, kpos), n_head);
  a.display_placed = r.placed;
  return a;
}

std::vector<int64_t> LinearState::held_positions() const {
  std::vector<int64_t> p;
  if (history && keys.defined())
    for (int64_t j = 0; j < keys.size(2); ++j) p.push_back(j);
  return p;
}

std::unique_ptr<LayerCache> FeatureMapAttention::new_cache(int64_t batch, int64_t, torch::Device dev) const {
  auto st = std::make_unique<LinearState>();
  auto opt = torch::TensorOptions().dtype(wq->weight.dtype()).device(dev);
  st->s = torch::zeros({batch, n_head, feature_dim(), head_dim}, opt);  // [B, H, m, d_v]
  st->z = torch::zeros({batch, n_head, feature_dim()}, opt);            // [B, H, m]
  return st;
}

int64_t FeatureMapAttention::cache_formula_bytes(int64_t, int64_t b) const {
  return n_head * (feature_dim() * head_dim + feature_dim()) * b;  // H (m d_v + m) b, constant
}

torch::Tensor FeatureMapAttention::exact_display(const torch::Tensor& x) const {
  return exact_reference(*this, *pos_, x);
}

// ---------------------------------------------------------------------------------------------- tiled

namespace {
KernelTileState state_of(const torch::Tensor& allow /*[br, bc]*/) {
  if (!allow.any().item<bool>()) return KernelTileState::Skipped;
  return allow.all().item<bool>() ? KernelTileState::Computed : KernelTileState::Partial;
}
}  // namespace

torch::Tensor tile_states(const torch::Tensor& qpos, const torch::Tensor& kpos, int64_t br, int64_t bc,
                          const TileMask& mask) {
  const int64_t T = qpos.size(0), S = kpos.size(0), nq = (T + br - 1) / br, nk = (S + bc - 1) / bc;
  auto out = torch::empty({nq, nk}, torch::kUInt8);  // [nq, nk]
  auto acc = out.accessor<uint8_t, 2>();
  for (int64_t a = 0; a < nq; ++a)
    for (int64_t b = 0; b < nk; ++b) {
      auto qp = qpos.narrow(0, a * br, std::min(br, T - a * br));  // [br]
      auto kp = kpos.narrow(0, b * bc, std::min(bc, S - b * bc));  // [bc]
      acc[a][b] = static_cast<uint8_t>(state_of(mask(qp, kp)));
    }
  return out;
}

TiledOut tiled_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                         const torch::Tensor& qpos, const torch::Tensor& kpos, int64_t br, int64_t bc, double scale,
                         const TileMask& mask, const TileBias& bias) {
  const int64_t T = q.size(2), S = k.size(2), nq = (T + br - 1) / br, nk = (S + bc - 1) / bc;
  TiledOut r;
  r.tiles = torch::empty({nq, nk}, torch::kUInt8);  // [nq, nk]
  auto tiles = r.tiles.accessor<uint8_t, 2>();
  std::vector<torch::Tensor> outs, lses;
  for (int64_t a = 0; a < nq; ++a) {
    const int64_t i0 = a * br, rows = std::min(br, T - i0);
    auto qi = q.narrow(2, i0, rows);     // [B, H, br, d_h]
    auto qp = qpos.narrow(0, i0, rows);  // [br]
    auto shape = qi.sizes().vec();
    shape.back() = 1;
    auto m = torch::full(shape, -kInf, q.options());  // [B, H, br, 1] running max
    auto l = torch::zeros(shape, q.options());        // [B, H, br, 1] running sum
    shape.back() = v.size(3);
    auto acc = torch::zeros(shape, q.options());  // [B, H, br, d_v] running numerator
    for (int64_t b = 0; b < nk; ++b) {
      const int64_t j0 = b * bc, cols = std::min(bc, S - j0);
      auto kp = kpos.narrow(0, j0, cols);  // [bc]
      auto allow = mask(qp, kp);           // [br, bc]
      KernelTileState ts = state_of(allow);
      tiles[a][b] = static_cast<uint8_t>(ts);
      if (ts == KernelTileState::Skipped) continue;
      auto s = torch::matmul(qi, k.narrow(2, j0, cols).transpose(-2, -1)) * scale;  // [B, H, br, bc]
      if (bias) {
        auto bt = bias(qp, kp);  // [H, br, bc]
        if (bt.defined()) s = s + bt;
      }
      if (ts == KernelTileState::Partial) s = s.masked_fill(allow.logical_not(), -kInf);
      auto m_new = torch::maximum(m, s.amax(-1, true));  // [B, H, br, 1]
      // A row with nothing allowed so far keeps m = -inf: use 0 as its reference so no exp(-inf + inf) = NaN.
      auto ref = m_new.masked_fill(m_new == -kInf, 0.0);  // [B, H, br, 1]
      auto alpha = torch::exp(m - ref);                   // [B, H, br, 1] rescales the old sums (0 when m = -inf)
      auto p = torch::exp(s - ref);                       // [B, H, br, bc] masked entries: 0
      l = alpha * l + p.sum(-1, true);
      acc = alpha * acc + torch::matmul(p, v.narrow(2, j0, cols));
      m = m_new;
    }
    outs.push_back(acc / l.masked_fill(l == 0, 1.0));  // [B, H, br, d_v] (empty rows: 0)
    lses.push_back((m + l.log()).squeeze(-1));         // [B, H, br] (empty rows: -inf)
  }
  r.out = torch::cat(outs, 2);  // [B, H, T, d_v]
  r.lse = torch::cat(lses, 2);  // [B, H, T]
  return r;
}

TiledAttention::TiledAttention(const ModelConfig& cfg, LayerSpec spec, const Positions* pos)
    : StandardAttention(cfg, std::move(spec), pos, cfg.n_head),
      br(static_cast<int64_t>(param("br"))),
      bc(static_cast<int64_t>(param("bc"))) {}

AttnResult TiledAttention::forward(const AttnCall& c) {
  CachedQkv n = project_cached(*this, *pos_, c);
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  const Positions* p = pos_;
  TiledOut t;                           // out, lse (the tile states are tile_map's, for the display)
  if (flash::applies(n.q, n.k, n.v)) {  // inference: the fused kernel, same algorithm in registers and caches
    flash::Options fo;
    if (pos_->kind == PosKind::Alibi) fo.alibi = pos_->alibi_slopes;
    fo.want_lse = c.want_display;
    flash::Out f = flash::attention(n.q, n.k, n.v, n.qpos, n.kpos, fo);
    t.out = f.out;  // [B, H, T, d_h]
    t.lse = f.lse;  // [B, H, T] or undefined
  } else {
    t = tiled_attention(n.q, n.k, n.v, n.qpos, n.kpos, br, bc, scale, causal_allow,
                        [p](const torch::Tensor& qp, const torch::Tensor& kp) { return p->score_bias(qp, kp); });
  }
  torch::Tensor allow, display;  // [T, S], [B, H, T, S] exp(s_ij - LSE_i), only when asked
  if (c.want_display) {
    allow = causal_allow(n.qpos, n.kpos);
    auto s = torch::matmul(n.q, n.k.transpose(-2, -1)) * scale;  // [B, H, T, S]
    auto bias = pos_->score_bias(n.qpos, n.kpos);
    if (bias.defined()) s = s + bias;
    display = torch::exp(s - t.lse.unsqueeze(-1)).masked_fill(allow.logical_not(), 0.0);
  }
  return finish(wo, t.out, c.want_display, display, allow, n_head);
}

torch::Tensor TiledAttention::exact_display(const torch::Tensor& x) const { return exact_reference(*this, *pos_, x); }

// ---------------------------------------------------------------------------------------------- mta

int64_t MtaCache::bytes() const {
  const int64_t kv = KVCache::bytes();
  return kv + qlen * q.size(0) * q.size(1) * q.size(3) * static_cast<int64_t>(q.element_size());
}

MtaAttention::MtaAttention(const ModelConfig& cfg, LayerSpec spec, const Positions* pos)
    : StandardAttention(cfg, std::move(spec), pos, cfg.n_head),
      cq(static_cast<int64_t>(param("c_q"))),
      ck(static_cast<int64_t>(param("c_k"))),
      group(static_cast<int64_t>(param("head_group_size"))) {
  if (ck % 2 == 0) throw Error("mta: c_k = " + std::to_string(ck) + " must be odd (keys are centred)");
  if (n_head % group != 0)
    throw Error("mta: head_group_size = " + std::to_string(group) + " does not divide the " + std::to_string(n_head) +
                " heads");
  kernel = register_parameter("kernel", torch::zeros({n_head, 1, cq, ck}));  // [H, 1, c_q, c_k]
  if (group > 1) head_mix = register_parameter("head_mix", torch::zeros({n_head / group, group, group}));
  if (param("head_norm") != 0) norm = register_module("norm", RMSNorm(head_dim, cfg.norm_eps));
  set_identity();
}

void MtaAttention::set_identity() {
  torch::NoGradGuard ng;
  kernel.zero_();
  kernel.select(2, cq - 1).select(2, (ck - 1) / 2).fill_(1.0);  // [H, 1] at [c_q - 1, (c_k - 1) / 2]
  if (group > 1) head_mix.copy_(torch::eye(group).expand_as(head_mix));
}

void MtaAttention::convert_from(const AttentionLayer& trained) {
  StandardAttention::convert_from(trained);
  set_identity();
  torch::NoGradGuard ng;
  if (norm) norm->weight.fill_(1.0);
}

AttnResult MtaAttention::forward(const AttnCall& c) {
  auto* mc = dynamic_cast<MtaCache*>(c.cache);
  if (c.cache && !mc) throw Error("internal: wrong cache type for mta");
  CachedQkv n = project_cached(*this, *pos_, c);
  const int64_t T = c.x.size(1), past = mc ? mc->qlen : 0;
  // The convolution reads the c_q - 1 previous queries' rows too: decoding keeps those queries.
  auto q = mc ? torch::cat({mc->q.narrow(2, 0, past), n.q}, 2) : n.q;  // [B, H, past + T, d_h]
  auto qpos = positions(c.pos0 - past, past + T, c.x);                 // [past + T]
  if (mc) {
    const int64_t keep = std::min(cq - 1, past + T);
    mc->q.narrow(2, 0, keep).copy_(q.narrow(2, past + T - keep, keep));
    mc->qlen = keep;
  }
  auto s = torch::matmul(q, n.k.transpose(-2, -1)) / std::sqrt(static_cast<double>(head_dim));  // [B, H, past + T, S]
  auto bias = pos_->score_bias(qpos, n.kpos);
  if (bias.defined()) s = s + bias;
  s = s.masked_fill(causal_allow(qpos, n.kpos).logical_not(), 0.0);  // masked entries 0 before the convolution
  // Depthwise cross-correlation: queries past-only (c_q - 1 rows of padding before), keys centred.
  const int64_t pk = (ck - 1) / 2;
  auto conv = F::conv2d(F::pad(s, F::PadFuncOptions({pk, pk, cq - 1, 0})), kernel,
                        F::Conv2dFuncOptions().groups(n_head));  // [B, H, past + T, S]
  conv = conv.narrow(2, past, T);                                // [B, H, T, S] this call's queries
  if (group > 1) {
    const int64_t B = conv.size(0), S = conv.size(3);
    auto g = conv.reshape({B, n_head / group, group, T, S});                             // [B, G, g, T, S]
    conv = torch::einsum("gac,bgcts->bgats", {head_mix, g}).reshape({B, n_head, T, S});  // mixed within groups
  }
  auto allow = causal_allow(n.qpos, n.kpos);  // [T, S]
  auto p = masked_softmax(conv, allow);       // [B, H, T, S]
  auto heads = torch::matmul(p, n.v);         // [B, H, T, d_h]
  AttnResult r = finish(wo, norm ? rms(heads, norm->weight, norm->eps) : heads, c.want_display, p, allow, n_head);
  if (c.want_display) r.heads = heads;  // before the norm: the display multiplies V into these
  return r;
}

std::unique_ptr<LayerCache> MtaAttention::new_cache(int64_t batch, int64_t capacity, torch::Device dev) const {
  auto mc = std::make_unique<MtaCache>();
  auto opt = torch::TensorOptions().dtype(wk->weight.dtype()).device(dev);
  mc->k = torch::empty({batch, n_head, capacity, head_dim}, opt);  // [B, H, cap, d_h]
  mc->v = torch::empty({batch, n_head, capacity, head_dim}, opt);  // [B, H, cap, d_h]
  mc->q = torch::empty({batch, n_head, cq - 1, head_dim}, opt);    // [B, H, c_q - 1, d_h]
  return mc;
}

int64_t MtaAttention::cache_formula_bytes(int64_t tokens, int64_t b) const {
  return 2 * n_head * head_dim * b * tokens + std::min(tokens, cq - 1) * n_head * head_dim * b;
}

torch::Tensor MtaAttention::exact_display(const torch::Tensor& x) const { return exact_reference(*this, *pos_, x); }

// ---------------------------------------------------------------------------------------------- differential

DifferentialAttention::DifferentialAttention(const ModelConfig& cfg, LayerSpec spec, const Positions* pos)
    : StandardAttention(cfg, std::move(spec), pos, cfg.n_head), lambda(param("lambda")) {
  if (n_head % 2 != 0)
    throw Error("differential: needs an even number of heads (pairs of MHA heads), the model has " +
                std::to_string(n_head));
  if (param("head_norm") != 0) norm = register_module("norm", RMSNorm(2 * head_dim, cfg.norm_eps));
}

void DifferentialAttention::convert_from(const AttentionLayer& trained) {
  StandardAttention::convert_from(trained);
  torch::NoGradGuard ng;
  if (norm) norm->weight.fill_(1.0);
}

AttnResult DifferentialAttention::forward(const AttnCall& c) {
  CachedQkv n = project_cached(*this, *pos_, c);
  const int64_t B = c.x.size(0), T = c.x.size(1), S = n.k.size(2), H2 = n_head / 2;
  // Heads 2h and 2h+1 of the MHA weights are (Q1, K1) and (Q2, K2) of differential head h.
  auto a = causal_softmax(n.q, n.k, n.qpos, n.kpos, pos_->score_bias(n.qpos, n.kpos),
                          1.0 / std::sqrt(static_cast<double>(head_dim)))
               .view({B, H2, 2, T, S});                  // [B, H/2, 2, T, S]
  auto diff = a.select(2, 0) - lambda * a.select(2, 1);  // [B, H/2, T, S] A1 - lambda A2
  auto v2 = n.v.reshape({B, H2, 2, S, head_dim})
                .permute({0, 1, 3, 2, 4})
                .reshape({B, H2, S, 2 * head_dim});  // [B, H/2, S, 2 d_h]
  auto o2 = torch::matmul(diff, v2);                 // [B, H/2, T, 2 d_h]
  // As H heads of d_h: head 2h + c holds half c of o2 (the display's head 2h + c multiplies MHA value head 2h + c).
  auto heads = o2.view({B, H2, T, 2, head_dim}).permute({0, 1, 3, 2, 4}).reshape({B, n_head, T, head_dim});
  auto normed = norm ? (rms(o2, norm->weight, norm->eps) * (1.0 - lambda)) : o2;  // [B, H/2, T, 2 d_h]
  AttnResult r;
  r.out = F::linear(merge_heads(normed), wo->weight);  // [B, T, d]
  if (c.want_display) {
    auto allow = causal_allow(n.qpos, n.kpos);  // [T, S]
    r.display = diff.repeat_interleave(2, 1);   // [B, H, T, S]
    r.mask = allow.unsqueeze(0).expand({n_head, T, S});
    r.heads = heads;
  }
  return r;
}

// ---------------------------------------------------------------------------------------------- factory

std::shared_ptr<AttentionLayer> make_kernel_attention(const ModelConfig& cfg, const LayerSpec& spec,
                                                      const Positions* pos) {
  const std::string& n = spec.variant;
  if (n == "linear" || n == "performer" || n == "cosformer")
    return std::make_shared<FeatureMapAttention>(cfg, spec, pos, layer_index_of(cfg, spec));
  if (n == "tiled") return std::make_shared<TiledAttention>(cfg, spec, pos);
  if (n == "linformer") return std::make_shared<LinformerAttention>(cfg, spec, pos, false);
  if (n == "linformer_causal") return std::make_shared<LinformerAttention>(cfg, spec, pos, true);
  if (n == "nystrom") return std::make_shared<NystromAttention>(cfg, spec, pos);
  if (n == "mla") return std::make_shared<MlaAttention>(cfg, spec, pos);
  if (n == "mta") return std::make_shared<MtaAttention>(cfg, spec, pos);
  if (n == "differential") return std::make_shared<DifferentialAttention>(cfg, spec, pos);
  return nullptr;
}

// ---------------------------------------------------------------------------------------------- engine accessors

bool has_softmax_reference(const Model& m) {
  for (const auto& a : m.impl->net->attn)
    if (dynamic_cast<const SoftmaxReference*>(a.get())) return true;
  return false;
}

ReferenceMaps reference_maps(const Model& model, const std::vector<int64_t>& tokens) {
  if (tokens.empty()) throw Error("the text is empty: type at least one character");
  if (static_cast<int64_t>(tokens.size()) > model.config().context)
    throw Error("the text has " + std::to_string(tokens.size()) + " characters; the model's context is " +
                std::to_string(model.config().context));
  torch::NoGradGuard ng;
  GPTImpl& net = *model.impl->net;
  std::vector<torch::Tensor> rec;
  ForwardOptions o;
  o.want_display = true;
  o.record_inputs = &rec;
  ForwardResult fr = net.forward(to_tensor(tokens, model.impl->device), o);
  ReferenceMaps r;
  r.layers = static_cast<int64_t>(net.attn.size());
  r.heads = model.config().n_head;
  r.queries = r.keys = static_cast<int64_t>(tokens.size());
  const size_t per_layer = static_cast<size_t>(r.heads * r.queries * r.keys);
  for (size_t l = 0; l < net.attn.size(); ++l) {
    auto* ref = dynamic_cast<const SoftmaxReference*>(net.attn[l].get());
    r.available.push_back(ref ? 1 : 0);
    if (!ref) {
      r.exact.insert(r.exact.end(), per_layer, 0.0f);
      r.max_abs.insert(r.max_abs.end(), static_cast<size_t>(r.heads), 0.0);
      r.mean_abs.insert(r.mean_abs.end(), static_cast<size_t>(r.heads), 0.0);
      r.mean_kl.insert(r.mean_kl.end(), static_cast<size_t>(r.heads), 0.0);
      r.kl_rows.insert(r.kl_rows.end(), static_cast<size_t>(r.heads * r.queries), 0.0f);
      continue;
    }
    auto exact = ref->exact_display(rec[l]);                     // [1, H, T, T]
    ApproxErrorT e = approximation_error(fr.display[l], exact);  // [1, H], [1, H], [1, H, T]
    auto ex = exact[0].to(torch::kCPU, torch::kFloat).contiguous();
    r.exact.insert(r.exact.end(), ex.data_ptr<float>(), ex.data_ptr<float>() + ex.numel());
    auto kl = e.kl_rows[0].to(torch::kCPU, torch::kFloat).contiguous();  // [H, T]
    r.kl_rows.insert(r.kl_rows.end(), kl.data_ptr<float>(), kl.data_ptr<float>() + kl.numel());
    for (int64_t h = 0; h < r.heads; ++h) {
      r.max_abs.push_back(e.max_abs[0][h].item<double>());
      r.mean_abs.push_back(e.mean_abs[0][h].item<double>());
      r.mean_kl.push_back(e.kl_rows[0][h].mean().item<double>());
    }
  }
  return r;
}

KernelTileMap tile_map(int64_t queries, int64_t keys, int64_t br, int64_t bc) {
  if (queries < 1 || keys < 1 || br < 1 || bc < 1) throw Error("tile map: sizes must be positive");
  torch::NoGradGuard ng;
  auto qpos = torch::arange(keys - queries, keys, torch::kLong),
       kpos = torch::arange(0, keys, torch::kLong);                     // [T], [S]
  auto t = tile_states(qpos, kpos, br, bc, causal_allow).contiguous();  // [nq, nk]
  KernelTileMap m;
  m.rows = t.size(0);
  m.cols = t.size(1);
  m.br = br;
  m.bc = bc;
  m.state.assign(t.data_ptr<uint8_t>(), t.data_ptr<uint8_t>() + t.numel());
  return m;
}

}  // namespace attnscope
