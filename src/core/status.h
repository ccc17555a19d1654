/* status.h - the one status type chained through every spirt call.
 *
 * Every fallible function returns an spStatus. On failure the callee records a
 * human-readable message in a thread-local buffer with sp_Error(), so callers
 * can pass the status up unchanged and the outermost layer (CLI, HTTP runtime)
 * reports sp_LastError() once. The status also decides the HTTP code a step
 * function answers with (see runtime). */
#ifndef SPIRT_STATUS_H
#define SPIRT_STATUS_H

typedef enum {
    SP_OK = 0,
    SP_ERR_INVALID,     /* bad input: malformed JSON, wrong sizes, NaN (HTTP 400) */
    SP_ERR_AUTH,        /* missing or wrong credentials (401) */
    SP_ERR_NOT_FOUND,   /* a key, file or peer that should exist does not (404) */
    SP_ERR_CONFLICT,    /* stale or duplicate iteration (409) */
    SP_ERR_TOO_LARGE,   /* body or tensor over the limit (413) */
    SP_ERR_FORMAT,      /* corrupt data: checksum, truncated blob, bad file (400) */
    SP_ERR_UNAVAILABLE, /* a dependency (Redis, NATS, peer) is down: retryable (503) */
    SP_ERR_TIMEOUT,     /* a network wait ran out: retryable (503) */
    SP_ERR_IO,          /* local I/O failed (500) */
    SP_ERR_NOMEM,       /* allocation failed (500) */
    SP_ERR_INTERNAL     /* a bug (500) */
} spStatus;

/* The longest message kept (with its NUL): room for a few lines of a dead
 * server's log in the error that names it. */
#define SP_ERROR_MAX 4096

/* Records a printf-style message for the current thread and returns `s`, so a
 * failing branch reads `return sp_Error(SP_ERR_INVALID, "...", ...);`. */
spStatus sp_Error(spStatus s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prepends context to the current message ("loading x: <old message>") and
 * returns `s` unchanged; used when passing a failure up a layer. */
spStatus sp_Wrap(spStatus s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The last message recorded on this thread ("" if none). */
const char *sp_LastError(void);
void sp_ClearError(void);

/* A stable lower-case name for a status ("invalid", "unavailable", ...),
 * used as the `code` field of JSON errors. */
const char *sp_StatusName(spStatus s);

/* True for failures a caller may retry with backoff. */
int sp_IsRetryable(spStatus s);

#endif
