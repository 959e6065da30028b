// conv2d, pooling and dropout (composites of primitives) against plain nested loops written
// here from TensorFlow's definitions, float64 gradchecks, and their error messages.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "tapeflow/autodiff.hpp"

using namespace tapeflow;
using Catch::Matchers::Contains;

namespace {

struct Geometry {
  std::int64_t out, pad;  // output length, padding before
};

// TensorFlow's output size and leading padding for one spatial axis.
Geometry geometry(std::int64_t in, std::int64_t k, std::int64_t s, Padding p) {
  if (p == Padding::Valid) return {(in - k) / s + 1, 0};
  const std::int64_t out = (in + s - 1) / s;
  const std::int64_t total = std::max<std::int64_t>((out - 1) * s + k - in, 0);
  return {out, total / 2};
}

// out[b, i, j, o] = sum over (di, dj, c) of x[b, i*s + di - pad, j*s + dj - pad, c] * w[di, dj, c, o]
std::vector<double> conv_reference(const Tensor& x, const Tensor& w, std::int64_t s, Padding p, Shape& shape) {
  const auto xv = x.to_vector<double>(), wv = w.to_vector<double>();
  const std::int64_t B = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
  const std::int64_t KH = w.dim(0), KW = w.dim(1), O = w.dim(3);
  const Geometry gh = geometry(H, KH, s, p), gw = geometry(W, KW, s, p);
  shape = {B, gh.out, gw.out, O};
  std::vector<double> out(static_cast<std::size_t>(B * gh.out * gw.out * O), 0.0);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t i = 0; i < gh.out; ++i)
      for (std::int64_t j = 0; j < gw.out; ++j)
        for (std::int64_t o = 0; o < O; ++o) {
          double acc = 0;
          for (std::int64_t di = 0; di < KH; ++di)
            for (std::int64_t dj = 0; dj < KW; ++dj) {
              const std::int64_t r = i * s + di - gh.pad, q = j * s + dj - gw.pad;
              if (r < 0 || r >= H || q < 0 || q >= W) continue;
              for (std::int64_t c = 0; c < C; ++c)
                acc += xv[((b * H + r) * W + q) * C + c] * wv[((di * KW + dj) * C + c) * O + o];
            }
          out[((b * gh.out + i) * gw.out + j) * O + o] = acc;
        }
  return out;
}

// max or mean over the window's elements inside the input (TensorFlow's pooling)
std::vector<double> pool_reference(const Tensor& x, std::int64_t k, std::int64_t s, Padding p, bool is_max,
                                   Shape& shape) {
  const auto xv = x.to_vector<double>();
  const std::int64_t B = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
  const Geometry gh = geometry(H, k, s, p), gw = geometry(W, k, s, p);
  shape = {B, gh.out, gw.out, C};
  std::vector<double> out;
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t i = 0; i < gh.out; ++i)
      for (std::int64_t j = 0; j < gw.out; ++j)
        for (std::int64_t c = 0; c < C; ++c) {
          double best = -std::numeric_limits<double>::infinity(), total = 0;
          int count = 0;
          for (std::int64_t di = 0; di < k; ++di)
            for (std::int64_t dj = 0; dj < k; ++dj) {
              const std::int64_t r = i * s + di - gh.pad, q = j * s + dj - gw.pad;
              if (r < 0 || r >= H || q < 0 || q >= W) continue;
              const double v = xv[((b * H + r) * W + q) * C + c];
              best = std::max(best, v);
              total += v;
              ++count;
            }
          out.push_back(is_max ? best : total / count);
        }
  return out;
}

void check_close(const Tensor& got, const Shape& shape, const std::vector<double>& want, double tol) {
  REQUIRE(got.shape() == shape);
  const auto g = got.to_vector<double>();
  REQUIRE(g.size() == want.size());
  for (std::size_t i = 0; i < g.size(); ++i) REQUIRE(g[i] == Approx(want[i]).margin(tol));
}

}  // namespace

TEST_CASE("conv2d matches the nested-loop definition", "[nn][conv2d]") {
  Generator gen(3);
  struct Case {
    Shape x, w;
    std::int64_t stride;
    Padding padding;
  };
  const std::vector<Case> cases{
      {{2, 7, 6, 3}, {3, 3, 3, 4}, 1, Padding::Valid}, {{2, 7, 6, 3}, {3, 3, 3, 4}, 2, Padding::Valid},
      {{1, 7, 6, 2}, {3, 3, 2, 5}, 1, Padding::Same},  {{1, 8, 5, 2}, {3, 3, 2, 2}, 2, Padding::Same},
      {{2, 5, 6, 1}, {2, 3, 1, 3}, 1, Padding::Valid}, {{1, 6, 6, 3}, {1, 1, 3, 2}, 1, Padding::Same},
      {{1, 4, 4, 2}, {4, 4, 2, 1}, 1, Padding::Same}};
  for (const auto& c : cases) {
    for (DType dt : {kFloat32, kFloat64}) {
      const Tensor x = uniform(c.x, gen, -1, 1, dt), w = uniform(c.w, gen, -1, 1, dt);
      Shape shape;
      const auto want = conv_reference(x, w, c.stride, c.padding, shape);
      check_close(conv2d(x, w, c.stride, c.padding), shape, want, dt == kFloat32 ? 1e-5 : 1e-12);
    }
  }
}

