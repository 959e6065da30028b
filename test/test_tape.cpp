// GradientTape: TensorFlow's semantics, safety checks, inspection, custom ops and the
// gradients of the ops whose rules have a choice to make (ties, kinks, broadcasting, views).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tapeflow/autodiff.hpp"

using namespace tapeflow;
using Catch::Matchers::Contains;

namespace {

std::vector<double> values(const Tensor& t) { return t.astype(kFloat64).to_vector<double>(); }

// Element-wise |a - b| <= tol, with the same number of elements.
bool close(const std::vector<double>& a, const std::vector<double>& b, double tol = 1e-6) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!(std::abs(a[i] - b[i]) <= tol)) return false;
  return true;
}
bool close(const Tensor& t, const std::vector<double>& expected, double tol = 1e-6) {
  return t.defined() && close(values(t), expected, tol);
}

// The message of the tapeflow::Error that fn throws ("" if none).
template <class F>
std::string error_message(F&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

// ------------------------------------------------------------------ the book's basics

TEST_CASE("tape: y = 2x + 3 with a watched constant", "[tape]") {
  const Tensor x = scalar(3.0);
  GradientTape tape;
  tape.watch(x);
  const Tensor y = 2.0 * x + 3.0;
  CHECK(y.item<float>() == 9.0f);
  const Tensor dy_dx = tape.gradient(y, x);
  REQUIRE(dy_dx.defined());
  CHECK(dy_dx.shape() == Shape{});
  CHECK(dy_dx.dtype() == kFloat32);
  CHECK(dy_dx.item<float>() == 2.0f);
}

TEST_CASE("tape: an unwatched constant has no gradient", "[tape]") {
  const Tensor x = scalar(3.0);
  GradientTape tape;
  const Tensor y = 2.0 * x + 3.0;
  CHECK_FALSE(tape.gradient(y, x).defined());
}

TEST_CASE("tape: y = 2x + 3 with a Variable, watched automatically", "[tape][variable]") {
  Variable x(scalar(3.0), "x");
  CHECK(x.name() == "x");
  CHECK(x.trainable());
  GradientTape tape;
  const Tensor y = 2.0 * x + 3.0;
  CHECK(tape.gradient(y, x).item<float>() == 2.0f);
  const auto watched = tape.watched_variables();
  REQUIRE(watched.size() == 1);
  CHECK(watched[0].name() == "x");
  CHECK(watched[0].id() == x.id());
}

TEST_CASE("tape: a braced list of one source is a list: gradient(loss, {w}) gives a vector", "[tape][variable]") {
  // As tape.gradient(loss, [w]) in TensorFlow. grads[0] is w's whole gradient, not its row 0.
  Variable w(ones({3, 2}), "w");
  const Tensor x = ones({2, 3});
  GradientTape tape(true);
  const Tensor loss = sum(matmul(x, w));
  const std::vector<Tensor> grads = tape.gradient(loss, {w});
  REQUIRE(grads.size() == 1);
  CHECK(grads[0].shape() == Shape{3, 2});
  CHECK(close(grads[0], {2, 2, 2, 2, 2, 2}));
  const Tensor same = tape.gradient(loss, w);  // a single source gives a Tensor
  CHECK(same.shape() == Shape{3, 2});
  const std::vector<Tensor> from_tensor = tape.gradient(loss, {static_cast<const Tensor&>(w)});
  CHECK(from_tensor.size() == 1);
}

TEST_CASE("tape: watched_variables lists the Variables read, in first-seen order, once each", "[tape][variable]") {
  Variable a(scalar(1.0), "a"), b(tensor({1.f, 2.f}), "b"), c(scalar(2.0), "c");
  GradientTape tape;
  // one op per statement: the order of evaluation inside an expression is unspecified
  Tensor y = b * a;
  y = y + c * a;
  y = y + b;
  const auto watched = tape.watched_variables();
  REQUIRE(watched.size() == 3);
  CHECK(watched[0].name() == "b");
  CHECK(watched[1].name() == "a");
  CHECK(watched[2].name() == "c");
  const auto g = tape.gradient(sum(y), std::vector<Tensor>{a, b, c});
  CHECK(close(g[0], {3 + 2 * 2.0}));  // sum(b) + 2 * c
  CHECK(close(g[1], {2, 2}));         // a + 1
  CHECK(close(g[2], {2}));            // a, summed over b's 2 elements
}

TEST_CASE("tape: watch_accessed_variables off watches only what watch() is given", "[tape][variable]") {
  Variable v(scalar(3.0), "v"), u(scalar(5.0), "u");
  TapeOptions options;
  options.watch_accessed_variables = false;
  GradientTape tape(options);
  tape.watch(u);
  const Tensor y = v * u;
  CHECK(tape.watched_variables().size() == 1);
  const auto g = tape.gradient(y, std::vector<Tensor>{v, u});
  CHECK_FALSE(g[0].defined());
  CHECK(close(g[1], {3}));
}

TEST_CASE("tape: a non-trainable Variable is not watched", "[tape][variable]") {
  Variable frozen(scalar(3.0), "frozen", /*trainable=*/false);
  CHECK_FALSE(frozen.trainable());
  GradientTape tape;
  const Tensor y = frozen * frozen;
  CHECK(tape.watched_variables().empty());
  CHECK_FALSE(tape.gradient(y, frozen).defined());
}

TEST_CASE("tape: Variable assign, assign_add and assign_sub write in place and are not recorded",
          "[tape][variable]") {
  Variable v(tensor({1.f, 2.f}), "v");
  GradientTape tape;
  v.assign(tensor({3.f, 4.f}));
  v.assign_add(tensor({1.f, 1.f}));
  v.assign_sub(0.5);
  CHECK(tape.recorded_ops().empty());
  CHECK(close(v, {3.5, 4.5}));
  CHECK(v.version() == 3);
}

// ------------------------------------------------------------------ gradient() arguments

TEST_CASE("tape: unconnected sources give an undefined tensor, or zeros on request", "[tape]") {
  const Tensor x = tensor({1.f, 2.f}), z = tensor({1.f, 2.f, 3.f});
  GradientTape tape(true);
  tape.watch(x);
  tape.watch(z);
  const Tensor y = sum(x * 2.0);
  const auto none = tape.gradient(y, std::vector<Tensor>{x, z});
  CHECK(close(none[0], {2, 2}));
  CHECK_FALSE(none[1].defined());
  const auto zero = tape.gradient(y, std::vector<Tensor>{x, z}, Tensor(), UnconnectedGradients::Zero);
  CHECK(close(zero[0], {2, 2}));
  REQUIRE(zero[1].defined());
  CHECK(zero[1].shape() == Shape{3});
  CHECK(zero[1].dtype() == kFloat32);
  CHECK(close(zero[1], {0, 0, 0}));
  // a source never watched at all
  const Tensor w = tensor({5.f});
  CHECK_FALSE(tape.gradient(y, w).defined());
  CHECK(close(tape.gradient(y, w, Tensor(), UnconnectedGradients::Zero), {0}));
}

TEST_CASE("tape: a non-scalar target is summed", "[tape]") {
  const Tensor x = tensor({1.0, 2.0, 3.0});
  GradientTape tape;
  tape.watch(x);
  const Tensor y = x * x;  // [3]
  CHECK(close(tape.gradient(y, x), {2, 4, 6}));
}

TEST_CASE("tape: output_gradients weight the target", "[tape]") {
  const Tensor x = tensor({1.0, 2.0, 3.0});
  GradientTape tape;
  tape.watch(x);
  const Tensor y = x * x;
  CHECK(close(tape.gradient(y, x, tensor({1.0, 10.0, 100.0})), {2, 40, 600}));
}

TEST_CASE("tape: output_gradients must be floating; a float of another width is cast", "[tape]") {
  const Tensor x = tensor({1.0, 2.0});
  GradientTape tape(true);
  tape.watch(x);
  const Tensor y = x * 3.0;
  const std::string msg = error_message([&] { tape.gradient(y, x, tensor<bool>({true, false}, {2})); });
  CHECK_THAT(msg, Contains("output_gradients[0]") && Contains("bool"));
  CHECK_THROWS_AS(tape.gradient(y, x, tensor<std::int64_t>({1, 2}, {2})), DTypeError);
  const Tensor g = tape.gradient(y, x, tensor({1.f, 2.f}));
  CHECK(g.dtype() == kFloat64);
  CHECK(close(g, {3, 6}));
  CHECK(tape.gradient(x, x, tensor({1.f, 0.5f})).dtype() == kFloat64);  // the target is the source
}

TEST_CASE("tape: watch() and gradient() take vectors of Variables", "[tape][variable]") {
  Variable a(scalar(2.0), "a"), b(scalar(3.0), "b");
  GradientTape tape(TapeOptions{true, false});  // persistent, watches only what it is told
  tape.watch(std::vector<Variable>{a, b});
  const Tensor y1 = a * b, y2 = a * a;
  const std::vector<Tensor> g = tape.gradient(std::vector<Tensor>{y1, y2}, std::vector<Variable>{a, b});
  REQUIRE(g.size() == 2);
  CHECK(close(g[0], {3 + 4}));
  CHECK(close(g[1], {2}));
}

TEST_CASE("tape: output_gradients of the wrong shape are a ShapeError naming both shapes", "[tape]") {
  const Tensor x = tensor({1.0, 2.0, 3.0});
  GradientTape tape;
  tape.watch(x);
  const Tensor y = x * x;
  CHECK_THROWS_AS(tape.gradient(y, x, tensor({1.0, 2.0})), ShapeError);
  const std::string msg = error_message([&] {
    GradientTape t2;
    t2.watch(x);
    t2.gradient(x * x, x, tensor({1.0, 2.0}));
  });
  CHECK_THAT(msg, Contains("[2]") && Contains("[3]"));
}

TEST_CASE("tape: the gradients of several targets are summed", "[tape]") {
  const Tensor x = tensor({1.0, 2.0});
  GradientTape tape;
  tape.watch(x);
  const Tensor y1 = x * x;       // 2x
  const Tensor y2 = 3.0 * x;     // 3
  const Tensor y3 = sum(exp(x));  // exp(x)
  const auto g = tape.gradient(std::vector<Tensor>{y1, y2, y3}, std::vector<Tensor>{x});
  REQUIRE(g.size() == 1);
  CHECK(close(g[0], {2 + 3 + std::exp(1.0), 4 + 3 + std::exp(2.0)}));
}

TEST_CASE("tape: several targets with output_gradients", "[tape]") {
  const Tensor x = tensor({1.0, 2.0});
  GradientTape tape;
  tape.watch(x);
  const Tensor y1 = x * x, y2 = 3.0 * x;
  const auto g = tape.gradient(std::vector<Tensor>{y1, y2}, std::vector<Tensor>{x},
                               std::vector<Tensor>{tensor({1.0, 0.0}), tensor({0.0, 2.0})});
  CHECK(close(g[0], {2, 6}));
}

TEST_CASE("tape: gradient with respect to an intermediate tensor", "[tape]") {
  const Tensor x = tensor({1.0, 2.0});
  GradientTape tape;
  tape.watch(x);
  const Tensor h = x * 3.0;
  const Tensor y = sum(h * h);
  const auto g = tape.gradient(y, std::vector<Tensor>{h, x});
  CHECK(close(g[0], {6, 12}));   // 2h
  CHECK(close(g[1], {18, 36}));  // 2h * 3
}

TEST_CASE("tape: the gradient of a source with respect to itself is ones; of a constant, undefined", "[tape]") {
  const Tensor x = tensor({1.f, 2.f, 3.f});
  GradientTape tape(true);
  tape.watch(x);
  CHECK(close(tape.gradient(x, x), {1, 1, 1}));
  const Tensor c = ones({3});
  CHECK_FALSE(tape.gradient(c * 2.0, x).defined());
}

TEST_CASE("tape: a gradient has its source's dtype when the forward promoted it", "[tape]") {
  const Tensor x = tensor({1.f, 2.f});                  // float32
  const Tensor w = tensor({0.5, 0.25});                 // float64
  GradientTape tape;
  tape.watch(x);
  const Tensor y = x * w;
  CHECK(y.dtype() == kFloat64);
  const Tensor g = tape.gradient(y, x);
  CHECK(g.dtype() == kFloat32);
  CHECK(close(g, {0.5, 0.25}));
}

// ------------------------------------------------------------------ tape lifetime

TEST_CASE("tape: a persistent tape allows many gradient() calls", "[tape]") {
  const Tensor x = scalar(3.0, kFloat64);
  GradientTape tape(true);
  tape.watch(x);
  const Tensor y = x * x;
  const Tensor z = y * y;  // x^4
  CHECK(tape.gradient(y, x).item<double>() == Approx(6));
  CHECK(tape.gradient(z, x).item<double>() == Approx(108));
  CHECK(tape.gradient(z, y).item<double>() == Approx(18));
  CHECK(tape.gradient(y, x).item<double>() == Approx(6));
}

TEST_CASE("tape: a non-persistent tape's second gradient() is a clear ValueError", "[tape]") {
  const Tensor x = scalar(3.0);
  GradientTape tape;
  tape.watch(x);
  const Tensor y = x * x;
  CHECK(tape.gradient(y, x).item<float>() == 6.0f);
  CHECK_THROWS_AS(tape.gradient(y, x), ValueError);
  const std::string msg = error_message([&] { tape.gradient(y, x); });
  CHECK_THAT(msg, Contains("non-persistent") && Contains("once") && Contains("persistent"));
  // jacobian also counts as the one use
  const Tensor u = tensor({1.f, 2.f});
  GradientTape t2;
  t2.watch(u);
  const Tensor v = u * u;
  CHECK(t2.jacobian(v, u).defined());
  CHECK_THROWS_AS(t2.gradient(v, u), ValueError);
}

TEST_CASE("tape: reset forgets what was recorded and watched, and allows a new gradient()", "[tape]") {
  const Tensor x = scalar(2.0);
  GradientTape tape;
  tape.watch(x);
  const Tensor y = x * x;
  CHECK(tape.gradient(y, x).item<float>() == 4.0f);
  tape.reset();
  CHECK(tape.recorded_ops().empty());
  // x is no longer watched: a new op on it is not recorded
  const Tensor y2 = x * 5.0;
  CHECK(tape.recorded_ops().empty());
  CHECK_FALSE(tape.gradient(y2, x).defined());
  tape.reset();
  tape.watch(x);
  const Tensor y3 = x * 5.0;
  CHECK(tape.gradient(y3, x).item<float>() == 5.0f);

  // on a persistent tape, ops recorded before the reset are gone
  GradientTape p(true);
  p.watch(x);
  const Tensor before = x * x;
  p.reset();
  CHECK_FALSE(p.gradient(before, x).defined());
  CHECK(p.saved_tensor_count() == 0);
}

TEST_CASE("tape: ops inside stop_recording() are not recorded", "[tape]") {
  const Tensor x = tensor({1.0, 2.0});
  GradientTape tape(true);
  tape.watch(x);
  const Tensor a = x * 2.0;
  const std::size_t before = tape.recorded_ops().size();
  Tensor b;
  {
    auto pause = tape.stop_recording();
    b = x * x;
    CHECK(tape.recorded_ops().size() == before);
  }
  CHECK(tape.recorded_ops().size() == before);
  CHECK_FALSE(tape.gradient(b, x).defined());
  // recording resumes after the scope
  const Tensor c = x * x + b;
  CHECK(close(tape.gradient(c, x), {2, 4}));
  CHECK(close(tape.gradient(a, x), {2, 2}));
}

TEST_CASE("tape: stop_gradient cuts the graph", "[tape]") {
  const Tensor x = tensor({1.0, 3.0});
  GradientTape tape;
  tape.watch(x);
  const Tensor y = x * stop_gradient(x);  // d/dx = stop_gradient(x) = x, not 2x
  CHECK(close(y, {1, 9}));
  CHECK(close(tape.gradient(y, x), {1, 3}));
  CHECK_FALSE(stop_gradient(Tensor()).defined());
}

TEST_CASE("tape: stop_recording() pauses one tape, not the others", "[tape]") {
  const Tensor x = tensor({2.0});
  GradientTape outer(true), inner(true);
  outer.watch(x);
  inner.watch(x);
  Tensor y;
  {
    auto pause = inner.stop_recording();
    y = x * x;
  }
  CHECK(inner.recorded_ops().empty());
  CHECK(outer.recorded_ops().size() == 1);
  CHECK_FALSE(inner.gradient(y, x).defined());
  CHECK(close(outer.gradient(y, x), {4}));
}

// ------------------------------------------------------------------ higher order

TEST_CASE("tape: nested tapes give the second derivative of x^3 at 2: 12 and 12", "[tape][nested]") {
  SECTION("x ** 3 (pow_scalar)") {
    const Tensor x = scalar(2.0, kFloat64);
    GradientTape outer;
    outer.watch(x);
    Tensor dy_dx;
    {
      GradientTape inner;
      inner.watch(x);
      const Tensor y = pow(x, 3.0);
      dy_dx = inner.gradient(y, x);
    }
    CHECK(dy_dx.item<double>() == Approx(12.0));  // 3x^2
    const Tensor d2y_dx2 = outer.gradient(dy_dx, x);
    REQUIRE(d2y_dx2.defined());
    CHECK(d2y_dx2.item<double>() == Approx(12.0));  // 6x
  }
  SECTION("x * x * x with a Variable") {
    Variable x(scalar(2.0, kFloat64), "x");
    GradientTape outer;
    Tensor dy_dx;
    {
      GradientTape inner;
      dy_dx = inner.gradient(x * x * x, x);
    }
    CHECK(dy_dx.item<double>() == Approx(12.0));
    CHECK(outer.gradient(dy_dx, x).item<double>() == Approx(12.0));
  }
  SECTION("third derivative with three tapes") {
    const Tensor x = scalar(2.0, kFloat64);
    GradientTape t3;
    t3.watch(x);
    Tensor d2;
    {
      GradientTape t2;
      t2.watch(x);
      Tensor d1;
      {
        GradientTape t1;
        t1.watch(x);
        d1 = t1.gradient(pow(x, 3.0), x);
      }
      d2 = t2.gradient(d1, x);
    }
    CHECK(d2.item<double>() == Approx(12.0));
    CHECK(t3.gradient(d2, x).item<double>() == Approx(6.0));
  }
}

TEST_CASE("tape: the jacobian of a gradient is the hessian", "[tape][nested][jacobian]") {
  // f = sum(x^3) + x0 * x1: H = diag(6 x) + [[0, 1], [1, 0]]
  const Tensor x = tensor({1.0, 2.0});
  GradientTape outer;
  outer.watch(x);
  Tensor g;
  {
    GradientTape inner;
    inner.watch(x);
    const Tensor f = sum(pow(x, 3.0)) + x[0] * x[1];
    g = inner.gradient(f, x);
  }
  CHECK(close(g, {3 + 2, 12 + 1}));
  const Tensor h = outer.jacobian(g, x);
  REQUIRE(h.shape() == Shape{2, 2});
  CHECK(close(h, {6, 1, 1, 12}));
}

TEST_CASE("tape: jacobian of y = x * w element-wise is diag(w)", "[tape][jacobian]") {
  const Tensor x = tensor({1.0, 2.0, 3.0}), w = tensor({4.0, 5.0, 6.0});
  GradientTape tape;
  tape.watch(x);
  const Tensor y = x * w;
  const Tensor j = tape.jacobian(y, x);
  REQUIRE(j.defined());
  CHECK(j.shape() == Shape{3, 3});
  CHECK(close(j, {4, 0, 0, 0, 5, 0, 0, 0, 6}));
}

TEST_CASE("tape: jacobian of a matmul against hand values", "[tape][jacobian]") {
  // y = x @ W, x [2, 3], W [3, 2]: dy[i, j] / dW[k, l] = x[i, k] * (j == l)
  const Tensor x = tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3});
  const Tensor W = tensor({0.5, -1.0, 2.0, 0.0, 1.0, 3.0}, {3, 2});
  GradientTape tape(true);
  tape.watch(x);
  tape.watch(W);
  const Tensor y = matmul(x, W);
  const Tensor jw = tape.jacobian(y, W);
  REQUIRE(jw.defined());
  REQUIRE(jw.shape() == Shape{2, 2, 3, 2});
  std::vector<double> expected_w;
  const std::vector<double> xv = values(x), wv = values(W);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 3; ++k)
        for (int l = 0; l < 2; ++l) expected_w.push_back(j == l ? xv[i * 3 + k] : 0.0);
  CHECK(close(jw, expected_w));
  // dy[i, j] / dx[k, m] = W[m, j] * (i == k)
  const Tensor jx = tape.jacobian(y, x);
  REQUIRE(jx.shape() == Shape{2, 2, 2, 3});
  std::vector<double> expected_x;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 2; ++k)
        for (int m = 0; m < 3; ++m) expected_x.push_back(i == k ? wv[m * 2 + j] : 0.0);
  CHECK(close(jx, expected_x));
  // a matrix times a vector: the jacobian is the matrix
  const Tensor v = tensor({1.0, -2.0});
  tape.watch(v);
  const Tensor mv = matmul(W, v);
  CHECK(close(tape.jacobian(mv, v), wv));
}

