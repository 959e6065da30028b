#!/usr/bin/env python3
"""Golden values of the losses and metrics beyond the cross-entropies, produced by the real
Keras 3 (TensorFlow backend) in float64.

Regenerate (writes losses_metrics_golden.hpp beside this script):

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu
    KERAS_BACKEND=tensorflow /tmp/tfvenv/bin/python test/golden/losses_metrics_golden.py

Produced with tensorflow-cpu 2.21.0 and keras 3.15.1, floatx float64. Fixed inputs (written into
the header too) go through the per-example loss functions (keras.losses.huber, ...) and through
stateful metrics updated with two batches (the first two rows, then the last two).
"""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

keras.config.set_floatx("float64")
L = keras.losses
M = keras.metrics

# regression targets and predictions, errors from 0.05 to 6
REG_T = [[0.5, -1.0, 2.0], [3.0, 0.25, -0.5], [1.5, 2.5, 0.1], [-2.0, 4.0, 0.7]]
REG_P = [[0.3, -0.2, 2.4], [-3.0, 0.3, 0.5], [1.0, 2.5, 0.9], [1.0, 1.0, 0.2]]
# binary labels and probabilities (a score exactly at 0.5 and at the thresholds' 0.3)
BIN_T = [[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.0, 1.0, 0.0]]
BIN_P = [[0.9, 0.2, 0.6], [0.5, 0.3, 0.35], [0.7, 0.05, 0.8], [0.1, 0.95, 0.4]]
# distributions over 5 classes; the last row of DIST_T is all zeros (cosine of a zero vector)
DIST_T = [[0.1, 0.6, 0.1, 0.1, 0.1], [0.0, 0.0, 1.0, 0.0, 0.0], [0.2, 0.2, 0.2, 0.2, 0.2], [0.0, 0.0, 0.0, 0.0, 0.0]]
DIST_P = [[0.05, 0.7, 0.1, 0.05, 0.1], [0.3, 0.1, 0.4, 0.1, 0.1], [0.6, 0.1, 0.1, 0.1, 0.1], [0.2, 0.2, 0.3, 0.2, 0.1]]
# hinge labels in {-1, 1}; scores
HINGE_T = [[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0], [1.0, 1.0, -1.0], [-1.0, 1.0, -1.0]]
SCORES = [[0.8, -0.4, 1.7], [0.3, -2.0, 0.1], [-0.5, 1.2, 0.4], [0.0, 0.9, -1.3]]
# counts for poisson
COUNTS_T = [[0.0, 1.0, 3.0], [2.0, 0.0, 1.0], [5.0, 1.0, 0.0], [1.0, 1.0, 2.0]]
RATES_P = [[0.2, 1.1, 2.5], [1.8, 0.1, 0.9], [4.0, 1.5, 0.3], [0.7, 1.2, 2.2]]
# top-k: scores over 5 classes with a tie at the boundary in row 2, labels
TOPK_P = [[0.1, 0.5, 0.2, 0.15, 0.05], [0.3, 0.3, 0.1, 0.2, 0.1], [0.25, 0.25, 0.25, 0.1, 0.15], [0.05, 0.1, 0.2, 0.3, 0.35]]
TOPK_LABELS = [2, 1, 2, 0]
# per-example weights (one zero)
SW = [1.0, 0.5, 2.0, 0.0]
# segmentation-like class ids over 3 classes: labels and predictions [4, 3]
SEG_T = [[0, 1, 2], [1, 1, 0], [2, 2, 1], [0, 0, 2]]
SEG_P = [[0, 2, 2], [1, 0, 0], [2, 1, 1], [0, 0, 1]]
# labels for TOPK_P's argmax (1, 0, 0, 4: the first of tied scores), three of four hit
IOU_LABELS = [1, 2, 0, 4]
# per-element weights of the class ids: integers (Keras's IoU counts in int and truncates weights)
SEG_W = [[1, 2, 1], [0, 1, 1], [2, 2, 1], [1, 0, 3]]


def arr(v):
    return np.array(v, dtype=np.float64)


