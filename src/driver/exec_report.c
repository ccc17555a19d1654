/* exec_report.c - statistics of the steps' answers, and the report built
 * from them: time per step and category, bytes moved, invocations (what a
 * serverless bill is made of), refused inputs, failures and rejoins, every
 * wait that ran out of time, and the spread of iteration times. */
#include "driver/exec_internal.h"

#include <stdlib.h>
#include <string.h>

#include "steps/fields.h"

int stats_Init(exec_stats *s)
{
    s->failures = cJSON_CreateArray();
    s->departures = cJSON_CreateArray();
    s->exclusions = cJSON_CreateArray();
    s->rejoins = cJSON_CreateArray();
    s->timeouts = cJSON_CreateArray();
    return s->failures && s->departures && s->exclusions && s->rejoins && s->timeouts;
}

void stats_Free(exec_stats *s)
{
    cJSON_Delete(s->failures);
    cJSON_Delete(s->departures);
    cJSON_Delete(s->exclusions);
    cJSON_Delete(s->rejoins);
    cJSON_Delete(s->timeouts);
    s->failures = s->departures = s->exclusions = s->rejoins = s->timeouts = NULL;
    free(s->iter_ms);
    s->iter_ms = NULL;
    s->n_iter = s->cap_iter = 0;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* An answer's "rejected": [{peer, code, reason}] - inputs a step refused
 * (aggregate: a peer's average that was corrupt, non-finite, missing ...).
 * Counted per offending peer; the first refusal of a peer is announced. */
static void rejected_Count(exec_state *x, const cJSON *resp, int by, long t)
{
    exec_stats *s = &x->stats;
    const cJSON *rej = cJSON_GetObjectItemCaseSensitive(resp, FIELD_REJECTED);
    for (const cJSON *r = cJSON_IsArray(rej) ? rej->child : NULL; r; r = r->next) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(r, FIELD_PEER);
        if (!cJSON_IsNumber(p) || p->valuedouble < 0 || p->valuedouble >= x->plan->job->workers)
            continue;
        int q = (int)p->valuedouble;
        s->rejected_total++;
        if (s->rejected[q]++ == 0) {
            const cJSON *why = cJSON_GetObjectItemCaseSensitive(r, FIELD_REASON);
            train_Notify(x->plan->obs, "peer %d refused peer %d's input at iteration %ld: %s",
                         by, q, t, cJSON_IsString(why) ? why->valuestring : "rejected");
        }
    }
}

/* One timed-out wait: where, and told as it happens - a wait that ran out
 * is worth a line even when the run goes on. */
static cJSON *timeout_Add(exec_state *x, int step, int by, long t, double ms, const char *wait)
{
    const char *name = x->plan->arch->steps[step].step;
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "step", name);
    cJSON_AddNumberToObject(e, "worker", by);
    cJSON_AddNumberToObject(e, FIELD_ITERATION, (double)t);
    cJSON_AddNumberToObject(e, FIELD_DURATION_MS, (double)(long long)(ms + 0.5));
    cJSON_AddStringToObject(e, FIELD_WAIT, wait);
    cJSON_AddItemToArray(x->stats.timeouts, e);
    train_Notify(x->plan->obs, "worker %d's %s at iteration %ld: a wait (%s) ran out after "
                 "%.0f ms", by, name, t, wait, ms);
    return e;
}

void stats_Trace(exec_state *x, int step, const invoke_trace *tr, int by, long t)
{
    for (int i = 0; i < tr->n_timeouts && i < INVOKE_TRACE_MAX; i++) {
        cJSON *e = timeout_Add(x, step, by, t, tr->timeout_ms[i], "call");
        cJSON_AddStringToObject(e, "error", tr->timeout_msg);
        cJSON_AddBoolToObject(e, "retried", i + 1 < tr->attempts);
    }
}

/* An answer's "timeouts": [{wait, duration_ms, members}] - its own waits
 * that ran out (the step still answered: a barrier that gave up on a peer,
 * an aggregate that left out a database that never answered). */
static void timeouts_Count(exec_state *x, int step, const cJSON *resp, int by, long t)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(resp, FIELD_TIMEOUTS);
    for (const cJSON *w = cJSON_IsArray(list) ? list->child : NULL; w; w = w->next) {
        const cJSON *what = cJSON_GetObjectItemCaseSensitive(w, FIELD_WAIT);
        const cJSON *who = cJSON_GetObjectItemCaseSensitive(w, FIELD_MEMBERS);
        cJSON *e = timeout_Add(x, step, by, t, num(w, FIELD_DURATION_MS),
                               cJSON_IsString(what) ? what->valuestring : "?");
        if (cJSON_IsArray(who))
            cJSON_AddItemToObject(e, FIELD_MEMBERS, cJSON_Duplicate(who, 1));
    }
}

void stats_Iteration(exec_state *x, double ms)
{
    exec_stats *s = &x->stats;
    if (s->n_iter == s->cap_iter) {
        long cap = s->cap_iter ? 2 * s->cap_iter : 1024;
        double *grown = realloc(s->iter_ms, (size_t)cap * sizeof *grown);
        if (!grown)
            return; /* the spread is then of fewer iterations */
        s->iter_ms = grown;
        s->cap_iter = cap;
    }
    s->iter_ms[s->n_iter++] = ms;
}

