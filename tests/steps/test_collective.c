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

#include "driver/job.h"
#include "fixture.h"
#include "ml/model.h"
#include "steps/chunks.h"
#include "steps/steps.h"
#include "store/store.h"
#include "sync/sync.h"

#define PASSWORD "collective-secret"
#define N_WORKERS 3

typedef struct {
    fx_server redis, nats;
    job_config job;
    size_t P;
    store *db;
    float *avg[N_WORKERS];
} world;

static world W;

/* ---- helpers ------------------------------------------------------------- */

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
    for (int i = 0; i < N_WORKERS; i++)
        cJSON_AddItemToArray(peers, cJSON_CreateString(addr));
    cJSON_AddStringToObject(o, "shared", addr);
    cJSON_AddNumberToObject(o, "minibatches", 1);
    return o;
}

/* Runs a handler; the request is consumed. *res (optional) is set on
 * success and NULL on failure. */
static spStatus call(rt_handler h, cJSON *body, cJSON **res)
{
    rt_request r = {.body = body};
    cJSON *out = cJSON_CreateObject();
    spStatus st = h(&r, out, NULL);
    if (st != SP_OK) {
        cJSON_Delete(out);
        out = NULL;
    }
    cJSON_Delete(body);
    if (res)
        *res = out;
    else
        cJSON_Delete(out);
    return st;
}

static void must(rt_handler h, cJSON *body, const char *what)
{
    spStatus st = call(h, body, NULL);
    if (st != SP_OK)
        fail_msg("%s: %s", what, sp_LastError());
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

static float *get_tensor(const char *suffix, size_t *n)
{
    char key[192];
    float *x = NULL;
    key_of(key, sizeof key, "%s", suffix);
    if (store_GetTensor(W.db, key, 0, &x, n) != SP_OK)
        fail_msg("GET %s: %s", key, sp_LastError());
    return x;
}

static int exists(const char *fmt, ...)
{
    char suffix[128], key[192];
    int e = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(suffix, sizeof suffix, fmt, ap);
    va_end(ap);
    key_of(key, sizeof key, "%s", suffix);
    assert_int_equal(store_Exists(W.db, key, &e), SP_OK);
    return e;
}

/* Worker w's average of iteration t: distinct values per worker. */
static void put_averages(long t)
{
    uint32_t seed = 12345u + (uint32_t)t * 77u;
    for (int w = 0; w < N_WORKERS; w++) {
        for (size_t i = 0; i < W.P; i++) {
            seed = seed * 1664525u + 1013904223u;
            W.avg[w][i] = (float)((seed >> 8) & 0xffff) / 65536.0f - 0.25f + 0.1f * (float)w;
        }
        char key[192];
        key_of(key, sizeof key, "avg:%d:%ld", w, t);
        assert_int_equal(store_PutTensor(W.db, key, W.avg[w], W.P, 600), SP_OK);
    }
}

static void assert_is_mean(const float *x, size_t n)
{
    assert_int_equal(n, W.P);
    double worst = 0, sum_gap = 0;
    for (size_t i = 0; i < W.P; i++) {
        double mean = 0, sum = 0;
        for (int w = 0; w < N_WORKERS; w++)
            sum += W.avg[w][i];
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
    snprintf(W.job.id, sizeof W.job.id, "coll-test");
    W.job.arch = ARCH_SCATTER_REDUCE;
    W.job.model.kind = MODEL_MLP;
    W.job.model.n_hidden = 1;
    W.job.model.hidden[0] = 32;
    W.job.workers = N_WORKERS;
    W.job.sync_timeout_ms = 3000;

    model_spec spec = W.job.model;
    spec.in_c = 1;
    spec.in_h = spec.in_w = 28;
    spec.classes = 10;
    model *m;
    if (model_Create(&spec, &m) != SP_OK)
        return -1;
    W.P = model_ParamCount(m);
    model_Destroy(m);
    for (int w = 0; w < N_WORKERS; w++)
        if (!(W.avg[w] = malloc(sizeof(float) * W.P)))
            return -1;
    store_addr a;
    char s[64];
    snprintf(s, sizeof s, "127.0.0.1:%d", W.redis.port);
    if (store_ParseAddr(s, &a) != SP_OK)
        return -1;
    snprintf(a.password, sizeof a.password, "%s", PASSWORD);
    return store_Connect(&a, &W.db) == SP_OK ? 0 : -1;
}

static int world_Down(void **state)
{
    (void)state;
    for (int w = 0; w < N_WORKERS; w++)
        free(W.avg[w]);
    store_Destroy(W.db);
    store_ReleaseCached();
    sync_CachedCloseAll();
    fx_Stop(&W.redis);
    fx_Stop(&W.nats);
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
        float m = (W.avg[0][off + i] + W.avg[1][off + i] + W.avg[2][off + i]) / 3.0f;
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
    assert_true(exists("chunk:2:0:0"));

    /* The next iteration cleans up the first one's chunks and averages. */
    scatter_reduce_iteration(1);
    float *agg = get_tensor("agg:1:1", &n);
    assert_is_mean(agg, n);
    free(agg);
    for (int c = 0; c < N_WORKERS; c++) {
        assert_false(exists("merged:%d:0", c));
        for (int w = 0; w < N_WORKERS; w++)
            assert_false(exists("chunk:%d:%d:0", c, w));
    }
    assert_false(exists("avg:0:0"));
    assert_false(exists("agg:2:0"));
    assert_true(exists("merged:0:1"));
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
    assert_false(exists("merged:0:5"));
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
    assert_false(exists("reduced:7"));
    assert_false(exists("avg:2:7"));
    assert_false(exists("agg:2:7"));
    assert_true(exists("agg:1:7"));
}

static void test_all_reduce_without_the_master_times_out(void **state)
{
    (void)state;
    /* No master_reduce for iteration 9: fetch_reduced waits, bounded. */
    cJSON *req = make_req(1, 9);
    cJSON_AddNumberToObject(req, "timeout_ms", 300);
    assert_int_equal(call(step_FetchReduced, req, NULL), SP_ERR_TIMEOUT);
    assert_false(exists("agg:1:9"));
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
