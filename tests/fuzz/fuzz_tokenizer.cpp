// libFuzzer: the tokenizer on arbitrary bytes (invalid UTF-8 included) never throws in skip/replace mode, and
// every unknown character it reports lies inside the text.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "error.h"
#include "tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const attnscope::Tokenizer tok =
      attnscope::Tokenizer::from_corpus("\n !$&',-.3:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");
  const std::string text(reinterpret_cast<const char*>(data), size);
  for (auto policy : {attnscope::UnknownPolicy::Skip, attnscope::UnknownPolicy::Replace}) {
    attnscope::Encoded e = tok.encode(text, policy);
    for (const auto& u : e.unknown)
      if (u.offset >= size || u.text.empty()) std::abort();
    if (e.ids.size() != e.source_offset.size()) std::abort();
    (void)tok.decode(e.ids);
    (void)attnscope::describe_unknown(e.unknown);
  }
  try {
    tok.encode_or_throw(text, attnscope::UnknownPolicy::Error);
  } catch (const attnscope::Error&) {
  }
  return 0;
}
