#pragma once
// `attnscope kv`: the KV-cache calculator (attention/kv_calc.h) on the command line.
#include <cstdint>
#include <string>

namespace attnscope {

struct KvArgs {
  std::string preset, custom, dtype = "fp16";
  int64_t seq = 0, batch = 1;
  bool list = false, as_json = false;
};
int cmd_kv(const KvArgs& a);  // throws Error for bad input (unknown preset, --seq out of range, bad dtype)

}  // namespace attnscope
