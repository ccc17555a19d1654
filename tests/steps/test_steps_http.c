/* test_steps_http.c - the function contract end to end: the gradient step
 * behind the HTTP runtime (in-process server, then the real spirt-fn-gradient
 * binary configured through its environment), invoked with a bearer token
 * and a JSON body, against a real redis-server. The function connects only
 * to the databases of its configuration: a request naming an address is
 * 400, and a socket it names sees no connection. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "job/job.h"
#include "fixture.h"
#include "runtime/http_client.h"
#include "runtime/runtime.h"
#include "steps/steps.h"
#include "store/store.h"

#define PASSWORD "http-secret"
#define TOKEN "step-token"

typedef struct {
    fx_server peer, shared;
    job_config job;
    cJSON *shape;
    store *db;
} world;

static world W;

static cJSON *make_req(long t, int m)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "job", job_ToJson(&W.job));
    if (W.shape)
        cJSON_AddItemToObject(o, "shape", cJSON_Duplicate(W.shape, 1));
    cJSON_AddNumberToObject(o, "iteration", (double)t);
    cJSON_AddNumberToObject(o, "epoch", 1);
    cJSON_AddNumberToObject(o, "peer", 0);
    cJSON_AddNumberToObject(o, "m", m);
    return o;
}

static cJSON *run(rt_handler h, cJSON *body)
{
    rt_request r = {.body = body};
    cJSON *out = cJSON_CreateObject();
    spStatus st = h(&r, out, NULL);
    if (st != SP_OK)
        fail_msg("step failed: %s", sp_LastError());
    cJSON_Delete(body);
    return out;
}

static int grad_exists(long t, int m)
{
    char key[128];
    int e = 0;
    assert_int_equal(store_Key(key, sizeof key, W.job.id, "grad:0:%ld:%d", t, m), SP_OK);
    assert_int_equal(store_Exists(W.db, key, &e), SP_OK);
    return e;
}

/* POSTs a request; returns the status, *answer the parsed body. */
static int post(int port, const char *token, cJSON *body, cJSON **answer)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    http_response r;
    spStatus st = http_Post(url, token, "application/json", text, strlen(text), 20000, &r);
    free(text);
    if (st != SP_OK)
        fail_msg("POST %s: %s", url, sp_LastError());
    *answer = cJSON_Parse(r.body);
    int code = r.status;
    http_ResponseFree(&r);
    return code;
}

static int world_Up(void **state)
{
    (void)state;
    memset(&W, 0, sizeof W);
    if (fx_StartRedis(&W.peer, PASSWORD, 1, 0) != 0 || fx_StartRedis(&W.shared, PASSWORD, 0, 0))
        return -1;
    steps_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.redis_peers, sizeof c.redis_peers, "127.0.0.1:%d", W.peer.port);
    snprintf(c.redis_shared, sizeof c.redis_shared, "127.0.0.1:%d", W.shared.port);
    snprintf(c.redis_password, sizeof c.redis_password, "%s", PASSWORD);
    if (steps_Configure(&c) != SP_OK)
        return -1;
    job_Defaults(&W.job);
    snprintf(W.job.id, sizeof W.job.id, "http-test");
    W.job.arch = ARCH_SPIRT;
    snprintf(W.job.dataset, sizeof W.job.dataset, "%s", fx_DatasetDir());
    W.job.train_samples = 400;
    W.job.test_samples = 100;
    W.job.minibatches = 2;
    W.job.batch = 32;

    store_addr a;
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", W.peer.port);
    if (store_ParseAddr(addr, &a) != SP_OK)
        return -1;
    snprintf(a.password, sizeof a.password, "%s", PASSWORD);
    if (store_Connect(&a, &W.db) != SP_OK)
        return -1;
    /* init and both minibatches in-process: the inputs of the gradient. */
    cJSON *res = run(step_Init, make_req(0, 0));
    W.shape = cJSON_Duplicate(cJSON_GetObjectItem(res, "shape"), 1);
    cJSON_Delete(res);
    for (int m = 0; m < 2; m++)
        cJSON_Delete(run(step_Minibatch, make_req(0, m)));
    return 0;
}

