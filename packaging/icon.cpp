// The application icon, drawn by the project's own renderer from the attention matrix `attnscope render` computed
// (a CSV: one head's weights, a row per query): a square of cells, warm where the head attends, masked pairs dark.
// Written twice from the same cells: OUT.svg (scalable) and OUT.png (SIZE x SIZE pixels, app/render/canvas.h).
// Usage: attnscope_icon IN.csv OUT.svg OUT.png [SIZE]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "render/canvas.h"
#include "safetensors.h"  // write_file_atomic

namespace {

using attnscope::render::Canvas;
using attnscope::render::Rgb;

const Rgb kGround{0x1b, 0x12, 0x30};  // the dark square, and every masked pair
const Rgb kWarm{0xfc, 0xb4, 0x6a};    // a weight of 1

// w [N][N]: row i holds query i's weights over keys 0..N-1 (j > i: masked). Throws on a ragged or empty file.
std::vector<std::vector<double>> read_matrix(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::vector<std::vector<double>> w;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    std::vector<double> row;
    std::stringstream cells(line);
    for (std::string c; std::getline(cells, c, ',');) row.push_back(std::strtod(c.c_str(), nullptr));
    w.push_back(row);
  }
  if (w.empty()) throw std::runtime_error(path + ": no rows");
  for (const auto& row : w)
    if (row.size() != w.size()) throw std::runtime_error(path + ": not a square matrix");
  return w;
}

// The cell's opacity over the ground: its weight, at least a trace for every computed pair.
double opacity(double weight) { return std::clamp(weight, 0.05, 1.0); }

std::string svg(const std::vector<std::vector<double>>& w) {
  const size_t n = w.size(), size = n * 16;
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << size << "\" height=\"" << size << "\" viewBox=\"0 0 "
    << size << ' ' << size << "\">\n<rect width=\"" << size << "\" height=\"" << size
    << "\" rx=\"24\" fill=\"#1b1230\"/>\n";
  char op[16];
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j <= i; ++j) {
      std::snprintf(op, sizeof op, "%.2f", opacity(w[i][j]));
      s << "<rect x=\"" << j * 16 + 1 << "\" y=\"" << i * 16 + 1
        << "\" width=\"14\" height=\"14\" fill=\"#fcb46a\" fill-opacity=\"" << op << "\"/>\n";
    }
  s << "</svg>\n";
  return s.str();
}

std::string png(const std::vector<std::vector<double>>& w, int size) {
  const int n = int(w.size());
  const double cell = double(size) / n, gap = std::max(1.0, cell / 8);
  Canvas cv(size, size, kGround);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j <= i; ++j) {
      const double a = opacity(w[i][j]);
      const Rgb c{uint8_t(kGround.r + a * (kWarm.r - kGround.r) + 0.5),
                  uint8_t(kGround.g + a * (kWarm.g - kGround.g) + 0.5),
                  uint8_t(kGround.b + a * (kWarm.b - kGround.b) + 0.5)};
      cv.fill_rect(j * cell + gap / 2, i * cell + gap / 2, cell - gap, cell - gap, c);
    }
  return cv.png();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4 || argc > 5) {
    std::fprintf(stderr, "usage: attnscope_icon IN.csv OUT.svg OUT.png [SIZE]\n");
    return 2;
  }
  try {
    const auto w = read_matrix(argv[1]);
    const int size = argc == 5 ? std::atoi(argv[4]) : 256;
    if (size < 16 || size > 1024) throw std::runtime_error("SIZE must be 16..1024 pixels");
    attnscope::write_file_atomic(argv[2], svg(w));
    attnscope::write_file_atomic(argv[3], png(w, size));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attnscope_icon: %s\n", e.what());
    return 1;
  }
  return 0;
}
