/* http_conn.c - connections for the HTTP client.
 *
 * Each thread keeps up to HTTP_CACHE_SLOTS idle keep-alive connections, one
 * per host:port it talks to (the driver's worker threads each call a few
 * step functions over and over). The cache hangs off a pthread key whose
 * destructor closes the sockets, so a thread that exits leaks nothing even
 * if it never called http_CloseCached. */
#include "runtime/http_conn.h"

#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/http_client.h"
#include "runtime/runtime.h"

#define HTTP_CACHE_SLOTS 16

typedef struct {
    http_conn *slot[HTTP_CACHE_SLOTS];
    uint64_t clock;
} conn_cache;

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

/* ---- URLs ---- */

static int host_Char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '-' || ch == '.' || ch == '_';
}

static spStatus parse_Port(const char *p, size_t n, const char *url, http_url *u)
{
    unsigned v = 0;
    if (n == 0 || n > 5)
        return sp_Error(SP_ERR_INVALID, "url %s: bad port", url);
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i]))
            return sp_Error(SP_ERR_INVALID, "url %s: bad port", url);
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v == 0 || v > 65535)
        return sp_Error(SP_ERR_INVALID, "url %s: port %u out of range 1..65535", url, v);
    snprintf(u->port, sizeof u->port, "%u", v);
    return SP_OK;
}

/* The authority part "host[:port]" or "[v6][:port]" of length n. */
static spStatus parse_Authority(const char *a, size_t n, const char *url, http_url *u)
{
    const char *host = a, *colon = NULL;
    size_t hlen;
    int v6 = a[0] == '[';
    if (v6) {
        const char *close = memchr(a, ']', n);
        if (!close)
            return sp_Error(SP_ERR_INVALID, "url %s: unterminated [IPv6] host", url);
        host = a + 1;
        hlen = (size_t)(close - host);
        if (close + 1 < a + n) {
            if (close[1] != ':')
                return sp_Error(SP_ERR_INVALID, "url %s: junk after ]", url);
            colon = close + 1;
        }
        for (size_t i = 0; i < hlen; i++)
            if (!isxdigit((unsigned char)host[i]) && host[i] != ':' && host[i] != '.')
                return sp_Error(SP_ERR_INVALID, "url %s: bad IPv6 host", url);
    } else {
        colon = memchr(a, ':', n);
        hlen = colon ? (size_t)(colon - a) : n;
        for (size_t i = 0; i < hlen; i++)
            if (!host_Char(a[i]))
                return sp_Error(SP_ERR_INVALID, "url %s: bad character in host", url);
    }
    if (hlen == 0 || hlen >= HTTP_HOST_MAX)
        return sp_Error(SP_ERR_INVALID, "url %s: missing or overlong host", url);
    memcpy(u->host, host, hlen);
    u->host[hlen] = '\0';
    strcpy(u->port, "80");
    if (colon) {
        spStatus st = parse_Port(colon + 1, (size_t)(a + n - colon - 1), url, u);
        if (st != SP_OK)
            return st;
    }
    snprintf(u->authority, sizeof u->authority, v6 ? "[%s]:%s" : "%s:%s", u->host, u->port);
    return SP_OK;
}

