#include "npy.h"

#include <cstring>

namespace attnscope {

std::string npy_bytes(const std::vector<int64_t>& shape, const float* data) {
  std::string dims;
  int64_t n = 1;
  for (int64_t s : shape) {
    dims += std::to_string(s) + ",";
    n *= s;
  }
  if (shape.size() > 1) dims.pop_back();  // (3,) for 1-D, (2,3) otherwise
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // magic(6) + version(2) + header length(2) + header, padded with spaces and ended by '\n' to a multiple of 64.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(header.size() & 0xFF));
  out.push_back(static_cast<char>(header.size() >> 8));
  out += header;
  const size_t bytes = static_cast<size_t>(n) * sizeof(float);
  size_t at = out.size();
  out.resize(at + bytes);
  if (bytes) std::memcpy(&out[at], data, bytes);  // little-endian host (x86_64, aarch64)
  return out;
}

}  // namespace attnscope
