/* test_steps_sparse.c - the steps of a sparse model (logreg on sparse
 * rows), in-process against real redis-servers (module loaded) on a file
 * from `datagen sparse`: init stores the rows sparse; a gradient fetches
 * only the rows' non-zeros and the parameter rows they touch, moving a
 * small fraction of the dense parameter vector, and stores the sparse
 * gradient the single-process computation gives; average keeps it sparse;
 * update moves only the rows it lists, as optim_StepRows does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cli.h"
#include "core/wire.h"
#include "data/datagen.h"
#include "data/dataset.h"
#include "ml/optim.h"
#include "steps_world.h"

#define PASSWORD "sparse-steps"
#define N_PEERS 2
#define M_MB 2
#define BATCH 64

static sw_world W;
static char dir[256];
static dataset Train, Test;

static int world_Up(void **state)
{
    (void)state;
    cli_TempDir(dir, sizeof dir);
    const sw_options o = {.n_peers = N_PEERS, .password = PASSWORD, .timeout_ms = 5000};
    if (!dir[0] || sw_Up(&W, &o) != 0)
        return -1;
    datagen_sparse g;
    datagen_SparseDefaults(&g);
    g.rows = 3000;
    g.dim = (size_t)1 << 18;
    g.classes = 3;
    datagen_result r;
    snprintf(W.job.dataset, sizeof W.job.dataset, "%s/d.svm.gz", dir);
    if (datagen_Sparse(&g, W.job.dataset, &r) != SP_OK ||
        dataset_Open(W.job.dataset, &Train, &Test) != SP_OK)
        return -1;
    snprintf(W.job.id, sizeof W.job.id, "sparse-steps");
    W.job.model.kind = MODEL_LOGREG;
    W.job.model.sparse = 1;
    W.job.minibatches = M_MB;
    W.job.batch = BATCH;
    W.job.optim.lr = 0.5f;
    W.job.optim.momentum = 0.9f;
    W.job.optim.weight_decay = 0.001f;
    W.job.seed = 3;
    return sw_Init(&W);
}

static int world_Down(void **state)
{
    (void)state;
    sw_Down(&W);
    dataset_Free(&Train);
    dataset_Free(&Test);
    cli_RemoveDir(dir);
    return 0;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

/* The value at key as a sparse tensor's pairs (caller frees *blob). */
static wire_view get_Sparse(store *s, const char *suffix, uint8_t **blob)
{
    char key[192];
    sw_Key(&W, key, sizeof key, "%s", suffix);
    size_t len;
    assert_int_equal(store_GetBlob(s, key, blob, &len), SP_OK);
    wire_view v;
    assert_int_equal(wire_Parse(*blob, len, &v), SP_OK);
    assert_int_equal(v.dtype, WIRE_SPARSE_F32);
    assert_int_equal(v.extra, W.P);
    assert_int_equal(wire_CheckSparse(&v), SP_OK);
    return v;
}

/* The gradient the single-process code computes for the rows idx. */
static void local_Grad(const int32_t *idx, size_t b, const float *params, csr_touched *t,
                       float **g)
{
    model *m = sw_Model(&W);
    assert_true(model_IsSparse(m));
    uint32_t *u = malloc(sizeof *u * b);
    int32_t *y = malloc(sizeof *y * b);
    for (size_t i = 0; i < b; i++)
        u[i] = (uint32_t)idx[i];
    dataset_batch buf = {0};
    csr_rows x;
    assert_int_equal(dataset_GatherSparse(&Train, 0, u, (int)b, &buf, &x, y), SP_OK);
    assert_int_equal(csr_Touch(&x, (uint32_t)W.dim, t), SP_OK);
    size_t k = (size_t)model_Spec(m)->classes;
    float *w = malloc(sizeof *w * t->n_cols * k);
    *g = malloc(sizeof **g * t->n_cols * k);
    for (size_t i = 0; i < t->n_cols; i++)
        memcpy(w + i * k, params + (size_t)t->cols[i] * k, sizeof *w * k);
    float loss;
    assert_int_equal(model_SparseLossGrad(m, w, &x, t, y, *g, &loss), SP_OK);
    free(w);
    free(u);
    free(y);
    dataset_BatchFree(&buf);
    model_Destroy(m);
}

