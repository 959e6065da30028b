#pragma once
/// Keras's functional API: symbolic inputs (Input), layers applied to them to record a graph,
/// and a Functional model that runs the graph; the merge layers (Add, Subtract, Multiply,
/// Average, Maximum, Minimum, Concatenate) that join branches, and Lambda.
///
///     KerasTensor inputs = Input({28, 28, 1});
///     KerasTensor x = apply_layer(layers::Conv2D(32, 3, "relu"), inputs);
///     KerasTensor y = apply_layer(layers::Conv2D(32, 1, "relu"), x);
///     x = apply_layer(layers::Add(), {x, y});                // a residual connection
///     x = apply_layer(layers::GlobalAveragePooling2D(), x);
///     KerasTensor outputs = apply_layer(layers::Dense(10, "softmax"), x);
///     Functional model(inputs, outputs);
///     model.compile("rmsprop", "sparse_categorical_crossentropy", {"accuracy"});
///
/// Recording the graph builds, names and seeds no layer; each layer output's shape is known
/// while it is recorded where the layer can compute it (Layer::compute_output_shape), as Keras's
/// `x.shape`, and a layer applied to a shape it refuses throws there. The model names, seeds and
/// builds its layers when it is made, as Keras's keras.Model(inputs, outputs) does, so summary(),
/// weights() and count_params() work at once (see Functional).
#include <array>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "tapeflow/layers.hpp"
#include "tapeflow/model.hpp"

namespace tapeflow {

namespace detail {
struct FunctionalNode;
}

/// A symbolic tensor of the functional API: an Input, or the output of a layer applied to
/// symbolic tensors. It holds no data; it names a value that a Functional model computes.
class KerasTensor {
 public:
  KerasTensor() = default;
  bool defined() const { return node_ != nullptr; }
  /// The shape, the batch axis as -1 (None), -1 for any other axis of unknown size. An Input's
  /// is known from the start; a layer output's is known at once where the layer can compute it
  /// from its inputs' shapes (Layer::compute_output_shape, as Keras: `x.shape().back()` of a
  /// Dense(64) output is 64), and then stays so (an axis unknown when recorded stays -1 after
  /// runs); otherwise it is taken when a model containing it builds the layer or first runs
  /// (empty before).
  Shape shape() const;
  /// The Input's dtype; a layer output's once a model containing it has run or built the layer
  /// on zeros (float32 before).
  DType dtype() const;
  /// An Input's name, or the name of the layer that computes this tensor (empty until a model
  /// containing the layer is made).
  std::string name() const;
  /// True for a tensor made by Input().
  bool is_input() const;

  const std::shared_ptr<detail::FunctionalNode>& node() const { return node_; }
  explicit KerasTensor(std::shared_ptr<detail::FunctionalNode> node) : node_(std::move(node)) {}

 private:
  std::shared_ptr<detail::FunctionalNode> node_;
};

namespace detail {
/// One node of the graph: an Input (no layer), or a layer applied to the node's inputs (one
/// for an ordinary layer, a list for a merge layer).
struct FunctionalNode {
  std::shared_ptr<layers::Layer> layer;
  bool list_input = false;  // a merge layer's call on a list
  std::vector<KerasTensor> inputs;
  Shape shape;  // an Input's declared shape (batch -1); a layer output's from compute_output_shape, or the last run
  DType dtype = kFloat32;
  std::string name;  // an Input's name
  std::uint64_t serial = 0;  // calls in the order they were made (numbers a shared layer's calls)
};
}  // namespace detail

/// Keras's keras.Input: a symbolic input of `shape` (without the batch axis; -1 for an axis of
/// any size, as None) and `dtype`. Inputs of another dtype are cast to it when the model runs.
KerasTensor Input(const Shape& shape, DType dtype = kFloat32, std::string name = "");

namespace layers {

/// Base of the layers that join several tensors of the same batch (Keras's Merge): called on a
/// list, eagerly or symbolically. Inputs of lower rank get axes of size 1 inserted after the
/// batch axis, then broadcast against the others (Keras's rule); the batch sizes must agree.
class Merge : public Layer {
 public:
  using Layer::operator();
  Tensor operator()(const std::vector<Tensor>& inputs, bool training = false);
  /// Records the layer applied to a list of symbolic inputs (see Layer::operator() on a
  /// KerasTensor: the layer must be owned by a std::shared_ptr, or go through apply_layer()).
  /// The output's shape is compute_output_shape's when every input's shape is known.
  KerasTensor operator()(const std::vector<KerasTensor>& inputs) &;
  KerasTensor operator()(const std::vector<KerasTensor>& inputs) && = delete;

