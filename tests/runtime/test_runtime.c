/* ctest-label: unit (starts no server) */
/* test_runtime.c - the function runtime over real loopback HTTP: the real
 * client for ordinary calls, raw sockets for exact and hostile bytes, and a
 * forked copy of this process running runtime_Main for SIGTERM and argv/env.
 *
 * Each test starts its own server, so no MHD thread is alive when a test
 * forks (a child of a multi-threaded process may inherit a held lock). */
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
#include <sys/prctl.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "fixture.h"
#include "raw_http.h"
#include "runtime/http_client.h"
#include "runtime/runtime.h"

#define TOKEN "s3cret-token"
#define MAX_BODY 4096
#define TIMEOUT_MS 5000

/* ---- the function under test: sums "a" and "b", or fails on request ---- */

typedef struct {
    atomic_int ready;
} sum_ctx;

static spStatus sum_Handler(const rt_request *req, cJSON *result, void *ctx)
{
    (void)ctx;
    const cJSON *fail = cJSON_GetObjectItemCaseSensitive(req->body, "fail");
    if (cJSON_IsString(fail)) {
        const char *f = fail->valuestring;
        if (!strcmp(f, "conflict"))
            return sp_Error(SP_ERR_CONFLICT, "iteration 3 was already applied");
        if (!strcmp(f, "unavailable"))
            return sp_Error(SP_ERR_UNAVAILABLE, "redis 10.0.0.9:6379 is down");
        if (!strcmp(f, "timeout"))
            return sp_Error(SP_ERR_TIMEOUT, "peers did not report in time");
        if (!strcmp(f, "silent"))
            return SP_ERR_IO; /* forgot sp_Error: the runtime still says something */
        if (!strcmp(f, "not-object")) {
            result->type = cJSON_Array; /* a buggy handler breaking the contract */
            return SP_OK;
        }
    }
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(req->body, "a");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(req->body, "b");
    if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b))
        return sp_Error(SP_ERR_INVALID, "fields a and b must be numbers");
    cJSON_AddNumberToObject(result, "sum", a->valuedouble + b->valuedouble);
    cJSON_AddNumberToObject(result, "deadline_left_ms", (double)(req->deadline_ms - rt_NowMs()));
    if (req->ce_id)
        cJSON_AddStringToObject(result, "ce_id", req->ce_id);
    if (req->ce_type)
        cJSON_AddStringToObject(result, "ce_type", req->ce_type);
    if (req->ce_source)
        cJSON_AddStringToObject(result, "ce_source", req->ce_source);
    return SP_OK;
}

static spStatus sum_Ready(void *ctx)
{
    sum_ctx *c = ctx;
    if (atomic_load(&c->ready))
        return SP_OK;
    return sp_Error(SP_ERR_UNAVAILABLE, "redis 127.0.0.1:1 does not answer");
}

typedef struct {
    sum_ctx ctx;
    rt_function fn;
    rt_server *srv;
    int port;
    char url[64];
} fixture;

static int start_Server(fixture *f, int auth_off)
{
    atomic_init(&f->ctx.ready, 1);
    f->fn = (rt_function){.name = "sum", .handler = sum_Handler, .ready = sum_Ready,
                          .ctx = &f->ctx};
    rt_options opt = {.port = 0, .bind = "127.0.0.1", .token = auth_off ? NULL : TOKEN,
                      .auth_off = auth_off, .max_body = MAX_BODY, .timeout_ms = TIMEOUT_MS,
                      .threads = 8};
    if (runtime_Start(&f->fn, &opt, &f->srv, &f->port) != SP_OK)
        return -1;
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/", f->port);
    return 0;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || start_Server(f, 0) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    http_CloseCached();
    runtime_Stop(f->srv);
    free(f);
    return 0;
}

/* ---- helpers ---- */

static void url_For(const fixture *f, const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "http://127.0.0.1:%d%s", f->port, path);
}

/* POSTs body with the given token; returns the status, body parsed in *json. */
static int post(const fixture *f, const char *token, const char *body, cJSON **json)
{
    http_response r;
    spStatus st = http_Post(f->url, token, "application/json", body, strlen(body), TIMEOUT_MS, &r);
    assert_int_equal(st, SP_OK);
    if (json)
        *json = cJSON_Parse(r.body);
    int status = r.status;
    http_ResponseFree(&r);
    return status;
}

static void assert_Error(cJSON *json, const char *code)
{
    assert_non_null(json);
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(json, "error");
    assert_true(cJSON_IsObject(err));
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(err, "code");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(err, "message");
    assert_true(cJSON_IsString(c));
    assert_true(cJSON_IsString(m));
    assert_true(m->valuestring[0] != '\0');
    assert_string_equal(c->valuestring, code);
}

