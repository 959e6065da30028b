// The losses and metrics beyond the cross-entropies (Huber, log-cosh, KL divergence, Poisson,
// cosine similarity, hinges, MSLE, MAPE, label smoothing; RMSE, top-k, precision, recall, AUC)
// against the real Keras 3 in float64 (golden/losses_metrics_golden.hpp), float64 gradchecks,
// names, errors, and use in compile / fit.
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "golden/loss_reduction_golden.hpp"
#include "golden/losses_metrics_golden.hpp"
#include "golden/more_losses_golden.hpp"
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

// ---------------------------------------------------------------- focal, Dice, Tversky, CTC
// against Keras 3.15 (golden/more_losses_golden.hpp)

namespace {

namespace mg = more_losses_golden;

template <std::size_t N>
Tensor from(const double (&v)[N], const Shape& shape, DType dtype = kFloat64) {
  return tensor(std::vector<double>(v, v + N), shape, kFloat64).astype(dtype);
}
template <std::size_t N>
Tensor ints(const long long (&v)[N], const Shape& shape) {
  return tensor(std::vector<std::int64_t>(v, v + N), shape);
}

struct MoreCase {
  const char* name;
  LossFn f;
  Tensor t, p;
};

std::vector<MoreCase> focal_cases(DType dt) {
  using namespace losses;
  const Tensor bt = from(mg::kBinT, {4, 3}, dt), bp = from(mg::kBinP, {4, 3}, dt), bs = from(mg::kScores, {4, 3}, dt);
  const Tensor ct = from(mg::kCatT, {4, 5}, dt), cp = from(mg::kCatP, {4, 5}, dt);
  const Tensor cl = from(mg::kCatLogits, {4, 5}, dt);
  auto bf = [](BinaryFocalOptions o) {
    return [o](const Tensor& t, const Tensor& p) { return binary_focal_crossentropy(t, p, o); };
  };
  auto cf = [](CategoricalFocalOptions o) {
    return [o](const Tensor& t, const Tensor& p) { return categorical_focal_crossentropy(t, p, o); };
  };
  BinaryFocalOptions balanced;
  balanced.apply_class_balancing = true;
  balanced.alpha = 0.4;
  balanced.gamma = 1.5;
  BinaryFocalOptions logits;
  logits.from_logits = true;
  BinaryFocalOptions logits_smooth = logits;
  logits_smooth.label_smoothing = 0.2;
  logits_smooth.apply_class_balancing = true;
  BinaryFocalOptions smooth_g0;
  smooth_g0.gamma = 0;
  smooth_g0.label_smoothing = 0.1;
  BinaryFocalOptions axis0;
  axis0.axis = 0;
  CategoricalFocalOptions a05;
  a05.alpha = 0.5;
  a05.gamma = 1;
  CategoricalFocalOptions clog;
  clog.from_logits = true;
  CategoricalFocalOptions clog_smooth = clog;
  clog_smooth.label_smoothing = 0.1;
  CategoricalFocalOptions clog_smooth_axis0 = clog_smooth;
  clog_smooth_axis0.axis = 0;
  CategoricalFocalOptions csmooth_g0;
  csmooth_g0.gamma = 0;
  csmooth_g0.label_smoothing = 0.2;
  return {
      {"bfce", bf({}), bt, bp},
      {"bfce_balanced_a0_4_g1_5", bf(balanced), bt, bp},
      {"bfce_logits", bf(logits), bt, bs},
      {"bfce_logits_smooth_balanced", bf(logits_smooth), bt, bs},
      {"bfce_smooth_g0", bf(smooth_g0), bt, bp},
      {"bfce_axis0", bf(axis0), bt, bp},
      {"cfce", cf({}), ct, cp},
      {"cfce_a0_5_g1", cf(a05), ct, cp},
      {"cfce_logits", cf(clog), ct, cl},
      {"cfce_logits_smooth", cf(clog_smooth), ct, cl},
      {"cfce_smooth_g0", cf(csmooth_g0), ct, cp},
      {"cfce_logits_smooth_axis0", cf(clog_smooth_axis0), ct.transpose().contiguous(), cl.transpose()},
  };
}

std::vector<MoreCase> seg_cases(DType dt) {
  using namespace losses;
  const Tensor t = from(mg::kSegT, {2, 2, 2, 1}, dt), p = from(mg::kSegP, {2, 2, 2, 1}, dt);
  const std::vector<std::int64_t> axes = {1, 2, 3};
  return {
      {"dice_axes", [axes](const Tensor& a, const Tensor& b) { return dice(a, b, axes); }, t, p},
      {"dice_all", [](const Tensor& a, const Tensor& b) { return dice(a, b); }, t, p},
      {"tversky_axes", [axes](const Tensor& a, const Tensor& b) { return tversky(a, b, 0.5, 0.5, axes); }, t, p},
      {"tversky_a0_3_b0_7_axes", [](const Tensor& a, const Tensor& b) { return tversky(a, b, 0.3, 0.7, {1, 2, -1}); },
       t, p},
      {"tversky_a0_7_b0_2_all", [](const Tensor& a, const Tensor& b) { return tversky(a, b, 0.7, 0.2); }, t, p},
  };
}

void check_values(const Tensor& v, const double* want, std::size_t n, DType dt, double tol64 = 1e-12) {
  const auto got = v.astype(kFloat64).to_vector<double>();
  REQUIRE(got.size() == n);
  for (std::size_t k = 0; k < n; ++k) {
    INFO("value " << k << ": " << got[k] << " want " << want[k]);
    CHECK(std::abs(got[k] - want[k]) <= (dt == kFloat64 ? tol64 : 2e-5) * (1 + std::abs(want[k])));
  }
}

}  // namespace

