// Keras's functional API: symbolic tensors, the merge layers, Lambda and the Functional model.
#include "tapeflow/functional.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "shape_rules.hpp"
#include "summary_text.hpp"
#include "tapeflow/observer.hpp"

namespace tapeflow {

namespace {

// "(None, 28, 28, 1)": a shape whose batch axis is None, as Keras prints it.
std::string none_shape(const Shape& s) {
  std::string out = "(";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + (s[i] < 0 ? std::string("None") : std::to_string(s[i]));
  return out + (s.size() == 1 ? ",)" : ")");
}

std::string shapes_of(const std::vector<Shape>& shapes) {
  std::string out;
  for (const auto& s : shapes) out += (out.empty() ? "" : ", ") + none_shape(s);
  return out;
}

std::vector<Shape> shapes(const std::vector<Tensor>& xs) {
  std::vector<Shape> out;
  out.reserve(xs.size());
  for (const auto& x : xs) out.push_back(x.shape());
  return out;
}

std::string shapes_of(const std::vector<Tensor>& xs) { return shapes_of(shapes(xs)); }

// The batch axis of a recorded output is None, whatever compute_output_shape put there.
Shape recorded_shape(Shape s) {
  if (!s.empty()) s[0] = -1;
  return s;
}

using layers::detail::label;

// An input's name in messages: its own, else its position.
std::string input_label(const KerasTensor& t, std::size_t index) {
  return t.name().empty() ? fmt::format("input {}", index) : fmt::format("input '{}'", t.name());
}

// A graph node for a call of `layer` (Keras's Node), numbered in the order calls are made.
std::shared_ptr<detail::FunctionalNode> call_node(std::shared_ptr<layers::Layer> layer) {
  static std::atomic<std::uint64_t> calls{0};
  auto node = std::make_shared<detail::FunctionalNode>();
  node->layer = std::move(layer);
  node->serial = ++calls;
  return node;
}

// The shared_ptr that owns `layer`, which a graph node keeps; ValueError for a layer not owned
// by one (on the stack, a member).
std::shared_ptr<layers::Layer> shared_self(layers::Layer& layer) {
  auto self = layer.weak_from_this().lock();
  if (!self) {
    throw ValueError(fmt::format(
        "{}: a layer joins a functional graph through a std::shared_ptr (the graph shares it): make it with "
        "std::make_shared, or pass it to apply_layer() by value",
        label(layer)));
  }
  return self;
}

}  // namespace

// ================================================================ KerasTensor, Input

Shape KerasTensor::shape() const { return node_ ? node_->shape : Shape{}; }
DType KerasTensor::dtype() const { return node_ ? node_->dtype : kFloat32; }
bool KerasTensor::is_input() const { return node_ && !node_->layer; }
std::string KerasTensor::name() const {
  if (!node_) return "";
  return node_->layer ? node_->layer->name() : node_->name;
}

KerasTensor Input(const Shape& shape, DType dtype, std::string name) {
  for (auto d : shape) {
    if (d < -1) {
      throw ValueError(fmt::format("Input: axis sizes must be non-negative or -1 (None), got {}", shape_str(shape)));
    }
  }
  auto node = std::make_shared<detail::FunctionalNode>();
  node->shape.push_back(-1);
  node->shape.insert(node->shape.end(), shape.begin(), shape.end());
  node->dtype = dtype;
  node->name = std::move(name);
  return KerasTensor(std::move(node));
}

namespace layers {

KerasTensor Layer::operator()(const KerasTensor& x) & {
  if (!x.defined()) throw ValueError(fmt::format("{}: the symbolic input is undefined", label(*this)));
  if (dynamic_cast<Merge*>(this) != nullptr) {
    throw ValueError(fmt::format("{}: a merge layer takes a list of inputs, got one", label(*this)));
  }
  auto self = shared_self(*this);
  // Keras: the output's shape at once, and the layer's error here for inputs it would refuse
  const Shape shape = x.shape().empty() ? Shape{} : recorded_shape(compute_output_shape(x.shape()));
  auto node = call_node(std::move(self));
  node->inputs = {x};
  node->shape = shape;
  return KerasTensor(std::move(node));
}

// ================================================================ merge layers

Tensor Merge::call(const Tensor&, bool) {
  throw ValueError(fmt::format("{}: a merge layer takes a list of inputs, got one tensor", label(*this)));
}

Tensor Merge::operator()(const std::vector<Tensor>& inputs, bool training) {
  if (inputs.empty()) throw ValueError(fmt::format("{}: a merge layer needs at least one input, got none", label(*this)));
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) throw ValueError(fmt::format("{}: input {} is undefined", label(*this), i));
  }
  return invoke(inputs[0].shape(), inputs[0].device(), [&] { return merge_masked(inputs, {}, training); });
}

Tensor Merge::operator()(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks, bool training) {
  const bool any_mask = std::any_of(masks.begin(), masks.end(), [](const Tensor& m) { return m.defined(); });
  if (!any_mask) return (*this)(inputs, training);
  if (masks.size() != inputs.size()) {
    throw ValueError(fmt::format("{}: {} masks for {} inputs", label(*this), masks.size(), inputs.size()));
  }
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) throw ValueError(fmt::format("{}: input {} is undefined", label(*this), i));
  }
  return invoke(inputs[0].shape(), inputs[0].device(), [&] { return merge_masked(inputs, masks, training); });
}

Merge::Merge(std::string class_name, std::string name) : Layer(std::move(class_name), std::move(name)) {
  set_supports_masking(true);  // Keras's merge layers pass the AND of the masks on
}

Tensor Merge::merge_masked(const std::vector<Tensor>& inputs, const std::vector<Tensor>&, bool) { return merge(inputs); }

