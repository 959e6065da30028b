#!/usr/bin/env python3
"""Golden outputs and attention scores of Keras 3's MultiHeadAttention for fixed inputs and
weights, produced by the real Keras 3 (TensorFlow backend) in float64.

Regenerate (writes attention_golden.hpp beside this script):

    KERAS_BACKEND=tensorflow /path/to/venv-with-keras/bin/python test/golden/attention_golden.py

Produced with tensorflow 2.21.0 and keras 3.15.1, floatx float64. Every case holds the layer's
configuration, the query, value (and key), the masks (0/1; none where absent), the weights in
Keras's order (query/kernel, query/bias, key/kernel, key/bias, value/kernel, value/bias,
attention_output/kernel, attention_output/bias; set with set_weights), the output and the
attention scores [B, heads, T, S] (return_attention_scores=True).

A second section (kLuongCases, its own random generator so the cases above keep their values)
holds Keras 3.15's Attention (dot and concat score modes, use_scale on and off) and
AdditiveAttention (use_scale on and off): the query, value (and key), the masks given as Keras's
mask=[query_mask, value_mask], the weights in Keras's order (scale, concat_score_weight; set with
set_weights), the output [B, Tq, dv] and the attention scores [B, Tq, Tv]; each case is also
checked here against a NumPy transcription of the formula. No query attends to nothing there:
Keras lowers masked scores by 1e9 without zeroing them after the softmax, so such a row is not
comparable between float32 and float64.

Two quirks of Keras 3.15 shape how the masks are given here:
- call() replaces its query_mask argument by the query's Keras mask (backend.get_keras_mask), so
  an explicit query_mask=... is silently ignored; the query mask is set on the query tensor
  (what an Embedding(mask_zero=True) or Masking layer before it would do).
- The scores path (Softmax with a mask) gives probabilities of 0 on a row whose keys are all
  masked; the fused dot_product_attention path (no dropout, no return_attention_scores) gives a
  uniform row there instead. tapeflow follows the Softmax; the outputs below come from the
  scores path, and where no row is fully masked the script checks that both paths agree.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras.src import backend  # noqa: E402
from _emit import brace, write_beside  # noqa: E402

keras.config.set_floatx("float64")
rng = np.random.default_rng(7)

# name, config (self_attention: value = query), (B, T, S, query dim, value dim, key dim or 0 for key = value)
CASES = [
    ("self", dict(heads=2, key_dim=3, self_attention=True), (2, 3, 3, 4, 4, 0)),
    ("cross", dict(heads=2, key_dim=3, value_dim=2, output_shape=5), (2, 3, 4, 4, 6, 3)),
    ("masked", dict(heads=2, key_dim=3, self_attention=True, query_mask=True, value_mask=True, attention_mask=True), (2, 4, 4, 4, 4, 0)),
    ("causal", dict(heads=2, key_dim=2, self_attention=True, causal=True), (2, 4, 4, 3, 3, 0)),
    ("causal_key_mask_no_bias", dict(heads=3, key_dim=2, use_bias=False, causal=True, key_mask=True,
                                     value_mask=True), (2, 3, 4, 4, 5, 2)),
]


def mask(shape, holes):
    m = np.ones(shape)
    for h in holes:
        m[h] = 0
    return m


def run(name, c, dims):
    b, t, s, dq, dv, dk = dims
    layer = keras.layers.MultiHeadAttention(c["heads"], c["key_dim"], value_dim=c.get("value_dim"),
                                            output_shape=c.get("output_shape"), use_bias=c.get("use_bias", True))
    q = rng.normal(size=(b, t, dq))
    v = q if c.get("self_attention") else rng.normal(size=(b, s, dv))
    k = rng.normal(size=(b, s, dk)) if dk else None
    masks = {}
    if c.get("query_mask"):
        masks["query_mask"] = mask((b, t), [(1, 2)])  # query 2 of example 1 attends to nothing
    if c.get("value_mask"):
        masks["value_mask"] = mask((b, s), [(0, s - 1), (1, 0)])
    if c.get("key_mask"):
        masks["key_mask"] = mask((b, s), [(0, 1)])
    if c.get("attention_mask"):
        am = (rng.random((b, t, s)) > 0.3).astype(np.float64)
        am[0, 1, :] = 0  # a row masked by attention_mask alone
        am[0, 0, 0] = 1
        masks["attention_mask"] = am * 2  # numeric: nonzero attends
    kwargs = dict(use_causal_mask=c.get("causal", False))
    if "value_mask" in masks:
        kwargs["value_mask"] = tf.constant(masks["value_mask"] > 0)
    if "key_mask" in masks:
        kwargs["key_mask"] = tf.constant(masks["key_mask"] > 0)
    if "attention_mask" in masks:
        kwargs["attention_mask"] = tf.constant(masks["attention_mask"])

    def query():
        qt = tf.constant(q)
        if "query_mask" in masks:
            backend.set_keras_mask(qt, tf.constant(masks["query_mask"] > 0))
        return qt

    layer(query(), v, key=k, **kwargs)  # builds
    weights = [rng.normal(size=w.shape) * 0.5 for w in layer.get_weights()]
    layer.set_weights(weights)
    y, scores = layer(query(), v, key=k, return_attention_scores=True, **kwargs)
    y, scores = y.numpy(), scores.numpy()
    fully_masked = np.any(np.all(scores == 0, axis=-1))
    if not fully_masked:
        fused = layer(query(), v, key=k, **kwargs).numpy()
        assert np.abs(fused - y).max() < 1e-12, name
    return dict(query=q, value=v, key=k, weights=weights, output=y, scores=scores, **masks)


luong_rng = np.random.default_rng(11)

# name, layer ("dot", "concat" or "additive"), use_scale, (B, Tq, Tv, dim, dv, key), masks, causal
LUONG_CASES = [
    ("dot_self", "dot", False, (2, 3, 3, 4, 4, False), "", False),
    ("dot_scale_key_masks", "dot", True, (2, 3, 4, 4, 3, True), "qv", False),
    ("concat_scale_causal_value_mask", "concat", True, (2, 4, 4, 3, 3, False), "v", True),
    ("concat_key", "concat", False, (2, 3, 2, 3, 5, True), "q", False),
    ("additive_scale_key_masks", "additive", True, (2, 3, 4, 4, 2, True), "qv", False),
    ("additive_no_scale_causal", "additive", False, (2, 3, 3, 3, 3, False), "", True),
]


def luong_reference(kind, weights, use_scale, q, v, k, q_mask, v_mask, causal):
    scale = weights[0] if use_scale else 1.0
    if kind == "dot":
        scores = q @ np.swapaxes(k, -1, -2) * scale
    elif kind == "concat":
        scores = weights[-1] * np.tanh(scale * (q[:, :, None, :] + k[:, None, :, :])).sum(-1)
    else:
        scores = (scale * np.tanh(q[:, :, None, :] + k[:, None, :, :])).sum(-1)
    mask = np.ones(scores.shape, bool)
    if v_mask is not None:
        mask &= v_mask[:, None, :] > 0
    if causal:
        mask &= np.tril(np.ones(scores.shape[1:], bool))[None]
    scores = np.where(mask, scores, scores - 1e9)
    e = np.exp(scores - scores.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    out = p @ v
    if q_mask is not None:
        out = np.where(q_mask[:, :, None] > 0, out, 0)
    return out, p


def run_luong(name, kind, use_scale, dims, masks, causal):
    b, tq, tv, dim, dv, has_key = dims
    if kind == "additive":
        layer = keras.layers.AdditiveAttention(use_scale=use_scale)
    else:
        layer = keras.layers.Attention(use_scale=use_scale, score_mode=kind)
    q = luong_rng.normal(size=(b, tq, dim))
    v = q if (not has_key and dv == dim and tq == tv) else luong_rng.normal(size=(b, tv, dv))
    k = luong_rng.normal(size=(b, tv, dim)) if has_key else None
    q_mask = mask((b, tq), [(1, tq - 1)]) if "q" in masks else None
    v_mask = mask((b, tv), [(0, tv - 1), (1, 1)]) if "v" in masks else None
    inputs = [q, v] + ([k] if has_key else [])
    kwargs = dict(use_causal_mask=causal)
    if q_mask is not None or v_mask is not None:
        ones = lambda n: np.ones((b, n))  # noqa: E731
        kwargs["mask"] = [tf.constant((q_mask if q_mask is not None else ones(tq)) > 0),
                          tf.constant((v_mask if v_mask is not None else ones(tv)) > 0)]
    layer(inputs, **kwargs)  # builds
    weights = [luong_rng.normal(size=w.shape) * 0.8 + (0.5 if w.ndim == 0 else 0) for w in layer.get_weights()]
    layer.set_weights(weights)
    y, scores = layer(inputs, return_attention_scores=True, **kwargs)
    y, scores = y.numpy(), scores.numpy()
    want_y, want_scores = luong_reference(kind, weights, use_scale, q, v, k if has_key else v, q_mask, v_mask, causal)
    assert np.abs(want_y - y).max() < 1e-12 and np.abs(want_scores - scores).max() < 1e-12, name
    names = [w.path for w in layer.weights]
    return dict(query=q, value=v, key=k, weights=weights, names=names, output=y, scores=scores, query_mask=q_mask,
                value_mask=v_mask)


def main():
    out = [
        "#pragma once",
        "// Generated by test/golden/attention_golden.py (Keras %s, TensorFlow %s) -- do not edit." %
        (keras.__version__, tf.__version__),
        "// Regenerate: KERAS_BACKEND=tensorflow python3 test/golden/attention_golden.py (with keras)",
        "#include <cstdint>",
        "",
        "namespace attention_golden {",
        "",
        "struct Case {",
        "  const char* name;",
        "  std::int64_t heads, key_dim, value_dim, output_dim;  // value_dim, output_dim: 0 for Keras's None",
        "  bool use_bias, causal;",
        "  std::int64_t b, t, s, query_dim, value_dim_in, key_dim_in;  // key_dim_in 0: key = value",
        "  const double *query, *value, *key;  // key: nullptr for key = value",
        "  const double *query_mask, *value_mask, *key_mask, *attention_mask;  // 0/1 (attention_mask 0/2); or nullptr",
        "  const double* weights[8];  // Keras's order; the biases nullptr without use_bias",
        "  const double *output, *scores;  // [b, t, out], [b, heads, t, s]",
        "};",
        "",
    ]
    rows = []
    for i, (name, c, dims) in enumerate(CASES):
        r = run(name, c, dims)
        p = "k%d" % i
        out.append("// %s" % name)

        def emit(field, values):
            if values is None:
                return "nullptr"
            out.append("constexpr double %s_%s[] = %s;" % (p, field, brace(values)))
            return "%s_%s" % (p, field)

        fields = {f: emit(f, r.get(f)) for f in ("query", "value", "key", "query_mask", "value_mask", "key_mask",
                                                 "attention_mask", "output", "scores")}
        ws = [emit("w%d" % j, w) for j, w in enumerate(r["weights"])]
        if not c.get("use_bias", True):  # Keras has no bias weights: kernels at 0, 2, 4, 6
            ws = [ws[0], "nullptr", ws[1], "nullptr", ws[2], "nullptr", ws[3], "nullptr"]
        b, t, s, dq, dv, dk = dims
        rows.append('  {"%s", %d, %d, %d, %d, %s, %s, %d, %d, %d, %d, %d, %d, %s, %s, %s, %s, %s, %s, %s, {%s}, %s, %s},' % (
            name, c["heads"], c["key_dim"], c.get("value_dim") or 0, c.get("output_shape") or 0,
            "true" if c.get("use_bias", True) else "false", "true" if c.get("causal") else "false",
            b, t, s, dq, dv, dk, fields["query"], fields["value"], fields["key"], fields["query_mask"],
            fields["value_mask"], fields["key_mask"], fields["attention_mask"], ", ".join(ws), fields["output"],
            fields["scores"]))
        out.append("")
    out.append("constexpr Case kCases[] = {")
    out.extend(rows)
    out.append("};")
    out.append("")
    out.extend([
        "// Keras's Attention (dot, concat) and AdditiveAttention",
        "struct LuongCase {",
        "  const char* name;",
        "  bool additive, concat, use_scale, causal;",
        "  std::int64_t b, tq, tv, dim, dv;",
        "  const double *query, *value, *key;  // key: nullptr for key = value",
        "  const double *query_mask, *value_mask;  // 0/1, or nullptr",
        "  const double *scale, *concat_score_weight;  // Keras's weights, or nullptr",
        "  const double *output, *scores;  // [b, tq, dv], [b, tq, tv]",
        "};",
        "",
    ])
    rows = []
    for i, (name, kind, use_scale, dims, masks, causal) in enumerate(LUONG_CASES):
        r = run_luong(name, kind, use_scale, dims, masks, causal)
        p = "l%d" % i
        out.append("// %s: %s" % (name, ", ".join(r["names"]) or "no weights"))

        def emit(field, values):
            if values is None:
                return "nullptr"
            out.append("constexpr double %s_%s[] = %s;" % (p, field, brace(values)))
            return "%s_%s" % (p, field)

        fields = {f: emit(f, r.get(f)) for f in ("query", "value", "key", "query_mask", "value_mask", "output",
                                                 "scores")}
        ws = [emit("w%d" % j, w) for j, w in enumerate(r["weights"])]
        scale = ws[0] if use_scale else "nullptr"
        concat = ws[-1] if kind == "concat" else "nullptr"
        b, tq, tv, dim, dv, _ = dims
        rows.append('  {"%s", %s, %s, %s, %s, %d, %d, %d, %d, %d, %s, %s, %s, %s, %s, %s, %s, %s, %s},' % (
            name, "true" if kind == "additive" else "false", "true" if kind == "concat" else "false",
            "true" if use_scale else "false", "true" if causal else "false", b, tq, tv, dim, dv, fields["query"],
            fields["value"], fields["key"], fields["query_mask"], fields["value_mask"], scale, concat,
            fields["output"], fields["scores"]))
        out.append("")
    out.append("constexpr LuongCase kLuongCases[] = {")
    out.extend(rows)
    out.append("};")
    out.append("")
    out.append("}  // namespace attention_golden")
    write_beside(__file__, "\n".join(out) + "\n")


if __name__ == "__main__":
    main()
