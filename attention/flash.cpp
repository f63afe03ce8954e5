// The fused CPU attention kernel (flash.h). Two drivers share the mask logic:
//   tiles  T >= kRowPathBelow: per (batch, key/value head, query tile of kBr rows) an online softmax over the key
//          chunks the mask can reach (intervals merged over the tile's rows), each chunk classified as skipped, full
//          (no masking) or partial (masked per pair); flash_micro.h's loops do the arithmetic with the rows on the
//          vector lanes;
//   rows   decoding, short texts and the display (want_probs): per (batch, key/value head, query) the scores of the
//          reachable keys, an exact softmax over them (written out as the row's weights for the display) and the
//          weighted sum of the values.
// Shapes: B batch, H query heads, Hkv key/value heads, G = H / Hkv, T queries, S keys, d head width, dv value width.
#include "flash.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "error.h"
#include "flash_micro.h"
#include "kernel_threads.h"

namespace attnscope::flash {

using namespace flash_detail;

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int64_t kRowPathBelow = 16;  // fewer queries than this: the row driver (no padding of a 64-row tile)
constexpr int64_t kRowChunk = 256;     // keys per chunk of the row driver (shared by the group's heads)
// Calls with fewer (query, key) pairs than this run on the caller's thread. A cached decoding step of 8 heads at
// T = 4096 (32 K pairs) is the smallest that gained from a second thread here: 8,000 -> 10,700 tokens/s.
constexpr int64_t kParallelPairs = int64_t(1) << 15;

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t pos_mod(int64_t a, int64_t b) { return ((a % b) + b) % b; }

using Interval = std::pair<int64_t, int64_t>;  // [first, last] key indices, inclusive

// Everything a work item reads: raw fp32 buffers of the contiguous inputs.
struct Ctx {
  const float *q, *k, *v, *qa;            // [B, H, T, d], [B, Hkv, S, d], [B, Hkv, S, dv], [B, H, T, d] or null
  const int64_t *qpos, *kpos, *qpos_alt;  // [T], [S], [T] or null
  const float* slopes;                    // [H] or null
  float* out;                             // [B, T, H, dv] (tokens first: the layer's output projection reads it so)
  float* lse;                             // [B, H, T] or null
  float* probs;                           // [B, H, T, S] or null (then every row takes the row driver) ...
  int64_t pr_b, pr_h, pr_t;               // ... its strides (Options::probs_into's when placed)
  int64_t pr_off, pr_w;                   // key j's column j + pr_off of a row of pr_w columns (S, or P when placed)
  int64_t k_b, k_h, v_b, v_h;             // batch and head strides of k and v (their rows are contiguous)
  int64_t B, H, Hkv, T, S, d, dv, alt_below;
  float scale;
  int64_t k_first;  // keys before it sit at negative positions (a pattern cache's free slots, never allowed)
  bool contiguous;  // kpos[j] = kpos[k_first] + j - k_first from k_first on: masks become index intervals
  MaskDesc mask;
  const Micro* mc;
  int64_t G() const { return H / Hkv; }
  float* out_row(int64_t b, int64_t h, int64_t i) const { return out + ((b * T + i) * H + h) * dv; }  // [dv]
};

// One query's reachable key intervals (at most two: a Spans' two, or the whole range), without a vector: the row
// driver finds them for every (query, head) of a display forward.
struct Reach {
  int n = 0;
  Interval iv[2];
  void push_back(const Interval& x) { iv[n++] = x; }
  const Interval* begin() const { return iv; }
  const Interval* end() const { return iv + n; }
};

// The key-index intervals a query whose position's spans are s may reach (contiguous keys), appended to `out` (a
// vector of Interval, or a Reach).
template <class Out>
void reach_spans(const Ctx& c, const Spans& s, Out& out) {
  if (!c.contiguous) {
    out.push_back({0, c.S - 1});
    return;
  }
  for (int n = 0; n < s.n; ++n) {
    const int64_t base = c.kpos[c.k_first] - c.k_first;  // key index j holds position base + j
    const int64_t a = std::max<int64_t>(s.lo[n] - base, c.k_first), b = std::min(s.hi[n] - base, c.S - 1);
    if (a <= b) out.push_back({a, b});
  }
}

// The same for query position ip under rule r.
template <class Out>
void reach(const Ctx& c, const MaskRule& r, int64_t ip, Out& out) {
  reach_spans(c, c.contiguous ? spans(r, ip) : Spans{}, out);
}

std::vector<Interval> merged(std::vector<Interval> v) {
  std::sort(v.begin(), v.end());
  std::vector<Interval> m;
  for (const auto& x : v) {
    if (!m.empty() && x.first <= m.back().second + 1)
      m.back().second = std::max(m.back().second, x.second);
    else
      m.push_back(x);
  }
  return m;
}

enum class TileState { Skipped, Partial, Full };

// Keys [j0, j0 + n) against query rows whose spans are rs [rows] under rule r.
TileState classify(const Ctx& c, const MaskRule& r, const Spans* rs, int64_t rows, int64_t j0, int64_t n) {
  if (!c.contiguous) return TileState::Partial;
  const int64_t p0 = c.kpos[j0], p1 = c.kpos[j0 + n - 1];
  bool any = false, all = true;
  for (int64_t i = 0; i < rows; ++i) {
    const Spans& s = rs[i];
    bool hit = false, cover = false;
    for (int m = 0; m < s.n; ++m) {
      hit = hit || (s.lo[m] <= p1 && p0 <= s.hi[m]);
      cover = cover || (s.lo[m] <= p0 && p1 <= s.hi[m]);
    }
    any = any || hit;
    all = all && cover;
  }
  if (!any) return TileState::Skipped;
  return all && !filtered(r) ? TileState::Full : TileState::Partial;
}

// The fast mask of a partial tile, key by key: when every row reaches one span [lo_i, hi_i] of positions and both
// ends never decrease down the rows (causal, window, block, local rules over queries in order), the rows that may
// see key position p are one run [first_p, last_p], and both ends move forward with p. So each key's entries
// st[j][.] (contiguous: the rows are the vector lanes) are -inf before and after its run: two short fills per key
// instead of a scalar store per masked pair down a column. Returns false (nothing written) otherwise.
bool mask_by_keys(const Ctx& c, const Spans* rs, int64_t rows, int64_t j0, int64_t n, float* st /*[n][kBr]*/) {
  int64_t lo[kBr], hi[kBr];  // each row's one span of key positions
  for (int64_t i = 0; i < rows; ++i) {
    const Spans& s = rs[i];
    if (s.n != 1) return false;
    lo[i] = s.lo[0];
    hi[i] = s.hi[0];
    if (i > 0 && (lo[i] < lo[i - 1] || hi[i] < hi[i - 1])) return false;
  }
  int64_t first = 0, last = 0;  // rows [first, last) see the current key
  for (int64_t j = 0; j < n; ++j) {
    const int64_t p = c.kpos[j0 + j];
    while (first < rows && hi[first] < p) ++first;  // rows whose span ends before p
    if (last < first) last = first;
    while (last < rows && lo[last] <= p) ++last;  // rows whose span starts at or before p
    float* col = st + j * kBr;                    // [kBr]: key j against every row
    std::fill(col, col + first, kNegInf);
    std::fill(col + last, col + kBr, kNegInf);  // padding rows (>= rows) included
  }
  return true;
}

// Scores st [n][kBr] of keys [j0, j0 + n) for rows [i0, i0 + rows) of query head h: sink columns from the alternative
// queries, the ALiBi bias, and -inf where the rule forbids a pair (every entry of a padding row when partial).
void adjust(const Ctx& c, int64_t h, const MaskRule& r, const Spans* rs, TileState ts, int64_t i0, int64_t rows,
            int64_t j0, int64_t n, float* st /*[n][kBr]*/) {
  if (c.slopes) {
    const float slope = c.slopes[h];
    for (int64_t j = 0; j < n; ++j) {
      const int64_t jp = c.kpos[j0 + j];
      const int64_t* qp = c.qa && jp < c.alt_below ? c.qpos_alt : c.qpos;  // [T]
      float* row = st + j * kBr;                                           // [kBr]
      for (int64_t i = 0; i < rows; ++i) row[i] -= slope * static_cast<float>(qp[i0 + i] - jp);
    }
  }
  if (ts == TileState::Full) return;
  if (c.contiguous && !filtered(r) && mask_by_keys(c, rs, rows, j0, n, st)) return;
  for (int64_t i = 0; i < kBr; ++i) {
    if (i >= rows) {
      for (int64_t j = 0; j < n; ++j) st[j * kBr + i] = kNegInf;
      continue;
    }
    const int64_t ip = c.qpos[i0 + i];
    if (!c.contiguous || filtered(r)) {
      for (int64_t j = 0; j < n; ++j)
        if (!allows(r, ip, c.kpos[j0 + j])) st[j * kBr + i] = kNegInf;
      continue;
    }
    const Spans& s = rs[i];  // ascending, disjoint: blank the gaps between them
    int64_t jj = 0;
    for (int m = 0; m < s.n; ++m) {
      const int64_t a = std::clamp<int64_t>(s.lo[m] - c.kpos[j0], 0, n);
      const int64_t b = std::clamp<int64_t>(s.hi[m] - c.kpos[j0] + 1, 0, n);
      for (; jj < a; ++jj) st[jj * kBr + i] = kNegInf;
      jj = std::max(jj, b);
    }
    for (; jj < n; ++jj) st[jj * kBr + i] = kNegInf;
  }
}

// qt [d][kBr] = scale * q rows [i0, i0 + rows) of one head, transposed; padding rows 0.
void pack_queries(const float* q /*[T, d]*/, int64_t i0, int64_t rows, int64_t d, float scale, float* qt) {
  std::fill(qt, qt + d * kBr, 0.0f);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t e = 0; e < d; ++e) qt[e * kBr + i] = scale * q[(i0 + i) * d + e];
}

