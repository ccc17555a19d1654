/* test_steps_hostile.c - step handlers against bad requests and bad data in
 * Redis: each must answer the right status with a message naming what is
 * wrong, and write nothing. Real redis-servers and nats-server. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/wire.h"
#include "job/job.h"
#include "fixture.h"
#include "steps_world.h"
#include "steps/steps.h"
#include "store/store.h"
#include "sync/sync.h"

#define PASSWORD "hostile-secret"
#define N_PEERS 2

static sw_world W;
static int dead_port; /* nothing listens there */

static cJSON *make_req(int peer, long t) { return sw_Request(&W, peer, t); }

static cJSON *expect(rt_handler h, cJSON *body, spStatus want, const char *needle)
{
    return sw_Expect(h, body, want, needle);
}

static float *filled(size_t n, float v)
{
    if (n == 0 || n > ((size_t)1 << 28))
        fail_msg("filled(%zu): size out of range", n);
    float *x = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++)
        x[i] = v;
    return x;
}

static cJSON *with_num(cJSON *o, const char *k, double v) { return sw_WithNum(o, k, v); }
static cJSON *with_json(cJSON *o, const char *k, const char *j) { return sw_WithJson(o, k, j); }
static cJSON *without(cJSON *o, const char *k) { return sw_Without(o, k); }

/* Runs minibatch m for peer p at iteration t (the input gradient needs). */
static void minibatch(int p, long t, int m)
{
    cJSON *res = expect(step_Minibatch, with_num(make_req(p, t), "m", m), SP_OK, NULL);
    cJSON_Delete(res);
}

static void restore_params(void)
{
    cJSON *res = expect(step_Init, make_req(-1, -1), SP_OK, NULL);
    cJSON_Delete(res);
}

static int world_Up(void **state)
{
    (void)state;
    const sw_options o = {.n_peers = N_PEERS, .password = PASSWORD, .with_nats = 1,
                          .timeout_ms = 3000};
    if (sw_Up(&W, &o) != 0)
        return -1;
    dead_port = fx_FreePort();
    snprintf(W.job.id, sizeof W.job.id, "hostile");
    W.job.model.kind = MODEL_LOGREG;
    W.job.train_samples = 600;
    W.job.test_samples = 100;
    W.job.minibatches = 2;
    W.job.batch = 20;
    W.job.sync_timeout_ms = 500;
    return sw_Init(&W);
}

static int world_Down(void **state)
{
    (void)state;
    sw_Down(&W);
    return 0;
}

/* ---- request fields ---------------------------------------------------- */

/* A request that names a database - even one of the world's own - is
 * refused: the steps connect only where they are configured to, so nothing
 * is written where the request points, nor anywhere else. */
static void test_requests_naming_addresses_write_nothing(void **state)
{
    (void)state;
    const long t = 40;
    char other[96], shared[48], nats[48];
    snprintf(other, sizeof other, "[\"127.0.0.1:%d\",\"127.0.0.1:%d\"]", W.peer[1].port,
             W.peer[1].port);
    snprintf(shared, sizeof shared, "\"127.0.0.1:%d\"", W.peer[1].port);
    snprintf(nats, sizeof nats, "\"nats://127.0.0.1:%d\"", W.nats.port);
    expect(step_Minibatch, with_json(with_num(make_req(0, t), "m", 0), "peers", other),
           SP_ERR_INVALID, "SPIRT_REDIS_PEERS");
    expect(step_Minibatch, with_json(with_num(make_req(0, t), "m", 0), "shared", shared),
           SP_ERR_INVALID, "SPIRT_REDIS_SHARED");
    expect(step_Notify, with_json(make_req(0, t), "nats", nats), SP_ERR_INVALID,
           "SPIRT_NATS_URL");
    for (int p = 0; p < N_PEERS; p++)
        assert_false(sw_Exists(&W, W.db[p], "mb:%d:%ld:%d", 0, t, 0));
    /* Without them, the same request is served by the configured databases. */
    minibatch(0, t, 0);
    assert_true(sw_Exists(&W, W.db[0], "mb:%d:%ld:%d", 0, t, 0));
    assert_false(sw_Exists(&W, W.db[1], "mb:%d:%ld:%d", 0, t, 0));
}

