/* step_nats.c - a step's NATS connection, and /readyz's NATS probe.
 *
 * Only the steps that synchronize reference steps_Nats (themselves or
 * through collective.c), so only their binaries link this file, src/sync
 * and libnats; config.c's readiness check reaches the probe through a weak
 * reference, which is NULL everywhere else. */
#include <string.h>

#include "core/env_names.h"
#include "steps/step_util.h"
#include "steps/steps.h"
#include "sync/sync.h"

/* The configured server with the configured credentials. */
static void nats_Addr(const steps_config *c, sync_addr *a)
{
    memset(a, 0, sizeof *a);
    steps_CopyStr(a->url, sizeof a->url, c->nats_url);
    steps_CopyStr(a->user, sizeof a->user, c->nats_user);
    steps_CopyStr(a->password, sizeof a->password, c->nats_password);
    a->timeout_ms = c->timeout_ms;
}

int steps_HasNats(void)
{
    return steps_Config()->nats_url[0] != 0;
}

spStatus steps_Nats(sync_conn **out)
{
    const steps_config *c = steps_Config();
    if (!c->nats_url[0])
        return sp_Error(SP_ERR_UNAVAILABLE, "no NATS server: the function has no %s in its "
                        "configuration", ENV_NATS_URL);
    sync_addr a;
    nats_Addr(c, &a);
    spStatus st = sync_Cached(&a, out);
    return st ? sp_Wrap(st, "nats %s", c->nats_url) : SP_OK;
}

/* Called by steps_Ready (config.c) when a NATS URL is configured. */
spStatus steps_ReadyNats(const steps_config *c)
{
    sync_addr a;
    sync_conn *conn;
    nats_Addr(c, &a);
    spStatus st = sync_Cached(&a, &conn);
    if (st || (st = sync_Ping(conn)))
        return sp_Wrap(st, "nats %s", c->nats_url);
    return SP_OK;
}
