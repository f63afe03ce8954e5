// The fused kernel (attention/flash.h) against the definition softmax(q k^T / sqrt(d) + bias, masked) v computed
// naively in double: lengths 1..4096, head dims 16..128, GQA ratios, every mask rule at its parameter extremes,
// empty rows, ALiBi and sinks' alternative queries, decode == prefill, the AVX2 path == the portable path, and one
// thread == several (kernel_threads.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "flash.h"
#include "flash_micro.h"
#include "kernel_threads.h"

using namespace attnscope;
using flash::MaskDesc;
using flash::MaskKind;
using flash::MaskRule;

namespace {

struct Inputs {
  torch::Tensor q, k, v;     // [B, H, T, d], [B, Hkv, S, d], [B, Hkv, S, dv]
  torch::Tensor qpos, kpos;  // [T], [S]
};

// Random inputs at self-attention positions 0..T-1; `sharp` scales the queries so the softmax is far from uniform.
Inputs make(int64_t B, int64_t H, int64_t Hkv, int64_t T, int64_t d, uint64_t seed, double sharp = 2.0) {
  torch::manual_seed(seed);
  Inputs in;
  in.q = torch::randn({B, H, T, d}) * sharp;  // [B, H, T, d]
  in.k = torch::randn({B, Hkv, T, d});        // [B, Hkv, T, d]
  in.v = torch::randn({B, Hkv, T, d});        // [B, Hkv, T, d]
  in.qpos = torch::arange(T, torch::kLong);   // [T]
  in.kpos = torch::arange(T, torch::kLong);   // [T]
  return in;
}

// The definition, in double: allow from flash::allows pair by pair, empty rows 0. Sinks: keys below alt_below score
// against q_alt at qpos_alt. The weights [B, H, T, S] into *weights when asked.
torch::Tensor naive(const Inputs& in, const flash::Options& o, torch::Tensor* weights = nullptr) {
  const int64_t H = in.q.size(1), T = in.q.size(2), S = in.k.size(2), G = H / in.k.size(1);
  auto q = in.q.to(torch::kDouble), k = in.k.to(torch::kDouble).repeat_interleave(G, 1);  // [B, H, T, d], [B, H, S, d]
  auto v = in.v.to(torch::kDouble).repeat_interleave(G, 1);                               // [B, H, S, dv]
  const double scale = o.scale > 0 ? o.scale : 1.0 / std::sqrt(static_cast<double>(in.q.size(3)));
  auto s = torch::matmul(q, k.transpose(-2, -1)) * scale;  // [B, H, T, S]
  auto qp = in.qpos.accessor<int64_t, 1>(), kp = in.kpos.accessor<int64_t, 1>();
  auto allow = torch::zeros({H, T, S}, torch::kBool);   // [H, T, S]
  auto bias = torch::zeros({H, T, S}, torch::kDouble);  // [H, T, S]
  auto a = allow.accessor<bool, 3>();
  auto bb = bias.accessor<double, 3>();
  auto qpa = (o.q_alt.defined() ? o.qpos_alt : in.qpos).contiguous();                                // [T]
  auto slopes = o.alibi.defined() ? o.alibi.to(torch::kDouble) : torch::zeros({H}, torch::kDouble);  // [H]
  auto qa = qpa.accessor<int64_t, 1>();
  auto sl = slopes.accessor<double, 1>();
  const bool plain = o.mask.even.kind == MaskKind::Causal && o.mask.odd.kind == MaskKind::Causal && !o.alibi.defined();
  if (plain)  // the long lengths: j <= i (and j >= 0) as a tensor expression, no bias
    allow.copy_(((in.kpos.unsqueeze(0) <= in.qpos.unsqueeze(1)) & (in.kpos >= 0).unsqueeze(0)).expand({H, T, S}));
  for (int64_t h = 0; h < H && !plain; ++h)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < S; ++j) {
        a[h][i][j] = flash::allows(o.mask.rule(h), qp[i], kp[j]);
        const int64_t qi = o.q_alt.defined() && kp[j] < o.alt_below ? qa[i] : qp[i];
        bb[h][i][j] = -sl[h] * static_cast<double>(qi - kp[j]);
      }
  if (o.q_alt.defined()) {
    auto sa = torch::matmul(o.q_alt.to(torch::kDouble), k.transpose(-2, -1)) * scale;  // [B, H, T, S]
    s = torch::where((in.kpos < o.alt_below).view({1, 1, 1, S}), sa, s);
  }
  s = (s + bias).masked_fill(allow.logical_not(), -INFINITY);
  auto p = torch::softmax(s, -1).masked_fill(allow.logical_not(), 0.0);  // [B, H, T, S] (empty rows: NaN -> 0)
  p = torch::nan_to_num(p, 0.0);
  if (weights) *weights = p;
  return torch::matmul(p, v);  // [B, H, T, dv]
}

