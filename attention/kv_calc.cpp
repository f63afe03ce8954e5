#include "kv_calc.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <map>
#include <nlohmann/json.hpp>

#include "config.h"
#include "error.h"
#include "registry.h"
#include "safetensors.h"

namespace attnscope {

int64_t kv_layer_bytes(int64_t kv_heads, int64_t head_dim, int64_t b, int64_t t) {
  return 2 * kv_heads * head_dim * b * t;
}
int64_t mla_layer_bytes(int64_t d_c, int64_t d_r, int64_t b, int64_t t) { return (d_c + d_r) * b * t; }
int64_t window_layer_bytes(int64_t kv_heads, int64_t head_dim, int64_t b, int64_t t, int64_t window) {
  return kv_layer_bytes(kv_heads, head_dim, b, std::min(t, window));
}
int64_t sinks_layer_bytes(int64_t kv_heads, int64_t head_dim, int64_t b, int64_t t, int64_t sinks, int64_t window) {
  return kv_layer_bytes(kv_heads, head_dim, b, std::min(t, sinks + window));
}
int64_t linear_state_bytes(int64_t heads, int64_t head_dim, int64_t b) {
  return heads * (head_dim * head_dim + head_dim) * b;
}
int64_t performer_state_bytes(int64_t heads, int64_t head_dim, int64_t features, int64_t b) {
  return heads * (features * head_dim + features) * b;
}
int64_t causal_linformer_bytes(int64_t heads, int64_t head_dim, int64_t slots, int64_t b) {
  return 2 * heads * slots * head_dim * b;
}

KvDType parse_kv_dtype(const std::string& s) {
  if (s == "fp32") return KvDType::FP32;
  if (s == "fp16") return KvDType::FP16;
  if (s == "bf16") return KvDType::BF16;
  if (s == "fp8") return KvDType::FP8;
  throw Error("unknown dtype '" + s + "' (known: fp16, bf16, fp8, fp32)");
}
const char* kv_dtype_name(KvDType d) {
  switch (d) {
    case KvDType::FP32: return "fp32";
    case KvDType::FP16: return "fp16";
    case KvDType::BF16: return "bf16";
    case KvDType::FP8: return "fp8";
  }
  return "?";
}
int64_t kv_dtype_bytes(KvDType d) { return d == KvDType::FP32 ? 4 : d == KvDType::FP8 ? 1 : 2; }

namespace {

// Sizes the table assumes when a model does not publish them: DeepSeek-V2's latent ratios (d_c = 4 d_h = 512,
// d_R = d_h / 2 = 64 at d_h = 128) and Mistral's 4096-token window.
constexpr int64_t kAssumedWindow = 4096;
constexpr int64_t kAssumedSlots = 256;  // causal Linformer k for the published shapes
void assume_missing(ModelShape& s) {
  if (s.latent_dim == 0) {
    s.latent_dim = 4 * s.head_dim;
    s.rope_dim = s.head_dim / 2;
  }
  if (s.window == 0) {
    s.window = kAssumedWindow;
    s.window_layers = s.layers;
  }
}

ModelShape published(const std::string& key, const std::string& name, int64_t layers, int64_t heads, int64_t kv_heads,
                     int64_t head_dim, int64_t parameters, const std::string& source) {
  ModelShape s;
  s.key = key;
  s.name = name;
  s.layers = layers;
  s.heads = heads;
  s.kv_heads = kv_heads;
  s.head_dim = head_dim;
  s.parameters = parameters;
  s.source = source;
  return s;
}

double registry_default(const std::string& variant, const std::string& param) {
  return get_variant(variant).find_param(param)->def;
}

// The bundled checkpoint: its config's shape, and its parameter count from the safetensors header; the
// variants' sizes are the registry defaults (what `attnscope attend --variant ...` would run).
ModelShape bundled_shape(const std::string& dir) {
  std::ifstream in(dir + "/config.json");
  if (!in) throw Error("cannot read " + dir + "/config.json (the bundled model's shape)");
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json j = nlohmann::json::parse(text.str(), nullptr, false);
  if (j.is_discarded() || !j.contains("model")) throw Error(dir + "/config.json is not an attnscope checkpoint config");
  const ModelConfig c = config_from_json(j.at("model"));
  int64_t parameters = 0;
  for (const auto& t : read_safetensors(dir + "/model.safetensors").tensors) parameters += t.numel();
  ModelShape s = published("bundled", "bundled (assets/models/mha)", c.n_layer, c.n_head, c.n_head, c.head_dim(),
                           parameters, "assets/models/mha/config.json");
  s.latent_dim = static_cast<int64_t>(registry_default("mla", "rank"));
  s.rope_dim = static_cast<int64_t>(registry_default("mla", "rope_dims"));
  s.window = static_cast<int64_t>(registry_default("sliding_window", "window"));
  s.window_layers = s.layers;
  s.sinks = static_cast<int64_t>(registry_default("sinks", "sinks"));
  s.features = static_cast<int64_t>(registry_default("performer", "features"));
  return s;
}

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

void validate(const ModelShape& s) {
  auto positive = [&](int64_t v, const char* what) {
    if (v < 1) throw Error(std::string(what) + " must be at least 1 (got " + std::to_string(v) + ")");
  };
  positive(s.layers, "layers");
  positive(s.heads, "heads");
  positive(s.kv_heads, "kv_heads");
  positive(s.head_dim, "head_dim");
  positive(s.window, "window");
  if (s.heads % s.kv_heads != 0)
    throw Error("kv_heads " + std::to_string(s.kv_heads) + " does not divide heads " + std::to_string(s.heads));
  if (s.window_layers < 0 || s.window_layers > s.layers)
    throw Error("window_layers must be 0.." + std::to_string(s.layers) + " (got " + std::to_string(s.window_layers) +
                ")");
  if (s.latent_dim < 1 || s.rope_dim < 0 || s.sinks < 0 || s.features < 1)
    throw Error("d_c, features must be at least 1 and d_r, sinks at least 0");
  if (s.layers > 1000 || s.heads > 4096 || s.head_dim > 65536 || s.latent_dim > 65536 || s.features > 65536)
    throw Error("shape too large (at most 1000 layers, 4096 heads, head_dim, d_c and features 65536)");
}

}  // namespace

std::vector<ModelShape> kv_presets(const std::string& bundled_dir) {
  std::vector<ModelShape> p;
  p.push_back(
      published("llama-2-7b", "Llama-2-7B", 32, 32, 32, 128, 6738415616, "meta-llama/Llama-2-7b-hf config.json"));
  p.push_back(
      published("llama-3-8b", "Llama-3-8B", 32, 32, 8, 128, 8030261248, "meta-llama/Meta-Llama-3-8B config.json"));
  p.push_back(
      published("llama-3-70b", "Llama-3-70B", 80, 64, 8, 128, 70553706496, "meta-llama/Meta-Llama-3-70B config.json"));
  ModelShape mistral = published("mistral-7b", "Mistral-7B", 32, 32, 8, 128, 7241732096,
                                 "mistralai/Mistral-7B-v0.1 config.json (sliding_window 4096)");
  mistral.window = 4096;
  mistral.window_layers = 32;
  mistral.window_published = true;
  p.push_back(mistral);
  p.push_back(published("mixtral-8x7b", "Mixtral-8x7B", 32, 32, 8, 128, 46702792704,
                        "mistralai/Mixtral-8x7B-v0.1 config.json (no sliding window)"));
  ModelShape gemma = published("gemma-2-9b", "Gemma-2-9B", 42, 16, 8, 256, 9241705984,
                               "google/gemma-2-9b config.json (sliding_window 4096 on alternating layers)");
  gemma.window = 4096;
  gemma.window_layers = 21;
  gemma.window_published = true;
  p.push_back(gemma);
  // DeepSeek-V2 has no separate key/value heads: the MHA rows are its uncompressed equivalent (128 heads of 128).
  ModelShape ds = published("deepseek-v2", "DeepSeek-V2", 60, 128, 128, 128, 235741434880,
                            "deepseek-ai/DeepSeek-V2 config.json (kv_lora_rank 512, qk_rope_head_dim 64)");
  ds.latent_dim = 512;
  ds.rope_dim = 64;
  ds.latent_published = true;
  p.push_back(ds);
  for (auto& s : p) assume_missing(s);
  p.push_back(bundled_shape(bundled_dir));
  return p;
}

ModelShape find_kv_preset(const std::string& key, const std::string& bundled_dir) {
  const std::string k = lower(key);
  std::string known;
  for (const auto& s : kv_presets(bundled_dir)) {
    if (s.key == k) return s;
    known += (known.empty() ? "" : ", ") + s.key;
  }
  throw Error("unknown preset '" + key + "' (known: " + known + ")");
}

ModelShape parse_custom_shape(const std::string& spec) {
  ModelShape s;
  s.key = "custom";
  s.name = "custom";
  s.source = "--custom " + spec;
  std::map<std::string, int64_t*> fields = {
      {"layers", &s.layers},  {"heads", &s.heads},       {"kv_heads", &s.kv_heads}, {"head_dim", &s.head_dim},
      {"d_c", &s.latent_dim}, {"d_r", &s.rope_dim},      {"window", &s.window},     {"window_layers", &s.window_layers},
      {"sinks", &s.sinks},    {"features", &s.features}, {"params", &s.parameters}};
  size_t at = 0;
  while (at <= spec.size()) {
    const size_t end = std::min(spec.find(',', at), spec.size());
    const std::string item = spec.substr(at, end - at);
    at = end + 1;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    const std::string name = item.substr(0, std::min(eq, item.size()));
    auto f = fields.find(name);
    if (f == fields.end()) {
      std::string known;
      for (const auto& kv : fields) known += (known.empty() ? "" : ", ") + kv.first;
      throw Error("--custom: unknown field '" + name + "' (known: " + known + ")");
    }
    if (eq == std::string::npos) throw Error("--custom: field '" + name + "' needs a value (" + name + "=N)");
    const std::string value = item.substr(eq + 1);
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != value.size() || v < 0 || v > 1e15 || v != static_cast<double>(static_cast<int64_t>(v)))
      throw Error("--custom: " + name + "=" + value + " is not a non-negative whole number");
    *f->second = static_cast<int64_t>(v);
  }
  if (s.layers == 0 || s.heads == 0 || s.head_dim == 0)
    throw Error("--custom needs at least layers=, heads= and head_dim= (kv_heads defaults to heads)");
  if (s.kv_heads == 0) s.kv_heads = s.heads;
  s.latent_published = s.latent_dim != 0;
  if (s.latent_dim != 0 && s.rope_dim == 0 && spec.find("d_r=") == std::string::npos) s.rope_dim = s.head_dim / 2;
  s.window_published = s.window != 0;
  if (s.window != 0 && spec.find("window_layers=") == std::string::npos) s.window_layers = s.layers;
  assume_missing(s);
  validate(s);
  return s;
}

