/*
 * probe: performs one guarded operation named on the command line and prints the outcome as
 * one line, "OK ..." or "ERR <errno-name>", so end-to-end tests can assert the error the
 * program really saw. Built at test time at -O0, -O2 -D_FORTIFY_SOURCE=2 and
 * -D_FILE_OFFSET_BITS=64, which make the program import different libc entry points.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *ename(int e) {
    switch (e) {
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ENOSYS: return "ENOSYS";
    case ECONNREFUSED: return "ECONNREFUSED";
    case E2BIG: return "E2BIG";
    default: return strerror(e);
    }
}

static int result(int ok) {
    if (ok) {
        printf("OK\n");
        return 0;
    }
    printf("ERR %s\n", ename(errno));
    return 1;
}

static int status_result(int st) {
    if (st == -1)
        return result(0);
    printf("OK status=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: probe OP ARGS...\n");
        return 2;
    }
    const char *op = argv[1], *a = argc > 2 ? argv[2] : "", *b = argc > 3 ? argv[3] : NULL;
    setvbuf(stdout, NULL, _IONBF, 0);
    if (!strcmp(op, "read")) {
        /* Flags not known at compile time: fortified builds call __open_2 / __open64_2. */
        int fl = argc > 10 ? O_RDWR : O_RDONLY;
        int fd = open(a, fl);
        return result(fd >= 0);
    } else if (!strcmp(op, "write")) {
        int fd = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        return result(fd >= 0 && write(fd, "x", 1) == 1);
    } else if (!strcmp(op, "openat")) {
        int fd = b && *b == 'w' ? openat(AT_FDCWD, a, O_WRONLY | O_CREAT, 0644)
                                : openat(AT_FDCWD, a, argc > 10 ? O_RDWR : O_RDONLY);
        return result(fd >= 0);
    } else if (!strcmp(op, "fopen")) {
        FILE *f = fopen(a, b ? b : "r");
        return result(f != NULL);
    } else if (!strcmp(op, "reopen")) {
        /* The same relative name opened twice, in two directories: a decision memo must never
         * carry the first verdict over to the second name. */
        int first = open(a, O_RDONLY);
        const char *r1 = first >= 0 ? "OK" : ename(errno);
        if (chdir(b) != 0)
            return result(0);
        int second = open(a, O_RDONLY);
        printf("first=%s second=%s\n", r1, second >= 0 ? "OK" : ename(errno));
        return 0;
    } else if (!strcmp(op, "fread")) {
        /* fopen with a mode, then what the stream really gives: the first line and whether the
         * descriptor is close-on-exec. */
        FILE *f = fopen(a, b ? b : "r");
        if (!f)
            return result(0);
        char line[256] = "";
        if (!fgets(line, sizeof line, f))
            line[0] = 0;
        line[strcspn(line, "\n")] = 0;
        int cloexec = (fcntl(fileno(f), F_GETFD) & FD_CLOEXEC) != 0;
        printf("OK %s cloexec=%d\n", line, cloexec);
        fclose(f);
        return 0;
    } else if (!strcmp(op, "creat")) {
        return result(creat(a, 0644) >= 0);
    } else if (!strcmp(op, "unlink")) {
        return result(unlink(a) == 0);
    } else if (!strcmp(op, "rename")) {
        return result(rename(a, b) == 0);
    } else if (!strcmp(op, "symlink")) {
        return result(symlink(a, b) == 0);
    } else if (!strcmp(op, "mkdir")) {
        return result(mkdir(a, 0755) == 0);
    } else if (!strcmp(op, "link")) {
        return result(link(a, b) == 0);
    } else if (!strcmp(op, "linkat-follow")) {
        return result(linkat(AT_FDCWD, a, AT_FDCWD, b, AT_SYMLINK_FOLLOW) == 0);
    } else if (!strcmp(op, "link-syscall")) {
        return result(syscall(SYS_linkat, AT_FDCWD, a, AT_FDCWD, b, 0) == 0);
    } else if (!strcmp(op, "truncate")) {
        return result(truncate(a, 0) == 0);
    } else if (!strcmp(op, "openat2")) {
        struct { unsigned long long flags, mode, resolve; } how = {O_RDONLY, 0, 0};
        long fd = syscall(SYS_openat2, AT_FDCWD, a, &how, sizeof how);
        return result(fd >= 0);
    } else if (!strcmp(op, "sys-openat")) {
        long fd = syscall(SYS_openat, AT_FDCWD, a, O_RDONLY);
        return result(fd >= 0);
    } else if (!strcmp(op, "io_uring")) {
        char params[120] = {0};
        long fd = syscall(SYS_io_uring_setup, 4, params);
        return result(fd >= 0);
    } else if (!strcmp(op, "execl")) {
        execl(a, a, b, (char *)NULL);
        return result(0);
    } else if (!strcmp(op, "execlp")) {
        execlp(a, a, b, (char *)NULL);
        return result(0);
    } else if (!strcmp(op, "execle-empty-env")) {
        char *empty[] = {NULL};
        execle(a, a, (char *)NULL, empty);
        return result(0);
    } else if (!strcmp(op, "fexecve")) {
        int fd = open(a, O_RDONLY | O_CLOEXEC);
        char *args[] = {(char *)a, NULL};
        fexecve(fd, args, environ);
        return result(0);
    } else if (!strcmp(op, "sys-execve")) {
        char *args[] = {(char *)a, NULL};
        syscall(SYS_execve, a, args, environ);
        return result(0);
    } else if (!strcmp(op, "freopen")) {
        FILE *f = freopen(a, b ? b : "r", stdin);
        return result(f != NULL);
    } else if (!strcmp(op, "execvp")) {
        execvp(a, argv + 2);
        return result(0);
    } else if (!strcmp(op, "execve-empty-env")) {
        char *empty[] = {NULL};
        execve(a, argv + 2, empty);
        return result(0);
    } else if (!strcmp(op, "spawnp")) {
        pid_t pid;
        int e = posix_spawnp(&pid, a, NULL, NULL, argv + 2, environ);
        if (e) {
            errno = e;
            return result(0);
        }
        int st;
        waitpid(pid, &st, 0);
        return status_result(st);
    } else if (!strcmp(op, "system")) {
        return status_result(system(a));
    } else if (!strcmp(op, "unset-system")) {
        unsetenv("LD_PRELOAD");
        return status_result(system(a));
    } else if (!strcmp(op, "popen")) {
        unsetenv("LD_PRELOAD");
        FILE *p = popen(a, "r");
        if (!p)
            return result(0);
        char buf[4096];
        size_t n = fread(buf, 1, sizeof buf - 1, p);
        buf[n] = 0;
        int st = pclose(p);
        printf("OUT %s", buf);
        return status_result(st);
    } else if (!strcmp(op, "lines")) {
        /* Opens each path read from stdin, one line at a time (lets a test change the world,
         * e.g. start a broker, between two hooked calls of one process). */
        char line[4096];
        while (fgets(line, sizeof line, stdin)) {
            line[strcspn(line, "\n")] = 0;
            int fd = open(line, O_RDONLY);
            result(fd >= 0);
            if (fd >= 0)
                close(fd);
        }
        return 0;
    } else if (!strcmp(op, "connect")) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sin = {0};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(atoi(b));
        inet_pton(AF_INET, a, &sin.sin_addr);
        return result(connect(s, (struct sockaddr *)&sin, sizeof sin) == 0);
    } else if (!strcmp(op, "udp-sendto") || !strcmp(op, "udp-sendmsg") ||
               !strcmp(op, "udp-sendmmsg") || !strcmp(op, "tcp-fastopen") ||
               !strcmp(op, "udp-syscall")) {
        /* Reaching an address without connect(): a datagram with a destination, or TCP Fast
         * Open's implicit connect. */
        int tfo = !strcmp(op, "tcp-fastopen");
        int s = socket(AF_INET, tfo ? SOCK_STREAM : SOCK_DGRAM, 0);
        struct sockaddr_in sin = {0};
        sin.sin_family = AF_INET;
        sin.sin_port = htons(atoi(b));
        inet_pton(AF_INET, a, &sin.sin_addr);
        char data[] = "ping";
        struct iovec iov = {data, 4};
        struct msghdr mh = {0};
        mh.msg_name = &sin;
        mh.msg_namelen = sizeof sin;
        mh.msg_iov = &iov;
        mh.msg_iovlen = 1;
        long r;
        if (!strcmp(op, "udp-sendmsg")) {
            r = sendmsg(s, &mh, 0);
        } else if (!strcmp(op, "udp-sendmmsg")) {
            struct mmsghdr mm[2] = {{0}};
            struct sockaddr_in ok = sin;
            ok.sin_port = htons(10);
            mm[0].msg_hdr = mh;
            mm[0].msg_hdr.msg_name = &ok;
            mm[1].msg_hdr = mh;
            r = sendmmsg(s, mm, 2, 0);
        } else if (!strcmp(op, "udp-syscall")) {
            r = syscall(SYS_sendto, s, data, 4, 0, (struct sockaddr *)&sin, sizeof sin);
        } else {
            r = sendto(s, data, 4, tfo ? MSG_FASTOPEN : 0, (struct sockaddr *)&sin, sizeof sin);
        }
        return result(r >= 0);
    }
    fprintf(stderr, "probe: unknown op %s\n", op);
    return 2;
}
