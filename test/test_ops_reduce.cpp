// Reductions: sum/max/min/prod against the naive kernel over every subset of axes of rank-3
// tensors (keepdims, negative and unordered axes, every layout and dtype); mean, var and
// logsumexp against double-precision loops; argmax/argmin; argsort/sort/top_k (the naive kernel,
// NumPy's and TensorFlow's goldens); softmax/log_softmax (stable);
// sum_to; rank 0, zero-size axes and the error messages; prod against NumPy's and TensorFlow's
// values and TensorFlow's gradient (golden/prod_golden.hpp).
#include "golden/prod_golden.hpp"
#include "golden/sort_golden.hpp"
#include "test_helpers.hpp"

using namespace tapeflow;
using namespace th;
using Catch::Contains;

namespace {

Tensor front_reduce(OpId op, const Tensor& x, const std::vector<std::int64_t>& axes, bool keepdims) {
  switch (op) {
    case OpId::Sum: return sum(x, axes, keepdims);
    case OpId::Max: return max(x, axes, keepdims);
    case OpId::Min: return min(x, axes, keepdims);
    case OpId::Prod: return prod(x, axes, keepdims);
    default: break;
  }
  FAIL("no front-end for reduce op '" << op_name(op) << "': add it to front_reduce in this test");
  return Tensor();
}

Tensor front_arg_reduce(OpId op, const Tensor& x, std::int64_t axis, bool keepdims) {
  switch (op) {
    case OpId::ArgMax: return argmax(x, axis, keepdims);
    case OpId::ArgMin: return argmin(x, axis, keepdims);
    default: break;
  }
  FAIL("no front-end for arg-reduce op '" << op_name(op) << "': add it to front_arg_reduce in this test");
  return Tensor();
}

std::vector<OpId> ops_of_kind(OpKind kind) {
  std::vector<OpId> out;
  for (std::size_t i = 0; i < kNumOps; ++i)
    if (kOpInfo[i].kind == kind) out.push_back(static_cast<OpId>(i));
  return out;
}

std::vector<std::int64_t> axes_of_mask(int mask, int rank) {
  std::vector<std::int64_t> axes;
  for (int a = 0; a < rank; ++a)
    if (mask & (1 << a)) axes.push_back(a);
  return axes;
}

// The kept shape of a reduction over `axes` (all when empty).
Shape reduced_shape(const Shape& s, std::vector<std::int64_t> axes, bool keepdims) {
  const auto r = static_cast<std::int64_t>(s.size());
  if (axes.empty())
    for (std::int64_t a = 0; a < r; ++a) axes.push_back(a);
  Shape out;
  for (std::int64_t i = 0; i < r; ++i) {
    const bool red = std::find(axes.begin(), axes.end(), i) != axes.end();
    if (!red) out.push_back(s[i]);
    else if (keepdims) out.push_back(1);
  }
  return out;
}

// For each output element (row-major), the input values it reduces over, in double.
std::vector<std::vector<double>> groups(const Tensor& x, std::vector<std::int64_t> axes) {
  const Shape& s = x.shape();
  const auto r = static_cast<std::int64_t>(s.size());
  if (axes.empty())
    for (std::int64_t a = 0; a < r; ++a) axes.push_back(a);
  const Shape keep = reduced_shape(s, axes, true);
  const Shape keep_strides = contiguous_strides(keep);
  std::vector<std::vector<double>> g(static_cast<std::size_t>(count(keep)));
  const auto v = values(x);
  for (std::size_t f = 0; f < v.size(); ++f) {
    const auto idx = unravel(static_cast<std::int64_t>(f), s);
    std::int64_t o = 0;
    for (std::int64_t d = 0; d < r; ++d) o += (keep[d] == 1 ? 0 : idx[d]) * keep_strides[d];
    g[static_cast<std::size_t>(o)].push_back(v[f]);
  }
  return g;
}

double mean_of(const std::vector<double>& g) {
  double s = 0;
  for (double x : g) s += x;
  return s / static_cast<double>(g.size());
}
double var_of(const std::vector<double>& g) {
  const double m = mean_of(g);
  double s = 0;
  for (double x : g) s += (x - m) * (x - m);
  return s / static_cast<double>(g.size());
}
double logsumexp_of(const std::vector<double>& g) {
  double m = -INFINITY;
  for (double x : g) m = std::max(m, x);
  if (std::isinf(m)) return m;
  double s = 0;
  for (double x : g) s += std::exp(x - m);
  return m + std::log(s);
}

// softmax / log_softmax of x along axis, in double, in x's shape (row-major).
std::vector<double> softmax_oracle(const Tensor& x, int axis, bool log_form) {
  const Shape& s = x.shape();
  const auto v = values(x);
  Shape keep = s;
  keep[static_cast<std::size_t>(axis)] = 1;
  const Shape ks = contiguous_strides(keep);
  auto key = [&](std::size_t f) {
    const auto idx = unravel(static_cast<std::int64_t>(f), s);
    std::int64_t o = 0;
    for (std::size_t d = 0; d < s.size(); ++d) o += (static_cast<int>(d) == axis ? 0 : idx[d]) * ks[d];
    return static_cast<std::size_t>(o);
  };
  std::vector<double> m(static_cast<std::size_t>(count(keep)), -INFINITY), z(m.size(), 0.0);
  for (std::size_t f = 0; f < v.size(); ++f) m[key(f)] = std::max(m[key(f)], v[f]);
  for (std::size_t f = 0; f < v.size(); ++f) z[key(f)] += std::exp(v[f] - m[key(f)]);
  std::vector<double> out(v.size());
  for (std::size_t f = 0; f < v.size(); ++f) {
    const double k = v[f] - m[key(f)];
    out[f] = log_form ? k - std::log(z[key(f)]) : std::exp(k) / z[key(f)];
  }
  return out;
}

Tol sum_tol(DType d) { return d == kFloat32 ? Tol{1e-5, 1e-4} : default_tol(d); }

// sum and prod have an identity for every dtype: they take bool, int32 -> int64 (NumPy's rule)
// and zero-size reductions
bool widens(OpId op) { return op == OpId::Sum || op == OpId::Prod; }

}  // namespace

// =================================================================== sum / max / min vs naive

