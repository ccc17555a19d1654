/* http_client.h - a small HTTP/1.1 client for invoking step functions.
 *
 * The driver calls functions by URL (Knative Service URLs or local ports).
 * Only what that needs: POST/GET with Content-Length bodies, keep-alive
 * connections cached per thread and host, a timeout on connect and on every
 * read/write, responses with Content-Length or chunked encoding. */
#ifndef SPIRT_HTTP_CLIENT_H
#define SPIRT_HTTP_CLIENT_H

#include <stddef.h>

#include "core/status.h"

typedef struct {
    int status;        /* HTTP status code */
    char *body;        /* NUL-terminated, malloc'd */
    size_t body_len;
} http_response;

/* url: "http://host[:port][/path]". token: bearer token or NULL.
 * Connection failures and timeouts are SP_ERR_UNAVAILABLE / SP_ERR_TIMEOUT;
 * any HTTP status (even 500) is SP_OK with resp->status set. */
spStatus http_Post(const char *url, const char *token, const char *content_type,
                   const char *body, size_t len, int timeout_ms, http_response *resp);
spStatus http_Get(const char *url, const char *token, int timeout_ms, http_response *resp);
void http_ResponseFree(http_response *r);
/* Closes this thread's cached connections. */
void http_CloseCached(void);

#endif