static const char *err_Message(cJSON *json)
{
    return cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(json, "error"),
                                            "message")->valuestring;
}

/* Raw request on a fresh connection; returns the parsed JSON body (or NULL). */
static cJSON *raw_Json(const fixture *f, const char *req, size_t n, raw_resp *r)
{
    assert_int_equal(raw_Exchange(f->port, req, n, r), 0);
    return cJSON_Parse(r->body);
}

/* ---- invocation ---- */

static void test_invoke_ok(void **state)
{
    fixture *f = *state;
    cJSON *j;
    assert_int_equal(post(f, TOKEN, "{\"a\": 2, \"b\": 40.5}", &j), 200);
    assert_non_null(j);
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "sum")->valuedouble == 42.5);
    /* the handler saw a deadline in the future, no later than the timeout */
    double left = cJSON_GetObjectItemCaseSensitive(j, "deadline_left_ms")->valuedouble;
    assert_true(left > 0 && left <= TIMEOUT_MS);
    cJSON_Delete(j);

    /* the handler's object is returned as-is; timing goes in a header */
    raw_resp r;
    char req[512], v[64];
    const char *body = "{\"a\":1,\"b\":2}";
    int n = snprintf(req, sizeof req,
                     "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
                     "\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     strlen(body), body);
    j = raw_Json(f, req, (size_t)n, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(raw_Header(&r, "X-Spirt-Elapsed-Ms", v, sizeof v));
    assert_true(atoi(v) >= 0);
    assert_non_null(raw_Header(&r, "Content-Type", v, sizeof v));
    assert_string_equal(v, "application/json");
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "elapsed_ms"));
    cJSON_Delete(j);
    raw_Free(&r);
}

static void test_auth(void **state)
{
    fixture *f = *state;
    cJSON *j;
    assert_int_equal(post(f, NULL, "{\"a\":1,\"b\":2}", &j), 401);
    assert_Error(j, "unauthenticated");
    cJSON_Delete(j);
    /* wrong, a prefix of, and an extension of the right token */
    const char *bad[] = {"wrong", "s3cret-toke", "s3cret-token2", "S3CRET-TOKEN"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(post(f, bad[i], "{\"a\":1,\"b\":2}", &j), 401);
        assert_Error(j, "unauthenticated");
        cJSON_Delete(j);
    }
    /* another scheme carrying the right secret is still refused */
    raw_resp r;
    const char *basic = "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic " TOKEN
                        "\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    j = raw_Json(f, basic, strlen(basic), &r);
    assert_int_equal(r.status, 401);
    assert_Error(j, "unauthenticated");
    cJSON_Delete(j);
    raw_Free(&r);
    /* the bearer scheme name is case-insensitive (RFC 7235) */
    const char *lower = "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: bearer " TOKEN
                        "\r\nContent-Length: 13\r\nConnection: close\r\n\r\n{\"a\":1,\"b\":1}";
    j = raw_Json(f, lower, strlen(lower), &r);
    assert_int_equal(r.status, 200);
    cJSON_Delete(j);
    raw_Free(&r);
}

static void test_auth_off(void **state)
{
    (void)state;
    fixture f = {0};
    assert_int_equal(start_Server(&f, 1), 0);
    cJSON *j;
    assert_int_equal(post(&f, NULL, "{\"a\":1,\"b\":2}", &j), 200);
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "sum")->valuedouble == 3);
    cJSON_Delete(j);
    http_CloseCached();
    runtime_Stop(f.srv);

    /* without a token and without the explicit opt-out, nothing starts */
    rt_options opt = {.bind = "127.0.0.1"};
    rt_server *s = NULL;
    int port;
    assert_int_equal(runtime_Start(&f.fn, &opt, &s, &port), SP_ERR_INVALID);
    assert_null(s);
    opt.token = "";
    assert_int_equal(runtime_Start(&f.fn, &opt, &s, &port), SP_ERR_INVALID);
    opt = (rt_options){.bind = "not-an-ip", .token = TOKEN};
    assert_int_equal(runtime_Start(&f.fn, &opt, &s, &port), SP_ERR_INVALID);
    opt = (rt_options){.port = 70000, .token = TOKEN};
    assert_int_equal(runtime_Start(&f.fn, &opt, &s, &port), SP_ERR_INVALID);
}

