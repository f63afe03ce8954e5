// KV-cache calculator (attention/kv_calc.h): the formulas against docs/variants.md#cache-formulas, and whole-model
// tables against numbers computed by hand (the arithmetic is in the comments).
#include <gtest/gtest.h>

#include <functional>

#include "error.h"
#include "kv_calc.h"
#include "test_util.h"

using namespace attnscope;
using testing_util::error_of;

namespace {

const std::string kBundled = std::string(ATTNSCOPE_SOURCE_DIR) + "/assets/models/mha";

const KvRow& row(const KvTable& t, const std::string& family) {
  for (const auto& r : t.rows)
    if (r.family == family) return r;
  throw Error("no row " + family);
}

}  // namespace

// docs/variants.md#cache-formulas: d = 256, H = 8, d_h = 32, fp32 (b = 4), per layer.
TEST(KvCalc, VariantsSheetReferenceNumbers) {
  const int64_t H = 8, dh = 32, b = 4;
  EXPECT_EQ(kv_layer_bytes(H, dh, b, 1), 2048);   // MHA: 2 * 8 * 32 * 4
  EXPECT_EQ(kv_layer_bytes(2, dh, b, 1), 512);    // GQA G = 2: 2 * 2 * 32 * 4
  EXPECT_EQ(kv_layer_bytes(1, dh, b, 1), 256);    // MQA: 2 * 1 * 32 * 4
  EXPECT_EQ(mla_layer_bytes(64, 16, b, 1), 320);  // MLA: (64 + 16) * 4
  // Window W = 64: 64 tokens * 2048 B = 131,072 B, and no more however long the text.
  EXPECT_EQ(window_layer_bytes(H, dh, b, 64, 64), 131072);
  EXPECT_EQ(window_layer_bytes(H, dh, b, 100000, 64), 131072);
  EXPECT_EQ(window_layer_bytes(H, dh, b, 10, 64), 20480);          // below the cap: 10 * 2048
  EXPECT_EQ(linear_state_bytes(H, dh, b), 33792);                  // 8 * (32 * 32 + 32) * 4 = 8 * 1056 * 4
  EXPECT_EQ(performer_state_bytes(H, dh, 64, b), 67584);           // 8 * (64 * 32 + 64) * 4 = 8 * 2112 * 4
  EXPECT_EQ(causal_linformer_bytes(H, dh, 32, b), 65536);          // 2 * 8 * 32 * 32 * 4
  EXPECT_EQ(sinks_layer_bytes(H, dh, b, 1000, 4, 64), 68 * 2048);  // S + W = 68 tokens kept
}

// Llama-3-8B (32 layers, 32 heads, 8 kv heads, d_h 128), fp16, 131,072 tokens.
TEST(KvCalc, Llama3_8B_Fp16At128K) {
  const KvTable t = kv_table(find_kv_preset("llama-3-8b", kBundled), 131072, 1, KvDType::FP16);
  // GQA: 2 * 32 layers * 8 kv heads * 128 * 2 B * 131072 = 17,179,869,184 B = 16 GiB
  EXPECT_EQ(row(t, "GQA").bytes, 17179869184);
  EXPECT_EQ(format_bytes(row(t, "GQA").bytes), "16.0 GiB");
  // per token: 2 * 32 * 8 * 128 * 2 = 131,072 B = 128 KiB
  EXPECT_EQ(row(t, "GQA").per_token_bytes, 131072);
  // MHA: 2 * 32 * 32 * 128 * 2 * 131072 = 68,719,476,736 B = 64 GiB
  EXPECT_EQ(row(t, "MHA").bytes, 68719476736);
  // MQA: 2 * 32 * 1 * 128 * 2 * 131072 = 2,147,483,648 B = 2 GiB
  EXPECT_EQ(row(t, "MQA").bytes, 2147483648);
  // MLA, assumed d_c = 4 * 128 = 512, d_R = 64: 32 * 576 * 2 * 131072 = 4,831,838,208 B = 4.5 GiB
  EXPECT_EQ(row(t, "MLA").bytes, 4831838208);
  EXPECT_TRUE(row(t, "MLA").assumed);
  // window, assumed W = 4096 on every layer: 2 * 32 * 8 * 128 * 2 * 4096 = 536,870,912 B = 512 MiB
  EXPECT_EQ(row(t, "sliding window").bytes, 536870912);
  // sinks 4 + window 4096: 2 * 32 * 8 * 128 * 2 * 4100 = 537,395,200 B
  EXPECT_EQ(row(t, "sinks + window").bytes, 537395200);
  // linear: 32 layers * 32 heads * (128 * 128 + 128) * 2 B = 32 * 32 * 16512 * 2 = 33,816,576 B
  EXPECT_EQ(row(t, "linear").bytes, 33816576);
  EXPECT_TRUE(row(t, "linear").constant);
  // performer m = 256: 32 * 32 * (256 * 128 + 256) * 2 = 32 * 32 * 33024 * 2 = 67,633,152 B
  EXPECT_EQ(row(t, "performer").bytes, 67633152);
  // causal Linformer k = 256: 32 * 2 * 32 * 256 * 128 * 2 = 134,217,728 B
  EXPECT_EQ(row(t, "causal linformer").bytes, 134217728);
  // GPUs 24, 40, 80, 141 GiB. Weights 2 B * 8,030,261,248 = 16,060,522,496 B (14.96 GiB); GQA + weights = 30.96 GiB:
  // the cache alone fits everywhere, with the weights from 40 GiB up.
  EXPECT_EQ(t.weight_bytes, 16060522496);
  EXPECT_EQ(row(t, "GQA").fits_cache, (std::vector<bool>{true, true, true, true}));
  EXPECT_EQ(row(t, "GQA").fits_with_weights, (std::vector<bool>{false, true, true, true}));
  // MHA 64 GiB: fits 80 and 141 alone; with 14.96 GiB of weights (78.96 GiB) still 80 and 141.
  EXPECT_EQ(row(t, "MHA").fits_cache, (std::vector<bool>{false, false, true, true}));
  EXPECT_EQ(row(t, "MHA").fits_with_weights, (std::vector<bool>{false, false, true, true}));
}

