#!/usr/bin/env python3
"""Golden outputs and gradients of Keras 3's convolution layers (Conv1D and Conv2D with
dilation_rate, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D, UpSampling2D, ZeroPadding2D,
Cropping2D) for fixed inputs and weights, produced by the real Keras 3 (TensorFlow backend) in
float64.

Regenerate (writes conv_golden.hpp beside this script):

    KERAS_BACKEND=tensorflow /path/to/venv-with-keras/bin/python test/golden/conv_golden.py

Produced with tensorflow 2.21.0 and keras 3.15.1, floatx float64. Every case holds its layer's
configuration, the input x, the weights in Keras's order (set with set_weights), the output y,
and the gradients of sum(y * linspace(-1, 1)) with respect to x and to every weight.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

keras.config.set_floatx("float64")
L = keras.layers
rng = np.random.default_rng(11)

# name, class, config (the fields the C++ side reads), input shape
PADDING = {"valid": 0, "same": 1, "causal": 2}
CASES = [
    ("conv2d_dilated_same", "Conv2D", dict(filters=3, kernel=3, padding="same", dilation=2, activation="relu"),
     (2, 7, 6, 2)),
    ("conv2d_dilated_valid", "Conv2D", dict(filters=2, kernel=2, padding="valid", dilation=3), (1, 7, 7, 3)),
    ("conv1d_dilated_causal", "Conv1D", dict(filters=3, kernel=3, padding="causal", dilation=2), (2, 9, 2)),
    ("conv1d_dilated_same", "Conv1D", dict(filters=2, kernel=2, padding="same", dilation=3, activation="tanh"),
     (2, 8, 3)),
    ("conv2d_transpose_valid_s2", "Conv2DTranspose", dict(filters=3, kernel=3, strides=2, padding="valid"),
     (2, 3, 4, 2)),
    ("conv2d_transpose_same_s2", "Conv2DTranspose", dict(filters=2, kernel=3, strides=2, padding="same",
                                                         activation="sigmoid"), (1, 4, 3, 3)),
    ("conv2d_transpose_valid_k2_s3", "Conv2DTranspose", dict(filters=2, kernel=2, strides=3, padding="valid"),
     (1, 3, 2, 2)),
    ("conv2d_transpose_same_k4_op1", "Conv2DTranspose", dict(filters=2, kernel=4, strides=2, padding="same",
                                                             output_padding=1), (1, 3, 3, 2)),
    ("conv2d_transpose_valid_op1", "Conv2DTranspose", dict(filters=1, kernel=3, strides=2, padding="valid",
                                                           output_padding=1), (1, 2, 3, 2)),
    # (TensorFlow's CPU kernels refuse a dilated Conv2DTranspose: test_conv_keras checks ours as
    # the adjoint of the dilated conv2d instead)
    ("depthwise_same_s2_m2", "DepthwiseConv2D", dict(kernel=3, strides=2, padding="same", mult=2), (2, 6, 5, 3)),
    ("depthwise_valid_dilated", "DepthwiseConv2D", dict(kernel=2, padding="valid", dilation=2, activation="relu"),
     (1, 6, 6, 2)),
    ("separable_same_m2_relu", "SeparableConv2D", dict(filters=4, kernel=3, padding="same", mult=2,
                                                       activation="relu"), (2, 5, 5, 3)),
    ("separable_valid_s2", "SeparableConv2D", dict(filters=3, kernel=2, strides=2, padding="valid"), (1, 7, 6, 2)),
    ("separable_dilated", "SeparableConv2D", dict(filters=2, kernel=3, padding="same", dilation=2, mult=3),
     (1, 6, 5, 2)),
    ("up_sampling2d_2", "UpSampling2D", dict(size=(2, 2)), (2, 3, 2, 2)),
    ("up_sampling2d_2x3", "UpSampling2D", dict(size=(2, 3)), (1, 2, 3, 3)),
    ("zero_padding2d_1", "ZeroPadding2D", dict(pad=((1, 1), (1, 1))), (2, 3, 2, 2)),
    ("zero_padding2d_asym", "ZeroPadding2D", dict(pad=((1, 2), (0, 3))), (1, 2, 3, 2)),
    ("cropping2d_asym", "Cropping2D", dict(pad=((1, 0), (2, 1))), (2, 4, 5, 2)),
]


def make(cls, c):
    act = c.get("activation")
    pad = c.get("padding", "valid")
    if cls == "Conv2D":
        return L.Conv2D(c["filters"], c["kernel"], padding=pad, dilation_rate=c.get("dilation", 1), activation=act)
    if cls == "Conv1D":
        return L.Conv1D(c["filters"], c["kernel"], padding=pad, dilation_rate=c.get("dilation", 1), activation=act)
    if cls == "Conv2DTranspose":
        return L.Conv2DTranspose(c["filters"], c["kernel"], strides=c.get("strides", 1), padding=pad,
                                 output_padding=c.get("output_padding"), dilation_rate=c.get("dilation", 1),
                                 activation=act)
    if cls == "DepthwiseConv2D":
        return L.DepthwiseConv2D(c["kernel"], strides=c.get("strides", 1), padding=pad,
                                 depth_multiplier=c.get("mult", 1), dilation_rate=c.get("dilation", 1), activation=act)
    if cls == "SeparableConv2D":
        return L.SeparableConv2D(c["filters"], c["kernel"], strides=c.get("strides", 1), padding=pad,
                                 depth_multiplier=c.get("mult", 1), dilation_rate=c.get("dilation", 1), activation=act)
    if cls == "UpSampling2D":
        return L.UpSampling2D(c["size"])
    if cls == "ZeroPadding2D":
        return L.ZeroPadding2D(c["pad"])
    return L.Cropping2D(c["pad"])


def flat(a):
    return ", ".join(repr(float(v)) for v in np.asarray(a).ravel())


def ints(a):
    return ", ".join(str(int(v)) for v in a)


def main():
    arrays, rows = [], []
    for i, (name, cls, c, xshape) in enumerate(CASES):
        layer = make(cls, c)
        x = tf.constant(rng.normal(size=xshape))
        layer(x)  # build
        ws = [rng.normal(size=w.shape) * 0.5 for w in layer.get_weights()]
        layer.set_weights(ws)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            y = layer(x)
            wout = tf.constant(np.linspace(-1.0, 1.0, int(np.prod(y.shape))).reshape(y.shape))
            total = tf.reduce_sum(y * wout)
        dx = tape.gradient(total, x)
        dws = tape.gradient(total, layer.trainable_weights)
        names = [w.path for w in layer.weights]
        arrays.append(f"constexpr double kX{i}[] = {{{flat(x)}}};")
        arrays.append(f"constexpr double kY{i}[] = {{{flat(y)}}};")
        arrays.append(f"constexpr double kDx{i}[] = {{{flat(dx)}}};")
        for k, (w, dw) in enumerate(zip(ws, dws)):
            arrays.append(f"constexpr double kW{i}_{k}[] = {{{flat(w)}}};")
            arrays.append(f"constexpr double kDw{i}_{k}[] = {{{flat(dw)}}};")
        nw = len(ws)
        wlist = ", ".join(f"kW{i}_{k}" for k in range(nw)) or "nullptr"
        dwlist = ", ".join(f"kDw{i}_{k}" for k in range(nw)) or "nullptr"
        wsizes = ", ".join(str(w.size) for w in ws) or "0"
        wnames = ", ".join(f'"{n.split("/")[-1]}"' for n in names) or "nullptr"
        pad = c.get("pad", ((0, 0), (0, 0)))
        size = c.get("size", (1, 1))
        rows.append(
            f'    {{"{name}", "{cls}", {c.get("filters", 0)}, {c.get("kernel", 0)}, {c.get("strides", 1)}, '
            f'{PADDING[c.get("padding", "valid")]}, {c.get("dilation", 1)}, {c.get("mult", 1)}, '
            f'{c.get("output_padding", -1) if c.get("output_padding") is not None else -1}, '
            f'"{c.get("activation") or "linear"}", {{{ints(size)}}}, {{{ints(pad[0] + pad[1])}}},\n'
            f'     {len(xshape)}, {{{ints(xshape)}}}, {{{ints(y.shape)}}}, kX{i}, kY{i}, kDx{i}, {nw}, '
            f'{{{wnames}}}, {{{wsizes}}}, {{{wlist}}}, {{{dwlist}}}}},')
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "conv_golden.hpp")
    with open(out, "w") as fh:
        fh.write("#pragma once\n")
        fh.write(f"// Generated by test/golden/conv_golden.py (Keras {keras.__version__}, TensorFlow {tf.__version__})"
                 " -- do not edit.\n")
        fh.write("// Regenerate: KERAS_BACKEND=tensorflow python3 test/golden/conv_golden.py (with keras)\n")
        fh.write("#include <cstdint>\n\nnamespace conv_golden {\n\n")
        fh.write("\n".join(arrays) + "\n\n")
        fh.write(
            "struct Case {\n"
            "  const char* name;\n  const char* layer;  // the Keras class\n"
            "  int filters, kernel, strides;\n  int padding;  // 0 valid, 1 same, 2 causal\n"
            "  int dilation, mult;  // dilation_rate, depth_multiplier\n"
            "  int output_padding;  // -1: None\n  const char* activation;\n"
            "  int size[2];  // UpSampling2D\n  int pad[4];   // ZeroPadding2D / Cropping2D: top, bottom, left, right\n"
            "  int rank;\n  std::int64_t x_shape[4], y_shape[4];\n"
            "  const double *x, *y, *dx;  // dx: d sum(y * linspace(-1, 1)) / dx\n"
            "  int n_weights;  // in Keras's order\n  const char* weight_names[3];\n"
            "  std::int64_t weight_sizes[3];\n  const double* weights[3];\n  const double* dweights[3];\n};\n\n")
        fh.write("inline constexpr Case kCases[] = {\n" + "\n".join(rows) + "\n};\n\n}  // namespace conv_golden\n")
    print(f"wrote {out}: {len(rows)} cases")


if __name__ == "__main__":
    main()
