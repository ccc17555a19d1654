/* http_client.c - HTTP/1.1 requests and response parsing over http_conn.
 *
 * timeout_ms bounds the whole exchange (connect, send, the wait for the
 * answer and reading it), so a function that trickles bytes cannot hold a
 * driver thread longer than its deadline. */
#include "runtime/http_client.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime/http_conn.h"
#include "runtime/runtime.h"

#ifndef SPIRT_VERSION
#define SPIRT_VERSION "dev"
#endif

#define HTTP_LINE_MAX 8192
#define HTTP_HEADERS_MAX 100
#define HTTP_BODY_MAX ((size_t)256 << 20)

typedef struct {
    int status;
    int chunked;
    int has_length;
    size_t length;
    int close;            /* the server will close (or HTTP/1.0 without keep-alive) */
} resp_head;

typedef struct {
    char *p;
    size_t len, cap;
} grow_buf;

static spStatus grow_Reserve(grow_buf *b, size_t more)
{
    if (more > HTTP_BODY_MAX || b->len + more > HTTP_BODY_MAX)
        return sp_Error(SP_ERR_TOO_LARGE, "http: response body over %zu bytes", HTTP_BODY_MAX);
    size_t need = b->len + more + 1; /* + NUL */
    if (need <= b->cap)
        return SP_OK;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return sp_Error(SP_ERR_NOMEM, "http: out of memory for a %zu-byte response", need);
    b->p = p;
    b->cap = cap;
    return SP_OK;
}

/* Copies n bytes of body into b, reading as needed. */
static spStatus read_Into(http_conn *c, grow_buf *b, size_t n, int64_t dl)
{
    spStatus st = grow_Reserve(b, n);
    while (st == SP_OK && n > 0) {
        if (c->pos == c->len && (st = conn_Fill(c, dl)) != SP_OK)
            break;
        size_t k = c->len - c->pos < n ? c->len - c->pos : n;
        memcpy(b->p + b->len, c->buf + c->pos, k);
        b->len += k;
        c->pos += k;
        n -= k;
    }
    return st;
}

/* One CRLF- (or LF-) terminated line without its terminator. */
static spStatus read_Line(http_conn *c, char *line, size_t cap, int64_t dl)
{
    for (;;) {
        char *nl = memchr(c->buf + c->pos, '\n', c->len - c->pos);
        if (nl) {
            size_t n = (size_t)(nl - (c->buf + c->pos));
            if (n >= cap)
                break;
            memcpy(line, c->buf + c->pos, n);
            if (n && line[n - 1] == '\r')
                n--;
            line[n] = '\0';
            c->pos += (size_t)(nl - (c->buf + c->pos)) + 1;
            return SP_OK;
        }
        if (c->len - c->pos >= cap)
            break;
        spStatus st = conn_Fill(c, dl);
        if (st != SP_OK)
            return st;
    }
    return sp_Error(SP_ERR_FORMAT, "http %s: response line longer than %zu bytes", c->key, cap);
}

