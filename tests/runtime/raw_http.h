/* raw_http.h - plain-socket HTTP for the runtime tests: hostile or exact
 * byte sequences the real client would never send, and a look at headers.
 * Every wait is bounded (RAW_TIMEOUT_S). Header-only, static inline. */
#ifndef SPIRT_TEST_RAW_HTTP_H
#define SPIRT_TEST_RAW_HTTP_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define RAW_TIMEOUT_S 5
#define RAW_MAX (1 << 20)

typedef struct {
    int status;        /* 0: no status line arrived */
    char *data;        /* everything read, NUL-terminated */
    size_t len;
    const char *body;  /* after the blank line (or "" ) */
    int closed;        /* the peer closed or reset (not our timeout) */
} raw_resp;

/* Connected blocking socket with send/receive timeouts, or -1. `from` is
 * the numeric source address (any of 127.0.0.0/8 stands for another client
 * host on loopback); NULL lets the kernel pick. */
static inline int raw_ConnectFrom(int port, const char *from)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = RAW_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in src = {.sin_family = AF_INET};
    if (from && (inet_pton(AF_INET, from, &src.sin_addr) != 1 ||
                 bind(fd, (struct sockaddr *)&src, sizeof src) != 0)) {
        close(fd);
        return -1;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static inline int raw_Connect(int port) { return raw_ConnectFrom(port, NULL); }

/* 1 when the server has ended the connection (end of stream or reset),
 * waiting up to timeout_ms for it; unread answer bytes are skipped. */
static inline int raw_Closed(int fd, int timeout_ms)
{
    if (timeout_ms < 1)
        timeout_ms = 1; /* a zero SO_RCVTIMEO would mean "wait forever" */
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            return 1;
        if (n < 0 && errno != EINTR)
            return 0;
    }
}

static inline int raw_Send(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads until the peer closes, the buffer limit, or the timeout; then parses
 * the status code. The requests these tests send ask for Connection: close,
 * or are ones the server must end by closing. */
static inline void raw_Read(int fd, raw_resp *r)
{
    memset(r, 0, sizeof *r);
    r->data = malloc(RAW_MAX + 1);
    if (!r->data)
        return;
    for (;;) {
        ssize_t n = recv(fd, r->data + r->len, RAW_MAX - r->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            r->closed = 1;
        if (n <= 0)
            break;
        r->len += (size_t)n;
        if (r->len == RAW_MAX)
            break;
    }
    r->data[r->len] = '\0';
    int code;
    if (sscanf(r->data, "HTTP/1.%*d %3d", &code) == 1)
        r->status = code;
    const char *sep = strstr(r->data, "\r\n\r\n");
    r->body = sep ? sep + 4 : "";
}

/* Sends `req` on a new connection and reads the whole answer. */
static inline int raw_Exchange(int port, const char *req, size_t n, raw_resp *r)
{
    memset(r, 0, sizeof *r);
    int fd = raw_Connect(port);
    if (fd < 0)
        return -1;
    if (raw_Send(fd, req, n) != 0) {
        /* the server may answer and close before taking all of a hostile request */
    }
    raw_Read(fd, r);
    close(fd);
    return 0;
}

/* Value of a response header (copied into out), or NULL. */
static inline const char *raw_Header(const raw_resp *r, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    const char *end = strstr(r->data ? r->data : "", "\r\n\r\n");
    for (const char *p = r->data ? strstr(r->data, "\r\n") : NULL; p && p < end;
         p = strstr(p + 2, "\r\n")) {
        const char *h = p + 2;
        if (!strncasecmp(h, name, n) && h[n] == ':') {
            h += n + 1;
            while (*h == ' ')
                h++;
            size_t k = strcspn(h, "\r");
            if (k >= cap)
                k = cap - 1;
            memcpy(out, h, k);
            out[k] = '\0';
            return out;
        }
    }
    return NULL;
}

static inline void raw_Free(raw_resp *r)
{
    free(r->data);
    memset(r, 0, sizeof *r);
}

#endif
