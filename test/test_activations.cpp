// The activations (ops.hpp's elu ... mish and the expm1 / erf primitives): values and
// derivatives against the real Keras 3 in float64 (golden/activations_golden.hpp), the kinks and
// the overflow-prone ends worked out by hand, float64 gradchecks, every device, and the layers'
// activation names.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <string>

#include "golden/activations_golden.hpp"
#include "layer_test_util.hpp"
#include "tapeflow/tapeflow.hpp"

using namespace tapeflow;
using Catch::Matchers::Contains;

using lt::devices;

namespace {

using Fn = std::function<Tensor(const Tensor&)>;

struct Named {
  const char* name;  // as in the golden header
  Fn f;
};

const std::vector<Named>& functions() {
  static const std::vector<Named> fs = {
      {"elu", [](const Tensor& x) { return elu(x); }},
      {"elu_alpha_0_5", [](const Tensor& x) { return elu(x, 0.5); }},
      {"selu", [](const Tensor& x) { return selu(x); }},
      {"gelu", [](const Tensor& x) { return gelu(x); }},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, true); }},
      {"silu", [](const Tensor& x) { return silu(x); }},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x); }},
      {"leaky_relu_0_01", [](const Tensor& x) { return leaky_relu(x, 0.01); }},
      {"softplus", [](const Tensor& x) { return softplus(x); }},
      {"softsign", [](const Tensor& x) { return softsign(x); }},
      {"relu6", [](const Tensor& x) { return relu6(x); }},
      {"hard_sigmoid", [](const Tensor& x) { return hard_sigmoid(x); }},
      {"hard_silu", [](const Tensor& x) { return hard_silu(x); }},
      {"mish", [](const Tensor& x) { return mish(x); }},
      {"expm1", [](const Tensor& x) { return expm1(x); }},
      {"erf", [](const Tensor& x) { return erf(x); }},
  };
  return fs;
}

const activations_golden::Case* golden(const std::string& name) {
  for (const auto& c : activations_golden::kCases)
    if (name == c.name) return &c;
  return nullptr;
}

// f(x) and d sum(f(x)) / dx on x's device, read back as doubles.
std::pair<std::vector<double>, std::vector<double>> value_and_grad(const Fn& f, const Tensor& x) {
  GradientTape tape;
  tape.watch(x);
  const Tensor y = f(x);
  const Tensor g = tape.gradient(sum(y), x);
  CHECK(y.device() == x.device());
  CHECK(y.dtype() == x.dtype());
  return {y.astype(kFloat64).to_vector<double>(), g.astype(kFloat64).to_vector<double>()};
}

// The derivative of sum(f(x)) at the single point v, in float64.
double derivative_at(const Fn& f, double v) {
  const Tensor x = tensor({v}, {1}, kFloat64);
  GradientTape tape;
  tape.watch(x);
  return tape.gradient(sum(f(x)), x).item<double>();
}

}  // namespace

TEST_CASE("activations: values and derivatives match Keras 3 in float64 and float32, on every device",
          "[activations]") {
  using activations_golden::kN;
  using activations_golden::kX;
  if (!cuda::is_available()) WARN("CUDA half skipped: " << cuda::status());
  REQUIRE(functions().size() == std::size(activations_golden::kCases));
  for (const Device& d : devices()) {
    for (const auto& fn : functions()) {
      const auto* g = golden(fn.name);
      REQUIRE(g != nullptr);
      for (DType dt : {kFloat64, kFloat32}) {
        INFO(fn.name << " " << dtype_name(dt) << " on " << d.str());
        const Tensor x = tensor(std::vector<double>(kX, kX + kN), {kN}, kFloat64).astype(dt).to(d);
        const auto [y, dy] = value_and_grad(fn.f, x);
        // float64: a few ulps (the composites round a few times; elu's derivative far left is
        // expm1(x) + 1, as TensorFlow's, which cancels to 1e-16 absolute); float32: its rounding
        const double rel = dt == kFloat64 ? 1e-13 : 1e-5, abs = dt == kFloat64 ? 1e-16 : 1e-6;
        for (int i = 0; i < kN; ++i) {
          INFO("x = " << kX[i] << ": f " << y[i] << " (want " << g->y[i] << "), f' " << dy[i] << " (want " << g->dy[i]
                      << ")");
          CHECK(std::abs(y[i] - g->y[i]) <= abs + rel * std::abs(g->y[i]));
          CHECK(std::abs(dy[i] - g->dy[i]) <= abs + rel * std::abs(g->dy[i]));
        }
      }
    }
  }
}

