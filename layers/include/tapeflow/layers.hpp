#pragma once
/// Keras-style layers: a Layer base that builds its weights on first call (with regularizers and
/// add_loss), and Dense, Flatten, Dropout, Conv1D, Conv2D, Conv2DTranspose, DepthwiseConv2D,
/// SeparableConv2D, UpSampling2D, ZeroPadding2D, Cropping2D, Max/AveragePooling1D/2D, global
/// pooling, BatchNormalization, LayerNormalization, GroupNormalization, UnitNormalization,
/// Embedding, Masking, Reshape, Rescaling, LeakyReLU, ELU, Softmax, PReLU, SimpleRNN, LSTM, GRU,
/// Bidirectional, the core layers (ActivationLayer,
/// Identity, Permute, RepeatVector, TimeDistributed, GaussianNoise, GaussianDropout,
/// SpatialDropout1D/2D, ActivityRegularization, UpSampling1D, ZeroPadding1D, Cropping1D,
/// Normalization, CategoryEncoding) and the image augmentation layers
/// (RandomFlip, RandomRotation, RandomZoom, RandomTranslation, RandomContrast). The merge
/// layers, Lambda and ModelLayer are in functional.hpp, MultiHeadAttention in attention.hpp.
/// Ordinary user code on the public API.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tapeflow/generator.hpp"
#include "tapeflow/ops.hpp"
#include "tapeflow/variable.hpp"

namespace tapeflow {

class KerasTensor;  // functional.hpp

/// Weight initializers: (shape, generator) -> a float32 tensor. Fans follow Keras: [in, out]
/// for a matrix, [kh, kw, in, out] gives fan_in = kh * kw * in and fan_out = kh * kw * out.
namespace initializers {

using Initializer = std::function<Tensor(const Shape& shape, Generator& gen)>;

/// Uniform in [-limit, limit], limit = sqrt(6 / (fan_in + fan_out)).
Tensor glorot_uniform(const Shape& shape, Generator& gen);
/// Truncated normal (at 2 stddev), stddev = sqrt(2 / (fan_in + fan_out)) / 0.8796.
Tensor glorot_normal(const Shape& shape, Generator& gen);
/// Truncated normal (at 2 stddev), stddev = sqrt(2 / fan_in) / 0.8796 (Keras's he_normal).
Tensor he_normal(const Shape& shape, Generator& gen);
/// Uniform in [-limit, limit], limit = sqrt(6 / fan_in).
Tensor he_uniform(const Shape& shape, Generator& gen);
/// Truncated normal (at 2 stddev), stddev = sqrt(1 / fan_in) / 0.8796 (for selu).
Tensor lecun_normal(const Shape& shape, Generator& gen);
/// Uniform in [-limit, limit], limit = sqrt(3 / fan_in).
Tensor lecun_uniform(const Shape& shape, Generator& gen);
/// Uniform in [-0.05, 0.05] (Keras's RandomUniform() and "uniform"; Embedding's default).
Tensor random_uniform(const Shape& shape, Generator& gen);
/// Normal with stddev 0.05 (Keras's RandomNormal() and "normal").
Tensor random_normal(const Shape& shape, Generator& gen);
/// Normal with stddev 0.05 truncated at 2 stddev (Keras's TruncatedNormal()).
Tensor truncated_normal(const Shape& shape, Generator& gen);
/// Keras's Orthogonal(): the Q of a QR decomposition of a normal [max(r, c), min(r, c)]
/// matrix (r = the product of all axes but the last, c = the last), signs fixed so that R's
/// diagonal is positive, transposed when r < c: orthonormal rows or columns. Rank >= 2
/// (ValueError otherwise). The recurrent layers' default recurrent_initializer.
Tensor orthogonal(const Shape& shape, Generator& gen);
Tensor zeros(const Shape& shape, Generator& gen);
Tensor ones(const Shape& shape, Generator& gen);
/// By Keras name: "glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "lecun_normal",
/// "lecun_uniform", "random_uniform" (or "uniform"), "random_normal" (or "normal"),
/// "truncated_normal", "orthogonal", "zeros", "ones".
Initializer get(const std::string& name);

}  // namespace initializers

/// Weight and activity penalties added to the training loss (Keras's regularizers).
namespace regularizers {

/// A tensor -> a scalar penalty (of its dtype).
using Regularizer = std::function<Tensor(const Tensor& x)>;
/// factor * sum(|x|); the factor must be finite and >= 0 (ValueError).
Regularizer l1(double factor = 0.01);
/// factor * sum(x^2).
Regularizer l2(double factor = 0.01);
/// l1 * sum(|x|) + l2 * sum(x^2); a zero factor's term is left out.
Regularizer l1_l2(double l1 = 0.01, double l2 = 0.01);
/// By Keras name: "l1", "l2" (factor 0.01) and "l1_l2" (0.01 each, as Keras documents; Keras
/// 3.15's get("l1_l2") actually gives zero factors); "" gives none (an empty Regularizer).
/// ValueError naming them for any other.
Regularizer get(const std::string& name);

}  // namespace regularizers

namespace layers {

using regularizers::Regularizer;

using initializers::Initializer;

/// Activation applied by Dense and Conv2D: the functions of ops.hpp with Keras's defaults
/// (softmax and log_softmax over the last axis, elu's alpha 1, leaky_relu's slope 0.2, exact gelu).
enum class Activation {
  Linear, Relu, Sigmoid, Tanh, Softmax, LogSoftmax, Elu, Selu, Gelu, Silu, LeakyRelu, Softplus,
  Softsign, Relu6, HardSigmoid, HardSilu, Mish, Exponential
};
/// By Keras name: "linear" (or ""), "relu", "sigmoid", "tanh", "softmax", "log_softmax", "elu",
/// "selu", "gelu", "silu" (or "swish"), "leaky_relu", "softplus", "softsign", "relu6",
/// "hard_sigmoid", "hard_silu" (or "hard_swish"), "mish", "exponential". Throws ValueError
/// listing them for any other.
Activation activation_from_name(const std::string& name);
/// The Keras name ("silu" for Silu).
const char* activation_name(Activation a);
Tensor activate(const Tensor& x, Activation a);

/// Base of every layer. Weights are made by build() on the first call, from the input shape.
class Layer : public std::enable_shared_from_this<Layer> {
 public:
  virtual ~Layer() = default;

  /// Builds on the first call, then runs call(). `training` turns on dropout and batch statistics.
  Tensor operator()(const Tensor& x, bool training = false);

  /// The functional API (functional.hpp): records this layer applied to a symbolic input as a
  /// node of the graph a Functional model runs, and returns the node's output, its shape
  /// compute_output_shape's when x's is known (the layer's error for a shape it refuses is thrown
  /// here). Nothing is built, named or seeded until a Functional model over the graph is made
  /// (it builds its layers then, as Keras's). The graph shares the layer, so it must be owned by
  /// a std::shared_ptr (ValueError otherwise):
  ///
  ///     auto dense = std::make_shared<layers::Dense>(64, "relu");
  ///     KerasTensor h = (*dense)(inputs);      // or: apply_layer(layers::Dense(64, "relu"), inputs)
  ///
  /// Calling one layer on several symbolic inputs shares its weights between the calls.
  KerasTensor operator()(const KerasTensor& x) &;
  /// A temporary cannot join a graph by reference; pass it to apply_layer(), which keeps a copy.
  KerasTensor operator()(const KerasTensor& x) && = delete;

  /// Makes the weights for inputs of `input_shape` (the batch axis included; -1 for an axis of
  /// unknown size, which only a symbolic build passes: a weight whose shape needs one is refused).
  virtual void build(const Shape& input_shape) { (void)input_shape; }
  /// Keras's layer.build(input_shape): what the first call does before call(), without calling:
  /// names the layer and its sublayers, takes `device` unless set_device was called, and runs
  /// build(input_shape) (a failed build leaves no weights). Axes may be -1 (None) where the
  /// weights do not depend on them: Embedding on [-1, -1], Conv2D on [-1, -1, -1, 3]; a weight
  /// whose shape would need one is a ValueError naming the layer, the weight and its shape, as
  /// Keras's. Nothing happens once the layer is built. A Functional model builds its layers this
  /// way where an Input has axes of unknown size; a layer with sublayers built by its call (not
  /// by build()) stays partly unbuilt.
  void build_from_shape(const Shape& input_shape, Device device);
  virtual Tensor call(const Tensor& x, bool training) = 0;

  /// Keras's compute_output_shape: the output's shape for inputs of `input_shape` (the batch
  /// axis included; -1 for an axis of unknown size, Keras's None), with -1 where the output's
  /// size is unknown, or an empty Shape where the layer cannot tell. Inputs the call would refuse
  /// throw its error type (ShapeError, ValueError) naming the layer and the shapes; an unknown
  /// axis never fails. It builds, names, seeds and places nothing. Applying a layer to a
  /// KerasTensor calls it, so a layer output's shape is known at once and a mismatch fails
  /// there, as in Keras. The default, for a layer that does not override it: unknown until the
  /// layer is built, then the layer run once on float32 zeros (a batch of one, in inference,
  /// not recorded) when every axis but the batch is known, and that output's shape with the
  /// input's batch axis; only the layer's own errors (tapeflow::Error) escape, but a DTypeError
  /// (the zeros' dtype, not the input's) gives unknown.
  virtual Shape compute_output_shape(const Shape& input_shape) const;

