/* collective.c - live lists, announcements and key cleanup shared by the
 * MLLESS, ScatterReduce and AllReduce steps (collective.h). */
#include "steps/collective.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"
#include "steps/fields.h"

static int int_Cmp(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

spStatus live_Get(const step_req *q, int **live, int *n, int *rank)
{
    int hi = q->n_peers ? q->n_peers : q->job.workers;
    spStatus st = req_GetPeerList(q->body, FIELD_LIVE, hi, 0, live, n);
    if (st)
        return st;
    /* Every worker must derive the same ranks (chunk owners, the master)
     * from its own copy of the list. */
    qsort(*live, (size_t)*n, sizeof **live, int_Cmp);
    *rank = -1;
    for (int i = 0; i < *n; i++)
        if ((*live)[i] == q->peer)
            *rank = i;
    if (*rank < 0) {
        free(*live);
        *live = NULL;
        return sp_Error(SP_ERR_INVALID, "\"live\" must include the calling worker %d", q->peer);
    }
    return SP_OK;
}

void collective_FreeArrivals(sync_arrival *a, int n)
{
    if (a)
        sync_ArrivalsFree(a, n);
    free(a);
}

spStatus collective_Await(const rt_request *req, const step_req *q, const char *topic, long t,
                          const int *members, int n, sync_arrival **out, step_io *io)
{
    sync_conn *c;
    int ms, got = 0;
    *out = NULL;
    spStatus st = steps_WaitMs(req, q, &ms);
    if (st || (st = steps_Nats(q, &c)))
        return st;
    sync_arrival *a = calloc((size_t)n, sizeof *a);
    if (!a)
        return sp_Error(SP_ERR_NOMEM, "out of memory");
    double t0 = io_NowMs();
    st = sync_Await(c, q->job.id, topic, t, members, n, ms, a, &got);
    io_Add(&io->sync_ms, t0);
    if (st == SP_OK && got < n) {
        char missing[256] = "";
        size_t len = 0;
        for (int i = 0; i < n && len < sizeof missing - 16; i++)
            if (!a[i].arrived)
                len += (size_t)snprintf(missing + len, sizeof missing - len, "%s%d",
                                        len ? ", " : "", a[i].member);
        st = sp_Error(SP_ERR_TIMEOUT, "\"%s\" of iteration %ld: no announcement from worker(s) "
                      "%s within %d ms", topic, t, missing, ms);
    }
    if (st) {
        collective_FreeArrivals(a, n);
        return st;
    }
    *out = a;
    return SP_OK;
}

spStatus collective_Announce(const step_req *q, const char *topic, long t, const char *payload,
                             step_io *io)
{
    sync_conn *c;
    spStatus st = steps_Nats(q, &c);
    if (st)
        return st;
    double t0 = io_NowMs();
    st = sync_Announce(c, q->job.id, topic, t, q->peer, payload, payload ? strlen(payload) : 0);
    io_Add(&io->sync_ms, t0);
    return st;
}

spStatus keys_Unlink(store *s, const char *const *keys, int k, step_io *io)
{
    io_snap snap = io_Snap(s);
    spStatus st = store_Unlink(s, keys, k, NULL);
    io_Account(io, &snap);
    return st;
}

spStatus keys_DropIteration(const step_req *q, store *s, int w, long t, int M, step_io *io)
{
    char names[2 * JOB_MAX_MINIBATCHES + 2][160];
    const char *keys[2 * JOB_MAX_MINIBATCHES + 2];
    int k = 0;
    spStatus st = SP_OK;
    if (M < 1 || M > JOB_MAX_MINIBATCHES)
        return sp_Error(SP_ERR_INVALID, "minibatches %d out of range", M);
    for (int m = 0; m < M && !st; m++) {
        if (!(st = req_Key(q, names[k], "mb:%d:%ld:%d", w, t, m)))
            k++;
        if (!st && !(st = req_Key(q, names[k], "grad:%d:%ld:%d", w, t, m)))
            k++;
    }
    if (!st && !(st = req_Key(q, names[k], "avg:%d:%ld", w, t)))
        k++;
    if (!st && !(st = req_Key(q, names[k], "agg:%d:%ld", w, t)))
        k++;
    if (st)
        return st;
    for (int i = 0; i < k; i++)
        keys[i] = names[i];
    return keys_Unlink(s, keys, k, io);
}
