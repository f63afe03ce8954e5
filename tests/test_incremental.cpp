// Incremental maps (attention/incremental.h), for every registered variant at every sweep point (each parameter at
// its minimum, default and maximum): after typing, appends of several characters, an edit in the middle, deletions
// at the end and in the middle, and an edit at the first character, the maps, the computed-pairs mask and the loss
// equal a full Model::attend of the same text. Variants that are computed whole say why, and still match.
#include <gtest/gtest.h>

#include <cmath>

#include "engine.h"
#include "error.h"
#include "incremental.h"
#include "registry.h"
#include "test_util.h"

using namespace attnscope;
using testing_util::small_config;

namespace {

// The texts a person might produce, in order (vocabulary 20, context 48).
std::vector<std::vector<int64_t>> edits() {
  std::vector<int64_t> t;
  uint64_t s = 12345;
  auto next = [&] {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return int64_t((s >> 33) % 19) + 1;
  };
  std::vector<std::vector<int64_t>> out;
  for (int i = 0; i < 10; ++i) t.push_back(next());
  out.push_back(t);  // the first text (cold)
  for (int i = 0; i < 3; ++i) {
    t.push_back(next());
    out.push_back(t);  // typing, one character at a time
  }
  for (int i = 0; i < 20; ++i) t.push_back(next());
  out.push_back(t);  // a paste: 20 at once
  t[17] = (t[17] % 19) + 1;
  out.push_back(t);  // an edit in the middle
  const int64_t gone = t[t.size() - 3];
  t.resize(t.size() - 3);
  out.push_back(t);  // three deleted at the end
  t.push_back(gone);
  out.push_back(t);  // the first of them typed again
  t.pop_back();
  t.push_back(next());
  out.push_back(t);  // one typed where they were (rows an earlier result still reads)
  t.erase(t.begin() + 9);
  out.push_back(t);  // one deleted in the middle
  t.push_back(next());
  out.push_back(t);  // typing again
  out.push_back(t);  // nothing changed
  t[0] = (t[0] % 19) + 1;
  out.push_back(t);  // the first character edited
  while (int64_t(t.size()) < 48) t.push_back(next());
  out.push_back(t);  // up to the context
  return out;
}

void expect_same(const AttentionMaps& got, const AttentionMaps& want, const std::string& what) {
  ASSERT_EQ(got.layers, want.layers) << what;
  ASSERT_EQ(got.heads, want.heads) << what;
  ASSERT_EQ(got.queries, want.queries) << what;
  ASSERT_EQ(got.keys, want.keys) << what;
  ASSERT_FALSE(got.empty()) << what;
  ASSERT_GE(got.planes->rows, got.queries) << what;
  ASSERT_GE(got.planes->cols, got.keys) << what;
  double worst = 0;
  size_t mask_diff = 0;
  std::string worst_at;
  for (int64_t l = 0; l < want.layers; ++l)
    for (int64_t h = 0; h < want.heads; ++h)
      for (int64_t i = 0; i < want.queries; ++i)
        for (int64_t j = 0; j < want.keys; ++j) {
          const double d = std::fabs(double(got.at(l, h, i, j)) - double(want.at(l, h, i, j)));
          if (!(d <= worst))  // NaN counts as the worst
            worst = d, worst_at = "(" + std::to_string(l) + ", " + std::to_string(h) + ", " + std::to_string(i) + ", " +
                                  std::to_string(j) + ")";
          mask_diff += got.computed(l, h, i, j) != want.computed(l, h, i, j);
        }
  EXPECT_LE(worst, 2e-5) << what << ": at " << worst_at;
  EXPECT_EQ(mask_diff, 0u) << what << ": computed-pairs masks differ";
  if (std::isnan(want.loss))
    EXPECT_TRUE(std::isnan(got.loss)) << what;
  else
    EXPECT_NEAR(got.loss, want.loss, 2e-5) << what;
  ASSERT_EQ(got.char_loss.size(), want.queries >= 2 ? size_t(want.queries - 1) : 0u) << what;
  ASSERT_EQ(want.char_loss.size(), got.char_loss.size()) << what;
  double worst_char = 0, mean_char = 0;
  for (size_t i = 0; i < want.char_loss.size(); ++i) {
    const double d = std::fabs(double(got.char_loss[i]) - double(want.char_loss[i]));
    if (!(d <= worst_char)) worst_char = d;  // NaN counts as the worst
    mean_char += want.char_loss[i];
  }
  EXPECT_LE(worst_char, 5e-5) << what << ": per-character losses differ";
  if (!want.char_loss.empty()) {  // the mean of the per-character losses is the loss
    EXPECT_NEAR(mean_char / double(want.char_loss.size()), want.loss, 2e-5) << what;
  }
  EXPECT_EQ(got.layer_variant, want.layer_variant) << what;
  EXPECT_EQ(got.cache_formula_bytes, want.cache_formula_bytes) << what;
  // Both keep each layer's computed pairs (the ones in its mask), so that the window never counts them again.
  std::vector<int64_t> ones(size_t(want.layers), 0);
  for (int64_t l = 0; l < want.layers; ++l)
    for (int64_t h = 0; h < want.heads; ++h)
      for (int64_t i = 0; i < want.queries; ++i)
        for (int64_t j = 0; j < want.keys; ++j) ones[size_t(l)] += want.computed(l, h, i, j);
  EXPECT_EQ(want.layer_pairs, ones) << what << ": Model::attend's pairs per layer";
  EXPECT_EQ(got.layer_pairs, ones) << what << ": the incremental pairs per layer";
}

// An incremental result's planes past its corner: every row of every plane (those of later or longer texts too) is
// zero past its diagonal, weights and mask (causal rows; new planes are allocated unset, so an element nobody wrote
// shows up here or in a later corner).
void expect_zero_past_keys(const AttentionMaps& got, const std::string& what) {
  const MapPlanes& p = *got.planes;
  size_t bad = 0;
  for (int64_t lh = 0; lh < got.layers * got.heads; ++lh)
    for (int64_t i = 0; i < p.rows; ++i)
      for (int64_t j = i + 1; j < p.cols; ++j) {
        const size_t at = size_t((lh * p.rows + i) * p.cols + j);
        bad += p.attn[at] != 0.f || p.mask[at] != 0;
      }
  EXPECT_EQ(bad, 0u) << what << ": elements past a row's keys are not zero";
}

}  // namespace

