#pragma once
// The kernel, low-rank and structured family (docs/variants.md: #family-kernel, #family-low-rank, #family-structured): linear, performer, cosformer,
// linformer, linformer_causal, nystrom, mla, mta, tiled, differential. The layers are declared here so that the
// tests can reach their fixed projections and algorithms; the factory is make_kernel_attention (nn.h).
#include <functional>

#include "nn.h"

namespace attnscope {

// ---------------------------------------------------------------------------------------------- shared math

// Exact causal softmax(q k^T * scale + bias) with j <= i over positions qpos [T], kpos [S].
// q [B, H, T, d_h], k [B, H, S, d_h], bias [H, T, S] or undefined -> [B, H, T, S].
torch::Tensor causal_softmax(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& qpos,
                             const torch::Tensor& kpos, const torch::Tensor& bias, double scale);

// An approximate attention matrix against the exact softmax on the same queries and keys.
struct ApproxErrorT {
  torch::Tensor max_abs;   // [B, H]
  torch::Tensor mean_abs;  // [B, H] over the pairs either matrix may weight (j <= i, or where approx != 0)
  torch::Tensor kl_rows;   // [B, H, T] KL(exact row || approx row), approx clamped to >= 1e-12
};
ApproxErrorT approximation_error(const torch::Tensor& approx /*[B, H, T, S]*/,
                                 const torch::Tensor& exact /*[B, H, T, S]*/);

// Layers that stand in for softmax on their own queries and keys: the exact matrix to compare with (for MTA,
// the map before its convolutions). x: [B, T, d] normed input at positions 0..T-1.
class SoftmaxReference {
 public:
  virtual ~SoftmaxReference() = default;
  virtual torch::Tensor exact_display(const torch::Tensor& x) const = 0;  // [B, H, T, T]
};

// ---------------------------------------------------------------------------------------------- linear family

// Running sums of the linear family: S = sum_j phi(k_j) v_j^T, z = sum_j phi(k_j).
struct LinearState : LayerCache {
  torch::Tensor s;  // [B, H, m, d_v]
  torch::Tensor z;  // [B, H, m]
  // For the window's incremental maps only (IncrementalAttend sets `history`): every phi(k_j) so far, so a new
  // query row can show its weights over every earlier key. Not the variant's cache: bytes() and layout() leave it
  // out, and decoding never sets it.
  bool history = false;
  torch::Tensor keys;  // [B, H, seen, m]
  int64_t bytes() const override { return (s.numel() + z.numel()) * static_cast<int64_t>(s.element_size()); }
  Layout layout() const override { return {"state", (s.numel() + z.numel()) / s.size(0), 0}; }  // H (m d_v + m)
  std::vector<int64_t> held_positions() const override;  // with history: [0, seen) (the display's key columns)
};

// One causal chunk in the left-product form, continuing `state` (zeros: a fresh start) and advancing it:
// o_i = (phi_q_i S_prev + sum_{j<=i} (phi_q_i . phi_k_j) v_j) / (phi_q_i z_prev + sum_{j<=i} phi_q_i . phi_k_j + eps).
// A row whose denominator is 0 gives 0. display (when asked): the weights [B, H, T, S_prev + T] over every key so
// far, from a fresh state or one that keeps its history (S_prev = 0 for a fresh one). display_into (defined, [B, H,
// T, P] fp32 rows with P >= S_prev + T, on the inputs' device): the weights written there instead, key j in column j
// and zeros after the last key (AttnCall::display_into; keys sit at positions 0.. in a state's history).
struct LinearChunk {
  torch::Tensor out;      // [B, H, T, d_v]
  torch::Tensor display;  // [B, H, T, S_prev + T] or undefined (placed: display_into)
  bool placed = false;    // the weights went into display_into
};
LinearChunk linear_chunk(const torch::Tensor& phi_q /*[B, H, T, m]*/, const torch::Tensor& phi_k /*[B, H, T, m]*/,
                         const torch::Tensor& v /*[B, H, T, d_v]*/, double eps, LinearState& state, bool want_display,
                         const torch::Tensor& display_into = {});

// The three equivalent forms (oracle): token-by-token recurrence, prefix sums of phi(k) v^T, left product.
enum class LinearForm { Recurrent, CumulativeSum, LeftProduct };
torch::Tensor causal_linear_attention(const torch::Tensor& phi_q, const torch::Tensor& phi_k, const torch::Tensor& v,
                                      double eps, LinearForm form);  // -> [B, H, T, d_v]

// Performer random features [H, m, d_h] drawn from `seed`: orthogonal blocks (QR with the sign fix, rows rescaled to
// chi(d_h)-distributed norms) or i.i.d. N(0, 1).
torch::Tensor draw_random_features(int64_t heads, int64_t m, int64_t head_dim, bool orthogonal, uint64_t seed);
// The seed of layer `layer_index`'s performer draw: splitmix64(seed) ^ layer (every layer its own features).
uint64_t performer_draw_seed(uint64_t seed, int64_t layer_index);
// FAVOR+ positive features of x [B, H, T, d_h] (already divided by d_h^(1/4)) for w [H, m, d_h]:
// exp(w_r . x - |x|^2 / 2 - stabiliser) / sqrt(m) -> [B, H, T, m].
torch::Tensor favor_features(const torch::Tensor& x, const torch::Tensor& w, double stabiliser);

enum class FeatureKind { EluPlusOne, Relu, Favor, Cos };

// linear, performer, cosformer: the MHA weights with phi(q) . phi(k) in place of exp(q . k / sqrt(d_h)).
class FeatureMapAttention : public StandardAttention, public SoftmaxReference {
 public:
  // layer_index: the layer's place in the model (performer draws its features from (seed, layer)).
  FeatureMapAttention(const ModelConfig& cfg, LayerSpec spec, const Positions* pos, int64_t layer_index = 0);
  AttnResult forward(const AttnCall& call) override;
  std::unique_ptr<LayerCache> new_cache(int64_t batch, int64_t capacity, torch::Device dev) const override;
  int64_t cache_formula_bytes(int64_t tokens, int64_t elem_bytes) const override;
  torch::Tensor exact_display(const torch::Tensor& x) const override;
  // phi of rotated queries or keys q [B, H, T, d_h] at positions pos [T] -> [B, H, T, m].
  torch::Tensor features(const torch::Tensor& x, const torch::Tensor& pos, bool is_query) const;
  int64_t feature_dim() const;
  double eps() const;  // the denominator's eps in the features' units

