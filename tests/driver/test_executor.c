/* test_executor.c - the executor's decisions, driven through a fake
 * transport: no server, no step handler runs. Each test scripts what the
 * fake steps answer (failures, exclusions, leave/stop flags, retries) and
 * checks what the executor did with it: who was called, with what, and
 * what the report says.
 * ctest-label: unit */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <pthread.h>

#include "driver/executor.h"
#include "steps/fields.h"

#define MAXW 8
#define MAXT 64

/* ---- the fake world ------------------------------------------------------ */

typedef struct scenario scenario;
/* Decides one attempt of step `step` by `peer` at iteration t (minibatch
 * m): fill resp and return SP_OK, or return an error. n = attempt number
 * of this (step, peer, t, m), from 1. */
typedef spStatus (*behaviour)(scenario *sc, const char *step, int peer, long t, int m, int n,
                              const cJSON *req, cJSON *resp);

struct scenario {
    pthread_mutex_t mu;
    behaviour fn;
    long barrier_ms;              /* how long a barrier waits; 0 = BARRIER_MS */
    /* what happened */
    int calls[8][MAXW][MAXT];     /* per fake step index, peer, iteration: attempts */
    int leader_calls[MAXT];       /* supervisor: who called it, +1 */
    int evaluations;
    int eval_epochs[16];
    int joins, rejoins;
    long rejoin_at;
    int rejoin_source;
    int in_flight, max_in_flight_at_hold;
    int joiners_seen[MAXW][MAXT]; /* barrier requests naming joiners */
    int live_len[MAXW][MAXT];     /* len(live) in barrier requests */
    int context_seen[MAXW][MAXT]; /* update saw gradient's context of the same t */
    int stale_context[MAXW][MAXT];/* minibatch saw a context field of an earlier t */
    double loss_seen[MAXW][MAXT]; /* barrier request's "loss" */
    int member_events[MAXW][2];   /* hooks->member(w, 0/1) */
    int peer_up_after;            /* peer_up answers 1 from this many polls on */
    int peer_up_polls;
    int held_ok;                  /* on_hold ran with nothing in flight */
    int workers;
    /* the fake barrier: the first to finish waiting decides t's live set */
    pthread_cond_t cv;
    int arrived[MAXT][MAXW];
    int has_decision[MAXT];
    int decided[MAXT][MAXW];
};

static const char *const fake_steps[] = {"minibatch", "gradient", "barrier", "supervisor",
                                         "update"};
enum { S_MINIBATCH, S_GRADIENT, S_BARRIER, S_SUPERVISOR, S_UPDATE, N_FAKE };

static int step_Index(const char *step)
{
    for (int i = 0; i < N_FAKE; i++)
        if (strcmp(step, fake_steps[i]) == 0)
            return i;
    return -1;
}

static long get_Long(const cJSON *o, const char *k, long def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (long)v->valuedouble : def;
}

#define BARRIER_MS 300

/* Like the real barrier: wait (bounded) for every peer the caller believes
 * live, unless t's live set is decided already; the first barrier done
 * waiting decides it (who arrived), and every barrier answers with that
 * decision - a caller it leaves out is told so ("self_excluded"). */
static void barrier_Wait(scenario *sc, int peer, long t, const cJSON *req, cJSON *resp)
{
    /* The members: "live" and the "joiners" (who announced, in the real one). */
    cJSON *live = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(req, FIELD_LIVE), 1);
    const cJSON *joiners = cJSON_GetObjectItemCaseSensitive(req, FIELD_JOINERS);
    for (const cJSON *j = joiners ? joiners->child : NULL; j; j = j->next)
        cJSON_AddItemToArray(live, cJSON_CreateNumber(j->valuedouble));
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_nsec += (sc->barrier_ms ? sc->barrier_ms : BARRIER_MS) * 1000000L;
    dl.tv_sec += dl.tv_nsec / 1000000000L;
    dl.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&sc->mu);
    sc->arrived[t][peer] = 1;
    pthread_cond_broadcast(&sc->cv);
    for (;;) {
        int all = 1;
        for (const cJSON *v = live ? live->child : NULL; v; v = v->next)
            all &= sc->arrived[t][(int)v->valuedouble];
        if (all || sc->has_decision[t] || pthread_cond_timedwait(&sc->cv, &sc->mu, &dl) != 0)
            break;
    }
    if (!sc->has_decision[t]) {
        sc->has_decision[t] = 1;
        for (const cJSON *v = live ? live->child : NULL; v; v = v->next)
            sc->decided[t][(int)v->valuedouble] = sc->arrived[t][(int)v->valuedouble];
        pthread_cond_broadcast(&sc->cv);
    }
    cJSON *c = cJSON_AddObjectToObject(resp, FIELD_CONTEXT);
    cJSON *now = cJSON_AddArrayToObject(c, FIELD_LIVE);
    cJSON *ex = NULL;
    if (!sc->decided[t][peer])
        cJSON_AddBoolToObject(resp, FIELD_SELF_EXCLUDED, 1);
    for (const cJSON *v = live ? live->child : NULL; v; v = v->next) {
        int q = (int)v->valuedouble;
        if (sc->decided[t][q]) {
            cJSON_AddItemToArray(now, cJSON_CreateNumber(q));
            continue;
        }
        if (!ex)
            ex = cJSON_AddArrayToObject(resp, FIELD_EXCLUDED);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, FIELD_PEER, q);
        cJSON_AddStringToObject(e, FIELD_REASON, "missed the barrier");
        cJSON_AddItemToArray(ex, e);
    }
    pthread_mutex_unlock(&sc->mu);
    cJSON_Delete(live);
}

