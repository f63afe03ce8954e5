// Gathers the advisor's inputs on this machine: see advise_run.h.
#include "advise_run.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "bench.h"
#include "engine.h"
#include "error.h"
#include "registry.h"

namespace attnscope {

namespace fs = std::filesystem;
using nlohmann::json;

const Candidate* AdviceReport::candidate(const std::string& variant) const {
  for (const Candidate& c : request.candidates)
    if (c.variant == variant) return &c;
  return nullptr;
}

std::map<std::string, std::pair<double, std::string>> shipped_losses(const ModelConfig* like) {
  struct Found {
    std::string variant, where;
    double loss;
    int64_t steps;
  };
  std::vector<Found> found;
  std::error_code ec;
  const fs::path root = fs::path(assets_dir()) / "models";
  for (const auto& d : fs::directory_iterator(root, ec)) {
    const fs::path cfg_path = d.path() / "config.json";
    if (!fs::is_regular_file(cfg_path, ec)) continue;
    try {
      const json j = json::parse(read_text_file(cfg_path.string(), 16u << 20));
      const ModelConfig m = config_from_json(j.at("model"));
      const json& t = j.value("training", json::object());
      const double loss = t.value("final_val_loss", NAN);
      const std::string v = m.variant_summary();
      if (m.moe_experts != 0 || v == "mixed" || !std::isfinite(loss)) continue;
      // another model size or position scheme: its loss says nothing about variants of this one
      if (like && (!m.same_size(*like) || m.context != like->context || m.position != like->position)) continue;
      found.push_back({v, "assets/models/" + d.path().filename().string(), loss, t.value("steps", int64_t(0))});
    } catch (const std::exception&) {
      continue;  // not a readable checkpoint config: no loss from it
    }
  }
  // A fair comparison: where a variant has several checkpoints, the one trained with the budget most of them share
  // (the bundled mha has 1000 steps, the comparison 300); then the lowest loss.
  std::map<int64_t, int> budgets;
  for (const Found& f : found) ++budgets[f.steps];
  int64_t common = 0;
  int most = 0;
  for (const auto& [steps, n] : budgets)
    if (n > most) common = steps, most = n;
  // A variant whose only checkpoint has another budget (checkpoints retrained one by one): its difference to the
  // MHA checkpoint of its own budget, put on the common budget's scale (+ MHA's loss there): like for like.
  std::map<int64_t, double> mha_at;
  for (const Found& f : found)
    if (f.variant == "mha" && (!mha_at.count(f.steps) || f.where == "assets/models/mha")) mha_at[f.steps] = f.loss;
  auto rank = [&](const Found& f) { return std::make_pair(f.steps != common, f.loss); };  // lower is preferred
  std::map<std::string, const Found*> best;
  for (const Found& f : found)
    if (!best.count(f.variant) || rank(f) < rank(*best[f.variant])) best[f.variant] = &f;
  std::map<std::string, std::pair<double, std::string>> out;
  for (const auto& [v, f] : best) {
    if (f->steps == common || !mha_at.count(f->steps) || !mha_at.count(common)) {
      out[v] = {f->loss, f->where};
      continue;
    }
    out[v] = {f->loss - mha_at[f->steps] + mha_at[common],
              f->where + " (" + std::to_string(f->steps) + " steps: its difference to MHA at " +
                  std::to_string(f->steps) + " steps, on the " + std::to_string(common) + "-step scale)"};
  }
  return out;
}

std::string shipped_bench_path() {
  std::error_code ec;
  for (const fs::path& p : {fs::path(assets_dir()) / "bench.json",                   // installed beside the models
                            fs::path(assets_dir()) / ".." / "docs" / "bench.json"})  // the source tree
    if (fs::is_regular_file(p, ec)) return fs::weakly_canonical(p, ec).string();
  return "";
}

std::vector<int64_t> advise_measure_lengths(int64_t seq) {
  if (seq <= 1024) return {seq};
  return {512, 1024};
}

std::vector<BenchSample> scaled_curve(const std::vector<BenchSample>& curve, const BenchSample& measured) {
  const BenchSample* there = nullptr;
  bool longer = false;
  for (const BenchSample& c : curve) {
    if (c.variant != measured.variant) continue;
    if (c.length == kScaleAt) there = &c;
    longer = longer || c.length > kScaleAt;
  }
  if (!there || !longer || !(there->median_ms > 0)) return {};
  auto ratio = [](double ours, double theirs) { return ours / theirs; };  // NaN where either is missing
  const double rt = ratio(measured.median_ms, there->median_ms), rp = ratio(measured.peak_mib, there->peak_mib),
               rd = ratio(measured.decode_tokens_per_s, there->decode_tokens_per_s);
  std::vector<BenchSample> out;
  for (const BenchSample& c : curve)
    if (c.variant == measured.variant && c.length != kScaleAt)
      out.push_back({c.variant, c.length, c.median_ms * rt, c.peak_mib * rp, c.decode_tokens_per_s * rd, kScaleAt});
  return out;
}

namespace {

// Timings that answer for seq: measured there, or read off a line through two measured lengths.
bool usable(const Timing& t) {
  return t.found && (t.how.rfind("measured", 0) == 0 || t.how.rfind("interpolated", 0) == 0 ||
                     t.how.rfind("extrapolated", 0) == 0);
}

// The shipped bench results for the variants `have` lacks, when this machine's GEMM is within a factor 1.6 of
// theirs (this VM's own speed wanders by up to 1.4x between idle runs); `why` says what was used or why not.
std::vector<BenchSample> shipped_samples(const std::vector<BenchSample>& have, std::string& why,
                                         std::vector<BenchSample>& curves) {
  const std::string path = shipped_bench_path();
  if (path.empty()) {
    why = "no shipped docs/bench.json";
    return {};
  }
  json j;
  try {
    j = json::parse(read_text_file(path, 16u << 20));
  } catch (const std::exception& e) {
    why = "docs/bench.json unreadable (" + std::string(e.what()) + ")";
    return {};
  }
  try {
    curves = bench_samples_from_json(j);
  } catch (const Error& e) {
    curves.clear();
    why = "docs/bench.json unreadable (" + std::string(e.what()) + ")";
    return {};
  }
  const double theirs = j.value("gemm_2048_gflops", NAN), ours = machine_gemm_gflops("cpu");
  char b[160];
  std::snprintf(b, sizeof b, "docs/bench.json (recorded on a machine with GEMM %.0f GFLOP/s, this one %.0f)", theirs,
                ours);
  why = b;
  if (!(theirs > 0 && ours > 0 && ours / theirs >= 1 / 1.6 && ours / theirs <= 1.6)) {
    why += ": another machine, not used";
    return {};
  }
  std::vector<BenchSample> out;
  for (const BenchSample& x : curves) {
    bool known = false;
    for (const BenchSample& h : have) known = known || h.variant == x.variant;
    if (!known) out.push_back(x);
  }
  return out;
}

// The missing variants' bench points, each in its own child process (so cancelling waits for one), appended to
// rep.samples: at kScaleAt with their curve scaled through it where s.curves has one, else at
// advise_measure_lengths(seq). Their sentence is appended to `src`. Returns how many variants were measured.
int measure_timings(AdviceReport& rep, const AdviseSetup& s, const std::vector<std::string>& to_measure,
                    const std::function<void(const std::string&)>& step, int& done,
                    const std::vector<BenchSample>& curves, const std::function<bool()>& cancelled, std::string& src) {
  std::string device;
  int measured = 0, scaled = 0;
  const std::vector<int64_t> lengths = advise_measure_lengths(s.seq);
  std::string at;
  for (int64_t T : lengths) at += (at.empty() ? "" : " and ") + std::to_string(T);
  for (const std::string& v : to_measure) {
    if (cancelled()) break;
    std::vector<BenchSample> curve;  // this variant's points in `curves`
    for (const BenchSample& c : curves)
      if (c.variant == v) curve.push_back(c);
    // a curve through kScaleAt that reaches past it: measure there alone and scale the curve through the point
    const bool scale = s.seq > kScaleAt && !scaled_curve(curve, BenchSample{v, kScaleAt, 1, 1, 1}).empty();
    step("measuring " + v + " at " + (scale ? std::to_string(kScaleAt) : at) + " tokens");
    BenchOptions o;
    o.variants = {v};
    o.lengths = scale ? std::vector<int64_t>{kScaleAt} : lengths;
    o.repeats = s.repeats;
    o.decode_tokens = 8;
    o.measure_gemm = false;
    BenchReport r = run_bench(o);
    device = r.device;
    for (const BenchPoint& b : r.points) {
      if (b.status != "ok") continue;
      const BenchSample got{b.variant, b.length, b.median_ms, b.peak_mib, b.decode_tokens_per_s};
      rep.samples.push_back(got);
      if (!scale) continue;
      const std::vector<BenchSample> more = scaled_curve(curve, got);
      rep.samples.insert(rep.samples.end(), more.begin(), more.end());
      ++scaled;
    }
    ++measured;
    ++done;
  }
  if (measured == 0) return 0;
  std::string what = "measured now (" + device + ", " + std::to_string(s.repeats) +
                     " runs, one layer d_model 128, 8 heads) for " + std::to_string(measured) + " variant" +
                     (measured == 1 ? "" : "s");
  if (scaled > 0)
    what += ": " + std::to_string(scaled) + " at " + std::to_string(kScaleAt) + " tokens, scaled to " +
            std::to_string(s.seq) + " along docs/bench.json's curves";
  if (measured > scaled)
    what += std::string(scaled > 0 ? "; " : ": ") + std::to_string(measured - scaled) + " at " + at + " tokens" +
            (lengths.size() > 1 ? ", extrapolated to " + std::to_string(s.seq) : "");
  src += (src.empty() ? "" : "; ") + what;
  return measured;
}

}  // namespace

AdviceReport gather_advice(const std::shared_ptr<const Model>& base, const AdviseSetup& s,
                           const std::function<void(const AdviseProgress&)>& progress,
                           const std::atomic<bool>* cancel) {
  if (!base) throw Error("advise: no base model");
  if (s.seq < 2)
    throw Error("advise: the sequence length must be at least 2 tokens (got " + std::to_string(s.seq) + ")");
  if (s.memory_bytes < 0) throw Error("advise: the memory budget cannot be negative");
  auto cancelled = [&] { return cancel && cancel->load(); };

  AdviceReport rep;
  rep.request.scenario = s.scenario;
  rep.request.seq = s.seq;
  rep.request.memory_bytes = s.memory_bytes;
  rep.samples = s.samples;
  rep.base_variant = base->config().variant_summary();
  rep.context = base->config().context;

  // What is to be done: a bench point for every decodable variant without a sample, then a loss evaluation for
  // every decodable variant without a shipped checkpoint.
  std::string src = s.timing_source;
  std::vector<BenchSample> setup_curves = s.curves;
  if (s.use_shipped && !cancelled()) {
    std::string why;
    std::vector<BenchSample> curves;
    const std::vector<BenchSample> shipped = shipped_samples(rep.samples, why, curves);
    if (shipped.empty()) setup_curves.insert(setup_curves.end(), curves.begin(), curves.end());
    rep.samples.insert(rep.samples.end(), shipped.begin(), shipped.end());
    src += (src.empty() ? "" : "; ") + why;
    if (!shipped.empty())
      src += ": " + std::to_string(shipped.size()) + " timings at 256-4096 tokens, read off their log-log line";
  }
  std::vector<std::string> decodable, to_measure;
  for (const auto& v : variant_registry()) {
    if (!v.causal || v.needs_kv_text) continue;
    decodable.push_back(v.name);
    // measured at seq, or on the line through two measured lengths: good enough; else measure
    if (!usable(timing_at(rep.samples, v.name, s.seq)) && s.measure_missing) to_measure.push_back(v.name);
  }
  const auto shipped = shipped_losses(&base->config());
  // Converted variants: the change they make to the base weights, added to the base variant's loss at the
  // comparison's budget (the shipped MHA checkpoint of that budget) so that they sit on the same scale as the
  // checkpoints trained with their own variant; without one, the base checkpoint's own loss.
  const bool base_shipped = shipped.count(rep.base_variant) > 0;
  const double base_loss =
      base_shipped ? shipped.at(rep.base_variant).first : base->meta().value("final_val_loss", NAN);
  const bool eval_losses = s.eval_windows > 0 && std::isfinite(base_loss);
  int to_eval = 0;
  if (eval_losses)
    for (const std::string& v : decodable) to_eval += shipped.count(v) ? 0 : 1;
  AdviseProgress p;
  p.total = int(to_measure.size()) + to_eval + (eval_losses ? 1 : 0);
  auto step = [&](const std::string& what) {
    p.what = what;
    if (progress) progress(p);
  };

  const int measured = measure_timings(rep, s, to_measure, step, p.done, setup_curves, cancelled, src);
  if (src.empty()) src = "timings missing: give bench results (`attnscope bench --json F`) or measure now";
  if (measured < int(to_measure.size()))
    src += " (cancelled: " + std::to_string(to_measure.size() - measured) + " variants not measured)";
  rep.timing_source = src;

  // Losses: the shipped checkpoint, else the base checkpoint's loss plus the change the variant makes.
  std::vector<int64_t> valid;
  double base_eval = NAN;
  if (eval_losses && !cancelled()) {
    step("loss of " + rep.base_variant + " (the base)");
    valid = base->tokenizer().encode_or_throw(split_corpus(read_text_file(default_corpus_path())).valid,
                                              UnknownPolicy::Skip);
    base_eval = base->evaluate(valid, s.eval_windows).loss;
    ++p.done;
  }
  for (const auto& v : variant_registry()) {
    Candidate c;
    c.variant = v.name;
    c.causal = v.causal;
    c.needs_kv_text = v.needs_kv_text;
    c.timing = timing_at(rep.samples, v.name, s.seq);
    if (v.causal && !v.needs_kv_text) {
      try {
        std::shared_ptr<const Model> m = base;
        if (v.name != rep.base_variant) m = base->with_variant(v.name, {});
        c.cache_bytes = cache_formula_bytes(*m, s.seq, s.seq, 4);
        c.cache_constant = cache_formula_bytes(*m, 2 * s.seq, 2 * s.seq, 4) == c.cache_bytes;
        c.weight_bytes = m->parameter_count() * 4;
        if (shipped.count(v.name)) {
          c.val_loss = shipped.at(v.name).first;
          c.loss_source = "checkpoint " + shipped.at(v.name).second;
        } else if (std::isfinite(base_eval) && !cancelled()) {
          step("loss of " + v.name + " on " + rep.base_variant + "'s weights");
          c.val_loss = base_loss + m->evaluate(valid, s.eval_windows).loss - base_eval;
          c.loss_source = rep.base_variant + " weights, " + std::to_string(s.eval_windows) + " windows" +
                          (base_shipped ? " on " + shipped.at(rep.base_variant).second + "'s loss" : "");
          ++p.done;
        }
      } catch (const Error& e) {
        c.loss_source = std::string("not runnable on the base model: ") + e.what();
      }
    }
    rep.request.candidates.push_back(c);
  }
  rep.ranked = rank_variants(rep.request);
  p.what.clear();
  if (progress) progress(p);
  return rep;
}

}  // namespace attnscope
