/* config.c - credentials every step uses, /readyz. (The step registry is
 * registry.c: a function binary links this file but not every step.) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steps/step_util.h"
#include "steps/steps.h"
#include "store/store.h"

#define STEPS_DEFAULT_TIMEOUT_MS 5000

/* step_nats.c, linked only into binaries whose step talks to NATS: the
 * others neither load libnats nor wait for a NATS server to be ready. */
spStatus steps_ReadyNats(const steps_config *c) __attribute__((weak));

static steps_config g_config;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_explicit;

static void env_Copy(const char *name, char *dst, size_t cap)
{
    const char *v = getenv(name);
    if (v && strlen(v) < cap)
        memcpy(dst, v, strlen(v) + 1);
}

static void config_FromEnv(void)
{
    if (g_explicit)
        return;
    memset(&g_config, 0, sizeof g_config);
    env_Copy("SPIRT_REDIS_USER", g_config.redis_user, sizeof g_config.redis_user);
    env_Copy("SPIRT_REDIS_PASSWORD", g_config.redis_password, sizeof g_config.redis_password);
    env_Copy("SPIRT_NATS_URL", g_config.nats_url, sizeof g_config.nats_url);
    env_Copy("SPIRT_NATS_USER", g_config.nats_user, sizeof g_config.nats_user);
    env_Copy("SPIRT_NATS_PASSWORD", g_config.nats_password, sizeof g_config.nats_password);
    env_Copy("SPIRT_DATA_DIR", g_config.data_dir, sizeof g_config.data_dir);
    const char *t = getenv("SPIRT_REDIS_TIMEOUT_MS");
    int ms = t ? atoi(t) : 0;
    g_config.timeout_ms = ms > 0 ? ms : STEPS_DEFAULT_TIMEOUT_MS;
}

void steps_Configure(const steps_config *c)
{
    /* Called before any step runs (in-process drivers, tests); the env is
     * then never read, so a test's settings cannot be overridden by it. */
    g_explicit = 1;
    g_config = *c;
    if (g_config.timeout_ms <= 0)
        g_config.timeout_ms = STEPS_DEFAULT_TIMEOUT_MS;
    pthread_once(&g_once, config_FromEnv);
}

const steps_config *steps_Config(void)
{
    pthread_once(&g_once, config_FromEnv);
    return &g_config;
}

static spStatus ready_Redis(const steps_config *c, const char *addr)
{
    store_addr a;
    store *s;
    spStatus st = store_ParseAddr(addr, &a);
    if (st)
        return sp_Wrap(st, "SPIRT_READY_REDIS");
    steps_CopyStr(a.user, sizeof a.user, c->redis_user);
    steps_CopyStr(a.password, sizeof a.password, c->redis_password);
    a.timeout_ms = c->timeout_ms;
    if ((st = store_Cached(&a, &s)) || (st = store_Ping(s)))
        return sp_Wrap(st, "redis %s", addr);
    return SP_OK;
}

spStatus steps_Ready(void *ctx)
{
    (void)ctx;
    const steps_config *c = steps_Config();
    const char *redis = getenv("SPIRT_READY_REDIS");
    spStatus st;
    if (redis && *redis && (st = ready_Redis(c, redis)))
        return st;
    if (c->nats_url[0] && steps_ReadyNats && (st = steps_ReadyNats(c)))
        return st;
    return SP_OK;
}