/* What every fake step answers unless the scenario says otherwise. */
static spStatus answer_Default(scenario *sc, const char *step, int peer, long t, const cJSON *req,
                               cJSON *resp)
{
    cJSON *tm = cJSON_AddObjectToObject(resp, FIELD_TIMINGS);
    cJSON_AddNumberToObject(tm, FIELD_COMPUTE_MS, 1);
    cJSON *b = cJSON_AddObjectToObject(resp, FIELD_BYTES);
    cJSON_AddNumberToObject(b, FIELD_BYTES_IN, 100);
    cJSON_AddNumberToObject(b, FIELD_BYTES_OUT, 50);
    if (strcmp(step, "gradient") == 0) {
        cJSON_AddNumberToObject(resp, FIELD_LOSS, 1.0);
        cJSON *c = cJSON_AddObjectToObject(resp, FIELD_CONTEXT);
        cJSON_AddNumberToObject(c, "grad_t", (double)get_Long(req, FIELD_ITERATION, -1));
    }
    if (strcmp(step, "barrier") == 0)
        barrier_Wait(sc, peer, t, req, resp);
    if (strcmp(step, "update") == 0)
        cJSON_AddBoolToObject(resp, FIELD_IN_DB, 1);
    return SP_OK;
}

static spStatus fake_Call(const invoker *v, const char *step, const cJSON *req, cJSON **out)
{
    scenario *sc = v->ctx;
    int peer = (int)get_Long(req, FIELD_PEER, -1);
    long t = get_Long(req, FIELD_ITERATION, -1);
    int m = (int)get_Long(req, FIELD_M, 0);
    cJSON *resp = cJSON_CreateObject();
    pthread_mutex_lock(&sc->mu);
    sc->in_flight++;
    int n = 0, s = step_Index(step);
    if (s >= 0 && peer >= 0 && peer < MAXW && t >= 0 && t < MAXT) {
        n = ++sc->calls[s][peer][t];
        if (s == S_SUPERVISOR)
            sc->leader_calls[t] = peer + 1;
        if (s == S_BARRIER) {
            sc->joiners_seen[peer][t] |= cJSON_GetObjectItemCaseSensitive(req, FIELD_JOINERS) != NULL;
            sc->live_len[peer][t] = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(req, FIELD_LIVE));
            sc->loss_seen[peer][t] = cJSON_GetObjectItemCaseSensitive(req, FIELD_LOSS)
                                         ? cJSON_GetObjectItemCaseSensitive(req, FIELD_LOSS)->valuedouble
                                         : -1;
        }
        if (s == S_UPDATE)
            sc->context_seen[peer][t] = get_Long(req, "grad_t", -1) == t;
        if (s == S_MINIBATCH)
            sc->stale_context[peer][t] = cJSON_GetObjectItemCaseSensitive(req, "grad_t") != NULL;
    }
    if (strcmp(step, "evaluate") == 0 && sc->evaluations < 16)
        sc->eval_epochs[sc->evaluations++] = (int)get_Long(req, FIELD_EPOCH, 0);
    if (strcmp(step, "join") == 0)
        sc->joins++;
    if (strcmp(step, "rejoin") == 0) {
        sc->rejoins++;
        sc->rejoin_at = t;
        sc->rejoin_source = (int)get_Long(req, FIELD_SOURCE, -1);
    }
    pthread_mutex_unlock(&sc->mu);

    spStatus st = SP_OK;
    if (strcmp(step, "evaluate") == 0) {
        cJSON_AddNumberToObject(resp, FIELD_ACCURACY, 0.5 + 0.1 * (double)get_Long(req, FIELD_EPOCH, 0));
        cJSON_AddNumberToObject(resp, FIELD_LOSS, 0.25);
    } else if (strcmp(step, "join") == 0) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(req, "action");
        if (cJSON_IsString(a) && strcmp(a->valuestring, "challenge") == 0)
            cJSON_AddStringToObject(resp, "nonce", "00112233");
        else
            cJSON_AddStringToObject(resp, FIELD_TICKET, "ticket-1");
    } else if (strcmp(step, "rejoin") == 0) {
        cJSON_AddNumberToObject(resp, FIELD_RESTORED_APPLIED, 2);
    } else {
        st = sc->fn ? sc->fn(sc, step, peer, t, m, n, req, resp) : SP_OK;
        if (st == SP_OK)
            answer_Default(sc, step, peer, t, req, resp);
    }
    pthread_mutex_lock(&sc->mu);
    sc->in_flight--;
    pthread_mutex_unlock(&sc->mu);
    if (st) {
        cJSON_Delete(resp);
        return sp_Error(st, "fake %s failed for peer %d at %ld", step, peer, t);
    }
    *out = resp;
    return SP_OK;
}

