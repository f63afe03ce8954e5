// The column controller: the columns' state (add, parse from --column, per-layer specs, painted masks), the text's
// tokens and window, requests to the worker and its results, and the layer/head selection. Nothing is drawn here.
#include <algorithm>
#include <cmath>
#include <random>

#include "error.h"
#include "registry.h"
#include "state.h"
#include "views.h"
#include "widgets.h"

namespace attnscope::gui {

namespace {

uint64_t fnv(const std::vector<int64_t>& v, uint64_t h = 1469598103934665603ull) {
  for (int64_t x : v) {
    h ^= static_cast<uint64_t>(x) + 0x9e3779b97f4a7c15ull;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace

ParamValues default_params(const std::string& variant, const App& app) {
  const VariantInfo* info = find_variant(variant);
  if (!info) return {};
  ParamValues p = resolve_params(info->params, variant, {});
  // divisor_of_heads parameters: snap the default to a divisor of this model's head count
  if (app.model)
    for (const auto& s : info->params)
      if (s.divisor_of_heads) {
        auto d = head_divisors(app.model->config().n_head, s);
        if (!d.empty() && std::find(d.begin(), d.end(), int(p[s.name])) == d.end()) {
          int best = d.front();
          for (int g : d)
            if (std::abs(g - p[s.name]) < std::abs(best - p[s.name])) best = g;
          p[s.name] = best;
        }
      }
  return p;
}

void add_column(App& app, const std::string& variant) {
  if (int(app.columns.size()) >= kMaxColumns) return;
  Column c;
  c.id = app.next_column_id++;
  c.variant = find_variant(variant) ? variant : "mha";
  c.params = default_params(c.variant, app);
  app.columns.push_back(std::move(c));
}

void init_columns(App& app, const std::vector<std::string>& specs) {
  std::vector<std::string> s = specs;
  if (s.empty()) s = {"mha", "gqa:groups=2"};
  for (const auto& spec : s) {
    const SceneColumn sc = parse_column_spec(spec);  // throws Error naming the known variants or parameters
    add_column(app, sc.variant);
    Column& c = app.columns.back();
    for (const auto& [k, val] : sc.params) c.params[k] = val;
    c.convert = sc.convert;
  }
}

void new_passage(App& app) {
  const std::string& v = app.corpus_valid;
  if (v.empty()) {
    app.text.text =
        "ROMEO:\nBut, soft! what light through yonder window breaks?\nIt is the east, and Juliet is the sun.\n";
    return;
  }
  std::mt19937_64 rng(app.text.passage_seed);
  const size_t len = size_t(std::max(8, app.text.passage_len));
  size_t start = std::uniform_int_distribution<size_t>(0, v.size() > len ? v.size() - len - 1 : 0)(rng);
  size_t nl = v.find('\n', start);  // begin at a line start
  if (nl != std::string::npos && nl + 1 + len <= v.size()) start = nl + 1;
  std::string p = v.substr(start, len);
  app.text.text = p;
  app.text.source = TextSource::Passage;
  app.text.window_start = 0;
}

void update_tokens(App& app) {
  TokenView& t = app.tokens;
  if (!app.model) {
    t = TokenView{};
    app.tokens_key.clear();
    return;
  }
  const std::string key = app.text.text + '\x01' + std::to_string(app.text.unknown_policy) + '\x01' + app.text.kv_text;
  const Tokenizer& tok = app.model->tokenizer();
  const UnknownPolicy pol = app.text.unknown_policy == 0 ? UnknownPolicy::Skip : UnknownPolicy::Replace;
  if (key != app.tokens_key) {
    Encoded e = tok.encode(app.text.text, pol);
    t.ids = std::move(e.ids);
    t.offsets = std::move(e.source_offset);
    t.unknown = std::move(e.unknown);
    t.unknown_message = t.unknown.empty() ? "" : describe_unknown(t.unknown);
    Encoded kv = tok.encode(app.text.kv_text, pol);
    t.kv_ids = std::move(kv.ids);
    t.kv_message = kv.unknown.empty() ? "" : describe_unknown(kv.unknown);
    const int64_t ctx = app.model->config().context;
    if (int64_t(t.kv_ids.size()) > ctx) t.kv_ids.resize(size_t(ctx));
    app.tokens_key = key;
  }
  const int n = int(t.ids.size());
  const int ctx = int(app.model->config().context);
  int len = app.text.window_len > 0 ? std::min(app.text.window_len, ctx) : ctx;
  len = std::min(len, n);
  t.len = len;
  t.start = std::clamp(app.text.window_start, 0, std::max(0, n - len));
  app.text.window_start = t.start;
}

std::vector<LayerSpec> column_layers(const Column& c, int64_t n_layer) {
  if (c.per_layer) return c.layers;
  if (c.variant == "custom" && !c.mask.empty())
    return std::vector<LayerSpec>(size_t(n_layer), {c.variant, c.params, c.mask});
  return {};
}

const VariantInfo* layer_variant(const Column& c, int layer) {
  if (c.per_layer && layer >= 0 && layer < int(c.layers.size())) return find_variant(c.layers[size_t(layer)].variant);
  return find_variant(c.variant);
}

void set_per_layer(App& app, Column& c, bool on) {
  c.per_layer = on && app.model;
  if (c.per_layer && c.layers.size() != size_t(app.model->config().n_layer))
    c.layers.assign(size_t(app.model->config().n_layer), LayerSpec{c.variant, c.params, c.mask});
}

CustomMask* edited_mask(App& app, Column& c) {
  CustomMask* m = nullptr;
  if (c.per_layer) {
    if (c.layer >= 0 && c.layer < int(c.layers.size()) && c.layers[size_t(c.layer)].variant == "custom")
      m = &c.layers[size_t(c.layer)].mask;
  } else if (c.variant == "custom") {
    m = &c.mask;
  }
  if (m && m->empty() && app.model) *m = causal_mask(app.model->config().context);  // paint over plain causal
  return m;
}

void toggle_knockout(Column& c, int layer, int head) {
  auto same = [&](const HeadKnockout& k) { return k.layer == layer && k.head == head; };
  auto it = std::find_if(c.knockouts.begin(), c.knockouts.end(), same);
  if (it != c.knockouts.end())
    c.knockouts.erase(it);
  else
    c.knockouts.push_back(HeadKnockout{layer, head});
}

std::string knockouts_label(const std::vector<HeadKnockout>& k) {
  std::string s;
  for (const HeadKnockout& h : k)
    s += (s.empty() ? "L" : ", L") + std::to_string(h.layer) + (h.head < 0 ? " all" : " h" + std::to_string(h.head));
  return s;
}

ColumnRequest column_request(const Column& c, int64_t n_layer) {
  ColumnRequest r;
  r.variant = c.variant;
  r.params = c.params;
  r.convert = c.convert;
  r.layers = column_layers(c, n_layer);
  r.knockouts = c.knockouts;
  r.knock_mode = c.knock_mode;
  return r;
}

void submit_columns(App& app) {
  if (!app.model) return;
  const std::vector<int64_t> win = app.tokens.window();
  const uint64_t h = fnv(win, win.size());
  for (Column& c : app.columns) {
    ColumnRequest r = column_request(c, app.model->config().n_layer);
    bool kv = false;
    try {
      kv = r.needs_kv_text();
    } catch (const Error&) {
      kv = false;  // an unknown variant: the worker reports it
    }
    const std::string key =
        (r.layers.empty() ? model_key(c.variant, c.params, false) : layers_key(r.layers)) + "#" + std::to_string(h) +
        (kv ? "#" + std::to_string(fnv(app.tokens.kv_ids)) : "") + (c.convert ? "#convert" : "") +
        (c.knockouts.empty()
             ? ""
             : std::string("#ko ") + knock_mode_name(c.knock_mode) + " " + knockouts_label(c.knockouts));
    if (key == c.submitted_key) continue;
    c.submitted_key = key;
    c.submitted_at = Clock::now();
    c.latency_logged = false;
    r.seq = ++c.seq;
    r.tokens = win;
    if (kv) r.kv_tokens = app.tokens.kv_ids;
    app.worker->submit(c.id, std::move(r));
  }
}

void poll_results(App& app) {
  for (Column& c : app.columns) {
    auto r = app.worker->result(c.id);
    // Only the result of the latest request is shown: an older one (computed while the inputs changed) is dropped.
    if (r && r != c.shown && r->seq == c.seq) {
      // the same request's result again, with its exact-softmax reference added: the same maps, nothing to upload
      const bool reference_only = c.shown && c.shown->seq == r->seq && c.shown->maps == r->maps;
      c.shown = r;
      if (!reference_only) {
        c.tiles_key.clear();  // upload the new matrices
        c.mask_key.clear();
        c.timing = ColumnTiming{};
        if (r->ok) app.last_compute_ms = r->maps->forward_ms;
      }
    }
    if (c.shown) {
      ColumnTiming t = app.worker->timing(c.id);
      if (t.seq == c.shown->seq) c.timing = std::move(t);
    }
  }
}

bool columns_settled(const App& app) {
  if (!app.model) return !app.worker->loading();
  for (const Column& c : app.columns)
    if (!c.shown || c.shown->seq != c.seq) return false;
  return true;
}

void set_layer_head(App& app, int column, int layer, int head) {
  for (int i = 0; i < int(app.columns.size()); ++i)
    if (app.view.link || i == column) {
      app.columns[size_t(i)].layer = layer;
      app.columns[size_t(i)].head = head;
    }
  app.active_column = column;
}

void move_selection(App& app, int dlayer, int dhead) {
  if (app.columns.empty() || !app.model) return;
  const int i = std::clamp(app.active_column, 0, int(app.columns.size()) - 1);
  const Column& c = app.columns[size_t(i)];
  const int L = int(app.model->config().n_layer), H = int(app.model->config().n_head);
  const int layer = std::clamp(c.layer + dlayer, 0, L - 1);
  const int head = c.head < 0 ? (dhead > 0 ? 0 : -1) : std::clamp(c.head + dhead, 0, H - 1);
  set_layer_head(app, i, layer, head);
}

double seconds_since_start(const App& app) { return std::chrono::duration<double>(Clock::now() - app.started).count(); }

}  // namespace attnscope::gui