TEST(Incremental, EveryVariantAtEverySweepPointEqualsAFullRecompute) {
  const Tokenizer tok = Tokenizer::from_corpus("abcdefghijklmnopqrs\n");
  const auto texts = edits();
  int incremental_variants = 0;
  for (const VariantInfo& v : variant_registry()) {
    std::vector<ParamValues> points{{}};
    for (const ParamSpec& p : v.params)
      for (double x : sweep_values(p, 4)) points.push_back({{p.name, x}});
    for (const ParamValues& point : points) {
      std::string name = v.name;
      for (const auto& [k, x] : point) name += " " + k + "=" + std::to_string(x);
      SCOPED_TRACE(name);
      std::shared_ptr<Model> model;
      try {
        model = Model::create(small_config(v.name, point), tok, "cpu", 21);
      } catch (const Error&) {
        continue;  // a point this tiny model cannot take (its own tests cover the message)
      }
      if (v.needs_kv_text) continue;  // reads a second text: the column always computes it whole
      IncrementalAttend inc(model);
      bool went_incremental = false;
      std::vector<std::shared_ptr<const AttentionMaps>> held;  // every result, as a window would keep them
      std::vector<AttentionMaps> wanted;
      for (size_t e = 0; e < texts.size(); ++e) {
        const AttentionMaps& got = inc.update(texts[e]);
        wanted.push_back(model->attend(texts[e]));
        expect_same(got, wanted.back(), name + ", edit " + std::to_string(e));
        if (inc.why_whole().empty()) expect_zero_past_keys(got, name + ", edit " + std::to_string(e));
        held.push_back(inc.shared());
        EXPECT_EQ(inc.stats().reused_rows + inc.stats().computed_rows, int64_t(texts[e].size()));
        went_incremental = went_incremental || (inc.stats().incremental && inc.stats().computed_rows > 0);
        if (::testing::Test::HasFatalFailure()) return;
      }
      // Later updates write into planes earlier results share: what each result reads must not have changed.
      for (size_t e = 0; e < held.size(); ++e) {
        expect_same(*held[e], wanted[e], name + ", edit " + std::to_string(e) + " read again after the last");
        if (::testing::Test::HasFatalFailure()) return;
      }
      if (inc.why_whole().empty()) {
        EXPECT_TRUE(went_incremental) << "claims incremental updates but never made one";
        incremental_variants += point.empty();
      } else {
        EXPECT_FALSE(went_incremental);
      }
    }
  }
  // The exact family, the windows and the low-rank caches (MLA) append rows: most variants do.
  EXPECT_GE(incremental_variants, 12);
}

