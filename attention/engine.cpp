// Checkpoints, inference and sampling behind the torch-free facade in engine.h.
#include <dlfcn.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <mutex>
#include <thread>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "engine_impl.h"
#include "error.h"
#include "kernel_threads.h"
#include "long_context.h"

namespace attnscope {

namespace fs = std::filesystem;
using nlohmann::json;

// ---------------------------------------------------------------------------------------------- files

std::string read_text_file(const std::string& path, size_t max_bytes) {
  // Streams (pipes, "-" for stdin) as well as regular files; never more than max_bytes.
  std::error_code ec;
  if (path != "-" && fs::is_directory(path, ec)) throw Error("cannot read '" + path + "': it is a directory");
  std::ifstream file;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file)
      throw Error("cannot read '" + path + "': " + (fs::exists(path, ec) ? "permission denied" : "no such file"));
  }
  std::istream& in = path == "-" ? std::cin : file;
  std::string out;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    out.append(buf, static_cast<size_t>(in.gcount()));
    if (out.size() > max_bytes)
      throw Error("'" + path + "' is larger than the limit of " + std::to_string(max_bytes) + " bytes");
  }
  return out;
}

// An installed binary (any prefix: the package, `cmake --install --prefix P`) finds its data next to itself in
// P/share/attnscope; a binary in a build folder falls back to the checkout it was built from.
std::string executable_path() {
  std::error_code ec;
  const fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "" : self.string();
}

std::string assets_dir() {
  if (const char* e = std::getenv("ATTNSCOPE_ASSETS")) return e;
  std::error_code ec;
  // An installed program's share/attnscope, looked for once (the window's worker asks per column and request: the
  // readlink and path building had cost ~0.3% of a cold recompute)
  static const std::string installed = [] {
    std::error_code e2;
    const std::string self = executable_path();
    if (self.empty()) return std::string();
    const fs::path shared = fs::path(self).parent_path().parent_path() / "share" / "attnscope";
    return fs::is_regular_file(shared / "tinyshakespeare.txt", e2) ? shared.string() : std::string();
  }();
  if (!installed.empty()) return installed;
  if (fs::is_regular_file("assets/tinyshakespeare.txt", ec)) return "assets";
  return ATTNSCOPE_SOURCE_DIR "/assets";
}
std::string default_model_dir() { return assets_dir() + "/models/mha"; }
std::string default_corpus_path() { return assets_dir() + "/tinyshakespeare.txt"; }

Split split_corpus(const std::string& text) {
  size_t cut = text.size() * 9 / 10;
  return {text.substr(0, cut), text.substr(cut)};
}

torch::Tensor to_tensor(const std::vector<int64_t>& ids, torch::Device dev) {
  return torch::tensor(ids, torch::kLong).view({1, -1}).to(dev);  // [1, T]
}

// ---------------------------------------------------------------------------------------------- checkpoints

static std::string shape_text(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

void save_net(GPTImpl& net, const Tokenizer& tok, const json& meta, const std::string& dir, DType dt,
              const json& extra_top) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir)) throw Error("cannot create checkpoint directory '" + dir + "': " + ec.message());
  StFile f;
  f.metadata["format"] = "pt";
  f.metadata["producer"] = "attnscope";
  for (const auto& p : net.named_parameters()) {
    auto t = p.value().detach().to(torch::kCPU, torch::kFloat).contiguous();
    StTensor st;
    st.name = p.key();
    st.dtype = dt;
    st.shape = t.sizes().vec();
    st.data = encode_floats(t.data_ptr<float>(), static_cast<size_t>(t.numel()), dt);
    f.tensors.push_back(std::move(st));
  }
  json cfg = {{"format", "attnscope-checkpoint"},      {"version", 1},
              {"model", config_to_json(net.config())}, {"vocab", tok.vocab()},
              {"storage_dtype", dtype_name(dt)},       {"training", meta}};
  for (auto it = extra_top.begin(); it != extra_top.end(); ++it) cfg[it.key()] = it.value();
  write_safetensors(dir + "/model.safetensors", f);
  write_file_atomic(dir + "/config.json", cfg.dump(2) + "\n");
}

