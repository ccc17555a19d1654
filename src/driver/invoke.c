/* invoke.c - step invocation with retries. */
#include "driver/invoke.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/rng.h"
#include "runtime/http_client.h"
#include "runtime/runtime.h"
#include "steps/steps.h"

spStatus invoker_Url(const invoker *v, const char *step, char *buf, size_t cap)
{
    for (int i = 0; i < v->n_local; i++)
        if (strcmp(v->local[i].step, step) == 0) {
            snprintf(buf, cap, "%s", v->local[i].url);
            return SP_OK;
        }
    const char *tpl = v->url_template, *at = strstr(tpl, "{step}");
    if (!tpl[0] || !at)
        return sp_Error(SP_ERR_NOT_FOUND, "no function URL for step '%s'", step);
    /* Kubernetes names use dashes: chunk_reduce -> chunk-reduce. */
    char dashed[32];
    snprintf(dashed, sizeof dashed, "%s", step);
    for (char *p = dashed; *p; p++)
        if (*p == '_')
            *p = '-';
    int n = snprintf(buf, cap, "%.*s%s%s", (int)(at - tpl), tpl, dashed, at + 6);
    if (n < 0 || (size_t)n >= cap)
        return sp_Error(SP_ERR_INVALID, "function URL for '%s' is too long", step);
    return SP_OK;
}

static spStatus status_FromCode(const char *code, int http)
{
    static const struct {
        const char *name;
        spStatus st;
    } map[] = {{"invalid", SP_ERR_INVALID},         {"unauthenticated", SP_ERR_AUTH},
               {"not_found", SP_ERR_NOT_FOUND},     {"conflict", SP_ERR_CONFLICT},
               {"too_large", SP_ERR_TOO_LARGE},     {"format", SP_ERR_FORMAT},
               {"unavailable", SP_ERR_UNAVAILABLE}, {"timeout", SP_ERR_TIMEOUT}};
    for (size_t i = 0; code && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(code, map[i].name) == 0)
            return map[i].st;
    switch (http) {
    case 400: return SP_ERR_INVALID;
    case 401: return SP_ERR_AUTH;
    case 404: return SP_ERR_NOT_FOUND;
    case 409: return SP_ERR_CONFLICT;
    case 413: return SP_ERR_TOO_LARGE;
    case 502: case 503: case 504: return SP_ERR_UNAVAILABLE;
    default: return SP_ERR_INTERNAL;
    }
}

static spStatus call_Http(const invoker *v, const char *step, const char *body, cJSON **out)
{
    char url[640];
    spStatus st = invoker_Url(v, step, url, sizeof url);
    if (st)
        return st;
    http_response r = {0};
    st = http_Post(url, v->token[0] ? v->token : NULL, "application/json", body, strlen(body),
                   v->timeout_ms, &r);
    if (st) {
        http_ResponseFree(&r);
        return st;
    }
    cJSON *json = cJSON_ParseWithLength(r.body ? r.body : "", r.body_len);
    if (r.status == 200 && cJSON_IsObject(json)) {
        *out = json;
        http_ResponseFree(&r);
        return SP_OK;
    }
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(json, "error");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
    st = sp_Error(status_FromCode(cJSON_IsString(code) ? code->valuestring : NULL, r.status),
                  "HTTP %d: %s", r.status,
                  cJSON_IsString(msg) ? msg->valuestring : (r.body ? r.body : ""));
    cJSON_Delete(json);
    http_ResponseFree(&r);
    return st;
}

static spStatus call_Inproc(const invoker *v, const step_def *def, const cJSON *request,
                            cJSON **out)
{
    rt_request req = {.body = request, .deadline_ms = clock_NowMs() + v->timeout_ms};
    cJSON *res = cJSON_CreateObject();
    spStatus st = def->handler(&req, res, NULL);
    if (st) {
        cJSON_Delete(res);
        return st;
    }
    *out = res;
    return SP_OK;
}

static void backoff_Sleep(int attempt)
{
    /* 50 ms doubling, with jitter so retrying peers do not stampede. */
    static _Thread_local rng r;
    static _Thread_local int seeded;
    if (!seeded) {
        rng_Seed(&r, (uint64_t)clock_NowMs(), (uint64_t)(uintptr_t)&r);
        seeded = 1;
    }
    long ms = 50L << (attempt < 6 ? attempt : 6);
    ms = ms / 2 + (long)rng_Below(&r, (uint64_t)ms);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

spStatus invoker_Call(const invoker *v, const char *step, const cJSON *request,
                      cJSON **response, int *attempts)
{
    const step_def *def = steps_Find(step);
    if (!def)
        return sp_Error(SP_ERR_NOT_FOUND, "unknown step '%s'", step);
    char *body = NULL;
    if (!v->inproc && !(body = cJSON_PrintUnformatted(request)))
        return sp_Error(SP_ERR_NOMEM, "cannot render the request of step %s", step);
    int max = def->idempotent ? 1 + v->retries : 1;
    spStatus st = SP_OK;
    int n = 0;
    while (n < max) {
        if (n > 0)
            backoff_Sleep(n - 1);
        n++;
        *response = NULL;
        st = v->inproc ? call_Inproc(v, def, request, response) : call_Http(v, step, body, response);
        if (st == SP_OK || !sp_IsRetryable(st))
            break;
    }
    free(body);
    if (attempts)
        *attempts = n;
    if (st)
        return sp_Wrap(st, "step %s%s", step, n > 1 ? " (after retries)" : "");
    return SP_OK;
}
