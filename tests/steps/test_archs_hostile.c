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

#include "job/job.h"
#include "fixture.h"
#include "steps_world.h"
#include "ml/model.h"
#include "steps/steps.h"
#include "store/store.h"
#include "sync/sync.h"

#define PASSWORD "hostile-secret"
#define N 2

/* One Redis plays every worker and the shared store. */
static sw_world W;
static sync_conn *nc; /* the test's own, for announcements */

static cJSON *make_req(int peer, long t)
{
    return sw_WithNum(sw_Request(&W, peer, t), "timeout_ms", 300);
}

static spStatus call(rt_handler h, cJSON *body) { return sw_Call(h, body, NULL, 0); }

static int exists(const char *suffix) { return sw_Exists(&W, W.db[0], "%s", suffix); }

static void put_tensor(const char *suffix, size_t n, float fill)
{
    char key[192];
    float *x = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++)
        x[i] = fill;
    sw_Key(&W, key, sizeof key, "%s", suffix);
    assert_int_equal(store_PutTensor(W.db[0], key, x, n, 600), SP_OK);
    free(x);
}

static void put_raw(const char *suffix, const void *data, size_t len)
{
    char key[192];
    sw_Key(&W, key, sizeof key, "%s", suffix);
    assert_int_equal(store_PutBlob(W.db[0], key, data, len, 600), SP_OK);
}

static void announce(const char *topic, long t, int member, const char *payload)
{
    assert_int_equal(sync_Announce(nc, W.job.id, topic, t, member, payload,
                                   payload ? strlen(payload) : 0),
                     SP_OK);
}

static int world_Up(void **state)
{
    (void)state;
    const sw_options o = {.n_peers = N, .password = PASSWORD, .with_nats = 1, .one_redis = 1,
                          .timeout_ms = 5000};
    if (sw_Up(&W, &o) != 0)
        return -1;
    snprintf(W.job.id, sizeof W.job.id, "hostile");
    W.job.model.kind = MODEL_LOGREG;
    W.P = 28 * 28 * 10 + 10;
    return sw_ConnectNats(&W, &nc);
}

static int world_Down(void **state)
{
    (void)state;
    sync_Destroy(nc);
    sw_Down(&W);
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
