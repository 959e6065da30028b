// Metrics: every one keeps the sums of a device's batches on the device (read when the result
// is), and adds a CPU batch's on the host at once.
#include "tapeflow/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <utility>

#include "tapeflow/losses.hpp"
#include "tapeflow/observer.hpp"
#include "tapeflow/ops.hpp"

namespace tapeflow::metrics {
namespace {


void check_defined(const Tensor& y_true, const Tensor& y_pred, const std::string& metric) {
  if (!y_true.defined() || !y_pred.defined()) {
    throw ValueError(fmt::format("{}: y_true or y_pred is undefined", metric));
  }
}

// A running sum on a device plus one batch's (the batch's alone when nothing is held yet).
Tensor plus(const Tensor& held, const Tensor& batch) { return held.defined() ? held + batch : batch; }

void check_same_shape(const Tensor& a, const Tensor& b, const std::string& metric, const char* what) {
  if (a.shape() != b.shape()) {
    throw ShapeError(fmt::format("{}: y_true {} and {} {} must have the same shape", metric, shape_str(a.shape()), what,
                                 shape_str(b.shape())));
  }
}

}  // namespace

namespace detail {

namespace {
void add_rows(const Tensor& batch, const std::vector<std::vector<double>*>& rows) {
  const std::vector<double> v = batch.astype(kFloat64).to_vector<double>();
  const auto n = static_cast<std::size_t>(batch.dim(1));
  for (std::size_t r = 0; r < rows.size(); ++r) {
    std::vector<double>& into = *rows[r];
    if (into.empty()) into.assign(n, 0.0);
    for (std::size_t i = 0; i < n; ++i) into[i] += v[r * n + i];
  }
}
}  // namespace

void BatchSums::add(const Tensor& batch, const std::vector<std::vector<double>*>& rows) {
  if (batch.device().is_cpu()) return add_rows(batch, rows);
  if (held_.defined() && held_.device() != batch.device()) fold(rows);  // a batch on another device
  NoRecording no_tape;
  held_ = plus(held_, batch.astype(kFloat64));
}

void BatchSums::add_to(const std::vector<std::vector<double>*>& rows) const {
  if (held_.defined()) add_rows(held_, rows);
}

void BatchSums::fold(const std::vector<std::vector<double>*>& rows) {
  add_to(rows);
  held_ = Tensor();
}

}  // namespace detail

double Metric::result() const {
  const double total = total_ + (device_total_.defined() ? device_total_.item<double>() : 0.0);
  const double count = count_ + (device_count_.defined() ? device_count_.item<double>() : 0.0);
  return count > 0 ? total / count : 0.0;
}

void Metric::reset_state() {
  total_ = count_ = 0;
  device_total_ = device_count_ = Tensor();
}

void Metric::read_back() {
  if (device_total_.defined()) total_ += device_total_.item<double>();
  if (device_count_.defined()) count_ += device_count_.item<double>();
  device_total_ = device_count_ = Tensor();
}

void Metric::accumulate_sums(const Tensor& total, const Tensor& count, double count_value) {
  const Device dev = total.device();
  if (dev.is_cpu()) {  // nothing to wait for: added on the host, as one number
    accumulate(total.item<double>(), count.defined() ? count.item<double>() : count_value);
    return;
  }
  // a batch on another device than the sums so far: those are read back first
  const Tensor& held = device_total_.defined() ? device_total_ : device_count_;
  if (held.defined() && held.device() != dev) read_back();
  NoRecording no_tape;  // a metric's state is not differentiated
  const Tensor t = total.astype(kFloat64);
  device_total_ = plus(device_total_, t);
  if (!count.defined()) {
    count_ += count_value;  // known on the host
  } else {
    const Tensor c = count.astype(kFloat64).to(dev);
    device_count_ = plus(device_count_, c);
  }
}

void Mean::update_state(const Tensor& values) {
  if (!values.defined()) throw ValueError(fmt::format("{}: values are undefined", name()));
  accumulate_sums(sum(values.astype(kFloat64)), Tensor(), static_cast<double>(values.size()));
}

void Mean::update_state(const Tensor& values, double weight) {
  if (!values.defined()) throw ValueError(fmt::format("{}: values are undefined", name()));
  const Tensor v = values.astype(kFloat64);
  accumulate_sums((v.rank() == 0 ? v : sum(v)) * weight, Tensor(), static_cast<double>(values.size()) * weight);
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
    accumulate_sums(sum(v), Tensor(), static_cast<double>(v.size()));
    return;
  }
  const Tensor w = losses::detail::fit_weights(sample_weight, v, kFloat64, name() + ": sample_weight");
  accumulate_sums(sum(v * w), sum(w));
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

// y_true != 0 (float64 0 / 1), y_pred (float64) and each element's weight (float64, 1 without
// sample_weight), all of y_pred's shape by BinaryAccuracy's rule (y_true [b] with scores [b, 1],
// or [b, 1] with [b]), on y_pred's device.
struct Pairs {
  Tensor t, p, w;
  bool f32;  // y_pred was float32 (or an integer type): thresholds compare as float32, as Keras's
};
Pairs matched_pairs(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight,
                    const std::string& metric) {
  check_defined(y_true, y_pred, metric);
  Tensor t = y_true;
  if (t.rank() + 1 == y_pred.rank() && y_pred.dim(-1) == 1) t = t.expand_dims(-1);
  if (t.rank() == y_pred.rank() + 1 && t.dim(-1) == 1) t = t.squeeze({-1});  // [b, 1] labels for [b] scores
  check_same_shape(t, y_pred, metric, "y_pred");
  const Tensor w = sample_weight.defined()
                       ? losses::detail::fit_weights(sample_weight, y_pred, kFloat64, metric + ": sample_weight")
                       : ones(y_pred.shape(), kFloat64, y_pred.device());
  return {not_equal(t, 0).astype(kFloat64), y_pred.astype(kFloat64), w, y_pred.dtype() != kFloat64};
}

// matched_pairs read back to the host.
struct HostPairs {
  std::vector<double> t, p, w;
  bool f32;
};
HostPairs host_pairs(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight,
                     const std::string& metric) {
  const Pairs m = matched_pairs(y_true, y_pred, sample_weight, metric);
  return {m.t.to_vector<double>(), m.p.to_vector<double>(), m.w.to_vector<double>(), m.f32};
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
  counts_.assign(4, 0.0);
  sums_.reset();
}

std::array<double, 4> ConfusionCounts::counts() const {
  std::vector<double> c = counts_;
  sums_.add_to({&c});
  return {c[0], c[1], c[2], c[3]};
}

void ConfusionCounts::count(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) {
  if (!y_pred.device().is_cpu()) {
    // on a device: the four weighted counts added up there, read by result()
    const Pairs m = matched_pairs(y_true, y_pred, sample_weight, name());
    NoRecording no_tape;
    const Tensor positive = (m.p > as_precision(threshold_, m.f32)).astype(kFloat64);
    const Tensor w_true = m.w * m.t, w_false = m.w - w_true;
    sums_.add(stack({sum(w_true * positive), sum(w_false * positive), sum(w_false * (1.0 - positive)),
                     sum(w_true * (1.0 - positive))})
                  .reshape({1, 4}),
              {&counts_});
    return;
  }
  const auto [t, p, w, f32] = host_pairs(y_true, y_pred, sample_weight, name());
  const double threshold = as_precision(threshold_, f32);
  double& tp = counts_[0];
  double& fp = counts_[1];
  double& tn = counts_[2];
  double& fn = counts_[3];
  for (std::size_t i = 0; i < t.size(); ++i) {
    const bool positive = p[i] > threshold;
    if (t[i] != 0) (positive ? tp : fn) += w[i];
    else (positive ? fp : tn) += w[i];
  }
}

double Precision::result() const {
  const auto [tp, fp, tn, fn] = counts();
  (void)tn, (void)fn;
  return tp + fp > 0 ? tp / (tp + fp) : 0.0;
}

double Recall::result() const {
  const auto [tp, fp, tn, fn] = counts();
  (void)fp, (void)tn;
  return tp + fn > 0 ? tp / (tp + fn) : 0.0;
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
  sums_.reset();
}

void AUC::update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) {
  if (!y_pred.device().is_cpu()) {
    // on a device: the same buckets, counted there into [2, thresholds + 1] (positives,
    // negatives), read by result()
    const Pairs m = matched_pairs(y_true, from_logits_ ? sigmoid(y_pred) : y_pred, sample_weight, name());
    NoRecording no_tape;
    const auto bins = static_cast<std::int64_t>(pos_.size());
    const Tensor scores = (m.f32 ? m.p.astype(kFloat32) : m.p).reshape({-1});
    const Tensor bucket = ceil(clip(scores, 0, 1) * static_cast<double>(thresholds_.size() - 1)) - 1.0;
    const Tensor c = where(isnan(scores), 0.0, maximum(bucket, 0.0) + 1.0).astype(kInt64);  // NaN: 0
    const Tensor t = m.t.reshape({-1}), w = m.w.reshape({-1});
    sums_.add(stack({unsorted_segment_sum(w * t, c, bins, IndexMode::Clip),
                     unsorted_segment_sum(w * (1.0 - t), c, bins, IndexMode::Clip)}),
              {&pos_, &neg_});
    return;
  }
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
  if (sums_.pending()) {
    AUC read = *this;
    read.sums_.fold({&read.pos_, &read.neg_});
    return read.result();
  }
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

// ---- loss-like metrics ------------------------------------------------------------------

namespace {
// The loss's check of label_smoothing, when the metric is made rather than at its first batch.
void check_smoothing(double s, const std::string& metric) {
  if (!(s >= 0 && s <= 1)) throw ValueError(fmt::format("{}: label_smoothing must be in [0, 1], got {}", metric, s));
}
}  // namespace

MetricFunction::MetricFunction(std::string name, Fn fn) : MeanMetricWrapper(std::move(name)), fn_(std::move(fn)) {
  if (!fn_) throw ValueError(fmt::format("{}: the metric function is empty", this->name()));
}

Tensor MetricFunction::values(const Tensor& y_true, const Tensor& y_pred) {
  check_defined(y_true, y_pred, name());
  return fn_(y_true, y_pred);
}

BinaryCrossentropy::BinaryCrossentropy(std::string name, bool from_logits, double label_smoothing)
    : MetricFunction(std::move(name), [from_logits, label_smoothing](const Tensor& t, const Tensor& p) {
        return losses::binary_crossentropy(t, p, from_logits, label_smoothing);
      }) {
  check_smoothing(label_smoothing, this->name());
}

CategoricalCrossentropy::CategoricalCrossentropy(std::string name, bool from_logits, double label_smoothing)
    : MetricFunction(std::move(name), [from_logits, label_smoothing](const Tensor& t, const Tensor& p) {
        return losses::categorical_crossentropy(t, p, from_logits, label_smoothing);
      }) {
  check_smoothing(label_smoothing, this->name());
}

SparseCategoricalCrossentropy::SparseCategoricalCrossentropy(std::string name, bool from_logits)
    : MetricFunction(std::move(name), [from_logits](const Tensor& t, const Tensor& p) {
        return losses::sparse_categorical_crossentropy(t, p, from_logits);
      }) {}

KLDivergence::KLDivergence(std::string name) : MetricFunction(std::move(name), &losses::kl_divergence) {}
Poisson::Poisson(std::string name) : MetricFunction(std::move(name), &losses::poisson) {}
CosineSimilarity::CosineSimilarity(std::string name)
    : MetricFunction(std::move(name), [](const Tensor& t, const Tensor& p) { return -losses::cosine_similarity(t, p); }) {}
MeanAbsolutePercentageError::MeanAbsolutePercentageError(std::string name)
    : MetricFunction(std::move(name), &losses::mean_absolute_percentage_error) {}
MeanSquaredLogarithmicError::MeanSquaredLogarithmicError(std::string name)
    : MetricFunction(std::move(name), &losses::mean_squared_logarithmic_error) {}
LogCoshError::LogCoshError(std::string name) : MetricFunction(std::move(name), &losses::log_cosh) {}
Hinge::Hinge(std::string name) : MetricFunction(std::move(name), &losses::hinge) {}
SquaredHinge::SquaredHinge(std::string name) : MetricFunction(std::move(name), &losses::squared_hinge) {}
CategoricalHinge::CategoricalHinge(std::string name) : MetricFunction(std::move(name), &losses::categorical_hinge) {}

// ---- R2 --------------------------------------------------------------------------------

namespace {

// y_true and y_pred as float64 [batch, outputs] (a trailing axis of 1 squeezed or added to
// match, a [batch] pair made [batch, 1]); ShapeError naming the metric otherwise.
std::pair<Tensor, Tensor> as_matrix_pair(const Tensor& y_true, const Tensor& y_pred, const std::string& metric) {
  check_defined(y_true, y_pred, metric);
  Tensor t = y_true, p = y_pred;
  if (t.rank() + 1 == p.rank() && p.dim(-1) == 1) t = t.expand_dims(-1);
  if (p.rank() + 1 == t.rank() && t.dim(-1) == 1) t = t.squeeze({-1});
  if (t.rank() == 1 && p.rank() == 1) {
    t = t.expand_dims(-1);
    p = p.expand_dims(-1);
  }
  if (p.rank() != 2) {
    throw ShapeError(fmt::format("{}: expected y_true and y_pred [batch, outputs], got {} and {}", metric,
                                 shape_str(y_true.shape()), shape_str(y_pred.shape())));
  }
  check_same_shape(t, p, metric, "y_pred");
  return {t.astype(kFloat64), p.astype(kFloat64)};
}

// Per-example ([batch]) or per-value weights of `of` [batch, k], float64 [batch, k]; ones without.
Tensor weights_for(const Tensor& sample_weight, const Tensor& of, const std::string& metric) {
  if (!sample_weight.defined()) return ones(of.shape(), kFloat64, of.device());
  return losses::detail::fit_weights(sample_weight, of, kFloat64, metric + ": sample_weight");
}

}  // namespace

R2Score::R2Score(std::string class_aggregation, std::int64_t num_regressors, std::string name)
    : Metric(std::move(name)), num_regressors_(num_regressors) {
  if (class_aggregation != "uniform_average" && class_aggregation != "variance_weighted_average") {
    throw ValueError(fmt::format("{}: class_aggregation must be 'uniform_average' or 'variance_weighted_average' "
                                 "(Keras's None, a vector, is not offered), got '{}'",
                                 this->name(), class_aggregation));
  }
  if (num_regressors < 0) {
    throw ValueError(fmt::format("{}: num_regressors must be >= 0, got {}", this->name(), num_regressors));
  }
  variance_weighted_ = class_aggregation == "variance_weighted_average";
}

void R2Score::update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) {
  const auto [t, p] = as_matrix_pair(y_true, y_pred, name());
  const auto outputs = sum_.empty() ? sums_.width() : static_cast<std::int64_t>(sum_.size());
  if (outputs != 0 && outputs != t.dim(1)) {
    throw ShapeError(fmt::format("{}: {} outputs, but earlier batches had {}", name(), t.dim(1), outputs));
  }
  const Tensor w = weights_for(sample_weight, t, name());
  const Tensor wt = t * w;
  sums_.add(stack({sum(wt, {0}), sum(t * wt, {0}), sum(square(t - p) * w, {0}), sum(w, {0})}), rows());
  num_samples_ += static_cast<double>(t.size());
}

