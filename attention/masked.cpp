// The masked and sparse family (docs/variants.md#family-masked): one rule per variant for which (query, key) pairs are
// computed, applied to the trained MHA projections (wq, wk, wv, wo keep MHA's names and shapes, so an MHA
// checkpoint loads unchanged). Shapes: B batch, H heads, T queries, S keys, d_h head width, R LSH rounds.
//
// Three computations share one scoring routine (MaskedAttention::attend):
//   dense    all T x S scores, masked (the reference);
//   blocked  local patterns: per aligned query block, only the key ranges the block can reach, so a window of
//            W over T tokens costs O(T (W + block)) instead of O(T^2) (the display, when asked, is scattered
//            into a T x S matrix);
//   cached   decoding: a slot cache that keeps exactly the tokens a present or later query may attend
//            (Pattern::retained), reusing freed slots, so windows behave as ring buffers.
#include "masked.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <functional>

#include "engine.h"  // count_nonzero
#include "error.h"
#include "flash.h"
#include "masked_pattern.h"
#include "nn.h"
#include "registry.h"

namespace attnscope {

namespace {

using namespace masked_detail;  // Pattern, Kind, Ranges: masked_pattern.h

// Decoding state: k, v (and LSH bucket ids) in slots; a slot is freed when Pattern::retained drops its token and
// reused by the next token, so windows wrap around like a ring buffer and nothing is ever re-copied.
struct PatternCache : LayerCache {
  torch::Tensor k, v;             // [B, H, slots, d_h]
  torch::Tensor buckets;          // [R, B, H, slots] int32 (LSH only)
  std::vector<int64_t> slot_pos;  // [slots] the position each slot holds, -1 = free
  int64_t capacity = 0;           // positions 0..capacity-1 may be consumed

  int64_t live() const {
    return std::count_if(slot_pos.begin(), slot_pos.end(), [](int64_t p) { return p >= 0; });
  }
  int64_t bytes() const override {
    if (!k.defined()) return 0;
    int64_t per = 2 * k.size(0) * k.size(1) * k.size(3) * static_cast<int64_t>(k.element_size());
    if (buckets.defined())
      per += buckets.size(0) * buckets.size(1) * buckets.size(2) * static_cast<int64_t>(buckets.element_size());
    return live() * per;
  }
  void evict(const Pattern& p, int64_t t) {
    for (auto& s : slot_pos)
      if (s >= 0 && !p.retained(s, t)) s = -1;
  }
  // Stores token `index` of nk, nv [B, H, T, d_h] (and nb [R, B, H, T]) as position `pos`.
  void store(const torch::Tensor& nk, const torch::Tensor& nv, const torch::Tensor& nb, int64_t index, int64_t pos) {
    auto it = std::find(slot_pos.begin(), slot_pos.end(), -1);
    if (it == slot_pos.end())
      throw Error("internal: masked cache has no free slot for position " + std::to_string(pos));
    const int64_t s = it - slot_pos.begin();
    k.select(2, s).copy_(nk.select(2, index));
    v.select(2, s).copy_(nv.select(2, index));
    if (buckets.defined()) buckets.select(3, s).copy_(nb.select(3, index));
    *it = pos;
  }
  // store() for several tokens at once: token index[n] of the chunk into the n-th free slot (as many store() calls in
  // that order would), one copy per tensor (a chunk's retained tokens had cost 3 LibTorch copies each).
  void store_all(const torch::Tensor& nk, const torch::Tensor& nv, const torch::Tensor& nb,
                 const std::vector<int64_t>& index, const std::vector<int64_t>& pos) {
    if (index.empty()) return;
    std::vector<int64_t> slots;
    for (size_t s = 0; s < slot_pos.size() && slots.size() < index.size(); ++s)
      if (slot_pos[s] < 0) slots.push_back(static_cast<int64_t>(s));
    if (slots.size() < index.size())
      throw Error("internal: masked cache has no free slot for position " + std::to_string(pos[slots.size()]));
    const auto dev = k.device();
    const auto to = torch::tensor(slots, torch::kLong).to(dev), from = torch::tensor(index, torch::kLong).to(dev);
    k.index_copy_(2, to, nk.index_select(2, from));  // [B, H, slots, d_h]
    v.index_copy_(2, to, nv.index_select(2, from));
    if (buckets.defined()) buckets.index_copy_(3, to, nb.index_select(3, from));  // [R, B, H, slots]
    for (size_t n = 0; n < slots.size(); ++n) slot_pos[static_cast<size_t>(slots[n])] = pos[n];
  }
  torch::Tensor positions(torch::Device dev) const {
    return torch::tensor(slot_pos, torch::kLong).to(dev);  // [slots]
  }
  std::vector<int64_t> held_positions() const override { return slot_pos; }  // slot order, as the decode display
  Layout layout() const override { return {"kv", 2 * k.size(1) * k.size(3), k.size(1)}; }
};

class MaskedAttention : public StandardAttention {
 public:
  MaskedAttention(const ModelConfig& cfg, const LayerSpec& spec, const Positions* pos, int64_t layer_index)
      : StandardAttention(cfg, spec, pos, cfg.n_head),
        pattern(spec.variant, spec.params, cfg.n_head, cfg.context, layer_index) {
    if (pattern.kind == Kind::Lsh) {
      auto gen = at::detail::createCPUGenerator(splitmix64(pattern.seed) ^ static_cast<uint64_t>(layer_index));
      rotations = torch::randn({pattern.rounds, head_dim, pattern.buckets / 2}, gen, torch::kFloat);  // [R, d_h, n/2]
    }
  }

