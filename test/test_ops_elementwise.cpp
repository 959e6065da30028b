// Element-wise ops: every Unary/Binary/Compare/Logical row of ops.def against the naive
// kernels on random shapes (rank 0..4, size-1 and size-0 axes), broadcasting, non-contiguous
// inputs and every dtype pairing; hand-worked NumPy values; weak scalars; where, clip,
// operators; in-place writes; error messages.
#include "golden/math_golden.hpp"
#include "tapeflow/gradient_tape.hpp"
#include "test_helpers.hpp"

using namespace tapeflow;
using namespace th;
using Catch::Contains;

namespace {

// The front-end of each element-wise op. An op added to ops.def without a line here fails
// the table-driven tests below (by design: new ops must be covered).
Tensor front_unary(OpId op, const Tensor& x, double p0, double p1) {
  switch (op) {
    case OpId::Neg: return neg(x);
    case OpId::Abs: return abs(x);
    case OpId::Sign: return sign(x);
    case OpId::Exp: return exp(x);
    case OpId::Log: return log(x);
    case OpId::Log1p: return log1p(x);
    case OpId::Expm1: return expm1(x);
    case OpId::Erf: return erf(x);
    case OpId::Sin: return sin(x);
    case OpId::Cos: return cos(x);
    case OpId::Tan: return tan(x);
    case OpId::Asin: return asin(x);
    case OpId::Acos: return acos(x);
    case OpId::Atan: return atan(x);
    case OpId::Sinh: return sinh(x);
    case OpId::Cosh: return cosh(x);
    case OpId::Asinh: return asinh(x);
    case OpId::Acosh: return acosh(x);
    case OpId::Atanh: return atanh(x);
    case OpId::Floor: return floor(x);
    case OpId::Ceil: return ceil(x);
    case OpId::Round: return round(x);
    case OpId::Sqrt: return sqrt(x);
    case OpId::Tanh: return tanh(x);
    case OpId::Sigmoid: return sigmoid(x);
    case OpId::Relu: return relu(x);
    case OpId::Step: return step(x);
    case OpId::PowScalar: return pow(x, p0);
    case OpId::Clip: return clip(x, p0, p1);
    case OpId::ClipMask: return clip_mask(x, p0, p1);
    default: break;
  }
  FAIL("no front-end for unary op '" << op_name(op) << "': add it to front_unary in this test");
  return Tensor();
}

// Transcendental ops compute in floating point: integer inputs give float32 (as int / int).
bool unary_goes_float(OpId op) {
  switch (op) {
    case OpId::Exp:
    case OpId::Log:
    case OpId::Log1p:
    case OpId::Expm1:
    case OpId::Erf:
    case OpId::Sin:
    case OpId::Cos:
    case OpId::Tan:
    case OpId::Asin:
    case OpId::Acos:
    case OpId::Atan:
    case OpId::Sinh:
    case OpId::Cosh:
    case OpId::Asinh:
    case OpId::Acosh:
    case OpId::Atanh:
    case OpId::Sqrt:
    case OpId::Tanh:
    case OpId::Sigmoid:
    case OpId::PowScalar: return true;
    case OpId::Neg:
    case OpId::Abs:
    case OpId::Sign:
    case OpId::Relu:
    case OpId::Step:
    case OpId::Floor:
    case OpId::Ceil:
    case OpId::Round:
    case OpId::Clip:
    case OpId::ClipMask: return false;
    default: break;
  }
  FAIL("unknown unary op '" << op_name(op) << "': say in unary_goes_float whether it promotes ints");
  return false;
}

Tensor front_binary(OpId op, const Tensor& a, const Tensor& b) {
  switch (op) {
    case OpId::Add: return add(a, b);
    case OpId::Sub: return sub(a, b);
    case OpId::Mul: return mul(a, b);
    case OpId::Div: return div(a, b);
    case OpId::Pow: return pow(a, b);
    case OpId::Maximum: return maximum(a, b);
    case OpId::Minimum: return minimum(a, b);
    case OpId::Atan2: return atan2(a, b);
    case OpId::FloorDiv: return floor_divide(a, b);
    case OpId::FloorMod: return mod(a, b);
    case OpId::TanhGrad: return tanh_grad(a, b);
    case OpId::SigmoidGrad: return sigmoid_grad(a, b);
    case OpId::ReluGrad: return relu_grad(a, b);
    case OpId::Equal: return equal(a, b);
    case OpId::NotEqual: return not_equal(a, b);
    case OpId::Less: return less(a, b);
    case OpId::LessEqual: return less_equal(a, b);
    case OpId::Greater: return greater(a, b);
    case OpId::GreaterEqual: return greater_equal(a, b);
    case OpId::LogicalAnd: return logical_and(a, b);
    case OpId::LogicalOr: return logical_or(a, b);
    case OpId::LogicalNot: return logical_not(a);
    default: break;
  }
  FAIL("no front-end for op '" << op_name(op) << "': add it to front_binary in this test");
  return Tensor();
}

// True division, pow and atan2 compute in floating point: integer operands give float32.
bool binary_goes_float(OpId op) { return op == OpId::Div || op == OpId::Pow || op == OpId::Atan2; }

bool is_unary_logical(OpId op) { return op == OpId::LogicalNot; }

std::vector<OpId> ops_of_kind(OpKind kind) {
  std::vector<OpId> out;
  for (std::size_t i = 0; i < kNumOps; ++i)
    if (kOpInfo[i].kind == kind) out.push_back(static_cast<OpId>(i));
  return out;
}

// The documented promotion: the wider of bool < int32 < int64 < float32 < float64.
DType promoted(DType a, DType b) { return static_cast<int>(a) < static_cast<int>(b) ? b : a; }

std::string name(DType d) { return dtype_name(d); }

}  // namespace

// =================================================================== the oracle itself

TEST_CASE("oracle: the naive kernels and the test's layouts give hand-worked values", "[oracle]") {
  const Tensor a = tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3});
  const Tensor row = tensor({10.0, 20.0, 30.0});
  check_values(naive_binary(OpId::Add, a, row, kFloat64), {2, 3}, {11, 22, 33, 14, 25, 36});
  check_values(naive_binary(OpId::Sub, row, a.transpose()(all, Slice(0, 1)), kFloat64), {3, 3},
               {9, 19, 29, 8, 18, 28, 7, 17, 27});  // [3] - [3, 1]
  check_values(naive_unary(OpId::Exp, tensor({0.0, 1.0})), {2}, {1, std::exp(1.0)});
  check_values(naive_unary(OpId::Clip, tensor({-5.0, 0.5, 5.0}), -1, 2), {3}, {-1, 0.5, 2});
  check_values(naive_compare(OpId::Less, a, tensor({3.5}), kFloat64), {2, 3}, {1, 1, 1, 0, 0, 0});
  check_values(naive_where(tensor({true, false, true}), row, tensor({0.0}), kFloat64), {3}, {10, 0, 30});
  check_values(naive_cast(tensor({-1.5, 0.0, 2.7}), kInt32), {3}, {-1, 0, 2});
  check_values(naive_cast(a(Slice(none, none, -1), Slice(none, none, 2)), kFloat32), {2, 2}, {4, 6, 1, 3});
  check_values(naive_reduce(OpId::Sum, a, {0}, false), {3}, {5, 7, 9});
  check_values(naive_reduce(OpId::Max, a.transpose(), {1}, true), {3, 1}, {4, 5, 6});
  check_values(naive_arg_reduce(OpId::ArgMin, tensor({3.0, 1.0, 1.0}), 0), {}, {1});
  CHECK(broadcast({2, 1, 3}, {4, 1}) == Shape{2, 4, 3});
  CHECK(broadcast({}, {0, 2}) == Shape{0, 2});
  const Layout l = layout_as(tensor({1.0, 2.0}, {2, 1}), {3, 2, 4});
  CHECK(l.rank == 3);
  CHECK(l.strides[0] == 0);
  CHECK(l.strides[1] == 1);
  CHECK(l.strides[2] == 0);
}

// =================================================================== table-driven, vs the naive kernels

TEST_CASE("elementwise: the op table has rows of every element-wise kind", "[elementwise][table]") {
  CHECK(ops_of_kind(OpKind::Unary).size() >= 10);
  CHECK(ops_of_kind(OpKind::Binary).size() >= 7);
  CHECK(ops_of_kind(OpKind::Compare).size() == 6);
  CHECK(ops_of_kind(OpKind::Logical).size() == 3);
  for (std::size_t i = 0; i < kNumOps; ++i) CHECK(std::string(kOpInfo[i].name).size() > 0);
}

TEST_CASE("elementwise: every unary op matches the naive kernel (dtypes, layouts, ranks 0..4)",
          "[elementwise][unary][naive]") {
  std::mt19937 rng(101);
  for (OpId op : ops_of_kind(OpKind::Unary)) {
    for (DType dt : kNumericDTypes) {
      const bool integral = is_integral(dt);
      // integer-valued parameters where they are converted to the input's type
      double p0 = 0, p1 = 0;
      if (op == OpId::PowScalar) p0 = integral ? 3 : 2.5;
      if (op == OpId::Clip || op == OpId::ClipMask) {
        p0 = -1;
        p1 = 2;
      }
      for (Make how : kAllMakes) {
        for (int trial = 0; trial < 3; ++trial) {
          const Shape s = random_shape(rng);
          const Tensor x = make_input(s, dt, rng, how, integral ? -5 : -3, integral ? 5 : 3);
          INFO("op " << op_name(op) << " dtype " << name(dt) << " layout " << make_name(how) << " shape " << str(s));
          const DType out_dt = unary_goes_float(op) && integral ? kFloat32 : dt;
          const Tensor expected = naive_unary(op, naive_cast(x, out_dt), p0, p1);
          const Tensor got = front_unary(op, x, p0, p1);
          check_close(got, expected);
        }
      }
    }
  }
}

