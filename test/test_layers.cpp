// Layers: build on first call, output shapes and weight counts (Keras's numbers), hand-computed
// outputs of Dense, Conv2D, pooling and BatchNormalization, Dropout's training flag, seeding,
// names, and summary()'s table.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "tapeflow/tapeflow.hpp"

using namespace tapeflow;
using namespace tapeflow::layers;

namespace {

std::vector<float> values(const Tensor& t) { return t.to_vector<float>(); }

Sequential book_convnet() {
  return Sequential(Conv2D(32, 3, "relu"), MaxPooling2D(2), Conv2D(64, 3, "relu"), MaxPooling2D(2),
                    Conv2D(128, 3, "relu"), Flatten(), Dense(10, "softmax"));
}

}  // namespace

TEST_CASE("Dense builds its weights on the first call from the input shape") {
  Dense dense(512, "relu");
  CHECK_FALSE(dense.built());
  CHECK(dense.weights().empty());
  CHECK(dense.count_params() == 0);

  const Tensor y = dense(zeros({4, 784}));
  CHECK(dense.built());
  CHECK(y.shape() == Shape{4, 512});
  CHECK(dense.kernel().shape() == Shape{784, 512});
  CHECK(dense.bias().shape() == Shape{512});
  CHECK(dense.count_params() == 401920);
  CHECK(dense.name() == "dense");
  CHECK(dense.kernel().name() == "dense/kernel");
  CHECK(dense.bias().name() == "dense/bias");
  CHECK(dense.trainable_weights().size() == 2);
  CHECK(dense.non_trainable_weights().empty());
  CHECK(dense.output_shape() == Shape{-1, 512});

  // the weights stay: a second call reuses them
  const Tensor kernel_before = dense.kernel().clone();
  dense(ones({2, 784}));
  CHECK(values(dense.kernel()) == values(kernel_before));
  CHECK(dense.weights().size() == 2);

  // inputs of another width are refused with the layer's name and both widths
  CHECK_THROWS_AS(dense(zeros({4, 100})), ShapeError);
  CHECK_THROWS_WITH(dense(zeros({4, 100})), Catch::Contains("dense") && Catch::Contains("784") &&
                                                Catch::Contains("[4, 100]"));
  CHECK_THROWS_AS(dense(zeros({784})), ShapeError);  // rank 1 has no feature axis after the batch
  // a rank-1 first input is refused before any weight is made (Keras's min_ndim=2), so a
  // model fed x [n] by mistake says so instead of building a kernel from the batch size
  Dense fresh(3);
  CHECK_THROWS_WITH(fresh(zeros({32})),
                    "dense: expected an input of rank >= 2 ([batch, ..., features]), got [32]");
  CHECK_FALSE(fresh.built());
  CHECK(fresh.weights().empty());
}

TEST_CASE("Dense computes activation(x @ kernel + bias)") {
  Dense dense(2, Activation::Linear);
  dense(zeros({1, 3}));
  Variable kernel = dense.kernel(), bias = dense.bias();
  kernel.assign(tensor<float>({1, 2, 3, 4, 5, 6}, {3, 2}));
  bias.assign(tensor<float>({0.5f, -100.0f}, {2}));
  const Tensor x = tensor<float>({1, 1, 1, 0, 1, 0}, {2, 3});
  // row 0: [1+3+5, 2+4+6] + b = [9.5, -88]; row 1: [3, 4] + b = [3.5, -96]
  CHECK(values(dense(x)) == std::vector<float>{9.5f, -88.0f, 3.5f, -96.0f});

  Dense relu_layer(2, "relu");
  relu_layer(zeros({1, 3}));
  Variable k2 = relu_layer.kernel(), b2 = relu_layer.bias();
  k2.assign(kernel);
  b2.assign(bias);
  CHECK(values(relu_layer(x)) == std::vector<float>{9.5f, 0.0f, 3.5f, 0.0f});

  Dense no_bias(3, Activation::Softmax, [] {
    DenseOptions o;
    o.use_bias = false;
    o.kernel_initializer = initializers::ones;
    return o;
  }());
  const auto p = values(no_bias(tensor<float>({1, 2}, {1, 2})));
  CHECK(no_bias.weights().size() == 1);
  CHECK(no_bias.count_params() == 6);
  for (float v : p) CHECK(v == Approx(1.0 / 3.0));
}

