/* rt_reply.c - building and queueing the runtime's HTTP answers. */
#include "runtime/rt_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t rt_NowMs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rt_HttpStatus(spStatus s)
{
    switch (s) {
    case SP_OK: return 200;
    case SP_ERR_INVALID:
    case SP_ERR_FORMAT: return 400;
    case SP_ERR_AUTH: return 401;
    case SP_ERR_NOT_FOUND: return 404;
    case SP_ERR_CONFLICT: return 409;
    case SP_ERR_TOO_LARGE: return 413;
    case SP_ERR_UNAVAILABLE:
    case SP_ERR_TIMEOUT: return 503;
    default: return 500;
    }
}

enum MHD_Result reply_Send(rt_server *s, struct MHD_Connection *c, rt_call *call, int code,
                           const char *content_type, char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    int64_t elapsed = rt_NowMs() - call->start_ms;
    if (call->invoke) {
        char ms[32];
        snprintf(ms, sizeof ms, "%lld", (long long)elapsed);
        MHD_add_response_header(r, "X-Spirt-Elapsed-Ms", ms);
    }
    if (code == 405 && call->allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, call->allow);
    /* While draining, keep-alive would invite the client to send more work
     * to a process that is about to exit. */
    if (atomic_load(&s->draining))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)code, r);
    MHD_destroy_response(r);
    if (ok == MHD_YES) {
        call->responded = 1;
        if (call->invoke)
            metrics_End(&s->metrics, call->dispatched, code, (double)elapsed / 1000.0,
                        call->bytes_in, len);
    }
    return ok;
}

static char *error_Json(const char *name, const char *msg, size_t *len)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(root, "error");
    char *text = NULL;
    if (err && cJSON_AddStringToObject(err, "code", name) &&
        cJSON_AddStringToObject(err, "message", msg))
        text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) /* out of memory: a fixed answer still tells the client what happened */
        text = strdup("{\"error\":{\"code\":\"nomem\",\"message\":\"out of memory\"}}");
    *len = text ? strlen(text) : 0;
    return text;
}

char *reply_RawError(int code, const char *name, const char *msg, size_t *len)
{
    size_t n;
    char *json = error_Json(name, msg, &n);
    if (!json)
        return NULL;
    char *text = NULL;
    const char *reason = MHD_get_reason_phrase_for((unsigned)code);
    int w = asprintf(&text,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     code, reason && reason[0] ? reason : "Error", n, json);
    free(json);
    if (w < 0)
        return NULL;
    *len = (size_t)w;
    return text;
}

enum MHD_Result reply_ErrorCode(rt_server *s, struct MHD_Connection *c, rt_call *call, int code,
                                const char *name, const char *msg)
{
    size_t len;
    char *text = error_Json(name, msg && msg[0] ? msg : name, &len);
    if (!text)
        return MHD_NO;
    return reply_Send(s, c, call, code, "application/json", text, len);
}

enum MHD_Result reply_Error(rt_server *s, struct MHD_Connection *c, rt_call *call, spStatus st,
                            const char *msg)
{
    return reply_ErrorCode(s, c, call, rt_HttpStatus(st), sp_StatusName(st), msg);
}

enum MHD_Result reply_Literal(rt_server *s, struct MHD_Connection *c, rt_call *call, int code,
                              const char *json)
{
    char *text = strdup(json);
    if (!text)
        return MHD_NO;
    return reply_Send(s, c, call, code, "application/json", text, strlen(text));
}
