#include "rules.hpp"

#include <fmt/format.h>

#include "tapeflow/ops.hpp"

namespace tapeflow::detail {
namespace {

using Grads = std::vector<Tensor>;

// Where x holds the extremum y: equal, or both NaN (a NaN extremum is shared by the NaNs).
Tensor holds_extremum(const Tensor& x, const Tensor& y) { return logical_or(x == y, logical_and(x != x, y != y)); }

// Gradient of y = max(x, axes) (or min): each reduced group's gradient split evenly among the
// elements equal to its extremum, as TensorFlow's reduce_max and PyTorch's amax (a single
// maximum takes it all). A NaN extremum is shared by the group's NaNs, as PyTorch's max().
// Max-pooling sends it to one element instead (max_pool_select / max_pool_scatter).
Tensor extremum_grad(const GradContext& c, const Tensor& g) {
  const Tensor& x = c.inputs[0];
  Shape keep_shape = x.shape();
  for (auto a : c.attrs.axes) keep_shape[a] = 1;
  const Tensor y = c.output.reshape(keep_shape);
  const Tensor mask = holds_extremum(x, y);
  const Tensor count = sum(mask, c.attrs.axes, true).astype(g.dtype());
  return where(mask, g.reshape(keep_shape) / count, 0.0);
}

// Gradient of y = prod(x, axes): g times the product of every other element of x's group, as
// TensorFlow's reduce_prod gradient: the reduced axes moved to the front and flattened into one
// of length r ([r, rest]), the exclusive cumprods from both ends multiplied. No division, so a
// zero in x gets the product of the others (prod / x would be 0 / 0 = NaN), and two zeros give 0.
Tensor prod_grad(const GradContext& c, const Tensor& g) {
  const Tensor& x = c.inputs[0];
  const Shape& xs = x.shape();
  Shape keep_shape = xs;
  for (auto a : c.attrs.axes) keep_shape[a] = 1;
  if (x.size() == 0) return zeros(xs, g.dtype(), g.device());
  std::vector<std::int64_t> perm = c.attrs.axes;  // reduced axes first, then the kept ones
  std::vector<bool> reduced(xs.size(), false);
  std::int64_t r = 1;
  for (auto a : c.attrs.axes) {
    reduced[a] = true;
    r *= xs[a];
  }
  for (std::int64_t i = 0; i < x.rank(); ++i)
    if (!reduced[i]) perm.push_back(i);
  const Tensor xp = x.permute(perm);
  const Tensor flat = xp.reshape({r, x.size() / r});
  const Tensor others = cumprod(flat, 0, true) * cumprod(flat, 0, true, true);  // [r, rest]
  std::vector<std::int64_t> inverse(perm.size());
  for (std::size_t i = 0; i < perm.size(); ++i) inverse[perm[i]] = static_cast<std::int64_t>(i);
  return g.reshape(keep_shape) * others.reshape(xp.shape()).permute(inverse);
}

template <OpId op>
struct Rule {
  static_assert(!op_info(op).differentiable, "a differentiable op of ops.def has no gradient rule");
  static constexpr unsigned saves = 0, for_others = 0;
  static Grads grad(const GradContext&, const Tensor&) {
    throw ValueError(fmt::format("gradient: no gradient rule for {}", op_name(op)));
  }
};

// TAPEFLOW_RULE_SAVES: saves save_mask, of which others_mask only for the other inputs' gradients
#define TAPEFLOW_RULE_SAVES(id, save_mask, others_mask, ...)   \
  template <>                                                  \
  struct Rule<OpId::id> {                                      \
    static constexpr unsigned saves = save_mask;               \
    static constexpr unsigned for_others = others_mask;        \
    static_assert((for_others & ~saves) == 0);                 \
    static Grads grad(const GradContext& c, const Tensor& g) { \
      const auto& in = c.inputs;                               \
      (void)in;                                                \
      __VA_ARGS__                                              \
    }                                                          \
  };
#define TAPEFLOW_RULE(id, save_mask, ...) TAPEFLOW_RULE_SAVES(id, save_mask, 0u, __VA_ARGS__)

constexpr unsigned kX = 1u, kA = 1u, kB = 2u, kY = kSaveOutput;

TAPEFLOW_RULE(Neg, 0, { return {-g}; })
TAPEFLOW_RULE(Abs, kX, { return {g * sign(in[0])}; })
TAPEFLOW_RULE(Sign, 0, { return {g * 0.0}; })
TAPEFLOW_RULE(Exp, kY, { return {g * c.output}; })
TAPEFLOW_RULE(Log, kX, { return {g / in[0]}; })
TAPEFLOW_RULE(Log1p, kX, { return {g / (in[0] + 1.0)}; })
// exp(x), not expm1(x) + 1, which cancels for x << 0 (TensorFlow's rule too)
TAPEFLOW_RULE(Expm1, kX, { return {g * exp(in[0])}; })
// 2 / sqrt(pi) * exp(-x^2)
TAPEFLOW_RULE(Erf, kX, { return {g * (exp(-square(in[0])) * 1.1283791670955126)}; })
TAPEFLOW_RULE(Sin, kX, { return {g * cos(in[0])}; })
TAPEFLOW_RULE(Cos, kX, { return {-(g * sin(in[0]))}; })
TAPEFLOW_RULE(Tan, kY, { return {g * (square(c.output) + 1.0)}; })  // 1 + tan^2 = 1 / cos^2
TAPEFLOW_RULE(Asin, kX, { return {g / sqrt(1.0 - square(in[0]))}; })
TAPEFLOW_RULE(Acos, kX, { return {-g / sqrt(1.0 - square(in[0]))}; })
TAPEFLOW_RULE(Atan, kX, { return {g / (square(in[0]) + 1.0)}; })
TAPEFLOW_RULE(Sinh, kX, { return {g * cosh(in[0])}; })
TAPEFLOW_RULE(Cosh, kX, { return {g * sinh(in[0])}; })
// cosh(asinh x) = sqrt(x^2 + 1) and sinh(acosh x) = sqrt(x^2 - 1), from the output as TensorFlow
// does: x^2 would overflow for |x| > 1e154 (gradient 0 instead of 1 / |x|)
TAPEFLOW_RULE(Asinh, kY, { return {g / cosh(c.output)}; })
TAPEFLOW_RULE(Acosh, kY, { return {g / sinh(c.output)}; })
TAPEFLOW_RULE(Atanh, kX, { return {g / (1.0 - square(in[0]))}; })
TAPEFLOW_RULE(Sqrt, kY, { return {g * 0.5 / c.output}; })
TAPEFLOW_RULE(Tanh, kY, { return {tanh_grad(g, c.output)}; })
TAPEFLOW_RULE(Sigmoid, kY, { return {sigmoid_grad(g, c.output)}; })
TAPEFLOW_RULE(Relu, kX, { return {relu_grad(g, in[0])}; })
TAPEFLOW_RULE(Step, 0, { return {g * 0.0}; })
// piecewise constant: zero almost everywhere (TensorFlow's and PyTorch's rule)
TAPEFLOW_RULE(Floor, 0, { return {g * 0.0}; })
TAPEFLOW_RULE(Ceil, 0, { return {g * 0.0}; })
TAPEFLOW_RULE(Round, 0, { return {g * 0.0}; })
TAPEFLOW_RULE(PowScalar, kX, {
  const double p = c.attrs.p0;
  // x^0 is constant: 0, also at x = 0 where 0 * 0^-1 would be NaN (as PyTorch; so the third
  // derivative of x^2 at 0 is 0)
  if (p == 0.0) return {zeros(g.shape(), g.dtype(), g.device())};
  return {g * p * pow(in[0], p - 1.0)};
})
TAPEFLOW_RULE(Clip, kX, { return {g * clip_mask(in[0], c.attrs.p0, c.attrs.p1)}; })
TAPEFLOW_RULE(ClipMask, 0, { return {g * 0.0}; })

TAPEFLOW_RULE(Add, 0, { return {g, g}; })
TAPEFLOW_RULE(Sub, 0, { return {g, -g}; })
TAPEFLOW_RULE_SAVES(Mul, kA | kB, kA | kB, {
  return {c.needs_grad[0] ? g * in[1] : Tensor(), c.needs_grad[1] ? g * in[0] : Tensor()};
})
TAPEFLOW_RULE_SAVES(Div, kA | kB, kA, {
  return {c.needs_grad[0] ? g / in[1] : Tensor(), c.needs_grad[1] ? -g * in[0] / (in[1] * in[1]) : Tensor()};
})
TAPEFLOW_RULE_SAVES(Pow, kA | kB | kY, kB, {
  const Tensor& a = in[0];
  const Tensor& b = in[1];
  // d/db a^b = a^b log a, taken as 0 where a <= 0 (as TensorFlow)
  // d/da a^b = b a^(b-1), taken as 0 where b = 0 (as PyTorch; 0 * 0^-1 would be NaN)
  return {c.needs_grad[0] ? g * where(b == 0.0, 0.0, b * pow(a, b - 1.0)) : Tensor(),
          c.needs_grad[1] ? g * c.output * where(a > 0.0, log(where(a > 0.0, a, 1.0)), 0.0) : Tensor()};
})
// atan2(y = a, x = b): d/da = b / (a^2 + b^2), d/db = -a / (a^2 + b^2)
TAPEFLOW_RULE(Atan2, kA | kB, {
  const Tensor scale = g / (square(in[0]) + square(in[1]));
  return {c.needs_grad[0] ? scale * in[1] : Tensor(), c.needs_grad[1] ? -scale * in[0] : Tensor()};
})
// TensorFlow's rules: floor_divide is piecewise constant (zero); mod(a, b) = a - floor_divide(a, b) * b
TAPEFLOW_RULE(FloorDiv, 0, { return {g * 0.0, g * 0.0}; })
TAPEFLOW_RULE_SAVES(FloorMod, kA | kB, kA, {
  return {g, c.needs_grad[1] ? -g * floor_divide(in[0], in[1]) : Tensor()};
})
// ties go to the first operand; a NaN result's gradient to the operand that was NaN (the first
// if both), so NaN propagates backwards too (elu(NaN) through minimum(x, 0) had gradient 0)
TAPEFLOW_RULE(Maximum, kA | kB, {
  const Tensor mask = logical_or(in[0] >= in[1], in[0] != in[0]);
  return {where(mask, g, 0.0), where(mask, 0.0, g)};
})
TAPEFLOW_RULE(Minimum, kA | kB, {
  const Tensor mask = logical_or(in[0] <= in[1], in[0] != in[0]);
  return {where(mask, g, 0.0), where(mask, 0.0, g)};
})
// the fused derivatives are differentiable too (second derivatives of tanh, sigmoid, relu)
TAPEFLOW_RULE_SAVES(TanhGrad, kA | kB, kA, {  // a * (1 - b^2)
  return {c.needs_grad[0] ? tanh_grad(g, in[1]) : Tensor(), c.needs_grad[1] ? g * in[0] * in[1] * -2.0 : Tensor()};
})
TAPEFLOW_RULE_SAVES(SigmoidGrad, kA | kB, kA, {  // a * b * (1 - b)
  return {c.needs_grad[0] ? sigmoid_grad(g, in[1]) : Tensor(),
          c.needs_grad[1] ? g * in[0] * (1.0 - 2.0 * in[1]) : Tensor()};
})
TAPEFLOW_RULE(ReluGrad, kB, {  // b > 0 ? a : 0 (NaN a stays): zero derivative in b, as step's
  return {c.needs_grad[0] ? relu_grad(g, in[1]) : Tensor(), c.needs_grad[1] ? g * 0.0 : Tensor()};
})
TAPEFLOW_RULE(Where, 1u, { return {Tensor(), where(in[0], g, 0.0), where(in[0], 0.0, g)}; })

TAPEFLOW_RULE(Sum, 0, {
  const Shape& xs = c.attrs.shape;
  Shape keep = xs;
  for (auto a : c.attrs.axes) keep[a] = 1;
  return {g.reshape(keep).broadcast_to(xs)};
})
TAPEFLOW_RULE(Max, kX | kY, { return {extremum_grad(c, g)}; })
TAPEFLOW_RULE(Min, kX | kY, { return {extremum_grad(c, g)}; })
TAPEFLOW_RULE(Prod, kX, { return {prod_grad(c, g)}; })

// [.., m, k] @ [.., k, n]: dA = g @ B^T, dB = A^T @ g (batch broadcasting undone by the tape)
TAPEFLOW_RULE_SAVES(Matmul, kA | kB, kA | kB, {
  return {c.needs_grad[0] ? matmul(g, in[1].transpose(-1, -2)) : Tensor(),
          c.needs_grad[1] ? matmul(in[0].transpose(-1, -2), g) : Tensor()};
})

TAPEFLOW_RULE(Reshape, 0, { return {g.reshape(c.attrs.shape)}; })
TAPEFLOW_RULE(Permute, 0, {
  std::vector<std::int64_t> inverse(c.attrs.axes.size());
  for (std::size_t i = 0; i < inverse.size(); ++i) inverse[c.attrs.axes[i]] = static_cast<std::int64_t>(i);
  return {g.permute(inverse)};
})
TAPEFLOW_RULE(BroadcastTo, 0, { return {g}; })
TAPEFLOW_RULE(Slice, 0, { return {slice_scatter(g, c.attrs.shape, c.attrs.starts, c.attrs.steps)}; })
TAPEFLOW_RULE(SliceScatter, 0, { return {slice_of(g, c.attrs, c.input_shapes[0])}; })
TAPEFLOW_RULE(Concat, 0, {
  std::vector<std::int64_t> sizes;
  const auto axis = c.attrs.axes[0];
  for (const auto& s : c.input_shapes) sizes.push_back(s[axis]);
  return split(g, sizes, axis);
})
// im2col and col2im are linear and each other's adjoint; attrs: image [b, h, w, c] and
// [kh, kw, stride, same padding, dilation]
TAPEFLOW_RULE(Im2col, 0, {
  const auto& w = c.attrs.axes;
  return {col2im(g, c.attrs.shape[1], c.attrs.shape[2], w[0], w[1], w[2], w[3] ? Padding::Same : Padding::Valid,
                 w[4])};
})
TAPEFLOW_RULE(Col2im, 0, {
  const auto& w = c.attrs.axes;
  return {im2col(g, w[0], w[1], w[2], w[3] ? Padding::Same : Padding::Valid, 0.0, w[4])};
})
// max_pool_select(x, v) and max_pool_scatter(x, g) are linear in their second input and each
// other's adjoint there; x only picks positions (piecewise constant: no gradient, as an argmax)
TAPEFLOW_RULE(MaxPoolSelect, kA, {
  const auto& w = c.attrs.axes;
  const Padding p = w[3] ? Padding::Same : Padding::Valid;
  return {Tensor(), c.needs_grad[1] ? max_pool_scatter(in[0], g, w[0], w[2], p) : Tensor()};
})
TAPEFLOW_RULE(MaxPoolScatter, kA, {
  const auto& w = c.attrs.axes;
  const Padding p = w[3] ? Padding::Same : Padding::Valid;
  return {Tensor(), c.needs_grad[1] ? max_pool_select(in[0], g, w[0], w[2], p) : Tensor()};
})
TAPEFLOW_RULE(Gather, kB, {
  const auto axis = c.attrs.axes[0];
  Shape base = g.shape();
  base[axis] = c.input_shapes[0][axis];
  return {detail::scatter_add_trusted(zeros(base, g.dtype(), g.device()), in[1], g, axis), Tensor()};
})
TAPEFLOW_RULE(ScatterAdd, kB, {
  if (!c.needs_grad[2]) return {g, Tensor(), Tensor()};
  // src [p] went to index[p] along the axis, index and src broadcast against each other
  const Shape both = broadcast_shapes(c.input_shapes[1], c.input_shapes[2], "scatter_add");
  const Tensor index = c.input_shapes[1] == both ? in[1] : in[1].broadcast_to(both);
  return {g, Tensor(), detail::take_along_axis_trusted(g, index, c.attrs.axes[0])};
})
// out = scatter_max / scatter_min(base, index, src) (`name`): each result's gradient split evenly
// among the values equal to it, src's at its index and base's (NaN results among the NaNs, as
// extremum_grad). With attrs.p0 = 0 base takes no share: its gradient is g where no src value
// arrived (unsorted_segment_max's filler, which TensorFlow does not count).
Grads scatter_extremum_grad(const GradContext& c, const Tensor& g, const char* name) {
  const auto axis = c.attrs.axes[0];
  const Shape both = broadcast_shapes(c.input_shapes[1], c.input_shapes[2], name);
  const Tensor index = c.input_shapes[1] == both ? c.inputs[1] : c.inputs[1].broadcast_to(both);
  const Tensor src = c.input_shapes[2] == both ? c.inputs[2] : c.inputs[2].broadcast_to(both);
  const Tensor src_hit = holds_extremum(src, detail::take_along_axis_trusted(c.output, index, axis));
  const Tensor arrived = detail::scatter_add_trusted(zeros(c.output.shape(), g.dtype(), g.device()), index,
                                                     src_hit.astype(g.dtype()), axis);
  Tensor count = arrived, base_grad;
  if (c.attrs.p0 != 0) {
    const Tensor base_hit = holds_extremum(c.inputs[0], c.output);
    count = count + base_hit.astype(g.dtype());
    if (c.needs_grad[0]) base_grad = where(base_hit, g / maximum(count, 1.0), 0.0);
  } else if (c.needs_grad[0]) {
    base_grad = where(arrived > 0.0, 0.0, g);
  }
  Tensor src_grad;
  if (c.needs_grad[2])
    src_grad = where(src_hit, detail::take_along_axis_trusted(g / maximum(count, 1.0), index, axis), 0.0);
  return {base_grad, Tensor(), src_grad};
}

TAPEFLOW_RULE(ScatterMax, kA | kB | 4u | kY, { return scatter_extremum_grad(c, g, "scatter_max"); })
TAPEFLOW_RULE(ScatterMin, kA | kB | 4u | kY, { return scatter_extremum_grad(c, g, "scatter_min"); })
TAPEFLOW_RULE(Cast, 0, {
  if (!is_floating(c.attrs.dtype)) return {Tensor()};
  return {g.astype(c.attrs.dtype)};
})
TAPEFLOW_RULE(Copy, 0, { return {g}; })
// y = softmax(x): dx = y * (g - sum(g * y)); y = log_softmax(x): dx = g - exp(y) * sum(g)
TAPEFLOW_RULE(Softmax, kY, {
  const std::int64_t axis = c.attrs.axes[0];
  return {c.output * (g - sum(g * c.output, {axis}, true))};
})
TAPEFLOW_RULE(LogSoftmax, kY, {
  const std::int64_t axis = c.attrs.axes[0];
  return {g - exp(c.output) * sum(g, {axis}, true)};
})

#undef TAPEFLOW_RULE
#undef TAPEFLOW_RULE_SAVES

constexpr GradRule kRules[] = {
#define TAPEFLOW_OP(id, name, kind, diff) {Rule<OpId::id>::saves, Rule<OpId::id>::for_others, &Rule<OpId::id>::grad},
#include "tapeflow/ops.def"
#undef TAPEFLOW_OP
};
static_assert(sizeof(kRules) / sizeof(kRules[0]) == kNumOps, "one gradient rule entry per op of ops.def");

}  // namespace

Tensor slice_of(const Tensor& g, const OpAttrs& a, const Shape& out_shape) {
  std::vector<Index> idx;
  for (std::size_t i = 0; i < a.starts.size(); ++i) {
    const std::int64_t len = out_shape[i], start = a.starts[i], step = a.steps[i];
    if (len == 0) {
      idx.emplace_back(Slice(0, 0));
      continue;
    }
    const std::int64_t stop = start + len * step;
    idx.emplace_back(stop < 0 ? Slice(start, none, step) : Slice(start, stop, step));
  }
  return g.index(idx);
}

const GradRule& grad_rule(OpId op) { return kRules[static_cast<std::size_t>(op)]; }

}  // namespace tapeflow::detail
