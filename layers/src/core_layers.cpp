// Core layers: Keras 3's Activation, Identity, Permute, RepeatVector, TimeDistributed, the
// noise and activity-regularization layers, the 1-D upsampling, padding and cropping layers,
// Normalization and CategoryEncoding, as short functions of public tensor ops.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "tapeflow/layers.hpp"
#include "tapeflow/observer.hpp"
#include "shape_rules.hpp"

namespace tapeflow {
namespace layers {
namespace {

// ShapeError unless x is [batch, steps, channels] (what), naming the layer.
void check_rank(const Tensor& x, std::int64_t rank, const char* what, const std::string& layer) {
  if (x.rank() != rank) {
    throw ShapeError(fmt::format("{}: expected inputs {}, got {}", layer, what, shape_str(x.shape())));
  }
}

void check_edges(const Edges1D& e, const char* what, const char* layer) {
  if (e.first < 0 || e.second < 0) {
    throw ValueError(fmt::format("{}: {} must not be negative, got ({}, {})", layer, what, e.first, e.second));
  }
}

// A rate of a dropout layer, in [0, 1).
void check_rate(double rate, const char* layer) {
  if (!(rate >= 0 && rate < 1)) throw ValueError(fmt::format("{}: rate must be in [0, 1), got {}", layer, rate));
}

// The dtype noise is drawn in: the input's when floating, else float32 (Keras's compute dtype).
DType noise_dtype(const Tensor& x) { return is_floating(x.dtype()) ? x.dtype() : kFloat32; }

}  // namespace

// ================================================================ Activation, Identity

ActivationLayer::ActivationLayer(Activation activation, std::string name)
    : Layer("Activation", std::move(name)), activation_(activation) {
  set_supports_masking(true);
}

Tensor ActivationLayer::call(const Tensor& x, bool) { return activate(x, activation_); }

Tensor Identity::call(const Tensor& x, bool) { return x; }

// ================================================================ Permute, RepeatVector

Permute::Permute(std::vector<std::int64_t> dims, std::string name)
    : Layer("Permute", std::move(name)), dims_(std::move(dims)) {
  std::vector<std::int64_t> sorted = dims_;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (sorted[i] != static_cast<std::int64_t>(i) + 1) {
      throw ValueError(fmt::format("Permute: dims must be a permutation of 1..{} (the axes after the batch), got ({})",
                                   dims_.size(), fmt::join(dims_, ", ")));
    }
  }
}

Tensor Permute::call(const Tensor& x, bool) {
  compute_output_shape(x.shape());  // its rank check
  std::vector<std::int64_t> axes = {0};
  axes.insert(axes.end(), dims_.begin(), dims_.end());
  return x.permute(axes);
}

RepeatVector::RepeatVector(std::int64_t n, std::string name) : Layer("RepeatVector", std::move(name)), n_(n) {
  if (n < 1) throw ValueError(fmt::format("RepeatVector: n must be positive, got {}", n));
}

Tensor RepeatVector::call(const Tensor& x, bool) {
  check_rank(x, 2, "[batch, features]", name());
  // [b, 1, f] broadcast to [b, n, f], copied so the output owns its n rows
  return x.reshape({x.dim(0), 1, x.dim(1)}).broadcast_to({x.dim(0), n_, x.dim(1)}).contiguous();
}

// ================================================================ TimeDistributed

TimeDistributed::TimeDistributed(std::shared_ptr<Layer> layer, std::string name)
    : Layer("TimeDistributed", std::move(name)), layer_(std::move(layer)) {
  set_supports_masking(true);
  if (!layer_) throw ValueError("TimeDistributed: the layer is null");
  track(layer_);
}

namespace {
void check_time_axis(const Shape& shape, const std::string& layer) {
  if (shape.size() < 3) {
    throw ShapeError(fmt::format("{}: expected inputs [batch, time, ...] of rank >= 3, got {}", layer, shape_str(shape)));
  }
}
}  // namespace

// refused before the layer counts as built, so a first bad call leaves it unbuilt
void TimeDistributed::build(const Shape& input_shape) {
  check_time_axis(input_shape, name());
  // one step's shape as call() gives it to the layer: [batch * time, ...]
  Shape merged(input_shape.begin() + 1, input_shape.end());
  merged[0] = detail::times(input_shape[0], input_shape[1]);
  layer_->build_from_shape(merged, device());
}

Tensor TimeDistributed::call(const Tensor& x, bool training) {
  check_time_axis(x.shape(), name());
  const std::int64_t b = x.dim(0), t = x.dim(1);
  Shape merged = x.shape();
  merged.erase(merged.begin());
  merged[0] = b * t;
  // [b, t, ...] -> [b * t, ...] -> the layer -> [b * t, ...'] -> [b, t, ...']
  const Tensor y = (*layer_)(x.contiguous().reshape(merged), training);
  if (y.rank() == 0 || y.dim(0) != b * t) {
    throw ShapeError(fmt::format("{}: layer '{}' turned the {} merged steps {} into {}, not {} rows", name(),
                                 layer_->name(), b * t, shape_str(merged), shape_str(y.shape()), b * t));
  }
  Shape out = y.shape();
  out[0] = t;
  out.insert(out.begin(), b);
  return y.contiguous().reshape(out);
}

// ================================================================ noise and regularization

GaussianNoise::GaussianNoise(double stddev, std::string name)
    : Layer("GaussianNoise", std::move(name)), stddev_(stddev) {
  set_supports_masking(true);
  if (!(stddev >= 0 && stddev <= 1)) {
    throw ValueError(fmt::format("GaussianNoise: stddev must be in [0, 1] (as Keras), got {}", stddev));
  }
}

Tensor GaussianNoise::call(const Tensor& x, bool training) {
  if (!training || stddev_ == 0) return x;
  return x + normal(x.shape(), generator(), 0, stddev_, noise_dtype(x), x.device());
}

GaussianDropout::GaussianDropout(double rate, std::string name) : Layer("GaussianDropout", std::move(name)), rate_(rate) {
  set_supports_masking(true);
  check_rate(rate, "GaussianDropout");
}

Tensor GaussianDropout::call(const Tensor& x, bool training) {
  if (!training || rate_ == 0) return x;
  return x * normal(x.shape(), generator(), 1, std::sqrt(rate_ / (1 - rate_)), noise_dtype(x), x.device());
}

SpatialDropout::SpatialDropout(std::string class_name, std::int64_t rank, double rate, std::string name)
    : Layer(std::move(class_name), std::move(name)), rank_(rank), rate_(rate) {
  set_supports_masking(true);
  check_rate(rate, this->class_name().c_str());
}

Tensor SpatialDropout::call(const Tensor& x, bool training) {
  check_rank(x, rank_, rank_ == 3 ? "[batch, steps, channels]" : "[batch, height, width, channels]", name());
  if (!training || rate_ == 0) return x;
  // one keep-or-drop per example and channel: the noise shape [b, 1, c] or [b, 1, 1, c]
  Shape noise(static_cast<std::size_t>(rank_), 1);
  noise.front() = x.dim(0);
  noise.back() = x.dim(-1);
  return x * dropout(ones(noise, noise_dtype(x), x.device()), rate_, generator());
}

ActivityRegularization::ActivityRegularization(double l1, double l2, std::string name)
    : Layer("ActivityRegularization", std::move(name)) {
  set_supports_masking(true);
  set_activity_regularizer(regularizers::l1_l2(l1, l2));  // invoke adds it, divided by the batch size
}

Tensor ActivityRegularization::call(const Tensor& x, bool) { return x; }

// ================================================================ UpSampling1D, ZeroPadding1D, Cropping1D

UpSampling1D::UpSampling1D(std::int64_t size, std::string name) : Layer("UpSampling1D", std::move(name)), size_(size) {
  if (size < 1) throw ValueError(fmt::format("UpSampling1D: size must be positive, got {}", size));
}

Tensor UpSampling1D::call(const Tensor& x, bool) {
  check_rank(x, 3, "[batch, steps, channels]", name());
  const std::int64_t b = x.dim(0), n = x.dim(1), c = x.dim(2);
  // [b, n, 1, c] broadcast to [b, n, size, c]: each step repeated
  return x.reshape({b, n, 1, c}).broadcast_to({b, n, size_, c}).reshape({b, n * size_, c});
}

ZeroPadding1D::ZeroPadding1D(Edges1D padding, std::string name)
    : Layer("ZeroPadding1D", std::move(name)), padding_(padding) {
  check_edges(padding_, "padding", "ZeroPadding1D");
}

Tensor ZeroPadding1D::call(const Tensor& x, bool) {
  check_rank(x, 3, "[batch, steps, channels]", name());
  const Shape padded = {x.dim(0), padding_.first + x.dim(1) + padding_.second, x.dim(2)};
  return slice_scatter(x, padded, {0, padding_.first, 0}, {1, 1, 1});
}

Cropping1D::Cropping1D(Edges1D cropping, std::string name) : Layer("Cropping1D", std::move(name)), cropping_(cropping) {
  check_edges(cropping_, "cropping", "Cropping1D");
}

Tensor Cropping1D::call(const Tensor& x, bool) {
  compute_output_shape(x.shape());  // its checks
  return x(all, Slice(cropping_.first, x.dim(1) - cropping_.second), all);
}

// ================================================================ Normalization

namespace {
constexpr double kNormalizationEpsilon = 1e-7;  // Keras's backend.epsilon()
}  // namespace

Normalization::Normalization(NormalizationOptions options)
    : Layer("Normalization", options.name), options_(std::move(options)) {
  set_supports_masking(true);
  const Tensor& m = options_.mean;
  const Tensor& v = options_.variance;
  if (m.defined() != v.defined()) {
    throw ValueError("Normalization: give both mean and variance, or neither (and call adapt())");
  }
  if (!m.defined()) return;
  if (m.shape() != v.shape()) {
    throw ValueError(fmt::format("Normalization: mean and variance must have one shape, got {} and {}",
                                 shape_str(m.shape()), shape_str(v.shape())));
  }
  if (m.rank() > static_cast<std::int64_t>(options_.axis.size())) {
    throw ValueError(fmt::format("Normalization: the rank of mean {} must be <= the number of axes kept ({})",
                                 shape_str(m.shape()), options_.axis.size()));
  }
}

void Normalization::build(const Shape& input_shape) {
  const auto ndim = static_cast<std::int64_t>(input_shape.size());
  keep_.clear();
  reduce_.clear();
  for (std::int64_t a : options_.axis) {
    if (a < -ndim || a >= ndim) {
      throw ValueError(fmt::format("{}: axis {} is out of range for inputs {} of rank {}", name(), a,
                                   shape_str(input_shape), ndim));
    }
    keep_.push_back(a < 0 ? a + ndim : a);
  }
  std::sort(keep_.begin(), keep_.end());
  keep_.erase(std::unique(keep_.begin(), keep_.end()), keep_.end());
  Shape kept;
  broadcast_shape_.assign(input_shape.size(), 1);
  for (std::int64_t d = 0; d < ndim; ++d) {
    if (std::find(keep_.begin(), keep_.end(), d) == keep_.end()) {
      reduce_.push_back(d);
    } else {
      kept.push_back(input_shape[static_cast<std::size_t>(d)]);
      broadcast_shape_[static_cast<std::size_t>(d)] = kept.back();
    }
  }
  build_shape_ = input_shape;
  if (!options_.mean.defined()) {
    adapt_mean_ = add_weight("mean", kept, initializers::zeros, false);
    adapt_variance_ = add_weight("variance", kept, initializers::ones, false);
    count_ = add_weight("count", {}, initializers::zeros, false);
    return;
  }
  // fixed statistics: their axes line up with the last kept axes, then broadcast over the rest
  const Tensor& m = options_.mean;
  Shape expanded(input_shape.size(), 1);
  for (std::int64_t i = 1; i <= m.rank(); ++i) {
    const auto axis = static_cast<std::size_t>(keep_[keep_.size() - static_cast<std::size_t>(i)]);
    const std::int64_t size = m.dim(-i);
    if (size != 1 && size != input_shape[axis]) {
      throw ValueError(fmt::format("{}: mean and variance {} do not broadcast to the kept axes of the input {}",
                                   name(), shape_str(m.shape()), shape_str(input_shape)));
    }
    expanded[axis] = size;
  }
  const auto fixed = [&](const Tensor& s) {
    return s.astype(kFloat32).to(device()).reshape(expanded).broadcast_to(broadcast_shape_).contiguous();
  };
  mean_ = fixed(options_.mean);
  variance_ = fixed(options_.variance);
}

Tensor Normalization::mean() const {
  return mean_.defined() || !adapt_mean_.defined() ? mean_ : adapt_mean_.reshape(broadcast_shape_);
}

Tensor Normalization::variance() const {
  return variance_.defined() || !adapt_variance_.defined() ? variance_ : adapt_variance_.reshape(broadcast_shape_);
}

void Normalization::adapt(const Tensor& data) {
  if (options_.mean.defined()) {
    throw ValueError(fmt::format("{}: adapt() on a layer given a fixed mean and variance",
                                 name().empty() ? default_name() : name()));
  }
  if (!data.defined() || data.rank() == 0) (*this)(data);  // operator()'s errors
  // unbuilt: build from data's shape, as a first call would
  if (!built()) invoke(data.shape(), data.device(), [&] { return data; });
  bool same = data.rank() == static_cast<std::int64_t>(build_shape_.size());
  for (std::int64_t d : keep_) same = same && data.dim(d) == build_shape_[static_cast<std::size_t>(d)];
  if (!same) {
    throw ValueError(fmt::format("{}: adapt(): the layer was built for inputs {}, but data is {}", name(),
                                 shape_str(build_shape_), shape_str(data.shape())));
  }
  NoRecording no_tape;
  const Tensor d = data.astype(kFloat64);
  // an empty axis list reduces every axis: with none to reduce, the data are the statistics
  const Tensor m = reduce_.empty() ? d : tapeflow::mean(d, reduce_);
  const Tensor v = reduce_.empty() ? zeros_like(d) : var(d, reduce_);
  adapt_mean_.assign(m.astype(kFloat32).to(device()));
  adapt_variance_.assign(v.astype(kFloat32).to(device()));
}

Tensor Normalization::call(const Tensor& x_in, bool) {
  compute_output_shape(x_in.shape());  // the built layer's checks
  const Tensor x = is_floating(x_in.dtype()) ? x_in : x_in.astype(kFloat32);
  const Tensor stddev = clip(sqrt(variance()), kNormalizationEpsilon, std::numeric_limits<double>::infinity());
  return options_.invert ? mean() + x * stddev : (x - mean()) / stddev;
}

// ================================================================ CategoryEncoding

CategoryEncoding::CategoryEncoding(std::int64_t num_tokens, const std::string& output_mode, std::string name)
    : Layer("CategoryEncoding", std::move(name)), num_tokens_(num_tokens) {
  if (output_mode == "one_hot") {
    mode_ = CategoryOutput::OneHot;
  } else if (output_mode == "multi_hot" || output_mode == "binary") {
    mode_ = CategoryOutput::MultiHot;
  } else if (output_mode == "count") {
    mode_ = CategoryOutput::Count;
  } else {
    throw ValueError(
        fmt::format("CategoryEncoding: unknown output_mode '{}' (known: one_hot, multi_hot, count)", output_mode));
  }
  if (num_tokens < 1) throw ValueError(fmt::format("CategoryEncoding: num_tokens must be >= 1, got {}", num_tokens));
}

Tensor CategoryEncoding::call(const Tensor& x_in, bool) {
  if (x_in.dtype() == kBool) {
    throw DTypeError(fmt::format("{}: expected integer tokens, got bool inputs {}", name(), shape_str(x_in.shape())));
  }
  Tensor x = is_floating(x_in.dtype()) ? x_in.astype(kInt64) : x_in;
  if (x.size() > 0) {
    const auto lo = min(x).item<std::int64_t>(), hi = max(x).item<std::int64_t>();
    if (lo < 0 || hi >= num_tokens_) {
      throw IndexError(fmt::format("{}: token {} is outside [0, {}) (inputs {})", name(), lo < 0 ? lo : hi,
                                   num_tokens_, shape_str(x.shape())));
    }
  }
  if (mode_ == CategoryOutput::OneHot) {
    if (x.rank() > 1 && x.dim(-1) == 1) x = x.squeeze({-1});
    return one_hot(x, num_tokens_);
  }
  // Keras reduces over axis 1, or 0 for a rank-1 input (one sample)
  const std::int64_t axis = x.rank() > 1 ? 1 : 0;
  const Tensor hot = one_hot(x, num_tokens_);  // [..., num_tokens]
  return mode_ == CategoryOutput::MultiHot ? max(hot, {axis}) : sum(hot, {axis});
}

// ================================================================ output shapes
// compute_output_shape of the layers above: the shape each call() gives and the checks it
// makes, on shapes whose unknown axes (-1) never fail.

Shape Permute::compute_output_shape(const Shape& s) const {
  if (s.size() != dims_.size() + 1) {
    throw ShapeError(fmt::format("{}: expected inputs of rank {} (the batch and the {} axes of dims ({})), got {}",
                                 detail::label(*this), dims_.size() + 1, dims_.size(), fmt::join(dims_, ", "),
                                 shape_str(s)));
  }
  Shape out = {s[0]};
  for (std::int64_t d : dims_) out.push_back(s[static_cast<std::size_t>(d)]);
  return out;
}

Shape RepeatVector::compute_output_shape(const Shape& s) const {
  detail::expect_rank(s, 2, "[batch, features]", *this);
  return {s[0], n_, s[1]};
}

Shape TimeDistributed::compute_output_shape(const Shape& s) const {
  check_time_axis(s, detail::label(*this));
  Shape merged(s.begin() + 1, s.end());  // [batch * time, ...]
  merged[0] = detail::times(s[0], s[1]);
  Shape out = layer_->compute_output_shape(merged);
  if (out.empty()) return {};
  out[0] = s[1];
  out.insert(out.begin(), s[0]);
  return out;
}

Shape SpatialDropout::compute_output_shape(const Shape& s) const {
  detail::expect_rank(s, static_cast<std::size_t>(rank_),
                      rank_ == 3 ? "[batch, steps, channels]" : "[batch, height, width, channels]", *this);
  return s;
}

Shape UpSampling1D::compute_output_shape(const Shape& s) const {
  detail::expect_rank(s, 3, "[batch, steps, channels]", *this);
  return {s[0], detail::times(s[1], size_), s[2]};
}

Shape ZeroPadding1D::compute_output_shape(const Shape& s) const {
  detail::expect_rank(s, 3, "[batch, steps, channels]", *this);
  return {s[0], s[1] < 0 ? -1 : padding_.first + s[1] + padding_.second, s[2]};
}

Shape Cropping1D::compute_output_shape(const Shape& s) const {
  detail::expect_rank(s, 3, "[batch, steps, channels]", *this);
  const std::int64_t n = s[1];
  // left + right >= n, without overflow (both are non-negative)
  if (n >= 0 && (cropping_.second >= n || cropping_.first >= n - cropping_.second)) {
    throw ValueError(fmt::format("{}: cropping ({}, {}) must leave a step of the input {}", detail::label(*this),
                                 cropping_.first, cropping_.second, shape_str(s)));
  }
  return {s[0], n < 0 ? -1 : n - cropping_.first - cropping_.second, s[2]};
}

Shape Normalization::compute_output_shape(const Shape& s) const {
  const auto ndim = static_cast<std::int64_t>(s.size());
  if (!built()) {
    for (std::int64_t a : options_.axis) {
      if (a < -ndim || a >= ndim) {
        throw ValueError(fmt::format("{}: axis {} is out of range for inputs {} of rank {}", detail::label(*this), a,
                                     shape_str(s), ndim));
      }
    }
    return s;
  }
  bool same = s.size() == build_shape_.size();
  for (std::int64_t d : keep_) {
    same = same && !detail::differ(s[static_cast<std::size_t>(d)], build_shape_[static_cast<std::size_t>(d)]);
  }
  if (!same) {
    throw ShapeError(fmt::format("{}: expected inputs like {} (the same rank and kept axes {}), got {}",
                                 detail::label(*this), shape_str(build_shape_), fmt::join(keep_, ", "), shape_str(s)));
  }
  return s;
}

Shape CategoryEncoding::compute_output_shape(const Shape& s) const {
  detail::expect_batch_axis(s, *this);
  Shape out = s;
  if (mode_ == CategoryOutput::OneHot) {
    if (out.size() > 1 && out.back() < 0) return {};  // a last axis of 1 is dropped: the rank is unknown
    if (out.size() > 1 && out.back() == 1) out.pop_back();
  } else {
    out.erase(out.begin() + (out.size() > 1 ? 1 : 0));  // multi_hot and count reduce axis 1
  }
  out.push_back(num_tokens_);
  return out;
}


}  // namespace layers
}  // namespace tapeflow