TEST_CASE("activations by name") {
  CHECK(activation_from_name("relu") == Activation::Relu);
  CHECK(activation_from_name("softmax") == Activation::Softmax);
  CHECK(activation_from_name("sigmoid") == Activation::Sigmoid);
  CHECK(activation_from_name("tanh") == Activation::Tanh);
  CHECK(activation_from_name("linear") == Activation::Linear);
  CHECK(activation_from_name("gelu") == Activation::Gelu);  // the rest: test_activations
  CHECK_THROWS_AS(activation_from_name("gelu_new"), ValueError);
  CHECK_THROWS_WITH(Dense(3, "swishy"), Catch::Contains("swishy"));
  CHECK(std::string(activation_name(Activation::Tanh)) == "tanh");
  const auto s = values(activate(tensor<float>({0.0f}, {1}), Activation::Sigmoid));
  CHECK(s[0] == Approx(0.5));
}

TEST_CASE("the book's convnet: output shapes and parameter counts as Keras reports them") {
  Sequential model = book_convnet();
  CHECK_FALSE(model.built());
  model.build({-1, 28, 28, 1});
  REQUIRE(model.built());
  const auto ls = model.layers();
  REQUIRE(ls.size() == 7);
  const std::vector<std::int64_t> params{320, 0, 18496, 0, 73856, 0, 11530};
  const std::vector<Shape> shapes{{-1, 26, 26, 32}, {-1, 13, 13, 32}, {-1, 11, 11, 64}, {-1, 5, 5, 64},
                                  {-1, 3, 3, 128},  {-1, 1152},       {-1, 10}};
  const std::vector<std::string> names{"conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1",
                                       "conv2d_2", "flatten",      "dense"};
  for (std::size_t i = 0; i < ls.size(); ++i) {
    INFO("layer " << i);
    CHECK(ls[i]->count_params() == params[i]);
    CHECK(ls[i]->output_shape() == shapes[i]);
    CHECK(ls[i]->name() == names[i]);
  }
  CHECK(model.count_params() == 104202);
  const auto conv = std::dynamic_pointer_cast<Conv2D>(ls[2]);
  REQUIRE(conv);
  CHECK(conv->kernel().shape() == Shape{3, 3, 32, 64});  // HWIO

  // a real batch flows through with the same shapes
  const Tensor y = model(uniform({2, 28, 28, 1}, model.layers()[0]->generator()));
  CHECK(y.shape() == Shape{2, 10});
  for (std::int64_t i = 0; i < 2; ++i) CHECK(sum(y[i]).item<double>() == Approx(1.0).epsilon(1e-5));
}

TEST_CASE("Conv2D and pooling against values worked out by hand") {
  // x [1, 3, 3, 1] = 1..9, a 2x2 kernel of ones, bias 0.5: each output is its window's sum + 0.5
  Conv2DOptions o;
  o.kernel_initializer = initializers::ones;
  o.bias_initializer = [](const Shape& s, Generator&) { return full(s, 0.5); };
  Conv2D conv(1, 2, Activation::Linear, o);
  const Tensor x = arange(1.0, 10.0).reshape({1, 3, 3, 1});
  const Tensor y = conv(x);
  CHECK(y.shape() == Shape{1, 2, 2, 1});
  CHECK(values(y) == std::vector<float>{12.5f, 16.5f, 24.5f, 28.5f});

  o.padding = Padding::Same;
  Conv2D same(4, 3, Activation::Relu, o);
  CHECK(same(x).shape() == Shape{1, 3, 3, 4});
  CHECK(same.count_params() == 3 * 3 * 1 * 4 + 4);

  o.padding = Padding::Valid;
  o.strides = 2;
  Conv2D strided(2, 1, Activation::Linear, o);
  CHECK(strided(zeros({2, 5, 5, 3})).shape() == Shape{2, 3, 3, 2});

  MaxPooling2D pool(2);
  const Tensor p = pool(arange(0.0, 16.0).reshape({1, 4, 4, 1}));
  CHECK(p.shape() == Shape{1, 2, 2, 1});
  CHECK(values(p) == std::vector<float>{5, 7, 13, 15});
  CHECK(pool.count_params() == 0);

  AveragePooling2D avg(2);
  CHECK(values(avg(arange(0.0, 16.0).reshape({1, 4, 4, 1}))) == std::vector<float>{2.5f, 4.5f, 10.5f, 12.5f});

  CHECK_THROWS_AS(Conv2D(0, 3), ValueError);
  Conv2D needs_nhwc(2, 3);
  CHECK_THROWS_AS(needs_nhwc(zeros({4, 28, 28})), ShapeError);
}