TEST_CASE("reduce: sum/max/min over every subset of axes of rank-3 tensors match the naive kernel",
          "[reduce][naive]") {
  std::mt19937 rng(2001);
  for (OpId op : ops_of_kind(OpKind::Reduce)) {
    for (DType dt : kAllDTypes) {
      if (dt == kBool && !widens(op)) continue;  // bool max/min: see below
      for (Make how : kAllMakes) {
        for (int trial = 0; trial < 2; ++trial) {
          Shape s = {rand_int(rng, 1, 5), rand_int(rng, 1, 5), rand_int(rng, 1, 5)};
          if (widens(op) && trial == 1 && how == Make::Contiguous) s[rand_int(rng, 0, 2)] = 0;
          const Tensor x = make_input(s, dt, rng, how, -3, 3, trial == 1);  // trial 1: ties
          const DType out_dt = (widens(op) && !is_floating(dt)) ? kInt64 : dt;
          const Tensor xc = naive_cast(x, out_dt);
          for (int mask = 0; mask < 8; ++mask) {
            const auto axes = axes_of_mask(mask, 3);
            for (bool keepdims : {false, true}) {
              INFO(op_name(op) << " " << dtype_name(dt) << " " << str(s) << " (" << make_name(how) << ") axes "
                               << str(axes) << " keepdims " << keepdims);
              const Tensor expected = naive_reduce(op, xc, axes, keepdims);
              check_close(front_reduce(op, x, axes, keepdims), expected, sum_tol(out_dt));
              // the same axes negative and in reverse order
              std::vector<std::int64_t> neg;
              for (auto it = axes.rbegin(); it != axes.rend(); ++it) neg.push_back(*it - 3);
              check_close(front_reduce(op, x, neg, keepdims), expected, sum_tol(out_dt));
              if (mask == 7) check_close(front_reduce(op, x, {}, keepdims), expected, sum_tol(out_dt));
            }
          }
        }
      }
    }
  }
}

TEST_CASE("reduce: random ranks 0..4 and large tensors (parallel paths) match the naive kernel", "[reduce][naive]") {
  std::mt19937 rng(2002);
  for (int trial = 0; trial < 120; ++trial) {
    const Shape s = random_shape(rng, 0, 4, false);
    const DType dt = kNumericDTypes[rand_int(rng, 0, 3)];
    const Make how = kAllMakes[rand_int(rng, 0, 5)];
    const Tensor x = make_input(s, dt, rng, how);
    const int mask = static_cast<int>(rand_int(rng, 0, (1 << s.size()) - 1));
    const auto axes = axes_of_mask(mask, static_cast<int>(s.size()));
    const bool keepdims = rand_int(rng, 0, 1) == 1;
    for (OpId op : ops_of_kind(OpKind::Reduce)) {
      INFO(op_name(op) << " " << dtype_name(dt) << " " << str(s) << " (" << make_name(how) << ") axes " << str(axes));
      const DType out_dt = (widens(op) && !is_floating(dt)) ? kInt64 : dt;
      check_close(front_reduce(op, x, axes, keepdims), naive_reduce(op, naive_cast(x, out_dt), axes, keepdims),
                  sum_tol(out_dt));
    }
  }
  // [80, 64, 52]: 266240 elements, above the threshold where the CPU kernels use threads
  for (DType dt : {kFloat32, kFloat64, kInt32}) {
    for (Make how : {Make::Contiguous, Make::Transposed}) {
      const Tensor x = make_input({80, 64, 52}, dt, rng, how, 0, 1);
      const Tensor xc = naive_cast(x, dt), x64 = naive_cast(x, kInt64);
      for (int mask : {1, 4, 6, 7}) {
        const auto axes = axes_of_mask(mask, 3);
        for (OpId op : ops_of_kind(OpKind::Reduce)) {
          INFO(op_name(op) << " " << dtype_name(dt) << " (" << make_name(how) << ") axes " << str(axes));
          const bool widen = widens(op) && dt == kInt32;
          const Tol tol = dt == kFloat32 ? Tol{2e-5, 1e-3} : default_tol(dt);
          check_close(front_reduce(op, x, axes, false), naive_reduce(op, widen ? x64 : xc, axes, false), tol);
        }
      }
    }
  }
  // rows of a [1040, 2100] float32 (8.7 MB: above the size whose rows the CPU reads through
  // SSE2's loop) and of a [1040, 2101] float64 (odd rows: every tail), with NaN in one row
  for (DType dt : {kFloat32, kFloat64}) {
    const std::int64_t cols = dt == kFloat32 ? 2100 : 2101;
    Tensor x = make_input({1040, cols}, dt, rng, Make::Contiguous, -1, 1);
    x(7, 5).assign(std::nan(""));
    const Tensor xc = naive_cast(x, dt);
    for (OpId op : ops_of_kind(OpKind::Reduce)) {
      INFO(op_name(op) << " " << dtype_name(dt) << " rows of " << cols);
      const Tol tol = dt == kFloat32 ? Tol{2e-5, 1e-3} : default_tol(dt);
      const Tensor got = front_reduce(op, x, {1}, false);
      check_close(got, naive_reduce(op, xc, {1}, false), tol);
      CHECK(std::isnan(got(7).astype(kFloat64).item<double>()));
    }
  }
}

