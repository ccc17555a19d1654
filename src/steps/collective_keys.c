/* collective_keys.c - the parts of collective.h that need no NATS: the
 * live list every step's wrapper reads and the removal of finished
 * iterations' keys (collective.c has the announcements). */
#include "steps/collective.h"

#include <stdlib.h>

#include "steps/fields.h"

static int int_Cmp(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

spStatus live_Get(const step_req *q, int **live, int *n, int *rank)
{
    int hi = q->n_peers;
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