TEST_CASE("losses: focal cross-entropies, Dice and Tversky match Keras 3 (float64 and float32, every device)",
          "[losses][focal][dice]") {
  if (!cuda::is_available()) WARN("CUDA half skipped: " << cuda::status());
  REQUIRE(focal_cases(kFloat64).size() == std::size(mg::kLosses));
  REQUIRE(seg_cases(kFloat64).size() == std::size(mg::kSeg));
  for (const Device& d : devices()) {
    for (DType dt : {kFloat64, kFloat32}) {
      const auto focal = focal_cases(dt);
      for (std::size_t i = 0; i < focal.size(); ++i) {
        const auto& c = focal[i];
        INFO(c.name << " " << dtype_name(dt) << " on " << d.str());
        REQUIRE(std::string(c.name) == mg::kLosses[i].name);
        const Tensor v = c.f(c.t.to(d), c.p.to(d));
        CHECK(v.dtype() == dt);
        CHECK(v.device() == d);
        // axis 0 gives one value per column (3), the others one per row (4)
        check_values(v, mg::kLosses[i].values, v.size() == 3 ? 3 : 4, dt);
      }
      const auto seg = seg_cases(dt);
      for (std::size_t i = 0; i < seg.size(); ++i) {
        const auto& c = seg[i];
        INFO(c.name << " " << dtype_name(dt) << " on " << d.str());
        REQUIRE(std::string(c.name) == mg::kSeg[i].name);
        const Tensor v = c.f(c.t.to(d), c.p.to(d));
        CHECK(v.device() == d);
        // over every axis: one scalar (Keras's axis=None)
        CHECK(v.rank() == (std::string(c.name).find("_all") != std::string::npos ? 0 : 1));
        check_values(v, mg::kSeg[i].values, static_cast<std::size_t>(v.size()), dt);
      }
    }
  }
}

