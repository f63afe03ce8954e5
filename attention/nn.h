#pragma once
// The LibTorch side of the engine: attention layers and the character GPT. Included only by the engine's
// few LibTorch translation units and by the tests (through the precompiled header).
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "cache_layout.h"
#include "config.h"
#include "registry.h"

namespace attnscope {

torch::Device resolve_device(const std::string& name);  // auto|cpu|cuda; throws Error

// y = x W^T with W [out, in] (the parameter "weight"; no bias): torch::nn::Linear(in, out).bias(false) with the same
// parameter and the same Kaiming-uniform draw, except while a SkipWeightDraws is alive on the thread: then W starts
// at zero. A model built to receive copied weights (GPT(cfg, false): a slider's new setting) skips ~0.8 M random
// draws, half of building it; a model initialised afresh draws exactly as torch::nn::Linear did (seeded runs agree).
struct LinearImpl : torch::nn::Module {
  LinearImpl(int64_t in, int64_t out);
  torch::Tensor forward(const torch::Tensor& x);  // [.., in] -> [.., out]
  torch::Tensor weight;                           // [out, in]
};
TORCH_MODULE(Linear);

// While one is alive, Linear layers made on this thread start at zero instead of drawing their weights.
struct SkipWeightDraws {
  SkipWeightDraws();
  ~SkipWeightDraws();
  SkipWeightDraws(const SkipWeightDraws&) = delete;
  SkipWeightDraws& operator=(const SkipWeightDraws&) = delete;
  bool before;
};

// Position schemes shared by every layer of a model.
struct Positions {
  PosKind kind = PosKind::Rope;
  int64_t rot_dims = 0;  // r: rotated dims per head (even); pairs (i, i + r/2)
  double theta = 10000.0;
  double xpos_base = 512.0;    // xPos: B
  double xpos_centre = 0.0;    // xPos: c (context / 2), fixed per model
  torch::Tensor alibi_slopes;  // [H] (ALiBi only)