static const invoke_transport fake_transport = {"fake", fake_Call, NULL};

/* ---- hooks --------------------------------------------------------------- */

static void hook_Member(void *ctx, int w, int in_job)
{
    scenario *sc = ctx;
    pthread_mutex_lock(&sc->mu);
    sc->member_events[w][in_job]++;
    pthread_mutex_unlock(&sc->mu);
}

static int hook_PeerUp(void *ctx, int w)
{
    (void)w;
    scenario *sc = ctx;
    pthread_mutex_lock(&sc->mu);
    int up = ++sc->peer_up_polls > sc->peer_up_after;
    pthread_mutex_unlock(&sc->mu);
    return up;
}

/* At the hold every worker finished iteration t-1 and none began t. */
static void hook_Hold(void *ctx, long t)
{
    scenario *sc = ctx;
    pthread_mutex_lock(&sc->mu);
    int ok = sc->in_flight == 0 && t > 0;
    for (int w = 0; w < sc->workers; w++)
        ok &= sc->calls[S_MINIBATCH][w][t] == 0 && sc->calls[S_UPDATE][w][t - 1] == 1;
    sc->held_ok = ok;
    pthread_mutex_unlock(&sc->mu);
}

static void sleep_Ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- running a job ------------------------------------------------------- */

static const arch_step fake_table[] = {
    {"minibatch", FAN_MINIBATCH, CAT_COMPUTE}, {"gradient", FAN_MINIBATCH, CAT_COMPUTE},
    {"barrier", FAN_WORKER, CAT_SYNC},         {"supervisor", FAN_LEADER, CAT_SYNC},
    {"update", FAN_WORKER, CAT_UPDATE},
};

typedef struct {
    scenario sc;
    job_config job;
    arch_def arch;
    invoker inv;
    exec_hooks hooks;
    exec_plan plan;
    train_result res;
    cJSON *base;
    spStatus st;
    char err[1024];
} run;

static run *run_New(int workers, int minibatches, int epochs, long iters, behaviour fn)
{
    run *r = calloc(1, sizeof *r);
    pthread_mutex_init(&r->sc.mu, NULL);
    pthread_cond_init(&r->sc.cv, NULL);
    r->sc.fn = fn;
    r->sc.workers = workers;
    job_Defaults(&r->job);
    snprintf(r->job.id, sizeof r->job.id, "fake");
    r->job.workers = workers;
    r->job.minibatches = minibatches;
    r->job.epochs = epochs;
    r->job.batch = 4;
    r->arch = (arch_def){.kind = ARCH_SPIRT, .steps = fake_table,
                         .n_steps = (int)(sizeof fake_table / sizeof fake_table[0]),
                         .tolerates_failures = 1};
    r->inv = (invoker){.transport = &fake_transport, .ctx = &r->sc, .timeout_ms = 1000,
                       .retries = 2};
    r->base = cJSON_CreateObject();
    cJSON *job = cJSON_AddObjectToObject(r->base, FIELD_JOB);
    cJSON_AddStringToObject(job, "id", "fake");
    r->hooks = (exec_hooks){.ctx = &r->sc, .hold_at = -1, .member = hook_Member};
    r->plan = (exec_plan){.job = &r->job, .arch = &r->arch, .inv = &r->inv, .base = r->base,
                          .iters_per_epoch = iters, .hooks = &r->hooks};
    r->res.details = cJSON_CreateObject();
    r->res.history = cJSON_CreateArray();
    return r;
}

static void run_Go(run *r)
{
    r->st = executor_Run(&r->plan, &r->res);
    snprintf(r->err, sizeof r->err, "%s", r->st ? sp_LastError() : "");
}

static void run_Free(run *r)
{
    cJSON_Delete(r->base);
    train_ResultFree(&r->res);
    pthread_mutex_destroy(&r->sc.mu);
    pthread_cond_destroy(&r->sc.cv);
    free(r);
}

static const cJSON *detail(const run *r, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(r->res.details, k);
}

static int array_Has(const cJSON *a, int v)
{
    for (const cJSON *e = cJSON_IsArray(a) ? a->child : NULL; e; e = e->next)
        if (cJSON_IsNumber(e) && (int)e->valuedouble == v)
            return 1;
    return 0;
}