TEST_CASE("reduce: hand-worked values", "[reduce]") {
  const Tensor x = tensor({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3});
  check_values(sum(x), {}, {21});
  check_values(sum(x, {0}), {3}, {5, 7, 9});
  check_values(sum(x, {1}), {2}, {6, 15});
  check_values(sum(x, {1}, true), {2, 1}, {6, 15});
  check_values(sum(x, {-1, 0}, true), {1, 1}, {21});
  check_values(max(x, {0}), {3}, {4, 5, 6});
  check_values(min(x, {1}), {2}, {1, 4});
  check_values(mean(x, {0}), {3}, {2.5, 3.5, 4.5});
  check_values(mean(x), {}, {3.5});
  check_values(var(x, {1}), {2}, {2.0 / 3, 2.0 / 3});
  check_values(var(tensor({1.0, 2.0, 3.0, 4.0})), {}, {1.25});
  check_values(logsumexp(tensor({0.0, 0.0})), {}, {std::log(2.0)});
  // integers: sum widens to int64 (as NumPy), max/min keep the dtype, mean gives float32
  const Tensor i = tensor({2000000000, 2000000000});
  CHECK(sum(i).dtype() == kInt64);
  CHECK(sum(i).item<std::int64_t>() == 4000000000LL);
  CHECK(max(i).dtype() == kInt32);
  CHECK(mean(tensor({1, 2})).dtype() == kFloat32);
  check_values(mean(tensor({1, 2})), {}, {1.5});
  CHECK(var(tensor({1, 2})).dtype() == kFloat32);
  // an integer mean sums in float64 (NumPy): values near the type's limits cancel exactly, in
  // any layout (a float32 sum gave a wrong answer that changed with the layout)
  const Tensor big = tensor<std::int32_t>({2147483647, 5, -2147483647, 7, 1, -2147483647}, {3, 2});
  CHECK(mean(big).item<float>() == Approx((5.0 + 7.0 + 1.0 - 2147483647.0) / 6.0).epsilon(1e-7));
  check_values(mean(big.transpose(), {1}), {2}, {1.0 / 3, (5.0 + 7.0 - 2147483647.0) / 3});
  const Tensor huge = tensor<std::int64_t>({std::int64_t(1) << 52, 6, -(std::int64_t(1) << 52)}, {3});
  CHECK(mean(huge).item<float>() == 2.0f);
  CHECK(var(tensor<std::int64_t>({std::int64_t(1) << 40, (std::int64_t(1) << 40) + 2}, {2})).item<float>() == 1.0f);
  check_values(sum(tensor({true, true, false})), {}, {2});
  CHECK(sum(tensor({true, true, false})).dtype() == kInt64);
  // max/min propagate NaN
  CHECK(std::isnan(max(tensor({1.0, std::nan(""), 3.0})).item<double>()));
  CHECK(std::isnan(min(tensor({1.f, std::nanf(""), 3.f})).item<float>()));
}

TEST_CASE("reduce: max/min of bool tensors stay bool (NumPy, PyTorch)", "[reduce][bool]") {
  const Tensor b = tensor({true, false, true});
  CHECK(max(b).dtype() == kBool);
  CHECK(min(b).dtype() == kBool);
  CHECK(max(b).item<bool>() == true);
  CHECK(min(b).item<bool>() == false);
}

TEST_CASE("reduce: rank 0 and zero-size axes", "[reduce][edge]") {
  const Tensor s = scalar(3.5f);
  CHECK(sum(s).rank() == 0);
  CHECK(sum(s).item<float>() == 3.5f);
  CHECK(sum(s, {}, true).rank() == 0);
  CHECK(max(s).item<float>() == 3.5f);
  CHECK(min(s).item<float>() == 3.5f);
  CHECK(mean(s).item<float>() == 3.5f);
  CHECK(var(s).item<float>() == 0.f);
  CHECK(logsumexp(s).item<float>() == 3.5f);
  CHECK(argmax(s).item<std::int64_t>() == 0);

  const Tensor e = zeros({0, 3});
  check_values(sum(e, {0}), {3}, {0, 0, 0});
  check_values(sum(e), {}, {0});
  check_values(sum(e, {1}), {0}, {});
  check_values(sum(e, {0}, true), {1, 3}, {0, 0, 0});
  check_values(sum(zeros({0}, kInt32)), {}, {0});
  check_values(max(e, {1}), {0}, {});  // nothing reduced over an empty axis
  CHECK(std::isnan(mean(zeros({0})).item<float>()));  // NumPy: nan (with a warning)
  CHECK_THROWS_AS(max(e), ValueError);
  CHECK_THROWS_WITH(max(e), Contains("max: zero-size axis 0") && Contains("[0, 3]"));
  CHECK_THROWS_AS(min(e, {0}), ValueError);
  CHECK_THROWS_WITH(min(e, {0}), Contains("min") && Contains("zero-size"));
  CHECK_THROWS_AS(argmax(e, 0), ValueError);
  CHECK_THROWS_WITH(argmax(e, 0), Contains("argmax") && Contains("[0, 3]"));
  CHECK_THROWS_AS(argmin(zeros({0})), ValueError);
  CHECK(argmax(e, 1).shape() == Shape{0});
}

TEST_CASE("reduce: bad axes are errors naming the op", "[reduce][errors]") {
  const Tensor x = zeros({2, 3, 4});
  CHECK_THROWS_AS(sum(x, {3}), IndexError);
  CHECK_THROWS_WITH(sum(x, {3}), Contains("sum: axis 3 is out of range for a tensor of rank 3"));
  CHECK_THROWS_WITH(max(x, {-4}), Contains("max: axis -4 is out of range for a tensor of rank 3"));
  CHECK_THROWS_AS(sum(x, {1, 1}), ValueError);
  CHECK_THROWS_WITH(sum(x, {1, -2}), Contains("sum: repeated axis"));
  CHECK_THROWS_AS(mean(x, {5}), IndexError);
  CHECK_THROWS_AS(var(x, {5}), IndexError);
  CHECK_THROWS_AS(logsumexp(x, {5}), IndexError);
  CHECK_THROWS_AS(argmax(x, 3), IndexError);
  CHECK_THROWS_WITH(argmax(x, 3), Contains("argmax") && Contains("axis 3"));
  CHECK_THROWS_AS(softmax(x, 3), IndexError);
  CHECK_THROWS_AS(sum(scalar(1.f), {0}), IndexError);
}

// =================================================================== mean, var, logsumexp vs double loops

TEST_CASE("reduce: mean, var and logsumexp over axis subsets match double-precision loops", "[reduce][oracle]") {
  std::mt19937 rng(2003);
  for (DType dt : kNumericDTypes) {
    for (Make how : kAllMakes) {
      const Shape s = {rand_int(rng, 1, 5), rand_int(rng, 1, 5), rand_int(rng, 1, 5)};
      const Tensor x = make_input(s, dt, rng, how);
      const DType out_dt = is_floating(dt) ? dt : kFloat32;
      const Tol tol = out_dt == kFloat32 ? Tol{1e-5, 1e-5} : Tol{1e-12, 1e-12};
      for (int mask = 0; mask < 8; ++mask) {
        const auto axes = axes_of_mask(mask, 3);
        for (bool keepdims : {false, true}) {
          INFO(dtype_name(dt) << " " << str(s) << " (" << make_name(how) << ") axes " << str(axes) << " keepdims "
                              << keepdims);
          const auto g = groups(x, axes);
          std::vector<double> m, v, l;
          for (const auto& grp : g) {
            m.push_back(mean_of(grp));
            v.push_back(var_of(grp));
            l.push_back(logsumexp_of(grp));
          }
          const Shape os = reduced_shape(s, axes, keepdims);
          const Tensor mt = mean(x, axes, keepdims), vt = var(x, axes, keepdims), lt = logsumexp(x, axes, keepdims);
          CHECK(mt.dtype() == out_dt);
          CHECK(vt.dtype() == out_dt);
          CHECK(lt.dtype() == out_dt);
          check_values(mt, os, m, tol);
          check_values(vt, os, v, tol);
          check_values(lt, os, l, tol);
        }
      }
    }
  }
}

