#pragma once
// The fused CPU attention kernel (FlashAttention's forward on the CPU): out_i = sum_j softmax_j(s_ij) v_j with
// s_ij = q_i . k_j / sqrt(d_h) + bias_ij over the pairs the mask allows, computed per (query tile, key tile) with an
// online softmax (running max m_i and sum l_i), never materialising T x S. Tiles the mask leaves empty are skipped
// whole; a row with nothing allowed gives zeros. Inference only (no autograd): callers keep LibTorch's path when a
// gradient is needed (flash::applies). Threads over (batch, key/value head, query tile) (kernel_threads.h); the
// query heads of a GQA/MQA group are processed together, so each key/value tile is read once per group.
#include <torch/torch.h>

#include <cstdint>

namespace attnscope::flash {

// Which keys a query row may attend, as data (absolute positions i of the query, j of the key). Every rule is
// causal (0 <= j <= i); keys at negative positions (free cache slots) are never allowed.
enum class MaskKind : uint8_t {
  Causal,         // j <= i
  Window,         // i - j < a                              (sliding_window W = a)
  Dilated,        // i - j <= (a - 1) b, (i - j) % b == 0   (dilated W = a, r = b)
  Block,          // floor(i / a) == floor(j / a)           (block_local B = a)
  Global,         // i - j < a, or j < b, or i < b          (longformer W = a, g = b; sinks W = a, S = b)
  StridedLocal,   // i - j <= a                             (strided, even heads: l = a)
  StridedColumn,  // (i - j) % a == 0                       (strided, odd heads)
  FixedBlock,     // floor(i / a) == floor(j / a)           (fixed, even heads: l = a)
  FixedColumn,    // j % a >= a - b, or j == i              (fixed, odd heads: l = a, c = b)
  StridedBoth,    // StridedLocal or StridedColumn          (strided, heads not split)
  FixedBoth,      // FixedBlock or FixedColumn              (fixed, heads not split)
};
struct MaskRule {
  MaskKind kind = MaskKind::Causal;
  int64_t a = 0, b = 0;
};
struct MaskDesc {
  MaskRule even, odd;  // query heads 0, 2, 4, .. read `even`, odd heads `odd` (equal unless the pattern splits heads)
  const MaskRule& rule(int64_t head) const { return head % 2 == 0 ? even : odd; }
  static MaskDesc all(MaskRule r) { return {r, r}; }
};

// Up to two inclusive position ranges [lo, hi] holding every key query position i may attend under r (within them,
// Dilated, the column rules and the Both rules keep only some keys: see filtered / allows).
struct Spans {
  int n = 0;
  int64_t lo[2] = {0, 0}, hi[2] = {0, 0};
};
Spans spans(const MaskRule& r, int64_t i);
bool filtered(const MaskRule& r);                      // true when allows() keeps only some keys inside the spans
bool allows(const MaskRule& r, int64_t i, int64_t j);  // the rule itself, pair by pair

enum class Isa { Auto, Portable, Avx2 };
bool avx2_available();  // the CPU has AVX2 and FMA (__builtin_cpu_supports)

struct Options {
  MaskDesc mask;
  double scale = 0;        // 0: 1 / sqrt(d_h)
  torch::Tensor alibi;     // [H] slopes: s_ij -= slope_h (i - j); undefined: no bias
  torch::Tensor q_alt;     // [B, H, T, d_h] sinks: keys at positions < alt_below score against these queries ...
  torch::Tensor qpos_alt;  // [T] ... at these positions (for the ALiBi bias)
  int64_t alt_below = 0;
  Isa isa = Isa::Auto;
  bool want_lse = false;
  // The normalised weights too (the window's display): every query row by the row driver, an exact softmax over its
  // reachable keys written out whole (zeros outside them), so a row costs its reachable keys, not S.
  bool want_probs = false;
  // With want_probs, the weights written into this tensor rather than a new one: [B, H, T, P] fp32 on the CPU, each
  // row contiguous (its contents before do not matter). Taken only when the keys past the free slots sit at
  // consecutive positions kpos[j] = kpos[first] + j - first, all below P: key j's weight then goes to column kpos[j]
  // (the row by position, as the window's maps keep it), every other column of the row gets 0. Out::probs_placed says
  // whether it was taken (if not: Out::probs, as without it).
  torch::Tensor probs_into;
};
struct Out {
  // [B, H, T, d_v] in q's dtype: a view of [B, T, H, d_v] storage (out.transpose(1, 2) is contiguous)
  torch::Tensor out;
  torch::Tensor lse;  // [B, H, T] fp32 m + log l (-inf for an empty row), when asked
  // [B, H, T, S] softmax_j(s_ij) where allowed, else 0 (an empty row: 0), in q's dtype, when asked
  torch::Tensor probs;
  bool probs_placed = false;  // the weights went into Options::probs_into (probs is then that tensor)
};

// q [B, H, T, d_h], k [B, Hkv, S, d_h], v [B, Hkv, S, d_v] (fp32, bf16 or fp16: computed in fp32), qpos [T] and
// kpos [S] int64 positions. Query head h reads key/value head h / (H / Hkv). Throws Error on bad shapes.
Out attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& qpos,
              const torch::Tensor& kpos, const Options& o);

// Whether the inference fast path may run: enabled, CPU tensors, no gradient wanted, fp32/bf16/fp16.
bool applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v);
// Process-wide switch (default on; $ATTNSCOPE_FLASH=0 starts it off): off, every layer takes LibTorch's path (the
// bench's comparison and the tests' reference).
void set_enabled(bool on);
bool enabled();

}  // namespace attnscope::flash
