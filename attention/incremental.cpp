// Incremental maps (incremental.h). The state after a text: every layer's decoding cache, the logits at every
// position and the maps. A new text that shares its first p tokens with the old one runs only tokens p.. through
// the model as one chunk against the caches (pos0 = p); the chunk's display rows are over the caches' slots
// (LayerCache::held_positions gives each slot's absolute position) and are scattered into the T x T maps.
#include "incremental.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <typeinfo>

#include "engine_impl.h"
#include "error.h"
#include "kernel.h"
#include "registry.h"

namespace attnscope {

namespace {

// A chunk's display columns could not be matched to positions: this variant's cache is not slot-per-position.
struct SlotMismatch {
  std::string variant;
};

size_t common_prefix(const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  size_t p = 0;
  while (p < a.size() && p < b.size() && a[p] == b[p]) ++p;
  return p;
}

// Next-token loss over positions 0..T-2: -log softmax(logits[i])[tokens[i + 1]], logits [T, V] row-major.
// Fills per [T-1] (empty when T < 2) and returns their mean (NaN when T < 2). The first `kept` entries of `before`
// are taken as they are (positions whose logits and next token did not change).
double mean_loss(const std::vector<float>& logits, const std::vector<int64_t>& tokens, int64_t V,
                 std::vector<float>& per, const std::vector<float>& before, int64_t kept) {
  const int64_t T = static_cast<int64_t>(tokens.size());
  per.clear();
  if (T < 2) return std::numeric_limits<double>::quiet_NaN();
  kept = std::clamp<int64_t>(kept, 0, std::min<int64_t>(T - 1, static_cast<int64_t>(before.size())));
  per.assign(before.begin(), before.begin() + kept);
  per.resize(static_cast<size_t>(T - 1));
  double total = 0;
  for (int64_t i = 0; i < kept; ++i) total += per[static_cast<size_t>(i)];
  for (int64_t i = kept; i + 1 < T; ++i) {
    const float* row = logits.data() + i * V;  // [V]
    const float mx = *std::max_element(row, row + V);
    double z = 0;
    for (int64_t v = 0; v < V; ++v) z += std::exp(double(row[v]) - mx);
    const double li = std::log(z) + mx - row[tokens[static_cast<size_t>(i + 1)]];  // logsumexp - target's logit
    per[static_cast<size_t>(i)] = static_cast<float>(li);
    total += li;
  }
  return total / static_cast<double>(T - 1);
}

}  // namespace

IncrementalAttend::IncrementalAttend(std::shared_ptr<const Model> model) : model_(std::move(model)) {
  why_whole_ = whole_reason(*model_);
}

IncrementalAttend::~IncrementalAttend() = default;

std::string IncrementalAttend::whole_reason(const Model& m) {
  const ModelConfig& c = m.config();
  if (c.moe_experts > 0) return "mixture of experts: the routing is computed for the whole text";
  for (const LayerSpec& s : c.layers) {
    const VariantInfo& v = get_variant(s.variant);
    if (!v.causal) return s.variant + " sees later tokens: every row can change when the text does";
    if (v.needs_kv_text) return s.variant + " reads a second text";
    if (!s.mask.empty()) return "a painted mask may let a row see later tokens";
  }
  std::vector<std::unique_ptr<LayerCache>> caches;
  try {
    torch::NoGradGuard ng;
    caches = m.impl->net->new_caches(1, c.context);
  } catch (const Error& e) {
    return std::string("no decoding cache (") + e.what() + ")";
  }
  for (size_t l = 0; l < caches.size(); ++l)  // a linear kernel's state keeps its keys for the rows (new_caches)
    if (caches[l]->layout().kind == "state" && !dynamic_cast<LinearState*>(caches[l].get()))
      return c.layers[l].variant + " keeps a running state, not a key per token: no rows to append";
  return "";
}

// Caches with exactly one entry per position (plain KV, MLA latents) are cut back to their first p entries.
bool IncrementalAttend::cut_caches(int64_t p) {
  for (const auto& c : caches_)
    if (typeid(*c) != typeid(KVCache) && typeid(*c) != typeid(LatentCache)) return false;
  for (auto& c : caches_) {
    if (auto* kv = dynamic_cast<KVCache*>(c.get())) kv->len = p;
    if (auto* lat = dynamic_cast<LatentCache*>(c.get())) lat->len = p;
    c->seen = p;
  }
  return true;
}

// A chunk's display rows in one layer: the new rows' weights and computed flags over the slots, and each slot's
// position (-1: free).
struct ChunkRows {
  torch::Tensor p;                // [H, n, S] weights over the slots; undefined when placed
  torch::Tensor k;                // [H, n, S] computed flags, or [n, S] shared by every head (k_h = 0)
  int64_t k_h = 0;                // k's head stride
  std::vector<int64_t> cols;      // [S]
  bool in_order = false;          // slot s holds position s - skip (a plain cache; any first prefill): rows copy whole
  int64_t skip = 0;               // free slots before the first position (a pattern cache's, before its first chunk)
  bool placed = false;            // the forward wrote the weights straight into the planes' rows (ForwardOptions)
  const float* p_data = nullptr;  // p's and k's buffers (write_planes reads them per row: data_ptr checks once)
  const uint8_t* k_data = nullptr;
};

// Where a chunk's rows go, chosen before its forward (IncrementalAttend::open_planes).
struct PlanesTarget {
  std::shared_ptr<MapPlanes> fresh;  // new planes: rows < from copied, >= T zeros, the rest unset (null: in place)
  MapPlanes* pl = nullptr;           // fresh or planes_
  std::vector<int64_t> pairs;        // fresh: [L, cap] pairs computed in each row, all heads (rows < from copied)
  int64_t first_new = 0;             // rows [first_new, T) are written
  std::vector<torch::Tensor> into;   // per layer [1, H, n, cap] rows from..T-1, or empty: the forward may
                                     // write its weights there by key position (ForwardOptions::display_into)
};

namespace {

// One forward of tokens[from:] through the caches (pos0 = from): the logits of rows from..T-1 into logits [T, V],
// and each layer's display rows (weights placed into `into` where a layer could). Throws SlotMismatch when a layer's
// slots cannot be matched to positions.
std::vector<ChunkRows> forward_chunk(GPTImpl& net, std::vector<std::unique_ptr<LayerCache>>& caches,
                                     const std::vector<int64_t>& tokens, int64_t from, torch::Device device,
                                     const std::vector<torch::Tensor>& into, std::vector<float>& logits) {
  const int64_t T = static_cast<int64_t>(tokens.size()), n = T - from, L = net.config().n_layer,
                V = net.config().vocab_size;
  std::vector<ChunkRows> chunks(static_cast<size_t>(L));
  if (n <= 0) return chunks;
  std::vector<std::vector<int64_t>> before(static_cast<size_t>(L));  // each layer's slot positions before the chunk
  for (int64_t l = 0; l < L; ++l) before[size_t(l)] = caches[size_t(l)]->held_positions();
  ForwardOptions fo;
  fo.caches = &caches;
  fo.pos0 = from;
  fo.want_display = true;
  if (!into.empty()) fo.display_into = &into;
  const std::vector<int64_t> chunk(tokens.begin() + from, tokens.end());
  ForwardResult r = net.forward(to_tensor(chunk, device), fo);
  auto lg = r.logits[0].to(torch::kCPU, torch::kFloat).contiguous();  // [n, V]
  std::copy_n(lg.data_ptr<float>(), n * V, logits.begin() + from * V);
  for (int64_t l = 0; l < L; ++l) {
    ChunkRows& c = chunks[size_t(l)];
    c.placed = size_t(l) < r.display_placed.size() && r.display_placed[size_t(l)];
    if (!c.placed) c.p = r.display[size_t(l)][0].to(torch::kCPU, torch::kFloat).contiguous();  // [H, n, S] slots
    const auto m = r.mask[size_t(l)].to(torch::kCPU);  // [H, n, S] bool, often one [n, S] expanded over the heads
    c.k = (m.stride(0) == 0 ? m[0] : m).to(torch::kUInt8).contiguous();  // [n, S] or [H, n, S]
    c.k_h = m.stride(0) == 0 ? 0 : c.k.stride(0);
    c.p_data = c.placed ? nullptr : c.p.data_ptr<float>();
    c.k_data = c.k.data_ptr<uint8_t>();
    const int64_t S = c.k.size(-1);
    // The chunk's key columns: the slots after it (appended in place), or the slots before it then the chunk's
    // own tokens (a pattern cache attends over both, then keeps what its pattern retains).
    c.cols = caches[size_t(l)]->held_positions();
    if (static_cast<int64_t>(c.cols.size()) != S) {
      c.cols = before[size_t(l)];
      for (int64_t t = from; t < T; ++t) c.cols.push_back(t);
    }
    if (static_cast<int64_t>(c.cols.size()) != S) throw SlotMismatch{net.attn[size_t(l)]->spec().variant};
    while (c.skip < S && c.cols[size_t(c.skip)] < 0) ++c.skip;
    c.in_order = true;
    for (int64_t s = c.skip; s < S && c.in_order; ++s) c.in_order = c.cols[size_t(s)] == s - c.skip;
  }
  return chunks;
}

}  // namespace

// Rows 0..from-1 from the previous maps; rows from..T-1 by one forward of tokens[from:] through the caches.
void IncrementalAttend::run_chunk(const std::vector<int64_t>& tokens, int64_t from) {
  torch::NoGradGuard ng;
  GPTImpl& net = *model_->impl->net;
  const int64_t T = static_cast<int64_t>(tokens.size()), L = net.config().n_layer, H = net.config().n_head,
                V = net.config().vocab_size;
  logits_.resize(static_cast<size_t>(T * V));
  // The planes first, so that the forward can write the chunk's weights into them; the maps below once, row by row.
  PlanesTarget target = open_planes(tokens, from);
  const auto chunks = forward_chunk(net, caches_, tokens, from, model_->impl->device, target.into, logits_);
  write_planes(tokens, from, chunks, target);
  auto out = std::make_shared<AttentionMaps>();  // new maps: the previous ones may be held by a published result
  AttentionMaps& m = *out;
  m.layers = L;
  m.heads = H;
  m.queries = m.keys = T;
  m.planes = planes_;
  m.layer_pairs.assign(static_cast<size_t>(L), 0);  // [L]
  for (int64_t l = 0; l < L; ++l)
    for (int64_t i = 0; i < T; ++i) m.layer_pairs[size_t(l)] += planes_pairs_[size_t(l * planes_->rows + i)];
  m.mode = model_->mode();
  for (int64_t l = 0; l < L; ++l) {
    m.layer_variant.push_back(net.attn[size_t(l)]->spec().variant);
    m.cache_formula_bytes.push_back(net.attn[size_t(l)]->cache_formula_bytes(T, 4));
  }
  // positions < from - 1 predict the same next token from the same logits: their losses are the previous text's
  static const std::vector<float> none;
  m.loss = mean_loss(logits_, tokens, V, m.char_loss, maps_ ? maps_->char_loss : none, from - 1);
  maps_ = std::move(out);
}

// The planes [L, H, cap, cap] hold the rows of planes_text_ (every row < its length was written for it; a result reads
// the rows of its own text, a prefix of it). This text keeps them when it agrees with planes_text_ on every row both
// have (an append, a deletion, the same character typed again after a deletion): rows past planes_text_'s end are
// written, no row a result may read is. Else (an edit, another character typed after a deletion, the text outgrew
// them) new planes: rows < from copied (a causal row i has keys j <= i only, the same in both texts), rows >= T zeros,
// rows from..T-1 left to write_planes (every element of new planes is written once). Every row is zero past its
// keys. When no result reads rows from..T-1, the forward may write its weights straight into them.
PlanesTarget IncrementalAttend::open_planes(const std::vector<int64_t>& tokens, int64_t from) const {
  const int64_t T = static_cast<int64_t>(tokens.size()), n = T - from, L = model_->config().n_layer,
                H = model_->config().n_head;
  const int64_t held = static_cast<int64_t>(planes_text_.size());
  PlanesTarget t;
  if (planes_ && T <= planes_->rows && static_cast<int64_t>(common_prefix(planes_text_, tokens)) >= std::min(T, held)) {
    t.pl = planes_.get();
    t.first_new = std::max(from, held);
  } else {
    t.fresh = std::make_shared<MapPlanes>();
    MapPlanes& pl = *t.fresh;
    const int64_t cap = std::min(model_->config().context, (T + 32 + 63) / 64 * 64);  // room for >= 32 more rows
    pl.rows = pl.cols = std::max(cap, T);
    const int64_t C = pl.cols;
    pl.attn.resize(static_cast<size_t>(L * H * pl.rows * C));  // [L, H, cap, cap] unset
    pl.mask.resize(pl.attn.size());                            // [L, H, cap, cap] unset
    t.pairs.assign(static_cast<size_t>(L * pl.rows), 0);       // [L, cap]
    for (int64_t l = 0; l < L; ++l) {
      for (int64_t i = 0; i < from; ++i)
        t.pairs[size_t(l * pl.rows + i)] = planes_pairs_[size_t(l * planes_->rows + i)];
      for (int64_t h = 0; h < H; ++h) {
        float* a = pl.attn.data() + (l * H + h) * pl.rows * C;  // [cap, cap]
        uint8_t* k = pl.mask.data() + (l * H + h) * pl.rows * C;
        for (int64_t i = 0; i < from; ++i) {  // keys j <= i, then zeros
          std::fill(std::copy_n(maps_->attn_row(l, h, i), i + 1, a + i * C), a + (i + 1) * C, 0.f);
          std::fill(std::copy_n(maps_->mask_row(l, h, i), i + 1, k + i * C), k + (i + 1) * C, uint8_t(0));
        }
        std::fill(a + T * C, a + pl.rows * C, 0.f);  // rows for later
        std::fill(k + T * C, k + pl.rows * C, uint8_t(0));
      }
    }
    t.pl = t.fresh.get();
    t.first_new = from;
  }
  if (t.first_new == from && n > 0 && model_->impl->device.is_cpu()) {
    MapPlanes& pl = *t.pl;
    for (int64_t l = 0; l < L; ++l)  // [1, H, n, cap] rows from..T-1 of layer l's planes
      t.into.push_back(torch::from_blob(pl.attn.data() + ((l * H) * pl.rows + from) * pl.cols, {1, H, n, pl.cols},
                                        {H * pl.rows * pl.cols, pl.rows * pl.cols, pl.cols, 1}, torch::kFloat));
  }
  return t;
}

void IncrementalAttend::write_planes(const std::vector<int64_t>& tokens, int64_t from,
                                     const std::vector<ChunkRows>& chunks, PlanesTarget& t) {
  const int64_t T = static_cast<int64_t>(tokens.size()), n = T - from, L = model_->config().n_layer,
                H = model_->config().n_head;
  MapPlanes& pl = *t.pl;
  std::vector<int64_t>& row_pairs = t.fresh ? t.pairs : planes_pairs_;  // [L, cap]
  const int64_t cap = pl.cols;
  // The chunk's row i (>= from) of head h into the row a, k (zeros in place; unset in new planes, then every column
  // written, a's unless the forward placed them); keys j <= i. Returns its computed pairs.
  std::vector<int64_t> shared_pairs(static_cast<size_t>(std::max<int64_t>(T - t.first_new, 0)));  // head 0's, by row
  const auto put_new_row = [&](const ChunkRows& c, int64_t h, int64_t i, float* a, uint8_t* k) -> int64_t {
    const int64_t S = c.k.size(-1), keys = std::min<int64_t>(S - c.skip, i + 1);  // in order: keys j <= i (causal)
    const float* pd = c.placed ? nullptr : c.p_data + (h * n + i - from) * S;     // [S] over the slots
    const uint8_t* kd = c.k_data + h * c.k_h + (i - from) * S;                    // [S]
    if (c.in_order) {
      if (pd) std::copy_n(pd + c.skip, keys, a);
      std::copy_n(kd + c.skip, keys, k);
      if (t.fresh) {
        if (pd) std::fill(a + keys, a + cap, 0.f);
        std::fill(k + keys, k + cap, uint8_t(0));
      }
      if (c.k_h == 0 && h > 0) return shared_pairs[size_t(i - t.first_new)];  // the heads share one mask
      return shared_pairs[size_t(i - t.first_new)] = count_nonzero(kd + c.skip, static_cast<size_t>(keys));
    }
    if (t.fresh) {
      if (pd) std::fill(a, a + cap, 0.f);
      std::fill(k, k + cap, uint8_t(0));
    }
    int64_t on = 0;
    for (int64_t s = 0; s < S; ++s) {  // the slots' weights at their positions
      const int64_t j = c.cols[size_t(s)];
      if (j < 0 || j > i) continue;  // a free slot, or (never for a causal layer) a later key
      if (pd) a[j] = pd[s];
      k[j] = kd[s];
      on += kd[s] != 0;
    }
    return on;
  };
  for (int64_t l = 0; l < L; ++l) {
    const ChunkRows& c = chunks[size_t(l)];
    for (int64_t i = t.first_new; i < T; ++i) row_pairs[size_t(l * cap + i)] = 0;
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = t.first_new; i < T; ++i) {
        const size_t row = static_cast<size_t>(((l * H + h) * pl.rows + i) * cap);
        row_pairs[size_t(l * cap + i)] += put_new_row(c, h, i, pl.attn.data() + row, pl.mask.data() + row);
      }
  }
  if (t.fresh) {
    planes_ = std::move(t.fresh);
    planes_pairs_ = std::move(t.pairs);
    planes_text_.clear();
  }
  if (T > static_cast<int64_t>(planes_text_.size())) planes_text_ = tokens;
}

