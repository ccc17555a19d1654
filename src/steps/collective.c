/* collective.c - waiting for and making announcements, shared by the
 * MLLESS, ScatterReduce and AllReduce steps (collective.h). The parts of
 * collective.h that need no NATS are collective_keys.c, so that every
 * step's wrapper, and steps that only clean up keys, link no NATS. */
#include "steps/collective.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"
#include "steps/fields.h"

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
    if (st || (st = steps_Nats(&c)))
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
    spStatus st = steps_Nats(&c);
    if (st)
        return st;
    double t0 = io_NowMs();
    st = sync_Announce(c, q->job.id, topic, t, q->peer, payload, payload ? strlen(payload) : 0);
    io_Add(&io->sync_ms, t0);
    return st;
}