  // ---- masking (Keras's _keras_mask)
  /// Keras's layer(x, mask=mask): operator() with the mask of x, [batch, time] for a sequence
  /// [batch, time, ...] (bool, or numeric with nonzero = a real step, 0 = padding); an
  /// undefined mask is none. Runs call_masked(). Sequential and Functional models pass masks
  /// between their layers themselves, as Keras does: an Embedding with mask_zero or a Masking
  /// layer makes one, each layer that supports masking passes it on (compute_mask), the
  /// recurrent layers, GlobalAveragePooling1D, Softmax and BatchNormalization use it, a layer
  /// that does not support masking drops it (with Keras's warning on stderr, once per layer),
  /// and the output's mask weighs the loss and the metrics (Model::output_mask).
  Tensor operator()(const Tensor& x, const Tensor& mask, bool training = false);
  /// call() given the input's mask (undefined: none). By default the mask is not used.
  virtual Tensor call_masked(const Tensor& x, const Tensor& mask, bool training);
  /// The mask of the output for input x with mask `mask` (Keras's compute_mask), after a call
  /// on x: by default `mask` when the layer supports masking, else none (undefined).
  virtual Tensor compute_mask(const Tensor& x, const Tensor& mask) const;
  /// Whether the layer passes a mask on (Keras's supports_masking): on for Dense, Dropout,
  /// the activation and normalization layers, Rescaling, the recurrent layers, the merge
  /// layers but Dot; off for the rest (convolutions, pooling, Flatten, Reshape, Lambda, ...).
  /// A custom layer that keeps the time axis as it is may switch it on.
  bool supports_masking() const { return supports_masking_; }
  void set_supports_masking(bool on) { supports_masking_ = on; }

  /// "dense", "dense_1", ...: unique within a model; the prefix of the weights' names.
  const std::string& name() const { return name_; }
  /// Renames the layer; only before it is built (its weights carry the name).
  void set_name(const std::string& name);
  /// The class name, "Dense", "Conv2D", ...
  const std::string& class_name() const { return class_name_; }
  /// Keras's default name for this class: "dense", "conv2d", "max_pooling2d", ...
  std::string default_name() const;

  bool built() const { return built_; }
  /// Output shape of the last call, the batch axis as -1 (None); empty before the first call.
  const Shape& output_shape() const { return output_shape_; }
  /// Input shape of the last call (the first input's, for a list), the batch axis as -1;
  /// empty before the first call.
  const Shape& input_shape() const { return input_shape_; }

  /// The layer's own weights, then its sublayers' (track()), in tracking order, each once.
  std::vector<Variable> weights() const;
  /// Empty while the layer is frozen (set_trainable(false)).
  std::vector<Variable> trainable_weights() const;
  std::vector<Variable> non_trainable_weights() const;
  std::int64_t count_params() const;
  /// Keras's get_weights(): a copy of each weight, in weights() order, on the CPU.
  std::vector<Tensor> get_weights() const;
  /// Keras's set_weights(): a value per weight, in weights() order, each of its weight's shape
  /// (any numeric dtype, cast to the weight's; any device). All are checked before any is
  /// written: ValueError for another count (an unbuilt layer has none), ShapeError naming the
  /// weight and both shapes.
  void set_weights(const std::vector<Tensor>& values);

  bool trainable() const { return trainable_; }
  /// A frozen layer lists all its weights, its sublayers' too, as non-trainable (its optimizer
  /// leaves them alone).
  void set_trainable(bool trainable) { trainable_ = trainable; }

  /// Where the weights live: set before the first call, or else the device of the first input
  /// (weights are initialised on the CPU and copied, so a seed gives the same weights on every
  /// device). Changing it after build throws ValueError. Reaches the sublayers.
  void set_device(Device device);
  Device device() const { return device_; }

  /// Seeds the layer's generator (initializers, dropout) and its sublayers' (each its own seed
  /// derived from this one) but those seeded themselves. A model seeds each layer it adds or
  /// first calls from its own seed and the layer's position, unless set_seed was called on the
  /// layer before.
  void set_seed(std::uint64_t seed);
  /// True once set_seed was called on this layer (or a model seeded it).
  bool seeded() const { return seeded_; }
  Generator& generator() { return gen_; }

  /// The layers tracked by track(), in order.
  const std::vector<std::shared_ptr<Layer>>& sublayers() const { return sublayers_; }

  /// Keras's layer.losses: the losses the last call of this layer and of its sublayers added
  /// (add_loss, activity regularizers), then the penalties of the trainable weights that have a
  /// regularizer, computed from their current values (under a tape, they are differentiable).
  /// A frozen layer's weights add none. Each layer and weight counts once.
  std::vector<Tensor> losses() const;
  /// A penalty on the layer's output, added at each call as regularizer(y) / batch size
  /// (Keras's activity_regularizer); an empty one removes it.
  void set_activity_regularizer(Regularizer regularizer) { activity_regularizer_ = std::move(regularizer); }

 protected:
  Layer(std::string class_name, std::string name);
  /// A new weight named "<layer name>/<name>", initialised from the layer's generator, with an
  /// optional penalty (losses()).
  Variable add_weight(const std::string& name, const Shape& shape, const Initializer& initializer,
                      bool trainable = true, Regularizer regularizer = {});
  /// Adds a loss (a scalar) from inside call(), as Keras's add_loss: it is in losses() until the
  /// layer's next call, and Model::compute_loss adds it to the training loss.
  void add_loss(const Tensor& loss);
  /// Makes `layer` a sublayer, as Keras tracks a layer assigned to an attribute: its weights
  /// join this layer's (trained, saved, counted, frozen with it), set_device and set_seed reach
  /// it, and at this layer's first call an unnamed sublayer is named after its class, unique
  /// among its siblings, and every unbuilt one is prefixed with this layer's name, so its
  /// weights are "<this>/<sublayer>/<weight>". Call it in the constructor; returns the layer:
  ///
  ///     proj_ = track(std::make_shared<layers::Dense>(64, "relu"));
  ///
  /// Throws ValueError for a null layer, one already tracked, or this layer or one of its
  /// ancestors (a cycle).
  template <class L>
  std::shared_ptr<L> track(std::shared_ptr<L> layer) {
    track_layer(layer);
    return layer;
  }
  /// What operator() does around call(), for a layer with its own call signature (the merge
  /// layers): on the first call names the layer and its sublayers, takes the device of the
  /// input unless one was set, and builds from `input_shape` (a failed build leaves no weights);
  /// then runs `body`, prefixes the errors of the ops in it with the layer's name, and records
  /// the output shape.
  Tensor invoke(const Shape& input_shape, Device input_device, const std::function<Tensor()>& body);
  /// compute_output_shape's default for a built layer: `run` (the layer on zeros) under
  /// NoRecording, its errors named as a call names them; the output's shape with the batch axis
  /// `batch`, or empty when `run` throws a DTypeError or anything but a tapeflow::Error.
  /// output_shape() and losses() stay as they were.
  Shape probe_output_shape(std::int64_t batch, const std::function<Tensor()>& run) const;

 private:
  void check_input(const Tensor& x) const;  // defined, and not a scalar before the build
  void track_layer(const std::shared_ptr<Layer>& layer);
  bool contains(const Layer* layer) const;
  void name_sublayers();
  void seed_tree(std::uint64_t seed);  // seeds this layer and its unseeded sublayers

  std::string class_name_;
  std::string name_;
  bool built_ = false;
  bool trainable_ = true;
  bool supports_masking_ = false;
  bool warned_mask_dropped_ = false;  // Keras's warning, given once
  Device device_ = Device::cpu();
  bool device_set_ = false;
  Shape output_shape_;
  Shape input_shape_;
  std::vector<Variable> weights_;
  std::vector<Regularizer> weight_regularizers_;  // weights_[i]'s, or empty
  std::vector<Tensor> call_losses_;              // add_loss during the last call
  Regularizer activity_regularizer_;
  std::vector<std::shared_ptr<Layer>> sublayers_;
  Generator gen_;
  std::uint64_t seed_ = 0;
  bool seeded_ = false;
  std::string parent_prefix_;  // "<parent>/" that name_sublayers put before this layer's name