TEST_CASE("reduce: logsumexp is stable for large and -inf values", "[reduce][stability]") {
  check_values(logsumexp(tensor({1000.f, 1000.f})), {}, {1000 + std::log(2.0)}, {1e-6, 1e-4});
  check_values(logsumexp(tensor({1000.0, -1000.0})), {}, {1000});
  check_values(logsumexp(tensor({-1000.0, -1000.0})), {}, {-1000 + std::log(2.0)});
  check_values(logsumexp(tensor({1000.f, 999.f, 998.f, -1000.f}, {2, 2}), {1}), {2},
               {1000 + std::log1p(std::exp(-1.0)), 998}, {1e-6, 1e-4});
  const double inf = INFINITY;
  CHECK(logsumexp(tensor({-inf, -inf})).item<double>() == -inf);
  check_values(logsumexp(tensor({-inf, 0.0})), {}, {0});
  CHECK(logsumexp(tensor({inf, 0.0})).item<double>() == inf);
  // a -inf row next to a finite row
  check_values(logsumexp(tensor({-inf, -inf, 1.0, 1.0}, {2, 2}), {1}), {2}, {-inf, 1 + std::log(2.0)});
  // keepdims and a zero-size reduction (log(0) = -inf, as NumPy/SciPy)
  CHECK(logsumexp(tensor({1.f, 2.f}), {0}, true).shape() == Shape{1});
}

// =================================================================== argmax / argmin

TEST_CASE("reduce: argmax/argmin along every axis match the naive kernel", "[reduce][arg][naive]") {
  std::mt19937 rng(2004);
  for (OpId op : ops_of_kind(OpKind::ArgReduce)) {
    for (DType dt : kAllDTypes) {
      for (int trial = 0; trial < 24; ++trial) {
        const Shape s = random_shape(rng, 1, 4, false);
        const Make how = kAllMakes[rand_int(rng, 0, 5)];
        const Tensor x = make_input(s, dt, rng, how, -3, 3, trial % 2 == 0);  // even trials: many ties
        const Tensor xo = dt == kBool ? naive_cast(x, kInt32) : x;
        for (int axis = 0; axis < static_cast<int>(s.size()); ++axis) {
          INFO(op_name(op) << " " << dtype_name(dt) << " " << str(s) << " (" << make_name(how) << ") axis " << axis);
          const Tensor expected = naive_arg_reduce(op, xo, axis);
          check_close(front_arg_reduce(op, x, axis, false), expected);
          check_close(front_arg_reduce(op, x, axis - static_cast<int>(s.size()), false), expected);
          Shape ks = s;
          ks[static_cast<std::size_t>(axis)] = 1;
          const Tensor kd = front_arg_reduce(op, x, axis, true);
          CHECK(kd.dtype() == kInt64);
          check_values(kd, ks, values(expected), {0, 0});
        }
      }
    }
  }
}

TEST_CASE("reduce: argmax/argmin of large tensors match the naive kernel", "[reduce][arg][naive][large]") {
  std::mt19937 rng(2007);
  for (DType dt : {kFloat32, kInt32}) {
    for (Make how : {Make::Contiguous, Make::Transposed}) {
      const Tensor x = make_input({300, 1000}, dt, rng, how, -1000, 1000);
      for (OpId op : ops_of_kind(OpKind::ArgReduce)) {
        for (int axis = 0; axis < 2; ++axis) {
          INFO(op_name(op) << " " << dtype_name(dt) << " (" << make_name(how) << ") axis " << axis);
          check_close(front_arg_reduce(op, x, axis, false), naive_arg_reduce(op, x, axis));
        }
      }
    }
  }
}

TEST_CASE("reduce: argmax/argmin hand-worked values (first index on ties, flattened)", "[reduce][arg]") {
  check_values(argmax(tensor({1.f, 3.f, 3.f, 2.f}), 0), {}, {1});
  check_values(argmin(tensor({2, 1, 1, 5}), 0), {}, {1});
  const Tensor m = tensor({1.f, 5.f, 7.f, 0.f}, {2, 2});
  check_values(argmax(m, 0), {2}, {1, 0});
  check_values(argmax(m, 1), {2}, {1, 0});
  check_values(argmin(m, 1), {2}, {0, 1});
  check_values(argmax(m, -1, true), {2, 1}, {1, 0});
  check_values(argmax(m), {}, {2});
  check_values(argmin(m), {}, {3});
  CHECK(argmax(m).dtype() == kInt64);
  check_values(argmax(m.transpose()), {}, {1});  // flattened in the view's row-major order: [1, 7, 5, 0]
  check_values(argmax(tensor({false, true, true})), {}, {1});
  check_values(argmax(tensor({1.0, std::nan(""), 3.0})), {}, {1});  // NumPy: NaN is the max
}

// =================================================================== argsort / sort / top_k

namespace {
template <std::size_t N>
std::vector<double> dvec(const double (&a)[N]) {
  return std::vector<double>(a, a + N);
}
template <std::size_t N>
std::vector<double> dvec(const std::int64_t (&a)[N]) {
  return std::vector<double>(a, a + N);
}
// The sign bits of t's values (-0.0 and 0.0 compare equal in check_values).
std::vector<bool> signbits(const Tensor& t) {
  std::vector<bool> out;
  for (double v : values(t)) out.push_back(std::signbit(v));
  return out;
}
}  // namespace

