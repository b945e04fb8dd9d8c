/* Static C stand-in for the kernel-layer tests: execs argv[1] with argv[2..] through the raw
 * execve system call (no libc wrapper, no preload: built with -static). Prints "ERR <errno>"
 * if the exec fails.
 *   exec_raw PROG ARGV0 ARGS...
 *   exec_raw --path-only PROG ARGV0 ARGS...   the same with an environment of PATH alone
 *                                             (a static parent that cleaned LD_PRELOAD)
 *   exec_raw --bench N PROG   fork + raw execve of PROG N times, prints the mean in µs
 *   exec_raw --unlink PATH    raw unlinkat(AT_FDCWD, PATH): prints "OK" or "ERR <errno>"
 *   exec_raw --files N DIR    creates (open O_CREAT|O_WRONLY, close) and unlinks N files in
 *                             DIR with raw syscalls, prints the mean in µs per file */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc >= 4 && strcmp(argv[1], "--bench") == 0) {
        int n = atoi(argv[2]);
        char *args[] = {argv[3], NULL};
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (int i = 0; i < n; i++) {
            pid_t p = fork();
            if (p == 0) {
                syscall(SYS_execve, argv[3], args, environ);
                _exit(127);
            }
            int st;
            waitpid(p, &st, 0);
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                printf("ERR child status %d\n", st);
                return 1;
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        double us = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / n;
        printf("%.1f\n", us);
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "--unlink") == 0) {
        if (syscall(SYS_unlinkat, AT_FDCWD, argv[2], 0) == 0)
            printf("OK\n");
        else
            printf("ERR %d\n", errno);
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "--files") == 0) {
        int n = atoi(argv[2]);
        char name[4096];
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (int i = 0; i < n; i++) {
            snprintf(name, sizeof name, "%s/f%d", argv[3], i);
            long fd = syscall(SYS_openat, AT_FDCWD, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || syscall(SYS_close, fd) != 0 || syscall(SYS_unlinkat, AT_FDCWD, name, 0) != 0) {
                printf("ERR %d\n", errno);
                return 1;
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / n);
        return 0;
    }
    if (argc >= 4 && strcmp(argv[1], "--path-only") == 0) {
        static char path[8192];
        snprintf(path, sizeof path, "PATH=%s", getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
        char *env[] = {path, NULL};
        syscall(SYS_execve, argv[2], argv + 3, env);
        printf("ERR %d\n", errno);
        return 1;
    }
    if (argc < 3) {
        fprintf(stderr, "usage: exec_raw PROG ARGV0 ARGS...\n");
        return 2;
    }
    syscall(SYS_execve, argv[1], argv + 2, environ);
    printf("ERR %d\n", errno);
    return 1;
}