  Positions() = default;
  Positions(const ModelConfig& c);
  // RoPE (and xPos) on x [B, H, T, d_h] at positions pos [T] (int64). Identity for other schemes.
  // xPos also scales pair i by zeta_i^((p - c) / B) for queries and zeta_i^(-(p - c) / B) for keys (is_key).
  torch::Tensor rotate(const torch::Tensor& x, const torch::Tensor& pos, bool is_key = false) const;
  // Additive score bias [H, T, S] for queries at qpos [T] and keys at kpos [S], or undefined when none.
  torch::Tensor score_bias(const torch::Tensor& qpos, const torch::Tensor& kpos) const;
  // The same for one head h: [T, S], or undefined when none.
  torch::Tensor score_bias_head(const torch::Tensor& qpos, const torch::Tensor& kpos, int64_t h) const;
};
std::vector<double> alibi_slopes(int64_t n_head);  // the standard recipe (powers of two and interleaving)

// Per-layer decoding state. Each variant keeps what it needs; bytes() measures the tensors' live contents.
struct LayerCache {
  virtual ~LayerCache() = default;
  virtual int64_t bytes() const = 0;  // bytes the cache holds now (live entries only)
  int64_t seen = 0;                   // tokens consumed so far (the position of the next one)
  // For the generation view: the absolute position each key slot holds, in the order of a decode step's attention
  // columns (-1: a free slot). Empty for a fixed-size state that keeps no tokens (the default).
  virtual std::vector<int64_t> held_positions() const { return {}; }
  // What is kept (cache_layout.h); the default is a fixed-size state.
  using Layout = CacheLayout;
  virtual Layout layout() const { return {}; }
};

// Append-only key/value cache, preallocated once (no re-copy per step).
struct KVCache : LayerCache {
  torch::Tensor k, v;                                             // [B, Hkv, capacity, d_h]
  int64_t len = 0;                                                // live slots
  torch::Tensor keys() const { return k.narrow(2, 0, len); }      // [B, Hkv, len, d_h]
  torch::Tensor values() const { return v.narrow(2, 0, len); }    // [B, Hkv, len, d_h]
  void append(const torch::Tensor& nk, const torch::Tensor& nv);  // [B, Hkv, T, d_h]
  int64_t bytes() const override;
  std::vector<int64_t> held_positions() const override;  // [seen - len, seen)
  Layout layout() const override;                        // kv, 2 H_kv d_h per token
};

struct AttnCall {
  torch::Tensor x;              // [B, T, d] normed layer input
  int64_t pos0 = 0;             // position of x[:, 0]
  bool want_display = false;    // fill AttnResult::display and mask
  torch::Tensor kv_source;      // [B, S, d] second text (cross-attention); undefined otherwise
  LayerCache* cache = nullptr;  // decoding: consume T new tokens into it
  // [B, H, T, P] fp32 on the CPU, zeros, or undefined: with want_display a layer whose keys sit at consecutive
  // positions may write its weights here by key position (column j: the key at position j; flash::Options::probs_into)
  // and say so in AttnResult::display_placed. The window's maps give the rows of their own planes, saving a copy.
  torch::Tensor display_into;
};

struct AttnResult {
  torch::Tensor out;            // [B, T, d]
  torch::Tensor display;        // [B, H, T, S] the effective attention matrix (when asked)
  torch::Tensor mask;           // [H, T, S] bool: pairs actually computed (when asked)
  torch::Tensor heads;          // [B, H, T, d_v] head outputs before W_O (when asked)
  bool display_placed = false;  // the weights went into AttnCall::display_into (display is then that tensor)
};

// One head's weight rows over a long text, computed a block of queries at a time (pooled heatmaps past the
// context): rows [i0, i1) of the effective matrix, over the keys kpos only (every other key has weight 0).
struct RowPiece {
  int64_t i0 = 0, i1 = 0;
  torch::Tensor p;     // [i1 - i0, S'] weights
  torch::Tensor kpos;  // [S'] int64 key positions, ascending
};
// The projections weight_rows reads, computed once per text and layer from its normed input x [1, T, d].
struct TextProjections {
  torch::Tensor q, k;     // [1, H or 1, T, d_h] rotated at their positions (one head for exact softmax layers)
  torch::Tensor q_sink;   // [1, H, T, d_h] sinks: queries rotated at their in-cache position (else undefined)
  torch::Tensor buckets;  // [R, 1, H, T] int32 LSH bucket ids (else undefined)
  int64_t head = 0;       // the head these belong to (one-head projections) or the head weight_rows selects
};

class AttentionLayer : public torch::nn::Module {
 public:
  AttentionLayer(const ModelConfig& cfg, LayerSpec spec, const Positions* pos)
      : cfg_(cfg), spec_(std::move(spec)), pos_(pos) {}
  virtual AttnResult forward(const AttnCall& call) = 0;
  virtual std::unique_ptr<LayerCache> new_cache(int64_t batch, int64_t capacity, torch::Device dev) const = 0;
  // Bytes the variant's formula says its cache holds after `tokens` tokens, batch 1, elem_bytes per element.
  virtual int64_t cache_formula_bytes(int64_t tokens, int64_t elem_bytes) const = 0;
  // Per-head values [B, H, S, d_v] that the display matrix multiplies (heads = display . values), for
  // variants whose output is linear in V; undefined otherwise. x: [B, S, d] normed input (self-attention).
  virtual torch::Tensor head_values(const torch::Tensor& x) const {
    (void)x;
    return {};
  }
  // Called after the model's random initialisation: parameters that must start at a fixed value (MTA's identity
  // kernels) set it here.
  virtual void init_fixed_parameters() {}
  // Initialise from a trained layer of another variant (an MHA checkpoint); throws Error when impossible.
  virtual void convert_from(const AttentionLayer& trained);
  // Tiled weight rows (pooled heatmaps of long texts, memory O(rows x keys)): layers whose weights are a softmax
  // over scores they can compute for any block of queries say so here and implement the two calls below, equal to
  // their forward's display; the others are pooled from a full forward's display (within its memory limit).
  virtual bool has_weight_rows() const { return false; }
  virtual TextProjections project_text(const torch::Tensor& x /*[1, T, d]*/, int64_t head) const;
  virtual std::vector<RowPiece> weight_rows(const TextProjections& t, int64_t i0, int64_t i1) const;
  // True for a layer whose weights are one causal softmax per row over q_i . k_j - a (i - j) with every j <= i
  // allowed (plain MHA / GQA / MQA, RoPE or none or ALiBi): its pooled maps run the fused kernel
  // (pooled_rows.h) on project_text's q and k; *alibi_slope gets a for `head` (0 without ALiBi).
  virtual bool dense_causal_rows(int64_t head, float* alibi_slope) const {
    (void)head;
    (void)alibi_slope;
    return false;
  }
  const LayerSpec& spec() const { return spec_; }
  double param(const std::string& name) const;

 protected:
  ModelConfig cfg_;
  LayerSpec spec_;
  const Positions* pos_;
};

// mha / mqa / gqa / cross: softmax(QK^T / sqrt(d_h) + bias, masked) V with H query heads and Hkv key/value heads.
class StandardAttention : public AttentionLayer {
 public:
  StandardAttention(const ModelConfig& cfg, LayerSpec spec, const Positions* pos, int64_t kv_heads);
  AttnResult forward(const AttnCall& call) override;
  std::unique_ptr<LayerCache> new_cache(int64_t batch, int64_t capacity, torch::Device dev) const override;
  int64_t cache_formula_bytes(int64_t tokens, int64_t elem_bytes) const override;
  void convert_from(const AttentionLayer& trained) override;
  torch::Tensor head_values(const torch::Tensor& x) const override;
  // mha, mqa, gqa and custom (not cross, nor the subclasses whose weights are not this softmax).
  bool has_weight_rows() const override;
  TextProjections project_text(const torch::Tensor& x, int64_t head) const override;
  std::vector<RowPiece> weight_rows(const TextProjections& t, int64_t i0, int64_t i1) const override;
  bool dense_causal_rows(int64_t head, float* alibi_slope) const override;

