#pragma once
// The engine's public face for the CLI and the GUI: no LibTorch in this header. Results are plain arrays.
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "cache_layout.h"
#include "config.h"
#include "safetensors.h"
#include "tokenizer.h"

namespace attnscope {

// The numbers behind AttentionMaps: one plane of rows x cols per layer and head, at least the maps' T x S. Maps
// computed whole have exactly T x S. The maps of a growing text (incremental.h) leave room for more rows and keys,
// and its successive results share one planes object: a result reads only the T x S corner of each plane, and an
// append writes only rows past the T of every result that shares the planes. So what a published result reads never
// changes, and a keystroke writes one row per layer and head instead of copying all of them.
// An allocator whose resize leaves the new elements uninitialised: the planes are megabytes (8 MiB for 4 layers of 8
// heads at T = 256), and whoever makes them writes every element once, so a zero fill first would write them twice.
template <class T>
struct UninitAlloc : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = UninitAlloc<U>;
  };
  UninitAlloc() = default;
  template <class U>
  UninitAlloc(const UninitAlloc<U>&) noexcept {}
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;  // default-initialised: no value
  }
  template <class U, class... A>
  void construct(U* p, A&&... a) {
    ::new (static_cast<void*>(p)) U(std::forward<A>(a)...);
  }
};

struct MapPlanes {
  int64_t rows = 0, cols = 0;                       // of each plane; cols is the row stride
  std::vector<float, UninitAlloc<float>> attn;      // [L, H, rows, cols] effective attention matrix per layer and head
  std::vector<uint8_t, UninitAlloc<uint8_t>> mask;  // [L, H, rows, cols] 1 = pair computed
};

// What the GUI draws for one forward pass over a text.
struct AttentionMaps {
  int64_t layers = 0, heads = 0, queries = 0, keys = 0;  // L, H, T, S
  std::shared_ptr<const MapPlanes> planes;               // [L, H, >= T, >= S]; null: no maps
  // [L] pairs computed per layer (the ones in mask), kept by whoever fills mask so that no reader counts L H T S
  // bytes again (the window's sparsity row, on every keystroke of every column); empty: count the mask.
  std::vector<int64_t> layer_pairs;
  std::vector<std::string> layer_variant;                  // [L]
  std::vector<int64_t> cache_formula_bytes;                // [L] at T tokens, fp32 elements
  double forward_ms = 0;                                   // wall time of the forward (device synchronised)
  double loss = std::numeric_limits<double>::quiet_NaN();  // next-character loss over the text, nats/char
  std::vector<float> char_loss;  // [T-1] loss of predicting token i + 1 at position i, nats (empty when T < 2)
  std::string mode;              // "trained" or "converted from mha"
  // MoE feed-forward (ModelConfig::moe_experts > 0): which experts every token used in every layer.
  int64_t experts = 0, top_k = 0;   // E and k; 0 for dense models (routing then empty)
  std::vector<int32_t> routing;     // [L, T, k] expert index, most probable first
  std::vector<float> routing_gate;  // [L, T, k] its router probability (the weight of that expert's output)
  int32_t expert(int64_t l, int64_t t, int64_t r) const {
    return routing[static_cast<size_t>((l * queries + t) * top_k + r)];
  }
  bool empty() const { return !planes || planes->attn.empty(); }
  bool has_mask() const { return planes && !planes->mask.empty(); }
  // Exactly T x S planes (maps computed whole): then planes->attn is the dense [L, H, T, S] array.
  bool dense() const { return planes && planes->rows == queries && planes->cols == keys; }
  int64_t stride() const { return planes->cols; }  // between rows i and i + 1 of one (layer, head)
  float at(int64_t l, int64_t h, int64_t i, int64_t j) const { return planes->attn[idx(l, h, i, j)]; }
  bool computed(int64_t l, int64_t h, int64_t i, int64_t j) const { return planes->mask[idx(l, h, i, j)] != 0; }
  // Row i of (l, h): keys j < S at [j], the next row stride() further on.
  const float* attn_row(int64_t l, int64_t h, int64_t i) const { return planes->attn.data() + idx(l, h, i, 0); }
  const uint8_t* mask_row(int64_t l, int64_t h, int64_t i) const { return planes->mask.data() + idx(l, h, i, 0); }
  size_t idx(int64_t l, int64_t h, int64_t i, int64_t j) const {
    return static_cast<size_t>(((l * heads + h) * planes->rows + i) * planes->cols + j);
  }
  // One (layer, head)'s T x S weights and flags as dense row-major copies [T, S] (export, CLI, analyses; no mask:
  // all 1).
  std::vector<float> head_attn(int64_t l, int64_t h) const;
  std::vector<uint8_t> head_mask(int64_t l, int64_t h) const;
  // Pairs computed in layer l over all heads: layer_pairs[l], else counted in the mask.
  int64_t pairs(int64_t l) const;
};

struct EvalResult {
  double loss = 0;         // nats/char
  double bits = 0;         // bits/char
  int64_t characters = 0;  // predictions scored
  double seconds = 0;
};

