// Keras's functional API: Input, layers applied to symbolic tensors, Functional models (the
// same weights and training as Sequential, residual connections, shared layers, several inputs
// and outputs), the merge layers against loops written here, float64 gradchecks through them,
// their errors, and the same results on every device.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
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

// x [n, k] @ w [k, m] + b [m], then relu when asked, in double loops.
std::vector<double> dense_ref(const std::vector<double>& x, const std::vector<double>& w, const std::vector<double>& b,
                              std::int64_t n, std::int64_t k, std::int64_t m, bool relu) {
  std::vector<double> y(static_cast<std::size_t>(n * m));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < m; ++j) {
      double s = b[static_cast<std::size_t>(j)];
      for (std::int64_t p = 0; p < k; ++p) s += x[static_cast<std::size_t>(i * k + p)] * w[static_cast<std::size_t>(p * m + j)];
      y[static_cast<std::size_t>(i * m + j)] = relu ? std::max(s, 0.0) : s;
    }
  return y;
}

}  // namespace

TEST_CASE("a functional MLP is Sequential: same names, weights, outputs and training", "[functional]") {
  const Tensor x = irregular({64, 6});
  std::vector<std::int64_t> labels(64);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<std::int64_t>(i % 3);
  const Tensor yl = tensor(labels, {64});

  KerasTensor in = Input({6});
  CHECK(in.shape() == Shape{-1, 6});
  CHECK(in.is_input());
  KerasTensor h = apply_layer(Dense(16, "relu"), in);
  CHECK_FALSE(h.is_input());
  CHECK(h.shape() == Shape{-1, 16});  // known at once, as in Keras
  KerasTensor out = apply_layer(Dense(3, "softmax"), h);
  Functional fmodel(in, out);
  CHECK(fmodel.name() == "functional");
  CHECK(fmodel.layers().size() == 2);
  CHECK(fmodel.built());  // when made, as Keras's; set_seed below draws the weights again
  CHECK(fmodel.count_params() == 163);

  Sequential smodel(Dense(16, "relu"), Dense(3, "softmax"));
  fmodel.set_seed(11);
  smodel.set_seed(11);
  fmodel.build(Shape{-1, 6});
  smodel.build(Shape{-1, 6});
  REQUIRE(fmodel.built());
  CHECK(h.shape() == Shape{-1, 16});
  CHECK(h.name() == "dense");
  CHECK(out.name() == "dense_1");
  const auto fw = fmodel.weights(), sw = smodel.weights();
  REQUIRE(fw.size() == sw.size());
  for (std::size_t i = 0; i < fw.size(); ++i) {
    CHECK(fw[i].name() == sw[i].name());
    CHECK(dvals(fw[i]) == dvals(sw[i]));
  }
  CHECK(dvals(fmodel(x)) == dvals(smodel(x)));

  fmodel.compile("rmsprop", "sparse_categorical_crossentropy", {"accuracy"});
  smodel.compile("rmsprop", "sparse_categorical_crossentropy", {"accuracy"});
  FitOptions opt;
  opt.epochs = 2;
  opt.batch_size = 16;
  opt.verbose = 0;
  const History hf = fmodel.fit(x, yl, opt), hs = smodel.fit(x, yl, opt);
  CHECK(hf["loss"] == hs["loss"]);
  CHECK(hf["loss"][1] < hf["loss"][0]);
  CHECK(dvals(fmodel.predict(x)) == dvals(smodel.predict(x)));

  std::ostringstream os;
  fmodel.summary(os);
  CHECK_THAT(os.str(), Contains("dense_1 (Dense)") && Contains("(None, 16)") && Contains("Total params: 163"));

  // weights on disk: a model made from the same code reads them back
  const std::string path = "test_functional_weights.safetensors";
  fmodel.save_weights(path);
  KerasTensor in2 = Input({6});
  Functional again(in2, apply_layer(Dense(3, "softmax"), apply_layer(Dense(16, "relu"), in2)));
  again.build();
  again.load_weights(path);
  CHECK(dvals(again(x)) == dvals(fmodel(x)));
  std::remove(path.c_str());
}

TEST_CASE("a residual block: Add joins a branch with its shortcut, and gradients flow through both",
          "[functional][merge]") {
  auto d1 = std::make_shared<Dense>(4, "relu");
  auto d2 = std::make_shared<Dense>(4);
  auto head = std::make_shared<Dense>(2);
  KerasTensor in = Input({3});
  KerasTensor a = (*d1)(in);
  KerasTensor b = (*d2)(a);
  KerasTensor r = apply_layer(Add(), {a, b});
  Functional model(in, (*head)(r), "residual");
  model.set_seed(3);
  const Tensor x = irregular({5, 3});
  GradientTape tape;
  tape.watch(x);
  const Tensor y = model(x);
  REQUIRE(y.shape() == Shape{5, 2});
  CHECK(r.name() == "add");

  const auto av = dense_ref(dvals(x), dvals(d1->kernel()), dvals(d1->bias()), 5, 3, 4, true);
  const auto bv = dense_ref(av, dvals(d2->kernel()), dvals(d2->bias()), 5, 4, 4, false);
  std::vector<double> rv(av.size());
  for (std::size_t i = 0; i < av.size(); ++i) rv[i] = av[i] + bv[i];
  const auto yv = dense_ref(rv, dvals(head->kernel()), dvals(head->bias()), 5, 4, 2, false);
  const auto got = dvals(y);
  for (std::size_t i = 0; i < yv.size(); ++i) CHECK(got[i] == Approx(yv[i]).epsilon(1e-5).margin(1e-6));

  // d sum(y) / d d1.kernel through the shortcut and the branch, against the same graph written by hand
  const auto g = tape.gradient(sum(y), std::vector<Tensor>{x, d1->kernel()});
  GradientTape tape2;
  tape2.watch(x);
  const Tensor ah = relu(matmul(x, d1->kernel()) + d1->bias());
  const Tensor yh = matmul(ah + matmul(ah, d2->kernel()) + d2->bias(), head->kernel()) + head->bias();
  const auto gh = tape2.gradient(sum(yh), std::vector<Tensor>{x, d1->kernel()});
  CHECK(dvals(g[0]) == dvals(gh[0]));
  CHECK(dvals(g[1]) == dvals(gh[1]));
  CHECK(model.trainable_weights().size() == 6);
}

TEST_CASE("a shared layer applied to two inputs keeps one set of weights; several inputs and outputs",
          "[functional]") {
  auto shared = std::make_shared<Dense>(3, "tanh");
  KerasTensor left = Input({4}, kFloat32, "left"), right = Input({4}, kFloat32, "right");
  KerasTensor l = (*shared)(left), r = (*shared)(right);
  KerasTensor joined = apply_layer(Concatenate(), {l, r});
  KerasTensor score = apply_layer(Dense(1, "sigmoid"), joined);
  KerasTensor diff = apply_layer(Subtract(), {l, r});
  Functional model({left, right}, {score, diff}, "siamese");
  CHECK(model.layers().size() == 4);  // dense, concatenate, dense_1, subtract: the shared one once
  model.set_seed(5);
  const Tensor xl = irregular({7, 4}), xr = irregular({7, 4}, -1.0, 3.0);
  const auto outs = model(std::vector<Tensor>{xl, xr});
  REQUIRE(outs.size() == 2);
  CHECK(outs[0].shape() == Shape{7, 1});
  CHECK(outs[1].shape() == Shape{7, 3});
  CHECK(shared->name() == "dense");
  CHECK(model.weights().size() == 4);
  CHECK(joined.shape() == Shape{-1, 6});
  const auto lv = dvals((*shared)(xl)), rv = dvals((*shared)(xr)), dv = dvals(outs[1]);
  for (std::size_t i = 0; i < dv.size(); ++i) CHECK(dv[i] == Approx(lv[i] - rv[i]).margin(1e-6));
  // the outputs in the order given, the inputs in theirs
  const auto swapped = model(std::vector<Tensor>{xr, xl});
  const auto sv = dvals(swapped[1]);
  for (std::size_t i = 0; i < dv.size(); ++i) CHECK(sv[i] == Approx(-dv[i]).margin(1e-6));
  // several inputs: the single-tensor call refuses, naming the model
  CHECK_THROWS_WITH(model(xl), Contains("siamese: has 2 inputs and 2 outputs; run it on a vector of tensors"));
  CHECK(model.num_inputs() == 2);
  CHECK(model.output_names() == std::vector<std::string>{"dense_1", "subtract"});
  // building from the Inputs' shapes
  KerasTensor a = Input({2}), b = Input({2});
  Functional two({a, b}, {apply_layer(Multiply(), {a, b})});
  two.build();
  CHECK(two.built());
}

TEST_CASE("merge layers against loops: broadcasting over ranks, dtypes and Lambda", "[functional][merge]") {
  const Tensor a = irregular({2, 3});
  const Tensor c = irregular({2, 4, 3}, -1.0, 1.0);
  const auto av = dvals(a), cv = dvals(c);
  auto at = [&](std::size_t i, std::size_t j, std::size_t k) {  // a[i, None, k] broadcast to c
    (void)j;
    return av[i * 3 + k];
  };
  struct Case {
    std::shared_ptr<Merge> layer;
    std::function<double(double, double)> f;
  };
  const std::vector<Case> cases = {
      {std::make_shared<Add>(), [](double p, double q) { return p + q; }},
      {std::make_shared<Subtract>(), [](double p, double q) { return p - q; }},
      {std::make_shared<Multiply>(), [](double p, double q) { return p * q; }},
      {std::make_shared<Average>(), [](double p, double q) { return (p + q) / 2; }},
      {std::make_shared<Maximum>(), [](double p, double q) { return std::max(p, q); }},
      {std::make_shared<Minimum>(), [](double p, double q) { return std::min(p, q); }},
  };
  for (const auto& [layer, f] : cases) {
    INFO(layer->class_name());
    const Tensor y = (*layer)(std::vector<Tensor>{a, c});
    REQUIRE(y.shape() == Shape{2, 4, 3});
    CHECK(layer->output_shape() == Shape{-1, 4, 3});
    const auto yv = dvals(y);
    for (std::size_t i = 0; i < 2; ++i)
      for (std::size_t j = 0; j < 4; ++j)
        for (std::size_t k = 0; k < 3; ++k)
          CHECK(yv[(i * 4 + j) * 3 + k] == Approx(f(at(i, j, k), cv[(i * 4 + j) * 3 + k])).margin(1e-6));
  }
  // three inputs
  const Tensor b = irregular({2, 3}, 0.0, 1.0);
  const auto bv = dvals(b);
  const auto sum3 = dvals(Add()(std::vector<Tensor>{a, b, a}));
  const auto avg3 = dvals(Average()(std::vector<Tensor>{a, b, a}));
  const auto max3 = dvals(Maximum()(std::vector<Tensor>{a, b, a * 2.0}));
  for (std::size_t i = 0; i < 6; ++i) {
    CHECK(sum3[i] == Approx(2 * av[i] + bv[i]).margin(1e-6));
    CHECK(avg3[i] == Approx((2 * av[i] + bv[i]) / 3).margin(1e-6));
    CHECK(max3[i] == Approx(std::max({av[i], bv[i], 2 * av[i]})).margin(1e-6));
  }
  // Concatenate on the last axis and on axis 1
  const auto cat = Concatenate()(std::vector<Tensor>{a, b});
  REQUIRE(cat.shape() == Shape{2, 6});
  const auto catv = dvals(cat);
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t k = 0; k < 3; ++k) {
      CHECK(catv[i * 6 + k] == av[i * 3 + k]);
      CHECK(catv[i * 6 + 3 + k] == bv[i * 3 + k]);
    }
  CHECK(Concatenate(1)(std::vector<Tensor>{c, c}).shape() == Shape{2, 8, 3});
  // an Input of float32 casts float64 data; an int64 one keeps indices
  KerasTensor in = Input({3});
  Functional doubled(in, apply_layer(Lambda([](const Tensor& t) { return t * 2.0; }), in));
  const Tensor y64 = doubled(a.astype(kFloat64));
  CHECK(y64.dtype() == kFloat32);
  CHECK(doubled.layers()[0]->name() == "lambda");
  const auto dv = dvals(y64);
  for (std::size_t i = 0; i < 6; ++i) CHECK(dv[i] == Approx(2 * av[i]));
}