TEST_CASE("reduce: argsort and sort match NumPy's stable order (ties, NaN, infinities, both zeros)", "[reduce][sort][golden]") {
  namespace g = sort_golden;
  for (DType dt : kFloatDTypes) {
    INFO(dtype_name(dt));
    const Tensor x = tensor(dvec(g::kX), {3, 6}).astype(dt);
    check_values(argsort(x, 0), {3, 6}, dvec(g::kXArgsortAxis0), {0, 0});
    check_values(argsort(x), {3, 6}, dvec(g::kXArgsortAxis1), {0, 0});
    check_values(argsort(x, 1), {3, 6}, dvec(g::kXArgsortAxis1), {0, 0});
    check_values(argsort(x, -2, true), {3, 6}, dvec(g::kXArgsortDescAxis0), {0, 0});
    check_values(argsort(x, 1, true), {3, 6}, dvec(g::kXArgsortDescAxis1), {0, 0});
    CHECK(argsort(x).dtype() == kInt64);
    const Tensor s0 = sort(x, 0), s1 = sort(x, -1);
    CHECK(s1.dtype() == dt);
    check_values(s0, {3, 6}, dvec(g::kXSortAxis0), {0, 0});
    check_values(s1, {3, 6}, dvec(g::kXSortAxis1), {0, 0});
    CHECK(signbits(s1) == signbits(tensor(dvec(g::kXSortAxis1))));  // 0.0 stays before -0.0
    // axis 0 of the transposed view [6, 3] is axis 1 of x
    check_values(argsort(x.transpose(), 0), {6, 3}, values(argsort(x, 1).transpose()), {0, 0});
    check_values(sort(x.transpose(), 0, true), {6, 3}, values(sort(x, 1, true).transpose()), {0, 0});
  }
  // TensorFlow's stable argsort both ways (int32 with ties: a constant row keeps its order)
  const Tensor xi = tensor(dvec(g::kXi), {2, 7}).astype(kInt32);
  check_values(argsort(xi), {2, 7}, dvec(g::kXiArgsort), {0, 0});
  check_values(argsort(xi, -1, true), {2, 7}, dvec(g::kXiArgsortDesc), {0, 0});
}

TEST_CASE("reduce: argsort along every axis of every dtype and layout matches the naive kernel", "[reduce][sort][naive]") {
  std::mt19937 rng(2010);
  for (DType dt : kAllDTypes) {
    for (int trial = 0; trial < 16; ++trial) {
      const Shape s = random_shape(rng, 1, 4, true);
      const Make how = kAllMakes[rand_int(rng, 0, 5)];
      Tensor x = make_input(s, dt, rng, how, -3, 3, trial % 2 == 0);  // even trials: many ties
      if (is_floating(dt) && trial % 4 == 1 && x.size() > 0) {  // NaNs at random places
        std::vector<double> v = values(x);
        for (int k = 0; k < 3; ++k) v[static_cast<std::size_t>(rand_int(rng, 0, x.size() - 1))] = std::nan("");
        x = from_values(v, s, dt);
      }
      for (int axis = 0; axis < static_cast<int>(s.size()); ++axis) {
        for (bool descending : {false, true}) {
          INFO(dtype_name(dt) << " " << str(s) << " (" << make_name(how) << ") axis " << axis << (descending ? " descending" : ""));
          const Tensor expected = naive_argsort(x, axis, descending);
          check_close(argsort(x, axis, descending), expected);
          check_close(argsort(x, axis - static_cast<int>(s.size()), descending), expected);
          check_close(sort(x, axis, descending), take_along_axis(x, expected, axis));
        }
      }
    }
  }
}

TEST_CASE("reduce: argsort, sort and top_k hand-worked values (stability, every dtype, edges)", "[reduce][sort]") {
  // stable both ways: the equal 1s keep their order, descending too (not the reverse)
  check_values(argsort(tensor({1.f, 0.f, 1.f, 1.f, 0.f}), 0, true), {5}, {0, 2, 3, 1, 4}, {0, 0});
  check_values(argsort(tensor({1.f, 0.f, 1.f, 1.f, 0.f})), {5}, {1, 4, 0, 2, 3}, {0, 0});
  // NaN is the largest: last ascending, first descending, NaNs in their order; +inf below it
  const double nan = std::nan(""), inf = INFINITY;
  check_values(argsort(tensor({nan, inf, 1.0, nan, -inf})), {5}, {4, 2, 1, 0, 3}, {0, 0});
  check_values(argsort(tensor({nan, inf, 1.0, nan, -inf}), 0, true), {5}, {0, 3, 1, 2, 4}, {0, 0});
  // every dtype; sort keeps it
  for (DType dt : kAllDTypes) {
    INFO(dtype_name(dt));
    const Tensor x = tensor({1.0, 0.0, 1.0, 0.0, 1.0}).astype(dt);
    check_values(argsort(x), {5}, {1, 3, 0, 2, 4}, {0, 0});
    check_values(argsort(x, -1, true), {5}, {0, 2, 4, 1, 3}, {0, 0});
    CHECK(sort(x).dtype() == dt);
    check_values(sort(x, 0, true), {5}, {1, 1, 1, 0, 0}, {0, 0});
    const TopK t = top_k(x, 2);
    CHECK(t.values.dtype() == dt);
    CHECK(t.indices.dtype() == kInt64);
    check_values(t.values, {2}, {1, 1}, {0, 0});
    check_values(t.indices, {2}, {0, 2}, {0, 0});
  }
  for (DType dt : {kInt32, kInt64}) {  // the extremes of the type
    const double lo = dt == kInt32 ? -2147483648.0 : -9223372036854775808.0;
    const Tensor x = tensor({7.0, lo, -lo - 1, 0.0}).astype(dt);
    check_values(argsort(x), {4}, {1, 3, 0, 2}, {0, 0});
    check_values(argsort(x, 0, true), {4}, {2, 0, 3, 1}, {0, 0});
  }
  // size-0 and size-1 axes
  CHECK(argsort(zeros({0})).shape() == Shape{0});
  CHECK(argsort(zeros({3, 0}), 0).shape() == (Shape{3, 0}));
  CHECK(sort(zeros({0, 4}), 1, true).shape() == (Shape{0, 4}));
  check_values(argsort(tensor({5.f, 4.f, 3.f}, {3, 1}), 1), {3, 1}, {0, 0, 0}, {0, 0});
  check_values(sort(tensor({5.f, 4.f, 3.f}, {3, 1}), 0), {3, 1}, {3, 4, 5});
  // a broadcast view: every row the same
  check_values(argsort(tensor({2, 0, 1}).broadcast_to({2, 3}), 1), {2, 3}, {1, 2, 0, 1, 2, 0}, {0, 0});
  CHECK_THROWS_AS(argsort(scalar(1.f)), IndexError);  // no axis to sort, as np.sort

  // top_k: TensorFlow's values and indices
  namespace g = sort_golden;
  const TopK ti = top_k(tensor(dvec(g::kXi), {2, 7}).astype(kInt32), 4);
  CHECK(ti.values.dtype() == kInt32);
  check_values(ti.values, {2, 4}, dvec(g::kXiTopKValues), {0, 0});
  check_values(ti.indices, {2, 4}, dvec(g::kXiTopKIndices), {0, 0});
  const TopK tf = top_k(tensor(dvec(g::kXf), {2, 6}).astype(kFloat32), 3);
  check_values(tf.values, {2, 3}, dvec(g::kXfTopKValues), {0, 0});
  check_values(tf.indices, {2, 3}, dvec(g::kXfTopKIndices), {0, 0});
  // unsorted: the same entries in index order; NaN counts as the largest; k = 0 and k = n
  const Tensor x = tensor({0.5, 3.0, nan, 3.0, -1.0, 2.0}, {2, 3});
  check_values(top_k(x, 2).values, {2, 2}, {nan, 3.0, 3.0, 2.0});
  check_values(top_k(x, 2).indices, {2, 2}, {2, 1, 0, 2}, {0, 0});
  check_values(top_k(x, 2, false).indices, {2, 2}, {1, 2, 0, 2}, {0, 0});
  check_values(top_k(x, 2, false).values, {2, 2}, {3.0, nan, 3.0, 2.0});
  CHECK(top_k(x, 0).values.shape() == (Shape{2, 0}));
  check_values(top_k(x, 3).indices, {2, 3}, {2, 1, 0, 0, 2, 1}, {0, 0});
  check_values(top_k(x.transpose(), 2).indices, {3, 2}, {1, 0, 0, 1, 0, 1}, {0, 0});  // rows [0.5, 3], [3, -1], [nan, 2]
  CHECK(top_k(zeros({2, 0}), 0).indices.shape() == (Shape{2, 0}));
}