  AttnResult forward(const AttnCall& c) override;
  bool has_weight_rows() const override { return true; }
  TextProjections project_text(const torch::Tensor& x, int64_t head) const override;
  std::vector<RowPiece> weight_rows(const TextProjections& t, int64_t i0, int64_t i1) const override;
  std::unique_ptr<LayerCache> new_cache(int64_t batch, int64_t capacity, torch::Device dev) const override;
  int64_t cache_formula_bytes(int64_t tokens, int64_t b) const override {
    int64_t n = pattern.kept(tokens) * 2 * n_head * head_dim * b;
    if (pattern.kind == Kind::Lsh) n += tokens * pattern.rounds * n_head * 4;  // int32 bucket ids per round and head
    return n;
  }

  Pattern pattern;
  MaskedPath path = MaskedPath::Auto;
  torch::Tensor rotations;     // [R, d_h, buckets/2] LSH's random rotations (fixed; not a trained weight)
  int64_t forced_bucket = -1;  // LSH test hook
  torch::Tensor last_buckets;  // [R, B, H, T] LSH: bucket ids of the last forward's tokens

 private:
  struct Keys {
    torch::Tensor k, v;     // [B, H, S, d_h]
    torch::Tensor pos;      // [S] int64, -1 = empty slot
    torch::Tensor buckets;  // [R, B, H, S] int32 (LSH)
  };
  struct Scored {
    torch::Tensor o;      // [B, H, T, d_h]
    torch::Tensor p;      // [B, H, T, S]
    torch::Tensor allow;  // [1 or H, T, S], or [B, H, T, S] for LSH
    bool placed = false;  // p is AttnCall::display_into: [B, H, T, P] by key position
  };
  // The one scoring routine. q [B, H, T, d_h] at qpos [T]; q_sink: sinks' queries rotated at their in-cache
  // position (undefined otherwise); qbuckets [R, B, H, T] (LSH).
  Scored attend(const torch::Tensor& q, const torch::Tensor& q_sink, const torch::Tensor& qpos,
                const torch::Tensor& qbuckets, const Keys& keys) const;
  Scored blocked(const torch::Tensor& q, const torch::Tensor& q_sink, const torch::Tensor& qpos, const Keys& keys,
                 bool want_display) const;
  torch::Tensor hash(const torch::Tensor& x /*[B, H, T, d_h]*/) const;  // -> [R, B, H, T] int32
};

torch::Tensor MaskedAttention::hash(const torch::Tensor& x) const {
  const int64_t R = pattern.rounds;
  auto rot =
      rotations.to(x.device(), x.scalar_type()).view({R, 1, 1, head_dim, pattern.buckets / 2});  // [R, 1, 1, d_h, n/2]
  auto proj = torch::matmul(x.unsqueeze(0), rot);                                                // [R, B, H, T, n/2]
  auto ids = torch::cat({proj, -proj}, -1).argmax(-1).to(torch::kInt);                           // [R, B, H, T]
  return forced_bucket >= 0 ? torch::full_like(ids, forced_bucket) : ids;
}

MaskedAttention::Scored MaskedAttention::attend(const torch::Tensor& q, const torch::Tensor& q_sink,
                                                const torch::Tensor& qpos, const torch::Tensor& qbuckets,
                                                const Keys& keys) const {
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim));
  auto kt = keys.k.transpose(-2, -1);     // [B, H, d_h, S]
  auto s = torch::matmul(q * scale, kt);  // [B, H, T, S]
  if (pattern.kind == Kind::Softcap) s = pattern.cap * torch::tanh(s / pattern.cap);
  auto bias = pos_->score_bias(qpos, keys.pos);  // [H, T, S] or undefined
  if (bias.defined()) s = s + bias;
  if (q_sink.defined()) {  // sink columns: the query sits at its in-cache position min(i, S + W - 1)
    auto sink_qpos = qpos.clamp_max(pattern.first + pattern.window - 1);  // [T]
    auto ss = torch::matmul(q_sink, kt) * scale;                          // [B, H, T, S]
    auto sink_bias = pos_->score_bias(sink_qpos, keys.pos);               // [H, T, S] or undefined
    if (sink_bias.defined()) ss = ss + sink_bias;
    s = torch::where((keys.pos < pattern.first).view({1, 1, 1, -1}), ss, s);
  }
  Scored r;
  r.allow = pattern.allow(qpos, keys.pos);  // [1 or H, T, S]
  if (pattern.kind == Kind::Lsh) {
    auto same = (qbuckets.unsqueeze(-1) == keys.buckets.unsqueeze(-2)).any(0);  // [B, H, T, S] a shared bucket
    r.allow = r.allow & same;                                                   // [B, H, T, S]
    auto self = (qpos.unsqueeze(1) == keys.pos.unsqueeze(0)).view({1, 1, qpos.size(0), -1});  // [1, 1, T, S]
    s = s.masked_fill(self, -5e4);  // replaced, not added: the self pair only wins when nothing else is allowed
  }
  r.p = masked_softmax(s, r.allow);                        // [B, H, T, S]
  if (keys.v.defined()) r.o = torch::matmul(r.p, keys.v);  // [B, H, T, d_h]
  return r;
}

