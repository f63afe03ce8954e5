#include "cmd_kv.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "engine.h"
#include "error.h"
#include "kv_calc.h"

namespace attnscope {

namespace {

std::string grouped(int64_t v) {  // 131072 -> "131,072"
  std::string s = std::to_string(v);
  for (int i = int(s.size()) - 3; i > 0; i -= 3) s.insert(size_t(i), ",");
  return s;
}

std::string parameter_text(int64_t n) {
  char b[32];
  if (n >= 1000000000)
    std::snprintf(b, sizeof b, "%.2fB", double(n) / 1e9);
  else
    std::snprintf(b, sizeof b, "%.2fM", double(n) / 1e6);
  return b;
}

std::string shape_line(const ModelShape& s) {
  std::string line = s.name + ": " + std::to_string(s.layers) + " layers, " + std::to_string(s.heads) + " heads, " +
                     std::to_string(s.kv_heads) + " KV heads, head dim " + std::to_string(s.head_dim);
  if (s.parameters > 0)
    line += ", " + parameter_text(s.parameters) + " parameters (fp16 weights " + format_bytes(2 * s.parameters) + ")";
  return line;
}

int list_presets(const std::vector<ModelShape>& presets, bool as_json) {
  if (as_json) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& s : presets)
      a.push_back({{"preset", s.key},
                   {"name", s.name},
                   {"layers", s.layers},
                   {"heads", s.heads},
                   {"kv_heads", s.kv_heads},
                   {"head_dim", s.head_dim},
                   {"d_c", s.latent_dim},
                   {"d_r", s.rope_dim},
                   {"latent_published", s.latent_published},
                   {"window", s.window},
                   {"window_layers", s.window_layers},
                   {"window_published", s.window_published},
                   {"parameters", s.parameters},
                   {"source", s.source}});
    std::cout << a.dump(2) << "\n";
    return 0;
  }
  std::printf("%-14s %6s %6s %8s %8s %-14s %-18s %10s\n", "preset", "layers", "heads", "kv_heads", "head_dim",
              "MLA d_c+d_R", "window", "params");
  for (const auto& s : presets) {
    const std::string mla =
        std::to_string(s.latent_dim) + "+" + std::to_string(s.rope_dim) + (s.latent_published ? "" : " *");
    std::string win = std::to_string(s.window);
    if (s.window_layers != s.layers) win += " on " + std::to_string(s.window_layers) + "/" + std::to_string(s.layers);
    if (!s.window_published) win += " *";
    std::printf("%-14s %6lld %6lld %8lld %8lld %-14s %-18s %10s\n", s.key.c_str(), (long long)s.layers,
                (long long)s.heads, (long long)s.kv_heads, (long long)s.head_dim, mla.c_str(), win.c_str(),
                parameter_text(s.parameters).c_str());
  }
  std::printf(
      "* assumed, not published: MLA d_c = 4 d_h, d_R = d_h / 2 (DeepSeek-V2's ratios); window 4096 on every "
      "layer (Mistral's).\n  The bundled model uses the registry defaults of its variants.\n");
  return 0;
}

}  // namespace