TEST_CASE("tape: the jacobian of an empty target is empty, [0, source...]", "[tape][jacobian]") {
  const Tensor x = tensor({1.0, 2.0, 3.0});
  GradientTape tape(true);
  tape.watch(x);
  const Tensor y = (x * 2.0)(Slice(0, 0));  // [0]
  const Tensor j = tape.jacobian(y, x);
  REQUIRE(j.defined());
  CHECK(j.shape() == Shape{0, 3});
  CHECK(j.dtype() == kFloat64);
  CHECK(tape.jacobian(zeros({0, 2}, kFloat64), x).shape() == Shape{0, 2, 3});  // not even connected
}

TEST_CASE("tape: jacobian of a scalar target is its gradient", "[tape][jacobian]") {
  const Tensor x = tensor({1.0, 2.0, 3.0});
  GradientTape tape;
  tape.watch(x);
  const Tensor y = sum(x * x);
  const Tensor j = tape.jacobian(y, x);
  REQUIRE(j.shape() == Shape{3});
  CHECK(close(j, {2, 4, 6}));
}

TEST_CASE("tape: jacobian of an unconnected target", "[tape][jacobian]") {
  const Tensor x = tensor({1.0, 2.0}), z = tensor({3.0});
  GradientTape tape(true);
  tape.watch(x);
  tape.watch(z);
  const Tensor y = x * 2.0;
  CHECK_FALSE(tape.jacobian(y, z).defined());
  const Tensor j0 = tape.jacobian(y, z, UnconnectedGradients::Zero);
  REQUIRE(j0.defined());
  CHECK(j0.shape() == Shape{2, 1});
  CHECK(close(j0, {0, 0}));
}