static int calls_Of(const run *r, int s, int w, long from, long to)
{
    int n = 0;
    for (long t = from; t < to; t++)
        n += r->sc.calls[s][w][t] > 0;
    return n;
}

/* ---- the tests ----------------------------------------------------------- */

/* Every worker runs every step of every iteration once, minibatch steps M
 * times; the leader step once per iteration by worker 0; one evaluation per
 * epoch; context reaches later steps of the same iteration only. */
static void runs_every_step(void **state)
{
    (void)state;
    run *r = run_New(3, 2, 2, 4, NULL);
    run_Go(r);
    assert_int_equal(r->st, SP_OK);
    for (int w = 0; w < 3; w++)
        for (long t = 0; t < 8; t++) {
            assert_int_equal(r->sc.calls[S_MINIBATCH][w][t], 2);
            assert_int_equal(r->sc.calls[S_GRADIENT][w][t], 2);
            assert_int_equal(r->sc.calls[S_BARRIER][w][t], 1);
            assert_int_equal(r->sc.calls[S_UPDATE][w][t], 1);
            assert_true(r->sc.context_seen[w][t]);
            assert_false(r->sc.stale_context[w][t]);
            assert_true(r->sc.loss_seen[w][t] == 1.0);
            assert_int_equal(r->sc.live_len[w][t], 3);
        }
    for (long t = 0; t < 8; t++)
        assert_int_equal(r->sc.leader_calls[t], 1); /* worker 0 */
    assert_int_equal(r->sc.evaluations, 2);
    assert_int_equal(r->sc.eval_epochs[0], 1);
    assert_int_equal(r->sc.eval_epochs[1], 2);
    assert_int_equal(r->res.iterations, 8);
    assert_int_equal(r->res.epochs_run, 2);
    assert_true(r->res.test_accuracy > 0.69f && r->res.test_accuracy < 0.71f);
    assert_int_equal(r->res.samples, 8L * 3 * 2 * 4);
    /* calls: (2+2+1+1) per worker-iteration plus one supervisor per iteration */
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(r->res.details, "invocations")->valuedouble,
                     8 * (3 * 6 + 1));
    const cJSON *steps = detail(r, "steps");
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(steps, "gradient");
    /* 2 gradient calls per worker-iteration, 150 bytes each */
    assert_true(cJSON_GetObjectItemCaseSensitive(g, FIELD_BYTES)->valuedouble == 300.0);
    assert_string_equal(cJSON_GetStringValue(detail(r, "transport")), "fake");
    assert_string_equal(cJSON_GetStringValue(detail(r, "tensor_math")), "in-database");
    assert_int_equal(cJSON_GetArraySize(detail(r, "failed_peers")), 0);
    assert_int_equal(cJSON_GetArraySize(detail(r, "live_at_end")), 3);
    for (int w = 0; w < 3; w++)
        assert_int_equal(r->sc.member_events[w][1], 1);
    run_Free(r);
}

/* Worker 0's gradient keeps failing (retryable) at iteration 2: it is
 * dropped after its retries, the leader step moves to worker 1, the job
 * goes on and the report names the failure. */
static spStatus fail_W0_T2(scenario *sc, const char *step, int peer, long t, int m, int n,
                           const cJSON *req, cJSON *resp)
{
    (void)sc, (void)m, (void)n, (void)req, (void)resp;
    return strcmp(step, "gradient") == 0 && peer == 0 && t == 2 ? SP_ERR_UNAVAILABLE : SP_OK;
}

static void leader_moves_when_first_fails(void **state)
{
    (void)state;
    run *r = run_New(3, 1, 1, 6, fail_W0_T2);
    run_Go(r);
    assert_int_equal(r->st, SP_OK);
    assert_int_equal(r->sc.calls[S_GRADIENT][0][2], 3); /* 1 + 2 retries */
    assert_int_equal(calls_Of(r, S_GRADIENT, 0, 3, 6), 0);
    assert_int_equal(r->sc.leader_calls[1], 1);
    for (long t = 3; t < 6; t++)
        assert_int_equal(r->sc.leader_calls[t], 2); /* worker 1 */
    const cJSON *f = detail(r, "failed_peers");
    assert_int_equal(cJSON_GetArraySize(f), 1);
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(f->child, "peer")->valuedouble, 0);
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(f->child, "iteration")->valuedouble, 2);
    assert_false(array_Has(detail(r, "live_at_end"), 0));
    assert_true(array_Has(detail(r, "live_at_end"), 1));
    assert_int_equal(r->sc.member_events[0][0], 1);
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(
                         cJSON_GetObjectItemCaseSensitive(detail(r, "steps"), "gradient"),
                         "retries")->valuedouble, 2);
    /* 4 iterations were left for worker 0 (2..5) */
    assert_int_equal((int)detail(r, "iterations_lost")->valuedouble, 4);
    run_Free(r);
}

