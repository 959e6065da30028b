#pragma once
/// Keras's losses: per-example functions and callable classes that reduce them over the batch
/// (Keras 3's `reduction`, by default "sum_over_batch_size": the mean). Numerically stable with
/// from_logits and clipped to [1e-7, 1 - 1e-7] from probabilities, as Keras.
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

/// How Loss::operator() reduces call()'s values: Keras 3's `reduction` argument. Below, w is
/// the sample weights times the mask (each fitted as operator() says) and v = call()'s values
/// times w (the values alone when neither is given).
enum class Reduction {
  /// "sum_over_batch_size", Keras's default: sum(v) / the count of v's elements.
  /// A mask weighs its real steps total / valid (0 when no step is real), so the mean is over
  /// the real steps; sample weights are not renormalised.
  SumOverBatchSize,
  /// "sum": sum(v); a mask weighs 1 or 0.
  Sum,
  /// "mean": the same as SumOverBatchSize (Keras treats the two alike).
  Mean,
  /// "mean_with_sample_weight": sum(v) / sum(w), 0 when sum(w) is 0; a mask weighs 1 or 0, so
  /// with a mask alone it is the mean over the real steps. sum(w) is taken before w is broadcast
  /// to the values: a [batch] or [batch, 1] weight of a sequence's [batch, time] values counts
  /// once per example, not once per step (Keras's). Without weights or mask, as SumOverBatchSize.
  MeanWithSampleWeight,
  /// "none" (and Keras's None): no reduction, v itself: the per-example values times the sample
  /// weights and the mask (1 or 0), in the shape of the two broadcast together (call()'s shape
  /// in the usual case; [batch, 1] for [batch] values and a [batch, 1] weight, as Keras).
  None,
};
/// Keras's name of a reduction: "sum_over_batch_size", "sum", "mean", "mean_with_sample_weight"
/// or "none".
const char* reduction_name(Reduction reduction);
/// The reduction of a Keras name: those of reduction_name. ValueError listing them otherwise.
Reduction reduction_from_name(const std::string& name);

/// A loss: call() gives per-example values, operator() reduces them (by default their mean over
/// the batch, a scalar). Every class takes the reduction as its last constructor argument;
/// set_reduction changes it afterwards.
class Loss {
 public:
  virtual ~Loss() = default;
  /// Per-example losses [batch].
  virtual Tensor call(const Tensor& y_true, const Tensor& y_pred) const = 0;
  /// call()'s values reduced: a scalar, except with Reduction::None (the values themselves) and
  /// an empty batch (call()'s [0] values, as Keras); a scalar call() (Dice over every axis)
  /// stays as it is.
  Tensor operator()(const Tensor& y_true, const Tensor& y_pred) const;
  /// With sample weights, per example ([batch]; [batch, 1], [batch, ...] matching the values, or
  /// a scalar, all as Keras): the values times the weights, then reduced (with the default,
  /// sum(values * w) / their count, so the weights are not renormalised). Weights of a lower
  /// rank than the values get trailing axes of size 1 after Keras's squeeze_or_expand_to_same_rank
  /// (a trailing axis of size 1 on either side), so [batch] weights weigh whole sequences
  /// ([batch, time] values; Keras's NumPy broadcasting would refuse them). A scalar call()
  /// broadcasts to the weights' shape, as Keras. ShapeError naming the loss and both shapes
  /// when they do not fit. An undefined weight is operator()(y_true, y_pred).
  Tensor operator()(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) const;
  /// With the mask of y_pred (Keras's _keras_mask: [batch, time] for a sequence, nonzero = a
  /// real step; see Model::output_mask) and optional sample weights: Keras 3's apply_mask. The
  /// mask weighs each real step total / valid for SumOverBatchSize and Mean (so the mean is over
  /// the real steps: sum(values * mask * w) / valid, 0 when nothing is valid), 1 for the other
  /// reductions; masked-out steps weigh 0. The mask is fitted to the sample weights, then both
  /// to the values, as the weights above (ShapeError naming the loss and the shapes).
  Tensor operator()(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight,
                    const Tensor& mask) const;
  /// Keras's name: "mean_squared_error", "sparse_categorical_crossentropy", ...
  const std::string& name() const { return name_; }
  /// The reduction operator() applies: the constructor's (SumOverBatchSize by default).
  Reduction reduction() const { return reduction_; }
  void set_reduction(Reduction reduction) { reduction_ = reduction; }
  /// By Keras's name (reduction_from_name: ValueError for an unknown one).
  void set_reduction(const std::string& name) { reduction_ = reduction_from_name(name); }