TEST_CASE("Flatten keeps the batch axis and is a view of contiguous inputs") {
  Flatten flatten;
  const Tensor x = arange(0.0, 120.0).reshape({2, 3, 4, 5});
  const Tensor y = flatten(x);
  CHECK(y.shape() == Shape{2, 60});
  CHECK(y.storage() == x.storage());
  CHECK(values(y) == values(x));
  CHECK(flatten.count_params() == 0);
}

TEST_CASE("Dropout drops only in training, with the inverted scaling, reproducibly") {
  Dropout drop(0.5);
  drop.set_seed(7);
  const Tensor x = ones({100, 100});
  CHECK(values(drop(x)) == values(x));  // inference: the identity
  CHECK(values(drop(x, false)) == values(x));

  const auto y = values(drop(x, true));
  std::int64_t zeros_seen = 0, twos_seen = 0;
  for (float v : y) {
    zeros_seen += v == 0.0f;
    twos_seen += v == 2.0f;
  }
  CHECK(zeros_seen + twos_seen == 10000);
  CHECK(zeros_seen > 4500);
  CHECK(zeros_seen < 5500);
  // each call draws a new mask; the same seed replays the same masks
  const auto y2 = values(drop(x, true));
  CHECK(y2 != y);
  Dropout again(0.5);
  again.set_seed(7);
  CHECK(values(again(x, true)) == y);

  CHECK_THROWS_AS(Dropout(1.0), ValueError);
  CHECK_THROWS_AS(Dropout(-0.1), ValueError);
  Dropout none(0.0);
  CHECK(values(none(x, true)) == values(x));
}

TEST_CASE("BatchNormalization: batch statistics in training, moving statistics in inference") {
  BatchNormalization bn;
  // x [4, 2]: column 0 = 1, 2, 3, 4 (mean 2.5, biased var 1.25); column 1 = 10, 10, 10, 30 (mean 15, var 75)
  const Tensor x = tensor<float>({1, 10, 2, 10, 3, 10, 4, 30}, {4, 2});
  const Tensor y = bn(x, /*training=*/true);
  REQUIRE(bn.built());
  CHECK(bn.count_params() == 8);
  CHECK(bn.trainable_weights().size() == 2);
  CHECK(bn.non_trainable_weights().size() == 2);
  CHECK(bn.moving_mean().name() == "batch_normalization/moving_mean");

  const double eps = 1e-3;
  const double mean0 = 2.5, var0 = 1.25, mean1 = 15, var1 = 75;
  const std::vector<double> col0{1, 2, 3, 4}, col1{10, 10, 10, 30};
  const auto out = values(y);
  for (int i = 0; i < 4; ++i) {
    CHECK(out[2 * i] == Approx((col0[i] - mean0) / std::sqrt(var0 + eps)).margin(1e-5));
    CHECK(out[2 * i + 1] == Approx((col1[i] - mean1) / std::sqrt(var1 + eps)).margin(1e-5));
  }
  // moving = 0.99 * moving + 0.01 * batch, from mean 0 and variance 1
  const auto mm = values(bn.moving_mean()), mv = values(bn.moving_variance());
  CHECK(mm[0] == Approx(0.01 * mean0));
  CHECK(mm[1] == Approx(0.01 * mean1));
  CHECK(mv[0] == Approx(0.99 + 0.01 * var0));
  CHECK(mv[1] == Approx(0.99 + 0.01 * var1));

  // inference uses the moving statistics (and does not update them), with gamma and beta
  Variable gamma = bn.gamma(), beta = bn.beta();
  gamma.assign(tensor<float>({2, 3}, {2}));
  beta.assign(tensor<float>({-1, 1}, {2}));
  const auto inf = values(bn(x));
  for (int i = 0; i < 4; ++i) {
    CHECK(inf[2 * i] == Approx((col0[i] - mm[0]) / std::sqrt(mv[0] + eps) * 2 - 1).margin(1e-4));
    CHECK(inf[2 * i + 1] == Approx((col1[i] - mm[1]) / std::sqrt(mv[1] + eps) * 3 + 1).margin(1e-4));
  }
  CHECK(values(bn.moving_mean()) == mm);

  // gradients: d sum(y) / d beta = batch size; d sum(y) / d x = 0 (normalised columns sum to 0)
  Tensor xv = x.clone();
  GradientTape tape(true);
  tape.watch(xv);
  const Tensor loss = sum(bn(xv, true));
  const Tensor d_beta = tape.gradient(loss, bn.beta());
  const Tensor d_x = tape.gradient(loss, xv);
  CHECK(values(d_beta) == std::vector<float>{4, 4});
  for (float v : values(d_x)) CHECK(v == Approx(0).margin(1e-4));
  // the moving statistics were updated outside the tape: no gradient reaches them
  CHECK_FALSE(tape.gradient(loss, bn.moving_mean()).defined());

  // frozen, it normalises with the moving statistics even in training, and leaves them alone
  bn.set_trainable(false);
  const auto mm_before = values(bn.moving_mean());
  CHECK(values(bn(x, true)) == values(bn(x, false)));
  CHECK(values(bn.moving_mean()) == mm_before);
}