TEST_CASE("elementwise: log1p is exact where 1 + x rounds to 1, as NumPy's", "[elementwise][unary]") {
  const double inf = std::numeric_limits<double>::infinity();
  const auto v = log1p(tensor({1e-10, 0.0, -1.0, 1.0, 1e300}, {5}, kFloat64)).to_vector<double>();
  CHECK(v[0] == Approx(1e-10 - 5e-21).epsilon(1e-15));  // log(1 + 1e-10) gives 1.00000008274037e-10
  CHECK(v[1] == 0.0);
  CHECK(v[2] == -inf);
  CHECK(v[3] == Approx(std::log(2.0)).epsilon(1e-15));
  CHECK(v[4] == Approx(std::log(1e300)).epsilon(1e-15));
  CHECK(std::isnan(log1p(tensor({-2.0}, {1}, kFloat64)).item<double>()));
  const Tensor f = log1p(tensor({1e-8f}));  // float32 keeps float32; ints give float32
  CHECK(f.dtype() == kFloat32);
  CHECK(f.item<float>() == 1e-8f);
  CHECK(log1p(tensor<std::int32_t>({0, 1}, {2})).dtype() == kFloat32);
}

TEST_CASE("elementwise: unary ops on bool raise DTypeError naming the op", "[elementwise][unary][errors]") {
  const Tensor b = tensor({true, false});
  for (OpId op : ops_of_kind(OpKind::Unary)) {
    INFO("op " << op_name(op));
    CHECK_THROWS_AS(front_unary(op, b, 0, 1), DTypeError);
    CHECK_THROWS_WITH(front_unary(op, b, 0, 1), Contains(std::string(op_name(op)) + ": bool tensors are not supported"));
  }
}

TEST_CASE("elementwise: every binary op matches the naive kernel for every dtype pairing, with broadcasting",
          "[elementwise][binary][naive][promotion]") {
  std::mt19937 rng(202);
  for (OpId op : ops_of_kind(OpKind::Binary)) {
    for (DType da : kAllDTypes) {
      for (DType db : kAllDTypes) {
        DType dt = promoted(da, db);
        if (dt == kBool) continue;  // the error is tested below
        if (binary_goes_float(op) && !is_floating(dt)) dt = kFloat32;
        for (int trial = 0; trial < 6; ++trial) {
          const Shape sa = random_shape(rng);
          const Shape sb = random_broadcast_partner(rng, sa);
          const Make ma = kAllMakes[rand_int(rng, 0, 5)], mb = kAllMakes[rand_int(rng, 0, 5)];
          const Tensor a = make_input(sa, da, rng, ma);
          const Tensor b = make_input(sb, db, rng, mb);
          INFO("op " << op_name(op) << ": " << name(da) << " " << str(sa) << " (" << make_name(ma) << ") with "
                     << name(db) << " " << str(sb) << " (" << make_name(mb) << ")");
          check_close(front_binary(op, a, b), naive_binary(op, a, b, dt));
          // the same with the operands swapped
          check_close(front_binary(op, b, a), naive_binary(op, b, a, dt));
        }
      }
    }
  }
}

TEST_CASE("elementwise: arithmetic on two bool tensors is logical where NumPy and PyTorch define it, else raises",
          "[elementwise][binary][errors]") {
  const Tensor a = tensor({true, false, true, false}), b = tensor({true, true, false, false});
  const auto bools = [](const Tensor& t) {
    CHECK(t.dtype() == kBool);
    return t.to_vector<bool>();
  };
  CHECK(bools(a + b) == std::vector<bool>{true, true, true, false});  // or
  CHECK(bools(maximum(a, b)) == std::vector<bool>{true, true, true, false});
  CHECK(bools(a * b) == std::vector<bool>{true, false, false, false});  // and
  CHECK(bools(minimum(a, b)) == std::vector<bool>{true, false, false, false});
  const Tensor q = a / b;  // true division, as float32: 1/1, 0/1, 1/0, 0/0
  CHECK(q.dtype() == kFloat32);
  const auto qv = q.to_vector<float>();
  CHECK(qv[0] == 1.0f);
  CHECK(qv[1] == 0.0f);
  CHECK(std::isinf(qv[2]));
  CHECK(std::isnan(qv[3]));
  // with broadcasting too
  CHECK(bools(a + tensor({false})) == std::vector<bool>{true, false, true, false});
  for (OpId op : ops_of_kind(OpKind::Binary)) {
    if (op == OpId::Add || op == OpId::Mul || op == OpId::Div || op == OpId::Maximum || op == OpId::Minimum) continue;
    INFO("op " << op_name(op));
    CHECK_THROWS_AS(front_binary(op, a, b), DTypeError);
    CHECK_THROWS_WITH(front_binary(op, a, b), Contains(std::string(op_name(op)) + ": not defined for two bool tensors"));
  }
}

TEST_CASE("elementwise: every comparison matches the naive kernel for every dtype pairing",
          "[elementwise][compare][naive][promotion]") {
  std::mt19937 rng(303);
  for (OpId op : ops_of_kind(OpKind::Compare)) {
    for (DType da : kAllDTypes) {
      for (DType db : kAllDTypes) {
        for (int trial = 0; trial < 5; ++trial) {
          const Shape sa = random_shape(rng);
          const Shape sb = random_broadcast_partner(rng, sa);
          const Make ma = kAllMakes[rand_int(rng, 0, 5)], mb = kAllMakes[rand_int(rng, 0, 5)];
          // small integer-valued floats half the time, so that equality happens
          const bool ties = trial % 2 == 0;
          const Tensor a = make_input(sa, da, rng, ma, -2, 2, ties);
          const Tensor b = make_input(sb, db, rng, mb, -2, 2, ties);
          INFO("op " << op_name(op) << ": " << name(da) << " " << str(sa) << " vs " << name(db) << " " << str(sb));
          check_close(front_binary(op, a, b), naive_compare(op, a, b, promoted(da, db)));
        }
      }
    }
  }
}

TEST_CASE("elementwise: every logical op matches the naive kernel (any dtype is truth-tested)",
          "[elementwise][logical][naive]") {
  std::mt19937 rng(404);
  for (OpId op : ops_of_kind(OpKind::Logical)) {
    for (DType da : kAllDTypes) {
      for (DType db : kAllDTypes) {
        for (int trial = 0; trial < 4; ++trial) {
          const Shape sa = random_shape(rng);
          const Shape sb = random_broadcast_partner(rng, sa);
          const Make ma = kAllMakes[rand_int(rng, 0, 5)], mb = kAllMakes[rand_int(rng, 0, 5)];
          const Tensor a = make_input(sa, da, rng, ma, -1, 1, true);
          const Tensor b = make_input(sb, db, rng, mb, -1, 1, true);
          INFO("op " << op_name(op) << ": " << name(da) << " " << str(sa) << " with " << name(db) << " " << str(sb));
          if (is_unary_logical(op)) {
            check_close(front_binary(op, a, b), naive_compare(op, a, a, kBool));
          } else {
            check_close(front_binary(op, a, b), naive_compare(op, a, b, kBool));
          }
        }
      }
    }
  }
}

TEST_CASE("elementwise: large tensors (threaded and SIMD paths) match the naive kernels", "[elementwise][naive][large]") {
  // [160, 1700] = 272000 elements: above the size where the CPU kernels split the work
  std::mt19937 rng(909);
  const Shape s = {160, 1700};
  const Make layouts[] = {Make::Contiguous, Make::Transposed, Make::Strided};
  for (Make how : layouts) {
    const Tensor x = make_input(s, kFloat32, rng, how);
    for (OpId op : ops_of_kind(OpKind::Unary)) {
      INFO("op " << op_name(op) << " layout " << make_name(how));
      const double p0 = op == OpId::PowScalar ? 2.0 : -1.0, p1 = 2.0;
      check_close(front_unary(op, x, p0, p1), naive_unary(op, naive_cast(x, kFloat32), p0, p1));
    }
  }
  for (DType dt : {kFloat32, kFloat64, kInt32}) {
    const Tensor a = make_input(s, dt, rng, Make::Contiguous, -3, 3, true);
    // same shape (contiguous and transposed), a row, a column, a scalar
    const Tensor others[] = {make_input(s, dt, rng, Make::Contiguous, -3, 3, true),
                             make_input(s, dt, rng, Make::Transposed, -3, 3, true),
                             make_input({1700}, dt, rng, Make::Contiguous, -3, 3, true),
                             make_input({160, 1}, dt, rng, Make::Contiguous, -3, 3, true),
                             make_input({}, dt, rng, Make::Contiguous, -3, 3, true)};
    // each op against one of the other operands, in turn (the whole grid would be slow)
    std::size_t turn = static_cast<std::size_t>(dt);
    for (OpKind kind : {OpKind::Binary, OpKind::Compare}) {
      for (OpId op : ops_of_kind(kind)) {
        {
          const Tensor& b = others[turn++ % 5];
          INFO("op " << op_name(op) << " " << dtype_name(dt) << " with " << str(b.shape()));
          DType cdt = dt;
          if (binary_goes_float(op) && !is_floating(dt)) cdt = kFloat32;
          const Tensor expected = kind == OpKind::Binary ? naive_binary(op, a, b, cdt) : naive_compare(op, a, b, dt);
          check_close(front_binary(op, a, b), expected);
          check_close(front_binary(op, b, a),
                      kind == OpKind::Binary ? naive_binary(op, b, a, cdt) : naive_compare(op, b, a, dt));
        }
      }
    }
    const Tensor c = make_input(s, kBool, rng, Make::Transposed);
    check_close(where(c, a, others[2]), naive_where(c, a, others[2], dt));
    // in place, into a transposed view
    Tensor y = make_input(s, dt, rng, Make::Transposed);
    const Tensor yb = naive_cast(y, dt);
    y.add_(others[3]);
    check_close(y, naive_binary(OpId::Add, yb, others[3], dt));
  }
}

// =================================================================== hand-worked values (NumPy)

