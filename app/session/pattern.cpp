#include "pattern.h"

#include <exception>

#include "masked.h"
#include "registry.h"

namespace attnscope::session {

PatternSummary summarize_pattern(const std::string& variant, const ParamValues& params, int64_t n_head, int64_t context,
                                 int64_t n, int64_t layer) {
  PatternSummary s;
  const VariantInfo* info = find_variant(variant);
  if (!info || info->family != "masked" || n < 1) return s;
  try {
    PatternView v = describe_pattern(variant, params, n_head, context, n, layer);
    s.notes = v.notes;
    if (v.data_dependent) return s;
    s.described = true;
    s.density = v.density;
    s.flops_vs_causal = v.flops_vs_causal;
    PatternTileMap t = tile_map(v, kPatternTile);
    s.tile_h = s.tile_w = kPatternTile;
    s.tile_rows = int(t.rows);
    s.tile_cols = int(t.cols);
    s.tiles.resize(size_t(t.rows * t.cols));
    for (int64_t r = 0; r < t.rows; ++r)
      for (int64_t c = 0; c < t.cols; ++c) s.tiles[size_t(r * t.cols + c)] = uint8_t(t.at(0, r, c));
    s.tiles_vs_causal = t.computed_tiles_vs_causal;
  } catch (const std::exception& e) {
    s.notes.push_back(e.what());
  }
  return s;
}

}  // namespace attnscope::session
