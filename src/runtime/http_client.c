/* http_client.c - the driver's HTTP client over libcurl.
 *
 * A request borrows an easy handle from a small process-wide pool of idle
 * ones and gives it back afterwards. A handle's connection cache is what
 * makes keep-alive work: the driver's worker threads call the same few
 * step functions over and over, and its fan-out threads live for a single
 * call each, so handles (with their connections) must outlive the threads
 * that use them. Options that never change are set once when a handle is
 * made; every option a request sets is set by every request, so none leaks
 * from one into the next. (libcurl's own work per request, mostly building
 * the request head, is several times what the hand-written client did;
 * a curl_easy_reset per request would add to it, and a fresh handle per
 * thread costs a few more system calls on top of a new connection.)
 *
 * timeout_ms bounds the whole exchange (CURLOPT_TIMEOUT_MS: connect, send,
 * the wait for the answer and reading it), so a function that trickles
 * bytes cannot hold a driver thread past its deadline. */
#include "runtime/http_client.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#ifndef SPIRT_VERSION
#define SPIRT_VERSION "dev"
#endif

/* Step answers are JSON of a few KB to a few MB (a model's parameters);
 * anything this large is a broken or hostile server, not an answer. */
#define HTTP_BODY_MAX ((size_t)256 << 20)
/* Idle connections kept per handle: one per step function (locally each
 * step is its own process on its own port), more than libcurl's default
 * of 5. */
#define HTTP_MAX_CONNS 16L
/* Idle handles kept: beyond the driver's usual concurrency (its workers,
 * and their fan-out threads), a returned handle is freed with its
 * connections, as the old per-thread caches were when a thread ended. */
#define HTTP_POOL_MAX 16

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static CURLcode g_init_rc = CURLE_FAILED_INIT;

static pthread_mutex_t g_pool_lock = PTHREAD_MUTEX_INITIALIZER;
static CURL *g_pool[HTTP_POOL_MAX]; /* idle handles, the last used last */
static int g_pool_n;

/* curl_global_init is not safe to race with other threads' curl calls:
 * once, before any handle exists. */
static void global_Init(void) { g_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

typedef struct {
    char *p;
    size_t len, cap;
    spStatus st;          /* why the write callback stopped the transfer */
} body_buf;

static size_t body_Write(char *data, size_t size, size_t n, void *ud)
{
    body_buf *b = ud;
    size_t k = size * n; /* size is always 1 */
    if (k > HTTP_BODY_MAX - b->len) {
        b->st = SP_ERR_TOO_LARGE;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (b->len + k + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + k + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->st = SP_ERR_NOMEM;
            return 0;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, k);
    b->len += k;
    return k;
}

/* What every request on a handle has in common, each call checked. */
static CURLcode handle_Setup(CURL *h)
{
    CURLcode rc;
    if ((rc = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https")) ||
        /* threads: no SIGALRM-based DNS timeouts */
        (rc = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L)) ||
        /* step URLs are in-cluster or loopback: an http_proxy in the
         * environment must not reroute them */
        (rc = curl_easy_setopt(h, CURLOPT_PROXY, "")) ||
        (rc = curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L)) ||
        (rc = curl_easy_setopt(h, CURLOPT_MAXCONNECTS, HTTP_MAX_CONNS)) ||
        (rc = curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)HTTP_BODY_MAX)) ||
        (rc = curl_easy_setopt(h, CURLOPT_USERAGENT, "spirt/" SPIRT_VERSION)))
        return rc;
    return curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_Write);
}

/* An idle handle from the pool (the last one given back: its connections
 * are the likeliest to be the ones needed), or a new one. */
static spStatus handle_Take(CURL **out)
{
    pthread_once(&g_once, global_Init);
    if (g_init_rc != CURLE_OK)
        return sp_Error(SP_ERR_INTERNAL, "libcurl init failed: %s",
                        curl_easy_strerror(g_init_rc));
    CURL *h = NULL;
    pthread_mutex_lock(&g_pool_lock);
    if (g_pool_n > 0)
        h = g_pool[--g_pool_n];
    pthread_mutex_unlock(&g_pool_lock);
    if (!h) {
        if (!(h = curl_easy_init()))
            return sp_Error(SP_ERR_NOMEM, "cannot create a libcurl handle");
        CURLcode rc = handle_Setup(h);
        if (rc != CURLE_OK) {
            curl_easy_cleanup(h);
            return sp_Error(SP_ERR_INTERNAL, "setting a libcurl option: %s",
                            curl_easy_strerror(rc));
        }
    }
    *out = h;
    return SP_OK;
}

