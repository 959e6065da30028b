#!/usr/bin/env python3
"""Golden values of Keras 3's loss reductions (test_losses_keras.cpp): each `reduction=` of
keras.losses.Loss ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none")
for MeanSquaredError, SparseCategoricalCrossentropy over a masked sequence,
BinaryCrossentropy from logits and Dice over every axis (a scalar call()), without weights,
with sample weights, with a mask (y_pred's _keras_mask), with both, and with all-zero weights
or an all-false mask.

Regenerate (writes loss_reduction_golden.hpp beside this script):

    KERAS_BACKEND=tensorflow /work/tfvenv/bin/python test/golden/loss_reduction_golden.py

Produced with tensorflow 2.21 and keras 3.15, floatx float64. Each result is the loss class's
__call__ (Keras's reduce_weighted_values); "none" keeps the shape Keras gives (recorded).
"""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras.src import backend  # noqa: E402

from _emit import Header  # noqa: E402

keras.config.set_floatx("float64")
L = keras.losses
REDUCTIONS = ["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none"]

header = Header()
floats, ints = header.floats, header.ints


def arr(v):
    return np.array(v, dtype=np.float64)


# ---- MeanSquaredError: [4, 3] -> values [4]; the mask [4] drops example 2
MSE_T = arr([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5], [0.0, 2.5, 1.0], [-1.5, 0.5, 0.25]])
MSE_P = arr([[0.75, -0.5, 1.0], [1.0, 0.5, 0.5], [-0.5, 2.0, 2.5], [-1.0, 1.5, 0.0]])
SW = arr([1.0, 0.5, 2.0, 0.25])
MASK4 = np.array([True, True, False, True])
# ---- SparseCategoricalCrossentropy of a sequence: labels [3, 4], probabilities [3, 4, 3] ->
# values [3, 4]; the mask [3, 4] keeps 2, 4 and 1 steps (right padding)
SEQ_LABELS = np.array([[0, 2, 1, 0], [1, 1, 2, 0], [2, 0, 0, 1]])
SEQ_P = np.random.default_rng(11).dirichlet([2.0, 2.0, 2.0], size=(3, 4))
SEQ_MASK = np.array([[True, True, False, False], [True, True, True, True], [True, False, False, False]])
SEQ_SW = arr([[1.5], [0.5], [2.0]])  # per example, [3, 1] (Keras refuses [3] for [3, 4] values)
SEQ_SW_STEPS = arr([[1.0, 0.5, 2.0, 1.0], [0.25, 1.0, 1.0, 3.0], [2.0, 1.0, 0.5, 0.5]])
# ---- BinaryCrossentropy from logits: [4, 3] -> values [4]
BIN_T = arr([[1, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 0]])
BIN_LOGITS = arr([[0.8, -0.4, 1.7], [0.3, -2.0, 0.1], [-0.5, 1.2, 0.4], [0.0, 0.9, -1.3]])
# ---- Dice over every axis: one scalar for the [2, 2, 2, 1] batch, which weights broadcast
SEG_T = arr([[[[1.0], [1.0]], [[0.0], [0.0]]], [[[1.0], [0.5]], [[0.0], [0.25]]]])
SEG_P = arr([[[[0.1], [0.9]], [[0.2], [0.7]]], [[[0.4], [0.3]], [[0.1], [0.9]]]])
SEG_SW = arr([0.5, 2.0])

for name, v in [("kMseT", MSE_T), ("kMseP", MSE_P), ("kSw", SW), ("kMask4", MASK4), ("kSeqP", SEQ_P),
                ("kSeqMask", SEQ_MASK), ("kSeqSw", SEQ_SW), ("kSeqSwSteps", SEQ_SW_STEPS), ("kBinT", BIN_T),
                ("kBinLogits", BIN_LOGITS), ("kSegT", SEG_T), ("kSegP", SEG_P), ("kSegSw", SEG_SW)]:
    floats(name, np.asarray(v, dtype=np.float64))
ints("kSeqLabels", SEQ_LABELS)

# the weightings of each loss: (name, sample_weight, mask); the C++ test builds the same
LOSSES = [
    ("mse", lambda r: L.MeanSquaredError(reduction=r), MSE_T, MSE_P, [
        ("plain", None, None),
        ("sw", SW, None),
        ("sw_col", SW.reshape(4, 1), None),
        ("sw_scalar", arr(2.5), None),
        ("mask", None, MASK4),
        ("sw_mask", SW, MASK4),
        ("zero_sw", np.zeros(4), None),
        ("zero_mask", None, np.zeros(4, dtype=bool)),
    ]),
    ("scce_seq", lambda r: L.SparseCategoricalCrossentropy(reduction=r), SEQ_LABELS, SEQ_P, [
        ("plain", None, None),
        ("sw_col", SEQ_SW, None),
        ("sw_steps", SEQ_SW_STEPS, None),
        ("mask", None, SEQ_MASK),
        ("sw_col_mask", SEQ_SW, SEQ_MASK),
        ("sw_steps_mask", SEQ_SW_STEPS, SEQ_MASK),
        ("zero_sw_col", np.zeros((3, 1)), None),
        ("zero_sw_mask", np.zeros((3, 1)), SEQ_MASK),
        ("zero_mask", None, np.zeros((3, 4), dtype=bool)),
    ]),
    ("bce_logits", lambda r: L.BinaryCrossentropy(from_logits=True, reduction=r), BIN_T, BIN_LOGITS, [
        ("plain", None, None),
        ("sw", SW, None),
        ("mask", None, MASK4),
        ("sw_mask", SW, MASK4),
        ("zero_sw", np.zeros(4), None),
    ]),
    ("dice_all", lambda r: L.Dice(reduction=r), SEG_T, SEG_P, [
        ("plain", None, None),
        ("sw", SEG_SW, None),
        ("zero_sw", np.zeros(2), None),
    ]),
]


