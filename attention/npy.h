#pragma once
// NumPy .npy (format 1.0) writer for float32 arrays.
#include <cstdint>
#include <string>
#include <vector>

namespace attnscope {
std::string npy_bytes(const std::vector<int64_t>& shape, const float* data);
}
