/* ctest-label: unit (starts no server) */
/* test_http_client.c - the HTTP client against a scripted loopback server:
 * the request it sends, exact response bytes (chunked, 1xx, no length,
 * garbage, cut short, too large), deadlines (a silent and a trickling
 * server), and connection reuse (keep-alive, across threads, a server
 * that closed a cached connection). */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "raw_http.h"
#include "runtime/http_client.h"
#include "runtime/runtime.h"

#define WAIT_MS 5000

/* ---- a scripted server: one reply per request, in order ---- */

typedef struct {
    const char *text;     /* bytes to answer with; NULL: close without answering */
    size_t len;           /* 0: strlen(text) */
    int close_after;      /* close the connection once answered; TRICKLE(ms): send the
                             answer one byte every ms, then close */
} script_reply;

#define TRICKLE(ms) (-(ms))

typedef struct {
    int lfd, port;
    const script_reply *replies;
    int nreplies;
    atomic_int accepts;
    atomic_int closes;    /* connections the server closed itself */
    char last_req[8192];  /* the last request, read after join */
    size_t last_len;
    pthread_t th;
} script_server;

static int listen_Loopback(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

/* Reads one request (headers and a Content-Length body); 0 on success,
 * -1 when the client closed or nothing came within WAIT_MS. */
static int read_Request(int fd, char *buf, size_t cap, size_t *out_len)
{
    size_t len = 0;
    int64_t until = rt_NowMs() + WAIT_MS;
    for (;;) {
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end) {
            size_t body = 0;
            char *cl = strcasestr(buf, "Content-Length:");
            if (cl && cl < end)
                body = strtoul(cl + 15, NULL, 10);
            size_t want = (size_t)(end + 4 - buf) + body;
            if (len >= want) {
                *out_len = len;
                return 0;
            }
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)(until - rt_NowMs());
        if (len + 1 >= cap || left <= 0 || poll(&p, 1, left) != 1)
            return -1;
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            return -1;
        len += (size_t)n;
    }
}

static void *script_Run(void *p)
{
    script_server *s = p;
    int next = 0;
    while (next < s->nreplies) {
        struct pollfd pl = {.fd = s->lfd, .events = POLLIN};
        if (poll(&pl, 1, WAIT_MS) != 1)
            break;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            break;
        atomic_fetch_add(&s->accepts, 1);
        while (next < s->nreplies) {
            char req[sizeof s->last_req];
            size_t len;
            if (read_Request(fd, req, sizeof req, &len) != 0)
                break;
            memcpy(s->last_req, req, len + 1);
            s->last_len = len;
            const script_reply *r = &s->replies[next++];
            if (!r->text)
                break;
            size_t n = r->len ? r->len : strlen(r->text);
            if (r->close_after < 0) {
                for (size_t i = 0; i < n && raw_Send(fd, r->text + i, 1) == 0; i++)
                    usleep((useconds_t)-r->close_after * 1000);
                break;
            }
            raw_Send(fd, r->text, n);
            if (r->close_after)
                break;
        }
        close(fd);
        atomic_fetch_add(&s->closes, 1);
    }
    return NULL;
}

static void script_Start(script_server *s, const script_reply *replies, int n)
{
    memset(s, 0, sizeof *s);
    s->replies = replies;
    s->nreplies = n;
    s->lfd = listen_Loopback(&s->port);
    assert_true(s->lfd >= 0);
    assert_int_equal(pthread_create(&s->th, NULL, script_Run, s), 0);
}

static void script_Join(script_server *s)
{
    http_CloseCached(); /* lets a thread blocked on our cached connection finish */
    pthread_join(s->th, NULL);
    close(s->lfd);
}

static void url_Of(const script_server *s, const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "http://127.0.0.1:%d%s", s->port, path);
}

#define OK_REPLY(body) \
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " #body "\r\n\r\n"

/* ---- tests ---- */

