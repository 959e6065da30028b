// GradientTape: records ops through the core's observer hook and walks them backwards.
#include "tapeflow/gradient_tape.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <unordered_set>

#include "id_map.hpp"
#include "rules.hpp"
#include "tapeflow/ops.hpp"

namespace tapeflow {
namespace detail {

// What the tape keeps of one input of a recorded op. Its shape lives in TapeState::dims.
struct InputRecord {
  std::uint64_t id = 0;
  std::size_t dims = 0;  // first extent in TapeState::dims
  std::size_t rank = 0;
  DType dtype = DType::Float32;
  Device device;          // a gradient returns to its input's device (after to())
  bool needs_grad = false;
  Tensor saved;           // undefined where the rule needs nothing
  std::uint64_t saved_version = 0;
};

// One recorded op. Its inputs are TapeState::inputs[first, first + count): recording appends
// to a few flat arrays, and allocates nothing per op once they have grown.
struct Node {
  OpId op = OpId::Copy;
  std::size_t first = 0, count = 0;
  std::ptrdiff_t custom = -1;  // index into TapeState::customs, for a custom_op
  std::ptrdiff_t attrs = -1;   // index into TapeState::attrs; -1: default OpAttrs
  std::uint64_t output_id = 0;
  std::size_t output_dims = 0, output_rank = 0;
  Tensor saved_output;
  std::uint64_t saved_output_version = 0;
};

struct CustomRecord {
  std::string name;
  CustomGradient backward;
};

bool is_default(const OpAttrs& a) {
  return a.axes.empty() && a.shape.empty() && a.starts.empty() && a.steps.empty() && a.p0 == 0 && a.p1 == 0 &&
         !a.keepdims && a.dtype == DType::Float32;
}

// gradient()'s working memory, kept by the tape between calls (and, with the tape's state,
// for the thread's next tape)
struct GradScratch {
  IdMap<Tensor> grads;  // by tensor id; an undefined Tensor reads as none (IdMap has no erase)
  IdMap<char> source_ids;
  // by tensor id: 1 where grads holds a buffer this gradient() call allocated that nothing else
  // references (no seed, no rule's result, not yet a rule's g, saved by no tape): the only
  // gradients it writes in place
  IdMap<char> owned;
  // a rule's view of its node, rebuilt per node
  std::vector<Tensor> saved_inputs;
  std::vector<Shape> input_shapes;
  std::vector<DType> input_dtypes;
  std::vector<bool> needs_grad;

  void reset() {
    grads.reset();
    source_ids.reset();
    owned.reset();
    saved_inputs.clear();
  }
};

namespace {
class ThreadTapes;
}  // namespace

struct TapeState {
  TapeOptions options;
  bool paused = false;
  bool used = false;
  ThreadTapes* owner = nullptr;  // the list of the thread that created the tape (none once it ended)
  int depth = 0;                 // the NoRecording depth the tape was created at: it records at it or below
  std::vector<Node> nodes;
  std::vector<InputRecord> inputs;
  std::vector<std::int64_t> dims;
  std::vector<OpAttrs> attrs;
  std::vector<CustomRecord> customs;
  IdMap<char> tracked;  // watched, or produced by a recorded op
  std::vector<Variable> watched_variables;
  std::unordered_set<std::uint64_t> watched_variable_ids;
  GradScratch scratch;

  const OpAttrs& attrs_of(const Node& n) const {
    static const OpAttrs none;
    return n.attrs < 0 ? none : attrs[static_cast<std::size_t>(n.attrs)];
  }
  std::string name_of(const Node& n) const {
    return n.custom < 0 ? op_name(n.op) : customs[static_cast<std::size_t>(n.custom)].name;
  }
  Shape shape_at(std::size_t first, std::size_t rank) const {
    return Shape(dims.begin() + static_cast<std::ptrdiff_t>(first),
                 dims.begin() + static_cast<std::ptrdiff_t>(first + rank));
  }
  std::size_t push_dims(const Shape& s) {
    const std::size_t at = dims.size();
    dims.insert(dims.end(), s.begin(), s.end());
    return at;
  }

