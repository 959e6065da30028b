// The layers beyond the book's first chapters: LayerNormalization, Embedding, global pooling,
// Reshape, Rescaling, LeakyReLU / ELU / Softmax / PReLU and the extra initializers, against
// loops written here from Keras's definitions, float64 gradchecks through them, their errors,
// training through fit, and the same results on every device.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "layer_test_util.hpp"
#include "tapeflow/tapeflow.hpp"

using namespace tapeflow;
using namespace tapeflow::layers;
using Catch::Matchers::Contains;
using lt::devices;
using lt::dvals;
using lt::irregular;

namespace {

// Writes a layer's weight (the accessors give const handles to the shared storage).
void set(const Variable& weight, const Tensor& value) {
  Variable w = weight;
  w.assign(value);
}

}  // namespace

TEST_CASE("LayerNormalization normalises each example over its last axis, then gamma and beta", "[layers][norm]") {
  LayerNormalization ln;
  const Tensor x = irregular({2, 3, 4});
  ln(x);  // builds
  CHECK(ln.name() == "layer_normalization");
  CHECK(ln.gamma().name() == "layer_normalization/gamma");
  CHECK(ln.gamma().shape() == Shape{4});
  CHECK(ln.beta().shape() == Shape{4});
  CHECK(ln.count_params() == 8);
  set(ln.gamma(), tensor({0.5f, -1.0f, 2.0f, 1.5f}));
  set(ln.beta(), tensor({0.1f, 0.2f, -0.3f, 0.0f}));
  const auto y = dvals(ln(x));
  const auto xv = dvals(x);
  const double g[4] = {0.5, -1.0, 2.0, 1.5}, b[4] = {0.1, 0.2, -0.3, 0.0};
  for (int r = 0; r < 6; ++r) {  // every [.., 4] row on its own
    double mu = 0, s2 = 0;
    for (int k = 0; k < 4; ++k) mu += xv[r * 4 + k] / 4;
    for (int k = 0; k < 4; ++k) s2 += (xv[r * 4 + k] - mu) * (xv[r * 4 + k] - mu) / 4;
    for (int k = 0; k < 4; ++k) {
      const double want = (xv[r * 4 + k] - mu) / std::sqrt(s2 + 1e-3) * g[k] + b[k];
      CHECK(y[r * 4 + k] == Approx(want).epsilon(1e-5).margin(1e-6));
    }
  }
  // the same in training (no batch statistics, no state)
  CHECK(dvals(ln(x, true)) == y);
}

TEST_CASE("LayerNormalization over axes {1, 2}, without center or scale", "[layers][norm]") {
  LayerNormalizationOptions o;
  o.axis = {2, -2};  // any order, negative allowed
  o.epsilon = 1e-5;
  LayerNormalization ln(o);
  const Tensor x = irregular({2, 3, 4}, -3, 5);
  ln(x);
  CHECK(ln.gamma().shape() == Shape{3, 4});
  set(ln.gamma(), irregular({3, 4}, 0.5, 1.5));
  o.center = false;
  o.scale = false;
  LayerNormalization plain(o);
  const auto y = dvals(plain(x));
  CHECK(plain.weights().empty());
  const auto xv = dvals(x);
  for (int e = 0; e < 2; ++e) {
    double mu = 0, s2 = 0;
    for (int k = 0; k < 12; ++k) mu += xv[e * 12 + k] / 12;
    for (int k = 0; k < 12; ++k) s2 += (xv[e * 12 + k] - mu) * (xv[e * 12 + k] - mu) / 12;
    for (int k = 0; k < 12; ++k) CHECK(y[e * 12 + k] == Approx((xv[e * 12 + k] - mu) / std::sqrt(s2 + 1e-5)).epsilon(1e-5));
  }
  const auto scaled = dvals(ln(x));
  const auto gv = dvals(ln.gamma());
  for (int i = 0; i < 24; ++i) CHECK(scaled[i] == Approx(y[i] * gv[i % 12]).epsilon(1e-5).margin(1e-6));
}

TEST_CASE("LayerNormalization: float64 gradcheck through it, and its errors", "[layers][norm][gradcheck]") {
  LayerNormalization ln;
  const Tensor x = irregular({3, 5}, -2, 2, kFloat64);
  ln(x);
  set(ln.gamma(), irregular({5}, 0.5, 2.0));
  set(ln.beta(), irregular({5}, -1, 1));
  const auto r = gradcheck([&](const std::vector<Tensor>& in) { return ln(in[0]); }, {x});
  INFO(r.message);
  CHECK(r.ok);
  // and the weights get gradients
  GradientTape tape;
  const Tensor loss = sum(square(ln(x.astype(kFloat32))));
  const auto grads = tape.gradient(loss, std::vector<Tensor>{ln.gamma(), ln.beta()});
  CHECK(grads[0].defined());
  CHECK(grads[1].defined());

  CHECK_THROWS_AS(ln(zeros({3, 4})), ShapeError);
  CHECK_THROWS_WITH(ln(zeros({3, 4})), Contains("layer_normalization") && Contains("[3, 4]"));
  LayerNormalizationOptions o;
  o.axis = {0};
  LayerNormalization batch_axis(o);
  CHECK_THROWS_WITH(batch_axis(zeros({2, 3})), Contains("batch axis"));
  CHECK(batch_axis.weights().empty());
  o.axis = {1, -1};
  LayerNormalization twice(o);
  CHECK_THROWS_WITH(twice(zeros({2, 3})), Contains("twice"));
  o.axis = {};
  CHECK_THROWS_AS(LayerNormalization(o), ValueError);
  o.axis = {-1};
  o.epsilon = 0;
  CHECK_THROWS_AS(LayerNormalization(o), ValueError);
}

TEST_CASE("Embedding looks up rows; the gradient adds into the rows used", "[layers][embedding]") {
  Embedding emb(6, 3);
  const Tensor idx = tensor<std::int64_t>({1, 4, 1, 0, 5, 1}, {2, 3});
  const Tensor y = emb(idx);
  CHECK(y.shape() == Shape{2, 3, 3});
  CHECK(emb.embeddings().name() == "embedding/embeddings");
  CHECK(emb.count_params() == 18);
  const auto table = dvals(emb.embeddings());
  for (double v : table) {  // Keras's RandomUniform(-0.05, 0.05)
    CHECK(v >= -0.05);
    CHECK(v <= 0.05);
  }
  const auto yv = dvals(y);
  const std::int64_t ids[6] = {1, 4, 1, 0, 5, 1};
  for (int p = 0; p < 6; ++p)
    for (int k = 0; k < 3; ++k) CHECK(yv[p * 3 + k] == table[ids[p] * 3 + k]);
  // int32 indices too, and a rank-1 input
  CHECK(dvals(emb(tensor<std::int32_t>({5, 0}, {2}))) == dvals(emb(tensor<std::int64_t>({5, 0}, {2}))));

  GradientTape tape;
  const Tensor loss = sum(emb(idx) * 2.0);
  const auto g = dvals(tape.gradient(loss, emb.embeddings()));
  const double uses[6] = {1, 3, 0, 0, 1, 1};  // index 1 three times
  for (int r = 0; r < 6; ++r)
    for (int k = 0; k < 3; ++k) CHECK(g[r * 3 + k] == 2.0 * uses[r]);

  CHECK_THROWS_AS(emb(tensor<std::int64_t>({6}, {1})), IndexError);
  CHECK_THROWS_WITH(emb(tensor<std::int64_t>({6}, {1})), Contains("embedding") && Contains("[0, 6)"));
  CHECK_THROWS_AS(emb(tensor<std::int64_t>({-1}, {1})), IndexError);
  CHECK(dvals(emb(tensor({5.0f, 0.9f}))) == dvals(emb(tensor<std::int64_t>({5, 0}, {2}))));  // cast, as Keras
  CHECK_THROWS_AS(emb(tensor({true})), DTypeError);
  CHECK_THROWS_WITH(emb(tensor({true})), Contains("embedding") && Contains("bool"));
  CHECK_THROWS_AS(Embedding(0, 3), ValueError);
}

