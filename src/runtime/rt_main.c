/* rt_main.c - runtime_Main: configuration from argv and env, serve, drain.
 *
 * Exit codes: 0 after a clean drain or --help; 2 for bad usage or
 * configuration (the process never listened); 1 when the server could not
 * start (port in use). */
#include "runtime/runtime.h"
#include "core/env_names.h"
#include "core/malloc_tune.h"
#include "core/secret_env.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    rt_options opt;
    char token[SECRET_MAX + 1];
    const char *prog;
    const char *name;
} main_config;

static void usage(FILE *f, const char *prog, const char *name)
{
    fprintf(f,
            "usage: %s [--port N] [--no-auth] [--help]\n"
            "Serves the spirt step \"%s\" over HTTP: POST / invokes it with a JSON object;\n"
            "GET /healthz, /readyz and /metrics report liveness, readiness and Prometheus\n"
            "metrics.\n"
            "\n"
            "options:\n"
            "  --port N     listen on port N (overrides $PORT)\n"
            "  --no-auth    accept invocations without a bearer token (local debugging only)\n"
            "  --help       print this text\n"
            "\n"
            "environment:\n"
            "  PORT               listen port (default 8080)\n"
            "  SPIRT_TOKEN        bearer token required on POST / (Authorization: Bearer ...)\n"
            "  SPIRT_TOKEN_FILE   file holding that token, e.g. a mounted Secret (trimmed)\n"
            "  SPIRT_REDIS_PASSWORD_FILE, SPIRT_NATS_PASSWORD_FILE, SPIRT_AUTH_KEY_FILE\n"
            "                     files holding the steps' SPIRT_REDIS_PASSWORD,\n"
            "                     SPIRT_NATS_PASSWORD and SPIRT_AUTH_KEY\n"
            "  " ENV_REDIS_PEERS "  the per-peer Redis servers, host:port,host:port,...\n"
            "                     (a request's \"peer\" p uses entry p)\n"
            "  " ENV_REDIS_SHARED " the shared Redis, host:port\n"
            "  " ENV_NATS_URL "     the NATS server, nats://host:port\n"
            "                     (the only addresses a step connects to: a request that\n"
            "                     names one is refused)\n"
            "  " ENV_READY_REDIS "=none  /readyz does not wait for the shared Redis\n"
            "  SPIRT_AUTH=off     same as --no-auth\n"
            "  SPIRT_MAX_BODY     largest request body in bytes (default 4194304)\n"
            "  SPIRT_TIMEOUT_MS   per-request deadline and shutdown drain bound (default 120000)\n"
            "  SPIRT_THREADS      worker threads (default 8; up to 128 connections each)\n"
            "  SPIRT_BIND         listen address (default 0.0.0.0, every interface: a\n"
            "                     container's port; the local runner uses 127.0.0.1)\n"
            "  SPIRT_HEADER_TIMEOUT_MS  a request header must be complete this long after\n"
            "                     the connection opened, or it is closed (default 10000)\n"
            "  SPIRT_BODY_TIMEOUT_MS    ... and its body this long after the header\n"
            "                     (default 60000)\n"
            "  SPIRT_MAX_CONN_PER_IP    connections one address may hold (default half the\n"
            "                     connection cap)\n"
            "  SPIRT_MALLOC_TUNE=0  keep glibc's malloc defaults (otherwise large per-call\n"
            "                     buffers stay in the heap instead of being unmapped and\n"
            "                     faulted in again on every call; GLIBC_TUNABLES wins)\n"
            "\n"
            "SIGTERM or SIGINT stops accepting, finishes in-flight requests and exits 0.\n",
            prog, name);
}

static int fail(const main_config *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints one "spirt <name>: ..." line and returns the usage exit code. */
static int fail(const main_config *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "spirt %s: %s\n", c->name, msg);
    return 2;
}

/* A whole-string integer in [lo, hi]; 0 on success. */
static int parse_Long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* The steps read their Redis/NATS credentials and the join key from the
 * environment. Given as SPIRT_<NAME>_FILE instead, the value is read here
 * and set in this process only: it then appears in no command line and in
 * no environment another process could be handed (a local run passes only
 * paths). */
static int secrets_FromFiles(main_config *c)
{
    static const char *const vars[] = {ENV_REDIS_PASSWORD, ENV_NATS_PASSWORD, ENV_AUTH_KEY};
    if (secret_EnvFromFiles(vars, sizeof vars / sizeof vars[0]))
        return fail(c, "%s", sp_LastError());
    return 0;
}

static int config_Env(main_config *c)
{
    const char *v;
    long n;
    if ((v = getenv("PORT")) && v[0]) {
        if (parse_Long(v, 1, 65535, &n))
            return fail(c, "PORT=%s is not a port number (1..65535)", v);
        c->opt.port = (int)n;
    }
    if ((v = getenv("SPIRT_MAX_BODY")) && v[0]) {
        if (parse_Long(v, 1, LONG_MAX, &n))
            return fail(c, "SPIRT_MAX_BODY=%s is not a positive byte count", v);
        c->opt.max_body = (size_t)n;
    }
    /* The positive integer settings, each with its range. */
    const struct {
        const char *name;
        long max;
        int *dst;
    } ints[] = {
        {"SPIRT_TIMEOUT_MS", INT_MAX, &c->opt.timeout_ms},
        {"SPIRT_THREADS", 1024, &c->opt.threads},
        {"SPIRT_HEADER_TIMEOUT_MS", INT_MAX, &c->opt.header_timeout_ms},
        {"SPIRT_BODY_TIMEOUT_MS", INT_MAX, &c->opt.body_timeout_ms},
        {"SPIRT_MAX_CONN_PER_IP", 1 << 20, &c->opt.max_per_ip},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        if (!(v = getenv(ints[i].name)) || !v[0])
            continue;
        if (parse_Long(v, 1, ints[i].max, &n))
            return fail(c, "%s=%s is not an integer in 1..%ld", ints[i].name, v, ints[i].max);
        *ints[i].dst = (int)n;
    }
    if ((v = getenv("SPIRT_BIND")) && v[0])
        c->opt.bind = v;
    if ((v = getenv("SPIRT_AUTH")) && v[0]) {
        if (strcmp(v, "off") && strcmp(v, "on"))
            return fail(c, "SPIRT_AUTH=%s: only \"off\" or \"on\"", v);
        c->opt.auth_off = !strcmp(v, "off");
    }
    int rc = secrets_FromFiles(c);
    if (rc)
        return rc;
    if (secret_Get(ENV_TOKEN, c->token, sizeof c->token))
        return fail(c, "%s", sp_LastError());
    return 0;
}

