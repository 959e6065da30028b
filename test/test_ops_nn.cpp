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

// TensorFlow's output size and leading padding for one spatial axis (a dilated window of k taps
// spans (k - 1) * d + 1 elements).
Geometry geometry(std::int64_t in, std::int64_t k_taps, std::int64_t s, Padding p, std::int64_t d = 1) {
  const std::int64_t k = (k_taps - 1) * d + 1;
  if (p == Padding::Valid) return {(in - k) / s + 1, 0};
  const std::int64_t out = (in + s - 1) / s;
  const std::int64_t total = std::max<std::int64_t>((out - 1) * s + k - in, 0);
  return {out, total / 2};
}

// out[b, i, j, o] = sum over (di, dj, c) of x[b, i*s + di*d - pad, j*s + dj*d - pad, c] * w[di, dj, c, o]
std::vector<double> conv_reference(const Tensor& x, const Tensor& w, std::int64_t s, Padding p, Shape& shape,
                                   std::int64_t d = 1) {
  const auto xv = x.to_vector<double>(), wv = w.to_vector<double>();
  const std::int64_t B = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
  const std::int64_t KH = w.dim(0), KW = w.dim(1), O = w.dim(3);
  const Geometry gh = geometry(H, KH, s, p, d), gw = geometry(W, KW, s, p, d);
  shape = {B, gh.out, gw.out, O};
  std::vector<double> out(static_cast<std::size_t>(B * gh.out * gw.out * O), 0.0);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t i = 0; i < gh.out; ++i)
      for (std::int64_t j = 0; j < gw.out; ++j)
        for (std::int64_t o = 0; o < O; ++o) {
          double acc = 0;
          for (std::int64_t di = 0; di < KH; ++di)
            for (std::int64_t dj = 0; dj < KW; ++dj) {
              const std::int64_t r = i * s + di * d - gh.pad, q = j * s + dj * d - gw.pad;
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
    std::int64_t dilation;
  };
  const std::vector<Case> cases{
      {{2, 7, 6, 3}, {3, 3, 3, 4}, 1, Padding::Valid, 1}, {{2, 7, 6, 3}, {3, 3, 3, 4}, 2, Padding::Valid, 1},
      {{1, 7, 6, 2}, {3, 3, 2, 5}, 1, Padding::Same, 1},  {{1, 8, 5, 2}, {3, 3, 2, 2}, 2, Padding::Same, 1},
      {{2, 5, 6, 1}, {2, 3, 1, 3}, 1, Padding::Valid, 1}, {{1, 6, 6, 3}, {1, 1, 3, 2}, 1, Padding::Same, 1},
      {{1, 4, 4, 2}, {4, 4, 2, 1}, 1, Padding::Same, 1},
      // dilated: windows spanning 5 and 7 rows, past every edge with same padding; with a stride
      {{2, 7, 6, 3}, {3, 2, 3, 4}, 1, Padding::Valid, 2}, {{1, 7, 6, 2}, {3, 3, 2, 3}, 1, Padding::Same, 3},
      {{1, 9, 8, 2}, {2, 3, 2, 2}, 2, Padding::Same, 2},  {{1, 9, 9, 1}, {3, 3, 1, 2}, 3, Padding::Valid, 2},
      {{1, 4, 4, 2}, {3, 3, 2, 1}, 1, Padding::Same, 4}};
  for (const auto& c : cases) {
    for (DType dt : {kFloat32, kFloat64}) {
      INFO("x " << c.x.size() << " stride " << c.stride << " dilation " << c.dilation);
      const Tensor x = uniform(c.x, gen, -1, 1, dt), w = uniform(c.w, gen, -1, 1, dt);
      Shape shape;
      const auto want = conv_reference(x, w, c.stride, c.padding, shape, c.dilation);
      check_close(conv2d(x, w, c.stride, c.padding, c.dilation), shape, want, dt == kFloat32 ? 1e-5 : 1e-12);
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
  // dilated: the windows' taps 2 apart (x [1, 5, 5, 2]: a 3x3 filter spans all of it)
  for (Padding p : {Padding::Valid, Padding::Same}) {
    auto r = gradcheck([&](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], 1, p, 2); }, {x, w});
    INFO(r.message);
    CHECK(r.ok);
  }
  auto r = gradcheck([&](const std::vector<Tensor>& in) { return conv2d(in[0], in[1], 2, Padding::Same, 2); }, {x, w});
  INFO(r.message);
  CHECK(r.ok);
  auto gd = gradgradcheck([&](const std::vector<Tensor>& in) { return tanh(conv2d(in[0], in[1], 1, Padding::Same, 2)); },
                          {x, w});
  INFO(gd.message);
  CHECK(gd.ok);
}

