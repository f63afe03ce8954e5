// The GUI's worker thread (app/gui/worker.cpp) without a window: the UI thread's side of the protocol, hammered.
// Many latest-wins requests per column while results are consumed; a result is never for stale or other inputs,
// and the last request of every column is the one that ends up shown; forgotten columns get nothing; generation
// jobs replace each other; a model reload mid-stream; shutdown while busy returns promptly. Built into the suite
// and, under ThreadSanitizer, by scripts/sanitize.sh (LibTorch is not instrumented: tests/tsan.supp).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "engine.h"
#include "long_context.h"
#include "registry.h"
#include "job.h"
#include "worker.h"

using namespace attnscope;
using namespace attnscope::session;
using Clock = std::chrono::steady_clock;

namespace {

const char* kVocab = "\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

// A tiny checkpoint of our own (1 layer, 2 heads, context 32), written once per process.
const std::string& tiny_model_dir() {
  static const std::string dir = [] {
    const std::string d =
        (std::filesystem::temp_directory_path() / ("attnscope_test_worker_" + std::to_string(getpid()))).string();
    ModelConfig cfg;
    cfg.vocab_size = 65;
    cfg.n_layer = 1;
    cfg.d_model = 32;
    cfg.n_head = 2;
    cfg.context = 32;
    cfg.set_all_layers("mha", {});
    Model::create(cfg, Tokenizer(kVocab), "cpu", 7)->save(d, DType::F32);
    return d;
  }();
  return dir;
}

struct Cleanup {
  ~Cleanup() {
    std::error_code ec;
    std::filesystem::remove_all(
        std::filesystem::temp_directory_path() / ("attnscope_test_worker_" + std::to_string(getpid())), ec);
  }
} cleanup;

// The inputs of request `seq` of `column`: its own tokens (1..32 of them), so a result can be traced to them.
std::vector<int64_t> tokens_for(int column, uint64_t seq) {
  std::vector<int64_t> t(1 + (seq * 7 + uint64_t(column)) % 32);
  for (size_t i = 0; i < t.size(); ++i) t[i] = int64_t((seq * 31 + uint64_t(column) * 5 + i * 3) % 65);
  return t;
}

ColumnRequest request_for(int column, uint64_t seq) {
  ColumnRequest r;
  r.seq = seq;
  // a few variants and parameters, so the model caches and conversions are exercised too
  switch (seq % 4) {
    case 0: r.variant = "mha"; break;
    case 1:
      r.variant = "gqa";
      r.params["groups"] = 1;
      break;
    case 2:
      r.variant = "sliding_window";
      r.params["window"] = double(1 + seq % 8);
      break;
    default: r.variant = "mqa"; break;
  }
  r.tokens = tokens_for(column, seq);
  return r;
}

bool wait_until(const std::function<bool()>& done, double seconds) {
  const auto end = Clock::now() + std::chrono::milliseconds(int64_t(seconds * 1000));
  while (!done()) {
    if (Clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// Until columns 0..n-1 all show request `seq` (false after two minutes).
bool columns_show(const Worker& w, int n, uint64_t seq) {
  return wait_until(
      [&] {
        for (int c = 0; c < n; ++c) {
          auto r = w.result(c);
          if (!r || r->seq != seq) return false;
        }
        return true;
      },
      120);
}

void wait_for_model(Worker& w) {
  ASSERT_TRUE(wait_until([&] { return w.model() != nullptr || !w.model_error().empty(); }, 120));
  ASSERT_EQ(w.model_error(), "");
}

// A result must be exactly what its request asked for.
void expect_matches(const ColumnResult& r, int column) {
  EXPECT_TRUE(r.ok) << "column " << column << " seq " << r.seq << ": " << r.error;
  EXPECT_EQ(r.tokens, tokens_for(column, r.seq))
      << "column " << column << ": result of seq " << r.seq << " carries other tokens";
  if (r.ok) {
    EXPECT_EQ(r.maps->queries, int64_t(r.tokens.size()));
    EXPECT_EQ(r.maps->layers, 1);
    ASSERT_FALSE(r.maps->empty());
    EXPECT_GE(r.maps->planes->attn.size(), size_t(r.maps->layers * r.maps->heads * r.maps->queries * r.maps->keys));
  }
}

}  // namespace

// The UI thread submits thousands of edits (a slider being dragged) to several columns while polling results like
// the frame loop does. Results only move forward, always match their request, and the last request wins.
void latest_wins_under_load(int column_threads) {
  Worker w;
  w.set_column_threads(column_threads);
  w.load_model(tiny_model_dir());
  wait_for_model(w);
  constexpr int kColumns = 3;
  const int kRequests =
      std::getenv("ATTNSCOPE_WORKER_REQUESTS") ? std::atoi(std::getenv("ATTNSCOPE_WORKER_REQUESTS")) : 1500;
  std::vector<uint64_t> seen(kColumns, 0), last(kColumns, 0);
  std::vector<std::shared_ptr<const ColumnResult>> shown(kColumns);
  size_t observed = 0;
  std::mt19937 rng(12345);
  auto poll = [&] {
    for (int c = 0; c < kColumns; ++c) {
      auto r = w.result(c);
      if (!r || r == shown[size_t(c)]) continue;
      EXPECT_GE(r->seq, seen[size_t(c)]) << "column " << c << ": a result went back in time";
      EXPECT_LE(r->seq, last[size_t(c)]) << "column " << c << ": a result for a request never made";
      expect_matches(*r, c);
      seen[size_t(c)] = r->seq;
      shown[size_t(c)] = r;
      ++observed;
      (void)w.timing(c);  // read like the timing row does
    }
  };
  for (int i = 0; i < kRequests; ++i) {
    const int c = int(rng() % kColumns);
    last[size_t(c)] += 1;
    w.submit(c, request_for(c, last[size_t(c)]));
    if (rng() % 4 == 0) poll();
    if (rng() % 64 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // a frame
    (void)w.busy();
    (void)w.cached_models();
  }
  ASSERT_TRUE(wait_until(
      [&] {
        poll();
        bool all = true;
        for (int c = 0; c < kColumns; ++c) all = all && seen[size_t(c)] == last[size_t(c)];
        return all;
      },
      300))
      << "the latest requests were not all computed";
  for (int c = 0; c < kColumns; ++c) {
    auto r = w.result(c);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->seq, last[size_t(c)]) << "column " << c << ": the last request did not win";
    expect_matches(*r, c);
  }
  EXPECT_TRUE(wait_until([&] { return !w.busy(); }, 120)) << "still busy after the timing repeats";
  std::printf(
      "[ worker   ] %d requests, %d column(s) at once, %zu distinct results seen by the UI thread, %zu cached "
      "models\n",
      kRequests, column_threads, observed, w.cached_models());
}

TEST(Worker, LatestWinsUnderLoad) { latest_wins_under_load(1); }
// The same with three columns computed at once (run_column's parallel batch; under ThreadSanitizer in CI).
TEST(Worker, LatestWinsUnderLoadWithColumnsInParallel) { latest_wins_under_load(3); }

// Typing through the worker: every keystroke's result (incremental rows, incremental comparison loss) equals a full
// Model::attend of the same text, with two columns computed at once; the column says how many rows it reused.
TEST(Worker, TypingResultsEqualAFullRecompute) {
  Worker w;
  w.set_column_threads(2);
  w.load_model(tiny_model_dir());
  wait_for_model(w);
  std::shared_ptr<const Model> m = Model::load(tiny_model_dir(), "cpu");  // not the worker's: it times its own
  std::vector<int64_t> text{20, 21, 22};
  uint64_t seq = 0;
  for (int k = 0; k < 12; ++k) {
    if (k == 8)
      text[1] = 30;  // an edit in the middle
    else
      text.push_back(int64_t(23 + k));
    ++seq;
    for (int c = 0; c < 2; ++c) {
      ColumnRequest r;
      r.seq = seq;
      r.variant = c == 0 ? "mha" : "sliding_window";
      if (c == 1) r.params["window"] = 4;
      r.tokens = text;
      w.submit(c, r);
    }
    ASSERT_TRUE(columns_show(w, 2, seq));
    auto r = w.result(0);
    ASSERT_TRUE(r->ok) << r->error;
    const AttentionMaps want = m->attend(text);
    ASSERT_EQ(r->maps->queries, want.queries);
    ASSERT_EQ(r->maps->keys, want.keys);
    for (int64_t l = 0; l < want.layers; ++l)
      for (int64_t h = 0; h < want.heads; ++h)
        for (int64_t i = 0; i < want.queries; ++i)
          for (int64_t j = 0; j < want.keys; ++j)
            ASSERT_NEAR(r->maps->at(l, h, i, j), want.at(l, h, i, j), 2e-5) << "at " << l << " " << h << " " << i;
    EXPECT_NEAR(r->maps->loss, want.loss, 2e-5);
    EXPECT_EQ(r->reused_rows + r->computed_rows, int64_t(text.size()));
    if (k > 0 && k != 8) {
      EXPECT_EQ(r->computed_rows, 1) << "keystroke " << k;
    }
    if (k == 8) {
      EXPECT_EQ(r->reused_rows, 1) << "the edit at position 1";
    }
    auto sw = w.result(1);
    ASSERT_TRUE(sw->ok) << sw->error;
    EXPECT_EQ(sw->whole_reason, "");
    EXPECT_NEAR(sw->base_loss, want.loss, 2e-5);  // converted: compared with the base on the same text
  }
}

// The bundled mha column runs the checkpoint it is compared with (MHA on the same budget), unchanged: one forward
// serves both, and its loss is its comparison's on every keystroke. Another column (gqa, trained on the same budget)
// is compared with the same checkpoint and gets the same comparison loss; a knock-out makes the mha column a
// different model, compared with the checkpoint as it is.
TEST(Worker, TheBundledMhaColumnIsItsOwnComparison) {
  Worker w;
  w.set_column_threads(2);
  w.load_model(default_model_dir());
  wait_for_model(w);
  const std::vector<int64_t> prefix =
      w.model()->tokenizer().encode_or_throw("First Citizen: Before we proceed", UnknownPolicy::Skip);
  uint64_t seq = 0;
  for (size_t n = prefix.size() - 3; n <= prefix.size(); ++n) {  // three keystrokes after the first text
    ++seq;
    for (int c = 0; c < 2; ++c) {
      ColumnRequest r;
      r.seq = seq;
      r.variant = c == 0 ? "mha" : "gqa";
      r.tokens.assign(prefix.begin(), prefix.begin() + long(n));
      w.submit(c, r);
    }
    ASSERT_TRUE(columns_show(w, 2, seq));
    auto mha = w.result(0), gqa = w.result(1);
    ASSERT_TRUE(mha->ok && gqa->ok) << mha->error << gqa->error;
    ASSERT_FALSE(mha->comparison.dir.empty());
    EXPECT_EQ(std::filesystem::weakly_canonical(mha->comparison.dir),
              std::filesystem::weakly_canonical(mha->model_dir));
    EXPECT_EQ(mha->base_loss, mha->maps->loss);
    EXPECT_EQ(gqa->base_loss, mha->maps->loss);
    if (seq > 1) {
      EXPECT_EQ(mha->computed_rows, 1) << "keystroke " << seq;
    }
  }
  ColumnRequest k;
  k.seq = ++seq;
  k.variant = "mha";
  k.tokens = prefix;
  k.knockouts = {{0, 0}};
  w.submit(0, k);
  ASSERT_TRUE(wait_until([&] { return w.result(0) && w.result(0)->seq == seq; }, 120));
  auto knocked = w.result(0);
  ASSERT_TRUE(knocked->ok) << knocked->error;
  EXPECT_NE(knocked->maps->loss, knocked->base_loss);
  EXPECT_NEAR(knocked->base_loss, knocked->unknocked_loss, 1e-5);  // the checkpoint as it is (another path: rounding)
}

// The rule for a column that is its own comparison: the same variant and parameters on every layer, nothing painted.
TEST(Worker, SameAttentionNeedsEveryLayersVariantAndParameters) {
  std::shared_ptr<const Model> m = Model::load(tiny_model_dir(), "cpu");
  EXPECT_TRUE(same_attention(m->config(), m->with_variant("mha", {})->config()));
  EXPECT_FALSE(same_attention(m->config(), m->with_variant("mha", {{"impl", 1}})->config()));  // sdpa
  EXPECT_FALSE(same_attention(m->config(), m->with_variant("gqa", {})->config()));
  ModelConfig deeper = m->config();
  deeper.layers.push_back(deeper.layers[0]);
  EXPECT_FALSE(same_attention(m->config(), deeper));
  ModelConfig painted = m->config();
  painted.layers[0].mask = causal_mask(4);
  EXPECT_FALSE(same_attention(m->config(), painted));
}

// Knock-outs, every variant: a request knocking head 0 of the (only) layer out recomputes the column with that
// head's output zeroed. The maps are those of the plain column (the head's output feeds no later layer), the loss
// changes, the reference loss is the plain column's, and clearing the knock-out gives the plain result back.
TEST(Worker, KnockOutsRecomputeTheColumnForEveryVariant) {
  Worker w;
  w.load_model(tiny_model_dir());
  wait_for_model(w);
  uint64_t seq = 0;
  auto run = [&](const std::string& v, std::vector<HeadKnockout> k) {
    ColumnRequest r;
    r.seq = ++seq;
    r.variant = v;
    r.tokens = {20, 21, 22, 23, 20, 21, 22, 24, 30, 31};
    if (get_variant(v).needs_kv_text) r.kv_tokens = {40, 41, 42, 43, 44};
    r.knockouts = std::move(k);
    w.submit(0, r);
    EXPECT_TRUE(wait_until(
        [&] {
          auto x = w.result(0);
          return x && x->seq == seq;
        },
        120));
    return w.result(0);
  };
  int knocked = 0;
  for (const VariantInfo& v : variant_registry()) {
    auto plain = run(v.name, {});
    if (!plain || !plain->ok) continue;  // defaults impossible on 2 heads (reported by ErrorsAreResultsToo's kind)
    auto ko = run(v.name, {HeadKnockout{0, 0}});
    ASSERT_TRUE(ko && ko->ok) << v.name << ": " << (ko ? ko->error : "no result");
    ASSERT_EQ(ko->knockouts.size(), 1u) << v.name;
    EXPECT_NEAR(ko->unknocked_loss, plain->maps->loss, 2e-5) << v.name;
    EXPECT_GT(std::fabs(ko->maps->loss - plain->maps->loss), 1e-6) << v.name << ": the knock-out changed nothing";
    ASSERT_EQ(ko->maps->queries, plain->maps->queries) << v.name;
    for (int64_t l = 0; l < plain->maps->layers; ++l)
      for (int64_t h = 0; h < plain->maps->heads; ++h) {
        const std::vector<float> a = ko->maps->head_attn(l, h), b = plain->maps->head_attn(l, h);  // [T, T]
        ASSERT_EQ(a.size(), b.size()) << v.name;
        for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 2e-5) << v.name << " at " << i;
      }
    auto back = run(v.name, {});
    ASSERT_TRUE(back && back->ok) << v.name;
    EXPECT_TRUE(back->knockouts.empty() && std::isnan(back->unknocked_loss)) << v.name;
    EXPECT_NEAR(back->maps->loss, plain->maps->loss, 2e-5) << v.name;
    auto bad = run(v.name, {HeadKnockout{0, 7}});  // 2 heads
    ASSERT_TRUE(bad) << v.name;
    EXPECT_FALSE(bad->ok) << v.name << ": head 7 of 2 was accepted";
    ++knocked;
  }
  EXPECT_GE(knocked, int(variant_registry().size()) - 3);  // (a few defaults do not fit a 2-head model)
}

// Every variant: the exact-softmax reference (a second whole forward) is computed when the worker is idle and
// arrives as a result of the same seq holding the same maps (shared, not copied), equal to reference_maps() on the
// column's model; after a typed character, the new text's. Variants without a softmax reference get none.
TEST(Worker, ReferencesArriveWhenIdleWithTheSameMapsForEveryVariant) {
  Worker w;
  w.load_model(tiny_model_dir());
  wait_for_model(w);
  uint64_t seq = 0;
  int with_reference = 0;
  for (const VariantInfo& v : variant_registry()) {
    std::vector<int64_t> text{20, 21, 22, 23, 20, 21, 22, 24, 30, 31};
    for (int k = 0; k < 2; ++k, text.push_back(25)) {
      ColumnRequest r;
      r.seq = ++seq;
      r.variant = v.name;
      r.tokens = text;
      if (v.needs_kv_text) r.kv_tokens = {40, 41, 42, 43, 44};
      w.submit(0, r);
      ASSERT_TRUE(wait_until(
          [&] {
            auto x = w.result(0);
            return x && x->seq == seq;
          },
          120));
      auto first = w.result(0);
      if (!first->ok) break;  // defaults impossible on 2 heads (ErrorsAreResultsToo)
      ASSERT_TRUE(wait_until([&] { return !w.busy(); }, 120)) << v.name;
      auto last = w.result(0);
      ASSERT_EQ(last->seq, seq) << v.name;
      EXPECT_FALSE(last->reference_pending) << v.name;
      EXPECT_EQ(last->maps, first->maps) << v.name << ": the maps were copied, not shared";
      // (the first result polled may already carry its reference: the worker is fast on a 1-layer model)
      std::shared_ptr<const Model> m =
          Model::load(tiny_model_dir(), "cpu")->with_variant(v.name, resolve_params(v.params, v.name, {}));
      const bool exact = v.family == "exact" || v.family == "masked";
      const ReferenceMaps want =
          exact || v.needs_kv_text || !has_softmax_reference(*m) ? ReferenceMaps{} : reference_maps(*m, text);
      if (std::count(want.available.begin(), want.available.end(), 1) == 0) {
        EXPECT_EQ(last->reference.layers, 0) << v.name << ": a reference where none applies";
        continue;
      }
      ++with_reference;
      ASSERT_EQ(last->reference.layers, want.layers) << v.name;
      ASSERT_EQ(last->reference.mean_kl.size(), want.mean_kl.size()) << v.name;
      for (size_t i = 0; i < want.mean_kl.size(); ++i)
        EXPECT_NEAR(last->reference.mean_kl[i], want.mean_kl[i], 1e-4) << v.name << " head " << i;
    }
  }
  EXPECT_GE(with_reference, 6);  // linear, performer, cosformer, nystrom, ... each typed twice
}

// While requests keep coming (someone typing), no timing repeat runs: the idle jobs wait kIdleAfter past the last
// request. Once they stop, the shown result gets its kTimingRuns repeats.
TEST(Worker, TimingWaitsUntilTheTextRests) {
  Worker w;
  w.load_model(tiny_model_dir());
  wait_for_model(w);
  std::vector<int64_t> text{20, 21, 22, 23};
  uint64_t seq = 0;
  size_t timed_while_typing = 0;
  const auto typing_until = Clock::now() + 3 * kIdleAfter;
  while (Clock::now() < typing_until) {  // a keystroke every kIdleAfter / 8
    ColumnRequest r;
    r.seq = ++seq;
    r.variant = "mha";
    r.tokens = text;
    w.submit(0, r);
    text.push_back(20 + int64_t(seq % 10));
    if (text.size() > 30) text.resize(4);
    std::this_thread::sleep_for(kIdleAfter / 8);
    timed_while_typing += w.timing(0).ms.size();
  }
  EXPECT_EQ(timed_while_typing, 0u) << "timing repeats ran between keystrokes";
  ASSERT_TRUE(wait_until([&] { return !w.busy(); }, 120));
  EXPECT_EQ(w.timing(0).seq, seq);
  EXPECT_EQ(w.timing(0).ms.size(), kTimingRuns);
}

// The window's event wait ends when a result is published: one call per published column result.
TEST(Worker, WakesItsOwnerWhenAResultIsPublished) {
  Worker w;
  std::atomic<int> wakes{0};
  w.set_on_publish([&] { ++wakes; });
  w.load_model(tiny_model_dir());
  wait_for_model(w);
  EXPECT_EQ(wakes.load(), 0);
  for (int c = 0; c < 3; ++c) w.submit(c, request_for(c, 1));
  ASSERT_TRUE(wait_until([&] { return w.result(0) && w.result(1) && w.result(2); }, 60));
  ASSERT_TRUE(wait_until([&] { return wakes.load() >= 3; }, 5)) << wakes.load();
}

// Removed columns get no result, even when their request was already running.
TEST(Worker, ForgottenColumnsStayEmpty) {
  Worker w;
  w.load_model(tiny_model_dir());
  wait_for_model(w);
  for (int c = 10; c < 40; ++c) {
    w.submit(c, request_for(c, 1));
    if (c % 2 == 0) std::this_thread::sleep_for(std::chrono::microseconds(300));
    w.forget(c);
  }
  w.submit(99, request_for(99, 1));
  ASSERT_TRUE(wait_until([&] { return w.result(99) != nullptr && !w.busy(); }, 120));
  for (int c = 10; c < 40; ++c) EXPECT_EQ(w.result(c), nullptr) << "forgotten column " << c << " has a result";
  expect_matches(*w.result(99), 99);
}

// An impossible parameter is an error in its column, and the next good request replaces it.
TEST(Worker, ErrorsAreResultsToo) {
  Worker w;
  w.load_model(tiny_model_dir());
  wait_for_model(w);
  ColumnRequest bad = request_for(0, 1);
  bad.variant = "gqa";
  bad.params["groups"] = 3;  // does not divide 2 heads
  w.submit(0, bad);
  ASSERT_TRUE(wait_until([&] { return w.result(0) != nullptr; }, 120));
  EXPECT_FALSE(w.result(0)->ok);
  EXPECT_NE(w.result(0)->error.find("groups = 3 does not divide"), std::string::npos) << w.result(0)->error;
  ColumnRequest empty = request_for(0, 2);
  empty.tokens.clear();
  w.submit(0, empty);
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = w.result(0);
        return r && r->seq == 2;
      },
      120));
  EXPECT_EQ(w.result(0)->error, "the text is empty: type at least one character");
  w.submit(0, request_for(0, 3));
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = w.result(0);
        return r && r->seq == 3;
      },
      120));
  expect_matches(*w.result(0), 0);
}

