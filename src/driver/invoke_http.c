/* invoke_http.c - the HTTP transport: POST the request to the step's URL (a
 * local function process or a Knative Service), map the answer back. */
#include "driver/invoke.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/http_client.h"

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

/* The runtime's error answer {"error":{"code","message"}} (runtime.h) back
 * to a status; the HTTP code decides when the body names none. */
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

static spStatus http_Call(const invoker *v, const char *step, const cJSON *request, cJSON **out)
{
    char url[640];
    spStatus st = invoker_Url(v, step, url, sizeof url);
    if (st)
        return st;
    char *body = cJSON_PrintUnformatted(request);
    if (!body)
        return sp_Error(SP_ERR_NOMEM, "cannot render the request of step %s", step);
    http_response r = {0};
    st = http_Post(url, v->token[0] ? v->token : NULL, "application/json", body, strlen(body),
                   v->timeout_ms, &r);
    free(body);
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

const invoke_transport invoke_Http = {"http", http_Call, http_CloseCached};