TEST_CASE("merge layers: float64 gradchecks", "[functional][merge][gradcheck]") {
  const Tensor a = irregular({2, 3}, -2.0, 2.0, kFloat64), b = irregular({2, 1, 3}, -1.5, 2.5, kFloat64);
  const Tensor c = irregular({2, 4, 3}, -1.0, 1.0, kFloat64);
  std::vector<std::shared_ptr<Merge>> ls = {std::make_shared<Add>(),     std::make_shared<Multiply>(),
                                            std::make_shared<Average>(), std::make_shared<Maximum>(),
                                            std::make_shared<Minimum>()};
  for (const auto& l : ls) {
    INFO(l->class_name());
    const auto r = gradcheck([&](const std::vector<Tensor>& in) { return (*l)(in); }, {a, b, c});
    CHECK(r.ok);
    INFO(r.message);
  }
  Subtract sub;
  CHECK(gradcheck([&](const std::vector<Tensor>& in) { return sub(in); }, {a, c}).ok);
  Concatenate cat(1);
  CHECK(gradcheck([&](const std::vector<Tensor>& in) { return cat(in); }, {b, c}).ok);
}

TEST_CASE("functional API errors name the model, the layer, the input and the shapes", "[functional][errors]") {
  KerasTensor in = Input({4}, kFloat32, "pixels");
  KerasTensor other = Input({4});
  KerasTensor h = apply_layer(Dense(2), in);
  // an output that needs an input not given
  KerasTensor both = apply_layer(Add(), {h, apply_layer(Dense(2), other)});
  CHECK_THROWS_WITH(Functional(in, both, "m"), Contains("m: graph disconnected: an Input of shape (None, 4)") &&
                                                   Contains("that layer 'dense' reads"));
  CHECK_THROWS_WITH(Functional({in, in}, {h}, "m"), Contains("m: input 'pixels' is listed twice"));
  CHECK_THROWS_WITH(Functional({h}, {h}, "m"), Contains("m: input 0 is the output of layer 'dense', not an Input()"));
  CHECK_THROWS_AS(Functional(std::vector<KerasTensor>{}, {h}), ValueError);
  CHECK_THROWS_AS(Input({-2}), ValueError);
  // a layer on the stack cannot join a graph; a merge layer needs a list, others one input
  Dense on_stack(3);
  CHECK_THROWS_WITH(on_stack(in), Contains("dense: a layer joins a functional graph through a std::shared_ptr"));
  CHECK_THROWS_WITH(apply_layer(Add(), in), Contains("add: a merge layer takes a list of inputs"));
  CHECK_THROWS_WITH(apply_layer(Dense(2), std::vector<KerasTensor>{in, other}), Contains("Dense: takes one input, not a list"));
  CHECK_THROWS_AS(apply_layer(Dense(2), KerasTensor()), ValueError);
  // at run time: the input's shape, names and shapes of incompatible merges
  Functional model(in, apply_layer(Dense(1), h), "m");
  CHECK_THROWS_WITH(model(zeros({3, 5})), Contains("m: input 'pixels' expects shape (None, 4), got (3, 5)"));
  CHECK_THROWS_AS(model(zeros({3, 5})), ShapeError);
  CHECK_THROWS_WITH(model(std::vector<Tensor>{zeros({3, 4}), zeros({3, 4})}), Contains("m: expects 1 input(s), got 2"));
  Add add;
  CHECK_THROWS_WITH(add(std::vector<Tensor>{zeros({2, 3}), zeros({2, 4})}),
                    Contains("add: inputs have incompatible shapes: (2, 3), (2, 4)"));
  CHECK_THROWS_WITH(add(std::vector<Tensor>{zeros({2, 3}), zeros({3, 3})}),
                    Contains("add: cannot merge tensors with different batch sizes"));
  CHECK_THROWS_WITH(add(zeros({2, 3})), Contains("add: a merge layer takes a list of inputs, got one tensor"));
  CHECK_THROWS_AS(add(std::vector<Tensor>{}), ValueError);
  CHECK_THROWS_WITH(Subtract()(std::vector<Tensor>{zeros({2}), zeros({2}), zeros({2})}),
                    Contains("subtract: takes exactly 2 inputs, got 3"));
  CHECK_THROWS_WITH(Concatenate(0)(std::vector<Tensor>{zeros({2, 3}), zeros({2, 3})}),
                    Contains("concatenate: cannot concatenate along the batch axis"));
  CHECK_THROWS_WITH(Concatenate()(std::vector<Tensor>{zeros({2, 3}), zeros({2, 4, 3})}),
                    Contains("concatenate: the inputs must have the same rank"));
  CHECK_THROWS_WITH(Concatenate()(std::vector<Tensor>{zeros({2, 3, 1}), zeros({2, 4, 2})}),
                    Contains("concatenate: the inputs must match in every axis but 2"));
  // an Input with an axis of any size runs; a model whose weights need that axis's size
  // (Dense after Flatten) is built by its first run, and build() cannot do it from zeros
  KerasTensor seq = Input({-1, 2});
  Functional pooled(seq, apply_layer(GlobalAveragePooling1D(), seq), "pool");
  CHECK(pooled.built());
  CHECK(pooled(zeros({1, 5, 2})).shape() == Shape{1, 2});
  CHECK(pooled(zeros({1, 9, 2})).shape() == Shape{1, 2});
  Functional flat(seq, apply_layer(Dense(1), apply_layer(Flatten(), seq)), "flat");
  CHECK_FALSE(flat.built());
  CHECK_THROWS_WITH(flat.build(), Contains("flat: build: input 0 has an axis of unknown size, (None, None, 2)"));
  CHECK(flat(zeros({1, 5, 2})).shape() == Shape{1, 1});
}

TEST_CASE("a functional model gives the CPU's results and gradients on every device", "[functional][device]") {
  if (!cuda::is_available()) WARN("CUDA half skipped: " << cuda::status());
  const Tensor x = irregular({4, 5});
  std::vector<double> expected;
  for (const Device& d : devices()) {
    INFO(d.str());
    KerasTensor in = Input({5});
    KerasTensor a = apply_layer(Dense(6, "relu"), in);
    KerasTensor b = apply_layer(Dropout(0.5), apply_layer(Dense(6, "tanh"), in));
    KerasTensor m = apply_layer(Maximum(), {a, b});
    Functional model(in, apply_layer(Dense(2), apply_layer(Concatenate(), {m, a})));
    model.set_seed(8);
    model.set_device(d);
    const Tensor xd = x.to(d);
    GradientTape tape;
    tape.watch(xd);
    const Tensor y = model(xd, true);
    CHECK(y.device() == d);
    auto got = dvals(y.to(Device::cpu()));
    const auto g = dvals(tape.gradient(sum(y * y), xd).to(Device::cpu()));
    got.insert(got.end(), g.begin(), g.end());
    // dropout is on in training only
    CHECK(dvals(model(xd, false).to(Device::cpu())) != dvals(y.to(Device::cpu())));
    if (expected.empty()) {
      expected = got;
    } else {
      REQUIRE(got.size() == expected.size());
      for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(expected[i]).epsilon(1e-5).margin(1e-6));
    }
  }
}

TEST_CASE("the README's residual convnet trains with fit", "[functional][train]") {
  KerasTensor inputs = Input({8, 8, 1});
  KerasTensor x = apply_layer(layers::Conv2D(8, 3, "relu"), inputs);
  KerasTensor y = apply_layer(layers::Conv2D(8, 1, "relu"), x);
  x = apply_layer(layers::Add(), {x, y});  // a residual connection
  x = apply_layer(layers::GlobalAveragePooling2D(), x);
  Functional model(inputs, apply_layer(layers::Dense(2, "softmax"), x));
  model.compile("rmsprop", "sparse_categorical_crossentropy", {"accuracy"});
  model.set_seed(1);
  // class 1: a bright upper half; class 0: a bright lower half
  std::vector<float> images(32 * 64, 0.0f);
  std::vector<std::int64_t> labels(32);
  for (std::size_t n = 0; n < 32; ++n) {
    labels[n] = static_cast<std::int64_t>(n % 2);
    for (std::size_t p = 0; p < 64; ++p) {
      const bool upper = p < 32;
      images[n * 64 + p] = (upper == (labels[n] == 1)) ? 1.0f : 0.1f * float((n + p) % 3);
    }
  }
  const Tensor xs = tensor(images, {32, 8, 8, 1}), ys = tensor(labels, {32});
  FitOptions opt;
  opt.epochs = 15;
  opt.batch_size = 8;
  opt.verbose = 0;
  const History h = model.fit(xs, ys, opt);
  CHECK(h["loss"].back() < h["loss"].front());
  CHECK(h["accuracy"].back() >= 0.9);
  CHECK(x.shape() == Shape{-1, 8});
}

TEST_CASE("several inputs and outputs train with fit: a loss per output, weighted, Keras's log keys",
          "[functional][train]") {
  // Deep Learning with Python's support-ticket model, small: title, text and tags in; a priority
  // (sigmoid, MSE) and a department (softmax, cross-entropy) out
  const std::int64_t n = 48;
  KerasTensor title = Input({6}, kFloat32, "title"), text = Input({5}, kFloat32, "text"), tags = Input({3}, kFloat32, "tags");
  KerasTensor features = apply_layer(Concatenate(), {title, text, tags});
  features = apply_layer(Dense(16, "relu"), features);
  DenseOptions named;
  named.name = "priority";
  KerasTensor priority = apply_layer(Dense(1, "sigmoid", named), features);
  named.name = "department";
  KerasTensor department = apply_layer(Dense(3, "softmax", named), features);
  Functional model({title, text, tags}, {priority, department}, "tickets");
  model.set_seed(4);
  model.compile("rmsprop", {{"mean_squared_error", {"mean_absolute_error"}}, {"categorical_crossentropy", {"accuracy"}, 0.5}});

  const Tensor xt = irregular({n, 6}, 0.0, 1.0), xx = irregular({n, 5}, -1.0, 1.0), xg = irregular({n, 3}, 0.0, 1.0);
  std::vector<float> pv(static_cast<std::size_t>(n)), dv(static_cast<std::size_t>(n * 3), 0.0f);
  const auto tv = dvals(xt);
  for (std::int64_t i = 0; i < n; ++i) {
    pv[static_cast<std::size_t>(i)] = float(tv[static_cast<std::size_t>(i * 6)]);  // priority follows the title
    dv[static_cast<std::size_t>(i * 3 + i % 3)] = 1.0f;
  }
  const Tensor yp = tensor(pv, {n, 1}), yd = tensor(dv, {n, 3});
  const std::vector<Tensor> xs = {xt, xx, xg}, ys = {yp, yd};

  FitOptions opt;
  opt.epochs = 3;
  opt.batch_size = 8;
  opt.verbose = 0;
  opt.validation_split = 0.25;
  const History h = model.fit(xs, ys, opt);
  std::vector<std::string> keys;
  for (const auto& [k, v] : h.history) keys.push_back(k);
  // the keys Keras 3.15 logs for this model (checked with keras.Model(...).fit)
  CHECK(keys == std::vector<std::string>{"department_accuracy", "department_loss", "loss", "priority_loss",
                                         "priority_mean_absolute_error", "val_department_accuracy",
                                         "val_department_loss", "val_loss", "val_priority_loss",
                                         "val_priority_mean_absolute_error"});
  CHECK(h["loss"].back() < h["loss"].front());

  // evaluate: each output's loss from the predictions, and the total its weighted sum
  const Logs logs = model.evaluate(xs, ys, n, 0);
  const auto preds = model.predict(xs, 16);
  REQUIRE(preds.size() == 2);
  REQUIRE(preds[0].shape() == Shape{n, 1});
  REQUIRE(preds[1].shape() == Shape{n, 3});
  const auto p0 = dvals(preds[0]), p1 = dvals(preds[1]), y0 = dvals(yp), y1 = dvals(yd);
  double mse = 0, mae = 0, cce = 0, hits = 0;
  for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
    mse += (p0[i] - y0[i]) * (p0[i] - y0[i]) / double(n);
    mae += std::abs(p0[i] - y0[i]) / double(n);
    std::size_t best = 0;
    for (std::size_t k = 0; k < 3; ++k) {
      cce -= y1[i * 3 + k] * std::log(p1[i * 3 + k]) / double(n);
      if (p1[i * 3 + k] > p1[i * 3 + best]) best = k;
    }
    hits += y1[i * 3 + best] / double(n);
  }
  CHECK(logs.at("priority_loss") == Approx(mse).epsilon(1e-5));
  CHECK(logs.at("priority_mean_absolute_error") == Approx(mae).epsilon(1e-5));
  CHECK(logs.at("department_loss") == Approx(cce).epsilon(1e-5));
  CHECK(logs.at("department_accuracy") == Approx(hits));
  CHECK(logs.at("loss") == Approx(mse + 0.5 * cce).epsilon(1e-5));

  // a custom loop step and validation_data_list
  const Logs step = model.train_step_multi(xs, ys);
  CHECK(step.count("department_loss") == 1);
  opt.validation_split = 0;
  opt.epochs = 1;
  opt.validation_data_list = std::make_pair(xs, ys);
  CHECK(model.fit(xs, ys, opt).contains("val_priority_loss"));

  // errors name the model and what is wrong
  CHECK_THROWS_WITH(model.fit(xs, {yp}, opt), Contains("tickets: train_step: compiled with 2 output loss(es), got 1 target(s)"));
  CHECK_THROWS_WITH(model.evaluate({xt, xx, xg(Slice(0, 10))}, ys, 8, 0),
                    Contains("tickets: evaluate: inputs and targets must have as many examples: x[0] [48, 6]"));
  CHECK_THROWS_AS(model.evaluate({xt, xx, xg(Slice(0, 10))}, ys, 8, 0), ShapeError);
  CHECK_THROWS_WITH(model.compile("sgd", {{"mse", {"loss"}}, {"mse"}}), Contains("'loss' is not a metric name (output 0)"));
  CHECK_THROWS_WITH(model.compile("sgd", {{"mse", {"mae", "mae"}}, {"mse"}}), Contains("metric 'mae' is listed twice for output 0"));
  CHECK_THROWS_WITH(model.predict(xt), Contains("tickets: has 3 inputs and 2 outputs"));
  KerasTensor in = Input({2});
  KerasTensor out = apply_layer(Dense(1), in);
  Functional twice({in}, {out, out}, "twice");
  // the layers are named when the model is made, so compile sees the collision
  CHECK_THROWS_WITH(twice.compile("sgd", {{"mse"}, {"mae"}}), Contains("twice: outputs 0 and 1 are both named 'dense'"));
}

