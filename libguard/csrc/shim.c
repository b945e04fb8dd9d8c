/*
 * The C export layer of libguard: the entry points whose C signature is variadic, which stable
 * Rust cannot define. Each one collects its arguments (on the stack, never with malloc: these
 * run in vfork children) and calls the Rust implementation `libguard_*` in src/hooks/.
 */
#undef _FORTIFY_SOURCE
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
/* <unistd.h> is not included: it declares execl* arguments nonnull, which would let the
 * compiler drop the NULL checks below. */

#ifndef __OPEN_NEEDS_MODE
#define __OPEN_NEEDS_MODE(f) (((f) & O_CREAT) != 0 || ((f) & __O_TMPFILE) == __O_TMPFILE)
#endif

extern char **environ;

/* The per-thread "inside the library" flag (src/state.rs). Initial-exec TLS: one
 * %fs-relative access, where Rust's thread_local! in a shared object calls __tls_get_addr
 * (~10 instructions) on each of the several accesses per hooked call. The library is loaded at
 * start-up (LD_PRELOAD), so its TLS sits in the static block; a 4-byte variable also fits
 * glibc's static TLS surplus should something dlopen it. */
static __thread int libguard_inside __attribute__((tls_model("initial-exec")));

int libguard_bypassed(void) { return libguard_inside; }

void libguard_set_bypass(int on) { libguard_inside = on; }

/* Implemented in Rust (src/hooks/file.rs, exec.rs, sys.rs). `which` selects the real function
 * to forward to: 0 open, 1 open64, 2 openat, 3 openat64. */
extern int libguard_openat(int which, int dirfd, const char *path, int flags, unsigned mode);
extern long libguard_syscall(long n, long a1, long a2, long a3, long a4, long a5, long a6);
extern int libguard_execve(const char *path, char *const argv[], char *const envp[]);
extern int libguard_execvpe(const char *file, char *const argv[], char *const envp[]);

#define MODE_ARG(flags, last, mode)                 \
    unsigned mode = 0;                              \
    if (__OPEN_NEEDS_MODE(flags)) {                 \
        va_list ap;                                 \
        va_start(ap, last);                         \
        mode = va_arg(ap, unsigned);                \
        va_end(ap);                                 \
    }

int open(const char *path, int flags, ...) {
    MODE_ARG(flags, flags, mode);
    return libguard_openat(0, AT_FDCWD, path, flags, mode);
}

int open64(const char *path, int flags, ...) {
    MODE_ARG(flags, flags, mode);
    return libguard_openat(1, AT_FDCWD, path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...) {
    MODE_ARG(flags, flags, mode);
    return libguard_openat(2, dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...) {
    MODE_ARG(flags, flags, mode);
    return libguard_openat(3, dirfd, path, flags, mode);
}

/* Like glibc's own syscall(), always reads six argument slots: extra ones are never used. */
long syscall(long n, ...) {
    va_list ap;
    va_start(ap, n);
    long a1 = va_arg(ap, long), a2 = va_arg(ap, long), a3 = va_arg(ap, long);
    long a4 = va_arg(ap, long), a5 = va_arg(ap, long), a6 = va_arg(ap, long);
    va_end(ap);
    return libguard_syscall(n, a1, a2, a3, a4, a5, a6);
}

/* Upper bound on execl* argument counts, like the kernel's own limits make any larger list
 * fail anyway; keeps the stack array bounded. */
#define MAX_LARGS 4096

/* Counts the arguments after `first` up to the terminating NULL (NULL itself excluded). */
#define COUNT_ARGS(first, n)                                       \
    size_t n = 0;                                                  \
    if ((first) != NULL) {                                         \
        va_list ap;                                                \
        va_start(ap, first);                                       \
        n = 1;                                                     \
        while (n <= MAX_LARGS && va_arg(ap, const char *) != NULL) \
            n++;                                                   \
        va_end(ap);                                                \
    }

static int too_many(void) {
    errno = E2BIG;
    return -1;
}

int execl(const char *path, const char *arg, ...) {
    COUNT_ARGS(arg, n);
    if (n > MAX_LARGS)
        return too_many();
    const char *argv[n + 1];
    va_list ap;
    va_start(ap, arg);
    for (size_t i = 0; i < n; i++)
        argv[i] = i == 0 ? arg : va_arg(ap, const char *);
    va_end(ap);
    argv[n] = NULL;
    return libguard_execve(path, (char *const *)argv, environ);
}

int execlp(const char *file, const char *arg, ...) {
    COUNT_ARGS(arg, n);
    if (n > MAX_LARGS)
        return too_many();
    const char *argv[n + 1];
    va_list ap;
    va_start(ap, arg);
    for (size_t i = 0; i < n; i++)
        argv[i] = i == 0 ? arg : va_arg(ap, const char *);
    va_end(ap);
    argv[n] = NULL;
    return libguard_execvpe(file, (char *const *)argv, environ);
}

int execle(const char *path, const char *arg, ...) {
    COUNT_ARGS(arg, n);
    if (n > MAX_LARGS)
        return too_many();
    const char *argv[n + 1];
    va_list ap;
    va_start(ap, arg);
    for (size_t i = 0; i < n; i++)
        argv[i] = i == 0 ? arg : va_arg(ap, const char *);
    /* After the NULL that ends argv comes envp. */
    if (n > 0)
        (void)va_arg(ap, const char *);
    char *const *envp = va_arg(ap, char *const *);
    va_end(ap);
    argv[n] = NULL;
    return libguard_execve(path, (char *const *)argv, envp);
}
