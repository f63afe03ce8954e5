// One layer's pattern in the masked and sparse family (docs/variants.md#family-masked): which (query, key) pairs a
// variant computes, resolved from its parameters, as a dense mask for the reference path, as key ranges per query
// block for the blocked path, and as the tokens a decoding cache must keep. Internal to masked.cpp; its own file so
// the rules can be read apart from the attention that applies them.
#pragma once

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "error.h"
#include "nn.h"
#include "registry.h"

namespace attnscope::masked_detail {

using Ranges = std::vector<std::pair<int64_t, int64_t>>;  // [begin, end) of key positions

enum class Kind { Window, Dilated, Block, Strided, Fixed, Longformer, BigBird, Sinks, Lsh, Softcap };

inline bool kind_of(const std::string& v, Kind* k) {
  static const std::vector<std::pair<std::string, Kind>> names = {
      {"sliding_window", Kind::Window}, {"dilated", Kind::Dilated}, {"block_local", Kind::Block},
      {"strided", Kind::Strided},       {"fixed", Kind::Fixed},     {"longformer", Kind::Longformer},
      {"bigbird", Kind::BigBird},       {"sinks", Kind::Sinks},     {"lsh", Kind::Lsh},
      {"softcap", Kind::Softcap}};
  for (const auto& [n, kind] : names)
    if (n == v) {
      if (k) *k = kind;
      return true;
    }
  return false;
}

inline int64_t iparam(const ParamValues& p, const std::string& variant, const std::string& name) {
  auto it = p.find(name);
  if (it == p.end()) throw Error("variant '" + variant + "' is missing its parameter '" + name + "'");
  return static_cast<int64_t>(std::llround(it->second));
}

// One layer's pattern, resolved from its parameters. Positions are absolute token positions; every rule is
// causal (j <= i) and always allows the diagonal, so no row is empty.
struct Pattern {
  Kind kind = Kind::Softcap;
  std::string variant;
  int64_t heads = 1, context = 1, layer = 0;
  int64_t window = 0, dilation = 1;      // sliding window, dilated, longformer, sinks: W; dilated: r
  int64_t block = 0;                     // block-local: B; bigbird: b
  int64_t stride = 0, c = 0;             // strided / fixed: l; fixed: c (clamped to l/2)
  bool split = false;                    // strided / fixed: even heads A, odd heads B
  int64_t first = 0;                     // longformer: g; sinks: S (the first tokens every query sees)
  int64_t wb = 0, gb = 0, rb = 0;        // bigbird: window, global and random blocks
  uint64_t seed = 0;                     // bigbird, lsh
  int64_t buckets = 0, rounds = 0;       // lsh
  double cap = 0;                        // softcap
  std::vector<std::string> notes;        // clamps and no-op parameters, for the GUI
  std::vector<int64_t> last_random_use;  // bigbird [key block]: last query block of the context linking it at random

