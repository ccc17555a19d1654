/* module.c - in-database averaging throughput of the spirt module.
 *
 * Built as bin/bench-module (CMake option SPIRT_BENCH) and run by
 * bench/module.sh against redis-servers it starts:
 *   bench-module <module_port> [plain_port] [n] [k] [reps] [baseline_port]
 * Times SPIRT.AVG of k tensors of n float32 into one destination that
 * already holds a tensor of that size (the module's steady state), and into
 * a fresh key every call (the previous one unlinked, as training writes
 * avg:<peer>:<t> anew every iteration), each after two untimed warm-up
 * calls. Server-side figures are Redis's own per-call durations (SLOWLOG
 * with a zero threshold: the median of the timed calls; INFO commandstats'
 * mean over the same calls next to it); round trip is the client's wall
 * clock around a call. Bandwidth counts every byte a call must move: the k
 * sources read and the destination written, (k+1) x 4n bytes; memcpy of the
 * sources' size (k x 4n bytes read and as many written) in this process,
 * into a destination already touched, timed the same way (median) in the
 * same run, is the reference. With a plain server it also times the
 * client-side fallback (fetch k tensors, average, store back); with a
 * baseline server (another build of the module) it times both builds'
 * SPIRT.AVG with their calls interleaved. */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "store/store.h"

#define WARMUP 2

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

static double median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static void fail(void)
{
    fprintf(stderr, "bench: %s\n", sp_LastError());
    exit(1);
}

static store *connect_port(int port)
{
    store_addr a;
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
    store *s = NULL;
    if (store_ParseAddr(addr, &a) != SP_OK || store_Connect(&a, &s) != SP_OK)
        fail();
    return s;
}

static void put_sources(store *s, const char **keys, int k, size_t n)
{
    float *x = malloc(n * sizeof *x);
    for (int j = 0; j < k; j++) {
        for (size_t i = 0; i < n; i++)
            x[i] = (float)((i * 2654435761u + (size_t)j * 97) % 1000) * 1e-3f;
        if (store_PutTensor(s, keys[j], x, n, 0) != SP_OK)
            fail();
    }
    free(x);
}

/* ---- server statistics: a plain connection (the store API has none) ---- */

static void admin_Do(redisContext *c, const char *cmd)
{
    redisReply *r = redisCommand(c, cmd);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "bench: %s: %s\n", cmd, r ? r->str : c->errstr);
        exit(1);
    }
    freeReplyObject(r);
}

/* From here every call is in SLOWLOG and commandstats start at zero. */
static void stats_Begin(redisContext *c)
{
    admin_Do(c, "CONFIG SET slowlog-log-slower-than 0");
    admin_Do(c, "CONFIG SET slowlog-max-len 4096");
    admin_Do(c, "SLOWLOG RESET");
    admin_Do(c, "CONFIG RESETSTAT");
}

/* The SLOWLOG durations (seconds) of command `cmd` since stats_Begin. */
static int slowlog_Seconds(redisContext *c, const char *cmd, double *out, int cap)
{
    redisReply *r = redisCommand(c, "SLOWLOG GET 4096");
    int n = 0;
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements && n < cap; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 4 ||
            e->element[3]->type != REDIS_REPLY_ARRAY || e->element[3]->elements < 1)
            continue;
        const redisReply *name = e->element[3]->element[0];
        if (name->type == REDIS_REPLY_STRING && strcasecmp(name->str, cmd) == 0)
            out[n++] = (double)e->element[2]->integer * 1e-6;
    }
    if (r)
        freeReplyObject(r);
    return n;
}

/* Redis's own mean seconds per call of a command since stats_Begin. */
static double commandstats_Seconds(redisContext *c, const char *cmd)
{
    redisReply *r = redisCommand(c, "INFO commandstats");
    double v = -1;
    char needle[64];
    snprintf(needle, sizeof needle, "cmdstat_%s:", cmd);
    if (r && r->type == REDIS_REPLY_STRING) {
        const char *p = strstr(r->str, needle);
        if (p && (p = strstr(p, "usec_per_call=")))
            v = atof(p + strlen("usec_per_call=")) * 1e-6;
    }
    if (r)
        freeReplyObject(r);
    return v;
}

/* ---- the timings -------------------------------------------------------- */

typedef struct {
    double server;      /* SLOWLOG median, s */
    double server_mean; /* commandstats mean, s */
    double round_trip;  /* client median, s */
} avg_times;

/* One server under test: its connection and, for server statistics, a
 * plain one (NULL: client timing only). */
typedef struct {
    store *s;
    redisContext *admin;
} target;

/* reps timed calls of store_Average on each of the m targets after WARMUP
 * untimed ones, the targets' calls interleaved (their order alternating
 * every call) so a comparison sees the same machine; with fresh, each call
 * writes a new key and the one before is unlinked. */
