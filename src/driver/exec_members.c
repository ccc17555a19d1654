/* exec_members.c - who is in the job: failures and departures, exclusions a
 * barrier decided, the fault-injection hold, and standby and rejoin.
 *
 * A failed worker - or one the iteration's decided live set left out while
 * it was alive (the barrier's "self_excluded") - waits on standby until
 * hooks->peer_up says its database answers, then rejoins: it picks the iteration J after the furthest
 * live worker's, holds every live worker at the start of J, authenticates
 * (join step), runs the rejoin step (copy the model of a live peer that
 * applied J-1, announce "join" for J), and the live workers' barriers at J
 * include it ("joiners"). */
#include "driver/exec_internal.h"

#include <stdio.h>
#include <time.h>

#include "driver/join_auth.h"
#include "steps/fields.h"

#define REJOIN_MAX_TRIES 5
#define STANDBY_POLL_MS 100
#define REJOIN_RETRY_MS 1000

int members_FirstAlive(const exec_state *x)
{
    for (int i = 0; i < x->plan->job->workers; i++)
        if (x->mem.m[i].alive)
            return i;
    return -1;
}

static void hook_Member(exec_state *x, int w, int in_job)
{
    const exec_hooks *h = x->plan->hooks;
    if (h && h->member)
        h->member(h->ctx, w, in_job);
}

static void view_All(const exec_state *x, worker *wk)
{
    wk->n_live = 0;
    for (int q = 0; q < x->plan->job->workers; q++)
        if (x->mem.m[q].alive)
            wk->live[wk->n_live++] = q;
}

/* Who starts in the job (all but plan->down), where, and the views. */
void members_Init(exec_state *x, worker *wk)
{
    const exec_plan *p = x->plan;
    exec_members *mem = &x->mem;
    int n = p->job->workers;
    mem->join_iter = -1;
    mem->n_alive = 0;
    for (int w = 0; w < n; w++) {
        member *m = &mem->m[w];
        m->alive = !(p->down && p->down[w]);
        mem->n_alive += m->alive;
        m->started = p->start_iteration - 1;
        m->joined_at = -1;
        m->failed_at = m->alive ? -1 : p->start_iteration;
    }
    for (int w = 0; w < n; w++) {
        wk[w].x = x;
        wk[w].w = w;
        view_All(x, &wk[w]);
        if (mem->m[w].alive)
            hook_Member(x, w, 1);
    }
}

/* The worker leaves the live set at t (to stand by, or for good); once: a
 * worker another's barrier reported left out may fail or be told so itself
 * later. Under lock. */
static void member_Out(exec_state *x, int w, long t, int left_out)
{
    member *m = &x->mem.m[w];
    if (!m->alive)
        return;
    m->alive = 0;
    x->mem.n_alive--;
    m->failed_at = t;
    m->left_out = left_out;
}

void members_Fail(worker *wk, long t, spStatus st, const char *msg)
{
    exec_state *x = wk->x;
    pthread_mutex_lock(&x->lock);
    member_Out(x, wk->w, t, 0);
    int fatal = !x->plan->arch->tolerates_failures || !sp_IsRetryable(st) ||
                x->mem.n_alive == 0 || exec_stop_requested;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, FIELD_PEER, wk->w);
    cJSON_AddNumberToObject(f, FIELD_ITERATION, (double)t);
    cJSON_AddStringToObject(f, FIELD_REASON, msg);
    cJSON_AddItemToArray(x->stats.failures, f);
    if (fatal)
        exec_Fatal(x, st, "worker %d at iteration %ld: %s", wk->w, t, msg);
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
    hook_Member(x, wk->w, 0);
    if (!fatal)
        train_Notify(x->plan->obs, "peer %d failed at iteration %ld and left the job: %s",
                     wk->w, t, msg);
}

