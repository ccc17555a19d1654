/* aggregate.c - fetches every live peer's average for iteration t straight
 * from that peer's Redis, combines them with the job's rule and stores the
 * result as agg:p:t in the caller's Redis.
 *
 * The caller's own average must be good (else the step fails). Another
 * peer whose average cannot be used - the key expired, the blob is corrupt,
 * the wrong size or not finite - is left out and reported under
 * "rejected", as the barrier leaves out a late peer: one bad peer must not
 * stop the others. Those verdicts are on bytes every peer reads alike; a
 * database that does not answer is not (one peer may fetch just before it
 * stalls, another just after), so such a fetch is tried again until the
 * step's wait budget ("timeout_ms", as the barrier's) runs out: a peer the
 * barrier decided on is waited for, not silently dropped by some peers and
 * kept by others (reported under "timeouts" when it still fails). A robust
 * rule that cannot run with the inputs left (Krum with fewer than f+3,
 * trimmed mean with 2*trim >= k) falls back to the coordinate median (the
 * mean below 3 inputs) and says so under "fallback". A sparse model's
 * averages are sparse tensors: their mean (kern_MeanSparse, the only rule
 * for them) is stored sparse. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/tensor.h"
#include "ml/aggregate.h"
#include "steps/poison.h"
#include "steps/sparse_mean.h"
#include "steps/step_util.h"
#include "steps/collective.h"
#include "steps/step_ctx.h"
#include "steps/fields.h"

typedef struct {
    int *live, n_live;
    float **xs;       /* n_live slots; NULL for rejected peers (sparse: the wire blobs) */
    int *used;        /* peer indices of the inputs used, in xs order */
    float **inputs;
    int k;
} agg_inputs;

static void inputs_Free(agg_inputs *a)
{
    for (int i = 0; a->xs && i < a->n_live; i++)
        free(a->xs[i]);
    free(a->xs);
    free(a->used);
    free(a->inputs);
    free(a->live);
}

/* Failures that mean "this peer's average is unusable", as opposed to
 * failures of this process (memory, bugs) that must fail the step. */
static int is_PeerFault(spStatus st)
{
    return st == SP_ERR_NOT_FOUND || st == SP_ERR_UNAVAILABLE || st == SP_ERR_TIMEOUT ||
           st == SP_ERR_INVALID || st == SP_ERR_FORMAT || st == SP_ERR_AUTH;
}

/* A sparse average, whole and checked: *out holds its wire blob's bytes. */
static spStatus agg_FetchSparse(const step_req *q, store *s, const char *key, float **out)
{
    uint8_t *blob = NULL;
    size_t len;
    spStatus st = sparse_Get(s, key, q->n_params, &blob, &len);
    if (st == SP_OK)
        *out = (float *)(void *)blob;
    return st;
}

static spStatus agg_FetchOne(const step_req *q, int peer, float **out, step_io *io)
{
    char key[160];
    store *s;
    size_t n;
    spStatus st;
    if ((st = req_Key(q, key, "avg:%d:%ld", peer, q->iteration)) ||
        (st = req_PeerStore(q, peer, &s)))
        return st;
    io_snap snap = io_Snap(s);
    if (model_SpecIsSparse(&q->spec)) {
        st = agg_FetchSparse(q, s, key, out);
        io_Account(io, &snap);
        return st ? sp_Wrap(st, "%s on peer %d", key, peer) : SP_OK;
    }
    /* Verified there: checksum, size and finiteness (a NaN or Inf is
     * SP_ERR_INVALID naming the index), so no second pass over it here. */
    st = store_GetTensor(s, key, q->n_params, out, &n);
    io_Account(io, &snap);
    return st ? sp_Wrap(st, "%s on peer %d", key, peer) : SP_OK;
}

/* Between tries of a database that did not answer. */
#define AGG_RETRY_MIN_MS 50
#define AGG_RETRY_MAX_MS 1000

/* agg_FetchOne, tried again while the peer's database does not answer and
 * the wait budget lasts; the time spent failing goes to "timeouts". */
