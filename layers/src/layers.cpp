// Layers: Keras's built-in layers as short functions of public tensor ops.
#include "tapeflow/layers.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "tapeflow/gradient_tape.hpp"
#include "tapeflow/observer.hpp"

namespace tapeflow {

// ================================================================ initializers
namespace initializers {
namespace {

struct Fans {
  double in, out;
};

// Keras's compute_fans: [n] -> (n, n); [in, out]; [..., in, out] times the receptive field.
Fans fans(const Shape& shape) {
  if (shape.empty()) return {1, 1};
  if (shape.size() == 1) return {double(shape[0]), double(shape[0])};
  double receptive = 1;
  for (std::size_t i = 0; i + 2 < shape.size(); ++i) receptive *= double(shape[i]);
  return {double(shape[shape.size() - 2]) * receptive, double(shape.back()) * receptive};
}

bool any_true(const Tensor& mask) { return sum(mask.astype(kInt64)).item<std::int64_t>() > 0; }

// Normal(0, stddev) truncated at two standard deviations: out-of-range draws are redrawn.
Tensor truncated_normal(const Shape& shape, Generator& gen, double stddev) {
  Tensor z = normal(shape, gen);
  for (int round = 0; round < 64; ++round) {
    const Tensor bad = abs(z) > 2.0;
    if (!any_true(bad)) break;
    z = where(bad, normal(shape, gen), z);
  }
  return z * stddev;
}

}  // namespace

Tensor glorot_uniform(const Shape& shape, Generator& gen) {
  const Fans f = fans(shape);
  const double limit = std::sqrt(6.0 / std::max(1.0, f.in + f.out));
  return uniform(shape, gen, -limit, limit);
}

Tensor glorot_normal(const Shape& shape, Generator& gen) {
  const Fans f = fans(shape);
  return truncated_normal(shape, gen, std::sqrt(2.0 / std::max(1.0, f.in + f.out)) / 0.87962566103423978);
}

Tensor he_normal(const Shape& shape, Generator& gen) {
  return truncated_normal(shape, gen, std::sqrt(2.0 / std::max(1.0, fans(shape).in)) / 0.87962566103423978);
}

Tensor he_uniform(const Shape& shape, Generator& gen) {
  const double limit = std::sqrt(6.0 / std::max(1.0, fans(shape).in));
  return uniform(shape, gen, -limit, limit);
}

Tensor zeros(const Shape& shape, Generator&) { return tapeflow::zeros(shape); }
Tensor ones(const Shape& shape, Generator&) { return tapeflow::ones(shape); }

Initializer get(const std::string& name) {
  if (name == "glorot_uniform") return glorot_uniform;
  if (name == "glorot_normal") return glorot_normal;
  if (name == "he_normal") return he_normal;
  if (name == "he_uniform") return he_uniform;
  if (name == "zeros") return zeros;
  if (name == "ones") return ones;
  throw ValueError(
      fmt::format("initializers::get: unknown initializer '{}' (known: glorot_uniform, "
                  "glorot_normal, he_normal, he_uniform, zeros, ones)",
                  name));
}

}  // namespace initializers

namespace layers {
namespace {

// Keras's to_snake_case: "MaxPooling2D" -> "max_pooling2d", "Conv2D" -> "conv2d".
std::string snake_case(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool upper = std::isupper(static_cast<unsigned char>(s[i]));
    // an upper-case letter starting a word ("[A-Z][a-z0-9]+") or following a lower-case one
    const bool word = i + 1 < s.size() && (std::islower(static_cast<unsigned char>(s[i + 1])) ||
                                           std::isdigit(static_cast<unsigned char>(s[i + 1])));
    if (i > 0 && upper && (word || std::islower(static_cast<unsigned char>(s[i - 1])))) out += '_';
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
  }
  return out;
}

void check_positive(std::int64_t v, const char* what, const std::string& layer) {
  if (v <= 0) throw ValueError(fmt::format("{}: {} must be positive, got {}", layer, what, v));
}

// Pooling strides: 0 stands for the pool size; a negative stride is an error, as in Keras.
void check_pool_strides(std::int64_t strides, const char* layer) {
  if (strides < 0) {
    throw ValueError(fmt::format("{}: strides must be positive (or 0 for the pool size), got {}", layer, strides));
  }
}

}  // namespace

namespace {

// Keras's names; an alias follows its canonical name (activation_name gives the first).
struct ActivationName {
  const char* name;
  Activation activation;
};
constexpr ActivationName kActivationNames[] = {
    {"linear", Activation::Linear},
    {"relu", Activation::Relu},
    {"sigmoid", Activation::Sigmoid},
    {"tanh", Activation::Tanh},
    {"softmax", Activation::Softmax},
    {"log_softmax", Activation::LogSoftmax},
    {"elu", Activation::Elu},
    {"selu", Activation::Selu},
    {"gelu", Activation::Gelu},
    {"silu", Activation::Silu},
    {"swish", Activation::Silu},
    {"leaky_relu", Activation::LeakyRelu},
    {"softplus", Activation::Softplus},
    {"softsign", Activation::Softsign},
    {"relu6", Activation::Relu6},
    {"hard_sigmoid", Activation::HardSigmoid},
    {"hard_silu", Activation::HardSilu},
    {"hard_swish", Activation::HardSilu},
    {"mish", Activation::Mish},
    {"exponential", Activation::Exponential},
};

}  // namespace

Activation activation_from_name(const std::string& name) {
  if (name.empty()) return Activation::Linear;
  std::string known;
  for (const auto& n : kActivationNames) {
    if (name == n.name) return n.activation;
    known += (known.empty() ? "" : ", ") + std::string(n.name);
  }
  throw ValueError(fmt::format("activation: unknown activation '{}' (known: {})", name, known));
}

const char* activation_name(Activation a) {
  for (const auto& n : kActivationNames)
    if (n.activation == a) return n.name;
  return "linear";
}

Tensor activate(const Tensor& x, Activation a) {
  switch (a) {
    case Activation::Linear:
      return x;
    case Activation::Relu:
      return relu(x);
    case Activation::Sigmoid:
      return sigmoid(x);
    case Activation::Tanh:
      return tanh(x);
    case Activation::Softmax:
      return softmax(x, -1);
    case Activation::LogSoftmax:
      return log_softmax(x, -1);
    case Activation::Elu:
      return elu(x);
    case Activation::Selu:
      return selu(x);
    case Activation::Gelu:
      return gelu(x);
    case Activation::Silu:
      return silu(x);
    case Activation::LeakyRelu:
      return leaky_relu(x);
    case Activation::Softplus:
      return softplus(x);
    case Activation::Softsign:
      return softsign(x);
    case Activation::Relu6:
      return relu6(x);
    case Activation::HardSigmoid:
      return hard_sigmoid(x);
    case Activation::HardSilu:
      return hard_silu(x);
    case Activation::Mish:
      return mish(x);
    case Activation::Exponential:
      return exp(x);
  }
  return x;
}

// ================================================================ Layer

Layer::Layer(std::string class_name, std::string name) : class_name_(std::move(class_name)), name_(std::move(name)) {}

std::string Layer::default_name() const { return snake_case(class_name_); }

void Layer::set_name(const std::string& name) {
  if (built_) throw ValueError(fmt::format("{}: cannot rename a built layer to '{}'", name_, name));
  name_ = name;
}

void detail::append_unique(std::vector<Variable>& out, std::vector<Variable> more) {
  for (auto& w : more) {
    const auto id = w.id();
    if (std::none_of(out.begin(), out.end(), [&](const Variable& v) { return v.id() == id; })) out.push_back(std::move(w));
  }
}

namespace {
// The seed of a layer's index-th sublayer: splitmix64 of (seed, index), salted apart from the
// seeds a model gives its layers
std::uint64_t sublayer_seed(std::uint64_t seed, std::size_t index) {
  std::uint64_t z = (seed ^ 0xD1B54A32D192ED03ull) + 0x9E3779B97F4A7C15ull * (index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
}  // namespace

void Layer::set_seed(std::uint64_t seed) {
  seed_tree(seed);
  seeded_ = true;
}

void Layer::seed_tree(std::uint64_t seed) {
  gen_ = Generator(seed);
  seed_ = seed;
  // a sublayer seeded by hand (or by a model it is in) keeps its seed
  for (std::size_t i = 0; i < sublayers_.size(); ++i)
    if (!sublayers_[i]->seeded_) sublayers_[i]->seed_tree(sublayer_seed(seed, i));
}

bool Layer::contains(const Layer* layer) const {
  if (layer == this) return true;
  return std::any_of(sublayers_.begin(), sublayers_.end(), [&](const auto& l) { return l->contains(layer); });
}

void Layer::track_layer(const std::shared_ptr<Layer>& layer) {
  const std::string me = name_.empty() ? class_name_ : name_;
  if (!layer) throw ValueError(fmt::format("{}: track: the layer is null", me));
  if (layer->contains(this)) {
    throw ValueError(fmt::format("{}: track: '{}' is this layer or contains it (a cycle)", me,
                                 layer->name().empty() ? layer->class_name() : layer->name()));
  }
  if (std::any_of(sublayers_.begin(), sublayers_.end(), [&](const auto& l) { return l == layer; })) {
    throw ValueError(fmt::format("{}: track: '{}' is already tracked", me,
                                 layer->name().empty() ? layer->class_name() : layer->name()));
  }
  // its own seed, derived from this layer's (so two equal sublayers do not start alike)
  if (!layer->seeded_) layer->seed_tree(sublayer_seed(seed_, sublayers_.size()));
  if (device_set_ && !layer->built()) layer->set_device(device_);
  sublayers_.push_back(layer);
}

void Layer::name_sublayers() {
  const std::string prefix = name_ + "/";
  // an unbuilt sublayer loses the prefix an earlier call gave it (this layer may have been
  // renamed after a failed build), then is named under this layer's current name
  for (const auto& l : sublayers_) {
    if (l->built() || l->parent_prefix_.empty()) continue;
    if (l->name_.compare(0, l->parent_prefix_.size(), l->parent_prefix_) == 0) l->name_.erase(0, l->parent_prefix_.size());
    l->parent_prefix_.clear();
  }
  auto taken = [&](const std::string& n, const Layer* self) {
    return std::any_of(sublayers_.begin(), sublayers_.end(), [&](const auto& l) {
      return l.get() != self && (l->name_ == n || l->name_ == prefix + n);
    });
  };
  for (const auto& l : sublayers_) {
    if (l->built() || !l->name_.empty()) continue;
    const std::string base = l->default_name();
    std::string candidate = base;
    for (int k = 1; taken(candidate, l.get()); ++k) candidate = base + "_" + std::to_string(k);
    l->name_ = candidate;
  }
  for (const auto& l : sublayers_) {
    if (l->built()) continue;
    l->name_ = prefix + l->name_;
    l->parent_prefix_ = prefix;
  }
}

Tensor Layer::operator()(const Tensor& x, bool training) {
  if (!x.defined()) throw ValueError(fmt::format("{}: the input is undefined", name_.empty() ? class_name_ : name_));
  if (!built_) {
    if (name_.empty()) name_ = default_name();
    name_sublayers();
    if (x.rank() == 0) throw ShapeError(fmt::format("{}: the input must have a batch axis, got a scalar", name_));
    if (!device_set_) device_ = x.device();
    const auto before = static_cast<std::ptrdiff_t>(weights_.size());
    try {
      build(x.shape());
    } catch (...) {
      weights_.erase(weights_.begin() + before, weights_.end());  // a failed build leaves no weights behind
      throw;
    }
    built_ = true;
  }
  Tensor y = call(x, training);
  output_shape_ = y.shape();
  if (!output_shape_.empty()) output_shape_[0] = -1;
  return y;
}

void Layer::set_device(Device device) {
  if (built_ && device != device_) {
    throw ValueError(fmt::format("{}: set_device({}): the layer is already built on {}; set the device before the "
                                 "first call",
                                 name_, device.str(), device_.str()));
  }
  device_ = device;
  device_set_ = true;
  for (const auto& l : sublayers_)
    if (!l->built()) l->set_device(device);
}

Variable Layer::add_weight(const std::string& name, const Shape& shape, const Initializer& initializer,
                           bool trainable) {
  Tensor init;
  {
    NoRecording no_tape;
    init = initializer(shape, gen_);
  }
  if (init.shape() != shape) {
    throw ShapeError(fmt::format("{}: the initializer of '{}' gave shape {}, expected {}", name_, name,
                                 shape_str(init.shape()), shape_str(shape)));
  }
  Variable v(init.astype(kFloat32).to(device_), name_ + "/" + name, trainable);
  weights_.push_back(v);
  return v;
}

std::vector<Variable> Layer::weights() const {
  std::vector<Variable> out = weights_;
  for (const auto& l : sublayers_) detail::append_unique(out, l->weights());
  return out;
}

std::vector<Variable> Layer::trainable_weights() const {
  std::vector<Variable> out;
  if (!trainable_) return out;
  for (const auto& w : weights_)
    if (w.trainable()) out.push_back(w);
  for (const auto& l : sublayers_) detail::append_unique(out, l->trainable_weights());
  return out;
}

std::vector<Variable> Layer::non_trainable_weights() const {
  if (!trainable_) return weights();
  std::vector<Variable> out;
  for (const auto& w : weights_)
    if (!w.trainable()) out.push_back(w);
  for (const auto& l : sublayers_) detail::append_unique(out, l->non_trainable_weights());
  return out;
}

std::int64_t Layer::count_params() const {
  std::int64_t n = 0;
  for (const auto& w : weights()) n += w.size();
  return n;
}

// ================================================================ Dense

Dense::Dense(std::int64_t units, Activation activation, DenseOptions options)
    : Layer("Dense", options.name), units_(units), activation_(activation), options_(std::move(options)) {
  check_positive(units, "units", "Dense");
}

void Dense::build(const Shape& input_shape) {
  // Keras's input spec (min_ndim=2): a rank-1 input's only axis is the batch, not the features
  if (input_shape.size() < 2) {
    throw ShapeError(fmt::format("{}: expected an input of rank >= 2 ([batch, ..., features]), got {}", name(),
                                 shape_str(input_shape)));
  }
  kernel_ = add_weight("kernel", {input_shape.back(), units_}, options_.kernel_initializer);
  if (options_.use_bias) bias_ = add_weight("bias", {units_}, options_.bias_initializer);
}

Tensor Dense::call(const Tensor& x, bool) {
  if (x.rank() < 2 || x.dim(-1) != kernel_.dim(0)) {
    throw ShapeError(
        fmt::format("{}: expected inputs [batch, ..., {}], got {}", name(), kernel_.dim(0), shape_str(x.shape())));
  }
  Tensor y = matmul(x, kernel_);  // [..., in] @ [in, units] -> [..., units]
  if (options_.use_bias) y = y + bias_;
  return activate(y, activation_);
}

// ================================================================ Flatten, Dropout

Tensor Flatten::call(const Tensor& x, bool) {
  std::int64_t rest = 1;
  for (std::int64_t i = 1; i < x.rank(); ++i) rest *= x.dim(i);
  return x.reshape({x.dim(0), rest});
}

Dropout::Dropout(double rate, std::string name) : Layer("Dropout", std::move(name)), rate_(rate) {
  if (!(rate >= 0 && rate < 1)) throw ValueError(fmt::format("Dropout: rate must be in [0, 1), got {}", rate));
}

Tensor Dropout::call(const Tensor& x, bool training) {
  if (!training || rate_ == 0) return x;
  return dropout(x, rate_, generator());
}

// ================================================================ Conv2D, pooling

Conv2D::Conv2D(std::int64_t filters, std::int64_t kernel_size, Activation activation, Conv2DOptions options)
    : Layer("Conv2D", options.name),
      filters_(filters),
      kernel_size_(kernel_size),
      activation_(activation),
      options_(std::move(options)) {
  check_positive(filters, "filters", "Conv2D");
  check_positive(kernel_size, "kernel_size", "Conv2D");
  check_positive(options_.strides, "strides", "Conv2D");
}

void Conv2D::build(const Shape& input_shape) {
  if (input_shape.size() != 4) {
    throw ShapeError(
        fmt::format("{}: expected inputs [batch, height, width, channels], got {}", name(), shape_str(input_shape)));
  }
  kernel_ = add_weight("kernel", {kernel_size_, kernel_size_, input_shape[3], filters_}, options_.kernel_initializer);
  if (options_.use_bias) bias_ = add_weight("bias", {filters_}, options_.bias_initializer);
}

Tensor Conv2D::call(const Tensor& x, bool) {
  if (x.rank() != 4 || x.dim(3) != kernel_.dim(2)) {
    throw ShapeError(fmt::format("{}: expected inputs [batch, height, width, {}], got {}", name(), kernel_.dim(2),
                                 shape_str(x.shape())));
  }
  Tensor y = conv2d(x, kernel_, options_.strides, options_.padding);
  if (options_.use_bias) y = y + bias_;
  return activate(y, activation_);
}

MaxPooling2D::MaxPooling2D(std::int64_t pool_size, PoolingOptions options)
    : Layer("MaxPooling2D", options.name), pool_size_(pool_size), options_(std::move(options)) {
  check_positive(pool_size, "pool_size", "MaxPooling2D");
  check_pool_strides(options_.strides, "MaxPooling2D");
}

Tensor MaxPooling2D::call(const Tensor& x, bool) {
  return max_pool2d(x, pool_size_, options_.strides, options_.padding);
}

AveragePooling2D::AveragePooling2D(std::int64_t pool_size, PoolingOptions options)
    : Layer("AveragePooling2D", options.name), pool_size_(pool_size), options_(std::move(options)) {
  check_positive(pool_size, "pool_size", "AveragePooling2D");
  check_pool_strides(options_.strides, "AveragePooling2D");
}

Tensor AveragePooling2D::call(const Tensor& x, bool) {
  return avg_pool2d(x, pool_size_, options_.strides, options_.padding);
}

// ================================================================ BatchNormalization

BatchNormalization::BatchNormalization(BatchNormalizationOptions options)
    : Layer("BatchNormalization", options.name), options_(std::move(options)) {
  if (!(options_.momentum >= 0 && options_.momentum <= 1)) {
    throw ValueError(fmt::format("BatchNormalization: momentum must be in [0, 1], got {}", options_.momentum));
  }
  if (!(options_.epsilon > 0)) {
    throw ValueError(fmt::format("BatchNormalization: epsilon must be positive, got {}", options_.epsilon));
  }
}

void BatchNormalization::build(const Shape& input_shape) {
  const Shape c{input_shape.back()};
  if (options_.scale) gamma_ = add_weight("gamma", c, initializers::ones);
  if (options_.center) beta_ = add_weight("beta", c, initializers::zeros);
  moving_mean_ = add_weight("moving_mean", c, initializers::zeros, false);
  moving_variance_ = add_weight("moving_variance", c, initializers::ones, false);
}

Tensor BatchNormalization::call(const Tensor& x, bool training) {
  if (x.rank() < 1 || x.dim(-1) != moving_mean_.dim(0)) {
    throw ShapeError(
        fmt::format("{}: expected inputs [..., {}], got {}", name(), moving_mean_.dim(0), shape_str(x.shape())));
  }
  Tensor mu, sigma2;              // [c]
  if (training && trainable()) {  // a frozen BatchNormalization runs in inference mode (Keras)
    std::vector<std::int64_t> axes;
    for (std::int64_t i = 0; i + 1 < x.rank(); ++i) axes.push_back(i);
    if (axes.empty()) {
      // rank 1: Keras reduces over no axis (each element is its own mean, with variance 0), where
      // mean(x, {}) would reduce over all of them
      mu = x;
      sigma2 = zeros_like(x);
    } else {
      mu = mean(x, axes);
      sigma2 = var(x, axes);  // biased, as Keras 3
    }
    NoRecording no_tape;
    const double m = options_.momentum;
    moving_mean_.assign(moving_mean_ * m + mu * (1.0 - m));
    moving_variance_.assign(moving_variance_ * m + sigma2 * (1.0 - m));
  } else {
    mu = moving_mean_;
    sigma2 = moving_variance_;
  }
  Tensor y = (x - mu) / sqrt(sigma2 + options_.epsilon);
  if (options_.scale) y = y * gamma_;
  if (options_.center) y = y + beta_;
  return y;
}

}  // namespace layers
}  // namespace tapeflow
