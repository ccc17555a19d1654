/* executor.c - worker threads walking an architecture's step table. */
#include "driver/executor.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"

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

/* Runs n invocations of a step in parallel (n-1 extra threads). */
/* What an iteration's answers asked the executor to do. */
typedef struct {
    int leave;   /* this worker leaves the job (scaled in), not a failure */
    int stop;    /* the job is done (e.g. the supervisor reached the target) */
} iteration_flags;

static int flag(const cJSON *resp, const char *k)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, k));
}

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
        started[k] = pthread_create(&th[k], NULL, call_Run, &calls[k]) == 0;
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
    if (fatal && !x->fatal) {
        x->fatal = st;
        snprintf(x->fatal_msg, sizeof x->fatal_msg, "worker %d at iteration %ld: %s", wk->w, t,
                 msg);
        x->stop = 1;
    }
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
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
        /* Timed, so a stop requested from a signal handler is noticed. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&x->cond, &x->lock, &ts);
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

static void *worker_Main(void *arg)
{
    worker *wk = arg;
    exec_state *x = wk->x;
    const exec_plan *p = x->plan;
    for (int epoch = 1; epoch <= p->job->epochs; epoch++) {
        for (long i = 0; i < p->iters_per_epoch; i++) {
            long t = (long)(epoch - 1) * p->iters_per_epoch + i;
            float loss;
            iteration_flags fl = {0};
            if (x->stop || stop_requested)
                goto out;
            spStatus st = iteration_Run(wk, epoch, t, &loss, &fl);
            if (st) {
                worker_Fail(wk, t, st, sp_LastError());
                return NULL;
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
        }
        epoch_Gate(wk, epoch);
    }
out:
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
    x->failures = x->departures = NULL;
}

spStatus executor_Run(const exec_plan *plan, train_result *res)
{
    const job_config *job = plan->job;
    if (job->workers > MAX_WORKERS || plan->arch->n_steps > MAX_STEPS || job->minibatches > 64)
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
    x->n_alive = job->workers;
    for (int w = 0; w < job->workers; w++) {
        x->alive[w] = 1;
        wk[w].x = x;
        wk[w].w = w;
        wk[w].n_live = job->workers;
        for (int q = 0; q < job->workers; q++)
            wk[w].live[q] = q;
    }
    x->start = clock_Now();
    int created = 0;
    for (; created < job->workers; created++)
        if (pthread_create(&th[created], NULL, worker_Main, &wk[created]) != 0)
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
    pthread_mutex_destroy(&x->lock);
    pthread_cond_destroy(&x->cond);
    free(x), free(wk), free(th);
    return st;
}
