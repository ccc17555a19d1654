/* test_archs_hostile.c - bad input to the MLLESS / ScatterReduce / AllReduce
 * steps: malformed requests, missing, corrupt, mis-sized or non-finite
 * tensors, malformed announcements. Every case must end in a clear error
 * status (never a crash or a hang) and leave no output behind. Real
 * redis-server and nats-server, steps called in-process. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "driver/job.h"
#include "fixture.h"
#include "ml/model.h"
#include "steps/steps.h"
#include "store/store.h"
#include "sync/sync.h"

#define PASSWORD "hostile-secret"
#define N 2

static struct {
    fx_server redis, nats;
    job_config job;
    size_t P;
    store *db;
    sync_conn *nc;
} W;

static cJSON *make_req(int peer, long t)
{
    cJSON *o = cJSON_CreateObject();
    char addr[64];
    cJSON_AddItemToObject(o, "job", job_ToJson(&W.job));
    cJSON *shape = cJSON_AddArrayToObject(o, "shape");
    int s[4] = {1, 28, 28, 10};
    for (int i = 0; i < 4; i++)
        cJSON_AddItemToArray(shape, cJSON_CreateNumber(s[i]));
    cJSON_AddNumberToObject(o, "iteration", (double)t);
    cJSON_AddNumberToObject(o, "peer", peer);
    snprintf(addr, sizeof addr, "127.0.0.1:%d", W.redis.port);
    cJSON *peers = cJSON_AddArrayToObject(o, "peers");
    for (int i = 0; i < N; i++)
        cJSON_AddItemToArray(peers, cJSON_CreateString(addr));
    cJSON_AddStringToObject(o, "shared", addr);
    cJSON_AddNumberToObject(o, "timeout_ms", 300);
    return o;
}

static spStatus call(rt_handler h, cJSON *body)
{
    rt_request r = {.body = body};
    cJSON *out = cJSON_CreateObject();
    spStatus st = h(&r, out, NULL);
    if (st != SP_OK)
        print_message("    -> %s: %s\n", sp_StatusName(st), sp_LastError());
    cJSON_Delete(out);
    cJSON_Delete(body);
    return st;
}

static void key_of(char *key, size_t cap, const char *fmt, ...)
{
    char suffix[128];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(suffix, sizeof suffix, fmt, ap);
    va_end(ap);
    assert_int_equal(store_Key(key, cap, W.job.id, "%s", suffix), SP_OK);
}

static int exists(const char *suffix)
{
    char key[192];
    int e = 0;
    key_of(key, sizeof key, "%s", suffix);
    assert_int_equal(store_Exists(W.db, key, &e), SP_OK);
    return e;
}

static void put_tensor(const char *suffix, size_t n, float fill)
{
    char key[192];
    float *x = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        x[i] = fill;
    key_of(key, sizeof key, "%s", suffix);
    assert_int_equal(store_PutTensor(W.db, key, x, n, 600), SP_OK);
    free(x);
}

static void put_raw(const char *suffix, const void *data, size_t len)
{
    char key[192];
    key_of(key, sizeof key, "%s", suffix);
    assert_int_equal(store_PutBlob(W.db, key, data, len, 600), SP_OK);
}

static void announce(const char *topic, long t, int member, const char *payload)
{
    assert_int_equal(sync_Announce(W.nc, W.job.id, topic, t, member, payload,
                                   payload ? strlen(payload) : 0),
                     SP_OK);
}

static int world_Up(void **state)
{
    (void)state;
    memset(&W, 0, sizeof W);
    if (fx_StartRedis(&W.redis, PASSWORD, 1, 0) != 0 || fx_StartNats(&W.nats, NULL, NULL) != 0)
        return -1;
    steps_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.redis_password, sizeof c.redis_password, "%s", PASSWORD);
    snprintf(c.nats_url, sizeof c.nats_url, "nats://127.0.0.1:%d", W.nats.port);
    c.timeout_ms = 5000;
    steps_Configure(&c);
    job_Defaults(&W.job);
    snprintf(W.job.id, sizeof W.job.id, "hostile");
    W.job.model.kind = MODEL_LOGREG;
    W.job.workers = N;
    W.P = 28 * 28 * 10 + 10;
    store_addr a;
    char s[64];
    snprintf(s, sizeof s, "127.0.0.1:%d", W.redis.port);
    if (store_ParseAddr(s, &a) != SP_OK)
        return -1;
    snprintf(a.password, sizeof a.password, "%s", PASSWORD);
    sync_addr na;
    memset(&na, 0, sizeof na);
    snprintf(na.url, sizeof na.url, "%s", c.nats_url);
    return store_Connect(&a, &W.db) == SP_OK && sync_Connect(&na, &W.nc) == SP_OK ? 0 : -1;
}

static int world_Down(void **state)
{
    (void)state;
    store_Destroy(W.db);
    sync_Destroy(W.nc);
    store_ReleaseCached();
    sync_CachedCloseAll();
    fx_Stop(&W.redis);
    fx_Stop(&W.nats);
    return 0;
}

static const rt_handler all[] = {step_Sparsify, step_Supervisor, step_Apply,
                                 step_Scatter, step_ChunkReduce, step_ChunkGather,
                                 step_MasterReduce, step_FetchReduced};

static void test_malformed_requests_are_400(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        cJSON *r = make_req(0, 1);
        cJSON_DeleteItemFromObject(r, "job");
        assert_int_equal(call(all[i], r), SP_ERR_INVALID);
        r = make_req(0, 1);
        cJSON_DeleteItemFromObject(r, "iteration");
        assert_int_equal(call(all[i], r), SP_ERR_INVALID);
        assert_int_equal(call(all[i], make_req(5, 1)), SP_ERR_INVALID); /* no such peer */
        const char *lives[] = {"\"x\"", "[1]", "[0,0]", "[0,7]", "[]", "[0.5]"};
        for (size_t k = 0; k < sizeof lives / sizeof lives[0]; k++) {
            r = make_req(0, 1);
            cJSON_AddItemToObject(r, "live", cJSON_Parse(lives[k]));
            assert_int_equal(call(all[i], r), SP_ERR_INVALID);
        }
        /* The steps that wait check their timeout. */
        if (all[i] == step_Sparsify || all[i] == step_Scatter)
            continue;
        r = make_req(0, 0);
        cJSON_ReplaceItemInObject(r, "timeout_ms", cJSON_CreateNumber(-5));
        assert_int_equal(call(all[i], r), SP_ERR_INVALID);
    }
}