TEST_CASE("elementwise: unary ops on hand-worked values", "[elementwise][unary]") {
  check_values(neg(tensor({1.f, -2.f, 0.f})), {3}, {-1, 2, 0});
  check_values(abs(tensor({-3, 0, 2})), {3}, {3, 0, 2});
  CHECK(abs(tensor({-3, 0, 2})).dtype() == kInt32);
  check_values(sign(tensor({-3.5, 0.0, 2.0})), {3}, {-1, 0, 1});
  check_values(sign(tensor({-3, 0, 7})), {3}, {-1, 0, 1});
  check_values(exp(tensor({0.f, 1.f, -1.f})), {3}, {1, std::exp(1.0), std::exp(-1.0)});
  check_values(log(tensor({1.0, std::exp(2.0), 0.0})), {3}, {0, 2, -INFINITY});
  CHECK(std::isnan(log(tensor({-1.f})).item<float>()));
  check_values(sqrt(tensor({4.f, 9.f, 0.f})), {3}, {2, 3, 0});
  check_values(sqrt(tensor({4, 9})), {2}, {2, 3});
  CHECK(sqrt(tensor({4, 9})).dtype() == kFloat32);
  check_values(tanh(tensor({0.0, 1.0, -20.0})), {3}, {0, 0.7615941559557649, -1});
  check_values(sigmoid(tensor({0.f, 2.f})), {2}, {0.5, 1 / (1 + std::exp(-2.0))});
  check_values(relu(tensor({-1.f, 0.f, 2.5f})), {3}, {0, 0, 2.5});
  check_values(relu(tensor({-1, 0, 3})), {3}, {0, 0, 3});
  check_values(step(tensor({-1.f, 0.f, 2.5f})), {3}, {0, 0, 1});
  check_values(pow(tensor({2.f, 3.f, -2.f}), 2.0), {3}, {4, 9, 4});
  check_values(pow(tensor({-2.0, 4.0}), 3.0), {2}, {-8, 64});  // defined for x < 0
  check_values(pow(tensor({4.0, 9.0}), 0.5), {2}, {2, 3});
  check_values(clip(tensor({-5.f, 0.5f, 5.f, 2.f}), -1, 2), {4}, {-1, 0.5, 2, 2});
  check_values(clip(tensor({-5, 0, 5}), -1, 2), {3}, {-1, 0, 2});
  CHECK(clip(tensor({-5, 0, 5}), -1, 2).dtype() == kInt32);
  check_values(clip_mask(tensor({-5.f, -1.f, 0.5f, 2.f, 5.f}), -1, 2), {5}, {0, 1, 1, 1, 0});
}

TEST_CASE("elementwise: sigmoid and exp at extreme values", "[elementwise][unary][stability]") {
  const Tensor x = tensor({-1000.f, -100.f, 100.f, 1000.f});
  const auto s = values(sigmoid(x));
  CHECK(s[0] == 0.0);
  CHECK(s[1] == Approx(0.0).margin(1e-30));
  CHECK(s[2] == 1.0);
  CHECK(s[3] == 1.0);
  for (double v : s) CHECK_FALSE(std::isnan(v));
  const auto e = values(exp(tensor({1000.f, -1000.f})));
  CHECK(std::isinf(e[0]));
  CHECK(e[1] == 0.0);
}

TEST_CASE("elementwise: binary ops on hand-worked values", "[elementwise][binary]") {
  const Tensor a = tensor({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3});
  const Tensor row = tensor({10.f, 20.f, 30.f});
  const Tensor col = tensor({100.f, 200.f}, {2, 1});
  check_values(add(a, row), {2, 3}, {11, 22, 33, 14, 25, 36});
  check_values(add(a, col), {2, 3}, {101, 102, 103, 204, 205, 206});
  check_values(add(row, col), {2, 3}, {110, 120, 130, 210, 220, 230});  // [3] + [2, 1] -> [2, 3]
  check_values(sub(a, row), {2, 3}, {-9, -18, -27, -6, -15, -24});
  check_values(mul(a, col), {2, 3}, {100, 200, 300, 800, 1000, 1200});
  check_values(div(a, tensor({2.f})), {2, 3}, {0.5, 1, 1.5, 2, 2.5, 3});
  check_values(pow(tensor({2.f, 3.f, 4.f}), tensor({0.f, 2.f, 0.5f})), {3}, {1, 9, 2});
  check_values(maximum(tensor({1, 5, -3}), tensor({2, 4, -3})), {3}, {2, 5, -3});
  check_values(minimum(tensor({1.0, 5.0, -3.0}), tensor({2.0, 4.0, -4.0})), {3}, {1, 4, -4});
  // rank 0 with rank 0, and rank 0 with a zero-size tensor
  check_values(add(scalar(2.f), scalar(3.f)), {}, {5});
  check_values(mul(scalar(2.f), zeros({0, 3})), {0, 3}, {});
  check_values(add(zeros({2, 0}), zeros({1, 0})), {2, 0}, {});
}

TEST_CASE("elementwise: integer true division gives float32; division by zero", "[elementwise][binary][promotion]") {
  const Tensor q = div(tensor({7, -7, 1, 0}), tensor({2, 2, 0, 0}));
  CHECK(q.dtype() == kFloat32);
  const auto v = values(q);
  CHECK(v[0] == 3.5);
  CHECK(v[1] == -3.5);
  CHECK(std::isinf(v[2]));
  CHECK(v[2] > 0);
  CHECK(std::isnan(v[3]));
  CHECK(div(tensor<std::int64_t>({9}), tensor<std::int64_t>({4})).dtype() == kFloat32);
  CHECK(div(tensor({9}), tensor<std::int64_t>({4})).item<float>() == 2.25f);
  const auto f = values(div(tensor({1.0, -1.0}), tensor({0.0, 0.0})));
  CHECK(f[0] == INFINITY);
  CHECK(f[1] == -INFINITY);
}

TEST_CASE("elementwise: maximum/minimum propagate NaN (NumPy)", "[elementwise][binary]") {
  const double nan = std::nan("");
  const auto mx = values(maximum(tensor({nan, 1.0, 2.0}), tensor({1.0, nan, 1.0})));
  CHECK(std::isnan(mx[0]));
  CHECK(std::isnan(mx[1]));
  CHECK(mx[2] == 2.0);
  const auto mn = values(minimum(tensor({nan, 1.0}), tensor({1.0, nan})));
  CHECK(std::isnan(mn[0]));
  CHECK(std::isnan(mn[1]));
}

TEST_CASE("elementwise: NaN propagates through relu and sign (NumPy, PyTorch)", "[elementwise][unary][nan]") {
  // NumPy: np.sign(np.nan) -> nan, np.maximum(np.nan, 0) -> nan; PyTorch: torch.relu(nan) -> nan.
  // Mapping NaN to 0 would hide a diverged training run behind every relu.
  const double nan = std::nan("");
  CHECK(std::isnan(relu(tensor({nan})).item<double>()));
  CHECK(std::isnan(relu(tensor({std::nanf("")})).item<float>()));
  CHECK(std::isnan(sign(tensor({nan})).item<double>()));
}

TEST_CASE("elementwise: the fused derivatives on hand-worked values, NaN kept", "[elementwise][binary][nan]") {
  const double nan = std::nan(""), inf = INFINITY;
  const Tensor y = tensor({-0.5, 0.0, 0.5, 0.9});
  check_values(tanh_grad(tensor({2.0, 2.0, 2.0, 1.0}), y), {4}, {1.5, 2, 1.5, 1 - 0.81});
  check_values(sigmoid_grad(tensor({2.0, 2.0, 2.0, 1.0}), y), {4}, {-1.5, 0, 0.5, 0.9 * 0.1});
  // relu: the gradient where x > 0, else 0; a NaN gradient stays NaN either way (a diverged
  // run shows), an infinite one where x <= 0 gives 0
  const auto r = values(relu_grad(tensor({3.0, 3.0, 3.0, nan, nan, inf, -inf}),
                                  tensor({-1.0, 0.0, 2.0, -1.0, 1.0, -2.0, 2.0})));
  CHECK(r[0] == 0);
  CHECK(r[1] == 0);
  CHECK(r[2] == 3);
  CHECK(std::isnan(r[3]));
  CHECK(std::isnan(r[4]));
  CHECK(r[5] == 0);
  CHECK(r[6] == -inf);
  check_values(relu_grad(tensor({1.f, 2.f, 3.f}), tensor({std::nanf(""), -1.f, 1.f})), {3}, {0, 0, 3});
}

TEST_CASE("elementwise: comparisons and logic on hand-worked values", "[elementwise][compare][logical]") {
  const Tensor x = tensor({1, 2, 3});
  const Tensor two = tensor({2});
  check_values(equal(x, two), {3}, {0, 1, 0});
  check_values(not_equal(x, two), {3}, {1, 0, 1});
  check_values(less(x, two), {3}, {1, 0, 0});
  check_values(less_equal(x, two), {3}, {1, 1, 0});
  check_values(greater(x, two), {3}, {0, 0, 1});
  check_values(greater_equal(x, two), {3}, {0, 1, 1});
  CHECK(equal(x, two).dtype() == kBool);
  // int vs float compares values, not truncated values: 2 < 2.5 in float
  check_values(less(x, tensor({2.5f})), {3}, {1, 1, 0});
  // NaN compares unequal to everything
  check_values(equal(tensor({std::nan(""), 1.0}), tensor({std::nan(""), 1.0})), {2}, {0, 1});
  check_values(not_equal(tensor({std::nan("")}), tensor({std::nan("")})), {1}, {1});
  const Tensor p = tensor({true, true, false, false}), q = tensor({true, false, true, false});
  check_values(logical_and(p, q), {4}, {1, 0, 0, 0});
  check_values(logical_or(p, q), {4}, {1, 1, 1, 0});
  check_values(logical_not(p), {4}, {0, 0, 1, 1});
  // non-bool operands are truth-tested, as NumPy does
  check_values(logical_and(tensor({0.f, 2.f, -1.f}), tensor({1, 1, 0})), {3}, {0, 1, 0});
  check_values(logical_not(tensor({0.0, 0.5})), {2}, {1, 0});
}