void members_Excluded(worker *wk, long t)
{
    exec_state *x = wk->x;
    pthread_mutex_lock(&x->lock);
    member_Out(x, wk->w, t, 1);
    int fatal = x->mem.n_alive == 0;
    if (fatal)
        exec_Fatal(x, SP_ERR_UNAVAILABLE, "worker %d was left out of iteration %ld's live set "
                   "and no worker is live any more", wk->w, t);
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
    hook_Member(x, wk->w, 0);
    if (!fatal)
        train_Notify(x->plan->obs, "peer %d was left out of iteration %ld's live set while "
                     "alive: it rejoins with a live peer's model", wk->w, t);
}

void members_Leave(worker *wk, long t)
{
    exec_state *x = wk->x;
    pthread_mutex_lock(&x->lock);
    x->mem.m[wk->w].alive = 0;
    x->mem.n_alive--;
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, "worker", wk->w);
    cJSON_AddNumberToObject(e, FIELD_ITERATION, (double)t);
    cJSON_AddItemToArray(x->stats.departures, e);
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
    hook_Member(x, wk->w, 0);
    train_Notify(x->plan->obs, "worker %d left the job after iteration %ld (scale-in)", wk->w, t);
}

/* An answer's "excluded": [{peer, reason}] (barrier): peers the decided
 * live set of t left out, e.g. because their heartbeat stopped. A peer's
 * first exclusion since it (re)joined is recorded, and it is out of the
 * job from t on - the decision is the same for everybody - even while its
 * own worker is still stuck in t: the others' progress, leader and epoch
 * gate stop counting on it now, not once it hears the news itself. An
 * answer about an iteration before the peer last rejoined is old news. */
void members_NoteExcluded(exec_state *x, const cJSON *resp, int by, long t)
{
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(resp, FIELD_EXCLUDED);
    for (const cJSON *e = cJSON_IsArray(ex) ? ex->child : NULL; e; e = e->next) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, FIELD_PEER);
        const cJSON *why = cJSON_GetObjectItemCaseSensitive(e, FIELD_REASON);
        if (!cJSON_IsNumber(p) || p->valuedouble < 0 || p->valuedouble >= x->plan->job->workers)
            continue;
        int q = (int)p->valuedouble;
        if (x->mem.m[q].joined_at > t)
            continue;
        member_Out(x, q, t, 1);
        pthread_cond_broadcast(&x->cond);
        if (x->mem.m[q].excl_noted)
            continue;
        x->mem.m[q].excl_noted = 1;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, FIELD_PEER, q);
        cJSON_AddNumberToObject(o, FIELD_ITERATION, (double)t);
        cJSON_AddNumberToObject(o, "by", by);
        cJSON_AddStringToObject(o, FIELD_REASON, cJSON_IsString(why) ? why->valuestring : "excluded");
        cJSON_AddItemToArray(x->stats.exclusions, o);
    }
}

void members_ViewFromContext(worker *wk, const cJSON *ctx)
{
    const cJSON *live = cJSON_GetObjectItemCaseSensitive(ctx, FIELD_LIVE);
    if (!cJSON_IsArray(live))
        return;
    int n = 0;
    for (const cJSON *v = live->child; v && n < EXEC_MAX_WORKERS; v = v->next)
        if (cJSON_IsNumber(v))
            wk->live[n++] = (int)v->valuedouble;
    wk->n_live = n;
}

cJSON *members_Joiners(const worker *wk, long t)
{
    exec_state *x = wk->x;
    cJSON *a = NULL;
    pthread_mutex_lock(&x->lock);
    for (int p = 0; p < x->plan->job->workers; p++) {
        int seen = 0;
        for (int i = 0; i < wk->n_live; i++)
            seen |= wk->live[i] == p;
        if (x->mem.m[p].joined_at != t || !x->mem.m[p].alive || seen)
            continue;
        if (!a)
            a = cJSON_CreateArray();
        cJSON_AddItemToArray(a, cJSON_CreateNumber(p));
    }
    pthread_mutex_unlock(&x->lock);
    return a;
}

/* No point in (re)joining any more. Under lock. */
static int job_Ending(const exec_state *x)
{
    return x->stop || exec_stop_requested || x->mem.n_alive == 0 || x->mem.n_done > 0;
}