TEST_CASE("global pooling, Reshape and Rescaling", "[layers][pool]") {
  const Tensor x = irregular({2, 3, 4, 5});
  const auto xv = dvals(x);
  GlobalAveragePooling2D gap;
  GlobalMaxPooling2D gmp;
  const auto a = dvals(gap(x)), m = dvals(gmp(x));
  CHECK(gap(x).shape() == Shape{2, 5});
  CHECK(gap.name() == "global_average_pooling2d");
  for (int b = 0; b < 2; ++b)
    for (int c = 0; c < 5; ++c) {
      double s = 0, mx = -1e300;
      for (int i = 0; i < 12; ++i) {
        s += xv[(b * 12 + i) * 5 + c];
        mx = std::max(mx, xv[(b * 12 + i) * 5 + c]);
      }
      CHECK(a[b * 5 + c] == Approx(s / 12).epsilon(1e-6));
      CHECK(m[b * 5 + c] == mx);
    }
  CHECK(GlobalAveragePooling2D(true)(x).shape() == Shape{2, 1, 1, 5});
  CHECK(GlobalMaxPooling2D(true)(x).shape() == Shape{2, 1, 1, 5});
  CHECK_THROWS_WITH(gap(zeros({2, 3, 4})), Contains("global_average_pooling2d") && Contains("[2, 3, 4]"));

  Reshape r({3, -1});
  const Tensor flat = irregular({2, 12});
  const Tensor y = r(flat);
  CHECK(y.shape() == Shape{2, 3, 4});
  CHECK(dvals(y) == dvals(flat));
  // a non-contiguous input is copied first
  const Tensor t = irregular({12, 2}).transpose();
  CHECK(dvals(Reshape({4, 3})(t)) == dvals(t.contiguous()));
  CHECK_THROWS_AS(Reshape({5, -1})(flat), ShapeError);
  CHECK_THROWS_WITH(Reshape({5, 2})(flat), Contains("reshape") && Contains("[2, 12]") && Contains("[5, 2]"));
  CHECK_THROWS_AS(Reshape({-1, -1}), ValueError);
  CHECK_THROWS_WITH(Reshape({std::int64_t(1) << 62, 4}), Contains("overflows"));  // was signed overflow (UB)
  CHECK_THROWS_AS(Reshape({-3, 4}), ValueError);

  Rescaling px(1.0 / 255);
  const Tensor img = tensor<std::int32_t>({0, 51, 255}, {1, 3});
  const Tensor s = px(img);
  CHECK(s.dtype() == kFloat32);
  CHECK(dvals(s) == std::vector<double>{0.0, double(51.0f * float(1.0 / 255)), 1.0});  // float32, as Keras
  CHECK(dvals(Rescaling(2.0, -1.0)(tensor({0.25, 0.75}, {1, 2}, kFloat64))) == std::vector<double>{-0.5, 0.5});
  CHECK_THROWS_AS(px(tensor({true}, {1, 1})), DTypeError);
}

TEST_CASE("activation layers: LeakyReLU (slope 0.3), ELU, Softmax and a learned PReLU", "[layers][activations]") {
  const Tensor x = tensor({-2.0f, -0.5f, 0.0f, 1.5f}, {1, 4});
  CHECK(dvals(LeakyReLU()(x)) == dvals(leaky_relu(x, 0.3)));
  CHECK(dvals(LeakyReLU(0.1)(x)) == dvals(leaky_relu(x, 0.1)));
  CHECK_THROWS_AS(LeakyReLU(-0.1), ValueError);
  CHECK(dvals(ELU(0.5)(x)) == dvals(elu(x, 0.5)));
  const Tensor s = Softmax(0)(irregular({3, 2}));
  for (double v : dvals(sum(s, {0}))) CHECK(v == Approx(1.0).epsilon(1e-6));

  PReLU p;  // alpha starts at zeros: relu
  const Tensor img = irregular({2, 3, 3, 4});
  CHECK(dvals(p(img)) == dvals(relu(img)));
  CHECK(p.alpha().shape() == Shape{3, 3, 4});
  CHECK(p.alpha().name() == "p_re_lu/alpha");  // Keras's snake case of "PReLU"
  PReLU shared(initializers::zeros, {1, 2});
  shared(img);
  CHECK(shared.alpha().shape() == Shape{1, 1, 4});
  CHECK(shared.count_params() == 4);
  set(shared.alpha(), tensor({0.1f, 0.2f, 0.3f, 0.4f}, {1, 1, 4}));
  const auto y = dvals(shared(img)), xv = dvals(img);
  for (std::size_t i = 0; i < xv.size(); ++i) {
    const double a = 0.1 * double(i % 4 + 1);
    CHECK(y[i] == Approx(xv[i] > 0 ? xv[i] : xv[i] * a).epsilon(1e-6));
  }
  // alpha's gradient: the sum of x over the negative entries of each channel
  GradientTape tape;
  const auto g = dvals(tape.gradient(sum(shared(img)), shared.alpha()));
  for (int c = 0; c < 4; ++c) {
    double want = 0;
    for (std::size_t i = static_cast<std::size_t>(c); i < xv.size(); i += 4) want += xv[i] < 0 ? xv[i] : 0;
    CHECK(g[static_cast<std::size_t>(c)] == Approx(want).epsilon(1e-5));
  }
  CHECK_THROWS_AS(PReLU(initializers::zeros, {4})(img), ValueError);
  CHECK_THROWS_AS(p(irregular({2, 3, 3, 5})), ShapeError);
}

TEST_CASE("an op's error inside a layer's call names the layer, keeping its type", "[layers][errors]") {
  CHECK_THROWS_AS(Softmax(5)(zeros({2, 3})), IndexError);
  CHECK_THROWS_WITH(Softmax(5, "probs")(zeros({2, 3})), Catch::Matchers::StartsWith("probs: softmax: axis 5"));
  GlobalMaxPooling2D gmp;
  CHECK_THROWS_WITH(gmp(zeros({1, 0, 2, 3})), Catch::Matchers::StartsWith("global_max_pooling2d: max:"));
  // a layer that names itself is not named twice
  CHECK_THROWS_WITH(Reshape({5, 2})(zeros({2, 12})), Catch::Matchers::StartsWith("reshape: cannot reshape"));
  if (cuda::is_available()) {
    LayerNormalization ln;
    ln.set_device(Device::cuda(0));
    ln(zeros({2, 3}).to(Device::cuda(0)));
    CHECK_THROWS_AS(ln(zeros({2, 3})), DeviceError);
    CHECK_THROWS_WITH(ln(zeros({2, 3})), Catch::Matchers::StartsWith("layer_normalization: ") && Contains("cuda:0"));
  }
}

TEST_CASE("the extra initializers: names, ranges and spreads", "[layers][initializers]") {
  Generator gen(1);
  for (const char* n : {"lecun_normal", "lecun_uniform", "random_uniform", "uniform", "random_normal", "normal",
                        "truncated_normal", "glorot_uniform", "zeros"}) {
    INFO(n);
    CHECK(initializers::get(n)({4, 3}, gen).shape() == Shape{4, 3});
  }
  CHECK_THROWS_WITH(initializers::get("identity"), Contains("identity") && Contains("lecun_normal"));
  const auto u = dvals(initializers::lecun_uniform({300, 200}, gen));  // limit sqrt(3 / 300) = 0.1
  double mx = 0, ss = 0;
  for (double v : u) {
    mx = std::max(mx, std::abs(v));
    ss += v * v;
  }
  CHECK(mx <= 0.1);
  CHECK(mx > 0.099);
  CHECK(std::sqrt(ss / u.size()) == Approx(0.1 / std::sqrt(3.0)).epsilon(0.02));  // uniform's stddev
  const auto nrm = dvals(initializers::random_normal({300, 200}, gen));
  ss = 0;
  for (double v : nrm) ss += v * v;
  CHECK(std::sqrt(ss / nrm.size()) == Approx(0.05).epsilon(0.02));
  const auto tn = dvals(initializers::truncated_normal({300, 200}, gen));
  for (double v : tn) CHECK(std::abs(v) <= 0.1);  // truncated at 2 stddev
  const auto ln = dvals(initializers::lecun_normal({400, 100}, gen));  // stddev sqrt(1 / 400) = 0.05
  ss = 0;
  for (double v : ln) ss += v * v;
  CHECK(std::sqrt(ss / ln.size()) == Approx(0.05).epsilon(0.03));
}