// One tile work item: query rows [qt * kBr, ..) of the G query heads that share key/value head g of batch b.
void tile_item(const Ctx& c, int64_t b, int64_t g, int64_t qtile) {
  const int64_t G = c.G(), d = c.d, dv = c.dv, i0 = qtile * kBr, rows = std::min(kBr, c.T - i0);
  thread_local std::vector<float> buf;
  thread_local std::vector<Spans> row_spans;  // [G][kBr] each head's rows' spans, computed once per item
  row_spans.resize(static_cast<size_t>(G * kBr));
  const int64_t per_head = 2 * d * kBr + 2 * kBr + dv * kBr;  // qt, qt_alt [d][kBr]; m, l [kBr]; acc [dv][kBr]
  buf.resize(static_cast<size_t>(G * per_head + 2 * kBc * kBr));
  float* st = buf.data() + G * per_head;          // [kBc][kBr] scores, then probabilities
  float* st2 = st + kBc * kBr;                    // [kBc][kBr] scores against the alternative queries
  const float* kb = c.k + b * c.k_b + g * c.k_h;  // [S, d]
  const float* vb = c.v + b * c.v_b + g * c.v_h;  // [S, dv]
  std::vector<Interval> reachable;
  for (int64_t hh = 0; hh < G; ++hh) {
    const int64_t h = g * G + hh;
    float* hb = buf.data() + hh * per_head;
    pack_queries(c.q + (b * c.H + h) * c.T * d, i0, rows, d, c.scale, hb);
    if (c.qa) pack_queries(c.qa + (b * c.H + h) * c.T * d, i0, rows, d, c.scale, hb + d * kBr);
    std::fill(hb + 2 * d * kBr, hb + 2 * d * kBr + kBr, kNegInf);  // m
    std::fill(hb + 2 * d * kBr + kBr, hb + per_head, 0.0f);        // l, acc
    Spans* rs = row_spans.data() + hh * kBr;
    for (int64_t i = 0; i < rows; ++i) {
      if (c.contiguous) rs[i] = spans(c.mask.rule(h), c.qpos[i0 + i]);
      reach_spans(c, rs[i], reachable);
    }
  }
  for (const auto& [first, last] : merged(reachable))
    for (int64_t j0 = first; j0 <= last; j0 += kBc) {
      const int64_t n = std::min(kBc, last - j0 + 1);
      for (int64_t hh = 0; hh < G; ++hh) {
        const int64_t h = g * G + hh;
        const MaskRule& r = c.mask.rule(h);
        const Spans* rs = row_spans.data() + hh * kBr;
        const TileState ts = classify(c, r, rs, rows, j0, n);
        if (ts == TileState::Skipped) continue;
        float* hb = buf.data() + hh * per_head;
        float *m = hb + 2 * d * kBr, *l = m + kBr, *acc = l + kBr;  // [kBr], [kBr], [dv][kBr]
        c.mc->scores(hb, kb + j0 * d, n, d, st);
        bool sink_keys = false;  // any key the alternative queries score (sinks)
        for (int64_t j = 0; c.qa && j < n && !sink_keys; ++j) sink_keys = c.kpos[j0 + j] < c.alt_below;
        if (sink_keys) {  // scored against the queries at their cache positions
          c.mc->scores(hb + d * kBr, kb + j0 * d, n, d, st2);
          for (int64_t j = 0; j < n; ++j)
            if (c.kpos[j0 + j] < c.alt_below) std::copy(st2 + j * kBr, st2 + (j + 1) * kBr, st + j * kBr);
        }
        adjust(c, h, r, rs, ts, i0, rows, j0, n, st);
        c.mc->softmax(st, n, m, l, acc, dv);
        c.mc->pv(st, vb + j0 * dv, n, dv, acc);
      }
    }
  for (int64_t hh = 0; hh < G; ++hh) {
    const int64_t h = g * G + hh;
    const float* hb = buf.data() + hh * per_head;
    const float *m = hb + 2 * d * kBr, *l = m + kBr, *acc = l + kBr;
    for (int64_t i = 0; i < rows; ++i) {
      float* o = c.out_row(b, h, i0 + i);               // [dv]
      const float inv = l[i] > 0 ? 1.0f / l[i] : 0.0f;  // an empty row: 0
      for (int64_t e = 0; e < dv; ++e) o[e] = acc[e * kBr + i] * inv;
      if (c.lse) c.lse[(b * c.H + h) * c.T + i0 + i] = l[i] > 0 ? m[i] + std::log(l[i]) : kNegInf;
    }
  }
}

