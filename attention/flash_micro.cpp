// The fused kernel's inner loops (flash_micro.h): portable loops and their AVX2/FMA twins. Both compute the same sums
// in the same order per lane; they differ only in FMA rounding and in exp (std::exp against a degree-5 polynomial of
// relative error ~2e-7), so their outputs agree far inside 1e-5.
#include "flash_micro.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace attnscope::flash_detail {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// ---------------------------------------------------------------------------------------------- portable

void scores_portable(const float* qt /*[d][kBr]*/, const float* k /*[n][d]*/, int64_t n, int64_t d,
                     float* st /*[n][kBr]*/) {
  for (int64_t j = 0; j < n; ++j) {
    float* row = st + j * kBr;  // [kBr]
    std::fill(row, row + kBr, 0.0f);
    for (int64_t e = 0; e < d; ++e) {
      const float kv = k[j * d + e];
      const float* q = qt + e * kBr;  // [kBr]
      for (int64_t i = 0; i < kBr; ++i) row[i] += kv * q[i];
    }
  }
}

void softmax_portable(float* st /*[n][kBr]*/, int64_t n, float* m /*[kBr]*/, float* l /*[kBr]*/,
                      float* acc /*[dv][kBr]*/, int64_t dv) {
  float ref[kBr], alpha[kBr], sum[kBr];  // [kBr] each
  for (int64_t i = 0; i < kBr; ++i) {
    float mx = m[i];
    for (int64_t j = 0; j < n; ++j) mx = std::max(mx, st[j * kBr + i]);
    ref[i] = mx == kNegInf ? 0.0f : mx;
    alpha[i] = std::exp(m[i] - ref[i]);  // 0 when m = -inf
    m[i] = mx;
    sum[i] = 0.0f;
  }
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = 0; i < kBr; ++i) {
      const float p = std::exp(st[j * kBr + i] - ref[i]);
      st[j * kBr + i] = p;
      sum[i] += p;
    }
  for (int64_t i = 0; i < kBr; ++i) l[i] = alpha[i] * l[i] + sum[i];
  for (int64_t e = 0; e < dv; ++e)
    for (int64_t i = 0; i < kBr; ++i) acc[e * kBr + i] *= alpha[i];
}

void pv_portable(const float* p /*[n][kBr]*/, const float* v /*[n][dv]*/, int64_t n, int64_t dv,
                 float* acc /*[dv][kBr]*/) {
  for (int64_t e = 0; e < dv; ++e) {
    float* a = acc + e * kBr;  // [kBr]
    for (int64_t j = 0; j < n; ++j) {
      const float vv = v[j * dv + e];
      const float* pj = p + j * kBr;  // [kBr]
      for (int64_t i = 0; i < kBr; ++i) a[i] += vv * pj[i];
    }
  }
}

void dots_portable(const float* q /*[d]*/, const float* k /*[n][d]*/, int64_t n, int64_t d, float scale,
                   float* s /*[n]*/) {
  for (int64_t j = 0; j < n; ++j) {
    float lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // [8] partial sums, as the AVX2 path keeps them
    int64_t e = 0;
    for (; e + 8 <= d; e += 8)
      for (int c = 0; c < 8; ++c) lanes[c] += q[e + c] * k[j * d + e + c];
    float t = 0.0f;
    for (; e < d; ++e) t += q[e] * k[j * d + e];
    for (float x : lanes) t += x;
    s[j] = t * scale;
  }
}

float max_of_portable(const float* s /*[n]*/, int64_t n) {
  float lanes[8] = {kNegInf, kNegInf, kNegInf, kNegInf, kNegInf, kNegInf, kNegInf, kNegInf};  // [8]
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int c = 0; c < 8; ++c) lanes[c] = std::max(lanes[c], s[j + c]);
  float mx = kNegInf;
  for (; j < n; ++j) mx = std::max(mx, s[j]);
  for (float x : lanes) mx = std::max(mx, x);
  return mx;
}

