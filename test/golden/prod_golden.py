#!/usr/bin/env python3
"""Golden values of prod, cumprod, cumsum's flags and cummax / cummin (test_ops_reduce.cpp,
test_ops_misc.cpp, test_gradcheck.cpp), from NumPy and TensorFlow.

Regenerate (writes prod_golden.hpp beside this script):

    /work/tfvenv/bin/python test/golden/prod_golden.py

Produced with NumPy 2 and tensorflow-cpu 2.21.0. prod's values are np.prod's (checked against
tf.math.reduce_prod's where TensorFlow agrees: floats; TensorFlow keeps int32, NumPy widens to
int64 and so do we); its gradients are TensorFlow's reduce_prod gradient (the products of the
other elements, right with zeros). cumsum / cumprod with exclusive / reverse are
tf.math.cumsum / cumprod's values. cummax / cummin are np.maximum / np.minimum.accumulate, whose
NaN propagates as torch.cummax's values do. TensorFlow's cumprod gradient divides by x (NaN at
zeros), so no cumprod gradient is taken from it: test_gradcheck checks ours by finite
differences.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from _emit import Header  # noqa: E402

header = Header()
floats, ints = header.floats, header.ints


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-12, atol=0, equal_nan=True)


# ---- prod over axes: [2, 3, 4] float64 with one zero in group (0, 1, :) and two in (1, 2, :)
# over axis 2 (the gradcheck's input too)
P = np.array([0.9, -1.2, 0.7, 1.1, 0.8, 0.0, -0.6, 1.3, 1.4, 0.5, -0.9, 1.2,
              -0.7, 1.05, 0.6, 1.5, 0.0, -1.1, 0.95, 0.0, 1.25, 0.0, -0.8, 0.85]).reshape(2, 3, 4)
floats("kP", P)
AXES = {"All": None, "Axis0": (0,), "Axis1": (1,), "Axis2": (2,), "Axes02": (0, 2), "Axes12": (1, 2)}
for name, axes in AXES.items():
    want = np.prod(P, axis=axes, keepdims=True)
    xt = tf.constant(P)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = tf.math.reduce_prod(xt, axis=axes, keepdims=True)
    assert same(y.numpy(), want), name
    # output gradient 1, 2, 3, ... over the output (a wrong placement shows)
    w = np.arange(1, want.size + 1, dtype=np.float64).reshape(want.shape)
    g = tape.gradient(y, xt, output_gradients=tf.constant(w)).numpy()
    assert not np.isnan(g).any()
    floats(f"kProd{name}", want)
    floats(f"kProdGrad{name}", g)

# ---- prod with inf and NaN: [4, 3] rows [inf, -2, 3], [inf, 0, 3], [nan, 0, 1], [-0.0, 5, -1]
PI = np.array([[np.inf, -2.0, 3.0], [np.inf, 0.0, 3.0], [np.nan, 0.0, 1.0], [-0.0, 5.0, -1.0]])
floats("kPi", PI)
xt = tf.constant(PI)
with tf.GradientTape() as tape:
    tape.watch(xt)
    y = tf.math.reduce_prod(xt, axis=1)
assert same(y.numpy(), np.prod(PI, axis=1))
floats("kPiProdAxis1", y.numpy())
floats("kPiProdGradAxis1", tape.gradient(y, xt).numpy())  # NaN only beside an inf and a zero, or a NaN

# ---- integers: NumPy widens int32 (and bool) to int64; int64 products wrap around
PI32 = np.array([[65536, 65536, 3], [-7, 11, 0], [46341, 46341, -1]], dtype=np.int32)
ints("kPInt32", PI32)
assert np.prod(PI32, axis=1).dtype == np.int64
ints("kPInt32ProdAxis1", np.prod(PI32, axis=1))
ints("kPInt32ProdAxis0", np.prod(PI32, axis=0))
PI64 = np.array([2**62, 4, 3, 3**39, 3, 5], dtype=np.int64)
ints("kPInt64", PI64)
with np.errstate(over="ignore"):
    ints("kPInt64Prod", [np.prod(PI64), np.prod(PI64[3:]), np.prod(PI64[:2])])
    ints("kPInt64Cumprod", np.cumprod(PI64))
PB = np.array([[True, True, False], [True, True, True]])
assert np.prod(PB, axis=1).dtype == np.int64
ints("kPBoolProdAxis1", np.prod(PB, axis=1))

# ---- cumsum / cumprod with exclusive and reverse: [3, 5] with zeros, along both axes
C = np.array([[0.9, -1.2, 0.7, 1.1, 0.8], [1.3, 0.0, -0.6, 1.4, 0.5], [-0.9, 0.0, 1.2, 0.0, 0.95]])
floats("kC", C)
for fn, tfn in (("Cumsum", tf.math.cumsum), ("Cumprod", tf.math.cumprod)):
    for axis in (0, 1):
        for exclusive in (False, True):
            for reverse in (False, True):
                v = tfn(tf.constant(C), axis=axis, exclusive=exclusive, reverse=reverse).numpy()
                if not exclusive and not reverse:
                    assert same(v, (np.cumsum if fn == "Cumsum" else np.cumprod)(C, axis=axis))
                flags = ("Excl" if exclusive else "") + ("Rev" if reverse else "")
                floats(f"k{fn}Axis{axis}{flags}", v)
# int32 keeps its dtype (TensorFlow's rule; NumPy widens): int32 wraps around
CI = np.array([65536, 65536, -3, 7, 0, 2], dtype=np.int32)
ints("kCi", CI)
ints("kCiCumprod", tf.math.cumprod(CI).numpy())
ints("kCiCumprodExclRev", tf.math.cumprod(CI, exclusive=True, reverse=True).numpy())
ints("kCiCumsumExcl", tf.math.cumsum(CI, exclusive=True).numpy())

# ---- cummax / cummin: ties, NaN, infinities, both zeros: [2, 7]
M = np.array([[1.0, 3.0, 3.0, 2.0, np.nan, 5.0, np.nan], [0.0, -0.0, -np.inf, 2.0, np.inf, -1.0, 2.0]])
floats("kM", M)
for axis in (0, 1):
    floats(f"kCummaxAxis{axis}", np.maximum.accumulate(M, axis=axis))
    floats(f"kCumminAxis{axis}", np.minimum.accumulate(M, axis=axis))

header.write(__file__)
