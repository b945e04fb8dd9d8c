/* A vfork child that changes directory and opens a relative name before it execs, then the
 * parent opens the same relative name in its own directory. The child shares the parent's
 * memory (and so the library's remembered current directory) but not its directory: the
 * parent must be judged against, and served from, where it is, not where the child went.
 *
 * usage: vfork_chdir CHILD_DIR NAME   (run from the parent's directory)
 * prints "child <result>" and "parent <result>", result = the file's first line, or an errno
 * name. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char child_result[256]; /* written by the vfork child: shared memory */

static void try_read(const char *name, char *out, size_t cap) {
    int fd = open(name, O_RDONLY);
    if (fd < 0) {
        snprintf(out, cap, "%s", errno == EACCES ? "EACCES" : strerror(errno));
        return;
    }
    ssize_t n = read(fd, out, cap - 1);
    close(fd);
    out[n > 0 ? n : 0] = 0;
    out[strcspn(out, "\n")] = 0;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    pid_t pid = vfork();
    if (pid == 0) {
        if (chdir(argv[1]) != 0) _exit(3);
        try_read(argv[2], child_result, sizeof child_result);
        char *args[] = {"/bin/true", NULL};
        execv("/bin/true", args);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    char parent[256];
    try_read(argv[2], parent, sizeof parent);
    printf("child %s\nparent %s\n", child_result, parent);
    return 0;
}
