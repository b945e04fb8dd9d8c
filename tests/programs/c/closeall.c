/* Closes every fd (close_range), reuses the numbers (including the one the guard parked its
 * broker socket on) for a regular file, then triggers more events: the guard must reconnect
 * and never write audit bytes into the program's file. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv) {
    const char *secret = argv[1], *victim = argv[2];
    int fd = open(secret, O_RDONLY); /* first event: the guard connects */
    syscall(SYS_close_range, 3, ~0U, 0);
    int v = open(victim, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (int target = 900; target < 910; target++)
        dup2(v, target);
    for (int i = 0; i < 5; i++)
        fd = open(secret, O_RDONLY);
    printf("%s\n", fd < 0 && errno == EACCES ? "DONE" : "FAIL");
    return 0;
}