/* An architecture that cannot lose a worker stops the job, naming it. */
static void intolerant_arch_stops(void **state)
{
    (void)state;
    run *r = run_New(3, 1, 1, 6, fail_W0_T2);
    r->arch.tolerates_failures = 0;
    run_Go(r);
    assert_int_equal(r->st, SP_ERR_UNAVAILABLE);
    assert_non_null(strstr(r->err, "worker 0 at iteration 2"));
    run_Free(r);
}

/* A non-retryable error (a bad request) is not retried and is fatal even
 * where failures are tolerated: dropping the worker would not fix it. */
static spStatus invalid_W1_T1(scenario *sc, const char *step, int peer, long t, int m, int n,
                              const cJSON *req, cJSON *resp)
{
    (void)sc, (void)m, (void)n, (void)req, (void)resp;
    return strcmp(step, "update") == 0 && peer == 1 && t == 1 ? SP_ERR_INVALID : SP_OK;
}

static void non_retryable_is_fatal(void **state)
{
    (void)state;
    run *r = run_New(3, 1, 1, 6, invalid_W1_T1);
    run_Go(r);
    assert_int_equal(r->st, SP_ERR_INVALID);
    assert_int_equal(r->sc.calls[S_UPDATE][1][1], 1);
    assert_non_null(strstr(r->err, "worker 1 at iteration 1"));
    run_Free(r);
}

/* Two timeouts, then an answer: the retries hide it and are counted. */
static spStatus flaky_update(scenario *sc, const char *step, int peer, long t, int m, int n,
                             const cJSON *req, cJSON *resp)
{
    (void)sc, (void)m, (void)req, (void)resp;
    return strcmp(step, "update") == 0 && peer == 1 && t == 1 && n <= 2 ? SP_ERR_TIMEOUT : SP_OK;
}

static void retries_then_succeeds(void **state)
{
    (void)state;
    run *r = run_New(2, 1, 1, 3, flaky_update);
    run_Go(r);
    assert_int_equal(r->st, SP_OK);
    assert_int_equal(r->sc.calls[S_UPDATE][1][1], 3);
    assert_int_equal(cJSON_GetArraySize(detail(r, "failed_peers")), 0);
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(
                         cJSON_GetObjectItemCaseSensitive(detail(r, "steps"), "update"),
                         "retries")->valuedouble, 2);
    run_Free(r);
}

/* join is not idempotent (verify consumes its nonce): never replayed. */
static spStatus unavailable(scenario *sc, const char *step, int peer, long t, int m, int n,
                            const cJSON *req, cJSON *resp)
{
    (void)sc, (void)step, (void)peer, (void)t, (void)m, (void)n, (void)req, (void)resp;
    return SP_ERR_UNAVAILABLE;
}

static spStatus join_Unavailable(const invoker *v, const char *step, const cJSON *req, cJSON **out)
{
    scenario *sc = v->ctx;
    (void)req, (void)out;
    pthread_mutex_lock(&sc->mu);
    sc->joins += strcmp(step, "join") == 0;
    sc->rejoins += strcmp(step, "rejoin") == 0;
    pthread_mutex_unlock(&sc->mu);
    return sp_Error(SP_ERR_UNAVAILABLE, "down");
}

static void join_is_not_replayed(void **state)
{
    (void)state;
    run *r = run_New(1, 1, 1, 1, unavailable);
    const invoke_transport tp = {"down", join_Unavailable, NULL};
    r->inv.transport = &tp;
    cJSON *resp = NULL;
    int attempts = 0;
    assert_int_equal(invoker_Call(&r->inv, "join", r->base, &resp, &attempts), SP_ERR_UNAVAILABLE);
    assert_int_equal(attempts, 1);
    assert_int_equal(invoker_Call(&r->inv, "rejoin", r->base, &resp, &attempts), SP_ERR_UNAVAILABLE);
    assert_int_equal(attempts, 3);
    assert_int_equal(r->sc.joins, 1);
    assert_int_equal(r->sc.rejoins, 3);
    assert_int_equal(invoker_Call(&r->inv, "no-such-step", r->base, &resp, NULL), SP_ERR_NOT_FOUND);
    run_Free(r);
}

/* Peer 2 stalls at iteration 3 (its barrier times out before it
 * arrives): the others' barrier excludes it, they carry on with the
 * narrower live set, the exclusion is recorded once. Its database answers
 * again: it re-authenticates, rejoins at the iteration after the furthest
 * live worker's with worker 0's model, the others' barriers at that
 * iteration name it as a joiner, and it runs to the end. */
static spStatus stall_P2_T3(scenario *sc, const char *step, int peer, long t, int m, int n,
                            const cJSON *req, cJSON *resp)
{
    (void)sc, (void)m, (void)n, (void)req, (void)resp;
    if (strcmp(step, "update") == 0)
        sleep_Ms(10); /* the others must still be running when peer 2 is back */
    return strcmp(step, "barrier") == 0 && t == 3 && peer == 2 ? SP_ERR_TIMEOUT : SP_OK;
}

