#pragma once
// KV-cache calculator: the bytes each attention family keeps while decoding, for published model shapes
// (docs/variants.md#cache-formulas). No LibTorch here: the CLI's `kv` command and the GUI's panel share it.
// All byte counts are exact integers; "per layer" formulas are for batch 1.
#include <cstdint>
#include <string>
#include <vector>

namespace attnscope {

// ---- per-layer formulas (b = bytes per element, t = tokens held)
int64_t kv_layer_bytes(int64_t kv_heads, int64_t head_dim, int64_t b, int64_t t);  // 2 H_kv d_h b t (MHA/MQA/GQA)
int64_t mla_layer_bytes(int64_t d_c, int64_t d_r, int64_t b, int64_t t);           // (d_c + d_R) b t
// Sliding window of W keys: 2 H_kv d_h b min(t, W) (a ring buffer).
int64_t window_layer_bytes(int64_t kv_heads, int64_t head_dim, int64_t b, int64_t t, int64_t window);
// Attention sinks: the first S tokens plus the last W, 2 H_kv d_h b min(t, S + W).
int64_t sinks_layer_bytes(int64_t kv_heads, int64_t head_dim, int64_t b, int64_t t, int64_t sinks, int64_t window);
int64_t linear_state_bytes(int64_t heads, int64_t head_dim, int64_t b);                       // H (d_h d_h + d_h) b
int64_t performer_state_bytes(int64_t heads, int64_t head_dim, int64_t features, int64_t b);  // H (m d_h + m) b
int64_t causal_linformer_bytes(int64_t heads, int64_t head_dim, int64_t slots, int64_t b);    // 2 H k d_h b

// ---- element types
enum class KvDType { FP32, FP16, BF16, FP8 };
KvDType parse_kv_dtype(const std::string& s);  // fp32|fp16|bf16|fp8; throws Error
const char* kv_dtype_name(KvDType d);
int64_t kv_dtype_bytes(KvDType d);  // 4, 2, 2, 1

// ---- model shapes
struct ModelShape {
  std::string key;   // preset name on the command line ("llama-3-8b"); "custom" for --custom
  std::string name;  // display name ("Llama-3-8B")
  int64_t layers = 0, heads = 0, kv_heads = 0, head_dim = 0;
  int64_t latent_dim = 0, rope_dim = 0;  // MLA d_c, d_R
  bool latent_published = false;         // false: d_c, d_R are an assumption (stated in the table)
  int64_t window = 0;                    // sliding window W
  int64_t window_layers = 0;             // layers that use the window (the others attend globally)
  bool window_published = false;         // false: W is an assumption, applied to every layer
  int64_t sinks = 4;                     // StreamingLLM sink tokens (assumed)
  int64_t features = 256;                // Performer m (assumed)
  int64_t parameters = 0;                // total parameter count (0: unknown, no weight column)
  std::string source;                    // where the shape comes from
};

// The presets, in display order (llama-2-7b ... deepseek-v2, bundled). The bundled model's shape is read from
// bundled_dir (assets/models/mha: config.json, and the parameter count from model.safetensors); its variant sizes
// are the registry defaults. Throws Error when the files are missing.
std::vector<ModelShape> kv_presets(const std::string& bundled_dir);
ModelShape find_kv_preset(const std::string& key, const std::string& bundled_dir);  // case-insensitive; throws Error
// "layers=32,heads=32,kv_heads=8,head_dim=128[,d_c=..,d_r=..,window=..,window_layers=..,sinks=..,features=..,
// params=..]": unspecified MLA and window sizes are assumed as for the presets. Throws Error naming the field.
ModelShape parse_custom_shape(const std::string& spec);

// ---- the table
inline constexpr int64_t kMaxKvTokens = int64_t(1) << 20;  // 1,048,576 tokens
inline const std::vector<int64_t> kGpuGiB = {24, 40, 80, 141};

struct KvRow {
  std::string family;           // "MHA", "MQA", "GQA", "MLA", "sliding window", "sinks + window", "linear", "performer"
  std::string kept;             // what is kept, with its sizes ("K,V: 8 kv heads x 128")
  bool assumed = false;         // a size in `kept` is assumed, not published for this model
  bool constant = false;        // a fixed-size state: does not grow with the sequence
  int64_t per_token_bytes = 0;  // bytes one more token adds while the cache still grows (all layers, whole batch)
  int64_t bytes = 0;            // the cache at `tokens`, all layers, whole batch
  std::vector<bool> fits_cache, fits_with_weights;  // per kGpuGiB entry
};

struct KvTable {
  ModelShape shape;
  KvDType dtype = KvDType::FP16;
  int64_t tokens = 0, batch = 1;
  int64_t weight_bytes = 0;  // fp16 weights (2 B per parameter); 0 when the parameter count is unknown
  std::vector<KvRow> rows;
};
// Throws Error for tokens outside 1..kMaxKvTokens, batch < 1, or an impossible shape.
KvTable kv_table(const ModelShape& shape, int64_t tokens, int64_t batch, KvDType dtype);

std::string format_bytes(int64_t bytes);  // "512 B", "128.0 KiB", "16.0 GiB" (binary units, one decimal)

}  // namespace attnscope
