"""Times whole-process workloads: median wall time of N runs of a command, in milliseconds.

Usage: spawn.py N CMD [ARGS...]   (run bare, or itself under `guardctl run`, by bench/run.sh)
The driver process is guarded too when run under the guard, as an agent would be.
"""
import statistics
import subprocess
import sys
import time


def main() -> int:
    n = int(sys.argv[1])
    cmd = sys.argv[2:]
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        samples.append((time.perf_counter() - t0) * 1000.0)
    print(f"{statistics.median(samples):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