TEST_CASE("one output's loss weight scales the loss; several inputs with one loss", "[functional][train]") {
  KerasTensor a = Input({3}), b = Input({3});
  Functional model({a, b}, {apply_layer(Dense(1), apply_layer(Multiply(), {a, b}))}, "two_in");
  model.set_seed(2);
  const Tensor xa = irregular({10, 3}), xb = irregular({10, 3}, 0.0, 1.0), y = irregular({10, 1});
  model.compile("sgd", "mean_squared_error");
  const double plain = model.evaluate({xa, xb}, {y}, 10, 0).at("loss");
  model.compile("sgd", {{"mean_squared_error", {}, 2.5}});
  const Logs weighted = model.evaluate({xa, xb}, {y}, 10, 0);
  CHECK(weighted.at("loss") == Approx(2.5 * plain).epsilon(1e-6));
  CHECK(weighted.size() == 1);
  FitOptions opt;
  opt.epochs = 2;
  opt.batch_size = 5;
  opt.verbose = 0;
  CHECK(model.fit({xa, xb}, {y}, opt)["loss"].size() == 2);
  CHECK_THROWS_WITH(model.fit({xa}, {y}, opt), Contains("two_in: fit: the model takes 2 input(s), got 1"));
}

TEST_CASE("Dot: per-example dot products over the chosen axes, normalised to cosines", "[functional][merge]") {
  const Tensor a = irregular({2, 3}), b = irregular({2, 3}, -1.0, 3.0);
  const auto av = dvals(a), bv = dvals(b);
  const Tensor d = Dot(1)(std::vector<Tensor>{a, b});
  REQUIRE(d.shape() == Shape{2, 1});
  const Tensor c = Dot(1, true)(std::vector<Tensor>{a, b});
  for (std::size_t i = 0; i < 2; ++i) {
    double dot = 0, na = 0, nb = 0;
    for (std::size_t k = 0; k < 3; ++k) {
      dot += av[i * 3 + k] * bv[i * 3 + k];
      na += av[i * 3 + k] * av[i * 3 + k];
      nb += bv[i * 3 + k] * bv[i * 3 + k];
    }
    CHECK(dvals(d)[i] == Approx(dot).epsilon(1e-5));
    CHECK(dvals(c)[i] == Approx(dot / std::sqrt(na * nb)).epsilon(1e-5));
  }
  // [b, n, d] . [b, m, d] over the last axes: [b, n, m]; over axes (1, 1): [b, d, e]
  const Tensor p = irregular({2, 4, 3}), q = irregular({2, 5, 3}, -1.0, 1.0), r = irregular({2, 4, 2}, 0.0, 2.0);
  const auto pv = dvals(p), qv = dvals(q), rv = dvals(r);
  const Tensor pq = Dot(2)(std::vector<Tensor>{p, q});
  REQUIRE(pq.shape() == Shape{2, 4, 5});
  const Tensor pr = Dot(1)(std::vector<Tensor>{p, r});
  REQUIRE(pr.shape() == Shape{2, 3, 2});
  for (std::size_t e = 0; e < 2; ++e) {
    for (std::size_t i = 0; i < 4; ++i)
      for (std::size_t j = 0; j < 5; ++j) {
        double s = 0;
        for (std::size_t k = 0; k < 3; ++k) s += pv[(e * 4 + i) * 3 + k] * qv[(e * 5 + j) * 3 + k];
        CHECK(dvals(pq)[(e * 4 + i) * 5 + j] == Approx(s).epsilon(1e-5).margin(1e-6));
      }
    for (std::size_t i = 0; i < 3; ++i)
      for (std::size_t j = 0; j < 2; ++j) {
        double s = 0;
        for (std::size_t k = 0; k < 4; ++k) s += pv[(e * 4 + k) * 3 + i] * rv[(e * 4 + k) * 2 + j];
        CHECK(dvals(pr)[(e * 3 + i) * 2 + j] == Approx(s).epsilon(1e-5).margin(1e-6));
      }
  }
  // a vector against a matrix per example: [b, 3] . [b, 3, 4] -> [b, 4]
  const Tensor m = irregular({2, 3, 4});
  CHECK(Dot(DotAxes{1, 1})(std::vector<Tensor>{a, m}).shape() == Shape{2, 4});
  CHECK(Dot(DotAxes{2, 1})(std::vector<Tensor>{p, m}).shape() == Shape{2, 4, 4});
  // float64 gradchecks, with and without normalisation
  Dot dot2(2), cos2(2, true), mixed(DotAxes{1, 1});
  const Tensor p64 = p.astype(kFloat64), q64 = q.astype(kFloat64);
  CHECK(gradcheck([&](const std::vector<Tensor>& in) { return dot2(in); }, {p64, q64}).ok);
  CHECK(gradcheck([&](const std::vector<Tensor>& in) { return cos2(in); }, {p64, q64}).ok);
  CHECK(gradcheck([&](const std::vector<Tensor>& in) { return mixed(in); }, {a.astype(kFloat64), m.astype(kFloat64)}).ok);
  // errors
  CHECK_THROWS_WITH(Dot(1)(std::vector<Tensor>{a, irregular({2, 4})}),
                    Contains("dot: the dotted axes differ in size: axis 1 of (2, 3) and axis 1 of (2, 4)"));
  CHECK_THROWS_WITH(Dot(0)(std::vector<Tensor>{a, b}), Contains("dot: axis 0 of input 0 is not a non-batch axis"));
  CHECK_THROWS_WITH(Dot(1)(std::vector<Tensor>{zeros({2, 1, 1, 3}), b}), Contains("dot: inputs of rank 2 or 3 only"));
  CHECK_THROWS_WITH(Dot(1)(std::vector<Tensor>{a, b, a}), Contains("dot: takes exactly 2 inputs, got 3"));
}

TEST_CASE("get_layer and layer_output: a feature extractor over a trained model's layers", "[functional]") {
  KerasTensor in = Input({4});
  KerasTensor h = apply_layer(Dense(5, "relu"), in);
  Functional model(in, apply_layer(Dense(2), h), "classifier");
  // named when the model is made, as Keras's
  CHECK_THROWS_WITH(model.get_layer("dense_2"), Contains("classifier: get_layer: no layer named 'dense_2' (the layers: "
                                                         "dense, dense_1)"));
  model.set_seed(6);
  const Tensor x = irregular({3, 4});
  model(x);
  CHECK(model.get_layer("dense_1") == model.get_layer(1));
  CHECK_THROWS_WITH(model.get_layer(2), Contains("classifier: get_layer: index 2 is out of range: the model has 2 layers"));
  Functional features(model.inputs(), {model.layer_output("dense")}, "features");
  const Tensor f = features(x);
  const auto dense = std::static_pointer_cast<Dense>(model.get_layer("dense"));
  CHECK(dvals(f) == dvals(relu(matmul(x, dense->kernel()) + dense->bias())));
  CHECK(features.weights().size() == 2);
  CHECK(features.weights()[0].id() == dense->kernel().id());  // the same variables, not copies
  CHECK_THROWS_WITH(model.layer_output(std::make_shared<Dense>(1)), Contains("classifier: layer_output: layer 'dense' is not in the model"));
}

TEST_CASE("a model as a layer: a nested Sequential, and a frozen pretrained base under a new head",
          "[functional][nested]") {
  const Tensor x = irregular({16, 4}), y = irregular({16, 1}, 0.0, 1.0);
  // a Sequential inside a functional model (Deep Learning with Python's data_augmentation)
  auto block = std::make_shared<Sequential>(Dense(6, "relu"), Dropout(0.5));
  KerasTensor in = Input({4});
  KerasTensor h = apply_layer(ModelLayer(block), in);
  Functional model(in, apply_layer(Dense(1), h), "outer");
  model.set_seed(2);
  model(x);
  CHECK(model.layers()[0]->name() == "sequential");
  CHECK(model.weights().size() == 4);
  CHECK(model.weights()[0].name() == "sequential/dense/kernel");
  CHECK(model.weights()[2].name() == "dense/kernel");
  // training reaches the nested Dropout; inference does not
  CHECK(dvals(model(x, true)) != dvals(model(x, true)));
  CHECK(dvals(model(x, false)) == dvals(model(x, false)));
  // a pretrained base, frozen: fit trains the head only
  auto base = std::make_shared<Sequential>(Dense(5, "tanh"));
  base->set_seed(9);
  base->build({-1, 4});
  const auto before = dvals(base->weights()[0]);
  auto frozen = std::make_shared<ModelLayer>(base, "base");
  frozen->set_trainable(false);
  KerasTensor in2 = Input({4});
  auto head = std::make_shared<Dense>(1);
  Functional tuned(in2, (*head)(apply_layer(frozen, in2)), "tuned");
  tuned.compile("rmsprop", "mean_squared_error");
  FitOptions o;
  o.epochs = 2;
  o.batch_size = 8;
  o.verbose = 0;
  tuned.fit(x, y, o);
  const auto head_before = dvals(head->kernel());
  CHECK(tuned.trainable_weights().size() == 2);
  CHECK(tuned.non_trainable_weights().size() == 2);
  tuned.fit(x, y, o);
  CHECK(dvals(head->kernel()) != head_before);
  CHECK(dvals(base->weights()[0]) == before);
  CHECK(tuned.get_layer("base")->name() == "base");
  CHECK(base->weights()[0].name() == "dense/kernel");  // built before wrapping: its names stay
  // a Functional model inside another: built when made, its "dense" stays, so the outer Dense
  // is "dense_1" (Keras's unique names) and the weights go to disk and back under distinct names
  KerasTensor in3 = Input({4});
  auto inner = std::make_shared<Functional>(in3, apply_layer(Dense(3, "relu"), in3), "inner");
  KerasTensor in4 = Input({4});
  Functional nested(in4, apply_layer(Dense(1), apply_layer(ModelLayer(inner), in4)), "nested");
  std::vector<std::string> names;
  for (const auto& w : nested.weights()) names.push_back(w.name());
  CHECK(names == std::vector<std::string>{"dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"});
  const std::string path = "test_functional_nested.safetensors";
  nested.save_weights(path);
  const auto saved = dvals(nested(x));
  for (auto& w : nested.weights()) w.assign(zeros(w.shape(), w.dtype()));
  CHECK(dvals(nested(x)) != saved);
  nested.load_weights(path);
  CHECK(dvals(nested(x)) == saved);
  std::remove(path.c_str());
  CHECK_THROWS_WITH(ModelLayer(nullptr), Contains("model_layer: the model is null"));
  CHECK_THROWS_WITH(ModelLayer(std::make_shared<Sequential>()), Contains("sequential: the model has no layers"));
}

// ================================================================ masks (Keras's _keras_mask)

