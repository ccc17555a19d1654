/* store_addr.c - parsing "host:port" and building job-namespaced keys. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#define STORE_DEFAULT_PORT 6379

static spStatus parse_Port(const char *p, const char *whole, int *port)
{
    char *end;
    long v = strtol(p, &end, 10);
    if (!*p || *end || v <= 0 || v > 65535)
        return sp_Error(SP_ERR_INVALID, "redis address '%s': bad port '%s'", whole, p);
    *port = (int)v;
    return SP_OK;
}

spStatus store_ParseAddr(const char *s, store_addr *out)
{
    if (!s || !*s)
        return sp_Error(SP_ERR_INVALID, "redis address is empty");
    memset(out, 0, sizeof *out);
    out->port = STORE_DEFAULT_PORT;
    const char *host = s, *colon;
    size_t hlen;
    if (s[0] == '[') { /* [v6::addr]:port */
        const char *close = strchr(s, ']');
        if (!close || (close[1] && close[1] != ':'))
            return sp_Error(SP_ERR_INVALID, "redis address '%s': unbalanced '['", s);
        host = s + 1;
        hlen = (size_t)(close - host);
        colon = close[1] ? close + 1 : NULL;
    } else {
        colon = strrchr(s, ':');
        if (colon && strchr(s, ':') != colon)
            colon = NULL; /* a bare IPv6 address: no port part */
        hlen = colon ? (size_t)(colon - s) : strlen(s);
    }
    if (hlen == 0)
        return sp_Error(SP_ERR_INVALID, "redis address '%s': missing host", s);
    if (hlen >= sizeof out->host)
        return sp_Error(SP_ERR_INVALID, "redis address '%s': host longer than %zu bytes", s,
                        sizeof out->host - 1);
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    if (colon)
        return parse_Port(colon + 1, s, &out->port);
    return SP_OK;
}

static int job_CharOk(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

spStatus store_Key(char *buf, size_t cap, const char *job, const char *fmt, ...)
{
    if (!buf || cap == 0 || !job || !fmt)
        return sp_Error(SP_ERR_INVALID, "store_Key: missing buffer, job or format");
    buf[0] = '\0';
    if (!*job)
        return sp_Error(SP_ERR_INVALID, "job name is empty");
    for (const char *p = job; *p; p++)
        if (!job_CharOk(*p))
            return sp_Error(SP_ERR_INVALID,
                            "job name '%.64s' has a character outside [A-Za-z0-9_.-]", job);
    /* The braces make the job a cluster hash tag: one job's keys share a slot. */
    int n = snprintf(buf, cap, "{%s}:", job);
    if (n < 0 || (size_t)n >= cap) {
        buf[0] = '\0';
        return sp_Error(SP_ERR_INVALID, "key for job '%.64s' does not fit %zu bytes", job, cap);
    }
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, cap - (size_t)n, fmt, ap);
    va_end(ap);
    if (m < 0 || (size_t)m >= cap - (size_t)n) {
        buf[0] = '\0';
        return sp_Error(SP_ERR_INVALID, "key for job '%.64s' does not fit %zu bytes", job, cap);
    }
    return SP_OK;
}
