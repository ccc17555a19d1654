/* barrier.c - waits until every live peer announced iteration t, or the
 * timeout passes; the late ones are reported as missing and the iteration
 * goes on with the peers that arrived (context "live" narrows the
 * following steps to them). The caller announced (notify) before calling
 * this, so it must be among the arrived: if it is not, its notify was never
 * made and the answer is 409, since waiting again would not change that.
 *
 * Heartbeats (sync/heartbeat.h) make a dead peer's exclusion fast. When
 * job.heartbeat_timeout_ms is set and shorter than the wait, a barrier still
 * waiting after its first slice listens to the job's heartbeats and gives up
 * on a member unheard for that long - but only once the caller's own
 * heartbeat has kept arriving (at least every half timeout) for a whole
 * timeout: then the channel works and the silence is the member's, not a
 * NATS outage's. Such members are "excluded" with reason "heartbeat lost";
 * members still missing at the timeout with "missed the barrier".
 *
 * Joiners: "joiners" lists peers outside "live" that rejoin at this
 * iteration (the rejoin step announced "join" for t first); each one whose
 * announcement is on the job's stream is waited for like a live peer. */
#include <stdlib.h>
#include <string.h>

#include "steps/step_util.h"
#include "steps/step_ctx.h"
#include "sync/heartbeat.h"
#include "steps/fields.h"

/* Time left to answer before the runtime's per-request deadline. */
#define BARRIER_MARGIN_MS 100
/* How long a joiner's announcement may take to show up (it is made before
 * the live peers start the iteration, so it is normally already there). */
#define BARRIER_JOIN_WAIT_MS 2000
#define BARRIER_SLICE_MIN_MS 50

static spStatus barrier_Timeout(const rt_request *req, const step_req *q, int *timeout_ms)
{
    spStatus st = req_GetInt(q->body, FIELD_TIMEOUT_MS, 1, JOB_MAX_WAIT_MS, 0, q->job.sync_timeout_ms,
                             timeout_ms);
    if (st || req->deadline_ms <= 0)
        return st;
    int64_t left = req->deadline_ms - rt_NowMs() - BARRIER_MARGIN_MS;
    if (left <= 0)
        return sp_Error(SP_ERR_TIMEOUT, "barrier: no time left before the request deadline");
    if (left < *timeout_ms)
        *timeout_ms = (int)left;
    return SP_OK;
}

/* The members waited for: the live peers, then verified joiners. */
typedef struct {
    int *members;
    int n, cap;
    int self;            /* index of the caller in members */
    sync_arrival *arr;   /* cap entries */
    int *lost;           /* cap: given up because the heartbeat stopped */
    int *joiner;         /* cap: a verified joiner */
} barrier_set;

static void set_Free(barrier_set *b)
{
    if (b->arr)
        sync_ArrivalsFree(b->arr, b->n);
    free(b->arr);
    free(b->lost);
    free(b->joiner);
    free(b->members);
}

static spStatus set_Init(const step_req *q, int hi, barrier_set *b)
{
    int *live = NULL, n = 0;
    spStatus st = req_GetPeerList(q->body, FIELD_LIVE, hi, 0, &live, &n);
    if (st)
        return st;
    b->cap = hi;
    b->members = calloc((size_t)hi, sizeof *b->members);
    b->arr = calloc((size_t)hi, sizeof *b->arr);
    b->lost = calloc((size_t)hi, sizeof *b->lost);
    b->joiner = calloc((size_t)hi, sizeof *b->joiner);
    if (!b->members || !b->arr || !b->lost || !b->joiner) {
        free(live);
        return sp_Error(SP_ERR_NOMEM, "out of memory");
    }
    b->self = -1;
    for (int i = 0; i < n; i++) {
        b->members[i] = live[i];
        b->arr[i].member = live[i];
        if (live[i] == q->peer)
            b->self = i;
    }
    b->n = n;
    free(live);
    if (b->self < 0)
        return sp_Error(SP_ERR_INVALID, "\"live\" must include the calling peer %d", q->peer);
    return SP_OK;
}

