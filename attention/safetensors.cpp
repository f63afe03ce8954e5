// safetensors.cpp: see safetensors.h for the file format.
#include "safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

namespace attnscope {

namespace {

using json = nlohmann::json;

// The reference implementation refuses headers above 100 MB; anything that large is corruption.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// ----------------------------------------------------------------------------
// small helpers

// Explicit little-endian loads/stores, so the code is correct on any host byte order.
uint16_t load_le16(const uint8_t* p) { return uint16_t(p[0] | (p[1] << 8)); }
uint32_t load_le32(const uint8_t* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}
uint64_t load_le64(const uint8_t* p) { return uint64_t(load_le32(p)) | (uint64_t(load_le32(p + 4)) << 32); }
void store_le16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
}
void store_le32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = uint8_t(v >> (8 * i));
}
void store_le64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = uint8_t(v >> (8 * i));
}

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// numel and byte size of a shape, or nullopt on a negative dim or 64-bit overflow. A zero dim
// makes the product 0 whatever the other dims, so it is checked before multiplying.
std::optional<int64_t> checked_numel(const std::vector<int64_t>& shape) {
  for (int64_t d : shape)
    if (d < 0) return std::nullopt;
  for (int64_t d : shape)
    if (d == 0) return 0;
  int64_t n = 1;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n)) return std::nullopt;
  return n;
}
std::optional<uint64_t> checked_nbytes(const std::vector<int64_t>& shape, DType dt) {
  std::optional<int64_t> n = checked_numel(shape);
  uint64_t bytes;
  if (!n || __builtin_mul_overflow(uint64_t(*n), uint64_t(dtype_size(dt)), &bytes)) return std::nullopt;
  return bytes;
}

// A JSON value as a non-negative integer that fits in int64, or nullopt. nlohmann stores
// non-negative integers as number_unsigned and negative ones as number_integer.
std::optional<int64_t> json_nonneg_int(const json& j) {
  if (!j.is_number_unsigned()) return std::nullopt;
  uint64_t v = j.get<uint64_t>();
  if (v > uint64_t(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return int64_t(v);
}

// ----------------------------------------------------------------------------
// atomic file writing: path.tmp.<pid>, write, fsync, close, rename onto path.
// The destructor removes the temp file unless commit() succeeded.

class AtomicWriter {
 public:
  explicit AtomicWriter(const std::string& path) : path_(path), tmp_(path + ".tmp." + std::to_string(getpid())) {
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("cannot create temporary file '" + tmp_ + "'");
  }
  AtomicWriter(const AtomicWriter&) = delete;
  AtomicWriter& operator=(const AtomicWriter&) = delete;
  ~AtomicWriter() {
    if (committed_) return;
    if (fd_ >= 0) ::close(fd_);
    ::unlink(tmp_.c_str());
  }

  void write(const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
      ssize_t w = ::write(fd_, c, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) fail("error writing '" + tmp_ + "'");
      c += w;
      n -= size_t(w);
    }
  }

  void commit() {
    if (::fsync(fd_) != 0) fail("error flushing '" + tmp_ + "'");
    int fd = fd_;
    fd_ = -1;  // close() releases the descriptor even when it reports an error
    if (::close(fd) != 0) fail("error closing '" + tmp_ + "'");
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) fail("cannot rename '" + tmp_ + "' onto '" + path_ + "'");
    committed_ = true;
    // Best effort: fsync the directory so the rename itself survives a crash.
    size_t slash = path_.find_last_of('/');
    std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path_.substr(0, slash);
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }

 private:
  // Throws Error with the OS reason; errno is captured first.
  [[noreturn]] void fail(const std::string& msg) {
    std::string reason = std::strerror(errno);
    throw Error("writing '" + path_ + "': " + msg + ": " + reason);
  }

  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
};

}  // namespace

// ----------------------------------------------------------------------------
// dtypes

const char* dtype_name(DType dt) {
  switch (dt) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
  }
  return "?";
}

size_t dtype_size(DType dt) { return dt == DType::F32 ? 4 : 2; }

std::optional<DType> parse_dtype(const std::string& s) {
  for (DType dt : {DType::F32, DType::F16, DType::BF16})
    if (s == dtype_name(dt)) return dt;
  return std::nullopt;
}

int64_t StTensor::numel() const {
  std::optional<int64_t> n = checked_numel(shape);
  if (!n) throw Error("tensor '" + name + "': invalid shape " + shape_str(shape));
  return *n;
}

