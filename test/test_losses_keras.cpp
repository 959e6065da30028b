// The losses and metrics beyond the cross-entropies (Huber, log-cosh, KL divergence, Poisson,
// cosine similarity, hinges, MSLE, MAPE, label smoothing; RMSE, top-k, precision, recall, AUC)
// against the real Keras 3 in float64 (golden/losses_metrics_golden.hpp), float64 gradchecks,
// names, errors, and use in compile / fit.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "golden/losses_metrics_golden.hpp"
#include "layer_test_util.hpp"
#include "tapeflow/tapeflow.hpp"

using namespace tapeflow;
namespace g = losses_metrics_golden;
using Catch::Matchers::Contains;

using lt::devices;

namespace {

template <std::size_t R, std::size_t C>
Tensor mat(const double (&rows)[R][C], DType dtype = kFloat64) {
  std::vector<double> v;
  for (const auto& r : rows) v.insert(v.end(), r, r + C);
  return tensor(v, {static_cast<std::int64_t>(R), static_cast<std::int64_t>(C)}, kFloat64).astype(dtype);
}

using LossFn = std::function<Tensor(const Tensor&, const Tensor&)>;

struct LossCase {
  const char* name;
  LossFn f;
  Tensor t, p;
};

std::vector<LossCase> loss_cases(DType dt) {
  const Tensor one_hot = tensor({0.1, 0.6, 0.1, 0.1, 0.1, 0.0, 0.0, 1.0, 0.0, 0.0, 0.2, 0.2, 0.2, 0.2, 0.2,  //
                                 0.0, 0.0, 0.0, 1.0, 0.0},
                                {4, 5}, kFloat64)
                             .astype(dt);
  using namespace losses;
  return {
      {"huber", [](const Tensor& t, const Tensor& p) { return huber(t, p); }, mat(g::kRegT, dt), mat(g::kRegP, dt)},
      {"huber_delta_0_5", [](const Tensor& t, const Tensor& p) { return huber(t, p, 0.5); }, mat(g::kRegT, dt),
       mat(g::kRegP, dt)},
      {"log_cosh", log_cosh, mat(g::kRegT, dt), mat(g::kRegP, dt)},
      {"msle", mean_squared_logarithmic_error, mat(g::kRegT, dt), mat(g::kRegP, dt)},
      {"mape", mean_absolute_percentage_error, mat(g::kRegT, dt), mat(g::kRegP, dt)},
      {"kl_divergence", kl_divergence, mat(g::kDistT, dt), mat(g::kDistP, dt)},
      {"cosine_similarity", cosine_similarity, mat(g::kDistT, dt), mat(g::kDistP, dt)},
      {"poisson", poisson, mat(g::kCountsT, dt), mat(g::kRatesP, dt)},
      {"hinge_pm1", hinge, mat(g::kHingeT, dt), mat(g::kScores, dt)},
      {"hinge_01", hinge, mat(g::kBinT, dt), mat(g::kScores, dt)},
      {"squared_hinge_01", squared_hinge, mat(g::kBinT, dt), mat(g::kScores, dt)},
      {"bce_smooth_0_2", [](const Tensor& t, const Tensor& p) { return binary_crossentropy(t, p, false, 0.2); },
       mat(g::kBinT, dt), mat(g::kBinP, dt)},
      {"bce_logits_smooth_0_2", [](const Tensor& t, const Tensor& p) { return binary_crossentropy(t, p, true, 0.2); },
       mat(g::kBinT, dt), mat(g::kScores, dt)},
      {"cce_smooth_0_1", [](const Tensor& t, const Tensor& p) { return categorical_crossentropy(t, p, false, 0.1); },
       one_hot, mat(g::kDistP, dt)},
      {"cce_logits_smooth_0_1",
       [](const Tensor& t, const Tensor& p) { return categorical_crossentropy(t, p, true, 0.1); }, one_hot,
       mat(g::kDistP, dt) * 3.0},
      {"categorical_hinge", categorical_hinge, one_hot, mat(g::kDistP, dt) * 2.0},
  };
}

}  // namespace

