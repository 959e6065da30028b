#!/usr/bin/env python3
"""The report's chart (needs matplotlib): tapeflow's ops as a fraction of the machine's limit,
their speed-up over the naive loops, and, when peers ran, the time ratios peer / tapeflow.

    plot.py RESULTS_DIR OUT.png
"""
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import summarize as sm  # noqa: E402


def main():
    rdir, out = sys.argv[1], sys.argv[2]
    raw = sm.read_tsv(os.path.join(rdir, "tapeflow.tsv"))
    cases = sorted((k[:-len("/pct_limit")] for k in raw if k.endswith("/pct_limit")), key=sm.key_order)
    pct = [raw[c + "/pct_limit"][0] for c in cases]
    speedup = [raw[c + "/naive"][0] / raw[c][0] for c in cases]

    peers = {}
    for name, label in sm.PEERS:
        rows = []
        for path in sorted(os.listdir(rdir)):
            if path.startswith(name + "-t") and path.endswith(".tsv"):
                t = int(path[len(name) + 2:-4])
                rows += [(k, v, t) for k, v in sm.read_tsv(os.path.join(rdir, path)).items()]
        if rows:
            peers[label] = sm.best_by_threads(rows)
    tf = sm.best_by_threads([(k, v, 0) for k, v in raw.items()])

    panels = 3 if peers else 2
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 0.28 * len(cases) + 1.5), sharey=False)
    y = list(range(len(cases)))
    ax = axes[0]
    ax.barh(y, pct, color=["tab:green" if p >= 90 else "tab:orange" if p >= 50 else "tab:red" for p in pct])
    ax.axvline(100, color="k", lw=0.8)
    ax.set_yticks(y, cases, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("% of the measured limit (bandwidth or sgemm)")
    ax.set_title("tapeflow vs this machine's limit")
    ax = axes[1]
    ax.barh(y, speedup, color="tab:blue")
    ax.set_xscale("log")
    ax.set_yticks(y, cases, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("naive time / tapeflow time (log)")
    ax.set_title("speed-up over the naive loop")
    if peers:
        ax = axes[2]
        keys = sorted((k for k in tf if any(k in p for p in peers.values())), key=sm.key_order)
        yk = list(range(len(keys)))
        h = 0.8 / len(peers)
        for i, (label, p) in enumerate(peers.items()):
            ax.barh([v + i * h for v in yk], [p[k][0] / tf[k][0] if k in p else 0 for k in keys], height=h,
                    label=label)
        ax.axvline(1, color="k", lw=0.8)
        ax.set_xscale("log")
        ax.set_yticks([v + 0.4 - h / 2 for v in yk], keys, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("peer time / tapeflow time (log; > 1: tapeflow faster)")
        ax.set_title("against the peers")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main()