static void test_common_fields_are_validated(void **state)
{
    (void)state;
    const long t = 50;
    expect(step_Gradient, without(make_req(0, t), "job"), SP_ERR_INVALID, "\"job\"");
    expect(step_Gradient, with_json(make_req(0, t), "job", "[1]"), SP_ERR_INVALID, "job");
    expect(step_Gradient, with_json(make_req(0, t), "peer", "\"zero\""), SP_ERR_INVALID,
           "\"peer\"");
    expect(step_Gradient, with_num(make_req(0, t), "peer", 2), SP_ERR_INVALID, "\"peer\"");
    expect(step_Gradient, without(make_req(0, t), "peer"), SP_ERR_INVALID, "\"peer\"");
    expect(step_Gradient, with_num(make_req(0, t), "iteration", -1), SP_ERR_INVALID,
           "\"iteration\"");
    expect(step_Gradient, with_num(make_req(0, t), "iteration", 1.5), SP_ERR_INVALID,
           "\"iteration\"");
    expect(step_Gradient, make_req(0, t), SP_ERR_INVALID, "\"m\""); /* m missing */
    expect(step_Gradient, with_num(make_req(0, t), "m", 2), SP_ERR_INVALID, "\"m\"");
    expect(step_Gradient, with_json(make_req(0, t), "shape", "[1,28,28]"), SP_ERR_INVALID,
           "\"shape\"");
    expect(step_Gradient, with_json(make_req(0, t), "shape", "[1,0,28,10]"), SP_ERR_INVALID,
           "\"shape\"");
    expect(step_Gradient, with_json(make_req(0, t), "shape", "\"1x28x28\""), SP_ERR_INVALID,
           "\"shape\"");
    expect(step_Aggregate, with_num(make_req(0, t), "peer", -1), SP_ERR_INVALID, "\"peer\"");
    expect(step_Aggregate, with_json(make_req(0, t), "live", "[0,0]"), SP_ERR_INVALID, "twice");
    expect(step_Aggregate, with_json(make_req(0, t), "live", "[1]"), SP_ERR_INVALID, "\"live\"");
    expect(step_Barrier, with_json(make_req(0, t), "live", "[0,5]"), SP_ERR_INVALID, "\"live\"");
    expect(step_Barrier, with_num(make_req(0, t), "timeout_ms", 0), SP_ERR_INVALID,
           "\"timeout_ms\"");
    expect(step_Notify, with_json(make_req(0, t), "loss", "\"low\""), SP_ERR_INVALID, "\"loss\"");
    expect(step_Init, with_json(make_req(-1, -1), "dataset_reload", "1"), SP_ERR_INVALID,
           "\"dataset_reload\"");
    expect(step_Evaluate, with_num(make_req(-1, -1), "source", 9), SP_ERR_INVALID, "\"source\"");
    expect(step_Minibatch, with_json(with_num(make_req(0, t), "m", 0), "shape", "[1,27,28,10]"),
           SP_ERR_INVALID, "shape");
    expect(step_Minibatch, with_num(with_num(make_req(0, t), "m", 0), "iters_per_epoch", 1000),
           SP_ERR_INVALID, "\"iters_per_epoch\"");

    cJSON *bad_job = make_req(0, t);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(bad_job, "job"), "lr",
                              cJSON_CreateString("fast"));
    expect(step_Update, bad_job, SP_ERR_INVALID, "job.lr");
    bad_job = make_req(0, t);
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(bad_job, "job"), "id",
                              cJSON_CreateString("a b"));
    expect(step_Update, bad_job, SP_ERR_INVALID, "a b");
    /* Nothing was written by any of them. */
    for (int p = 0; p < N_PEERS; p++)
        for (int m = 0; m < 2; m++) {
            assert_false(sw_Exists(&W, W.db[p], "grad:%d:%ld:%d", p, t, m));
        }
    assert_false(sw_Exists(&W, W.db[0], "agg:0:%ld", t));
}

/* ---- bad data in Redis ----------------------------------------------------- */