TEST_CASE("losses: per-example values match Keras 3 (float64 and float32, every device)", "[losses]") {
  if (!cuda::is_available()) WARN("CUDA half skipped: " << cuda::status());
  REQUIRE(loss_cases(kFloat64).size() == std::size(g::kLosses));
  for (const Device& d : devices()) {
    for (DType dt : {kFloat64, kFloat32}) {
      const auto cases = loss_cases(dt);
      for (std::size_t i = 0; i < cases.size(); ++i) {
        const auto& c = cases[i];
        INFO(c.name << " " << dtype_name(dt) << " on " << d.str());
        REQUIRE(std::string(c.name) == g::kLosses[i].name);
        const Tensor v = c.f(c.t.to(d), c.p.to(d));
        CHECK(v.shape() == Shape{4});
        CHECK(v.dtype() == dt);
        CHECK(v.device() == d);
        const auto got = v.astype(kFloat64).to_vector<double>();
        for (int k = 0; k < 4; ++k) {
          double want = g::kLosses[i].per_example[k];
          // Keras subtracts log(2) as a float32 constant (ops.log(2.0)), 1.9e-9 off; here it is exact
          if (std::string(c.name) == "log_cosh") want += double(float(std::log(2.0))) - std::log(2.0);
          INFO("example " << k << ": " << got[k] << " want " << want);
          CHECK(std::abs(got[k] - want) <= (dt == kFloat64 ? 1e-12 : 1e-5) * (1 + std::abs(want)));
        }
      }
    }
  }
}

TEST_CASE("losses: float64 gradcheck of every new loss in y_pred", "[losses][gradcheck]") {
  for (const auto& c : loss_cases(kFloat64)) {
    INFO(c.name);
    // off the kinks: MAPE's |e| (an error of 0 in the fixture), hinge's 1 - t p
    const Tensor p = c.p + 0.0137;
    const LossFn f = c.f;
    const Tensor t = c.t;
    const auto r = gradcheck([&](const std::vector<Tensor>& in) { return f(t, in[0]); }, {p});
    INFO(r.message);
    CHECK(r.ok);
  }
  // cosine similarity of a zero vector: value 0 and a finite (zero) gradient, as Keras's
  const Tensor z = zeros({1, 3}, kFloat64);
  GradientTape tape;
  tape.watch(z);
  const Tensor v = losses::cosine_similarity(tensor({1.0, 2.0, 3.0}, {1, 3}, kFloat64), z);
  CHECK(v.item<double>() == 0.0);
  for (double x : tape.gradient(v, z).to_vector<double>()) CHECK(std::isfinite(x));
  // binary cross-entropy from logits at a logit of exactly 0: sigmoid(0) - z (TensorFlow's)
  {
    const Tensor x = tensor({0.0, 0.0}, {2, 1}, kFloat64);
    GradientTape t;
    t.watch(x);
    const auto gx = t.gradient(sum(losses::binary_crossentropy(tensor({0.0, 1.0}, {2, 1}, kFloat64), x, true)), x)
                        .to_vector<double>();
    CHECK(gx == std::vector<double>{0.5, -0.5});
  }
  // hinge at a margin of exactly 1 passes the gradient (Keras's maximum), relu's would not
  {
    const Tensor p = tensor({1.0}, {1, 1}, kFloat64);
    GradientTape t;
    t.watch(p);
    CHECK(t.gradient(losses::hinge(tensor({1.0}, {1, 1}, kFloat64), p), p).item<double>() == -1.0);
  }
  // log-cosh of a huge error does not overflow: |e| - log 2
  CHECK(losses::log_cosh(tensor({0.0}, {1, 1}, kFloat64), tensor({1000.0}, {1, 1}, kFloat64)).item<double>() ==
        Approx(1000.0 - std::log(2.0)).epsilon(1e-15));
}