TEST_CASE("losses: the focal, Dice, Tversky and CTC classes reduce and weigh as Keras 3's", "[losses][focal][dice][ctc]") {
  const Tensor sw = from(mg::kSampleWeight, {4});
  const Tensor bt = from(mg::kBinT, {4, 3}), bp = from(mg::kBinP, {4, 3}), bs = from(mg::kScores, {4, 3});
  const Tensor ct = from(mg::kCatT, {4, 5}), cl = from(mg::kCatLogits, {4, 5});
  const Tensor st = from(mg::kSegT, {2, 2, 2, 1}), sp = from(mg::kSegP, {2, 2, 2, 1});
  const Tensor sw2 = tensor({0.5, 2.0}, {2}, kFloat64);
  losses::BinaryFocalOptions balanced;
  balanced.apply_class_balancing = true;
  losses::BinaryFocalOptions logits;
  logits.from_logits = true;
  losses::CategoricalFocalOptions clog;
  clog.from_logits = true;
  const double got[] = {
      losses::BinaryFocalCrossentropy(balanced)(bt, bp, sw).item<double>(),
      losses::BinaryFocalCrossentropy(logits)(bt, bs).item<double>(),
      losses::CategoricalFocalCrossentropy(clog)(ct, cl, sw).item<double>(),
      losses::Dice({1, 2, 3})(st, sp, sw2).item<double>(),
      losses::Dice()(st, sp).item<double>(),
      losses::Tversky(0.3, 0.7, {1, 2, 3})(st, sp, sw2).item<double>(),
      losses::CTC()(ints(mg::kCtcLabels, {3, 4}), from(mg::kCtcLogits, {3, 5, 4}), tensor({1.0, 0.5, 2.0}, {3}, kFloat64))
          .item<double>(),
  };
  REQUIRE(std::size(got) == std::size(mg::kReduced));
  for (std::size_t i = 0; i < std::size(got); ++i) {
    INFO(mg::kReduced[i].name << ": " << got[i]);
    // Keras's CTC runs in float32
    const double tol = std::string(mg::kReduced[i].name) == "CTC_sw" ? 2e-6 : 1e-12;
    CHECK(std::abs(got[i] - mg::kReduced[i].value) <= tol * (1 + std::abs(mg::kReduced[i].value)));
  }
  // by name, with Keras's defaults
  const std::pair<const char*, double> named[] = {
      {"binary_focal_crossentropy", mean(losses::binary_focal_crossentropy(bt, bp)).item<double>()},
      {"categorical_focal_crossentropy",
       mean(losses::categorical_focal_crossentropy(ct, from(mg::kCatP, {4, 5}))).item<double>()},
      {"dice", losses::dice(st, sp).item<double>()},
      {"tversky", losses::tversky(st, sp).item<double>()},
  };
  for (const auto& [name, want] : named) {
    INFO(name);
    const auto loss = losses::get(name);
    CHECK(loss->name() == name);
    const bool seg = std::string(name) == "dice" || std::string(name) == "tversky";
    const bool cat = std::string(name) == "categorical_focal_crossentropy";
    const Tensor t = seg ? st : cat ? ct : bt;
    const Tensor p = seg ? sp : cat ? from(mg::kCatP, {4, 5}) : bp;
    CHECK((*loss)(t, p).item<double>() == want);
  }
  CHECK(losses::get("ctc")->name() == "ctc");
  // a scalar Dice (every axis) broadcasts to the weights, as Keras 3's: dice * mean(w)
  CHECK(losses::Dice()(st, sp, sw2).item<double>() ==
        Approx(losses::dice(st, sp).item<double>() * 1.25).epsilon(1e-15));
  CHECK(losses::Tversky(0.3, 0.7).alpha() == 0.3);
  CHECK(losses::Dice({1, 2}).axis() == std::vector<std::int64_t>{1, 2});
  CHECK(losses::BinaryFocalCrossentropy(balanced).options().apply_class_balancing);
  // errors
  losses::BinaryFocalOptions bad;
  bad.label_smoothing = 1.5;
  CHECK_THROWS_WITH(losses::BinaryFocalCrossentropy(bad), Contains("BinaryFocalCrossentropy") &&
                                                             Contains("label_smoothing"));
  CHECK_THROWS_WITH(losses::binary_focal_crossentropy(bt, bp, bad), Contains("binary_focal_crossentropy"));
  losses::CategoricalFocalOptions cbad;
  cbad.label_smoothing = -0.5;
  CHECK_THROWS_AS(losses::CategoricalFocalCrossentropy(cbad), ValueError);
  CHECK_THROWS_WITH(losses::categorical_focal_crossentropy(bt, from(mg::kCatP, {4, 5})),
                    Contains("categorical_focal_crossentropy") && Contains("[4, 3]") && Contains("[4, 5]"));
  CHECK_THROWS_WITH(losses::dice(st, bp), Contains("dice") && Contains("[2, 2, 2, 1]") && Contains("[4, 3]"));
  CHECK_THROWS_WITH(losses::tversky(bt, tensor({1, 0, 1}, {1, 3})), Contains("tversky") && Contains("int32"));
}