// Generation jobs replace each other: the state always belongs to the newest job, which finishes.
TEST(Worker, GenerationLatestWins) {
  Worker w;
  w.load_model(tiny_model_dir());
  wait_for_model(w);
  uint64_t id = 0;
  for (int i = 0; i < 40; ++i) {
    GenerateJob j;
    j.prompt = {1, 2, 3, int64_t(i % 65)};
    j.options.tokens = 20;
    j.options.seed = uint64_t(i);
    id = w.start_generate(j);
    GenerateState g = w.generate_state();
    EXPECT_EQ(g.job, id);
    if (i % 3 == 0) w.submit(i % 2, request_for(i % 2, uint64_t(i + 1)));  // column work in between
    if (i % 5 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(wait_until([&] { return w.generate_state().done; }, 120));
  GenerateState g = w.generate_state();
  EXPECT_EQ(g.job, id);
  EXPECT_FALSE(g.running);
  EXPECT_EQ(g.error, "");
  EXPECT_EQ(g.text.size(), 20u);
  // a cancelled job stops
  GenerateJob j;
  j.prompt = {1, 2, 3};
  j.options.tokens = 100000;
  w.start_generate(j);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  w.cancel_generate();
  EXPECT_TRUE(wait_until([&] { return !w.generate_state().running; }, 60)) << "cancel did not stop generation";
}

// Lockstep decoding of a fed text past the context (context 32, streamed to 632 positions): every column reads the
// fed tokens, the MHA column's probabilities are exactly the position losses of the model, a window's cache stays
// bounded while a dense one grows, old frames drop their rows (kFramesWithWeights), and the session ends with the feed.
TEST(Worker, DecodeStreamsAFedTextPastTheContext) {
  Worker w;
  w.load_model(tiny_model_dir());
  wait_for_model(w);
  DecodeJob j;
  auto column = [](int id, const std::string& variant, ParamValues params) {
    DecodeColumn c;
    c.column = id;
    c.model.variant = variant;
    c.model.params = std::move(params);
    return c;
  };
  j.columns = {column(0, "mha", {}), column(1, "sliding_window", {{"window", 8}})};
  std::vector<int64_t> text(632);
  for (size_t i = 0; i < text.size(); ++i) text[i] = int64_t((i * 7 + i / 5) % 65);
  j.prompt = {text[0]};
  j.feed.assign(text.begin() + 1, text.end());
  j.options.stream_to = 632;
  const uint64_t session = w.start_decode(j);
  ASSERT_TRUE(wait_until([&] { return !w.decode_state().preparing; }, 120));
  ASSERT_EQ(w.decode_state().error, "");
  EXPECT_EQ(w.decode_state().capacity, 632);
  EXPECT_TRUE(w.decode_state().fed);
  w.request_steps(1000);  // more than the feed: it stops at 631
  ASSERT_TRUE(wait_until([&] { return w.decode_state().full; }, 300));
  const DecodeState st = w.decode_state();
  EXPECT_EQ(st.session, session);
  ASSERT_EQ(st.tracks.size(), 2u);
  const std::vector<float> want = position_losses(*w.model(), text);  // [631]
  for (const DecodeTrack& t : st.tracks) {
    ASSERT_EQ(t.error, "") << t.variant;
    ASSERT_EQ(t.frames.size(), 631u) << t.variant;
    ASSERT_EQ(t.mean_loss.size(), 631u) << t.variant;
    for (size_t k : {size_t(0), size_t(10), size_t(31), size_t(32), size_t(630)}) {  // the running mean, directly
      double sum = 0;
      const size_t n = std::min<size_t>(k + 1, kLossMean);
      for (size_t i = k + 1 - n; i <= k; ++i) sum += -std::log(t.frames[i]->probability);
      EXPECT_NEAR(t.mean_loss[k], sum / double(n), 1e-9) << t.variant << " step " << k;
    }
    for (size_t k = 0; k < t.frames.size(); ++k) {
      const DecodeFrame& f = *t.frames[k];
      ASSERT_EQ(f.token, text[k + 1]) << t.variant << " step " << k;
      ASSERT_EQ(f.position, int64_t(k + 1));
      EXPECT_EQ(f.held.empty(), k + kFramesWithWeights < t.frames.size()) << t.variant << " step " << k;
      if (t.variant == "mha") {
        ASSERT_NEAR(-std::log(f.probability), double(want[k]), 2e-3) << "step " << k;
        if (k > 0) {
          ASSERT_GT(f.bytes(), t.frames[k - 1]->bytes()) << "step " << k;
        }
      } else if (k > 40) {
        ASSERT_EQ(f.bytes(), t.frames[40]->bytes()) << t.variant << " step " << k;
      }
    }
  }
}

// Stop pressed before the worker picked the job up (it was busy with columns): generation is not left "running"
// forever (which would also keep busy() true).
TEST(Worker, CancelBeforeStart) {
  Worker w;
  w.load_model(tiny_model_dir());
  wait_for_model(w);
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 8; ++i) w.submit(i % 2, request_for(i % 2, uint64_t(round * 8 + i + 1)));
    GenerateJob j;
    j.prompt = {1, 2, 3};
    j.options.tokens = 50;
    w.start_generate(j);
    if (round % 2) w.start_generate(j);  // a second job replacing the first, then Stop
    w.cancel_generate();
    ASSERT_TRUE(wait_until([&] { return !w.generate_state().running; }, 60))
        << "round " << round << ": generation still running after Stop";
    ASSERT_TRUE(wait_until([&] { return !w.busy(); }, 120)) << "round " << round << ": worker busy forever";
  }
}

