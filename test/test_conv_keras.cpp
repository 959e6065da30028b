// The convolution layers of Deep Learning with Python ch. 8-9 against the real Keras 3 in float64
// with the same inputs and weights (golden/conv_golden.hpp: outputs, gradients in the input and
// in every weight) on the CPU and cuda:0: Conv1D and Conv2D with dilation_rate,
// Conv2DTranspose, DepthwiseConv2D, SeparableConv2D, UpSampling2D, ZeroPadding2D, Cropping2D;
// Keras's weight names, shapes and order, and its configuration errors.
#include <catch2/catch.hpp>

#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "golden/conv_golden.hpp"
#include "layer_test_util.hpp"
#include "tapeflow/tapeflow.hpp"

using namespace tapeflow;
using namespace tapeflow::layers;
namespace g = conv_golden;
using Catch::Matchers::Contains;

using lt::devices;

namespace {

Padding padding_of(int p) { return p == 1 ? Padding::Same : Padding::Valid; }

// The layer of a golden case, configured as conv_golden.py configured Keras's.
LayerPtr make(const g::Case& c) {
  const std::string cls = c.layer;
  if (cls == "Conv2D") {
    Conv2DOptions o;
    o.strides = c.strides;
    o.padding = padding_of(c.padding);
    o.dilation_rate = c.dilation;
    return std::make_shared<Conv2D>(c.filters, c.kernel, c.activation, o);
  }
  if (cls == "Conv1D") {
    Conv1DOptions o;
    o.strides = c.strides;
    o.padding = c.padding == 2 ? Padding1D::Causal : c.padding == 1 ? Padding1D::Same : Padding1D::Valid;
    o.dilation_rate = c.dilation;
    return std::make_shared<Conv1D>(c.filters, c.kernel, c.activation, o);
  }
  if (cls == "Conv2DTranspose") {
    Conv2DTransposeOptions o;
    o.strides = c.strides;
    o.padding = padding_of(c.padding);
    o.dilation_rate = c.dilation;
    o.output_padding = c.output_padding;
    return std::make_shared<Conv2DTranspose>(c.filters, c.kernel, c.activation, o);
  }
  if (cls == "DepthwiseConv2D" || cls == "SeparableConv2D") {
    SeparableConv2DOptions o;
    o.strides = c.strides;
    o.padding = padding_of(c.padding);
    o.dilation_rate = c.dilation;
    o.depth_multiplier = c.mult;
    if (cls == "SeparableConv2D") return std::make_shared<SeparableConv2D>(c.filters, c.kernel, c.activation, o);
    return std::make_shared<DepthwiseConv2D>(c.kernel, c.activation, o);
  }
  if (cls == "UpSampling2D") return std::make_shared<UpSampling2D>(c.size[0], c.size[1]);
  const Padding2D p{c.pad[0], c.pad[1], c.pad[2], c.pad[3]};
  if (cls == "ZeroPadding2D") return std::make_shared<ZeroPadding2D>(p);
  return std::make_shared<Cropping2D>(p);
}

Tensor from(const double* v, const Shape& shape, Device d) {
  std::int64_t n = 1;
  for (auto s : shape) n *= s;
  return tensor(std::vector<double>(v, v + n), shape, kFloat64).to(d);
}

// got == want to float32's precision (the weights are float32: Keras's float64 values rounded)
void check_close(const Tensor& got, const double* want, const char* what) {
  const auto v = got.to(Device::cpu()).to_vector<double>();
  INFO(what);
  for (std::size_t i = 0; i < v.size(); ++i) REQUIRE(v[i] == Approx(want[i]).epsilon(1e-5).margin(1e-6));
}

}  // namespace

