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
/// label_smoothing in [0, 1] moves the targets towards 0.5: y_true (1 - s) + s / 2.
Tensor binary_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits = false,
                           double label_smoothing = 0);
/// y_true one-hot [batch, classes], y_pred [batch, classes]. label_smoothing in [0, 1] moves
/// the targets towards uniform: y_true (1 - s) + s / classes.
Tensor categorical_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits = false,
                                double label_smoothing = 0);
/// Per element 0.5 e^2 where |e| <= delta, else delta (|e| - 0.5 delta), e = y_pred - y_true;
/// mean over the last axis.
Tensor huber(const Tensor& y_true, const Tensor& y_pred, double delta = 1.0);
/// mean(log(cosh(y_pred - y_true))) over the last axis, without overflow for large errors.
Tensor log_cosh(const Tensor& y_true, const Tensor& y_pred);
/// sum(t log(t / p)) over the last axis, t and p clipped to [1e-7, 1] (Keras's kl_divergence).
Tensor kl_divergence(const Tensor& y_true, const Tensor& y_pred);
/// mean(y_pred - y_true log(y_pred + 1e-7)) over the last axis.
Tensor poisson(const Tensor& y_true, const Tensor& y_pred);
/// -sum(l2_normalize(y_true) * l2_normalize(y_pred)) over the last axis (-1 for the same
/// direction); a zero vector normalises to zeros (norms are taken as at least 1e-7, Keras 3's
/// normalize).
Tensor cosine_similarity(const Tensor& y_true, const Tensor& y_pred);
/// mean(max(1 - t p, 0)) over the last axis, t = y_true with 0 mapped to -1 (labels in {0, 1}
/// or {-1, 1}).
Tensor hinge(const Tensor& y_true, const Tensor& y_pred);
/// mean(max(1 - t p, 0)^2), t as in hinge.
Tensor squared_hinge(const Tensor& y_true, const Tensor& y_pred);
/// max(neg - pos + 1, 0) with pos = sum(y_true * y_pred) and neg = max((1 - y_true) * y_pred)
/// over the last axis (Keras's categorical_hinge; y_true one-hot).
Tensor categorical_hinge(const Tensor& y_true, const Tensor& y_pred);
/// mean((log(max(y_pred, 1e-7) + 1) - log(max(y_true, 1e-7) + 1))^2) over the last axis.
Tensor mean_squared_logarithmic_error(const Tensor& y_true, const Tensor& y_pred);
/// 100 mean(|y_true - y_pred| / max(|y_true|, 1e-7)) over the last axis.
Tensor mean_absolute_percentage_error(const Tensor& y_true, const Tensor& y_pred);
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
  /// With per-example weights [batch] (broadcast over any further axes of call()'s values):
  /// sum(values * w) / their count, Keras's "sum_over_batch_size" with a sample_weight (so
  /// the weights are not renormalised). An undefined weight is operator()(y_true, y_pred).
  Tensor operator()(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) const;
  /// With the mask of y_pred (Keras's _keras_mask: [batch, time] for a sequence, nonzero = a
  /// real step; see Model::output_mask) and optional sample weights: the masked-out values
  /// weigh 0 and the rest total / valid, so the mean is over the real steps only, as Keras 3's
  /// apply_mask: sum(values * mask * w) / valid (0 when nothing is valid). The mask takes the
  /// values' shape as sample weights do (trailing axes of size 1 added; ShapeError otherwise).
  Tensor operator()(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight,
                    const Tensor& mask) const;
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

/// label_smoothing must be in [0, 1] (ValueError).
class BinaryCrossentropy : public Loss {
 public:
  explicit BinaryCrossentropy(bool from_logits = false, double label_smoothing = 0);
  Tensor call(const Tensor& y_true, const Tensor& y_pred) const override;
  bool from_logits() const { return from_logits_; }
  double label_smoothing() const { return label_smoothing_; }

 private:
  bool from_logits_;
  double label_smoothing_;
};

class CategoricalCrossentropy : public Loss {
 public:
  explicit CategoricalCrossentropy(bool from_logits = false, double label_smoothing = 0);
  Tensor call(const Tensor& y_true, const Tensor& y_pred) const override;
  bool from_logits() const { return from_logits_; }
  double label_smoothing() const { return label_smoothing_; }

 private:
  bool from_logits_;
  double label_smoothing_;
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

/// delta must be positive (ValueError).
class Huber : public Loss {
 public:
  explicit Huber(double delta = 1.0);
  Tensor call(const Tensor& y_true, const Tensor& y_pred) const override;

 private:
  double delta_;
};

/// A loss from a per-example function of (y_true, y_pred) under a name: LogCosh, KLDivergence,
/// Poisson, CosineSimilarity, Hinge, SquaredHinge, CategoricalHinge, MeanSquaredLogarithmicError,
/// MeanAbsolutePercentageError, and a user's own (as Keras's LossFunctionWrapper).
class LossFunction : public Loss {
 public:
  using Fn = Tensor (*)(const Tensor& y_true, const Tensor& y_pred);
  LossFunction(std::string name, Fn fn);
  Tensor call(const Tensor& y_true, const Tensor& y_pred) const override { return fn_(y_true, y_pred); }

 private:
  Fn fn_;
};

struct LogCosh : LossFunction {
  LogCosh() : LossFunction("log_cosh", &log_cosh) {}
};
struct KLDivergence : LossFunction {
  KLDivergence() : LossFunction("kl_divergence", &kl_divergence) {}
};
struct Poisson : LossFunction {
  Poisson() : LossFunction("poisson", &poisson) {}
};
struct CosineSimilarity : LossFunction {
  CosineSimilarity() : LossFunction("cosine_similarity", &cosine_similarity) {}
};
struct Hinge : LossFunction {
  Hinge() : LossFunction("hinge", &hinge) {}
};
struct SquaredHinge : LossFunction {
  SquaredHinge() : LossFunction("squared_hinge", &squared_hinge) {}
};
struct CategoricalHinge : LossFunction {
  CategoricalHinge() : LossFunction("categorical_hinge", &categorical_hinge) {}
};
struct MeanSquaredLogarithmicError : LossFunction {
  MeanSquaredLogarithmicError() : LossFunction("mean_squared_logarithmic_error", &mean_squared_logarithmic_error) {}
};
struct MeanAbsolutePercentageError : LossFunction {
  MeanAbsolutePercentageError() : LossFunction("mean_absolute_percentage_error", &mean_absolute_percentage_error) {}
};

namespace detail {
/// Per-example or per-element weights `w` (of a loss or a metric) made to fit `values`, as
/// Keras's squeeze_or_expand_to_same_rank (a trailing axis of size 1 on either side) then with
/// trailing axes of size 1 added until the ranks agree, broadcast to values' shape, in `dtype`
/// on values' device. ShapeError naming `who` and both shapes when they cannot match.
Tensor fit_weights(const Tensor& w, const Tensor& values, DType dtype, const std::string& who);
}  // namespace detail

/// By Keras name (probabilities, not logits): "mean_squared_error" / "mse",
/// "mean_absolute_error" / "mae", "binary_crossentropy", "categorical_crossentropy",
/// "sparse_categorical_crossentropy", "huber", "log_cosh" / "logcosh", "kl_divergence" /
/// "kld", "poisson", "cosine_similarity", "hinge", "squared_hinge", "categorical_hinge",
/// "mean_squared_logarithmic_error" / "msle", "mean_absolute_percentage_error" / "mape".
/// Throws ValueError for an unknown name.
std::shared_ptr<Loss> get(const std::string& name);

}  // namespace tapeflow::losses