static void load_weights(GPTImpl& net, const StFile& f, const std::string& file) {
  torch::NoGradGuard ng;
  auto params = net.named_parameters();
  for (const auto& t : f.tensors)
    if (!params.find(t.name))
      throw Error(file + ": unexpected tensor '" + t.name + "' (not part of the model that config.json describes)");
  for (auto& p : params) {
    const StTensor* t = f.find(p.key());
    auto want = p.value().sizes().vec();
    if (!t) throw Error(file + ": missing tensor '" + p.key() + "' (expected shape " + shape_text(want) + ")");
    if (t->shape != want)
      throw Error(file + ": tensor '" + p.key() + "' has shape " + shape_text(t->shape) + " but config.json implies " +
                  shape_text(want));
    std::vector<float> v = decode_floats(*t);
    for (size_t i = 0; i < v.size(); ++i)
      if (!std::isfinite(v[i]))
        throw Error(file + ": tensor '" + p.key() + "' holds a non-finite value (" +
                    (std::isnan(v[i]) ? "NaN" : "Inf") + ") at element " + std::to_string(i));
    auto src = torch::from_blob(v.data(), {static_cast<int64_t>(v.size())}, torch::kFloat).view(want);
    p.value().copy_(src);
  }
}

std::shared_ptr<Model> Model::load(const std::string& dir, const std::string& device) {
  torch::Device dev = resolve_device(device);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error("checkpoint '" + dir + "' is not a directory");
  const std::string cfg_path = dir + "/config.json";
  json j;
  try {
    j = json::parse(read_text_file(cfg_path, 16u << 20));
  } catch (const json::exception& e) {
    throw Error(cfg_path + ": not valid JSON (" + std::string(e.what()) + ")");
  }
  if (!j.is_object() || j.value("format", "") != "attnscope-checkpoint")
    throw Error(cfg_path + ": not an attnscope checkpoint config (field 'format' must be \"attnscope-checkpoint\")");
  if (!j.contains("model")) throw Error(cfg_path + ": missing field 'model'");
  if (!j.contains("vocab") || !j["vocab"].is_string()) throw Error(cfg_path + ": missing string field 'vocab'");
  ModelConfig cfg;
  try {
    cfg = config_from_json(j["model"]);
  } catch (const Error& e) {
    throw Error(cfg_path + ": " + e.what());
  }
  Tokenizer tok;
  try {
    tok = Tokenizer(j["vocab"].get<std::string>());
  } catch (const Error& e) {
    throw Error(cfg_path + ": field 'vocab': " + e.what());
  }
  if (tok.size() != cfg.vocab_size)
    throw Error(cfg_path + ": 'vocab' has " + std::to_string(tok.size()) + " symbols but model.vocab_size is " +
                std::to_string(cfg.vocab_size));
  auto m = std::make_shared<Model>();
  m->impl = std::make_shared<Impl>();
  m->impl->net = GPT(cfg, /*initialise=*/false);  // load_weights sets every parameter (or throws)
  m->impl->tok = tok;
  m->impl->meta = j.value("training", json::object());
  const std::string st_path = dir + "/model.safetensors";
  load_weights(*m->impl->net, read_safetensors(st_path), st_path);
  m->impl->net->eval();
  m->impl->net->to(dev);
  m->impl->device = dev;
  m->impl->source_dir = dir;
  return m;
}

const std::string& Model::source_dir() const { return impl->source_dir; }

std::shared_ptr<Model> Model::create(const ModelConfig& cfg, const Tokenizer& tok, const std::string& device,
                                     uint64_t seed) {
  torch::manual_seed(seed);
  auto m = std::make_shared<Model>();
  m->impl = std::make_shared<Impl>();
  m->impl->net = GPT(cfg);
  m->impl->tok = tok;
  m->impl->device = resolve_device(device);
  m->impl->net->to(m->impl->device);
  return m;
}