static void test_bad_bodies(void **state)
{
    fixture *f = *state;
    const char *bodies[] = {
        "{\"a\":1,",          /* truncated */
        "{a:1}",              /* not JSON */
        "",                   /* empty */
        "[1,2]",              /* valid JSON, not an object */
        "42",
        "\"text\"",
        "null",
        "{\"a\":1,\"b\":2} {}", /* trailing data */
        "{\"a\":1,\"b\":2}x",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        cJSON *j;
        assert_int_equal(post(f, TOKEN, bodies[i], &j), 400);
        assert_Error(j, "invalid");
        cJSON_Delete(j);
    }
    /* surrounding whitespace is fine */
    assert_int_equal(post(f, TOKEN, " \n{\"a\":1,\"b\":2}\r\n ", NULL), 200);
    /* a NUL inside the body ends nothing early: the length rules */
    raw_resp r;
    const char req[] = "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
                       "\r\nContent-Length: 16\r\nConnection: close\r\n\r\n{\"a\":1,\"b\":2}\0xy";
    cJSON *j = raw_Json(f, req, sizeof req - 1, &r);
    assert_int_equal(r.status, 400);
    assert_Error(j, "invalid");
    cJSON_Delete(j);
    raw_Free(&r);
}

static void test_handler_errors(void **state)
{
    fixture *f = *state;
    struct {
        const char *body;
        int status;
        const char *code;
        const char *message;
    } cases[] = {
        {"{\"a\":\"x\",\"b\":2}", 400, "invalid", "fields a and b must be numbers"},
        {"{\"fail\":\"conflict\"}", 409, "conflict", "iteration 3 was already applied"},
        {"{\"fail\":\"unavailable\"}", 503, "unavailable", "redis 10.0.0.9:6379 is down"},
        {"{\"fail\":\"timeout\"}", 503, "timeout", "peers did not report in time"},
        {"{\"fail\":\"silent\"}", 500, "io", NULL},
        {"{\"fail\":\"not-object\"}", 500, "internal", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cJSON *j;
        assert_int_equal(post(f, TOKEN, cases[i].body, &j), cases[i].status);
        assert_Error(j, cases[i].code);
        if (cases[i].message)
            assert_string_equal(err_Message(j), cases[i].message);
        cJSON_Delete(j);
    }
    /* an error on one request leaves the next one unaffected */
    assert_int_equal(post(f, TOKEN, "{\"a\":1,\"b\":2}", NULL), 200);
}

static void test_status_mapping(void **state)
{
    (void)state;
    assert_int_equal(rt_HttpStatus(SP_OK), 200);
    assert_int_equal(rt_HttpStatus(SP_ERR_INVALID), 400);
    assert_int_equal(rt_HttpStatus(SP_ERR_FORMAT), 400);
    assert_int_equal(rt_HttpStatus(SP_ERR_AUTH), 401);
    assert_int_equal(rt_HttpStatus(SP_ERR_NOT_FOUND), 404);
    assert_int_equal(rt_HttpStatus(SP_ERR_CONFLICT), 409);
    assert_int_equal(rt_HttpStatus(SP_ERR_TOO_LARGE), 413);
    assert_int_equal(rt_HttpStatus(SP_ERR_UNAVAILABLE), 503);
    assert_int_equal(rt_HttpStatus(SP_ERR_TIMEOUT), 503);
    assert_int_equal(rt_HttpStatus(SP_ERR_IO), 500);
    assert_int_equal(rt_HttpStatus(SP_ERR_NOMEM), 500);
    assert_int_equal(rt_HttpStatus(SP_ERR_INTERNAL), 500);
}

/* ---- body limits ---- */

static void test_too_large_content_length(void **state)
{
    fixture *f = *state;
    /* Only the headers are sent: the 413 must come without waiting for a
     * body (the read would time out otherwise). */
    char req[256];
    int n = snprintf(req, sizeof req,
                     "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
                     "\r\nContent-Length: %d\r\n\r\n",
                     MAX_BODY + 1);
    raw_resp r;
    cJSON *j = raw_Json(f, req, (size_t)n, &r);
    assert_int_equal(r.status, 413);
    assert_Error(j, "too_large");
    cJSON_Delete(j);
    raw_Free(&r);

    /* The real client sending a big body gets the 413 too, although the
     * server answered from the headers and closed while it was sending. */
    size_t big = (size_t)1 << 20;
    char *blob = malloc(big);
    assert_non_null(blob);
    memset(blob, ' ', big);
    blob[0] = '{';
    blob[big - 1] = '}';
    http_response hr;
    assert_int_equal(http_Post(f->url, TOKEN, "application/json", blob, big, TIMEOUT_MS, &hr),
                     SP_OK);
    assert_int_equal(hr.status, 413);
    j = cJSON_Parse(hr.body);
    assert_Error(j, "too_large");
    cJSON_Delete(j);
    http_ResponseFree(&hr);
    free(blob);

    /* exactly the limit is accepted */
    char *body = malloc(MAX_BODY + 1);
    assert_non_null(body);
    memset(body, ' ', MAX_BODY);
    memcpy(body, "{\"a\":1,\"b\":2}", 13);
    body[MAX_BODY] = '\0';
    assert_int_equal(post(f, TOKEN, body, NULL), 200);
    body[MAX_BODY - 1] = '\0';
    assert_int_equal(post(f, TOKEN, body, NULL), 200);
    free(body);
}

static void test_too_large_chunked(void **state)
{
    fixture *f = *state;
    /* No length up front: the running total gives it away. Three chunks of
     * 2000 bytes go over 4096; the rest is dropped unread and the upload
     * answered with 413 when it ends. */
    char chunk[2000 + 16];
    int n = snprintf(chunk, sizeof chunk, "%x\r\n", 2000);
    memset(chunk + n, ' ', 2000);
    memcpy(chunk + n + 2000, "\r\n", 2);
    size_t clen = (size_t)n + 2002;
    const char *head = "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
                       "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    int fd = raw_Connect(f->port);
    assert_true(fd >= 0);
    assert_int_equal(raw_Send(fd, head, strlen(head)), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(raw_Send(fd, chunk, clen), 0);
    assert_int_equal(raw_Send(fd, "0\r\n\r\n", 5), 0);
    raw_resp r;
    raw_Read(fd, &r);
    close(fd);
    assert_int_equal(r.status, 413);
    cJSON *j = cJSON_Parse(r.body);
    assert_Error(j, "too_large");
    cJSON_Delete(j);
    raw_Free(&r);

    /* An upload that never ends is cut off: the server closes the
     * connection rather than reading forever. */
    fd = raw_Connect(f->port);
    assert_true(fd >= 0);
    assert_int_equal(raw_Send(fd, head, strlen(head)), 0);
    for (int i = 0; i < 64 && raw_Send(fd, chunk, clen) == 0; i++)
        ;
    raw_Read(fd, &r);
    close(fd);
    assert_true(r.closed);
    assert_true(r.status == 0 || r.status == 413);
    raw_Free(&r);

    /* a chunked upload under the limit works */
    const char *ok = "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
                     "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                     "6\r\n{\"a\":1\r\n7\r\n,\"b\":2}\r\n0\r\n\r\n";
    j = raw_Json(f, ok, strlen(ok), &r);
    assert_int_equal(r.status, 200);
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "sum")->valuedouble == 3);
    cJSON_Delete(j);
    raw_Free(&r);
    /* and the server is still serving */
    assert_int_equal(post(f, TOKEN, "{\"a\":1,\"b\":2}", NULL), 200);
}

/* ---- CloudEvents ---- */

static void test_cloudevents(void **state)
{
    fixture *f = *state;
    const char *body = "{\"a\":5,\"b\":6}";
    char req[512];
    int n = snprintf(req, sizeof req,
                     "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
                     "\r\nce-id: evt-17\r\nce-type: dev.spirt.step\r\n"
                     "ce-source: /spirt/job1\r\nce-specversion: 1.0\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     strlen(body), body);
    raw_resp r;
    cJSON *j = raw_Json(f, req, (size_t)n, &r);
    assert_int_equal(r.status, 200);
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "sum")->valuedouble == 11);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "ce_id")->valuestring, "evt-17");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "ce_type")->valuestring,
                        "dev.spirt.step");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "ce_source")->valuestring,
                        "/spirt/job1");
    cJSON_Delete(j);
    raw_Free(&r);

    /* plain requests have no CloudEvents attributes */
    assert_int_equal(post(f, TOKEN, body, &j), 200);
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "ce_id"));
    cJSON_Delete(j);

    /* another spec version is refused */
    n = snprintf(req, sizeof req,
                 "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
                 "\r\nce-id: 1\r\nce-type: t\r\nce-source: s\r\nce-specversion: 0.3\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                 strlen(body), body);
    j = raw_Json(f, req, (size_t)n, &r);
    assert_int_equal(r.status, 400);
    assert_Error(j, "invalid");
    cJSON_Delete(j);
    raw_Free(&r);
}

