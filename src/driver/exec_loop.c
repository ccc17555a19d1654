/* exec_loop.c - the iteration loop: one thread per worker walks the
 * architecture's step table every iteration, fanning a step out where the
 * table says so; answers' "context" feeds the later steps of the same
 * iteration. Live workers meet at every epoch end, where the model is
 * evaluated (that time is not training time). */
#include "driver/exec_internal.h"

#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "steps/fields.h"

static int job_Stopping(exec_state *x)
{
    pthread_mutex_lock(&x->lock);
    int stopping = x->stop || exec_stop_requested;
    pthread_mutex_unlock(&x->lock);
    return stopping;
}

/* ---- requests ------------------------------------------------------------ */

static cJSON *live_Array(const worker *wk)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < wk->n_live; i++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(wk->live[i]));
    return a;
}

/* Sets o[k] = a copy of v, replacing what was there. */
static void json_Put(cJSON *o, const char *k, const cJSON *v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, k);
    cJSON_AddItemToObject(o, k, cJSON_Duplicate(v, 1));
}

/* The request of one invocation: common fields, the iteration's context,
 * then this invocation's coordinates. */
static cJSON *request_Build(const worker *wk, const cJSON *ctx, int epoch, long t, int m)
{
    cJSON *r = cJSON_Duplicate(wk->x->plan->base, 1);
    for (const cJSON *c = ctx ? ctx->child : NULL; c; c = c->next)
        json_Put(r, c->string, c);
    if (!cJSON_GetObjectItemCaseSensitive(r, FIELD_LIVE))
        cJSON_AddItemToObject(r, FIELD_LIVE, live_Array(wk));
    cJSON_AddNumberToObject(r, FIELD_PEER, wk->w);
    cJSON_AddNumberToObject(r, FIELD_EPOCH, epoch);
    cJSON_AddNumberToObject(r, FIELD_ITERATION, (double)t);
    cJSON_AddNumberToObject(r, FIELD_M, m);
    cJSON_AddNumberToObject(r, FIELD_TIMEOUT_MS, wk->x->plan->job->sync_timeout_ms);
    return r;
}

/* ---- one step, with fan-out ---------------------------------------------- */

typedef struct {
    const invoker *inv;
    const char *step;
    cJSON *req, *resp;
    spStatus st;
    invoke_trace trace;
    double seconds;
    char err[512];
} call;

static void *call_Run(void *arg)
{
    call *c = arg;
    double t0 = clock_Now();
    c->st = invoker_CallTraced(c->inv, c->step, c->req, &c->resp, &c->trace);
    c->seconds = clock_Now() - t0;
    if (c->st)
        snprintf(c->err, sizeof c->err, "%s", sp_LastError());
    return NULL;
}

/* A fan-out thread ends after its call: what its transport cached for it
 * (connections) goes with it. */
static void *call_Thread(void *arg)
{
    call_Run(arg);
    invoker_ThreadDone(((call *)arg)->inv);
    return NULL;
}

static int flag(const cJSON *resp, const char *k)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, k));
}

typedef struct {
    float sum;
    int n;
} loss_acc;

/* Runs n invocations of step s in parallel (n-1 extra threads), records
 * their statistics and merges their answers into the iteration. */
static spStatus step_Invoke(worker *wk, int s, cJSON *ctx, int epoch, long t, int n,
                            loss_acc *loss, iteration_flags *fl)
{
    exec_state *x = wk->x;
    const arch_step *as = &x->plan->arch->steps[s];
    call calls[EXEC_MAX_FANOUT];
    pthread_t th[EXEC_MAX_FANOUT];
    int started[EXEC_MAX_FANOUT] = {0};
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
    x->stats.steps[s].wall_ms += wall;
    x->stats.steps[s].groups++;
    for (int k = 0; k < n; k++) {
        x->stats.steps[s].call_seconds += calls[k].seconds;
        x->stats.steps[s].retries += calls[k].trace.attempts > 1 ? calls[k].trace.attempts - 1 : 0;
        stats_Trace(x, s, &calls[k].trace, wk->w, t);
        if (calls[k].st) {
            if (!st) {
                st = calls[k].st;
                sp_Error(st, "%s", calls[k].err);
            }
            continue;
        }
        stats_Add(x, s, calls[k].resp, wk->w, t);
        members_NoteExcluded(x, calls[k].resp, wk->w, t);
    }
    pthread_mutex_unlock(&x->lock);
    for (int k = 0; k < n; k++) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(calls[k].resp, FIELD_CONTEXT);
        for (const cJSON *f = c ? c->child : NULL; f && !st; f = f->next)
            json_Put(ctx, f->string, f);
        fl->leave |= flag(calls[k].resp, FIELD_LEAVE);
        fl->stop |= flag(calls[k].resp, FIELD_STOP);
        fl->excluded |= flag(calls[k].resp, FIELD_SELF_EXCLUDED);
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(calls[k].resp, FIELD_LOSS);
        if (cJSON_IsNumber(l)) {
            loss->sum += (float)l->valuedouble;
            loss->n++;
        }
        cJSON_Delete(calls[k].req);
        cJSON_Delete(calls[k].resp);
    }
    return st;
}

