#pragma once
/// Keras's stateful metrics: update_state() per batch, result() so far, reset_state() per epoch.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tapeflow/tensor.hpp"

namespace tapeflow::metrics {

namespace detail {

/// Sums of per-batch count vectors a metric keeps (Precision / Recall's confusion counts, AUC,
/// R2, F-beta, IoU): a CPU batch's are added into the metric's host vectors at once; a
/// device's are added up on the device ([rows, n] float64) and folded into the host vectors
/// when the metric is read.
class BatchSums {
 public:
  /// Adds batch [rows.size(), n] row by row into `rows` (each sized n on first use).
  void add(const Tensor& batch, const std::vector<std::vector<double>*>& rows);
  /// Adds what a device holds into `rows` (reading it back), and holds nothing after.
  void fold(const std::vector<std::vector<double>*>& rows);
  /// Adds what a device holds into `rows`, still holding it.
  void add_to(const std::vector<std::vector<double>*>& rows) const;
  bool pending() const { return held_.defined(); }
  /// n of the sums a device holds (0 when none).
  std::int64_t width() const { return held_.defined() ? held_.dim(1) : 0; }
  void reset() { held_ = Tensor(); }

 private:
  Tensor held_;
};

}  // namespace detail

/// A metric: a running mean of per-example values by default (most metrics here are one);
/// Precision, Recall, AUC and RootMeanSquaredError override result() and reset_state().
class Metric {
 public:
  virtual ~Metric() = default;
  /// Adds one batch.
  virtual void update_state(const Tensor& y_true, const Tensor& y_pred) = 0;
  /// Adds one batch weighted per example ([batch]) or per element ([batch, time] for a
  /// sequence: Model passes the mask of y_pred here, as Keras's metrics read _keras_mask),
  /// fitted to the values as losses::detail::fit_weights does; an undefined weight is
  /// update_state(y_true, y_pred). The built-in metrics give sum(value * w) / sum(w), or
  /// weighted counts (Precision, Recall, AUC); one that takes no weights throws ValueError.
  virtual void update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight);
  /// The value so far (0 before any update): the running mean unless overridden. Waits for
  /// the device that holds the sums, if any.
  virtual double result() const;
  virtual void reset_state();
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
  /// Adds a 0-d `total` over `count` examples (a 0-d tensor, or undefined for count_value, a
  /// number): sums on a CUDA device are added up there and not read back until result().
  void accumulate_sums(const Tensor& total, const Tensor& count, double count_value = 0);
  /// Adds per-example or per-element values: sum(values) over their count, or with a
  /// sample_weight sum(values * w) / sum(w) (Keras's reduce_to_samplewise_values and Mean).
  void accumulate(const Tensor& values, const Tensor& sample_weight);

 private:
  /// Reads the sums held on a device into total_ and count_.
  void read_back();
  std::string name_;
  double total_ = 0;
  double count_ = 0;
  // float64 sums on a device, not yet read back (undefined: none; a count known on the host
  // goes to count_)
  Tensor device_total_, device_count_;
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
  /// Adds every element of `values`, each with `weight`; values on a device stay there.
  void update_state(const Tensor& values, double weight);
};

/// Base of the metrics that average a value per example or element (Keras's
/// MeanMetricWrapper): the accuracies, mae, mse, rmse, top-k. Sample weights and masks weigh
/// the values.
class MeanMetricWrapper : public Metric {
 public:
  using Metric::update_state;
  void update_state(const Tensor& y_true, const Tensor& y_pred) override { update_state(y_true, y_pred, Tensor()); }
  void update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) override;

 protected:
  using Metric::Metric;
  /// One batch's values [batch, ...]: 1 or 0 for a hit or a miss, or an error per example.
  virtual Tensor values(const Tensor& y_true, const Tensor& y_pred) = 0;
};

/// The fraction of elements where y_pred equals y_true exactly.
class Accuracy : public MeanMetricWrapper {
 public:
  explicit Accuracy(std::string name = "accuracy") : MeanMetricWrapper(std::move(name)) {}

 protected:
  Tensor values(const Tensor& y_true, const Tensor& y_pred) override;
};

/// argmax(y_pred, -1) == y_true, with y_true class indices [batch] (or [batch, 1]).
class SparseCategoricalAccuracy : public MeanMetricWrapper {
 public:
  explicit SparseCategoricalAccuracy(std::string name = "sparse_categorical_accuracy") : MeanMetricWrapper(std::move(name)) {}

 protected:
  Tensor values(const Tensor& y_true, const Tensor& y_pred) override;
};

