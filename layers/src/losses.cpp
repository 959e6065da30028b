// Losses as compositions of public ops (their gradients come from the primitives' rules).
#include "tapeflow/losses.hpp"

#include <fmt/format.h>

#include <algorithm>

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

// y_pred[..., labels], with the loss named in an out-of-range label's error.
Tensor pick(const Tensor& y_pred, const Tensor& labels, const char* loss) {
  try {
    return gather(y_pred, labels);
  } catch (const IndexError& e) {
    throw IndexError(fmt::format("{}: a label is outside [0, {}) ({})", loss, y_pred.dim(-1), e.what()));
  }
}

}  // namespace

Tensor mean_squared_error(const Tensor& y_true, const Tensor& y_pred) {
  const Tensor t = match_true(y_true, y_pred, "mean_squared_error");
  return mean_last(square(y_pred - t));
}

Tensor mean_absolute_error(const Tensor& y_true, const Tensor& y_pred) {
  const Tensor t = match_true(y_true, y_pred, "mean_absolute_error");
  return mean_last(abs(y_pred - t));
}

Tensor binary_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits) {
  const Tensor z = match_true(y_true, y_pred, "binary_crossentropy");
  if (from_logits) {
    // max(x, 0) - x z + log1p(exp(-|x|)): never overflows, exact for large |x| (TensorFlow's
    // sigmoid cross-entropy)
    const Tensor& x = y_pred;
    return mean_last(relu(x) - x * z + log1p(exp(-abs(x))));
  }
  const Tensor p = clip(y_pred, kEpsilon, 1.0 - kEpsilon);
  return mean_last(-(z * log(p) + (1.0 - z) * log(1.0 - p)));
}

Tensor categorical_crossentropy(const Tensor& y_true, const Tensor& y_pred, bool from_logits) {
  const Tensor t = match_true(y_true, y_pred, "categorical_crossentropy");
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

Tensor Loss::operator()(const Tensor& y_true, const Tensor& y_pred) const { return mean(call(y_true, y_pred)); }

Tensor MeanSquaredError::call(const Tensor& y_true, const Tensor& y_pred) const {
  return mean_squared_error(y_true, y_pred);
}
Tensor MeanAbsoluteError::call(const Tensor& y_true, const Tensor& y_pred) const {
  return mean_absolute_error(y_true, y_pred);
}
Tensor BinaryCrossentropy::call(const Tensor& y_true, const Tensor& y_pred) const {
  return binary_crossentropy(y_true, y_pred, from_logits_);
}
Tensor CategoricalCrossentropy::call(const Tensor& y_true, const Tensor& y_pred) const {
  return categorical_crossentropy(y_true, y_pred, from_logits_);
}
Tensor SparseCategoricalCrossentropy::call(const Tensor& y_true, const Tensor& y_pred) const {
  return sparse_categorical_crossentropy(y_true, y_pred, from_logits_);
}

std::shared_ptr<Loss> get(const std::string& name) {
  if (name == "mean_squared_error" || name == "mse") return std::make_shared<MeanSquaredError>();
  if (name == "mean_absolute_error" || name == "mae") return std::make_shared<MeanAbsoluteError>();
  if (name == "binary_crossentropy") return std::make_shared<BinaryCrossentropy>();
  if (name == "categorical_crossentropy") return std::make_shared<CategoricalCrossentropy>();
  if (name == "sparse_categorical_crossentropy") return std::make_shared<SparseCategoricalCrossentropy>();
  throw ValueError(
      fmt::format("losses::get: unknown loss '{}' (known: mean_squared_error, mse, mean_absolute_error, mae, "
                  "binary_crossentropy, "
                  "categorical_crossentropy, sparse_categorical_crossentropy)",
                  name));
}

}  // namespace tapeflow::losses