TEST_CASE("elementwise: promotion table for every dtype pairing (add, and div)", "[elementwise][promotion]") {
  // rows: a's dtype, columns: b's dtype, in the order bool, int32, int64, float32, float64
  const DType add_table[5][5] = {
      {kBool, kInt32, kInt64, kFloat32, kFloat64},       // bool (bool + bool is or)
      {kInt32, kInt32, kInt64, kFloat32, kFloat64},      // int32
      {kInt64, kInt64, kInt64, kFloat32, kFloat64},      // int64
      {kFloat32, kFloat32, kFloat32, kFloat32, kFloat64},  // float32
      {kFloat64, kFloat64, kFloat64, kFloat64, kFloat64},  // float64
  };
  for (int i = 0; i < 5; ++i) {
    for (int j = 0; j < 5; ++j) {
      const DType da = kAllDTypes[i], db = kAllDTypes[j];
      INFO(name(da) << " with " << name(db));
      const Tensor a = tensor({1, 0, 3}).astype(da), b = tensor({1, 1, 0}).astype(db);
      const Tensor s = add(a, b);
      CHECK(name(s.dtype()) == name(add_table[i][j]));
      // as bool, 3 is True (1); bool + bool is or
      check_values(s, {3}, {da == kBool && db == kBool ? 1.0 : 2.0, 1, da == kBool ? 1.0 : 3.0});
      CHECK(name(mul(a, b).dtype()) == name(add_table[i][j]));
      CHECK(name(maximum(a, b).dtype()) == name(add_table[i][j]));
      const DType div_dt = is_floating(add_table[i][j]) ? add_table[i][j] : kFloat32;
      CHECK(name(div(a, b).dtype()) == name(div_dt));
      CHECK(equal(a, b).dtype() == kBool);
    }
  }
}

TEST_CASE("elementwise: weak C++ scalars take the tensor's dtype", "[elementwise][promotion][weak]") {
  const Tensor f32 = tensor({1.f, 2.f});
  const Tensor f64 = tensor({1.0, 2.0});
  const Tensor i32 = tensor({1, 2});
  const Tensor i64 = tensor<std::int64_t>({1, 2});
  const Tensor b = tensor({true, false});

  CHECK((f32 * 2.0).dtype() == kFloat32);
  check_values(f32 * 2.0, {2}, {2, 4});
  CHECK((2.0 * f32).dtype() == kFloat32);
  CHECK((f32 + 1).dtype() == kFloat32);
  CHECK((f64 * 2.0f).dtype() == kFloat64);
  CHECK((i32 + 1).dtype() == kInt32);
  check_values(i32 + 1, {2}, {2, 3});
  CHECK((1 + i32).dtype() == kInt32);
  CHECK((i32 + std::int64_t(1)).dtype() == kInt32);
  CHECK((i64 * 3).dtype() == kInt64);
  CHECK((i32 * 2.5).dtype() == kFloat32);
  check_values(i32 * 2.5, {2}, {2.5, 5});
  CHECK((i64 - 0.5).dtype() == kFloat32);
  CHECK((b + 1).dtype() == kInt64);  // NumPy 2: True + 1 is an int64 array
  check_values(b + 1, {2}, {2, 1});
  CHECK((b * 2.5).dtype() == kFloat32);
  CHECK((i32 / 2).dtype() == kFloat32);
  check_values(i32 / 2, {2}, {0.5, 1});
  CHECK((1.0 - f32).dtype() == kFloat32);
  check_values(1.0 - f32, {2}, {0, -1});
  check_values(6.0 / f32, {2}, {6, 3});
  CHECK(maximum(f32, 0.0).dtype() == kFloat32);
  CHECK(maximum(i32, 0).dtype() == kInt32);
  CHECK((i32 > 1.5).dtype() == kBool);
  check_values(i32 > 1.5, {2}, {0, 1});
  CHECK(pow(f32, Tensor(2)).dtype() == kFloat32);
  // two weak scalars: a rank-0 result
  const Tensor s = Tensor(2) + Tensor(3);
  CHECK(s.rank() == 0);
  CHECK(s.item<std::int64_t>() == 5);
  CHECK(Tensor(2.5).dtype() == kFloat64);
  CHECK(Tensor(2.5).is_weak());
  CHECK_FALSE(f32.is_weak());
  // a rank-0 tensor made with scalar() is strong: it promotes like any tensor
  CHECK((i32 * scalar(2.5, kFloat64)).dtype() == kFloat64);
  CHECK(result_dtype(f32, Tensor(2.0)) == kFloat32);
  CHECK(result_dtype(Tensor(2.0), i32) == kFloat32);
}

// =================================================================== where, clip, operators

TEST_CASE("elementwise: where matches the naive kernel with broadcasting and promotion", "[elementwise][where][naive]") {
  std::mt19937 rng(505);
  for (DType da : kAllDTypes) {
    for (DType db : kAllDTypes) {
      for (int trial = 0; trial < 4; ++trial) {
        const Shape sc = random_shape(rng);
        const Shape sa = random_broadcast_partner(rng, sc);
        const Shape sb = random_broadcast_partner(rng, broadcast(sc, sa));
        const Tensor c = make_input(sc, kBool, rng, kAllMakes[rand_int(rng, 0, 5)]);
        const Tensor a = make_input(sa, da, rng, kAllMakes[rand_int(rng, 0, 5)]);
        const Tensor b = make_input(sb, db, rng, kAllMakes[rand_int(rng, 0, 5)]);
        INFO("cond " << str(sc) << ", a " << name(da) << " " << str(sa) << ", b " << name(db) << " " << str(sb));
        check_close(where(c, a, b), naive_where(c, a, b, promoted(da, db)));
      }
    }
  }
}

TEST_CASE("elementwise: where on hand-worked values and weak scalars", "[elementwise][where]") {
  const Tensor c = tensor({true, false, true});
  check_values(where(c, tensor({1, 2, 3}), tensor({10, 20, 30})), {3}, {1, 20, 3});
  const Tensor x = tensor({-1.f, 2.f, -3.f});
  const Tensor w = where(x > 0.0, x, 0.0);
  CHECK(w.dtype() == kFloat32);
  check_values(w, {3}, {0, 2, 0});
  CHECK(where(c, tensor({1, 2, 3}), 0).dtype() == kInt32);
  CHECK(where(c, tensor({1, 2, 3}), 0.5).dtype() == kFloat32);
  // cond [2, 1] with a [3] -> [2, 3]
  check_values(where(tensor({true, false}, {2, 1}), tensor({1.f, 2.f, 3.f}), -1.0), {2, 3}, {1, 2, 3, -1, -1, -1});
}

TEST_CASE("elementwise: where needs a bool condition", "[elementwise][where][errors]") {
  const Tensor x = tensor({1.f, 2.f});
  CHECK_THROWS_AS(where(tensor({1, 0}), x, x), DTypeError);
  CHECK_THROWS_WITH(where(tensor({1, 0}), x, x), Contains("where: the condition must be bool") && Contains("int32"));
  CHECK_THROWS_AS(where(tensor({true, false, true}), x, x), ShapeError);
  CHECK_THROWS_WITH(where(tensor({true, false, true}), x, x), Contains("where") && Contains("[3]") && Contains("[2]"));
}

TEST_CASE("elementwise: clip bounds", "[elementwise][clip]") {
  std::mt19937 rng(606);
  const Tensor x = make_input({4, 5}, kFloat64, rng, Make::Transposed);
  const auto v = values(x);
  const auto c = values(clip(x, -0.5, 0.75));
  for (std::size_t i = 0; i < v.size(); ++i) CHECK(c[i] == std::min(std::max(v[i], -0.5), 0.75));
  check_values(clip(tensor({1.f, 2.f}), 1.5, 1.5), {2}, {1.5, 1.5});
  CHECK_THROWS_AS(clip(x, 1, 0), ValueError);
  CHECK_THROWS_WITH(clip(x, 1, 0), Contains("clip") && Contains("greater"));
}

TEST_CASE("elementwise: operators are the named ops", "[elementwise][operators]") {
  std::mt19937 rng(707);
  const Tensor a = make_input({3, 4}, kFloat32, rng, Make::Transposed);
  const Tensor b = make_input({4}, kFloat32, rng, Make::Reversed);
  const auto f = kFloat32;
  check_close(a + b, naive_binary(OpId::Add, a, b, f));
  check_close(a - b, naive_binary(OpId::Sub, a, b, f));
  check_close(a * b, naive_binary(OpId::Mul, a, b, f));
  check_close(a / b, naive_binary(OpId::Div, a, b, f));
  check_close(-a, naive_unary(OpId::Neg, naive_cast(a, f)));
  check_close(a == b, naive_compare(OpId::Equal, a, b, f));
  check_close(a != b, naive_compare(OpId::NotEqual, a, b, f));
  check_close(a < b, naive_compare(OpId::Less, a, b, f));
  check_close(a <= b, naive_compare(OpId::LessEqual, a, b, f));
  check_close(a > b, naive_compare(OpId::Greater, a, b, f));
  check_close(a >= b, naive_compare(OpId::GreaterEqual, a, b, f));
  const Tensor p = a > 0.0, q = b > 0.0;
  check_close(p && q, naive_compare(OpId::LogicalAnd, p, q, kBool));
  check_close(p || q, naive_compare(OpId::LogicalOr, p, q, kBool));
  check_close(!p, naive_compare(OpId::LogicalNot, p, p, kBool));
  // scalars on either side
  const Tensor two = full({1}, 2.0, kFloat32);
  check_close(2.0 - a, naive_binary(OpId::Sub, two, a, f));
  check_close(a - 2.0, naive_binary(OpId::Sub, a, two, f));
  check_close(2.0 / a, naive_binary(OpId::Div, two, a, f));
  check_close(a * 2, naive_binary(OpId::Mul, a, two, f));
  check_close(square(a), naive_binary(OpId::Mul, a, a, f));
}

TEST_CASE("elementwise: broadcasting mismatch names the op and both shapes", "[elementwise][errors]") {
  const Tensor a = zeros({2, 3}), b = zeros({4});
  CHECK_THROWS_AS(add(a, b), ShapeError);
  CHECK_THROWS_WITH(add(a, b), Contains("add:") && Contains("[2, 3]") && Contains("[4]"));
  CHECK_THROWS_WITH(mul(b, a), Contains("mul:") && Contains("[4]") && Contains("[2, 3]"));
  CHECK_THROWS_WITH(a * b, Contains("mul:"));
  CHECK_THROWS_WITH(less(zeros({2, 3, 4}), zeros({3, 1, 5})), Contains("less:") && Contains("[2, 3, 4]") &&
                                                                   Contains("[3, 1, 5]"));
  CHECK_THROWS_WITH(logical_and(zeros({2}, kBool), zeros({3}, kBool)), Contains("logical_and:"));
  CHECK_THROWS_AS(add(zeros({0}), zeros({2})), ShapeError);  // 0 vs 2 does not broadcast
  CHECK_THROWS_AS(add(Tensor(), a), ValueError);             // an undefined handle
}