static void test_average_rejects_wrong_size_gradient(void **state)
{
    (void)state;
    float *good = filled(W.P, 0.5f), *short_ = filled(W.P - 1, 0.5f);
    sw_Put(&W, W.db[0], good, W.P, "grad:%d:%d:%d", 0, 60, 1);
    sw_Put(&W, W.db[0], short_, W.P - 1, "grad:%d:%d:%d", 0, 60, 0);
    expect(step_Average, make_req(0, 60), SP_ERR_INVALID, "grad:0:60:0");
    assert_false(sw_Exists(&W, W.db[0], "avg:%d:%d", 0, 60));
    /* A gradient that was never computed is "not found". */
    sw_Put(&W, W.db[0], good, W.P, "grad:%d:%d:%d", 0, 61, 0);
    expect(step_Average, make_req(0, 61), SP_ERR_NOT_FOUND, "grad:0:61:1");
    assert_false(sw_Exists(&W, W.db[0], "avg:%d:%d", 0, 61));
    free(good);
    free(short_);
}

static void test_gradient_rejects_bad_params(void **state)
{
    (void)state;
    minibatch(1, 62, 0);
    float *params = filled(W.P + 3, 0.0f);
    sw_Put(&W, W.db[1], params, W.P + 3, "params:%d", 1);
    expect(step_Gradient, with_num(make_req(1, 62), "m", 0), SP_ERR_INVALID, "params");
    assert_false(sw_Exists(&W, W.db[1], "grad:%d:%d:0", 1, 62));
    params[7] = NAN;
    sw_Put(&W, W.db[1], params, W.P, "params:%d", 1);
    expect(step_Gradient, with_num(make_req(1, 62), "m", 0), SP_ERR_INVALID, "params");
    assert_false(sw_Exists(&W, W.db[1], "grad:%d:%d:0", 1, 62));
    /* Finite parameters that overflow: the gradient is not finite. */
    for (size_t i = 0; i < W.P; i++)
        params[i] = 3e38f;
    sw_Put(&W, W.db[1], params, W.P, "params:%d", 1);
    expect(step_Gradient, with_num(make_req(1, 62), "m", 0), SP_ERR_INVALID, "not finite");
    assert_false(sw_Exists(&W, W.db[1], "grad:%d:%d:0", 1, 62));
    free(params);
    restore_params();
    cJSON_Delete(expect(step_Gradient, with_num(make_req(1, 62), "m", 0), SP_OK, NULL));
    assert_true(sw_Exists(&W, W.db[1], "grad:%d:%d:0", 1, 62));
}

static void test_gradient_rejects_bad_minibatch(void **state)
{
    (void)state;
    char key[192];
    /* A corrupt index blob (checksum off). */
    sw_Key(&W, key, sizeof key, "mb:0:63:0");
    uint8_t *blob;
    size_t len;
    int32_t idx[3] = {0, 1, 2};
    assert_int_equal(wire_Encode(WIRE_I32, idx, 3, 0, &blob, &len), SP_OK);
    blob[len - 1] ^= 0x40;
    assert_int_equal(store_PutBlob(W.db[0], key, blob, len, 600), SP_OK);
    expect(step_Gradient, with_num(make_req(0, 63), "m", 0), SP_ERR_FORMAT, "mb:0:63:0");
    /* Rows instead of indices (what the minibatch step stored before). */
    float *rows = filled(3 * (W.dim + 1), 0.25f);
    sw_Put(&W, W.db[0], rows, 3 * (W.dim + 1), "mb:%d:%d:%d", 0, 63, 0);
    expect(step_Gradient, with_num(make_req(0, 63), "m", 0), SP_ERR_INVALID, "row indices");
    /* More indices than the batch, a negative one. */
    int32_t many[21] = {0};
    sw_PutIndices(&W, W.db[0], many, 21, "mb:%d:%d:%d", 0, 63, 0);
    expect(step_Gradient, with_num(make_req(0, 63), "m", 0), SP_ERR_INVALID, "batch of 20");
    idx[1] = -5;
    sw_PutIndices(&W, W.db[0], idx, 3, "mb:%d:%d:%d", 0, 63, 0);
    expect(step_Gradient, with_num(make_req(0, 63), "m", 0), SP_ERR_INVALID, "negative");
    /* An index of a row the shared Redis does not hold. */
    idx[1] = 99999;
    sw_PutIndices(&W, W.db[0], idx, 3, "mb:%d:%d:%d", 0, 63, 0);
    expect(step_Gradient, with_num(make_req(0, 63), "m", 0), SP_ERR_NOT_FOUND, "row");
    /* A row of the wrong width, a row whose label is no class: the rows
     * fetched from the shared Redis are verified as before. */
    sw_Put(&W, W.sdb, rows, W.dim, "data:train:%d", 5000);
    idx[1] = 5000;
    sw_PutIndices(&W, W.db[0], idx, 3, "mb:%d:%d:%d", 0, 63, 0);
    expect(step_Gradient, with_num(make_req(0, 63), "m", 0), SP_ERR_INVALID, "data:train:5000");
    rows[W.dim] = 42;
    sw_Put(&W, W.sdb, rows, W.dim + 1, "data:train:%d", 5000);
    expect(step_Gradient, with_num(make_req(0, 63), "m", 0), SP_ERR_INVALID, "label");
    assert_false(sw_Exists(&W, W.db[0], "grad:%d:%d:0", 0, 63));
    /* Never fetched at all: the message names the key and who writes it. */
    expect(step_Gradient, with_num(make_req(0, 64), "m", 1), SP_ERR_NOT_FOUND, "mb:0:64:1");
    expect(step_Gradient, with_num(make_req(0, 64), "m", 1), SP_ERR_NOT_FOUND, "minibatch step");
    free(blob);
    free(rows);
}