static void test_bad_tensors_are_refused(void **state)
{
    (void)state;
    /* scatter: missing, corrupt, mis-sized, non-finite average. */
    assert_int_equal(call(step_Scatter, make_req(0, 1)), SP_ERR_NOT_FOUND);
    put_raw("avg:0:1", "not a tensor at all", 19);
    assert_int_equal(call(step_Scatter, make_req(0, 1)), SP_ERR_FORMAT);
    put_tensor("avg:0:1", W.P - 1, 0.5f);
    assert_int_equal(call(step_Scatter, make_req(0, 1)), SP_ERR_INVALID);
    put_tensor("avg:0:1", W.P, NAN);
    assert_int_equal(call(step_Scatter, make_req(0, 1)), SP_ERR_INVALID);
    assert_false(exists("chunk:0:0:1"));

    /* chunk_reduce: everyone announced, but a chunk is missing / wrong. */
    announce("scattered", 1, 0, NULL);
    announce("scattered", 1, 1, NULL);
    assert_int_equal(call(step_ChunkReduce, make_req(0, 1)), SP_ERR_NOT_FOUND);
    put_tensor("chunk:0:0:1", W.P / 2, 1.0f);
    put_tensor("chunk:0:1:1", W.P / 2 + 3, 1.0f);
    assert_int_equal(call(step_ChunkReduce, make_req(0, 1)), SP_ERR_INVALID);
    assert_false(exists("merged:0:1"));

    /* chunk_gather: merged announced, one merged chunk missing. */
    announce("merged", 1, 0, NULL);
    announce("merged", 1, 1, NULL);
    put_tensor("merged:0:1", W.P / 2, 1.0f);
    assert_int_equal(call(step_ChunkGather, make_req(1, 1)), SP_ERR_NOT_FOUND);
    assert_false(exists("agg:1:1"));

    /* master_reduce: a worker's average is not finite. */
    announce("avg", 2, 0, NULL);
    announce("avg", 2, 1, NULL);
    put_tensor("avg:0:2", W.P, 1.0f);
    put_tensor("avg:1:2", W.P, INFINITY);
    assert_int_equal(call(step_MasterReduce, make_req(0, 2)), SP_ERR_INVALID);
    assert_false(exists("reduced:2"));

    /* fetch_reduced: the result has the wrong size. */
    announce("reduced", 2, 0, NULL);
    put_tensor("reduced:2", 10, 1.0f);
    assert_int_equal(call(step_FetchReduced, make_req(1, 2)), SP_ERR_INVALID);
    assert_false(exists("agg:1:2"));

    /* sparsify: no accumulator of t-1 (t > 0), or a non-finite average. */
    put_tensor("params:0", W.P, 0.1f);
    put_tensor("avg:0:3", W.P, 0.1f);
    assert_int_equal(call(step_Sparsify, make_req(0, 3)), SP_ERR_NOT_FOUND);
    put_tensor("avg:0:0", W.P, NAN);
    assert_int_equal(call(step_Sparsify, make_req(0, 0)), SP_ERR_INVALID);
    assert_false(exists("acc:0:0"));
    assert_false(exists("acc:0:3"));
}

