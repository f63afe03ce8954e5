// Tests for attention/safetensors.{h,cpp}: conversions, round trips, the exact byte layout, and a
// corrupt-file suite where every kind of damage must produce its own clear Error.
#include "safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

namespace fs = std::filesystem;
using namespace attnscope;

namespace {

// ----------------------------------------------------------------------------
// helpers

// A fresh per-process directory under gtest's temp dir.
std::string temp_dir() {
  static const std::string dir = [] {
    std::string d = ::testing::TempDir() + "attnscope_st_" + std::to_string(getpid());
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
  }();
  return dir;
}
std::string temp_path(const std::string& name) { return temp_dir() + "/" + name; }

// Removes the temp dir after all tests (registered before gtest_main's RUN_ALL_TESTS).
struct TempDirCleanup : ::testing::Environment {
  void TearDown() override { fs::remove_all(temp_dir()); }
};
const auto* const kCleanup = ::testing::AddGlobalTestEnvironment(new TempDirCleanup);

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}
void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

// A raw file: 8-byte LE length of `header` (used verbatim, no padding), header, data.
std::vector<uint8_t> raw_file(const std::string& header, const std::vector<uint8_t>& data, uint64_t len_override = 0) {
  uint64_t len = len_override ? len_override : header.size();
  std::vector<uint8_t> b(8);
  for (int i = 0; i < 8; i++) b[i] = uint8_t(len >> (8 * i));
  b.insert(b.end(), header.begin(), header.end());
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

StTensor make_tensor(const std::string& name, DType dt, std::vector<int64_t> shape, const std::vector<float>& v) {
  StTensor t;
  t.name = name;
  t.dtype = dt;
  t.shape = std::move(shape);
  t.data = encode_floats(v.data(), v.size(), dt);
  return t;
}

// The message of the Error thrown by parsing `bytes`; fails the test if nothing (or something
// other than Error) is thrown.
std::string parse_error(const std::vector<uint8_t>& bytes) {
  try {
    parse_safetensors(bytes.data(), bytes.size(), "test.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected attnscope::Error";
  return "";
}
std::string read_error(const std::string& path) {
  try {
    read_safetensors(path);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected attnscope::Error for " << path;
  return "";
}
#define EXPECT_HAS(msg, sub)                                         \
  do {                                                               \
    const std::string m_ = (msg); /* evaluated once */               \
    EXPECT_NE(m_.find(sub), std::string::npos) << "message: " << m_; \
  } while (0)

// 24 bytes of data: room for one F32 [2,3] tensor.
const std::vector<uint8_t> kData24(24, 0);

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Files left behind in the temp dir whose name contains ".tmp."
int temp_files_left() {
  int n = 0;
  for (const auto& e : fs::directory_iterator(temp_dir()))
    if (e.path().filename().string().find(".tmp.") != std::string::npos) n++;
  return n;
}

}  // namespace

// ----------------------------------------------------------------------------
// dtypes and conversions

TEST(SafetensorsDType, NamesSizesParse) {
  for (DType dt : {DType::F32, DType::F16, DType::BF16}) EXPECT_EQ(parse_dtype(dtype_name(dt)), dt);
  EXPECT_EQ(dtype_size(DType::F32), 4u);
  EXPECT_EQ(dtype_size(DType::F16), 2u);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_FALSE(parse_dtype("I64"));
  EXPECT_FALSE(parse_dtype("f32"));
  EXPECT_FALSE(parse_dtype(""));
}

TEST(SafetensorsConvert, HalfKnownValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(float_to_half(0.0f), 0x0000);
  EXPECT_EQ(float_to_half(-0.0f), 0x8000);
  EXPECT_EQ(float_to_half(1.0f), 0x3c00);
  EXPECT_EQ(float_to_half(-2.0f), 0xc000);
  EXPECT_EQ(float_to_half(65504.0f), 0x7bff);  // max finite half
  EXPECT_EQ(float_to_half(65519.0f), 0x7bff);  // below the halfway point
  EXPECT_EQ(float_to_half(65520.0f), 0x7c00);  // halfway to 65536: ties to even = inf
  EXPECT_EQ(float_to_half(1e6f), 0x7c00);      // overflow -> inf
  EXPECT_EQ(float_to_half(-1e6f), 0xfc00);
  EXPECT_EQ(float_to_half(inf), 0x7c00);
  EXPECT_EQ(float_to_half(-inf), 0xfc00);
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -14)), 0x0400);         // smallest normal
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -24)), 0x0001);         // smallest subnormal
  EXPECT_EQ(float_to_half(std::ldexp(1023.0f, -24)), 0x03ff);      // largest subnormal
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), 0x0000);         // tie between 0 and 2^-24 -> even (0)
  EXPECT_EQ(float_to_half(std::ldexp(1.5f, -25)), 0x0001);         // above the tie
  EXPECT_EQ(float_to_half(std::ldexp(3.0f, -25)), 0x0002);         // 1.5 ulp: tie -> even (2)
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -30)), 0x0000);         // underflow
  EXPECT_EQ(float_to_half(-std::ldexp(1.0f, -30)), 0x8000);        // keeps the sign
  EXPECT_EQ(float_to_half(1e-40f), 0x0000);                        // float subnormal
  EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie -> even
  EXPECT_EQ(float_to_half(1.0f + std::ldexp(3.0f, -11)), 0x3c02);  // tie -> even (up)
  EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3c01);  // above tie
  const uint16_t nan = float_to_half(std::nanf(""));
  EXPECT_EQ(nan & 0x7c00, 0x7c00);
  EXPECT_NE(nan & 0x03ff, 0);
  EXPECT_TRUE(std::isnan(half_to_float(nan)));
  EXPECT_EQ(half_to_float(0x3c00), 1.0f);
  EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(bits(half_to_float(0x8000)), bits(-0.0f));
  EXPECT_EQ(half_to_float(0xfc00), -inf);
}