int cmd_kv(const KvArgs& a) {
  const std::string bundled = default_model_dir();
  if (a.list) return list_presets(kv_presets(bundled), a.as_json);
  if (a.preset.empty() == a.custom.empty()) throw Error("give --preset NAME or --custom SHAPE (see kv --list)");
  const KvDType dtype = parse_kv_dtype(a.dtype);
  const ModelShape shape = a.custom.empty() ? find_kv_preset(a.preset, bundled) : parse_custom_shape(a.custom);
  if (a.seq == 0) throw Error("--seq must be 1.." + std::to_string(kMaxKvTokens) + " tokens (got 0)");
  const KvTable t = kv_table(shape, a.seq, a.batch, dtype);

  if (a.as_json) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& r : t.rows) {
      nlohmann::json fits = nlohmann::json::object();
      for (size_t g = 0; g < kGpuGiB.size(); ++g)
        fits[std::to_string(kGpuGiB[g])] = {{"cache", bool(r.fits_cache[g])},
                                            {"with_weights", bool(r.fits_with_weights[g])}};
      rows.push_back({{"variant", r.family},
                      {"kept", r.kept},
                      {"assumed", r.assumed},
                      {"constant", r.constant},
                      {"per_token_bytes", r.per_token_bytes},
                      {"bytes", r.bytes},
                      {"fits_gib", fits}});
    }
    const ModelShape& s = t.shape;
    std::cout << nlohmann::json({{"model",
                                  {{"preset", s.key},
                                   {"name", s.name},
                                   {"layers", s.layers},
                                   {"heads", s.heads},
                                   {"kv_heads", s.kv_heads},
                                   {"head_dim", s.head_dim},
                                   {"parameters", s.parameters},
                                   {"source", s.source}}},
                                 {"tokens", t.tokens},
                                 {"batch", t.batch},
                                 {"dtype", kv_dtype_name(t.dtype)},
                                 {"bytes_per_element", kv_dtype_bytes(t.dtype)},
                                 {"weights_fp16_bytes", t.weight_bytes},
                                 {"gpu_gib", kGpuGiB},
                                 {"rows", rows}})
                     .dump(2)
              << "\n";
    return 0;
  }

  std::printf("%s\nsource: %s\n", shape_line(t.shape).c_str(), t.shape.source.c_str());
  std::printf("KV cache at %s tokens, batch %lld, %s (%lld B per element)\n\n", grouped(t.tokens).c_str(),
              (long long)t.batch, kv_dtype_name(t.dtype), (long long)kv_dtype_bytes(t.dtype));
  std::printf("%-17s %-42s %11s %11s", "variant", "kept per layer", "per token", "total");
  for (int64_t g : kGpuGiB) std::printf(" %6lld GB", (long long)g);
  std::printf("\n");
  for (const auto& r : t.rows) {
    std::printf("%-17s %-42s %11s %11s", r.family.c_str(), r.kept.c_str(),
                r.constant ? "constant" : format_bytes(r.per_token_bytes).c_str(), format_bytes(r.bytes).c_str());
    for (size_t g = 0; g < kGpuGiB.size(); ++g)
      std::printf(" %9s", r.fits_with_weights[g] ? "ok" : r.fits_cache[g] ? "cache" : "-");
    std::printf("\n");
  }
  std::printf("\nper token: bytes one more token adds while the cache grows (all layers, whole batch)\n");
  std::printf("fits: ok = cache + fp16 weights fit; cache = only the cache fits%s; - = the cache alone does not fit\n",
              t.weight_bytes > 0 ? "" : " (no parameter count: weights not included)");
  std::printf("GB here = GiB (2^30 B); nothing is reserved for activations, the runtime or fragmentation\n");
  return 0;
}

Command add_kv(CLI::App& app) {
  auto a = std::make_shared<KvArgs>();
  auto* c = app.add_subcommand("kv", "KV-cache bytes of every attention family for published model shapes");
  c->add_option("--preset", a->preset,
                "model shape: llama-2-7b, llama-3-8b, llama-3-70b, mistral-7b, mixtral-8x7b, "
                "gemma-2-9b, deepseek-v2, bundled (see --list)");
  c->add_option("--custom", a->custom,
                "layers=..,heads=..,kv_heads=..,head_dim=..[,d_c=..,d_r=..,window=..,"
                "window_layers=..,sinks=..,features=..,params=..]");
  c->add_option("--seq", a->seq, "sequence length in tokens (1..1048576)");
  c->add_option("--dtype", a->dtype, "cache element type: fp16|bf16|fp8|fp32");
  c->add_option("--batch", a->batch, "sequences decoded together");
  c->add_flag("--list", a->list, "list the presets and their shapes");
  c->add_flag("--json", a->as_json, "machine-readable output");
  return {c, [a] { return cmd_kv(*a); }};
}

}  // namespace attnscope
