/* barrier.c - waits until every live peer announced iteration t, or the
 * timeout passes, then makes every peer go on with ONE live set: the
 * iteration's decision (below). The late ones are reported as missing and
 * the iteration goes on with the decided peers (context "live" narrows the
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
 * announcement is on the job's stream is waited for like a live peer.
 *
 * The decision. Barriers that waited with different luck (a peer's
 * announcement came just before one peer's timeout and just after
 * another's) must not go on with different live sets: the peers would sum
 * different averages and their models would part for good, while a peer
 * left out but alive would train on by itself. So each barrier proposes what
 * it saw - the arrived members, less any whose model differs from the
 * model most of them start from (notify sends its checksum) - and the first
 * proposal stored for t on the job's stream is THE live set of t
 * (sync_Decide; one round trip when the proposal equals the decision, as it
 * does whenever nothing went wrong). Every barrier answers with the
 * decision, whatever it saw itself. A barrier still waiting looks for a
 * decision between its slices and adopts it at once. A caller the decision
 * leaves out answers "self_excluded": true: the executor then sends it to
 * rejoin (re-authenticate, copy a decided peer's model), exactly as after a
 * failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steps/step_util.h"
#include "steps/step_ctx.h"
#include "sync/heartbeat.h"
#include "steps/fields.h"

/* How long a joiner's announcement may take to show up (it is made before
 * the live peers start the iteration, so it is normally already there). */
#define BARRIER_JOIN_WAIT_MS 2000
#define BARRIER_SLICE_MIN_MS 50
/* Without heartbeats, how often a waiting barrier looks for a decision. */
#define BARRIER_LOOK_MS 500
/* A live set as a bitmask of peers, and that in hex (a proposal's id). */
#define LIVE_BYTES ((JOB_MAX_WORKERS + 7) / 8)
#define LIVE_ID_CAP (2 * LIVE_BYTES + 1)

/* The members waited for: the live peers, then verified joiners. */
typedef struct {
    int *members;
    int n, cap;
    int self;            /* index of the caller in members */
    sync_arrival *arr;   /* cap entries */
    int *lost;           /* cap: given up because the heartbeat stopped */
    int *joiner;         /* cap: a verified joiner */
    char *decision;      /* a decision found while waiting (JSON), or NULL */
} barrier_set;

static void set_Free(barrier_set *b)
{
    if (b->arr)
        sync_ArrivalsFree(b->arr, b->n);
    free(b->arr);
    free(b->lost);
    free(b->joiner);
    free(b->members);
    free(b->decision);
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
                               barrier_set *b, cJSON *res)
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
    double t0 = io_NowMs();
    if (k && !a)
        st = sp_Error(SP_ERR_NOMEM, "out of memory");
    else if (k)
        st = sync_Await(c, q->job.id, "join", q->iteration, j, k,
                        timeout_ms < BARRIER_JOIN_WAIT_MS ? timeout_ms : BARRIER_JOIN_WAIT_MS, a,
                        &got);
    int late = 0;
    for (int i = 0; st == SP_OK && i < k; i++) {
        if (!a[i].arrived) {
            j[late++] = j[i]; /* only entries before i are overwritten */
            continue;
        }
        b->joiner[b->n] = 1;
        b->members[b->n] = j[i];
        b->arr[b->n++].member = j[i];
    }
    if (st == SP_OK && late)
        steps_AddTimeout(res, "join", io_NowMs() - t0, j, late);
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

/* Between slices: a decision another barrier made already ends the wait. */
static spStatus look_For_Decision(const step_req *q, sync_conn *c, barrier_set *b)
{
    size_t len = 0;
    int found = 0;
    spStatus st = sync_Decision(c, q->job.id, STEPS_LIVE_TOPIC, q->iteration, &b->decision, &len,
                                &found);
    if (st && sp_IsRetryable(st)) {
        sp_ClearError(); /* the next slice looks again */
        return SP_OK;
    }
    return st;
}

