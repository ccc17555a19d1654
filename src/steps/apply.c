/* apply.c - MLLESS steps 6-7 on every worker p: waits for the supervisor's
 * "updates" decision of iteration t (supervisor.c), fetches the sparse
 * updates it lists of the OTHER workers (p applied its own in sparsify),
 * sums them - each is a step another replica already took, so nothing is
 * averaged - into one sparse tensor agg:<p>:<t> and adds it to p's replica
 * in the database: SPIRT.UPDATE params:p agg:p:t with lr 1 and no momentum
 * or weight decay (params -= the others' steps), marked in
 * {job}:added:<p> so a retry adds nothing twice.
 *
 * When the decision removes a worker r, every other worker then merges
 * r's model into its own (apply_Merge).
 *
 * The answer carries the decision to the executor: context {"live": [...]}
 * (the workers left after a scale-in), "leave": true for the worker the
 * supervisor removed, "stop": true when the supervisor stops the job. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "steps/collective.h"
#include "steps/mlless.h"
#include "steps/step_ctx.h"
#include "steps/fields.h"

typedef struct {
    cJSON *root;
    const cJSON *updates, *live;
    int workers, remove, stop;
} decision;

static spStatus decision_Parse(const step_req *q, long u, const char *text, decision *d)
{
    int hi = q->n_peers;
    d->root = text ? cJSON_Parse(text) : NULL;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(d->root, "t");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(d->root, "workers");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(d->root, "remove");
    d->updates = cJSON_GetObjectItemCaseSensitive(d->root, "updates");
    d->live = cJSON_GetObjectItemCaseSensitive(d->root, FIELD_LIVE);
    if (!cJSON_IsNumber(t) || t->valuedouble != (double)u || !cJSON_IsNumber(w) ||
        w->valuedouble < 1 || w->valuedouble > hi || !cJSON_IsNumber(r) ||
        !cJSON_IsArray(d->updates) || !cJSON_IsArray(d->live) ||
        cJSON_GetArraySize(d->live) < 1)
        return sp_Error(SP_ERR_FORMAT, "the supervisor's decision for iteration %ld is malformed",
                        u);
    const cJSON *e;
    cJSON_ArrayForEach(e, d->updates)
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= hi)
            return sp_Error(SP_ERR_FORMAT, "decision %ld: bad worker in \"updates\"",
                            u);
    cJSON_ArrayForEach(e, d->live)
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= hi)
            return sp_Error(SP_ERR_FORMAT, "decision %ld: bad worker in \"live\"", u);
    if (r->valuedouble < -1 || r->valuedouble >= hi)
        return sp_Error(SP_ERR_FORMAT, "decision %ld: bad worker in \"remove\"", u);
    d->workers = (int)w->valuedouble;
    d->remove = (int)r->valuedouble;
    d->stop = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d->root, FIELD_STOP));
    return SP_OK;
}

/* A marker past u: this replica took u's steps before (a retried drain of
 * several iterations; markers only move forward here). */
static spStatus already_Done(void)
{
    sp_ClearError();
    return SP_OK;
}

/* The sum of the listed sparse updates of the other workers, as sparse
 * pairs in *blob (NULL when there are none). */
static spStatus apply_Sum(const step_req *q, long u, store *s, const decision *d, float *dense,
                          uint8_t *touched, uint8_t **out, size_t *out_len, size_t *pairs,
                          step_io *io)
{
    char key[160];
    const cJSON *e;
    spStatus st = SP_OK;
    uint32_t *idx = NULL;
    float *val = NULL;
    *pairs = 0;
    *out = NULL;
    double t0 = io_NowMs();
    io_snap snap = io_Snap(s);
    cJSON_ArrayForEach(e, d->updates) {
        uint8_t *blob = NULL;
        size_t len = 0, k = 0;
        int w = (int)e->valuedouble;
        if (w == q->peer)
            continue;
        if ((st = req_Key(q, key, "sparse:%d:%ld", w, u)) ||
            (st = store_GetBlob(s, key, &blob, &len)))
            break;
        st = sparse_AddInto(blob, len, q->n_params, 1.0f, dense, touched, &k);
        free(blob);
        if (st) {
            st = sp_Wrap(st, "%s", key);
            break;
        }
        *pairs += k;
    }
    io_Account(io, &snap);
    io_Add(&io->transfer_ms, t0);
    if (st || *pairs == 0)
        return st;
    size_t k = 0;
    idx = malloc(sizeof *idx * q->n_params);
    val = malloc(sizeof *val * q->n_params);
    if (!idx || !val)
        st = sp_Error(SP_ERR_NOMEM, "out of memory");
    for (size_t i = 0; !st && i < q->n_params; i++)
        if (touched[i]) {
            idx[k] = (uint32_t)i;
            val[k++] = dense[i];
        }
    if (!st)
        st = sparse_Encode(idx, val, k, q->n_params, out, out_len);
    free(idx);
    free(val);
    return st;
}

/* params:p -= the summed steps of the others, marked by iteration. */
static spStatus apply_Add(const step_req *q, long u, store *s, const uint8_t *blob, size_t len,
                          step_io *io)
{
    char kp[160], kg[160], km[160];
    spStatus st;
    double t0 = io_NowMs();
    io_snap snap = io_Snap(s);
    if (!(st = req_Key(q, kp, "params:%d", q->peer)) &&
        !(st = req_Key(q, kg, "agg:%d:%ld", q->peer, q->iteration)) &&
        !(st = req_Key(q, km, "added:%d", q->peer)) &&
        !(st = store_PutBlob(s, kg, blob, len, STEPS_TTL_S)))
        st = store_UpdateMarked(s, kp, kg, NULL, 1.0f, 0, 0, km, u, NULL, NULL);
    io_Account(io, &snap);
    io_Add(&io->store_ms, t0);
    return st == SP_ERR_CONFLICT ? already_Done() : st;
}

