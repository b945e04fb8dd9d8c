/* A library whose constructor opens a file before main (and before a preload's own
 * constructor would normally run): the guard must already decide it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((constructor)) static void early(void) {
    const char *p = getenv("EARLY_PATH");
    if (!p)
        return;
    int fd = open(p, O_RDONLY);
    printf("ctor %s\n", fd >= 0 ? "OK" : (errno == EACCES ? "ERR EACCES" : strerror(errno)));
    fflush(stdout);
}

int early_marker(void) { return 42; }