float exp_sum_portable(float* s /*[n]*/, int64_t n, float m) {
  float sum = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    s[j] = std::exp(s[j] - m);
    sum += s[j];
  }
  return sum;
}

void axpy_rows_portable(const float* p /*[n]*/, const float* v /*[n][dv]*/, int64_t n, int64_t dv, float* o /*[dv]*/) {
  for (int64_t j = 0; j < n; ++j) {
    if (p[j] == 0.0f) continue;
    for (int64_t e = 0; e < dv; ++e) o[e] += p[j] * v[j * dv + e];
  }
}

// ---------------------------------------------------------------------------------------------- AVX2 / FMA

#define ATTNSCOPE_AVX2 __attribute__((target("avx2,fma")))

// exp(x) for x <= 88 (every caller here passes x <= 0). x = n ln 2 + r with n = round(x log2 e) taken by the shifter
// 1.5 * 2^23 + 127 (the sum's low mantissa bits are n + 127, which become 2^n's exponent field when shifted left by
// 23), r = x - n ln 2 by one FMA (|r| <= ln 2 / 2; ln 2's float error times |n| <= 127 stays below 3e-7 of r), and
// exp(r) by its degree-6 Taylor polynomial (relative error below 2e-7). x <= -88 (masked -inf included) gives n = -127,
// an exponent field of 0, so exactly 0.
ATTNSCOPE_AVX2 inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-88.0f)), _mm256_set1_ps(88.0f));
  const __m256 shifter = _mm256_set1_ps(12582912.0f + 127.0f);
  const __m256 t = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), shifter);  // [8] low bits n + 127
  const __m256 n = _mm256_sub_ps(t, shifter);
  const __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693147180559945f), x);
  __m256 y = _mm256_set1_ps(1.0f / 720);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.0f / 120));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.0f / 24));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.0f / 6));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(0.5f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.0f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.0f));
  return _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(t), 23)));  // y 2^n
}

ATTNSCOPE_AVX2 inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// st rows j..j+NK-1 for query lanes i..i+15: NK x 2 accumulators, one broadcast per key and feature.
template <int NK>
ATTNSCOPE_AVX2 inline void scores_block(const float* qt, const float* k, int64_t d, int64_t i, float* st) {
  __m256 a0[NK], a1[NK];
  for (int r = 0; r < NK; ++r) a0[r] = a1[r] = _mm256_setzero_ps();
  for (int64_t e = 0; e < d; ++e) {
    const __m256 q0 = _mm256_loadu_ps(qt + e * kBr + i), q1 = _mm256_loadu_ps(qt + e * kBr + i + 8);
    for (int r = 0; r < NK; ++r) {
      const __m256 kb = _mm256_broadcast_ss(k + r * d + e);
      a0[r] = _mm256_fmadd_ps(kb, q0, a0[r]);
      a1[r] = _mm256_fmadd_ps(kb, q1, a1[r]);
    }
  }
  for (int r = 0; r < NK; ++r) {
    _mm256_storeu_ps(st + r * kBr + i, a0[r]);
    _mm256_storeu_ps(st + r * kBr + i + 8, a1[r]);
  }
}

ATTNSCOPE_AVX2 void scores_avx2(const float* qt, const float* k, int64_t n, int64_t d, float* st) {
  int64_t j = 0;
  for (; j + 4 <= n; j += 4)
    for (int64_t i = 0; i < kBr; i += 16) scores_block<4>(qt, k + j * d, d, i, st + j * kBr);
  for (; j < n; ++j)
    for (int64_t i = 0; i < kBr; i += 16) scores_block<1>(qt, k + j * d, d, i, st + j * kBr);
}