TEST_CASE("a text classifier trains: Embedding, GlobalMaxPooling over the tokens, LayerNormalization, Dense",
          "[layers][embedding][fit]") {
  // label = whether token 7 occurs: the model must learn an embedding that marks it
  Generator gen(5);
  const std::int64_t n = 512, len = 8;
  const auto tokens = uniform({n, len}, gen, 0.0, 10.0).astype(kInt64);
  const auto tv = tokens.to_vector<std::int64_t>();
  std::vector<float> labels(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < len; ++j) labels[static_cast<std::size_t>(i)] += tv[static_cast<std::size_t>(i * len + j)] == 7;
    labels[static_cast<std::size_t>(i)] = labels[static_cast<std::size_t>(i)] > 0;
  }
  const Tensor y = tensor(labels, {n, 1});
  Sequential model(Embedding(10, 8), Reshape({len, 1, 8}), GlobalMaxPooling2D(), LayerNormalization(),
                   Dense(1, "sigmoid"));
  model.set_seed(3);
  model.compile("adam", "binary_crossentropy", {"accuracy"});
  FitOptions o;
  o.epochs = 40;
  o.verbose = 0;
  model.fit(tokens, y, o);
  CHECK(model.evaluate(tokens, y, 128, 0).at("accuracy") > 0.95);
}

TEST_CASE("the new layers give the CPU's results on every device", "[layers][device]") {
  if (!cuda::is_available()) WARN("CUDA half skipped: " << cuda::status());
  using Make = std::function<std::shared_ptr<Layer>()>;
  const std::vector<std::pair<std::string, Make>> makes = {
      {"layer_normalization", [] { return std::make_shared<LayerNormalization>(); }},
      {"global_average_pooling2d", [] { return std::make_shared<GlobalAveragePooling2D>(); }},
      {"global_max_pooling2d", [] { return std::make_shared<GlobalMaxPooling2D>(); }},
      {"reshape", [] { return std::make_shared<Reshape>(Shape{-1}); }},
      {"rescaling", [] { return std::make_shared<Rescaling>(0.5, 1.0); }},
      {"leaky_re_lu", [] { return std::make_shared<LeakyReLU>(); }},
      {"elu", [] { return std::make_shared<ELU>(); }},
      {"softmax", [] { return std::make_shared<Softmax>(); }},
      {"p_re_lu", [] { return std::make_shared<PReLU>(initializers::random_normal); }},
  };
  const Tensor x = irregular({2, 3, 4, 5});
  for (const auto& [name, make] : makes) {
    INFO(name);
    std::vector<double> expected;
    for (const Device& d : devices()) {
      INFO(d.str());
      auto layer = make();
      layer->set_seed(9);
      layer->set_device(d);
      GradientTape tape;
      const Tensor xd = x.to(d);
      tape.watch(xd);
      const Tensor y = (*layer)(xd, true);
      CHECK(layer->name() == name);
      CHECK(y.device() == d);
      auto got = dvals(y.to(Device::cpu()));
      // a loss whose gradient does not cancel (sum(square(layer_normalization(x))) hardly moves)
      const Tensor w = irregular(y.shape(), -1.0, 1.0).to(d);
      const auto g = dvals(tape.gradient(sum(y * w), xd).to(Device::cpu()));
      got.insert(got.end(), g.begin(), g.end());
      if (expected.empty()) {
        expected = got;
      } else {
        REQUIRE(got.size() == expected.size());
        for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(expected[i]).epsilon(1e-5).margin(1e-6));
      }
    }
  }
  // Embedding's indices on the device too
  std::vector<double> first;
  for (const Device& d : devices()) {
    Embedding emb(10, 4);
    emb.set_seed(2);
    emb.set_device(d);
    const auto v = dvals(emb(tensor<std::int64_t>({3, 9, 3}, {3}).to(d)).to(Device::cpu()));
    if (first.empty()) first = v;
    else CHECK(v == first);
  }
}

TEST_CASE("regularizers: weight and activity penalties join the loss (Keras 3's compute_loss)", "[layers][regularizers]") {
  // checked against Keras 3.15: Dense(2, kernel_regularizer=l2(0.01), bias_regularizer=l1(0.02),
  // activity_regularizer=L1L2(0.01, 0.02)); evaluate's loss = mse + the penalties
  DenseOptions o;
  o.kernel_regularizer = regularizers::l2(0.01);
  o.bias_regularizer = regularizers::l1(0.02);
  o.activity_regularizer = regularizers::l1_l2(0.01, 0.02);
  o.bias_initializer = initializers::ones;
  auto dense = std::make_shared<Dense>(2, Activation::Linear, o);
  Sequential model({dense});
  model.compile("sgd", "mean_squared_error");
  std::vector<double> xs(12), ys(8);
  for (std::size_t i = 0; i < 12; ++i) xs[i] = -1.0 + 2.0 * double(i) / 11.0;
  for (std::size_t i = 0; i < 8; ++i) ys[i] = double(i) / 7.0;
  const Tensor x = tensor(xs, {4, 3}).astype(kFloat32), y = tensor(ys, {4, 2}).astype(kFloat32);
  const double loss = model.evaluate(x, y, 4, 0).at("loss");
  const auto k = dvals(dense->kernel()), b = dvals(dense->bias());
  double mse = 0, pen = 0, act1 = 0, act2 = 0;
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t j = 0; j < 2; ++j) {
      double out = b[j];
      for (std::size_t p = 0; p < 3; ++p) out += xs[i * 3 + p] * k[p * 2 + j];
      mse += (out - ys[i * 2 + j]) * (out - ys[i * 2 + j]) / 8.0;
      act1 += std::abs(out);
      act2 += out * out;
    }
  for (double w : k) pen += 0.01 * w * w;
  for (double w : b) pen += 0.02 * std::abs(w);
  pen += (0.01 * act1 + 0.02 * act2) / 4.0;
  CHECK(loss == Approx(mse + pen).epsilon(1e-5));
  // the layer's losses: the activity penalty of the last call, then kernel and bias
  REQUIRE(dense->losses().size() == 3);
  CHECK(model.losses().size() == 3);
  // the gradient of the penalty reaches the kernel: d/dK (0.01 sum K^2) = 0.02 K
  {
    GradientTape tape;
    const Tensor pen_k = dense->losses()[1];
    const auto g = dvals(tape.gradient(pen_k, Tensor(dense->kernel())));
    for (std::size_t i = 0; i < k.size(); ++i) CHECK(g[i] == Approx(0.02 * k[i]));
  }
  // frozen: the weight penalties go (Keras counts trainable weights only), the activity one stays
  dense->set_trainable(false);
  CHECK(dense->losses().size() == 1);
  dense->set_trainable(true);
  // training lowers the penalised loss; l2 alone shrinks the weights towards zero
  DenseOptions only_l2;
  only_l2.kernel_regularizer = regularizers::get("l2");
  Sequential shrink(Dense(3, Activation::Linear, only_l2));
  shrink.compile("sgd", "mean_squared_error");
  shrink.build({-1, 3});
  const double before = sum(square(shrink.weights()[0])).item<double>();
  FitOptions fo;
  fo.epochs = 20;
  fo.verbose = 0;
  shrink.fit(x, zeros({4, 3}), fo);
  CHECK(sum(square(shrink.weights()[0])).item<double>() < before);
  // Embedding's penalty, and an add_loss from a custom layer
  EmbeddingOptions eo;
  eo.embeddings_regularizer = regularizers::l1(0.5);
  Embedding emb(4, 2, eo);
  emb(tensor<std::int64_t>({1, 2}, {2}));
  REQUIRE(emb.losses().size() == 1);
  CHECK(emb.losses()[0].item<double>() == Approx(0.5 * sum(abs(emb.embeddings())).item<double>()));
  // the convolutions' and recurrent layers' penalties, each on its own weight
  Conv2DOptions co;
  co.kernel_regularizer = regularizers::l2(0.1);
  co.activity_regularizer = regularizers::l1(0.2);
  Conv2D conv(2, 3, Activation::Linear, co);
  const Tensor img = irregular({2, 4, 4, 1});
  const Tensor cy = conv(img);
  REQUIRE(conv.losses().size() == 2);
  CHECK(conv.losses()[0].item<double>() == Approx(0.2 * sum(abs(cy)).item<double>() / 2).epsilon(1e-6));
  CHECK(conv.losses()[1].item<double>() == Approx(0.1 * sum(square(conv.kernel())).item<double>()).epsilon(1e-6));
  SeparableConv2DOptions so;
  so.depthwise_regularizer = regularizers::l1(1.0);
  so.pointwise_regularizer = regularizers::l2(1.0);
  SeparableConv2D sep(2, 3, Activation::Linear, so);
  sep(img);
  REQUIRE(sep.losses().size() == 2);
  CHECK(sep.losses()[0].item<double>() == Approx(sum(abs(sep.depthwise_kernel())).item<double>()).epsilon(1e-6));
  CHECK(sep.losses()[1].item<double>() == Approx(sum(square(sep.pointwise_kernel())).item<double>()).epsilon(1e-6));
  RecurrentOptions ro;
  ro.recurrent_regularizer = regularizers::l2(0.5);
  ro.bias_regularizer = regularizers::l1(0.5);
  LSTM lstm(3, Activation::Tanh, ro);
  lstm(irregular({2, 4, 2}));
  REQUIRE(lstm.losses().size() == 2);
  CHECK(lstm.losses()[0].item<double>() == Approx(0.5 * sum(square(lstm.recurrent_kernel())).item<double>()).epsilon(1e-6));
  CHECK(lstm.losses()[1].item<double>() == Approx(0.5 * sum(abs(lstm.bias())).item<double>()).epsilon(1e-6));
  // names and errors
  CHECK(!regularizers::get(""));
  CHECK(regularizers::get("l1_l2")(tensor<double>({1.0, -2.0}, {2})).item<double>() == Approx(0.01 * 3 + 0.01 * 5));
  CHECK_THROWS_WITH(regularizers::get("l3"), Contains("regularizers: unknown regularizer 'l3' (known: l1, l2, l1_l2)"));
  CHECK_THROWS_WITH(regularizers::l2(-1), Contains("regularizers: the l2 factor must be finite and >= 0, got -1"));
}