// Every half value survives half -> float -> half (NaNs stay NaN).
TEST(SafetensorsConvert, HalfExhaustiveRoundTrip) {
  for (uint32_t h = 0; h < 0x10000; h++) {
    float f = half_to_float(uint16_t(h));
    bool is_nan = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
    if (is_nan) {
      ASSERT_TRUE(std::isnan(f)) << h;
      ASSERT_TRUE(std::isnan(half_to_float(float_to_half(f)))) << h;
    } else {
      ASSERT_EQ(float_to_half(f), h) << h;
    }
  }
}

TEST(SafetensorsConvert, Bf16KnownValues) {
  EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(float_to_bf16(-0.0f), 0x8000);
  uint32_t tie_even = 0x3f808000, tie_odd = 0x3f818000, above = 0x3f808001;
  float f;
  std::memcpy(&f, &tie_even, 4);
  EXPECT_EQ(float_to_bf16(f), 0x3f80);  // tie -> even (down)
  std::memcpy(&f, &tie_odd, 4);
  EXPECT_EQ(float_to_bf16(f), 0x3f82);  // tie -> even (up)
  std::memcpy(&f, &above, 4);
  EXPECT_EQ(float_to_bf16(f), 0x3f81);
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds to inf
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(std::nanf("")))));
  EXPECT_EQ(bf16_to_float(0x3f80), 1.0f);
}

TEST(SafetensorsConvert, Bf16ExhaustiveRoundTrip) {
  for (uint32_t h = 0; h < 0x10000; h++) {
    float f = bf16_to_float(uint16_t(h));
    if (std::isnan(f))
      ASSERT_TRUE(std::isnan(bf16_to_float(float_to_bf16(f)))) << h;
    else
      ASSERT_EQ(float_to_bf16(f), h) << h;
  }
}

// ----------------------------------------------------------------------------
// round trips