double R2Score::result() const {
  if (sums_.pending()) {
    R2Score read = *this;
    read.sums_.fold(read.rows());
    return read.result();
  }
  if (sum_.empty()) return 0.0;
  double weighted = 0, total_sum = 0, mean_raw = 0;
  for (std::size_t j = 0; j < sum_.size(); ++j) {
    const double mean = sum_[j] / count_[j];
    const double total = squared_sum_[j] - sum_[j] * mean;
    double raw = 1 - residual_[j] / total;
    if (std::isinf(raw)) raw = 0.0;  // Keras's: targets that do not vary
    mean_raw += raw / static_cast<double>(sum_.size());
    weighted += total * raw;
    total_sum += total;
  }
  double r2 = variance_weighted_ ? weighted / total_sum : mean_raw;
  const double n = num_samples_, k = static_cast<double>(num_regressors_);
  // adjusted; Keras warns and falls back to R2 when n - 1 <= k
  if (num_regressors_ > 0 && k < n - 1) r2 = 1 - (1 - r2) * (n - 1) / (n - k - 1);
  return r2;
}

void R2Score::reset_state() {
  Metric::reset_state();
  sum_.clear();
  squared_sum_.clear();
  residual_.clear();
  count_.clear();
  num_samples_ = 0;
  sums_.reset();
}