TEST_CASE("activations: the derivative at a kink is TensorFlow's", "[activations]") {
  CHECK(derivative_at([](const Tensor& x) { return elu(x); }, 0.0) == 1.0);  // alpha
  CHECK(derivative_at([](const Tensor& x) { return elu(x, 0.5); }, 0.0) == 0.5);
  CHECK(derivative_at([](const Tensor& x) { return selu(x); }, 0.0) ==
        Approx(1.6732632423543772 * 1.0507009873554805).epsilon(1e-15));
  CHECK(derivative_at([](const Tensor& x) { return leaky_relu(x); }, 0.0) == 0.2);  // the slope
  CHECK(derivative_at([](const Tensor& x) { return leaky_relu(x, 0.01); }, 0.0) == 0.01);
  CHECK(derivative_at([](const Tensor& x) { return relu6(x); }, 0.0) == 0.0);  // (x > 0) & (x < 6)
  CHECK(derivative_at([](const Tensor& x) { return relu6(x); }, 6.0) == 0.0);
  CHECK(derivative_at([](const Tensor& x) { return relu6(x); }, 3.0) == 1.0);
  CHECK(derivative_at([](const Tensor& x) { return hard_sigmoid(x); }, -3.0) == 0.0);
  CHECK(derivative_at([](const Tensor& x) { return hard_sigmoid(x); }, 3.0) == 0.0);
  CHECK(derivative_at([](const Tensor& x) { return hard_sigmoid(x); }, 0.0) == Approx(1.0 / 6).epsilon(1e-15));
  CHECK(derivative_at([](const Tensor& x) { return hard_silu(x); }, -3.0) == 0.0);  // 0 + -3 * 0
  CHECK(derivative_at([](const Tensor& x) { return softsign(x); }, 0.0) == 1.0);
  CHECK(derivative_at([](const Tensor& x) { return softplus(x); }, 0.0) == 0.5);  // sigmoid(0)
  CHECK(derivative_at([](const Tensor& x) { return gelu(x); }, 0.0) == 0.5);
  CHECK(derivative_at([](const Tensor& x) { return gelu(x, true); }, 0.0) == 0.5);
  CHECK(derivative_at([](const Tensor& x) { return silu(x); }, 0.0) == 0.5);
  CHECK(derivative_at([](const Tensor& x) { return mish(x); }, 0.0) == Approx(std::tanh(std::log(2.0))).epsilon(1e-15));
}

TEST_CASE("activations: no overflow and no NaN gradient at the ends; NaN propagates", "[activations]") {
  const double inf = std::numeric_limits<double>::infinity();
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dtype_name(dt));
    // exp(1000) overflows; the branches where() drops are clamped, so their gradients stay 0
    const Tensor x = tensor({-1000.0, -100.0, 100.0, 1000.0}, {4}, kFloat64).astype(dt);
    for (const auto& fn : functions()) {
      const std::string name = fn.name;
      if (name == "expm1") continue;  // expm1(1000) is inf, as it should be
      INFO(name);
      const auto [y, dy] = value_and_grad(fn.f, x);
      for (std::size_t i = 0; i < y.size(); ++i) {
        INFO("element " << i);
        CHECK(std::isfinite(y[i]));
        CHECK(std::isfinite(dy[i]));
      }
    }
    const auto sp = softplus(x).astype(kFloat64).to_vector<double>();
    CHECK(sp[0] == 0.0);
    CHECK(sp[3] == 1000.0);
    const auto e = elu(x).astype(kFloat64).to_vector<double>();
    CHECK(e[0] == -1.0);
    CHECK(e[3] == 1000.0);
    const auto gl = gelu(x).astype(kFloat64).to_vector<double>();
    CHECK(gl[0] == 0.0);  // -1000 * P(X <= -1000), as Keras (-0 compares equal)
    CHECK(gl[3] == 1000.0);
    // infinities behave as the limits
    const Tensor infs = tensor({-inf, inf}, {2}, kFloat64).astype(dt);
    const auto ei = elu(infs).astype(kFloat64).to_vector<double>();
    CHECK(ei[0] == -1.0);
    CHECK(ei[1] == inf);
    const auto si = softplus(infs).astype(kFloat64).to_vector<double>();
    CHECK(si[0] == 0.0);
    CHECK(si[1] == inf);
    // NaN in, NaN out
    const Tensor nan = tensor({std::nan("")}, {1}, kFloat64).astype(dt);
    for (const auto& fn : functions()) {
      INFO(fn.name);
      CHECK(std::isnan(fn.f(nan).astype(kFloat64).item<double>()));
    }
  }
}