static void time_average(const target *tg, int m, const char **keys, int k, int reps,
                         int fresh, avg_times *out)
{
    size_t nr = reps > 0 ? (size_t)reps : 1;
    double *t = malloc(sizeof *t * nr * (size_t)m);
    char dst[64], old[64];
    int in_db[2] = {0, 0};
    for (int r = -WARMUP; r < reps; r++) {
        snprintf(dst, sizeof dst, fresh ? "{bench}:avg:%d" : "{bench}:avg", r + WARMUP);
        for (int x = 0; x < m; x++) {
            int i = (r + WARMUP) % 2 ? m - 1 - x : x;
            if (r == 0 && tg[i].admin)
                stats_Begin(tg[i].admin);
            double t0 = now_s();
            if (store_Average(tg[i].s, dst, keys, k, 0, &in_db[i]) != SP_OK)
                fail();
            if (r >= 0)
                t[(size_t)i * nr + (size_t)r] = now_s() - t0;
            const char *gone = old;
            if (fresh && r > -WARMUP && store_Unlink(tg[i].s, &gone, 1, NULL) != SP_OK)
                fail();
        }
        snprintf(old, sizeof old, "%s", dst);
    }
    double *srv = malloc(sizeof *srv * nr);
    for (int i = 0; i < m; i++) {
        const char *gone = old;
        if (fresh)
            store_Unlink(tg[i].s, &gone, 1, NULL);
        out[i] = (avg_times){-1, -1, median(t + (size_t)i * nr, reps)};
        if (!in_db[i] || !tg[i].admin)
            continue;
        int got = slowlog_Seconds(tg[i].admin, "spirt.avg", srv, reps);
        if (got > 0)
            out[i].server = median(srv, got);
        out[i].server_mean = commandstats_Seconds(tg[i].admin, "spirt.avg");
    }
    free(srv);
    free(t);
}

/* Median seconds of reps memcpy's of `bytes` into a destination already
 * written (no page faults in the timing). */
static double memcpy_seconds(size_t bytes, int reps)
{
    char *a = malloc(bytes), *b = malloc(bytes);
    double *t = malloc(sizeof *t * (size_t)reps);
    memset(a, 1, bytes);
    memset(b, 2, bytes);
    for (int r = -WARMUP; r < reps; r++) {
        double t0 = now_s();
        memcpy(b, a, bytes);
        if (r >= 0)
            t[r] = now_s() - t0;
        a[(size_t)(r + WARMUP) % bytes] = b[((size_t)(r + WARMUP) * 7) % bytes];
    }
    volatile char sink = b[bytes / 2];
    (void)sink;
    double med = median(t, reps);
    free(a);
    free(b);
    free(t);
    return med;
}

/* One line of the table: ms per call, source bytes read per second and
 * every byte moved per second (memcpy: bytes copied, and twice that). */
static void row(const char *what, double s, double read, double moved)
{
    if (s <= 0)
        printf("  %-46s        -\n", what);
    else
        printf("  %-46s %8.3f %9.2f %10.2f\n", what, s * 1e3, read / s / 1e9, moved / s / 1e9);
}

static redisContext *admin_Connect(int port)
{
    redisContext *c = redisConnect("127.0.0.1", port);
    if (!c || c->err) {
        fprintf(stderr, "bench: cannot connect to port %d\n", port);
        exit(1);
    }
    return c;
}

/* Redis's own time per call of the built module against a baseline build,
 * their calls interleaved: the ratio is what a change to the module did. */
