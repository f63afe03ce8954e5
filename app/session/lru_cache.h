#pragma once
// A least-recently-used cache bounded by bytes: the worker's converted and final models, keyed by request key.
// Going back to a previous slider setting finds its model; a long session of slider play keeps at most
// `budget` bytes (the oldest entries go first; one entry larger than the budget is still kept, alone).
// Not thread-safe: the owner locks.
#include <cstddef>
#include <list>
#include <map>
#include <string>
#include <utility>

namespace attnscope::session {

template <typename V>
class LruCache {
 public:
  explicit LruCache(size_t budget_bytes) : budget_(budget_bytes) {}

  // The value under `key` (marked most recently used), or nullptr.
  const V* find(const std::string& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return nullptr;
    order_.splice(order_.begin(), order_, it->second);  // to the front: most recently used
    return &it->second->value;
  }

  // Inserts or replaces; then evicts from the least recently used end until within the budget.
  void put(const std::string& key, V value, size_t bytes) {
    erase(key);
    order_.push_front(Entry{key, std::move(value), bytes});
    index_[key] = order_.begin();
    bytes_ += bytes;
    while (bytes_ > budget_ && order_.size() > 1) erase(order_.back().key);
  }

  void erase(const std::string& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return;
    bytes_ -= it->second->bytes;
    order_.erase(it->second);
    index_.erase(it);
  }

  void clear() {
    order_.clear();
    index_.clear();
    bytes_ = 0;
  }
  size_t size() const { return order_.size(); }
  size_t bytes() const { return bytes_; }
  size_t budget() const { return budget_; }

 private:
  struct Entry {
    std::string key;
    V value;
    size_t bytes;
  };
  size_t budget_, bytes_ = 0;
  std::list<Entry> order_;  // front: most recently used
  std::map<std::string, typename std::list<Entry>::iterator> index_;
};

}  // namespace attnscope::session