// Row h's scores s [S] (valid on `hull`): bias, mask, then softmax and the value sum into out / lse.
// `mine`: this head's reachable intervals (within the hull).
void row_finish(const Ctx& c, int64_t b, int64_t h, int64_t i, const Interval& hull, const Reach& mine,
                float* s /*[S]*/) {
  const MaskRule& r = c.mask.rule(h);
  const int64_t ip = c.qpos[i];
  if (!c.contiguous || filtered(r)) {  // pair by pair
    for (int64_t j = hull.first; j <= hull.second; ++j)
      if (!allows(r, ip, c.kpos[j])) s[j] = kNegInf;
  } else {  // blank the gaps of the hull between this rule's intervals (ascending, disjoint)
    int64_t j = hull.first;
    for (const auto& [a, z] : mine) {
      for (; j < a; ++j) s[j] = kNegInf;
      j = std::max(j, z + 1);
    }
    for (; j <= hull.second; ++j) s[j] = kNegInf;
  }
  if (c.slopes)
    for (int64_t j = hull.first; j <= hull.second; ++j) {
      const int64_t jp = c.kpos[j], qp = c.qa && jp < c.alt_below ? c.qpos_alt[i] : ip;
      s[j] -= c.slopes[h] * static_cast<float>(qp - jp);  // -inf stays -inf
    }
  const int64_t len = hull.second - hull.first + 1;
  const float mx = len > 0 ? c.mc->max_of(s + hull.first, len) : kNegInf;
  float* o = c.out_row(b, h, i);  // [dv]
  std::fill(o, o + c.dv, 0.0f);
  float* lse = c.lse ? c.lse + (b * c.H + h) * c.T + i : nullptr;
  float* pr = c.probs ? c.probs + b * c.pr_b + h * c.pr_h + i * c.pr_t : nullptr;  // [pr_w]
  if (len <= 0 || mx == kNegInf) {                                                 // nothing allowed: zeros
    if (lse) *lse = kNegInf;
    if (pr) std::fill(pr, pr + c.pr_w, 0.0f);
    return;
  }
  const float l = c.mc->exp_sum(s + hull.first, len, mx);   // s[hull] = exp(s - mx): 0 where blocked
  const float* vb = c.v + b * c.v_b + (h / c.G()) * c.v_h;  // [S, dv]
  c.mc->axpy_rows(s + hull.first, vb + hull.first * c.dv, len, c.dv, o);
  for (int64_t e = 0; e < c.dv; ++e) o[e] /= l;
  if (lse) *lse = mx + std::log(l);
  if (pr) {  // the row written once: zeros, the hull's weights at their columns, zeros
    const int64_t a = c.pr_off + hull.first, z = c.pr_off + hull.second;  // the hull's columns [a, z]
    std::fill(pr, pr + a, 0.0f);
    const float inv = 1.0f / l;
    const float* sh = s + hull.first;  // [z - a + 1]
    for (int64_t j = 0; j <= z - a; ++j) pr[a + j] = sh[j] * inv;
    std::fill(pr + z + 1, pr + c.pr_w, 0.0f);
  }
}

