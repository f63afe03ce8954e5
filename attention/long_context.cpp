// Texts longer than the training context (long_context.h). Shapes: B batch (windows), T characters, n rows of a
// chunk or block, S' keys of a row piece, d model width, V vocabulary, L layers, H heads.
#include "long_context.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>

#include "engine_impl.h"
#include "error.h"
#include "registry.h"

namespace attnscope {

namespace F = torch::nn::functional;

namespace {

// How far a layer's variant reaches, as data: the variants whose weights or formula are sized by the context (or by
// a parameter). Every other variant, with RoPE, xPos, ALiBi or no positions, runs up to kLongestText.
struct ReachRule {
  const char* variant;
  const char* param;  // "": the training context; else the limit is this parameter + 1
  const char* why;
};
const ReachRule kReachRules[] = {
    {"linformer", "", "its projections E, F have one row per position of the training context"},
    {"linformer_causal", "", "its projections E, F have one row per position of the training context"},
    {"cosformer", "m", "its weights cos(pi/2 (i - j) / M) turn negative past M"},
};

std::string with_commas(int64_t v) {
  std::string s = std::to_string(v), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

// Query rows per chunk or block so that a [B, H, n, T] score tensor (and the softmax's copies) stays near 96 MiB.
int64_t chunk_rows(const ModelConfig& c, int64_t batch, int64_t T) {
  const int64_t budget = int64_t(96) << 20, per_row = batch * c.n_head * std::max<int64_t>(T, 1) * 4 * 3;
  return std::clamp<int64_t>(budget / per_row, 8, 512);
}

void check_causal(const Model& m) {
  for (const LayerSpec& s : m.config().layers) {
    const VariantInfo& v = get_variant(s.variant);
    if (!v.causal)
      throw Error(s.variant + " sees later tokens: a next-character loss would read the answer (no extrapolation)");
    if (v.needs_kv_text) throw Error(s.variant + " reads a second text: no extrapolation");
  }
}

// Next-character losses of windows x [B, T] (the last token is only a target): [B, T - 1] nats. Chunks through the
// decoding caches; a model whose caches do not reach T runs whole when T is within full_maps_limit.
torch::Tensor window_losses(const Model& m, const torch::Tensor& x) {
  GPTImpl& net = *m.impl->net;
  const int64_t B = x.size(0), T = x.size(1), V = m.config().vocab_size;
  auto loss_of = [&](const torch::Tensor& logits /*[B, n, V]*/, int64_t t0, int64_t n) {
    auto target = x.narrow(1, t0 + 1, n);  // [B, n]
    return F::cross_entropy(logits.reshape({B * n, V}).to(torch::kFloat), target.reshape({B * n}),
                            F::CrossEntropyFuncOptions().reduction(torch::kNone))
        .view({B, n});  // [B, n]
  };
  std::vector<std::unique_ptr<LayerCache>> caches;
  try {
    caches = net.new_caches(B, T);
  } catch (const Error& e) {
    if (T > full_maps_limit(m))
      throw Error(std::string(e.what()) + ": no decoding cache reaches " + with_commas(T) +
                  " characters, and a whole forward stops at " + with_commas(full_maps_limit(m)));
    ForwardOptions o;
    return loss_of(net.forward(x.narrow(1, 0, T - 1), o).logits, 0, T - 1);  // [B, T - 1]
  }
  ForwardOptions o;
  o.caches = &caches;
  const int64_t chunk = chunk_rows(m.config(), B, T);
  std::vector<torch::Tensor> parts;  // [B, n] each
  for (int64_t t0 = 0; t0 < T - 1; t0 += chunk) {
    const int64_t n = std::min(chunk, T - 1 - t0);
    o.pos0 = t0;
    parts.push_back(loss_of(net.forward(x.narrow(1, t0, n), o).logits, t0, n));
  }
  return torch::cat(parts, 1);  // [B, T - 1]
}

}  // namespace

// ---------------------------------------------------------------------------------------------- reach

LengthLimit length_limit(const Model& m) {
  const ModelConfig& c = m.config();
  LengthLimit r;
  if (c.position == PosKind::Learned) {
    r.tokens = c.context;
    r.reason = "learned absolute positions have one embedding per position of the training context (" +
               with_commas(c.context) + ")";
  }
  for (const LayerSpec& s : c.layers)
    for (const ReachRule& rule : kReachRules) {
      if (s.variant != rule.variant) continue;
      const std::string p = rule.param;
      int64_t lim = c.context;
      if (!p.empty()) {
        auto it = s.params.find(p);
        if (it == s.params.end()) continue;
        lim = static_cast<int64_t>(std::llround(it->second)) + 1;
      }
      if (lim < r.tokens) {
        r.tokens = lim;
        r.reason = s.variant + ": " + rule.why + " (" + with_commas(lim) + " characters)";
      }
    }
  return r;
}

void check_length(const Model& m, int64_t tokens, const std::string& what) {
  if (tokens <= 0) throw Error(what + " is empty: type at least one character");
  const LengthLimit lim = length_limit(m);
  if (tokens <= lim.tokens) return;
  if (lim.reason.empty())
    throw Error(what + " has " + with_commas(tokens) + " characters; the longest text attnscope runs is " +
                with_commas(lim.tokens));
  throw Error(what + " has " + with_commas(tokens) + " characters, past this model's limit of " +
              with_commas(lim.tokens) + ": " + lim.reason + " (RoPE, xPos, ALiBi and no positions run up to " +
              with_commas(kLongestText) + ")");
}

int64_t full_maps_limit(const Model& m) {
  const ModelConfig& c = m.config();
  const double budget = 160.0 * (1 << 20), per = 5.0 * static_cast<double>(c.n_layer * c.n_head);  // float + mask
  const auto t = static_cast<int64_t>(std::floor(std::sqrt(budget / per)));
  return std::min(std::max(t, c.context), length_limit(m).tokens);
}

// ---------------------------------------------------------------------------------------------- losses

std::vector<float> position_losses(const Model& m, const std::vector<int64_t>& tokens) {
  check_length(m, static_cast<int64_t>(tokens.size()), "the text");
  check_causal(m);
  if (tokens.size() < 2) return {};
  for (int64_t t : tokens)
    if (t < 0 || t >= m.config().vocab_size) throw Error("token " + std::to_string(t) + " is outside the vocabulary");
  torch::NoGradGuard ng;
  auto per = window_losses(m, to_tensor(tokens, m.impl->device))[0].to(torch::kCPU).contiguous();  // [T - 1]
  return std::vector<float>(per.data_ptr<float>(), per.data_ptr<float>() + per.numel());
}

double ExtrapolationCurve::mean_over(int64_t a, int64_t b) const {
  a = std::max<int64_t>(a, 0);
  b = std::min<int64_t>(b, static_cast<int64_t>(mean.size()));
  if (a >= b) return std::numeric_limits<double>::quiet_NaN();
  double s = 0;
  for (int64_t i = a; i < b; ++i) s += mean[static_cast<size_t>(i)];
  return s / static_cast<double>(b - a);
}

ExtrapolationCurve extrapolation_curve(const Model& m, const std::vector<int64_t>& text, int64_t length,
                                       int64_t windows, const std::function<void(int64_t, int64_t)>& progress) {
  if (length < 2) throw Error("--length must be at least 2, got " + std::to_string(length));
  if (windows < 1) throw Error("--windows must be at least 1, got " + std::to_string(windows));
  check_length(m, length + 1, "a window of --length " + std::to_string(length) + " plus its last target");
  check_causal(m);
  const int64_t need = windows * (length + 1), have = static_cast<int64_t>(text.size());
  if (need > have)
    throw Error(std::to_string(windows) + " windows of " + with_commas(length + 1) + " characters need " +
                with_commas(need) + "; the held-out text has " + with_commas(have) + " (at most " +
                std::to_string(have / (length + 1)) + " windows of this length)");
  torch::NoGradGuard ng;
  const auto t0 = std::chrono::steady_clock::now();
  auto all = torch::tensor(text, torch::kLong);  // [N]
  std::vector<double> sum(static_cast<size_t>(length), 0.0);
  const int64_t batch = std::clamp<int64_t>((int64_t(1) << 16) / length, 1, 8);  // windows per forward
  for (int64_t w = 0; w < windows; w += batch) {
    const int64_t nb = std::min(batch, windows - w);
    auto x = all.narrow(0, w * (length + 1), nb * (length + 1)).view({nb, length + 1}).to(m.impl->device);  // [nb, T]
    auto per = window_losses(m, x).sum(0).to(torch::kCPU, torch::kDouble).contiguous();                     // [length]
    const double* p = per.data_ptr<double>();
    for (int64_t i = 0; i < length; ++i) sum[static_cast<size_t>(i)] += p[i];
    if (progress) progress(w + nb, windows);
  }
  ExtrapolationCurve c;
  c.length = length;
  c.windows = windows;
  c.context = m.config().context;
  for (double s : sum) c.mean.push_back(s / static_cast<double>(windows));
  c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return c;
}

// ---------------------------------------------------------------------------------------------- pooled maps

const char* pool_mode_name(PoolMode m) { return m == PoolMode::Max ? "max" : "mean"; }

PoolMode parse_pool_mode(const std::string& s) {
  if (s == "max") return PoolMode::Max;
  if (s == "mean") return PoolMode::Mean;
  throw Error("pooling must be max or mean, not '" + s + "'");
}

struct LongAttention::State {
  std::shared_ptr<const Model> model;
  std::vector<int64_t> tokens;
  torch::Tensor ids;                          // [1, T]
  std::vector<torch::Tensor> inputs;          // [l] layer l's normed input [1, T, d], layers 0..computed
  std::map<int64_t, torch::Tensor> displays;  // layer -> [H, T, T] (layers without weight rows)
  int64_t proj_layer = -1, proj_head = -1;    // whose projections `proj` holds
  TextProjections proj;