  Pattern(const std::string& v, const ParamValues& p, int64_t n_head, int64_t ctx, int64_t layer_index)
      : variant(v), heads(n_head), context(ctx), layer(layer_index) {
    if (!kind_of(v, &kind)) throw Error("internal: '" + v + "' is not a masked variant");
    auto get = [&](const char* n) { return iparam(p, v, n); };
    const std::string ctx_text = "the context (" + std::to_string(context) + ")";
    switch (kind) {
      case Kind::Window:
        window = get("window");
        if (window >= context)
          notes.push_back("window " + std::to_string(window) + " covers " + ctx_text + ": causal attention");
        break;
      case Kind::Dilated: {
        window = get("window");
        dilation = get("dilation");
        const int64_t span = (window - 1) * dilation + 1;
        if (span > context)
          notes.push_back("span (W - 1) r + 1 = " + std::to_string(span) + " exceeds " + ctx_text +
                          ": the farthest keys never exist");
        break;
      }
      case Kind::Block:
        block = get("block");
        if (block >= context)
          notes.push_back("block " + std::to_string(block) + " covers " + ctx_text + ": causal attention");
        break;
      case Kind::Strided:
        stride = get("stride");
        split = get("mode") == 1;
        break;
      case Kind::Fixed:
        stride = get("stride");
        c = get("c");
        split = get("mode") == 1;
        if (c > stride / 2) {
          notes.push_back("c = " + std::to_string(c) + " is more than l/2 = " + std::to_string(stride / 2) +
                          ": clamped to " + std::to_string(stride / 2));
          c = stride / 2;
        }
        break;
      case Kind::Longformer:
      case Kind::Sinks:
        window = get("window");
        first = get(kind == Kind::Sinks ? "sinks" : "globals");
        if (first + window >= context)
          notes.push_back(std::string(kind == Kind::Sinks ? "S + W" : "g + W") + " = " +
                          std::to_string(first + window) + " covers " + ctx_text + ": causal attention");
        break;
      case Kind::BigBird: {
        block = get("block");
        wb = get("window_blocks");
        gb = get("global_blocks");
        rb = get("random_blocks");
        seed = static_cast<uint64_t>(get("seed"));
        const int64_t read = (1 + wb + gb + rb) * block;
        if (read >= context)
          notes.push_back("(1 + w_b + g + r) b = " + std::to_string(read) + " covers " + ctx_text +
                          ": nearly causal attention");
        const int64_t nb = (context + block - 1) / block;
        last_random_use.assign(static_cast<size_t>(nb), -1);
        for (int64_t h = 0; h < heads; ++h)
          for (int64_t qb = 0; qb < nb; ++qb)
            for (int64_t kb : random_blocks(h, qb))
              last_random_use[static_cast<size_t>(kb)] = std::max(last_random_use[static_cast<size_t>(kb)], qb);
        break;
      }
      case Kind::Lsh:
        buckets = get("buckets");
        rounds = get("rounds");
        seed = static_cast<uint64_t>(get("seed"));
        if (buckets % 2 != 0)
          throw Error("lsh: buckets must be even (the hash takes the argmax of [xR; -xR]), got " +
                      std::to_string(buckets));
        break;
      case Kind::Softcap: {
        auto it = p.find("cap");
        if (it == p.end()) throw Error("variant 'softcap' is missing its parameter 'cap'");
        cap = it->second;
        break;
      }
    }
  }

  // BigBird: the random key blocks of query block qb in head h, strictly earlier than the window and not global,
  // min(r, available) of them, drawn from (seed, layer, head, query block) alone.
  std::vector<int64_t> random_blocks(int64_t h, int64_t qb) const {
    std::vector<int64_t> cand;
    for (int64_t kb = gb; kb < qb - wb; ++kb) cand.push_back(kb);
    std::mt19937_64 rng(splitmix64(splitmix64(splitmix64(seed) ^ static_cast<uint64_t>(layer)) ^
                                   (static_cast<uint64_t>(h) << 32) ^ static_cast<uint64_t>(qb)));
    const size_t n = std::min(cand.size(), static_cast<size_t>(rb));
    for (size_t k = 0; k < n; ++k) std::swap(cand[k], cand[k + static_cast<size_t>(rng() % (cand.size() - k))]);
    cand.resize(n);
    std::sort(cand.begin(), cand.end());
    return cand;
  }