static void test_bad_announcements_are_refused(void **state)
{
    (void)state;
    /* apply: the "updates" payload is not a decision. */
    announce("updates", 4, 0, "{\"t\":4,\"workers\":\"two\"}");
    assert_int_equal(call(step_Apply, make_req(1, 4)), SP_ERR_FORMAT);
    announce("updates", 5, 0, "[1,2");
    assert_int_equal(call(step_Apply, make_req(1, 5)), SP_ERR_FORMAT);
    /* ... names a worker out of range, or a decision of another iteration. */
    announce("updates", 6, 0, "{\"t\":6,\"workers\":2,\"updates\":[9],\"live\":[0,1],"
                              "\"remove\":-1,\"heir\":-1,\"stop\":false}");
    assert_int_equal(call(step_Apply, make_req(1, 6)), SP_ERR_FORMAT);
    announce("updates", 7, 0, "{\"t\":3,\"workers\":2,\"updates\":[],\"live\":[0,1],"
                              "\"remove\":-1,\"heir\":-1,\"stop\":false}");
    assert_int_equal(call(step_Apply, make_req(1, 7)), SP_ERR_FORMAT);
    /* ... lists an update whose pairs are out of range. */
    announce("updates", 8, 0, "{\"t\":8,\"workers\":2,\"updates\":[0],\"live\":[0,1],"
                              "\"remove\":-1,\"heir\":-1,\"stop\":false}");
    put_tensor("sparse:0:8", 4, 1.0f); /* dense, not sparse */
    assert_int_equal(call(step_Apply, make_req(1, 8)), SP_ERR_INVALID);
    for (long t = 4; t <= 8; t++) {
        char k[32];
        snprintf(k, sizeof k, "agg:1:%ld", t);
        assert_false(exists(k));
    }
    /* supervisor: a corrupt state is reported, not trusted. */
    put_raw("supervisor", "{\"t\":\"x\"}", 9);
    assert_int_equal(call(step_Supervisor, make_req(0, 9)), SP_ERR_FORMAT);
    /* Waits without announcements end at the timeout, naming who is missing. */
    assert_int_equal(call(step_Apply, make_req(1, 40)), SP_ERR_TIMEOUT);
    assert_non_null(strstr(sp_LastError(), "worker(s) 0"));
    assert_int_equal(call(step_Supervisor, make_req(0, 0)), SP_ERR_TIMEOUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_requests_are_400),
        cmocka_unit_test(test_bad_tensors_are_refused),
        cmocka_unit_test(test_bad_announcements_are_refused),
    };
    return cmocka_run_group_tests(tests, world_Up, world_Down);
}