def run(make, reduction, t, p, sw, mask):
    y_pred = tf.constant(p)
    if mask is not None:
        backend.set_keras_mask(y_pred, tf.constant(mask))
    return np.asarray(make(reduction)(t, y_pred, sample_weight=sw))


rows = []
for loss, make, t, p, weightings in LOSSES:
    for weighting, sw, mask in weightings:
        for reduction in REDUCTIONS:
            v = run(make, reduction, t, p, sw, mask)
            if reduction == "none":  # Keras's None is "none"
                assert np.array_equal(v, run(make, None, t, p, sw, mask))
            if reduction == "mean":  # "mean" is "sum_over_batch_size"
                assert np.array_equal(v, run(make, "sum_over_batch_size", t, p, sw, mask))
            name = "k" + "".join(w.capitalize() for w in f"{loss}_{weighting}_{reduction}".split("_"))
            floats(name, v)
            rows.append((loss, weighting, reduction, name, v.shape))

table = ["// every case: the loss, the weighting, the reduction, Keras's result and its shape",
         "struct Case {\n  const char* loss;\n  const char* weighting;\n  const char* reduction;\n"
         "  const double* values;\n  std::int64_t rank;\n  std::int64_t shape[2];\n};",
         "inline const Case kCases[] = {"]
for loss, weighting, reduction, name, shape in rows:
    dims = list(shape) + [0] * (2 - len(shape))
    table.append(f'    {{"{loss}", "{weighting}", "{reduction}", {name}, {len(shape)}, {{{dims[0]}, {dims[1]}}}}},')
table.append("};")
header.append("\n".join(table))

# ---- fit: one epoch of SGD(0.1) on Dense(1) (kernel ones, bias zeros), 5 examples in batches
# of 2, 2, 1, unshuffled. An unreduced loss ("none") trains on the gradient of its sum (the tape
# sums a non-scalar target) and logs its mean (the loss tracker reduces it)
FIT_X = arr([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5], [-1.0, 0.25], [2.0, 1.0]])
FIT_Y = arr([[1.0], [2.0], [0.0], [-0.5], [1.5]])
FIT_SW = arr([1.0, 0.5, 2.0, 0.0, 1.5])
floats("kFitX", FIT_X)
floats("kFitY", FIT_Y)
floats("kFitSw", FIT_SW)


def dense(name=None, regularizer=None):
    return keras.layers.Dense(1, kernel_initializer="ones", bias_initializer="zeros", name=name,
                              kernel_regularizer=regularizer)


fit_rows = []
for reduction, sw in [("none", None), ("sum", None), ("sum_over_batch_size", None), ("none", FIT_SW),
                      ("mean_with_sample_weight", FIT_SW)]:
    model = keras.Sequential([keras.Input((2,)), dense()])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=L.MeanSquaredError(reduction=reduction))
    h = model.fit(FIT_X, FIT_Y, batch_size=2, epochs=1, shuffle=False, verbose=0, sample_weight=sw)
    name = "kFit" + "".join(w.capitalize() for w in reduction.split("_")) + ("Sw" if sw is not None else "")
    kernel, bias = model.get_weights()
    floats(name, np.concatenate([kernel.reshape(-1), bias, [h.history["loss"][0]]]))

# two outputs, "none" and the default: Keras's sum broadcasts the scalar over the unreduced
# values, so the gradient of their sum weighs the second output by the batch size. The first 4
# examples, two batches of 2: Keras's per-output trackers take a plain mean over the batches
# (their weight, the batch size, is unknown in the traced step), not weighted by their sizes
inp = keras.Input((2,))
two = keras.Model(inp, [dense("a")(inp), dense("b")(inp)])
two.compile(optimizer=keras.optimizers.SGD(0.1), loss=[L.MeanSquaredError(reduction="none"), L.MeanSquaredError()])
h = two.fit(FIT_X[:4], [FIT_Y[:4], FIT_Y[:4] * 2.0], batch_size=2, epochs=1, shuffle=False, verbose=0)
ka, ba, kb, bb = two.get_weights()
floats("kFitTwoOutputs", np.concatenate([ka.reshape(-1), ba, kb.reshape(-1), bb,
                                         [h.history["loss"][0], h.history["a_loss"][0], h.history["b_loss"][0]]]))

# an unreduced loss with a regularization penalty: Keras cannot add the two
model = keras.Sequential([keras.Input((2,)), dense(regularizer=keras.regularizers.L2(0.1))])
model.compile(optimizer=keras.optimizers.SGD(0.1), loss=L.MeanSquaredError(reduction="none"))
try:
    model.fit(FIT_X, FIT_Y, batch_size=2, epochs=1, verbose=0)
    raise AssertionError("no error")
except ValueError:
    pass

# the ValueError of an unknown reduction
try:
    L.MeanSquaredError(reduction="avg")
    raise AssertionError("no error")
except ValueError as e:
    assert "Invalid value for argument `reduction`" in str(e)

header.write(__file__)