  friend std::vector<Tensor> detail_losses(const std::vector<const Layer*>& roots);
  friend void detail_unbuild(Layer& layer);
};

/// The losses of several layers (Model::losses): as Layer::losses() over their union.
std::vector<Tensor> detail_losses(const std::vector<const Layer*>& roots);
/// Drops the layer's own weights (not its sublayers') and marks it unbuilt, so the next build
/// makes them anew: how a Functional model redraws the weights it built when it was made, on
/// set_seed or set_device before its first run. Not for user code: the layer's members still
/// hold the old weights until it is built again.
void detail_unbuild(Layer& layer);

namespace detail {
/// Appends the variables of `more` that `out` does not hold yet (a weight reached twice, through
/// a layer shared by two parents, is listed, trained and saved once, as in Keras).
void append_unique(std::vector<Variable>& out, std::vector<Variable> more);
/// `roots` and their sublayers, depth first, each layer once (a shared one where first reached).
std::vector<std::shared_ptr<Layer>> layer_tree(const std::vector<std::shared_ptr<Layer>>& roots);
/// get_weights() and set_weights() of a layer or model (`who` names it in errors).
std::vector<Tensor> get_weights(const std::vector<Variable>& weights);
void set_weights(const std::string& who, const std::vector<Variable>& weights, const std::vector<Tensor>& values);
}  // namespace detail

struct DenseOptions {
  bool use_bias = true;
  Initializer kernel_initializer = initializers::glorot_uniform;
  Initializer bias_initializer = initializers::zeros;
  /// Penalties (regularizers::l2(0.001), ...): on the kernel, the bias and the output.
  Regularizer kernel_regularizer, bias_regularizer, activity_regularizer;
  std::string name;
};

/// activation(x @ kernel + bias): kernel [in, units], bias [units]; x [..., in].
class Dense : public Layer {
 public:
  explicit Dense(std::int64_t units, Activation activation = Activation::Linear, DenseOptions options = {});
  Dense(std::int64_t units, const std::string& activation, DenseOptions options = {})
      : Dense(units, activation_from_name(activation), std::move(options)) {}

  void build(const Shape& input_shape) override;
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;

  std::int64_t units() const { return units_; }
  Activation activation() const { return activation_; }
  /// [in, units]; undefined before build.
  const Variable& kernel() const { return kernel_; }
  const Variable& bias() const { return bias_; }

 private:
  std::int64_t units_;
  Activation activation_;
  DenseOptions options_;
  Variable kernel_, bias_;
};

/// [batch, d1, d2, ...] -> [batch, d1 * d2 * ...] (a view when the input is contiguous).
class Flatten : public Layer {
 public:
  explicit Flatten(std::string name = "") : Layer("Flatten", std::move(name)) {}
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
};

/// In training, zeroes each element with probability `rate` and scales the rest by
/// 1 / (1 - rate); the identity in inference.
class Dropout : public Layer {
 public:
  explicit Dropout(double rate, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  /// The input's shape.
  Shape compute_output_shape(const Shape& input_shape) const override { return input_shape; }
  double rate() const { return rate_; }

 private:
  double rate_;
};

/// Conv1D's padding: Keras's "valid", "same" and "causal" (zeros before the sequence only, so an
/// output never sees a later step).
enum class Padding1D { Valid, Same, Causal };

/// Conv1D's and Conv2D's options; P is their padding type.
template <class P>
struct ConvOptions {
  std::int64_t strides = 1;
  P padding = P::Valid;
  /// Spacing of the kernel's taps (atrous convolution); > 1 with strides > 1 is a ValueError, as in Keras.
  std::int64_t dilation_rate = 1;
  bool use_bias = true;
  Initializer kernel_initializer = initializers::glorot_uniform;
  Initializer bias_initializer = initializers::zeros;
  /// Penalties on the kernel, the bias and the output (see DenseOptions).
  Regularizer kernel_regularizer, bias_regularizer, activity_regularizer;
  std::string name;
};
using Conv2DOptions = ConvOptions<Padding>;
using Conv1DOptions = ConvOptions<Padding1D>;

namespace detail {
/// ValueError unless filters, kernel_size, strides and dilation_rate are positive and strides and
/// dilation_rate are not both above 1 (Keras's rule).
void check_conv(const std::string& layer, std::int64_t filters, std::int64_t kernel_size, std::int64_t strides,
                std::int64_t dilation_rate = 1);
}  // namespace detail

/// The state Conv1D and Conv2D share: filters, kernel size, activation, options, kernel and bias.
template <class P>
class Conv : public Layer {
 public:
  const Variable& kernel() const { return kernel_; }
  const Variable& bias() const { return bias_; }

 protected:
  Conv(std::string class_name, std::int64_t filters, std::int64_t kernel_size, Activation activation,
       ConvOptions<P> options)
      : Layer(class_name, options.name),
        filters_(filters),
        kernel_size_(kernel_size),
        activation_(activation),
        options_(std::move(options)) {
    detail::check_conv(class_name, filters, kernel_size, options_.strides, options_.dilation_rate);
    set_activity_regularizer(options_.activity_regularizer);
  }

  std::int64_t filters_, kernel_size_;
  Activation activation_;
  ConvOptions<P> options_;
  Variable kernel_, bias_;
};

/// activation(conv2d(x, kernel) + bias): x [batch, h, w, c_in] (NHWC), kernel
/// [k, k, c_in, filters] (HWIO), bias [filters].
class Conv2D : public Conv<Padding> {
 public:
  Conv2D(std::int64_t filters, std::int64_t kernel_size, Activation activation = Activation::Linear,
         Conv2DOptions options = {})
      : Conv("Conv2D", filters, kernel_size, activation, std::move(options)) {}
  Conv2D(std::int64_t filters, std::int64_t kernel_size, const std::string& activation, Conv2DOptions options = {})
      : Conv2D(filters, kernel_size, activation_from_name(activation), std::move(options)) {}

  void build(const Shape& input_shape) override;
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
};

/// activation(conv1d(x, kernel) + bias): x [batch, steps, c_in], kernel [k, c_in, filters]
/// (Keras's layout) -> [batch, steps', filters]; conv2d over a height of 1. Causal padding puts
/// (k - 1) * dilation_rate zeros before the sequence.
class Conv1D : public Conv<Padding1D> {
 public:
  Conv1D(std::int64_t filters, std::int64_t kernel_size, Activation activation = Activation::Linear,
         Conv1DOptions options = {})
      : Conv("Conv1D", filters, kernel_size, activation, std::move(options)) {}
  Conv1D(std::int64_t filters, std::int64_t kernel_size, const std::string& activation, Conv1DOptions options = {})
      : Conv1D(filters, kernel_size, activation_from_name(activation), std::move(options)) {}

  void build(const Shape& input_shape) override;
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
};

/// Conv2DTranspose's options: Conv2D's, and Keras's output_padding (-1: None).
struct Conv2DTransposeOptions : Conv2DOptions {
  /// Extra rows and columns at the bottom and right of the output, in [0, strides) (ValueError
  /// otherwise); -1 (Keras's None) lets the padding decide.
  std::int64_t output_padding = -1;
};

/// activation(conv2d_transpose(x, kernel) + bias), Keras's Conv2DTranspose ("deconvolution", the
/// gradient of a Conv2D with respect to its input): x [batch, h, w, c_in], kernel
/// [k, k, filters, c_in], bias [filters] -> [batch, h', w', filters] with, per spatial axis,
/// h' = h * strides + max(k' - strides, 0) (valid) or h * strides (same), k' = (k - 1) *
/// dilation_rate + 1; with output_padding p: (h - 1) * strides + k' + p (valid) or
/// (h - 1) * strides + k' % 2 + p (same). ValueError for an input that is not
/// [batch, h, w, c_in].
class Conv2DTranspose : public Conv<Padding> {
 public:
  Conv2DTranspose(std::int64_t filters, std::int64_t kernel_size, Activation activation = Activation::Linear,
                  Conv2DTransposeOptions options = {});
  Conv2DTranspose(std::int64_t filters, std::int64_t kernel_size, const std::string& activation,
                  Conv2DTransposeOptions options = {})
      : Conv2DTranspose(filters, kernel_size, activation_from_name(activation), std::move(options)) {}

  void build(const Shape& input_shape) override;
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;

 private:
  std::int64_t output_padding_;
};

/// DepthwiseConv2D's and SeparableConv2D's options.
struct DepthwiseConv2DOptions {
  std::int64_t strides = 1;
  Padding padding = Padding::Valid;
  /// Filters per input channel (> 0).
  std::int64_t depth_multiplier = 1;
  /// > 1 with strides > 1 is a ValueError, as in Keras.
  std::int64_t dilation_rate = 1;
  bool use_bias = true;
  Initializer depthwise_initializer = initializers::glorot_uniform;
  Initializer bias_initializer = initializers::zeros;
  Regularizer depthwise_regularizer, bias_regularizer, activity_regularizer;
  std::string name;
};

/// activation(depthwise_conv2d(x, kernel) + bias): each input channel convolved with its own
/// depth_multiplier filters. x [batch, h, w, c_in], kernel [k, k, c_in, depth_multiplier] (Keras
/// names it "kernel"), bias [c_in * depth_multiplier] -> [batch, h', w', c_in * depth_multiplier],
/// output channel i * depth_multiplier + m from input channel i. ValueError for an input that
/// is not [batch, h, w, c_in].
class DepthwiseConv2D : public Layer {
 public:
  explicit DepthwiseConv2D(std::int64_t kernel_size, Activation activation = Activation::Linear,
                           DepthwiseConv2DOptions options = {});
  DepthwiseConv2D(std::int64_t kernel_size, const std::string& activation, DepthwiseConv2DOptions options = {})
      : DepthwiseConv2D(kernel_size, activation_from_name(activation), std::move(options)) {}

  void build(const Shape& input_shape) override;
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  /// [k, k, c_in, depth_multiplier]; undefined before build.
  const Variable& kernel() const { return kernel_; }
  const Variable& bias() const { return bias_; }

