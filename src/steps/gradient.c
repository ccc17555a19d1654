/* gradient.c - one of the M parallel gradient computations of a peer: reads
 * the parameters and minibatch m from the peer's Redis, stores the gradient
 * back there (iteration-scoped). */
#include <stdlib.h>

#include "core/tensor.h"
#include "steps/poison.h"
#include "steps/step_util.h"
#include "steps/step_ctx.h"
#include "steps/fields.h"

typedef struct {
    float *params, *rows, *x, *grad;
    int32_t *y;
} grad_bufs;

static void bufs_Free(grad_bufs *b)
{
    free(b->params);
    free(b->rows);
    free(b->x);
    free(b->y);
    free(b->grad);
}

/* GETs params and the minibatch; sizes are checked against the model. */
static spStatus grad_Fetch(const step_req *q, store *s, int m, grad_bufs *b, size_t *rows_n)
{
    char kp[160], kb[160];
    size_t n;
    spStatus st;
    if ((st = req_Key(q, kp, "params:%d", q->peer)) ||
        (st = req_Key(q, kb, "mb:%d:%ld:%d", q->peer, q->iteration, m)))
        return st;
    if ((st = store_GetTensor(s, kp, q->n_params, &b->params, &n)))
        return sp_Wrap(st, "%s", kp);
    if ((st = store_GetTensor(s, kb, 0, &b->rows, &n)))
        return sp_Wrap(st, "%s", kb);
    if (n == 0 || n % (q->dim + 1) != 0)
        return sp_Error(SP_ERR_INVALID,
                        "%s holds %zu floats, not whole rows of %zu features + label", kb, n,
                        q->dim);
    *rows_n = n / (q->dim + 1);
    if (*rows_n > (size_t)q->job.batch)
        return sp_Error(SP_ERR_INVALID, "%s holds %zu rows, more than the batch of %d", kb,
                        *rows_n, q->job.batch);
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

STEP_DEFINE(gradient, Gradient, REQ_SHAPE | REQ_ITERATION | REQ_PEER | REQ_M | STEP_OWN, 1)

static spStatus gradient_Run(step_ctx *c, cJSON *res)
{
    const step_req *q = &c->q;
    grad_bufs b = {0};
    size_t rows = 0;
    float loss = 0;
    char key[160];
    double t0 = io_NowMs();
    io_snap snap = io_Snap(c->own);
    spStatus st = grad_Fetch(q, c->own, q->m, &b, &rows);
    if (st)
        goto out;
    io_Add(&c->io.transfer_ms, t0);
    t0 = io_NowMs();
    if ((st = grad_Compute(q, &b, rows, &loss)))
        goto out;
    io_Add(&c->io.compute_ms, t0);
    t0 = io_NowMs();
    if ((st = req_Key(q, key, "grad:%d:%ld:%d", q->peer, q->iteration, q->m)) ||
        (st = store_PutTensor(c->own, key, b.grad, q->n_params, STEPS_TTL_S)))
        goto out;
    io_Add(&c->io.store_ms, t0);
    io_Account(&c->io, &snap);
    cJSON_AddNumberToObject(res, FIELD_LOSS, loss);
    cJSON_AddNumberToObject(res, "samples", (double)rows);
    cJSON_AddStringToObject(res, "key", key);
out:
    bufs_Free(&b);
    return st;
}
