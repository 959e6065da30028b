// Metrics: counts and sums read back to the host after each batch.
#include "tapeflow/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "tapeflow/losses.hpp"
#include "tapeflow/ops.hpp"

namespace tapeflow::metrics {
namespace {


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
  if (!values.defined()) throw ValueError(fmt::format("{}: values are undefined", name()));
  accumulate(values, sample_weight);
}

void Mean::update_state(double value, double weight) { accumulate(value * weight, weight); }

void Metric::update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) {
  if (sample_weight.defined()) {
    throw ValueError(fmt::format("{}: this metric takes no sample weights (nor a mask)", name()));
  }
  update_state(y_true, y_pred);
}

void Metric::accumulate(const Tensor& values, const Tensor& sample_weight) {
  const Tensor v = values.astype(kFloat64);
  if (!sample_weight.defined()) {
    accumulate(sum(v).item<double>(), static_cast<double>(v.size()));
    return;
  }
  const Tensor w = losses::detail::fit_weights(sample_weight, v, kFloat64, name() + ": sample_weight");
  accumulate(sum(v * w).item<double>(), sum(w).item<double>());
}

void MeanMetricWrapper::update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) {
  accumulate(values(y_true, y_pred), sample_weight);
}

namespace {

// 1 or 0 (bool) per prediction of one batch: correct or not.
Tensor sparse_categorical_hits(const Tensor& y_true, const Tensor& y_pred, const std::string& metric) {
  check_defined(y_true, y_pred, metric);
  if (y_pred.rank() < 1) throw ShapeError(fmt::format("{}: y_pred must have a class axis, got a scalar", metric));
  Tensor labels = y_true;
  if (labels.rank() == y_pred.rank() && labels.dim(-1) == 1) labels = labels.squeeze({-1});
  const Tensor predicted = argmax(y_pred, -1);  // int64 [batch, ...]
  check_same_shape(labels, predicted, metric, "argmax(y_pred)");
  if (!is_integral(labels.dtype())) labels = labels.astype(kInt64);
  return equal(labels, predicted);
}

Tensor categorical_hits(const Tensor& y_true, const Tensor& y_pred, const std::string& metric) {
  check_defined(y_true, y_pred, metric);
  check_same_shape(y_true, y_pred, metric, "y_pred");
  if (y_pred.rank() < 1) throw ShapeError(fmt::format("{}: y_pred must have a class axis, got a scalar", metric));
  const Tensor predicted = argmax(y_pred, -1);
  return equal(argmax(y_true, -1), predicted);
}

Tensor binary_hits(const Tensor& y_true, const Tensor& y_pred, double threshold, const std::string& metric) {
  check_defined(y_true, y_pred, metric);
  Tensor t = y_true;
  if (t.rank() + 1 == y_pred.rank() && y_pred.dim(-1) == 1) t = t.expand_dims(-1);
  check_same_shape(t, y_pred, metric, "y_pred");
  return equal(t.astype(kFloat64), (y_pred > threshold).astype(kFloat64));
}

}  // namespace

Tensor Accuracy::values(const Tensor& y_true, const Tensor& y_pred) {
  check_defined(y_true, y_pred, name());
  check_same_shape(y_true, y_pred, name(), "y_pred");
  return equal(y_true, y_pred);
}

Tensor SparseCategoricalAccuracy::values(const Tensor& y_true, const Tensor& y_pred) {
  return sparse_categorical_hits(y_true, y_pred, name());
}

Tensor CategoricalAccuracy::values(const Tensor& y_true, const Tensor& y_pred) {
  return categorical_hits(y_true, y_pred, name());
}

Tensor BinaryAccuracy::values(const Tensor& y_true, const Tensor& y_pred) {
  return binary_hits(y_true, y_pred, threshold_, name());
}

Tensor MeanAbsoluteError::values(const Tensor& y_true, const Tensor& y_pred) {
  check_defined(y_true, y_pred, name());
  return losses::mean_absolute_error(y_true, y_pred);
}

