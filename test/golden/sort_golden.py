#!/usr/bin/env python3
"""Golden values of argsort, sort and top_k (test_ops_reduce.cpp), from NumPy's stable argsort
and TensorFlow's argsort(stable=True) and math.top_k.

Regenerate (writes sort_golden.hpp beside this script):

    /work/tfvenv/bin/python test/golden/sort_golden.py

Produced with NumPy 2 and tensorflow-cpu 2.21.0. The NaN rule (NaN larger than every number:
last ascending, first descending) is NumPy's for ascending and PyTorch's for both; TensorFlow's
sort leaves NaNs where its comparisons put them, so no TensorFlow value here has a NaN input.
Descending with NaN is built with np.lexsort (NaN first, then -x, then the index: the rule
written out, checked against NumPy's ascending order on the reversed keys).
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from golden_cpp import Header  # noqa: E402

golden = Header("sort_golden")
floats, ints = golden.floats, golden.ints


def desc_stable(x, axis):
    """Descending, NaN first, equal values in index order, along axis (2-D x)."""
    x = np.moveaxis(x, axis, -1)
    rows = [np.lexsort((-np.nan_to_num(r, nan=0.0), ~np.isnan(r))) for r in x]
    return np.moveaxis(np.array(rows), -1, axis)


# floats with ties, NaNs, infinities and both zeros: [3, 6]
X = np.array([[3.0, np.nan, 1.0, 3.0, -np.inf, 1.0],
              [0.0, -0.0, np.inf, np.nan, 2.5, -1.0],
              [2.0, 2.0, np.nan, 2.0, np.nan, -3.5]])
floats("kX", X)
for axis in (0, 1):
    asc = np.argsort(X, axis=axis, kind="stable")
    ints(f"kXArgsortAxis{axis}", asc)
    floats(f"kXSortAxis{axis}", np.take_along_axis(X, asc, axis))
    desc = desc_stable(X, axis)
    # the same order as NumPy's stable ascending sort of the negated keys where no NaN is involved
    assert all((np.argsort(-r, kind="stable") == d).all() for r, d in zip(np.moveaxis(X, axis, -1), np.moveaxis(desc, axis, -1)) if not np.isnan(r).any())
    ints(f"kXArgsortDescAxis{axis}", desc)

# int32 with ties: TensorFlow's stable argsort both ways, and top_k(k = 4)
XI = np.array([[2, 1, 2, 0, 1, 2, -7], [5, 5, 5, 5, 5, 5, 5]], dtype=np.int32)
ints("kXi", XI)
ti_asc = tf.argsort(XI, axis=-1, stable=True).numpy()
ti_desc = tf.argsort(XI, axis=-1, direction="DESCENDING", stable=True).numpy()
assert (ti_asc == np.argsort(XI, axis=-1, kind="stable")).all()
ints("kXiArgsort", ti_asc)
ints("kXiArgsortDesc", ti_desc)
v, i = tf.math.top_k(XI, k=4)
ints("kXiTopKValues", v.numpy())
ints("kXiTopKIndices", i.numpy())

# float32 top_k(k = 3) with ties and infinities, no NaN
XF = np.array([[0.5, -1.0, 0.5, 2.0, np.inf, 0.5], [-np.inf, -2.0, -2.0, -np.inf, -2.0, -3.0]], dtype=np.float32)
floats("kXf", XF)
v, i = tf.math.top_k(XF, k=3)
floats("kXfTopKValues", v.numpy())
ints("kXfTopKIndices", i.numpy())

golden.write(__file__)
