// Losses as compositions of public ops (their gradients come from the primitives' rules).
#include "tapeflow/losses.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "tapeflow/ops.hpp"

namespace tapeflow::losses {
namespace {

void check_pred(const Tensor& y_true, const Tensor& y_pred, const char* loss) {
  if (!y_true.defined() || !y_pred.defined()) throw ValueError(fmt::format("{}: y_true or y_pred is undefined", loss));
  if (!is_floating(y_pred.dtype())) {
    throw DTypeError(fmt::format("{}: y_pred must be float32 or float64, got {}", loss, dtype_name(y_pred.dtype())));
  }
  if (y_pred.rank() == 0) throw ShapeError(fmt::format("{}: y_pred must have a batch axis, got a scalar", loss));
}

// y_true converted to y_pred's dtype and shape; [batch] against [batch, 1] (or the reverse)
// is fixed up as Keras does. Other mismatches are a ShapeError showing both shapes.
Tensor match_true(const Tensor& y_true, const Tensor& y_pred, const char* loss) {
  check_pred(y_true, y_pred, loss);
  Tensor t = y_true.dtype() == y_pred.dtype() ? y_true : y_true.astype(y_pred.dtype());
  if (t.rank() + 1 == y_pred.rank() && y_pred.dim(-1) == 1) t = t.expand_dims(-1);
  if (t.rank() == y_pred.rank() + 1 && t.dim(-1) == 1) t = t.squeeze({-1});
  if (t.shape() != y_pred.shape()) {
    throw ShapeError(fmt::format("{}: y_true {} and y_pred {} must have the same shape", loss,
                                 shape_str(y_true.shape()), shape_str(y_pred.shape())));
  }
  return t;
}

// Mean over the last axis for rank >= 2; a rank-1 tensor holds one value per example already.
Tensor mean_last(const Tensor& x) { return x.rank() >= 2 ? mean(x, {-1}) : x; }

// Class indices [batch, ...] as int32/int64 for y_pred [batch, ..., classes].
Tensor sparse_labels(const Tensor& y_true, const Tensor& y_pred, const char* loss) {
  check_pred(y_true, y_pred, loss);
  Tensor labels = y_true;
  if (labels.rank() == y_pred.rank() && labels.dim(-1) == 1) labels = labels.squeeze({-1});
  if (labels.rank() + 1 != y_pred.rank() ||
      !std::equal(labels.shape().begin(), labels.shape().end(), y_pred.shape().begin())) {
    throw ShapeError(fmt::format("{}: labels {} must be y_pred {} without its class axis", loss,
                                 shape_str(y_true.shape()), shape_str(y_pred.shape())));
  }
  if (!is_integral(labels.dtype())) labels = labels.astype(kInt64);
  return labels;
}

// y_pred[..., labels], with the loss named in an out-of-range label's error. Labels on a
// device are checked there, without waiting for it (check_later): the step goes on with them
// clipped into range, and the error comes at the thread's next read of a value (fit's: at the
// latest when the epoch's metrics are read).
Tensor pick(const Tensor& y_pred, const Tensor& labels, const char* loss) {
  if (!labels.device().is_cpu()) {
    const std::int64_t n = y_pred.dim(-1);
    check_later<IndexError>(reduce_all(logical_and(labels >= 0, labels < n)),
                            fmt::format("{}: a label is outside [0, {}) (labels {} on {}, checked there: raised at the "
                                        "first read of a value after that step)",
                                        loss, n, shape_str(labels.shape()), labels.device().str()));
    return gather(y_pred, labels, IndexMode::Clip);
  }
  try {
    return gather(y_pred, labels);
  } catch (const IndexError& e) {
    throw IndexError(fmt::format("{}: a label is outside [0, {}) ({})", loss, y_pred.dim(-1), e.what()));
  }
}

void check_smoothing(double s, const char* loss) {
  if (!(s >= 0 && s <= 1)) throw ValueError(fmt::format("{}: label_smoothing must be in [0, 1], got {}", loss, s));
}

// x / ||x|| along the last axis, a zero vector staying zero: Keras's normalize, x times
// min(rsqrt(sum x^2), 1 / 1e-7); the floor sits under the square root, so a zero vector's
// gradient is 0, not 0 * inf
Tensor l2_normalize(const Tensor& x) { return x / sqrt(maximum(sum(square(x), {-1}, true), 1e-14)); }

}  // namespace

Tensor mean_squared_error(const Tensor& y_true, const Tensor& y_pred) {
  const Tensor t = match_true(y_true, y_pred, "mean_squared_error");
  return mean_last(square(y_pred - t));
}

Tensor mean_absolute_error(const Tensor& y_true, const Tensor& y_pred) {
  const Tensor t = match_true(y_true, y_pred, "mean_absolute_error");
  return mean_last(abs(y_pred - t));
}

namespace {

// The element-wise binary cross-entropy of targets z (already smoothed) and y_pred.
Tensor bce_elements(const Tensor& z, const Tensor& y_pred, bool from_logits) {
  if (from_logits) {
    // max(x, 0) - x z + log1p(exp(-|x|)): never overflows, exact for large |x|. Written as
    // TensorFlow's sigmoid cross-entropy, with selects, so that the gradient at x = 0 is
    // sigmoid(0) - z (relu and abs have derivative 0 there, which gave -z)
    const Tensor& x = y_pred;
    const Tensor pos = x >= 0.0;
    return where(pos, x, 0.0) - x * z + log1p(exp(where(pos, -x, x)));
  }
  const Tensor p = clip(y_pred, kEpsilon, 1.0 - kEpsilon);
  return -(z * log(p) + (1.0 - z) * log(1.0 - p));
}

}  // namespace

Tensor binary_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits, double label_smoothing) {
  check_smoothing(label_smoothing, "binary_crossentropy");
  Tensor z = match_true(y_true, y_pred, "binary_crossentropy");
  if (label_smoothing > 0) z = z * (1.0 - label_smoothing) + 0.5 * label_smoothing;
  return mean_last(bce_elements(z, y_pred, from_logits));
}

