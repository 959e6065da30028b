// gradcheck (float64 central differences) for every differentiable primitive of ops.def, for
// the composites built on them, and second derivatives through nested tapes.
//
// The op table drives the test: every differentiable row of kOpInfo must have a case in
// cases_for() below (a new op without one fails "every differentiable op ..."), and every
// case must really record its primitive on a tape.
#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <cstdint>
#include <iostream>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "golden/nd_index_golden.hpp"
#include "golden/prod_golden.hpp"
#include "tapeflow/autodiff.hpp"
#include "tapeflow/device.hpp"
#include "tapeflow/losses.hpp"

using namespace tapeflow;

namespace {

// n distinct float64 values evenly spaced in [lo, hi), shuffled by a fixed LCG. The offset of
// 0.37 of a step keeps them away from 0 and +-0.5 (kinks of abs, relu, clip) and from each
// other (ties of max, min, maximum).
Tensor distinct(const Shape& shape, double lo, double hi, std::uint64_t seed = 1) {
  const std::int64_t n = numel(shape);
  std::vector<std::int64_t> perm(static_cast<std::size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  std::uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (std::int64_t i = n - 1; i > 0; --i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    std::swap(perm[static_cast<std::size_t>(i)], perm[static_cast<std::size_t>((s >> 33) % static_cast<std::uint64_t>(i + 1))]);
  }
  const double step = (hi - lo) / static_cast<double>(n);
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = lo + (static_cast<double>(perm[static_cast<std::size_t>(i)]) + 0.37) * step;
  return tensor(v, shape);
}
// Values on both sides of 0, well away from it.
Tensor anyv(const Shape& shape, std::uint64_t seed = 1) { return distinct(shape, -1.5, 1.5, seed); }
// Values in [0.5, 2): inside the domain of log, sqrt, pow.
Tensor posv(const Shape& shape, std::uint64_t seed = 1) { return distinct(shape, 0.5, 2.0, seed); }

Tensor i64(std::initializer_list<std::int64_t> values, const Shape& shape) {
  return tensor(std::vector<std::int64_t>(values), shape);
}

struct Case {
  std::string label;
  TensorFunction fn;
  std::vector<Tensor> inputs;
  GradcheckOptions options{};
};

// A one-input op on a plain tensor, a transposed view and a view sliced with negative steps.
void unary_cases(std::vector<Case>& cs, const std::string& name, std::function<Tensor(const Tensor&)> f,
                 Tensor (*values)(const Shape&, std::uint64_t)) {
  cs.push_back({name + " [2, 3]", [f](const std::vector<Tensor>& x) { return f(x[0]); }, {values({2, 3}, 1)}});
  cs.push_back({name + " of a transposed [3, 2] view",
                [f](const std::vector<Tensor>& x) { return f(x[0].transpose()); },
                {values({3, 2}, 2)}});
  cs.push_back({name + " of x[::-2, ::-1]",
                [f](const std::vector<Tensor>& x) { return f(x[0](Slice(none, none, -2), Slice(none, none, -1))); },
                {values({4, 3}, 3)}});
}

// A two-input op broadcast [3, 1] with [4], then a transposed operand with one sliced with a
// negative step, then a tensor with a C++ number on either side.
void binary_cases(std::vector<Case>& cs, const std::string& name, std::function<Tensor(const Tensor&, const Tensor&)> f,
                  Tensor a31, Tensor b4, Tensor a43, Tensor b8, Tensor a23, double number) {
  cs.push_back({name + " [3, 1] with [4]", [f](const std::vector<Tensor>& x) { return f(x[0], x[1]); }, {a31, b4}});
  cs.push_back({name + " transposed [3, 4] view with b[::-2] of [8]",
                [f](const std::vector<Tensor>& x) { return f(x[0].transpose(), x[1](Slice(none, none, -2))); },
                {a43, b8}});
  cs.push_back({name + " [2, 3] with a number on the right",
                [f, number](const std::vector<Tensor>& x) { return f(x[0], Tensor(number)); }, {a23}});
  cs.push_back({name + " a number on the left with [2, 3]",
                [f, number](const std::vector<Tensor>& x) { return f(Tensor(number), x[0]); }, {a23}});
}

// The cases that exercise one primitive of ops.def; empty for ops that are not differentiable.
// No default: the compiler warns about a new op (-Wswitch), and the test fails on it.
std::vector<Case> cases_for(OpId op) {
  std::vector<Case> cs;
  switch (op) {
    // ------------------------------------------------------------ unary
    case OpId::Neg:
      unary_cases(cs, "neg", [](const Tensor& x) { return neg(x); }, anyv);
      return cs;
    case OpId::Abs:
      unary_cases(cs, "abs", [](const Tensor& x) { return abs(x); }, anyv);
      return cs;
    case OpId::Sign:
      // sign's own gradient is zero; times exp(x) so the check is not trivially zero
      unary_cases(cs, "sign(x) * exp(x)", [](const Tensor& x) { return sign(x) * exp(x); }, anyv);
      return cs;
    case OpId::Exp:
      unary_cases(cs, "exp", [](const Tensor& x) { return exp(x); }, anyv);
      return cs;
    case OpId::Log:
      unary_cases(cs, "log", [](const Tensor& x) { return log(x); }, posv);
      return cs;
    case OpId::Log1p:
      unary_cases(cs, "log1p", [](const Tensor& x) { return log1p(x); }, posv);
      unary_cases(cs, "log1p(x - 0.9)", [](const Tensor& x) { return log1p(x - 0.9); }, posv);
      return cs;
    case OpId::Expm1:
      unary_cases(cs, "expm1", [](const Tensor& x) { return expm1(x); }, anyv);
      return cs;
    case OpId::Erf:
      unary_cases(cs, "erf", [](const Tensor& x) { return erf(x); }, anyv);
      unary_cases(cs, "erf(3 x)", [](const Tensor& x) { return erf(x * 3.0); }, anyv);
      return cs;
    case OpId::Sin:
      unary_cases(cs, "sin(3 x)", [](const Tensor& x) { return sin(x * 3.0); }, anyv);
      return cs;
    case OpId::Cos:
      unary_cases(cs, "cos(3 x)", [](const Tensor& x) { return cos(x * 3.0); }, anyv);
      return cs;
    case OpId::Tan:
      unary_cases(cs, "tan", [](const Tensor& x) { return tan(x); }, anyv);  // |x| < 1.5 < pi / 2
      return cs;
    // the inverse functions inside their domains: (-1, 1) for asin, acos, atanh; from 1 for acosh
    case OpId::Asin:
      unary_cases(cs, "asin(x / 2)", [](const Tensor& x) { return asin(x * 0.5); }, anyv);
      return cs;
    case OpId::Acos:
      unary_cases(cs, "acos(x / 2)", [](const Tensor& x) { return acos(x * 0.5); }, anyv);
      return cs;
    case OpId::Atan:
      unary_cases(cs, "atan(3 x)", [](const Tensor& x) { return atan(x * 3.0); }, anyv);
      return cs;
    case OpId::Sinh:
      unary_cases(cs, "sinh", [](const Tensor& x) { return sinh(x); }, anyv);
      return cs;
    case OpId::Cosh:
      unary_cases(cs, "cosh", [](const Tensor& x) { return cosh(x); }, anyv);
      return cs;
    case OpId::Asinh:
      unary_cases(cs, "asinh(3 x)", [](const Tensor& x) { return asinh(x * 3.0); }, anyv);
      return cs;
    case OpId::Acosh:
      unary_cases(cs, "acosh(x + 0.7)", [](const Tensor& x) { return acosh(x + 0.7); }, posv);
      return cs;
    case OpId::Atanh:
      unary_cases(cs, "atanh(x / 2)", [](const Tensor& x) { return atanh(x * 0.5); }, anyv);
      return cs;
    // zero gradients, times exp(x) as sign's; the inputs stay off integers and halves
    case OpId::Floor:
      unary_cases(cs, "floor(x) * exp(x)", [](const Tensor& x) { return floor(x) * exp(x); }, anyv);
      return cs;
    case OpId::Ceil:
      unary_cases(cs, "ceil(x) * exp(x)", [](const Tensor& x) { return ceil(x) * exp(x); }, anyv);
      return cs;
    case OpId::Round:
      unary_cases(cs, "round(x) * exp(x)", [](const Tensor& x) { return round(x) * exp(x); }, anyv);
      return cs;
    case OpId::Sqrt:
      unary_cases(cs, "sqrt", [](const Tensor& x) { return sqrt(x); }, posv);
      return cs;
    case OpId::Tanh:
      unary_cases(cs, "tanh", [](const Tensor& x) { return tanh(x); }, anyv);
      return cs;
    case OpId::Sigmoid:
      unary_cases(cs, "sigmoid", [](const Tensor& x) { return sigmoid(x); }, anyv);
      return cs;
    case OpId::Relu:
      unary_cases(cs, "relu", [](const Tensor& x) { return relu(x); }, anyv);
      return cs;
    case OpId::Step:
      unary_cases(cs, "step(x) * x", [](const Tensor& x) { return step(x) * x; }, anyv);
      return cs;
    case OpId::PowScalar:
      unary_cases(cs, "x ** 3", [](const Tensor& x) { return pow(x, 3.0); }, anyv);
      unary_cases(cs, "x ** 2.5", [](const Tensor& x) { return pow(x, 2.5); }, posv);
      unary_cases(cs, "x ** -1.5", [](const Tensor& x) { return pow(x, -1.5); }, posv);
      return cs;
    case OpId::Clip:
      unary_cases(cs, "clip(x, -0.5, 0.5)", [](const Tensor& x) { return clip(x, -0.5, 0.5); }, anyv);
      return cs;
    case OpId::ClipMask:
      unary_cases(cs, "clip_mask(x, -0.5, 0.5) * x", [](const Tensor& x) { return clip_mask(x, -0.5, 0.5) * x; },
                  anyv);
      return cs;

    // ------------------------------------------------------------ binary
    case OpId::Add:
      binary_cases(cs, "add", [](const Tensor& a, const Tensor& b) { return a + b; }, anyv({3, 1}, 1), anyv({4}, 2),
                   anyv({4, 3}, 3), anyv({8}, 4), anyv({2, 3}, 5), 1.5);
      cs.push_back({"add [2, 3, 4] with [3, 1] (leading axis added)",
                    [](const std::vector<Tensor>& x) { return x[0] + x[1]; }, {anyv({2, 3, 4}, 6), anyv({3, 1}, 7)}});
      return cs;
    case OpId::Sub:
      binary_cases(cs, "sub", [](const Tensor& a, const Tensor& b) { return a - b; }, anyv({3, 1}, 1), anyv({4}, 2),
                   anyv({4, 3}, 3), anyv({8}, 4), anyv({2, 3}, 5), 1.5);
      return cs;
    case OpId::Mul:
      binary_cases(cs, "mul", [](const Tensor& a, const Tensor& b) { return a * b; }, anyv({3, 1}, 1), anyv({4}, 2),
                   anyv({4, 3}, 3), anyv({8}, 4), anyv({2, 3}, 5), -2.5);
      cs.push_back({"mul x * x (same tensor twice)", [](const std::vector<Tensor>& x) { return x[0] * x[0]; },
                    {anyv({2, 3}, 6)}});
      return cs;
    case OpId::Div:
      binary_cases(cs, "div", [](const Tensor& a, const Tensor& b) { return a / b; }, anyv({3, 1}, 1), posv({4}, 2),
                   anyv({4, 3}, 3), posv({8}, 4), posv({2, 3}, 5), 1.5);
      return cs;
    case OpId::Pow:
      binary_cases(cs, "pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); }, posv({3, 1}, 1),
                   anyv({4}, 2), posv({4, 3}, 3), anyv({8}, 4), posv({2, 3}, 5), 1.5);
      return cs;
    case OpId::Maximum:
      // a and b interleave without ties: a from one grid, b from a shifted one
      binary_cases(cs, "maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); },
                   distinct({3, 1}, -1.5, 1.5, 1), distinct({4}, -1.4, 1.6, 2), distinct({4, 3}, -1.5, 1.5, 3),
                   distinct({8}, -1.3, 1.7, 4), anyv({2, 3}, 5), 0.05);
      return cs;
    case OpId::Minimum:
      binary_cases(cs, "minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); },
                   distinct({3, 1}, -1.5, 1.5, 1), distinct({4}, -1.4, 1.6, 2), distinct({4, 3}, -1.5, 1.5, 3),
                   distinct({8}, -1.3, 1.7, 4), anyv({2, 3}, 5), 0.05);
      return cs;
    case OpId::Atan2:
      // every quadrant: a and b on both sides of 0, away from the origin
      binary_cases(cs, "atan2", [](const Tensor& a, const Tensor& b) { return atan2(a, b); }, anyv({3, 1}, 1),
                   anyv({4}, 2), anyv({4, 3}, 3), anyv({8}, 4), anyv({2, 3}, 5), -0.8);
      return cs;
    // piecewise: the quotients a / b stay off whole numbers (a from one grid, b from [0.5, 2)),
    // where floor_divide jumps and mod's value does; mod's gradient in b is -floor_divide(a, b)
    case OpId::FloorDiv:
      binary_cases(cs, "floor_divide(a, b) * a", [](const Tensor& a, const Tensor& b) { return floor_divide(a, b) * a; },
                   distinct({3, 1}, -3.1, 3.3, 1), distinct({4}, 0.61, 1.9, 2), distinct({4, 3}, -3.1, 3.3, 3),
                   distinct({8}, 0.61, 1.9, 4), distinct({2, 3}, -3.1, 3.3, 5), 0.77);
      return cs;
    case OpId::FloorMod:
      binary_cases(cs, "mod", [](const Tensor& a, const Tensor& b) { return mod(a, b); }, distinct({3, 1}, -3.1, 3.3, 1),
                   distinct({4}, 0.61, 1.9, 2), distinct({4, 3}, -3.1, 3.3, 3), distinct({8}, -1.9, -0.61, 4),
                   distinct({2, 3}, -3.1, 3.3, 5), 0.77);
      return cs;
    case OpId::TanhGrad:
      // (the second derivatives of tanh, sigmoid and relu run these through gradgradcheck too)
      binary_cases(cs, "tanh_grad", [](const Tensor& a, const Tensor& b) { return tanh_grad(a, b); }, anyv({3, 1}, 1),
                   anyv({4}, 2), anyv({4, 3}, 3), anyv({8}, 4), anyv({2, 3}, 5), 0.7);
      return cs;
    case OpId::SigmoidGrad:
      binary_cases(cs, "sigmoid_grad", [](const Tensor& a, const Tensor& b) { return sigmoid_grad(a, b); },
                   anyv({3, 1}, 1), anyv({4}, 2), anyv({4, 3}, 3), anyv({8}, 4), anyv({2, 3}, 5), 0.3);
      return cs;
    case OpId::ReluGrad:
      binary_cases(cs, "relu_grad", [](const Tensor& a, const Tensor& b) { return relu_grad(a, b); }, anyv({3, 1}, 1),
                   anyv({4}, 2), anyv({4, 3}, 3), anyv({8}, 4), anyv({2, 3}, 5), 0.8);
      return cs;
    case OpId::Where: {
      const Tensor cond34 = tensor<bool>({true, false, true, true, false, false, true, false, true, false, false, true},
                                         {3, 4});
      cs.push_back({"where(cond [3, 4], [3, 1], [4])",
                    [cond34](const std::vector<Tensor>& x) { return where(cond34.to(x[0].device()), x[0], x[1]); },
                    {anyv({3, 1}, 1), anyv({4}, 2)}});
      cs.push_back({"where(cond, transposed view, 0.5)",
                    [cond34](const std::vector<Tensor>& x) { return where(cond34.to(x[0].device()), x[0].transpose(), 0.5); },
                    {anyv({4, 3}, 3)}});
      cs.push_back({"where(x > 0, x * x, -x) (a condition computed from x)",
                    [](const std::vector<Tensor>& x) { return where(x[0] > 0.0, x[0] * x[0], -x[0]); },
                    {anyv({2, 3}, 4)}});
      return cs;
    }

    // ------------------------------------------------------------ reductions
    case OpId::Sum:
      cs.push_back({"sum all", [](const std::vector<Tensor>& x) { return sum(x[0]); }, {anyv({2, 3}, 1)}});
      cs.push_back({"sum axis 1", [](const std::vector<Tensor>& x) { return sum(x[0], {1}); }, {anyv({2, 3, 4}, 2)}});
      cs.push_back({"sum axes {0, 2} keepdims", [](const std::vector<Tensor>& x) { return sum(x[0], {0, 2}, true); },
                    {anyv({2, 3, 4}, 3)}});
      cs.push_back({"sum axis -1 of a transposed view",
                    [](const std::vector<Tensor>& x) { return sum(x[0].transpose(), {-1}); }, {anyv({4, 3}, 4)}});
      return cs;
    case OpId::Max:
      cs.push_back({"max all", [](const std::vector<Tensor>& x) { return max(x[0]); }, {anyv({2, 3}, 1)}});
      cs.push_back({"max axis 1", [](const std::vector<Tensor>& x) { return max(x[0], {1}); }, {anyv({2, 3, 4}, 2)}});
      cs.push_back({"max axes {0, 2} keepdims", [](const std::vector<Tensor>& x) { return max(x[0], {0, 2}, true); },
                    {anyv({2, 3, 4}, 3)}});
      cs.push_back({"max axis 0 of x[::-1, ::2]",
                    [](const std::vector<Tensor>& x) { return max(x[0](Slice(none, none, -1), Slice(none, none, 2)), {0}); },
                    {anyv({3, 6}, 4)}});
      return cs;
    case OpId::Min:
      cs.push_back({"min all", [](const std::vector<Tensor>& x) { return min(x[0]); }, {anyv({2, 3}, 1)}});
      cs.push_back({"min axis -1", [](const std::vector<Tensor>& x) { return min(x[0], {-1}); }, {anyv({2, 3, 4}, 2)}});
      cs.push_back({"min axes {1, 2} keepdims", [](const std::vector<Tensor>& x) { return min(x[0], {1, 2}, true); },
                    {anyv({2, 3, 4}, 3)}});
      cs.push_back({"min axis 1 of a transposed view",
                    [](const std::vector<Tensor>& x) { return min(x[0].transpose(), {1}); }, {anyv({4, 3}, 4)}});
      return cs;
    case OpId::Prod: {
      // [2, 3, 4] with one zero in row (0, 1, :) and two in row (1, 2, :): over axis 2 those
      // groups' gradients are the others' product (one zero) and 0 (two zeros), where prod / x
      // would be NaN; over other axes the zeros meet other groups
      const std::vector<double> z = {0.9,  -1.2, 0.7, 1.1, 0.8, 0.0,  -0.6, 1.3, 1.4, 0.5, -0.9, 1.2,
                                     -0.7, 1.05, 0.6, 1.5, 0.0, -1.1, 0.95, 0.0, 1.25, 0.0, -0.8, 0.85};
      const Tensor zx = tensor(z, {2, 3, 4});
      cs.push_back({"prod all", [](const std::vector<Tensor>& x) { return prod(x[0]); }, {anyv({2, 3}, 1)}});
      cs.push_back({"prod axis 2 with one zero and two zeros in a group",
                    [](const std::vector<Tensor>& x) { return prod(x[0], {2}); }, {zx}});
      cs.push_back({"prod axes {0, 2} keepdims with zeros",
                    [](const std::vector<Tensor>& x) { return prod(x[0], {0, 2}, true); }, {zx}});
      cs.push_back({"prod axis -2 with zeros", [](const std::vector<Tensor>& x) { return prod(x[0], {-2}); }, {zx}});
      cs.push_back({"prod of everything with zeros, keepdims",
                    [](const std::vector<Tensor>& x) { return prod(x[0], {}, true); },
                    {tensor(std::vector<double>{0.9, 0.0, -1.1, 1.3, 0.7, 1.2}, {2, 3})}});
      cs.push_back({"prod axis 0 of a transposed view",
                    [](const std::vector<Tensor>& x) { return prod(x[0].transpose(), {0}); }, {anyv({4, 3}, 4)}});
      cs.push_back({"prod of a scalar", [](const std::vector<Tensor>& x) { return prod(x[0]); },
                    {tensor(std::vector<double>{0.0}, {})}});
      return cs;
    }

    // ------------------------------------------------------------ matmul
    case OpId::Matmul: {
      auto mm = [](const std::vector<Tensor>& x) { return matmul(x[0], x[1]); };
      cs.push_back({"matmul [3, 4] @ [4, 2]", mm, {anyv({3, 4}, 1), anyv({4, 2}, 2)}});
      cs.push_back({"matmul [2, 3, 4] @ [4, 2] (batch broadcast)", mm, {anyv({2, 3, 4}, 3), anyv({4, 2}, 4)}});
      cs.push_back({"matmul [2, 1, 2, 3] @ [3, 3, 2] (both batches broadcast)", mm,
                    {anyv({2, 1, 2, 3}, 5), anyv({3, 3, 2}, 6)}});
      cs.push_back({"matmul [4] @ [4, 3]", mm, {anyv({4}, 7), anyv({4, 3}, 8)}});
      cs.push_back({"matmul [3, 4] @ [4]", mm, {anyv({3, 4}, 9), anyv({4}, 10)}});
      cs.push_back({"matmul [4] @ [4]", mm, {anyv({4}, 11), anyv({4}, 12)}});
      cs.push_back({"matmul of transposed views: [4, 3]^T @ [2, 4]^T",
                    [](const std::vector<Tensor>& x) { return matmul(x[0].transpose(), x[1].transpose()); },
                    {anyv({4, 3}, 13), anyv({2, 4}, 14)}});
      return cs;
    }

    // ------------------------------------------------------------ views
    case OpId::Reshape:
      cs.push_back({"reshape [2, 6] -> [3, 4]", [](const std::vector<Tensor>& x) { return x[0].reshape({3, 4}) * x[1]; },
                    {anyv({2, 6}, 1), anyv({4}, 2)}});
      cs.push_back({"reshape of a transposed view (copies)",
                    [](const std::vector<Tensor>& x) { return x[0].transpose().reshape({-1}); }, {anyv({3, 4}, 3)}});
      return cs;
    case OpId::Permute:
      cs.push_back({"permute {2, 0, 1}", [](const std::vector<Tensor>& x) { return x[0].permute({2, 0, 1}); },
                    {anyv({2, 3, 4}, 1)}});
      cs.push_back({"transpose(0, 2) then matmul",
                    [](const std::vector<Tensor>& x) { return matmul(x[0].transpose(0, 2), x[1]); },
                    {anyv({2, 3, 4}, 2), anyv({2, 3}, 3)}});
      return cs;
    case OpId::BroadcastTo:
      cs.push_back({"broadcast_to [3, 1] -> [2, 3, 4]",
                    [](const std::vector<Tensor>& x) { return x[0].broadcast_to({2, 3, 4}); }, {anyv({3, 1}, 1)}});
      cs.push_back({"broadcast_to of a reversed view, times x",
                    [](const std::vector<Tensor>& x) { return x[0](Slice(none, none, -1)).broadcast_to({3, 4}) * x[1]; },
                    {anyv({4}, 2), anyv({3, 4}, 3)}});
      return cs;
    case OpId::Slice:
      cs.push_back({"x[1:, ::-2]", [](const std::vector<Tensor>& x) { return x[0](Slice(1, none), Slice(none, none, -2)); },
                    {anyv({3, 5}, 1)}});
      cs.push_back({"x[::2, 1:4:2]", [](const std::vector<Tensor>& x) { return x[0](Slice(none, none, 2), Slice(1, 4, 2)); },
                    {anyv({5, 5}, 2)}});
      cs.push_back({"x[1] (integer index)", [](const std::vector<Tensor>& x) { return x[0][1]; }, {anyv({3, 4}, 3)}});
      cs.push_back({"x[..., -1]", [](const std::vector<Tensor>& x) { return x[0](ellipsis, -1); }, {anyv({2, 3, 4}, 4)}});
      cs.push_back({"x[-1:0:-3, newaxis, 2]",
                    [](const std::vector<Tensor>& x) { return x[0](Slice(-1, 0, -3), newaxis, 2); }, {anyv({7, 3}, 5)}});
      return cs;
    case OpId::SliceScatter:
      cs.push_back({"slice_scatter [2, 2] into [4, 5] at (3, 0) steps (-2, 2)",
                    [](const std::vector<Tensor>& x) { return slice_scatter(x[0], {4, 5}, {3, 0}, {-2, 2}); },
                    {anyv({2, 2}, 1)}});
      cs.push_back({"slice_scatter of a transposed [3, 2] into [6, 2] at (1, 0) steps (2, 1)",
                    [](const std::vector<Tensor>& x) { return slice_scatter(x[0].transpose(), {6, 2}, {1, 0}, {2, 1}); },
                    {anyv({2, 3}, 2)}});
      return cs;

    // ------------------------------------------------------------ other
    case OpId::Concat:
      cs.push_back({"concat axis 0 of [2, 3] and [1, 3]",
                    [](const std::vector<Tensor>& x) { return concat({x[0], x[1]}, 0); },
                    {anyv({2, 3}, 1), anyv({1, 3}, 2)}});
      cs.push_back({"concat axis -1 of a transposed view, x[:, ::-1] and x again",
                    [](const std::vector<Tensor>& x) {
                      return concat({x[0].transpose(), x[1](all, Slice(none, none, -1)), x[1]}, -1);
                    },
                    {anyv({2, 3}, 3), anyv({3, 4}, 4)}});
      return cs;
    case OpId::Im2col:
      cs.push_back({"im2col 3x2 windows, stride 1, valid, of [2, 4, 5, 3]",
                    [](const std::vector<Tensor>& x) { return im2col(x[0], 3, 2); }, {anyv({2, 4, 5, 3}, 1)}});
      cs.push_back({"im2col 3x3, stride 2, same (fill -1), of a permuted [1, 4, 5, 2] view",
                    [](const std::vector<Tensor>& x) {
                      return im2col(x[0].permute({0, 2, 1, 3}), 3, 3, 2, Padding::Same, -1.0);
                    },
                    {anyv({1, 4, 5, 2}, 2)}});
      cs.push_back({"im2col 2x3, stride 1, same, dilation 2, of [1, 5, 6, 2]",
                    [](const std::vector<Tensor>& x) { return im2col(x[0], 2, 3, 1, Padding::Same, 0.0, 2); },
                    {anyv({1, 5, 6, 2}, 3)}});
      cs.push_back({"im2col 2x2, stride 2, valid, dilation 3, of [2, 7, 6, 1]",
                    [](const std::vector<Tensor>& x) { return im2col(x[0], 2, 2, 2, Padding::Valid, 0.0, 3); },
                    {anyv({2, 7, 6, 1}, 4)}});
      return cs;
    case OpId::Col2im:
      cs.push_back({"col2im 3x3 windows, stride 1, same, onto [1, 4, 4, 2]",
                    [](const std::vector<Tensor>& x) { return col2im(x[0], 4, 4, 3, 3, 1, Padding::Same); },
                    {anyv({1, 4, 4, 9, 2}, 1)}});
      cs.push_back({"col2im 2x3, stride 2, valid, onto [2, 5, 6, 1], cols a permuted view",
                    [](const std::vector<Tensor>& x) {
                      return col2im(x[0].permute({0, 2, 1, 3, 4}), 5, 6, 2, 3, 2, Padding::Valid);
                    },
                    {anyv({2, 2, 2, 6, 1}, 2)}});
      cs.push_back({"col2im 3x2, stride 1, same, dilation 2, onto [1, 5, 4, 2]",
                    [](const std::vector<Tensor>& x) { return col2im(x[0], 5, 4, 3, 2, 1, Padding::Same, 2); },
                    {anyv({1, 5, 4, 6, 2}, 3)}});
      cs.push_back({"col2im 2x2, stride 2, valid, dilation 3, onto [1, 7, 6, 1]",
                    [](const std::vector<Tensor>& x) { return col2im(x[0], 7, 6, 2, 2, 2, Padding::Valid, 3); },
                    {anyv({1, 2, 2, 4, 1}, 4)}});
      return cs;
    case OpId::MaxPoolSelect:
      cs.push_back({"max_pool_select 2x2 (max_pool2d: v is x) of [2, 4, 5, 3]",
                    [](const std::vector<Tensor>& x) { return max_pool2d(x[0], 2); }, {anyv({2, 4, 5, 3}, 1)}});
      cs.push_back({"max_pool_select 3x3, stride 1, same, v another (permuted) tensor",
                    [](const std::vector<Tensor>& x) {
                      return max_pool_select(x[0], x[1].permute({0, 2, 1, 3}), 3, 1, Padding::Same);
                    },
                    {anyv({1, 4, 5, 2}, 2), anyv({1, 5, 4, 2}, 3)}});
      return cs;
    case OpId::MaxPoolScatter:
      cs.push_back({"max_pool_scatter 2x2 onto [2, 4, 5, 3]",
                    [](const std::vector<Tensor>& x) { return max_pool_scatter(x[0], x[1], 2); },
                    {anyv({2, 4, 5, 3}, 1), anyv({2, 2, 2, 3}, 2)}});
      cs.push_back({"max_pool_scatter 3x3, stride 2, same (windows overlap), g a transposed view",
                    [](const std::vector<Tensor>& x) {
                      return max_pool_scatter(x[0], x[1].permute({0, 2, 1, 3}), 3, 2, Padding::Same);
                    },
                    {anyv({1, 5, 4, 2}, 3), anyv({1, 2, 3, 2}, 4)}});
      return cs;
    case OpId::Gather: {
      const Tensor idx = i64({0, 2, 2, 3, 1, 1}, {3, 2});  // duplicates in a row accumulate
      const Tensor idx_row = i64({3, 0, 3}, {1, 3});       // broadcast along axis 0
      cs.push_back({"take_along_axis axis 1 with duplicates",
                    [idx](const std::vector<Tensor>& x) { return take_along_axis(x[0], idx.to(x[0].device()), 1); }, {anyv({3, 4}, 1)}});
      cs.push_back({"take_along_axis indices [1, 3] broadcast against [3, 4]",
                    [idx_row](const std::vector<Tensor>& x) { return take_along_axis(x[0], idx_row.to(x[0].device()), 1); },
                    {anyv({3, 4}, 2)}});
      cs.push_back({"take_along_axis axis 0 of a transposed view",
                    [](const std::vector<Tensor>& x) {
                      return take_along_axis(x[0].transpose(), i64({2, 0, 0, 1, 2, 2}, {2, 3}).to(x[0].device()), 0);
                    },
                    {anyv({3, 3}, 3)}});
      // IndexMode: the gradient goes to the wrapped / clamped position; a filled entry has none.
      // Squared, so that a gradient sent to the wrong row or column shows.
      const Tensor wide = i64({-1, 4, 2, -5, 7}, {5});                  // n = 3 (axis 0) or 4 (axis 1)
      const Tensor wide_2d = i64({-1, 4, 0, -5, 2, -4, 9, 1}, {2, 4});  // along axis 1 of [2, 4]
      const std::pair<IndexMode, const char*> modes[] = {
          {IndexMode::Wrap, "wrap"}, {IndexMode::Clip, "clip"}, {IndexMode::Fill, "fill"}};
      for (const auto& [mode, name] : modes) {
        cs.push_back({std::string("take axis 0, ") + name + ", indices past both ends",
                      [wide, mode = mode](const std::vector<Tensor>& x) {
                        return square(take(x[0], wide.to(x[0].device()), 0, mode));
                      },
                      {anyv({3, 2}, 4)}});
        cs.push_back({std::string("take axis 1 of a transposed view, ") + name,
                      [wide, mode = mode](const std::vector<Tensor>& x) {
                        return square(take(x[0].transpose(), wide.to(x[0].device()), 1, mode));
                      },
                      {anyv({4, 2}, 5)}});
        cs.push_back({std::string("take_along_axis axis 1, ") + name,
                      [wide_2d, mode = mode](const std::vector<Tensor>& x) {
                        return square(take_along_axis(x[0], wide_2d.to(x[0].device()), 1, mode));
                      },
                      {anyv({2, 4}, 6)}});
      }
      return cs;
    }
    case OpId::ScatterMax:
    case OpId::ScatterMin: {
      // distinct random values: no ties, where the gradient is not differentiable
      const bool is_max = op == OpId::ScatterMax;
      const auto f = [is_max](const Tensor& b, const Tensor& i, const Tensor& s, std::int64_t axis) {
        return is_max ? scatter_max(b, i, s, axis) : scatter_min(b, i, s, axis);
      };
      const Tensor idx = i64({2, 0, 2, 2}, {1, 4});
      cs.push_back({std::string(op_name(op)) + " along axis 1, an index [1, 4] broadcast, duplicates",
                    [f, idx](const std::vector<Tensor>& x) { return f(x[0], idx.to(x[0].device()), x[1], 1); },
                    {anyv({3, 3}, 78), anyv({3, 4}, 79)}});
      const Tensor rows = i64({1, 0, 1, 1, 0, 1}, {2, 3});
      cs.push_back({std::string(op_name(op)) + " along axis 0 (base and values)",
                    [f, rows](const std::vector<Tensor>& x) { return f(x[0], rows.to(x[0].device()), x[1], 0) * x[0]; },
                    {anyv({2, 3}, 80), anyv({2, 3}, 81)}});
      return cs;
    }
    case OpId::ScatterAdd: {
      const Tensor idx = i64({0, 2, 2, 3, 1, 1}, {3, 2});
      cs.push_back({"scatter_add axis 1 with duplicates (base and values)",
                    [idx](const std::vector<Tensor>& x) { return scatter_add(x[0], idx.to(x[0].device()), x[1], 1); },
                    {anyv({3, 4}, 1), anyv({3, 2}, 2)}});
      cs.push_back({"scatter_add of values [1, 2] broadcast against indices [3, 2]",
                    [idx](const std::vector<Tensor>& x) { return scatter_add(x[0], idx.to(x[0].device()), x[1], 1) * x[0]; },
                    {anyv({3, 4}, 3), anyv({1, 2}, 4)}});
      const Tensor idx_row = i64({0, 2, 1}, {1, 3});
      cs.push_back({"scatter_add axis 0 of indices [1, 3] broadcast against values [2, 3]",
                    [idx_row](const std::vector<Tensor>& x) {
                      return scatter_add(x[0], idx_row.to(x[0].device()), x[1], 0) * x[0];
                    },
                    {anyv({3, 3}, 5), anyv({2, 3}, 6)}});
      // IndexMode: values go to the wrapped / clamped row; fill drops the ones outside (zero gradient)
      const Tensor wide = i64({-1, 4, 2, -5, 7}, {5, 1});  // rows of a [3, 2] base
      const std::pair<IndexMode, const char*> modes[] = {
          {IndexMode::Wrap, "wrap"}, {IndexMode::Clip, "clip"}, {IndexMode::Fill, "fill"}};
      for (const auto& [mode, name] : modes) {
        cs.push_back({std::string("scatter_add axis 0, ") + name + ", indices past both ends (base and values)",
                      [wide, mode = mode](const std::vector<Tensor>& x) {
                        return scatter_add(x[0], wide.to(x[0].device()), x[1], 0, mode) * x[0];
                      },
                      {anyv({3, 2}, 7), anyv({5, 2}, 8)}});
      }
      return cs;
    }
    case OpId::Cast: {
      // through float32 and back: float32 rounding (~6e-8) needs a wider step than float64's
      GradcheckOptions wide;
      wide.eps = 1e-3;
      wide.atol = 1e-3;
      wide.rtol = 1e-3;
      cs.push_back({"astype(float32).astype(float64)",
                    [](const std::vector<Tensor>& x) { return x[0].astype(kFloat32).astype(kFloat64) * x[0]; },
                    {anyv({2, 3}, 1)}, wide});
      cs.push_back({"float32 input promoted by a float64 operand",
                    [](const std::vector<Tensor>& x) { return x[0].astype(kFloat32) * x[1]; },
                    {anyv({2, 3}, 2), anyv({3}, 3)}, wide});
      return cs;
    }
    case OpId::Copy:
      cs.push_back({"clone of a transposed view", [](const std::vector<Tensor>& x) { return x[0].transpose().clone() * 3.0; },
                    {anyv({2, 3}, 1)}});
      cs.push_back({"contiguous() of x[::-1]",
                    [](const std::vector<Tensor>& x) { return x[0](Slice(none, none, -1)).contiguous(); }, {anyv({4}, 2)}});
      return cs;

    case OpId::Softmax:
    case OpId::LogSoftmax: {
      const bool lg = op == OpId::LogSoftmax;
      auto f = [lg](const Tensor& t, std::int64_t axis) { return lg ? log_softmax(t, axis) : softmax(t, axis); };
      cs.push_back({lg ? "log_softmax over the last axis" : "softmax over the last axis",
                    [f](const std::vector<Tensor>& x) { return f(x[0], -1); }, {anyv({3, 4}, 1)}});
      cs.push_back({lg ? "log_softmax over axis 0 of a transposed view" : "softmax over axis 0 of a transposed view",
                    [f](const std::vector<Tensor>& x) { return f(x[0].transpose(), 0); }, {anyv({3, 4}, 2)}});
      return cs;
    }

    // ------------------------------------------------------------ not differentiable
    case OpId::Equal:
    case OpId::NotEqual:
    case OpId::Less:
    case OpId::LessEqual:
    case OpId::Greater:
    case OpId::GreaterEqual:
    case OpId::LogicalAnd:
    case OpId::LogicalOr:
    case OpId::LogicalNot:
    case OpId::ArgMax:
    case OpId::ArgMin:
    case OpId::ArgSort:
      return cs;
  }
  return cs;  // an OpId this switch does not know: no cases, and the test below fails
}

// The op names a tape records while fn runs on (float64 copies of) the inputs.
std::set<std::string> recorded_names(const Case& c) {
  std::vector<Tensor> xs;
  for (const auto& t : c.inputs) xs.push_back(is_floating(t.dtype()) ? t.astype(kFloat64) : t);
  GradientTape tape;
  for (const auto& t : xs)
    if (is_floating(t.dtype())) tape.watch(t);
  c.fn(xs);
  std::set<std::string> names;
  for (const auto& op : tape.recorded_ops()) names.insert(op.name);
  return names;
}

std::size_t num_differentiable_ops() {
  std::size_t n = 0;
  for (const auto& info : kOpInfo) n += info.differentiable;
  return n;
}

}  // namespace

TEST_CASE("gradcheck: every differentiable op of ops.def", "[gradcheck]") {
  std::size_t ops_checked = 0, cases_run = 0;
  for (std::size_t i = 0; i < kNumOps; ++i) {
    const OpId op = static_cast<OpId>(i);
    const OpInfo& info = kOpInfo[i];
    const std::vector<Case> cases = cases_for(op);
    INFO("op " << info.name);
    if (!info.differentiable) {
      CHECK(cases.empty());
      continue;
    }
    // a differentiable op without a case in cases_for() fails here
    REQUIRE_FALSE(cases.empty());
    bool all_ok = true;
    for (const auto& c : cases) {
      INFO("case: " << c.label);
      // the case really runs the primitive (e.g. square might not be pow_scalar)
      const std::set<std::string> names = recorded_names(c);
      CHECK(names.count(info.name) == 1);
      const GradcheckResult r = gradcheck(c.fn, c.inputs, c.options);
      INFO(r.message);
      CHECK(r.ok);
      all_ok = all_ok && r.ok && names.count(info.name) == 1;
      ++cases_run;
    }
    ops_checked += all_ok;
  }
  std::cout << "gradcheck: " << ops_checked << " of " << num_differentiable_ops() << " differentiable ops of ops.def ("
            << kNumOps << " rows) passed, in " << cases_run << " cases\n";
  CHECK(ops_checked == num_differentiable_ops());
  CHECK(num_differentiable_ops() > 0);
}

TEST_CASE("gradcheck: every differentiable op on every CUDA device", "[gradcheck][device]") {
  // The same cases with the inputs on the device: the tape's gradient there against float64
  // central differences computed there.
  if (!cuda::is_available()) {
    WARN("skipped: " << cuda::status());
    return;
  }
  const Device d = Device::cuda(0);
  std::size_t ops_checked = 0;
  for (std::size_t i = 0; i < kNumOps; ++i) {
    if (!kOpInfo[i].differentiable) continue;
    INFO("op " << kOpInfo[i].name << " on " << d.str());
    bool all_ok = true;
    for (const auto& c : cases_for(static_cast<OpId>(i))) {
      INFO("case: " << c.label);
      std::vector<Tensor> inputs;
      for (const auto& t : c.inputs) inputs.push_back(t.to(d));
      const GradcheckResult r = gradcheck(c.fn, inputs, c.options);
      INFO(r.message);
      CHECK(r.ok);
      all_ok = all_ok && r.ok;
    }
    ops_checked += all_ok;
  }
  std::cout << "gradcheck on " << d.str() << ": " << ops_checked << " of " << num_differentiable_ops()
            << " differentiable ops passed\n";
  CHECK(ops_checked == num_differentiable_ops());
}

TEST_CASE("gradgradcheck: every differentiable op's rule is differentiable itself", "[gradcheck]") {
  // the rules are written with tensor ops, so second derivatives come for free: check the
  // first two cases of every op
  std::size_t ops_checked = 0;
  for (std::size_t i = 0; i < kNumOps; ++i) {
    if (!kOpInfo[i].differentiable) continue;
    const std::vector<Case> cases = cases_for(static_cast<OpId>(i));
    INFO("op " << kOpInfo[i].name);
    REQUIRE_FALSE(cases.empty());
    bool all_ok = true;
    for (std::size_t k = 0; k < cases.size() && k < 2; ++k) {
      const Case& c = cases[k];
      INFO("case: " << c.label);
      const GradcheckResult r = gradgradcheck(c.fn, c.inputs, c.options);
      INFO(r.message);
      CHECK(r.ok);
      all_ok = all_ok && r.ok;
    }
    ops_checked += all_ok;
  }
  std::cout << "gradgradcheck: " << ops_checked << " of " << num_differentiable_ops() << " differentiable ops passed\n";
  CHECK(ops_checked == num_differentiable_ops());
}

TEST_CASE("gradcheck: composites", "[gradcheck]") {
  const Tensor labels = i64({2, 0, 3}, {3});
  std::vector<Case> cs = {
      {"softmax axis -1", [](const std::vector<Tensor>& x) { return softmax(x[0]); }, {anyv({3, 4}, 1)}},
      {"softmax axis 0 of a transposed view", [](const std::vector<Tensor>& x) { return softmax(x[0].transpose(), 0); },
       {anyv({3, 4}, 2)}},
      {"log_softmax axis -1", [](const std::vector<Tensor>& x) { return log_softmax(x[0]); }, {anyv({3, 4}, 3)}},
      {"log_softmax axis 1 of [2, 3, 2]", [](const std::vector<Tensor>& x) { return log_softmax(x[0], 1); },
       {anyv({2, 3, 2}, 4)}},
      {"logsumexp all", [](const std::vector<Tensor>& x) { return logsumexp(x[0]); }, {anyv({3, 4}, 5)}},
      {"logsumexp axis 1 keepdims", [](const std::vector<Tensor>& x) { return logsumexp(x[0], {1}, true); },
       {anyv({3, 4}, 6)}},
      {"logsumexp axes {0, 2}", [](const std::vector<Tensor>& x) { return logsumexp(x[0], {0, 2}); }, {anyv({2, 3, 2}, 7)}},
      {"mean all", [](const std::vector<Tensor>& x) { return mean(x[0]); }, {anyv({3, 4}, 8)}},
      {"mean axis 0 keepdims", [](const std::vector<Tensor>& x) { return mean(x[0], {0}, true); }, {anyv({3, 4}, 9)}},
      {"var all", [](const std::vector<Tensor>& x) { return var(x[0]); }, {anyv({3, 4}, 10)}},
      {"var axis 1", [](const std::vector<Tensor>& x) { return var(x[0], {1}); }, {anyv({3, 4}, 11)}},
      {"sigmoid of x[::-1]", [](const std::vector<Tensor>& x) { return sigmoid(x[0](Slice(none, none, -1))); },
       {anyv({5}, 12)}},
      {"square", [](const std::vector<Tensor>& x) { return square(x[0]); }, {anyv({2, 3}, 13)}},
      {"dot [4] . [4]", [](const std::vector<Tensor>& x) { return dot(x[0], x[1]); }, {anyv({4}, 14), anyv({4}, 15)}},
      {"dot [2, 3] . [3, 2]", [](const std::vector<Tensor>& x) { return dot(x[0], x[1]); },
       {anyv({2, 3}, 16), anyv({3, 2}, 17)}},
      {"dot [2, 2, 3] . [3, 2] (N-D)", [](const std::vector<Tensor>& x) { return dot(x[0], x[1]); },
       {anyv({2, 2, 3}, 18), anyv({3, 2}, 19)}},
      {"tensordot axes ({0, 2}, {1, 0})",
       [](const std::vector<Tensor>& x) { return tensordot(x[0], x[1], {0, 2}, {1, 0}); },
       {anyv({2, 3, 4}, 20), anyv({4, 2, 2}, 21)}},
      {"tensordot n = 1", [](const std::vector<Tensor>& x) { return tensordot(x[0], x[1], 1); },
       {anyv({2, 3}, 22), anyv({3, 2}, 23)}},
      {"stack axis 1", [](const std::vector<Tensor>& x) { return stack({x[0], x[1] * x[0], x[1]}, 1); },
       {anyv({2, 3}, 24), anyv({2, 3}, 25)}},
      {"split sizes {1, 2, 1} along axis 1",
       [](const std::vector<Tensor>& x) {
         auto p = split(x[0], std::vector<std::int64_t>{1, 2, 1}, 1);
         return concat({p[2] * p[0], p[1]}, 1);
       },
       {anyv({3, 4}, 26)}},
      {"split 2 sections along axis 0",
       [](const std::vector<Tensor>& x) {
         auto p = split(x[0], 2, 0);
         return p[0] * p[1];
       },
       {anyv({4, 3}, 27)}},
      {"gather per-example values", [labels](const std::vector<Tensor>& x) { return gather(x[0], labels); },
       {anyv({3, 4}, 28)}},
      {"cross-entropy through one_hot: -sum(one_hot(labels) * log_softmax(x))",
       [labels](const std::vector<Tensor>& x) { return -sum(one_hot(labels, 4, kFloat64) * log_softmax(x[0]), {1}); },
       {anyv({3, 4}, 29)}},
      {"reshape, transpose, expand_dims, squeeze, broadcast_to, flatten",
       [](const std::vector<Tensor>& x) {
         Tensor t = x[0].reshape({3, 2}).transpose().expand_dims(1);      // [2, 1, 3]
         t = t.broadcast_to({2, 4, 3}) * x[1];                            // x[1]: [4, 1]
         return t.squeeze().flatten()(Slice(none, none, -3)).expand_dims(0).squeeze({0});
       },
       {anyv({6}, 30), anyv({4, 1}, 31)}},
      {"slicing: steps, negative steps and an integer index",
       [](const std::vector<Tensor>& x) {
         return x[0](Slice(none, none, -2), 1, Slice(0, none, 2)) * x[0](Slice(1, none), -2, Slice(none, none, -2));
       },
       {anyv({3, 3, 4}, 32)}},
      {"concat of slices of one tensor",
       [](const std::vector<Tensor>& x) { return concat({x[0](Slice(1, none)), x[0](Slice(none, 2)) * 2.0}, 0); },
       {anyv({3, 2}, 33)}},
      // NumPy's composites (numpy_ops.cpp), squared so the gradients differ per element
      {"tile [2, 3] by {2, 1, 2}", [](const std::vector<Tensor>& x) { return square(tile(x[0], {2, 1, 2})); },
       {anyv({2, 3}, 34)}},
      {"repeat 3 along axis 0 of a transposed view",
       [](const std::vector<Tensor>& x) { return square(repeat(x[0].transpose(), 3, 0)); }, {anyv({2, 3}, 35)}},
      {"repeat 2 flattened", [](const std::vector<Tensor>& x) { return square(repeat(x[0], 2)); }, {anyv({2, 3}, 36)}},
      {"pad {{1, 2}, {0, 1}} with 0.5",
       [](const std::vector<Tensor>& x) { return square(pad(x[0], {{1, 2}, {0, 1}}, 0.5)); }, {anyv({2, 3}, 37)}},
      {"flip axes {0, -1} times x",
       [](const std::vector<Tensor>& x) { return flip(x[0], {0, -1}) * x[0]; }, {anyv({3, 4}, 38)}},
      {"tril k = 0 and triu k = 1 of [2, 3, 4]",
       [](const std::vector<Tensor>& x) { return square(tril(x[0])) + triu(x[0], 1) * x[0]; }, {anyv({2, 3, 4}, 39)}},
      {"reduce_std axis 1, ddof 0 and 1",
       [](const std::vector<Tensor>& x) { return reduce_std(x[0], {1}) + reduce_std(x[0], {1}, false, 1); }, {anyv({3, 4}, 40)}},
      {"reduce_std of everything", [](const std::vector<Tensor>& x) { return reduce_std(x[0]); }, {anyv({2, 3}, 41)}},
      {"norm ord 2 over axis 0 (away from 0)", [](const std::vector<Tensor>& x) { return norm(x[0], 2, {0}); },
       {anyv({3, 4}, 42)}},
      {"norm ord 1 of everything, keepdims", [](const std::vector<Tensor>& x) { return norm(x[0], 1, {}, true); },
       {anyv({3, 4}, 43)}},
      {"cumsum axis 1 of [2, 7]", [](const std::vector<Tensor>& x) { return square(cumsum(x[0], 1)); },
       {anyv({2, 7}, 44)}},
      {"cumsum axis 0 of a transposed view", [](const std::vector<Tensor>& x) { return square(cumsum(x[0].transpose(), 0)); },
       {anyv({3, 5}, 45)}},
      {"cumsum exclusive, reverse and both, axis 1 of [2, 5]",
       [](const std::vector<Tensor>& x) {
         return square(cumsum(x[0], 1, true)) + square(cumsum(x[0], 1, false, true)) * 0.5 +
                square(cumsum(x[0], -1, true, true)) * 0.25;
       },
       {anyv({2, 5}, 76)}},
      // cumprod's gradient comes from mul's, so zeros need no care: rows with none, one and two
      // zeros, weighted so that each position's gradient differs
      {"cumprod axis 1 of [3, 5] with rows of zero, one and two zeros",
       [](const std::vector<Tensor>& x) { return cumprod(x[0], 1) * x[1]; },
       {tensor(std::vector<double>{0.9, -1.2, 0.7, 1.1, 0.8, 1.3, 0.0, -0.6, 1.4, 0.5, -0.9, 0.0, 1.2, 0.0, 0.95}, {3, 5}),
        anyv({5}, 77)}},
      {"cumprod exclusive, reverse and both with zeros",
       [](const std::vector<Tensor>& x) {
         return cumprod(x[0], 1, true) * x[1] + cumprod(x[0], 1, false, true) * x[1] * 0.5 +
                cumprod(x[0], -1, true, true) * x[1] * 0.25;
       },
       {tensor(std::vector<double>{0.9, -1.2, 0.7, 1.1, 0.8, 1.3, 0.0, -0.6, 1.4, 0.5, -0.9, 0.0, 1.2, 0.0, 0.95}, {3, 5}),
        anyv({5}, 78)}},
      {"cumprod axis 0 of a transposed view", [](const std::vector<Tensor>& x) { return cumprod(x[0].transpose(), 0) * x[1]; },
       {anyv({4, 3}, 79), anyv({3, 1}, 80)}},
      {"cummax and cummin axis 1 of [3, 6] (distinct values)",
       [](const std::vector<Tensor>& x) { return cummax(x[0], 1) * x[1] + square(cummin(x[0], -1)); },
       {anyv({3, 6}, 81), anyv({6}, 82)}},
      {"cummax axis 0 of a transposed view", [](const std::vector<Tensor>& x) { return square(cummax(x[0].transpose(), 0)); },
       {anyv({5, 3}, 83)}},
      // einsum (a composite of permute, reshape, slicing, sum, mul and matmul)
      {"einsum ij,jk->ik", [](const std::vector<Tensor>& x) { return einsum("ij,jk->ik", x[0], x[1]); },
       {anyv({2, 3}, 46), anyv({3, 2}, 47)}},
      {"einsum bij,bkj->bik of a transposed view",
       [](const std::vector<Tensor>& x) { return einsum("bij,bkj->bik", x[0].permute({0, 2, 1}), x[1]); },
       {anyv({2, 3, 2}, 48), anyv({2, 2, 3}, 49)}},
      {"einsum i,j->ij (outer)", [](const std::vector<Tensor>& x) { return einsum("i,j->ij", x[0], x[1]); },
       {anyv({3}, 50), anyv({2}, 51)}},
      {"einsum ii->i (diagonal), squared", [](const std::vector<Tensor>& x) { return square(einsum("ii->i", x[0])); },
       {anyv({3, 3}, 52)}},
      {"einsum bii (batched trace) times iji->j",
       [](const std::vector<Tensor>& x) { return einsum("bii->b", x[0]) * einsum("iji->j", x[1]); },
       {anyv({2, 3, 3}, 53), anyv({3, 2, 3}, 54)}},
      {"einsum ijk->kj, squared", [](const std::vector<Tensor>& x) { return square(einsum("ijk->kj", x[0])); },
       {anyv({2, 3, 2}, 55)}},
      {"einsum ...ij,...jk->...ik with broadcast batch dims",
       [](const std::vector<Tensor>& x) { return einsum("...ij,...jk->...ik", x[0], x[1]); },
       {anyv({2, 1, 2, 3}, 56), anyv({2, 3, 2}, 57)}},
      {"einsum bi,ij,bj->b (bilinear)",
       [](const std::vector<Tensor>& x) { return einsum("bi,ij,bj->b", {x[0], x[1], x[2]}); },
       {anyv({2, 3}, 58), anyv({3, 4}, 59), anyv({2, 4}, 60)}},
      {"einsum bhqd,bhkd->bhqk (attention scores)",
       [](const std::vector<Tensor>& x) { return einsum("bhqd,bhkd->bhqk", x[0], x[1]); },
       {anyv({1, 2, 3, 2}, 61), anyv({1, 2, 2, 2}, 62)}},
      {"einsum ij,ij-> of one tensor twice", [](const std::vector<Tensor>& x) { return einsum("ij,ij->", x[0], x[0]); },
       {anyv({2, 3}, 63)}},
      // sort and top_k are argsort (constant) then take_along_axis: each value's gradient goes back
      // to its position; squared and weighted so that a wrong permutation shows
      {"sort axis 1, times the position weights",
       [](const std::vector<Tensor>& x) { return sort(x[0], 1) * x[1]; }, {anyv({3, 4}, 46), anyv({4}, 47)}},
      {"sort descending along axis 0 of a transposed view",
       [](const std::vector<Tensor>& x) { return square(sort(x[0].transpose(), 0, true)); }, {anyv({3, 4}, 48)}},
      {"top_k k = 2 values", [](const std::vector<Tensor>& x) { return square(top_k(x[0], 2).values); },
       {anyv({3, 5}, 49)}},
      {"top_k k = 3 unsorted values, times weights",
       [](const std::vector<Tensor>& x) { return top_k(x[0], 3, false).values * x[1]; },
       {anyv({2, 5}, 50), anyv({3}, 51)}},
      // TensorFlow's index ops: take / scatter_add on flattened axes; indices with duplicates,
      // squared or weighted so that a gradient sent to the wrong row shows
      {"boolean_mask [3, 4] at axis 1 of [2, 3, 4], times weights",
       [](const std::vector<Tensor>& x) {
         const Tensor m = tensor<bool>({true, false, false, true, true, true, false, false, false, true, false, true},
                                       {3, 4});
         return boolean_mask(x[0], m.to(x[0].device()), 1) * x[1];
       },
       {anyv({2, 3, 4}, 64), anyv({6}, 65)}},
      {"boolean_mask [4] at axis -1 of a transposed view",
       [](const std::vector<Tensor>& x) {
         return square(boolean_mask(x[0].transpose(), tensor<bool>({false, true, true, false}).to(x[0].device()), -1));
       },
       {anyv({4, 3}, 66)}},
      {"gather_nd slices with a duplicate",
       [](const std::vector<Tensor>& x) {
         return square(gather_nd(x[0], i64({1, 2, 0, 0, 1, 2}, {3, 2}).to(x[0].device())));
       },
       {anyv({2, 3, 4}, 67)}},
      {"gather_nd points, batch_dims 1, of a transposed view",
       [](const std::vector<Tensor>& x) {
         return square(gather_nd(x[0].permute({2, 0, 1}), i64({2, 1, 0, 0, 2, 1, 1, 1}, {2, 2, 2}).to(x[0].device()), 1));
       },
       {anyv({3, 2, 2}, 68)}},
      {"scatter_nd with a duplicate, in the updates",
       [](const std::vector<Tensor>& x) {
         return square(scatter_nd(i64({1, 2, 0, 0, 1, 2}, {3, 2}).to(x[0].device()), x[0], {2, 3, 4}));
       },
       {anyv({3, 4}, 69)}},
      {"tensor_scatter_nd_add points with a duplicate, in both",
       [](const std::vector<Tensor>& x) {
         return square(tensor_scatter_nd_add(x[0], i64({1, 0, 2, 1, 1, 0}, {3, 2}).to(x[0].device()), x[1]));
       },
       {anyv({3, 2}, 70), anyv({3}, 71)}},
      {"unsorted_segment_sum with a dropped row and an empty segment",
       [](const std::vector<Tensor>& x) {
         return square(unsorted_segment_sum(x[0], i64({2, 0, -1, 2, 0}, {5}).to(x[0].device()), 4));
       },
       {anyv({5, 2}, 72)}},
      {"unsorted_segment_mean of [2, 3, 2] by ids [2, 3]",
       [](const std::vector<Tensor>& x) {
         return square(unsorted_segment_mean(x[0], i64({1, 0, 1, 1, 2, -1}, {2, 3}).to(x[0].device()), 4));
       },
       {anyv({2, 3, 2}, 73)}},
      {"unsorted_segment_max (every segment filled: an empty one's lowest value would overflow the sum)",
       [](const std::vector<Tensor>& x) {
         return unsorted_segment_max(x[0], i64({1, 0, 1, -1, 2, 0}, {6}).to(x[0].device()), 3) * x[1];
       },
       {anyv({6, 2}, 74), anyv({2}, 75)}},
      {"unsorted_segment_min of [2, 3, 2] by ids [2, 3]",
       [](const std::vector<Tensor>& x) {
         return unsorted_segment_min(x[0], i64({1, 0, 1, 1, 2, 0}, {2, 3}).to(x[0].device()), 3) * x[1];
       },
       {anyv({2, 3, 2}, 76), anyv({2}, 77)}},
      // the index modes' rows are computed with tensor ops: a filled entry / dropped update has
      // no gradient, a wrapped or clipped one sends it to the adjusted row
      {"gather_nd fill (a [-n, 0) coordinate, one outside), batch_dims 1",
       [](const std::vector<Tensor>& x) {
         return square(gather_nd(x[0], i64({2, -1, 3, 0, -3, 1}, {2, 3, 1}).to(x[0].device()), 1, IndexMode::Fill));
       },
       {anyv({2, 3, 2}, 78)}},
      {"gather_nd wrap",
       [](const std::vector<Tensor>& x) {
         return square(gather_nd(x[0], i64({1, 3, -1, 2, 5, -4, 0, -2}, {4, 2}).to(x[0].device()), 0, IndexMode::Wrap));
       },
       {anyv({2, 3, 2}, 79)}},
      {"scatter_nd clip",
       [](const std::vector<Tensor>& x) {
         return square(scatter_nd(i64({1, 3, -1, 2, 5, -4, 0, -2}, {4, 2}).to(x[0].device()), x[0], {2, 3, 2},
                                  IndexMode::Clip));
       },
       {anyv({4, 2}, 87)}},
      {"tensor_scatter_nd_add fill, in both",
       [](const std::vector<Tensor>& x) {
         return square(tensor_scatter_nd_add(x[0], i64({1, 2, -2, 0, 2, 1}, {3, 2}).to(x[0].device()), x[1],
                                             IndexMode::Fill));
       },
       {anyv({2, 3}, 88), anyv({3}, 89)}},
      {"unsorted_segment_mean wrap and _max fill (ids past num_segments)",
       [](const std::vector<Tensor>& x) {
         const Tensor ids = i64({0, 5, 0, -1, 3, 4}, {6}).to(x[0].device());
         return square(unsorted_segment_mean(x[0], ids, 4, IndexMode::Wrap)) +
                unsorted_segment_max(x[0], i64({0, 5, 1, -1, 3, 2}, {6}).to(x[0].device()), 4, IndexMode::Fill) *
                    x[1];
       },
       {anyv({6, 2}, 90), anyv({2}, 91)}},
  };
  for (const auto& c : cs) {
    INFO("case: " << c.label);
    const GradcheckResult r = gradcheck(c.fn, c.inputs, c.options);
    INFO(r.message);
    CHECK(r.ok);
  }
}

TEST_CASE("gradcheck: losses under each reduction, with sample weights and masks, in y_pred", "[gradcheck][losses]") {
  using losses::Reduction;
  const Tensor t = anyv({4, 3}, 80), sw = tensor({1.0, 0.5, 2.0, 0.25}, {4}, kFloat64);
  const Tensor mask = tensor(std::vector<bool>{true, false, true, true}, {4});
  // a sequence [2, 3] of 4 classes, the mask keeping 2 and 3 steps
  const Tensor labels = i64({1, 3, 0, 2, 2, 1}, {2, 3});
  const Tensor seq_mask = tensor(std::vector<bool>{true, true, false, true, true, true}, {2, 3});
  const Tensor seq_sw = tensor({1.5, 0.5}, {2}, kFloat64);
  auto loss_case = [](std::string label, std::shared_ptr<losses::Loss> loss, Tensor y, Tensor w, Tensor m, Tensor p) {
    return Case{std::move(label),
                [=](const std::vector<Tensor>& x) { return (*loss)(y, x[0], w, m); },
                {std::move(p)}};
  };
  const std::vector<Case> cs = {
      loss_case("mse, sum, weights and mask", std::make_shared<losses::MeanSquaredError>(Reduction::Sum), t, sw, mask,
                anyv({4, 3}, 81)),
      loss_case("mse, mean_with_sample_weight, weights",
                std::make_shared<losses::MeanSquaredError>(Reduction::MeanWithSampleWeight), t, sw, Tensor(),
                anyv({4, 3}, 82)),
      loss_case("mse, mean_with_sample_weight, mask only",
                std::make_shared<losses::MeanSquaredError>(Reduction::MeanWithSampleWeight), t, Tensor(), mask,
                anyv({4, 3}, 83)),
      loss_case("sparse cce from logits over a masked sequence, sum_over_batch_size, weights",
                std::make_shared<losses::SparseCategoricalCrossentropy>(true), labels, seq_sw, seq_mask,
                anyv({2, 3, 4}, 84)),
      loss_case("sparse cce from logits over a masked sequence, none: [2, 3] values",
                std::make_shared<losses::SparseCategoricalCrossentropy>(true, Reduction::None), labels, seq_sw,
                seq_mask, anyv({2, 3, 4}, 85)),
      loss_case("bce from logits, none, [4, 1] weights: [4, 1] values",
                std::make_shared<losses::BinaryCrossentropy>(true, 0.0, Reduction::None), (t > 0.0).astype(kFloat64),
                sw.reshape({4, 1}), Tensor(), anyv({4, 3}, 86)),
  };
  for (const auto& c : cs) {
    INFO("case: " << c.label);
    const GradcheckResult r = gradcheck(c.fn, c.inputs, c.options);
    INFO(r.message);
    CHECK(r.ok);
  }
}

TEST_CASE("gradient of gather_nd: TensorFlow's, duplicates summed", "[gradcheck][nd_index]") {
  namespace ng = nd_index_golden;
  const Tensor p = tensor(std::vector<double>(std::begin(ng::kP), std::end(ng::kP)), {2, 3, 4});
  const Tensor w = arange(1, 13, 1, kFloat64).reshape({3, 4});
  GradientTape tape;
  tape.watch(p);
  const Tensor y = sum(gather_nd(p, i64({1, 2, 0, 0, 1, 2}, {3, 2})) * w);
  const Tensor g = tape.gradient(y, p);
  REQUIRE(g.shape() == Shape{2, 3, 4});
  const Tensor want = tensor(std::vector<double>(std::begin(ng::kGatherNdGrad), std::end(ng::kGatherNdGrad)), {2, 3, 4});
  CHECK(reduce_all(g == want).item<bool>());
}

TEST_CASE("gradient of unsorted_segment_max / _min: TensorFlow's, ties share evenly", "[gradcheck][nd_index]") {
  namespace ng = nd_index_golden;
  const auto vec = [](const auto& a) { return std::vector<double>(std::begin(a), std::end(a)); };
  const Tensor w = tensor(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3});
  for (const bool is_max : {true, false}) {
    INFO((is_max ? "max" : "min"));
    const Tensor d = tensor(vec(ng::kDT), {5, 3});
    GradientTape tape;
    tape.watch(d);
    const Tensor ids = i64({0, 0, 0, 1, -1}, {5});
    const Tensor y = sum((is_max ? unsorted_segment_max(d, ids, 2) : unsorted_segment_min(d, ids, 2)) * w);
    const Tensor g = tape.gradient(y, d);
    CHECK(g.to_vector<double>() == vec(is_max ? ng::kSegMaxGrad : ng::kSegMinGrad));
  }
}