static void handle_Give(CURL *h)
{
    pthread_mutex_lock(&g_pool_lock);
    if (g_pool_n < HTTP_POOL_MAX) {
        g_pool[g_pool_n++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&g_pool_lock);
    curl_easy_cleanup(h); /* NULL when kept; else closes its connections */
}

void http_CloseCached(void)
{
    CURL *idle[HTTP_POOL_MAX];
    pthread_mutex_lock(&g_pool_lock);
    int n = g_pool_n;
    memcpy(idle, g_pool, (size_t)n * sizeof *idle);
    g_pool_n = 0;
    pthread_mutex_unlock(&g_pool_lock);
    for (int i = 0; i < n; i++)
        curl_easy_cleanup(idle[i]);
}

/* ---- the request ---- */

/* A CR or LF in a header value would let the caller's data start a header of
 * its own. */
static int header_Safe(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* Parses and checks url with libcurl's own parser: http or https, a host,
 * no user info (credentials go in the bearer token, never in a URL). */
static spStatus url_Parse(const char *url, CURLU **out)
{
    *out = NULL;
    if (!url)
        return sp_Error(SP_ERR_INVALID, "url is NULL");
    CURLU *u = curl_url();
    if (!u)
        return sp_Error(SP_ERR_NOMEM, "http: out of memory");
    char *scheme = NULL, *user = NULL, *port = NULL;
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    spStatus st = SP_OK;
    if (uc != CURLUE_OK)
        st = sp_Error(SP_ERR_INVALID, "url %s: %s", url, curl_url_strerror(uc));
    else if ((uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0)) != CURLUE_OK ||
             (strcmp(scheme, "http") && strcmp(scheme, "https")))
        st = sp_Error(SP_ERR_INVALID, "url %s: must start with http:// or https://", url);
    else if ((uc = curl_url_get(u, CURLUPART_USER, &user, 0)) != CURLUE_NO_USER)
        st = sp_Error(SP_ERR_INVALID, "url %s: user info is not supported", url);
    else if ((uc = curl_url_get(u, CURLUPART_PORT, &port, 0)) != CURLUE_OK &&
             uc != CURLUE_NO_PORT)
        st = sp_Error(SP_ERR_INVALID, "url %s: %s", url, curl_url_strerror(uc));
    else if (port && atoi(port) == 0)
        st = sp_Error(SP_ERR_INVALID, "url %s: port %s out of range 1..65535", url, port);
    curl_free(scheme);
    curl_free(user);
    curl_free(port);
    if (st != SP_OK) {
        curl_url_cleanup(u);
        return st;
    }
    *out = u;
    return SP_OK;
}

/* Every option that differs between requests, each call checked: the first
 * failure is returned. */
static CURLcode request_Setup(CURL *h, CURLU *u, int post, const char *body, size_t len,
                              int timeout_ms, struct curl_slist *headers, body_buf *b,
                              char *errbuf)
{
    CURLcode rc;
    if ((rc = curl_easy_setopt(h, CURLOPT_CURLU, u)) ||
        (rc = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms)) ||
        (rc = curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms)) ||
        (rc = curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers)) ||
        (rc = curl_easy_setopt(h, CURLOPT_WRITEDATA, b)) ||
        (rc = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf)))
        return rc;
    if (!post)
        return curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    /* POSTFIELDS is not copied: the caller's body outlives the transfer. */
    if ((rc = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len)))
        return rc;
    return curl_easy_setopt(h, CURLOPT_POSTFIELDS, len ? body : "");
}

/* Drops the handle's pointers to what a request owned (headers, errbuf, b
 * and the URL are freed or go out of scope after it). */
static CURLcode request_Clear(CURL *h)
{
    CURLcode rc;
    if ((rc = curl_easy_setopt(h, CURLOPT_CURLU, NULL)) ||
        (rc = curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL)) ||
        (rc = curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL)) ||
        (rc = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL)))
        return rc;
    return curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
}

/* A failed transfer as a status: the network and the server's end of it are
 * retryable, a reply that is not HTTP is corrupt data. */
static spStatus transfer_Error(CURL *h, CURLcode rc, const body_buf *b, const char *errbuf)
{
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
        return sp_Error(SP_ERR_TIMEOUT, "%s", why);
    case CURLE_WRITE_ERROR:
        if (b->st == SP_ERR_TOO_LARGE)
            return sp_Error(b->st, "response body over %zu bytes", HTTP_BODY_MAX);
        if (b->st == SP_ERR_NOMEM)
            return sp_Error(b->st, "out of memory for a %zu-byte response", b->len);
        return sp_Error(SP_ERR_INTERNAL, "%s", why);
    case CURLE_FILESIZE_EXCEEDED:
        return sp_Error(SP_ERR_TOO_LARGE, "response body over %zu bytes", HTTP_BODY_MAX);
    case CURLE_OUT_OF_MEMORY:
        return sp_Error(SP_ERR_NOMEM, "%s", why);
    case CURLE_URL_MALFORMAT:
    case CURLE_BAD_FUNCTION_ARGUMENT:
        return sp_Error(SP_ERR_INVALID, "%s", why);
    case CURLE_UNSUPPORTED_PROTOCOL: /* an HTTP/0.9 (not HTTP) reply */
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
        return sp_Error(SP_ERR_FORMAT, "%s", why);
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
        return sp_Error(SP_ERR_AUTH, "%s", why);
    case CURLE_COULDNT_CONNECT: {
        /* libcurl names the step but not the system error ("Couldn't
         * connect to server"); "Connection refused" is the useful part. */
        long os = 0;
        if (curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os) == CURLE_OK && os != 0)
            return sp_Error(SP_ERR_UNAVAILABLE, "%s (%s)", why, strerror((int)os));
        return sp_Error(SP_ERR_UNAVAILABLE, "%s", why);
    }
    default: /* resolving, connecting, TLS, sending, receiving */
        return sp_Error(SP_ERR_UNAVAILABLE, "%s", why);
    }
}

