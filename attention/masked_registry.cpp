// The masked family's registry entries (docs/variants.md#family-masked). Appended by variant_registry().
// Every parameter here only changes which pairs are computed (changes_weights = false): the trained MHA
// checkpoint runs under any of them without retraining.
#include "registry.h"

namespace attnscope {

namespace {
ParamSpec int_param(const std::string& name, double lo, double hi, double def, const std::string& tip,
                    double step = 1) {
  return {name, ParamType::Int, lo, hi, def, step, tip, false, {}, false, false};
}
ParamSpec mode_param() {
  return {"mode",
          ParamType::Choice,
          0,
          1,
          0,
          1,
          "union: every head uses both sub-patterns; split: even heads use pattern A, odd heads pattern B",
          false,
          {"union", "split"},
          false,
          false};
}

// Local and fixed sparse patterns (Child et al.): which keys each query sees follows from i and j alone.
void add_local_variants(std::vector<VariantInfo>& r) {
  r.push_back({"sliding_window",
               "masked",
               "Sliding window: query i attends the W keys i - W < j <= i.",
               "Beltagy et al., Longformer (2020); Child et al. (2019), local attention",
               {int_param("window", 1, 256, 32,
                          "W: keys per query (the query itself and W - 1 before it); W >= the text length is causal")},
               true,
               false,
               false,
               "2 H d_h b x min(t, W) (ring buffer)",
               {"A = softmax(Q K^T / sqrt(d_h) + M), M_ij = 0 where i - {window} < j <= i, else -inf",
                "O(n {window} d) on the blocked path (the dense display costs O(n^2 d))",
                "O(H n {window}) scores; the cache stops growing at {window} tokens",
                "Long streams where local context dominates (Mistral, Gemma's local layers): cost and cache "
                "stop growing at W. Anything further back reaches a query only through stacked layers "
                "(receptive field L W), so long-range lookups such as repeating a name fail. Mixing window "
                "layers with full layers keeps most of the quality."}});
  r.push_back({"dilated",
               "masked",
               "Dilated window: W keys spaced r apart, 0 <= i - j < W r and (i - j) mod r = 0.",
               "Beltagy et al., Longformer (2020), dilated sliding window",
               {int_param("window", 4, 64, 16, "W: keys per query"),
                int_param("dilation", 1, 8, 2,
                          "r: gap between attended keys; r = 1 is the sliding window; the span "
                          "(W - 1) r + 1 beyond the context only reaches keys that do not exist")},
               true,
               false,
               false,
               "2 H d_h b x min(t, (W - 1) r + 1)",
               {"M_ij = 0 where 0 <= i - j < {window} {dilation} and (i - j) mod {dilation} = 0, else -inf; A = "
                "softmax(Q K^T / sqrt(d_h) + M)",
                "O(n {window} d)", "O(H n {window}) scores; the cache keeps the span ({window} - 1) {dilation} + 1",
                "Reaches (W - 1) r tokens back for the price of W keys. Use it in a few heads or layers next to "
                "undilated ones, which cover the gaps. On its own it skips the immediate neighbours a character "
                "model relies on, so quality drops as r grows."}});
  r.push_back({"block_local",
               "masked",
               "Block-local: query i attends the keys of its own block, floor(j/B) = floor(i/B).",
               "Parmar et al., Image Transformer (2018), local 1-D attention",
               {int_param("block", 8, 256, 32, "B: block length; B >= the text length is causal")},
               true,
               false,
               false,
               "2 H d_h b x ((t - 1) mod B + 1) (<= B)",
               {"M_ij = 0 where floor(j / {block}) = floor(i / {block}) and j <= i, else -inf; A = softmax(Q K^T / "
                "sqrt(d_h) + M)",
                "O(n {block} d)", "O(H n {block}) scores; the cache holds at most {block} tokens",
                "The simplest sparse pattern, fast with blocked kernels. A token at the start of a block sees "
                "almost nothing, so the loss jumps at block borders. Prefer a sliding window unless the data is "
                "chunked (images, fixed-size records)."}});
  r.push_back(
      {"strided",
       "masked",
       "Strided (Child et al.): A: 0 <= i - j <= l; B: (i - j) mod l = 0.",
       "Child et al., Generating Long Sequences with Sparse Transformers (2019)",
       {int_param("stride", 8, 32, 16, "l: the local span of pattern A and the stride of pattern B"), mode_param()},
       true,
       false,
       false,
       "2 H d_h b x t",
       {"pattern A: 0 <= i - j <= {stride}; pattern B: (i - j) mod {stride} = 0 (j <= i); the union, or A "
        "and B on alternate heads ({mode})",
        "O(n ({stride} + n / {stride}) d): O(n sqrt(n) d) with l ~ sqrt(n)",
        "O(H n ({stride} + n / {stride})) scores; the cache keeps every token",
        "Sparse Transformer's pattern for data with a period (images by row, audio): any two tokens "
        "connect in two hops. Text has no fixed period, so the strided half mostly hits arbitrary "
        "characters, and the cache does not shrink."}});
  r.push_back({"fixed",
               "masked",
               "Fixed (Child et al.): A: own block of l; B: summary columns j mod l >= l - c (B heads also see "
               "themselves).",
               "Child et al., Generating Long Sequences with Sparse Transformers (2019)",
               {int_param("stride", 8, 64, 16, "l: block length"),
                int_param("c", 1, 32, 2,
                          "c: summary columns at the end of every block; at most l/2 (larger values are "
                          "clamped to l/2, with a note)"),
                mode_param()},
               true,
               false,
               false,
               "2 H d_h b x (c floor((t - 1)/l) + (t - 1) mod l + 1) (<= c floor(t/l) + l)",
               {"pattern A: floor(j / {stride}) = floor(i / {stride}); pattern B: j mod {stride} >= {stride} - {c} "
                "(summary columns), j <= i; union or alternate heads ({mode})",
                "O(n ({stride} + {c} n / {stride}) d)",
                "O(H n ({stride} + {c} n / {stride})) scores; the cache keeps {c} columns per block plus the "
                "current block",
                "The last c positions of each block act as a compressed memory for long, block-structured "
                "documents. The summary positions are fixed rather than learned, so with MHA weights the "
                "quality depends on which characters happen to sit there; it pays off only when trained with "
                "the pattern."}});
}

// Local windows plus global or random keys: Longformer, BigBird, attention sinks (StreamingLLM).
void add_global_variants(std::vector<VariantInfo>& r) {
  r.push_back({"longformer",
               "masked",
               "Longformer: a causal window of W plus the first g tokens as globals (global rows see all j <= i).",
               "Beltagy et al., Longformer: The Long-Document Transformer (2020)",
               {int_param("window", 8, 128, 32, "W: keys per query in the window"),
                int_param("globals", 0, 8, 2, "g: the first g tokens, seen by every query")},
               true,
               false,
               false,
               "2 H d_h b x min(t, g + W)",
               {"M_ij = 0 where i - {window} < j <= i, or j < {globals} (global columns), or i < {globals} (global "
                "rows see all j <= i); else -inf",
                "O(n ({window} + {globals}) d)",
                "O(H n ({window} + {globals})) scores; the cache keeps {globals} + {window} tokens",
                "Long documents with a few tokens everyone must see (an instruction prefix, a title). In a "
                "decoder the globals can only be the first g tokens, so it is a sliding window plus a fixed "
                "prefix; if nothing important sits there, use the plain window."}});
  r.push_back(
      {"bigbird",
       "masked",
       "BigBird (blocks of b): own block, w_b previous blocks, the first g blocks and r random earlier "
       "blocks.",
       "Zaheer et al., Big Bird: Transformers for Longer Sequences (2020)",
       {int_param("block", 8, 32, 16, "b: block length (the last block may be partial)"),
        int_param("window_blocks", 0, 3, 1, "w_b: previous blocks every query block attends"),
        int_param("global_blocks", 0, 2, 1, "g: the first g blocks, seen by every query (and seeing all before them)"),
        int_param("random_blocks", 0, 3, 1,
                  "r: random strictly earlier blocks outside the window and the globals "
                  "(fewer when fewer exist)"),
        int_param("seed", 0, 9999, 1,
                  "seed of the random blocks, drawn once per layer, head and query block "
                  "(the same mask in training and evaluation)")},
       true,
       false,
       false,
       "2 H d_h b x blocks still needed by a later query block of the context; each query block reads "
       "(1 + w_b + g + r) b",
       {"per query block of {block} tokens: its own block, {window_blocks} previous blocks, the first "
        "{global_blocks} blocks and {random_blocks} random earlier blocks (drawn once, {seed}); j <= i",
        "O(n (1 + {window_blocks} + {global_blocks} + {random_blocks}) {block} d)",
        "O(H n (1 + w_b + g + r) b) scores; decoding keeps every block a later query block may draw",
        "Long inputs where a sparse pattern must still connect everything: window, global and random "
        "links keep paths between distant tokens short. The random blocks are fixed per layer and query "
        "block, so decoding needs most of the context cached; at a few hundred tokens exact attention "
        "is simpler and better."}});
  r.push_back(
      {"sinks",
       "masked",
       "Attention sinks (StreamingLLM): the first S tokens plus the last W; positions counted inside the "
       "cache.",
       "Xiao et al., Efficient Streaming Language Models with Attention Sinks (2023)",
       {int_param("sinks", 0, 8, 4, "S: the first tokens kept forever"),
        int_param("window", 16, 256, 64, "W: the most recent tokens kept; S + W >= the text length is causal")},
       true,
       false,
       false,
       "2 H d_h b x min(t, S + W)",
       {"M_ij = 0 where j < {sinks} (sink tokens) or i - {window} < j <= i; RoPE positions are counted "
        "inside the cache",
        "O(n ({sinks} + {window}) d)", "O(H n (S + W)) scores; the cache keeps {sinks} + {window} tokens forever",
        "Endless streaming generation in fixed memory (StreamingLLM): keeping the first few tokens "
        "stops the softmax from collapsing once they would be evicted. It forgets everything evicted, "
        "so it does not help tasks that must recall the far past."}});
}

// Content-dependent masks (LSH buckets) and score transforms (soft-capping).
void add_content_variants(std::vector<VariantInfo>& r) {
  r.push_back({"lsh",
               "masked",
               "LSH (Reformer), ideal mask: shared QK; i attends the causal past sharing a bucket in any round.",
               "Kitaev et al., Reformer: The Efficient Transformer (2020)",
               {int_param("buckets", 2, 32, 8, "buckets per round (even: the hash is argmax([xR; -xR]))", 2),
                int_param("rounds", 1, 8, 2, "hash rounds; a pair is computed when it shares a bucket in any round"),
                int_param("seed", 0, 9999, 1, "seed of the random rotations R (one per round and layer)")},
               true,
               false,
               false,
               "2 H d_h b x t + 4 rounds H bytes x t (bucket ids)",
               {"shared QK, k = q / |q|; h_r(x) = argmax([x R_r; -x R_r]) with {buckets} buckets; i attends j <= i "
                "when h_r(q_i) = h_r(k_j) in any of {rounds} rounds ({seed} draws R); self only when nothing else",
                "O(n^2 d) here (the ideal mask, computed densely for display); Reformer's sort-and-chunk is O(n "
                "log n) but leaks the future",
                "O(H n^2) here; the cache keeps every token plus {rounds} bucket ids per token and head",
                "Shows content-based sparsity: a query attends only keys that hash like itself. Shared QK and "
                "the self rule change the model, so MHA weights lose quality, and chunked implementations are "
                "not causal. Exact fused kernels have replaced it in practice."}});
  r.push_back({"softcap",
               "masked",
               "Soft-capped causal attention: s = c tanh(s / c) before the mask.",
               "Gemma 2 Team (2024); Bello et al. (2016), logit soft-capping",
               {{"cap",
                 ParamType::Float,
                 5,
                 100,
                 30,
                 0.5,
                 "c: the scores' bound; c -> infinity is plain attention",
                 false,
                 {},
                 false,
                 false}},
               true,
               false,
               false,
               "2 H d_h b",
               {"s = {cap} tanh(Q K^T / sqrt(d_h) / {cap}); A = softmax(s + causal mask), o = A V", "O(n^2 d) (as MHA)",
                "O(H n^2) scores",
                "Keeps logits bounded so training large models stays stable (Gemma 2); with a large cap it "
                "equals MHA. A small cap flattens sharp attention, such as copying a character, so quality "
                "falls."}});
}
}  // namespace

void add_masked_variants(std::vector<VariantInfo>& r) {
  add_local_variants(r);
  add_global_variants(r);
  add_content_variants(r);
}

}  // namespace attnscope