TEST_CASE("activations: expm1 and erf are exact near 0, as NumPy's and libm's", "[activations]") {
  const auto e = expm1(tensor({1e-10, 0.0, -1e-300}, {3}, kFloat64)).to_vector<double>();
  CHECK(e[0] == Approx(1e-10 + 5e-21).epsilon(1e-15));  // exp(1e-10) - 1 gives 1.000000082740371e-10
  CHECK(e[1] == 0.0);
  CHECK(e[2] == -1e-300);
  CHECK(expm1(tensor({1e-8f})).item<float>() == 1e-8f);
  const auto r = erf(tensor({0.0, 1e-300, 1.0, -1.0, 6.0}, {5}, kFloat64)).to_vector<double>();
  CHECK(r[0] == 0.0);
  CHECK(r[1] == Approx(2 / std::sqrt(M_PI) * 1e-300).epsilon(1e-15));
  CHECK(r[2] == Approx(0.8427007929497149).epsilon(1e-15));
  CHECK(r[3] == -r[2]);
  CHECK(r[4] == 1.0);
  for (DType dt : {kFloat32, kFloat64}) {
    INFO(dtype_name(dt));
    // the signs of zero survive, and huge inputs saturate (xsimd's erf alone gave NaN for 1e300)
    const Tensor z = tensor({-0.0, 0.0, 1e300, -1e300}, {4}, kFloat64).astype(dt);
    const auto em = expm1(z).astype(kFloat64).to_vector<double>();
    const auto lp = log1p(z).astype(kFloat64).to_vector<double>();
    const auto ef = erf(z).astype(kFloat64).to_vector<double>();
    CHECK(std::signbit(em[0]));
    CHECK_FALSE(std::signbit(em[1]));
    CHECK(std::signbit(lp[0]));
    CHECK(std::signbit(ef[0]));
    CHECK(ef[2] == 1.0);
    CHECK(ef[3] == -1.0);
    CHECK(em[3] == -1.0);
  }
}

TEST_CASE("activations: integers give float32, bool and undefined tensors raise naming the op", "[activations][errors]") {
  const Tensor i = tensor<std::int32_t>({-2, 0, 3}, {3});
  for (const auto& fn : functions()) {
    INFO(fn.name);
    const Tensor y = fn.f(i);
    CHECK(y.dtype() == kFloat32);
    // the same values as the float32 input gives
    CHECK(y.to_vector<float>() == fn.f(i.astype(kFloat32)).to_vector<float>());
  }
  const Tensor b = tensor({true, false});
  CHECK_THROWS_WITH(elu(b), Contains("elu") && Contains("bool"));
  CHECK_THROWS_AS(elu(b), DTypeError);
  CHECK_THROWS_WITH(gelu(b), Contains("gelu") && Contains("bool"));
  CHECK_THROWS_WITH(hard_silu(b), Contains("hard_silu") && Contains("bool"));
  CHECK_THROWS_WITH(expm1(b), Contains("expm1") && Contains("bool"));
  CHECK_THROWS_WITH(erf(b), Contains("erf") && Contains("bool"));
  CHECK_THROWS_WITH(mish(Tensor()), Contains("mish"));
  CHECK_THROWS_AS(softplus(Tensor()), Error);
}

TEST_CASE("activations: float64 gradcheck and gradgradcheck of every activation", "[activations][gradcheck]") {
  // points away from the kinks (the finite differences would straddle them)
  const Tensor x = tensor({-4.1, -2.2, -0.7, -0.15, 0.35, 1.3, 2.6, 4.4, 7.3}, {3, 3}, kFloat64);
  for (const auto& fn : functions()) {
    INFO(fn.name);
    const Fn f = fn.f;
    const auto r = gradcheck([f](const std::vector<Tensor>& in) { return f(in[0]); }, {x});
    INFO(r.message);
    CHECK(r.ok);
    const auto r2 = gradgradcheck([f](const std::vector<Tensor>& in) { return f(in[0]); }, {x});
    INFO(r2.message);
    CHECK(r2.ok);
    // a strided view too: the composites never assume contiguous inputs
    const auto r3 = gradcheck([f](const std::vector<Tensor>& in) { return f(in[0].transpose()(Slice(none, none, -1))); },
                              {x});
    INFO(r3.message);
    CHECK(r3.ok);
  }
}