// ---- F-beta ----------------------------------------------------------------------------

FBetaScore::FBetaScore(std::string average, double beta, std::optional<double> threshold, std::string name)
    : Metric(std::move(name)), average_(std::move(average)), beta_(beta), threshold_(threshold) {
  if (average_ != "micro" && average_ != "macro" && average_ != "weighted") {
    throw ValueError(fmt::format("{}: average must be 'micro', 'macro' or 'weighted' (Keras's None, a vector, is "
                                 "per_class() here), got '{}'",
                                 this->name(), average_));
  }
  if (!(beta > 0)) throw ValueError(fmt::format("{}: beta must be > 0, got {}", this->name(), beta));
  if (threshold && !(*threshold > 0 && *threshold <= 1)) {
    throw ValueError(fmt::format("{}: threshold must be in (0, 1], got {}", this->name(), *threshold));
  }
}

void FBetaScore::update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) {
  check_defined(y_true, y_pred, name());
  if (y_true.rank() != 2 || y_pred.rank() != 2) {
    throw ShapeError(fmt::format("{}: expected y_true and y_pred [batch, classes], got {} and {}", name(),
                                 shape_str(y_true.shape()), shape_str(y_pred.shape())));
  }
  check_same_shape(y_true, y_pred, name(), "y_pred");
  const auto classes = tp_.empty() ? sums_.width() : static_cast<std::int64_t>(tp_.size());
  if (classes != 0 && average_ != "micro" && classes != y_pred.dim(1)) {
    throw ShapeError(fmt::format("{}: {} classes, but earlier batches had {}", name(), y_pred.dim(1), classes));
  }
  const Tensor t = y_true.astype(kFloat64), p = y_pred.astype(kFloat64);
  // positive above the threshold, or at the row's maximum (a row of zeros predicts nothing)
  // compared in y_pred's own precision, as Keras compares float32 scores with a float32 threshold
  const Tensor positive = threshold_ ? (y_pred > *threshold_).astype(kFloat64)
                                     : logical_and(p >= max(p, {-1}, true), abs(p) > 1e-9).astype(kFloat64);
  const Tensor w = weights_for(sample_weight, t, name());
  const auto counts = [&](const Tensor& v) { return average_ == "micro" ? sum(v * w).reshape({1}) : sum(v * w, {0}); };
  sums_.add(stack({counts(positive * t), counts(positive * (1.0 - t)), counts((1.0 - positive) * t), counts(t)}),
            rows());
}