// max |a - b| / max |b| (b the reference), so a value of 1e-5 is 1e-5 relative to the output's scale.
double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  const double scale = std::max(b.abs().max().item<double>(), 1e-6);
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>() / scale;
}

flash::Out run(const Inputs& in, flash::Options o) { return flash::attention(in.q, in.k, in.v, in.qpos, in.kpos, o); }

// Every case twice: as asked, and with the display's weights (want_probs: the row driver at every length), whose
// output and weights must match the definition too (weights within tol of it, zeros exactly where not allowed).
void expect_matches(const Inputs& in, const flash::Options& o, const std::string& what, double tol = 1e-5) {
  auto got = run(in, o).out;  // [B, H, T, dv]
  ASSERT_FALSE(torch::isnan(got).any().item<bool>()) << what;
  torch::Tensor weights;  // [B, H, T, S]
  const auto want = naive(in, o, &weights);
  EXPECT_LT(rel_err(got, want), tol) << what;
  flash::Options shown = o;
  shown.want_probs = true;
  const flash::Out d = run(in, shown);
  ASSERT_TRUE(d.probs.defined()) << what;
  ASSERT_EQ(d.probs.sizes(), weights.sizes()) << what;
  ASSERT_FALSE(torch::isnan(d.probs).any().item<bool>()) << what;
  EXPECT_LT(rel_err(d.out, want), tol) << what << " (with the weights)";
  EXPECT_LT((d.probs.to(torch::kDouble) - weights).abs().max().item<double>(), tol) << what << " weights";
  EXPECT_FALSE(((weights == 0) & (d.probs != 0)).any().item<bool>()) << what << ": a weight where none is allowed";
}

MaskDesc rule(MaskKind k, int64_t a = 0, int64_t b = 0) { return MaskDesc::all({k, a, b}); }

}  // namespace

TEST(Flash, CausalEqualsNaiveAtEveryKindOfLength) {
  torch::NoGradGuard ng;
  for (int64_t T :
       {1, 2, 3, 7, 15, 16, 17, 31, 63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 512, 1023, 1024, 2047, 2048, 4096}) {
    const int64_t H = T >= 1024 ? 1 : 2;  // small head counts at large T keep the naive reference quick
    flash::Options o;
    o.mask = rule(MaskKind::Causal);
    expect_matches(make(1, H, H, T, 16, static_cast<uint64_t>(T)), o, "T=" + std::to_string(T));
  }
}

TEST(Flash, HeadDims16To128AndBatches) {
  torch::NoGradGuard ng;
  for (int64_t d : {16, 24, 32, 64, 128})
    for (int64_t T : {1, 9, 100, 300}) {
      flash::Options o;
      o.mask = rule(MaskKind::Causal);
      expect_matches(make(2, 2, 2, T, d, static_cast<uint64_t>(d * 1000 + T)), o,
                     "d=" + std::to_string(d) + " T=" + std::to_string(T));
    }
}

TEST(Flash, GqaAndMqaGroups) {
  torch::NoGradGuard ng;
  for (int64_t Hkv : {1, 2, 4, 8})
    for (int64_t T : {5, 200}) {
      flash::Options o;
      o.mask = rule(MaskKind::Window, 37);
      expect_matches(make(1, 8, Hkv, T, 16, static_cast<uint64_t>(Hkv * 7 + T)), o,
                     "Hkv=" + std::to_string(Hkv) + " T=" + std::to_string(T));
    }
}

