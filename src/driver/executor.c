/* executor.c - worker threads walking an architecture's step table. */
#include "driver/executor.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "driver/join_auth.h"
#include "store/store.h"

#define MAX_WORKERS 256
#define MAX_STEPS 16

static volatile sig_atomic_t stop_requested;

void executor_RequestStop(void) { stop_requested = 1; }

/* Sums of what the steps reported, per step of the table. */
typedef struct {
    double wall_ms;           /* driver-side wall time (a fan-out group counts once) */
    double compute_ms, store_ms, sync_ms, transfer_ms;
    double bytes_in, bytes_out;
    long groups;              /* invocation groups (worker-iterations) */
    double call_seconds;      /* summed duration of every invocation (billing) */
    long calls, retries;
    long in_db, client_side;  /* average/update: where the math ran */
} step_stats;

typedef struct {
    const exec_plan *plan;
    train_result *res;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int alive[MAX_WORKERS];
    int n_alive;
    /* epoch gate */
    long gate_gen;
    int gate_count;
    int evaluating;
    /* job outcome */
    int stop;
    spStatus fatal;
    char fatal_msg[1024];
    double start, eval_seconds;
    long eval_iteration;      /* the iteration the last evaluation saw */
    float loss;               /* smoothed training loss (first live worker) */
    long iterations;          /* completed iterations of the first live worker */
    long worker_iterations;   /* summed over workers */
    step_stats stats[MAX_STEPS];
    cJSON *failures;
    cJSON *departures;        /* workers retired by the architecture */
    long rejected[MAX_WORKERS]; /* inputs of peer q other peers refused (corrupt, ...) */
    long rejected_total;
    /* membership: exclusions, standby and rejoin (fault tolerance) */
    long total;                  /* iterations of the whole job */
    long started[MAX_WORKERS];   /* the iteration each worker is in */
    int held[MAX_WORKERS];       /* waiting at the start of join_iter */
    int at_hold[MAX_WORKERS];    /* arrived at the start of hooks->hold_at */
    int hold_state;              /* 0 pending, 1 running on_hold, 2 done */
    int n_done;                  /* workers that ran the last iteration */
    long join_iter;              /* a rejoin pending at this iteration, -1: none */
    long joined_at[MAX_WORKERS]; /* iteration a worker last rejoined at, -1 */
    long failed_at[MAX_WORKERS]; /* iteration a worker last failed at, -1 */
    int rejoin_tries[MAX_WORKERS];
    int excl_noted[MAX_WORKERS]; /* its exclusion is recorded (until it rejoins) */
    long lost;                   /* worker-iterations that failed peers missed */
    cJSON *rejoins, *exclusions;
} exec_state;

typedef struct {
    exec_state *x;
    int w;
    int live[MAX_WORKERS];    /* this worker's view of the live peers */
    int n_live;
} worker;

/* ---- helpers ------------------------------------------------------------ */

static int first_alive(exec_state *x)
{
    for (int i = 0; i < x->plan->job->workers; i++)
        if (x->alive[i])
            return i;
    return -1;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void stats_Add(step_stats *s, const cJSON *resp, int attempts)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(resp, "timings");
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(resp, "bytes");
    s->compute_ms += num(t, "compute_ms");
    s->store_ms += num(t, "store_ms");
    s->sync_ms += num(t, "sync_ms");
    s->transfer_ms += num(t, "transfer_ms");
    s->bytes_in += num(b, "in");
    s->bytes_out += num(b, "out");
    s->calls++;
    s->retries += attempts > 1 ? attempts - 1 : 0;
    const cJSON *in_db = cJSON_GetObjectItemCaseSensitive(resp, "in_db");
    if (cJSON_IsBool(in_db)) {
        if (cJSON_IsTrue(in_db))
            s->in_db++;
        else
            s->client_side++;
    }
}

/* An answer's "rejected": [{peer, code, reason}] - inputs a step refused
 * (aggregate: a peer's average that was corrupt, non-finite, missing ...).
 * Counted per offending peer; the first refusal of a peer is announced.
 * Called under x->lock. */
static void rejected_Count(exec_state *x, const cJSON *resp, int by, long t)
{
    const cJSON *rej = cJSON_GetObjectItemCaseSensitive(resp, "rejected");
    for (const cJSON *r = cJSON_IsArray(rej) ? rej->child : NULL; r; r = r->next) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(r, "peer");
        if (!cJSON_IsNumber(p) || p->valuedouble < 0 || p->valuedouble >= MAX_WORKERS)
            continue;
        int q = (int)p->valuedouble;
        x->rejected_total++;
        if (x->rejected[q]++ == 0) {
            const cJSON *why = cJSON_GetObjectItemCaseSensitive(r, "reason");
            train_Notify(x->plan->obs, "peer %d refused peer %d's input at iteration %ld: %s",
                         by, q, t, cJSON_IsString(why) ? why->valuestring : "rejected");
        }
    }
}

