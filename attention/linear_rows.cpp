// The linear family's chunk by query rows, for the window's display on the CPU (kernel_common.h: linear_rows).
// linear_chunk's products phi_q phi_k^T and a v are [B, H, T, T] matrices of which the causal half is used: the
// upper triangle was computed, then zeroed, then multiplied by v, and the display row was a third pass over it. Here
// each row i computes its weights a_ij = phi_q_i . phi_k_j for j <= i only (the fused kernel's dot loop,
// flash_micro.h), sums them, accumulates sum_j a_ij v_j from the same buffer and writes the display row once.
#include <algorithm>
#include <vector>

#include "flash.h"
#include "flash_micro.h"
#include "kernel_common.h"
#include "kernel_threads.h"

namespace attnscope::kernel_detail {

namespace {

bool cpu_fp32(const torch::Tensor& t) { return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat; }

}  // namespace

bool linear_rows(const torch::Tensor& phi_q_in, const torch::Tensor& phi_k_in, const torch::Tensor& v_in, double eps,
                 const LinearState& st, const torch::Tensor& display_into, LinearChunk& r) {
  const bool grad = torch::GradMode::is_enabled() && (phi_q_in.requires_grad() || phi_k_in.requires_grad() ||
                                                      v_in.requires_grad() || st.s.requires_grad());
  // (off with the fused kernel: $ATTNSCOPE_FLASH=0 runs LibTorch's path everywhere, as CUDA does; flash.h)
  if (!flash::enabled() || grad || !cpu_fp32(phi_q_in) || !cpu_fp32(phi_k_in) || !cpu_fp32(v_in) ||
      phi_q_in.dim() != 4 || phi_k_in.sizes() != phi_q_in.sizes() || v_in.dim() != 4 ||
      v_in.size(2) != phi_q_in.size(2) || !st.s.defined())
    return false;
  if (st.history && st.keys.defined() && st.keys.size(2) > 0) return false;  // earlier keys shown: linear_chunk
  const int64_t B = phi_q_in.size(0), H = phi_q_in.size(1), T = phi_q_in.size(2), m = phi_q_in.size(3),
                dv = v_in.size(3);
  const torch::Tensor& d = display_into;  // [B, H, T, P] or undefined
  r.placed = d.defined() && d.dim() == 4 && d.size(0) == B && d.size(1) == H && d.size(2) == T && d.size(3) >= T &&
             d.scalar_type() == torch::kFloat && d.device().is_cpu() && d.stride(3) == 1;
  torch::NoGradGuard ng;
  // (the projections' head views and the features made from them are transposed: rows made adjacent here)
  const auto phi_q = phi_q_in.contiguous(), phi_k = phi_k_in.contiguous(), v = v_in.contiguous();
  // The state's share of every row: phi_q_i S_prev [B, H, T, d_v] and phi_q_i . z_prev [B, H, T] (zeros when fresh)
  const auto base_num = torch::matmul(phi_q, st.s.to(torch::kFloat)).contiguous();  // [B, H, T, d_v]
  const auto base_den =
      torch::matmul(phi_q, st.z.to(torch::kFloat).unsqueeze(-1)).squeeze(-1).contiguous();  // [B, H, T]
  r.out = torch::empty({B, H, T, dv}, phi_q.options());                                     // [B, H, T, d_v]
  r.display = r.placed ? d : torch::empty({B, H, T, T}, phi_q.options());                   // [B, H, T, P or T]
  const float *qp = phi_q.data_ptr<float>(), *kp = phi_k.data_ptr<float>(), *vp = v.data_ptr<float>();
  const float *bn = base_num.data_ptr<float>(), *bd = base_den.data_ptr<float>();
  float *op = r.out.data_ptr<float>(), *dp = r.display.data_ptr<float>();
  const int64_t ds0 = r.display.stride(0), ds1 = r.display.stride(1), ds2 = r.display.stride(2), P = r.display.size(3);
  const flash_detail::Micro& mc = flash_detail::best_micro();
  const int64_t threads = B * H * T * T >= (int64_t(1) << 15) ? kernel_threads() : 1;
  parallel_items(B * H, threads, [&](int64_t bh) {
    const int64_t b = bh / H, h = bh % H;
    const float* q = qp + bh * T * m;    // [T, m]
    const float* k = kp + bh * T * m;    // [T, m]
    const float* vv = vp + bh * T * dv;  // [T, d_v]
    thread_local std::vector<float> a;   // [T] row i's weights a_ij, j <= i
    a.resize(static_cast<size_t>(T));
    for (int64_t i = 0; i < T; ++i) {
      mc.dots(q + i * m, k, i + 1, m, 1.0f, a.data());  // a_ij = phi_q_i . phi_k_j
      const float within = row_sum(a.data(), i + 1);    // sum_{j <= i} a_ij
      const int64_t row = bh * T + i;
      const float inv = 1.0f / (bd[row] + within + static_cast<float>(eps));  // 1 / (den_i + eps)
      float* o = op + row * dv;                                               // [d_v]
      std::copy(bn + row * dv, bn + (row + 1) * dv, o);
      mc.axpy_rows(a.data(), vv, i + 1, dv, o);  // phi_q_i S_prev + sum_j a_ij v_j
      for (int64_t e = 0; e < dv; ++e) o[e] *= inv;
      scaled_row(dp + b * ds0 + h * ds1 + i * ds2, a.data(), i + 1, inv, P);  // [P]: a_ij / den_i, then zeros
    }
  });
  return true;
}

}  // namespace attnscope::kernel_detail