  FeatureKind kind;
  torch::Tensor favor_w;  // [H, m, d_h] performer only (a buffer: fixed by the seed, not trained)
  double stabiliser = 0;  // performer: max_r |w_r|^2 / 2, so every key exponent is <= 0
  double horizon = 0;     // cosformer M
};

// ---------------------------------------------------------------------------------------------- tiled

enum class KernelTileState : uint8_t { Skipped = 0, Partial = 1, Computed = 2 };
// Which pairs may be computed for a tile: qpos [br], kpos [bc] -> [br, bc] bool.
using TileMask = std::function<torch::Tensor(const torch::Tensor& qpos, const torch::Tensor& kpos)>;
// Additive score bias for a tile -> [H, br, bc], or undefined.
using TileBias = std::function<torch::Tensor(const torch::Tensor& qpos, const torch::Tensor& kpos)>;

struct TiledOut {
  torch::Tensor out;    // [B, H, T, d_v]
  torch::Tensor lse;    // [B, H, T] m + log l (-inf for a row with nothing allowed)
  torch::Tensor tiles;  // [ceil(T / Br), ceil(S / Bc)] uint8 KernelTileState
};
// FlashAttention's forward: for each query tile, an online softmax over the key tiles, skipping empty tiles and
// guarding all-masked rows; extra memory O(T d_v + Br Bc) per (batch, head). Never materialises T x S.
TiledOut tiled_attention(const torch::Tensor& q /*[B, H, T, d_h]*/, const torch::Tensor& k /*[B, H, S, d_h]*/,
                         const torch::Tensor& v /*[B, H, S, d_v]*/, const torch::Tensor& qpos /*[T]*/,
                         const torch::Tensor& kpos /*[S]*/, int64_t br, int64_t bc, double scale, const TileMask& mask,
                         const TileBias& bias = {});
// The tile states alone (what tiled_attention would compute, partially compute or skip) -> [nq, nk] uint8.
torch::Tensor tile_states(const torch::Tensor& qpos, const torch::Tensor& kpos, int64_t br, int64_t bc,
                          const TileMask& mask);

class TiledAttention : public StandardAttention, public SoftmaxReference {
 public:
  TiledAttention(const ModelConfig& cfg, LayerSpec spec, const Positions* pos);
  AttnResult forward(const AttnCall& call) override;
  torch::Tensor exact_display(const torch::Tensor& x) const override;
  int64_t br, bc;
};

// ---------------------------------------------------------------------------------------------- low rank

// Linformer (causal = false: E^T K over the whole text) and causal Linformer (prefix projections).
struct ProjectedCache : LayerCache {
  torch::Tensor k, v;  // [B, H, k, d_h] projected slots sum_{j<seen} E_j k_j, sum F_j v_j
  int64_t bytes() const override { return (k.numel() + v.numel()) * static_cast<int64_t>(k.element_size()); }
  Layout layout() const override { return {"state", (k.numel() + v.numel()) / k.size(0), 0}; }  // 2 H k d_h
};

class LinformerAttention : public StandardAttention, public SoftmaxReference {
 public:
  LinformerAttention(const ModelConfig& cfg, LayerSpec spec, const Positions* pos, bool causal);
  AttnResult forward(const AttnCall& call) override;
  std::unique_ptr<LayerCache> new_cache(int64_t batch, int64_t capacity, torch::Device dev) const override;
  int64_t cache_formula_bytes(int64_t tokens, int64_t elem_bytes) const override;
  torch::Tensor exact_display(const torch::Tensor& x) const override;
  bool causal;
  int64_t slots;
  torch::Tensor e, f;  // [context, k] fixed projections N(0, 1/k) (buffers; tests may overwrite them)
};

class NystromAttention : public StandardAttention, public SoftmaxReference {
 public:
  NystromAttention(const ModelConfig& cfg, LayerSpec spec, const Positions* pos);
  AttnResult forward(const AttnCall& call) override;
  std::unique_ptr<LayerCache> new_cache(int64_t batch, int64_t capacity, torch::Device dev) const override;
  int64_t cache_formula_bytes(int64_t tokens, int64_t elem_bytes) const override;
  torch::Tensor exact_display(const torch::Tensor& x) const override;
  int64_t landmarks, iterations;
  bool exact_pinv;
};
// Newton-Schulz pseudo-inverse of a [.., m, m] (Razavi et al.), started per matrix from A^T / (|A|_1 |A|_inf).
torch::Tensor iterative_pinv(const torch::Tensor& a, int64_t iterations);

// MLA (DeepSeek-V2): latent c = W_DKV x, k^h = W_UK^h c, v^h = W_UV^h c; c_q = W_DQ x, q^h = W_UQ^h c_q;
// decoupled RoPE q_R^h = RoPE(W_QR^h c_q), k_R = RoPE(W_KR x); s = (q.k + q_R.k_R) / sqrt(d_h + d_R).
struct LatentCache : LayerCache {
  torch::Tensor c;   // [B, capacity, d_c]
  torch::Tensor kr;  // [B, capacity, d_R] rotated
  int64_t len = 0;
  int64_t bytes() const override;
  std::vector<int64_t> held_positions() const override;                             // [seen - len, seen)
  Layout layout() const override { return {"latent", c.size(2) + kr.size(2), 0}; }  // d_c + d_R per token
};

class MlaAttention : public AttentionLayer {
 public:
  MlaAttention(const ModelConfig& cfg, LayerSpec spec, const Positions* pos);
  AttnResult forward(const AttnCall& call) override;
  std::unique_ptr<LayerCache> new_cache(int64_t batch, int64_t capacity, torch::Device dev) const override;
  int64_t cache_formula_bytes(int64_t tokens, int64_t elem_bytes) const override;
  torch::Tensor head_values(const torch::Tensor& x) const override;
  // From MHA/GQA: truncated SVD of [W_K; W_V] at rank d_c and of W_Q at rank d_cq; W_QR = W_KR = 0.
  void convert_from(const AttentionLayer& trained) override;
  // True when decoding can absorb W_UK into the query (no content RoPE under a RoPE model).
  bool absorbable() const;