/* While a peer rejoins at J, the live workers are held at the start of J,
 * so its model copy sees their updates of J-1 and its "join" announcement
 * precedes every barrier of J. */
void members_JoinGate(worker *wk, long t)
{
    exec_state *x = wk->x;
    member *me = &x->mem.m[wk->w];
    pthread_mutex_lock(&x->lock);
    while (x->mem.join_iter >= 0 && t >= x->mem.join_iter && !x->stop && !exec_stop_requested) {
        if (!me->held) {
            me->held = 1;
            pthread_cond_broadcast(&x->cond);
        }
        exec_WaitMs(x, 200);
    }
    me->held = 0;
    me->started = t;
    pthread_mutex_unlock(&x->lock);
}

/* The last worker to arrive at hooks->hold_at runs on_hold while nothing
 * else runs. */
void members_HoldGate(worker *wk, long t)
{
    exec_state *x = wk->x;
    const exec_hooks *h = x->plan->hooks;
    pthread_mutex_lock(&x->lock);
    x->mem.m[wk->w].at_hold = 1;
    pthread_cond_broadcast(&x->cond);
    while (x->mem.hold_state != 2 && !x->stop && !exec_stop_requested) {
        int all = 1;
        for (int w = 0; w < x->plan->job->workers; w++)
            all &= !x->mem.m[w].alive || x->mem.m[w].at_hold;
        if (all && x->mem.hold_state == 0) {
            x->mem.hold_state = 1;
            pthread_mutex_unlock(&x->lock);
            h->on_hold(h->ctx, t);
            pthread_mutex_lock(&x->lock);
            x->mem.hold_state = 2;
            pthread_cond_broadcast(&x->cond);
            break;
        }
        exec_WaitMs(x, 200);
    }
    pthread_mutex_unlock(&x->lock);
}

/* Every live worker waits at the join point. Under lock. */
static int all_Held(const exec_state *x)
{
    for (int w = 0; w < x->plan->job->workers; w++)
        if (x->mem.m[w].alive && !x->mem.m[w].held)
            return 0;
    return 1;
}

/* Under lock. */
static void rejoin_Record(worker *wk, long J, int src, const cJSON *resp)
{
    exec_state *x = wk->x;
    member *me = &x->mem.m[wk->w];
    long missed = J - me->failed_at;
    me->alive = 1;
    x->mem.n_alive++;
    me->joined_at = J;
    me->started = J;
    me->excl_noted = 0;
    x->stats.lost += missed > 0 ? missed : 0;
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, FIELD_PEER, wk->w);
    cJSON_AddNumberToObject(e, FIELD_ITERATION, (double)J);
    cJSON_AddNumberToObject(e, "failed_at", (double)me->failed_at);
    cJSON_AddNumberToObject(e, "iterations_missed", (double)missed);
    cJSON_AddStringToObject(e, "after", me->left_out ? "exclusion" : "failure");
    me->left_out = 0;
    cJSON_AddNumberToObject(e, FIELD_SOURCE, src);
    const cJSON *ra = cJSON_GetObjectItemCaseSensitive(resp, FIELD_RESTORED_APPLIED);
    cJSON_AddItemToObject(e, FIELD_RESTORED_APPLIED, cJSON_IsNumber(ra)
                                                     ? cJSON_CreateNumber(ra->valuedouble)
                                                     : cJSON_CreateNull());
    cJSON_AddItemToArray(x->stats.rejoins, e);
    view_All(x, wk);
}

/* The peer re-authenticates (join step: challenge, HMAC answer, ticket),
 * then the rejoin step copies the model for it. */
