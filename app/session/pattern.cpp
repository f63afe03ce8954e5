#include "pattern.h"

#include <algorithm>
#include <exception>
#include <mutex>
#include <sstream>

#include "lru_cache.h"

#include "masked.h"
#include "registry.h"

namespace attnscope::session {

namespace {

PatternSummary describe(const std::string& variant, const ParamValues& params, int64_t n_head, int64_t context,
                        int64_t n, int64_t layer) {
  PatternSummary s;
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

}  // namespace

PatternSummary summarize_pattern(const std::string& variant, const ParamValues& params, int64_t n_head, int64_t context,
                                 int64_t n, int64_t layer) {
  const VariantInfo* info = find_variant(variant);
  if (!info || info->family != "masked" || n < 1) return {};
  // A pure function of its arguments, asked again for every keystroke of every masked column: remembered (the
  // last ~1 MiB of summaries; columns computed in parallel share it). Most patterns are the same in every layer:
  // described once for all of them (a slider's new window had described four identical layers, ~2 ms).
  if (!pattern_varies_by_layer(variant)) layer = 0;
  static std::mutex mu;
  static LruCache<PatternSummary> cache(size_t(1) << 20);
  std::ostringstream key;
  key << variant << '|' << n_head << '|' << context << '|' << n << '|' << layer;
  for (const auto& [k, v] : params) key << '|' << k << '=' << v;
  {
    std::lock_guard<std::mutex> l(mu);
    if (const PatternSummary* hit = cache.find(key.str())) return *hit;
  }
  PatternSummary s = describe(variant, params, n_head, context, n, layer);
  std::lock_guard<std::mutex> l(mu);
  cache.put(key.str(), s, sizeof(PatternSummary) + s.tiles.size() + 64 * s.notes.size());
  return s;
}

std::future<std::vector<PatternSummary>> summarize_patterns_async(std::vector<LayerSpec> specs, int64_t n_head,
                                                                  int64_t context, int64_t n) {
  if (std::none_of(specs.begin(), specs.end(),
                   [](const LayerSpec& s) { return get_variant(s.variant).family == "masked"; }))
    return {};
  return std::async(std::launch::async, [specs = std::move(specs), n_head, context, n] {
    std::vector<PatternSummary> out;  // [L]
    for (size_t l = 0; l < specs.size(); ++l)
      out.push_back(summarize_pattern(specs[l].variant, specs[l].params, n_head, context, n, int64_t(l)));
    return out;
  });
}

}  // namespace attnscope::session