/* A leader step runs once per iteration, by the first live worker. */
static int is_Leader(worker *wk)
{
    exec_state *x = wk->x;
    pthread_mutex_lock(&x->lock);
    int leader = members_FirstAlive(x);
    pthread_mutex_unlock(&x->lock);
    return leader == wk->w;
}

static spStatus iteration_Run(worker *wk, int epoch, long t, float *loss, iteration_flags *fl)
{
    exec_state *x = wk->x;
    const arch_def *arch = x->plan->arch;
    cJSON *ctx = cJSON_CreateObject();
    cJSON *joiners = members_Joiners(wk, t);
    if (joiners)
        cJSON_AddItemToObject(ctx, FIELD_JOINERS, joiners);
    loss_acc acc = {0, 0};
    spStatus st = SP_OK;
    for (int s = 0; s < arch->n_steps && !st && !fl->excluded; s++) {
        if (job_Stopping(x)) {
            st = sp_Error(SP_ERR_UNAVAILABLE, "stopped");
            break;
        }
        const arch_step *as = &arch->steps[s];
        if (as->fan == FAN_LEADER && !is_Leader(wk))
            continue;
        int n = as->fan == FAN_MINIBATCH ? x->plan->job->minibatches : 1;
        st = step_Invoke(wk, s, ctx, epoch, t, n, &acc, fl);
        /* The iteration's mean loss so far goes to the later steps (notify's
         * payload, MLLESS's report to the supervisor). */
        if (!st && acc.n > 0) {
            cJSON_DeleteItemFromObjectCaseSensitive(ctx, FIELD_LOSS);
            cJSON_AddNumberToObject(ctx, FIELD_LOSS, acc.sum / (float)acc.n);
        }
    }
    int before = wk->n_live;
    if (!st && !fl->excluded)
        members_ViewFromContext(wk, ctx);
    /* Where a failure is fatal, the live set shrinks only by a scale-in,
     * which members_Leave reports. */
    if (!st && wk->n_live < before && arch->tolerates_failures)
        train_Notify(x->plan->obs, "peer %d: %d peer(s) missed iteration %ld and are excluded",
                     wk->w, before - wk->n_live, t);
    cJSON_Delete(ctx);
    *loss = acc.n ? acc.sum / (float)acc.n : 0;
    return st;
}

/* ---- evaluation, epoch gate, progress ------------------------------------ */

/* An evaluation at an epoch end sets the report's accuracy and tells the
 * observer; an --eval-every one inside an epoch is a point on the curve. */
static void evaluate_At(exec_state *x, int epoch, int epoch_end)
{
    const exec_plan *p = x->plan;
    pthread_mutex_lock(&x->lock);
    int src = members_FirstAlive(x);
    double e0 = clock_Now();
    double train_time = e0 - x->start - x->eval_seconds;
    long iterations = x->iterations;
    pthread_mutex_unlock(&x->lock);
    cJSON *req = cJSON_Duplicate(p->base, 1);
    cJSON_AddNumberToObject(req, FIELD_SOURCE, src);
    cJSON_AddNumberToObject(req, FIELD_EPOCH, epoch);
    cJSON *resp = NULL;
    spStatus st = invoker_Call(p->inv, "evaluate", req, &resp, NULL);
    cJSON_Delete(req);
    pthread_mutex_lock(&x->lock);
    if (epoch_end)
        x->eval_iteration = iterations;
    if (st) {
        exec_Fatal(x, st, "evaluation %s epoch %d: %s", epoch_end ? "after" : "during", epoch,
                   sp_LastError());
    } else {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(resp, FIELD_ACCURACY);
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(resp, FIELD_LOSS);
        float acc = cJSON_IsNumber(a) ? (float)a->valuedouble : 0;
        float tl = cJSON_IsNumber(l) ? (float)l->valuedouble : 0;
        train_RecordPoint(x->res, train_time, epoch, iterations, x->loss, acc);
        if (epoch_end) {
            x->res->test_accuracy = acc;
            x->res->test_loss = tl;
            x->res->epochs_run = epoch;
            if (p->obs && p->obs->on_epoch)
                p->obs->on_epoch(p->obs->ctx, epoch, acc, tl, train_time);
        }
        if (epoch_end && p->job->target_loss > 0 && x->loss < p->job->target_loss) {
            train_Notify(p->obs, "training loss %.4f below target %.4f: stopping", x->loss,
                         p->job->target_loss);
            x->stop = 1;
        }
    }
    x->eval_seconds += clock_Now() - e0;
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
    cJSON_Delete(resp);
}