namespace {
Tensor as_bool(const Tensor& m) { return m.dtype() == kBool ? m : m != 0.0; }
}  // namespace

Tensor Merge::compute_mask(const std::vector<Tensor>&, const std::vector<Tensor>& masks) const {
  if (!supports_masking()) return Tensor();
  Tensor out;
  for (const auto& m : masks) {
    if (m.defined()) out = out.defined() ? logical_and(out, as_bool(m)) : as_bool(m);
  }
  return out;
}

Tensor Concatenate::compute_mask(const std::vector<Tensor>& inputs, const std::vector<Tensor>& masks) const {
  if (std::none_of(masks.begin(), masks.end(), [](const Tensor& m) { return m.defined(); })) return Tensor();
  std::vector<Tensor> wide;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    const Tensor m = i < masks.size() ? masks[i] : Tensor();
    if (!m.defined()) {
      wide.push_back(ones(x.shape(), kBool, x.device()));
    } else {
      Tensor b = as_bool(m);
      while (b.rank() < x.rank()) b = b.expand_dims(-1);
      wide.push_back(b.broadcast_to(x.shape()));
    }
  }
  const Tensor joined = concat(wide, normalize_axis(axis_, inputs[0].rank(), "concatenate"));
  return sum(joined.astype(kInt32), {-1}) > 0;  // any over the last axis
}

KerasTensor Merge::operator()(const std::vector<KerasTensor>& inputs) & {
  if (inputs.empty()) throw ValueError(fmt::format("{}: a merge layer needs at least one input, got none", label(*this)));
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined()) throw ValueError(fmt::format("{}: symbolic input {} is undefined", label(*this), i));
  }
  const bool known = std::none_of(inputs.begin(), inputs.end(), [](const KerasTensor& t) { return t.shape().empty(); });
  std::vector<Shape> input_shapes;
  for (const auto& t : inputs) input_shapes.push_back(t.shape());
  auto self = shared_self(*this);
  const Shape shape = known ? recorded_shape(compute_output_shape(input_shapes)) : Shape{};
  auto node = call_node(std::move(self));
  node->list_input = true;
  node->inputs = inputs;
  node->shape = shape;
  return KerasTensor(std::move(node));
}

Shape Merge::compute_output_shape(const std::vector<Shape>& input_shapes) const {
  if (!built() || input_shapes.empty()) return {};
  for (const auto& s : input_shapes) {
    if (s.empty() || std::any_of(s.begin() + 1, s.end(), [](std::int64_t d) { return d < 0; })) return {};
  }
  return probe_output_shape(input_shapes[0][0], [&] {
    std::vector<Tensor> xs;
    for (Shape s : input_shapes) {
      s[0] = 1;
      xs.push_back(zeros(s, kFloat32, device()));
    }
    return const_cast<Merge&>(*this).merge_masked(xs, {}, false);
  });
}

void Merge::check_list(const std::vector<Tensor>& inputs, std::size_t min) const { check_list(shapes(inputs), min); }

void Merge::check_list(const std::vector<Shape>& input_shapes, std::size_t min) const {
  if (input_shapes.size() < min) {
    throw ValueError(fmt::format("{}: needs {} inputs, got {}: {}", label(*this), min, input_shapes.size(),
                                 shapes_of(input_shapes)));
  }
  for (const auto& s : input_shapes) {
    if (s.empty()) {
      throw ShapeError(
          fmt::format("{}: the inputs must have a batch axis, got {}", label(*this), shapes_of(input_shapes)));
    }
    if (layers::detail::differ(s[0], input_shapes[0][0])) {
      throw ValueError(fmt::format("{}: cannot merge tensors with different batch sizes: {}", label(*this),
                                   shapes_of(input_shapes)));
    }
  }
}

namespace {
// `s` with axes of size 1 inserted after the batch axis up to `rank` (Keras's rule).
Shape ranked(Shape s, std::size_t rank) {
  if (s.size() < rank) s.insert(s.begin() + 1, rank - s.size(), 1);
  return s;
}

std::size_t max_rank(const std::vector<Shape>& input_shapes) {
  std::size_t rank = 0;
  for (const auto& s : input_shapes) rank = std::max(rank, s.size());
  return rank;
}
}  // namespace

std::vector<Tensor> Merge::same_rank(const std::vector<Tensor>& inputs) const {
  const std::size_t rank = max_rank(shapes(inputs));
  std::vector<Tensor> out;
  out.reserve(inputs.size());
  for (const auto& x : inputs) out.push_back(x.shape().size() == rank ? x : x.reshape(ranked(x.shape(), rank)));
  return out;
}

namespace {
// The shape `same_rank` inputs broadcast to, an unknown (-1) axis taking a known size above 1;
// empty when two known sizes neither equal nor 1 meet.
Shape broadcast_of(const std::vector<Shape>& same_rank) {
  Shape shape = same_rank[0];
  for (std::size_t i = 1; i < same_rank.size(); ++i) {
    const Shape& s = same_rank[i];
    for (std::size_t a = 1; a < s.size(); ++a) {
      if (layers::detail::differ(shape[a], s[a]) && shape[a] != 1 && s[a] != 1) return {};
      if (shape[a] == 1 || (shape[a] < 0 && s[a] > 1)) shape[a] = s[a];
    }
  }
  return shape;
}
}  // namespace

void Merge::check_broadcast(const std::vector<Tensor>& inputs) const {
  if (broadcast_of(shapes(inputs)).empty()) {
    throw ShapeError(fmt::format("{}: inputs have incompatible shapes: {}", label(*this), shapes_of(inputs)));
  }
}

