// `attnscope heads`: what every head of a model does. Role scores from the attention maps on the text and on the
// induction probe (attention/heads.h's table), the probe's in-context loss drop and, with --ablate, each head's
// importance: the loss change when it alone is knocked out (app/session/head_analysis.h).
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli_checks.h"
#include "cli_io.h"
#include "commands.h"
#include "error.h"
#include "head_analysis.h"
#include "logprobs.h"
#include "model_args.h"
#include "npy.h"

namespace attnscope {

using nlohmann::json;

struct HeadsArgs {
  ModelArgs m;
  std::string text, text_file, json_out, rollout_out, logprobs_out;
  std::vector<std::string> thresholds;
  int64_t period = 96;
  uint64_t seed = 1;
  bool ablate = false;
  std::string ablate_mode = "zero";
};

namespace {

// The default text: the first context characters of the held-out split.
std::string default_text(const Model& m) {
  return split_corpus(read_text_file(default_corpus_path())).valid.substr(0, size_t(m.config().context));
}

std::string role_list(const session::HeadReport& r, int64_t l, int64_t h) {
  std::string s;
  for (size_t k : r.roles_of(l, h)) s += (s.empty() ? "" : ",") + role_registry()[k].label;
  return s.empty() ? "-" : s;
}

void print_table(const session::HeadReport& r, const session::HeadImportance* imp) {
  const auto& roles = role_registry();
  std::printf("layer head");
  for (const auto& role : roles) std::printf(" %8.8s", role.name.c_str());
  if (imp) std::printf(" %9s %9s", "dloss_txt", "dloss_val");
  std::printf("  roles\n");
  for (int64_t l = 0; l < r.layers; ++l)
    for (int64_t h = 0; h < r.heads; ++h) {
      std::printf("%5lld %4lld", (long long)l, (long long)h);
      for (size_t k = 0; k < roles.size(); ++k) std::printf(roles[k].bounded ? " %8.3f" : " %8.1f", r.score(k, l, h));
      if (imp) {
        const size_t i = size_t(l * r.heads + h);
        std::printf(" %+9.4f %+9.4f", imp->text_delta[i], imp->heldout_delta[i]);
      }
      std::printf("  %s\n", role_list(r, l, h).c_str());
    }
  if (imp)
    for (int64_t l = 0; l < r.layers; ++l)
      std::printf("layer %lld, every head knocked out: %+.4f on the text, %+.4f on the held-out slice\n", (long long)l,
                  imp->layer_text_delta[size_t(l)], imp->layer_heldout_delta[size_t(l)]);
  std::printf("thresholds:");
  for (size_t k = 0; k < roles.size(); ++k)
    if (r.thresholds[k] > 0) std::printf(" %s=%g", roles[k].name.c_str(), r.thresholds[k]);
  std::printf("\n");
}

json as_json(const session::HeadReport& r, const session::HeadImportance* imp, const Model& model,
             const std::vector<int64_t>& ids) {
  const auto& roles = role_registry();
  json j = {{"variant", variant_label(model)},
            {"mode", model.mode()},
            {"text", model.tokenizer().decode(ids)},
            {"text_loss", r.text_loss},
            {"probe",
             {{"period", r.period},
              {"text", model.tokenizer().decode(r.probe)},
              {"loss_first_copy", r.probe_loss_first},
              {"loss_second_copy", r.probe_loss_second},
              {"loss_drop", r.probe_loss_drop()}}},
            {"roles", json::array()},
            {"heads", json::array()}};
  for (size_t k = 0; k < roles.size(); ++k)
    j["roles"].push_back({{"name", roles[k].name},
                          {"label", roles[k].label},
                          {"description", roles[k].description},
                          {"on", roles[k].on == RoleText::Probe ? "probe" : "text"},
                          {"bounded", roles[k].bounded},
                          {"threshold", r.thresholds[k] > 0 ? json(r.thresholds[k]) : json(nullptr)}});
  for (int64_t l = 0; l < r.layers; ++l)
    for (int64_t h = 0; h < r.heads; ++h) {
      json s = json::object(), labels = json::array();
      for (size_t k = 0; k < roles.size(); ++k) s[roles[k].name] = r.score(k, l, h);
      for (size_t k : r.roles_of(l, h)) labels.push_back(roles[k].name);
      json e = {{"layer", l}, {"head", h}, {"scores", s}, {"roles", labels}};
      if (imp) {
        const size_t i = size_t(l * r.heads + h);
        e["knockout"] = {{"text_loss_change", imp->text_delta[i]}, {"heldout_loss_change", imp->heldout_delta[i]}};
      }
      j["heads"].push_back(e);
    }
  if (imp) {
    j["intact"] = {{"text_loss", imp->text_loss}, {"heldout_loss", imp->heldout_loss}};
    j["knockout_mode"] = knock_mode_name(imp->mode);
    j["layer_knockout"] = {{"text_loss_change", imp->layer_text_delta},
                           {"heldout_loss_change", imp->layer_heldout_delta}};
  }
  return j;
}

}  // namespace

int cmd_heads(const HeadsArgs& a) {
  if (!a.logprobs_out.empty()) check_logprobs_path(a.logprobs_out);
  check_output_dir(a.json_out);
  check_output_dir(a.rollout_out);
  session::HeadsOptions o;
  o.period = a.period;
  o.seed = a.seed;
  o.thresholds = session::parse_thresholds(a.thresholds);
  auto model = a.m.load();
  std::string text = text_arg(a.text, a.text_file, "--text", false);
  if (text.empty()) text = default_text(*model);
  const auto ids = a.m.encode(*model, text);
  const session::HeadReport r = session::analyse_heads(*model, ids, o);
  std::unique_ptr<session::HeadImportance> imp;
  const KnockMode mode = parse_knock_mode(a.ablate_mode);
  if (a.ablate) {
    imp = std::make_unique<session::HeadImportance>(session::head_importance(
        *model, ids, session::heldout_slice(*model),
        [](int64_t done, int64_t total) {
          std::fprintf(stderr, "\rknock-outs %lld/%lld", (long long)done, (long long)total);
          if (done == total) std::fprintf(stderr, "\n");
          return true;
        },
        mode));
  }
  std::printf("%s [%s], %lld characters, loss %.3f nats/char\n", variant_label(*model).c_str(), model->mode().c_str(),
              (long long)r.T, r.text_loss);
  std::printf(
      "induction probe: %lld random letters twice; loss %.3f on the first copy, %.3f on the second "
      "(drop %.3f nats/char)\n",
      (long long)r.period, r.probe_loss_first, r.probe_loss_second, r.probe_loss_drop());
  if (imp)
    std::printf("intact loss: %.4f on the text, %.4f on the held-out slice; dloss = knocked out (%s) - intact\n",
                imp->text_loss, imp->heldout_loss,
                mode == KnockMode::Mean ? "replaced by its mean over the held-out slice" : "zeroed");
  print_table(r, imp.get());
  if (!a.json_out.empty()) write_output(a.json_out, as_json(r, imp.get(), *model, ids).dump(1) + "\n");
  if (!a.rollout_out.empty()) {
    if (r.rollout.empty()) throw Error("--rollout: the maps are not square (cross-attention), no rollout");
    write_output(a.rollout_out, npy_bytes({r.T, r.T}, r.rollout.data()));  // [T, T]
  }
  if (!a.logprobs_out.empty()) write_logprobs(a.logprobs_out, *model, ids, r.text_logprobs);
  return 0;
}

Command add_heads(CLI::App& app) {
  auto a = std::make_shared<HeadsArgs>();
  auto* c = app.add_subcommand("heads", "what every head does: role scores, the induction probe, knock-outs");
  a->m.add(c);
  c->add_option("--text", a->text, "the text (default: the first context characters of the held-out split)");
  c->add_option("--text-file", a->text_file, "read the text from a file");
  c->add_option("--period", a->period, "the induction probe: this many random lower-case letters, repeated once")
      ->check(CLI::Range(2, 100000));
  c->add_option("--seed", a->seed, "the induction probe's draw");
  c->add_option("--threshold", a->thresholds,
                "ROLE=X: label a head with ROLE when its score >= X (repeatable; roles: " + role_names() + ")");
  c->add_flag("--ablate", a->ablate, "knock out every head alone (and every layer): the loss change it causes");
  c->add_option("--ablate-mode", a->ablate_mode,
                "how --ablate removes a head: zero (its output set to 0) or mean (replaced by its mean over the "
                "held-out slice's positions)")
      ->check(CLI::IsMember({"zero", "mean"}));
  c->add_option("--json", a->json_out, "write every score (and knock-out) as JSON to this file");
  c->add_option("--rollout", a->rollout_out, "write the attention rollout on the text [T, T] as NPY to this file");
  c->add_option("--logprobs", a->logprobs_out, "write the text's per-character log-probabilities (.json|.csv|.npy)");
  return {c, [a] { return cmd_heads(*a); }};
}

}  // namespace attnscope