// =================================================================== in place

TEST_CASE("inplace: add_/sub_/mul_/assign with broadcasting into self", "[elementwise][inplace]") {
  Tensor x = tensor({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3});
  const auto v0 = x.version();
  const std::uint64_t id0 = x.id();
  const void* p0 = x.data_ptr();
  Tensor& r = x.add_(tensor({10.f, 20.f, 30.f}));
  CHECK(&r == &x);
  check_values(x, {2, 3}, {11, 22, 33, 14, 25, 36});
  CHECK(x.version() == v0 + 1);
  CHECK(x.data_ptr() == p0);  // in place: same memory, same handle
  CHECK(x.id() == id0);
  x.sub_(1.0);
  check_values(x, {2, 3}, {10, 21, 32, 13, 24, 35});
  CHECK(x.version() == v0 + 2);
  x.mul_(tensor({2.f, -1.f}, {2, 1}));
  check_values(x, {2, 3}, {20, 42, 64, -13, -24, -35});
  CHECK(x.version() == v0 + 3);
  x.assign(tensor({1, 2, 3}));  // int32 values converted to float32, broadcast over rows
  check_values(x, {2, 3}, {1, 2, 3, 1, 2, 3});
  CHECK(x.dtype() == kFloat32);
  CHECK(x.version() == v0 + 4);
  x.assign(0.5);
  check_values(x, {2, 3}, {0.5, 0.5, 0.5, 0.5, 0.5, 0.5});

  Tensor i = tensor({1, 2, 3});
  i.add_(tensor<std::int64_t>({5}));
  check_values(i, {3}, {6, 7, 8});
  i.mul_(2);
  check_values(i, {3}, {12, 14, 16});
  CHECK(i.dtype() == kInt32);
  Tensor d = tensor({1.0, 2.0});
  d.add_(tensor({0.5f, 0.25f}));  // float32 into float64
  check_values(d, {2}, {1.5, 2.25});
  Tensor s = scalar(3.f);
  s.add_(scalar(1.f));
  CHECK(s.item<float>() == 4.f);
  Tensor e = zeros({0, 3});
  e.add_(ones({3}));  // nothing to write
  CHECK(e.size() == 0);
}

TEST_CASE("inplace: addcmul_ and addcdiv_ update in one pass, as PyTorch's", "[elementwise][inplace]") {
  Tensor x = tensor({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3});
  const auto v0 = x.version();
  const void* p0 = x.data_ptr();
  Tensor& r = x.addcmul_(tensor({1.f, 2.f, 3.f}), tensor({2.f, -1.f}, {2, 1}), 0.5);  // += 0.5 * a * b
  CHECK(&r == &x);
  CHECK(x.data_ptr() == p0);
  CHECK(x.version() == v0 + 1);
  check_values(x, {2, 3}, {1 + 1, 2 + 2, 3 + 3, 4 - 0.5, 5 - 1, 6 - 1.5});
  x.addcdiv_(tensor({3.f, 6.f, 9.f}), 3.0, -2.0);  // -= 2 * a / 3; a weak scalar b
  check_values(x, {2, 3}, {2 - 2, 4 - 4, 6 - 6, 3.5 - 2, 4 - 4, 4.5 - 6});
  CHECK(x.version() == v0 + 2);
  x.addcmul_(ones({3}), ones({3}));  // value defaults to 1
  check_values(x, {2, 3}, {1, 1, 1, 2.5, 1, -0.5});
  // float64, a strided self, the operands converted from float32
  Tensor d = zeros({3, 4}, kFloat64);
  Tensor col = d(all, 1);
  col.addcdiv_(tensor({1.f, 2.f, 4.f}), tensor({4.f}), 1.0);
  check_values(d(all, 1), {3}, {0.25, 0.5, 1.0});
  CHECK(values(sum(d)) == std::vector<double>{1.75});  // the other columns untouched
  // an operand sharing self's memory reads the values from before the write
  Tensor y = tensor({1.0, 2.0, 3.0});
  y.addcmul_(y, y(Slice(none, none, -1)), 2.0);  // y + 2 * y * reversed(y)
  check_values(y, {3}, {1 + 2 * 3, 2 + 2 * 4, 3 + 2 * 3});
  // the same values as the separate ops, to the last bit, where no rounding can differ
  Tensor z = tensor({0.5f, -1.25f, 8.f});
  z.addcmul_(tensor({2.f, 4.f, 0.5f}), tensor({0.25f, 0.5f, 2.f}), 4.0);
  check_values(z, {3}, {2.5, 6.75, 12});
  Tensor e = zeros({0, 3});
  e.addcdiv_(ones({3}), ones({3}));  // nothing to write
  CHECK(e.size() == 0);
  // a tape never sees them (as add_); into a tensor it records, it refuses them
  GradientTape tape;
  Tensor w = tensor({1.0, 2.0});
  tape.watch(w);
  Tensor u = w * 1.0;
  CHECK_THROWS_AS(u.addcmul_(w, w), ValueError);
  Variable v(tensor({1.0, 2.0}), "v");  // a Variable's update is allowed, and not recorded
  v.addcmul_(w, w);
  check_values(v, {2}, {2, 6});
  CHECK(tape.recorded_ops().size() == 1);
}

TEST_CASE("inplace: addcmul_ and addcdiv_ refuse integer targets, shapes that do not fit and constants",
          "[elementwise][inplace][errors]") {
  Tensor i = tensor({1, 2, 3});
  CHECK_THROWS_AS(i.addcmul_(i, i), DTypeError);
  CHECK_THROWS_WITH(i.addcmul_(i, i), Contains("addcmul_") && Contains("int32") && Contains("[3]"));
  Tensor x = zeros({2, 3});
  CHECK_THROWS_AS(x.addcdiv_(ones({3}), ones({4})), ShapeError);
  CHECK_THROWS_WITH(x.addcdiv_(ones({3}), ones({4})), Contains("addcdiv_") && Contains("[4]") && Contains("[2, 3]"));
  CHECK_THROWS_AS(x.addcmul_(ones({2, 3, 1}), ones({3})), ShapeError);  // would grow self
  Tensor c(2.0);
  CHECK_THROWS_AS(c.addcmul_(ones({}), ones({})), ValueError);
  CHECK_THROWS_AS(Tensor().addcmul_(x, x), ValueError);
  CHECK(values(x) == std::vector<double>(6, 0.0));  // nothing was written by the failed calls
}

TEST_CASE("inplace: random shapes, layouts and broadcast sources vs the naive kernels", "[elementwise][inplace][naive]") {
  std::mt19937 rng(808);
  const OpId ops[] = {OpId::Add, OpId::Sub, OpId::Mul};
  for (DType dt : kNumericDTypes) {
    for (int trial = 0; trial < 24; ++trial) {
      const Shape s = random_shape(rng);
      Shape so = random_broadcast_partner(rng, s);
      // the source must broadcast to self's shape: drop leading axes it adds, shrink others to 1
      while (so.size() > s.size()) so.erase(so.begin());
      for (std::size_t i = 0; i < so.size(); ++i)
        if (so[i] != s[i + s.size() - so.size()]) so[i] = 1;
      const Make mx = kAllMakes[rand_int(rng, 0, 5)];
      Tensor x = make_input(s, dt, rng, mx == Make::Broadcast ? Make::Strided : mx);
      const Tensor o = make_input(so, dt, rng, kAllMakes[rand_int(rng, 0, 5)]);
      const OpId op = ops[trial % 3];
      INFO(op_name(op) << "_ " << name(dt) << " self " << str(s) << " (" << make_name(mx) << ") other " << str(so));
      const Tensor before = naive_cast(x, dt);
      const Tensor expected = naive_binary(op, before, o, dt);
      if (op == OpId::Add) x.add_(o);
      if (op == OpId::Sub) x.sub_(o);
      if (op == OpId::Mul) x.mul_(o);
      check_close(x, expected);
      // assign
      Tensor y = make_input(s, dt, rng, Make::Reversed);
      y.assign(o);
      check_close(y, naive_cast(o.broadcast_to(s), dt));
    }
  }
}

TEST_CASE("inplace: writing through a view modifies the base", "[elementwise][inplace][views]") {
  Tensor base = zeros({4, 5});
  const auto v0 = base.version();
  Tensor v = base(Slice(1, 3), Slice(none, none, 2));  // rows 1, 2; columns 0, 2, 4
  REQUIRE(v.shape() == Shape{2, 3});
  CHECK(v.storage().get() == base.storage().get());
  v.add_(1.0);
  check_values(base, {4, 5}, {0, 0, 0, 0, 0,  //
                              1, 0, 1, 0, 1,  //
                              1, 0, 1, 0, 1,  //
                              0, 0, 0, 0, 0});
  CHECK(base.version() == v0 + 1);
  CHECK(v.version() == base.version());
  v.assign(tensor({7.f, 8.f, 9.f}));
  check_values(base, {4, 5}, {0, 0, 0, 0, 0,  //
                              7, 0, 8, 0, 9,  //
                              7, 0, 8, 0, 9,  //
                              0, 0, 0, 0, 0});
  CHECK(base.version() == v0 + 2);
  // a reversed column, through a negative step
  base(all, -1)(Slice(none, none, -1)).assign(tensor({1.f, 2.f, 3.f, 4.f}));
  check_values(base(all, 4), {4}, {4, 3, 2, 1});
  // a transposed view
  Tensor m = zeros({2, 3}, kInt64);
  m.transpose().mul_(3).add_(tensor<std::int64_t>({1, 2}));  // [3, 2] += [2]
  check_values(m, {2, 3}, {1, 1, 1, 2, 2, 2});
  // a broadcast view cannot be a target of a reduction-like write, but can be read
  Tensor t = zeros({3});
  t.add_(tensor({1.f}).broadcast_to({3}));
  check_values(t, {3}, {1, 1, 1});
}