// One row work item: query i of the G query heads sharing key/value head g; key chunks shared by the group.
void row_item(const Ctx& c, int64_t b, int64_t g, int64_t i) {
  const int64_t G = c.G(), d = c.d;
  thread_local std::vector<Reach> reach_of;  // [G] each head's intervals (reused, as the buffer below)
  reach_of.assign(static_cast<size_t>(G), Reach{});
  Interval hull{0, -1};  // their union's hull (empty: nothing reachable)
  bool any = false;
  for (int64_t hh = 0; hh < G; ++hh) {
    reach(c, c.mask.rule(g * G + hh), c.qpos[i], reach_of[size_t(hh)]);
    for (const Interval& x : reach_of[size_t(hh)]) {
      hull = any ? Interval{std::min(hull.first, x.first), std::max(hull.second, x.second)} : x;
      any = true;
    }
  }
  thread_local std::vector<float> buf;
  buf.resize(static_cast<size_t>(G * c.S));
  const float* kb = c.k + b * c.k_b + g * c.k_h;  // [S, d]
  for (int64_t j0 = hull.first; j0 <= hull.second; j0 += kRowChunk) {
    const int64_t n = std::min(kRowChunk, hull.second - j0 + 1);
    for (int64_t hh = 0; hh < G; ++hh) {
      const int64_t h = g * G + hh;
      float* s = buf.data() + hh * c.S;  // [S]
      c.mc->dots(c.q + ((b * c.H + h) * c.T + i) * d, kb + j0 * d, n, d, c.scale, s + j0);
      if (!c.qa) continue;
      for (int64_t j = j0; j < j0 + n; ++j)  // sink keys against the query at its cache position
        if (c.kpos[j] < c.alt_below) c.mc->dots(c.qa + ((b * c.H + h) * c.T + i) * d, kb + j * d, 1, d, c.scale, s + j);
    }
  }
  for (int64_t hh = 0; hh < G; ++hh) row_finish(c, b, g * G + hh, i, hull, reach_of[size_t(hh)], buf.data() + hh * c.S);
}