/* Waits in slices; between slices the heartbeats are judged and a decision
 * made meanwhile is looked for. The watcher is made and decisions are looked
 * for only when the first slice did not bring everyone, so a barrier that
 * completes normally costs nothing extra. A wait that ends at its deadline
 * with members missing goes into the answer's "timeouts". */
static spStatus barrier_Wait(const step_req *q, sync_conn *c, int timeout_ms, barrier_set *b,
                             hb_check *h, cJSON *res)
{
    double t0 = io_NowMs();
    int64_t deadline = rt_NowMs() + timeout_ms;
    int *pend = calloc((size_t)b->n, sizeof *pend), *idx = calloc((size_t)b->n, sizeof *idx);
    sync_arrival *got = calloc((size_t)b->n, sizeof *got);
    spStatus st = pend && idx && got ? SP_OK : sp_Error(SP_ERR_NOMEM, "out of memory");
    int slice_ms = h->hb_ms / 4 > BARRIER_SLICE_MIN_MS ? h->hb_ms / 4 : BARRIER_SLICE_MIN_MS;
    if (!h->hb_ms)
        slice_ms = BARRIER_LOOK_MS;
    for (int round = 0; st == SP_OK; round++) {
        int np = 0;
        for (int i = 0; i < b->n; i++)
            if (!b->arr[i].arrived && !b->lost[i]) {
                pend[np] = b->members[i];
                idx[np++] = i;
            }
        int64_t left = deadline - rt_NowMs();
        if (np == 0 || b->decision)
            break;
        if (left <= 0) {
            steps_AddTimeout(res, "avg", io_NowMs() - t0, pend, np);
            break;
        }
        if (round >= 1 && ((st = look_For_Decision(q, c, b)) || b->decision))
            break;
        if (round == 1 && h->hb_ms && hb_Watcher_Create(c, q->job.id, h->hb_ms, &h->w) != SP_OK)
            sp_ClearError(); /* no watcher: decisions are still looked for */
        int wait = (int)left;
        if (wait > slice_ms)
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

/* ---- the decision ------------------------------------------------------ */

/* A member's announced model checksum, "" if it sent none. */
static void model_Of(const sync_arrival *a, char *hex, size_t cap)
{
    cJSON *p = a->payload ? cJSON_Parse(a->payload) : NULL;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(p, FIELD_MODEL);
    snprintf(hex, cap, "%s", cJSON_IsString(m) ? m->valuestring : "");
    cJSON_Delete(p);
}

/* The model most arrived members start from (ties: the one of the lowest
 * member); members that sent no checksum match any. *keep[i] = 1 for the
 * members the proposal keeps. */
static void proposal_Keep(const barrier_set *b, int *keep, char (*model)[16])
{
    int best = -1, best_n = 0;
    for (int i = 0; i < b->n; i++) {
        keep[i] = b->arr[i].arrived;
        if (keep[i])
            model_Of(&b->arr[i], model[i], sizeof model[i]);
    }
    for (int i = 0; i < b->n; i++) {
        if (!keep[i] || !model[i][0])
            continue;
        int n = 0;
        for (int k = 0; k < b->n; k++)
            n += keep[k] && strcmp(model[k], model[i]) == 0;
        if (n > best_n) /* members ascend: the first of a tie is the lowest */
            best = i, best_n = n;
    }
    for (int i = 0; best >= 0 && i < b->n; i++)
        if (keep[i] && model[i][0] && strcmp(model[i], model[best]) != 0)
            keep[i] = 0;
}

/* What this barrier saw, as a proposal {"live","excluded","by"}, and its id:
 * the live set as a hex bitmask (equal ids, equal live sets). */
static cJSON *proposal_Build(const step_req *q, const barrier_set *b, char *id, size_t cap)
{
    int *keep = calloc((size_t)b->n, sizeof *keep);
    char (*model)[16] = calloc((size_t)b->n, sizeof *model);
    unsigned char bits[LIVE_BYTES] = {0};
    if (!keep || !model) {
        free(keep);
        free(model);
        return NULL;
    }
    proposal_Keep(b, keep, model);
    cJSON *p = cJSON_CreateObject();
    cJSON *live = cJSON_AddArrayToObject(p, FIELD_LIVE);
    cJSON *ex = cJSON_AddArrayToObject(p, FIELD_EXCLUDED);
    for (int i = 0; i < b->n; i++) {
        if (keep[i]) {
            cJSON_AddItemToArray(live, cJSON_CreateNumber(b->members[i]));
            bits[b->members[i] / 8] |= (unsigned char)(1u << (b->members[i] % 8));
            continue;
        }
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, FIELD_PEER, b->members[i]);
        cJSON_AddStringToObject(e, FIELD_REASON, b->arr[i].arrived ? "model differs"
                                                 : b->lost[i]   ? "heartbeat lost"
                                                                : "missed the barrier");
        cJSON_AddItemToArray(ex, e);
    }
    cJSON_AddNumberToObject(p, "by", q->peer);
    size_t n = 0, top = sizeof bits;
    while (top > 1 && !bits[top - 1])
        top--;
    for (size_t k = top; k-- > 0 && n + 3 <= cap;)
        n += (size_t)snprintf(id + n, cap - n, "%02x", bits[k]);
    free(keep);
    free(model);
    return p;
}

typedef struct {
    cJSON *json;          /* the decision {"live","excluded","by"} */
    int live[JOB_MAX_WORKERS], n;
} decision;

/* Parses and checks a decision's text (the stream holds only ours, but a
 * peer must not act on a garbled one). */
static spStatus decision_Parse(const char *text, int hi, decision *d)
{
    d->json = cJSON_Parse(text);
    const cJSON *live = cJSON_GetObjectItemCaseSensitive(d->json, FIELD_LIVE);
    d->n = 0;
    for (const cJSON *v = cJSON_IsArray(live) ? live->child : NULL; v; v = v->next) {
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble >= hi || d->n >= hi)
            return sp_Error(SP_ERR_FORMAT, "barrier: the decided live set is malformed: %.200s",
                            text);
        d->live[d->n++] = (int)v->valuedouble;
    }
    return d->n > 0 ? SP_OK
                    : sp_Error(SP_ERR_FORMAT, "barrier: the decision names no live peer: %.200s",
                               text);
}

