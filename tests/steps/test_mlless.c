/* test_mlless.c - MLLESS: the significance filter (what is sent, what keeps
 * accumulating, sent coordinates reset), the sparse wire encoding (round
 * trip and rejection of bad blobs), the supervisor's policy (stop at the
 * target loss, scale-in when the loss curve flattens) and the steps
 * sparsify, supervisor and apply in-process against a real redis-server
 * and nats-server - including a scale-in that hands the removed worker's
 * accumulator to its heir. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/kernels.h"
#include "core/wire.h"
#include "job/job.h"
#include "fixture.h"
#include "steps_world.h"
#include "ml/model.h"
#include "steps/mlless.h"
#include "steps/steps.h"
#include "store/store.h"
#include "sync/sync.h"

#define PASSWORD "mlless-secret"
#define N_WORKERS 3

/* ---- the filter ------------------------------------------------------------ */

/* kern_Filter, its pairs split into idx/val. */
static size_t filter(float *acc, const float *g, float scale, const float *w, size_t n, float thr,
                     uint32_t *idx, float *val)
{
    unsigned char *pairs = malloc(n * KERN_PAIR);
    size_t k = kern_Filter(acc, acc, g, scale, w, n, thr, pairs);
    for (size_t j = 0; j < k; j++) {
        memcpy(&idx[j], pairs + KERN_PAIR * j, 4);
        memcpy(&val[j], pairs + KERN_PAIR * j + 4, 4);
    }
    free(pairs);
    return k;
}

static void test_filter_sends_significant_and_accumulates_the_rest(void **state)
{
    (void)state;
    /* lr 0.1, thr 0.01: acc += 0.1 * g (the step applied), sent when
     * |acc_i| > 0.01 * |w_i|. */
    float w[6] = {1.0f, 1.0f, -2.0f, 0.0f, 10.0f, 0.5f};
    float acc[6] = {0.005f, 0.0f, -0.01f, 0.0f, 0.05f, 0.0f};
    float g[6] = {0.06f, 0.09f, -0.2f, 1e-6f, 0.4f, -0.02f};
    uint32_t idx[6];
    float val[6];
    size_t k = filter(acc, g, 0.1f, w, 6, 0.01f, idx, val);
    /* acc = {0.011, 0.009, -0.03, 1e-7, 0.09, -0.002}; thresholds 0.01*|w| =
     * {0.01, 0.01, 0.02, 0, 0.1, 0.005}: 0, 2 and 3 (zero weight) pass. */
    assert_int_equal(k, 3);
    assert_int_equal(idx[0], 0);
    assert_int_equal(idx[1], 2);
    assert_int_equal(idx[2], 3);
    assert_true(fabsf(val[0] - 0.011f) < 1e-8f);
    assert_true(fabsf(val[1] + 0.03f) < 1e-8f);
    assert_true(fabsf(val[2] - 1e-7f) < 1e-12f);
    /* Sent coordinates reset; the others keep the sum. */
    assert_true(acc[0] == 0 && acc[2] == 0 && acc[3] == 0);
    assert_true(fabsf(acc[1] - 0.009f) < 1e-8f);
    assert_true(fabsf(acc[4] - 0.09f) < 1e-8f);
    assert_true(fabsf(acc[5] + 0.002f) < 1e-8f);
    /* Accumulated long enough, coordinate 1 goes out too (0.009 + 0.002). */
    float g2[6] = {0, 0.02f, 0, 0, 0, 0};
    k = filter(acc, g2, 0.1f, w, 6, 0.01f, idx, val);
    assert_int_equal(k, 1);
    assert_int_equal(idx[0], 1);
    assert_true(fabsf(val[0] - 0.011f) < 1e-7f);
    assert_true(acc[1] == 0 && fabsf(acc[4] - 0.09f) < 1e-8f);
    /* No accumulator in: the filter starts from zeros. */
    float fresh[6] = {9, 9, 9, 9, 9, 9};
    unsigned char pairs[6 * KERN_PAIR];
    assert_int_equal(kern_Filter(fresh, NULL, g2, 0.1f, w, 6, 0.01f, pairs), 0);
    assert_true(fabsf(fresh[1] - 0.002f) < 1e-9f && fresh[0] == 0 && fresh[4] == 0);
}