  /// A merge layer takes a list: ValueError.
  Tensor call(const Tensor& x, bool training) override;
  /// Joins the list (at least one tensor, same batch size; ValueError otherwise).
  virtual Tensor merge(const std::vector<Tensor>& inputs) = 0;
  /// Layer::compute_output_shape for the list call: the output's shape for inputs of
  /// `input_shapes` (each with its batch axis; -1 unknown), -1 where unknown, or empty where the
  /// layer cannot tell; the error merge() would raise for inputs it refuses. The default: unknown
  /// until the layer is built, then merge() run once on float32 zeros of a batch of one.
  virtual Shape compute_output_shape(const std::vector<Shape>& input_shapes) const;
  using Layer::compute_output_shape;

  /// With each input's mask (undefined: none; `masks` as long as `inputs`, or empty): runs
  /// merge_masked(). A Functional model calls this with the masks its layers computed.
  Tensor operator()(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks, bool training = false);
  /// What both operator()s on a list run: merge() by default, which uses neither the masks
  /// (empty, or one per input) nor `training`. A list layer that uses them
  /// (MultiHeadAttention: its masks and dropout) overrides this.
  virtual Tensor merge_masked(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks, bool training);
  /// The output's mask (Keras's Merge.compute_mask): none when no input has one (or the layer
  /// does not support masking: Dot), else the AND of those given.
  virtual Tensor compute_mask(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks) const;
  using Layer::compute_mask;

