#!/usr/bin/env python3
"""Golden outputs of Keras 3's TextVectorization and StringLookup, which tapeflow's text.hpp
reimplements: vocabularies learnt by adapt() on a small corpus with ties, punctuation, mixed case, a tab and
non-ASCII letters (Keras lowercases ASCII only), and the outputs on a batch with unknown words
and an empty string: int mode with and without output_sequence_length (padding and
truncation), max_tokens, ngrams=2, the standardize and split variants, and the
multi_hot / count / tf_idf modes (with max_tokens and pad_to_max_tokens, and a vocabulary set
with idf weights); StringLookup's vocabularies after adapt and its four output modes on a list
of tokens and on rows; produced by the real Keras 3 (TensorFlow backend).

Regenerate (writes text_golden.hpp beside this script):

    KERAS_BACKEND=tensorflow /path/to/venv-with-keras/bin/python test/golden/text_golden.py

Produced with tensorflow 2.21.0 and keras 3.15.1.
"""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

L = keras.layers
out = []


def cstr(s):
    # octal escapes (at most 3 digits) cannot swallow the next character as \x escapes can
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    body = "".join(chr(c) if 32 <= c < 127 and chr(c) not in '"\\?' else f"\\{c:03o}" for c in b)
    return f'"{body}"'


def strings(name, values):
    out.append(f"const char* const {name}[] = {{{', '.join(cstr(str(v)) for v in values)}}};")


def ints(name, a):
    a = np.asarray(a).ravel()
    out.append(f"constexpr std::int64_t {name}[] = {{{', '.join(str(int(v)) for v in a)}}};")


def doubles(name, a):
    a = np.asarray(a, dtype=np.float64).ravel()
    out.append(f"constexpr double {name}[] = {{{', '.join(repr(float(v)) for v in a)}}};")


def result(name, y, int_mode):
    # Keras 3.15 gives int64 for multi_hot and count too; tapeflow gives float32 there
    y = np.asarray(y)
    ints(f"{name}Shape", y.shape)
    (ints if int_mode else doubles)(name, y)


# Ties at counts 3, 2 and 1 (Keras sorts by count, then by the token's bytes, descending),
# punctuation inside words (dog's -> dogs), upper case, a tab, and É which stays upper case.
corpus = [
    "The cat sat on the mat.",
    "the dog, the CAT!",
    "A dog's life\tis good; a cat's life is better",
    "Élan vital: ÉLAN...",
    "zebra yak  (yak)",
]
batch = ["the cat and the dog", "", "A yak? A ZEBRA!", "élan is Élan"]
strings("kCorpus", corpus)
strings("kBatch", batch)


def case(name, texts=batch, adapt=True, **kw):
    tv = L.TextVectorization(**kw)
    if texts is not batch:
        strings(f"k{name}In", texts)
    if adapt:
        tv.adapt(corpus)
    strings(f"k{name}Vocab", tv.get_vocabulary())
    result(f"k{name}Out", tv(texts).numpy(), kw.get("output_mode", "int") == "int")
    return tv


case("Int")
case("IntLen4", output_sequence_length=4)
case("IntLen8", output_sequence_length=8)
case("IntMax6", max_tokens=6)
case("IntBigrams", ngrams=2)
case("IntTrigramsLen6", ngrams=3, output_sequence_length=6)
case("Lower", standardize="lower")
case("StripPunct", standardize="strip_punctuation")
case("NoStandardize", standardize=None)
case("Chars", split="character", texts=["a cat", "ÉA!", "zz"])
case("MultiHot", output_mode="multi_hot")
case("Count", output_mode="count")
case("CountMax5", output_mode="count", max_tokens=5)
case("MultiHotMax30Pad", output_mode="multi_hot", max_tokens=30, pad_to_max_tokens=True)
case("CountBigrams", output_mode="count", ngrams=2)
tv = case("TfIdf", output_mode="tf_idf")
doubles("kTfIdfIdf", tv._lookup_layer.idf_weights.numpy())
tv = case("TfIdfMax30Pad", output_mode="tf_idf", max_tokens=30, pad_to_max_tokens=True)
doubles("kTfIdfMax30PadIdf", tv._lookup_layer.idf_weights.numpy())
tv = case("TfIdfMax4", output_mode="tf_idf", max_tokens=4)
doubles("kTfIdfMax4Idf", tv._lookup_layer.idf_weights.numpy())

# A vocabulary set with idf weights and no special tokens: the OOV weight is their mean.
tv = L.TextVectorization(output_mode="tf_idf")
tv.set_vocabulary(["the", "cat", "dog"], idf_weights=[0.5, 1.0, 2.0])
strings("kSetTfIdfVocab", tv.get_vocabulary())
doubles("kSetTfIdfIdf", tv._lookup_layer.idf_weights.numpy())
result("kSetTfIdfOut", tv(batch).numpy(), False)

# StringLookup with Keras's defaults (one OOV index, no mask token): "" is an ordinary token.
lookup_tokens = ["b", "a", "c", "a", "", "[UNK]", "c", "d", "Éa", "a"]
lookup_queries = ["a", "zz", "", "c", "d"]
lookup_rows = [["a", "b"], ["zz", "c"], ["c", "c"]]
strings("kLookupTokens", lookup_tokens)
strings("kLookupQueries", lookup_queries)
for name, kw in [("LookupAdapt", {}), ("LookupAdaptMax3", {"max_tokens": 3})]:
    sl = L.StringLookup(**kw)
    sl.adapt(lookup_tokens)
    strings(f"k{name}Vocab", sl.get_vocabulary())
    result(f"k{name}Out", sl(lookup_queries).numpy(), True)
sl = L.StringLookup()
sl.adapt(tf.constant(lookup_rows))
strings("kLookupAdaptRowsVocab", sl.get_vocabulary())
for mode in ["int", "one_hot", "multi_hot", "count"]:
    sl = L.StringLookup(vocabulary=["c", "a", "b"], output_mode=mode)
    name = "Lookup" + "".join(w.capitalize() for w in mode.split("_"))
    result(f"k{name}Out", sl(lookup_queries).numpy(), mode == "int")
    result(f"k{name}RowsOut", sl(tf.constant(lookup_rows)).numpy(), mode == "int")
sl = L.StringLookup(vocabulary=["c", "a", "b"], output_mode="one_hot")
result("kLookupOneHotColumnOut", sl(tf.constant([["a"], ["q"]])).numpy(), False)
sl = L.StringLookup(vocabulary=["c", "a", "b"], output_mode="count", max_tokens=6, pad_to_max_tokens=True)
result("kLookupCountPadOut", sl(tf.constant(lookup_rows)).numpy(), False)

header = "\n".join(
    [
        "#pragma once",
        f"// Generated by test/golden/text_golden.py (Keras {keras.__version__}, TensorFlow "
        f"{tf.__version__}) -- do not edit.",
        "// Regenerate: KERAS_BACKEND=tensorflow python3 test/golden/text_golden.py (with keras)",
        "#include <cstdint>",
        "",
        "namespace text_golden {",
        "",
        *out,
        "",
        "}  // namespace text_golden",
        "",
    ]
)
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "text_golden.hpp")
with open(path, "w") as f:
    f.write(header)
print(f"wrote {path}")
