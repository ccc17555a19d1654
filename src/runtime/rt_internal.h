/* rt_internal.h - state shared by the runtime's files (not a public API). */
#ifndef SPIRT_RT_INTERNAL_H
#define SPIRT_RT_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/rt_metrics.h"
#include "runtime/runtime.h"

/* How far one connection's current request has come (rt_guard.c). */
typedef enum {
    RT_PHASE_HEADER,          /* waiting for / reading a request header */
    RT_PHASE_BODY,            /* headers done, reading the body */
    RT_PHASE_BUSY,            /* request complete: handler running, answer going out */
    RT_PHASE_CUT              /* past its deadline, shut down; waiting for MHD to close */
} rt_phase;

/* One TCP connection, from MHD's STARTED notice to its CLOSED notice. */
typedef struct rt_conn {
    struct rt_conn *prev, *next;
    int fd;
    rt_phase phase;
    int64_t since_ms;         /* when the phase began */
    int64_t limit_ms;         /* how long it may last; 0 = unbounded */
} rt_conn;

struct rt_server {
    struct MHD_Daemon *daemon;
    rt_function fn;
    char *name;               /* owned copy of fn.name */
    char *token;              /* owned copy; NULL with auth off */
    size_t token_len;
    int auth_off;
    size_t max_body;
    int timeout_ms;
    int port;
    rt_metrics metrics;
    /* Drain bookkeeping: dispatched requests until MHD's completion notice,
     * i.e. until the last byte of their response left. */
    pthread_mutex_t mu;
    pthread_cond_t idle;
    int inflight;
    atomic_int draining;      /* set once SIGTERM/Stop began: answer with Connection: close */
    /* Deadlines that, unlike MHD's idle timeout, no trickle of bytes resets. */
    int header_ms, body_ms, idle_ms;
    pthread_mutex_t conn_mu;  /* guards conns and every rt_conn in it */
    rt_conn *conns;
    pthread_cond_t guard_cv;
    pthread_t guard;
    int guard_started, guard_stop;
};

/* One HTTP request, from MHD's first callback to its completion notice. */
typedef struct {
    int64_t start_ms;
    int invoke;               /* POST /: counted in metrics, body accumulated */
    int responded;            /* a response is queued; ignore further upload */
    int dispatched;           /* fully received or answered: counted in flight */
    spStatus reject;          /* set mid-upload (413, out of memory): discard the rest */
    char *body;
    size_t len, cap;
    size_t bytes_in;          /* all body bytes read, kept or discarded */
    size_t expect_len;        /* Content-Length when given, else 0 */
    const char *allow;        /* methods for a 405's Allow header */
} rt_call;

/* Queues `body` (malloc'd; ownership passes here, freed on every path) with
 * `code`. Invocation responses get X-Spirt-Elapsed-Ms and are counted. */
enum MHD_Result reply_Send(rt_server *s, struct MHD_Connection *c, rt_call *call, int code,
                           const char *content_type, char *body, size_t len);
/* {"error":{"code":sp_StatusName(st),"message":msg}} with rt_HttpStatus(st). */
enum MHD_Result reply_Error(rt_server *s, struct MHD_Connection *c, rt_call *call, spStatus st,
                            const char *msg);
/* Like reply_Error with an explicit HTTP code (404/405 have no spStatus of their own). */
enum MHD_Result reply_ErrorCode(rt_server *s, struct MHD_Connection *c, rt_call *call, int code,
                                const char *name, const char *msg);
/* A small JSON object literal such as {"status":"ok"}. */
enum MHD_Result reply_Literal(rt_server *s, struct MHD_Connection *c, rt_call *call, int code,
                              const char *json);

/* POST / : the first callback (headers only), each body piece, the end. */
enum MHD_Result invoke_Begin(rt_server *s, struct MHD_Connection *c, rt_call *call);
enum MHD_Result invoke_Body(rt_server *s, rt_call *call, const char *data, size_t *size);
enum MHD_Result invoke_Finish(rt_server *s, struct MHD_Connection *c, rt_call *call);

/* Connection deadlines (rt_guard.c). guard_Start runs the watchdog that
 * shuts down connections whose header or body is overdue; the callbacks are
 * given to MHD; guard_Phase moves a connection on as its request proceeds. */
spStatus guard_Start(rt_server *s);
void guard_Stop(rt_server *s);
void guard_Notify(void *cls, struct MHD_Connection *c, void **socket_context,
                  enum MHD_ConnectionNotificationCode code);
void guard_Phase(rt_server *s, struct MHD_Connection *c, rt_phase phase);
void *guard_UriLog(void *cls, const char *uri, struct MHD_Connection *c);
/* Called with each line MHD logs; 1 when the guard answered for MHD. */
int guard_Log(rt_server *s, const char *line);

/* A whole HTTP/1.1 error answer (status line, headers, JSON body) for
 * writing straight to a socket; malloc'd, NULL when out of memory. */
char *reply_RawError(int code, const char *name, const char *msg, size_t *len);

/* Constant-time check of an Authorization header value against the token. */
int auth_BearerMatches(const char *header, const char *token, size_t token_len);

#endif
