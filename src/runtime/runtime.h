/* runtime.h - the function runtime: one workflow step behind an HTTP server.
 *
 * Contract (same locally and on Knative):
 *   POST /        invoke; JSON body; answers 200 with the handler's JSON
 *                 object, or {"error":{"code","message"}} with 400 (invalid,
 *                 format), 401 (auth), 404, 409 (conflict), 413 (too large),
 *                 503 (unavailable, timeout; retryable), 500 otherwise.
 *   GET /healthz  alive; GET /readyz  the function's dependencies answer;
 *   GET /metrics  Prometheus text (requests by status, latency histogram,
 *                 bytes in/out).
 * CloudEvents binary mode: ce-id/ce-type/ce-source/ce-specversion headers are
 * accepted and passed to the handler; the body is the event data.
 * POST / needs "Authorization: Bearer <token>" (compared in constant time)
 * unless auth was switched off explicitly. SIGTERM stops accepting, drains
 * in-flight requests and exits 0. */
#ifndef SPIRT_RUNTIME_H
#define SPIRT_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "core/status.h"

typedef struct {
    const cJSON *body;        /* parsed JSON object (never NULL for handlers) */
    const char *ce_id;        /* CloudEvents attributes, NULL when absent */
    const char *ce_type;
    const char *ce_source;
    int64_t deadline_ms;      /* monotonic ms (rt_NowMs) by which to answer */
} rt_request;

/* Fills `result` (an empty JSON object) and returns SP_OK, or returns an
 * error status with sp_Error() set; the runtime maps it to the HTTP answer. */
typedef spStatus (*rt_handler)(const rt_request *req, cJSON *result, void *ctx);
/* /readyz probe: SP_OK when dependencies answer. */
typedef spStatus (*rt_ready)(void *ctx);

typedef struct {
    const char *name;         /* step name (metrics label, logs) */
    rt_handler handler;
    rt_ready ready;           /* NULL: always ready */
    void *ctx;
} rt_function;

typedef struct {
    int port;                 /* 0 = pick a free port (tests) */
    const char *bind;         /* default "0.0.0.0"; tests use "127.0.0.1" */
    const char *token;        /* required bearer token; NULL with auth_off */
    int auth_off;             /* explicit opt-out for local debugging */
    size_t max_body;          /* default 4 MiB; larger bodies get 413 */
    int timeout_ms;           /* per-request deadline, default 120000 */
    int threads;              /* worker threads, default 8; connections are
                                 capped at 128 per thread */
    /* Slow clients: a request header must be complete within
     * header_timeout_ms of the connection's start (default 10000) and its
     * body within body_timeout_ms of the header (default 60000), however
     * steadily the bytes trickle in; the connection is closed otherwise.
     * One address may hold at most max_per_ip connections (default half the
     * connection cap). */
    int header_timeout_ms;
    int body_timeout_ms;
    int max_per_ip;
} rt_options;

typedef struct rt_server rt_server;

/* Starts serving in background threads; *port_out gets the bound port. */
spStatus runtime_Start(const rt_function *fn, const rt_options *opt, rt_server **out,
                       int *port_out);
/* Stops accepting, waits for in-flight requests, frees. */
void runtime_Stop(rt_server *s);

/* The whole life of a function process: sets glibc's malloc up for
 * buffers reused on every call (core/malloc_tune.h; SPIRT_MALLOC_TUNE=0
 * keeps the defaults), parses argv (--help, --port, --no-auth) and env
 * (PORT, SPIRT_TOKEN, SPIRT_TOKEN_FILE, SPIRT_AUTH=off, SPIRT_MAX_BODY,
 * SPIRT_TIMEOUT_MS, SPIRT_THREADS, SPIRT_BIND, SPIRT_HEADER_TIMEOUT_MS,
 * SPIRT_BODY_TIMEOUT_MS, SPIRT_MAX_CONN_PER_IP), serves until
 * SIGTERM/SIGINT, drains, returns the exit code for main(). */
int runtime_Main(const rt_function *fn, int argc, char **argv);

/* Monotonic clock in milliseconds. */
int64_t rt_NowMs(void);

/* Maps a status to its HTTP code (SP_ERR_INVALID -> 400, ...). */
int rt_HttpStatus(spStatus s);

#endif