std::vector<double> FBetaScore::per_class() const {
  if (sums_.pending()) {
    FBetaScore read = *this;
    read.sums_.fold(read.rows());
    return read.per_class();
  }
  const double eps = 1e-7, b2 = beta_ * beta_;
  std::vector<double> f;
  for (std::size_t i = 0; i < tp_.size(); ++i) {
    const double precision = tp_[i] / (tp_[i] + fp_[i] + eps);
    const double recall = tp_[i] / (tp_[i] + fn_[i] + eps);
    f.push_back(precision * recall / (b2 * precision + recall + eps) * (1 + b2));
  }
  return f;
}

double FBetaScore::result() const {
  if (sums_.pending()) {
    FBetaScore read = *this;
    read.sums_.fold(read.rows());
    return read.result();
  }
  const std::vector<double> f = per_class();
  if (f.empty()) return 0.0;
  double out = 0;
  if (average_ == "weighted") {
    double total = 1e-7;
    for (double s : support_) total += s;
    for (std::size_t i = 0; i < f.size(); ++i) out += f[i] * (support_[i] / total);
  } else {
    for (double v : f) out += v / static_cast<double>(f.size());
  }
  return out;
}

void FBetaScore::reset_state() {
  Metric::reset_state();
  tp_.clear();
  fp_.clear();
  fn_.clear();
  support_.clear();
  sums_.reset();
}

