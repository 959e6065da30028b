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

void ArrayDataset::set_epoch(std::int64_t epoch) {
  if (epoch == batches_.epoch()) return;
  batches_.set_epoch(epoch);
  order_ = batches_.order(epoch);
}

DataBatch ArrayDataset::get_batch(std::int64_t index) {
  if (index < 0 || index >= num_batches()) {
    throw IndexError(
        fmt::format("ArrayDataset: get_batch: index {} is out of range [0, {})", index, num_batches()));
  }
  const std::int64_t n = num_examples(), size = batches_.batch_size();
  const std::int64_t start = index * size;                      // < n: index < num_batches()
  const std::int64_t stop = start + std::min(size, n - start);  // start + size may overflow
  const Tensor rows = order_(Slice(start, stop));
  // copies of the rows (take), so a train_step may change its batch in place
  auto pick = [&](const std::vector<Tensor>& ts) {
    std::vector<Tensor> out;
    out.reserve(ts.size());
    for (const auto& t : ts) out.push_back(take(t, rows.to(t.device()), 0));
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

}  // namespace tapeflow