def losses():
    out = []
    out.append(("huber", L.huber(arr(REG_T), arr(REG_P))))
    out.append(("huber_delta_0_5", L.huber(arr(REG_T), arr(REG_P), delta=0.5)))
    out.append(("log_cosh", L.log_cosh(arr(REG_T), arr(REG_P))))
    out.append(("msle", L.mean_squared_logarithmic_error(arr(REG_T), arr(REG_P))))
    out.append(("mape", L.mean_absolute_percentage_error(arr(REG_T), arr(REG_P))))
    out.append(("kl_divergence", L.kl_divergence(arr(DIST_T), arr(DIST_P))))
    out.append(("cosine_similarity", L.cosine_similarity(arr(DIST_T), arr(DIST_P))))
    out.append(("poisson", L.poisson(arr(COUNTS_T), arr(RATES_P))))
    out.append(("hinge_pm1", L.hinge(arr(HINGE_T), arr(SCORES))))
    out.append(("hinge_01", L.hinge(arr(BIN_T), arr(SCORES))))
    out.append(("squared_hinge_01", L.squared_hinge(arr(BIN_T), arr(SCORES))))
    out.append(("bce_smooth_0_2", L.binary_crossentropy(arr(BIN_T), arr(BIN_P), label_smoothing=0.2)))
    out.append(("bce_logits_smooth_0_2",
                L.binary_crossentropy(arr(BIN_T), arr(SCORES), from_logits=True, label_smoothing=0.2)))
    out.append(("cce_smooth_0_1", L.categorical_crossentropy(arr(DIST_T[:3] + [[0, 0, 0, 1.0, 0]]), arr(DIST_P),
                                                            label_smoothing=0.1)))
    out.append(("cce_logits_smooth_0_1",
                L.categorical_crossentropy(arr(DIST_T[:3] + [[0, 0, 0, 1.0, 0]]), arr(DIST_P) * 3.0,
                                           from_logits=True, label_smoothing=0.1)))
    out.append(("categorical_hinge", L.categorical_hinge(arr(DIST_T[:3] + [[0, 0, 0, 1.0, 0]]), arr(DIST_P) * 2.0)))
    return [(n, np.asarray(v, dtype=np.float64).tolist()) for n, v in out]


def two_batches(metric, t, p, dtype=np.float64, weights=None):
    # TensorFlow's in_top_k (the top-k metrics) takes float32 scores only
    w = [None, None] if weights is None else [arr(weights[:2]), arr(weights[2:])]
    metric.update_state(arr(t[:2]), arr(p[:2]).astype(dtype), sample_weight=w[0])
    metric.update_state(arr(t[2:]), arr(p[2:]).astype(dtype), sample_weight=w[1])
    return float(metric.result())