ATTNSCOPE_AVX2 void softmax_avx2(float* st, int64_t n, float* m, float* l, float* acc, int64_t dv) {
  const __m256 ninf = _mm256_set1_ps(kNegInf);
  for (int64_t i = 0; i < kBr; i += 8) {
    const __m256 m_old = _mm256_loadu_ps(m + i);
    __m256 mx = m_old;
    for (int64_t j = 0; j < n; ++j) mx = _mm256_max_ps(mx, _mm256_loadu_ps(st + j * kBr + i));
    const __m256 ref = _mm256_andnot_ps(_mm256_cmp_ps(mx, ninf, _CMP_EQ_OQ), mx);  // -inf -> 0
    const __m256 alpha = exp8(_mm256_sub_ps(m_old, ref));
    __m256 sum = _mm256_setzero_ps();
    for (int64_t j = 0; j < n; ++j) {
      const __m256 p = exp8(_mm256_sub_ps(_mm256_loadu_ps(st + j * kBr + i), ref));
      _mm256_storeu_ps(st + j * kBr + i, p);
      sum = _mm256_add_ps(sum, p);
    }
    _mm256_storeu_ps(m + i, mx);
    _mm256_storeu_ps(l + i, _mm256_fmadd_ps(alpha, _mm256_loadu_ps(l + i), sum));
    for (int64_t e = 0; e < dv; ++e)
      _mm256_storeu_ps(acc + e * kBr + i, _mm256_mul_ps(alpha, _mm256_loadu_ps(acc + e * kBr + i)));
  }
}

// acc rows e..e+NE-1, lanes i..i+15: NE x 2 accumulators kept in registers over the tile's keys.
template <int NE>
ATTNSCOPE_AVX2 inline void pv_block(const float* p, const float* v, int64_t n, int64_t dv, int64_t e, int64_t i,
                                    float* acc) {
  __m256 a0[NE], a1[NE];
  for (int r = 0; r < NE; ++r) {
    a0[r] = _mm256_loadu_ps(acc + (e + r) * kBr + i);
    a1[r] = _mm256_loadu_ps(acc + (e + r) * kBr + i + 8);
  }
  for (int64_t j = 0; j < n; ++j) {
    const __m256 p0 = _mm256_loadu_ps(p + j * kBr + i), p1 = _mm256_loadu_ps(p + j * kBr + i + 8);
    for (int r = 0; r < NE; ++r) {
      const __m256 vb = _mm256_broadcast_ss(v + j * dv + e + r);
      a0[r] = _mm256_fmadd_ps(vb, p0, a0[r]);
      a1[r] = _mm256_fmadd_ps(vb, p1, a1[r]);
    }
  }
  for (int r = 0; r < NE; ++r) {
    _mm256_storeu_ps(acc + (e + r) * kBr + i, a0[r]);
    _mm256_storeu_ps(acc + (e + r) * kBr + i + 8, a1[r]);
  }
}

ATTNSCOPE_AVX2 void pv_avx2(const float* p, const float* v, int64_t n, int64_t dv, float* acc) {
  int64_t e = 0;
  for (; e + 4 <= dv; e += 4)
    for (int64_t i = 0; i < kBr; i += 16) pv_block<4>(p, v, n, dv, e, i, acc);
  for (; e < dv; ++e)
    for (int64_t i = 0; i < kBr; i += 16) pv_block<1>(p, v, n, dv, e, i, acc);
}

// Eight keys' dot products at once (d % 8 == 0): one accumulator per key, then a transposing reduction by hadd.
ATTNSCOPE_AVX2 inline __m256 dots8(const float* q, const float* k, int64_t d) {
  __m256 a[8];
  for (int r = 0; r < 8; ++r) a[r] = _mm256_setzero_ps();
  for (int64_t e = 0; e < d; e += 8) {
    const __m256 qv = _mm256_loadu_ps(q + e);
    for (int r = 0; r < 8; ++r) a[r] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + r * d + e), a[r]);
  }
  const __m256 u0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));  // [4 keys | 4 keys]
  const __m256 u1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));  // [8 keys]
}

ATTNSCOPE_AVX2 void dots_avx2(const float* q, const float* k, int64_t n, int64_t d, float scale, float* s) {
  int64_t j = 0;
  if (d % 8 == 0)
    for (; j + 8 <= n; j += 8) _mm256_storeu_ps(s + j, _mm256_mul_ps(dots8(q, k + j * d, d), _mm256_set1_ps(scale)));
  for (; j < n; ++j) {
    const float* kj = k + j * d;  // [d]
    __m256 a = _mm256_setzero_ps();
    int64_t e = 0;
    for (; e + 8 <= d; e += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + e), _mm256_loadu_ps(kj + e), a);
    float t = 0.0f;
    for (; e < d; ++e) t += q[e] * kj[e];
    s[j] = (t + hsum8(a)) * scale;
  }
}

