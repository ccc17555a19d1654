/* exchange.c - averaging a gradient across peers through spirt's store, the
 * way two architectures do it (bench/exchange.sh starts the servers).
 *
 * Built as bin/bench-exchange (CMake option SPIRT_BENCH):
 *   bench-exchange --peers HOST:PORT,... --shared HOST:PORT --user USER
 *                  --password-file FILE --n N --reps R [--warmup W]
 * One thread per peer, each with its own store connections (one per
 * address, as a step's thread has them), all meeting at a barrier before
 * every repetition; a repetition's time is from the first thread's start to
 * the last thread's end. Per repetition, with fresh keys (the previous
 * repetition's are unlinked outside the timing, as the architectures clean
 * up), peer p:
 *   spirt       PUTs its tensor into its own Redis; once every peer has
 *               (the barrier stands for the NATS announcements), fetches
 *               every peer's tensor from that peer's Redis
 *               (store_GetTensorsInto), averages them (kern_Mean, in peer
 *               order, as the aggregate step does) and PUTs the mean into
 *               its own Redis.
 *   all-reduce  PUTs its tensor into the shared Redis; peer 0 averages them
 *               there (store_Average: SPIRT.AVG); every peer GETs the mean.
 * Every peer's result is checked against the mean computed here, bit for
 * bit. Only the public store API (src/store/store.h) talks to Redis, so this
 * measures whatever the store does. Prints one JSON line per path:
 *   {"path": "spirt", "n": N, "peers": P, "ms": [per repetition ...]} */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/kernels.h"
#include "store/store.h"

#define MAX_PEERS 16

typedef enum { PATH_SPIRT, PATH_ALL_REDUCE } path_kind;

typedef struct {
    int peers;
    size_t n;
    int reps, warmup;
    store_addr peer_addr[MAX_PEERS], shared_addr;
    pthread_barrier_t barrier;
    path_kind path;
    const float *expect;   /* the mean every peer must end with */
} bench;

typedef struct {
    bench *b;
    int p;
    store *peer[MAX_PEERS], *shared;
    float *x, *in[MAX_PEERS], *out;
    double *t0, *t1;       /* per repetition (warm-ups included) */
} peer;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void check(spStatus st, const char *what)
{
    if (st != SP_OK) {
        fprintf(stderr, "bench-exchange: %s: %s\n", what, sp_LastError());
        exit(1);
    }
}

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "bench-exchange: out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    memset(p, 0, bytes); /* touched: the timing sees no first-use page faults here */
    return p;
}

static void key_Of(char *buf, size_t cap, const char *what, int p, int rep)
{
    check(store_Key(buf, cap, "xchg", "%s:%d:%d", what, p, rep), "key");
}

static void spirt_Rep(peer *c, int rep)
{
    bench *b = c->b;
    char key[96];
    key_Of(key, sizeof key, "g", c->p, rep);
    check(store_PutTensor(c->peer[c->p], key, c->x, b->n, 0), "PUT own tensor");
    pthread_barrier_wait(&b->barrier);
    for (int q = 0; q < b->peers; q++) {
        const char *k = key;
        key_Of(key, sizeof key, "g", q, rep);
        check(store_GetTensorsInto(c->peer[q], &k, 1, b->n, &c->in[q], NULL), "GET a peer's");
    }
    kern_Mean(c->out, (const ufloat *const *)c->in, b->peers, b->n);
    key_Of(key, sizeof key, "avg", c->p, rep);
    check(store_PutTensor(c->peer[c->p], key, c->out, b->n, 0), "PUT the mean");
}

static void all_reduce_Rep(peer *c, int rep)
{
    bench *b = c->b;
    char key[96];
    key_Of(key, sizeof key, "g", c->p, rep);
    check(store_PutTensor(c->shared, key, c->x, b->n, 0), "PUT into the shared Redis");
    pthread_barrier_wait(&b->barrier);
    if (c->p == 0) {
        char srcs[MAX_PEERS][96];
        const char *keys[MAX_PEERS];
        for (int q = 0; q < b->peers; q++) {
            key_Of(srcs[q], sizeof srcs[q], "g", q, rep);
            keys[q] = srcs[q];
        }
        int in_db = 0;
        key_Of(key, sizeof key, "avg", 0, rep);
        check(store_Average(c->shared, key, keys, b->peers, 0, &in_db), "SPIRT.AVG");
        if (!in_db) {
            fprintf(stderr, "bench-exchange: the shared Redis has no spirt module\n");
            exit(1);
        }
    }
    pthread_barrier_wait(&b->barrier);
    const char *k = key;
    key_Of(key, sizeof key, "avg", 0, rep);
    check(store_GetTensorsInto(c->shared, &k, 1, b->n, &c->out, NULL), "GET the mean");
}

/* What a repetition stored, unlinked before the next one (untimed). */
static void cleanup_Rep(peer *c, int rep)
{
    bench *b = c->b;
    char g[96], avg[96];
    key_Of(g, sizeof g, "g", c->p, rep);
    key_Of(avg, sizeof avg, "avg", c->p, rep);
    const char *keys[] = {g, avg};
    check(store_Unlink(b->path == PATH_SPIRT ? c->peer[c->p] : c->shared, keys, 2, NULL),
          "UNLINK");
}