 private:
  std::int64_t kernel_size_;
  Activation activation_;
  DepthwiseConv2DOptions options_;
  Variable kernel_, bias_;
};

/// SeparableConv2D's options: DepthwiseConv2D's and the pointwise kernel's initializer.
struct SeparableConv2DOptions : DepthwiseConv2DOptions {
  Initializer pointwise_initializer = initializers::glorot_uniform;
  Regularizer pointwise_regularizer;
};

/// activation(conv2d(depthwise_conv2d(x, depthwise_kernel), pointwise_kernel) + bias), Keras's
/// SeparableConv2D: weights in Keras's order depthwise_kernel [k, k, c_in, depth_multiplier],
/// pointwise_kernel [1, 1, c_in * depth_multiplier, filters], bias [filters]; x [batch, h, w,
/// c_in] -> [batch, h', w', filters]. ValueError for an input that is not [batch, h, w, c_in].
class SeparableConv2D : public Layer {
 public:
  SeparableConv2D(std::int64_t filters, std::int64_t kernel_size, Activation activation = Activation::Linear,
                  SeparableConv2DOptions options = {});
  SeparableConv2D(std::int64_t filters, std::int64_t kernel_size, const std::string& activation,
                  SeparableConv2DOptions options = {})
      : SeparableConv2D(filters, kernel_size, activation_from_name(activation), std::move(options)) {}

  void build(const Shape& input_shape) override;
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  const Variable& depthwise_kernel() const { return depthwise_kernel_; }
  const Variable& pointwise_kernel() const { return pointwise_kernel_; }
  const Variable& bias() const { return bias_; }

 private:
  std::int64_t filters_, kernel_size_;
  Activation activation_;
  SeparableConv2DOptions options_;
  Variable depthwise_kernel_, pointwise_kernel_, bias_;
};

/// Nearest-neighbour upsampling (Keras's UpSampling2D, interpolation "nearest"): every pixel of
/// x [batch, h, w, c] repeated size_h x size_w times -> [batch, h * size_h, w * size_w, c].
/// ValueError for a size below 1 or an input that is not [batch, h, w, c].
class UpSampling2D : public Layer {
 public:
  explicit UpSampling2D(std::int64_t size = 2, std::string name = "") : UpSampling2D(size, size, std::move(name)) {}
  UpSampling2D(std::int64_t size_h, std::int64_t size_w, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;

 private:
  std::int64_t size_h_, size_w_;
};

/// Rows and columns added (ZeroPadding2D) or removed (Cropping2D) at each edge, as Keras's
/// ((top, bottom), (left, right)).
struct Padding2D {
  std::int64_t top = 0, bottom = 0, left = 0, right = 0;
};

/// Zeros around x [batch, h, w, c] -> [batch, top + h + bottom, left + w + right, c]; Keras's
/// ZeroPadding2D(padding) (symmetric: ZeroPadding2D(1) is Keras's default) or
/// ZeroPadding2D(((top, bottom), (left, right))). ValueError for a negative padding or an input
/// that is not [batch, h, w, c].
class ZeroPadding2D : public Layer {
 public:
  explicit ZeroPadding2D(std::int64_t padding = 1, std::string name = "")
      : ZeroPadding2D(Padding2D{padding, padding, padding, padding}, std::move(name)) {}
  explicit ZeroPadding2D(Padding2D padding, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;

 private:
  Padding2D padding_;
};

/// x [batch, h, w, c] without top/bottom rows and left/right columns (a view) -> [batch,
/// h - top - bottom, w - left - right, c]; Keras's Cropping2D. ValueError for a negative crop,
/// an input that is not [batch, h, w, c] or one too small to keep a row and a column.
class Cropping2D : public Layer {
 public:
  explicit Cropping2D(std::int64_t cropping = 0, std::string name = "")
      : Cropping2D(Padding2D{cropping, cropping, cropping, cropping}, std::move(name)) {}
  explicit Cropping2D(Padding2D cropping, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;

 private:
  Padding2D cropping_;
};

struct PoolingOptions {
  std::int64_t strides = 0;  ///< 0: the pool size; negative is a ValueError
  Padding padding = Padding::Valid;
  std::string name;
};

/// Max over pool_size x pool_size windows of x [batch, h, w, c].
class MaxPooling2D : public Layer {
 public:
  explicit MaxPooling2D(std::int64_t pool_size = 2, PoolingOptions options = {});
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;

 private:
  std::int64_t pool_size_;
  PoolingOptions options_;
};

/// Mean over pool_size x pool_size windows of x [batch, h, w, c].
class AveragePooling2D : public Layer {
 public:
  explicit AveragePooling2D(std::int64_t pool_size = 2, PoolingOptions options = {});
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;

 private:
  std::int64_t pool_size_;
  PoolingOptions options_;
};

struct BatchNormalizationOptions {
  double momentum = 0.99;
  double epsilon = 1e-3;
  bool center = true;  ///< learn beta
  bool scale = true;   ///< learn gamma
  std::string name;
};

/// Keras's BatchNormalization over the last axis (channels). In training the batch's mean and
/// (biased) variance over every other axis normalise x, and the moving statistics are updated:
/// moving = moving * momentum + batch * (1 - momentum). In inference the moving statistics are
/// used, as they are when the layer is frozen (set_trainable(false)). gamma, beta trainable [c];
/// moving_mean, moving_variance non-trainable [c].
class BatchNormalization : public Layer {
 public:
  explicit BatchNormalization(BatchNormalizationOptions options = {});

  void build(const Shape& input_shape) override;
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  /// With a mask (one axis less than the inputs), training statistics are those of the real
  /// steps only (Keras 3's weighted moments, sum of weights + 1e-7).
  Tensor call_masked(const Tensor& x, const Tensor& mask, bool training) override;

  const Variable& gamma() const { return gamma_; }
  const Variable& beta() const { return beta_; }
  const Variable& moving_mean() const { return moving_mean_; }
  const Variable& moving_variance() const { return moving_variance_; }

 private:
  BatchNormalizationOptions options_;
  Variable gamma_, beta_, moving_mean_, moving_variance_;
};

struct LayerNormalizationOptions {
  /// The axes normalised over (negative counts from the end); the batch axis may not be one.
  std::vector<std::int64_t> axis = {-1};
  double epsilon = 1e-3;
  bool center = true;  ///< learn beta
  bool scale = true;   ///< learn gamma
  std::string name;
};

/// Keras's LayerNormalization: each example normalised over `axis` by its own mean and
/// (biased) variance, then y * gamma + beta, gamma and beta of the normalised axes' shape. The
/// same in training and inference.
class LayerNormalization : public Layer {
 public:
  explicit LayerNormalization(LayerNormalizationOptions options = {});

  void build(const Shape& input_shape) override;
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;

  const Variable& gamma() const { return gamma_; }
  const Variable& beta() const { return beta_; }

 private:
  LayerNormalizationOptions options_;
  std::vector<std::int64_t> axes_;  // normalised, sorted, fixed at build
  Shape param_shape_;               // x's rank, 1 except along axes_ (gamma and beta broadcast so)
  Variable gamma_, beta_;
};

struct GroupNormalizationOptions {
  /// The channels are split into this many groups, of equal size (channels % groups == 0);
  /// -1: one group per channel (instance normalization).
  std::int64_t groups = 32;
  /// The channels axis (negative counts from the end); the batch axis may not be it.
  std::int64_t axis = -1;
  double epsilon = 1e-3;
  bool center = true;  ///< learn beta
  bool scale = true;   ///< learn gamma
  std::string name;
};

/// Keras's GroupNormalization: the channels along `axis` are split into `groups` groups of
/// consecutive channels, and each example is normalised per group by the mean and (biased)
/// variance over the group's channels and every other non-batch axis; then y * gamma + beta,
/// gamma and beta [channels]. groups 1 normalises each example as a whole, groups -1 (as many
/// groups as channels) is instance normalization. The same in training and inference; a mask
/// passes through unused, as in Keras. ValueError naming the layer and the input shape for
/// channels not divisible by groups or fewer channels than groups; ValueError at construction
/// for groups 0 or < -1 and a non-positive epsilon.
class GroupNormalization : public Layer {
 public:
  explicit GroupNormalization(GroupNormalizationOptions options = {});

  void build(const Shape& input_shape) override;
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;

  const Variable& gamma() const { return gamma_; }
  const Variable& beta() const { return beta_; }
  /// The number of groups once built (groups -1 resolved to the channels), else the option.
  std::int64_t groups() const { return groups_; }

 private:
  GroupNormalizationOptions options_;
  std::int64_t axis_ = 0;    // non-negative, fixed at build
  std::int64_t groups_ = 0;  // resolved at build
  Shape param_shape_;        // x's rank, 1 except channels along axis_ (gamma and beta broadcast so)
  Variable gamma_, beta_;
};

/// Keras's UnitNormalization: each example scaled to unit L2 norm over `axis` (one or several
/// axes, negative counts from the end; the batch axis may be one, as in Keras):
/// x / max(sqrt(sum(x^2)), 1e-12), which is Keras's x * min(rsqrt(sum(x^2)), 1e12), so an
/// all-zero vector stays zero and its gradient is 1e12 times the output gradient, as Keras's.
/// No weights; a mask passes through. Integer and bool inputs give float32 (Keras refuses
/// them). ValueError for an empty `axis` (Keras's [] reduces over nothing), an axis out of
/// range for the input, or one given twice.
class UnitNormalization : public Layer {
 public:
  explicit UnitNormalization(std::vector<std::int64_t> axis = {-1}, std::string name = "");

  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;