TEST_CASE("losses: CTC and its gradient match Keras 3 / TensorFlow (float64 and float32, every device)",
          "[losses][ctc]") {
  if (!cuda::is_available()) WARN("CUDA half skipped: " << cuda::status());
  const Tensor labels = ints(mg::kCtcLabels, {3, 4}), long_labels = ints(mg::kCtcLabelsLong, {3, 6});
  const Tensor ops_labels = ints(mg::kOpsLabels, {3, 4});
  const Tensor label_len = ints(mg::kOpsLabelLen, {3}), logit_len = ints(mg::kOpsLogitLen, {3});
  const std::function<Tensor(const Tensor&)> fns[] = {
      [&](const Tensor& x) { return losses::ctc(labels.to(x.device()), x); },
      [&](const Tensor& x) { return losses::ctc(long_labels.to(x.device()), x); },
      [&](const Tensor& x) {
        return losses::ctc_loss(ops_labels.to(x.device()), x, label_len.to(x.device()), logit_len.to(x.device()), 3);
      },
      [&](const Tensor& x) {
        return losses::ctc_loss(ints(mg::kImpLabels, {3, 4}).to(x.device()), x,
                                ints(mg::kImpLabelLen, {3}).to(x.device()), ints(mg::kImpLogitLen, {3}).to(x.device()));
      },
  };
  REQUIRE(std::size(fns) == std::size(mg::kCtc));
  for (const Device& d : devices()) {
    for (DType dt : {kFloat64, kFloat32}) {
      for (std::size_t i = 0; i < std::size(fns); ++i) {
        INFO(mg::kCtc[i].name << " " << dtype_name(dt) << " on " << d.str());
        const Tensor x = from(mg::kCtcLogits, {3, 5, 4}, dt).to(d);
        GradientTape tape;
        tape.watch(x);
        const Tensor loss = fns[i](x);
        CHECK(loss.shape() == Shape{3});
        CHECK(loss.dtype() == dt);
        CHECK(loss.device() == d);
        const Tensor grad = tape.gradient(sum(loss), x);
        // TensorFlow computes CTC in float32 whatever the logits
        const auto got = loss.astype(kFloat64).to(Device::cpu()).to_vector<double>();
        for (int k = 0; k < 3; ++k) {
          INFO("example " << k << ": " << got[k] << " want " << mg::kCtc[i].loss[k]);
          CHECK(std::abs(got[k] - mg::kCtc[i].loss[k]) <= 2e-6 * (1 + std::abs(mg::kCtc[i].loss[k])));
        }
        const auto dx = grad.astype(kFloat64).to(Device::cpu()).to_vector<double>();
        REQUIRE(dx.size() == 60);
        for (std::size_t k = 0; k < 60; ++k) {
          // where no alignment exists TensorFlow's gradient is not its loss's: its occupancies come
          // from a forward pass that may start in any state at log_0, while its loss (the backward
          // pass) starts in the first only (checked by finite differences: 0.35 off in example 1).
          // Ours is the loss's own (the gradcheck below); compared with TensorFlow's elsewhere
          if (mg::kCtc[i].loss[k / 20] > 700) continue;
          INFO("d logits[" << k << "]: " << dx[k] << " want " << mg::kCtc[i].grad[k]);
          CHECK(std::abs(dx[k] - mg::kCtc[i].grad[k]) <= 2e-6);
        }
      }
    }
  }
  // the impossible alignments are TensorFlow's large finite values, their gradients finite
  CHECK(mg::kCtc[1].loss[1] > 700);
  // an empty label is the log-probability of all blanks
  const Tensor x = from(mg::kCtcLogits, {3, 5, 4});
  const double blanks = -sum(log_softmax(x, -1)(2, all, 0)).item<double>();
  CHECK(losses::ctc(labels, x).to_vector<double>()[2] == Approx(blanks).epsilon(1e-13));
  // a logit_length of 0: 0 for an empty label, -log(1e-307) (float32) for any other
  const Tensor zero_len = losses::ctc_loss(tensor({1, 0}, {2, 1}), x(Slice(0, 2)), tensor({1, 0}, {2}),
                                           tensor({0, 0}, {2}));
  CHECK(zero_len.to_vector<double>() ==
        std::vector<double>{-static_cast<double>(static_cast<float>(std::log(1e-307))), 0.0});
  // labels as floats holding integers, and a negative mask_index counting from the end
  CHECK(losses::ctc_loss(ops_labels.astype(kFloat32), x, label_len, logit_len, -1).to_vector<double>() ==
        losses::ctc_loss(ops_labels, x, label_len, logit_len, 3).to_vector<double>());
}

TEST_CASE("losses: ctc_greedy_decode matches keras.ops.ctc_decode(strategy=\"greedy\")", "[losses][ctc]") {
  const Tensor x = repeat(from(mg::kCtcLogits, {3, 5, 4}), 2, 1);  // each step twice: [3, 10, 4]
  const Tensor len = ints(mg::kDecodeLen, {3});
  const std::pair<bool, std::int64_t> args[] = {{true, 0}, {false, 0}, {true, 2}};
  REQUIRE(std::size(args) == std::size(mg::kDecode));
  for (const Device& d : devices()) {
    for (DType dt : {kFloat64, kFloat32}) {
      for (std::size_t i = 0; i < std::size(args); ++i) {
        INFO(mg::kDecode[i].name << " " << dtype_name(dt) << " on " << d.str());
        const auto out = losses::ctc_greedy_decode(x.astype(dt).to(d), len.to(d), args[i].first, args[i].second);
        CHECK(out.decoded.shape() == Shape{1, 3, 10});
        CHECK(out.decoded.dtype() == kInt32);
        CHECK(out.decoded.device() == d);
        CHECK(out.decoded.to(Device::cpu()).to_vector<std::int32_t>() ==
              std::vector<std::int32_t>(mg::kDecode[i].decoded, mg::kDecode[i].decoded + 30));
        CHECK(out.scores.shape() == Shape{3, 1});
        CHECK(out.scores.dtype() == dt);
        check_values(out.scores.to(Device::cpu()), mg::kDecode[i].scores, 3, dt);
      }
    }
  }
  CHECK_THROWS_WITH(losses::ctc_greedy_decode(x, tensor({11, 1, 1}, {3})),
                    Contains("ctc_greedy_decode") && Contains("sequence_lengths[0] = 11") && Contains("[3, 10, 4]"));
  CHECK_THROWS_AS(losses::ctc_greedy_decode(x, len, true, 4), IndexError);
  CHECK_THROWS_AS(losses::ctc_greedy_decode(x(all, all, 0), len), ShapeError);
}

