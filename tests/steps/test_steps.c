/* test_steps.c - one SPIRT iteration for 2 peers, step by step, in-process,
 * against real redis-servers (module loaded, password set) and a real
 * nats-server. Every stored result is checked against the same computation
 * done here from the dataset files. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/wire.h"
#include "data/dataset.h"
#include "job/job.h"
#include "fixture.h"
#include "steps_world.h"
#include "ml/model.h"
#include "steps/steps.h"
#include "store/store.h"
#include "sync/sync.h"

#define PASSWORD "steps-secret"
#define N_PEERS 2
#define M_MB 2
#define BATCH 50
#define TRAIN_N 2000
#define TEST_N 500

static sw_world W;

/* The dataset limited like the job, and the seeded initial model. */
static struct {
    dataset train, test;
    float *params0;
} D;

/* ---- helpers ------------------------------------------------------------- */

static cJSON *make_req(int peer, long t) { return sw_Request(&W, peer, t); }

/* Runs a handler; the request is consumed. *res (freed by the caller) is
 * set on success and NULL on failure. */
static spStatus call(rt_handler h, cJSON *body, cJSON **res) { return sw_Call(h, body, res, 0); }

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static void assert_close(const float *a, const float *b, size_t n, double tol)
{
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= worst)) {
            worst = d;
            at = i;
        }
    }
    if (!(worst <= tol))
        fail_msg("element %zu differs by %g (%g vs %g)", at, worst, (double)a[at], (double)b[at]);
}

static model *test_model(void) { return sw_Model(&W); }

/* The rows of slot (t, m) of peer p, computed from the dataset files as the
 * contract in steps.h describes: shard p of N, the epoch's order, slot
 * i = (t mod I)*M + m with I = floor(min shard / (M*batch)). Their indices
 * in the train split go to idx (optional), the rows to x, y (optional). */
static void expected_rows(int p, long t, int m, int32_t *idx, float *x, int32_t *y)
{
    size_t off, len;
    long I = (long)((D.train.n / N_PEERS) / (M_MB * BATCH));
    long slot = (t % I) * M_MB + m;
    int epoch = (int)(t / I + 1);
    dataset_ShardRange(D.train.n, N_PEERS, p, &off, &len);
    uint32_t *perm = malloc(sizeof *perm * len);
    dataset_EpochOrder(len, W.job.seed, epoch, p, perm);
    for (int j = 0; idx && j < BATCH; j++)
        idx[j] = (int32_t)(off + perm[slot * BATCH + j]);
    if (x)
        dataset_Gather(&D.train, off, perm + slot * BATCH, BATCH, x, y);
    free(perm);
}

/* ---- setup ----------------------------------------------------------------- */

static int world_Up(void **state)
{
    (void)state;
    memset(&D, 0, sizeof D);
    const sw_options o = {.n_peers = N_PEERS, .password = PASSWORD, .with_nats = 1,
                          .timeout_ms = 5000};
    if (sw_Up(&W, &o) != 0)
        return -1;
    snprintf(W.job.id, sizeof W.job.id, "steps-test");
    W.job.model.kind = MODEL_MLP;
    W.job.model.n_hidden = 1;
    W.job.model.hidden[0] = 32;
    W.job.train_samples = TRAIN_N;
    W.job.test_samples = TEST_N;
    W.job.minibatches = M_MB;
    W.job.batch = BATCH;
    W.job.optim.lr = 0.1f;
    W.job.optim.momentum = 0;
    W.job.seed = 7;
    W.job.sync_timeout_ms = 2000;

    if (dataset_Open(fx_DatasetDir(), &D.train, &D.test) != SP_OK) {
        fprintf(stderr, "dataset: %s\n", sp_LastError());
        return -1;
    }
    D.train.n = TRAIN_N;
    D.test.n = TEST_N;
    W.dim = D.train.dim;
    return 0;
}

static int world_Down(void **state)
{
    (void)state;
    sw_Down(&W);
    dataset_Free(&D.train);
    dataset_Free(&D.test);
    free(D.params0);
    return 0;
}

/* ---- the iteration ------------------------------------------------------------ */

