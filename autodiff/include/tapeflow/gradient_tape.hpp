#pragma once
/// GradientTape: reverse-mode automatic differentiation with TensorFlow's semantics.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "tapeflow/observer.hpp"
#include "tapeflow/tensor.hpp"
#include "tapeflow/variable.hpp"

namespace tapeflow {

/// What gradient() returns for a source the target does not depend on.
enum class UnconnectedGradients { None, Zero };

struct TapeOptions {
  /// Allow many gradient() calls (the tape keeps what it saved until reset or destruction).
  bool persistent = false;
  /// Watch every trainable Variable an op reads.
  bool watch_accessed_variables = true;
};

/// One op the tape recorded, for inspection.
struct RecordedOp {
  std::string name;
  std::vector<std::uint64_t> inputs;  ///< tensor ids
  std::vector<Shape> input_shapes;
  std::uint64_t output = 0;
  Shape output_shape;
};

namespace detail {
struct TapeState;
}

/// Records the ops of the calling thread while in scope. Tapes nest: an outer tape records
/// what an inner tape's gradient() computes, which gives higher-order derivatives.
class GradientTape {
 public:
  explicit GradientTape(TapeOptions options = {});
  /// GradientTape tape(true) is a persistent tape.
  explicit GradientTape(bool persistent) : GradientTape(TapeOptions{persistent, true}) {}
  ~GradientTape();
  GradientTape(const GradientTape&) = delete;
  GradientTape& operator=(const GradientTape&) = delete;

  /// Watch a floating tensor (constants are not watched by default).
  void watch(const Tensor& t);
  void watch(const std::vector<Tensor>& ts);
  /// Watch Variables (a model's trainable_weights(), with watch_accessed_variables off).
  template <class V, class = std::enable_if_t<std::is_base_of_v<Tensor, V> && !std::is_same_v<V, Tensor>>>
  void watch(const std::vector<V>& vs) {
    watch(std::vector<Tensor>(vs.begin(), vs.end()));
  }
  /// The Variables this tape watched, in the order it first saw them.
  std::vector<Variable> watched_variables() const;

  /// d target / d source. A non-scalar target is summed (or weighted by output_gradient).
  /// A template, so that a braced list, even of one source ({w}), is a list of sources and
  /// gives a vector back, as tape.gradient(loss, [w]) does in TensorFlow.
  template <class S, class = std::enable_if_t<std::is_base_of_v<Tensor, S>>>
  Tensor gradient(const Tensor& target, const S& source, const Tensor& output_gradient = {},
                  UnconnectedGradients unconnected = UnconnectedGradients::None) {
    return gradient(target, std::vector<Tensor>{source}, output_gradient, unconnected)[0];
  }
  std::vector<Tensor> gradient(const Tensor& target, const std::vector<Tensor>& sources,
                               const Tensor& output_gradient = {},
                               UnconnectedGradients unconnected = UnconnectedGradients::None);
  /// Gradients with respect to a vector of Variables (a model's trainable_weights()). A
  /// template, so that a braced list {w, b} still picks the overload above.
  template <class V, class = std::enable_if_t<std::is_base_of_v<Tensor, V> && !std::is_same_v<V, Tensor>>>
  std::vector<Tensor> gradient(const Tensor& target, const std::vector<V>& sources, const Tensor& output_gradient = {},
                               UnconnectedGradients unconnected = UnconnectedGradients::None) {
    return gradient(target, std::vector<Tensor>(sources.begin(), sources.end()), output_gradient, unconnected);
  }
  /// The sum of the targets' gradients.
  std::vector<Tensor> gradient(const std::vector<Tensor>& targets, const std::vector<Tensor>& sources,
                               const std::vector<Tensor>& output_gradients = {},
                               UnconnectedGradients unconnected = UnconnectedGradients::None);
  template <class V, class = std::enable_if_t<std::is_base_of_v<Tensor, V> && !std::is_same_v<V, Tensor>>>
  std::vector<Tensor> gradient(const std::vector<Tensor>& targets, const std::vector<V>& sources,
                               const std::vector<Tensor>& output_gradients = {},
                               UnconnectedGradients unconnected = UnconnectedGradients::None) {
    return gradient(targets, std::vector<Tensor>(sources.begin(), sources.end()), output_gradients, unconnected);
  }
  /// [target shape..., source shape...]
  Tensor jacobian(const Tensor& target, const Tensor& source,
                  UnconnectedGradients unconnected = UnconnectedGradients::None);
  /// target [batch, y...], source [batch, x...] -> [batch, y..., x...], assuming example i of
  /// the target depends only on example i of the source.
  Tensor batch_jacobian(const Tensor& target, const Tensor& source,
                        UnconnectedGradients unconnected = UnconnectedGradients::None);

  /// Forgets everything recorded and watched.
  void reset();

  /// While alive, this tape records nothing.
  class StopRecording {
   public:
    explicit StopRecording(GradientTape& tape);
    ~StopRecording();
    StopRecording(const StopRecording&) = delete;
    StopRecording& operator=(const StopRecording&) = delete;

   private:
    GradientTape& tape_;
    bool was_paused_;
  };
  StopRecording stop_recording() { return StopRecording(*this); }

  /// The recorded ops, oldest first.
  std::vector<RecordedOp> recorded_ops() const;
  /// The recorded graph in Graphviz DOT.
  std::string to_dot() const;
  /// Tensors the tape holds for its gradient rules.
  std::size_t saved_tensor_count() const;

 private:
  friend struct detail::TapeState;
  std::unique_ptr<detail::TapeState> state_;
  std::vector<Tensor> gradient_impl(const std::vector<Tensor>& targets, const std::vector<Tensor>& sources,
                                    const std::vector<Tensor>& output_gradients, UnconnectedGradients unconnected,
                                    bool release);
};

/// The same values, seen by no tape as depending on anything.
Tensor stop_gradient(const Tensor& t);

/// While alive, every op on this thread checks its floating results, and every gradient()
/// its rules' results, and throws ValueError naming the first op that produced NaN or Inf.
class CheckNumerics {
 public:
  CheckNumerics();
  ~CheckNumerics();
  CheckNumerics(const CheckNumerics&) = delete;
  CheckNumerics& operator=(const CheckNumerics&) = delete;

 private:
  bool previous_;
  int previous_depth_;
};

/// The gradient of a custom op: (inputs, output, output gradient) -> one gradient per input
/// (an undefined Tensor for none). Written with tensor ops, it is differentiable itself.
using CustomGradient =
    std::function<std::vector<Tensor>(const std::vector<Tensor>& inputs, const Tensor& output, const Tensor& grad)>;

/// Runs forward(inputs) without recording its inside, and records one op `name` whose
/// gradient is `backward` (like tf.custom_gradient).
Tensor custom_op(const std::string& name, const std::vector<Tensor>& inputs,
                 const std::function<Tensor(const std::vector<Tensor>&)>& forward, CustomGradient backward);

}  // namespace tapeflow