static spStatus agg_FetchPatient(const step_req *q, int peer, float **out, step_io *io,
                                 double deadline, cJSON *res)
{
    double t0 = io_NowMs(), left;
    long pause = AGG_RETRY_MIN_MS;
    spStatus st;
    while (sp_IsRetryable(st = agg_FetchOne(q, peer, out, io)) && peer != q->peer &&
           (left = deadline - io_NowMs()) > 0) {
        sp_ClearError();
        long ms = (double)pause < left ? pause : (long)left + 1;
        struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        pause = pause * 2 < AGG_RETRY_MAX_MS ? pause * 2 : AGG_RETRY_MAX_MS;
    }
    if (sp_IsRetryable(st) && peer != q->peer) {
        char why[SP_ERROR_MAX];
        snprintf(why, sizeof why, "%s", sp_LastError());
        steps_AddTimeout(res, "avg", io_NowMs() - t0, &peer, 1);
        sp_Error(st, "%s", why);
    }
    return st;
}

static spStatus agg_Fetch(const step_req *q, agg_inputs *a, cJSON *rejected, step_io *io,
                          double deadline, cJSON *res)
{
    a->xs = calloc((size_t)a->n_live, sizeof *a->xs);
    a->used = calloc((size_t)a->n_live, sizeof *a->used);
    a->inputs = calloc((size_t)a->n_live, sizeof *a->inputs);
    if (!a->xs || !a->used || !a->inputs)
        return sp_Error(SP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < a->n_live; i++) {
        int peer = a->live[i];
        spStatus st = agg_FetchPatient(q, peer, &a->xs[i], io, deadline, res);
        /* A Byzantine peer (--attack) that damaged its own published average
         * leaves it out like everyone else does, instead of failing. */
        int own_fatal = peer == q->peer && !poison_OnAverage(q);
        if (st && (own_fatal || !is_PeerFault(st)))
            return st;
        if (st) {
            free(a->xs[i]);
            a->xs[i] = NULL;
            cJSON *r = cJSON_CreateObject();
            cJSON_AddNumberToObject(r, FIELD_PEER, peer);
            cJSON_AddStringToObject(r, "code", sp_StatusName(st));
            cJSON_AddStringToObject(r, FIELD_REASON, sp_LastError());
            cJSON_AddItemToArray(rejected, r);
            sp_ClearError();
            continue;
        }
        a->used[a->k] = peer;
        a->inputs[a->k++] = a->xs[i];
    }
    return SP_OK;
}

/* The job's rule, or the fallback when it cannot run with k inputs. */
static agg_config agg_Choose(const job_config *job, int k, char *why, size_t cap)
{
    agg_config c = job->agg;
    const char *name = agg_KindName(c.kind);
    why[0] = 0;
    int ok = 1;
    if (c.kind == AGG_TRIMMED_MEAN && 2 * c.trim >= k) {
        ok = 0;
        snprintf(why, cap, "%s with trim %d needs more than %d inputs, got %d", name, c.trim,
                 2 * c.trim, k);
    } else if ((c.kind == AGG_KRUM || c.kind == AGG_MULTI_KRUM) && k < c.f + 3) {
        ok = 0;
        snprintf(why, cap, "%s with f=%d needs at least %d inputs, got %d", name, c.f, c.f + 3,
                 k);
    }
    if (!ok) {
        c.kind = k >= 3 ? AGG_MEDIAN : AGG_MEAN;
        size_t len = strlen(why);
        snprintf(why + len, cap - len, ": used %s", agg_KindName(c.kind));
    }
    return c;
}

/* The mean of sparse averages, stored sparse at key. */
static spStatus agg_SparseMean(const step_req *q, agg_inputs *a, store *own, const char *key,
                               step_io *io)
{
    if (q->job.agg.kind != AGG_MEAN)
        return sp_Error(SP_ERR_INVALID, "aggregator %s: a sparse model's averages are combined "
                        "by the mean only", agg_KindName(q->job.agg.kind));
    uint8_t *out = NULL;
    size_t len = 0;
    double t0 = io_NowMs();
    spStatus st = sparse_Mean((uint8_t *const *)(void *)a->inputs, a->k, q->n_params, &out, &len);
    io_Add(&io->compute_ms, t0);
    io_snap snap = io_Snap(own);
    if (st == SP_OK)
        st = store_PutBlob(own, key, out, len, STEPS_TTL_S);
    io_Account(io, &snap);
    free(out);
    return st;
}

