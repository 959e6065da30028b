#!/usr/bin/env python3
"""Golden values of the trigonometric and hyperbolic ops, atan2, floor_divide / mod and the
math composites (test_ops_elementwise.cpp), from NumPy and TensorFlow.

Regenerate (writes math_golden.hpp beside this script):

    /work/tfvenv/bin/python test/golden/math_golden.py

Produced with NumPy 2 and tensorflow-cpu 2.21.0. Each value is NumPy's; the script asserts
that TensorFlow's agrees (to a few ulps for the functions, exactly for atan2, floor division
and the remainder) wherever both define it, and says below where they differ:
- float floor division: NumPy's divmod rounds (a - fmod(a, b)) / b, TensorFlow's floordiv is
  floor(a / b); they differ where a / b rounds up to a whole number (1 // 0.1: NumPy 9, TF 10),
  so those inputs are NumPy's only; an infinite dividend gives NaN in NumPy (fmod's), inf in
  TensorFlow (inf // 2); a zero remainder takes the divisor's sign in NumPy (4.0 % -2.0 is
  -0.0), the dividend's in TensorFlow (fmod's). Division by zero: NumPy's values (inf, NaN), TF's too.
- integer division by zero: NumPy gives 0 for // and % (with a warning); TensorFlow's CPU
  kernel raises, so those are NumPy's only.
- the gradients are TensorFlow's (GradientTape), float64.
"""
import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _emit import Header  # noqa: E402

warnings.simplefilter("ignore")  # NumPy's warnings on NaN, overflow and division by zero
golden = Header("math_golden")
floats, ints = golden.floats, golden.ints


