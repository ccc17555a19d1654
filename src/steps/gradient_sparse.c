/* gradient_sparse.c - the gradient step of a sparse model: what crosses
 * the network is the minibatch's non-zeros, the parameter rows they touch
 * and the gradient of those rows, never the dense parameter vector. */
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "core/wire.h"
#include "steps/gradient_sparse.h"
#include "steps/poison.h"
#include "steps/step_util.h"

typedef struct {
    size_t *idx;
    dataset_batch batch;
    csr_rows x;
    int32_t *y;
    csr_touched t;
    float *w, *g;
    uint32_t *pairs;
} sgrad_bufs;

static void sgrad_Free(sgrad_bufs *b)
{
    free(b->idx);
    dataset_BatchFree(&b->batch);
    free(b->y);
    csr_TouchedFree(&b->t);
    free(b->w);
    free(b->g);
    free(b->pairs);
}

/* The rows of minibatch m and the parameter rows they touch. */
static spStatus sgrad_Fetch(const step_req *q, store *own, store *shared, sgrad_bufs *b,
                            size_t *rows, step_io *io)
{
    char kp[160], kb[160];
    spStatus st;
    size_t k = (size_t)q->spec.classes;
    if ((st = req_Key(q, kp, "params:%d", q->peer)) ||
        (st = req_Key(q, kb, "mb:%d:%ld:%d", q->peer, q->iteration, q->m)))
        return st;
    io_snap s_own = io_Snap(own), s_shared = io_Snap(shared);
    if ((st = rows_GetIndices(own, kb, (size_t)q->job.batch, &b->idx, rows)))
        return st;
    if (!(b->y = malloc(sizeof *b->y * *rows)))
        return sp_Error(SP_ERR_NOMEM, "out of memory for %zu labels", *rows);
    if ((st = rows_FetchSparse(shared, q->job.id, "train", b->idx, *rows, q->dim,
                               q->spec.classes, &b->batch, &b->x, b->y)))
        return sp_Wrap(st, "the rows %s names", kb);
    if ((st = csr_Touch(&b->x, (uint32_t)q->dim, &b->t)))
        return st;
    if (!(b->w = malloc(sizeof *b->w * b->t.n_cols * k)) ||
        !(b->g = malloc(sizeof *b->g * b->t.n_cols * k)))
        return sp_Error(SP_ERR_NOMEM, "out of memory for %zu parameter rows", b->t.n_cols);
    if ((st = store_GetTensorRows(own, kp, q->n_params, k, b->t.cols, b->t.n_cols, b->w)))
        return sp_Wrap(st, "%s", kp);
    io_Account(io, &s_own);
    if (shared != own)
        io_Account(io, &s_shared);
    return SP_OK;
}

static spStatus sgrad_Compute(const step_req *q, sgrad_bufs *b, float *loss)
{
    model *m;
    spStatus st = steps_Model(&q->spec, &m);
    if (st)
        return st;
    /* A label-flipping Byzantine peer (--attack label-flip) learns y -> C-1-y. */
    if (poison_FlipsLabels(q))
        attack_FlipLabels(q->spec.classes, b->y, b->x.n);
    if ((st = model_SparseLossGrad(m, b->w, &b->x, &b->t, b->y, b->g, loss)))
        return st;
    size_t n = b->t.n_cols * (size_t)q->spec.classes;
    if (!tensor_AllFinite(n, b->g) || !tensor_AllFinite(1, loss))
        return sp_Error(SP_ERR_INVALID,
                        "the gradient is not finite (diverged? lower the learning rate); "
                        "nothing stored");
    return SP_OK;
}

/* The touched rows' gradient as (parameter index, value) pairs. */
static spStatus sgrad_Store(const step_req *q, store *own, const char *key, sgrad_bufs *b)
{
    size_t k = (size_t)q->spec.classes, n = b->t.n_cols * k;
    if (q->n_params > UINT32_MAX)
        return sp_Error(SP_ERR_INVALID, "%zu parameters do not fit a sparse tensor's index",
                        q->n_params);
    if (!(b->pairs = malloc(sizeof *b->pairs * 2 * (n ? n : 1))))
        return sp_Error(SP_ERR_NOMEM, "out of memory for %zu gradient pairs", n);
    for (size_t i = 0; i < b->t.n_cols; i++)
        for (size_t c = 0; c < k; c++) {
            size_t j = i * k + c;
            b->pairs[2 * j] = (uint32_t)((size_t)b->t.cols[i] * k + c);
            memcpy(&b->pairs[2 * j + 1], &b->g[j], sizeof(float));
        }
    uint8_t *blob = NULL;
    size_t len = 0;
    spStatus st = wire_Encode(WIRE_SPARSE_F32, b->pairs, n, (uint32_t)q->n_params, &blob, &len);
    if (st == SP_OK)
        st = store_PutBlob(own, key, blob, len, STEPS_TTL_S);
    free(blob);
    return st;
}

spStatus gradient_Sparse(step_ctx *c, store *shared, const char *key, float *loss,
                         size_t *rows)
{
    const step_req *q = &c->q;
    sgrad_bufs b = {0};
    double t0 = io_NowMs();
    spStatus st = sgrad_Fetch(q, c->own, shared, &b, rows, &c->io);
    if (st == SP_OK) {
        io_Add(&c->io.transfer_ms, t0);
        t0 = io_NowMs();
        st = sgrad_Compute(q, &b, loss);
    }
    if (st == SP_OK) {
        io_Add(&c->io.compute_ms, t0);
        t0 = io_NowMs();
        io_snap snap = io_Snap(c->own);
        st = sgrad_Store(q, c->own, key, &b);
        io_Add(&c->io.store_ms, t0);
        io_Account(&c->io, &snap);
    }
    sgrad_Free(&b);
    return st;
}