static void test_init_puts_same_model_everywhere(void **state)
{
    (void)state;
    cJSON *res;
    assert_int_equal(call(step_Init, make_req(-1, -1), &res), SP_OK);
    W.shape = cJSON_Duplicate(cJSON_GetObjectItem(res, "shape"), 1);
    assert_int_equal(cJSON_GetArraySize(W.shape), 4);
    assert_int_equal((int)num(res, "train_samples"), TRAIN_N);
    assert_int_equal((int)num(res, "test_samples"), TEST_N);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(res, "dataset_uploaded")));
    W.P = (size_t)num(res, "params");
    cJSON_Delete(res);

    model *m = test_model();
    assert_int_equal(W.P, model_ParamCount(m));
    D.params0 = malloc(sizeof(float) * W.P);
    model_Init(m, D.params0, W.job.seed);
    model_Destroy(m);
    for (int i = 0; i < N_PEERS; i++) {
        float *p = sw_GetTensor(&W, W.db[i], "params:%d", i);
        assert_memory_equal(p, D.params0, sizeof(float) * W.P);
        free(p);
    }
    /* A dataset row in the shared store is the file's row plus its label. */
    float *row = sw_GetTensor(&W, W.sdb, "data:train:%d", 1234);
    assert_memory_equal(row, D.train.x + 1234 * W.dim, sizeof(float) * W.dim);
    assert_true(row[W.dim] == (float)D.train.y[1234]);
    free(row);
    row = sw_GetTensor(&W, W.sdb, "data:test:%d", TEST_N - 1);
    assert_true(row[W.dim] == (float)D.test.y[TEST_N - 1]);
    free(row);
    assert_false(sw_Exists(&W, W.sdb, "data:train:2000")); /* the limit holds */

    /* A second init of the job skips the upload, unless asked to reload. */
    assert_int_equal(call(step_Init, make_req(-1, -1), &res), SP_OK);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(res, "dataset_uploaded")));
    cJSON_Delete(res);
    cJSON *req = make_req(-1, -1);
    cJSON_AddBoolToObject(req, "dataset_reload", 1);
    assert_int_equal(call(step_Init, req, &res), SP_OK);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(res, "dataset_uploaded")));
    cJSON_Delete(res);
}

static void check_minibatch(int p, long t, int m)
{
    cJSON *req = make_req(p, t), *res;
    cJSON_AddNumberToObject(req, "m", m);
    assert_int_equal(call(step_Minibatch, req, &res), SP_OK);
    assert_int_equal((int)num(res, "samples"), BATCH);
    cJSON_Delete(res);

    /* The peer's Redis holds the slot's row indices, not the rows: the
     * gradient step fetches those from the shared Redis. */
    float *x = malloc(sizeof(float) * BATCH * W.dim);
    int32_t want[BATCH], y[BATCH], *got;
    size_t n;
    expected_rows(p, t, m, want, x, y);
    got = sw_GetIndices(&W, W.db[p], &n, "mb:%d:%ld:%d", p, t, m);
    assert_int_equal(n, BATCH);
    assert_memory_equal(got, want, sizeof want);
    /* ... and they name the dataset rows of the slot in the shared Redis. */
    for (int j = 0; j < BATCH; j += 17) {
        float *row = sw_GetTensor(&W, W.sdb, "data:train:%d", got[j]);
        assert_memory_equal(row, x + j * W.dim, sizeof(float) * W.dim);
        assert_true(row[W.dim] == (float)y[j]);
        free(row);
    }
    free(got);
    free(x);
}

static void test_minibatch_rows_are_the_shards_slot(void **state)
{
    (void)state;
    for (int p = 0; p < N_PEERS; p++)
        for (int m = 0; m < M_MB; m++)
            check_minibatch(p, 0, m);
    /* t = 13 with I = 10: epoch 2 (a new order), slot 3*M + m. */
    check_minibatch(1, 13, 1);
    /* Peers never share rows: their shards are disjoint. */
    size_t na, nb;
    int32_t *a = sw_GetIndices(&W, W.db[0], &na, "mb:0:0:0");
    int32_t *b = sw_GetIndices(&W, W.db[1], &nb, "mb:1:0:0");
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++)
            assert_int_not_equal(a[i], b[j]);
    free(a);
    free(b);
    /* A repeated call (a retry) stores the same indices. */
    cJSON *res;
    assert_int_equal(call(step_Minibatch, sw_WithNum(make_req(0, 0), "m", 0), &res), SP_OK);
    char key[192];
    sw_Key(&W, key, sizeof key, "mb:0:0:0");
    assert_string_equal(cJSON_GetObjectItem(res, "key")->valuestring, key);
    assert_int_equal((int)num(res, "slot"), 0);
    assert_int_equal((int)num(res, "epoch"), 1);
    cJSON_Delete(res);
    a = sw_GetIndices(&W, W.db[0], &na, "mb:0:0:0");
    int32_t want[BATCH];
    expected_rows(0, 0, 0, want, NULL, NULL);
    assert_memory_equal(a, want, sizeof want);
    free(a);
}