static void test_aggregate_with_bad_averages(void **state)
{
    (void)state;
    float *own = filled(W.P, 1.0f), *bad = filled(W.P, 2.0f);
    /* The caller's own average is not finite: fail, store nothing. */
    own[3] = INFINITY;
    sw_Put(&W, W.db[0], own, W.P, "avg:%d:%d", 0, 70);
    sw_Put(&W, W.db[1], bad, W.P, "avg:%d:%d", 1, 70);
    expect(step_Aggregate, make_req(0, 70), SP_ERR_INVALID, "avg:0:70");
    assert_false(sw_Exists(&W, W.db[0], "agg:%d:%d", 0, 70));

    /* Another peer's average is NaN, or of the wrong size: that peer is
     * left out and reported; the result is the others' mean. */
    own[3] = 1.0f;
    bad[5] = NAN;
    sw_Put(&W, W.db[0], own, W.P, "avg:%d:%d", 0, 71);
    sw_Put(&W, W.db[1], bad, W.P, "avg:%d:%d", 1, 71);
    cJSON *res = expect(step_Aggregate, make_req(0, 71), SP_OK, NULL);
    const cJSON *rej = cJSON_GetObjectItem(res, "rejected");
    assert_int_equal(cJSON_GetArraySize(rej), 1);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(rej, 0), "peer")->valueint, 1);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(res, "used")), 1);
    cJSON_Delete(res);
    float *agg;
    size_t n;
    char key[192];
    sw_Key(&W, key, sizeof key, "agg:0:71");
    assert_int_equal(store_GetTensor(W.db[0], key, W.P, &agg, &n), SP_OK);
    assert_memory_equal(agg, own, sizeof(float) * W.P);
    free(agg);

    sw_Put(&W, W.db[1], own, W.P - 2, "avg:%d:%d", 1, 71);
    res = expect(step_Aggregate, make_req(0, 71), SP_OK, NULL);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(res, "rejected")), 1);
    cJSON_Delete(res);
    free(own);
    free(bad);
}

static void test_update_stale_and_missing(void **state)
{
    (void)state;
    char key[192];
    sw_Key(&W, key, sizeof key, "applied:0");
    assert_int_equal(store_PutBlob(W.db[0], key, "80", 2, 0), SP_OK);
    expect(step_Update, make_req(0, 75), SP_ERR_CONFLICT, "stale");
    expect(step_Update, make_req(0, 81), SP_ERR_NOT_FOUND, "agg:0:81");
    float *bad = filled(W.P + 1, 0.1f);
    sw_Put(&W, W.db[0], bad, W.P + 1, "agg:%d:%d", 0, 82);
    expect(step_Update, make_req(0, 82), SP_ERR_INVALID, "agg:0:82");
    free(bad);
    assert_int_equal(store_Delete(W.db[0], key), SP_OK);
}

