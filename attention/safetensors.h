// safetensors.h: a small, dependency-light reader/writer for the safetensors format.
//
// File layout (https://github.com/huggingface/safetensors):
//   [8 bytes]  N = header length, unsigned 64-bit little-endian
//   [N bytes]  header: UTF-8 JSON object, padded with spaces to a multiple of 8 bytes
//              { "__metadata__": {"key": "value", ...},            (optional, string -> string)
//                "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ... }
//   [rest]     data section; each tensor's raw little-endian bytes live at [begin, end)
//              relative to the start of the data section.
//
// Only the floating point dtypes attnscope stores (F32, F16, BF16) are supported. This file
// deliberately does not depend on LibTorch so it can be used (and tested) on its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "error.h"

namespace attnscope {

// ----------------------------------------------------------------------------
// dtypes

enum class DType { F32, F16, BF16 };

const char* dtype_name(DType dt);                        // "F32", "F16", "BF16"
size_t dtype_size(DType dt);                             // bytes per element: 4, 2, 2
std::optional<DType> parse_dtype(const std::string& s);  // exact, case-sensitive names

// ----------------------------------------------------------------------------
// in-memory representation of a file

struct StTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;  // empty shape = scalar (numel 1)
  std::vector<uint8_t> data;   // raw little-endian bytes, numel() * dtype_size(dtype) of them
  // Product of the dims; throws Error on a negative dim or int64 overflow.
  int64_t numel() const;
};

struct StFile {
  std::vector<StTensor> tensors;                // in data-section order
  std::map<std::string, std::string> metadata;  // the "__metadata__" entry
  // The tensor with that name, or nullptr.
  const StTensor* find(const std::string& name) const;
};

// ----------------------------------------------------------------------------
// reading

// Reads and fully validates a file. Every problem (missing file, truncation, malformed header,
// unsupported dtype, inconsistent sizes, overlapping tensors, ...) throws Error naming the file
// and the offending tensor/field. Never reads out of bounds, whatever the bytes.
StFile read_safetensors(const std::string& path);
// Same, from bytes in memory; what_for_messages prefixes every error message (e.g. the path).
StFile parse_safetensors(const uint8_t* bytes, size_t n, const std::string& what_for_messages);

// ----------------------------------------------------------------------------
// writing

// Writes atomically: the bytes go to path + ".tmp.<pid>", which is fsync'ed and renamed onto
// path. On any failure the temp file is removed and Error is thrown. The header is compact JSON
// ("__metadata__" first if non-empty, then the tensors in the given order) padded with spaces to
// a multiple of 8 bytes, as the reference implementation does; tensors are laid out back to back
// in the given order.
void write_safetensors(const std::string& path, const StFile& f);
// Atomic write of any file (same temp + fsync + rename discipline), e.g. config.json.
void write_file_atomic(const std::string& path, const std::string& contents);

// ----------------------------------------------------------------------------
// float conversions

// float32 -> stored bytes (little-endian), n elements.
std::vector<uint8_t> encode_floats(const float* src, size_t n, DType dt);
// Stored bytes -> float32, any dtype. Throws Error if data.size() doesn't match the shape.
std::vector<float> decode_floats(const StTensor& t);

// IEEE binary16: round-to-nearest-even, overflow to inf, subnormals kept, NaN stays (quiet) NaN.
uint16_t float_to_half(float f);
float half_to_float(uint16_t h);
// bfloat16 (top 16 bits of a float32): round-to-nearest-even, NaN stays (quiet) NaN.
uint16_t float_to_bf16(float f);
float bf16_to_float(uint16_t h);

}  // namespace attnscope