static void exclusion_and_rejoin(void **state)
{
    (void)state;
    run *r = run_New(3, 1, 1, 40, stall_P2_T3);
    r->plan.rejoin = 1;
    r->hooks.peer_up = hook_PeerUp;
    r->sc.peer_up_after = 1;
    run_Go(r);
    assert_int_equal(r->st, SP_OK);
    /* excluded by both others' barriers, recorded once */
    const cJSON *ex = detail(r, "exclusions");
    assert_int_equal(cJSON_GetArraySize(ex), 1);
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(ex->child, "peer")->valuedouble, 2);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ex->child, "reason")),
                        "missed the barrier");
    assert_int_equal(r->sc.live_len[0][4], 2);
    /* rejoined: authenticated, copied worker 0's model at J > 3 */
    assert_true(r->sc.joins >= 2); /* challenge + verify */
    assert_int_equal(r->sc.rejoins, 1);
    long J = r->sc.rejoin_at;
    assert_true(J > 3 && J < 40);
    assert_int_equal(r->sc.rejoin_source, 0);
    assert_true(r->sc.joiners_seen[0][J]);
    assert_true(r->sc.joiners_seen[1][J]);
    assert_int_equal(r->sc.live_len[2][J], 3);
    assert_int_equal(calls_Of(r, S_UPDATE, 2, 3, J), 0);
    assert_int_equal(calls_Of(r, S_UPDATE, 2, J, 40), (int)(40 - J));
    const cJSON *rj = detail(r, "rejoins");
    assert_int_equal(cJSON_GetArraySize(rj), 1);
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(rj->child, "iteration")->valuedouble, (int)J);
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(rj->child, "restored_applied")->valuedouble, 2);
    assert_int_equal((int)detail(r, "iterations_lost")->valuedouble, (int)(J - 3));
    assert_true(array_Has(detail(r, "live_at_end"), 2));
    assert_int_equal(r->sc.member_events[2][0], 1);
    assert_int_equal(r->sc.member_events[2][1], 2);
    run_Free(r);
}

/* Peer 2 is slow but alive at iteration 5: the others' barriers gave up on
 * it and decided {0,1}. Its own barrier comes late, answers with that
 * decision and says it was left out: the executor turns that into the
 * failure path's standby and rejoin - without calling it a failure - so it
 * never applies iteration 5 with a live set of its own, re-authenticates,
 * copies worker 0's model and trains to the end with the others. */
static spStatus slow_P2_T5(scenario *sc, const char *step, int peer, long t, int m, int n,
                           const cJSON *req, cJSON *resp)
{
    (void)sc, (void)m, (void)n, (void)req, (void)resp;
    if (strcmp(step, "update") == 0)
        sleep_Ms(10); /* the others must still be running when peer 2 is back */
    if (strcmp(step, "barrier") == 0 && peer == 2 && t == 5)
        sleep_Ms(2 * BARRIER_MS);
    return SP_OK;
}

static void excluded_alive_peer_rejoins(void **state)
{
    (void)state;
    run *r = run_New(3, 1, 1, 40, slow_P2_T5);
    r->plan.rejoin = 1;
    r->hooks.peer_up = hook_PeerUp;
    run_Go(r);
    assert_int_equal(r->st, SP_OK);
    assert_int_equal(r->sc.calls[S_BARRIER][2][5], 1);  /* answered, not retried */
    assert_int_equal(r->sc.calls[S_UPDATE][2][5], 0);   /* left out: no update of its own */
    assert_int_equal(cJSON_GetArraySize(detail(r, "failed_peers")), 0);
    const cJSON *ex = detail(r, "exclusions");
    assert_int_equal(cJSON_GetArraySize(ex), 1);
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(ex->child, "peer")->valuedouble, 2);
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(ex->child, "iteration")->valuedouble, 5);
    assert_int_equal(r->sc.rejoins, 1);
    long J = r->sc.rejoin_at;
    assert_true(J > 5 && J < 40);
    assert_true(r->sc.joins >= 2);
    assert_int_equal(r->sc.rejoin_source, 0);
    assert_int_equal(calls_Of(r, S_UPDATE, 2, J, 40), (int)(40 - J));
    const cJSON *rj = detail(r, "rejoins");
    assert_int_equal(cJSON_GetArraySize(rj), 1);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(rj->child, "after")),
                        "exclusion");
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(rj->child, "failed_at")->valuedouble, 5);
    assert_true(array_Has(detail(r, "live_at_end"), 2));
    assert_int_equal(r->sc.member_events[2][0], 1);
    assert_int_equal(r->sc.member_events[2][1], 2);
    run_Free(r);
}

/* Left out with no way back (no rejoin configured): it stays out, the job
 * goes on with the others and that is still no failure. */