MaskedAttention::Scored MaskedAttention::blocked(const torch::Tensor& q, const torch::Tensor& q_sink,
                                                 const torch::Tensor& qpos, const Keys& keys, bool want_display) const {
  const int64_t B = q.size(0), T = q.size(2), p0 = qpos[0].item<int64_t>(), bq = pattern.query_block();
  std::vector<torch::Tensor> outs;  // per query block [B, H, n, d_h]
  torch::Tensor display;            // [B, H, T, T]
  if (want_display) display = torch::zeros({B, n_head, T, T}, q.options());
  for (int64_t i0 = p0; i0 < p0 + T;) {
    const int64_t i1 = std::min(p0 + T, (i0 / bq + 1) * bq), n = i1 - i0;
    std::vector<torch::Tensor> ks, vs, ps;  // pieces [B, H, len, d_h] x2, [len]
    for (const auto& [a, b] : pattern.key_ranges(i0, i1, p0)) {
      ks.push_back(keys.k.narrow(2, a - p0, b - a));
      vs.push_back(keys.v.narrow(2, a - p0, b - a));
      ps.push_back(keys.pos.narrow(0, a - p0, b - a));
    }
    Keys sel{
        ks.size() == 1 ? ks[0] : torch::cat(ks, 2), vs.size() == 1 ? vs[0] : torch::cat(vs, 2), torch::cat(ps), {}};
    Scored part = attend(q.narrow(2, i0 - p0, n), q_sink.defined() ? q_sink.narrow(2, i0 - p0, n) : q_sink,
                         qpos.narrow(0, i0 - p0, n), {}, sel);
    outs.push_back(part.o);
    if (want_display) display.narrow(2, i0 - p0, n).index_copy_(3, sel.pos - p0, part.p);
    i0 = i1;
  }
  Scored r;
  r.o = torch::cat(outs, 2);  // [B, H, T, d_h]
  r.p = display;
  if (want_display) r.allow = pattern.allow(qpos, keys.pos);  // [1 or H, T, T]
  return r;
}