TEST_CASE("max_pool2d and avg_pool2d match the nested-loop definition", "[nn][pool]") {
  Generator gen(4);
  const Tensor x = uniform({2, 7, 6, 3}, gen, -1, 1, kFloat64);
  for (std::int64_t k : {2, 3}) {
    for (std::int64_t s : {1, 2}) {
      for (Padding p : {Padding::Valid, Padding::Same}) {
        Shape shape;
        const auto want_max = pool_reference(x, k, s, p, true, shape);
        check_close(max_pool2d(x, k, s, p), shape, want_max, 1e-12);
        const auto want_avg = pool_reference(x, k, s, p, false, shape);
        check_close(avg_pool2d(x, k, s, p), shape, want_avg, 1e-12);
      }
    }
  }
  // the default stride is the pool size: [1, 4, 4, 1] -> [1, 2, 2, 1]
  const Tensor y = arange(0.0, 16.0, 1.0).reshape({1, 4, 4, 1});
  CHECK(max_pool2d(y).to_vector<float>() == std::vector<float>{5, 7, 13, 15});
  CHECK(avg_pool2d(y).to_vector<float>() == std::vector<float>{2.5f, 4.5f, 10.5f, 12.5f});
}

TEST_CASE("conv2d and pooling gradients pass float64 gradcheck", "[nn][gradcheck]") {
  Generator gen(5);
  const Tensor x = uniform({1, 5, 5, 2}, gen, -1, 1, kFloat64);
  const Tensor w = uniform({3, 3, 2, 2}, gen, -1, 1, kFloat64);
  for (Padding p : {Padding::Valid, Padding::Same}) {
    for (std::int64_t s : {1, 2}) {
      auto r = gradcheck([&](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], s, p); }, {x, w});
      INFO(r.message);
      CHECK(r.ok);
      auto m = gradcheck([&](const std::vector<Tensor>& in) { return max_pool2d(in[0], 2, s, p); }, {x});
      INFO(m.message);
      CHECK(m.ok);
      auto a = gradcheck([&](const std::vector<Tensor>& in) { return avg_pool2d(in[0], 3, s, p); }, {x});
      INFO(a.message);
      CHECK(a.ok);
    }
  }
  auto gg = gradgradcheck([&](const std::vector<Tensor>& in) { return tanh(conv2d(in[0], in[1])); }, {x, w});
  INFO(gg.message);
  CHECK(gg.ok);
}

TEST_CASE("dropout zeroes about rate of the elements and scales the rest, reproducibly", "[nn][dropout]") {
  const Tensor x = ones({100, 100});
  Generator g1(7), g2(7), g3(8);
  const Tensor a = dropout(x, 0.25, g1), b = dropout(x, 0.25, g2), c = dropout(x, 0.25, g3);
  CHECK(a.to_vector<float>() == b.to_vector<float>());
  CHECK(a.to_vector<float>() != c.to_vector<float>());
  std::int64_t zeros_seen = 0;
  for (float v : a.to_vector<float>()) {
    REQUIRE((v == 0.0f || v == Approx(1.0 / 0.75)));
    zeros_seen += v == 0.0f;
  }
  CHECK(zeros_seen == Approx(2500).margin(250));  // binomial(10000, 0.25): sd 43
  CHECK(mean(a).item<double>() == Approx(1.0).margin(0.05));
  Generator g4(1);
  CHECK(dropout(x, 0.0, g4).to_vector<float>() == x.to_vector<float>());
  CHECK_THROWS_WITH(dropout(x, 1.0, g4), Contains("dropout") && Contains("[0, 1)"));
  // the gradient goes through the kept elements only, scaled as they are
  Generator g5(9), g6(9);
  const Tensor mask = dropout(x, 0.5, g5);
  Tensor v = x.clone();
  GradientTape tape;
  tape.watch(v);
  const Tensor y = sum(dropout(v, 0.5, g6));
  CHECK(tape.gradient(y, v).to_vector<float>() == mask.to_vector<float>());
}

TEST_CASE("conv2d and pooling errors name the op and the shapes", "[nn][errors]") {
  const Tensor x = zeros({1, 5, 5, 3});
  CHECK_THROWS_AS(conv2d(x, zeros({3, 3, 2, 4})), ShapeError);
  CHECK_THROWS_WITH(conv2d(x, zeros({3, 3, 2, 4})),
                    Contains("conv2d") && Contains("[1, 5, 5, 3]") && Contains("[3, 3, 2, 4]"));
  CHECK_THROWS_WITH(conv2d(zeros({5, 5, 3}), zeros({3, 3, 3, 4})), Contains("conv2d") && Contains("[5, 5, 3]"));
  CHECK_THROWS_WITH(conv2d(x, zeros({7, 7, 3, 1})), Contains("conv2d") && Contains("larger than the input"));
  CHECK_THROWS_AS(max_pool2d(zeros({4, 4})), ShapeError);
  CHECK_THROWS_WITH(max_pool2d(x, 0), Contains("max_pool2d") && Contains("positive"));
}