  Linear wq{nullptr}, wk{nullptr}, wv{nullptr}, wo{nullptr};
  int64_t n_head, kv_heads, head_dim;
  bool cross = false;
  bool use_sdpa = false;

 protected:
  // Which (query, key) pairs may be computed: [T, S] bool from positions (default: causal, or all for cross).
  virtual torch::Tensor allowed(const torch::Tensor& qpos, const torch::Tensor& kpos, bool cross_kv) const;
};

// custom: the painted mask of the layer's spec decides which pairs are computed (outside its n x n square, and
// where nothing is painted: causal); always clipped to j <= i. Same weights as mha.
class CustomMaskAttention : public StandardAttention {
 public:
  CustomMaskAttention(const ModelConfig& cfg, LayerSpec spec, const Positions* pos);

 protected:
  torch::Tensor allowed(const torch::Tensor& qpos, const torch::Tensor& kpos, bool cross_kv) const override;

 private:
  torch::Tensor painted_;  // [n, n] bool, the spec's mask (undefined when nothing is painted)
};

// Seeded draws per layer (BigBird's blocks, LSH's rotations, Performer's features): the layer's index in the
// model (the GPT passes the entries of its own config's layer list; any other spec is layer 0), and a mixer.
int64_t layer_index_of(const ModelConfig& cfg, const LayerSpec& spec);
uint64_t splitmix64(uint64_t x);

// The families' factories (masked.cpp, kernel.cpp): nullptr when the name is not theirs.
std::shared_ptr<AttentionLayer> make_masked_attention(const ModelConfig& cfg, const LayerSpec& spec,
                                                      const Positions* pos);
std::shared_ptr<AttentionLayer> make_kernel_attention(const ModelConfig& cfg, const LayerSpec& spec,
                                                      const Positions* pos);

// The explicit factory: registry name -> implementation. Throws Error for impossible parameter combinations.
std::shared_ptr<AttentionLayer> make_attention(const ModelConfig& cfg, const LayerSpec& spec, const Positions* pos);

struct RMSNormImpl : torch::nn::Module {
  RMSNormImpl(int64_t d, double eps);
  torch::Tensor forward(const torch::Tensor& x);  // [B, T, d] -> [B, T, d]
  torch::Tensor weight;                           // [d]
  double eps;
};
TORCH_MODULE(RMSNorm);

// Top-k routed mixture of GELU experts (replaces the dense MLP when ModelConfig::moe_experts > 0). Every token goes to
// the k experts with the highest router probability p_e(x) = softmax(W_r x)_e; its output is sum over those k of
// p_e(x) expert_e(x) (gates not renormalised, so the router also learns from the language-model loss). No capacity
// limit: no token is dropped, so cached decoding equals the full forward. Parameter names:
// mlp.router.weight [E, d], mlp.experts.<e>.0.weight [h, d], mlp.experts.<e>.2.weight [d, h].
struct MoEOutput {
  torch::Tensor y;        // [B, T, d]
  torch::Tensor aux;      // scalar: Switch load-balancing loss E * sum_e f_e P_e
  torch::Tensor experts;  // [B, T, k] int64: the chosen experts, most probable first
  torch::Tensor gates;    // [B, T, k] their router probabilities
};
struct MoEImpl : torch::nn::Module {
  MoEImpl(int64_t d, int64_t hidden, int64_t experts, int64_t k);
  MoEOutput forward(const torch::Tensor& x /*[B, T, d]*/);
  Linear router{nullptr};
  torch::nn::ModuleList experts;  // E x Sequential(Linear(d, h), GELU, Linear(h, d))
  int64_t n_experts, k;
};
TORCH_MODULE(MoE);

// Holds one layer's modules so that parameter names read layers.<l>.attn.wq.weight.
struct BlockImpl : torch::nn::Module {};
TORCH_MODULE(Block);

struct ForwardOptions {
  int64_t pos0 = 0;
  bool want_display = false;
  std::vector<std::unique_ptr<LayerCache>>* caches = nullptr;  // one per layer, for decoding
  const std::vector<torch::Tensor>* kv_sources = nullptr;      // per layer [B, S, d] (cross-attention)
  std::vector<torch::Tensor>* record_inputs = nullptr;         // out: per layer normed input [B, T, d]
  bool want_routing = false;                                   // fill ForwardResult::routing (MoE models)
  const std::vector<torch::Tensor>* display_into = nullptr;    // per layer (AttnCall::display_into)
};

struct ForwardResult {
  torch::Tensor logits;                      // [B, T, V]
  std::vector<torch::Tensor> display;        // per layer [B, H, T, S]
  std::vector<torch::Tensor> mask;           // per layer [H, T, S]
  std::vector<bool> display_placed;          // per layer: display went into ForwardOptions::display_into
  torch::Tensor aux_loss;                    // scalar: sum over layers of the MoE load-balancing loss (0 for dense)
  std::vector<torch::Tensor> routing;        // per layer [B, T, k] int64 chosen experts (MoE, when asked)
  std::vector<torch::Tensor> routing_gates;  // per layer [B, T, k] their router probabilities
};

class GPTImpl : public torch::nn::Module {
 public:
  // initialise: the GPT-2 initialisation of the weights (init_parameters). False when every weight is about to be
  // overwritten (Model::with_layers copying a model of the same shapes: that init was most of a slider's model).
  explicit GPTImpl(const ModelConfig& cfg, bool initialise = true);
  void init_parameters();  // N(0, 0.02), residual output projections scaled by 1/sqrt(2 L)
  ForwardResult forward(const torch::Tensor& tokens /*[B, T]*/, const ForwardOptions& opt = {});
  std::vector<std::unique_ptr<LayerCache>> new_caches(int64_t batch, int64_t capacity) const;
  // Hidden inputs of every layer for a second text, for the cross-attention layers (run as self-attention).
  std::vector<torch::Tensor> kv_sources(const torch::Tensor& kv_tokens /*[B, S]*/);
  const ModelConfig& config() const { return cfg_; }
  torch::Device device() const { return tok->weight.device(); }
  bool has_cross() const;

