#pragma once
// Painted attention masks for the `custom` variant: which (query i, key j) pairs may be computed, as data. No
// LibTorch here: the GUI edits a mask with these helpers and hands it to the engine in a LayerSpec.
// The painted square covers queries and keys 0..n-1; pairs outside it are causal (j <= i). Every helper keeps the
// mask causal (cells above the diagonal stay 0), so a mask can never let a query see the future.
#include <cstdint>
#include <string>
#include <vector>

namespace attnscope {

struct CustomMask {
  int64_t n = 0;               // side length; 0 = nothing painted (causal everywhere)
  std::vector<uint8_t> cells;  // [n, n] row-major, 1 = query i may attend key j

  bool empty() const { return n == 0; }
  bool at(int64_t i, int64_t j) const { return cells[static_cast<size_t>(i * n + j)] != 0; }
  int64_t allowed_pairs() const;  // cells set
  bool operator==(const CustomMask& o) const { return n == o.n && cells == o.cells; }
};

// An n x n mask, every cell 0 (clear) or the causal lower triangle (causal). Throws Error for n outside 1..65536.
CustomMask clear_mask(int64_t n);
CustomMask causal_mask(int64_t n);

// Editing. value: 1 paints, 0 erases. Cells outside the square and above the diagonal are ignored.
// Brush: the disc of `radius` cells around (i, j) (radius 0 = one cell).
void paint_brush(CustomMask& m, int64_t i, int64_t j, int64_t radius, bool value);
// Rectangle between the corners (i0, j0) and (i1, j1), inclusive, in any order.
void paint_rect(CustomMask& m, int64_t i0, int64_t j0, int64_t i1, int64_t j1, bool value);
// Diagonal band: every cell with lo <= i - j <= hi (a window of W keys is the band 0..W-1).
void paint_band(CustomMask& m, int64_t lo, int64_t hi, bool value);
// Columns j0..j1 (inclusive) for every query at or after them (global tokens).
void paint_columns(CustomMask& m, int64_t j0, int64_t j1, bool value);
void clear(CustomMask& m);  // every cell 0
// Clears every cell above the diagonal; returns how many were set.
int64_t causal_clip(CustomMask& m);

// Text form: one row per line of '0'/'1' (n rows of n characters). Lines starting with '#' and blank lines are
// skipped; spaces inside a row are ignored. Cells above the diagonal are clipped. Throws Error naming the line.
CustomMask parse_mask_text(const std::string& text);
std::vector<std::string> mask_rows(const CustomMask& m);          // n strings of n characters '0'/'1'
CustomMask mask_from_rows(const std::vector<std::string>& rows);  // as parse_mask_text, row by row
std::string mask_text(const CustomMask& m);                       // rows joined by '\n', with a trailing '\n'

}  // namespace attnscope
