#!/usr/bin/env python3
"""Golden values and derivatives of the activations: their closed forms (Keras 3's definitions)
evaluated in float64 with Python's libm, derivatives worked out by hand, then checked against the
real Keras 3 (TensorFlow backend) where it is installed.

Regenerate (writes activations_golden.hpp beside this script):

    python3 test/golden/activations_golden.py            # the closed forms only
    KERAS_BACKEND=tensorflow <python with keras and tensorflow> test/golden/activations_golden.py

Produced with Python's math module; checked against tensorflow-cpu 2.21.0 and keras 3.15.1:
every value and derivative agrees within 1e-6 relative (or 1e-15 absolute). Not closer, because TensorFlow's float64
kernels round some constants to float32: gelu's 1 / sqrt(2) (values off by up to 5e-9) and
leaky_relu's slope (0.2 becomes 0.20000000298). The points X avoid the kinks, which
test_activations checks by hand against TensorFlow's choices.
"""
import math
import os
import sys

X = [-30.0, -5.0, -2.5, -1.5, -0.5, -1e-3, 1e-3, 0.25, 0.5, 1.5, 2.5, 5.0, 7.0, 15.0, 30.0]

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
C = math.sqrt(2 / math.pi)


def sigmoid(x):
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def elu(a):
    return lambda x: (x, 1.0) if x > 0 else (a * math.expm1(x), a * math.exp(x))


def selu(x):
    y, d = elu(SELU_ALPHA)(x)
    return SELU_SCALE * y, SELU_SCALE * d


def gelu(x):
    return (0.5 * x * (1 + math.erf(x / math.sqrt(2))),
            0.5 * (1 + math.erf(x / math.sqrt(2))) + x * math.exp(-x * x / 2) / math.sqrt(2 * math.pi))


def gelu_tanh(x):
    t = math.tanh(C * (x + 0.044715 * x ** 3))
    return 0.5 * x * (1 + t), 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * C * (1 + 3 * 0.044715 * x * x)


def silu(x):
    s = sigmoid(x)
    return x * s, s + x * s * (1 - s)


def leaky(a):
    return lambda x: (x, 1.0) if x > 0 else (a * x, a)


def relu6(x):
    return min(max(x, 0.0), 6.0), 1.0 if 0 < x < 6 else 0.0


def hard_sigmoid(x):
    y, d = relu6(x + 3)
    return y / 6, d / 6


def hard_silu(x):
    y, d = hard_sigmoid(x)
    return x * y, y + x * d


def mish(x):
    t = math.tanh(softplus(x))
    return x * t, t + x * (1 - t * t) * sigmoid(x)


FUNCS = [
    ("elu", elu(1.0), lambda A, tf, x: A.elu(x)),
    ("elu_alpha_0_5", elu(0.5), lambda A, tf, x: A.elu(x, alpha=0.5)),
    ("selu", selu, lambda A, tf, x: A.selu(x)),
    ("gelu", gelu, lambda A, tf, x: A.gelu(x)),
    ("gelu_tanh", gelu_tanh, lambda A, tf, x: A.gelu(x, approximate=True)),
    ("silu", silu, lambda A, tf, x: A.silu(x)),
    ("leaky_relu", leaky(0.2), lambda A, tf, x: A.leaky_relu(x)),
    ("leaky_relu_0_01", leaky(0.01), lambda A, tf, x: A.leaky_relu(x, negative_slope=0.01)),
    ("softplus", lambda x: (softplus(x), sigmoid(x)), lambda A, tf, x: A.softplus(x)),
    ("softsign", lambda x: (x / (1 + abs(x)), 1 / (1 + abs(x)) ** 2), lambda A, tf, x: A.softsign(x)),
    ("relu6", relu6, lambda A, tf, x: A.relu6(x)),
    ("hard_sigmoid", hard_sigmoid, lambda A, tf, x: A.hard_sigmoid(x)),
    ("hard_silu", hard_silu, lambda A, tf, x: A.hard_silu(x)),
    ("mish", mish, lambda A, tf, x: A.mish(x)),
    ("expm1", lambda x: (math.expm1(x), math.exp(x)), lambda A, tf, x: tf.math.expm1(x)),
    ("erf", lambda x: (math.erf(x), 2 / math.sqrt(math.pi) * math.exp(-x * x)), lambda A, tf, x: tf.math.erf(x)),
]


def check_against_keras(rows):
    try:
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras
        import tensorflow as tf
    except ImportError:
        print("keras / tensorflow not importable: the closed forms are not checked against Keras")
        return None
    worst = 0.0
    for (name, _, keras_f), (_, ys, ds) in zip(FUNCS, rows):
        x = tf.constant(X, dtype=tf.float64)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = keras_f(keras.activations, tf, x)
            total = tf.reduce_sum(y)
        d = tape.gradient(total, x)
        for got, want in list(zip(y.numpy(), ys)) + list(zip(d.numpy(), ds)):
            # absolutely within 1e-15 or relatively within 1e-6: elu's derivative far left is
            # expm1(x) + 1 in TensorFlow (and here), which cancels
            if abs(got - want) > 1e-15 + 1e-6 * abs(want):
                sys.exit(f"{name}: Keras gives {got}, the closed form {want}")
            if abs(got - want) > 1e-15:
                worst = max(worst, abs(got - want) / abs(want))
    return f"Keras {keras.__version__}, TensorFlow {tf.__version__}: largest relative difference {worst:.1e}"


def main():
    rows = []
    for name, f, _ in FUNCS:
        pairs = [f(x) for x in X]
        rows.append((name, [p[0] for p in pairs], [p[1] for p in pairs]))
    checked = check_against_keras(rows)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "activations_golden.hpp")
    with open(out, "w") as fh:
        fh.write("#pragma once\n")
        fh.write("// Generated by test/golden/activations_golden.py -- do not edit. The closed forms in float64\n")
        fh.write(f"// (Python's libm); checked against {checked or 'nothing (Keras was not installed)'}.\n")
        fh.write("// Regenerate: python3 test/golden/activations_golden.py\n")
        fh.write("namespace activations_golden {\n\n")
        fh.write(f"constexpr int kN = {len(X)};\n")
        fh.write("constexpr double kX[kN] = {" + ", ".join(repr(v) for v in X) + "};\n\n")
        fh.write("struct Case {\n  const char* name;\n  double y[kN];   // f(x)\n  double dy[kN];  // f'(x)\n};\n\n")
        fh.write("inline constexpr Case kCases[] = {\n")
        for name, y, g in rows:
            fh.write(f'    {{"{name}", {{' + ", ".join(repr(v) for v in y) + "}, {" + ", ".join(repr(v) for v in g) + "}},\n")
        fh.write("};\n\n}  // namespace activations_golden\n")
    print(f"wrote {out}: {len(rows)} functions at {len(X)} points; {checked or 'not checked against Keras'}")


if __name__ == "__main__":
    main()
