/* load.c - a bounded load generator for one spirt function process.
 *
 * Many threads, each with its own keep-alive connection, send a fixed number
 * of requests drawn from a mix of kinds (valid invocations, /readyz probes
 * and several invalid requests), check every answer's status code against
 * what that kind must get, and report latency percentiles, throughput and
 * the function's resident memory (VmRSS) before, half-way through and after
 * the load. Loopback only; bounded in requests and in time. It prints
 * numbers: it is a benchmark, not a test with thresholds.
 *
 *   bench-load --port P --pid PID --valid FILE [--token T] [--threads 64]
 *              [--requests 100] [--max-seconds 300] [--mix valid=60,readyz=20,...]
 *
 * Built as bin/bench-load (CMake option SPIRT_BENCH) and run by bench/load.sh;
 * depends on libc and pthreads only, so it measures the server, not a shared
 * client library. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum { K_VALID, K_READYZ, K_BADJSON, K_INVALID, K_UNAUTH, K_COUNT };
static const char *const kind_name[K_COUNT] = {"valid", "readyz", "bad-json", "invalid",
                                               "unauthorized"};
/* What each kind must be answered with. */
static const int kind_expect[K_COUNT] = {200, 200, 400, 400, 401};

typedef struct {
    const char *host;
    int port;
    const char *token;
    int threads, requests, max_seconds;
    int pid;
    char *valid;       /* the valid request body */
    size_t valid_len;
    int mix[K_COUNT];  /* weights */
    int timeout_ms;
} config;

typedef struct {
    double *lat;       /* ms, one per request of this kind */
    size_t n;
    atomic_long errors;
    atomic_long transport_errors;
    atomic_long wrong_status;
    atomic_int first_bad_status;
} kind_stats;