Tensor MeanSquaredError::values(const Tensor& y_true, const Tensor& y_pred) {
  check_defined(y_true, y_pred, name());
  return losses::mean_squared_error(y_true, y_pred);
}

Tensor RootMeanSquaredError::values(const Tensor& y_true, const Tensor& y_pred) {
  check_defined(y_true, y_pred, name());
  return losses::mean_squared_error(y_true, y_pred);  // checks and matches the shapes
}

double RootMeanSquaredError::result() const { return std::sqrt(Metric::result()); }

namespace {

// Rows of y_pred [batch, classes] whose class `labels` [batch] is among the k best (fewer than
// k strictly better, every score finite): bool [batch].
Tensor top_k_hits(const Tensor& labels_in, const Tensor& y_pred, int k, const std::string& metric) {
  if (y_pred.rank() != 2) {
    throw ShapeError(fmt::format("{}: y_pred must be [batch, classes], got {}", metric, shape_str(y_pred.shape())));
  }
  Tensor labels = labels_in;
  if (labels.rank() == 2 && labels.dim(-1) == 1) labels = labels.squeeze({-1});
  if (labels.rank() != 1 || labels.dim(0) != y_pred.dim(0)) {
    throw ShapeError(fmt::format("{}: labels {} must be [batch] for y_pred {}", metric, shape_str(labels_in.shape()),
                                 shape_str(y_pred.shape())));
  }
  if (!is_integral(labels.dtype())) labels = labels.astype(kInt64);
  Tensor score;
  try {
    score = gather(y_pred, labels).expand_dims(-1);  // [batch, 1]
  } catch (const IndexError& e) {
    throw IndexError(fmt::format("{}: a label is outside [0, {}) ({})", metric, y_pred.dim(-1), e.what()));
  }
  const Tensor better = sum((y_pred > score).astype(kInt64), {-1});
  const Tensor finite = sum((abs(y_pred) < std::numeric_limits<double>::infinity()).astype(kInt64), {-1});
  return logical_and(better < static_cast<std::int64_t>(k), finite == y_pred.dim(-1));
}

void check_k(int k, const std::string& metric) {
  if (k < 1) throw ValueError(fmt::format("{}: k must be positive, got {}", metric, k));
}

}  // namespace

SparseTopKCategoricalAccuracy::SparseTopKCategoricalAccuracy(int k, std::string name)
    : MeanMetricWrapper(std::move(name)), k_(k) {
  check_k(k, this->name());
}

Tensor SparseTopKCategoricalAccuracy::values(const Tensor& y_true, const Tensor& y_pred) {
  check_defined(y_true, y_pred, name());
  return top_k_hits(y_true, y_pred, k_, name());
}

TopKCategoricalAccuracy::TopKCategoricalAccuracy(int k, std::string name) : MeanMetricWrapper(std::move(name)), k_(k) {
  check_k(k, this->name());
}

Tensor TopKCategoricalAccuracy::values(const Tensor& y_true, const Tensor& y_pred) {
  check_defined(y_true, y_pred, name());
  check_same_shape(y_true, y_pred, name(), "y_pred");
  if (y_pred.rank() < 1) throw ShapeError(fmt::format("{}: y_pred must have a class axis, got a scalar", name()));
  return top_k_hits(argmax(y_true, -1), y_pred, k_, name());
}

// ---- confusion counts ------------------------------------------------------------------