  // Which pairs are computed: qpos [T], kpos [S] (int64; kpos < 0 marks an empty cache slot) -> [1 or H, T, S].
  torch::Tensor allow(const torch::Tensor& qpos, const torch::Tensor& kpos) const {
    auto i = qpos.unsqueeze(1), j = kpos.unsqueeze(0);                     // [T, 1], [1, S]
    auto d = i - j;                                                        // [T, S] i - j
    auto causal = (j >= 0) & (d >= 0);                                     // [T, S]
    auto per_head = [&](const torch::Tensor& a, const torch::Tensor& b) {  // [T, S] each -> [1 or H, T, S]
      if (!split) return (a | b).unsqueeze(0);
      auto even = (torch::arange(heads, qpos.options()).remainder(2) == 0).view({heads, 1, 1});  // [H, 1, 1]
      return torch::where(even, a.unsqueeze(0), b.unsqueeze(0));
    };
    switch (kind) {
      case Kind::Window: return (causal & (d < window)).unsqueeze(0);
      case Kind::Dilated: return (causal & (d < window * dilation) & (d.remainder(dilation) == 0)).unsqueeze(0);
      case Kind::Block: return (causal & (torch::div(i, block, "floor") == torch::div(j, block, "floor"))).unsqueeze(0);
      case Kind::Strided: return per_head(causal & (d <= stride), causal & (d.remainder(stride) == 0));
      case Kind::Fixed:
        return per_head(causal & (torch::div(i, stride, "floor") == torch::div(j, stride, "floor")),
                        causal & ((j.remainder(stride) >= stride - c) | (d == 0)));
      case Kind::Longformer:
      case Kind::Sinks: return (causal & ((d < window) | (j < first) | (i < first))).unsqueeze(0);
      case Kind::BigBird: {
        auto qb = torch::div(i, block, "floor"), kb = torch::div(j.clamp_min(0), block, "floor");  // [T, 1], [1, S]
        auto fixed = ((kb <= qb) & (kb >= qb - wb)) | (kb < gb);                                   // [T, S]
        const int64_t q_lo = qb.min().item<int64_t>(), q_hi = qb.max().item<int64_t>();
        const int64_t k_hi = std::max<int64_t>(kb.max().item<int64_t>(), 0);
        auto table = torch::zeros({heads, q_hi - q_lo + 1, k_hi + 1}, torch::kBool);  // [H, query blocks, key blocks]
        auto t = table.accessor<bool, 3>();
        for (int64_t h = 0; h < heads; ++h)
          for (int64_t b = q_lo; b <= q_hi; ++b)
            for (int64_t r : random_blocks(h, b))
              if (r <= k_hi) t[h][b - q_lo][r] = true;
        auto rnd = table.to(qpos.device())
                       .index_select(1, (qb.squeeze(1) - q_lo))
                       .index_select(2, kb.squeeze(0));  // [H, T, S]
        return causal.unsqueeze(0) & (fixed.unsqueeze(0) | rnd);
      }
      case Kind::Lsh:
      case Kind::Softcap: return causal.unsqueeze(0);
    }
    return causal.unsqueeze(0);
  }

  // The pattern as the fused kernel's mask (flash.h); false for the data-dependent, random and soft-capped ones.
  bool flash_mask(flash::MaskDesc* m) const {
    using K = flash::MaskKind;
    switch (kind) {
      case Kind::Window: *m = flash::MaskDesc::all({K::Window, window, 0}); return true;
      case Kind::Dilated: *m = flash::MaskDesc::all({K::Dilated, window, dilation}); return true;
      case Kind::Block: *m = flash::MaskDesc::all({K::Block, block, 0}); return true;
      case Kind::Longformer:
      case Kind::Sinks: *m = flash::MaskDesc::all({K::Global, window, first}); return true;
      case Kind::Strided:
        *m = split ? flash::MaskDesc{{K::StridedLocal, stride, 0}, {K::StridedColumn, stride, 0}}
                   : flash::MaskDesc::all({K::StridedBoth, stride, 0});
        return true;
      case Kind::Fixed:
        *m = split ? flash::MaskDesc{{K::FixedBlock, stride, 0}, {K::FixedColumn, stride, c}}
                   : flash::MaskDesc::all({K::FixedBoth, stride, c});
        return true;
      default: return false;
    }
  }