AttnResult MaskedAttention::forward(const AttnCall& c) {
  const int64_t B = c.x.size(0), T = c.x.size(1), H = n_head;
  auto lopt = torch::TensorOptions().dtype(torch::kLong).device(c.x.device());
  auto* pc = dynamic_cast<PatternCache*>(c.cache);
  if (c.cache && !pc) throw Error("internal: wrong cache type for " + spec_.variant);

  auto qpos = torch::arange(c.pos0, c.pos0 + T, lopt);             // [T]
  auto q_raw = wq(c.x).view({B, T, H, head_dim}).transpose(1, 2);  // [B, H, T, d_h]
  // LSH shares QK: the keys are the queries (wq's projection), l2-normalised; wk is kept only for the checkpoint.
  auto k_raw = pattern.kind == Kind::Lsh ? q_raw / q_raw.norm(2, -1, true).clamp_min(1e-6)
                                         : wk(c.x).view({B, T, H, head_dim}).transpose(1, 2);  // [B, H, T, d_h]
  auto q = pos_->rotate(q_raw, qpos);                                                          // [B, H, T, d_h]
  auto k = pos_->rotate(k_raw, qpos, true);                                                    // [B, H, T, d_h]
  auto v = wv(c.x).view({B, T, H, head_dim}).transpose(1, 2);                                  // [B, H, T, d_h]
  torch::Tensor q_sink;  // [B, H, T, d_h] (sinks only)
  if (pattern.kind == Kind::Sinks && pattern.first > 0)
    q_sink = pos_->rotate(q_raw, qpos.clamp_max(pattern.first + pattern.window - 1));
  torch::Tensor qb;  // [R, B, H, T] LSH buckets of these tokens (content hash of the shared projection, pre-rotation)
  if (pattern.kind == Kind::Lsh) {
    qb = hash(q_raw);
    last_buckets = qb;
  }
  Keys fresh{k, v, qpos, qb};

  Scored s;
  // Inference: the fused kernel over the same keys as each path below (fresh, cached, slots); with the display its
  // row driver writes each row's weights over the keys the pattern lets it reach (flash.h).
  flash::MaskDesc fmask;
  const bool fast = path == MaskedPath::Auto && pattern.flash_mask(&fmask) && flash::applies(q, k, v);
  auto attend_or_flash = [&](const Keys& keys, const std::function<Scored()>& slow) {
    if (!fast) return slow();
    flash::Options fo;
    fo.mask = fmask;
    if (pos_->kind == PosKind::Alibi) fo.alibi = pos_->alibi_slopes;
    if (q_sink.defined()) {  // sink keys score against the query at its in-cache position
      fo.q_alt = q_sink;
      fo.qpos_alt = qpos.clamp_max(pattern.first + pattern.window - 1);
      fo.alt_below = pattern.first;
    }
    fo.want_probs = c.want_display;
    fo.probs_into = c.display_into;
    flash::Out fl = flash::attention(q, keys.k, keys.v, qpos, keys.pos, fo);
    Scored f;
    f.o = fl.out;  // [B, H, T, d_h]
    if (c.want_display) {
      f.placed = fl.probs_placed;
      f.p = fl.probs;                           // [B, H, T, S or P]
      f.allow = pattern.allow(qpos, keys.pos);  // [1 or H, T, S]
    }
    return f;
  };
  if (pc) {
    const int64_t t0 = c.pos0;
    if (t0 + T > pc->capacity)
      throw Error("KV cache full: " + std::to_string(t0 + T) + " tokens for a capacity of " +
                  std::to_string(pc->capacity));
    pc->evict(pattern, t0 + 1);  // what the queries at t0 and later no longer attend
    auto cached = [&] { return Keys{pc->k, pc->v, pc->positions(c.x.device()), pc->buckets}; };
    if (T == 1) {  // the new token takes a free slot; attend over the slots in place
      pc->store(k, v, qb, 0, t0);
      const Keys slots = cached();
      s = attend_or_flash(slots, [&] { return attend(q, q_sink, qpos, qb, slots); });
    } else {
      Keys old = cached();
      if (fast && !c.want_display) {  // the kernel skips tiles only over keys in position order: the held slots
                                      // sorted, free ones left out (the display keeps the slots' columns)
        std::vector<int64_t> held;    // slot indices, by the position each holds
        for (size_t i = 0; i < pc->slot_pos.size(); ++i)
          if (pc->slot_pos[i] >= 0) held.push_back(int64_t(i));
        std::sort(held.begin(), held.end(), [&](int64_t a, int64_t b) { return pc->slot_pos[a] < pc->slot_pos[b]; });
        const auto idx = torch::tensor(held, torch::kLong).to(c.x.device());  // [n_held]
        old = Keys{old.k.index_select(2, idx), old.v.index_select(2, idx), old.pos.index_select(0, idx), {}};
      }
      const Keys all{torch::cat({old.k, k}, 2), torch::cat({old.v, v}, 2), torch::cat({old.pos, qpos}),  // S + T keys
                     qb.defined() ? torch::cat({old.buckets, qb}, 3) : torch::Tensor()};
      s = attend_or_flash(all, [&] { return attend(q, q_sink, qpos, qb, all); });
      pc->evict(pattern, t0 + T);
      std::vector<int64_t> kept, at;  // the chunk's tokens the pattern still needs, and their positions
      for (int64_t t = 0; t < T; ++t)
        if (pattern.retained(t0 + t, t0 + T)) kept.push_back(t), at.push_back(t0 + t);
      pc->store_all(k, v, qb, kept, at);
    }
  } else if (pattern.local() && path != MaskedPath::Dense &&
             (path == MaskedPath::Blocked || T > pattern.query_block())) {
    s = attend_or_flash(fresh, [&] { return blocked(q, q_sink, qpos, fresh, c.want_display); });
  } else {
    s = attend_or_flash(fresh, [&] { return attend(q, q_sink, qpos, qb, fresh); });
  }

  AttnResult r;
  r.out = wo(s.o.transpose(1, 2).reshape({B, T, H * head_dim}));  // [B, T, d]
  if (c.want_display) {
    const int64_t S = s.allow.size(-1);
    r.display = s.p;  // [B, H, T, S] (placed: [B, H, T, P] by key position)
    r.display_placed = s.placed;
    r.mask = (s.allow.dim() == 4 ? s.allow[0] : s.allow).expand({H, T, S});  // [H, T, S]
    r.heads = s.o;                                                           // [B, H, T, d_h]
  }
  return r;
}