/* ---- probes, metrics, routing ---- */

static int get(const fixture *f, const char *path, cJSON **json, char **text)
{
    char url[128];
    url_For(f, path, url, sizeof url);
    http_response r;
    assert_int_equal(http_Get(url, NULL, TIMEOUT_MS, &r), SP_OK);
    if (json)
        *json = cJSON_Parse(r.body);
    if (text)
        *text = strdup(r.body);
    int status = r.status;
    http_ResponseFree(&r);
    return status;
}

static void test_health_and_ready(void **state)
{
    fixture *f = *state;
    cJSON *j;
    assert_int_equal(get(f, "/healthz", &j, NULL), 200);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "status")->valuestring, "ok");
    cJSON_Delete(j);
    assert_int_equal(get(f, "/readyz", &j, NULL), 200);
    cJSON_Delete(j);

    const char *probe = "GET / HTTP/1.1\r\nHost: x\r\nK-Kubelet-Probe: queue\r\n"
                        "Connection: close\r\n\r\n";
    raw_resp r;
    j = raw_Json(f, probe, strlen(probe), &r);
    assert_int_equal(r.status, 200);
    cJSON_Delete(j);
    raw_Free(&r);

    atomic_store(&f->ctx.ready, 0);
    assert_int_equal(get(f, "/readyz", &j, NULL), 503);
    assert_Error(j, "unavailable");
    assert_string_equal(err_Message(j), "redis 127.0.0.1:1 does not answer");
    cJSON_Delete(j);
    j = raw_Json(f, probe, strlen(probe), &r);
    assert_int_equal(r.status, 503);
    cJSON_Delete(j);
    raw_Free(&r);
    /* alive though not ready: liveness must not restart a pod waiting on Redis */
    assert_int_equal(get(f, "/healthz", NULL, NULL), 200);

    atomic_store(&f->ctx.ready, 1);
    assert_int_equal(get(f, "/readyz", NULL, NULL), 200);
}