namespace {

// y_true as 0/1 doubles, y_pred and each element's weight on the host, with BinaryAccuracy's
// shape rule.
struct HostPairs {
  std::vector<double> t, p, w;
  bool f32;  // y_pred was float32 (or an integer type): thresholds compare as float32, as Keras's
};
HostPairs host_pairs(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight,
                     const std::string& metric) {
  check_defined(y_true, y_pred, metric);
  Tensor t = y_true;
  if (t.rank() + 1 == y_pred.rank() && y_pred.dim(-1) == 1) t = t.expand_dims(-1);
  if (t.rank() == y_pred.rank() + 1 && t.dim(-1) == 1) t = t.squeeze({-1});  // [b, 1] labels for [b] scores
  check_same_shape(t, y_pred, metric, "y_pred");
  const Tensor w = sample_weight.defined()
                       ? losses::detail::fit_weights(sample_weight, y_pred, kFloat64, metric + ": sample_weight")
                       : ones(y_pred.shape(), kFloat64, y_pred.device());
  return {not_equal(t, 0).astype(kFloat64).to_vector<double>(), y_pred.astype(kFloat64).to_vector<double>(),
          w.to_vector<double>(), y_pred.dtype() != kFloat64};
}

// A threshold as y_pred's precision holds it: Keras compares float32 scores with float32
// thresholds, so a score of 0.3f is not above a threshold of 0.3.
double as_precision(double threshold, bool f32) { return f32 ? static_cast<double>(static_cast<float>(threshold)) : threshold; }

}  // namespace

ConfusionCounts::ConfusionCounts(std::string name, double threshold) : Metric(std::move(name)), threshold_(threshold) {
  if (!(threshold >= 0 && threshold <= 1)) {
    throw ValueError(fmt::format("{}: threshold must be in [0, 1], got {}", this->name(), threshold));
  }
}

void ConfusionCounts::reset_state() {
  Metric::reset_state();
  tp_ = fp_ = tn_ = fn_ = 0;
}

void ConfusionCounts::count(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) {
  const auto [t, p, w, f32] = host_pairs(y_true, y_pred, sample_weight, name());
  const double threshold = as_precision(threshold_, f32);
  for (std::size_t i = 0; i < t.size(); ++i) {
    const bool positive = p[i] > threshold;
    if (t[i] != 0) (positive ? tp_ : fn_) += w[i];
    else (positive ? fp_ : tn_) += w[i];
  }
}

double Precision::result() const {
  const double d = true_positives() + false_positives();
  return d > 0 ? true_positives() / d : 0.0;
}

double Recall::result() const {
  const double d = true_positives() + false_negatives();
  return d > 0 ? true_positives() / d : 0.0;
}

// ---- AUC -------------------------------------------------------------------------------

AUC::AUC(int num_thresholds, Curve curve, std::string name, bool from_logits)
    : Metric(std::move(name)), curve_(curve), from_logits_(from_logits) {
  if (num_thresholds < 2) {
    throw ValueError(fmt::format("{}: num_thresholds must be > 1, got {}", this->name(), num_thresholds));
  }
  thresholds_.push_back(-1e-7);
  for (int i = 1; i + 1 < num_thresholds; ++i) thresholds_.push_back(i * 1.0 / (num_thresholds - 1));
  thresholds_.push_back(1.0 + 1e-7);
  reset_state();
}

void AUC::reset_state() {
  Metric::reset_state();
  pos_.assign(thresholds_.size() + 1, 0.0);
  neg_.assign(thresholds_.size() + 1, 0.0);
}

void AUC::update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) {
  const auto [t, p, w, f32] = host_pairs(y_true, from_logits_ ? sigmoid(y_pred) : y_pred, sample_weight, name());
  const auto n1 = static_cast<double>(thresholds_.size() - 1);
  for (std::size_t i = 0; i < t.size(); ++i) {
    // Keras's bucket, ceil(p (n - 1)) - 1 at least 0, in the scores' precision: the score
    // counts as positive at thresholds [0, bucket]
    std::size_t c = 0;  // NaN: below every threshold
    if (!std::isnan(p[i])) {
      const double clipped = std::min(std::max(p[i], 0.0), 1.0);
      const double bucket = f32 ? static_cast<double>(std::ceil(static_cast<float>(clipped) * static_cast<float>(n1)) - 1.0f)
                                : std::ceil(clipped * n1) - 1.0;
      c = static_cast<std::size_t>(std::max(bucket, 0.0)) + 1;
    }
    (t[i] != 0 ? pos_ : neg_)[c] += w[i];
  }
}

