/* Kernel cost of the syscalls a reopen of a kept redacted copy uses, and of the alternatives,
 * measured bare (no libguard): which validation of the original, which way to get a new open
 * file description of sealed content, which identity check. All cases run interleaved, ROUNDS
 * times ITERATIONS each; prints the min and median ns per case and the median as a multiple
 * of the bare open+read+read+close (a program reading a 4 KiB file to EOF).
 *
 *   cc -O2 -o /tmp/rk bench/redact_kernel.c && /tmp/rk FILE [ITERATIONS [ROUNDS]]
 *
 * FILE: a 4 KiB file (its content is copied into the sealed memfd). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define SEALS (F_SEAL_WRITE | F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL)

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static char buf[4096];
static const char *P;
static int procdir, mfd, parent;
static char nm[16], full[64];

static void rd(int fd) { while (read(fd, buf, sizeof buf) > 0) {} }
static void st_path(void) { struct stat st; syscall(SYS_newfstatat, AT_FDCWD, P, &st, AT_SYMLINK_NOFOLLOW); }

static void bare(void) { int fd = open(P, O_RDONLY); rd(fd); close(fd); }
static void open_close(void) { close(open(P, O_RDONLY)); }
static void stat_path(void) { st_path(); }
static void stat_root(void) { struct stat st; syscall(SYS_newfstatat, AT_FDCWD, "/", &st, AT_SYMLINK_NOFOLLOW); }
static void stat_last(void) { struct stat st; syscall(SYS_newfstatat, parent, strrchr(P, '/') + 1, &st, AT_SYMLINK_NOFOLLOW); }
static void statx_min(void) { struct statx sx; statx(AT_FDCWD, P, AT_SYMLINK_NOFOLLOW, STATX_INO | STATX_SIZE | STATX_MTIME | STATX_CTIME, &sx); }
static void statx_dontsync(void) { struct statx sx; statx(AT_FDCWD, P, AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC, STATX_INO | STATX_CTIME, &sx); }
static void reopen_dir(void) { close(openat(procdir, nm, O_RDONLY | O_NONBLOCK)); }
static void reopen_abs(void) { close(open(full, O_RDONLY | O_NONBLOCK)); }
static void new_memfd(void) {
    int m = memfd_create("x", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    pwrite(m, buf, sizeof buf, 0);
    fcntl(m, F_ADD_SEALS, SEALS);
    close(m);
}
static void fstat_fd(void) { struct stat st; fstat(mfd, &st); }
static void statx_fd(void) { struct statx sx; statx(mfd, "", AT_EMPTY_PATH, STATX_INO, &sx); }
static void setfl(void) { fcntl(mfd, F_SETFL, 0); }
static void get_seals(void) { fcntl(mfd, F_GET_SEALS); }
static void getpid_(void) { syscall(SYS_getpid); }
/* What a reopen of a kept copy costs on main, then without parts of it. */
static void seq_main(void) {
    struct stat st;
    st_path();
    int fd = openat(procdir, nm, O_RDONLY | O_NONBLOCK);
    fstat(fd, &st);
    fcntl(fd, F_SETFL, 0);
    rd(fd);
    close(fd);
}
static void seq_no_setfl(void) {
    struct stat st;
    st_path();
    int fd = openat(procdir, nm, O_RDONLY | O_NONBLOCK);
    fstat(fd, &st);
    rd(fd);
    close(fd);
}
static void seq_no_check(void) {
    st_path();
    int fd = openat(procdir, nm, O_RDONLY);
    rd(fd);
    close(fd);
}
static void seq_no_stat(void) {
    int fd = openat(procdir, nm, O_RDONLY);
    rd(fd);
    close(fd);
}

struct c { const char *n; void (*f)(void); } C[] = {
    {"bare: open+read+read(EOF)+close", bare},
    {"open+close of the file", open_close},
    {"newfstatat(full path, NOFOLLOW)", stat_path},
    {"newfstatat(\"/\")", stat_root},
    {"newfstatat(parent dir fd, last name)", stat_last},
    {"statx(full path, INO|SIZE|MTIME|CTIME)", statx_min},
    {"statx(full path, INO|CTIME, DONT_SYNC)", statx_dontsync},
    {"openat(/proc/self/fd dir, \"N\")+close", reopen_dir},
    {"open(\"/proc/self/fd/N\")+close", reopen_abs},
    {"memfd_create+pwrite 4K+seal+close", new_memfd},
    {"fstat(fd)", fstat_fd},
    {"statx(fd, \"\", EMPTY_PATH, INO)", statx_fd},
    {"fcntl(F_SETFL)", setfl},
    {"fcntl(F_GET_SEALS)", get_seals},
    {"getpid (syscall floor)", getpid_},
    {"main: stat+reopen+fstat+setfl+reads+close", seq_main},
    {"  without F_SETFL", seq_no_setfl},
    {"  without fstat and F_SETFL", seq_no_check},
    {"  reopen+reads+close only", seq_no_stat},
};

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s FILE [ITERATIONS [ROUNDS]]\n", argv[0]); return 2; }
    P = argv[1];
    int n = argc > 2 ? atoi(argv[2]) : 20000, R = argc > 3 ? atoi(argv[3]) : 9;
    int f = open(P, O_RDONLY);
    if (f < 0 || P[0] != '/') { fprintf(stderr, "FILE must be an absolute name of a readable file\n"); return 1; }
    read(f, buf, sizeof buf);
    close(f);
    char dir[4096];
    snprintf(dir, sizeof dir, "%.*s", (int)(strrchr(P, '/') - P), P);
    parent = open(dir[0] ? dir : "/", O_PATH | O_DIRECTORY);
    int m = memfd_create("k", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    pwrite(m, buf, sizeof buf, 0);
    fcntl(m, F_ADD_SEALS, SEALS);
    mfd = fcntl(m, F_DUPFD_CLOEXEC, 512);
    close(m);
    int d = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
    procdir = fcntl(d, F_DUPFD_CLOEXEC, 512);
    close(d);
    snprintf(nm, sizeof nm, "%d", mfd);
    snprintf(full, sizeof full, "/proc/self/fd/%d", mfd);
    int K = sizeof C / sizeof C[0];
    double *t = calloc((size_t)K * R, sizeof(double));
    for (int r = 0; r < R; r++)
        for (int k = 0; k < K; k++) {
            for (int i = 0; i < n / 10; i++) C[k].f();
            double t0 = now();
            for (int i = 0; i < n; i++) C[k].f();
            t[k * R + r] = (now() - t0) / n;
        }
    for (int k = 0; k < K; k++) qsort(t + k * R, R, sizeof(double), cmpd);
    double base = t[R / 2];
    for (int k = 0; k < K; k++)
        printf("%-44s min %7.1f  median %7.1f ns  %5.2fx bare\n", C[k].n, t[k * R], t[k * R + R / 2], t[k * R + R / 2] / base);
    return 0;
}