// ---- IoU -------------------------------------------------------------------------------

IoU::IoU(std::int64_t num_classes, std::vector<std::int64_t> target_class_ids, IoUOptions options)
    : Metric(options.name.empty() ? "io_u" : options.name),
      num_classes_(num_classes),
      targets_(std::move(target_class_ids)),
      options_(std::move(options)) {
  if (num_classes < 1) throw ValueError(fmt::format("{}: num_classes must be >= 1, got {}", name(), num_classes));
  if (targets_.empty()) throw ValueError(fmt::format("{}: target_class_ids is empty", name()));
  for (auto id : targets_) {
    if (id < 0 || id >= num_classes) {
      throw ValueError(fmt::format("{}: target class id {} is outside [0, {})", name(), id, num_classes));
    }
  }
  cm_.assign(static_cast<std::size_t>(num_classes * num_classes), 0.0);
}

Tensor IoU::predicted_ids(const Tensor& y_pred) const {
  return options_.sparse_y_pred ? y_pred : argmax(y_pred, -1);
}

void IoU::update_state(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) {
  check_defined(y_true, y_pred, name());
  if (!options_.sparse_y_true && y_true.rank() < 1) {
    throw ShapeError(fmt::format("{}: one-hot y_true needs a class axis, got a scalar", name()));
  }
  if (!options_.sparse_y_pred && y_pred.rank() < 1) {
    throw ShapeError(fmt::format("{}: y_pred scores need a class axis, got a scalar", name()));
  }
  const Tensor t = options_.sparse_y_true ? y_true : argmax(y_true, -1);
  const Tensor p = predicted_ids(y_pred);
  check_same_shape(t, p, name(), "the predicted ids");
  const Tensor w = sample_weight.defined()
                       ? losses::detail::fit_weights(sample_weight, t.astype(kFloat64), kFloat64,
                                                     name() + ": sample_weight")
                       : Tensor();
  if (!p.device().is_cpu()) {
    // on a device: the confusion matrix of the batch as a segment sum there, ids out of range
    // (or the ignored class) weighing 0
    NoRecording no_tape;
    const Tensor a = t.astype(kInt64).reshape({-1}), b = p.astype(kInt64).reshape({-1});
    Tensor keep = logical_and(logical_and(a >= 0, a < num_classes_), logical_and(b >= 0, b < num_classes_));
    if (options_.ignore_class) keep = logical_and(keep, a != *options_.ignore_class);
    const Tensor weight = keep.astype(kFloat64) * (w.defined() ? w.reshape({-1}) : Tensor(1.0));
    const Tensor cell = where(keep, a * num_classes_ + b, 0);
    sums_.add(unsorted_segment_sum(weight, cell, num_classes_ * num_classes_, IndexMode::Clip).reshape({1, -1}),
              {&cm_});
    return;
  }
  const auto ids_t = t.astype(kInt64).to_vector<std::int64_t>();  // floats truncate, as Keras's int cast
  const auto ids_p = p.astype(kInt64).to_vector<std::int64_t>();
  const auto ws = w.defined() ? w.to_vector<double>() : std::vector<double>();
  for (std::size_t i = 0; i < ids_t.size(); ++i) {
    const std::int64_t a = ids_t[i], b = ids_p[i];
    if (a < 0 || a >= num_classes_ || b < 0 || b >= num_classes_) continue;
    if (options_.ignore_class && a == *options_.ignore_class) continue;
    cm_[static_cast<std::size_t>(a * num_classes_ + b)] += ws.empty() ? 1.0 : ws[i];
  }
}