  ModelConfig cfg_;
  std::unique_ptr<Positions> positions;  // stable address: the layers point at it
  torch::nn::Embedding tok{nullptr};
  torch::Tensor pos_emb;         // [context, d] (learned positions only)
  torch::nn::ModuleList layers;  // one Block per layer: names layers.<l>.{norm1,attn,norm2,mlp}
  std::vector<RMSNorm> norm1, norm2;
  std::vector<std::shared_ptr<AttentionLayer>> attn;
  std::vector<torch::nn::Sequential> mlp;  // dense models: one per layer
  std::vector<MoE> moe;                    // MoE models: one per layer (registered under the same name "mlp")
  RMSNorm norm_f{nullptr};
  // Per layer [d] or undefined: added to the layer's attention output before the residual sum. Not a parameter
  // (never saved or trained): mean knock-outs (knockout.h) put the knocked-out heads' mean contribution here.
  std::vector<torch::Tensor> attn_out_bias;
  torch::Tensor attn_residual(size_t l, const torch::Tensor& out /*[B, T, d]*/) const {
    return l < attn_out_bias.size() && attn_out_bias[l].defined() ? out + attn_out_bias[l] : out;  // [B, T, d]
  }
};
TORCH_MODULE(GPT);

// Copies every parameter of `from` into `to` (same names and shapes); attention layers whose variant differs are
// converted with AttentionLayer::convert_from. Returns "trained" when nothing needed conversion, otherwise
// "converted from <variant>".
std::string transfer_weights(GPTImpl& from, GPTImpl& to);
// Whether transfer_weights copies every attention layer's weights (same names and shapes, nothing converted).
bool copies_every_weight(GPTImpl& from, GPTImpl& to);

// Mean next-character cross-entropy (nats) of tokens [B, T+1]'s predictions. aux (when given) receives the forward's
// MoE load-balancing loss (a zero scalar for dense models).
torch::Tensor lm_loss(GPTImpl& model, const torch::Tensor& tokens, torch::Tensor* aux = nullptr);

// Softmax over the last dim where `allow` (bool, broadcastable to the scores) holds; a row with nothing allowed gives
// zeros instead of NaN. Every softmax attention uses this one. Without autograd the scores' storage is reused
// (callers pass scores they do not read again) and the zeroing pass runs only when some row has nothing allowed:
// the display forward touches each [B, H, T, S] matrix as few times as possible.
torch::Tensor masked_softmax(torch::Tensor scores /*[.., T, S]*/, const torch::Tensor& allow);
// kpos_j <= qpos_i as [T, S] bool; for consecutive CPU positions one tensor per (T, S, offset), shared by every caller
// (read-only: never written in place).
torch::Tensor causal_allow_shared(const torch::Tensor& qpos /*[T]*/, const torch::Tensor& kpos /*[S]*/);

}  // namespace attnscope