  const std::vector<std::int64_t>& axis() const { return axis_; }

 private:
  std::vector<std::int64_t> axis_;
};

struct EmbeddingOptions {
  Initializer embeddings_initializer = initializers::random_uniform;
  Regularizer embeddings_regularizer, activity_regularizer;
  /// Index 0 is padding: the output's mask (compute_mask) is indices != 0, so the layers after
  /// it in a model skip the padded steps (Keras's mask_zero; input_dim still counts index 0).
  bool mask_zero = false;
  std::string name;
};

/// Keras's Embedding: integer indices [...] (int32 or int64, in [0, input_dim); floats are
/// truncated to integers, as Keras casts them) -> their rows of embeddings [input_dim,
/// output_dim]: [..., output_dim]. An index out of range is an IndexError naming the layer:
/// at once on the CPU; on a CUDA device at the next read of a value (check_later: the lookup
/// does not wait for the device). The gradient adds into the rows used (duplicates accumulate).
class Embedding : public Layer {
 public:
  Embedding(std::int64_t input_dim, std::int64_t output_dim, EmbeddingOptions options = {});

  void build(const Shape& input_shape) override;
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  /// With mask_zero, indices != 0 (bool, the indices' shape); else none.
  Tensor compute_mask(const Tensor& x, const Tensor& mask) const override;

  const Variable& embeddings() const { return embeddings_; }

 private:
  std::int64_t input_dim_, output_dim_;
  EmbeddingOptions options_;
  Variable embeddings_;
};

/// Keras's Masking: a step of x [batch, time, features] whose features all equal mask_value is
/// padding. The output is x with those steps zeroed, and its mask (compute_mask) is
/// any(x != mask_value) over the last axis, [batch, time], for the layers after it in a model.
class Masking : public Layer {
 public:
  explicit Masking(double mask_value = 0.0, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  Tensor compute_mask(const Tensor& x, const Tensor& mask) const override;
  double mask_value() const { return mask_value_; }

 private:
  double mask_value_;
};

/// Mean (GlobalAveragePooling2D) or max (GlobalMaxPooling2D) over the spatial axes of
/// [batch, h, w, c]: [batch, c], or [batch, 1, 1, c] with keepdims.
class GlobalPooling2D : public Layer {
 public:
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;

 protected:
  GlobalPooling2D(std::string class_name, bool max, bool keepdims, std::string name);

 private:
  bool max_, keepdims_;
};

class GlobalAveragePooling2D : public GlobalPooling2D {
 public:
  explicit GlobalAveragePooling2D(bool keepdims = false, std::string name = "")
      : GlobalPooling2D("GlobalAveragePooling2D", false, keepdims, std::move(name)) {}
};

class GlobalMaxPooling2D : public GlobalPooling2D {
 public:
  explicit GlobalMaxPooling2D(bool keepdims = false, std::string name = "")
      : GlobalPooling2D("GlobalMaxPooling2D", true, keepdims, std::move(name)) {}
};

/// [batch, ...] -> [batch, target_shape...]; one entry of target_shape may be -1 (inferred).
/// A view where the input's strides allow, else a copy.
class Reshape : public Layer {
 public:
  explicit Reshape(Shape target_shape, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;

 private:
  Shape target_shape_;
};

/// x * scale + offset (Keras's Rescaling, e.g. 1 / 255 for pixels); integer inputs give float32.
class Rescaling : public Layer {
 public:
  explicit Rescaling(double scale, double offset = 0, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  /// The input's shape.
  Shape compute_output_shape(const Shape& input_shape) const override { return input_shape; }

 private:
  double scale_, offset_;
};

/// leaky_relu(x, negative_slope); Keras's layer defaults to 0.3 (its function to 0.2).
class LeakyReLU : public Layer {
 public:
  explicit LeakyReLU(double negative_slope = 0.3, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  /// The input's shape.
  Shape compute_output_shape(const Shape& input_shape) const override { return input_shape; }

 private:
  double negative_slope_;
};

/// elu(x, alpha).
class ELU : public Layer {
 public:
  explicit ELU(double alpha = 1.0, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  /// The input's shape.
  Shape compute_output_shape(const Shape& input_shape) const override { return input_shape; }

 private:
  double alpha_;
};

/// softmax(x, axis).
class Softmax : public Layer {
 public:
  explicit Softmax(std::int64_t axis = -1, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  /// The input's shape.
  Shape compute_output_shape(const Shape& input_shape) const override { return input_shape; }
  /// Keras 3's masked softmax: the mask broadcasts against the inputs by NumPy's rule
  /// (ValueError otherwise; an attention mask, not a [batch, time] sequence mask on
  /// [batch, time, classes] unless time == classes, as in Keras); masked positions get
  /// probability 0, a fully masked row is all zeros.
  Tensor call_masked(const Tensor& x, const Tensor& mask, bool training) override;

 private:
  std::int64_t axis_;
};

/// Keras's PReLU: x > 0 ? x : alpha * x with alpha learned, one per element of an example
/// (shape input_shape[1:]), or shared along `shared_axes` (1-based, as Keras: {1, 2} shares
/// alpha over height and width of [batch, h, w, c]).
class PReLU : public Layer {
 public:
  explicit PReLU(Initializer alpha_initializer = initializers::zeros, std::vector<std::int64_t> shared_axes = {},
                 std::string name = "");

  void build(const Shape& input_shape) override;
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;

  const Variable& alpha() const { return alpha_; }

 private:
  Shape alpha_shape(const Shape& input_shape) const;
  Initializer alpha_initializer_;
  std::vector<std::int64_t> shared_axes_;
  Variable alpha_;
};

/// Max (MaxPooling1D) or mean (AveragePooling1D) over windows of pool_size steps of
/// [batch, steps, c]; strides 0 is the pool size. A window's max gradient is split among tied
/// maxima (MaxPooling2D sends it to the first). Same padding: the padded steps never win the
/// max and do not count in the mean (TensorFlow's rule).
class Pooling1D : public Layer {
 public:
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;

 protected:
  Pooling1D(std::string class_name, bool max, std::int64_t pool_size, PoolingOptions options);

 private:
  bool max_;
  std::int64_t pool_size_;
  PoolingOptions options_;
};

class MaxPooling1D : public Pooling1D {
 public:
  explicit MaxPooling1D(std::int64_t pool_size = 2, PoolingOptions options = {})
      : Pooling1D("MaxPooling1D", true, pool_size, std::move(options)) {}
};

class AveragePooling1D : public Pooling1D {
 public:
  explicit AveragePooling1D(std::int64_t pool_size = 2, PoolingOptions options = {})
      : Pooling1D("AveragePooling1D", false, pool_size, std::move(options)) {}
};

/// Mean or max over the steps of [batch, steps, c]: [batch, c] ([batch, 1, c] with keepdims).
class GlobalPooling1D : public Layer {
 public:
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  /// The average over the real steps of a mask [batch, steps] (Keras 3; a row without any
  /// gives NaN, 0 / 0, as Keras); the max ignores the mask (as Keras: it does not support
  /// masking).
  Tensor call_masked(const Tensor& x, const Tensor& mask, bool training) override;
  /// None: the steps are pooled away.
  Tensor compute_mask(const Tensor& x, const Tensor& mask) const override;

 protected:
  GlobalPooling1D(std::string class_name, bool max, bool keepdims, std::string name);