TEST_CASE("losses: classes, names and errors", "[losses]") {
  const Tensor t = mat(g::kRegT), p = mat(g::kRegP);
  for (const char* name : {"huber", "log_cosh", "logcosh", "kl_divergence", "kld", "poisson", "cosine_similarity",
                           "hinge", "squared_hinge", "mean_squared_logarithmic_error", "msle",
                           "mean_absolute_percentage_error", "mape", "mse", "binary_crossentropy",
                           "categorical_hinge"}) {
    INFO(name);
    const auto loss = losses::get(name);
    REQUIRE(loss != nullptr);
    // the class's value is the mean of its per-example values
    const Tensor tt = std::string(name) == "binary_crossentropy" ? mat(g::kBinT) : t;
    const Tensor pp = std::string(name) == "binary_crossentropy" ? mat(g::kBinP) : abs(p) + 0.1;
    CHECK((*loss)(tt, pp).item<double>() == Approx(mean(loss->call(tt, pp)).item<double>()).epsilon(1e-15));
  }
  CHECK(losses::get("kld")->name() == "kl_divergence");
  CHECK(losses::get("msle")->name() == "mean_squared_logarithmic_error");
  CHECK(losses::Huber(0.5).call(t, p).to_vector<double>()[0] == g::kLosses[1].per_example[0]);
  CHECK_THROWS_WITH(losses::get("focal"), Contains("focal") && Contains("huber") && Contains("mape"));
  CHECK_THROWS_AS(losses::Huber(0), ValueError);
  CHECK_THROWS_AS(losses::huber(t, p, -1), ValueError);
  CHECK_THROWS_AS(losses::BinaryCrossentropy(false, 1.5), ValueError);
  CHECK_THROWS_WITH(losses::categorical_crossentropy(t, p, false, -0.1), Contains("label_smoothing"));
  CHECK_THROWS_WITH(losses::poisson(t, mat(g::kDistP)), Contains("poisson") && Contains("[4, 3]") &&
                                                             Contains("[4, 5]"));
  CHECK_THROWS_AS(losses::hinge(t, tensor({1, 2}, {2})), DTypeError);
  CHECK_THROWS_AS(losses::LossFunction("mine", nullptr), ValueError);
  // a user's own function under its own name
  const losses::LossFunction mine("mine", [](const Tensor& a, const Tensor& b) { return sum(abs(a - b), {-1}); });
  CHECK(mine.name() == "mine");
  CHECK(mine(t, p).item<double>() == Approx(sum(abs(t - p)).item<double>() / 4).epsilon(1e-15));
}

