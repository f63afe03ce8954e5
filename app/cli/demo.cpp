// The no-argument entry point of a build without the GUI: a short demonstration on the bundled model.
#include <cstdio>

#include "engine.h"
#include "error.h"

namespace attnscope {

int run_demo() {
  try {
    auto model = Model::load(default_model_dir(), "auto");
    const std::string prompt = "ROMEO:\n";
    std::printf("attnscope demo (this build has no GUI window; see `attnscope --help` for every command)\n");
    std::printf("bundled model: %s, %lld layers x %lld heads, d_model %lld, context %lld, %lld parameters, on %s\n\n",
                model->config().variant_summary().c_str(), (long long)model->config().n_layer,
                (long long)model->config().n_head, (long long)model->config().d_model,
                (long long)model->config().context, (long long)model->parameter_count(), model->device_name().c_str());
    GenerateOptions g;
    g.tokens = 160;
    g.temperature = 0.8;
    g.top_k = 20;
    auto ids = model->tokenizer().encode_or_throw(prompt, UnknownPolicy::Error);
    auto out = model->generate(ids, g);
    std::string text = prompt + model->tokenizer().decode(out);
    std::printf("%s\n\n", text.c_str());
    auto all = model->tokenizer().encode_or_throw(text, UnknownPolicy::Error);
    AttentionMaps m = model->attend(all);
    std::printf(
        "attention over those %lld characters: %lld layers x %lld heads of %lld x %lld, forward %.1f ms, "
        "loss %.3f nats/char\n",
        (long long)m.queries, (long long)m.layers, (long long)m.heads, (long long)m.queries, (long long)m.keys,
        m.forward_ms, m.loss);
    // Where does the last character look? The three strongest keys of layer 0's head 0... per layer.
    for (int64_t l = 0; l < m.layers; ++l) {
      int64_t best = 0;
      for (int64_t j = 0; j < m.keys; ++j)
        if (m.at(l, 0, m.queries - 1, j) > m.at(l, 0, m.queries - 1, best)) best = j;
      std::printf("  layer %lld head 0: the last character attends most to position %lld ('%c', weight %.2f)\n",
                  (long long)l, (long long)best,
                  text[static_cast<size_t>(best)] == '\n' ? ' ' : text[static_cast<size_t>(best)],
                  m.at(l, 0, m.queries - 1, best));
    }
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "attnscope: error: %s\n", e.what());
    return 1;
  }
}

}  // namespace attnscope