TEST_CASE("gradient of scatter_max / scatter_min: ties with the base share evenly, as PyTorch's", "[gradcheck]") {
  // base [2]: 3 and 1; src [4] sent to 0, 0, 1, 1: {3, 2} at 0, {5, 5} at 1; weights 10 and 100
  // max: 3 at 0, the base and src[0] tie (5 each); 5 at 1, src[2] and src[3] (50 each)
  // min: 2 at 0, src[1] alone; 1 at 1, the base alone
  struct Want {
    bool is_max;
    std::vector<double> base, src;
  };
  for (const Want& w : {Want{true, {5, 0}, {5, 0, 50, 50}}, Want{false, {0, 100}, {0, 10, 0, 0}}}) {
    INFO((w.is_max ? "scatter_max" : "scatter_min"));
    const Tensor base = tensor(std::vector<double>{3, 1}, {2});
    const Tensor src = tensor(std::vector<double>{3, 2, 5, 5}, {4});
    const Tensor index = i64({0, 0, 1, 1}, {4});
    GradientTape tape(true);
    tape.watch(base);
    tape.watch(src);
    const Tensor out = w.is_max ? scatter_max(base, index, src, 0) : scatter_min(base, index, src, 0);
    const Tensor y = sum(out * tensor(std::vector<double>{10, 100}, {2}));
    CHECK(tape.gradient(y, base).to_vector<double>() == w.base);
    CHECK(tape.gradient(y, src).to_vector<double>() == w.src);
  }
}