TEST_CASE("convolution layers match Keras 3: outputs and gradients in the input and the weights, every device",
          "[conv_keras]") {
  if (!cuda::is_available()) WARN("CUDA half skipped: " << cuda::status());
  for (const Device& d : devices()) {
    for (const auto& c : g::kCases) {
      INFO(c.name << " on " << d.str());
      LayerPtr layer = make(c);
      layer->set_device(d);
      const Shape xs(c.x_shape, c.x_shape + c.rank), ys(c.y_shape, c.y_shape + c.rank);
      const Tensor x = from(c.x, xs, d);
      (*layer)(x);  // builds
      // Keras's weights, names and order: its weights load as they are
      const std::vector<Variable> ws = layer->weights();
      REQUIRE(static_cast<int>(ws.size()) == c.n_weights);
      for (std::size_t k = 0; k < ws.size(); ++k) {
        CHECK(ws[k].name() == layer->name() + "/" + c.weight_names[k]);
        REQUIRE(ws[k].size() == c.weight_sizes[k]);
        Variable w = ws[k];
        w.assign(from(c.weights[k], w.shape(), d).astype(w.dtype()));
      }
      GradientTape tape;
      tape.watch(x);
      const Tensor y = (*layer)(x);
      REQUIRE(y.shape() == ys);
      CHECK(y.device() == d);
      const std::int64_t n = y.size();
      std::vector<double> lin(static_cast<std::size_t>(n));
      for (std::int64_t i = 0; i < n; ++i) lin[static_cast<std::size_t>(i)] = n == 1 ? -1.0 : -1.0 + 2.0 * i / (n - 1);
      std::vector<Tensor> sources{x};
      for (const auto& w : ws) sources.push_back(w);
      const auto grads = tape.gradient(sum(y * tensor(lin, ys, kFloat64).to(d)), sources);
      check_close(y, c.y, "y");
      check_close(grads[0], c.dx, "dx");
      for (std::size_t k = 0; k < ws.size(); ++k) {
        check_close(grads[k + 1], c.dweights[k], c.weight_names[k]);
      }
    }
  }
}

TEST_CASE("a dilated Conv2DTranspose is the dilated Conv2D's input gradient, with Keras's output shape",
          "[conv_keras]") {
  // (TensorFlow's CPU kernels refuse a dilated conv2d_transpose: no golden values from Keras)
  Generator gen(5);
  for (Padding p : {Padding::Valid, Padding::Same}) {
    for (const Device& d : devices()) {
      INFO((p == Padding::Same ? "same" : "valid") << " on " << d.str());
      Conv2DTransposeOptions o;
      o.padding = p;
      o.dilation_rate = 2;
      o.use_bias = false;
      Conv2DTranspose layer(3, 3, Activation::Linear, o);
      layer.set_device(d);
      const Tensor x = uniform({2, 5, 4, 2}, gen, -1, 1, kFloat64).to(d);
      const Tensor y = layer(x);
      // valid: 5 + (5 - 1) rows, 4 + 4 columns (a 3-tap window spans 5); same: the input's size
      const Shape want = p == Padding::Valid ? Shape{2, 9, 8, 3} : Shape{2, 5, 4, 3};
      REQUIRE(y.shape() == want);
      const Tensor z = zeros(want, kFloat64, d);
      GradientTape tape;
      tape.watch(z);
      const Tensor fwd = conv2d(z, layer.kernel(), 1, p, 2);  // [2, 5, 4, 2]
      const Tensor back = tape.gradient(fwd, z, x);
      const auto yv = y.to(Device::cpu()).to_vector<double>(), bv = back.to(Device::cpu()).to_vector<double>();
      for (std::size_t i = 0; i < yv.size(); ++i) REQUIRE(yv[i] == Approx(bv[i]).margin(1e-12));
    }
  }
}