TEST_CASE("tape: batch_jacobian", "[tape][jacobian]") {
  const Tensor x = tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3});
  const Tensor W = tensor({0.5, -1.0, 2.0, 0.0, 1.0, 3.0}, {3, 2});
  GradientTape tape(true);
  tape.watch(x);
  // y = x * x: example b's jacobian is diag(2 x[b])
  const Tensor sq = x * x;
  const Tensor j = tape.batch_jacobian(sq, x);
  REQUIRE(j.shape() == Shape{2, 3, 3});
  CHECK(close(j, {2, 0, 0, 0, 4, 0, 0, 0, 6, 8, 0, 0, 0, 10, 0, 0, 0, 12}));
  // y = x @ W: every example's jacobian is W^T [2, 3]
  const Tensor y = matmul(x, W);
  const Tensor jw = tape.batch_jacobian(y, x);
  REQUIRE(jw.shape() == Shape{2, 2, 3});
  CHECK(close(jw, {0.5, 2.0, 1.0, -1.0, 0.0, 3.0, 0.5, 2.0, 1.0, -1.0, 0.0, 3.0}));
  // the batch axes must agree
  CHECK_THROWS_AS(tape.batch_jacobian(y(Slice(0, 1)), x), ShapeError);
  CHECK_THROWS_AS(tape.batch_jacobian(sum(y), x), ShapeError);
}

// ------------------------------------------------------------------ safety

TEST_CASE("tape: a saved tensor changed in place makes gradient() fail naming the op", "[tape][safety]") {
  Variable x(scalar(3.0), "x");
  GradientTape tape;
  const Tensor y = x * x;  // mul saves x
  x.assign_add(1.0);
  CHECK_THROWS_AS(tape.gradient(y, x), ValueError);
  GradientTape t2;
  const Tensor y2 = x * x;
  x.assign_sub(1.0);
  const std::string msg = error_message([&] { t2.gradient(y2, x); });
  CHECK_THAT(msg, Contains("mul") && Contains("in place"));
}

TEST_CASE("tape: an in-place change to a tensor no rule saved is fine", "[tape][safety]") {
  // exp saves its output, not its input: changing the input afterwards does not matter
  Variable x(tensor({0.f, 1.f}), "x");
  GradientTape tape;
  const Tensor y = exp(x);
  x.assign_add(1.0);
  CHECK(close(tape.gradient(y, x), {1, std::exp(1.0)}, 1e-5));
}

TEST_CASE("tape: an in-place change to a saved output is detected too, naming its op", "[tape][safety]") {
  const Tensor x = tensor({0.f, 1.f});
  GradientTape tape;
  tape.watch(x);
  Tensor y = exp(x);
  const Tensor z = y + 2.0;  // add saves nothing: only exp's saved output is stale
  stop_gradient(y).mul_(3.0);  // a handle no tape has seen may be written; the saved y is stale
  CHECK_THAT(error_message([&] { tape.gradient(z, x); }), Contains("exp"));
}

TEST_CASE("tape: an in-place write into a tensor the tape records is refused", "[tape][safety]") {
  // y = 2x then y *= 3 in place: the tape never sees the *3, so d(y*y)/dx would be 24, not 72
  Tensor x = scalar(1.0);
  GradientTape tape(true);
  tape.watch(x);
  Tensor y = x * 2.0;
  const std::string msg = error_message([&] { y.mul_(3.0); });
  CHECK_THAT(msg, Contains("mul_") && Contains("GradientTape is recording"));
  CHECK(y.item<double>() == 2.0);  // refused before anything was written
  CHECK(close(tape.gradient(y * y, x), {8}));
  // through a view: the slice was recorded, so writing into it is refused too
  const Tensor a = tensor({1.0, 2.0, 3.0});
  tape.watch(a);
  Tensor b = a * 1.0;
  CHECK_THROWS_AS(b(Slice(0, 1)).assign(scalar(10.0)), ValueError);
  CHECK_THROWS_AS(x.assign(scalar(5.0)), ValueError);  // a watched constant too (PyTorch: a leaf)
  CHECK(close(tape.gradient(sum(b * b), a), {2, 4, 6}));
  // a Variable and a view of one may be updated (not differentiable; saved values are versioned)
  Variable w(tensor({1.f, 2.f}), "w");
  const Tensor wy = w * 2.0;
  w.assign_sub(tensor({1.f, 1.f}));
  w(Slice(0, 1)).assign(scalar(7.0));
  CHECK(close(w, {7, 1}));
  CHECK(close(tape.gradient(sum(wy), w), {2, 2}));
  // a result no tape recorded may be written
  {
    NoRecording off;
    Tensor fresh = x * 3.0;  // not recorded
    fresh.add_(1.0);
    CHECK(fresh.item<double>() == 4.0);
  }
}

TEST_CASE("tape: a non-persistent tape whose gradient() is done allows in-place writes", "[tape][safety]") {
  const Tensor x = scalar(1.0);
  GradientTape once;
  once.watch(x);
  Tensor y = x * 2.0;
  CHECK(close(once.gradient(y, x), {2}));
  y.add_(1.0);
  CHECK(y.item<double>() == 3.0);
}

TEST_CASE("tape: a tape created or destroyed inside NoRecording does not turn recording back on",
          "[tape][safety]") {
  const Tensor x = scalar(2.0);
  GradientTape outer;
  outer.watch(x);
  Tensor y, z;
  {
    NoRecording off;
    { GradientTape passing; }
    y = x * 5.0;  // not recorded on outer
    GradientTape inner;  // created inside: records, as inside TensorFlow's stop_recording()
    inner.watch(x);
    z = x * 7.0;
    CHECK(close(inner.gradient(z, x), {7}));
  }
  CHECK(outer.recorded_ops().empty());
  const Tensor w = x * 3.0;  // after the scope, outer records again
  CHECK(outer.recorded_ops().size() == 1);
  CHECK_FALSE(outer.gradient(y, x).defined());
}

