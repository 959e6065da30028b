#!/usr/bin/env python3
"""Golden outputs of Keras 3's recurrent layers (SimpleRNN, LSTM, GRU) for fixed weights,
produced by the real Keras 3 (TensorFlow backend) in float64.

Regenerate (writes rnn_golden.hpp beside this script):

    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu
    KERAS_BACKEND=tensorflow /tmp/tfvenv/bin/python test/golden/rnn_golden.py

Produced with tensorflow-cpu 2.21.0 and keras 3.15.1, floatx float64. The input x [2, 5, 3] and
every layer's weights (kernel [3, k * 4], recurrent_kernel [4, k * 4], bias) are written into
the header; the layers have 4 units; each case holds the full output sequence [2, 5, 4] (or the
last output [2, 4]; Bidirectional's concat doubles the units) and the gradient of
sum(output * linspace(-1, 1)) with respect to x. The state cases (kStateCases) run on x2
[3, 5, 3] with initial states h0, c0 [3, 4], return_state and a mask [3, 5] with holes and a
fully masked row: outputs, final states, and gradients in x, h0, c0 and the kernel.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

keras.config.set_floatx("float64")
L = keras.layers

B, T, F, U = 2, 5, 3, 4
rng = np.random.default_rng(7)
X = rng.normal(size=(B, T, F))


def weights(gates, gru_reset_after=False):
    k = rng.normal(size=(F, gates * U)) * 0.5
    r = rng.normal(size=(U, gates * U)) * 0.5
    b = rng.normal(size=(2, gates * U) if gru_reset_after else (gates * U,)) * 0.3
    return [k, r, b]


W_RNN = weights(1)
W_LSTM = weights(4)
W_GRU = weights(3, gru_reset_after=True)
W_GRU_V1 = weights(3)
W_LSTM_BACK = weights(4)
W_GRU_BACK = weights(3, gru_reset_after=True)

CASES = [
    ("simple_rnn_seq", lambda: L.SimpleRNN(U, return_sequences=True), W_RNN),
    ("simple_rnn_last_relu", lambda: L.SimpleRNN(U, activation="relu"), W_RNN),
    ("simple_rnn_backwards", lambda: L.SimpleRNN(U, return_sequences=True, go_backwards=True), W_RNN),
    ("lstm_seq", lambda: L.LSTM(U, return_sequences=True), W_LSTM),
    ("lstm_last", lambda: L.LSTM(U), W_LSTM),
    ("lstm_backwards_last", lambda: L.LSTM(U, go_backwards=True), W_LSTM),
    ("gru_seq", lambda: L.GRU(U, return_sequences=True), W_GRU),
    ("gru_last", lambda: L.GRU(U), W_GRU),
    ("gru_v1_seq", lambda: L.GRU(U, return_sequences=True, reset_after=False), W_GRU_V1),
    # Bidirectional: the forward layer's weights, then the backward one's
    ("bidirectional_lstm_seq_concat", lambda: L.Bidirectional(L.LSTM(U, return_sequences=True)),
     W_LSTM + W_LSTM_BACK),
    ("bidirectional_gru_last_sum", lambda: L.Bidirectional(L.GRU(U), merge_mode="sum"), W_GRU + W_GRU_BACK),
    ("bidirectional_lstm_seq_ave", lambda: L.Bidirectional(L.LSTM(U, return_sequences=True), merge_mode="ave"),
     W_LSTM + W_LSTM_BACK),
]


# call_with_state cases: initial states, return_state and masks, on a batch of 3 whose mask has
# holes (row 0, its last step masked), masks everything (row 1), and starts masked (row 2)
B2 = 3
X2 = rng.normal(size=(B2, T, F))
H0 = rng.normal(size=(B2, U)) * 0.5
C0 = rng.normal(size=(B2, U)) * 0.5
MASK = np.array([[1, 1, 0, 1, 0], [0, 0, 0, 0, 0], [0, 1, 1, 1, 1]], dtype=bool)

# name, layer, weights, initial states given, mask given; the states are returned but by
# Bidirectional (whose mask cases check the output and dx only)
STATE_CASES = [
    ("simple_rnn_state_seq", lambda: L.SimpleRNN(U, return_sequences=True, return_state=True), W_RNN, True, False),
    ("simple_rnn_mask_seq", lambda: L.SimpleRNN(U, return_sequences=True, return_state=True), W_RNN, True, True),
    ("simple_rnn_mask_last_backwards", lambda: L.SimpleRNN(U, go_backwards=True, return_state=True), W_RNN, True,
     True),
    ("lstm_state_last", lambda: L.LSTM(U, return_state=True), W_LSTM, True, False),
    ("lstm_mask_seq", lambda: L.LSTM(U, return_sequences=True, return_state=True), W_LSTM, True, True),
    ("lstm_mask_last_noinit", lambda: L.LSTM(U, return_state=True), W_LSTM, False, True),
    ("lstm_mask_seq_backwards_zero", lambda: L.LSTM(U, return_sequences=True, return_state=True, go_backwards=True,
                                                    zero_output_for_mask=True), W_LSTM, True, True),
    ("gru_state_seq", lambda: L.GRU(U, return_sequences=True, return_state=True), W_GRU, True, False),
    ("gru_mask_seq", lambda: L.GRU(U, return_sequences=True, return_state=True), W_GRU, True, True),
    ("gru_mask_last_backwards", lambda: L.GRU(U, go_backwards=True, return_state=True), W_GRU, True, True),
    ("gru_v1_mask_seq_zero", lambda: L.GRU(U, return_sequences=True, return_state=True, reset_after=False,
                                           zero_output_for_mask=True), W_GRU_V1, True, True),
    ("bidirectional_lstm_mask_seq_concat", lambda: L.Bidirectional(L.LSTM(U, return_sequences=True)),
     W_LSTM + W_LSTM_BACK, False, True),
    ("bidirectional_gru_mask_last_sum", lambda: L.Bidirectional(L.GRU(U), merge_mode="sum"), W_GRU + W_GRU_BACK,
     False, True),
]


def lin(shape, lo=-1.0, hi=1.0):
    return tf.constant(np.linspace(lo, hi, int(np.prod(shape))).reshape(shape))


def state_rows():
    rows = []
    for name, make, w, init, masked in STATE_CASES:
        layer = make()
        bidi = isinstance(layer, L.Bidirectional)
        x = tf.constant(X2)
        layer(x)  # build
        layer.set_weights(w)
        n_states = 0 if bidi else (2 if isinstance(layer, L.LSTM) else 1)
        h0, c0 = tf.constant(H0), tf.constant(C0)
        kwargs = {}
        if init:
            kwargs["initial_state"] = [h0, c0][:n_states]
        if masked:
            kwargs["mask"] = tf.constant(MASK)
        kernel = layer.forward_layer.cell.kernel if bidi else layer.cell.kernel
        with tf.GradientTape() as tape:
            tape.watch([x, h0, c0])
            out = layer(x, **kwargs)
            y, states = (out, []) if bidi else (out[0], list(out[1:]))
            # d/d(x, h0, c0, kernel) of sum(y * linspace(-1, 1)) + sum(h * linspace(-0.5, 1.5))
            # (+ sum(c * linspace(1, -1)))
            total = tf.reduce_sum(y * lin(y.shape))
            if n_states:
                total += tf.reduce_sum(states[0] * lin(states[0].shape, -0.5, 1.5))
            if n_states == 2:
                total += tf.reduce_sum(states[1] * lin(states[1].shape, 1.0, -1.0))
        dx, dh0, dc0, dk = tape.gradient(total, [x, h0, c0, kernel])
        zeros = np.zeros((B2, U))
        h = states[0].numpy() if n_states else zeros
        c = states[1].numpy() if n_states == 2 else zeros
        dh0 = dh0.numpy() if dh0 is not None else zeros
        dc0 = dc0.numpy() if dc0 is not None else zeros
        rows.append((name, list(y.shape), n_states, init, masked, y.numpy(), h, c, dx.numpy(), dh0, dc0, dk.numpy()))
    return rows


def flat(a):
    return ", ".join(repr(float(v)) for v in np.asarray(a).ravel())


def main():
    rows = []
    for name, make, w in CASES:
        layer = make()
        x = tf.constant(X)
        layer(x)  # build
        layer.set_weights(w)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            wout = tf.constant(np.linspace(-1.0, 1.0, int(np.prod(y.shape))).reshape(y.shape))
            total = tf.reduce_sum(y * wout)
        dx = tape.gradient(total, x)
        rows.append((name, list(y.shape), y.numpy(), dx.numpy()))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rnn_golden.hpp")
    with open(out, "w") as fh:
        fh.write("#pragma once\n")
        fh.write(f"// Generated by test/golden/rnn_golden.py (Keras {keras.__version__}, TensorFlow {tf.__version__})"
                 " -- do not edit.\n")
        fh.write("// Regenerate: KERAS_BACKEND=tensorflow python3 test/golden/rnn_golden.py (with keras)\n")
        fh.write("namespace rnn_golden {\n\n")
        fh.write(f"constexpr int kB = {B}, kT = {T}, kF = {F}, kU = {U};\n")
        fh.write(f"constexpr double kX[] = {{{flat(X)}}};\n")
        for label, w in [("Rnn", W_RNN), ("Lstm", W_LSTM), ("Gru", W_GRU), ("GruV1", W_GRU_V1),
                         ("LstmBack", W_LSTM_BACK), ("GruBack", W_GRU_BACK)]:
            fh.write(f"constexpr double k{label}Kernel[] = {{{flat(w[0])}}};\n")
            fh.write(f"constexpr double k{label}Recurrent[] = {{{flat(w[1])}}};\n")
            fh.write(f"constexpr double k{label}Bias[] = {{{flat(w[2])}}};\n")
        fh.write("\nstruct Case {\n  const char* name;\n  int rank;   // 3: [kB, kT, units], 2: [kB, units]\n"
                 "  int units;  // the last axis: kU, or 2 kU for a Bidirectional concat\n"
                 "  double y[kB * kT * 2 * kU];\n  double dx[kB * kT * kF];  // d sum(y * linspace(-1, 1)) / dx\n};\n\n")
        fh.write("inline constexpr Case kCases[] = {\n")
        for name, shape, y, dx in rows:
            fh.write(f'    {{"{name}", {len(shape)}, {shape[-1]}, {{{flat(y)}}}, {{{flat(dx)}}}}},\n')
        fh.write("};\n\n")
        srows = state_rows()
        fh.write("// call_with_state: initial states, return_state, masks (holes, a fully masked row)\n")
        fh.write(f"constexpr int kB2 = {B2};\n")
        fh.write(f"constexpr double kX2[] = {{{flat(X2)}}};\n")
        fh.write(f"constexpr double kH0[] = {{{flat(H0)}}};\n")
        fh.write(f"constexpr double kC0[] = {{{flat(C0)}}};\n")
        fh.write(f"constexpr bool kMask[] = {{{', '.join('true' if v else 'false' for v in MASK.ravel())}}};\n")
        fh.write("\nstruct StateCase {\n  const char* name;\n  int rank;\n  int units;\n"
                 "  int n_states;  // the states returned: 1 (h), 2 (h, c), 0 (Bidirectional: not compared)\n"
                 "  bool initial_state;  // from kH0 (and kC0)\n  bool masked;  // with kMask\n"
                 "  double y[kB2 * kT * 2 * kU];\n  double h[kB2 * kU];\n  double c[kB2 * kU];\n"
                 "  // d/d(x, h0, c0, kernel) of sum(y * linspace(-1, 1)) + sum(h * linspace(-0.5, 1.5))\n"
                 "  // + sum(c * linspace(1, -1)); Bidirectional: the forward kernel's\n"
                 "  double dx[kB2 * kT * kF];\n  double dh0[kB2 * kU];\n  double dc0[kB2 * kU];\n"
                 "  double dkernel[kF * 4 * kU];\n};\n\n")
        fh.write("inline constexpr StateCase kStateCases[] = {\n")
        for name, shape, n_states, init, masked, y, h, c, dx, dh0, dc0, dk in srows:
            fh.write(f'    {{"{name}", {len(shape)}, {shape[-1]}, {n_states}, {str(init).lower()}, '
                     f'{str(masked).lower()}, {{{flat(y)}}}, {{{flat(h)}}}, {{{flat(c)}}}, {{{flat(dx)}}}, '
                     f'{{{flat(dh0)}}}, {{{flat(dc0)}}}, {{{flat(dk)}}}}},\n')
        fh.write("};\n\n}  // namespace rnn_golden\n")
    print(f"wrote {out}: {len(rows)} cases, {len(srows)} call_with_state cases")


if __name__ == "__main__":
    main()