static int world_Down(void **state)
{
    (void)state;
    store_Destroy(W.db);
    store_ReleaseCached();
    fx_Stop(&W.peer);
    fx_Stop(&W.shared);
    cJSON_Delete(W.shape);
    return 0;
}

static void test_gradient_over_http(void **state)
{
    (void)state;
    const rt_function fn = {"gradient", step_Gradient, steps_Ready, NULL};
    rt_options opt = {.port = 0, .bind = "127.0.0.1", .token = TOKEN};
    rt_server *srv;
    int port;
    assert_int_equal(runtime_Start(&fn, &opt, &srv, &port), SP_OK);

    cJSON *ans;
    assert_int_equal(post(port, TOKEN, make_req(0, 0), &ans), 200);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(ans, "loss")));
    assert_int_equal(cJSON_GetObjectItem(ans, "samples")->valueint, 32);
    const cJSON *t = cJSON_GetObjectItem(ans, "timings");
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(t, "compute_ms")));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(t, "transfer_ms")));
    assert_true(cJSON_GetObjectItem(cJSON_GetObjectItem(ans, "bytes"), "in")->valuedouble > 0);
    cJSON_Delete(ans);
    assert_true(grad_exists(0, 0));

    /* Bad input is a 400 with a JSON error naming the field. */
    cJSON *bad = make_req(0, 1);
    cJSON_ReplaceItemInObject(bad, "peer", cJSON_CreateNumber(5));
    assert_int_equal(post(port, TOKEN, bad, &ans), 400);
    const cJSON *err = cJSON_GetObjectItem(ans, "error");
    assert_string_equal(cJSON_GetObjectItem(err, "code")->valuestring, "invalid");
    assert_non_null(strstr(cJSON_GetObjectItem(err, "message")->valuestring, "\"peer\""));
    cJSON_Delete(ans);
    /* No token, no gradient. */
    assert_int_equal(post(port, NULL, make_req(0, 1), &ans), 401);
    cJSON_Delete(ans);
    assert_false(grad_exists(0, 1));
    http_CloseCached();
    runtime_Stop(srv);
}