  bool local() const {
    return kind == Kind::Window || kind == Kind::Dilated || kind == Kind::Block || kind == Kind::Longformer ||
           kind == Kind::Sinks || kind == Kind::BigBird;
  }
  // Query block of the blocked path (block-structured patterns: their own block, so ranges stay exact).
  int64_t query_block() const {
    if (kind == Kind::Block || kind == Kind::BigBird) return block;
    if (kind == Kind::Dilated) return std::clamp<int64_t>((window - 1) * dilation + 1, 16, 128);
    return std::clamp<int64_t>(window, 16, 128);
  }
  // Keys the queries i0..i1-1 of one aligned query block may attend, clipped to [lo, i1), merged.
  Ranges key_ranges(int64_t i0, int64_t i1, int64_t lo) const {
    Ranges r;
    switch (kind) {
      case Kind::Window: r.push_back({i0 - window + 1, i1}); break;
      case Kind::Dilated: r.push_back({i0 - (window - 1) * dilation, i1}); break;
      case Kind::Block: r.push_back({i0 / block * block, i1}); break;
      case Kind::Longformer:
      case Kind::Sinks:
        r.push_back({0, first});
        r.push_back({i0 - window + 1, i1});
        break;
      case Kind::BigBird: {
        const int64_t qb = i0 / block;
        r.push_back({(qb - wb) * block, i1});
        r.push_back({0, gb * block});
        for (int64_t h = 0; h < heads; ++h)
          for (int64_t kb : random_blocks(h, qb)) r.push_back({kb * block, (kb + 1) * block});
        break;
      }
      default: r.push_back({lo, i1});
    }
    for (auto& [a, b] : r) {
      a = std::max(a, lo);
      b = std::min(b, i1);
    }
    r.erase(std::remove_if(r.begin(), r.end(), [](const auto& x) { return x.first >= x.second; }), r.end());
    std::sort(r.begin(), r.end());
    Ranges merged;
    for (const auto& x : r) {
      if (!merged.empty() && x.first <= merged.back().second)
        merged.back().second = std::max(merged.back().second, x.second);
      else
        merged.push_back(x);
    }
    return merged;
  }

  // After t >= 1 tokens: does a query at position t - 1 or later still attend token j (j < t)?
  bool retained(int64_t j, int64_t t) const {
    switch (kind) {
      case Kind::Window: return j >= t - window;
      case Kind::Dilated: return j >= t - 1 - (window - 1) * dilation;
      case Kind::Block: return j >= (t - 1) / block * block;
      case Kind::Fixed: return j >= (t - 1) / stride * stride || j % stride >= stride - c;
      case Kind::Longformer:
      case Kind::Sinks: return j < first || j >= t - window;
      case Kind::BigBird: {
        const int64_t jb = j / block, qmin = (t - 1) / block;
        // past the context there is no random pattern (a cache formula can be asked about any length)
        const bool random =
            static_cast<size_t>(jb) < last_random_use.size() && last_random_use[static_cast<size_t>(jb)] >= qmin;
        return jb >= qmin - wb || jb < gb || random;
      }
      case Kind::Strided:
      case Kind::Lsh:
      case Kind::Softcap: return true;
    }
    return true;
  }
  // Tokens the cache keeps after t tokens (docs/variants.md#cache-formulas: closed forms).
  int64_t kept(int64_t t) const {
    if (t <= 0) return 0;
    switch (kind) {
      case Kind::Window: return std::min(t, window);
      case Kind::Dilated: return std::min(t, (window - 1) * dilation + 1);
      case Kind::Block: return (t - 1) % block + 1;
      case Kind::Fixed: return c * ((t - 1) / stride) + (t - 1) % stride + 1;
      case Kind::Longformer:
      case Kind::Sinks: return std::min(t, first + window);
      case Kind::BigBird: {  // whole blocks: a block is kept or dropped as one
        int64_t n = 0;
        for (int64_t kb = 0; kb * block < t; ++kb)
          if (retained(kb * block, t)) n += std::min(block, t - kb * block);
        return n;
      }
      case Kind::Strided:
      case Kind::Lsh:
      case Kind::Softcap: return t;
    }
    return t;
  }
  int64_t max_kept(int64_t capacity) const {
    int64_t m = 0;
    for (int64_t t = 1; t <= capacity; ++t) m = std::max(m, kept(t));
    return m;
  }
};

}  // namespace attnscope::masked_detail
