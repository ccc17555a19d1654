/* http_client.h - the HTTP client that invokes step functions (libcurl).
 *
 * The driver calls functions by URL (Knative Service URLs or local ports),
 * over http or https (TLS verified against the system's CA store).
 * Keep-alive connections are cached for the whole process (and reused by
 * any thread); each call has one deadline for all of it; response bodies
 * are limited to 256 MiB. Safe to call from any number of threads. */
#ifndef SPIRT_HTTP_CLIENT_H
#define SPIRT_HTTP_CLIENT_H

#include <stddef.h>

#include "core/status.h"

typedef struct {
    int status;        /* HTTP status code */
    char *body;        /* NUL-terminated, malloc'd */
    size_t body_len;
} http_response;

/* url: "http[s]://host[:port][/path]". token: bearer token or NULL.
 * timeout_ms: the deadline for the whole call, connecting included.
 * Connection failures and timeouts are SP_ERR_UNAVAILABLE / SP_ERR_TIMEOUT,
 * a reply that is not HTTP SP_ERR_FORMAT, an oversized one SP_ERR_TOO_LARGE;
 * any HTTP status (even 500) is SP_OK with resp->status set. */
spStatus http_Post(const char *url, const char *token, const char *content_type,
                   const char *body, size_t len, int timeout_ms, http_response *resp);
spStatus http_Get(const char *url, const char *token, int timeout_ms, http_response *resp);
void http_ResponseFree(http_response *r);
/* Closes the cached idle connections (those of calls under way in other
 * threads stay). */
void http_CloseCached(void);

#endif