TEST_CASE("convolution layers: Keras's names, weight shapes, initial values and configuration errors",
          "[conv_keras][errors]") {
  const Tensor x = ones({2, 6, 6, 3});
  SeparableConv2DOptions so;
  so.depth_multiplier = 2;
  SeparableConv2D sep(4, 3, "relu", so);
  CHECK(sep(x).shape() == Shape{2, 4, 4, 4});
  CHECK(sep.name() == "separable_conv2d");
  REQUIRE(sep.weights().size() == 3);
  CHECK(sep.depthwise_kernel().shape() == Shape{3, 3, 3, 2});
  CHECK(sep.pointwise_kernel().shape() == Shape{1, 1, 6, 4});
  CHECK(sep.bias().shape() == Shape{4});
  CHECK(sep.count_params() == 54 + 24 + 4);
  DepthwiseConv2DOptions dopt;
  dopt.depth_multiplier = 3;
  dopt.padding = Padding::Same;
  dopt.strides = 2;
  DepthwiseConv2D dw(3, Activation::Linear, dopt);
  CHECK(dw(x).shape() == Shape{2, 3, 3, 9});
  CHECK(dw.name() == "depthwise_conv2d");
  CHECK(dw.weights()[0].name() == "depthwise_conv2d/kernel");
  CHECK(dw.bias().shape() == Shape{9});
  Conv2DTransposeOptions to;
  to.strides = 2;
  to.padding = Padding::Same;
  Conv2DTranspose tr(5, 3, "relu", to);
  CHECK(tr(x).shape() == Shape{2, 12, 12, 5});
  CHECK(tr.name() == "conv2d_transpose");
  CHECK(tr.kernel().shape() == Shape{3, 3, 5, 3});  // [k, k, filters, c_in]
  UpSampling2D up;
  CHECK(up(x).shape() == Shape{2, 12, 12, 3});
  CHECK(up.name() == "up_sampling2d");
  ZeroPadding2D zp;
  CHECK(zp(x).shape() == Shape{2, 8, 8, 3});
  CHECK(zp.name() == "zero_padding2d");
  CHECK(sum(zp(x)).item<double>() == 2 * 6 * 6 * 3);
  Cropping2D cr(Padding2D{1, 2, 0, 3});
  CHECK(cr(x).shape() == Shape{2, 3, 3, 3});
  CHECK(cr.name() == "cropping2d");
  Conv2DOptions co;
  co.dilation_rate = 2;
  co.padding = Padding::Same;
  CHECK(Conv2D(2, 3, "linear", co)(x).shape() == Shape{2, 6, 6, 2});

  // strides > 1 with dilation_rate > 1, as Keras: a ValueError naming the layer and both
  co.strides = 2;
  CHECK_THROWS_AS(Conv2D(2, 3, "linear", co), ValueError);
  CHECK_THROWS_WITH(Conv2D(2, 3, "linear", co),
                    Contains("Conv2D") && Contains("strides=2") && Contains("dilation_rate=2"));
  Conv1DOptions c1;
  c1.strides = 3;
  c1.dilation_rate = 2;
  CHECK_THROWS_AS(Conv1D(2, 3, "linear", c1), ValueError);
  to.dilation_rate = 2;
  CHECK_THROWS_WITH(Conv2DTranspose(2, 3, "linear", to), Contains("Conv2DTranspose") && Contains("dilation_rate=2"));
  dopt.dilation_rate = 2;
  CHECK_THROWS_WITH(DepthwiseConv2D(3, "linear", dopt), Contains("DepthwiseConv2D") && Contains("strides=2"));
  so.strides = 2;
  so.dilation_rate = 3;
  CHECK_THROWS_WITH(SeparableConv2D(2, 3, "linear", so), Contains("SeparableConv2D") && Contains("dilation_rate=3"));

  // zero and negative sizes
  Conv2DOptions c0;
  c0.dilation_rate = 0;
  CHECK_THROWS_WITH(Conv2D(2, 3, "linear", c0), Contains("Conv2D: dilation_rate must be positive, got 0"));
  CHECK_THROWS_AS(Conv2DTranspose(0, 3), ValueError);
  CHECK_THROWS_AS(Conv2DTranspose(2, 0), ValueError);
  Conv2DTransposeOptions op;
  op.strides = 2;
  op.output_padding = 2;
  CHECK_THROWS_WITH(Conv2DTranspose(2, 3, "linear", op),
                    Contains("Conv2DTranspose") && Contains("output_padding=2") && Contains("strides=2"));
  DepthwiseConv2DOptions m0;
  m0.depth_multiplier = 0;
  CHECK_THROWS_WITH(DepthwiseConv2D(3, "linear", m0), Contains("DepthwiseConv2D: depth_multiplier must be positive"));
  CHECK_THROWS_AS(DepthwiseConv2D(-1), ValueError);
  CHECK_THROWS_WITH(SeparableConv2D(0, 3), Contains("SeparableConv2D: filters must be positive"));
  CHECK_THROWS_WITH(UpSampling2D(2, 0), Contains("UpSampling2D: size must be positive, got 0"));
  CHECK_THROWS_WITH(ZeroPadding2D(Padding2D{0, -1, 0, 0}), Contains("ZeroPadding2D") && Contains("negative"));
  CHECK_THROWS_AS(Cropping2D(-1), ValueError);
  CHECK_THROWS_WITH(Cropping2D(3)(x), Contains("cropping2d") && Contains("[2, 6, 6, 3]"));
  CHECK_THROWS_AS(Cropping2D(Padding2D{0, 0, 1, std::numeric_limits<std::int64_t>::max()})(x), ValueError);

  // inputs of the wrong rank: ValueError naming the layer and the shape; of the wrong channels: ShapeError
  const Tensor flat = ones({2, 6, 3});
  CHECK_THROWS_AS(Conv2DTranspose(2, 3)(flat), ValueError);
  CHECK_THROWS_WITH(Conv2DTranspose(2, 3)(flat), Contains("conv2d_transpose") && Contains("[2, 6, 3]"));
  CHECK_THROWS_WITH(DepthwiseConv2D(3)(flat), Contains("depthwise_conv2d") && Contains("[2, 6, 3]"));
  CHECK_THROWS_WITH(SeparableConv2D(2, 3)(flat), Contains("separable_conv2d") && Contains("[2, 6, 3]"));
  CHECK_THROWS_AS(UpSampling2D()(flat), ValueError);
  CHECK_THROWS_AS(ZeroPadding2D()(flat), ValueError);
  CHECK_THROWS_AS(Cropping2D()(flat), ValueError);
  CHECK_THROWS_AS(sep(ones({2, 6, 6, 2})), ShapeError);
  CHECK_THROWS_WITH(tr(ones({2, 6, 6, 2})), Contains("conv2d_transpose") && Contains("[2, 6, 6, 2]"));
  CHECK_THROWS_AS(dw(ones({2, 6, 6, 4})), ShapeError);
}