static void hook_Member(exec_state *x, int w, int in_job)
{
    const exec_hooks *h = x->plan->hooks;
    if (h && h->member)
        h->member(h->ctx, w, in_job);
}

/* An answer's "excluded": [{peer, reason}] (barrier): peers dropped from
 * the live set, e.g. because their heartbeat stopped. A peer's first
 * exclusion since it (re)joined is recorded. Called under x->lock. */
static void excluded_Note(exec_state *x, const cJSON *resp, int by, long t)
{
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(resp, "excluded");
    for (const cJSON *e = cJSON_IsArray(ex) ? ex->child : NULL; e; e = e->next) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "peer");
        const cJSON *why = cJSON_GetObjectItemCaseSensitive(e, "reason");
        if (!cJSON_IsNumber(p) || p->valuedouble < 0 || p->valuedouble >= x->plan->job->workers)
            continue;
        int q = (int)p->valuedouble;
        if (x->excl_noted[q])
            continue;
        x->excl_noted[q] = 1;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "peer", q);
        cJSON_AddNumberToObject(o, "iteration", (double)t);
        cJSON_AddNumberToObject(o, "by", by);
        cJSON_AddStringToObject(o, "reason", cJSON_IsString(why) ? why->valuestring : "excluded");
        cJSON_AddItemToArray(x->exclusions, o);
    }
}

/* Peers that rejoin at iteration t and are not in this worker's view: its
 * barrier at t must include them. NULL when there are none. */
static cJSON *joiners_Array(const worker *wk, long t)
{
    exec_state *x = wk->x;
    cJSON *a = NULL;
    pthread_mutex_lock(&x->lock);
    for (int p = 0; p < x->plan->job->workers; p++) {
        int seen = 0;
        for (int i = 0; i < wk->n_live; i++)
            seen |= wk->live[i] == p;
        if (x->joined_at[p] != t || !x->alive[p] || seen)
            continue;
        if (!a)
            a = cJSON_CreateArray();
        cJSON_AddItemToArray(a, cJSON_CreateNumber(p));
    }
    pthread_mutex_unlock(&x->lock);
    return a;
}

static cJSON *live_Array(const worker *wk)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < wk->n_live; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(wk->live[i]));
    return a;
}

/* The request of one invocation: common fields, the iteration's context,
 * then this invocation's coordinates. */
static cJSON *request_Build(const worker *wk, const cJSON *ctx, int epoch, long t, int m)
{
    cJSON *r = cJSON_Duplicate(wk->x->plan->base, 1);
    for (const cJSON *c = ctx ? ctx->child : NULL; c; c = c->next) {
        cJSON_DeleteItemFromObjectCaseSensitive(r, c->string);
        cJSON_AddItemToObject(r, c->string, cJSON_Duplicate(c, 1));
    }
    if (!cJSON_GetObjectItemCaseSensitive(r, "live"))
        cJSON_AddItemToObject(r, "live", live_Array(wk));
    cJSON_AddNumberToObject(r, "peer", wk->w);
    cJSON_AddNumberToObject(r, "epoch", epoch);
    cJSON_AddNumberToObject(r, "iteration", (double)t);
    cJSON_AddNumberToObject(r, "m", m);
    cJSON_AddNumberToObject(r, "timeout_ms", wk->x->plan->job->sync_timeout_ms);
    return r;
}

/* ---- one step, with fan-out ------------------------------------------------ */

typedef struct {
    const invoker *inv;
    const char *step;
    cJSON *req, *resp;
    spStatus st;
    int attempts;
    double seconds;
    char err[512];
} call;

static void *call_Run(void *arg)
{
    call *c = arg;
    double t0 = clock_Now();
    c->st = invoker_Call(c->inv, c->step, c->req, &c->resp, &c->attempts);
    c->seconds = clock_Now() - t0;
    if (c->st)
        snprintf(c->err, sizeof c->err, "%s", sp_LastError());
    return NULL;
}

/* A fan-out thread: in-process steps cache Redis connections per thread,
 * and this thread is about to end - without this every fan-out leaked its
 * connections (and their sockets). */
static void *call_Thread(void *arg)
{
    call_Run(arg);
    store_ReleaseCached();
    return NULL;
}

/* What an iteration's answers asked the executor to do. */
typedef struct {
    int leave;   /* this worker leaves the job (scaled in), not a failure */
    int stop;    /* the job is done (e.g. the supervisor reached the target) */
} iteration_flags;

static int flag(const cJSON *resp, const char *k)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, k));
}