TEST_CASE("inplace: a source overlapping self reads the values from before the write", "[elementwise][inplace][overlap]") {
  std::mt19937 rng(909);
  for (Make how : {Make::Contiguous, Make::Strided, Make::Reversed, Make::Transposed}) {
    INFO(make_name(how));
    Tensor x = make_input({5, 5}, kFloat32, rng, how);
    const Tensor before = naive_cast(x, kFloat32);
    const Tensor expected = naive_binary(OpId::Add, before, before.transpose(), kFloat32);
    x.add_(x.transpose());
    check_close(x, expected);
    // x * x
    Tensor y = make_input({4, 6}, kFloat64, rng, how);
    const Tensor yb = naive_cast(y, kFloat64);
    y.mul_(y);
    check_close(y, naive_binary(OpId::Mul, yb, yb, kFloat64));
    // x -= x[::-1]
    Tensor z = make_input({7}, kInt32, rng, how, -9, 9);
    const Tensor zb = naive_cast(z, kInt32);
    z.sub_(z(Slice(none, none, -1)));
    check_close(z, naive_binary(OpId::Sub, zb, zb(Slice(none, none, -1)), kInt32));
  }
  // a[1:] = a[:-1] shifts right (NumPy copies overlapping sources first)
  Tensor a = tensor({0.f, 1.f, 2.f, 3.f, 4.f});
  a(Slice(1, none)).assign(a(Slice(0, -1)));
  check_values(a, {5}, {0, 0, 1, 2, 3});
  Tensor b = tensor({0.f, 1.f, 2.f, 3.f, 4.f});
  b(Slice(0, -1)).assign(b(Slice(1, none)));
  check_values(b, {5}, {1, 2, 3, 4, 4});
  Tensor c = arange(0.0, 6.0, 1.0).reshape({2, 3});
  c.add_(c(Slice(none, none, -1)));  // rows swapped
  check_values(c, {2, 3}, {3, 5, 7, 3, 5, 7});
}

TEST_CASE("inplace: writing into a broadcast (stride-0) view is refused", "[elementwise][inplace][errors]") {
  // Several elements of the target share one memory location: NumPy raises ("output array is
  // read-only"), PyTorch raises ("more than one element of the written-to tensor refers to a
  // single memory location"). Adding twice into the same element is never what was meant.
  Tensor x = zeros({3});
  Tensor b = x.broadcast_to({2, 3});
  CHECK_THROWS_AS(b.add_(1.0), Error);
  CHECK_THROWS_AS(b.mul_(2.0), Error);
  check_values(x, {3}, {0, 0, 0});
}

TEST_CASE("inplace: errors", "[elementwise][inplace][errors]") {
  Tensor x = zeros({3});
  CHECK_THROWS_AS(x.add_(zeros({2, 3})), ShapeError);
  CHECK_THROWS_WITH(x.add_(zeros({2, 3})), Contains("add_: cannot write a tensor of shape [2, 3] into one of shape [3]"));
  CHECK_THROWS_WITH(x.sub_(zeros({4})), Contains("sub_") && Contains("[4]") && Contains("[3]"));
  CHECK_THROWS_WITH(x.mul_(zeros({2})), Contains("mul_"));
  CHECK_THROWS_WITH(x.assign(zeros({2, 1})), Contains("assign") && Contains("[2, 1]"));
  Tensor i = zeros({3}, kInt32);
  CHECK_THROWS_AS(i.add_(ones({3})), DTypeError);
  CHECK_THROWS_WITH(i.add_(ones({3})), Contains("add_") && Contains("float32") && Contains("int32"));
  Tensor b = zeros({3}, kBool);
  CHECK_THROWS_AS(b.add_(tensor({true, true, false})), DTypeError);
  const auto v = x.version();
  CHECK_THROWS(x.add_(zeros({2, 3})));
  CHECK(x.version() == v);  // a failed write changes nothing
  Tensor w = Tensor(2.0);
  CHECK_THROWS_AS(w.add_(1.0), ValueError);  // a weak C++ scalar is a constant
}

TEST_CASE("inplace: a float scalar into an integer tensor raises (NumPy same_kind, PyTorch)",
          "[elementwise][inplace][errors][promotion]") {
  // NumPy: a = np.arange(3, dtype=np.int32); a += 1.5 -> UFuncTypeError (same_kind casting);
  // PyTorch: torch.arange(3, dtype=torch.int32).add_(1.5) -> "result type Float can't be cast".
  // Silently truncating 1.5 to 1 (or 0.5 to 0 in mul_) would be wrong.
  Tensor i = tensor({1, 2, 3});
  CHECK_THROWS_AS(i.add_(1.5), DTypeError);
  CHECK_THROWS_AS(i.mul_(0.5), DTypeError);
  check_values(i, {3}, {1, 2, 3});
  // integral weak scalars are fine
  i.add_(1);
  check_values(i, {3}, {2, 3, 4});
}

// =================================================================== integer overflow, weak integers, saturation

TEST_CASE("elementwise: integer add, sub, mul, neg and abs wrap around as NumPy's (no UB)",
          "[elementwise][integer][overflow]") {
  constexpr std::int32_t kMax32 = std::numeric_limits<std::int32_t>::max();
  constexpr std::int32_t kMin32 = std::numeric_limits<std::int32_t>::min();
  constexpr std::int64_t kMax64 = std::numeric_limits<std::int64_t>::max();
  constexpr std::int64_t kMin64 = std::numeric_limits<std::int64_t>::min();
  // np.array([2**31 - 1, 1], np.int32) + itself -> [-2, 2]
  const Tensor a = tensor<std::int32_t>({kMax32, 1}, {2});
  CHECK((a + a).to_vector<std::int32_t>() == std::vector<std::int32_t>{-2, 2});
  // [2**31 - 1, 1] - [-1, 2] -> [-2**31, -1]
  CHECK((a - tensor<std::int32_t>({-1, 2}, {2})).to_vector<std::int32_t>() == std::vector<std::int32_t>{kMin32, -1});
  // -(-2**31) and abs(-2**31) stay -2**31 (NumPy); abs of the rest as usual
  const Tensor m = tensor<std::int32_t>({kMin32, -5, 7}, {3});
  CHECK((-m).to_vector<std::int32_t>() == std::vector<std::int32_t>{kMin32, 5, -7});
  CHECK(abs(m).to_vector<std::int32_t>() == std::vector<std::int32_t>{kMin32, 5, 7});
  // int64: (2**63 - 1)**2 = 1 (mod 2**64), 3 * 3 = 9; -(-2**63) = -2**63
  const Tensor b = tensor<std::int64_t>({kMax64, 3}, {2});
  CHECK((b * b).to_vector<std::int64_t>() == std::vector<std::int64_t>{1, 9});
  CHECK((-tensor<std::int64_t>({kMin64}, {1})).to_vector<std::int64_t>() == std::vector<std::int64_t>{kMin64});
  CHECK((b + 1).to_vector<std::int64_t>() == std::vector<std::int64_t>{kMin64, 4});
  // broadcast and strided paths wrap as well: [[2**31 - 1], [1]] + [1, 2**31 - 1]
  const Tensor col = tensor<std::int32_t>({kMax32, 1}, {2, 1});
  CHECK((col + a(Slice(none, none, -1))).to_vector<std::int32_t>() ==
        std::vector<std::int32_t>{kMin32, -2, 2, kMin32});
  // in place too
  Tensor c = tensor<std::int32_t>({kMax32}, {1});
  c.add_(tensor<std::int32_t>({kMax32}, {1}));
  CHECK(c.to_vector<std::int32_t>() == std::vector<std::int32_t>{-2});
}

TEST_CASE("elementwise: weak C++ integers keep their exact value (NumPy 2's Python ints)",
          "[elementwise][promotion][weak][overflow]") {
  // int64 above 2^53: exact, not through a double; np.array([0]) + (2**53 + 1) -> 9007199254740993
  const Tensor z = tensor<std::int64_t>({0}, {1});
  const std::int64_t big = (std::int64_t(1) << 53) + 1;
  CHECK((z + big).to_vector<std::int64_t>() == std::vector<std::int64_t>{9007199254740993});
  CHECK((big - z).to_vector<std::int64_t>() == std::vector<std::int64_t>{9007199254740993});
  CHECK(Tensor(big).item<std::int64_t>() == 9007199254740993);
  CHECK(Tensor(std::numeric_limits<std::int64_t>::max()).item<std::int64_t>() ==
        std::numeric_limits<std::int64_t>::max());
  CHECK((z == big).to_vector<bool>() == std::vector<bool>{false});
  CHECK((tensor<std::int64_t>({big}, {1}) == big).to_vector<bool>() == std::vector<bool>{true});
  // an unsigned value above INT64_MAX is refused
  CHECK_THROWS_AS(Tensor(std::uint64_t(18446744073709551615ull)), ValueError);
  CHECK_THROWS_WITH(Tensor(std::uint64_t(18446744073709551615ull)), Contains("18446744073709551615") &&
                                                                        Contains("int64"));
  CHECK(Tensor(std::uint64_t(7)).item<std::int64_t>() == 7);

  // comparisons of int32 with an integer int32 cannot hold give the exact answer (NumPy 2)
  const Tensor five = tensor<std::int32_t>({5}, {1});
  CHECK((five < std::int64_t(3000000000)).to_vector<bool>() == std::vector<bool>{true});
  CHECK((five > std::int64_t(-3000000000)).to_vector<bool>() == std::vector<bool>{true});
  CHECK((std::int64_t(3000000000) <= five).to_vector<bool>() == std::vector<bool>{false});
  // 3000000000 - 2^32 = -1294967296: equal only after a wrap, so not equal
  const Tensor w = tensor<std::int32_t>({-1294967296}, {1});
  CHECK((w == std::int64_t(3000000000)).to_vector<bool>() == std::vector<bool>{false});
  CHECK((w != std::int64_t(3000000000)).to_vector<bool>() == std::vector<bool>{true});
  CHECK((five < std::int64_t(3000000000)).dtype() == kBool);
  CHECK((five == 5).to_vector<bool>() == std::vector<bool>{true});

  // arithmetic with one raises (NumPy 2: OverflowError), naming the op, the value and the dtype
  CHECK_THROWS_AS(five + std::int64_t(1) * (std::int64_t(1) << 40), ValueError);
  CHECK_THROWS_WITH(five + (std::int64_t(1) << 40),
                    Contains("add: the integer 1099511627776 is out of range for int32"));
  CHECK_THROWS_WITH(std::int64_t(-3000000000) * five, Contains("mul:") && Contains("-3000000000"));
  CHECK_THROWS_WITH(maximum(five, std::int64_t(1) << 31), Contains("maximum:") && Contains("2147483648"));
  CHECK_THROWS_WITH(where(tensor({true}), five, std::int64_t(1) << 31), Contains("where:") && Contains("int32"));
  Tensor t = tensor<std::int32_t>({1}, {1});
  CHECK_THROWS_WITH(t.add_(std::int64_t(1) << 40), Contains("add_:") && Contains("1099511627776"));
  CHECK(t.to_vector<std::int32_t>() == std::vector<std::int32_t>{1});
  // the limits themselves fit; an int64 tensor takes any of them; float tensors convert
  CHECK((five + std::int64_t(std::numeric_limits<std::int32_t>::max() - 5)).to_vector<std::int32_t>() ==
        std::vector<std::int32_t>{std::numeric_limits<std::int32_t>::max()});
  CHECK((tensor<std::int64_t>({1}, {1}) + (std::int64_t(1) << 40)).to_vector<std::int64_t>() ==
        std::vector<std::int64_t>{1099511627777});
  check_values(tensor({1.f}) + (std::int64_t(1) << 40), {1}, {1099511627776.0});
}