TEST_CASE("metrics: RMSE, precision, recall, AUC, top-k, the loss-like metrics, counts, R2, F-scores and IoUs match Keras 3 over two batches", "[metrics]") {
  using namespace metrics;
  const Tensor sparse = tensor<std::int64_t>({g::kTopKLabels[0], g::kTopKLabels[1], g::kTopKLabels[2],
                                              g::kTopKLabels[3]},
                                             {4, 1});
  const Tensor dense = one_hot(sparse.squeeze({-1}), 5, kFloat64);
  struct Case {
    const char* name;
    std::shared_ptr<Metric> m;
    Tensor t, p;
    Tensor w = Tensor();  // sample weights, split as the batches
    double tol64 = 1e-12;  // Keras's IoUs are float32 results
  };
  const Tensor sw = tensor(std::vector<double>(g::kSampleWeight, g::kSampleWeight + 4), {4}, kFloat64);
  const auto ids = [](const long long (&rows)[4][3]) {
    std::vector<std::int64_t> v(12);
    for (std::size_t i = 0; i < 12; ++i) v[i] = rows[i / 3][i % 3];
    return tensor<std::int64_t>(v, {4, 3});
  };
  const Tensor seg_t = ids(g::kSegT), seg_p = ids(g::kSegP), seg_w = ids(g::kSegW).astype(kFloat64);
  const Tensor iou_labels = tensor<std::int64_t>({g::kIoULabels[0], g::kIoULabels[1], g::kIoULabels[2], g::kIoULabels[3]}, {4});
  const Tensor cce_t = tensor({0.1, 0.6, 0.1, 0.1, 0.1, 0.0, 0.0, 1.0, 0.0, 0.0, 0.2, 0.2, 0.2, 0.2, 0.2,  //
                               0.0, 0.0, 0.0, 1.0, 0.0},
                              {4, 5}, kFloat64);
  IoUOptions ignore_2;
  ignore_2.ignore_class = 2;
  IoUOptions dense_pred;
  dense_pred.sparse_y_pred = false;
  const std::vector<Case> cases = {
      {"root_mean_squared_error", std::make_shared<RootMeanSquaredError>(), mat(g::kRegT), mat(g::kRegP)},
      {"precision", std::make_shared<Precision>(), mat(g::kBinT), mat(g::kBinP)},
      {"recall", std::make_shared<Recall>(), mat(g::kBinT), mat(g::kBinP)},
      {"precision_0_3", std::make_shared<Precision>(0.3), mat(g::kBinT), mat(g::kBinP)},
      {"recall_0_3", std::make_shared<Recall>(0.3), mat(g::kBinT), mat(g::kBinP)},
      {"auc_roc", std::make_shared<AUC>(), mat(g::kBinT), mat(g::kBinP)},
      {"auc_roc_11", std::make_shared<AUC>(11), mat(g::kBinT), mat(g::kBinP)},
      {"auc_pr", std::make_shared<AUC>(200, AUC::Curve::PR), mat(g::kBinT), mat(g::kBinP)},
      {"auc_pr_11", std::make_shared<AUC>(11, AUC::Curve::PR), mat(g::kBinT), mat(g::kBinP)},
      {"sparse_top_2", std::make_shared<SparseTopKCategoricalAccuracy>(2), sparse, mat(g::kTopKP)},
      {"sparse_top_1", std::make_shared<SparseTopKCategoricalAccuracy>(1), sparse, mat(g::kTopKP)},
      {"top_2", std::make_shared<TopKCategoricalAccuracy>(2), dense, mat(g::kTopKP)},
      {"m_binary_crossentropy", std::make_shared<BinaryCrossentropy>(), mat(g::kBinT), mat(g::kBinP)},
      {"m_binary_crossentropy_logits_smooth", std::make_shared<BinaryCrossentropy>("bce", true, 0.2), mat(g::kBinT),
       mat(g::kScores)},
      {"m_categorical_crossentropy", std::make_shared<CategoricalCrossentropy>(), cce_t, mat(g::kDistP)},
      {"m_categorical_crossentropy_logits_smooth", std::make_shared<CategoricalCrossentropy>("cce", true, 0.1), cce_t,
       mat(g::kDistP) * 3.0},
      {"m_sparse_categorical_crossentropy", std::make_shared<SparseCategoricalCrossentropy>(), sparse.squeeze({-1}),
       mat(g::kTopKP)},
      {"m_sparse_categorical_crossentropy_logits", std::make_shared<SparseCategoricalCrossentropy>("scce", true),
       sparse.squeeze({-1}), mat(g::kTopKP)},
      {"m_kl_divergence", std::make_shared<KLDivergence>(), mat(g::kDistT), mat(g::kDistP)},
      {"m_poisson", std::make_shared<Poisson>(), mat(g::kCountsT), mat(g::kRatesP)},
      {"m_cosine_similarity", std::make_shared<CosineSimilarity>(), mat(g::kDistT), mat(g::kDistP)},
      {"m_mape", std::make_shared<MeanAbsolutePercentageError>(), mat(g::kRegT), mat(g::kRegP)},
      {"m_msle", std::make_shared<MeanSquaredLogarithmicError>(), mat(g::kRegT), mat(g::kRegP)},
      {"m_logcosh", std::make_shared<LogCoshError>(), mat(g::kRegT), mat(g::kRegP), Tensor(), 1e-8},  // Keras's float32 log 2
      {"m_hinge", std::make_shared<Hinge>(), mat(g::kBinT), mat(g::kScores)},
      {"m_squared_hinge", std::make_shared<SquaredHinge>(), mat(g::kHingeT), mat(g::kScores)},
      {"m_categorical_hinge", std::make_shared<CategoricalHinge>(), cce_t, mat(g::kDistP)},
      {"true_positives", std::make_shared<TruePositives>(), mat(g::kBinT), mat(g::kBinP)},
      {"false_positives", std::make_shared<FalsePositives>(), mat(g::kBinT), mat(g::kBinP)},
      {"true_negatives_0_3", std::make_shared<TrueNegatives>(0.3), mat(g::kBinT), mat(g::kBinP)},
      {"false_negatives", std::make_shared<FalseNegatives>(), mat(g::kBinT), mat(g::kBinP)},
      {"r2_uniform", std::make_shared<R2Score>(), mat(g::kRegT), mat(g::kRegP)},
      {"r2_variance_weighted", std::make_shared<R2Score>("variance_weighted_average"), mat(g::kRegT), mat(g::kRegP)},
      {"r2_adjusted", std::make_shared<R2Score>("uniform_average", 2), mat(g::kRegT), mat(g::kRegP)},
      {"r2_weighted", std::make_shared<R2Score>(), mat(g::kRegT), mat(g::kRegP), sw},
      {"f1_macro_argmax", std::make_shared<F1Score>("macro"), mat(g::kBinT), mat(g::kBinP)},
      {"f1_micro_0_5", std::make_shared<F1Score>("micro", 0.5), mat(g::kBinT), mat(g::kBinP)},
      {"fbeta_weighted_2_0_4", std::make_shared<FBetaScore>("weighted", 2.0, 0.4), mat(g::kBinT), mat(g::kBinP)},
      {"f1_macro_weighted", std::make_shared<F1Score>("macro", 0.5), mat(g::kBinT), mat(g::kBinP), sw},
      {"mean_iou_sparse", std::make_shared<MeanIoU>(3), seg_t, seg_p, Tensor(), 1e-6},
      {"mean_iou_weighted", std::make_shared<MeanIoU>(3), seg_t, seg_p, seg_w, 1e-6},
      {"mean_iou_ignore_2", std::make_shared<MeanIoU>(3, ignore_2), seg_t, seg_p, Tensor(), 1e-6},
      {"mean_iou_dense_pred", std::make_shared<MeanIoU>(5, dense_pred), iou_labels, mat(g::kTopKP), Tensor(), 1e-6},
      {"iou_1_2", std::make_shared<IoU>(3, std::vector<std::int64_t>{1, 2}), seg_t, seg_p, Tensor(), 1e-6},
      {"binary_iou", std::make_shared<BinaryIoU>(), mat(g::kBinT), mat(g::kBinP), Tensor(), 1e-6},
      {"binary_iou_1_0_3", std::make_shared<BinaryIoU>(std::vector<std::int64_t>{1}, 0.3), mat(g::kBinT),
       mat(g::kBinP), Tensor(), 1e-6},
  };
  REQUIRE(cases.size() == std::size(g::kMetrics));
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    INFO(c.name);
    REQUIRE(std::string(c.name) == g::kMetrics[i].name);
    for (DType dt : {kFloat64, kFloat32}) {
      INFO(dtype_name(dt));
      c.m->reset_state();
      CHECK(c.m->result() == 0.0);
      const auto half = [&](const Tensor& x, std::int64_t k) { return x.defined() ? x(Slice(2 * k, 2 * k + 2)) : x; };
      c.m->update_state(c.t(Slice(0, 2)), c.p(Slice(0, 2)).astype(dt), half(c.w, 0));
      c.m->update_state(c.t(Slice(2, 4)), c.p(Slice(2, 4)).astype(dt), half(c.w, 1));
      // float32 scores: the thresholds compare against the float32 values, as Keras's do
      CHECK(c.m->result() == Approx(g::kMetrics[i].result).epsilon(dt == kFloat64 ? c.tol64 : 1e-6));
    }
  }
}