TEST_CASE("tape: a custom op's forward is not recorded, even when it uses a tape of its own", "[tape][custom]") {
  const Tensor v = tensor({1.0, 2.0});
  GradientTape outer(true);
  outer.watch(v);
  const Tensor y = custom_op(
      "inner_grad", {v},
      [](const std::vector<Tensor>& in) {
        GradientTape t;  // records inside the forward
        t.watch(in[0]);
        const Tensor g = t.gradient(sum(in[0] * in[0] * in[0]), in[0]);  // 3 v^2
        return g + in[0];
      },
      [](const std::vector<Tensor>&, const Tensor&, const Tensor& g) { return std::vector<Tensor>{g * 2.0}; });
  CHECK(close(y, {4, 14}));
  REQUIRE(outer.recorded_ops().size() == 1);
  CHECK(outer.recorded_ops()[0].name == "inner_grad");
  CHECK(close(outer.gradient(sum(y), v), {2, 2}));
}

TEST_CASE("tape: a tape destroyed on another thread leaves its thread's list", "[tape][threads]") {
  auto tape = std::make_unique<GradientTape>();
  const Tensor x = scalar(1.0);
  tape->watch(x);
  std::thread([&] { tape.reset(); }).join();
  const Tensor z = x * 3.0;  // used to write through the freed tape
  CHECK(z.item<double>() == 3.0);
  GradientTape next;  // the thread's tapes still work
  next.watch(x);
  CHECK(close(next.gradient(x * 4.0, x), {4}));
  // and a tape whose thread ended first can still be destroyed
  std::unique_ptr<GradientTape> orphan;
  std::thread([&] { orphan = std::make_unique<GradientTape>(); }).join();
  orphan.reset();
}

TEST_CASE("tape: an in-place change through another view of the storage is detected", "[tape][safety]") {
  Variable x(tensor({1.f, 2.f, 3.f}), "x");
  GradientTape tape;
  const Tensor head = x(Slice(0, 2));  // a view sharing x's storage
  const Tensor y = head * head;        // mul saves the view
  x.assign(tensor({5.f, 5.f, 5.f}));
  CHECK_THAT(error_message([&] { tape.gradient(y, x); }), Contains("mul") && Contains("[2]"));
}

TEST_CASE("tape: check_numerics names the op that produced NaN or Inf, forward", "[tape][numerics]") {
  const Tensor x = tensor({0.f, 1.f});
  {
    CheckNumerics check;
    CHECK_THROWS_AS(log(x - 1.0), ValueError);
    CHECK_THAT(error_message([&] { log(x - 1.0); }), Contains("log"));
    CHECK_NOTHROW(log(x + 1.0));
  }
  // off again after the scope, and off by default
  Tensor nan;
  CHECK_NOTHROW(nan = log(x - 1.0));
  CHECK(std::isnan(values(nan)[0]));
}

TEST_CASE("tape: check_numerics with a tape recording, forward", "[tape][numerics]") {
  const Tensor x = tensor({0.f, 1.f});
  GradientTape tape;
  tape.watch(x);
  CheckNumerics check;
  CHECK_THAT(error_message([&] { div(scalar(1.0), x); }), Contains("div"));
}

TEST_CASE("tape: check_numerics names the op whose gradient is NaN or Inf, backward", "[tape][numerics]") {
  // sqrt(0) = 0 is finite, its gradient 0.5 / sqrt(0) is not
  const Tensor x = tensor({0.f, 4.f});
  {
    GradientTape tape;
    tape.watch(x);
    const Tensor y = sqrt(x) * 2.0;
    CheckNumerics check;
    const std::string msg = error_message([&] { tape.gradient(y, x); });
    CHECK_FALSE(msg.empty());
    CHECK_THAT(msg, Contains("sqrt"));
  }
  {
    // a NaN seeded through output_gradients reaches the rule of add unchanged
    GradientTape tape;
    tape.watch(x);
    const Tensor y = x + 1.0;
    CheckNumerics check;
    const std::string msg = error_message([&] { tape.gradient(y, x, tensor({std::nanf(""), 1.f})); });
    CHECK_THAT(msg, Contains("add"));
  }
  {
    // off: the same gradient is computed, with its Inf
    GradientTape tape;
    tape.watch(x);
    const Tensor y = sqrt(x);
    Tensor g;
    CHECK_NOTHROW(g = tape.gradient(y, x));
    CHECK(std::isinf(values(g)[0]));
    CHECK(values(g)[1] == Approx(0.25));
  }
}

TEST_CASE("tape: watching an integer or bool tensor is a DTypeError", "[tape][safety]") {
  GradientTape tape;
  CHECK_THROWS_AS(tape.watch(arange(3)), DTypeError);
  CHECK_THAT(error_message([&] { tape.watch(arange(3)); }), Contains("int64") && Contains("watch"));
  CHECK_THROWS_AS(tape.watch(tensor<bool>({true, false})), DTypeError);
  CHECK_THROWS_AS(tape.watch(tensor<std::int32_t>({1, 2})), DTypeError);
  CHECK_THROWS_AS(tape.watch(Tensor()), ValueError);
}

TEST_CASE("tape: integer and bool results are not differentiable", "[tape]") {
  const Tensor x = tensor({1.5, -2.0, 3.0});
  GradientTape tape(true);
  tape.watch(x);
  const Tensor idx = argmax(x, 0);
  const Tensor mask = x > 0.0;
  CHECK(idx.dtype() == kInt64);
  CHECK(mask.dtype() == kBool);
  for (const auto& op : tape.recorded_ops()) {
    CHECK(op.name != "argmax");
    CHECK(op.name != "greater");
  }
  // a float computed through a cast of a bool has no gradient path to x
  const Tensor y = mask.astype(kFloat64) * 3.0;
  CHECK_FALSE(tape.gradient(y, x).defined());
}

// ------------------------------------------------------------------ memory

TEST_CASE("tape: after a non-persistent gradient() everything the tape saved is released", "[tape][memory]") {
  const std::size_t baseline = memory_stats().live_buffers;
  {
    GradientTape tape;
    {
      const Tensor x = tensor({0.5, 1.0, 1.5, 2.0});
      tape.watch(x);
      const Tensor y = sum(exp(x) * tanh(x) / (x + 1.0));
      CHECK(tape.saved_tensor_count() > 0);
      const Tensor g = tape.gradient(y, x);
      CHECK(g.defined());
      CHECK(tape.saved_tensor_count() == 0);
    }
    // our own handles are gone: nothing is kept alive by the (still living) tape
    CHECK(memory_stats().live_buffers == baseline);
  }
  CHECK(memory_stats().live_buffers == baseline);
}

TEST_CASE("tape: a persistent tape keeps what it saved until reset", "[tape][memory]") {
  const std::size_t baseline = memory_stats().live_buffers;
  {
    GradientTape tape(true);
    {
      const Tensor x = tensor({0.5, 1.0, 1.5});
      tape.watch(x);
      const Tensor y = sum(exp(x) * x);
      CHECK(tape.gradient(y, x).defined());
      CHECK(tape.gradient(y, x).defined());
    }
    CHECK(tape.saved_tensor_count() > 0);
    CHECK(memory_stats().live_buffers > baseline);
    tape.reset();
    CHECK(tape.saved_tensor_count() == 0);
    CHECK(memory_stats().live_buffers == baseline);
  }
  CHECK(memory_stats().live_buffers == baseline);
}

TEST_CASE("tape: a tape saves only what the rules need", "[tape][memory]") {
  const Tensor x = tensor({1.0, 2.0});
  GradientTape tape;
  tape.watch(x);
  const Tensor y = -(x + 1.0);  // add and neg need nothing saved
  CHECK(tape.recorded_ops().size() == 2);
  CHECK(tape.saved_tensor_count() == 0);
  const Tensor z = exp(y);  // exp saves its output
  CHECK(tape.saved_tensor_count() == 1);
  CHECK(close(tape.gradient(z, x), {-std::exp(-2.0), -std::exp(-3.0)}));
}

TEST_CASE("tape: an input only the other input's gradient reads is saved only when that one needs it",
          "[tape][memory]") {
  // y = sum(x @ w): dw = x^T @ g reads x; dx would read w, but the constant x needs none
  const Tensor x = tensor({1.0, 2.0, 3.0, 4.0}, {2, 2});
  Variable w(tensor({0.5, -1.0, 2.0, 0.25}, {2, 2}), "w");
  GradientTape tape;
  const Tensor y = sum(matmul(x, w));
  CHECK(tape.saved_tensor_count() == 1);
  w.assign_sub(tensor({1.0, 1.0, 1.0, 1.0}, {2, 2}));  // an optimizer step before gradient(): w was not saved
  CHECK(close(tape.gradient(y, w), {4, 4, 6, 6}));  // x^T @ ones
  // with both inputs watched, both are saved
  GradientTape both;
  both.watch(x);
  const Tensor z = sum(x * w);
  CHECK(both.saved_tensor_count() == 2);
  const std::vector<Tensor> g = both.gradient(z, std::vector<Tensor>{x, w});
  CHECK(close(g[0], values(w)));
  CHECK(close(g[1], values(x)));
}