namespace {
// A layer that adds its own loss, as Keras's self.add_loss in call()
class MeanPenalty : public Layer {
 public:
  explicit MeanPenalty(bool scalar = true) : Layer("MeanPenalty", ""), scalar_(scalar) {}
  Tensor call(const Tensor& x, bool) override {
    add_loss(scalar_ ? mean(x) * 0.5 : x);
    return x;
  }

 private:
  bool scalar_;
};
}  // namespace

TEST_CASE("add_loss: a custom layer's loss joins the model's, replaced at each call", "[layers][regularizers]") {
  auto pen = std::make_shared<MeanPenalty>();
  Sequential model({pen});
  model.compile("sgd", "mean_squared_error");
  const Tensor x = irregular({3, 2}), y = zeros({3, 2});
  const double mse = mean(square(x)).item<double>();
  CHECK(model.evaluate(x, y, 3, 0).at("loss") == Approx(mse + 0.5 * mean(x).item<double>()).epsilon(1e-6));
  model(x * 2.0);
  REQUIRE(pen->losses().size() == 1);
  CHECK(pen->losses()[0].item<double>() == Approx(mean(x).item<double>()).epsilon(1e-6));
  MeanPenalty bad(false);
  CHECK_THROWS_WITH(bad(x), Contains("mean_penalty: add_loss: a loss must be a scalar, got [3, 2]"));
}

// ================================================================ MultiHeadAttention
// Against the real Keras 3.15 (golden/attention_golden.hpp: outputs and scores of self- and
// cross-attention, value_dim and output_shape, masks, causal, no bias) on every device, its
// weights' names and layout, float64 gradchecks with and without masks, dropout, the functional
// API, and its errors.

#include <algorithm>
#include <memory>
#include <sstream>
#include <utility>

#include "golden/attention_golden.hpp"

namespace {

namespace ag = attention_golden;

Tensor golden(const double* p, const Shape& shape, DType dtype = kFloat32) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return tensor(std::vector<double>(p, p + n), shape, kFloat64).astype(dtype);
}

// The layer of a golden case, called once to build it, with Keras's weights.
std::shared_ptr<MultiHeadAttention> make_mha(const ag::Case& c, const Tensor& query, const Tensor& value,
                                             const AttentionCall& args) {
  MultiHeadAttentionOptions o;
  o.value_dim = c.value_dim;
  o.output_shape = c.output_dim;
  o.use_bias = c.use_bias;
  auto mha = std::make_shared<MultiHeadAttention>(c.heads, c.key_dim, o);
  (*mha)(query, value, args);
  const auto weights = mha->weights();
  std::size_t w = 0;
  for (const double* p : c.weights) {
    if (p == nullptr) continue;
    REQUIRE(w < weights.size());
    set(weights[w], golden(p, weights[w].shape()));
    ++w;
  }
  CHECK(w == weights.size());
  return mha;
}

struct GoldenCall {
  Tensor query, value;
  AttentionCall args;
};

// The inputs and masks of a golden case on `device`: the masks bool, float and int64 in turn
// (every dtype means the same: nonzero attends).
GoldenCall golden_call(const ag::Case& c, Device device) {
  GoldenCall g;
  g.query = golden(c.query, {c.b, c.t, c.query_dim}).to(device);
  g.value = golden(c.value, {c.b, c.s, c.value_dim_in}).to(device);
  if (c.key != nullptr) g.args.key = golden(c.key, {c.b, c.s, c.key_dim_in}).to(device);
  if (c.query_mask != nullptr) g.args.query_mask = golden(c.query_mask, {c.b, c.t}, kBool).to(device);
  if (c.value_mask != nullptr) g.args.value_mask = golden(c.value_mask, {c.b, c.s}).to(device);
  if (c.key_mask != nullptr) g.args.key_mask = golden(c.key_mask, {c.b, c.s}, kInt64).to(device);
  if (c.attention_mask != nullptr) g.args.attention_mask = golden(c.attention_mask, {c.b, c.t, c.s}).to(device);
  g.args.use_causal_mask = c.causal;
  return g;
}

double max_error(const Tensor& got, const double* want) {
  const auto v = dvals(got);
  double err = 0;
  for (std::size_t i = 0; i < v.size(); ++i) err = std::max(err, std::abs(v[i] - want[i]));
  return err;
}

}  // namespace

TEST_CASE("MultiHeadAttention: Keras's sublayers, weight names, shapes and order", "[layers][attention]") {
  MultiHeadAttentionOptions o;
  o.value_dim = 2;
  o.output_shape = 7;
  MultiHeadAttention mha(2, 3, o);
  AttentionCall args;
  args.key = irregular({2, 4, 6});
  const Tensor y = mha(irregular({2, 3, 4}), irregular({2, 4, 5}), args);
  CHECK(y.shape() == Shape{2, 3, 7});
  CHECK(mha.name() == "multi_head_attention");
  const auto w = mha.weights();
  REQUIRE(w.size() == 8);
  const std::vector<std::pair<std::string, Shape>> want = {
      {"multi_head_attention/query/kernel", {4, 2, 3}},          {"multi_head_attention/query/bias", {2, 3}},
      {"multi_head_attention/key/kernel", {6, 2, 3}},            {"multi_head_attention/key/bias", {2, 3}},
      {"multi_head_attention/value/kernel", {5, 2, 2}},          {"multi_head_attention/value/bias", {2, 2}},
      {"multi_head_attention/attention_output/kernel", {2, 2, 7}}, {"multi_head_attention/attention_output/bias", {7}}};
  for (std::size_t i = 0; i < 8; ++i) {
    CHECK(w[i].name() == want[i].first);
    CHECK(w[i].shape() == want[i].second);
  }
  CHECK(mha.count_params() == 24 + 6 + 36 + 6 + 20 + 4 + 28 + 7);
  REQUIRE(mha.sublayers().size() == 4);
  CHECK(mha.sublayers()[3]->name() == "multi_head_attention/attention_output");
  CHECK(mha.output_shape() == Shape{-1, 3, 7});
  // glorot_uniform over Keras's fans of [4, 2, 3]: fan_in 2 * 4, fan_out 3 * 4
  for (double v : dvals(w[0])) CHECK(std::abs(v) <= std::sqrt(6.0 / 20) + 1e-7);
  for (double v : dvals(w[1])) CHECK(v == 0);

  // no bias: the four kernels; output_shape defaults to the query's features; regularizers on each
  MultiHeadAttentionOptions nb;
  nb.use_bias = false;
  nb.kernel_regularizer = regularizers::l2(0.1);
  MultiHeadAttention plain(3, 2, nb);
  CHECK(plain(irregular({1, 2, 5}), irregular({1, 4, 5})).shape() == Shape{1, 2, 5});
  CHECK(plain.weights().size() == 4);
  CHECK(plain.weights()[3].shape() == Shape{3, 2, 5});
  CHECK(plain.losses().size() == 4);
}