spStatus http_ParseUrl(const char *url, http_url *u)
{
    memset(u, 0, sizeof *u);
    if (!url)
        return sp_Error(SP_ERR_INVALID, "url is NULL");
    if (!strncasecmp(url, "https://", 8))
        return sp_Error(SP_ERR_INVALID, "url %s: https is not supported (in-cluster HTTP only)",
                        url);
    if (strncasecmp(url, "http://", 7))
        return sp_Error(SP_ERR_INVALID, "url %s: must start with http://", url);
    const char *a = url + 7;
    size_t n = strcspn(a, "/?#");
    if (memchr(a, '@', n))
        return sp_Error(SP_ERR_INVALID, "url %s: user info is not supported", url);
    spStatus st = parse_Authority(a, n, url, u);
    if (st != SP_OK)
        return st;
    const char *path = a + n;
    size_t plen = strcspn(path, "#"); /* the fragment never goes on the wire */
    if (plen + 2 > HTTP_PATH_MAX)
        return sp_Error(SP_ERR_INVALID, "url: path longer than %d bytes", HTTP_PATH_MAX - 2);
    for (size_t i = 0; i < plen; i++)
        if ((unsigned char)path[i] <= 0x20 || path[i] == 0x7f)
            return sp_Error(SP_ERR_INVALID, "url %s: space or control character in path", url);
    size_t o = 0;
    if (plen == 0 || path[0] != '/')
        u->path[o++] = '/';
    memcpy(u->path + o, path, plen);
    u->path[o + plen] = '\0';
    return SP_OK;
}

/* ---- waiting on sockets ---- */

/* 1 when ready, 0 at the deadline, -1 on a poll error. */
static int fd_Wait(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - rt_NowMs();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

/* ---- connecting ---- */

static spStatus connect_One(const struct addrinfo *ai, int64_t deadline_ms, int *fd_out)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0)
        return sp_Error(SP_ERR_UNAVAILABLE, "socket: %s", strerror(errno));
    int err = 0;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            err = errno;
        } else {
            int w = fd_Wait(fd, POLLOUT, deadline_ms);
            socklen_t len = sizeof err;
            if (w == 0) {
                close(fd);
                return sp_Error(SP_ERR_TIMEOUT, "connect timed out");
            }
            if (w < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
                err = errno;
        }
    }
    if (err) {
        close(fd);
        return sp_Error(SP_ERR_UNAVAILABLE, "connect: %s", strerror(err));
    }
    int one = 1; /* requests are small and latency-bound: no Nagle delay */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *fd_out = fd;
    return SP_OK;
}

static spStatus connect_Url(const http_url *u, int64_t deadline_ms, int *fd_out)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(u->host, u->port, &hints, &res);
    if (gai != 0)
        return sp_Error(SP_ERR_UNAVAILABLE, "resolve %s: %s", u->host, gai_strerror(gai));
    spStatus st = SP_ERR_UNAVAILABLE;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        st = connect_One(ai, deadline_ms, fd_out);
        if (st == SP_OK || st == SP_ERR_TIMEOUT)
            break;
    }
    freeaddrinfo(res);
    return st;
}

/* ---- the per-thread cache ---- */

static void cache_Destroy(void *p)
{
    conn_cache *cache = p;
    if (!cache)
        return;
    for (int i = 0; i < HTTP_CACHE_SLOTS; i++) {
        if (cache->slot[i]) {
            close(cache->slot[i]->fd);
            free(cache->slot[i]);
        }
    }
    free(cache);
}

static void cache_KeyInit(void) { pthread_key_create(&cache_key, cache_Destroy); }

static conn_cache *cache_Get(int create)
{
    pthread_once(&cache_once, cache_KeyInit);
    conn_cache *cache = pthread_getspecific(cache_key);
    if (!cache && create) {
        cache = calloc(1, sizeof *cache);
        if (cache && pthread_setspecific(cache_key, cache) != 0) {
            free(cache);
            cache = NULL;
        }
    }
    return cache;
}

void http_CloseCached(void)
{
    conn_cache *cache = cache_Get(0);
    if (!cache)
        return;
    pthread_setspecific(cache_key, NULL);
    cache_Destroy(cache);
}

static void slot_Close(conn_cache *cache, int i)
{
    close(cache->slot[i]->fd);
    free(cache->slot[i]);
    cache->slot[i] = NULL;
}

/* An idle keep-alive socket should have nothing to read; readable means the
 * server closed it (EOF) or sent something unasked: either way unusable. */
static int idle_Alive(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;
    while ((r = poll(&p, 1, 0)) < 0 && errno == EINTR)
        ;
    return r == 0;
}

