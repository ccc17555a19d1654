/* rt_invoke.c - POST /: authenticate, accumulate the body, run the handler.
 *
 * Everything that can be refused from the headers alone (token, CloudEvents
 * version, a declared Content-Length over the limit) is refused before a
 * byte of body is read, so an unauthenticated or oversized upload costs the
 * server nothing. */
#include "runtime/rt_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* 1 when the n bytes are equal, in a time that depends on n only: every
 * byte is compared and the differences only accumulate. (Not OpenSSL's
 * CRYPTO_memcmp: for this one loop a function would map libcrypto, which
 * no other part of most steps uses.) */
static int bytes_Equal(const char *a, const char *b, size_t n)
{
    volatile unsigned char diff = 0;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(a[i] ^ b[i]);
    return diff == 0;
}

int auth_BearerMatches(const char *header, const char *token, size_t token_len)
{
    static const char scheme[] = "Bearer ";
    if (!header || !token || token_len == 0 || strncasecmp(header, scheme, sizeof scheme - 1))
        return 0;
    const char *got = header + sizeof scheme - 1;
    size_t got_len = strlen(got);
    /* Time depends only on the expected token's length, never on how many
     * leading bytes of a guess are right: always one constant-time compare
     * of token_len bytes (a guess of another length is refused, but still
     * costs the same compare, of the token with itself). */
    int same_len = got_len == token_len;
    int same = bytes_Equal(same_len ? got : token, token, token_len);
    return same_len & same;
}

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* Parses a Content-Length; MHD already rejected malformed ones, this only
 * guards against surprises. Returns 0 when absent. */
static int content_Length(struct MHD_Connection *c, size_t *out)
{
    const char *v = header(c, MHD_HTTP_HEADER_CONTENT_LENGTH);
    *out = 0;
    if (!v)
        return 0;
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || end == v || (*end && *end != ' ') || v[0] == '-')
        return -1;
    *out = n > SIZE_MAX ? SIZE_MAX : (size_t)n;
    return 1;
}

enum MHD_Result invoke_Begin(rt_server *s, struct MHD_Connection *c, rt_call *call)
{
    call->invoke = 1;
    if (!s->auth_off) {
        const char *auth = header(c, MHD_HTTP_HEADER_AUTHORIZATION);
        if (!auth)
            return reply_Error(s, c, call, SP_ERR_AUTH, "missing Authorization: Bearer token");
        if (!auth_BearerMatches(auth, s->token, s->token_len))
            return reply_Error(s, c, call, SP_ERR_AUTH, "wrong bearer token");
    }
    const char *spec = header(c, "ce-specversion");
    if (spec && strcmp(spec, "1.0") != 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "unsupported CloudEvents specversion \"%.64s\" (want 1.0)", spec);
        return reply_Error(s, c, call, SP_ERR_INVALID, msg);
    }
    size_t declared;
    int has_len = content_Length(c, &declared);
    if (has_len < 0)
        return reply_Error(s, c, call, SP_ERR_INVALID, "malformed Content-Length");
    if (has_len && declared > s->max_body) {
        char msg[128];
        snprintf(msg, sizeof msg, "request body of %zu bytes is over the limit of %zu", declared,
                 s->max_body);
        return reply_Error(s, c, call, SP_ERR_TOO_LARGE, msg);
    }
    call->expect_len = declared;
    return MHD_YES;
}

/* The answer to an upload refused in the middle. */
static enum MHD_Result reject_Upload(rt_server *s, struct MHD_Connection *c, rt_call *call)
{
    char msg[96];
    if (call->reject == SP_ERR_TOO_LARGE)
        snprintf(msg, sizeof msg, "request body is over the limit of %zu bytes", s->max_body);
    else
        snprintf(msg, sizeof msg, "out of memory for the request body");
    return reply_Error(s, c, call, call->reject, msg);
}