double AUC::result() const {
  const std::size_t n = thresholds_.size();
  // tp[i]: positives above threshold i (their count c > i), suffix sums
  std::vector<double> tp(n), fp(n);
  double above_pos = 0, above_neg = 0;
  for (std::size_t i = n; i-- > 0;) {
    above_pos += pos_[i + 1];
    above_neg += neg_[i + 1];
    tp[i] = above_pos;
    fp[i] = above_neg;
  }
  double total_pos = 0, total_neg = 0;
  for (double v : pos_) total_pos += v;
  for (double v : neg_) total_neg += v;
  auto div = [](double a, double b) { return b != 0 ? a / b : 0.0; };  // divide_no_nan
  double area = 0;
  if (curve_ == Curve::ROC) {
    for (std::size_t i = 0; i + 1 < n; ++i) {
      const double x0 = div(fp[i], total_neg), x1 = div(fp[i + 1], total_neg);
      const double y0 = div(tp[i], total_pos), y1 = div(tp[i + 1], total_pos);
      area += (x0 - x1) * (y0 + y1) / 2;
    }
    return area;
  }
  // PR: Keras's interpolate_pr_auc (Davis and Goadrich)
  for (std::size_t i = 0; i + 1 < n; ++i) {
    const double dtp = tp[i] - tp[i + 1];
    const double p0 = tp[i] + fp[i], p1 = tp[i + 1] + fp[i + 1];
    const double slope = div(dtp, std::max(p0 - p1, 0.0));
    const double intercept = tp[i + 1] - slope * p1;
    const double ratio = p0 > 0 && p1 > 0 ? div(p0, std::max(p1, 0.0)) : 1.0;
    const double fn1 = total_pos - tp[i + 1];
    area += div(slope * (dtp + intercept * std::log(ratio)), std::max(tp[i + 1] + fn1, 0.0));
  }
  return area;
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

Tensor AutoAccuracy::values(const Tensor& y_true, const Tensor& y_pred) {
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
  switch (kind_) {
    case Kind::Binary:
      return binary_hits(y_true, y_pred, 0.5, name());
    case Kind::SparseCategorical:
      return sparse_categorical_hits(y_true, y_pred, name());
    case Kind::Categorical:
    case Kind::Unresolved:
      break;
  }
  return categorical_hits(y_true, y_pred, name());
}

std::shared_ptr<Metric> get(const std::string& name) {
  if (name == "accuracy" || name == "acc") return std::make_shared<AutoAccuracy>(name);
  if (name == "sparse_categorical_accuracy") return std::make_shared<SparseCategoricalAccuracy>();
  if (name == "categorical_accuracy") return std::make_shared<CategoricalAccuracy>();
  if (name == "binary_accuracy") return std::make_shared<BinaryAccuracy>();
  if (name == "mean_absolute_error" || name == "mae") return std::make_shared<MeanAbsoluteError>(name);
  if (name == "mean_squared_error" || name == "mse") return std::make_shared<MeanSquaredError>(name);
  if (name == "root_mean_squared_error") return std::make_shared<RootMeanSquaredError>();
  if (name == "top_k_categorical_accuracy") return std::make_shared<TopKCategoricalAccuracy>();
  if (name == "sparse_top_k_categorical_accuracy") return std::make_shared<SparseTopKCategoricalAccuracy>();
  if (name == "precision") return std::make_shared<Precision>();
  if (name == "recall") return std::make_shared<Recall>();
  if (name == "auc") return std::make_shared<AUC>();
  if (name == "mean") return std::make_shared<Mean>();
  throw ValueError(
      fmt::format("metrics::get: unknown metric '{}' (known: accuracy, acc, sparse_categorical_accuracy, "
                  "categorical_accuracy, binary_accuracy, mean_absolute_error, mae, mean_squared_error, mse, "
                  "root_mean_squared_error, top_k_categorical_accuracy, sparse_top_k_categorical_accuracy, "
                  "precision, recall, auc, mean)",
                  name));
}

}  // namespace tapeflow::metrics
