// libFuzzer: config.json (the checkpoint's model description) on arbitrary bytes.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "config.h"
#include "error.h"
#include "tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  try {
    if (j.is_object() && j.contains("model"))
      attnscope::config_from_json(j["model"]);
    else
      attnscope::config_from_json(j);
  } catch (const attnscope::Error&) {
  }
  try {
    if (j.is_object() && j.contains("vocab") && j["vocab"].is_string())
      attnscope::Tokenizer t(j["vocab"].get<std::string>());
  } catch (const attnscope::Error&) {
  }
  return 0;
}