static void test_threshold_decays_and_zero_sends_everything(void **state)
{
    (void)state;
    assert_true(fabsf(mlless_Threshold(0.5f, 0) - 0.5f) < 1e-7f);
    assert_true(fabsf(mlless_Threshold(0.5f, 3) - 0.25f) < 1e-7f);
    assert_true(fabsf(mlless_Threshold(0.5f, 99) - 0.05f) < 1e-7f);
    /* v = 0: every nonzero coordinate is sent at once (plain SGD). */
    float w[4] = {1, 2, 3, 4}, acc[4] = {0}, g[4] = {1e-9f, 0, -1e-9f, 5};
    uint32_t idx[4];
    float val[4];
    assert_int_equal(filter(acc, g, 0.1f, w, 4, mlless_Threshold(0, 5), idx, val), 3);
    assert_true(acc[0] == 0 && acc[1] == 0 && acc[2] == 0 && acc[3] == 0);
}

/* ---- the sparse wire encoding --------------------------------------------------- */

static void test_sparse_round_trip(void **state)
{
    (void)state;
    uint32_t idx[3] = {2, 7, 99};
    float val[3] = {0.5f, -1.25f, 3e-8f};
    uint8_t *blob;
    size_t len;
    assert_int_equal(sparse_Encode(idx, val, 3, 100, &blob, &len), SP_OK);
    /* 24-byte header + 8 bytes per pair; dtype and dense length on the wire. */
    assert_int_equal(len, 24 + 3 * 8);
    wire_view v;
    assert_int_equal(wire_Parse(blob, len, &v), SP_OK);
    assert_int_equal(v.dtype, WIRE_SPARSE_F32);
    assert_int_equal(v.count, 3);
    assert_int_equal(v.extra, 100);
    uint32_t *ix;
    float *vx;
    size_t k;
    assert_int_equal(sparse_Decode(blob, len, 100, &ix, &vx, &k), SP_OK);
    assert_int_equal(k, 3);
    assert_memory_equal(ix, idx, sizeof idx);
    assert_memory_equal(vx, val, sizeof val);
    free(ix);
    free(vx);
    float dense[100] = {0};
    dense[7] = 1.0f;
    assert_int_equal(sparse_AddInto(blob, len, 100, 0.5f, dense, NULL, &k), SP_OK);
    assert_true(dense[2] == 0.25f && dense[7] == 1.0f - 0.625f && dense[99] == 1.5e-8f);
    /* The wrong dense length is refused, the dense vector untouched. */
    assert_int_equal(sparse_AddInto(blob, len, 101, 1.0f, dense, NULL, &k), SP_ERR_INVALID);
    assert_true(dense[2] == 0.25f);
    /* A flipped payload byte fails the checksum. */
    blob[30] ^= 0x40;
    assert_int_equal(sparse_Decode(blob, len, 100, &ix, &vx, &k), SP_ERR_FORMAT);
    free(blob);
    /* An empty update is valid. */
    assert_int_equal(sparse_Encode(idx, val, 0, 100, &blob, &len), SP_OK);
    assert_int_equal(sparse_AddInto(blob, len, 100, 1.0f, dense, NULL, &k), SP_OK);
    assert_int_equal(k, 0);
    free(blob);
}

static void test_sparse_rejects_bad_pairs(void **state)
{
    (void)state;
    uint8_t *blob;
    size_t len, k;
    float dense[10] = {0};
    /* Encoded by hand: (index, value) pairs straight into the wire format. */
    uint32_t out_of_range[2] = {10, 0x3f800000u};          /* index 10 of 10 */
    uint32_t repeated[4] = {3, 0x3f800000u, 3, 0x3f800000u};
    uint32_t nan[2] = {1, 0x7fc00000u};
    const uint32_t *cases[3] = {out_of_range, repeated, nan};
    const uint64_t counts[3] = {1, 2, 1};
    for (int c = 0; c < 3; c++) {
        assert_int_equal(wire_Encode(WIRE_SPARSE_F32, cases[c], counts[c], 10, &blob, &len),
                         SP_OK);
        assert_int_equal(sparse_AddInto(blob, len, 10, 1.0f, dense, NULL, &k), SP_ERR_INVALID);
        free(blob);
    }
    for (int i = 0; i < 10; i++)
        assert_true(dense[i] == 0);
    /* A dense tensor is not a sparse update. */
    float x[10] = {0};
    assert_int_equal(wire_Encode(WIRE_F32, x, 10, 0, &blob, &len), SP_OK);
    assert_int_equal(sparse_AddInto(blob, len, 10, 1.0f, dense, NULL, &k), SP_ERR_INVALID);
    free(blob);
}