  bool is_tracked(const Tensor& t) {
    if (!t.defined()) return false;
    if (tracked.contains(t.id())) return true;
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
    tracked.emplace(t.id());
    if (t.is_variable() && watched_variable_ids.insert(t.id()).second) {
      watched_variables.push_back(static_cast<const Variable&>(t));
    }
  }

  // An in-place write is not recorded: into a tensor this tape tracks, it would make the
  // gradients silently wrong (the write's own derivative is missing), so it is refused, as
  // PyTorch refuses one into a leaf that requires grad. A Variable (or a view of one) may be
  // written: its updates are not differentiable, and what a rule saved is checked by version.
  void check_write(const Tensor& target, const char* op) {
    if (used && !options.persistent) return;  // its one gradient() is done
    if (!tracked.contains(target.id()) || target.is_variable()) return;
    for (const Variable& v : watched_variables)
      if (v.storage() == target.storage()) return;
    throw ValueError(fmt::format(
        "{}: cannot write in place into a tensor of shape {} that a GradientTape is recording (the write "
        "is not recorded, so the gradients would be wrong); compute the new value out of place, or write "
        "into a clone()",
        op, shape_str(target.shape())));
  }

  // Appends the node and its inputs, saving the inputs in `mask` (bit i: input i;
  // kSaveOutput: the output); nullptr when no input is tracked.
  Node* record_node(TensorList in, const Tensor& output, unsigned mask, unsigned for_others = 0) {
    if (!output.defined() || !is_floating(output.dtype())) return nullptr;
    // most ops that reach here are dropped (no tracked input: a constant's cast, the
    // optimizer's arithmetic): find out before appending anything. is_tracked runs on every
    // input: it watches a trainable Variable on first access.
    std::size_t needing = 0;
    unsigned need_bits = 0;  // of the first inputs (the ones a mask can name)
    for (std::size_t i = 0; i < in.size(); ++i) {
      const bool need = is_floating(in[i].dtype()) && is_tracked(in[i]);
      needing += need;
      if (need && i < 8) need_bits |= 1u << i;
    }
    if (needing == 0) return nullptr;
    // an input kept only for the others' gradients is dropped when it is the only one needing one
    for (unsigned bits = for_others & mask & 0x7Fu; bits != 0; bits &= bits - 1) {
      const unsigned bit = bits & (~bits + 1);
      if (needing == static_cast<std::size_t>((need_bits & bit) != 0)) mask &= ~bit;
    }
    if (nodes.empty()) {  // a tape's first op: room for a short chain without regrowing
      nodes.reserve(64);
      inputs.reserve(128);
      dims.reserve(256);
    }
    Node& n = nodes.emplace_back();
    n.first = inputs.size();
    n.count = in.size();
    for (std::size_t i = 0; i < in.size(); ++i) {
      const Tensor& t = in[i];
      InputRecord& r = inputs.emplace_back();
      const Shape& shape = t.shape();
      r.id = t.id();
      r.rank = shape.size();
      r.dims = push_dims(shape);
      r.dtype = t.dtype();
      r.device = t.device();
      r.needs_grad = i < 8 ? (need_bits >> i) & 1u : is_floating(r.dtype) && tracked.contains(r.id);
      // bits 0-6 name inputs (7 is the output's); ~0u, a custom op's, saves every input
      if (mask == ~0u || (i < 7 && ((mask >> i) & 1u))) {
        r.saved = t;
        r.saved_version = t.version();
      }
    }
    const Shape& out_shape = output.shape();
    n.output_id = output.id();
    n.output_rank = out_shape.size();
    n.output_dims = push_dims(out_shape);
    if (mask & kSaveOutput) {
      n.saved_output = output;
      n.saved_output_version = output.version();
    }
    tracked.emplace(output.id());
    return &n;
  }

  void record(OpId op, TensorList in, const Tensor& output, const OpAttrs& a) {
    const GradRule& rule = grad_rule(op);
    Node* n = record_node(in, output, rule.saves, rule.for_others);
    if (!n) return;
    n->op = op;
    if (!is_default(a)) {
      n->attrs = static_cast<std::ptrdiff_t>(attrs.size());
      attrs.push_back(a);
    }
  }