void Model::save(const std::string& dir, DType dt) const { save_net(*impl->net, impl->tok, impl->meta, dir, dt); }

const ModelConfig& Model::config() const { return impl->net->config(); }
const Tokenizer& Model::tokenizer() const { return impl->tok; }
const json& Model::meta() const { return impl->meta; }
void Model::set_meta(json m) { impl->meta = std::move(m); }
std::string Model::mode() const { return impl->mode; }
std::string Model::device_name() const { return impl->device.str(); }
int64_t Model::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : impl->net->parameters()) n += p.numel();
  return n;
}

std::shared_ptr<Model> Model::with_layers(const std::vector<LayerSpec>& layers) const {
  ModelConfig cfg = config();
  cfg.layers = layers;
  cfg.validate();
  auto m = std::make_shared<Model>();
  m->impl = std::make_shared<Impl>(*impl);
  m->impl->net = GPT(cfg, /*initialise=*/false);  // every weight copied below, unless a layer is converted:
  if (!copies_every_weight(*impl->net, *m->impl->net)) m->impl->net->init_parameters();  // then as a new model
  m->impl->net->to(impl->device);
  m->impl->net->eval();
  std::string mode = transfer_weights(*impl->net, *m->impl->net);
  m->impl->mode = impl->mode != "trained" && mode == "trained" ? impl->mode : mode;
  return m;
}

std::shared_ptr<Model> Model::with_variant(const std::string& variant, const ParamValues& params) const {
  ModelConfig cfg = config();
  cfg.set_all_layers(variant, params);
  return with_layers(cfg.layers);
}

// ---------------------------------------------------------------------------------------------- inference

static void sync(torch::Device d) {
  if (d.is_cuda()) torch::cuda::synchronize();
}

// Within the model's reach (long_context.h: learned positions stop at the context) and within the memory of the full
// maps (every layer's T x T matrices): longer texts go through extrapolate's losses and the pooled heatmaps.
static void check_tokens(const Model& m, const std::vector<int64_t>& t, const char* what) {
  const int64_t T = static_cast<int64_t>(t.size()), full = full_maps_limit(m);
  check_length(m, T, what);
  if (T > full)
    throw Error(std::string(what) + " has " + std::to_string(T) +
                " characters; the full maps of every layer and head (" + std::to_string(m.config().n_layer) + " x " +
                std::to_string(m.config().n_head) + " x T x T) stop at " + std::to_string(full) +
                " (longer texts: `attnscope extrapolate` for losses, `attnscope render --length N` for pooled maps)");
}

static std::vector<torch::Tensor> kv_sources_for(const Model& m, const std::vector<int64_t>& kv_tokens) {
  if (!m.impl->net->has_cross()) return {};
  if (kv_tokens.empty()) throw Error("cross-attention needs a second text for its keys and values (--kv-text)");
  check_tokens(m, kv_tokens, "the second text");
  return m.impl->net->kv_sources(to_tensor(kv_tokens, m.impl->device));
}

std::vector<float> AttentionMaps::head_attn(int64_t l, int64_t h) const {
  std::vector<float> out;  // [T, S]
  out.reserve(static_cast<size_t>(queries * keys));
  for (int64_t i = 0; i < queries; ++i) out.insert(out.end(), attn_row(l, h, i), attn_row(l, h, i) + keys);
  return out;
}

std::vector<uint8_t> AttentionMaps::head_mask(int64_t l, int64_t h) const {
  std::vector<uint8_t> out;                                                              // [T, S]
  if (!has_mask()) return std::vector<uint8_t>(static_cast<size_t>(queries * keys), 1);  // no flags: every pair
  out.reserve(static_cast<size_t>(queries * keys));
  for (int64_t i = 0; i < queries; ++i) out.insert(out.end(), mask_row(l, h, i), mask_row(l, h, i) + keys);
  return out;
}