TEST_CASE("depthwise_conv2d matches the loop definition; conv2d_transpose is conv2d's adjoint", "[nn][conv2d]") {
  Generator gen(21);
  for (Padding p : {Padding::Valid, Padding::Same}) {
    for (std::int64_t s : {1, 2}) {
      for (std::int64_t d : {1, 2}) {
        INFO("stride " << s << " dilation " << d << (p == Padding::Same ? " same" : " valid"));
        // depthwise: channel k, filter q is a conv2d of x[..., k] with filters[:, :, k, q]
        const Tensor x = uniform({2, 7, 6, 3}, gen, -1, 1, kFloat64);
        const Tensor f = uniform({3, 2, 3, 2}, gen, -1, 1, kFloat64);
        const Tensor y = depthwise_conv2d(x, f, s, p, d);
        for (std::int64_t k = 0; k < 3; ++k) {
          for (std::int64_t q = 0; q < 2; ++q) {
            Shape shape;
            const Tensor xk = x(all, all, all, Slice(k, k + 1)).contiguous();
            const Tensor fk = f(all, all, Slice(k, k + 1), Slice(q, q + 1)).contiguous();
            const auto want = conv_reference(xk, fk, s, p, shape, d);
            check_close(y(all, all, all, Slice(k * 2 + q, k * 2 + q + 1)), shape, want, 1e-12);
          }
        }
        // transpose: <conv2d(z, K), u> == <z, conv2d_transpose(u, K)>, K [kh, kw, c_out, c_in]
        const Tensor z = uniform({2, 7, 6, 2}, gen, -1, 1, kFloat64);
        const Tensor kernel = uniform({3, 2, 2, 4}, gen, -1, 1, kFloat64);
        const Tensor fwd = conv2d(z, kernel, s, p, d);
        const Tensor u = uniform(fwd.shape(), gen, -1, 1, kFloat64);
        const Tensor back = conv2d_transpose(u, kernel, 7, 6, s, p, d);
        REQUIRE(back.shape() == z.shape());
        CHECK(sum(fwd * u).item<double>() == Approx(sum(z * back).item<double>()).epsilon(1e-12));
      }
    }
  }
  const Tensor x = uniform({1, 5, 4, 2}, gen, -1, 1, kFloat64);
  const Tensor f = uniform({3, 3, 2, 2}, gen, -1, 1, kFloat64);
  auto r = gradcheck([&](const std::vector<Tensor>& in) { return depthwise_conv2d(in[0], in[1], 1, Padding::Same, 2); },
                     {x, f});
  INFO(r.message);
  CHECK(r.ok);
  // [1, 5, 4, 2] -> [1, 11, 9, 2] (valid, stride 2: 5 * 2 + 1 rows, 4 * 2 + 1 columns)
  auto t = gradcheck(
      [&](const std::vector<Tensor>& in) { return conv2d_transpose(in[0], in[1], 11, 9, 2, Padding::Valid); }, {x, f});
  INFO(t.message);
  CHECK(t.ok);
  CHECK_THROWS_AS(depthwise_conv2d(x, zeros({3, 3, 3, 1}, kFloat64)), ShapeError);
  CHECK_THROWS_WITH(depthwise_conv2d(x, zeros({3, 3, 3, 1}, kFloat64)),
                    Contains("depthwise_conv2d") && Contains("[1, 5, 4, 2]") && Contains("[3, 3, 3, 1]"));
  // 12 rows also has 5 windows (Keras's output_padding 1); 13 has 6
  CHECK(conv2d_transpose(x, f, 12, 9, 2).shape() == Shape{1, 12, 9, 2});
  CHECK_THROWS_AS(conv2d_transpose(x, f, 13, 9, 2), ShapeError);
  CHECK_THROWS_WITH(conv2d_transpose(x, f, 13, 9, 2),
                    Contains("conv2d_transpose") && Contains("[1, 5, 4, 2]") && Contains("[1, 13, 9, 2]"));
  CHECK_THROWS_WITH(conv2d_transpose(x, zeros({3, 3, 2, 5}, kFloat64), 11, 9, 2),
                    Contains("conv2d_transpose") && Contains("[3, 3, 2, 5]"));
  CHECK_THROWS_AS(conv2d_transpose(x, f, -1, 9), ValueError);
}

