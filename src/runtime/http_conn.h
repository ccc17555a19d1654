/* http_conn.h - URLs, the per-thread keep-alive cache and deadline-bounded
 * socket I/O under http_client.c (internal to src/runtime). */
#ifndef SPIRT_HTTP_CONN_H
#define SPIRT_HTTP_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define HTTP_HOST_MAX 256
#define HTTP_PATH_MAX 2048
#define HTTP_CONN_BUF 16384

typedef struct {
    char host[HTTP_HOST_MAX];     /* without IPv6 brackets, for getaddrinfo */
    char port[8];
    char authority[HTTP_HOST_MAX + 8]; /* Host header and cache key: "h:p", "[::1]:p" */
    char path[HTTP_PATH_MAX];     /* origin-form target, at least "/" */
} http_url;

typedef struct {
    int fd;
    char key[HTTP_HOST_MAX + 8];
    int reused;                   /* served a request before this one */
    uint64_t last_use;            /* LRU stamp within the thread's cache */
    size_t received;              /* bytes read during the current exchange */
    size_t pos, len;              /* unread bytes are buf[pos, len) */
    char buf[HTTP_CONN_BUF];
} http_conn;

/* "http://host[:port][/path]" -> parts; SP_ERR_INVALID with the reason. */
spStatus http_ParseUrl(const char *url, http_url *u);

/* A connection to u's host:port: this thread's cached one when it still
 * looks alive (unless fresh), else a new one connected before deadline. */
spStatus conn_Get(const http_url *u, int64_t deadline_ms, int fresh, http_conn **out);
/* Done with it: keep it cached for the next request, or close it. */
void conn_Put(http_conn *c, int keep);

/* Sends all n bytes; `more` hints that the body follows (MSG_MORE). */
spStatus conn_Send(http_conn *c, const void *p, size_t n, int more, int64_t deadline_ms);
/* Reads at least one more byte into the buffer. End of stream is
 * SP_ERR_UNAVAILABLE, the deadline SP_ERR_TIMEOUT. */
spStatus conn_Fill(http_conn *c, int64_t deadline_ms);

#endif
