/* Reads one file through every read path libguard must keep consistent under redaction and
 * prints one line per path: `<path-name> <size> <content as hex>`; the test compares them.
 * Usage: readers FILE */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

static void emit(const char *how, const char *buf, size_t n) {
    printf("%s %zu ", how, n);
    for (size_t i = 0; i < n; i++) printf("%02x", (unsigned char)buf[i]);
    printf("\n");
}

static char buf[1 << 20];

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *p = argv[1];

    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) { perror("open"); return 1; }
    struct stat st;
    if (fstat(fd, &st) != 0) { perror("fstat"); return 1; }
    printf("fstat %lld\n", (long long)st.st_size);
    printf("cloexec %d\n", (fcntl(fd, F_GETFD) & FD_CLOEXEC) ? 1 : 0);
    /* The path's stat family agrees with the fd (GNU cp compares device and inode; every view
     * reports the size read() will return). */
    struct stat ps, ls, as, es;
    struct statx sx, fx;
    if (stat(p, &ps) || lstat(p, &ls) || fstatat(AT_FDCWD, p, &as, 0) ||
        fstatat(fd, "", &es, AT_EMPTY_PATH) ||
        statx(AT_FDCWD, p, 0, STATX_BASIC_STATS, &sx) ||
        statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &fx)) {
        perror("stat");
        return 1;
    }
    printf("same-inode %d\n", ps.st_ino == st.st_ino && ps.st_dev == st.st_dev &&
                                  es.st_ino == st.st_ino && fx.stx_ino == st.st_ino);
    printf("stat %lld\n", (long long)ps.st_size);
    printf("lstat %lld\n", (long long)ls.st_size);
    printf("fstatat %lld\n", (long long)as.st_size);
    printf("fstatat-fd %lld\n", (long long)es.st_size);
    printf("statx %llu\n", (unsigned long long)sx.stx_size);
    printf("statx-fd %llu\n", (unsigned long long)fx.stx_size);

    ssize_t n = read(fd, buf, sizeof buf);
    emit("read", buf, n < 0 ? 0 : (size_t)n);

    n = pread(fd, buf, sizeof buf, 0);
    emit("pread", buf, n < 0 ? 0 : (size_t)n);

    lseek(fd, 0, SEEK_SET);
    static char a[7], b[1 << 20];
    struct iovec iov[2] = {{a, sizeof a}, {b, sizeof b}};
    n = readv(fd, iov, 2);
    if (n > 0) {
        size_t first = (size_t)n < sizeof a ? (size_t)n : sizeof a;
        memcpy(buf, a, first);
        if ((size_t)n > sizeof a) memcpy(buf + sizeof a, b, (size_t)n - sizeof a);
    }
    emit("readv", buf, n < 0 ? 0 : (size_t)n);

    if (st.st_size > 0) {
        char *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) { perror("mmap"); return 1; }
        emit("mmap", m, (size_t)st.st_size);
        munmap(m, (size_t)st.st_size);
    }
    /* Writing through the fd must fail: it is a read-only open (and a sealed copy). */
    printf("write %zd\n", write(fd, "x", 1));

    /* Reopens while the first fd is open (libguard serves them from its kept copy without
     * opening the file): each is its own open file description (own offset) at the lowest free
     * number, with the flags asked for, read-only, and looks like the file to fstat. */
    off_t first_at = lseek(fd, 0, SEEK_CUR);
    int probe = dup(0);
    if (probe >= 0) close(probe);
    int r1 = open(p, O_RDONLY);
    int r2 = open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (r1 < 0 || r2 < 0) { perror("reopen"); return 1; }
    printf("reopen-lowest %d\n", r1 == probe);
    printf("reopen-cloexec %d %d\n", (fcntl(r1, F_GETFD) & FD_CLOEXEC) ? 1 : 0,
           (fcntl(r2, F_GETFD) & FD_CLOEXEC) ? 1 : 0);
    int fl1 = fcntl(r1, F_GETFL), fl2 = fcntl(r2, F_GETFL);
    printf("reopen-nonblock %d %d\n", (fl1 & O_NONBLOCK) ? 1 : 0, (fl2 & O_NONBLOCK) ? 1 : 0);
    printf("reopen-rdonly %d\n", (fl1 & O_ACCMODE) == O_RDONLY && (fl2 & O_ACCMODE) == O_RDONLY);
    struct stat rs;
    if (fstat(r1, &rs) != 0) { perror("fstat reopen"); return 1; }
    printf("reopen-same-inode %d\n", rs.st_ino == ps.st_ino && rs.st_dev == ps.st_dev);
    printf("reopen-fstat %lld\n", (long long)rs.st_size);
    /* r1 reads a little; r2 and then r1 read on: r2 starts at 0, r1 where it stopped. */
    ssize_t head = read(r1, buf, 5);
    static char other[1 << 20];
    n = read(r2, other, sizeof other);
    emit("reopen", other, n < 0 ? 0 : (size_t)n);
    ssize_t rest = head < 0 ? -1 : read(r1, buf + head, sizeof buf - (size_t)head);
    emit("reopen-split", buf, rest < 0 ? 0 : (size_t)(head + rest));
    printf("reopen-first-offset %d\n", lseek(fd, 0, SEEK_CUR) == first_at);
    printf("reopen-write %zd\n", write(r1, "x", 1));
    close(r1);
    close(r2);
    close(fd);

    FILE *f = fopen(p, "r");
    if (!f) { perror("fopen"); return 1; }
    size_t got = fread(buf, 1, sizeof buf, f);
    emit("fread", buf, got);
    rewind(f);
    size_t off = 0;
    while (off < sizeof buf - 1 && fgets(buf + off, (int)(sizeof buf - off), f)) off += strlen(buf + off);
    emit("fgets", buf, off);
    fclose(f);

    /* A read-write open of the same path is refused (the agent would see the secrets), for
     * files under a redact rule and files redacted by content detection alike. */
    int w = open(p, O_RDWR);
    printf("open-rdwr %d %d\n", w < 0 ? -1 : 0, w < 0 ? errno : 0);
    return 0;
}