TEST_CASE("tape: a tape made after another was destroyed starts empty, with its own options", "[tape]") {
  // (the engine reuses a destroyed tape's arrays for the next tape of the thread)
  const Tensor x = tensor({1.0, 2.0});
  Variable v(tensor({3.0}), "v");
  {
    GradientTape first(true);
    first.watch(x);
    const Tensor y = sum(x * x * v);
    CHECK(first.gradient(y, x).defined());
    CHECK(first.gradient(y, x).defined());  // persistent
    CHECK(first.watched_variables().size() == 1);
  }
  GradientTape second;
  CHECK(second.recorded_ops().empty());
  CHECK(second.watched_variables().empty());
  CHECK(second.saved_tensor_count() == 0);
  const Tensor y = sum(x * x);
  CHECK(second.recorded_ops().empty());  // x is not watched by this tape
  CHECK_FALSE(second.gradient(y, x).defined());
  CHECK_THROWS_AS(second.gradient(y, x), ValueError);  // not persistent: one call only
  {
    GradientTape third;
    third.watch(x);
    const Tensor z = sum(x * 3.0);
    CHECK(close(third.gradient(z, x), {3, 3}));
  }
}

TEST_CASE("tape: a long chain with many watched tensors records and differentiates every op", "[tape][memory]") {
  // past the tape's first arrays and its id table's first growths: y = (...(x * c + w0) * c + w1 ...) * c + w(n-1)
  const int n = 1500;
  const double c = 1.001;
  const Tensor x = tensor({0.5, -1.0});
  std::vector<Tensor> ws;
  for (int i = 0; i < n; ++i) ws.push_back(tensor({0.01 * i, -0.02 * i}));
  GradientTape tape;
  tape.watch(x);
  tape.watch(ws);
  Tensor y = x;
  for (int i = 0; i < n; ++i) y = y * c + ws[static_cast<std::size_t>(i)];
  CHECK(tape.recorded_ops().size() == 2 * static_cast<std::size_t>(n));
  CHECK(tape.saved_tensor_count() == static_cast<std::size_t>(n));  // mul saves the constant c only
  std::vector<Tensor> sources = ws;
  sources.insert(sources.begin(), x);
  const std::vector<Tensor> g = tape.gradient(y, sources);
  REQUIRE(g.size() == sources.size());
  // dy/dx = c^n; dy/dw_i = c^(n-1-i)
  CHECK(close(g[0], {std::pow(c, n), std::pow(c, n)}, 1e-9));
  bool all = true;
  for (int i = 0; i < n; ++i) {
    const double d = std::pow(c, n - 1 - i);
    all = all && close(g[static_cast<std::size_t>(i) + 1], {d, d}, 1e-9);
  }
  CHECK(all);
}

// ------------------------------------------------------------------ inspection

TEST_CASE("tape: recorded_ops lists the ops and to_dot draws them", "[tape][inspect]") {
  const Tensor x = tensor({1.0, 2.0}), w = tensor({3.0, 4.0});
  GradientTape tape;
  tape.watch(x);
  const Tensor y = sum(exp(x) * w);
  const auto ops = tape.recorded_ops();
  REQUIRE(ops.size() == 3);
  CHECK(ops[0].name == "exp");
  CHECK(ops[1].name == "mul");
  CHECK(ops[2].name == "sum");
  CHECK(ops[0].inputs.size() == 1);
  CHECK(ops[0].inputs[0] == x.id());
  CHECK(ops[0].input_shapes[0] == Shape{2});
  CHECK(ops[1].inputs.size() == 2);
  CHECK(ops[1].inputs[0] == ops[0].output);
  CHECK(ops[2].output == y.id());
  CHECK(ops[2].output_shape == Shape{});
  const std::string dot = tape.to_dot();
  CHECK_THAT(dot, Contains("digraph") && Contains("exp") && Contains("mul") && Contains("sum") && Contains("->"));
  CHECK(dot.back() == '\n');
}

// ------------------------------------------------------------------ custom ops

namespace {

// forward x * x + 1, computed with a raw loop (not with tensor ops); backward 2 x g.
Tensor square_plus(const Tensor& x) {
  return custom_op(
      "square_plus", {x},
      [](const std::vector<Tensor>& in) {
        Tensor out = in[0].astype(kFloat64).clone();
        double* p = out.data<double>();
        for (std::int64_t i = 0; i < out.size(); ++i) p[i] = p[i] * p[i] + 1.0;
        return out.astype(in[0].dtype());
      },
      [](const std::vector<Tensor>& in, const Tensor&, const Tensor& g) {
        return std::vector<Tensor>{2.0 * in[0] * g};
      });
}

}  // namespace

TEST_CASE("tape: the derivative of x^0 is 0, also at x = 0 (as PyTorch)", "[tape][rules]") {
  const Tensor x = tensor({0.0, 2.0});
  GradientTape t3(true), t2(true), t1(true);
  t3.watch(x);
  t2.watch(x);
  t1.watch(x);
  CHECK(close(t1.gradient(sum(pow(x, 0.0)), x), {0, 0}));
  CHECK(close(t1.gradient(sum(pow(x, zeros({2}, kFloat64))), x), {0, 0}));
  // x^2: 2x, 2, then 0 (0 * x^-1 would be NaN at x = 0)
  const Tensor d1 = t1.gradient(sum(pow(x, 2.0)), x);
  const Tensor d2 = t2.gradient(sum(d1), x);
  const Tensor d3 = t3.gradient(sum(d2), x);
  CHECK(close(d1, {0, 4}));
  CHECK(close(d2, {2, 2}));
  CHECK(close(d3, {0, 0}));
}

TEST_CASE("tape: a custom op with its own gradient", "[tape][custom]") {
  const Tensor x = tensor({1.0, -2.0, 3.0});
  GradientTape tape;
  tape.watch(x);
  const Tensor y = square_plus(x);
  CHECK(close(y, {2, 5, 10}));
  const auto ops = tape.recorded_ops();
  REQUIRE(ops.size() == 1);  // the inside of the forward is not recorded
  CHECK(ops[0].name == "square_plus");
  CHECK_THAT(tape.to_dot(), Contains("square_plus"));
  CHECK(close(tape.gradient(y, x, tensor({1.0, 2.0, 3.0})), {2, -8, 18}));
}

TEST_CASE("tape: a custom op's wrong-shaped gradient or undefined input is an error naming it", "[tape][custom]") {
  const Tensor x = tensor({1.0, 2.0, 3.0});
  GradientTape tape(true);
  tape.watch(x);
  const Tensor y = custom_op(
      "bad_grad", {x}, [](const std::vector<Tensor>& in) { return in[0] * 2.0; },
      [](const std::vector<Tensor>&, const Tensor&, const Tensor&) { return std::vector<Tensor>{ones({2}, kFloat64)}; });
  const std::string msg = error_message([&] { tape.gradient(sum(y), x); });
  CHECK_THAT(msg, Contains("bad_grad") && Contains("[2]") && Contains("input 0") && Contains("[3]"));
  CHECK_THROWS_AS(tape.gradient(sum(y), x), ShapeError);
  const std::string undefined = error_message([&] {
    custom_op("needs_two", {x, Tensor()}, [](const std::vector<Tensor>& in) { return in[0]; },
              [](const std::vector<Tensor>&, const Tensor&, const Tensor& g) { return std::vector<Tensor>{g, g}; });
  });
  CHECK_THAT(undefined, Contains("needs_two") && Contains("input 1"));
}

TEST_CASE("tape: check_numerics checks a custom op's output", "[tape][custom][numerics]") {
  const Tensor x = tensor({-1.0, 4.0});
  CheckNumerics check;
  const std::string msg = error_message([&] {
    custom_op("root", {x}, [](const std::vector<Tensor>& in) { return sqrt(in[0]); },
              [](const std::vector<Tensor>&, const Tensor&, const Tensor& g) { return std::vector<Tensor>{g}; });
  });
  CHECK_THAT(msg, Contains("check_numerics") && Contains("root"));
}

TEST_CASE("tape: a custom op with 40 inputs gets every input in its gradient function", "[tape][custom]") {
  // forward: the product of the inputs; backward: d/dx_i = g * prod_{j != i} x_j from the saved inputs
  std::vector<Tensor> xs;
  for (int i = 0; i < 40; ++i) xs.push_back(tensor({1.0 + 0.01 * i}));
  GradientTape tape;
  tape.watch(xs);
  const Tensor y = custom_op(
      "product", xs,
      [](const std::vector<Tensor>& in) {
        Tensor p = in[0];
        for (std::size_t i = 1; i < in.size(); ++i) p = p * in[i];
        return p;
      },
      [](const std::vector<Tensor>& in, const Tensor&, const Tensor& g) {
        std::vector<Tensor> d;
        for (std::size_t i = 0; i < in.size(); ++i) {
          Tensor p = g;
          for (std::size_t j = 0; j < in.size(); ++j)
            if (j != i) p = p * in[j];  // an input the tape did not save would be undefined here
          d.push_back(p);
        }
        return d;
      });
  CHECK(tape.saved_tensor_count() == 41);  // every input and the output
  const std::vector<Tensor> g = tape.gradient(y, xs);
  REQUIRE(g.size() == 40);
  bool all = true;
  for (std::size_t i = 0; i < 40; ++i) {
    double expected = 1;
    for (std::size_t j = 0; j < 40; ++j)
      if (j != i) expected *= 1.0 + 0.01 * static_cast<double>(j);
    all = all && close(g[i], {expected}, 1e-9);
  }
  CHECK(all);
}