TEST_CASE("BatchNormalization over NHWC normalises each channel over batch, height and width") {
  BatchNormalization bn;
  Generator gen(3);
  const Tensor x = normal({8, 5, 5, 3}, gen, 4.0, 2.0);
  const Tensor y = bn(x, true);
  const auto m = values(mean(y, {0, 1, 2}));
  const auto v = values(var(y, {0, 1, 2}));
  for (int c = 0; c < 3; ++c) {
    CHECK(m[c] == Approx(0).margin(1e-5));
    CHECK(v[c] == Approx(1).epsilon(1e-3));
  }
  CHECK(bn.count_params() == 12);
}

TEST_CASE("initializers follow Keras's fans and are seeded") {
  Generator gen(1);
  const Shape s{784, 512};
  const double limit = std::sqrt(6.0 / (784 + 512));
  const Tensor g = initializers::glorot_uniform(s, gen);
  CHECK(max(abs(g)).item<double>() <= limit);
  CHECK(max(abs(g)).item<double>() > 0.99 * limit);
  CHECK(std::abs(mean(g).item<double>()) < 1e-3);

  // he_normal on [3, 3, 32, 64]: fan_in = 288, stddev sqrt(2 / 288) / 0.8796 before truncation at 2 sigma
  const Shape k{3, 3, 32, 64};
  const double sd = std::sqrt(2.0 / 288.0) / 0.87962566103423978;
  const Tensor h = initializers::he_normal(k, gen);
  CHECK(h.shape() == k);
  CHECK(max(abs(h)).item<double>() <= 2 * sd + 1e-6);
  CHECK(std::sqrt(var(h).item<double>()) == Approx(std::sqrt(2.0 / 288.0)).epsilon(0.05));

  CHECK(values(initializers::zeros({3}, gen)) == std::vector<float>{0, 0, 0});
  CHECK(values(initializers::ones({2}, gen)) == std::vector<float>{1, 1});
  CHECK(values(initializers::get("ones")({2}, gen)) == std::vector<float>{1, 1});
  CHECK_THROWS_AS(initializers::get("identity"), ValueError);

  Generator a(5), b(5);
  CHECK(values(initializers::glorot_uniform({10, 10}, a)) == values(initializers::glorot_uniform({10, 10}, b)));
}