static void excluded_peer_without_rejoin_stays_out(void **state)
{
    (void)state;
    run *r = run_New(3, 1, 1, 10, slow_P2_T5);
    run_Go(r);
    assert_int_equal(r->st, SP_OK);
    assert_int_equal(r->sc.rejoins, 0);
    assert_int_equal(cJSON_GetArraySize(detail(r, "failed_peers")), 0);
    assert_false(array_Has(detail(r, "live_at_end"), 2));
    assert_int_equal(calls_Of(r, S_MINIBATCH, 2, 6, 10), 0);
    run_Free(r);
}

/* Waits that ran out are reported, none silently: a barrier's own answer
 * ("timeouts"), and a call that timed out and was retried - the retry hid
 * it from the run's outcome, not from the report. The spread of iteration
 * times shows the slow one. */
static spStatus timeouts_W1(scenario *sc, const char *step, int peer, long t, int m, int n,
                            const cJSON *req, cJSON *resp)
{
    (void)sc, (void)m, (void)req;
    if (strcmp(step, "barrier") == 0 && peer == 1 && t == 2) {
        cJSON *l = cJSON_AddArrayToObject(resp, FIELD_TIMEOUTS);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, FIELD_WAIT, "avg");
        cJSON_AddNumberToObject(e, FIELD_DURATION_MS, 300);
        cJSON *who = cJSON_AddArrayToObject(e, FIELD_MEMBERS);
        cJSON_AddItemToArray(who, cJSON_CreateNumber(0));
        cJSON_AddItemToArray(l, e);
    }
    if (strcmp(step, "update") == 0 && peer == 1 && t == 4 && n == 1) {
        sleep_Ms(200);
        return SP_ERR_TIMEOUT;
    }
    return SP_OK;
}

static void timeouts_and_iteration_times_reported(void **state)
{
    (void)state;
    run *r = run_New(2, 1, 1, 6, timeouts_W1);
    /* The slow call (200 ms, then a retry after its backoff) must not be
     * taken for a missed barrier by the other worker, however loaded the
     * machine: here nobody is meant to miss one. */
    r->sc.barrier_ms = 5000;
    run_Go(r);
    assert_int_equal(r->st, SP_OK);
    const cJSON *to = detail(r, "timeouts");
    assert_int_equal(cJSON_GetArraySize(to), 2);
    int seen_barrier = 0, seen_call = 0;
    for (const cJSON *e = to->child; e; e = e->next) {
        const char *step = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "step"));
        int worker = (int)cJSON_GetObjectItemCaseSensitive(e, "worker")->valuedouble;
        long it = (long)cJSON_GetObjectItemCaseSensitive(e, "iteration")->valuedouble;
        double ms = cJSON_GetObjectItemCaseSensitive(e, "duration_ms")->valuedouble;
        assert_int_equal(worker, 1);
        if (strcmp(step, "barrier") == 0) {
            seen_barrier = 1;
            assert_int_equal(it, 2);
            assert_true(ms == 300);
            assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "wait")),
                                "avg");
            assert_true(array_Has(cJSON_GetObjectItemCaseSensitive(e, "members"), 0));
        } else {
            seen_call = 1;
            assert_string_equal(step, "update");
            assert_int_equal(it, 4);
            assert_true(ms >= 190);
            assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "retried")));
        }
    }
    assert_true(seen_barrier && seen_call);
    const cJSON *im = detail(r, "iteration_ms");
    double p50 = cJSON_GetObjectItemCaseSensitive(im, "p50")->valuedouble;
    double p99 = cJSON_GetObjectItemCaseSensitive(im, "p99")->valuedouble;
    double max = cJSON_GetObjectItemCaseSensitive(im, "max")->valuedouble;
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(im, "count")->valuedouble, 12);
    assert_true(p50 <= p99 && p99 <= max);
    assert_true(max >= 200);   /* worker 1's iteration 4 */
    assert_true(p50 < 200);
    run_Free(r);
}

/* Without rejoin configured a failed worker stays out. */
static void no_rejoin_without_hooks(void **state)
{
    (void)state;
    run *r = run_New(3, 1, 1, 8, stall_P2_T3);
    run_Go(r);
    assert_int_equal(r->st, SP_OK);
    assert_int_equal(r->sc.rejoins, 0);
    assert_false(array_Has(detail(r, "live_at_end"), 2));
    run_Free(r);
}

/* "leave" retires worker 2 after iteration 2 (not a failure); "stop" from
 * worker 0 at iteration 5 ends the job, whose final model is evaluated. */
static spStatus leave_and_stop(scenario *sc, const char *step, int peer, long t, int m, int n,
                               const cJSON *req, cJSON *resp)
{
    (void)sc, (void)m, (void)n, (void)req;
    if (strcmp(step, "update") == 0 && peer == 2 && t == 2)
        cJSON_AddBoolToObject(resp, FIELD_LEAVE, 1);
    if (strcmp(step, "supervisor") == 0 && t == 5)
        cJSON_AddBoolToObject(resp, FIELD_STOP, 1);
    return SP_OK;
}