/* ---- the supervisor's policy ------------------------------------------------------ */

static void run_policy(mlless_state *s, const mlless_policy *p, long from, long to,
                       double (*loss)(long), const int *live, int n, long *removed_at,
                       mlless_decision *last)
{
    *removed_at = -1;
    for (long t = from; t < to; t++) {
        mlless_Decide(s, p, t, loss(t), 1, live, n, last);
        if (last->remove >= 0) {
            *removed_at = t;
            return;
        }
    }
}

static double flat(long t) { (void)t; return 1.0; }
static double steady(long t) { return 3.0 - 0.001 * (double)t; }
static double curve(long t) { return 0.4 + 2.0 * pow(0.97, (double)t); }

static void test_auto_tuner_removes_past_the_knee_within_tolerance(void **state)
{
    (void)state;
    int live[4] = {0, 1, 2, 3};
    const mlless_policy on = {.scale_in = 1, .M = 1}, off = {.scale_in = 0, .M = 1};
    mlless_state s;
    mlless_decision d;
    long at;
    /* A loss falling at a constant rate never has a knee; a flat one has
     * no drop to measure one against: nobody is removed. */
    mlless_StateInit(&s);
    run_policy(&s, &on, 0, 50 * MLLESS_INTERVAL, steady, live, 4, &at, &d);
    assert_int_equal(at, -1);
    mlless_StateInit(&s);
    run_policy(&s, &on, 0, 50 * MLLESS_INTERVAL, flat, live, 4, &at, &d);
    assert_int_equal(at, -1);
    /* A convex curve: removed at an interval's end, past the knee, once the
     * predicted gap drop/n is within the tolerance of the loss - and not
     * an interval earlier. */
    mlless_StateInit(&s);
    run_policy(&s, &on, 0, 50 * MLLESS_INTERVAL, curve, live, 4, &at, &d);
    assert_true(at > 0);
    assert_int_equal((at + 1) % MLLESS_INTERVAL, 0);
    assert_int_equal(d.remove, 3); /* the highest-numbered */
    assert_true(s.knee);
    double mean = 0, prev = 0;
    for (long t = at + 1 - MLLESS_INTERVAL; t <= at; t++)
        mean += curve(t) / MLLESS_INTERVAL;
    for (long t = at + 1 - 2 * MLLESS_INTERVAL; t <= at - MLLESS_INTERVAL; t++)
        prev += curve(t) / MLLESS_INTERVAL;
    assert_true((prev - mean) / 4 <= MLLESS_TOLERANCE * mean);
    double prev2 = 0;
    for (long t = at + 1 - 3 * MLLESS_INTERVAL; t <= at - 2 * MLLESS_INTERVAL; t++)
        prev2 += curve(t) / MLLESS_INTERVAL;
    assert_true((prev2 - prev) / 4 > MLLESS_TOLERANCE * prev);
    /* The next removal comes at another interval's end, at least one
     * interval later. */
    long first = at;
    run_policy(&s, &on, at + 1, 50 * MLLESS_INTERVAL, curve, live, 3, &at, &d);
    assert_true(at >= first + MLLESS_INTERVAL);
    assert_int_equal((at + 1) % MLLESS_INTERVAL, 0);
    assert_int_equal(d.remove, 2);
    /* Scale-in off, or a single worker left: nobody is removed. */
    mlless_StateInit(&s);
    run_policy(&s, &off, 0, 50 * MLLESS_INTERVAL, curve, live, 4, &at, &d);
    assert_int_equal(at, -1);
    mlless_StateInit(&s);
    run_policy(&s, &on, 0, 50 * MLLESS_INTERVAL, curve, live, 1, &at, &d);
    assert_int_equal(at, -1);
}

