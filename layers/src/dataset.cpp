// The Dataset adapters: arrays in memory and endless generators.
#include "tapeflow/dataset.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "tapeflow/error.hpp"
#include "tapeflow/ops.hpp"

namespace tapeflow {
namespace {

// The common length n of every tensor, each [n, ...]; names them all when they differ.
std::int64_t common_length(const std::vector<Tensor>& inputs, const std::vector<Tensor>& targets,
                           const Tensor& sample_weight) {
  const char* op = "ArrayDataset";
  if (inputs.empty()) throw ValueError(fmt::format("{}: no inputs given", op));
  std::string shapes;
  auto add = [&](const std::vector<Tensor>& ts, const char* kind) {
    for (std::size_t i = 0; i < ts.size(); ++i) {
      if (!ts[i].defined()) throw ValueError(fmt::format("{}: {}[{}] is undefined", op, kind, i));
      shapes += fmt::format(" {}[{}] {}", kind, i, shape_str(ts[i].shape()));
    }
  };
  add(inputs, "inputs");
  add(targets, "targets");
  const std::int64_t n = inputs[0].rank() > 0 ? inputs[0].dim(0) : -1;
  auto same = [&](const Tensor& t) { return t.rank() > 0 && t.dim(0) == n; };
  if (n < 0 || !std::all_of(inputs.begin(), inputs.end(), same) ||
      !std::all_of(targets.begin(), targets.end(), same)) {
    throw ShapeError(fmt::format("{}: every input and target must be [n, ...] with the same n:{}", op, shapes));
  }
  if (sample_weight.defined() && (sample_weight.rank() != 1 || sample_weight.dim(0) != n)) {
    throw ShapeError(fmt::format("{}: sample_weight must be [n] = [{}], got {}", op, n,
                                 shape_str(sample_weight.shape())));
  }
  return n;
}

// The positions (in `order`) of batch `index` of `batches`: IndexError naming `who` outside
// [0, batches.size()).
Tensor batch_positions(const char* who, const BatchIterator& batches, const Tensor& order, std::int64_t index) {
  const auto count = batches.size();
  if (index < 0 || index >= count) {
    throw IndexError(fmt::format("{}: get_batch: index {} is out of range [0, {})", who, index, count));
  }
  const std::int64_t n = batches.num_examples(), size = batches.batch_size();
  const std::int64_t start = index * size;                              // < n: index < size()
  return order(Slice(start, start + std::min(size, n - start)));  // start + size may overflow
}

// Moves `batches` to `epoch` and `order` to its order.
void move_to_epoch(BatchIterator& batches, Tensor& order, std::int64_t epoch) {
  if (epoch == batches.epoch()) return;
  batches.set_epoch(epoch);
  order = batches.order(epoch);
}

}  // namespace

ArrayDataset::ArrayDataset(std::vector<Tensor> inputs, std::vector<Tensor> targets, std::int64_t batch_size,
                           BatchOptions options, Tensor sample_weight)
    : inputs_(std::move(inputs)),
      targets_(std::move(targets)),
      sample_weight_(std::move(sample_weight)),
      batches_(arange(common_length(inputs_, targets_, sample_weight_)), Tensor(), batch_size, options) {
  order_ = batches_.order(batches_.epoch());
}

ArrayDataset::ArrayDataset(const Tensor& x, const Tensor& y, std::int64_t batch_size, BatchOptions options,
                           Tensor sample_weight)
    : ArrayDataset(std::vector<Tensor>{x}, y.defined() ? std::vector<Tensor>{y} : std::vector<Tensor>{}, batch_size,
                   options, std::move(sample_weight)) {}

void ArrayDataset::set_epoch(std::int64_t epoch) { move_to_epoch(batches_, order_, epoch); }

DataBatch ArrayDataset::get_batch(std::int64_t index) {
  const Tensor rows = batch_positions("ArrayDataset", batches_, order_, index);
  // copies of the rows (take), so a train_step may change its batch in place; the rows come
  // from a permutation of [0, length), so clip mode (no index read back from a GPU)
  auto pick = [&](const std::vector<Tensor>& ts) {
    std::vector<Tensor> out;
    out.reserve(ts.size());
    for (const auto& t : ts) out.push_back(take(t, rows.to(t.device()), 0, IndexMode::Clip));
    return out;
  };
  DataBatch batch{pick(inputs_), pick(targets_), Tensor()};
  if (sample_weight_.defined()) batch.sample_weight = pick({sample_weight_})[0];
  return batch;
}

GeneratorDataset::GeneratorDataset(std::function<DataBatch()> next) : next_(std::move(next)) {
  if (!next_) throw ValueError("GeneratorDataset: the generator function is empty");
}

DataBatch GeneratorDataset::get_batch(std::int64_t) { return next_(); }

namespace {

// The first rows of Keras's sequences (checked as Keras checks them): int64 [count].
Tensor timeseries_starts(const Tensor& data, const Tensor& targets, std::int64_t length, const TimeseriesOptions& o) {
  const char* op = "timeseries_dataset_from_array";
  if (!data.defined() || data.rank() == 0) throw ShapeError(fmt::format("{}: data must be [n, ...]", op));
  const std::int64_t n = data.dim(0);
  if (targets.defined() && targets.rank() == 0) throw ShapeError(fmt::format("{}: targets must be [m, ...]", op));
  if (length <= 0) throw ValueError(fmt::format("{}: sequence_length must be > 0, got {}", op, length));
  if (o.start_index < 0 || o.start_index >= n) {
    throw ValueError(fmt::format("{}: start_index must be in [0, {}) (the data's length), got {}", op, n, o.start_index));
  }
  const std::int64_t end = o.end_index < 0 ? n : o.end_index;
  if (o.end_index >= 0 && (o.end_index <= o.start_index || o.end_index >= n)) {
    throw ValueError(fmt::format("{}: end_index must be in ({}, {}) (after start_index, before the data's end), got {}",
                                 op, o.start_index, n, o.end_index));
  }
  if (o.sampling_rate <= 0 || o.sampling_rate >= n) {
    throw ValueError(fmt::format("{}: sampling_rate must be in [1, {}) (the data's length), got {}", op, n,
                                 o.sampling_rate));
  }
  if (o.sequence_stride <= 0 || o.sequence_stride >= n) {
    throw ValueError(fmt::format("{}: sequence_stride must be in [1, {}) (the data's length), got {}", op, n,
                                 o.sequence_stride));
  }
  std::int64_t count = end - o.start_index - (length - 1) * o.sampling_rate;
  if (targets.defined()) count = std::min(count, targets.dim(0) - o.start_index);
  if (count <= 0) {
    throw ValueError(fmt::format("{}: rows [{}, {}) of data {}{} hold no sequence of {} rows {} apart", op,
                                 o.start_index, end, shape_str(data.shape()),
                                 targets.defined() ? " (and targets " + shape_str(targets.shape()) + ")" : "",
                                 length, o.sampling_rate));
  }
  return arange(double(o.start_index), double(o.start_index + count), double(o.sequence_stride), kInt64);
}

}  // namespace

TimeseriesDataset::TimeseriesDataset(Tensor data, Tensor targets, std::int64_t sequence_length,
                                     TimeseriesOptions options)
    : data_(std::move(data)),
      targets_(std::move(targets)),
      sequence_length_(sequence_length),
      options_(options),
      starts_(timeseries_starts(data_, targets_, sequence_length, options)),
      batches_(arange(starts_.dim(0)), Tensor(), options.batch_size, BatchOptions{options.shuffle, options.seed, false, 0}) {
  order_ = batches_.order(0);
}

void TimeseriesDataset::set_epoch(std::int64_t epoch) { move_to_epoch(batches_, order_, epoch); }

DataBatch TimeseriesDataset::get_batch(std::int64_t index) {
  const Tensor picked = batch_positions("TimeseriesDataset", batches_, order_, index);  // positions in the starts
  // positions and rows lie in range by construction (timeseries_starts checked the lengths):
  // clip mode reads no index back from a GPU
  const Tensor first = take(starts_, picked, 0, IndexMode::Clip);  // int64 [b]: the sequences' first rows
  // [b, sequence_length] rows: first + k * sampling_rate
  const Tensor steps = arange(0.0, double(sequence_length_ * options_.sampling_rate), double(options_.sampling_rate), kInt64);
  const Tensor rows = first.expand_dims(1) + steps.expand_dims(0);
  Shape shape = data_.shape();
  shape[0] = sequence_length_;
  shape.insert(shape.begin(), first.dim(0));
  DataBatch batch;
  batch.inputs = {take(data_, rows.reshape({-1}).to(data_.device()), 0, IndexMode::Clip).reshape(shape)};
  if (targets_.defined()) batch.targets = {take(targets_, first.to(targets_.device()), 0, IndexMode::Clip)};
  return batch;
}

}  // namespace tapeflow