const Micro& choose(Isa isa) {
  if (isa == Isa::Portable) return portable_micro();
  if (isa == Isa::Avx2) {
    if (!avx2_available()) throw Error("flash: this CPU has no AVX2/FMA");
    return avx2_micro();
  }
  return best_micro();
}

void check_shapes(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& qpos,
                  const torch::Tensor& kpos) {
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) throw Error("flash: q, k, v must be [B, H, T, d]");
  if (k.size(0) != q.size(0) || v.size(0) != q.size(0) || k.size(2) != v.size(2) || k.size(1) != v.size(1) ||
      k.size(3) != q.size(3))
    throw Error("flash: q, k, v shapes disagree");
  if (k.size(1) < 1 || q.size(1) % k.size(1) != 0)
    throw Error("flash: " + std::to_string(k.size(1)) + " key/value heads do not divide " + std::to_string(q.size(1)) +
                " query heads");
  if (qpos.numel() != q.size(2) || kpos.numel() != k.size(2)) throw Error("flash: positions do not match T and S");
}

// x [B, Hkv, S, e] with each head's S x e block contiguous (a narrowed cache qualifies), else a contiguous copy.
torch::Tensor rows_contiguous(const torch::Tensor& x) {
  if (x.stride(3) == 1 && (x.size(2) <= 1 || x.stride(2) == x.size(3))) return x;
  return x.contiguous();
}

}  // namespace