TEST_CASE("reduce: argsort, sort and top_k errors name the op and the shape", "[reduce][sort][errors]") {
  const Tensor x = zeros({2, 3});
  CHECK_THROWS_AS(argsort(x, 2), IndexError);
  CHECK_THROWS_WITH(argsort(x, 2), Contains("argsort: axis 2 is out of range for a tensor of rank 2"));
  CHECK_THROWS_WITH(sort(x, -3), Contains("sort: axis -3 is out of range for a tensor of rank 2"));
  CHECK_THROWS_AS(top_k(x, 4), ValueError);
  CHECK_THROWS_WITH(top_k(x, 4), Contains("top_k: k = 4 is out of range for input shape [2, 3]") && Contains("[0, 3]"));
  CHECK_THROWS_AS(top_k(x, -1), ValueError);
  CHECK_THROWS_WITH(top_k(x, -1), Contains("top_k: k = -1") && Contains("[2, 3]"));
  CHECK_THROWS_AS(top_k(scalar(1.f), 1), ValueError);
  CHECK_THROWS_WITH(top_k(scalar(1.f), 1), Contains("top_k") && Contains("shape []"));
  CHECK_THROWS_WITH(argsort(Tensor()), Contains("argsort"));
  CHECK_THROWS_WITH(sort(Tensor()), Contains("sort"));
  CHECK_THROWS_WITH(top_k(Tensor(), 1), Contains("top_k"));
}

// =================================================================== softmax / log_softmax

TEST_CASE("reduce: softmax and log_softmax match double-precision loops on every axis", "[reduce][softmax][oracle]") {
  std::mt19937 rng(2005);
  for (DType dt : kFloatDTypes) {
    for (Make how : kAllMakes) {
      for (int trial = 0; trial < 3; ++trial) {
        const Shape s = random_shape(rng, 1, 4, false);
        const Tensor x = make_input(s, dt, rng, how, -10, 10);
        for (int axis = 0; axis < static_cast<int>(s.size()); ++axis) {
          INFO(dtype_name(dt) << " " << str(s) << " (" << make_name(how) << ") axis " << axis);
          const Tol tol = dt == kFloat32 ? Tol{1e-5, 1e-6} : Tol{1e-12, 1e-14};
          const Tensor sm = softmax(x, axis);
          CHECK(sm.dtype() == dt);
          check_values(sm, s, softmax_oracle(x, axis, false), tol);
          check_values(softmax(x, axis - static_cast<int>(s.size())), s, softmax_oracle(x, axis, false), tol);
          const Tol ltol = dt == kFloat32 ? Tol{1e-5, 1e-5} : Tol{1e-12, 1e-12};
          check_values(log_softmax(x, axis), s, softmax_oracle(x, axis, true), ltol);
          // each slice along the axis sums to 1
          for (const auto& g : groups(sm, {axis})) CHECK(std::abs(mean_of(g) * static_cast<double>(g.size()) - 1) < 1e-5);
        }
      }
    }
  }
}

TEST_CASE("reduce: softmax and log_softmax are stable for large values", "[reduce][softmax][stability]") {
  const double e0 = 1, e1 = std::exp(1.0), e2 = std::exp(2.0), z = e0 + e1 + e2;
  check_values(softmax(tensor({1000.f, 1001.f, 1002.f})), {3}, {e0 / z, e1 / z, e2 / z});
  check_values(softmax(tensor({-1000.f, -1001.f, -1002.f})), {3}, {e2 / z, e1 / z, e0 / z});
  check_values(log_softmax(tensor({-1000.0, 1000.0})), {2}, {-2000, 0});
  check_values(log_softmax(tensor({1000.f, 1000.f})), {2}, {-std::log(2.0), -std::log(2.0)});
  check_values(softmax(tensor({-INFINITY, 0.f})), {2}, {0, 1});
  check_values(softmax(tensor({1.f, 2.f, 3.f, 4.f}, {2, 2}), 0), {2, 2},
               {1 / (1 + e2), 1 / (1 + e2), e2 / (1 + e2), e2 / (1 + e2)});
  const Tensor si = softmax(tensor({1, 2}));
  CHECK(si.dtype() == kFloat32);
  check_values(si, {2}, {1 / (1 + e1), e1 / (1 + e1)});
  for (double v : values(softmax(tensor({1e30f, -1e30f, 0.f})))) CHECK_FALSE(std::isnan(v));
}