static config C;
static kind_stats S[K_COUNT];
static pthread_mutex_t lat_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_long done_requests;
static atomic_int stop_all;
static atomic_long reconnects;   /* the server answered with Connection: close */
static atomic_long stale_retries; /* a kept-alive connection was gone: retried */
static atomic_long closes_by_kind[K_COUNT];

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long rss_kib(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

/* ---- a minimal keep-alive HTTP/1.1 client ------------------------------ */

typedef struct {
    int fd;
    char buf[65536];
    size_t have;       /* bytes buffered from the connection */
} conn;

static int conn_Open(conn *c)
{
    c->have = 0;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    struct timeval tv = {C.timeout_ms / 1000, (C.timeout_ms % 1000) * 1000};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)C.port);
    if (inet_pton(AF_INET, C.host, &a.sin_addr) != 1 ||
        connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

static void conn_Close(conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->have = 0;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static const char *find_header(const char *head, size_t len, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = head; p + nl < head + len; p++)
        if ((p == head || p[-1] == '\n') && strncasecmp(p, name, nl) == 0 && p[nl] == ':')
            return p + nl + 1;
    return NULL;
}

/* Sends one request and reads its response; returns the status code, or -1
 * on a transport error (the connection is then closed). *close_after is set
 * when the server asked to close. */
static int conn_Request(conn *c, const char *method, const char *path, const char *token,
                        const char *body, size_t body_len, int *close_after)
{
    char head[512];
    int hn;
    if (body)
        hn = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: %s\r\n%s%s%sContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      method, path, C.host, token ? "Authorization: Bearer " : "",
                      token ? token : "", token ? "\r\n" : "", body_len);
    else
        hn = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: %s\r\n\r\n", method, path,
                      C.host);
    if (send_all(c->fd, head, (size_t)hn) || (body && send_all(c->fd, body, body_len)))
        return -1;
    /* Read until the end of the response head. */
    char *end = NULL;
    for (;;) {
        if (c->have >= 4 && (end = memmem(c->buf, c->have, "\r\n\r\n", 4)))
            break;
        if (c->have == sizeof c->buf)
            return -1;
        ssize_t r = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        c->have += (size_t)r;
    }
    size_t head_len = (size_t)(end - c->buf) + 4;
    int status = 0;
    if (sscanf(c->buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    const char *cl = find_header(c->buf, head_len, "Content-Length");
    size_t body_need = cl ? strtoul(cl, NULL, 10) : 0;
    const char *conn_h = find_header(c->buf, head_len, "Connection");
    *close_after = conn_h && strncasecmp(conn_h + strspn(conn_h, " "), "close", 5) == 0;
    if (!cl && !*close_after)
        return -1; /* the runtime always sends a length; anything else is a bug here */
    if (head_len + body_need > sizeof c->buf)
        return -1;
    while (c->have < head_len + body_need) {
        ssize_t r = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        c->have += (size_t)r;
    }
    /* Keep any bytes past this response (there should be none). */
    size_t used = head_len + body_need;
    memmove(c->buf, c->buf + used, c->have - used);
    c->have -= used;
    return status;
}

/* ---- workers ------------------------------------------------------------ */

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64: a different, reproducible stream per thread */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int pick_kind(uint64_t *s)
{
    int total = 0;
    for (int k = 0; k < K_COUNT; k++)
        total += C.mix[k];
    int r = (int)(rng_next(s) % (uint64_t)total);
    for (int k = 0; k < K_COUNT; k++) {
        if (r < C.mix[k])
            return k;
        r -= C.mix[k];
    }
    return K_VALID;
}

static int run_one(conn *c, int kind, int *close_after)
{
    static const char bad_json[] = "{\"job\": {\"id\": \"x\", ";
    static const char invalid[] = "{\"job\":{\"workers\":0},\"iteration\":-1}";
    switch (kind) {
    case K_VALID:
        return conn_Request(c, "POST", "/", C.token, C.valid, C.valid_len, close_after);
    case K_READYZ:
        return conn_Request(c, "GET", "/readyz", NULL, NULL, 0, close_after);
    case K_BADJSON:
        return conn_Request(c, "POST", "/", C.token, bad_json, sizeof bad_json - 1, close_after);
    case K_INVALID:
        return conn_Request(c, "POST", "/", C.token, invalid, sizeof invalid - 1, close_after);
    default:
        return conn_Request(c, "POST", "/", "not-the-token", C.valid, C.valid_len, close_after);
    }
}

static void record(int kind, double ms)
{
    pthread_mutex_lock(&lat_mu);
    S[kind].lat[S[kind].n++] = ms;
    pthread_mutex_unlock(&lat_mu);
}

static void *worker(void *arg)
{
    uint64_t seed = 0x5eed0000u + (uint64_t)(intptr_t)arg;
    conn c = {.fd = -1};
    for (int i = 0; i < C.requests && !atomic_load(&stop_all); i++) {
        int kind = pick_kind(&seed);
        double t0 = now_ms();
        int status = -1, close_after = 0;
        if (c.fd >= 0 || conn_Open(&c) == 0) {
            status = run_one(&c, kind, &close_after);
            /* A keep-alive connection the server closed while idle: retry
             * once on a fresh one, as any HTTP client does. */
            if (status < 0 && c.have == 0) {
                conn_Close(&c);
                atomic_fetch_add(&stale_retries, 1);
                if (conn_Open(&c) == 0)
                    status = run_one(&c, kind, &close_after);
            }
        }
        double ms = now_ms() - t0;
        if (status < 0) {
            atomic_fetch_add(&S[kind].transport_errors, 1);
            atomic_fetch_add(&S[kind].errors, 1);
            conn_Close(&c);
        } else {
            if (status != kind_expect[kind]) {
                atomic_fetch_add(&S[kind].wrong_status, 1);
                atomic_fetch_add(&S[kind].errors, 1);
                int zero = 0;
                atomic_compare_exchange_strong(&S[kind].first_bad_status, &zero, status);
            }
            record(kind, ms);
            if (close_after) {
                conn_Close(&c);
                atomic_fetch_add(&reconnects, 1);
                atomic_fetch_add(&closes_by_kind[kind], 1);
            }
        }
        atomic_fetch_add(&done_requests, 1);
    }
    conn_Close(&c);
    return NULL;
}

/* ---- memory sampling ---------------------------------------------------- */

typedef struct {
    long start, middle, end, peak;
    long total;
    atomic_int done;
} rss_watch;

static void *watcher(void *arg)
{
    rss_watch *w = arg;
    while (!atomic_load(&w->done)) {
        long r = rss_kib(C.pid);
        if (r > w->peak)
            w->peak = r;
        if (w->middle < 0 && atomic_load(&done_requests) >= w->total / 2)
            w->middle = r;
        usleep(20000);
    }
    return NULL;
}

/* ---- report --------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *v, size_t n, double p)
{
    if (!n)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

static int parse_mix(const char *s)
{
    memset(C.mix, 0, sizeof C.mix);
    char *copy = strdup(s), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        int k;
        if (!eq)
            goto bad;
        *eq = '\0';
        for (k = 0; k < K_COUNT && strcmp(t, kind_name[k]); k++)
            ;
        if (k == K_COUNT || atoi(eq + 1) < 0)
            goto bad;
        C.mix[k] = atoi(eq + 1);
    }
    free(copy);
    return C.mix[0] + C.mix[1] + C.mix[2] + C.mix[3] + C.mix[4] > 0 ? 0 : -1;
bad:
    free(copy);
    return -1;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(b);
        return NULL;
    }
    fclose(f);
    b[n] = '\0';
    *len = (size_t)n;
    return b;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench-load --port P --pid PID --valid FILE [--host 127.0.0.1] [--token T]\n"
               "            [--threads 64] [--requests 100 (per thread)] [--max-seconds 300]\n"
               "            [--timeout-ms 30000]\n"
               "            [--mix valid=60,readyz=20,bad-json=10,invalid=5,unauthorized=5]\n");
}

int main(int argc, char **argv)
{
    C.host = "127.0.0.1";
    C.threads = 64;
    C.requests = 100;
    C.max_seconds = 300;
    C.timeout_ms = 30000;
    const char *valid_path = NULL;
    parse_mix("valid=60,readyz=20,bad-json=10,invalid=5,unauthorized=5");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "--port")) C.port = atoi(v);
        else if (!strcmp(a, "--host")) C.host = v;
        else if (!strcmp(a, "--token")) C.token = v;
        else if (!strcmp(a, "--threads")) C.threads = atoi(v);
        else if (!strcmp(a, "--requests")) C.requests = atoi(v);
        else if (!strcmp(a, "--max-seconds")) C.max_seconds = atoi(v);
        else if (!strcmp(a, "--timeout-ms")) C.timeout_ms = atoi(v);
        else if (!strcmp(a, "--pid")) C.pid = atoi(v);
        else if (!strcmp(a, "--valid")) valid_path = v;
        else if (!strcmp(a, "--mix")) {
            if (parse_mix(v)) {
                fprintf(stderr, "load: bad --mix '%s'\n", v);
                return 2;
            }
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (C.port <= 0 || C.pid <= 0 || !valid_path || C.threads < 1 || C.requests < 1 ||
        C.max_seconds < 1 || C.timeout_ms < 1) {
        usage(stderr);
        return 2;
    }
    if (!(C.valid = read_file(valid_path, &C.valid_len))) {
        fprintf(stderr, "load: cannot read %s\n", valid_path);
        return 2;
    }
    size_t total = (size_t)C.threads * (size_t)C.requests;
    for (int k = 0; k < K_COUNT; k++)
        if (!(S[k].lat = malloc(sizeof(double) * total))) {
            fprintf(stderr, "load: out of memory\n");
            return 1;
        }

    rss_watch w = {.start = rss_kib(C.pid), .middle = -1, .peak = -1, .total = (long)total};
    if (w.start < 0) {
        fprintf(stderr, "load: no process %d\n", C.pid);
        return 2;
    }
    pthread_t wt, *th = calloc((size_t)C.threads, sizeof *th);
    pthread_create(&wt, NULL, watcher, &w);
    double t0 = now_ms();
    for (int i = 0; i < C.threads; i++)
        if (pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i) != 0) {
            fprintf(stderr, "load: cannot start thread %d\n", i);
            return 1;
        }
    /* The time bound: past it, workers finish their current request and stop. */
    int timed_out = 0;
    while (atomic_load(&done_requests) < (long)total) {
        if (now_ms() - t0 > C.max_seconds * 1e3) {
            atomic_store(&stop_all, 1);
            timed_out = 1;
            break;
        }
        usleep(20000);
    }
    for (int i = 0; i < C.threads; i++)
        pthread_join(th[i], NULL);
    double wall = now_ms() - t0;
    atomic_store(&w.done, 1);
    pthread_join(wt, NULL);
    /* Let the server release per-request memory before the last sample. */
    usleep(500000);
    w.end = rss_kib(C.pid);
    if (w.end > w.peak)
        w.peak = w.end;

    long n_done = atomic_load(&done_requests), n_err = 0;
    printf("load: %d threads x %d requests against 127.0.0.1:%d (pid %d)%s\n", C.threads,
           C.requests, C.port, C.pid, timed_out ? " - STOPPED AT THE TIME LIMIT" : "");
    printf("%-13s %8s %7s %9s %9s %9s %9s\n", "kind", "requests", "errors", "p50_ms", "p99_ms",
           "max_ms", "expect");
    double *all = malloc(sizeof(double) * total);
    size_t n_all = 0;
    for (int k = 0; k < K_COUNT; k++) {
        kind_stats *s = &S[k];
        qsort(s->lat, s->n, sizeof *s->lat, cmp_double);
        memcpy(all + n_all, s->lat, s->n * sizeof *s->lat);
        n_all += s->n;
        long errs = atomic_load(&s->errors);
        n_err += errs;
        long reqs = (long)s->n + atomic_load(&s->transport_errors);
        if (!reqs)
            continue;
        printf("%-13s %8ld %7ld %9.2f %9.2f %9.2f %9d", kind_name[k], reqs, errs,
               pct(s->lat, s->n, 0.50), pct(s->lat, s->n, 0.99),
               s->n ? s->lat[s->n - 1] : 0.0, kind_expect[k]);
        if (errs)
            printf("  (%ld transport, %ld wrong status, first %d)",
                   atomic_load(&s->transport_errors), atomic_load(&s->wrong_status),
                   atomic_load(&s->first_bad_status));
        printf("\n");
    }
    qsort(all, n_all, sizeof *all, cmp_double);
    printf("%-13s %8ld %7ld %9.2f %9.2f %9.2f\n", "all", n_done, n_err, pct(all, n_all, 0.50),
           pct(all, n_all, 0.99), n_all ? all[n_all - 1] : 0.0);
    printf("throughput: %.0f requests/s over %.1f s\n", n_done / (wall / 1e3), wall / 1e3);
    printf("connections: %ld answers with Connection: close (", atomic_load(&reconnects));
    for (int k = 0; k < K_COUNT; k++)
        printf("%s%s %ld", k ? ", " : "", kind_name[k], atomic_load(&closes_by_kind[k]));
    printf("), %ld stale keep-alive retries\n", atomic_load(&stale_retries));
    double drift = w.middle > 0 ? 100.0 * (double)(w.end - w.middle) / (double)w.middle : 0;
    printf("function RSS: start %ld KiB, middle %ld KiB, end %ld KiB, peak %ld KiB; "
           "end - middle = %+ld KiB (%+.1f%%)\n",
           w.start, w.middle, w.end, w.peak, w.end - w.middle, drift);
    printf("RESULT requests=%ld errors=%ld valid_errors=%ld p50_ms=%.2f p99_ms=%.2f "
           "rps=%.0f rss_start_kib=%ld rss_middle_kib=%ld rss_end_kib=%ld\n",
           n_done, n_err, atomic_load(&S[K_VALID].errors), pct(all, n_all, 0.50),
           pct(all, n_all, 0.99), n_done / (wall / 1e3), w.start, w.middle, w.end);
    free(all);
    return (n_err || timed_out) ? 1 : 0;
}