TEST_CASE("im2col gives TensorFlow's windows, fill in the padding", "[nn][im2col]") {
  const Tensor x = arange(0.0, 2.0 * 5 * 4 * 3, 1.0, kFloat64).reshape({2, 5, 4, 3});
  const auto xv = x.to_vector<double>();
  struct Case {
    std::int64_t kh, kw, s;
    Padding p;
    std::int64_t d;
  };
  for (const Case& c : {Case{3, 3, 1, Padding::Valid, 1}, Case{2, 3, 2, Padding::Valid, 1},
                        Case{3, 2, 1, Padding::Same, 1}, Case{3, 3, 2, Padding::Same, 1},
                        Case{1, 1, 3, Padding::Same, 1}, Case{4, 4, 1, Padding::Same, 1},
                        Case{2, 2, 1, Padding::Valid, 3}, Case{3, 2, 1, Padding::Same, 2},
                        Case{2, 3, 2, Padding::Same, 2}, Case{3, 3, 1, Padding::Same, 5}}) {
    INFO(c.kh << "x" << c.kw << " stride " << c.s << " dilation " << c.d << (c.p == Padding::Same ? " same" : " valid"));
    const Geometry gh = geometry(5, c.kh, c.s, c.p, c.d), gw = geometry(4, c.kw, c.s, c.p, c.d);
    const Tensor cols = im2col(x, c.kh, c.kw, c.s, c.p, -100.0, c.d);
    REQUIRE(cols.shape() == Shape{2, gh.out, gw.out, c.kh * c.kw, 3});
    const auto got = cols.to_vector<double>();
    std::size_t k = 0;
    for (std::int64_t b = 0; b < 2; ++b)
      for (std::int64_t i = 0; i < gh.out; ++i)
        for (std::int64_t j = 0; j < gw.out; ++j)
          for (std::int64_t di = 0; di < c.kh; ++di)
            for (std::int64_t dj = 0; dj < c.kw; ++dj)
              for (std::int64_t ch = 0; ch < 3; ++ch, ++k) {
                const std::int64_t r = i * c.s + di * c.d - gh.pad, q = j * c.s + dj * c.d - gw.pad;
                const bool inside = r >= 0 && r < 5 && q >= 0 && q < 4;
                REQUIRE(got[k] == (inside ? xv[static_cast<std::size_t>(((b * 5 + r) * 4 + q) * 3 + ch)] : -100.0));
              }
  }
}

TEST_CASE("col2im is im2col's adjoint: <im2col(x), y> == <x, col2im(y)>", "[nn][im2col]") {
  Generator gen(11);
  for (Padding p : {Padding::Valid, Padding::Same}) {
    for (std::int64_t s : {1, 2, 3}) {
      for (std::int64_t d : {1, 2, 3}) {
        INFO("stride " << s << " dilation " << d << (p == Padding::Same ? " same" : " valid"));
        const Tensor x = uniform({2, 7, 6, 3}, gen, -1, 1, kFloat64);
        const Tensor cols = im2col(x, 3, 2, s, p, 0.0, d);
        const Tensor y = uniform(cols.shape(), gen, -1, 1, kFloat64);
        const Tensor back = col2im(y, 7, 6, 3, 2, s, p, d);
        REQUIRE(back.shape() == x.shape());
        CHECK(sum(cols * y).item<double>() == Approx(sum(x * back).item<double>()).epsilon(1e-12));
      }
    }
  }
  // dilation 2: 2x2 windows of [3, 3] read only the corners (one window)
  CHECK(col2im(ones({1, 1, 1, 4, 1}), 3, 3, 2, 2, 1, Padding::Valid, 2).to_vector<float>() ==
        std::vector<float>{1, 0, 1, 0, 0, 0, 1, 0, 1});
  // col2im of ones counts the windows that read each pixel: 2x2 windows, stride 1, of [3, 3]
  CHECK(col2im(ones({1, 2, 2, 4, 1}), 3, 3, 2, 2).to_vector<float>() ==
        std::vector<float>{1, 2, 1, 2, 4, 2, 1, 2, 1});
}