static void test_stop_after_ten_iterations_under_the_target(void **state)
{
    (void)state;
    int live[4] = {0, 1, 2, 3};
    const mlless_policy p = {.target_loss = 0.5, .M = 1}, none = {.M = 1};
    mlless_state s;
    mlless_decision d;
    /* Stop once the loss stayed below the target for MLLESS_STOP_STEPS
     * iterations in a row: one iteration above restarts the count, one
     * without a loss neither counts nor breaks it. */
    mlless_StateInit(&s);
    long t = 0;
    for (; t < MLLESS_STOP_STEPS - 1; t++) {
        mlless_Decide(&s, &p, t, 0.1, 1, live, 4, &d);
        assert_false(d.stop);
    }
    mlless_Decide(&s, &p, t++, 0.7, 1, live, 4, &d);
    assert_false(d.stop);
    assert_int_equal(d.below, 0);
    for (int i = 0; i < MLLESS_STOP_STEPS - 1; i++, t++) {
        mlless_Decide(&s, &p, t, 0.1, 1, live, 4, &d);
        assert_false(d.stop);
        mlless_Decide(&s, &p, ++t, 0, 0, live, 4, &d); /* no loss reported */
        assert_false(d.stop);
    }
    mlless_Decide(&s, &p, t, 0.1, 1, live, 4, &d);
    assert_true(d.stop);
    assert_int_equal(d.below, MLLESS_STOP_STEPS);
    /* No target: never. */
    mlless_StateInit(&s);
    for (t = 0; t < 5 * MLLESS_STOP_STEPS; t++)
        mlless_Decide(&s, &none, t, 0.0, 1, live, 4, &d);
    assert_false(d.stop);
}

/* Re-striding: with every worker live each takes its own shard; after a
 * removal the live ones take the next minibatches of every shard, the
 * removed worker's included; no minibatch is taken twice in an epoch. */
static void test_restride_covers_every_shard(void **state)
{
    (void)state;
    enum { N = 4, M = 2, I = 12 };
    const mlless_policy p = {.scale_in = 1, .M = M, .iters = I};
    static int taken[N][I * M];
    int live[N] = {0, 1, 2, 3}, seen_after[N] = {0};
    mlless_state s;
    mlless_decision d;
    mlless_StateInit(&s);
    long cursor = 0;
    for (long t = 0; t < 2 * I; t++) {
        int n = t % I < 3 ? N : N - 1; /* worker 3 is gone from t mod I = 3 on */
        if (t % I == 0)
            memset(taken, 0, sizeof taken);
        for (int k = 0; k < n; k++)
            for (int m = 0; m < M; m++) {
                int shard;
                long slot;
                mlless_Restride(cursor, k, m, M, N, &shard, &slot);
                assert_true(shard >= 0 && shard < N && slot >= 0 && slot < I * M);
                if (n == N) {
                    assert_int_equal(shard, k);
                    assert_int_equal(slot, (t % I) * M + m);
                } else {
                    seen_after[shard] = 1;
                }
                assert_int_equal(taken[shard][slot]++, 0);
            }
        mlless_Decide(&s, &p, t, 1.0, 1, live, n, &d);
        cursor = d.cursor;
        assert_int_equal(cursor, (t + 1) % I == 0 ? 0 : s.cursor);
    }
    for (int r = 0; r < N; r++)
        assert_true(seen_after[r]); /* shard 3 too */
}

/* ---- the steps against real servers -------------------------------------------- */

/* One Redis plays every worker and the shared store. */
static sw_world W;
static float *params[N_WORKERS]; /* each worker's model */

static cJSON *make_req(int peer, long t, const int *live, int n_live)
{
    cJSON *o = sw_Request(&W, peer, t);
    cJSON *l = cJSON_AddArrayToObject(o, "live");
    for (int i = 0; i < n_live; i++)
        cJSON_AddItemToArray(l, cJSON_CreateNumber(live[i]));
    return o;
}

static spStatus call(rt_handler h, cJSON *body, cJSON **res) { return sw_Call(h, body, res, 0); }

static void put(const float *x, const char *fmt, int w, long t)
{
    char suffix[64], key[192];
    snprintf(suffix, sizeof suffix, fmt, w, t);
    sw_Key(&W, key, sizeof key, "%s", suffix);
    assert_int_equal(store_PutTensor(W.db[0], key, x, W.P, 600), SP_OK);
}

static float *get(const char *fmt, int w, long t)
{
    char suffix[64], key[192];
    float *x = NULL;
    size_t n;
    snprintf(suffix, sizeof suffix, fmt, w, t);
    sw_Key(&W, key, sizeof key, "%s", suffix);
    if (store_GetTensor(W.db[0], key, W.P, &x, &n) != SP_OK)
        fail_msg("GET %s: %s", key, sp_LastError());
    return x;
}

