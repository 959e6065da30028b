// Losses and metrics against values worked out by hand (Keras's documented examples where
// there is one), from probabilities and from logits, at extreme logits, and their gradients.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "tapeflow/tapeflow.hpp"

using namespace tapeflow;

namespace {

std::vector<float> f32(std::initializer_list<float> v) { return v; }
Tensor mat(std::initializer_list<float> v, std::int64_t rows, std::int64_t cols) {
  return tensor<float>(std::vector<float>(v), {rows, cols});
}
double value(const Tensor& t) { return t.item<double>(); }

// Hand formulas in double, written independently of the library.
double lse(const std::vector<double>& v) {
  double m = -std::numeric_limits<double>::infinity();
  for (double x : v) m = std::max(m, x);
  double s = 0;
  for (double x : v) s += std::exp(x - m);
  return m + std::log(s);
}

}  // namespace

TEST_CASE("mean squared error") {
  // Keras's example: [[0, 1], [0, 0]] vs [[1, 1], [1, 0]] -> per example [0.5, 0.5], mean 0.5
  const Tensor y_true = mat({0, 1, 0, 0}, 2, 2), y_pred = mat({1, 1, 1, 0}, 2, 2);
  CHECK(losses::mean_squared_error(y_true, y_pred).to_vector<float>() == f32({0.5f, 0.5f}));
  CHECK(value(losses::MeanSquaredError()(y_true, y_pred)) == Approx(0.5));
  // [[1, 2]] vs [[4, -2]]: (9 + 16) / 2
  CHECK(value(losses::MeanSquaredError()(mat({1, 2}, 1, 2), mat({4, -2}, 1, 2))) == Approx(12.5));
  // targets [batch] against predictions [batch, 1], integer targets converted
  const Tensor y_int = tensor<std::int64_t>({1, 3}, {2});
  CHECK(value(losses::MeanSquaredError()(y_int, mat({2, 1}, 2, 1))) == Approx((1.0 + 4.0) / 2));
  CHECK_THROWS_AS(losses::mean_squared_error(mat({1, 2}, 1, 2), mat({1, 2, 3}, 1, 3)), ShapeError);
}

TEST_CASE("mean absolute error, as a loss and as Keras's \"mae\" metric") {
  // [[0, 1], [0, 0]] vs [[1, 1], [1, 0]] -> per example [0.5, 0.5]; [[1, 2]] vs [[4, -2]] -> 3.5
  const Tensor y_true = mat({0, 1, 0, 0}, 2, 2), y_pred = mat({1, 1, 1, 0}, 2, 2);
  CHECK(losses::mean_absolute_error(y_true, y_pred).to_vector<float>() == f32({0.5f, 0.5f}));
  CHECK(value(losses::MeanAbsoluteError()(mat({1, 2}, 1, 2), mat({4, -2}, 1, 2))) == Approx(3.5));
  CHECK(value(losses::get("mae")->operator()(tensor<std::int64_t>({1, 3}, {2}), mat({2, 1}, 2, 1))) ==
        Approx((1.0 + 2.0) / 2));
  CHECK(losses::get("mae")->name() == "mean_absolute_error");
  // the gradient of |y_pred - y_true| / n: sign / n
  const Tensor p = mat({1, 5, 2, 0}, 2, 2);
  GradientTape tape;
  tape.watch(p);
  const Tensor g = tape.gradient(losses::MeanAbsoluteError()(mat({2, 3, 2, 1}, 2, 2), p), p);
  CHECK(g.to_vector<float>() == f32({-0.25f, 0.25f, 0.0f, -0.25f}));

  // the metrics: per-example values averaged over every example seen, logged under the name given
  const auto mae = metrics::get("mae");
  CHECK(mae->name() == "mae");
  mae->update_state(y_true, y_pred);                     // 0.5, 0.5
  mae->update_state(mat({1, 2}, 1, 2), mat({4, -2}, 1, 2));  // 3.5
  CHECK(mae->result() == Approx((0.5 + 0.5 + 3.5) / 3));
  const auto mse = metrics::get("mse");
  CHECK(mse->name() == "mse");
  mse->update_state(mat({1, 2}, 1, 2), mat({4, -2}, 1, 2));
  CHECK(mse->result() == Approx(12.5));
  CHECK(metrics::get("mean_absolute_error")->name() == "mean_absolute_error");
  mae->reset_state();
  CHECK(mae->result() == 0);
}