TEST_CASE("tape: the tape uses the custom rule, not the forward's ops", "[tape][custom]") {
  // the forward is x * x, the declared gradient is 100 g: a tape differentiating the forward
  // would give 2x
  const Tensor x = tensor({1.0, 2.0});
  GradientTape tape;
  tape.watch(x);
  const Tensor y = custom_op(
      "liar", {x}, [](const std::vector<Tensor>& in) { return in[0] * in[0]; },
      [](const std::vector<Tensor>&, const Tensor&, const Tensor& g) { return std::vector<Tensor>{g * 100.0}; });
  CHECK(close(y, {1, 4}));
  CHECK(close(tape.gradient(y, x), {100, 100}));
}

TEST_CASE("tape: custom op gradient sees the output, may skip inputs, and is differentiable", "[tape][custom]") {
  const Tensor a = tensor({1.0, 2.0}), b = tensor({3.0, 4.0});
  {
    // exp(a) * b with the backward written from the saved output; no gradient for b
    GradientTape tape;
    tape.watch(a);
    tape.watch(b);
    const Tensor y = custom_op(
        "exp_times", {a, b}, [](const std::vector<Tensor>& in) { return exp(in[0]) * in[1]; },
        [](const std::vector<Tensor>&, const Tensor& out, const Tensor& g) {
          return std::vector<Tensor>{out * g, Tensor()};
        });
    const auto g = tape.gradient(y, std::vector<Tensor>{a, b});
    CHECK(close(g[0], {3 * std::exp(1.0), 4 * std::exp(2.0)}));
    CHECK_FALSE(g[1].defined());
  }
  {
    // second derivative through the custom backward 2 x g: 2
    GradientTape outer;
    outer.watch(a);
    Tensor d1;
    {
      GradientTape inner;
      inner.watch(a);
      d1 = inner.gradient(square_plus(a), a);
    }
    CHECK(close(d1, {2, 4}));
    CHECK(close(outer.gradient(d1, a), {2, 2}));
  }
  {
    // a backward returning the wrong number of gradients is an error naming the op
    GradientTape tape;
    tape.watch(a);
    const Tensor y = custom_op(
        "bad_arity", {a}, [](const std::vector<Tensor>& in) { return in[0] * 2.0; },
        [](const std::vector<Tensor>&, const Tensor&, const Tensor& g) { return std::vector<Tensor>{g, g}; });
    CHECK_THAT(error_message([&] { tape.gradient(y, a); }), Contains("bad_arity"));
  }
  // no backward at all is rejected up front
  CHECK_THROWS_AS(custom_op("none", {a}, [](const std::vector<Tensor>& in) { return in[0]; }, CustomGradient()),
                  ValueError);
  // nor is an empty forward (it used to throw std::bad_function_call)
  CHECK_THROWS_WITH(custom_op("none", {a}, nullptr, [](const std::vector<Tensor>&, const Tensor&, const Tensor& g) {
                      return std::vector<Tensor>{g};
                    }),
                    "custom_op none: no forward function");
}

// ------------------------------------------------------------------ rules with a choice

TEST_CASE("tape: the gradient of max with ties is split evenly among the tied elements", "[tape][rules]") {
  // as TensorFlow's reduce_max and PyTorch's amax: the subgradient that treats ties alike
  const Tensor x = tensor({1.0, 3.0, 3.0, 2.0});
  {
    GradientTape tape;
    tape.watch(x);
    CHECK(close(tape.gradient(max(x), x), {0, 0.5, 0.5, 0}));
  }
  {
    const Tensor m = tensor({2.0, 1.0, 5.0, 1.0, 1.0});
    GradientTape tape;
    tape.watch(m);
    CHECK(close(tape.gradient(min(m), m), {0, 1.0 / 3, 0, 1.0 / 3, 1.0 / 3}));
  }
  {
    // along an axis, with keepdims: each row's maxima share that row's gradient
    const Tensor m = tensor({4.0, 4.0, 1.0, 0.0, 7.0, 6.0}, {2, 3});
    GradientTape tape;
    tape.watch(m);
    CHECK(close(tape.gradient(max(m, {1}, true), m, tensor({10.0, 20.0}, {2, 1})), {5, 5, 0, 0, 20, 0}));
  }
  {
    // an infinite output gradient reaches the maximum only: the others get 0, not 0 * inf
    const double inf = std::numeric_limits<double>::infinity();
    const Tensor m = tensor({4.0, 9.0, 1.0}, {3}, kFloat64);
    GradientTape tape;
    tape.watch(m);
    CHECK(tape.gradient(max(m), m, full({}, inf, kFloat64)).to_vector<double>() == std::vector<double>{0, inf, 0});
  }
  {
    // a NaN maximum: the group's NaNs share the gradient (as PyTorch's max()); other groups as usual
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const Tensor m = tensor({1.0, nan, 3.0, nan, /**/ 2.0, 2.0, -1.0, 0.0}, {2, 4}, kFloat64);
    GradientTape tape;
    tape.watch(m);
    const Tensor y = max(m, {1});
    CHECK(std::isnan(y.to_vector<double>()[0]));
    CHECK(tape.gradient(y, m).to_vector<double>() == std::vector<double>{0, 0.5, 0, 0.5, 0.5, 0.5, 0, 0});
  }
  {
    // maximum(a, b) on ties: the first operand (as TensorFlow; PyTorch splits it)
    const Tensor a = tensor({1.0, 2.0}), b = tensor({1.0, 3.0});
    GradientTape tape;
    tape.watch(a);
    tape.watch(b);
    const auto g = tape.gradient(maximum(a, b), std::vector<Tensor>{a, b});
    CHECK(close(g[0], {1, 0}));
    CHECK(close(g[1], {0, 1}));
  }
}

TEST_CASE("tape: max over several axes splits each group's gradient among its maxima", "[tape][rules]") {
  // x [2, 2, 3] (i, j, k), reduced over i and k: group j = 0 has 5 at (0,2) and (1,0), group
  // j = 1 has 8 at (1,1) and (1,2)
  const Tensor x = tensor({1.0, 2.0, 5.0, /**/ 0.0, 3.0, 3.0,  //
                           5.0, 4.0, 1.0, /**/ 7.0, 8.0, 8.0},
                          {2, 2, 3});
  const std::vector<double> want = {0, 0, 5, 0, 0, 0, 5, 0, 0, 0, 10, 10};
  for (const std::vector<std::int64_t>& axes : {std::vector<std::int64_t>{0, 2}, std::vector<std::int64_t>{2, 0},
                                                  std::vector<std::int64_t>{-1, 0}}) {
    INFO("axes " << axes[0] << ", " << axes[1]);
    GradientTape tape;
    tape.watch(x);
    CHECK(close(tape.gradient(max(x, axes), x, tensor({10.0, 20.0})), want));
    GradientTape tape_keep;  // keepdims: the same, through a [1, 2, 1] gradient
    tape_keep.watch(x);
    CHECK(close(tape_keep.gradient(max(x, axes, true), x, tensor({10.0, 20.0}, {1, 2, 1})), want));
  }
  // min over axis 1 of a [3, 2] view with ties
  const Tensor m = tensor({2.0, 2.0, 1.0, 0.0, 4.0, 4.0}, {3, 2});
  GradientTape tape;
  tape.watch(m);
  CHECK(close(tape.gradient(min(m, {1}), m, tensor({1.0, 2.0, 3.0})), {0.5, 0.5, 0, 2, 1.5, 1.5}));
  // second order: the split is linear in the incoming gradient; d/dm sum(d/dm sum(max^2)) is
  // d/dm sum(2 max) = 2 * the split
  GradientTape outer;
  outer.watch(m);
  Tensor g1;
  {
    GradientTape inner;
    inner.watch(m);
    g1 = inner.gradient(sum(max(m, {1}) * max(m, {1})), m);  // 2 * max * split
  }
  CHECK(close(g1, {2, 2, 2, 0, 4, 4}));
  CHECK(close(outer.gradient(g1, m), {1, 1, 2, 0, 1, 1}));
}

TEST_CASE("tape: the gradient of relu at 0 is 0", "[tape][rules]") {
  const Tensor x = tensor({-1.0, 0.0, 2.0});
  GradientTape tape;
  tape.watch(x);
  CHECK(close(tape.gradient(relu(x), x), {0, 0, 1}));
}

TEST_CASE("tape: the gradient of a broadcast op is summed back to each input's shape", "[tape][rules]") {
  const Tensor a = tensor({1.0, 2.0, 3.0}, {3, 1}), b = tensor({10.0, 20.0, 30.0, 40.0});
  {
    GradientTape tape;
    tape.watch(a);
    tape.watch(b);
    const Tensor y = a + b;  // [3, 4]
    REQUIRE(y.shape() == Shape{3, 4});
    const auto g = tape.gradient(y, std::vector<Tensor>{a, b});
    REQUIRE(g[0].shape() == Shape{3, 1});
    REQUIRE(g[1].shape() == Shape{4});
    CHECK(close(g[0], {4, 4, 4}));
    CHECK(close(g[1], {3, 3, 3, 3}));
  }
  {
    GradientTape tape;
    tape.watch(a);
    tape.watch(b);
    const auto g = tape.gradient(a * b, std::vector<Tensor>{a, b});
    CHECK(close(g[0], {100, 100, 100}));  // sum(b)
    CHECK(close(g[1], {6, 6, 6, 6}));     // sum(a)
  }
  {
    // [2, 3, 4] + [4]: a leading axis added, and a scalar
    const Tensor big = zeros({2, 3, 4}, kFloat64), s = scalar(1.0, kFloat64);
    GradientTape tape;
    tape.watch(b);
    tape.watch(s);
    const auto g = tape.gradient(big + b + s, std::vector<Tensor>{b, s});
    CHECK(close(g[0], {6, 6, 6, 6}));
    CHECK(g[1].shape() == Shape{});
    CHECK(close(g[1], {24}));
  }
  {
    // matmul with broadcast batch axes: [2, 3, 2] @ [2, 2] -> dW sums over the batch
    const Tensor x = ones({2, 3, 2}, kFloat64), W = tensor({1.0, 2.0, 3.0, 4.0}, {2, 2});
    GradientTape tape;
    tape.watch(W);
    const Tensor g = tape.gradient(matmul(x, W), W);
    REQUIRE(g.shape() == Shape{2, 2});
    CHECK(close(g, {6, 6, 6, 6}));
  }
}

