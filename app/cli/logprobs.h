#pragma once
// Per-character next-character log-probabilities as a file for scripts (`attend --logprobs F`, `heads --logprobs F`):
// the format follows F's extension (.json, .csv or .npy).
#include <cstdint>
#include <string>
#include <vector>

#include "engine.h"

namespace attnscope {

// Throws Error when the extension is none of .json, .csv, .npy (call before the forward).
void check_logprobs_path(const std::string& path);
// logprobs [T - 1]: entry t = log p(ids[t + 1] | ids[..t]) in nats. Written atomically.
void write_logprobs(const std::string& path, const Model& m, const std::vector<int64_t>& ids,
                    const std::vector<float>& logprobs);

}  // namespace attnscope