Shape Merge::elementwise_shape(const std::vector<Shape>& input_shapes, std::size_t min) const {
  check_list(input_shapes, min);
  std::vector<Shape> same;
  const std::size_t rank = max_rank(input_shapes);
  for (const auto& s : input_shapes) same.push_back(ranked(s, rank));
  Shape out = broadcast_of(same);
  if (out.empty()) {
    throw ShapeError(fmt::format("{}: inputs have incompatible shapes: {}", label(*this), shapes_of(same)));
  }
  return out;
}

namespace {
// inputs[0] f inputs[1] f ... (each step an op the tape records)
template <class F>
Tensor fold(const std::vector<Tensor>& xs, F&& f) {
  Tensor y = xs[0];
  for (std::size_t i = 1; i < xs.size(); ++i) y = f(y, xs[i]);
  return y;
}
}  // namespace

std::vector<Tensor> Merge::elementwise_inputs(const std::vector<Tensor>& inputs, std::size_t min) const {
  check_list(inputs, min);
  auto xs = same_rank(inputs);
  check_broadcast(xs);
  return xs;
}

Tensor Add::merge(const std::vector<Tensor>& inputs) {
  return fold(elementwise_inputs(inputs), [](const Tensor& a, const Tensor& b) { return a + b; });
}

namespace {
// ValueError unless a layer that takes two inputs (Subtract, Dot) got two.
void check_two(const layers::Layer& layer, const std::vector<Shape>& input_shapes) {
  if (input_shapes.size() != 2) {
    throw ValueError(fmt::format("{}: takes exactly 2 inputs, got {}: {}", label(layer), input_shapes.size(),
                                 shapes_of(input_shapes)));
  }
}
}  // namespace

Shape Subtract::compute_output_shape(const std::vector<Shape>& input_shapes) const {
  check_two(*this, input_shapes);
  return elementwise_shape(input_shapes, 2);
}

Tensor Subtract::merge(const std::vector<Tensor>& inputs) {
  check_two(*this, shapes(inputs));
  const auto xs = elementwise_inputs(inputs, 2);
  return xs[0] - xs[1];
}

Tensor Multiply::merge(const std::vector<Tensor>& inputs) {
  return fold(elementwise_inputs(inputs), [](const Tensor& a, const Tensor& b) { return a * b; });
}

Tensor Average::merge(const std::vector<Tensor>& inputs) {
  const Tensor y = fold(elementwise_inputs(inputs), [](const Tensor& a, const Tensor& b) { return a + b; });
  return inputs.size() == 1 ? y : y / static_cast<double>(inputs.size());
}

Tensor Maximum::merge(const std::vector<Tensor>& inputs) {
  return fold(elementwise_inputs(inputs), [](const Tensor& a, const Tensor& b) { return maximum(a, b); });
}

Tensor Minimum::merge(const std::vector<Tensor>& inputs) {
  return fold(elementwise_inputs(inputs), [](const Tensor& a, const Tensor& b) { return minimum(a, b); });
}

Shape Concatenate::compute_output_shape(const std::vector<Shape>& input_shapes) const {
  check_list(input_shapes);
  const Shape& first = input_shapes[0];
  for (const auto& s : input_shapes) {
    if (s.size() != first.size()) {
      throw ShapeError(
          fmt::format("{}: the inputs must have the same rank, got {}", label(*this), shapes_of(input_shapes)));
    }
  }
  const auto rank = static_cast<std::int64_t>(first.size());
  const int axis = normalize_axis(axis_, rank, "concatenate");
  if (axis == 0) throw ValueError(fmt::format("{}: cannot concatenate along the batch axis", label(*this)));
  Shape out = first;
  out[static_cast<std::size_t>(axis)] = 0;
  for (const auto& s : input_shapes) {
    for (std::size_t a = 1; a < s.size(); ++a) {
      if (a == static_cast<std::size_t>(axis)) {
        out[a] = out[a] < 0 || s[a] < 0 ? -1 : out[a] + s[a];
      } else if (layers::detail::differ(s[a], first[a])) {
        throw ShapeError(fmt::format("{}: the inputs must match in every axis but {}, got {}", label(*this), axis,
                                     shapes_of(input_shapes)));
      } else if (out[a] < 0) {
        out[a] = s[a];  // a known size where the first input's is unknown
      }
    }
  }
  return out;
}

Tensor Concatenate::merge(const std::vector<Tensor>& inputs) {
  compute_output_shape(shapes(inputs));  // its checks
  return concat(inputs, normalize_axis(axis_, inputs[0].rank(), "concatenate"));
}

Dot::Dot(DotAxes axes, bool normalize, std::string name)
    : Merge("Dot", std::move(name)), axes_{axes.first, axes.second}, normalize_(normalize) {}

Tensor Dot::compute_mask(const std::vector<Tensor>&, const std::vector<Tensor>&) const { return Tensor(); }

std::array<int, 2> Dot::contracted_axes(const std::vector<Shape>& input_shapes) const {
  check_two(*this, input_shapes);
  check_list(input_shapes, 2);
  std::array<int, 2> axes{};
  for (std::size_t i = 0; i < 2; ++i) {
    const auto rank = static_cast<std::int64_t>(input_shapes[i].size());
    if (rank != 2 && rank != 3) {
      throw ValueError(fmt::format("{}: inputs of rank 2 or 3 only, got {}", label(*this), shapes_of(input_shapes)));
    }
    const std::int64_t a = axes_[i] < 0 ? axes_[i] + rank : axes_[i];
    if (a < 1 || a >= rank) {
      throw ValueError(fmt::format("{}: axis {} of input {} is not a non-batch axis of {}", label(*this), axes_[i], i,
                                   none_shape(input_shapes[i])));
    }
    axes[i] = static_cast<int>(a);
  }
  const Shape &s0 = input_shapes[0], &s1 = input_shapes[1];
  if (layers::detail::differ(s0[static_cast<std::size_t>(axes[0])], s1[static_cast<std::size_t>(axes[1])])) {
    throw ShapeError(fmt::format("{}: the dotted axes differ in size: axis {} of {} and axis {} of {}", label(*this),
                                 axes[0], none_shape(s0), axes[1], none_shape(s1)));
  }
  return axes;
}

