/* supervisor.c - MLLESS step 5, run by the supervisor only (the first live
 * worker; invoked once per iteration, so nothing has to stay up between
 * iterations): waits for every live worker's "report", decides (steps/
 * mlless.h: which sparse updates exist, scale-in, stop) and publishes the
 * decision as "updates" for iteration t. Its state between iterations - how
 * many iterations in a row the loss was under the target, the loss windows
 * - lives in {job}:supervisor.
 *
 * Decision (the "updates" payload, also stored as {job}:decision:<t> for
 * the minibatch steps of t+1, which re-stride with scale-in on):
 *   {"t", "workers": n reported, "updates": [w with a sparse update],
 *    "live": [workers after this iteration], "remove": r|-1, "cursor": the
 *    re-striding cursor of t+1,
 *    "stop": bool, "loss": mean reported loss|null, "below": iterations in
 *    a row with the loss under the target}
 * Idempotent: the state remembers the last decision, so a retry of
 * iteration t announces the same decision again (same message id; t = 0 is
 * recomputed from the same reports). The state chain starts fresh at t = 0;
 * any other gap is 409. The sparse
 * updates of t-1-S (every worker applied them before reporting t; S =
 * --slack) and the decision of t-2-S are unlinked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steps/collective.h"
#include "steps/mlless.h"
#include "steps/step_ctx.h"
#include "steps/fields.h"

typedef struct {
    mlless_state s;
    char *decision;   /* JSON text of the state's last decision (malloc'd) */
} sup_saved;

static double jnum(const cJSON *o, const char *k, double def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* *exists = 0 when there is no state (or it is not ours to read). */
static spStatus state_Load(const step_req *q, store *s, sup_saved *sv, int *exists)
{
    char key[160];
    uint8_t *buf = NULL;
    size_t len = 0;
    *exists = 0;
    mlless_StateInit(&sv->s);
    spStatus st = req_Key(q, key, "supervisor");
    if (st || (st = store_GetBlob(s, key, &buf, &len)) == SP_ERR_NOT_FOUND) {
        if (st == SP_ERR_NOT_FOUND)
            sp_ClearError();
        return st == SP_ERR_NOT_FOUND ? SP_OK : st;
    }
    if (st)
        return st;
    cJSON *o = cJSON_ParseWithLength((const char *)buf, len);
    free(buf);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "decision");
    if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, "t")) || !cJSON_IsString(d)) {
        cJSON_Delete(o);
        return sp_Error(SP_ERR_FORMAT, "%s is not a supervisor state", key);
    }
    sv->s.t = (long)jnum(o, "t", -1);
    sv->s.below = (int)jnum(o, "below", 0);
    sv->s.window_sum = jnum(o, "window_sum", 0);
    sv->s.window_n = (int)jnum(o, "window_n", 0);
    sv->s.prev = jnum(o, "prev", -1);
    sv->s.peak = jnum(o, "peak", 0);
    sv->s.knee = (int)jnum(o, "knee", 0);
    sv->s.cursor = (long)jnum(o, "cursor", 0);
    sv->decision = strdup(d->valuestring);
    cJSON_Delete(o);
    *exists = 1;
    return sv->decision ? SP_OK : sp_Error(SP_ERR_NOMEM, "out of memory");
}

static spStatus state_Save(const step_req *q, store *s, const mlless_state *m, const char *dec)
{
    char key[160];
    spStatus st = req_Key(q, key, "supervisor");
    if (st)
        return st;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "t", (double)m->t);
    cJSON_AddNumberToObject(o, "below", m->below);
    cJSON_AddNumberToObject(o, "window_sum", m->window_sum);
    cJSON_AddNumberToObject(o, "window_n", m->window_n);
    cJSON_AddNumberToObject(o, "prev", m->prev);
    cJSON_AddNumberToObject(o, "peak", m->peak);
    cJSON_AddNumberToObject(o, "knee", m->knee);
    cJSON_AddNumberToObject(o, "cursor", (double)m->cursor);
    cJSON_AddStringToObject(o, "decision", dec);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text)
        return sp_Error(SP_ERR_NOMEM, "out of memory");
    /* Refreshed every iteration; a job idle this long has lost its chain. */
    st = store_PutBlob(s, key, text, strlen(text), STEPS_TTL_S);
    free(text);
    return st;
}