TEST_CASE("losses: CTC's errors name the op and the shapes", "[losses][ctc]") {
  const Tensor x = from(mg::kCtcLogits, {3, 5, 4});
  const Tensor labels = ints(mg::kCtcLabels, {3, 4});
  const Tensor len3 = tensor({1, 1, 1}, {3}), len5 = tensor({5, 5, 5}, {3});
  CHECK_THROWS_WITH(losses::ctc(labels, x(all, 0)), Contains("ctc") && Contains("[3, 4]") && Contains("[3, 4]"));
  CHECK_THROWS_AS(losses::ctc(labels(0), x), ShapeError);
  CHECK_THROWS_WITH(losses::ctc_loss(labels(Slice(0, 2)), x, len3, len5),
                    Contains("ctc_loss") && Contains("[2, 4]") && Contains("[3, 5, 4]"));
  CHECK_THROWS_WITH(losses::ctc_loss(labels, x, tensor({1, 1}, {2}), len5), Contains("ctc_loss") && Contains("[2]"));
  CHECK_THROWS_WITH(losses::ctc_loss(labels, x, tensor({5, 1, 1}, {3}), len5),
                    Contains("label_length[0] = 5") && Contains("[3, 4]"));
  CHECK_THROWS_WITH(losses::ctc_loss(labels, x, len3, tensor({5, 6, 5}, {3})),
                    Contains("logit_length[1] = 6") && Contains("[3, 5, 4]"));
  CHECK_THROWS_WITH(losses::ctc_loss(tensor({4, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1}, {3, 4}), x, len3, len5),
                    Contains("labels[0, 0] = 4") && Contains("[3, 5, 4]"));
  CHECK_THROWS_AS(losses::ctc_loss(labels, x, len3, len5, 4), IndexError);
  CHECK_THROWS_AS(losses::ctc_loss(labels, x.astype(kInt32), len3, len5), DTypeError);
  CHECK_THROWS_WITH(losses::ctc_loss(labels.astype(kFloat64) + 0.5, x, len3, len5),
                    Contains("ctc_loss") && Contains("integers"));
}

TEST_CASE("losses: float64 gradchecks of the focal cross-entropies, Dice, Tversky and CTC", "[losses][gradcheck]") {
  auto check = [](const char* name, const std::function<Tensor(const Tensor&)>& f, const Tensor& x) {
    INFO(name);
    const auto r = gradcheck([&](const std::vector<Tensor>& in) { return f(in[0]); }, {x});
    INFO(r.message);
    CHECK(r.ok);
  };
  for (const auto& c : focal_cases(kFloat64)) {
    const LossFn f = c.f;
    const Tensor t = c.t;
    check(c.name, [&](const Tensor& p) { return f(t, p); }, c.p);
  }
  for (const auto& c : seg_cases(kFloat64)) {
    const LossFn f = c.f;
    const Tensor t = c.t;
    check(c.name, [&](const Tensor& p) { return f(t, p); }, c.p + 0.05);
  }
  const Tensor x = from(mg::kCtcLogits, {3, 5, 4});
  const Tensor labels = ints(mg::kCtcLabels, {3, 4}), long_labels = ints(mg::kCtcLabelsLong, {3, 6});
  check("ctc", [&](const Tensor& l) { return losses::ctc(labels, l); }, x);
  check("ctc, impossible alignments", [&](const Tensor& l) { return losses::ctc(long_labels, l); }, x);
  check("ctc_loss, lengths and blank 3",
        [&](const Tensor& l) {
          return losses::ctc_loss(ints(mg::kOpsLabels, {3, 4}), l, ints(mg::kOpsLabelLen, {3}),
                                  ints(mg::kOpsLogitLen, {3}), 3);
        },
        x);
  check("ctc_loss, no alignment, padding past the length",
        [&](const Tensor& l) {
          return losses::ctc_loss(ints(mg::kImpLabels, {3, 4}), l, ints(mg::kImpLabelLen, {3}),
                                  ints(mg::kImpLogitLen, {3}));
        },
        x);
}

// ---------------------------------------------------------------- Keras 3's reduction argument
// (golden/loss_reduction_golden.hpp)