static void leave_and_stop_flags(void **state)
{
    (void)state;
    run *r = run_New(3, 1, 2, 10, leave_and_stop);
    run_Go(r);
    assert_int_equal(r->st, SP_OK);
    assert_int_equal(calls_Of(r, S_MINIBATCH, 2, 3, 20), 0);
    const cJSON *d = detail(r, "departed_workers");
    assert_int_equal(cJSON_GetArraySize(d), 1);
    assert_int_equal((int)cJSON_GetObjectItemCaseSensitive(d->child, "worker")->valuedouble, 2);
    assert_int_equal(cJSON_GetArraySize(detail(r, "failed_peers")), 0);
    /* stopped at 5: nothing of iteration 7 on, and the final model evaluated once */
    assert_int_equal(calls_Of(r, S_MINIBATCH, 0, 7, 20), 0);
    assert_int_equal(r->res.iterations, 6);
    assert_int_equal(r->sc.evaluations, 1);
    assert_int_equal(r->sc.eval_epochs[0], 1);
    run_Free(r);
}

/* The training loss under the target stops the job at an epoch end. */
static void target_loss_stops_at_epoch_end(void **state)
{
    (void)state;
    run *r = run_New(2, 1, 5, 3, NULL);
    r->job.target_loss = 10.0f;
    run_Go(r);
    assert_int_equal(r->st, SP_OK);
    assert_int_equal(r->res.iterations, 3);
    assert_int_equal(r->sc.evaluations, 1);
    run_Free(r);
}

/* Fault injection's hold: every live worker waits at the start of the
 * iteration and on_hold runs once with no step in flight. */
static void hold_runs_with_nothing_in_flight(void **state)
{
    (void)state;
    run *r = run_New(3, 2, 1, 6, NULL);
    r->hooks.hold_at = 3;
    r->hooks.on_hold = hook_Hold;
    run_Go(r);
    assert_int_equal(r->st, SP_OK);
    assert_true(r->sc.held_ok);
    run_Free(r);
}

/* Plans the executor cannot run are refused before anything starts. */
static void bad_plans_refused(void **state)
{
    (void)state;
    run *r = run_New(3, 1, 1, 0, NULL);
    run_Go(r);
    assert_int_equal(r->st, SP_ERR_INVALID);
    r->plan.iters_per_epoch = 2;
    r->job.minibatches = 1000;
    run_Go(r);
    assert_int_equal(r->st, SP_ERR_INVALID);
    assert_int_equal(r->sc.calls[S_MINIBATCH][0][0], 0);
    r->job.minibatches = 1;
    int down[3] = {1, 1, 1};
    r->plan.down = down;
    run_Go(r);
    assert_int_equal(r->st, SP_ERR_UNAVAILABLE);
    run_Free(r);
}

/* A stop requested from a signal handler ends the job as "interrupted"
 * (last: the request is process-wide and stays set). */
static spStatus request_stop(scenario *sc, const char *step, int peer, long t, int m, int n,
                             const cJSON *req, cJSON *resp)
{
    (void)sc, (void)peer, (void)m, (void)n, (void)req, (void)resp;
    if (strcmp(step, "update") == 0 && t == 2)
        executor_RequestStop();
    return SP_OK;
}

static void stop_request_interrupts(void **state)
{
    (void)state;
    run *r = run_New(2, 1, 1, 50, request_stop);
    run_Go(r);
    assert_int_equal(r->st, SP_ERR_UNAVAILABLE);
    assert_non_null(strstr(r->err, "interrupted"));
    assert_int_equal(calls_Of(r, S_MINIBATCH, 0, 4, 50), 0);
    run_Free(r);
}

int main(void)
{
    /* join_Authenticate derives the peer's key from the master key. */
    setenv("SPIRT_AUTH_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(runs_every_step),
        cmocka_unit_test(leader_moves_when_first_fails),
        cmocka_unit_test(intolerant_arch_stops),
        cmocka_unit_test(non_retryable_is_fatal),
        cmocka_unit_test(retries_then_succeeds),
        cmocka_unit_test(join_is_not_replayed),
        cmocka_unit_test(exclusion_and_rejoin),
        cmocka_unit_test(no_rejoin_without_hooks),
        cmocka_unit_test(excluded_alive_peer_rejoins),
        cmocka_unit_test(excluded_peer_without_rejoin_stays_out),
        cmocka_unit_test(timeouts_and_iteration_times_reported),
        cmocka_unit_test(leave_and_stop_flags),
        cmocka_unit_test(target_loss_stops_at_epoch_end),
        cmocka_unit_test(hold_runs_with_nothing_in_flight),
        cmocka_unit_test(bad_plans_refused),
        cmocka_unit_test(stop_request_interrupts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
