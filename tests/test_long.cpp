// Texts past the training context (attention/long_context.h): for every registered variant the pooled map equals the
// pooling of the dense matrix and a zoomed region equals the dense sub-block, the chunked per-position losses equal
// the full forward's (and so does a Decoder streamed past the context), learned positions refuse with the limit, and
// bounded caches stay bounded over 10,000 steps.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>

#include "engine_impl.h"
#include "error.h"
#include "long_context.h"
#include "nn.h"
#include "registry.h"
#include "torch_test_util.h"

using namespace attnscope;
using testing_util::error_of;
using testing_util::small_config;

namespace {

std::shared_ptr<Model> model_of(const std::string& variant, PosKind pos = PosKind::Rope, int64_t context = 48) {
  Tokenizer tok = Tokenizer::from_corpus("abcdefghijklmnopqrs\n");
  auto m = Model::create(small_config(variant, {}, pos, context), tok, "cpu", 5);
  m->impl->net->eval();
  torch::NoGradGuard ng;
  // Peaked weights (random init attends almost uniformly): scale the query projections of every layer.
  for (auto& p : m->impl->net->named_parameters())
    if (p.key().find(".wq.") != std::string::npos) p.value().mul_(6.0);
  return m;
}

std::vector<int64_t> text_of(int64_t T) {
  std::vector<int64_t> t;
  uint64_t x = 12345;
  for (int64_t i = 0; i < T; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    t.push_back(static_cast<int64_t>((x >> 33) % 20));
  }
  return t;
}

// The pooling of a dense [T, T] matrix (layer l, head h of attend's maps) as PooledMap defines it.
std::vector<float> pool_dense(const AttentionMaps& a, int64_t l, int64_t h, const PooledMap& m) {
  const PoolRegion& g = m.region;
  std::vector<float> out(static_cast<size_t>(m.rows * m.cols), m.mode == PoolMode::Max ? -INFINITY : 0.f);
  std::vector<int64_t> count(out.size(), 0);
  for (int64_t i = g.row0; i < g.row1; ++i)
    for (int64_t j = g.col0; j < g.col1; ++j) {
      const size_t k = static_cast<size_t>(m.pixel_row(i) * m.cols + m.pixel_col(j));
      const float w = a.at(l, h, i, j);
      out[k] = m.mode == PoolMode::Max ? std::max(out[k], w) : out[k] + w;
      ++count[k];
    }
  if (m.mode == PoolMode::Mean)
    for (size_t k = 0; k < out.size(); ++k) out[k] /= static_cast<float>(count[k]);
  return out;
}

double worst(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double w = 0;
  for (size_t i = 0; i < a.size(); ++i) w = std::max(w, double(std::abs(a[i] - b[i])));
  return w;
}

class EveryVariant : public ::testing::TestWithParam<std::string> {};

}  // namespace

// Pooled (max and mean, a pixel grid that does not divide T) == pooling of the dense matrix; a zoomed region ==
// the dense sub-block, past the context of 48 where the variant reaches.
TEST_P(EveryVariant, PooledEqualsPoolingOfTheDenseMatrixAndZoomEqualsTheSubBlock) {
  const std::string v = GetParam();
  auto m = model_of(v);
  const int64_t T = std::min<int64_t>(150, length_limit(*m).tokens);
  const auto text = text_of(T);
  if (get_variant(v).needs_kv_text) {
    EXPECT_NE(error_of([&] { LongAttention probe(m, text); }).find("second text"), std::string::npos);
    return;
  }
  const AttentionMaps dense = m->attend(text);
  LongAttention long_text(m, text);
  for (int64_t l : {0, 1})
    for (PoolMode mode : {PoolMode::Max, PoolMode::Mean}) {
      const PooledMap p = long_text.pooled(l, 2, {}, 37, 23, mode);
      ASSERT_EQ(p.rows, 23);
      ASSERT_EQ(p.cols, 37);
      EXPECT_LT(worst(p.value, pool_dense(dense, l, 2, p)), 2e-5)
          << v << " layer " << l << " " << pool_mode_name(mode) << (p.tiled ? " (tiled)" : " (full)");
    }
  const PoolRegion zoom{T - 30, T, 10, 40};
  const PooledMap z = long_text.pooled(1, 3, zoom, 64, 64);
  ASSERT_EQ(z.rows, 30);
  ASSERT_EQ(z.cols, 30);
  double w = 0;
  for (int64_t i = 0; i < 30; ++i)
    for (int64_t j = 0; j < 30; ++j) w = std::max(w, double(std::abs(z.at(i, j) - dense.at(1, 3, T - 30 + i, 10 + j))));
  EXPECT_LT(w, 2e-5) << v << ": zoomed region";
}