TEST(SafetensorsRoundTrip, AllDTypes) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> v = {0.0f,
                                -0.0f,
                                1.0f,
                                -2.5f,
                                3.14159f,
                                std::ldexp(3.0f, -24) /* F16 subnormal */,
                                1e-40f /* F32 subnormal */,
                                65504.0f,
                                1e5f /* F16 overflow */,
                                -inf,
                                inf,
                                1e30f};
  StFile f;
  f.tensors.push_back(make_tensor("f32", DType::F32, {3, 4}, v));
  f.tensors.push_back(make_tensor("f16", DType::F16, {12}, v));
  f.tensors.push_back(make_tensor("bf16", DType::BF16, {2, 2, 3}, v));
  const std::string path = temp_path("roundtrip.safetensors");
  write_safetensors(path, f);
  EXPECT_EQ(temp_files_left(), 0);

  StFile g = read_safetensors(path);
  ASSERT_EQ(g.tensors.size(), 3u);
  for (size_t i = 0; i < 3; i++) {  // same names, order, dtypes, shapes and bytes
    EXPECT_EQ(g.tensors[i].name, f.tensors[i].name);
    EXPECT_EQ(g.tensors[i].dtype, f.tensors[i].dtype);
    EXPECT_EQ(g.tensors[i].shape, f.tensors[i].shape);
    EXPECT_EQ(g.tensors[i].data, f.tensors[i].data);
    EXPECT_EQ(g.tensors[i].numel(), 12);
  }

  std::vector<float> f32 = decode_floats(*g.find("f32"));
  for (size_t i = 0; i < v.size(); i++) EXPECT_EQ(bits(f32[i]), bits(v[i])) << i;  // bit exact

  std::vector<float> f16 = decode_floats(*g.find("f16"));
  EXPECT_EQ(bits(f16[0]), bits(0.0f));
  EXPECT_EQ(bits(f16[1]), bits(-0.0f));
  EXPECT_EQ(f16[2], 1.0f);
  EXPECT_EQ(f16[3], -2.5f);
  EXPECT_NEAR(f16[4], 3.14159f, 1e-3f);
  EXPECT_EQ(f16[5], std::ldexp(3.0f, -24));  // subnormal preserved exactly
  EXPECT_EQ(f16[6], 0.0f);                   // far below the half range
  EXPECT_EQ(f16[7], 65504.0f);
  EXPECT_EQ(f16[8], inf);  // overflow -> inf
  EXPECT_EQ(f16[9], -inf);
  EXPECT_EQ(f16[10], inf);
  EXPECT_EQ(f16[11], inf);

  std::vector<float> bf = decode_floats(*g.find("bf16"));
  EXPECT_EQ(bits(bf[1]), bits(-0.0f));
  EXPECT_EQ(bf[3], -2.5f);
  EXPECT_NEAR(bf[4], 3.14159f, 2e-2f);
  EXPECT_NEAR(bf[8], 1e5f, 1e3f);  // bf16 has float32's range
  EXPECT_NEAR(bf[11], 1e30f, 1e28f);
  EXPECT_EQ(bf[10], inf);
  EXPECT_EQ(g.find("missing"), nullptr);
}

TEST(SafetensorsRoundTrip, Metadata) {
  StFile f;
  f.metadata = {{"format", "pt"}, {"model", "gpt2 \"small\"\n"}, {"empty", ""}, {"unicode", "\xc3\xa9t\xc3\xa9"}};
  f.tensors.push_back(make_tensor("w", DType::F32, {1}, {2.0f}));
  const std::string path = temp_path("meta.safetensors");
  write_safetensors(path, f);
  StFile g = read_safetensors(path);
  EXPECT_EQ(g.metadata, f.metadata);
  ASSERT_EQ(g.tensors.size(), 1u);
  EXPECT_EQ(decode_floats(g.tensors[0]), std::vector<float>{2.0f});
}

