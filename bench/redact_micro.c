/* open + read to EOF (4 KiB chunks) + close, the way a tool reads a config file.
 * Usage: redact_micro ITERATIONS PATH — prints nanoseconds per open+read+close (best of 5). */
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

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    long n = atol(argv[1]);
    char buf[4096];
    double best = 1e300;
    for (int round = 0; round < 5; round++) {
        double t0 = now_ns();
        for (long i = 0; i < n; i++) {
            int fd = open(argv[2], O_RDONLY);
            if (fd < 0) { perror("open"); return 1; }
            while (read(fd, buf, sizeof buf) > 0) {}
            close(fd);
        }
        double per = (now_ns() - t0) / n;
        if (per < best) best = per;
    }
    printf("%.1f\n", best);
    return 0;
}