TEST_CASE("binary crossentropy from probabilities and from logits") {
  // Keras's example: [[0, 1], [0, 0]] vs [[0.6, 0.4], [0.4, 0.6]]:
  // ex 0: -(log 0.4 + log 0.4) / 2 = 0.916291; ex 1: -(log 0.6 + log 0.4) / 2 = 0.713558
  const Tensor y_true = mat({0, 1, 0, 0}, 2, 2), p = mat({0.6f, 0.4f, 0.4f, 0.6f}, 2, 2);
  const auto per = losses::binary_crossentropy(y_true, p).to_vector<float>();
  CHECK(per[0] == Approx(-(std::log(0.4) + std::log(0.4)) / 2));
  CHECK(per[1] == Approx(-(std::log(0.6) + std::log(0.4)) / 2));
  CHECK(value(losses::BinaryCrossentropy()(y_true, p)) == Approx(0.814924).epsilon(1e-5));

  // Keras's logits example: [0, 1, 0, 0] vs [-18.6, 0.51, 2.94, -12.8]:
  // max(x, 0) - x z + log(1 + e^-|x|) = [8.36e-9, 0.470313, 2.991516, 2.76e-6], mean 0.865458
  const Tensor z = tensor<float>({0, 1, 0, 0}, {4});
  const Tensor logits = tensor<float>({-18.6f, 0.51f, 2.94f, -12.8f}, {4});
  CHECK(value(losses::BinaryCrossentropy(true)(z, logits)) == Approx(0.865458).epsilon(1e-5));
  // the same loss from probabilities (clipped) agrees away from the clip
  CHECK(value(losses::BinaryCrossentropy()(z, sigmoid(logits))) == Approx(0.865458).epsilon(1e-4));

  // the clip: p = 0 for a positive gives -log(1e-7) = 16.118
  CHECK(value(losses::BinaryCrossentropy()(tensor<float>({1}, {1}), tensor<float>({0}, {1}))) ==
        Approx(-std::log(1e-7)).epsilon(1e-4));
  // confident right logits 17 and 40 give log1p(e^-17) = 4.14e-8 and e^-40 = 4.25e-18, not 0
  // (1 + e^-x rounds to 1), as TensorFlow's sigmoid_cross_entropy_with_logits
  const auto tiny = losses::binary_crossentropy(tensor<double>({1, 1}, {2}), tensor<double>({17, 40}, {2}), true)
                        .to_vector<double>();
  CHECK(tiny[0] == Approx(std::log1p(std::exp(-17.0))).epsilon(1e-12));
  CHECK(tiny[1] == Approx(std::exp(-40.0)).epsilon(1e-12));
}

TEST_CASE("categorical crossentropy from probabilities and from logits") {
  // Keras's example: [[0, 1, 0], [0, 0, 1]] vs [[0.05, 0.95, 0], [0.1, 0.8, 0.1]]:
  // (-log 0.95 - log 0.1) / 2 = 1.176939
  const Tensor y_true = mat({0, 1, 0, 0, 0, 1}, 2, 3);
  const Tensor p = mat({0.05f, 0.95f, 0, 0.1f, 0.8f, 0.1f}, 2, 3);
  CHECK(value(losses::CategoricalCrossentropy()(y_true, p)) == Approx(1.176939).epsilon(1e-5));
  // unnormalised probabilities are renormalised first (Keras): [1, 3] -> [0.25, 0.75]
  CHECK(value(losses::CategoricalCrossentropy()(mat({0, 1}, 1, 2), mat({1, 3}, 1, 2))) ==
        Approx(-std::log(0.75)).epsilon(1e-5));

  // logits [[2, 1, 0.1], [0.5, 2.5, 0.3]] with classes 1 and 2:
  // (lse(2, 1, 0.1) - 1 + lse(0.5, 2.5, 0.3) - 0.3) / 2 = 1.918540
  const Tensor logits = mat({2, 1, 0.1f, 0.5f, 2.5f, 0.3f}, 2, 3);
  const double expected = (lse({2, 1, 0.1}) - 1 + lse({0.5, 2.5, 0.3}) - 0.3) / 2;
  CHECK(expected == Approx(1.918540).epsilon(1e-6));
  CHECK(value(losses::CategoricalCrossentropy(true)(y_true, logits)) == Approx(expected).epsilon(1e-5));
  CHECK(value(losses::CategoricalCrossentropy()(y_true, softmax(logits))) == Approx(expected).epsilon(1e-5));
}

