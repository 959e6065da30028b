// GradientTape: records ops through the core's observer hook and walks them backwards.
#include "tapeflow/gradient_tape.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "rules.hpp"
#include "tapeflow/ops.hpp"

namespace tapeflow {
namespace detail {

struct Node {
  OpId op = OpId::Copy;
  std::string custom_name;  // non-empty for a custom_op
  CustomGradient custom_backward;
  std::vector<std::uint64_t> input_ids;
  std::vector<Shape> input_shapes;
  std::vector<DType> input_dtypes;
  std::vector<Device> input_devices;  // a gradient returns to its input's device (after to())
  std::vector<bool> needs_grad;
  std::vector<Tensor> saved_inputs;  // undefined where the rule needs nothing
  Tensor saved_output;
  std::vector<std::uint64_t> saved_versions;  // of saved_inputs then saved_output
  std::uint64_t output_id = 0;
  Shape output_shape;
  OpAttrs attrs;

  std::string name() const { return custom_name.empty() ? op_name(op) : custom_name; }
};

struct TapeState {
  TapeOptions options;
  bool paused = false;
  bool used = false;
  std::deque<Node> nodes;  // grows without moving the recorded nodes
  std::unordered_set<std::uint64_t> tracked;  // watched, or produced by a recorded op
  std::vector<Variable> watched_variables;
  std::unordered_set<std::uint64_t> watched_variable_ids;

  bool is_tracked(const Tensor& t) {
    if (!t.defined()) return false;
    if (tracked.count(t.id())) return true;
    // trainable Variables are watched on first access
    const VariableInfo* v = t.variable_info();
    if (v && v->trainable && options.watch_accessed_variables && is_floating(t.dtype())) {
      watch(t);
      return true;
    }
    return false;
  }

  void watch(const Tensor& t) {
    if (!t.defined()) throw ValueError("watch: the tensor is undefined");
    if (!is_floating(t.dtype())) {
      throw DTypeError(fmt::format("watch: only floating tensors can be watched; got {} (shape {})",
                                   dtype_name(t.dtype()), shape_str(t.shape())));
    }
    tracked.insert(t.id());
    if (t.is_variable() && watched_variable_ids.insert(t.id()).second) {
      watched_variables.push_back(static_cast<const Variable&>(t));
    }
  }

  // Returns the node to fill, or nullptr when no input is tracked.
  Node* begin_node(const std::vector<Tensor>& inputs, const Tensor& output) {
    if (!output.defined() || !is_floating(output.dtype())) return nullptr;
    // most ops that reach here are dropped (no tracked input: a constant's cast, the
    // optimizer's arithmetic): find out before allocating anything. is_tracked runs on every
    // input: it watches a trainable Variable on first access.
    bool any = false;
    for (const auto& t : inputs) {
      const bool need = is_floating(t.dtype()) && is_tracked(t);
      any = any || need;
    }
    if (!any) return nullptr;
    Node& n = nodes.emplace_back();
    n.needs_grad.resize(inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i)
      n.needs_grad[i] = is_floating(inputs[i].dtype()) && tracked.count(inputs[i].id()) != 0;
    n.input_ids.reserve(inputs.size());
    n.input_shapes.reserve(inputs.size());
    n.input_dtypes.reserve(inputs.size());
    n.input_devices.reserve(inputs.size());
    for (const auto& t : inputs) {
      n.input_ids.push_back(t.id());
      n.input_shapes.push_back(t.shape());
      n.input_dtypes.push_back(t.dtype());
      n.input_devices.push_back(t.device());
    }
    n.output_id = output.id();
    n.output_shape = output.shape();
    tracked.insert(output.id());
    return &n;
  }

  void save(Node& n, const std::vector<Tensor>& inputs, const Tensor& output, unsigned mask) {
    n.saved_inputs.resize(inputs.size());
    n.saved_versions.reserve(inputs.size() + 1);
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      if (mask & (1u << i)) {
        n.saved_inputs[i] = inputs[i];
        n.saved_versions.push_back(inputs[i].version());
      }
    }
    if (mask & kSaveOutput) {
      n.saved_output = output;
      n.saved_versions.push_back(output.version());
    }
  }