TEST_CASE("metrics: edge cases and errors", "[metrics]") {
  using namespace metrics;
  Precision prec;
  prec.update_state(tensor({1.0, 0.0}, {2, 1}, kFloat64), tensor({0.1, 0.2}, {2, 1}, kFloat64));
  CHECK(prec.result() == 0.0);  // nothing predicted positive: 0, not NaN
  CHECK(prec.false_negatives() == 1);
  CHECK(prec.true_negatives() == 1);
  Recall rec;
  rec.update_state(tensor({0.0}, {1, 1}, kFloat64), tensor({0.9}, {1, 1}, kFloat64));
  CHECK(rec.result() == 0.0);
  // a perfect ranking has AUC 1 (ROC and PR), a reversed one 0 (ROC)
  AUC roc, pr(200, AUC::Curve::PR), bad;
  const Tensor labels = tensor({0.0, 0.0, 1.0, 1.0}, {4, 1}, kFloat64);
  const Tensor scores = tensor({0.1, 0.3, 0.7, 0.9}, {4, 1}, kFloat64);
  roc.update_state(labels, scores);
  pr.update_state(labels, scores);
  bad.update_state(labels, 1.0 - scores);
  CHECK(roc.result() == Approx(1.0).epsilon(1e-12));
  CHECK(pr.result() == Approx(1.0).epsilon(1e-12));
  CHECK(bad.result() == Approx(0.0).margin(1e-12));
  CHECK(roc.thresholds().size() == 200);
  CHECK(roc.thresholds().front() < 0);
  CHECK(roc.thresholds().back() > 1);
  // scores outside [0, 1] are clipped, as Keras's; from_logits applies the sigmoid first
  AUC clipped, logits(200, AUC::Curve::ROC, "auc", true);
  clipped.update_state(labels, tensor({-0.5, 0.3, 0.7, 1.5}, {4, 1}, kFloat64));
  CHECK(clipped.result() == Approx(1.0).epsilon(1e-12));
  logits.update_state(labels, tensor({-3.0, -0.2, 0.4, 5.0}, {4, 1}, kFloat64));
  CHECK(logits.result() == Approx(1.0).epsilon(1e-12));
  // Keras's buckets, ceil(p (n - 1)) - 1 in float32: 0.90000004f and 0.9f share a bucket, so a
  // positive scored 0.90000004f does not rank above a negative at 0.9f (Keras: 0.5)
  AUC eleven(11);
  eleven.update_state(tensor({1.0, 0.0}, {2}, kFloat64), tensor({0.90000004f, 0.9f}));
  CHECK(eleven.result() == Approx(0.5).epsilon(1e-12));
  // a NaN score counts below every threshold
  AUC with_nan;
  with_nan.update_state(tensor({1.0, 0.0}, {2}, kFloat64), tensor({std::nan(""), 0.5}, {2}, kFloat64));
  CHECK(std::isfinite(with_nan.result()));
  // [batch, 1] labels with [batch] scores, as Keras accepts them
  Precision p1;
  p1.update_state(tensor({1.0, 0.0}, {2, 1}, kFloat64), tensor({0.9, 0.2}, {2}, kFloat64));
  CHECK(p1.result() == 1.0);
  CHECK_THROWS_AS(AUC(1), ValueError);
  CHECK_THROWS_AS(Precision(1.5), ValueError);
  CHECK_THROWS_AS(SparseTopKCategoricalAccuracy(0), ValueError);
  // a NaN score makes its row a miss, as TensorFlow's in_top_k
  SparseTopKCategoricalAccuracy top;
  top.update_state(tensor<std::int64_t>({0, 1}, {2}), tensor({0.9, 0.1, std::nan(""), 0.5}, {2, 2}, kFloat64));
  CHECK(top.result() == 0.5);
  CHECK_THROWS_AS(top.update_state(tensor<std::int64_t>({7}, {1}), tensor({0.1, 0.9}, {1, 2}, kFloat64)), IndexError);
  CHECK_THROWS_AS(top.update_state(tensor<std::int64_t>({0, 1}, {2}), tensor({0.1, 0.9}, {1, 2}, kFloat64)),
                  ShapeError);
  RootMeanSquaredError rmse;
  rmse.update_state(tensor({0.0, 0.0}, {1, 2}, kFloat64), tensor({3.0, 4.0}, {1, 2}, kFloat64));
  CHECK(rmse.result() == Approx(std::sqrt(12.5)).epsilon(1e-15));
  // every example weighs the same, whatever its width (Keras's Mean of per-example means)
  rmse.reset_state();
  rmse.update_state(tensor({0.0, 0.0}, {1, 2}, kFloat64), tensor({2.0, 2.0}, {1, 2}, kFloat64));  // 4
  rmse.update_state(tensor({0.0, 0.0, 0.0}, {1, 3}, kFloat64), tensor({0.0, 0.0, 0.0}, {1, 3}, kFloat64));  // 0
  CHECK(rmse.result() == Approx(std::sqrt(2.0)).epsilon(1e-15));
  rmse.reset_state();
  CHECK(rmse.result() == 0.0);
  for (const char* n : {"root_mean_squared_error", "precision", "recall", "auc", "top_k_categorical_accuracy",
                        "sparse_top_k_categorical_accuracy"}) {
    INFO(n);
    CHECK(metrics::get(n)->name() == n);
  }
  CHECK_THROWS_WITH(metrics::get("f1"), Contains("f1") && Contains("auc") && Contains("f1_score"));
}

