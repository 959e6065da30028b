#pragma once
// A map from tensor ids to values, open addressing with linear probing: the tape inserts one
// id per recorded op, and a node-based std::unordered_map spent an allocation on each.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace tapeflow::detail {

// Keys are tensor ids (never 0: ids count from 1; 0 marks an empty slot). No erase: a caller
// that needs one stores a value it reads as absent.
template <class V>
class IdMap {
 public:
  IdMap() = default;
  IdMap(const IdMap&) = default;
  IdMap& operator=(const IdMap&) = default;
  // a moved-from map is empty (not a table with its old count and no slots)
  IdMap(IdMap&& o) noexcept
      : keys_(std::move(o.keys_)), values_(std::move(o.values_)), size_(o.size_), mask_(o.mask_), shift_(o.shift_) {
    o.clear();
  }
  IdMap& operator=(IdMap&& o) noexcept {
    if (this != &o) {
      keys_ = std::move(o.keys_);
      values_ = std::move(o.values_);
      size_ = o.size_;
      mask_ = o.mask_;
      shift_ = o.shift_;
      o.clear();
    }
    return *this;
  }

  // The value of id, or nullptr.
  V* find(std::uint64_t id) {
    if (keys_.empty()) return nullptr;
    for (std::size_t i = slot(id);; i = (i + 1) & mask_) {
      if (keys_[i] == id) return &values_[i];
      if (keys_[i] == 0) return nullptr;
    }
  }
  bool contains(std::uint64_t id) { return find(id) != nullptr; }

  // The value of id, inserted as V() when absent; second: whether it was inserted.
  std::pair<V*, bool> emplace(std::uint64_t id) {
    if ((size_ + 1) * 4 > keys_.size() * 3) grow();  // load <= 3/4
    for (std::size_t i = slot(id);; i = (i + 1) & mask_) {
      if (keys_[i] == id) return {&values_[i], false};
      if (keys_[i] == 0) {
        keys_[i] = id;
        ++size_;
        return {&values_[i], true};
      }
    }
  }

  std::size_t size() const { return size_; }
  // Empties the table, keeping a small one's memory for the next use.
  void reset() {
    if (keys_.size() > kKeep) return clear();
    std::fill(keys_.begin(), keys_.end(), 0);
    std::fill(values_.begin(), values_.end(), V());
    size_ = 0;
  }
  void clear() {
    keys_.clear();
    values_.clear();
    size_ = 0;
    mask_ = 0;
    shift_ = 64;
  }

 private:
  static constexpr std::size_t kKeep = 4096;
  std::vector<std::uint64_t> keys_;
  std::vector<V> values_;
  std::size_t size_ = 0, mask_ = 0;
  int shift_ = 64;

  // Fibonacci hashing: ids are consecutive, the multiply spreads them over the table.
  std::size_t slot(std::uint64_t id) const {
    return static_cast<std::size_t>((id * 0x9E3779B97F4A7C15ull) >> shift_) & mask_;
  }

  void grow() {
    const std::size_t capacity = keys_.empty() ? 64 : keys_.size() * 2;
    std::vector<std::uint64_t> keys(capacity, 0);
    std::vector<V> values(capacity);
    keys.swap(keys_);
    values.swap(values_);
    mask_ = capacity - 1;
    shift_ = 64;
    for (std::size_t c = capacity; c > 1; c >>= 1) --shift_;
    for (std::size_t j = 0; j < keys.size(); ++j) {
      if (keys[j] == 0) continue;
      std::size_t i = slot(keys[j]);
      while (keys_[i] != 0) i = (i + 1) & mask_;
      keys_[i] = keys[j];
      values_[i] = std::move(values[j]);
    }
  }
};

}  // namespace tapeflow::detail
