/* rt_guard.c - deadlines on slow clients, and an answer MHD gets wrong.
 *
 * libmicrohttpd's connection timeout is an idle timeout: every byte that
 * arrives restarts it. A client that sends one header line every few seconds
 * therefore keeps its connection - and, in thread-per-connection mode, a
 * thread and a slot under the connection limit - for as long as it likes, and
 * a few hundred such clients lock everybody else out. So every connection
 * here carries the time its current phase began and how long that phase may
 * last, whatever arrives in between:
 *   header  from accept until the request header is complete (on a kept-alive
 *           connection: from the end of the previous answer, with the idle
 *           allowance, since a client may rightly wait before reusing it);
 *   body    from the complete header until the complete body;
 *   busy    the handler runs and the answer goes out: no limit here (the
 *           handler has the request deadline).
 * A watchdog thread shuts down (shutdown(2), not close: the descriptor still
 * belongs to MHD) every connection past its limit; MHD sees the end of the
 * stream and closes the connection its usual way. A connection leaves the
 * registry in MHD's CLOSED notice, which MHD gives before it closes the
 * descriptor, and both that and the watchdog's shutdown happen under
 * conn_mu: the watchdog never acts on a descriptor that was closed and
 * reused. */
#include "runtime/rt_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static void conn_Begin(rt_conn *k, rt_phase phase, int64_t limit_ms)
{
    k->phase = phase;
    k->since_ms = rt_NowMs();
    k->limit_ms = limit_ms;
}

void guard_Notify(void *cls, struct MHD_Connection *c, void **socket_context,
                  enum MHD_ConnectionNotificationCode code)
{
    rt_server *s = cls;
    rt_conn *k = *socket_context;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        k = calloc(1, sizeof *k);
        if (!k)
            return; /* untracked: only MHD's idle timeout applies to it */
        const union MHD_ConnectionInfo *fd =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        k->fd = fd ? fd->connect_fd : -1;
        conn_Begin(k, RT_PHASE_HEADER, s->header_ms);
        pthread_mutex_lock(&s->conn_mu);
        k->next = s->conns;
        if (s->conns)
            s->conns->prev = k;
        s->conns = k;
        pthread_mutex_unlock(&s->conn_mu);
        *socket_context = k;
        return;
    }
    if (!k)
        return;
    pthread_mutex_lock(&s->conn_mu);
    if (k->prev)
        k->prev->next = k->next;
    else
        s->conns = k->next;
    if (k->next)
        k->next->prev = k->prev;
    pthread_mutex_unlock(&s->conn_mu);
    free(k);
    *socket_context = NULL;
}

void guard_Phase(rt_server *s, struct MHD_Connection *c, rt_phase phase)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    rt_conn *k = ci ? ci->socket_context : NULL;
    if (!k)
        return;
    /* Called with HEADER only once an answer is complete: the connection
     * stays open for the client's next request. */
    int64_t limit = phase == RT_PHASE_HEADER ? s->idle_ms
                    : phase == RT_PHASE_BODY ? s->body_ms : 0;
    pthread_mutex_lock(&s->conn_mu);
    if (k->phase != RT_PHASE_CUT)
        conn_Begin(k, phase, limit);
    pthread_mutex_unlock(&s->conn_mu);
}

/* One sweep: shuts down every connection past its limit; returns how many. */
static int guard_Sweep(rt_server *s)
{
    int64_t now = rt_NowMs();
    int cut = 0;
    for (rt_conn *k = s->conns; k; k = k->next) {
        if (k->phase == RT_PHASE_CUT || k->limit_ms <= 0 || now - k->since_ms < k->limit_ms)
            continue;
        if (k->fd >= 0)
            shutdown(k->fd, SHUT_RDWR);
        k->phase = RT_PHASE_CUT;
        cut++;
    }
    return cut;
}