 protected:
  explicit Loss(std::string name, Reduction reduction = Reduction::SumOverBatchSize)
      : name_(std::move(name)), reduction_(reduction) {}

 private:
  std::string name_;
  Reduction reduction_;
};

class MeanSquaredError : public Loss {
 public:
  explicit MeanSquaredError(Reduction reduction = Reduction::SumOverBatchSize)
      : Loss("mean_squared_error", reduction) {}
  Tensor call(const Tensor& y_true, const Tensor& y_pred) const override;
};

class MeanAbsoluteError : public Loss {
 public:
  explicit MeanAbsoluteError(Reduction reduction = Reduction::SumOverBatchSize)
      : Loss("mean_absolute_error", reduction) {}
  Tensor call(const Tensor& y_true, const Tensor& y_pred) const override;
};

/// label_smoothing must be in [0, 1] (ValueError).
class BinaryCrossentropy : public Loss {
 public:
  explicit BinaryCrossentropy(bool from_logits = false, double label_smoothing = 0,
                              Reduction reduction = Reduction::SumOverBatchSize);
  Tensor call(const Tensor& y_true, const Tensor& y_pred) const override;
  bool from_logits() const { return from_logits_; }
  double label_smoothing() const { return label_smoothing_; }

 private:
  bool from_logits_;
  double label_smoothing_;
};

class CategoricalCrossentropy : public Loss {
 public:
  explicit CategoricalCrossentropy(bool from_logits = false, double label_smoothing = 0,
                                   Reduction reduction = Reduction::SumOverBatchSize);
  Tensor call(const Tensor& y_true, const Tensor& y_pred) const override;
  bool from_logits() const { return from_logits_; }
  double label_smoothing() const { return label_smoothing_; }

 private:
  bool from_logits_;
  double label_smoothing_;
};

class SparseCategoricalCrossentropy : public Loss {
 public:
  explicit SparseCategoricalCrossentropy(bool from_logits = false, Reduction reduction = Reduction::SumOverBatchSize)
      : Loss("sparse_categorical_crossentropy", reduction), from_logits_(from_logits) {}
  Tensor call(const Tensor& y_true, const Tensor& y_pred) const override;
  bool from_logits() const { return from_logits_; }

 private:
  bool from_logits_;
};

/// delta must be positive (ValueError).
class Huber : public Loss {
 public:
  explicit Huber(double delta = 1.0, Reduction reduction = Reduction::SumOverBatchSize);
  Tensor call(const Tensor& y_true, const Tensor& y_pred) const override;

 private:
  double delta_;
};

/// Keras's BinaryFocalCrossentropy ("binary_focal_crossentropy"); label_smoothing must be in
/// [0, 1] (ValueError).
class BinaryFocalCrossentropy : public Loss {
 public:
  explicit BinaryFocalCrossentropy(BinaryFocalOptions options = {}, Reduction reduction = Reduction::SumOverBatchSize);
  Tensor call(const Tensor& y_true, const Tensor& y_pred) const override;
  const BinaryFocalOptions& options() const { return options_; }

 private:
  BinaryFocalOptions options_;
};

/// Keras's CategoricalFocalCrossentropy ("categorical_focal_crossentropy").
class CategoricalFocalCrossentropy : public Loss {
 public:
  explicit CategoricalFocalCrossentropy(CategoricalFocalOptions options = {},
                                        Reduction reduction = Reduction::SumOverBatchSize);
  Tensor call(const Tensor& y_true, const Tensor& y_pred) const override;
  const CategoricalFocalOptions& options() const { return options_; }