  void record(OpId op, const std::vector<Tensor>& inputs, const Tensor& output, const OpAttrs& attrs) {
    Node* n = begin_node(inputs, output);
    if (!n) return;
    n->op = op;
    n->attrs = attrs;
    save(*n, inputs, output, grad_rule(op).saves);
  }

  void record_custom(const std::string& name, const std::vector<Tensor>& inputs, const Tensor& output,
                     const CustomGradient& backward) {
    Node* n = begin_node(inputs, output);
    if (!n) return;
    n->custom_name = name;
    n->custom_backward = backward;
    save(*n, inputs, output, ~0u);
  }

  void clear() {
    nodes.clear();
    tracked.clear();
    watched_variables.clear();
    watched_variable_ids.clear();
  }
};

namespace {

bool all_finite(const Tensor& t) {
  if (!is_floating(t.dtype())) return true;
  for (double v : t.to_vector<double>())
    if (!std::isfinite(v)) return false;
  return true;
}

// The active tapes of one thread, installed as the core's observer while any exists.
class ThreadTapes : public OpObserver {
 public:
  std::vector<TapeState*> tapes;
  bool check_numerics = false;
  bool in_rule = false;  // a gradient rule runs: its results are checked as the rule's, not per op

  void record(OpId op, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
              const OpAttrs& attrs) override {
    if (check_numerics && !in_rule) {
      OpObserver* self = set_current_observer(nullptr);
      bool ok = true;
      for (const auto& o : outputs) ok = ok && all_finite(o);
      set_current_observer(self);
      if (!ok) {
        throw ValueError(fmt::format("check_numerics: {} produced NaN or Inf (output shape {})", op_name(op),
                                     shape_str(outputs[0].shape())));
      }
    }
    for (TapeState* t : tapes)
      if (!t->paused) t->record(op, inputs, outputs[0], attrs);
  }

  void update() { set_current_observer(tapes.empty() && !check_numerics ? nullptr : this); }
};

ThreadTapes& thread_tapes() {
  thread_local ThreadTapes tapes;
  return tapes;
}

// Runs with the given tape paused (its own gradient computation is not recorded on it).
class Pause {
 public:
  explicit Pause(TapeState& s) : s_(s), was_(s.paused) { s_.paused = true; }
  ~Pause() { s_.paused = was_; }
  Pause(const Pause&) = delete;
  Pause& operator=(const Pause&) = delete;

 private:
  TapeState& s_;
  bool was_;
};

}  // namespace
}  // namespace detail

using detail::Node;
using detail::TapeState;

// ---------------------------------------------------------------- Variable

Variable::Variable(const Tensor& initial, std::string name, bool trainable) {
  if (!initial.defined()) throw ValueError("Variable: the initial value is undefined");
  OpObserver* saved = set_current_observer(nullptr);  // creating a variable is not an op
  Tensor value;
  try {
    value = initial.clone();
  } catch (...) {
    set_current_observer(saved);
    throw;
  }
  set_current_observer(saved);
  static_cast<Tensor&>(*this) = value;
  set_variable_info(std::make_shared<detail::VariableInfo>(detail::VariableInfo{std::move(name), trainable}));
}

const std::string& Variable::name() const {
  if (!is_variable()) throw ValueError("Variable: undefined");
  return variable_info()->name;
}
bool Variable::trainable() const { return is_variable() && variable_info()->trainable; }
Variable& Variable::assign(const Tensor& value) {
  Tensor::assign(value);
  return *this;
}
Variable& Variable::assign_add(const Tensor& delta) {
  add_(delta);
  return *this;
}
Variable& Variable::assign_sub(const Tensor& delta) {
  sub_(delta);
  return *this;
}

// ---------------------------------------------------------------- GradientTape

GradientTape::GradientTape(TapeOptions options) : state_(std::make_unique<TapeState>()) {
  state_->options = options;
  auto& tt = detail::thread_tapes();
  tt.tapes.push_back(state_.get());
  tt.update();
}

GradientTape::~GradientTape() {
  auto& tt = detail::thread_tapes();
  tt.tapes.erase(std::remove(tt.tapes.begin(), tt.tapes.end(), state_.get()), tt.tapes.end());
  tt.update();
}

