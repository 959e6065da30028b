// Batching and the validation split.
#include "tapeflow/data.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

#include <fmt/format.h>

#include "tapeflow/kernels/functors.hpp"
#include "tapeflow/ops.hpp"

namespace tapeflow {
namespace {

// High 64 bits of a * b, without a 128-bit type.
std::uint64_t mul_high(std::uint64_t a, std::uint64_t b) {
  const std::uint64_t a_lo = a & 0xFFFFFFFFu, a_hi = a >> 32, b_lo = b & 0xFFFFFFFFu, b_hi = b >> 32;
  const std::uint64_t lo_lo = a_lo * b_lo, hi_lo = a_hi * b_lo, lo_hi = a_lo * b_hi, hi_hi = a_hi * b_hi;
  const std::uint64_t mid = (lo_lo >> 32) + (hi_lo & 0xFFFFFFFFu) + lo_hi;
  return hi_hi + (hi_lo >> 32) + (mid >> 32);
}

// x and y are examples along axis 0, of the same length.
std::int64_t check_examples(const Tensor& x, const Tensor& y, const char* op) {
  if (!x.defined()) throw ValueError(fmt::format("{}: x is undefined", op));
  if (x.rank() == 0) throw ShapeError(fmt::format("{}: x must have an example axis, got shape []", op));
  if (y.defined()) {
    if (y.rank() == 0) throw ShapeError(fmt::format("{}: y must have an example axis, got shape []", op));
    if (y.dim(0) != x.dim(0)) {
      throw ShapeError(fmt::format("{}: x has {} examples (shape {}) but y has {} (shape {})", op, x.dim(0),
                                   shape_str(x.shape()), y.dim(0), shape_str(y.shape())));
    }
  }
  return x.dim(0);
}

}  // namespace

Tensor random_permutation(std::int64_t n, Generator& gen) {
  if (n < 0) throw ValueError(fmt::format("random_permutation: n must be >= 0, got {}", n));
  Tensor out = arange(n, kInt64);
  auto* p = out.data<std::int64_t>();
  const std::uint64_t first = gen.advance(static_cast<std::uint64_t>(n));
  // Fisher-Yates from the back: position i swaps with j uniform in [0, i]. j is the high word
  // of a 64-bit Philox number times (i + 1) (Lemire's method without the rejection step: its
  // bias, under (i + 1) / 2^64, is far below anything a shuffle of examples can show).
  for (std::int64_t i = n - 1; i > 0; --i) {
    const auto r = kernels::philox4x32_10(first + static_cast<std::uint64_t>(i), gen.seed());
    const std::uint64_t bits = (std::uint64_t(r.v[0]) << 32) | r.v[1];
    const auto j = static_cast<std::int64_t>(mul_high(bits, static_cast<std::uint64_t>(i) + 1));
    std::swap(p[i], p[j]);
  }
  return out;
}

BatchIterator::BatchIterator(Tensor x, Tensor y, std::int64_t batch_size, BatchOptions options)
    : x_(std::move(x)), y_(std::move(y)), batch_size_(batch_size), options_(options) {
  n_ = check_examples(x_, y_, "BatchIterator");
  if (batch_size <= 0) throw ValueError(fmt::format("BatchIterator: batch_size must be positive, got {}", batch_size));
  set_epoch(options.epoch);
}

void BatchIterator::set_epoch(std::int64_t epoch) {
  if (epoch < 0) throw ValueError(fmt::format("BatchIterator: epoch must be >= 0, got {}", epoch));
  epoch_ = epoch;
}

std::int64_t BatchIterator::size() const {
  // ceil without n + batch_size - 1, which overflows for a batch_size near INT64_MAX
  return n_ / batch_size_ + (!options_.drop_remainder && n_ % batch_size_ != 0 ? 1 : 0);
}

Tensor BatchIterator::order(std::int64_t epoch) const {
  if (epoch < 0) throw ValueError(fmt::format("BatchIterator::order: epoch must be >= 0, got {}", epoch));
  if (!options_.shuffle) return arange(n_, kInt64);
  // Epoch e uses counters [e * n, (e + 1) * n) of the seed's stream: epochs never share numbers.
  Generator gen(options_.seed);
  gen.advance(static_cast<std::uint64_t>(epoch) * static_cast<std::uint64_t>(n_));
  return random_permutation(n_, gen);
}

BatchIterator::iterator BatchIterator::begin() {
  Tensor epoch_order = options_.shuffle ? order(epoch_) : Tensor();
  ++epoch_;
  return iterator(x_, y_, std::move(epoch_order), batch_size_, size(), 0);
}

BatchIterator::iterator BatchIterator::end() const { return iterator(Tensor(), Tensor(), Tensor(), 0, 0, size()); }

Batch BatchIterator::iterator::operator*() const {
  if (!x_.defined() || index_ < 0 || index_ >= count_) {
    throw IndexError(fmt::format("BatchIterator: batch {} is out of range", index_));
  }
  const std::int64_t n = x_.dim(0);
  const std::int64_t start = index_ * batch_size_;  // < n: index_ < count_
  const std::int64_t stop = start + std::min(batch_size_, n - start);  // start + batch_size_ may overflow
  if (!order_.defined()) return {x_(Slice(start, stop)), y_.defined() ? y_(Slice(start, stop)) : Tensor()};
  // rows of a permutation of [0, n): clip mode reads no index back from a GPU
  const Tensor rows = order_(Slice(start, stop));
  return {take(x_, rows.to(x_.device()), 0, IndexMode::Clip),
          y_.defined() ? take(y_, rows.to(y_.device()), 0, IndexMode::Clip) : Tensor()};
}

TrainValidationSplit train_validation_split(const Tensor& x, const Tensor& y, double validation_fraction) {
  const char* op = "train_validation_split";
  const std::int64_t n = check_examples(x, y, op);
  if (!(validation_fraction > 0 && validation_fraction < 1)) {
    throw ValueError(fmt::format("{}: validation_fraction must be in (0, 1), got {}", op, validation_fraction));
  }
  // Keras's formula, so the same data split at the same row.
  const auto split_at = static_cast<std::int64_t>(std::floor(static_cast<double>(n) * (1.0 - validation_fraction)));
  if (split_at <= 0 || split_at >= n) {
    throw ValueError(fmt::format("{}: {} examples are too few to split with validation_fraction={} ({} for training, "
                                 "{} for validation)",
                                 op, n, validation_fraction, std::max<std::int64_t>(split_at, 0),
                                 n - std::max<std::int64_t>(split_at, 0)));
  }
  TrainValidationSplit out;
  out.x_train = x(Slice(none, split_at));
  out.x_val = x(Slice(split_at, none));
  if (y.defined()) {
    out.y_train = y(Slice(none, split_at));
    out.y_val = y(Slice(split_at, none));
  }
  return out;
}

}  // namespace tapeflow
