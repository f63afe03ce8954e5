#pragma once
// Texts longer than the training context (no LibTorch in this header):
//  - how far a model reaches: RoPE, xPos, ALiBi and no positions run up to kLongestText characters; learned absolute
//    positions stop at the context, and so do the variants whose weights are sized by it (length_limit);
//  - the next-character loss at every position, computed chunk by chunk through the decoding caches (a window or a
//    sink cache stays bounded; nowhere a T x T matrix), and its mean over held-out windows (extrapolation_curve);
//  - pooled heatmaps of one layer and head of a long text, computed a block of query rows at a time: each pixel
//    holds the max (or the mean) of the weights it covers, memory O(rows per block x T + pixels), never T x T.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pooled_rows.h"
#include "engine.h"

namespace attnscope {

constexpr int64_t kLongestText = 32768;  // characters: the longest text any command runs

struct LengthLimit {
  int64_t tokens = kLongestText;  // the longest text the model runs
  std::string reason;             // why it stops there ("" when at kLongestText)
};
// The model's reach, from its position scheme and every layer's variant (the rules are a table in long_context.cpp).
LengthLimit length_limit(const Model& m);
// Throws Error naming the limit and its reason when `tokens` characters exceed it, and for an empty text.
// what: "the text", "the second text", ...
void check_length(const Model& m, int64_t tokens, const std::string& what);
// The longest text whose full maps (Model::attend: L x H x T x T floats and the mask) stay within 160 MiB; never below
// the context.
int64_t full_maps_limit(const Model& m);

// Next-character loss at every position: [T-1] nats, entry i = -log p(tokens[i + 1] | tokens[0..i]). Runs the text in
// chunks through the decoding caches. Throws Error: past length_limit, non-causal variants (the loss would read the
// answer), variants without a cache that reaches this length when the text is also past full_maps_limit.
std::vector<float> position_losses(const Model& m, const std::vector<int64_t>& tokens);

struct ExtrapolationCurve {
  int64_t length = 0, windows = 0, context = 0;  // characters predicted per window, windows, training context
  std::vector<double> mean;                      // [length] mean loss at position i over the windows, nats
  double seconds = 0;
  // Mean of `mean` over positions [a, b) (clipped to the curve).
  double mean_over(int64_t a, int64_t b) const;
};
// `windows` non-overlapping windows of length + 1 characters from the start of `text` (the held-out split), each run
// from position 0. progress(done, total) after each batch of windows. Throws Error when they do not fit in `text`
// (naming how many would), or as position_losses.
ExtrapolationCurve extrapolation_curve(const Model& m, const std::vector<int64_t>& text, int64_t length,
                                       int64_t windows, const std::function<void(int64_t, int64_t)>& progress = {});

// ---- pooled heatmaps
enum class PoolMode { Max, Mean };
const char* pool_mode_name(PoolMode m);          // "max" | "mean"
PoolMode parse_pool_mode(const std::string& s);  // throws Error

// Character rows [row0, row1) x key columns [col0, col1) of the T x T matrix; row1 = col1 = 0: the whole matrix.
struct PoolRegion {
  int64_t row0 = 0, row1 = 0, col0 = 0, col1 = 0;
};

struct PooledMap {
  int64_t layer = 0, head = 0, length = 0;  // T
  PoolRegion region;                        // resolved (never 0 = all)
  int64_t rows = 0, cols = 0;               // pixels: min(region size, asked) on each axis
  PoolMode mode = PoolMode::Max;
  std::vector<float> value;  // [rows, cols]
  bool tiled = false;        // weight rows block by block (else a full forward's display)
  double ms = 0;             // wall time of this map (the inputs below the layer included once)
  float at(int64_t r, int64_t c) const { return value[static_cast<size_t>(r * cols + c)]; }
  // The region and its pixels (pooled_rows.h: which characters each pixel covers).
  PoolGrid grid() const { return {region.row0, region.row1, region.col0, region.col1, rows, cols}; }
  // The pixel of character row i (or key column j): floor((i - row0) rows / (row1 - row0)).
  int64_t pixel_row(int64_t i) const { return grid().pixel_row(i); }
  int64_t pixel_col(int64_t j) const { return grid().pixel_col(j); }
};

// One long text in one model: the inputs of every layer are computed once (chunked through the caches, up to the
// layer asked for), then any layer, head and region is pooled from them.
class LongAttention {
 public:
  // Throws Error past length_limit, for an empty text or a token outside the vocabulary.
  LongAttention(std::shared_ptr<const Model> model, std::vector<int64_t> tokens);
  ~LongAttention();
  LongAttention(const LongAttention&) = delete;
  LongAttention& operator=(const LongAttention&) = delete;

  int64_t length() const;
  const Model& model() const;
  // width x height pixels at most (each >= 1); a region smaller than that is returned at full resolution (one pixel
  // per weight: the dense sub-block). Throws Error: layer, head or region out of range; a layer without weight rows
  // past full_maps_limit (the message names the variant and the limit).
  PooledMap pooled(int64_t layer, int64_t head, const PoolRegion& region, int64_t width, int64_t height,
                   PoolMode mode = PoolMode::Max);
  // "" when `layer` computes its weight rows tile by tile, else why its map comes from a full forward.
  std::string why_full(int64_t layer) const;

  struct State;

 private:
  std::unique_ptr<State> s_;
};

}  // namespace attnscope