const StTensor* StFile::find(const std::string& name) const {
  for (const StTensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

// ----------------------------------------------------------------------------
// reading

StFile parse_safetensors(const uint8_t* bytes, size_t n, const std::string& what) {
  auto err = [&](const std::string& msg) { return Error(what + ": " + msg); };

  // 1) the 8-byte header length and the header bounds
  if (n < 8)
    throw err("file is " + std::to_string(n) +
              " bytes, shorter than the 8-byte header length prefix (not a safetensors file)");
  uint64_t header_len = load_le64(bytes);
  if (header_len > kMaxHeaderBytes)
    throw err("header length " + std::to_string(header_len) + " is larger than the " + std::to_string(kMaxHeaderBytes) +
              "-byte limit (corrupt or not a safetensors file)");
  if (header_len > n - 8)
    throw err("header length " + std::to_string(header_len) + " is past the end of the file (only " +
              std::to_string(n - 8) + " bytes follow the length prefix; truncated or not a safetensors file)");
  const char* hbegin = reinterpret_cast<const char*>(bytes + 8);
  const uint8_t* data = bytes + 8 + header_len;
  const uint64_t data_size = n - 8 - header_len;

  // 2) the header JSON. A NUL byte is never valid JSON text, but nlohmann treats it as the end of
  // input, so "{}\0garbage" would be accepted without this check.
  if (const void* nul = std::memchr(hbegin, 0, header_len))
    throw err("header is not valid JSON: NUL byte at offset " + std::to_string(static_cast<const char*>(nul) - hbegin));
  json header;
  try {
    header = json::parse(hbegin, hbegin + header_len);
  } catch (const json::exception& e) {
    throw err(std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) throw err("header is not a JSON object");

  // 3) every entry: metadata, or a tensor with validated dtype/shape/offsets
  StFile f;
  struct Span {
    uint64_t begin, end;
    size_t index;  // into f.tensors
  };
  std::vector<Span> spans;
  for (const auto& item : header.items()) {
    const std::string key = item.key();  // not a structured binding: lambdas below capture it
    const auto& val = item.value();
    if (key == "__metadata__") {
      if (!val.is_object()) throw err("__metadata__ must be a JSON object of strings");
      for (const auto& [mk, mv] : val.items()) {
        if (!mv.is_string()) throw err("__metadata__ value '" + mk + "' must be a string");
        f.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    auto terr = [&](const std::string& msg) { return err("tensor '" + key + "': " + msg); };
    if (!val.is_object()) throw terr("entry must be a JSON object");
    for (const char* field : {"dtype", "shape", "data_offsets"})
      if (!val.contains(field)) throw terr(std::string("missing '") + field + "'");

    StTensor t;
    t.name = key;
    const json& jd = val["dtype"];
    if (!jd.is_string()) throw terr("'dtype' must be a string");
    std::optional<DType> dt = parse_dtype(jd.get<std::string>());
    if (!dt) throw terr("dtype '" + jd.get<std::string>() + "' is not supported (F32, F16, BF16)");
    t.dtype = *dt;

    const json& js = val["shape"];
    if (!js.is_array()) throw terr("'shape' must be an array of integers");
    for (const json& d : js) {
      if (d.is_number_integer() && !d.is_number_unsigned())
        throw terr("shape has a negative dimension " + std::to_string(d.get<int64_t>()));
      std::optional<int64_t> v = json_nonneg_int(d);
      if (!v) throw terr("'shape' must be an array of integers (got " + d.dump() + ")");
      t.shape.push_back(*v);
    }
    std::optional<uint64_t> need = checked_nbytes(t.shape, t.dtype);
    if (!need) throw terr("shape " + shape_str(t.shape) + " is too large (element count overflows)");

    const json& jo = val["data_offsets"];
    std::optional<int64_t> b, e;
    if (jo.is_array() && jo.size() == 2) {
      b = json_nonneg_int(jo[0]);
      e = json_nonneg_int(jo[1]);
    }
    if (!b || !e) throw terr("'data_offsets' must be [begin, end] with non-negative integers (got " + jo.dump() + ")");
    const uint64_t begin = uint64_t(*b), end = uint64_t(*e);
    const std::string offs = "data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) + "]";
    if (begin > end) throw terr(offs + ": begin " + std::to_string(begin) + " > end " + std::to_string(end));
    if (end > data_size)
      throw terr(offs + " is past the end of the data section, which has " + std::to_string(data_size) +
                 " bytes (file truncated or offsets corrupt)");
    if (end - begin != *need)
      throw terr(offs + " spans " + std::to_string(end - begin) + " bytes but shape " + shape_str(t.shape) +
                 " with dtype " + dtype_name(t.dtype) + " needs " + std::to_string(*need) + " bytes");
    spans.push_back({begin, end, f.tensors.size()});
    f.tensors.push_back(std::move(t));
  }

  // 4) no two tensors may share bytes (empty tensors occupy nothing). Sorted by position,
  // each non-empty span must start at or after the furthest end seen so far.
  std::sort(spans.begin(), spans.end(),
            [](const Span& a, const Span& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  const Span* furthest = nullptr;
  for (const Span& s : spans) {
    if (s.begin == s.end) continue;
    if (furthest && s.begin < furthest->end)
      throw err("tensors '" + f.tensors[furthest->index].name + "' [" + std::to_string(furthest->begin) + ", " +
                std::to_string(furthest->end) + ") and '" + f.tensors[s.index].name + "' [" + std::to_string(s.begin) +
                ", " + std::to_string(s.end) + ") overlap");
    if (!furthest || s.end > furthest->end) furthest = &s;
  }

  // 5) copy the bytes out, returning tensors in data-section order
  std::vector<StTensor> ordered;
  ordered.reserve(spans.size());
  for (const Span& s : spans) {
    StTensor& t = f.tensors[s.index];
    t.data.assign(data + s.begin, data + s.end);
    ordered.push_back(std::move(t));
  }
  f.tensors = std::move(ordered);
  return f;
}

StFile read_safetensors(const std::string& path) {
  // errno-based message; errno is read before anything else can change it
  auto os_err = [&](const std::string& msg) {
    std::string reason = std::strerror(errno);
    return Error("'" + path + "': " + msg + ": " + reason);
  };
  struct Fd {  // closes the descriptor on every exit path
    int fd;
    ~Fd() {
      if (fd >= 0) ::close(fd);
    }
  } f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) throw os_err("cannot open safetensors file");
  struct stat st;
  if (::fstat(f.fd, &st) != 0) throw os_err("cannot stat safetensors file");
  if (!S_ISREG(st.st_mode)) throw Error("'" + path + "': not a regular file");

  std::vector<uint8_t> bytes(size_t(st.st_size));
  size_t got = 0;
  while (got < bytes.size()) {
    ssize_t r = ::read(f.fd, bytes.data() + got, bytes.size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw os_err("error reading safetensors file");
    if (r == 0) throw Error("'" + path + "': file shrank while being read");
    got += size_t(r);
  }
  return parse_safetensors(bytes.data(), bytes.size(), "'" + path + "'");
}

// ----------------------------------------------------------------------------
// writing

void write_safetensors(const std::string& path, const StFile& f) {
  auto err = [&](const std::string& msg) { return Error("writing '" + path + "': " + msg); };

  // Header: ordered_json keeps "__metadata__" first and tensors in the given order.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!f.metadata.empty()) header["__metadata__"] = f.metadata;
  uint64_t offset = 0;
  for (const StTensor& t : f.tensors) {
    if (t.name == "__metadata__") throw err("'__metadata__' is reserved and cannot be a tensor name");
    if (header.contains(t.name)) throw err("duplicate tensor name '" + t.name + "'");
    std::optional<uint64_t> need = checked_nbytes(t.shape, t.dtype);
    if (!need) throw err("tensor '" + t.name + "': invalid shape " + shape_str(t.shape));
    if (t.data.size() != *need)
      throw err("tensor '" + t.name + "' has " + std::to_string(t.data.size()) + " bytes of data but shape " +
                shape_str(t.shape) + " with dtype " + dtype_name(t.dtype) + " needs " + std::to_string(*need));
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + *need}}};
    offset += *need;
  }
  std::string hs;
  try {
    hs = header.dump();  // compact, like the reference; throws on invalid UTF-8 in names
  } catch (const nlohmann::json::exception& e) {
    throw err(std::string("cannot encode header: ") + e.what());
  }
  hs.append((8 - hs.size() % 8) % 8, ' ');  // pad to a multiple of 8 bytes, as the reference does

  uint8_t len[8];
  store_le64(len, hs.size());
  AtomicWriter w(path);
  w.write(len, 8);
  w.write(hs.data(), hs.size());
  for (const StTensor& t : f.tensors) w.write(t.data.data(), t.data.size());
  w.commit();
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  AtomicWriter w(path);
  w.write(contents.data(), contents.size());
  w.commit();
}

// ----------------------------------------------------------------------------
// float conversions

uint16_t float_to_half(float f) {
  const uint32_t x = float_bits(f);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000);
  const uint32_t a = x & 0x7fffffff;                                       // |f| as bits
  if (a > 0x7f800000) return sign | 0x7e00 | uint16_t((a >> 13) & 0x3ff);  // NaN: quiet, keep top payload
  if (a >= 0x477ff000) return sign | 0x7c00;                               // inf, or >= 65520 which rounds to inf
  if (a >= 0x38800000) {
    // normal half (|f| >= 2^-14): rebias exponent 127 -> 15, drop 13 mantissa bits rounding to
    // nearest even. A mantissa carry correctly bumps the exponent.
    uint32_t r = a + 0xfff + ((a >> 13) & 1);
    return sign | uint16_t((r - (uint32_t(127 - 15) << 23)) >> 13);
  }
  // subnormal half: value = m * 2^-24 with m = |f| / 2^-24 rounded to nearest even.
  // |f| < 2^-25 (float exponent field < 102, float subnormals included) rounds to zero;
  // exactly 2^-25 is a tie and the rounding below takes it to even, i.e. zero, too.
  const uint32_t e = a >> 23;
  if (e < 102) return sign;
  const uint32_t mant = (a & 0x7fffff) | 0x800000;  // 24-bit significand; |f| = mant * 2^(e-150)
  const uint32_t shift = 126 - e;                   // 14..24
  uint32_t m = mant >> shift;
  const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
  if (rem > half || (rem == half && (m & 1))) m++;  // m == 0x400 is the smallest normal: still correct
  return sign | uint16_t(m);
}

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e == 0x1f) return bits_float(sign | 0x7f800000 | (m << 13));  // inf / NaN
  if (e == 0) {                                                     // zero / subnormal: m * 2^-24 exactly
    float v = std::ldexp(float(m), -24);
    return sign ? -v : v;
  }
  return bits_float(sign | ((e + 127 - 15) << 23) | (m << 13));
}