TEST(Incremental, AppendsComputeOnlyTheNewRows) {
  const Tokenizer tok = Tokenizer::from_corpus("abcdefghijklmnopqrs\n");
  auto model = Model::create(small_config("mha"), tok, "cpu", 21);
  IncrementalAttend inc(model);
  std::vector<int64_t> t{1, 2, 3, 4, 5, 6, 7, 8};
  inc.update(t);
  EXPECT_FALSE(inc.stats().incremental);
  EXPECT_EQ(inc.stats().computed_rows, 8);
  t.push_back(9);
  inc.update(t);
  EXPECT_TRUE(inc.stats().incremental);
  EXPECT_EQ(inc.stats().reused_rows, 8);
  EXPECT_EQ(inc.stats().computed_rows, 1);
  t[3] = 10;  // an edit at position 3: plain KV caches are cut back to it
  inc.update(t);
  EXPECT_TRUE(inc.stats().incremental);
  EXPECT_EQ(inc.stats().reused_rows, 3);
  EXPECT_EQ(inc.stats().computed_rows, 6);
  // The same text again computes nothing and hands out the same maps; the stats stay those of the update that
  // computed them (the worker shares one state between a column and its comparison: whichever asks second must
  // still show what the text's update did).
  const auto before = inc.shared();
  inc.update(t);
  EXPECT_EQ(inc.shared(), before);
  EXPECT_EQ(inc.stats().reused_rows, 3);
  EXPECT_EQ(inc.stats().computed_rows, 6);
  // Typing on shares the planes: a keystroke writes its row, it copies none. So does deleting, and typing the same
  // character again; another character where a deleted one was would overwrite a row an earlier result reads: new
  // planes.
  t.push_back(11);
  inc.update(t);
  EXPECT_EQ(inc.shared()->planes, before->planes);
  EXPECT_GT(before->planes->rows, int64_t(t.size()));
  const int64_t last = t[t.size() - 2];
  t.pop_back();
  t.pop_back();
  inc.update(t);
  EXPECT_EQ(inc.shared()->planes, before->planes);
  t.push_back(last);
  inc.update(t);
  EXPECT_EQ(inc.shared()->planes, before->planes);
  t.push_back(11);
  inc.update(t);
  EXPECT_EQ(inc.shared()->planes, before->planes);
  t.pop_back();
  t.push_back(12);
  inc.update(t);
  EXPECT_NE(inc.shared()->planes, before->planes);
}

TEST(Incremental, WholeVariantsSayWhyAndBadTextsFailAsAttendDoes) {
  const Tokenizer tok = Tokenizer::from_corpus("abcdefghijklmnopqrs\n");
  auto linformer = Model::create(small_config("linformer_causal"), tok, "cpu", 21);
  EXPECT_NE(IncrementalAttend::whole_reason(*linformer).find("running state"), std::string::npos);
  auto linear = Model::create(small_config("linear"), tok, "cpu", 21);  // keeps phi(k) for its rows: appends
  EXPECT_EQ(IncrementalAttend::whole_reason(*linear), "");
  auto mha = Model::create(small_config("mha"), tok, "cpu", 21);
  EXPECT_EQ(IncrementalAttend::whole_reason(*mha), "");
  IncrementalAttend inc(mha);
  EXPECT_THROW(inc.update({}), Error);
  // past the context (48): RoPE runs, computed whole (the caches hold the context); learned positions refuse as
  // attend does, and a failed update leaves a state that still gives right answers
  const std::vector<int64_t> longer(49, 1);
  EXPECT_NEAR(inc.update(longer).loss, mha->attend(longer).loss, 1e-5);
  EXPECT_FALSE(inc.stats().incremental);
  auto learned = Model::create(small_config("mha", {}, PosKind::Learned), tok, "cpu", 21);
  IncrementalAttend inc_learned(learned);
  EXPECT_THROW(learned->attend(longer), Error);
  EXPECT_THROW(inc_learned.update(longer), Error);
  const std::vector<int64_t> t{3, 1, 4, 1, 5};
  EXPECT_NEAR(inc_learned.update(t).loss, learned->attend(t).loss, 1e-5);
  EXPECT_NEAR(inc.update(t).loss, mha->attend(t).loss, 1e-5);
}