TEST(Flash, EveryLocalRuleAtItsExtremes) {
  torch::NoGradGuard ng;
  for (int64_t T : {1, 37, 200, 520}) {
    std::vector<std::pair<std::string, MaskDesc>> cases;
    for (int64_t w : {int64_t(1), int64_t(2), int64_t(63), int64_t(64), int64_t(65), T, T + 5})
      cases.push_back({"window " + std::to_string(w), rule(MaskKind::Window, w)});
    for (auto [w, r] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {4, 1}, {4, 3}, {64, 2}, {T, 7}})
      cases.push_back({"dilated " + std::to_string(w) + "," + std::to_string(r), rule(MaskKind::Dilated, w, r)});
    for (int64_t b : {int64_t(1), int64_t(7), int64_t(64), T + 1})
      cases.push_back({"block " + std::to_string(b), rule(MaskKind::Block, b)});
    for (auto [w, g] : std::vector<std::pair<int64_t, int64_t>>{{1, 0}, {1, 1}, {16, 4}, {64, 70}, {T, T}, {3, 300}})
      cases.push_back({"global " + std::to_string(w) + "," + std::to_string(g), rule(MaskKind::Global, w, g)});
    for (int64_t l : {1, 8, 65})
      cases.push_back(
          {"strided " + std::to_string(l), MaskDesc{{MaskKind::StridedLocal, l, 0}, {MaskKind::StridedColumn, l, 0}}});
    for (auto [l, c] : std::vector<std::pair<int64_t, int64_t>>{{1, 0}, {16, 0}, {16, 8}, {64, 32}})
      cases.push_back({"fixed " + std::to_string(l) + "," + std::to_string(c),
                       MaskDesc{{MaskKind::FixedBlock, l, 0}, {MaskKind::FixedColumn, l, c}}});
    cases.push_back({"strided both 9", rule(MaskKind::StridedBoth, 9)});
    cases.push_back({"fixed both 16,4", rule(MaskKind::FixedBoth, 16, 4)});
    for (const auto& [name, desc] : cases) {
      flash::Options o;
      o.mask = desc;
      expect_matches(make(1, 2, 2, T, 16, static_cast<uint64_t>(T)), o, name + " T=" + std::to_string(T));
    }
  }
}

TEST(Flash, EmptyRowsGiveZerosNotNaN) {
  torch::NoGradGuard ng;
  for (int64_t T : {3, 40}) {  // the row driver and the tile driver
    Inputs in = make(1, 2, 2, T, 16, 5);
    in.kpos = torch::full({T}, -1, torch::kLong);  // every slot free
    flash::Options o;
    o.want_lse = true;
    flash::Out r = run(in, o);
    EXPECT_EQ(r.out.abs().max().item<double>(), 0.0) << "T=" << T;
    EXPECT_TRUE(torch::isinf(r.lse).all().item<bool>()) << "T=" << T;
    // Keys all in the future of the queries: empty rows too.
    in.kpos = torch::arange(T, 2 * T, torch::kLong);
    EXPECT_EQ(run(in, o).out.abs().max().item<double>(), 0.0) << "T=" << T;
    // Keys at negative positions (never allowed): empty rows again.
    in = make(1, 2, 2, T, 16, 6);
    in.kpos = in.kpos - T;  // keys at -T..-1: nothing allowed
    EXPECT_EQ(run(in, o).out.abs().max().item<double>(), 0.0) << "T=" << T;
    o.want_probs = true;  // the display's weights of empty rows: zeros, not NaN
    r = run(in, o);
    EXPECT_EQ(r.probs.abs().max().item<double>(), 0.0) << "T=" << T;
  }
}

// The display over a pattern cache's slots: keys in no position order, some slots free (-1), or free slots first and
// then keys in order. Each weight lands in its slot's column; free slots and keys outside the pattern weigh 0.
TEST(Flash, WeightsOverUnorderedSlots) {
  torch::NoGradGuard ng;
  for (int64_t T : {1, 5, 40}) {
    Inputs in = make(1, 4, 2, T, 16, static_cast<uint64_t>(90 + T));
    const int64_t S = T + 12;
    in.k = torch::randn({1, 2, S, 16});                                       // [B, Hkv, S, d]
    in.v = torch::randn({1, 2, S, 16});                                       // [B, Hkv, S, dv]
    in.qpos = in.qpos + 30;                                                   // queries at 30..30+T-1
    auto kp = torch::randperm(S + 30, torch::kLong).narrow(0, 0, S).clone();  // [S] positions in no order
    kp.narrow(0, 0, 3).fill_(-1);                                             // three free slots
    in.kpos = kp;
    flash::Options o;
    o.mask = rule(MaskKind::Window, 9);
    expect_matches(in, o, "slots T=" + std::to_string(T));
    // A pattern cache's prefill: its free slots, then the chunk's keys in position order (index intervals after them)
    in.kpos = torch::cat({torch::full({3}, -1, torch::kLong), torch::arange(30 + T - (S - 3), 30 + T, torch::kLong)});
    expect_matches(in, o, "free slots first T=" + std::to_string(T));
    o.mask = rule(MaskKind::Global, 9, 2);  // two spans per row
    expect_matches(in, o, "free slots first, global T=" + std::to_string(T));
  }
}