static int exists(const char *fmt, int w, long t)
{
    char suffix[64], key[192];
    int e = 0;
    snprintf(suffix, sizeof suffix, fmt, w, t);
    sw_Key(&W, key, sizeof key, "%s", suffix);
    assert_int_equal(store_Exists(W.db[0], key, &e), SP_OK);
    return e;
}

/* A deterministic gradient per (worker, iteration). */
static void gradient_of(int w, long t, float *g)
{
    uint32_t s = 99u + (uint32_t)w * 7919u + (uint32_t)t * 104729u;
    for (size_t i = 0; i < W.P; i++) {
        s = s * 1664525u + 1013904223u;
        g[i] = ((float)((s >> 8) & 0xffff) / 65536.0f - 0.5f) * 0.2f;
    }
}

static int world_Up(void **state)
{
    (void)state;
    const sw_options o = {.n_peers = N_WORKERS, .password = PASSWORD, .with_nats = 1,
                          .one_redis = 1, .timeout_ms = 5000};
    if (sw_Up(&W, &o) != 0)
        return -1;
    snprintf(W.job.id, sizeof W.job.id, "mlless-test");
    W.job.arch = ARCH_MLLESS;
    W.job.model.kind = MODEL_LOGREG;
    W.job.optim.lr = 0.1f;
    W.job.significance = 0.05f;
    W.job.sync_timeout_ms = 3000;
    model *m = sw_Model(&W);
    W.P = model_ParamCount(m);
    for (int w = 0; w < N_WORKERS; w++) {
        params[w] = malloc(sizeof(float) * W.P);
        model_Init(m, params[w], 5);
        /* Nonzero weights everywhere, so the threshold matters for all. */
        for (size_t i = 0; i < W.P; i++)
            params[w][i] += 0.05f;
    }
    model_Destroy(m);
    return 0;
}

static int world_Down(void **state)
{
    (void)state;
    for (int w = 0; w < N_WORKERS; w++)
        free(params[w]);
    sw_Down(&W);
    return 0;
}

/* sparsify for every live worker (gradient_of as avg) and the supervisor. */
static void mlless_Report(long t, const int *live, int n, double loss)
{
    float *g = malloc(sizeof(float) * W.P);
    for (int i = 0; i < n; i++) {
        int w = live[i];
        if (t == 0)
            put(params[w], "params:%d", w, 0);
        gradient_of(w, t, g);
        put(g, "avg:%d:%ld", w, t);
        cJSON *req = make_req(w, t, live, n);
        cJSON_AddNumberToObject(req, "loss", loss);
        assert_int_equal(call(step_Sparsify, req, NULL), SP_OK);
    }
    free(g);
    assert_int_equal(call(step_Supervisor, make_req(live[0], t, live, n), NULL), SP_OK);
}

/* mlless_Report, then apply for every live worker; returns the apply
 * answers (caller frees). */
static void mlless_Iteration(long t, const int *live, int n, double loss, cJSON **applied)
{
    mlless_Report(t, live, n, loss);
    for (int i = 0; i < n; i++)
        assert_int_equal(call(step_Apply, make_req(live[i], t, live, n), &applied[i]), SP_OK);
}

static void free_all(cJSON **a, int n)
{
    for (int i = 0; i < n; i++)
        cJSON_Delete(a[i]);
}

/* Worker w's replica after its own SGD step of t (what sparsify's filter
 * tests against): params - lr * g, as kern_Sgd rounds. */
static void own_step(float *x, const float *g)
{
    for (size_t i = 0; i < W.P; i++)
        x[i] -= W.job.optim.lr * (g[i] + 0.0f * x[i]);
}