/// argmax(y_pred, -1) == argmax(y_true, -1), with y_true one-hot.
class CategoricalAccuracy : public MeanMetricWrapper {
 public:
  explicit CategoricalAccuracy(std::string name = "categorical_accuracy") : MeanMetricWrapper(std::move(name)) {}

 protected:
  Tensor values(const Tensor& y_true, const Tensor& y_pred) override;
};

/// (y_pred > threshold) == y_true, element-wise.
class BinaryAccuracy : public MeanMetricWrapper {
 public:
  explicit BinaryAccuracy(std::string name = "binary_accuracy", double threshold = 0.5)
      : MeanMetricWrapper(std::move(name)), threshold_(threshold) {}

 protected:
  Tensor values(const Tensor& y_true, const Tensor& y_pred) override;

 private:
  double threshold_;
};

/// The mean over examples of mean(|y_pred - y_true|) over the last axis (Keras's "mae").
class MeanAbsoluteError : public MeanMetricWrapper {
 public:
  explicit MeanAbsoluteError(std::string name = "mean_absolute_error") : MeanMetricWrapper(std::move(name)) {}

 protected:
  Tensor values(const Tensor& y_true, const Tensor& y_pred) override;
};

/// The mean over examples of mean((y_pred - y_true)^2) over the last axis (Keras's "mse").
class MeanSquaredError : public MeanMetricWrapper {
 public:
  explicit MeanSquaredError(std::string name = "mean_squared_error") : MeanMetricWrapper(std::move(name)) {}

 protected:
  Tensor values(const Tensor& y_true, const Tensor& y_pred) override;
};

/// sqrt of the mean over examples of each one's mean (y_pred - y_true)^2 (Keras's: every
/// example weighs the same).
class RootMeanSquaredError : public MeanMetricWrapper {
 public:
  explicit RootMeanSquaredError(std::string name = "root_mean_squared_error") : MeanMetricWrapper(std::move(name)) {}
  double result() const override;

 protected:
  Tensor values(const Tensor& y_true, const Tensor& y_pred) override;
};

/// Whether the true class (y_true's index, or its one-hot argmax) is among the k highest scores
/// of y_pred [batch, classes]: fewer than k classes score strictly higher, so ties at the
/// boundary count as in (TensorFlow's in_top_k); a row with a NaN or infinite score is a miss.
class SparseTopKCategoricalAccuracy : public MeanMetricWrapper {
 public:
  explicit SparseTopKCategoricalAccuracy(int k = 5, std::string name = "sparse_top_k_categorical_accuracy");

 protected:
  Tensor values(const Tensor& y_true, const Tensor& y_pred) override;

 private:
  int k_;
};

class TopKCategoricalAccuracy : public MeanMetricWrapper {
 public:
  explicit TopKCategoricalAccuracy(int k = 5, std::string name = "top_k_categorical_accuracy");

 protected:
  Tensor values(const Tensor& y_true, const Tensor& y_pred) override;

 private:
  int k_;
};

/// A metric averaging a per-example function of (y_true, y_pred) under a name (Keras's
/// MeanMetricWrapper(fn, name)): the loss-like metrics below, or a user's own.
class MetricFunction : public MeanMetricWrapper {
 public:
  using Fn = std::function<Tensor(const Tensor& y_true, const Tensor& y_pred)>;
  MetricFunction(std::string name, Fn fn);

 protected:
  Tensor values(const Tensor& y_true, const Tensor& y_pred) override;

 private:
  Fn fn_;
};

/// The mean of losses::binary_crossentropy (from_logits, label_smoothing as the loss).
class BinaryCrossentropy : public MetricFunction {
 public:
  explicit BinaryCrossentropy(std::string name = "binary_crossentropy", bool from_logits = false,
                              double label_smoothing = 0);
};
/// The mean of losses::categorical_crossentropy.
class CategoricalCrossentropy : public MetricFunction {
 public:
  explicit CategoricalCrossentropy(std::string name = "categorical_crossentropy", bool from_logits = false,
                                   double label_smoothing = 0);
};
/// The mean of losses::sparse_categorical_crossentropy.
class SparseCategoricalCrossentropy : public MetricFunction {
 public:
  explicit SparseCategoricalCrossentropy(std::string name = "sparse_categorical_crossentropy",
                                         bool from_logits = false);
};
/// The means of the per-example losses of the same names (losses.hpp).
struct KLDivergence : MetricFunction {
  explicit KLDivergence(std::string name = "kl_divergence");
};
struct Poisson : MetricFunction {
  explicit Poisson(std::string name = "poisson");
};
/// sum(l2_normalize(y_true) * l2_normalize(y_pred)) over the last axis: +1 for the same
/// direction (the loss is its negative).
struct CosineSimilarity : MetricFunction {
  explicit CosineSimilarity(std::string name = "cosine_similarity");
};
struct MeanAbsolutePercentageError : MetricFunction {
  explicit MeanAbsolutePercentageError(std::string name = "mean_absolute_percentage_error");
};
struct MeanSquaredLogarithmicError : MetricFunction {
  explicit MeanSquaredLogarithmicError(std::string name = "mean_squared_logarithmic_error");
};
/// Keras's LogCoshError, named "logcosh" by default as Keras names it.
struct LogCoshError : MetricFunction {
  explicit LogCoshError(std::string name = "logcosh");
};
struct Hinge : MetricFunction {
  explicit Hinge(std::string name = "hinge");
};
struct SquaredHinge : MetricFunction {
  explicit SquaredHinge(std::string name = "squared_hinge");
};
struct CategoricalHinge : MetricFunction {
  explicit CategoricalHinge(std::string name = "categorical_hinge");
};