/* The value of the sample whose name and labels are exactly `series`. */
static double metric(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (!strncmp(p, series, n) && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    }
    return -1;
}

static void test_metrics(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 3; i++)
        assert_int_equal(post(f, TOKEN, "{\"a\":1,\"b\":2}", NULL), 200);
    assert_int_equal(post(f, TOKEN, "not json", NULL), 400);
    assert_int_equal(post(f, TOKEN, "{}", NULL), 400);
    assert_int_equal(post(f, "nope", "{}", NULL), 401);
    assert_int_equal(post(f, TOKEN, "{\"fail\":\"conflict\"}", NULL), 409);
    /* probes and scrapes are not invocations */
    assert_int_equal(get(f, "/healthz", NULL, NULL), 200);
    assert_int_equal(get(f, "/nowhere", NULL, NULL), 404);

    char *text;
    assert_int_equal(get(f, "/metrics", NULL, &text), 200);
    assert_true(metric(text, "spirt_requests_total{function=\"sum\",code=\"200\"}") == 3);
    assert_true(metric(text, "spirt_requests_total{function=\"sum\",code=\"400\"}") == 2);
    assert_true(metric(text, "spirt_requests_total{function=\"sum\",code=\"401\"}") == 1);
    assert_true(metric(text, "spirt_requests_total{function=\"sum\",code=\"409\"}") == 1);
    assert_true(metric(text, "spirt_requests_total{function=\"sum\",code=\"404\"}") == -1);
    assert_true(metric(text, "spirt_request_duration_seconds_count{function=\"sum\"}") == 7);
    assert_true(
        metric(text, "spirt_request_duration_seconds_bucket{function=\"sum\",le=\"+Inf\"}") == 7);
    /* buckets are cumulative */
    const char *b_lo = "spirt_request_duration_seconds_bucket{function=\"sum\",le=\"0.001\"}";
    const char *b_hi = "spirt_request_duration_seconds_bucket{function=\"sum\",le=\"1\"}";
    assert_true(metric(text, b_lo) <= metric(text, b_hi));
    assert_true(metric(text, "spirt_request_duration_seconds_sum{function=\"sum\"}") >= 0);
    /* bytes in: the bodies of the six invocations whose bodies were read */
    double in = (double)(3 * strlen("{\"a\":1,\"b\":2}") + strlen("not json") + strlen("{}") +
                         strlen("{\"fail\":\"conflict\"}"));
    assert_true(metric(text, "spirt_bytes_in_total{function=\"sum\"}") == in);
    assert_true(metric(text, "spirt_bytes_out_total{function=\"sum\"}") > 0);
    assert_true(metric(text, "spirt_inflight_requests{function=\"sum\"}") == 0);
    assert_non_null(strstr(text, "# TYPE spirt_request_duration_seconds histogram"));
    free(text);
}

static void test_routes(void **state)
{
    fixture *f = *state;
    cJSON *j;
    assert_int_equal(get(f, "/nope", &j, NULL), 404);
    assert_Error(j, "not_found");
    cJSON_Delete(j);
    /* GET / without the probe header is not an invocation */
    assert_int_equal(get(f, "/", &j, NULL), 405);
    assert_Error(j, "method_not_allowed");
    cJSON_Delete(j);
    char url[128];
    url_For(f, "/healthz", url, sizeof url);
    http_response r;
    assert_int_equal(http_Post(url, TOKEN, NULL, "{}", 2, TIMEOUT_MS, &r), SP_OK);
    assert_int_equal(r.status, 405);
    http_ResponseFree(&r);

    raw_resp rr;
    char v[64];
    const char *del = "DELETE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    j = raw_Json(f, del, strlen(del), &rr);
    assert_int_equal(rr.status, 405);
    assert_non_null(raw_Header(&rr, "Allow", v, sizeof v));
    assert_string_equal(v, "POST");
    assert_Error(j, "method_not_allowed");
    cJSON_Delete(j);
    raw_Free(&rr);
    /* a query string does not change the route */
    assert_int_equal(get(f, "/healthz?verbose=1", NULL, NULL), 200);
}

