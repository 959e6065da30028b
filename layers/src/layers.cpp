// Layers: Keras's built-in layers as short functions of public tensor ops.
#include "tapeflow/layers.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <cctype>
#include <cmath>
#include <functional>
#include <limits>

#include "tapeflow/gradient_tape.hpp"
#include "tapeflow/observer.hpp"
#include "shape_rules.hpp"

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

Tensor lecun_normal(const Shape& shape, Generator& gen) {
  return truncated_normal(shape, gen, std::sqrt(1.0 / std::max(1.0, fans(shape).in)) / 0.87962566103423978);
}

Tensor lecun_uniform(const Shape& shape, Generator& gen) {
  const double limit = std::sqrt(3.0 / std::max(1.0, fans(shape).in));
  return uniform(shape, gen, -limit, limit);
}

Tensor random_uniform(const Shape& shape, Generator& gen) { return uniform(shape, gen, -0.05, 0.05); }
Tensor random_normal(const Shape& shape, Generator& gen) { return normal(shape, gen) * 0.05; }
Tensor truncated_normal(const Shape& shape, Generator& gen) { return truncated_normal(shape, gen, 0.05); }

Tensor orthogonal(const Shape& shape, Generator& gen) {
  if (shape.size() < 2) {
    throw ValueError(fmt::format("initializers::orthogonal: the shape must have rank >= 2, got {}", shape_str(shape)));
  }
  std::int64_t rows = 1;
  for (std::size_t i = 0; i + 1 < shape.size(); ++i) rows *= shape[i];
  const std::int64_t cols = shape.back();
  const std::int64_t m = std::max(rows, cols), n = std::min(rows, cols);
  // the Q of a [m, n] normal matrix a = QR by modified Gram-Schmidt in double: R's diagonal (the
  // norms) is positive, which is the sign Keras fixes Q to. The columns are stored as the rows
  // of `at` [n, m], so each one is contiguous (walked with a stride, [1024, 4096] took minutes)
  std::vector<double> at = normal({n, m}, gen).astype(kFloat64).to_vector<double>();
  const auto col = [&](std::int64_t j) { return at.data() + j * m; };
  for (std::int64_t j = 0; j < n; ++j) {
    double* v = col(j);
    for (std::int64_t k = 0; k < j; ++k) {
      const double* u = col(k);
      double dot = 0;
      for (std::int64_t i = 0; i < m; ++i) dot += u[i] * v[i];
      for (std::int64_t i = 0; i < m; ++i) v[i] -= dot * u[i];
    }
    double norm = 0;
    for (std::int64_t i = 0; i < m; ++i) norm += v[i] * v[i];
    norm = std::sqrt(norm);
    for (std::int64_t i = 0; i < m; ++i) v[i] /= norm;
  }
  Tensor qt = tensor(at, {n, m}, kFloat64);  // Q transposed
  Tensor q = rows < cols ? qt : qt.transpose().contiguous();
  return q.astype(kFloat32).reshape(shape);
}

Tensor zeros(const Shape& shape, Generator&) { return tapeflow::zeros(shape); }
Tensor ones(const Shape& shape, Generator&) { return tapeflow::ones(shape); }

Initializer get(const std::string& name) {
  static const std::pair<const char*, Tensor (*)(const Shape&, Generator&)> kNames[] = {
      {"glorot_uniform", glorot_uniform}, {"glorot_normal", glorot_normal},
      {"he_normal", he_normal},           {"he_uniform", he_uniform},
      {"lecun_normal", lecun_normal},     {"lecun_uniform", lecun_uniform},
      {"random_uniform", random_uniform}, {"uniform", random_uniform},
      {"random_normal", random_normal},   {"normal", random_normal},
      {"truncated_normal", truncated_normal}, {"orthogonal", orthogonal},
      {"zeros", zeros},                   {"ones", ones},
  };
  std::string known;
  for (const auto& [n, f] : kNames) {
    if (name == n) return f;
    known += (known.empty() ? "" : ", ") + std::string(n);
  }
  throw ValueError(fmt::format("initializers::get: unknown initializer '{}' (known: {})", name, known));
}

}  // namespace initializers

// ================================================================ regularizers
namespace regularizers {
namespace {
void check_factor(double f, const char* what) {
  if (!std::isfinite(f) || f < 0) throw ValueError(fmt::format("regularizers: {} must be finite and >= 0, got {}", what, f));
}
}  // namespace

Regularizer l1(double factor) {
  check_factor(factor, "the l1 factor");
  return [factor](const Tensor& x) { return sum(abs(x)) * factor; };
}

Regularizer l2(double factor) {
  check_factor(factor, "the l2 factor");
  return [factor](const Tensor& x) { return sum(square(x)) * factor; };
}

Regularizer l1_l2(double l1_factor, double l2_factor) {
  check_factor(l1_factor, "the l1 factor");
  check_factor(l2_factor, "the l2 factor");
  return [l1_factor, l2_factor](const Tensor& x) {
    Tensor r = zeros({}, x.dtype(), x.device());
    if (l1_factor != 0) r = r + sum(abs(x)) * l1_factor;
    if (l2_factor != 0) r = r + sum(square(x)) * l2_factor;
    return r;
  };
}

Regularizer get(const std::string& name) {
  if (name.empty()) return {};
  if (name == "l1") return l1();
  if (name == "l2") return l2();
  if (name == "l1_l2") return l1_l2();
  throw ValueError(fmt::format("regularizers: unknown regularizer '{}' (known: l1, l2, l1_l2)", name));
}
}  // namespace regularizers

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

// An error an op raised inside a layer's call, of the same type, with the layer's name in front
// ("layer_normalization: mul: tensors are on different devices ..."), unless the layer named
// itself already.
template <class E>
[[noreturn]] void rethrow_named(const E& e, const std::string& layer) {
  const std::string what = e.what();
  if (what.compare(0, layer.size(), layer) == 0) throw;
  throw E(fmt::format("{}: {}", layer, what));
}