/// Keras's R2Score, the coefficient of determination over everything seen so far, per output
/// (the last axis of [batch, outputs] y; a [batch] y is one output): 1 - sum((y - p)^2 w) /
/// sum((y - mean_w(y))^2 w), an output whose targets do not vary giving 0. class_aggregation
/// "uniform_average" (the mean over outputs) or "variance_weighted_average" (weighted by each
/// output's total variance); Keras's None (a vector) is not offered: results are scalars
/// (ValueError). num_regressors > 0 gives the adjusted R2, 1 - (1 - R2) (n - 1) / (n - p - 1)
/// with n the number of target values seen (Keras's), falling back to R2 when n - 1 <= p.
class R2Score : public Metric {
 public:
  explicit R2Score(std::string class_aggregation = "uniform_average", std::int64_t num_regressors = 0,
                   std::string name = "r2_score");
  void update_state(const Tensor& y_true, const Tensor& y_pred) override { update_state(y_true, y_pred, Tensor()); }
  /// sample_weight per example ([batch]) or per value.
  void update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) override;
  double result() const override;
  void reset_state() override;

 private:
  bool variance_weighted_;
  std::int64_t num_regressors_;
  std::vector<double> sum_, squared_sum_, residual_, count_;  // per output
  double num_samples_ = 0;
  detail::BatchSums sums_;  // the four above, of a device's batches
  std::vector<std::vector<double>*> rows() { return {&sum_, &squared_sum_, &residual_, &count_}; }
};

/// Keras's FBetaScore: per class (the last axis of [batch, classes] y_true, one-hot or
/// multi-label), (1 + beta^2) P R / (beta^2 P + R) from weighted true positives, false positives
/// and false negatives, with Keras's 1e-7 in each denominator. y_pred is positive above
/// `threshold`, or, without one, where it equals the row's maximum (and |y_pred| > 1e-9).
/// average "micro" (counts over every class together), "macro" (the mean over classes) or
/// "weighted" (weighted by each class's count of positives). Keras's default average None
/// (a vector) is not offered, as results are scalars: macro is the default here, and
/// per_class() gives the vector.
class FBetaScore : public Metric {
 public:
  explicit FBetaScore(std::string average = "macro", double beta = 1.0, std::optional<double> threshold = std::nullopt,
                      std::string name = "fbeta_score");
  void update_state(const Tensor& y_true, const Tensor& y_pred) override { update_state(y_true, y_pred, Tensor()); }
  /// sample_weight per example ([batch]).
  void update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) override;
  double result() const override;
  /// The score of each class (micro: one value).
  std::vector<double> per_class() const;
  void reset_state() override;

 private:
  std::string average_;
  double beta_;
  std::optional<double> threshold_;
  std::vector<double> tp_, fp_, fn_, support_;
  detail::BatchSums sums_;  // the four above, of a device's batches
  std::vector<std::vector<double>*> rows() { return {&tp_, &fp_, &fn_, &support_}; }
};

/// FBetaScore with beta = 1.
class F1Score : public FBetaScore {
 public:
  explicit F1Score(std::string average = "macro", std::optional<double> threshold = std::nullopt,
                   std::string name = "f1_score")
      : FBetaScore(std::move(average), 1.0, threshold, std::move(name)) {}
};