#include "golden/masking_golden.hpp"

namespace {

namespace mg = masking_golden;

// The weights of `ls`, in order, set from `data` (Keras's model.weights order); every value used.
void assign_weights(const std::vector<LayerPtr>& ls, const double* data, std::size_t size) {
  std::size_t at = 0;
  for (const auto& l : ls) {
    for (auto& w : l->weights()) {
      const auto n = static_cast<std::size_t>(w.size());
      REQUIRE(at + n <= size);
      w.assign(tensor(std::vector<double>(data + at, data + at + n), w.shape(), kFloat64).astype(w.dtype()).to(w.device()));
      at += n;
    }
  }
  REQUIRE(at == size);
}

template <std::size_t N>
std::vector<double> vec(const double (&a)[N]) {
  return {a, a + N};
}

Tensor tokens(const std::vector<double>& v, const Shape& s) { return tensor(v, s, kFloat64).astype(kInt64); }

EmbeddingOptions mask_zero() {
  EmbeddingOptions o;
  o.mask_zero = true;
  return o;
}

RecurrentOptions sequences() {
  RecurrentOptions o;
  o.return_sequences = true;
  return o;
}

void check_close(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).margin(tol));
}

// Keras's numbers for one masked model: outputs (in training mode for BatchNormalization),
// evaluate()'s loss and metric, and the weights after one SGD(0.5) step over the whole batch.
struct MaskCase {
  Model& model;
  std::vector<LayerPtr> weight_order;
  std::vector<Tensor> xs;
  Tensor y;
  std::vector<double> weights, pred, after;
  double loss, metric;
  std::string loss_name, metric_name;
  bool training = false;
};

void run_mask_case(MaskCase& c, Device dev) {
  for (auto& x : c.xs) x = x.to(dev);
  c.model.set_device(dev);
  std::vector<Tensor> out = c.model(c.xs, c.training);  // builds
  assign_weights(c.weight_order, c.weights.data(), c.weights.size());
  out = c.model(c.xs, c.training);
  check_close(dvals(out[0]), c.pred, 2e-5);
  CHECK(c.model.output_mask(out[0]).defined() == (c.loss_name != "binary_crossentropy"));
  c.model.compile(std::make_shared<optimizers::SGD>(0.5), c.loss_name, {c.metric_name});
  assign_weights(c.weight_order, c.weights.data(), c.weights.size());  // the call above moved BN's statistics
  const Logs logs = c.model.evaluate(c.xs, {c.y}, c.y.dim(0), 0);
  CHECK(logs.at("loss") == Approx(c.loss).margin(2e-5));
  CHECK(logs.at(c.metric_name) == Approx(c.metric).margin(2e-5));
  FitOptions fo;
  fo.batch_size = c.y.dim(0);
  fo.shuffle = false;
  fo.verbose = 0;
  c.model.fit(c.xs, {c.y}, fo);
  std::vector<double> after;
  for (const auto& l : c.weight_order)
    for (const auto& w : l->weights()) {
      const auto v = dvals(w);
      after.insert(after.end(), v.begin(), v.end());
    }
  check_close(after, c.after, 1e-4);
}

}  // namespace

TEST_CASE("masks from Embedding(mask_zero) reach LSTM, the loss and the metrics as in Keras", "[functional][mask]") {
  for (Device dev : devices()) {
    INFO(dev.str());
    auto emb = std::make_shared<Embedding>(7, 3, mask_zero());
    auto lstm = std::make_shared<LSTM>(4, Activation::Tanh, sequences());
    auto dense = std::make_shared<Dense>(5, "softmax");
    Sequential model({emb, lstm, dense});
    MaskCase c{model, {emb, lstm, dense}, {tokens(vec(mg::kSeq2SeqX0), {4, 6})}, tokens(vec(mg::kSeq2SeqY), {4, 6}),
               vec(mg::kSeq2SeqWeights), vec(mg::kSeq2SeqPred), vec(mg::kSeq2SeqAfter), mg::kSeq2SeqLoss,
               mg::kSeq2SeqMetric, "sparse_categorical_crossentropy", "sparse_categorical_accuracy"};
    run_mask_case(c, dev);
    // the mask is the tokens != 0, and compute_mask passes it through LSTM and Dense
    const Tensor x = c.xs[0];
    const Tensor mask = emb->compute_mask(x, Tensor());
    CHECK(mask.dtype() == kBool);
    CHECK(dvals(mask) == dvals(x != 0));
    CHECK(dvals(model.output_mask(model(x))) == dvals(mask));
    CHECK_FALSE(model.output_mask(model(x) * 1.0).defined());  // an op's result carries no mask
  }
}

TEST_CASE("GlobalAveragePooling1D averages the real steps and drops the mask, as Keras", "[functional][mask]") {
  for (Device dev : devices()) {
    INFO(dev.str());
    auto emb = std::make_shared<Embedding>(7, 3, mask_zero());
    auto dense = std::make_shared<Dense>(1, "sigmoid");
    Sequential model({emb, std::make_shared<GlobalAveragePooling1D>(), dense});
    MaskCase c{model, {emb, dense}, {tokens(vec(mg::kPooledX0), {3, 6})}, tensor(vec(mg::kPooledY), {3}),
               vec(mg::kPooledWeights), vec(mg::kPooledPred), vec(mg::kPooledAfter), mg::kPooledLoss,
               mg::kPooledMetric, "binary_crossentropy", "binary_accuracy"};
    run_mask_case(c, dev);
  }
  // by hand: the mean of rows 0 and 2 only
  GlobalAveragePooling1D gap;
  const Tensor x = tensor(std::vector<double>{1, 2, 10, 20, 3, 4}, {1, 3, 2});
  CHECK(dvals(gap(x, tensor(std::vector<bool>{true, false, true}, {1, 3}))) == std::vector<double>{2, 3});
  CHECK_THROWS_WITH(gap(x, tensor(std::vector<bool>{true, false}, {1, 2})), Contains("the mask must be [batch, steps]"));
}

TEST_CASE("Masking zeroes the padded steps and masks SimpleRNN, the loss and the metric", "[functional][mask]") {
  for (Device dev : devices()) {
    INFO(dev.str());
    KerasTensor in = Input({5, 2});
    auto rnn = std::make_shared<SimpleRNN>(4, Activation::Tanh, sequences());
    auto dense = std::make_shared<Dense>(2);
    KerasTensor h = apply_layer(Masking(0.0), in);
    KerasTensor out = (*dense)((*rnn)(h));
    Functional model(in, out);
    MaskCase c{model, {rnn, dense}, {tensor(vec(mg::kMaskingRnnX0), {3, 5, 2})}, tensor(vec(mg::kMaskingRnnY), {3, 5, 2}),
               vec(mg::kMaskingRnnWeights), vec(mg::kMaskingRnnPred), vec(mg::kMaskingRnnAfter), mg::kMaskingRnnLoss,
               mg::kMaskingRnnMetric, "mean_squared_error", "mean_absolute_error"};
    run_mask_case(c, dev);
  }
  Masking masking(-1.0);
  const Tensor x = tensor(std::vector<double>{1, -1, -1, -1, 0, 2}, {1, 3, 2});
  CHECK(dvals(masking(x)) == std::vector<double>{1, -1, 0, 0, 0, 2});
  CHECK(dvals(masking.compute_mask(x, Tensor())) == std::vector<double>{1, 0, 1});
}

TEST_CASE("BatchNormalization trains on the real steps; Bidirectional passes the mask on", "[functional][mask]") {
  for (Device dev : devices()) {
    INFO(dev.str());
    auto emb = std::make_shared<Embedding>(7, 3, mask_zero());
    auto bn = std::make_shared<BatchNormalization>();
    auto bi = std::make_shared<Bidirectional>(
        std::make_shared<GRU>(2, Activation::Tanh, sequences()));
    auto dense = std::make_shared<Dense>(3, "softmax");
    Sequential model({emb, bn, bi, dense});
    MaskCase c{model, {emb, bn, bi, dense}, {tokens(vec(mg::kBatchnormX0), {3, 6})}, tokens(vec(mg::kBatchnormY), {3, 6}),
               vec(mg::kBatchnormWeights), vec(mg::kBatchnormPred), vec(mg::kBatchnormAfter), mg::kBatchnormLoss,
               mg::kBatchnormMetric, "sparse_categorical_crossentropy", "sparse_categorical_accuracy", true};
    run_mask_case(c, dev);
  }
}

TEST_CASE("merge layers AND the masks, Concatenate joins them along its axis, as Keras", "[functional][mask]") {
  for (Device dev : devices()) {
    INFO(dev.str());
    KerasTensor a = Input({4}, kInt64), b = Input({3}, kInt64);
    auto ea = std::make_shared<Embedding>(7, 3, mask_zero());
    auto eb = std::make_shared<Embedding>(7, 3, mask_zero());
    auto proj = std::make_shared<Dense>(3);
    auto gru = std::make_shared<GRU>(3, Activation::Tanh, sequences());
    auto head = std::make_shared<Dense>(2, "softmax");
    KerasTensor xa = (*ea)(a);
    KerasTensor s = apply_layer(Add(), {xa, (*proj)(xa)});
    KerasTensor c1 = apply_layer(Concatenate(1), {s, (*eb)(b)});
    Functional model({a, b}, {(*head)((*gru)(c1))});
    MaskCase c{model, {ea, proj, eb, gru, head}, {tokens(vec(mg::kMergedX0), {3, 4}), tokens(vec(mg::kMergedX1), {3, 3})},
               tokens(vec(mg::kMergedY), {3, 7}), vec(mg::kMergedWeights), vec(mg::kMergedPred), vec(mg::kMergedAfter),
               mg::kMergedLoss, mg::kMergedMetric, "sparse_categorical_crossentropy", "sparse_categorical_accuracy"};
    run_mask_case(c, dev);
  }
  // by hand: a missing mask counts as all true; Dot makes none
  const Tensor x = zeros({1, 2, 2});
  const Tensor m1 = tensor(std::vector<bool>{true, false}, {1, 2});
  const Tensor m2 = tensor(std::vector<bool>{false, true}, {1, 2});
  CHECK(dvals(Add().compute_mask({x, x}, {m1, Tensor()})) == std::vector<double>{1, 0});
  CHECK(dvals(Multiply().compute_mask({x, x}, {m1, m2})) == std::vector<double>{0, 0});
  CHECK_FALSE(Add().compute_mask({x, x}, {Tensor(), Tensor()}).defined());
  CHECK(dvals(Concatenate(1).compute_mask({x, x}, {m1, Tensor()})) == std::vector<double>{1, 0, 1, 1});
  CHECK_FALSE(Dot(2).compute_mask({x, x}, {m1, m2}).defined());
}

TEST_CASE("the masked loss and metrics: Keras's apply_mask by hand", "[functional][mask]") {
  // values [2, 3], mask keeps 4 of 6: the loss is the mean over the 4, sample weights times it
  const Tensor y = tensor(std::vector<double>{0, 0, 0, 0, 0, 0}, {2, 3, 1});
  const Tensor p = tensor(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3, 1});
  const Tensor mask = tensor(std::vector<bool>{true, true, false, false, true, true}, {2, 3});
  losses::MeanSquaredError mse;
  CHECK(mse(y, p, Tensor(), mask).item<double>() == Approx((1 + 4 + 25 + 36) / 4.0));
  const Tensor sw = tensor(std::vector<double>{2, 1}, {2});
  CHECK(mse(y, p, sw, mask).item<double>() == Approx((2 * (1 + 4) + 25 + 36) / 4.0));
  CHECK(mse(y, p, Tensor(), zeros({2, 3}, kBool)).item<double>() == 0.0);  // nothing valid: 0
  CHECK_THROWS_WITH(mse(y, p, Tensor(), zeros({3, 2}, kBool)), Contains("mask [3, 2] does not match the values [2, 3]"));
  // gradient: only the real steps, each 2 p / valid
  {
    Tensor pv = p;
    GradientTape tape;
    tape.watch(pv);
    const Tensor g = tape.gradient(mse(y, pv, Tensor(), mask), {pv})[0];
    CHECK(dvals(g) == std::vector<double>{0.5, 1.0, 0, 0, 2.5, 3.0});
  }
  // metrics weigh by the mask (and by sample weights)
  metrics::MeanAbsoluteError mae;
  mae.update_state(y, p, mask);
  CHECK(mae.result() == Approx((1 + 2 + 5 + 6) / 4.0));
  metrics::SparseCategoricalAccuracy acc;
  acc.update_state(tensor(std::vector<double>{1, 0}, {2}), tensor(std::vector<double>{0.2, 0.8, 0.9, 0.1}, {2, 2}),
                   tensor(std::vector<double>{3, 1}, {2}));
  CHECK(acc.result() == Approx(1.0));
  acc.update_state(tensor(std::vector<double>{1}, {1}), tensor(std::vector<double>{0.9, 0.1}, {1, 2}),
                   tensor(std::vector<double>{4}, {1}));
  CHECK(acc.result() == Approx(0.5));  // 4 of 8 by weight
  metrics::Precision prec;
  prec.update_state(tensor(std::vector<double>{1, 0, 0}, {3}), tensor(std::vector<double>{0.9, 0.8, 0.7}, {3}),
                    tensor(std::vector<double>{3, 1, 0}, {3}));
  CHECK(prec.result() == Approx(0.75));  // tp 3, fp 1 (the third weighs 0)
  CHECK_THROWS_WITH(acc.update_state(tensor(std::vector<double>{1}, {1}), tensor(std::vector<double>{0.9, 0.1}, {1, 2}),
                                     tensor(std::vector<double>{1, 1}, {2})),
                    Contains("sample_weight [2] does not match the values [1]"));
}