TEST_CASE("sparse categorical crossentropy with int64, int32 and [batch, 1] labels") {
  // Keras's example: labels [1, 2] vs [[0.05, 0.95, 0], [0.1, 0.8, 0.1]] -> 1.176939
  const Tensor p = mat({0.05f, 0.95f, 0, 0.1f, 0.8f, 0.1f}, 2, 3);
  const losses::SparseCategoricalCrossentropy scce;
  CHECK(value(scce(tensor<std::int64_t>({1, 2}, {2}), p)) == Approx(1.176939).epsilon(1e-5));
  CHECK(value(scce(tensor<std::int32_t>({1, 2}, {2}), p)) == Approx(1.176939).epsilon(1e-5));
  CHECK(value(scce(tensor<std::int64_t>({1, 2}, {2, 1}), p)) == Approx(1.176939).epsilon(1e-5));
  CHECK(value(scce(tensor<float>({1, 2}, {2}), p)) == Approx(1.176939).epsilon(1e-5));
  // per example: -log 0.95, -log 0.1
  const auto per = losses::sparse_categorical_crossentropy(tensor<std::int64_t>({1, 2}, {2}), p).to_vector<float>();
  CHECK(per[0] == Approx(-std::log(0.95)));
  CHECK(per[1] == Approx(-std::log(0.1)));
  // a zero probability is clipped to 1e-7: label 2 of row 0 gives -log(1e-7) = 16.118
  CHECK(value(scce(tensor<std::int64_t>({2}, {1}), mat({0.05f, 0.95f, 0}, 1, 3))) ==
        Approx(-std::log(1e-7)).epsilon(1e-4));
  // unnormalised probabilities are renormalised first, as categorical_crossentropy and Keras:
  // [0.4, 0.6, 1.0] with label 2 -> -log(1.0 / 2.0) = 0.693147 (sigmoid outputs, say)
  const Tensor q = mat({0.4f, 0.6f, 1.0f}, 1, 3);
  CHECK(value(scce(tensor<std::int64_t>({2}, {1}), q)) == Approx(std::log(2.0)).epsilon(1e-6));
  CHECK(value(scce(tensor<std::int64_t>({2}, {1}), q)) ==
        Approx(value(losses::CategoricalCrossentropy()(mat({0, 0, 1}, 1, 3), q))).epsilon(1e-6));
  // clipped before renormalising, as Keras's sparse loss: a row of zeros gives log(3), not NaN
  CHECK(value(scce(tensor<std::int64_t>({1}, {1}), mat({0, 0, 0}, 1, 3))) == Approx(std::log(3.0)).epsilon(1e-6));

  // logits [[2, 1, 0.1], [0.5, 2.5, 0.3]], labels [0, 1]:
  // (lse(2, 1, 0.1) - 2 + lse(0.5, 2.5, 0.3) - 2.5) / 2 = (0.417030 + 0.220050) / 2 = 0.318540
  const Tensor logits = mat({2, 1, 0.1f, 0.5f, 2.5f, 0.3f}, 2, 3);
  const Tensor labels = tensor<std::int64_t>({0, 1}, {2});
  CHECK(value(losses::SparseCategoricalCrossentropy(true)(labels, logits)) == Approx(0.318540).epsilon(1e-5));
  CHECK(value(scce(labels, softmax(logits))) == Approx(0.318540).epsilon(1e-5));

  // errors name the loss: a label out of range, labels of the wrong shape
  CHECK_THROWS_AS(scce(tensor<std::int64_t>({1, 3}, {2}), p), IndexError);
  CHECK_THROWS_WITH(scce(tensor<std::int64_t>({1, 3}, {2}), p), Catch::Contains("sparse_categorical_crossentropy"));
  CHECK_THROWS_AS(scce(tensor<std::int64_t>({1, 2, 0}, {3}), p), ShapeError);
}

TEST_CASE("the gradient of sparse categorical crossentropy from logits is (softmax - one_hot) / batch") {
  Tensor logits = mat({2, 1, 0.1f, 0.5f, 2.5f, 0.3f}, 2, 3);
  GradientTape tape;
  tape.watch(logits);
  const Tensor loss = losses::SparseCategoricalCrossentropy(true)(tensor<std::int64_t>({0, 1}, {2}), logits);
  const auto g = tape.gradient(loss, logits).to_vector<float>();
  const std::vector<double> expected{-0.170499, 0.121216, 0.049283, 0.054302, -0.098760, 0.044459};
  for (std::size_t i = 0; i < g.size(); ++i) CHECK(g[i] == Approx(expected[i]).margin(1e-5));
}