// The chunked per-position losses (through the decoding caches) equal the full forward's, past the context.
TEST_P(EveryVariant, PositionLossesEqualTheFullForward) {
  const std::string v = GetParam();
  const VariantInfo& info = get_variant(v);
  auto m = model_of(v);
  const int64_t T = std::min<int64_t>(150, length_limit(*m).tokens);
  const auto text = text_of(T);
  if (!info.causal || info.needs_kv_text) {
    EXPECT_NE(error_of([&] { position_losses(*m, text); }), "(no error)");
    return;
  }
  const std::vector<float> got = position_losses(*m, text);
  const AttentionMaps dense = m->attend(text);
  ASSERT_EQ(got.size(), dense.char_loss.size());
  EXPECT_LT(worst(got, dense.char_loss), 2e-3) << v;
}

// Streaming: a Decoder run past the context (options.stream_to, no refill) and fed a text reads it as the chunked
// per-position losses do: the probability of each fed token is exp(-loss) at its position; it stops at stream_to.
TEST_P(EveryVariant, StreamedDecoderReadsPastTheContextAsThePositionLosses) {
  const std::string v = GetParam();
  const VariantInfo& info = get_variant(v);
  auto m = model_of(v);
  const int64_t T = std::min<int64_t>(150, length_limit(*m).tokens);
  const auto text = text_of(T);
  GenerateOptions o;
  o.stream_to = T;
  std::unique_ptr<Decoder> d;
  const std::string err = error_of([&] { d = std::make_unique<Decoder>(m, std::vector<int64_t>{text[0]}, o); });
  if (!info.causal || info.needs_kv_text) {
    EXPECT_NE(err, "(no error)") << v;
    return;
  }
  if (!d) {  // a variant without a decoding cache says so
    EXPECT_NE(err.find("decod"), std::string::npos) << v << ": " << err;
    return;
  }
  EXPECT_EQ(d->capacity(), std::max<int64_t>(T, 48)) << v;
  const std::vector<float> want = position_losses(*m, text);  // [T - 1]
  double w = 0;
  for (int64_t k = 1; k < T; ++k) {
    ASSERT_FALSE(d->full()) << v << " at " << k;
    const DecodeFrame f = d->step(text[size_t(k)]);
    EXPECT_EQ(f.position, k);  // the prompt is position 0
    w = std::max(w, std::abs(-std::log(f.probability) - double(want[size_t(k - 1)])));
  }
  EXPECT_LT(w, 2e-3) << v;
  EXPECT_TRUE(d->full()) << v;
  EXPECT_NE(error_of([&] { d->step(0); }).find("used up"), std::string::npos) << v;
}

INSTANTIATE_TEST_SUITE_P(Registry, EveryVariant, ::testing::ValuesIn([] {
                           std::vector<std::string> names;
                           for (const auto& v : variant_registry()) names.push_back(v.name);
                           return names;
                         }()),
                         [](const auto& info) { return info.param; });