 protected:
  Merge(std::string class_name, std::string name);
  /// ValueError for an empty list or one with fewer than `min` tensors, or mixed batch sizes;
  /// ShapeError for a scalar.
  void check_list(const std::vector<Tensor>& inputs, std::size_t min = 1) const;
  void check_list(const std::vector<Shape>& shapes, std::size_t min = 1) const;
  /// The inputs with axes of size 1 inserted after the batch axis up to the highest rank.
  std::vector<Tensor> same_rank(const std::vector<Tensor>& inputs) const;
  /// ShapeError naming the layer and every input's shape unless they broadcast together.
  void check_broadcast(const std::vector<Tensor>& inputs) const;
  /// The three checks above and same_rank(): the inputs of an element-wise merge.
  std::vector<Tensor> elementwise_inputs(const std::vector<Tensor>& inputs, std::size_t min = 1) const;
  /// The shape of an element-wise merge of inputs of `input_shapes` (-1 unknown), after the
  /// checks of elementwise_inputs().
  Shape elementwise_shape(const std::vector<Shape>& input_shapes, std::size_t min = 1) const;
};

/// The sum of the inputs.
class Add : public Merge {
 public:
  explicit Add(std::string name = "") : Merge("Add", std::move(name)) {}
  Tensor merge(const std::vector<Tensor>& inputs) override;
  Shape compute_output_shape(const std::vector<Shape>& input_shapes) const override {
    return elementwise_shape(input_shapes);
  }
  using Merge::compute_output_shape;
};

/// inputs[0] - inputs[1]: exactly two inputs (ValueError otherwise).
class Subtract : public Merge {
 public:
  explicit Subtract(std::string name = "") : Merge("Subtract", std::move(name)) {}
  Tensor merge(const std::vector<Tensor>& inputs) override;
  Shape compute_output_shape(const std::vector<Shape>& input_shapes) const override;
  using Merge::compute_output_shape;
};

/// The element-wise product of the inputs.
class Multiply : public Merge {
 public:
  explicit Multiply(std::string name = "") : Merge("Multiply", std::move(name)) {}
  Tensor merge(const std::vector<Tensor>& inputs) override;
  Shape compute_output_shape(const std::vector<Shape>& input_shapes) const override {
    return elementwise_shape(input_shapes);
  }
  using Merge::compute_output_shape;
};

/// The mean of the inputs.
class Average : public Merge {
 public:
  explicit Average(std::string name = "") : Merge("Average", std::move(name)) {}
  Tensor merge(const std::vector<Tensor>& inputs) override;
  Shape compute_output_shape(const std::vector<Shape>& input_shapes) const override {
    return elementwise_shape(input_shapes);
  }
  using Merge::compute_output_shape;
};

/// The element-wise maximum of the inputs (the gradient goes to the first maximum, NaN wins).
class Maximum : public Merge {
 public:
  explicit Maximum(std::string name = "") : Merge("Maximum", std::move(name)) {}
  Tensor merge(const std::vector<Tensor>& inputs) override;
  Shape compute_output_shape(const std::vector<Shape>& input_shapes) const override {
    return elementwise_shape(input_shapes);
  }
  using Merge::compute_output_shape;
};

/// The element-wise minimum of the inputs.
class Minimum : public Merge {
 public:
  explicit Minimum(std::string name = "") : Merge("Minimum", std::move(name)) {}
  Tensor merge(const std::vector<Tensor>& inputs) override;
  Shape compute_output_shape(const std::vector<Shape>& input_shapes) const override {
    return elementwise_shape(input_shapes);
  }
  using Merge::compute_output_shape;
};

/// The inputs joined along `axis` (default the last; the batch axis 0 is refused, ValueError);
/// all other axes must agree (ShapeError naming the shapes).
class Concatenate : public Merge {
 public:
  explicit Concatenate(std::int64_t axis = -1, std::string name = "")
      : Merge("Concatenate", std::move(name)), axis_(axis) {}
  Tensor merge(const std::vector<Tensor>& inputs) override;
  Shape compute_output_shape(const std::vector<Shape>& input_shapes) const override;
  using Merge::compute_output_shape;
  /// Keras's: each mask (all true where an input has none) widened to its input's shape,
  /// concatenated along the axis, then any() over the last axis.
  Tensor compute_mask(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks) const override;
  using Merge::compute_mask;
  std::int64_t axis() const { return axis_; }

 private:
  std::int64_t axis_;
};

/// Keras's Dot: per example, the dot product of the two inputs along axes[0] of the first and
/// axes[1] of the second (batch axis excluded from the count: axes 1 and up). Two [b, d] give
/// [b, 1]; [b, n, d] and [b, m, d] with axes (2, 2) give [b, n, m]; a [b, d] against a
/// [b, d, m] gives [b, m]. With normalize, each input is first L2-normalised along its axis
/// (x / sqrt(max(sum(x^2), 1e-12)), Keras's), so the result is the cosine similarity. Inputs of
/// rank 2 or 3 (ValueError otherwise); the contracted sizes must agree (ShapeError).
struct DotAxes {
  std::int64_t first, second;
};
class Dot : public Merge {
 public:
  explicit Dot(std::int64_t axes, bool normalize = false, std::string name = "")
      : Dot(DotAxes{axes, axes}, normalize, std::move(name)) {}
  /// Dot(DotAxes{1, 2}): axis 1 of the first input against axis 2 of the second (Keras's
  /// axes=(1, 2); a plain Dot({1, 2}) would read as Dot(1, normalize = true), so it does not
  /// compile).
  explicit Dot(DotAxes axes, bool normalize = false, std::string name = "");
  Tensor merge(const std::vector<Tensor>& inputs) override;
  Shape compute_output_shape(const std::vector<Shape>& input_shapes) const override;
  using Merge::compute_output_shape;
  /// None, as Keras.
  Tensor compute_mask(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks) const override;
  using Merge::compute_mask;

