/* scatter.c - ScatterReduce (LambdaML) step 3: splits this worker's
 * average avg:<p>:<t> into one chunk per live worker (steps/chunks.h) and
 * stores chunk c for its owner, the c-th live worker, as
 * {job}:chunk:<c>:<p>:<t>; then announces "scattered". A sparse model's
 * chunk c is the pairs of its sparse average in chunk c's range.
 *
 * A retry stores the same chunks again. This worker's keys of iteration t-1
 * (minibatches, gradients, average, aggregate) have no reader left once
 * its update t-1 ran, so they are unlinked here. */
#include <stdio.h>
#include <stdlib.h>

#include "core/tensor.h"
#include "steps/chunks.h"
#include "steps/collective.h"
#include "steps/sparse_mean.h"
#include "steps/step_ctx.h"

static spStatus scatter_Store(const step_req *q, store *s, const float *g, int n, step_io *io)
{
    char key[160];
    spStatus st = SP_OK;
    double t0 = io_NowMs();
    io_snap snap = io_Snap(s);
    for (int c = 0; c < n && !st; c++) {
        size_t off, len;
        chunk_Range(q->n_params, n, c, &off, &len);
        if (!(st = req_Key(q, key, "chunk:%d:%d:%ld", c, q->peer, q->iteration)))
            st = store_PutTensor(s, key, g + off, len, STEPS_TTL_S);
    }
    io_Account(io, &snap);
    io_Add(&io->store_ms, t0);
    return st;
}

/* The sparse average at key, cut into the n chunks' ranges. */
static spStatus scatter_Sparse(const step_req *q, store *s, const char *key, int n, step_io *io)
{
    uint8_t *avg = NULL, *part = NULL;
    size_t len;
    double t0 = io_NowMs();
    io_snap snap = io_Snap(s);
    spStatus st = sparse_Get(s, key, q->n_params, &avg, &len);
    io_Add(&io->transfer_ms, t0);
    if (st)
        st = sp_Wrap(st, "scatter (has average run?)");
    t0 = io_NowMs();
    for (int c = 0; c < n && !st; c++) {
        size_t off, clen;
        char ck[160];
        chunk_Range(q->n_params, n, c, &off, &clen);
        if (!(st = req_Key(q, ck, "chunk:%d:%d:%ld", c, q->peer, q->iteration)) &&
            !(st = sparse_Slice(avg, off, off + clen, &part, &len)))
            st = store_PutBlob(s, ck, part, len, STEPS_TTL_S);
        free(part);
        part = NULL;
    }
    io_Add(&io->store_ms, t0);
    io_Account(io, &snap);
    free(avg);
    return st;
}

STEP_DEFINE(scatter, Scatter, REQ_SHAPE | REQ_ITERATION | REQ_PEER | STEP_LIVE | STEP_OWN, 1)

static spStatus scatter_Run(step_ctx *c, cJSON *res)
{
    const step_req *q = &c->q;
    store *s = c->own;
    float *g = NULL;
    size_t got;
    char key[160];
    spStatus st = req_Key(q, key, "avg:%d:%ld", q->peer, q->iteration);
    if (st)
        goto out;
    if (model_SpecIsSparse(&q->spec)) {
        if ((st = scatter_Sparse(q, s, key, c->n_live, &c->io)))
            goto out;
    } else {
        double t0 = io_NowMs();
        io_snap snap = io_Snap(s);
        st = store_GetTensor(s, key, q->n_params, &g, &got);
        io_Account(&c->io, &snap);
        io_Add(&c->io.transfer_ms, t0);
        if (st) {
            st = sp_Wrap(st, "scatter (has average run?)");
            goto out;
        }
        if ((st = scatter_Store(q, s, g, c->n_live, &c->io)))
            goto out;
    }
    if ((st = collective_Announce(q, "scattered", q->iteration, NULL, &c->io)))
        goto out;
    if (q->iteration > 0 &&
        (st = keys_DropIteration(q, s, q->peer, q->iteration - 1, q->job.minibatches, &c->io)))
        goto out;
    cJSON_AddNumberToObject(res, "chunks", c->n_live);
out:
    free(g);
    return st;
}