// Mistral-7B (32/32/8/128, published window 4096 on every layer), fp16.
TEST(KvCalc, Mistral7BWindowCaps) {
  const ModelShape m = find_kv_preset("Mistral-7B", kBundled);
  EXPECT_EQ(m.window, 4096);
  // 32768 tokens: GQA 2 * 32 * 8 * 128 * 2 * 32768 = 4,294,967,296 B = 4 GiB; window keeps 4096: 536,870,912 B
  KvTable t = kv_table(m, 32768, 1, KvDType::FP16);
  EXPECT_EQ(row(t, "GQA").bytes, 4294967296);
  EXPECT_EQ(row(t, "sliding window").bytes, 536870912);
  EXPECT_FALSE(row(t, "sliding window").assumed);
  // 1000 tokens, below the window: both 2 * 32 * 8 * 128 * 2 * 1000 = 131,072,000 B
  t = kv_table(m, 1000, 1, KvDType::FP16);
  EXPECT_EQ(row(t, "sliding window").bytes, 131072000);
  EXPECT_EQ(row(t, "GQA").bytes, 131072000);
  // batch 8, fp8 (1 B), 32768 tokens: 8 * 2 * 32 * 8 * 128 * 1 * 32768 = 17,179,869,184 B
  EXPECT_EQ(row(kv_table(m, 32768, 8, KvDType::FP8), "GQA").bytes, 17179869184);
}

// Gemma-2-9B (42 layers, 16 heads, 8 kv heads, d_h 256; window 4096 on 21 alternating layers), bf16, 8192 tokens.
TEST(KvCalc, Gemma2AlternatingWindow) {
  const KvTable t = kv_table(find_kv_preset("gemma-2-9b", kBundled), 8192, 1, KvDType::BF16);
  // per layer per token: 2 * 8 * 256 * 2 B = 8192 B. GQA: 42 * 8192 * 8192 = 2,818,572,288 B
  EXPECT_EQ(row(t, "GQA").bytes, 2818572288);
  // window: 21 local layers * 8192 B * 4096 + 21 global layers * 8192 B * 8192 = 21 * 8192 * 12288 = 2,113,929,216 B
  EXPECT_EQ(row(t, "sliding window").bytes, 2113929216);
  // MHA: 2 * 42 * 16 * 256 * 2 * 8192 = 5,637,144,576 B
  EXPECT_EQ(row(t, "MHA").bytes, 5637144576);
}