Shape Dot::compute_output_shape(const std::vector<Shape>& input_shapes) const {
  const std::array<int, 2> axes = contracted_axes(input_shapes);
  // [b] + the free axis of each input of rank 3 (the one not dotted); two [b, d] give [b, 1]
  Shape out = {input_shapes[0][0]};
  for (std::size_t i = 0; i < 2; ++i) {
    if (input_shapes[i].size() == 3) out.push_back(input_shapes[i][axes[i] == 1 ? 2 : 1]);
  }
  if (out.size() == 1) out.push_back(1);
  return out;
}

Tensor Dot::merge(const std::vector<Tensor>& inputs) {
  const std::array<int, 2> axes = contracted_axes(shapes(inputs));
  std::vector<Tensor> xs = inputs;
  if (normalize_) {
    for (int i = 0; i < 2; ++i) {
      const Tensor sq = sum(square(xs[i]), {axes[i]}, /*keepdims=*/true);
      xs[i] = xs[i] / sqrt(maximum(sq, 1e-12));
    }
  }
  // a: [b, x, k] (the dotted axis last), b: [b, k, y] (it first), then one batched matmul
  Tensor a = xs[0].rank() == 3 && axes[0] == 1 ? xs[0].transpose(1, 2) : xs[0];
  Tensor b = xs[1].rank() == 3 && axes[1] == 2 ? xs[1].transpose(1, 2) : xs[1];
  const bool a2 = a.rank() == 2, b2 = b.rank() == 2;
  if (a2 && b2) return sum(a * b, {1}, /*keepdims=*/true);
  if (a2) a = a.reshape({a.dim(0), 1, a.dim(1)});
  if (b2) b = b.reshape({b.dim(0), b.dim(1), 1});
  Tensor y = matmul(a, b);
  if (a2) y = y.reshape({y.dim(0), y.dim(2)});
  if (b2) y = y.reshape({y.dim(0), y.dim(1)});
  return y;
}

Lambda::Lambda(std::function<Tensor(const Tensor&)> fn, std::string name,
               std::function<Shape(const Shape&)> output_shape)
    : Layer("Lambda", std::move(name)), fn_(std::move(fn)), output_shape_fn_(std::move(output_shape)) {
  if (!fn_) throw ValueError("lambda: the function is empty");
}

Tensor Lambda::call(const Tensor& x, bool) { return fn_(x); }

Shape Lambda::compute_output_shape(const Shape& input_shape) const {
  return output_shape_fn_ ? output_shape_fn_(input_shape) : Layer::compute_output_shape(input_shape);
}

ModelLayer::ModelLayer(std::shared_ptr<Model> model, std::string name)
    : Layer("ModelLayer", name.empty() && model ? model->name() : std::move(name)), model_(std::move(model)) {
  if (!model_) throw ValueError("model_layer: the model is null");
  const auto ls = model_->layers();
  if (ls.empty()) throw ValueError(fmt::format("{}: the model has no layers", model_->name()));
  for (const auto& l : ls) track(l);
  set_supports_masking(true);
}

Tensor ModelLayer::call(const Tensor& x, bool training) { return call_masked(x, Tensor(), training); }

Tensor ModelLayer::call_masked(const Tensor& x, const Tensor& mask, bool training) {
  const Tensor y = (*model_)(x, mask, training);
  last_mask_ = model_->output_mask(y);
  return y;
}

Tensor ModelLayer::compute_mask(const Tensor&, const Tensor&) const { return last_mask_; }

}  // namespace layers

// ================================================================ Functional

Functional::Functional(std::vector<KerasTensor> inputs, std::vector<KerasTensor> outputs, std::string name)
    : Model(std::move(name)), inputs_(std::move(inputs)), outputs_(std::move(outputs)) {
  if (inputs_.empty()) throw ValueError(fmt::format("{}: a functional model needs at least one input", this->name()));
  if (outputs_.empty()) throw ValueError(fmt::format("{}: a functional model needs at least one output", this->name()));
  std::set<const detail::FunctionalNode*> given;
  for (std::size_t i = 0; i < inputs_.size(); ++i) {
    const auto& t = inputs_[i];
    if (!t.defined()) throw ValueError(fmt::format("{}: input {} is undefined", this->name(), i));
    if (!t.is_input()) {
      throw ValueError(fmt::format("{}: input {} is the output of layer '{}', not an Input()", this->name(), i,
                                   label(*t.node()->layer)));
    }
    if (!given.insert(t.node().get()).second) {
      throw ValueError(fmt::format("{}: {} is listed twice among the inputs", this->name(), input_label(t, i)));
    }
  }
  // depth-first from the outputs: a node runs after every node it reads (post-order)
  std::set<const detail::FunctionalNode*> placed;
  std::vector<std::pair<std::shared_ptr<detail::FunctionalNode>, std::size_t>> walk;  // node, next input
  for (std::size_t o = 0; o < outputs_.size(); ++o) {
    if (!outputs_[o].defined()) throw ValueError(fmt::format("{}: output {} is undefined", this->name(), o));
    walk.emplace_back(outputs_[o].node(), 0);
    while (!walk.empty()) {
      auto& [node, next] = walk.back();
      if (placed.count(node.get()) != 0) {
        walk.pop_back();
        continue;
      }
      if (!node->layer && given.count(node.get()) == 0) {
        const std::string input = node->name.empty() ? "an Input" : fmt::format("Input '{}'", node->name);
        const std::string reader = walk.size() > 1
                                       ? fmt::format("that layer '{}' reads", label(*walk[walk.size() - 2].first->layer))
                                       : std::string("given as an output");
        throw ValueError(fmt::format("{}: graph disconnected: {} of shape {} {} is not among the model's inputs",
                                     this->name(), input, none_shape(node->shape), reader));
      }
      if (next < node->inputs.size()) {
        auto in = node->inputs[next++].node();
        if (placed.count(in.get()) == 0) walk.emplace_back(std::move(in), 0);
        continue;
      }
      placed.insert(node.get());
      if (node->layer) order_.push_back(node);
      walk.pop_back();
    }
  }
  for (const auto& n : order_) {
    if (std::none_of(layers_.begin(), layers_.end(), [&](const LayerPtr& l) { return l == n->layer; })) {
      layers_.push_back(n->layer);
    }
  }
  build_graph();  // Keras's model is built when it is made
}