TEST_CASE("a small segmentation model trains: Conv2D, SeparableConv2D, Conv2DTranspose, ZeroPadding2D",
          "[conv_keras][fit]") {
  // images of 2x2 blocks (UpSampling2D of [4, 4] noise), each pixel labelled by its block's
  // brightness: the strided encoder sees every block, the transposed convolution draws them back
  Generator gen(9);
  const Tensor x = UpSampling2D(2)(uniform({128, 4, 4, 1}, gen, 0, 1));
  const Tensor y = (x > 0.5).astype(kFloat32);
  Conv2DOptions down;
  down.strides = 2;
  SeparableConv2DOptions sep;
  sep.padding = Padding::Same;
  sep.dilation_rate = 2;
  Conv2DTransposeOptions up;
  up.strides = 2;
  Sequential model(Conv2D(8, 2, "relu", down),          // [8, 8] -> [4, 4]
                   SeparableConv2D(8, 3, "relu", sep),  // [4, 4]
                   Conv2DTranspose(8, 2, "relu", up),   // [4, 4] -> [8, 8]
                   ZeroPadding2D(1),                    // [10, 10]
                   Conv2D(1, 3, "sigmoid"));            // [8, 8]
  model.set_seed(5);
  model.compile(std::make_shared<optimizers::Adam>(0.01), "binary_crossentropy", {"accuracy"});
  FitOptions o;
  o.epochs = 30;
  o.verbose = 0;
  model.fit(x, y, o);
  CHECK(model.evaluate(x, y, 128, 0).at("accuracy") > 0.95);
}
