/* ctest-lock: machine (trains, or times a server) */
/* ctest-label: unit (starts no server) */
/* test_guard.c - the runtime against slow and malformed clients: a crowd of
 * slow-loris connections neither locks out /healthz nor outlives the header
 * deadline (however steadily it trickles), one address cannot take every
 * connection, a trickled body is cut at the body deadline, and a
 * Content-Length libmicrohttpd refuses gets one clean JSON answer.
 *
 * Each test starts its own server; the one that forks does so before any MHD
 * thread exists in this process. */
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "fixture.h"
#include "raw_http.h"
#include "runtime/runtime.h"

#define TOKEN "guard-token"

static spStatus echo_Handler(const rt_request *req, cJSON *result, void *ctx)
{
    (void)req;
    (void)ctx;
    cJSON_AddBoolToObject(result, "ok", 1);
    return SP_OK;
}

static const rt_function echo_fn = {.name = "echo", .handler = echo_Handler};

/* /healthz on a fresh connection; returns the status, *ms how long it took. */
static int healthz(int port, int64_t *ms)
{
    const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    raw_resp r;
    int64_t t0 = rt_NowMs();
    int rc = raw_Exchange(port, req, strlen(req), &r);
    *ms = rt_NowMs() - t0;
    int status = rc == 0 ? r.status : 0;
    raw_Free(&r);
    return status;
}

/* ---- slow loris against a function process ---------------------------- */

#define SLOW_CLIENTS 300
#define HEADER_MS 3000

/* A function process (runtime_Main in a child) with a short header deadline. */
static pid_t serve_Main(int port)
{
    pid_t pid = fx_Fork();
    if (pid != 0)
        return pid;
    char sport[16], header[16];
    snprintf(sport, sizeof sport, "%d", port);
    snprintf(header, sizeof header, "%d", HEADER_MS);
    setenv("PORT", sport, 1);
    setenv("SPIRT_BIND", "127.0.0.1", 1);
    setenv("SPIRT_TOKEN", TOKEN, 1);
    setenv("SPIRT_HEADER_TIMEOUT_MS", header, 1);
    unsetenv("SPIRT_TOKEN_FILE");
    unsetenv("SPIRT_AUTH");
    char *argv[] = {"spirt-fn-echo", NULL};
    _exit(runtime_Main(&echo_fn, 1, argv));
}

static void slow_loris_neither_locks_out_nor_lasts(void **state)
{
    (void)state;
    int port = fx_FreePort();
    pid_t pid = serve_Main(port);
    assert_true(pid > 0);
    assert_int_equal(fx_WaitPort(port, 5000), 0);

    static int fds[SLOW_CLIENTS];
    const char *start = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < SLOW_CLIENTS; i++) {
        fds[i] = raw_Connect(port);
        assert_true(fds[i] >= 0);
        assert_int_equal(raw_Send(fds[i], start, strlen(start)), 0);
    }
    int64_t t0 = rt_NowMs(), worst = 0;
    int checks = 0;
    /* One more header line on every connection each 500 ms: each line would
     * restart an idle timeout. Meanwhile /healthz must answer at once. (The
     * first look comes after 500 ms: the crowd is in by then, not queued.) */
    while (rt_NowMs() - t0 < HEADER_MS + 1500) {
        usleep(500000);
        for (int i = 0; i < SLOW_CLIENTS; i++)
            raw_Send(fds[i], "X-Slow: 1\r\n", 11); /* fails once the server cut it */
        if (rt_NowMs() - t0 < HEADER_MS - 500) {
            int64_t ms;
            assert_int_equal(healthz(port, &ms), 200);
            if (ms > worst)
                worst = ms;
            checks++;
            /* ... and the slow connections really are all still open */
            int open = 0;
            for (int i = 0; i < SLOW_CLIENTS; i++) {
                struct pollfd p = {.fd = fds[i], .events = POLLIN};
                open += poll(&p, 1, 0) == 0;
            }
            assert_int_equal(open, SLOW_CLIENTS);
        }
    }
    print_message("%d slow connections: /healthz answered %d times, slowest in %lld ms\n",
                  SLOW_CLIENTS, checks, (long long)worst);
    assert_true(checks >= 3);
    assert_true(worst <= 1000);
    /* Past the header deadline every one of them has been closed. */
    int closed = 0;
    for (int i = 0; i < SLOW_CLIENTS; i++) {
        closed += raw_Closed(fds[i], 2000);
        close(fds[i]);
    }
    assert_int_equal(closed, SLOW_CLIENTS);
    int64_t ms;
    assert_int_equal(healthz(port, &ms), 200);

    kill(pid, SIGTERM);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* ---- in-process servers ------------------------------------------------ */

