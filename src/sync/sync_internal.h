/* sync_internal.h - what the src/sync sources share: the connection struct,
 * NATS status mapping and the job/topic naming rules of sync.h. Not for use
 * outside src/sync. */
#ifndef SPIRT_SYNC_INTERNAL_H
#define SPIRT_SYNC_INTERNAL_H

#include <nats/nats.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "sync/sync.h"

#define SYNC_JOB_MAX 64          /* bytes of a job id */
#define SYNC_TOPIC_MAX 32        /* bytes of a topic */
#define SYNC_TOKEN_CAP (3 * SYNC_JOB_MAX + 1) /* escaped job token + NUL */
#define SYNC_SUBJECT_CAP 384
#define SYNC_PAYLOAD_MAX 65536
#define SYNC_KNOWN_STREAMS 8     /* jobs a connection remembers ensuring */

struct sync_conn {
    natsConnection *nc;
    jsCtx *js;
    int timeout_ms;
    char url[256];               /* for messages, credentials removed */
    pthread_mutex_t retired_mu;  /* guards the five below */
    natsSubscription **retired;  /* unsubscribed, not yet destroyed (sync_Retire) */
    int n_retired, cap_retired;
    char known[SYNC_KNOWN_STREAMS][SYNC_TOKEN_CAP]; /* jobs whose stream was ensured */
    int n_known;
    uint64_t known_at;           /* ... since this many reconnects */
};

/* Ending a subscription. libnats 3.4's read loop looks a subscription up
 * and then uses it without holding a reference (fixed upstream later, nats.c
 * issue 637): destroying a subscription while a message for it is being
 * processed frees memory the read loop is about to lock, and the process
 * hangs or crashes. Waits end while announcements and doorbells for them
 * are still arriving, so this is not rare. sync_Retire unsubscribes now and
 * keeps the subscription; sync_Flush (a round trip, bounded by timeout_ms)
 * destroys the ones retired before it once the server answered - by then
 * the read loop has processed everything the server sent before that
 * answer. Every subscribe already flushes, so this costs no extra round
 * trip; sync_Destroy destroys what is left once the read loop stopped. */
void sync_Retire(sync_conn *c, natsSubscription *sub);
natsStatus sync_Flush(sync_conn *c, int timeout_ms);

/* Monotonic milliseconds: deadlines must not move with the wall clock. */
long long sync_NowMs(void);

/* Turns a failed libnats call into an spStatus with a message naming the
 * server and the operation. jerr is the JetStream error code (0 if none). */
spStatus sync_Fail(const sync_conn *c, natsStatus s, jsErrCode jerr, const char *what);

/* Writes the one-to-one subject token of a job (see sync.h). */
spStatus sync_JobToken(const char *job, char *out, size_t cap);
spStatus sync_CheckTopic(const char *topic);
/* "SPIRT_<token>" */
spStatus sync_StreamName(const char *job, char *out, size_t cap);

/* How many times the connection has reconnected (0 if unknown). */
uint64_t sync_Reconnects(sync_conn *c);

/* EnsureStream by token (the stream name and subject come from it). */
spStatus sync_EnsureStreamToken(sync_conn *c, const char *token);
/* The same, once per connection and job: a waiter's later calls skip the
 * round trip. A job's stream is deleted only when a run starts (init, which
 * makes it again at once) or by sync_DeleteStream, which forgets it on its
 * own connection; after a reconnect (a server that may have lost its
 * store) every stream is ensured again. */
spStatus sync_EnsureStreamOnce(sync_conn *c, const char *token);

/* Parses the decimal member id that ends a subject ("...<member>"); -1 if the
 * last token is not a non-negative int. */
int sync_SubjectMember(const char *subject);

#endif