/* Reads the reports, decides, returns the decision's JSON text. */
static char *decision_Make(const step_req *q, mlless_state *m, const int *live, int n,
                           const sync_arrival *arr)
{
    double sum = 0;
    int n_loss = 0;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddNumberToObject(d, "t", (double)q->iteration);
    cJSON_AddNumberToObject(d, "workers", n);
    cJSON *ups = cJSON_AddArrayToObject(d, "updates");
    for (int i = 0; i < n; i++) {
        cJSON *p = arr[i].payload ? cJSON_Parse(arr[i].payload) : NULL;
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(p, "loss");
        if (cJSON_IsNumber(l)) {
            sum += l->valuedouble;
            n_loss++;
        }
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "has_update")))
            cJSON_AddItemToArray(ups, cJSON_CreateNumber(live[i]));
        cJSON_Delete(p);
    }
    mlless_decision dec;
    double loss = n_loss ? sum / n_loss : 0, iters = 0;
    int has_iters = 0;
    if (req_GetNumber(q->body, FIELD_ITERS_PER_EPOCH, &iters, &has_iters)) {
        sp_ClearError();
        has_iters = 0;
    }
    mlless_policy pol = {.scale_in = q->job.scale_in, .target_loss = q->job.target_loss,
                         .M = q->job.minibatches, .iters = has_iters ? (long)iters : 0};
    mlless_Decide(m, &pol, q->iteration, loss, n_loss > 0, live, n, &dec);
    cJSON *next = cJSON_AddArrayToObject(d, "live");
    for (int i = 0; i < n; i++)
        if (live[i] != dec.remove)
            cJSON_AddItemToArray(next, cJSON_CreateNumber(live[i]));
    cJSON_AddNumberToObject(d, "remove", dec.remove);
    cJSON_AddNumberToObject(d, "cursor", (double)dec.cursor);
    cJSON_AddBoolToObject(d, "stop", dec.stop);
    if (n_loss)
        cJSON_AddNumberToObject(d, "loss", loss);
    else
        cJSON_AddNullToObject(d, "loss");
    cJSON_AddNumberToObject(d, "below", dec.below);
    char *text = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    return text;
}

/* Sparse updates of t-1 (any worker's) and the decision of t-2. */
static spStatus sup_Cleanup(const step_req *q, store *s, step_io *io)
{
    char names[JOB_MAX_WORKERS + 1][160];
    const char *keys[JOB_MAX_WORKERS + 1];
    int k = 0, hi = q->n_peers;
    spStatus st = SP_OK;
    /* With --slack S every worker applies u's updates by its iteration
     * u + S, before it reports u + S + 1. */
    long t = q->iteration - q->job.slack;
    for (int w = 0; t >= 1 && w < hi && !st; w++)
        if (!(st = req_Key(q, names[k], "sparse:%d:%ld", w, t - 1)))
            keys[k] = names[k], k++;
    if (!st && t >= 2 && !(st = req_Key(q, names[k], "decision:%ld", t - 2)))
        keys[k] = names[k], k++;
    return st ? st : keys_Unlink(s, keys, k, io);
}

static spStatus sup_Decide(step_ctx *c, sup_saved *sv)
{
    const step_req *q = &c->q;
    store *s = c->own;
    step_io *io = &c->io;
    sync_arrival *arr = NULL;
    char key[160];
    spStatus st =
        collective_Await(c->req, q, "report", q->iteration, c->live, c->n_live, &arr, io);
    if (st)
        return st;
    if (q->iteration == 0)
        mlless_StateInit(&sv->s);
    free(sv->decision);
    sv->decision = decision_Make(q, &sv->s, c->live, c->n_live, arr);
    collective_FreeArrivals(arr, c->n_live);
    if (!sv->decision)
        return sp_Error(SP_ERR_NOMEM, "out of memory");
    double t0 = io_NowMs();
    io_snap snap = io_Snap(s);
    if (!(st = req_Key(q, key, "decision:%ld", q->iteration)) &&
        !(st = store_PutBlob(s, key, sv->decision, strlen(sv->decision), STEPS_TTL_S)))
        st = state_Save(q, s, &sv->s, sv->decision);
    io_Account(io, &snap);
    io_Add(&io->store_ms, t0);
    return st;
}

STEP_DEFINE(supervisor, Supervisor, REQ_ITERATION | REQ_PEER | STEP_FIRST_LIVE | STEP_OWN, 1)

static spStatus supervisor_Run(step_ctx *c, cJSON *res)
{
    const step_req *q = &c->q;
    sup_saved sv = {0};
    int exists = 0;
    /* t = 0 is always decided afresh: a state (even a damaged one) of an
     * earlier run of the same job id may be there, and the first decision
     * needs no history. */
    io_snap snap = io_Snap(c->own);
    mlless_StateInit(&sv.s);
    spStatus st = q->iteration > 0 ? state_Load(q, c->own, &sv, &exists) : SP_OK;
    io_Account(&c->io, &snap);
    if (st)
        goto out;
    int duplicate = exists && sv.s.t == q->iteration;
    if (!duplicate && q->iteration > 0 && (!exists || sv.s.t != q->iteration - 1)) {
        st = sp_Error(SP_ERR_CONFLICT, "supervisor: iteration %ld does not follow the last one "
                      "decided (%ld)", q->iteration, exists ? sv.s.t : -1L);
        goto out;
    }
    if ((!duplicate && (st = sup_Decide(c, &sv))) ||
        (st = collective_Announce(q, "updates", q->iteration, sv.decision, &c->io)) ||
        (st = sup_Cleanup(q, c->own, &c->io)))
        goto out;
    cJSON *d = cJSON_Parse(sv.decision);
    if (d)
        cJSON_AddItemToObject(res, "decision", d);
    cJSON_AddBoolToObject(res, "duplicate", duplicate);
out:
    free(sv.decision);
    return st;
}