TEST_CASE("Sequential seeds its layers from its own seed: reproducible and distinct") {
  auto make = [](std::uint64_t seed) {
    Sequential m;
    m.add(Dense(8, "relu"));
    m.add(Dense(8, "relu"));
    m.set_seed(seed);
    m.build({-1, 8});
    return m;
  };
  Sequential a = make(42), b = make(42), c = make(43);
  const auto wa = a.weights(), wb = b.weights(), wc = c.weights();
  REQUIRE(wa.size() == 4);
  for (std::size_t i = 0; i < wa.size(); ++i) CHECK(values(wa[i]) == values(wb[i]));
  CHECK(values(wa[0]) != values(wc[0]));
  CHECK(values(wa[0]) != values(wa[2]));  // two layers of one model get different seeds
}

TEST_CASE("Sequential names layers uniquely and takes layers by value or shared_ptr") {
  auto shared = std::make_shared<Dense>(4, "relu");
  Sequential model(Dense(16, "relu"), shared, Dropout(0.2), Dense(10, "softmax"));
  model.build({-1, 3});
  const auto ls = model.layers();
  CHECK(ls[0]->name() == "dense");
  CHECK(ls[1]->name() == "dense_1");
  CHECK(ls[1] == shared);
  CHECK(ls[2]->name() == "dropout");
  CHECK(ls[3]->name() == "dense_2");
  CHECK(model.weights()[2].name() == "dense_1/kernel");
  CHECK(model.weights().size() == 6);
  CHECK(model.count_params() == (3 * 16 + 16) + (16 * 4 + 4) + (4 * 10 + 10));

  DenseOptions named;
  named.name = "dense";
  CHECK_THROWS_AS(model.add(Dense(3, Activation::Linear, named)), ValueError);
  CHECK_THROWS_AS(model.add(shared), ValueError);  // the same layer twice
  CHECK_THROWS_AS(ls[0]->set_name("renamed"), ValueError);  // built: its weights carry the name

  model.pop();
  CHECK(model.layers().size() == 3);
  // Keras's Sequential([...]) with braces, named or not
  auto first = std::make_shared<Dense>(4), second = std::make_shared<Dense>(2);
  Sequential braced({first, second});
  CHECK(braced.layers().size() == 2);
  CHECK(braced.layers()[1] == second);
  Sequential braced_named({std::make_shared<Dense>(3)}, "head");
  CHECK(braced_named.name() == "head");
  CHECK(braced_named.layers()[0]->name() == "dense");
  Sequential no_layers;
  CHECK_THROWS_AS(no_layers(zeros({1, 3})), ValueError);
}

TEST_CASE("a frozen layer lists its weights as non-trainable") {
  Sequential model(Dense(4, "relu"), Dense(2));
  model.build({-1, 3});
  model.layers()[0]->set_trainable(false);
  CHECK(model.trainable_weights().size() == 2);
  CHECK(model.non_trainable_weights().size() == 2);
  CHECK(model.layers()[0]->trainable_weights().empty());
}

TEST_CASE("summary prints Keras's table with None for the batch axis and the totals") {
  Sequential model(Dense(512, "relu"), Dense(10, "softmax"));
  CHECK_THROWS_AS(model.summary(), ValueError);  // not built
  model.build({-1, 784});
  std::ostringstream os;
  model.summary(os);
  const std::string text = os.str();
  INFO(text);
  CHECK_THAT(text, Catch::Contains("Model: \"sequential\""));
  CHECK_THAT(text, Catch::Contains("Layer (type)") && Catch::Contains("Output Shape") && Catch::Contains("Param #"));
  CHECK_THAT(text, Catch::Contains("dense (Dense)") && Catch::Contains("(None, 512)") && Catch::Contains("401,920"));
  CHECK_THAT(text, Catch::Contains("dense_1 (Dense)") && Catch::Contains("(None, 10)") && Catch::Contains("5,130"));
  CHECK_THAT(text, Catch::Contains("Total params: 407,050 (1.55 MB)"));
  CHECK_THAT(text, Catch::Contains("Trainable params: 407,050 (1.55 MB)"));
  CHECK_THAT(text, Catch::Contains("Non-trainable params: 0 (0.00 B)"));

  Sequential bn(Dense(8), BatchNormalization());
  bn.build({-1, 4});
  std::ostringstream os2;
  bn.summary(os2);
  CHECK_THAT(os2.str(), Catch::Contains("batch_normalization (BatchNormalization)") &&
                            Catch::Contains("Total params: 72") && Catch::Contains("Trainable params: 56") &&
                            Catch::Contains("Non-trainable params: 16"));
}

