// Metrics: counts and sums read back to the host after each batch.
#include "tapeflow/metrics.hpp"

#include <fmt/format.h>

#include "tapeflow/losses.hpp"
#include "tapeflow/ops.hpp"

namespace tapeflow::metrics {
namespace {

double count_true(const Tensor& mask) { return static_cast<double>(sum(mask.astype(kInt64)).item<std::int64_t>()); }

void check_defined(const Tensor& y_true, const Tensor& y_pred, const std::string& metric) {
  if (!y_true.defined() || !y_pred.defined()) {
    throw ValueError(fmt::format("{}: y_true or y_pred is undefined", metric));
  }
}

void check_same_shape(const Tensor& a, const Tensor& b, const std::string& metric, const char* what) {
  if (a.shape() != b.shape()) {
    throw ShapeError(fmt::format("{}: y_true {} and {} {} must have the same shape", metric, shape_str(a.shape()), what,
                                 shape_str(b.shape())));
  }
}

}  // namespace

void Mean::update_state(const Tensor& values) {
  if (!values.defined()) throw ValueError(fmt::format("{}: values are undefined", name()));
  accumulate(sum(values.astype(kFloat64)).item<double>(), static_cast<double>(values.size()));
}

void Mean::update_state(const Tensor& values, const Tensor& sample_weight) {
  if (!sample_weight.defined()) return update_state(values);
  if (!values.defined()) throw ValueError(fmt::format("{}: values are undefined", name()));
  const Tensor v = values.astype(kFloat64);
  const Tensor w = sample_weight.astype(kFloat64).broadcast_to(v.shape());
  accumulate(sum(v * w).item<double>(), sum(w).item<double>());
}

void Mean::update_state(double value, double weight) { accumulate(value * weight, weight); }

namespace {

// Correct predictions in one batch, and how many predictions there were.
struct Hits {
  double correct, total;
};

Hits sparse_categorical_hits(const Tensor& y_true, const Tensor& y_pred, const std::string& metric) {
  check_defined(y_true, y_pred, metric);
  if (y_pred.rank() < 1) throw ShapeError(fmt::format("{}: y_pred must have a class axis, got a scalar", metric));
  Tensor labels = y_true;
  if (labels.rank() == y_pred.rank() && labels.dim(-1) == 1) labels = labels.squeeze({-1});
  const Tensor predicted = argmax(y_pred, -1);  // int64 [batch, ...]
  check_same_shape(labels, predicted, metric, "argmax(y_pred)");
  if (!is_integral(labels.dtype())) labels = labels.astype(kInt64);
  return {count_true(equal(labels, predicted)), static_cast<double>(predicted.size())};
}

Hits categorical_hits(const Tensor& y_true, const Tensor& y_pred, const std::string& metric) {
  check_defined(y_true, y_pred, metric);
  check_same_shape(y_true, y_pred, metric, "y_pred");
  if (y_pred.rank() < 1) throw ShapeError(fmt::format("{}: y_pred must have a class axis, got a scalar", metric));
  const Tensor predicted = argmax(y_pred, -1);
  return {count_true(equal(argmax(y_true, -1), predicted)), static_cast<double>(predicted.size())};
}

Hits binary_hits(const Tensor& y_true, const Tensor& y_pred, double threshold, const std::string& metric) {
  check_defined(y_true, y_pred, metric);
  Tensor t = y_true;
  if (t.rank() + 1 == y_pred.rank() && y_pred.dim(-1) == 1) t = t.expand_dims(-1);
  check_same_shape(t, y_pred, metric, "y_pred");
  return {count_true(equal(t.astype(kFloat64), (y_pred > threshold).astype(kFloat64))),
          static_cast<double>(y_pred.size())};
}

}  // namespace

void Accuracy::update_state(const Tensor& y_true, const Tensor& y_pred) {
  check_defined(y_true, y_pred, name());
  check_same_shape(y_true, y_pred, name(), "y_pred");
  accumulate(count_true(equal(y_true, y_pred)), static_cast<double>(y_pred.size()));
}

void SparseCategoricalAccuracy::update_state(const Tensor& y_true, const Tensor& y_pred) {
  const Hits h = sparse_categorical_hits(y_true, y_pred, name());
  accumulate(h.correct, h.total);
}

void CategoricalAccuracy::update_state(const Tensor& y_true, const Tensor& y_pred) {
  const Hits h = categorical_hits(y_true, y_pred, name());
  accumulate(h.correct, h.total);
}

void BinaryAccuracy::update_state(const Tensor& y_true, const Tensor& y_pred) {
  const Hits h = binary_hits(y_true, y_pred, threshold_, name());
  accumulate(h.correct, h.total);
}

void MeanAbsoluteError::update_state(const Tensor& y_true, const Tensor& y_pred) {
  const Tensor per_example = losses::mean_absolute_error(y_true, y_pred);
  accumulate(sum(per_example.astype(kFloat64)).item<double>(), static_cast<double>(per_example.size()));
}

void MeanSquaredError::update_state(const Tensor& y_true, const Tensor& y_pred) {
  const Tensor per_example = losses::mean_squared_error(y_true, y_pred);
  accumulate(sum(per_example.astype(kFloat64)).item<double>(), static_cast<double>(per_example.size()));
}

const char* AutoAccuracy::resolved() const {
  switch (kind_) {
    case Kind::Binary:
      return "binary_accuracy";
    case Kind::SparseCategorical:
      return "sparse_categorical_accuracy";
    case Kind::Categorical:
      return "categorical_accuracy";
    case Kind::Unresolved:
      break;
  }
  return "";
}

void AutoAccuracy::update_state(const Tensor& y_true, const Tensor& y_pred) {
  check_defined(y_true, y_pred, name());
  if (kind_ == Kind::Unresolved) {
    if (y_pred.rank() < 1) throw ShapeError(fmt::format("{}: y_pred must have a class axis, got a scalar", name()));
    // Keras's compile_utils.get_metric, from the first batch's shapes
    if (y_pred.dim(-1) == 1) {
      kind_ = Kind::Binary;
    } else if (y_true.rank() < y_pred.rank() || (y_true.dim(-1) == 1 && y_pred.dim(-1) > 1)) {
      kind_ = Kind::SparseCategorical;
    } else {
      kind_ = Kind::Categorical;
    }
  }
  Hits h{};
  switch (kind_) {
    case Kind::Binary:
      h = binary_hits(y_true, y_pred, 0.5, name());
      break;
    case Kind::SparseCategorical:
      h = sparse_categorical_hits(y_true, y_pred, name());
      break;
    case Kind::Categorical:
    case Kind::Unresolved:
      h = categorical_hits(y_true, y_pred, name());
      break;
  }
  accumulate(h.correct, h.total);
}

std::shared_ptr<Metric> get(const std::string& name) {
  if (name == "accuracy" || name == "acc") return std::make_shared<AutoAccuracy>(name);
  if (name == "sparse_categorical_accuracy") return std::make_shared<SparseCategoricalAccuracy>();
  if (name == "categorical_accuracy") return std::make_shared<CategoricalAccuracy>();
  if (name == "binary_accuracy") return std::make_shared<BinaryAccuracy>();
  if (name == "mean_absolute_error" || name == "mae") return std::make_shared<MeanAbsoluteError>(name);
  if (name == "mean_squared_error" || name == "mse") return std::make_shared<MeanSquaredError>(name);
  if (name == "mean") return std::make_shared<Mean>();
  throw ValueError(
      fmt::format("metrics::get: unknown metric '{}' (known: accuracy, acc, sparse_categorical_accuracy, "
                  "categorical_accuracy, binary_accuracy, mean_absolute_error, mae, mean_squared_error, mse, mean)",
                  name));
}

}  // namespace tapeflow::metrics
