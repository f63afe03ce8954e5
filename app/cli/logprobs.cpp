// Log-probability files (logprobs.h).
#include "logprobs.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli_io.h"
#include "error.h"
#include "npy.h"

namespace attnscope {

namespace {
std::string extension(const std::string& path) {
  const size_t dot = path.rfind('.');
  return dot == std::string::npos ? "" : path.substr(dot + 1);
}
}  // namespace

void check_logprobs_path(const std::string& path) {
  const std::string e = extension(path);
  if (e != "json" && e != "csv" && e != "npy")
    throw Error("--logprobs '" + path + "': the file name must end in .json, .csv or .npy (the format)");
}

void write_logprobs(const std::string& path, const Model& m, const std::vector<int64_t>& ids,
                    const std::vector<float>& logprobs) {
  check_logprobs_path(path);
  const std::string e = extension(path);
  const Tokenizer& tok = m.tokenizer();
  std::string bytes;
  if (e == "npy") {
    bytes = npy_bytes({int64_t(logprobs.size())}, logprobs.data());  // [T - 1]
  } else if (e == "json") {
    nlohmann::json j = {
        {"text", tok.decode(ids)}, {"units", "nats"}, {"predicted", nlohmann::json::array()}, {"logprobs", logprobs}};
    for (size_t t = 0; t + 1 < ids.size(); ++t) j["predicted"].push_back(tok.decode({ids[t + 1]}));
    bytes = j.dump() + "\n";
  } else {
    bytes = "position,predicted,logprob\n";  // the character at t + 1 (a newline as \n) and its log-probability
    char buf[64];
    for (size_t t = 0; t + 1 < ids.size(); ++t) {
      std::string c = tok.decode({ids[t + 1]});
      if (c == "\"") c = "\"\"";  // CSV quoting
      if (c == "\n") c = "\\n";   // one line per row
      std::snprintf(buf, sizeof buf, ",%.6g\n", double(logprobs[t]));
      bytes += std::to_string(t + 1) + ",\"" + c + "\"" + buf;
    }
  }
  write_output(path, bytes);
}

}  // namespace attnscope