/* Adds the joiners whose "join" announcement for this iteration exists. */
static spStatus set_AddJoiners(const step_req *q, sync_conn *c, int hi, int timeout_ms,
                               barrier_set *b)
{
    if (!cJSON_GetObjectItemCaseSensitive(q->body, FIELD_JOINERS))
        return SP_OK;
    int *j = NULL, nj = 0, k = 0, got = 0;
    spStatus st = req_GetPeerList(q->body, FIELD_JOINERS, hi, 1, &j, &nj);
    if (st)
        return st;
    for (int i = 0; i < nj; i++) {
        int known = 0;
        for (int m = 0; m < b->n; m++)
            known |= b->members[m] == j[i];
        if (!known)
            j[k++] = j[i];
    }
    sync_arrival *a = k ? calloc((size_t)k, sizeof *a) : NULL;
    if (k && !a)
        st = sp_Error(SP_ERR_NOMEM, "out of memory");
    else if (k)
        st = sync_Await(c, q->job.id, "join", q->iteration, j, k,
                        timeout_ms < BARRIER_JOIN_WAIT_MS ? timeout_ms : BARRIER_JOIN_WAIT_MS, a,
                        &got);
    for (int i = 0; st == SP_OK && i < k; i++)
        if (a[i].arrived) {
            b->joiner[b->n] = 1;
            b->members[b->n] = j[i];
            b->arr[b->n++].member = j[i];
        }
    if (a)
        sync_ArrivalsFree(a, k);
    free(a);
    free(j);
    return st;
}

/* Members in ascending order, so every peer's "live" - and the order in
 * which aggregate sums the averages - is the same: floating-point sums in
 * another order would let the peers' models drift apart bit by bit. Runs
 * before any arrival is recorded. */
static void set_Sort(barrier_set *b, int peer)
{
    for (int i = 1; i < b->n; i++)
        for (int k = i; k > 0 && b->members[k - 1] > b->members[k]; k--) {
            int m = b->members[k], j = b->joiner[k];
            b->members[k] = b->members[k - 1];
            b->joiner[k] = b->joiner[k - 1];
            b->members[k - 1] = m;
            b->joiner[k - 1] = j;
        }
    for (int i = 0; i < b->n; i++) {
        b->arr[i].member = b->members[i];
        if (b->members[i] == peer)
            b->self = i;
    }
}

/* ---- heartbeats -------------------------------------------------------- */

typedef struct {
    hb_watcher *w;
    int hb_ms;           /* 0: heartbeats not used */
    int64_t ok_since;    /* the caller has been heard steadily since; -1 not */
} hb_check;

/* Gives up on members silent for a heartbeat timeout, judged only while
 * the caller itself is heard (see the top of the file). */
static void hb_Judge(const step_req *q, hb_check *h, barrier_set *b)
{
    int64_t now = rt_NowMs();
    long long self = hb_Watcher_Heard(h->w, q->peer);
    if (self < 0 || self > h->hb_ms / 2) {
        h->ok_since = -1;
        return;
    }
    if (h->ok_since < 0)
        h->ok_since = now;
    if (now - h->ok_since < h->hb_ms)
        return;
    for (int i = 0; i < b->n; i++) {
        if (i == b->self || b->arr[i].arrived || b->lost[i])
            continue;
        long long age = hb_Watcher_Heard(h->w, b->members[i]);
        if (age < 0 || age > h->hb_ms)
            b->lost[i] = 1;
    }
}

/* Waits in slices; between slices the heartbeats are judged. The watcher
 * is made only when the first slice did not bring everyone, so a barrier
 * that completes normally costs nothing extra. */
static spStatus barrier_Wait(const step_req *q, sync_conn *c, int timeout_ms, barrier_set *b,
                             hb_check *h)
{
    int64_t deadline = rt_NowMs() + timeout_ms;
    int *pend = calloc((size_t)b->n, sizeof *pend), *idx = calloc((size_t)b->n, sizeof *idx);
    sync_arrival *got = calloc((size_t)b->n, sizeof *got);
    spStatus st = pend && idx && got ? SP_OK : sp_Error(SP_ERR_NOMEM, "out of memory");
    int slice_ms = h->hb_ms / 4 > BARRIER_SLICE_MIN_MS ? h->hb_ms / 4 : BARRIER_SLICE_MIN_MS;
    for (int round = 0; st == SP_OK; round++) {
        int np = 0;
        for (int i = 0; i < b->n; i++)
            if (!b->arr[i].arrived && !b->lost[i]) {
                pend[np] = b->members[i];
                idx[np++] = i;
            }
        int64_t left = deadline - rt_NowMs();
        if (np == 0 || left <= 0)
            break;
        if (round == 1 && h->hb_ms && hb_Watcher_Create(c, q->job.id, h->hb_ms, &h->w) != SP_OK)
            sp_ClearError(); /* no watcher: wait the whole timeout, as without heartbeats */
        int wait = (int)left;
        if (h->hb_ms && (round == 0 || h->w) && wait > slice_ms)
            wait = slice_ms;
        int n_got = 0;
        st = sync_Await(c, q->job.id, "avg", q->iteration, pend, np, wait, got, &n_got);
        for (int k = 0; st == SP_OK && k < np; k++)
            if (got[k].arrived) {
                b->arr[idx[k]] = got[k];
                got[k].payload = NULL; /* moved */
            }
        sync_ArrivalsFree(got, np);
        if (st == SP_OK && h->w)
            hb_Judge(q, h, b);
    }
    free(pend);
    free(idx);
    free(got);
    return st;
}