// The fused pooled rows (pooled_rows.h: dense causal softmax heads) == pooling of the dense matrix, for every
// position scheme it serves (ALiBi's bias inside the kernel), grids that do not divide T, one pixel per character,
// and regions that start inside a query tile.
TEST(LongContext, FusedPooledRowsEqualTheDenseMatrixForEveryPositionScheme) {
  for (PosKind pos : {PosKind::Rope, PosKind::Alibi, PosKind::XPos, PosKind::None})
    for (const std::string v : {"mha", "gqa"}) {
      SCOPED_TRACE(v + " " + std::to_string(int(pos)));
      auto m = model_of(v, pos);
      float slope = -1;
      ASSERT_TRUE(m->impl->net->attn[1]->dense_causal_rows(3, &slope));
      EXPECT_EQ(slope != 0.0f, pos == PosKind::Alibi);
      const int64_t T = std::min<int64_t>(200, length_limit(*m).tokens);
      const auto text = text_of(T);
      const AttentionMaps dense = m->attend(text);
      LongAttention long_text(m, text);
      for (PoolMode mode : {PoolMode::Max, PoolMode::Mean})
        for (const auto& [region, px] : std::vector<std::pair<PoolRegion, int64_t>>{
                 {{}, 23}, {{}, 1000}, {{70, T, 5, 133}, 17}, {{T - 9, T, 0, T}, 64}}) {
          const PooledMap p = long_text.pooled(1, 3, region, px + 14, px, mode);
          EXPECT_TRUE(p.tiled);
          EXPECT_LT(worst(p.value, pool_dense(dense, 1, 3, p)), 2e-5)
              << pool_mode_name(mode) << " rows " << p.region.row0 << ".." << p.region.row1 << " px " << px;
        }
    }
  float slope = 0;  // a painted mask or a local pattern keeps the row pieces
  EXPECT_FALSE(model_of("sliding_window")->impl->net->attn[0]->dense_causal_rows(0, &slope));
  EXPECT_FALSE(model_of("custom")->impl->net->attn[0]->dense_causal_rows(0, &slope));
}

TEST(LongContext, LearnedPositionsRefusePastTheContextNamingTheLimit) {
  auto m = model_of("mha", PosKind::Learned);
  EXPECT_EQ(length_limit(*m).tokens, 48);
  const auto text = text_of(49);
  for (const std::string& e : {error_of([&] { LongAttention probe(m, text); }),
                               error_of([&] { position_losses(*m, text); }), error_of([&] { m->attend(text); })}) {
    EXPECT_NE(e.find("49 characters"), std::string::npos) << e;
    EXPECT_NE(e.find("learned absolute positions have one embedding per position of the training context (48)"),
              std::string::npos)
        << e;
  }
  EXPECT_EQ(m->attend(text_of(48)).queries, 48);
  GenerateOptions stream;
  stream.stream_to = 49;
  for (const std::string& e :
       {error_of([&] { Decoder d(m, {1}, stream); }), error_of([&] { m->generate({1}, stream); })})
    EXPECT_NE(e.find("learned absolute positions"), std::string::npos) << e;
  stream.stream_to = 48;  // the context: no streaming, nothing to refuse
  EXPECT_EQ(Decoder(m, {1}, stream).capacity(), 48);
  // RoPE, ALiBi, xPos and no positions reach the longest text; a fixed-projection variant stops at its context.
  for (PosKind p : {PosKind::Rope, PosKind::Alibi, PosKind::XPos, PosKind::None})
    EXPECT_EQ(length_limit(*model_of("sliding_window", p)).tokens, kLongestText);
  EXPECT_EQ(length_limit(*model_of("linformer_causal")).tokens, 48);
  EXPECT_NE(error_of([&] { model_of("mha")->attend(text_of(kLongestText + 1)); }).find("the longest text"),
            std::string::npos);
  EXPECT_NE(error_of([&] { model_of("mha")->attend(text_of(2049)); }).find("stop at 2048"), std::string::npos);
}

TEST(LongContext, ExtrapolationCurveAveragesWindowsAndSaysWhenTheyDoNotFit) {
  auto m = model_of("sliding_window", PosKind::Alibi);
  const auto text = text_of(1000);
  const ExtrapolationCurve c = extrapolation_curve(*m, text, 199, 5);
  ASSERT_EQ(c.mean.size(), size_t(199));
  std::vector<double> want(199, 0.0);
  for (int64_t w = 0; w < 5; ++w) {
    const std::vector<int64_t> win(text.begin() + w * 200, text.begin() + (w + 1) * 200);
    const std::vector<float> per = position_losses(*m, win);
    for (size_t i = 0; i < per.size(); ++i) want[i] += per[i] / 5.0;
  }
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(c.mean[i], want[i], 1e-4) << "position " << i;
  EXPECT_NE(error_of([&] { extrapolation_curve(*m, text, 199, 6); }).find("at most 5 windows"), std::string::npos);
  EXPECT_NE(error_of([&] {
              extrapolation_curve(*model_of("mha", PosKind::Learned), text, 199, 1);
            }).find("learned absolute positions"),
            std::string::npos);
}

