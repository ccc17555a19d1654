/* resume.c - where an interrupted job goes on, and bringing peers level. */
#include "driver/resume.h"

#include <stdio.h>

#include "driver/join_auth.h"
#include "steps/fields.h"

static spStatus catch_Up(const invoker *inv, const cJSON *base, int p, int src, long start)
{
    char ticket[AUTH_HEX_SIZE];
    spStatus st = join_Authenticate(inv, base, p, NULL, ticket);
    if (st)
        return sp_Wrap(st, "resume: peer %d re-authenticating", p);
    cJSON *req = cJSON_Duplicate(base, 1), *resp = NULL;
    cJSON_AddStringToObject(req, FIELD_TICKET, ticket);
    cJSON_AddNumberToObject(req, FIELD_PEER, p);
    cJSON_AddNumberToObject(req, FIELD_SOURCE, src);
    cJSON_AddNumberToObject(req, FIELD_ITERATION, (double)start);
    cJSON_AddBoolToObject(req, "announce", 0);
    st = invoker_Call(inv, "rejoin", req, &resp, NULL);
    cJSON_Delete(req);
    cJSON_Delete(resp);
    return st ? sp_Wrap(st, "resume: bringing peer %d level with peer %d", p, src) : SP_OK;
}

spStatus resume_Plan(const invoker *inv, const cJSON *base, const cJSON *applied, int workers,
                     const train_observer *obs, long *start, int *down, cJSON *details)
{
    if (!cJSON_IsArray(applied) || cJSON_GetArraySize(applied) != workers)
        return sp_Error(SP_ERR_FORMAT, "init answered no \"applied\" entry per peer to resume");
    long best = -1;
    int src = -1, n_down = 0;
    for (int p = 0; p < workers; p++) {
        const cJSON *a = cJSON_GetArrayItem(applied, p);
        down[p] = !cJSON_IsNumber(a);
        n_down += down[p];
        if (!down[p] && a->valuedouble > best) {
            best = (long)a->valuedouble;
            src = p;
        }
    }
    if (n_down == workers)
        return sp_Error(SP_ERR_UNAVAILABLE, "resume: no peer's database answers");
    *start = best + 1;
    cJSON *r = cJSON_AddObjectToObject(details, "resume");
    cJSON_AddNumberToObject(r, "from", (double)*start);
    cJSON_AddItemToObject(r, "applied", cJSON_Duplicate(applied, 1));
    cJSON *caught = cJSON_AddArrayToObject(r, "caught_up");
    cJSON *unreach = cJSON_AddArrayToObject(r, "unreachable");
    for (int p = 0; p < workers; p++) {
        if (down[p]) {
            cJSON_AddItemToArray(unreach, cJSON_CreateNumber(p));
            continue;
        }
        const cJSON *a = cJSON_GetArrayItem(applied, p);
        if ((long)a->valuedouble == best)
            continue;
        spStatus st = catch_Up(inv, base, p, src, *start);
        if (st)
            return st;
        cJSON_AddItemToArray(caught, cJSON_CreateNumber(p));
    }
    train_Notify(obs, "resuming at iteration %ld (peer %d's model; %d peer(s) brought level, "
                 "%d unreachable)", *start, src, cJSON_GetArraySize(caught), n_down);
    return SP_OK;
}