TEST_CASE("gradient of prod: TensorFlow's, the others' product (zeros, two zeros, inf, NaN)", "[gradcheck][prod]") {
  namespace pg = prod_golden;
  auto vec = [](const auto& a) { return std::vector<double>(std::begin(a), std::end(a)); };
  const Tensor x = tensor(vec(pg::kP), {2, 3, 4});
  const std::vector<std::pair<std::vector<std::int64_t>, std::vector<double>>> sets = {
      {{}, vec(pg::kProdGradAll)},         {{0}, vec(pg::kProdGradAxis0)},     {{1}, vec(pg::kProdGradAxis1)},
      {{2}, vec(pg::kProdGradAxis2)},      {{0, 2}, vec(pg::kProdGradAxes02)}, {{1, 2}, vec(pg::kProdGradAxes12)}};
  for (const auto& [axes, want] : sets) {
    INFO("axes of size " << axes.size() << (axes.empty() ? "" : ", first " + std::to_string(axes[0])));
    // output gradient 1, 2, 3, ... over the kept shape: a gradient sent to the wrong group shows
    GradientTape tape;
    tape.watch(x);
    const Tensor y = prod(x, axes, true);
    const Tensor w = arange(1, static_cast<double>(y.size()) + 1, 1, kFloat64).reshape(y.shape());
    const Tensor g = tape.gradient(y, x, w);
    REQUIRE(g.shape() == Shape{2, 3, 4});
    const std::vector<double> got = g.to_vector<double>();
    for (std::size_t i = 0; i < got.size(); ++i) {
      INFO("element " << i);
      CHECK(std::isfinite(got[i]));
      CHECK(std::abs(got[i] - want[i]) <= 1e-14 * std::abs(want[i]) + 1e-15);
    }
  }
  // inf and NaN: NaN exactly where TensorFlow's gradient has one (an inf times a zero, a NaN)
  const Tensor pi = tensor(vec(pg::kPi), {4, 3});
  GradientTape tape;
  tape.watch(pi);
  const std::vector<double> got = tape.gradient(prod(pi, {1}), pi).to_vector<double>();
  const std::vector<double> want = vec(pg::kPiProdGradAxis1);
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": " << got[i] << " vs " << want[i]);
    CHECK((std::isnan(want[i]) ? std::isnan(got[i]) : got[i] == want[i]));
  }
  // a zero-size x: an empty gradient of its shape
  const Tensor e = zeros({0, 3}, kFloat64);
  GradientTape t2;
  t2.watch(e);
  CHECK(t2.gradient(prod(e, {0}), e).shape() == Shape{0, 3});
}

