"""Paired bare/guarded comparison with a distribution-free confidence interval (bench/redact.sh): commands that print one number.

Usage: paired_cmd.py PAIRS TARGET NAME -- CMD [ARGS...]

Runs CMD bare and under `$GUARDCTL run --agent bench --` PAIRS times each, alternating which
of the two goes first in each pair (drift in machine speed then hits both sides alike). CMD
prints one number (the first field of its output is used: ns per operation, or spawn.py's
median wall time). For each pair the ratio guarded/bare is taken; the row reports the median
of the bare and guarded numbers, the median ratio and its 95% confidence interval from the
binomial order statistics of the ratios (exact for the median of any continuous distribution,
no normality assumed), and a verdict against TARGET (a ratio, e.g. 2.0; "-" for none):
  met        the whole interval lies at or below the target;
  not met    the whole interval lies above it;
  undecided  the interval straddles it (more pairs or a quieter machine are needed).
Prints one Markdown table row.
"""
import os
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stats import median_ci, verdict  # noqa: E402


def run(cmd, guarded):
    if guarded:
        cmd = [os.environ["GUARDCTL"], "run", "--agent", "bench", "--"] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"paired_cmd.py: {cmd} failed ({r.returncode}): {r.stderr.strip()}")
    out = r.stdout.split()
    return float(out[0])


def main():
    pairs, target, name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    if sys.argv[4] != "--":
        sys.exit("usage: paired_cmd.py PAIRS TARGET NAME -- CMD...")
    cmd = sys.argv[5:]
    bare, guarded, ratios = [], [], []
    for i in range(pairs):
        if i % 2 == 0:
            b = run(cmd, False)
            g = run(cmd, True)
        else:
            g = run(cmd, True)
            b = run(cmd, False)
        bare.append(b)
        guarded.append(g)
        ratios.append(g / b)
    med, lo, hi = median_ci(ratios)
    if target == "-":
        v = "-"
    else:
        t = float(target)
        v = f"{verdict(lo, hi, t)} (target {t:g}x)"
    unit = os.environ.get("PAIRED_UNIT", "µs")
    scale = 1000.0 if unit == "µs" else 1.0
    print(
        f"| {name} | {statistics.median(bare) / scale:.2f} {unit} | "
        f"{statistics.median(guarded) / scale:.2f} {unit} | {med:.2f}x | "
        f"{lo:.2f}–{hi:.2f}x | {min(ratios):.2f}–{max(ratios):.2f}x | {v} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
