#pragma once
// The masked and sparse family (docs/variants.md#family-masked) as the display sees it: no LibTorch in this header.
// The layers themselves are built by make_masked_attention() (nn.h); these functions describe a pattern from
// its parameters alone (for the sparsity view and the % kept), and read what only a forward knows (LSH buckets).
#include <cstdint>
#include <string>
#include <vector>

#include "params.h"

namespace attnscope {

class AttentionLayer;  // nn.h

// The boolean mask of computed pairs of one layer for n tokens (self-attention, queries = keys = 0..n-1).
struct PatternView {
  std::string variant;
  int64_t heads = 0, n = 0;
  std::vector<uint8_t> mask;       // [H, n, n] 1 = pair computed
  std::vector<int64_t> pairs;      // [H] computed pairs per head
  double density = 0;              // computed pairs / (H n n): the share of the square that is computed
  double flops_vs_causal = 0;      // computed pairs / (H n (n + 1) / 2): score and PV FLOPs relative to causal
  bool data_dependent = false;     // LSH: the mask depends on the text (mask left empty; read it from a forward)
  std::vector<std::string> notes;  // parameters clamped or without effect at this context, for the GUI to show
  bool at(int64_t h, int64_t i, int64_t j) const { return mask[static_cast<size_t>((h * n + i) * n + j)] != 0; }
};

// Throws Error (a message the GUI can show) for combinations no layer accepts (odd LSH buckets, ...).
// layer: the layer index (BigBird draws its random blocks per layer, head and query block).
PatternView describe_pattern(const std::string& variant, const ParamValues& params, int64_t n_head, int64_t context,
                             int64_t n, int64_t layer = 0);
// Whether a masked variant's pattern differs between layers (BigBird's random blocks; LSH's buckets, read from the
// text): for the others describe_pattern gives the same view at every layer.
bool pattern_varies_by_layer(const std::string& variant);

// Tiles of a pattern for a tile size: which are computed in full, in part, or skipped.
enum class PatternTileState : uint8_t { Skipped = 0, Partial = 1, Full = 2 };
struct PatternTileMap {
  int64_t heads = 0, tile = 0, rows = 0, cols = 0;  // rows = cols = ceil(n / tile)
  std::vector<PatternTileState> state;              // [H, rows, cols]
  double computed_tiles_vs_causal = 0;  // non-skipped tiles / tiles a causal tiled kernel computes (all heads)
  PatternTileState at(int64_t h, int64_t r, int64_t c) const {
    return state[static_cast<size_t>((h * rows + r) * cols + c)];
  }
};
PatternTileMap tile_map(const PatternView& v, int64_t tile);  // throws Error for tile < 1

// LSH: the bucket of every token in every round of the layer's last forward (batch element 0), as
// [rounds, H, T] flattened; empty for other layers or before a forward.
struct LshBuckets {
  int64_t rounds = 0, heads = 0, tokens = 0, buckets = 0;
  std::vector<int32_t> ids;  // [rounds, H, T]
};
LshBuckets lsh_buckets(const AttentionLayer& layer);

// Hooks for tests and benchmarks. Which computation a masked layer uses: auto (blocked where the pattern is
// local and the text is longer than one query block), always dense masked, or always blocked (local patterns).
enum class MaskedPath { Auto, Dense, Blocked };
void set_masked_path(AttentionLayer& layer, MaskedPath p);  // throws Error for layers that are not masked
// LSH: every token lands in `bucket` in every round (bucket < 0: back to the hash).
void force_lsh_bucket(AttentionLayer& layer, int64_t bucket);

}  // namespace attnscope
