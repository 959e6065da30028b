#pragma once
/// Seeded counter-based random numbers (Philox-4x32-10): the same seed gives the same
/// numbers on every run and every device.
#include <cstdint>

namespace tapeflow {

/// A seed and a counter. Each draw of n numbers uses counters [offset, offset + n) and
/// advances the offset, so draws never overlap. Not shared between threads.
class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : seed_(seed) {}
  std::uint64_t seed() const { return seed_; }
  std::uint64_t offset() const { return offset_; }
  /// Reserves n counters and returns the first.
  std::uint64_t advance(std::uint64_t n) {
    const std::uint64_t first = offset_;
    offset_ += n;
    return first;
  }
  void manual_seed(std::uint64_t seed) {
    seed_ = seed;
    offset_ = 0;
  }
  /// Restores a state read from seed() and offset() (a checkpoint): the next draw continues
  /// exactly where the saved generator would have, as torch.Generator.set_state.
  void set_state(std::uint64_t seed, std::uint64_t offset) {
    seed_ = seed;
    offset_ = offset;
  }

 private:
  std::uint64_t seed_;
  std::uint64_t offset_ = 0;
};

}  // namespace tapeflow