TEST_CASE("max_pool2d's gradient goes to each window's first maximum, as TensorFlow and PyTorch", "[nn][pool]") {
  // relu'd activations: whole windows of zeros tie; the first (row-major) gets the gradient
  const Tensor x = tensor({0., 0., 3., 3., 0., 0., 1., 3.}, {1, 2, 4, 1}, kFloat64);
  GradientTape tape;
  tape.watch(x);
  const Tensor y = max_pool2d(x, 2);
  CHECK(y.to_vector<double>() == std::vector<double>{0, 3});
  CHECK(tape.gradient(y, x, tensor({10., 20.}, {1, 1, 2, 1}, kFloat64)).to_vector<double>() ==
        std::vector<double>{10, 0, 20, 0, 0, 0, 0, 0});
  // overlapping windows (stride 1) add up at a shared maximum
  const Tensor z = tensor({1., 9., 2., 4., 5., 6.}, {1, 2, 3, 1}, kFloat64);
  GradientTape t2;
  t2.watch(z);
  const Tensor m = max_pool2d(z, 2, 1);
  CHECK(m.to_vector<double>() == std::vector<double>{9, 9});
  CHECK(t2.gradient(sum(m), z).to_vector<double>() == std::vector<double>{0, 2, 0, 0, 0, 0});
  // max_pool_select picks v where x is largest; max_pool_scatter puts g back there
  const Tensor v = tensor({10., 20., 30., 40., 50., 60.}, {1, 2, 3, 1}, kFloat64);
  CHECK(max_pool_select(z, v, 2, 1).to_vector<double>() == std::vector<double>{20, 20});
  CHECK(max_pool_scatter(z, tensor({1., 2.}, {1, 1, 2, 1}, kFloat64), 2, 1).to_vector<double>() ==
        std::vector<double>{0, 3, 0, 0, 0, 0});
}

TEST_CASE("max_pool_scatter is max_pool_select's adjoint in v", "[nn][pool]") {
  Generator gen(12);
  for (Padding p : {Padding::Valid, Padding::Same}) {
    for (std::int64_t s : {1, 2, 3}) {
      INFO("stride " << s << (p == Padding::Same ? " same" : " valid"));
      const Tensor x = uniform({2, 7, 6, 3}, gen, -1, 1, kFloat64), v = uniform({2, 7, 6, 3}, gen, -1, 1, kFloat64);
      const Tensor y = max_pool_select(x, v, 3, s, p);
      const Tensor g = uniform(y.shape(), gen, -1, 1, kFloat64);
      CHECK(sum(y * g).item<double>() == Approx(sum(v * max_pool_scatter(x, g, 3, s, p)).item<double>()).epsilon(1e-12));
    }
  }
}

TEST_CASE("integer images: max_pool2d's padding never wins, im2col's -inf fill saturates", "[nn][im2col]") {
  const Tensor f = tensor({-5.f, -3.f, -8.f, -1.f, -2.f, -9.f, -4.f, -6.f, -7.f}, {1, 3, 3, 1});
  const Tensor i = f.astype(kInt32);
  const auto want = max_pool2d(f, 2, 2, Padding::Same).astype(kInt32).to_vector<std::int32_t>();
  CHECK(max_pool2d(i, 2, 2, Padding::Same).to_vector<std::int32_t>() == want);
  CHECK(want == std::vector<std::int32_t>{-1, -8, -4, -7});
  // window (0, 1) covers columns 2 and 3 (padding after, as TensorFlow): its tap 1 is outside
  CHECK(im2col(i, 2, 2, 2, Padding::Same, -std::numeric_limits<double>::infinity()).to_vector<std::int32_t>()[5] ==
        std::numeric_limits<std::int32_t>::lowest());
}