TEST_CASE("tape: the gradient through a slice with a negative step", "[tape][rules]") {
  const Tensor x = tensor({0.0, 1.0, 2.0, 3.0, 4.0});
  GradientTape tape(true);
  tape.watch(x);
  const Tensor y = x(Slice(none, none, -2));  // x[4], x[2], x[0]
  CHECK(close(y, {4, 2, 0}));
  CHECK(close(tape.gradient(y, x, tensor({1.0, 2.0, 3.0})), {3, 0, 2, 0, 1}));
  const Tensor z = x(Slice(3, 0, -1));  // x[3], x[2], x[1]
  CHECK(close(tape.gradient(z, x, tensor({1.0, 2.0, 3.0})), {0, 3, 2, 1, 0}));
  // 2-D: a reversed column and an integer index
  const Tensor m = tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3});
  tape.watch(m);
  const Tensor col = m(Slice(none, none, -1), -1);  // m[1, 2], m[0, 2]
  CHECK(close(col, {6, 3}));
  CHECK(close(tape.gradient(col, m, tensor({10.0, 20.0})), {0, 0, 20, 0, 0, 10}));
}

TEST_CASE("tape: the gradient through take_along_axis accumulates duplicate indices", "[tape][rules]") {
  const Tensor x = tensor({1.0, 2.0, 3.0, 4.0});
  GradientTape tape(true);
  tape.watch(x);
  const Tensor y = take_along_axis(x, tensor<std::int64_t>({0, 2, 2, 2, 3}), 0);
  CHECK(close(y, {1, 3, 3, 3, 4}));
  CHECK(close(tape.gradient(y, x), {1, 0, 3, 1}));
  CHECK(close(tape.gradient(y, x, tensor({1.0, 10.0, 100.0, 1000.0, 5.0})), {1, 0, 1110, 5}));
  // 2-D, per row, and through gather's per-example values
  const Tensor m = tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3});
  tape.watch(m);
  const Tensor t = take_along_axis(m, tensor<std::int64_t>({1, 1, 0, 2}, {2, 2}), 1);
  CHECK(close(tape.gradient(t, m), {0, 2, 0, 1, 0, 1}));
  const Tensor g = gather(m, tensor<std::int64_t>({2, 0}));
  CHECK(close(g, {3, 4}));
  CHECK(close(tape.gradient(g, m), {0, 0, 1, 1, 0, 0}));
}

TEST_CASE("tape: views share storage but gradients flow through them", "[tape][rules]") {
  const Tensor x = tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3});
  GradientTape tape;
  tape.watch(x);
  const Tensor y = x.transpose().reshape({3, 2}).expand_dims(0).squeeze().flatten() * tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0});
  // y[k] = x^T flattened [1, 4, 2, 5, 3, 6] times k + 1
  CHECK(close(y, {1, 8, 6, 20, 15, 36}));
  CHECK(close(tape.gradient(y, x), {1, 3, 5, 2, 4, 6}));
}

// ---------------------------------------------------------------- slices' gradients in place
// gradient() adds a slice's gradient into its slice of the input's gradient in place (a buffer
// it allocated and owns), and takes the rule's functional path (slot + slice_scatter(g))
// wherever a tape records the backward pass. The cases run both and require the same values,
// exactly: the same sums in the same order.

namespace {

// fn's gradients with respect to xs, computed with no other tape (in place) or with an outer
// tape recording the backward pass (the functional path).
std::vector<Tensor> slice_grads(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                                const std::vector<Tensor>& xs, bool functional, const Tensor& seed = Tensor()) {
  std::unique_ptr<GradientTape> outer;
  if (functional) outer = std::make_unique<GradientTape>();
  GradientTape tape;
  tape.watch(xs);
  const Tensor y = fn(xs);
  return tape.gradient(y, xs, seed);
}

// fn's gradients both ways, required equal; returns the in-place ones.
std::vector<Tensor> same_both_ways(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                                   const std::vector<Tensor>& xs) {
  const std::vector<Tensor> fast = slice_grads(fn, xs, false), slow = slice_grads(fn, xs, true);
  REQUIRE(fast.size() == slow.size());
  for (std::size_t i = 0; i < fast.size(); ++i) {
    REQUIRE(fast[i].defined());
    CHECK(fast[i].shape() == slow[i].shape());
    CHECK(fast[i].dtype() == slow[i].dtype());
    CHECK(fast[i].device() == slow[i].device());
    CHECK(values(fast[i]) == values(slow[i]));
  }
  return fast;
}

// x [b, t, f] -> step t of it, [b, f], with take (a gather, no slice)
Tensor step_by_take(const Tensor& x, std::int64_t t) {
  return take(x, tensor<std::int64_t>({t}), 1).reshape({x.dim(0), x.dim(2)});
}

Tensor seq_input(DType dtype = kFloat64, Device device = Device::cpu()) {
  Generator gen(11);
  return normal({3, 6, 4}, gen, 0, 1, dtype, device);
}

}  // namespace

TEST_CASE("tape: a loop over x(all, t) has the gradient of the same loop over take()", "[tape][slice]") {
  const Tensor x = seq_input();
  // a sum of a function of every step, and a running product of neighbouring steps
  auto loop = [](const Tensor& x, auto step) {
    Tensor acc = tanh(step(x, 0)), prod = step(x, 0);
    for (std::int64_t t = 1; t < x.dim(1); ++t) {
      acc = acc + tanh(step(x, t)) * static_cast<double>(t);
      prod = prod * step(x, t) * 0.5 + step(x, t - 1);
    }
    return sum(acc) + sum(prod);
  };
  auto by_slice = [&](const std::vector<Tensor>& in) {
    return loop(in[0], [](const Tensor& x, std::int64_t t) { return x(all, t); });
  };
  const std::vector<Tensor> g = same_both_ways(by_slice, {x});
  const GradcheckResult r = gradcheck(by_slice, {x});  // with no other tape alive: in place
  INFO(r.message);
  CHECK(r.ok);
  GradientTape tape;
  tape.watch(x);
  const Tensor y = loop(x, step_by_take);
  CHECK(close(g[0], values(tape.gradient(y, x)), 1e-12));
}

TEST_CASE("tape: overlapping, strided and reversed slices, and x[i]", "[tape][slice]") {
  const Tensor x = tensor({1.0, -2.0, 3.0, 0.5, -1.5, 2.5, 4.0});
  const Tensor w = tensor({0.3, -0.7, 1.1, 0.2, -0.4, 0.9, 1.3});
  auto fn = [&](const std::vector<Tensor>& in) {
    const Tensor& v = in[0];
    return sum(v(Slice(0, 4)) * v(Slice(2, 6))) + sum(square(v(Slice(1, none, 2)))) +
           sum(v(Slice(none, none, -3)) * v(Slice(0, 3))) + v[3] * v[5] + sum(v(Slice(2, 2))) +
           sum(v * w);
  };
  const std::vector<Tensor> g = same_both_ways(fn, {x});
  // d/dv by hand: sum(v[0:4] * v[2:6]) gives v[i+2] to i and v[i-2] to i
  std::vector<double> expected(7, 0.0);
  const std::vector<double> v = values(x), wv = values(w);
  for (int i = 0; i < 4; ++i) {
    expected[i] += v[i + 2];
    expected[i + 2] += v[i];
  }
  for (int i = 1; i < 7; i += 2) expected[i] += 2 * v[i];
  const int rev[3] = {6, 3, 0};  // v[::-3]
  for (int i = 0; i < 3; ++i) {
    expected[rev[i]] += v[i];
    expected[i] += v[rev[i]];
  }
  expected[3] += v[5];
  expected[5] += v[3];
  for (int i = 0; i < 7; ++i) expected[i] += wv[i];
  CHECK(close(g[0], expected, 1e-12));
  CHECK(gradcheck(fn, {x}).ok);
}

TEST_CASE("tape: a slice and the whole tensor both used, in either order", "[tape][slice]") {
  const Tensor x = seq_input();
  // the whole tensor's gradient arrives between slices' (the slot is then a rule's result,
  // which is copied before a slice is added), before them and after them
  auto fn = [](const std::vector<Tensor>& in) {
    const Tensor& v = in[0];
    Tensor y = sum(v(all, 0) * 2.0) + sum(exp(v * 0.1));
    y = y + sum(square(v(all, 1))) + sum(v(all, 2));
    return y + sum(v * v(all, Slice(3, 4)));
  };
  same_both_ways(fn, {x});
  CHECK(gradcheck(fn, {x}).ok);
  // (each tape in its own scope: a tape alive and not paused records the next one's backward
  // pass, which then takes the functional path)
  {  // x itself a target beside a slice of it: its seed (ones) is not owned by gradient()
    GradientTape tape;
    tape.watch(x);
    const Tensor s = x(all, 2);
    const std::vector<Tensor> g = tape.gradient(std::vector<Tensor>{s, x}, {x});
    std::vector<double> expected(values(x).size(), 1.0);
    for (std::int64_t b = 0; b < 3; ++b)
      for (std::int64_t f = 0; f < 4; ++f) expected[static_cast<std::size_t>((b * 6 + 2) * 4 + f)] = 2.0;
    CHECK(close(g[0], expected, 0));
  }
  // add's rule returns its g for x: x's slot is then the very tensor returned as y's gradient,
  // which the later slices must not write into
  GradientTape tape2;
  tape2.watch(x);
  const Tensor head = x(all, 0), tail = x(all, 4);
  const Tensor y = x + 1.0;  // after the slices: its gradient reaches x first
  const Tensor loss = sum(y * y) + sum(head * 3.0) + sum(tail);
  const std::vector<Tensor> gy = tape2.gradient(loss, {x, y});
  CHECK(close(gy[1], values(2.0 * (x + 1.0)), 1e-12));
  const Tensor dx = 2.0 * (x + 1.0) + slice_scatter(full({3, 1, 4}, 3.0, kFloat64), x.shape(), {0, 0, 0}, {1, 1, 1}) +
                    slice_scatter(full({3, 1, 4}, 1.0, kFloat64), x.shape(), {0, 4, 0}, {1, 1, 1});
  CHECK(close(gy[0], values(dx), 1e-12));
}