// DeepSeek-V2 (60 layers, 128 heads, d_h 128, published d_c 512, d_R 64), fp16, 131,072 tokens.
TEST(KvCalc, DeepSeekV2Latent) {
  const KvTable t = kv_table(find_kv_preset("deepseek-v2", kBundled), 131072, 1, KvDType::FP16);
  // MLA: 60 * (512 + 64) * 2 * 131072 = 9,059,696,640 B = 8.4375 GiB
  EXPECT_EQ(row(t, "MLA").bytes, 9059696640);
  EXPECT_FALSE(row(t, "MLA").assumed);
  EXPECT_EQ(format_bytes(row(t, "MLA").bytes), "8.4 GiB");
  // the uncompressed MHA equivalent: 2 * 60 * 128 * 128 * 2 * 131072 = 515,396,075,520 B = 480 GiB
  EXPECT_EQ(row(t, "MHA").bytes, 515396075520);
  EXPECT_EQ(row(t, "MHA").fits_cache, (std::vector<bool>{false, false, false, false}));
}

// The bundled checkpoint, read from its config: 4 layers, 8 heads, d_h 16; variant sizes from the registry.
TEST(KvCalc, BundledModelFromItsConfig) {
  const ModelShape s = find_kv_preset("bundled", kBundled);
  EXPECT_EQ(s.layers, 4);
  EXPECT_EQ(s.heads, 8);
  EXPECT_EQ(s.head_dim, 16);
  EXPECT_GT(s.parameters, 700000);
  // fp32 at 256 tokens: MHA 2 * 4 * 8 * 16 * 4 * 256 = 1,048,576 B; MLA defaults d_c 64 + d_R 8: 4 * 72 * 4 * 256 = 294,912 B
  const KvTable t = kv_table(s, 256, 1, KvDType::FP32);
  EXPECT_EQ(row(t, "MHA").bytes, 1048576);
  EXPECT_EQ(row(t, "MLA").bytes, 294912);
  // window default 32: 2 * 4 * 8 * 16 * 4 * 32 = 131,072 B
  EXPECT_EQ(row(t, "sliding window").bytes, 131072);
}

TEST(KvCalc, CustomShapeAndErrors) {
  const ModelShape c = parse_custom_shape("layers=2,heads=8,kv_heads=2,head_dim=32,window=64");
  EXPECT_EQ(c.kv_heads, 2);
  EXPECT_EQ(c.window_layers, 2);
  EXPECT_EQ(c.latent_dim, 128);  // assumed 4 d_h
  // GQA fp32 at 1000 tokens: 2 layers * 512 B * 1000 = 1,024,000 B; window: 2 * 512 * 64 = 65,536 B
  const KvTable t = kv_table(c, 1000, 1, KvDType::FP32);
  EXPECT_EQ(row(t, "GQA").bytes, 1024000);
  EXPECT_EQ(row(t, "sliding window").bytes, 65536);
  EXPECT_EQ(t.weight_bytes, 0);
  EXPECT_EQ(row(t, "GQA").fits_with_weights, (std::vector<bool>{false, false, false, false}));

  EXPECT_NE(error_of([] { parse_custom_shape("layers=2,heads=8,kv_heads=3,head_dim=32"); }).find("does not divide"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_custom_shape("layers=2,heads=8,head_dim=x"); }).find("head_dim=x"), std::string::npos);
  EXPECT_NE(error_of([] { parse_custom_shape("layers=2,heads=8,depth=3"); }).find("unknown field 'depth'"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_custom_shape("heads=8"); }).find("needs at least"), std::string::npos);
  EXPECT_NE(error_of([] { find_kv_preset("gpt-5", kBundled); }).find("unknown preset 'gpt-5'"), std::string::npos);
  const ModelShape l = find_kv_preset("llama-2-7b", kBundled);
  EXPECT_NE(error_of([&] { kv_table(l, 0, 1, KvDType::FP16); }).find("--seq must be"), std::string::npos);
  EXPECT_NE(error_of([&] { kv_table(l, kMaxKvTokens + 1, 1, KvDType::FP16); }).find("--seq must be"),
            std::string::npos);
  EXPECT_NO_THROW(kv_table(l, kMaxKvTokens, 1, KvDType::FP16));
  EXPECT_NE(error_of([] { parse_kv_dtype("int4"); }).find("unknown dtype 'int4'"), std::string::npos);
  EXPECT_EQ(kv_dtype_bytes(parse_kv_dtype("fp8")), 1);
}

TEST(KvCalc, FormatBytes) {
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(131072), "128.0 KiB");
  EXPECT_EQ(format_bytes(536870912), "512.0 MiB");
}
