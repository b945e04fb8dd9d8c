/* Threads that hit denied opens (audit events on the shared broker connection) while others
 * fork+exec, vfork+exec and posix_spawn: must finish without deadlock or a stuck guard. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
static const char *secret;
static int rounds = 30;

static void *opener(void *arg) {
    (void)arg;
    for (int i = 0; i < rounds * 3; i++) {
        int fd = open(secret, O_RDONLY);
        if (fd >= 0 || errno != EACCES) {
            printf("FAIL open allowed in thread\n");
            exit(3);
        }
    }
    return NULL;
}

static void *spawner(void *arg) {
    long kind = (long)arg;
    char *argv[] = {"true", NULL};
    for (int i = 0; i < rounds; i++) {
        pid_t pid;
        if (kind == 0) {
            pid = fork();
            if (pid == 0) {
                /* In the child: an event, then an exec. */
                int fd = open(secret, O_RDONLY);
                execvp("true", argv);
                _exit(fd >= 0 ? 5 : 4);
            }
        } else if (kind == 1) {
            pid = vfork();
            if (pid == 0) {
                execvp("true", argv);
                _exit(4);
            }
        } else {
            if (posix_spawnp(&pid, "true", NULL, NULL, argv, environ) != 0)
                pid = -1;
        }
        if (pid < 0) {
            printf("FAIL spawn\n");
            exit(3);
        }
        int st;
        waitpid(pid, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            printf("FAIL child status %d\n", st);
            exit(3);
        }
    }
    return NULL;
}

int main(int argc, char **argv) {
    secret = argv[1];
    if (argc > 2)
        rounds = atoi(argv[2]);
    pthread_t t[7];
    for (long i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, opener, NULL);
    for (long i = 0; i < 3; i++)
        pthread_create(&t[4 + i], NULL, spawner, (void *)i);
    for (int i = 0; i < 7; i++)
        pthread_join(t[i], NULL);
    /* After vfork children ran hooks on this thread's memory, hooks must still work here. */
    int fd = open(secret, O_RDONLY);
    printf("%s\n", fd < 0 && errno == EACCES ? "DONE" : "FAIL guard stuck after vfork");
    return 0;
}