static void test_request_bytes(void **state)
{
    (void)state;
    static const script_reply replies[] = {{OK_REPLY(2) "{}", 0, 0}};
    script_server s;
    script_Start(&s, replies, 1);
    char url[128];
    url_Of(&s, "/step?x=1#frag", url, sizeof url);
    http_response r;
    assert_int_equal(http_Post(url, "tok-1", "application/json", "{\"k\":1}", 7, WAIT_MS, &r),
                     SP_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{}");
    assert_int_equal(r.body_len, 2);
    http_ResponseFree(&r);
    script_Join(&s);
    char host[64];
    snprintf(host, sizeof host, "\r\nHost: 127.0.0.1:%d\r\n", s.port);
    assert_memory_equal(s.last_req, "POST /step?x=1 HTTP/1.1\r\n", 25);
    assert_non_null(strstr(s.last_req, host));
    assert_non_null(strstr(s.last_req, "\r\nAuthorization: Bearer tok-1\r\n"));
    assert_non_null(strstr(s.last_req, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(s.last_req, "\r\nContent-Length: 7\r\n"));
    assert_string_equal(strstr(s.last_req, "\r\n\r\n") + 4, "{\"k\":1}");
}

static void test_chunked_and_interim(void **state)
{
    (void)state;
    static const script_reply replies[] = {
        {"HTTP/1.1 100 Continue\r\n\r\n"
         "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         "5\r\nhello\r\n7;ext=1\r\n, world\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
         0, 0},
        {OK_REPLY(3) "end", 0, 0},
    };
    script_server s;
    script_Start(&s, replies, 2);
    char url[128];
    url_Of(&s, "/", url, sizeof url);
    http_response r;
    assert_int_equal(http_Get(url, NULL, WAIT_MS, &r), SP_OK);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 22);
    assert_string_equal(r.body, "hello, world0123456789");
    http_ResponseFree(&r);
    /* the trailer was consumed: the next answer on the connection parses */
    assert_int_equal(http_Get(url, NULL, WAIT_MS, &r), SP_OK);
    assert_string_equal(r.body, "end");
    http_ResponseFree(&r);
    script_Join(&s);
    assert_int_equal(atomic_load(&s.accepts), 1);
}

static void test_body_until_close_and_errors_status(void **state)
{
    (void)state;
    static const script_reply replies[] = {
        {"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops", 0, 0},
        {"HTTP/1.0 200 OK\r\n\r\nno length, ends with the connection", 0, 1},
        {"HTTP/1.1 204 No Content\r\n\r\n", 0, 0},
    };
    script_server s;
    script_Start(&s, replies, 3);
    char url[128];
    url_Of(&s, "/", url, sizeof url);
    http_response r;
    /* any HTTP status is a successful exchange */
    assert_int_equal(http_Get(url, NULL, WAIT_MS, &r), SP_OK);
    assert_int_equal(r.status, 500);
    assert_string_equal(r.body, "oops");
    http_ResponseFree(&r);
    assert_int_equal(http_Get(url, NULL, WAIT_MS, &r), SP_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "no length, ends with the connection");
    http_ResponseFree(&r);
    assert_int_equal(http_Get(url, NULL, WAIT_MS, &r), SP_OK);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.body_len, 0);
    assert_string_equal(r.body, "");
    http_ResponseFree(&r);
    script_Join(&s);
    assert_int_equal(atomic_load(&s.accepts), 2);
}

static void test_large_body(void **state)
{
    (void)state;
    size_t n = 3u << 20;
    char head[128];
    int hl = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", n);
    char *text = malloc((size_t)hl + n);
    assert_non_null(text);
    memcpy(text, head, (size_t)hl);
    for (size_t i = 0; i < n; i++)
        text[hl + i] = (char)('a' + i % 26);
    script_reply replies[] = {{text, (size_t)hl + n, 0}};
    script_server s;
    script_Start(&s, replies, 1);
    char url[128];
    url_Of(&s, "/", url, sizeof url);
    http_response r;
    assert_int_equal(http_Get(url, NULL, WAIT_MS, &r), SP_OK);
    assert_int_equal(r.body_len, n);
    assert_memory_equal(r.body, text + hl, n);
    assert_int_equal(r.body[n], '\0');
    http_ResponseFree(&r);
    script_Join(&s);
    free(text);
}

/* One POST from a thread of its own, as the driver's fan-out threads make
 * them; the result is checked by the test's thread (cmocka asserts only
 * there). */
typedef struct {
    const char *url;
    spStatus st;
    char first;
} thread_post;

static void *post_Thread(void *p)
{
    thread_post *tp = p;
    http_response r;
    tp->st = http_Post(tp->url, NULL, NULL, "{}", 2, WAIT_MS, &r);
    tp->first = tp->st == SP_OK ? r.body[0] : 0;
    http_ResponseFree(&r);
    return NULL;
}