TEST_CASE("elementwise: clip of an integer tensor saturates bounds outside the dtype", "[elementwise][clip][integer]") {
  // np.clip(np.array([-5, 5, 7], np.int32), 0, 1e10) -> [0, 5, 7]
  const Tensor i = tensor<std::int32_t>({-5, 5, 7}, {3});
  CHECK(clip(i, 0, 1e10).to_vector<std::int32_t>() == std::vector<std::int32_t>{0, 5, 7});
  CHECK(clip(i, -1e20, 1e20).to_vector<std::int32_t>() == std::vector<std::int32_t>{-5, 5, 7});
  CHECK(clip(i, -1e20, 6).to_vector<std::int32_t>() == std::vector<std::int32_t>{-5, 5, 6});
  CHECK(clip(i, -INFINITY, INFINITY).to_vector<std::int32_t>() == std::vector<std::int32_t>{-5, 5, 7});
  CHECK(clip(tensor<std::int64_t>({3, -3}, {2}), 0, 1e19).to_vector<std::int64_t>() ==
        std::vector<std::int64_t>{3, 0});
  CHECK(clip_mask(i, -1e10, 1e10).to_vector<std::int32_t>() == std::vector<std::int32_t>{1, 1, 1});
  CHECK(clip_mask(i, 0, 1e10).to_vector<std::int32_t>() == std::vector<std::int32_t>{0, 1, 1});
}

TEST_CASE("elementwise: abs(-0.0) is +0 (NumPy), NaN stays NaN", "[elementwise][unary]") {
  for (DType dt : kFloatDTypes) {
    INFO(dtype_name(dt));
    const auto v = abs(tensor({-0.0, 0.0, -2.5, std::nan("")}).astype(dt)).to_vector<double>();
    CHECK(v[0] == 0.0);
    CHECK_FALSE(std::signbit(v[0]));
    CHECK_FALSE(std::signbit(v[1]));
    CHECK(v[2] == 2.5);
    CHECK(std::isnan(v[3]));
  }
  CHECK(to_string(abs(tensor({-0.f}))).find("-0") == std::string::npos);
}

TEST_CASE("elementwise: floor, ceil and round are NumPy's (half to even; NaN, inf and -0 pass through)",
          "[elementwise][unary]") {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  for (DType dt : kFloatDTypes) {
    INFO(name(dt));
    const Tensor x = from_values({0.5, 1.5, 2.5, -0.5, -1.5, -2.5, -2.7, 2.7, -0.2, 3.0, nan, inf, -inf}, {13}, dt);
    check_values(round(x), {13}, {0, 2, 2, -0.0, -2, -2, -3, 3, -0.0, 3, nan, inf, -inf});
    check_values(floor(x), {13}, {0, 1, 2, -1, -2, -3, -3, 2, -1, 3, nan, inf, -inf});
    check_values(ceil(x), {13}, {1, 2, 3, -0.0, -1, -2, -2, 3, -0.0, 3, nan, inf, -inf});
    CHECK(round(x).dtype() == dt);
    CHECK(std::signbit(values(round(x))[3]));  // round(-0.5) is -0, as NumPy
    CHECK(std::signbit(values(ceil(x))[8]));   // ceil(-0.2) is -0
    CHECK(std::signbit(values(floor(from_values({-0.0}, {1}, dt)))[0]));
  }
  // float32 values above 2^23 are whole already; 0.49999997 does not round up
  check_values(round(tensor({8388609.0f, 0.49999997f, -1e30f})), {3}, {8388609.0, 0, static_cast<double>(-1e30f)}, {0, 0});
  // integers come back unchanged, in their dtype
  for (DType dt : {kInt32, kInt64}) {
    const Tensor i = from_values({-3, 0, 7}, {3}, dt);
    for (const Tensor& r : {floor(i), ceil(i), round(i)}) {
      CHECK(r.dtype() == dt);
      check_values(r, {3}, {-3, 0, 7}, {0, 0});
    }
  }
}

TEST_CASE("elementwise: sin and cos hand values; integers give float32", "[elementwise][unary]") {
  const double pi = 3.141592653589793, inf = std::numeric_limits<double>::infinity();
  const Tensor x = tensor({0.0, pi / 6, pi / 2, pi, -pi / 3}, {5}, kFloat64);
  check_values(sin(x), {5}, {0, 0.5, 1, 0, -std::sqrt(3.0) / 2}, {1e-15, 1e-15});
  check_values(cos(x), {5}, {1, std::sqrt(3.0) / 2, 0, -1, 0.5}, {1e-15, 1e-15});
  const Tensor i = sin(tensor<std::int32_t>({0, 1, 2}, {3}));
  CHECK(i.dtype() == kFloat32);
  check_values(i, {3}, {0, std::sin(1.0), std::sin(2.0)});
  CHECK(std::isnan(values(cos(tensor({inf, -inf})))[0]));
  CHECK(std::isnan(values(sin(tensor({std::nan("")})))[0]));
}

// =================================================================== trigonometric, hyperbolic, atan2,
// floor division and the math composites against NumPy and TensorFlow (test/golden/math_golden.py)

namespace {

namespace mg = math_golden;

template <std::size_t N>
Tensor golden_tensor(const double (&v)[N], const Shape& shape, DType dtype = kFloat64) {
  return tensor(std::vector<double>(v, v + N), shape).astype(dtype);
}
template <std::size_t N>
Tensor golden_tensor(const std::int64_t (&v)[N], const Shape& shape, DType dtype) {
  return tensor(std::vector<std::int64_t>(v, v + N), shape).astype(dtype);
}

// got against NumPy's values to rtol: NaN where NumPy has NaN, infinities and zeros (with their
// sign) exactly.
template <std::size_t N>
void check_golden(const Tensor& got, const double (&want)[N], double rtol) {
  REQUIRE(got.size() == static_cast<std::int64_t>(N));
  const std::vector<double> v = values(got);
  for (std::size_t i = 0; i < N; ++i) {
    INFO("element " << i << ": got " << v[i] << ", NumPy " << want[i]);
    if (std::isnan(want[i])) {
      CHECK(std::isnan(v[i]));
    } else if (std::isinf(want[i]) || want[i] == 0) {
      CHECK(v[i] == want[i]);
      CHECK(std::signbit(v[i]) == std::signbit(want[i]));
    } else {
      CHECK(std::abs(v[i] - want[i]) <= rtol * std::abs(want[i]));
    }
  }
}

template <std::size_t N>
void check_golden_ints(const Tensor& got, const std::int64_t (&want)[N], DType dtype) {
  CHECK(got.dtype() == dtype);
  CHECK(got.astype(kInt64).to_vector<std::int64_t>() == std::vector<std::int64_t>(want, want + N));
}

using UnaryFront = Tensor (*)(const Tensor&);
struct GoldenUnary {
  const char* name;
  UnaryFront f;
  const double* want64;
  const double* want32;
  const double* grad;
};
const GoldenUnary kGoldenUnary[] = {
    {"tan", tan, mg::kTan64, mg::kTan32, mg::kGradTan},
    {"asin", asin, mg::kAsin64, mg::kAsin32, mg::kGradAsin},
    {"acos", acos, mg::kAcos64, mg::kAcos32, mg::kGradAcos},
    {"atan", atan, mg::kAtan64, mg::kAtan32, mg::kGradAtan},
    {"sinh", sinh, mg::kSinh64, mg::kSinh32, mg::kGradSinh},
    {"cosh", cosh, mg::kCosh64, mg::kCosh32, mg::kGradCosh},
    {"asinh", asinh, mg::kAsinh64, mg::kAsinh32, mg::kGradAsinh},
    {"acosh", acosh, mg::kAcosh64, mg::kAcosh32, mg::kGradAcosh},
    {"atanh", atanh, mg::kAtanh64, mg::kAtanh32, mg::kGradAtanh},
};

}  // namespace

