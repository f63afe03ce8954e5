#pragma once
// A least-recently-used cache bounded by bytes: the worker's converted and final models, keyed by request key.
// Going back to a previous slider setting finds its model; a long session of slider play keeps at most
// `budget` bytes of entries nobody else holds (the oldest go first). An entry still in use elsewhere (a shared_ptr
// held by more than this cache and the `shared` other caches its put() named: a column's model, its incremental
// state) is never evicted, so a budget smaller than the
// open columns' models does not make every keystroke rebuild them; those entries count against the budget, and the
// cache is over it only while they are in use. Not thread-safe: the owner locks.
#include <cstddef>
#include <iterator>
#include <list>
#include <map>
#include <memory>
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
  // `shared`: how many other caches hold this same value (they do not make it "in use").
  void put(const std::string& key, V value, size_t bytes, long shared = 0) {
    erase(key);
    order_.push_front(Entry{key, std::move(value), bytes, shared});
    index_[key] = order_.begin();
    bytes_ += bytes;
    for (auto it = std::prev(order_.end()); bytes_ > budget_ && it != order_.begin();) {  // never the newest
      auto victim = it--;
      if (!in_use(victim->value, victim->shared)) erase(victim->key);
    }
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
  template <typename T>
  static bool in_use(const std::shared_ptr<T>& p, long shared) {
    return p.use_count() > 1 + shared;
  }
  template <typename T>
  static bool in_use(const T&, long) {
    return false;
  }
  struct Entry {
    std::string key;
    V value;
    size_t bytes;
    long shared;
  };
  size_t budget_, bytes_ = 0;
  std::list<Entry> order_;  // front: most recently used
  std::map<std::string, typename std::list<Entry>::iterator> index_;
};

}  // namespace attnscope::session