Tensor binary_focal_crossentropy(const Tensor& y_true, const Tensor& y_pred, const BinaryFocalOptions& options) {
  const char* name = "binary_focal_crossentropy";
  check_smoothing(options.label_smoothing, name);
  Tensor z = match_true(y_true, y_pred, name);
  if (options.label_smoothing > 0) z = z * (1.0 - options.label_smoothing) + 0.5 * options.label_smoothing;
  // as Keras's TensorFlow backend: from logits, the cross-entropy is the stable one (sigmoid's
  // output carries its logits there) and the focal factor uses sigmoid(logits)
  const Tensor p = options.from_logits ? sigmoid(y_pred) : y_pred;
  const Tensor p_t = z * p + (1.0 - z) * (1.0 - p);
  Tensor focal = pow(1.0 - p_t, options.gamma) * bce_elements(z, y_pred, options.from_logits);
  if (options.apply_class_balancing) focal = focal * (z * options.alpha + (1.0 - z) * (1.0 - options.alpha));
  return focal.rank() >= 2 ? mean(focal, {options.axis}) : focal;
}

Tensor categorical_focal_crossentropy(const Tensor& y_true, const Tensor& y_pred,
                                      const CategoricalFocalOptions& options) {
  const char* name = "categorical_focal_crossentropy";
  check_smoothing(options.label_smoothing, name);
  Tensor t = match_true(y_true, y_pred, name);
  if (options.label_smoothing > 0) {
    // Keras smooths by the last axis's size whatever the class axis
    t = t * (1.0 - options.label_smoothing) + options.label_smoothing / static_cast<double>(y_pred.dim(-1));
  }
  const Tensor p = options.from_logits ? softmax(y_pred, options.axis) : y_pred;
  const Tensor q = clip(p / sum(p, {options.axis}, true), kEpsilon, 1.0 - kEpsilon);
  return sum(pow(1.0 - q, options.gamma) * options.alpha * -(t * log(q)), {options.axis});
}

Tensor categorical_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits,
                                double label_smoothing) {
  check_smoothing(label_smoothing, "categorical_crossentropy");
  Tensor t = match_true(y_true, y_pred, "categorical_crossentropy");
  if (label_smoothing > 0) {
    t = t * (1.0 - label_smoothing) + label_smoothing / static_cast<double>(y_pred.dim(-1));
  }
  if (from_logits) return -sum(t * log_softmax(y_pred, -1), {-1});
  // as Keras: renormalise, clip, then the cross-entropy
  const Tensor p = clip(y_pred / sum(y_pred, {-1}, true), kEpsilon, 1.0 - kEpsilon);
  return -sum(t * log(p), {-1});
}

