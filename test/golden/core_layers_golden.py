#!/usr/bin/env python3
"""Golden outputs of Keras 3's core layers that tapeflow adds in core_layers.cpp: TimeDistributed
(Dense) with fixed weights (output and the gradients of sum(y * linspace(-1, 1)) with respect to
the input and the kernel), Permute, RepeatVector, UpSampling1D, ZeroPadding1D, Cropping1D,
Normalization (adapt over several axis settings, fixed statistics, invert, a constant feature
that hits Keras's epsilon), ActivityRegularization's loss, and GroupNormalization and
UnitNormalization (outputs and gradients), produced by the real Keras 3 (TensorFlow backend) in
float64.

Regenerate (writes core_layers_golden.hpp beside this script):

    KERAS_BACKEND=tensorflow /path/to/venv-with-keras/bin/python test/golden/core_layers_golden.py

Produced with tensorflow 2.21.0 and keras 3.15.1, floatx float64.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

keras.config.set_floatx("float64")
L = keras.layers
rng = np.random.default_rng(23)
out = []


def arr(name, a):
    a = np.asarray(a, dtype=np.float64).ravel()
    out.append(f"constexpr double {name}[] = {{{', '.join(repr(float(v)) for v in a)}}};")


def shape(name, s):
    out.append(f"constexpr std::int64_t {name}[] = {{{', '.join(str(int(d)) for d in s)}}};")


def normal(*s):
    return rng.normal(size=s)


def grads(layer, x, weights):
    xv = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = layer(xv)
        loss = tf.reduce_sum(y * tf.reshape(tf.linspace(tf.constant(-1.0, tf.float64), 1.0, tf.size(y)), y.shape))
    return y.numpy(), [g.numpy() for g in tape.gradient(loss, [xv] + weights)]


# TimeDistributed(Dense): rank 3 and rank 4 inputs
for i, (xs, units, act) in enumerate([((2, 3, 4), 3, "tanh"), ((2, 3, 2, 4), 2, "linear")]):
    x = normal(*xs)
    td = L.TimeDistributed(L.Dense(units, activation=act))
    td.build(xs)
    k, b = normal(xs[-1], units) * 0.5, normal(units) * 0.1
    td.layer.set_weights([k, b])
    y, (dx, dk, db) = grads(td, x, [td.layer.kernel, td.layer.bias])
    shape(f"kTdXShape{i}", xs)
    arr(f"kTdX{i}", x)
    arr(f"kTdKernel{i}", k)
    arr(f"kTdBias{i}", b)
    shape(f"kTdYShape{i}", y.shape)
    arr(f"kTdY{i}", y)
    arr(f"kTdDx{i}", dx)
    arr(f"kTdDkernel{i}", dk)
    arr(f"kTdDbias{i}", db)

# shape layers: the input is arange, the output Keras's
SHAPE_CASES = [
    ("Permute21", L.Permute((2, 1)), (2, 3, 4)),
    ("Permute312", L.Permute((3, 1, 2)), (2, 2, 3, 4)),
    ("RepeatVector3", L.RepeatVector(3), (2, 4)),
    ("UpSampling1D3", L.UpSampling1D(3), (2, 3, 2)),
    ("ZeroPadding1D12", L.ZeroPadding1D((1, 2)), (2, 3, 2)),
    ("Cropping1D12", L.Cropping1D((1, 2)), (2, 5, 2)),
]
for name, layer, xs in SHAPE_CASES:
    x = np.arange(np.prod(xs), dtype=np.float64).reshape(xs)
    y = np.asarray(layer(x))
    shape(f"k{name}XShape", xs)
    shape(f"k{name}YShape", y.shape)
    arr(f"k{name}Y", y)

# Normalization.adapt: the statistics and the output for another input
NORM_CASES = [
    ("Last", dict(axis=-1), (7, 3)),
    ("Axis12", dict(axis=(1, 2)), (5, 2, 3)),
    ("Axis1Of3", dict(axis=1), (4, 3, 2)),
    ("None", dict(axis=None), (4, 3)),
]
for name, kw, xs in NORM_CASES:
    data = normal(*xs) * 2 + 1
    layer = L.Normalization(**kw)
    layer.adapt(data)
    x = normal(*xs)
    shape(f"kNorm{name}Shape", xs)
    arr(f"kNorm{name}Data", data)
    arr(f"kNorm{name}Mean", layer.adapt_mean.numpy())
    arr(f"kNorm{name}Var", layer.adapt_variance.numpy())
    arr(f"kNorm{name}X", x)
    arr(f"kNorm{name}Y", np.asarray(layer(x)))

# a constant feature: its variance is 0 and Keras divides by epsilon (1e-7)
data = np.stack([np.linspace(-1, 2, 6), np.full(6, 0.5)], axis=1)
layer = L.Normalization()
layer.adapt(data)
x = np.array([[0.0, 0.5], [1.0, 0.5 + 1e-6]])
arr("kNormConstData", data)
arr("kNormConstX", x)
arr("kNormConstY", np.asarray(layer(x)))

# fixed statistics (a mean of rank 1 for two kept axes lines up with the last), and invert
x = normal(2, 3, 4)
fixed = L.Normalization(axis=(1, 2), mean=[1.0, -2.0, 0.5, 3.0], variance=[4.0, 0.25, 1.0, 9.0])
inverse = L.Normalization(axis=(1, 2), mean=[1.0, -2.0, 0.5, 3.0], variance=[4.0, 0.25, 1.0, 9.0], invert=True)
arr("kNormFixedX", x)
arr("kNormFixedY", np.asarray(fixed(x)))
arr("kNormInvertY", np.asarray(inverse(x)))

# ActivityRegularization: the loss Keras adds (divided by the batch size)
x = normal(4, 3)
reg = L.ActivityRegularization(l1=0.01, l2=0.03)
reg(x)
arr("kActRegX", x)
arr("kActRegLoss", [float(reg.losses[0])])

# GroupNormalization (gamma and beta set) and UnitNormalization: output and the gradients of
# sum(y * linspace(-1, 1)) with respect to the input and the weights. Their own generator, so
# that the values above stay as they were.
rng = np.random.default_rng(37)
GROUP_CASES = [
    # (xs, groups, axis, epsilon, center, scale)
    ((2, 4, 4, 6), 3, -1, 1e-3, True, True),
    ((2, 4, 4, 6), -1, -1, 1e-3, True, True),  # instance normalization
    ((2, 5, 8), 2, -1, 1e-3, True, True),
    ((2, 6, 3, 2), 2, 1, 1e-5, True, True),  # channels first
    ((3, 8), 4, -1, 1e-3, False, True),
    ((2, 3, 4), 1, 2, 1e-3, False, False),  # one group: the whole example
]
for i, (xs, groups, axis, eps, center, scale) in enumerate(GROUP_CASES):
    x = normal(*xs) * 2 + 0.5
    gn = L.GroupNormalization(groups=groups, axis=axis, epsilon=eps, center=center, scale=scale)
    gn.build(xs)
    channels = xs[axis]
    gamma, beta = 1 + 0.5 * normal(channels), 0.3 * normal(channels)
    gn.set_weights(([gamma] if scale else []) + ([beta] if center else []))
    y, g = grads(gn, x, gn.trainable_weights)
    shape(f"kGroupXShape{i}", xs)
    arr(f"kGroupX{i}", x)
    arr(f"kGroupGamma{i}", gamma)
    arr(f"kGroupBeta{i}", beta)
    arr(f"kGroupY{i}", y)
    arr(f"kGroupDx{i}", g[0])
    arr(f"kGroupDgamma{i}", g[1] if scale else [0.0])
    arr(f"kGroupDbeta{i}", g[1 + scale] if center else [0.0])

UNIT_CASES = [
    ("Last", [-1], (2, 3, 4)),
    ("Axes12", [1, 2], (2, 3, 4)),
    ("Axis1", [1], (2, 3, 4)),
    ("Batch", [0], (3, 4)),
]
for name, axis, xs in UNIT_CASES:
    x = normal(*xs)
    y, (dx,) = grads(L.UnitNormalization(axis=axis), x, [])
    shape(f"kUnit{name}Shape", xs)
    arr(f"kUnit{name}X", x)
    arr(f"kUnit{name}Y", y)
    arr(f"kUnit{name}Dx", dx)
# a zero row stays zero (the norm's floor, 1e-12), its gradient 1e12 times the output gradient
x = np.array([[0.0, 0.0, 0.0], [3.0, -4.0, 1e-13]])
y, (dx,) = grads(L.UnitNormalization(), x, [])
arr("kUnitZeroX", x)
arr("kUnitZeroY", y)
arr("kUnitZeroDx", dx)

header = [
    "#pragma once",
    f"// Generated by test/golden/core_layers_golden.py (Keras {keras.__version__}, TensorFlow {tf.__version__})"
    " -- do not edit.",
    "// Regenerate: KERAS_BACKEND=tensorflow python3 test/golden/core_layers_golden.py (with keras)",
    "#include <cstdint>",
    "",
    "namespace core_layers_golden {",
    "",
]
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "core_layers_golden.hpp")
with open(path, "w") as f:
    f.write("\n".join(header + out + ["", "}  // namespace core_layers_golden", ""]))
print("wrote", path)