static void test_iteration_applies_own_step_and_adds_the_others_significant_ones(void **state)
{
    (void)state;
    int live[N_WORKERS] = {0, 1, 2};
    cJSON *ans[N_WORKERS];
    float thr0 = mlless_Threshold(W.job.significance, 0);
    mlless_Iteration(0, live, N_WORKERS, 2.0, ans);
    /* Expected per worker: its own step applied, the filter on zeros +
     * lr * g against the updated replica. */
    float *own[N_WORKERS], *acc = malloc(sizeof(float) * W.P);
    uint32_t *idx[N_WORKERS];
    float *val[N_WORKERS];
    size_t ks[N_WORKERS], total = 0;
    for (int w = 0; w < N_WORKERS; w++) {
        own[w] = malloc(sizeof(float) * W.P);
        idx[w] = malloc(sizeof(uint32_t) * W.P);
        val[w] = malloc(sizeof(float) * W.P);
        memcpy(own[w], params[w], sizeof(float) * W.P);
        memset(acc, 0, sizeof(float) * W.P);
        float *g = malloc(sizeof(float) * W.P);
        gradient_of(w, 0, g);
        own_step(own[w], g);
        size_t k = ks[w] = filter(acc, g, W.job.optim.lr, own[w], W.P, thr0, idx[w], val[w]);
        assert_true(k > 0 && k < W.P); /* some sent, some kept: the test means something */
        total += k;
        /* What stayed behind is the residual accumulator. */
        float *stored = get("acc:%d:%ld", w, 0);
        assert_memory_equal(stored, acc, sizeof(float) * W.P);
        free(stored);
        /* The sparse update holds exactly the sent pairs. */
        char key[192];
        uint8_t *blob;
        size_t len, kk;
        uint32_t *ix;
        float *vx;
        sw_Key(&W, key, sizeof key, "sparse:%d:0", w);
        assert_int_equal(store_GetBlob(W.db[0], key, &blob, &len), SP_OK);
        assert_int_equal(sparse_Decode(blob, len, W.P, &ix, &vx, &kk), SP_OK);
        assert_int_equal(kk, k);
        assert_memory_equal(ix, idx[w], k * sizeof(uint32_t));
        assert_memory_equal(vx, val[w], k * sizeof(float));
        free(ix);
        free(vx);
        free(blob);
        free(g);
    }
    /* Each replica: its own whole step, plus every other worker's
     * significant steps - summed, not averaged. Replicas differ by the
     * residuals not sent. */
    for (int w = 0; w < N_WORKERS; w++) {
        float *want = calloc(W.P, sizeof(float));
        for (int q = 0; q < N_WORKERS; q++)
            for (size_t j = 0; q != w && j < ks[q]; j++)
                want[idx[q][j]] += val[q][j];
        float *got = get("params:%d", w, 0);
        for (size_t i = 0; i < W.P; i++)
            assert_true(fabsf(got[i] - (own[w][i] - want[i])) < 1e-6f);
        free(got);
        free(want);
        assert_int_equal((int)cJSON_GetObjectItem(ans[w], "pairs")->valuedouble,
                         (int)(total - ks[w]));
        assert_null(cJSON_GetObjectItem(ans[w], "leave"));
        assert_null(cJSON_GetObjectItem(ans[w], "stop"));
        const cJSON *l = cJSON_GetObjectItem(cJSON_GetObjectItem(ans[w], "context"), "live");
        assert_int_equal(cJSON_GetArraySize(l), N_WORKERS);
    }
    float *p0 = get("params:%d", 0, 0), *p1 = get("params:%d", 1, 0);
    assert_true(memcmp(p0, p1, sizeof(float) * W.P) != 0);
    /* A retried apply adds nothing twice. */
    cJSON *again;
    assert_int_equal(call(step_Apply, make_req(1, 0, live, N_WORKERS), &again), SP_OK);
    cJSON_Delete(again);
    float *p1b = get("params:%d", 1, 0);
    assert_memory_equal(p1, p1b, sizeof(float) * W.P);
    free(p0);
    free(p1b);
    free_all(ans, N_WORKERS);
    /* Iteration 1 starts from the residual: acc:w:1 + sent = acc:w:0 + lr*g1,
     * tested against the replica after its own step of 1. */
    float *a0 = get("acc:%d:%ld", 1, 0);
    float *g1 = malloc(sizeof(float) * W.P);
    gradient_of(1, 1, g1);
    own_step(p1, g1);
    mlless_Iteration(1, live, N_WORKERS, 2.0, ans);
    free_all(ans, N_WORKERS);
    float *a1 = get("acc:%d:%ld", 1, 1);
    memcpy(acc, a0, sizeof(float) * W.P);
    size_t k = filter(acc, g1, W.job.optim.lr, p1, W.P,
                      mlless_Threshold(W.job.significance, 1), idx[0], val[0]);
    assert_true(k > 0);
    assert_memory_equal(a1, acc, sizeof(float) * W.P);
    free(a0);
    free(a1);
    free(g1);
    free(p1);
    free(acc);
    for (int w = 0; w < N_WORKERS; w++) {
        free(own[w]);
        free(idx[w]);
        free(val[w]);
    }
    /* A retried supervisor call answers the decision it already made. */
    cJSON *res;
    assert_int_equal(call(step_Supervisor, make_req(0, 1, live, N_WORKERS), &res), SP_OK);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(res, "duplicate")));
    cJSON_Delete(res);
    /* Only the first live worker supervises; a skipped iteration is 409. */
    assert_int_equal(call(step_Supervisor, make_req(1, 2, live, N_WORKERS), NULL),
                     SP_ERR_INVALID);
    assert_int_equal(call(step_Supervisor, make_req(0, 5, live, N_WORKERS), NULL),
                     SP_ERR_CONFLICT);
}

