"""Statistics shared by the paired benchmarks (bench/paired.py, bench/paired_cmd.py, run.sh).

On this VM the speed of the machine drifts by tens of percent within a minute, so every
benchmark compares bare and guarded runs taken next to each other, and judges the median of
the per-pair ratios by a confidence interval that assumes nothing about their distribution.
"""
import math


def median_ci(xs, conf=0.95):
    """(median, lower, upper): the median of `xs` and the order statistics that bracket it with
    coverage >= `conf` (binomial order statistics: exact for the median of any continuous
    distribution, no normality assumed). With fewer than 6 values the interval is the range."""
    xs = sorted(xs)
    n = len(xs)
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    mid = xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2.0
    alpha = (1.0 - conf) / 2.0
    # Largest k with P(Binomial(n, 1/2) <= k - 1) <= alpha: [x_(k), x_(n+1-k)] (1-based).
    k, cdf = 0, 0.0
    for j in range(n):
        cdf += math.comb(n, j) / 2.0**n
        if cdf > alpha:
            break
        k = j + 1
    if k == 0:
        return mid, xs[0], xs[-1]
    return mid, xs[k - 1], xs[n - k]


def verdict(lo, hi, target):
    """'met' when the whole interval is at or below `target`, 'not met' when it is all above,
    else 'undecided' (more pairs or a quieter machine are needed)."""
    return "met" if hi <= target else ("not met" if lo > target else "undecided")