double IoU::result() const {
  if (sums_.pending()) {
    IoU read = *this;
    read.sums_.fold({&read.cm_});
    return read.result();
  }
  double total = 0, valid = 0;
  const auto n = static_cast<std::size_t>(num_classes_);
  for (auto id : targets_) {
    const auto c = static_cast<std::size_t>(id);
    double predicted = 0, actual = 0;
    for (std::size_t k = 0; k < n; ++k) {
      predicted += cm_[k * n + c];
      actual += cm_[c * n + k];
    }
    const double tp = cm_[c * n + c];
    const double denominator = predicted + actual - tp;
    if (denominator > 1e-9) {
      total += tp / (denominator + 1e-7);
      valid += 1;
    }
  }
  return total / (valid + 1e-7);
}

void IoU::reset_state() {
  Metric::reset_state();
  std::fill(cm_.begin(), cm_.end(), 0.0);
  sums_.reset();
}

namespace {
std::vector<std::int64_t> all_classes(std::int64_t n) {
  std::vector<std::int64_t> ids;
  for (std::int64_t i = 0; i < n; ++i) ids.push_back(i);
  return ids;
}
IoUOptions named(IoUOptions o, const char* fallback) {
  if (o.name.empty()) o.name = fallback;
  return o;
}
}  // namespace

