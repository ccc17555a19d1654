/* store_cache.c - per-thread connection reuse for step handlers.
 *
 * A function server thread serves many requests against the same few Redis
 * servers; reconnecting (and AUTH) per request would dominate small steps.
 * Each thread keeps a handful of connections keyed by address and
 * credentials; one that failed, or whose server closed it while idle, is
 * replaced transparently. Being per-thread, no locking is needed. */
#include <poll.h>
#include <string.h>

#include "store/store_internal.h"

#define CACHE_SLOTS 16

typedef struct {
    store *s;
    uint64_t used; /* tick of last use, for least-recently-used eviction */
} cache_slot;

static _Thread_local cache_slot cache[CACHE_SLOTS];
static _Thread_local uint64_t tick;

static int same_addr(const store_addr *a, const store_addr *b)
{
    return a->port == b->port && a->timeout_ms == b->timeout_ms &&
           strcmp(a->host, b->host) == 0 && strcmp(a->user, b->user) == 0 &&
           strcmp(a->password, b->password) == 0;
}

/* An idle connection has nothing to read: readable means the server closed
 * it (restart, idle timeout) or sent junk; either way it is unusable. */
static int idle_Healthy(const store *s)
{
    if (store_IsBroken(s))
        return 0;
    const redisContext *c = s->c;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int n = poll(&p, 1, 0);
    return n == 0;
}

spStatus store_Cached(const store_addr *a, store **out)
{
    *out = NULL;
    if (!a)
        return sp_Error(SP_ERR_INVALID, "redis: missing address");
    int free_slot = -1, lru = 0;
    for (int i = 0; i < CACHE_SLOTS; i++) {
        cache_slot *c = &cache[i];
        if (!c->s) {
            if (free_slot < 0)
                free_slot = i;
            continue;
        }
        if (same_addr(&c->s->addr, a)) {
            if (idle_Healthy(c->s)) {
                c->used = ++tick;
                *out = c->s;
                return SP_OK;
            }
            store_Destroy(c->s);
            c->s = NULL;
            free_slot = i;
            break;
        }
        if (c->used < cache[lru].used)
            lru = i;
    }
    int slot = free_slot >= 0 ? free_slot : lru;
    store *s;
    spStatus st = store_Connect(a, &s);
    if (st != SP_OK)
        return st;
    if (cache[slot].s)
        store_Destroy(cache[slot].s);
    cache[slot].s = s;
    cache[slot].used = ++tick;
    *out = s;
    return SP_OK;
}

void store_ReleaseCached(void)
{
    for (int i = 0; i < CACHE_SLOTS; i++) {
        store_Destroy(cache[i].s);
        cache[i].s = NULL;
        cache[i].used = 0;
    }
}