TEST_CASE("MultiHeadAttention matches Keras 3.15: outputs and scores, masks, causal, on every device",
          "[layers][attention][device]") {
  for (const auto& c : ag::kCases) {
    INFO(c.name);
    const GoldenCall cpu = golden_call(c, Device::cpu());
    const auto ref = make_mha(c, cpu.query, cpu.value, cpu.args);
    const AttentionOutput r = ref->with_scores(cpu.query, cpu.value, cpu.args);
    REQUIRE(r.output.shape() == Shape{c.b, c.t, c.output_dim ? c.output_dim : c.query_dim});
    REQUIRE(r.scores.shape() == Shape{c.b, c.heads, c.t, c.s});
    const double out_err = max_error(r.output, c.output), score_err = max_error(r.scores, c.scores);
    CHECK(out_err < 1e-5);
    CHECK(score_err < 1e-5);
    CHECK(dvals((*ref)(cpu.query, cpu.value, cpu.args)) == dvals(r.output));
    if (c.query_mask == nullptr && c.value_mask == nullptr && c.key_mask == nullptr && c.attention_mask == nullptr &&
        !c.causal) {  // the list call of the functional API
      std::vector<Tensor> list = {cpu.query, cpu.value};
      if (c.key != nullptr) list.push_back(cpu.args.key);
      CHECK(dvals((*ref)(list)) == dvals(r.output));
    }
    for (const Device& d : devices()) {
      INFO(d.str());
      const GoldenCall on = golden_call(c, d);
      const auto mha = make_mha(c, on.query, on.value, on.args);
      const AttentionOutput got = mha->with_scores(on.query, on.value, on.args);
      CHECK(got.output.device() == d);
      const auto a = dvals(got.output.to(Device::cpu())), b = dvals(r.output);
      for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(b[i]).margin(1e-6));
      const auto sa = dvals(got.scores.to(Device::cpu())), sb = dvals(r.scores);
      for (std::size_t i = 0; i < sa.size(); ++i) CHECK(sa[i] == Approx(sb[i]).margin(1e-6));
    }
  }
}

TEST_CASE("MultiHeadAttention: the masks combine as Keras's _compute_attention_mask", "[layers][attention]") {
  MultiHeadAttention mha(1, 2);
  const Tensor q = irregular({2, 3, 4}), v = irregular({2, 2, 4});
  AttentionCall args;
  CHECK_FALSE(mha.compute_attention_mask(q, v, args).defined());
  args.use_causal_mask = true;
  const Tensor causal = mha.compute_attention_mask(q, v, args);  // [1, T, S]: j <= i
  CHECK(causal.shape() == Shape{1, 3, 2});
  CHECK(causal.dtype() == kBool);
  CHECK(dvals(causal) == std::vector<double>{1, 0, 1, 1, 1, 1});
  args.query_mask = tensor<std::int64_t>({1, 0, 1, 1, 1, 1}, {2, 3});
  args.value_mask = tensor({1.0f, 1.0f, 0.5f, 0.0f}, {2, 2});  // nonzero attends (0.5 too)
  args.key_mask = tensor<std::int64_t>({0, 1, 1, 1}, {2, 2});
  args.attention_mask = tensor({1.0f, 1.0f, 1.0f, 1.0f, 0.0f, 1.0f}, {3, 2});  // [T, S] broadcasts over the batch
  // query[:, :, None] & value[:, None, :] & key[:, None, :] & causal & attention
  const std::vector<double> want = {0, 0, 0, 0, 0, 1, /**/ 1, 0, 1, 0, 0, 0};
  CHECK(dvals(mha.compute_attention_mask(q, v, args)) == want);
  // a query attending to nothing gets probabilities of 0 (Keras's Softmax with a mask), one
  // attending to one key 1
  CHECK(dvals(mha.with_scores(q, v, args).scores) == want);
}

TEST_CASE("MultiHeadAttention: float64 gradcheck in the query, value, key and every weight, with and without masks",
          "[layers][attention][gradcheck]") {
  MultiHeadAttentionOptions o;
  o.value_dim = 2;
  o.output_shape = 3;
  auto mha = std::make_shared<MultiHeadAttention>(2, 3, o);
  mha->set_seed(3);
  const Tensor q = irregular({2, 3, 4}, -1, 1, kFloat64), v = irregular({2, 4, 3}, -1, 1, kFloat64);
  const Tensor k = irregular({2, 4, 5}, -1, 1, kFloat64);
  AttentionCall masked;
  masked.value_mask = tensor({1.0f, 1.0f, 0.0f, 1.0f, 0.0f, 1.0f, 1.0f, 1.0f}, {2, 4});
  masked.use_causal_mask = true;
  for (bool with_mask : {false, true}) {
    INFO("masks: " << with_mask);
    AttentionCall args = with_mask ? masked : AttentionCall{};
    const auto fn = [&](const std::vector<Tensor>& in) {
      AttentionCall a = args;
      a.key = in[2];
      return (*mha)(in[0], in[1], a);
    };
    const auto r = gradcheck(fn, {q, v, k});
    INFO(r.message);
    CHECK(r.ok);
    // the weights (float32): the tape's gradient against central differences computed in float64
    args.key = k;
    const Tensor w_out = irregular({2, 3, 3}, -1, 1, kFloat64);
    std::string worst_at;
    const double worst =
        lt::weights_gradcheck_error([&] { return sum((*mha)(q, v, args) * w_out); }, mha->weights(), &worst_at);
    INFO(worst_at);
    CHECK(worst < 1e-3);
  }
}

TEST_CASE("MultiHeadAttention: dropout on the probabilities in training only, seeded", "[layers][attention][dropout]") {
  const auto& c = ag::kCases[0];  // self-attention
  for (const Device& d : devices()) {
    INFO(d.str());
    const GoldenCall g = golden_call(c, d);
    MultiHeadAttentionOptions o;
    o.dropout = 0.4;
    auto mha = std::make_shared<MultiHeadAttention>(c.heads, c.key_dim, o);
    (*mha)(g.query, g.value);
    for (std::size_t i = 0; i < 8; ++i) set(mha->weights()[i], golden(c.weights[i], mha->weights()[i].shape()));
    // inference: Keras's outputs, dropout or not
    const AttentionOutput plain = mha->with_scores(g.query, g.value);
    CHECK(max_error(plain.output.to(Device::cpu()), c.output) < 1e-5);
    AttentionCall train;
    train.training = true;
    mha->set_seed(21);
    const Tensor y1 = (*mha)(g.query, g.value, train);
    mha->set_seed(21);
    const Tensor y2 = (*mha)(g.query, g.value, train);
    CHECK(dvals(y1.to(Device::cpu())) == dvals(y2.to(Device::cpu())));
    CHECK(dvals(y1.to(Device::cpu())) != dvals(plain.output.to(Device::cpu())));
    // the same draw by hand: each probability kept and scaled by 1 / (1 - rate), or zeroed
    Generator gen(21);
    const Tensor keep = dropout(ones(plain.scores.shape(), kFloat32, d), 0.4, gen);
    const auto kv = dvals(keep.to(Device::cpu()));
    std::size_t dropped = 0;
    for (double k : kv) {
      CHECK((k == 0 || k == Approx(1 / 0.6)));
      dropped += k == 0;
    }
    CHECK(dropped > 0);
    CHECK(dropped < kv.size());
    const auto w = mha->weights();  // value and output projections: [B, S, N, v] and [B, T, N, v] -> [B, T, out]
    const Tensor v = matmul(g.value, w[4].reshape({c.query_dim, -1})).reshape({c.b, c.s, c.heads, c.key_dim}) +
                     w[5];
    const Tensor heads = matmul(plain.scores * keep, v.permute({0, 2, 1, 3})).permute({0, 2, 1, 3});
    const Tensor want = matmul(heads.reshape({c.b, c.t, -1}), w[6].reshape({-1, c.query_dim})) + w[7];
    const auto a = dvals(y1.to(Device::cpu())), b = dvals(want.to(Device::cpu()));
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(b[i]).margin(1e-5));
  }
}