  void record_custom(const std::string& name, const std::vector<Tensor>& in, const Tensor& output,
                     const CustomGradient& backward) {
    Node* n = record_node(in, output, ~0u);
    if (!n) return;
    n->custom = static_cast<std::ptrdiff_t>(customs.size());
    customs.push_back({name, backward});
  }

  // What was recorded; keeps what was watched.
  void clear_nodes() {
    nodes.clear();
    inputs.clear();
    dims.clear();
    attrs.clear();
    customs.clear();
  }
  void clear() {
    clear_nodes();
    tracked.reset();
    watched_variables.clear();
    watched_variable_ids.clear();
  }

  // Forgets everything, as a new tape, but keeps the arrays of a tape of ordinary size: a
  // training loop's tape per step then allocates nothing for its bookkeeping.
  void reuse(TapeOptions opts) {
    constexpr std::size_t kKeepNodes = 4096;
    if (nodes.capacity() > kKeepNodes) {
      *this = TapeState();
    } else {
      clear();
    }
    options = opts;
    paused = false;
    used = false;
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
  int numerics_depth = 0;  // the NoRecording depth CheckNumerics was created at
  bool in_rule = false;  // a gradient rule runs: its results are checked as the rule's, not per op
  std::unique_ptr<TapeState> spare;  // the last destroyed tape's state, emptied, for the next tape

  void record(OpId op, TensorList inputs, TensorList outputs, const OpAttrs& attrs) override {
    const int depth = no_recording_depth();
    if (checks_numerics(depth)) {
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
      if (records(*t, depth)) t->record(op, inputs, outputs[0], attrs);
  }

  void before_write(const Tensor& target, const char* op) override {
    const int depth = no_recording_depth();
    for (TapeState* t : tapes)
      if (records(*t, depth)) t->check_write(target, op);
  }

  // A tape records unless paused or inside a NoRecording opened after its creation.
  static bool records(const TapeState& t, int depth) { return !t.paused && depth <= t.depth; }
  bool checks_numerics(int depth) const { return check_numerics && !in_rule && depth <= numerics_depth; }
  // Whether an op run now would be recorded by a tape (one recording a backward pass).
  bool any_records() const {
    const int depth = no_recording_depth();
    return std::any_of(tapes.begin(), tapes.end(), [&](const TapeState* t) { return records(*t, depth); });
  }

  // The observer this thread needs. Inside a NoRecording (depth > 0) it is installed too when
  // tapes exist: one created inside records, the older ones skip by their depth.
  void update() { set_current_observer(tapes.empty() && !check_numerics ? nullptr : this); }

  void remove(TapeState* s) {
    tapes.erase(std::remove(tapes.begin(), tapes.end(), s), tapes.end());
    s->owner = nullptr;
  }

  ~ThreadTapes() override {
    for (TapeState* t : tapes) t->owner = nullptr;  // the thread ends before its tapes
  }
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

GradientTape::GradientTape(TapeOptions options) {
  auto& tt = detail::thread_tapes();
  state_ = tt.spare ? std::move(tt.spare) : std::make_unique<TapeState>();
  state_->reuse(options);
  state_->owner = &tt;
  state_->depth = no_recording_depth();
  tt.tapes.push_back(state_.get());
  tt.update();
}

GradientTape::~GradientTape() {
  // off the list of the thread that created it, which may not be this one
  auto& tt = detail::thread_tapes();
  if (detail::ThreadTapes* owner = state_->owner) {
    owner->remove(state_.get());
    if (owner == &tt) tt.update();
  }
  state_->reuse({});  // what the tape saved is released now, as before
  if (!tt.spare) tt.spare = std::move(state_);
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
  // gradients by tensor id; an undefined Tensor reads as none (IdMap has no erase)
  // taken from the tape for this call (a rule that calls gradient() on this tape again gets
  // a fresh one), given back emptied at the end
  detail::GradScratch scratch = std::move(s.scratch);
  detail::IdMap<Tensor>& grads = scratch.grads;
  detail::IdMap<char>& owned = scratch.owned;
  auto disown = [&](std::uint64_t id) {
    if (char* o = owned.find(id)) *o = 0;
  };
  auto accumulate = [&](std::uint64_t id, const Tensor& g) {
    Tensor& slot = *grads.emplace(id).first;
    slot = slot.defined() ? slot + g : g;
    disown(id);
  };
  // A slice's gradient added in place into the slice of its input's gradient: the rule's
  // slot + slice_scatter(g) costs O(input) per slice, and a loop over x(all, t) was quadratic in
  // T. The same sums in the same order (up to the sign of a zero). False where the rule must
  // run: a tape records this backward pass (its ops must be recorded for higher derivatives),
  // or g or the slot is not of the input's dtype, device and shape. A slot not owned (a seed, a
  // rule's result) is copied first: this call owns the copy.
  auto accumulate_slice = [&](const Node& n, const detail::InputRecord& in, const Shape& in_shape,
                              const Tensor& g) {
    const OpAttrs& a = s.attrs_of(n);
    const auto out0 = s.dims.begin() + static_cast<std::ptrdiff_t>(n.output_dims);
    if (!in.needs_grad || a.shape != in_shape || g.dtype() != in.dtype || g.device() != in.device ||
        !std::equal(g.shape().begin(), g.shape().end(), out0, out0 + static_cast<std::ptrdiff_t>(n.output_rank)) ||
        detail::thread_tapes().any_records()) {
      return false;
    }
    Tensor& slot = *grads.emplace(in.id).first;
    char& is_owned = *owned.emplace(in.id).first;
    if (slot.defined() && !is_owned &&
        (slot.dtype() != in.dtype || slot.device() != in.device || slot.shape() != in_shape)) {
      return false;
    }
    if (check && !detail::all_finite(g)) {
      throw ValueError(fmt::format("check_numerics: the gradient of {} (input 0, shape {}) has NaN or Inf",
                                   s.name_of(n), shape_str(in_shape)));
    }
    if (!slot.defined()) {
      slot = zeros(in_shape, in.dtype, in.device);
    } else if (!is_owned) {
      slot = slot.clone();
    }
    is_owned = 1;
    if (g.size() > 0) detail::slice_of(slot, a, g.shape()).add_(g);
    return true;
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
      if (!is_floating(seed.dtype())) {
        throw DTypeError(fmt::format("gradient: output_gradients[{}] is {}; it must be floating (the target is {})",
                                     i, dtype_name(seed.dtype()), dtype_name(t.dtype())));
      }
      if (is_floating(t.dtype()) && seed.dtype() != t.dtype()) seed = seed.astype(t.dtype());
    } else {
      seed = ones(t.shape(), is_floating(t.dtype()) ? t.dtype() : kFloat32, t.device());
    }
    accumulate(t.id(), seed);
  }
  detail::IdMap<char>& source_ids = scratch.source_ids;
  for (const auto& t : sources) source_ids.emplace(t.id());

  std::vector<Tensor>& saved_inputs = scratch.saved_inputs;
  std::vector<Shape>& input_shapes = scratch.input_shapes;
  std::vector<DType>& input_dtypes = scratch.input_dtypes;
  std::vector<bool>& needs_grad = scratch.needs_grad;
  for (auto it = s.nodes.rbegin(); it != s.nodes.rend(); ++it) {
    const Node& n = *it;
    Tensor* slot = grads.find(n.output_id);
    if (!slot || !slot->defined()) continue;
    const Tensor g = *slot;
    disown(n.output_id);  // the rule may keep or return g
    if (!source_ids.contains(n.output_id)) *slot = Tensor();
    const detail::InputRecord* in = s.inputs.data() + n.first;
    // the rule's saved tensors must not have changed since they were saved
    auto check_version = [&](const Tensor& t, std::uint64_t version) {
      if (t.defined() && t.version() != version) {
        throw ValueError(fmt::format(
            "gradient: a tensor of shape {} saved by {} was modified in place after it was saved (version {}, "
            "now {}); compute gradients before updating it, or clone it",
            shape_str(t.shape()), s.name_of(n), version, t.version()));
      }
    };
    saved_inputs.resize(n.count);
    input_shapes.resize(n.count);
    input_dtypes.resize(n.count);
    needs_grad.resize(n.count);
    for (std::size_t i = 0; i < n.count; ++i) {
      check_version(in[i].saved, in[i].saved_version);
      saved_inputs[i] = in[i].saved;
      const auto d0 = s.dims.begin() + static_cast<std::ptrdiff_t>(in[i].dims);
      input_shapes[i].assign(d0, d0 + static_cast<std::ptrdiff_t>(in[i].rank));
      input_dtypes[i] = in[i].dtype;
      needs_grad[i] = in[i].needs_grad;
    }
    check_version(n.saved_output, n.saved_output_version);

    std::vector<Tensor> input_grads;
    auto& thread = detail::thread_tapes();
    const bool outer_rule = thread.in_rule;
    thread.in_rule = true;
    struct RestoreRule {
      detail::ThreadTapes& t;
      bool v;
      ~RestoreRule() { t.in_rule = v; }
    } restore_rule{thread, outer_rule};
    if (n.custom < 0 && n.op == OpId::Slice && accumulate_slice(n, in[0], input_shapes[0], g)) continue;
    if (n.custom >= 0) {
      const detail::CustomRecord& c = s.customs[static_cast<std::size_t>(n.custom)];
      input_grads = c.backward(saved_inputs, n.saved_output, g);
      if (input_grads.size() != n.count) {
        throw ValueError(fmt::format("gradient: custom op {} returned {} gradients for {} inputs", c.name,
                                     input_grads.size(), n.count));
      }
    } else {
      const detail::GradContext ctx{saved_inputs, n.saved_output, s.attrs_of(n), input_shapes, input_dtypes,
                                    needs_grad};
      input_grads = detail::grad_rule(n.op).fn(ctx, g);
    }
    for (std::size_t i = 0; i < n.count; ++i) {
      if (!in[i].needs_grad || i >= input_grads.size() || !input_grads[i].defined()) continue;
      Tensor gi = input_grads[i];
      if (gi.shape() != input_shapes[i]) {
        try {
          gi = sum_to(gi, input_shapes[i]);
        } catch (const ShapeError&) {
          throw ShapeError(fmt::format("gradient: {} returned a gradient of shape {} for input {} of shape {}",
                                       s.name_of(n), shape_str(gi.shape()), i, shape_str(input_shapes[i])));
        }
      }
      if (gi.dtype() != in[i].dtype) gi = gi.astype(in[i].dtype);
      if (gi.device() != in[i].device) gi = gi.to(in[i].device);
      if (check && !detail::all_finite(gi)) {
        throw ValueError(fmt::format("check_numerics: the gradient of {} (input {}, shape {}) has NaN or Inf",
                                     s.name_of(n), i, shape_str(gi.shape())));
      }
      accumulate(in[i].id, gi);
    }
  }

  std::vector<Tensor> result;
  for (const auto& src : sources) {
    const Tensor* g = grads.find(src.id());
    if (g && g->defined()) {
      result.push_back(*g);
    } else {
      result.push_back(unconnected == UnconnectedGradients::Zero ? zeros_like(src) : Tensor());
    }
  }
  if (release) {
    s.used = true;
    if (!s.options.persistent) s.clear_nodes();
  }
  scratch.reset();  // the gradients are the caller's now
  s.scratch = std::move(scratch);
  return result;
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
  if (!state_->options.persistent) state_->clear_nodes();
  Shape shape = target.shape();
  shape.insert(shape.end(), source.shape().begin(), source.shape().end());
  // an empty target has an empty jacobian, [0, source...], connected or not
  if (rows.empty()) return zeros(shape, source.dtype(), source.device());
  if (!connected && unconnected == UnconnectedGradients::None) return Tensor();
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
  if (!state_->options.persistent) state_->clear_nodes();
  if (!connected && unconnected == UnconnectedGradients::None) return Tensor();
  Shape shape = target.shape();
  shape.insert(shape.end(), source.shape().begin() + 1, source.shape().end());
  if (rows.empty()) return zeros(shape, source.dtype(), source.device());
  return stack(rows, 1).reshape(shape);
}

std::vector<RecordedOp> GradientTape::recorded_ops() const {
  const TapeState& s = *state_;
  std::vector<RecordedOp> ops;
  for (const auto& n : s.nodes) {
    RecordedOp op{s.name_of(n), {}, {}, n.output_id, s.shape_at(n.output_dims, n.output_rank)};
    for (std::size_t i = n.first; i < n.first + n.count; ++i) {
      op.inputs.push_back(s.inputs[i].id);
      op.input_shapes.push_back(s.shape_at(s.inputs[i].dims, s.inputs[i].rank));
    }
    ops.push_back(std::move(op));
  }
  return ops;
}

std::string GradientTape::to_dot() const {
  std::ostringstream os;
  os << "digraph tape {\n  rankdir=LR;\n  node [fontname=\"monospace\"];\n";
  std::unordered_set<std::uint64_t> seen;
  auto tensor_node = [&](std::uint64_t id, const Shape& shape) {
    if (seen.insert(id).second) os << fmt::format("  t{} [shape=box, label=\"#{} {}\"];\n", id, id, shape_str(shape));
  };
  const std::vector<RecordedOp> ops = recorded_ops();
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const RecordedOp& op = ops[i];
    os << fmt::format("  op{} [shape=ellipse, label=\"{}\"];\n", i, op.name);
    for (std::size_t k = 0; k < op.inputs.size(); ++k) {
      tensor_node(op.inputs[k], op.input_shapes[k]);
      os << fmt::format("  t{} -> op{};\n", op.inputs[k], i);
    }
    tensor_node(op.output, op.output_shape);
    os << fmt::format("  op{} -> t{};\n", i, op.output);
  }
  os << "}\n";
  return os.str();
}

std::size_t GradientTape::saved_tensor_count() const {
  std::size_t count = 0;
  for (const auto& r : state_->inputs) count += r.saved.defined();
  for (const auto& n : state_->nodes) count += n.saved_output.defined();
  return count;
}

// ---------------------------------------------------------------- free functions

Tensor stop_gradient(const Tensor& t) {
  if (!t.defined()) return t;
  // a new handle on the same storage that no tape has seen
  return Tensor(t.storage(), t.shape(), t.strides(), t.offset(), t.dtype());
}

CheckNumerics::CheckNumerics()
    : previous_(detail::thread_tapes().check_numerics), previous_depth_(detail::thread_tapes().numerics_depth) {
  detail::thread_tapes().check_numerics = true;
  detail::thread_tapes().numerics_depth = no_recording_depth();
  detail::thread_tapes().update();
}
CheckNumerics::~CheckNumerics() {
  detail::thread_tapes().check_numerics = previous_;
  detail::thread_tapes().numerics_depth = previous_depth_;
  detail::thread_tapes().update();
}

Tensor custom_op(const std::string& name, const std::vector<Tensor>& inputs,
                 const std::function<Tensor(const std::vector<Tensor>&)>& forward, CustomGradient backward) {
  if (!forward) throw ValueError(fmt::format("custom_op {}: no forward function", name));
  if (!backward) throw ValueError(fmt::format("custom_op {}: no gradient function", name));
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (!inputs[i].defined()) throw ValueError(fmt::format("custom_op {}: input {} is undefined", name, i));
  Tensor out;
  {
    NoRecording inside;  // the inside of the op is not recorded (a tape created in it records)
    out = forward(inputs);
  }
  if (!out.defined()) throw ValueError(fmt::format("custom_op {}: the forward function returned no tensor", name));
  out = stop_gradient(out);  // a fresh identity even if forward returned an input
  auto& tt = detail::thread_tapes();
  const int depth = no_recording_depth();
  if (tt.checks_numerics(depth) && ![&] {
        NoRecording reading;
        return detail::all_finite(out);
      }()) {
    throw ValueError(
        fmt::format("check_numerics: custom op {} produced NaN or Inf (output shape {})", name, shape_str(out.shape())));
  }
  for (detail::TapeState* t : tt.tapes)
    if (detail::ThreadTapes::records(*t, depth)) t->record_custom(name, inputs, out, backward);
  return out;
}

}  // namespace tapeflow