TextProjections MaskedAttention::project_text(const torch::Tensor& x, int64_t head) const {
  // As forward's projections, all heads (patterns and ALiBi differ per head; weight_rows selects `head`).
  const int64_t B = x.size(0), T = x.size(1), H = n_head;
  auto pos = torch::arange(T, torch::TensorOptions().dtype(torch::kLong).device(x.device()));  // [T]
  namespace F = torch::nn::functional;
  auto q_raw = F::linear(x, wq->weight).view({B, T, H, head_dim}).transpose(1, 2);  // [1, H, T, d_h]
  auto k_raw = pattern.kind == Kind::Lsh
                   ? q_raw / q_raw.norm(2, -1, true).clamp_min(1e-6)
                   : F::linear(x, wk->weight).view({B, T, H, head_dim}).transpose(1, 2);  // [1, H, T, d_h]
  TextProjections t;
  t.head = head;
  t.q = pos_->rotate(q_raw, pos);        // [1, H, T, d_h]
  t.k = pos_->rotate(k_raw, pos, true);  // [1, H, T, d_h]
  if (pattern.kind == Kind::Sinks && pattern.first > 0)
    t.q_sink = pos_->rotate(q_raw, pos.clamp_max(pattern.first + pattern.window - 1));  // [1, H, T, d_h]
  if (pattern.kind == Kind::Lsh) t.buckets = hash(q_raw);                               // [R, 1, H, T]
  return t;
}