/* Whole-string decimal size; 0 on success. */
static int parse_Size(const char *s, int base, size_t *out)
{
    while (*s == ' ' || *s == '\t')
        s++;
    if (!isxdigit((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, base);
    while (*end == ' ' || *end == '\t')
        end++;
    if (errno || (*end && !(base == 16 && *end == ';')) || v > HTTP_BODY_MAX)
        return -1;
    *out = (size_t)v;
    return 0;
}

static int has_Token(const char *value, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = value; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t k = strcspn(p, ", \t");
        if (k == n && !strncasecmp(p, token, n))
            return 1;
        p += k;
    }
    return 0;
}

static spStatus header_Apply(http_conn *c, char *line, resp_head *h)
{
    char *colon = strchr(line, ':');
    if (!colon || colon == line)
        return sp_Error(SP_ERR_FORMAT, "http %s: malformed header line", c->key);
    *colon = '\0';
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (!strcasecmp(line, "Content-Length")) {
        size_t n;
        if (parse_Size(v, 10, &n) || (h->has_length && n != h->length))
            return sp_Error(SP_ERR_FORMAT, "http %s: bad Content-Length \"%.32s\"", c->key, v);
        h->has_length = 1;
        h->length = n;
    } else if (!strcasecmp(line, "Transfer-Encoding")) {
        h->chunked = has_Token(v, "chunked");
        if (!h->chunked)
            return sp_Error(SP_ERR_FORMAT, "http %s: unsupported Transfer-Encoding %.32s",
                            c->key, v);
    } else if (!strcasecmp(line, "Connection")) {
        if (has_Token(v, "close"))
            h->close = 1;
        else if (has_Token(v, "keep-alive"))
            h->close = 0;
    }
    return SP_OK;
}

/* Status line and headers; interim 1xx answers are skipped. */
static spStatus read_Head(http_conn *c, resp_head *h, int64_t dl)
{
    char line[HTTP_LINE_MAX];
    spStatus st;
    do {
        memset(h, 0, sizeof *h);
        if ((st = read_Line(c, line, sizeof line, dl)) != SP_OK)
            return st;
        int minor, status;
        char sp;
        if (sscanf(line, "HTTP/1.%1d %3d%c", &minor, &status, &sp) < 2 || status < 100 ||
            status > 999)
            return sp_Error(SP_ERR_FORMAT, "http %s: bad status line \"%.40s\"", c->key, line);
        h->status = status;
        h->close = minor == 0; /* HTTP/1.0 closes unless it says keep-alive */
        for (int n = 0;; n++) {
            if ((st = read_Line(c, line, sizeof line, dl)) != SP_OK)
                return st;
            if (!line[0])
                break;
            if (n == HTTP_HEADERS_MAX)
                return sp_Error(SP_ERR_FORMAT, "http %s: more than %d headers", c->key,
                                HTTP_HEADERS_MAX);
            if ((st = header_Apply(c, line, h)) != SP_OK)
                return st;
        }
    } while (h->status >= 100 && h->status < 200);
    return SP_OK;
}

static spStatus read_Chunked(http_conn *c, grow_buf *b, int64_t dl)
{
    char line[HTTP_LINE_MAX];
    for (;;) {
        spStatus st = read_Line(c, line, sizeof line, dl);
        size_t n;
        if (st != SP_OK)
            return st;
        if (parse_Size(line, 16, &n))
            return sp_Error(SP_ERR_FORMAT, "http %s: bad chunk size \"%.20s\"", c->key, line);
        if (n == 0)
            break;
        if ((st = read_Into(c, b, n, dl)) != SP_OK)
            return st;
        if ((st = read_Line(c, line, sizeof line, dl)) != SP_OK)
            return st;
        if (line[0])
            return sp_Error(SP_ERR_FORMAT, "http %s: chunk longer than announced", c->key);
    }
    /* trailers, ignored, up to the empty line */
    for (int n = 0; n <= HTTP_HEADERS_MAX; n++) {
        spStatus st = read_Line(c, line, sizeof line, dl);
        if (st != SP_OK)
            return st;
        if (!line[0])
            return SP_OK;
    }
    return sp_Error(SP_ERR_FORMAT, "http %s: too many trailers", c->key);
}

/* A body delimited by the end of the connection. */
static spStatus read_ToEof(http_conn *c, grow_buf *b, int64_t dl)
{
    for (;;) {
        spStatus st = read_Into(c, b, c->len - c->pos, dl);
        if (st != SP_OK)
            return st;
        st = conn_Fill(c, dl);
        if (st == SP_ERR_UNAVAILABLE)
            return SP_OK; /* the end of the stream is the end of the body */
        if (st != SP_OK)
            return st;
    }
}

/* Reads one response; *keep says whether the connection can be reused. */
static spStatus read_Response(http_conn *c, int64_t dl, http_response *r, int *keep)
{
    resp_head h;
    grow_buf b = {0};
    spStatus st = read_Head(c, &h, dl);
    *keep = 0;
    if (st == SP_OK && (st = grow_Reserve(&b, 0)) == SP_OK) {
        if (h.status == 204 || h.status == 304)
            st = SP_OK;
        else if (h.chunked)
            st = read_Chunked(c, &b, dl);
        else if (h.has_length)
            st = read_Into(c, &b, h.length, dl);
        else {
            st = read_ToEof(c, &b, dl);
            h.close = 1;
        }
    }
    if (st != SP_OK) {
        free(b.p);
        return st;
    }
    b.p[b.len] = '\0';
    r->status = h.status;
    r->body = b.p;
    r->body_len = b.len;
    /* bytes past the response would be a protocol error on the next one */
    *keep = !h.close && c->pos == c->len;
    return SP_OK;
}

static int header_Safe(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static char *request_Head(const char *method, const http_url *u, const char *token,
                          const char *ctype, int with_body, size_t len, size_t *head_len)
{
    char *head = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&head, &n);
    if (!f)
        return NULL;
    fprintf(f, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: spirt/%s\r\n", method, u->path,
            u->authority, SPIRT_VERSION);
    if (token)
        fprintf(f, "Authorization: Bearer %s\r\n", token);
    if (with_body)
        fprintf(f, "Content-Type: %s\r\nContent-Length: %zu\r\n", ctype, len);
    fputs("\r\n", f);
    if (fclose(f) != 0) {
        free(head);
        return NULL;
    }
    *head_len = n;
    return head;
}

/* One attempt on one connection. */
static spStatus exchange(http_conn *c, const char *head, size_t head_len, const char *body,
                         size_t len, int64_t dl, http_response *r, int *keep)
{
    spStatus st = conn_Send(c, head, head_len, len > 0, dl);
    if (st == SP_OK && len > 0)
        st = conn_Send(c, body, len, 0, dl);
    if (st == SP_OK)
        return read_Response(c, dl, r, keep);
    if (st != SP_ERR_UNAVAILABLE)
        return st;
    /* A server may answer from the headers alone (401, 413) and close while
     * the body is still going out: the answer can be waiting in the socket
     * even though sending failed, and it says more than "broken pipe". */
    char why[256];
    snprintf(why, sizeof why, "%s", sp_LastError());
    if (read_Response(c, dl, r, keep) == SP_OK) {
        *keep = 0;
        return SP_OK;
    }
    return sp_Error(st, "%s", why);
}

static spStatus request(const char *method, const char *url, const char *token,
                        const char *ctype, const char *body, size_t len, int timeout_ms,
                        http_response *resp)
{
    if (!resp)
        return sp_Error(SP_ERR_INVALID, "http: resp is NULL");
    memset(resp, 0, sizeof *resp);
    if (timeout_ms <= 0)
        return sp_Error(SP_ERR_INVALID, "http: timeout_ms must be positive, got %d", timeout_ms);
    if (len > 0 && !body)
        return sp_Error(SP_ERR_INVALID, "http: body is NULL with length %zu", len);
    if ((token && (!token[0] || !header_Safe(token))) || !header_Safe(ctype))
        return sp_Error(SP_ERR_INVALID, "http: token or content type holds control characters");
    http_url u;
    spStatus st = http_ParseUrl(url, &u);
    if (st != SP_OK)
        return st;
    int64_t dl = rt_NowMs() + timeout_ms;
    size_t head_len;
    char *head = request_Head(method, &u, token, ctype ? ctype : "application/json",
                              !strcmp(method, "POST"), len, &head_len);
    if (!head)
        return sp_Error(SP_ERR_NOMEM, "http: out of memory");
    for (int attempt = 0; attempt < 2; attempt++) {
        http_conn *c;
        int keep = 0;
        if ((st = conn_Get(&u, dl, attempt > 0, &c)) != SP_OK)
            break;
        st = exchange(c, head, head_len, body, len, dl, resp, &keep);
        int stale = st == SP_ERR_UNAVAILABLE && c->reused && c->received == 0;
        conn_Put(c, st == SP_OK && keep);
        /* A reused keep-alive connection the server had already closed
         * fails before any answer byte arrives: the server never saw the
         * request, so sending it once more on a fresh connection is safe. */
        if (!stale)
            break;
    }
    free(head);
    if (st != SP_OK)
        return sp_Wrap(st, "%s %s", method, url);
    return SP_OK;
}

spStatus http_Post(const char *url, const char *token, const char *content_type,
                   const char *body, size_t len, int timeout_ms, http_response *resp)
{
    return request("POST", url, token, content_type, body, len, timeout_ms, resp);
}

spStatus http_Get(const char *url, const char *token, int timeout_ms, http_response *resp)
{
    return request("GET", url, token, NULL, NULL, 0, timeout_ms, resp);
}

void http_ResponseFree(http_response *r)
{
    if (!r)
        return;
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
    r->status = 0;
}