TEST_CASE("BatchNormalization on a rank-1 input reduces over no axis, as Keras") {
  // x [4] is one example's 4 channels: Keras's reduction axes are empty, so each element is its
  // own mean with variance 0, and the output is beta whatever x is.
  BatchNormalization bn;
  const Tensor x = tensor<float>({1, 2, 3, 4}, {4});
  CHECK(values(bn(x, /*training=*/true)) == std::vector<float>{0, 0, 0, 0});
  // moving_mean = 0.99 * 0 + 0.01 * x; moving_variance = 0.99 * 1 + 0.01 * 0
  const auto mm = values(bn.moving_mean()), mv = values(bn.moving_variance());
  for (int c = 0; c < 4; ++c) {
    CHECK(mm[c] == Approx(0.01 * (c + 1)));
    CHECK(mv[c] == Approx(0.99));
  }
  Variable beta = bn.beta();
  beta.assign(tensor<float>({-1, 1, 2, 0.5f}, {4}));
  CHECK(values(bn(x, true)) == std::vector<float>{-1, 1, 2, 0.5f});
  CHECK(values(bn.moving_mean())[3] == Approx(0.99 * 0.04 + 0.01 * 4));
}

TEST_CASE("pooling layers reject negative strides, as Conv2D and Keras do") {
  PoolingOptions o;
  o.strides = -1;
  CHECK_THROWS_AS(MaxPooling2D(2, o), ValueError);
  CHECK_THROWS_WITH(MaxPooling2D(2, o), "MaxPooling2D: strides must be positive (or 0 for the pool size), got -1");
  o.strides = -3;
  CHECK_THROWS_WITH(AveragePooling2D(2, o),
                    "AveragePooling2D: strides must be positive (or 0 for the pool size), got -3");
  // 0 still stands for the pool size; an explicit stride of 1 overlaps the windows
  o.strides = 0;
  CHECK(MaxPooling2D(2, o)(zeros({1, 4, 4, 1})).shape() == Shape{1, 2, 2, 1});
  o.strides = 1;
  CHECK(AveragePooling2D(2, o)(zeros({1, 4, 4, 1})).shape() == Shape{1, 3, 3, 1});
}

TEST_CASE("a failed build leaves no weights behind, and a retry builds them once") {
  // the bias initializer gives a wrong shape on its first call only: kernel was already added
  int calls = 0;
  DenseOptions o;
  o.bias_initializer = [&](const Shape& s, Generator&) {
    return ++calls == 1 ? tapeflow::zeros({7}) : tapeflow::zeros(s);
  };
  Dense dense(3, "linear", o);
  CHECK_THROWS_AS(dense(ones({2, 4})), ShapeError);
  CHECK_FALSE(dense.built());
  CHECK(dense.weights().empty());
  CHECK(dense.count_params() == 0);

  CHECK(dense(ones({2, 4})).shape() == Shape{2, 3});
  CHECK(dense.built());
  const auto ws = dense.weights();
  REQUIRE(ws.size() == 2);
  CHECK(ws[0].name() == "dense/kernel");
  CHECK(ws[1].name() == "dense/bias");
  CHECK(dense.count_params() == 4 * 3 + 3);

  // an initializer that throws rolls back the same way
  DenseOptions throwing;
  throwing.bias_initializer = [](const Shape&, Generator&) -> Tensor { throw ValueError("no bias today"); };
  Dense broken(3, "linear", throwing);
  CHECK_THROWS_WITH(broken(ones({2, 4})), "no bias today");
  CHECK(broken.weights().empty());
  CHECK(broken.trainable_weights().empty());
}

namespace {

// A custom layer made of sublayers, as a Keras user writes one: two Dense layers tracked in the
// constructor, called from call()
class TwoDense : public Layer {
 public:
  explicit TwoDense(std::string name = "") : Layer("TwoDense", std::move(name)) {
    first = track(std::make_shared<Dense>(4, "relu"));
    second = track(std::make_shared<Dense>(4));
  }
  Tensor call(const Tensor& x, bool training) override { return (*second)((*first)(x, training), training); }
  std::shared_ptr<Dense> first, second;
};

}  // namespace