static void test_gradient_matches_local_computation(void **state)
{
    (void)state;
    model *mod = test_model();
    float *x = malloc(sizeof(float) * BATCH * W.dim), *want = malloc(sizeof(float) * W.P);
    int32_t y[BATCH];
    for (int p = 0; p < N_PEERS; p++)
        for (int m = 0; m < M_MB; m++) {
            cJSON *req = make_req(p, 0), *res;
            cJSON_AddNumberToObject(req, "m", m);
            assert_int_equal(call(step_Gradient, req, &res), SP_OK);
            assert_int_equal((int)num(res, "samples"), BATCH);
            float loss_fn = (float)num(res, "loss"), loss;
            cJSON_Delete(res);

            expected_rows(p, 0, m, NULL, x, y);
            assert_int_equal(model_LossGrad(mod, D.params0, x, y, BATCH, want, &loss), SP_OK);
            assert_true(fabsf(loss - loss_fn) < 1e-5f);
            float *got = sw_GetTensor(&W, W.db[p], "grad:%d:0:%d", p, m);
            assert_close(got, want, W.P, 1e-6);
            free(got);
        }
    free(x);
    free(want);
    model_Destroy(mod);
}

static void test_average_is_mean_of_grads(void **state)
{
    (void)state;
    for (int p = 0; p < N_PEERS; p++) {
        cJSON *req = make_req(p, 0), *res;
        assert_int_equal(call(step_Average, req, &res), SP_OK);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(res, "in_db"))); /* module loaded */
        cJSON_Delete(res);
        float *g0 = sw_GetTensor(&W, W.db[p], "grad:%d:0:0", p);
        float *g1 = sw_GetTensor(&W, W.db[p], "grad:%d:0:1", p);
        float *avg = sw_GetTensor(&W, W.db[p], "avg:%d:0", p);
        for (size_t i = 0; i < W.P; i++)
            g0[i] = (g0[i] + g1[i]) / 2;
        assert_close(avg, g0, W.P, 1e-7);
        free(g0);
        free(g1);
        free(avg);
    }
}

static void notify(int p, long t, double loss)
{
    cJSON *req = make_req(p, t);
    cJSON_AddNumberToObject(req, "loss", loss);
    assert_int_equal(call(step_Notify, req, NULL), SP_OK);
}

static cJSON *barrier(int p, long t, int timeout_ms, spStatus want)
{
    cJSON *req = make_req(p, t), *res;
    cJSON_AddNumberToObject(req, "timeout_ms", timeout_ms);
    assert_int_equal(call(step_Barrier, req, &res), want);
    return res;
}

static void test_barrier_reports_missing_peer(void **state)
{
    (void)state;
    notify(0, 0, 2.5);
    notify(1, 0, 2.25);
    cJSON *res = barrier(0, 0, 5000, SP_OK);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(res, "arrived")), 2);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(res, "missing")), 0);
    const cJSON *losses = cJSON_GetObjectItem(res, "losses");
    assert_true(fabs(cJSON_GetArrayItem(losses, 1)->valuedouble - 2.25) < 1e-9);
    cJSON_Delete(res);

    /* Iteration 1: peer 1 never announces. */
    notify(0, 1, 2.0);
    res = barrier(0, 1, 300, SP_OK);
    const cJSON *missing = cJSON_GetObjectItem(res, "missing");
    assert_int_equal(cJSON_GetArraySize(missing), 1);
    assert_int_equal(cJSON_GetArrayItem(missing, 0)->valueint, 1);
    const cJSON *live = cJSON_GetObjectItem(cJSON_GetObjectItem(res, "context"), "live");
    assert_int_equal(cJSON_GetArraySize(live), 1);
    assert_int_equal(cJSON_GetArrayItem(live, 0)->valueint, 0);
    cJSON_Delete(res);
    /* A peer that did not notify cannot pass its own barrier. */
    res = barrier(1, 1, 200, SP_ERR_CONFLICT);
    assert_null(res);
}

static cJSON *aggregate(int p, long t, spStatus want)
{
    cJSON *res;
    assert_int_equal(call(step_Aggregate, make_req(p, t), &res), want);
    return res;
}