static rt_server *start(const rt_options *o, int *port)
{
    rt_server *s = NULL;
    rt_options opt = *o;
    opt.bind = "127.0.0.1";
    opt.token = TOKEN;
    assert_int_equal(runtime_Start(&echo_fn, &opt, &s, port), SP_OK);
    return s;
}

static void one_address_cannot_take_every_connection(void **state)
{
    (void)state;
    int port;
    rt_server *s = start(&(rt_options){.max_per_ip = 20}, &port);
    /* Another host (a second loopback address) opens 30 connections and
     * sends half a request on each: 20 are kept, the rest closed at once. */
    int fds[30], closed = 0;
    for (int i = 0; i < 30; i++) {
        fds[i] = raw_ConnectFrom(port, "127.0.0.2");
        assert_true(fds[i] >= 0);
        raw_Send(fds[i], "GET /healthz HTTP/1.1\r\n", 23);
    }
    for (int i = 0; i < 30; i++)
        closed += raw_Closed(fds[i], 100);
    assert_int_equal(closed, 10);
    int64_t ms;
    assert_int_equal(healthz(port, &ms), 200); /* from 127.0.0.1 */
    for (int i = 0; i < 30; i++)
        close(fds[i]);
    runtime_Stop(s);
}

static void trickled_body_is_cut_at_the_body_deadline(void **state)
{
    (void)state;
    int port;
    rt_server *s = start(&(rt_options){.body_timeout_ms = 1500}, &port);
    int fd = raw_Connect(port);
    assert_true(fd >= 0);
    const char *head = "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
                       "\r\nContent-Length: 100\r\n\r\n{";
    assert_int_equal(raw_Send(fd, head, strlen(head)), 0);
    int64_t t0 = rt_NowMs();
    int sent = 1;
    /* One byte every 200 ms would take 20 s for the whole body. */
    while (rt_NowMs() - t0 < 5000 && raw_Send(fd, " ", 1) == 0 && !raw_Closed(fd, 200))
        sent++;
    int64_t took = rt_NowMs() - t0;
    close(fd);
    print_message("body cut after %lld ms and %d of 100 bytes\n", (long long)took, sent);
    assert_true(took >= 1400 && took < 4000);
    assert_true(sent < 100);
    /* a prompt request on a new connection is still served */
    fd = raw_Connect(port);
    const char *ok = "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
                     "\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    raw_resp r;
    assert_int_equal(raw_Send(fd, ok, strlen(ok)), 0);
    raw_Read(fd, &r);
    close(fd);
    assert_int_equal(r.status, 200);
    raw_Free(&r);
    runtime_Stop(s);
}

/* Occurrences of needle in haystack. */
static int count(const char *haystack, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(haystack, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void refused_content_length_is_answered_once(void **state)
{
    (void)state;
    int port;
    rt_server *s = start(&(rt_options){0}, &port);
    const struct {
        const char *value;
        int status;
        const char *code;
    } cases[] = {
        {"12abc", 400, "invalid"},
        {"-1", 400, "invalid"},
        {"", 400, "invalid"},
        {"0x10", 400, "invalid"},
        {"99999999999999999999999", 413, "too_large"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char req[256];
        int n = snprintf(req, sizeof req,
                         "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
                         "\r\nContent-Length: %s\r\n\r\n{}",
                         cases[i].value);
        raw_resp r;
        assert_int_equal(raw_Exchange(port, req, (size_t)n, &r), 0);
        if (count(r.data, "HTTP/1.") != 1 || r.status != cases[i].status)
            print_error("Content-Length \"%s\" was answered with:\n%s\n", cases[i].value, r.data);
        assert_int_equal(count(r.data, "HTTP/1."), 1);
        assert_int_equal(r.status, cases[i].status);
        char v[64];
        assert_non_null(raw_Header(&r, "Connection", v, sizeof v));
        assert_string_equal(v, "close");
        assert_non_null(raw_Header(&r, "Content-Type", v, sizeof v));
        assert_string_equal(v, "application/json");
        cJSON *j = cJSON_Parse(r.body);
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(j, "error"), "code");
        assert_true(cJSON_IsString(code));
        assert_string_equal(code->valuestring, cases[i].code);
        cJSON_Delete(j);
        raw_Free(&r);
    }
    /* the server goes on serving */
    int64_t ms;
    assert_int_equal(healthz(port, &ms), 200);
    runtime_Stop(s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(slow_loris_neither_locks_out_nor_lasts),
        cmocka_unit_test(one_address_cannot_take_every_connection),
        cmocka_unit_test(trickled_body_is_cut_at_the_body_deadline),
        cmocka_unit_test(refused_content_length_is_answered_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