static void test_scale_in_merges_the_removed_model_into_the_survivors(void **state)
{
    (void)state;
    /* A fresh run (a new job id: its own NATS stream) with a convex loss
     * curve (the supervisor only sees the reported losses) and a high
     * threshold, so much of every step stays in the residuals. */
    snprintf(W.job.id, sizeof W.job.id, "mlless-scale-in");
    W.job.scale_in = 1;
    W.job.significance = 5.0f;
    int live[N_WORKERS] = {0, 1, 2};
    cJSON *ans[N_WORKERS];
    long t = 0, removed = -1;
    for (; t < 60 * MLLESS_INTERVAL && removed < 0; t++) {
        mlless_Report(t, live, N_WORKERS, curve(t));
        float *before = get("params:%d", 0, 0);
        for (int i = 0; i < N_WORKERS; i++)
            assert_int_equal(call(step_Apply, make_req(i, t, live, N_WORKERS), &ans[i]), SP_OK);
        if (cJSON_IsTrue(cJSON_GetObjectItem(ans[2], "leave"))) {
            removed = t;
            /* Survivor 0: the others' significant steps and then worker 2's
             * residual (its steps never sent) went into its replica. */
            float *after = get("params:%d", 0, 0), *res = get("acc:%d:%ld", 2, t);
            float *sum = calloc(W.P, sizeof(float));
            for (int w = 1; w < N_WORKERS; w++) {
                char key[192];
                uint8_t *blob;
                size_t len, k;
                sw_Key(&W, key, sizeof key, "sparse:%d:%ld", w, t);
                assert_int_equal(store_GetBlob(W.db[0], key, &blob, &len), SP_OK);
                assert_int_equal(sparse_AddInto(blob, len, W.P, 1.0f, sum, NULL, &k), SP_OK);
                free(blob);
            }
            int residual = 0;
            for (size_t i = 0; i < W.P; i++) {
                residual |= res[i] != 0;
                assert_true(fabsf(after[i] - (before[i] - sum[i] - res[i])) < 1e-5f);
            }
            assert_true(residual); /* the merge meant something */
            free(after);
            free(res);
            free(sum);
            for (int i = 0; i < 2; i++) {
                const cJSON *c = cJSON_GetObjectItem(ans[i], "context");
                assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(c, "live")), 2);
                assert_int_equal((int)cJSON_GetObjectItem(ans[i], "merged_from")->valuedouble,
                                 2);
            }
            /* A retried apply merges nothing twice. */
            float *once = get("params:%d", 1, 0);
            cJSON *again;
            assert_int_equal(call(step_Apply, make_req(1, t, live, N_WORKERS), &again), SP_OK);
            cJSON_Delete(again);
            float *twice = get("params:%d", 1, 0);
            assert_memory_equal(once, twice, sizeof(float) * W.P);
            free(once);
            free(twice);
        } else {
            for (int i = 0; i < N_WORKERS; i++)
                assert_null(cJSON_GetObjectItem(ans[i], "merged_from"));
        }
        free(before);
        free_all(ans, N_WORKERS);
    }
    assert_true(removed > 0);
    assert_int_equal((removed + 1) % MLLESS_INTERVAL, 0);
    W.job.scale_in = 0;
    W.job.significance = 0.05f;
}

