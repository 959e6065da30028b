#pragma once
/// Keras's stateful metrics: update_state() per batch, result() so far, reset_state() per epoch.
#include <memory>
#include <string>

#include "tapeflow/tensor.hpp"

namespace tapeflow::metrics {

/// A running mean of per-example values (every metric here is one).
class Metric {
 public:
  virtual ~Metric() = default;
  /// Adds one batch.
  virtual void update_state(const Tensor& y_true, const Tensor& y_pred) = 0;
  /// The mean so far (0 before any update).
  double result() const { return count_ > 0 ? total_ / count_ : 0.0; }
  void reset_state() { total_ = count_ = 0; }
  /// The key in fit's logs and History: "accuracy", "loss", ...
  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }

 protected:
  explicit Metric(std::string name) : name_(std::move(name)) {}
  /// Adds `total` over `count` examples.
  void accumulate(double total, double count) {
    total_ += total;
    count_ += count;
  }

 private:
  std::string name_;
  double total_ = 0;
  double count_ = 0;
};

/// The (weighted) mean of the values given to it.
class Mean : public Metric {
 public:
  explicit Mean(std::string name = "mean") : Metric(std::move(name)) {}
  /// Adds every element of `values`.
  void update_state(const Tensor& values);
  /// Adds values weighted by sample_weight (broadcast to values' shape; undefined = 1).
  void update_state(const Tensor& values, const Tensor& sample_weight) override;
  /// Adds one value with a weight (fit weights each batch's loss by its size).
  void update_state(double value, double weight = 1);
};

/// The fraction of elements where y_pred equals y_true exactly.
class Accuracy : public Metric {
 public:
  explicit Accuracy(std::string name = "accuracy") : Metric(std::move(name)) {}
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
};

/// argmax(y_pred, -1) == y_true, with y_true class indices [batch] (or [batch, 1]).
class SparseCategoricalAccuracy : public Metric {
 public:
  explicit SparseCategoricalAccuracy(std::string name = "sparse_categorical_accuracy") : Metric(std::move(name)) {}
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
};

/// argmax(y_pred, -1) == argmax(y_true, -1), with y_true one-hot.
class CategoricalAccuracy : public Metric {
 public:
  explicit CategoricalAccuracy(std::string name = "categorical_accuracy") : Metric(std::move(name)) {}
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
};

/// (y_pred > threshold) == y_true, element-wise.
class BinaryAccuracy : public Metric {
 public:
  explicit BinaryAccuracy(std::string name = "binary_accuracy", double threshold = 0.5)
      : Metric(std::move(name)), threshold_(threshold) {}
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;

 private:
  double threshold_;
};

/// The mean over examples of mean(|y_pred - y_true|) over the last axis (Keras's "mae").
class MeanAbsoluteError : public Metric {
 public:
  explicit MeanAbsoluteError(std::string name = "mean_absolute_error") : Metric(std::move(name)) {}
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
};

/// The mean over examples of mean((y_pred - y_true)^2) over the last axis (Keras's "mse").
class MeanSquaredError : public Metric {
 public:
  explicit MeanSquaredError(std::string name = "mean_squared_error") : Metric(std::move(name)) {}
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
};

/// Keras's "accuracy" / "acc" in compile(): which accuracy is decided from the shapes of the
/// first batch, as Keras 2 and 3 decide it: BinaryAccuracy when y_pred's last axis is 1; else
/// SparseCategoricalAccuracy when y_true has fewer axes than y_pred, or a last axis of 1 where
/// y_pred's is larger; else CategoricalAccuracy. The choice then holds (reset_state keeps it).
class AutoAccuracy : public Metric {
 public:
  explicit AutoAccuracy(std::string name = "accuracy") : Metric(std::move(name)) {}
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
  /// "binary_accuracy", "sparse_categorical_accuracy" or "categorical_accuracy"; "" before the
  /// first batch.
  const char* resolved() const;

 private:
  enum class Kind { Unresolved, Binary, SparseCategorical, Categorical };
  Kind kind_ = Kind::Unresolved;
};

/// By Keras name: "accuracy" / "acc" (an AutoAccuracy under the name the user gave),
/// "sparse_categorical_accuracy", "categorical_accuracy", "binary_accuracy",
/// "mean_absolute_error" / "mae", "mean_squared_error" / "mse" (logged under the name given,
/// "mae" and "val_mae" as in Keras), "mean". Throws ValueError for an unknown name.
std::shared_ptr<Metric> get(const std::string& name);

}  // namespace tapeflow::metrics
