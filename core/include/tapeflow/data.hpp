#pragma once
/// Feeding examples to training: batches with seeded shuffling, and Keras's validation split.
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <utility>

#include "tapeflow/generator.hpp"
#include "tapeflow/tensor.hpp"

namespace tapeflow {

/// A random permutation of 0 .. n-1 (int64 [n]): Fisher-Yates driven by Philox numbers from
/// `gen`, of which it uses n counters. The same seed and offset give the same permutation on
/// every run and platform.
Tensor random_permutation(std::int64_t n, Generator& gen);

/// How a BatchIterator walks its examples.
struct BatchOptions {
  bool shuffle = false;         ///< a new random order every epoch
  std::uint64_t seed = 0;       ///< with shuffle: the order depends only on (seed, epoch)
  bool drop_remainder = false;  ///< drop the last batch when it is smaller than batch_size
  std::int64_t epoch = 0;       ///< the epoch the first begin() starts
};

/// One batch: rows of x and the same rows of y (undefined when the iterator has no y).
/// Unpacks with structured bindings: `auto [xb, yb] = batch;`.
struct Batch {
  Tensor x;
  Tensor y;
};

/// Batches of (x, y) along axis 0, the book's BatchGenerator. Each begin() starts an epoch:
///
///     BatchIterator batches(x, y, 128, {/*shuffle=*/true, /*seed=*/1});
///     for (int epoch = 0; epoch < 5; ++epoch)
///       for (auto [xb, yb] : batches) { ... }  // a new order every epoch
///
/// Without shuffling, batches are views of x and y (no copy); with it, they are take() copies
/// of the rows the epoch's order picks. x and y keep their pairing in every batch. y may be an
/// undefined Tensor() (batches of x alone, for predict). The iterator and the iterators it
/// gives keep handles to x and y: an iterator stays valid after its BatchIterator is gone.
class BatchIterator {
 public:
  /// Throws ShapeError if x or y is rank 0 or their lengths differ, ValueError if
  /// batch_size <= 0 or options.epoch < 0.
  BatchIterator(Tensor x, Tensor y, std::int64_t batch_size, BatchOptions options = {});

  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = Batch;

    iterator() = default;
    /// The batch at this position (computed on each call).
    Batch operator*() const;
    iterator& operator++() {
      ++index_;
      return *this;
    }
    iterator operator++(int) {
      iterator old = *this;
      ++index_;
      return old;
    }
    bool operator==(const iterator& o) const { return index_ == o.index_; }
    bool operator!=(const iterator& o) const { return index_ != o.index_; }

   private:
    friend class BatchIterator;
    iterator(Tensor x, Tensor y, Tensor order, std::int64_t batch_size, std::int64_t count, std::int64_t index)
        : x_(std::move(x)), y_(std::move(y)), order_(std::move(order)), batch_size_(batch_size), count_(count),
          index_(index) {}
    // self-contained (handles, not a pointer to the BatchIterator): it outlives its BatchIterator
    Tensor x_, y_;
    Tensor order_;  // this epoch's example order (undefined: in order, batches are views)
    std::int64_t batch_size_ = 0;
    std::int64_t count_ = 0;  // batches in the epoch
    std::int64_t index_ = 0;
  };

  /// Starts epoch epoch() (draws its order when shuffling) and advances epoch().
  iterator begin();
  iterator end() const;

  /// Batches per epoch: ceil(n / batch_size), or floor with drop_remainder.
  std::int64_t size() const;
  /// Number of examples n (x's length).
  std::int64_t num_examples() const { return n_; }
  std::int64_t batch_size() const { return batch_size_; }
  const BatchOptions& options() const { return options_; }
  /// The epoch the next begin() starts.
  std::int64_t epoch() const { return epoch_; }
  void set_epoch(std::int64_t epoch);
  /// The order of the examples in `epoch` (int64 [n]): arange(n) without shuffling.
  Tensor order(std::int64_t epoch) const;

 private:
  Tensor x_, y_;
  std::int64_t n_ = 0;
  std::int64_t batch_size_ = 0;
  BatchOptions options_;
  std::int64_t epoch_ = 0;
};

/// Training and validation parts of (x, y), as Keras's validation_split.
struct TrainValidationSplit {
  Tensor x_train, y_train;
  Tensor x_val, y_val;
};

/// Keras's validation_split: the last `validation_fraction` of the examples (before any
/// shuffling) become the validation set, split at floor(n * (1 - validation_fraction)). The
/// four parts are views. y may be undefined (its parts are then undefined). Throws ValueError
/// unless 0 < validation_fraction < 1 and both parts are non-empty; ShapeError as BatchIterator.
///
///     auto [x_train, y_train, x_val, y_val] = train_validation_split(x, y, 0.2);
TrainValidationSplit train_validation_split(const Tensor& x, const Tensor& y, double validation_fraction);

}  // namespace tapeflow
