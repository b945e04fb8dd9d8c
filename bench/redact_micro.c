/* open + read to EOF (4 KiB chunks) + close, the way a tool reads a config file.
 * Usage: redact_micro ITERATIONS PATH [ROUNDS] — prints nanoseconds per open+read+close, the
 * best of ROUNDS (default 5) rounds of ITERATIONS, after one untimed open (under the guard the
 * first open of a redacted file makes the copy; the rows measure the opens after it). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int once(const char *path, char *buf, size_t len) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) { perror("open"); return -1; }
    while (read(fd, buf, len) > 0) {}
    close(fd);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 4) return 2;
    long n = atol(argv[1]);
    int rounds = argc == 4 ? atoi(argv[3]) : 5;
    char buf[4096];
    if (n <= 0 || rounds <= 0 || once(argv[2], buf, sizeof buf) < 0) return 1;
    double best = 1e300;
    for (int round = 0; round < rounds; round++) {
        double t0 = now_ns();
        for (long i = 0; i < n; i++)
            if (once(argv[2], buf, sizeof buf) < 0) return 1;
        double per = (now_ns() - t0) / n;
        if (per < best) best = per;
    }
    printf("%.1f\n", best);
    return 0;
}