Tensor sparse_categorical_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits) {
  const char* name = "sparse_categorical_crossentropy";
  const Tensor labels = sparse_labels(y_true, y_pred, name);
  if (from_logits) return logsumexp(y_pred, {-1}) - pick(y_pred, labels, name);
  // as Keras (clip, log, then softmax cross-entropy, which renormalises): -log(clip(p)[label] /
  // sum(clip(p))); a row of zeros gives log(classes), not NaN
  const Tensor p = clip(y_pred, kEpsilon, 1.0 - kEpsilon);
  return log(sum(p, {-1})) - log(pick(p, labels, name));
}

Tensor huber(const Tensor& y_true, const Tensor& y_pred, double delta) {
  if (!(delta > 0)) throw ValueError(fmt::format("huber: delta must be positive, got {}", delta));
  const Tensor e = y_pred - match_true(y_true, y_pred, "huber");
  const Tensor a = abs(e);
  return mean_last(where(a <= delta, square(e) * 0.5, a * delta - 0.5 * delta * delta));
}

Tensor log_cosh(const Tensor& y_true, const Tensor& y_pred) {
  const Tensor e = y_pred - match_true(y_true, y_pred, "log_cosh");
  return mean_last(e + softplus(e * -2.0) - std::log(2.0));  // cosh overflows past 710
}

Tensor kl_divergence(const Tensor& y_true, const Tensor& y_pred) {
  const Tensor t = clip(match_true(y_true, y_pred, "kl_divergence"), kEpsilon, 1.0);
  const Tensor p = clip(y_pred, kEpsilon, 1.0);
  return sum(t * log(t / p), {-1});
}

Tensor poisson(const Tensor& y_true, const Tensor& y_pred) {
  const Tensor t = match_true(y_true, y_pred, "poisson");
  return mean_last(y_pred - t * log(y_pred + kEpsilon));
}

Tensor cosine_similarity(const Tensor& y_true, const Tensor& y_pred) {
  const Tensor t = match_true(y_true, y_pred, "cosine_similarity");
  return -sum(l2_normalize(t) * l2_normalize(y_pred), {-1});
}

Tensor dice(const Tensor& y_true, const Tensor& y_pred, const std::vector<std::int64_t>& axis) {
  const Tensor t = match_true(y_true, y_pred, "dice");
  return 1.0 - sum(t * y_pred, axis) * 2.0 / (sum(t, axis) + sum(y_pred, axis) + kEpsilon);
}

Tensor tversky(const Tensor& y_true, const Tensor& y_pred, double alpha, double beta,
               const std::vector<std::int64_t>& axis) {
  const Tensor t = match_true(y_true, y_pred, "tversky");
  const Tensor tp = sum(t * y_pred, axis);
  const Tensor a = sum((1.0 - y_pred) * t, axis);
  const Tensor b = sum(y_pred * (1.0 - t), axis);
  return 1.0 - tp / (tp + a * alpha + b * beta + kEpsilon);
}

namespace {

// Keras's convert_binary_labels_to_hinge: labels all in {0, 1} become {-1, 1}; any others are
// used as they are (one host read of the batch's labels).
Tensor hinge_labels(const Tensor& y_true, const Tensor& y_pred, const char* loss) {
  const Tensor t = match_true(y_true, y_pred, loss);
  const bool binary =
      sum(logical_or(t == 0.0, t == 1.0).astype(kInt64)).item<std::int64_t>() == static_cast<std::int64_t>(t.size());
  return binary ? t * 2.0 - 1.0 : t;
}

}  // namespace

// maximum(m, 0), not relu(m): at a margin of exactly 1 the gradient passes, as Keras's
Tensor hinge(const Tensor& y_true, const Tensor& y_pred) {
  return mean_last(maximum(1.0 - hinge_labels(y_true, y_pred, "hinge") * y_pred, 0.0));
}

Tensor squared_hinge(const Tensor& y_true, const Tensor& y_pred) {
  return mean_last(square(maximum(1.0 - hinge_labels(y_true, y_pred, "squared_hinge") * y_pred, 0.0)));
}