static void test_unreachable_redis_is_retryable(void **state)
{
    (void)state;
    const steps_config c = *steps_Config();
    /* Peer 1's Redis down (the function is configured with a dead one). */
    steps_config down = c;
    snprintf(down.redis_peers, sizeof down.redis_peers, "127.0.0.1:%d,127.0.0.1:%d",
             W.peer[0].port, dead_port);
    /* Own Redis down: 503-class status, so the driver retries. */
    minibatch(1, 90, 0);
    assert_int_equal(steps_Configure(&down), SP_OK);
    expect(step_Gradient, with_num(make_req(1, 90), "m", 0), SP_ERR_UNAVAILABLE, NULL);
    /* The shared Redis (the dataset rows) down: the same. */
    steps_config no_shared = c;
    snprintf(no_shared.redis_shared, sizeof no_shared.redis_shared, "127.0.0.1:%d", dead_port);
    assert_int_equal(steps_Configure(&no_shared), SP_OK);
    expect(step_Gradient, with_num(make_req(1, 90), "m", 0), SP_ERR_UNAVAILABLE, "shared");
    assert_false(sw_Exists(&W, W.db[1], "grad:%d:%d:0", 1, 90));
    /* Another peer's Redis down: aggregate tries it again for its wait
     * budget (a stalled database may come back), then goes on without it
     * and says how long it waited. */
    float *own = filled(W.P, 1.0f);
    sw_Put(&W, W.db[0], own, W.P, "avg:%d:%d", 0, 90);
    assert_int_equal(steps_Configure(&down), SP_OK);
    cJSON *res = expect(step_Aggregate, with_num(make_req(0, 90), "timeout_ms", 300), SP_OK,
                        NULL);
    assert_int_equal(steps_Configure(&c), SP_OK);
    const cJSON *rej = cJSON_GetArrayItem(cJSON_GetObjectItem(res, "rejected"), 0);
    assert_string_equal(cJSON_GetObjectItem(rej, "code")->valuestring, "unavailable");
    const cJSON *to = cJSON_GetArrayItem(cJSON_GetObjectItem(res, "timeouts"), 0);
    assert_non_null(to);
    assert_string_equal(cJSON_GetObjectItem(to, "wait")->valuestring, "avg");
    assert_true(cJSON_GetObjectItem(to, "duration_ms")->valuedouble >= 200);
    assert_int_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(to, "members"), 0)->valueint, 1);
    cJSON_Delete(res);
    free(own);
    /* Wrong password: not retryable, says so. */
    steps_config wrong = c;
    snprintf(wrong.redis_password, sizeof wrong.redis_password, "nope");
    assert_int_equal(steps_Configure(&wrong), SP_OK);
    expect(step_Average, make_req(0, 91), SP_ERR_AUTH, NULL);
    assert_int_equal(steps_Configure(&c), SP_OK);
}

static void test_minibatch_without_dataset(void **state)
{
    (void)state;
    job_config saved = W.job;
    snprintf(W.job.id, sizeof W.job.id, "never-initialised");
    expect(step_Minibatch, with_num(make_req(0, 0), "m", 0), SP_ERR_NOT_FOUND, "run init");
    W.job = saved;
    /* A damaged meta record is reported, not trusted. */
    char key[192];
    sw_Key(&W, key, sizeof key, "data:meta");
    uint8_t *meta;
    size_t len;
    assert_int_equal(store_GetBlob(W.sdb, key, &meta, &len), SP_OK);
    assert_int_equal(store_PutBlob(W.sdb, key, "{\"n_train\":-4}", 14, 0), SP_OK);
    expect(step_Minibatch, with_num(make_req(0, 0), "m", 0), SP_ERR_FORMAT, "data:meta");
    assert_int_equal(store_PutBlob(W.sdb, key, meta, len, 0), SP_OK);
    free(meta);
    minibatch(0, 0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_common_fields_are_validated),
        cmocka_unit_test(test_requests_naming_addresses_write_nothing),
        cmocka_unit_test(test_average_rejects_wrong_size_gradient),
        cmocka_unit_test(test_gradient_rejects_bad_params),
        cmocka_unit_test(test_gradient_rejects_bad_minibatch),
        cmocka_unit_test(test_aggregate_with_bad_averages),
        cmocka_unit_test(test_update_stale_and_missing),
        cmocka_unit_test(test_unreachable_redis_is_retryable),
        cmocka_unit_test(test_minibatch_without_dataset),
    };
    return cmocka_run_group_tests(tests, world_Up, world_Down);
}