static spStatus agg_Combine(const step_req *q, agg_inputs *a, cJSON *res, float *out,
                            step_io *io)
{
    char why[256];
    agg_config c = agg_Choose(&q->job, a->k, why, sizeof why);
    int *selected = calloc((size_t)a->k, sizeof *selected);
    if (!selected)
        return sp_Error(SP_ERR_NOMEM, "out of memory");
    double t0 = io_NowMs();
    spStatus st = agg_Apply(&c, q->n_params, a->k, (const float *const *)a->inputs, out, selected);
    io_Add(&io->compute_ms, t0);
    if (st == SP_OK && !tensor_AllFinite(q->n_params, out))
        st = sp_Error(SP_ERR_INVALID, "the aggregate is not finite; nothing stored");
    if (st == SP_OK) {
        cJSON_AddStringToObject(res, "aggregator", agg_KindName(c.kind));
        if (why[0])
            cJSON_AddStringToObject(res, "fallback", why);
        if (c.kind == AGG_KRUM || c.kind == AGG_MULTI_KRUM) {
            cJSON *sel = cJSON_AddArrayToObject(res, "selected");
            for (int i = 0; i < a->k; i++)
                if (selected[i])
                    cJSON_AddItemToArray(sel, cJSON_CreateNumber(a->used[i]));
        }
    }
    free(selected);
    return st;
}

STEP_DEFINE(aggregate, Aggregate, REQ_SHAPE | REQ_ITERATION | REQ_PEER | REQ_PEERS, 1)

static spStatus aggregate_Run(step_ctx *c, cJSON *res)
{
    const step_req *q = &c->q;
    step_io *io = &c->io;
    agg_inputs a = {0};
    float *out = NULL;
    store *own;
    char key[160];
    int self = 0;
    spStatus st = req_GetPeerList(q->body, FIELD_LIVE, q->n_peers, 0, &a.live, &a.n_live);
    if (st)
        goto out;
    for (int i = 0; i < a.n_live; i++)
        self |= a.live[i] == q->peer;
    if (!self) {
        st = sp_Error(SP_ERR_INVALID, "\"live\" must include the calling peer %d", q->peer);
        goto out;
    }
    int wait_ms;
    if ((st = steps_WaitMs(c->req, q, &wait_ms)))
        goto out;
    cJSON *rejected = cJSON_CreateArray();
    double t0 = io_NowMs();
    st = agg_Fetch(q, &a, rejected, io, t0 + wait_ms, res);
    io_Add(&io->transfer_ms, t0);
    int sparse = model_SpecIsSparse(&q->spec);
    if (st == SP_OK && ((st = req_Key(q, key, "agg:%d:%ld", q->peer, q->iteration)) ||
                        (st = req_PeerStore(q, q->peer, &own))) == SP_OK && sparse) {
        st = agg_SparseMean(q, &a, own, key, io);
        if (st == SP_OK)
            cJSON_AddStringToObject(res, "aggregator", agg_KindName(AGG_MEAN));
    }
    if (st == SP_OK && !sparse && !(out = tensor_Alloc(q->n_params)))
        st = sp_Error(SP_ERR_NOMEM, "out of memory for the aggregate");
    if (st == SP_OK && !sparse)
        st = agg_Combine(q, &a, res, out, io);
    if (st) {
        cJSON_Delete(rejected);
        goto out;
    }
    cJSON *used = cJSON_AddArrayToObject(res, "used");
    for (int i = 0; i < a.k; i++)
        cJSON_AddItemToArray(used, cJSON_CreateNumber(a.used[i]));
    cJSON_AddItemToObject(res, FIELD_REJECTED, rejected);
    t0 = io_NowMs();
    io_snap snap = io_Snap(own);
    if (!sparse && (st = store_PutTensor(own, key, out, q->n_params, STEPS_TTL_S)))
        goto out;
    io_Account(io, &snap);
    /* Every live peer passed barrier t, so all are done with iteration t-1:
     * drop this peer's keys of t-1 now rather than letting megabytes per
     * iteration wait for their TTL. */
    if (q->iteration > 0 &&
        (st = keys_DropIteration(q, own, q->peer, q->iteration - 1, q->job.minibatches, io)))
        goto out;
    io_Add(&io->store_ms, t0);
out:
    free(out);
    inputs_Free(&a);
    return st;
}