TEST_CASE("MultiHeadAttention in a functional model: self-attention on [x, x], training reaches the dropout",
          "[layers][attention][functional]") {
  const KerasTensor in = Input({3, 4});
  MultiHeadAttentionOptions o;
  o.dropout = 0.5;
  auto mha = std::make_shared<MultiHeadAttention>(2, 3, o);
  const KerasTensor h = (*mha)({in, in});
  const KerasTensor out = apply_layer(Dense(2), apply_layer(Add(), {in, h}));
  Functional model(in, out);
  const Tensor x = irregular({2, 3, 4});
  const Tensor y = model(x);
  CHECK(y.shape() == Shape{2, 3, 2});
  CHECK(dvals((*mha)(x, x)) == dvals(mha->with_scores(x, x).output));
  CHECK(dvals(model(x)) == dvals(y));                   // inference: no dropout
  CHECK(dvals(model(x, /*training=*/true)) != dvals(y));  // training: the probabilities dropped
  CHECK(model.layers().size() == 3);
  CHECK(mha->count_params() == 3 * (4 * 2 * 3 + 2 * 3) + (2 * 3 * 4 + 4));  // Keras's 118
  CHECK(model.count_params() == 118 + 10);
  std::ostringstream summary;
  model.summary(summary);
  INFO(summary.str());
  // Keras 3.15's lines for this model: the name wraps in its column
  CHECK_THAT(summary.str(), Contains("| multi_head_attention          | (None, 3, 4)              |             118 | "
                                     "input_layer[0][0],         |\n"
                                     "| (MultiHeadAttention)          |                           |                 | "
                                     "input_layer[0][0]          |\n"));
  // cross-attention with a key, through apply_layer
  const KerasTensor qi = Input({2, 4}), vi = Input({5, 3}), ki = Input({5, 6});
  Functional cross({qi, vi, ki}, {apply_layer(MultiHeadAttention(1, 2), {qi, vi, ki})});
  CHECK(cross(std::vector<Tensor>{irregular({2, 2, 4}), irregular({2, 5, 3}), irregular({2, 5, 6})})[0].shape() ==
        Shape{2, 2, 4});
}

TEST_CASE("MultiHeadAttention: errors name the layer and the shapes", "[layers][attention]") {
  CHECK_THROWS_WITH(MultiHeadAttention(0, 3), Contains("num_heads must be a positive integer, got 0"));
  CHECK_THROWS_WITH(MultiHeadAttention(2, -1), Contains("key_dim"));
  MultiHeadAttentionOptions bad;
  bad.dropout = 1;
  CHECK_THROWS_AS(MultiHeadAttention(2, 3, bad), ValueError);

  MultiHeadAttention mha(2, 3);
  CHECK_THROWS_AS(mha(zeros({2, 4}), zeros({2, 4})), ValueError);
  CHECK_THROWS_WITH(mha(zeros({2, 4}), zeros({2, 4})),
                    Contains("multi_head_attention: expected query, value and key of rank 3") &&
                        Contains("query [2, 4], value [2, 4], key [2, 4]"));
  CHECK_THROWS_WITH(mha(zeros({2, 1, 3, 4}), zeros({2, 1, 3, 4})), Contains("not supported"));
  AttentionCall k;
  k.key = zeros({2, 3, 4});
  CHECK_THROWS_WITH(mha(zeros({2, 3, 4}), zeros({2, 5, 4}), k),
                    Contains("value and key must agree in every axis but the last: query [2, 3, 4], value [2, 5, 4], "
                             "key [2, 3, 4]"));
  CHECK_THROWS_WITH(mha(zeros({2, 3, 4}), zeros({3, 5, 4})), Contains("batch sizes differ"));
  CHECK(mha.weights().empty());  // nothing built by a failed call
  AttentionCall m;
  m.value_mask = ones({2, 3});
  CHECK_THROWS_AS(mha(zeros({2, 3, 4}), zeros({2, 5, 4}), m), ShapeError);
  CHECK_THROWS_WITH(mha(zeros({2, 3, 4}), zeros({2, 5, 4}), m),
                    Contains("multi_head_attention: value_mask must be [2, 5], got [2, 3] (query [2, 3, 4], value "
                             "[2, 5, 4])"));
  m = {};
  m.attention_mask = ones({2, 5, 3});
  CHECK_THROWS_WITH(mha(zeros({2, 3, 4}), zeros({2, 5, 4}), m),
                    Contains("attention_mask must be [2, 3, 5] (or broadcast to it), got [2, 5, 3]"));
  m = {};
  m.query_mask = ones({2, 3, 1});
  CHECK_THROWS_WITH(mha(zeros({2, 3, 4}), zeros({2, 5, 4}), m), Contains("query_mask must be [2, 3]"));
  CHECK(mha(zeros({2, 3, 4}), zeros({2, 5, 4})).shape() == Shape{2, 3, 4});  // builds
  CHECK_THROWS_AS(mha(zeros({2, 3, 4}), zeros({2, 5, 6})), ShapeError);
  CHECK_THROWS_WITH(mha(zeros({2, 3, 4}), zeros({2, 5, 6})),
                    Contains("multi_head_attention: built for query, value and key features [4, 4, 4], got query "
                             "[2, 3, 4], value [2, 5, 6], key [2, 5, 6]"));
  // the list forms
  CHECK_THROWS_WITH(mha(std::vector<Tensor>{zeros({2, 3, 4})}),
                    Contains("takes [query, value] or [query, value, key], got 1 inputs: [2, 3, 4]"));
  CHECK_THROWS_WITH(mha(zeros({2, 3, 4})), Contains("a merge layer takes a list"));
}

// ================================================================ Attention, AdditiveAttention
// Against the real Keras 3.15 (golden/attention_golden.hpp, kLuongCases: dot and concat scores,
// use_scale on and off, additive scores, query and value masks, causal) on every device, their
// weights, float64 gradchecks, dropout, the functional API with masks, and their errors.

namespace {

// Options of type O with `set` applied.
template <class O, class F>
O with_options(F set) {
  O o;
  set(o);
  return o;
}

// The layer of a Luong golden case, called once to build it, with Keras's weights.
std::shared_ptr<Attention> make_luong(const ag::LuongCase& c) {
  std::shared_ptr<Attention> layer;
  if (c.additive) {
    AdditiveAttentionOptions o;
    o.use_scale = c.use_scale;
    layer = std::make_shared<AdditiveAttention>(o);
  } else {
    AttentionOptions o;
    o.use_scale = c.use_scale;
    o.score_mode = c.concat ? "concat" : "dot";
    layer = std::make_shared<Attention>(o);
  }
  return layer;
}

struct LuongCall {
  Tensor query, value;
  AttentionCall args;
};

// The inputs and masks of a golden case on `device` (the value mask float: nonzero attends).
LuongCall luong_call(const ag::LuongCase& c, Device device, DType dtype = kFloat32) {
  LuongCall g;
  g.query = golden(c.query, {c.b, c.tq, c.dim}, dtype).to(device);
  g.value = golden(c.value, {c.b, c.tv, c.dv}, dtype).to(device);
  if (c.key != nullptr) g.args.key = golden(c.key, {c.b, c.tv, c.dim}, dtype).to(device);
  if (c.query_mask != nullptr) g.args.query_mask = golden(c.query_mask, {c.b, c.tq}, kBool).to(device);
  if (c.value_mask != nullptr) g.args.value_mask = golden(c.value_mask, {c.b, c.tv}).to(device);
  g.args.use_causal_mask = c.causal;
  return g;
}

// Builds `layer` on `g` and sets Keras's weights.
void set_luong_weights(Attention& layer, const ag::LuongCase& c, const LuongCall& g) {
  layer(g.query, g.value, g.args);
  const auto w = layer.weights();
  std::size_t i = 0;
  for (const double* p : {c.scale, c.concat_score_weight}) {
    if (p == nullptr) continue;
    REQUIRE(i < w.size());
    set(w[i], golden(p, w[i].shape()));
    ++i;
  }
  CHECK(i == w.size());
}

}  // namespace

