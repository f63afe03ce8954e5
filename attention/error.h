#pragma once
#include <stdexcept>
#include <string>
namespace attnscope {
// Every user-facing failure (bad input, corrupt file, impossible parameter) is an Error with a clear message.
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
}  // namespace attnscope