static void *guard_Main(void *arg)
{
    rt_server *s = arg;
    /* A quarter of the shortest limit, so a connection is cut at most 25%
     * late; never busier than 50 times a second. */
    int64_t shortest = s->header_ms;
    if (s->body_ms < shortest)
        shortest = s->body_ms;
    int64_t period = shortest / 4 < 20 ? 20 : shortest / 4 > 250 ? 250 : shortest / 4;
    pthread_mutex_lock(&s->conn_mu);
    while (!s->guard_stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += (long)period * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->guard_cv, &s->conn_mu, &until);
        if (s->guard_stop)
            break;
        int cut = guard_Sweep(s);
        if (cut) {
            pthread_mutex_unlock(&s->conn_mu);
            fprintf(stderr,
                    "spirt %s: closed %d slow connection(s): request header not complete "
                    "within %d ms (%d ms on a kept-alive connection) or body within %d ms\n",
                    s->name, cut, s->header_ms, s->idle_ms, s->body_ms);
            pthread_mutex_lock(&s->conn_mu);
        }
    }
    pthread_mutex_unlock(&s->conn_mu);
    return NULL;
}

spStatus guard_Start(rt_server *s)
{
    s->guard_stop = 0;
    int e = pthread_create(&s->guard, NULL, guard_Main, s);
    if (e)
        return sp_Error(SP_ERR_IO, "runtime: cannot start the connection watchdog: %s",
                        strerror(e));
    s->guard_started = 1;
    return SP_OK;
}

void guard_Stop(rt_server *s)
{
    if (!s->guard_started)
        return;
    pthread_mutex_lock(&s->conn_mu);
    s->guard_stop = 1;
    pthread_cond_broadcast(&s->guard_cv);
    pthread_mutex_unlock(&s->conn_mu);
    pthread_join(s->guard, NULL);
    s->guard_started = 0;
}

/* ---- a Content-Length MHD refuses ----------------------------------------
 *
 * libmicrohttpd 0.9.75 (Debian 12) refuses a Content-Length it cannot parse,
 * or one beyond 2^64, from inside its header parser, which already builds
 * the response header into the send buffer; its caller then overwrites the
 * connection's state, so the header is built a second time and the client
 * gets the status line and headers twice, then an HTML page. Our request
 * handler is never called for such a request. What does run, on the
 * connection's own thread (thread-per-connection mode), is the URI logger,
 * which is given the connection, and then the error logger with MHD's
 * message. So the URI logger remembers the connection in a thread-local, and
 * when the error logger reports the refused Content-Length we write the
 * runtime's usual JSON error on the socket ourselves and shut down its
 * sending side: what MHD sends after that never reaches the client, and MHD
 * closes the connection as it meant to. */

static _Thread_local struct MHD_Connection *tl_conn; /* request being read on this thread */
static _Thread_local int tl_answered;                /* we answered for MHD just now */

void *guard_UriLog(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)uri;
    tl_conn = c;
    tl_answered = 0;
    return NULL; /* the request's context stays NULL until on_Request */
}

static void send_All(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

int guard_Log(rt_server *s, const char *line)
{
    /* MHD's own account of the error we already answered, and of its
     * answer that could no longer be sent, would only mislead. */
    if (tl_answered &&
        (strstr(line, "Error processing request") || strstr(line, "Failed to send")))
        return 1;
    /* "Failed to parse `Content-Length' header" / "Too large value of
     * 'Content-Length' header" */
    if (!tl_conn || !strstr(line, "Content-Length' header"))
        return 0;
    const union MHD_ConnectionInfo *fd =
        MHD_get_connection_info(tl_conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    tl_conn = NULL;
    if (!fd)
        return 0;
    int too_large = strstr(line, "Too large") != NULL;
    size_t len = 0;
    char *text = too_large ? reply_RawError(413, sp_StatusName(SP_ERR_TOO_LARGE),
                                            "Content-Length is beyond any body size", &len)
                           : reply_RawError(400, sp_StatusName(SP_ERR_INVALID),
                                            "malformed Content-Length", &len);
    if (text)
        send_All(fd->connect_fd, text, len);
    free(text);
    shutdown(fd->connect_fd, SHUT_WR);
    tl_answered = 1;
    fprintf(stderr, "spirt %s: http: refused a request with a %s Content-Length (%d)\n",
            s->name, too_large ? "too large" : "malformed", too_large ? 413 : 400);
    return 1;
}