// Options::probs_into: with the keys at consecutive positions (after any free slots), each row's weights go to the
// columns of their keys' positions in a caller's strided rows, every other column 0 (whatever it held), the output as
// without; with keys in no order, or a position past the rows' width, nothing is placed and the rows stay untouched.
TEST(Flash, WeightsPlacedByPosition) {
  torch::NoGradGuard ng;
  struct Case {
    int64_t T, free, first;  // queries, free slots before the keys, the first key's position
    MaskDesc mask;
  };
  const std::vector<Case> cases{{40, 0, 0, rule(MaskKind::Causal)},         // a prefill: slot j = position j
                                {5, 0, 0, rule(MaskKind::Causal)},          // the row driver's short texts
                                {12, 7, 0, rule(MaskKind::Window, 4)},      // a pattern cache's first chunk
                                {9, 3, 20, rule(MaskKind::Global, 5, 2)}};  // keys from position 20 on
  for (const Case& c : cases) {
    const std::string what = "T=" + std::to_string(c.T) + " free=" + std::to_string(c.free);
    // free slots, then K keys at positions first..last in order; the queries sit at the last T of them
    const int64_t K = c.T + 10, S = c.free + K, last = c.first + K - 1, W = last + 1 + 5;  // W: the rows' width
    Inputs in = make(1, 4, 2, c.T, 16, static_cast<uint64_t>(300 + c.T));
    in.k = torch::randn({1, 2, S, 16});  // [B, Hkv, S, d]
    in.v = torch::randn({1, 2, S, 16});  // [B, Hkv, S, dv]
    in.kpos = torch::cat({torch::full({c.free}, -1, torch::kLong), torch::arange(c.first, last + 1, torch::kLong)});
    in.qpos = torch::arange(last - c.T + 1, last + 1, torch::kLong);
    flash::Options o;
    o.mask = c.mask;
    o.want_probs = true;
    const flash::Out ref = run(in, o);                                             // probs [1, H, T, S] over the slots
    auto rows = torch::full({1, 4, c.T + 3, W + 4}, std::nan(""), torch::kFloat);  // garbage, longer rows
    o.probs_into = rows.narrow(2, 1, c.T).narrow(3, 0, W);                         // [1, H, T, W] strided
    const flash::Out got = run(in, o);
    ASSERT_TRUE(got.probs_placed) << what;
    EXPECT_TRUE(got.probs.is_same(o.probs_into)) << what;
    EXPECT_TRUE(torch::equal(got.out, ref.out)) << what;
    auto want = torch::zeros_like(o.probs_into);  // [1, H, T, W] by position
    want.narrow(3, c.first, K).copy_(ref.probs.narrow(3, c.free, K));
    EXPECT_TRUE(torch::equal(o.probs_into, want)) << what;
    EXPECT_TRUE(torch::isnan(rows.narrow(2, 0, 1)).all().item<bool>()) << what << ": a row outside the view written";
    // a key past the rows' width: not placed
    flash::Options narrow = o;
    narrow.probs_into = torch::full({1, 4, c.T, last}, std::nan(""), torch::kFloat);
    const flash::Out wide = run(in, narrow);
    EXPECT_FALSE(wide.probs_placed) << what;
    EXPECT_TRUE(torch::equal(wide.probs, ref.probs)) << what;
    EXPECT_TRUE(torch::isnan(narrow.probs_into).all().item<bool>()) << what;
    // keys in no order: not placed
    Inputs shuffled = in;
    const auto perm = torch::randperm(S, torch::kLong);
    shuffled.kpos = in.kpos.index_select(0, perm);
    shuffled.k = in.k.index_select(2, perm);
    shuffled.v = in.v.index_select(2, perm);
    rows.fill_(std::nan(""));
    if (!torch::equal(perm, torch::arange(S, torch::kLong))) {
      const flash::Out un = run(shuffled, o);
      EXPECT_FALSE(un.probs_placed) << what;
      EXPECT_TRUE(un.probs.defined()) << what;
      EXPECT_TRUE(torch::isnan(rows).all().item<bool>()) << what;
    }
  }
}