 private:
  /// The checks of merge() on the inputs' shapes; each input's contracted axis.
  std::array<int, 2> contracted_axes(const std::vector<Shape>& input_shapes) const;
  std::int64_t axes_[2];
  bool normalize_;
};

/// Keras's Lambda: any function of public ops as a layer without weights (its ops are
/// recorded by the tape as usual). Keras's output_shape: a function of the input's shape (batch
/// axis included, -1 unknown) giving the output's, for a symbolic output's shape before a model
/// has run; without one, Layer::compute_output_shape's default.
class Lambda : public Layer {
 public:
  explicit Lambda(std::function<Tensor(const Tensor&)> fn, std::string name = "",
                  std::function<Shape(const Shape&)> output_shape = {});
  Tensor call(const Tensor& x, bool training) override;
  Shape compute_output_shape(const Shape& input_shape) const override;

 private:
  std::function<Tensor(const Tensor&)> fn_;
  std::function<Shape(const Shape&)> output_shape_fn_;
};

/// A model (Sequential, Functional, a subclass) used as a layer of another model, as Keras's
/// models are layers: `x = apply_layer(layers::ModelLayer(augmentation), inputs)`. The model's
/// layers become this layer's sublayers (trained, saved and frozen with it: set_trainable(false)
/// freezes a pretrained base); an unbuilt model's layers are named "<this layer>/<layer>" at
/// the first call (a Functional model is built when made: its layers keep their names, as
/// Keras's "dense/kernel" inside another model). Wrap a finished model: layers added to it later are not tracked. One input
/// and one output (the model's call()); ValueError for a null model or one without layers.
class ModelLayer : public Layer {
 public:
  explicit ModelLayer(std::shared_ptr<Model> model, std::string name = "");
  Tensor call(const Tensor& x, bool training) override;
  /// A Sequential model takes the mask into its first layer; another model ignores it.
  Tensor call_masked(const Tensor& x, const Tensor& mask, bool training) override;
  /// The model's output mask from the last call (Model::output_mask).
  Tensor compute_mask(const Tensor& x, const Tensor& mask) const override;
  const std::shared_ptr<Model>& model() const { return model_; }

