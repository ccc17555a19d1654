/* evaluate.c - test loss and accuracy of one peer's parameters.
 *
 * The test rows are re-read every epoch, so the decoded test set is kept in
 * a small process-wide cache keyed by (shared Redis, job, upload nonce): a
 * re-upload by init changes the nonce and the stale copy is dropped. A
 * sparse dataset's test rows stay sparse (CSR) for a sparse model. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steps/step_util.h"
#include "steps/step_ctx.h"
#include "steps/fields.h"

#define EVAL_CHUNK 500
#define EVAL_CACHE_MAX 2

typedef struct testset {
    char key[400];
    char nonce[40];
    size_t n, dim;
    float *x;             /* dense rows, or NULL */
    int32_t *y;
    dataset_batch sparse; /* sparse rows (meta.sparse) */
    csr_rows rows;
    int refs;
    struct testset *next;
} testset;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static testset *g_head;

static void set_Free(testset *t)
{
    dataset_BatchFree(&t->sparse);
    free(t->x);
    free(t->y);
    free(t);
}

/* Drops t from the list; freed now or by its last user. Lock held. */
static void set_Unlink(testset **link)
{
    testset *t = *link;
    *link = t->next;
    t->next = NULL;
    if (--t->refs == 0)
        set_Free(t);
}

static testset *cache_Get(const char *key, const char *nonce)
{
    pthread_mutex_lock(&g_mu);
    testset *t = g_head;
    while (t && !(strcmp(t->key, key) == 0 && strcmp(t->nonce, nonce) == 0))
        t = t->next;
    if (t)
        t->refs++;
    pthread_mutex_unlock(&g_mu);
    return t;
}

/* Inserts t (refs 1 for the caller, +1 for the list), replacing entries of
 * the same key and evicting beyond EVAL_CACHE_MAX. */
static void cache_Put(testset *t)
{
    pthread_mutex_lock(&g_mu);
    for (testset **l = &g_head; *l;)
        if (strcmp((*l)->key, t->key) == 0)
            set_Unlink(l);
        else
            l = &(*l)->next;
    t->refs = 2;
    t->next = g_head;
    g_head = t;
    int n = 0;
    for (testset **l = &g_head; *l;)
        if (++n > EVAL_CACHE_MAX)
            set_Unlink(l);
        else
            l = &(*l)->next;
    pthread_mutex_unlock(&g_mu);
}

static void cache_Release(testset *t)
{
    pthread_mutex_lock(&g_mu);
    if (--t->refs == 0)
        set_Free(t);
    pthread_mutex_unlock(&g_mu);
}

/* Fetches the test rows a chunk at a time and splits each chunk straight
 * into the set's features and labels, so the packed rows of the whole test
 * set never sit in memory beside them. */
/* Sparse test rows: every one at once (their non-zeros are small). */
static spStatus set_LoadSparse(const step_req *q, store *shared, const data_meta *m,
                               testset **out)
{
    size_t n = m->n_test;
    testset *t = calloc(1, sizeof *t);
    size_t *idx = malloc(sizeof *idx * n);
    spStatus st = SP_OK;
    if (!t || !idx || !(t->y = malloc(sizeof(int32_t) * n)))
        st = sp_Error(SP_ERR_NOMEM, "out of memory for %zu test rows", n);
    for (size_t i = 0; st == SP_OK && i < n; i++)
        idx[i] = i;
    if (st == SP_OK)
        st = rows_FetchSparse(shared, q->job.id, "test", idx, n, m->dim, q->spec.classes,
                              &t->sparse, &t->rows, t->y);
    free(idx);
    if (st) {
        if (t)
            set_Free(t);
        return st;
    }
    t->n = n;
    t->dim = m->dim;
    *out = t;
    return SP_OK;
}

static spStatus set_Load(const step_req *q, store *shared, const data_meta *m, testset **out)
{
    if (m->sparse)
        return set_LoadSparse(q, shared, m, out);
    size_t n = m->n_test, dim = m->dim;
    testset *t = calloc(1, sizeof *t);
    size_t *idx = malloc(sizeof *idx * EVAL_CHUNK);
    float *rows = malloc(sizeof *rows * EVAL_CHUNK * (dim + 1));
    spStatus st = SP_OK;
    if (!t || !idx || !rows || !(t->x = malloc(sizeof(float) * n * dim)) ||
        !(t->y = malloc(sizeof(int32_t) * n)))
        st = sp_Error(SP_ERR_NOMEM, "out of memory for %zu test rows", n);
    for (size_t off = 0; st == SP_OK && off < n; off += EVAL_CHUNK) {
        size_t k = n - off < EVAL_CHUNK ? n - off : EVAL_CHUNK;
        for (size_t i = 0; i < k; i++)
            idx[i] = off + i;
        st = rows_Fetch(shared, q->job.id, "test", idx, k, dim, rows);
        if (st == SP_OK &&
            (st = rows_Split(rows, k, dim, q->spec.classes, t->x + off * dim, t->y + off)))
            st = sp_Wrap(st, "test rows %zu to %zu", off, off + k - 1);
    }
    free(idx);
    free(rows);
    if (st) {
        if (t)
            set_Free(t);
        return st;
    }
    t->n = n;
    t->dim = dim;
    *out = t;
    return SP_OK;
}