/* ---- the answer -------------------------------------------------------- */

static void barrier_Answer(cJSON *res, const barrier_set *b)
{
    cJSON *arrived = cJSON_AddArrayToObject(res, "arrived");
    cJSON *missing = cJSON_AddArrayToObject(res, "missing");
    cJSON *losses = cJSON_AddArrayToObject(res, "losses");
    cJSON *excluded = cJSON_AddArrayToObject(res, FIELD_EXCLUDED);
    cJSON *joined = cJSON_AddArrayToObject(res, "joined");
    for (int i = 0; i < b->n; i++) {
        const sync_arrival *a = &b->arr[i];
        if (b->joiner[i])
            cJSON_AddItemToArray(joined, cJSON_CreateNumber(a->member));
        if (!a->arrived) {
            cJSON_AddItemToArray(missing, cJSON_CreateNumber(a->member));
            cJSON *e = cJSON_CreateObject();
            cJSON_AddNumberToObject(e, FIELD_PEER, a->member);
            cJSON_AddStringToObject(e, FIELD_REASON,
                                    b->lost[i] ? "heartbeat lost" : "missed the barrier");
            cJSON_AddItemToArray(excluded, e);
            continue;
        }
        cJSON_AddItemToArray(arrived, cJSON_CreateNumber(a->member));
        /* The loss a peer sent with its announcement, null if none. */
        cJSON *p = a->payload ? cJSON_Parse(a->payload) : NULL;
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(p, FIELD_LOSS);
        cJSON_AddItemToArray(losses, cJSON_IsNumber(l) ? cJSON_CreateNumber(l->valuedouble)
                                                       : cJSON_CreateNull());
        cJSON_Delete(p);
    }
    cJSON *ctx = cJSON_AddObjectToObject(res, FIELD_CONTEXT);
    cJSON_AddItemToObject(ctx, FIELD_LIVE, cJSON_Duplicate(arrived, 1));
}

STEP_DEFINE(barrier, Barrier, REQ_ITERATION | REQ_PEER, 1)

static spStatus barrier_Run(step_ctx *c, cJSON *res)
{
    const step_req *q = &c->q;
    sync_conn *conn;
    barrier_set b = {0};
    hb_check h = {.ok_since = -1};
    int timeout_ms;
    int hi = q->n_peers ? q->n_peers : q->job.workers;
    spStatus st;
    if ((st = set_Init(q, hi, &b)) || (st = barrier_Timeout(c->req, q, &timeout_ms)) ||
        (st = steps_Nats(q, &conn)))
        goto out;
    if (q->job.heartbeat_timeout_ms > 0 && q->job.heartbeat_timeout_ms < timeout_ms)
        h.hb_ms = q->job.heartbeat_timeout_ms;
    double t0 = io_NowMs();
    if ((st = set_AddJoiners(q, conn, hi, timeout_ms, &b)) == SP_OK) {
        set_Sort(&b, q->peer);
        st = barrier_Wait(q, conn, timeout_ms, &b, &h);
    }
    io_Add(&c->io.sync_ms, t0);
    if (st)
        goto out;
    if (!b.arr[b.self].arrived) {
        st = sp_Error(SP_ERR_CONFLICT,
                      "peer %d itself has not announced iteration %ld (notify must run before "
                      "the barrier)",
                      q->peer, q->iteration);
        goto out;
    }
    barrier_Answer(res, &b);
    cJSON_AddNumberToObject(res, FIELD_TIMEOUT_MS, timeout_ms);
out:
    hb_Watcher_Destroy(h.w);
    set_Free(&b);
    return st;
}
