#pragma once
// Shared by the engine's LibTorch translation units (engine.cpp, train.cpp).
#include "engine.h"
#include "nn.h"

namespace attnscope {

struct Model::Impl {
  GPT net{nullptr};
  Tokenizer tok;
  nlohmann::json meta = nlohmann::json::object();
  std::string mode = "trained";
  torch::Device device = torch::kCPU;
  std::string source_dir;  // the checkpoint folder the weights were loaded from ("" for a new model)
};

torch::Tensor to_tensor(const std::vector<int64_t>& ids, torch::Device dev);  // [1, T]
void save_net(GPTImpl& net, const Tokenizer& tok, const nlohmann::json& meta, const std::string& dir, DType dt,
              const nlohmann::json& extra_top = nlohmann::json::object());

}  // namespace attnscope