/* Runs n invocations of a step in parallel (n-1 extra threads). */
static spStatus step_Invoke(worker *wk, int s, cJSON *ctx, int epoch, long t, int n,
                            float *loss_sum, int *loss_n, iteration_flags *fl)
{
    exec_state *x = wk->x;
    const arch_step *as = &x->plan->arch->steps[s];
    call calls[64];
    pthread_t th[64];
    int started[64] = {0};
    double t0 = clock_Now();
    for (int k = 0; k < n; k++)
        calls[k] = (call){.inv = x->plan->inv, .step = as->step,
                          .req = request_Build(wk, ctx, epoch, t, k)};
    for (int k = 1; k < n; k++)
        started[k] = pthread_create(&th[k], NULL, call_Thread, &calls[k]) == 0;
    call_Run(&calls[0]);
    for (int k = 1; k < n; k++) {
        if (started[k])
            pthread_join(th[k], NULL);
        else
            call_Run(&calls[k]);
    }
    double wall = (clock_Now() - t0) * 1000.0;
    spStatus st = SP_OK;
    pthread_mutex_lock(&x->lock);
    x->stats[s].wall_ms += wall;
    x->stats[s].groups++;
    for (int k = 0; k < n; k++) {
        x->stats[s].call_seconds += calls[k].seconds;
        if (calls[k].st) {
            if (!st) {
                st = calls[k].st;
                sp_Error(st, "%s", calls[k].err);
            }
            continue;
        }
        stats_Add(&x->stats[s], calls[k].resp, calls[k].attempts);
        rejected_Count(x, calls[k].resp, wk->w, t);
        excluded_Note(x, calls[k].resp, wk->w, t);
    }
    pthread_mutex_unlock(&x->lock);
    for (int k = 0; k < n; k++) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(calls[k].resp, "context");
        for (const cJSON *f = c ? c->child : NULL; f && !st; f = f->next) {
            cJSON_DeleteItemFromObjectCaseSensitive(ctx, f->string);
            cJSON_AddItemToObject(ctx, f->string, cJSON_Duplicate(f, 1));
        }
        fl->leave |= flag(calls[k].resp, "leave");
        fl->stop |= flag(calls[k].resp, "stop");
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(calls[k].resp, "loss");
        if (cJSON_IsNumber(l)) {
            *loss_sum += (float)l->valuedouble;
            (*loss_n)++;
        }
        cJSON_Delete(calls[k].req);
        cJSON_Delete(calls[k].resp);
    }
    return st;
}

/* Adopts the barrier's verdict: peers that missed it are failed from here on. */
static void live_FromContext(worker *wk, const cJSON *ctx)
{
    const cJSON *live = cJSON_GetObjectItemCaseSensitive(ctx, "live");
    if (!cJSON_IsArray(live))
        return;
    int n = 0;
    for (const cJSON *v = live->child; v && n < MAX_WORKERS; v = v->next)
        if (cJSON_IsNumber(v))
            wk->live[n++] = (int)v->valuedouble;
    wk->n_live = n;
}

static spStatus iteration_Run(worker *wk, int epoch, long t, float *loss, iteration_flags *fl)
{
    exec_state *x = wk->x;
    const arch_def *arch = x->plan->arch;
    cJSON *ctx = cJSON_CreateObject();
    cJSON *joiners = joiners_Array(wk, t);
    if (joiners)
        cJSON_AddItemToObject(ctx, "joiners", joiners);
    float loss_sum = 0;
    int loss_n = 0;
    spStatus st = SP_OK;
    for (int s = 0; s < arch->n_steps && !st; s++) {
        if (stop_requested || x->stop) {
            st = sp_Error(SP_ERR_UNAVAILABLE, "stopped");
            break;
        }
        const arch_step *as = &arch->steps[s];
        if (as->fan == FAN_LEADER) {
            pthread_mutex_lock(&x->lock);
            int leader = first_alive(x);
            pthread_mutex_unlock(&x->lock);
            if (leader != wk->w)
                continue;
        }
        int n = as->fan == FAN_MINIBATCH ? x->plan->job->minibatches : 1;
        st = step_Invoke(wk, s, ctx, epoch, t, n, &loss_sum, &loss_n, fl);
        /* The iteration's mean loss so far goes to the later steps (notify's
         * payload, MLLESS's report to the supervisor). */
        if (!st && loss_n > 0) {
            cJSON_DeleteItemFromObjectCaseSensitive(ctx, "loss");
            cJSON_AddNumberToObject(ctx, "loss", loss_sum / (float)loss_n);
        }
    }
    int before = wk->n_live;
    if (!st)
        live_FromContext(wk, ctx);
    if (!st && wk->n_live < before)
        train_Notify(x->plan->obs, "peer %d: %d peer(s) missed iteration %ld and are excluded",
                     wk->w, before - wk->n_live, t);
    cJSON_Delete(ctx);
    *loss = loss_n ? loss_sum / (float)loss_n : 0;
    return st;
}

