/* heartbeat.c - core-NATS heartbeats and a watcher of who is still alive. */
#include "sync/heartbeat.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "sync/sync_internal.h"

#define HB_DESTROY_WAIT_MS 5000

typedef struct {
    int member;
    long long last_ms;
} hb_seen;

struct hb_watcher {
    sync_conn *c;
    natsSubscription *sub;
    int timeout_ms;
    pthread_mutex_t mu;    /* guards seen/n/cap/done */
    pthread_cond_t done_cv;
    int done;              /* the handler can no longer run */
    hb_seen *seen;         /* unsorted: jobs have tens of members, not millions */
    int n, cap;
};

spStatus sync_Heartbeat(sync_conn *c, const char *job, int member)
{
    if (!c)
        return sp_Error(SP_ERR_INVALID, "sync_Heartbeat: no connection");
    if (member < 0)
        return sp_Error(SP_ERR_INVALID, "sync_Heartbeat: member %d is negative", member);
    char tok[SYNC_TOKEN_CAP], subj[SYNC_SUBJECT_CAP];
    spStatus r = sync_JobToken(job, tok, sizeof tok);
    if (r != SP_OK)
        return r;
    snprintf(subj, sizeof subj, "spirt.%s.hb.%d", tok, member);
    natsStatus s = natsConnection_Publish(c->nc, subj, NULL, 0);
    return s == NATS_OK ? SP_OK : sync_Fail(c, s, 0, "heartbeat");
}

static hb_seen *find(hb_watcher *w, int member)
{
    for (int i = 0; i < w->n; i++)
        if (w->seen[i].member == member)
            return &w->seen[i];
    return NULL;
}

/* Caller holds w->mu. A failed allocation just loses this beat; the next one
 * retries, and the member looks dead meanwhile, which is the safe side. */
static void note(hb_watcher *w, int member, long long now)
{
    hb_seen *e = find(w, member);
    if (!e) {
        if (w->n == w->cap) {
            int cap = w->cap ? 2 * w->cap : 16;
            hb_seen *grown = realloc(w->seen, (size_t)cap * sizeof *grown);
            if (!grown)
                return;
            w->seen = grown;
            w->cap = cap;
        }
        e = &w->seen[w->n++];
        e->member = member;
    }
    e->last_ms = now;
}

static void on_beat(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    hb_watcher *w = closure;
    int member = sync_SubjectMember(natsMsg_GetSubject(msg));
    natsMsg_Destroy(msg);
    if (member < 0)
        return;
    long long now = sync_NowMs();
    pthread_mutex_lock(&w->mu);
    note(w, member, now);
    pthread_mutex_unlock(&w->mu);
}

static void on_complete(void *closure)
{
    hb_watcher *w = closure;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    pthread_cond_broadcast(&w->done_cv);
    pthread_mutex_unlock(&w->mu);
}

static void free_watcher(hb_watcher *w)
{
    pthread_cond_destroy(&w->done_cv);
    pthread_mutex_destroy(&w->mu);
    free(w->seen);
    free(w);
}

static hb_watcher *new_watcher(int timeout_ms)
{
    hb_watcher *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->timeout_ms = timeout_ms;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->done_cv, &ca);
    pthread_condattr_destroy(&ca);
    return w;
}

spStatus hb_Watcher_Create(sync_conn *c, const char *job, int timeout_ms, hb_watcher **out)
{
    if (!out)
        return sp_Error(SP_ERR_INVALID, "hb_Watcher_Create: out is NULL");
    *out = NULL;
    if (!c || timeout_ms <= 0)
        return sp_Error(SP_ERR_INVALID, "hb_Watcher_Create: need a connection and timeout > 0");
    char tok[SYNC_TOKEN_CAP], subj[SYNC_SUBJECT_CAP];
    spStatus r = sync_JobToken(job, tok, sizeof tok);
    if (r != SP_OK)
        return r;
    snprintf(subj, sizeof subj, "spirt.%s.hb.*", tok);

    hb_watcher *w = new_watcher(timeout_ms);
    if (!w)
        return sp_Error(SP_ERR_NOMEM, "hb_Watcher_Create: out of memory");
    w->c = c;
    natsStatus s = natsConnection_Subscribe(&w->sub, c->nc, subj, on_beat, w);
    if (s == NATS_OK)
        s = natsSubscription_SetOnCompleteCB(w->sub, on_complete, w);
    if (s == NATS_OK) /* round trip: the server now knows the subscription */
        s = sync_Flush(c, c->timeout_ms);
    if (s != NATS_OK) {
        r = sync_Fail(c, s, 0, "subscribing to heartbeats");
        hb_Watcher_Destroy(w);
        return r;
    }
    *out = w;
    return SP_OK;
}

long long hb_Watcher_Heard(hb_watcher *w, int member)
{
    if (!w || member < 0)
        return -1;
    long long now = sync_NowMs(), age = -1;
    pthread_mutex_lock(&w->mu);
    hb_seen *e = find(w, member);
    if (e)
        age = now - e->last_ms;
    pthread_mutex_unlock(&w->mu);
    return age;
}

int hb_Watcher_Alive(hb_watcher *w, int member)
{
    long long age = hb_Watcher_Heard(w, member);
    return age >= 0 && age <= w->timeout_ms;
}

void hb_Watcher_Destroy(hb_watcher *w)
{
    if (!w)
        return;
    if (!w->sub) {
        free_watcher(w);
        return;
    }
    /* Unsubscribed now, destroyed after a later flush (sync_internal.h). */
    sync_Retire(w->c, w->sub);
    /* The handler may be running on libnats' delivery thread right now;
     * freeing w before on_complete fired would be a use-after-free. */
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += HB_DESTROY_WAIT_MS / 1000;
    pthread_mutex_lock(&w->mu);
    while (!w->done)
        if (pthread_cond_timedwait(&w->done_cv, &w->mu, &until) != 0)
            break;
    int done = w->done;
    pthread_mutex_unlock(&w->mu);
    if (done)
        free_watcher(w);
    /* else: leak rather than risk the handler touching freed memory */
}