namespace {

using layers::detail::layer_tree;

// Set while a model builds its graph: the zero runs of a model used as a layer inside it are
// part of the build, not a first run that would keep that model's provisional weights.
thread_local int building_graph = 0;

bool known_axes(const Shape& s) {
  return std::all_of(s.begin() + (s.empty() ? 0 : 1), s.end(), [](std::int64_t d) { return d >= 0; });
}

}  // namespace

bool Functional::build_graph() {
  prepare_layers();
  std::vector<LayerPtr> unbuilt;
  for (const auto& l : layer_tree(layers_))
    if (!l->built()) unbuilt.push_back(l);
  const bool done = build_nodes();
  for (const auto& l : unbuilt) {
    if (!l->built()) continue;
    provisional_.push_back(l);
    for (const auto& w : l->weights()) provisional_versions_.emplace_back(w, w.version());
  }
  return done;
}

bool Functional::build_nodes() {
  NoRecording no_tape;
  struct Building {
    Building() { ++building_graph; }
    ~Building() { --building_graph; }
  } building;
  try {
    for (const auto& n : order_) {
      std::vector<Shape> in;
      for (const auto& t : n->inputs) {
        if (t.shape().empty()) return false;  // unknown: the run will tell
        in.push_back(t.shape());
      }
      layers::Layer& layer = *n->layer;
      auto* merge = n->list_input ? static_cast<layers::Merge*>(&layer) : nullptr;
      if (!layer.built()) {
        // Keras's layer.build(shape); a merge layer builds from its first input, as its call does
        layer.build_from_shape(in[0], device());
        const auto tree = layer_tree(layer.sublayers());
        if (std::any_of(tree.begin(), tree.end(), [](const LayerPtr& l) { return !l->built(); })) {
          // sublayers its call builds: run it once on zeros, where the shapes allow
          layers::detail_unbuild(layer);
          if (!std::all_of(in.begin(), in.end(), known_axes)) return false;
          std::vector<Tensor> xs;
          for (std::size_t i = 0; i < in.size(); ++i) {
            Shape one = in[i];
            one[0] = 1;
            xs.push_back(zeros(one, n->inputs[i].dtype(), device()));
          }
          n->dtype = (merge != nullptr ? (*merge)(xs, false) : layer(xs[0], false)).dtype();
        }
      }
      if (n->shape.empty()) {
        n->shape = recorded_shape(merge != nullptr ? merge->compute_output_shape(in) : layer.compute_output_shape(in[0]));
        if (n->shape.empty()) return false;
      }
    }
  } catch (const Error&) {
    return false;  // the layer's error comes again at the first call, or from build()
  }
  return true;
}

bool Functional::release_provisional() {
  const bool untouched = std::all_of(provisional_versions_.begin(), provisional_versions_.end(),
                                     [](const auto& wv) { return wv.first.version() == wv.second; });
  const bool release = untouched && !provisional_.empty();
  if (release) {
    for (const auto& l : provisional_) layers::detail_unbuild(*l);
    // a functional model used as a layer was built when it was made: its weights go too
    for (const auto& l : layer_tree(layers_)) {
      const auto* wrapper = dynamic_cast<const layers::ModelLayer*>(l.get());
      if (auto* inner = wrapper ? dynamic_cast<Functional*>(wrapper->model().get()) : nullptr) inner->release_provisional();
    }
  }
  provisional_.clear();
  provisional_versions_.clear();
  return release;
}

void Functional::set_seed(std::uint64_t seed) {
  const bool rebuild = release_provisional();
  Model::set_seed(seed);
  if (rebuild) build_graph();
}

void Functional::set_device(Device device) {
  const bool rebuild = release_provisional();
  try {
    Model::set_device(device);  // refuses a layer built elsewhere before the model was made
  } catch (...) {
    if (rebuild) build_graph();  // as it was, on the device it had
    throw;
  }
  if (rebuild) build_graph();
}