/// Options of the IoU metrics (Keras's keyword arguments).
struct IoUOptions {
  std::string name;  // empty: the class's default ("io_u", "mean_io_u", as Keras names them)
  /// A class id whose true elements are left out (Keras's ignore_class, e.g. a void label).
  std::optional<std::int64_t> ignore_class;
  /// false: y_true is one-hot along the last axis (argmax taken).
  bool sparse_y_true = true;
  /// false: y_pred holds scores along the last axis (argmax taken); true: class ids (floats
  /// are truncated to integers, as Keras's int cast).
  bool sparse_y_pred = true;
};

/// Keras's IoU: a num_classes x num_classes confusion matrix (rows true, columns predicted)
/// accumulated over every element (weighted: sample_weight per element, or per example for
/// [batch] ids), then for each class of target_class_ids tp / (tp + fp + fn + 1e-7), the mean
/// over the target classes that occurred (Keras's: those with a denominator above 1e-9; the
/// sum is divided by their count + 1e-7). Ids outside [0, num_classes) are left out, as
/// Keras. Keras counts in integers (truncating weights) and returns float32; here weights are
/// exact and the result is double.
class IoU : public Metric {
 public:
  IoU(std::int64_t num_classes, std::vector<std::int64_t> target_class_ids, IoUOptions options = {});
  void update_state(const Tensor& y_true, const Tensor& y_pred) override { update_state(y_true, y_pred, Tensor()); }
  void update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) override;
  double result() const override;
  void reset_state() override;
  /// The confusion matrix so far, row-major [true][predicted].
  const std::vector<double>& confusion_matrix() const { return cm_; }

 protected:
  /// The predicted class ids [n] of y_pred (BinaryIoU thresholds the scores instead).
  virtual Tensor predicted_ids(const Tensor& y_pred) const;
  std::int64_t num_classes_;
  std::vector<std::int64_t> targets_;
  IoUOptions options_;

 private:
  std::vector<double> cm_;
  detail::BatchSums sums_;  // cm_ of a device's batches
};

/// IoU over every class (Keras's MeanIoU, "mean_io_u").
class MeanIoU : public IoU {
 public:
  explicit MeanIoU(std::int64_t num_classes, IoUOptions options = {});
};

/// Keras's BinaryIoU ("binary_io_u"): two classes, a score at or above `threshold` predicts 1.
class BinaryIoU : public IoU {
 public:
  explicit BinaryIoU(std::vector<std::int64_t> target_class_ids = {0, 1}, double threshold = 0.5,
                     std::string name = "binary_io_u");

 protected:
  Tensor predicted_ids(const Tensor& y_pred) const override;

 private:
  double threshold_;
};

/// Counts of true and false positives and negatives over every element so far: y_pred >
/// threshold predicts positive, a nonzero y_true is positive (Keras). Shapes as BinaryAccuracy.
/// Float32 scores compare with the threshold rounded to float32, as Keras's (0.3f is not above
/// 0.3); the counts are read on the host.
class ConfusionCounts : public Metric {
 public:
  using Metric::update_state;
  void update_state(const Tensor& y_true, const Tensor& y_pred) override { count(y_true, y_pred, Tensor()); }
  /// Adds each element's weight (1 without sample_weight) to its count.
  void update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) override {
    count(y_true, y_pred, sample_weight);
  }
  void reset_state() override;
  /// The weighted counts so far (reading a device's, when the batches were on one).
  double true_positives() const { return counts()[0]; }
  double false_positives() const { return counts()[1]; }
  double true_negatives() const { return counts()[2]; }
  double false_negatives() const { return counts()[3]; }

 protected:
  ConfusionCounts(std::string name, double threshold);
  /// Adds each element's weight (1 without sample_weight) to its count: on the host for CPU
  /// batches, on the device (not read back until result()) for a device's.
  void count(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight);
  /// tp, fp, tn, fn.
  std::array<double, 4> counts() const;

 private:
  double threshold_;
  std::vector<double> counts_ = std::vector<double>(4, 0.0);  // tp, fp, tn, fn
  detail::BatchSums sums_;  // counts_ of a device's batches
};

/// tp / (tp + fp); 0 while nothing was predicted positive.
class Precision : public ConfusionCounts {
 public:
  explicit Precision(double threshold = 0.5, std::string name = "precision")
      : ConfusionCounts(std::move(name), threshold) {}
  double result() const override;
};

/// tp / (tp + fn); 0 while no positive was seen.
class Recall : public ConfusionCounts {
 public:
  explicit Recall(double threshold = 0.5, std::string name = "recall") : ConfusionCounts(std::move(name), threshold) {}
  double result() const override;
};

