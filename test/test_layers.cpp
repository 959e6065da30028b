// Layers: build on first call, output shapes and weight counts (Keras's numbers), hand-computed
// outputs of Dense, Conv2D, pooling and BatchNormalization, Dropout's training flag, seeding,
// names, and summary()'s table.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "golden/functional_summary_golden.hpp"
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

TEST_CASE("summary prints Keras 3's table with None for the batch axis and the totals") {
  Sequential model(Dense(512, "relu"), Dense(10, "softmax"));
  CHECK_THROWS_AS(model.summary(), ValueError);  // not built
  model.build({-1, 784});
  std::ostringstream os;
  model.summary(os);
  CHECK(os.str() == summary_golden::kSequentialMlp);  // Keras 3.15's text, byte for byte

  Sequential convnet(Conv2D(32, 3), BatchNormalization(), Flatten(), Dense(10));
  convnet.build({-1, 28, 28, 1});
  std::ostringstream os2;
  convnet.summary(os2);
  const std::string text = os2.str();
  // the name differs ("convnet" in Keras's); the rest, the wrapped BatchNormalization row
  // included, is Keras's
  CHECK(text.substr(text.find('\n')) ==
        std::string(summary_golden::kSequentialConvnet).substr(std::string(summary_golden::kSequentialConvnet).find('\n')));
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

// ================================================================ core layers (core_layers.cpp)
// Activation, Identity, Permute, RepeatVector, TimeDistributed, the noise and regularization
// layers, the 1-D upsampling/padding/cropping layers and Normalization, and GroupNormalization
// and UnitNormalization (layers.cpp): golden values from the real Keras 3
// (golden/core_layers_golden.py), every device, float64 gradchecks, errors.
#include "golden/core_layers_golden.hpp"
#include "layer_test_util.hpp"

namespace {

namespace cg = core_layers_golden;

template <std::size_t N>
Shape shape_of(const std::int64_t (&s)[N]) {
  return Shape(s, s + N);
}

Tensor golden(const double* v, const Shape& shape, Device d, DType dtype = kFloat64) {
  std::int64_t n = 1;
  for (auto s : shape) n *= s;
  return tensor(std::vector<double>(v, v + n), shape, kFloat64).astype(dtype).to(d);
}

// got == want elementwise, to float32's precision
void check_golden(const Tensor& got, const double* want, const char* what, double eps = 1e-5) {
  const auto v = lt::dvals(got.to(Device::cpu()));
  INFO(what);
  for (std::size_t i = 0; i < v.size(); ++i) REQUIRE(v[i] == Approx(want[i]).epsilon(eps).margin(1e-6));
}

// The float64 gradcheck of a layer's output with respect to its input.
bool layer_gradcheck(Layer& layer, const Tensor& x) {
  const GradcheckResult r = gradcheck([&](const std::vector<Tensor>& in) { return layer(in[0]); }, {x});
  INFO(r.message);
  return r.ok;
}

// Writes a layer's weight (its accessor gives a const handle to the shared storage).
void set_weight(const Variable& weight, const Tensor& value) {
  Variable w = weight;
  w.assign(value);
}

// An arange input [0, 1, ...] of `shape`, as core_layers_golden.py feeds the shape layers.
Tensor arange_input(const Shape& shape, Device d) {
  std::int64_t n = 1;
  for (auto s : shape) n *= s;
  return arange(0, double(n), 1, kFloat64, d).reshape(shape);
}

}  // namespace

TEST_CASE("core layers: Activation and Identity", "[core_layers]") {
  for (const Device& d : lt::devices()) {
    INFO(d.str());
    const Tensor x = lt::irregular({3, 4}).to(d);
    ActivationLayer act("relu");
    CHECK(lt::dvals(act(x)) == lt::dvals(relu(x)));
    CHECK(act.name() == "activation");
    CHECK(act.class_name() == "Activation");
    CHECK(act.activation() == Activation::Relu);
    CHECK(act.output_shape() == Shape{-1, 4});
    CHECK(act.weights().empty());
    ActivationLayer soft(Activation::Softmax);
    CHECK(lt::dvals(soft(x)) == lt::dvals(softmax(x, -1)));
    Identity id;
    const Tensor y = id(x);
    CHECK(lt::dvals(y) == lt::dvals(x));
    CHECK(id.name() == "identity");
  }
  CHECK_THROWS_AS(ActivationLayer("nope"), ValueError);
  CHECK_THROWS_WITH(ActivationLayer("nope"), Catch::Contains("unknown activation 'nope'"));
  ActivationLayer tanh_layer("tanh");
  CHECK(layer_gradcheck(tanh_layer, lt::irregular({2, 3}, -2, 2, kFloat64)));
}

TEST_CASE("core layers: Permute and RepeatVector match Keras, every device, gradchecks", "[core_layers]") {
  for (const Device& d : lt::devices()) {
    INFO(d.str());
    Permute p21({2, 1});
    check_golden(p21(arange_input(shape_of(cg::kPermute21XShape), d)), cg::kPermute21Y, "Permute((2, 1))");
    CHECK(p21.output_shape() == Shape{-1, 4, 3});
    Permute p312({3, 1, 2});
    const Tensor y312 = p312(arange_input(shape_of(cg::kPermute312XShape), d));
    CHECK(y312.shape() == shape_of(cg::kPermute312YShape));
    check_golden(y312, cg::kPermute312Y, "Permute((3, 1, 2))");
    RepeatVector rep(3);
    const Tensor yr = rep(arange_input(shape_of(cg::kRepeatVector3XShape), d));
    CHECK(yr.shape() == shape_of(cg::kRepeatVector3YShape));
    check_golden(yr, cg::kRepeatVector3Y, "RepeatVector(3)");
    CHECK(rep.output_shape() == Shape{-1, 3, 4});
    CHECK(rep.name() == "repeat_vector");

    Permute g({3, 1, 2});
    CHECK(layer_gradcheck(g, lt::irregular({2, 2, 3, 2}, -2, 2, kFloat64).to(d)));
    RepeatVector gr(2);
    CHECK(layer_gradcheck(gr, lt::irregular({3, 2}, -2, 2, kFloat64).to(d)));
  }
  CHECK_THROWS_AS(Permute({1, 1}), ValueError);
  CHECK_THROWS_WITH(Permute({1, 3}), "Permute: dims must be a permutation of 1..2 (the axes after the batch), got (1, 3)");
  CHECK_THROWS_AS(Permute({0, 1}), ValueError);
  Permute p({2, 1});
  CHECK_THROWS_AS(p(zeros({2, 3, 4, 5})), ShapeError);
  CHECK_THROWS_WITH(p(zeros({2, 3, 4, 5})),
                    "permute: expected inputs of rank 3 (the batch and the 2 axes of dims (2, 1)), got [2, 3, 4, 5]");
  CHECK_THROWS_WITH(RepeatVector(0), "RepeatVector: n must be positive, got 0");
  RepeatVector r(2);
  CHECK_THROWS_AS(r(zeros({2, 3, 4})), ShapeError);
  CHECK_THROWS_WITH(r(zeros({2, 3, 4})), "repeat_vector: expected inputs [batch, features], got [2, 3, 4]");
}

TEST_CASE("core layers: UpSampling1D, ZeroPadding1D and Cropping1D match Keras, every device, gradchecks",
          "[core_layers]") {
  for (const Device& d : lt::devices()) {
    INFO(d.str());
    UpSampling1D up(3);
    const Tensor yu = up(arange_input(shape_of(cg::kUpSampling1D3XShape), d));
    CHECK(yu.shape() == shape_of(cg::kUpSampling1D3YShape));
    check_golden(yu, cg::kUpSampling1D3Y, "UpSampling1D(3)");
    CHECK(up.output_shape() == Shape{-1, 9, 2});
    ZeroPadding1D pad(Edges1D{1, 2});
    const Tensor yp = pad(arange_input(shape_of(cg::kZeroPadding1D12XShape), d));
    CHECK(yp.shape() == shape_of(cg::kZeroPadding1D12YShape));
    check_golden(yp, cg::kZeroPadding1D12Y, "ZeroPadding1D((1, 2))");
    CHECK(pad.name() == "zero_padding1d");
    Cropping1D crop(Edges1D{1, 2});
    const Tensor yc = crop(arange_input(shape_of(cg::kCropping1D12XShape), d));
    CHECK(yc.shape() == shape_of(cg::kCropping1D12YShape));
    check_golden(yc, cg::kCropping1D12Y, "Cropping1D((1, 2))");
    CHECK(crop.name() == "cropping1d");
    // the defaults: ZeroPadding1D(1) pads one step each side, Cropping1D() crops (1, 1), UpSampling1D 2
    CHECK(ZeroPadding1D()(ones({1, 2, 3}).to(d)).shape() == Shape{1, 4, 3});
    CHECK(Cropping1D()(ones({1, 4, 3}).to(d)).shape() == Shape{1, 2, 3});
    CHECK(UpSampling1D()(ones({1, 4, 3}).to(d)).shape() == Shape{1, 8, 3});

    const Tensor x = lt::irregular({2, 4, 3}, -2, 2, kFloat64).to(d);
    UpSampling1D gu(2);
    CHECK(layer_gradcheck(gu, x));
    ZeroPadding1D gp(Edges1D{2, 1});
    CHECK(layer_gradcheck(gp, x));
    Cropping1D gc(Edges1D{0, 2});
    CHECK(layer_gradcheck(gc, x));
  }
  CHECK_THROWS_WITH(UpSampling1D(0), "UpSampling1D: size must be positive, got 0");
  CHECK_THROWS_WITH(ZeroPadding1D(Edges1D{-1, 0}), "ZeroPadding1D: padding must not be negative, got (-1, 0)");
  CHECK_THROWS_WITH(Cropping1D(-2), "Cropping1D: cropping must not be negative, got (-2, -2)");
  Cropping1D crop(Edges1D{2, 3});
  CHECK_THROWS_AS(crop(zeros({1, 5, 2})), ValueError);
  CHECK_THROWS_WITH(crop(zeros({1, 5, 2})), "cropping1d: cropping (2, 3) must leave a step of the input [1, 5, 2]");
  CHECK(crop(zeros({1, 6, 2})).shape() == Shape{1, 1, 2});
  UpSampling1D up;
  CHECK_THROWS_WITH(up(zeros({2, 3})), "up_sampling1d: expected inputs [batch, steps, channels], got [2, 3]");
  ZeroPadding1D pad;
  CHECK_THROWS_AS(pad(zeros({2, 3, 4, 5})), ShapeError);
}

TEST_CASE("core layers: TimeDistributed(Dense) matches Keras: outputs, gradients, names, every device",
          "[core_layers]") {
  struct Case {
    Shape xs, ys;
    const double *x, *kernel, *bias, *y, *dx, *dkernel, *dbias;
    std::int64_t units;
    const char* activation;
  };
  const Case cases[] = {
      {shape_of(cg::kTdXShape0), shape_of(cg::kTdYShape0), cg::kTdX0, cg::kTdKernel0, cg::kTdBias0, cg::kTdY0,
       cg::kTdDx0, cg::kTdDkernel0, cg::kTdDbias0, 3, "tanh"},
      {shape_of(cg::kTdXShape1), shape_of(cg::kTdYShape1), cg::kTdX1, cg::kTdKernel1, cg::kTdBias1, cg::kTdY1,
       cg::kTdDx1, cg::kTdDkernel1, cg::kTdDbias1, 2, "linear"},
  };
  for (const Device& d : lt::devices()) {
    for (const Case& c : cases) {
      INFO(d.str() << " " << shape_str(c.xs));
      TimeDistributed td(Dense(c.units, c.activation));
      const Tensor x = golden(c.x, c.xs, d);
      td(x);  // builds
      CHECK(td.name() == "time_distributed");
      CHECK(td.layer()->name() == "time_distributed/dense");
      const std::vector<Variable> ws = td.weights();
      REQUIRE(ws.size() == 2);
      CHECK(ws[0].name() == "time_distributed/dense/kernel");
      CHECK(ws[1].name() == "time_distributed/dense/bias");
      CHECK(ws[0].device() == d);
      CHECK(td.count_params() == c.xs.back() * c.units + c.units);
      Variable kernel = ws[0], bias = ws[1];
      kernel.assign(golden(c.kernel, kernel.shape(), d, kFloat32));
      bias.assign(golden(c.bias, bias.shape(), d, kFloat32));

      GradientTape tape;
      tape.watch(x);
      const Tensor y = td(x);
      REQUIRE(y.shape() == c.ys);
      Shape out = c.ys;
      out[0] = -1;
      CHECK(td.output_shape() == out);
      const Tensor lin = linspace(-1, 1, y.size(), kFloat64, d).reshape(c.ys);
      const auto g = tape.gradient(sum(y * lin), {x, kernel, bias});
      check_golden(y, c.y, "y");
      check_golden(g[0], c.dx, "dx");
      check_golden(g[1], c.dkernel, "dkernel");
      check_golden(g[2], c.dbias, "dbias");
      CHECK(layer_gradcheck(td, lt::irregular(c.xs, -1, 1, kFloat64).to(d)));
    }
  }
  // in a model, the wrapper and its layer are named as Keras names them
  Sequential model(TimeDistributed(Dense(2)), TimeDistributed(Dense(3)));
  model(zeros({1, 4, 5}));
  const auto names = [&] {
    std::vector<std::string> n;
    for (const auto& w : model.weights()) n.push_back(w.name());
    return n;
  }();
  CHECK(names == std::vector<std::string>{"time_distributed/dense/kernel", "time_distributed/dense/bias",
                                          "time_distributed_1/dense/kernel", "time_distributed_1/dense/bias"});
  // errors: a null layer, an input without a time axis (and the layer stays unbuilt)
  CHECK_THROWS_WITH(TimeDistributed(std::shared_ptr<Layer>()), "TimeDistributed: the layer is null");
  TimeDistributed td(Dense(2));
  CHECK_THROWS_AS(td(zeros({4, 5})), ShapeError);
  CHECK_THROWS_WITH(td(zeros({4, 5})), "time_distributed: expected inputs [batch, time, ...] of rank >= 3, got [4, 5]");
  CHECK(td.weights().empty());
  td(zeros({4, 2, 5}));
  // the inner layer's errors name both layers
  CHECK_THROWS_WITH(td(zeros({4, 2, 6})), Catch::Contains("time_distributed/dense") && Catch::Contains("[8, 6]"));
}

TEST_CASE("core layers: GaussianNoise and GaussianDropout: identity in inference, seeded, Keras's moments",
          "[core_layers]") {
  const Tensor x = full({200, 500}, 3.0);
  for (const Device& d : lt::devices()) {
    INFO(d.str());
    GaussianNoise noise(0.5);
    noise.set_seed(3);
    CHECK(lt::dvals(noise(x.to(d))) == lt::dvals(x));
    const Tensor y = noise(x.to(d), true);
    CHECK(y.device() == d);
    // x + N(0, 0.5): mean 3, stddev 0.5 over 100000 draws
    CHECK(mean(y).item<double>() == Approx(3.0).margin(0.01));
    CHECK(std::sqrt(var(y).item<double>()) == Approx(0.5).margin(0.01));
    GaussianNoise twin(0.5);
    twin.set_seed(3);
    CHECK(lt::dvals(twin(x.to(d), true)) == lt::dvals(y));  // the same seed, the same noise
    CHECK(lt::dvals(noise(x.to(d), true)) != lt::dvals(y));  // each call draws anew

    GaussianDropout gd(0.2);
    gd.set_seed(4);
    CHECK(lt::dvals(gd(x.to(d))) == lt::dvals(x));
    const Tensor z = gd(x.to(d), true);
    // x * N(1, sqrt(0.2 / 0.8) = 0.5): mean 3, stddev 1.5
    CHECK(mean(z).item<double>() == Approx(3.0).margin(0.03));
    CHECK(std::sqrt(var(z).item<double>()) == Approx(1.5).margin(0.03));
    GaussianDropout gd_twin(0.2);
    gd_twin.set_seed(4);
    CHECK(lt::dvals(gd_twin(x.to(d), true)) == lt::dvals(z));
  }
  // the same seed gives the same noise on every device
  if (lt::devices().size() > 1) {
    GaussianNoise a(0.3), b(0.3);
    a.set_seed(9);
    b.set_seed(9);
    const auto ya = lt::dvals(a(x, true)), yb = lt::dvals(b(x.to(lt::devices()[1]), true));
    for (std::size_t i = 0; i < ya.size(); i += 997) REQUIRE(ya[i] == Approx(yb[i]).margin(1e-6));
  }
  // float64 inputs keep their dtype; the noise is a constant for the gradient
  GaussianNoise n64(0.1);
  CHECK(n64(x.astype(kFloat64), true).dtype() == kFloat64);
  const Tensor xs = lt::irregular({4, 5}, -1, 1, kFloat64);
  GaussianDropout gd(0.3);
  gd.set_seed(1);
  GradientTape tape;
  tape.watch(xs);
  const Tensor y = gd(xs, true);
  const Tensor dx = tape.gradient(sum(y), xs);
  const auto yv = lt::dvals(y), xv = lt::dvals(xs), dv = lt::dvals(dx);
  for (std::size_t i = 0; i < yv.size(); ++i) REQUIRE(dv[i] * xv[i] == Approx(yv[i]).margin(1e-12));

  CHECK_THROWS_WITH(GaussianNoise(1.5), "GaussianNoise: stddev must be in [0, 1] (as Keras), got 1.5");
  CHECK_THROWS_AS(GaussianNoise(-0.1), ValueError);
  CHECK_THROWS_WITH(GaussianDropout(1.0), "GaussianDropout: rate must be in [0, 1), got 1");
  CHECK(GaussianDropout(0.0)(x, true).to_vector<float>() == x.to_vector<float>());
  CHECK(GaussianNoise(0.0)(x, true).to_vector<float>() == x.to_vector<float>());
}

TEST_CASE("core layers: SpatialDropout1D/2D drop whole channels with the inverted scaling", "[core_layers]") {
  for (const Device& d : lt::devices()) {
    INFO(d.str());
    SpatialDropout1D sd1(0.4);
    sd1.set_seed(11);
    const Tensor x1 = ones({64, 5, 32}).to(d);
    CHECK(lt::dvals(sd1(x1)) == lt::dvals(x1));
    const auto y1 = lt::dvals(sd1(x1, true));
    // each (example, channel) is all 0 or all 1 / 0.6 over the steps
    std::int64_t dropped = 0;
    for (std::int64_t b = 0; b < 64; ++b) {
      for (std::int64_t c = 0; c < 32; ++c) {
        const double first = y1[static_cast<std::size_t>((b * 5) * 32 + c)];
        REQUIRE((first == 0.0 || first == Approx(1 / 0.6)));
        for (std::int64_t t = 1; t < 5; ++t) REQUIRE(y1[static_cast<std::size_t>((b * 5 + t) * 32 + c)] == first);
        dropped += first == 0.0;
      }
    }
    CHECK(dropped > 0.4 * 2048 - 150);
    CHECK(dropped < 0.4 * 2048 + 150);
    SpatialDropout1D twin(0.4);
    twin.set_seed(11);
    CHECK(lt::dvals(twin(x1, true)) == y1);

    SpatialDropout2D sd2(0.5);
    sd2.set_seed(12);
    const Tensor x2 = lt::irregular({8, 3, 4, 6}, 1, 2).to(d);
    const Tensor y2 = sd2(x2, true);
    // a channel's 12 pixels are dropped together or kept together, scaled by 2
    const Tensor ratio = y2 / x2;  // 0 or 2
    const Tensor per_channel = sum(ratio, {1, 2});  // [8, 6]: 0 or 24
    for (double v : lt::dvals(per_channel)) REQUIRE((v == Approx(0.0) || v == Approx(24.0)));
    CHECK(lt::dvals(max(ratio, {1, 2})) == lt::dvals(min(ratio, {1, 2})));
    CHECK(sd2.name() == "spatial_dropout2d");
  }
  SpatialDropout1D sd1(0.5);
  CHECK_THROWS_AS(sd1(zeros({2, 3})), ShapeError);
  CHECK_THROWS_WITH(sd1(zeros({2, 3})), "spatial_dropout1d: expected inputs [batch, steps, channels], got [2, 3]");
  SpatialDropout2D sd2(0.5);
  CHECK_THROWS_WITH(sd2(zeros({2, 3, 4})),
                    "spatial_dropout2d: expected inputs [batch, height, width, channels], got [2, 3, 4]");
  CHECK_THROWS_WITH(SpatialDropout2D(1.0), "SpatialDropout2D: rate must be in [0, 1), got 1");
  CHECK_THROWS_AS(SpatialDropout1D(-0.5), ValueError);
}

TEST_CASE("core layers: ActivityRegularization adds Keras's penalty divided by the batch size", "[core_layers]") {
  for (const Device& d : lt::devices()) {
    INFO(d.str());
    ActivityRegularization reg(0.01, 0.03);
    const Tensor x = golden(cg::kActRegX, {4, 3}, d);
    CHECK(lt::dvals(reg(x)) == lt::dvals(x));
    const auto losses = reg.losses();
    REQUIRE(losses.size() == 1);
    CHECK(losses[0].item<double>() == Approx(cg::kActRegLoss[0]).epsilon(1e-6));  // Keras rounds it via float32
    // by hand: ones [2, 5]: (0.5 * 10 + 2 * 10) / 2
    ActivityRegularization hand(0.5, 2);
    hand(ones({2, 5}).to(d));
    CHECK(hand.losses()[0].item<double>() == Approx(12.5));
    // a model adds it to the training loss, and the gradient reaches the input
    GradientTape tape;
    tape.watch(x);
    reg(x, true);
    const Tensor dx = tape.gradient(reg.losses()[0], x);
    const auto xv = lt::dvals(x), dv = lt::dvals(dx);
    for (std::size_t i = 0; i < xv.size(); ++i) {
      REQUIRE(dv[i] == Approx((0.01 * (xv[i] > 0 ? 1 : -1) + 0.06 * xv[i]) / 4).margin(1e-12));
    }
  }
  ActivityRegularization none;
  none(ones({2, 2}));
  CHECK(none.losses()[0].item<double>() == 0.0);
  CHECK(none.name() == "activity_regularization");
  CHECK_THROWS_AS(ActivityRegularization(-1), ValueError);
}

TEST_CASE("core layers: Normalization.adapt, call and invert match Keras, every device", "[core_layers]") {
  struct Case {
    const char* name;
    std::vector<std::int64_t> axis;
    Shape shape;
    const double *data, *mean, *var, *x, *y;
  };
  const Case cases[] = {
      {"last", {-1}, shape_of(cg::kNormLastShape), cg::kNormLastData, cg::kNormLastMean, cg::kNormLastVar,
       cg::kNormLastX, cg::kNormLastY},
      {"axis (1, 2)", {1, 2}, shape_of(cg::kNormAxis12Shape), cg::kNormAxis12Data, cg::kNormAxis12Mean,
       cg::kNormAxis12Var, cg::kNormAxis12X, cg::kNormAxis12Y},
      {"axis 1 of 3", {1}, shape_of(cg::kNormAxis1Of3Shape), cg::kNormAxis1Of3Data, cg::kNormAxis1Of3Mean,
       cg::kNormAxis1Of3Var, cg::kNormAxis1Of3X, cg::kNormAxis1Of3Y},
      {"axis None", {}, shape_of(cg::kNormNoneShape), cg::kNormNoneData, cg::kNormNoneMean, cg::kNormNoneVar,
       cg::kNormNoneX, cg::kNormNoneY},
  };
  for (const Device& d : lt::devices()) {
    for (const Case& c : cases) {
      INFO(c.name << " on " << d.str());
      NormalizationOptions o;
      o.axis = c.axis;
      Normalization norm(o);
      norm.adapt(golden(c.data, c.shape, d));
      CHECK(norm.built());
      CHECK(norm.name() == "normalization");
      const auto ws = norm.weights();
      REQUIRE(ws.size() == 3);
      CHECK(ws[0].name() == "normalization/mean");
      CHECK(ws[1].name() == "normalization/variance");
      CHECK(ws[2].name() == "normalization/count");
      CHECK(norm.trainable_weights().empty());
      CHECK(ws[0].device() == d);
      check_golden(ws[0], c.mean, "mean");
      check_golden(ws[1], c.var, "variance");
      check_golden(norm(golden(c.x, c.shape, d)), c.y, "y");
      // invert undoes it
      NormalizationOptions inv = o;
      inv.invert = true;
      inv.mean = ws[0];
      inv.variance = ws[1];
      Normalization back(inv);
      const Tensor x = golden(c.x, c.shape, d);
      const auto round_trip = lt::dvals(back(norm(x)));
      const auto xv = lt::dvals(x);
      for (std::size_t i = 0; i < xv.size(); ++i) REQUIRE(round_trip[i] == Approx(xv[i]).margin(1e-5));
    }
    // a constant feature: variance 0, divided by Keras's epsilon 1e-7
    Normalization constant;
    constant.adapt(golden(cg::kNormConstData, {6, 2}, d));
    check_golden(constant(golden(cg::kNormConstX, {2, 2}, d)), cg::kNormConstY, "constant feature", 1e-4);
    // fixed statistics of rank 1 for two kept axes line up with the last; invert
    NormalizationOptions fo;
    fo.axis = {1, 2};
    fo.mean = tensor<double>({1.0, -2.0, 0.5, 3.0}, {4});
    fo.variance = tensor<double>({4.0, 0.25, 1.0, 9.0}, {4});
    Normalization fixed(fo);
    check_golden(fixed(golden(cg::kNormFixedX, {2, 3, 4}, d)), cg::kNormFixedY, "fixed");
    CHECK(fixed.weights().empty());
    fo.invert = true;
    Normalization inverse(fo);
    check_golden(inverse(golden(cg::kNormFixedX, {2, 3, 4}, d)), cg::kNormInvertY, "invert");
    // integer inputs give float32
    NormalizationOptions so;
    so.mean = scalar(1.0);
    so.variance = scalar(4.0);
    Normalization ints(so);
    const Tensor yi = ints(tensor<std::int32_t>({1, 3, 5, 7}, {2, 2}).to(d));
    CHECK(yi.dtype() == kFloat32);
    CHECK(lt::dvals(yi) == std::vector<double>{0, 1, 2, 3});
  }
  // an unadapted layer normalises with zeros and ones; adapt() after a call keeps the shape
  Normalization fresh;
  CHECK(lt::dvals(fresh(tensor<float>({1, 2}, {1, 2}))) == std::vector<double>{1, 2});
  fresh.adapt(tensor<float>({0, 0, 2, 4}, {2, 2}));
  CHECK(lt::dvals(fresh.mean()) == std::vector<double>{1, 2});
  CHECK(lt::dvals(fresh.variance()) == std::vector<double>{1, 4});
  CHECK(fresh.mean().shape() == Shape{1, 2});
  CHECK_THROWS_AS(fresh.adapt(zeros({4, 3})), ValueError);
  CHECK_THROWS_WITH(fresh.adapt(zeros({4, 3})),
                    "normalization: adapt(): the layer was built for inputs [1, 2], but data is [4, 3]");
  CHECK_THROWS_AS(fresh(zeros({4, 3})), ShapeError);
  CHECK_THROWS_WITH(fresh(zeros({4, 3})),
                    "normalization: expected inputs like [1, 2] (the same rank and kept axes 1), got [4, 3]");
  // configuration errors
  NormalizationOptions half;
  half.mean = scalar(1.0);
  CHECK_THROWS_WITH(Normalization(half),
                    "Normalization: give both mean and variance, or neither (and call adapt())");
  NormalizationOptions mismatched;
  mismatched.mean = zeros({3});
  mismatched.variance = ones({2});
  CHECK_THROWS_WITH(Normalization(mismatched), "Normalization: mean and variance must have one shape, got [3] and [2]");
  NormalizationOptions too_deep;
  too_deep.mean = zeros({2, 3});
  too_deep.variance = ones({2, 3});
  CHECK_THROWS_AS(Normalization(too_deep), ValueError);
  NormalizationOptions far;
  far.axis = {3};
  Normalization out_of_range(far);
  CHECK_THROWS_WITH(out_of_range(zeros({2, 3})), "normalization: axis 3 is out of range for inputs [2, 3] of rank 2");
  NormalizationOptions wrong;
  wrong.mean = zeros({4});
  wrong.variance = ones({4});
  Normalization bad_fixed(wrong);
  CHECK_THROWS_AS(bad_fixed(zeros({2, 3})), ValueError);
  NormalizationOptions given;
  given.mean = zeros({3});
  given.variance = ones({3});
  Normalization no_adapt(given);
  CHECK_THROWS_WITH(no_adapt.adapt(zeros({2, 3})), "normalization: adapt() on a layer given a fixed mean and variance");
}

TEST_CASE("core layers: GroupNormalization matches Keras (groups, instance, channels first, no center), every device",
          "[core_layers][norm]") {
  struct Case {
    Shape xs;
    const double *x, *gamma, *beta, *y, *dx, *dgamma, *dbeta;
    std::int64_t groups, axis;
    double epsilon;
    bool center, scale;
  };
  const Case cases[] = {
      {shape_of(cg::kGroupXShape0), cg::kGroupX0, cg::kGroupGamma0, cg::kGroupBeta0, cg::kGroupY0, cg::kGroupDx0,
       cg::kGroupDgamma0, cg::kGroupDbeta0, 3, -1, 1e-3, true, true},
      {shape_of(cg::kGroupXShape1), cg::kGroupX1, cg::kGroupGamma1, cg::kGroupBeta1, cg::kGroupY1, cg::kGroupDx1,
       cg::kGroupDgamma1, cg::kGroupDbeta1, -1, -1, 1e-3, true, true},
      {shape_of(cg::kGroupXShape2), cg::kGroupX2, cg::kGroupGamma2, cg::kGroupBeta2, cg::kGroupY2, cg::kGroupDx2,
       cg::kGroupDgamma2, cg::kGroupDbeta2, 2, -1, 1e-3, true, true},
      {shape_of(cg::kGroupXShape3), cg::kGroupX3, cg::kGroupGamma3, cg::kGroupBeta3, cg::kGroupY3, cg::kGroupDx3,
       cg::kGroupDgamma3, cg::kGroupDbeta3, 2, 1, 1e-5, true, true},
      {shape_of(cg::kGroupXShape4), cg::kGroupX4, cg::kGroupGamma4, cg::kGroupBeta4, cg::kGroupY4, cg::kGroupDx4,
       cg::kGroupDgamma4, cg::kGroupDbeta4, 4, -1, 1e-3, false, true},
      {shape_of(cg::kGroupXShape5), cg::kGroupX5, cg::kGroupGamma5, cg::kGroupBeta5, cg::kGroupY5, cg::kGroupDx5,
       cg::kGroupDgamma5, cg::kGroupDbeta5, 1, 2, 1e-3, false, false},
  };
  for (const Device& d : lt::devices()) {
    for (const Case& c : cases) {
      INFO(d.str() << " " << shape_str(c.xs) << " groups " << c.groups << " axis " << c.axis);
      GroupNormalizationOptions o;
      o.groups = c.groups;
      o.axis = c.axis;
      o.epsilon = c.epsilon;
      o.center = c.center;
      o.scale = c.scale;
      GroupNormalization gn(o);
      CHECK(gn.groups() == c.groups);
      const Tensor x = golden(c.x, c.xs, d);
      gn(x);  // builds
      const std::int64_t channels = c.xs[static_cast<std::size_t>(c.axis < 0 ? c.axis + std::int64_t(c.xs.size()) : c.axis)];
      CHECK(gn.groups() == (c.groups == -1 ? channels : c.groups));
      CHECK(gn.name() == "group_normalization");
      CHECK(gn.count_params() == channels * (int(c.center) + int(c.scale)));
      std::vector<Tensor> sources = {x};
      if (c.scale) {
        CHECK(gn.gamma().name() == "group_normalization/gamma");
        CHECK(gn.gamma().shape() == Shape{channels});
        CHECK(gn.gamma().device() == d);
        set_weight(gn.gamma(), golden(c.gamma, {channels}, d, kFloat32));
        sources.push_back(gn.gamma());
      }
      if (c.center) {
        CHECK(gn.beta().name() == "group_normalization/beta");
        set_weight(gn.beta(), golden(c.beta, {channels}, d, kFloat32));
        sources.push_back(gn.beta());
      }
      GradientTape tape;
      tape.watch(x);
      const Tensor y = gn(x, true);  // the same in training: no batch statistics
      REQUIRE(y.shape() == c.xs);
      const Tensor lin = linspace(-1, 1, y.size(), kFloat64, d).reshape(c.xs);
      const auto g = tape.gradient(sum(y * lin), sources);
      check_golden(y, c.y, "y");
      check_golden(g[0], c.dx, "dx", 1e-4);
      if (c.scale) check_golden(g[1], c.dgamma, "dgamma", 1e-4);
      if (c.center) check_golden(g.back(), c.dbeta, "dbeta", 1e-4);
    }
  }
}

TEST_CASE("core layers: GroupNormalization: float64 gradchecks, models, masks and errors", "[core_layers][norm][gradcheck]") {
  // float64 gradchecks with respect to the input, and the float32 weights' gradients against
  // central differences in float64 (groups of 2 channels, instance normalization, channels first)
  for (const auto& [groups, axis] : std::vector<std::pair<std::int64_t, std::int64_t>>{{2, -1}, {-1, -1}, {2, 1}}) {
    INFO("groups " << groups << " axis " << axis);
    GroupNormalizationOptions o;
    o.groups = groups;
    o.axis = axis;
    GroupNormalization gn(o);
    const Tensor x = lt::irregular({2, 4, 3, 4}, -2, 2, kFloat64);
    gn(x);
    set_weight(gn.gamma(), lt::irregular({4}, 0.5, 2.0));
    set_weight(gn.beta(), lt::irregular({4}, -1, 1));
    CHECK(layer_gradcheck(gn, x));
    const Tensor w_out = lt::irregular(x.shape(), -1, 1, kFloat64);
    std::string worst_at;
    const double worst = lt::weights_gradcheck_error([&] { return sum(square(gn(x)) * w_out); }, gn.weights(), &worst_at);
    INFO(worst_at);
    CHECK(worst < 1e-4);
  }
  // integer inputs give float32
  GroupNormalizationOptions two;
  two.groups = 2;
  GroupNormalization ints(two);
  const Tensor yi = ints(tensor<std::int32_t>({1, 3, 5, 9}, {1, 4}));
  CHECK(yi.dtype() == kFloat32);
  const float s = float(std::sqrt(1 + 1e-3)), t = float(std::sqrt(4 + 1e-3));
  const auto yv = yi.to_vector<float>();
  CHECK(yv[0] == Approx(-1 / s));
  CHECK(yv[1] == Approx(1 / s));
  CHECK(yv[2] == Approx(-2 / t));
  CHECK(yv[3] == Approx(2 / t));
  // in a Sequential model and a functional one: names, summary, params, a mask passes through
  GroupNormalizationOptions o;
  o.groups = 3;
  Sequential model(Dense(6), GroupNormalization(o), UnitNormalization(), Dense(2));
  model.build({-1, 5, 4});
  CHECK(model.layers()[1]->name() == "group_normalization");
  CHECK(model.layers()[2]->name() == "unit_normalization");
  CHECK(model.count_params() == (4 * 6 + 6) + 12 + (6 * 2 + 2));
  std::ostringstream os;
  model.summary(os);
  CHECK(os.str() == summary_golden::kSequentialNorms);  // Keras 3.15's text, byte for byte
  const auto names = [&] {
    std::vector<std::string> n;
    for (const auto& w : model.weights()) n.push_back(w.name());
    return n;
  }();
  CHECK(names == std::vector<std::string>{"dense/kernel", "dense/bias", "group_normalization/gamma",
                                          "group_normalization/beta", "dense_1/kernel", "dense_1/bias"});
  CHECK(model(lt::irregular({3, 5, 4})).shape() == Shape{3, 5, 2});
  const Tensor mask = tensor<bool>({true, false, true}, {1, 3});
  GroupNormalization masked(o);
  const Tensor xm = lt::irregular({1, 3, 6});
  CHECK(lt::dvals(masked(xm, mask)) == lt::dvals(masked(xm)));  // Keras does not use it
  CHECK(lt::dvals(masked.compute_mask(xm, mask)) == lt::dvals(mask));
  const KerasTensor in = Input({4, 6});
  const KerasTensor h = apply_layer(GroupNormalization(o), in);
  CHECK(h.shape() == Shape{-1, 4, 6});
  CHECK(apply_layer(GroupNormalization(o), Input({-1, -1})).shape() == Shape{-1, -1, -1});  // unknown: no check
  Functional fm(in, apply_layer(UnitNormalization({1, 2}), h));
  CHECK(fm(lt::irregular({2, 4, 6})).shape() == Shape{2, 4, 6});

  // errors: groups, epsilon, channels that do not split, the batch axis, a built layer's channels
  o.groups = 0;
  CHECK_THROWS_AS(GroupNormalization(o), ValueError);
  CHECK_THROWS_WITH(GroupNormalization(o), Catch::Contains("GroupNormalization: groups must be positive") &&
                                               Catch::Contains("got 0"));
  o.groups = -2;
  CHECK_THROWS_AS(GroupNormalization(o), ValueError);
  o.groups = 4;
  o.epsilon = 0;
  CHECK_THROWS_AS(GroupNormalization(o), ValueError);
  o.epsilon = 1e-3;
  GroupNormalization four(o);
  CHECK_THROWS_AS(four(zeros({2, 6})), ValueError);
  CHECK_THROWS_WITH(four(zeros({2, 6})), "group_normalization: the 6 channels (axis -1) of inputs [2, 6] do not split "
                                         "into 4 groups of equal size");
  CHECK_THROWS_WITH(four(zeros({2, 5, 3})),
                    "group_normalization: 4 groups are more than the 3 channels (axis -1) of inputs [2, 5, 3]");
  CHECK_FALSE(four.built());
  CHECK(four.weights().empty());
  GroupNormalizationOptions instance;
  instance.groups = -1;
  CHECK_THROWS_WITH(GroupNormalization(instance)(zeros({2, 0})),
                    "group_normalization: axis -1 of inputs [2, 0] has no channels to group");
  CHECK_THROWS_WITH(apply_layer(GroupNormalization(o), Input({3, 6})),
                    Catch::Contains("group_normalization: the 6 channels (axis -1) of inputs [-1, 3, 6]"));
  o.axis = 0;
  CHECK_THROWS_WITH(GroupNormalization(o)(zeros({4, 4})), Catch::Contains("axis 0 is out of range for inputs [4, 4]"));
  o.axis = 2;
  CHECK_THROWS_WITH(GroupNormalization(o)(zeros({4, 4})), Catch::Contains("axis 2 is out of range"));
  o.axis = -1;
  four(zeros({2, 8}));
  CHECK_THROWS_AS(four(zeros({2, 4})), ShapeError);
  CHECK_THROWS_WITH(four(zeros({2, 4})), "group_normalization: expected inputs [-1, 8] (-1: any size), got [2, 4]");
  CHECK_THROWS_WITH(four(zeros({2, 3, 8})), Catch::Contains("got [2, 3, 8]"));
}

TEST_CASE("core layers: UnitNormalization matches Keras on several axes, every device, with gradchecks and errors",
          "[core_layers][norm][gradcheck]") {
  struct Case {
    const char* name;
    std::vector<std::int64_t> axis;
    Shape xs;
    const double *x, *y, *dx;
  };
  const Case cases[] = {
      {"last", {-1}, shape_of(cg::kUnitLastShape), cg::kUnitLastX, cg::kUnitLastY, cg::kUnitLastDx},
      {"axes (1, 2)", {1, 2}, shape_of(cg::kUnitAxes12Shape), cg::kUnitAxes12X, cg::kUnitAxes12Y, cg::kUnitAxes12Dx},
      {"axis 1", {1}, shape_of(cg::kUnitAxis1Shape), cg::kUnitAxis1X, cg::kUnitAxis1Y, cg::kUnitAxis1Dx},
      {"the batch axis", {0}, shape_of(cg::kUnitBatchShape), cg::kUnitBatchX, cg::kUnitBatchY, cg::kUnitBatchDx},
      {"a zero row", {-1}, {2, 3}, cg::kUnitZeroX, cg::kUnitZeroY, cg::kUnitZeroDx},
  };
  for (const Device& d : lt::devices()) {
    for (const Case& c : cases) {
      INFO(c.name << " on " << d.str());
      UnitNormalization un(c.axis);
      for (DType dt : {kFloat64, kFloat32}) {
        const Tensor x = golden(c.x, c.xs, d, dt);
        GradientTape tape;
        tape.watch(x);
        const Tensor y = un(x);
        CHECK(y.dtype() == dt);
        CHECK(y.device() == d);
        const Tensor g = tape.gradient(sum(y * linspace(-1, 1, y.size(), dt, d).reshape(c.xs)), x);
        check_golden(y, c.y, "y");
        check_golden(g, c.dx, "dx", dt == kFloat64 ? 1e-9 : 1e-4);
      }
      CHECK(un.name() == "unit_normalization");
      CHECK(un.count_params() == 0);
      CHECK(layer_gradcheck(un, lt::irregular(c.xs, -1, 1, kFloat64).to(d)));
    }
  }
  // integer inputs give float32 (Keras refuses them)
  const Tensor yi = UnitNormalization()(tensor<std::int32_t>({3, 4}, {1, 2}));
  CHECK(yi.dtype() == kFloat32);
  CHECK(yi.to_vector<float>() == std::vector<float>{0.6f, 0.8f});
  // errors
  CHECK_THROWS_AS(UnitNormalization(std::vector<std::int64_t>{}), ValueError);
  CHECK_THROWS_AS(UnitNormalization({2})(zeros({2, 3})), ValueError);
  CHECK_THROWS_WITH(UnitNormalization({2})(zeros({2, 3})),
                    "unit_normalization: axis 2 is out of range for inputs [2, 3]");
  CHECK_THROWS_WITH(UnitNormalization({-3})(zeros({2, 3})), Catch::Contains("axis -3 is out of range"));
  CHECK_THROWS_WITH(UnitNormalization({1, -1})(zeros({2, 3})), "unit_normalization: axis -1 is given twice");
  CHECK_THROWS_WITH(apply_layer(UnitNormalization({3}), Input({4, 5})),
                    Catch::Contains("unit_normalization: axis 3 is out of range for inputs [-1, 4, 5]"));
}

TEST_CASE("core layers: CategoryEncoding's one_hot, multi_hot and count match Keras, every device",
          "[core_layers]") {
  for (const Device& d : lt::devices()) {
    INFO(d.str());
    const Tensor x = tensor<std::int64_t>({0, 1, 2, 2, 3, 0}, {3, 2}).to(d);
    // Keras 3.15's outputs for these inputs
    CategoryEncoding one(4, "one_hot");
    const Tensor y1 = one(x);
    CHECK(y1.shape() == Shape{3, 2, 4});
    CHECK(y1.dtype() == kFloat32);
    CHECK(lt::dvals(y1) == std::vector<double>{1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0});
    CategoryEncoding multi(4);
    CHECK(multi.output_mode() == CategoryOutput::MultiHot);
    CHECK(lt::dvals(multi(x)) == std::vector<double>{1, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1});
    CHECK(multi.output_shape() == Shape{-1, 4});
    CategoryEncoding count(4, "count");
    CHECK(lt::dvals(count(x)) == std::vector<double>{1, 1, 0, 0, 0, 0, 2, 0, 1, 0, 0, 1});
    // one_hot drops a last axis of 1; a rank-1 input is one sample for multi_hot and count
    CategoryEncoding column(4, "one_hot");
    CHECK(column(tensor<std::int32_t>({0, 3}, {2, 1}).to(d)).shape() == Shape{2, 4});
    CategoryEncoding flat(4, "multi_hot");
    CHECK(lt::dvals(flat(tensor<std::int32_t>({0, 3, 1}, {3}).to(d))) == std::vector<double>{1, 1, 0, 1});
    // rank 3: Keras counts over axis 1
    CategoryEncoding deep(4, "count");
    CHECK(lt::dvals(deep(tensor<std::int64_t>({0, 3, 1, 1}, {1, 2, 2}).to(d))) ==
          std::vector<double>{1, 1, 0, 0, 0, 1, 0, 1});
    // float tokens are truncated
    CategoryEncoding floats(3, "count");
    CHECK(lt::dvals(floats(tensor<float>({0.0f, 2.0f, 2.0f}, {1, 3}).to(d))) == std::vector<double>{1, 0, 2});
  }
  CategoryEncoding enc(4, "binary");
  CHECK(enc.output_mode() == CategoryOutput::MultiHot);
  CHECK(lt::dvals(enc(tensor<std::int64_t>({3, 3}, {1, 2}))) == std::vector<double>{0, 0, 0, 1});
  CHECK(enc.name() == "category_encoding");
  CHECK_THROWS_AS(enc(tensor<std::int64_t>({0, 4}, {1, 2})), IndexError);
  CHECK_THROWS_WITH(enc(tensor<std::int64_t>({0, 4}, {1, 2})),
                    "category_encoding: token 4 is outside [0, 4) (inputs [1, 2])");
  CHECK_THROWS_WITH(enc(tensor<std::int64_t>({-1, 0}, {1, 2})),
                    "category_encoding: token -1 is outside [0, 4) (inputs [1, 2])");
  CHECK_THROWS_WITH(CategoryEncoding(4, "tf_idf"),
                    "CategoryEncoding: unknown output_mode 'tf_idf' (known: one_hot, multi_hot, count)");
  CHECK_THROWS_WITH(CategoryEncoding(0), "CategoryEncoding: num_tokens must be >= 1, got 0");
}

TEST_CASE("get_weights and set_weights copy the weights in and out, as Keras", "[layers][weights]") {
  for (Device dev : lt::devices()) {
    INFO(dev.str());
    Dense dense(2);
    dense.set_device(dev);
    CHECK_THROWS_WITH(dense.set_weights({zeros({3, 2})}),
                      "dense: set_weights: expected 0 weights (none: not built yet), got 1");
    dense(zeros({1, 3}, kFloat32, dev));
    std::vector<Tensor> got = dense.get_weights();
    REQUIRE(got.size() == 2);
    CHECK(got[0].device() == Device::cpu());
    CHECK(got[0].shape() == Shape{3, 2});
    // a copy: changing it leaves the layer alone
    got[0].assign(ones({3, 2}));
    CHECK(dense.kernel().to(Device::cpu()).to_vector<float>() != got[0].to_vector<float>());
    // float64 values on the CPU go into float32 weights wherever they live
    const Tensor k = tensor(std::vector<double>{1, 2, 3, 4, 5, 6}, {3, 2}, kFloat64);
    dense.set_weights({k, tensor(std::vector<double>{0.5, -0.5}, {2}, kFloat64)});
    CHECK(dense.kernel().dtype() == kFloat32);
    CHECK(dense.kernel().device() == dev);
    CHECK(dense(tensor(std::vector<float>{1, 0, 1}, {1, 3}).to(dev)).to(Device::cpu()).to_vector<float>() ==
          std::vector<float>{6.5f, 7.5f});
    // all checked before any is written
    CHECK_THROWS_WITH(dense.set_weights({zeros({3, 2}), zeros({3})}),
                      "dense: set_weights: dense/bias has shape [2], got [3] (value 1)");
    CHECK(dense.kernel().to(Device::cpu()).to_vector<float>()[5] == 6.0f);
    CHECK_THROWS_WITH(dense.set_weights({k}),
                      "dense: set_weights: expected 2 weights (dense/kernel [3, 2], dense/bias [2]), got 1");
    CHECK_THROWS_AS(dense.set_weights({zeros({3, 2}, kBool), zeros({2})}), DTypeError);
    // a model: every layer's weights in order, the same values back
    Sequential model(Dense(4, "relu"), Dense(1));
    model.set_device(dev);
    model.set_seed(2);
    model.build({-1, 3});
    Sequential copy(Dense(4, "relu"), Dense(1));
    copy.set_device(dev);
    copy.build({-1, 3});
    copy.set_weights(model.get_weights());
    const Tensor x = tensor(std::vector<float>{0.5f, -1, 2, 1, 1, 1}, {2, 3}).to(dev);
    CHECK(copy(x).to(Device::cpu()).to_vector<float>() == model(x).to(Device::cpu()).to_vector<float>());
  }
}
