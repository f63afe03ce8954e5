// libFuzzer: `--param k=v` parsing and resolution against every registered variant.
#include <cstdint>
#include <string>

#include "error.h"
#include "registry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string kv(reinterpret_cast<const char*>(data), size);
  for (const auto& v : attnscope::variant_registry()) {
    try {
      auto p = attnscope::parse_param(v.params, v.name, kv);
      attnscope::ParamValues r = attnscope::resolve_params(v.params, v.name, {p});
      for (const auto& spec : v.params) (void)attnscope::format_param(spec, r.at(spec.name));
    } catch (const attnscope::Error&) {
    }
  }
  return 0;
}