std::vector<Tensor> Functional::call_multi(const std::vector<Tensor>& xs, bool training) {
  // a run keeps the weights the model was made with: set_seed and set_device no longer redraw them
  if (building_graph == 0) {
    provisional_.clear();
    provisional_versions_.clear();
  }
  if (xs.size() != inputs_.size()) {
    throw ValueError(fmt::format("{}: expects {} input(s), got {}", name(), inputs_.size(), xs.size()));
  }
  std::unordered_map<const detail::FunctionalNode*, Tensor> values;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const auto& node = *inputs_[i].node();
    const Tensor& x = xs[i];
    if (!x.defined()) throw ValueError(fmt::format("{}: {} is undefined", name(), input_label(inputs_[i], i)));
    bool ok = x.rank() == static_cast<std::int64_t>(node.shape.size());
    for (std::size_t a = 1; ok && a < node.shape.size(); ++a) ok = node.shape[a] < 0 || node.shape[a] == x.shape()[a];
    if (!ok) {
      throw ShapeError(fmt::format("{}: {} expects shape {}, got {}", name(), input_label(inputs_[i], i),
                                   none_shape(node.shape), none_shape(x.shape())));
    }
    values[&node] = x.dtype() == node.dtype ? x : x.astype(node.dtype);
  }
  // how many reads each value still has to serve, so an intermediate is freed after its last
  std::unordered_map<const detail::FunctionalNode*, std::size_t> reads;
  for (const auto& n : order_)
    for (const auto& in : n->inputs) ++reads[in.node().get()];
  for (const auto& t : outputs_) ++reads[t.node().get()];
  // each value's mask (Keras's _keras_mask), where a layer computed one
  std::unordered_map<const detail::FunctionalNode*, Tensor> masks;
  auto read = [&](const KerasTensor& t, Tensor* mask) {
    const auto* key = t.node().get();
    Tensor v = values.at(key);
    const auto m = masks.find(key);
    *mask = m == masks.end() ? Tensor() : m->second;
    if (--reads[key] == 0) {
      values.erase(key);
      masks.erase(key);
    }
    return v;
  };
  for (const auto& n : order_) {
    Tensor y, y_mask;
    if (n->list_input) {
      std::vector<Tensor> args, arg_masks(n->inputs.size());
      args.reserve(n->inputs.size());
      for (std::size_t i = 0; i < n->inputs.size(); ++i) args.push_back(read(n->inputs[i], &arg_masks[i]));
      auto& merge = *static_cast<layers::Merge*>(n->layer.get());
      y = merge(args, arg_masks, training);
      y_mask = merge.compute_mask(args, arg_masks);
    } else {
      Tensor mask;
      const Tensor x = read(n->inputs[0], &mask);
      y = (*n->layer)(x, mask, training);
      y_mask = n->layer->compute_mask(x, mask);
    }
    // a shape known when recorded stays (its unknown axes None, as Keras's); one the layer could
    // not compute is taken from this run
    if (n->shape.empty()) {
      n->shape = y.shape();
      if (!n->shape.empty()) n->shape[0] = -1;
    }
    n->dtype = y.dtype();
    if (y_mask.defined()) masks[n.get()] = y_mask;
    values[n.get()] = std::move(y);
  }
  std::vector<Tensor> out;
  out.reserve(outputs_.size());
  for (const auto& t : outputs_) {
    Tensor mask;
    out.push_back(read(t, &mask));
    set_output_mask(out.back(), mask);
  }
  return out;
}

Tensor Functional::call(const Tensor& x, bool training) {
  if (inputs_.size() != 1 || outputs_.size() != 1) {
    throw ValueError(fmt::format("{}: has {} inputs and {} outputs; run it on a vector of tensors", name(),
                                 inputs_.size(), outputs_.size()));
  }
  return call_multi(std::vector<Tensor>{x}, training)[0];
}

KerasTensor Functional::layer_output(const LayerPtr& layer) const {
  for (const auto& n : order_) {
    if (n->layer == layer) return KerasTensor(n);
  }
  throw ValueError(fmt::format("{}: layer_output: layer '{}' is not in the model", name(),
                               layer ? label(*layer) : std::string("null")));
}

KerasTensor Functional::layer_output(const std::string& layer) const { return layer_output(get_layer(layer)); }

std::vector<std::string> Functional::output_names() const {
  std::vector<std::string> names;
  for (const auto& t : outputs_) names.push_back(t.name());
  return names;
}

void Functional::build() {
  if (built() || (build_graph() && built())) return;
  std::vector<Tensor> xs;
  for (std::size_t i = 0; i < inputs_.size(); ++i) {
    Shape one = inputs_[i].shape();
    one[0] = 1;
    if (std::any_of(one.begin(), one.end(), [](std::int64_t d) { return d < 0; })) {
      throw ShapeError(fmt::format("{}: build: {} has an axis of unknown size, {}; run the model on a batch instead",
                                   name(), input_label(inputs_[i], i), none_shape(inputs_[i].shape())));
    }
    xs.push_back(zeros(one, inputs_[i].dtype(), device()));
  }
  NoRecording no_tape;
  (*this)(xs, false);
}

// ================================================================ Functional::summary

namespace {

using Node = detail::FunctionalNode;

// The graph as Keras's summary and plot_model walk it: the operations (a layer with all its
// calls, or an Input) deepest first, each one's calls in the order they were made, and names.
struct GraphView {
  std::vector<const void*> ops;
  std::unordered_map<const void*, std::vector<const Node*>> calls;
  std::unordered_map<const Node*, std::size_t> call_index;
  std::unordered_map<const Node*, std::string> input_names;
  bool chain = true;  // Keras's "sequential-like" graph