TEST_CASE("tape: a slice of a slice, with the slice a source too", "[tape][slice]") {
  const Tensor x = seq_input();
  GradientTape tape(true);
  tape.watch(x);
  const Tensor s = x(Slice(1, 3), Slice(none, none, 2));  // [2, 3, 4]
  Tensor y = sum(s(0) * s(1));
  for (std::int64_t t = 0; t < 3; ++t) y = y + sum(tanh(s(all, t, Slice(1, 3))));
  y = y + sum(x(all, 1) * 3.0);
  const std::vector<Tensor> g = tape.gradient(y, {x, s});
  std::vector<Tensor> slow;
  {
    GradientTape outer;  // recording: the functional path
    slow = tape.gradient(y, {x, s});
  }
  CHECK(values(g[0]) == values(slow[0]));
  CHECK(values(g[1]) == values(slow[1]));
  // s's gradient, by hand; x's is s's placed at the slice, plus 3 at x(all, 1)
  const Tensor ds = concat({s(1).expand_dims(0), s(0).expand_dims(0)}, 0) +
                    concat({zeros({2, 3, 1}, kFloat64), 1.0 - square(tanh(s(all, all, Slice(1, 3)))),
                            zeros({2, 3, 1}, kFloat64)},
                           2);
  CHECK(close(g[1], values(ds), 1e-12));
  const Tensor dx = slice_scatter(ds, x.shape(), {1, 0, 0}, {1, 2, 1}) +
                    slice_scatter(full({3, 1, 4}, 3.0, kFloat64), x.shape(), {0, 1, 0}, {1, 1, 1});
  CHECK(close(g[0], values(dx), 1e-12));
}

TEST_CASE("tape: a persistent tape's slice gradients, twice, are fresh each time", "[tape][slice]") {
  const Tensor x = seq_input();
  GradientTape tape(true);
  tape.watch(x);
  Tensor y = sum(x(all, 0));
  for (std::int64_t t = 1; t < 6; ++t) y = y + sum(x(all, t) * static_cast<double>(t));
  const Tensor g1 = tape.gradient(y, x);
  const std::vector<double> before = values(g1);
  const std::uint64_t version = g1.version();
  const Tensor g2 = tape.gradient(y, x);
  CHECK(g1.storage() != g2.storage());
  CHECK(values(g1) == before);
  CHECK(g1.version() == version);  // not written after it was returned
  CHECK(values(g2) == before);
}

TEST_CASE("tape: a jacobian through slices", "[tape][slice]") {
  // one gradient() per output element, each with its own buffers
  const Tensor v = tensor({1.0, 2.0, 3.0});
  GradientTape jt(true);
  jt.watch(v);
  const Tensor out = v(Slice(0, 2)) * v(Slice(1, 3));
  CHECK(close(jt.jacobian(out, v), {2, 1, 0, 0, 3, 2}, 0));
}

TEST_CASE("tape: second derivatives through slices (nested tapes)", "[tape][slice]") {
  const Tensor x = seq_input();
  GradientTape outer;
  outer.watch(x);
  Tensor dx;
  {
    GradientTape inner;
    inner.watch(x);
    Tensor y = sum(x(all, 0) * x(all, 0) * x(all, 0));
    for (std::int64_t t = 1; t < 6; ++t) y = y + sum(x(all, t) * x(all, t) * x(all, t));
    dx = inner.gradient(y, x);  // 3 x^2, recorded by outer
  }
  CHECK(close(dx, values(3.0 * square(x)), 1e-12));
  // d/dx sum(dx * x(all, 0..)) = 6 x * ... : weight step t by t + 1
  Tensor z = sum(dx(all, 0));
  for (std::int64_t t = 1; t < 6; ++t) z = z + sum(dx(all, t)) * static_cast<double>(t + 1);
  const Tensor ddx = outer.gradient(z, x);
  const Tensor expected = 6.0 * x * arange(1.0, 7.0, 1.0, kFloat64).reshape({1, 6, 1});
  CHECK(close(ddx, values(expected), 1e-12));
}

TEST_CASE("tape: gradgradcheck through a loop over slices", "[tape][slice]") {
  const Tensor x = seq_input();
  auto fn = [](const std::vector<Tensor>& in) {
    const Tensor& v = in[0];
    Tensor y = v(all, 0) * v(all, 1);
    for (std::int64_t t = 2; t < 6; ++t) y = y + tanh(v(all, t)) * v(all, t - 2);
    return y;
  };
  const GradcheckResult r = gradgradcheck(fn, {x});
  INFO(r.message);
  CHECK(r.ok);
}

TEST_CASE("tape: a slice leaves the user's output_gradients unchanged", "[tape][slice]") {
  const Tensor x = seq_input();
  GradientTape tape(true);
  tape.watch(x);
  const Tensor s = x(all, 1);
  const Tensor w = full(s.shape(), 2.0, kFloat64), wx = full(x.shape(), 0.5, kFloat64);
  const std::vector<double> w_before = values(w), wx_before = values(wx);
  const std::uint64_t w_version = w.version(), wx_version = wx.version();
  // the seed of s reaches the slice's gradient as g; the seed of x (a target too) is x's slot
  const std::vector<Tensor> g = tape.gradient(std::vector<Tensor>{s, x, x(all, 3)}, {x}, {w, wx, Tensor()});
  CHECK(values(w) == w_before);
  CHECK(values(wx) == wx_before);
  CHECK(w.version() == w_version);
  CHECK(wx.version() == wx_version);
  CHECK(g[0].storage() != wx.storage());
  std::vector<double> expected(values(x).size(), 0.5);
  for (std::int64_t b = 0; b < 3; ++b)
    for (std::int64_t f = 0; f < 4; ++f) {
      expected[static_cast<std::size_t>((b * 6 + 1) * 4 + f)] += 2.0;
      expected[static_cast<std::size_t>((b * 6 + 3) * 4 + f)] += 1.0;
    }
  CHECK(close(g[0], expected, 0));
  // a slice's result as the seed's own target: gradient of x(Slice(0, 2)) with the user's seed
  const Tensor seed = full({2, 6, 4}, 3.0, kFloat64);
  const Tensor gs = tape.gradient(x(Slice(0, 2)), x, seed);
  CHECK(values(seed) == std::vector<double>(48, 3.0));
  CHECK(close(gs(Slice(0, 2)), std::vector<double>(48, 3.0), 0));
  CHECK(close(gs(2), std::vector<double>(24, 0.0), 0));
}

TEST_CASE("tape: slice gradients in float32, on every device, and under check_numerics", "[tape][slice]") {
  std::vector<Device> devices{Device::cpu()};
  if (cuda::is_available()) devices.push_back(Device::cuda(0));
  const Tensor x64 = seq_input();
  auto fn = [](const std::vector<Tensor>& in) {
    Tensor y = in[0](all, 0);
    for (std::int64_t t = 1; t < 6; ++t) y = y + sigmoid(in[0](all, t)) * in[0](all, t - 1);
    return sum(y) + sum(in[1] * in[0](all, Slice(1, 6, 2)));
  };
  const std::vector<Tensor> ref = slice_grads(fn, {x64, full({3, 3, 4}, 0.25, kFloat64)}, false);
  for (const Device& d : devices) {
    for (DType dt : {kFloat32, kFloat64}) {
      INFO(d.str() << " " << dtype_name(dt));
      const std::vector<Tensor> in{x64.astype(dt).to(d), full({3, 3, 4}, 0.25, dt, d)};
      const std::vector<Tensor> g = same_both_ways(fn, in);
      CHECK(g[0].device() == d);
      CHECK(g[0].dtype() == dt);
      CHECK(close(g[0].to(Device::cpu()), values(ref[0]), dt == kFloat32 ? 1e-5 : 1e-12));
      CHECK(close(g[1].to(Device::cpu()), values(ref[1]), dt == kFloat32 ? 1e-5 : 1e-12));
    }
    // a NaN gradient of a slice is named as the rule's was
    const Tensor x = x64.astype(kFloat32).to(d);
    GradientTape tape;
    tape.watch(x);
    const Tensor s = x(all, Slice(2, 3));  // a slice alone (x(all, 2) reshapes it too)
    CheckNumerics check;
    const std::string msg = error_message(
        [&] { tape.gradient(s, x, full(s.shape(), std::nan(""), kFloat32, d)); });
    CHECK_THAT(msg, Contains("gradient of slice"));
    CHECK_THAT(msg, Contains("[3, 6, 4]"));
  }
}