 private:
  bool max_, keepdims_;
};

class GlobalAveragePooling1D : public GlobalPooling1D {
 public:
  explicit GlobalAveragePooling1D(bool keepdims = false, std::string name = "")
      : GlobalPooling1D("GlobalAveragePooling1D", false, keepdims, std::move(name)) {}
};

class GlobalMaxPooling1D : public GlobalPooling1D {
 public:
  explicit GlobalMaxPooling1D(bool keepdims = false, std::string name = "")
      : GlobalPooling1D("GlobalMaxPooling1D", true, keepdims, std::move(name)) {}
};

struct RecurrentOptions {
  bool use_bias = true;
  /// The whole output sequence [batch, time, units], else the last output [batch, units].
  bool return_sequences = false;
  /// Run over the time steps in reverse (the sequence returned is in the order processed).
  bool go_backwards = false;
  Initializer kernel_initializer = initializers::glorot_uniform;
  Initializer recurrent_initializer = initializers::orthogonal;
  Initializer bias_initializer = initializers::zeros;
  /// Penalties on the kernel, the recurrent kernel, the bias and the output (see DenseOptions).
  Regularizer kernel_regularizer, recurrent_regularizer, bias_regularizer, activity_regularizer;
  /// LSTM and GRU's gates.
  Activation recurrent_activation = Activation::Sigmoid;
  /// LSTM: the forget gate's bias starts at 1 (Jozefowicz et al.), the rest from bias_initializer.
  bool unit_forget_bias = true;
  /// GRU: the reset gate applies after the recurrent matmul, with a separate recurrent bias
  /// (Keras's default, cuDNN's form; bias [2, 3 units]); false: before it (bias [3 units]).
  bool reset_after = true;
  /// Fraction of the inputs dropped in training, in [0, 1): one mask [batch, features] per call,
  /// the same at every step, drawn from the layer's generator (so a seed gives the same masks).
  /// As Keras 3: one mask for all gates, or one per gate when recurrent_dropout is set too
  /// (LSTM and GRU; Keras's implementation 1). Identity in inference. Unlike Keras, a rate
  /// outside [0, 1) throws ValueError (Keras clips it), and the masks are tapeflow's random
  /// numbers (the same on every device for a seed), not Keras's.
  double dropout = 0;
  /// Fraction of the recurrent state dropped in training, in [0, 1): one mask [batch, units]
  /// per call (per gate for LSTM and GRU), applied to h before each recurrent matmul; the state
  /// carried to the next step is not dropped (Keras's semantics, Gal and Ghahramani's).
  double recurrent_dropout = 0;
  /// With a mask, a masked step outputs zeros instead of repeating the previous output (Keras's
  /// zero_output_for_mask; off by default as in Keras; Bidirectional turns it on for
  /// return_sequences, as Keras does). The state is carried over a masked step either way.
  bool zero_output_for_mask = false;
  /// Keras's stateful: a call given no initial states starts from the final states of the
  /// previous call (zeros at the first call and after reset_states()), so a long sequence can
  /// be fed in consecutive pieces of the same batch size. The states carried over are constants:
  /// gradients stop at the boundary of a call (truncated BPTT, as in Keras). With a mask, the
  /// output repeated at masked steps restarts from zeros at each call, as in Keras.
  bool stateful = false;
  std::string name;
};

/// What Recurrent::call_with_state returns: the layer's output, and its final states in Keras's
/// order (h; for an LSTM h then c), each [batch, units].
struct RecurrentResult {
  Tensor output;
  std::vector<Tensor> states;
};

/// Base of the recurrent layers: inputs [batch, time, features] -> [batch, units] (the last
/// output) or [batch, time, units] (return_sequences). x @ kernel for every step is one matmul;
/// then each step adds h @ recurrent_kernel, so the tape differentiates through time (BPTT).
/// The state starts at zeros (or the previous call's final states if stateful), or at the
/// initial_state given to call_with_state, which also returns the final states (Keras's
/// initial_state and return_state). Weights: kernel
/// [features, gates * units], recurrent_kernel [units, gates * units], bias [gates * units]
/// (GRU with reset_after: [2, gates * units]), the gates in Keras's order, so Keras's weights
/// load as they are. Masking: a model passes the mask of an Embedding with mask_zero or of a
/// Masking layer (call_masked); call_with_state and layer(x, mask) take one too.
class Recurrent : public Layer {
 public:
  void build(const Shape& input_shape) override;
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  /// With the mask of the steps (see call_with_state): in a model, the mask an Embedding with
  /// mask_zero or a Masking layer made.
  Tensor call_masked(const Tensor& x, const Tensor& mask, bool training) override;
  /// The mask with return_sequences, else none.
  Tensor compute_mask(const Tensor& x, const Tensor& mask) const override;

  /// Runs the layer as operator() does (building and naming it on the first call, errors
  /// prefixed with its name) from `initial_state` (empty: zeros, or the states kept by a
  /// stateful layer; else num_states() tensors
  /// [batch, units], h then c, in any float dtype, on the input's device; gradients flow into
  /// them) and returns the output and the final states. `mask` [batch, time], bool or numeric
  /// (nonzero = a real step), optional: at a masked step the states keep their values and the
  /// output repeats the previous one (zeros before the first real step, and at every masked
  /// step with zero_output_for_mask), as Keras does. The last output of a fully masked row is
  /// zeros; its final states are the initial ones.
  RecurrentResult call_with_state(const Tensor& x, const std::vector<Tensor>& initial_state = {},
                                  bool training = false, const Tensor& mask = {});

  /// stateful: the states the next call starts from (h, then c for an LSTM), each [batch,
  /// units]; empty before the first call and after reset_states().
  const std::vector<Tensor>& states() const { return states_; }
  /// stateful: the next call starts from zeros again (and may change the batch size).
  void reset_states() { states_.clear(); }

  std::int64_t units() const { return units_; }
  /// How many states the layer carries: 1 (h), or 2 for an LSTM (h, c).
  virtual int num_states() const { return 1; }
  const Variable& kernel() const { return kernel_; }
  const Variable& recurrent_kernel() const { return recurrent_kernel_; }
  const Variable& bias() const { return bias_; }
  const RecurrentOptions& options() const { return options_; }
  /// A new, unbuilt, unnamed layer of the same class and settings running the other way
  /// (go_backwards flipped): Bidirectional's backward layer.
  virtual std::shared_ptr<Recurrent> reversed_copy() const = 0;

 protected:
  Recurrent(std::string class_name, std::int64_t units, int gates, Activation activation, RecurrentOptions options);
  /// One step: xw [batch, gates * units] is x_t @ kernel (+ the input bias); `state` holds h
  /// (and the LSTM's c), replaced by the new state. rec_mask: the recurrent dropout masks
  /// [batch, units] (one per gate, or one for SimpleRNN), empty when there is none. Returns
  /// the step's output.
  virtual Tensor step(const Tensor& xw, std::vector<Tensor>& state, const std::vector<Tensor>& rec_mask) const = 0;
  /// The bias's initial value.
  virtual Tensor initial_bias(const Shape& shape, Generator& gen) const;
  virtual Shape bias_shape() const;
  /// Columns [k * units, (k + 1) * units) of a [batch, gates * units] tensor.
  Tensor gate(const Tensor& t, int k) const;
  /// h @ recurrent_kernel's gates [first, last): [batch, (last - first) * units]; with
  /// recurrent dropout masks, gate k multiplies h by its mask (rec_mask[k], or the only one).
  Tensor recurrent_matmul(const Tensor& h, int first, int last, const std::vector<Tensor>& rec_mask) const;

  std::int64_t units_;
  int gates_;
  Activation activation_;
  RecurrentOptions options_;
  Variable kernel_, recurrent_kernel_, bias_;

 private:
  friend class Bidirectional;  // sets zero_output_for_mask on its sublayers, as Keras does
  std::vector<Tensor> states_;  // stateful: the last call's final states, gradients stopped
  Tensor run(const Tensor& x, bool training, const std::vector<Tensor>& initial_state, const Tensor& mask,
             std::vector<Tensor>& final_state);
  /// Dropout masks [batch, n] of `rate`: `count` of them (one per gate, or one).
  std::vector<Tensor> dropout_masks(std::int64_t batch, std::int64_t n, double rate, int count, DType dtype,
                                    Device device);
};

/// h = activation(x_t @ kernel + h @ recurrent_kernel + bias) (Keras's SimpleRNN; tanh by default).
class SimpleRNN : public Recurrent {
 public:
  explicit SimpleRNN(std::int64_t units, Activation activation = Activation::Tanh, RecurrentOptions options = {});
  SimpleRNN(std::int64_t units, const std::string& activation, RecurrentOptions options = {})
      : SimpleRNN(units, activation_from_name(activation), std::move(options)) {}
  std::shared_ptr<Recurrent> reversed_copy() const override;

 protected:
  Tensor step(const Tensor& xw, std::vector<Tensor>& state, const std::vector<Tensor>& rec_mask) const override;
};

/// Keras's LSTM, gates i, f, c, o: z = x_t @ kernel + h @ recurrent_kernel + bias;
/// i, f, o = recurrent_activation(z_i, z_f, z_o); c = f c + i activation(z_c); h = o activation(c).
class LSTM : public Recurrent {
 public:
  explicit LSTM(std::int64_t units, Activation activation = Activation::Tanh, RecurrentOptions options = {});
  LSTM(std::int64_t units, const std::string& activation, RecurrentOptions options = {})
      : LSTM(units, activation_from_name(activation), std::move(options)) {}
  std::shared_ptr<Recurrent> reversed_copy() const override;
  int num_states() const override { return 2; }

 protected:
  Tensor step(const Tensor& xw, std::vector<Tensor>& state, const std::vector<Tensor>& rec_mask) const override;
  Tensor initial_bias(const Shape& shape, Generator& gen) const override;
};

/// Keras's GRU, gates z, r, h: z, r = recurrent_activation(x_z + h U_z, x_r + h U_r);
/// with reset_after h~ = activation(x_h + r (h U_h + b_rec_h)), else activation(x_h + (r h) U_h);
/// h = z h + (1 - z) h~.
class GRU : public Recurrent {
 public:
  explicit GRU(std::int64_t units, Activation activation = Activation::Tanh, RecurrentOptions options = {});
  GRU(std::int64_t units, const std::string& activation, RecurrentOptions options = {})
      : GRU(units, activation_from_name(activation), std::move(options)) {}
  std::shared_ptr<Recurrent> reversed_copy() const override;