void stats_Add(exec_state *x, int step, const cJSON *resp, int by, long t)
{
    step_stats *s = &x->stats.steps[step];
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(resp, FIELD_TIMINGS);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(resp, FIELD_BYTES);
    s->compute_ms += num(tm, FIELD_COMPUTE_MS);
    s->store_ms += num(tm, FIELD_STORE_MS);
    s->sync_ms += num(tm, FIELD_SYNC_MS);
    s->transfer_ms += num(tm, FIELD_TRANSFER_MS);
    s->bytes_in += num(b, FIELD_BYTES_IN);
    s->bytes_out += num(b, FIELD_BYTES_OUT);
    s->calls++;
    const cJSON *in_db = cJSON_GetObjectItemCaseSensitive(resp, FIELD_IN_DB);
    if (cJSON_IsBool(in_db)) {
        if (cJSON_IsTrue(in_db))
            s->in_db++;
        else
            s->client_side++;
    }
    rejected_Count(x, resp, by, t);
    timeouts_Count(x, step, resp, by, t);
}

/* Per step and per category, averaged over worker-iterations. */
static void steps_Report(exec_state *x, cJSON *d)
{
    const exec_plan *p = x->plan;
    double wi = x->stats.worker_iterations > 0 ? (double)x->stats.worker_iterations : 1;
    cJSON *steps = cJSON_AddObjectToObject(d, "steps");
    double cat[CAT_N] = {0}, bytes = 0, total = 0, call_s = 0;
    long in_db = 0, client = 0, calls = 0;
    for (int s = 0; s < p->arch->n_steps; s++) {
        const step_stats *st = &x->stats.steps[s];
        cJSON *o = cJSON_AddObjectToObject(steps, p->arch->steps[s].step);
        cJSON_AddNumberToObject(o, "wall_ms", st->wall_ms / wi);
        cJSON_AddNumberToObject(o, FIELD_COMPUTE_MS, st->compute_ms / wi);
        cJSON_AddNumberToObject(o, FIELD_STORE_MS, st->store_ms / wi);
        cJSON_AddNumberToObject(o, FIELD_SYNC_MS, st->sync_ms / wi);
        cJSON_AddNumberToObject(o, FIELD_TRANSFER_MS, st->transfer_ms / wi);
        cJSON_AddNumberToObject(o, FIELD_BYTES, (st->bytes_in + st->bytes_out) / wi);
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
    cJSON_AddNumberToObject(d, "outside_compute_share",
                            total > 0 ? 1.0 - cat[CAT_COMPUTE] / total : 0);
    cJSON_AddNumberToObject(d, "bytes_per_worker_per_iteration", bytes);
    cJSON_AddStringToObject(d, "transport", p->inv->transport ? p->inv->transport->name : "");
    cJSON_AddStringToObject(d, "tensor_math", client == 0 ? "in-database"
                                              : in_db == 0 ? "client-side (module absent)"
                                                           : "mixed");
}

/* Who failed, left, was excluded or came back, and what that cost. */
static void members_Report(exec_state *x, cJSON *d)
{
    const exec_plan *p = x->plan;
    exec_stats *s = &x->stats;
    cJSON_AddItemToObject(d, "failed_peers", s->failures);
    cJSON_AddItemToObject(d, "departed_workers", s->departures);
    cJSON_AddItemToObject(d, "exclusions", s->exclusions);
    cJSON_AddItemToObject(d, "rejoins", s->rejoins);
    s->failures = s->departures = s->exclusions = s->rejoins = NULL;
    cJSON_AddNumberToObject(d, "iterations_lost", (double)s->lost);
    cJSON *alive = cJSON_AddArrayToObject(d, "live_at_end");
    for (int w = 0; w < p->job->workers; w++)
        if (x->mem.m[w].alive)
            cJSON_AddItemToArray(alive, cJSON_CreateNumber(w));
    if (p->start_iteration > 0)
        cJSON_AddNumberToObject(d, "resumed_from", (double)p->start_iteration);
    /* Inputs refused by the receiving peers, per peer that sent them. */
    cJSON *rej = cJSON_AddObjectToObject(d, "rejected_inputs");
    cJSON_AddNumberToObject(rej, "total", (double)s->rejected_total);
    cJSON *by = cJSON_AddArrayToObject(rej, "by_peer");
    for (int w = 0; w < p->job->workers; w++)
        cJSON_AddItemToArray(by, cJSON_CreateNumber((double)s->rejected[w]));
}

void stats_Report(exec_state *x)
{
    cJSON *d = x->res->details;
    steps_Report(x, d);
    cJSON_AddNumberToObject(d, "eval_seconds", x->eval_seconds);
    members_Report(x, d);
    cJSON_AddItemToObject(d, "timeouts", x->stats.timeouts);
    x->stats.timeouts = NULL;
    train_IterationTimes(d, x->stats.iter_ms, x->stats.n_iter);
}