TEST_CASE("metrics: the new classes' default names are Keras's, get() names them as asked", "[metrics]") {
  using namespace metrics;
  const std::vector<std::shared_ptr<Metric>> made = {
      std::make_shared<BinaryCrossentropy>(), std::make_shared<CategoricalCrossentropy>(),
      std::make_shared<SparseCategoricalCrossentropy>(), std::make_shared<KLDivergence>(),
      std::make_shared<Poisson>(), std::make_shared<CosineSimilarity>(),
      std::make_shared<MeanAbsolutePercentageError>(), std::make_shared<MeanSquaredLogarithmicError>(),
      std::make_shared<LogCoshError>(), std::make_shared<Hinge>(), std::make_shared<SquaredHinge>(),
      std::make_shared<CategoricalHinge>(), std::make_shared<TruePositives>(), std::make_shared<FalsePositives>(),
      std::make_shared<TrueNegatives>(), std::make_shared<FalseNegatives>(), std::make_shared<R2Score>(),
      std::make_shared<F1Score>(), std::make_shared<FBetaScore>(), std::make_shared<MeanIoU>(2),
      std::make_shared<IoU>(2, std::vector<std::int64_t>{0}), std::make_shared<BinaryIoU>()};
  REQUIRE(made.size() == std::size(g::kDefaultNames));
  for (std::size_t i = 0; i < made.size(); ++i) CHECK(made[i]->name() == g::kDefaultNames[i]);
  for (const char* n : {"binary_crossentropy", "bce", "categorical_crossentropy", "sparse_categorical_crossentropy",
                        "kl_divergence", "poisson", "cosine_similarity", "mape", "msle", "logcosh", "log_cosh_error",
                        "hinge", "squared_hinge", "categorical_hinge", "true_positives", "false_negatives",
                        "r2_score", "f1_score", "fbeta_score", "binary_io_u"}) {
    INFO(n);
    CHECK(metrics::get(n)->name() == n);
  }
}

