// libFuzzer: the safetensors parser on arbitrary bytes must only ever throw attnscope::Error.
#include <cstdint>

#include "error.h"
#include "safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    attnscope::StFile f = attnscope::parse_safetensors(data, size, "fuzz");
    for (const auto& t : f.tensors) (void)attnscope::decode_floats(t);
  } catch (const attnscope::Error&) {
  }
  return 0;
}