TEST_CASE("masks: gradcheck through a masked LSTM, errors, layers that drop the mask", "[functional][mask]") {
  // float64 finite differences through Masking -> LSTM (masked steps) -> the masked loss
  Masking masking;
  LSTM lstm(2, Activation::Tanh, sequences());
  lstm.set_seed(3);
  Tensor x = irregular({2, 4, 3}, -1, 1, kFloat64);
  x(0, Slice(2, 4)).assign(zeros({2, 3}, kFloat64));
  x(1, 0).assign(zeros({3}, kFloat64));
  const Tensor mask = masking.compute_mask(x, Tensor());
  CHECK(dvals(mask) == std::vector<double>{1, 1, 0, 0, 0, 1, 1, 1});
  lstm(x, mask);  // builds
  const Tensor target = irregular({2, 4, 2}, -1, 1, kFloat64);
  losses::MeanSquaredError mse;
  auto f = [&](const std::vector<Tensor>& in) { return mse(target, lstm(masking(in[0]), mask), Tensor(), mask); };
  CHECK(gradcheck(f, {x}).ok);

  // layers that do not support masking drop it; those that do pass it on
  const Tensor m = ones({2, 4}, kBool);
  CHECK_FALSE(Flatten().compute_mask(x, m).defined());
  CHECK_FALSE(Conv1D(2, 2).compute_mask(x, m).defined());
  CHECK(Dense(2).supports_masking());
  CHECK(Dropout(0.5).compute_mask(x, m).defined());
  CHECK_FALSE(LSTM(2).compute_mask(x, m).defined());  // the last output only
  CHECK_FALSE(GlobalMaxPooling1D().supports_masking());
  CHECK(ActivationLayer("relu").compute_mask(x, m).defined());  // Keras's supports_masking, layer by layer
  CHECK(TimeDistributed(Dense(2)).supports_masking());
  CHECK(GaussianNoise(0.1).supports_masking());
  CHECK_FALSE(Permute({2, 1}).supports_masking());
  CHECK_FALSE(RepeatVector(2).supports_masking());
  CHECK_FALSE(UpSampling1D(2).supports_masking());

  // a Sequential without a mask-making layer records no mask; one given a mask passes it on
  Sequential plain(Dense(2));
  const Tensor y = plain(x.astype(kFloat32));
  CHECK_FALSE(plain.output_mask(y).defined());
  Sequential seq(Dense(2));
  const Tensor y2 = seq(x.astype(kFloat32), mask);
  CHECK(dvals(seq.output_mask(y2)) == dvals(mask));

  // Softmax: masked positions get 0; the mask must broadcast as NumPy's rule says
  Softmax sm;
  const Tensor logits = tensor(std::vector<double>{1, 2, 3, 1, 1, 1}, {2, 3});
  const Tensor keep = tensor(std::vector<bool>{true, false, true, false, false, false}, {2, 3});
  const auto s = dvals(sm(logits, keep));
  CHECK(s[0] == Approx(1 / (1 + std::exp(2.0))));
  CHECK(s[1] == 0.0);
  CHECK(s[3] == 0.0);  // a fully masked row is zeros
  CHECK_THROWS_WITH(sm(logits, ones({2, 2}, kBool)), Contains("the mask [2, 2] must broadcast to the inputs [2, 3]"));

  // a mask of the wrong shape for a recurrent layer names the layer
  CHECK_THROWS_WITH(lstm(x, ones({2, 3}, kBool)), Contains("the mask must be [batch, time] = [2, 4]"));

  // a layer that drops a mask says so on stderr, once per layer (Keras's warning); one that
  // passes it on says nothing
  std::ostringstream err;
  std::streambuf* old = std::cerr.rdbuf(err.rdbuf());
  Flatten flatten("flat");
  Dense dense(2);
  flatten(x, mask);
  flatten(x, mask);
  dense(x, mask);
  std::cerr.rdbuf(old);
  const std::string said = err.str();
  CHECK(said.find("layer 'flat' (of type Flatten) was passed an input with a mask") != std::string::npos);
  CHECK(said.find("the layers after it will not see it") != std::string::npos);
  CHECK(said.find("'flat'") == said.rfind("'flat'"));  // once
  CHECK(said.find("Dense") == std::string::npos);
}

TEST_CASE("MultiHeadAttention takes the query, value and key masks from the graph, as Keras", "[functional][mask]") {
  for (Device dev : devices()) {
    INFO(dev.str());
    KerasTensor in = Input({6}, kInt64);
    auto emb = std::make_shared<Embedding>(7, 4, mask_zero());
    auto mha = std::make_shared<MultiHeadAttention>(2, 3);
    auto dense = std::make_shared<Dense>(1, "sigmoid");
    KerasTensor x = (*emb)(in);
    KerasTensor a = (*mha)({x, x});
    Functional model(in, (*dense)(apply_layer(GlobalAveragePooling1D(), a)));
    MaskCase c{model, {emb, mha, dense}, {tokens(vec(mg::kAttentionX0), {3, 6})}, tensor(vec(mg::kAttentionY), {3}),
               vec(mg::kAttentionWeights), vec(mg::kAttentionPred), vec(mg::kAttentionAfter), mg::kAttentionLoss,
               mg::kAttentionMetric, "binary_crossentropy", "binary_accuracy"};
    run_mask_case(c, dev);
    const Tensor t = c.xs[0];
    const Tensor m = emb->compute_mask(t, Tensor());
    CHECK(dvals(mha->compute_mask({t, t}, {m, m})) == dvals(m));  // the query's mask goes on
  }
}

// ================================================================ summary

#include "golden/functional_summary_golden.hpp"

namespace {

std::string summary_of(const Model& model) {
  std::ostringstream os;
  model.summary(os);
  return os.str();
}

}  // namespace

// The same models as test/golden/functional_summary_golden.py builds in Keras 3.15.1; the text is
// Keras's, byte for byte (its ASCII table at its default width).
TEST_CASE("Functional::summary prints Keras 3's table: Input rows and, off a plain chain, Connected to",
          "[functional][summary]") {
  SECTION("a chain: three columns, the Input first") {
    KerasTensor x = Input({6});
    Functional model(x, apply_layer(Dense(3, "softmax"), apply_layer(Dense(16, "relu"), x)));
    model.build();
    CHECK(summary_of(model) == summary_golden::kMlp);
  }
  SECTION("two inputs, one named, joined by Concatenate") {
    KerasTensor a = Input({4});
    KerasTensor b = Input({3}, kFloat32, "extra");
    KerasTensor c = apply_layer(Concatenate(), {apply_layer(Dense(8), a), b});
    Functional model({a, b}, {apply_layer(Dense(1), c)});
    model.build();
    CHECK(summary_of(model) == summary_golden::kTwoInputs);
  }
  SECTION("a residual block") {
    KerasTensor x = Input({3});
    KerasTensor a = apply_layer(Dense(4, "relu"), x);
    KerasTensor r = apply_layer(Add(), {a, apply_layer(Dense(4), a)});
    Functional model(x, apply_layer(Dense(2), r), "residual");
    model.build();
    CHECK(summary_of(model) == summary_golden::kResidual);
  }
  SECTION("a shared layer: one row listing both calls; its second call is dense[1][0]") {
    KerasTensor x1 = Input({5}), x2 = Input({5});
    auto shared = std::make_shared<Dense>(4);
    KerasTensor c = apply_layer(Concatenate(), {(*shared)(x1), (*shared)(x2)});
    Functional model({x1, x2}, {apply_layer(Dense(1), c)});
    model.build();
    CHECK(summary_of(model) == summary_golden::kShared);
  }
  SECTION("two outputs") {
    KerasTensor x = Input({8});
    KerasTensor h = apply_layer(Dense(16, "relu"), x);
    Functional model({x}, {apply_layer(Dense(1), h), apply_layer(Dense(3, "softmax"), h)});
    model.build();
    CHECK(summary_of(model) == summary_golden::kTwoOutputs);
  }
  SECTION("long cells wrap at spaces; a word too long for its column ends in an ellipsis") {
    KerasTensor x = Input({2});
    std::vector<KerasTensor> branches;
    for (int i = 0; i < 5; ++i) branches.push_back(apply_layer(Dense(3), x));
    KerasTensor c = apply_layer(Concatenate(-1, "concatenate_every_branch_here"), branches);
    DenseOptions head;
    head.name = "a_rather_long_name_for_the_head";
    Functional model(x, apply_layer(Dense(1, Activation::Linear, head), c));
    model.build();
    CHECK(summary_of(model) == summary_golden::kWideMerge);
  }
  SECTION("an Input the outputs do not read keeps its row") {
    KerasTensor a = Input({4}), b = Input({2});
    Functional model({a, b}, {apply_layer(Dense(1), a)});
    model.build();
    CHECK(summary_of(model) == summary_golden::kUnusedInput);
  }
  SECTION("branches of different depths sharing a layer, a tensor added to itself, two outputs") {
    KerasTensor x = Input({4});
    DenseOptions named;
    named.name = "shared";
    auto shared = std::make_shared<Dense>(4, Activation::Linear, named);
    KerasTensor a = apply_layer(Dense(4), x);
    KerasTensor b = apply_layer(Dense(4), a);
    KerasTensor c = (*shared)(x), d = (*shared)(b);
    KerasTensor e = apply_layer(Add(), {c, d, d});
    Functional model({x}, {apply_layer(Dense(2), e), apply_layer(Dense(1), a)});
    model.build();
    CHECK(summary_of(model) == summary_golden::kBranches);
  }
  SECTION("a chain through one layer twice is not a plain chain: four columns") {
    KerasTensor x = Input({4});
    auto twice = std::make_shared<Dense>(4);
    Functional model(x, (*twice)((*twice)(x)));
    model.build();
    CHECK(summary_of(model) == summary_golden::kSharedChain);
  }
  SECTION("a shared layer's calls are numbered in the order they were made, not run") {
    KerasTensor x = Input({4});
    KerasTensor a = apply_layer(Dense(4), x);
    DenseOptions named;
    named.name = "shared";
    auto shared = std::make_shared<Dense>(4, Activation::Linear, named);
    KerasTensor d = (*shared)(a);
    KerasTensor c = (*shared)(x);  // runs first: Add reads it first
    Functional model(x, apply_layer(Add(), {c, d}));
    model.build();
    CHECK(summary_of(model) == summary_golden::kSharedOutOfOrder);
  }
}