TEST_CASE("activations: every Keras name works in Dense and Conv2D and round-trips", "[activations][layers]") {
  using layers::Activation;
  const std::vector<std::pair<std::string, Fn>> names = {
      {"linear", [](const Tensor& x) { return x; }},
      {"relu", [](const Tensor& x) { return relu(x); }},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }},
      {"tanh", [](const Tensor& x) { return tanh(x); }},
      {"softmax", [](const Tensor& x) { return softmax(x); }},
      {"log_softmax", [](const Tensor& x) { return log_softmax(x); }},
      {"elu", [](const Tensor& x) { return elu(x); }},
      {"selu", [](const Tensor& x) { return selu(x); }},
      {"gelu", [](const Tensor& x) { return gelu(x); }},
      {"silu", [](const Tensor& x) { return silu(x); }},
      {"swish", [](const Tensor& x) { return swish(x); }},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x); }},
      {"softplus", [](const Tensor& x) { return softplus(x); }},
      {"softsign", [](const Tensor& x) { return softsign(x); }},
      {"relu6", [](const Tensor& x) { return relu6(x); }},
      {"hard_sigmoid", [](const Tensor& x) { return hard_sigmoid(x); }},
      {"hard_silu", [](const Tensor& x) { return hard_silu(x); }},
      {"hard_swish", [](const Tensor& x) { return hard_swish(x); }},
      {"mish", [](const Tensor& x) { return mish(x); }},
      {"exponential", [](const Tensor& x) { return exp(x); }},
  };
  Generator gen(7);
  const Tensor x = uniform({4, 5}, gen, -3.0, 3.0);
  const Tensor img = uniform({2, 4, 4, 3}, gen, -2.0, 2.0);
  for (const auto& [name, f] : names) {
    INFO(name);
    const Activation a = layers::activation_from_name(name);
    // the canonical name of an alias is the other one
    const std::string canonical = name == "swish" ? "silu" : name == "hard_swish" ? "hard_silu" : name;
    CHECK(layers::activation_name(a) == canonical);
    layers::Dense dense(3, name);
    const Tensor y = dense(x);
    const Tensor expected = f(matmul(x, dense.kernel()) + dense.bias());
    CHECK(y.to_vector<float>() == expected.to_vector<float>());
    layers::Conv2D conv(2, 3, name);
    const Tensor z = conv(img);
    CHECK(z.to_vector<float>() == f(conv2d(img, conv.kernel()) + conv.bias()).to_vector<float>());
  }
  CHECK(layers::activation_from_name("") == Activation::Linear);
  CHECK_THROWS_AS(layers::activation_from_name("gelu_new"), ValueError);
  CHECK_THROWS_WITH(layers::activation_from_name("Relu"), Contains("unknown activation 'Relu'") &&
                                                             Contains("leaky_relu") && Contains("hard_swish"));
}

TEST_CASE("activations: a gelu network trains (the gradients flow through the composites)", "[activations][layers]") {
  // y = sin(x): a small MLP must fit it ten times better than its start (the losses went
  // 0.69 -> 0.0016 for gelu, 0.70 -> 0.0020 silu, 0.77 -> 0.0014 mish, 1.18 -> 0.076 elu)
  Generator gen(3);
  const Tensor x = uniform({256, 1}, gen, -3.0, 3.0);
  std::vector<float> ys;
  for (float v : x.to_vector<float>()) ys.push_back(std::sin(v));
  const Tensor target = tensor(ys, {256, 1});
  for (const std::string act : {"gelu", "silu", "mish", "elu"}) {
    INFO(act);
    Sequential model(layers::Dense(32, act), layers::Dense(32, act), layers::Dense(1));
    model.set_seed(11);
    model.compile("adam", "mse");
    FitOptions o;
    o.epochs = 60;
    o.batch_size = 32;
    o.verbose = 0;
    const double before = model.evaluate(x, target, 256, 0).at("loss");
    model.fit(x, target, o);
    const double after = model.evaluate(x, target, 256, 0).at("loss");
    CHECK(after < before / 10);
  }
}