/* The decision of t: one found while waiting, else the first proposal. */
static spStatus barrier_Decide(const step_req *q, sync_conn *c, barrier_set *b, int hi,
                               decision *d)
{
    char *text = b->decision;
    b->decision = NULL;
    spStatus st = SP_OK;
    if (!text) {
        char id[LIVE_ID_CAP] = "";
        cJSON *p = proposal_Build(q, b, id, sizeof id);
        char *mine = p ? cJSON_PrintUnformatted(p) : NULL;
        size_t len = 0;
        int same = 0;
        st = mine ? sync_Decide(c, q->job.id, STEPS_LIVE_TOPIC, q->iteration, id, mine,
                                strlen(mine), &text, &len, &same)
                  : sp_Error(SP_ERR_NOMEM, "out of memory");
        cJSON_Delete(p);
        free(mine);
    }
    if (st == SP_OK)
        st = decision_Parse(text, hi, d);
    free(text);
    return st;
}

/* ---- the answer -------------------------------------------------------- */

static int decided(const decision *d, int peer)
{
    for (int i = 0; i < d->n; i++)
        if (d->live[i] == peer)
            return 1;
    return 0;
}

/* Why the decision left out a member: its own words if it lists it. */
static const char *reason_Of(const decision *d, int peer)
{
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(d->json, FIELD_EXCLUDED);
    for (const cJSON *e = cJSON_IsArray(ex) ? ex->child : NULL; e; e = e->next) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, FIELD_PEER);
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(e, FIELD_REASON);
        if (cJSON_IsNumber(p) && (int)p->valuedouble == peer && cJSON_IsString(r))
            return r->valuestring;
    }
    return "left out by the decided live set";
}