/* Scale-in: a survivor merges the removed worker r's model into its own
 * by adding r's residual acc:r:t (the steps r applied and never sent),
 * inside the database, marked in absorbed:p so a retry adds it once. */
static spStatus apply_Merge(const step_req *q, long u, store *s, int r, step_io *io)
{
    char kp[160], ka[160], km[160];
    spStatus st;
    double t0 = io_NowMs();
    io_snap snap = io_Snap(s);
    if (!(st = req_Key(q, kp, "params:%d", q->peer)) &&
        !(st = req_Key(q, ka, "acc:%d:%ld", r, u)) &&
        !(st = req_Key(q, km, "absorbed:%d", q->peer)))
        st = store_UpdateMarked(s, kp, ka, NULL, 1.0f, 0, 0, km, u, NULL, NULL);
    io_Account(io, &snap);
    io_Add(&io->store_ms, t0);
    return st ? sp_Wrap(st, "apply: merging worker %d's model", r) : SP_OK;
}

static void apply_Answer(cJSON *res, const step_req *q, const decision *d, size_t pairs)
{
    cJSON_AddNumberToObject(res, "updates", cJSON_GetArraySize(d->updates));
    cJSON_AddNumberToObject(res, "pairs", (double)pairs);
    cJSON_AddNumberToObject(res, "workers", d->workers);
    cJSON *c = cJSON_AddObjectToObject(res, FIELD_CONTEXT);
    cJSON_AddItemToObject(c, FIELD_LIVE, cJSON_Duplicate(d->live, 1));
    if (d->remove == q->peer)
        cJSON_AddBoolToObject(res, FIELD_LEAVE, 1);
    else if (d->remove >= 0)
        cJSON_AddNumberToObject(res, "merged_from", d->remove);
    if (d->stop)
        cJSON_AddBoolToObject(res, FIELD_STOP, 1);
}

/* The decision of iteration u: the others' steps and a merge into this
 * replica; *d keeps the decision (cJSON_Delete(d->root) after). */
static spStatus apply_One(step_ctx *c, long u, decision *d, size_t *pairs)
{
    const step_req *q = &c->q;
    store *s = c->own;
    sync_arrival *arr = NULL;
    float *dense = NULL;
    uint8_t *touched = NULL, *blob = NULL;
    size_t len = 0;
    spStatus st;
    if ((st = collective_Await(c->req, q, "updates", u, c->live, 1, &arr, &c->io)) ||
        (st = decision_Parse(q, u, arr[0].payload, d)))
        goto out;
    if (!(dense = tensor_Alloc(q->n_params)) || !(touched = calloc(q->n_params, 1))) {
        st = sp_Error(SP_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((st = apply_Sum(q, u, s, d, dense, touched, &blob, &len, pairs, &c->io)) ||
        (blob && (st = apply_Add(q, u, s, blob, len, &c->io))) ||
        (d->remove >= 0 && d->remove != q->peer &&
         (st = apply_Merge(q, u, s, d->remove, &c->io))))
        goto out;
out:
    collective_FreeArrivals(arr, 1);
    free(dense);
    free(touched);
    free(blob);
    return st;
}

/* The iterations whose decisions apply at t: t - slack, none before the
 * epoch's start, and at an epoch's last iteration every one left up to t
 * (epochs end in step: the evaluation sees every step). */
static void apply_Range(const step_req *q, long *from, long *to)
{
    double iters = 0;
    int has = 0;
    long t = q->iteration, S = q->job.slack;
    if (req_GetNumber(q->body, FIELD_ITERS_PER_EPOCH, &iters, &has) || iters < 1) {
        sp_ClearError();
        has = 0;
    }
    long I = has ? (long)iters : 0, start = I ? t / I * I : 0;
    *from = t - S < start ? start : t - S;
    *to = I && t % I == I - 1 ? t : t - S;
}

STEP_DEFINE(apply, Apply, REQ_SHAPE | REQ_ITERATION | REQ_PEER | STEP_LIVE | STEP_OWN, 1)

static spStatus apply_Run(step_ctx *c, cJSON *res)
{
    const step_req *q = &c->q;
    decision d = {0};
    size_t pairs = 0, k = 0;
    long from, to;
    spStatus st = SP_OK;
    apply_Range(q, &from, &to);
    for (long u = from; u <= to && !st && !d.stop; u++) {
        cJSON_Delete(d.root);
        memset(&d, 0, sizeof d);
        if (!(st = apply_One(c, u, &d, &k)))
            pairs += k;
    }
    if (!st && d.root) {
        apply_Answer(res, q, &d, pairs);
    } else if (!st) {
        /* --slack: no decision applies yet; the live set stays. */
        cJSON *l = cJSON_AddArrayToObject(cJSON_AddObjectToObject(res, FIELD_CONTEXT), FIELD_LIVE);
        for (int i = 0; i < c->n_live; i++)
            cJSON_AddItemToArray(l, cJSON_CreateNumber(c->live[i]));
        cJSON_AddNumberToObject(res, "pairs", 0);
    }
    cJSON_AddNumberToObject(res, "applied_from", (double)from);
    cJSON_AddNumberToObject(res, "applied_to", (double)to);
    cJSON_Delete(d.root);
    return st;
}