/* ---- failures, epoch gate, evaluation ------------------------------------- */

static void worker_Fail(worker *wk, long t, spStatus st, const char *msg)
{
    exec_state *x = wk->x;
    pthread_mutex_lock(&x->lock);
    x->alive[wk->w] = 0;
    x->n_alive--;
    int fatal = !x->plan->arch->tolerates_failures || !sp_IsRetryable(st) || x->n_alive == 0;
    if (stop_requested)
        fatal = 1;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "peer", wk->w);
    cJSON_AddNumberToObject(f, "iteration", (double)t);
    cJSON_AddStringToObject(f, "reason", msg);
    cJSON_AddItemToArray(x->failures, f);
    x->failed_at[wk->w] = t;
    if (fatal && !x->fatal) {
        x->fatal = st;
        snprintf(x->fatal_msg, sizeof x->fatal_msg, "worker %d at iteration %ld: %s", wk->w, t,
                 msg);
        x->stop = 1;
    }
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
    hook_Member(x, wk->w, 0);
    if (!fatal)
        train_Notify(x->plan->obs, "peer %d failed at iteration %ld and left the job: %s",
                     wk->w, t, msg);
}

/* A worker the architecture retired (MLLESS scale-in): it leaves the live
 * set without counting as failed. */
static void worker_Leave(worker *wk, long t)
{
    exec_state *x = wk->x;
    pthread_mutex_lock(&x->lock);
    x->alive[wk->w] = 0;
    x->n_alive--;
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, "worker", wk->w);
    cJSON_AddNumberToObject(e, "iteration", (double)t);
    cJSON_AddItemToArray(x->departures, e);
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
    hook_Member(x, wk->w, 0);
    train_Notify(x->plan->obs, "worker %d left the job after iteration %ld (scale-in)", wk->w, t);
}

static void epoch_Evaluate(exec_state *x, int epoch)
{
    const exec_plan *p = x->plan;
    double e0 = clock_Now();
    cJSON *req = cJSON_Duplicate(p->base, 1);
    cJSON_AddNumberToObject(req, "source", first_alive(x));
    cJSON_AddNumberToObject(req, "epoch", epoch);
    cJSON *resp = NULL;
    spStatus st = invoker_Call(p->inv, "evaluate", req, &resp, NULL);
    cJSON_Delete(req);
    double train_time = e0 - x->start - x->eval_seconds;
    x->eval_iteration = x->iterations;
    if (st) {
        if (!x->fatal) {
            x->fatal = st;
            snprintf(x->fatal_msg, sizeof x->fatal_msg, "evaluation after epoch %d: %s", epoch,
                     sp_LastError());
        }
        x->stop = 1;
    } else {
        float acc = (float)num(resp, "accuracy"), tl = (float)num(resp, "loss");
        x->res->test_accuracy = acc;
        x->res->test_loss = tl;
        x->res->epochs_run = epoch;
        train_RecordPoint(x->res, train_time, epoch, x->iterations, x->loss, acc);
        if (p->obs && p->obs->on_epoch)
            p->obs->on_epoch(p->obs->ctx, epoch, acc, tl, train_time);
        if (p->job->target_loss > 0 && x->loss < p->job->target_loss) {
            train_Notify(p->obs, "training loss %.4f below target %.4f: stopping", x->loss,
                         p->job->target_loss);
            x->stop = 1;
        }
    }
    cJSON_Delete(resp);
    x->eval_seconds += clock_Now() - e0;
}

static void cond_WaitMs(exec_state *x, long ms);

/* Live workers meet at each epoch end; the last to arrive evaluates. */
static void epoch_Gate(worker *wk, int epoch)
{
    exec_state *x = wk->x;
    pthread_mutex_lock(&x->lock);
    x->gate_count++;
    long gen = x->gate_gen;
    while (x->gate_gen == gen) {
        if (x->gate_count >= x->n_alive && !x->evaluating) {
            x->evaluating = 1;
            if (!x->stop)
                epoch_Evaluate(x, epoch); /* under the lock: the others only wait */
            x->gate_gen++;
            x->gate_count = 0;
            x->evaluating = 0;
            pthread_cond_broadcast(&x->cond);
            break;
        }
        if (x->stop || stop_requested)
            break;
        cond_WaitMs(x, 200);
    }
    pthread_mutex_unlock(&x->lock);
}

