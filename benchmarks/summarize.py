#!/usr/bin/env python3
"""Markdown sections of the benchmark report from the key/value files of one run (standard
library only): where tapeflow stands against issue 6's targets, and tapeflow side by side with
the peers, with ratios.

    summarize.py RESULTS_DIR

RESULTS_DIR holds tapeflow.tsv (written by the bench_* programs), and for each peer that ran,
<peer>-t<N>.tsv (one file per thread setting; the best setting of each benchmark is kept) or
<peer>.status (one line: why it did not run).
"""
import glob
import os
import re
import sys

PEERS = [("torch", "PyTorch (Python)"), ("libtorch", "LibTorch (C++)"), ("keras", "TensorFlow / Keras")]
# Issue 6's numbers for PyTorch from Python on this machine, used when no PyTorch ran in this run.
ISSUE_TORCH = {"overhead/no_tape": 0.78, "overhead/tape": 1.17, "overhead/gradient": 1.87, "mlp/epoch": 1.15}
LOWER_IS_BETTER = {"s", "us", "MB"}


def read_tsv(path):
    out = {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) == 3:
                out[parts[0]] = (float(parts[1]), parts[2])
    return out


def best_by_threads(values, threads_of=None):
    """{key: (value, unit, threads)}: keys ending in /<N>t and values from several thread settings
    fold into one key, keeping the best (lowest time or memory)."""
    best = {}
    for key, (v, unit), t in values:
        m = re.match(r"^(.*)/(\d+)t$", key)
        if m and key.startswith(("mlp/", "convnet/", "lstm/", "gru/")):
            key, t = m.group(1), int(m.group(2))
        if unit not in LOWER_IS_BETTER:
            continue
        if key not in best or v < best[key][0]:
            best[key] = (v, unit, t)
    return best


def fmt_value(v, unit):
    if unit == "s":
        if v < 1e-3:
            return "{:.3g} us".format(v * 1e6)
        if v < 1:
            return "{:.3g} ms".format(v * 1e3)
        return "{:.3g} s".format(v)
    if unit == "us":
        return "{:.3g} us".format(v)
    if unit == "MB":
        return "{:.0f} MB".format(v)
    return "{:.3g} {}".format(v, unit)


def key_order(key):
    head = key.split("/")[0]
    groups = ["relu", "add", "bcast_add", "sum_axis0", "sum_axis1", "softmax", "matmul", "matmul_tn", "matmul_nt",
              "overhead", "mlp", "convnet", "lstm", "gru"]
    size = 0
    m = re.search(r"/(\d+)x(\d+)(?:x(\d+))?$", key)
    if m:
        size = int(m.group(1)) * int(m.group(2)) * int(m.group(3) or 1)
    return (groups.index(head) if head in groups else 99, size, key)


def main():
    rdir = sys.argv[1]
    tf_raw = read_tsv(os.path.join(rdir, "tapeflow.tsv"))
    tf = best_by_threads([(k, v, 0) for k, v in tf_raw.items()])
    peers = {}
    status = {}
    for name, _ in PEERS:
        files = sorted(glob.glob(os.path.join(rdir, "{}-t*.tsv".format(name))))
        rows = []
        for path in files:
            t = int(re.search(r"-t(\d+)\.tsv$", path).group(1))
            rows += [(k, v, t) for k, v in read_tsv(path).items()]
        if rows:
            peers[name] = best_by_threads(rows)
        st = os.path.join(rdir, name + ".status")
        if os.path.exists(st):
            status[name] = open(st).read().strip()

    # ---------------------------------------------------------------- targets
    print("## Where tapeflow stands against issue 6's targets\n")
    print("| target | measured | met? |")
    print("|---|---|---|")
    for op in ("relu", "add", "bcast_add", "sum_axis0", "sum_axis1", "softmax"):
        k = "{}/4096x4096/pct_limit".format(op)
        if k in tf_raw:
            pct = tf_raw[k][0]
            print("| {} on 16M floats >= 90% of measured bandwidth | {:.0f}% | {} |".format(
                op, pct, "yes" if pct >= 90 else "no"))
    mm = sorted((k for k in tf_raw if k.startswith("matmul") and k.endswith("/pct_limit")), key=key_order)
    for k in mm:
        pct = tf_raw[k][0]
        print("| {} within 5% of cblas_sgemm | {:.0f}% of sgemm | {} |".format(
            k[:-len("/pct_limit")], pct, "yes" if pct >= 95 else "no"))
    torch = peers.get("torch")
    for key, label, factor in (("overhead/no_tape", "per-op overhead, no tape", 5),
                               ("overhead/tape", "per-op overhead, recording tape", 5),
                               ("overhead/gradient", "per op of gradient()", 5),
                               ("mlp/epoch", "MLP epoch", 2)):
        if key not in tf:
            continue
        if torch and key in torch:
            ref, src = torch[key][0], "PyTorch in this run"
        else:
            ref, src = ISSUE_TORCH[key], "issue 6's PyTorch number (not this run)"
        ratio = ref / tf[key][0]
        print("| {} at least {}x lower than PyTorch's | tapeflow {} vs {} {}: {:.2f}x | {} |".format(
            label, factor, fmt_value(tf[key][0], tf[key][1]), fmt_value(ref, tf[key][1]), src, ratio,
            "yes" if ratio >= factor else "no"))
    print()

    # ---------------------------------------------------------------- peers
    if not peers and not status:
        return
    print("## Side by side with the peers, same run\n")
    for name, label in PEERS:
        if name in status:
            print("- **{}**: {}".format(label, status[name]))
    if not peers:
        print()
        return
    print("- Each peer ran once per thread setting (1 and all cores; OMP_NUM_THREADS and "
          "OPENBLAS_NUM_THREADS set to it, and the framework's own thread count); each row keeps its "
          "best setting, shown as (N thr). tapeflow's ops are its best of 1 and all threads too.")
    print("- A peer's MLP epoch predicted to take over 40 s (a thread setting that fights over the cores) "
          "was timed on part of the epoch and extrapolated; its log in build-bench/results/ says so.")
    print("- **ratio** = peer / tapeflow (time per call, us per op, seconds per epoch, MB): "
          "above 1, tapeflow is faster (or smaller).\n")
    cols = [(n, l) for n, l in PEERS if n in peers]
    print("| benchmark | tapeflow | " + " | ".join("{} | ratio".format(l) for _, l in cols) + " |")
    print("|---|---:|" + "---:|---:|" * len(cols))
    keys = sorted((k for k in tf if any(k in peers[n] for n, _ in cols)), key=key_order)
    ratios = {n: [] for n, _ in cols}
    for k in keys:
        v, unit, t = tf[k]
        tf_cell = fmt_value(v, unit) + (" ({} thr)".format(t) if t else "")
        cells = []
        for n, _ in cols:
            if k in peers[n]:
                pv, _, pt = peers[n][k]
                cells += ["{} ({} thr)".format(fmt_value(pv, unit), pt), "{:.2f}".format(pv / v)]
                ratios[n].append(pv / v)
            else:
                cells += ["—", "—"]
        print("| {} | {} | {} |".format(k, tf_cell, " | ".join(cells)))
    print()
    for n, label in cols:
        r = ratios[n]
        if r:
            geo = 1.0
            for x in r:
                geo *= x
            geo **= 1.0 / len(r)
            print("- {}: geometric mean of the ratios over {} benchmarks: {:.2f} (min {:.2f}, max {:.2f})".format(
                label, len(r), geo, min(r), max(r)))
    print()


if __name__ == "__main__":
    main()
