/* module.c - in-database averaging throughput of the spirt module.
 *
 * Built as bin/bench-module (CMake option SPIRT_BENCH) and run by
 * bench/module.sh against redis-servers it starts:
 *   bench-module <module_port> [plain_port] [n] [k] [reps]
 * Reports SPIRT.AVG of k tensors of n float32 both server-side (Redis's own
 * per-call time from INFO commandstats) and round-trip (client wall clock
 * around the call, which adds one loopback RTT), as GB/s of source bytes
 * read, next to memcpy on the same machine. With a plain server it also
 * times the client-side fallback (fetch k tensors, average, store back). */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static store *connect_port(int port)
{
    store_addr a;
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    store *s = NULL;
    if (store_ParseAddr(addr, &a) != SP_OK || store_Connect(&a, &s) != SP_OK) {
        fprintf(stderr, "bench: %s\n", sp_LastError());
        exit(1);
    }
    return s;
}

static void put_sources(store *s, const char **keys, int k, size_t n)
{
    float *x = malloc(n * sizeof *x);
    for (int j = 0; j < k; j++) {
        for (size_t i = 0; i < n; i++)
            x[i] = (float)((i * 2654435761u + (size_t)j * 97) % 1000) * 1e-3f;
        if (store_PutTensor(s, keys[j], x, n, 0) != SP_OK) {
            fprintf(stderr, "bench: %s\n", sp_LastError());
            exit(1);
        }
    }
    free(x);
}

/* Median seconds per call of store_Average over reps calls. */
static double time_average(store *s, const char **keys, int k, int reps, int *in_db)
{
    double *t = malloc(sizeof *t * (size_t)reps);
    for (int r = -2; r < reps; r++) { /* two warm-up calls */
        double t0 = now_s();
        if (store_Average(s, "{bench}:avg", keys, k, 0, in_db) != SP_OK) {
            fprintf(stderr, "bench: %s\n", sp_LastError());
            exit(1);
        }
        if (r >= 0)
            t[r] = now_s() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    double med = t[reps / 2];
    free(t);
    return med;
}

/* Redis's own microseconds per call of a command since CONFIG RESETSTAT. */
static double server_usec_per_call(redisContext *c, const char *cmd)
{
    redisReply *r = redisCommand(c, "INFO commandstats");
    double v = -1;
    char needle[64];
    snprintf(needle, sizeof needle, "cmdstat_%s:", cmd);
    if (r && r->type == REDIS_REPLY_STRING) {
        const char *p = strstr(r->str, needle);
        if (p && (p = strstr(p, "usec_per_call=")))
            v = atof(p + strlen("usec_per_call="));
    }
    if (r)
        freeReplyObject(r);
    return v;
}

static void reset_stats(redisContext *c)
{
    redisReply *r = redisCommand(c, "CONFIG RESETSTAT");
    if (r)
        freeReplyObject(r);
}

static double memcpy_gbps(size_t bytes, int reps)
{
    char *a = malloc(bytes), *b = malloc(bytes);
    memset(a, 1, bytes);
    memset(b, 2, bytes);
    double best = 1e9;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        memcpy(b, a, bytes);
        double dt = now_s() - t0;
        if (dt < best)
            best = dt;
        a[r % bytes] = b[(r * 7) % bytes]; /* keep the copies observable */
    }
    volatile char sink = b[bytes / 2];
    (void)sink;
    free(a);
    free(b);
    return (double)bytes / best / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s module_port [plain_port|0] [n] [k] [reps]\n", argv[0]);
        return 2;
    }
    int mod_port = atoi(argv[1]);
    int plain_port = argc > 2 ? atoi(argv[2]) : 0;
    size_t n = argc > 3 ? (size_t)atol(argv[3]) : 1000000;
    int k = argc > 4 ? atoi(argv[4]) : 4;
    int reps = argc > 5 ? atoi(argv[5]) : 30;
    if (k < 1 || k > 64 || n == 0 || reps < 1) {
        fprintf(stderr, "bench: bad n/k/reps\n");
        return 2;
    }
    const char *keys[64];
    char names[64][32];
    for (int j = 0; j < k; j++) {
        snprintf(names[j], sizeof names[j], "{bench}:g%d", j);
        keys[j] = names[j];
    }
    double src_bytes = (double)n * 4.0 * k;

    store *m = connect_port(mod_port);
    if (!store_HasModule(m)) {
        fprintf(stderr, "bench: the server on port %d has no spirt module\n", mod_port);
        return 1;
    }
    put_sources(m, keys, k, n);
    /* Server statistics go over a plain connection of their own: the store
     * API has no INFO or CONFIG. */
    redisContext *admin = redisConnect("127.0.0.1", mod_port);
    if (!admin || admin->err) {
        fprintf(stderr, "bench: cannot connect to port %d\n", mod_port);
        return 1;
    }
    int in_db = 0;
    reset_stats(admin);
    double rt = time_average(m, keys, k, reps, &in_db);
    double srv = server_usec_per_call(admin, "spirt.avg") * 1e-6;

    printf("SPIRT.AVG of %d x %zu float32 (%.1f MB read, %.1f MB written), %d calls\n", k, n,
           src_bytes / 1e6, n * 4.0 / 1e6, reps);
    if (srv > 0)
        printf("  server-side (INFO commandstats):  %7.3f ms/call  %6.2f GB/s read\n", srv * 1e3,
               src_bytes / srv / 1e9);
    printf("  round trip (client, median):      %7.3f ms/call  %6.2f GB/s read\n", rt * 1e3,
           src_bytes / rt / 1e9);

    /* SPIRT.UPDATE with momentum: reads w, g, v and writes w, v. */
    reset_stats(admin);
    for (int r = 0; r < reps; r++)
        if (store_Update(m, keys[0], keys[1], "{bench}:mom", 1e-4f, 0.9f, 0.0f, NULL) != SP_OK) {
            fprintf(stderr, "bench: %s\n", sp_LastError());
            return 1;
        }
    double upd = server_usec_per_call(admin, "spirt.update") * 1e-6;
    if (upd > 0)
        printf("SPIRT.UPDATE (momentum) of %zu float32, server-side: %7.3f ms/call\n", n,
               upd * 1e3);

    if (plain_port > 0) {
        store *p = connect_port(plain_port);
        put_sources(p, keys, k, n);
        double fb = time_average(p, keys, k, reps < 10 ? reps : 10, &in_db);
        printf("client-side fallback (no module, GET x%d + SET): %7.3f ms/call  %6.2f GB/s read\n",
               k, fb * 1e3, src_bytes / fb / 1e9);
        store_Destroy(p);
    }
    /* Same size as the sources (which, like them, may sit in a large L3),
     * and one far beyond any cache. */
    printf("memcpy of %.1f MB on this machine (best of 20):     %6.2f GB/s\n", src_bytes / 1e6,
           memcpy_gbps((size_t)src_bytes, 20));
    printf("memcpy of 256 MB (DRAM-bound, best of 5):          %6.2f GB/s\n",
           memcpy_gbps((size_t)256 << 20, 5));
    redisFree(admin);
    store_Destroy(m);
    return 0;
}