static void test_gradient_is_sparse_and_local(void **state)
{
    (void)state;
    const size_t k = (size_t)cJSON_GetArrayItem(W.shape, 3)->valuedouble;
    float *params = sw_GetTensor(&W, W.db[0], "params:0");
    for (int p = 0; p < N_PEERS; p++)
        for (int m = 0; m < M_MB; m++) {
            cJSON *res;
            assert_int_equal(sw_Call(step_Minibatch, sw_WithNum(sw_Request(&W, p, 0), "m", m),
                                     NULL, 0), SP_OK);
            assert_int_equal(sw_Call(step_Gradient, sw_WithNum(sw_Request(&W, p, 0), "m", m),
                                     &res, 0), SP_OK);
            assert_int_equal((int)num(res, "samples"), BATCH);
            /* what crossed the network: rows and touched parameter rows */
            const cJSON *bytes = cJSON_GetObjectItem(res, "bytes");
            double moved = num(bytes, "in") + num(bytes, "out");
            if (!(moved < 0.1 * (double)W.P * sizeof(float)))
                fail_msg("a gradient moved %.0f bytes; the dense parameters are %zu", moved,
                         W.P * sizeof(float));
            cJSON_Delete(res);
            size_t b;
            int32_t *idx = sw_GetIndices(&W, W.db[p], &b, "mb:%d:0:%d", p, m);
            csr_touched t = {0};
            float *want;
            local_Grad(idx, b, params, &t, &want);
            char suffix[64];
            snprintf(suffix, sizeof suffix, "grad:%d:0:%d", p, m);
            uint8_t *blob;
            wire_view v = get_Sparse(W.db[p], suffix, &blob);
            assert_int_equal(v.count, t.n_cols * k);
            for (size_t i = 0; i < t.n_cols; i++)
                for (size_t c = 0; c < k; c++) {
                    uint32_t at;
                    float x;
                    memcpy(&at, v.payload + 8 * (i * k + c), 4);
                    memcpy(&x, v.payload + 8 * (i * k + c) + 4, 4);
                    assert_int_equal(at, t.cols[i] * k + c);
                    assert_memory_equal(&x, &want[i * k + c], sizeof x);
                }
            free(blob);
            free(want);
            free(idx);
            csr_TouchedFree(&t);
        }
    free(params);
}

/* average keeps the peer's mean sparse; update (with that mean as the
 * aggregate) moves the listed rows as optim_StepRows does. */
static void test_average_and_update(void **state)
{
    (void)state;
    const size_t k = (size_t)cJSON_GetArrayItem(W.shape, 3)->valuedouble;
    cJSON *res;
    assert_int_equal(sw_Call(step_Average, sw_Request(&W, 0, 0), &res, 0), SP_OK);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(res, "in_db")));
    cJSON_Delete(res);
    uint8_t *blob;
    wire_view v = get_Sparse(W.db[0], "avg:0:0", &blob);
    char key[192];
    sw_Key(&W, key, sizeof key, "agg:0:0");
    assert_int_equal(store_PutBlob(W.db[0], key, blob, WIRE_HEADER_SIZE + 8 * v.count, 600),
                     SP_OK);
    /* the reference: rows of the listed pairs, stepped here */
    float *w = sw_GetTensor(&W, W.db[0], "params:0"), *mom = calloc(W.P, sizeof *mom);
    size_t nrows = v.count / k;
    uint32_t *rows = malloc(sizeof *rows * nrows);
    float *g = malloc(sizeof *g * v.count);
    for (size_t i = 0; i < nrows; i++) {
        uint32_t at;
        memcpy(&at, v.payload + 8 * i * k, 4);
        rows[i] = at / (uint32_t)k;
        for (size_t c = 0; c < k; c++)
            memcpy(&g[i * k + c], v.payload + 8 * (i * k + c) + 4, 4);
    }
    optim_StepRows(&W.job.optim, W.P, k, w, rows, nrows, g, mom, 1);
    assert_int_equal(sw_Call(step_Update, sw_Request(&W, 0, 0), &res, 0), SP_OK);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(res, "duplicate")));
    cJSON_Delete(res);
    float *got = sw_GetTensor(&W, W.db[0], "params:0");
    assert_memory_equal(got, w, sizeof *w * W.P);
    free(got);
    free(w);
    free(mom);
    free(rows);
    free(g);
    free(blob);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradient_is_sparse_and_local),
        cmocka_unit_test(test_average_and_update),
    };
    return cmocka_run_group_tests(tests, world_Up, world_Down);
}
