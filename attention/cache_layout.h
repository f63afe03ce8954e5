#pragma once
// What one layer's decoding cache keeps (LayerCache::layout in nn.h; DecodeFrame in engine.h). No LibTorch.
#include <cstdint>
#include <string>

namespace attnscope {

struct CacheLayout {
  std::string kind = "state";  // "kv" keys and values per token | "latent" MLA's c and k_R per token |
                               // "kv+queries" MTA (also the last c_q - 1 queries) | "state" a fixed-size state
  int64_t width = 0;     // elements per held token and batch row (kv: 2 H_kv d_h; latent: d_c + d_R); state: all of it
  int64_t kv_heads = 0;  // key/value heads per held token (kv kinds), else 0
};

}  // namespace attnscope