// body(), its errors named after the layer (rethrow_named).
Tensor with_layer_name(const std::string& layer, const std::function<Tensor()>& body) {
  try {
    return body();
  } catch (const ShapeError& e) {
    rethrow_named(e, layer);
  } catch (const DTypeError& e) {
    rethrow_named(e, layer);
  } catch (const DeviceError& e) {
    rethrow_named(e, layer);
  } catch (const IndexError& e) {
    rethrow_named(e, layer);
  } catch (const ValueError& e) {
    rethrow_named(e, layer);
  }
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

std::vector<std::shared_ptr<Layer>> detail::layer_tree(const std::vector<std::shared_ptr<Layer>>& roots) {
  std::vector<std::shared_ptr<Layer>> out;
  std::function<void(const std::shared_ptr<Layer>&)> visit = [&](const std::shared_ptr<Layer>& l) {
    if (std::find(out.begin(), out.end(), l) != out.end()) return;
    out.push_back(l);
    for (const auto& sub : l->sublayers()) visit(sub);
  };
  for (const auto& l : roots) visit(l);
  return out;
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

void Layer::check_input(const Tensor& x) const {
  if (!x.defined()) throw ValueError(fmt::format("{}: the input is undefined", name_.empty() ? class_name_ : name_));
  if (!built_ && x.rank() == 0) {
    throw ShapeError(fmt::format("{}: the input must have a batch axis, got a scalar",
                                 name_.empty() ? default_name() : name_));
  }
}

Tensor Layer::operator()(const Tensor& x, bool training) {
  check_input(x);
  return invoke(x.shape(), x.device(), [&] { return call(x, training); });
}

Tensor Layer::operator()(const Tensor& x, const Tensor& mask, bool training) {
  if (!mask.defined()) return (*this)(x, training);
  check_input(x);
  Tensor y = invoke(x.shape(), x.device(), [&] { return call_masked(x, mask, training); });
  if (!supports_masking_ && !warned_mask_dropped_) {
    warned_mask_dropped_ = true;  // Keras warns on every call; Python shows it once
    std::cerr << fmt::format("tapeflow: layer '{}' (of type {}) was passed an input with a mask attached to it, "
                             "but it does not support masking: the mask is dropped here and the layers after it "
                             "will not see it\n",
                             name(), class_name());
  }
  return y;
}

Tensor Layer::call_masked(const Tensor& x, const Tensor&, bool training) { return call(x, training); }

Tensor Layer::compute_mask(const Tensor&, const Tensor& mask) const { return supports_masking_ ? mask : Tensor(); }

void Layer::build_from_shape(const Shape& input_shape, Device device) {
  if (built_) return;
  if (name_.empty()) name_ = default_name();
  name_sublayers();
  if (!device_set_) device_ = device;
  const auto before = static_cast<std::ptrdiff_t>(weights_.size());
  try {
    build(input_shape);
  } catch (...) {
    weights_.erase(weights_.begin() + before, weights_.end());  // a failed build leaves no weights behind
    weight_regularizers_.erase(weight_regularizers_.begin() + before, weight_regularizers_.end());
    throw;
  }
  built_ = true;
}

void detail_unbuild(Layer& layer) {
  layer.weights_.clear();
  layer.weight_regularizers_.clear();
  layer.call_losses_.clear();
  layer.output_shape_.clear();
  layer.input_shape_.clear();
  layer.built_ = false;
  layer.gen_ = Generator(layer.gen_.seed());  // nothing but the build drew from it: the next build draws the same
}

Tensor Layer::invoke(const Shape& input_shape, Device input_device, const std::function<Tensor()>& body) {
  build_from_shape(input_shape, input_device);
  call_losses_.clear();
  const Tensor y = with_layer_name(name_, [&] {
    Tensor out = body();
    if (activity_regularizer_ && out.rank() > 0 && out.dim(0) > 0) {
      add_loss(activity_regularizer_(out) / static_cast<double>(out.dim(0)));
    }
    return out;
  });
  output_shape_ = y.shape();
  if (!output_shape_.empty()) output_shape_[0] = -1;
  input_shape_ = input_shape;
  if (!input_shape_.empty()) input_shape_[0] = -1;
  return y;
}

Shape Layer::probe_output_shape(std::int64_t batch, const std::function<Tensor()>& run) const {
  // The probe is not a call: what a call leaves behind (the output shape, add_loss) is put back.
  struct Restore {
    Layer& layer;
    Shape output_shape, input_shape;
    std::vector<Tensor> call_losses;
    ~Restore() {
      layer.output_shape_ = std::move(output_shape);
      layer.input_shape_ = std::move(input_shape);
      layer.call_losses_ = std::move(call_losses);
    }
  } restore{const_cast<Layer&>(*this), output_shape_, input_shape_, call_losses_};
  Shape out;
  try {
    NoRecording no_tape;
    out = with_layer_name(detail::label(*this), run).shape();
  } catch (const DTypeError&) {
    return {};  // the zeros' float32 is the probe's choice, not the input's dtype: unknown
  } catch (const Error&) {
    throw;  // the layer's own error: these inputs do not fit it
  } catch (...) {
    return {};  // anything else: the shape is unknown
  }
  if (!out.empty()) out[0] = batch;
  return out;
}

Shape Layer::compute_output_shape(const Shape& input_shape) const {
  if (!built_ || input_shape.empty()) return {};
  for (std::size_t a = 1; a < input_shape.size(); ++a) {
    if (input_shape[a] < 0) return {};
  }
  Shape one = input_shape;
  one[0] = 1;
  return probe_output_shape(input_shape[0], [&] {
    return const_cast<Layer&>(*this).call(zeros(one, kFloat32, device_), false);
  });
}

std::vector<Tensor> Layer::get_weights() const { return detail::get_weights(weights()); }

void Layer::set_weights(const std::vector<Tensor>& values) {
  detail::set_weights(name_.empty() ? default_name() : name_, weights(), values);
}

namespace detail {

std::vector<Tensor> get_weights(const std::vector<Variable>& weights) {
  std::vector<Tensor> out;
  out.reserve(weights.size());
  for (const auto& w : weights) out.push_back(w.device() == Device::cpu() ? w.clone() : w.to(Device::cpu()));
  return out;
}

void set_weights(const std::string& who, const std::vector<Variable>& weights, const std::vector<Tensor>& values) {
  if (values.size() != weights.size()) {
    std::string expected;
    for (const auto& w : weights) expected += (expected.empty() ? "" : ", ") + w.name() + " " + shape_str(w.shape());
    throw ValueError(fmt::format("{}: set_weights: expected {} weight{} ({}), got {}", who, weights.size(),
                                 weights.size() == 1 ? "" : "s", expected.empty() ? "none: not built yet" : expected,
                                 values.size()));
  }
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const Tensor& v = values[i];
    if (!v.defined()) throw ValueError(fmt::format("{}: set_weights: value {} ({}) is undefined", who, i, weights[i].name()));
    if (v.shape() != weights[i].shape()) {
      throw ShapeError(fmt::format("{}: set_weights: {} has shape {}, got {} (value {})", who, weights[i].name(),
                                   shape_str(weights[i].shape()), shape_str(v.shape()), i));
    }
    if (v.dtype() == kBool) {
      throw DTypeError(fmt::format("{}: set_weights: value {} ({}) is bool, expected a number", who, i, weights[i].name()));
    }
  }
  for (std::size_t i = 0; i < weights.size(); ++i) {
    Variable w = weights[i];
    w.assign(values[i].astype(w.dtype()).to(w.device()));
  }
}

}  // namespace detail

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
                           bool trainable, Regularizer regularizer) {
  if (std::any_of(shape.begin(), shape.end(), [](std::int64_t d) { return d < 0; })) {
    // a symbolic build over an axis of unknown size that this weight needs (Keras's error)
    std::string dims;
    for (auto d : shape) dims += (dims.empty() ? "" : ", ") + (d < 0 ? std::string("None") : std::to_string(d));
    throw ValueError(fmt::format("{}: the shape of weight '{}' must be fully defined (no None axes), got ({}{})",
                                 detail::label(*this), name, dims, shape.size() == 1 ? "," : ""));
  }
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
  weight_regularizers_.push_back(std::move(regularizer));
  return v;
}

void Layer::add_loss(const Tensor& loss) {
  if (!loss.defined() || loss.rank() != 0) {
    throw ValueError(fmt::format("{}: add_loss: a loss must be a scalar, got {}", name_.empty() ? class_name_ : name_,
                                 loss.defined() ? shape_str(loss.shape()) : std::string("an undefined tensor")));
  }
  call_losses_.push_back(loss);
}

std::vector<Tensor> detail_losses(const std::vector<const Layer*>& roots) {
  std::vector<const Layer*> all;
  std::function<void(const Layer*)> visit = [&](const Layer* l) {
    if (std::find(all.begin(), all.end(), l) != all.end()) return;
    all.push_back(l);
    for (const auto& s : l->sublayers_) visit(s.get());
  };
  for (const auto* r : roots) visit(r);
  std::vector<Tensor> out;
  for (const auto* l : all) out.insert(out.end(), l->call_losses_.begin(), l->call_losses_.end());
  // compute_loss asks every step: without a regularized weight, skip gathering the trainable ones
  const bool regularized = std::any_of(all.begin(), all.end(), [](const Layer* l) {
    return std::any_of(l->weight_regularizers_.begin(), l->weight_regularizers_.end(),
                       [](const Regularizer& r) { return static_cast<bool>(r); });
  });
  if (!regularized) return out;
  std::vector<Variable> trainable;
  for (const auto* r : roots) detail::append_unique(trainable, r->trainable_weights());
  for (const auto* l : all) {
    for (std::size_t i = 0; i < l->weights_.size(); ++i) {
      if (!l->weight_regularizers_[i]) continue;
      const auto id = l->weights_[i].id();
      if (std::any_of(trainable.begin(), trainable.end(), [&](const Variable& v) { return v.id() == id; })) {
        out.push_back(l->weight_regularizers_[i](l->weights_[i]));
      }
    }
  }
  return out;
}

std::vector<Tensor> Layer::losses() const { return detail_losses({this}); }

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
  set_activity_regularizer(options_.activity_regularizer);
  set_supports_masking(true);
}

void Dense::build(const Shape& input_shape) {
  Dense::compute_output_shape(input_shape);  // its rank check (built() is false here)
  kernel_ = add_weight("kernel", {input_shape.back(), units_}, options_.kernel_initializer, true,
                       options_.kernel_regularizer);
  if (options_.use_bias) bias_ = add_weight("bias", {units_}, options_.bias_initializer, true, options_.bias_regularizer);
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
  set_supports_masking(true);
}

Tensor Dropout::call(const Tensor& x, bool training) {
  if (!training || rate_ == 0) return x;
  return dropout(x, rate_, generator());
}

// ================================================================ Conv2D, pooling

namespace {
// Keras's rule for every convolution: strides and dilation_rate positive, not both above 1.
void check_strides_dilation(std::int64_t strides, std::int64_t dilation_rate, const std::string& layer) {
  check_positive(strides, "strides", layer);
  check_positive(dilation_rate, "dilation_rate", layer);
  if (strides > 1 && dilation_rate > 1) {
    throw ValueError(fmt::format("{}: strides > 1 is not supported with dilation_rate > 1, got strides={} and "
                                 "dilation_rate={}",
                                 layer, strides, dilation_rate));
  }
}

// ValueError unless x is [batch, height, width, channels]; ShapeError unless it has `channels`.
void check_image(const Shape& shape, std::int64_t channels, const std::string& layer) {
  if (shape.size() != 4) {
    throw ValueError(fmt::format("{}: expected inputs [batch, height, width, {}], got {}", layer,
                                 channels < 0 ? std::string("channels") : std::to_string(channels), shape_str(shape)));
  }
  if (detail::differ(shape[3], channels)) {
    throw ShapeError(
        fmt::format("{}: expected inputs [batch, height, width, {}], got {}", layer, channels, shape_str(shape)));
  }
}
}  // namespace

void detail::check_conv(const std::string& layer, std::int64_t filters, std::int64_t kernel_size, std::int64_t strides,
                        std::int64_t dilation_rate) {
  check_positive(filters, "filters", layer);
  check_positive(kernel_size, "kernel_size", layer);
  check_strides_dilation(strides, dilation_rate, layer);
}

void Conv2D::build(const Shape& input_shape) {
  detail::expect_rank(input_shape, 4, "[batch, height, width, channels]", *this);
  kernel_ = add_weight("kernel", {kernel_size_, kernel_size_, input_shape[3], filters_}, options_.kernel_initializer,
                       true, options_.kernel_regularizer);
  if (options_.use_bias) bias_ = add_weight("bias", {filters_}, options_.bias_initializer, true, options_.bias_regularizer);
}

Tensor Conv2D::call(const Tensor& x, bool) {
  if (x.rank() != 4 || x.dim(3) != kernel_.dim(2)) {
    throw ShapeError(fmt::format("{}: expected inputs [batch, height, width, {}], got {}", name(), kernel_.dim(2),
                                 shape_str(x.shape())));
  }
  Tensor y = conv2d(x, kernel_, options_.strides, options_.padding, options_.dilation_rate);
  if (options_.use_bias) y = y + bias_;
  return activate(y, activation_);
}

namespace {
// Keras's output length of a transposed convolution along one axis (-1: no output_padding).
std::int64_t transposed_length(std::int64_t in, std::int64_t k, std::int64_t stride, Padding padding,
                               std::int64_t output_padding, std::int64_t dilation) {
  const std::int64_t span = (k - 1) * dilation + 1;
  if (output_padding < 0) {
    return padding == Padding::Valid ? in * stride + std::max<std::int64_t>(span - stride, 0) : in * stride;
  }
  return (in - 1) * stride + (padding == Padding::Valid ? span : span % 2) + output_padding;
}
}  // namespace