TEST(Flash, AlibiAndSinkQueries) {
  torch::NoGradGuard ng;
  for (int64_t T : {6, 150}) {
    Inputs in = make(1, 4, 4, T, 16, 8);
    flash::Options o;
    o.mask = rule(MaskKind::Global, 20, 3);
    o.alibi = torch::tensor({0.5f, 0.25f, 0.125f, 0.0625f});  // [H]
    expect_matches(in, o, "alibi T=" + std::to_string(T));
    o.q_alt = torch::randn({1, 4, T, 16});       // [B, H, T, d]
    o.qpos_alt = in.qpos.clamp_max(3 + 20 - 1);  // [T] min(i, S + W - 1)
    o.alt_below = 3;
    expect_matches(in, o, "sinks T=" + std::to_string(T));
  }
}

TEST(Flash, DecodeEqualsPrefill) {
  torch::NoGradGuard ng;
  const int64_t T = 150;
  for (const MaskDesc& desc : {rule(MaskKind::Causal), rule(MaskKind::Window, 20), rule(MaskKind::Dilated, 8, 3),
                               rule(MaskKind::Global, 16, 4)}) {
    Inputs in = make(1, 4, 2, T, 32, 9);
    flash::Options o;
    o.mask = desc;
    auto full = run(in, o).out;  // [B, H, T, dv]
    for (int64_t i : {int64_t(0), int64_t(1), int64_t(63), int64_t(64), T - 1}) {
      Inputs step{in.q.narrow(2, i, 1), in.k.narrow(2, 0, i + 1), in.v.narrow(2, 0, i + 1), in.qpos.narrow(0, i, 1),
                  in.kpos.narrow(0, 0, i + 1)};
      EXPECT_LT(rel_err(run(step, o).out, full.narrow(2, i, 1)), 1e-5) << "decode i=" << i;
    }
    // A chunked prefill: the last 40 queries against every key (the tile driver with a cache).
    Inputs chunk{in.q.narrow(2, T - 40, 40), in.k, in.v, in.qpos.narrow(0, T - 40, 40), in.kpos};
    EXPECT_LT(rel_err(run(chunk, o).out, full.narrow(2, T - 40, 40)), 1e-5);
    // Keys in slot order (a ring buffer): the same answer from permuted slots.
    auto perm = torch::randperm(T);
    Inputs slots{in.q, in.k.index_select(2, perm), in.v.index_select(2, perm), in.qpos, in.kpos.index_select(0, perm)};
    EXPECT_LT(rel_err(run(slots, o).out, full), 1e-5);
  }
}

// The AVX2 loops against the portable ones: the tiles, the rows (decoding, short texts) and the display's rows
// (want_probs), odd and wide head widths, tails of every length.
TEST(Flash, Avx2PathEqualsPortablePath) {
  if (!flash::avx2_available()) GTEST_SKIP() << "this CPU has no AVX2/FMA";
  torch::NoGradGuard ng;
  for (int64_t T : {1, 5, 9, 77, 300})
    for (int64_t d : {16, 13, 40, 128})
      for (bool probs : {false, true}) {
        Inputs in = make(1, 4, 2, T, d, static_cast<uint64_t>(T + d));
        flash::Options o;
        o.mask = MaskDesc{{MaskKind::Window, 50, 0}, {MaskKind::Dilated, 9, 2}};
        o.want_lse = true;
        o.want_probs = probs;
        o.isa = flash::Isa::Portable;
        flash::Out a = run(in, o);
        o.isa = flash::Isa::Avx2;
        flash::Out b = run(in, o);
        const std::string at = "T=" + std::to_string(T) + " d=" + std::to_string(d) + " probs=" + std::to_string(probs);
        EXPECT_LT(rel_err(b.out, a.out), 1e-5) << at;
        EXPECT_LT((b.lse - a.lse).abs().max().item<double>(), 1e-5) << at;
        if (probs) {
          EXPECT_LT((b.probs - a.probs).abs().max().item<double>(), 1e-6) << at;
        }
      }
}

