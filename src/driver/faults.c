/* faults.c - kill a peer's redis-server at an iteration, restart it later. */
#include "driver/faults.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"

struct faults {
    const job_config *job;
    runner *run;
    const train_observer *obs;
    double t0;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* monotonic */
    int killed, stopping;
    double killed_at;       /* clock_Now() of the kill */
    pthread_t th;
    int thread_started;
    cJSON *events;
};

static void event_Add(faults *f, const char *kind, long t, spStatus st, const char *err)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "kind", kind);
    cJSON_AddNumberToObject(e, "peer", f->job->kill_peer);
    if (t >= 0)
        cJSON_AddNumberToObject(e, "iteration", (double)t);
    cJSON_AddNumberToObject(e, "at_s", clock_Now() - f->t0);
    cJSON_AddBoolToObject(e, "ok", st == SP_OK);
    if (st)
        cJSON_AddStringToObject(e, "error", err);
    cJSON_AddItemToArray(f->events, e);
}

/* Waits for the kill, then restart_after seconds (unless stopped). */
static int restart_Wait(faults *f)
{
    pthread_mutex_lock(&f->mu);
    while (!f->killed && !f->stopping)
        pthread_cond_wait(&f->cv, &f->mu);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    double s = f->job->restart_after_s;
    until.tv_sec += (time_t)s;
    until.tv_nsec += (long)((s - (double)(long)s) * 1e9);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (!f->stopping && pthread_cond_timedwait(&f->cv, &f->mu, &until) == 0)
        ;
    int go = !f->stopping;
    pthread_mutex_unlock(&f->mu);
    return go;
}

static void *restart_Main(void *arg)
{
    faults *f = arg;
    if (!restart_Wait(f))
        return NULL;
    spStatus st = runner_RestartPeer(f->run, f->job->kill_peer);
    char err[512];
    snprintf(err, sizeof err, "%s", st ? sp_LastError() : "");
    pthread_mutex_lock(&f->mu);
    event_Add(f, "restart-peer", -1, st, err);
    pthread_mutex_unlock(&f->mu);
    if (st)
        train_Notify(f->obs, "fault injection: restarting peer %d's redis-server failed: %s",
                     f->job->kill_peer, err);
    else
        train_Notify(f->obs, "fault injection: peer %d's redis-server restarted from its AOF "
                     "after %.1f s", f->job->kill_peer, clock_Now() - f->killed_at);
    /* Stay alive until the end of the run: the restarted server is our
     * child and dies with this thread. */
    pthread_mutex_lock(&f->mu);
    while (!f->stopping)
        pthread_cond_wait(&f->cv, &f->mu);
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

static void faults_Free(faults *f)
{
    cJSON_Delete(f->events);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

spStatus faults_Start(const job_config *job, runner *r, const train_observer *obs,
                      faults **out)
{
    *out = NULL;
    if (job->kill_peer < 0)
        return SP_OK;
    if (!r)
        return sp_Error(SP_ERR_INVALID, "--kill-peer needs the local runner (it SIGKILLs a "
                        "redis-server it started), not --peers/--shared-redis/--nats");
    if (job->kill_peer >= r->n_peers)
        return sp_Error(SP_ERR_INVALID, "--kill-peer %d: the run has %d peer database(s)",
                        job->kill_peer, r->n_peers);
    faults *f = calloc(1, sizeof *f);
    if (!f)
        return sp_Error(SP_ERR_NOMEM, "out of memory");
    f->job = job;
    f->run = r;
    f->obs = obs;
    f->t0 = clock_Now();
    f->events = cJSON_CreateArray();
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&f->mu, NULL);
    if (job->restart_after_s >= 0) {
        if (pthread_create(&f->th, NULL, restart_Main, f) != 0) {
            faults_Free(f);
            return sp_Error(SP_ERR_NOMEM, "cannot start the fault injection thread");
        }
        f->thread_started = 1;
    }
    *out = f;
    return SP_OK;
}

long faults_At(const faults *f)
{
    return f ? f->job->kill_at_iteration : -1;
}

void faults_Inject(faults *f, long t)
{
    if (!f)
        return;
    int w = f->job->kill_peer;
    pthread_mutex_lock(&f->mu);
    if (f->killed) {
        pthread_mutex_unlock(&f->mu);
        return;
    }
    spStatus st = runner_KillPeer(f->run, w);
    char err[512];
    snprintf(err, sizeof err, "%s", st ? sp_LastError() : "");
    f->killed = 1;
    f->killed_at = clock_Now();
    event_Add(f, "kill-peer", t, st, err);
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    if (st)
        train_Notify(f->obs, "fault injection: cannot kill peer %d: %s", w, err);
    else
        train_Notify(f->obs, "fault injection: SIGKILLed peer %d's redis-server at iteration %ld",
                     w, t);
}

void faults_Stop(faults *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&f->mu);
    f->stopping = 1;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    if (f->thread_started)
        pthread_join(f->th, NULL);
    faults_Free(f);
}

cJSON *faults_Events(faults *f)
{
    if (!f)
        return cJSON_CreateArray();
    pthread_mutex_lock(&f->mu);
    cJSON *e = cJSON_Duplicate(f->events, 1);
    pthread_mutex_unlock(&f->mu);
    return e;
}
