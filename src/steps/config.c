/* config.c - the function's configuration every step uses (where its Redis
 * servers and NATS are, the credentials for them), /readyz. (The step
 * registry is registry.c: a function binary links this file but not every
 * step.) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/env_names.h"
#include "job/job.h"
#include "steps/step_util.h"
#include "steps/steps.h"
#include "store/store.h"

#define STEPS_DEFAULT_TIMEOUT_MS 5000

/* step_nats.c, linked only into binaries whose step talks to NATS: the
 * others neither load libnats nor wait for a NATS server to be ready. */
spStatus steps_ReadyNats(const steps_config *c) __attribute__((weak));

/* The settings, and the databases parsed from them once (with the
 * credentials and timeout filled in): a step only looks them up. A
 * malformed address is kept as its message; every use answers it. */
static steps_config g_config;
static store_addr g_peers[JOB_MAX_PEER_DATABASES], g_shared;
static int g_n_peers, g_has_shared;
static char g_peers_err[SP_ERROR_MAX], g_shared_err[SP_ERROR_MAX], g_ready_err[256];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_explicit;

static void env_Copy(const char *name, char *dst, size_t cap)
{
    const char *v = getenv(name);
    if (v && strlen(v) < cap)
        memcpy(dst, v, strlen(v) + 1);
}

/* One configured address with the configured credentials. */
static spStatus addr_Parse(const char *text, store_addr *a)
{
    spStatus st = store_ParseAddr(text, a);
    if (st)
        return st;
    steps_CopyStr(a->user, sizeof a->user, g_config.redis_user);
    steps_CopyStr(a->password, sizeof a->password, g_config.redis_password);
    a->timeout_ms = g_config.timeout_ms;
    return SP_OK;
}

/* g_config.redis_peers ("host:port,host:port,...") into g_peers. */
static spStatus peers_Parse(void)
{
    char list[sizeof g_config.redis_peers];
    snprintf(list, sizeof list, "%s", g_config.redis_peers);
    g_n_peers = 0;
    if (!list[0])
        return SP_OK;
    int n = 0;
    for (char *item = list, *next; item; item = next) {
        next = strchr(item, ',');
        if (next)
            *next++ = '\0';
        item += strspn(item, " \t");
        item[strcspn(item, " \t")] = '\0';
        if (n >= JOB_MAX_PEER_DATABASES)
            return sp_Error(SP_ERR_INVALID, "%s lists more than %d databases", ENV_REDIS_PEERS,
                            JOB_MAX_PEER_DATABASES);
        spStatus st = addr_Parse(item, &g_peers[n]);
        if (st)
            return sp_Wrap(st, "%s entry %d (\"%.64s\")", ENV_REDIS_PEERS, n, item);
        n++;
    }
    g_n_peers = n;
    return SP_OK;
}

/* Parses the addresses of g_config; SP_ERR_INVALID naming the first bad
 * one (it is also what the steps that need it answer). */
static spStatus config_Parse(void)
{
    if (g_config.timeout_ms <= 0)
        g_config.timeout_ms = STEPS_DEFAULT_TIMEOUT_MS;
    g_peers_err[0] = g_shared_err[0] = '\0';
    g_has_shared = 0;
    spStatus st = peers_Parse(), st2 = SP_OK;
    if (st)
        snprintf(g_peers_err, sizeof g_peers_err, "%s", sp_LastError());
    if (g_config.redis_shared[0]) {
        if ((st2 = addr_Parse(g_config.redis_shared, &g_shared)) != SP_OK) {
            st2 = sp_Wrap(st2, "%s", ENV_REDIS_SHARED);
            snprintf(g_shared_err, sizeof g_shared_err, "%s", sp_LastError());
        } else {
            g_has_shared = 1;
        }
    }
    if (st && !st2) /* the peers' message is the one to return */
        sp_Error(st, "%s", g_peers_err);
    return st ? st : st2;
}