TEST_CASE("gradient of cummax / cummin: to the last position holding the extremum (torch.cummax's index)",
          "[gradcheck][cummax]") {
  // y = [1, 3, 3, 3, 3]: torch.cummax's indices [0, 1, 2, 2, 4], so x[2] takes two
  const Tensor x = tensor({1.0, 3.0, 3.0, 2.0, 3.0});
  GradientTape tape(true);
  tape.watch(x);
  CHECK(tape.gradient(sum(cummax(x, 0)), x).to_vector<double>() == std::vector<double>{1, 1, 2, 0, 1});
  // the running min is x[0] throughout: every weight goes there
  CHECK(tape.gradient(sum(cummin(x, 0) * tensor({1.0, 2.0, 4.0, 8.0, 16.0})), x).to_vector<double>() ==
        std::vector<double>{31, 0, 0, 0, 0});
  // y = [1, NaN, NaN, NaN, NaN]: y[1], y[2] from the NaN x[1]; y[3], y[4] from the last NaN x[3]
  const Tensor xn = tensor({1.0, std::nan(""), 2.0, std::nan(""), 5.0});
  GradientTape t2;
  t2.watch(xn);
  CHECK(t2.gradient(sum(cummax(xn, 0)), xn).to_vector<double>() == std::vector<double>{1, 2, 0, 2, 0});
  // along axis 1 of a [2, 3] with a tie in each row: the later one takes it
  const Tensor m = tensor({2.0, 2.0, 1.0, -1.0, 0.5, 0.5}, {2, 3});
  GradientTape t3;
  t3.watch(m);
  CHECK(t3.gradient(sum(cummax(m, 1)), m).to_vector<double>() == std::vector<double>{1, 2, 0, 1, 1, 1});
}