Spans spans(const MaskRule& r, int64_t i) {
  Spans s;
  s.n = 1;
  s.lo[0] = 0;
  s.hi[0] = i;
  switch (r.kind) {
    case MaskKind::Causal:
    case MaskKind::StridedColumn:
    case MaskKind::FixedColumn:
    case MaskKind::StridedBoth:
    case MaskKind::FixedBoth: break;
    case MaskKind::Window: s.lo[0] = i - r.a + 1; break;
    case MaskKind::Dilated: s.lo[0] = i - (r.a - 1) * r.b; break;
    case MaskKind::Block:
    case MaskKind::FixedBlock: s.lo[0] = floor_div(i, r.a) * r.a; break;
    case MaskKind::StridedLocal: s.lo[0] = i - r.a; break;
    case MaskKind::Global:
      s.lo[0] = i - r.a + 1;
      if (r.b <= 0) break;
      if (i < r.b || s.lo[0] <= r.b) {  // a query among the first b, or the window reaches them: one span
        s.lo[0] = 0;
        break;
      }
      s = Spans{2, {0, i - r.a + 1}, {r.b - 1, i}};
      break;
  }
  for (int n = 0; n < s.n; ++n) s.lo[n] = std::max<int64_t>(s.lo[n], 0);
  return s;
}

bool filtered(const MaskRule& r) {
  return (r.kind == MaskKind::Dilated && r.b > 1) || (r.kind == MaskKind::StridedColumn && r.a > 1) ||
         r.kind == MaskKind::FixedColumn || r.kind == MaskKind::StridedBoth || r.kind == MaskKind::FixedBoth;
}

bool allows(const MaskRule& r, int64_t i, int64_t j) {
  if (j < 0 || j > i) return false;
  const int64_t dist = i - j;
  switch (r.kind) {
    case MaskKind::Causal: return true;
    case MaskKind::Window: return dist < r.a;
    case MaskKind::Dilated: return dist <= (r.a - 1) * r.b && dist % r.b == 0;
    case MaskKind::Block:
    case MaskKind::FixedBlock: return floor_div(i, r.a) == floor_div(j, r.a);
    case MaskKind::Global: return dist < r.a || j < r.b || i < r.b;
    case MaskKind::StridedLocal: return dist <= r.a;
    case MaskKind::StridedColumn: return dist % r.a == 0;
    case MaskKind::FixedColumn: return pos_mod(j, r.a) >= r.a - r.b || dist == 0;
    case MaskKind::StridedBoth: return dist <= r.a || dist % r.a == 0;
    case MaskKind::FixedBoth:
      return floor_div(i, r.a) == floor_div(j, r.a) || pos_mod(j, r.a) >= r.a - r.b || dist == 0;
  }
  return false;
}