TEST_CASE("a custom layer's tracked sublayers are named, seeded, counted, trained and frozen with it") {
  TwoDense block;
  const Tensor x = ones({2, 4});
  const Tensor y = block(x);
  CHECK(y.shape() == Shape{2, 4});
  // named after their class, unique among siblings, under the block's name
  CHECK(block.name() == "two_dense");
  CHECK(block.first->name() == "two_dense/dense");
  CHECK(block.second->name() == "two_dense/dense_1");
  const auto ws = block.weights();
  REQUIRE(ws.size() == 4);
  CHECK(ws[0].name() == "two_dense/dense/kernel");
  CHECK(ws[3].name() == "two_dense/dense_1/bias");
  CHECK(block.count_params() == 2 * (4 * 4 + 4));
  CHECK(block.trainable_weights().size() == 4);
  // two equal sublayers do not start alike
  CHECK(values(block.first->kernel()) != values(block.second->kernel()));
  // the output is the sublayers' composition
  const Tensor want = matmul(relu(matmul(x, block.first->kernel()) + block.first->bias()), block.second->kernel()) +
                      block.second->bias();
  CHECK(values(y) == values(want));

  // frozen with the block
  block.set_trainable(false);
  CHECK(block.trainable_weights().empty());
  CHECK(block.non_trainable_weights().size() == 4);
  block.set_trainable(true);
  block.first->set_trainable(false);
  CHECK(block.trainable_weights().size() == 2);
  CHECK(block.non_trainable_weights().size() == 2);
  block.first->set_trainable(true);

  // a seed reaches the sublayers: same seed, same weights; another seed, others
  auto make = [](std::uint64_t seed) {
    TwoDense b;
    b.set_seed(seed);
    b(ones({1, 4}));
    return b.weights();
  };
  const auto a1 = make(7), a2 = make(7), b1 = make(8);
  for (std::size_t i = 0; i < a1.size(); ++i) CHECK(values(a1[i]) == values(a2[i]));
  CHECK(values(a1[0]) != values(b1[0]));

  // in a model: trained by fit, saved under unique names, listed by summary
  Sequential model(Dense(4, "relu"), std::make_shared<TwoDense>(), Dense(1));
  model.compile(std::make_shared<optimizers::SGD>(0.1), "mse");
  model.build({-1, 3});
  REQUIRE(model.weights().size() == 8);
  CHECK(model.weights()[2].name() == "two_dense/dense/kernel");  // no clash with the model's "dense"
  CHECK(model.count_params() == (3 * 4 + 4) + 2 * (4 * 4 + 4) + (4 + 1));
  const auto inner = std::dynamic_pointer_cast<TwoDense>(model.layers()[1]);
  REQUIRE(inner);
  const std::vector<float> before = values(inner->first->kernel());
  FitOptions o;
  o.epochs = 2;
  o.verbose = 0;
  Generator gen(1);
  model.fit(uniform({16, 3}, gen), ones({16, 1}), o);
  CHECK(values(inner->first->kernel()) != before);

  // misuse
  class Bad : public Layer {
   public:
    Bad() : Layer("Bad", "") {}
    Tensor call(const Tensor& x, bool) override { return x; }
    void again(const std::shared_ptr<Layer>& l) { track(l); }
  };
  auto bad = std::make_shared<Bad>();
  auto d = std::make_shared<Dense>(2);
  bad->again(d);
  CHECK_THROWS_AS(bad->again(d), ValueError);  // tracked twice
  CHECK_THROWS_AS(bad->again(nullptr), ValueError);
  CHECK_THROWS_AS(bad->again(bad), ValueError);  // itself
  auto outer = std::make_shared<Bad>();
  outer->again(bad);
  CHECK_THROWS_WITH(bad->again(outer), Catch::Contains("a cycle"));
}

