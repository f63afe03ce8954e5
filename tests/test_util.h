#pragma once
// Helpers shared by the test files (torch-free).
#include <functional>
#include <string>

#include "config.h"
#include "error.h"

namespace attnscope::testing_util {

// The message of the attnscope::Error that f throws, or "(no error)".
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// A small model so every test is fast: 2 layers, d 32, 4 heads (d_h 8), context 48, vocabulary 20.
inline ModelConfig small_config(const std::string& variant, const ParamValues& p = {}, PosKind pos = PosKind::Rope,
                                int64_t context = 48) {
  ModelConfig c;
  c.n_layer = 2;
  c.d_model = 32;
  c.n_head = 4;
  c.context = context;
  c.vocab_size = 20;
  c.position = pos;
  c.set_all_layers(variant, p);
  return c;
}

}  // namespace attnscope::testing_util
