/* The asking side of bench/ask_latency.sh: runs under `guardctl run` with a policy whose file
 * rule says `decision = "ask"` for PATH, and opens PATH for reading WARMUP + N times, one at a
 * time. Each open is held by libguard until the broker relays an answer, so the time around
 * it (CLOCK_MONOTONIC) is the whole ask round trip as the program sees it: hook, policy
 * evaluation, connect, request, the approver's answer, the reply, and the open itself.
 *
 * Usage: ask_latency PATH N WARMUP
 * Prints one line: asks=N ok=K failed=F median_us=.. p90_us=.. p99_us=.. max_us=.. min_us=..
 * (over the N measured opens; the WARMUP ones are not counted in the percentiles but still
 * ask). Exits 1 when any open failed: the asks were denied, timed out or not held at all. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s PATH N WARMUP\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    long n = strtol(argv[2], NULL, 10), warm = strtol(argv[3], NULL, 10);
    if (n <= 0 || warm < 0) {
        fprintf(stderr, "N must be > 0 and WARMUP >= 0\n");
        return 2;
    }
    long long *t = calloc((size_t)n, sizeof *t);
    if (!t) return 2;
    long ok = 0, failed = 0;
    int first_errno = 0;
    for (long i = 0; i < warm + n; i++) {
        long long a = now_ns();
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        long long b = now_ns();
        if (fd >= 0) {
            close(fd);
            if (i >= warm) ok++;
        } else {
            if (!first_errno) first_errno = errno;
            if (i >= warm) failed++;
        }
        if (i >= warm) t[i - warm] = b - a;
    }
    qsort(t, (size_t)n, sizeof *t, cmp);
#define PCT(q) (t[(size_t)((double)(n - 1) * (q))] / 1000)
    printf("asks=%ld ok=%ld failed=%ld median_us=%lld p90_us=%lld p99_us=%lld max_us=%lld min_us=%lld\n",
           n, ok, failed, PCT(0.5), PCT(0.9), PCT(0.99), t[n - 1] / 1000, t[0] / 1000);
    if (failed) {
        fprintf(stderr, "ask_latency: %ld opens failed (first: %s)\n", failed, strerror(first_errno));
        return 1;
    }
    return 0;
}