const AttentionMaps& IncrementalAttend::update(const std::vector<int64_t>& tokens) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t T = static_cast<int64_t>(tokens.size());
  const size_t p = common_prefix(tokens_, tokens);
  if (maps_ && !maps_->empty() && p == tokens.size() && p == tokens_.size())  // the same text: stats stay
    return *maps_;
  stats_ = {};
  if (!why_whole_.empty() || T == 0 || T > model_->config().context) {  // attend also says what is wrong
    tokens_.clear();
    caches_.clear();
    planes_.reset();
    planes_text_.clear();
    maps_ = std::make_shared<AttentionMaps>(model_->attend(tokens));
    tokens_ = tokens;
    stats_.computed_rows = T;
    return *maps_;
  }
  int64_t from = 0;
  if (!caches_.empty() && (p == tokens_.size() || (p > 0 && cut_caches(static_cast<int64_t>(p)))))
    from = static_cast<int64_t>(p);
  if (from == 0) {
    torch::NoGradGuard ng;
    caches_ = model_->impl->net->new_caches(1, model_->config().context);
    for (auto& c : caches_)  // a linear kernel keeps every phi(k_j) so that new rows show all their weights
      if (auto* st = dynamic_cast<LinearState*>(c.get())) st->history = true;
    maps_.reset();
    planes_.reset();
    planes_text_.clear();
  }
  tokens_.clear();  // until the chunk is through: an exception leaves no half-updated state behind
  try {
    run_chunk(tokens, from);
  } catch (const SlotMismatch& e) {
    why_whole_ = e.variant + "'s cache does not keep one slot per position: computed whole";
    caches_.clear();
    planes_.reset();
    planes_text_.clear();
    maps_ = std::make_shared<AttentionMaps>(model_->attend(tokens));
    tokens_ = tokens;
    stats_.computed_rows = T;
    return *maps_;
  } catch (...) {
    caches_.clear();
    maps_.reset();
    planes_.reset();
    planes_text_.clear();
    throw;
  }
  tokens_ = tokens;
  stats_.incremental = from > 0;
  stats_.reused_rows = from;
  stats_.computed_rows = T - from;
  if (model_->impl->device.is_cuda()) torch::cuda::synchronize();
  maps_->forward_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return *maps_;
}

}  // namespace attnscope
