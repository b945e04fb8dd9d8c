/* The automatic approver of bench/ask_latency.sh: a human's console replaced by code.
 *
 * It speaks the same client protocol as `guardctl pending/approve/watch` (guard-proto's wire
 * format: u32 LE length, version byte, postcard message): one control connection per broker
 * socket in RUN_DIR (every `guardctl run` session broker and `guardctl serve`'s broker.sock),
 * opened with Hello(Control); then, in a loop, `pending` and an `approve ID` (remember=false,
 * so every ask goes through the broker) for each ask it lists. The broker checks on each
 * request that this process is outside every guarded tree, as for a human.
 *
 * MODE `wait` (the default): each `pending` request carries a wait (its id field, in ms), so the
 * broker answers it as soon as an ask is unanswered: the approver learns of each ask as it
 * arrives and idles in between. MODE `poll`: plain `pending` requests back to back (what
 * `guardctl watch` sends, every 200-300 ms there), which keeps this process and a broker
 * thread busy; it shows what polling costs. Neither includes a console's refresh period.
 *
 * Usage: ask_latency_approver RUN_DIR TOTAL TIMEOUT_S [wait|poll]
 * Exits 0 after approving TOTAL asks; 1 on timeout; 3 when a broker refused it. Prints
 * `approved=K polls=P refused=0|1 approve_rtt_median_us=T` on stdout (T: the median round trip
 * of the `approve` requests, the broker's share of each ask's answer). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define WIRE_VERSION 2
#define MSG_HELLO 1
#define MSG_CONTROL_REQUEST 4
#define MSG_CONTROL_REPLY 5
#define ROLE_CONTROL 1
#define MAX_CONNS 16
#define MAX_FRAME (64 * 1024)

struct conn {
    char path[512];
    int fd;
};
static struct conn conns[MAX_CONNS];
static int nconns;
static unsigned char rbuf[4 + MAX_FRAME + 1];
/* Round trip of each `approve` request (its share of an ask's latency), in µs. */
static double approve_us[100000];

static int cmpd(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t put_varint(unsigned char *p, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

static int write_all(int fd, const unsigned char *p, size_t n) {
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Frames `body` (version byte + postcard message) and sends it. */
static int send_msg(int fd, const unsigned char *msg, size_t len) {
    unsigned char f[600];
    uint32_t l = (uint32_t)(len + 1);
    memcpy(f, &l, 4); /* little-endian on every target we run on */
    f[4] = WIRE_VERSION;
    memcpy(f + 5, msg, len);
    return write_all(fd, f, len + 5);
}

static int read_full(int fd, unsigned char *p, size_t n) {
    while (n) {
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Sends ControlRequest{op, id, remember: false}; returns the reply's ok (0/1) with its body
 * NUL-terminated in *body, or -1 when the connection broke or the reply is not a ControlReply. */
static int request(int fd, const char *op, uint64_t id, char **body) {
    unsigned char m[64];
    size_t n = 0, ol = strlen(op);
    m[n++] = MSG_CONTROL_REQUEST;
    n += put_varint(m + n, ol);
    memcpy(m + n, op, ol);
    n += ol;
    n += put_varint(m + n, id);
    m[n++] = 0; /* remember = false: every ask must reach the broker */
    if (send_msg(fd, m, n)) return -1;
    uint32_t len;
    if (read_full(fd, (unsigned char *)&len, 4) || len < 3 || len > MAX_FRAME) return -1;
    if (read_full(fd, rbuf, len)) return -1;
    rbuf[len] = 0;
    if (rbuf[0] != WIRE_VERSION || rbuf[1] != MSG_CONTROL_REPLY) return -1;
    int ok = rbuf[2];
    uint64_t bl = 0;
    size_t i = 3;
    for (int shift = 0; i < len && shift < 64; shift += 7) {
        unsigned char b = rbuf[i++];
        bl |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) break;
    }
    if (i + bl > len) return -1;
    *body = (char *)rbuf + i;
    return ok;
}

/* Connects to every broker socket in `dir` not connected yet. */
static void scan(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) && nconns < MAX_CONNS) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".sock")) continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        int known = 0;
        for (int i = 0; i < nconns; i++) known |= !strcmp(conns[i].path, path);
        if (known) continue;
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        if (strlen(path) >= sizeof a.sun_path) continue;
        strcpy(a.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) continue;
        unsigned char hello[2] = {MSG_HELLO, ROLE_CONTROL};
        if (connect(fd, (struct sockaddr *)&a, sizeof a) || send_msg(fd, hello, 2)) {
            close(fd);
            continue;
        }
        snprintf(conns[nconns].path, sizeof conns[nconns].path, "%s", path);
        conns[nconns++].fd = fd;
    }
    closedir(d);
}

static void drop(int i) {
    close(conns[i].fd);
    conns[i] = conns[--nconns];
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s RUN_DIR TOTAL TIMEOUT_S [wait|poll]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    long total = strtol(argv[2], NULL, 10);
    double deadline = now_s() + strtod(argv[3], NULL);
    int wait = argc <= 4 || strcmp(argv[4], "poll") != 0;
    long approved = 0, polls = 0;
    double last_scan = 0;
    while (approved < total && now_s() < deadline) {
        /* Brokers come and go (the session's starts after us); rescan now and then. */
        if (nconns == 0 || now_s() - last_scan > 0.2) {
            scan(dir);
            last_scan = now_s();
            if (nconns == 0) {
                usleep(2000);
                continue;
            }
        }
        for (int i = 0; i < nconns; i++) {
            char *body;
            /* With several brokers a long wait on one would starve the others. */
            uint64_t wait_ms = !wait ? 0 : nconns == 1 ? 1000 : 10;
            int ok = request(conns[i].fd, "pending", wait_ms, &body);
            polls++;
            if (ok < 0) {
                drop(i--);
                continue;
            }
            if (!ok) {
                fprintf(stderr, "ask_latency_approver: %s: %s\n", conns[i].path, body);
                printf("approved=%ld polls=%ld refused=1\n", approved, polls);
                return 3;
            }
            /* JSON Lines, one object per ask; `"id":` with its quote is only ever the key
             * (quotes inside strings are escaped). Copy the ids out: the next request reuses
             * the buffer. */
            uint64_t ids[256];
            int nid = 0;
            for (char *p = body; (p = strstr(p, "\"id\":")) && nid < 256; p += 5)
                ids[nid++] = strtoull(p + 5, NULL, 10);
            for (int k = 0; k < nid; k++) {
                char *b2;
                double t0 = now_s();
                int r = request(conns[i].fd, "approve", ids[k], &b2);
                if (r < 0) break;
                if (r == 1) {
                    if (approved < (long)(sizeof approve_us / sizeof *approve_us))
                        approve_us[approved] = (now_s() - t0) * 1e6;
                    approved++;
                }
            }
        }
    }
    long m = approved < 100000 ? approved : 100000;
    qsort(approve_us, (size_t)m, sizeof *approve_us, cmpd);
    printf("approved=%ld polls=%ld refused=0 approve_rtt_median_us=%.0f\n", approved, polls,
           m ? approve_us[m / 2] : 0.0);
    return approved == total ? 0 : 1;
}
