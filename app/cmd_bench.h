#pragma once
// `attnscope bench`: latency, memory and decode speed of single attention layers over sequence length
// (attention/bench.h), printed as tables and optionally written as JSON, CSV and a log-log PNG.
#include <string>

#include "bench.h"

namespace attnscope {

struct BenchArgs {
  std::string variants;  // comma-separated (empty: every variant)
  std::string lengths = "128,256,512,1024,2048,4096,8192,16384";
  BenchOptions o;
  std::string json, csv, plot;  // output files (empty: not written)
};
int cmd_bench(const BenchArgs& a);  // throws Error for bad input

}  // namespace attnscope