static spStatus rejoin_Call(const exec_plan *p, int w, int src, long J, cJSON **resp)
{
    char ticket[AUTH_HEX_SIZE];
    spStatus st = join_Authenticate(p->inv, p->base, w, NULL, ticket);
    if (st)
        return sp_Wrap(st, "peer %d re-authenticating", w);
    cJSON *req = cJSON_Duplicate(p->base, 1);
    cJSON_AddStringToObject(req, FIELD_TICKET, ticket);
    cJSON_AddNumberToObject(req, FIELD_PEER, w);
    cJSON_AddNumberToObject(req, FIELD_SOURCE, src);
    cJSON_AddNumberToObject(req, FIELD_ITERATION, (double)J);
    cJSON_AddNumberToObject(req, FIELD_TIMEOUT_MS, p->job->sync_timeout_ms);
    st = invoker_Call(p->inv, "rejoin", req, resp, NULL);
    cJSON_Delete(req);
    return st;
}

/* One attempt to rejoin at J = (the furthest live worker's iteration) + 1.
 * Returns 1 with *t = J when the worker is back in the job. */
static int rejoin_Try(worker *wk, long *t)
{
    exec_state *x = wk->x;
    const exec_plan *p = x->plan;
    pthread_mutex_lock(&x->lock);
    while (x->mem.join_iter >= 0 && !job_Ending(x))
        exec_WaitMs(x, 200);
    long J = -1;
    for (int w = 0; w < p->job->workers; w++)
        if (x->mem.m[w].alive && x->mem.m[w].started + 1 > J)
            J = x->mem.m[w].started + 1;
    if (job_Ending(x) || J < 0 || J >= x->total) {
        pthread_mutex_unlock(&x->lock);
        return 0;
    }
    x->mem.join_iter = J;
    pthread_cond_broadcast(&x->cond);
    while (!job_Ending(x) && !all_Held(x))
        exec_WaitMs(x, 200);
    int src = members_FirstAlive(x), go = !job_Ending(x) && src >= 0;
    pthread_mutex_unlock(&x->lock);
    cJSON *resp = NULL;
    spStatus st = go ? rejoin_Call(p, wk->w, src, J, &resp) : SP_ERR_UNAVAILABLE;
    char err[512];
    snprintf(err, sizeof err, "%s", st && go ? sp_LastError() : "");
    pthread_mutex_lock(&x->lock);
    if (st == SP_OK)
        rejoin_Record(wk, J, src, resp);
    x->mem.join_iter = -1;
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
    cJSON_Delete(resp);
    if (st == SP_OK) {
        hook_Member(x, wk->w, 1);
        train_Notify(p->obs, "peer %d rejoined at iteration %ld with peer %d's model", wk->w, J,
                     src);
        *t = J;
    } else if (go) {
        train_Notify(p->obs, "peer %d could not rejoin at iteration %ld: %s", wk->w, J, err);
    }
    return st == SP_OK;
}

static void sleep_Ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int members_Standby(worker *wk, long *t)
{
    exec_state *x = wk->x;
    const exec_hooks *h = x->plan->hooks;
    if (!x->plan->rejoin || !h || !h->peer_up)
        return 0;
    for (;;) {
        pthread_mutex_lock(&x->lock);
        int out = job_Ending(x) || x->mem.m[wk->w].rejoin_tries >= REJOIN_MAX_TRIES;
        pthread_mutex_unlock(&x->lock);
        if (out)
            return 0;
        if (!h->peer_up(h->ctx, wk->w)) {
            sleep_Ms(STANDBY_POLL_MS);
            continue;
        }
        pthread_mutex_lock(&x->lock);
        x->mem.m[wk->w].rejoin_tries++;
        pthread_mutex_unlock(&x->lock);
        if (rejoin_Try(wk, t))
            return 1;
        sleep_Ms(REJOIN_RETRY_MS);
    }
}

void members_Done(exec_state *x)
{
    pthread_mutex_lock(&x->lock);
    x->mem.n_done++;
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
}

void members_CountLost(exec_state *x)
{
    for (int w = 0; w < x->plan->job->workers; w++) {
        const member *m = &x->mem.m[w];
        if (!m->alive && m->failed_at >= 0 && x->iterations > m->failed_at)
            x->stats.lost += x->iterations - m->failed_at;
    }
}