static void progress_Report(worker *wk, int epoch, long i, long t, float loss)
{
    exec_state *x = wk->x;
    const exec_plan *p = x->plan;
    pthread_mutex_lock(&x->lock);
    x->worker_iterations++;
    if (first_alive(x) == wk->w) {
        x->loss = x->loss == 0 ? loss : 0.95f * x->loss + 0.05f * loss;
        x->iterations = t + 1;
        long samples = (t + 1) * (long)p->job->workers * p->job->minibatches * p->job->batch;
        x->res->samples = samples;
        if (i % 10 == 0)
            train_RecordPoint(x->res, clock_Now() - x->start - x->eval_seconds, epoch, t + 1,
                              x->loss, -1);
        if (p->obs && p->obs->on_iteration)
            p->obs->on_iteration(p->obs->ctx, epoch, i + 1, p->iters_per_epoch, x->loss, samples);
    }
    pthread_mutex_unlock(&x->lock);
}

/* ---- membership: standby and rejoin ---------------------------------------- */

#define REJOIN_MAX_TRIES 5
#define STANDBY_POLL_MS 100
#define REJOIN_RETRY_MS 1000

/* Timed, so a stop requested from a signal handler is noticed. Called
 * under x->lock. */
static void cond_WaitMs(exec_state *x, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&x->cond, &x->lock, &ts);
}

static void sleep_Ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* No point in (re)joining any more. Called under x->lock. */
static int job_Ending(const exec_state *x)
{
    return x->stop || stop_requested || x->n_alive == 0 || x->n_done > 0;
}

/* The start of iteration t. While a peer rejoins at t, the live workers are
 * held here, so its model copy sees their updates of t-1 and its "join"
 * announcement precedes every barrier of t. */
static void join_Gate(worker *wk, long t)
{
    exec_state *x = wk->x;
    pthread_mutex_lock(&x->lock);
    while (x->join_iter >= 0 && t >= x->join_iter && !x->stop && !stop_requested) {
        if (!x->held[wk->w]) {
            x->held[wk->w] = 1;
            pthread_cond_broadcast(&x->cond);
        }
        cond_WaitMs(x, 200);
    }
    x->held[wk->w] = 0;
    x->started[wk->w] = t;
    pthread_mutex_unlock(&x->lock);
}

/* Holds every live worker at the start of hooks->hold_at; the last one to
 * arrive runs hooks->on_hold while nothing else runs. */
static void hold_Gate(worker *wk, long t)
{
    exec_state *x = wk->x;
    const exec_hooks *h = x->plan->hooks;
    pthread_mutex_lock(&x->lock);
    x->at_hold[wk->w] = 1;
    pthread_cond_broadcast(&x->cond);
    while (x->hold_state != 2 && !x->stop && !stop_requested) {
        int all = 1;
        for (int w = 0; w < x->plan->job->workers; w++)
            all &= !x->alive[w] || x->at_hold[w];
        if (all && x->hold_state == 0) {
            x->hold_state = 1;
            pthread_mutex_unlock(&x->lock);
            h->on_hold(h->ctx, t);
            pthread_mutex_lock(&x->lock);
            x->hold_state = 2;
            pthread_cond_broadcast(&x->cond);
            break;
        }
        cond_WaitMs(x, 200);
    }
    pthread_mutex_unlock(&x->lock);
}

/* Every live worker waits at the join point. Called under x->lock. */
static int all_Held(const exec_state *x)
{
    for (int w = 0; w < x->plan->job->workers; w++)
        if (x->alive[w] && !x->held[w])
            return 0;
    return 1;
}

static void rejoin_Record(worker *wk, long J, int src, const cJSON *resp)
{
    exec_state *x = wk->x;
    int w = wk->w;
    long missed = J - x->failed_at[w];
    x->alive[w] = 1;
    x->n_alive++;
    x->joined_at[w] = J;
    x->started[w] = J;
    x->excl_noted[w] = 0;
    x->lost += missed > 0 ? missed : 0;
    cJSON *e = cJSON_CreateObject();
    cJSON_AddNumberToObject(e, "peer", w);
    cJSON_AddNumberToObject(e, "iteration", (double)J);
    cJSON_AddNumberToObject(e, "failed_at", (double)x->failed_at[w]);
    cJSON_AddNumberToObject(e, "iterations_missed", (double)missed);
    cJSON_AddNumberToObject(e, "source", src);
    const cJSON *ra = cJSON_GetObjectItemCaseSensitive(resp, "restored_applied");
    cJSON_AddItemToObject(e, "restored_applied", cJSON_IsNumber(ra)
                                                     ? cJSON_CreateNumber(ra->valuedouble)
                                                     : cJSON_CreateNull());
    cJSON_AddItemToArray(x->rejoins, e);
    wk->n_live = 0;
    for (int q = 0; q < x->plan->job->workers; q++)
        if (x->alive[q])
            wk->live[wk->n_live++] = q;
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
    cJSON_AddStringToObject(req, "ticket", ticket);
    cJSON_AddNumberToObject(req, "peer", w);
    cJSON_AddNumberToObject(req, "source", src);
    cJSON_AddNumberToObject(req, "iteration", (double)J);
    cJSON_AddNumberToObject(req, "timeout_ms", p->job->sync_timeout_ms);
    st = invoker_Call(p->inv, "rejoin", req, resp, NULL);
    cJSON_Delete(req);
    return st;
}

