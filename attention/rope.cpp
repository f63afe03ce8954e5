// RoPE on the CPU in one loop, from a table of cos and sin shared by every model (rope.h).
#include "rope.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "flash.h"  // avx2_available

namespace attnscope {

namespace {
// cos and sin of RoPE's angles p theta^(-2 i / r), in double then rounded to float, for positions 0..n-1:
// [n, r/2] each. Shared by every model with the same theta and r, computed once (the window's display forwards
// paid ~1 ms of pow, sin and cos per forward at 256 characters); a longer text replaces the table with a longer one.
struct RopeTable {
  int64_t n = 0;
  std::vector<float> cos, sin;  // [n, r/2]
};
constexpr int64_t kRopeTableMax = int64_t(1) << 16;  // positions beyond: computed per call

std::shared_ptr<const RopeTable> rope_table(double theta, int64_t rot_dims, int64_t need) {
  static std::mutex mu;
  static std::map<std::pair<double, int64_t>, std::shared_ptr<const RopeTable>> tables;
  std::lock_guard<std::mutex> g(mu);
  auto& t = tables[{theta, rot_dims}];
  if (t && t->n >= need) return t;
  int64_t n = 1024;
  while (n < need) n *= 2;
  auto fresh = std::make_shared<RopeTable>();
  const int64_t half = rot_dims / 2;
  fresh->n = n;
  fresh->cos.resize(static_cast<size_t>(n * half));
  fresh->sin.resize(fresh->cos.size());
  for (int64_t i = 0; i < half; ++i) {  // in double, as the tensor path: theta^(-2 i / r) p
    const double inv = std::pow(theta, -static_cast<double>(i) * 2.0 / static_cast<double>(rot_dims));
    for (int64_t p = 0; p < n; ++p) {
      const double ang = static_cast<double>(p) * inv;
      fresh->cos[static_cast<size_t>(p * half + i)] = static_cast<float>(std::cos(ang));
      fresh->sin[static_cast<size_t>(p * half + i)] = static_cast<float>(std::sin(ang));
    }
  }
  t = std::move(fresh);
  return t;
}

// n pairs of one row: y1_i = x1_i c_i - x2_i s_i, y2_i = x2_i c_i + x1_i s_i, with x1 / y1 a row's first r/2 values
// and x2 / y2 the next r/2.
void rotate_pairs_portable(const float* x1, const float* x2, const float* c, const float* s, int64_t n, float* y1,
                           float* y2) {
  for (int64_t i = 0; i < n; ++i) {
    y1[i] = x1[i] * c[i] - x2[i] * s[i];
    y2[i] = x2[i] * c[i] + x1[i] * s[i];
  }
}

// The same, eight pairs per step (the window's d_h = 16 is one step: a scalar loop had cost ~2.5% of a display forward)
__attribute__((target("avx2"))) void rotate_pairs_avx2(const float* x1, const float* x2, const float* c, const float* s,
                                                       int64_t n, float* y1, float* y2) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 a = _mm256_loadu_ps(x1 + i), b = _mm256_loadu_ps(x2 + i);  // [8] each
    const __m256 cv = _mm256_loadu_ps(c + i), sv = _mm256_loadu_ps(s + i);
    _mm256_storeu_ps(y1 + i, _mm256_sub_ps(_mm256_mul_ps(a, cv), _mm256_mul_ps(b, sv)));
    _mm256_storeu_ps(y2 + i, _mm256_add_ps(_mm256_mul_ps(b, cv), _mm256_mul_ps(a, sv)));
  }
  rotate_pairs_portable(x1 + i, x2 + i, c + i, s + i, n - i, y1 + i, y2 + i);
}

}  // namespace

torch::Tensor rope_rotate_cpu(const torch::Tensor& x /*[.., T, d_h]*/, const torch::Tensor& pos /*[T]*/, double theta,
                              int64_t rot_dims) {
  const int64_t half = rot_dims / 2, dh = x.size(-1), T = x.size(-2);
  auto xc = x.stride(-1) == 1 ? x : x.contiguous();         // [.., T, d_h] each row's d_h values adjacent
  auto p = pos.to(torch::kCPU, torch::kLong).contiguous();  // [T]
  const int64_t* pp = p.data_ptr<int64_t>();
  int64_t lo = 0, hi = -1;  // the positions' range
  for (int64_t t = 0; t < T; ++t) lo = std::min(lo, pp[t]), hi = std::max(hi, pp[t]);
  std::shared_ptr<const RopeTable> table;
  if (lo >= 0 && hi < kRopeTableMax) table = rope_table(theta, rot_dims, hi + 1);
  std::vector<float> cs, sn;  // [T, r/2] cos, sin of the angles, when the table does not hold them
  if (!table) {
    cs.resize(static_cast<size_t>(T * half));
    sn.resize(cs.size());
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < half; ++i) {
        const double ang =
            static_cast<double>(pp[t]) * std::pow(theta, -static_cast<double>(i) * 2.0 / static_cast<double>(rot_dims));
        cs[static_cast<size_t>(t * half + i)] = static_cast<float>(std::cos(ang));
        sn[static_cast<size_t>(t * half + i)] = static_cast<float>(std::sin(ang));
      }
  }
  auto out = torch::empty(xc.sizes(), xc.options());  // [.., T, d_h] contiguous
  const float* a = xc.data_ptr<float>();
  float* o = out.data_ptr<float>();
  const int64_t rows = xc.numel() / dh;  // every (.., t) row
  // Row r's start in x by its strides: the projections' [B, T, H, d_h] -> [B, H, T, d_h] transposes are read as they
  // are (a contiguous copy first was one more pass over q and k per layer)
  const int64_t nd = xc.dim();
  const std::vector<int64_t> size(xc.sizes().begin(), xc.sizes().end() - 1),
      stride(xc.strides().begin(), xc.strides().end() - 1);  // [nd - 1] each
  std::vector<int64_t> idx(size.size(), 0);                  // [.., t] of row r
  int64_t from = 0;                                          // its offset in x
  const auto rotate_pairs = flash::avx2_available() ? rotate_pairs_avx2 : rotate_pairs_portable;
  for (int64_t r = 0; r < rows; ++r) {
    if (r > 0)  // the next row: the last index moves, carrying into the ones before it
      for (int64_t dim = nd - 2; dim >= 0; --dim) {
        from += stride[size_t(dim)];
        if (++idx[size_t(dim)] < size[size_t(dim)]) break;
        from -= stride[size_t(dim)] * size[size_t(dim)];
        idx[size_t(dim)] = 0;
      }
    const int64_t t = r % T, at = table ? pp[t] * half : t * half;
    const float* x1 = a + from;  // [d_h]
    float* y = o + r * dh;       // [d_h]
    rotate_pairs(x1, x1 + half, (table ? table->cos.data() : cs.data()) + at,
                 (table ? table->sin.data() : sn.data()) + at, half, y, y + half);
    for (int64_t i = rot_dims; i < dh; ++i) y[i] = x1[i];  // unrotated
  }
  return out;
}

}  // namespace attnscope
