// The worker's generation jobs: the single-model text generation streamed to the window, and the lockstep
// decoding of every column with its KV-cache inspector (worker.h). The rest of the worker is in worker.cpp.
#include <algorithm>
#include <chrono>
#include <cmath>

#include "error.h"
#include "registry.h"
#include "worker.h"

namespace attnscope::session {
namespace {
struct Cancelled {};
}  // namespace

uint64_t Worker::start_generate(GenerateJob j) {
  uint64_t id;
  {
    std::lock_guard<std::mutex> l(mu_);
    gen_pending_ = std::make_unique<GenerateJob>(std::move(j));
    gen_cancel_ = gen_.running;  // stop a running one; the new one starts next
    id = ++gen_.job;
    gen_.running = true;
    gen_.done = false;
    gen_.text.clear();
    gen_.error.clear();
  }
  cv_.notify_all();
  return id;
}

void Worker::cancel_generate() {
  std::lock_guard<std::mutex> l(mu_);
  gen_cancel_ = true;
  if (gen_pending_) {  // never started (the worker was busy): nothing else would ever mark it finished
    gen_pending_.reset();
    gen_.running = false;
    gen_.done = true;
  }
}

GenerateState Worker::generate_state() const {
  std::lock_guard<std::mutex> l(mu_);
  return gen_;
}

uint64_t Worker::start_decode(DecodeJob j) {
  uint64_t id;
  {
    std::lock_guard<std::mutex> l(mu_);
    id = decode_.session + 1;
    decode_ = DecodeState{};
    decode_.session = id;
    decode_.preparing = true;
    decode_.shared_stream = j.shared_stream;
    decode_.fed = !j.feed.empty();
    decode_pending_ = std::make_unique<DecodeJob>(std::move(j));
  }
  cv_.notify_all();
  return id;
}

void Worker::request_steps(int64_t n) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (decode_.session == 0 || decode_.full) return;
    decode_.requested += n;
  }
  cv_.notify_all();
}

void Worker::stop_decode() {
  std::lock_guard<std::mutex> l(mu_);
  decode_.requested = std::min<int64_t>(decode_.requested, int64_t(decode_.steps()));
}

DecodeState Worker::decode_state() const {
  std::lock_guard<std::mutex> l(mu_);
  return decode_;
}

bool Worker::decode_wanted() const {
  return !decode_.preparing && !decode_.full && decode_.driver >= 0 && int64_t(decode_.steps()) < decode_.requested;
}

void Worker::prepare_decode(const Model& base, const DecodeJob& job, uint64_t session) {
  std::vector<std::unique_ptr<Decoder>> decoders;
  std::vector<DecodeTrack> tracks;
  for (const DecodeColumn& c : job.columns) {
    DecodeTrack t;
    t.column = c.column;
    t.variant = c.model.variant;
    std::unique_ptr<Decoder> d;
    try {
      ColumnResult origin;  // where the model comes from (unused here)
      std::shared_ptr<const Model> m = request_model(base, c.model, origin);  // the column's maps' model
      if (!c.model.knockouts.empty()) m = knocked_model(m, c.model, origin);
      d = std::make_unique<Decoder>(m, job.prompt, job.options);
      t.prompt = d->tokens();
    } catch (const Error& e) {
      t.error = e.what();
    } catch (const std::exception& e) {
      t.error = std::string("internal error: ") + e.what();
    }
    decoders.push_back(std::move(d));
    tracks.push_back(std::move(t));
  }
  std::lock_guard<std::mutex> l(mu_);
  if (decode_.session != session) return;  // superseded while preparing
  feed_ = job.feed;
  for (const auto& d : decoders)
    if (d) decode_.capacity = std::max(decode_.capacity, d->capacity());
  decoders_ = std::move(decoders);
  decode_.tracks = std::move(tracks);
  decode_.preparing = false;
  for (size_t i = 0; i < decoders_.size() && decode_.driver < 0; ++i)
    if (decoders_[i]) decode_.driver = int(i);
  if (decode_.driver < 0) decode_.error = "no column can generate (see each column's message)";
}