TEST_CASE("named layers are seeded by their model too: two named twins start apart") {
  DenseOptions a, b;
  a.name = "first";
  b.name = "second";
  Sequential model(Dense(8, Activation::Linear, a), Dense(8, Activation::Linear, b));
  model.build({-1, 8});
  const auto ws = model.weights();
  CHECK(values(ws[0]) != values(ws[2]));
  // two named Dropout layers draw different masks
  Sequential drops(Dropout(0.5, "drop_a"), Dropout(0.5, "drop_b"));
  const Tensor x = ones({1, 4096});
  const double kept = mean((drops(x, true) != 0.0).astype(kFloat64)).item<double>();
  CHECK(kept == Approx(0.25).margin(0.03));  // 0.5 * 0.5 when the masks are independent
  // a layer seeded by hand keeps its seed in a model
  Dense hand(8);
  hand.set_seed(99);
  Dense twin(8);
  twin.set_seed(99);
  Sequential m1(std::make_shared<Dense>(hand)), m2(std::make_shared<Dense>(twin));
  m1.build({-1, 2});
  m2.build({-1, 2});
  CHECK(values(m1.weights()[0]) == values(m2.weights()[0]));
}

TEST_CASE("a layer shared by two parents is trained once; a sublayer keeps a hand seed and its parent's new name") {
  // P tracks d and Q, and Q tracks d too: d's weights are listed (and stepped) once, as Keras
  class Holder : public Layer {
   public:
    explicit Holder(std::vector<std::shared_ptr<Layer>> subs) : Layer("Holder", "") {
      for (auto& s : subs) track(s);
      parts = std::move(subs);
    }
    Tensor call(const Tensor& x, bool training) override {
      Tensor y = x;
      for (auto& p : parts) y = (*p)(y, training);
      return y;
    }
    std::vector<std::shared_ptr<Layer>> parts;
  };
  auto d = std::make_shared<Dense>(2);
  auto q = std::make_shared<Holder>(std::vector<std::shared_ptr<Layer>>{d});
  auto p = std::make_shared<Holder>(std::vector<std::shared_ptr<Layer>>{d, q});
  (*p)(ones({1, 2}));
  CHECK(p->weights().size() == 2);
  CHECK(p->trainable_weights().size() == 2);
  CHECK(p->count_params() == 2 * 2 + 2);
  // and a tracked layer also put in the model directly: counted once, saved once
  auto shared = std::make_shared<Dense>(3);
  Sequential model(shared, std::make_shared<Holder>(std::vector<std::shared_ptr<Layer>>{shared}));
  model.build({-1, 3});
  CHECK(model.weights().size() == 2);
  CHECK(model.count_params() == 3 * 3 + 3);
  const std::string path = "/tmp/tapeflow_test_shared_" + std::to_string(::getpid()) + ".safetensors";
  model.save_weights(path);
  model.load_weights(path);
  std::remove(path.c_str());

  // a sublayer seeded by hand keeps its seed when a model seeds its parent
  auto make = [](bool in_model) {
    auto hand = std::make_shared<Dense>(4);
    hand->set_seed(77);
    auto parent = std::make_shared<Holder>(std::vector<std::shared_ptr<Layer>>{hand});
    if (in_model) {
      Sequential m(parent);
      m.set_seed(5);
      m.build({-1, 4});
    } else {
      (*parent)(ones({1, 4}));
    }
    return values(hand->kernel());
  };
  CHECK(make(true) == make(false));

  // renamed after a failed build: the sublayers take the new name, not both
  class Picky : public Layer {
   public:
    Picky() : Layer("Picky", "") { inner = track(std::make_shared<Dense>(2)); }
    void build(const Shape& s) override {
      if (s.back() != 4) throw ShapeError("picky: wants 4 features");
    }
    Tensor call(const Tensor& x, bool training) override { return (*inner)(x, training); }
    std::shared_ptr<Dense> inner;
  };
  Picky picky;
  CHECK_THROWS_AS(picky(ones({1, 3})), ShapeError);
  CHECK(picky.inner->name() == "picky/dense");
  picky.set_name("encoder");
  picky(ones({1, 4}));
  CHECK(picky.inner->name() == "encoder/dense");
  CHECK(picky.inner->kernel().name() == "encoder/dense/kernel");
}
