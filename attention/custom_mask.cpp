#include "custom_mask.h"

#include <algorithm>

#include "error.h"

namespace attnscope {

namespace {
void set_cell(CustomMask& m, int64_t i, int64_t j, bool value) {
  if (i < 0 || j < 0 || i >= m.n || j >= m.n || j > i) return;
  m.cells[static_cast<size_t>(i * m.n + j)] = value ? 1 : 0;
}
}  // namespace

int64_t CustomMask::allowed_pairs() const { return std::count(cells.begin(), cells.end(), uint8_t(1)); }

CustomMask clear_mask(int64_t n) {
  if (n < 1 || n > 65536) throw Error("custom mask: side length must be 1..65536, got " + std::to_string(n));
  CustomMask m;
  m.n = n;
  m.cells.assign(static_cast<size_t>(n * n), 0);
  return m;
}

CustomMask causal_mask(int64_t n) {
  CustomMask m = clear_mask(n);
  paint_band(m, 0, n - 1, true);
  return m;
}

void paint_brush(CustomMask& m, int64_t i, int64_t j, int64_t radius, bool value) {
  for (int64_t a = i - radius; a <= i + radius; ++a)
    for (int64_t b = j - radius; b <= j + radius; ++b)
      if ((a - i) * (a - i) + (b - j) * (b - j) <= radius * radius) set_cell(m, a, b, value);
}

void paint_rect(CustomMask& m, int64_t i0, int64_t j0, int64_t i1, int64_t j1, bool value) {
  const int64_t ia = std::max<int64_t>(0, std::min(i0, i1)), ib = std::min(m.n - 1, std::max(i0, i1));
  const int64_t ja = std::max<int64_t>(0, std::min(j0, j1)), jb = std::min(m.n - 1, std::max(j0, j1));
  for (int64_t i = ia; i <= ib; ++i)
    for (int64_t j = ja; j <= std::min(jb, i); ++j) set_cell(m, i, j, value);
}

void paint_band(CustomMask& m, int64_t lo, int64_t hi, bool value) {
  for (int64_t i = 0; i < m.n; ++i)
    for (int64_t d = std::max<int64_t>(lo, 0); d <= std::min(hi, i); ++d) set_cell(m, i, i - d, value);
}

void paint_columns(CustomMask& m, int64_t j0, int64_t j1, bool value) { paint_rect(m, 0, j0, m.n - 1, j1, value); }

void clear(CustomMask& m) { std::fill(m.cells.begin(), m.cells.end(), uint8_t(0)); }

int64_t causal_clip(CustomMask& m) {
  int64_t cleared = 0;
  for (int64_t i = 0; i < m.n; ++i)
    for (int64_t j = i + 1; j < m.n; ++j) {
      uint8_t& c = m.cells[static_cast<size_t>(i * m.n + j)];
      cleared += c;
      c = 0;
    }
  return cleared;
}

CustomMask mask_from_rows(const std::vector<std::string>& rows) {
  std::vector<std::string> clean;
  std::vector<size_t> line_of;
  for (size_t l = 0; l < rows.size(); ++l) {
    if (!rows[l].empty() && rows[l][0] == '#') continue;  // a comment
    std::string r;
    for (char c : rows[l]) {
      if (c == ' ' || c == '\t' || c == '\r') continue;
      if (c != '0' && c != '1')
        throw Error("mask line " + std::to_string(l + 1) + ": '" + std::string(1, c) + "' is not 0 or 1");
      r += c;
    }
    if (r.empty()) continue;
    clean.push_back(r);
    line_of.push_back(l + 1);
  }
  if (clean.empty()) throw Error("custom mask: no rows of 0/1 found");
  CustomMask m = clear_mask(static_cast<int64_t>(clean.size()));
  for (size_t i = 0; i < clean.size(); ++i) {
    if (static_cast<int64_t>(clean[i].size()) != m.n)
      throw Error("mask line " + std::to_string(line_of[i]) + ": " + std::to_string(clean[i].size()) +
                  " cells, but the mask has " + std::to_string(m.n) + " rows (it must be square)");
    for (int64_t j = 0; j < m.n; ++j) m.cells[i * size_t(m.n) + size_t(j)] = clean[i][size_t(j)] == '1';
  }
  causal_clip(m);
  return m;
}

CustomMask parse_mask_text(const std::string& text) {
  std::vector<std::string> lines;
  size_t at = 0;
  while (at <= text.size()) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(at, nl - at));
    at = nl + 1;
  }
  return mask_from_rows(lines);
}

std::vector<std::string> mask_rows(const CustomMask& m) {
  std::vector<std::string> rows;
  for (int64_t i = 0; i < m.n; ++i) {
    std::string r(static_cast<size_t>(m.n), '0');
    for (int64_t j = 0; j < m.n; ++j)
      if (m.at(i, j)) r[static_cast<size_t>(j)] = '1';
    rows.push_back(std::move(r));
  }
  return rows;
}

std::string mask_text(const CustomMask& m) {
  std::string s;
  for (const auto& r : mask_rows(m)) s += r + "\n";
  return s;
}

}  // namespace attnscope