enum MHD_Result invoke_Body(rt_server *s, rt_call *call, const char *data, size_t *size)
{
    size_t n = *size;
    *size = 0;
    call->bytes_in += n;
    if (call->reject != SP_OK) {
        /* libmicrohttpd 0.9.75 cannot queue a response while a body is still
         * arriving, so a refused upload is read on and dropped (never stored)
         * and answered when it ends. An upload that goes on for more than
         * another max_body bytes is cut off instead: closing is the only
         * bound on a client that never stops sending. */
        return call->bytes_in / 2 > s->max_body ? MHD_NO : MHD_YES;
    }
    if (n > s->max_body - call->len) {
        call->reject = SP_ERR_TOO_LARGE;
    } else if (call->len + n > call->cap) {
        size_t want = call->cap ? call->cap * 2 : 16384;
        if (call->expect_len > want)
            want = call->expect_len;
        if (want < call->len + n)
            want = call->len + n;
        if (want > s->max_body)
            want = s->max_body;
        char *p = realloc(call->body, want);
        if (p) {
            call->body = p;
            call->cap = want;
        } else {
            call->reject = SP_ERR_NOMEM;
        }
    }
    if (call->reject != SP_OK) {
        free(call->body);
        call->body = NULL;
        call->len = call->cap = 0;
        return MHD_YES;
    }
    memcpy(call->body + call->len, data, n);
    call->len += n;
    return MHD_YES;
}

/* The body must be exactly one JSON object, optionally surrounded by
 * whitespace. It is not NUL-terminated, hence the length-bounded parse. */
static spStatus body_Parse(const rt_call *call, cJSON **out)
{
    const char *text = call->body ? call->body : "";
    const char *end = NULL;
    *out = NULL;
    if (call->len == 0)
        return sp_Error(SP_ERR_INVALID, "empty body: expected a JSON object");
    cJSON *root = cJSON_ParseWithLengthOpts(text, call->len, &end, 0);
    if (!root) {
        long at = end ? (long)(end - text) : 0;
        return sp_Error(SP_ERR_INVALID, "body is not valid JSON (error near byte %ld)", at);
    }
    while (end && end < text + call->len && (*end == ' ' || *end == '\t' || *end == '\r' ||
                                             *end == '\n'))
        end++;
    if (end && end != text + call->len) {
        long at = (long)(end - text);
        cJSON_Delete(root);
        return sp_Error(SP_ERR_INVALID, "unexpected data after the JSON object at byte %ld", at);
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return sp_Error(SP_ERR_INVALID, "body must be a JSON object");
    }
    *out = root;
    return SP_OK;
}

static enum MHD_Result run_Handler(rt_server *s, struct MHD_Connection *c, rt_call *call,
                                   const cJSON *body)
{
    rt_request req = {
        .body = body,
        .ce_id = header(c, "ce-id"),
        .ce_type = header(c, "ce-type"),
        .ce_source = header(c, "ce-source"),
        .deadline_ms = call->start_ms + s->timeout_ms,
    };
    cJSON *result = cJSON_CreateObject();
    if (!result)
        return reply_Error(s, c, call, SP_ERR_NOMEM, "out of memory");
    sp_ClearError();
    spStatus st = s->fn.handler(&req, result, s->fn.ctx);
    if (st != SP_OK) {
        cJSON_Delete(result);
        const char *msg = sp_LastError();
        char fallback[96];
        if (!msg[0]) {
            snprintf(fallback, sizeof fallback, "step %s failed (%s)", s->name,
                     sp_StatusName(st));
            msg = fallback;
        }
        return reply_Error(s, c, call, st, msg);
    }
    /* The contract promises clients an object; a handler that broke it is a
     * bug on the server side, not something to pass on. */
    char *text = cJSON_IsObject(result) ? cJSON_PrintUnformatted(result) : NULL;
    int was_object = cJSON_IsObject(result);
    cJSON_Delete(result);
    if (!text)
        return reply_Error(s, c, call, was_object ? SP_ERR_NOMEM : SP_ERR_INTERNAL,
                           was_object ? "out of memory printing the result"
                                      : "handler result is not a JSON object");
    return reply_Send(s, c, call, 200, "application/json", text, strlen(text));
}

enum MHD_Result invoke_Finish(rt_server *s, struct MHD_Connection *c, rt_call *call)
{
    if (call->reject != SP_OK)
        return reject_Upload(s, c, call);
    cJSON *body;
    spStatus st = body_Parse(call, &body);
    if (st != SP_OK)
        return reply_Error(s, c, call, st, sp_LastError());
    /* The raw bytes are no longer needed; free them before the handler runs
     * so a long step does not hold two copies of its input. */
    free(call->body);
    call->body = NULL;
    call->cap = 0;
    enum MHD_Result r = run_Handler(s, c, call, body);
    cJSON_Delete(body);
    return r;
}
