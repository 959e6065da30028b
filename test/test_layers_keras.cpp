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