static int wait_exit(pid_t pid, int timeout_ms)
{
    int st;
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

/* spirt-fn-gradient on `port`, configured the way a deployment (or the
 * local runner) does it: its databases' addresses in its environment, and
 * `extra` ("NAME=value", or NULL). */
static pid_t spawn_fn(int port, int peer_port, int shared_port, const char *extra)
{
    static char env[6][128];
    char *envp[7], portarg[16], log[320];
    int n = 5;
    snprintf(env[0], sizeof env[0], "SPIRT_TOKEN=%s", TOKEN);
    snprintf(env[1], sizeof env[1], "SPIRT_REDIS_PASSWORD=%s", PASSWORD);
    snprintf(env[2], sizeof env[2], "SPIRT_REDIS_PEERS=127.0.0.1:%d", peer_port);
    snprintf(env[3], sizeof env[3], "SPIRT_REDIS_SHARED=127.0.0.1:%d", shared_port);
    snprintf(env[4], sizeof env[4], "SPIRT_BIND=127.0.0.1");
    if (extra)
        snprintf(env[n++], sizeof env[0], "%s", extra);
    for (int i = 0; i < n; i++)
        envp[i] = env[i];
    envp[n] = NULL;
    snprintf(portarg, sizeof portarg, "%d", port);
    snprintf(log, sizeof log, "%s/fn-gradient.log", W.peer.dir);
    char *argv[] = {(char *)fx_BinPath("spirt-fn-gradient"), "--port", portarg, NULL};
    pid_t pid = fx_Spawn(argv, envp, log);
    assert_true(pid > 0);
    if (fx_WaitPort(port, 10000) != 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("spirt-fn-gradient did not listen (see %s)", log);
    }
    return pid;
}

/* GET path: the status; the body must contain `needle` (when not NULL). */
static int get_status_saying(int port, const char *path, const char *needle)
{
    char url[64];
    http_response r;
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    assert_int_equal(http_Get(url, NULL, 10000, &r), SP_OK);
    int code = r.status;
    if (needle && !(r.body && strstr(r.body, needle)))
        fail_msg("GET %s answered \"%s\", which does not name \"%s\"", path,
                 r.body ? r.body : "", needle);
    http_ResponseFree(&r);
    return code;
}

static int get_status(int port, const char *path)
{
    return get_status_saying(port, path, NULL);
}

/* The error message of a 400 answer contains `needle`. */
static void expect_400(int port, cJSON *body, const char *needle)
{
    cJSON *ans;
    assert_int_equal(post(port, TOKEN, body, &ans), 400);
    const cJSON *err = cJSON_GetObjectItem(ans, "error");
    const char *msg = cJSON_GetStringValue(cJSON_GetObjectItem(err, "message"));
    if (!msg || !strstr(msg, needle))
        fail_msg("400 message \"%s\" does not name \"%s\"", msg ? msg : "", needle);
    cJSON_Delete(ans);
}

static void test_function_binary(void **state)
{
    (void)state;
    int port = fx_FreePort();
    pid_t pid = spawn_fn(port, W.peer.port, W.shared.port, NULL);
    assert_int_equal(get_status(port, "/readyz"), 200);
    cJSON *ans;
    assert_int_equal(post(port, TOKEN, make_req(0, 1), &ans), 200);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(ans, "loss")));
    cJSON_Delete(ans);
    assert_true(grad_exists(0, 1));

    /* Addresses in the request are refused before anything is touched:
     * the socket they name sees no connection (so no credentials either),
     * and no gradient is written. */
    int trap_port, trap = fx_TrapOpen(&trap_port);
    assert_true(trap >= 0);
    char addr[64], list[80], url[80];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", trap_port);
    snprintf(list, sizeof list, "[\"%s\"]", addr);
    snprintf(url, sizeof url, "nats://%s", addr);
    cJSON *req = make_req(3, 0);
    cJSON_AddItemToObject(req, "peers", cJSON_Parse(list));
    expect_400(port, req, "\"peers\": a request names no addresses; they come from the "
               "function's configuration (SPIRT_REDIS_PEERS)");
    req = make_req(3, 0);
    cJSON_AddStringToObject(req, "shared", addr);
    expect_400(port, req, "SPIRT_REDIS_SHARED");
    req = make_req(3, 0);
    cJSON_AddStringToObject(req, "nats", url);
    expect_400(port, req, "SPIRT_NATS_URL");
    assert_int_equal(fx_TrapConnections(trap), 0);
    close(trap);
    assert_false(grad_exists(3, 0));

    /* A peer the function has no database for: 400 naming the setting. */
    job_config saved = W.job;
    W.job.workers = 2;
    req = make_req(3, 0);
    cJSON_ReplaceItemInObject(req, "peer", cJSON_CreateNumber(1));
    W.job = saved;
    expect_400(port, req, "beyond the 1 peer database(s) the function is configured with "
               "(SPIRT_REDIS_PEERS)");
    http_CloseCached();
    kill(pid, SIGTERM);
    assert_int_equal(wait_exit(pid, 10000), 0);

    /* Its Redis unreachable: alive, but not ready - unless told not to wait
     * for it; and an address where "shared" or "none" belongs (the variable
     * once held one) is a configuration error /readyz reports. */
    const struct {
        const char *extra;
        int ready;
        const char *says;
    } cases[] = {{NULL, 503, "shared redis"},
                 {"SPIRT_READY_REDIS=none", 200, NULL},
                 {"SPIRT_READY_REDIS=shared", 503, "shared redis"},
                 {"SPIRT_READY_REDIS=127.0.0.1:6379", 503, "SPIRT_READY_REDIS=127.0.0.1:6379"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        port = fx_FreePort();
        pid = spawn_fn(port, W.peer.port, fx_FreePort(), cases[i].extra);
        assert_int_equal(get_status(port, "/healthz"), 200);
        assert_int_equal(get_status_saying(port, "/readyz", cases[i].says), cases[i].ready);
        http_CloseCached();
        kill(pid, SIGTERM);
        assert_int_equal(wait_exit(pid, 10000), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradient_over_http),
        cmocka_unit_test(test_function_binary),
    };
    return cmocka_run_group_tests(tests, world_Up, world_Down);
}