// Given order is kept (not sorted by name); scalars, empty tensors and an empty file work.
TEST(SafetensorsRoundTrip, OrderScalarsAndEmpty) {
  StFile f;
  f.tensors.push_back(make_tensor("z", DType::F16, {2}, {1.0f, 2.0f}));
  f.tensors.push_back(make_tensor("empty", DType::F32, {0, 3}, {}));
  f.tensors.push_back(make_tensor("a", DType::F32, {}, {7.0f}));  // scalar
  const std::string path = temp_path("order.safetensors");
  write_safetensors(path, f);
  StFile g = read_safetensors(path);
  ASSERT_EQ(g.tensors.size(), 3u);
  EXPECT_EQ(g.find("z")->data, f.tensors[0].data);
  EXPECT_EQ(g.find("empty")->numel(), 0);
  EXPECT_EQ(g.find("empty")->shape, (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(g.find("a")->numel(), 1);
  EXPECT_EQ(decode_floats(*g.find("a")), std::vector<float>{7.0f});
  EXPECT_EQ(g.tensors.front().name, "z");
  EXPECT_EQ(g.tensors.back().name, "a");

  write_safetensors(path, StFile{});  // overwrites atomically
  StFile e = read_safetensors(path);
  EXPECT_TRUE(e.tensors.empty());
  EXPECT_TRUE(e.metadata.empty());
}

// ----------------------------------------------------------------------------
// byte layout

// Exactly what the reference implementation (Python safetensors) writes for
// save({"a": np.array([1.0], dtype=np.float32)}, metadata={"format": "pt"}).
TEST(SafetensorsLayout, TinyFileBytes) {
  StFile f;
  f.metadata["format"] = "pt";
  f.tensors.push_back(make_tensor("a", DType::F32, {1}, {1.0f}));
  const std::string path = temp_path("tiny.safetensors");
  write_safetensors(path, f);

  std::string json = R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  ASSERT_EQ(json.size(), 85u);
  json += "   ";                                            // padded with spaces to 88, a multiple of 8
  std::vector<uint8_t> expect = {88, 0, 0, 0, 0, 0, 0, 0};  // u64 little-endian header length
  expect.insert(expect.end(), json.begin(), json.end());
  expect.insert(expect.end(), {0x00, 0x00, 0x80, 0x3f});  // 1.0f little-endian
  EXPECT_EQ(read_bytes(path), expect);
}

// Header length is always a multiple of 8, the JSON ends with '}' and only spaces follow it,
// and the data section starts right after with the first tensor at offset 0.
TEST(SafetensorsLayout, HeaderPaddedToMultipleOf8) {
  for (size_t len = 1; len <= 16; len++) {
    StFile f;
    f.tensors.push_back(make_tensor(std::string(len, 'x'), DType::BF16, {2}, {1.0f, -1.0f}));
    const std::string path = temp_path("pad.safetensors");
    write_safetensors(path, f);
    std::vector<uint8_t> b = read_bytes(path);
    ASSERT_GE(b.size(), 8u);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= uint64_t(b[i]) << (8 * i);
    ASSERT_EQ(n % 8, 0u) << len;
    ASSERT_EQ(b.size(), 8 + n + 4) << len;
    std::string header(b.begin() + 8, b.begin() + 8 + long(n));
    size_t close = header.find_last_not_of(' ');
    ASSERT_EQ(header[close], '}') << header;
    EXPECT_LT(header.size() - 1 - close, 8u);
    EXPECT_EQ(header.rfind("\"data_offsets\":[0,4]"), close - 21) << header;
    EXPECT_EQ(std::vector<uint8_t>(b.end() - 4, b.end()), (std::vector<uint8_t>{0x80, 0x3f, 0x80, 0xbf}));
  }
}

// A header written by someone else: unpadded, extra whitespace, keys in any order, offsets
// not in key order. Accepted as long as it is consistent.
TEST(SafetensorsLayout, AcceptsForeignHeader) {
  std::vector<uint8_t> data = {1, 0, 2, 0, 0, 0, 128, 63};  // bf16 "b" (raw bytes), then f32 "a" = 1.0
  auto bytes = raw_file(
      "\n{ \"a\": {\"shape\": [], \"data_offsets\": [4, 8], \"dtype\": \"F32\"},"
      "  \"b\": {\"dtype\": \"BF16\", \"shape\": [2], \"data_offsets\": [0, 4]} }\n",
      data);
  StFile f = parse_safetensors(bytes.data(), bytes.size(), "foreign");
  ASSERT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.tensors[0].name, "b");  // data-section order
  EXPECT_EQ(decode_floats(*f.find("a")), std::vector<float>{1.0f});
  EXPECT_EQ(f.find("b")->data, (std::vector<uint8_t>{1, 0, 2, 0}));
}

// ----------------------------------------------------------------------------
// corrupt files: each has its own message

TEST(SafetensorsCorrupt, ShorterThan8Bytes) {
  std::string m = parse_error({1, 2, 3, 4, 5});
  EXPECT_HAS(m, "test.safetensors");
  EXPECT_HAS(m, "file is 5 bytes, shorter than the 8-byte header length prefix");
  EXPECT_HAS(parse_error({}), "file is 0 bytes");
}

TEST(SafetensorsCorrupt, HeaderLengthPastEnd) {
  std::string m = parse_error(raw_file("{}", {}, 1000));
  EXPECT_HAS(m, "header length 1000 is past the end of the file (only 2 bytes follow");
}

TEST(SafetensorsCorrupt, HeaderLengthAbsurd) {
  std::string m = parse_error(raw_file("{}", {}, ~uint64_t(0)));  // also must not overflow 8 + len
  EXPECT_HAS(m, "header length 18446744073709551615 is larger than the 100000000-byte limit");
}

TEST(SafetensorsCorrupt, NotJson) {
  EXPECT_HAS(parse_error(raw_file("{\"a\": ", {})), "header is not valid JSON");
  EXPECT_HAS(parse_error(raw_file("", {})), "header is not valid JSON");
  // NUL never appears in JSON text (nlohmann alone would stop at it and accept "{}")
  EXPECT_HAS(parse_error(raw_file(std::string("{}\0xyz", 6), {})), "header is not valid JSON: NUL byte at offset 2");
}

TEST(SafetensorsCorrupt, NotObject) {
  EXPECT_HAS(parse_error(raw_file("[1, 2]", {})), "header is not a JSON object");
  EXPECT_HAS(parse_error(raw_file("\"x\"", {})), "header is not a JSON object");
}

TEST(SafetensorsCorrupt, UnsupportedDType) {
  std::string m = parse_error(raw_file(R"({"x":{"dtype":"I64","shape":[3],"data_offsets":[0,24]}})", kData24));
  EXPECT_HAS(m, "tensor 'x': dtype 'I64' is not supported (F32, F16, BF16)");
  EXPECT_HAS(parse_error(raw_file(R"({"x":{"dtype":"F33","shape":[],"data_offsets":[0,4]}})", kData24)),
             "dtype 'F33' is not supported");
}

TEST(SafetensorsCorrupt, MissingFields) {
  EXPECT_HAS(parse_error(raw_file(R"({"x":{"shape":[1],"data_offsets":[0,4]}})", kData24)),
             "tensor 'x': missing 'dtype'");
  EXPECT_HAS(parse_error(raw_file(R"({"x":{"dtype":"F32","data_offsets":[0,4]}})", kData24)),
             "tensor 'x': missing 'shape'");
  EXPECT_HAS(parse_error(raw_file(R"({"x":{"dtype":"F32","shape":[1]}})", kData24)),
             "tensor 'x': missing 'data_offsets'");
  EXPECT_HAS(parse_error(raw_file(R"({"x":[1,2]})", kData24)), "tensor 'x': entry must be a JSON object");
}

TEST(SafetensorsCorrupt, WrongJsonTypes) {
  EXPECT_HAS(parse_error(raw_file(R"({"x":{"dtype":5,"shape":[1],"data_offsets":[0,4]}})", kData24)),
             "tensor 'x': 'dtype' must be a string");
  EXPECT_HAS(parse_error(raw_file(R"({"x":{"dtype":"F32","shape":"1","data_offsets":[0,4]}})", kData24)),
             "tensor 'x': 'shape' must be an array of integers");
  EXPECT_HAS(parse_error(raw_file(R"({"x":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", kData24)),
             "'shape' must be an array of integers (got 1.5)");
  EXPECT_HAS(parse_error(raw_file(R"({"x":{"dtype":"F32","shape":[true],"data_offsets":[0,4]}})", kData24)),
             "(got true)");
  EXPECT_HAS(parse_error(raw_file(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", kData24)),
             "tensor 'x': 'data_offsets' must be [begin, end] with non-negative integers (got [0])");
  EXPECT_HAS(parse_error(raw_file(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", kData24)),
             "'data_offsets' must be [begin, end]");
  EXPECT_HAS(parse_error(raw_file(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":"0,4"}})", kData24)),
             "'data_offsets' must be [begin, end]");
}

TEST(SafetensorsCorrupt, NegativeDim) {
  EXPECT_HAS(parse_error(raw_file(R"({"x":{"dtype":"F32","shape":[2,-3],"data_offsets":[0,24]}})", kData24)),
             "tensor 'x': shape has a negative dimension -3");
}

TEST(SafetensorsCorrupt, ShapeOverflow) {
  // 2^62 * 2^62 elements overflows int64; must be caught, not wrapped around to a small size.
  std::string m = parse_error(
      raw_file(R"({"x":{"dtype":"F32","shape":[4611686018427387904,4611686018427387904],"data_offsets":[0,0]}})", {}));
  EXPECT_HAS(m, "is too large (element count overflows)");
  // 2^62 elements fit in int64 but 2^62 * 4 bytes does not.
  EXPECT_HAS(parse_error(raw_file(R"({"x":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,0]}})", {})),
             "too large");
  // dims beyond int64 are rejected
  EXPECT_HAS(parse_error(raw_file(R"({"x":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,0]}})", {})),
             "'shape' must be an array of integers");
}

TEST(SafetensorsCorrupt, BeginAfterEnd) {
  EXPECT_HAS(parse_error(raw_file(R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", kData24)),
             "tensor 'x': data_offsets [8, 4]: begin 8 > end 4");
}

TEST(SafetensorsCorrupt, SizeMismatchWithShape) {
  std::string m = parse_error(raw_file(R"({"x":{"dtype":"F32","shape":[2,3],"data_offsets":[0,8]}})", kData24));
  EXPECT_HAS(m, "tensor 'x': data_offsets [0, 8] spans 8 bytes but shape [2, 3] with dtype F32 needs 24 bytes");
}

TEST(SafetensorsCorrupt, OffsetsPastEnd) {
  std::string m = parse_error(raw_file(R"({"x":{"dtype":"F16","shape":[16],"data_offsets":[0,32]}})", kData24));
  EXPECT_HAS(m, "tensor 'x': data_offsets [0, 32] is past the end of the data section, which has 24 bytes");
}

TEST(SafetensorsCorrupt, Overlapping) {
  std::string m = parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                                       R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                                       kData24));
  EXPECT_HAS(m, "tensors 'a' [0, 16) and 'b' [8, 24) overlap");
  // a tensor nested inside another, declared after a later one
  m = parse_error(raw_file(R"({"a":{"dtype":"F32","shape":[6],"data_offsets":[0,24]},)"
                           R"("b":{"dtype":"F32","shape":[1],"data_offsets":[20,24]},)"
                           R"("c":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                           kData24));
  EXPECT_HAS(m, "tensors 'a' [0, 24) and 'c' [4, 8) overlap");
}

TEST(SafetensorsCorrupt, MetadataNotStrings) {
  EXPECT_HAS(parse_error(raw_file(R"({"__metadata__":{"k":1}})", {})), "__metadata__ value 'k' must be a string");
  EXPECT_HAS(parse_error(raw_file(R"({"__metadata__":["x"]})", {})), "__metadata__ must be a JSON object of strings");
}

// A valid file on disk with its data cut short: names the file and says truncated.
TEST(SafetensorsCorrupt, TruncatedFile) {
  StFile f;
  f.tensors.push_back(make_tensor("w", DType::F32, {2, 3}, {1, 2, 3, 4, 5, 6}));
  const std::string path = temp_path("truncated.safetensors");
  write_safetensors(path, f);
  std::vector<uint8_t> b = read_bytes(path);
  b.resize(b.size() - 5);
  write_bytes(path, b);
  std::string m = read_error(path);
  EXPECT_HAS(
      m, "'" + path + "': tensor 'w': data_offsets [0, 24] is past the end of the data section, which has 19 bytes");
  EXPECT_HAS(m, "file truncated");
}

TEST(SafetensorsCorrupt, MissingFile) {
  const std::string path = temp_path("does_not_exist.safetensors");
  std::string m = read_error(path);
  EXPECT_HAS(m, "'" + path + "': cannot open safetensors file: No such file or directory");
}

TEST(SafetensorsCorrupt, DirectoryIsNotAFile) { EXPECT_HAS(read_error(temp_dir()), "not a regular file"); }

// Arbitrary bytes and random corruptions of a valid file: parse either succeeds or throws
// Error, never anything else (run under -fsanitize=address,undefined to check bounds too).
TEST(SafetensorsCorrupt, FuzzNeverCrashes) {
  StFile f;
  f.metadata["k"] = "v";
  f.tensors.push_back(make_tensor("a", DType::F32, {2, 2}, {1, 2, 3, 4}));
  f.tensors.push_back(make_tensor("b", DType::F16, {3}, {1, 2, 3}));
  const std::string path = temp_path("fuzz.safetensors");
  write_safetensors(path, f);
  const std::vector<uint8_t> valid = read_bytes(path);

  std::mt19937 rng(1234);
  for (int iter = 0; iter < 20000; iter++) {
    std::vector<uint8_t> b = valid;
    if (iter % 4 == 0) {  // pure noise, sometimes with a plausible header length
      b.resize(rng() % 64);
      for (uint8_t& c : b) c = uint8_t(rng());
      if (b.size() >= 8 && (iter & 8)) b[0] = uint8_t(b.size() - 8), std::fill(b.begin() + 1, b.begin() + 8, 0);
    } else {  // flip a few bytes, maybe truncate
      int flips = 1 + int(rng() % 4);
      for (int k = 0; k < flips; k++) b[rng() % b.size()] = uint8_t(rng());
      if (iter % 3 == 0) b.resize(rng() % b.size());
    }
    try {
      StFile g = parse_safetensors(b.data(), b.size(), "fuzz");
      for (const StTensor& t : g.tensors) ASSERT_EQ(decode_floats(t).size(), size_t(t.numel()));
    } catch (const Error&) {
    }
  }
}

// ----------------------------------------------------------------------------
// writing failures

TEST(SafetensorsWrite, UnwritableDirectoryLeavesNothing) {
  const std::string path = "/nonexistent_dir/x.safetensors";
  StFile f;
  f.tensors.push_back(make_tensor("a", DType::F32, {1}, {1.0f}));
  try {
    write_safetensors(path, f);
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_HAS(e.what(), "writing '/nonexistent_dir/x.safetensors': cannot create temporary file");
    EXPECT_HAS(e.what(), "No such file or directory");
  }
  EXPECT_FALSE(fs::exists(path));
  EXPECT_FALSE(fs::exists(path + ".tmp." + std::to_string(getpid())));
}

// The rename fails (target is a non-empty directory): the temp file must be cleaned up.
TEST(SafetensorsWrite, FailedRenameRemovesTemp) {
  const std::string path = temp_path("a_directory");
  fs::create_directories(path + "/child");
  StFile f;
  f.tensors.push_back(make_tensor("a", DType::F32, {1}, {1.0f}));
  try {
    write_safetensors(path, f);
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_HAS(e.what(), "cannot rename");
  }
  EXPECT_TRUE(fs::is_directory(path));
  EXPECT_EQ(temp_files_left(), 0);
}

TEST(SafetensorsWrite, RejectsInconsistentTensors) {
  const std::string path = temp_path("bad_write.safetensors");
  auto write_error = [&](const StFile& f) -> std::string {
    try {
      write_safetensors(path, f);
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "expected Error";
    return "";
  };
  StFile f;
  f.tensors.push_back(make_tensor("a", DType::F32, {2, 3}, {1.0f}));
  EXPECT_HAS(write_error(f), "tensor 'a' has 4 bytes of data but shape [2, 3] with dtype F32 needs 24");
  f.tensors[0] = make_tensor("a", DType::F32, {1}, {1.0f});
  f.tensors.push_back(f.tensors[0]);
  EXPECT_HAS(write_error(f), "duplicate tensor name 'a'");
  f.tensors.pop_back();
  f.tensors[0].name = "__metadata__";
  EXPECT_HAS(write_error(f), "'__metadata__' is reserved");
  f.tensors[0] = make_tensor("a", DType::F32, {-1}, {});
  EXPECT_HAS(write_error(f), "tensor 'a': invalid shape [-1]");
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(temp_files_left(), 0);
}

TEST(SafetensorsWrite, FileAtomic) {
  const std::string path = temp_path("config.json");
  write_file_atomic(path, "{\"a\": 1}\n");
  write_file_atomic(path, "{\"b\": 2}\n");  // replaces the previous contents
  std::vector<uint8_t> b = read_bytes(path);
  EXPECT_EQ(std::string(b.begin(), b.end()), "{\"b\": 2}\n");
  EXPECT_EQ(temp_files_left(), 0);
  EXPECT_THROW(write_file_atomic("/nonexistent_dir/config.json", "x"), Error);
  EXPECT_FALSE(fs::exists("/nonexistent_dir/config.json"));
}

TEST(SafetensorsDecode, RejectsSizeMismatch) {
  StTensor t = make_tensor("t", DType::F16, {3}, {1.0f, 2.0f});
  try {
    decode_floats(t);
    FAIL() << "expected Error";
  } catch (const Error& e) {
    EXPECT_HAS(e.what(), "tensor 't': 4 bytes of data do not match shape [3] with dtype F16");
  }
  t.shape = {-2};
  EXPECT_THROW(t.numel(), Error);
}