static void test_aggregate_mean_of_peer_averages(void **state)
{
    (void)state;
    float *a0 = sw_GetTensor(&W, W.db[0], "avg:0:0"), *a1 = sw_GetTensor(&W, W.db[1], "avg:1:0");
    for (size_t i = 0; i < W.P; i++)
        a0[i] = (a0[i] + a1[i]) / 2;
    for (int p = 0; p < N_PEERS; p++) {
        cJSON *res = aggregate(p, 0, SP_OK);
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(res, "used")), 2);
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(res, "rejected")), 0);
        assert_string_equal(cJSON_GetObjectItem(res, "aggregator")->valuestring, "mean");
        assert_true(num(cJSON_GetObjectItem(res, "bytes"), "in") >= 2.0 * W.P * sizeof(float));
        cJSON_Delete(res);
        float *agg = sw_GetTensor(&W, W.db[p], "agg:%d:0", p);
        assert_close(agg, a0, W.P, 1e-7);
        free(agg);
    }
    /* Krum cannot run on 2 inputs: the answer says what was used instead. */
    W.job.agg.kind = AGG_KRUM;
    cJSON *res = aggregate(0, 0, SP_OK);
    W.job.agg.kind = AGG_MEAN;
    assert_non_null(strstr(cJSON_GetObjectItem(res, "fallback")->valuestring, "krum"));
    assert_string_equal(cJSON_GetObjectItem(res, "aggregator")->valuestring, "mean");
    cJSON_Delete(res);
    free(a0);
    free(a1);
}

static void test_update_applies_sgd_step(void **state)
{
    (void)state;
    for (int p = 0; p < N_PEERS; p++) {
        float *agg = sw_GetTensor(&W, W.db[p], "agg:%d:0", p);
        cJSON *res;
        assert_int_equal(call(step_Update, make_req(p, 0), &res), SP_OK);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(res, "in_db")));
        assert_true(cJSON_IsFalse(cJSON_GetObjectItem(res, "duplicate")));
        cJSON_Delete(res);
        float *params = sw_GetTensor(&W, W.db[p], "params:%d", p);
        for (size_t i = 0; i < W.P; i++)
            agg[i] = D.params0[i] - W.job.optim.lr * agg[i];
        assert_close(params, agg, W.P, 1e-6);
        /* A retry of the same iteration does not apply it twice. */
        assert_int_equal(call(step_Update, make_req(p, 0), &res), SP_OK);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(res, "duplicate")));
        cJSON_Delete(res);
        float *again = sw_GetTensor(&W, W.db[p], "params:%d", p);
        assert_memory_equal(again, params, sizeof(float) * W.P);
        free(again);
        free(params);
        free(agg);
    }
    float *p0 = sw_GetTensor(&W, W.db[0], "params:%d", 0);
    float *p1 = sw_GetTensor(&W, W.db[1], "params:%d", 1);
    assert_close(p0, p1, W.P, 1e-7); /* both peers applied the same aggregate */
    assert_int_equal(memcmp(p0, D.params0, sizeof(float) * W.P) != 0, 1);
    free(p0);
    free(p1);
}

static void test_evaluate_matches_local_evaluation(void **state)
{
    (void)state;
    cJSON *req = make_req(-1, -1), *res;
    cJSON_AddNumberToObject(req, "source", 1);
    assert_int_equal(call(step_Evaluate, req, &res), SP_OK);
    assert_int_equal((int)num(res, "samples"), TEST_N);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(res, "test_set_cached")));
    double acc = num(res, "accuracy"), loss = num(res, "loss");
    cJSON_Delete(res);

    model *m = test_model();
    float *params = sw_GetTensor(&W, W.db[1], "params:%d", 1), l;
    int correct;
    assert_int_equal(model_Evaluate(m, params, D.test.x, D.test.y, TEST_N, &l, &correct),
                     SP_OK);
    assert_true(fabs(acc - (double)correct / TEST_N) < 1e-9);
    assert_true(fabs(loss - l) < 1e-4);
    free(params);
    model_Destroy(m);

    req = make_req(-1, -1);
    cJSON_AddNumberToObject(req, "source", 1);
    assert_int_equal(call(step_Evaluate, req, &res), SP_OK);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(res, "test_set_cached")));
    assert_true(fabs(num(res, "accuracy") - acc) < 1e-12);
    cJSON_Delete(res);
}

static void test_registry_lists_every_step(void **state)
{
    (void)state;
    const char *names[] = {"init", "minibatch", "gradient", "average", "notify",
                           "barrier", "aggregate", "update", "evaluate"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const step_def *d = steps_Find(names[i]);
        assert_non_null(d);
        assert_non_null(d->handler);
    }
    assert_null(steps_Find("nope"));
    assert_int_equal(steps_Ready(NULL), SP_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_puts_same_model_everywhere),
        cmocka_unit_test(test_minibatch_rows_are_the_shards_slot),
        cmocka_unit_test(test_gradient_matches_local_computation),
        cmocka_unit_test(test_average_is_mean_of_grads),
        cmocka_unit_test(test_barrier_reports_missing_peer),
        cmocka_unit_test(test_aggregate_mean_of_peer_averages),
        cmocka_unit_test(test_update_applies_sgd_step),
        cmocka_unit_test(test_evaluate_matches_local_evaluation),
        cmocka_unit_test(test_registry_lists_every_step),
    };
    return cmocka_run_group_tests(tests, world_Up, world_Down);
}