TEST_CASE("integer col2im, max_pool_scatter, tanh_grad and sigmoid_grad wrap around as NumPy (no UB)",
          "[nn][overflow]") {
  const std::int32_t big = std::numeric_limits<std::int32_t>::max();
  // two's complement of the exact sum or product, worked out in uint32
  const auto wrap = [](std::uint64_t v) { return static_cast<std::int32_t>(static_cast<std::uint32_t>(v)); };
  // col2im of a 3x3 image with 2x2 windows at stride 1: the centre is read by all 4 windows
  const Tensor cols = full({1, 2, 2, 4, 1}, big, kInt32);
  const Tensor img = col2im(cols, 3, 3, 2, 2);
  CHECK(img.dtype() == kInt32);
  CHECK(img(0, 1, 1, 0).item<std::int32_t>() == wrap(4ull * std::uint64_t(big)));
  CHECK(img(0, 0, 0, 0).item<std::int32_t>() == big);
  // max_pool_scatter: one maximum chosen by 4 overlapping 2x2 windows (stride 1)
  Tensor x = zeros({1, 3, 3, 1}, kInt32);
  x(0, 1, 1, 0).assign(9);
  const Tensor back = max_pool_scatter(x, full({1, 2, 2, 1}, big, kInt32), 2, 1);
  CHECK(back(0, 1, 1, 0).item<std::int32_t>() == wrap(4ull * std::uint64_t(big)));
  // tanh_grad(a, b) = a (1 - b b), sigmoid_grad(a, b) = a b (1 - b), wrapping at each step
  const Tensor a = tensor<std::int32_t>({3}, {1}), b = tensor<std::int32_t>({big}, {1});
  const std::uint32_t ua = 3, ub = static_cast<std::uint32_t>(big);
  CHECK(tanh_grad(a, b).item<std::int32_t>() == wrap(ua * (1u - ub * ub)));
  CHECK(sigmoid_grad(a, b).item<std::int32_t>() == wrap(ua * ub * (1u - ub)));
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
  CHECK_THROWS_WITH(im2col(zeros({5, 5, 3}), 3, 3), Contains("im2col") && Contains("[5, 5, 3]"));
  CHECK_THROWS_WITH(im2col(x, 2, 2, 0), Contains("im2col") && Contains("positive"));
  CHECK_THROWS_AS(im2col(zeros({1, 4, 4, 2}, kBool), 2, 2), DTypeError);
  CHECK_THROWS_AS(col2im(zeros({1, 2, 2, 9, 1}), 5, 5, 3, 3), ShapeError);
  CHECK_THROWS_WITH(col2im(zeros({1, 2, 2, 9, 1}), 5, 5, 3, 3),
                    Contains("col2im") && Contains("[1, 2, 2, 9, 1]") && Contains("[1, 3, 3, 9, 1]"));
  CHECK_THROWS_WITH(col2im(zeros({1, 2, 2, 9}), 5, 5, 3, 3), Contains("col2im") && Contains("[1, 2, 2, 9]"));
  CHECK_THROWS_AS(col2im(zeros({1, 2, 2, 9, 1}), -1, 5, 3, 3), ValueError);
  // dilation: positive; a dilated window larger than the input; cols of the undilated windows
  CHECK_THROWS_AS(conv2d(x, zeros({3, 3, 3, 4}), 1, Padding::Valid, 0), ValueError);
  CHECK_THROWS_WITH(im2col(x, 3, 3, 1, Padding::Valid, 0.0, -2), Contains("im2col: dilation must be positive, got -2"));
  CHECK_THROWS_WITH(conv2d(x, zeros({3, 3, 3, 4}), 1, Padding::Valid, 3),
                    Contains("conv2d") && Contains("larger than the input"));
  CHECK_THROWS_WITH(col2im(zeros({1, 3, 3, 9, 1}), 5, 5, 3, 3, 1, Padding::Valid, 2),
                    Contains("col2im") && Contains("dilation 2") && Contains("[1, 1, 1, 9, 1]"));
  CHECK_THROWS_AS(im2col(x, 2, 2, 1, Padding::Same, 0.0, std::numeric_limits<std::int64_t>::max()), ValueError);
  CHECK_THROWS_WITH(max_pool_select(x, zeros({1, 5, 4, 3})),
                    Contains("max_pool_select") && Contains("[1, 5, 4, 3]") && Contains("[1, 5, 5, 3]"));
  CHECK_THROWS_WITH(max_pool_scatter(x, zeros({1, 3, 3, 3})),
                    Contains("max_pool_scatter") && Contains("[1, 3, 3, 3]") && Contains("[1, 2, 2, 3]"));
  CHECK_THROWS_AS(max_pool_select(x, zeros({1, 5, 5, 3}, kFloat64)), DTypeError);
  CHECK_THROWS_AS(max_pool2d(zeros({1, 4, 4, 2}, kBool)), DTypeError);
}