int64_t AttentionMaps::pairs(int64_t l) const {
  if (static_cast<size_t>(l) < layer_pairs.size()) return layer_pairs[static_cast<size_t>(l)];
  if (!has_mask()) return heads * queries * keys;  // no flags: every pair
  int64_t n = 0;
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t i = 0; i < queries; ++i) n += count_nonzero(mask_row(l, h, i), static_cast<size_t>(keys));
  return n;
}

AttentionMaps Model::attend(const std::vector<int64_t>& tokens, const std::vector<int64_t>& kv_tokens) const {
  check_tokens(*this, tokens, "the text");
  torch::NoGradGuard ng;
  GPTImpl& net = *impl->net;
  auto x = to_tensor(tokens, impl->device);  // [1, T]
  auto t0 = std::chrono::steady_clock::now();
  auto kv = kv_sources_for(*this, kv_tokens);
  ForwardOptions o;
  o.want_display = true;
  o.want_routing = config().moe_experts > 0;
  o.kv_sources = kv.empty() ? nullptr : &kv;
  ForwardResult r = net.forward(x, o);
  sync(impl->device);
  auto t1 = std::chrono::steady_clock::now();

  AttentionMaps m;
  m.forward_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  m.mode = impl->mode;
  m.layers = static_cast<int64_t>(r.display.size());
  m.heads = config().n_head;
  m.queries = x.size(1);
  m.keys = r.display.empty() ? 0 : r.display[0].size(-1);
  // [L, H, T, S] each, layer by layer straight into the vectors (a stacked tensor first was two more 8 MiB copies
  // at 256 characters, each into freshly faulted pages)
  const size_t per_layer = static_cast<size_t>(m.heads * m.queries * m.keys);
  auto planes = std::make_shared<MapPlanes>();
  planes->rows = m.queries;
  planes->cols = m.keys;
  planes->attn.reserve(per_layer * static_cast<size_t>(m.layers));
  planes->mask.reserve(per_layer * static_cast<size_t>(m.layers));
  for (int64_t l = 0; l < m.layers; ++l) {
    auto a = r.display[size_t(l)].to(torch::kCPU, torch::kFloat).contiguous();  // [1, H, T, S]
    auto k = r.mask[size_t(l)].to(torch::kCPU, torch::kUInt8).contiguous();     // [H, T, S]
    if (size_t(a.numel()) != per_layer || size_t(k.numel()) != per_layer)
      throw Error("internal error: layer " + std::to_string(l) + "'s maps are not H x T x S like layer 0's");
    planes->attn.insert(planes->attn.end(), a.data_ptr<float>(), a.data_ptr<float>() + per_layer);
    planes->mask.insert(planes->mask.end(), k.data_ptr<uint8_t>(), k.data_ptr<uint8_t>() + per_layer);
    m.layer_pairs.push_back(count_nonzero(k.data_ptr<uint8_t>(), per_layer));
  }
  m.planes = std::move(planes);
  const int64_t kv_len = kv.empty() ? m.queries : static_cast<int64_t>(kv_tokens.size());
  for (size_t l = 0; l < net.attn.size(); ++l) {
    m.layer_variant.push_back(net.attn[l]->spec().variant);
    bool cross = get_variant(net.attn[l]->spec().variant).needs_kv_text;
    m.cache_formula_bytes.push_back(net.attn[l]->cache_formula_bytes(cross ? kv_len : m.queries, 4));
  }
  if (!r.routing.empty()) {
    m.experts = config().moe_experts;
    m.top_k = config().moe_k;
    auto ids = torch::stack(r.routing).select(1, 0).to(torch::kCPU, torch::kInt).contiguous();            // [L, T, k]
    auto gates = torch::stack(r.routing_gates).select(1, 0).to(torch::kCPU, torch::kFloat).contiguous();  // [L, T, k]
    m.routing.assign(ids.data_ptr<int32_t>(), ids.data_ptr<int32_t>() + ids.numel());
    m.routing_gate.assign(gates.data_ptr<float>(), gates.data_ptr<float>() + gates.numel());
  }
  if (m.queries >= 2) {
    auto logits = r.logits[0].narrow(0, 0, m.queries - 1);  // [T-1, V]
    auto target = x[0].narrow(0, 1, m.queries - 1);         // [T-1]
    auto per =
        torch::nn::functional::cross_entropy(logits.to(torch::kFloat), target,
                                             torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone))
            .to(torch::kCPU)
            .contiguous();  // [T-1]
    m.char_loss.assign(per.data_ptr<float>(), per.data_ptr<float>() + per.numel());
    m.loss = torch::nn::functional::cross_entropy(logits, target).item<double>();
  }
  return m;
}