TEST_CASE("gradgradcheck: second derivatives through nested tapes", "[gradcheck]") {
  std::vector<Case> cs = {
      {"tanh", [](const std::vector<Tensor>& x) { return tanh(x[0]); }, {anyv({2, 3}, 1)}},
      {"exp", [](const std::vector<Tensor>& x) { return exp(x[0]); }, {anyv({2, 3}, 2)}},
      {"mul [3, 1] * [4]", [](const std::vector<Tensor>& x) { return x[0] * x[1]; }, {anyv({3, 1}, 3), anyv({4}, 4)}},
      {"mul x * x * x", [](const std::vector<Tensor>& x) { return x[0] * x[0] * x[0]; }, {anyv({4}, 5)}},
      {"matmul [2, 3] @ [3, 2]", [](const std::vector<Tensor>& x) { return matmul(x[0], x[1]); },
       {anyv({2, 3}, 6), anyv({3, 2}, 7)}},
      {"matmul(x, x) (quadratic)", [](const std::vector<Tensor>& x) { return matmul(x[0], x[0]); }, {anyv({3, 3}, 8)}},
      {"softmax", [](const std::vector<Tensor>& x) { return softmax(x[0]); }, {anyv({2, 4}, 9)}},
      {"log_softmax", [](const std::vector<Tensor>& x) { return log_softmax(x[0]); }, {anyv({2, 4}, 10)}},
      {"sigmoid", [](const std::vector<Tensor>& x) { return sigmoid(x[0]); }, {anyv({5}, 11)}},
      {"log", [](const std::vector<Tensor>& x) { return log(x[0]); }, {posv({5}, 12)}},
      {"sqrt", [](const std::vector<Tensor>& x) { return sqrt(x[0]); }, {posv({5}, 13)}},
      {"div", [](const std::vector<Tensor>& x) { return x[0] / x[1]; }, {anyv({3, 1}, 14), posv({4}, 15)}},
      {"pow(a, b)", [](const std::vector<Tensor>& x) { return pow(x[0], x[1]); }, {posv({3}, 16), anyv({3}, 17)}},
      {"x ** 3", [](const std::vector<Tensor>& x) { return pow(x[0], 3.0); }, {anyv({4}, 18)}},
      {"logsumexp axis 1", [](const std::vector<Tensor>& x) { return logsumexp(x[0], {1}); }, {anyv({2, 3}, 19)}},
      {"var", [](const std::vector<Tensor>& x) { return var(x[0]); }, {anyv({5}, 20)}},
      {"abs * x (abs'' through sign)", [](const std::vector<Tensor>& x) { return abs(x[0]) * x[0]; }, {anyv({4}, 21)}},
      {"relu(x) * x", [](const std::vector<Tensor>& x) { return relu(x[0]) * x[0]; }, {anyv({4}, 22)}},
      {"max axis 1 times x", [](const std::vector<Tensor>& x) { return max(x[0], {1}, true) * x[0]; },
       {anyv({2, 3}, 23)}},
      {"take_along_axis squared",
       [](const std::vector<Tensor>& x) { return square(take_along_axis(x[0], i64({1, 1, 0}, {1, 3}), 1)); },
       {anyv({2, 3}, 24)}},
      {"slice with negative step, squared", [](const std::vector<Tensor>& x) { return square(x[0](Slice(none, none, -2))); },
       {anyv({5}, 25)}},
      {"einsum ij,jk->ik of x with itself", [](const std::vector<Tensor>& x) { return einsum("ij,jk->ik", x[0], x[0]); },
       {anyv({3, 3}, 26)}},
      {"einsum ii->i times bi,i->b",
       [](const std::vector<Tensor>& x) { return einsum("bi,i->b", x[1], einsum("ii->i", x[0])) * x[1](all, 0); },
       {anyv({3, 3}, 27), anyv({2, 3}, 28)}},
  };
  for (const auto& c : cs) {
    INFO("case: " << c.label);
    const GradcheckResult r = gradgradcheck(c.fn, c.inputs, c.options);
    INFO(r.message);
    CHECK(r.ok);
  }
}