/* Appends prefix + value to the non-empty list l (l stays its head). */
static spStatus header_Add(struct curl_slist *l, const char *prefix, const char *value)
{
    char line[1024];
    int n = snprintf(line, sizeof line, "%s%s", prefix, value);
    if (n < 0 || (size_t)n >= sizeof line)
        return sp_Error(SP_ERR_INVALID, "header \"%s...\" longer than %zu bytes", prefix,
                        sizeof line);
    return curl_slist_append(l, line) ? SP_OK : sp_Error(SP_ERR_NOMEM, "out of memory");
}

/* A request's own headers. The token goes in as a header of ours (not
 * CURLOPT_XOAUTH2_BEARER): one line fewer for libcurl to format. */
static spStatus headers_Make(const char *token, const char *ctype, int post,
                             struct curl_slist **out)
{
    /* An empty "Expect:" stops libcurl from waiting for "100 Continue"
     * before a large body: a round trip for nothing, as our servers answer
     * early (401, 413) by themselves. */
    struct curl_slist *l = curl_slist_append(NULL, "Expect:");
    spStatus st = l ? SP_OK : sp_Error(SP_ERR_NOMEM, "out of memory");
    if (st == SP_OK && post)
        st = header_Add(l, "Content-Type: ", ctype ? ctype : "application/json");
    if (st == SP_OK && token)
        st = header_Add(l, "Authorization: Bearer ", token);
    if (st != SP_OK) {
        curl_slist_free_all(l);
        return st;
    }
    *out = l;
    return SP_OK;
}

/* One transfer on a pooled handle; the body lands in b. */
static spStatus transfer(CURLU *u, const char *token, const char *ctype, int post,
                         const char *body, size_t len, int timeout_ms, body_buf *b,
                         long *status)
{
    CURL *h = NULL;
    struct curl_slist *headers;
    spStatus st = headers_Make(token, ctype, post, &headers);
    if (st != SP_OK)
        return st;
    if ((st = handle_Take(&h)) != SP_OK) {
        curl_slist_free_all(headers);
        return st;
    }
    char errbuf[CURL_ERROR_SIZE] = "";
    CURLcode rc = request_Setup(h, u, post, body, len, timeout_ms, headers, b, errbuf);
    if (rc != CURLE_OK) {
        st = sp_Error(rc == CURLE_OUT_OF_MEMORY ? SP_ERR_NOMEM : SP_ERR_INTERNAL,
                      "setting a libcurl option: %s", curl_easy_strerror(rc));
    } else if ((rc = curl_easy_perform(h)) != CURLE_OK) {
        st = transfer_Error(h, rc, b, errbuf);
    } else if ((rc = curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status)) != CURLE_OK) {
        st = sp_Error(SP_ERR_INTERNAL, "reading the status: %s", curl_easy_strerror(rc));
    }
    if ((rc = request_Clear(h)) == CURLE_OK) {
        handle_Give(h);
    } else {
        /* Cannot happen for these options; if it did, the handle might still
         * point at what is freed below: it is not reused. */
        curl_easy_cleanup(h);
        if (st == SP_OK)
            st = sp_Error(SP_ERR_INTERNAL, "clearing libcurl options: %s",
                          curl_easy_strerror(rc));
    }
    curl_slist_free_all(headers);
    return st;
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
    CURLU *u;
    spStatus st = url_Parse(url, &u);
    if (st != SP_OK)
        return st;
    body_buf b = {NULL, 0, 0, SP_OK};
    long status = 0;
    st = transfer(u, token, ctype, !strcmp(method, "POST"), body, len, timeout_ms, &b, &status);
    curl_url_cleanup(u);
    if (st == SP_OK && !b.p && !(b.p = malloc(1))) /* no body at all (204) */
        st = sp_Error(SP_ERR_NOMEM, "out of memory");
    if (st != SP_OK) {
        free(b.p);
        return sp_Wrap(st, "%s %s", method, url);
    }
    b.p[b.len] = '\0';
    resp->status = (int)status;
    resp->body = b.p;
    resp->body_len = b.len;
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