 private:
  CategoricalFocalOptions options_;
};

/// Keras's Dice ("dice"). With the default axis (every one) call() is one scalar for the batch,
/// which sample weights (or a mask) broadcast to their shape, as Keras: with [batch] weights w
/// the default reduction gives dice * mean(w), "none" dice * w. Give the per-example axes
/// ({1, 2, 3} for images) for per-example values.
class Dice : public Loss {
 public:
  explicit Dice(std::vector<std::int64_t> axis = {}, Reduction reduction = Reduction::SumOverBatchSize)
      : Loss("dice", reduction), axis_(std::move(axis)) {}
  Tensor call(const Tensor& y_true, const Tensor& y_pred) const override { return dice(y_true, y_pred, axis_); }
  const std::vector<std::int64_t>& axis() const { return axis_; }

 private:
  std::vector<std::int64_t> axis_;
};

/// Keras's Tversky ("tversky"); axis as Dice's.
class Tversky : public Loss {
 public:
  explicit Tversky(double alpha = 0.5, double beta = 0.5, std::vector<std::int64_t> axis = {},
                   Reduction reduction = Reduction::SumOverBatchSize)
      : Loss("tversky", reduction), alpha_(alpha), beta_(beta), axis_(std::move(axis)) {}
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
  LossFunction(std::string name, Fn fn, Reduction reduction = Reduction::SumOverBatchSize);
  Tensor call(const Tensor& y_true, const Tensor& y_pred) const override { return fn_(y_true, y_pred); }

 private:
  Fn fn_;
};

struct LogCosh : LossFunction {
  explicit LogCosh(Reduction reduction = Reduction::SumOverBatchSize)
      : LossFunction("log_cosh", &log_cosh, reduction) {}
};
struct KLDivergence : LossFunction {
  explicit KLDivergence(Reduction reduction = Reduction::SumOverBatchSize)
      : LossFunction("kl_divergence", &kl_divergence, reduction) {}
};
struct Poisson : LossFunction {
  explicit Poisson(Reduction reduction = Reduction::SumOverBatchSize) : LossFunction("poisson", &poisson, reduction) {}
};
struct CosineSimilarity : LossFunction {
  explicit CosineSimilarity(Reduction reduction = Reduction::SumOverBatchSize)
      : LossFunction("cosine_similarity", &cosine_similarity, reduction) {}
};
struct Hinge : LossFunction {
  explicit Hinge(Reduction reduction = Reduction::SumOverBatchSize) : LossFunction("hinge", &hinge, reduction) {}
};
struct SquaredHinge : LossFunction {
  explicit SquaredHinge(Reduction reduction = Reduction::SumOverBatchSize)
      : LossFunction("squared_hinge", &squared_hinge, reduction) {}
};
struct CategoricalHinge : LossFunction {
  explicit CategoricalHinge(Reduction reduction = Reduction::SumOverBatchSize)
      : LossFunction("categorical_hinge", &categorical_hinge, reduction) {}
};
struct MeanSquaredLogarithmicError : LossFunction {
  explicit MeanSquaredLogarithmicError(Reduction reduction = Reduction::SumOverBatchSize)
      : LossFunction("mean_squared_logarithmic_error", &mean_squared_logarithmic_error, reduction) {}
};
struct MeanAbsolutePercentageError : LossFunction {
  explicit MeanAbsolutePercentageError(Reduction reduction = Reduction::SumOverBatchSize)
      : LossFunction("mean_absolute_percentage_error", &mean_absolute_percentage_error, reduction) {}
};
/// Keras's CTC ("ctc"): losses::ctc per example, y_true labels padded with 0, y_pred logits.
struct CTC : LossFunction {
  explicit CTC(Reduction reduction = Reduction::SumOverBatchSize) : LossFunction("ctc", &ctc, reduction) {}
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