Tensor categorical_hinge(const Tensor& y_true, const Tensor& y_pred) {
  const Tensor t = match_true(y_true, y_pred, "categorical_hinge");
  const Tensor pos = sum(t * y_pred, {-1});
  const Tensor neg = max((1.0 - t) * y_pred, {-1});
  return maximum(neg - pos + 1.0, 0.0);
}

Tensor mean_squared_logarithmic_error(const Tensor& y_true, const Tensor& y_pred) {
  const Tensor t = match_true(y_true, y_pred, "mean_squared_logarithmic_error");
  return mean_last(square(log(maximum(y_pred, kEpsilon) + 1.0) - log(maximum(t, kEpsilon) + 1.0)));
}

Tensor mean_absolute_percentage_error(const Tensor& y_true, const Tensor& y_pred) {
  const Tensor t = match_true(y_true, y_pred, "mean_absolute_percentage_error");
  return mean_last(abs((t - y_pred) / maximum(abs(t), kEpsilon))) * 100.0;
}

namespace {

constexpr std::pair<Reduction, const char*> kReductions[] = {
    {Reduction::SumOverBatchSize, "sum_over_batch_size"},
    {Reduction::Sum, "sum"},
    {Reduction::Mean, "mean"},
    {Reduction::MeanWithSampleWeight, "mean_with_sample_weight"},
    {Reduction::None, "none"},
};

// Keras's squeeze_or_expand_to_same_rank(a, b): when one side is one rank longer and ends in an
// axis of size 1, that axis goes, or the other side (of rank 1) gains one.
void squeeze_or_expand(Tensor& a, Tensor& b) {
  const std::int64_t ra = a.rank(), rb = b.rank();
  if (ra == rb + 1 && a.dim(-1) == 1) {
    if (rb == 1) {
      b = b.expand_dims(-1);
    } else {
      a = a.squeeze({-1});
    }
  }
  if (rb == ra + 1 && b.dim(-1) == 1) {
    if (ra == 1) {
      a = a.expand_dims(-1);
    } else {
      b = b.squeeze({-1});
    }
  }
}

// `a` and the weights `w` made ready for a * w: squeeze_or_expand, then w given trailing axes
// of size 1 up to a's rank (the batch axis leads: Keras's NumPy broadcasting would align a
// [batch] weight with a sequence's last axis and fail). A scalar `a` broadcasts to w, as Keras;
// otherwise ShapeError "<loss>: <w_desc> does not match the <a_desc>" when the shapes do not
// broadcast.
void fit_pair(Tensor& a, Tensor& w, const std::string& loss, const std::string& w_desc, const std::string& a_desc) {
  squeeze_or_expand(a, w);
  while (w.rank() < a.rank()) w = w.expand_dims(-1);
  bool fits = a.rank() == 0 || a.rank() == w.rank();
  for (std::int64_t i = 0; fits && i < a.rank(); ++i) fits = a.dim(i) == w.dim(i) || a.dim(i) == 1 || w.dim(i) == 1;
  if (!fits) throw ShapeError(fmt::format("{}: {} does not match the {}", loss, w_desc, a_desc));
}

}  // namespace

const char* reduction_name(Reduction reduction) {
  for (const auto& [r, name] : kReductions) {
    if (r == reduction) return name;
  }
  throw ValueError(fmt::format("reduction_name: unknown reduction {}", static_cast<int>(reduction)));
}

Reduction reduction_from_name(const std::string& name) {
  std::string allowed;
  for (const auto& [r, n] : kReductions) {
    if (name == n) return r;
    allowed += fmt::format("{}'{}'", allowed.empty() ? "" : ", ", n);
  }
  throw ValueError(fmt::format("Invalid value for argument `reduction`. Expected one of {} (or Reduction::None "
                               "for Keras's None). Received: reduction='{}'",
                               allowed, name));
}

Tensor Loss::operator()(const Tensor& y_true, const Tensor& y_pred) const {
  return (*this)(y_true, y_pred, Tensor(), Tensor());
}

Tensor Loss::operator()(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight) const {
  return (*this)(y_true, y_pred, sample_weight, Tensor());
}

