/* liveness.c - probe threads that publish each live peer's heartbeat. */
#include "driver/liveness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sync/heartbeat.h"

/* A probe longer than this is a dead database, whatever the interval. */
#define LIVENESS_PROBE_MAX_MS 1000

typedef struct {
    liveness *l;
    int peer;
    pthread_t th;
    int started;
    /* guarded by l->mu */
    int member;
    int ok_streak;      /* consecutive successful probes */
    long beats;
} probe;

struct liveness {
    char job[64];
    sync_addr nats;
    store_addr *peers;
    int n_peers;
    int interval_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* monotonic clock: wakes the threads on stop */
    int stopping;
    pthread_mutex_t nats_mu;
    sync_conn *nc;      /* shared (libnats connections are thread-safe) */
    probe *probes;
};

/* The NATS connection, made on first need; NULL while NATS is away (the
 * connection itself reconnects forever once made). */
static sync_conn *nats_Get(liveness *l)
{
    sync_conn *c = NULL;
    if (pthread_mutex_trylock(&l->nats_mu) != 0)
        return NULL; /* another probe is connecting: skip this beat */
    if (!l->nc && sync_Connect(&l->nats, &l->nc) != SP_OK) {
        sp_ClearError();
        l->nc = NULL;
    }
    c = l->nc;
    pthread_mutex_unlock(&l->nats_mu);
    return c;
}

static int db_Probe(liveness *l, int peer, store **db)
{
    if (!*db && store_Connect(&l->peers[peer], db) != SP_OK) {
        sp_ClearError();
        *db = NULL;
        return 0;
    }
    if (store_Ping(*db) == SP_OK)
        return 1;
    /* A failed store connection stays dead: reconnect next round. */
    sp_ClearError();
    store_Destroy(*db);
    *db = NULL;
    return 0;
}

/* Sleeps one interval; returns 0 when the liveness is stopping. */
static int interval_Wait(liveness *l)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += l->interval_ms / 1000;
    until.tv_nsec += (long)(l->interval_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&l->mu);
    while (!l->stopping && pthread_cond_timedwait(&l->cv, &l->mu, &until) == 0)
        ;
    int go = !l->stopping;
    pthread_mutex_unlock(&l->mu);
    return go;
}

static void *probe_Main(void *arg)
{
    probe *p = arg;
    liveness *l = p->l;
    store *db = NULL;
    do {
        int up = db_Probe(l, p->peer, &db);
        pthread_mutex_lock(&l->mu);
        p->ok_streak = up ? p->ok_streak + 1 : 0;
        int beat = up && p->member;
        pthread_mutex_unlock(&l->mu);
        sync_conn *c = beat ? nats_Get(l) : NULL;
        if (c && sync_Heartbeat(c, l->job, p->peer) == SP_OK) {
            pthread_mutex_lock(&l->mu);
            p->beats++;
            pthread_mutex_unlock(&l->mu);
        } else {
            sp_ClearError();
        }
    } while (interval_Wait(l));
    store_Destroy(db);
    return NULL;
}

static void liveness_Free(liveness *l)
{
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    pthread_mutex_destroy(&l->nats_mu);
    sync_Destroy(l->nc);
    free(l->peers);
    free(l->probes);
    free(l);
}

spStatus liveness_Start(const liveness_config *c, liveness **out)
{
    *out = NULL;
    if (!c || !c->job || !c->nats || !c->peers || c->n_peers < 1 || c->interval_ms <= 0)
        return sp_Error(SP_ERR_INVALID, "liveness: need a job, NATS, peers and an interval");
    liveness *l = calloc(1, sizeof *l);
    if (!l)
        return sp_Error(SP_ERR_NOMEM, "liveness: out of memory");
    snprintf(l->job, sizeof l->job, "%s", c->job);
    l->nats = *c->nats;
    l->n_peers = c->n_peers;
    l->interval_ms = c->interval_ms;
    l->peers = calloc((size_t)c->n_peers, sizeof *l->peers);
    l->probes = calloc((size_t)c->n_peers, sizeof *l->probes);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&l->mu, NULL);
    pthread_mutex_init(&l->nats_mu, NULL);
    if (!l->peers || !l->probes) {
        liveness_Free(l);
        return sp_Error(SP_ERR_NOMEM, "liveness: out of memory");
    }
    int probe_ms = c->interval_ms < LIVENESS_PROBE_MAX_MS ? c->interval_ms : LIVENESS_PROBE_MAX_MS;
    for (int i = 0; i < c->n_peers; i++) {
        l->peers[i] = c->peers[i];
        l->peers[i].timeout_ms = probe_ms;
        l->probes[i] = (probe){.l = l, .peer = i};
    }
    for (int i = 0; i < c->n_peers; i++) {
        if (pthread_create(&l->probes[i].th, NULL, probe_Main, &l->probes[i]) != 0) {
            liveness_Stop(l);
            return sp_Error(SP_ERR_NOMEM, "liveness: cannot start probe threads");
        }
        l->probes[i].started = 1;
    }
    *out = l;
    return SP_OK;
}

void liveness_SetMember(liveness *l, int peer, int member)
{
    if (!l || peer < 0 || peer >= l->n_peers)
        return;
    pthread_mutex_lock(&l->mu);
    l->probes[peer].member = member;
    pthread_mutex_unlock(&l->mu);
}

int liveness_DbUp(liveness *l, int peer)
{
    if (!l || peer < 0 || peer >= l->n_peers)
        return 0;
    pthread_mutex_lock(&l->mu);
    int up = l->probes[peer].ok_streak >= 2;
    pthread_mutex_unlock(&l->mu);
    return up;
}

long liveness_Beats(liveness *l, int peer)
{
    if (!l || peer < 0 || peer >= l->n_peers)
        return 0;
    pthread_mutex_lock(&l->mu);
    long n = l->probes[peer].beats;
    pthread_mutex_unlock(&l->mu);
    return n;
}

void liveness_Stop(liveness *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    l->stopping = 1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->n_peers; i++)
        if (l->probes[i].started)
            pthread_join(l->probes[i].th, NULL);
    liveness_Free(l);
}
