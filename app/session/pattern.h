#pragma once
// The sparsity row's data for masked variants from attention/masked.h (describe_pattern, tile_map), kept in a
// translation unit of its own (the worker fills the tiled kernel's KernelTileMap from engine.h; this one reads
// masked.h's PatternTileMap). Called on the worker thread (the pattern code runs LibTorch inside).
#include <cstdint>
#include <future>
#include <string>
#include <vector>

#include "config.h"  // LayerSpec
#include "params.h"

namespace attnscope::session {

struct PatternSummary {
  bool described = false;          // a masked variant with a fixed pattern (else: read the forward's mask)
  double density = 0;              // computed pairs / (H n n)
  double flops_vs_causal = 0;      // computed pairs / (H n (n + 1) / 2)
  std::vector<std::string> notes;  // parameters clamped or without effect at this length
  // tile map (masked variants at `tile`, or the tiled kernel at br x bc); empty when tiling does not apply
  int tile_rows = 0, tile_cols = 0, tile_h = 0, tile_w = 0;  // tiles, and their size in (queries, keys)
  std::vector<uint8_t> tiles;  // [rows, cols] of head 0: 0 skipped, 1 partial, 2 computed in full
  double tiles_vs_causal = 0;  // non-skipped tiles / the tiles a causal tiled kernel computes
};

// Tile size used for the masked variants' tile maps.
constexpr int kPatternTile = 16;

// Masked variants only (others: described = false, no tiles). Never throws: a pattern that cannot be described
// yields described = false and a note.
PatternSummary summarize_pattern(const std::string& variant, const ParamValues& params, int64_t n_head, int64_t context,
                                 int64_t n, int64_t layer);

// summarize_pattern for every layer of `specs` ([L], parameters resolved) at length n, on another thread: a column's
// patterns depend on its settings and the length alone, so the worker describes them while the forward runs (a
// slider's new window or a keystroke's new length misses their cache: ~0.6 ms per distinct layer pattern, on the
// slider's critical path before). An invalid future when no layer is masked (nothing to describe).
std::future<std::vector<PatternSummary>> summarize_patterns_async(std::vector<LayerSpec> specs, int64_t n_head,
                                                                  int64_t context, int64_t n);

}  // namespace attnscope::session
