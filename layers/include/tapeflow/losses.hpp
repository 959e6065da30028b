#pragma once
/// Keras's losses: per-example functions and callable classes that average over the batch
/// (Keras's default "sum_over_batch_size" reduction). Numerically stable with from_logits
/// and clipped to [1e-7, 1 - 1e-7] from probabilities, as Keras.
#include <memory>
#include <string>

#include "tapeflow/tensor.hpp"

namespace tapeflow::losses {

/// Keras's epsilon: probabilities are clipped to [kEpsilon, 1 - kEpsilon] before log.
inline constexpr double kEpsilon = 1e-7;

// Per-example losses: y_true and y_pred [batch, ...] -> [batch] (a rank-1 y gives one value per
// element). Every function is differentiable in y_pred.

/// mean((y_pred - y_true)^2) over the last axis.
Tensor mean_squared_error(const Tensor& y_true, const Tensor& y_pred);
/// mean(|y_pred - y_true|) over the last axis (one value per example for rank 1).
Tensor mean_absolute_error(const Tensor& y_true, const Tensor& y_pred);
/// y_true in {0, 1} (or [0, 1]), y_pred probabilities or logits; mean over the last axis.
Tensor binary_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits = false);
/// y_true one-hot [batch, classes], y_pred [batch, classes].
Tensor categorical_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits = false);
/// y_true class indices [batch] (int32, int64, or floats holding integers; [batch, 1] too),
/// y_pred [batch, classes]: -log(q[label] / sum(q)) with q = clip(p, 1e-7, 1 - 1e-7)
/// (renormalised, as Keras) or logsumexp(logits) - logits[label].
Tensor sparse_categorical_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits = false);

/// A loss: call() gives per-example values, operator() their mean over the batch (a scalar).
class Loss {
 public:
  virtual ~Loss() = default;
  /// Per-example losses [batch].
  virtual Tensor call(const Tensor& y_true, const Tensor& y_pred) const = 0;
  /// The mean over the batch: a scalar.
  Tensor operator()(const Tensor& y_true, const Tensor& y_pred) const;
  /// Keras's name: "mean_squared_error", "sparse_categorical_crossentropy", ...
  const std::string& name() const { return name_; }

 protected:
  explicit Loss(std::string name) : name_(std::move(name)) {}

 private:
  std::string name_;
};

class MeanSquaredError : public Loss {
 public:
  MeanSquaredError() : Loss("mean_squared_error") {}
  Tensor call(const Tensor& y_true, const Tensor& y_pred) const override;
};

class MeanAbsoluteError : public Loss {
 public:
  MeanAbsoluteError() : Loss("mean_absolute_error") {}
  Tensor call(const Tensor& y_true, const Tensor& y_pred) const override;
};

class BinaryCrossentropy : public Loss {
 public:
  explicit BinaryCrossentropy(bool from_logits = false) : Loss("binary_crossentropy"), from_logits_(from_logits) {}
  Tensor call(const Tensor& y_true, const Tensor& y_pred) const override;
  bool from_logits() const { return from_logits_; }

 private:
  bool from_logits_;
};

class CategoricalCrossentropy : public Loss {
 public:
  explicit CategoricalCrossentropy(bool from_logits = false)
      : Loss("categorical_crossentropy"), from_logits_(from_logits) {}
  Tensor call(const Tensor& y_true, const Tensor& y_pred) const override;
  bool from_logits() const { return from_logits_; }

 private:
  bool from_logits_;
};

class SparseCategoricalCrossentropy : public Loss {
 public:
  explicit SparseCategoricalCrossentropy(bool from_logits = false)
      : Loss("sparse_categorical_crossentropy"), from_logits_(from_logits) {}
  Tensor call(const Tensor& y_true, const Tensor& y_pred) const override;
  bool from_logits() const { return from_logits_; }

 private:
  bool from_logits_;
};

/// By Keras name (probabilities, not logits): "mean_squared_error" / "mse",
/// "mean_absolute_error" / "mae",
/// "binary_crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy".
/// Throws ValueError for an unknown name.
std::shared_ptr<Loss> get(const std::string& name);

}  // namespace tapeflow::losses
