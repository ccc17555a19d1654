/* runtime.c - the HTTP server around one step function (libmicrohttpd).
 *
 * MHD gives every connection its own thread. Steps block (a barrier waits
 * for other peers), and in MHD's pool mode a blocked handler also stalls
 * every other connection pinned to its thread, which can deadlock peers that
 * wait on each other. A keep-alive connection keeps its thread, so the
 * handler's per-thread resources (Redis connections) are reused across its
 * requests and released when it closes. Routing and the drain live here;
 * POST / itself is in rt_invoke.c. */
#include "runtime/rt_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RT_DEFAULT_MAX_BODY (4u << 20)
#define RT_DEFAULT_TIMEOUT_MS 120000
#define RT_DEFAULT_THREADS 8
/* Idle keep-alive connections and stalled uploads are closed after this;
 * the queue-proxy and the driver reconnect transparently. It also bounds a
 * quirk of libmicrohttpd 0.9.75: when a partial body and the client's FIN
 * arrive together, the connection is only noticed dead at this timeout. */
#define RT_IDLE_TIMEOUT_S 30
/* Deadlines no trickle of bytes extends (rt_guard.c). A header is a few
 * hundred bytes; a body is at most max_body over a local or cluster link. */
#define RT_DEFAULT_HEADER_MS 10000
#define RT_DEFAULT_BODY_MS 60000
/* Connections per configured thread. Each has its own thread, but one that
 * waits for bytes costs only its stack's touched pages, so the cap is set
 * well above what slow clients can be expected to hold (see runtime.h). */
#define RT_CONNS_PER_THREAD 128

static void drain_Enter(rt_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->inflight++;
    pthread_mutex_unlock(&s->mu);
}

static void drain_Leave(rt_server *s)
{
    pthread_mutex_lock(&s->mu);
    if (--s->inflight == 0)
        pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->mu);
}

/* Waits until no request is in flight or timeout_ms passed; returns how many
 * are still running. */
static int drain_Wait(rt_server *s, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    while (s->inflight > 0) {
        if (pthread_cond_timedwait(&s->idle, &s->mu, &until) == ETIMEDOUT)
            break;
    }
    int left = s->inflight;
    pthread_mutex_unlock(&s->mu);
    return left;
}

static int is_Get(const char *method)
{
    return !strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD);
}

static enum MHD_Result reply_Ready(rt_server *s, struct MHD_Connection *c, rt_call *call)
{
    if (!s->fn.ready)
        return reply_Literal(s, c, call, 200, "{\"status\":\"ready\"}");
    sp_ClearError();
    spStatus st = s->fn.ready(s->fn.ctx);
    if (st == SP_OK)
        return reply_Literal(s, c, call, 200, "{\"status\":\"ready\"}");
    /* Whatever the cause, "not ready" is 503 to a probe. */
    const char *msg = sp_LastError()[0] ? sp_LastError() : "dependencies are not ready";
    return reply_ErrorCode(s, c, call, 503, sp_StatusName(st), msg);
}

static enum MHD_Result reply_Metrics(rt_server *s, struct MHD_Connection *c, rt_call *call)
{
    size_t len;
    char *text = metrics_Render(&s->metrics, &len);
    if (!text)
        return reply_Error(s, c, call, SP_ERR_NOMEM, "out of memory rendering metrics");
    return reply_Send(s, c, call, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
}

static enum MHD_Result method_NotAllowed(rt_server *s, struct MHD_Connection *c, rt_call *call,
                                         const char *method, const char *url, const char *allow)
{
    char msg[160];
    snprintf(msg, sizeof msg, "method %.16s not allowed on %.64s (allowed: %s)", method, url,
             allow);
    call->allow = allow;
    return reply_ErrorCode(s, c, call, 405, "method_not_allowed", msg);
}

/* First callback of a request: only headers are known. */
static enum MHD_Result route(rt_server *s, struct MHD_Connection *c, rt_call *call,
                             const char *url, const char *method)
{
    if (!strcmp(url, "/")) {
        if (!strcmp(method, MHD_HTTP_METHOD_POST))
            return invoke_Begin(s, c, call);
        /* Knative's queue-proxy probes the user port's root path. */
        if (is_Get(method) &&
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, "K-Kubelet-Probe"))
            return reply_Ready(s, c, call);
        return method_NotAllowed(s, c, call, method, url, "POST");
    }
    int healthz = !strcmp(url, "/healthz"), readyz = !strcmp(url, "/readyz"),
        metrics = !strcmp(url, "/metrics");
    if (!healthz && !readyz && !metrics) {
        char msg[160];
        snprintf(msg, sizeof msg, "no route %.128s", url);
        return reply_ErrorCode(s, c, call, 404, sp_StatusName(SP_ERR_NOT_FOUND), msg);
    }
    if (!is_Get(method))
        return method_NotAllowed(s, c, call, method, url, "GET, HEAD");
    if (healthz)
        return reply_Literal(s, c, call, 200, "{\"status\":\"ok\"}");
    if (readyz)
        return reply_Ready(s, c, call);
    return reply_Metrics(s, c, call);
}

