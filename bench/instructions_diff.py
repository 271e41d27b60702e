#!/usr/bin/env python3
"""Per function, the instructions a request each of two callgrind dumps spends in that
function itself (not its callees), and the difference: bench/instructions.sh's DIFF.

usage: instructions_diff.py A.counted A_REQUESTS B.counted B_REQUESTS [TOP]
"""
import collections
import re
import subprocess
import sys


def own_per_request(dump, requests):
    out = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", "--threshold=100", "--auto=no", dump],
        capture_output=True, text=True, check=True,
    ).stdout
    own = collections.Counter()
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([\s\d.]+%\)\s+(.*)", line)
        if not m or "PROGRAM TOTALS" in line:
            continue
        name = re.sub(r"\s*\[[^\]]*\]$", "", m.group(2))  # the object file
        if name.startswith(("/", ".", "?")) and ":" in name:
            name = name.split(":", 1)[1]  # the source file
        own[name] += int(m.group(1).replace(",", "")) / requests
    return own


def total(dump, requests):
    with open(dump, encoding="utf-8") as f:
        for line in f:
            if line.startswith("summary:"):
                return int(line.split()[1]) / requests
    raise SystemExit(f"{dump}: no summary line")


def main():
    a = own_per_request(sys.argv[1], float(sys.argv[2]))
    b = own_per_request(sys.argv[3], float(sys.argv[4]))
    top = int(sys.argv[5]) if len(sys.argv) > 5 else 40
    rows = sorted(((b[k] - a[k], k) for k in set(a) | set(b)), key=lambda r: -abs(r[0]))
    print("difference\tA\tB\tfunction (own instructions a request)")
    # The frames every instruction runs under (main, block_on, …) are listed with the whole
    # program's count: not a function's own.
    total_a, total_b = total(sys.argv[1], float(sys.argv[2])), total(sys.argv[3], float(sys.argv[4]))
    print(f"{total_b - total_a:+.0f}\t{total_a:.0f}\t{total_b:.0f}\tthe whole request")
    shown = 0
    for diff, name in rows:
        if a[name] >= total_a - 1 or b[name] >= total_b - 1:
            continue
        print(f"{diff:+.0f}\t{a[name]:.0f}\t{b[name]:.0f}\t{name[:140]}")
        shown += 1
        if shown == top:
            break


if __name__ == "__main__":
    main()