static void test_keepalive_reuse(void **state)
{
    (void)state;
    static const script_reply replies[] = {
        {OK_REPLY(1) "1", 0, 0}, {OK_REPLY(1) "2", 0, 0}, {OK_REPLY(1) "3", 0, 0}};
    script_server s;
    script_Start(&s, replies, 3);
    char url[128];
    url_Of(&s, "/", url, sizeof url);
    for (int i = 0; i < 2; i++) {
        http_response r;
        assert_int_equal(http_Post(url, NULL, NULL, "{}", 2, WAIT_MS, &r), SP_OK);
        assert_int_equal(r.body[0], '1' + i);
        http_ResponseFree(&r);
    }
    /* a thread that lives for one call reuses the connection too */
    thread_post tp = {url, SP_ERR_INTERNAL, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, post_Thread, &tp), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(tp.st, SP_OK);
    assert_int_equal(tp.first, '3');
    script_Join(&s);
    assert_int_equal(atomic_load(&s.accepts), 1);
}

static void test_reconnect_after_server_close(void **state)
{
    (void)state;
    /* 1: answered, then the server closes the idle connection (no
     *    Connection: close said); the client must notice before reusing.
     * 2: the cached connection takes the request and dies without a byte
     *    of answer; the client must resend once on a fresh connection. */
    static const script_reply replies[] = {
        {OK_REPLY(1) "a", 0, 1},
        {OK_REPLY(1) "b", 0, 0},
        {NULL, 0, 0},
        {OK_REPLY(1) "c", 0, 0},
    };
    script_server s;
    script_Start(&s, replies, 4);
    char url[128];
    url_Of(&s, "/", url, sizeof url);
    http_response r;
    assert_int_equal(http_Post(url, NULL, NULL, "{}", 2, WAIT_MS, &r), SP_OK);
    assert_string_equal(r.body, "a");
    http_ResponseFree(&r);
    int64_t until = rt_NowMs() + WAIT_MS;
    while (atomic_load(&s.closes) < 1 && rt_NowMs() < until)
        usleep(1000);
    assert_int_equal(atomic_load(&s.closes), 1);
    assert_int_equal(http_Post(url, NULL, NULL, "{}", 2, WAIT_MS, &r), SP_OK);
    assert_string_equal(r.body, "b");
    http_ResponseFree(&r);
    assert_int_equal(http_Post(url, NULL, NULL, "{}", 2, WAIT_MS, &r), SP_OK);
    assert_string_equal(r.body, "c");
    http_ResponseFree(&r);
    script_Join(&s);
    assert_int_equal(atomic_load(&s.accepts), 3);
}

static void test_broken_responses(void **state)
{
    (void)state;
    static const script_reply replies[] = {
        {OK_REPLY(1) "x", 0, 0},
        /* cut short after part of the answer: not retried, it may have run */
        {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial", 0, 1},
        {"SSH-2.0-OpenSSH_9.2\r\n\r\n", 0, 1},
        {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, 1},
        {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, 1},
        {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 0, 1},
        /* over the client's limit on a response body: refused from the header */
        {"HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n", 0, 1},
    };
    script_server s;
    script_Start(&s, replies, 7);
    char url[128];
    url_Of(&s, "/", url, sizeof url);
    http_response r;
    assert_int_equal(http_Post(url, NULL, NULL, "{}", 2, WAIT_MS, &r), SP_OK);
    http_ResponseFree(&r);
    assert_int_equal(http_Post(url, NULL, NULL, "{}", 2, WAIT_MS, &r), SP_ERR_UNAVAILABLE);
    assert_null(r.body);
    /* not HTTP at all, a nonsense length: corrupt data */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(http_Get(url, NULL, WAIT_MS, &r), SP_ERR_FORMAT);
        assert_null(r.body);
        assert_true(sp_LastError()[0] != '\0');
    }
    /* a bad chunk, conflicting lengths: libcurl reports these as a broken
     * transfer; what matters is that no half-read body comes back as SP_OK */
    for (int i = 0; i < 2; i++) {
        assert_int_not_equal(http_Get(url, NULL, WAIT_MS, &r), SP_OK);
        assert_null(r.body);
        assert_true(sp_LastError()[0] != '\0');
    }
    assert_int_equal(http_Get(url, NULL, WAIT_MS, &r), SP_ERR_TOO_LARGE);
    assert_null(r.body);
    script_Join(&s);
    assert_int_equal(atomic_load(&s.accepts), 6);
}

