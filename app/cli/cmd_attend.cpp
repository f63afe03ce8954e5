// `attnscope attend`: the attention matrices of a text (every layer and head, or one), as CSV, JSON or NPY.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli_checks.h"
#include "cli_io.h"
#include "commands.h"
#include "error.h"
#include "heads.h"
#include "logprobs.h"
#include "model_args.h"
#include "npy.h"

namespace attnscope {

using nlohmann::json;

struct AttendArgs {
  ModelArgs m;
  std::string text, text_file, kv_text, kv_text_file, format = "csv", out, logprobs;
  int layer = -1, head = -1;
  int repeat = 1;
};

namespace {

// The chosen layers [l0, l1) and heads [h0, h1) of the maps, and their values in that order.
struct Selection {
  int64_t l0, l1, h0, h1, T, S;
  std::vector<int64_t> shape;  // [layers,] [heads,] T, S: a fixed layer or head is no axis
  std::vector<float> values;   // [l1 - l0, h1 - h0, T, S]
};

Selection select(const AttentionMaps& m, int layer, int head) {
  if (layer >= m.layers)
    throw Error("--layer " + std::to_string(layer) + ": the model has " + std::to_string(m.layers) + " layers (0.." +
                std::to_string(m.layers - 1) + ")");
  if (head >= m.heads)
    throw Error("--head " + std::to_string(head) + ": the model has " + std::to_string(m.heads) + " heads (0.." +
                std::to_string(m.heads - 1) + ")");
  Selection s;
  s.l0 = layer < 0 ? 0 : layer, s.l1 = layer < 0 ? m.layers : layer + 1;
  s.h0 = head < 0 ? 0 : head, s.h1 = head < 0 ? m.heads : head + 1;
  s.T = m.queries, s.S = m.keys;
  for (int64_t l = s.l0; l < s.l1; ++l)
    for (int64_t h = s.h0; h < s.h1; ++h) {
      const std::vector<float> a = m.head_attn(l, h);  // [T, S]
      s.values.insert(s.values.end(), a.begin(), a.end());
    }
  if (layer < 0) s.shape.push_back(s.l1 - s.l0);
  if (head < 0) s.shape.push_back(s.h1 - s.h0);
  s.shape.push_back(s.T);
  s.shape.push_back(s.S);
  return s;
}

std::string as_json(const Selection& s, const Model& model, const AttentionMaps& m, const std::vector<int64_t>& ids) {
  json j = {{"variant", variant_label(model)},
            {"mode", m.mode},
            {"text", model.tokenizer().decode(ids)},
            {"shape", s.shape},
            {"layers", json::array()},
            {"forward_ms", m.forward_ms},
            {"loss_nats_per_char", std::isnan(m.loss) ? json(nullptr) : json(m.loss)}};
  size_t at = 0;
  for (int64_t l = s.l0; l < s.l1; ++l) {
    json heads = json::array();
    for (int64_t h = s.h0; h < s.h1; ++h) {
      json rows = json::array();
      for (int64_t i = 0; i < s.T; ++i) {
        std::vector<float> r(s.values.begin() + long(at), s.values.begin() + long(at + size_t(s.S)));
        rows.push_back(r);
        at += size_t(s.S);
      }
      heads.push_back({{"layer", l}, {"head", h}, {"attention", rows}});
    }
    j["layers"].push_back(heads);
  }
  return j.dump() + "\n";
}

// One row per query; a "# layer L head H" line before each matrix when more than one is printed.
std::string as_csv(const Selection& s, bool headers) {
  std::string out;
  char buf[32];
  size_t at = 0;
  for (int64_t l = s.l0; l < s.l1; ++l)
    for (int64_t h = s.h0; h < s.h1; ++h) {
      if (headers) out += "# layer " + std::to_string(l) + " head " + std::to_string(h) + "\n";
      for (int64_t i = 0; i < s.T; ++i) {
        for (int64_t j = 0; j < s.S; ++j) {
          std::snprintf(buf, sizeof buf, j ? ",%.6g" : "%.6g", double(s.values[at++]));
          out += buf;
        }
        out += "\n";
      }
    }
  return out;
}

}  // namespace

int cmd_attend(const AttendArgs& a) {
  if (!a.logprobs.empty()) check_logprobs_path(a.logprobs);
  auto model = a.m.load();
  const std::string text = text_arg(a.text, a.text_file, "--text", true);
  auto ids = a.m.encode(*model, text);
  std::vector<int64_t> kv;
  const std::string kv_text = text_arg(a.kv_text, a.kv_text_file, "--kv-text", false);
  if (!kv_text.empty()) kv = a.m.encode(*model, kv_text);
  AttentionMaps m = model->attend(ids, kv);
  std::vector<double> times{m.forward_ms};
  for (int r = 1; r < a.repeat; ++r) times.push_back(model->attend(ids, kv).forward_ms);
  std::sort(times.begin(), times.end());
  if (a.repeat > 1)
    std::fprintf(stderr, "forward over %d runs: median %.2f ms, min %.2f ms, max %.2f ms (first run %.2f ms)\n",
                 a.repeat, times[times.size() / 2], times.front(), times.back(), m.forward_ms);
  const Selection s = select(m, a.layer, a.head);
  const std::string bytes = a.format == "npy"    ? npy_bytes(s.shape, s.values.data())
                            : a.format == "json" ? as_json(s, *model, m, ids)
                                                 : as_csv(s, a.layer < 0 || a.head < 0);
  write_output(a.out, bytes);
  if (!a.logprobs.empty())  // log p(ids[t + 1] | ids[..t]) from the logits [T, V]
    write_logprobs(a.logprobs, *model, ids,
                   next_token_logprobs(model->logits(ids, false, kv), model->config().vocab_size, ids));
  std::fprintf(stderr, "%s [%s], %lld characters, %lld layers x %lld heads, forward %.1f ms, loss %.3f nats/char\n",
               variant_label(*model).c_str(), m.mode.c_str(), (long long)s.T, (long long)m.layers, (long long)m.heads,
               m.forward_ms, m.loss);
  return 0;
}

Command add_attend(CLI::App& app) {
  auto a = std::make_shared<AttendArgs>();
  auto* c = app.add_subcommand("attend", "print the attention matrix of a text");
  a->m.add(c);
  c->add_option("--text", a->text, "the text (at most the model's context)");
  c->add_option("--text-file", a->text_file, "read the text from a file");
  c->add_option("--kv-text", a->kv_text, "second text: keys and values for cross-attention");
  c->add_option("--kv-text-file", a->kv_text_file, "read the second text from a file");
  c->add_option("--layer", a->layer, "layer (default: all)")->check(kNonNegative);
  c->add_option("--head", a->head, "head (default: all)")->check(kNonNegative);
  c->add_option("--format", a->format, "csv|json|npy")->check(CLI::IsMember({"csv", "json", "npy"}));
  c->add_option("--repeat", a->repeat, "run the forward N times and report the median time")
      ->check(CLI::Range(1, 1000));
  c->add_option("-o,--out", a->out, "output file (default: stdout); written atomically");
  c->add_option("--logprobs", a->logprobs, "also write each next character's log-probability (.json|.csv|.npy)");
  return {c, [a] { return cmd_attend(*a); }};
}

}  // namespace attnscope