uint16_t float_to_bf16(float f) {
  uint32_t x = float_bits(f);
  if ((x & 0x7fffffff) > 0x7f800000) return uint16_t((x >> 16) | 0x40);  // NaN: keep it a (quiet) NaN
  x += 0x7fff + ((x >> 16) & 1);  // round to nearest even; large values correctly carry into inf
  return uint16_t(x >> 16);
}

float bf16_to_float(uint16_t h) { return bits_float(uint32_t(h) << 16); }

std::vector<uint8_t> encode_floats(const float* src, size_t n, DType dt) {
  std::vector<uint8_t> out(n * dtype_size(dt));
  uint8_t* p = out.data();
  for (size_t i = 0; i < n; i++) {
    switch (dt) {
      case DType::F32: store_le32(p + 4 * i, float_bits(src[i])); break;
      case DType::F16: store_le16(p + 2 * i, float_to_half(src[i])); break;
      case DType::BF16: store_le16(p + 2 * i, float_to_bf16(src[i])); break;
    }
  }
  return out;
}

std::vector<float> decode_floats(const StTensor& t) {
  std::optional<uint64_t> need = checked_nbytes(t.shape, t.dtype);
  if (!need || t.data.size() != *need)
    throw Error("tensor '" + t.name + "': " + std::to_string(t.data.size()) + " bytes of data do not match shape " +
                shape_str(t.shape) + " with dtype " + dtype_name(t.dtype));
  const size_t n = t.data.size() / dtype_size(t.dtype);
  const uint8_t* p = t.data.data();
  std::vector<float> out(n);
  for (size_t i = 0; i < n; i++) {
    switch (t.dtype) {
      case DType::F32: out[i] = bits_float(load_le32(p + 4 * i)); break;
      case DType::F16: out[i] = half_to_float(load_le16(p + 2 * i)); break;
      case DType::BF16: out[i] = bf16_to_float(load_le16(p + 2 * i)); break;
    }
  }
  return out;
}

}  // namespace attnscope