static void test_connect_failures(void **state)
{
    (void)state;
    http_response r;
    /* nothing listens: refused at once */
    int lport;
    int lfd = listen_Loopback(&lport);
    assert_true(lfd >= 0);
    close(lfd);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", lport);
    assert_int_equal(http_Get(url, NULL, WAIT_MS, &r), SP_ERR_UNAVAILABLE);
    assert_non_null(strstr(sp_LastError(), "refused"));
    /* https is a valid scheme (TLS to a cluster): the failure is the
     * connection's, not the URL's */
    snprintf(url, sizeof url, "https://127.0.0.1:%d/", lport);
    assert_int_equal(http_Get(url, NULL, WAIT_MS, &r), SP_ERR_UNAVAILABLE);
    /* something listens but never answers: the deadline ends the wait */
    lfd = listen_Loopback(&lport);
    assert_true(lfd >= 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", lport);
    assert_int_equal(http_Post(url, "t", NULL, "{}", 2, 200, &r), SP_ERR_TIMEOUT);
    assert_null(r.body);
    close(lfd);
    http_CloseCached();
}

static void test_trickling_server_deadline(void **state)
{
    (void)state;
    /* A server that keeps sending, one byte at a time, an answer far longer
     * than the deadline allows: every byte is progress, but the deadline is
     * for the whole call, so the call still ends with SP_ERR_TIMEOUT (and
     * this test ends) instead of following the server. */
    static char text[4096];
    int hl = snprintf(text, sizeof text, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
                      sizeof text);
    memset(text + hl, 'x', sizeof text - (size_t)hl);
    static const script_reply head_first[] = {{text, sizeof text, TRICKLE(5)}};
    /* the same with the trickle inside the status line and headers */
    static const script_reply in_head[] = {
        {"HTTP/1.1 200 OK\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "\r\nContent-Length: 0\r\n\r\n", 0, TRICKLE(20)},
    };
    const script_reply *cases[] = {head_first, in_head};
    for (int i = 0; i < 2; i++) {
        script_server s;
        script_Start(&s, cases[i], 1);
        char url[128];
        url_Of(&s, "/", url, sizeof url);
        http_response r;
        assert_int_equal(http_Post(url, "t", NULL, "{}", 2, 300, &r), SP_ERR_TIMEOUT);
        assert_null(r.body);
        script_Join(&s);
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    http_response r;
    const char *bad[] = {
        "ftp://127.0.0.1/", "file:///etc/passwd", "http://", "http://:80/",
        "http://127.0.0.1:0/", "http://127.0.0.1:65536/", "http://127.0.0.1:8x/",
        "http://host name/", "http://127.0.0.1/a b", "http://user@127.0.0.1/",
        "http://[::1/", "127.0.0.1:80", NULL,
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(http_Get(bad[i], NULL, WAIT_MS, &r), SP_ERR_INVALID);
    /* header injection through the token or content type is refused */
    assert_int_equal(http_Post("http://127.0.0.1:1/", "a\r\nX-Evil: 1", NULL, "{}", 2, WAIT_MS, &r),
                     SP_ERR_INVALID);
    assert_int_equal(http_Post("http://127.0.0.1:1/", NULL, "text/x\r\nX: 1", "{}", 2, WAIT_MS, &r),
                     SP_ERR_INVALID);
    assert_int_equal(http_Get("http://127.0.0.1:1/", NULL, 0, &r), SP_ERR_INVALID);
    assert_int_equal(http_Post("http://127.0.0.1:1/", NULL, NULL, NULL, 5, WAIT_MS, &r),
                     SP_ERR_INVALID);
    http_ResponseFree(&r); /* safe on an empty response */
    http_ResponseFree(NULL);
}

static void test_ipv6_literal(void **state)
{
    (void)state;
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (fd >= 0)
            close(fd);
        skip(); /* no IPv6 loopback in this sandbox */
    }
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    script_server s;
    static const script_reply replies[] = {{OK_REPLY(2) "v6", 0, 1}};
    memset(&s, 0, sizeof s);
    s.replies = replies;
    s.nreplies = 1;
    s.lfd = fd;
    s.port = ntohs(a.sin6_port);
    assert_int_equal(pthread_create(&s.th, NULL, script_Run, &s), 0);
    char url[128];
    snprintf(url, sizeof url, "http://[::1]:%d/", s.port);
    http_response r;
    assert_int_equal(http_Get(url, NULL, WAIT_MS, &r), SP_OK);
    assert_string_equal(r.body, "v6");
    http_ResponseFree(&r);
    script_Join(&s);
    assert_non_null(strstr(s.last_req, "\r\nHost: [::1]:"));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_bytes),
        cmocka_unit_test(test_chunked_and_interim),
        cmocka_unit_test(test_body_until_close_and_errors_status),
        cmocka_unit_test(test_large_body),
        cmocka_unit_test(test_keepalive_reuse),
        cmocka_unit_test(test_reconnect_after_server_close),
        cmocka_unit_test(test_broken_responses),
        cmocka_unit_test(test_connect_failures),
        cmocka_unit_test(test_trickling_server_deadline),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_ipv6_literal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