 protected:
  Tensor step(const Tensor& xw, std::vector<Tensor>& state, const std::vector<Tensor>& rec_mask) const override;
  Shape bias_shape() const override;
};

/// How Bidirectional joins its two outputs: concatenated on the last axis (Keras's default),
/// summed, multiplied or averaged.
enum class MergeMode { Concat, Sum, Mul, Ave };

/// Keras's Bidirectional: the recurrent layer given runs forward, and a copy of it
/// (reversed_copy()) backward; with return_sequences the backward outputs are put back in time
/// order before the merge. The two are sublayers named "forward_<layer>" and
/// "backward_<layer>" (weights "bidirectional/forward_lstm/kernel", ...); the layer must not be
/// built yet (ValueError). With return_sequences both set zero_output_for_mask, as in Keras.
class Bidirectional : public Layer {
 public:
  explicit Bidirectional(std::shared_ptr<Recurrent> layer, MergeMode merge_mode = MergeMode::Concat,
                         std::string name = "");
  /// Builds both directions from `input_shape` (Keras's: the time axis may be unknown).
  void build(const Shape& input_shape) override;
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  /// operator() with a mask [batch, time] (see Recurrent::call_with_state), given to both
  /// directions in time order (the backward layer reads it backwards with its input).
  Tensor call_with_mask(const Tensor& x, const Tensor& mask, bool training = false);
  Tensor call_masked(const Tensor& x, const Tensor& mask, bool training) override;
  /// The mask with return_sequences, else none.
  Tensor compute_mask(const Tensor& x, const Tensor& mask) const override;

  const std::shared_ptr<Recurrent>& forward_layer() const { return forward_; }
  const std::shared_ptr<Recurrent>& backward_layer() const { return backward_; }

 private:
  MergeMode merge_mode_;
  std::shared_ptr<Recurrent> forward_, backward_;
  Tensor run(const Tensor& x, const Tensor& mask, bool training);
};

// ================================================================ core layers
// (core_layers.cpp) Keras 3's Activation, Identity, Permute, RepeatVector, TimeDistributed,
// the noise and activity-regularization layers, the 1-D upsampling, padding and cropping
// layers and the Normalization and CategoryEncoding preprocessing layers, as functions of public
// ops.

/// Keras's Activation layer: activate(x, activation) for any shape. Named ActivationLayer here
/// because Activation is the enum every layer takes; its class name and default name are
/// Keras's ("Activation", "activation").
class ActivationLayer : public Layer {
 public:
  explicit ActivationLayer(Activation activation, std::string name = "");
  /// By Keras name (activation_from_name; ValueError for an unknown one).
  explicit ActivationLayer(const std::string& activation, std::string name = "")
      : ActivationLayer(activation_from_name(activation), std::move(name)) {}
  Tensor call(const Tensor& x, bool training) override;
  /// The input's shape.
  Shape compute_output_shape(const Shape& input_shape) const override { return input_shape; }
  Activation activation() const { return activation_; }

 private:
  Activation activation_;
};

/// Keras's Identity: returns its input.
class Identity : public Layer {
 public:
  explicit Identity(std::string name = "") : Layer("Identity", std::move(name)) { set_supports_masking(true); }
  Tensor call(const Tensor& x, bool training) override;
  /// The input's shape.
  Shape compute_output_shape(const Shape& input_shape) const override { return input_shape; }
};

/// Keras's Permute: the axes after the batch reordered by `dims`, 1-based as in Keras
/// (Permute({2, 1}) swaps the two axes of [batch, a, b] -> [batch, b, a]); a view. ValueError
/// unless dims is a permutation of 1..n; ShapeError for an input whose rank is not n + 1.
class Permute : public Layer {
 public:
  explicit Permute(std::vector<std::int64_t> dims, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  const std::vector<std::int64_t>& dims() const { return dims_; }

 private:
  std::vector<std::int64_t> dims_;
};

/// Keras's RepeatVector: [batch, features] -> [batch, n, features], each row repeated n times.
/// ValueError for n < 1; ShapeError for an input that is not [batch, features].
class RepeatVector : public Layer {
 public:
  explicit RepeatVector(std::int64_t n, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;

 private:
  std::int64_t n_;
};

/// Keras's TimeDistributed: applies `layer` to every time step of x [batch, time, ...] by
/// merging the batch and time axes ([batch * time, ...]), calling the layer once, and splitting
/// them again: [batch, time, ...layer's output without its batch axis]. The layer is a tracked
/// sublayer, so its weights are "time_distributed/dense/kernel", ... (Keras's names). For layers
/// that treat each example alone this is Keras 3.15's result; Keras 3.15 calls the layer once
/// per step instead, so a layer that mixes a batch (BatchNormalization in training) sees
/// batch * time examples here but `batch` per step there, and an activity regularizer of the
/// layer counts here (divided by batch * time) where Keras 3.15 skips it. ShapeError for an
/// input of rank < 3. A mask [batch, time] passes on to the next layer; the wrapped layer does
/// not see it (Keras gives each step's mask to a layer whose call takes one).
class TimeDistributed : public Layer {
 public:
  explicit TimeDistributed(std::shared_ptr<Layer> layer, std::string name = "");
  /// A copy of `layer`: TimeDistributed(Dense(8)).
  template <class L, class = std::enable_if_t<std::is_base_of_v<Layer, L>>>
  explicit TimeDistributed(L layer, std::string name = "")
      : TimeDistributed(std::make_shared<L>(std::move(layer)), std::move(name)) {}
  /// Builds the wrapped layer from one step's shape (Keras's: batch and time may be unknown).
  void build(const Shape& input_shape) override;
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  const std::shared_ptr<Layer>& layer() const { return layer_; }

 private:
  std::shared_ptr<Layer> layer_;
};

/// Keras's GaussianNoise: in training x + N(0, stddev) noise from the layer's generator (so a
/// seed gives the same noise on every device); the identity in inference. stddev in [0, 1], as
/// Keras requires (ValueError otherwise).
class GaussianNoise : public Layer {
 public:
  explicit GaussianNoise(double stddev, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  /// The input's shape.
  Shape compute_output_shape(const Shape& input_shape) const override { return input_shape; }
  double stddev() const { return stddev_; }

 private:
  double stddev_;
};

/// Keras's GaussianDropout: in training x * N(1, sqrt(rate / (1 - rate))) noise from the
/// layer's generator; the identity in inference. rate in [0, 1) (ValueError otherwise; Keras
/// accepts 1 and then divides by zero).
class GaussianDropout : public Layer {
 public:
  explicit GaussianDropout(double rate, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  /// The input's shape.
  Shape compute_output_shape(const Shape& input_shape) const override { return input_shape; }
  double rate() const { return rate_; }

 private:
  double rate_;
};

/// Keras's SpatialDropout1D and SpatialDropout2D (channels last): in training, whole channels
/// of an example are zeroed with probability `rate` (one draw per [batch, channel], the noise
/// shape [batch, 1, channels] or [batch, 1, 1, channels]) and the rest scaled by
/// 1 / (1 - rate); the identity in inference. rate in [0, 1) (ValueError otherwise); ShapeError
/// for an input of the wrong rank (3 or 4).
class SpatialDropout : public Layer {
 public:
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  double rate() const { return rate_; }

 protected:
  SpatialDropout(std::string class_name, std::int64_t rank, double rate, std::string name);

 private:
  std::int64_t rank_;
  double rate_;
};

class SpatialDropout1D : public SpatialDropout {
 public:
  explicit SpatialDropout1D(double rate, std::string name = "")
      : SpatialDropout("SpatialDropout1D", 3, rate, std::move(name)) {}
};

class SpatialDropout2D : public SpatialDropout {
 public:
  explicit SpatialDropout2D(double rate, std::string name = "")
      : SpatialDropout("SpatialDropout2D", 4, rate, std::move(name)) {}
};

/// Keras's ActivityRegularization: returns its input and adds the penalty
/// (l1 * sum(|x|) + l2 * sum(x^2)) / batch size to losses(), as Keras 3 divides every activity
/// penalty by the batch size. Factors finite and >= 0 (ValueError).
class ActivityRegularization : public Layer {
 public:
  explicit ActivityRegularization(double l1 = 0, double l2 = 0, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  /// The input's shape.
  Shape compute_output_shape(const Shape& input_shape) const override { return input_shape; }
};

/// Keras's UpSampling1D: every step of x [batch, steps, c] repeated `size` times ->
/// [batch, steps * size, c]. ValueError for a size below 1; ShapeError for an input that is not
/// [batch, steps, c].
class UpSampling1D : public Layer {
 public:
  explicit UpSampling1D(std::int64_t size = 2, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;

 private:
  std::int64_t size_;
};

/// Steps added (ZeroPadding1D) or removed (Cropping1D) before and after a sequence, Keras's
/// (left, right).
using Edges1D = std::pair<std::int64_t, std::int64_t>;

/// Keras's ZeroPadding1D: zeros around the steps of x [batch, steps, c] -> [batch, left + steps
/// + right, c]. ZeroPadding1D(1) (Keras's default) pads both ends. ValueError for a negative
/// padding; ShapeError for an input that is not [batch, steps, c].
class ZeroPadding1D : public Layer {
 public:
  explicit ZeroPadding1D(std::int64_t padding = 1, std::string name = "")
      : ZeroPadding1D(Edges1D{padding, padding}, std::move(name)) {}
  explicit ZeroPadding1D(Edges1D padding, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;

 private:
  Edges1D padding_;
};

/// Keras's Cropping1D: x [batch, steps, c] without its first `left` and last `right` steps (a
/// view) -> [batch, steps - left - right, c]; Keras's default crops (1, 1). ValueError for a
/// negative crop or one that leaves no step; ShapeError for an input that is not [batch, steps, c].
class Cropping1D : public Layer {
 public:
  explicit Cropping1D(Edges1D cropping = {1, 1}, std::string name = "");
  explicit Cropping1D(std::int64_t cropping, std::string name = "")
      : Cropping1D(Edges1D{cropping, cropping}, std::move(name)) {}
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;

