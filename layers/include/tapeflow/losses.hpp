#pragma once
/// Keras's losses: per-example functions and callable classes that average over the batch
/// (Keras's default "sum_over_batch_size" reduction). Numerically stable with from_logits
/// and clipped to [1e-7, 1 - 1e-7] from probabilities, as Keras.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

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

/// Options of the focal cross-entropies (Keras's keyword arguments and defaults).
struct BinaryFocalOptions {
  /// Weigh class 1 by alpha and class 0 by 1 - alpha.
  bool apply_class_balancing = false;
  double alpha = 0.25;
  /// The focusing exponent: 0 gives the plain binary cross-entropy.
  double gamma = 2.0;
  bool from_logits = false;
  /// In [0, 1] (ValueError): targets move towards 0.5, y_true (1 - s) + s / 2.
  double label_smoothing = 0;
  /// The axis the mean is taken over (a rank-1 y gives one value per element, as above).
  std::int64_t axis = -1;
};
struct CategoricalFocalOptions {
  double alpha = 0.25;
  double gamma = 2.0;
  bool from_logits = false;
  /// In [0, 1] (ValueError): y_true (1 - s) + s / classes, classes the size of the last axis.
  double label_smoothing = 0;
  /// The class axis (softmax, renormalisation and the sum).
  std::int64_t axis = -1;
};

/// Keras 3's binary_focal_crossentropy (Lin et al., 2018): per element (1 - p_t)^gamma bce,
/// p_t = y p + (1 - y) (1 - p), bce the binary cross-entropy (from probabilities clipped to
/// [1e-7, 1 - 1e-7]; from logits the stable sigmoid cross-entropy and p = sigmoid(logits), as
/// Keras's TensorFlow backend), times y alpha + (1 - y) (1 - alpha) with class balancing; the
/// mean over options.axis. y_true and y_pred [batch, ...] of one shape.
Tensor binary_focal_crossentropy(const Tensor& y_true, const Tensor& y_pred, const BinaryFocalOptions& options = {});
/// Keras 3's categorical_focal_crossentropy: sum over the class axis of
/// -alpha (1 - q)^gamma y log(q), q = clip(p / sum(p), 1e-7, 1 - 1e-7) and p = softmax(logits)
/// from logits. y_true one-hot (or a distribution) of y_pred's shape.
Tensor categorical_focal_crossentropy(const Tensor& y_true, const Tensor& y_pred,
                                      const CategoricalFocalOptions& options = {});
/// Keras 3's dice: 1 - 2 sum(y_true y_pred) / (sum(y_true) + sum(y_pred) + 1e-7), the sums over
/// `axis` (axes may be negative; empty, Keras's None: every axis, a scalar). For per-example
/// values of images [batch, h, w, c]: axis {1, 2, 3}.
Tensor dice(const Tensor& y_true, const Tensor& y_pred, const std::vector<std::int64_t>& axis = {});
/// Keras 3's tversky: 1 - tp / (tp + alpha a + beta b + 1e-7) with tp = sum(y_true y_pred),
/// a = sum(y_true (1 - y_pred)) and b = sum((1 - y_true) y_pred) over `axis` (as dice; Keras's
/// code names a "fp" and b "fn"). alpha = beta = 0.5 is dice.
Tensor tversky(const Tensor& y_true, const Tensor& y_pred, double alpha = 0.5, double beta = 0.5,
               const std::vector<std::int64_t>& axis = {});

/// keras.ops.ctc_loss (TensorFlow's dense tf.nn.ctc_loss): the negative log-likelihood [batch]
/// of each label sequence under the logits. labels [batch, max_label_len] int32/int64 (or
/// floats holding integers); logits [batch, time, classes] (unnormalised: log_softmax is taken
/// here); label_length and logit_length [batch] integers: the first label_length[b] labels
/// of row b count, the first logit_length[b] steps (the labels past the length weigh only
/// where no alignment exists, as in TensorFlow). mask_index is the
/// blank class (negative counts from the end). An alignment that cannot exist (too few steps
/// for the labels and their repeats) gives TensorFlow's large finite value, not inf: the
/// states that do not end the label weigh log(1e-307) (float32) at the end instead of log(0),
/// so the loss is about 707 plus the cost of the best path to one of them, and the gradient
/// (the derivative of that value; TensorFlow's own differs there) stays finite. A composite of log_softmax,
/// take_along_axis, concat, where and logsumexp (the alpha recursion, one step per time step),
/// so the gradient comes from the tape and it runs on every device; the lengths and labels are
/// read on the host. Errors (ValueError, ShapeError, IndexError) name ctc_loss and the shapes.
Tensor ctc_loss(const Tensor& labels, const Tensor& logits, const Tensor& label_length, const Tensor& logit_length,
                std::int64_t mask_index = 0);