bool avx2_available() { return cpu_has_avx2_fma(); }

namespace {
std::atomic<bool>& switch_state() {
  static std::atomic<bool> on{[] {
    const char* e = std::getenv("ATTNSCOPE_FLASH");
    return !(e && std::string(e) == "0");
  }()};
  return on;
}
// The keys' order: free slots (negative positions: a pattern cache's, before its chunk) first, then positions.
struct KeyOrder {
  int64_t first = 0;        // the first held key
  bool contiguous = false;  // kpos[j] = kpos[first] + j - first from first on
};
KeyOrder key_order(const torch::Tensor& kpos /*[S] int64*/) {
  const int64_t S = kpos.numel(), *kp = kpos.data_ptr<int64_t>();
  KeyOrder ko;
  while (ko.first < S && kp[ko.first] < 0) ++ko.first;
  ko.contiguous = ko.first < S;
  for (int64_t j = ko.first + 1; j < S && ko.contiguous; ++j) ko.contiguous = kp[j] == kp[ko.first] + j - ko.first;
  return ko;
}

// Whether the weights may go into Options::probs_into (see there); then key j's column is j + *off (*off may be
// negative: free slots before the first held key).
bool placed_offset(const Options& o, const KeyOrder& ko, const torch::Tensor& kpos, int64_t B, int64_t H, int64_t T,
                   int64_t S, int64_t* off) {
  const torch::Tensor& p = o.probs_into;  // [B, H, T, P]
  if (!o.want_probs || !p.defined() || S == 0 || !ko.contiguous || !p.device().is_cpu() ||
      p.scalar_type() != torch::kFloat || p.dim() != 4 || p.size(0) != B || p.size(1) != H || p.size(2) != T ||
      p.stride(3) != 1)
    return false;
  const int64_t* kp = kpos.data_ptr<int64_t>();
  if (kp[S - 1] >= p.size(3)) return false;
  *off = kp[ko.first] - ko.first;
  return true;
}

}  // namespace

void set_enabled(bool on) { switch_state() = on; }
bool enabled() { return switch_state(); }

bool applies(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) {
  const bool grad = torch::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad());
  auto ok = [](const torch::Tensor& t) {
    return t.device().is_cpu() &&
           (t.scalar_type() == torch::kFloat || t.scalar_type() == torch::kBFloat16 || t.scalar_type() == torch::kHalf);
  };
  return enabled() && !grad && ok(q) && ok(k) && ok(v);
}

