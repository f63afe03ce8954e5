#pragma once
// What the universal tests expect of each variant, from closed forms written here (not from the code under test).
#include <optional>
#include <string>

#include "params.h"

namespace attnscope {

struct Expectation {
  std::optional<int64_t> pairs;   // closed form: allowed (i, j) pairs of head h for T queries and S keys
  std::optional<double> row_sum;  // every row of the display sums to this (nullopt: no constant row sum)
  double tol = 1e-5;              // tolerance of the display/decode comparisons
  // false only where docs/variants.md#decode--prefill defines another reference for decoding (sinks: the
  // streaming prefill); the variant's own test then checks decoding against that reference.
  bool decode_equals_prefill = true;
};

// T queries, S keys (S = T for self-attention), head h of H.
Expectation expect_for(const std::string& variant, const ParamValues& p, int64_t T, int64_t S, int64_t h, int64_t H);
std::optional<Expectation> expect_masked(const std::string& variant, const ParamValues& p, int64_t T, int64_t S,
                                         int64_t h, int64_t H);  // oracles_masked.cpp
std::optional<Expectation> expect_kernel(const std::string& variant, const ParamValues& p, int64_t T, int64_t S,
                                         int64_t h, int64_t H);  // oracles_kernel.cpp

}  // namespace attnscope
