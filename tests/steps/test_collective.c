/* test_collective.c - the LambdaML architectures' own steps, in-process,
 * against a real redis-server (module loaded, password set) and a real
 * nats-server: the ScatterReduce chunk formula, a ScatterReduce iteration
 * (scatter, chunk_reduce, chunk_gather) and an AllReduce iteration (notify,
 * master_reduce, fetch_reduced), each checked against the plain mean of the
 * workers' averages computed here. */
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
#include "steps/chunks.h"
#include "steps/steps.h"
#include "store/store.h"
#include "sync/sync.h"

#define PASSWORD "collective-secret"
#define N_WORKERS 3

/* One Redis plays every worker and the shared store. */
static sw_world W;
static float *avg[N_WORKERS]; /* the workers' averages of the iteration */

/* ---- helpers ------------------------------------------------------------- */

static cJSON *make_req(int peer, long t)
{
    return sw_Request(&W, peer, t);
}

static spStatus call(rt_handler h, cJSON *body, cJSON **res) { return sw_Call(h, body, res, 1); }

static void must(rt_handler h, cJSON *body, const char *what)
{
    spStatus st = call(h, body, NULL);
    if (st != SP_OK)
        fail_msg("%s: %s", what, sp_LastError());
}

static float *get_tensor(const char *suffix, size_t *n)
{
    return sw_GetTensorN(&W, W.db[0], n, "%s", suffix);
}

/* Worker w's average of iteration t: distinct values per worker. */
static void put_averages(long t)
{
    uint32_t seed = 12345u + (uint32_t)t * 77u;
    for (int w = 0; w < N_WORKERS; w++) {
        for (size_t i = 0; i < W.P; i++) {
            seed = seed * 1664525u + 1013904223u;
            avg[w][i] = (float)((seed >> 8) & 0xffff) / 65536.0f - 0.25f + 0.1f * (float)w;
        }
        char key[192];
        sw_Key(&W, key, sizeof key, "avg:%d:%ld", w, t);
        assert_int_equal(store_PutTensor(W.db[0], key, avg[w], W.P, 600), SP_OK);
    }
}

static void assert_is_mean(const float *x, size_t n)
{
    assert_int_equal(n, W.P);
    double worst = 0, sum_gap = 0;
    for (size_t i = 0; i < W.P; i++) {
        double mean = 0, sum = 0;
        for (int w = 0; w < N_WORKERS; w++)
            sum += avg[w][i];
        mean = sum / N_WORKERS;
        worst = fmax(worst, fabs(x[i] - mean));
        sum_gap += fabs(x[i] - sum);
    }
    assert_true(worst < 1e-6);
    /* ... and not the sum (the published replication's mistake). */
    assert_true(sum_gap / (double)W.P > 0.01);
}

/* ---- setup ----------------------------------------------------------------- */

static int world_Up(void **state)
{
    (void)state;
    const sw_options o = {.n_peers = N_WORKERS, .password = PASSWORD, .with_nats = 1,
                          .one_redis = 1, .timeout_ms = 5000};
    if (sw_Up(&W, &o) != 0)
        return -1;
    snprintf(W.job.id, sizeof W.job.id, "coll-test");
    W.job.arch = ARCH_SCATTER_REDUCE;
    W.job.model.kind = MODEL_MLP;
    W.job.model.n_hidden = 1;
    W.job.model.hidden[0] = 32;
    W.job.sync_timeout_ms = 3000;

    model *m = sw_Model(&W);
    W.P = model_ParamCount(m);
    model_Destroy(m);
    for (int w = 0; w < N_WORKERS; w++)
        if (!(avg[w] = malloc(sizeof(float) * W.P)))
            return -1;
    return 0;
}

static int world_Down(void **state)
{
    (void)state;
    for (int w = 0; w < N_WORKERS; w++)
        free(avg[w]);
    sw_Down(&W);
    return 0;
}

/* ---- the chunk formula -------------------------------------------------------- */

static void check_chunks(size_t P, int N)
{
    size_t next = 0, lo = (size_t)-1, hi = 0;
    for (int r = 0; r < N; r++) {
        size_t off, len;
        chunk_Range(P, N, r, &off, &len);
        /* Contiguous, in order: every coordinate in exactly one chunk. */
        assert_int_equal(off, next);
        next = off + len;
        lo = len < lo ? len : lo;
        hi = len > hi ? len : hi;
        /* The first P%N chunks carry the remainder. */
        assert_int_equal(len, P / (size_t)N + ((size_t)r < P % (size_t)N));
    }
    assert_int_equal(next, P);
    assert_true(hi - lo <= 1);
}

static void test_chunk_formula_tiles_uneven_sizes(void **state)
{
    (void)state;
    /* P not divisible by N (the interesting case), divisible, and P < N. */
    check_chunks(10, 3);
    check_chunks(25450, 3);
    check_chunks(25450, 4);
    check_chunks(101770, 8);
    check_chunks(12, 4);
    check_chunks(2, 5);
    check_chunks(7, 1);
    assert_int_equal(W.P % N_WORKERS != 0, 1); /* the iteration below is uneven too */
    size_t off, len;
    chunk_Range(10, 3, 1, &off, &len); /* [4, 7): 10/3*1 + min(1, 1) */
    assert_int_equal(off, 4);
    assert_int_equal(len, 3);
}

/* ---- ScatterReduce ------------------------------------------------------------ */

static void scatter_reduce_iteration(long t)
{
    put_averages(t);
    for (int w = 0; w < N_WORKERS; w++)
        must(step_Scatter, make_req(w, t), "scatter");
    for (int w = 0; w < N_WORKERS; w++)
        must(step_ChunkReduce, make_req(w, t), "chunk_reduce");
    for (int w = 0; w < N_WORKERS; w++)
        must(step_ChunkGather, make_req(w, t), "chunk_gather");
}