namespace {

namespace rg = loss_reduction_golden;

template <std::size_t N>
Tensor from64(const double (&v)[N], const Shape& shape, DType dtype = kFloat64) {
  return tensor(std::vector<double>(v, v + N), shape, kFloat64).astype(dtype);
}

// The golden script's loss of that name with `reduction`, its inputs, and its weighting's
// sample weights and mask (undefined when none).
struct ReductionCase {
  std::shared_ptr<losses::Loss> loss;
  Tensor t, p, sw, mask;
};

ReductionCase reduction_case(const std::string& loss, const std::string& weighting, const std::string& reduction,
                             DType dt) {
  using namespace losses;
  ReductionCase c;
  const Reduction r = reduction_from_name(reduction);
  const Tensor sw4 = from64(rg::kSw, {4}, dt);
  const Tensor mask4 = from64(rg::kMask4, {4}) != 0.0;
  const Tensor seq_sw = from64(rg::kSeqSw, {3, 1}, dt), seq_mask = from64(rg::kSeqMask, {3, 4}) != 0.0;
  const Tensor steps = from64(rg::kSeqSwSteps, {3, 4}, dt);
  // the classes' constructors take the reduction, set_reduction (by name here) changes it
  if (loss == "mse") {
    c = {std::make_shared<MeanSquaredError>(r), from64(rg::kMseT, {4, 3}, dt), from64(rg::kMseP, {4, 3}, dt), {}, {}};
  } else if (loss == "scce_seq") {
    c = {std::make_shared<SparseCategoricalCrossentropy>(false, r),
         tensor(std::vector<std::int64_t>(std::begin(rg::kSeqLabels), std::end(rg::kSeqLabels)), {3, 4}),
         from64(rg::kSeqP, {3, 4, 3}, dt), {}, {}};
  } else if (loss == "bce_logits") {
    c = {std::make_shared<BinaryCrossentropy>(true, 0.0, r), from64(rg::kBinT, {4, 3}, dt),
         from64(rg::kBinLogits, {4, 3}, dt), {}, {}};
  } else {
    REQUIRE(loss == "dice_all");
    c = {std::make_shared<Dice>(), from64(rg::kSegT, {2, 2, 2, 1}, dt), from64(rg::kSegP, {2, 2, 2, 1}, dt), {}, {}};
    c.loss->set_reduction(reduction);
  }
  const bool seq = loss == "scce_seq";
  const bool dice = loss == "dice_all";
  if (weighting == "sw") c.sw = dice ? from64(rg::kSegSw, {2}, dt) : sw4;
  if (weighting == "sw_col") c.sw = seq ? seq_sw : sw4.reshape({4, 1});
  if (weighting == "sw_scalar") c.sw = scalar(2.5, dt);
  if (weighting == "sw_steps" || weighting == "sw_steps_mask") c.sw = steps;
  if (weighting == "sw_col_mask") c.sw = seq_sw;
  if (weighting == "sw_mask") c.sw = sw4;
  if (weighting == "zero_sw") c.sw = zeros({dice ? 2 : 4}, dt);
  if (weighting == "zero_sw_col" || weighting == "zero_sw_mask") c.sw = zeros({3, 1}, dt);
  if (weighting.find("mask") != std::string::npos) c.mask = seq ? seq_mask : mask4;
  if (weighting == "zero_mask") c.mask = zeros(seq ? Shape{3, 4} : Shape{4}, kBool);
  return c;
}

}  // namespace

TEST_CASE("losses: every reduction matches Keras 3 with sample weights, masks, both and zero weights "
          "(float64 and float32, every device)",
          "[losses][reduction]") {
  if (!cuda::is_available()) WARN("CUDA half skipped: " << cuda::status());
  for (const Device& d : devices()) {
    for (DType dt : {kFloat64, kFloat32}) {
      for (const auto& k : rg::kCases) {
        INFO(k.loss << " " << k.weighting << " " << k.reduction << " " << dtype_name(dt) << " on " << d.str());
        const ReductionCase c = reduction_case(k.loss, k.weighting, k.reduction, dt);
        REQUIRE(losses::reduction_name(c.loss->reduction()) == std::string(k.reduction));
        auto on = [&](const Tensor& x) { return x.defined() ? x.to(d) : x; };
        const Tensor v = (*c.loss)(on(c.t), on(c.p), on(c.sw), on(c.mask));
        REQUIRE(v.rank() == k.rank);
        CHECK(Shape(v.shape()) == Shape(k.shape, k.shape + k.rank));
        CHECK(v.dtype() == dt);
        CHECK(v.device() == d);
        check_values(v, k.values, static_cast<std::size_t>(v.size()), dt);
        // the overloads without a mask, or without either, are the same call
        if (!c.mask.defined()) check_values((*c.loss)(on(c.t), on(c.p), on(c.sw)), k.values, v.size(), dt);
        if (!c.mask.defined() && !c.sw.defined()) check_values((*c.loss)(on(c.t), on(c.p)), k.values, v.size(), dt);
      }
    }
  }
}