/* The request is complete (or already answered from its headers): from now
 * on it is in flight, and a drain waits for its response to be sent. Uploads
 * still arriving are not waited for: a client that vanished mid-body may look
 * alive to MHD until the idle timeout (see RT_IDLE_TIMEOUT_S). */
static void call_Dispatch(rt_server *s, struct MHD_Connection *c, rt_call *call)
{
    call->dispatched = 1;
    guard_Phase(s, c, RT_PHASE_BUSY);
    drain_Enter(s);
    if (call->invoke && !call->responded)
        metrics_Begin(&s->metrics);
}

static enum MHD_Result on_Request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    rt_server *s = cls;
    rt_call *call = *con_cls;
    if (!call) {
        call = calloc(1, sizeof *call);
        if (!call)
            return MHD_NO;
        call->start_ms = rt_NowMs();
        *con_cls = call;
        enum MHD_Result r = route(s, c, call, url, method);
        if (call->responded)
            call_Dispatch(s, c, call);
        else
            guard_Phase(s, c, RT_PHASE_BODY);
        return r;
    }
    if (*upload_size) {
        if (!call->invoke || call->responded) {
            /* answered from the headers already: swallow whatever follows */
            call->bytes_in += *upload_size;
            *upload_size = 0;
            return MHD_YES;
        }
        return invoke_Body(s, call, upload, upload_size);
    }
    if (call->responded)
        return MHD_YES;
    call_Dispatch(s, c, call);
    return invoke_Finish(s, c, call);
}

static void on_Completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode why)
{
    (void)why;
    rt_server *s = cls;
    rt_call *call = *con_cls;
    if (!call)
        return;
    guard_Phase(s, c, RT_PHASE_HEADER);
    if (call->invoke && !call->responded)
        metrics_Abort(&s->metrics, call->dispatched, call->bytes_in);
    int dispatched = call->dispatched;
    free(call->body);
    free(call);
    *con_cls = NULL;
    if (dispatched)
        drain_Leave(s);
}

static void on_Log(void *cls, const char *fmt, va_list ap)
{
    rt_server *s = cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = '\0';
    if (guard_Log(s, line))
        return;
    fprintf(stderr, "spirt %s: http: %s\n", s->name, line);
}

/* Fills `ss` from a numeric address; 0 on success. */
static int bind_Address(const char *bind, int port, struct sockaddr_storage *ss, int *ipv6)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, bind, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *ipv6 = 0;
        return 0;
    }
    if (inet_pton(AF_INET6, bind, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *ipv6 = 1;
        return 0;
    }
    return -1;
}

static void server_Free(rt_server *s)
{
    metrics_Destroy(&s->metrics);
    pthread_cond_destroy(&s->guard_cv);
    pthread_mutex_destroy(&s->conn_mu);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->mu);
    free(s->name);
    free(s->token);
    free(s);
}

static spStatus options_Check(const rt_function *fn, const rt_options *opt)
{
    if (!fn || !fn->handler)
        return sp_Error(SP_ERR_INVALID, "runtime: a function with a handler is required");
    if (!opt)
        return sp_Error(SP_ERR_INVALID, "runtime: options are required");
    if (opt->port < 0 || opt->port > 65535)
        return sp_Error(SP_ERR_INVALID, "runtime: port %d out of range 0..65535", opt->port);
    if (opt->header_timeout_ms < 0 || opt->body_timeout_ms < 0 || opt->max_per_ip < 0)
        return sp_Error(SP_ERR_INVALID, "runtime: timeouts and connection caps must be >= 0");
    if (!opt->auth_off && (!opt->token || !opt->token[0]))
        return sp_Error(SP_ERR_INVALID,
                        "runtime: a bearer token is required unless auth is switched off");
    return SP_OK;
}