static spStatus eval_TestSet(const step_req *q, store *shared, const data_meta *m, testset **out,
                             int *cached)
{
    testset *t;
    char key[400];
    const store_addr *a;
    spStatus st = steps_SharedDb(&a);
    if (st)
        return st;
    snprintf(key, sizeof key, "%s:%d/%s", a->host, a->port, q->job.id);
    *cached = 1;
    if ((*out = cache_Get(key, m->nonce)))
        return SP_OK;
    *cached = 0;
    if ((st = set_Load(q, shared, m, &t)))
        return st;
    snprintf(t->key, sizeof t->key, "%s", key);
    snprintf(t->nonce, sizeof t->nonce, "%s", m->nonce);
    cache_Put(t);
    *out = t;
    return SP_OK;
}

static spStatus eval_Run(const step_req *q, const float *params, const testset *t, cJSON *res)
{
    model *m;
    double loss_sum = 0;
    long correct = 0;
    spStatus st = steps_Model(&q->spec, &m);
    for (size_t off = 0; st == SP_OK && off < t->n; off += EVAL_CHUNK) {
        int b = (int)(t->n - off < EVAL_CHUNK ? t->n - off : EVAL_CHUNK);
        float l;
        int c;
        if (t->x) {
            st = model_Evaluate(m, params, t->x + off * t->dim, t->y + off, b, &l, &c);
        } else {
            csr_rows part = {(size_t)b, t->rows.ptr + off, t->rows.col, t->rows.val};
            st = model_SparseEvaluate(m, params, &part, t->y + off, &l, &c);
        }
        loss_sum += (double)l * b;
        correct += c;
    }
    if (st)
        return st;
    cJSON_AddNumberToObject(res, FIELD_ACCURACY, (double)correct / (double)t->n);
    cJSON_AddNumberToObject(res, FIELD_LOSS, loss_sum / (double)t->n);
    cJSON_AddNumberToObject(res, "samples", (double)t->n);
    return SP_OK;
}

STEP_DEFINE(evaluate, Evaluate, REQ_SHAPE | REQ_PEERS | REQ_SHARED, 1)

static spStatus evaluate_Run(step_ctx *c, cJSON *res)
{
    const step_req *q = &c->q;
    step_io *io = &c->io;
    data_meta meta;
    store *shared, *src;
    testset *t = NULL;
    float *params = NULL;
    int have, source, cached = 0;
    size_t n;
    char key[160];
    spStatus st;
    if ((st = req_GetInt(q->body, FIELD_SOURCE, 0, q->n_peers - 1, 0, q->peer >= 0 ? q->peer : 0,
                         &source)) ||
        (st = req_Shared(q, &shared)) || (st = req_PeerStore(q, source, &src)))
        goto out;
    double t0 = io_NowMs();
    io_snap s1 = io_Snap(shared), s2 = io_Snap(src);
    if ((st = meta_Read(shared, q->job.id, &meta, &have)))
        goto out;
    if (!have || meta.n_test == 0) {
        st = sp_Error(have ? SP_ERR_INVALID : SP_ERR_NOT_FOUND,
                      "no test rows for job %s in the shared redis (run init)", q->job.id);
        goto out;
    }
    if ((st = meta_CheckShape(&meta, q)) ||
        (st = eval_TestSet(q, shared, &meta, &t, &cached)) ||
        (st = req_Key(q, key, "params:%d", source)))
        goto out;
    if ((st = store_GetTensor(src, key, q->n_params, &params, &n))) {
        st = sp_Wrap(st, "%s on peer %d", key, source);
        goto out;
    }
    io_Account(io, &s1);
    if (src != shared)
        io_Account(io, &s2);
    io_Add(&io->transfer_ms, t0);
    t0 = io_NowMs();
    if ((st = eval_Run(q, params, t, res)))
        goto out;
    io_Add(&io->compute_ms, t0);
    cJSON_AddNumberToObject(res, FIELD_SOURCE, source);
    cJSON_AddBoolToObject(res, "test_set_cached", cached);
out:
    if (t)
        cache_Release(t);
    free(params);
    return st;
}