/// The weighted counts themselves (Keras's TruePositives, ... with one threshold).
class TruePositives : public ConfusionCounts {
 public:
  explicit TruePositives(double threshold = 0.5, std::string name = "true_positives")
      : ConfusionCounts(std::move(name), threshold) {}
  double result() const override { return true_positives(); }
};
class FalsePositives : public ConfusionCounts {
 public:
  explicit FalsePositives(double threshold = 0.5, std::string name = "false_positives")
      : ConfusionCounts(std::move(name), threshold) {}
  double result() const override { return false_positives(); }
};
class TrueNegatives : public ConfusionCounts {
 public:
  explicit TrueNegatives(double threshold = 0.5, std::string name = "true_negatives")
      : ConfusionCounts(std::move(name), threshold) {}
  double result() const override { return true_negatives(); }
};
class FalseNegatives : public ConfusionCounts {
 public:
  explicit FalseNegatives(double threshold = 0.5, std::string name = "false_negatives")
      : ConfusionCounts(std::move(name), threshold) {}
  double result() const override { return false_negatives(); }
};

/// Keras's AUC: the area under the ROC curve (false positive rate, recall) or the PR curve
/// (recall, precision) from confusion counts at num_thresholds thresholds: -1e-7, then
/// i / (num_thresholds - 1) for i in 1 .. num_thresholds - 2, then 1 + 1e-7. ROC sums
/// trapezoids; PR uses Davis and Goadrich's interpolation, as Keras. Scores are clipped to
/// [0, 1] (from_logits: sigmoid first) and bucketed as Keras buckets them, ceil(p (n - 1)) - 1
/// in the scores' precision; a NaN score counts below every threshold. A nonzero y_true is
/// positive.
class AUC : public Metric {
 public:
  enum class Curve { ROC, PR };
  explicit AUC(int num_thresholds = 200, Curve curve = Curve::ROC, std::string name = "auc",
               bool from_logits = false);
  using Metric::update_state;
  void update_state(const Tensor& y_true, const Tensor& y_pred) override { update_state(y_true, y_pred, Tensor()); }
  /// Adds each element's weight (1 without sample_weight) to the counts.
  void update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) override;
  double result() const override;
  void reset_state() override;
  const std::vector<double>& thresholds() const { return thresholds_; }

 private:
  Curve curve_;
  bool from_logits_;
  std::vector<double> thresholds_;
  std::vector<double> pos_, neg_;  // positives and negatives whose score exceeds exactly i thresholds
  detail::BatchSums sums_;  // pos_ and neg_ of a device's batches
};

/// Keras's "accuracy" / "acc" in compile(): which accuracy is decided from the shapes of the
/// first batch, as Keras 2 and 3 decide it: BinaryAccuracy when y_pred's last axis is 1; else
/// SparseCategoricalAccuracy when y_true has fewer axes than y_pred, or a last axis of 1 where
/// y_pred's is larger; else CategoricalAccuracy. The choice then holds (reset_state keeps it).
class AutoAccuracy : public MeanMetricWrapper {
 public:
  explicit AutoAccuracy(std::string name = "accuracy") : MeanMetricWrapper(std::move(name)) {}
  /// "binary_accuracy", "sparse_categorical_accuracy" or "categorical_accuracy"; "" before the
  /// first batch.
  const char* resolved() const;

 protected:
  Tensor values(const Tensor& y_true, const Tensor& y_pred) override;

 private:
  enum class Kind { Unresolved, Binary, SparseCategorical, Categorical };
  Kind kind_ = Kind::Unresolved;
};

/// By Keras name: "accuracy" / "acc" (an AutoAccuracy under the name the user gave),
/// "sparse_categorical_accuracy", "categorical_accuracy", "binary_accuracy",
/// "mean_absolute_error" / "mae", "mean_squared_error" / "mse" (logged under the name given,
/// "mae" and "val_mae" as in Keras), "root_mean_squared_error", "top_k_categorical_accuracy",
/// "sparse_top_k_categorical_accuracy" (k = 5), "precision", "recall", "auc", "mean",
/// "binary_crossentropy" / "bce", "categorical_crossentropy", "sparse_categorical_crossentropy",
/// "kl_divergence", "poisson", "cosine_similarity", "mean_absolute_percentage_error" / "mape",
/// "mean_squared_logarithmic_error" / "msle", "log_cosh_error" / "logcosh", "hinge",
/// "squared_hinge", "categorical_hinge", "true_positives", "false_positives",
/// "true_negatives", "false_negatives", "r2_score", "f1_score" and "fbeta_score" (macro),
/// "binary_io_u" (each under the name given, as Keras's compile logs it). Throws ValueError for
/// an unknown name.
std::shared_ptr<Metric> get(const std::string& name);

}  // namespace tapeflow::metrics