 private:
  std::shared_ptr<Model> model_;
  Tensor last_mask_;  // the model's output mask at the last call
};

}  // namespace layers

namespace detail {
template <class L>
std::shared_ptr<layers::Layer> share_layer(L&& layer) {
  if constexpr (is_layer_arg<std::decay_t<L>>::value && !std::is_base_of_v<layers::Layer, std::decay_t<L>>) {
    return layer;  // already a shared_ptr
  } else {
    return std::make_shared<std::decay_t<L>>(std::forward<L>(layer));
  }
}
}  // namespace detail

/// Applies a layer to a symbolic input: `layer` by value (moved into the graph) or as a
/// shared_ptr (shared with the caller; applying it again shares its weights). Keras's
/// `layer(x)`; named apply_layer, not apply, because std::apply is found by argument-dependent
/// lookup for every layer.
template <class L, class = std::enable_if_t<detail::is_layer_arg_v<L>>>
KerasTensor apply_layer(L&& layer, const KerasTensor& x) {
  auto shared = detail::share_layer(std::forward<L>(layer));
  return (*shared)(x);
}
/// Applies a merge layer (Add, Concatenate, ...) to a list of symbolic inputs.
template <class L, class = std::enable_if_t<detail::is_layer_arg_v<L>>>
KerasTensor apply_layer(L&& layer, const std::vector<KerasTensor>& xs) {
  auto shared = detail::share_layer(std::forward<L>(layer));
  auto* merge = dynamic_cast<layers::Merge*>(shared.get());
  if (merge == nullptr) {
    throw ValueError(shared->class_name() + ": takes one input, not a list of " + std::to_string(xs.size()) +
                     " (only the merge layers, Add, Concatenate, ..., take a list)");
  }
  return (*merge)(xs);
}

/// A model defined by a graph of layers from its symbolic inputs to its outputs (Keras's
/// keras.Model(inputs, outputs)). The graph is checked when the model is made: every output
/// must be computable from the inputs given (ValueError "graph disconnected" naming the input
/// that is missing), and the inputs must be distinct Input()s. layers() lists each layer once
/// (a shared layer too) in the order the graph runs them.
///
/// It is an ordinary Model: fit, evaluate, predict, summary, save_weights. With several inputs
/// or outputs, it runs on vectors of tensors (operator()(std::vector), and the vector forms of
/// fit, evaluate and predict), and compile() takes a loss per output (OutputLoss).
///
/// The model is built when it is made, as Keras's: it names its layers ("dense", "dense_1"),
/// seeds them from its seed, and builds each from its input's symbolic shape (Keras's
/// layer.build(shape), Layer::build_from_shape), so built(), summary(), weights() and
/// count_params() work at once. Axes of unknown size (-1) are fine where no weight depends on
/// them: Input({-1}) into Embedding, Input({-1, -1, 3}) into Conv2D, Dense on Input({-1, 8}),
/// Bidirectional(LSTM) on [-1, -1, 16]. A layer whose sublayers are built by its call
/// (MultiHeadAttention, ModelLayer, a custom layer) is run once on zeros (a batch of one) when
/// its input's axes are all known. Where a layer cannot be built that way (a weight would need
/// an unknown axis: Dense on Input({-1}); a sublayer on unknown axes; its own error), it and the
/// layers after it stay unbuilt until the first call (build() raises meanwhile).
/// The weights drawn when the model is made are provisional: set_seed() or set_device() before
/// the first run (and before any weight is assigned) draws them again from the new seed or on
/// the new device, so `Functional m(in, out); m.set_seed(5);` has the weights seed 5 gives.
/// Seed, rename or place a layer itself (Layer::set_seed, set_name, set_device) before the
/// model is made: a built layer keeps its weights, name and device.
class Functional : public Model {
 public:
  Functional(std::vector<KerasTensor> inputs, std::vector<KerasTensor> outputs, std::string name = "functional");
  Functional(const KerasTensor& input, const KerasTensor& output, std::string name = "functional")
      : Functional(std::vector<KerasTensor>{input}, std::vector<KerasTensor>{output}, std::move(name)) {}

  /// One input, one output (ValueError otherwise).
  Tensor call(const Tensor& x, bool training) override;
  /// Every input in the order given to the constructor; the outputs in theirs. Each input must
  /// have the Input's rank and sizes (ShapeError naming the input), and is cast to its dtype.
  std::vector<Tensor> call_multi(const std::vector<Tensor>& xs, bool training) override;
  std::size_t num_inputs() const override { return inputs_.size(); }
  std::size_t num_outputs() const override { return outputs_.size(); }
  /// The names of the layers computing the outputs (known once the model has run or its
  /// layers were named): Keras's output names.
  std::vector<std::string> output_names() const override;