Out attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& qpos,
              const torch::Tensor& kpos, const Options& o) {
  check_shapes(q, k, v, qpos, kpos);
  torch::NoGradGuard ng;
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), S = k.size(2), d = q.size(3), dv = v.size(3);
  auto qf = q.to(torch::kCPU, torch::kFloat).contiguous();      // [B, H, T, d]
  auto kf = rows_contiguous(k.to(torch::kCPU, torch::kFloat));  // [B, Hkv, S, d] (a cache's view kept as is)
  auto vf = rows_contiguous(v.to(torch::kCPU, torch::kFloat));  // [B, Hkv, S, dv]
  auto qp = qpos.to(torch::kCPU, torch::kLong).contiguous();    // [T]
  auto kp = kpos.to(torch::kCPU, torch::kLong).contiguous();    // [S]
  // [B, T, H, dv] every row written below, returned as the [B, H, T, dv] view: the caller's merge of the heads into
  // [B, T, H dv] for the output projection is then a view, not a copy
  auto out = S > 0 ? torch::empty({B, T, H, dv}, torch::kFloat) : torch::zeros({B, T, H, dv}, torch::kFloat);
  Out r;
  if (o.want_lse) r.lse = torch::full({B, H, T}, -INFINITY, torch::kFloat);  // [B, H, T]
  const KeyOrder ko = key_order(kp);
  int64_t off = 0;  // placed: key j's column j + off of probs_into
  r.probs_placed = placed_offset(o, ko, kp, B, H, T, S, &off);
  if (o.want_probs && !r.probs_placed)  // [B, H, T, S] every row written by row_finish (none when S = 0)
    r.probs = S > 0 ? torch::empty({B, H, T, S}, torch::kFloat) : torch::zeros({B, H, T, S}, torch::kFloat);
  if (r.probs_placed) r.probs = o.probs_into;  // [B, H, T, P] by key position
  const torch::Tensor& pt = r.probs;           // [B, H, T, S or P]
  torch::Tensor qa, qpa, slopes;               // [B, H, T, d], [T], [H]
  if (o.q_alt.defined() && o.alt_below > 0) {
    qa = o.q_alt.to(torch::kCPU, torch::kFloat).contiguous();
    qpa = o.qpos_alt.to(torch::kCPU, torch::kLong).contiguous();
    if (qa.sizes() != qf.sizes() || qpa.numel() != T) throw Error("flash: alternative queries do not match q");
  }
  if (o.alibi.defined()) {
    slopes = o.alibi.to(torch::kCPU, torch::kFloat).contiguous();
    if (slopes.numel() != H) throw Error("flash: ALiBi needs one slope per query head");
  }
  if (T > 0 && S > 0) {
    Ctx c{qf.data_ptr<float>(),
          kf.data_ptr<float>(),
          vf.data_ptr<float>(),
          qa.defined() ? qa.data_ptr<float>() : nullptr,
          qp.data_ptr<int64_t>(),
          kp.data_ptr<int64_t>(),
          qa.defined() ? qpa.data_ptr<int64_t>() : nullptr,
          slopes.defined() ? slopes.data_ptr<float>() : nullptr,
          out.data_ptr<float>(),
          r.lse.defined() ? r.lse.data_ptr<float>() : nullptr,
          pt.defined() ? pt.data_ptr<float>() : nullptr,
          pt.defined() ? pt.stride(0) : 0,
          pt.defined() ? pt.stride(1) : 0,
          pt.defined() ? pt.stride(2) : 0,
          off,
          pt.defined() ? pt.size(3) : 0,
          kf.stride(0),
          kf.stride(1),
          vf.stride(0),
          vf.stride(1),
          B,
          H,
          k.size(1),
          T,
          S,
          d,
          dv,
          qa.defined() ? o.alt_below : 0,
          static_cast<float>(o.scale > 0 ? o.scale : 1.0 / std::sqrt(static_cast<double>(d))),
          ko.first,
          ko.contiguous,
          o.mask,
          &choose(o.isa)};
    const int64_t BG = B * c.Hkv, threads = B * H * T * S >= kParallelPairs ? kernel_threads() : 1;
    if (T < kRowPathBelow || c.probs) {
      // a head's rows one after another: its keys (16 KiB at S = 256, d = 16) stay in L1 while its rows read them
      parallel_items(BG * T, threads, [&](int64_t w) { row_item(c, w / T / c.Hkv, w / T % c.Hkv, w % T); });
    } else {  // the last query tiles first: under a causal mask they are the heaviest
      const int64_t nq = (T + kBr - 1) / kBr;
      parallel_items(BG * nq, threads, [&](int64_t w) { tile_item(c, w % BG / c.Hkv, w % c.Hkv, nq - 1 - w / BG); });
    }
  }
  r.out = q.scalar_type() == torch::kFloat ? out.transpose(1, 2) : out.transpose(1, 2).to(q.scalar_type());
  if (r.probs.defined() && !r.probs_placed && q.scalar_type() != torch::kFloat) r.probs = r.probs.to(q.scalar_type());
  return r;
}

}  // namespace attnscope::flash