struct GenerateOptions {
  int64_t tokens = 200;
  double temperature = 1.0;  // 0 = greedy
  int64_t top_k = 0;         // 0 = all
  uint64_t seed = 1;
  // Positions past the training context. 0: within it (generate keeps the newest half and restarts positions when
  // the context is full; a Decoder stops there). N: the positions run on to N with no refill (streaming): a window's
  // or a sinks cache stays bounded, a dense cache grows, and RoPE meets positions it never trained on. At most the
  // model's length_limit (long_context.h): learned absolute positions refuse.
  int64_t stream_to = 0;
};

struct DecodeStep {
  int64_t token;
  int64_t cache_bytes;  // measured from the caches, all layers
};

class Model {
 public:
  // Loads DIR/config.json and DIR/model.safetensors with full validation; throws Error naming what is wrong.
  static std::shared_ptr<Model> load(const std::string& dir, const std::string& device = "auto");
  // A freshly initialised model (training).
  static std::shared_ptr<Model> create(const ModelConfig& cfg, const Tokenizer& tok, const std::string& device,
                                       uint64_t seed);

  const ModelConfig& config() const;
  const Tokenizer& tokenizer() const;
  const nlohmann::json& meta() const;  // config.json's "training" object (may be empty)
  void set_meta(nlohmann::json m);
  std::string mode() const;  // "trained" or "converted from <variant>"
  std::string device_name() const;
  int64_t parameter_count() const;
  // The checkpoint folder the weights came from (Model::load's DIR, kept by with_variant / with_layers; "" for
  // a model made by create).
  const std::string& source_dir() const;

  // The same weights under another variant on every layer (converted when shapes differ). Throws Error.
  std::shared_ptr<Model> with_variant(const std::string& variant, const ParamValues& params) const;
  std::shared_ptr<Model> with_layers(const std::vector<LayerSpec>& layers) const;

  // Full forward over tokens (at most the context), with the maps. kv_tokens: second text for cross-attention.
  AttentionMaps attend(const std::vector<int64_t>& tokens, const std::vector<int64_t>& kv_tokens = {}) const;
  // Mean next-character loss over non-overlapping context windows of `tokens` (max_windows 0 = all).
  EvalResult evaluate(const std::vector<int64_t>& tokens, int64_t max_windows = 0) const;
  // Logits for every position [T, V], full forward, or by cached decoding token by token.
  std::vector<float> logits(const std::vector<int64_t>& tokens, bool decode, const std::vector<int64_t>& kv_tokens = {},
                            std::vector<int64_t>* cache_bytes_per_step = nullptr) const;
  // Sampling with the KV cache; on_step sees every new token. Returns the new tokens.
  std::vector<int64_t> generate(const std::vector<int64_t>& prompt, const GenerateOptions& o,
                                const std::function<void(const DecodeStep&)>& on_step = {}) const;
  // Atomic: writes into DIR (created if needed) config.json and model.safetensors in the given dtype.
  void save(const std::string& dir, DType dtype) const;

  struct Impl;
  std::shared_ptr<Impl> impl;
};

// This program's own file (/proc/self/exe), "" when it cannot be read: installed data, the window's icon and
// bench's children are found from it.
std::string executable_path();
// Files shipped with attnscope: $ATTNSCOPE_ASSETS, then P/share/attnscope beside an installed binary, then ./assets,
// then the source tree's assets/.
std::string assets_dir();
std::string default_model_dir();                                                    // assets/models/mha
std::string default_corpus_path();                                                  // assets/tinyshakespeare.txt
std::string read_text_file(const std::string& path, size_t max_bytes = 64u << 20);  // throws Error
// The fixed split: first 90% train, last 10% validation (by characters).
struct Split {
  std::string train, valid;
};
Split split_corpus(const std::string& text);

// ---- kernel / low-rank family (kernel.cpp)
// Each layer's effective matrix against the exact causal softmax on the same queries and keys (approximations:
// linear, performer, cosformer, linformer*, nystrom, tiled; MTA: the map before its convolutions).
struct ReferenceMaps {
  int64_t layers = 0, heads = 0, queries = 0, keys = 0;  // L, H, T, S
  std::vector<uint8_t> available;  // [L] 1 = the layer's variant has a softmax reference (else zeros below)
  std::vector<float> exact;        // [L, H, T, S] exact softmax on the layer's own Q and K
  std::vector<double> max_abs;     // [L, H] max |effective - exact|
  std::vector<double> mean_abs;    // [L, H] mean |effective - exact| over pairs either weights
  std::vector<double> mean_kl;     // [L, H] mean over rows of KL(exact || effective)
  std::vector<float> kl_rows;      // [L, H, T] KL(exact row || effective row), effective clamped to >= 1e-12
};
ReferenceMaps reference_maps(const Model& m, const std::vector<int64_t>& tokens);
// Whether some layer of `m` has an exact-softmax reference (reference_maps would fill `available` for it): a caller
// can skip reference_maps' forward when none does.
bool has_softmax_reference(const Model& m);