TEST_CASE("losses from logits are stable at logits of +-1000") {
  const Tensor logits = mat({1000, 0, -1000, -1000, 1000, 0}, 2, 3);
  const Tensor labels = tensor<std::int64_t>({0, 0}, {2});
  // row 0: label is the max -> 0; row 1: lse = 1000, minus -1000 -> 2000
  const auto per = losses::sparse_categorical_crossentropy(labels, logits, true).to_vector<float>();
  CHECK(per[0] == Approx(0).margin(1e-6));
  CHECK(per[1] == Approx(2000));
  const auto cce = losses::categorical_crossentropy(one_hot(labels, 3), logits, true).to_vector<float>();
  REQUIRE(cce.size() == 2);
  CHECK(cce[0] == Approx(0).margin(1e-6));
  CHECK(cce[1] == Approx(2000));

  // binary: x = 1000 with z = 0 costs 1000; with z = 1 costs 0; x = -1000 with z = 1 costs 1000
  const auto bce = losses::binary_crossentropy(tensor<float>({0, 1, 1}, {3}), tensor<float>({1000, 1000, -1000}, {3}),
                                               true)
                       .to_vector<float>();
  CHECK(bce[0] == Approx(1000));
  CHECK(bce[1] == Approx(0).margin(1e-6));
  CHECK(bce[2] == Approx(1000));

  // the gradients are finite too: softmax - one_hot, sigmoid - z
  Tensor x = logits.clone();
  GradientTape tape(true);
  tape.watch(x);
  const Tensor l1 = losses::SparseCategoricalCrossentropy(true)(labels, x);
  const Tensor l2 = losses::BinaryCrossentropy(true)(zeros({2, 3}), x);
  for (const Tensor& g : {tape.gradient(l1, x), tape.gradient(l2, x)}) {
    for (float v : g.to_vector<float>()) CHECK(std::isfinite(v));
  }
  const auto g1 = tape.gradient(l1, x).to_vector<float>();
  CHECK(g1[0] == Approx(0).margin(1e-6));   // softmax 1 - one_hot 1
  CHECK(g1[3] == Approx(-0.5).margin(1e-6));  // softmax 0 - one_hot 1, over batch 2
  CHECK(g1[4] == Approx(0.5).margin(1e-6));
}

TEST_CASE("losses::get by Keras name") {
  CHECK(losses::get("sparse_categorical_crossentropy")->name() == "sparse_categorical_crossentropy");
  CHECK(losses::get("mse")->name() == "mean_squared_error");
  CHECK(dynamic_cast<losses::BinaryCrossentropy*>(losses::get("binary_crossentropy").get()) != nullptr);
  CHECK(dynamic_cast<losses::CategoricalCrossentropy*>(losses::get("categorical_crossentropy").get()) != nullptr);
  CHECK(losses::get("hinge")->name() == "hinge");  // the rest: test_losses_keras
  CHECK_THROWS_AS(losses::get("focal_crossentropy"), ValueError);
  CHECK_THROWS_WITH(losses::get("focal_crossentropy"), Catch::Contains("focal_crossentropy"));
}

TEST_CASE("metrics accumulate over batches and reset") {
  metrics::SparseCategoricalAccuracy acc;
  CHECK(acc.result() == 0);
  // argmax [1, 0, 2] vs labels [1, 1, 2]: 2 of 3
  acc.update_state(tensor<std::int64_t>({1, 1, 2}, {3}), mat({0.1f, 0.8f, 0.1f, 0.6f, 0.3f, 0.1f, 0, 0, 1}, 3, 3));
  CHECK(acc.result() == Approx(2.0 / 3.0));
  // int32 labels [batch, 1]: 1 of 1 -> 3 of 4 so far
  acc.update_state(tensor<std::int32_t>({0}, {1, 1}), mat({5, 1, 1}, 1, 3));
  CHECK(acc.result() == Approx(0.75));
  acc.reset_state();
  CHECK(acc.result() == 0);
  CHECK(acc.name() == "sparse_categorical_accuracy");

  metrics::CategoricalAccuracy cat;
  cat.update_state(mat({0, 1, 1, 0}, 2, 2), mat({0.2f, 0.8f, 0.3f, 0.7f}, 2, 2));
  CHECK(cat.result() == Approx(0.5));

  metrics::Accuracy exact;
  exact.update_state(tensor<float>({1, 2, 3, 4}, {4}), tensor<float>({1, 2, 0, 4}, {4}));
  CHECK(exact.result() == Approx(0.75));

  metrics::BinaryAccuracy bin;
  bin.update_state(tensor<float>({1, 0, 1, 0}, {4}), tensor<float>({0.9f, 0.2f, 0.4f, 0.7f}, {4}));
  CHECK(bin.result() == Approx(0.5));

  metrics::Mean m("loss");
  m.update_state(tensor<float>({1, 2, 3}, {3}));
  CHECK(m.result() == Approx(2));
  m.update_state(10.0, 2.0);  // (6 + 20) / 5
  CHECK(m.result() == Approx(26.0 / 5.0));
  m.reset_state();
  m.update_state(tensor<float>({1, 3}, {2}), tensor<float>({3, 1}, {2}));  // (3 + 3) / 4
  CHECK(m.result() == Approx(1.5));
}