static void compare_Baseline(store *m, redisContext *admin, int base_port, const char **keys,
                             int k, size_t n, int reps)
{
    store *b = connect_port(base_port);
    if (!store_HasModule(b)) {
        fprintf(stderr, "bench: the baseline server on port %d has no spirt module\n",
                base_port);
        exit(1);
    }
    put_sources(b, keys, k, n);
    target tg[2] = {{m, admin}, {b, admin_Connect(base_port)}};
    printf("this build against the baseline module, calls interleaved (SLOWLOG medians):\n");
    for (int fresh = 0; fresh < 2; fresh++) {
        avg_times t[2];
        time_average(tg, 2, keys, k, reps, fresh, t);
        printf("  %-14s this %7.3f ms/call, baseline %7.3f ms/call: %.2fx as fast\n",
               fresh ? "fresh dst" : "existing dst", t[0].server * 1e3, t[1].server * 1e3,
               t[1].server / t[0].server);
    }
    redisFree(tg[1].admin);
    store_Destroy(b);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s module_port [plain_port|0] [n] [k] [reps] [baseline_port]\n",
                argv[0]);
        return 2;
    }
    int mod_port = atoi(argv[1]);
    int plain_port = argc > 2 ? atoi(argv[2]) : 0;
    size_t n = argc > 3 ? (size_t)atol(argv[3]) : 1000000;
    int k = argc > 4 ? atoi(argv[4]) : 4;
    int reps = argc > 5 ? atoi(argv[5]) : 30;
    int base_port = argc > 6 ? atoi(argv[6]) : 0;
    if (k < 1 || k > 64 || n == 0 || reps < 1 || reps > 4000) {
        fprintf(stderr, "bench: bad n/k/reps\n");
        return 2;
    }
    const char *keys[64];
    char names[64][32];
    for (int j = 0; j < k; j++) {
        snprintf(names[j], sizeof names[j], "{bench}:g%d", j);
        keys[j] = names[j];
    }
    double read = (double)n * 4.0 * k, written = (double)n * 4.0, moved = read + written;

    store *m = connect_port(mod_port);
    if (!store_HasModule(m)) {
        fprintf(stderr, "bench: the server on port %d has no spirt module\n", mod_port);
        return 1;
    }
    put_sources(m, keys, k, n);
    redisContext *admin = admin_Connect(mod_port);
    /* Alternating: memcpy, AVG into an existing key, AVG into fresh keys,
     * memcpy again; the reference is the mean of the two memcpy medians. */
    target self = {m, admin};
    avg_times steady, fresh;
    double mc1 = memcpy_seconds((size_t)read, reps);
    time_average(&self, 1, keys, k, reps, 0, &steady);
    time_average(&self, 1, keys, k, reps, 1, &fresh);
    double mc2 = memcpy_seconds((size_t)read, reps);
    double mc = 0.5 * (mc1 + mc2);

    printf("SPIRT.AVG of %d x %zu float32: reads %.1f MB, writes %.1f MB a call (%.1f MB "
           "moved); %d timed calls after %d warm-ups\n", k, n, read / 1e6, written / 1e6,
           moved / 1e6, reps, WARMUP);
    printf("  %-46s %8s %9s %10s\n", "", "ms/call", "GB/s read", "GB/s moved");
    row("server-side, existing dst (SLOWLOG median)", steady.server, read, moved);
    row("server-side, fresh dst (SLOWLOG median)", fresh.server, read, moved);
    row("server-side, existing dst (commandstats mean)", steady.server_mean, read, moved);
    row("server-side, fresh dst (commandstats mean)", fresh.server_mean, read, moved);
    row("round trip, existing dst (client median)", steady.round_trip, read, moved);
    row("round trip, fresh dst (client median)", fresh.round_trip, read, moved);
    char what[96];
    snprintf(what, sizeof what, "memcpy of %.1f MB (median; GB/s copied)", read / 1e6);
    row(what, mc, read, 2 * read);
    printf("  (memcpy medians before and after: %.3f and %.3f ms)\n", mc1 * 1e3, mc2 * 1e3);
    /* The measure: the sources read per second against memcpy's
     * bytes copied per second (the goal: >= 0.5); stricter, every byte
     * moved on both sides (a memcpy moves twice what it copies). */
    const avg_times *dsts[2] = {&steady, &fresh};
    for (int d = 0; d < 2; d++)
        if (dsts[d]->server > 0)
            printf("SPIRT.AVG / memcpy, server-side median, %s dst: %.2f of memcpy's bandwidth "
                   "(sources read vs bytes copied; goal >= 0.5), %.2f counting every byte "
                   "moved\n", d ? "fresh" : "existing", mc / dsts[d]->server,
                   moved / dsts[d]->server / (2 * read / mc));

    /* SPIRT.UPDATE with momentum: reads w, g, v and writes w, v. */
    stats_Begin(admin);
    for (int r = 0; r < reps; r++)
        if (store_Update(m, keys[0], keys[1], "{bench}:mom", 1e-4f, 0.9f, 0.0f, NULL) != SP_OK)
            fail();
    double upd = commandstats_Seconds(admin, "spirt.update");
    if (upd > 0)
        printf("SPIRT.UPDATE (momentum) of %zu float32, server-side mean: %7.3f ms/call "
               "(%.2f GB/s moved: 3 read, 2 written)\n", n, upd * 1e3, 20.0 * n / upd / 1e9);

    if (plain_port > 0) {
        store *p = connect_port(plain_port);
        put_sources(p, keys, k, n);
        target plain = {p, NULL};
        avg_times fb;
        time_average(&plain, 1, keys, k, reps < 10 ? reps : 10, 0, &fb);
        printf("client-side fallback (no module, GET x%d + SET): %7.3f ms/call\n", k,
               fb.round_trip * 1e3);
        store_Destroy(p);
    }
    printf("memcpy of 256 MB (DRAM-bound, median of 5): %6.2f GB/s copied\n",
           (double)(256 << 20) / memcpy_seconds((size_t)256 << 20, 5) / 1e9);
    if (base_port > 0)
        compare_Baseline(m, admin, base_port, keys, k, n, reps);
    redisFree(admin);
    store_Destroy(m);
    return 0;
}
