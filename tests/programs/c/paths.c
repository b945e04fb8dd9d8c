/*
 * paths: one open with the flags named on the command line, printing "OK" or "ERR <errno>",
 * for the path-resolution corner cases of tests/tests/hooks_paths.rs.
 * Usage: paths PATH FLAG...   FLAG: rdonly wronly rdwr creat excl trunc tmpfile path nofollow
 *        directory; "fortify" calls __open_2 (the entry point of -D_FORTIFY_SOURCE builds).
 * With "write" the fd gets one byte written (checks a writable O_TMPFILE fd works).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

extern int __open_2(const char *, int);

static const char *ename(int e) {
    switch (e) {
    case EACCES: return "EACCES";
    case ENOENT: return "ENOENT";
    case EEXIST: return "EEXIST";
    case ELOOP: return "ELOOP";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    default: return strerror(e);
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: paths PATH FLAG...\n");
        return 2;
    }
    int flags = 0, fortify = 0, wr = 0;
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i];
        if (!strcmp(f, "rdonly")) flags |= O_RDONLY;
        else if (!strcmp(f, "wronly")) flags |= O_WRONLY;
        else if (!strcmp(f, "rdwr")) flags |= O_RDWR;
        else if (!strcmp(f, "creat")) flags |= O_CREAT;
        else if (!strcmp(f, "excl")) flags |= O_EXCL;
        else if (!strcmp(f, "trunc")) flags |= O_TRUNC;
        else if (!strcmp(f, "tmpfile")) flags |= O_TMPFILE;
        else if (!strcmp(f, "path")) flags |= O_PATH;
        else if (!strcmp(f, "nofollow")) flags |= O_NOFOLLOW;
        else if (!strcmp(f, "directory")) flags |= O_DIRECTORY;
        else if (!strcmp(f, "fortify")) fortify = 1;
        else if (!strcmp(f, "write")) wr = 1;
        else { fprintf(stderr, "unknown flag %s\n", f); return 2; }
    }
    errno = 0;
    int fd = fortify ? __open_2(argv[1], flags) : open(argv[1], flags, 0600);
    if (fd < 0) {
        printf("ERR %s\n", ename(errno));
        return 1;
    }
    if (wr && write(fd, "x", 1) != 1) {
        printf("ERR write %s\n", ename(errno));
        return 1;
    }
    printf("OK\n");
    return 0;
}
