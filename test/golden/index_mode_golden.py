#!/usr/bin/env python3
"""Golden values of take, take_along_axis and scatter_add in IndexMode::wrap and ::clip
(test_ops_misc.cpp), from NumPy's np.take(..., mode="wrap" / "clip").

Regenerate (writes index_mode_golden.hpp beside this script):

    /work/tfvenv/bin/python test/golden/index_mode_golden.py

Produced with NumPy 2. NumPy's clip does not count a negative index from the end (-1 clips to
0); its wrap is the floor modulo (-1 is n - 1). take_along_axis has no mode in NumPy: each row
is np.take of that row with the mode. scatter_add is np.add.at at the indices NumPy's mode
makes of them (np.take(np.arange(n), indices, mode=...)), as np.put(..., mode=) places them.
"""
import numpy as np
from _emit import Header

out = Header()
floats, ints = out.floats, out.ints
MODES = ("wrap", "clip")

# x [3, 4] and indices with every kind of position: far below, -n, -1, in range, n, far above
X = np.arange(12, dtype=np.float64).reshape(3, 4) * 1.5 - 4.0
IDX = np.array([-9, -5, -4, -1, 0, 2, 3, 4, 7, 11])
floats("kX", X)
ints("kIdx", IDX)
for mode in MODES:
    m = mode.capitalize()
    floats(f"kTakeAxis0{m}", np.take(X, IDX, axis=0, mode=mode))  # [10, 4]
    floats(f"kTakeAxis1{m}", np.take(X, IDX, axis=1, mode=mode))  # [3, 10]

# take_along_axis along axis 1: indices [3, 5]
TA = np.array([[-1, 4, 0, -6, 9], [3, -4, 5, 2, -2], [8, -9, 1, 1, 12]])
ints("kAlongIdx", TA)
for mode in MODES:
    rows = np.stack([np.take(X[i], TA[i], mode=mode) for i in range(3)])
    floats(f"kAlong{mode.capitalize()}", rows)

# scatter_add along axis 0 of zeros [4, 2]: indices [6, 1] broadcast against src [6, 2]
SI = np.array([[-1], [4], [-5], [2], [9], [-8]])
SRC = np.arange(12, dtype=np.float64).reshape(6, 2) + 1.0
ints("kScatterIdx", SI)
floats("kScatterSrc", SRC)
for mode in MODES:
    base = np.zeros((4, 2))
    np.add.at(base, (np.take(np.arange(4), SI[:, 0], mode=mode),), SRC)
    floats(f"kScatter{mode.capitalize()}", base)
    # np.put (no accumulation) puts one value at each of these positions too
    put = np.zeros(4)
    np.put(put, SI[:3, 0], [1.0, 2.0, 3.0], mode=mode)
    assert (np.flatnonzero(put) == np.unique(np.take(np.arange(4), SI[:3, 0], mode=mode))).all()

out.write(__file__)