// =================================================================== sum_to

TEST_CASE("reduce: sum_to undoes broadcasting", "[reduce][sum_to]") {
  std::mt19937 rng(2006);
  const Tensor x = make_input({2, 3, 4}, kFloat64, rng, Make::Permuted);
  auto expect = [&](const std::vector<std::int64_t>& axes, const Shape& target) {
    INFO("sum_to " << str(target));
    std::vector<double> e;
    for (const auto& g : groups(x, axes)) e.push_back(mean_of(g) * static_cast<double>(g.size()));
    check_values(sum_to(x, target), target, e, {1e-12, 1e-12});
  };
  expect({0, 2}, {3, 1});
  expect({0, 1}, {4});
  expect({0, 1}, {1, 4});
  expect({0}, {3, 4});
  expect({1}, {2, 1, 4});
  expect({0, 1, 2}, {});
  expect({0, 1, 2}, {1, 1, 1});
  expect({0, 1, 2}, {1});
  const Tensor same = sum_to(x, {2, 3, 4});
  CHECK(values(same) == values(x));
  // the inverse of broadcast_to: sum_to(broadcast_to(y, s), y.shape) == y * (count / y.count)
  const Tensor y = tensor({1.f, 2.f, 3.f}, {3, 1});
  check_values(sum_to(y.broadcast_to({2, 3, 5}), {3, 1}), {3, 1}, {10, 20, 30});
  check_values(sum_to(tensor({1, 2, 3, 4}, {2, 2}), {2}), {2}, {4, 6});
}

TEST_CASE("reduce: sum_to errors name both shapes", "[reduce][sum_to][errors]") {
  CHECK_THROWS_AS(sum_to(zeros({3}), {2, 3}), ShapeError);
  CHECK_THROWS_WITH(sum_to(zeros({3}), {2, 3}), Contains("sum_to") && Contains("[3]") && Contains("[2, 3]"));
  CHECK_THROWS_AS(sum_to(zeros({2, 3}), {4}), ShapeError);
  CHECK_THROWS_WITH(sum_to(zeros({2, 3}), {4}), Contains("sum_to") && Contains("[2, 3]") && Contains("[4]"));
  CHECK_THROWS_AS(sum_to(zeros({2, 3}), {2, 2}), ShapeError);
}

// =================================================================== integer overflow, composite errors

TEST_CASE("reduce: integer sums wrap around as NumPy's (no UB), on every path", "[reduce][integer][overflow]") {
  constexpr std::int64_t kMax64 = std::numeric_limits<std::int64_t>::max();
  constexpr std::int64_t kMin64 = std::numeric_limits<std::int64_t>::min();
  constexpr std::int64_t k62 = std::int64_t(1) << 62;
  // np.sum(np.array([2**63 - 1, 1])) -> -2**63
  CHECK(sum(tensor<std::int64_t>({kMax64, 1}, {2})).item<std::int64_t>() == kMin64);
  // 5 * 2**62 = 2**62 (mod 2**64): contiguous, broadcast (stride 0) and reversed runs
  const Tensor f = full({5}, static_cast<double>(k62), kInt64);
  CHECK(sum(f).item<std::int64_t>() == k62);
  CHECK(sum(tensor<std::int64_t>({k62}, {1}).broadcast_to({5})).item<std::int64_t>() == k62);
  CHECK(sum(f(Slice(none, none, -1))).item<std::int64_t>() == k62);
  // rows folded into an output row: 4 * 2**62 = 0 per column; along rows: 3 * 2**62 = -2**62
  const Tensor m = full({4, 3}, static_cast<double>(k62), kInt64);
  CHECK(sum(m, {0}).to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 0, 0});
  CHECK(sum(m, {1}).to_vector<std::int64_t>() == std::vector<std::int64_t>(4, -k62));
  // large (threaded, partial sums): 2**20 elements of 2**43 sum to 2**63 = -2**63
  CHECK(sum(full({1 << 20}, 0x1p43, kInt64)).item<std::int64_t>() == kMin64);
  CHECK(sum(full({1024, 1024}, 0x1p53, kInt64), {0}).to_vector<std::int64_t>() ==
        std::vector<std::int64_t>(1024, kMin64));
  // int32 sums widen to int64 first (NumPy), so three INT32_MAX do not wrap
  CHECK(sum(tensor<std::int32_t>({2147483647, 2147483647, 2147483647}, {3})).item<std::int64_t>() == 6442450941);
}

TEST_CASE("reduce: errors of composites name the op the user called", "[reduce][errors]") {
  const Tensor x = zeros({3, 4});
  CHECK_THROWS_AS(logsumexp(zeros({0})), ValueError);
  CHECK_THROWS_WITH(logsumexp(zeros({0})), Contains("logsumexp: zero-size axis 0") && Contains("[0]") &&
                                               !Contains("max:"));
  CHECK_THROWS_WITH(logsumexp(zeros({2, 0}), {1}), Contains("logsumexp: zero-size axis 1") && Contains("[2, 0]"));
  check_values(logsumexp(zeros({0, 2}), {1}), {0}, {});  // nothing reduced over an empty axis
  CHECK_THROWS_AS(var(x, {5}), IndexError);
  CHECK_THROWS_WITH(var(x, {5}), Contains("var: axis 5 is out of range for a tensor of rank 2"));
  CHECK_THROWS_WITH(var(x, {0, 0}), Contains("var: repeated axis"));
  CHECK_THROWS_WITH(logsumexp(x, {2}), Contains("logsumexp: axis 2"));
  CHECK_THROWS_WITH(var(Tensor()), Contains("var:"));
}

// =================================================================== prod