// test/golden/functional_summary_golden.py makes these models in Keras 3.15.1 and takes
// summary(), len(model.weights) and count_params() right after keras.Model(...): Keras builds
// each layer from its input's symbolic shape then, None axes included where no weight needs them.
TEST_CASE("a functional model is built when made, as Keras's: summary, weights and count_params at once",
          "[functional][summary][build]") {
  SECTION("every axis known") {
    KerasTensor x = Input({6});
    Functional model(x, apply_layer(Dense(3, "softmax"), apply_layer(Dense(16, "relu"), x)));
    CHECK(model.built());
    CHECK(model.weights().size() == 4);
    CHECK(model.count_params() == 163);
    CHECK(summary_of(model) == summary_golden::kMlp);
  }
  SECTION("Embedding on sequences of any length, pooled") {
    KerasTensor x = Input({-1}, kInt64);
    KerasTensor e = apply_layer(Embedding(10, 4), x);
    Functional model(x, apply_layer(Dense(1), apply_layer(GlobalAveragePooling1D(), e)));
    CHECK(model.built());
    CHECK(model.weights().size() == summary_golden::kEmbeddingPooledWeights);
    CHECK(model.count_params() == summary_golden::kEmbeddingPooledParams);
    CHECK(summary_of(model) == summary_golden::kEmbeddingPooled);
    CHECK(model(zeros({2, 7}, kInt64)).shape() == Shape{2, 1});
    CHECK(model(zeros({2, 3}, kInt64)).shape() == Shape{2, 1});
  }
  SECTION("Conv2D on images of any size, pooled") {
    KerasTensor x = Input({-1, -1, 3});
    KerasTensor c = apply_layer(Conv2D(4, 3, "relu"), x);
    Functional model(x, apply_layer(Dense(2), apply_layer(GlobalAveragePooling2D(), c)));
    CHECK(model.built());
    CHECK(model.weights().size() == summary_golden::kConvAnySizeWeights);
    CHECK(model.count_params() == summary_golden::kConvAnySizeParams);
    CHECK(summary_of(model) == summary_golden::kConvAnySize);
    CHECK(model(zeros({1, 5, 6, 3})).shape() == Shape{1, 2});
  }
  SECTION("Dense on sequences of any length") {
    KerasTensor x = Input({-1, 8});
    Functional model(x, apply_layer(Dense(5), x));
    CHECK(model.weights().size() == summary_golden::kDenseOnSequencesWeights);
    CHECK(model.count_params() == summary_golden::kDenseOnSequencesParams);
    CHECK(summary_of(model) == summary_golden::kDenseOnSequences);
  }
  SECTION("Bidirectional(LSTM) builds both directions from the shape") {
    KerasTensor x = Input({-1}, kInt64);
    KerasTensor e = apply_layer(Embedding(10, 4), x);
    Functional model(x, apply_layer(Bidirectional(std::make_shared<LSTM>(3)), e));
    CHECK(model.built());
    CHECK(model.weights().size() == summary_golden::kBidirectionalTextWeights);
    CHECK(model.count_params() == summary_golden::kBidirectionalTextParams);
    CHECK(summary_of(model) == summary_golden::kBidirectionalText);
    CHECK(model.weights()[1].name() == "bidirectional/forward_lstm/kernel");
  }
  SECTION("MultiHeadAttention builds its projections in its call: run once on zeros") {
    KerasTensor x = Input({5, 8});
    auto mha = std::make_shared<MultiHeadAttention>(2, 4);
    Functional model(x, (*mha)({x, x}));
    CHECK(model.built());
    CHECK(model.weights().size() == summary_golden::kSelfAttentionWeights);
    CHECK(model.count_params() == summary_golden::kSelfAttentionParams);
    CHECK(summary_of(model) == summary_golden::kSelfAttention);
  }
  SECTION("TimeDistributed builds the layer it wraps from one step's shape (Keras: 2 weights, 12 params)") {
    KerasTensor x = Input({-1, 5});
    Functional model(x, apply_layer(TimeDistributed(Dense(2)), x));
    CHECK(model.built());
    CHECK(model.weights().size() == 2);
    CHECK(model.count_params() == 12);
  }
  SECTION("a weight that needs an axis of unknown size: Keras refuses it; the model waits for its first call") {
    // Keras: "Shapes used to initialize variables must be fully-defined (no `None` dimensions)"
    Dense dense(3);
    CHECK_THROWS_WITH(dense.build_from_shape({-1, -1}, Device::cpu()),
                      "dense: the shape of weight 'kernel' must be fully defined (no None axes), got (None, 3)");
    CHECK_FALSE(dense.built());
    CHECK(dense.weights().empty());
    KerasTensor x = Input({-1, 2});
    auto first = std::make_shared<Dense>(4);
    KerasTensor h = (*first)(x);
    Functional model(x, apply_layer(Dense(1), apply_layer(Flatten(), h)), "flat");
    CHECK(first->built());  // the layers before the one that needs the size are built
    CHECK_FALSE(model.built());
    CHECK_THROWS_WITH(summary_of(model), "flat: summary: the model is not built yet; call build() or run it on a batch");
    model(zeros({2, 3, 2}));
    CHECK(model.count_params() == 12 + 13);
  }
}

TEST_CASE("the weights drawn when a functional model is made are drawn again by set_seed and set_device before its "
          "first run",
          "[functional][build]") {
  auto make = [](const std::string& name) {
    KerasTensor x = Input({4});
    return std::make_unique<Functional>(x, apply_layer(Dense(2), apply_layer(Dense(3, "relu"), x)), name);
  };
  auto sequential = [](std::uint64_t seed) {
    Sequential s(Dense(3, "relu"), Dense(2));
    s.set_seed(seed);
    s.build({-1, 4});
    return s.get_weights();
  };
  auto same = [](const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i)
      if (dvals(a[i]) != dvals(b[i])) return false;
    return true;
  };
  // made: the model's seed (0), as its first call would have drawn them
  auto model = make("m");
  CHECK(same(model->get_weights(), sequential(0)));
  model->set_seed(7);
  CHECK(same(model->get_weights(), sequential(7)));
  // after a run the weights stay: set_seed reseeds the generators only, as for any built model
  (*model)(irregular({2, 4}));
  model->set_seed(9);
  CHECK(same(model->get_weights(), sequential(7)));
  // an assigned weight stays too
  auto assigned = make("a");
  std::vector<Tensor> values = assigned->get_weights();
  values[0] = ones(values[0].shape());
  assigned->set_weights(values);
  assigned->set_seed(7);
  CHECK(same(assigned->get_weights(), values));
  // set_device: the same numbers, made on the device (and a model inside the model too)
  for (const Device& d : devices()) {
    INFO(d.str());
    auto on = make("on");
    on->set_seed(3);
    on->set_device(d);
    for (const auto& w : on->weights()) CHECK(w.device() == d);
    CHECK(same(on->get_weights(), sequential(3)));
    KerasTensor x = Input({4});
    auto inner = std::make_shared<Functional>(x, apply_layer(Dense(3), x), "inner");
    KerasTensor y = Input({4});
    Functional outer(y, apply_layer(Dense(1), apply_layer(ModelLayer(inner), y)), "outer");
    CHECK(outer.weights()[0].name() == "dense/kernel");  // built when made: Keras's names too
    CHECK(outer.weights()[2].name() == "dense_1/kernel");  // unique across the models, as Keras's
    outer.set_device(d);
    for (const auto& w : outer.weights()) CHECK(w.device() == d);
    CHECK(outer(irregular({2, 4}).to(d)).shape() == Shape{2, 1});
    if (!(d == Device::cpu())) {
      auto prebuilt = std::make_shared<Dense>(2);
      (*prebuilt)(zeros({1, 4}));  // built on the CPU before the model is made: not the model's to move
      KerasTensor z = Input({4});
      Functional mixed(z, apply_layer(Dense(1), (*prebuilt)(z)), "mixed");
      CHECK_THROWS_AS(mixed.set_device(d), ValueError);
      CHECK(mixed.built());  // the refused move leaves the model as it was
      CHECK(mixed.weights()[2].device() == Device::cpu());
    }
  }
}

TEST_CASE("Functional::summary before the model is built is a ValueError", "[functional][summary]") {
  // Dense's kernel needs the size of the Input's axis: the model is built by build() or a run
  KerasTensor x = Input({-1});
  Functional model(x, apply_layer(Dense(3), x), "mlp");
  CHECK_THROWS_AS(model.summary(), ValueError);
  CHECK_THROWS_WITH(summary_of(model), "mlp: summary: the model is not built yet; call build() or run it on a batch");
  const Model& base = model;  // summary() is virtual: a Model reference prints the same table
  model(zeros({2, 6}));
  CHECK(summary_of(base) == summary_of(model));
  CHECK_THAT(summary_of(base), Contains("| input_layer (InputLayer)"));
}

// ================================================================ symbolic shapes