  void inputs_upto(int64_t layer);
  torch::Tensor display(int64_t layer);
};

// Layer inputs 0..layer, chunk by chunk through the decoding caches of the layers below (or whole, within
// full_maps_limit, when one of them has no cache that reaches T).
void LongAttention::State::inputs_upto(int64_t layer) {
  if (static_cast<int64_t>(inputs.size()) > layer) return;
  torch::NoGradGuard ng;
  GPTImpl& net = *model->impl->net;
  const int64_t T = ids.size(1);
  std::vector<std::unique_ptr<LayerCache>> caches;
  bool whole = false;
  try {
    for (int64_t l = 0; l < layer; ++l) caches.push_back(net.attn[size_t(l)]->new_cache(1, T, net.device()));
  } catch (const Error& e) {
    if (T > full_maps_limit(*model))
      throw Error(std::string(e.what()) + ": the layers below layer " + std::to_string(layer) + " cannot run " +
                  with_commas(T) + " characters (a whole forward stops at " + with_commas(full_maps_limit(*model)) +
                  ")");
    whole = true;
  }
  const int64_t chunk = whole ? T : chunk_rows(model->config(), 1, T);
  std::vector<std::vector<torch::Tensor>> rec(static_cast<size_t>(layer + 1));  // [l] chunks [1, n, d]
  for (int64_t t0 = 0; t0 < T; t0 += chunk) {
    const int64_t n = std::min(chunk, T - t0);
    auto h = net.tok(ids.narrow(1, t0, n));  // [1, n, d]
    if (model->config().position == PosKind::Learned) h = h + net.pos_emb.narrow(0, t0, n);
    for (int64_t l = 0; l <= layer; ++l) {
      auto a = net.norm1[size_t(l)](h);  // [1, n, d]
      rec[size_t(l)].push_back(a);
      if (l == layer) break;
      AttnCall c;
      c.x = a;
      c.pos0 = t0;
      c.cache = whole ? nullptr : caches[size_t(l)].get();
      h = h + net.attn_residual(size_t(l), net.attn[size_t(l)]->forward(c).out);  // [1, n, d]
      if (c.cache) c.cache->seen += n;
      h = net.moe.empty() ? h + net.mlp[size_t(l)]->forward(net.norm2[size_t(l)](h))
                          : h + net.moe[size_t(l)]->forward(net.norm2[size_t(l)](h)).y;  // [1, n, d]
    }
  }
  inputs.clear();
  for (auto& parts : rec) inputs.push_back(torch::cat(parts, 1));  // [1, T, d]
}

// A layer without weight rows: its [H, T, T] display from one full forward (all layers kept: within full_maps_limit).
torch::Tensor LongAttention::State::display(int64_t layer) {
  auto it = displays.find(layer);
  if (it != displays.end()) return it->second;
  torch::NoGradGuard ng;
  ForwardOptions o;
  o.want_display = true;
  ForwardResult r = model->impl->net->forward(ids, o);
  for (size_t l = 0; l < r.display.size(); ++l)
    displays[int64_t(l)] = r.display[l][0].to(torch::kCPU, torch::kFloat).contiguous();  // [H, T, T]
  return displays.at(layer);
}

LongAttention::LongAttention(std::shared_ptr<const Model> model, std::vector<int64_t> tokens)
    : s_(std::make_unique<State>()) {
  check_length(*model, static_cast<int64_t>(tokens.size()), "the text");
  for (int64_t t : tokens)
    if (t < 0 || t >= model->config().vocab_size)
      throw Error("token " + std::to_string(t) + " is outside the vocabulary");
  if (model->impl->net->has_cross()) throw Error("cross-attention reads a second text: no pooled long maps");
  s_->model = std::move(model);
  s_->tokens = std::move(tokens);
  s_->ids = to_tensor(s_->tokens, s_->model->impl->device);  // [1, T]
}

LongAttention::~LongAttention() = default;
int64_t LongAttention::length() const { return static_cast<int64_t>(s_->tokens.size()); }
const Model& LongAttention::model() const { return *s_->model; }

std::string LongAttention::why_full(int64_t layer) const {
  const auto& attn = s_->model->impl->net->attn;
  if (layer < 0 || layer >= static_cast<int64_t>(attn.size())) return "no such layer";
  const AttentionLayer& a = *attn[size_t(layer)];
  if (a.has_weight_rows()) return "";
  return a.spec().variant + "'s weights are not one softmax per row over scores: pooled from a full forward (up to " +
         with_commas(full_maps_limit(*s_->model)) + " characters)";
}

namespace {

// Pixel bins of one pooled map: accumulates row pieces into [rows, cols] (max, or sum then the mean at the end).
struct Pooler {
  PooledMap& m;
  torch::Tensor acc;  // [rows, cols] float