/* A free slot, evicting the least recently used connection if needed. */
static int slot_Free(conn_cache *cache)
{
    int victim = 0;
    for (int i = 0; i < HTTP_CACHE_SLOTS; i++) {
        if (!cache->slot[i])
            return i;
        if (cache->slot[i]->last_use < cache->slot[victim]->last_use)
            victim = i;
    }
    slot_Close(cache, victim);
    return victim;
}

spStatus conn_Get(const http_url *u, int64_t deadline_ms, int fresh, http_conn **out)
{
    conn_cache *cache = cache_Get(1);
    if (!cache)
        return sp_Error(SP_ERR_NOMEM, "http: out of memory");
    for (int i = 0; i < HTTP_CACHE_SLOTS; i++) {
        http_conn *c = cache->slot[i];
        if (!c || strcmp(c->key, u->authority))
            continue;
        if (!fresh && idle_Alive(c->fd)) {
            c->reused = 1;
            c->last_use = ++cache->clock;
            c->pos = c->len = c->received = 0;
            *out = c;
            return SP_OK;
        }
        slot_Close(cache, i);
    }
    http_conn *c = malloc(sizeof *c);
    if (!c)
        return sp_Error(SP_ERR_NOMEM, "http: out of memory");
    spStatus st = connect_Url(u, deadline_ms, &c->fd);
    if (st != SP_OK) {
        free(c);
        return st;
    }
    snprintf(c->key, sizeof c->key, "%s", u->authority);
    c->reused = 0;
    c->last_use = ++cache->clock;
    c->pos = c->len = c->received = 0;
    cache->slot[slot_Free(cache)] = c;
    *out = c;
    return SP_OK;
}

void conn_Put(http_conn *c, int keep)
{
    if (keep)
        return; /* it stays in its slot */
    conn_cache *cache = cache_Get(0);
    for (int i = 0; cache && i < HTTP_CACHE_SLOTS; i++) {
        if (cache->slot[i] == c) {
            slot_Close(cache, i);
            return;
        }
    }
}

/* ---- I/O ---- */

spStatus conn_Send(http_conn *c, const void *p, size_t n, int more, int64_t deadline_ms)
{
    const char *b = p;
    while (n > 0) {
        ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
        if (w > 0) {
            b += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int r = fd_Wait(c->fd, POLLOUT, deadline_ms);
            if (r == 0)
                return sp_Error(SP_ERR_TIMEOUT, "http %s: timed out sending", c->key);
            if (r > 0)
                continue;
        }
        return sp_Error(SP_ERR_UNAVAILABLE, "http %s: send: %s", c->key, strerror(errno));
    }
    return SP_OK;
}

spStatus conn_Fill(http_conn *c, int64_t deadline_ms)
{
    if (c->pos == c->len) {
        c->pos = c->len = 0;
    } else if (c->len == sizeof c->buf && c->pos > 0) {
        memmove(c->buf, c->buf + c->pos, c->len - c->pos);
        c->len -= c->pos;
        c->pos = 0;
    }
    if (c->len == sizeof c->buf)
        return sp_Error(SP_ERR_INTERNAL, "http: read buffer full");
    for (;;) {
        ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (r > 0) {
            c->len += (size_t)r;
            c->received += (size_t)r;
            return SP_OK;
        }
        if (r == 0)
            return sp_Error(SP_ERR_UNAVAILABLE, "http %s: connection closed by the server",
                            c->key);
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int w = fd_Wait(c->fd, POLLIN, deadline_ms);
            if (w == 0)
                return sp_Error(SP_ERR_TIMEOUT, "http %s: timed out waiting for the response",
                                c->key);
            if (w > 0)
                continue;
        }
        return sp_Error(SP_ERR_UNAVAILABLE, "http %s: recv: %s", c->key, strerror(errno));
    }
}