MeanIoU::MeanIoU(std::int64_t num_classes, IoUOptions options)
    : IoU(num_classes, all_classes(std::max<std::int64_t>(num_classes, 1)), named(std::move(options), "mean_io_u")) {}

BinaryIoU::BinaryIoU(std::vector<std::int64_t> target_class_ids, double threshold, std::string name)
    : IoU(2, std::move(target_class_ids), named(IoUOptions{std::move(name), std::nullopt, true, true}, "binary_io_u")),
      threshold_(threshold) {}

Tensor BinaryIoU::predicted_ids(const Tensor& y_pred) const { return (y_pred >= threshold_).astype(kInt64); }

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
  if (name == "binary_crossentropy" || name == "bce") return std::make_shared<BinaryCrossentropy>(name);
  if (name == "categorical_crossentropy") return std::make_shared<CategoricalCrossentropy>(name);
  if (name == "sparse_categorical_crossentropy") return std::make_shared<SparseCategoricalCrossentropy>(name);
  if (name == "kl_divergence") return std::make_shared<KLDivergence>(name);
  if (name == "poisson") return std::make_shared<Poisson>(name);
  if (name == "cosine_similarity") return std::make_shared<CosineSimilarity>(name);
  if (name == "mean_absolute_percentage_error" || name == "mape") {
    return std::make_shared<MeanAbsolutePercentageError>(name);
  }
  if (name == "mean_squared_logarithmic_error" || name == "msle") {
    return std::make_shared<MeanSquaredLogarithmicError>(name);
  }
  if (name == "log_cosh_error" || name == "logcosh") return std::make_shared<LogCoshError>(name);
  if (name == "hinge") return std::make_shared<Hinge>(name);
  if (name == "squared_hinge") return std::make_shared<SquaredHinge>(name);
  if (name == "categorical_hinge") return std::make_shared<CategoricalHinge>(name);
  if (name == "true_positives") return std::make_shared<TruePositives>(0.5, name);
  if (name == "false_positives") return std::make_shared<FalsePositives>(0.5, name);
  if (name == "true_negatives") return std::make_shared<TrueNegatives>(0.5, name);
  if (name == "false_negatives") return std::make_shared<FalseNegatives>(0.5, name);
  if (name == "r2_score") return std::make_shared<R2Score>("uniform_average", 0, name);
  if (name == "f1_score") return std::make_shared<F1Score>("macro", std::nullopt, name);
  if (name == "fbeta_score") return std::make_shared<FBetaScore>("macro", 1.0, std::nullopt, name);
  if (name == "binary_io_u") return std::make_shared<BinaryIoU>(std::vector<std::int64_t>{0, 1}, 0.5, name);
  throw ValueError(
      fmt::format("metrics::get: unknown metric '{}' (known: accuracy, acc, sparse_categorical_accuracy, "
                  "categorical_accuracy, binary_accuracy, mean_absolute_error, mae, mean_squared_error, mse, "
                  "root_mean_squared_error, top_k_categorical_accuracy, sparse_top_k_categorical_accuracy, "
                  "precision, recall, auc, mean, binary_crossentropy, bce, categorical_crossentropy, "
                  "sparse_categorical_crossentropy, kl_divergence, poisson, cosine_similarity, "
                  "mean_absolute_percentage_error, mape, mean_squared_logarithmic_error, msle, log_cosh_error, "
                  "logcosh, hinge, squared_hinge, categorical_hinge, true_positives, false_positives, "
                  "true_negatives, false_negatives, r2_score, f1_score, fbeta_score, binary_io_u)",
                  name));
}

}  // namespace tapeflow::metrics
