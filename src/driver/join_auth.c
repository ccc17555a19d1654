/* join_auth.c - challenge, respond, verify: a peer's (re)admission. */
#include "driver/join_auth.h"
#include "steps/fields.h"

#include <stdio.h>
#include <string.h>

#define JOIN_TRIES 3

static spStatus join_Call(const invoker *inv, const cJSON *base, int peer, const char *action,
                          const char *nonce, const char *mac, cJSON **resp)
{
    cJSON *req = cJSON_Duplicate(base, 1);
    if (!req)
        return sp_Error(SP_ERR_NOMEM, "out of memory");
    cJSON_DeleteItemFromObjectCaseSensitive(req, FIELD_PEER);
    cJSON_AddNumberToObject(req, FIELD_PEER, peer);
    cJSON_AddStringToObject(req, "action", action);
    if (nonce)
        cJSON_AddStringToObject(req, "nonce", nonce);
    if (mac)
        cJSON_AddStringToObject(req, "response", mac);
    spStatus st = invoker_Call(inv, "join", req, resp, NULL);
    cJSON_Delete(req);
    return st;
}

static const char *str_Field(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) && strlen(v->valuestring) < AUTH_HEX_SIZE ? v->valuestring : NULL;
}

/* One handshake: challenge -> respond -> verify. */
static spStatus join_Once(const invoker *inv, const cJSON *base, int peer, const char *job,
                          const auth_key *key, char ticket[AUTH_HEX_SIZE])
{
    cJSON *resp = NULL;
    char nonce[AUTH_HEX_SIZE], mac[AUTH_HEX_SIZE];
    spStatus st = join_Call(inv, base, peer, "challenge", NULL, NULL, &resp);
    const char *n = st ? NULL : str_Field(resp, "nonce");
    if (!st && !n)
        st = sp_Error(SP_ERR_FORMAT, "join: the challenge carries no nonce");
    if (!st)
        snprintf(nonce, sizeof nonce, "%s", n);
    cJSON_Delete(resp);
    resp = NULL;
    if (st)
        return st;
    if ((st = auth_Respond(key, job, peer, nonce, mac)))
        return st;
    st = join_Call(inv, base, peer, "verify", nonce, mac, &resp);
    const char *t = st ? NULL : str_Field(resp, FIELD_TICKET);
    if (!st && !t)
        st = sp_Error(SP_ERR_FORMAT, "join: the verifier admitted peer %d without a ticket",
                      peer);
    if (!st)
        snprintf(ticket, AUTH_HEX_SIZE, "%s", t);
    cJSON_Delete(resp);
    return st;
}

spStatus join_Authenticate(const invoker *inv, const cJSON *base, int peer,
                           const auth_key *peer_key, char ticket[AUTH_HEX_SIZE])
{
    const cJSON *job = cJSON_GetObjectItemCaseSensitive(base, FIELD_JOB);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(job, "id");
    if (!cJSON_IsString(id))
        return sp_Error(SP_ERR_INVALID, "join: the request base has no job id");
    auth_key key;
    spStatus st = SP_OK;
    if (peer_key) {
        key = *peer_key;
    } else {
        auth_key master;
        if ((st = auth_Master(&master)))
            return sp_Wrap(st, "join: peer %d", peer);
        st = auth_PeerKey(&master, id->valuestring, peer, &key);
        memset(&master, 0, sizeof master);
        if (st)
            return sp_Wrap(st, "join: peer %d", peer);
    }
    for (int i = 0; i < JOIN_TRIES; i++) {
        st = join_Once(inv, base, peer, id->valuestring, &key, ticket);
        if (st == SP_OK || !sp_IsRetryable(st))
            break;
    }
    memset(&key, 0, sizeof key);
    return st ? sp_Wrap(st, "peer %d could not authenticate", peer) : SP_OK;
}