TEST_CASE("im2col and pooling: huge strides and windows raise or work instead of overflowing", "[nn][errors][overflow]") {
  const Tensor x = tensor<float>({1.f, 2.f, 3.f, 4.f}, {1, 2, 2, 1});
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  // same padding with a stride past the image: one window at the origin (TensorFlow's
  // out = ceil(2 / stride) = 1, padding max((1 - 1) * stride + 1 - 2, 0) = 0)
  const Tensor p = im2col(x, 1, 1, kMax, Padding::Same);
  CHECK(p.shape() == Shape{1, 1, 1, 1, 1});
  CHECK(p.to_vector<float>() == std::vector<float>{1.f});
  CHECK(max_pool2d(x, 2, kMax, Padding::Same).to_vector<float>() == std::vector<float>{4.f});
  CHECK(im2col(x, 1, 1, kMax, Padding::Valid).to_vector<float>() == std::vector<float>{1.f});
  // a window whose tap count overflows int64
  CHECK_THROWS_AS(im2col(x, std::int64_t(1) << 32, std::int64_t(1) << 32, 1, Padding::Same), ValueError);
  CHECK_THROWS_WITH(im2col(x, std::int64_t(1) << 32, std::int64_t(1) << 32, 1, Padding::Same),
                    Contains("im2col: a 4294967296x4294967296 window has more taps than an int64 can count"));
  CHECK_THROWS_WITH(max_pool2d(x, std::int64_t(1) << 32, 1, Padding::Same), Contains("max_pool2d:") &&
                                                                              Contains("taps"));
  CHECK_THROWS_WITH(col2im(zeros({1, 1, 1, 1, 1}), 2, 2, kMax, kMax, 1, Padding::Same), Contains("col2im:") &&
                                                                                          Contains("taps"));
  // a window as large as int64 with valid padding is larger than the input
  CHECK_THROWS_AS(im2col(x, kMax, 1, 1, Padding::Valid), ShapeError);
}

TEST_CASE("pooling: a negative stride raises (0 is the pool size)", "[nn][pool][errors]") {
  const Tensor x = zeros({1, 4, 4, 1});
  CHECK_THROWS_AS(max_pool2d(x, 2, -1), ValueError);
  CHECK_THROWS_WITH(max_pool2d(x, 2, -1), Contains("max_pool2d: stride must be positive (or 0: the pool size 2), got -1"));
  CHECK_THROWS_WITH(avg_pool2d(x, 2, -3), Contains("avg_pool2d: stride must be positive") && Contains("-3"));
  CHECK_THROWS_WITH(max_pool_select(x, x, 2, -1), Contains("max_pool_select: stride"));
  CHECK(max_pool2d(x, 2, 0).shape() == Shape{1, 2, 2, 1});
  CHECK(avg_pool2d(x, 2, 0).shape() == Shape{1, 2, 2, 1});
}