Conv2DTranspose::Conv2DTranspose(std::int64_t filters, std::int64_t kernel_size, Activation activation,
                                 Conv2DTransposeOptions options)
    : Conv("Conv2DTranspose", filters, kernel_size, activation, static_cast<const Conv2DOptions&>(options)),
      output_padding_(options.output_padding) {
  if (output_padding_ < -1 || output_padding_ >= options_.strides) {
    throw ValueError(fmt::format("Conv2DTranspose: output_padding must be in [0, strides) (or -1: None), got "
                                 "output_padding={} and strides={}",
                                 output_padding_, options_.strides));
  }
}

void Conv2DTranspose::build(const Shape& input_shape) {
  check_image(input_shape, -1, name());
  kernel_ = add_weight("kernel", {kernel_size_, kernel_size_, filters_, input_shape[3]}, options_.kernel_initializer,
                       true, options_.kernel_regularizer);
  if (options_.use_bias) bias_ = add_weight("bias", {filters_}, options_.bias_initializer, true, options_.bias_regularizer);
}

Tensor Conv2DTranspose::call(const Tensor& x, bool) {
  check_image(x.shape(), kernel_.dim(3), name());
  const auto length = [&](std::int64_t in) {
    return transposed_length(in, kernel_size_, options_.strides, options_.padding, output_padding_,
                             options_.dilation_rate);
  };
  Tensor y = conv2d_transpose(x, kernel_, length(x.dim(1)), length(x.dim(2)), options_.strides, options_.padding,
                              options_.dilation_rate);
  if (options_.use_bias) y = y + bias_;
  return activate(y, activation_);
}

namespace {
void check_depthwise(const DepthwiseConv2DOptions& o, std::int64_t kernel_size, const std::string& layer) {
  check_positive(kernel_size, "kernel_size", layer);
  check_positive(o.depth_multiplier, "depth_multiplier", layer);
  check_strides_dilation(o.strides, o.dilation_rate, layer);
}
}  // namespace

DepthwiseConv2D::DepthwiseConv2D(std::int64_t kernel_size, Activation activation, DepthwiseConv2DOptions options)
    : Layer("DepthwiseConv2D", options.name),
      kernel_size_(kernel_size),
      activation_(activation),
      options_(std::move(options)) {
  check_depthwise(options_, kernel_size, "DepthwiseConv2D");
  set_activity_regularizer(options_.activity_regularizer);
}

void DepthwiseConv2D::build(const Shape& input_shape) {
  check_image(input_shape, -1, name());
  const std::int64_t c = input_shape[3], mult = options_.depth_multiplier;
  kernel_ = add_weight("kernel", {kernel_size_, kernel_size_, c, mult}, options_.depthwise_initializer, true,
                       options_.depthwise_regularizer);
  if (options_.use_bias) bias_ = add_weight("bias", {c * mult}, options_.bias_initializer, true, options_.bias_regularizer);
}

Tensor DepthwiseConv2D::call(const Tensor& x, bool) {
  check_image(x.shape(), kernel_.dim(2), name());
  Tensor y = depthwise_conv2d(x, kernel_, options_.strides, options_.padding, options_.dilation_rate);
  if (options_.use_bias) y = y + bias_;
  return activate(y, activation_);
}

SeparableConv2D::SeparableConv2D(std::int64_t filters, std::int64_t kernel_size, Activation activation,
                                 SeparableConv2DOptions options)
    : Layer("SeparableConv2D", options.name),
      filters_(filters),
      kernel_size_(kernel_size),
      activation_(activation),
      options_(std::move(options)) {
  check_positive(filters, "filters", "SeparableConv2D");
  check_depthwise(options_, kernel_size, "SeparableConv2D");
  set_activity_regularizer(options_.activity_regularizer);
}

void SeparableConv2D::build(const Shape& input_shape) {
  check_image(input_shape, -1, name());
  const std::int64_t c = input_shape[3], mult = options_.depth_multiplier;
  depthwise_kernel_ =
      add_weight("depthwise_kernel", {kernel_size_, kernel_size_, c, mult}, options_.depthwise_initializer, true,
                 options_.depthwise_regularizer);
  pointwise_kernel_ = add_weight("pointwise_kernel", {1, 1, c * mult, filters_}, options_.pointwise_initializer, true,
                                 options_.pointwise_regularizer);
  if (options_.use_bias) bias_ = add_weight("bias", {filters_}, options_.bias_initializer, true, options_.bias_regularizer);
}

Tensor SeparableConv2D::call(const Tensor& x, bool) {
  check_image(x.shape(), depthwise_kernel_.dim(2), name());
  const Tensor d = depthwise_conv2d(x, depthwise_kernel_, options_.strides, options_.padding, options_.dilation_rate);
  Tensor y = conv2d(d, pointwise_kernel_);
  if (options_.use_bias) y = y + bias_;
  return activate(y, activation_);
}

// ================================================================ UpSampling2D, ZeroPadding2D, Cropping2D

UpSampling2D::UpSampling2D(std::int64_t size_h, std::int64_t size_w, std::string name)
    : Layer("UpSampling2D", std::move(name)), size_h_(size_h), size_w_(size_w) {
  check_positive(size_h, "size", "UpSampling2D");
  check_positive(size_w, "size", "UpSampling2D");
}

Tensor UpSampling2D::call(const Tensor& x, bool) {
  check_image(x.shape(), -1, name());
  const std::int64_t b = x.dim(0), h = x.dim(1), w = x.dim(2), c = x.dim(3);
  // [b, h, 1, w, 1, c] broadcast to [b, h, size_h, w, size_w, c]: each pixel repeated
  return x.reshape({b, h, 1, w, 1, c})
      .broadcast_to({b, h, size_h_, w, size_w_, c})
      .reshape({b, h * size_h_, w * size_w_, c});
}

namespace {
void check_edges(const Padding2D& p, const char* what, const char* layer) {
  if (p.top < 0 || p.bottom < 0 || p.left < 0 || p.right < 0) {
    throw ValueError(fmt::format("{}: {} must not be negative, got (({}, {}), ({}, {}))", layer, what, p.top, p.bottom,
                                 p.left, p.right));
  }
}
}  // namespace

ZeroPadding2D::ZeroPadding2D(Padding2D padding, std::string name)
    : Layer("ZeroPadding2D", std::move(name)), padding_(padding) {
  check_edges(padding_, "padding", "ZeroPadding2D");
}

Tensor ZeroPadding2D::call(const Tensor& x_in, bool) {
  check_image(x_in.shape(), -1, name());
  const Padding2D& p = padding_;
  Tensor x = x_in;
  const auto pad = [&](std::int64_t before, std::int64_t after, std::int64_t axis) {
    if (before == 0 && after == 0) return;
    Shape edge = x.shape();
    std::vector<Tensor> parts;
    edge[static_cast<std::size_t>(axis)] = before;
    if (before > 0) parts.push_back(zeros(edge, x.dtype(), x.device()));
    parts.push_back(x);
    edge[static_cast<std::size_t>(axis)] = after;
    if (after > 0) parts.push_back(zeros(edge, x.dtype(), x.device()));
    x = concat(parts, axis);
  };
  pad(p.top, p.bottom, 1);
  pad(p.left, p.right, 2);
  return x;
}

Cropping2D::Cropping2D(Padding2D cropping, std::string name)
    : Layer("Cropping2D", std::move(name)), cropping_(cropping) {
  check_edges(cropping_, "cropping", "Cropping2D");
}

namespace {
// `in` less the crops `before` and `after`, or -1 when nothing is left (or `in` is unknown).
std::int64_t cropped(std::int64_t in, std::int64_t before, std::int64_t after) {
  // before + after >= in, without overflow (both are non-negative)
  return in < 0 || after >= in || before >= in - after ? -1 : in - before - after;
}
}  // namespace

Shape Cropping2D::compute_output_shape(const Shape& s) const {
  check_image(s, -1, detail::label(*this));
  const Padding2D& c = cropping_;
  const std::int64_t h = cropped(s[1], c.top, c.bottom), w = cropped(s[2], c.left, c.right);
  if ((s[1] >= 0 && h < 0) || (s[2] >= 0 && w < 0)) {
    throw ValueError(fmt::format("{}: cropping (({}, {}), ({}, {})) leaves nothing of the input {}", detail::label(*this),
                                 c.top, c.bottom, c.left, c.right, shape_str(s)));
  }
  return {s[0], h, w, s[3]};
}

Tensor Cropping2D::call(const Tensor& x, bool) {
  const Shape out = compute_output_shape(x.shape());  // its checks
  const Padding2D& c = cropping_;
  return x(all, Slice(c.top, c.top + out[1]), Slice(c.left, c.left + out[2]), all);
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
  set_supports_masking(true);
}

void BatchNormalization::build(const Shape& input_shape) {
  const Shape c{input_shape.back()};
  if (options_.scale) gamma_ = add_weight("gamma", c, initializers::ones);
  if (options_.center) beta_ = add_weight("beta", c, initializers::zeros);
  moving_mean_ = add_weight("moving_mean", c, initializers::zeros, false);
  moving_variance_ = add_weight("moving_variance", c, initializers::ones, false);
}

Tensor BatchNormalization::call(const Tensor& x, bool training) { return call_masked(x, Tensor(), training); }