TEST_CASE("Attention and AdditiveAttention match Keras 3.15: outputs and scores, masks, causal, scale, concat",
          "[layers][attention][device]") {
  for (const auto& c : ag::kLuongCases) {
    INFO(c.name);
    for (const Device& d : devices()) {
      INFO(d.str());
      const LuongCall g = luong_call(c, d);
      const auto layer = make_luong(c);
      set_luong_weights(*layer, c, g);
      const AttentionOutput r = layer->with_scores(g.query, g.value, g.args);
      CHECK(r.output.device() == d);
      REQUIRE(r.output.shape() == Shape{c.b, c.tq, c.dv});
      REQUIRE(r.scores.shape() == Shape{c.b, c.tq, c.tv});
      CHECK(max_error(r.output.to(Device::cpu()), c.output) < 1e-5);
      CHECK(max_error(r.scores.to(Device::cpu()), c.scores) < 1e-5);
      CHECK(dvals((*layer)(g.query, g.value, g.args).to(Device::cpu())) == dvals(r.output.to(Device::cpu())));
      // float64: Keras's float64 values to rounding
      const LuongCall g64 = luong_call(c, d, kFloat64);
      CHECK(max_error(layer->with_scores(g64.query, g64.value, g64.args).output.to(Device::cpu()), c.output) < 1e-6);
      if (c.query_mask == nullptr && c.value_mask == nullptr && !c.causal) {  // the list call
        std::vector<Tensor> list = {g.query, g.value};
        if (c.key != nullptr) list.push_back(g.args.key);
        CHECK(dvals((*layer)(list).to(Device::cpu())) == dvals(r.output.to(Device::cpu())));
      }
    }
  }
}

TEST_CASE("Attention and AdditiveAttention: Keras's weights, names, shapes, initialisers and masks",
          "[layers][attention]") {
  Attention plain;
  CHECK(plain(irregular({2, 3, 4}), irregular({2, 5, 4})).shape() == Shape{2, 3, 4});
  CHECK(plain.name() == "attention");
  CHECK(plain.weights().empty());
  CHECK(plain.use_scale() == false);
  CHECK(plain.score_mode() == "dot");

  AttentionOptions o;
  o.use_scale = true;
  o.score_mode = "concat";
  Attention concat(o);
  AttentionCall k;
  k.key = irregular({2, 5, 4});
  CHECK(concat(irregular({2, 3, 4}), irregular({2, 5, 6}), k).shape() == Shape{2, 3, 6});  // dv: the value's
  const auto w = concat.weights();
  REQUIRE(w.size() == 2);
  CHECK(w[0].name() == "attention/scale");
  CHECK(w[1].name() == "attention/concat_score_weight");
  CHECK(w[0].shape() == Shape{});
  CHECK(w[1].shape() == Shape{});
  CHECK(dvals(w[0]) == std::vector<double>{1});
  CHECK(dvals(w[1]) == std::vector<double>{1});
  CHECK(concat.count_params() == 2);

  AdditiveAttention add;
  CHECK(add.use_scale());
  add.set_seed(5);
  CHECK(add(irregular({2, 3, 6}), irregular({2, 4, 6})).shape() == Shape{2, 3, 6});
  REQUIRE(add.weights().size() == 1);
  CHECK(add.name() == "additive_attention");
  CHECK(add.weights()[0].name() == "additive_attention/scale");
  CHECK(add.weights()[0].shape() == Shape{6});
  // glorot_uniform over Keras's fans of [6]: (6, 6)
  double largest = 0;
  for (double v : dvals(add.weights()[0])) largest = std::max(largest, std::abs(v));
  CHECK(largest <= std::sqrt(6.0 / 12) + 1e-7);
  CHECK(largest > 0);
  AdditiveAttentionOptions no_scale;
  no_scale.use_scale = false;
  AdditiveAttention unscaled(no_scale);
  unscaled(irregular({1, 2, 3}), irregular({1, 2, 3}));
  CHECK(unscaled.weights().empty());

  // masks by hand: a masked key's score is lowered by 1e9 (probability 0), a masked query's
  // output is 0 but its probabilities are still computed; a fully masked query row keeps a
  // softmax (Keras subtracts, it does not zero)
  const Tensor q = tensor({1.0, 0.0, 0.0, 1.0}, {1, 2, 2}), v = tensor({1.0, 2.0, 3.0, 4.0}, {1, 2, 2});
  AttentionCall m;
  m.query_mask = tensor({1.0f, 0.0f}, {1, 2});
  m.value_mask = tensor<std::int64_t>({0, 1}, {1, 2});
  const AttentionOutput r = plain.with_scores(q, v, m);
  CHECK(dvals(r.scores) == std::vector<double>{0, 1, 0, 1});
  CHECK(dvals(r.output) == std::vector<double>{3, 4, 0, 0});
  AttentionCall causal;
  causal.use_causal_mask = true;
  // scores q v^T = [[1, 3], [2, 4]]
  const double e = std::exp(2.0);
  const auto s = dvals(plain.with_scores(q, v, causal).scores);  // [[1, 0], [1, e^2] / (1 + e^2)]
  CHECK(s[0] == 1);
  CHECK(s[1] == 0);
  CHECK(s[2] == Approx(1 / (1 + e)));
  CHECK(s[3] == Approx(e / (1 + e)));
  AttentionCall none;
  none.value_mask = tensor({0.0, 0.0}, {1, 2});
  const auto all_masked = dvals(plain.with_scores(q, v, none).scores);  // float64: softmax of [1, 3], [2, 4]
  CHECK(all_masked[0] == Approx(1 / (1 + e)));
  CHECK(all_masked[3] == Approx(e / (1 + e)));
}

TEST_CASE("Attention and AdditiveAttention: float64 gradcheck in the query, value, key and the weights",
          "[layers][attention][gradcheck]") {
  const Tensor q = irregular({2, 3, 4}, -1, 1, kFloat64), v = irregular({2, 4, 3}, -1, 1, kFloat64);
  const Tensor k = irregular({2, 4, 4}, -1, 1, kFloat64);
  AttentionCall masked;
  masked.query_mask = tensor({1.0f, 1.0f, 0.0f, 1.0f, 1.0f, 1.0f}, {2, 3});
  masked.value_mask = tensor({1.0f, 1.0f, 0.0f, 1.0f, 1.0f, 0.0f, 1.0f, 1.0f}, {2, 4});
  masked.use_causal_mask = true;
  std::vector<std::pair<std::string, std::shared_ptr<Attention>>> layers_;
  AttentionOptions scaled;
  scaled.use_scale = true;
  layers_.emplace_back("dot", std::make_shared<Attention>());
  layers_.emplace_back("dot, scale", std::make_shared<Attention>(scaled));
  scaled.score_mode = "concat";
  layers_.emplace_back("concat, scale", std::make_shared<Attention>(scaled));
  layers_.emplace_back("additive", std::make_shared<AdditiveAttention>());
  for (auto& [what, layer] : layers_) {
    layer->set_seed(3);
    for (bool with_mask : {false, true}) {
      INFO(what << ", masks: " << with_mask);
      AttentionCall args = with_mask ? masked : AttentionCall{};
      const auto fn = [&, layer = layer](const std::vector<Tensor>& in) {
        AttentionCall a = args;
        a.key = in[2];
        return (*layer)(in[0], in[1], a);
      };
      const auto r = gradcheck(fn, {q, v, k});
      INFO(r.message);
      CHECK(r.ok);
      args.key = k;
      const Tensor w_out = irregular({2, 3, 3}, -1, 1, kFloat64);
      if (layer->weights().empty()) continue;
      for (auto& weight : layer->weights()) set(weight, irregular(weight.shape(), 0.5, 1.5));
      std::string worst_at;
      const double worst = lt::weights_gradcheck_error([&, layer = layer] { return sum((*layer)(q, v, args) * w_out); },
                                                       layer->weights(), &worst_at);
      INFO(worst_at);
      CHECK(worst < 1e-3);
    }
  }
}