/* Returns -1 to go on, else the exit code. */
static int config_Args(main_config *c, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long n;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout, c->prog, c->name);
            return 0;
        } else if (!strcmp(a, "--no-auth")) {
            c->opt.auth_off = 1;
        } else if (!strcmp(a, "--port") || !strncmp(a, "--port=", 7)) {
            const char *v = a[6] == '=' ? a + 7 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v || parse_Long(v, 1, 65535, &n))
                return fail(c, "--port needs a port number (1..65535), got %s", v ? v : "nothing");
            c->opt.port = (int)n;
        } else {
            fail(c, "unknown option %s (try %s --help)", a, c->prog);
            return 2;
        }
    }
    return -1;
}

/* GnuTLS is loaded (Debian's libmicrohttpd links it for HTTPS) but never
 * used: the runtime serves plain HTTP, TLS ends in front of it. Setting it
 * up - GnuTLS's own constructor, then MHD's explicit gnutls_global_init() -
 * builds its ASN.1 trees and crypto backends, about half of a function's
 * CPU from exec to listening. The function binaries export these
 * definitions (functions/CMakeLists.txt): the first is GnuTLS's documented
 * opt-out (GNUTLS_SKIP_GLOBAL_INIT in gnutls.h), the other two take MHD's
 * calls. */
int _gnutls_global_init_skip(void);
int gnutls_global_init(void);
void gnutls_global_deinit(void);
int _gnutls_global_init_skip(void) { return 1; }
int gnutls_global_init(void) { return 0; }
void gnutls_global_deinit(void) {}

/* SIGTERM and SIGINT end up here, whichever thread the kernel picks: not
 * only the server's threads exist (which start with the signals blocked) but
 * also threads libraries start before main (OpenBLAS's pool), which we
 * cannot mask. With a handler installed, none of them can take the default
 * action and kill the process mid-drain. */
static int g_stop_pipe[2] = {-1, -1};
static volatile sig_atomic_t g_stop_sig;

static void on_Stop(int sig)
{
    int saved = errno;
    g_stop_sig = sig;
    ssize_t n = write(g_stop_pipe[1], "x", 1);
    (void)n;
    errno = saved;
}

static int stop_Install(void)
{
    if (pipe2(g_stop_pipe, O_CLOEXEC) != 0)
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_Stop;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
        return -1;
    return 0;
}

/* Blocks until SIGTERM or SIGINT arrived. */
static int wait_Signal(void)
{
    char b;
    while (read(g_stop_pipe[0], &b, 1) != 1)
        ;
    return g_stop_sig;
}

int runtime_Main(const rt_function *fn, int argc, char **argv)
{
    /* Before the first allocation: every call's large buffers then stay in
     * the arenas instead of being mapped and faulted in again each time. */
    malloc_Tune();
    main_config c = {.opt = {.port = 8080}};
    c.name = fn && fn->name ? fn->name : "function";
    c.prog = argc > 0 && argv[0] ? argv[0] : c.name;
    int rc = config_Env(&c);
    if (rc)
        return rc;
    if ((rc = config_Args(&c, argc, argv)) >= 0)
        return rc;
    if (c.opt.auth_off) {
        c.opt.token = NULL;
    } else if (!c.token[0]) {
        return fail(&c, "refusing to start without a token: set SPIRT_TOKEN or SPIRT_TOKEN_FILE, "
                        "or SPIRT_AUTH=off / --no-auth for local debugging");
    } else {
        c.opt.token = c.token;
    }

    /* The server's threads start with the signals blocked (they inherit
     * the mask); the handler runs in this thread or in one a library
     * started. */
    if (stop_Install() != 0)
        return fail(&c, "cannot install the SIGTERM handler: %s", strerror(errno));
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    signal(SIGPIPE, SIG_IGN);

    rt_server *srv;
    int port;
    if (runtime_Start(fn, &c.opt, &srv, &port) != SP_OK) {
        fprintf(stderr, "spirt %s: %s\n", c.name, sp_LastError());
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return 1;
    }
    fprintf(stderr, "spirt %s: listening on %s:%d (auth %s, max body %zu bytes, timeout %d ms)\n",
            c.name, c.opt.bind ? c.opt.bind : "0.0.0.0", port, c.opt.auth_off ? "OFF" : "on",
            c.opt.max_body ? c.opt.max_body : (size_t)4 << 20,
            c.opt.timeout_ms ? c.opt.timeout_ms : 120000);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    int sig = wait_Signal();
    int64_t t0 = rt_NowMs();
    runtime_Stop(srv);
    fprintf(stderr, "spirt %s: %s: stopped accepting, drained in %lld ms, exiting\n", c.name,
            sig == SIGINT ? "SIGINT" : "SIGTERM", (long long)(rt_NowMs() - t0));
    return 0;
}
