#pragma once
// The gradient rules, one per differentiable primitive of ops.def, written with public
// tensor ops only (so every device and higher orders come for free). Rules never undo
// broadcasting: the tape sums each input's gradient back to its shape (sum_to).
#include <vector>

#include "tapeflow/observer.hpp"
#include "tapeflow/tensor.hpp"

namespace tapeflow::detail {

struct GradContext {
  const std::vector<Tensor>& inputs;  // the inputs the rule saved (others undefined)
  const Tensor& output;               // defined when the rule saved it
  const OpAttrs& attrs;
  const std::vector<Shape>& input_shapes;
  const std::vector<DType>& input_dtypes;
  const std::vector<bool>& needs_grad;
};

// grad: the gradient of the op's output; returns one gradient per input (undefined = none).
using GradFn = std::vector<Tensor> (*)(const GradContext& ctx, const Tensor& grad);

inline constexpr unsigned kSaveOutput = 1u << 7;
struct GradRule {
  unsigned saves;  // bit i: input i; kSaveOutput: the output
  // of `saves`, the inputs only the other inputs' gradients read (mul's a serves only db): the
  // tape saves them only when another input needs a gradient, as PyTorch's derivatives.yaml
  // does. x @ W with a constant x keeps no reference to W, which the optimizer then updates.
  unsigned for_others;
  GradFn fn;
};

const GradRule& grad_rule(OpId op);

// The view of g at the slice (attrs.starts, attrs.steps) of out_shape: SliceScatter's gradient,
// and where the tape adds a Slice's gradient into its input's.
Tensor slice_of(const Tensor& g, const OpAttrs& a, const Shape& out_shape);

}  // namespace tapeflow::detail