std::vector<RowPiece> MaskedAttention::weight_rows(const TextProjections& t, int64_t i0, int64_t i1) const {
  // Aligned query blocks as the blocked path: a local pattern scores only the key ranges its block reaches.
  const int64_t bq = pattern.local() ? pattern.query_block() : i1 - i0;
  auto lopt = torch::TensorOptions().dtype(torch::kLong).device(t.q.device());
  std::vector<RowPiece> out;
  for (int64_t a = i0; a < i1;) {
    const int64_t b = pattern.local() ? std::min(i1, (a / bq + 1) * bq) : i1, n = b - a;
    const Ranges ranges = pattern.local() ? pattern.key_ranges(a, b, 0) : Ranges{{0, b}};
    std::vector<torch::Tensor> ks, ps, bs;  // [1, H, len, d_h], [len], [R, 1, H, len]
    for (const auto& [lo, hi] : ranges) {
      ks.push_back(t.k.narrow(2, lo, hi - lo));
      ps.push_back(torch::arange(lo, hi, lopt));
      if (t.buckets.defined()) bs.push_back(t.buckets.narrow(3, lo, hi - lo));
    }
    Keys sel{torch::cat(ks, 2), {}, torch::cat(ps), bs.empty() ? torch::Tensor() : torch::cat(bs, 3)};
    auto qb = t.buckets.defined() ? t.buckets.narrow(3, a, n) : torch::Tensor();  // [R, 1, H, n]
    Scored s = attend(t.q.narrow(2, a, n), t.q_sink.defined() ? t.q_sink.narrow(2, a, n) : t.q_sink,
                      torch::arange(a, b, lopt), qb, sel);
    out.push_back({a, b, s.p[0][t.head], sel.pos});  // [n, S'] over the selected keys
    a = b;
  }
  return out;
}

std::unique_ptr<LayerCache> MaskedAttention::new_cache(int64_t batch, int64_t capacity, torch::Device dev) const {
  if (pattern.kind == Kind::BigBird && capacity > cfg_.context)
    throw Error("bigbird decodes within the context (" + std::to_string(cfg_.context) +
                "): its random blocks are drawn per query block of the context");
  auto c = std::make_unique<PatternCache>();
  const int64_t slots = std::max<int64_t>(pattern.max_kept(capacity), 1);
  auto opt = torch::TensorOptions().dtype(wk->weight.dtype()).device(dev);
  c->k = torch::zeros({batch, n_head, slots, head_dim}, opt);  // [B, H, slots, d_h]
  c->v = torch::zeros({batch, n_head, slots, head_dim}, opt);  // [B, H, slots, d_h]
  if (pattern.kind == Kind::Lsh)
    c->buckets = torch::zeros({pattern.rounds, batch, n_head, slots}, opt.dtype(torch::kInt));  // [R, B, H, slots]
  c->slot_pos.assign(static_cast<size_t>(slots), -1);
  c->capacity = capacity;
  return c;
}

}  // namespace

std::shared_ptr<AttentionLayer> make_masked_attention(const ModelConfig& cfg, const LayerSpec& spec,
                                                      const Positions* pos) {
  if (!kind_of(spec.variant, nullptr)) return nullptr;
  return std::make_shared<MaskedAttention>(cfg, spec, pos, layer_index_of(cfg, spec));
}

// ---------------------------------------------------------------------------------------------- display API

PatternView describe_pattern(const std::string& variant, const ParamValues& params, int64_t n_head, int64_t context,
                             int64_t n, int64_t layer) {
  if (!kind_of(variant, nullptr)) throw Error("'" + variant + "' is not a masked variant");
  if (n < 1 || n_head < 1) throw Error("describe_pattern: needs at least one token and one head");
  const VariantInfo& info = get_variant(variant);
  Pattern p(variant, resolve_params(info.params, variant, params), n_head, context, layer);
  PatternView v;
  v.variant = variant;
  v.heads = n_head;
  v.n = n;
  v.notes = p.notes;
  if (p.kind == Kind::Lsh) {
    v.data_dependent = true;
    v.notes.push_back("LSH's mask depends on the text: it is read from a forward (lsh_buckets, the attention maps)");
    return v;
  }
  torch::NoGradGuard ng;
  auto pos = torch::arange(n, torch::kLong);                                         // [n]
  auto m = p.allow(pos, pos).expand({n_head, n, n}).to(torch::kUInt8).contiguous();  // [H, n, n]
  v.mask.assign(m.data_ptr<uint8_t>(), m.data_ptr<uint8_t>() + m.numel());
  auto per_head = m.sum({1, 2}).to(torch::kLong).contiguous();  // [H]
  v.pairs.assign(per_head.data_ptr<int64_t>(), per_head.data_ptr<int64_t>() + n_head);
  double total = 0;
  for (int64_t x : v.pairs) total += static_cast<double>(x);
  const double dn = static_cast<double>(n), dh = static_cast<double>(n_head);
  v.density = total / (dh * dn * dn);
  v.flops_vs_causal = total / (dh * dn * (dn + 1) / 2);
  return v;
}