TEST_CASE("gradcheck: reports a wrong gradient (the oracle itself works)", "[gradcheck]") {
  // forward x * x, backward 3 * g: the tape uses the wrong rule and gradcheck must notice
  auto wrong = [](const std::vector<Tensor>& x) {
    return custom_op(
        "wrong_square", {x[0]}, [](const std::vector<Tensor>& in) { return in[0] * in[0]; },
        [](const std::vector<Tensor>&, const Tensor&, const Tensor& g) { return std::vector<Tensor>{g * 3.0}; });
  };
  const GradcheckResult bad = gradcheck(wrong, {anyv({4}, 1)});
  CHECK_FALSE(bad.ok);
  CHECK(bad.max_abs_error > 0.1);
  CHECK(bad.message.find("analytic") != std::string::npos);
  CHECK(bad.message.find("numeric") != std::string::npos);

  // the same op with the right rule passes, and so does its second derivative
  auto right = [](const std::vector<Tensor>& x) {
    return custom_op(
        "square", {x[0]}, [](const std::vector<Tensor>& in) { return in[0] * in[0]; },
        [](const std::vector<Tensor>& in, const Tensor&, const Tensor& g) {
          return std::vector<Tensor>{g * 2.0 * in[0]};
        });
  };
  CHECK(gradcheck(right, {anyv({4}, 2)}).ok);
  CHECK(gradgradcheck(right, {anyv({4}, 3)}).ok);

  // float32 inputs are checked in float64
  const GradcheckResult r32 =
      gradcheck([](const std::vector<Tensor>& x) { return tanh(x[0]); }, {anyv({3}, 4).astype(kFloat32)});
  CHECK(r32.ok);
}
