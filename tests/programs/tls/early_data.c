/* TLS 1.3 early data (0-RTT) through the hooked SSL_write_early_data.
 *
 * Usage: early_data PORT   (an `openssl s_server -early_data` on 127.0.0.1:PORT, which
 * prints what it receives; it never answers, so reads end on a short receive timeout)
 * 1. A full handshake, reading until the timeout to receive the session tickets.
 * 2. Resumes and sends an allowed GET as early data: prints
 *    "EARLY OK written=N status=accepted|rejected|not-sent".
 * 3. Resumes again and sends a GraphQL volumeDelete mutation as early data: prints
 *    "EARLYDENY ERR ret=R errno=E" when the write is refused, "EARLYDENY SENT" otherwise.
 * Verification is off (self-signed test server); the gate does not depend on it. */
#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <arpa/inet.h>
#include <unistd.h>

static int dial(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("connect");
        exit(2);
    }
    struct timeval tv = {0, 300000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static SSL *new_ssl(SSL_CTX *ctx, int port, SSL_SESSION *sess) {
    SSL *s = SSL_new(ctx);
    SSL_set_fd(s, dial(port));
    SSL_set_tlsext_host_name(s, "localhost");
    if (sess)
        SSL_set_session(s, sess);
    return s;
}

/* Reads what the server sends until it closes; returns the first bytes. */
static void drain(SSL *s, char *first, size_t cap) {
    size_t got = 0, n;
    char buf[4096];
    first[0] = 0;
    while (SSL_read_ex(s, buf, sizeof buf, &n) == 1) {
        if (got < cap - 1) {
            size_t k = n < cap - 1 - got ? n : cap - 1 - got;
            memcpy(first + got, buf, k);
            got += k;
            first[got] = 0;
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    int port = atoi(argv[1]);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
    char reply[64];

    SSL *s = new_ssl(ctx, port, NULL);
    if (SSL_connect(s) != 1) {
        ERR_print_errors_fp(stderr);
        return 3;
    }
    const char get[] = "GET /early HTTP/1.1\r\nHost: localhost\r\n\r\n";
    size_t w = 0;
    drain(s, reply, sizeof reply);
    SSL_SESSION *sess = SSL_get1_session(s);
    SSL_shutdown(s);
    close(SSL_get_fd(s));
    SSL_free(s);
    if (!sess || SSL_SESSION_get_max_early_data(sess) == 0) {
        printf("NO-EARLY-DATA-TICKET\n");
        return 4;
    }

    s = new_ssl(ctx, port, sess);
    w = 0;
    int r = SSL_write_early_data(s, get, strlen(get), &w);
    if (r != 1) {
        printf("EARLY ERR ret=%d errno=%d\n", r, errno);
        ERR_print_errors_fp(stderr);
        return 5;
    }
    if (SSL_connect(s) != 1) {
        ERR_print_errors_fp(stderr);
        return 6;
    }
    int st = SSL_get_early_data_status(s);
    if (st != SSL_EARLY_DATA_ACCEPTED) /* rejected early data must be sent again */
        SSL_write_ex(s, get, strlen(get), &w);
    drain(s, reply, sizeof reply);
    printf("EARLY OK written=%zu status=%s\n", w,
           st == SSL_EARLY_DATA_ACCEPTED ? "accepted"
           : st == SSL_EARLY_DATA_REJECTED ? "rejected" : "not-sent");
    /* A ticket serves one early-data attempt: take the fresh one from this connection. */
    SSL_SESSION *next = SSL_get1_session(s);
    if (next && SSL_SESSION_get_max_early_data(next) > 0)
        sess = next;
    SSL_shutdown(s);
    close(SSL_get_fd(s));
    SSL_free(s);

    s = new_ssl(ctx, port, sess);
    const char body[] = "{\"query\":\"mutation { volumeDelete(volumeId: \\\"v\\\") }\"}";
    char del[512];
    snprintf(del, sizeof del,
             "POST /graphql HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\n\r\n%s", strlen(body), body);
    w = 0;
    errno = 0;
    r = SSL_write_early_data(s, del, strlen(del), &w);
    if (r == 1) {
        printf("EARLYDENY SENT written=%zu\n", w);
        SSL_connect(s);
        drain(s, reply, sizeof reply);
    }
    else
        printf("EARLYDENY ERR ret=%d errno=%d written=%zu\n", r, errno, w);
    fflush(stdout);
    return 0;
}