static void config_FromEnv(void)
{
    if (g_explicit)
        return;
    memset(&g_config, 0, sizeof g_config);
    env_Copy(ENV_REDIS_PEERS, g_config.redis_peers, sizeof g_config.redis_peers);
    env_Copy(ENV_REDIS_SHARED, g_config.redis_shared, sizeof g_config.redis_shared);
    env_Copy(ENV_REDIS_USER, g_config.redis_user, sizeof g_config.redis_user);
    env_Copy(ENV_REDIS_PASSWORD, g_config.redis_password, sizeof g_config.redis_password);
    env_Copy(ENV_NATS_URL, g_config.nats_url, sizeof g_config.nats_url);
    env_Copy(ENV_NATS_USER, g_config.nats_user, sizeof g_config.nats_user);
    env_Copy(ENV_NATS_PASSWORD, g_config.nats_password, sizeof g_config.nats_password);
    env_Copy(ENV_DATA_DIR, g_config.data_dir, sizeof g_config.data_dir);
    const char *t = getenv(ENV_REDIS_TIMEOUT_MS);
    g_config.timeout_ms = t ? atoi(t) : 0;
    const char *ready = getenv(ENV_READY_REDIS);
    if (ready && ready[0] && strcmp(ready, "shared")) {
        g_config.ready_skip_redis = !strcmp(ready, "none");
        if (!g_config.ready_skip_redis) /* e.g. an address, as it once held */
            snprintf(g_ready_err, sizeof g_ready_err, "%s=%.64s: expected \"shared\" (wait "
                     "for %s) or \"none\"", ENV_READY_REDIS, ready, ENV_REDIS_SHARED);
    }
    if (config_Parse() != SP_OK)
        sp_ClearError(); /* kept in g_*_err: /readyz and the steps answer it */
    /* An address too long for its buffer was not copied: say so instead of
     * running without it. */
    const char *peers = getenv(ENV_REDIS_PEERS), *shared = getenv(ENV_REDIS_SHARED);
    if (peers && strlen(peers) >= sizeof g_config.redis_peers)
        snprintf(g_peers_err, sizeof g_peers_err, "%s is longer than %zu bytes",
                 ENV_REDIS_PEERS, sizeof g_config.redis_peers - 1);
    if (shared && strlen(shared) >= sizeof g_config.redis_shared)
        snprintf(g_shared_err, sizeof g_shared_err, "%s is longer than %zu bytes",
                 ENV_REDIS_SHARED, sizeof g_config.redis_shared - 1);
}

spStatus steps_Configure(const steps_config *c)
{
    /* Called before any step runs (in-process drivers, tests); the env is
     * then never read, so a test's settings cannot be overridden by it. */
    g_explicit = 1;
    g_config = *c;
    pthread_once(&g_once, config_FromEnv);
    return config_Parse();
}

const steps_config *steps_Config(void)
{
    pthread_once(&g_once, config_FromEnv);
    return &g_config;
}

/* Whether a setting can be used: malformed (err) or missing (!have) is
 * SP_ERR_UNAVAILABLE naming the variable and the form it takes. */
static spStatus setting_Check(const char *err, int have, const char *what, const char *var,
                              const char *form)
{
    if (err[0])
        return sp_Error(SP_ERR_UNAVAILABLE, "the function's configuration: %s", err);
    if (!have)
        return sp_Error(SP_ERR_UNAVAILABLE, "no %s: the function has no %s (%s) in its "
                        "configuration", what, var, form);
    return SP_OK;
}

spStatus steps_PeerDbs(const store_addr **dbs, int *n)
{
    steps_Config();
    *dbs = g_peers;
    *n = g_n_peers;
    return setting_Check(g_peers_err, g_n_peers > 0, "per-peer Redis", ENV_REDIS_PEERS,
                         "host:port,... one per peer");
}

spStatus steps_SharedDb(const store_addr **db)
{
    steps_Config();
    *db = &g_shared;
    return setting_Check(g_shared_err, g_has_shared, "shared Redis", ENV_REDIS_SHARED,
                         "host:port");
}

spStatus steps_Ready(void *ctx)
{
    (void)ctx;
    const steps_config *c = steps_Config();
    const store_addr *a;
    store *s;
    spStatus st;
    const char *err = g_peers_err[0] ? g_peers_err : g_shared_err[0] ? g_shared_err : g_ready_err;
    if (err[0])
        return sp_Error(SP_ERR_UNAVAILABLE, "the function's configuration: %s", err);
    if (c->redis_shared[0] && !c->ready_skip_redis) {
        if ((st = steps_SharedDb(&a)) || (st = store_Cached(a, &s)) || (st = store_Ping(s)))
            return sp_Wrap(st, "shared redis %s:%d", a->host, a->port);
    }
    if (c->nats_url[0] && steps_ReadyNats && (st = steps_ReadyNats(c)))
        return st;
    return SP_OK;
}