def metrics():
    out = []
    out.append(("root_mean_squared_error", two_batches(M.RootMeanSquaredError(), REG_T, REG_P)))
    out.append(("precision", two_batches(M.Precision(), BIN_T, BIN_P)))
    out.append(("recall", two_batches(M.Recall(), BIN_T, BIN_P)))
    out.append(("precision_0_3", two_batches(M.Precision(thresholds=0.3), BIN_T, BIN_P)))
    out.append(("recall_0_3", two_batches(M.Recall(thresholds=0.3), BIN_T, BIN_P)))
    out.append(("auc_roc", two_batches(M.AUC(), BIN_T, BIN_P)))
    out.append(("auc_roc_11", two_batches(M.AUC(num_thresholds=11), BIN_T, BIN_P)))
    out.append(("auc_pr", two_batches(M.AUC(curve="PR"), BIN_T, BIN_P)))
    out.append(("auc_pr_11", two_batches(M.AUC(num_thresholds=11, curve="PR"), BIN_T, BIN_P)))
    labels = [[v] for v in TOPK_LABELS]
    out.append(("sparse_top_2", two_batches(M.SparseTopKCategoricalAccuracy(k=2), labels, TOPK_P, np.float32)))
    out.append(("sparse_top_1", two_batches(M.SparseTopKCategoricalAccuracy(k=1), labels, TOPK_P, np.float32)))
    onehot = np.eye(5)[TOPK_LABELS].tolist()
    out.append(("top_2", two_batches(M.TopKCategoricalAccuracy(k=2), onehot, TOPK_P, np.float32)))
    # the loss-like metrics (Keras's MeanMetricWrapper over the loss functions)
    cce_t = DIST_T[:3] + [[0, 0, 0, 1.0, 0]]
    out.append(("m_binary_crossentropy", two_batches(M.BinaryCrossentropy(), BIN_T, BIN_P)))
    out.append(("m_binary_crossentropy_logits_smooth",
                two_batches(M.BinaryCrossentropy(from_logits=True, label_smoothing=0.2), BIN_T, SCORES)))
    out.append(("m_categorical_crossentropy", two_batches(M.CategoricalCrossentropy(), cce_t, DIST_P)))
    out.append(("m_categorical_crossentropy_logits_smooth",
                two_batches(M.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1), cce_t,
                            (arr(DIST_P) * 3.0).tolist())))
    out.append(("m_sparse_categorical_crossentropy",
                two_batches(M.SparseCategoricalCrossentropy(), TOPK_LABELS, TOPK_P)))
    out.append(("m_sparse_categorical_crossentropy_logits",
                two_batches(M.SparseCategoricalCrossentropy(from_logits=True), TOPK_LABELS, TOPK_P)))
    out.append(("m_kl_divergence", two_batches(M.KLDivergence(), DIST_T, DIST_P)))
    out.append(("m_poisson", two_batches(M.Poisson(), COUNTS_T, RATES_P)))
    out.append(("m_cosine_similarity", two_batches(M.CosineSimilarity(), DIST_T, DIST_P)))
    out.append(("m_mape", two_batches(M.MeanAbsolutePercentageError(), REG_T, REG_P)))
    out.append(("m_msle", two_batches(M.MeanSquaredLogarithmicError(), REG_T, REG_P)))
    out.append(("m_logcosh", two_batches(M.LogCoshError(), REG_T, REG_P)))
    out.append(("m_hinge", two_batches(M.Hinge(), BIN_T, SCORES)))
    out.append(("m_squared_hinge", two_batches(M.SquaredHinge(), HINGE_T, SCORES)))
    out.append(("m_categorical_hinge", two_batches(M.CategoricalHinge(), cce_t, DIST_P)))
    # confusion counts, R2, F-scores, IoUs
    out.append(("true_positives", two_batches(M.TruePositives(), BIN_T, BIN_P)))
    out.append(("false_positives", two_batches(M.FalsePositives(), BIN_T, BIN_P)))
    out.append(("true_negatives_0_3", two_batches(M.TrueNegatives(thresholds=0.3), BIN_T, BIN_P)))
    out.append(("false_negatives", two_batches(M.FalseNegatives(), BIN_T, BIN_P)))
    out.append(("r2_uniform", two_batches(M.R2Score(), REG_T, REG_P)))
    out.append(("r2_variance_weighted",
                two_batches(M.R2Score(class_aggregation="variance_weighted_average"), REG_T, REG_P)))
    out.append(("r2_adjusted", two_batches(M.R2Score(num_regressors=2), REG_T, REG_P)))
    out.append(("r2_weighted", two_batches(M.R2Score(), REG_T, REG_P, weights=SW)))
    out.append(("f1_macro_argmax", two_batches(M.F1Score(average="macro"), BIN_T, BIN_P)))
    out.append(("f1_micro_0_5", two_batches(M.F1Score(average="micro", threshold=0.5), BIN_T, BIN_P)))
    out.append(("fbeta_weighted_2_0_4",
                two_batches(M.FBetaScore(average="weighted", beta=2.0, threshold=0.4), BIN_T, BIN_P)))
    out.append(("f1_macro_weighted", two_batches(M.F1Score(average="macro", threshold=0.5), BIN_T, BIN_P, weights=SW)))
    out.append(("mean_iou_sparse", two_batches(M.MeanIoU(num_classes=3), SEG_T, SEG_P)))
    out.append(("mean_iou_weighted", two_batches(M.MeanIoU(num_classes=3), SEG_T, SEG_P, weights=SEG_W)))
    out.append(("mean_iou_ignore_2", two_batches(M.MeanIoU(num_classes=3, ignore_class=2), SEG_T, SEG_P)))
    out.append(("mean_iou_dense_pred",
                two_batches(M.MeanIoU(num_classes=5, sparse_y_pred=False), IOU_LABELS, TOPK_P)))
    out.append(("iou_1_2", two_batches(M.IoU(num_classes=3, target_class_ids=[1, 2]), SEG_T, SEG_P)))
    out.append(("binary_iou", two_batches(M.BinaryIoU(), BIN_T, BIN_P)))
    out.append(("binary_iou_1_0_3", two_batches(M.BinaryIoU(target_class_ids=[1], threshold=0.3), BIN_T, BIN_P)))
    return out


