/* rejoin.c - a peer that was excluded (its database or worker failed) comes
 * back at iteration t: it proves who it is, copies the current model of a
 * live peer into its own Redis and announces that it joins at t, so the
 * live peers' barriers of t wait for it again.
 *
 * The source must hold exactly the model before t (applied:<source> =
 * t-1): the driver holds the live workers at the start of t while this
 * runs. A source that is behind or already past t-1 is 409 (the caller
 * picks another iteration). The copy is params and momentum (mom deleted
 * when the source has none), then the applied marker, so a retry after a
 * failure part-way copies the same state again (idempotent). What the
 * peer's own database held before - e.g. restored from its AOF after a
 * crash - is reported as "restored_applied" (null if it had no marker).
 * Nothing happens before the peer's admission ticket is checked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "steps/applied.h"
#include "steps/step_util.h"
#include "steps/step_ctx.h"
#include "steps/fields.h"

/* Re-authentication: a returning peer proved its identity to the join
 * step (a fresh challenge answered with its per-peer key, auth/auth.h) and
 * got a short-lived ticket; without that ticket it may neither copy the
 * model nor announce. The ticket is not consumed, so a retry still works. */
static spStatus rejoin_Authenticate(const step_req *q, cJSON *res)
{
    const char *ticket;
    store *shared;
    spStatus st = req_GetString(q->body, FIELD_TICKET, AUTH_HEX_SIZE, &ticket);
    if (st)
        return st;
    if (!ticket)
        return sp_Error(SP_ERR_AUTH, "rejoin: peer %d has no admission ticket (authenticate "
                        "with the join step first)", q->peer);
    if ((st = req_Shared(q, &shared)) ||
        (st = auth_CheckTicket(shared, q->job.id, q->peer, ticket)))
        return sp_Wrap(st, "rejoin: peer %d", q->peer);
    cJSON_AddBoolToObject(res, "authenticated", 1);
    return SP_OK;
}

/* The source's marker must say t-1. */
static spStatus source_Check(store *src, const step_req *q, int source)
{
    long a;
    spStatus st = applied_Read(src, q, source, &a);
    if (st)
        return sp_Wrap(st, "rejoin: source peer %d", source);
    if (a != q->iteration - 1)
        return sp_Error(SP_ERR_CONFLICT, "rejoin at iteration %ld: source peer %d holds the "
                        "model after iteration %ld, not %ld", q->iteration, source, a,
                        q->iteration - 1);
    return SP_OK;
}

/* Copies one tensor key from the source's database to ours; *found = 0
 * (and the key deleted on ours) when the source has none. */
static spStatus copy_Tensor(const step_req *q, store *src, store *own, const char *what,
                            int source, int *found)
{
    char ks[160], ko[160];
    float *x = NULL;
    size_t n = 0;
    spStatus st;
    if ((st = req_Key(q, ks, "%s:%d", what, source)) ||
        (st = req_Key(q, ko, "%s:%d", what, q->peer)))
        return st;
    st = store_GetTensor(src, ks, q->n_params, &x, &n);
    *found = st == SP_OK;
    if (st == SP_ERR_NOT_FOUND) {
        sp_ClearError();
        return store_Delete(own, ko);
    }
    if (st)
        return sp_Wrap(st, "rejoin: %s on source peer %d", ks, source);
    st = store_PutTensor(own, ko, x, n, 0);
    free(x);
    return st ? sp_Wrap(st, "rejoin: %s on peer %d", ko, q->peer) : SP_OK;
}

static spStatus rejoin_Copy(const step_req *q, int source, store *src, store *own, cJSON *res,
                            step_io *io)
{
    int has_params, has_mom;
    io_snap s1 = io_Snap(src), s2 = io_Snap(own);
    double t0 = io_NowMs();
    spStatus st;
    if ((st = source_Check(src, q, source)) ||
        (st = copy_Tensor(q, src, own, "params", source, &has_params)) ||
        (st = copy_Tensor(q, src, own, "mom", source, &has_mom)))
        return st;
    if (!has_params)
        return sp_Error(SP_ERR_NOT_FOUND, "rejoin: source peer %d has no model", source);
    /* The source must not have moved on while we copied. */
    if ((st = source_Check(src, q, source)) ||
        (st = applied_Write(own, q, q->peer, q->iteration - 1)))
        return st;
    io_Add(&io->transfer_ms, t0);
    io_Account(io, &s1);
    io_Account(io, &s2);
    cJSON_AddNumberToObject(res, "params", (double)q->n_params);
    cJSON_AddBoolToObject(res, "momentum", has_mom);
    return SP_OK;
}

static spStatus rejoin_Announce(const step_req *q, int source, step_io *io)
{
    sync_conn *c;
    char payload[64];
    snprintf(payload, sizeof payload, "{\"source\":%d}", source);
    double t0 = io_NowMs();
    spStatus st = steps_Nats(&c);
    if (st == SP_OK)
        st = sync_Announce(c, q->job.id, "join", q->iteration, q->peer, payload, strlen(payload));
    io_Add(&io->sync_ms, t0);
    return st;
}

STEP_DEFINE(rejoin, Rejoin, REQ_SHAPE | REQ_ITERATION | REQ_PEER | REQ_PEERS | REQ_SHARED, 1)

static spStatus rejoin_Run(step_ctx *c, cJSON *res)
{
    const step_req *q = &c->q;
    store *own, *src;
    int source, announce;
    long restored = -1;
    spStatus st;
    if ((st = req_GetInt(q->body, FIELD_SOURCE, 0, q->n_peers - 1, 1, 0, &source)) ||
        (st = req_GetBool(q->body, "announce", 1, &announce)))
        return st;
    if (source == q->peer)
        return sp_Error(SP_ERR_INVALID, "\"source\": peer %d cannot rejoin from itself", source);
    /* Its databases only after the ticket: an unauthenticated peer learns
     * nothing about them. */
    if ((st = rejoin_Authenticate(q, res)) || (st = req_OwnStore(q, &own)) ||
        (st = req_PeerStore(q, source, &src)))
        return st;
    /* What survived in our own database (a damaged marker is just lost). */
    spStatus own_st = applied_Read(own, q, q->peer, &restored);
    if (own_st && sp_IsRetryable(own_st))
        return sp_Wrap(own_st, "rejoin: peer %d's own database", q->peer);
    if (own_st)
        sp_ClearError();
    if ((st = rejoin_Copy(q, source, src, own, res, &c->io)) ||
        (announce && (st = rejoin_Announce(q, source, &c->io))))
        return st;
    cJSON_AddNumberToObject(res, FIELD_SOURCE, source);
    cJSON_AddNumberToObject(res, "joined_at", (double)q->iteration);
    cJSON_AddItemToObject(res, FIELD_RESTORED_APPLIED, restored >= 0
                                                       ? cJSON_CreateNumber((double)restored)
                                                       : cJSON_CreateNull());
    cJSON_AddBoolToObject(res, "announced", announce);
    return SP_OK;
}