/* "arrived" (and context "live") is the decision; "missing"/"excluded" the
 * members it left out; "losses" what the decided peers announced (null for
 * one this barrier did not see itself). */
static void barrier_Answer(const step_req *q, cJSON *res, const barrier_set *b,
                           const decision *d)
{
    cJSON *arrived = cJSON_AddArrayToObject(res, "arrived");
    cJSON *missing = cJSON_AddArrayToObject(res, "missing");
    cJSON *losses = cJSON_AddArrayToObject(res, "losses");
    cJSON *excluded = cJSON_AddArrayToObject(res, FIELD_EXCLUDED);
    cJSON *joined = cJSON_AddArrayToObject(res, "joined");
    for (int i = 0; i < b->n; i++) {
        int m = b->members[i];
        if (decided(d, m)) {
            if (b->joiner[i])
                cJSON_AddItemToArray(joined, cJSON_CreateNumber(m));
            continue;
        }
        cJSON_AddItemToArray(missing, cJSON_CreateNumber(m));
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, FIELD_PEER, m);
        cJSON_AddStringToObject(e, FIELD_REASON, reason_Of(d, m));
        cJSON_AddItemToArray(excluded, e);
    }
    for (int k = 0; k < d->n; k++) {
        cJSON_AddItemToArray(arrived, cJSON_CreateNumber(d->live[k]));
        const sync_arrival *a = NULL;
        for (int i = 0; i < b->n; i++)
            if (b->members[i] == d->live[k] && b->arr[i].arrived)
                a = &b->arr[i];
        /* The loss a peer sent with its announcement, null if none. */
        cJSON *p = a && a->payload ? cJSON_Parse(a->payload) : NULL;
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(p, FIELD_LOSS);
        cJSON_AddItemToArray(losses, cJSON_IsNumber(l) ? cJSON_CreateNumber(l->valuedouble)
                                                       : cJSON_CreateNull());
        cJSON_Delete(p);
    }
    const cJSON *by = cJSON_GetObjectItemCaseSensitive(d->json, "by");
    if (cJSON_IsNumber(by))
        cJSON_AddNumberToObject(res, FIELD_DECIDED_BY, by->valuedouble);
    if (!decided(d, q->peer))
        cJSON_AddBoolToObject(res, FIELD_SELF_EXCLUDED, 1);
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
    decision d = {0};
    int timeout_ms;
    int hi = q->n_peers;
    spStatus st;
    if ((st = set_Init(q, hi, &b)) || (st = steps_WaitMs(c->req, q, &timeout_ms)) ||
        (st = steps_Nats(&conn)))
        goto out;
    if (q->job.heartbeat_timeout_ms > 0 && q->job.heartbeat_timeout_ms < timeout_ms)
        h.hb_ms = q->job.heartbeat_timeout_ms;
    double t0 = io_NowMs();
    if ((st = set_AddJoiners(q, conn, hi, timeout_ms, &b, res)) == SP_OK) {
        set_Sort(&b, q->peer);
        st = barrier_Wait(q, conn, timeout_ms, &b, &h, res);
    }
    if (st)
        goto timed;
    if (!b.arr[b.self].arrived) {
        st = sp_Error(SP_ERR_CONFLICT,
                      "peer %d itself has not announced iteration %ld (notify must run before "
                      "the barrier)",
                      q->peer, q->iteration);
        goto timed;
    }
    st = barrier_Decide(q, conn, &b, hi, &d);
timed:
    io_Add(&c->io.sync_ms, t0);
    if (st)
        goto out;
    barrier_Answer(q, res, &b, &d);
    cJSON_AddNumberToObject(res, FIELD_TIMEOUT_MS, timeout_ms);
out:
    cJSON_Delete(d.json);
    hb_Watcher_Destroy(h.w);
    set_Free(&b);
    return st;
}