TEST_CASE("math: trigonometric and hyperbolic functions against NumPy, special values included",
          "[elementwise][unary][golden]") {
  constexpr std::size_t n = sizeof(mg::kX) / sizeof(mg::kX[0]);
  const Shape shape = {static_cast<std::int64_t>(n)};
  for (const GoldenUnary& u : kGoldenUnary) {
    INFO(u.name);
    double want64[n], want32[n];
    std::copy(u.want64, u.want64 + n, want64);
    std::copy(u.want32, u.want32 + n, want32);
    // the host's libm against NumPy's (SIMD) functions: a few ulps apart at most
    const Tensor y64 = u.f(golden_tensor(mg::kX, shape));
    CHECK(y64.dtype() == kFloat64);
    check_golden(y64, want64, 1e-14);
    const Tensor y32 = u.f(golden_tensor(mg::kX, shape, kFloat32));
    CHECK(y32.dtype() == kFloat32);
    check_golden(y32, want32, 1e-6);
    // integers compute in float32, as sin
    const Tensor yi = u.f(tensor<std::int32_t>({1, 2}, {2}));
    CHECK(yi.dtype() == kFloat32);
    check_close(yi, u.f(tensor({1.f, 2.f})));
  }
}

TEST_CASE("math: the new unary ops' gradients are TensorFlow's", "[elementwise][unary][golden][gradient]") {
  for (const GoldenUnary& u : kGoldenUnary) {
    INFO(u.name);
    const Tensor x = std::string(u.name) == "acosh" ? golden_tensor(mg::kGxAcosh, {4}) : golden_tensor(mg::kGx, {4});
    GradientTape tape;
    tape.watch(x);
    const Tensor y = u.f(x);
    const Tensor g = tape.gradient(y, {x})[0];
    double want[4];
    std::copy(u.grad, u.grad + 4, want);
    check_golden(g, want, 1e-13);
  }
}

TEST_CASE("math: atan2(y, x) against NumPy: signed zeros, infinities, NaN, quadrants", "[elementwise][binary][golden]") {
  const Tensor s = golden_tensor(mg::kS, {7});
  // y [7, 1] with x [7]: every pair
  check_golden(atan2(s.reshape({7, 1}), s), mg::kAtan2, 0);
  check_golden(atan2(s.reshape({7, 1}).astype(kFloat32), s.astype(kFloat32)), mg::kAtan2, 1e-7);
  check_golden(atan2(golden_tensor(mg::kAtan2Y, {4}), golden_tensor(mg::kAtan2X, {4})), mg::kAtan2YX, 1e-15);
  // y first: atan2(1, 0) is pi / 2, atan2(0, 1) is 0; integers give float32
  const Tensor q = atan2(tensor<std::int32_t>({1, 0, -1}, {3}), tensor<std::int32_t>({0, 1, 0}, {3}));
  CHECK(q.dtype() == kFloat32);
  check_values(q, {3}, {M_PI / 2, 0, -M_PI / 2});
  CHECK(atan2(tensor({1.0}), 1).dtype() == kFloat64);  // a C++ number does not widen
  CHECK_THROWS_WITH(atan2(tensor({true}), tensor({false})), Contains("atan2: not defined for two bool tensors"));
  CHECK_THROWS_WITH(atan2(zeros({2, 3}), zeros({4})), Contains("atan2") && Contains("[2, 3]") && Contains("[4]"));
  const Tensor a = tensor({0.3, -2.0}, {2}), b = tensor({1.5, -0.4}, {2});
  GradientTape tape;
  tape.watch(a);
  tape.watch(b);
  const auto g = tape.gradient(atan2(a, b), {a, b});
  // d/dy = x / (x^2 + y^2), d/dx = -y / (x^2 + y^2)
  check_values(g[0], {2}, {1.5 / (1.5 * 1.5 + 0.09), -0.4 / (0.16 + 4.0)});
  check_values(g[1], {2}, {-0.3 / (1.5 * 1.5 + 0.09), 2.0 / (0.16 + 4.0)});
}

TEST_CASE("math: floor_divide and mod sign tables (int32, int64, float32, float64) against NumPy",
          "[elementwise][binary][golden][integer]") {
  // hand-worked: Python's // and %
  const Tensor a = tensor<std::int32_t>({-7, 7, -7, 7}, {4}), b = tensor<std::int32_t>({2, 2, -2, -2}, {4});
  CHECK(floor_divide(a, b).to_vector<std::int32_t>() == std::vector<std::int32_t>{-4, 3, 3, -4});
  CHECK(mod(a, b).to_vector<std::int32_t>() == std::vector<std::int32_t>{1, 1, -1, -1});
  CHECK((a % b).to_vector<std::int32_t>() == std::vector<std::int32_t>{1, 1, -1, -1});
  CHECK((a % 3).to_vector<std::int32_t>() == std::vector<std::int32_t>{2, 1, 2, 1});  // a C++ int stays int32
  CHECK(floordiv(a, b).to_vector<std::int32_t>() == floor_divide(a, b).to_vector<std::int32_t>());
  CHECK(floormod(a, b).to_vector<std::int32_t>() == mod(a, b).to_vector<std::int32_t>());
  check_values(floor_divide(tensor({-7.0, 7.5}), 2.0), {2}, {-4, 3});
  check_values(tensor({-7.0, 7.5}) % -2.0, {2}, {-1, -0.5});
  // [9, 1] with [8]: the extremes, division by 0 (0, as div's integer kernel) and by -1
  const Tensor ib32 = golden_tensor(mg::kIb32, {8}, kInt32);
  const Tensor ia32 = golden_tensor(mg::kIa32, {9, 1}, kInt32);
  check_golden_ints(floor_divide(ia32, ib32), mg::kFloorDivI32, kInt32);
  check_golden_ints(mod(ia32, ib32), mg::kFloorModI32, kInt32);
  const Tensor ia64 = golden_tensor(mg::kIa64, {9, 1}, kInt64);
  check_golden_ints(floor_divide(ia64, ib32.astype(kInt64)), mg::kFloorDivI64, kInt64);
  check_golden_ints(mod(ia64, ib32.astype(kInt64)), mg::kFloorModI64, kInt64);
  // int32 with int64 promotes as mul
  CHECK(mod(ia32, ib32.astype(kInt64)).dtype() == kInt64);
  // floats [11, 1] with [9]: halves, zeros, infinities, NaN, 0.1 (1 // 0.1 is 9, as NumPy)
  const Tensor fa = golden_tensor(mg::kFa, {11, 1}), fb = golden_tensor(mg::kFb, {9});
  check_golden(floor_divide(fa, fb), mg::kFloorDiv, 0);
  check_golden(mod(fa, fb), mg::kFloorMod, 0);
  check_golden(floor_divide(fa.astype(kFloat32), fb.astype(kFloat32)), mg::kFloorDiv32, 0);
  check_golden(mod(fa.astype(kFloat32), fb.astype(kFloat32)), mg::kFloorMod32, 0);
  CHECK_THROWS_WITH(mod(tensor({true}), tensor({true})), Contains("mod: not defined for two bool tensors"));
  CHECK_THROWS_WITH(floor_divide(zeros({2, 3}), zeros({2})),
                    Contains("floor_divide") && Contains("[2, 3]") && Contains("[2]"));
}

TEST_CASE("math: floor_divide's and mod's gradients are TensorFlow's", "[elementwise][binary][golden][gradient]") {
  const Tensor a = golden_tensor(mg::kGa, {3, 1}), b = golden_tensor(mg::kGb, {3});
  struct Want {
    const char* name;
    Tensor (*f)(const Tensor&, const Tensor&);
    const double* da;
    const double* db;
  };
  const Want wants[] = {{"atan2", atan2, mg::kGradAtan2A, mg::kGradAtan2B},
                        {"mod", mod, mg::kGradFloorModA, mg::kGradFloorModB},
                        {"floor_divide", floor_divide, mg::kGradFloorDivA, mg::kGradFloorDivB}};
  for (const Want& w : wants) {
    INFO(w.name);
    GradientTape tape;
    tape.watch(a);
    tape.watch(b);
    const auto g = tape.gradient(w.f(a, b), {a, b});
    double da[3], db[3];
    std::copy(w.da, w.da + 3, da);
    std::copy(w.db, w.db + 3, db);
    check_golden(g[0], da, 1e-14);
    check_golden(g[1], db, 1e-14);
  }
}

TEST_CASE("math: reciprocal, rsqrt, log2, log10, exp2, squared_difference, logical_xor against NumPy",
          "[elementwise][golden][composite]") {
  const Tensor p = golden_tensor(mg::kP, {12});
  check_golden(reciprocal(p), mg::kReciprocal, 0);  // one division: NumPy's exactly
  check_golden(rsqrt(p), mg::kRsqrt, 2.3e-16);
  check_golden(log2(p), mg::kLog2, 4.5e-16);  // within 2 ulps
  check_golden(log10(p), mg::kLog10, 4.5e-16);
  check_golden(log2(p.astype(kFloat32)), mg::kLog2, 2.4e-7);
  check_golden(log10(p.astype(kFloat32)), mg::kLog10, 2.4e-7);
  const Tensor e = golden_tensor(mg::kE, {12});
  check_golden(exp2(e), mg::kExp2, 0);  // exact at whole numbers, subnormals included
  check_values(exp2(tensor<std::int32_t>({3, -1}, {2})), {2}, {8, 0.5});
  CHECK(exp2(tensor<std::int32_t>({3}, {1})).dtype() == kFloat32);
  CHECK(exp2(tensor({3.f})).dtype() == kFloat32);
  check_values(reciprocal(tensor<std::int32_t>({2, -4}, {2})), {2}, {0.5, -0.25});
  CHECK(reciprocal(tensor<std::int32_t>({2}, {1})).dtype() == kFloat32);
  CHECK(rsqrt(tensor({4.f})).item<float>() == 0.5f);
  check_golden(squared_difference(golden_tensor(mg::kSqA, {3}), golden_tensor(mg::kSqB, {2, 1})),
               mg::kSquaredDifference, 0);
  CHECK(squared_difference(tensor<std::int32_t>({7}, {1}), tensor<std::int32_t>({-2}, {1})).to_vector<std::int32_t>() ==
        std::vector<std::int32_t>{81});
  const Tensor x = logical_xor(golden_tensor(mg::kXorA, {5}), golden_tensor(mg::kXorB, {5}));
  CHECK(x.dtype() == kBool);
  check_golden_ints(x.astype(kInt64), mg::kXor, kInt64);
  CHECK(logical_xor(tensor({true, false}), true).to_vector<bool>() == std::vector<bool>{false, true});
}
