/* store_direct.c - large values straight between the socket and the
 * caller's memory.
 *
 * Through hiredis a 400 KB SET is copied three times before the kernel
 * sees it (formatted into a command string that grows by reallocation,
 * appended to the output buffer, often reallocated again) and a GET twice
 * after (into the reader's buffer, then into a reply object), each copy
 * into memory freshly faulted in: a profile of a training run put ~35% of
 * the step functions' CPU there. Tensors are the bulk of what the store
 * moves, so their SET writes the RESP framing around the caller's own
 * buffers with one writev, and their GET reads the reply's framing into a
 * small buffer and the payload straight into the destination floats.
 *
 * Both bypass hiredis's buffers, so both require them to be empty (nothing
 * queued to send, nothing received and unparsed); otherwise the caller
 * uses the hiredis path. A failure half-way through leaves the protocol
 * stream out of step, so it marks the context broken (the per-thread cache
 * replaces a broken connection), exactly as a hiredis I/O error does. The
 * socket's send/receive timeouts (redisSetTimeout) bound every write and
 * read, so a stalled server is SP_ERR_TIMEOUT here too. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/crc32c.h"
#include "core/tensor.h"
#include "store/store_direct.h"

/* ---- the connection ------------------------------------------------------ */

int direct_Usable(const store *s)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    const redisContext *c = s ? s->c : NULL;
    return c && !c->err && c->fd >= 0 && sdslen(c->obuf) == 0 && c->reader &&
           c->reader->len == c->reader->pos;
#else
    (void)s;
    return 0;
#endif
}

/* The stream is out of step: the context is dead from here on. */
static spStatus direct_Broken(store *s, int err, const char *what, const char *why)
{
    redisContext *c = s->c;
    c->err = err;
    snprintf(c->errstr, sizeof c->errstr, "%s", why);
    return store_Fail(s, NULL, what);
}

static spStatus direct_IoError(store *s, const char *what, ssize_t n)
{
    if (n == 0)
        return direct_Broken(s, REDIS_ERR_EOF, what, "Server closed the connection");
    int saved = errno;
    const char *why = saved == EAGAIN || saved == EWOULDBLOCK ? "Resource temporarily unavailable"
                                                              : strerror(saved);
    spStatus st = direct_Broken(s, REDIS_ERR_IO, what, why);
    errno = saved;
    return st;
}

/* Sends every byte of iov[0..n) (modified as it goes). */
static spStatus send_All(store *s, struct iovec *iov, int n, const char *what)
{
    int i = 0;
    while (i < n) {
        ssize_t w = writev(s->c->fd, iov + i, n - i);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return direct_IoError(s, what, w < 0 ? -1 : 0);
        s->bytes_out += (uint64_t)w;
        while (i < n && (size_t)w >= iov[i].iov_len) {
            w -= (ssize_t)iov[i].iov_len;
            i++;
        }
        if (i < n) {
            iov[i].iov_base = (char *)iov[i].iov_base + w;
            iov[i].iov_len -= (size_t)w;
        }
    }
    return SP_OK;
}

/* ---- SET ------------------------------------------------------------------ */

spStatus direct_Set(store *s, const char *key, const void *a, size_t alen, const void *b,
                    size_t blen, int ttl_s, int keepttl)
{
    size_t klen = strlen(key);
    char ttl[24] = "";
    int ttl_len = ttl_s > 0 ? snprintf(ttl, sizeof ttl, "%d", ttl_s) : 0;
    int argc = 3 + (ttl_s > 0 ? 2 : 0) + (keepttl ? 1 : 0);
    /* "*argc $3 SET $klen key $vlen" - the key is short (store_Key bounds it). */
    char head[640];
    int hn = snprintf(head, sizeof head, "*%d\r\n$3\r\nSET\r\n$%zu\r\n", argc, klen);
    if (hn < 0 || (size_t)hn + klen + 32 > sizeof head)
        return sp_Error(SP_ERR_INVALID, "redis: key of %zu bytes is too long", klen);
    memcpy(head + hn, key, klen);
    hn += (int)klen;
    hn += snprintf(head + hn, sizeof head - (size_t)hn, "\r\n$%zu\r\n", alen + blen);
    char tail[96];
    int tn = snprintf(tail, sizeof tail, "\r\n");
    if (ttl_s > 0)
        tn += snprintf(tail + tn, sizeof tail - (size_t)tn, "$2\r\nEX\r\n$%d\r\n%s\r\n", ttl_len, ttl);
    if (keepttl)
        tn += snprintf(tail + tn, sizeof tail - (size_t)tn, "$7\r\nKEEPTTL\r\n");
    struct iovec iov[4] = {{head, (size_t)hn}, {(void *)a, alen}, {(void *)b, blen},
                           {tail, (size_t)tn}};
    spStatus st = send_All(s, iov, 4, "SET");
    if (st != SP_OK)
        return sp_Wrap(st, "storing '%s'", key);
    redisReply *r;
    if ((st = store_Read(s, &r)) != SP_OK)
        return sp_Wrap(st, "storing '%s'", key);
    if (r->type != REDIS_REPLY_STATUS)
        st = store_Fail(s, r, "SET");
    freeReplyObject(r);
    return st;
}