void GradientTape::watch(const Tensor& t) { state_->watch(t); }
void GradientTape::watch(const std::vector<Tensor>& ts) {
  for (const auto& t : ts) state_->watch(t);
}
std::vector<Variable> GradientTape::watched_variables() const { return state_->watched_variables; }

void GradientTape::reset() {
  state_->clear();
  state_->used = false;
}

GradientTape::StopRecording::StopRecording(GradientTape& tape) : tape_(tape), was_paused_(tape.state_->paused) {
  tape_.state_->paused = true;
}
GradientTape::StopRecording::~StopRecording() { tape_.state_->paused = was_paused_; }

std::vector<Tensor> GradientTape::gradient_impl(const std::vector<Tensor>& targets,
                                                const std::vector<Tensor>& sources,
                                                const std::vector<Tensor>& output_gradients,
                                                UnconnectedGradients unconnected, bool release) {
  TapeState& s = *state_;
  if (s.used && !s.options.persistent) {
    throw ValueError(
        "gradient: a non-persistent GradientTape can compute gradients only once; make it persistent "
        "(GradientTape tape(true)) to call gradient() again");
  }
  if (!output_gradients.empty() && output_gradients.size() != targets.size()) {
    throw ValueError(fmt::format("gradient: {} output_gradients for {} targets", output_gradients.size(),
                                 targets.size()));
  }
  for (const auto& t : targets)
    if (!t.defined()) throw ValueError("gradient: a target is undefined");
  for (const auto& t : sources)
    if (!t.defined()) throw ValueError("gradient: a source is undefined");

  detail::Pause pause(s);
  const bool check = detail::thread_tapes().check_numerics;
  std::unordered_map<std::uint64_t, Tensor> grads;
  auto accumulate = [&](std::uint64_t id, const Tensor& g) {
    auto it = grads.find(id);
    if (it == grads.end()) grads.emplace(id, g);
    else it->second = it->second + g;
  };
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const Tensor& t = targets[i];
    Tensor seed;
    if (!output_gradients.empty() && output_gradients[i].defined()) {
      seed = output_gradients[i];
      if (seed.shape() != t.shape()) {
        throw ShapeError(fmt::format("gradient: output_gradients[{}] has shape {}, the target has {}", i,
                                     shape_str(seed.shape()), shape_str(t.shape())));
      }
    } else {
      seed = ones(t.shape(), is_floating(t.dtype()) ? t.dtype() : kFloat32, t.device());
    }
    accumulate(t.id(), seed);
  }
  std::unordered_set<std::uint64_t> source_ids;
  for (const auto& t : sources) source_ids.insert(t.id());

  for (auto it = s.nodes.rbegin(); it != s.nodes.rend(); ++it) {
    const Node& n = *it;
    auto git = grads.find(n.output_id);
    if (git == grads.end()) continue;
    const Tensor g = git->second;
    if (!source_ids.count(n.output_id)) grads.erase(git);
    // the rule's saved tensors must not have changed since they were saved
    std::size_t v = 0;
    auto check_version = [&](const Tensor& t) {
      if (!t.defined()) return;
      if (t.version() != n.saved_versions[v]) {
        throw ValueError(fmt::format(
            "gradient: a tensor of shape {} saved by {} was modified in place after it was saved (version {}, "
            "now {}); compute gradients before updating it, or clone it",
            shape_str(t.shape()), n.name(), n.saved_versions[v], t.version()));
      }
      ++v;
    };
    for (const auto& t : n.saved_inputs) check_version(t);
    check_version(n.saved_output);

    std::vector<Tensor> input_grads;
    auto& thread = detail::thread_tapes();
    const bool outer_rule = thread.in_rule;
    thread.in_rule = true;
    struct RestoreRule {
      detail::ThreadTapes& t;
      bool v;
      ~RestoreRule() { t.in_rule = v; }
    } restore_rule{thread, outer_rule};
    if (!n.custom_name.empty()) {
      input_grads = n.custom_backward(n.saved_inputs, n.saved_output, g);
      if (input_grads.size() != n.input_ids.size()) {
        throw ValueError(fmt::format("gradient: custom op {} returned {} gradients for {} inputs", n.custom_name,
                                     input_grads.size(), n.input_ids.size()));
      }
    } else {
      const detail::GradContext ctx{n.saved_inputs, n.saved_output, n.attrs, n.input_shapes, n.input_dtypes,
                                    n.needs_grad};
      input_grads = detail::grad_rule(n.op).fn(ctx, g);
    }
    for (std::size_t i = 0; i < n.input_ids.size(); ++i) {
      if (!n.needs_grad[i] || i >= input_grads.size() || !input_grads[i].defined()) continue;
      Tensor gi = input_grads[i];
      if (gi.shape() != n.input_shapes[i]) gi = sum_to(gi, n.input_shapes[i]);
      if (gi.dtype() != n.input_dtypes[i]) gi = gi.astype(n.input_dtypes[i]);
      if (gi.device() != n.input_devices[i]) gi = gi.to(n.input_devices[i]);
      if (check && !detail::all_finite(gi)) {
        throw ValueError(fmt::format("check_numerics: the gradient of {} (input {}, shape {}) has NaN or Inf",
                                     n.name(), i, shape_str(gi.shape())));
      }
      accumulate(n.input_ids[i], gi);
    }
  }

  std::vector<Tensor> result;
  for (const auto& src : sources) {
    auto it = grads.find(src.id());
    if (it != grads.end()) {
      result.push_back(it->second);
    } else {
      result.push_back(unconnected == UnconnectedGradients::Zero ? zeros_like(src) : Tensor());
    }
  }
  if (release) {
    s.used = true;
    if (!s.options.persistent) s.nodes.clear();
  }
  return result;
}

