/* step_nats.c - a step's NATS connection, and /readyz's NATS probe.
 *
 * Only the steps that synchronize reference steps_Nats (themselves or
 * through collective.c), so only their binaries link this file, src/sync
 * and libnats; config.c's readiness check reaches the probe through a weak
 * reference, which is NULL everywhere else. */
#include <string.h>

#include "steps/step_util.h"
#include "steps/steps.h"
#include "sync/sync.h"

static const char *nats_Url(const step_req *q)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(q->body, "nats");
    if (cJSON_IsString(v) && v->valuestring[0])
        return v->valuestring;
    return steps_Config()->nats_url;
}

int steps_HasNats(const step_req *q)
{
    return nats_Url(q)[0] != 0;
}

spStatus steps_Nats(const step_req *q, sync_conn **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(q->body, "nats");
    if (v && (!cJSON_IsString(v) || strlen(v->valuestring) >= sizeof(((sync_addr *)0)->url)))
        return sp_Error(SP_ERR_INVALID, "\"nats\": expected a nats://host:port string");
    const steps_config *c = steps_Config();
    const char *url = nats_Url(q);
    if (!url[0])
        return sp_Error(SP_ERR_INVALID, "no NATS server: the request has no \"nats\" field and "
                                        "SPIRT_NATS_URL is not set");
    sync_addr a;
    memset(&a, 0, sizeof a);
    steps_CopyStr(a.url, sizeof a.url, url);
    steps_CopyStr(a.user, sizeof a.user, c->nats_user);
    steps_CopyStr(a.password, sizeof a.password, c->nats_password);
    a.timeout_ms = c->timeout_ms;
    spStatus st = sync_Cached(&a, out);
    return st ? sp_Wrap(st, "nats %s", url) : SP_OK;
}

/* Called by steps_Ready (config.c) when a NATS URL is configured. */
spStatus steps_ReadyNats(const steps_config *c)
{
    sync_addr a;
    sync_conn *conn;
    memset(&a, 0, sizeof a);
    steps_CopyStr(a.url, sizeof a.url, c->nats_url);
    steps_CopyStr(a.user, sizeof a.user, c->nats_user);
    steps_CopyStr(a.password, sizeof a.password, c->nats_password);
    a.timeout_ms = c->timeout_ms;
    spStatus st = sync_Cached(&a, &conn);
    if (st || (st = sync_Ping(conn)))
        return sp_Wrap(st, "nats %s", c->nats_url);
    return SP_OK;
}