EvalResult Model::evaluate(const std::vector<int64_t>& tokens, int64_t max_windows) const {
  torch::NoGradGuard ng;
  const int64_t C = config().context, N = static_cast<int64_t>(tokens.size());
  int64_t windows = (N - 1) / C;
  if (windows < 1) throw Error("evaluation text needs at least " + std::to_string(C + 1) + " characters");
  if (max_windows > 0) windows = std::min(windows, max_windows);
  auto all = torch::tensor(tokens, torch::kLong);  // [N]
  auto t0 = std::chrono::steady_clock::now();
  double total = 0;
  const int64_t batch = 16;
  for (int64_t w = 0; w < windows; w += batch) {
    const int64_t nb = std::min(batch, windows - w);
    std::vector<torch::Tensor> rows;
    for (int64_t b = 0; b < nb; ++b) rows.push_back(all.narrow(0, (w + b) * C, C + 1));
    auto xb = torch::stack(rows).to(impl->device);  // [nb, C + 1]
    total += lm_loss(*impl->net, xb).item<double>() * static_cast<double>(nb);
  }
  sync(impl->device);
  EvalResult r;
  r.loss = total / static_cast<double>(windows);
  r.bits = r.loss / std::log(2.0);
  r.characters = windows * C;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

std::vector<float> Model::logits(const std::vector<int64_t>& tokens, bool decode, const std::vector<int64_t>& kv_tokens,
                                 std::vector<int64_t>* cache_bytes) const {
  check_tokens(*this, tokens, "the text");
  torch::NoGradGuard ng;
  GPTImpl& net = *impl->net;
  auto x = to_tensor(tokens, impl->device);  // [1, T]
  auto kv = kv_sources_for(*this, kv_tokens);
  ForwardOptions o;
  o.kv_sources = kv.empty() ? nullptr : &kv;
  torch::Tensor out;  // [T, V]
  if (!decode) {
    out = net.forward(x, o).logits[0];
  } else {
    const int64_t T = x.size(1);
    auto caches = net.new_caches(1, std::max<int64_t>(T, static_cast<int64_t>(kv_tokens.size())));
    o.caches = &caches;
    std::vector<torch::Tensor> rows;
    for (int64_t t = 0; t < T; ++t) {
      o.pos0 = t;
      rows.push_back(net.forward(x.narrow(1, t, 1), o).logits[0][0]);  // [V]
      if (cache_bytes) {
        int64_t b = 0;
        for (const auto& c : caches) b += c->bytes();
        cache_bytes->push_back(b);
      }
    }
    out = torch::stack(rows);  // [T, V]
  }
  out = out.to(torch::kCPU, torch::kFloat).contiguous();
  return std::vector<float>(out.data_ptr<float>(), out.data_ptr<float>() + out.numel());
}

static void check_generate_options(const GenerateOptions& g) {
  if (g.tokens < 0 || g.tokens > 100000) throw Error("--tokens must be 0..100000");
  if (!(g.temperature >= 0) || g.temperature > 100) throw Error("--temperature must be 0..100");
  if (g.top_k < 0) throw Error("--top-k must be >= 0");
  if (g.stream_to < 0 || g.stream_to > kLongestText)
    throw Error("the stream length must be 0..." + std::to_string(kLongestText) + " positions");
}

// The next token from the newest logits [V]: greedy at temperature 0, else top-k filtered and seeded.
static int64_t sample_token(const torch::Tensor& logits, const GenerateOptions& g, at::Generator& gen) {
  auto lg = logits.to(torch::kCPU, torch::kFloat);  // [V]
  if (g.temperature == 0) return lg.argmax().item<int64_t>();
  lg = lg / g.temperature;
  if (g.top_k > 0 && g.top_k < lg.size(0)) {
    auto kth = std::get<0>(lg.topk(g.top_k)).min();
    lg = lg.masked_fill(lg < kth, -std::numeric_limits<float>::infinity());
  }
  return torch::multinomial(torch::softmax(lg, 0), 1, false, gen).item<int64_t>();
}

std::vector<int64_t> Model::generate(const std::vector<int64_t>& prompt_in, const GenerateOptions& g,
                                     const std::function<void(const DecodeStep&)>& on_step) const {
  if (prompt_in.empty()) throw Error("the prompt is empty: give at least one character");
  if (impl->net->has_cross()) throw Error("generate does not take a second text: cross-attention cannot generate here");
  check_generate_options(g);
  torch::NoGradGuard ng;
  GPTImpl& net = *impl->net;
  const int64_t C = config().context;
  const bool stream = g.stream_to > 0;
  const int64_t cap = stream ? std::max(C, g.stream_to) : C;  // positions the caches run
  if (stream) check_length(*this, cap, "the stream");
  auto gen = at::detail::createCPUGenerator(g.seed);
  std::vector<int64_t> hist(prompt_in.end() - std::min<int64_t>(C, static_cast<int64_t>(prompt_in.size())),
                            prompt_in.end());
  std::vector<std::unique_ptr<LayerCache>> caches;
  torch::Tensor last;  // [V] logits of the newest position
  // (Re)fill the caches from the last `keep` tokens of the history; positions restart at 0.
  auto prefill = [&](int64_t keep) {
    caches = net.new_caches(1, cap);
    std::vector<int64_t> w(hist.end() - keep, hist.end());
    ForwardOptions o;
    o.caches = &caches;
    auto lg = net.forward(to_tensor(w, impl->device), o).logits;  // [1, keep, V]
    last = lg[0][keep - 1];
  };
  prefill(static_cast<int64_t>(hist.size()));
  std::vector<int64_t> out;
  for (int64_t n = 0; n < g.tokens; ++n) {
    const int64_t next = sample_token(last, g, gen);
    if (stream && caches[0]->seen >= cap) break;  // the token would sit at position stream_to: the stream ends
    out.push_back(next);
    hist.push_back(next);
    if (caches[0]->seen >= cap) {
      prefill(C / 2);  // the context is full: keep the newest half and continue
    } else {
      ForwardOptions o;
      o.caches = &caches;
      o.pos0 = caches[0]->seen;
      last = net.forward(to_tensor({next}, impl->device), o).logits[0][0];
    }
    if (on_step) {
      int64_t b = 0;
      for (const auto& c : caches) b += c->bytes();
      on_step({next, b});
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- GUI accessors

int64_t cache_formula_bytes(const Model& m, int64_t tokens, int64_t kv_tokens, int64_t elem_bytes) {
  int64_t total = 0;
  for (const auto& layer : m.impl->net->attn) {
    const bool cross = get_variant(layer->spec().variant).needs_kv_text;
    total += layer->cache_formula_bytes(cross ? kv_tokens : tokens, elem_bytes);
  }
  return total;
}

int64_t compute_threads() { return at::get_num_threads(); }

namespace {
// OpenBLAS (libopenblas0-pthread provides libblas.so.3) exports these; the reference BLAS does not.
using SetThreads = void (*)(int);
using GetThreads = int (*)();
SetThreads blas_set() { return reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")); }
GetThreads blas_get() { return reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads")); }
// The process's own settings, recorded before the first change.
std::once_flag g_recorded;
int g_torch_threads = 1, g_blas_threads = 0;
void record_threads() {
  std::call_once(g_recorded, [] {
    g_torch_threads = at::get_num_threads();
    if (auto* get = blas_get()) g_blas_threads = get();
  });
}
}  // namespace

bool set_compute_threads(int64_t torch_threads, int64_t blas_threads) {
  record_threads();
  if (torch_threads > 0) {
    at::set_num_threads(static_cast<int>(torch_threads));
    set_kernel_threads(torch_threads);
  }
  if (blas_threads <= 0) return true;
  auto* set = blas_set();
  if (!set) return false;
  set(static_cast<int>(blas_threads));
  return true;
}

void use_interactive_threads() { set_compute_threads(1, 1); }

// How many of n bytes are non-zero, eight at a time: each byte folded onto its lowest bit (after x |= x >> 4, >> 2,
// >> 1, bit 0 of a byte is the OR of its own 8 bits; carries from the next byte reach only its higher bits), then
// the eight 0/1 bytes summed by one multiplication.
int64_t count_nonzero(const uint8_t* m, size_t n) {
  int64_t total = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, m + i, 8);
    w |= w >> 4;
    w |= w >> 2;
    w |= w >> 1;
    w &= 0x0101010101010101ull;
    total += int64_t((w * 0x0101010101010101ull) >> 56);
  }
  for (; i < n; ++i) total += m[i] != 0;
  return total;
}

void keep_freed_buffers() {
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest (HEAP_MAX / 2); also stops its dynamic threshold
  // Up to 32 MiB free at a heap's top stays (a keystroke's maps are 10 MiB). On this VM, when a page fault cost
  // ~17 us, 16 MiB left a full forward faulting (67 ms against 20 at 32 and 15 at 64); 64 MiB per heap made the
  // window's RSS wander by ~90 MiB under an hour of X input (a heap's top is only given back above the threshold).
  mallopt(M_TRIM_THRESHOLD, 32 << 20);
  // One heap per computing thread and one for the UI: threads started for a moment (jobs, loading) then reuse the
  // busy heaps instead of each keeping a heap of its own with up to the kept top free in it (an hour of X input under
  // scripts/soak_x.py: six idle heaps held 14-19 MiB resident each).
  mallopt(M_ARENA_MAX, int(std::max(2u, std::thread::hardware_concurrency() + 1)));
#endif
}

void restore_compute_threads() {
  record_threads();
  at::set_num_threads(g_torch_threads);
  set_kernel_threads(0);
  if (g_blas_threads > 0)
    if (auto* set = blas_set()) set(g_blas_threads);
}

// ---------------------------------------------------------------------------------------------- step-wise decoding

int64_t DecodeFrame::bytes() const {
  int64_t b = 0;
  for (int64_t x : layer_bytes) b += x;
  return b;
}

struct Decoder::State {
  std::shared_ptr<const Model> model;
  GenerateOptions options;
  at::Generator gen;
  std::vector<std::unique_ptr<LayerCache>> caches;  // one per layer, capacity = max(context, stream_to)
  torch::Tensor last;                               // [V] logits of the newest position
  std::vector<int64_t> tokens;
  int64_t prompt = 0, steps = 0, capacity = 0;
  bool display = true;  // every layer's cache keeps tokens, so the decode display maps onto its slots
};

Decoder::Decoder(std::shared_ptr<const Model> model, const std::vector<int64_t>& prompt, const GenerateOptions& o)
    : s_(std::make_unique<State>()) {
  if (prompt.empty()) throw Error("the prompt is empty: give at least one character");
  if (model->impl->net->has_cross()) throw Error("cross-attention cannot generate: its keys come from a second text");
  check_generate_options(o);
  torch::NoGradGuard ng;
  GPTImpl& net = *model->impl->net;
  const int64_t C = net.config().context;
  s_->capacity = std::max(C, o.stream_to);
  if (s_->capacity > C) check_length(*model, s_->capacity, "the stream");
  for (int64_t t : prompt)
    if (t < 0 || t >= net.config().vocab_size)
      throw Error("prompt token " + std::to_string(t) + " is outside the vocabulary");
  s_->model = model;
  s_->options = o;
  s_->gen = at::detail::createCPUGenerator(o.seed);
  s_->tokens.assign(prompt.end() - std::min<int64_t>(C - 1, static_cast<int64_t>(prompt.size())), prompt.end());
  s_->prompt = static_cast<int64_t>(s_->tokens.size());
  s_->caches = net.new_caches(1, s_->capacity);  // throws Error for variants that cannot decode
  for (const auto& c : s_->caches) s_->display = s_->display && c->layout().kind != "state";
  ForwardOptions fo;
  fo.caches = &s_->caches;
  auto lg = net.forward(to_tensor(s_->tokens, model->impl->device), fo).logits;  // [1, P, V]
  s_->last = lg[0][s_->prompt - 1];                                              // [V]
}

Decoder::~Decoder() = default;

bool Decoder::full() const { return s_->caches[0]->seen >= s_->capacity; }
int64_t Decoder::capacity() const { return s_->capacity; }
int64_t Decoder::prompt_tokens() const { return s_->prompt; }
const std::vector<int64_t>& Decoder::tokens() const { return s_->tokens; }

DecodeFrame Decoder::step(int64_t token) {
  if (full())
    throw Error(s_->capacity > s_->model->config().context
                    ? "the stream (" + std::to_string(s_->capacity) + " positions) is used up"
                    : "the context (" + std::to_string(s_->capacity) + " tokens) is used up");
  torch::NoGradGuard ng;
  GPTImpl& net = *s_->model->impl->net;
  const int64_t V = net.config().vocab_size;
  if (token >= V) throw Error("token " + std::to_string(token) + " is outside the vocabulary");
  DecodeFrame f;
  f.step = s_->steps;
  f.token = token >= 0 ? token : sample_token(s_->last, s_->options, s_->gen);
  f.position = s_->caches[0]->seen;
  f.probability = torch::softmax(s_->last.to(torch::kCPU, torch::kFloat), 0)[f.token].item<double>();
  ForwardOptions fo;
  fo.caches = &s_->caches;
  fo.pos0 = f.position;
  fo.want_display = s_->display;
  ForwardResult r = net.forward(to_tensor({f.token}, s_->model->impl->device), fo);
  s_->last = r.logits[0][0];  // [V]
  s_->tokens.push_back(f.token);
  ++s_->steps;
  f.layers = static_cast<int64_t>(s_->caches.size());
  f.heads = net.config().n_head;
  for (size_t l = 0; l < s_->caches.size(); ++l) {
    const LayerCache& c = *s_->caches[l];
    f.layer_bytes.push_back(c.bytes());
    f.layout.push_back(c.layout());
    const std::vector<int64_t> slots = c.held_positions();  // the display's key columns, -1 = free slot
    std::vector<size_t> order;                              // live slots by position
    for (size_t k = 0; k < slots.size(); ++k)
      if (slots[k] >= 0) order.push_back(k);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return slots[a] < slots[b]; });
    std::vector<int64_t> held;
    for (size_t k : order) held.push_back(slots[k]);
    std::vector<float> row;  // [H, S_l]
    if (s_->display) {
      auto p = r.display[l][0].select(1, 0).to(torch::kCPU, torch::kFloat).contiguous();  // [H, slots]
      if (p.size(1) != static_cast<int64_t>(slots.size()))
        throw Error("internal: " + net.attn[l]->spec().variant + " decodes over " + std::to_string(p.size(1)) +
                    " keys but its cache has " + std::to_string(slots.size()) + " slots");
      const float* d = p.data_ptr<float>();
      for (int64_t h = 0; h < f.heads; ++h)
        for (size_t k : order) row.push_back(d[h * p.size(1) + static_cast<int64_t>(k)]);
    }
    f.held.push_back(std::move(held));
    f.attn.push_back(std::move(row));
  }
  return f;
}

}  // namespace attnscope