 private:
  Edges1D cropping_;
};

struct NormalizationOptions {
  /// The axes kept (each has its own mean and variance; negative counts from the end); the
  /// statistics are over every other axis. Empty: one mean and variance over all axes
  /// (Keras's axis=None).
  std::vector<std::int64_t> axis = {-1};
  /// Fixed statistics instead of adapt(): both or neither (ValueError), of one shape, of rank
  /// <= axis.size(), broadcast against the kept axes from the last one (a scalar to all).
  Tensor mean, variance;
  /// Undo the normalisation: mean + x * max(sqrt(variance), 1e-7).
  bool invert = false;
  std::string name;
};

/// Keras 3's Normalization preprocessing layer: (x - mean) / max(sqrt(variance), 1e-7) (Keras's
/// epsilon), integer inputs as float32. Without fixed statistics the layer has the
/// non-trainable weights mean and variance (the kept axes' shape; zeros and ones until
/// adapt()) and count (a scalar Keras keeps and never updates). ValueError for an axis outside
/// the input's rank.
class Normalization : public Layer {
 public:
  explicit Normalization(NormalizationOptions options = {});

  /// Sets mean and variance to the mean and (biased) variance of `data` over every axis but the
  /// kept ones (Keras's adapt of an array), building the layer from data's shape if needed.
  /// ValueError with fixed statistics or data whose kept axes differ from the built shape.
  void adapt(const Tensor& data);

  void build(const Shape& input_shape) override;
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;

  /// The statistics, of the input's rank (1 but on the kept axes); undefined before build.
  Tensor mean() const;
  Tensor variance() const;

 private:
  NormalizationOptions options_;
  Shape build_shape_;
  std::vector<std::int64_t> keep_, reduce_;  // sorted, non-negative
  Shape broadcast_shape_;                     // the input's rank, 1 except on the kept axes
  Variable adapt_mean_, adapt_variance_, count_;
  Tensor mean_, variance_;  // fixed statistics, broadcast_shape_
};

/// CategoryEncoding's output_mode.
enum class CategoryOutput { OneHot, MultiHot, Count };

/// Keras 3's CategoryEncoding: integer tokens in [0, num_tokens) (floats truncated) -> float32.
/// one_hot: [..., num_tokens] (a last axis of size 1 is dropped first); multi_hot: 1 for every
/// token present, count: how many times, both over axis 1 (axis 0 of a rank-1 input, one
/// sample), as Keras reduces: [batch, n] -> [batch, num_tokens]. Unlike Keras, whose TensorFlow
/// backend ignores some out-of-range tokens and fails on others, a token outside
/// [0, num_tokens) is an IndexError naming the layer.
class CategoryEncoding : public Layer {
 public:
  /// output_mode: "one_hot", "multi_hot" (Keras's default; "binary" is the same) or "count";
  /// ValueError for another, or for num_tokens < 1.
  explicit CategoryEncoding(std::int64_t num_tokens, const std::string& output_mode = "multi_hot",
                            std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  CategoryOutput output_mode() const { return mode_; }

 private:
  std::int64_t num_tokens_;
  CategoryOutput mode_;
};

// ================================================================ image augmentation
// (augmentation.cpp) Keras 3's random image preprocessing layers. Inputs are images
// [batch, height, width, channels] of a floating dtype; each layer is the identity in inference
// and in training draws one random transform per image on the host from its generator (so a seed
// gives the same output on every device), then applies it with tensor ops (differentiable with
// respect to the images).

/// How an affine augmentation reads a point outside the image (TensorFlow's
/// ImageProjectiveTransformV3, which Keras's affine_transform calls): Reflect mirrors about the
/// edge, repeating it (dcba|abcd|dcba); Wrap tiles the image; Constant reads fill_value; Nearest
/// repeats the edge pixel.
enum class FillMode { Reflect, Wrap, Constant, Nearest };
/// Bilinear mixes the four neighbours of a point; Nearest takes the closest pixel.
enum class Interpolation { Bilinear, Nearest };

/// Keras's affine_transform: out[b, y, x] = images[b] read at ((a0 x + a1 y + a2) / k,
/// (b0 x + b1 y + b2) / k), k = c0 x + c1 y + 1, one transform {a0, a1, a2, b0, b1, b2, c0, c1}
/// per image (output coordinates to input coordinates, in pixels). The gather indices and
/// weights are computed on the host; the images may live on any device.
Tensor affine_transform(const Tensor& images, const std::vector<std::array<float, 8>>& transforms,
                        Interpolation interpolation = Interpolation::Bilinear,
                        FillMode fill_mode = FillMode::Constant, double fill_value = 0);

/// A range of a random factor, as Keras's factor=f (Factor(f): [-|f|, |f|]) or
/// factor=(a, b) (Factor{a, b}: [min(a, b), max(a, b)]).
struct Factor {
  Factor(double f);  // implicit: a bare number, as in Keras
  Factor(double a, double b);
  double lower, upper;
  bool pair;             // given as (a, b)
  double first, second;  // the numbers given (second = first for a bare number)
};

/// Options of the affine augmentations: Keras's fill_mode ("reflect", the default, "wrap",
/// "constant", "nearest"), interpolation ("bilinear", "nearest"), fill_value (for "constant").
struct AugmentOptions {
  std::string fill_mode = "reflect";
  std::string interpolation = "bilinear";
  double fill_value = 0;
  std::string name;
};

/// Flips each image left-right ("horizontal"), upside down ("vertical") or both
/// ("horizontal_and_vertical", Keras's default), each axis with probability 0.5.
class RandomFlip : public Layer {
 public:
  explicit RandomFlip(const std::string& mode = "horizontal_and_vertical", std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;
  bool horizontal() const { return horizontal_; }
  bool vertical() const { return vertical_; }

 private:
  bool horizontal_ = false, vertical_ = false;
};

/// The state RandomRotation, RandomZoom and RandomTranslation share: the parsed options and
/// the application of per-image transforms.
class AffineAugmentation : public Layer {
 public:
  FillMode fill_mode() const { return fill_mode_; }
  Interpolation interpolation() const { return interpolation_; }
  double fill_value() const { return fill_value_; }
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;

 protected:
  AffineAugmentation(std::string class_name, const AugmentOptions& options);
  /// One transform per image of a batch [batch, height, width], drawn from generator().
  virtual std::vector<std::array<float, 8>> draw(std::int64_t batch, std::int64_t height, std::int64_t width) = 0;

 private:
  FillMode fill_mode_;
  Interpolation interpolation_;
  double fill_value_;
};

/// Rotates each image about its centre by an angle drawn uniformly from
/// [lower, upper] * 2 pi (counter-clockwise for positive angles, as Keras). Factors in [-1, 1].
class RandomRotation : public AffineAugmentation {
 public:
  explicit RandomRotation(Factor factor, AugmentOptions options = {});
  const Factor& factor() const { return factor_; }

 protected:
  std::vector<std::array<float, 8>> draw(std::int64_t batch, std::int64_t height, std::int64_t width) override;

 private:
  Factor factor_;
};

/// Zooms each image about its centre: the height is scaled by 1 + a draw from height_factor's
/// range (positive zooms out, negative zooms in), the width by 1 + a draw from width_factor's,
/// or without width_factor by the same draw (keeping the aspect ratio). Factors in (-1, 1].
class RandomZoom : public AffineAugmentation {
 public:
  explicit RandomZoom(Factor height_factor, std::optional<Factor> width_factor = std::nullopt,
                      AugmentOptions options = {});

 protected:
  std::vector<std::array<float, 8>> draw(std::int64_t batch, std::int64_t height, std::int64_t width) override;

 private:
  Factor height_factor_;
  std::optional<Factor> width_factor_;
};

/// Shifts each image by a draw from height_factor's range times the height (down for positive)
/// and one from width_factor's times the width (right for positive). Factors in [-1, 1].
class RandomTranslation : public AffineAugmentation {
 public:
  RandomTranslation(Factor height_factor, Factor width_factor, AugmentOptions options = {});

 protected:
  std::vector<std::array<float, 8>> draw(std::int64_t batch, std::int64_t height, std::int64_t width) override;

 private:
  Factor height_factor_, width_factor_;
};

/// Keras 3's RandomContrast: per image a factor c drawn uniformly from [1 - lower, 1 + upper],
/// then (x - mean) * c + mean with the mean per image and channel, clipped to value_range.
/// Factors in [0, 1]; as Keras 3.15, a single factor f gives [1, 1 + f] (its lower bound is
/// max(-f, 0)).
class RandomContrast : public Layer {
 public:
  explicit RandomContrast(Factor factor, std::pair<double, double> value_range = {0, 255}, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;

 private:
  double lower_, upper_;
  std::pair<double, double> value_range_;
};

}  // namespace layers
}  // namespace tapeflow