static spStatus server_New(const rt_function *fn, const rt_options *opt, rt_server **out)
{
    rt_server *s = calloc(1, sizeof *s);
    if (!s)
        return sp_Error(SP_ERR_NOMEM, "runtime: out of memory");
    s->fn = *fn;
    s->name = strdup(fn->name ? fn->name : "function");
    s->auth_off = opt->auth_off;
    if (!s->auth_off) {
        s->token = strdup(opt->token);
        s->token_len = s->token ? strlen(s->token) : 0;
    }
    s->max_body = opt->max_body ? opt->max_body : RT_DEFAULT_MAX_BODY;
    s->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : RT_DEFAULT_TIMEOUT_MS;
    s->header_ms = opt->header_timeout_ms > 0 ? opt->header_timeout_ms : RT_DEFAULT_HEADER_MS;
    s->body_ms = opt->body_timeout_ms > 0 ? opt->body_timeout_ms : RT_DEFAULT_BODY_MS;
    s->idle_ms = RT_IDLE_TIMEOUT_S * 1000;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->conn_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->idle, &ca);
    pthread_cond_init(&s->guard_cv, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&s->draining, 0);
    spStatus st = s->name ? metrics_Init(&s->metrics, s->name)
                          : sp_Error(SP_ERR_NOMEM, "runtime: out of memory");
    if (st == SP_OK && !s->auth_off && !s->token)
        st = sp_Error(SP_ERR_NOMEM, "runtime: out of memory");
    if (st != SP_OK) {
        server_Free(s);
        return st;
    }
    *out = s;
    return SP_OK;
}

spStatus runtime_Start(const rt_function *fn, const rt_options *opt, rt_server **out,
                       int *port_out)
{
    spStatus st = options_Check(fn, opt);
    if (st != SP_OK)
        return st;
    const char *bind = opt->bind && opt->bind[0] ? opt->bind : "0.0.0.0";
    struct sockaddr_storage addr;
    int ipv6;
    if (bind_Address(bind, opt->port, &addr, &ipv6) != 0)
        return sp_Error(SP_ERR_INVALID, "runtime: bind address \"%s\" is not a numeric IP", bind);
    rt_server *s = NULL;
    if ((st = server_New(fn, opt, &s)) != SP_OK)
        return st;

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (MHD_is_feature_supported(MHD_FEATURE_POLL) == MHD_YES)
        flags |= MHD_USE_POLL;
    if (ipv6)
        flags |= MHD_USE_IPv6;
    /* `threads` bounds concurrency: that many connections per configured
     * thread; one address may hold half of them, so no single client (nor a
     * crowd of slow ones from one host) takes every slot. */
    unsigned threads = opt->threads > 0 ? (unsigned)opt->threads : RT_DEFAULT_THREADS;
    unsigned limit = threads * RT_CONNS_PER_THREAD;
    unsigned per_ip = opt->max_per_ip > 0 ? (unsigned)opt->max_per_ip : limit / 2;
    if ((st = guard_Start(s)) != SP_OK) {
        server_Free(s);
        return st;
    }
    errno = 0;
    s->daemon = MHD_start_daemon(
        flags, (uint16_t)opt->port, NULL, NULL, on_Request, s,
        MHD_OPTION_EXTERNAL_LOGGER, on_Log, s, /* first, or MHD warns */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, limit,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)RT_IDLE_TIMEOUT_S,
        MHD_OPTION_NOTIFY_COMPLETED, on_Completed, s,
        MHD_OPTION_NOTIFY_CONNECTION, guard_Notify, s,
        MHD_OPTION_URI_LOG_CALLBACK, guard_UriLog, s,
        MHD_OPTION_END);
    if (!s->daemon) {
        int e = errno;
        guard_Stop(s);
        server_Free(s);
        return sp_Error(SP_ERR_IO, "runtime: cannot listen on %s:%d: %s", bind, opt->port,
                        e ? strerror(e) : "libmicrohttpd refused the configuration");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : opt->port;
    *out = s;
    if (port_out)
        *port_out = s->port;
    return SP_OK;
}

void runtime_Stop(rt_server *s)
{
    if (!s)
        return;
    atomic_store(&s->draining, 1);
    /* Closing the listening socket (not just ignoring it) makes new
     * connections fail fast instead of piling up in the backlog. */
    MHD_socket lfd = MHD_quiesce_daemon(s->daemon);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
    int left = drain_Wait(s, s->timeout_ms);
    if (left > 0)
        fprintf(stderr, "spirt %s: %d request(s) still running after %d ms; closing them\n",
                s->name, left, s->timeout_ms);
    MHD_stop_daemon(s->daemon);
    guard_Stop(s);
    server_Free(s);
}