// The row loops one by one, each ISA against the definitions: lengths 0 .. 70 (every tail of 8 lanes), an odd
// feature count, a value width with a tail.
TEST(Flash, RowLoopsMatchTheirDefinitions) {
  using flash_detail::Micro;
  std::vector<const Micro*> micros{&flash_detail::portable_micro()};
  if (flash::avx2_available()) micros.push_back(&flash_detail::avx2_micro());
  const int64_t d = 13, dv = 21, ld = 80;
  torch::manual_seed(7);
  const auto q = torch::randn({d}), k = torch::randn({ld, d}), v = torch::randn({ld, dv});
  for (const Micro* mc : micros)
    for (int64_t n = 0; n <= 70; ++n) {
      const std::string at = "micro " + std::to_string(mc - micros[0]) + " n=" + std::to_string(n);
      std::vector<float> s(size_t(n) + 1, 42.0f);  // one past the end: must stay untouched
      mc->dots(q.data_ptr<float>(), k.data_ptr<float>() + 3 * d, n, d, 0.5f, s.data());
      const auto want = torch::matmul(k.narrow(0, 3, n), q) * 0.5;  // [n]
      for (int64_t j = 0; j < n; ++j) EXPECT_NEAR(s[size_t(j)], want[j].item<float>(), 1e-5) << at;
      EXPECT_EQ(s[size_t(n)], 42.0f) << at;
      if (n == 0) continue;
      EXPECT_EQ(mc->max_of(s.data(), n), *std::max_element(s.begin(), s.begin() + n)) << at;
      const float mx = *std::max_element(s.begin(), s.begin() + n);
      std::vector<float> p(s.begin(), s.begin() + n);
      const float sum = mc->exp_sum(p.data(), n, mx);
      double want_sum = 0;
      for (int64_t j = 0; j < n; ++j) {
        const double e = std::exp(double(s[size_t(j)]) - mx);
        EXPECT_NEAR(p[size_t(j)], e, 1e-6) << at;
        want_sum += e;
      }
      EXPECT_NEAR(sum, want_sum, 1e-5 * want_sum) << at;
      std::vector<float> o(size_t(dv) + 1, 1.0f);  // o += p v, and the slot past dv untouched
      mc->axpy_rows(p.data(), v.data_ptr<float>(), n, dv, o.data());
      const auto ov = torch::matmul(torch::from_blob(p.data(), {n}).clone(), v.narrow(0, 0, n)) + 1.0;  // [dv]
      for (int64_t e = 0; e < dv; ++e) EXPECT_NEAR(o[size_t(e)], ov[e].item<float>(), 1e-4) << at;
      EXPECT_EQ(o[size_t(dv)], 1.0f) << at;
    }
}

// Each work item (a query tile, or a decoding row) is computed whole by one thread in a fixed order, so the thread
// count changes nothing, bit for bit: prefill tiles, a decoding step past the parallel threshold, a local rule.
TEST(Flash, ThreadsGiveTheSameBits) {
  torch::NoGradGuard ng;
  struct Case {
    int64_t T, S;
    MaskRule rule;
  };
  for (const Case& c : {Case{1024, 1024, {MaskKind::Causal, 0, 0}}, Case{1, 8192, {MaskKind::Causal, 0, 0}},
                        Case{777, 777, {MaskKind::Global, 64, 4}}}) {
    Inputs in = make(1, 8, 4, c.S, 16, static_cast<uint64_t>(c.T + c.S));
    in.q = in.q.narrow(2, c.S - c.T, c.T);        // [B, H, T, d] the last T positions' queries
    in.qpos = in.qpos.narrow(0, c.S - c.T, c.T);  // [T]
    flash::Options o;
    o.mask = MaskDesc::all(c.rule);
    o.want_lse = true;
    set_kernel_threads(1);
    flash::Out one = run(in, o);
    set_kernel_threads(3);
    flash::Out three = run(in, o);
    set_kernel_threads(0);
    EXPECT_TRUE(torch::equal(one.out, three.out)) << "T=" << c.T << " S=" << c.S;
    EXPECT_TRUE(torch::equal(one.lse, three.lse)) << "T=" << c.T << " S=" << c.S;
  }
  EXPECT_GE(kernel_threads(), 1);
}

TEST(Flash, Bf16InputsAccumulateInFloat) {
  torch::NoGradGuard ng;
  Inputs in = make(1, 2, 2, 300, 32, 12);
  Inputs bf{in.q.to(torch::kBFloat16), in.k.to(torch::kBFloat16), in.v.to(torch::kBFloat16), in.qpos, in.kpos};
  flash::Options o;
  auto got = run(bf, o).out;  // [B, H, T, dv] bf16
  EXPECT_EQ(got.scalar_type(), torch::kBFloat16);
  Inputs rounded{bf.q.to(torch::kFloat), bf.k.to(torch::kFloat), bf.v.to(torch::kFloat), in.qpos, in.kpos};
  EXPECT_LT(rel_err(got.to(torch::kFloat), naive(rounded, o)), 1e-2);  // the output's own rounding (8 bits)
}

TEST(Flash, RejectsBadShapes) {
  torch::NoGradGuard ng;
  Inputs in = make(1, 6, 4, 10, 16, 1);
  EXPECT_THROW(run(in, {}), std::exception);  // 4 key/value heads do not divide 6
}