namespace {
// The frame without its per-position rows (held positions and weights): what an old step keeps.
std::shared_ptr<const DecodeFrame> thin(const DecodeFrame& f) {
  auto t = std::make_shared<DecodeFrame>(f);
  t->held.clear();
  t->attn.clear();
  return t;
}

// DecodeTrack::mean_loss for the newest frame: the mean of -ln p over the last kLossMean frames.
void append_mean_loss(DecodeTrack& t) {
  auto nll = [&](size_t k) { return -std::log(std::max(t.frames[k]->probability, 1e-12)); };
  const size_t k = t.frames.size() - 1, n = std::min(k + 1, kLossMean);
  const double prev = k == 0 ? 0.0 : t.mean_loss.back() * double(std::min(k, kLossMean));  // the previous window's sum
  const double sum = prev + nll(k) - (k >= kLossMean ? nll(k - kLossMean) : 0.0);
  t.mean_loss.push_back(sum / double(n));
}
}  // namespace

void Worker::decode_step() {
  uint64_t session;
  int driver;
  bool shared;
  int64_t fed = -1;  // the token every column is fed at this step (-1: sampled)
  {
    std::lock_guard<std::mutex> l(mu_);
    session = decode_.session;
    driver = decode_.driver;
    shared = decode_.shared_stream;
    const size_t step = decode_.steps();  // < feed_.size(): the session is full once the feed is used up
    if (step < feed_.size()) fed = feed_[step];
  }
  // The driver first: in a shared stream everyone else is fed its token.
  std::vector<size_t> order = {size_t(driver)};
  for (size_t i = 0; i < decoders_.size(); ++i)
    if (int(i) != driver) order.push_back(i);
  std::vector<std::shared_ptr<const DecodeFrame>> frames(decoders_.size());
  std::vector<std::string> errors(decoders_.size());
  int64_t token = -1;
  bool full = false;
  for (size_t i : order) {
    if (!decoders_[i]) continue;
    try {
      const int64_t in = fed >= 0 ? fed : shared && int(i) != driver ? token : -1;
      frames[i] = std::make_shared<const DecodeFrame>(decoders_[i]->step(in));
      if (int(i) == driver) token = frames[i]->token;
      full = full || decoders_[i]->full();
    } catch (const std::exception& e) {
      errors[i] = e.what();
      decoders_[i].reset();
    }
  }
  std::lock_guard<std::mutex> l(mu_);
  if (decode_.session != session) return;
  for (size_t i = 0; i < decoders_.size(); ++i) {
    DecodeTrack& t = decode_.tracks[i];
    auto& kept = t.frames;
    if (frames[i]) {
      kept.push_back(frames[i]);
      append_mean_loss(t);
    }
    if (kept.size() > kFramesWithWeights) {
      auto& old = kept[kept.size() - 1 - kFramesWithWeights];
      if (!old->held.empty()) old = thin(*old);
    }
    if (!errors[i].empty()) decode_.tracks[i].error = errors[i];
  }
  decode_.full = full || (!feed_.empty() && decode_.steps() >= feed_.size());
  if (!decoders_[size_t(driver)]) {  // the driver failed: the next live column drives
    decode_.driver = -1;
    for (size_t i = 0; i < decoders_.size() && decode_.driver < 0; ++i)
      if (decoders_[i]) decode_.driver = int(i);
  }
}

// The single-model generation job, streamed into gen_.text (lock held on entry and exit).
void Worker::run_generate(std::unique_lock<std::mutex>& l, const std::shared_ptr<const Model>& base) {
  GenerateJob job = *gen_pending_;
  gen_pending_.reset();
  gen_cancel_ = false;
  const uint64_t id = gen_.job;
  running_ = true;
  l.unlock();
  std::string err;
  try {
    base->generate(job.prompt, job.options, [&](const DecodeStep& s) {
      if (gen_cancel_) throw Cancelled{};
      std::lock_guard<std::mutex> g(mu_);
      if (gen_.job == id) gen_.text += base->tokenizer().symbol(s.token);
    });
  } catch (const Cancelled&) {
  } catch (const std::exception& e) {
    err = e.what();
  }
  l.lock();
  running_ = false;
  if (gen_.job == id && !gen_pending_) {
    gen_.running = false;
    gen_.done = true;
    gen_.error = err;
  }
}

}  // namespace attnscope::session