static void test_scatter_reduce_equals_mean(void **state)
{
    (void)state;
    scatter_reduce_iteration(0);
    /* Owner r's merged chunk is the mean of the r-th chunks. */
    size_t off, len, n;
    chunk_Range(W.P, N_WORKERS, 1, &off, &len);
    float *merged = get_tensor("merged:1:0", &n);
    assert_int_equal(n, len);
    for (size_t i = 0; i < len; i++) {
        float m = (avg[0][off + i] + avg[1][off + i] + avg[2][off + i]) / 3.0f;
        assert_true(fabsf(merged[i] - m) < 1e-6f);
    }
    free(merged);
    for (int w = 0; w < N_WORKERS; w++) {
        char suffix[64];
        snprintf(suffix, sizeof suffix, "agg:%d:0", w);
        float *agg = get_tensor(suffix, &n);
        assert_is_mean(agg, n);
        free(agg);
    }
    assert_true(sw_Exists(&W, W.db[0], "chunk:2:0:0"));

    /* The next iteration cleans up the first one's chunks and averages. */
    scatter_reduce_iteration(1);
    float *agg = get_tensor("agg:1:1", &n);
    assert_is_mean(agg, n);
    free(agg);
    for (int c = 0; c < N_WORKERS; c++) {
        assert_false(sw_Exists(&W, W.db[0], "merged:%d:0", c));
        for (int w = 0; w < N_WORKERS; w++)
            assert_false(sw_Exists(&W, W.db[0], "chunk:%d:%d:0", c, w));
    }
    assert_false(sw_Exists(&W, W.db[0], "avg:0:0"));
    assert_false(sw_Exists(&W, W.db[0], "agg:2:0"));
    assert_true(sw_Exists(&W, W.db[0], "merged:0:1"));
}

static void test_scatter_reduce_waits_are_bounded(void **state)
{
    (void)state;
    /* Only worker 0 scattered iteration 5: the owner's wait times out
     * naming the others, and nothing is merged. */
    put_averages(5);
    must(step_Scatter, make_req(0, 5), "scatter");
    cJSON *req = make_req(0, 5);
    cJSON_AddNumberToObject(req, "timeout_ms", 300);
    assert_int_equal(call(step_ChunkReduce, req, NULL), SP_ERR_TIMEOUT);
    assert_non_null(strstr(sp_LastError(), "1, 2"));
    assert_false(sw_Exists(&W, W.db[0], "merged:0:5"));
    /* A caller outside "live" is refused. */
    req = make_req(0, 5);
    cJSON *live = cJSON_AddArrayToObject(req, "live");
    cJSON_AddItemToArray(live, cJSON_CreateNumber(1));
    assert_int_equal(call(step_Scatter, req, NULL), SP_ERR_INVALID);
}

/* ---- AllReduce -------------------------------------------------------------------- */

static void test_all_reduce_master_takes_the_mean(void **state)
{
    (void)state;
    long t = 7;
    put_averages(t);
    for (int w = 0; w < N_WORKERS; w++)
        must(step_Notify, make_req(w, t), "notify");
    /* Only the master (first live worker) reduces. */
    assert_int_equal(call(step_MasterReduce, make_req(1, t), NULL), SP_ERR_INVALID);
    cJSON *res;
    assert_int_equal(call(step_MasterReduce, make_req(0, t), &res), SP_OK);
    assert_int_equal((int)cJSON_GetObjectItem(res, "inputs")->valuedouble, N_WORKERS);
    cJSON_Delete(res);
    size_t n;
    float *reduced = get_tensor("reduced:7", &n);
    assert_is_mean(reduced, n);
    free(reduced);
    for (int w = 0; w < N_WORKERS; w++)
        must(step_FetchReduced, make_req(w, t), "fetch_reduced");
    for (int w = 0; w < N_WORKERS; w++) {
        char suffix[64];
        snprintf(suffix, sizeof suffix, "agg:%d:7", w);
        float *agg = get_tensor(suffix, &n);
        assert_is_mean(agg, n);
        free(agg);
    }
    /* Iteration 8: the master drops reduced:7, workers their keys of 7. */
    put_averages(8);
    for (int w = 0; w < N_WORKERS; w++)
        must(step_Notify, make_req(w, 8), "notify");
    must(step_MasterReduce, make_req(0, 8), "master_reduce");
    must(step_FetchReduced, make_req(2, 8), "fetch_reduced");
    assert_false(sw_Exists(&W, W.db[0], "reduced:7"));
    assert_false(sw_Exists(&W, W.db[0], "avg:2:7"));
    assert_false(sw_Exists(&W, W.db[0], "agg:2:7"));
    assert_true(sw_Exists(&W, W.db[0], "agg:1:7"));
}

static void test_all_reduce_without_the_master_times_out(void **state)
{
    (void)state;
    /* No master_reduce for iteration 9: fetch_reduced waits, bounded. */
    cJSON *req = make_req(1, 9);
    cJSON_AddNumberToObject(req, "timeout_ms", 300);
    assert_int_equal(call(step_FetchReduced, req, NULL), SP_ERR_TIMEOUT);
    assert_false(sw_Exists(&W, W.db[0], "agg:1:9"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunk_formula_tiles_uneven_sizes),
        cmocka_unit_test(test_scatter_reduce_equals_mean),
        cmocka_unit_test(test_scatter_reduce_waits_are_bounded),
        cmocka_unit_test(test_all_reduce_master_takes_the_mean),
        cmocka_unit_test(test_all_reduce_without_the_master_times_out),
    };
    return cmocka_run_group_tests(tests, world_Up, world_Down);
}
