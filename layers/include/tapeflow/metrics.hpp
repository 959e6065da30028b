#pragma once
/// Keras's stateful metrics: update_state() per batch, result() so far, reset_state() per epoch.
#include <memory>
#include <string>
#include <vector>

#include "tapeflow/tensor.hpp"

namespace tapeflow::metrics {

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
  /// The value so far (0 before any update): the running mean unless overridden.
  virtual double result() const { return count_ > 0 ? total_ / count_ : 0.0; }
  virtual void reset_state() { total_ = count_ = 0; }
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
  /// Adds per-example or per-element values: sum(values) over their count, or with a
  /// sample_weight sum(values * w) / sum(w) (Keras's reduce_to_samplewise_values and Mean).
  void accumulate(const Tensor& values, const Tensor& sample_weight);

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

/// Counts of true and false positives and negatives over every element so far: y_pred >
/// threshold predicts positive, a nonzero y_true is positive (Keras). Shapes as BinaryAccuracy.
/// Float32 scores compare with the threshold rounded to float32, as Keras's (0.3f is not above
/// 0.3); the counts are read on the host.
class ConfusionCounts : public Metric {
 public:
  using Metric::update_state;
  void reset_state() override;
  double true_positives() const { return tp_; }
  double false_positives() const { return fp_; }
  double true_negatives() const { return tn_; }
  double false_negatives() const { return fn_; }

 protected:
  ConfusionCounts(std::string name, double threshold);
  /// Adds each element's weight (1 without sample_weight) to its count.
  void count(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight);

 private:
  double threshold_;
  double tp_ = 0, fp_ = 0, tn_ = 0, fn_ = 0;
};

/// tp / (tp + fp); 0 while nothing was predicted positive.
class Precision : public ConfusionCounts {
 public:
  explicit Precision(double threshold = 0.5, std::string name = "precision")
      : ConfusionCounts(std::move(name), threshold) {}
  void update_state(const Tensor& y_true, const Tensor& y_pred) override { count(y_true, y_pred, Tensor()); }
  void update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) override {
    count(y_true, y_pred, sample_weight);
  }
  double result() const override;
};

/// tp / (tp + fn); 0 while no positive was seen.
class Recall : public ConfusionCounts {
 public:
  explicit Recall(double threshold = 0.5, std::string name = "recall") : ConfusionCounts(std::move(name), threshold) {}
  void update_state(const Tensor& y_true, const Tensor& y_pred) override { count(y_true, y_pred, Tensor()); }
  void update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) override {
    count(y_true, y_pred, sample_weight);
  }
  double result() const override;
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
/// "sparse_top_k_categorical_accuracy" (k = 5), "precision", "recall", "auc", "mean". Throws
/// ValueError for an unknown name.
std::shared_ptr<Metric> get(const std::string& name);

}  // namespace tapeflow::metrics