TEST_CASE("metrics::get(\"accuracy\") picks the accuracy from the first batch's shapes, as Keras") {
  // Keras's compile_utils.get_metric: binary when y_pred.shape[-1] == 1; sparse categorical when
  // rank(y_true) < rank(y_pred) or (y_true.shape[-1] == 1 and y_pred.shape[-1] > 1); else
  // categorical. The loss plays no part.
  auto resolved = [](const std::shared_ptr<metrics::Metric>& m) {
    const auto* a = dynamic_cast<const metrics::AutoAccuracy*>(m.get());
    REQUIRE(a != nullptr);
    return std::string(a->resolved());
  };

  // int labels [3] against [3, 3] scores: argmax [1, 0, 2] vs [1, 1, 2], 2 of 3
  const auto sparse = metrics::get("accuracy");
  CHECK(sparse->name() == "accuracy");
  CHECK(resolved(sparse).empty());  // nothing decided before the first batch
  sparse->update_state(tensor<std::int64_t>({1, 1, 2}, {3}), mat({0.1f, 0.8f, 0.1f, 0.6f, 0.3f, 0.1f, 0, 0, 1}, 3, 3));
  CHECK(resolved(sparse) == "sparse_categorical_accuracy");
  CHECK(sparse->result() == Approx(2.0 / 3.0));

  // labels [2, 1] against [2, 3]: argmax [0, 0] vs [0, 2], 1 of 2
  const auto sparse_column = metrics::get("acc");
  CHECK(sparse_column->name() == "acc");
  sparse_column->update_state(tensor<std::int32_t>({0, 2}, {2, 1}), mat({5, 1, 1, 1, 1, 0}, 2, 3));
  CHECK(resolved(sparse_column) == "sparse_categorical_accuracy");
  CHECK(sparse_column->result() == Approx(0.5));

  // one-hot [3, 3] against softmax-like [3, 3] (what compile("rmsprop", "mse", {"accuracy"})
  // sees): argmax [0, 1, 0] vs [0, 1, 2], 2 of 3, where exact equality would give 0
  const auto categorical = metrics::get("accuracy");
  categorical->update_state(eye(3), mat({0.7f, 0.2f, 0.1f, 0.1f, 0.8f, 0.1f, 0.5f, 0.3f, 0.2f}, 3, 3));
  CHECK(resolved(categorical) == "categorical_accuracy");
  CHECK(categorical->result() == Approx(2.0 / 3.0));

  // y_pred [4, 1]: (y_pred > 0.5) == y_true for y_true [4] and [4, 1], 2 of 4 each
  for (const Shape& true_shape : {Shape{4}, Shape{4, 1}}) {
    const auto binary = metrics::get("accuracy");
    binary->update_state(tensor<float>({1, 0, 1, 0}, true_shape), mat({0.9f, 0.2f, 0.4f, 0.7f}, 4, 1));
    CHECK(resolved(binary) == "binary_accuracy");
    CHECK(binary->result() == Approx(0.5));
    // the choice is made once, as Keras builds the metric once: reset_state keeps it
    binary->reset_state();
    CHECK(resolved(binary) == "binary_accuracy");
    CHECK(binary->result() == 0);
  }

  const auto scalar_pred = metrics::get("accuracy");
  CHECK_THROWS_WITH(scalar_pred->update_state(scalar(1.0), scalar(1.0)),
                    "accuracy: y_pred must have a class axis, got a scalar");
  CHECK(metrics::get("sparse_categorical_accuracy")->name() == "sparse_categorical_accuracy");
  CHECK(dynamic_cast<metrics::CategoricalAccuracy*>(metrics::get("categorical_accuracy").get()));
  CHECK(dynamic_cast<metrics::BinaryAccuracy*>(metrics::get("binary_accuracy").get()));
  CHECK_THROWS_AS(metrics::get("f1"), ValueError);
}