static void *peer_Main(void *arg)
{
    peer *c = arg;
    bench *b = c->b;
    for (int r = 0; r < b->warmup + b->reps; r++) {
        pthread_barrier_wait(&b->barrier);
        c->t0[r] = now_s();
        if (b->path == PATH_SPIRT)
            spirt_Rep(c, r);
        else
            all_reduce_Rep(c, r);
        c->t1[r] = now_s();
        if (memcmp(c->out, b->expect, b->n * sizeof(float)) != 0) {
            fprintf(stderr, "bench-exchange: peer %d did not end with the mean\n", c->p);
            exit(1);
        }
        pthread_barrier_wait(&b->barrier);
        cleanup_Rep(c, r);
    }
    return NULL;
}

static void run_Path(bench *b, peer *c, path_kind path, const char *name)
{
    b->path = path;
    pthread_t th[MAX_PEERS];
    for (int p = 0; p < b->peers; p++)
        if (pthread_create(&th[p], NULL, peer_Main, &c[p]) != 0) {
            fprintf(stderr, "bench-exchange: cannot start a thread\n");
            exit(1);
        }
    for (int p = 0; p < b->peers; p++)
        pthread_join(th[p], NULL);
    printf("{\"path\": \"%s\", \"n\": %zu, \"peers\": %d, \"ms\": [", name, b->n, b->peers);
    for (int r = b->warmup; r < b->warmup + b->reps; r++) {
        double t0 = c[0].t0[r], t1 = c[0].t1[r];
        for (int p = 1; p < b->peers; p++) {
            t0 = c[p].t0[r] < t0 ? c[p].t0[r] : t0;
            t1 = c[p].t1[r] > t1 ? c[p].t1[r] : t1;
        }
        printf("%s%.4f", r > b->warmup ? ", " : "", (t1 - t0) * 1e3);
    }
    printf("]}\n");
    fflush(stdout);
}

static void addr_Parse(const char *s, const char *user, const char *password, store_addr *a)
{
    check(store_ParseAddr(s, a), s);
    snprintf(a->user, sizeof a->user, "%s", user);
    snprintf(a->password, sizeof a->password, "%s", password);
    a->timeout_ms = 60000;
}

static void password_Read(const char *path, char *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f || !fgets(out, (int)cap, f)) {
        fprintf(stderr, "bench-exchange: cannot read the password file %s\n", path);
        exit(1);
    }
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
}

static void usage(void)
{
    fprintf(stderr, "usage: bench-exchange --peers HOST:PORT,... --shared HOST:PORT "
            "--user USER --password-file FILE --n N --reps R [--warmup W]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static bench b;
    const char *peers = NULL, *shared = NULL, *user = "", *pwfile = NULL;
    b.n = 1000000;
    b.reps = 10;
    b.warmup = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *o = argv[i], *v = argv[i + 1];
        if (!strcmp(o, "--peers")) peers = v;
        else if (!strcmp(o, "--shared")) shared = v;
        else if (!strcmp(o, "--user")) user = v;
        else if (!strcmp(o, "--password-file")) pwfile = v;
        else if (!strcmp(o, "--n")) b.n = (size_t)strtoull(v, NULL, 10);
        else if (!strcmp(o, "--reps")) b.reps = atoi(v);
        else if (!strcmp(o, "--warmup")) b.warmup = atoi(v);
        else usage();
    }
    if (argc % 2 == 0 || !peers || !shared || b.n == 0 || b.reps < 1 || b.warmup < 0)
        usage();
    char password[128] = "";
    if (pwfile)
        password_Read(pwfile, password, sizeof password);
    char list[1024];
    snprintf(list, sizeof list, "%s", peers);
    for (char *save = NULL, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (b.peers == MAX_PEERS)
            usage();
        addr_Parse(t, user, password, &b.peer_addr[b.peers++]);
    }
    addr_Parse(shared, user, password, &b.shared_addr);

    /* Every peer's tensor, and the mean they must all end with. */
    static peer c[MAX_PEERS];
    const ufloat *xs[MAX_PEERS];
    int total = b.warmup + b.reps;
    for (int p = 0; p < b.peers; p++) {
        c[p] = (peer){.b = &b, .p = p};
        c[p].x = xmalloc(b.n * sizeof(float));
        for (size_t i = 0; i < b.n; i++)
            c[p].x[i] = (float)((i * 2654435761u + (size_t)p * 97) % 2001) * 1e-3f - 1.0f;
        xs[p] = c[p].x;
        for (int q = 0; q < b.peers; q++)
            c[p].in[q] = xmalloc(b.n * sizeof(float));
        c[p].out = xmalloc(b.n * sizeof(float));
        c[p].t0 = xmalloc(sizeof(double) * (size_t)total);
        c[p].t1 = xmalloc(sizeof(double) * (size_t)total);
        for (int q = 0; q < b.peers; q++)
            check(store_Connect(&b.peer_addr[q], &c[p].peer[q]), "connecting to a peer");
        check(store_Connect(&b.shared_addr, &c[p].shared), "connecting to the shared Redis");
    }
    float *expect = xmalloc(b.n * sizeof(float));
    kern_Mean(expect, xs, b.peers, b.n);
    b.expect = expect;
    pthread_barrier_init(&b.barrier, NULL, (unsigned)b.peers);
    run_Path(&b, c, PATH_SPIRT, "spirt");
    run_Path(&b, c, PATH_ALL_REDUCE, "all-reduce");
    pthread_barrier_destroy(&b.barrier);
    for (int p = 0; p < b.peers; p++) {
        for (int q = 0; q < b.peers; q++) {
            store_Destroy(c[p].peer[q]);
            free(c[p].in[q]);
        }
        store_Destroy(c[p].shared);
        free(c[p].x);
        free(c[p].out);
        free(c[p].t0);
        free(c[p].t1);
    }
    free(expect);
    return 0;
}
