// The fused pooled rows of a causal softmax head (pooled_rows.h).
#include "pooled_rows.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <vector>

#include "flash_micro.h"
#include "kernel_threads.h"

namespace attnscope {

using flash_detail::kBc;
using flash_detail::kBr;

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// One query tile's scores against key tile [j0, j0 + nk): st [nk][kBr] = q_i . k_j + a (j - i), and -inf where
// j > i (the diagonal tile) or where lane r is past the tile's n rows.
void tile_scores(const flash_detail::Micro& mc, const float* qt /*[d][kBr]*/, const float* k /*[T, d]*/, int64_t d,
                 int64_t i0, int64_t n, int64_t j0, int64_t nk, float slope, float* st /*[nk][kBr]*/) {
  mc.scores(qt, k + j0 * d, nk, d, st);
  if (slope != 0.0f)
    for (int64_t j = 0; j < nk; ++j)
      for (int64_t r = 0; r < kBr; ++r) st[j * kBr + r] += slope * float(j0 + j - i0 - r);  // -a (i - j)
  if (j0 + nk - 1 > i0 || n < kBr)
    for (int64_t j = 0; j < nk; ++j)
      for (int64_t r = 0; r < kBr; ++r)
        if (j0 + j > i0 + r || r >= n) st[j * kBr + r] = kNegInf;
}

}  // namespace

void pooled_causal_softmax(const float* q, const float* k, int64_t T, int64_t d, float slope, const PoolGrid& g,
                           bool max, float* out) {
  const flash_detail::Micro& mc = flash_detail::best_micro();
  const int64_t cols = g.cols;
  std::vector<int32_t> bin(size_t(T), -1);  // [T] the pixel column of key j (-1 outside the region)
  for (int64_t j = g.col0; j < g.col1; ++j) bin[size_t(j)] = int32_t(g.pixel_col(j));
  std::fill(out, out + g.rows * cols, 0.0f);  // weights are >= 0: a max may start at 0
  std::mutex out_mu;
  const int64_t tiles = (g.row1 - g.row0 + kBr - 1) / kBr;
  auto run_tiles = [&](int64_t t0, int64_t t1) {
    std::vector<float> qt(size_t(d * kBr)), st(size_t(kBc * kBr)), m(kBr), l(kBr);  // [d][kBr], [kBc][kBr], [kBr]
    std::vector<float> acc(size_t(cols * kBr));                                     // [cols][kBr] per pixel column
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t i0 = g.row0 + t * kBr, n = std::min(kBr, g.row1 - i0), last = i0 + n;  // keys 0 .. last - 1
      for (int64_t e = 0; e < d; ++e)
        for (int64_t r = 0; r < kBr; ++r) qt[size_t(e * kBr + r)] = r < n ? q[(i0 + r) * d + e] : 0.0f;
      std::fill(m.begin(), m.end(), kNegInf);
      std::fill(l.begin(), l.end(), 0.0f);
      std::fill(acc.begin(), acc.end(), max ? kNegInf : 0.0f);
      // pass 1: the rows' running (m, l); max pooling also keeps each pixel column's largest score
      for (int64_t j0 = 0; j0 < last; j0 += kBc) {
        const int64_t nk = std::min(kBc, last - j0);
        tile_scores(mc, qt.data(), k, d, i0, n, j0, nk, slope, st.data());
        if (max)
          for (int64_t j = 0; j < nk; ++j) {
            const int32_t c = bin[size_t(j0 + j)];
            if (c < 0) continue;
            float* a = acc.data() + c * kBr;
            const float* s = st.data() + j * kBr;
            for (int64_t r = 0; r < kBr; ++r) a[r] = s[r] > a[r] ? s[r] : a[r];
          }
        mc.softmax(st.data(), nk, m.data(), l.data(), nullptr, 0);
      }
      // pixel columns 0 .. cmax - 1 hold keys below `last` (the others stay empty: weight 0)
      const int64_t cmax = last <= g.col0 ? 0 : g.pixel_col(std::min(last, g.col1) - 1) + 1;
      if (max) {  // the largest weight of pixel column c in row r: exp(max s - m) / l
        for (int64_t c = 0; c < cmax; ++c)
          for (int64_t r = 0; r < kBr; ++r) {
            float& a = acc[size_t(c * kBr + r)];
            a = r < n ? a - m[size_t(r)] : kNegInf;  // lanes past the tile's rows: nothing
          }
        mc.exp_sum(acc.data(), cmax * kBr, 0.0f);  // in place exp (-inf gives 0)
        for (int64_t c = 0; c < cmax; ++c)
          for (int64_t r = 0; r < n; ++r) acc[size_t(c * kBr + r)] /= l[size_t(r)];
      } else {  // pass 2: sum of exp(s - m) / l over each pixel column's keys
        for (int64_t j0 = 0; j0 < last; j0 += kBc) {
          const int64_t nk = std::min(kBc, last - j0);
          tile_scores(mc, qt.data(), k, d, i0, n, j0, nk, slope, st.data());
          for (int64_t j = 0; j < nk; ++j)
            for (int64_t r = 0; r < kBr; ++r) st[size_t(j * kBr + r)] -= r < n ? m[size_t(r)] : 0.0f;
          mc.exp_sum(st.data(), nk * kBr, 0.0f);  // in place exp (-inf gives 0)
          for (int64_t j = 0; j < nk; ++j) {
            const int32_t c = bin[size_t(j0 + j)];
            if (c < 0) continue;
            float* a = acc.data() + c * kBr;
            const float* s = st.data() + j * kBr;
            for (int64_t r = 0; r < n; ++r) a[r] += s[r] / l[size_t(r)];
          }
        }
      }
      // into the pixel rows (a pixel row may span two tiles: under the lock)
      std::lock_guard<std::mutex> lock(out_mu);
      for (int64_t r = 0; r < n; ++r) {
        float* o = out + g.pixel_row(i0 + r) * cols;  // [cols]
        for (int64_t c = 0; c < cmax; ++c) {
          const float v = acc[size_t(c * kBr + r)];
          o[c] = max ? std::max(o[c], v) : o[c] + v;
        }
      }
    }
  };
  // chunks of consecutive tiles (their buffers allocated once per chunk), several per thread: later tiles cost more
  const int64_t threads = kernel_threads(), chunks = std::min(tiles, threads > 1 ? threads * 8 : 1);
  parallel_items(chunks, threads, [&](int64_t c) { run_tiles(tiles * c / chunks, tiles * (c + 1) / chunks); });
  if (!max)  // mean: each pixel's sum over the pairs it covers
    for (int64_t r = 0; r < g.rows; ++r)
      for (int64_t c = 0; c < cols; ++c)
        out[r * cols + c] /= float((g.first_row(r + 1) - g.first_row(r)) * (g.first_col(c + 1) - g.first_col(c)));
}

}  // namespace attnscope