// Keras 3's reduce_weighted_values: the mask merged into the sample weights (apply_mask), the
// values times them, then reduce_values.
Tensor Loss::operator()(const Tensor& y_true, const Tensor& y_pred, const Tensor& sample_weight,
                        const Tensor& mask) const {
  Tensor values = call(y_true, y_pred);
  const DType dtype = values.dtype();
  const Device device = values.device();
  const std::string values_desc = "values " + shape_str(values.shape());
  const auto sw_desc = [&] { return "sample_weight " + shape_str(sample_weight.shape()); };
  Tensor w;  // the weights of the values: sample weights times the mask; undefined for neither
  std::string w_desc;
  if (mask.defined()) {
    const Tensor m = (mask.dtype() == kBool ? mask : mask != 0.0).to(device);
    Tensor float_mask = m.astype(dtype);
    if (reduction_ == Reduction::SumOverBatchSize || reduction_ == Reduction::Mean) {
      // the real steps weigh total / valid, so that the mean over the batch is the mean over
      // them (divide_no_nan: nothing valid weighs nothing)
      float_mask = float_mask * (static_cast<double>(m.size()) / maximum(sum(float_mask), 1.0));
    }
    w = float_mask;
    w_desc = "mask " + shape_str(mask.shape());
    if (sample_weight.defined()) {
      Tensor sw = sample_weight.astype(dtype).to(device);
      fit_pair(float_mask, sw, name(), sw_desc(), w_desc);
      w = float_mask * sw;
      w_desc = sw_desc() + " times the " + w_desc;
    }
  } else if (sample_weight.defined()) {
    w = sample_weight.astype(dtype).to(device);
    w_desc = sw_desc();
  }
  if (w.defined()) {
    fit_pair(values, w, name(), w_desc, values_desc);
    values = values * w;
  }
  // reduce_values: "none", a scalar and an empty batch stay as they are
  if (reduction_ == Reduction::None || values.rank() == 0 || values.shape() == Shape{0}) return values;
  if (reduction_ == Reduction::Sum) return sum(values);
  if (reduction_ == Reduction::MeanWithSampleWeight && w.defined()) {
    // divide_no_nan by the weights' total (before their broadcast to the values, as Keras's)
    const Tensor total_weight = sum(w);
    const Tensor none = total_weight == 0.0;
    return where(none, 0.0, sum(values) / where(none, 1.0, total_weight));
  }
  if (!w.defined()) return mean(values);
  return values.size() == 0 ? sum(values) : sum(values) / static_cast<double>(values.size());
}

namespace detail {

Tensor fit_weights(const Tensor& w_in, const Tensor& values, DType dtype, const std::string& who) {
  Tensor w = w_in;
  if (w.rank() == values.rank() + 1 && w.dim(-1) == 1) w = w.squeeze({-1});
  while (w.rank() < values.rank()) w = w.expand_dims(-1);
  bool fits = w.rank() == values.rank();
  for (std::int64_t i = 0; fits && i < w.rank(); ++i) fits = w.dim(i) == values.dim(i) || w.dim(i) == 1;
  if (!fits) {
    throw ShapeError(fmt::format("{} {} does not match the values {}", who, shape_str(w_in.shape()),
                                 shape_str(values.shape())));
  }
  return w.astype(dtype).to(values.device()).broadcast_to(values.shape());
}

}  // namespace detail