// Reloading the model while requests are in flight: afterwards every column computes on the new model.
TEST(Worker, ReloadWhileComputing) {
  Worker w;
  w.load_model(tiny_model_dir());
  wait_for_model(w);
  uint64_t seq = 0;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 50; ++i) w.submit(i % 2, request_for(i % 2, ++seq));
    w.load_model(tiny_model_dir());
    for (int i = 0; i < 50; ++i) {
      w.submit(i % 2, request_for(i % 2, ++seq));
      (void)w.loading();
      (void)w.model();
    }
  }
  wait_for_model(w);
  // the UI resubmits after a load (requests made while loading are dropped): do the same
  w.submit(0, request_for(0, ++seq));
  w.submit(1, request_for(1, ++seq));
  ASSERT_TRUE(wait_until(
      [&] {
        auto a = w.result(0), b = w.result(1);
        return a && b && a->seq == seq - 1 && b->seq == seq;
      },
      120));
  expect_matches(*w.result(0), 0);
  expect_matches(*w.result(1), 1);
}

// The window closes while the worker is busy: the destructor stops it promptly and cleanly (no hang, no crash).
TEST(Worker, ShutdownWhileBusy) {
  for (int round = 0; round < 5; ++round) {
    auto w = std::make_unique<Worker>();
    w->load_model(tiny_model_dir());
    if (round > 0) wait_for_model(*w);  // round 0: shut down while the model is still loading
    for (int i = 0; i < 200; ++i) w->submit(i % 4, request_for(i % 4, uint64_t(i + 1)));
    GenerateJob j;
    j.prompt = {1, 2, 3};
    j.options.tokens = 100000;
    w->start_generate(j);
    if (round % 2) std::this_thread::sleep_for(std::chrono::milliseconds(5 * round));
    const auto t0 = Clock::now();
    auto done = std::async(std::launch::async, [&] { w.reset(); });
    ASSERT_EQ(done.wait_for(std::chrono::seconds(60)), std::future_status::ready) << "shutdown hangs";
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    EXPECT_LT(s, 30.0) << "shutdown took " << s << " s";
  }
}

