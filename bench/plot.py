#!/usr/bin/env python3
"""Draws bench-scale's TSVs (bench/curves.sh) as PNGs in the same directory.

    python bench/plot.py target/bench-scale

keys.png (keys-*.tsv), sessions.png (sessions-*.tsv), zipf.png (zipf.tsv); a missing TSV is
skipped. Needs matplotlib (bench/requirements.txt); installs nothing.
"""

import csv
import glob
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def growth(directory, pattern, size_column, title, out):
    """Latency (p50, p99) and rate against the number of rows, one line per store."""
    files = sorted(glob.glob(os.path.join(directory, pattern)))
    if not files:
        return
    fig, (lat, rate) = plt.subplots(1, 2, figsize=(12, 4.5))
    for path in files:
        rows = read(path)
        if not rows:
            continue
        store = rows[0]["store"]
        x = [int(r[size_column]) for r in rows]
        p50 = [float(r["p50_us"]) for r in rows]
        p99 = [float(r["p99_us"]) for r in rows]
        line = lat.plot(x, p50, marker="o", label=f"{store} p50")[0]
        lat.plot(x, p99, marker="s", linestyle="--", color=line.get_color(), label=f"{store} p99")
        rate.plot(x, [float(r["per_s"]) for r in rows], marker="o", color=line.get_color(),
                  label=f"{store} sequential")
        conc = [float(r["per_s_concurrent"]) for r in rows]
        if any(conc):
            rate.plot(x, conc, marker="s", linestyle="--", color=line.get_color(),
                      label=f"{store} × {rows[0]['concurrency']} tasks")
    for ax in (lat, rate):
        ax.set_xscale("log")
        ax.set_xlabel(size_column)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    lat.set_ylabel("µs per first-seen resolve")
    lat.set_yscale("log")
    rate.set_ylabel("resolves per second")
    rate.set_ylim(bottom=0)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(os.path.join(directory, out), dpi=110)
    plt.close(fig)


def zipf(directory):
    path = os.path.join(directory, "zipf.tsv")
    if not os.path.exists(path):
        return
    rows = read(path)
    if not rows:
        return
    s = [float(r["s"]) for r in rows]
    fig, (ratio, lat, mem) = plt.subplots(1, 3, figsize=(15, 4.5))
    ratio.plot(s, [float(r["resolved_hit_ratio"]) for r in rows], marker="o",
               label="resolved-credential cache")
    ratio.plot(s, [float(r["served_without_store"]) for r in rows], marker="s",
               label="either cache (no store lookup)")
    ratio.set_ylabel("hit ratio")
    ratio.set_ylim(0, 1)
    lat.plot(s, [float(r["p50_us"]) for r in rows], marker="o", label="p50")
    lat.plot(s, [float(r["p99_us"]) for r in rows], marker="s", label="p99")
    lat.plot(s, [float(r["p999_us"]) for r in rows], marker="^", label="p99.9")
    lat.set_ylabel("µs per resolve")
    lat.set_yscale("log")
    mem.bar([str(x) for x in s],
            [(int(r["rss_after_kib"]) - int(r["rss_before_kib"])) / 1024 for r in rows])
    mem.set_ylabel("RSS growth during the run, MiB")
    for ax in (ratio, lat, mem):
        ax.set_xlabel("Zipf exponent s")
        ax.grid(True, alpha=0.3)
    ratio.legend()
    lat.legend()
    r = rows[0]
    fig.suptitle(f"Caches of {int(r['cache']):,} entries, {int(r['distinct']):,} distinct API keys, "
                 f"{int(r['requests']):,} requests (in-memory stores)")
    fig.tight_layout()
    fig.savefig(os.path.join(directory, "zipf.png"), dpi=110)
    plt.close(fig)


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "target/bench-scale"
    growth(directory, "keys-*.tsv", "size", "First-seen API-key lookups (Authenticator::resolve, "
           "empty caches) against the number of stored keys", "keys.png")
    growth(directory, "sessions-*.tsv", "sessions", "First-seen access tokens (signature, "
           "session and denylist lookups) against the number of live sessions", "sessions.png")
    zipf(directory)


if __name__ == "__main__":
    main()