Tensor MeanSquaredError::call(const Tensor& y_true, const Tensor& y_pred) const {
  return mean_squared_error(y_true, y_pred);
}
Tensor MeanAbsoluteError::call(const Tensor& y_true, const Tensor& y_pred) const {
  return mean_absolute_error(y_true, y_pred);
}
BinaryCrossentropy::BinaryCrossentropy(bool from_logits, double label_smoothing, Reduction reduction)
    : Loss("binary_crossentropy", reduction), from_logits_(from_logits), label_smoothing_(label_smoothing) {
  check_smoothing(label_smoothing, "BinaryCrossentropy");
}
Tensor BinaryCrossentropy::call(const Tensor& y_true, const Tensor& y_pred) const {
  return binary_crossentropy(y_true, y_pred, from_logits_, label_smoothing_);
}
CategoricalCrossentropy::CategoricalCrossentropy(bool from_logits, double label_smoothing, Reduction reduction)
    : Loss("categorical_crossentropy", reduction), from_logits_(from_logits), label_smoothing_(label_smoothing) {
  check_smoothing(label_smoothing, "CategoricalCrossentropy");
}
Tensor CategoricalCrossentropy::call(const Tensor& y_true, const Tensor& y_pred) const {
  return categorical_crossentropy(y_true, y_pred, from_logits_, label_smoothing_);
}
Huber::Huber(double delta, Reduction reduction) : Loss("huber", reduction), delta_(delta) {
  if (!(delta > 0)) throw ValueError(fmt::format("Huber: delta must be positive, got {}", delta));
}
Tensor Huber::call(const Tensor& y_true, const Tensor& y_pred) const { return huber(y_true, y_pred, delta_); }
LossFunction::LossFunction(std::string name, Fn fn, Reduction reduction)
    : Loss(std::move(name), reduction), fn_(fn) {
  if (fn_ == nullptr) throw ValueError(fmt::format("LossFunction '{}': the function is null", this->name()));
}
BinaryFocalCrossentropy::BinaryFocalCrossentropy(BinaryFocalOptions options, Reduction reduction)
    : Loss("binary_focal_crossentropy", reduction), options_(options) {
  check_smoothing(options.label_smoothing, "BinaryFocalCrossentropy");
}
Tensor BinaryFocalCrossentropy::call(const Tensor& y_true, const Tensor& y_pred) const {
  return binary_focal_crossentropy(y_true, y_pred, options_);
}
CategoricalFocalCrossentropy::CategoricalFocalCrossentropy(CategoricalFocalOptions options, Reduction reduction)
    : Loss("categorical_focal_crossentropy", reduction), options_(options) {
  check_smoothing(options.label_smoothing, "CategoricalFocalCrossentropy");
}
Tensor CategoricalFocalCrossentropy::call(const Tensor& y_true, const Tensor& y_pred) const {
  return categorical_focal_crossentropy(y_true, y_pred, options_);
}
Tensor SparseCategoricalCrossentropy::call(const Tensor& y_true, const Tensor& y_pred) const {
  return sparse_categorical_crossentropy(y_true, y_pred, from_logits_);
}

namespace {
template <class L>
std::shared_ptr<Loss> make() {
  return std::make_shared<L>();
}
}  // namespace

std::shared_ptr<Loss> get(const std::string& name) {
  using Make = std::shared_ptr<Loss> (*)();
  static const std::pair<const char*, Make> kNames[] = {
      {"mean_squared_error", &make<MeanSquaredError>},
      {"mse", &make<MeanSquaredError>},
      {"mean_absolute_error", &make<MeanAbsoluteError>},
      {"mae", &make<MeanAbsoluteError>},
      {"binary_crossentropy", &make<BinaryCrossentropy>},
      {"categorical_crossentropy", &make<CategoricalCrossentropy>},
      {"sparse_categorical_crossentropy",
       &make<SparseCategoricalCrossentropy>},
      {"huber", &make<Huber>},
      {"log_cosh", &make<LogCosh>},
      {"logcosh", &make<LogCosh>},
      {"kl_divergence", &make<KLDivergence>},
      {"kld", &make<KLDivergence>},
      {"poisson", &make<Poisson>},
      {"cosine_similarity", &make<CosineSimilarity>},
      {"hinge", &make<Hinge>},
      {"squared_hinge", &make<SquaredHinge>},
      {"categorical_hinge", &make<CategoricalHinge>},
      {"mean_squared_logarithmic_error",
       &make<MeanSquaredLogarithmicError>},
      {"msle", &make<MeanSquaredLogarithmicError>},
      {"mean_absolute_percentage_error",
       &make<MeanAbsolutePercentageError>},
      {"mape", &make<MeanAbsolutePercentageError>},
      {"binary_focal_crossentropy", &make<BinaryFocalCrossentropy>},
      {"categorical_focal_crossentropy", &make<CategoricalFocalCrossentropy>},
      {"dice", &make<Dice>},
      {"tversky", &make<Tversky>},
      {"ctc", &make<CTC>},
  };
  std::string known;
  for (const auto& [n, make] : kNames) {
    if (name == n) return make();
    known += (known.empty() ? "" : ", ") + std::string(n);
  }
  throw ValueError(fmt::format("losses::get: unknown loss '{}' (known: {})", name, known));
}

}  // namespace tapeflow::losses