TEST_CASE("losses: reductions by hand: names, [batch] weights of a sequence, errors, the defaults",
          "[losses][reduction]") {
  using losses::Reduction;
  for (Reduction r : {Reduction::SumOverBatchSize, Reduction::Sum, Reduction::Mean, Reduction::MeanWithSampleWeight,
                      Reduction::None}) {
    CHECK(losses::reduction_from_name(losses::reduction_name(r)) == r);
  }
  CHECK_THROWS_AS(losses::reduction_from_name("avg"), ValueError);
  CHECK_THROWS_WITH(losses::reduction_from_name("avg"),
                    Contains("Invalid value for argument `reduction`") && Contains("'sum_over_batch_size'") &&
                        Contains("'sum'") && Contains("'mean'") && Contains("'mean_with_sample_weight'") &&
                        Contains("'none'") && Contains("Received: reduction='avg'"));
  losses::MeanSquaredError mse;
  CHECK_THROWS_AS(mse.set_reduction("None"), ValueError);
  CHECK(mse.reduction() == Reduction::SumOverBatchSize);  // unchanged by the failed call
  mse.set_reduction(Reduction::Sum);
  CHECK(mse.reduction() == Reduction::Sum);
  // every loss defaults to Keras's sum_over_batch_size and takes the reduction in its constructor
  for (const char* name : {"mse", "mae", "binary_crossentropy", "categorical_crossentropy",
                           "sparse_categorical_crossentropy", "huber", "log_cosh", "kl_divergence", "poisson",
                           "cosine_similarity", "hinge", "squared_hinge", "categorical_hinge", "msle", "mape",
                           "binary_focal_crossentropy", "categorical_focal_crossentropy", "dice", "tversky", "ctc"}) {
    CHECK(losses::get(name)->reduction() == Reduction::SumOverBatchSize);
  }
  CHECK(losses::MeanAbsoluteError(Reduction::None).reduction() == Reduction::None);
  CHECK(losses::CategoricalCrossentropy(false, 0.1, Reduction::Sum).reduction() == Reduction::Sum);
  CHECK(losses::Huber(0.5, Reduction::Mean).reduction() == Reduction::Mean);
  CHECK(losses::BinaryFocalCrossentropy({}, Reduction::Sum).reduction() == Reduction::Sum);
  CHECK(losses::CategoricalFocalCrossentropy({}, Reduction::None).reduction() == Reduction::None);
  CHECK(losses::Tversky(0.3, 0.7, {}, Reduction::Sum).reduction() == Reduction::Sum);
  CHECK(losses::LogCosh(Reduction::MeanWithSampleWeight).reduction() == Reduction::MeanWithSampleWeight);
  CHECK(losses::CTC(Reduction::None).reduction() == Reduction::None);
  // [batch] weights of a sequence's [batch, time] values weigh whole examples, as [batch, 1]
  // ones do in Keras (whose broadcasting refuses [batch])
  for (const auto& k : rg::kCases) {
    if (std::string(k.loss) != "scce_seq" || std::string(k.weighting).rfind("sw_col", 0) != 0) continue;
    INFO(k.weighting << " " << k.reduction);
    const ReductionCase c = reduction_case(k.loss, k.weighting, k.reduction, kFloat64);
    const Tensor v = (*c.loss)(c.t, c.p, c.sw.reshape({3}), c.mask);
    CHECK(v.rank() == k.rank);
    check_values(v, k.values, static_cast<std::size_t>(v.size()), kFloat64);
  }
  // shapes that do not fit name the loss and every shape
  const ReductionCase m = reduction_case("mse", "plain", "sum", kFloat64);
  const ReductionCase q = reduction_case("scce_seq", "plain", "none", kFloat64);
  CHECK_THROWS_AS((*m.loss)(m.t, m.p, ones({3}, kFloat64)), ShapeError);
  CHECK_THROWS_WITH((*m.loss)(m.t, m.p, ones({3}, kFloat64)),
                    Contains("mean_squared_error: sample_weight [3] does not match the values [4]"));
  CHECK_THROWS_WITH((*m.loss)(m.t, m.p, ones({4, 3}, kFloat64)),
                    Contains("mean_squared_error: sample_weight [4, 3] does not match the values [4]"));
  CHECK_THROWS_WITH((*q.loss)(q.t, q.p, ones({2, 1}, kFloat64), ones({3, 4}, kBool)),
                    Contains("sparse_categorical_crossentropy: sample_weight [2, 1] does not match the mask [3, 4]"));
  CHECK_THROWS_WITH((*q.loss)(q.t, q.p, ones({3, 1}, kFloat64), ones({3, 5}, kBool)),
                    Contains("sample_weight [3, 1] times the mask [3, 5] does not match the values [3, 4]"));
  // an empty batch comes back as it is (Keras's reduce_values), with every reduction
  for (const auto& k : rg::kCases) {
    if (std::string(k.loss) != "mse" || std::string(k.weighting) != "plain") continue;
    const auto loss = reduction_case("mse", "plain", k.reduction, kFloat64).loss;
    CHECK((*loss)(zeros({0, 3}, kFloat64), zeros({0, 3}, kFloat64)).shape() == Shape{0});
  }
}