def same(a, b, rtol, zero_signs=True):
    """a and b equal to rtol, NaN where the other is NaN, infinities (and zeros' signs) alike."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    assert (np.isnan(a) == np.isnan(b)).all(), (a, b)
    ok = ~np.isnan(a)
    assert (np.isinf(a[ok]) == np.isinf(b[ok])).all(), (a, b)
    assert np.allclose(a[ok], b[ok], rtol=rtol, atol=0), (a, b)
    z = ok & (a == 0)
    assert not zero_signs or (np.signbit(a[z]) == np.signbit(b[z])).all(), (a, b)


# ---- unary: every special value and a few in each domain --------------------------------------
X = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 0.5, -0.5, 1.0, -1.0, 2.0, -3.7, 1e-8, -1e-8, 0.99,
              -0.99, 1.0000001, 10.0, -10.0, 100.0, 1000.0, 1e300])
floats("kX", X)
UNARY = [("Tan", np.tan, tf.math.tan), ("Asin", np.arcsin, tf.math.asin), ("Acos", np.arccos, tf.math.acos),
         ("Atan", np.arctan, tf.math.atan), ("Sinh", np.sinh, tf.math.sinh), ("Cosh", np.cosh, tf.math.cosh),
         ("Asinh", np.arcsinh, tf.math.asinh), ("Acosh", np.arccosh, tf.math.acosh),
         ("Atanh", np.arctanh, tf.math.atanh)]
for name, f_np, f_tf in UNARY:
    y = f_np(X)
    # tan(1e300) and the like: argument reduction of huge values may differ in the last bits
    same(y, f_tf(tf.constant(X)).numpy(), 1e-9 if name == "Tan" else 1e-14)
    floats(f"k{name}64", y)
    y32 = f_np(X.astype(np.float32))
    same(y32, f_tf(tf.constant(X.astype(np.float32))).numpy(), 1e-6)
    floats(f"k{name}32", y32)

# ---- atan2(y, x): every pair of signed zeros, ones, infinities and NaN, y [7, 1] with x [7] ------
S = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan])
floats("kS", S)
A2 = np.arctan2(S[:, None], S[None, :])
sy, sx = np.broadcast_arrays(S[:, None], S[None, :])
same(A2, tf.math.atan2(tf.constant(sy), tf.constant(sx)).numpy(), 1e-15)  # TF: an ulp off at pi / 4
floats("kAtan2", A2)
Y2 = np.array([0.3, -2.0, 5.0, -0.7])
X2 = np.array([1.5, -0.4, -3.0, 2.0])
floats("kAtan2Y", Y2)
floats("kAtan2X", X2)
floats("kAtan2YX", np.arctan2(Y2, X2))

# ---- floor_divide and mod ----------------------------------------------------------------------
# floats [11, 1] with [9]: signs, halves, zeros, infinities, NaN
FA = np.array([-7.0, 7.0, -7.5, 7.5, 0.0, -0.0, 1.0, -5.0, np.inf, np.nan, 4.0])
FB = np.array([2.0, -2.0, 0.5, -0.5, 0.0, np.inf, -np.inf, np.nan, 0.1])
floats("kFa", FA)
floats("kFb", FB)
FD = np.floor_divide(FA[:, None], FB[None, :])
FM = np.remainder(FA[:, None], FB[None, :])
assert (np.mod(FA[:, None], FB[None, :]) == FM)[~np.isnan(FM)].all()
floats("kFloorDiv", FD)
floats("kFloorMod", FM)
# TensorFlow agrees on the finite divisors but 0.1 (floor(a / b) there), and on 0 (inf / NaN)
ta, tb = np.broadcast_arrays(FA[:, None], FB[None, :])
tf_fd = tf.math.floordiv(tf.constant(ta), tf.constant(tb)).numpy()
tf_fm = tf.math.floormod(tf.constant(ta), tf.constant(tb)).numpy()
cols = [0, 1, 2, 3]  # 2, -2, 0.5, -0.5
rows = [i for i, v in enumerate(FA) if not np.isinf(v)]  # inf // 2: NumPy NaN (fmod's), TF inf
same(FD[np.ix_(rows, cols)], tf_fd[np.ix_(rows, cols)], 0)
same(FM[np.ix_(rows, cols)], tf_fm[np.ix_(rows, cols)], 0, zero_signs=False)
assert np.isnan(FD[8, 0]) and tf_fd[8, 0] == np.inf
assert FD[6, 8] == 9.0 and tf_fd[6, 8] == 10.0  # 1 // 0.1: NumPy 9, TensorFlow 10
# float32: the same table in float32
FD32 = np.floor_divide(FA[:, None].astype(np.float32), FB[None, :].astype(np.float32))
FM32 = np.remainder(FA[:, None].astype(np.float32), FB[None, :].astype(np.float32))
floats("kFloorDiv32", FD32)
floats("kFloorMod32", FM32)

# integers [9, 1] with [8]: signs, the extremes of int32 and int64, division by 0 and -1
IA32 = np.array([-7, 7, -8, 8, 0, 1, -1, -2**31, 2**31 - 1], dtype=np.int32)
IB32 = np.array([2, -2, 3, -3, 1, -1, 0, 7], dtype=np.int32)
ints("kIa32", IA32)
ints("kIb32", IB32)
ints("kFloorDivI32", np.floor_divide(IA32[:, None], IB32[None, :]))
ints("kFloorModI32", np.remainder(IA32[:, None], IB32[None, :]))
IA64 = np.array([-7, 7, -8, 8, 0, 1, -1, -2**63, 2**63 - 1], dtype=np.int64)
IB64 = IB32.astype(np.int64)
ints("kIa64", IA64)
ints("kFloorDivI64", np.floor_divide(IA64[:, None], IB64[None, :]))
ints("kFloorModI64", np.remainder(IA64[:, None], IB64[None, :]))
# TensorFlow agrees wherever the divisor is not 0 (its CPU kernel raises there) and not -1
# (INT_MIN // -1 overflows: NumPy wraps)
for ia, ib in ((IA32, IB32), (IA64, IB64)):
    cols = [j for j, v in enumerate(ib) if v not in (0, -1)]
    a_, b_ = np.broadcast_arrays(ia[:, None], ib[None, cols])
    assert (tf.math.floordiv(a_, b_).numpy() == np.floor_divide(a_, b_)).all()
    assert (tf.math.floormod(a_, b_).numpy() == np.remainder(a_, b_)).all()

# ---- composites --------------------------------------------------------------------------------
P = np.array([0.0, -0.0, 1.0, 2.0, 0.25, 8.0, 1000.0, 3.7, 1e-5, np.inf, -1.0, np.nan])
floats("kP", P)
floats("kReciprocal", np.reciprocal(P))
same(np.reciprocal(P), tf.math.reciprocal(tf.constant(P)).numpy(), 0)
rs = 1.0 / np.sqrt(P)
same(rs, tf.math.rsqrt(tf.constant(P)).numpy(), 1e-15)
floats("kRsqrt", rs)
floats("kLog2", np.log2(P))
floats("kLog10", np.log10(P))
same(np.log10(P), (tf.math.log(tf.constant(P)) / np.log(10.0)).numpy(), 1e-15)
E = np.array([0.0, -0.0, 1.0, 10.0, -3.0, 0.5, -0.25, 1023.0, 1024.0, -1074.0, -np.inf, np.nan])
floats("kE", E)
floats("kExp2", np.exp2(E))
SA = np.array([1.5, -2.0, 3.0])
SB = np.array([[0.5], [4.0]])
floats("kSqA", SA)
floats("kSqB", SB)
sq = np.square(SA - SB)
same(sq, tf.math.squared_difference(tf.constant(SA), tf.constant(SB)).numpy(), 0)
floats("kSquaredDifference", sq)
LA = np.array([0.0, 2.0, np.nan, -1.0, 0.0])
LB = np.array([0.0, 0.0, 1.0, 3.0, np.nan])
floats("kXorA", LA)
floats("kXorB", LB)
ints("kXor", np.logical_xor(LA, LB))
assert (tf.math.logical_xor(LA != 0, LB != 0).numpy() == np.logical_xor(LA, LB)).all()

# ---- TensorFlow's gradients (float64) -----------------------------------------------------------
GX = np.array([-0.9, -0.3, 0.2, 0.75])  # inside every domain but acosh's
GXC = np.array([1.1, 1.5, 2.0, 4.0])  # acosh's
floats("kGx", GX)
floats("kGxAcosh", GXC)
for name, _, f_tf in UNARY:
    x = tf.constant(GXC if name == "Acosh" else GX)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = f_tf(x)
    floats(f"kGrad{name}", tape.gradient(y, x).numpy())
GA = np.array([[-7.5], [3.2], [-0.4]])
GB = np.array([2.0, -0.7, 1.3])
floats("kGa", GA)
floats("kGb", GB)
for name, f_tf in (("Atan2", tf.math.atan2), ("FloorMod", tf.math.floormod), ("FloorDiv", tf.math.floordiv)):
    a, b = tf.constant(GA), tf.constant(GB)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([a, b])
        y = f_tf(a, b)
    da, db = tape.gradient(y, [a, b], unconnected_gradients=tf.UnconnectedGradients.ZERO)
    floats(f"kGrad{name}A", da.numpy())
    floats(f"kGrad{name}B", db.numpy())

golden.write(__file__)