void loop_Evaluate(exec_state *x, int epoch) { evaluate_At(x, epoch, 1); }

/* Live workers meet at each epoch end (and every --eval-every iterations);
 * the last to arrive evaluates while the others wait (without holding the
 * lock: the evaluation is a call). */
static void epoch_Gate(worker *wk, int epoch, int epoch_end)
{
    exec_state *x = wk->x;
    pthread_mutex_lock(&x->lock);
    x->gate_count++;
    long gen = x->gate_gen;
    while (x->gate_gen == gen) {
        if (x->gate_count >= x->mem.n_alive && !x->evaluating) {
            x->evaluating = 1;
            int run = !x->stop;
            pthread_mutex_unlock(&x->lock);
            if (run)
                evaluate_At(x, epoch, epoch_end);
            pthread_mutex_lock(&x->lock);
            x->gate_gen++;
            x->gate_count = 0;
            x->evaluating = 0;
            pthread_cond_broadcast(&x->cond);
            break;
        }
        if (x->stop || exec_stop_requested)
            break;
        exec_WaitMs(x, 200);
    }
    pthread_mutex_unlock(&x->lock);
}

static void progress_Report(worker *wk, int epoch, long i, long t, float loss, double ms)
{
    exec_state *x = wk->x;
    const exec_plan *p = x->plan;
    pthread_mutex_lock(&x->lock);
    x->stats.worker_iterations++;
    stats_Iteration(x, ms);
    if (members_FirstAlive(x) == wk->w) {
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

static void job_Stop(exec_state *x, long t)
{
    pthread_mutex_lock(&x->lock);
    if (!x->stop)
        train_Notify(x->plan->obs, "the job reached its goal at iteration %ld: stopping", t);
    x->stop = 1;
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
}

/* ---- a worker's life ----------------------------------------------------- */

static void worker_Main(worker *wk)
{
    exec_state *x = wk->x;
    const exec_plan *p = x->plan;
    const exec_hooks *h = p->hooks;
    long t = p->start_iteration;
    /* A worker whose peer was unreachable at the start begins on standby. */
    if (!x->mem.m[wk->w].alive && !members_Standby(wk, &t))
        return;
    while (t < x->total) {
        if (job_Stopping(x))
            return;
        members_JoinGate(wk, t);
        if (job_Stopping(x))
            return;
        int epoch = (int)(t / p->iters_per_epoch) + 1;
        long i = t % p->iters_per_epoch;
        if (h && h->on_hold && t == h->hold_at)
            members_HoldGate(wk, t);
        float loss;
        iteration_flags fl = {0, 0, 0};
        double it0 = clock_Now();
        spStatus st = iteration_Run(wk, epoch, t, &loss, &fl);
        if (st && job_Stopping(x))
            return; /* cut short because the job ends: not this worker's failure */
        if (st) {
            members_Fail(wk, t, st, sp_LastError());
            if (!members_Standby(wk, &t))
                return;
            continue;
        }
        if (fl.excluded) { /* alive but left out: rejoin, as after a failure */
            members_Excluded(wk, t);
            if (!members_Standby(wk, &t))
                return;
            continue;
        }
        progress_Report(wk, epoch, i, t, loss, (clock_Now() - it0) * 1000.0);
        if (fl.stop)
            job_Stop(x, t);
        if (fl.leave) {
            members_Leave(wk, t);
            return;
        }
        if (i == p->iters_per_epoch - 1)
            epoch_Gate(wk, epoch, 1);
        else if (p->job->eval_every > 0 && (t + 1) % p->job->eval_every == 0)
            epoch_Gate(wk, epoch, 0);
        t++;
    }
    members_Done(x);
}

void *loop_WorkerThread(void *arg)
{
    worker *wk = arg;
    worker_Main(wk);
    invoker_ThreadDone(wk->x->plan->inv);
    return NULL;
}