  static const void* op_of(const Node* n) { return n->layer ? static_cast<const void*>(n->layer.get()) : n; }
  std::string name_of(const Node* n) const { return n->layer ? n->layer->name() : input_names.at(n); }
};

GraphView graph_view(const Functional& model) {
  GraphView g;
  auto op_of = &GraphView::op_of;
  // Keras's map_graph: the calls in post-order from the outputs, and each operation numbered
  // where the walk first meets it (before its inputs)
  std::vector<const Node*> post;
  std::unordered_map<const void*, std::ptrdiff_t> first_seen;
  std::set<const Node*> done;
  std::function<void(const Node*)> visit = [&](const Node* n) {
    if (done.count(n) != 0) return;
    first_seen.emplace(op_of(n), static_cast<std::ptrdiff_t>(first_seen.size()));
    for (const auto& in : n->inputs) visit(in.node().get());
    done.insert(n);
    post.push_back(n);
  };
  for (const auto& t : model.outputs()) visit(t.node().get());
  // An Input the outputs do not read still gets its row, first among the depth-0 ones (Keras's).
  for (const auto& t : model.inputs()) {
    if (done.count(t.node().get()) == 0) {
      first_seen.emplace(t.node().get(), -1);
      post.insert(post.begin(), t.node().get());
    }
  }
  // depth: the longest path to an output; a shared layer takes its deepest call's
  std::unordered_map<const Node*, int> node_depth;
  std::unordered_map<const void*, int> op_depth;
  for (auto it = post.rbegin(); it != post.rend(); ++it) {
    const auto [op, fresh] = op_depth.emplace(op_of(*it), 0);
    if (fresh) g.ops.push_back(op_of(*it));
    const int depth = std::max(node_depth[*it], op->second);
    op->second = node_depth[*it] = depth;
    for (const auto& in : (*it)->inputs) {
      int& d = node_depth[in.node().get()];
      d = std::max(d, depth + 1);
    }
  }
  std::stable_sort(g.ops.begin(), g.ops.end(), [&](const void* a, const void* b) {
    return op_depth[a] != op_depth[b] ? op_depth[a] > op_depth[b] : first_seen[a] < first_seen[b];
  });
  // each operation's calls in the order they were made: "dense[1][0]" is dense's second
  for (const Node* n : post) g.calls[op_of(n)].push_back(n);
  for (auto& [op, ns] : g.calls) {
    std::sort(ns.begin(), ns.end(), [](const Node* a, const Node* b) { return a->serial < b->serial; });
    for (std::size_t i = 0; i < ns.size(); ++i) g.call_index[ns[i]] = i;
  }
  // one call per depth, each reading one tensor, and no layer called twice
  std::map<int, int> per_depth;
  for (const auto& [n, d] : node_depth) g.chain = g.chain && ++per_depth[d] == 1 && n->inputs.size() <= 1;
  for (const auto& [op, ns] : g.calls) g.chain = g.chain && ns.size() == 1;

  // unnamed Inputs: input_layer, input_layer_1, ... in the model's order, skipping names taken
  std::set<std::string> taken;
  for (const auto& l : model.layers()) taken.insert(l->name());
  for (const auto& t : model.inputs()) taken.insert(t.node()->name);
  std::size_t k = 0;
  for (const auto& t : model.inputs()) {
    std::string name = t.node()->name;
    while (name.empty() || (t.node()->name.empty() && taken.count(name) != 0)) {
      name = k == 0 ? std::string("input_layer") : fmt::format("input_layer_{}", k);
      ++k;
    }
    g.input_names[t.node().get()] = name;
  }
  return g;
}

}  // namespace

void Functional::summary(std::ostream& os) const {
  if (!built()) {
    throw ValueError(fmt::format("{}: summary: the model is not built yet; call build() or run it on a batch", name()));
  }
  const GraphView g = graph_view(*this);
  const auto& calls = g.calls;
  const auto& call_index = g.call_index;
  const bool chain = g.chain;
  const auto& ops = g.ops;
  auto name_of = [&](const Node* n) { return g.name_of(n); };

  std::vector<std::vector<std::string>> rows = {{"Layer (type)", "Output Shape", "Param #", "Connected to"}};
  for (const void* op : ops) {
    const auto& ns = calls.at(op);
    const Node* last = ns.back();  // Keras shows the shape of a shared layer's last call
    std::string connected;
    for (const Node* n : ns) {
      for (const auto& in : n->inputs) {
        connected += fmt::format("{}{}[{}][0]", connected.empty() ? "" : ", ", name_of(in.node().get()),
                                 call_index.at(in.node().get()));
      }
    }
    rows.push_back({fmt::format("{} ({})", name_of(last), last->layer ? last->layer->class_name() : "InputLayer"),
                    last->shape.empty() ? std::string("?") : none_shape(last->shape),
                    last->layer ? detail::with_commas(last->layer->count_params()) : "0",
                    connected.empty() ? "-" : connected});
  }
  // Keras's line: 88 characters for three columns, 108 for four (positions .45, .80 / .30, .56,
  // .74 of it: 39, 31, 18 / 32, 28, 19, 29), then rich takes the padding and borders, 3n + 1,
  // off evenly from the left, rounding half to even: the widths with padding below.
  std::vector<std::size_t> cells = {31, 27, 17, 28};
  std::vector<bool> right = {false, false, true, false};
  if (chain) {
    cells = {38, 29, 17};
    right.pop_back();
    for (auto& row : rows) row.pop_back();
  }
  os << "Model: \"" << name() << "\"\n";
  detail::print_ascii_table(os, cells, right, rows);
  for (const auto& line : detail::param_totals(*this)) os << ' ' << line << '\n';
}

// ================================================================ model_to_dot, plot_model

