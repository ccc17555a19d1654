/* status.c - thread-local error messages behind spStatus. */
#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char errbuf[SP_ERROR_MAX];

spStatus sp_Error(spStatus s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    return s;
}

spStatus sp_Wrap(spStatus s, const char *fmt, ...)
{
    char old[SP_ERROR_MAX];
    va_list ap;
    memcpy(old, errbuf, sizeof old);
    va_start(ap, fmt);
    int n = vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    /* Append ": <old message>" in what room is left; truncation is fine. */
    size_t used = n < 0 ? 0 : (size_t)n >= sizeof errbuf ? sizeof errbuf - 1 : (size_t)n;
    if (old[0] && used + 3 < sizeof errbuf) {
        size_t room = sizeof errbuf - used - 1;
        size_t k = strlen(old);
        errbuf[used++] = ':';
        errbuf[used++] = ' ';
        room -= 2;
        if (k > room)
            k = room;
        memcpy(errbuf + used, old, k);
        errbuf[used + k] = '\0';
    }
    return s;
}

const char *sp_LastError(void) { return errbuf; }
void sp_ClearError(void) { errbuf[0] = '\0'; }

const char *sp_StatusName(spStatus s)
{
    switch (s) {
    case SP_OK: return "ok";
    case SP_ERR_INVALID: return "invalid";
    case SP_ERR_AUTH: return "unauthenticated";
    case SP_ERR_NOT_FOUND: return "not_found";
    case SP_ERR_CONFLICT: return "conflict";
    case SP_ERR_TOO_LARGE: return "too_large";
    case SP_ERR_FORMAT: return "format";
    case SP_ERR_UNAVAILABLE: return "unavailable";
    case SP_ERR_TIMEOUT: return "timeout";
    case SP_ERR_IO: return "io";
    case SP_ERR_NOMEM: return "nomem";
    case SP_ERR_INTERNAL: return "internal";
    }
    return "unknown";
}

int sp_IsRetryable(spStatus s)
{
    return s == SP_ERR_UNAVAILABLE || s == SP_ERR_TIMEOUT;
}
