/* fnstart.c - how fast a function process starts, how much it holds idle,
 * and what one trivial request costs it.
 *
 * For each --bin (alternating between them, so two builds are compared
 * under the same load): fork+exec with auth off on a free loopback port,
 * then connect and GET /healthz in a tight loop until the first 200 - the
 * time from before fork to that answer is one "start to healthy". Those
 * starts are stopped at once (SIGTERM), and the CPU time each used from
 * exec to exit (user + system, from wait4) is kept too. Then --rss-starts more starts stay
 * up: after --idle-ms of idleness their VmRSS and thread count are read
 * from /proc/PID/status, then --requests GET /healthz, each on a new
 * connection (as probes come; the runtime closes after answering one), and
 * as many POST / with an empty JSON object (answered 400 by every step: the
 * runtime's whole request path without a step's work) over one keep-alive
 * connection are timed, with the server's CPU time (utime + stime of
 * /proc/PID/stat) per request, and VmRSS is read once more. Medians are printed,
 * one line per binary. It prints numbers; it asserts nothing.
 *
 *   bench-fnstart --bin PATH [--bin PATH ...] [--label NAME ...] [--starts 20]
 *                 [--rss-starts 3] [--idle-ms 1000] [--requests 20000]
 *
 * Built as bin/bench-fnstart (CMake option SPIRT_BENCH), run by
 * bench/function.sh; libc only. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_BINS 32

extern char **environ;

typedef struct {
    const char *path, *label;
    double *start_ms;     /* one per timed start */
    double *cpu_ms;       /* CPU of each timed start and its stop */
    int n_start;
    double *rss_mb, *threads, *rss_after_mb, *get_rps, *get_cpu_us, *post_rps, *post_cpu_us;
    int n_rss;
    int failed;
} bin_stats;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    if (n <= 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* Starts `path` serving on `port` with auth off; its output goes nowhere. */
static pid_t spawn(const char *path, int port)
{
    char e_port[32];
    snprintf(e_port, sizeof e_port, "%d", port);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
    }
    setenv("PORT", e_port, 1);
    setenv("SPIRT_AUTH", "off", 1);
    setenv("SPIRT_BIND", "127.0.0.1", 1);
    char *argv[] = {(char *)path, NULL};
    execve(path, argv, environ);
    _exit(127);
}

static int conn_Open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Sends `req` and reads one response (the runtime always sends a
 * Content-Length); returns its status code or -1. */
