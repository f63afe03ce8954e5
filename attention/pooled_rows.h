#pragma once
// One head of a dense causal softmax layer (the exact MHA family, RoPE / none / ALiBi) pooled into pixels without
// ever holding its rows: the fused kernel's tiles (flash_micro.h) computed a query tile of 64 rows at a time.
//
//   w_ij = exp(s_ij - m_i) / l_i,  s_ij = q_i . k_j + a (j - i) for j <= i  (q pre-scaled by 1/sqrt(d), a the ALiBi
//   slope or 0), m_i = max_j s_ij, l_i = sum_j exp(s_ij - m_i)
//
// Max pooling needs no weight at all until the end: the largest weight in a pixel's keys is exp(max_bin s - m) / l,
// so each tile only keeps the running (m, l) of its rows (online softmax) and the running score maximum of every
// pixel column; a pixel is then the max over its character rows. Mean pooling takes a second pass over the tiles
// with the final (m, l): the sum of exp(s - m) / l over the pixel's pairs, divided by the pairs it covers.
// Work O(T^2 d / 2) for the whole map, memory O(rows x cols + T); rows run in parallel on LibTorch's threads.
#include <cstdint>

namespace attnscope {

struct PoolGrid {
  int64_t row0 = 0, row1 = 0, col0 = 0, col1 = 0;  // the region: query rows [row0, row1), key columns [col0, col1)
  int64_t rows = 0, cols = 0;                      // pixels: rows x cols over the region
  // pixel row r covers character rows [first_row(r), first_row(r + 1)): ceil(r n / rows) past row0
  int64_t first_row(int64_t r) const { return row0 + (r * (row1 - row0) + rows - 1) / rows; }
  int64_t first_col(int64_t c) const { return col0 + (c * (col1 - col0) + cols - 1) / cols; }
  int64_t pixel_row(int64_t i) const { return (i - row0) * rows / (row1 - row0); }
  int64_t pixel_col(int64_t j) const { return (j - col0) * cols / (col1 - col0); }
};

// q, k: [T, d] fp32 row-major (q already multiplied by 1/sqrt(d)); out: [rows, cols], each pixel the max (or mean)
// of the weights it covers, 0 where all its pairs are above the diagonal.
void pooled_causal_softmax(const float* q, const float* k, int64_t T, int64_t d, float alibi_slope, const PoolGrid& g,
                           bool max, float* out);

}  // namespace attnscope
