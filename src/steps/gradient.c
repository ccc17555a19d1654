/* gradient.c - one of the M parallel gradient computations of a peer: reads
 * minibatch m's row indices (written by the minibatch step) and the
 * parameters from the peer's Redis, fetches those rows straight from the
 * shared Redis, and stores the gradient back in the peer's Redis
 * (iteration-scoped). A sparse model's step is gradient_sparse.c. */
#include <stdlib.h>

#include "core/tensor.h"
#include "steps/gradient_sparse.h"
#include "steps/poison.h"
#include "steps/step_util.h"
#include "steps/step_ctx.h"
#include "steps/fields.h"

typedef struct {
    float *params, *rows, *x, *grad;
    int32_t *y;
    size_t *idx;
} grad_bufs;

static void bufs_Free(grad_bufs *b)
{
    free(b->params);
    free(b->rows);
    free(b->x);
    free(b->y);
    free(b->grad);
    free(b->idx);
}

/* Minibatch m's rows (indices from the peer's Redis, rows from the shared
 * one, each verified) and the parameters (checked against the model). The
 * bytes of both connections count; own and shared may be one connection
 * (architectures whose workers share the database). */
static spStatus grad_Fetch(const step_req *q, store *own, store *shared, int m, grad_bufs *b,
                           size_t *rows_n, step_io *io)
{
    char kp[160], kb[160];
    size_t n;
    spStatus st;
    if ((st = req_Key(q, kp, "params:%d", q->peer)) ||
        (st = req_Key(q, kb, "mb:%d:%ld:%d", q->peer, q->iteration, m)))
        return st;
    io_snap s_own = io_Snap(own), s_shared = io_Snap(shared);
    if ((st = rows_GetIndices(own, kb, (size_t)q->job.batch, &b->idx, rows_n)))
        return st;
    if (!(b->rows = malloc(sizeof(float) * *rows_n * (q->dim + 1))))
        return sp_Error(SP_ERR_NOMEM, "out of memory for %zu rows", *rows_n);
    if ((st = rows_Fetch(shared, q->job.id, "train", b->idx, *rows_n, q->dim, b->rows)))
        return sp_Wrap(st, "the rows %s names", kb);
    if ((st = store_GetTensor(own, kp, q->n_params, &b->params, &n)))
        return sp_Wrap(st, "%s", kp);
    io_Account(io, &s_own);
    if (shared != own)
        io_Account(io, &s_shared);
    return SP_OK;
}

static spStatus grad_Compute(const step_req *q, grad_bufs *b, size_t rows, float *loss)
{
    model *m;
    spStatus st = steps_Model(&q->spec, &m);
    if (st)
        return st;
    b->x = malloc(sizeof(float) * rows * q->dim);
    b->y = malloc(sizeof(int32_t) * rows);
    b->grad = tensor_Alloc(q->n_params);
    if (!b->x || !b->y || !b->grad)
        return sp_Error(SP_ERR_NOMEM, "out of memory for the gradient");
    if ((st = rows_Split(b->rows, rows, q->dim, q->spec.classes, b->x, b->y)))
        return st;
    /* A label-flipping Byzantine peer (--attack label-flip) learns y -> C-1-y. */
    if (poison_FlipsLabels(q))
        attack_FlipLabels(q->spec.classes, b->y, rows);
    if ((st = model_LossGrad(m, b->params, b->x, b->y, (int)rows, b->grad, loss)))
        return st;
    if (!tensor_AllFinite(q->n_params, b->grad) || !tensor_AllFinite(1, loss))
        return sp_Error(SP_ERR_INVALID,
                        "the gradient is not finite (diverged? lower the learning rate); "
                        "nothing stored");
    return SP_OK;
}

STEP_DEFINE(gradient, Gradient,
            REQ_SHAPE | REQ_ITERATION | REQ_PEER | REQ_SHARED | REQ_M | STEP_OWN, 1)

static spStatus gradient_Run(step_ctx *c, cJSON *res)
{
    const step_req *q = &c->q;
    grad_bufs b = {0};
    size_t rows = 0;
    float loss = 0;
    char key[160];
    store *shared;
    spStatus st = req_Shared(q, &shared);
    if (st)
        goto out;
    if ((st = req_Key(q, key, "grad:%d:%ld:%d", q->peer, q->iteration, q->m)))
        goto out;
    if (model_SpecIsSparse(&q->spec)) {
        if ((st = gradient_Sparse(c, shared, key, &loss, &rows)))
            goto out;
        goto answer;
    }
    double t0 = io_NowMs();
    if ((st = grad_Fetch(q, c->own, shared, q->m, &b, &rows, &c->io)))
        goto out;
    io_Add(&c->io.transfer_ms, t0);
    t0 = io_NowMs();
    if ((st = grad_Compute(q, &b, rows, &loss)))
        goto out;
    io_Add(&c->io.compute_ms, t0);
    t0 = io_NowMs();
    io_snap snap = io_Snap(c->own);
    if ((st = store_PutTensor(c->own, key, b.grad, q->n_params, STEPS_TTL_S)))
        goto out;
    io_Add(&c->io.store_ms, t0);
    io_Account(&c->io, &snap);
answer:
    cJSON_AddNumberToObject(res, FIELD_LOSS, loss);
    cJSON_AddNumberToObject(res, "samples", (double)rows);
    cJSON_AddStringToObject(res, "key", key);
out:
    bufs_Free(&b);
    return st;
}