KvTable kv_table(const ModelShape& shape, int64_t tokens, int64_t batch, KvDType dtype) {
  if (tokens < 1 || tokens > kMaxKvTokens)
    throw Error("--seq must be 1.." + std::to_string(kMaxKvTokens) + " tokens (got " + std::to_string(tokens) + ")");
  if (batch < 1 || batch > 4096) throw Error("--batch must be 1..4096 (got " + std::to_string(batch) + ")");
  validate(shape);
  const ModelShape& s = shape;
  const int64_t b = kv_dtype_bytes(dtype), L = s.layers, T = tokens;
  KvTable t;
  t.shape = s;
  t.dtype = dtype;
  t.tokens = tokens;
  t.batch = batch;
  t.weight_bytes = 2 * s.parameters;
  const std::string dh = " x " + std::to_string(s.head_dim);
  auto row = [&](std::string family, std::string kept, bool assumed, bool constant, int64_t per_token, int64_t bytes) {
    KvRow r{std::move(family), std::move(kept), assumed, constant, per_token * batch, bytes * batch, {}, {}};
    for (int64_t g : kGpuGiB) {
      const int64_t cap = g << 30;
      r.fits_cache.push_back(r.bytes <= cap);
      r.fits_with_weights.push_back(s.parameters > 0 && r.bytes + t.weight_bytes <= cap);
    }
    t.rows.push_back(std::move(r));
  };
  row("MHA", "K,V: " + std::to_string(s.heads) + " heads" + dh, false, false,
      L * kv_layer_bytes(s.heads, s.head_dim, b, 1), L * kv_layer_bytes(s.heads, s.head_dim, b, T));
  row("MQA", "K,V: 1 head" + dh, false, false, L * kv_layer_bytes(1, s.head_dim, b, 1),
      L * kv_layer_bytes(1, s.head_dim, b, T));
  row("GQA", "K,V: " + std::to_string(s.kv_heads) + " kv heads" + dh + (s.kv_heads == s.heads ? " (= MHA)" : ""), false,
      false, L * kv_layer_bytes(s.kv_heads, s.head_dim, b, 1), L * kv_layer_bytes(s.kv_heads, s.head_dim, b, T));
  row("MLA",
      "latent d_c " + std::to_string(s.latent_dim) + " + d_R " + std::to_string(s.rope_dim) +
          (s.latent_published ? "" : " (assumed)"),
      !s.latent_published, false, L * mla_layer_bytes(s.latent_dim, s.rope_dim, b, 1),
      L * mla_layer_bytes(s.latent_dim, s.rope_dim, b, T));
  // The window row keeps the preset's kv heads; layers outside the window (Gemma-2's global ones) keep everything.
  const int64_t wl = s.window_layers, gl = L - wl;
  std::string where =
      wl == L ? "every layer" : std::to_string(wl) + " of " + std::to_string(L) + " layers, others full";
  row("sliding window", "W " + std::to_string(s.window) + " on " + where + (s.window_published ? "" : " (assumed)"),
      !s.window_published, false, L * kv_layer_bytes(s.kv_heads, s.head_dim, b, 1),
      wl * window_layer_bytes(s.kv_heads, s.head_dim, b, T, s.window) +
          gl * kv_layer_bytes(s.kv_heads, s.head_dim, b, T));
  row("sinks + window",
      "S " + std::to_string(s.sinks) + " + W " + std::to_string(s.window) + " on every layer (S assumed)", true, false,
      L * kv_layer_bytes(s.kv_heads, s.head_dim, b, 1),
      L * sinks_layer_bytes(s.kv_heads, s.head_dim, b, T, s.sinks, s.window));
  row("linear", "state H (d_h^2 + d_h)", false, true, 0, L * linear_state_bytes(s.heads, s.head_dim, b));
  row("performer", "state H (m d_h + m), m " + std::to_string(s.features) + " (assumed)", true, true, 0,
      L * performer_state_bytes(s.heads, s.head_dim, s.features, b));
  const int64_t slots =
      s.key == "bundled" ? static_cast<int64_t>(registry_default("linformer_causal", "k")) : kAssumedSlots;
  row("causal linformer", "state 2 H k d_h, k " + std::to_string(slots) + " (assumed)", true, true, 0,
      L * causal_linformer_bytes(s.heads, s.head_dim, slots, b));
  return t;
}

std::string format_bytes(int64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  static const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes) / 1024.0;
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

}  // namespace attnscope