/* ---- GET ------------------------------------------------------------------ */

void direct_InInit(direct_in *d, store *s)
{
    d->s = s;
    d->pos = d->len = 0;
}

void direct_InDone(direct_in *d)
{
    /* Bytes read past the last reply belong to replies hiredis will parse. */
    if (d->len > d->pos && !d->s->c->err)
        redisReaderFeed(d->s->c->reader, d->buf + d->pos, d->len - d->pos);
    d->pos = d->len = 0;
}

static spStatus in_Fill(direct_in *d, const char *what)
{
    if (d->pos > 0 && d->pos == d->len)
        d->pos = d->len = 0;
    if (d->len == sizeof d->buf) {
        memmove(d->buf, d->buf + d->pos, d->len - d->pos);
        d->len -= d->pos;
        d->pos = 0;
    }
    for (;;) {
        ssize_t n = read(d->s->c->fd, d->buf + d->len, sizeof d->buf - d->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return direct_IoError(d->s, what, n);
        d->s->bytes_in += (uint64_t)n;
        d->len += (size_t)n;
        return SP_OK;
    }
}

/* Copies the next n bytes of the stream into dst (NULL: discards them):
 * what the small buffer holds first, the rest straight from the socket. */
static spStatus in_Take(direct_in *d, void *dst, size_t n, const char *what)
{
    char *out = dst;
    size_t have = d->len - d->pos < n ? d->len - d->pos : n;
    if (out)
        memcpy(out, d->buf + d->pos, have);
    d->pos += have;
    size_t got = have;
    char sink[16384];
    while (got < n) {
        char *to = out ? out + got : sink;
        size_t want = out ? n - got : (n - got < sizeof sink ? n - got : sizeof sink);
        ssize_t r = read(d->s->c->fd, to, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return direct_IoError(d->s, what, r);
        d->s->bytes_in += (uint64_t)r;
        got += (size_t)r;
    }
    return SP_OK;
}

/* The reply's first line, without its CRLF, NUL-terminated in place. */
static spStatus in_Line(direct_in *d, char **line, const char *what)
{
    for (;;) {
        char *start = d->buf + d->pos;
        char *nl = memchr(start, '\n', d->len - d->pos);
        if (nl && nl > start && nl[-1] == '\r') {
            nl[-1] = '\0';
            *line = start;
            d->pos = (size_t)(nl + 1 - d->buf);
            return SP_OK;
        }
        if (d->pos == 0 && d->len == sizeof d->buf)
            return direct_Broken(d->s, REDIS_ERR_PROTOCOL, what, "reply line too long");
        spStatus st = in_Fill(d, what);
        if (st != SP_OK)
            return st;
    }
}

/* The rest of a bulk value of `left` bytes and its CRLF, unread. */
static spStatus in_Skip(direct_in *d, size_t left, const char *what)
{
    return in_Take(d, NULL, left + 2, what);
}

spStatus direct_GetTensor(direct_in *d, const char *key, uint64_t expect_n,
                          float *(*dest)(void *ctx, uint64_t n), void *ctx, uint64_t *count)
{
    store *s = d->s;
    char *line = NULL;
    spStatus st = in_Line(d, &line, "GET");
    if (st != SP_OK)
        return st;
    if (line[0] == '-') {
        redisReply r = {.type = REDIS_REPLY_ERROR, .str = line + 1, .len = strlen(line + 1)};
        return store_Fail(s, &r, "GET");
    }
    if (line[0] != '$') {
        redisReply r = {.type = line[0] == '+' ? REDIS_REPLY_STATUS : REDIS_REPLY_INTEGER};
        return store_Fail(s, &r, "GET");
    }
    char *end;
    errno = 0;
    long long len = strtoll(line + 1, &end, 10);
    if (*end || errno || len < -1)
        return direct_Broken(s, REDIS_ERR_PROTOCOL, "GET", "bad bulk length");
    if (len == -1)
        return sp_Error(SP_ERR_NOT_FOUND, "redis %s: key '%s' not found", store_Name(s), key);
    uint8_t hdr[WIRE_HEADER_SIZE];
    if ((size_t)len < WIRE_HEADER_SIZE) {
        if ((st = in_Skip(d, (size_t)len, "GET")) != SP_OK)
            return st;
        return sp_Error(SP_ERR_FORMAT,
                        "redis %s: key '%s': wire: blob of %lld bytes is shorter than the "
                        "%d-byte header", store_Name(s), key, len, WIRE_HEADER_SIZE);
    }
    if ((st = in_Take(d, hdr, sizeof hdr, "GET")) != SP_OK)
        return st;
    size_t left = (size_t)len - WIRE_HEADER_SIZE;
    wire_view v;
    spStatus bad = wire_ParseHeader(hdr, &v);
    if (bad == SP_OK && v.payload_len != left)
        bad = sp_Error(SP_ERR_FORMAT, "wire: %s payload: %zu bytes for %llu elements",
                       left < v.payload_len ? "truncated" : "trailing bytes after", left,
                       (unsigned long long)v.count);
    if (bad == SP_OK && v.dtype != WIRE_F32)
        bad = sp_Error(SP_ERR_INVALID, "holds dtype %d, not float32", (int)v.dtype);
    if (bad == SP_OK && expect_n && v.count != expect_n)
        bad = sp_Error(SP_ERR_INVALID, "holds %llu elements, expected %llu",
                       (unsigned long long)v.count, (unsigned long long)expect_n);
    float *out = NULL;
    if (bad == SP_OK && !(out = dest(ctx, v.count)))
        bad = sp_Error(SP_ERR_NOMEM, "cannot allocate %llu floats", (unsigned long long)v.count);
    if (bad != SP_OK) {
        /* Keep the stream in step, then report what was wrong with the value. */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", sp_LastError());
        if ((st = in_Skip(d, left, "GET")) != SP_OK)
            return st;
        return sp_Error(bad, "redis %s: key '%s': %s", store_Name(s), key, msg);
    }
    char crlf[2];
    if ((st = in_Take(d, out, left, "GET")) != SP_OK || (st = in_Take(d, crlf, 2, "GET")) != SP_OK)
        return st;
    if (crlf[0] != '\r' || crlf[1] != '\n')
        return direct_Broken(s, REDIS_ERR_PROTOCOL, "GET", "bulk value not followed by CRLF");
    if ((st = wire_CheckPayload(&v, (const uint8_t *)out)) != SP_OK)
        return sp_Wrap(st, "redis %s: key '%s'", store_Name(s), key);
    if (!tensor_AllFinite((size_t)v.count, out)) {
        uint64_t i = 0;
        while (i < v.count && isfinite(out[i]))
            i++;
        return sp_Error(SP_ERR_INVALID, "redis %s: key '%s' has a non-finite value at index %llu",
                        store_Name(s), key, (unsigned long long)i);
    }
    *count = v.count;
    return SP_OK;
}

spStatus direct_ArrayLen(direct_in *d, long long *n, const char *what)
{
    char *line = NULL;
    spStatus st = in_Line(d, &line, what);
    if (st != SP_OK)
        return st;
    if (line[0] == '-') {
        redisReply r = {.type = REDIS_REPLY_ERROR, .str = line + 1, .len = strlen(line + 1)};
        return store_Fail(d->s, &r, what);
    }
    char *end;
    errno = 0;
    long long v = line[0] == '*' ? strtoll(line + 1, &end, 10) : -2;
    if (v < -1 || *end || errno)
        return direct_Broken(d->s, REDIS_ERR_PROTOCOL, what, "expected an array reply");
    *n = v;
    return SP_OK;
}

spStatus direct_Flush(store *s, const char *what)
{
    int done = 0;
    while (!done) {
        errno = 0;
        if (redisBufferWrite(s->c, &done) != REDIS_OK)
            return store_Fail(s, NULL, what);
    }
    return SP_OK;
}
