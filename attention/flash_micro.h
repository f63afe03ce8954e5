#pragma once
// The fused kernel's inner loops (flash.cpp drives them), in two builds with the same arithmetic: a portable one
// (plain loops the compiler may vectorise for the baseline ISA) and an AVX2/FMA one (intrinsics in functions with
// __attribute__((target("avx2,fma"))), chosen at run time). No LibTorch here: raw fp32 buffers.
//
// Layouts inside one (query tile, key tile) step, kBr query rows along the vector lanes:
//   qt  [d][kBr]      the query tile transposed and pre-scaled by 1/sqrt(d)
//   k   [n][d]        key rows as stored (row j at k + j d)
//   v   [n][d_v]      value rows as stored
//   st  [n][kBr]      scores S^T, then probabilities P^T in place (masked entries -inf, then 0)
//   acc [d_v][kBr]    running numerator O^T
//   m, l [kBr]        running max and sum of each query row
// With the rows on the lanes, the softmax's row max and row sum are vertical operations (no shuffles).
#include <cstdint>

namespace attnscope::flash_detail {

constexpr int64_t kBr = 64;  // query rows per tile (8 AVX2 vectors)
constexpr int64_t kBc = 64;  // keys per tile

struct Micro {
  // st[j][i] = sum_e k[j][e] qt[e][i] for j < n.
  void (*scores)(const float* qt, const float* k, int64_t n, int64_t d, float* st);
  // Online softmax step: m' = max(m, max_j st[j]); alpha = exp(m - m'); st[j] = exp(st[j] - m'); l = alpha l +
  // sum_j st[j]; acc *= alpha. A row with m' = -inf uses 0 as its reference (no exp(-inf + inf) = NaN).
  void (*softmax)(float* st, int64_t n, float* m, float* l, float* acc, int64_t dv);
  // acc[e][i] += sum_j v[j][e] p[j][i].
  void (*pv)(const float* p, const float* v, int64_t n, int64_t dv, float* acc);
  // One query row (decode): s[j] = scale (q . k_j) for j < n.
  void (*dots)(const float* q, const float* k, int64_t n, int64_t d, float scale, float* s);
  // max_j s[j] for j < n (n >= 1).
  float (*max_of)(const float* s, int64_t n);
  // In place s[j] = exp(s[j] - m) for j < n (-inf gives 0); returns the sum.
  float (*exp_sum)(float* s, int64_t n, float m);
  // o[e] += sum_j p[j] v[j][e] for j < n.
  void (*axpy_rows)(const float* p, const float* v, int64_t n, int64_t dv, float* o);
};

const Micro& portable_micro();
const Micro& avx2_micro();  // only call when cpu_has_avx2_fma()
bool cpu_has_avx2_fma();
const Micro& best_micro();  // the AVX2 loops when the CPU has them, else the portable ones

}  // namespace attnscope::flash_detail