def default_names():
    # the names Keras gives the new metric classes by default (logged under them)
    classes = [M.BinaryCrossentropy(), M.CategoricalCrossentropy(), M.SparseCategoricalCrossentropy(),
               M.KLDivergence(), M.Poisson(), M.CosineSimilarity(), M.MeanAbsolutePercentageError(),
               M.MeanSquaredLogarithmicError(), M.LogCoshError(), M.Hinge(), M.SquaredHinge(), M.CategoricalHinge(),
               M.TruePositives(), M.FalsePositives(), M.TrueNegatives(), M.FalseNegatives(), M.R2Score(),
               M.F1Score(), M.FBetaScore(), M.MeanIoU(num_classes=2), M.IoU(num_classes=2, target_class_ids=[0]),
               M.BinaryIoU()]
    return [m.name for m in classes]


def c_array(rows):
    return "{" + ", ".join("{" + ", ".join(repr(float(v)) for v in r) + "}" for r in rows) + "}"


def main():
    names = default_names()  # first: Keras numbers a class's later unnamed instances (true_positives_1)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "losses_metrics_golden.hpp")
    with open(out, "w") as fh:
        fh.write("#pragma once\n")
        fh.write(f"// Generated by test/golden/losses_metrics_golden.py (Keras {keras.__version__}) -- do not edit.\n")
        fh.write("// Regenerate: KERAS_BACKEND=tensorflow python3 test/golden/losses_metrics_golden.py (with keras)\n")
        fh.write("#include <vector>\n\nnamespace losses_metrics_golden {\n\n")
        for name, rows in [("kRegT", REG_T), ("kRegP", REG_P), ("kBinT", BIN_T), ("kBinP", BIN_P),
                           ("kHingeT", HINGE_T), ("kScores", SCORES), ("kCountsT", COUNTS_T), ("kRatesP", RATES_P)]:
            fh.write(f"constexpr double {name}[4][3] = {c_array(rows)};\n")
        for name, rows in [("kDistT", DIST_T), ("kDistP", DIST_P), ("kTopKP", TOPK_P)]:
            fh.write(f"constexpr double {name}[4][5] = {c_array(rows)};\n")
        fh.write("constexpr long long kTopKLabels[4] = {" + ", ".join(str(v) for v in TOPK_LABELS) + "};\n")
        fh.write("constexpr long long kIoULabels[4] = {" + ", ".join(str(v) for v in IOU_LABELS) + "};\n")
        fh.write("constexpr double kSampleWeight[4] = {" + ", ".join(repr(v) for v in SW) + "};\n")
        for name, rows in [("kSegT", SEG_T), ("kSegP", SEG_P), ("kSegW", SEG_W)]:
            fh.write(f"constexpr long long {name}[4][3] = " + "{" + ", ".join(
                "{" + ", ".join(str(v) for v in r) + "}" for r in rows) + "};\n")
        fh.write("\n")
        fh.write("struct LossCase {\n  const char* name;\n  double per_example[4];\n};\n")
        fh.write("inline constexpr LossCase kLosses[] = {\n")
        for name, v in losses():
            fh.write(f'    {{"{name}", {{' + ", ".join(repr(float(x)) for x in v) + "}},\n")
        fh.write("};\n\nstruct MetricCase {\n  const char* name;\n  double result;\n};\n")
        fh.write("inline constexpr MetricCase kMetrics[] = {\n")
        for name, v in metrics():
            fh.write(f'    {{"{name}", {v!r}}},\n')
        fh.write("};\n\n// Keras's default names of the metric classes, in the order of the C++ test's list\n")
        fh.write("inline constexpr const char* kDefaultNames[] = {" + ", ".join(
            f'"{n}"' for n in names) + "};\n")
        fh.write("\n}  // namespace losses_metrics_golden\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
