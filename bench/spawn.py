"""Times whole-process workloads: median wall time of N runs of a command and the mean CPU time
(user + system) of the command's process tree, in milliseconds, printed as "WALL CPU". On a
shared machine the CPU time is the steadier measure.

Usage: spawn.py N CMD [ARGS...]   (run bare, or itself under `guardctl run`, by bench/run.sh)
The driver process is guarded too when run under the guard, as an agent would be.
"""
import os
import resource
import statistics
import subprocess
import sys
import time


def assert_guarded(path: str) -> None:
    """In the guarded runs, `path` must be refused to this driver and to a child (bench/run.sh)."""
    try:
        open(path).close()
    except PermissionError:
        pass
    else:
        sys.exit(f"spawn.py: {path} was not refused: the guard is not live")
    child = subprocess.run(["cat", path], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if child.returncode == 0:
        sys.exit(f"spawn.py: a child could read {path}: the guard is not live in children")


def main() -> int:
    n = int(sys.argv[1])
    cmd = sys.argv[2:]
    denied = os.environ.get("BENCH_EXPECT_DENIED")
    if denied:
        assert_guarded(denied)
    samples = []
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        samples.append((time.perf_counter() - t0) * 1000.0)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) * 1000.0 / n
    print(f"{statistics.median(samples):.3f} {cpu:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