/* One attempt to rejoin at J = (the furthest live worker's iteration) + 1:
 * hold the live workers at J, copy a live peer's model (rejoin step), join.
 * Returns 1 with *t = J when the worker is back in the job. */
static int rejoin_Try(worker *wk, long *t)
{
    exec_state *x = wk->x;
    const exec_plan *p = x->plan;
    pthread_mutex_lock(&x->lock);
    while (x->join_iter >= 0 && !job_Ending(x))
        cond_WaitMs(x, 200);
    long J = -1;
    for (int w = 0; w < p->job->workers; w++)
        if (x->alive[w] && x->started[w] + 1 > J)
            J = x->started[w] + 1;
    if (job_Ending(x) || J < 0 || J >= x->total) {
        pthread_mutex_unlock(&x->lock);
        return 0;
    }
    x->join_iter = J;
    pthread_cond_broadcast(&x->cond);
    while (!job_Ending(x) && !all_Held(x))
        cond_WaitMs(x, 200);
    int src = first_alive(x), go = !job_Ending(x) && src >= 0;
    pthread_mutex_unlock(&x->lock);
    cJSON *resp = NULL;
    spStatus st = go ? rejoin_Call(p, wk->w, src, J, &resp) : SP_ERR_UNAVAILABLE;
    char err[512];
    snprintf(err, sizeof err, "%s", st && go ? sp_LastError() : "");
    pthread_mutex_lock(&x->lock);
    if (st == SP_OK)
        rejoin_Record(wk, J, src, resp);
    x->join_iter = -1;
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

/* A failed worker waits until its peer's database answers again, then
 * rejoins. Returns 0 when it stays out (job ending, no rejoin configured,
 * too many attempts). */
static int worker_Standby(worker *wk, long *t)
{
    exec_state *x = wk->x;
    const exec_hooks *h = x->plan->hooks;
    if (!x->plan->rejoin || !h || !h->peer_up)
        return 0;
    for (;;) {
        pthread_mutex_lock(&x->lock);
        int out = job_Ending(x) || x->rejoin_tries[wk->w] >= REJOIN_MAX_TRIES;
        pthread_mutex_unlock(&x->lock);
        if (out)
            return 0;
        if (!h->peer_up(h->ctx, wk->w)) {
            sleep_Ms(STANDBY_POLL_MS);
            continue;
        }
        pthread_mutex_lock(&x->lock);
        x->rejoin_tries[wk->w]++;
        pthread_mutex_unlock(&x->lock);
        if (rejoin_Try(wk, t))
            return 1;
        sleep_Ms(REJOIN_RETRY_MS);
    }
}

static void *worker_Main(void *arg)
{
    worker *wk = arg;
    exec_state *x = wk->x;
    const exec_plan *p = x->plan;
    const exec_hooks *h = p->hooks;
    long t = p->start_iteration;
    /* A worker whose peer was unreachable at the start begins on standby. */
    if (!x->alive[wk->w] && !worker_Standby(wk, &t))
        return NULL;
    while (t < x->total) {
        if (x->stop || stop_requested)
            return NULL;
        join_Gate(wk, t);
        if (x->stop || stop_requested)
            return NULL;
        int epoch = (int)(t / p->iters_per_epoch) + 1;
        long i = t % p->iters_per_epoch;
        if (h && h->on_hold && t == h->hold_at)
            hold_Gate(wk, t);
        float loss;
        iteration_flags fl = {0};
        spStatus st = iteration_Run(wk, epoch, t, &loss, &fl);
        if (st) {
            worker_Fail(wk, t, st, sp_LastError());
            if (!worker_Standby(wk, &t))
                return NULL;
            continue;
        }
        progress_Report(wk, epoch, i, t, loss);
        if (fl.stop) {
            pthread_mutex_lock(&x->lock);
            if (!x->stop)
                train_Notify(p->obs, "the job reached its goal at iteration %ld: stopping", t);
            x->stop = 1;
            pthread_cond_broadcast(&x->cond);
            pthread_mutex_unlock(&x->lock);
        }
        if (fl.leave) {
            worker_Leave(wk, t);
            return NULL;
        }
        if (i == p->iters_per_epoch - 1)
            epoch_Gate(wk, epoch);
        t++;
    }
    pthread_mutex_lock(&x->lock);
    x->n_done++;
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
    return NULL;
}

static void *worker_Thread(void *arg)
{
    worker_Main(arg);
    store_ReleaseCached(); /* this thread's in-process steps' connections */
    return NULL;
}

/* ---- report ----------------------------------------------------------------- */

static void details_Fill(exec_state *x)
{
    const exec_plan *p = x->plan;
    cJSON *d = x->res->details;
    double wi = x->worker_iterations > 0 ? (double)x->worker_iterations : 1;
    cJSON *steps = cJSON_AddObjectToObject(d, "steps");
    double cat[CAT_N] = {0}, bytes = 0, total = 0, call_s = 0;
    long in_db = 0, client = 0, calls = 0;
    for (int s = 0; s < p->arch->n_steps; s++) {
        const step_stats *st = &x->stats[s];
        cJSON *o = cJSON_AddObjectToObject(steps, p->arch->steps[s].step);
        cJSON_AddNumberToObject(o, "wall_ms", st->wall_ms / wi);
        cJSON_AddNumberToObject(o, "compute_ms", st->compute_ms / wi);
        cJSON_AddNumberToObject(o, "store_ms", st->store_ms / wi);
        cJSON_AddNumberToObject(o, "sync_ms", st->sync_ms / wi);
        cJSON_AddNumberToObject(o, "transfer_ms", st->transfer_ms / wi);
        cJSON_AddNumberToObject(o, "bytes", (st->bytes_in + st->bytes_out) / wi);
        cJSON_AddNumberToObject(o, "calls", (double)st->calls);
        cJSON_AddNumberToObject(o, "retries", (double)st->retries);
        cat[p->arch->steps[s].cat] += st->wall_ms / wi;
        bytes += (st->bytes_in + st->bytes_out) / wi;
        total += st->wall_ms / wi;
        in_db += st->in_db;
        client += st->client_side;
        call_s += st->call_seconds;
        calls += st->calls;
    }
    /* What a serverless bill is made of: invocations and their durations. */
    cJSON_AddNumberToObject(d, "invocations", (double)calls);
    cJSON_AddNumberToObject(d, "invocation_seconds", call_s);
    cJSON *c = cJSON_AddObjectToObject(d, "time_per_iteration_ms");
    for (int k = 0; k < CAT_N; k++)
        cJSON_AddNumberToObject(c, arch_CatName((time_cat)k), cat[k]);
    cJSON_AddNumberToObject(c, "total", total);
    cJSON_AddNumberToObject(d, "outside_compute_share", total > 0 ? 1.0 - cat[CAT_COMPUTE] / total : 0);
    cJSON_AddNumberToObject(d, "bytes_per_worker_per_iteration", bytes);
    cJSON_AddStringToObject(d, "transport", p->inv->inproc ? "inproc" : "http");
    cJSON_AddStringToObject(d, "tensor_math", client == 0 ? "in-database" :
                                              in_db == 0 ? "client-side (module absent)" : "mixed");
    cJSON_AddNumberToObject(d, "eval_seconds", x->eval_seconds);
    cJSON_AddItemToObject(d, "failed_peers", x->failures);
    cJSON_AddItemToObject(d, "departed_workers", x->departures);
    /* Fault tolerance: who was excluded and why, who came back, and the
     * worker-iterations the failed peers did not take part in. */
    cJSON_AddItemToObject(d, "exclusions", x->exclusions);
    cJSON_AddItemToObject(d, "rejoins", x->rejoins);
    cJSON_AddNumberToObject(d, "iterations_lost", (double)x->lost);
    cJSON *alive = cJSON_AddArrayToObject(d, "live_at_end");
    for (int w = 0; w < p->job->workers; w++)
        if (x->alive[w])
            cJSON_AddItemToArray(alive, cJSON_CreateNumber(w));
    if (p->start_iteration > 0)
        cJSON_AddNumberToObject(d, "resumed_from", (double)p->start_iteration);
    x->exclusions = x->rejoins = NULL;
    /* Inputs refused by the receiving peers, per peer that sent them. */
    cJSON *rej = cJSON_AddObjectToObject(d, "rejected_inputs");
    cJSON_AddNumberToObject(rej, "total", (double)x->rejected_total);
    cJSON *by = cJSON_AddArrayToObject(rej, "by_peer");
    for (int w = 0; w < p->job->workers; w++)
        cJSON_AddItemToArray(by, cJSON_CreateNumber((double)x->rejected[w]));
    x->failures = x->departures = NULL;
}

/* Who starts in the job (all but plan->down), where, and the views. */
static void members_Init(exec_state *x, worker *wk)
{
    const exec_plan *p = x->plan;
    int n = p->job->workers;
    x->total = (long)p->job->epochs * p->iters_per_epoch;
    x->join_iter = -1;
    x->rejoins = cJSON_CreateArray();
    x->exclusions = cJSON_CreateArray();
    x->iterations = p->start_iteration;
    /* A resumed run evaluates its final model even if it has no iteration
     * left to run. */
    x->eval_iteration = p->start_iteration > 0 ? -1 : 0;
    x->n_alive = 0;
    for (int w = 0; w < n; w++) {
        x->alive[w] = !(p->down && p->down[w]);
        x->n_alive += x->alive[w];
        x->started[w] = p->start_iteration - 1;
        x->joined_at[w] = -1;
        x->failed_at[w] = x->alive[w] ? -1 : p->start_iteration;
    }
    for (int w = 0; w < n; w++) {
        wk[w].x = x;
        wk[w].w = w;
        wk[w].n_live = 0;
        for (int q = 0; q < n; q++)
            if (x->alive[q])
                wk[w].live[wk[w].n_live++] = q;
        if (x->alive[w])
            hook_Member(x, w, 1);
    }
}

static void members_Free(exec_state *x)
{
    cJSON_Delete(x->rejoins);
    cJSON_Delete(x->exclusions);
    x->rejoins = x->exclusions = NULL;
}

spStatus executor_Run(const exec_plan *plan, train_result *res)
{
    const job_config *job = plan->job;
    if (job->workers > MAX_WORKERS || plan->arch->n_steps > MAX_STEPS || job->minibatches > JOB_MAX_MINIBATCHES)
        return sp_Error(SP_ERR_INVALID, "too many workers, steps or minibatches for the executor");
    exec_state *x = calloc(1, sizeof *x);
    worker *wk = calloc((size_t)job->workers, sizeof *wk);
    pthread_t *th = calloc((size_t)job->workers, sizeof *th);
    if (!x || !wk || !th) {
        free(x), free(wk), free(th);
        return sp_Error(SP_ERR_NOMEM, "out of memory for %d workers", job->workers);
    }
    x->plan = plan;
    x->res = res;
    x->failures = cJSON_CreateArray();
    x->departures = cJSON_CreateArray();
    pthread_mutex_init(&x->lock, NULL);
    pthread_cond_init(&x->cond, NULL);
    members_Init(x, wk);
    if (x->n_alive == 0) {
        members_Free(x);
        free(x), free(wk), free(th);
        return sp_Error(SP_ERR_UNAVAILABLE, "no worker can start: every peer is unreachable");
    }
    x->start = clock_Now();
    int created = 0;
    for (; created < job->workers; created++)
        if (pthread_create(&th[created], NULL, worker_Thread, &wk[created]) != 0)
            break;
    if (created < job->workers) {
        pthread_mutex_lock(&x->lock);
        x->stop = 1;
        x->fatal = sp_Error(SP_ERR_NOMEM, "cannot start worker threads");
        snprintf(x->fatal_msg, sizeof x->fatal_msg, "cannot start worker threads");
        /* Workers that never started can't reach the gate. */
        x->n_alive = created;
        pthread_cond_broadcast(&x->cond);
        pthread_mutex_unlock(&x->lock);
    }
    for (int w = 0; w < created; w++)
        pthread_join(th[w], NULL);
    /* Peers that never came back missed the rest of the run. */
    for (int w = 0; w < job->workers; w++)
        if (!x->alive[w] && x->failed_at[w] >= 0 && x->iterations > x->failed_at[w])
            x->lost += x->iterations - x->failed_at[w];
    /* Stopped between epoch ends (target reached): evaluate the final model. */
    if (!x->fatal && !stop_requested && x->iterations != x->eval_iteration &&
        first_alive(x) >= 0) {
        int epoch = (int)((x->iterations + plan->iters_per_epoch - 1) / plan->iters_per_epoch);
        epoch_Evaluate(x, epoch);
    }
    double elapsed = clock_Now() - x->start;
    res->train_seconds = elapsed - x->eval_seconds;
    res->iterations = x->iterations;
    res->final_loss = x->loss;
    res->samples_per_second = res->train_seconds > 0 ? res->samples / res->train_seconds : 0;
    details_Fill(x);
    spStatus st = x->fatal;
    if (!st && stop_requested)
        st = sp_Error(SP_ERR_UNAVAILABLE, "interrupted");
    else if (st)
        sp_Error(st, "%s", x->fatal_msg);
    cJSON_Delete(x->failures);
    cJSON_Delete(x->departures);
    members_Free(x);
    pthread_mutex_destroy(&x->lock);
    pthread_cond_destroy(&x->cond);
    free(x), free(wk), free(th);
    return st;
}