namespace {

std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

// What a node shows (Keras's make_layer_label), shapes already formatted ("?" when unknown).
struct NodeLabel {
  std::string name, class_name;
  std::optional<std::string> input_shape;  // none for an InputLayer
  std::string output_shape, dtype;
  int trainable = -1;  // -1: no weights, nothing shown
};

std::string label_html(const NodeLabel& l, const PlotOptions& o) {
  int colspan = (o.show_dtype ? 1 : 0) + (o.show_trainable ? 1 : 0) + (o.show_shapes ? 2 : 0);
  colspan = std::max(1, colspan);
  std::string t = "<<table border=\"0\" cellborder=\"1\" bgcolor=\"black\" cellpadding=\"10\">";
  t += fmt::format("<tr><td colspan=\"{}\" bgcolor=\"black\"><font point-size=\"16\" color=\"white\">", colspan);
  t += o.show_layer_names ? fmt::format("<b>{}</b> ({})", html_escape(l.name), html_escape(l.class_name))
                          : fmt::format("<b>{}</b>", html_escape(l.class_name));
  t += "</font></td></tr>";
  std::vector<std::string> cols;
  const auto cell = [](const std::string& what, const std::string& value) {
    return fmt::format("<td bgcolor=\"white\"><font point-size=\"14\">{}: <b>{}</b></font></td>", what,
                       html_escape(value));
  };
  if (o.show_shapes) {
    if (l.input_shape) cols.push_back(cell("Input shape", *l.input_shape));
    cols.push_back(cell("Output shape", l.output_shape));
  }
  if (o.show_dtype) cols.push_back(cell("Output dtype", l.dtype));
  if (o.show_trainable && l.trainable >= 0) {
    cols.push_back(l.trainable ? "<td bgcolor=\"forestgreen\"><font point-size=\"14\" color=\"white\"><b>Trainable</b></font></td>"
                               : "<td bgcolor=\"firebrick\"><font point-size=\"14\" color=\"white\"><b>Non-trainable</b></font></td>");
  }
  if (!cols.empty()) {
    t += "<tr>";
    for (const auto& c : cols) t += c;
    t += "</tr>";
  }
  return t + "</table>>";
}

std::string shape_or_unknown(const Shape& s) { return s.empty() ? std::string("?") : none_shape(s); }

int trainable_flag(const layers::Layer& l) { return l.weights().empty() ? -1 : (l.trainable() ? 1 : 0); }

}  // namespace

std::string model_to_dot(const Model& model, const PlotOptions& o) {
  if (o.rankdir != "TB" && o.rankdir != "BT" && o.rankdir != "LR" && o.rankdir != "RL") {
    throw ValueError(fmt::format("model_to_dot: rankdir must be TB, BT, LR or RL, got '{}'", o.rankdir));
  }
  std::vector<NodeLabel> nodes;
  std::vector<std::pair<std::size_t, std::size_t>> edges;
  if (const auto* f = dynamic_cast<const Functional*>(&model)) {
    const GraphView g = graph_view(*f);
    std::unordered_map<const void*, std::size_t> index;
    for (const void* op : g.ops) {
      const auto& ns = g.calls.at(op);
      const Node* n = ns.front();
      index[op] = nodes.size();
      NodeLabel l;
      l.name = g.name_of(n);
      if (n->layer && l.name.empty()) l.name = n->layer->default_name();  // named by the first run
      if (!n->layer) {
        l.class_name = "InputLayer";
        l.output_shape = shape_or_unknown(n->shape);
        l.dtype = dtype_name(n->dtype);
      } else {
        l.class_name = n->layer->class_name();
        l.trainable = trainable_flag(*n->layer);
        // Keras: a layer called more than once has no single input or output
        if (ns.size() > 1) {
          l.input_shape = "?";
          l.output_shape = "?";
          l.dtype = "?";
        } else {
          std::vector<std::string> in;
          for (const auto& t : n->inputs) in.push_back(shape_or_unknown(t.shape()));
          l.input_shape = n->list_input ? fmt::format("[{}]", fmt::join(in, ", ")) : in.at(0);
          l.output_shape = shape_or_unknown(n->shape);
          l.dtype = dtype_name(n->dtype);
        }
      }
      nodes.push_back(std::move(l));
    }
    std::set<std::pair<std::size_t, std::size_t>> seen;
    for (const void* op : g.ops) {
      for (const Node* n : g.calls.at(op)) {
        for (const auto& t : n->inputs) {
          const std::pair<std::size_t, std::size_t> e{index.at(GraphView::op_of(t.node().get())), index.at(op)};
          if (seen.insert(e).second) edges.push_back(e);
        }
      }
    }
  } else {
    // Sequential (or any model): its layers in order, a chain
    const auto ls = model.layers();
    for (std::size_t i = 0; i < ls.size(); ++i) {
      NodeLabel l;
      l.name = ls[i]->name().empty() ? ls[i]->default_name() : ls[i]->name();
      l.class_name = ls[i]->class_name();
      l.input_shape = shape_or_unknown(ls[i]->input_shape());
      l.output_shape = shape_or_unknown(ls[i]->output_shape());
      l.dtype = ls[i]->output_shape().empty() ? std::string("?") : dtype_name(kFloat32);
      l.trainable = trainable_flag(*ls[i]);
      nodes.push_back(std::move(l));
      if (i > 0) edges.emplace_back(i - 1, i);
    }
  }
  std::string dot = fmt::format("digraph \"{}\" {{\n", model.name());
  dot += fmt::format("  graph [rankdir=\"{}\", concentrate=true, dpi={}, splines=\"ortho\"];\n", o.rankdir, o.dpi);
  dot += "  node [shape=\"record\"];\n";
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    dot += fmt::format("  n{} [label={}, fontname=\"Helvetica\", border=\"0\", margin=\"0\"];\n", i,
                       label_html(nodes[i], o));
  }
  for (const auto& [a, b] : edges) dot += fmt::format("  n{} -> n{} [penwidth=\"2\"];\n", a, b);
  return dot + "}\n";
}

void plot_model(const Model& model, const std::string& to_file, const PlotOptions& options) {
  const auto ends_with = [&](const char* ext) {
    const std::string e(ext);
    return to_file.size() >= e.size() && to_file.compare(to_file.size() - e.size(), e.size(), e) == 0;
  };
  if (!ends_with(".dot") && !ends_with(".gv")) {
    throw ValueError(fmt::format("plot_model: '{}': tapeflow writes the graph as Graphviz DOT text, to a .dot or .gv "
                                 "file; render it with `dot -Tpng model.dot -o model.png`",
                                 to_file));
  }
  const std::string dot = model_to_dot(model, options);
  std::ofstream out(to_file, std::ios::binary);
  out << dot;
  out.close();
  if (!out) throw IOError(fmt::format("plot_model: cannot write '{}'", to_file));
}

}  // namespace tapeflow