bool pattern_varies_by_layer(const std::string& variant) {
  Kind k;
  return kind_of(variant, &k) && (k == Kind::BigBird || k == Kind::Lsh);
}

PatternTileMap tile_map(const PatternView& v, int64_t tile) {
  if (tile < 1) throw Error("tile size must be at least 1, got " + std::to_string(tile));
  if (v.data_dependent || v.mask.empty()) throw Error("tile map: '" + v.variant + "' has no fixed mask");
  PatternTileMap t;
  t.heads = v.heads;
  t.tile = tile;
  t.rows = t.cols = (v.n + tile - 1) / tile;
  t.state.assign(static_cast<size_t>(t.heads * t.rows * t.cols), PatternTileState::Skipped);
  int64_t computed = 0;
  for (int64_t h = 0; h < v.heads; ++h)
    for (int64_t r = 0; r < t.rows; ++r)
      for (int64_t c = 0; c <= r; ++c) {  // tiles above the diagonal hold only future keys
        const int64_t i0 = r * tile, i1 = std::min(v.n, i0 + tile), j0 = c * tile, j1 = std::min(v.n, j0 + tile);
        const int64_t cells = (i1 - i0) * (j1 - j0);
        int64_t on = 0;  // the tile's allowed pairs, a row's run of bytes at a time (a slider's new pattern: 4 x H x
                         // n^2 / 2 flags per column, counted pair by pair, had cost ~3 ms)
        for (int64_t i = i0; i < i1; ++i)
          on += count_nonzero(v.mask.data() + (h * v.n + i) * v.n + j0, static_cast<size_t>(j1 - j0));
        PatternTileState s = on == 0       ? PatternTileState::Skipped
                             : on == cells ? PatternTileState::Full
                                           : PatternTileState::Partial;
        t.state[static_cast<size_t>((h * t.rows + r) * t.cols + c)] = s;
        computed += s != PatternTileState::Skipped;
      }
  const double causal_tiles = static_cast<double>(v.heads * t.rows * (t.rows + 1) / 2);
  t.computed_tiles_vs_causal = static_cast<double>(computed) / causal_tiles;
  return t;
}

// ---------------------------------------------------------------------------------------------- hooks

static MaskedAttention& masked_layer(AttentionLayer& layer) {
  auto* m = dynamic_cast<MaskedAttention*>(&layer);
  if (!m) throw Error("'" + layer.spec().variant + "' is not a masked-family layer");
  return *m;
}

LshBuckets lsh_buckets(const AttentionLayer& layer) {
  LshBuckets b;
  auto* m = dynamic_cast<const MaskedAttention*>(&layer);
  if (!m || m->pattern.kind != Kind::Lsh || !m->last_buckets.defined()) return b;
  auto ids = m->last_buckets.select(1, 0).to(torch::kCPU, torch::kInt).contiguous();  // [R, H, T]
  b.rounds = ids.size(0);
  b.heads = ids.size(1);
  b.tokens = ids.size(2);
  b.buckets = m->pattern.buckets;
  b.ids.assign(ids.data_ptr<int32_t>(), ids.data_ptr<int32_t>() + ids.numel());
  return b;
}

void set_masked_path(AttentionLayer& layer, MaskedPath p) { masked_layer(layer).path = p; }

void force_lsh_bucket(AttentionLayer& layer, int64_t bucket) {
  MaskedAttention& m = masked_layer(layer);
  if (m.pattern.kind != Kind::Lsh) throw Error("force_lsh_bucket: '" + layer.spec().variant + "' is not lsh");
  m.forced_bucket = bucket;
}

}  // namespace attnscope