ATTNSCOPE_AVX2 float max_of_avx2(const float* s, int64_t n) {
  __m256 a = _mm256_set1_ps(kNegInf);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) a = _mm256_max_ps(a, _mm256_loadu_ps(s + j));
  __m128 h = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  h = _mm_max_ps(h, _mm_movehl_ps(h, h));
  h = _mm_max_ss(h, _mm_movehdup_ps(h));
  float mx = _mm_cvtss_f32(h);
  for (; j < n; ++j) mx = std::max(mx, s[j]);
  return mx;
}

ATTNSCOPE_AVX2 float exp_sum_avx2(float* s, int64_t n, float m) {
  const __m256 mv = _mm256_set1_ps(m);
  __m256 sum = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 p = exp8(_mm256_sub_ps(_mm256_loadu_ps(s + j), mv));
    _mm256_storeu_ps(s + j, p);
    sum = _mm256_add_ps(sum, p);
  }
  float t = hsum8(sum);
  for (; j < n; ++j) {
    s[j] = std::exp(s[j] - m);
    t += s[j];
  }
  return t;
}

// o[e..e+8 NV) += sum_j p[j] v[j][e..]: four keys in flight (4 NV independent accumulators), so the FMA latency
// is hidden; summed pairwise at the end.
template <int NV>
ATTNSCOPE_AVX2 inline void axpy_block(const float* p, const float* v, int64_t n, int64_t dv, int64_t e, float* o) {
  __m256 a[4][NV];
  for (int u = 0; u < 4; ++u)
    for (int c = 0; c < NV; ++c) a[u][c] = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 4 <= n; j += 4)
    for (int u = 0; u < 4; ++u) {
      const __m256 pj = _mm256_set1_ps(p[j + u]);
      for (int c = 0; c < NV; ++c)
        a[u][c] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(v + (j + u) * dv + e + 8 * c), a[u][c]);
    }
  for (; j < n; ++j)
    for (int c = 0; c < NV; ++c)
      a[0][c] = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), _mm256_loadu_ps(v + j * dv + e + 8 * c), a[0][c]);
  for (int c = 0; c < NV; ++c) {
    const __m256 sum = _mm256_add_ps(_mm256_add_ps(a[0][c], a[1][c]), _mm256_add_ps(a[2][c], a[3][c]));
    _mm256_storeu_ps(o + e + 8 * c, _mm256_add_ps(_mm256_loadu_ps(o + e + 8 * c), sum));
  }
}

ATTNSCOPE_AVX2 void axpy_rows_avx2(const float* p, const float* v, int64_t n, int64_t dv, float* o) {
  int64_t e = 0;
  for (; e + 16 <= dv; e += 16) axpy_block<2>(p, v, n, dv, e, o);
  for (; e + 8 <= dv; e += 8) axpy_block<1>(p, v, n, dv, e, o);
  for (; e < dv; ++e)
    for (int64_t j = 0; j < n; ++j) o[e] += p[j] * v[j * dv + e];
}

#undef ATTNSCOPE_AVX2

}  // namespace

const Micro& portable_micro() {
  static const Micro m{scores_portable, softmax_portable, pv_portable,       dots_portable,
                       max_of_portable, exp_sum_portable, axpy_rows_portable};
  return m;
}

const Micro& avx2_micro() {
  static const Micro m{scores_avx2, softmax_avx2, pv_avx2, dots_avx2, max_of_avx2, exp_sum_avx2, axpy_rows_avx2};
  return m;
}

const Micro& best_micro() { return cpu_has_avx2_fma() ? avx2_micro() : portable_micro(); }

bool cpu_has_avx2_fma() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

}  // namespace attnscope::flash_detail