Tensor BatchNormalization::call_masked(const Tensor& x, const Tensor& mask, bool training) {
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
    } else if (mask.defined()) {
      // Keras 3's masked moments: the statistics of the real steps only
      if (mask.rank() != x.rank() - 1) {
        throw ShapeError(fmt::format("{}: the mask must have one axis less than the inputs {}, got {}", name(),
                                     shape_str(x.shape()), shape_str(mask.shape())));
      }
      const Tensor w = (mask.dtype() == kBool ? mask : mask != 0.0).to(x.device()).astype(x.dtype()).expand_dims(-1);
      const Tensor weighted = w * x;
      const Tensor total = sum(w, axes, true) + 1e-7;  // Keras's sum_of_weights + epsilon
      const Tensor m = sum(weighted, axes, true) / total;
      mu = m.reshape({x.dim(-1)});
      sigma2 = (sum(w * square(weighted - m), axes, true) / total).reshape({x.dim(-1)});
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

// ================================================================ LayerNormalization

LayerNormalization::LayerNormalization(LayerNormalizationOptions options)
    : Layer("LayerNormalization", options.name), options_(std::move(options)) {
  if (options_.axis.empty()) throw ValueError("LayerNormalization: axis must name at least one axis");
  if (!(options_.epsilon > 0)) {
    throw ValueError(fmt::format("LayerNormalization: epsilon must be positive, got {}", options_.epsilon));
  }
  set_supports_masking(true);
}

namespace {
// The axes `axis` of a normalization layer for inputs of `input_shape`: non-negative, sorted, the
// batch axis among them only where `batch_allowed` (LayerNormalization's refuse it,
// UnitNormalization's allow it, as Keras); ValueError naming the layer otherwise.
std::vector<std::int64_t> normalized_axes(const std::vector<std::int64_t>& axis, const Shape& input_shape,
                                          const Layer& layer, bool batch_allowed = false) {
  const auto rank = static_cast<std::int64_t>(input_shape.size());
  std::vector<std::int64_t> axes;
  for (std::int64_t a : axis) {
    const std::int64_t n = a < 0 ? a + rank : a;
    if (n < (batch_allowed ? 0 : 1) || n >= rank) {
      throw ValueError(fmt::format("{}: axis {} is out of range for inputs {}{}", detail::label(layer), a,
                                   shape_str(input_shape), batch_allowed ? "" : " (the batch axis 0 may not be one)"));
    }
    if (std::find(axes.begin(), axes.end(), n) != axes.end()) {
      throw ValueError(fmt::format("{}: axis {} is given twice", detail::label(layer), a));
    }
    axes.push_back(n);
  }
  std::sort(axes.begin(), axes.end());
  return axes;
}
}  // namespace

void LayerNormalization::build(const Shape& input_shape) {
  axes_ = normalized_axes(options_.axis, input_shape, *this);
  Shape params;
  param_shape_.assign(input_shape.size(), 1);
  for (std::int64_t a : axes_) {
    params.push_back(input_shape[static_cast<std::size_t>(a)]);
    param_shape_[static_cast<std::size_t>(a)] = input_shape[static_cast<std::size_t>(a)];
  }
  if (options_.scale) gamma_ = add_weight("gamma", params, initializers::ones);
  if (options_.center) beta_ = add_weight("beta", params, initializers::zeros);
}

Tensor LayerNormalization::call(const Tensor& x, bool) {
  compute_output_shape(x.shape());  // the built layer's checks
  const Tensor mu = mean(x, axes_, true);
  const Tensor sigma2 = var(x, axes_, true);  // biased, as Keras
  Tensor y = (x - mu) / sqrt(sigma2 + options_.epsilon);
  if (options_.scale) y = y * gamma_.reshape(param_shape_);
  if (options_.center) y = y + beta_.reshape(param_shape_);
  return y;
}

// ================================================================ GroupNormalization

GroupNormalization::GroupNormalization(GroupNormalizationOptions options)
    : Layer("GroupNormalization", options.name), options_(std::move(options)), groups_(options_.groups) {
  if (options_.groups == 0 || options_.groups < -1) {
    throw ValueError(fmt::format(
        "GroupNormalization: groups must be positive, or -1 for instance normalization, got {}", options_.groups));
  }
  if (!(options_.epsilon > 0)) {
    throw ValueError(fmt::format("GroupNormalization: epsilon must be positive, got {}", options_.epsilon));
  }
  set_supports_masking(true);
}

namespace {
struct Grouping {
  std::int64_t axis;    // the channels axis, non-negative
  std::int64_t groups;  // -1 resolved, unless the channels are unknown
};

// GroupNormalization's channels axis and groups for inputs of `input_shape` (Keras's build
// checks), ValueError naming the layer and the shape otherwise; unknown channels pass.
Grouping grouping(const GroupNormalizationOptions& o, const Shape& input_shape, const Layer& layer) {
  const auto rank = static_cast<std::int64_t>(input_shape.size());
  const std::int64_t axis = o.axis < 0 ? o.axis + rank : o.axis;
  if (axis < 1 || axis >= rank) {
    throw ValueError(fmt::format("{}: axis {} is out of range for inputs {} (the batch axis 0 may not be it)",
                                 detail::label(layer), o.axis, shape_str(input_shape)));
  }
  const std::int64_t channels = input_shape[static_cast<std::size_t>(axis)];
  if (channels < 0) return {axis, o.groups};
  if (channels == 0) {
    throw ValueError(fmt::format("{}: axis {} of inputs {} has no channels to group", detail::label(layer), o.axis,
                                 shape_str(input_shape)));
  }
  const std::int64_t groups = o.groups == -1 ? channels : o.groups;
  if (groups > channels) {
    throw ValueError(fmt::format("{}: {} groups are more than the {} channels (axis {}) of inputs {}",
                                 detail::label(layer), groups, channels, o.axis, shape_str(input_shape)));
  }
  if (channels % groups != 0) {
    throw ValueError(fmt::format("{}: the {} channels (axis {}) of inputs {} do not split into {} groups of equal size",
                                 detail::label(layer), channels, o.axis, shape_str(input_shape), groups));
  }
  return {axis, groups};
}
}  // namespace

void GroupNormalization::build(const Shape& input_shape) {
  const Grouping g = grouping(options_, input_shape, *this);
  axis_ = g.axis;
  groups_ = g.groups;
  const std::int64_t channels = input_shape[static_cast<std::size_t>(axis_)];
  param_shape_.assign(input_shape.size(), 1);
  param_shape_[static_cast<std::size_t>(axis_)] = channels;
  if (options_.scale) gamma_ = add_weight("gamma", {channels}, initializers::ones);
  if (options_.center) beta_ = add_weight("beta", {channels}, initializers::zeros);
}

Tensor GroupNormalization::call(const Tensor& x_in, bool) {
  compute_output_shape(x_in.shape());  // the built layer's checks
  const Tensor x = is_floating(x_in.dtype()) ? x_in : x_in.astype(kFloat32);
  // x [b, ..., c, ...] -> [b, ..., groups, c / groups, ...]: each group's statistics over its
  // channels and every non-batch axis but the groups'
  Shape grouped = x.shape();
  const auto a = static_cast<std::size_t>(axis_);
  grouped[a] = groups_;
  grouped.insert(grouped.begin() + static_cast<std::ptrdiff_t>(a) + 1, x.dim(axis_) / groups_);
  std::vector<std::int64_t> axes;
  for (std::int64_t i = 1; i < static_cast<std::int64_t>(grouped.size()); ++i) {
    if (i != axis_) axes.push_back(i);
  }
  const Tensor xg = x.reshape(grouped);
  const Tensor sigma2 = var(xg, axes, true);  // biased, as Keras
  Tensor y = ((xg - mean(xg, axes, true)) / sqrt(sigma2 + options_.epsilon)).reshape(x.shape());
  if (options_.scale) y = y * gamma_.reshape(param_shape_);
  if (options_.center) y = y + beta_.reshape(param_shape_);
  return y;
}

// ================================================================ UnitNormalization

UnitNormalization::UnitNormalization(std::vector<std::int64_t> axis, std::string name)
    : Layer("UnitNormalization", std::move(name)), axis_(std::move(axis)) {
  if (axis_.empty()) throw ValueError("UnitNormalization: axis must name at least one axis");
  set_supports_masking(true);
}

Tensor UnitNormalization::call(const Tensor& x_in, bool) {
  const std::vector<std::int64_t> axes = normalized_axes(axis_, x_in.shape(), *this, true);
  const Tensor x = is_floating(x_in.dtype()) ? x_in : x_in.astype(kFloat32);
  // Keras's x * min(rsqrt(sum(x^2)), 1 / 1e-12), with the floor under the sum (1e-12^2) so that
  // an all-zero vector's gradient is finite (1e12 times the output gradient, TensorFlow's)
  return x / sqrt(maximum(sum(square(x), axes, true), 1e-24));
}

// ================================================================ Embedding

Embedding::Embedding(std::int64_t input_dim, std::int64_t output_dim, EmbeddingOptions options)
    : Layer("Embedding", options.name), input_dim_(input_dim), output_dim_(output_dim), options_(std::move(options)) {
  check_positive(input_dim, "input_dim", "Embedding");
  check_positive(output_dim, "output_dim", "Embedding");
  set_activity_regularizer(options_.activity_regularizer);
  set_supports_masking(true);
}

Tensor Embedding::compute_mask(const Tensor& x, const Tensor&) const {
  return options_.mask_zero ? (x.dtype() == kBool ? x : x != 0) : Tensor();
}

void Embedding::build(const Shape&) {
  embeddings_ = add_weight("embeddings", {input_dim_, output_dim_}, options_.embeddings_initializer, true,
                           options_.embeddings_regularizer);
}

Tensor Embedding::call(const Tensor& x_in, bool) {
  if (x_in.dtype() == kBool) {
    throw DTypeError(fmt::format("{}: expected integer indices, got bool {}", name(), shape_str(x_in.shape())));
  }
  // float indices are cast (truncated), as Keras's Embedding casts to int32: Model::build's
  // float zeros, or token ids held in a float tensor
  const Tensor x = is_floating(x_in.dtype()) ? x_in.astype(kInt64) : x_in;
  Shape out = x.shape();
  out.push_back(output_dim_);
  if (!x.device().is_cpu()) {
    // checked on the device without waiting for it; an index out of range raises at the
    // thread's next read of a value (the lookup goes on with it clipped)
    check_later<IndexError>(reduce_all(logical_and(x >= 0, x < input_dim_)),
                            fmt::format("{}: indices must be in [0, {}): some of {} on {} are not (checked there: "
                                        "raised at the first read of a value after the lookup)",
                                        name(), input_dim_, shape_str(x.shape()), x.device().str()));
    return take(embeddings_, x.reshape({x.size()}), 0, IndexMode::Clip).reshape(out);
  }
  try {
    return take(embeddings_, x.reshape({x.size()}), 0).reshape(out);
  } catch (const IndexError& e) {
    throw IndexError(fmt::format("{}: indices must be in [0, {}): {}", name(), input_dim_, e.what()));
  }
}

// ================================================================ Masking

Masking::Masking(double mask_value, std::string name) : Layer("Masking", std::move(name)), mask_value_(mask_value) {
  set_supports_masking(true);
}

Tensor Masking::call(const Tensor& x, bool) {
  if (x.rank() < 2) {
    throw ShapeError(fmt::format("{}: expected inputs [batch, ..., features], got {}", name(), shape_str(x.shape())));
  }
  return where(compute_mask(x, Tensor()).expand_dims(-1), x, 0.0);
}

Tensor Masking::compute_mask(const Tensor& x, const Tensor&) const {
  return sum((x != mask_value_).astype(kInt32), {-1}) > 0;  // any step feature differs
}

// ================================================================ global pooling, reshaping

GlobalPooling2D::GlobalPooling2D(std::string class_name, bool max, bool keepdims, std::string name)
    : Layer(std::move(class_name), std::move(name)), max_(max), keepdims_(keepdims) {}

Tensor GlobalPooling2D::call(const Tensor& x, bool) {
  if (x.rank() != 4) {
    throw ShapeError(
        fmt::format("{}: expected inputs [batch, height, width, channels], got {}", name(), shape_str(x.shape())));
  }
  return max_ ? max(x, {1, 2}, keepdims_) : mean(x, {1, 2}, keepdims_);
}

Reshape::Reshape(Shape target_shape, std::string name)
    : Layer("Reshape", std::move(name)), target_shape_(std::move(target_shape)) {
  int unknown = 0;
  std::int64_t known = 1;
  for (std::int64_t d : target_shape_) {
    if (d == -1) {
      ++unknown;
    } else if (d < 0) {
      throw ValueError(fmt::format("Reshape: target_shape {} has a negative size", shape_str(target_shape_)));
    } else if (__builtin_mul_overflow(known, d, &known)) {
      throw ValueError(fmt::format("Reshape: the product of target_shape {} overflows int64", shape_str(target_shape_)));
    }
  }
  if (unknown > 1) {
    throw ValueError(fmt::format("Reshape: target_shape {} may infer one size (-1), not {}", shape_str(target_shape_),
                                 unknown));
  }
}

Tensor Reshape::call(const Tensor& x, bool) {
  return x.contiguous().reshape(compute_output_shape(x.shape()));  // a scalar or a wrong size: its ShapeError
}

Rescaling::Rescaling(double scale, double offset, std::string name)
    : Layer("Rescaling", std::move(name)), scale_(scale), offset_(offset) {
  set_supports_masking(true);
}

Tensor Rescaling::call(const Tensor& x, bool) {
  if (x.dtype() == kBool) {
    throw DTypeError(fmt::format("{}: bool inputs are not supported (shape {})", name(), shape_str(x.shape())));
  }
  const Tensor f = is_floating(x.dtype()) ? x : x.astype(kFloat32);
  return f * scale_ + offset_;
}

// ================================================================ activation layers

LeakyReLU::LeakyReLU(double negative_slope, std::string name)
    : Layer("LeakyReLU", std::move(name)), negative_slope_(negative_slope) {
  if (!(negative_slope >= 0)) {
    throw ValueError(fmt::format("LeakyReLU: negative_slope must be >= 0, got {}", negative_slope));
  }
  set_supports_masking(true);
}

Tensor LeakyReLU::call(const Tensor& x, bool) { return leaky_relu(x, negative_slope_); }

ELU::ELU(double alpha, std::string name) : Layer("ELU", std::move(name)), alpha_(alpha) { set_supports_masking(true); }

Tensor ELU::call(const Tensor& x, bool) { return elu(x, alpha_); }

Softmax::Softmax(std::int64_t axis, std::string name) : Layer("Softmax", std::move(name)), axis_(axis) {
  set_supports_masking(true);
}

Tensor Softmax::call(const Tensor& x, bool) { return softmax(x, axis_); }

Tensor Softmax::call_masked(const Tensor& x, const Tensor& mask, bool) {
  // Keras 3: the mask broadcasts against the inputs (NumPy's rule); masked positions go in as
  // -1e9 (-3e4 in float16) and come out as 0, so a fully masked row is zeros
  bool fits = mask.rank() <= x.rank();
  for (std::int64_t i = 1; fits && i <= mask.rank(); ++i) fits = mask.dim(-i) == 1 || mask.dim(-i) == x.dim(-i);
  if (!fits) {
    throw ValueError(fmt::format("{}: the mask {} must broadcast to the inputs {} (each axis 1 or the same, from "
                                 "the last)",
                                 name(), shape_str(mask.shape()), shape_str(x.shape())));
  }
  const Tensor keep = (mask.dtype() == kBool ? mask : mask > 0.5).to(x.device());
  return where(keep, softmax(where(keep, x, -1e9), axis_), 0.0);
}

PReLU::PReLU(Initializer alpha_initializer, std::vector<std::int64_t> shared_axes, std::string name)
    : Layer("PReLU", std::move(name)),
      alpha_initializer_(std::move(alpha_initializer)),
      shared_axes_(std::move(shared_axes)) {
  set_supports_masking(true);
}

// alpha's shape for inputs of `input_shape`: theirs without the batch axis, 1 along the shared axes
Shape PReLU::alpha_shape(const Shape& input_shape) const {
  Shape s(input_shape.begin() + 1, input_shape.end());
  for (std::int64_t a : shared_axes_) {
    if (a < 1 || a >= static_cast<std::int64_t>(input_shape.size())) {
      throw ValueError(fmt::format("{}: shared axis {} is out of range for inputs {} (1-based past the batch axis)",
                                   detail::label(*this), a, shape_str(input_shape)));
    }
    s[static_cast<std::size_t>(a - 1)] = 1;
  }
  return s;
}

void PReLU::build(const Shape& input_shape) { alpha_ = add_weight("alpha", alpha_shape(input_shape), alpha_initializer_); }

Tensor PReLU::call(const Tensor& x, bool) {
  compute_output_shape(x.shape());  // the built layer's checks
  const Tensor f = is_floating(x.dtype()) ? x : x.astype(kFloat32);
  return where(f > 0.0, f, f * alpha_);
}

// ================================================================ 1-D convolution and pooling

void Conv1D::build(const Shape& input_shape) {
  detail::expect_rank(input_shape, 3, "[batch, steps, channels]", *this);
  kernel_ = add_weight("kernel", {kernel_size_, input_shape[2], filters_}, options_.kernel_initializer, true,
                       options_.kernel_regularizer);
  if (options_.use_bias) bias_ = add_weight("bias", {filters_}, options_.bias_initializer, true, options_.bias_regularizer);
}

Tensor Conv1D::call(const Tensor& x_in, bool) {
  if (x_in.rank() != 3 || x_in.dim(2) != kernel_.dim(1)) {
    throw ShapeError(fmt::format("{}: expected inputs [batch, steps, {}], got {}", name(), kernel_.dim(1),
                                 shape_str(x_in.shape())));
  }
  Tensor x = x_in;
  Padding padding = options_.padding == Padding1D::Same ? Padding::Same : Padding::Valid;
  if (options_.padding == Padding1D::Causal && kernel_size_ > 1) {
    const std::int64_t span = (kernel_size_ - 1) * options_.dilation_rate;  // the steps before the first output's
    x = concat({zeros({x.dim(0), span, x.dim(2)}, x.dtype(), x.device()), x}, 1);
  }
  // [batch, 1, steps, c] with a [1, k, c, filters] kernel
  Tensor y = conv2d(x.expand_dims(1), kernel_.expand_dims(0), options_.strides, padding, options_.dilation_rate)
                 .squeeze({1});
  if (options_.use_bias) y = y + bias_;
  return activate(y, activation_);
}

Pooling1D::Pooling1D(std::string class_name, bool max, std::int64_t pool_size, PoolingOptions options)
    : Layer(std::move(class_name), options.name), max_(max), pool_size_(pool_size), options_(std::move(options)) {
  check_positive(pool_size, "pool_size", this->class_name());
  check_pool_strides(options_.strides, this->class_name().c_str());
}

Tensor Pooling1D::call(const Tensor& x, bool) {
  if (x.rank() != 3) {
    throw ShapeError(fmt::format("{}: expected inputs [batch, steps, channels], got {}", name(), shape_str(x.shape())));
  }
  const std::int64_t stride = options_.strides == 0 ? pool_size_ : options_.strides;
  const double inf = std::numeric_limits<double>::infinity();
  // windows over a height of 1: [batch, 1, out, pool, c]
  const Tensor w = im2col(x.expand_dims(1), 1, pool_size_, stride, options_.padding, max_ ? -inf : 0.0);
  if (max_) return max(w, {3}).squeeze({1});
  if (options_.padding == Padding::Valid) return mean(w, {3}).squeeze({1});
  // same padding: the mean of the steps inside the sequence only
  const Tensor count = sum(im2col(ones({1, 1, x.dim(1), 1}, w.dtype(), x.device()), 1, pool_size_, stride,
                                  options_.padding, 0.0),
                           {3});
  return (sum(w, {3}) / count).squeeze({1});
}

GlobalPooling1D::GlobalPooling1D(std::string class_name, bool max, bool keepdims, std::string name)
    : Layer(std::move(class_name), std::move(name)), max_(max), keepdims_(keepdims) {
  set_supports_masking(!max);  // Keras: the average uses a mask, the max drops it
}

Tensor GlobalPooling1D::call(const Tensor& x, bool) { return call_masked(x, Tensor(), false); }

Tensor GlobalPooling1D::call_masked(const Tensor& x, const Tensor& mask, bool) {
  if (x.rank() != 3) {
    throw ShapeError(fmt::format("{}: expected inputs [batch, steps, channels], got {}", name(), shape_str(x.shape())));
  }
  if (max_ || !mask.defined()) return max_ ? max(x, {1}, keepdims_) : mean(x, {1}, keepdims_);
  if (mask.shape() != Shape{x.dim(0), x.dim(1)}) {
    throw ShapeError(fmt::format("{}: the mask must be [batch, steps] = [{}, {}] for inputs {}, got {}", name(),
                                 x.dim(0), x.dim(1), shape_str(x.shape()), shape_str(mask.shape())));
  }
  // Keras 3: the mean over the real steps (a row without any is 0 / 0)
  const Tensor keep = (mask.dtype() == kBool ? mask : mask != 0.0).to(x.device()).expand_dims(-1);
  return sum(where(keep, x, 0.0), {1}, keepdims_) / sum(keep.astype(x.dtype()), {1}, keepdims_);
}

Tensor GlobalPooling1D::compute_mask(const Tensor&, const Tensor&) const { return Tensor(); }

// ================================================================ recurrent layers

Recurrent::Recurrent(std::string class_name, std::int64_t units, int gates, Activation activation,
                     RecurrentOptions options)
    : Layer(std::move(class_name), options.name),
      units_(units),
      gates_(gates),
      activation_(activation),
      options_(std::move(options)) {
  check_positive(units, "units", this->class_name());
  set_activity_regularizer(options_.activity_regularizer);
  set_supports_masking(true);
  for (const auto& [rate, what] : {std::pair<double, const char*>{options_.dropout, "dropout"},
                                   std::pair<double, const char*>{options_.recurrent_dropout, "recurrent_dropout"}}) {
    if (!(rate >= 0 && rate < 1)) {
      throw ValueError(fmt::format("{}: {} must be in [0, 1), got {}", this->class_name(), what, rate));
    }
  }
}

Shape Recurrent::bias_shape() const { return {gates_ * units_}; }

Tensor Recurrent::initial_bias(const Shape& shape, Generator& gen) const { return options_.bias_initializer(shape, gen); }

void Recurrent::build(const Shape& input_shape) {
  detail::expect_rank(input_shape, 3, "[batch, time, features]", *this);
  kernel_ = add_weight("kernel", {input_shape[2], gates_ * units_}, options_.kernel_initializer, true,
                       options_.kernel_regularizer);
  recurrent_kernel_ = add_weight("recurrent_kernel", {units_, gates_ * units_}, options_.recurrent_initializer, true,
                                 options_.recurrent_regularizer);
  if (options_.use_bias) {
    bias_ = add_weight(
        "bias", bias_shape(), [this](const Shape& s, Generator& g) { return initial_bias(s, g); }, true,
        options_.bias_regularizer);
  }
}

Tensor Recurrent::gate(const Tensor& t, int k) const { return t(all, Slice(k * units_, (k + 1) * units_)); }

Tensor Recurrent::recurrent_matmul(const Tensor& h, int first, int last, const std::vector<Tensor>& rec_mask) const {
  const auto columns = [&](int a, int b) { return recurrent_kernel_(all, Slice(a * units_, b * units_)); };
  if (rec_mask.empty()) return first == 0 && last == gates_ ? matmul(h, recurrent_kernel_) : matmul(h, columns(first, last));
  // Keras's implementation 1: each gate sees h through its own mask
  std::vector<Tensor> parts;
  for (int k = first; k < last; ++k) {
    parts.push_back(matmul(h * rec_mask[rec_mask.size() == 1 ? 0 : static_cast<std::size_t>(k)], columns(k, k + 1)));
  }
  return parts.size() == 1 ? parts[0] : concat(parts, -1);
}

std::vector<Tensor> Recurrent::dropout_masks(std::int64_t batch, std::int64_t n, double rate, int count, DType dtype,
                                             Device device) {
  std::vector<Tensor> masks;
  // 0 or 1 / (1 - rate), as Keras's dropout of ones
  for (int k = 0; k < count; ++k) masks.push_back(tapeflow::dropout(ones({batch, n}, dtype, device), rate, generator()));
  return masks;
}

RecurrentResult Recurrent::call_with_state(const Tensor& x, const std::vector<Tensor>& initial_state, bool training,
                                           const Tensor& mask) {
  RecurrentResult r;
  // an undefined or scalar x: operator()'s errors
  if (!x.defined() || x.rank() == 0) return {(*this)(x, training), {}};
  // operator()'s path (build, names, errors named after the layer) around run()
  r.output = invoke(x.shape(), x.device(), [&] { return run(x, training, initial_state, mask, r.states); });
  return r;
}

Tensor Recurrent::call(const Tensor& x, bool training) { return call_masked(x, Tensor(), training); }

Tensor Recurrent::call_masked(const Tensor& x, const Tensor& mask, bool training) {
  std::vector<Tensor> final_state;
  return run(x, training, {}, mask, final_state);
}

Tensor Recurrent::compute_mask(const Tensor&, const Tensor& mask) const {
  return options_.return_sequences ? mask : Tensor();
}

Tensor Recurrent::run(const Tensor& x, bool training, const std::vector<Tensor>& initial_state, const Tensor& mask,
                      std::vector<Tensor>& final_state) {
  if (x.rank() != 3 || x.dim(2) != kernel_.dim(0)) {
    throw ShapeError(fmt::format("{}: expected inputs [batch, time, {}], got {}", name(), kernel_.dim(0),
                                 shape_str(x.shape())));
  }
  const std::int64_t batch = x.dim(0), steps = x.dim(1);
  const auto n_states = static_cast<std::size_t>(num_states());
  const char* state_names = n_states == 1 ? "h" : "h, c";
  if (!initial_state.empty() && initial_state.size() != n_states) {
    throw ValueError(fmt::format("{}: expected {} initial state{} ({}), got {}", name(), n_states,
                                 n_states == 1 ? "" : "s", state_names, initial_state.size()));
  }
  for (std::size_t i = 0; i < initial_state.size(); ++i) {
    const Tensor& s = initial_state[i];
    const char* what = i == 0 ? "h" : "c";
    if (!s.defined()) throw ValueError(fmt::format("{}: initial state {} ({}) is undefined", name(), i, what));
    if (s.shape() != Shape{batch, units_}) {
      throw ShapeError(fmt::format("{}: initial state {} ({}) must be [batch, units] = [{}, {}] for inputs {}, got {}",
                                   name(), i, what, batch, units_, shape_str(x.shape()), shape_str(s.shape())));
    }
    if (s.device() != x.device()) {
      throw DeviceError(fmt::format("{}: initial state {} ({}) is on {}, the inputs on {}", name(), i, what,
                                    s.device().str(), x.device().str()));
    }
  }
  Tensor keep;  // [batch, time] bool: true at a real step
  if (mask.defined()) {
    if (mask.shape() != Shape{batch, steps}) {
      throw ShapeError(fmt::format("{}: the mask must be [batch, time] = [{}, {}] for inputs {}, got {}", name(), batch,
                                   steps, shape_str(x.shape()), shape_str(mask.shape())));
    }
    if (mask.device() != x.device()) {
      throw DeviceError(fmt::format("{}: the mask is on {}, the inputs on {}", name(), mask.device().str(),
                                    x.device().str()));
    }
    keep = mask.dtype() == kBool ? mask : mask != 0.0;
  }

  if (options_.stateful && initial_state.empty() && !states_.empty() &&
      (states_[0].dim(0) != batch || states_[0].device() != x.device())) {
    throw ValueError(fmt::format("{}: stateful: the states kept are [{}, {}] on {}, the inputs {} on {}: feed batches "
                                 "of the same size on one device, or call reset_states() first",
                                 name(), states_[0].dim(0), units_, states_[0].device().str(), shape_str(x.shape()),
                                 x.device().str()));
  }
  const DType dtype = result_dtype(x, kernel_);
  // dropout: one mask per call (not per step); Keras's LSTM and GRU switch to one per gate
  // (implementation 1) when recurrent_dropout is set
  std::vector<Tensor> in_mask, rec_mask;
  if (training && options_.dropout > 0) {
    const int count = options_.recurrent_dropout > 0 ? gates_ : 1;
    in_mask = dropout_masks(batch, x.dim(2), options_.dropout, count, dtype, x.device());
  }
  if (training && options_.recurrent_dropout > 0) {
    rec_mask = dropout_masks(batch, units_, options_.recurrent_dropout, gates_, dtype, x.device());
  }

  // every step's x_t @ kernel in one matmul (one per gate with per-gate input masks):
  // [batch, time, gates * units]; Keras 3 too drops the inputs before the kernel
  Tensor xw;
  if (in_mask.size() <= 1) {
    xw = matmul(in_mask.empty() ? x : x * in_mask[0].expand_dims(1), kernel_);
  } else {
    std::vector<Tensor> parts;
    for (int k = 0; k < gates_; ++k) {
      parts.push_back(matmul(x * in_mask[static_cast<std::size_t>(k)].expand_dims(1), gate(kernel_, k)));
    }
    xw = concat(parts, -1);
  }
  if (options_.use_bias) xw = xw + (bias_.rank() == 2 ? bias_(0) : Tensor(bias_));

  // the initial states given, else a stateful layer's kept ones, else zeros; in xw's dtype
  std::vector<Tensor> state;
  const bool kept = initial_state.empty() && options_.stateful;
  for (const auto& s : kept ? states_ : initial_state) state.push_back(s.astype(xw.dtype()));
  if (state.empty()) state.assign(n_states, zeros({batch, units_}, xw.dtype(), xw.device()));
  std::vector<Tensor> outputs;
  // with a mask, Keras's output before the first real step is zeros (not the initial h)
  Tensor last = keep.defined() ? zeros({batch, units_}, xw.dtype(), xw.device()) : state[0];
  for (std::int64_t s = 0; s < steps; ++s) {
    const std::int64_t t = options_.go_backwards ? steps - 1 - s : s;
    const std::vector<Tensor> before = keep.defined() ? state : std::vector<Tensor>{};
    Tensor out = step(xw(all, t), state, rec_mask);
    if (keep.defined()) {
      // a masked step keeps the states and repeats the previous output (or outputs zeros)
      const Tensor k = keep(all, Slice(t, t + 1));  // [batch, 1]
      for (std::size_t i = 0; i < n_states; ++i) state[i] = where(k, state[i], before[i]);
      out = options_.zero_output_for_mask ? where(k, out, 0.0) : where(k, out, last);
    }
    last = out;
    if (options_.return_sequences) outputs.push_back(last);
  }
  if (options_.stateful) {
    states_.clear();
    for (const auto& st : state) states_.push_back(stop_gradient(st));
  }
  final_state = state;
  if (!options_.return_sequences) return last;
  if (outputs.empty()) return zeros({batch, 0, units_}, xw.dtype(), xw.device());
  return stack(outputs, 1);
}

SimpleRNN::SimpleRNN(std::int64_t units, Activation activation, RecurrentOptions options)
    : Recurrent("SimpleRNN", units, 1, activation, std::move(options)) {}

Tensor SimpleRNN::step(const Tensor& xw, std::vector<Tensor>& state, const std::vector<Tensor>& rec_mask) const {
  state[0] = activate(xw + recurrent_matmul(state[0], 0, 1, rec_mask), activation_);
  return state[0];
}

LSTM::LSTM(std::int64_t units, Activation activation, RecurrentOptions options)
    : Recurrent("LSTM", units, 4, activation, std::move(options)) {}

Tensor LSTM::initial_bias(const Shape& shape, Generator& gen) const {
  if (!options_.unit_forget_bias) return Recurrent::initial_bias(shape, gen);
  // Keras: bias_initializer for i, ones for f, bias_initializer for c and o
  return concat({options_.bias_initializer({units_}, gen), tapeflow::ones({units_}),
                 options_.bias_initializer({2 * units_}, gen)},
                0);
}

Tensor LSTM::step(const Tensor& xw, std::vector<Tensor>& state, const std::vector<Tensor>& rec_mask) const {
  const Tensor z = xw + recurrent_matmul(state[0], 0, 4, rec_mask);
  const Tensor i = activate(gate(z, 0), options_.recurrent_activation);
  const Tensor f = activate(gate(z, 1), options_.recurrent_activation);
  const Tensor o = activate(gate(z, 3), options_.recurrent_activation);
  state[1] = f * state[1] + i * activate(gate(z, 2), activation_);
  state[0] = o * activate(state[1], activation_);
  return state[0];
}

GRU::GRU(std::int64_t units, Activation activation, RecurrentOptions options)
    : Recurrent("GRU", units, 3, activation, std::move(options)) {}

Shape GRU::bias_shape() const {
  return options_.reset_after ? Shape{2, 3 * units_} : Shape{3 * units_};
}

Tensor GRU::step(const Tensor& xw, std::vector<Tensor>& state, const std::vector<Tensor>& rec_mask) const {
  const Tensor& h = state[0];
  Tensor hh;
  Tensor z, r;
  if (options_.reset_after) {
    Tensor rec = recurrent_matmul(h, 0, 3, rec_mask);
    if (options_.use_bias) rec = rec + bias_(1);
    z = activate(gate(xw, 0) + gate(rec, 0), options_.recurrent_activation);
    r = activate(gate(xw, 1) + gate(rec, 1), options_.recurrent_activation);
    hh = activate(gate(xw, 2) + r * gate(rec, 2), activation_);
  } else {
    const Tensor rec = recurrent_matmul(h, 0, 2, rec_mask);
    z = activate(gate(xw, 0) + gate(rec, 0), options_.recurrent_activation);
    r = activate(gate(xw, 1) + gate(rec, 1), options_.recurrent_activation);
    // the candidate's recurrent input: h through its dropout mask, then the reset gate
    const Tensor h_h = rec_mask.empty() ? h : h * rec_mask[2];
    hh = activate(gate(xw, 2) + matmul(r * h_h, gate(recurrent_kernel_, 2)), activation_);
  }
  // the state carried on is h itself, not its dropped copy
  state[0] = z * h + (1.0 - z) * hh;
  return state[0];
}

namespace {
RecurrentOptions flipped(RecurrentOptions o) {
  o.go_backwards = !o.go_backwards;
  o.name.clear();
  return o;
}
}  // namespace

std::shared_ptr<Recurrent> SimpleRNN::reversed_copy() const {
  return std::make_shared<SimpleRNN>(units_, activation_, flipped(options_));
}
std::shared_ptr<Recurrent> LSTM::reversed_copy() const {
  return std::make_shared<LSTM>(units_, activation_, flipped(options_));
}
std::shared_ptr<Recurrent> GRU::reversed_copy() const {
  return std::make_shared<GRU>(units_, activation_, flipped(options_));
}

// ================================================================ Bidirectional

Bidirectional::Bidirectional(std::shared_ptr<Recurrent> layer, MergeMode merge_mode, std::string name)
    : Layer("Bidirectional", std::move(name)), merge_mode_(merge_mode), forward_(std::move(layer)) {
  if (!forward_) throw ValueError("Bidirectional: the layer is null");
  if (forward_->built()) {
    throw ValueError(fmt::format("Bidirectional: layer '{}' is already built; wrap a new one", forward_->name()));
  }
  const std::string base = forward_->name().empty() ? forward_->default_name() : forward_->name();
  backward_ = forward_->reversed_copy();
  forward_->set_name("forward_" + base);
  backward_->set_name("backward_" + base);
  if (forward_->seeded()) backward_->set_seed(forward_->generator().seed() + 1);
  // Keras: a masked step of a returned sequence is zeros in both directions
  forward_->options_.zero_output_for_mask = forward_->options_.return_sequences;
  backward_->options_.zero_output_for_mask = backward_->options_.return_sequences;
  track(forward_);
  track(backward_);
  set_supports_masking(true);
}

void Bidirectional::build(const Shape& input_shape) {
  forward_->build_from_shape(input_shape, device());
  backward_->build_from_shape(input_shape, device());
}

Tensor Bidirectional::call_with_mask(const Tensor& x, const Tensor& mask, bool training) {
  return (*this)(x, mask, training);
}

Tensor Bidirectional::call(const Tensor& x, bool training) { return run(x, Tensor(), training); }

Tensor Bidirectional::call_masked(const Tensor& x, const Tensor& mask, bool training) { return run(x, mask, training); }

Tensor Bidirectional::compute_mask(const Tensor&, const Tensor& mask) const {
  return forward_->options().return_sequences ? mask : Tensor();
}

Tensor Bidirectional::run(const Tensor& x, const Tensor& mask, bool training) {
  // the mask stays in time order: the backward layer reads it backwards along with x
  const Tensor f = forward_->call_with_state(x, {}, training, mask).output;
  Tensor b = backward_->call_with_state(x, {}, training, mask).output;
  if (b.rank() == 3) b = b(all, Slice(none, none, -1));  // the backward sequence back in time order
  switch (merge_mode_) {
    case MergeMode::Sum:
      return f + b;
    case MergeMode::Mul:
      return f * b;
    case MergeMode::Ave:
      return (f + b) * 0.5;
    case MergeMode::Concat:
      break;
  }
  return concat({f, b}, -1);
}

// ================================================================ output shapes
// compute_output_shape of the layers above: the shape each call() gives, and the checks it and
// build() make, on shapes whose unknown axes (-1) never fail.

namespace {
// `s` with its last axis replaced by `last`.
Shape with_last(Shape s, std::int64_t last) {
  s.back() = last;
  return s;
}

// in + n, unknown when `in` is.
std::int64_t grown(std::int64_t in, std::int64_t n) { return in < 0 ? -1 : in + n; }

// The spatial lengths of a 2-D window op (conv2d, depthwise_conv2d, the pooling) over images
// `s` [batch, h, w, c]: [batch, h', w', channels].
Shape windowed_image(const Shape& s, std::int64_t span, std::int64_t stride, Padding padding, std::int64_t channels,
                     const Layer& layer, const char* op) {
  return {s[0], detail::window_length(s[1], span, stride, padding, layer, op, s),
          detail::window_length(s[2], span, stride, padding, layer, op, s), channels};
}

std::int64_t dilated(std::int64_t kernel_size, std::int64_t dilation_rate) { return (kernel_size - 1) * dilation_rate + 1; }

// max_pool2d's and avg_pool2d's output for images `s`, with their ShapeError for another rank.
Shape pooled_image(const Shape& s, std::int64_t pool, const PoolingOptions& o, const Layer& layer, const char* op) {
  if (s.size() != 4) {
    throw ShapeError(fmt::format("{}: {}: input must be [batch, height, width, channels], got {}", detail::label(layer),
                                 op, shape_str(s)));
  }
  return windowed_image(s, pool, o.strides == 0 ? pool : o.strides, o.padding, s[3], layer, op);
}
}  // namespace

Shape Dense::compute_output_shape(const Shape& s) const {
  // Keras's input spec (min_ndim=2): a rank-1 input's only axis is the batch, not the features
  if (s.size() < 2) {
    throw ShapeError(fmt::format("{}: expected an input of rank >= 2 ([batch, ..., features]), got {}",
                                 detail::label(*this), shape_str(s)));
  }
  if (built() && detail::differ(s.back(), kernel_.dim(0))) {
    throw ShapeError(fmt::format("{}: expected inputs [batch, ..., {}], got {}", detail::label(*this), kernel_.dim(0),
                                 shape_str(s)));
  }
  return with_last(s, units_);
}

Shape Flatten::compute_output_shape(const Shape& s) const {
  detail::expect_batch_axis(s, *this);
  std::int64_t rest = 1;
  for (std::size_t a = 1; a < s.size(); ++a) rest = detail::times(rest, s[a]);
  return {s[0], rest};
}

Shape Conv2D::compute_output_shape(const Shape& s) const {
  detail::expect_rank(s, 4, "[batch, height, width, channels]", *this);
  if (built() && detail::differ(s[3], kernel_.dim(2))) {
    throw ShapeError(fmt::format("{}: expected inputs [batch, height, width, {}], got {}", detail::label(*this),
                                 kernel_.dim(2), shape_str(s)));
  }
  return windowed_image(s, dilated(kernel_size_, options_.dilation_rate), options_.strides, options_.padding, filters_,
                        *this, "conv2d");
}

Shape Conv2DTranspose::compute_output_shape(const Shape& s) const {
  check_image(s, built() ? kernel_.dim(3) : -1, detail::label(*this));
  const auto length = [&](std::int64_t in) {
    return in < 0 ? -1
                  : transposed_length(in, kernel_size_, options_.strides, options_.padding, output_padding_,
                                      options_.dilation_rate);
  };
  return {s[0], length(s[1]), length(s[2]), filters_};
}

Shape DepthwiseConv2D::compute_output_shape(const Shape& s) const {
  check_image(s, built() ? kernel_.dim(2) : -1, detail::label(*this));
  return windowed_image(s, dilated(kernel_size_, options_.dilation_rate), options_.strides, options_.padding,
                        detail::times(s[3], options_.depth_multiplier), *this, "depthwise_conv2d");
}

Shape SeparableConv2D::compute_output_shape(const Shape& s) const {
  check_image(s, built() ? depthwise_kernel_.dim(2) : -1, detail::label(*this));
  return windowed_image(s, dilated(kernel_size_, options_.dilation_rate), options_.strides, options_.padding, filters_,
                        *this, "depthwise_conv2d");
}

Shape UpSampling2D::compute_output_shape(const Shape& s) const {
  check_image(s, -1, detail::label(*this));
  return {s[0], detail::times(s[1], size_h_), detail::times(s[2], size_w_), s[3]};
}

Shape ZeroPadding2D::compute_output_shape(const Shape& s) const {
  check_image(s, -1, detail::label(*this));
  return {s[0], grown(s[1], padding_.top + padding_.bottom), grown(s[2], padding_.left + padding_.right), s[3]};
}

Shape MaxPooling2D::compute_output_shape(const Shape& s) const {
  return pooled_image(s, pool_size_, options_, *this, "max_pool2d");
}

Shape AveragePooling2D::compute_output_shape(const Shape& s) const {
  return pooled_image(s, pool_size_, options_, *this, "avg_pool2d");
}

Shape BatchNormalization::compute_output_shape(const Shape& s) const {
  detail::expect_batch_axis(s, *this);
  if (built() && detail::differ(s.back(), moving_mean_.dim(0))) {
    throw ShapeError(fmt::format("{}: expected inputs [..., {}], got {}", detail::label(*this), moving_mean_.dim(0),
                                 shape_str(s)));
  }
  return s;
}

namespace {
// A built normalization layer's check: ShapeError naming it unless `s` has the rank of
// `param_shape` and its sizes along `axes` (unknown sizes pass).
void expect_param_axes(const Shape& s, const Shape& param_shape, const std::vector<std::int64_t>& axes,
                       const Layer& layer) {
  bool ok = s.size() == param_shape.size();
  for (std::int64_t a : axes) ok = ok && !detail::differ(s[static_cast<std::size_t>(a)], param_shape[static_cast<std::size_t>(a)]);
  if (!ok) {
    Shape want(param_shape.size(), -1);
    for (std::int64_t a : axes) want[static_cast<std::size_t>(a)] = param_shape[static_cast<std::size_t>(a)];
    throw ShapeError(fmt::format("{}: expected inputs {} (-1: any size), got {}", detail::label(layer), shape_str(want),
                                 shape_str(s)));
  }
}
}  // namespace

Shape LayerNormalization::compute_output_shape(const Shape& s) const {
  if (!built()) {
    normalized_axes(options_.axis, s, *this);  // build's checks
    return s;
  }
  expect_param_axes(s, param_shape_, axes_, *this);
  return s;
}

Shape GroupNormalization::compute_output_shape(const Shape& s) const {
  if (!built()) {
    grouping(options_, s, *this);  // build's checks
    return s;
  }
  expect_param_axes(s, param_shape_, {axis_}, *this);
  return s;
}

Shape UnitNormalization::compute_output_shape(const Shape& s) const {
  normalized_axes(axis_, s, *this, true);  // call's checks
  return s;
}

Shape Embedding::compute_output_shape(const Shape& s) const {
  Shape out = s;
  out.push_back(output_dim_);
  return out;
}

Shape Masking::compute_output_shape(const Shape& s) const {
  if (s.size() < 2) {
    throw ShapeError(fmt::format("{}: expected inputs [batch, ..., features], got {}", detail::label(*this), shape_str(s)));
  }
  return s;
}

Shape GlobalPooling2D::compute_output_shape(const Shape& s) const {
  detail::expect_rank(s, 4, "[batch, height, width, channels]", *this);
  return keepdims_ ? Shape{s[0], 1, 1, s[3]} : Shape{s[0], s[3]};
}

Shape Reshape::compute_output_shape(const Shape& s) const {
  std::int64_t known = 1, rest = 1;
  bool infer = false;
  for (std::int64_t d : target_shape_) {
    if (d == -1) infer = true;
    else known *= d;
  }
  for (std::size_t a = 1; a < s.size(); ++a) rest = detail::times(rest, s[a]);
  if (s.empty() || (rest >= 0 && ((infer && (known == 0 || rest % known != 0)) || (!infer && known != rest)))) {
    throw ShapeError(fmt::format("{}: cannot reshape {} ({} values per example) to [batch] + {}", detail::label(*this),
                                 shape_str(s), rest, shape_str(target_shape_)));
  }
  Shape out = {s[0]};
  for (std::int64_t d : target_shape_) out.push_back(d == -1 && rest >= 0 ? rest / known : d);
  return out;
}

Shape PReLU::compute_output_shape(const Shape& s) const {
  if (!built()) {
    alpha_shape(s);  // build's checks
    return s;
  }
  bool ok = static_cast<std::int64_t>(s.size()) == alpha_.rank() + 1;
  for (std::int64_t i = 0; ok && i < alpha_.rank(); ++i) {
    ok = alpha_.dim(i) == 1 || !detail::differ(alpha_.dim(i), s[static_cast<std::size_t>(i + 1)]);
  }
  if (!ok) {
    throw ShapeError(fmt::format("{}: expected inputs [batch] + {} (1: any size), got {}", detail::label(*this),
                                 shape_str(alpha_.shape()), shape_str(s)));
  }
  return s;
}

Shape Conv1D::compute_output_shape(const Shape& s) const {
  detail::expect_rank(s, 3, "[batch, steps, channels]", *this);
  if (built() && detail::differ(s[2], kernel_.dim(1))) {
    throw ShapeError(fmt::format("{}: expected inputs [batch, steps, {}], got {}", detail::label(*this), kernel_.dim(1),
                                 shape_str(s)));
  }
  const std::int64_t span = dilated(kernel_size_, options_.dilation_rate);
  // causal: span - 1 zeros before the sequence, then a valid convolution
  const bool causal = options_.padding == Padding1D::Causal;
  const std::int64_t steps = causal ? grown(s[1], span - 1) : s[1];
  const Padding padding = options_.padding == Padding1D::Same ? Padding::Same : Padding::Valid;
  return {s[0], detail::window_length(steps, span, options_.strides, padding, *this, "conv2d", s), filters_};
}

Shape Pooling1D::compute_output_shape(const Shape& s) const {
  detail::expect_rank(s, 3, "[batch, steps, channels]", *this);
  const std::int64_t stride = options_.strides == 0 ? pool_size_ : options_.strides;
  return {s[0], detail::window_length(s[1], pool_size_, stride, options_.padding, *this, "im2col", s), s[2]};
}

Shape GlobalPooling1D::compute_output_shape(const Shape& s) const {
  detail::expect_rank(s, 3, "[batch, steps, channels]", *this);
  return keepdims_ ? Shape{s[0], 1, s[2]} : Shape{s[0], s[2]};
}

Shape Recurrent::compute_output_shape(const Shape& s) const {
  detail::expect_rank(s, 3, "[batch, time, features]", *this);
  if (built() && detail::differ(s[2], kernel_.dim(0))) {
    throw ShapeError(fmt::format("{}: expected inputs [batch, time, {}], got {}", detail::label(*this), kernel_.dim(0),
                                 shape_str(s)));
  }
  return options_.return_sequences ? Shape{s[0], s[1], units_} : Shape{s[0], units_};
}

Shape Bidirectional::compute_output_shape(const Shape& s) const {
  const Shape f = forward_->compute_output_shape(s);
  backward_->compute_output_shape(s);
  return merge_mode_ == MergeMode::Concat ? with_last(f, detail::times(f.back(), 2)) : f;
}

}  // namespace layers
}  // namespace tapeflow