TEST_CASE("metrics: R2, F-scores and IoUs by hand, and their errors", "[metrics]") {
  using namespace metrics;
  // R2: a perfect fit is 1; predicting the mean is 0; targets that never vary (but errors) give
  // 0 where Keras's inf is replaced; weights of 0 drop examples
  R2Score r2;
  const Tensor y = tensor({1.0, 2.0, 3.0, 4.0}, {4, 1}, kFloat64);
  r2.update_state(y, y);
  CHECK(r2.result() == 1.0);
  r2.reset_state();
  r2.update_state(y, full({4, 1}, 2.5, kFloat64));
  CHECK(r2.result() == Approx(0.0).margin(1e-15));
  r2.reset_state();
  r2.update_state(tensor({1.0, 2.0}, {2}, kFloat64), tensor({1.0, 3.0}, {2}, kFloat64));  // [batch] ys: 1 - 1 / 0.5
  CHECK(r2.result() == Approx(-1.0));
  R2Score constant;
  constant.update_state(full({3, 1}, 2.0, kFloat64), tensor({1.0, 2.0, 3.0}, {3, 1}, kFloat64));
  CHECK(constant.result() == 0.0);
  R2Score weighted;
  weighted.update_state(tensor({1.0, 2.0, 9.0}, {3, 1}, kFloat64), tensor({1.0, 2.0, -5.0}, {3, 1}, kFloat64),
                        tensor({1.0, 1.0, 0.0}, {3}, kFloat64));
  CHECK(weighted.result() == 1.0);
  CHECK_THROWS_WITH(r2.update_state(tensor({1.0, 2.0}, {1, 2}, kFloat64), tensor({1.0, 2.0}, {1, 2}, kFloat64)),
                    Contains("r2_score") && Contains("2 outputs"));
  CHECK_THROWS_WITH(R2Score("mean"), Contains("class_aggregation"));
  CHECK_THROWS_AS(R2Score("uniform_average", -1), ValueError);
  CHECK_THROWS_AS(r2.update_state(zeros({2, 2, 2}), zeros({2, 2, 2})), ShapeError);
  // F1 of 2 classes: class 0 found 1 of 2 (P 1, R 0.5), class 1 found its one but also a
  // false positive (P 0.5, R 1): 2/3 each
  F1Score f1("macro", 0.5);
  f1.update_state(tensor({1.0, 0.0, 1.0, 0.0, 0.0, 1.0}, {3, 2}, kFloat64),
                  tensor({0.9, 0.1, 0.2, 0.7, 0.1, 0.8}, {3, 2}, kFloat64));
  const auto per = f1.per_class();
  REQUIRE(per.size() == 2);
  CHECK(per[0] == Approx(2.0 / 3.0).epsilon(1e-6));
  CHECK(per[1] == Approx(2.0 / 3.0).epsilon(1e-6));
  CHECK(f1.result() == Approx(2.0 / 3.0).epsilon(1e-6));
  F1Score micro("micro", 0.5);  // tp 2, fp 1, fn 1 over both classes
  micro.update_state(tensor({1.0, 0.0, 1.0, 0.0, 0.0, 1.0}, {3, 2}, kFloat64),
                     tensor({0.9, 0.1, 0.2, 0.7, 0.1, 0.8}, {3, 2}, kFloat64));
  CHECK(micro.per_class().size() == 1);
  CHECK(micro.result() == Approx(2.0 / 3.0).epsilon(1e-6));
  CHECK_THROWS_WITH(FBetaScore("none"), Contains("average"));
  CHECK_THROWS_AS(FBetaScore("macro", 0.0), ValueError);
  CHECK_THROWS_AS(F1Score("macro", 1.5), ValueError);
  CHECK_THROWS_AS(f1.update_state(zeros({3}), zeros({3})), ShapeError);
  // IoU: class 0 (tp 1, fp 1, fn 0) 1/2, class 1 (tp 1, fp 0, fn 1) 1/2; ids out of range and
  // the ignored class are left out
  MeanIoU iou(2);
  iou.update_state(tensor<std::int64_t>({0, 1, 1, 7}, {4}), tensor<std::int64_t>({0, 1, 0, 1}, {4}));
  CHECK(iou.result() == Approx(0.5).epsilon(1e-6));
  CHECK(iou.confusion_matrix() == std::vector<double>{1, 0, 1, 1});
  IoUOptions o;
  o.ignore_class = 1;
  MeanIoU ignoring(2, o);
  ignoring.update_state(tensor<std::int64_t>({0, 1, 1}, {3}), tensor<std::int64_t>({0, 1, 0}, {3}));
  CHECK(ignoring.confusion_matrix() == std::vector<double>{1, 0, 0, 0});
  CHECK(ignoring.result() == Approx(1.0).epsilon(1e-6));  // class 1 never occurs: not counted
  CHECK_THROWS_WITH(IoU(3, {3}), Contains("io_u") && Contains("outside [0, 3)"));
  CHECK_THROWS_AS(MeanIoU(0), ValueError);
  CHECK_THROWS_AS(iou.update_state(zeros({3}), zeros({2})), ShapeError);
  // the loss-like metrics average the loss over examples, weighted
  CosineSimilarity cos;
  cos.update_state(tensor({1.0, 0.0, 0.0, 1.0}, {2, 2}, kFloat64), tensor({2.0, 0.0, 1.0, 0.0}, {2, 2}, kFloat64),
                   tensor({3.0, 1.0}, {2}, kFloat64));
  CHECK(cos.result() == Approx(0.75));
  CHECK_THROWS_AS(BinaryCrossentropy("bce", false, 2.0), ValueError);
  CHECK_THROWS_AS(MetricFunction("mine", nullptr), ValueError);
  MetricFunction mine("mine", [](const Tensor& a, const Tensor& b) { return sum(abs(a - b), {-1}); });
  mine.update_state(zeros({2, 2}), ones({2, 2}));
  CHECK(mine.result() == 2.0);
}

