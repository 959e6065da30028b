#!/usr/bin/env python3
"""Golden text of summary(): what Keras 3 prints for a few functional and three Sequential models,
and for functional models over Inputs of unknown axes, right after they are made (with their
weight and parameter counts then).

Regenerate (writes functional_summary_golden.hpp beside this script):

    KERAS_BACKEND=tensorflow <python with keras and tensorflow> test/golden/functional_summary_golden.py

Produced with keras 3.15.1 and tensorflow-cpu 2.21.0. Keras draws its table with rich, in box
characters on a UTF-8 stream and in ASCII ("+---+", "|") on any other; tapeflow prints the ASCII
one, so stdout is made ASCII here. Keras's default line length is 88 (a model that is a plain
chain: three columns) or 108 (four columns, with "Connected to"), cut to the terminal's width
minus 4; COLUMNS=200 stands for a terminal wide enough to keep the defaults. Each model is made
in a fresh session, so its names start over (input_layer, dense, ...), as in a tapeflow model.
"""
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ["COLUMNS"] = "200"
sys.stdout.reconfigure(encoding="ascii")

import keras  # noqa: E402
from keras import layers  # noqa: E402


def mlp():
    x = keras.Input((6,))
    h = layers.Dense(16, activation="relu")(x)
    return keras.Model(x, layers.Dense(3, activation="softmax")(h))


def two_inputs():
    a = keras.Input((4,))
    b = keras.Input((3,), name="extra")
    c = layers.Concatenate()([layers.Dense(8)(a), b])
    return keras.Model([a, b], layers.Dense(1)(c))


def residual():
    x = keras.Input((3,))
    a = layers.Dense(4, activation="relu")(x)
    b = layers.Dense(4)(a)
    r = layers.Add()([a, b])
    return keras.Model(x, layers.Dense(2)(r), name="residual")


def shared():
    x1 = keras.Input((5,))
    x2 = keras.Input((5,))
    d = layers.Dense(4)
    c = layers.Concatenate()([d(x1), d(x2)])
    return keras.Model([x1, x2], layers.Dense(1)(c))


def two_outputs():
    x = keras.Input((8,))
    h = layers.Dense(16, activation="relu")(x)
    return keras.Model(x, [layers.Dense(1)(h), layers.Dense(3, activation="softmax")(h)])


def wide_merge():
    # a long "Connected to" list and a layer name longer than its column: both wrap
    x = keras.Input((2,))
    branches = [layers.Dense(3)(x) for _ in range(5)]
    c = layers.Concatenate(name="concatenate_every_branch_here")(branches)
    return keras.Model(x, layers.Dense(1, name="a_rather_long_name_for_the_head")(c))


def unused_input():
    # an Input the output does not read still has its row
    a = keras.Input((4,))
    b = keras.Input((2,))
    return keras.Model([a, b], layers.Dense(1)(a))


def branches():
    # branches of different depths, a layer shared between them, a tensor added to itself and a
    # second output: rows deepest first, ties in the order a walk from the outputs meets them
    x = keras.Input((4,))
    s = layers.Dense(4, name="shared")
    c = s(x)
    a = layers.Dense(4)(x)
    b = layers.Dense(4)(a)
    d = s(b)
    e = layers.Add()([c, d, d])
    return keras.Model(x, [layers.Dense(2)(e), layers.Dense(1)(a)])


def shared_chain():
    # a chain through one layer twice is not "sequential-like" for Keras: four columns
    x = keras.Input((4,))
    d = layers.Dense(4)
    return keras.Model(x, d(d(x)))


def shared_out_of_order():
    # a shared layer's calls are numbered in the order they were made, not the order they run
    x = keras.Input((4,))
    a = layers.Dense(4)(x)
    s = layers.Dense(4, name="shared")
    d = s(a)
    c = s(x)
    return keras.Model(x, layers.Add()([c, d]))


# Models with Inputs of unknown (None) axes: Keras builds every layer from its symbolic input
# shape when the model is made (model.built, model.weights and count_params() at once), since no
# weight depends on a None axis. summary() is taken right after keras.Model(...), before any call.
def embedding_pooled():
    x = keras.Input((None,), dtype="int64")
    e = layers.Embedding(10, 4)(x)
    return keras.Model(x, layers.Dense(1)(layers.GlobalAveragePooling1D()(e)))


def conv_any_size():
    x = keras.Input((None, None, 3))
    c = layers.Conv2D(4, 3, activation="relu")(x)
    return keras.Model(x, layers.Dense(2)(layers.GlobalAveragePooling2D()(c)))


def dense_on_sequences():
    x = keras.Input((None, 8))
    return keras.Model(x, layers.Dense(5)(x))


def bidirectional_text():
    x = keras.Input((None,), dtype="int64")
    e = layers.Embedding(10, 4)(x)
    return keras.Model(x, layers.Bidirectional(layers.LSTM(3))(e))


def self_attention():
    # MultiHeadAttention builds its projections in its first call: all axes known here
    x = keras.Input((5, 8))
    return keras.Model(x, layers.MultiHeadAttention(2, 4)(x, x))


def sequential_mlp():
    # a Sequential model: Keras's three-column table, no InputLayer row (Model::summary)
    return keras.Sequential([keras.Input((784,)), layers.Dense(512, activation="relu"),
                             layers.Dense(10, activation="softmax")])


def sequential_convnet():
    # a long "name (type)" wraps in its column; non-trainable parameters
    return keras.Sequential([keras.Input((28, 28, 1)), layers.Conv2D(32, 3), layers.BatchNormalization(),
                             layers.Flatten(), layers.Dense(10)], name="convnet")


def sequential_norms():
    # GroupNormalization's and UnitNormalization's rows (long names wrap)
    return keras.Sequential([keras.Input((5, 4)), layers.Dense(6), layers.GroupNormalization(groups=3),
                             layers.UnitNormalization(), layers.Dense(2)])


def summary_text(model):
    lines = []
    model.summary(print_fn=lambda s, **kw: lines.append(s))
    return "".join(lines)


out = ["// Generated by functional_summary_golden.py (keras 3.15.1, tensorflow 2.21.0): do not edit.",
       "#pragma once", "", "namespace summary_golden {", ""]
built_when_made = (embedding_pooled, conv_any_size, dense_on_sequences, bidirectional_text, self_attention)
for make in (mlp, two_inputs, residual, shared, two_outputs, wide_merge, unused_input,
             branches, shared_chain, shared_out_of_order, sequential_mlp, sequential_convnet, sequential_norms,
             *built_when_made):
    keras.backend.clear_session()
    model = make()
    const = "k" + "".join(part.title() for part in make.__name__.split("_"))
    if make in built_when_made:
        # what Keras has right after keras.Model(...): built, its weights and their count
        assert model.built
        out.append(f"inline constexpr int {const}Weights = {len(model.weights)};")
        out.append(f"inline constexpr long long {const}Params = {model.count_params()};")
    text = summary_text(model)
    out.append(f'inline constexpr const char* {const} = R"golden({text})golden";')
    out.append("")
out.append("}  // namespace summary_golden")
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "functional_summary_golden.hpp")
with open(path, "w", encoding="utf-8") as f:
    f.write("\n".join(out) + "\n")
print("wrote", path)