static int conn_Request(int fd, const char *req, size_t req_len)
{
    for (size_t off = 0; off < req_len;) {
        ssize_t w = send(fd, req + off, req_len - off, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        off += (size_t)w;
    }
    char buf[4096];
    size_t have = 0;
    char *end = NULL;
    while (!(have >= 4 && (end = memmem(buf, have, "\r\n\r\n", 4)))) {
        if (have == sizeof buf)
            return -1;
        ssize_t r = recv(fd, buf + have, sizeof buf - have, 0);
        if (r <= 0)
            return -1;
        have += (size_t)r;
    }
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    size_t head = (size_t)(end - buf) + 4, body = 0;
    for (char *p = buf; p < end; p++)
        if ((p == buf || p[-1] == '\n') && strncasecmp(p, "Content-Length:", 15) == 0)
            body = strtoul(p + 15, NULL, 10);
    size_t need = head + body;
    while (have < need) { /* the rest of the body, not kept */
        ssize_t r = recv(fd, buf, sizeof buf < need - have ? sizeof buf : need - have, 0);
        if (r <= 0)
            return -1;
        have += (size_t)r;
    }
    return status;
}

static const char GET_HEALTHZ[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
static const char POST_EMPTY[] = "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";

/* Polls until GET /healthz answers 200; returns ms since t0, or -1 when the
 * process died or 10 s passed. */
static double wait_Healthy(pid_t pid, int port, double t0)
{
    struct timespec pause = {0, 50000};
    while (now_ms() - t0 < 10000) {
        int fd = conn_Open(port);
        if (fd >= 0) {
            int st = conn_Request(fd, GET_HEALTHZ, sizeof GET_HEALTHZ - 1);
            close(fd);
            if (st == 200)
                return now_ms() - t0;
        }
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return -1;
        nanosleep(&pause, NULL);
    }
    return -1;
}

/* Stops the process; returns the CPU time (user + system, ms) it used. */
static double stop(pid_t pid)
{
    struct rusage ru;
    kill(pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (wait4(pid, NULL, WNOHANG, &ru) == pid)
            goto done;
        struct timespec ms10 = {0, 10000000};
        nanosleep(&ms10, NULL);
    }
    kill(pid, SIGKILL);
    wait4(pid, NULL, 0, &ru);
done:
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* VmRSS (MB) and Threads of a process. */
static int proc_Status(pid_t pid, double *rss_mb, double *threads)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
            *rss_mb = v / 1024.0;
        else if (sscanf(line, "Threads: %ld", &v) == 1)
            *threads = (double)v;
    }
    fclose(f);
    return 0;
}

/* utime + stime of a process (all its threads), in microseconds. */
static double proc_CpuUs(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

/* `n` requests, over one keep-alive connection or (`fresh`) a new
 * connection each: requests/s and the server's CPU microseconds per
 * request; -1 on a failure. */
static int rate(pid_t pid, int port, const char *req, int expect, int fresh, int n, double *rps,
                double *cpu_us)
{
    size_t len = strlen(req);
    int fd = -1, ok = 1;
    double c0 = 0, t0 = 0;
    for (int i = -n / 10; i < n && ok; i++) { /* a tenth more first, to warm up */
        if (i == 0) {
            c0 = proc_CpuUs(pid);
            t0 = now_ms();
        }
        if (fd < 0 && (fd = conn_Open(port)) < 0)
            return -1;
        ok = conn_Request(fd, req, len) == expect;
        if (fresh || !ok) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    if (!ok)
        return -1;
    double t = now_ms() - t0, c = proc_CpuUs(pid) - c0;
    *rps = n / (t / 1e3);
    *cpu_us = c / n;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench-fnstart --bin PATH [--bin PATH ...] [--label NAME ...] [--starts N]\n"
               "                     [--rss-starts N] [--idle-ms MS] [--requests N]\n");
}

int main(int argc, char **argv)
{
    bin_stats bins[MAX_BINS];
    int nb = 0, nl = 0, starts = 20, rss_starts = 3, idle_ms = 1000, requests = 20000;
    memset(bins, 0, sizeof bins);
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
        if (!strcmp(a, "--bin") && nb < MAX_BINS)
            bins[nb++].path = v;
        else if (!strcmp(a, "--label") && nl < MAX_BINS)
            bins[nl++].label = v;
        else if (!strcmp(a, "--starts"))
            starts = atoi(v);
        else if (!strcmp(a, "--rss-starts"))
            rss_starts = atoi(v);
        else if (!strcmp(a, "--idle-ms"))
            idle_ms = atoi(v);
        else if (!strcmp(a, "--requests"))
            requests = atoi(v);
        else {
            usage(stderr);
            return 2;
        }
    }
    if (nb == 0 || starts < 1 || rss_starts < 0 || idle_ms < 0 || requests < 1) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    for (int b = 0; b < nb; b++) {
        bin_stats *s = &bins[b];
        if (!s->label)
            s->label = strrchr(s->path, '/') ? strrchr(s->path, '/') + 1 : s->path;
        s->start_ms = calloc((size_t)starts, sizeof(double));
        s->cpu_ms = calloc((size_t)starts, sizeof(double));
        double **cols[] = {&s->rss_mb,  &s->threads,  &s->rss_after_mb, &s->get_rps,
                           &s->get_cpu_us, &s->post_rps, &s->post_cpu_us};
        for (size_t k = 0; k < sizeof cols / sizeof cols[0]; k++)
            *cols[k] = calloc((size_t)rss_starts + 1, sizeof(double));
    }
    /* Timed starts, alternating between the binaries. */
    for (int i = 0; i < starts; i++) {
        for (int b = 0; b < nb; b++) {
            bin_stats *s = &bins[b];
            int port = free_port();
            double t0 = now_ms();
            pid_t pid = spawn(s->path, port);
            double ms = pid > 0 ? wait_Healthy(pid, port, t0) : -1, cpu = 0;
            if (pid > 0)
                cpu = stop(pid);
            if (ms < 0) {
                s->failed++;
            } else {
                s->cpu_ms[s->n_start] = cpu;
                s->start_ms[s->n_start++] = ms;
            }
        }
    }
    /* Idle memory and per-request cost, alternating too. */
    for (int i = 0; i < rss_starts; i++) {
        for (int b = 0; b < nb; b++) {
            bin_stats *s = &bins[b];
            int port = free_port();
            pid_t pid = spawn(s->path, port);
            if (pid <= 0 || wait_Healthy(pid, port, now_ms()) < 0) {
                s->failed++;
                if (pid > 0)
                    stop(pid);
                continue;
            }
            usleep((useconds_t)idle_ms * 1000);
            int k = s->n_rss;
            double after_threads = 0;
            if (proc_Status(pid, &s->rss_mb[k], &s->threads[k]) ||
                rate(pid, port, GET_HEALTHZ, 200, 1, requests, &s->get_rps[k], &s->get_cpu_us[k]) ||
                rate(pid, port, POST_EMPTY, 400, 0, requests, &s->post_rps[k], &s->post_cpu_us[k]) ||
                proc_Status(pid, &s->rss_after_mb[k], &after_threads))
                s->failed++;
            else
                s->n_rss++;
            stop(pid);
        }
    }
    int bad = 0;
    for (int b = 0; b < nb; b++) {
        bin_stats *s = &bins[b];
        double lo = 0, hi = 0;
        if (s->n_start) {
            qsort(s->start_ms, (size_t)s->n_start, sizeof(double), cmp_double);
            lo = s->start_ms[0];
            hi = s->start_ms[s->n_start - 1];
        }
        printf("%-22s start-to-healthy %6.2f ms (min %.2f, max %.2f, n %d), CPU %.1f ms",
               s->label, median(s->start_ms, s->n_start), lo, hi, s->n_start,
               median(s->cpu_ms, s->n_start));
        if (s->n_rss) {
            int n = s->n_rss;
            printf("  idle RSS %5.2f MB  threads %2.0f  GET /healthz (new connection each) %6.0f "
                   "req/s %5.1f us CPU  POST / (keep-alive) %6.0f req/s %5.1f us CPU  RSS after "
                   "%5.2f MB",
                   median(s->rss_mb, n), median(s->threads, n), median(s->get_rps, n),
                   median(s->get_cpu_us, n), median(s->post_rps, n),
                   median(s->post_cpu_us, n), median(s->rss_after_mb, n));
        }
        if (s->failed) {
            printf("  FAILED %d", s->failed);
            bad = 1;
        }
        printf("\n");
    }
    return bad;
}