  explicit Pooler(PooledMap& map) : m(map) {
    const float init = m.mode == PoolMode::Max ? -std::numeric_limits<float>::infinity() : 0.f;
    acc = torch::full({m.rows, m.cols}, init, torch::kFloat);  // [rows, cols]
  }
  int64_t first_row(int64_t r) const { return m.grid().first_row(r); }  // first character row of pixel row r
  int64_t first_col(int64_t c) const { return m.grid().first_col(c); }
  // Key columns [c0, c1) of the region, weights x [n, c1 - c0], reduced into out [n, cols] (max or sum per pixel
  // column). Whole bins of w columns (the region's columns a multiple of the pixels) take one strided reduction,
  // padded with zeros where the run starts or ends inside a bin (those keys are not in the piece: they weigh 0).
  void reduce_run(const torch::Tensor& x, int64_t c0, int64_t c1, torch::Tensor& out) const {
    const PoolRegion& g = m.region;
    const int64_t n = x.size(0), ncols = g.col1 - g.col0;
    const bool max = m.mode == PoolMode::Max;
    auto combine = [&](torch::Tensor dst, const torch::Tensor& v) {
      if (max)
        dst.copy_(torch::maximum(dst, v));
      else
        dst.add_(v);
    };
    if (ncols % m.cols == 0) {
      const int64_t w = ncols / m.cols, b0 = (c0 - g.col0) / w, b1 = (c1 - g.col0 + w - 1) / w;  // bins touched
      auto span = torch::zeros({n, (b1 - b0) * w});                                              // [n, bins * w]
      span.narrow(1, c0 - g.col0 - b0 * w, c1 - c0).copy_(x);
      auto v = span.view({n, b1 - b0, w});  // [n, bins, w]
      combine(out.narrow(1, b0, b1 - b0), max ? std::get<0>(v.max(2)) : v.sum(2));
      return;
    }
    for (int64_t c = m.pixel_col(c0); c < m.cols && first_col(c) < c1; ++c) {
      const int64_t j0 = std::max(c0, first_col(c)), j1 = std::min(c1, first_col(c + 1));
      if (j0 >= j1) continue;
      auto part = x.narrow(1, j0 - c0, j1 - j0);  // [n, columns of pixel c]
      combine(out.select(1, c), max ? std::get<0>(part.max(1)) : part.sum(1));
    }
  }
  // Piece rows a..b-1 pooled over the key columns into [n, cols], run by run of consecutive key positions.
  torch::Tensor per_column(const RowPiece& piece, int64_t a, int64_t b) const {
    const PoolRegion& g = m.region;
    const int64_t n = b - a;
    auto kpos = piece.kpos.to(torch::kCPU).contiguous();                         // [S']
    auto p = piece.p.to(torch::kCPU, torch::kFloat).narrow(0, a - piece.i0, n);  // [n, S']
    const int64_t S = kpos.size(0);
    const int64_t* k = kpos.data_ptr<int64_t>();
    int64_t inside = 0;
    for (int64_t s = 0; s < S; ++s) inside += k[s] >= g.col0 && k[s] < g.col1;
    // Max starts at 0 unless every column is in the piece: the keys left out weigh 0 (softmax weights are >= 0).
    const bool every = inside == g.col1 - g.col0;
    torch::Tensor out = torch::full({n, m.cols}, m.mode == PoolMode::Max && every ? -INFINITY : 0.f);  // [n, cols]
    for (int64_t s = 0; s < S;) {
      int64_t e = s + 1;
      while (e < S && k[e] == k[e - 1] + 1) ++e;  // keys k[s] .. k[e - 1] are consecutive
      const int64_t c0 = std::max(k[s], g.col0), c1 = std::min(k[e - 1] + 1, g.col1);
      if (c0 < c1) reduce_run(p.narrow(1, s + (c0 - k[s]), c1 - c0), c0, c1, out);
      s = e;
    }
    return out;
  }
  void add(const RowPiece& piece) {
    const int64_t a = std::max(piece.i0, m.region.row0), b = std::min(piece.i1, m.region.row1);
    if (a >= b) return;
    const torch::Tensor per_col = per_column(piece, a, b);  // [n, cols]
    for (int64_t r = m.pixel_row(a); r < m.rows && first_row(r) < b; ++r) {
      const int64_t r0 = std::max(a, first_row(r)), r1 = std::min(b, first_row(r + 1));
      if (r0 >= r1) continue;
      auto rows = per_col.narrow(0, r0 - a, r1 - r0);  // [rows of pixel r, cols]
      if (m.mode == PoolMode::Max)
        acc[r].copy_(torch::maximum(acc[r], std::get<0>(rows.max(0))));
      else
        acc[r] += rows.sum(0);
    }
  }
  void finish() {
    if (m.mode == PoolMode::Mean) {  // divide each pixel's sum by the weights it covers
      std::vector<float> rn, cn;
      for (int64_t r = 0; r < m.rows; ++r) rn.push_back(float(first_row(r + 1) - first_row(r)));
      for (int64_t c = 0; c < m.cols; ++c) cn.push_back(float(first_col(c + 1) - first_col(c)));
      acc /= torch::tensor(rn).unsqueeze(1) * torch::tensor(cn).unsqueeze(0);  // [rows, cols]
    }
    acc = acc.contiguous();
    m.value.assign(acc.data_ptr<float>(), acc.data_ptr<float>() + acc.numel());
  }
};

}  // namespace

PooledMap LongAttention::pooled(int64_t layer, int64_t head, const PoolRegion& region, int64_t width, int64_t height,
                                PoolMode mode) {
  const auto t0 = std::chrono::steady_clock::now();
  const ModelConfig& c = s_->model->config();
  const int64_t T = length();
  if (layer < 0 || layer >= c.n_layer)
    throw Error("layer " + std::to_string(layer) + " is out of range (0.." + std::to_string(c.n_layer - 1) + ")");
  if (head < 0 || head >= c.n_head)
    throw Error("head " + std::to_string(head) + " is out of range (0.." + std::to_string(c.n_head - 1) + ")");
  if (width < 1 || height < 1) throw Error("a pooled map needs at least one pixel each way");
  PooledMap m;
  m.layer = layer;
  m.head = head;
  m.length = T;
  m.mode = mode;
  m.region = region;
  if (m.region.row1 == 0 && m.region.col1 == 0) m.region = {0, T, 0, T};
  const PoolRegion& g = m.region;
  if (g.row0 < 0 || g.row0 >= g.row1 || g.row1 > T || g.col0 < 0 || g.col0 >= g.col1 || g.col1 > T)
    throw Error("region rows " + std::to_string(g.row0) + ".." + std::to_string(g.row1) + ", columns " +
                std::to_string(g.col0) + ".." + std::to_string(g.col1) + " is not inside the " + with_commas(T) +
                " x " + with_commas(T) + " matrix");
  m.rows = std::min(height, g.row1 - g.row0);
  m.cols = std::min(width, g.col1 - g.col0);
  const AttentionLayer& a = *s_->model->impl->net->attn[size_t(layer)];
  m.tiled = a.has_weight_rows();
  if (!m.tiled && T > full_maps_limit(*s_->model)) throw Error(why_full(layer) + "; this text has " + with_commas(T));
  torch::NoGradGuard ng;
  Pooler pool(m);
  if (m.tiled) {
    s_->inputs_upto(layer);
    if (s_->proj_layer != layer || s_->proj_head != head) {
      s_->proj = a.project_text(s_->inputs[size_t(layer)], head);
      s_->proj_layer = layer;
      s_->proj_head = head;
    }
    float slope = 0;
    if (a.dense_causal_rows(head, &slope)) {  // fused: tiles of scores pooled as they are made (pooled_rows.h)
      auto q = s_->proj.q[0][0].to(torch::kCPU, torch::kFloat).contiguous();  // [T, d_h] q / sqrt(d_h)
      auto k = s_->proj.k[0][0].to(torch::kCPU, torch::kFloat).contiguous();  // [T, d_h]
      const PoolGrid grid = m.grid();
      m.value.assign(size_t(m.rows * m.cols), 0.0f);
      pooled_causal_softmax(q.data_ptr<float>(), k.data_ptr<float>(), T, q.size(1), slope, grid, mode == PoolMode::Max,
                            m.value.data());
      m.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      return m;
    }
    const int64_t block = std::clamp<int64_t>((int64_t(8) << 20) / g.row1, 16, 512);  // rows: [block, <= row1] scores
    for (int64_t i0 = g.row0; i0 < g.row1; i0 += block)
      for (const RowPiece& p : a.weight_rows(s_->proj, i0, std::min(g.row1, i0 + block))) pool.add(p);
  } else {
    auto d = s_->display(layer)[head];  // [T, T]
    pool.add({g.row0, g.row1, d.narrow(0, g.row0, g.row1 - g.row0), torch::arange(T, torch::kLong)});
  }
  pool.finish();
  m.ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return m;
}

}  // namespace attnscope
