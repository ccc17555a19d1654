/* store_cache.c - per-thread connection reuse for step handlers.
 *
 * A function server thread serves many requests against the same few Redis
 * servers; reconnecting (and AUTH) per request would dominate small steps.
 * Each thread keeps a handful of connections keyed by address and
 * credentials; one that failed, or whose server closed it while idle, is
 * replaced transparently. Being per-thread, no locking is needed. */
#include <poll.h>
#include <pthread.h>
#include <string.h>

#include "store/store_internal.h"

#define CACHE_SLOTS 64

typedef struct {
    store *s;
    uint64_t used; /* tick of last use, for least-recently-used eviction */
} cache_slot;

static _Thread_local cache_slot cache[CACHE_SLOTS];
static _Thread_local uint64_t tick;

/* Function servers give each connection a thread that ends when it closes;
 * a thread-exit destructor closes that thread's Redis connections so
 * neither memory nor sockets leak. */
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;

static void on_ThreadExit(void *marker)
{
    (void)marker;
    store_ReleaseCached();
}

static void exit_KeyCreate(void) { pthread_key_create(&exit_key, on_ThreadExit); }

static void exit_Register(void)
{
    pthread_once(&exit_once, exit_KeyCreate);
    if (!pthread_getspecific(exit_key))
        pthread_setspecific(exit_key, cache); /* any non-NULL value arms it */
}

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
    exit_Register();
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
