"""What the Python peers share with each other and with tapeflow's benchmark programs: the
cases (same shapes, same result keys as benchmarks/bench_kernels.cpp and bench_overhead.cpp),
the timing rule (warm-up, then the median of several samples, short calls batched), the
check against a float64 NumPy reference before timing, Fashion-MNIST from Debian's IDX files,
and the key/value output read by benchmarks/summarize.py.
"""
import argparse
import gzip
import os
import resource
import struct
import time

import numpy as np

# Debian's dataset-fashion-mnist, or where TAPEFLOW_FASHION_MNIST_DIR says (as tapeflow's load_mnist)
FASHION_MNIST = os.environ.get("TAPEFLOW_FASHION_MNIST_DIR") or "/usr/share/datasets/fashion-mnist"

# small (4K elements), cache-sized (256K), large (16M): as bench_kernels
ELEMENTWISE_SHAPES = [(64, 64), (512, 512), (4096, 4096)]
# (m, k, n, a transposed, b transposed): as bench_kernels
MATMULS = [
    (256, 256, 256, False, False),
    (512, 512, 512, False, False),
    (1024, 1024, 1024, False, False),
    (128, 784, 512, False, False),
    (128, 512, 10, False, False),
    (784, 128, 512, True, False),
    (512, 128, 10, True, False),
    (128, 10, 512, False, True),
    (128, 512, 784, False, True),
]
CHAIN = 100  # ops in the overhead chain: x = tanh(x * 0.9), 50 times
# the recurrent layers (as bench_training rnn): LSTM and GRU of 128 units on [batch, time, features]
RNN_SHAPE = (64, 50, 64)
RNN_UNITS = 128


def matmul_key(m, k, n, ta, tb):
    return "matmul{}/{}x{}x{}".format("_tn" if ta else "_nt" if tb else "", m, k, n)


def parse_args(description):
    return parser(description).parse_args()