TEST(LruCache, EvictsTheLeastRecentlyUsedWithinTheBudget) {
  LruCache<int> c(100);
  c.put("a", 1, 40);
  c.put("b", 2, 40);
  ASSERT_NE(c.find("a"), nullptr);  // a is now the most recent: b goes first
  c.put("c", 3, 40);
  EXPECT_EQ(c.find("b"), nullptr);
  EXPECT_EQ(*c.find("a"), 1);
  EXPECT_EQ(*c.find("c"), 3);
  EXPECT_EQ(c.bytes(), 80u);
  c.put("a", 4, 10);  // replacing frees the old entry's bytes
  EXPECT_EQ(c.bytes(), 50u);
  c.put("big", 5, 500);  // larger than the budget: kept alone
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(*c.find("big"), 5);
}

// An entry a column still holds (its model in use) is not evicted, whatever the budget; once let go it is.
TEST(LruCache, KeepsEntriesInUseElsewhere) {
  LruCache<std::shared_ptr<int>> c(100);
  auto held = std::make_shared<int>(1);
  c.put("held", held, 60);
  c.put("b", std::make_shared<int>(2), 60);  // over the budget, but "held" is in use: both stay
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.bytes(), 120u);
  c.put("c", std::make_shared<int>(3), 60);  // b is free: it goes; held stays
  EXPECT_EQ(c.find("b"), nullptr);
  ASSERT_NE(c.find("held"), nullptr);
  held.reset();
  c.put("d", std::make_shared<int>(4), 60);  // c is older than held now (held was just found): c, then held go
  EXPECT_EQ(c.find("c"), nullptr);
  EXPECT_EQ(c.find("held"), nullptr);
  EXPECT_EQ(c.bytes(), 60u);
}