TEST_CASE("prod: NumPy's values over every axis set, with zeros, both float dtypes and a view", "[reduce][prod][golden]") {
  namespace g = prod_golden;
  const std::vector<std::pair<std::vector<std::int64_t>, Shape>> sets = {
      {{}, {1, 1, 1}}, {{0}, {1, 3, 4}}, {{1}, {2, 1, 4}}, {{2}, {2, 3, 1}}, {{0, 2}, {1, 3, 1}}, {{1, 2}, {2, 1, 1}}};
  const std::vector<double> want[] = {dvec(g::kProdAll),    dvec(g::kProdAxis0),  dvec(g::kProdAxis1),
                                      dvec(g::kProdAxis2),  dvec(g::kProdAxes02), dvec(g::kProdAxes12)};
  for (std::size_t i = 0; i < sets.size(); ++i) {
    const auto& [axes, keep] = sets[i];
    INFO("axes " << str(axes));
    for (DType dt : kFloatDTypes) {
      const Tensor x = tensor(dvec(g::kP), {2, 3, 4}).astype(dt);
      const Tol tol = dt == kFloat32 ? Tol{1e-6, 1e-7} : Tol{1e-14, 0};
      check_values(prod(x, axes, true), keep, want[i], tol);
      CHECK(prod(x, axes).dtype() == dt);
      // keepdims false drops the reduced axes (all of them for {})
      Shape dropped;
      for (std::size_t d = 0; d < 3; ++d)
        if (!axes.empty() && std::find(axes.begin(), axes.end(), std::int64_t(d)) == axes.end()) dropped.push_back(keep[d]);
      check_values(prod(x, axes), dropped, want[i], tol);
      // the same values through a permuted view of a permuted copy
      const Tensor xv = x.permute({2, 0, 1}).contiguous().permute({1, 2, 0});
      check_values(prod(xv, axes, true), keep, want[i], tol);
    }
  }
}

TEST_CASE("prod: hand-worked values, dtypes, integer wraparound, NaN and inf, empty and rank 0", "[reduce][prod]") {
  namespace g = prod_golden;
  const Tensor x = tensor({1.f, 2.f, 3.f, 4.f, 5.f, 6.f}, {2, 3});
  check_values(prod(x), {}, {720});
  check_values(prod(x, {0}), {3}, {4, 10, 18});
  check_values(prod(x, {-1}, true), {2, 1}, {6, 120});
  CHECK(prod(x).dtype() == kFloat32);
  // sum's dtype rule (NumPy's): int32 and bool give int64, so int32 products do not wrap
  const Tensor i32 = tensor(dvec(g::kPInt32), {3, 3}).astype(kInt32);
  CHECK(prod(i32).dtype() == kInt64);
  CHECK(prod(i32, {1}).to_vector<std::int64_t>() ==
        std::vector<std::int64_t>(std::begin(g::kPInt32ProdAxis1), std::end(g::kPInt32ProdAxis1)));
  CHECK(prod(i32, {0}).to_vector<std::int64_t>() ==
        std::vector<std::int64_t>(std::begin(g::kPInt32ProdAxis0), std::end(g::kPInt32ProdAxis0)));
  const Tensor b = tensor({true, true, false, true, true, true}, {2, 3});
  CHECK(prod(b, {1}).dtype() == kInt64);
  check_values(prod(b, {1}), {2}, dvec(g::kPBoolProdAxis1), {0, 0});
  // int64 products wrap around (two's complement) as NumPy's: 2^62 * 4 = 0; 3^39 * 3 * 5 wraps
  const std::vector<std::int64_t> v64(std::begin(g::kPInt64), std::end(g::kPInt64));
  const Tensor x64 = tensor(v64, {6});
  CHECK(prod(x64).item<std::int64_t>() == g::kPInt64Prod[0]);
  CHECK(prod(x64(Slice(3, none))).item<std::int64_t>() == g::kPInt64Prod[1]);
  CHECK(prod(x64(Slice(none, 2))).item<std::int64_t>() == g::kPInt64Prod[2]);
  CHECK(prod(x64(Slice(none, none, -1))(Slice(none, 3))).item<std::int64_t>() == g::kPInt64Prod[1]);  // reversed
  // a broadcast input (stride 0): 3^41 wraps, multiplied out, not 3 * 41
  std::uint64_t three41 = 1;
  for (int k = 0; k < 41; ++k) three41 *= 3u;
  CHECK(prod(tensor<std::int64_t>({3}, {1}).broadcast_to({41})).item<std::int64_t>() == static_cast<std::int64_t>(three41));
  // large (threaded, partial products): 2^20 elements of 1 and -1 (one in four -1)
  std::vector<std::int64_t> pm(1 << 20, 1);
  for (std::size_t k = 0; k < pm.size(); k += 4) pm[k] = -1;  // 2^18 of them: an even count
  const Tensor ones_and_minus = tensor(pm, {1 << 20});
  CHECK(prod(ones_and_minus).item<std::int64_t>() == 1);
  CHECK(prod(ones_and_minus.reshape({1024, 1024}), {0}).to_vector<std::int64_t>() ==
        std::vector<std::int64_t>(1024, 1));
  // inf and NaN: inf * 0 and NaN give NaN, -0.0 * 5 * -1 = 0.0 (NumPy)
  const Tensor pi = tensor(dvec(g::kPi), {4, 3});
  check_values(prod(pi, {1}), {4}, dvec(g::kPiProdAxis1), {0, 0});
  check_values(prod(pi.astype(kFloat32), {1}), {4}, dvec(g::kPiProdAxis1), {0, 0});
  // empty: a zero-size reduction gives 1 (the identity), kept axes of size 0 give nothing
  const Tensor e = zeros({0, 3});
  check_values(prod(e, {0}), {3}, {1, 1, 1});
  check_values(prod(e), {}, {1});
  check_values(prod(e, {1}), {0}, {});
  CHECK(prod(zeros({0}, kInt32)).item<std::int64_t>() == 1);
  // rank 0: the value itself
  CHECK(prod(scalar(3.5f)).item<float>() == 3.5f);
  CHECK(prod(scalar(3.5f), {}, true).rank() == 0);
  // errors name the op
  CHECK_THROWS_AS(prod(x, {2}), IndexError);
  CHECK_THROWS_WITH(prod(x, {2}), Contains("prod: axis 2 is out of range for a tensor of rank 2"));
  CHECK_THROWS_WITH(prod(x, {0, -2}), Contains("prod: repeated axis"));
  CHECK_THROWS_WITH(prod(Tensor()), Contains("prod"));
}