Tensor GradientTape::gradient(const Tensor& target, const Tensor& source, const Tensor& output_gradient,
                              UnconnectedGradients unconnected) {
  return gradient_impl({target}, {source}, {output_gradient}, unconnected, true)[0];
}
std::vector<Tensor> GradientTape::gradient(const Tensor& target, const std::vector<Tensor>& sources,
                                           const Tensor& output_gradient, UnconnectedGradients unconnected) {
  return gradient_impl({target}, sources, {output_gradient}, unconnected, true);
}
std::vector<Tensor> GradientTape::gradient(const std::vector<Tensor>& targets, const std::vector<Tensor>& sources,
                                           const std::vector<Tensor>& output_gradients,
                                           UnconnectedGradients unconnected) {
  return gradient_impl(targets, sources, output_gradients, unconnected, true);
}

Tensor GradientTape::jacobian(const Tensor& target, const Tensor& source, UnconnectedGradients unconnected) {
  if (!target.defined() || !source.defined()) throw ValueError("jacobian: undefined tensor");
  const std::int64_t n = target.size();
  std::vector<Tensor> rows;
  bool connected = false;
  for (std::int64_t j = 0; j < n; ++j) {
    Tensor seed;
    {
      detail::Pause pause(*state_);
      seed = one_hot(tensor<std::int64_t>({j}, {}), n, target.dtype()).reshape(target.shape()).to(target.device());
    }
    Tensor g = gradient_impl({target}, {source}, {seed}, UnconnectedGradients::None, false)[0];
    connected = connected || g.defined();
    rows.push_back(g.defined() ? g : zeros_like(source));
  }
  state_->used = true;
  if (!state_->options.persistent) state_->nodes.clear();
  if (!connected && unconnected == UnconnectedGradients::None) return Tensor();
  Shape shape = target.shape();
  shape.insert(shape.end(), source.shape().begin(), source.shape().end());
  if (rows.empty()) return zeros(shape, source.dtype(), source.device());
  return stack(rows).reshape(shape);
}