namespace {

// A layer configuration of the shape table: made fresh by `make`, applied to Input(`input`).
struct ShapeCase {
  std::string what;
  std::vector<Shape> inputs;  // without the batch axis; several for a merge layer
  std::function<LayerPtr()> make;
  DType dtype = kFloat32;
};

template <class L>
std::function<LayerPtr()> make(L layer) {
  return [layer] { return std::make_shared<L>(layer); };
}

// Options of type O with `set` applied: options<Conv1DOptions>([](auto& o) { o.dilation_rate = 2; }).
template <class O, class F>
O options(F set) {
  O o;
  set(o);
  return o;
}

template <class O>
O with_padding(O o, decltype(o.padding) padding, std::int64_t strides = 1) {
  o.padding = padding;
  o.strides = strides;
  return o;
}

// [2] + shape: the batch of two the table runs, random floats or zeros of an integer dtype
Tensor batch_of_two(const Shape& shape, DType dtype) {
  Shape full = {2};
  full.insert(full.end(), shape.begin(), shape.end());
  return is_floating(dtype) ? irregular(full) : zeros(full, dtype);
}

std::vector<ShapeCase> shape_cases() {
  const Padding same = Padding::Same;
  return {
      {"Dense", {{3}}, make(Dense(5))},
      {"Dense on the last axis of rank 3", {{4, 3}}, make(Dense(5, "relu"))},
      {"Flatten", {{2, 3, 4}}, make(Flatten())},
      {"Reshape with -1", {{2, 6}}, make(Reshape({-1, 4}))},
      {"Dropout", {{3, 4}}, make(Dropout(0.5))},
      {"GaussianNoise", {{3}}, make(GaussianNoise(0.1))},
      {"GaussianDropout", {{3}}, make(GaussianDropout(0.2))},
      {"ActivationLayer", {{3, 2}}, make(ActivationLayer("tanh"))},
      {"Identity", {{3}}, make(Identity())},
      {"LeakyReLU", {{3}}, make(LeakyReLU())},
      {"ELU", {{3}}, make(ELU())},
      {"PReLU shared", {{3, 4}}, make(PReLU(initializers::zeros, {1}))},
      {"Softmax", {{3, 4}}, make(Softmax(1))},
      {"BatchNormalization", {{4, 4, 3}}, make(BatchNormalization())},
      {"LayerNormalization", {{5, 6}}, make(LayerNormalization())},
      {"GroupNormalization, channels first", {{6, 4, 5}},
       make(GroupNormalization(options<GroupNormalizationOptions>([](auto& o) {
         o.groups = 3;
         o.axis = 1;
       })))},
      {"UnitNormalization over two axes", {{3, 4}}, make(UnitNormalization({1, 2}))},
      {"Rescaling of ints", {{4}}, make(Rescaling(1.0 / 255)), kInt32},
      {"Normalization", {{3}}, make(Normalization())},
      {"RandomFlip", {{6, 6, 3}}, make(RandomFlip())},
      {"RandomRotation", {{6, 6, 3}}, make(RandomRotation(0.1))},
      {"RandomContrast", {{6, 6, 3}}, make(RandomContrast(0.2))},
      {"Masking", {{5, 3}}, make(Masking())},
      {"ActivityRegularization", {{3}}, make(ActivityRegularization(0.01))},
      {"SpatialDropout1D", {{5, 3}}, make(SpatialDropout1D(0.2))},
      {"SpatialDropout2D", {{4, 4, 3}}, make(SpatialDropout2D(0.2))},
      {"Conv1D valid", {{10, 3}}, make(Conv1D(4, 3))},
      {"Conv1D same, strides 2", {{10, 3}}, make(Conv1D(4, 3, "relu", with_padding(Conv1DOptions(), Padding1D::Same, 2)))},
      {"Conv1D causal, dilation 2", {{10, 3}}, make(Conv1D(4, 3, "linear", options<Conv1DOptions>([](auto& o) {
         o.padding = Padding1D::Causal;
         o.dilation_rate = 2;
       })))},
      {"Conv2D valid", {{9, 8, 3}}, make(Conv2D(4, 3))},
      {"Conv2D same, strides 2", {{9, 8, 3}}, make(Conv2D(4, 3, "relu", with_padding(Conv2DOptions(), same, 2)))},
      {"Conv2D valid, dilation 2", {{9, 8, 3}}, make(Conv2D(2, 3, "linear", options<Conv2DOptions>([](auto& o) { o.dilation_rate = 2; })))},
      {"Conv2DTranspose same", {{5, 4, 3}}, make(Conv2DTranspose(4, 3, "linear", with_padding(Conv2DTransposeOptions(), same, 2)))},
      {"Conv2DTranspose valid, output_padding 1", {{5, 4, 3}},
       make(Conv2DTranspose(4, 3, "linear", options<Conv2DTransposeOptions>([](auto& o) {
         o.strides = 2;
         o.output_padding = 1;
       })))},
      {"DepthwiseConv2D", {{7, 6, 3}}, make(DepthwiseConv2D(3, "linear", options<DepthwiseConv2DOptions>([](auto& o) { o.depth_multiplier = 2; })))},
      {"SeparableConv2D same, strides 2", {{7, 6, 3}}, make(SeparableConv2D(5, 3, "linear", options<SeparableConv2DOptions>([](auto& o) {
         o.padding = Padding::Same;
         o.strides = 2;
         o.depth_multiplier = 2;
       })))},
      {"MaxPooling2D", {{7, 6, 3}}, make(MaxPooling2D(2))},
      {"AveragePooling2D same, strides 2", {{7, 6, 3}}, make(AveragePooling2D(3, with_padding(PoolingOptions(), same, 2)))},
      {"MaxPooling1D", {{9, 3}}, make(MaxPooling1D(2))},
      {"AveragePooling1D same, strides 2", {{9, 3}}, make(AveragePooling1D(3, with_padding(PoolingOptions(), same, 2)))},
      {"GlobalAveragePooling2D", {{4, 4, 3}}, make(GlobalAveragePooling2D())},
      {"GlobalMaxPooling2D keepdims", {{4, 4, 3}}, make(GlobalMaxPooling2D(true))},
      {"GlobalAveragePooling1D", {{5, 3}}, make(GlobalAveragePooling1D())},
      {"GlobalMaxPooling1D keepdims", {{5, 3}}, make(GlobalMaxPooling1D(true))},
      {"UpSampling2D", {{3, 4, 2}}, make(UpSampling2D(2, 3))},
      {"UpSampling1D", {{4, 2}}, make(UpSampling1D(3))},
      {"ZeroPadding2D", {{3, 3, 2}}, make(ZeroPadding2D(Padding2D{1, 2, 3, 0}))},
      {"ZeroPadding1D", {{4, 2}}, make(ZeroPadding1D(Edges1D{1, 2}))},
      {"Cropping2D", {{5, 5, 2}}, make(Cropping2D(Padding2D{1, 0, 0, 2}))},
      {"Cropping1D", {{5, 2}}, make(Cropping1D(1))},
      {"Embedding", {{6}}, make(Embedding(10, 4)), kInt32},
      {"SimpleRNN", {{5, 3}}, make(SimpleRNN(4))},
      {"LSTM return_sequences", {{5, 3}}, make(LSTM(4, "tanh", sequences()))},
      {"GRU", {{5, 3}}, [] { return std::make_shared<GRU>(3); }},
      {"Bidirectional concat", {{5, 2}}, [] { return std::make_shared<Bidirectional>(std::make_shared<LSTM>(3)); }},
      {"Bidirectional sum, sequences", {{5, 2}},
       [] { return std::make_shared<Bidirectional>(std::make_shared<GRU>(3, "tanh", sequences()), MergeMode::Sum); }},
      {"Permute", {{3, 4, 2}}, make(Permute({3, 1, 2}))},
      {"RepeatVector", {{4}}, make(RepeatVector(3))},
      {"TimeDistributed(Dense)", {{5, 4}}, [] { return std::make_shared<TimeDistributed>(Dense(3)); }},
      {"TimeDistributed(Flatten)", {{5, 2, 3}}, [] { return std::make_shared<TimeDistributed>(Flatten()); }},
      {"CategoryEncoding one_hot", {{1}}, make(CategoryEncoding(6, "one_hot")), kInt32},
      {"CategoryEncoding multi_hot", {{3}}, make(CategoryEncoding(6)), kInt32},
      {"CategoryEncoding count, rank 3", {{3, 2}}, make(CategoryEncoding(6, "count")), kInt64},
      {"Add broadcasting over ranks", {{4, 3}, {3}}, make(Add())},
      {"Subtract", {{3}, {3}}, make(Subtract())},
      {"Multiply broadcasting", {{4, 1}, {4, 5}}, make(Multiply())},
      {"Average", {{3}, {3}, {3}}, make(Average())},
      {"Maximum", {{2, 3}, {2, 3}}, make(Maximum())},
      {"Minimum", {{3}, {3}}, make(Minimum())},
      {"Concatenate axis 1", {{2, 3}, {4, 3}}, make(Concatenate(1))},
      {"Dot (1, 2)", {{4, 3}, {5, 4}}, make(Dot(DotAxes{1, 2}))},
      {"Dot of two vectors", {{4}, {4}}, make(Dot(1))},
      {"Dot (2, 1), rank 3 and 2", {{3, 4}, {4}}, make(Dot(DotAxes{2, 1}))},
      {"MultiHeadAttention", {{5, 6}, {7, 4}}, [] { return std::make_shared<MultiHeadAttention>(2, 3); }},
      {"MultiHeadAttention output_shape, key", {{5, 6}, {7, 4}, {7, 2}},
       [] { return std::make_shared<MultiHeadAttention>(
           2, 3, options<MultiHeadAttentionOptions>([](auto& o) { o.output_shape = 8; })); }},
      {"Attention", {{5, 6}, {7, 3}, {7, 6}}, [] { return std::make_shared<Attention>(); }},
      {"Attention concat, scale", {{5, 4}, {7, 4}},
       [] { return std::make_shared<Attention>(options<AttentionOptions>([](auto& o) {
           o.use_scale = true;
           o.score_mode = "concat";
         })); }},
      {"AdditiveAttention", {{5, 6}, {7, 2}, {7, 6}}, [] { return std::make_shared<AdditiveAttention>(); }},
  };
}

}  // namespace

TEST_CASE("a layer output's shape is known when it is recorded, and is the shape the model computes",
          "[functional][shape]") {
  for (const auto& c : shape_cases()) {
    INFO(c.what);
    const LayerPtr layer = c.make();
    std::vector<KerasTensor> ins;
    for (const auto& s : c.inputs) ins.push_back(Input(s, c.dtype));
    const KerasTensor out = ins.size() == 1 ? apply_layer(layer, ins[0]) : apply_layer(layer, ins);
    const Shape symbolic = out.shape();
    INFO("symbolic " << shape_str(symbolic));
    REQUIRE_FALSE(symbolic.empty());
    CHECK(symbolic[0] == -1);
    // recording builds, names and seeds nothing
    CHECK_FALSE(layer->built());
    CHECK(layer->name().empty());
    CHECK_FALSE(layer->seeded());

    Functional model(ins, {out});
    std::vector<Tensor> xs;
    for (const auto& s : c.inputs) xs.push_back(batch_of_two(s, c.dtype));
    const Tensor y = model(xs)[0];
    Shape expected = symbolic;
    expected[0] = 2;
    REQUIRE(y.shape() == expected);
    CHECK(out.shape() == symbolic);  // the run agrees
  }
}

TEST_CASE("an axis of unknown size stays unknown where the output depends on it, and never fails",
          "[functional][shape]") {
  const KerasTensor seq = Input({-1, 8});
  CHECK(apply_layer(LSTM(4), seq).shape() == Shape{-1, 4});
  CHECK(apply_layer(LSTM(4, "tanh", sequences()), seq).shape() == Shape{-1, -1, 4});
  CHECK(apply_layer(Conv1D(3, 3), seq).shape() == Shape{-1, -1, 3});
  CHECK(apply_layer(GlobalAveragePooling1D(), seq).shape() == Shape{-1, 8});
  CHECK(apply_layer(Dense(5), seq).shape() == Shape{-1, -1, 5});
  CHECK(apply_layer(Flatten(), seq).shape() == Shape{-1, -1});
  CHECK(apply_layer(Reshape({-1, 4}), seq).shape() == Shape{-1, -1, 4});
  CHECK(apply_layer(Embedding(10, 3), Input({-1}, kInt32)).shape() == Shape{-1, -1, 3});
  CHECK(apply_layer(Concatenate(1), {seq, Input({3, 8})}).shape() == Shape{-1, -1, 8});
  CHECK(apply_layer(Add(), {seq, Input({5, 8})}).shape() == Shape{-1, 5, 8});
  CHECK(apply_layer(Add(), {seq, Input({1, 8})}).shape() == Shape{-1, -1, 8});
  // an unknown last axis: Dense cannot check it, and still knows its own
  CHECK(apply_layer(Dense(2), Input({-1})).shape() == Shape{-1, 2});
  const KerasTensor images = Input({-1, -1, 3});
  CHECK(apply_layer(Conv2D(4, 3, "relu", with_padding(Conv2DOptions(), Padding::Same, 2)), images).shape() ==
        Shape{-1, -1, -1, 4});
  CHECK(apply_layer(GlobalMaxPooling2D(), images).shape() == Shape{-1, 3});

  // a model over sequences of any length runs on each, as before
  const KerasTensor in = Input({-1, 8});
  const KerasTensor h = apply_layer(LSTM(4, "tanh", sequences()), in);
  Functional model(in, apply_layer(GlobalAveragePooling1D(), h));
  CHECK(model(zeros({2, 6, 8})).shape() == Shape{2, 4});
  CHECK(model(zeros({2, 3, 8})).shape() == Shape{2, 4});
  CHECK(h.shape() == Shape{-1, -1, 4});  // the runs do not pin the unknown axis, as in Keras
}

TEST_CASE("a layer called on a symbolic shape it refuses throws its error there, naming it and the shapes",
          "[functional][shape][errors]") {
  // compute_output_shape called directly on a shape without a batch axis: an error, never a crash
  CHECK_THROWS_WITH(Flatten().compute_output_shape({}), Contains("flatten: expected inputs with a batch axis"));
  CHECK_THROWS_AS(CategoryEncoding(3).compute_output_shape({}), ShapeError);
  BatchNormalization built_bn;
  built_bn(zeros({2, 3}));
  CHECK_THROWS_AS(built_bn.compute_output_shape({}), ShapeError);
  CHECK_THROWS_AS(apply_layer(Dense(3), Input({})), ShapeError);
  CHECK_THROWS_WITH(apply_layer(Dense(3), Input({})),
                    Contains("dense: expected an input of rank >= 2 ([batch, ..., features]), got [-1]"));
  CHECK_THROWS_AS(apply_layer(Conv2D(4, 3), Input({8, 3})), ShapeError);
  CHECK_THROWS_WITH(apply_layer(Conv2D(4, 3), Input({8, 3})),
                    Contains("conv2d: expected inputs [batch, height, width, channels], got [-1, 8, 3]"));
  CHECK_THROWS_WITH(apply_layer(Conv2D(4, 3), Input({2, 5, 3})), Contains("conv2d: conv2d: window 3 is larger than the input 2"));
  CHECK_THROWS_AS(apply_layer(LSTM(4), Input({8})), ShapeError);
  CHECK_THROWS_AS(apply_layer(Reshape({4, 4}), Input({3, 5})), ShapeError);
  CHECK_THROWS_WITH(apply_layer(Reshape({4, 4}), Input({3, 5})), Contains("reshape: cannot reshape [-1, 3, 5]"));
  CHECK_THROWS_AS(apply_layer(Cropping1D(3), Input({5, 2})), ValueError);
  CHECK_THROWS_AS(apply_layer(RandomFlip(), Input({5, 2})), ValueError);
  CHECK_THROWS_AS(apply_layer(GroupNormalization(), Input({5, 6})), ValueError);  // 32 groups of 6 channels
  CHECK_THROWS_AS(apply_layer(UnitNormalization({2}), Input({5})), ValueError);

  const KerasTensor a = Input({3, 1}), b = Input({4, 2});
  CHECK_THROWS_AS(apply_layer(Concatenate(), {a, b}), ShapeError);
  CHECK_THROWS_WITH(apply_layer(Concatenate(), {a, b}),
                    Contains("concatenate: the inputs must match in every axis but 2, got (None, 3, 1), (None, 4, 2)"));
  CHECK_THROWS_AS(apply_layer(Add(), {Input({3}), Input({4})}), ShapeError);
  CHECK_THROWS_WITH(apply_layer(Add(), {Input({3}), Input({4})}),
                    Contains("add: inputs have incompatible shapes: (None, 3), (None, 4)"));
  CHECK_THROWS_AS(apply_layer(Subtract(), {Input({3}), Input({3}), Input({3})}), ValueError);
  CHECK_THROWS_AS(apply_layer(Dot(1), {Input({3}), Input({4})}), ShapeError);
  CHECK_THROWS_WITH(apply_layer(Dot(1), {Input({3}), Input({4})}),
                    Contains("dot: the dotted axes differ in size: axis 1 of (None, 3) and axis 1 of (None, 4)"));
  CHECK_THROWS_AS(apply_layer(MultiHeadAttention(2, 3), {Input({5, 6}), Input({7, 4}), Input({6, 4})}), ValueError);

  // a built layer checks its weights' sizes: a Dense made for 4 features, then given 5
  auto dense = std::make_shared<Dense>(3);
  (*dense)(zeros({1, 4}));
  CHECK_THROWS_AS((*dense)(Input({5})), ShapeError);
  CHECK_THROWS_WITH((*dense)(Input({5})), Contains("dense: expected inputs [batch, ..., 4], got [-1, 5]"));
  CHECK((*dense)(Input({4})).shape() == Shape{-1, 3});
  CHECK((*dense)(Input({-1})).shape() == Shape{-1, 3});  // unknown: no check
  auto lstm = std::make_shared<LSTM>(2);
  (*lstm)(zeros({1, 3, 4}));
  CHECK_THROWS_WITH((*lstm)(Input({3, 5})), Contains("lstm: expected inputs [batch, time, 4], got [-1, 3, 5]"));
  // an unknown input shape checks nothing: the error comes when the model runs, as before
  KerasTensor unknown = apply_layer(Lambda([](const Tensor& x) { return x; }), Input({3}));
  REQUIRE(unknown.shape().empty());
  CHECK(apply_layer(Conv2D(2, 1), unknown).shape().empty());
}