TEST_CASE("Attention: dropout on the probabilities in training only, seeded", "[layers][attention][dropout]") {
  const auto& c = ag::kLuongCases[1];  // dot with a scale, a key and masks
  for (const Device& d : devices()) {
    INFO(d.str());
    const LuongCall g = luong_call(c, d);
    AttentionOptions o;
    o.use_scale = true;
    o.dropout = 0.4;
    o.seed = 21;
    Attention layer(o);
    CHECK(layer.seeded());  // options.seed
    set_luong_weights(layer, c, g);
    const AttentionOutput plain = layer.with_scores(g.query, g.value, g.args);
    CHECK(max_error(plain.output.to(Device::cpu()), c.output) < 1e-5);
    AttentionCall train = g.args;
    train.training = true;
    layer.set_seed(21);
    const AttentionOutput y1 = layer.with_scores(g.query, g.value, train);
    layer.set_seed(21);
    const Tensor y2 = layer(g.query, g.value, train);
    CHECK(dvals(y1.output.to(Device::cpu())) == dvals(y2.to(Device::cpu())));
    CHECK(dvals(y1.output.to(Device::cpu())) != dvals(plain.output.to(Device::cpu())));
    CHECK(dvals(y1.scores.to(Device::cpu())) == dvals(plain.scores.to(Device::cpu())));  // before dropout
    // the same draw by hand
    Generator gen(21);
    const Tensor keep = dropout(ones(plain.scores.shape(), kFloat32, d), 0.4, gen);
    const Tensor qm = g.args.query_mask.reshape({c.b, c.tq, 1});
    const Tensor want = where(qm, matmul(plain.scores * keep, g.value), 0.0);
    const auto a = dvals(y1.output.to(Device::cpu())), b = dvals(want.to(Device::cpu()));
    for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i] == Approx(b[i]).margin(1e-5));
  }
}

TEST_CASE("Attention and AdditiveAttention in a functional model: [query, value(, key)], masks from the graph",
          "[layers][attention][functional]") {
  const KerasTensor qi = Input({3, 4}), vi = Input({5, 2}), ki = Input({5, 4});
  auto att = std::make_shared<Attention>(with_options<AttentionOptions>([](auto& o) { o.use_scale = true; }));
  auto add = std::make_shared<AdditiveAttention>();
  const KerasTensor a = (*att)({qi, vi, ki});
  const KerasTensor b = (*add)({qi, vi, ki});
  CHECK(a.shape() == Shape{-1, 3, 2});  // compute_output_shape: [B, Tq, dv]
  CHECK(b.shape() == Shape{-1, 3, 2});
  Functional model({qi, vi, ki}, {apply_layer(Add(), {a, b})});
  const Tensor q = irregular({2, 3, 4}), v = irregular({2, 5, 2}), k = irregular({2, 5, 4});
  const Tensor y = model(std::vector<Tensor>{q, v, k})[0];
  AttentionCall args;
  args.key = k;
  CHECK(dvals(y) == dvals((*att)(q, v, args) + (*add)(q, v, args)));
  CHECK(model.count_params() == 1 + 4);
  std::ostringstream summary;
  model.summary(summary);
  INFO(summary.str());
  CHECK_THAT(summary.str(), Contains("(Attention)"));
  CHECK_THAT(summary.str(), Contains("(AdditiveAttention)"));
  CHECK_THAT(summary.str(), Contains("Total params: 5"));

  // the masks of an Embedding(mask_zero): the query's and the value's; the output keeps the query's
  const KerasTensor tq = Input({4}, kInt64), tv = Input({3}, kInt64);
  auto emb = std::make_shared<Embedding>(6, 2, with_options<EmbeddingOptions>([](auto& o) { o.mask_zero = true; }));
  auto att2 = std::make_shared<Attention>();
  Functional masked({tq, tv}, {(*att2)({(*emb)(tq), (*emb)(tv)})});
  const Tensor xq = tensor<std::int64_t>({1, 2, 0, 0, 3, 4, 5, 0}, {2, 4});
  const Tensor xv = tensor<std::int64_t>({5, 0, 1, 2, 3, 0}, {2, 3});
  const Tensor got = masked(std::vector<Tensor>{xq, xv})[0];
  AttentionCall m;
  m.query_mask = xq != 0.0;
  m.value_mask = xv != 0.0;
  const Tensor eq = (*emb)(xq), ev = (*emb)(xv);
  CHECK(dvals(got) == dvals((*att2)(eq, ev, m)));
  CHECK(dvals(att2->compute_mask({eq, ev}, {m.query_mask, m.value_mask})) == dvals(m.query_mask));
}

TEST_CASE("Attention and AdditiveAttention: errors name the layer and the shapes", "[layers][attention]") {
  CHECK_THROWS_WITH(Attention(with_options<AttentionOptions>([](auto& o) { o.score_mode = "add"; })),
                    Contains("Attention: score_mode must be \"dot\" or \"concat\", got \"add\""));
  CHECK_THROWS_AS(AdditiveAttention(with_options<AdditiveAttentionOptions>([](auto& o) { o.dropout = -0.1; })), ValueError);

  Attention att;
  CHECK_THROWS_WITH(att(zeros({2, 4}), zeros({2, 4})),
                    Contains("attention: expected query, value and key of rank 3") &&
                        Contains("query [2, 4], value [2, 4], key [2, 4]"));
  CHECK_THROWS_AS(att(zeros({2, 3, 4}), zeros({2, 5, 3})), ShapeError);
  CHECK_THROWS_WITH(att(zeros({2, 3, 4}), zeros({2, 5, 3})),
                    Contains("attention: query and key must have the same features: query [2, 3, 4], value [2, 5, 3], "
                             "key [2, 5, 3]"));
  AttentionCall k;
  k.key = zeros({2, 4, 4});
  CHECK_THROWS_WITH(att(zeros({2, 3, 4}), zeros({2, 5, 3}), k),
                    Contains("value and key must agree in every axis but the last: query [2, 3, 4], value [2, 5, 3], "
                             "key [2, 4, 4]"));
  CHECK_THROWS_WITH(att(zeros({2, 3, 4}), zeros({3, 5, 4})), Contains("batch sizes differ"));
  AttentionCall m;
  m.value_mask = ones({2, 3});
  CHECK_THROWS_AS(att(zeros({2, 3, 4}), zeros({2, 5, 4}), m), ShapeError);
  CHECK_THROWS_WITH(att(zeros({2, 3, 4}), zeros({2, 5, 4}), m),
                    Contains("attention: value_mask must be [2, 5], got [2, 3] (query [2, 3, 4], value [2, 5, 4])"));
  m = {};
  m.key_mask = ones({2, 5});
  CHECK_THROWS_WITH(att(zeros({2, 3, 4}), zeros({2, 5, 4}), m), Contains("attention: takes no key_mask"));
  m = {};
  m.attention_mask = ones({2, 3, 5});
  CHECK_THROWS_AS(att(zeros({2, 3, 4}), zeros({2, 5, 4}), m), ValueError);
  CHECK_THROWS_WITH(att(std::vector<Tensor>{zeros({2, 3, 4})}),
                    Contains("takes [query, value] or [query, value, key], got 1 inputs: [2, 3, 4]"));
  CHECK_THROWS_AS(apply_layer(Attention(), {Input({3, 4}), Input({5, 6}), Input({4, 6})}), ValueError);

  AdditiveAttention add;
  CHECK_THROWS_WITH(add(zeros({2, 3, 4}), zeros({2, 5, 6})),
                    Contains("additive_attention: query and key must have the same features"));
  CHECK(add.weights().empty());  // nothing built by a failed call
  add(zeros({2, 3, 4}), zeros({2, 5, 4}));
  CHECK_THROWS_AS(add(zeros({2, 3, 6}), zeros({2, 5, 6})), ShapeError);
  CHECK_THROWS_WITH(add(zeros({2, 3, 6}), zeros({2, 5, 6})),
                    Contains("additive_attention: built for 4 query features, got query [2, 3, 6], value [2, 5, 6], "
                             "key [2, 5, 6]"));
}