  Linear w_dkv{nullptr}, w_uk{nullptr}, w_uv{nullptr}, w_dq{nullptr}, w_uq{nullptr}, w_qr{nullptr}, w_kr{nullptr},
      wo{nullptr};
  RMSNorm kv_norm{nullptr}, q_norm{nullptr};
  int64_t n_head, head_dim, rank, rope_dims, q_rank;
  bool content_rope, latent_norm;
  Positions rope_r;  // RoPE over all d_R decoupled dims

 private:
  torch::Tensor latent(const torch::Tensor& x) const;  // [B, T, d] -> [B, T, d_c]
};

// ---------------------------------------------------------------------------------------------- structured

struct MtaCache : KVCache {
  torch::Tensor q;  // [B, H, c_q - 1, d_h] the last queries (rotated), oldest first
  int64_t qlen = 0;
  int64_t bytes() const override;
  Layout layout() const override { return {"kv+queries", 2 * k.size(1) * k.size(3), k.size(1)}; }  // + c_q - 1 queries
};

class MtaAttention : public StandardAttention, public SoftmaxReference {
 public:
  MtaAttention(const ModelConfig& cfg, LayerSpec spec, const Positions* pos);
  AttnResult forward(const AttnCall& call) override;
  std::unique_ptr<LayerCache> new_cache(int64_t batch, int64_t capacity, torch::Device dev) const override;
  int64_t cache_formula_bytes(int64_t tokens, int64_t elem_bytes) const override;
  void convert_from(const AttentionLayer& trained) override;           // identity kernels and mixing
  torch::Tensor exact_display(const torch::Tensor& x) const override;  // the map before the convolutions
  void set_identity();
  void init_fixed_parameters() override { set_identity(); }
  int64_t cq, ck, group;
  torch::Tensor kernel;    // [H, 1, c_q, c_k] depthwise
  torch::Tensor head_mix;  // [H / group, group, group] (group > 1)
  RMSNorm norm{nullptr};   // [d_h] (head_norm)
};

class DifferentialAttention : public StandardAttention {
 public:
  DifferentialAttention(const ModelConfig& cfg, LayerSpec spec, const Positions* pos);
  AttnResult forward(const AttnCall& call) override;
  void convert_from(const AttentionLayer& trained) override;
  double lambda;
  RMSNorm norm{nullptr};  // [2 d_h] (head_norm)
};

}  // namespace attnscope