def parser(description):
    """The options every peer takes; a peer may add its own before parsing."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tsv", default="")
    p.add_argument("--epochs", type=int, default=2, help="timed MLP epochs (after a warm-up)")
    p.add_argument("--seconds", type=float, default=40,
                   help="MLP time budget: no epoch starts past it; a first epoch predicted longer is "
                        "timed on part of its batches and extrapolated (as tapeflow's bench_training)")
    p.add_argument("--quick", action="store_true", help="small sizes only (a smoke test)")
    p.add_argument("--skip", default="", help="comma-separated parts to skip: ops,overhead,mlp,rnn")
    return p


class Results:
    def __init__(self, path):
        self.path = path

    def add(self, key, value, unit):
        print("{:<32} {:>12.6g} {}".format(key, value, unit), flush=True)
        if self.path:
            with open(self.path, "a") as f:
                f.write("{}\t{:.6g}\t{}\n".format(key, value, unit))


def measure(fn, budget_s=0.3, min_sample_s=2e-3, max_samples=11):
    """Median seconds per call, as bench_util.hpp's measure()."""
    t0 = time.perf_counter()
    fn()
    first = time.perf_counter() - t0
    if first >= budget_s:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    inner = max(1, int(-(-min_sample_s // max(first, 1e-9))))
    t0 = time.perf_counter()
    for _ in range(inner):
        fn()
    sample = time.perf_counter() - t0
    samples = min(max(int(budget_s / max(sample, 1e-9)), 3), max_samples)
    ts = []
    for _ in range(samples):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        ts.append((time.perf_counter() - t0) / inner)
    ts.sort()
    return ts[len(ts) // 2]


def check_close(what, got, ref, rtol, atol):
    got = np.asarray(got, dtype=np.float64)
    if got.shape != ref.shape or not np.allclose(got, ref, rtol=rtol, atol=atol):
        bad = np.argmax(np.abs(got - ref) - rtol * np.abs(ref)) if got.shape == ref.shape else -1
        raise SystemExit("{}: result differs from the NumPy reference (shape {} vs {}, worst element {})".format(
            what, got.shape, ref.shape, bad))


def elementwise_cases(rows, cols, rng):
    """[(key, inputs as float32 arrays, reference float64, rtol, atol, kind)]; kind picks the op."""
    x = rng.uniform(-1, 1, (rows, cols)).astype(np.float32)
    y = rng.uniform(-1, 1, (rows, cols)).astype(np.float32)
    v = rng.uniform(-1, 1, (cols,)).astype(np.float32)
    xd = x.astype(np.float64)
    e = np.exp(xd - xd.max(axis=1, keepdims=True))
    sk = "{}x{}".format(rows, cols)
    return [
        ("relu/" + sk, (x,), np.maximum(xd, 0), 0, 0, "relu"),
        ("add/" + sk, (x, y), xd + y, 1e-7, 0, "add"),
        ("bcast_add/" + sk, (x, v), xd + v, 1e-7, 0, "add"),
        ("sum_axis0/" + sk, (x,), xd.sum(axis=0), 1e-5, 2e-6 * rows, "sum0"),
        ("sum_axis1/" + sk, (x,), xd.sum(axis=1), 1e-5, 2e-6 * cols, "sum1"),
        ("softmax/" + sk, (x,), e / e.sum(axis=1, keepdims=True), 1e-4, 1e-9, "softmax"),
    ]


def matmul_inputs(m, k, n, ta, tb, rng):
    """a_stored ([k, m] when ta), b_stored ([n, k] when tb), reference [m, n] in float64."""
    a = rng.uniform(-1, 1, (k, m) if ta else (m, k)).astype(np.float32)
    b = rng.uniform(-1, 1, (n, k) if tb else (k, n)).astype(np.float32)
    ad = a.astype(np.float64).T if ta else a.astype(np.float64)
    bd = b.astype(np.float64).T if tb else b.astype(np.float64)
    return a, b, ad @ bd, 1e-4, 2e-6 * k


def chain_reference():
    """The chain's value and derivative at x0 = [0.1, 0.2, 0.3, 0.4], in float64."""
    x = np.array([0.1, 0.2, 0.3, 0.4])
    d = np.ones(4)
    for _ in range(CHAIN // 2):
        x = np.tanh(x * 0.9)
        d = d * 0.9 * (1 - x * x)
    return x, d


def rnn_inputs():
    """x [64, 50, 64] float32 in [-1, 1] and a generator for the biases."""
    rng = np.random.default_rng(1)
    return rng.uniform(-1, 1, RNN_SHAPE).astype(np.float32), rng


def recurrent_reference(lstm, x, kernel, recurrent, bias):
    """The last h [batch, units] of an LSTM or a GRU over x [batch, time, features] in float64,
    with Keras's equations, gate order (LSTM i, f, c, o; GRU z, r, h) and weight layout: kernel
    [features, gates * units], recurrent [units, gates * units], bias [gates * units] (GRU,
    reset_after: [2, 3 units], the input bias then the recurrent one). As bench_training's loop."""
    x, kernel, recurrent, bias = (np.asarray(a, dtype=np.float64) for a in (x, kernel, recurrent, bias))
    u = recurrent.shape[0]
    h = np.zeros((x.shape[0], u))
    c = np.zeros_like(h)

    def sigmoid(v):
        return 1 / (1 + np.exp(-v))

    for t in range(x.shape[1]):
        if lstm:
            i, f, g, o = np.split(x[:, t] @ kernel + h @ recurrent + bias, 4, axis=1)
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
        else:
            zx, zh = x[:, t] @ kernel + bias[0], h @ recurrent + bias[1]
            z = sigmoid(zx[:, :u] + zh[:, :u])
            r = sigmoid(zx[:, u:2 * u] + zh[:, u:2 * u])
            h = z * h + (1 - z) * np.tanh(zx[:, 2 * u:] + r * zh[:, 2 * u:])
    return h


def per_op_us(fn, reps=100, samples=9):
    """Median microseconds per op of fn(), one chain of CHAIN ops per call (2 warm-up samples)."""
    ts = []
    for s in range(samples + 2):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        if s >= 2:
            ts.append((time.perf_counter() - t0) / (reps * CHAIN) * 1e6)
    ts.sort()
    return ts[len(ts) // 2]


def backward_per_op_us(record, backward, reps=100, samples=9):
    """Median microseconds per op of backward(recorded) alone, timed apart from record()."""
    ts = []
    for s in range(samples + 2):
        total = 0.0
        for _ in range(reps):
            recorded = record()
            t0 = time.perf_counter()
            backward(recorded)
            total += time.perf_counter() - t0
        if s >= 2:
            ts.append(total / (reps * CHAIN) * 1e6)
    ts.sort()
    return ts[len(ts) // 2]


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion_mnist():
    """train images [60000, 784] float32 in [0, 1], labels [60000] int64."""
    def find(stem):
        for name in (stem + ".gz", stem):
            path = os.path.join(FASHION_MNIST, name)
            if os.path.exists(path):
                return path
        raise SystemExit("Fashion-MNIST not found in {} (apt-get install dataset-fashion-mnist)".format(FASHION_MNIST))
    x = read_idx(find("train-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32) / 255.0
    y = read_idx(find("train-labels-idx1-ubyte")).astype(np.int64)
    return x, y


def reset_peak_rss():
    """Zeroes VmHWM, so that peak_rss_mb() measures what follows (as the tapeflow benchmark)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def epoch_plan(seconds_per_batch, batches, budget, epochs):
    """(epochs to time, batches per timed epoch): whole epochs while they fit the budget; one
    partial epoch (extrapolated by the caller) when a whole one would not."""
    predicted = seconds_per_batch * batches
    if predicted <= budget:
        return max(1, min(epochs, int(budget // max(predicted, 1e-9)))), batches
    return 1, max(10, int(budget / max(seconds_per_batch, 1e-9)))


def peak_rss_mb():
    """VmHWM in MB (ru_maxrss where /proc is not there)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