TEST_CASE("activations: accuracy where the plain formulas lose it (audit findings)", "[activations]") {
  // expm1 and exp of contiguous float32 near the overflow: xsimd's exp gave inf from 88.38
  const std::vector<float> big(19, 88.5f);
  for (float v : expm1(tensor(big, {19})).to_vector<float>()) CHECK(v == Approx(std::expm1(88.5f)).epsilon(1e-6));
  for (float v : exp(tensor(big, {19})).to_vector<float>()) CHECK(v == Approx(std::exp(88.5f)).epsilon(1e-6));
  const std::vector<double> bigd(19, 709.5);
  for (double v : expm1(tensor(bigd, {19}, kFloat64)).to_vector<double>()) CHECK(v == Approx(std::expm1(709.5)).epsilon(1e-14));
  // expm1's derivative is exp(x), not expm1(x) + 1 (which is 0 below -17 in float32)
  CHECK(derivative_at([](const Tensor& x) { return expm1(x.astype(kFloat32)); }, -20.0) ==
        Approx(std::exp(-20.0)).epsilon(1e-6));
  CHECK(derivative_at([](const Tensor& x) { return expm1(x); }, -50.0) == Approx(std::exp(-50.0)).epsilon(1e-14));
  // softsign's derivative 1 / (1 + |x|)^2 for large |x| (the quotient rule cancelled: 29% off at 1e7)
  for (double v : {1e5, 1e7, 1e30, -1e7}) {
    INFO(v);
    CHECK(derivative_at([](const Tensor& x) { return softsign(x); }, v) ==
          Approx(1 / ((1 + std::abs(v)) * (1 + std::abs(v)))).epsilon(1e-12));
    if (std::abs(v) < 1e10) {  // (1e-60 is 0 in float32)
      CHECK(derivative_at([](const Tensor& x) { return softsign(x.astype(kFloat32)); }, v) ==
            Approx(1 / ((1 + std::abs(v)) * (1 + std::abs(v)))).epsilon(1e-5));
    }
  }
  // ... and its value stays exact near 0, and +-1 at +-inf
  CHECK(softsign(tensor({1e-10}, {1}, kFloat64)).item<double>() == Approx(1e-10 / (1 + 1e-10)).epsilon(1e-15));
  const auto inf_s = softsign(tensor({-INFINITY, INFINITY}, {2}, kFloat64)).to_vector<double>();
  CHECK(inf_s == std::vector<double>{-1.0, 1.0});
  // gelu's tanh form at huge |x|: x^3 overflowed into NaN gradients
  for (double v : {-3e19, 3e19, 3e38}) {
    INFO(v);
    const double d = derivative_at([](const Tensor& x) { return gelu(x.astype(kFloat32), true); }, v);
    CHECK(d == (v > 0 ? 1.0 : 0.0));
  }
}

TEST_CASE("activations: a NaN input gives a NaN gradient (maximum / minimum send it to the NaN operand)",
          "[activations]") {
  // the piecewise-linear ones take TensorFlow's branch for NaN (x > 0 is false): leaky_relu's
  // slope, relu6's and hard_sigmoid's 0; every other one passes the NaN on
  const std::map<std::string, double> finite = {
      {"leaky_relu", 0.2}, {"leaky_relu_0_01", 0.01}, {"relu6", 0.0}, {"hard_sigmoid", 0.0}};
  for (const auto& fn : functions()) {
    INFO(fn.name);
    const double d = derivative_at(fn.f, std::nan(""));
    const auto it = finite.find(fn.name);
    if (it != finite.end()) CHECK(d == it->second);
    else CHECK(std::isnan(d));
  }
  // the rule itself: the NaN operand gets the gradient, ties still go to the first
  const Tensor a = tensor({std::nan(""), 1.0, 2.0, 3.0}, {4}, kFloat64);
  const Tensor b = tensor({0.0, std::nan(""), 2.0, 1.0}, {4}, kFloat64);
  GradientTape tape(true);
  tape.watch(a);
  tape.watch(b);
  const Tensor mx = maximum(a, b), mn = minimum(a, b);
  CHECK(tape.gradient(sum(mx), a).to_vector<double>() == std::vector<double>{1, 0, 1, 1});
  CHECK(tape.gradient(sum(mx), b).to_vector<double>() == std::vector<double>{0, 1, 0, 0});
  CHECK(tape.gradient(sum(mn), a).to_vector<double>() == std::vector<double>{1, 0, 1, 0});
  CHECK(tape.gradient(sum(mn), b).to_vector<double>() == std::vector<double>{0, 1, 0, 1});
}