// Slider play over a weight-changing parameter (every position a new converted model): the model caches stay
// within their bound, and going back to a recent position is served from the cache.
TEST(Worker, ModelCachesStayBoundedUnderSliderPlay) {
  const size_t bound = 4 * model_bytes(*Model::load(tiny_model_dir(), "cpu"));
  Worker w(bound);
  w.load_model(tiny_model_dir());
  wait_for_model(w);
  uint64_t seq = 0;
  auto run = [&](double groups_or_rank, const std::string& variant) {
    ColumnRequest r;
    r.seq = ++seq;
    r.variant = variant;
    r.params[variant == "mla" ? "rank" : "groups"] = groups_or_rank;
    r.tokens = tokens_for(0, 1);
    w.submit(0, r);
    EXPECT_TRUE(wait_until(
        [&] {
          auto res = w.result(0);
          return res && res->seq == seq;
        },
        60));
    return w.result(0);
  };
  for (int rank = 16; rank < 32; ++rank) {  // the slider's range starts at 16
    auto res = run(rank, "mla");
    ASSERT_TRUE(res->ok) << res->error;
    EXPECT_LE(w.cached_model_bytes(), 2 * bound) << "after rank " << rank;
  }
  EXPECT_LE(w.cached_models(), 8u);
  EXPECT_TRUE(run(31, "mla")->model_cached);   // the last position: still cached
  EXPECT_FALSE(run(16, "mla")->model_cached);  // the first: evicted long ago
}