/* ---- hostile clients ---- */

static void test_hostile_clients(void **state)
{
    fixture *f = *state;
    raw_resp r;
    /* not HTTP at all */
    const char *junk = "\x16\x03\x01 garbage that is not a request\r\n\r\n";
    raw_Exchange(f->port, junk, strlen(junk), &r);
    assert_true(r.status == 0 || (r.status >= 400 && r.status < 500));
    raw_Free(&r);
    /* a header far over MHD's memory limit */
    size_t big = 256 * 1024;
    char *huge = malloc(big + 128);
    assert_non_null(huge);
    int n = snprintf(huge, 128, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(huge + n, 'a', big);
    memcpy(huge + n + big, "\r\n\r\n", 4);
    raw_Exchange(f->port, huge, (size_t)n + big + 4, &r);
    assert_true(r.status == 0 || (r.status >= 400 && r.status < 500));
    raw_Free(&r);
    free(huge);
    /* a client that announces a body and vanishes halfway */
    for (int i = 0; i < 5; i++) {
        int fd = raw_Connect(f->port);
        assert_true(fd >= 0);
        const char *head = "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
                           "\r\nContent-Length: 1000\r\n\r\n{\"a\":1,";
        assert_int_equal(raw_Send(fd, head, strlen(head)), 0);
        close(fd);
    }
    /* the server is still fine, and the abandoned calls are no longer in flight */
    assert_int_equal(post(f, TOKEN, "{\"a\":1,\"b\":2}", NULL), 200);
    int64_t until = rt_NowMs() + TIMEOUT_MS;
    double inflight = -1;
    while (rt_NowMs() < until) {
        char *text;
        assert_int_equal(get(f, "/metrics", NULL, &text), 200);
        inflight = metric(text, "spirt_inflight_requests{function=\"sum\"}");
        free(text);
        if (inflight == 0)
            break;
        usleep(20000);
    }
    assert_true(inflight == 0);
}

/* ---- concurrency ---- */

#define CONC_THREADS 8
#define CONC_REQUESTS 50

typedef struct {
    const fixture *f;
    int id;
    int ok;
} conc_arg;

static void *conc_Worker(void *p)
{
    conc_arg *a = p;
    for (int i = 0; i < CONC_REQUESTS; i++) {
        char body[64];
        snprintf(body, sizeof body, "{\"a\":%d,\"b\":%d}", a->id * 1000, i);
        http_response r;
        if (http_Post(a->f->url, TOKEN, "application/json", body, strlen(body), TIMEOUT_MS, &r) !=
            SP_OK)
            continue;
        cJSON *j = cJSON_Parse(r.body);
        const cJSON *sum = cJSON_GetObjectItemCaseSensitive(j, "sum");
        if (r.status == 200 && cJSON_IsNumber(sum) && sum->valuedouble == a->id * 1000 + i)
            a->ok++;
        cJSON_Delete(j);
        http_ResponseFree(&r);
    }
    http_CloseCached();
    return NULL;
}

static void test_concurrent(void **state)
{
    fixture *f = *state;
    pthread_t th[CONC_THREADS];
    conc_arg args[CONC_THREADS];
    for (int t = 0; t < CONC_THREADS; t++) {
        args[t] = (conc_arg){.f = f, .id = t};
        assert_int_equal(pthread_create(&th[t], NULL, conc_Worker, &args[t]), 0);
    }
    for (int t = 0; t < CONC_THREADS; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(args[t].ok, CONC_REQUESTS);
    }
    char *text;
    assert_int_equal(get(f, "/metrics", NULL, &text), 200);
    assert_true(metric(text, "spirt_requests_total{function=\"sum\",code=\"200\"}") ==
                CONC_THREADS * CONC_REQUESTS);
    free(text);
}

/* ---- runtime_Main in a forked child ---- */

/* Runs runtime_Main(argv) in a child with only `env` set among PORT and
 * SPIRT_*; captures its stdout+stderr. Returns the exit code, -1 if it did
 * not exit within 10 s (then it is killed). */
static int main_Run(char **argv, const char *const *env, char *out, size_t cap)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        close(pfd[0]);
        const char *clear[] = {"PORT", "SPIRT_TOKEN", "SPIRT_TOKEN_FILE", "SPIRT_AUTH",
                               "SPIRT_MAX_BODY", "SPIRT_TIMEOUT_MS", "SPIRT_THREADS",
                               "SPIRT_BIND", "SPIRT_REDIS_PASSWORD", "SPIRT_REDIS_PASSWORD_FILE",
                               "SPIRT_HEADER_TIMEOUT_MS", "SPIRT_BODY_TIMEOUT_MS",
                               "SPIRT_MAX_CONN_PER_IP"};
        for (size_t i = 0; i < sizeof clear / sizeof *clear; i++)
            unsetenv(clear[i]);
        for (int i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        rt_function fn = {.name = "sum", .handler = sum_Handler};
        int argc = 0;
        while (argv[argc])
            argc++;
        int rc = runtime_Main(&fn, argc, argv);
        fflush(NULL); /* _exit skips stdio's buffers */
        _exit(rc);
    }
    close(pfd[1]);
    size_t len = 0;
    int64_t until = rt_NowMs() + 10000;
    for (;;) {
        struct pollfd p = {.fd = pfd[0], .events = POLLIN};
        int left = (int)(until - rt_NowMs());
        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        ssize_t n = read(pfd[0], out + len, cap - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    out[len] = '\0';
    close(pfd[0]);
    int status;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (rt_NowMs() > until) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        usleep(10000);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_main_usage(void **state)
{
    (void)state;
    char out[8192];
    char *help[] = {"spirt-fn-sum", "--help", NULL};
    assert_int_equal(main_Run(help, NULL, out, sizeof out), 0);
    const char *mentions[] = {"--port", "--no-auth", "PORT", "SPIRT_TOKEN", "SPIRT_TOKEN_FILE",
                              "SPIRT_AUTH=off", "SPIRT_MAX_BODY", "SPIRT_TIMEOUT_MS", "SIGTERM",
                              "SPIRT_REDIS_PASSWORD_FILE", "SPIRT_HEADER_TIMEOUT_MS",
                              "SPIRT_BODY_TIMEOUT_MS", "SPIRT_MAX_CONN_PER_IP",
                              "SPIRT_MALLOC_TUNE"};
    for (size_t i = 0; i < sizeof mentions / sizeof *mentions; i++)
        assert_non_null(strstr(out, mentions[i]));

    char *bogus[] = {"spirt-fn-sum", "--bogus", NULL};
    assert_int_equal(main_Run(bogus, NULL, out, sizeof out), 2);
    assert_non_null(strstr(out, "unknown option --bogus"));

    char *plain[] = {"spirt-fn-sum", NULL};
    const char *no_token[] = {"PORT=1", NULL};
    assert_int_equal(main_Run(plain, no_token, out, sizeof out), 2);
    assert_non_null(strstr(out, "refusing to start without a token"));

    char *bad_port[] = {"spirt-fn-sum", "--port", "http", NULL};
    const char *tok[] = {"SPIRT_TOKEN=t", NULL};
    assert_int_equal(main_Run(bad_port, tok, out, sizeof out), 2);
    assert_non_null(strstr(out, "--port"));
    char *port_missing[] = {"spirt-fn-sum", "--port", NULL};
    assert_int_equal(main_Run(port_missing, tok, out, sizeof out), 2);

    const char *bad_env[][4] = {
        {"SPIRT_TOKEN=t", "PORT=99999", NULL},
        {"SPIRT_TOKEN=t", "SPIRT_MAX_BODY=lots", NULL},
        {"SPIRT_TOKEN=t", "SPIRT_TIMEOUT_MS=-5", NULL},
        {"SPIRT_TOKEN_FILE=/nonexistent/spirt-token", NULL, NULL},
        {"SPIRT_TOKEN=t", "SPIRT_TOKEN_FILE=/etc/hostname", NULL},
        {"SPIRT_TOKEN=t", "SPIRT_AUTH=maybe", NULL},
        {"SPIRT_TOKEN=t", "SPIRT_REDIS_PASSWORD_FILE=/nonexistent/spirt-pw", NULL},
        {"SPIRT_TOKEN=t", "SPIRT_REDIS_PASSWORD=p", "SPIRT_REDIS_PASSWORD_FILE=/etc/hostname"},
        {"SPIRT_TOKEN=t", "SPIRT_HEADER_TIMEOUT_MS=0", NULL},
        {"SPIRT_TOKEN=t", "SPIRT_MAX_CONN_PER_IP=many", NULL},
    };
    for (size_t i = 0; i < sizeof bad_env / sizeof *bad_env; i++) {
        assert_int_equal(main_Run(plain, bad_env[i], out, sizeof out), 2);
        assert_non_null(strstr(out, "spirt sum: "));
    }
}

/* A handler that tells the test it started, then waits for its go-ahead:
 * the test controls exactly when the in-flight request finishes. */
typedef struct {
    int entered_fd, release_fd;
} slow_ctx;

static spStatus slow_Handler(const rt_request *req, cJSON *result, void *ctx)
{
    (void)req;
    slow_ctx *s = ctx;
    char ch = 'x';
    if (write(s->entered_fd, &ch, 1) != 1)
        return sp_Error(SP_ERR_IO, "cannot signal the test");
    struct pollfd p = {.fd = s->release_fd, .events = POLLIN};
    if (poll(&p, 1, 10000) != 1 || read(s->release_fd, &ch, 1) != 1)
        return sp_Error(SP_ERR_TIMEOUT, "never released");
    cJSON_AddBoolToObject(result, "slow", 1);
    return SP_OK;
}

static void test_sigterm_drains(void **state)
{
    (void)state;
    int port = fx_FreePort();
    assert_true(port > 0);
    char tokfile[] = "/tmp/spirt-rt-tokenXXXXXX";
    int tfd = mkstemp(tokfile);
    assert_true(tfd >= 0);
    const char *secret = "  drain-token \n"; /* as a mounted Secret might look */
    assert_int_equal(write(tfd, secret, strlen(secret)), (int)strlen(secret));
    close(tfd);
    int entered[2], release[2];
    assert_int_equal(pipe(entered), 0);
    assert_int_equal(pipe(release), 0);

    pid_t parent = getpid();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        close(entered[0]);
        close(release[1]);
        char portbuf[16];
        snprintf(portbuf, sizeof portbuf, "%d", port);
        setenv("PORT", portbuf, 1);
        setenv("SPIRT_TOKEN_FILE", tokfile, 1);
        setenv("SPIRT_BIND", "127.0.0.1", 1);
        setenv("SPIRT_TIMEOUT_MS", "10000", 1);
        unsetenv("SPIRT_TOKEN");
        unsetenv("SPIRT_AUTH");
        slow_ctx sc = {entered[1], release[0]};
        rt_function fn = {.name = "slow", .handler = slow_Handler, .ctx = &sc};
        char *argv[] = {"spirt-fn-slow", NULL};
        _exit(runtime_Main(&fn, 1, argv));
    }
    close(entered[1]);
    close(release[0]);
    assert_int_equal(fx_WaitPort(port, 5000), 0);

    /* one request goes in and blocks in the handler */
    int fd = raw_Connect(port);
    assert_true(fd >= 0);
    const char *req = "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer drain-token\r\n"
                      "Content-Length: 2\r\n\r\n{}";
    assert_int_equal(raw_Send(fd, req, strlen(req)), 0);
    struct pollfd p = {.fd = entered[0], .events = POLLIN};
    char ch;
    assert_int_equal(poll(&p, 1, 5000), 1);
    assert_int_equal(read(entered[0], &ch, 1), 1);

    assert_int_equal(kill(pid, SIGTERM), 0);
    /* new connections are refused once the signal is handled */
    int refused = 0;
    int64_t until = rt_NowMs() + 5000;
    while (!refused && rt_NowMs() < until) {
        int probe = raw_Connect(port);
        if (probe < 0)
            refused = 1;
        else {
            close(probe);
            usleep(10000);
        }
    }
    assert_true(refused);
    /* the process is still there, finishing the in-flight request */
    assert_int_equal(waitpid(pid, NULL, WNOHANG), 0);

    assert_int_equal(write(release[1], "x", 1), 1);
    raw_resp r;
    raw_Read(fd, &r);
    close(fd);
    assert_int_equal(r.status, 200);
    char v[32];
    assert_non_null(raw_Header(&r, "Connection", v, sizeof v));
    assert_string_equal(v, "close");
    cJSON *j = cJSON_Parse(r.body);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "slow")));
    cJSON_Delete(j);
    raw_Free(&r);

    int status = -1;
    until = rt_NowMs() + 10000;
    while (waitpid(pid, &status, WNOHANG) == 0 && rt_NowMs() < until)
        usleep(10000);
    if (rt_NowMs() >= until) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    close(entered[0]);
    close(release[1]);
    unlink(tokfile);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_invoke_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth, setup, teardown),
        cmocka_unit_test(test_auth_off),
        cmocka_unit_test_setup_teardown(test_bad_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handler_errors, setup, teardown),
        cmocka_unit_test(test_status_mapping),
        cmocka_unit_test_setup_teardown(test_too_large_content_length, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_large_chunked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cloudevents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_and_ready, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_clients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
        cmocka_unit_test(test_main_usage),
        cmocka_unit_test(test_sigterm_drains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