TEST_CASE("Deep Learning with Python's residual blocks: the projection where the channels differ",
          "[functional][shape]") {
  // DLwP ch. 9: residual = Conv2D(filters, 1) where residual.shape[-1] != filters
  const auto residual_block = [](KerasTensor x, std::int64_t filters, bool pooling) {
    KerasTensor residual = x;
    Conv2DOptions same;
    same.padding = Padding::Same;
    x = apply_layer(Conv2D(filters, 3, "relu", same), x);
    x = apply_layer(Conv2D(filters, 3, "relu", same), x);
    if (pooling) {
      PoolingOptions pool_same;
      pool_same.padding = Padding::Same;
      x = apply_layer(MaxPooling2D(2, pool_same), x);
      residual = apply_layer(Conv2D(filters, 1, "linear", with_padding(Conv2DOptions(), Padding::Same, 2)), residual);
    } else if (residual.shape().back() != filters) {
      residual = apply_layer(Conv2D(filters, 1), residual);
    }
    return apply_layer(Add(), {x, residual});
  };
  const KerasTensor inputs = Input({8, 8, 3});
  KerasTensor x = apply_layer(Conv2D(4, 3, "relu"), inputs);
  CHECK(x.shape() == Shape{-1, 6, 6, 4});
  x = residual_block(x, 4, true);
  CHECK(x.shape() == Shape{-1, 3, 3, 4});
  x = residual_block(x, 8, false);  // 4 channels -> 8: projected
  CHECK(x.shape() == Shape{-1, 3, 3, 8});
  x = residual_block(x, 8, false);  // 8 -> 8: the identity shortcut
  x = apply_layer(GlobalAveragePooling2D(), x);
  const KerasTensor outputs = apply_layer(Dense(10, "softmax"), x);
  CHECK(outputs.shape() == Shape{-1, 10});
  Functional model(inputs, outputs);
  // conv, (2 convs, pool, projection, add), (2 convs, projection, add), (2 convs, add), pool, dense
  CHECK(model.layers().size() == 15);
  CHECK(model(irregular({2, 8, 8, 3})).shape() == Shape{2, 10});
}

namespace {
// A custom layer without compute_output_shape: x * scale, scale [features] made at build.
class Scale : public Layer {
 public:
  Scale() : Layer("Scale", "") {}
  void build(const Shape& input_shape) override { scale_ = add_weight("scale", {input_shape.back()}, initializers::ones); }
  Tensor call(const Tensor& x, bool) override {
    add_loss(sum(x) * 0.0);
    return x * scale_;
  }

 private:
  Variable scale_;
};

// A custom layer whose call throws something that is not a tapeflow::Error on zeros.
class Picky : public Layer {
 public:
  Picky() : Layer("Picky", "") {}
  Tensor call(const Tensor& x, bool) override {
    if (sum(abs(x)).item<float>() == 0) throw std::logic_error("zeros are not welcome");
    return x;
  }
};

// A custom layer of integer tokens: float inputs are a DTypeError.
class Tokens : public Layer {
 public:
  Tokens() : Layer("Tokens", "") {}
  Tensor call(const Tensor& x, bool) override {
    if (is_floating(x.dtype())) throw DTypeError("tokens: expected integers");
    return x.astype(kFloat32);
  }
};
}  // namespace

TEST_CASE("the default compute_output_shape: unknown before the build, the layer run on zeros after",
          "[functional][shape]") {
  auto scale = std::make_shared<Scale>();
  CHECK(scale->compute_output_shape({-1, 3}).empty());
  CHECK((*scale)(Input({3})).shape().empty());  // not built: known once a model runs
  CHECK_FALSE(scale->built());
  (*scale)(ones({2, 3}));
  REQUIRE(scale->built());
  const std::size_t losses = scale->losses().size();
  CHECK((*scale)(Input({3})).shape() == Shape{-1, 3});
  CHECK((*scale)(Input({2, 3})).shape() == Shape{-1, 2, 3});
  CHECK((*scale)(Input({-1, 3})).shape().empty());  // an unknown axis: not run
  CHECK(scale->output_shape() == Shape{-1, 3});      // the probe is not a call
  CHECK(scale->losses().size() == losses);
  // the layer's own error, named
  CHECK_THROWS_AS((*scale)(Input({4})), ShapeError);
  CHECK_THROWS_WITH((*scale)(Input({4})), Contains("scale: "));
  // anything else: unknown
  auto picky = std::make_shared<Picky>();
  (*picky)(ones({1, 2}));
  CHECK((*picky)(Input({2})).shape().empty());
  // the probe's float32 zeros are not the input's dtype: a DTypeError is unknown, not an error
  auto tokens = std::make_shared<Tokens>();
  (*tokens)(zeros({1, 2}, kInt32));
  CHECK((*tokens)(Input({2}, kInt32)).shape().empty());
  // Lambda: the default, or Keras's output_shape function
  const auto twice = [](const Tensor& t) { return concat({t, t}, -1); };
  auto plain = std::make_shared<Lambda>(twice);
  CHECK((*plain)(Input({3})).shape().empty());
  (*plain)(ones({1, 3}));
  CHECK((*plain)(Input({3})).shape() == Shape{-1, 6});
  const KerasTensor in = Input({-1, 3});
  const KerasTensor doubled = apply_layer(Lambda(twice, "", [](Shape s) {
                                            s.back() = s.back() < 0 ? -1 : 2 * s.back();
                                            return s;
                                          }),
                                          in);
  CHECK(doubled.shape() == Shape{-1, -1, 6});
  CHECK(Functional(in, doubled)(zeros({2, 5, 3})).shape() == Shape{2, 5, 6});
  // ModelLayer falls back to the default: known once it is built
  auto inner = std::make_shared<Sequential>(Dense(4), Dense(2));
  auto wrapped = std::make_shared<ModelLayer>(inner);
  CHECK((*wrapped)(Input({3})).shape().empty());
  (*wrapped)(zeros({1, 3}));
  CHECK((*wrapped)(Input({3})).shape() == Shape{-1, 2});
}

TEST_CASE("recording builds, names and seeds nothing: a seeded functional model's weights are Sequential's",
          "[functional][shape]") {
  const KerasTensor in = Input({6, 6, 2});
  std::vector<LayerPtr> layers = {std::make_shared<Conv2D>(3, 3), std::make_shared<BatchNormalization>(),
                                  std::make_shared<Flatten>(), std::make_shared<Dense>(4)};
  KerasTensor x = in;
  for (const auto& l : layers) x = (*l)(x);
  CHECK(x.shape() == Shape{-1, 4});
  for (const auto& l : layers) {
    CHECK_FALSE(l->built());
    CHECK(l->name().empty());
    CHECK_FALSE(l->seeded());
  }
  Functional fmodel(in, x);
  Sequential smodel(Conv2D(3, 3), BatchNormalization(), Flatten(), Dense(4));
  fmodel.set_seed(5);
  smodel.set_seed(5);
  const Tensor batch = irregular({2, 6, 6, 2});
  const Tensor yf = fmodel(batch), ys = smodel(batch);
  CHECK(dvals(yf) == dvals(ys));
  const auto wf = fmodel.get_weights(), ws = smodel.get_weights();
  REQUIRE(wf.size() == ws.size());
  for (std::size_t i = 0; i < wf.size(); ++i) CHECK(dvals(wf[i]) == dvals(ws[i]));
}

TEST_CASE("model_to_dot and plot_model: Keras's graph as Graphviz DOT text", "[functional][plot]") {
  const auto count = [](const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  const KerasTensor title = Input({8}, kFloat32, "title");
  const KerasTensor body = Input({8});
  auto shared = std::make_shared<Dense>(4, "relu");
  const KerasTensor merged = apply_layer(Add(), {apply_layer(shared, title), apply_layer(shared, body)});
  Functional model({title, body}, {apply_layer(Dense(2), merged)});
  model.build();
  PlotOptions o;
  o.show_shapes = true;
  o.show_dtype = true;
  o.show_trainable = true;
  o.rankdir = "LR";
  const std::string dot = model_to_dot(model, o);
  INFO(dot);
  CHECK(dot.rfind("digraph \"functional\" {", 0) == 0);
  CHECK(dot.find("rankdir=\"LR\", concentrate=true, dpi=200, splines=\"ortho\"") != std::string::npos);
  CHECK(count(dot, "fontname=") == 5);  // two Inputs, the shared dense once, add, dense_1
  CHECK(count(dot, " -> ") == 4);      // title and input_layer -> dense, dense -> add once, add -> dense_1
  CHECK(dot.find("<b>title</b> (InputLayer)") != std::string::npos);
  CHECK(dot.find("<b>input_layer</b> (InputLayer)") != std::string::npos);
  CHECK(dot.find("Output shape: <b>(None, 8)</b>") != std::string::npos);
  CHECK(dot.find("Input shape: <b>?</b>") != std::string::npos);  // the shared layer, as Keras
  CHECK(dot.find("Input shape: <b>[(None, 4), (None, 4)]</b>") != std::string::npos);
  CHECK(dot.find("<b>dense_1</b> (Dense)") != std::string::npos);
  CHECK(dot.find("Output shape: <b>(None, 2)</b>") != std::string::npos);
  CHECK(dot.find("Output dtype: <b>float32</b>") != std::string::npos);
  CHECK(count(dot, "<b>Trainable</b>") == 2);  // the two Dense; Inputs and Add have no weights
  shared->set_trainable(false);
  CHECK(count(model_to_dot(model, o), "<b>Non-trainable</b>") == 1);
  // Keras's defaults: names only, top to bottom
  const std::string plain = model_to_dot(model);
  CHECK(plain.find("rankdir=\"TB\"") != std::string::npos);
  CHECK(plain.find("shape:") == std::string::npos);
  PlotOptions nameless;
  nameless.show_layer_names = false;
  CHECK(model_to_dot(model, nameless).find("<b>Dense</b></font>") != std::string::npos);

  // a Sequential: a chain, its shapes once built
  Sequential seq(Dense(3, "relu"), Dropout(0.5), Dense(1));
  seq.build({-1, 5});
  const std::string chain = model_to_dot(seq, o);
  CHECK(count(chain, "fontname=") == 3);
  CHECK(count(chain, " -> ") == 2);
  CHECK(chain.find("Input shape: <b>(None, 5)</b>") != std::string::npos);
  CHECK(chain.find("Output shape: <b>(None, 1)</b>") != std::string::npos);

  // plot_model writes the DOT text; images are Graphviz's job
  const std::string path = "test_functional_plot.dot";
  plot_model(model, path, o);
  std::ifstream in(path);
  const std::string written((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(written == model_to_dot(model, o));
  std::remove(path.c_str());
  CHECK_THROWS_WITH(plot_model(model, "model.png"), Contains("dot -Tpng") && Contains("model.png"));
  PlotOptions bad;
  bad.rankdir = "UP";
  CHECK_THROWS_WITH(model_to_dot(model, bad), Contains("rankdir must be TB, BT, LR or RL, got 'UP'"));
  CHECK_THROWS_AS(plot_model(model, "/nonexistent-dir/model.dot"), IOError);
}