static void test_target_loss_stops_every_worker(void **state)
{
    (void)state;
    snprintf(W.job.id, sizeof W.job.id, "mlless-target");
    W.job.target_loss = 1.5f;
    int live[N_WORKERS] = {0, 1, 2};
    cJSON *ans[N_WORKERS];
    for (long t = 0; t < MLLESS_STOP_STEPS; t++) {
        mlless_Iteration(t, live, N_WORKERS, 1.0, ans);
        for (int i = 0; i < N_WORKERS; i++)
            assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(ans[i], "stop")),
                             t == MLLESS_STOP_STEPS - 1);
        free_all(ans, N_WORKERS);
        /* Sparse updates of an iteration are gone once the next one is
         * decided. */
        for (int w = 0; t > 0 && w < N_WORKERS; w++)
            assert_false(exists("sparse:%d:%ld", w, t - 1));
        assert_true(exists("sparse:%d:%ld", 1, t) || exists("sparse:%d:%ld", 0, t));
    }
    W.job.target_loss = 0;
}

/* --slack 2: a worker runs iterations 0 and 1 without any decision; at
 * 2 it needs the decision of 0 (all workers reported 0) - it may be at
 * most 2 iterations ahead of the slowest - and applies exactly that one. */
static void test_slack_bounds_how_far_a_worker_runs_ahead(void **state)
{
    (void)state;
    snprintf(W.job.id, sizeof W.job.id, "mlless-slack");
    W.job.slack = 2;
    int live[N_WORKERS] = {0, 1, 2};
    float *g = malloc(sizeof(float) * W.P);
    for (long t = 0; t < 3; t++) {
        if (t == 0)
            put(params[1], "params:%d", 1, 0);
        gradient_of(1, t, g);
        put(g, "avg:%d:%ld", 1, t);
        cJSON *req = make_req(1, t, live, N_WORKERS), *res;
        cJSON_AddNumberToObject(req, "loss", 1.0);
        assert_int_equal(call(step_Sparsify, req, NULL), SP_OK);
        if (t < 2) {
            assert_int_equal(call(step_Apply, make_req(1, t, live, N_WORKERS), &res), SP_OK);
            assert_true(cJSON_GetObjectItem(res, "applied_to")->valuedouble < 0);
            cJSON_Delete(res);
        }
    }
    /* Workers 0 and 2 have not reported 0: worker 1 cannot pass 2. */
    int saved = W.job.sync_timeout_ms;
    W.job.sync_timeout_ms = 300;
    assert_int_equal(call(step_Apply, make_req(1, 2, live, N_WORKERS), NULL), SP_ERR_TIMEOUT);
    W.job.sync_timeout_ms = saved;
    for (int w = 0; w < N_WORKERS; w += 2) {
        put(params[w], "params:%d", w, 0);
        gradient_of(w, 0, g);
        put(g, "avg:%d:%ld", w, 0);
        cJSON *req = make_req(w, 0, live, N_WORKERS);
        cJSON_AddNumberToObject(req, "loss", 1.0);
        assert_int_equal(call(step_Sparsify, req, NULL), SP_OK);
    }
    assert_int_equal(call(step_Supervisor, make_req(0, 0, live, N_WORKERS), NULL), SP_OK);
    cJSON *res;
    assert_int_equal(call(step_Apply, make_req(1, 2, live, N_WORKERS), &res), SP_OK);
    assert_int_equal((int)cJSON_GetObjectItem(res, "applied_from")->valuedouble, 0);
    assert_int_equal((int)cJSON_GetObjectItem(res, "applied_to")->valuedouble, 0);
    assert_true(cJSON_GetObjectItem(res, "pairs")->valuedouble > 0);
    cJSON_Delete(res);
    free(g);
    W.job.slack = 0;
}

int main(void)
{
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_filter_sends_significant_and_accumulates_the_rest),
        cmocka_unit_test(test_threshold_decays_and_zero_sends_everything),
        cmocka_unit_test(test_sparse_round_trip),
        cmocka_unit_test(test_sparse_rejects_bad_pairs),
        cmocka_unit_test(test_auto_tuner_removes_past_the_knee_within_tolerance),
        cmocka_unit_test(test_stop_after_ten_iterations_under_the_target),
        cmocka_unit_test(test_restride_covers_every_shard),
    };
    const struct CMUnitTest steps[] = {
        cmocka_unit_test(test_iteration_applies_own_step_and_adds_the_others_significant_ones),
        cmocka_unit_test(test_scale_in_merges_the_removed_model_into_the_survivors),
        cmocka_unit_test(test_target_loss_stops_every_worker),
        cmocka_unit_test(test_slack_bounds_how_far_a_worker_runs_ahead),
    };
    int failed = cmocka_run_group_tests(pure, NULL, NULL);
    return failed + cmocka_run_group_tests(steps, world_Up, world_Down);
}