/// keras.losses.ctc: y_true [batch, max_label_len] labels padded with 0, the blank, at the end;
/// y_pred logits [batch, time, classes], every step of which counts: ctc_loss with mask_index 0
/// and label_length the count of nonzero labels of each row (as Keras, a 0 before the last
/// nonzero label shortens the row: its first count entries are the labels).
Tensor ctc(const Tensor& y_true, const Tensor& y_pred);

/// keras.ops.ctc_decode(strategy="greedy"): the most likely class of each step (the first of
/// equal scores) for the first sequence_lengths[b] steps, repeats merged (merge_repeated) and
/// blanks (mask_index) dropped. decoded: int32 [1, batch, time] (Keras's top_paths axis first),
/// padded with -1; scores [batch, 1]. Not differentiable; computed on the host, results on the
/// inputs' device.
struct CtcDecoded {
  /// int32 [1, batch, time]: each row's labels, then -1.
  Tensor decoded;
  /// [batch, 1] in the input's floating dtype: -sum over the counted steps of the highest
  /// input value (Keras passes the inputs as they are: logits give a negative log-score).
  Tensor scores;
};
CtcDecoded ctc_greedy_decode(const Tensor& inputs, const Tensor& sequence_lengths, bool merge_repeated = true,
                             std::int64_t mask_index = 0);

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

/// Keras's BinaryFocalCrossentropy ("binary_focal_crossentropy"); label_smoothing must be in
/// [0, 1] (ValueError).
class BinaryFocalCrossentropy : public Loss {
 public:
  explicit BinaryFocalCrossentropy(BinaryFocalOptions options = {});
  Tensor call(const Tensor& y_true, const Tensor& y_pred) const override;
  const BinaryFocalOptions& options() const { return options_; }

 private:
  BinaryFocalOptions options_;
};

/// Keras's CategoricalFocalCrossentropy ("categorical_focal_crossentropy").
class CategoricalFocalCrossentropy : public Loss {
 public:
  explicit CategoricalFocalCrossentropy(CategoricalFocalOptions options = {});
  Tensor call(const Tensor& y_true, const Tensor& y_pred) const override;
  const CategoricalFocalOptions& options() const { return options_; }

 private:
  CategoricalFocalOptions options_;
};

/// Keras's Dice ("dice"). With the default axis (every one) call() is one scalar for the batch,
/// so sample weights and masks, which need per-example values, are refused (ShapeError); give
/// the per-example axes ({1, 2, 3} for images) to weigh examples.
class Dice : public Loss {
 public:
  explicit Dice(std::vector<std::int64_t> axis = {}) : Loss("dice"), axis_(std::move(axis)) {}
  Tensor call(const Tensor& y_true, const Tensor& y_pred) const override { return dice(y_true, y_pred, axis_); }
  const std::vector<std::int64_t>& axis() const { return axis_; }

 private:
  std::vector<std::int64_t> axis_;
};

/// Keras's Tversky ("tversky"); axis as Dice's.
class Tversky : public Loss {
 public:
  explicit Tversky(double alpha = 0.5, double beta = 0.5, std::vector<std::int64_t> axis = {})
      : Loss("tversky"), alpha_(alpha), beta_(beta), axis_(std::move(axis)) {}
  Tensor call(const Tensor& y_true, const Tensor& y_pred) const override {
    return tversky(y_true, y_pred, alpha_, beta_, axis_);
  }
  double alpha() const { return alpha_; }
  double beta() const { return beta_; }

 private:
  double alpha_, beta_;
  std::vector<std::int64_t> axis_;
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
/// Keras's CTC ("ctc"): losses::ctc per example, y_true labels padded with 0, y_pred logits.
struct CTC : LossFunction {
  CTC() : LossFunction("ctc", &ctc) {}
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
/// "mean_squared_logarithmic_error" / "msle", "mean_absolute_percentage_error" / "mape",
/// "binary_focal_crossentropy", "categorical_focal_crossentropy", "dice", "tversky", "ctc"
/// (Keras's defaults). Throws ValueError for an unknown name.
std::shared_ptr<Loss> get(const std::string& name);

}  // namespace tapeflow::losses