Tensor GradientTape::batch_jacobian(const Tensor& target, const Tensor& source, UnconnectedGradients unconnected) {
  if (!target.defined() || !source.defined()) throw ValueError("batch_jacobian: undefined tensor");
  if (target.rank() < 1 || source.rank() < 1 || target.dim(0) != source.dim(0)) {
    throw ShapeError(fmt::format("batch_jacobian: target {} and source {} need the same first (batch) axis",
                                 shape_str(target.shape()), shape_str(source.shape())));
  }
  const std::int64_t batch = target.dim(0);
  const std::int64_t m = batch == 0 ? 0 : target.size() / batch;
  std::vector<Tensor> rows;
  bool connected = false;
  for (std::int64_t j = 0; j < m; ++j) {
    Tensor seed;
    {
      detail::Pause pause(*state_);
      seed = one_hot(full({batch}, static_cast<double>(j), kInt64, target.device()), m, target.dtype())
                 .reshape(target.shape());
    }
    Tensor g = gradient_impl({target}, {source}, {seed}, UnconnectedGradients::None, false)[0];
    connected = connected || g.defined();
    rows.push_back(g.defined() ? g : zeros_like(source));
  }
  state_->used = true;
  if (!state_->options.persistent) state_->nodes.clear();
  if (!connected && unconnected == UnconnectedGradients::None) return Tensor();
  Shape shape = target.shape();
  shape.insert(shape.end(), source.shape().begin() + 1, source.shape().end());
  if (rows.empty()) return zeros(shape, source.dtype(), source.device());
  return stack(rows, 1).reshape(shape);
}

std::vector<RecordedOp> GradientTape::recorded_ops() const {
  std::vector<RecordedOp> ops;
  for (const auto& n : state_->nodes) ops.push_back({n.name(), n.input_ids, n.input_shapes, n.output_id, n.output_shape});
  return ops;
}

std::string GradientTape::to_dot() const {
  std::ostringstream os;
  os << "digraph tape {\n  rankdir=LR;\n  node [fontname=\"monospace\"];\n";
  std::unordered_set<std::uint64_t> seen;
  auto tensor_node = [&](std::uint64_t id, const Shape& shape) {
    if (seen.insert(id).second) os << fmt::format("  t{} [shape=box, label=\"#{} {}\"];\n", id, id, shape_str(shape));
  };
  for (std::size_t i = 0; i < state_->nodes.size(); ++i) {
    const Node& n = state_->nodes[i];
    os << fmt::format("  op{} [shape=ellipse, label=\"{}\"];\n", i, n.name());
    for (std::size_t k = 0; k < n.input_ids.size(); ++k) {
      tensor_node(n.input_ids[k], n.input_shapes[k]);
      os << fmt::format("  t{} -> op{};\n", n.input_ids[k], i);
    }
    tensor_node(n.output_id, n.output_shape);
    os << fmt::format("  op{} -> t{};\n", i, n.output_id);
  }
  os << "}\n";
  return os.str();
}

std::size_t GradientTape::saved_tensor_count() const {
  std::size_t count = 0;
  for (const auto& n : state_->nodes) {
    for (const auto& t : n.saved_inputs) count += t.defined();
    count += n.saved_output.defined();
  }
  return count;
}

// ---------------------------------------------------------------- free functions

Tensor stop_gradient(const Tensor& t) {
  if (!t.defined()) return t;
  // a new handle on the same storage that no tape has seen
  return Tensor(t.storage(), t.shape(), t.strides(), t.offset(), t.dtype());
}

CheckNumerics::CheckNumerics() : previous_(detail::thread_tapes().check_numerics) {
  detail::thread_tapes().check_numerics = true;
  detail::thread_tapes().update();
}
CheckNumerics::~CheckNumerics() {
  detail::thread_tapes().check_numerics = previous_;
  detail::thread_tapes().update();
}

Tensor custom_op(const std::string& name, const std::vector<Tensor>& inputs,
                 const std::function<Tensor(const std::vector<Tensor>&)>& forward, CustomGradient backward) {
  if (!backward) throw ValueError(fmt::format("custom_op {}: no gradient function", name));
  Tensor out;
  OpObserver* saved = set_current_observer(nullptr);  // the inside of the op is not recorded
  try {
    out = forward(inputs);
  } catch (...) {
    set_current_observer(saved);
    throw;
  }
  set_current_observer(saved);
  if (!out.defined()) throw ValueError(fmt::format("custom_op {}: the forward function returned no tensor", name));
  out = stop_gradient(out);  // a fresh identity even if forward returned an input
  for (detail::TapeState* t : detail::thread_tapes().tapes)
    if (!t->paused) t->record_custom(name, inputs, out, backward);
  return out;
}

}  // namespace tapeflow