TEST_CASE("losses: fit with an unreduced or summed loss trains and logs as Keras 3", "[losses][reduction][fit]") {
  using losses::Reduction;
  using namespace layers;
  const Tensor x = from64(rg::kFitX, {5, 2}, kFloat32), y = from64(rg::kFitY, {5, 1}, kFloat32);
  const Tensor sw = from64(rg::kFitSw, {5}, kFloat32);
  DenseOptions ones_init;
  ones_init.kernel_initializer = initializers::ones;
  FitOptions o;
  o.batch_size = 2;  // batches of 2, 2 and 1
  o.shuffle = false;
  o.verbose = 0;
  auto check_weights = [](const Dense& dense, const double* want) {
    const auto k = lt::dvals(dense.kernel());
    CHECK(k[0] == Approx(want[0]).epsilon(1e-5));
    CHECK(k[1] == Approx(want[1]).epsilon(1e-5));
    CHECK(lt::dvals(dense.bias())[0] == Approx(want[2]).margin(1e-6));
  };
  const std::pair<Reduction, const double*> plain[] = {{Reduction::None, rg::kFitNone},
                                                       {Reduction::Sum, rg::kFitSum},
                                                       {Reduction::SumOverBatchSize, rg::kFitSumOverBatchSize}};
  const std::pair<Reduction, const double*> weighted[] = {
      {Reduction::None, rg::kFitNoneSw}, {Reduction::MeanWithSampleWeight, rg::kFitMeanWithSampleWeightSw}};
  for (bool with_weights : {false, true}) {
    for (const auto& [r, want] : with_weights ? std::vector(std::begin(weighted), std::end(weighted))
                                              : std::vector(std::begin(plain), std::end(plain))) {
      INFO(losses::reduction_name(r) << (with_weights ? " with sample weights" : ""));
      auto dense = std::make_shared<Dense>(1, Activation::Linear, ones_init);
      Sequential model({dense});
      model.compile(std::make_shared<optimizers::SGD>(0.1), std::make_shared<losses::MeanSquaredError>(r));
      FitOptions fo = o;
      if (with_weights) fo.sample_weight = sw;
      const History h = model.fit(x, y, fo);
      check_weights(*dense, want);
      CHECK(h["loss"][0] == Approx(want[3]).epsilon(1e-5));
    }
  }
  // two outputs, "none" and the default: the scalar broadcasts over the unreduced values
  KerasTensor in = Input({2});
  auto da = std::make_shared<Dense>(1, Activation::Linear, ones_init);
  auto db = std::make_shared<Dense>(1, Activation::Linear, ones_init);
  da->set_name("a");
  db->set_name("b");
  Functional two({in}, {(*da)(in), (*db)(in)});
  two.compile(std::make_shared<optimizers::SGD>(0.1),
              {OutputLoss(std::make_shared<losses::MeanSquaredError>(Reduction::None)), OutputLoss("mse")});
  // the first 4 examples, two batches of 2 (see the golden script)
  const History h = two.fit({x(Slice(0, 4))}, {y(Slice(0, 4)), y(Slice(0, 4)) * 2.0}, o);
  check_weights(*da, rg::kFitTwoOutputs);
  check_weights(*db, rg::kFitTwoOutputs + 3);
  CHECK(h["loss"][0] == Approx(rg::kFitTwoOutputs[6]).epsilon(1e-5));
  CHECK(h["a_loss"][0] == Approx(rg::kFitTwoOutputs[7]).epsilon(1e-5));
  CHECK(h["b_loss"][0] == Approx(rg::kFitTwoOutputs[8]).epsilon(1e-5));
  // a regularization penalty cannot join unreduced values (Keras fails too): a ValueError
  DenseOptions reg = ones_init;
  reg.kernel_regularizer = regularizers::l2(0.1);
  Sequential model({std::make_shared<Dense>(1, Activation::Linear, reg)});
  model.compile(std::make_shared<optimizers::SGD>(0.1), std::make_shared<losses::MeanSquaredError>(Reduction::None));
  CHECK_THROWS_AS(model.fit(x, y, o), ValueError);
  CHECK_THROWS_WITH(model.fit(x, y, o), Contains("the loss 'mean_squared_error' (reduction 'none')") &&
                                            Contains("[2]") && Contains("not a scalar"));
  auto dr = std::make_shared<Dense>(1, Activation::Linear, reg);
  Functional reg_two({in}, {(*std::make_shared<Dense>(1))(in), (*dr)(in)});
  reg_two.compile("sgd", {OutputLoss("mse"), OutputLoss(std::make_shared<losses::MeanAbsoluteError>(Reduction::None))});
  CHECK_THROWS_WITH(reg_two.fit({x}, {y, y}, o), Contains("output 1's loss 'mean_absolute_error' (reduction 'none')"));
}