TEST_CASE("metrics: fit logs precision, recall and auc per epoch, and val_ ones", "[metrics][fit]") {
  Generator gen(4);
  const Tensor x = uniform({256, 2}, gen, -1.0, 1.0);
  const Tensor y = (sum(x, {1}, true) > 0.0).astype(kFloat32);
  Sequential model(layers::Dense(8, "relu"), layers::Dense(1, "sigmoid"));
  model.set_seed(1);
  model.compile("adam", "binary_crossentropy",
                {"precision", "recall", "auc", "bce", "f1_score", "binary_io_u", "true_positives"});
  FitOptions o;
  o.epochs = 30;
  o.verbose = 0;
  o.validation_data = {x, y};
  const History h = model.fit(x, y, o);
  for (const char* k : {"precision", "recall", "auc", "val_precision", "val_recall", "val_auc"}) {
    INFO(k);
    REQUIRE(h.history.count(k) == 1);
  }
  CHECK(h.history.at("val_auc").back() > 0.97);
  CHECK(h.history.at("precision").back() > 0.85);
  // evaluate gives the same numbers as a fresh metric over the whole set
  const Logs logs = model.evaluate(x, y, 32, 0);
  metrics::AUC auc;
  auc.update_state(y, model.predict(x));
  CHECK(logs.at("auc") == Approx(auc.result()).epsilon(1e-12));
  // the loss-like metric is the loss itself; the F1, IoU and counts agree with fresh metrics
  CHECK(logs.at("bce") == Approx(logs.at("loss")).epsilon(1e-5));
  const Tensor p = model.predict(x);
  metrics::F1Score f1;
  metrics::BinaryIoU iou;
  metrics::TruePositives tp;
  f1.update_state(y, p);
  iou.update_state(y, p);
  tp.update_state(y, p);
  CHECK(logs.at("f1_score") == Approx(f1.result()).epsilon(1e-12));
  CHECK(logs.at("binary_io_u") == Approx(iou.result()).epsilon(1e-12));
  CHECK(logs.at("true_positives") == tp.result());
  // F1Score without a threshold predicts each row's maximum (Keras's rule): with one sigmoid
  // column every example, so its precision is the share of positives
  const double share = mean(y).item<double>();
  CHECK(logs.at("f1_score") == Approx(2 * share / (share + 1)).epsilon(1e-5));
}