  std::vector<LayerPtr> layers() const override { return layers_; }
  /// The symbolic output of the first call of the layer named `name` (or the layer itself) in
  /// the graph, for a new model over the same layers and weights (Keras's
  /// model.get_layer(name).output): features = Functional(model.inputs(), {model.layer_output("conv2d")}).
  /// The layers are named when the model is made; ValueError naming the layers for another name.
  KerasTensor layer_output(const std::string& name) const;
  KerasTensor layer_output(const LayerPtr& layer) const;
  const std::vector<KerasTensor>& inputs() const { return inputs_; }
  const std::vector<KerasTensor>& outputs() const { return outputs_; }
  /// Nothing when the model is built (as it is once made, where it can be). Otherwise builds
  /// every layer by running a batch of one example of zeros through the graph, which needs every
  /// Input's axes known (ShapeError naming the input otherwise) and raises the error of a layer
  /// that refuses the zeros.
  void build();
  using Model::build;
  /// Model::set_seed; weights drawn when the model was made, not run or assigned since, are
  /// drawn again from the new seed.
  void set_seed(std::uint64_t seed) override;
  /// Model::set_device; weights built when the model was made, not run or assigned since, are
  /// made again on `device`.
  void set_device(Device device) override;
  /// Keras 3's summary of a functional model, as it prints it on a stream that is not UTF-8
  /// (rich's ASCII table): a row per Input ("input_layer (InputLayer)", unnamed Inputs numbered
  /// in the model's order) and per layer (a shared layer once), deepest first; a fourth column,
  /// "Connected to", lists what each layer's calls read ("dense[1][0]": the second call of
  /// dense made, counting the calls in this model where Keras counts every graph's) unless the
  /// graph is a plain chain. Keras's default width: 88 characters with three
  /// columns, 108 with four; long cells wrap at spaces, and a word too long for its column ends
  /// in "…". Available as soon as the model is made where Keras's is (see Functional); a model
  /// left unbuilt (a weight needs an axis of unknown size) raises ValueError until build() or
  /// a first run.
  void summary(std::ostream& os = std::cout) const override;

 private:
  // Builds what it can of the graph from the symbolic shapes (see the class comment); true
  // when every node was built and its output shape is known.
  bool build_graph();
  bool build_nodes();
  // Drops the provisional weights (the construction's, not run or assigned since) so the next
  // build_graph() makes them anew; true if there were any. Forgets them in any case.
  bool release_provisional();

  std::vector<KerasTensor> inputs_, outputs_;
  std::vector<std::shared_ptr<detail::FunctionalNode>> order_;  // the nodes, inputs excluded, in run order
  std::vector<LayerPtr> layers_;
  // the layers (sublayers too) that build_graph() built, and the versions of their weights
  // then; emptied by the first run
  std::vector<LayerPtr> provisional_;
  std::vector<std::pair<Variable, std::uint64_t>> provisional_versions_;
};

/// Options of model_to_dot and plot_model (Keras's keyword arguments of the same names).
struct PlotOptions {
  bool show_shapes = false;  // each layer's input and output shapes ("?" where unknown)
  bool show_dtype = false;   // each layer's output dtype
  bool show_layer_names = true;
  std::string rankdir = "TB";  // "TB" (top to bottom), "BT", "LR" or "RL"
  int dpi = 200;
  bool show_trainable = false;  // "Trainable" or "Non-trainable" on the layers with weights
};

/// Keras's keras.utils.model_to_dot: the model's graph as Graphviz DOT text, with Keras's
/// nodes (an HTML-like table: "name (Class)", then the shapes, dtype and trainability asked
/// for) and edges, graph attributes rankdir, concentrate, dpi and splines="ortho". A Functional
/// model gives a node per Input and per layer (a shared layer once, its shapes "?" as Keras's)
/// and an edge per tensor read; a Sequential one a chain of its layers, shapes known once built.
/// A Functional model names its layers when it is made, a Sequential one by its first run;
/// before that, a node shows the class's default name.
/// ValueError for a rankdir other than TB, BT, LR, RL.
std::string model_to_dot(const Model& model, const PlotOptions& options = {});

/// Keras's keras.utils.plot_model, but the file holds the DOT text (tapeflow draws no images:
/// `dot -Tpng model.dot -o model.png` does, with Graphviz). to_file must end in ".dot" or ".gv"
/// (ValueError otherwise, naming that command); IOError when it cannot be written.
void plot_model(const Model& model, const std::string& to_file = "model.dot", const PlotOptions& options = {});

}  // namespace tapeflow
