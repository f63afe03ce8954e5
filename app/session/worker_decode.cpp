// The worker's generation jobs: the single-model text generation streamed to the window, and the lockstep
// decoding of every column with its KV-cache inspector (worker.h). The rest of the worker is in worker.cpp.
#include <algorithm>
#include <chrono>

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
    t.variant = c.variant;
    std::unique_ptr<Decoder> d;
    try {
      ColumnResult origin;  // where the model comes from (unused here)
      const ParamValues p = resolve_params(get_variant(c.variant).params, c.variant, c.params);
      d = std::make_unique<Decoder>(
          c.layers.empty() ? model_for(base, c.variant, p, false, origin) : layered_model(base, c.layers, origin),
          job.prompt, job.options);
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
  decoders_ = std::move(decoders);
  decode_.tracks = std::move(tracks);
  decode_.preparing = false;
  for (size_t i = 0; i < decoders_.size() && decode_.driver < 0; ++i)
    if (decoders_[i]) decode_.driver = int(i);
  if (decode_.driver < 0) decode_.error = "no column can generate (see each column's message)";
}

void Worker::decode_step() {
  uint64_t session;
  int driver;
  bool shared;
  {
    std::lock_guard<std::mutex> l(mu_);
    session = decode_.session;
    driver = decode_.driver;
    shared = decode_.shared_stream;
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
      frames[i] = std::make_shared<const DecodeFrame>(decoders_[i]->step(shared && int(i) != driver ? token : -1));
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
    if (frames[i]) decode_.tracks[i].frames.push_back(frames[i]);
    if (!errors[i].empty()) decode_.tracks[i].error = errors[i];
  }
  decode_.full = full;
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