TEST(Job, PublishesProgressAndPartialResultsAndStopsWhenCancelled) {
  std::atomic<int> steps{0};
  Job<std::vector<int>> j([&](Job<std::vector<int>>::Control& c) {
    for (int i = 0; !c.cancelled(); ++i) {
      c.progress(i, 0, "step " + std::to_string(i));
      c.update([&](std::vector<int>& v) { v.push_back(i); });
      ++steps;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  ASSERT_TRUE(wait_until([&] { return j.snapshot().size() >= 3; }, 30));
  EXPECT_TRUE(j.running());
  EXPECT_EQ(j.progress().current.rfind("step ", 0), 0u);
  j.cancel();
  ASSERT_TRUE(wait_until([&] { return !j.running(); }, 30));
  const std::vector<int> v = j.snapshot();
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(v[i], int(i));  // in order, none lost
  EXPECT_EQ(int(v.size()), steps.load());
  EXPECT_EQ(j.error(), "");
  EXPECT_EQ(j.progress().current, "");
}

TEST(Job, AnErrorEndsTheJobWithItsMessage) {
  Job<int> j([](Job<int>::Control& c) {
    c.update([](int& v) { v = 7; });
    throw Error("no such file");
  });
  ASSERT_TRUE(wait_until([&] { return !j.running(); }, 30));
  EXPECT_EQ(j.error(), "no such file");
  EXPECT_EQ(j.snapshot(), 7);
  Job<int> k([](Job<int>::Control&) { throw std::runtime_error("boom"); });
  ASSERT_TRUE(wait_until([&] { return !k.running(); }, 30));
  EXPECT_EQ(k.error(), "internal error: boom");
}

TEST(Job, DestroyingARunningJobCancelsAndWaits) {
  std::atomic<bool> ended{false};
  {
    Job<int> j([&](Job<int>::Control& c) {
      while (!c.cancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      ended = true;
    });
  }
  EXPECT_TRUE(ended);
}
