#!/usr/bin/env python3
"""Golden values of TensorFlow's index ops (test_ops_misc.cpp): tf.where with one argument
(nonzero), tf.boolean_mask, tf.gather_nd (batch_dims 0 and 1, and its gradient),
tf.scatter_nd, tf.tensor_scatter_nd_add, tf.math.unsorted_segment_sum / _mean / _max / _min (and
the gradients of the last two with ties), and NumPy's np.maximum.at / np.minimum.at for scatter_max /
scatter_min (PyTorch's scatter_reduce "amax" / "amin" with include_self), and the wrap / clip /
fill IndexModes of gather_nd, scatter_nd and the segment ops (NumPy adjusting the coordinates,
then TensorFlow on the adjusted ones).

Regenerate (writes nd_index_golden.hpp beside this script):

    /work/tfvenv/bin/python test/golden/nd_index_golden.py

Produced with tensorflow-cpu 2.21.0 (on the CPU, where a negative segment id is dropped).
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _emit import Header  # noqa: E402

out = Header()
floats, ints = out.floats, out.ints

# params [2, 3, 4]: 0.5 i - 3 (distinct values, some negative)
P = (0.5 * np.arange(24) - 3).reshape(2, 3, 4)
floats("kP", P)

# tf.where(condition): a float condition with zeros and a NaN (non-zero), and a 3-D bool one
C = np.array([[0.0, 1.5, 0.0], [np.nan, 0.0, -2.0]])
ints("kWhereFloat", tf.where(C).numpy())
B = (P.astype(np.int64) % 3 == 0)
ints("kB", B)
ints("kWhereBool", tf.where(B).numpy())

# boolean_mask: mask [3, 4] at axis 1, mask [2] at axis 0, mask [4] at axis 2
M34 = B[0]
floats("kMaskAxis1", tf.boolean_mask(P, M34, axis=1).numpy())
floats("kMaskAxis0", tf.boolean_mask(P, np.array([False, True]), axis=0).numpy())
M4 = np.array([True, False, True, True])
floats("kMaskAxis2", tf.boolean_mask(P, M4, axis=2).numpy())

# gather_nd
I2 = np.array([[1, 2], [0, 0], [1, 2]])
floats("kGatherNdSlices", tf.gather_nd(P, I2).numpy())  # [3, 4]
I3 = np.array([[[1, 2, 3], [0, 1, 0]], [[0, 0, 0], [1, 0, 2]]])
floats("kGatherNdPoints", tf.gather_nd(P, I3).numpy())  # [2, 2]
IB = np.array([[[2], [0]], [[1], [1]]])
floats("kGatherNdBatch1", tf.gather_nd(P, IB, batch_dims=1).numpy())  # [2, 2, 4]
IB2 = np.array([[[2, 3], [0, 1], [2, 3]], [[1, 0], [0, 0], [2, 2]]])
floats("kGatherNdBatch1Points", tf.gather_nd(P, IB2, batch_dims=1).numpy())  # [2, 3]
# gradient of sum(gather_nd(P, I2) * W) in P: W added back at each slice, duplicates summed
W = np.arange(12, dtype=np.float64).reshape(3, 4) + 1
p = tf.constant(P)
with tf.GradientTape() as tape:
    tape.watch(p)
    y = tf.reduce_sum(tf.gather_nd(p, I2) * W)
floats("kGatherNdGrad", tape.gradient(y, p).numpy())

# scatter_nd: TensorFlow's doc example, and slices with a duplicate
floats("kScatterNdDoc", tf.scatter_nd([[4], [3], [1], [7]], tf.constant([9.0, 10, 11, 12], tf.float64), [8]).numpy())
U = np.arange(12, dtype=np.float64).reshape(3, 4) - 5
floats("kScatterNdSlices", tf.scatter_nd(I2, U, [2, 3, 4]).numpy())
ints("kScatterNdInt", tf.scatter_nd([[0, 1], [1, 1], [0, 1]], tf.constant([5, 7, -2], tf.int32), [2, 2]).numpy())

# tensor_scatter_nd_add
floats("kTensorScatterNdAdd", tf.tensor_scatter_nd_add(P, I2, U).numpy())

# unsorted segments: data [5, 3], ids with a repeat, an empty segment (2) and a dropped row (-1)
D = np.array([[1.0, -2, 3], [4, 5, -6], [-7, 8, 9], [10, -11, 12], [2, 2, -20]])
ids = np.array([0, 3, 0, -1, 3])
floats("kD", D)
floats("kSegSum", tf.math.unsorted_segment_sum(D, ids, 4).numpy())
floats("kSegMean", tf.math.unsorted_segment_mean(D, ids, 4).numpy())
floats("kSegMax", tf.math.unsorted_segment_max(D, ids, 4).numpy())
ints("kSegMaxInt", tf.math.unsorted_segment_max(D.astype(np.int32), ids, 4).numpy())
# ids [2, 3] a prefix of data [2, 3, 2]
ids2 = np.array([[1, 0, 1], [1, 2, 0]])
D2 = (0.5 * np.arange(12) - 2).reshape(2, 3, 2)
floats("kSegSum2d", tf.math.unsorted_segment_sum(D2, ids2, 3).numpy())
floats("kSegMax2d", tf.math.unsorted_segment_max(D2, ids2, 3).numpy())
floats("kSegMin", tf.math.unsorted_segment_min(D, ids, 4).numpy())
ints("kSegMinInt", tf.math.unsorted_segment_min(D.astype(np.int32), ids, 4).numpy())
floats("kSegMin2d", tf.math.unsorted_segment_min(D2, ids2, 3).numpy())
# a segment of -inf rows has max -DBL_MAX (the filler), as TensorFlow
floats("kSegMaxInf", tf.math.unsorted_segment_max(np.array([[-np.inf, 1.0], [-np.inf, 2.0]]), [0, 0], 1).numpy())
# gradients of sum(segment_max(DT) * WS) (and min) with ties: each tie's share is even
DT = np.array([[1.0, 5, -2], [3, 5, -2], [3, -1, 0], [0, 2, 7], [9, 9, 9]])
idsT = np.array([0, 0, 0, 1, -1])
WS = np.array([[1.0, 2, 3], [4, 5, 6]])
for name, fn in (("kSegMaxGrad", tf.math.unsorted_segment_max), ("kSegMinGrad", tf.math.unsorted_segment_min)):
    dt = tf.constant(DT)
    with tf.GradientTape() as tape:
        tape.watch(dt)
        y = tf.reduce_sum(fn(dt, idsT, 2) * WS)
    floats(name, tape.gradient(y, dt).numpy())
floats("kDT", DT)

# scatter_max / scatter_min along axis 0 of base [3, 4]: index [2, 4], a duplicate column hit
# twice, a NaN in src (propagated), as np.maximum.at / np.minimum.at
SB = np.array([[0.0, 1, 2, 3], [4, 5, 6, 7], [-1, -2, -3, -4]])
SI = np.array([[0, 2, 1, 2], [0, 2, 2, 0]])
SS = np.array([[2.0, -5, np.nan, 10], [-3, 1, 6, -9]])
floats("kSB", SB)
ints("kSI", SI)
floats("kSS", SS)
cols = np.broadcast_to(np.arange(4), SI.shape)
for name, ufunc in (("kScatterMax", np.maximum), ("kScatterMin", np.minimum)):
    o = SB.copy()
    ufunc.at(o, (SI, cols), SS)
    floats(name, o)


# IndexMode for gather_nd, scatter_nd and the segment ops: coordinates adjusted axis by axis as
# NumPy's take(mode=) adjusts one axis (wrap: floor modulo; clip: clamp), fill counting [-n, 0)
# from the end and zeroing (gather) / dropping (scatter) an entry with any other coordinate out
# of range (TensorFlow's GPU kernels), then the ops above on the adjusted in-range coordinates.
IO = np.array([[1, 3], [-1, 2], [5, -4], [0, -2]])  # into P's axes 0 and 1, sizes (2, 3)
SZ = np.array([2, 3])


def adjust(idx, sizes, mode):
    if mode == "wrap":
        return np.mod(idx, sizes), np.ones(idx.shape[:-1], bool)
    if mode == "clip":
        return np.clip(idx, 0, sizes - 1), np.ones(idx.shape[:-1], bool)
    idx = np.where(idx < 0, idx + sizes, idx)
    ok = np.all((idx >= 0) & (idx < sizes), axis=-1)
    return np.where(ok[..., None], idx, 0), ok


ints("kIO", IO)
UO = np.arange(16, dtype=np.float64).reshape(4, 4) - 7
for mode in ("wrap", "clip", "fill"):
    a, ok = adjust(IO, SZ, mode)
    got = tf.gather_nd(P, a).numpy() * ok[:, None]
    floats("kGatherNd" + mode.capitalize(), got)
    floats("kScatterNd" + mode.capitalize(), tf.scatter_nd(a[ok], UO[ok], [2, 3, 4]).numpy())
# batch_dims 1: indices [2, 2, 1] into axis 1 (size 3)
IBO = np.array([[[4], [-1]], [[-3], [1]]])
ints("kIBO", IBO)
for mode in ("wrap", "clip", "fill"):
    a, ok = adjust(IBO, np.array([3]), mode)
    floats("kGatherNdBatch" + mode.capitalize(), tf.gather_nd(P, a, batch_dims=1).numpy() * ok[..., None])
# segments: ids >= num_segments wrapped, clipped or dropped; negative ids dropped in every mode
D6 = np.vstack([D, [[-1.0, 6, 0.5]]])
idsO = np.array([0, 5, 0, -1, 3, 4])
floats("kD6", D6)
for mode, adj in (("Wrap", np.where(idsO < 0, -1, np.mod(idsO, 4))), ("Clip", np.where(idsO < 0, -1, np.minimum(idsO, 3))),
                  ("Fill", np.where(idsO < 4, idsO, -1))):
    for op, fn in (("Sum", tf.math.unsorted_segment_sum), ("Mean", tf.math.unsorted_segment_mean),
                   ("Max", tf.math.unsorted_segment_max), ("Min", tf.math.unsorted_segment_min)):
        floats("kSeg" + op + mode, fn(D6, adj, 4).numpy())

out.write(__file__)
