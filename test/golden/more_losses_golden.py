#!/usr/bin/env python3
"""Golden values of the focal cross-entropies, Dice, Tversky, CTC and the greedy CTC decoder,
produced by the real Keras 3 (TensorFlow backend) in float64.

Regenerate (writes more_losses_golden.hpp beside this script):

    KERAS_BACKEND=tensorflow /work/tfvenv/bin/python test/golden/more_losses_golden.py

Produced with tensorflow 2.21 and keras 3.15, floatx float64. Keras's CTC runs in float32 even
for float64 logits (keras.ops.ctc_loss casts them), so its values and gradients (by
tf.GradientTape) hold about 7 digits.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

keras.config.set_floatx("float64")
L = keras.losses

# binary labels, probabilities (one at 0.5) and logits (one at 0)
BIN_T = [[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.0, 1.0, 0.0]]
BIN_P = [[0.9, 0.2, 0.6], [0.5, 0.3, 0.35], [0.7, 0.05, 0.8], [0.1, 0.95, 0.4]]
SCORES = [[0.8, -0.4, 1.7], [0.3, -2.0, 0.1], [-0.5, 1.2, 0.4], [0.0, 0.9, -1.3]]
# one-hot labels over 5 classes, probabilities (rows not summing to 1 in row 3) and logits
CAT_T = [[0, 1.0, 0, 0, 0], [0, 0, 1.0, 0, 0], [1.0, 0, 0, 0, 0], [0, 0, 0, 1.0, 0]]
CAT_P = [[0.05, 0.7, 0.1, 0.05, 0.1], [0.3, 0.1, 0.4, 0.1, 0.1], [0.6, 0.1, 0.1, 0.1, 0.1], [0.2, 0.2, 0.3, 0.2, 0.3]]
CAT_LOGITS = [[0.5, 2.0, -1.0, 0.0, 0.3], [1.2, -0.7, 0.4, 2.2, -1.5], [3.0, 0.1, 0.2, -0.4, 0.0], [-1.0, 0.5, 0.5, 1.5, -2.0]]
# segmentation masks [2, 2, 2, 1] (Keras's docstring example, then one with soft targets)
SEG_T = [[[[1.0], [1.0]], [[0.0], [0.0]]], [[[1.0], [0.5]], [[0.0], [0.25]]]]
SEG_P = [[[[0.0], [1.0]], [[0.0], [1.0]]], [[[0.4], [0.0]], [[0.0], [0.9]]]]
SW = [1.0, 0.5, 2.0, 0.0]

# CTC: logits [3, 5, 4] (class 0 the blank); labels [3, 4] padded with 0: "1 2 2" (a repeat
# needs a blank between), "3" , "" (empty)
rng = np.random.default_rng(7)
CTC_LOGITS = np.round(rng.normal(size=(3, 5, 4)) * 1.5, 2).tolist()
CTC_LABELS = [[1, 2, 2, 0], [3, 0, 0, 0], [0, 0, 0, 0]]
# impossible alignments in 5 steps: "1 1 1" needs 5 (fits), "1 2 1 2 1 2" does not, "2 2 2 2" needs 7
CTC_LABELS_LONG = [[1, 1, 1, 0, 0, 0], [1, 2, 1, 2, 1, 2], [2, 2, 2, 2, 0, 0]]
# keras.ops.ctc_loss with lengths and the blank last (class 3): labels hold 0 .. 2
OPS_LABELS = [[1, 0, 2, 2], [2, 2, 0, 1], [0, 1, 1, 1]]
OPS_LABEL_LEN = [3, 2, 0]
OPS_LOGIT_LEN = [5, 3, 2]
# the greedy decoder: each step of CTC_LOGITS twice (so repeats occur), [3, 10, 4]
DECODE_LOGITS = np.repeat(np.array(CTC_LOGITS), 2, axis=1).tolist()
# keras.ops.ctc_loss where no alignment exists: 4 labels in 3 steps (the padding past row 1's
# length counts there, as TensorFlow keeps it), a repeat in 2 steps
IMP_LABELS = [[1, 2, 1, 2], [2, 2, 1, 3], [1, 1, 2, 2]]
IMP_LABEL_LEN = [4, 2, 2]
IMP_LOGIT_LEN = [3, 2, 2]
DECODE_LEN = [10, 5, 0]


def arr(v):
    return np.array(v, dtype=np.float64)


def per_example(name, v):
    return (name, np.asarray(v, dtype=np.float64).reshape(-1).tolist())


def losses():
    out = []
    bf = L.binary_focal_crossentropy
    out.append(per_example("bfce", bf(arr(BIN_T), arr(BIN_P))))
    out.append(per_example("bfce_balanced_a0_4_g1_5",
                           bf(arr(BIN_T), arr(BIN_P), apply_class_balancing=True, alpha=0.4, gamma=1.5)))
    out.append(per_example("bfce_logits", bf(arr(BIN_T), arr(SCORES), from_logits=True)))
    out.append(per_example("bfce_logits_smooth_balanced",
                           bf(arr(BIN_T), arr(SCORES), from_logits=True, label_smoothing=0.2,
                              apply_class_balancing=True)))
    out.append(per_example("bfce_smooth_g0", bf(arr(BIN_T), arr(BIN_P), gamma=0.0, label_smoothing=0.1)))
    out.append(per_example("bfce_axis0", np.concatenate([bf(arr(BIN_T), arr(BIN_P), axis=0), [0.0]])))
    cf = L.categorical_focal_crossentropy
    out.append(per_example("cfce", cf(arr(CAT_T), arr(CAT_P))))
    out.append(per_example("cfce_a0_5_g1", cf(arr(CAT_T), arr(CAT_P), alpha=0.5, gamma=1.0)))
    out.append(per_example("cfce_logits", cf(arr(CAT_T), arr(CAT_LOGITS), from_logits=True)))
    out.append(per_example("cfce_logits_smooth", cf(arr(CAT_T), arr(CAT_LOGITS), from_logits=True,
                                                    label_smoothing=0.1)))
    out.append(per_example("cfce_smooth_g0", cf(arr(CAT_T), arr(CAT_P), gamma=0.0, label_smoothing=0.2)))
    # classes along axis 0 ([5, 4]): Keras still smooths by the last axis's size (4)
    out.append(per_example("cfce_logits_smooth_axis0", cf(arr(CAT_T).T, arr(CAT_LOGITS).T, from_logits=True,
                                                          label_smoothing=0.1, axis=0)))
    return out


def seg_losses():
    out = []
    t, p = arr(SEG_T), arr(SEG_P)
    out.append(per_example("dice_axes", L.dice(t, p, axis=(1, 2, 3))))
    out.append(per_example("dice_all", [L.dice(t, p), 0.0]))
    out.append(per_example("tversky_axes", L.tversky(t, p, axis=(1, 2, 3))))
    out.append(per_example("tversky_a0_3_b0_7_axes", L.tversky(t, p, alpha=0.3, beta=0.7, axis=(1, 2, 3))))
    out.append(per_example("tversky_a0_7_b0_2_all", [L.tversky(t, p, alpha=0.7, beta=0.2), 0.0]))
    return out


def reduced():
    # the classes' default reduction (sum_over_batch_size), with per-example sample weights
    out = []
    sw = arr(SW)
    out.append(("BinaryFocalCrossentropy_sw",
                L.BinaryFocalCrossentropy(apply_class_balancing=True)(arr(BIN_T), arr(BIN_P), sample_weight=sw)))
    out.append(("BinaryFocalCrossentropy", L.BinaryFocalCrossentropy(from_logits=True)(arr(BIN_T), arr(SCORES))))
    out.append(("CategoricalFocalCrossentropy_sw",
                L.CategoricalFocalCrossentropy(from_logits=True)(arr(CAT_T), arr(CAT_LOGITS), sample_weight=sw)))
    out.append(("Dice_axes_sw", L.Dice(axis=(1, 2, 3))(arr(SEG_T), arr(SEG_P), sample_weight=arr([0.5, 2.0]))))
    out.append(("Dice", L.Dice()(arr(SEG_T), arr(SEG_P))))
    out.append(("Tversky_axes_sw",
                L.Tversky(alpha=0.3, beta=0.7, axis=(1, 2, 3))(arr(SEG_T), arr(SEG_P), sample_weight=arr([0.5, 2.0]))))
    out.append(("CTC_sw", L.CTC()(np.array(CTC_LABELS), arr(CTC_LOGITS), sample_weight=arr([1.0, 0.5, 2.0]))))
    return [(n, float(v)) for n, v in out]


def ctc_cases():
    x = tf.constant(arr(CTC_LOGITS))
    out = []
    for name, fn in [
        ("ctc", lambda x: L.ctc(np.array(CTC_LABELS), x)),
        ("ctc_long", lambda x: L.ctc(np.array(CTC_LABELS_LONG), x)),
        ("ctc_ops_blank_last", lambda x: keras.ops.ctc_loss(np.array(OPS_LABELS), x, np.array(OPS_LABEL_LEN),
                                                            np.array(OPS_LOGIT_LEN), mask_index=3)),
        ("ctc_ops_impossible", lambda x: keras.ops.ctc_loss(np.array(IMP_LABELS), x, np.array(IMP_LABEL_LEN),
                                                            np.array(IMP_LOGIT_LEN))),
    ]:
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = fn(x)
            total = tf.reduce_sum(loss)
        grad = tape.gradient(total, x)
        out.append((name, loss.numpy().tolist(), grad.numpy().reshape(-1).tolist()))
    return out


def decode_cases():
    out = []
    for name, merge in [("merged", True), ("unmerged", False)]:
        decoded, scores = keras.ops.ctc_decode(arr(DECODE_LOGITS), np.array(DECODE_LEN), strategy="greedy",
                                               merge_repeated=merge)
        out.append((name, np.asarray(decoded).reshape(-1).tolist(), np.asarray(scores).reshape(-1).tolist()))
    decoded, scores = keras.ops.ctc_decode(arr(DECODE_LOGITS), np.array(DECODE_LEN), strategy="greedy", mask_index=2)
    out.append(("blank_2", np.asarray(decoded).reshape(-1).tolist(), np.asarray(scores).reshape(-1).tolist()))
    return out


def flat(v):
    return "{" + ", ".join(repr(float(x)) for x in np.asarray(v, dtype=np.float64).reshape(-1)) + "}"


def ints(v):
    return "{" + ", ".join(str(int(x)) for x in np.asarray(v).reshape(-1)) + "}"


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "more_losses_golden.hpp")
    with open(out, "w") as fh:
        fh.write("#pragma once\n")
        fh.write(f"// Generated by test/golden/more_losses_golden.py (Keras {keras.__version__}, TensorFlow "
                 f"{tf.__version__}) -- do not edit.\n")
        fh.write("// Regenerate: KERAS_BACKEND=tensorflow python3 test/golden/more_losses_golden.py (with keras)\n\n")
        fh.write("namespace more_losses_golden {\n\n// inputs, row-major\n")
        for name, v in [("kBinT", BIN_T), ("kBinP", BIN_P), ("kScores", SCORES), ("kCatT", CAT_T), ("kCatP", CAT_P),
                        ("kCatLogits", CAT_LOGITS), ("kSegT", SEG_T), ("kSegP", SEG_P), ("kSampleWeight", SW),
                        ("kCtcLogits", CTC_LOGITS)]:
            fh.write(f"constexpr double {name}[] = {flat(v)};\n")
        for name, v in [("kCtcLabels", CTC_LABELS), ("kCtcLabelsLong", CTC_LABELS_LONG), ("kOpsLabels", OPS_LABELS),
                        ("kOpsLabelLen", OPS_LABEL_LEN), ("kOpsLogitLen", OPS_LOGIT_LEN),
                        ("kImpLabels", IMP_LABELS), ("kImpLabelLen", IMP_LABEL_LEN), ("kImpLogitLen", IMP_LOGIT_LEN),
                        ("kDecodeLen", DECODE_LEN)]:
            fh.write(f"constexpr long long {name}[] = {ints(v)};\n")
        fh.write("\n// per-example values of the [4, 3] and [4, 5] inputs (axis 0: 3 values and a 0)\n")
        fh.write("struct LossCase {\n  const char* name;\n  double values[4];\n};\n")
        fh.write("inline constexpr LossCase kLosses[] = {\n")
        for name, v in losses():
            fh.write(f'    {{"{name}", {flat(v)}}},\n')
        fh.write("};\n\n// Dice and Tversky of the [2, 2, 2, 1] masks: per example, or one value over every axis and a 0\n")
        fh.write("struct SegCase {\n  const char* name;\n  double values[2];\n};\n")
        fh.write("inline constexpr SegCase kSeg[] = {\n")
        for name, v in seg_losses():
            fh.write(f'    {{"{name}", {flat(v)}}},\n')
        fh.write("};\n\n// the classes' sum_over_batch_size values\n")
        fh.write("struct ReducedCase {\n  const char* name;\n  double value;\n};\n")
        fh.write("inline constexpr ReducedCase kReduced[] = {\n")
        for name, v in reduced():
            fh.write(f'    {{"{name}", {v!r}}},\n')
        fh.write("};\n\n// CTC per example and the gradient of their sum in the logits [3, 5, 4] (float32 precision)\n")
        fh.write("struct CtcCase {\n  const char* name;\n  double loss[3];\n  double grad[60];\n};\n")
        fh.write("inline constexpr CtcCase kCtc[] = {\n")
        for name, loss, grad in ctc_cases():
            fh.write(f'    {{"{name}", {flat(loss)}, {flat(grad)}}},\n')
        fh.write("};\n\n// greedy decoding of each step of kCtcLogits twice ([3, 10, 4]) with kDecodeLen: decoded [1, 3, 10], scores [3, 1]\n")
        fh.write("struct DecodeCase {\n  const char* name;\n  int decoded[30];\n  double scores[3];\n};\n")
        fh.write("inline constexpr DecodeCase kDecode[] = {\n")
        for name, dec, sc in decode_cases():
            fh.write(f'    {{"{name}", {ints(dec)}, {flat(sc)}}},\n')
        fh.write("};\n\n}  // namespace more_losses_golden\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