TEST(LongContext, PooledMapAtLengthKeepsMemoryToRowsAndPixels) {
  // 8,192 characters of a window: the first picture and a zoom, neither holding T x T (the test would need 256 MiB).
  auto m = model_of("sliding_window", PosKind::Alibi);
  LongAttention long_text(m, text_of(8192));
  const PooledMap p = long_text.pooled(1, 0, {}, 256, 256);
  EXPECT_TRUE(p.tiled);
  // The band: a pixel on the diagonal holds weight, a pixel far below it none (window 32 by default).
  EXPECT_GT(p.at(100, 100), 0.f);
  EXPECT_EQ(p.at(200, 10), 0.f);
  const PooledMap z = long_text.pooled(1, 0, {4000, 4064, 3968, 4064}, 256, 256);
  EXPECT_EQ(z.rows, 64);
  EXPECT_EQ(z.cols, 96);
  EXPECT_NE(error_of([&] { long_text.pooled(1, 0, {0, 9000, 0, 10}, 8, 8); }).find("not inside"), std::string::npos);
  EXPECT_NE(error_of([&] { long_text.pooled(2, 0, {}, 8, 8); }).find("layer 2 is out of range"), std::string::npos);
}

// Bounded caches (windows, sinks, a running state) keep their size past the window over 10,000 decode steps.
TEST(LongContext, BoundedCachesStayConstantOver10000DecodeSteps) {
  for (const std::string v : {"sliding_window", "sinks", "longformer", "linear"}) {
    auto m = model_of(v);
    GPTImpl& net = *m->impl->net;
    torch::NoGradGuard ng;
    const int64_t steps = 10000;
    auto caches = net.new_caches(1, steps);
    ForwardOptions o;
    o.caches = &caches;
    const auto text = text_of(steps);
    int64_t settled = -1;
    for (int64_t t = 0; t < steps; ++t) {
      o.pos0 = t;
      net.forward(torch::tensor({text[size_t(t)]}, torch::kLong).view({1, 1}), o);
      int64_t bytes = 0;
      for (const auto& c : caches) bytes += c->bytes();
      if (t == 512) settled = bytes;
      if (t > 512) {
        ASSERT_EQ(bytes, settled) << v << " at step " << t;
      }
    }
    EXPECT_EQ(settled, cache_formula_bytes(*m, steps, 0)) << v;
    EXPECT_LT(settled, cache_formula_bytes(*model_of("mha"), steps, 0) / 20) << v;
  }
}

// generate with stream_to runs on past the context with no refill: a window's cache stays at its size while a dense
// one grows by one position per token; the stream stops at stream_to.
TEST(LongContext, StreamedGenerationKeepsAWindowBoundedAndADenseCacheGrowing) {
  GenerateOptions o;
  o.tokens = 400;
  o.stream_to = 300;  // the context is 48
  for (const std::string v : {"sliding_window", "mha"}) {
    auto m = model_of(v);
    std::vector<int64_t> bytes;
    const auto out = m->generate({1, 2, 3}, o, [&](const DecodeStep& s) { bytes.push_back(s.cache_bytes); });
    ASSERT_EQ(out.size(), 297u) << v;    // positions 3 .. 299 are written; the stream ends at 300
    ASSERT_EQ(bytes.size(), 297u) << v;  // each fed at its position
    if (v == "mha") {
      for (size_t k = 1; k < bytes.size(); ++k) ASSERT_GT(bytes[k], bytes[k - 1]) << "mha at step " << k;
    } else {
      for (size_t k = 100; k < bytes.size(); ++k) ASSERT_EQ(bytes[k], bytes[99]) << v << " at step " << k;
    }
  }
}