// The tiled ("flash") variant's tile map for causal self-attention over T queries (the last T of S keys).
struct KernelTileMap {
  int64_t rows = 0, cols = 0, br = 0, bc = 0;  // ceil(T / Br), ceil(S / Bc), tile sizes
  std::vector<uint8_t> state;                  // [rows, cols] 0 skipped, 1 partial (masked inside), 2 computed
};
KernelTileMap tile_map(int64_t queries, int64_t keys, int64_t br, int64_t bc);

// ---- accessors for the GUI's status bar and KV-cache curve (engine.cpp)
// Bytes a decoder caches over all layers after `tokens` tokens, by each layer's formula (kv_tokens: the second
// text's length for cross-attention layers), at elem_bytes per element.
int64_t cache_formula_bytes(const Model& m, int64_t tokens, int64_t kv_tokens, int64_t elem_bytes = 4);
// LibTorch's intra-op thread count (at::get_num_threads). Our own kernels' count is kernel_threads.h's.
int64_t compute_threads();
// Threads for LibTorch's own kernels (at::set_num_threads) and for OpenBLAS's GEMMs (openblas_set_num_threads, when
// the BLAS in use is OpenBLAS; 0 leaves it). Training keeps 1 + OpenBLAS's default (OpenBLAS runs its own 2
// threads; 2 LibTorch threads on top oversubscribe 2 cores: training measured 2x slower); the window's small
// display forwards are faster with 2 + 1. Returns false when the BLAS thread count could not be set.
// torch_threads > 0 also sets the fused kernels' count (kernel_threads.h) to it.
bool set_compute_threads(int64_t torch_threads, int64_t blas_threads);
// The window's setting (and `bench --interactive`'s): LibTorch and OpenBLAS on one thread each. The display's small
// GEMMs gain nothing from OpenBLAS's threads (6 columns at 256 characters: 71 -> 63 ms on 2 idle cores); 2 LibTorch
// threads were faster still when idle (55 ms) but stalled for seconds (p90 2.3 s) while another job used the cores.
void use_interactive_threads();
// glibc's allocator keeps big freed buffers for reuse instead of handing them back to the system at once: blocks up
// to 32 MiB come from its heaps (not a fresh mmap each), and up to 32 MiB free at a heap's top stays there. Every
// forward allocates buffers of a few MiB (a column's maps at 256 characters: 10 MiB); fresh pages fault in, and on
// this VM a page fault costs ~17 us: `bench --interactive` under glibc's defaults measured a keystroke at 96 ms, with
// this 14 ms, and a full attend at 256 characters 92 -> 14 ms. Idempotent; called by main() and by the session's
// worker (which hands free pages back itself after a second idle: malloc_trim). Also at most one heap per logical CPU
// plus one (short-lived threads share them). No effect with another allocator.
void keep_freed_buffers();
// How many of the n bytes at m are non-zero (a maps mask's computed pairs).
int64_t count_nonzero(const uint8_t* m, size_t n);
// Back to what the process started with, the kernels' default included (a forked bench child measures as
// `attnscope bench` does).
void restore_compute_threads();

// ---- step-wise decoding for the GUI's generation view (engine.cpp)
// One decoding step: the token fed, the new query's attention over what each layer's cache holds, and its size.
struct DecodeFrame {
  int64_t step = 0;               // 0 = the first token after the prompt
  int64_t token = 0;              // the token fed at this step (sampled, or given to step())
  int64_t position = 0;           // its absolute position (the prompt holds 0 .. prompt_tokens - 1)
  double probability = 0;         // this model's probability of the token (softmax of its logits at temperature 1)
  int64_t layers = 0, heads = 0;  // L, H
  std::vector<std::vector<int64_t>> held;  // [L][S_l] absolute positions layer l's cache holds, ascending
  std::vector<std::vector<float>> attn;    // [L][H * S_l] the new query's weights on `held` (empty: a state)
  std::vector<int64_t> layer_bytes;        // [L] LayerCache::bytes() after the step
  std::vector<CacheLayout> layout;         // [L] what each cache keeps (cache_layout.h)
  int64_t bytes() const;                   // all layers
};

// Token-by-token sampling with the KV caches, one step per call, within the model's context or, with
// o.stream_to, on to that position (no refill either way: the frames stay comparable). Several decoders can be
// driven by one token stream (step(token)).
class Decoder {
 public:
  // Prefills the prompt (its newest context - 1 tokens). o.tokens is not used: step() until full().
  // Throws Error: empty prompt, cross-attention, a variant that cannot decode, options out of range, stream_to past
  // the model's length limit.
  Decoder(std::shared_ptr<const Model> model, const std::vector<int64_t>& prompt, const GenerateOptions& o);
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;
  // Samples the next token (temperature, top-k, seeded), or feeds `token` when it is >= 0; then one cached step.
  // Throws Error when full() or the token is outside the vocabulary.
  DecodeFrame step(int64_t token = -1);
  bool full() const;                           // the context (or stream_to) is used up
  int64_t capacity() const;                    // the positions it runs: max(context, stream_to)
  int64_t prompt_tokens() const;               // tokens prefilled
  const std::vector<int64_t>& tokens() const;  // the prompt as prefilled, then every fed token

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace attnscope
