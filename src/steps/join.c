/* join.c - the verifier of a (re)joining peer's identity (auth/auth.h):
 * hands out single-use nonces kept in the shared Redis and checks the
 * peer's HMAC answer with the key derived from SPIRT_AUTH_KEY. Only this
 * function needs the master key. */
#include <string.h>

#include "auth/auth.h"
#include "steps/step_util.h"
#include "steps/step_ctx.h"
#include "steps/fields.h"

static spStatus join_Challenge(const step_req *q, store *s, cJSON *res)
{
    int ttl;
    char nonce[AUTH_HEX_SIZE];
    spStatus st = req_GetInt(q->body, "ttl_ms", 1, 3600000, 0, AUTH_DEFAULT_TTL_MS, &ttl);
    if (st || (st = auth_Challenge(s, q->job.id, q->peer, ttl, nonce)))
        return st;
    cJSON_AddStringToObject(res, "nonce", nonce);
    cJSON_AddNumberToObject(res, "ttl_ms", ttl);
    return SP_OK;
}

static spStatus join_Verify(const step_req *q, store *s, cJSON *res)
{
    const char *nonce, *mac;
    auth_key master;
    spStatus st;
    if ((st = req_GetString(q->body, "nonce", AUTH_HEX_SIZE, &nonce)) ||
        (st = req_GetString(q->body, "response", AUTH_HEX_SIZE, &mac)))
        return st;
    if (!nonce || !mac)
        return sp_Error(SP_ERR_INVALID, "verify needs \"nonce\" and \"response\"");
    if ((st = auth_Master(&master)) == SP_OK)
        st = auth_Verify(s, &master, q->job.id, q->peer, nonce, mac);
    memset(&master, 0, sizeof master);
    char ticket[AUTH_HEX_SIZE];
    if (st || (st = auth_Admit(s, q->job.id, q->peer, 0, ticket)))
        return st;
    cJSON_AddBoolToObject(res, "admitted", 1);
    cJSON_AddNumberToObject(res, FIELD_PEER, q->peer);
    cJSON_AddStringToObject(res, FIELD_TICKET, ticket);
    cJSON_AddNumberToObject(res, "ticket_ttl_ms", AUTH_TICKET_TTL_MS);
    return SP_OK;
}

/* Not idempotent: verify consumes its nonce, so a retry would be a replay. */
STEP_DEFINE(join, Join, REQ_PEER | REQ_SHARED, 0)

static spStatus join_Run(step_ctx *c, cJSON *res)
{
    const step_req *q = &c->q;
    store *s;
    const char *action;
    spStatus st;
    if ((st = req_GetString(q->body, "action", 16, &action)) || (st = req_Shared(q, &s)))
        return st;
    double t0 = io_NowMs();
    if (action && strcmp(action, "challenge") == 0)
        st = join_Challenge(q, s, res);
    else if (action && strcmp(action, "verify") == 0)
        st = join_Verify(q, s, res);
    else
        st = sp_Error(SP_ERR_INVALID, "\"action\": expected \"challenge\" or \"verify\"");
    io_Add(&c->io.store_ms, t0);
    return st;
}
