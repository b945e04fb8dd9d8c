/* Audit load generator: PROCS processes each make RATE denied opens per second of PATH for SECS
 * seconds (RATE 0 = as fast as possible, COUNT opens), then wait for the file GO2 (if given) or
 * 300 ms and make one last open, so that libguard reports every earlier drop in that event's
 * dropped_before. Children are forked, not exec'd, so the only audit events are these opens.
 * Prints one line per process: "sent N max_us M" (M = slowest open, to show nothing blocks).
 * usage: broker_load PATH PROCS RATE SECS_OR_COUNT [GO_FILE DONE_FILE GO2_FILE] */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static void wait_file(const char *p) {
    while (p && access(p, F_OK) != 0) usleep(5000);
}

static void one(const char *path, long long *max_us) {
    long long t0 = now_us();
    int fd = open(path, O_RDONLY);
    long long dt = now_us() - t0;
    if (fd >= 0) close(fd);
    if (dt > *max_us) *max_us = dt;
}

int main(int argc, char **argv) {
    if (argc < 5) return 2;
    const char *path = argv[1];
    int procs = atoi(argv[2]);
    long rate = atol(argv[3]);
    long n = atol(argv[4]);
    const char *go = argc > 5 ? argv[5] : NULL, *done = argc > 6 ? argv[6] : NULL,
               *go2 = argc > 7 ? argv[7] : NULL;
    wait_file(go);
    for (int p = 0; p < procs; p++) {
        if (fork() != 0) continue;
        long long max_us = 0, sent = 0, start = now_us();
        long total = rate > 0 ? rate * n : n;
        for (long i = 0; i < total; i++) {
            if (rate > 0) {
                long long due = start + i * 1000000LL / rate;
                long long wait = due - now_us();
                if (wait > 0) usleep((useconds_t)wait);
            }
            one(path, &max_us);
            sent++;
        }
        if (done) {
            char d[4096];
            snprintf(d, sizeof d, "%s.%d", done, p);
            FILE *f = fopen(d, "w");
            if (f) fclose(f);
        }
        if (go2) wait_file(go2); else usleep(300000);
        one(path, &max_us);
        sent++;
        printf("sent %lld max_us %lld\n", sent, max_us);
        fflush(stdout);
        _exit(0);
    }
    int st, rc = 0;
    while (wait(&st) > 0) if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) rc = 1;
    return rc;
}
