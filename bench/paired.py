"""Bare against guarded, one run of each at a time: a verdict for whole-process workloads on a
machine whose speed drifts.

This VM's speed drifts by tens of percent within a minute even when idle, so comparing a block
of bare runs with a later block of guarded runs measures the drift. Here every bare run has a
guarded twin taken right next to it (the order alternates), and the answer is the median of
the per-pair ratios with a distribution-free 95% confidence interval (bench/stats.py): the drift is common to both runs of a pair and cancels.

The bare side is this process. The guarded side is a worker started under `guardctl run`, so it
is a guarded agent spawning the command as an agent would (the exec hook in the parent, the
library's start-up in the child). Each run is one `posix_spawn` + `wait4`, which gives the
child tree's own CPU time (user + system) next to the wall time.

Usage: paired.py [--pairs N] [--target PCT | --target-ms MS] [--label NAME] [--guardctl PATH]
                 [--cwd DIR] -- CMD [ARGS...]
(--target: the wall ratio must stay within PCT percent; --target-ms: the added wall time
within MS milliseconds, e.g. process start-up.)
Prints one Markdown table row (and a verdict line to stderr). Exit status 0 whatever the
verdict; non-zero if a run fails or the worker shows the guard is not live.
"""
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stats import median_ci, verdict  # noqa: E402


def run_once(cmd):
    """Wall and CPU milliseconds of one run of `cmd`, stdout discarded."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        t0 = time.perf_counter()
        pid = os.posix_spawnp(cmd[0], cmd, os.environ,
                              file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)])
        _, status, ru = os.wait4(pid, 0)
        wall = (time.perf_counter() - t0) * 1000.0
    finally:
        os.close(devnull)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"paired.py: {cmd} exited with {os.waitstatus_to_exitcode(status)}")
    return wall, (ru.ru_utime + ru.ru_stime) * 1000.0


def worker(cmd):
    """Guarded side: run `cmd` once per line read from stdin, answer "wall cpu"."""
    denied = os.environ.get("BENCH_EXPECT_DENIED")
    if denied:
        try:
            open(denied).close()
        except PermissionError:
            pass
        else:
            sys.exit(f"paired.py: {denied} was not refused: the guard is not live")
    print("READY", flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        wall, cpu = run_once(cmd)
        print(f"{wall:.6f} {cpu:.6f}", flush=True)
    return 0


def main(argv):
    pairs, target, target_ms, label, guardctl, cwd = 60, 5.0, None, None, "guardctl", None
    args = list(argv)
    if "--worker" in args:
        return worker(args[args.index("--") + 1:])
    while args and args[0] != "--":
        opt = args.pop(0)
        val = args.pop(0) if args else sys.exit(f"paired.py: {opt} needs a value")
        if opt == "--pairs":
            pairs = int(val)
        elif opt == "--target":
            target = float(val)
        elif opt == "--target-ms":
            target_ms = float(val)
        elif opt == "--label":
            label = val
        elif opt == "--guardctl":
            guardctl = val
        elif opt == "--cwd":
            cwd = val
        else:
            sys.exit(f"paired.py: unknown option {opt}")
    cmd = args[1:]
    if not cmd:
        sys.exit(__doc__)
    if cwd:
        os.chdir(cwd)
    w = subprocess.Popen(
        [guardctl, "run", "--agent", "bench", "--", sys.executable, os.path.abspath(__file__),
         "--worker", "--"] + cmd,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    # Skip anything printed before the worker is up.
    for line in w.stdout:
        if line.strip() == "READY":
            break
    else:
        sys.exit("paired.py: the guarded worker did not start")

    def guarded():
        w.stdin.write("run\n")
        w.stdin.flush()
        line = w.stdout.readline().split()
        if len(line) != 2:
            sys.exit("paired.py: the guarded worker stopped")
        return float(line[0]), float(line[1])

    # One unrecorded pair warms the page cache on both sides.
    run_once(cmd)
    guarded()
    bw, gw, bc, gc = [], [], [], []
    for i in range(pairs):
        if i % 2 == 0:
            b = run_once(cmd)
            g = guarded()
        else:
            g = guarded()
            b = run_once(cmd)
        bw.append(b[0]); bc.append(b[1]); gw.append(g[0]); gc.append(g[1])
    w.stdin.close()
    w.wait()
    m = statistics.median
    rw = median_ci([g / b for g, b in zip(gw, bw)])
    rc = median_ci([g / b for g, b in zip(gc, bc) if b > 0] or [float("nan")])
    dw = median_ci([g - b for g, b in zip(gw, bw)])
    name = label or " ".join(os.path.basename(c) if i == 0 else c for i, c in enumerate(cmd))
    print(f"| {name} | {pairs} | {m(bw):.3f} | {m(gw):.3f} | {dw[0]:+.3f} [{dw[1]:+.3f}, {dw[2]:+.3f}] "
          f"| {(rw[0] - 1) * 100:+.1f}% [{(rw[1] - 1) * 100:+.1f}%, {(rw[2] - 1) * 100:+.1f}%] "
          f"| {m(bc):.3f} | {m(gc):.3f} | {(rc[0] - 1) * 100:+.1f}% [{(rc[1] - 1) * 100:+.1f}%, {(rc[2] - 1) * 100:+.1f}%] |",
          flush=True)
    if target_ms is not None:
        v = verdict(dw[1], dw[2], target_ms)
        print(f"{name}: added {dw[0]:+.3f} ms [95% CI {dw[1]:+.3f}, {dw[2]:+.3f}]: "
              f"target within {target_ms:g} ms: {v}", file=sys.stderr)
    else:
        v = verdict(rw[1], rw[2], 1 + target / 100.0)
        print(f"{name}: wall {(rw[0] - 1) * 100:+.1f}% [95% CI {(rw[1] - 1) * 100:+.1f}%, "
              f"{(rw[2] - 1) * 100:+.1f}%]: target within {target:g}%: {v}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
